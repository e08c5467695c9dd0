//! The functions' metrics as CloudWatch would read them: a bot on DynamoDB Local and the simulator
//! handles messages, clicks and jobs, the EMF exporter writes its documents, and this test parses
//! them back and finds every metric of `cardbot::telemetry::names` with the values the work made.
//! One test in this file: the metrics recorder is process-wide.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cardbot::telemetry::{names, Emitter, FUNCTION_DIMENSION, NAMESPACE};
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{leave_form, Bot};
use cardbot_tests::simulator::{ids, ChatKind, FaultKind, SimConfig, Simulator};
use serde_json::{json, Value};

/// A metric: its name and its dimensions (name, value).
type MetricKey = (String, Vec<(String, String)>);
/// Every value of each metric.
type Metrics = BTreeMap<MetricKey, Vec<f64>>;

/// Every metric value in the EMF documents: (name, dimension values) → values.
fn parse(emf: &str) -> Metrics {
    let mut metrics = BTreeMap::new();
    for line in emf.lines().filter(|l| !l.trim().is_empty()) {
        let doc: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].as_i64().is_some(), "{line}");
        for directive in aws["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(directive["Namespace"], NAMESPACE, "{line}");
            let dimensions: Vec<String> = directive["Dimensions"][0]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_owned())
                .collect();
            assert!(
                dimensions.contains(&FUNCTION_DIMENSION.to_owned()),
                "{line}"
            );
            let dims: Vec<(String, String)> = dimensions
                .iter()
                .map(|d| (d.clone(), doc[d].as_str().unwrap_or_default().to_owned()))
                .collect();
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap().to_owned();
                let values = match &doc[&name] {
                    Value::Array(list) => list.iter().filter_map(Value::as_f64).collect(),
                    v => v.as_f64().into_iter().collect::<Vec<_>>(),
                };
                metrics
                    .entry((name, dims.clone()))
                    .or_insert_with(Vec::new)
                    .extend(values);
            }
        }
    }
    metrics
}

fn total(metrics: &Metrics, name: &str) -> f64 {
    metrics
        .iter()
        .filter(|((n, _), _)| n == name)
        .flat_map(|(_, v)| v)
        .sum()
}

fn with_dimension(metrics: &Metrics, name: &str, dimension: &str, value: &str) -> f64 {
    metrics
        .iter()
        .filter(|((n, dims), _)| {
            n == name && dims.iter().any(|(d, v)| d == dimension && v == value)
        })
        .flat_map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn handlers_emit_every_metric_with_the_values_of_their_work() {
    let emitter =
        cardbot::telemetry::install("event-callback").expect("the only recorder of this process");
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let approver = sim.add_users(1).remove(0);
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let settings = [("APPROVER_OPEN_IDS", approver.open_id.as_str())];
    let bot = Bot::start_with(sim.clone(), store, "message", &settings).await;
    let requester = sim.config().user();

    // Two messages answered, one re-delivered (a duplicate), one forged (rejected).
    let first = sim
        .send_user_message(&bot.event_url, ChatKind::P2p, "审批")
        .await;
    assert_eq!(first.status, Some(200));
    sim.send_user_message(&bot.event_url, ChatKind::P2p, "help")
        .await;
    sim.post_event(&bot.event_url, &first.plaintext).await;
    let forged = reqwest::Client::new()
        .post(&bot.event_url)
        .header("x-lark-signature", "0".repeat(64))
        .header("x-lark-request-timestamp", "1")
        .header("x-lark-request-nonce", "n")
        .body(r#"{"encrypt":"AAAA"}"#)
        .send()
        .await
        .unwrap();
    assert!(forged.status().is_client_error());
    // Three clicks (open the form, file, and later the decision) and one unknown action.
    let card = sim
        .messages(ids::P2P_CHAT_ID)
        .into_iter()
        .find(|m| m.msg_type == "interactive")
        .unwrap()
        .message_id;
    bot.file_leave(
        &requester,
        &card,
        &leave_form("annual", "2026-12-01", "2026-12-01", "trip"),
    )
    .await;
    sim.click_card(&bot.card_url, &card, json!({"type": "delete_all"}))
        .await
        .unwrap();
    // The approver's card: its send meets one 429 first.
    sim.fail_next(
        "POST",
        "/open-apis/im/v1/messages",
        1,
        FaultKind::RateLimited { reset_secs: 0 },
    );
    bot.sweep().await;
    let review = sim
        .messages(&approver.p2p_chat_id)
        .into_iter()
        .find(|m| m.msg_type == "interactive")
        .unwrap()
        .message_id;
    sim.press_as(&bot.card_url, &approver, &review, "btn_approve", &[])
        .await
        .unwrap();
    // The requester's card refresh fails for now (retried later); the text meets a permanent
    // error (dead).
    sim.fail_next(
        "POST",
        "/open-apis/interactive/v1/card/update",
        3,
        FaultKind::ServerError { status: 500 },
    );
    sim.fail_next(
        "POST",
        "/open-apis/im/v1/messages",
        1,
        FaultKind::Api { code: 230011 },
    );
    sim.advance(Duration::from_secs(1));
    bot.sweep().await;

    let mut out = Vec::new();
    emitter.flush_to(&mut out);
    let emf = String::from_utf8(out).unwrap();
    let metrics = parse(&emf);
    let trust = approver_trouble(&emitter).await;
    let tenants = store_tenants(&emitter).await;
    for name in names::ALL {
        assert!(
            metrics
                .keys()
                .chain(trust.keys())
                .chain(tenants.keys())
                .any(|(n, _)| n == name),
            "{name} missing from the EMF:\n{emf}"
        );
    }
    // A self-built app writes no tenant metric.
    assert_eq!(total(&metrics, names::TENANT_REQUESTS), 0.0);
    // A store app's: its tenant's message, click and the click's job.
    let tenant = cardbot_tests::simulator::ids::TENANT_KEY;
    assert_eq!(
        with_dimension(&tenants, names::TENANT_REQUESTS, "Tenant", tenant),
        3.0
    );
    for kind in ["event", "click", "job"] {
        assert_eq!(
            with_dimension(&tenants, names::TENANT_REQUESTS, "Kind", kind),
            1.0,
            "{kind}"
        );
    }
    // Received: 2 messages + the re-delivery + 4 clicks; the forged one is not.
    assert_eq!(total(&metrics, names::RECEIVED), 7.0, "{emf}");
    assert_eq!(total(&metrics, names::ANSWERED), 7.0, "{emf}");
    assert_eq!(total(&metrics, names::DUPLICATES), 1.0);
    assert_eq!(total(&metrics, names::REPLIES_SENT), 2.0);
    assert_eq!(total(&metrics, names::CLICKS), 3.0);
    assert_eq!(total(&metrics, names::DECISIONS), 1.0);
    assert_eq!(
        with_dimension(&metrics, names::REJECTED, "Reason", "unknown action"),
        1.0
    );
    assert_eq!(total(&metrics, names::REJECTED), 2.0, "{emf}");
    // The approver's card, then the decider's card refreshed (the requester's is retried), and
    // the decided request's decision event.
    assert_eq!(total(&metrics, names::JOBS_DELIVERED), 3.0, "{emf}");
    assert_eq!(total(&metrics, names::JOBS_RETRIED), 1.0, "{emf}");
    assert_eq!(total(&metrics, names::JOBS_DEAD), 1.0, "{emf}");
    assert_eq!(total(&metrics, names::RATE_LIMITED), 1.0);
    assert_eq!(
        with_dimension(&metrics, names::FEISHU_ERRORS, "Code", "230011"),
        1.0
    );
    assert_eq!(
        with_dimension(&metrics, names::FEISHU_ERRORS, "Code", "99991400"),
        1.0
    );
    let latencies: Vec<f64> = metrics
        .iter()
        .filter(|((n, _), _)| n == names::ANSWER_LATENCY)
        .flat_map(|(_, v)| v.clone())
        .collect();
    // Every answer's latency, the refused one's too.
    assert_eq!(latencies.len(), 8);
    assert!(
        latencies.iter().all(|ms| *ms > 0.0 && *ms < 3_000.0),
        "{latencies:?}"
    );
}

/// A second bot whose leader look-up lacks the contact scope, and a third with one approver of
/// two outside the app's availability (230013): each counted once, in their own flush.
/// A store app's tenant sends 审批 and clicks 请假; the click's job runs.
async fn store_tenants(emitter: &Emitter) -> Metrics {
    let sim = Arc::new(
        Simulator::start(SimConfig {
            app_type: cardbot_tests::simulator::SimAppType::Store,
            ..SimConfig::default()
        })
        .await
        .unwrap(),
    );
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let bot = Bot::start_with(
        sim.clone(),
        store,
        "message",
        &[("FEISHU_APP_TYPE", "store")],
    )
    .await;
    assert_eq!(sim.push_app_ticket(&bot.event_url).await.status, Some(200));
    bot.clicked_card().await;
    sim.advance(std::time::Duration::from_secs(3));
    bot.sweep().await;
    let mut out = Vec::new();
    emitter.flush_to(&mut out);
    parse(&String::from_utf8(out).unwrap())
}

async fn approver_trouble(emitter: &Emitter) -> Metrics {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let leader = [
        ("APPROVER_FROM_LEADER", "true"),
        ("APPROVAL_FALLBACK", "refuse"),
    ];
    let bot = Bot::start_with(sim.clone(), store, "message", &leader).await;
    sim.set_contact_access(cardbot_tests::simulator::ContactAccess::NoScope);
    file_a_leave(&bot).await;
    bot.sweep().await;

    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let approvers = sim.add_users(2);
    let list = format!("{},{}", approvers[0].open_id, approvers[1].open_id);
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let bot = Bot::start_with(
        sim.clone(),
        store,
        "message",
        &[("APPROVER_OPEN_IDS", &list)],
    )
    .await;
    file_a_leave(&bot).await;
    sim.fail_next(
        "POST",
        "/open-apis/im/v1/messages",
        1,
        FaultKind::Api { code: 230013 },
    );
    bot.sweep().await;
    let reached: usize = approvers
        .iter()
        .map(|a| sim.messages(&a.p2p_chat_id).len())
        .sum();
    assert_eq!(reached, 1, "the other approver got the card");

    let mut out = Vec::new();
    emitter.flush_to(&mut out);
    let emf = String::from_utf8(out).unwrap();
    let metrics = parse(&emf);
    assert_eq!(total(&metrics, names::APPROVER_LOOKUP_DENIED), 1.0, "{emf}");
    assert_eq!(total(&metrics, names::APPROVERS_UNREACHABLE), 1.0, "{emf}");
    metrics
}

/// `审批` in the requester's p2p chat, then a 请假 filed on its card.
async fn file_a_leave(bot: &Bot<cardbot::store::dynamo::DynamoStore>) {
    let card = bot.approval_card().await;
    let requester = bot.sim.config().user();
    bot.file_leave(
        &requester,
        &card,
        &leave_form("annual", "2026-12-01", "2026-12-01", "x"),
    )
    .await;
}
