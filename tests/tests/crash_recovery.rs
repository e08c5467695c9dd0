//! Exactly once through crashes (DynamoDB Local + the simulator over HTTP): a function that dies
//! right after its dedup claim, after creating the reply's card entity, or after a click's state
//! write loses nothing. Feishu's re-delivery (its first retry comes 15 s later) takes the lapsed
//! claim over and finishes the work; the chat gets exactly one text and one card, and a click is
//! applied exactly once.
//!
//! Every case runs in both delivery modes and against the three ways Feishu might answer a request
//! that repeats a uuid (`UuidRepeat`): the first answer again, a 200770 refusal, or a second message.
//! The bot keeps what it already sent in the table, so it never leans on Feishu's uuid replay.

use std::sync::Arc;
use std::time::Duration;

use cardbot::store::dynamo::DynamoStore;
use cardbot::store::{CardStore, JobStatus};
use cardbot_tests::dynamodb_local;
use cardbot_tests::faults::{HangAfter, HangPoint};
use cardbot_tests::harness::Bot;
use cardbot_tests::simulator::{
    ids, ChatKind, ChatMessage, Sender, SimConfig, Simulator, UuidRepeat,
};
use serde_json::json;

/// Feishu's first re-delivery of an unanswered event or callback.
const FEISHU_RETRY: Duration = Duration::from_secs(15);

/// Where a case runs: the card delivery mode and how the simulator answers a repeated uuid.
#[derive(Debug, Clone, Copy)]
struct Mode {
    delivery: &'static str,
    uuid_repeat: UuidRepeat,
}

async fn bot(mode: Mode) -> (Bot<HangAfter<DynamoStore>>, Arc<HangAfter<DynamoStore>>) {
    // A dead function never answers: the simulator gives up after Feishu's 3 s.
    let sim = Simulator::start(SimConfig {
        uuid_repeat: mode.uuid_repeat,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let store = Arc::new(HangAfter::new(Arc::new(
        dynamodb_local::fresh_store().await,
    )));
    (
        Bot::start(Arc::new(sim), store.clone(), mode.delivery).await,
        store,
    )
}

fn from_bot(bot: &Bot<HangAfter<DynamoStore>>) -> Vec<ChatMessage> {
    bot.sim
        .messages(ids::P2P_CHAT_ID)
        .into_iter()
        .filter(|m| matches!(m.sender, Sender::App { .. }))
        .collect()
}

/// Sends `审批` with the function dying at `point`, then lets Feishu re-deliver it; returns the card.
async fn message_survives(mode: Mode, point: HangPoint) -> (Bot<HangAfter<DynamoStore>>, String) {
    let (bot, store) = bot(mode).await;
    store.arm(point);
    let first = bot
        .sim
        .send_user_message(&bot.event_url, ChatKind::P2p, "审批")
        .await;
    assert!(store.fired(), "the function died at {point:?}");
    assert_eq!(first.status, None, "a dead function does not answer");
    bot.sim.advance(FEISHU_RETRY);
    let again = bot.sim.post_event(&bot.event_url, &first.plaintext).await;
    assert_eq!(again.status, Some(200), "{}", again.response_body);
    // A third delivery (another retry, or a duplicate) does nothing more.
    let third = bot.sim.post_event(&bot.event_url, &first.plaintext).await;
    assert_eq!(third.status, Some(200));
    let replies = from_bot(&bot);
    let kinds: Vec<&str> = replies.iter().map(|m| m.msg_type.as_str()).collect();
    assert_eq!(
        kinds,
        ["text", "interactive"],
        "exactly one text and one card"
    );
    let card = replies[1].message_id.clone();
    assert!(
        bot.store.get_card(&card).await.unwrap().is_some(),
        "state behind the card"
    );
    (bot, card)
}

/// The card reaches its approved state through a click and the post-answer job.
async fn approve(bot: &Bot<HangAfter<DynamoStore>>, card: &str) {
    let clicked = bot
        .sim
        .click_card(&bot.card_url, card, json!({"type": "leave"}))
        .await
        .unwrap();
    assert!(clicked.card_updated, "{:?}", clicked.delivery.response_body);
    assert_eq!(bot.run_post_answer(card).await.done, 1);
    assert!(bot.sim.card_text(card).unwrap().contains("请假通过"));
}

async fn a_message_whose_function_died_after_its_claim_is_answered_once(mode: Mode) {
    let (bot, card) = message_survives(mode, HangPoint::Claim).await;
    approve(&bot, &card).await;
}

/// Entity mode only: message mode creates no entity, so the hang point is never reached.
async fn a_reply_retried_after_a_crash_sends_the_entity_it_created(mode: Mode) {
    let (bot, card) = message_survives(mode, HangPoint::KeepReplyEntity).await;
    let state = bot.store.get_card(&card).await.unwrap().unwrap();
    let sent = bot
        .sim
        .message(&card)
        .unwrap()
        .card_id
        .expect("sent by card_id");
    assert_eq!(
        state.card_id.as_deref(),
        Some(sent.as_str()),
        "the state names the entity the chat shows"
    );
    let created: Vec<_> = bot
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path.ends_with("/cardkit/v1/cards"))
        .collect();
    assert_eq!(created.len(), 1, "the retry reuses the entity it kept");
    // Later updates reach the card the user sees.
    approve(&bot, &card).await;
}

/// Clicks 请假 with the function dying at `point`, re-delivers the callback, and checks the click
/// was applied exactly once and the card still reaches its approved state.
async fn click_survives(mode: Mode, point: HangPoint) {
    let (bot, store) = bot(mode).await;
    bot.sim
        .send_user_message(&bot.event_url, ChatKind::P2p, "审批")
        .await;
    let card = from_bot(&bot)[1].message_id.clone();
    store.arm(point);
    let first = bot
        .sim
        .click_card(&bot.card_url, &card, json!({"type": "leave"}))
        .await
        .unwrap();
    assert!(store.fired(), "the function died at {point:?}");
    assert_eq!(first.delivery.status, None);
    bot.sim.advance(FEISHU_RETRY);
    let again = bot.sim.redeliver_callback(&bot.card_url, &first).await;
    assert_eq!(
        again.delivery.status,
        Some(200),
        "{}",
        again.delivery.response_body
    );
    assert!(again.card_updated, "the answer shows the submitted card");
    let state = bot.store.get_card(&card).await.unwrap().unwrap();
    assert_eq!(state.status, "leave_submitted");
    assert_eq!(state.version, 2, "created, then one transition");
    let duplicate = bot
        .sim
        .post_event(&bot.card_url, &first.delivery.plaintext)
        .await;
    assert_eq!(
        duplicate.response_json,
        Some(json!({})),
        "done: answered empty"
    );
    assert_eq!(bot.run_post_answer(&card).await.done, 1);
    assert!(bot.sim.card_text(&card).unwrap().contains("请假通过"));
    let state = bot.store.get_card(&card).await.unwrap().unwrap();
    assert_eq!(state.version, 3, "one approval on top");
    assert_eq!(bot.post_answer_job(&card).await.status, JobStatus::Done);
}

/// The text went out and was kept, then the function died: the retry sends the card only. Against a
/// Feishu that forgets or refuses a repeated uuid this fails unless the bot kept the send.
async fn a_reply_whose_function_died_after_its_text_sends_no_second_text(mode: Mode) {
    let (bot, card) = message_survives(mode, HangPoint::KeepReplyText).await;
    approve(&bot, &card).await;
}

async fn a_click_whose_function_died_after_its_claim_is_applied_once(mode: Mode) {
    click_survives(mode, HangPoint::Claim).await;
}

async fn a_click_whose_function_died_mid_transition_is_applied_once(mode: Mode) {
    click_survives(mode, HangPoint::UpdateCardAndEnqueue).await;
}

/// One test per case, delivery mode and uuid answer: `case::entity::conflict` and so on.
macro_rules! cases {
    ($($case:ident: [$($delivery:ident),+];)+) => {
        $(mod $case {
            $(mod $delivery {
                use super::super::{Mode, UuidRepeat};

                async fn run(uuid_repeat: UuidRepeat) {
                    super::super::$case(Mode {
                        delivery: stringify!($delivery),
                        uuid_repeat,
                    })
                    .await;
                }

                #[tokio::test]
                async fn replay() {
                    run(UuidRepeat::Replay).await;
                }

                #[tokio::test]
                async fn conflict() {
                    run(UuidRepeat::Conflict).await;
                }

                #[tokio::test]
                async fn ignore() {
                    run(UuidRepeat::Ignore).await;
                }
            })+
        })+
    };
}

cases! {
    a_message_whose_function_died_after_its_claim_is_answered_once: [entity, message];
    a_reply_retried_after_a_crash_sends_the_entity_it_created: [entity];
    a_reply_whose_function_died_after_its_text_sends_no_second_text: [entity, message];
    a_click_whose_function_died_after_its_claim_is_applied_once: [entity, message];
    a_click_whose_function_died_mid_transition_is_applied_once: [entity, message];
}
