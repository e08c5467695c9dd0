//! The local stack of `make run`: the updater driver against DynamoDB Local's stream, the event
//! shapes it sends, the runner's refusals, and the whole stack driven from outside over HTTP.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use axum::body::Bytes;
use axum::http::Uri;
use cardbot::store::dynamo::DynamoStore;
use cardbot::store::{JobStore, NewJob};
use cardbot_tests::dynamodb_local;
use cardbot_tests::local_stack::burst::{self, BurstPlan, SimControl};
use cardbot_tests::local_stack::runner::Runner;
use cardbot_tests::local_stack::updater::{self, Invoker, StreamsApi, UPDATER_FUNCTION};
use cardbot_tests::local_stack::{demo, env, lines, process, watch, EVENT_CALLBACK};
use serde_json::{json, Value};

/// A stand-in for cargo lambda watch's invoke endpoint: records `(path, body)` of each call.
async fn capture_server() -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let calls: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let seen = calls.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, body: Bytes| {
        let seen = seen.clone();
        async move {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            seen.lock().unwrap().push((uri.path().to_owned(), body));
            axum::Json(json!({"batchItemFailures": []}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, calls)
}

async fn wait_for_calls(calls: &Mutex<Vec<(String, Value)>>, n: usize, within: Duration) {
    let started = Instant::now();
    while calls.lock().unwrap().len() < n && started.elapsed() < within {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_new_job_reaches_the_updater_as_a_stream_event_within_2_s() {
    let client = dynamodb_local::client().await;
    let table = dynamodb_local::fresh_table(&client).await;
    let endpoint = dynamodb_local::endpoint().await;
    let store = DynamoStore::new(client.clone(), table.clone());
    let (watch_url, calls) = capture_server().await;
    let http = reqwest::Client::new();
    let (report, mut reports) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move { while reports.recv().await.is_some() {} });
    let driver = updater::start_stream(
        StreamsApi::new(http.clone(), &endpoint, "us-east-1"),
        &table,
        Invoker::new(http, &watch_url),
        "us-east-1".into(),
        report,
    )
    .await
    .unwrap();

    // Card state items and job updates (claims) do not wake the updater; a new job does.
    client
        .put_item()
        .table_name(&table)
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("card#om_1".into()),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("state".into()),
        )
        .send()
        .await
        .unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let inserted = Instant::now();
    store
        .enqueue(&NewJob {
            card_key: "om_1".into(),
            job_id: "approve-1".into(),
            kind: "approve".into(),
            payload: json!({"status": "leave_approved"}),
            not_before: now,
            rearm: false,
        })
        .await
        .unwrap();
    wait_for_calls(&calls, 1, Duration::from_secs(30)).await;
    let reached = inserted.elapsed();
    let claimed = store
        .claim_job("om_1", "approve-1", "test", now, 30_000)
        .await
        .unwrap();
    assert!(claimed.is_some());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    driver.abort();

    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls.len(),
        1,
        "only the insert of the job invokes: {calls:?}"
    );
    // About 2 s on a quiet machine (the stream is polled every ~0.5 s). Times are `make bench`'s
    // business, not a test's: this bound only catches a driver that waits for the schedule (60 s),
    // with room for a 2-core CI machine busy with a build and a browser at the same moment.
    assert!(reached < Duration::from_secs(15), "took {reached:?}");
    let (path, body) = &calls[0];
    assert_eq!(path, "/2015-03-31/functions/card-updater/invocations");
    let event: DynamoDbEvent = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(event.records.len(), 1);
    let record = &event.records[0];
    assert_eq!(record.event_name, "INSERT");
    assert_eq!(record.event_source.as_deref(), Some("aws:dynamodb"));
    assert_eq!(record.aws_region, "us-east-1");
    assert!(
        record
            .event_source_arn
            .as_deref()
            .is_some_and(|a| a.contains(&table)),
        "{:?}",
        record.event_source_arn
    );
    let keys = &body["Records"][0]["dynamodb"]["Keys"];
    assert_eq!(keys["pk"]["S"], "card#om_1");
    assert_eq!(keys["sk"]["S"], "job#approve-1");
    let image = &body["Records"][0]["dynamodb"]["NewImage"];
    assert_eq!(image["kind"]["S"], "approve", "{image}");
    assert!(!record.change.new_image.is_empty());
}

#[tokio::test]
async fn the_schedule_sends_an_eventbridge_scheduled_event() {
    let (watch_url, calls) = capture_server().await;
    let (report, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let sweep = updater::start_schedule(
        Invoker::new(reqwest::Client::new(), &watch_url),
        "us-east-1".into(),
        Duration::from_millis(300),
        report,
    );
    wait_for_calls(&calls, 2, Duration::from_secs(10)).await;
    sweep.abort();
    let line = reports.recv().await.unwrap();
    assert!(line.contains("sweep"), "{line}");

    let calls = calls.lock().unwrap().clone();
    assert!(calls.len() >= 2, "a sweep every period: {calls:?}");
    let (path, body) = &calls[0];
    assert_eq!(
        path,
        &format!("/2015-03-31/functions/{UPDATER_FUNCTION}/invocations")
    );
    let event: EventBridgeEvent<Value> = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(event.detail_type, "Scheduled Event");
    assert_eq!(event.source, "aws.events");
    assert_eq!(event.detail, json!({}));
    assert_eq!(event.region.as_deref(), Some("us-east-1"));
}

fn runner() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cardbot-local"));
    // The test controls these; the caller's settings must not leak in.
    for name in [
        "FEISHU_BASE_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "TABLE_NAME",
        env::SIMULATOR_PORT,
        env::DYNAMODB_PORT,
    ] {
        cmd.env_remove(name);
    }
    cmd.stdin(Stdio::null());
    cmd
}

#[test]
fn the_runner_refuses_a_taken_port_by_name() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let out = runner()
        .env(env::WATCH_PORT, port.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("port {port}")), "{stderr}");
    assert!(stderr.contains(env::WATCH_PORT), "{stderr}");
}

#[test]
fn the_runner_refuses_real_feishu_without_credentials() {
    let out = runner()
        .env("FEISHU_BASE_URL", "https://open.feishu.cn")
        .env_remove("FEISHU_APP_ID")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("FEISHU_APP_ID"), "{stderr}");
}

/// The runner as `make run` starts it, with extra settings (e.g. `CARD_DELIVERY=message`).
fn start_runner(settings: &[(&str, &str)]) -> Runner {
    let mut command = runner();
    for (name, value) in settings {
        command.env(name, value);
    }
    command
        .env(env::WATCH_PORT, process::free_port().unwrap().to_string())
        .env(
            env::SIMULATOR_PORT,
            process::free_port().unwrap().to_string(),
        )
        .env(env::DEMO, "0")
        // The tutorial's flow below: no approver source, the simulated approval decides.
        .env("APPROVAL_FALLBACK", "simulated")
        .env("APPROVER_FROM_LEADER", "false")
        // Two instances of each function, so the front's per-function slots and the shared
        // limiter are exercised; the functions' info lines would only slow the small burst.
        .env(env::LOCAL_INSTANCES, "2")
        .env("RUST_LOG", "warn");
    Runner::spawn(command, "runner")
}

/// Waits for the ready line; (event callback URL, card callback URL, simulator base URL).
fn wait_ready(runner: &Runner, within: Duration) -> (String, String, String) {
    let mut seen = runner.wait_ready(
        within,
        &[
            lines::EVENT_CALLBACK_URL,
            lines::CARD_CALLBACK_URL,
            lines::SIMULATOR_URL,
        ],
    );
    let mut take = |p| seen.remove(p).unwrap();
    let sim = take(lines::SIMULATOR_URL);
    (
        take(lines::EVENT_CALLBACK_URL),
        take(lines::CARD_CALLBACK_URL),
        sim.trim_end_matches('/')
            .trim_end_matches("/_sim")
            .to_owned(),
    )
}

/// The small burst in message mode (`CARD_DELIVERY=message`: cards as JSON messages, updated by the
/// click's update token, then PATCH), on its own `make run` stack; the test below runs it in entity
/// mode. Every event and click answered 200 within 3 s, each chat exactly 1 text + 1 card, every
/// clicked card approved, no 429.
#[test]
fn a_small_burst_in_message_mode_is_answered_and_approved() {
    let mut runner = start_runner(&[("CARD_DELIVERY", "message")]);
    let (event_url, card_url, sim) = wait_ready(&runner, Duration::from_secs(1200));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let plan = BurstPlan {
            users: 20,
            clicks: 10,
            settle: Duration::from_secs(120),
            warm_up: 0,
        };
        let report = burst::run(&sim, &event_url, &card_url, &plan)
            .await
            .unwrap();
        println!("{}", report.summary());
        assert!(report.problems().is_empty(), "{:?}", report.problems());
        assert_eq!(
            (report.chats_exact, report.cards_approved),
            (20, 10),
            "{}",
            report.summary()
        );
    });
    drop(rt);
    let (status, _) = runner.stop();
    assert_eq!(status, Some(0), "the runner exits cleanly on SIGTERM");
}

/// The whole stack as `make run` starts it (cargo lambda watch, DynamoDB Local, simulator, updater
/// driver), driven from outside: a signed, encrypted `审批` event and a click posted to the printed
/// URLs by the simulator's control API; the card must end as 请假通过 in the simulator. Then, with
/// two instances of each function, a small burst of users and clicks, and a killed function process
/// that is started again on the next request.
#[test]
fn make_run_serves_the_demo_conversation_over_http() {
    let mut runner = start_runner(&[]);
    // A cold build of the functions on 2 cores takes minutes.
    let (event_url, card_url, sim) = wait_ready(&runner, Duration::from_secs(1200));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        for url in [&event_url, &card_url] {
            let response = http.post(url).body("{}").send().await.unwrap();
            let status = response.status();
            // The function itself rejects a malformed request (cargo lambda watch would answer 5xx).
            assert!(status.is_client_error(), "{url}: {status}");
        }
        let control = SimControl::new(&sim).unwrap();
        let config = control.get("config").await.unwrap();
        let chat = config["p2p_chat_id"].as_str().unwrap().to_owned();

        let delivery = control
            .post(
                "user/message",
                json!({"url": event_url, "text": demo::COMMAND}),
            )
            .await
            .unwrap();
        assert_eq!(delivery["status"], 200, "{delivery}");
        assert!(
            delivery["headers"]
                .to_string()
                .to_lowercase()
                .contains("x-lark-signature"),
            "the event went out signed: {delivery}"
        );
        assert!(delivery["body"].as_str().unwrap().contains("\"encrypt\""));

        let started = Instant::now();
        let card_message = loop {
            let messages = control.messages(&chat).await.unwrap();
            let found = messages.iter().find(|m| {
                m["msg_type"] == "interactive" && m["sender"].to_string().contains("app")
            });
            if let Some(m) = found {
                break m["message_id"].as_str().unwrap().to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no card: {messages:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let card = control
            .get(&format!("messages/{card_message}/card"))
            .await
            .unwrap();
        let value = demo::button_value(&card["card"], demo::LEAVE_BUTTON)
            .unwrap_or_else(|| panic!("no [{}] button: {card}", demo::LEAVE_BUTTON));

        let click = control
            .post(
                "user/click",
                json!({"url": card_url, "message_id": card_message, "value": value}),
            )
            .await
            .unwrap();
        assert_eq!(click["delivery"]["status"], 200, "{click}");
        assert_eq!(click["client_error"], Value::Null, "{click}");

        let started = Instant::now();
        loop {
            let card = control.card_text(&card_message).await.unwrap();
            if card.contains(demo::LEAVE_APPROVED) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "the card never showed {}: {card}",
                demo::LEAVE_APPROVED
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }

        // A small burst (`make bench` runs 200 users and 100 clicks on 4 instances): every event
        // and click answered 200 within 3 s, each chat exactly 1 text + 1 card, every clicked card
        // approved, Feishu's limits kept with no 429.
        let plan = BurstPlan {
            users: 20,
            clicks: 10,
            settle: Duration::from_secs(120),
            warm_up: 0,
        };
        let report = burst::run(&sim, &event_url, &card_url, &plan)
            .await
            .unwrap();
        println!("{}", report.summary());
        assert!(report.problems().is_empty(), "{:?}", report.problems());

        // A function process that dies is started again on the next request (as on Lambda).
        let victim = watch::function_processes(runner.pid())
            .into_iter()
            .find_map(|(pid, name)| (name == EVENT_CALLBACK).then_some(pid))
            .expect("an event-callback process");
        unsafe {
            libc::kill(victim as i32, libc::SIGKILL);
        }
        let started = Instant::now();
        while !runner.printed(|l| l.starts_with(lines::FUNCTION_DIED) && l.contains(EVENT_CALLBACK))
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the death was not noticed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let started = Instant::now();
        let delivery = loop {
            let d = control
                .post(
                    "user/message",
                    json!({"url": event_url, "text": demo::COMMAND}),
                )
                .await
                .unwrap();
            // Until cargo lambda watch is back, the front answers 502 (Feishu would deliver again).
            if d["status"] == 200 || started.elapsed() > Duration::from_secs(60) {
                break d;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert_eq!(delivery["status"], 200, "after the restart: {delivery}");
    });
    drop(rt);

    // The stream driver reports an invocation once the updater answers, which on a loaded machine
    // may come after the card changed.
    let started = Instant::now();
    while !runner.printed(|l| l.contains(" new job")) && started.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, orphans) = runner.stop();
    assert_eq!(status, Some(0), "the runner exits cleanly on SIGTERM");
    assert!(orphans.is_empty(), "processes left behind: {orphans:?}");
    let log = runner.log_text();
    assert!(log.contains(" new job"), "the stream path delivered: {log}");
}
