//! Decisions other systems receive: one event per ended request, on DynamoDB Local and the
//! simulator over HTTP; through Amazon EventBridge on the local AWS emulator, received by a rule
//! whose SQS target the test reads; and a job retried after a crash (the put done, its completion
//! lost) puts the same event id again.

use std::sync::Arc;
use std::time::Duration;

use cardbot::decisions;
use cardbot::store::dynamo::DynamoStore;
use cardbot::store::{CardStore, JobStore, NewJob};
use cardbot_tests::harness::{leave_form, toast, Bot};
use cardbot_tests::local_aws::emulator::Api;
use cardbot_tests::simulator::{ids, ChatKind, SimConfig, SimUser, Simulator};
use cardbot_tests::{aws_emulator, dynamodb_local};
use serde_json::{json, Value};

struct Scene {
    bot: Bot<DynamoStore>,
    requester: SimUser,
    approver: SimUser,
}

async fn scene(bus: Option<Arc<dyn cardbot::events::EventBus>>) -> Scene {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let approver = sim.add_users(1).remove(0);
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let settings = [("APPROVER_OPEN_IDS", approver.open_id.as_str())];
    let bot = Bot::start_on_bus(sim.clone(), store, "entity", &settings, bus).await;
    Scene {
        requester: sim.config().user(),
        bot,
        approver,
    }
}

impl Scene {
    /// 请假 filed with `reason`; (the requester's card, the approver's card).
    async fn file_leave(&self, reason: &str) -> (String, String) {
        let sim = &self.bot.sim;
        let delivery = sim
            .send_user_message(&self.bot.event_url, ChatKind::P2p, "审批")
            .await;
        assert_eq!(delivery.status, Some(200), "{}", delivery.response_body);
        let card = self
            .bot
            .bot_messages(ids::P2P_CHAT_ID)
            .last()
            .unwrap()
            .message_id
            .clone();
        sim.press_as(&self.bot.card_url, &self.requester, &card, "btn_leave", &[])
            .await
            .unwrap();
        let filed = sim
            .press_as(
                &self.bot.card_url,
                &self.requester,
                &card,
                "btn_file",
                &leave_form("annual", "2026-12-01", "2026-12-03", reason),
            )
            .await
            .unwrap();
        assert!(toast(&filed).contains("已提交"), "{filed:?}");
        assert_eq!(self.bot.sweep().await.failed, 0);
        let review = self
            .bot
            .bot_messages(&self.approver.p2p_chat_id)
            .last()
            .unwrap()
            .message_id
            .clone();
        (card, review)
    }

    async fn decide(&self, review: &str, button: &str, comment: &str) {
        let decided = self
            .bot
            .sim
            .press_as(
                &self.bot.card_url,
                &self.approver,
                review,
                button,
                &[("comment", json!(comment))],
            )
            .await
            .unwrap();
        toast(&decided);
    }
}

/// The documented shape (docs/decision-events.md).
fn assert_shape(detail: &Value, card: &str, approver: &str, requester: &str) {
    assert_eq!(detail["schema"], 1);
    assert_eq!(detail["event_id"], format!("{card}/approved"));
    assert_eq!(detail["request_id"], card);
    assert_eq!(detail["definition"], json!({"id": "leave", "version": 0}));
    assert_eq!(detail["requester"], requester);
    assert_eq!(detail["outcome"], "approved");
    assert_eq!(detail["automatic"], false);
    assert_eq!(detail["fields"]["reason"], "family trip");
    assert_eq!(detail["fields"]["leave_type"], "annual");
    let step = &detail["steps"][0];
    assert_eq!(step["outcome"], "approved");
    assert_eq!(step["approvers"], json!([approver]));
    assert_eq!(step["votes"][0]["open_id"], approver);
    assert_eq!(step["votes"][0]["approve"], true);
    assert_eq!(step["votes"][0]["comment"], "好的");
    assert!(detail["filed_at"].as_i64().unwrap() > 0);
    assert!(detail["ended_at"].as_i64().unwrap() >= detail["filed_at"].as_i64().unwrap());
}

#[tokio::test]
async fn an_approved_request_puts_one_decision_event_and_nothing_before_it_ends() {
    let s = scene(None).await;
    let (card, review) = s.file_leave("family trip").await;
    assert!(s.bot.events.events().is_empty(), "filing ends nothing");
    s.decide(&review, "btn_approve", "好的").await;
    let summary = s.bot.sweep().await;
    assert_eq!(summary.failed, 0, "{summary:?}");
    let events = s.bot.events.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].source, decisions::SOURCE);
    assert_eq!(events[0].detail_type, decisions::DETAIL_TYPE);
    assert_shape(
        &events[0].detail,
        &card,
        &s.approver.open_id,
        &s.requester.open_id,
    );
    // Sweeping again puts nothing more.
    s.bot.sweep().await;
    assert_eq!(s.bot.events.events().len(), 1);
}

#[tokio::test]
async fn a_withdrawn_and_a_rejected_request_each_put_their_outcome() {
    let s = scene(None).await;
    let (first, review) = s.file_leave("one").await;
    s.decide(&review, "btn_reject", "不行").await;
    let (second, _) = s.file_leave("two").await;
    let withdrawn = s
        .bot
        .sim
        .press_as(&s.bot.card_url, &s.requester, &second, "btn_withdraw", &[])
        .await
        .unwrap();
    toast(&withdrawn);
    s.bot.sweep().await;
    let outcomes: Vec<(String, String)> = s
        .bot
        .events
        .events()
        .iter()
        .map(|e| {
            (
                e.detail["request_id"].as_str().unwrap().to_owned(),
                e.detail["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (first, "rejected".to_owned()),
            (second, "withdrawn".to_owned())
        ]
    );
}

/// The updater died after EventBridge took the event and before the job was marked done: the
/// job runs again and puts the event again, with the same event id (consumers dedup on it).
#[tokio::test]
async fn a_job_retried_after_a_crash_puts_the_same_event_id() {
    let s = scene(None).await;
    let (card, review) = s.file_leave("family trip").await;
    s.decide(&review, "btn_approve", "好的").await;
    s.bot.sweep().await;
    // The lost completion: the done job made pending again, as a crash before `complete` leaves it.
    s.bot
        .store
        .enqueue(&NewJob {
            card_key: card.clone(),
            job_id: "decision_event".into(),
            kind: cardbot::jobs::JobKind::DecisionEvent.into(),
            payload: json!({}),
            not_before: 0,
            rearm: true,
        })
        .await
        .unwrap();
    s.bot.sweep().await;
    let ids: Vec<Value> = s
        .bot
        .events
        .events()
        .iter()
        .map(|e| e.detail["event_id"].clone())
        .collect();
    assert_eq!(
        ids,
        [
            json!(format!("{card}/approved")),
            json!(format!("{card}/approved"))
        ]
    );
    let state = s.bot.store.get_card(&card).await.unwrap().unwrap();
    assert_eq!(state.status, "leave_approved");
}

#[tokio::test]
async fn decision_events_reach_a_rules_sqs_target_through_eventbridge() {
    let endpoint = aws_emulator::endpoint().await;
    let name = format!("decisions-{}", uuid::Uuid::new_v4().simple());
    // A bus of the test's own, so parallel tests' events stay apart.
    let api = Api::new(&endpoint);
    api.events("CreateEventBus", json!({ "Name": name }))
        .await
        .unwrap();
    let pattern = json!({"source": [decisions::SOURCE], "detail-type": [decisions::DETAIL_TYPE]});
    let queue_url = api
        .queue_for_rule(Some(&name), &name, &pattern)
        .await
        .unwrap();

    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(aws_emulator::REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "emulator",
        ))
        .endpoint_url(&endpoint)
        .load()
        .await;
    let bus = Arc::new(cardbot::events::EventBridgeBus::new(&sdk, &name));
    let s = scene(Some(bus)).await;
    let (card, review) = s.file_leave("family trip").await;
    s.decide(&review, "btn_approve", "好的").await;
    assert_eq!(s.bot.sweep().await.failed, 0);

    let received = api
        .receive_events(&queue_url, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(received.len(), 1, "{received:?}");
    let event = &received[0];
    assert_eq!(event["source"], decisions::SOURCE);
    assert_eq!(event["detail-type"], decisions::DETAIL_TYPE);
    assert_shape(
        &event["detail"],
        &card,
        &s.approver.open_id,
        &s.requester.open_id,
    );
}
