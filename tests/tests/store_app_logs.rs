//! A store app's log lines name the tenant of the request or job they are about (the event,
//! click and job spans carry `tenant`), on DynamoDB Local and the simulator. Alone in its binary:
//! the test installs its own log subscriber for the thread it runs on.

use std::sync::Arc;
use std::time::Duration;

use cardbot::store::dynamo::DynamoStore;
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::Bot;
use cardbot_tests::simulator::{ChatKind, SimAppType, SimConfig, Simulator};
use serde_json::{json, Value};

const TENANT_B: &str = "b7c1f0e2d3a49586";

/// A writer the log lines of one test go to.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// One thread: the subscriber set for this test sees the handlers' work too.
#[tokio::test(flavor = "current_thread")]
async fn log_lines_of_a_tenants_request_and_job_name_the_tenant() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let sim = Arc::new(
        Simulator::start(SimConfig {
            app_type: SimAppType::Store,
            ..SimConfig::default()
        })
        .await
        .unwrap(),
    );
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let bot: Bot<DynamoStore> = Bot::start_with(
        sim.clone(),
        store,
        "message",
        &[("FEISHU_APP_TYPE", "store")],
    )
    .await;
    assert_eq!(sim.push_app_ticket(&bot.event_url).await.status, Some(200));
    let b_user = sim.add_tenant_users(TENANT_B, 1).remove(0);
    sim.send_message_as(&bot.event_url, &b_user, ChatKind::P2p, "审批")
        .await;
    let card = bot
        .bot_messages(&b_user.p2p_chat_id)
        .into_iter()
        .rfind(|m| m.msg_type == "interactive")
        .expect("the card")
        .message_id;
    sim.click_card_as(&bot.card_url, &b_user, &card, json!({"type": "leave"}))
        .await
        .unwrap();
    sim.advance(Duration::from_secs(3));
    for _ in 0..4 {
        bot.sweep().await;
    }
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let tenant_of = |message: &str| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["fields"]["message"] == message)
            .map(|l| l["span"]["tenant"].clone())
            .collect()
    };
    assert_eq!(tenant_of("replied"), [json!(TENANT_B)], "{text}");
    assert_eq!(tenant_of("click applied"), [json!(TENANT_B)], "{text}");
    assert!(tenant_of("job done").contains(&json!(TENANT_B)), "{text}");
}
