//! Feishu's rate limits at the simulator over real HTTP: 50/s per app, 1000/min per API, 5/s per
//! chat, each answered 429 + 99991400 + `x-ogw-ratelimit-limit` / `x-ogw-ratelimit-reset`.
//!
//! The limiter runs on the simulator's clock, so a test waits out a window with `sim.advance`.

mod simulator_support;

use std::time::Duration;

use cardbot_tests::simulator::{ApiCall, CallRates, RateLimits, SimConfig};
use serde_json::{json, Value};
use simulator_support::{approval_card, Api, Reply};

const SEND_TO_USER: &str = "/open-apis/im/v1/messages?receive_id_type=open_id";
const SEND_TO_CHAT: &str = "/open-apis/im/v1/messages?receive_id_type=chat_id";

fn text(s: &str) -> Value {
    json!({"msg_type": "text", "content": json!({"text": s}).to_string()})
}

/// `text` with `receive_id` set.
fn text_to(receive_id: &str, s: &str) -> Value {
    let mut body = text(s);
    body["receive_id"] = json!(receive_id);
    body
}

/// Feishu's defaults: 50/s per app, 1000/min per API, 5/s per chat, 10/s per card.
async fn feishu() -> Api {
    Api::start_with(SimConfig::default()).await
}

/// Asserts Feishu's rate-limit answer with `limit`; returns `x-ogw-ratelimit-reset`.
fn assert_rate_limited(r: &Reply, limit: u32) -> u64 {
    assert_eq!(r.status, 429, "body: {}", r.body);
    assert_eq!(
        r.body,
        json!({"code": 99991400, "msg": "request trigger frequency limit"})
    );
    assert_eq!(
        r.header("x-ogw-ratelimit-limit"),
        Some(limit.to_string()),
        "the limit of the window that refused"
    );
    assert!(r.header("x-tt-logid").is_some());
    r.header("x-ogw-ratelimit-reset")
        .expect("x-ogw-ratelimit-reset")
        .parse()
        .expect("whole seconds")
}

/// The calls the simulator admitted (not refused by a limit).
fn admitted(calls: &[ApiCall]) -> Vec<ApiCall> {
    calls.iter().filter(|c| c.status != 429).cloned().collect()
}

/// Seconds the limiter should announce: until the call `limit` places back leaves `span_ms`.
fn expected_reset(oldest_in_window_ms: i64, span_ms: i64, refused_at_ms: i64) -> u64 {
    ((oldest_in_window_ms + span_ms - refused_at_ms).max(1) as u64).div_ceil(1000)
}

#[tokio::test]
async fn app_limit_the_51st_call_in_a_second_is_429_until_the_announced_reset() {
    let api = feishu().await;
    api.sim.clear_calls();
    // 50 calls across two APIs: the app budget is shared by all Open APIs.
    for i in 0..50 {
        if i % 2 == 0 {
            api.call(
                "POST",
                "/open-apis/cardkit/v1/cards",
                json!({"type": "card_json", "data": approval_card().to_string()}),
            )
            .await
            .ok();
        } else {
            api.call(
                "POST",
                "/open-apis/cardkit/v1/cards/id_convert",
                json!({"message_id": "om_x"}),
            )
            .await
            .err(10002);
        }
    }
    let group = api.sim.config().group_chat_id.clone();
    let refused = api
        .call("POST", SEND_TO_CHAT, text_to(&group, "51st"))
        .await;
    let calls = api.sim.calls();
    let (first, last) = (calls[0].at_ms, calls[50].at_ms);
    assert!(
        last - first < 1000,
        "the 51 calls must fit one second for this test: {} ms",
        last - first
    );
    let reset = assert_rate_limited(&refused, 50);
    assert_eq!(reset, expected_reset(first, 1000, last));
    assert_eq!(reset, 1, "a one-second window resets within a second");
    assert!(
        api.sim.messages(&group).is_empty(),
        "the refused send sent nothing"
    );
    assert_eq!(CallRates::of(&admitted(&calls)).app_max_per_second, 50);
    assert_eq!(
        api.sim.call_rates().app_max_per_second,
        51,
        "the log shows the 51st too"
    );

    // Feishu's procedure: wait `x-ogw-ratelimit-reset` seconds, retry.
    api.sim.advance(Duration::from_secs(reset));
    api.call("POST", SEND_TO_CHAT, text_to(&group, "51st"))
        .await
        .ok();
    assert_eq!(api.sim.messages(&group).len(), 1);
}

#[tokio::test]
async fn api_limit_the_1001st_call_to_one_api_in_a_minute_is_429_while_other_apis_work() {
    let api = feishu().await;
    let mut cards = Vec::new();
    for _ in 0..20 {
        cards.push(api.create_entity(&approval_card()).await);
    }
    api.sim.advance(Duration::from_secs(1));
    api.sim.clear_calls();
    let settings = |card: &str, seq: u64| {
        let path = format!("/open-apis/cardkit/v1/cards/{card}/settings");
        let body = json!({"settings": json!({"config": {"summary": {"content": format!("s{seq}")}}}).to_string(), "sequence": seq});
        (path, body)
    };
    // 1000 settings calls on 20 cards (one API, whatever the card id), 50 a simulated second so
    // the app's 50/s and each card's 10/s hold: about 20 s of the minute.
    let mut sequence = vec![0; cards.len()];
    for _second in 0..20 {
        for i in 0..50 {
            let c = i % cards.len();
            sequence[c] += 1;
            let (path, body) = settings(&cards[c], sequence[c]);
            api.call("PATCH", &path, body).await.ok();
        }
        api.sim.advance(Duration::from_secs(1));
    }
    let calls = api.sim.calls();
    assert_eq!(calls.len(), 1000);
    assert_eq!(CallRates::of(&calls).app_max_per_second, 50);

    let (path, body) = settings(&cards[0], 500);
    let refused = api.call("PATCH", &path, body).await;
    let reset = assert_rate_limited(&refused, 1000);
    let calls = api.sim.calls();
    let refused_at = calls[1000].at_ms;
    assert_eq!(reset, expected_reset(calls[0].at_ms, 60_000, refused_at));
    assert!(
        (30..=40).contains(&reset),
        "about 20 s of the minute used, about 40 s to wait: {reset}"
    );
    let rates = CallRates::of(&admitted(&calls));
    assert_eq!(rates.api_max_per_minute, 1000);
    assert_eq!(
        rates.busiest_api.as_deref(),
        Some("PATCH /open-apis/cardkit/v1/cards/:card_id/settings")
    );

    // Other APIs have their own budget.
    api.create_entity(&approval_card()).await;
    api.call(
        "PUT",
        &format!("/open-apis/cardkit/v1/cards/{}", cards[0]),
        json!({"card": {"type": "card_json", "data": approval_card().to_string()}, "sequence": 501}),
    )
    .await
    .ok();

    api.sim.advance(Duration::from_secs(reset));
    let (path, body) = settings(&cards[0], 502);
    api.call("PATCH", &path, body).await.ok();
}

#[tokio::test]
async fn chat_limit_the_6th_message_into_one_chat_in_a_second_is_429_while_another_chat_works() {
    let api = feishu().await;
    let cfg = api.sim.config().clone();
    let p2p_parent = api
        .call(
            "POST",
            SEND_TO_USER,
            text_to(&cfg.user_open_id, "p2p parent"),
        )
        .await
        .ok()["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group_parent = api
        .call(
            "POST",
            SEND_TO_CHAT,
            text_to(&cfg.group_chat_id, "group parent"),
        )
        .await
        .ok()["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.sim.advance(Duration::from_secs(1));
    api.sim.clear_calls();
    let reply_path = |parent: &str| format!("/open-apis/im/v1/messages/{parent}/reply");

    // Five messages into the user's p2p chat: sends to the user, a send to the chat by chat_id
    // and replies all share its 5/s.
    api.call("POST", SEND_TO_USER, text_to(&cfg.user_open_id, "1"))
        .await
        .ok();
    api.call("POST", SEND_TO_USER, text_to(&cfg.user_open_id, "2"))
        .await
        .ok();
    api.call("POST", SEND_TO_CHAT, text_to(&cfg.p2p_chat_id, "3"))
        .await
        .ok();
    api.call("POST", &reply_path(&p2p_parent), text("4"))
        .await
        .ok();
    api.call("POST", &reply_path(&p2p_parent), text("5"))
        .await
        .ok();
    let refused = api.call("POST", &reply_path(&p2p_parent), text("6")).await;
    let calls = api.sim.calls();
    assert!(
        calls[5].at_ms - calls[0].at_ms < 1000,
        "the 6 calls must fit one second for this test"
    );
    let reset = assert_rate_limited(&refused, 5);
    assert_eq!(reset, expected_reset(calls[0].at_ms, 1000, calls[5].at_ms));
    assert_eq!(reset, 1);
    assert_eq!(api.sim.messages(&cfg.p2p_chat_id).len(), 6, "parent + 5");

    // Another chat has its own 5/s, and the app's 50/s is far off.
    api.call("POST", &reply_path(&group_parent), text("group"))
        .await
        .ok();
    let rates = api.sim.call_rates();
    assert_eq!(
        rates.chat_max_per_second, 6,
        "the log shows the refused reply"
    );
    assert_eq!(
        rates.busiest_chat.as_deref(),
        Some(cfg.p2p_chat_id.as_str())
    );
    assert_eq!(rates.rate_limited, 1);
    assert_eq!(CallRates::of(&admitted(&calls)).chat_max_per_second, 5);
    assert_eq!(
        CallRates::of(&admitted(&calls)).over(&RateLimits::default()),
        Vec::<String>::new()
    );

    api.sim.advance(Duration::from_secs(reset));
    api.call("POST", &reply_path(&p2p_parent), text("6 again"))
        .await
        .ok();
}

#[tokio::test]
async fn disabled_limits_let_200_calls_into_one_chat_and_1001_to_one_api_through() {
    let api = feishu().await;
    api.sim.set_rate_limits(RateLimits::disabled());
    let cfg = api.sim.config().clone();
    let parent = api
        .call("POST", SEND_TO_USER, text_to(&cfg.user_open_id, "parent"))
        .await
        .ok()["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/open-apis/im/v1/messages/{parent}/reply");
    let replies =
        futures::future::join_all((0..200).map(|i| api.call("POST", &path, text(&i.to_string()))))
            .await;
    for r in &replies {
        r.ok();
    }
    assert_eq!(api.sim.messages(&cfg.p2p_chat_id).len(), 201);
    for _ in 0..1001 {
        api.call(
            "POST",
            "/open-apis/cardkit/v1/cards/id_convert",
            json!({"message_id": "om_x"}),
        )
        .await
        .err(10002);
    }
    let rates = api.sim.call_rates();
    assert_eq!(rates.rate_limited, 0);
    assert_eq!(rates.api_max_per_minute, 1001);
    assert!(
        rates.chat_max_per_second > 5,
        "200 concurrent replies: {rates:?}"
    );
}

/// A control-API call; panics unless it answers 200.
async fn control(api: &Api, method: reqwest::Method, path: &str, body: Value) -> Value {
    let r = api
        .http
        .request(method, format!("{}/_sim/{path}", api.sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn control_api_sets_the_new_limits_and_reports_call_rates() {
    let api = feishu().await;
    let group = api.sim.config().group_chat_id.clone();
    // A missing field keeps Feishu's value; only the chat limit changes here.
    control(
        &api,
        reqwest::Method::PUT,
        "rate_limits",
        json!({"chat_per_second": 1}),
    )
    .await;
    api.call("POST", SEND_TO_CHAT, text_to(&group, "1"))
        .await
        .ok();
    let refused = api.call("POST", SEND_TO_CHAT, text_to(&group, "2")).await;
    assert_rate_limited(&refused, 1);

    let rates = control(&api, reqwest::Method::GET, "call_rates", json!({})).await;
    assert_eq!(rates["chat_max_per_second"], 2);
    assert_eq!(rates["busiest_chat"], group.as_str());
    assert_eq!(rates["rate_limited"], 1);
    assert_eq!(rates["busiest_api"], "POST /open-apis/im/v1/messages");
    let calls = control(&api, reqwest::Method::GET, "calls", json!({})).await;
    assert_eq!(calls["items"][1]["chat_id"], group.as_str());

    // null disables one limit; the API limit is still Feishu's.
    control(
        &api,
        reqwest::Method::PUT,
        "rate_limits",
        json!({"chat_per_second": null, "api_per_minute": 3}),
    )
    .await;
    api.call("POST", SEND_TO_CHAT, text_to(&group, "3"))
        .await
        .ok();
    let refused = api.call("POST", SEND_TO_CHAT, text_to(&group, "4")).await;
    assert_rate_limited(&refused, 3);
}
