//! `make run`'s demo conversations, played against the functions wired to DynamoDB Local and the
//! simulator (the harness), with the updater swept in the background as the stack's driver does.

use std::sync::Arc;
use std::time::Duration;

use cardbot::approval::ApprovalData;
use cardbot::store::CardStore;
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::Bot;
use cardbot_tests::local_stack::demo;
use cardbot_tests::simulator::{SimConfig, Simulator};

async fn play(with_approver: bool) {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let approver = with_approver.then(|| sim.add_users(1).remove(0));
    let list = approver
        .as_ref()
        .map(|a| a.open_id.clone())
        .unwrap_or_default();
    let settings = [("APPROVER_OPEN_IDS", list.as_str())];
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let bot = Arc::new(Bot::start_with(sim.clone(), store, "entity", &settings).await);
    let sweeper = {
        let bot = bot.clone();
        tokio::spawn(async move {
            loop {
                bot.sweep().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let played = demo::play(&sim, &bot.event_url, &bot.card_url, approver.as_ref()).await;
    sweeper.abort();
    let card = played.unwrap();
    assert!(sim.card_text(&card).unwrap().contains(demo::LEAVE_APPROVED));
    let state = bot.store.get_card(&card).await.unwrap().unwrap();
    let data = ApprovalData::from_value(&state.data).unwrap();
    match approver {
        Some(approver) => {
            assert_eq!(data.decided_by.as_deref(), Some(approver.open_id.as_str()));
            assert_eq!(data.comment.as_deref(), Some("同意，注意工作交接"));
        }
        None => assert!(data.approvers.is_empty() && data.decided_by.is_none()),
    }
}

#[tokio::test]
async fn the_approval_demo_plays_both_sides_to_the_end() {
    play(true).await;
}

#[tokio::test]
async fn the_tutorial_demo_still_plays() {
    play(false).await;
}
