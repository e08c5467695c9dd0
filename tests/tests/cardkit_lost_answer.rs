//! A CardKit write whose answer was lost (DynamoDB Local + the simulator over HTTP): the simulator
//! applies the write but answers too late, the client sends it again with the same uuid, and the
//! simulator (switched to refuse a repeated uuid) answers 200770. The write was applied: the walk
//! goes on, the card ends approved with streaming off, and the job is done, not dead.

use std::sync::Arc;
use std::time::Duration;

use cardbot::entry::card_updater::CardUpdater;
use cardbot::feishu::{FeishuClient, FeishuClientConfig, RetryPolicy};
use cardbot::store::{CardStore, JobStatus};
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{stream_insert, Bot, SimulatorClock};
use cardbot_tests::simulator::{FaultKind, FaultSpec, SimConfig, Simulator, UuidRepeat};

#[tokio::test]
async fn a_cardkit_write_applied_before_its_lost_answer_is_done_on_200770() {
    let sim = Arc::new(
        Simulator::start(SimConfig {
            uuid_repeat: UuidRepeat::Conflict,
            ..SimConfig::default()
        })
        .await
        .unwrap(),
    );
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let bot = Bot::start(sim.clone(), store.clone(), "entity").await;
    let card = bot.clicked_card().await;

    // An updater whose attempts give up after 1 s: an answer later than that is lost.
    let clock = Arc::new(SimulatorClock(sim.clone()));
    let feishu = Arc::new(
        FeishuClient::builder(FeishuClientConfig::from(&bot.config.feishu), store.clone())
            .retry_policy(RetryPolicy {
                attempt_timeout: Duration::from_secs(1),
                base_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(100),
                ..RetryPolicy::default()
            })
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let mut updater = CardUpdater::new(
        &bot.config.config,
        store.clone(),
        feishu,
        clock,
        "lost-answer".to_owned(),
    );
    updater.per_job = Duration::from_secs(20);
    // The walk's first write (streaming on) is applied, but answered after 1.5 s.
    sim.inject_fault(FaultSpec {
        method: Some("POST".into()),
        path: "/open-apis/cardkit/v1/cards/*/batch_update".into(),
        kind: FaultKind::LoseAnswer { millis: 1500 },
        count: 1,
    });
    sim.clear_calls();
    let job = bot.post_answer_job(&card).await;
    sim.advance(Duration::from_secs(3));
    let summary = updater
        .handle(
            &stream_insert(&card, &job.job_id, job.due_at),
            sim.now_ms() + 60_000,
        )
        .await;

    // The repeat was refused as a uuid conflict, and that counted as done.
    let conflicts = sim
        .calls()
        .iter()
        .filter(|c| c.code == Some(200770))
        .count();
    let seen: Vec<String> = sim
        .calls()
        .iter()
        .map(|c| format!("{} {} {:?}", c.method, c.path, c.code))
        .collect();
    assert_eq!(conflicts, 1, "{summary:?} {seen:#?}");
    assert_eq!((summary.done, summary.failed), (1, 0), "{summary:?}");
    let job = bot.post_answer_job(&card).await;
    assert_eq!(job.status, JobStatus::Done, "{job:?}");
    let shown = sim.card(&card).unwrap();
    assert!(!shown.streaming, "streaming is off again");
    assert!(shown.text.contains("请假通过"), "{}", shown.text);
    let state = store.get_card(&card).await.unwrap().unwrap();
    assert!(state.status.ends_with("_approved"), "{}", state.status);
}
