//! The updater's failure accounting end to end (simulator over HTTP, DynamoDB Local): a permanent
//! Feishu error leaves the job dead at once; a crashed updater's lapsed lease counts as an attempt
//! and the next updater still delivers.

use std::sync::Arc;
use std::time::Duration;

use cardbot::store::dynamo::DynamoStore;
use cardbot::store::{CardStore, JobStatus, JobStore, LEASE_EXPIRED_ERROR};
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{stream_insert, Bot};
use cardbot_tests::simulator::{SimConfig, Simulator};

async fn bot() -> Bot<DynamoStore> {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator starts");
    let store = dynamodb_local::fresh_store().await;
    Bot::start(Arc::new(sim), Arc::new(store), "entity").await
}

#[tokio::test]
async fn a_permanent_feishu_error_leaves_the_job_dead_at_once() {
    let bot = bot().await;
    let card = bot.clicked_card().await;
    // The card's CardKit entity is gone: Feishu answers 200740, which no retry fixes.
    let mut state = bot.store.get_card(&card).await.unwrap().unwrap();
    state.card_id = Some("7355_gone".into());
    bot.store.update_card(&state).await.unwrap();
    let job = bot.post_answer_job(&card).await;
    let summary = bot
        .run_updater(&stream_insert(&card, "post_answer", job.due_at))
        .await;
    assert_eq!((summary.claimed, summary.failed), (1, 1), "{summary:?}");
    let dead = bot.post_answer_job(&card).await;
    assert_eq!((dead.status, dead.attempts), (JobStatus::Dead, 1));
    let error = dead.last_error.unwrap_or_default();
    assert!(
        error.starts_with("permanent:") && error.contains("200740"),
        "{error}"
    );
    // Nothing is left to retry: days later the sweep finds only the card's expiry job.
    bot.sim.advance(Duration::from_secs(24 * 3600));
    let due = bot
        .store
        .due_jobs(bot.sim.now_ms(), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job_id)
        .filter(|id| id == "post_answer")
        .count();
    assert_eq!(due, 0);
    let summary = bot
        .run_updater(&stream_insert(&card, "post_answer", job.due_at))
        .await;
    assert_eq!(summary.claimed, 0, "{summary:?}");
}

#[tokio::test]
async fn a_crashed_updater_costs_one_attempt_and_the_next_one_delivers() {
    let bot = bot().await;
    let card = bot.clicked_card().await;
    // An updater claims the job and dies (Lambda timeout) without completing or failing it.
    let queued = bot.post_answer_job(&card).await;
    bot.sim.advance(Duration::from_millis(
        (queued.due_at - bot.sim.now_ms()).max(0) as u64,
    ));
    bot.store
        .claim_job(&card, "post_answer", "crashed", queued.due_at, 1_000)
        .await
        .unwrap()
        .expect("claimable");
    bot.sim.advance(Duration::from_secs(2));
    let summary = bot.run_post_answer(&card).await;
    assert_eq!((summary.claimed, summary.done), (1, 1), "{summary:?}");
    let done = bot.post_answer_job(&card).await;
    assert_eq!(
        (done.status, done.attempts, done.last_error.as_deref()),
        (JobStatus::Done, 1, Some(LEASE_EXPIRED_ERROR))
    );
    let shown = bot.sim.card_text(&card).unwrap();
    assert!(shown.contains("请假通过"), "{shown}");
}
