//! Property tests: arbitrary input never panics `webhook::verify` and is never accepted.

use feishu_kit::config::{EncryptKey, VerificationToken, WebhookConfig};
use feishu_kit::webhook::{decrypt, verify, WebhookError};
use http::HeaderMap;
use proptest::prelude::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/feishu");
const NOW: i64 = 1_732_233_600_000;

fn config() -> WebhookConfig {
    WebhookConfig::new(
        VerificationToken::new("cardbot-test-verification-token"),
        Some(EncryptKey::new("cardbot-test-encrypt-key")),
    )
}

fn p2p_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-lark-request-timestamp", "1732233600".parse().unwrap());
    headers.insert("x-lark-request-nonce", "nonce-0001".parse().unwrap());
    headers.insert(
        "x-lark-signature",
        "8e6d17527f5820e2ea4849e5c58e1c857e7b698c8a1f3b22af5d7ad429865984"
            .parse()
            .unwrap(),
    );
    headers
}

fn p2p_body() -> Vec<u8> {
    std::fs::read(format!(
        "{FIXTURES}/raw/event_im_message_receive_p2p_encrypted.json"
    ))
    .unwrap()
}

fn legacy_body() -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/raw/callback_card_legacy_leave.json")).unwrap()
}

fn legacy_headers() -> HeaderMap {
    let mut headers = p2p_headers();
    headers.insert(
        "x-lark-signature",
        "6cf8a60b2f1a0fb3d16b370174ea1f34be4fce77".parse().unwrap(),
    );
    headers
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_are_never_accepted(body in proptest::collection::vec(any::<u8>(), 0..1500)) {
        prop_assert!(verify(&config(), &p2p_headers(), &body, NOW).is_err());
        prop_assert!(verify(&config(), &HeaderMap::new(), &body, NOW).is_err());
    }

    #[test]
    fn random_encrypt_values_never_accepted(encrypt in "[A-Za-z0-9+/=]{0,400}") {
        let body = format!(r#"{{"encrypt":"{encrypt}"}}"#);
        prop_assert!(verify(&config(), &p2p_headers(), body.as_bytes(), NOW).is_err());
        prop_assert!(verify(&config(), &HeaderMap::new(), body.as_bytes(), NOW).is_err());
        let _ = decrypt(&EncryptKey::new("cardbot-test-encrypt-key"), &encrypt);
    }

    #[test]
    fn single_byte_flips_of_the_signed_p2p_body_are_rejected(
        index in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let mut body = p2p_body();
        let i = index.index(body.len());
        body[i] ^= mask;
        let err = verify(&config(), &p2p_headers(), &body, NOW).unwrap_err();
        // Whatever the flip breaks, it is rejected before decryption, never as a decrypt error.
        prop_assert!(
            matches!(
                err,
                WebhookError::SignatureMismatch
                    | WebhookError::MalformedJson
                    | WebhookError::MissingField(_)
                    | WebhookError::EncryptedBodyWithoutKey
                    | WebhookError::PlainBodyWithKey
                    | WebhookError::UnknownBodyShape
                    | WebhookError::MissingHeader(_)
            ),
            "{:?}", err
        );
    }

    #[test]
    fn single_byte_flips_of_the_signed_legacy_body_are_rejected(
        index in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let mut body = legacy_body();
        let i = index.index(body.len());
        body[i] ^= mask;
        prop_assert!(verify(&config(), &legacy_headers(), &body, NOW).is_err());
    }

    #[test]
    fn single_byte_flips_of_the_signature_are_rejected(
        index in 0usize..64,
        replacement in "[0-9a-f]",
    ) {
        let original = "8e6d17527f5820e2ea4849e5c58e1c857e7b698c8a1f3b22af5d7ad429865984";
        prop_assume!(&original[index..index + 1] != replacement.as_str());
        let mut signature = original.to_owned();
        signature.replace_range(index..index + 1, &replacement);
        let mut headers = p2p_headers();
        headers.insert("x-lark-signature", signature.parse().unwrap());
        prop_assert_eq!(
            verify(&config(), &headers, &p2p_body(), NOW).unwrap_err(),
            WebhookError::SignatureMismatch
        );
    }
}

#[test]
fn unflipped_p2p_body_is_accepted() {
    // Guards the properties above: the same inputs unchanged do pass.
    assert!(verify(&config(), &p2p_headers(), &p2p_body(), NOW).is_ok());
    assert!(verify(&config(), &legacy_headers(), &legacy_body(), NOW).is_ok());
}
