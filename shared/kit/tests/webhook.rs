//! `feishu_kit::webhook`: every event/callback fixture into its type, and the rejections the vectors
//! do not cover (token, replay window, size, JSON, headers, key/no-key mismatches).

use feishu_kit::config::{EncryptKey, VerificationToken, WebhookConfig};
use feishu_kit::webhook::{
    challenge_response_body, decode_body, encrypt, signature_sha1_legacy, signature_sha256, verify,
    ChatType, DecryptError, EventSchema, Inbound, WebhookError,
};
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/feishu");
const TOKEN: &str = "cardbot-test-verification-token";
const KEY: &str = "cardbot-test-encrypt-key";
const TS: &str = "1732233600";
const NONCE: &str = "nonce-0001";
const NOW: i64 = 1_732_233_600_000;
const P2P_SIGNATURE: &str = "8e6d17527f5820e2ea4849e5c58e1c857e7b698c8a1f3b22af5d7ad429865984";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

fn keyed() -> WebhookConfig {
    WebhookConfig::new(VerificationToken::new(TOKEN), Some(EncryptKey::new(KEY)))
}

/// Unencrypted mode (`ALLOW_UNENCRYPTED=true`): plain bodies, a timestamp on every request.
fn plain() -> WebhookConfig {
    WebhookConfig::new(VerificationToken::new(TOKEN), None)
}

/// What unencrypted mode needs on every plain request but the challenge: a timestamp in the window.
fn stamped() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("X-Lark-Request-Timestamp", TS.parse().unwrap());
    headers
}

fn signed_headers(ts: &str, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Content-Type", "application/json".parse().unwrap());
    headers.insert("X-Lark-Request-Timestamp", ts.parse().unwrap());
    headers.insert("X-Lark-Request-Nonce", NONCE.parse().unwrap());
    headers.insert("X-Lark-Signature", signature.parse().unwrap());
    headers
}

/// Encrypts and signs `plaintext` the way Feishu does, at timestamp `ts`.
fn feishu_request(config: &WebhookConfig, plaintext: &[u8], ts: &str) -> (HeaderMap, Vec<u8>) {
    let key = config.encrypt_key.as_ref().unwrap();
    let text = std::str::from_utf8(plaintext).unwrap();
    let body = json!({ "encrypt": encrypt(key, [7; 16], text) })
        .to_string()
        .into_bytes();
    let signature = signature_sha256(ts, NONCE, key, &body);
    (signed_headers(ts, &signature), body)
}

fn p2p_request() -> (HeaderMap, Vec<u8>) {
    (
        signed_headers(TS, P2P_SIGNATURE),
        fixture("raw/event_im_message_receive_p2p_encrypted.json"),
    )
}

fn legacy_request(body: &[u8], ts: &str) -> HeaderMap {
    let signature = signature_sha1_legacy(ts, NONCE, &VerificationToken::new(TOKEN), body);
    let mut headers = signed_headers(ts, &signature);
    headers.insert("X-Refresh-Token", "refresh-0001".parse().unwrap());
    headers
}

// ---------- fixtures into types ----------

#[test]
fn encrypted_p2p_event_yields_text_and_ids() {
    let (headers, body) = p2p_request();
    let Inbound::MessageReceive(m) = verify(&keyed(), &headers, &body, NOW).unwrap() else {
        panic!("not a message");
    };
    assert_eq!(m.schema, "2.0");
    assert_eq!(m.header.event_id, "5e3702a84e847582be8db7fb73283c02");
    assert_eq!(m.header.event_type, "im.message.receive_v1");
    assert_eq!(m.header.create_time.as_deref(), Some("1732233599687"));
    assert_eq!(m.header.app_id.as_deref(), Some("cli_9f5343c580712544"));
    assert_eq!(m.header.tenant_key.as_deref(), Some("2ca1d211f64f6438"));
    let sender = &m.event.sender;
    assert_eq!(
        sender.sender_id.open_id.as_deref(),
        Some("ou_84aad35d084aa403a838cf73ee18467")
    );
    assert_eq!(sender.sender_id.user_id.as_deref(), Some("e33ggbyz"));
    assert_eq!(
        sender.sender_id.union_id.as_deref(),
        Some("on_8ed6aa67826108097d9ee143816345")
    );
    assert_eq!(sender.sender_type, "user");
    assert_eq!(sender.tenant_key.as_deref(), Some("2ca1d211f64f6438"));
    let msg = &m.event.message;
    assert_eq!(msg.message_id, "om_5ce6d572455d361153b7cb51da133945");
    assert_eq!(msg.chat_id, "oc_5ad11d72b830411d72b836c20");
    assert_eq!(msg.chat_type, ChatType::P2p);
    assert_eq!(msg.message_type, "text");
    assert_eq!(msg.create_time, "1732233599512");
    assert_eq!(msg.update_time.as_deref(), Some("1732233599512"));
    assert_eq!(msg.content.text.as_deref(), Some("审批"));
    assert_eq!(msg.content.raw, r#"{"text":"审批"}"#);
    assert_eq!(msg.content.value(), json!({"text": "审批"}));
    assert!(msg.root_id.is_none() && msg.parent_id.is_none() && msg.thread_id.is_none());
    assert!(msg.mentions.is_empty() && msg.user_agent.is_none());
}

#[test]
fn plain_p2p_fixture_gives_the_same_message_as_the_encrypted_one() {
    let Inbound::MessageReceive(m) = verify(
        &plain(),
        &stamped(),
        &fixture("event_im_message_receive_p2p.json"),
        NOW,
    )
    .unwrap() else {
        panic!("not a message");
    };
    assert_eq!(
        m.event.message.message_id,
        "om_5ce6d572455d361153b7cb51da133945"
    );
    assert_eq!(m.event.message.content.text.as_deref(), Some("审批"));
}

#[test]
fn group_fixture_yields_mentions_and_reply_context() {
    let inbound = verify(
        &plain(),
        &stamped(),
        &fixture("event_im_message_receive_group_mention.json"),
        NOW,
    )
    .unwrap();
    assert_eq!(
        inbound.dedup_id().as_deref(),
        Some("om_7a3e2c9d1b5f48e6a0c4d8b2f6e1a9c3")
    );
    let Inbound::MessageReceive(m) = inbound else {
        panic!("not a message");
    };
    let msg = &m.event.message;
    assert_eq!(msg.chat_type, ChatType::Group);
    assert_eq!(msg.chat_id, "oc_84983ff6516d731e5b5f68d4ea2e1da5");
    assert_eq!(msg.content.text.as_deref(), Some("@_user_1 审批"));
    assert_eq!(
        msg.root_id.as_deref(),
        Some("om_5ce6d572455d361153b7cb5xxfsdfsdfdsf")
    );
    assert_eq!(
        msg.parent_id.as_deref(),
        Some("om_5ce6d572455d361153b7cb5xxfsdfsdfdsf")
    );
    assert_eq!(msg.thread_id.as_deref(), Some("omt_d4be107c616"));
    assert!(msg.user_agent.as_deref().unwrap().contains("Lark/6.7.5"));
    assert_eq!(msg.mentions.len(), 1);
    let mention = &msg.mentions[0];
    assert_eq!(mention.key, "@_user_1");
    assert_eq!(mention.name, "Tom");
    assert_eq!(mention.tenant_key.as_deref(), Some("2ca1d211f64f6438"));
    assert_eq!(
        mention.id.open_id.as_deref(),
        Some("ou_84aad35d084aa403a838cf73ee18467")
    );
    assert_eq!(mention.id.user_id.as_deref(), Some("e33ggbyz"));
    assert_eq!(
        mention.id.union_id.as_deref(),
        Some("on_8ed6aa67826108097d9ee143816345")
    );
}

#[test]
fn card_action_fixtures_yield_clicks() {
    for (file, event_id, update_token) in [
        (
            "callback_card_action_trigger_leave.json",
            "f7984f25108f8137722bb63cee927e66",
            "c-295ee57216a5dc9de90fefd0aadb4b1d7d8e21a4",
        ),
        (
            "callback_card_action_trigger_second_button.json",
            "a3c5e7f9b1d3f5a7c9e1b3d5f7a9c1e3",
            "c-295ee57216a5dc9de90fefd0aadb4b1d7d5f03c9",
        ),
    ] {
        // Plain (no Encrypt Key) and encrypted + signed deliveries give the same click.
        let plain_body = fixture(file);
        // The button's value exactly as the payload carries it (an object with its `type`).
        let raw: serde_json::Value = serde_json::from_slice(&plain_body).unwrap();
        let value = &raw["event"]["action"]["value"];
        assert!(value["type"].is_string(), "{file}: {value}");
        let (headers, body) = feishu_request(&keyed(), &plain_body, TS);
        for inbound in [
            verify(&plain(), &stamped(), &plain_body, NOW).unwrap(),
            verify(&keyed(), &headers, &body, NOW).unwrap(),
        ] {
            assert_eq!(inbound.dedup_id().as_deref(), Some(event_id));
            let Inbound::CardAction(c) = inbound else {
                panic!("{file}: not a card action");
            };
            assert_eq!(c.header.event_type, "card.action.trigger");
            assert_eq!(c.header.create_time.as_deref().map(str::len), Some(16));
            let e = &c.event;
            assert_eq!(e.token.expose(), update_token);
            assert_eq!(&e.action.value, value);
            assert_eq!(e.action.tag.as_deref(), Some("button"));
            assert!(e.action.form_value.is_none() && e.action.option.is_none());
            assert_eq!(
                e.operator.open_id.as_deref(),
                Some("ou_84aad35d084aa403a838cf73ee18467")
            );
            assert_eq!(e.operator.user_id.as_deref(), Some("e33ggbyz"));
            assert_eq!(
                e.operator.union_id.as_deref(),
                Some("on_8ed6aa67826108097d9ee143816345")
            );
            assert_eq!(e.operator.tenant_key.as_deref(), Some("2ca1d211f64f6438"));
            assert_eq!(e.host.as_deref(), Some("im_message"));
            assert!(e.delivery_type.is_none());
            assert_eq!(
                e.context.open_message_id.as_deref(),
                Some("om_dc13264520392913993dd051dba21dcf")
            );
            assert_eq!(
                e.context.open_chat_id.as_deref(),
                Some("oc_5ad11d72b830411d72b836c20")
            );
            let debug = format!("{c:?}");
            assert!(
                !debug.contains(update_token) && !debug.contains(TOKEN),
                "{debug}"
            );
        }
    }
}

#[test]
fn card_action_with_every_documented_field_parses() {
    let body = json!({
        "schema": "2.0",
        "header": { "event_id": "e1", "token": TOKEN, "create_time": "1603977298000000",
                    "event_type": "card.action.trigger", "tenant_key": "t", "app_id": "cli_x" },
        "event": {
            "operator": { "tenant_key": "t", "user_id": "u", "open_id": "ou", "union_id": "on" },
            "token": "c-1",
            "action": { "value": "plain string", "tag": "select_static", "timezone": "Asia/Shanghai",
                        "name": "Select_1", "form_value": { "field name2": "value2" },
                        "input_value": "typed", "option": "a", "options": ["a", "b"], "checked": true },
            "host": "im_message",
            "delivery_type": "url_preview",
            "context": { "url": "https://example.com", "preview_token": "pt",
                         "open_message_id": "om_1", "open_chat_id": "oc_1" }
        }
    });
    let Inbound::CardAction(c) =
        verify(&plain(), &stamped(), body.to_string().as_bytes(), NOW).unwrap()
    else {
        panic!("not a card action");
    };
    let a = &c.event.action;
    assert_eq!(a.value, json!("plain string"));
    assert_eq!(a.timezone.as_deref(), Some("Asia/Shanghai"));
    assert_eq!(a.name.as_deref(), Some("Select_1"));
    assert_eq!(
        a.form_value.as_ref().unwrap()["field name2"],
        json!("value2")
    );
    assert_eq!(a.input_value.as_deref(), Some("typed"));
    assert_eq!(a.option.as_deref(), Some("a"));
    assert_eq!(
        a.options.as_deref(),
        Some(&["a".to_owned(), "b".to_owned()][..])
    );
    assert_eq!(a.checked, Some(true));
    assert_eq!(c.event.delivery_type.as_deref(), Some("url_preview"));
    assert_eq!(c.event.context.url.as_deref(), Some("https://example.com"));
    assert_eq!(c.event.context.preview_token.as_deref(), Some("pt"));
}

#[test]
fn a_legacy_replay_with_another_refresh_token_has_the_same_dedup_key() {
    let body = fixture("callback_card_legacy_leave.json");
    let first = verify(&keyed(), &legacy_request(&body, TS), &body, NOW).unwrap();
    let mut headers = legacy_request(&body, TS);
    headers.insert("X-Refresh-Token", "forged-9999".parse().unwrap());
    let replay = verify(&keyed(), &headers, &body, NOW).unwrap();
    assert_eq!(replay.dedup_id(), first.dedup_id());
    let click = replay.card_click().unwrap();
    assert_eq!(Some(click.dedup_key.as_str()), first.dedup_id().as_deref());
    assert_eq!(
        click.operator_open_id.as_deref(),
        Some("ou_84aad35d084aa403a838cf73ee18467")
    );
}

#[test]
fn legacy_fixture_yields_a_legacy_action_with_refresh_token() {
    // The pretty-printed fixture is signed over its own bytes: the signature covers whatever was sent.
    let body = fixture("callback_card_legacy_leave.json");
    let inbound = verify(&keyed(), &legacy_request(&body, TS), &body, NOW).unwrap();
    // The dedup key comes from the signed body (SHA-256 of its update token), not the unsigned
    // X-Refresh-Token header (here "refresh-0001").
    assert_eq!(
        inbound.dedup_id().as_deref(),
        Some("legacy-token-248b4d09beaffae481c1ef2817fae314670534f339c061fce40333c1dd12406c")
    );
    let Inbound::LegacyCardAction(a) = inbound else {
        panic!("not legacy");
    };
    assert_eq!(
        a.open_id.as_deref(),
        Some("ou_84aad35d084aa403a838cf73ee18467")
    );
    assert_eq!(a.user_id.as_deref(), Some("e33ggbyz"));
    assert_eq!(a.open_message_id, "om_dc13264520392913993dd051dba21dcf");
    assert_eq!(
        a.open_chat_id.as_deref(),
        Some("oc_5ad11d72b830411d72b836c20")
    );
    assert_eq!(a.tenant_key.as_deref(), Some("2ca1d211f64f6438"));
    assert_eq!(
        a.token.expose(),
        "c-295ee57216a5dc9de90fefd0aadb4b1d7d27b6e0"
    );
    assert_eq!(a.action.value, json!({"type": "leave"}));
    assert_eq!(a.action.tag.as_deref(), Some("button"));
    assert_eq!(a.refresh_token.as_deref(), Some("refresh-0001"));
    assert!(!format!("{a:?}").contains("c-295ee"));
    // Also without an Encrypt Key: legacy callbacks are never encrypted.
    assert!(matches!(
        verify(&plain(), &legacy_request(&body, TS), &body, NOW),
        Ok(Inbound::LegacyCardAction(_))
    ));
}

#[test]
fn challenges_plain_and_encrypted_are_answered() {
    let expected: Value =
        serde_json::from_slice(&fixture("response_url_verification.json")).unwrap();
    let body = fixture("event_url_verification_plain.json");
    for config in [plain(), keyed()] {
        let Inbound::Challenge(c) = verify(&config, &HeaderMap::new(), &body, NOW).unwrap() else {
            panic!("not a challenge");
        };
        assert_eq!(c.challenge, "ajls384kdjxxxx");
        let answer: Value = serde_json::from_str(&c.response_body()).unwrap();
        assert_eq!(answer, expected);
    }

    // The Node SDK's encrypted challenge, with its own key and token, unsigned.
    let config = WebhookConfig::new(
        VerificationToken::new("iRdCP2WwXNBXRM3mGLqhrgch3cn0gbT6"),
        Some(EncryptKey::new("mazhe.nerd")),
    );
    let body = fixture("event_url_verification_encrypted.json");
    let Inbound::Challenge(c) = verify(&config, &HeaderMap::new(), &body, NOW).unwrap() else {
        panic!("not a challenge");
    };
    assert_eq!(c.challenge, "5634b122-c042-4634-bc7f-b07a3c3e77ad");
    assert_eq!(
        challenge_response_body(&c.challenge),
        r#"{"challenge":"5634b122-c042-4634-bc7f-b07a3c3e77ad"}"#
    );

    // A signed challenge is accepted too, and its signature is checked.
    let (headers, body) =
        feishu_request(&keyed(), &fixture("event_url_verification_plain.json"), TS);
    assert!(matches!(
        verify(&keyed(), &headers, &body, NOW),
        Ok(Inbound::Challenge(_))
    ));
    let mut forged = headers.clone();
    forged.insert("x-lark-signature", "00".repeat(32).parse().unwrap());
    assert_eq!(
        verify(&keyed(), &forged, &body, NOW).unwrap_err(),
        WebhookError::SignatureMismatch
    );
}

#[test]
fn every_event_and_callback_fixture_is_covered() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let is_request = (name.starts_with("event_") || name.starts_with("callback_"))
            && !name.starts_with("callback_response_")
            && name.ends_with(".json");
        if !is_request {
            continue;
        }
        let body = fixture(&name);
        let inbound = match name.as_str() {
            "event_url_verification_encrypted.json" => verify(
                &WebhookConfig::new(
                    VerificationToken::new("iRdCP2WwXNBXRM3mGLqhrgch3cn0gbT6"),
                    Some(EncryptKey::new("mazhe.nerd")),
                ),
                &HeaderMap::new(),
                &body,
                NOW,
            ),
            "callback_card_legacy_leave.json" => {
                verify(&plain(), &legacy_request(&body, TS), &body, NOW)
            }
            _ => verify(&plain(), &stamped(), &body, NOW),
        }
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let kind = match inbound {
            Inbound::Challenge(_) => "challenge",
            Inbound::MessageReceive(_) => "message",
            Inbound::CardAction(_) => "card",
            Inbound::LegacyCardAction(_) => "legacy",
            Inbound::BotP2pChatEntered(_) => "p2p chat entered",
            Inbound::BotMenu(_) => "menu",
            Inbound::Event(_) => "event",
        };
        seen.push((name, kind));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("callback_card_action_trigger_leave.json".to_owned(), "card"),
            (
                "callback_card_action_trigger_second_button.json".to_owned(),
                "card"
            ),
            ("callback_card_legacy_leave.json".to_owned(), "legacy"),
            (
                "event_im_message_receive_group_mention.json".to_owned(),
                "message"
            ),
            ("event_im_message_receive_p2p.json".to_owned(), "message"),
            (
                "event_url_verification_encrypted.json".to_owned(),
                "challenge"
            ),
            ("event_url_verification_plain.json".to_owned(), "challenge"),
        ]
    );
}

#[test]
fn other_events_pass_through_without_the_token() {
    // The Go SDK's contact.user.created_v3 body, minus its challenge fields.
    let v2 = json!({
        "schema": "2.0",
        "header": { "event_id": "f7984f25108f8137722bb63cee927e66", "event_type": "contact.user.created_v3",
                    "app_id": "cli_xxxxxxxx", "tenant_key": "xxxxxxx", "create_time": "1603977298000000", "token": TOKEN },
        "event": { "object": { "open_id": "ou_7dab8a3d3cdcc9da365777c7ad535d62", "name": "张三" } }
    });
    let (headers, body) = feishu_request(&keyed(), v2.to_string().as_bytes(), TS);
    let Inbound::Event(e) = verify(&keyed(), &headers, &body, NOW).unwrap() else {
        panic!("not a pass-through event");
    };
    assert_eq!(e.schema, EventSchema::V2);
    assert_eq!(e.event_type, "contact.user.created_v3");
    assert_eq!(e.event_id, "f7984f25108f8137722bb63cee927e66");
    assert_eq!(e.raw["event"]["object"]["name"], "张三");
    assert!(e.raw["header"].get("token").is_none());

    // Schema 1.0, from the event overview.
    let v1 = json!({
        "ts": "1502199207.7171419", "uuid": "bc447199585340d1f3728d26b1c0297a", "token": TOKEN,
        "type": "event_callback",
        "event": { "app_id": "cli_9c8609450f78d102", "chat_id": "oc_26b66a5eb603162b849f91bcd8815b20",
                   "tenant_key": "736588c9260f175c", "type": "p2p_chat_create" }
    });
    let inbound = verify(&plain(), &stamped(), v1.to_string().as_bytes(), NOW).unwrap();
    assert_eq!(
        inbound.dedup_id().as_deref(),
        Some("bc447199585340d1f3728d26b1c0297a")
    );
    let Inbound::Event(e) = inbound else {
        panic!("not a pass-through event");
    };
    assert_eq!(e.schema, EventSchema::V1);
    assert_eq!(e.event_type, "p2p_chat_create");
    assert!(e.raw.get("token").is_none());
    assert!(!format!("{e:?}").contains(TOKEN));

    let mut wrong = v1.clone();
    wrong["token"] = json!("not-the-token");
    assert_eq!(
        verify(&plain(), &stamped(), wrong.to_string().as_bytes(), NOW).unwrap_err(),
        WebhookError::TokenMismatch
    );
}

#[test]
fn base64_function_url_body_is_accepted_identically() {
    use base64::Engine as _;
    let (headers, body) = p2p_request();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
    let decoded = decode_body(encoded.as_bytes(), true).unwrap();
    assert_eq!(&decoded[..], &body[..]);
    let a = verify(&keyed(), &headers, &decoded, NOW).unwrap();
    let b = verify(&keyed(), &headers, &decode_body(&body, false).unwrap(), NOW).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(
        a.dedup_id().as_deref(),
        Some("om_5ce6d572455d361153b7cb51da133945")
    );
    assert_eq!(
        decode_body(b"not base64!", true).unwrap_err(),
        WebhookError::BodyBase64
    );
}

// ---------- rejections ----------

#[test]
fn wrong_verification_token_is_rejected() {
    // Signed with the right key, but the decrypted header.token differs from the configured one.
    let (headers, body) = p2p_request();
    let config = WebhookConfig::new(
        VerificationToken::new("another-token"),
        Some(EncryptKey::new(KEY)),
    );
    let err = verify(&config, &headers, &body, NOW).unwrap_err();
    assert_eq!(err, WebhookError::TokenMismatch);
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);

    let other = WebhookConfig::new(VerificationToken::new("another-token"), None);
    for file in [
        "event_im_message_receive_p2p.json",
        "callback_card_action_trigger_leave.json",
        "event_url_verification_plain.json",
    ] {
        assert_eq!(
            verify(&other, &stamped(), &fixture(file), NOW).unwrap_err(),
            WebhookError::TokenMismatch,
            "{file}"
        );
    }
    // The legacy SHA-1 is keyed by the token, so a wrong token is a signature mismatch.
    let body = fixture("raw/callback_card_legacy_leave.json");
    assert_eq!(
        verify(&other, &legacy_request(&body, TS), &body, NOW).unwrap_err(),
        WebhookError::SignatureMismatch
    );
}

#[test]
fn replay_window_bounds_signed_requests() {
    let (headers, body) = p2p_request();
    let window_ms = 8 * 3600 * 1000;
    assert!(
        verify(&keyed(), &headers, &body, NOW + window_ms).is_ok(),
        "retry at 8 h"
    );
    for now in [NOW + window_ms + 1000, NOW - 6 * 60 * 1000] {
        let err = verify(&keyed(), &headers, &body, now).unwrap_err();
        assert_eq!(err, WebhookError::StaleTimestamp, "now {now}");
        assert_eq!(err.status(), 401);
        assert_eq!(err.reason(), "stale timestamp");
    }
    assert!(
        verify(&keyed(), &headers, &body, NOW - 4 * 60 * 1000).is_ok(),
        "small skew"
    );

    // A shorter configured window applies.
    let mut short = keyed();
    short.replay_window = std::time::Duration::from_secs(3600);
    assert_eq!(
        verify(&short, &headers, &body, NOW + 3601 * 1000).unwrap_err(),
        WebhookError::StaleTimestamp
    );

    // Legacy callbacks are held to the same window.
    let legacy = fixture("raw/callback_card_legacy_leave.json");
    assert_eq!(
        verify(
            &plain(),
            &legacy_request(&legacy, TS),
            &legacy,
            NOW + window_ms + 1000
        )
        .unwrap_err(),
        WebhookError::StaleTimestamp
    );

    // Unencrypted mode: the timestamp is held to the same window.
    let mut stale = HeaderMap::new();
    stale.insert("x-lark-request-timestamp", "1700000000".parse().unwrap());
    assert_eq!(
        verify(
            &plain(),
            &stale,
            &fixture("event_im_message_receive_p2p.json"),
            NOW
        )
        .unwrap_err(),
        WebhookError::StaleTimestamp
    );
}

/// Unencrypted mode (an opt-in): nothing is signed, so every plain request but the challenge must
/// carry `X-Lark-Request-Timestamp` inside the replay window, or it is a 401.
#[test]
fn unencrypted_mode_requires_a_timestamp_on_every_plain_request() {
    let window_ms = 8 * 3600 * 1000;
    for file in [
        "event_im_message_receive_p2p.json",
        "event_im_message_receive_group_mention.json",
        "callback_card_action_trigger_leave.json",
    ] {
        let body = fixture(file);
        let err = verify(&plain(), &HeaderMap::new(), &body, NOW).unwrap_err();
        assert_eq!(
            err,
            WebhookError::MissingHeader("x-lark-request-timestamp"),
            "{file}"
        );
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(err.reason(), "missing timestamp header");
        // Other headers do not stand in for it.
        let mut unstamped = signed_headers(TS, "00");
        unstamped.remove("X-Lark-Request-Timestamp");
        assert_eq!(
            verify(&plain(), &unstamped, &body, NOW).unwrap_err(),
            WebhookError::MissingHeader("x-lark-request-timestamp")
        );
        assert!(verify(&plain(), &stamped(), &body, NOW).is_ok(), "{file}");
        assert!(verify(&plain(), &stamped(), &body, NOW + window_ms).is_ok());
        // A replay after the window (and after its dedup record expired) is refused.
        assert_eq!(
            verify(&plain(), &stamped(), &body, NOW + 24 * 3600 * 1000).unwrap_err(),
            WebhookError::StaleTimestamp
        );
        let mut bad = HeaderMap::new();
        bad.insert(
            "X-Lark-Request-Timestamp",
            http::HeaderValue::from_bytes(b"\xff1732233600").unwrap(),
        );
        assert_eq!(
            verify(&plain(), &bad, &body, NOW).unwrap_err(),
            WebhookError::InvalidTimestamp
        );
    }
    // The challenge comes without one and is still answered (its token is checked).
    let challenge = fixture("event_url_verification_plain.json");
    assert!(matches!(
        verify(&plain(), &HeaderMap::new(), &challenge, NOW),
        Ok(Inbound::Challenge(_))
    ));
    // Legacy card callbacks keep their own rule: SHA-1 signed, timestamp required.
    let legacy = fixture("raw/callback_card_legacy_leave.json");
    assert!(matches!(
        verify(&plain(), &legacy_request(&legacy, TS), &legacy, NOW),
        Ok(Inbound::LegacyCardAction(_))
    ));
}

#[test]
fn timestamps_that_are_not_epoch_seconds_are_rejected() {
    let body = fixture("raw/event_im_message_receive_p2p_encrypted.json");
    for ts in [
        "",
        "abc",
        "1732233600.5",
        "-1732233600",
        "99999999999999999999999",
    ] {
        let key = EncryptKey::new(KEY);
        let headers = signed_headers(ts, &signature_sha256(ts, NONCE, &key, &body));
        assert_eq!(
            verify(&keyed(), &headers, &body, NOW).unwrap_err(),
            WebhookError::InvalidTimestamp,
            "{ts:?}"
        );
    }
}

#[test]
fn oversized_body_is_rejected_first() {
    let (headers, body) = p2p_request();
    let mut tight = keyed();
    tight.max_body_bytes = body.len() - 1;
    let err = verify(&tight, &headers, &body, NOW).unwrap_err();
    assert_eq!(
        err,
        WebhookError::BodyTooLarge {
            len: body.len(),
            limit: body.len() - 1
        }
    );
    assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    tight.max_body_bytes = body.len();
    assert!(
        verify(&tight, &headers, &body, NOW).is_ok(),
        "exactly at the limit"
    );

    // Default 256 KiB, checked before anything else (no headers, not JSON).
    let big = vec![b' '; feishu_kit::config::DEFAULT_MAX_BODY_BYTES + 1];
    assert_eq!(
        verify(&plain(), &stamped(), &big, NOW)
            .unwrap_err()
            .status(),
        413
    );
}

#[test]
fn broken_json_is_a_bad_request() {
    let (headers, _) = p2p_request();
    for body in [
        &b"{\"encrypt\":"[..],
        b"",
        b"[1,2]",
        b"\"encrypt\"",
        b"\xff\xfe{}",
    ] {
        let err = verify(&keyed(), &headers, body, NOW).unwrap_err();
        assert_eq!(err, WebhookError::MalformedJson, "{body:?}");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
    // A decrypted body that is not JSON.
    let config = keyed();
    let (headers, body) = feishu_request(&config, b"hello world", TS);
    assert_eq!(
        verify(&config, &headers, &body, NOW).unwrap_err(),
        WebhookError::MalformedJson
    );
}

#[test]
fn missing_signature_headers_are_rejected() {
    let (headers, body) = p2p_request();
    for (remove, expected) in [
        (
            "X-Lark-Signature",
            WebhookError::MissingHeader("x-lark-signature"),
        ),
        (
            "X-Lark-Request-Timestamp",
            WebhookError::MissingHeader("x-lark-request-timestamp"),
        ),
        (
            "X-Lark-Request-Nonce",
            WebhookError::MissingHeader("x-lark-request-nonce"),
        ),
    ] {
        let mut h = headers.clone();
        h.remove(remove);
        let err = verify(&keyed(), &h, &body, NOW).unwrap_err();
        assert_eq!(err, expected, "without {remove}");
        assert_eq!(err.status(), 401);
    }
    // Legacy callbacks without a signature.
    let legacy = fixture("raw/callback_card_legacy_leave.json");
    assert_eq!(
        verify(&plain(), &stamped(), &legacy, NOW).unwrap_err(),
        WebhookError::MissingHeader("x-lark-signature")
    );
}

#[test]
fn header_names_are_case_insensitive() {
    let (_, body) = p2p_request();
    let mut headers = HeaderMap::new();
    headers.insert("x-LARK-request-TIMESTAMP", TS.parse().unwrap());
    headers.insert("X-LARK-REQUEST-NONCE", NONCE.parse().unwrap());
    headers.insert("x-lark-signature", P2P_SIGNATURE.parse().unwrap());
    assert!(verify(&keyed(), &headers, &body, NOW).is_ok());
    // Uppercase hex is not what Feishu sends: the comparison is exact.
    headers.insert(
        "x-lark-signature",
        P2P_SIGNATURE.to_uppercase().parse().unwrap(),
    );
    assert_eq!(
        verify(&keyed(), &headers, &body, NOW).unwrap_err(),
        WebhookError::SignatureMismatch
    );
}

#[test]
fn unsigned_encrypted_body_never_reveals_decrypt_errors() {
    // Without a signature only a challenge is accepted; bad base64, padding or a non-challenge event
    // all give the same 401, so the endpoint is no padding oracle.
    let body = fixture("raw/event_im_message_receive_p2p_encrypted.json");
    for body in [
        body,
        br#"{"encrypt":"%%%-not-base64-%%%"}"#.to_vec(),
        br#"{"encrypt":"Dx4tPEtaaXiHlqW0w9Lh8A=="}"#.to_vec(),
    ] {
        assert_eq!(
            verify(&keyed(), &HeaderMap::new(), &body, NOW).unwrap_err(),
            WebhookError::MissingHeader("x-lark-signature")
        );
    }
    // An unsigned encrypted challenge with the wrong token.
    let challenge = fixture("raw/event_url_verification_encrypted_test_key.json");
    let other = WebhookConfig::new(
        VerificationToken::new("another-token"),
        Some(EncryptKey::new(KEY)),
    );
    assert_eq!(
        verify(&other, &HeaderMap::new(), &challenge, NOW).unwrap_err(),
        WebhookError::TokenMismatch
    );
}

#[test]
fn key_and_body_style_must_agree() {
    let (headers, body) = p2p_request();
    let err = verify(&plain(), &headers, &body, NOW).unwrap_err();
    assert_eq!(err, WebhookError::EncryptedBodyWithoutKey);
    assert_eq!(err.status(), 400);

    let err = verify(
        &keyed(),
        &HeaderMap::new(),
        &fixture("event_im_message_receive_p2p.json"),
        NOW,
    )
    .unwrap_err();
    assert_eq!(err, WebhookError::PlainBodyWithKey);
    assert_eq!(err.status(), 400);
}

#[test]
fn malformed_events_are_bad_requests() {
    let cases = [
        (
            json!({"schema": "2.0", "header": {"event_id": "e", "event_type": "x"}}),
            WebhookError::MissingField("header.token"),
        ),
        (
            json!({"schema": "2.0", "header": {"token": TOKEN, "event_id": "e"}}),
            WebhookError::MissingField("header.event_type"),
        ),
        (
            json!({"type": "url_verification", "token": TOKEN}),
            WebhookError::MissingField("challenge"),
        ),
        (json!({"hello": "world"}), WebhookError::UnknownBodyShape),
        (json!({"encrypt": 5}), WebhookError::MissingField("encrypt")),
    ];
    for (body, expected) in cases {
        let (config, headers) = if body.get("encrypt").is_some() {
            (keyed(), HeaderMap::new())
        } else {
            (plain(), stamped())
        };
        let err = verify(&config, &headers, body.to_string().as_bytes(), NOW).unwrap_err();
        assert_eq!(err, expected, "{body}");
        assert_eq!(err.status(), 400);
    }

    // A message whose content is not a JSON string: typed parse fails, no value is echoed.
    let mut msg: Value =
        serde_json::from_slice(&fixture("event_im_message_receive_p2p.json")).unwrap();
    msg["event"]["message"]["content"] = json!("secret-looking {not json");
    let err = verify(&plain(), &stamped(), msg.to_string().as_bytes(), NOW).unwrap_err();
    assert!(
        matches!(
            err,
            WebhookError::MalformedEvent {
                event_type: "im.message.receive_v1",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("secret-looking"));

    // A mistyped string field: serde would quote the value; the error keeps none of it.
    let mut click: Value =
        serde_json::from_slice(&fixture("callback_card_action_trigger_leave.json")).unwrap();
    click["event"]["action"]["checked"] = json!("c-update-token-lookalike");
    let err = verify(&plain(), &stamped(), click.to_string().as_bytes(), NOW).unwrap_err();
    assert!(
        matches!(
            err,
            WebhookError::MalformedEvent {
                event_type: "card.action.trigger",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("lookalike"), "{err}");
}

#[test]
fn decrypt_errors_keep_their_kind_after_a_valid_signature() {
    // Valid base64 and length, but the plaintext bytes are not UTF-8.
    let key = EncryptKey::new(KEY);
    let garbled = {
        use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
        use base64::Engine as _;
        use sha2::Digest as _;
        let aes_key: [u8; 32] = sha2::Sha256::digest(KEY.as_bytes()).into();
        let ct = cbc::Encryptor::<aes::Aes256>::new(&aes_key.into(), &[1u8; 16].into())
            .encrypt_padded_vec_mut::<Pkcs7>(b"\xff\xfe\xfd");
        let mut raw = vec![1u8; 16];
        raw.extend(ct);
        base64::engine::general_purpose::STANDARD.encode(raw)
    };
    assert_eq!(
        feishu_kit::webhook::decrypt(&key, &garbled),
        Err(DecryptError::Utf8)
    );
    let body = json!({ "encrypt": garbled }).to_string();
    let headers = signed_headers(TS, &signature_sha256(TS, NONCE, &key, body.as_bytes()));
    assert_eq!(
        verify(&keyed(), &headers, body.as_bytes(), NOW).unwrap_err(),
        WebhookError::Decrypt(DecryptError::Utf8)
    );
}

#[test]
fn errors_never_echo_secrets() {
    let errors = [
        WebhookError::BodyTooLarge { len: 2, limit: 1 },
        WebhookError::BodyBase64,
        WebhookError::MalformedJson,
        WebhookError::MissingField("header.token"),
        WebhookError::UnknownBodyShape,
        WebhookError::EncryptedBodyWithoutKey,
        WebhookError::PlainBodyWithKey,
        WebhookError::Decrypt(DecryptError::Base64),
        WebhookError::Decrypt(DecryptError::CiphertextLength),
        WebhookError::Decrypt(DecryptError::Padding),
        WebhookError::Decrypt(DecryptError::Utf8),
        WebhookError::MissingHeader("x-lark-signature"),
        WebhookError::MissingHeader("x-lark-request-timestamp"),
        WebhookError::InvalidTimestamp,
        WebhookError::StaleTimestamp,
        WebhookError::SignatureMismatch,
        WebhookError::TokenMismatch,
    ];
    let mut reasons = std::collections::HashSet::new();
    for err in errors {
        let text = format!("{err} {err:?} {}", err.reason());
        assert!(!text.contains(KEY) && !text.contains(TOKEN), "{text}");
        assert!(matches!(err.status().as_u16(), 400 | 401 | 413));
        assert!(
            reasons.insert(err.reason()),
            "reason {} is not distinct",
            err.reason()
        );
    }
}

/// The welcome and menu events arrive typed (the payloads of `approval-apis.md` §3, §4), with ids
/// that need a scope left optional: a malformed one is the bot's to answer, not a 4xx that Feishu
/// would retry for hours.
#[test]
fn p2p_chat_entered_and_menu_events_are_typed() {
    let envelope = |event_type: &str, event: serde_json::Value| {
        serde_json::to_vec(&json!({
            "schema": "2.0",
            "header": {
                "event_id": format!("ev_{event_type}"),
                "event_type": event_type,
                "create_time": "1608725989000",
                "token": TOKEN,
                "app_id": "cli_9f5343c580712544",
                "tenant_key": "2ca1d211f64f6438"
            },
            "event": event
        }))
        .unwrap()
    };
    let entered = envelope(
        "im.chat.access_event.bot_p2p_chat_entered_v1",
        json!({
            "chat_id": "oc_413871888e0d5492e25b173f0812efb7",
            "operator_id": {"open_id": "ou_84aad35d084aa403a838cf73ee18467", "user_id": "e33ggbyz"},
            "last_message_id": "om_dc13264520392913993dd051dba21dcf"
        }),
    );
    let Inbound::BotP2pChatEntered(e) = verify(&plain(), &stamped(), &entered, NOW).unwrap() else {
        panic!("not typed");
    };
    assert_eq!(
        e.event.chat_id.as_deref(),
        Some("oc_413871888e0d5492e25b173f0812efb7")
    );
    assert_eq!(
        e.event.operator_id.open_id.as_deref(),
        Some("ou_84aad35d084aa403a838cf73ee18467")
    );
    let menu = envelope(
        "application.bot.menu_v6",
        json!({
            "operator": {"operator_name": "Tom", "operator_id": {"open_id": "ou_84aad35d084aa403a838cf73ee18467"}},
            "event_key": "start",
            "timestamp": 1669364458
        }),
    );
    let inbound = verify(&plain(), &stamped(), &menu, NOW).unwrap();
    assert_eq!(
        inbound.dedup_id().as_deref(),
        Some("ev_application.bot.menu_v6")
    );
    let Inbound::BotMenu(m) = inbound else {
        panic!("not typed");
    };
    assert_eq!(m.event.event_key, "start");
    assert_eq!(
        m.event.operator.operator_id.open_id.as_deref(),
        Some("ou_84aad35d084aa403a838cf73ee18467")
    );
    let bare = envelope("application.bot.menu_v6", json!({}));
    let Inbound::BotMenu(m) = verify(&plain(), &stamped(), &bare, NOW).unwrap() else {
        panic!("a menu event without its fields is still a menu event");
    };
    assert!(m.event.operator.operator_id.open_id.is_none());
    // Fields of the wrong type: passed through untyped, for the bot to answer 200, never a 4xx.
    for (event_type, event) in [
        (
            "application.bot.menu_v6",
            json!({"event_key": null, "operator": null}),
        ),
        (
            "application.bot.menu_v6",
            json!({"operator": {"operator_id": 5}}),
        ),
        (
            "im.chat.access_event.bot_p2p_chat_entered_v1",
            json!({"chat_id": 5}),
        ),
        (
            "im.chat.access_event.bot_p2p_chat_entered_v1",
            json!({"operator_id": null}),
        ),
    ] {
        let body = envelope(event_type, event.clone());
        match verify(&plain(), &stamped(), &body, NOW) {
            Ok(Inbound::Event(other)) => assert_eq!(other.event_type, event_type),
            other => panic!("{event}: {other:?}"),
        }
    }
}
