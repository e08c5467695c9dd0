//! The `/_sim/...` control API, driven only over HTTP as an out-of-process test would.

mod simulator_support;

use serde_json::{json, Value};
use simulator_support::{answer, approval_card, Api, Receiver};

async fn sim(api: &Api, method: &str, path: &str, body: Value) -> Value {
    let r = api
        .call_as(None, method, &format!("/_sim/{path}"), body.to_string())
        .await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.body
}

#[tokio::test]
async fn control_api_drives_clock_faults_pushes_and_state() {
    let api = Api::start().await;
    let cfg = sim(&api, "GET", "config", json!({})).await;
    assert_eq!(cfg["app_id"], "cli_9f5343c580712544");
    assert!(cfg.get("app_secret").is_none() && cfg.get("encrypt_key").is_none());

    let before = sim(&api, "GET", "clock", json!({})).await["now_ms"]
        .as_i64()
        .unwrap();
    let after = sim(&api, "POST", "clock/advance", json!({"seconds": 600})).await["now_ms"]
        .as_i64()
        .unwrap();
    assert!(after - before >= 600_000);

    sim(&api, "POST", "faults", json!({"method": "POST", "path": "/open-apis/im/v1/messages", "count": 1, "kind": {"type": "server_error", "status": 502}})).await;
    let first = api.send_card_content(approval_card().to_string()).await;
    assert_eq!(first.status, 502);
    let mid = api.send_card(&approval_card()).await;

    let bot = Receiver::start(
        api.sim.config().encrypt_key.clone(),
        api.sim.config().verification_token.clone(),
        answer(200, json!({})),
    )
    .await;
    let d = sim(
        &api,
        "POST",
        "user/message",
        json!({"url": bot.url, "chat": "group", "text": "审批"}),
    )
    .await;
    assert_eq!(d["status"], 200);
    let click = sim(
        &api,
        "POST",
        "user/click",
        json!({"url": bot.url, "message_id": mid, "value": {"type": "leave"}}),
    )
    .await;
    let token = click["update_token"].as_str().unwrap();
    let info = sim(&api, "GET", &format!("update_tokens/{token}"), json!({})).await;
    assert_eq!(info["uses"], 0);
    assert!(info["answered_at_ms"].is_i64());
    assert_eq!(bot.received().len(), 2);

    let card = sim(&api, "GET", &format!("messages/{mid}/card"), json!({})).await;
    assert_eq!(card["text"], "# 审批\n请选择需要的操作\n[加班] [请假]");
    let group = sim(
        &api,
        "GET",
        &format!("chats/{}/messages", api.sim.config().group_chat_id),
        json!({}),
    )
    .await;
    assert_eq!(group["items"][0]["content"], r#"{"text":"@_user_1 审批"}"#);
    let calls = sim(&api, "GET", "calls", json!({})).await;
    let statuses: Vec<i64> = calls["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 502, 200], "auth, faulty send, send");
    sim(
        &api,
        "PUT",
        "rate_limits",
        json!({"app_per_second": 1, "card_writes_per_second": null}),
    )
    .await;
    api.send_card(&approval_card()).await;
    assert_eq!(
        api.send_card_content(approval_card().to_string())
            .await
            .status,
        429
    );
    let missing = api
        .call_as(None, "GET", "/_sim/cards/123", String::new())
        .await;
    assert_eq!(missing.status, 404);
}

/// Added users each have a p2p chat: their messages come from their open_id into their chat, the
/// bot's send by their open_id lands there, their clicks carry them as operator; an unknown open_id
/// is refused by name.
#[tokio::test]
async fn added_users_message_and_click_as_themselves() {
    let api = Api::start().await;
    let added = sim(&api, "POST", "users", json!({"count": 2})).await;
    let second = &added["items"][1];
    let (open_id, chat) = (
        second["open_id"].as_str().unwrap().to_owned(),
        second["p2p_chat_id"].as_str().unwrap().to_owned(),
    );
    assert!(
        open_id.starts_with("ou_") && open_id.len() == 35,
        "{open_id}"
    );
    let all = sim(&api, "GET", "users", json!({})).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3, "{all}");

    let bot = Receiver::start(
        api.sim.config().encrypt_key.clone(),
        api.sim.config().verification_token.clone(),
        answer(200, json!({})),
    )
    .await;
    sim(
        &api,
        "POST",
        "user/message",
        json!({"url": bot.url, "text": "审批", "open_id": open_id}),
    )
    .await;
    let event = &bot.received()[0].plaintext["event"];
    assert_eq!(event["sender"]["sender_id"]["open_id"], open_id.as_str());
    assert_eq!(event["message"]["chat_id"], chat.as_str());

    let sent = api
        .call(
            "POST",
            "/open-apis/im/v1/messages?receive_id_type=open_id",
            json!({"receive_id": open_id, "msg_type": "interactive", "content": approval_card().to_string()}),
        )
        .await
        .ok();
    assert_eq!(sent["chat_id"], chat.as_str());
    let mid = sent["message_id"].as_str().unwrap();
    sim(
        &api,
        "POST",
        "user/click",
        json!({"url": bot.url, "message_id": mid, "value": {"type": "leave"}, "open_id": open_id}),
    )
    .await;
    let click = &bot.received()[1].plaintext["event"];
    assert_eq!(click["operator"]["open_id"], open_id.as_str());
    assert_eq!(click["context"]["open_chat_id"], chat.as_str());
    let messages = sim(&api, "GET", &format!("chats/{chat}/messages"), json!({})).await;
    assert_eq!(messages["items"].as_array().unwrap().len(), 2, "{messages}");

    let unknown = api
        .call_as(
            None,
            "POST",
            "/_sim/user/message",
            json!({"url": bot.url, "text": "hi", "open_id": "ou_nobody"}).to_string(),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.body.to_string().contains("ou_nobody"),
        "{}",
        unknown.body
    );
    assert_eq!(
        bot.received().len(),
        2,
        "nothing pushed for an unknown user"
    );
}
