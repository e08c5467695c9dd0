//! A click whose answer never reached Feishu (the bot decided it, the client had given up): the
//! card still shows what was first sent, so the post-answer job's element edits find nothing to
//! edit (CardKit 300313). The job must not die: its retry replaces the whole card, and the user
//! sees the decision. On DynamoDB Local and the simulator, in entity mode (message mode replaces
//! the whole card on every update).

use std::sync::Arc;
use std::time::Duration;

use cardbot::store::{JobStatus, JobStore};
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::Bot;
use cardbot_tests::simulator::{ids, ChatKind, SimConfig, Simulator};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_whose_answer_was_lost_still_shows_its_decision() {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let bot = Bot::start(
        sim.clone(),
        Arc::new(dynamodb_local::fresh_store().await),
        "entity",
    )
    .await;
    // A first card, clicked normally: a genuine callback body to model the lost one on.
    bot.clicked_card().await;
    let genuine = sim
        .deliveries()
        .into_iter()
        .rfind(|d| d.kind == "card_callback")
        .expect("the first click's callback");
    // The second card: its click reaches the bot, but its answer never reaches the client, so
    // the card entity still shows the card as sent.
    sim.send_user_message(&bot.event_url, ChatKind::P2p, "审批")
        .await;
    let second = bot
        .bot_messages(ids::P2P_CHAT_ID)
        .into_iter()
        .rfind(|m| m.msg_type == "interactive")
        .unwrap()
        .message_id;
    let mut lost = genuine.plaintext.clone();
    lost["header"]["event_id"] = json!("5d2c3b4a59687766554433221100ffee");
    lost["event"]["context"]["open_message_id"] = json!(second);
    lost["event"]["token"] = json!("c-0123456789abcdef0123456789abcdef01234567");
    let answered = sim.post_event(&bot.card_url, &lost).await;
    assert_eq!(answered.status, Some(200), "{}", answered.response_body);
    assert_eq!(
        sim.card(&second).unwrap().history.len(),
        1,
        "the answer was not applied"
    );
    // The post-answer job: its first attempt's edits fail, its retry replaces the card.
    for _ in 0..4 {
        sim.advance(Duration::from_secs(10));
        bot.sweep().await;
    }
    let job = bot
        .store
        .get_job(&second, "post_answer")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Done, "{:?}", job.last_error);
    let text = sim.card_text(&second).unwrap();
    assert!(text.contains("通过"), "{text}");
}
