//! Every vector in `fixtures/feishu/vectors.json`, through `decrypt`, the signature functions and
//! the full `webhook::verify` path.

use feishu_kit::config::{EncryptKey, VerificationToken, WebhookConfig};
use feishu_kit::webhook::{
    decode_body, decrypt, encrypt, signature_sha1_legacy, signature_sha256, verify, DecryptError,
    Inbound, WebhookError,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/feishu");

fn vectors() -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/vectors.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn fixture_bytes(relative: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{relative}")).unwrap()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn headers_of(v: &Value) -> HeaderMap {
    let mut map = HeaderMap::new();
    if let Some(headers) = v["headers"].as_object() {
        for (name, value) in headers {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value.as_str().unwrap()).unwrap(),
            );
        }
    }
    map
}

/// "now" = the vector's own timestamp, so the replay window is exercised at its centre.
fn now_of(v: &Value) -> i64 {
    v["headers"]["X-Lark-Request-Timestamp"]
        .as_str()
        .unwrap_or("1732233600")
        .parse::<i64>()
        .unwrap()
        * 1000
}

fn config_of(v: &Value) -> WebhookConfig {
    let token = v["verification_token"]
        .as_str()
        .unwrap_or("cardbot-test-verification-token");
    WebhookConfig::new(
        VerificationToken::new(token),
        v["encrypt_key"].as_str().map(EncryptKey::new),
    )
}

fn decrypt_error(name: &str) -> DecryptError {
    match name {
        "base64" => DecryptError::Base64,
        "ciphertext_length" => DecryptError::CiphertextLength,
        "padding" => DecryptError::Padding,
        other => panic!("unknown expected_error {other}"),
    }
}

#[test]
fn decrypt_vectors_decrypt_to_their_plaintext() {
    let all = vectors();
    let list = all["decrypt_vectors"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for v in list {
        let key = EncryptKey::new(s(v, "encrypt_key"));
        assert_eq!(
            hex::encode(Sha256::digest(s(v, "encrypt_key").as_bytes())),
            s(v, "aes_key_sha256_hex")
        );
        let plain = decrypt(&key, s(v, "encrypt")).unwrap_or_else(|e| panic!("{}: {e}", v["name"]));
        assert_eq!(plain, s(v, "plaintext"), "{}", v["name"]);
        // Encrypting with the vector's IV gives back the exact wire value.
        let iv: [u8; 16] = hex::decode(s(v, "iv_hex")).unwrap().try_into().unwrap();
        assert_eq!(encrypt(&key, iv, &plain), s(v, "encrypt"), "{}", v["name"]);
    }
}

#[test]
fn request_vectors_pass_the_full_webhook_path() {
    let all = vectors();
    let list = all["request_vectors"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for v in list {
        let name = s(v, "name");
        let body = fixture_bytes(s(v, "raw_body_file"));
        assert_eq!(body, s(v, "body").as_bytes(), "{name}: raw file = body");
        let key = EncryptKey::new(s(v, "encrypt_key"));
        assert_eq!(decrypt(&key, s(v, "encrypt")).unwrap(), s(v, "plaintext"));
        if let Some(sig) = v["headers"]["X-Lark-Signature"].as_str() {
            let ts = s(&v["headers"], "X-Lark-Request-Timestamp");
            let nonce = s(&v["headers"], "X-Lark-Request-Nonce");
            assert_eq!(signature_sha256(ts, nonce, &key, &body), sig, "{name}");
        }

        let inbound = verify(&config_of(v), &headers_of(v), &body, now_of(v))
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let plaintext: Value = serde_json::from_str(s(v, "plaintext")).unwrap();
        let fixture: Value =
            serde_json::from_slice(&fixture_bytes(s(v, "plaintext_fixture"))).unwrap();
        assert_eq!(plaintext, fixture, "{name}: plaintext = its fixture");
        match inbound {
            Inbound::MessageReceive(m) => {
                assert_eq!(name, "p2p_event_encrypted");
                assert_eq!(m.header.event_id, s(&plaintext["header"], "event_id"));
                assert_eq!(
                    m.event.message.message_id,
                    "om_5ce6d572455d361153b7cb51da133945"
                );
                assert_eq!(m.event.message.content.text.as_deref(), Some("审批"));
            }
            Inbound::CardAction(c) => {
                assert_eq!(name, "card_action_trigger_leave_encrypted");
                assert_eq!(c.header.event_id, s(&plaintext["header"], "event_id"));
                assert_eq!(c.event.action.value, serde_json::json!({"type": "leave"}));
                assert_eq!(c.event.token.expose(), s(&plaintext["event"], "token"));
            }
            Inbound::Challenge(c) => {
                assert_eq!(name, "url_verification_encrypted_test_key");
                assert_eq!(c.challenge, s(&plaintext, "challenge"));
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
    }
}

#[test]
fn legacy_signature_vectors_are_accepted() {
    let all = vectors();
    let list = all["legacy_signature_vectors"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    for v in list {
        let body = fixture_bytes(s(v, "raw_body_file"));
        assert_eq!(body, s(v, "body").as_bytes());
        let headers = headers_of(v);
        let ts = s(&v["headers"], "X-Lark-Request-Timestamp");
        let nonce = s(&v["headers"], "X-Lark-Request-Nonce");
        assert_eq!(
            format!("{ts}{nonce}{}", s(v, "verification_token")),
            s(v, "signature_input_prefix")
        );
        let token = VerificationToken::new(s(v, "verification_token"));
        assert_eq!(
            signature_sha1_legacy(ts, nonce, &token, &body),
            s(&v["headers"], "X-Lark-Signature")
        );
        // Delivered as a base64-encoded function-URL body: identical result.
        let decoded = decode_body(s(v, "body_base64").as_bytes(), true).unwrap();
        for bytes in [&body[..], &decoded[..]] {
            let Inbound::LegacyCardAction(action) =
                verify(&config_of(v), &headers, bytes, now_of(v)).unwrap()
            else {
                panic!("not a legacy card action");
            };
            assert_eq!(
                action.open_message_id,
                "om_dc13264520392913993dd051dba21dcf"
            );
            assert_eq!(action.action.value, serde_json::json!({"type": "leave"}));
        }
    }
}

#[test]
fn signature_examples_match() {
    let all = vectors();
    let list = all["signature_examples"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for v in list {
        let (ts, nonce, key, body) = (
            s(v, "timestamp"),
            s(v, "nonce"),
            s(v, "key"),
            s(v, "body").as_bytes(),
        );
        let signature = match s(v, "algorithm") {
            "sha256" => signature_sha256(ts, nonce, &EncryptKey::new(key), body),
            "sha1" => signature_sha1_legacy(ts, nonce, &VerificationToken::new(key), body),
            other => panic!("unknown algorithm {other}"),
        };
        assert_eq!(signature, s(v, "signature"), "{}", v["name"]);
    }
}

#[test]
fn negative_vectors_are_rejected_with_their_specific_error() {
    let all = vectors();
    let list = all["negative_vectors"].as_array().unwrap();
    assert_eq!(list.len(), 9);
    for v in list {
        let name = s(v, "name");
        match s(v, "check") {
            "signature_sha256" | "signature_sha1" => {
                assert_eq!(s(v, "expected_error"), "signature_mismatch");
                let err = verify(
                    &config_of(v),
                    &headers_of(v),
                    s(v, "body").as_bytes(),
                    now_of(v),
                )
                .unwrap_err();
                assert_eq!(err, WebhookError::SignatureMismatch, "{name}");
                assert_eq!(err.status(), 401);
                if let Some(decrypts_to) = v["decrypts_to"].as_str() {
                    // The attack the signature stops: the tampered body decrypts cleanly.
                    let body: Value = serde_json::from_str(s(v, "body")).unwrap();
                    let key = EncryptKey::new(s(v, "encrypt_key"));
                    assert_eq!(decrypt(&key, s(&body, "encrypt")).unwrap(), decrypts_to);
                }
            }
            "decrypt" => {
                let expected = decrypt_error(s(v, "expected_error"));
                let key = EncryptKey::new(s(v, "encrypt_key"));
                assert_eq!(decrypt(&key, s(v, "encrypt")), Err(expected), "{name}");
                // Same value in a correctly signed body: past the signature, the decrypt error shows.
                let body = serde_json::json!({ "encrypt": s(v, "encrypt") }).to_string();
                let mut headers = HeaderMap::new();
                headers.insert("x-lark-request-timestamp", "1732233600".parse().unwrap());
                headers.insert("x-lark-request-nonce", "nonce-0001".parse().unwrap());
                let sig = signature_sha256("1732233600", "nonce-0001", &key, body.as_bytes());
                headers.insert("x-lark-signature", sig.parse().unwrap());
                let err = verify(&config_of(v), &headers, body.as_bytes(), 1_732_233_600_000)
                    .unwrap_err();
                assert_eq!(err, WebhookError::Decrypt(expected), "{name}");
                assert_eq!(err.status(), 400);
            }
            other => panic!("{name}: unknown check {other}"),
        }
    }
}
