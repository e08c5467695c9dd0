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
