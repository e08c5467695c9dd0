//! `cardbot-admin` against DynamoDB Local with the bot and the simulator: a job made dead by a
//! permanent Feishu error is listed with its reason, requeued once the simulator recovers, and
//! delivered; a card's state and history and a request's audit trail come out as JSON, without
//! the update token.

use std::sync::Arc;
use std::time::Duration;

use cardbot::store::{JobStatus, JobStore};
use cardbot_admin::{run, AdminError, Cli};
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{leave_form, Bot};
use cardbot_tests::simulator::{FaultKind, SimConfig, Simulator};
use serde_json::{json, Value};

async fn admin<S>(bot: &Bot<S>, args: &[&str]) -> Result<Value, AdminError>
where
    S: cardbot::store::Store + cardbot::store::RateStore + cardbot::store::DeadJobStore + 'static,
{
    let cli = Cli::parse_args(std::iter::once("cardbot-admin").chain(args.iter().copied()))
        .expect("the arguments parse");
    let out = run(&cli.command, &*bot.store, bot.sim.now_ms()).await?;
    Ok(serde_json::from_str(&out).expect("JSON out"))
}

#[tokio::test]
async fn a_dead_job_is_listed_requeued_and_delivered() {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let bot = Bot::start(
        sim.clone(),
        Arc::new(dynamodb_local::fresh_store().await),
        "message",
    )
    .await;
    let card = bot.clicked_card().await;
    // Feishu refuses the delayed update for good (230011: recalled): the job dies at once.
    sim.fail_next(
        "POST",
        "/open-apis/interactive/v1/card/update",
        10,
        FaultKind::Api { code: 230011 },
    );
    sim.advance(Duration::from_secs(3));
    bot.sweep().await;
    let dead = admin(&bot, &["dead-jobs"]).await.unwrap();
    let listed = dead["dead_jobs"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{dead}");
    assert_eq!(listed[0]["card_key"], card.as_str());
    assert_eq!(listed[0]["job_id"], "post_answer");
    assert_eq!(listed[0]["status"], "dead");
    assert!(
        listed[0]["last_error"].as_str().unwrap().contains("230011"),
        "{dead}"
    );
    assert!(!bot.sim.card_text(&card).unwrap().contains("请假通过"));

    // The simulator recovers; the operator requeues the job; the updater delivers it.
    sim.clear_faults();
    let requeued = admin(&bot, &["requeue", &card, "post_answer"])
        .await
        .unwrap();
    assert_eq!(requeued["requeued"]["job_id"], "post_answer");
    let job = bot
        .store
        .get_job(&card, "post_answer")
        .await
        .unwrap()
        .unwrap();
    // A fresh set of attempts (its CardKit calls still get fresh idempotency keys: each run
    // reserves new sequences, which the keys carry).
    assert_eq!((job.status, job.attempts), (JobStatus::Pending, 0));
    assert!(admin(&bot, &["dead-jobs"]).await.unwrap()["dead_jobs"]
        .as_array()
        .unwrap()
        .is_empty());
    let summary = bot.sweep().await;
    // The requeued job, then the decision event of the request it approved.
    assert_eq!((summary.done, summary.failed), (2, 0), "{summary:?}");
    assert_eq!(bot.events.events().len(), 1);
    assert!(bot.sim.card_text(&card).unwrap().contains("请假通过"));
    // A second requeue finds nothing dead.
    let again = admin(&bot, &["requeue", &card, "post_answer"]).await;
    assert!(matches!(again, Err(AdminError::Refused(_))), "{again:?}");

    // The card's state and history, without the update token itself.
    let shown = admin(&bot, &["card", &card]).await.unwrap();
    assert_eq!(shown["card"]["status"], "leave_approved");
    let jobs: Vec<_> = shown["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].clone())
        .collect();
    assert!(
        jobs.contains(&json!("post_answer")) && jobs.contains(&json!("expire")),
        "{shown}"
    );
    assert!(shown["card"]["update_token"]["uses"].is_number());
    let token = sim.update_tokens().into_iter().next().unwrap().token;
    assert!(
        !shown.to_string().contains(&token),
        "the update token stays secret"
    );
    assert!(matches!(
        admin(&bot, &["card", "om_nothing_here"]).await,
        Err(AdminError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_requests_audit_trail_exports_as_json() {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let approver = sim.add_users(1).remove(0);
    let settings = [("APPROVER_OPEN_IDS", approver.open_id.as_str())];
    let bot = Bot::start_with(
        sim.clone(),
        Arc::new(dynamodb_local::fresh_store().await),
        "entity",
        &settings,
    )
    .await;
    let requester = sim.config().user();
    let card = bot.approval_card().await;
    bot.file_leave(
        &requester,
        &card,
        &leave_form("annual", "2026-12-01", "2026-12-02", "trip"),
    )
    .await;
    bot.sweep().await;
    let review = sim
        .messages(&approver.p2p_chat_id)
        .into_iter()
        .find(|m| m.msg_type == "interactive")
        .unwrap()
        .message_id;
    sim.press_as(
        &bot.card_url,
        &approver,
        &review,
        "btn_reject",
        &[("comment", json!("no"))],
    )
    .await
    .unwrap();
    // From the requester's card or the approver's, the same trail.
    for key in [&card, &review] {
        let audit = admin(&bot, &["audit", key]).await.unwrap();
        assert_eq!(audit["request"], card.as_str());
        assert_eq!(audit["status"], "leave_rejected");
        assert_eq!(audit["decided_by"], approver.open_id.as_str());
        assert_eq!(audit["comment"], "no");
        assert_eq!(audit["form"]["kind"], "leave");
        let actions: Vec<_> = audit["audit"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].clone())
            .collect();
        assert_eq!(actions, [json!("submitted"), json!("rejected")]);
        assert!(audit["audit"][0]["at"].as_str().unwrap().ends_with('Z'));
    }
}

/// A dead job that sends messages, older than Feishu's 1 h uuid window: `requeue` refuses it (a
/// run may send a message the user already has) unless `--force`, and then it is delivered.
#[tokio::test]
async fn an_old_message_sending_job_is_requeued_only_with_force() {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let bot = Bot::start(sim.clone(), store.clone(), "message").await;
    let user = sim.add_users(1).remove(0);
    let payload = json!({
        "source_message_id": "om_old_send",
        "chat_id": user.p2p_chat_id,
        "requester_open_id": user.open_id,
        "command": "help",
        "delivery": "message",
        "send_as": "p2p",
    });
    store
        .enqueue(&cardbot::jobs::send_reply_job(
            "om_old_send",
            payload,
            sim.now_ms(),
        ))
        .await
        .unwrap();
    // Feishu refuses the send for good: the job dies at once.
    sim.fail_next(
        "POST",
        "/open-apis/im/v1/messages",
        1,
        FaultKind::Api { code: 230002 },
    );
    bot.sweep().await;
    let job = store
        .get_job("om_old_send", "send_reply")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Dead, "{job:?}");

    // Within the hour a requeue is one more try as asked; two hours on it must be forced.
    sim.advance(Duration::from_secs(2 * 3600));
    let refused = admin(&bot, &["requeue", "om_old_send", "send_reply"]).await;
    let Err(AdminError::Refused(why)) = refused else {
        panic!("{refused:?}")
    };
    assert!(why.contains("--force") && why.contains("1 h"), "{why}");
    let job = store
        .get_job("om_old_send", "send_reply")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Dead, "nothing written");

    let forced = admin(&bot, &["requeue", "om_old_send", "send_reply", "--force"])
        .await
        .unwrap();
    assert_eq!(forced["requeued"]["job_id"], "send_reply");
    let job = store
        .get_job("om_old_send", "send_reply")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.status, job.attempts), (JobStatus::Pending, 0));
    let summary = bot.sweep().await;
    assert_eq!((summary.done, summary.failed), (1, 0), "{summary:?}");
    assert_eq!(bot.bot_messages(&user.p2p_chat_id).len(), 1);
}

/// `retain` holds a card's state past its 400 days; a card nobody has, or a bad number of days,
/// is refused and nothing is written.
#[tokio::test]
async fn retain_holds_a_card_and_refuses_what_it_cannot() {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let bot = Bot::start(
        sim.clone(),
        Arc::new(dynamodb_local::fresh_store().await),
        "message",
    )
    .await;
    let card = bot.approval_card().await;
    let held = admin(&bot, &["retain", &card, "--days", "1000"])
        .await
        .unwrap();
    assert_eq!(held["retained"]["card_key"], card.as_str());
    let missing = admin(&bot, &["retain", "om_nobody", "--days", "10"]).await;
    assert!(
        matches!(missing, Err(AdminError::NotFound(_))),
        "{missing:?}"
    );
    let zero = admin(&bot, &["retain", &card, "--days", "0"]).await;
    assert!(matches!(zero, Err(AdminError::Refused(_))), "{zero:?}");
}
