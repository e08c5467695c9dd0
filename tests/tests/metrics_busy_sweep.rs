//! A busy updater sweep's metrics as CloudWatch reads them: 500 jobs on DynamoDB Local, each an
//! Open API call to the simulator, then the EMF documents of the invocation parsed back. Every
//! `LimiterWait` sample (one per call) is written, across as many documents as CloudWatch's 100
//! values per metric need, and nothing logs an error. One test in this file: the metrics recorder
//! is process-wide.

use std::io::Write;
use std::sync::{Arc, Mutex};

use cardbot::jobs::send_reply_job;
use cardbot::store::JobStore;
use cardbot::telemetry::names;
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::Bot;
use cardbot_tests::simulator::{SimConfig, Simulator};
use serde_json::{json, Value};

const JOBS: usize = 500;

/// Log lines, as the function's log would hold them.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_of_500_jobs_writes_every_metric_sample_and_logs_no_error() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .init();
    let emitter = cardbot::telemetry::install("card-updater").expect("the only recorder");

    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let users = sim.add_users(JOBS);
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let bot = Bot::start(sim.clone(), store.clone(), "message").await;
    let now = sim.now_ms();
    // 500 help replies the event handler left to the outbox, each to its own user's p2p chat.
    for (i, user) in users.iter().enumerate() {
        let payload = json!({
            "source_message_id": format!("om_busy_{i:04}"),
            "chat_id": user.p2p_chat_id,
            "requester_open_id": user.open_id,
            "command": "help",
            "delivery": "message",
            "send_as": "p2p",
        });
        store
            .enqueue(&send_reply_job(&format!("om_busy_{i:04}"), payload, now))
            .await
            .unwrap();
    }
    sim.clear_calls();
    let mut delivered = 0;
    for _ in 0..20 {
        let summary = bot.sweep().await;
        assert_eq!(summary.failed, 0, "{summary:?}");
        delivered += summary.done;
        if delivered >= JOBS {
            break;
        }
    }
    assert_eq!(delivered, JOBS);
    let calls = sim
        .calls()
        .iter()
        .filter(|c| !c.path.contains("tenant_access_token"))
        .count();
    assert!(calls >= JOBS, "one send per job at least: {calls}");

    let mut out = Vec::new();
    emitter.flush_to(&mut out);
    let emf = String::from_utf8(out).unwrap();
    let documents: Vec<Value> = emf
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let values = |name: &str| -> Vec<f64> {
        documents
            .iter()
            .flat_map(|d| match &d[name] {
                Value::Array(list) => list.iter().filter_map(Value::as_f64).collect(),
                v => v.as_f64().into_iter().collect::<Vec<_>>(),
            })
            .collect()
    };
    // Every call's limiter wait is a sample, none dropped; no document holds more than 100.
    assert_eq!(
        values(names::LIMITER_WAIT).len(),
        calls,
        "{} documents",
        documents.len()
    );
    for d in &documents {
        if let Value::Array(list) = &d[names::LIMITER_WAIT] {
            assert!(list.len() <= 100, "{}", list.len());
        }
    }
    assert!(
        documents.len() >= calls.div_ceil(100),
        "{}",
        documents.len()
    );
    assert_eq!(
        values(names::JOBS_DELIVERED).iter().sum::<f64>(),
        JOBS as f64
    );
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!logged.contains("ERROR"), "{logged}");
    assert!(!logged.contains("Failed to record"), "{logged}");
}
