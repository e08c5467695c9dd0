//! Feishu's body encryption (AES-256-CBC, key = SHA-256(Encrypt Key)) and request signatures.
//!
//! On AWS-LC (through aws-lc-rs, which the TLS stack links anyway): its SHA-256 and AES use the
//! CPU's SHA and AES instructions, which is most of the hot path of every request.

use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey, AES_256,
};
use aws_lc_rs::digest::{self, SHA1_FOR_LEGACY_USE_ONLY, SHA256};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use subtle::ConstantTimeEq;

use crate::config::{EncryptKey, VerificationToken};

const BLOCK: usize = 16;

/// Why an `encrypt` value did not decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("encrypt is not strict standard padded base64")]
    Base64,
    #[error("ciphertext is empty or not a multiple of 16 bytes")]
    CiphertextLength,
    #[error("invalid PKCS#7 padding")]
    Padding,
    #[error("plaintext is not UTF-8")]
    Utf8,
}

fn aes_key(key: &EncryptKey) -> UnboundCipherKey {
    let hash = digest::digest(&SHA256, key.expose().as_bytes());
    // A SHA-256 is 32 bytes, the length AES-256 takes: this cannot fail.
    UnboundCipherKey::new(&AES_256, hash.as_ref()).expect("a 32-byte AES-256 key")
}

/// Decrypts an `encrypt` value: base64(iv ‖ AES-256-CBC(SHA-256(key), iv, PKCS#7(plaintext))).
pub fn decrypt(key: &EncryptKey, encrypt: &str) -> Result<String, DecryptError> {
    let mut raw = STANDARD.decode(encrypt).map_err(|_| DecryptError::Base64)?;
    if raw.len() <= BLOCK || (raw.len() - BLOCK) % BLOCK != 0 {
        return Err(DecryptError::CiphertextLength);
    }
    // In place: the plaintext overwrites the ciphertext, then moves down over the IV.
    let (iv, ciphertext) = raw.split_at_mut(BLOCK);
    let iv: [u8; BLOCK] = (&*iv)
        .try_into()
        .map_err(|_| DecryptError::CiphertextLength)?;
    let len = PaddedBlockDecryptingKey::cbc_pkcs7(aes_key(key))
        .and_then(|cipher| cipher.decrypt(ciphertext, DecryptionContext::Iv128(iv.into())))
        .map_err(|_| DecryptError::Padding)?
        .len();
    raw.copy_within(BLOCK..BLOCK + len, 0);
    raw.truncate(len);
    String::from_utf8(raw).map_err(|_| DecryptError::Utf8)
}

/// Encrypts like Feishu does, with the given IV (the simulator and tests pick it; Feishu uses a random one).
pub fn encrypt(key: &EncryptKey, iv: [u8; 16], plaintext: &str) -> String {
    let mut raw = iv.to_vec();
    let mut ciphertext = plaintext.as_bytes().to_vec();
    // CBC with PKCS#7 and a 16-byte IV is what this key type is made for: this cannot fail.
    PaddedBlockEncryptingKey::cbc_pkcs7(aes_key(key))
        .and_then(|cipher| {
            cipher.less_safe_encrypt(&mut ciphertext, EncryptionContext::Iv128(iv.into()))
        })
        .expect("AES-256-CBC with a 16-byte IV");
    raw.extend_from_slice(&ciphertext);
    STANDARD.encode(raw)
}

/// `X-Lark-Signature` of an event or schema 2.0 callback: hex SHA-256(timestamp + nonce + encrypt_key + body).
pub fn signature_sha256(timestamp: &str, nonce: &str, key: &EncryptKey, body: &[u8]) -> String {
    let mut hash = digest::Context::new(&SHA256);
    hash.update(timestamp.as_bytes());
    hash.update(nonce.as_bytes());
    hash.update(key.expose().as_bytes());
    hash.update(body);
    hex::encode(hash.finish())
}

/// `X-Lark-Signature` of a legacy card callback: hex SHA-1(timestamp + nonce + verification_token + body).
pub fn signature_sha1_legacy(
    timestamp: &str,
    nonce: &str,
    token: &VerificationToken,
    body: &[u8],
) -> String {
    let mut hash = digest::Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
    hash.update(timestamp.as_bytes());
    hash.update(nonce.as_bytes());
    hash.update(token.expose().as_bytes());
    hash.update(body);
    hex::encode(hash.finish())
}

/// Compares two secrets-derived byte strings without an early exit.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
