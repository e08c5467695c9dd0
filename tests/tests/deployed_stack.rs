//! The real `template.yaml`, deployed with `sam deploy` to a fresh local AWS emulator by
//! `make deploy-local` (with the debug builds of the three functions this test build made), and
//! played end to end through what the template created: the function URLs it made (behind the
//! front, as a tunnel would reach them), the stream mapping and filter it wired, the schedule's
//! target, the Secrets Manager secret it stored, the table it made (read through the emulator's
//! DynamoDB API). One test per delivery mode (`CardDelivery`), each on its own emulator.
//!
//! What this cannot show, because the emulator differs from AWS (docs/deploy-local.md): partial
//! batch failures, bisection and the retry limit of the stream (unit tests of the updater and
//! tests/tests/job_failures.rs), conditional writes under contention (DynamoDB Local, the store
//! conformance tests), IAM least privilege (tests/tests/template.rs reads each role's actions),
//! reserved concurrency, TTL, EMF metrics and alarms (tests/tests/metrics_emf.rs, template.rs).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use cardbot_tests::local_aws::emulator::{Api, REGION};
use cardbot_tests::local_aws::{env as aws_env, lines as aws_lines, PARAMETERS};
use cardbot_tests::local_stack::burst::SimControl;
use cardbot_tests::local_stack::runner::Runner;
use cardbot_tests::local_stack::{demo, env, lines, process, updater};
use serde_json::{json, Value};

/// The three functions as this test build made them (target/debug beside
/// target/debug/deps/<test>): cargo builds a package's binary for its integration tests, and each
/// function has some (`functions/*/tests/start.rs`), so `cargo nextest run --workspace` (make test)
/// makes all three, fresh, with the same features and environment as the tests.
fn functions_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_owned();
    for binary in ["event-callback", "card-action", "card-updater"] {
        assert!(
            dir.join(binary).is_file(),
            "{} is missing: the workspace's test build makes it (cargo nextest run --workspace, \
             or cargo build --bin {binary})",
            dir.join(binary).display()
        );
    }
    dir
}

struct Ready {
    event_url: String,
    card_url: String,
    sim: String,
    endpoint: String,
    stack: String,
}

/// `make deploy-local` for `delivery`, with the tutorial's flow and this build's functions.
fn start_runner(delivery: &str) -> Runner {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cardbot-deploy-local"));
    // The test controls these; the caller's settings must not leak in.
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "TABLE_NAME",
        env::SIMULATOR_PORT,
        env::WATCH_ADDRESS,
        env::LOCAL_INSTANCES,
        env::RELEASE,
        env::APPROVAL_DEFINITIONS,
        aws_env::EMULATOR_PORT,
    ]
    .into_iter()
    .chain(PARAMETERS.iter().map(|(name, _)| *name))
    {
        command.env_remove(name);
    }
    command
        .env(aws_env::FUNCTIONS_DIR, functions_dir())
        .env(aws_env::STACK_NAME, format!("cardbot-{delivery}"))
        .env("CARD_DELIVERY", delivery)
        .env(env::WATCH_PORT, process::free_port().unwrap().to_string())
        .env(
            env::SIMULATOR_PORT,
            process::free_port().unwrap().to_string(),
        )
        .env(env::DEMO, "0")
        // The tutorial's flow: no approver source, the simulated approval decides.
        .env("APPROVAL_FALLBACK", "simulated")
        .env("APPROVER_FROM_LEADER", "false")
        .env("RUST_LOG", "info");
    Runner::spawn(command, "deploy-local")
}

fn wait_ready(runner: &Runner, within: Duration) -> Ready {
    let mut seen = runner.wait_ready(
        within,
        &[
            lines::EVENT_CALLBACK_URL,
            lines::CARD_CALLBACK_URL,
            lines::SIMULATOR_URL,
            aws_lines::EMULATOR,
            aws_lines::STACK,
        ],
    );
    let mut take = |p| seen.remove(p).unwrap();
    Ready {
        event_url: take(lines::EVENT_CALLBACK_URL),
        card_url: take(lines::CARD_CALLBACK_URL),
        sim: take(lines::SIMULATOR_URL)
            .trim_end_matches('/')
            .trim_end_matches("/_sim")
            .to_owned(),
        endpoint: take(aws_lines::EMULATOR),
        stack: take(aws_lines::STACK),
    }
}

/// Every item of the stack's table, through the emulator's DynamoDB API.
async fn scan(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(page.items().iter().cloned());
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return items;
        }
    }
}

fn s<'a>(item: &'a std::collections::HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map_or("", String::as_str)
}

/// The jobs of the table: `(card pk, job sk, status)`.
async fn jobs(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<(String, String, String)> {
    scan(client, table)
        .await
        .iter()
        .filter(|i| s(i, "sk").starts_with("job#"))
        .map(|i| {
            (
                s(i, "pk").to_owned(),
                s(i, "sk").to_owned(),
                s(i, "status").to_owned(),
            )
        })
        .collect()
}

/// The status of the click's post-answer job of the card in message `message_id` (the job's card
/// key holds the message id in both delivery modes), once it is `want` or `within` has passed.
async fn post_answer_status(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    message_id: &str,
    within: Duration,
    want: &str,
) -> String {
    let started = Instant::now();
    loop {
        let all = jobs(client, table).await;
        let status = all
            .iter()
            .find(|(pk, sk, _)| pk.contains(message_id) && sk == "job#post_answer")
            .map(|(_, _, status)| status.clone())
            .unwrap_or_else(|| format!("no post_answer job of {message_id}: {all:?}"));
        if status == want || started.elapsed() >= within {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `审批` from the simulator's user; the card's message id once text and card are in the chat.
async fn ask(control: &SimControl, event_url: &str, chat: &str) -> String {
    let before = control.messages(chat).await.unwrap().len();
    let delivery = control
        .post(
            "user/message",
            json!({"url": event_url, "text": demo::COMMAND}),
        )
        .await
        .unwrap();
    assert_eq!(delivery["status"], 200, "{delivery}");
    let started = Instant::now();
    loop {
        let messages = control.messages(chat).await.unwrap();
        let new: Vec<&Value> = messages
            .iter()
            .skip(before)
            .filter(|m| m["sender"]["sender_type"] == "app")
            .collect();
        let text = new.iter().find(|m| m["msg_type"] == "text");
        let card = new.iter().find(|m| m["msg_type"] == "interactive");
        if let (Some(_), Some(card)) = (text, card) {
            return card["message_id"].as_str().unwrap().to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no text and card: {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Clicks 请假 on the card; the callback's answer must be 200 with a toast.
async fn click_leave(control: &SimControl, card_url: &str, message_id: &str) {
    let card = control
        .get(&format!("messages/{message_id}/card"))
        .await
        .unwrap();
    let value = demo::button_value(&card["card"], demo::LEAVE_BUTTON)
        .unwrap_or_else(|| panic!("no [{}] button: {card}", demo::LEAVE_BUTTON));
    let click = control
        .post(
            "user/click",
            json!({"url": card_url, "message_id": message_id, "value": value}),
        )
        .await
        .unwrap();
    assert_eq!(click["delivery"]["status"], 200, "{click}");
    assert_eq!(click["client_error"], Value::Null, "{click}");
    assert!(
        click["delivery"]["response_body"]
            .as_str()
            .unwrap_or_default()
            .contains("toast"),
        "the answer carries a toast: {click}"
    );
}

async fn wait_for_card(
    control: &SimControl,
    message_id: &str,
    text: &str,
    within: Duration,
) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if control.card_text(message_id).await.unwrap().contains(text) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

fn play(delivery: &str) {
    let mut runner = start_runner(delivery);
    let ready = wait_ready(&runner, Duration::from_secs(600));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let api = Api::new(&ready.endpoint);
        let outputs = api.stack_outputs(&ready.stack).await.unwrap();
        let resources = api.stack_resources(&ready.stack).await.unwrap();
        let table = outputs["TableName"].clone();
        let updater_name = resources["CardUpdaterFunction"].clone();
        let dynamodb = cardbot_tests::local_stack::dynamodb_client(&ready.endpoint, REGION);

        // Each console URL the stack prints is its own function's URL (the event-callback
        // function would also take clicks, so the flow alone would not notice a swap).
        for (output, function) in [
            ("EventCallbackUrl", "EventCallbackFunction"),
            ("CardCallbackUrl", "CardActionFunction"),
        ] {
            assert_eq!(
                api.function_url(&resources[function]).await.unwrap(),
                outputs[output],
                "output {output} is the URL of {function}"
            );
        }

        // The schedule the template made targets the updater; it is paused here, so that only the
        // stream mapping can run the click's job below (a sweep is invoked the way it would run).
        let rules = api.events("ListRules", json!({})).await.unwrap();
        let rule = rules["Rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["ScheduleExpression"] == "rate(1 minute)"
                    && r["Name"].as_str().unwrap().starts_with(&ready.stack)
            })
            .unwrap_or_else(|| panic!("no rate(1 minute) rule of {}: {rules}", ready.stack))
            .clone();
        let rule_name = rule["Name"].as_str().unwrap();
        let targets = api
            .events("ListTargetsByRule", json!({"Rule": rule_name}))
            .await
            .unwrap();
        let target = targets["Targets"][0]["Arn"].as_str().unwrap().to_owned();
        assert!(
            target.ends_with(&format!(":function:{updater_name}")),
            "{targets}"
        );
        api.events("DisableRule", json!({"Name": rule_name}))
            .await
            .unwrap();

        // The stream mapping: on this stack's table, new job items only, and on.
        let mappings = api.event_source_mappings(&updater_name).await.unwrap();
        assert_eq!(mappings.len(), 1, "{mappings:?}");
        let mapping = &mappings[0];
        assert!(
            mapping["EventSourceArn"]
                .as_str()
                .unwrap()
                .contains(&format!("table/{table}/stream")),
            "{mapping}"
        );
        assert!(
            mapping["FilterCriteria"].to_string().contains("job#"),
            "{mapping}"
        );

        // Decision events: a rule on the default bus (the template's DecisionEventBus) sends
        // this app's to a queue the test reads.
        let queue_url = api
            .queue_for_rule(None, "decisions", &json!({"source": ["cardbot"]}))
            .await
            .unwrap();

        // The secret the functions read their keys from is the template's.
        let secrets = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::Config::builder()
                .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
                .region(aws_sdk_secretsmanager::config::Region::new(REGION))
                .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                    "test", "test", None, None, "emulator",
                ))
                .endpoint_url(&ready.endpoint)
                .build(),
        );
        // Two secrets: the App Secret alone, and the webhook's two keys without it.
        let read = |output: &str| {
            let (secrets, arn) = (secrets.clone(), outputs[output].clone());
            async move {
                let secret = secrets
                    .get_secret_value()
                    .secret_id(arn)
                    .send()
                    .await
                    .unwrap();
                serde_json::from_str::<Value>(secret.secret_string().unwrap()).unwrap()
            }
        };
        let app = cardbot_tests::simulator::SimConfig::default();
        let credentials = read("FeishuAppSecretArn").await;
        assert_eq!(credentials, json!({"app_secret": app.app_secret}));
        let webhook = read("FeishuWebhookSecretArn").await;
        assert_eq!(
            webhook["verification_token"],
            app.verification_token.as_str()
        );
        assert!(webhook.get("app_secret").is_none(), "{webhook}");

        let control = SimControl::new(&ready.sim).unwrap();
        let chat = control.get("config").await.unwrap()["p2p_chat_id"]
            .as_str()
            .unwrap()
            .to_owned();

        // The challenge of each console URL, through the front and the deployed function URL.
        for url in [&ready.event_url, &ready.card_url] {
            let answer = control
                .post(
                    "url_verification",
                    json!({"url": url, "challenge": "deployed-challenge"}),
                )
                .await
                .unwrap();
            assert_eq!(answer["status"], 200, "{answer}");
            assert!(
                answer["response_body"]
                    .as_str()
                    .unwrap()
                    .contains("deployed-challenge"),
                "{answer}"
            );
        }

        // 审批 → text + card; click → toast, then the post-answer job run by the stream mapping.
        let first = ask(&control, &ready.event_url, &chat).await;
        click_leave(&control, &ready.card_url, &first).await;
        assert!(
            wait_for_card(
                &control,
                &first,
                demo::LEAVE_APPROVED,
                Duration::from_secs(45)
            )
            .await,
            "the stream-run job never showed {}: {}",
            demo::LEAVE_APPROVED,
            control.card_text(&first).await.unwrap()
        );
        assert_eq!(
            post_answer_status(&dynamodb, &table, &first, Duration::from_secs(10), "done").await,
            "done"
        );
        // The ended request's decision event, put by the deployed updater on the stack's bus.
        let received = api
            .receive_events(&queue_url, Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(received.len(), 1, "{received:?}");
        assert_eq!(received[0]["detail"]["request_id"], first.as_str());
        assert_eq!(received[0]["detail"]["outcome"], "approved");
        assert_eq!(received[0]["detail"]["automatic"], true);

        // The sweep: with the stream mapping off, a click's job waits in the table until the
        // updater is invoked as the schedule invokes it.
        let uuid = mapping["UUID"].as_str().unwrap();
        api.set_event_source_mapping_enabled(uuid, false)
            .await
            .unwrap();
        let second = ask(&control, &ready.event_url, &chat).await;
        click_leave(&control, &ready.card_url, &second).await;
        assert!(
            !wait_for_card(
                &control,
                &second,
                demo::LEAVE_APPROVED,
                Duration::from_secs(3)
            )
            .await,
            "approved without the stream and without a sweep"
        );
        assert_eq!(
            post_answer_status(&dynamodb, &table, &second, Duration::ZERO, "pending").await,
            "pending",
            "the second click's job waits in the table"
        );
        let summary = api
            .invoke(
                &target,
                &updater::scheduled_event(std::time::SystemTime::now(), REGION),
            )
            .await
            .unwrap();
        println!("sweep: {summary}");
        assert!(
            wait_for_card(
                &control,
                &second,
                demo::LEAVE_APPROVED,
                Duration::from_secs(30)
            )
            .await,
            "the sweep did not deliver the job: {summary}"
        );
        assert_eq!(
            post_answer_status(&dynamodb, &table, &second, Duration::from_secs(10), "done").await,
            "done"
        );

        // A forged request is refused and writes nothing.
        let before = scan(&dynamodb, &table).await.len();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        for url in [&ready.event_url, &ready.card_url] {
            let forged = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .header("x-lark-request-timestamp", now.to_string())
                .header("x-lark-request-nonce", "forged")
                .header("x-lark-signature", "0".repeat(64))
                .body(r#"{"encrypt":"Zm9yZ2VkIGJvZHkgb2YgYSByZXF1ZXN0"}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(forged.status(), 401, "{url}");
        }
        assert_eq!(
            scan(&dynamodb, &table).await.len(),
            before,
            "a forged request wrote nothing"
        );
        api.set_event_source_mapping_enabled(uuid, true)
            .await
            .unwrap();
    });
    drop(rt);
    let (status, orphans) = runner.stop();
    assert_eq!(status, Some(0), "deploy-local exits cleanly on SIGTERM");
    assert!(orphans.is_empty(), "processes left behind: {orphans:?}");
    let endpoint_port: u16 = ready.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", endpoint_port)).is_ok(),
        "the emulator's port is free again"
    );
}

#[test]
fn deployed_stack_serves_the_flow_in_entity_delivery() {
    play("entity");
}

#[test]
fn deployed_stack_serves_the_flow_in_message_delivery() {
    play("message");
}

#[test]
fn deploy_local_refuses_a_bad_setting_by_name_before_starting_anything() {
    let out = Command::new(env!("CARGO_BIN_EXE_cardbot-deploy-local"))
        .env(aws_env::STACK_NAME, "not a stack")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(aws_env::STACK_NAME), "{stderr}");
}
