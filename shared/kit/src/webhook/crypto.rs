//! Feishu's body encryption (AES-256-CBC, key = SHA-256(Encrypt Key)) and request signatures.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{EncryptKey, VerificationToken};

const BLOCK: usize = 16;

/// Why an `encrypt` value did not decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// `encrypt` is not strict standard base64 with padding.
    #[error("encrypt is not strict standard padded base64")]
    Base64,
    /// The ciphertext after the IV is empty or not whole 16-byte blocks.
    #[error("ciphertext is empty or not a multiple of 16 bytes")]
    CiphertextLength,
    /// The PKCS#7 padding is invalid.
    #[error("invalid PKCS#7 padding")]
    Padding,
    /// The plaintext is not UTF-8.
    #[error("plaintext is not UTF-8")]
    Utf8,
}

/// Decrypts an `encrypt` value: base64(iv ‖ AES-256-CBC(SHA-256(key), iv, PKCS#7(plaintext))).
/// The base64 is decoded with SIMD (`base64-simd`: the strict standard alphabet with padding, as
/// Feishu sends it).
pub fn decrypt(key: &EncryptKey, encrypt: &str) -> Result<String, DecryptError> {
    let mut raw = base64_simd::STANDARD
        .decode_to_vec(encrypt.as_bytes())
        .map_err(|_| DecryptError::Base64)?;
    if raw.len() <= BLOCK || !(raw.len() - BLOCK).is_multiple_of(BLOCK) {
        return Err(DecryptError::CiphertextLength);
    }
    // In place: the plaintext overwrites the ciphertext, then moves down over the IV.
    let (iv, ciphertext) = raw.split_at_mut(BLOCK);
    let len = cbc::Decryptor::<aes::Aes256>::new(key.aes_key().into(), (&*iv).into())
        .decrypt_padded_mut::<Pkcs7>(ciphertext)
        .map_err(|_| DecryptError::Padding)?
        .len();
    raw.copy_within(BLOCK..BLOCK + len, 0);
    raw.truncate(len);
    String::from_utf8(raw).map_err(|_| DecryptError::Utf8)
}

/// Encrypts like Feishu does, with the given IV (the simulator and tests pick it; Feishu uses a random one).
pub fn encrypt(key: &EncryptKey, iv: [u8; 16], plaintext: &str) -> String {
    let ciphertext = cbc::Encryptor::<aes::Aes256>::new(key.aes_key().into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes());
    let mut raw = iv.to_vec();
    raw.extend_from_slice(&ciphertext);
    STANDARD.encode(raw)
}

/// `X-Lark-Signature` of an event or schema 2.0 callback: hex SHA-256(timestamp + nonce + encrypt_key + body).
pub fn signature_sha256(timestamp: &str, nonce: &str, key: &EncryptKey, body: &[u8]) -> String {
    hex::encode(digest_sha256(timestamp, nonce, key, body))
}

/// The SHA-256 digest [`signature_sha256`] writes in hex.
pub(crate) fn digest_sha256(
    timestamp: &str,
    nonce: &str,
    key: &EncryptKey,
    body: &[u8],
) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(timestamp.as_bytes());
    hash.update(nonce.as_bytes());
    hash.update(key.expose().as_bytes());
    hash.update(body);
    hash.finalize().into()
}

/// Whether an `X-Lark-Signature` is exactly the lowercase hex of `expected` (what Feishu sends),
/// compared without an early exit; the hex is written on the stack.
pub(crate) fn signature_matches(signature: &[u8], expected: &[u8; 32]) -> bool {
    let mut hex = [0_u8; 64];
    hex::encode_to_slice(expected, &mut hex).is_ok() && constant_time_eq(&hex, signature)
}

/// `X-Lark-Signature` of a legacy card callback: hex SHA-1(timestamp + nonce + verification_token + body).
pub fn signature_sha1_legacy(
    timestamp: &str,
    nonce: &str,
    token: &VerificationToken,
    body: &[u8],
) -> String {
    let mut hash = Sha1::new();
    hash.update(timestamp.as_bytes());
    hash.update(nonce.as_bytes());
    hash.update(token.expose().as_bytes());
    hash.update(body);
    hex::encode(hash.finalize())
}

/// Compares two secrets-derived byte strings without an early exit.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
