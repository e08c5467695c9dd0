//! A store app (`FEISHU_APP_TYPE=store`) on DynamoDB Local and the simulator speaking the
//! store-app auth over HTTP: no ticket at a cold start, tickets rotating, many instances with a
//! stale ticket, two tenants at once, and the tenant lifecycle. Assertions are on what the
//! simulator received (every Open API call and its answer, every message) and what the table holds.

use std::sync::Arc;
use std::time::Duration;

use cardbot::feishu::{Clock, Deadline, FeishuClient, FeishuError, TenantKey};
use cardbot::store::dynamo::DynamoStore;
use cardbot::store::{AppTicketStore, CardStore, JobStatus, JobStore, TenantStatus, TenantStore};
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{Bot, SimulatorClock};
use cardbot_tests::simulator::{
    ids, ApiCall, ChatKind, LifecycleChange, SimAppType, SimConfig, SimUser, Simulator,
};
use serde_json::{json, Value};

const DELIVERIES: [&str; 2] = ["entity", "message"];
const STORE: [(&str, &str); 1] = [("FEISHU_APP_TYPE", "store")];

/// A store-app simulator pushing a requested ticket after `resend_delay`, and the bot on a fresh
/// table, connected (the simulator pushes tickets to its event URL).
async fn store_bot(delivery: &str, resend_delay: Duration) -> Bot<DynamoStore> {
    let sim = Arc::new(
        Simulator::start(SimConfig {
            app_type: SimAppType::Store,
            ticket_resend_delay: resend_delay,
            ..SimConfig::default()
        })
        .await
        .unwrap(),
    );
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let bot = Bot::start_with(sim, store, delivery, &STORE).await;
    bot.sim.connect_bot(&bot.event_url, &bot.card_url);
    bot
}

/// The bot with a ticket already pushed and kept.
async fn ready_bot(delivery: &str) -> Bot<DynamoStore> {
    let bot = store_bot(delivery, Duration::from_secs(60)).await;
    let pushed = bot.sim.push_app_ticket(&bot.event_url).await;
    assert_eq!(pushed.status, Some(200), "{}", pushed.response_body);
    bot
}

/// Open API calls (the auth endpoints excluded) that Feishu refused.
fn refused(calls: &[ApiCall]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.code.is_some_and(|code| code != 0))
        .map(|c| format!("{} {} → {:?}", c.method, c.path, c.code))
        .collect()
}

fn cards_in(bot: &Bot<DynamoStore>, chat: &str) -> Vec<String> {
    bot.bot_messages(chat)
        .into_iter()
        .filter(|m| m.msg_type == "interactive")
        .map(|m| m.message_id)
        .collect()
}

fn texts_in(bot: &Bot<DynamoStore>, chat: &str) -> usize {
    bot.bot_messages(chat)
        .into_iter()
        .filter(|m| m.msg_type == "text")
        .count()
}

/// Runs the updater until no job is left to do now.
async fn settle(bot: &Bot<DynamoStore>) {
    for _ in 0..6 {
        if bot.sweep().await.claimed == 0 {
            break;
        }
    }
}

/// Waits (real time) until `check` holds, up to 10 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_start_queues_the_reply_asks_one_resend_and_delivers_when_the_ticket_arrives() {
    for delivery in DELIVERIES {
        let bot = store_bot(delivery, Duration::from_millis(300)).await;
        let sim = bot.sim.clone();
        let second = sim.add_users(1).remove(0);
        // No ticket yet: both users are answered 200 at once, nothing is sent, one resend asked.
        let asked = sim
            .send_user_message(&bot.event_url, ChatKind::P2p, "审批")
            .await;
        assert_eq!(asked.status, Some(200), "{delivery}: {}", asked.response_body);
        let also = sim
            .send_message_as(&bot.event_url, &second, ChatKind::P2p, "审批")
            .await;
        assert_eq!(also.status, Some(200), "{delivery}");
        assert_eq!(sim.ticket_resends().len(), 1, "{delivery}: one resend a minute");
        assert!(bot.bot_messages(ids::P2P_CHAT_ID).is_empty(), "{delivery}");
        // The replies are queued in the tenant's namespace, keyed by the user's message.
        let message_id = asked.message_id.clone().unwrap();
        let key = format!("{}#{message_id}", ids::TENANT_KEY);
        let queued = bot.store.get_job(&key, "send_reply").await.unwrap();
        assert_eq!(queued.map(|j| j.status), Some(JobStatus::Pending), "{delivery}");
        // The simulator pushes the ticket to the event URL; the bot keeps it.
        eventually("the ticket is pushed", || sim.tickets_pushed() == 1).await;
        let store = bot.store.clone();
        for _ in 0..100 {
            if !store.get_app_tickets(ids::APP_ID).await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        settle(&bot).await;
        for (user_chat, who) in [(ids::P2P_CHAT_ID, "Tom"), (second.p2p_chat_id.as_str(), "second")] {
            assert_eq!(texts_in(&bot, user_chat), 1, "{delivery}: {who}'s text");
            assert_eq!(cards_in(&bot, user_chat).len(), 1, "{delivery}: {who}'s card");
        }
        // No Open API call was refused, and no event was answered 503.
        assert!(refused(&sim.calls()).is_empty(), "{delivery}: {:?}", refused(&sim.calls()));
        assert!(
            sim.deliveries().iter().all(|d| d.status == Some(200)),
            "{delivery}"
        );
        // The app token and the tenant's token are in the table for every instance.
        assert!(bot.store.get_app_token(ids::APP_ID).await.unwrap().is_some());
        let owner = format!("{}#{}", ids::APP_ID, ids::TENANT_KEY);
        use cardbot::store::TokenStore;
        assert!(bot.store.get_tenant_token(&owner).await.unwrap().is_some());
        // The self-built item is not written by a store app.
        assert!(bot.store.get_tenant_token(ids::APP_ID).await.unwrap().is_none());
    }
}
