//! End to end: the Feishu simulator over HTTP posts signed, encrypted events and clicks to the
//! functions behind function-URL-shaped requests; the store is DynamoDB Local (and MemoryStore for
//! the fast variants). Assertions are on what the simulator's chats and call log hold and on the table.

use std::sync::Arc;
use std::time::Duration;

use cardbot::store::dynamo::DynamoStore;
use cardbot::store::memory::MemoryStore;
use cardbot::store::{CardStore, JobStatus, JobStore, Store};
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{
    function_url_event, lambda_request, response_bytes, stream_insert, Bot,
};
use cardbot_tests::simulator::{
    ids, ChatKind, ChatMessage, FaultKind, FaultSpec, Sender, SimConfig, Simulator,
};
use serde_json::{json, Value};

async fn simulator() -> Arc<Simulator> {
    Arc::new(
        Simulator::start(SimConfig::default())
            .await
            .expect("simulator starts"),
    )
}

async fn dynamo_bot(delivery: &str) -> Bot<DynamoStore> {
    Bot::start(
        simulator().await,
        Arc::new(dynamodb_local::fresh_store().await),
        delivery,
    )
    .await
}

async fn memory_bot(delivery: &str) -> Bot<MemoryStore> {
    Bot::start(simulator().await, Arc::new(MemoryStore::new()), delivery).await
}

fn from_bot(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    messages
        .iter()
        .filter(|m| matches!(m.sender, Sender::App { .. }))
        .cloned()
        .collect()
}

fn text_of(message: &ChatMessage) -> String {
    let content: Value = serde_json::from_str(&message.content).unwrap();
    content["text"].as_str().unwrap_or_default().to_owned()
}

/// Sends `text` in `chat`; returns the bot's card message (asserting text + card replies).
async fn ask_for_card<S: Store>(bot: &Bot<S>, chat: ChatKind, chat_id: &str) -> String {
    let delivery = bot
        .sim
        .send_user_message(&bot.event_url, chat, "审批")
        .await;
    assert_eq!(delivery.status, Some(200), "{}", delivery.response_body);
    let replies = from_bot(&bot.sim.messages(chat_id));
    assert_eq!(replies.len(), 2, "{replies:#?}");
    assert_eq!(replies[0].msg_type, "text");
    assert!(text_of(&replies[0]).contains("审批卡片"));
    assert_eq!(replies[1].msg_type, "interactive");
    let user_message = delivery.message_id.clone().unwrap();
    assert!(
        replies
            .iter()
            .all(|m| m.parent_id.as_deref() == Some(user_message.as_str())),
        "replies"
    );
    let card = bot.sim.card_text(&replies[1].message_id).unwrap();
    for words in ["审批", "请选择需要的操作", "加班", "请假"] {
        assert!(card.contains(words), "{card}");
    }
    replies[1].message_id.clone()
}

async fn click_flow<S: Store>(bot: &Bot<S>, legacy: bool, value: Value, approved: &str) {
    let card = ask_for_card(bot, ChatKind::P2p, ids::P2P_CHAT_ID).await;
    let clicked = if legacy {
        bot.sim
            .click_card_legacy(&bot.card_url, &card, value.clone())
            .await
            .unwrap()
    } else {
        bot.sim
            .click_card(&bot.card_url, &card, value.clone())
            .await
            .unwrap()
    };
    assert_eq!(
        clicked.client_error, None,
        "{:?}",
        clicked.delivery.response_body
    );
    assert!(clicked.toast.is_some(), "answer holds a toast");
    assert!(clicked.card_updated, "answer holds the new card");
    let shown = bot.sim.card_text(&card).unwrap();
    assert!(shown.contains("审批中"), "{shown}");
    let state = bot.store.get_card(&card).await.unwrap().unwrap();
    assert!(state.status.ends_with("_submitted"), "{}", state.status);
    assert!(!bot.sim.card_text(&card).unwrap().contains(approved));
    let summary = bot.run_post_answer(&card).await;
    assert_eq!(summary.done, 1, "{summary:?}");
    let shown = bot.sim.card_text(&card).unwrap();
    assert!(shown.contains(approved), "{shown}");
    assert!(
        !bot.sim.card(&card).unwrap().streaming,
        "streaming is off again"
    );
    let state = bot.store.get_card(&card).await.unwrap().unwrap();
    assert!(state.status.ends_with("_approved"), "{}", state.status);
    let job = bot.post_answer_job(&card).await;
    assert_eq!(job.status, JobStatus::Done);
}

#[tokio::test]
async fn p2p_approval_in_entity_mode_sends_text_and_card_entity() {
    let bot = dynamo_bot("entity").await;
    let card = ask_for_card(&bot, ChatKind::P2p, ids::P2P_CHAT_ID).await;
    let message = bot.sim.message(&card).unwrap();
    let card_id = message.card_id.clone().expect("sent by card_id");
    let state = bot
        .store
        .get_card(&card)
        .await
        .unwrap()
        .expect("state keyed by the bot card's message_id");
    assert_eq!(state.card_id.as_deref(), Some(card_id.as_str()));
    assert_eq!(
        (state.status.as_str(), state.delivery.as_str()),
        ("pending", "entity")
    );
    let expire = bot
        .store
        .get_job(&card, "expire")
        .await
        .unwrap()
        .expect("expiry queued");
    assert_eq!(expire.due_at, state.created_at + 7 * 24 * 3600 * 1000);
}

#[tokio::test]
async fn group_mention_approval_in_message_mode() {
    let bot = dynamo_bot("message").await;
    let card = ask_for_card(&bot, ChatKind::Group, ids::GROUP_CHAT_ID).await;
    assert!(
        bot.sim.message(&card).unwrap().card_id.is_none(),
        "a plain card message"
    );
    assert!(bot.sim.messages(ids::P2P_CHAT_ID).is_empty());
}

#[tokio::test]
async fn anything_else_gets_the_help_text() {
    let bot = memory_bot("entity").await;
    for text in ["hello", "help", "帮助"] {
        let delivery = bot
            .sim
            .send_user_message(&bot.event_url, ChatKind::P2p, text)
            .await;
        assert_eq!(delivery.status, Some(200));
    }
    let replies = from_bot(&bot.sim.messages(ids::P2P_CHAT_ID));
    assert_eq!(replies.len(), 3);
    for reply in replies {
        assert_eq!(reply.msg_type, "text");
        let text = text_of(&reply);
        assert!(text.contains("审批") && text.contains("help"), "{text}");
    }
}

#[tokio::test]
async fn entity_mode_leave_click_then_updater_walks_the_card_in_three_cardkit_calls() {
    let bot = dynamo_bot("entity").await;
    click_flow(&bot, false, json!({"type": "leave"}), "请假通过").await;
    let calls: Vec<_> = bot
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.path.contains("/cardkit/v1/cards/"))
        .collect();
    let mut last = 0;
    let mut kinds = Vec::new();
    for call in &calls {
        assert_eq!(
            call.code,
            Some(0),
            "{} {} → {}",
            call.method,
            call.path,
            call.status
        );
        let body: Value = serde_json::from_str(&call.body).unwrap();
        let sequence = body["sequence"].as_i64().unwrap();
        assert!(
            sequence > last,
            "sequences strictly increase: {sequence} after {last}"
        );
        last = sequence;
        kinds.push(
            match (call.method.as_str(), call.path.rsplit('/').next().unwrap()) {
                ("PUT", "content") => "stream_text",
                ("POST", "batch_update") => "batch_update",
                (method, tail) => panic!("unexpected {method} …/{tail}"),
            },
        );
    }
    // The post-answer job's whole walk: one step of edits, the typed note, streaming off.
    assert_eq!(kinds, ["batch_update", "stream_text", "batch_update"]);
    assert!(calls[0].body.contains("streaming_mode\\\":true"));
    assert!(calls[2].body.contains("streaming_mode\\\":false"));
}

#[tokio::test]
async fn entity_mode_overtime_click_becomes_overtime_approved() {
    let bot = memory_bot("entity").await;
    click_flow(&bot, false, json!({"type": "work_overtime"}), "加班通过").await;
}

#[tokio::test]
async fn message_mode_legacy_click_uses_the_delayed_update_after_the_answer() {
    let bot = dynamo_bot("message").await;
    click_flow(&bot, true, json!({"type": "leave"}), "请假通过").await;
    let click = bot
        .sim
        .deliveries()
        .into_iter()
        .find(|d| d.kind == "card_callback_legacy")
        .unwrap();
    let answered = click.answered_at_ms.unwrap();
    let updates: Vec<_> = bot
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.path.contains("interactive/v1/card/update"))
        .collect();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].code, Some(0));
    assert!(
        updates[0].at_ms >= answered + 1_500,
        "delayed update {} vs answer {answered}",
        updates[0].at_ms
    );
}

#[tokio::test]
async fn message_mode_new_style_overtime_click() {
    let bot = memory_bot("message").await;
    click_flow(&bot, false, json!({"type": "work_overtime"}), "加班通过").await;
}

#[tokio::test]
async fn message_mode_after_30_minutes_patches_the_message() {
    let bot = memory_bot("message").await;
    let card = ask_for_card(&bot, ChatKind::P2p, ids::P2P_CHAT_ID).await;
    bot.sim
        .click_card(&bot.card_url, &card, json!({"type": "leave"}))
        .await
        .unwrap();
    bot.sim.advance(Duration::from_secs(31 * 60));
    assert_eq!(bot.sweep().await.done, 1);
    assert!(bot.sim.card_text(&card).unwrap().contains("请假通过"));
    let calls = bot.sim.calls();
    assert!(calls
        .iter()
        .any(|c| c.method == "PATCH" && c.path.contains("/im/v1/messages/") && c.code == Some(0)));
    assert!(!calls
        .iter()
        .any(|c| c.path.contains("interactive/v1/card/update")));
}

#[tokio::test]
async fn the_same_event_four_times_including_concurrently_is_one_reply() {
    let bot = dynamo_bot("entity").await;
    let first = bot
        .sim
        .send_user_message(&bot.event_url, ChatKind::P2p, "审批")
        .await;
    let plaintext = first.plaintext.clone();
    let posts = (0..3).map(|_| bot.sim.post_event(&bot.event_url, &plaintext));
    for delivery in futures::future::join_all(posts).await {
        assert_eq!(delivery.status, Some(200));
    }
    let replies = from_bot(&bot.sim.messages(ids::P2P_CHAT_ID));
    assert_eq!(replies.len(), 2, "one text and one card: {replies:#?}");
}

#[tokio::test]
async fn the_same_click_twice_is_one_transition() {
    let bot = dynamo_bot("entity").await;
    let card = ask_for_card(&bot, ChatKind::P2p, ids::P2P_CHAT_ID).await;
    let first = bot
        .sim
        .click_card(&bot.card_url, &card, json!({"type": "leave"}))
        .await
        .unwrap();
    let version = bot.store.get_card(&card).await.unwrap().unwrap().version;
    let replay = bot
        .sim
        .post_event(&bot.card_url, &first.delivery.plaintext)
        .await;
    assert_eq!(replay.status, Some(200));
    let second = bot
        .sim
        .click_card(&bot.card_url, &card, json!({"type": "work_overtime"}))
        .await
        .unwrap();
    let toast = second.toast.unwrap().to_string();
    assert!(toast.contains("已处理"), "{toast}");
    let state = bot.store.get_card(&card).await.unwrap().unwrap();
    assert_eq!(
        (state.version, state.status.as_str()),
        (version, "leave_submitted")
    );
}

#[tokio::test]
async fn an_unknown_action_gets_an_error_toast_and_writes_nothing() {
    let bot = dynamo_bot("entity").await;
    let card = ask_for_card(&bot, ChatKind::P2p, ids::P2P_CHAT_ID).await;
    let before = table_items(&bot.store).await;
    let clicked = bot
        .sim
        .click_card(&bot.card_url, &card, json!({"type": "drop_table"}))
        .await
        .unwrap();
    assert_eq!(clicked.toast.unwrap()["type"], "error");
    assert_eq!(table_items(&bot.store).await, before);
}

async fn table_items(store: &DynamoStore) -> Vec<String> {
    let client = dynamodb_local::client().await;
    let scan = client
        .scan()
        .table_name(store.table_name())
        .send()
        .await
        .unwrap();
    let mut items: Vec<String> = scan
        .items()
        .iter()
        .map(|item| {
            let mut keys: Vec<_> = item.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            keys.sort();
            keys.join(",")
        })
        .collect();
    items.sort();
    items
}

#[tokio::test]
async fn forged_stale_and_malformed_requests_get_4xx_and_write_nothing() {
    let bot = dynamo_bot("entity").await;
    let good = bot
        .sim
        .send_user_message(&bot.event_url, ChatKind::P2p, "hello")
        .await;
    let before = table_items(&bot.store).await;
    let headers = good.headers.clone();
    let body = good.body.clone().into_bytes();
    let mut forged = body.clone();
    let last = forged.len() - 3;
    forged[last] ^= 1;
    let stale: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("x-lark-request-timestamp") {
                (k.clone(), "1000000000".into())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    type Headers = Vec<(String, String)>;
    let cases: Vec<(&str, Headers, Vec<u8>)> = vec![
        ("forged", headers.clone(), forged),
        ("stale", stale, body.clone()),
        ("malformed", headers.clone(), b"{not json".to_vec()),
        ("unsigned", vec![], body.clone()),
    ];
    for (name, headers, body) in cases {
        for handler in ["event", "card"] {
            let request = lambda_request(&function_url_event(&headers, &body));
            let response = if handler == "event" {
                bot.event_callback.handle(request).await
            } else {
                bot.card_action.handle(request).await
            };
            let status = response.status().as_u16();
            assert!(
                (400..500).contains(&status),
                "{name} on {handler}: {status} {:?}",
                String::from_utf8_lossy(&response_bytes(&response))
            );
        }
    }
    assert_eq!(table_items(&bot.store).await, before, "no table writes");
}

#[tokio::test]
async fn a_feishu_outage_during_post_answer_work_retries_until_the_card_is_right() {
    let bot = dynamo_bot("entity").await;
    let card = ask_for_card(&bot, ChatKind::P2p, ids::P2P_CHAT_ID).await;
    bot.sim
        .click_card(&bot.card_url, &card, json!({"type": "leave"}))
        .await
        .unwrap();
    bot.sim.inject_fault(FaultSpec {
        method: None,
        path: "/open-apis/cardkit/v1/cards/**".into(),
        kind: FaultKind::ServerError { status: 503 },
        count: 50,
    });
    let summary = bot.run_post_answer(&card).await;
    assert_eq!(summary.failed, 1, "{summary:?}");
    let job = bot.post_answer_job(&card).await;
    assert_eq!(job.status, JobStatus::Pending);
    assert!(job.last_error.is_some());
    assert!(!bot.sim.card_text(&card).unwrap().contains("请假通过"));
    bot.sim.clear_faults();
    bot.sim.advance(Duration::from_millis(
        (job.due_at - bot.sim.now_ms()).max(0) as u64 + 1_000,
    ));
    let summary = bot.sweep().await;
    // The retried job, then the decision event of the request it approved.
    assert_eq!(summary.done, 2, "{summary:?}");
    assert!(
        bot.sim.card_text(&card).unwrap().contains("请假通过"),
        "{}",
        bot.sim.card_text(&card).unwrap()
    );
    let job = bot.post_answer_job(&card).await;
    assert_eq!(job.status, JobStatus::Done);
}

#[tokio::test]
async fn an_undecided_card_expires_after_the_ttl() {
    let bot = memory_bot("entity").await;
    let card = ask_for_card(&bot, ChatKind::P2p, ids::P2P_CHAT_ID).await;
    bot.sim.advance(Duration::from_secs(7 * 24 * 3600 + 60));
    assert_eq!(bot.sweep().await.done, 1);
    let shown = bot.sim.card_text(&card).unwrap();
    assert!(
        shown.contains("已过期") && !shown.contains("[请假]"),
        "{shown}"
    );
    let clicked = bot
        .sim
        .click_card(&bot.card_url, &card, json!({"type": "leave"}))
        .await
        .unwrap();
    assert_eq!(clicked.toast.unwrap()["type"], "warning");
}

#[tokio::test]
async fn the_url_verification_challenge_is_answered() {
    let bot = memory_bot("entity").await;
    for url in [&bot.event_url, &bot.card_url] {
        let delivery = bot.sim.url_verification(url, "challenge-123").await;
        assert_eq!(delivery.status, Some(200));
        assert_eq!(
            delivery.response_json.unwrap()["challenge"],
            "challenge-123"
        );
    }
}

#[tokio::test]
async fn a_reply_that_does_not_fit_the_budget_becomes_a_job_and_is_delivered_once() {
    let bot = dynamo_bot("entity").await;
    bot.sim.inject_fault(FaultSpec {
        method: Some("POST".into()),
        path: "/open-apis/im/v1/messages/*/reply".into(),
        kind: FaultKind::hang(Duration::from_secs(4)),
        count: 1,
    });
    let delivery = bot
        .sim
        .send_user_message(&bot.event_url, ChatKind::P2p, "审批")
        .await;
    assert_eq!(
        delivery.status,
        Some(200),
        "answered inside Feishu's 3 s: {:?}",
        delivery.error
    );
    assert!(delivery.elapsed_ms < 3_000, "{} ms", delivery.elapsed_ms);
    let source = delivery.message_id.clone().unwrap();
    let job = bot
        .store
        .get_job(&source, "send_reply")
        .await
        .unwrap()
        .expect("queued reply");
    assert_eq!(job.status, JobStatus::Pending);
    tokio::time::sleep(Duration::from_secs(3)).await; // the hung call completes at the simulator
    let summary = bot
        .run_updater(&stream_insert(&source, "send_reply", job.due_at))
        .await;
    assert_eq!(summary.done, 1, "{summary:?}");
    let replies = from_bot(&bot.sim.messages(ids::P2P_CHAT_ID));
    assert_eq!(
        replies.iter().filter(|m| m.msg_type == "text").count(),
        1,
        "{replies:#?}"
    );
    assert_eq!(
        replies
            .iter()
            .filter(|m| m.msg_type == "interactive")
            .count(),
        1,
        "{replies:#?}"
    );
    let card = replies
        .iter()
        .find(|m| m.msg_type == "interactive")
        .unwrap();
    assert!(bot
        .store
        .get_card(&card.message_id)
        .await
        .unwrap()
        .is_some());
}

/// Twenty clicked cards swept by one updater invocation: the cards are worked on side by side, yet
/// Feishu's limits (50/s per app, 1000/min per API, 10/s per card, all on in the simulator) never
/// answer 429, and every card ends approved.
#[tokio::test]
async fn a_sweep_of_twenty_cards_runs_them_side_by_side_without_a_429() {
    let bot = memory_bot("entity").await;
    let mut cards = Vec::new();
    for _ in 0..20 {
        cards.push(bot.clicked_card().await);
        // The user asks once a second: 20 asks at once put 40 replies into one chat, over Feishu's
        // 5/s per chat (the bot then waits out each 429, which only slows this sweep test's setup).
        bot.sim.advance(Duration::from_secs(1));
    }
    bot.sim.advance(Duration::from_secs(3));
    bot.sim.clear_calls();
    let summary = bot.sweep().await;
    assert_eq!((summary.done, summary.failed), (20, 0), "{summary:?}");
    let calls = bot.sim.calls();
    let limited: Vec<_> = calls.iter().filter(|c| c.status == 429).collect();
    assert!(limited.is_empty(), "{limited:?}");
    // Each card's CardKit calls name its entity; the cards' spans of calls overlap.
    let mut spans = Vec::new();
    for card in &cards {
        assert!(bot.sim.card_text(card).unwrap().contains("请假通过"));
        let card_id = bot
            .store
            .get_card(card)
            .await
            .unwrap()
            .unwrap()
            .card_id
            .unwrap();
        let at: Vec<usize> = calls
            .iter()
            .enumerate()
            .filter(|(_, c)| c.path.contains(&card_id))
            .map(|(i, _)| i)
            .collect();
        // The walk: batch_update, content, batch_update.
        assert_eq!(at.len(), 3, "{card_id}: {at:?}");
        spans.push((at[0], at[2]));
    }
    spans.sort();
    assert!(
        spans.windows(2).any(|w| w[1].0 < w[0].1),
        "cards ran one after another: {spans:?}"
    );
}
