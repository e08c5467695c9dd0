//! Unencrypted mode (`ALLOW_UNENCRYPTED=true`, no Encrypt Key), end to end: the simulator posts
//! plain JSON to the functions on DynamoDB Local. It works, but every request but the challenge must
//! carry `X-Lark-Request-Timestamp` inside the replay window: without one, or with a stale one, the
//! answer is 401 and nothing is written.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use cardbot::store::dynamo::DynamoStore;
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{function_url_event, lambda_request, Bot};
use cardbot_tests::simulator::{ids, ChatKind, Sender, SimConfig, Simulator};
use serde_json::{json, Value};

async fn unencrypted_bot() -> Bot<DynamoStore> {
    let sim = Simulator::start(SimConfig {
        encrypt_key: None,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    Bot::start(
        Arc::new(sim),
        Arc::new(dynamodb_local::fresh_store().await),
        "entity",
    )
    .await
}

/// Every item's keys, sorted: what a request wrote shows as a difference.
async fn table_keys(store: &DynamoStore) -> Vec<String> {
    let scan = dynamodb_local::client()
        .await
        .scan()
        .table_name(store.table_name())
        .send()
        .await
        .unwrap();
    let key = |item: &std::collections::HashMap<String, AttributeValue>, k: &str| {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let mut keys: Vec<String> = scan
        .items()
        .iter()
        .map(|item| format!("{} {}", key(item, "pk"), key(item, "sk")))
        .collect();
    keys.sort();
    keys
}

fn without_timestamp(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("x-lark-request-timestamp"))
        .cloned()
        .collect()
}

fn with_timestamp(headers: &[(String, String)], ts: &str) -> Vec<(String, String)> {
    let mut headers = without_timestamp(headers);
    headers.push(("X-Lark-Request-Timestamp".into(), ts.into()));
    headers
}

#[tokio::test]
async fn a_plain_event_without_a_timestamp_is_401_and_writes_nothing() {
    let bot = unencrypted_bot().await;
    assert!(bot.config.webhook.encrypt_key.is_none(), "unencrypted mode");

    // The challenge needs no timestamp.
    let challenge = bot.sim.url_verification(&bot.event_url, "c-1").await;
    assert_eq!(challenge.status, Some(200));

    // The simulator, like Feishu, stamps a plain event: it is handled.
    let good = bot
        .sim
        .send_user_message(&bot.event_url, ChatKind::P2p, "审批")
        .await;
    assert_eq!(good.status, Some(200), "{}", good.response_body);
    assert!(
        !good.body.contains("\"encrypt\""),
        "plain JSON: {}",
        good.body
    );
    let replies = || {
        bot.sim
            .messages(ids::P2P_CHAT_ID)
            .into_iter()
            .filter(|m| matches!(m.sender, Sender::App { .. }))
            .count()
    };
    assert_eq!(replies(), 2, "text and card");
    let before = table_keys(&bot.store).await;

    // A new message (unseen ids, so dedup cannot be what stops it), posted without a timestamp.
    let mut fresh: Value = good.plaintext.clone();
    fresh["header"]["event_id"] = json!("ev_unstamped_0001");
    fresh["event"]["message"]["message_id"] = json!("om_unstamped_0001");
    let body = fresh.to_string().into_bytes();
    let now_s = (bot.sim.now_ms() / 1000).to_string();
    let cases = [
        ("no timestamp", without_timestamp(&good.headers)),
        (
            "stale timestamp",
            with_timestamp(&good.headers, "1000000000"),
        ),
        ("not a timestamp", with_timestamp(&good.headers, "soon")),
    ];
    for (name, headers) in &cases {
        let response = bot
            .event_callback
            .handle(lambda_request(&function_url_event(headers, &body)))
            .await;
        assert_eq!(response.status().as_u16(), 401, "{name}");
    }
    // The replay of the handled event without its timestamp is refused the same way.
    let replay = bot
        .event_callback
        .handle(lambda_request(&function_url_event(
            &without_timestamp(&good.headers),
            good.body.as_bytes(),
        )))
        .await;
    assert_eq!(replay.status().as_u16(), 401);
    assert_eq!(table_keys(&bot.store).await, before, "no table writes");
    assert_eq!(replies(), 2, "no reply to a refused event");

    // The same new message with a current timestamp is handled.
    let response = bot
        .event_callback
        .handle(lambda_request(&function_url_event(
            &with_timestamp(&good.headers, &now_s),
            &body,
        )))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let after = table_keys(&bot.store).await;
    assert!(
        after
            .iter()
            .any(|k| k.starts_with("dedup#om_unstamped_0001")),
        "{after:#?}"
    );
}

#[tokio::test]
async fn a_plain_click_without_a_timestamp_is_401_and_a_stamped_one_works() {
    let bot = unencrypted_bot().await;
    let card = bot.approval_card().await;
    let clicked = bot
        .sim
        .click_card(&bot.card_url, &card, json!({"type": "leave"}))
        .await
        .unwrap();
    assert_eq!(clicked.delivery.status, Some(200));
    assert!(clicked.card_updated, "{}", clicked.delivery.response_body);
    let before = table_keys(&bot.store).await;

    let mut again: Value = clicked.delivery.plaintext.clone();
    again["header"]["event_id"] = json!("ev_unstamped_click_0001");
    let response = bot
        .card_action
        .handle(lambda_request(&function_url_event(
            &without_timestamp(&clicked.delivery.headers),
            again.to_string().as_bytes(),
        )))
        .await;
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(table_keys(&bot.store).await, before, "no table writes");
}
