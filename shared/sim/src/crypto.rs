//! Feishu's side of webhook security: AES-256-CBC encryption of event bodies and the request signatures.

use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
use base64::Engine as _;
use rand::RngCore as _;
use sha1::Sha1;
use sha2::{Digest, Sha256};

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;

/// `base64(iv || AES-256-CBC(SHA-256(encrypt_key), iv, PKCS#7(plaintext)))`, as in the `encrypt` field.
pub fn encrypt_with_iv(encrypt_key: &str, iv: [u8; 16], plaintext: &[u8]) -> String {
    let key: [u8; 32] = Sha256::digest(encrypt_key.as_bytes()).into();
    let cipher = Aes256CbcEnc::new(&key.into(), &iv.into());
    let ciphertext = cipher.encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut wire = Vec::with_capacity(16 + ciphertext.len());
    wire.extend_from_slice(&iv);
    wire.extend_from_slice(&ciphertext);
    base64::engine::general_purpose::STANDARD.encode(wire)
}

/// Encrypts with a fresh random IV, as Feishu does for every push.
pub fn encrypt(encrypt_key: &str, plaintext: &[u8]) -> String {
    let mut iv = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut iv);
    encrypt_with_iv(encrypt_key, iv, plaintext)
}

/// `X-Lark-Signature` of events and schema 2.0 callbacks: hex(SHA-256(timestamp + nonce + encrypt_key + body)).
pub fn sign_sha256(timestamp: &str, nonce: &str, encrypt_key: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(timestamp.as_bytes());
    hasher.update(nonce.as_bytes());
    hasher.update(encrypt_key.as_bytes());
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// `X-Lark-Signature` of legacy card callbacks: hex(SHA-1(timestamp + nonce + verification_token + body)).
pub fn sign_sha1(timestamp: &str, nonce: &str, verification_token: &str, body: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(timestamp.as_bytes());
    hasher.update(nonce.as_bytes());
    hasher.update(verification_token.as_bytes());
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// Random lowercase hex of `bytes` bytes (ids, nonces, tokens).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}
