//! The simulator's Open API rules over real HTTP: auth, im messages, PATCH, rate limits, faults, call log.

mod simulator_support;

use std::time::Duration;

use cardbot_tests::simulator::{FaultKind, RateLimits, Sender, SimConfig};
use serde_json::{json, Value};
use simulator_support::{approval_card, text_card, Api};

const SEND: &str = "/open-apis/im/v1/messages?receive_id_type=open_id";

fn text(s: &str) -> String {
    json!({"text": s}).to_string()
}

async fn auth(api: &Api, secret: &str) -> (u16, Value) {
    let r = api
        .http
        .post(format!(
            "{}/open-apis/auth/v3/tenant_access_token/internal",
            api.sim.base_url()
        ))
        .json(&json!({"app_id": api.sim.config().app_id, "app_secret": secret}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn tenant_token_is_flat_reused_until_30_min_left_then_renewed_while_old_stays_valid() {
    let api = Api::start().await;
    let secret = api.sim.config().app_secret.clone();
    let (status, first) = auth(&api, &secret).await;
    assert_eq!(status, 200);
    assert_eq!(first["code"], 0);
    assert!(first.get("data").is_none(), "auth answers flat");
    let t1 = first["tenant_access_token"].as_str().unwrap().to_owned();
    assert!(t1.starts_with("t-"));
    assert_eq!(t1, api.token, "same token while more than 30 min remain");
    assert!(first["expire"].as_i64().unwrap() <= 7200);

    api.sim.advance(Duration::from_secs(89 * 60));
    let (_, again) = auth(&api, &secret).await;
    assert_eq!(
        again["tenant_access_token"],
        t1.as_str(),
        "31 min left: still the same token"
    );
    assert!(again["expire"].as_i64().unwrap() <= 31 * 60);

    api.sim.advance(Duration::from_secs(2 * 60));
    let (_, renewed) = auth(&api, &secret).await;
    let t2 = renewed["tenant_access_token"].as_str().unwrap().to_owned();
    assert_ne!(t2, t1, "29 min left: a new token");
    assert_eq!(renewed["expire"], 7200);

    let ok = api.call_as(Some(&t1), "POST", SEND, json!({"receive_id": api.sim.config().user_open_id, "msg_type": "text", "content": text("hi")}).to_string()).await;
    ok.ok();
    api.sim.advance(Duration::from_secs(30 * 60));
    let old = api.call_as(Some(&t1), "POST", SEND, json!({"receive_id": api.sim.config().user_open_id, "msg_type": "text", "content": text("hi")}).to_string()).await;
    old.err(99991663);
    let new = api.call_as(Some(&t2), "POST", SEND, json!({"receive_id": api.sim.config().user_open_id, "msg_type": "text", "content": text("hi")}).to_string()).await;
    new.ok();
}

#[tokio::test]
async fn wrong_secret_and_unknown_app_are_refused() {
    let api = Api::start().await;
    let (_, wrong) = auth(&api, "not-the-secret").await;
    assert_eq!(wrong["code"], 10014);
    assert!(wrong.get("tenant_access_token").is_none());
    let r: Value = api
        .http
        .post(format!(
            "{}/open-apis/auth/v3/tenant_access_token/internal",
            api.sim.base_url()
        ))
        .json(&json!({"app_id": "cli_other", "app_secret": "x"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["code"], 10003);
}

#[tokio::test]
async fn bearer_token_missing_malformed_invalid_expired() {
    let api = Api::start().await;
    let body = json!({"receive_id": api.sim.config().user_open_id, "msg_type": "text", "content": text("x")}).to_string();
    api.call_as(None, "POST", SEND, body.clone())
        .await
        .err(99991661);
    api.call_as(Some("abc"), "POST", SEND, body.clone())
        .await
        .err(99991671);
    api.call_as(Some("t-0000"), "POST", SEND, body.clone())
        .await
        .err(99991663);
    api.sim.advance(Duration::from_secs(2 * 3600 + 1));
    api.call_as(Some(&api.token), "POST", SEND, body.clone())
        .await
        .err(99991663);
    assert!(api.sim.all_messages().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn send_text_lands_in_the_chat_with_feishu_answer_shape() {
    let api = Api::start().await;
    let cfg = api.sim.config().clone();
    let r = api
        .call(
            "POST",
            SEND,
            json!({"receive_id": cfg.user_open_id, "msg_type": "text", "content": text("你好")}),
        )
        .await;
    let data = r.ok();
    assert!(r.header("x-tt-logid").is_some());
    let id = data["message_id"].as_str().unwrap();
    assert!(id.starts_with("om_"));
    assert_eq!(data["chat_id"], cfg.p2p_chat_id.as_str());
    assert_eq!(data["sender"]["sender_type"], "app");
    assert_eq!(data["sender"]["id"], cfg.app_id.as_str());
    assert_eq!(data["body"]["content"], text("你好").as_str());
    let group = api
        .call(
            "POST",
            "/open-apis/im/v1/messages?receive_id_type=chat_id",
            json!({"receive_id": cfg.group_chat_id, "msg_type": "text", "content": text("大家好")}),
        )
        .await
        .ok();
    let msgs = api.sim.messages(&cfg.p2p_chat_id);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].message_id, id);
    assert_eq!(
        msgs[0].sender,
        Sender::App {
            app_id: cfg.app_id.clone()
        }
    );
    assert_eq!(msgs[0].content, text("你好"));
    assert_eq!(
        api.sim.messages(&cfg.group_chat_id)[0].message_id,
        group["message_id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn receive_id_type_is_required_and_checked_and_receive_id_must_exist() {
    let api = Api::start().await;
    let body = json!({"receive_id": api.sim.config().user_open_id, "msg_type": "text", "content": text("x")});
    api.call("POST", "/open-apis/im/v1/messages", body.clone())
        .await
        .err(99992402);
    api.call(
        "POST",
        "/open-apis/im/v1/messages?receive_id_type=phone",
        body.clone(),
    )
    .await
    .err(99992402);
    api.call(
        "POST",
        "/open-apis/im/v1/messages?receive_id_type=chat_id",
        body.clone(),
    )
    .await
    .err(230034);
}

#[tokio::test]
async fn content_must_be_a_json_string() {
    let api = Api::start().await;
    let uid = api.sim.config().user_open_id.clone();
    api.call(
        "POST",
        SEND,
        json!({"receive_id": uid, "msg_type": "text", "content": {"text": "x"}}),
    )
    .await
    .err(230001);
    api.call(
        "POST",
        SEND,
        json!({"receive_id": uid, "msg_type": "text", "content": "not json"}),
    )
    .await
    .err(230001);
    api.call(
        "POST",
        SEND,
        json!({"receive_id": uid, "msg_type": "interactive", "content": approval_card()}),
    )
    .await
    .err(230001);
    api.call("POST", SEND, json!({"receive_id": uid, "msg_type": "text"}))
        .await
        .err(99992402);
    assert!(api.sim.all_messages().is_empty());
}

#[tokio::test]
async fn interactive_content_is_checked_as_card_json() {
    let api = Api::start().await;
    let mut unknown = approval_card();
    unknown["elements"] = json!([]);
    let r = api.send_card_content(unknown.to_string()).await;
    r.err(230099);
    assert!(
        r.body["msg"].as_str().unwrap().contains("200220"),
        "{}",
        r.body
    );
    let mut dup = approval_card();
    dup["body"]["elements"][0]["element_id"] = json!("btn_leave");
    let r = api.send_card_content(dup.to_string()).await;
    r.err(230099);
    assert!(r.body["msg"].as_str().unwrap().contains("300301"));
    let big = text_card("big", &"字".repeat(11_000));
    api.send_card_content(big.to_string()).await.err(230025);
    // A sent card shows up as the user sees it.
    let id = api.send_card(&approval_card()).await;
    let card = api.sim.card(&id).unwrap();
    assert_eq!(card.text, "# 审批\n请选择需要的操作\n[加班] [请假]");
    assert_eq!(card.history.len(), 1);
}

#[tokio::test]
async fn uuid_dedups_within_one_hour_only() {
    let api = Api::start().await;
    let body = json!({"receive_id": api.sim.config().user_open_id, "msg_type": "text", "content": text("once"), "uuid": "u-1"});
    let a = api.call("POST", SEND, body.clone()).await.ok();
    api.sim.advance(Duration::from_secs(59 * 60));
    let b = api.call("POST", SEND, body.clone()).await.ok();
    assert_eq!(a["message_id"], b["message_id"]);
    assert_eq!(api.sim.all_messages().len(), 1);
    api.sim.advance(Duration::from_secs(2 * 60));
    let c = api.call("POST", SEND, body).await.ok();
    assert_ne!(a["message_id"], c["message_id"]);
    assert_eq!(api.sim.all_messages().len(), 2);
}

#[tokio::test]
async fn reply_threads_to_the_parent_in_its_chat() {
    let api = Api::start().await;
    let cfg = api.sim.config().clone();
    let parent = api
        .call(
            "POST",
            "/open-apis/im/v1/messages?receive_id_type=chat_id",
            json!({"receive_id": cfg.group_chat_id, "msg_type": "text", "content": text("p")}),
        )
        .await
        .ok();
    let pid = parent["message_id"].as_str().unwrap();
    let r = api
        .call(
            "POST",
            &format!("/open-apis/im/v1/messages/{pid}/reply"),
            json!({"msg_type": "interactive", "content": approval_card().to_string()}),
        )
        .await
        .ok();
    assert_eq!(r["parent_id"], pid);
    assert_eq!(r["chat_id"], cfg.group_chat_id.as_str());
    let stored = api.sim.message(r["message_id"].as_str().unwrap()).unwrap();
    assert_eq!(stored.parent_id.as_deref(), Some(pid));
    api.call(
        "POST",
        "/open-apis/im/v1/messages/om_nope/reply",
        json!({"msg_type": "text", "content": text("x")}),
    )
    .await
    .err(230001);
}

#[tokio::test]
async fn patch_replaces_a_shared_card_and_keeps_history() {
    let api = Api::start().await;
    let id = api.send_card(&approval_card()).await;
    let r = api
        .call(
            "PATCH",
            &format!("/open-apis/im/v1/messages/{id}"),
            json!({"content": text_card("请假通过", "已同意").to_string()}),
        )
        .await;
    assert_eq!(r.body, json!({"code": 0, "data": {}, "msg": "ok"}));
    let card = api.sim.card(&id).unwrap();
    assert_eq!(card.text, "# 请假通过\n已同意");
    assert_eq!(
        card.history
            .iter()
            .map(|h| h.via.as_str())
            .collect::<Vec<_>>(),
        ["send", "patch"]
    );
    // Content must be a string here too.
    api.call(
        "PATCH",
        &format!("/open-apis/im/v1/messages/{id}"),
        json!({"content": text_card("x", "y")}),
    )
    .await
    .err(230001);
}

#[tokio::test]
async fn patch_needs_update_multi_on_both_cards_and_a_card_message() {
    let api = Api::start().await;
    let exclusive_v1 = json!({"header": {"title": {"tag": "plain_text", "content": "v1"}}, "elements": [{"tag": "div", "text": {"tag": "plain_text", "content": "x"}}]});
    let shared_v1 = json!({"config": {"update_multi": true}, "elements": [{"tag": "div", "text": {"tag": "plain_text", "content": "x"}}]});
    let old_exclusive = api.send_card(&exclusive_v1).await;
    api.call(
        "PATCH",
        &format!("/open-apis/im/v1/messages/{old_exclusive}"),
        json!({"content": shared_v1.to_string()}),
    )
    .await
    .err(230001);
    let old_shared = api.send_card(&shared_v1).await;
    api.call(
        "PATCH",
        &format!("/open-apis/im/v1/messages/{old_shared}"),
        json!({"content": exclusive_v1.to_string()}),
    )
    .await
    .err(230001);
    let mut v2_false = approval_card();
    v2_false["config"]["update_multi"] = json!(false);
    let r = api
        .call(
            "PATCH",
            &format!("/open-apis/im/v1/messages/{old_shared}"),
            json!({"content": v2_false.to_string()}),
        )
        .await;
    r.err(230099);
    assert!(r.body["msg"].as_str().unwrap().contains("300302"));
    let text_msg = api
        .call("POST", SEND, json!({"receive_id": api.sim.config().user_open_id, "msg_type": "text", "content": text("t")}))
        .await
        .ok();
    api.call(
        "PATCH",
        &format!(
            "/open-apis/im/v1/messages/{}",
            text_msg["message_id"].as_str().unwrap()
        ),
        json!({"content": shared_v1.to_string()}),
    )
    .await
    .err(230001);
    assert_eq!(
        api.sim.card(&old_shared).unwrap().history.len(),
        1,
        "no failed patch applied"
    );
}

#[tokio::test]
async fn patch_window_is_14_days() {
    let api = Api::start().await;
    let id = api.send_card(&approval_card()).await;
    api.sim.advance(Duration::from_secs(14 * 24 * 3600 - 60));
    let token = api.sim.issue_tenant_token();
    let path = format!("/open-apis/im/v1/messages/{id}");
    let body = json!({"content": text_card("a", "b").to_string()}).to_string();
    api.call_as(Some(&token), "PATCH", &path, body.clone())
        .await
        .ok();
    api.sim.advance(Duration::from_secs(120));
    api.call_as(Some(&token), "PATCH", &path, body)
        .await
        .err(230031);
}

#[tokio::test]
async fn app_rate_limit_answers_429_with_ogw_headers() {
    let api = Api::start().await;
    api.sim.set_rate_limits(RateLimits {
        app_per_second: Some(50),
        ..RateLimits::disabled()
    });
    let calls = (0..120).map(|_| {
        api.call(
            "POST",
            "/open-apis/cardkit/v1/cards/id_convert",
            json!({"message_id": "om_x"}),
        )
    });
    let replies = futures::future::join_all(calls).await;
    let limited: Vec<_> = replies.iter().filter(|r| r.status == 429).collect();
    let passed = replies.len() - limited.len();
    assert!(!limited.is_empty(), "120 calls at once must exceed 50/s");
    assert!(passed >= 50, "the first 50 pass: {passed}");
    let r = limited[0];
    assert_eq!(
        r.body,
        json!({"code": 99991400, "msg": "request trigger frequency limit"})
    );
    assert_eq!(r.header("x-ogw-ratelimit-limit").as_deref(), Some("50"));
    let reset: u64 = r.header("x-ogw-ratelimit-reset").unwrap().parse().unwrap();
    assert_eq!(reset, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    api.call(
        "POST",
        "/open-apis/cardkit/v1/cards/id_convert",
        json!({"message_id": "om_x"}),
    )
    .await
    .err(10002);
}

#[tokio::test]
async fn card_write_limit_is_10_per_second_per_card() {
    let api = Api::start_with(SimConfig {
        rate_limits: RateLimits {
            card_writes_per_second: Some(10),
            ..RateLimits::disabled()
        },
        ..SimConfig::default()
    })
    .await;
    let card_id = api.create_entity(&approval_card()).await;
    let other = api.create_entity(&approval_card()).await;
    let mut statuses = Vec::new();
    let mut last = None;
    for seq in 1..=15 {
        let r = api
            .call(
                "PATCH",
                &format!("/open-apis/cardkit/v1/cards/{card_id}/settings"),
                json!({"settings": json!({"config": {"summary": {"content": format!("s{seq}")}}}).to_string(), "sequence": seq}),
            )
            .await;
        statuses.push(r.status);
        if r.status == 429 {
            last = Some(r);
        }
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        (5..=10).contains(&ok),
        "at most 10 writes in a second: {statuses:?}"
    );
    let r = last.expect("some writes were limited");
    assert_eq!(r.code(), 99991400);
    assert_eq!(r.header("x-ogw-ratelimit-limit").as_deref(), Some("10"));
    assert!(r.header("x-ogw-ratelimit-reset").is_some());
    // Another card is not limited.
    api.call(
        "PATCH",
        &format!("/open-apis/cardkit/v1/cards/{other}/settings"),
        json!({"settings": json!({"config": {}}).to_string(), "sequence": 1}),
    )
    .await
    .ok();
}

#[tokio::test]
async fn fault_rate_limited_then_normal() {
    let api = Api::start().await;
    api.sim.fail_next(
        "POST",
        "/open-apis/im/v1/messages",
        1,
        FaultKind::RateLimited { reset_secs: 7 },
    );
    let body = json!({"receive_id": api.sim.config().user_open_id, "msg_type": "text", "content": text("x")});
    let r = api.call("POST", SEND, body.clone()).await;
    assert_eq!((r.status, r.code()), (429, 99991400));
    assert_eq!(r.header("x-ogw-ratelimit-reset").as_deref(), Some("7"));
    assert!(api.sim.all_messages().is_empty());
    api.call("POST", SEND, body).await.ok();
}

#[tokio::test]
async fn fault_server_error_and_invalid_token_hit_only_matching_calls() {
    let api = Api::start().await;
    api.sim.fail_next(
        "PATCH",
        "/open-apis/im/v1/messages/*",
        2,
        FaultKind::ServerError { status: 503 },
    );
    api.sim
        .fail_next("POST", "/open-apis/cardkit/**", 1, FaultKind::InvalidToken);
    let id = api.send_card(&approval_card()).await;
    let path = format!("/open-apis/im/v1/messages/{id}");
    let content = json!({"content": text_card("x", "y").to_string()});
    for _ in 0..2 {
        let r = api.call("PATCH", &path, content.clone()).await;
        assert_eq!((r.status, r.code()), (503, 2200));
    }
    api.call("PATCH", &path, content).await.ok();
    let r = api
        .call(
            "POST",
            "/open-apis/cardkit/v1/cards",
            json!({"type": "card_json", "data": approval_card().to_string()}),
        )
        .await;
    r.err(99991663);
    api.create_entity(&approval_card()).await;
}

#[tokio::test]
async fn fault_hang_delays_the_answer() {
    let api = Api::start().await;
    api.sim.fail_next(
        "POST",
        "/open-apis/im/v1/messages",
        1,
        FaultKind::hang(Duration::from_millis(1500)),
    );
    let body = json!({"receive_id": api.sim.config().user_open_id, "msg_type": "text", "content": text("slow")}).to_string();
    let err = api
        .http
        .post(format!("{}{SEND}", api.sim.base_url()))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body(body.clone())
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    let started = std::time::Instant::now();
    api.call_as(Some(&api.token), "POST", SEND, body).await.ok();
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "only the next call hangs"
    );
}

#[tokio::test]
async fn call_log_records_every_call() {
    let api = Api::start().await;
    api.sim.clear_calls();
    api.call("POST", SEND, json!({"receive_id": api.sim.config().user_open_id, "msg_type": "text", "content": text("x")})).await.ok();
    api.call("POST", "/open-apis/im/v1/messages", json!({}))
        .await
        .err(99992402);
    let calls = api.sim.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (
            calls[0].method.as_str(),
            calls[0].path.as_str(),
            calls[0].status,
            calls[0].code
        ),
        ("POST", SEND, 200, Some(0))
    );
    assert!(calls[0].body.contains("receive_id"));
    assert_eq!((calls[1].status, calls[1].code), (400, Some(99992402)));
    assert!(calls[1].at_ms >= calls[0].at_ms);
    // Unknown paths are 404s, like Feishu's gateway.
    let r = api.call("GET", "/open-apis/im/v1/nothing", json!({})).await;
    assert_eq!(r.status, 404);
}
