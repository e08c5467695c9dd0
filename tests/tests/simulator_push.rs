//! Feishu's side: crypto vectors, events and card callbacks posted to a bot, delayed updates, live interactions.

mod simulator_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cardbot_tests::simulator::{crypto, ChatKind, RateLimits, Sender, SimConfig};
use serde_json::{json, Value};
use simulator_support::{answer, approval_card, text_card, Api, Handler, Receiver};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/feishu");

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()).unwrap()
}

async fn receiver(api: &Api, handler: Handler) -> Receiver {
    let cfg = api.sim.config();
    Receiver::start(
        cfg.encrypt_key.clone(),
        cfg.verification_token.clone(),
        handler,
    )
    .await
}

#[test]
fn encryption_and_signatures_match_the_fixture_vectors() {
    let vectors = fixture("vectors.json");
    for v in vectors["request_vectors"].as_array().unwrap() {
        let iv: [u8; 16] = hex::decode(v["iv_hex"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let key = v["encrypt_key"].as_str().unwrap();
        let encrypt = crypto::encrypt_with_iv(key, iv, v["plaintext"].as_str().unwrap().as_bytes());
        assert_eq!(encrypt, v["encrypt"].as_str().unwrap(), "{}", v["name"]);
        let body = v["body"].as_str().unwrap();
        assert_eq!(body, json!({"encrypt": encrypt}).to_string());
        let raw = std::fs::read_to_string(format!(
            "{FIXTURES}/{}",
            v["raw_body_file"].as_str().unwrap()
        ))
        .unwrap();
        assert_eq!(raw, body);
        if let Some(sig) = v["headers"]["X-Lark-Signature"].as_str() {
            let h = &v["headers"];
            let got = crypto::sign_sha256(
                h["X-Lark-Request-Timestamp"].as_str().unwrap(),
                h["X-Lark-Request-Nonce"].as_str().unwrap(),
                key,
                body.as_bytes(),
            );
            assert_eq!(got, sig, "{}", v["name"]);
        }
    }
    for v in vectors["legacy_signature_vectors"].as_array().unwrap() {
        let h = &v["headers"];
        let got = crypto::sign_sha1(
            h["X-Lark-Request-Timestamp"].as_str().unwrap(),
            h["X-Lark-Request-Nonce"].as_str().unwrap(),
            v["verification_token"].as_str().unwrap(),
            v["body"].as_str().unwrap().as_bytes(),
        );
        assert_eq!(got, h["X-Lark-Signature"].as_str().unwrap());
    }
    for v in vectors["signature_examples"].as_array().unwrap() {
        let (ts, nonce, key, body) = (
            v["timestamp"].as_str().unwrap(),
            v["nonce"].as_str().unwrap(),
            v["key"].as_str().unwrap(),
            v["body"].as_str().unwrap().as_bytes(),
        );
        let got = match v["algorithm"].as_str().unwrap() {
            "sha256" => crypto::sign_sha256(ts, nonce, key, body),
            _ => crypto::sign_sha1(ts, nonce, key, body),
        };
        assert_eq!(got, v["signature"].as_str().unwrap(), "{}", v["name"]);
    }
    // The official 'test key' vector round-trips through the test-side decryption.
    let first = &vectors["decrypt_vectors"][0];
    let iv: [u8; 16] = hex::decode(first["iv_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        crypto::encrypt_with_iv("test key", iv, b"hello world"),
        first["encrypt"].as_str().unwrap()
    );
}

#[tokio::test]
async fn p2p_message_is_stored_encrypted_signed_and_shaped_like_the_fixture() {
    let api = Api::start().await;
    let bot = receiver(&api, answer(200, json!({"msg": "success"}))).await;
    let d = api
        .sim
        .send_user_message(&bot.url, ChatKind::P2p, "审批")
        .await;
    assert!(d.ok(), "{d:?}");
    let got = bot.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].signature_ok, Some(true));
    let raw: Value = serde_json::from_str(&got[0].raw_body).unwrap();
    assert!(
        raw["encrypt"].is_string() && raw.as_object().unwrap().len() == 1,
        "encrypted body"
    );
    let ev = &got[0].plaintext;
    let fx = fixture("event_im_message_receive_p2p.json");
    assert_eq!(ev["schema"], fx["schema"]);
    assert_eq!(ev["header"]["event_type"], fx["header"]["event_type"]);
    assert_eq!(ev["header"]["token"], fx["header"]["token"]);
    assert_eq!(ev["header"]["app_id"], fx["header"]["app_id"]);
    assert_eq!(ev["event"]["sender"], fx["event"]["sender"]);
    assert_eq!(
        ev["event"]["message"]["chat_id"],
        fx["event"]["message"]["chat_id"]
    );
    assert_eq!(ev["event"]["message"]["chat_type"], "p2p");
    assert_eq!(
        ev["event"]["message"]["content"],
        fx["event"]["message"]["content"]
    );
    let mid = ev["event"]["message"]["message_id"].as_str().unwrap();
    assert!(mid.starts_with("om_"));
    assert_eq!(d.message_id.as_deref(), Some(mid));
    let stored = api.sim.message(mid).unwrap();
    assert_eq!(
        stored.sender,
        Sender::User {
            open_id: api.sim.config().user_open_id.clone()
        }
    );
    assert_eq!(stored.content, r#"{"text":"审批"}"#);
    // Each push has its own IV and event id.
    let d2 = api
        .sim
        .send_user_message(&bot.url, ChatKind::P2p, "审批")
        .await;
    assert_ne!(d2.body, d.body);
    assert_ne!(
        d2.plaintext["header"]["event_id"],
        d.plaintext["header"]["event_id"]
    );
}

#[tokio::test]
async fn group_message_mentions_the_bot_and_plain_mode_sends_plain_json() {
    let api = Api::start_with(SimConfig {
        encrypt_key: None,
        rate_limits: RateLimits::disabled(),
        ..SimConfig::default()
    })
    .await;
    let bot = receiver(&api, answer(200, json!({}))).await;
    api.sim
        .send_user_message(&bot.url, ChatKind::Group, "审批")
        .await;
    let got = bot.received();
    let raw: Value = serde_json::from_str(&got[0].raw_body).unwrap();
    assert_eq!(raw["schema"], "2.0", "plain JSON without an Encrypt Key");
    let msg = &raw["event"]["message"];
    assert_eq!(msg["chat_type"], "group");
    assert_eq!(msg["chat_id"], api.sim.config().group_chat_id.as_str());
    assert_eq!(msg["content"], r#"{"text":"@_user_1 审批"}"#);
    assert_eq!(msg["mentions"][0]["key"], "@_user_1");
    assert_eq!(
        msg["mentions"][0]["id"]["open_id"],
        api.sim.config().bot_open_id.as_str()
    );
}

#[tokio::test]
async fn url_verification_is_encrypted_and_unsigned() {
    let api = Api::start().await;
    let handler: Handler = Arc::new(|r| {
        let challenge = r.plaintext["challenge"].as_str().unwrap_or("").to_owned();
        Box::pin(async move { (200, json!({"challenge": challenge}).to_string()) })
    });
    let bot = receiver(&api, handler).await;
    let d = api.sim.url_verification(&bot.url, "ajls384kdjxxxx").await;
    assert_eq!(d.response_json.unwrap()["challenge"], "ajls384kdjxxxx");
    let got = bot.received();
    assert_eq!(got[0].signature_ok, None, "no signature headers");
    assert_eq!(
        got[0].plaintext,
        fixture("event_url_verification_plain.json")
    );
}

#[tokio::test]
async fn click_posts_card_action_trigger_and_applies_the_answer_card() {
    let api = Api::start().await;
    let mid = api.send_card(&approval_card()).await;
    let resp = json!({"toast": {"type": "success", "content": "已提交"}, "card": {"type": "raw", "data": text_card("请假", "已提交，等待审批")}});
    let bot = receiver(&api, answer(200, resp)).await;
    let cb = api
        .sim
        .click_card(&bot.url, &mid, json!({"type": "leave"}))
        .await
        .unwrap();
    assert_eq!(cb.client_error, None);
    assert!(cb.card_updated);
    assert_eq!(cb.toast.as_ref().unwrap()["content"], "已提交");
    let got = bot.received();
    assert_eq!(got[0].signature_ok, Some(true));
    let ev = &got[0].plaintext;
    let fx = fixture("callback_card_action_trigger_leave.json");
    assert_eq!(ev["header"]["event_type"], "card.action.trigger");
    assert_eq!(ev["header"]["token"], fx["header"]["token"]);
    assert_eq!(ev["event"]["operator"], fx["event"]["operator"]);
    assert_eq!(ev["event"]["action"], fx["event"]["action"]);
    assert_eq!(ev["event"]["context"]["open_message_id"], mid.as_str());
    assert_eq!(ev["event"]["token"], cb.update_token.as_str());
    assert!(cb.update_token.starts_with("c-"));
    let card = api.sim.card(&mid).unwrap();
    assert_eq!(card.text, "# 请假\n已提交，等待审批");
    assert_eq!(card.history.last().unwrap().via, "callback");
    assert!(api
        .sim
        .update_token(&cb.update_token)
        .unwrap()
        .answered_at_ms
        .is_some());
}

#[tokio::test]
async fn callback_answers_that_the_client_rejects() {
    let api = Api::start_with(SimConfig {
        push_deadline: Duration::from_millis(300),
        rate_limits: RateLimits::disabled(),
        ..SimConfig::default()
    })
    .await;
    let mid = api.send_card(&approval_card()).await;
    let to_v1 = receiver(&api, answer(200, json!({"card": {"type": "raw", "data": {"elements": [{"tag": "div", "text": {"tag": "plain_text", "content": "v1"}}]}}}))).await;
    assert_eq!(
        api.sim
            .click_card(&to_v1.url, &mid, json!({}))
            .await
            .unwrap()
            .client_error,
        Some(200830)
    );
    let status_500 = receiver(&api, answer(500, json!({}))).await;
    let cb = api
        .sim
        .click_card(&status_500.url, &mid, json!({}))
        .await
        .unwrap();
    assert_eq!(cb.client_error, Some(200671));
    assert_eq!(
        api.sim
            .update_token(&cb.update_token)
            .unwrap()
            .answered_at_ms,
        None
    );
    let slow: Handler = Arc::new(|_| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            (200, "{}".to_owned())
        })
    });
    let slow = receiver(&api, slow).await;
    assert_eq!(
        api.sim
            .click_card(&slow.url, &mid, json!({}))
            .await
            .unwrap()
            .client_error,
        Some(200341)
    );
    assert_eq!(
        api.sim.card(&mid).unwrap().history.len(),
        1,
        "the card never changed"
    );
}

#[tokio::test]
async fn legacy_click_is_sha1_signed_and_its_card_body_applies() {
    let api = Api::start().await;
    let v1 = json!({"config": {"update_multi": true}, "header": {"title": {"tag": "plain_text", "content": "审批"}}, "elements": [{"tag": "action", "actions": [{"tag": "button", "text": {"tag": "plain_text", "content": "请假"}, "value": {"type": "leave"}}]}]});
    let mid = api.send_card(&v1).await;
    assert_eq!(api.sim.card_text(&mid).unwrap(), "# 审批\n[请假]");
    let reply = json!({"toast": {"type": "success", "content": "已同意"}, "config": {"update_multi": true}, "header": {"title": {"tag": "plain_text", "content": "请假通过"}}, "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "**已同意**"}}]});
    let bot = receiver(&api, answer(200, reply)).await;
    let cb = api
        .sim
        .click_card_legacy(&bot.url, &mid, json!({"type": "leave"}))
        .await
        .unwrap();
    let got = bot.received();
    assert_eq!(
        got[0].signature_ok,
        Some(true),
        "SHA-1 over ts + nonce + verification token + body"
    );
    let fx = fixture("callback_card_legacy_leave.json");
    let body = &got[0].plaintext;
    for k in ["open_id", "user_id", "open_chat_id", "tenant_key", "action"] {
        assert_eq!(body[k], fx[k], "{k}");
    }
    assert!(got[0].headers.get("x-refresh-token").is_some());
    assert!(cb.card_updated);
    assert_eq!(api.sim.card_text(&mid).unwrap(), "# 请假通过\n**已同意**");
    assert!(api.sim.card(&mid).unwrap().card.get("toast").is_none());
}

#[tokio::test]
async fn streaming_cards_ignore_the_callback_card() {
    let api = Api::start().await;
    let id = api.create_entity(&approval_card()).await;
    let mid = api.send_entity(&id).await;
    api.call(
        "PATCH",
        &format!("/open-apis/cardkit/v1/cards/{id}/settings"),
        json!({"settings": json!({"config": {"streaming_mode": true}}).to_string(), "sequence": 1}),
    )
    .await
    .ok();
    let bot = receiver(
        &api,
        answer(
            200,
            json!({"card": {"type": "raw", "data": text_card("x", "y")}}),
        ),
    )
    .await;
    let cb = api.sim.click_card(&bot.url, &mid, json!({})).await.unwrap();
    assert!(!cb.card_updated);
    assert_eq!(
        api.sim.card_text(&mid).unwrap(),
        "# 审批\n请选择需要的操作\n[加班] [请假]"
    );
}

async fn delayed(api: &Api, token: &str, card: Value) -> simulator_support::Reply {
    api.call(
        "POST",
        "/open-apis/interactive/v1/card/update",
        json!({"token": token, "card": card}),
    )
    .await
}

#[tokio::test]
async fn delayed_update_token_two_uses_after_the_answer() {
    let api = Api::start().await;
    let mid = api.send_card(&approval_card()).await;
    let bot = receiver(&api, answer(200, json!({}))).await;
    let cb = api
        .sim
        .click_card(&bot.url, &mid, json!({"type": "leave"}))
        .await
        .unwrap();
    let r = delayed(&api, &cb.update_token, text_card("请假通过", "第一次")).await;
    assert_eq!(r.body, json!({"code": 0, "msg": "ok"}));
    assert_eq!(api.sim.card_text(&mid).unwrap(), "# 请假通过\n第一次");
    delayed(&api, &cb.update_token, text_card("请假通过", "第二次"))
        .await
        .ok();
    delayed(&api, &cb.update_token, text_card("请假通过", "第三次"))
        .await
        .err(300040);
    assert_eq!(api.sim.card_text(&mid).unwrap(), "# 请假通过\n第二次");
    assert_eq!(api.sim.update_token(&cb.update_token).unwrap().uses, 2);
    delayed(&api, "not-a-token", text_card("a", "b"))
        .await
        .err(300020);
    delayed(&api, "c-unknown", text_card("a", "b"))
        .await
        .err(300030);
}

#[tokio::test]
async fn delayed_update_token_expires_after_30_minutes() {
    let api = Api::start().await;
    let mid = api.send_card(&approval_card()).await;
    let bot = receiver(&api, answer(200, json!({}))).await;
    let cb = api.sim.click_card(&bot.url, &mid, json!({})).await.unwrap();
    api.sim.advance(Duration::from_secs(29 * 60));
    delayed(&api, &cb.update_token, text_card("a", "b"))
        .await
        .ok();
    api.sim.advance(Duration::from_secs(2 * 60));
    delayed(&api, &cb.update_token, text_card("a", "c"))
        .await
        .err(300030);
}

/// A bot that, inside the callback, calls the simulator and records the answer code, then answers `{}`.
fn calls_back_during_interaction(
    base: String,
    token: String,
    what: &'static str,
    card_id: Option<String>,
    seen: Arc<Mutex<Vec<i64>>>,
) -> Handler {
    Arc::new(move |r| {
        let (base, token, seen, card_id) =
            (base.clone(), token.clone(), seen.clone(), card_id.clone());
        Box::pin(async move {
            let http = reqwest::Client::new();
            let update_token = r.plaintext["event"]["token"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let mid = r.plaintext["event"]["context"]["open_message_id"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let req = match what {
                "delayed" => http
                    .post(format!("{base}/open-apis/interactive/v1/card/update"))
                    .json(&json!({"token": update_token, "card": text_card("a", "b")})),
                "cardkit" => http
                    .patch(format!(
                        "{base}/open-apis/cardkit/v1/cards/{}/settings",
                        card_id.unwrap_or_default()
                    ))
                    .json(&json!({"settings": "{\"config\":{}}", "sequence": 1})),
                _ => http
                    .patch(format!("{base}/open-apis/im/v1/messages/{mid}"))
                    .json(&json!({"content": text_card("a", "b").to_string()})),
            };
            let body: Value = req
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            seen.lock().unwrap().push(body["code"].as_i64().unwrap());
            (200, "{}".to_owned())
        })
    })
}

#[tokio::test]
async fn updates_during_a_live_callback_fail_and_work_after_the_answer() {
    let api = Api::start().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    // Delayed update before the answer: 200810 (the simulator's choice for "fails or reverts").
    let mid = api.send_card(&approval_card()).await;
    let bot = receiver(
        &api,
        calls_back_during_interaction(
            api.sim.base_url(),
            api.token.clone(),
            "delayed",
            None,
            seen.clone(),
        ),
    )
    .await;
    let cb = api.sim.click_card(&bot.url, &mid, json!({})).await.unwrap();
    delayed(&api, &cb.update_token, text_card("after", "answer"))
        .await
        .ok();
    // CardKit write on the entity of the clicked card: 200810.
    let id = api.create_entity(&approval_card()).await;
    let emid = api.send_entity(&id).await;
    let bot = receiver(
        &api,
        calls_back_during_interaction(
            api.sim.base_url(),
            api.token.clone(),
            "cardkit",
            Some(id.clone()),
            seen.clone(),
        ),
    )
    .await;
    api.sim
        .click_card(&bot.url, &emid, json!({}))
        .await
        .unwrap();
    api.call(
        "PATCH",
        &format!("/open-apis/cardkit/v1/cards/{id}/settings"),
        json!({"settings": "{\"config\":{}}", "sequence": 1}),
    )
    .await
    .ok();
    // Message PATCH of a JSON 2.0 card: 230099 (card action is lock, 11310).
    let bot = receiver(
        &api,
        calls_back_during_interaction(
            api.sim.base_url(),
            api.token.clone(),
            "patch",
            None,
            seen.clone(),
        ),
    )
    .await;
    api.sim.click_card(&bot.url, &mid, json!({})).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![200810, 200810, 230099]);
}
