//! A store app (`FEISHU_APP_TYPE=store`) on DynamoDB Local and the simulator speaking the
//! store-app auth over HTTP: no ticket at a cold start, tickets rotating, many instances with a
//! stale ticket, two tenants at once, and the tenant lifecycle. Assertions are on what the
//! simulator received (every Open API call and its answer, every message) and what the table holds.

use std::sync::Arc;
use std::time::Duration;

use cardbot::feishu::{Clock, Deadline, FeishuClient, FeishuError, TenantKey};
use cardbot::store::dynamo::DynamoStore;
use cardbot::store::{AppTicketStore, CardStore, JobStatus, JobStore, TenantStatus, TenantStore};
use cardbot::tenants;
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{Bot, SimulatorClock};
use cardbot_tests::simulator::{
    ids, ApiCall, ChatKind, Delivery, LifecycleChange, SimAppType, SimConfig, SimUser, Simulator,
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

/// Runs the updater until no job is due within the next minute: a job that failed on a loaded
/// machine (its per-job deadline, a rate-limit wait) is retried after its backoff, so simulated
/// time moves on to it.
async fn settle(bot: &Bot<DynamoStore>) {
    for _ in 0..30 {
        if bot.sweep().await.claimed > 0 {
            continue;
        }
        let soon = bot.sim.now_ms() + 60_000;
        if bot.store.due_jobs(soon, 1).await.unwrap().is_empty() {
            return;
        }
        bot.sim.advance(Duration::from_secs(10));
    }
    panic!("jobs still due after 30 sweeps");
}

/// `delivery` again, as Feishu retries an event not answered 200 (a 503 when the answer budget
/// ran out on a loaded machine): 15 s later (Feishu's first retry), when the first attempt's
/// claim has lapsed, until it is answered 200.
async fn answered(sim: &Simulator, url: &str, delivery: Delivery) -> Delivery {
    let mut delivery = delivery;
    for _ in 0..5 {
        if delivery.status == Some(200) {
            return delivery;
        }
        sim.advance(Duration::from_secs(15));
        delivery = sim.post_event(url, &delivery.plaintext).await;
    }
    if delivery.status == Some(200) {
        return delivery;
    }
    panic!("never answered 200: {delivery:?}");
}

/// Users per tenant in the two-tenant test: 10 in `make test`; `CARDBOT_TENANT_USERS=100` runs the
/// issue's 100 each (bench/README.md).
fn users_per_tenant() -> usize {
    std::env::var("CARDBOT_TENANT_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
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
        assert_eq!(
            asked.status,
            Some(200),
            "{delivery}: {}",
            asked.response_body
        );
        let also = sim
            .send_message_as(&bot.event_url, &second, ChatKind::P2p, "审批")
            .await;
        assert_eq!(also.status, Some(200), "{delivery}");
        assert_eq!(
            sim.ticket_resends().len(),
            1,
            "{delivery}: one resend a minute"
        );
        assert!(bot.bot_messages(ids::P2P_CHAT_ID).is_empty(), "{delivery}");
        // The tenant keeps why its replies wait (`cardbot-admin tenants`).
        let record = bot
            .store
            .get_tenant(ids::APP_ID, ids::TENANT_KEY)
            .await
            .unwrap();
        let last_error = record.and_then(|r| r.last_error).unwrap_or_default();
        assert!(
            last_error.contains("no app_ticket"),
            "{delivery}: {last_error}"
        );
        // The replies are queued in the tenant's namespace, keyed by the user's message.
        let message_id = asked.message_id.clone().unwrap();
        let key = format!("{}#{message_id}", ids::TENANT_KEY);
        let queued = bot.store.get_job(&key, "send_reply").await.unwrap();
        assert_eq!(
            queued.map(|j| j.status),
            Some(JobStatus::Pending),
            "{delivery}"
        );
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
        for (user_chat, who) in [
            (ids::P2P_CHAT_ID, "Tom"),
            (second.p2p_chat_id.as_str(), "second"),
        ] {
            assert_eq!(texts_in(&bot, user_chat), 1, "{delivery}: {who}'s text");
            assert_eq!(
                cards_in(&bot, user_chat).len(),
                1,
                "{delivery}: {who}'s card"
            );
        }
        // No Open API call was refused, and no event was answered 503.
        assert!(
            refused(&sim.calls()).is_empty(),
            "{delivery}: {:?}",
            refused(&sim.calls())
        );
        assert!(
            sim.deliveries().iter().all(|d| d.status == Some(200)),
            "{delivery}"
        );
        // The app token and the tenant's token are in the table for every instance.
        assert!(bot
            .store
            .get_app_token(ids::APP_ID)
            .await
            .unwrap()
            .is_some());
        let owner = format!("{}#{}", ids::APP_ID, ids::TENANT_KEY);
        use cardbot::store::TokenStore;
        assert!(bot.store.get_tenant_token(&owner).await.unwrap().is_some());
        // The self-built item is not written by a store app.
        assert!(bot
            .store
            .get_tenant_token(ids::APP_ID)
            .await
            .unwrap()
            .is_none());
    }
}

/// Every (pk, sk) of the bot's table.
async fn table_keys(store: &DynamoStore) -> Vec<(String, String)> {
    let mut keys: Vec<_> = dynamodb_local::all_items(store)
        .await
        .iter()
        .map(|item| {
            let s = |name: &str| item[name].as_s().unwrap().clone();
            (s("pk"), s("sk"))
        })
        .collect();
    keys.sort();
    keys
}

/// The card state of `message_id` in `tenant`'s namespace, if there is one.
async fn card_of(
    bot: &Bot<DynamoStore>,
    tenant: &str,
    message_id: &str,
) -> Option<cardbot::store::CardState> {
    bot.store
        .get_card(&format!("{tenant}#{message_id}"))
        .await
        .unwrap()
}

const TENANT_B: &str = "b7c1f0e2d3a49586";

/// Feishu's answers to a call with the wrong tenant's token (10034), a bad or missing token
/// (99991661, 99991663, 99991664, 99991665, 99991671), a ticket or tenant the auth refuses (10012,
/// 10013, 99991673), or an overrun budget (99991400).
const TENANT_OR_AUTH_CODES: [i64; 10] = [
    10034, 99991661, 99991663, 99991664, 99991665, 99991671, 10012, 10013, 99991673, 99991400,
];

/// `users` each send `审批` at once and then click 请假 on their card at once.
async fn ask_and_click_at_once(bot: &Bot<DynamoStore>, users: &[SimUser]) {
    let sends = users.iter().map(|user| {
        let sim = bot.sim.clone();
        let url = bot.event_url.clone();
        let user = user.clone();
        tokio::spawn(async move {
            let sent = sim
                .send_message_as(&url, &user, ChatKind::P2p, "审批")
                .await;
            answered(&sim, &url, sent).await
        })
    });
    for sent in futures::future::join_all(sends).await {
        sent.unwrap();
    }
    settle(bot).await;
    let clicks = users.iter().map(|user| {
        let sim = bot.sim.clone();
        let url = bot.card_url.clone();
        let user = user.clone();
        let card = cards_in(bot, &user.p2p_chat_id).pop().expect("a card");
        tokio::spawn(async move {
            // A click the loaded bot could not decide in time gets 操作失败，请稍后重试: the
            // user clicks again, as they are told to.
            let mut clicked = None;
            for attempt in 0..10 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                let answer = sim
                    .click_card_as(&url, &user, &card, json!({"type": "leave"}))
                    .await
                    .unwrap();
                // Or the client's own error for an answer that came too late (200341).
                let retry = answer.toast.as_ref().and_then(|t| t["content"].as_str())
                    == Some("操作失败，请稍后重试")
                    || answer.client_error == Some(200341);
                clicked = Some(answer);
                if !retry {
                    break;
                }
            }
            clicked.unwrap()
        })
    });
    for clicked in futures::future::join_all(clicks).await {
        let clicked = clicked.unwrap();
        assert_eq!(
            clicked.client_error, None,
            "{:?}",
            clicked.delivery.response_body
        );
    }
    settle(bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_at_once_every_call_carries_its_own_tenants_token() {
    for delivery in DELIVERIES {
        let bot = ready_bot(delivery).await;
        let sim = bot.sim.clone();
        let per_tenant = users_per_tenant();
        let mut tenant_a = vec![sim.config().user()];
        tenant_a.extend(sim.add_users(per_tenant - 1));
        let tenant_b = sim.add_tenant_users(TENANT_B, per_tenant);
        let everyone: Vec<SimUser> = tenant_a.iter().chain(&tenant_b).cloned().collect();
        ask_and_click_at_once(&bot, &everyone).await;
        // Every user got their text and a card the click changed.
        for user in &everyone {
            assert_eq!(
                texts_in(&bot, &user.p2p_chat_id),
                1,
                "{delivery}: {}",
                user.name
            );
            let cards = cards_in(&bot, &user.p2p_chat_id);
            assert_eq!(cards.len(), 1, "{delivery}: {}'s cards", user.name);
            let history = sim.card(&cards[0]).unwrap().history;
            assert!(
                history.len() >= 2,
                "{delivery}: {}'s card never changed: {:?}",
                user.name,
                history.iter().map(|r| r.via.as_str()).collect::<Vec<_>>()
            );
        }
        // No call was refused: none carried one tenant's token to the other's chat, message,
        // card or user (the simulator answers those 10034), and no budget was overrun.
        // (On this loaded machine a click's answer may come too late, and the card's first edit
        // is then refused with 300313, or a delayed update waits for a callback, 200810: the
        // card's business, retried. What this test is about are the auth, tenant and rate codes.)
        let calls: Vec<ApiCall> = sim
            .calls()
            .into_iter()
            .filter(|c| {
                c.code
                    .is_some_and(|code| TENANT_OR_AUTH_CODES.contains(&code))
            })
            .collect();
        assert!(
            refused(&calls).is_empty(),
            "{delivery}: {:?}",
            refused(&calls)
        );
        // One token per tenant, one rate item per tenant (Feishu's budgets are per tenant).
        let keys = table_keys(&bot.store).await;
        for tenant in [ids::TENANT_KEY, TENANT_B] {
            let token = (
                format!("token#{}#{tenant}", ids::APP_ID),
                "tenant".to_owned(),
            );
            assert!(keys.contains(&token), "{delivery}: {tenant}'s token item");
            let rate = format!("rate#{}#{tenant}#app", ids::APP_ID);
            assert!(keys.iter().any(|(pk, _)| *pk == rate), "{delivery}: {rate}");
        }
        // Every decision event names its request's tenant.
        let events = bot.events.events();
        assert_eq!(events.len(), 2 * per_tenant, "{delivery}");
        for event in &events {
            let tenant = event.detail["tenant_key"].as_str().unwrap();
            let request = event.detail["request_id"].as_str().unwrap();
            assert!(
                request.starts_with(&format!("{tenant}#")),
                "{delivery}: {request}"
            );
        }
        // Every card and job item is in its tenant's namespace.
        let cards: Vec<_> = keys
            .iter()
            .filter(|(pk, _)| pk.starts_with("card#"))
            .collect();
        assert!(
            cards.len() >= 4 * per_tenant,
            "{delivery}: {} card items",
            cards.len()
        );
        for (pk, _) in &cards {
            assert!(
                pk.starts_with(&format!("card#{}#", ids::TENANT_KEY))
                    || pk.starts_with(&format!("card#{TENANT_B}#")),
                "{delivery}: {pk} has no tenant"
            );
        }
        for user in &tenant_b {
            let card = cards_in(&bot, &user.p2p_chat_id).pop().unwrap();
            assert!(card_of(&bot, TENANT_B, &card).await.is_some());
            // The same message id in the other tenant's namespace finds nothing.
            assert!(card_of(&bot, ids::TENANT_KEY, &card).await.is_none());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_naming_another_tenants_card_touches_nothing() {
    let bot = ready_bot("message").await;
    let sim = bot.sim.clone();
    let b_user = sim.add_tenant_users(TENANT_B, 1).remove(0);
    let asked = sim
        .send_message_as(&bot.event_url, &b_user, ChatKind::P2p, "审批")
        .await;
    assert_eq!(asked.status, Some(200));
    let b_card = cards_in(&bot, &b_user.p2p_chat_id).pop().unwrap();
    // A genuine click of tenant B's user, replayed with tenant A in the header (a forged
    // callback: signed, and naming B's message id).
    let genuine = sim
        .click_card_as(&bot.card_url, &b_user, &b_card, json!({"type": "leave"}))
        .await
        .unwrap();
    let before = card_of(&bot, TENANT_B, &b_card).await.unwrap();
    let mut forged: Value = genuine.delivery.plaintext.clone();
    forged["header"]["tenant_key"] = json!(ids::TENANT_KEY);
    forged["header"]["event_id"] = json!("0f0e0d0c0b0a09080706050403020100");
    let answered = sim.post_event(&bot.card_url, &forged).await;
    assert_eq!(answered.status, Some(200));
    let toast = answered.response_json.unwrap()["toast"]["content"].clone();
    assert_eq!(toast, json!("操作失败，请稍后重试"));
    // Tenant B's card is as it was, and nothing was written under tenant A's key.
    let after = card_of(&bot, TENANT_B, &b_card).await.unwrap();
    assert_eq!(after, before);
    assert!(card_of(&bot, ids::TENANT_KEY, &b_card).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_rotate_over_six_simulated_hours_with_no_failed_call() {
    let bot = store_bot("entity", Duration::from_secs(60)).await;
    let sim = bot.sim.clone();
    let users = sim.add_users(7);
    // Feishu pushes a ticket every hour; each is valid 3 h. A user asks each hour.
    for (hour, user) in users.iter().enumerate() {
        let pushed = sim.push_app_ticket(&bot.event_url).await;
        assert_eq!(pushed.status, Some(200), "hour {hour}");
        let asked = sim
            .send_message_as(&bot.event_url, user, ChatKind::P2p, "审批")
            .await;
        answered(&sim, &bot.event_url, asked).await;
        settle(&bot).await;
        assert_eq!(cards_in(&bot, &user.p2p_chat_id).len(), 1, "hour {hour}");
        sim.advance(Duration::from_secs(3600));
    }
    // Never a refused ticket (10012), app token or tenant token: nothing was ever retried.
    let calls = sim.calls();
    assert!(refused(&calls).is_empty(), "{:?}", refused(&calls));
    assert!(sim.ticket_resends().is_empty());
    // Tokens were renewed as they aged: more than one app token fetch over 6 h.
    let app_tokens = calls
        .iter()
        .filter(|c| c.path == "/open-apis/auth/v3/app_access_token")
        .count();
    assert!(
        (2..=7).contains(&app_tokens),
        "{app_tokens} app token fetches"
    );
    // The table keeps the last two tickets only.
    assert_eq!(
        bot.store.get_app_tickets(ids::APP_ID).await.unwrap().len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_instances_with_a_stale_ticket_ask_for_one_resend_a_minute() {
    let sim = Arc::new(
        Simulator::start(SimConfig {
            app_type: SimAppType::Store,
            ..SimConfig::default()
        })
        .await
        .unwrap(),
    );
    let store = Arc::new(dynamodb_local::fresh_store().await);
    // A ticket Feishu no longer takes (pushed before a restart of its side, say).
    let clock = SimulatorClock(sim.clone());
    store
        .put_app_ticket(ids::APP_ID, "tk-stale", clock.now_millis())
        .await
        .unwrap();
    let config = cardbot_tests::harness::config_with(&sim, "entity", &STORE);
    let instances: Vec<FeishuClient> = (0..16)
        .map(|_| {
            cardbot::entry::feishu_client_builder(&config.config, &config.feishu, store.clone())
                .clock(Arc::new(SimulatorClock(sim.clone())))
                .build()
                .unwrap()
        })
        .collect();
    let tenant = TenantKey::new(ids::TENANT_KEY).unwrap();
    let all_ask = || {
        futures::future::join_all(instances.iter().map(|client| {
            let client = client.for_tenant(&tenant);
            async move {
                client
                    .tenant_access_token(Deadline::after(Duration::from_secs(5)))
                    .await
            }
        }))
    };
    for round in 0..3 {
        let answers = all_ask().await;
        for answer in &answers {
            assert!(
                matches!(answer, Err(FeishuError::NoAppTicket { .. })),
                "round {round}: {answer:?}"
            );
        }
        assert_eq!(
            sim.ticket_resends().len(),
            1,
            "round {round}: within the minute"
        );
    }
    sim.advance(Duration::from_secs(61));
    all_ask().await;
    assert_eq!(sim.ticket_resends().len(), 2, "one more after a minute");
    // Only the one stale ticket was ever offered (then never again: it is marked stale).
    let refused_tickets = sim
        .calls()
        .iter()
        .filter(|c| c.path == "/open-apis/auth/v3/app_access_token" && c.code == Some(10012))
        .count();
    assert!((1..=16).contains(&refused_tickets), "{refused_tickets}");
    let kept = store.get_app_tickets(ids::APP_ID).await.unwrap();
    assert!(kept[0].stale);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_stop_leaves_a_started_tenant_active_and_a_stopped_tenant_gets_no_call() {
    let bot = ready_bot("entity").await;
    let sim = bot.sim.clone();
    let user = sim.add_tenant_users(TENANT_B, 1).remove(0);
    let installed = sim
        .change_tenant(&bot.event_url, TENANT_B, LifecycleChange::Install)
        .await;
    assert_eq!(installed.status, Some(200));
    // A stop sent now reaches the bot only after a start sent a second later (a 1.0 retry).
    let late_stop = sim.lifecycle_event(TENANT_B, LifecycleChange::Stop);
    sim.advance(Duration::from_secs(1));
    let started = sim
        .change_tenant(&bot.event_url, TENANT_B, LifecycleChange::Start)
        .await;
    assert_eq!(started.status, Some(200));
    assert_eq!(
        sim.post_event(&bot.event_url, &late_stop).await.status,
        Some(200)
    );
    let record = bot
        .store
        .get_tenant(ids::APP_ID, TENANT_B)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, TenantStatus::Active);
    assert_eq!(
        record.installer_open_id.as_deref(),
        Some(user.open_id.as_str())
    );
    // Active: the user's 审批 is answered, and a click queues its post-answer job.
    sim.send_message_as(&bot.event_url, &user, ChatKind::P2p, "审批")
        .await;
    let card = cards_in(&bot, &user.p2p_chat_id)
        .pop()
        .expect("answered while active");
    let clicked = sim
        .click_card_as(&bot.card_url, &user, &card, json!({"type": "leave"}))
        .await
        .unwrap();
    assert_eq!(clicked.client_error, None);
    // Stopped: a message and a click are answered without one Open API call, and the queued
    // job dies with the reason.
    let stopped = sim
        .change_tenant(&bot.event_url, TENANT_B, LifecycleChange::Stop)
        .await;
    assert_eq!(stopped.status, Some(200));
    // Another instance (the card URL's) trusts what it read for a second.
    sim.advance(Duration::from_millis(tenants::STATUS_CACHE_MS as u64 + 1));
    sim.clear_calls();
    let asked = sim
        .send_message_as(&bot.event_url, &user, ChatKind::P2p, "审批")
        .await;
    assert_eq!(asked.status, Some(200));
    let toast = sim
        .click_card_as(&bot.card_url, &user, &card, json!({"type": "leave"}))
        .await
        .unwrap();
    assert_eq!(
        toast.toast.as_ref().and_then(|t| t["content"].as_str()),
        Some("应用已被停用，请联系管理员")
    );
    sim.advance(Duration::from_secs(5));
    settle(&bot).await;
    assert!(sim.calls().is_empty(), "{:?}", sim.calls());
    let key = format!("{TENANT_B}#{card}");
    let job = bot
        .store
        .get_job(&key, "post_answer")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Dead);
    assert!(job
        .last_error
        .unwrap_or_default()
        .starts_with("tenant_stopped"));
    // Uninstalled: recorded, and the tenant is still served nothing.
    let gone = sim
        .change_tenant(&bot.event_url, TENANT_B, LifecycleChange::Uninstall)
        .await;
    assert_eq!(gone.status, Some(200));
    let record = bot
        .store
        .get_tenant(ids::APP_ID, TENANT_B)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, TenantStatus::Uninstalled);
    sim.send_message_as(&bot.event_url, &user, ChatKind::P2p, "审批")
        .await;
    // The cleanup: the card's expiry job, due in days, is dead now; every item of the tenant
    // expires (a TTL on each).
    settle(&bot).await;
    assert!(sim.calls().is_empty());
    let expiry = bot.store.get_job(&key, "expire").await.unwrap().unwrap();
    assert_eq!(expiry.status, JobStatus::Dead);
    assert_eq!(expiry.last_error.as_deref(), Some("tenant_uninstalled"));
    let items = dynamodb_local::all_items(&bot.store).await;
    let tenant_items: Vec<_> = items
        .iter()
        .filter(|i| {
            i["pk"]
                .as_s()
                .is_ok_and(|pk| pk.starts_with(&format!("card#{TENANT_B}#")))
        })
        .collect();
    assert!(tenant_items.len() >= 3, "{tenant_items:?}");
    for item in tenant_items {
        assert!(item.contains_key("expires_at"), "no TTL on {item:?}");
    }
}

async fn admin(bot: &Bot<DynamoStore>, args: &[&str]) -> Result<Value, cardbot_admin::AdminError> {
    let cli = cardbot_admin::Cli::parse_args(
        std::iter::once("cardbot-admin").chain(args.iter().copied()),
    )
    .expect("the arguments parse");
    let out = cardbot_admin::run(&cli.command, &*bot.store, bot.sim.now_ms()).await?;
    Ok(serde_json::from_str(&out).expect("JSON out"))
}

/// A definitions file in a fresh temporary directory.
fn definitions_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cardbot-store-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("definitions.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn expense_for(approvers: &str) -> String {
    format!(
        "definitions:
  - id: expense
    name: {{zh_cn: 费用报销, en_us: Expense}}
    fields:
      - {{name: reason, type: textarea, label: 事由, required: true}}
    approvers: {approvers}
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_reads_its_own_definitions_else_the_deployments() {
    let bot = ready_bot("message").await;
    let sim = bot.sim.clone();
    let b_user = sim.add_tenant_users(TENANT_B, 1).remove(0);
    // Tenant B's own set names its own approver by open_id; the deployment offers the built-ins.
    let own = expense_for(&format!("{{open_ids: [{}]}}", b_user.open_id));
    let file = definitions_file("b", &format!("{own}drop: [leave, work_overtime]\n"));
    let path = file.to_str().unwrap();
    let applied = admin(&bot, &["definitions", "apply", path, "--tenant", TENANT_B])
        .await
        .unwrap();
    let added: Vec<_> = applied["applied"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["change"] == "added")
        .map(|a| a["id"].clone())
        .collect();
    assert_eq!(added, [json!("expense")], "{applied}");
    let listed = admin(&bot, &["definitions", "list", "--tenant", TENANT_B])
        .await
        .unwrap();
    assert_eq!(
        listed["definitions"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    let deployment = admin(&bot, &["definitions", "list"]).await.unwrap();
    assert_eq!(
        deployment["definitions"].as_array().unwrap().len(),
        2,
        "{deployment}"
    );
    // B's 审批 card offers B's type; A's offers the built-ins.
    sim.send_message_as(&bot.event_url, &b_user, ChatKind::P2p, "审批")
        .await;
    let b_card = cards_in(&bot, &b_user.p2p_chat_id).pop().unwrap();
    let b_text = sim.card_text(&b_card).unwrap();
    assert!(
        b_text.contains("费用报销") && !b_text.contains("请假"),
        "{b_text}"
    );
    sim.send_user_message(&bot.event_url, ChatKind::P2p, "审批")
        .await;
    let a_card = cards_in(&bot, ids::P2P_CHAT_ID).pop().unwrap();
    let a_text = sim.card_text(&a_card).unwrap();
    assert!(
        a_text.contains("请假") && !a_text.contains("费用报销"),
        "{a_text}"
    );
    // The request pins B's own set (`tenant: true`): it keeps reading its version from there.
    sim.press_as(&bot.card_url, &b_user, &b_card, "btn_expense", &[])
        .await
        .unwrap();
    let state = card_of(&bot, TENANT_B, &b_card).await.unwrap();
    assert_eq!(
        state.data["definition"],
        json!({"id": "expense", "version": 1, "tenant": true})
    );
    // A tenant key that is no key is refused before anything is written.
    let refused = admin(&bot, &["definitions", "list", "--tenant", "a#b"]).await;
    assert!(matches!(
        refused,
        Err(cardbot_admin::AdminError::Refused(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_apps_deployment_wide_definitions_may_name_no_open_ids() {
    let bot = ready_bot("message").await;
    let file = definitions_file("all", &expense_for("{open_ids: [ou_a1b2c3]}"));
    let path = file.to_str().unwrap();
    let refused = admin(&bot, &["definitions", "apply", path, "--app-type", "store"]).await;
    let Err(cardbot_admin::AdminError::Invalid(problems)) = refused else {
        panic!("applied: {refused:?}");
    };
    assert!(
        problems[0].contains("`expense` names approvers.open_ids"),
        "{problems:?}"
    );
    assert!(
        admin(&bot, &["definitions", "list"]).await.unwrap()["definitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["id"] != "expense")
    );
    // Leader approvers serve every tenant.
    let leader = definitions_file("leader", &expense_for("{leader: true}"));
    admin(
        &bot,
        &[
            "definitions",
            "apply",
            leader.to_str().unwrap(),
            "--app-type",
            "store",
        ],
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_lists_each_tenants_status_and_install() {
    let bot = ready_bot("message").await;
    let sim = bot.sim.clone();
    let b_user = sim.add_tenant_users(TENANT_B, 1).remove(0);
    sim.change_tenant(&bot.event_url, TENANT_B, LifecycleChange::Install)
        .await;
    sim.change_tenant(&bot.event_url, TENANT_B, LifecycleChange::Stop)
        .await;
    // Tenant A is first seen in a message: created active.
    sim.send_user_message(&bot.event_url, ChatKind::P2p, "审批")
        .await;
    let listed = admin(&bot, &["tenants", "--app-id", ids::APP_ID])
        .await
        .unwrap();
    let tenants = listed["tenants"].as_array().unwrap();
    let of = |key: &str| {
        tenants
            .iter()
            .find(|t| t["tenant_key"] == key)
            .unwrap()
            .clone()
    };
    let a = of(ids::TENANT_KEY);
    assert_eq!(a["status"], "active", "{listed}");
    assert_eq!(a["installed_at"], Value::Null);
    let b = of(TENANT_B);
    assert_eq!(b["status"], "stopped_by_tenant", "{listed}");
    assert_eq!(b["installer_open_id"], b_user.open_id.as_str());
    assert!(b["installed_at"].is_string(), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_refuses_one_tenants_token_on_another_tenants_chat_and_user() {
    use cardbot::feishu::{FeishuApi, MessageContent, ReceiveId};
    let bot = ready_bot("message").await;
    let sim = bot.sim.clone();
    let b_user = sim.add_tenant_users(TENANT_B, 1).remove(0);
    let client = cardbot::entry::feishu_client_builder(
        &bot.config.config,
        &bot.config.feishu,
        bot.store.clone(),
    )
    .clock(Arc::new(SimulatorClock(sim.clone())))
    .build()
    .unwrap();
    let tenant_a = client.for_tenant(&TenantKey::new(ids::TENANT_KEY).unwrap());
    let deadline = || Deadline::after(Duration::from_secs(5));
    let text = MessageContent::Text("hi".into());
    let to_b = ReceiveId::ChatId(b_user.p2p_chat_id.clone());
    let err = tenant_a
        .send_message(&to_b, &text, "uuid-cross-tenant", deadline())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(10034), "{err}");
    let err = tenant_a
        .get_user(&b_user.open_id, deadline())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(10034), "{err}");
    // The same calls with tenant B's own client go through.
    let tenant_b = client.for_tenant(&TenantKey::new(TENANT_B).unwrap());
    tenant_b
        .send_message(&to_b, &text, "uuid-own-tenant", deadline())
        .await
        .unwrap();
    // A store app's root client has no tenant: it refuses to call.
    let err = client.bot_open_id(deadline()).await.unwrap_err();
    assert!(matches!(err, FeishuError::InvalidRequest(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_control_api_and_playground_speak_tenants() {
    let bot = store_bot("message", Duration::from_secs(60)).await;
    let http = reqwest::Client::new();
    let base = bot.sim.base_url();
    let control = |path: String, body: Value| {
        let request = http.post(format!("{base}/_sim/{path}")).json(&body);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let added = control("users".into(), json!({"count": 1, "tenant": TENANT_B})).await;
    let open_id = added["items"][0]["open_id"].as_str().unwrap().to_owned();
    assert_eq!(bot.sim.tenant_of_user(&open_id), TENANT_B);
    let to_bot = json!({"url": bot.event_url});
    let pushed = control("app_ticket".into(), to_bot.clone()).await;
    assert_eq!(pushed["status"], 200, "{pushed}");
    let stopped = control(format!("tenants/{TENANT_B}/stop"), to_bot).await;
    assert_eq!(stopped["status"], 200, "{stopped}");
    let record = bot
        .store
        .get_tenant(ids::APP_ID, TENANT_B)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, TenantStatus::StoppedByTenant);
    // The playground groups its people by tenant: picking one switches tenant.
    let page = http
        .get(format!("{base}/playground"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("label=\"tenant {TENANT_B}\"")),
        "{page}"
    );
    assert!(page.contains(&format!("label=\"tenant {}\"", ids::TENANT_KEY)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_message_before_the_first_ticket_is_queued_and_answered_only_if_for_this_bot() {
    let bot = store_bot("message", Duration::from_secs(600)).await;
    let sim = bot.sim.clone();
    // @bot 审批, and 审批 @Alice: the bot cannot read its own open_id yet, so neither is
    // answered 503; both are queued with their mentions.
    let to_bot = sim
        .send_user_message(&bot.event_url, ChatKind::Group, "审批")
        .await;
    assert_eq!(to_bot.status, Some(200), "{}", to_bot.response_body);
    let to_alice = sim
        .send_user_message(&bot.event_url, ChatKind::GroupNotAddressed, "@Alice 审批")
        .await;
    assert_eq!(to_alice.status, Some(200), "{}", to_alice.response_body);
    assert!(bot.bot_messages(ids::GROUP_CHAT_ID).is_empty());
    // The ticket arrives: only the message that @mentions this bot is answered.
    assert_eq!(sim.push_app_ticket(&bot.event_url).await.status, Some(200));
    settle(&bot).await;
    let replies = bot.bot_messages(ids::GROUP_CHAT_ID);
    let answered = |message: &Delivery| {
        let id = message.message_id.as_deref().unwrap();
        replies
            .iter()
            .filter(|m| m.parent_id.as_deref() == Some(id))
            .count()
    };
    assert!(answered(&to_bot) >= 1, "{replies:?}");
    assert_eq!(answered(&to_alice), 0, "{replies:?}");
    let key = format!("{}#{}", ids::TENANT_KEY, to_alice.message_id.unwrap());
    let job = bot
        .store
        .get_job(&key, "send_reply")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Done);
}
