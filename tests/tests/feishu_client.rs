//! `cardbot::feishu::FeishuClient` against the Feishu simulator over real HTTP: every call, and the
//! token, rate-limit and 5xx fault paths.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cardbot::feishu::{
    BatchUpdateAction, CardWrite, Clock, Deadline, ElementPosition, FeishuApi, FeishuClient,
    FeishuClientConfig, FeishuError, MessageContent, ReceiveId, RequestUuid, RetryPolicy,
};
use cardbot::store::dynamo::DynamoStore;
use cardbot::store::memory::MemoryStore;
use cardbot::store::{
    EpochMillis, PermitRequest, PermitTake, RateScope, RateStore, StoreResult, StoredTenantToken,
    TokenStore,
};
use cardbot_tests::dynamodb_local;
use cardbot_tests::simulator::{ids, ApiCall, FaultKind, SimConfig, Simulator};
use serde_json::{json, Value};

const AUTH_PATH: &str = "/open-apis/auth/v3/tenant_access_token/internal";

/// The shared token table, as the DynamoDB adapter behaves (later expiry wins, conditional evict),
/// and the shared rate counters (a MemoryStore's).
#[derive(Default)]
struct SharedTokenTable {
    items: Mutex<HashMap<String, StoredTenantToken>>,
    rates: MemoryStore,
}

#[async_trait]
impl RateStore for SharedTokenTable {
    async fn take_permits(
        &self,
        app_id: &str,
        scope: &RateScope,
        requests: &[PermitRequest],
        now: EpochMillis,
    ) -> StoreResult<PermitTake> {
        self.rates.take_permits(app_id, scope, requests, now).await
    }
}

#[async_trait]
impl TokenStore for SharedTokenTable {
    async fn get_tenant_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>> {
        Ok(self.items.lock().unwrap().get(app_id).cloned())
    }
    async fn put_tenant_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool> {
        let mut items = self.items.lock().unwrap();
        if items
            .get(app_id)
            .is_some_and(|t| t.expires_at > token.expires_at)
        {
            return Ok(false);
        }
        items.insert(app_id.to_owned(), token.clone());
        Ok(true)
    }
    async fn evict_tenant_token(&self, app_id: &str, token: &str) -> StoreResult<()> {
        let mut items = self.items.lock().unwrap();
        if items.get(app_id).is_some_and(|t| t.token == token) {
            items.remove(app_id);
        }
        Ok(())
    }
}

/// The client reads the simulator's clock, so moving simulated time moves token expiry too.
struct SimTime(Arc<Simulator>);

impl Clock for SimTime {
    fn now_millis(&self) -> EpochMillis {
        self.0.now_ms()
    }
}

struct Harness {
    sim: Arc<Simulator>,
    table: Arc<SharedTokenTable>,
    client: FeishuClient,
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        base_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        ..RetryPolicy::default()
    }
}

impl Harness {
    /// A card create with `deadline` that must fail; its error and how long it took.
    async fn failing_create(&self, deadline: Duration) -> (FeishuError, Duration) {
        let started = Instant::now();
        let err = self
            .client
            .create_card(&approval_card("x"), Deadline::after(deadline))
            .await
            .unwrap_err();
        (err, started.elapsed())
    }

    async fn start() -> Self {
        let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
        let table = Arc::new(SharedTokenTable::default());
        let client = Self::client_for(&sim, table.clone(), fast_retries());
        Self { sim, table, client }
    }

    /// A harness whose client already holds a token (it has created one card).
    async fn warm() -> Self {
        let h = Self::start().await;
        h.client
            .create_card(&approval_card("warm"), deadline())
            .await
            .unwrap();
        h
    }

    /// The next `times` card creations fail with `fault`.
    fn fail_card_creates(&self, times: u32, fault: FaultKind) {
        self.sim
            .fail_next("POST", "/open-apis/cardkit/v1/cards", times, fault);
    }

    fn client_for(
        sim: &Arc<Simulator>,
        table: Arc<SharedTokenTable>,
        retry: RetryPolicy,
    ) -> FeishuClient {
        let config = FeishuClientConfig {
            base_url: sim.base_url(),
            app_id: ids::APP_ID.into(),
            app_secret: ids::APP_SECRET.into(),
        };
        FeishuClient::builder(config, table)
            .retry_policy(retry)
            .clock(Arc::new(SimTime(sim.clone())))
            .build()
            .unwrap()
    }

    fn calls_to(&self, method: &str, path_prefix: &str) -> Vec<ApiCall> {
        self.sim
            .calls()
            .into_iter()
            .filter(|c| c.method == method && c.path.starts_with(path_prefix))
            .collect()
    }

    fn auth_calls(&self) -> usize {
        self.calls_to("POST", AUTH_PATH).len()
    }
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

fn approval_card(status: &str) -> Value {
    json!({
        "schema": "2.0",
        "config": { "update_multi": true },
        "header": { "title": { "tag": "plain_text", "content": "审批" }, "template": "blue" },
        "body": { "elements": [
            { "tag": "markdown", "element_id": "status", "content": status },
            { "tag": "button", "element_id": "btn_leave", "text": { "tag": "plain_text", "content": "请假" },
              "behaviors": [ { "type": "callback", "value": { "type": "leave" } } ] }
        ] }
    })
}

fn body_of(call: &ApiCall) -> Value {
    serde_json::from_str(&call.body).unwrap()
}

/// Finds an element by element_id anywhere in a card.
fn element<'a>(card: &'a Value, element_id: &str) -> Option<&'a Value> {
    match card {
        Value::Object(map) => {
            if map.get("element_id").and_then(Value::as_str) == Some(element_id) {
                return Some(card);
            }
            map.values().find_map(|v| element(v, element_id))
        }
        Value::Array(items) => items.iter().find_map(|v| element(v, element_id)),
        _ => None,
    }
}

fn element_ids(card: &Value) -> Vec<String> {
    card["body"]["elements"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["element_id"].as_str().map(str::to_owned))
        .collect()
}

// ------------------------------------------------------------------ im

#[tokio::test]
async fn send_text_lands_in_the_chat_with_a_string_content_and_the_derived_uuid() {
    let h = Harness::start().await;
    let sent = h
        .client
        .send_message(
            &ReceiveId::OpenId(ids::USER_OPEN_ID.into()),
            &MessageContent::Text("请选择需要的操作".into()),
            "help:om_1",
            deadline(),
        )
        .await
        .unwrap();
    let stored = h
        .sim
        .message(&sent.message_id)
        .expect("the simulator holds it");
    assert_eq!(stored.chat_id, ids::P2P_CHAT_ID);
    assert_eq!(stored.msg_type, "text");
    assert_eq!(
        serde_json::from_str::<Value>(&stored.content).unwrap(),
        json!({"text": "请选择需要的操作"})
    );
    assert_eq!(
        stored.uuid.as_deref(),
        Some(RequestUuid::derive("help:om_1").as_str())
    );
    let call = &h.calls_to("POST", "/open-apis/im/v1/messages?")[0];
    assert_eq!(
        call.path,
        "/open-apis/im/v1/messages?receive_id_type=open_id"
    );
    assert!(body_of(call)["content"].is_string());
    assert_eq!(sent.chat_id.as_deref(), Some(ids::P2P_CHAT_ID));
}

#[tokio::test]
async fn the_same_key_sends_one_message() {
    let h = Harness::start().await;
    let receiver = ReceiveId::ChatId(ids::GROUP_CHAT_ID.into());
    let content = MessageContent::Card(approval_card("待审批"));
    let send = || {
        h.client
            .send_message(&receiver, &content, "card:om_2", deadline())
    };
    let first = send().await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(first.message_id, second.message_id);
    assert_eq!(h.sim.messages(ids::GROUP_CHAT_ID).len(), 1);
    assert_eq!(h.calls_to("POST", "/open-apis/im/v1/messages?").len(), 2);
}

#[tokio::test]
async fn send_an_inline_card_then_patch_it() {
    let h = Harness::start().await;
    let sent = h
        .client
        .send_message(
            &ReceiveId::ChatId(ids::P2P_CHAT_ID.into()),
            &MessageContent::Card(approval_card("待审批")),
            "card:om_3",
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(
        h.sim.card(&sent.message_id).unwrap().card,
        approval_card("待审批")
    );
    h.client
        .patch_message_card(&sent.message_id, &approval_card("请假通过"), deadline())
        .await
        .unwrap();
    let card = h.sim.card(&sent.message_id).unwrap();
    assert_eq!(card.card, approval_card("请假通过"));
    assert_eq!(card.history.last().unwrap().via, "patch");
    let patch = &h.calls_to("PATCH", "/open-apis/im/v1/messages/")[0];
    assert!(body_of(patch)["content"].is_string());
}

#[tokio::test]
async fn patch_after_14_days_is_message_too_old() {
    let h = Harness::start().await;
    let sent = h
        .client
        .send_message(
            &ReceiveId::ChatId(ids::P2P_CHAT_ID.into()),
            &MessageContent::Card(approval_card("待审批")),
            "card:om_old",
            deadline(),
        )
        .await
        .unwrap();
    h.sim.advance(Duration::from_secs(15 * 24 * 3600));
    let err = h
        .client
        .patch_message_card(&sent.message_id, &approval_card("过期"), deadline())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FeishuError::MessageTooOld { log_id: Some(_) }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn reply_with_a_card_entity() {
    let h = Harness::start().await;
    let source = h
        .client
        .send_message(
            &ReceiveId::ChatId(ids::P2P_CHAT_ID.into()),
            &MessageContent::Text("审批".into()),
            "source",
            deadline(),
        )
        .await
        .unwrap();
    let card_id = h
        .client
        .create_card(&approval_card("待审批"), deadline())
        .await
        .unwrap();
    let reply = h
        .client
        .reply_message(
            &source.message_id,
            &MessageContent::CardEntity {
                card_id: card_id.clone(),
            },
            false,
            "reply:approval",
            deadline(),
        )
        .await
        .unwrap();
    let stored = h.sim.message(&reply.message_id).unwrap();
    assert_eq!(
        stored.parent_id.as_deref(),
        Some(source.message_id.as_str())
    );
    assert_eq!(stored.card_id.as_deref(), Some(card_id.as_str()));
    assert_eq!(
        h.sim.card(&reply.message_id).unwrap().card,
        approval_card("待审批")
    );
    let call = &h.calls_to(
        "POST",
        &format!("/open-apis/im/v1/messages/{}/reply", source.message_id),
    )[0];
    assert_eq!(
        serde_json::from_str::<Value>(body_of(call)["content"].as_str().unwrap()).unwrap(),
        json!({"type": "card", "data": {"card_id": card_id}})
    );
}

/// A bot endpoint that answers every card callback with `{}` (the simulator needs an answer
/// before it accepts a delayed update).
async fn answering_bot() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { axum::Json(json!({})) });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/callback")
}

#[tokio::test]
async fn delayed_update_twice_then_used_up() {
    let h = Harness::start().await;
    let sent = h
        .client
        .send_message(
            &ReceiveId::ChatId(ids::P2P_CHAT_ID.into()),
            &MessageContent::Card(approval_card("待审批")),
            "card:om_delayed",
            deadline(),
        )
        .await
        .unwrap();
    let bot = answering_bot().await;
    let click = h
        .sim
        .click_card(&bot, &sent.message_id, json!({"type": "leave"}))
        .await
        .unwrap();
    for status in ["请假已提交", "请假通过"] {
        h.client
            .delayed_update_card(&click.update_token, &approval_card(status), deadline())
            .await
            .unwrap();
        assert_eq!(
            h.sim.card(&sent.message_id).unwrap().card,
            approval_card(status)
        );
    }
    assert_eq!(h.sim.update_token(&click.update_token).unwrap().uses, 2);
    let err = h
        .client
        .delayed_update_card(&click.update_token, &approval_card("第三次"), deadline())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FeishuError::UpdateTokenUsedUp { .. }),
        "{err:?}"
    );
    assert_eq!(
        h.sim.card(&sent.message_id).unwrap().card,
        approval_card("请假通过")
    );
    let call = &h.calls_to("POST", "/open-apis/interactive/v1/card/update")[0];
    assert!(body_of(call)["card"].is_object());
}

#[tokio::test]
async fn delayed_update_after_30_minutes_is_token_expired() {
    let h = Harness::start().await;
    let sent = h
        .client
        .send_message(
            &ReceiveId::ChatId(ids::P2P_CHAT_ID.into()),
            &MessageContent::Card(approval_card("待审批")),
            "card:om_expired",
            deadline(),
        )
        .await
        .unwrap();
    let click = h
        .sim
        .click_card(
            &answering_bot().await,
            &sent.message_id,
            json!({"type": "leave"}),
        )
        .await
        .unwrap();
    h.sim.advance(Duration::from_secs(31 * 60));
    let err = h
        .client
        .delayed_update_card(&click.update_token, &approval_card("晚了"), deadline())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FeishuError::UpdateTokenExpired { .. }),
        "{err:?}"
    );
}

// ------------------------------------------------------------------ CardKit

async fn sent_entity(h: &Harness) -> String {
    let card_id = h
        .client
        .create_card(&approval_card("待审批"), deadline())
        .await
        .unwrap();
    h.client
        .send_message(
            &ReceiveId::ChatId(ids::P2P_CHAT_ID.into()),
            &MessageContent::CardEntity {
                card_id: card_id.clone(),
            },
            &format!("entity:{card_id}"),
            deadline(),
        )
        .await
        .unwrap();
    card_id
}

#[tokio::test]
async fn create_and_fully_update_a_card_entity() {
    let h = Harness::start().await;
    let card_id = h
        .client
        .create_card(&approval_card("待审批"), deadline())
        .await
        .unwrap();
    assert_eq!(
        h.sim.card_entity(&card_id).unwrap().card,
        approval_card("待审批")
    );
    h.client
        .update_card(
            &card_id,
            &approval_card("请假通过"),
            &CardWrite::new(1, "full:1"),
            deadline(),
        )
        .await
        .unwrap();
    let entity = h.sim.card_entity(&card_id).unwrap();
    assert_eq!(entity.card, approval_card("请假通过"));
    assert_eq!(entity.last_sequence, Some(1));
    let put = &h.calls_to("PUT", &format!("/open-apis/cardkit/v1/cards/{card_id}"))[0];
    let body = body_of(put);
    assert_eq!(body["sequence"], 1);
    assert_eq!(body["uuid"], RequestUuid::derive("full:1").as_str());
    assert!(body["card"]["data"].is_string());
}

#[tokio::test]
async fn a_stale_sequence_is_typed() {
    let h = Harness::start().await;
    let card_id = sent_entity(&h).await;
    h.client
        .update_card(
            &card_id,
            &approval_card("a"),
            &CardWrite::new(5, "seq:5"),
            deadline(),
        )
        .await
        .unwrap();
    let err = h
        .client
        .update_card(
            &card_id,
            &approval_card("b"),
            &CardWrite::new(5, "seq:5b"),
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, FeishuError::SequenceNotIncreasing { .. }),
        "{err:?}"
    );
    assert_eq!(
        h.sim.card_entity(&card_id).unwrap().card,
        approval_card("a")
    );
}

#[tokio::test]
async fn an_entity_older_than_14_days_is_typed() {
    let h = Harness::start().await;
    let card_id = sent_entity(&h).await;
    h.sim.advance(Duration::from_secs(15 * 24 * 3600));
    let err = h
        .client
        .update_card(
            &card_id,
            &approval_card("x"),
            &CardWrite::new(1, "late"),
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, FeishuError::CardEntityExpired { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn settings_element_writes_and_streaming() {
    let h = Harness::start().await;
    let card_id = sent_entity(&h).await;
    let c = &h.client;
    c.update_card_settings(
        &card_id,
        &json!({"config": {"streaming_mode": true}}),
        &CardWrite::new(1, "settings:on"),
        deadline(),
    )
    .await
    .unwrap();
    assert!(h.sim.card_entity(&card_id).unwrap().streaming);

    let md = |id: &str, text: &str| json!({"tag": "markdown", "element_id": id, "content": text});
    c.add_card_elements(
        &card_id,
        &ElementPosition::InsertBefore("status".into()),
        &[md("before", "b")],
        &CardWrite::new(2, "add:before"),
        deadline(),
    )
    .await
    .unwrap();
    c.add_card_elements(
        &card_id,
        &ElementPosition::InsertAfter("status".into()),
        &[md("after", "a")],
        &CardWrite::new(3, "add:after"),
        deadline(),
    )
    .await
    .unwrap();
    c.add_card_elements(
        &card_id,
        &ElementPosition::Append(None),
        &[md("tail", "t")],
        &CardWrite::new(4, "add:append"),
        deadline(),
    )
    .await
    .unwrap();
    let card = h.sim.card_entity(&card_id).unwrap().card;
    assert_eq!(
        element_ids(&card),
        ["before", "status", "after", "btn_leave", "tail"]
    );

    c.update_card_element(
        &card_id,
        "after",
        &md("after", "replaced"),
        &CardWrite::new(5, "put:after"),
        deadline(),
    )
    .await
    .unwrap();
    c.patch_card_element(
        &card_id,
        "before",
        &json!({"content": "patched"}),
        &CardWrite::new(6, "patch:before"),
        deadline(),
    )
    .await
    .unwrap();
    c.stream_card_element_text(
        &card_id,
        "status",
        "审批中：正在处理",
        &CardWrite::new(7, "stream:1"),
        deadline(),
    )
    .await
    .unwrap();
    c.delete_card_element(
        &card_id,
        "tail",
        &CardWrite::new(8, "delete:tail"),
        deadline(),
    )
    .await
    .unwrap();
    let entity = h.sim.card_entity(&card_id).unwrap();
    assert_eq!(
        element(&entity.card, "after").unwrap()["content"],
        "replaced"
    );
    assert_eq!(
        element(&entity.card, "before").unwrap()["content"],
        "patched"
    );
    assert_eq!(
        element(&entity.card, "status").unwrap()["content"],
        "审批中：正在处理"
    );
    assert!(element(&entity.card, "tail").is_none());
    assert_eq!(entity.last_sequence, Some(8));

    c.update_card_settings(
        &card_id,
        &json!({"config": {"streaming_mode": false}}),
        &CardWrite::new(9, "settings:off"),
        deadline(),
    )
    .await
    .unwrap();
    assert!(!h.sim.card_entity(&card_id).unwrap().streaming);
}

#[tokio::test]
async fn batch_update_applies_every_action_in_one_write() {
    let h = Harness::start().await;
    let card_id = sent_entity(&h).await;
    let actions = [
        BatchUpdateAction::AddElements {
            position: ElementPosition::InsertAfter("status".into()),
            elements: vec![json!({"tag": "markdown", "element_id": "note", "content": "n"})],
        },
        BatchUpdateAction::PartialUpdateElement {
            element_id: "status".into(),
            partial_element: json!({"content": "请假通过"}),
        },
        BatchUpdateAction::DeleteElements {
            element_ids: vec!["btn_leave".into()],
        },
        BatchUpdateAction::UpdateElement {
            element_id: "note".into(),
            element: json!({"tag": "markdown", "element_id": "note", "content": "已处理"}),
        },
        BatchUpdateAction::PartialUpdateSetting {
            settings: json!({"config": {"update_multi": true}}),
        },
    ];
    h.client
        .batch_update_card(
            &card_id,
            &actions,
            &CardWrite::new(1, "batch:1"),
            deadline(),
        )
        .await
        .unwrap();
    let entity = h.sim.card_entity(&card_id).unwrap();
    assert_eq!(element_ids(&entity.card), ["status", "note"]);
    assert_eq!(
        element(&entity.card, "status").unwrap()["content"],
        "请假通过"
    );
    assert_eq!(element(&entity.card, "note").unwrap()["content"], "已处理");
    assert_eq!(entity.last_sequence, Some(1));
    let call = &h.calls_to(
        "POST",
        &format!("/open-apis/cardkit/v1/cards/{card_id}/batch_update"),
    )[0];
    assert!(body_of(call)["actions"].is_string());
}

#[tokio::test]
async fn id_convert_finds_the_entity_of_a_sent_message() {
    let h = Harness::start().await;
    let card_id = h
        .client
        .create_card(&approval_card("待审批"), deadline())
        .await
        .unwrap();
    let sent = h
        .client
        .send_message(
            &ReceiveId::ChatId(ids::P2P_CHAT_ID.into()),
            &MessageContent::CardEntity {
                card_id: card_id.clone(),
            },
            "entity:convert",
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(
        h.client
            .convert_message_to_card_id(&sent.message_id, deadline())
            .await
            .unwrap(),
        card_id
    );
}

// ------------------------------------------------------------------ token

#[tokio::test]
async fn one_token_fetch_serves_many_calls_and_a_second_instance_reads_the_table() {
    let h = Harness::start().await;
    for i in 0..3 {
        h.client
            .create_card(&approval_card(&format!("{i}")), deadline())
            .await
            .unwrap();
    }
    assert_eq!(h.auth_calls(), 1);
    let auth = &h.calls_to("POST", AUTH_PATH)[0];
    assert_eq!(
        body_of(auth),
        json!({"app_id": ids::APP_ID, "app_secret": ids::APP_SECRET})
    );
    // A cold start of another Lambda: same table, new client.
    let other = Harness::client_for(&h.sim, h.table.clone(), fast_retries());
    other
        .create_card(&approval_card("x"), deadline())
        .await
        .unwrap();
    assert_eq!(h.auth_calls(), 1);
}

#[tokio::test]
async fn an_invalidated_token_is_refetched_exactly_once_then_the_call_succeeds() {
    let h = Harness::warm().await;
    assert_eq!(h.auth_calls(), 1);
    h.fail_card_creates(1, FaultKind::InvalidToken);
    let card_id = h
        .client
        .create_card(&approval_card("after"), deadline())
        .await
        .unwrap();
    assert_eq!(h.auth_calls(), 2, "exactly one refetch");
    assert_eq!(
        h.sim.card_entity(&card_id).unwrap().card,
        approval_card("after")
    );
    let creates = h.calls_to("POST", "/open-apis/cardkit/v1/cards");
    let codes: Vec<_> = creates.iter().map(|c| c.code).collect();
    assert_eq!(codes, [Some(0), Some(99991663), Some(0)]);
}

#[tokio::test]
async fn a_token_feishu_expired_is_evicted_from_both_caches() {
    let h = Harness::warm().await;
    let old = h.table.items.lock().unwrap()[ids::APP_ID].clone();
    // Feishu's clock runs ahead of ours: the cached token is dead, our cache thinks it is fresh.
    h.sim.advance(Duration::from_secs(3 * 3600));
    let lagging = Harness::client_for(&h.sim, h.table.clone(), fast_retries());
    // Rewind the table entry's expiry as a lagging instance would see it: still "fresh".
    h.table.items.lock().unwrap().insert(
        ids::APP_ID.into(),
        StoredTenantToken {
            token: old.token.clone(),
            expires_at: h.sim.now_ms() + 3_600_000,
        },
    );
    lagging
        .create_card(&approval_card("x"), deadline())
        .await
        .unwrap();
    assert_eq!(h.auth_calls(), 2);
    let stored = h.table.items.lock().unwrap()[ids::APP_ID].clone();
    assert_ne!(stored.token, old.token);
}

#[tokio::test]
async fn a_token_rejected_twice_is_a_typed_error() {
    let h = Harness::start().await;
    h.fail_card_creates(2, FaultKind::InvalidToken);
    let err = h
        .client
        .create_card(&approval_card("x"), deadline())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FeishuError::InvalidToken { code: 99991663, .. }),
        "{err:?}"
    );
    assert_eq!(h.auth_calls(), 2);
}

// ------------------------------------------------------------------ rate limits and 5xx

#[tokio::test]
async fn three_429s_with_reset_1s_then_success_no_sooner_than_the_resets() {
    let h = Harness::warm().await;
    h.fail_card_creates(3, FaultKind::RateLimited { reset_secs: 1 });
    let started = Instant::now();
    let card_id = h
        .client
        .create_card(
            &approval_card("limited"),
            Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    let elapsed = started.elapsed();
    eprintln!("three 429s (reset 1 s) then success after {elapsed:?}");
    assert!(elapsed >= Duration::from_secs(3), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(h.sim.card_entity(&card_id).is_some());
    let creates = h.calls_to("POST", "/open-apis/cardkit/v1/cards");
    assert_eq!(creates.len(), 5);
    // Each retry waited at least the reset after the 429 before it.
    for pair in creates[1..].windows(2) {
        assert!(
            pair[1].at_ms - pair[0].at_ms >= 1000,
            "{} → {}",
            pair[0].at_ms,
            pair[1].at_ms
        );
    }
}

#[tokio::test]
async fn a_rate_limit_wait_past_the_deadline_returns_at_once() {
    let h = Harness::warm().await;
    h.fail_card_creates(1, FaultKind::RateLimited { reset_secs: 52 });
    let (err, elapsed) = h.failing_create(Duration::from_secs(5)).await;
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(52)));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn endless_5xx_ends_in_a_typed_error_at_the_deadline() {
    let h = Harness::warm().await;
    h.fail_card_creates(u32::MAX, FaultKind::ServerError { status: 503 });
    let retry = RetryPolicy {
        max_attempts: u32::MAX,
        ..fast_retries()
    };
    let client = Harness::client_for(&h.sim, h.table.clone(), retry);
    let budget = Duration::from_secs(2);
    let started = Instant::now();
    let err = client
        .create_card(&approval_card("x"), Deadline::after(budget))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("endless 503 with a 2 s deadline: {err} after {elapsed:?}");
    assert!(
        matches!(err, FeishuError::DeadlineExceeded { attempts, .. } if attempts > 3),
        "{err:?}"
    );
    assert!(
        elapsed <= budget + Duration::from_millis(400),
        "{elapsed:?}"
    );
    assert!(
        elapsed >= budget - Duration::from_millis(500),
        "{elapsed:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_hanging_call_is_cut_at_the_deadline() {
    let h = Harness::warm().await;
    h.fail_card_creates(1, FaultKind::Hang { millis: 5_000 });
    let (err, elapsed) = h.failing_create(Duration::from_millis(800)).await;
    assert!(
        matches!(err, FeishuError::DeadlineExceeded { .. }),
        "{err:?}"
    );
    assert!(elapsed < Duration::from_millis(1200), "{elapsed:?}");
}

#[tokio::test]
async fn a_few_5xx_are_retried_to_success() {
    let h = Harness::warm().await;
    h.sim.fail_next(
        "POST",
        "/open-apis/im/v1/messages",
        2,
        FaultKind::ServerError { status: 502 },
    );
    let sent = h
        .client
        .send_message(
            &ReceiveId::ChatId(ids::P2P_CHAT_ID.into()),
            &MessageContent::Text("hi".into()),
            "retry:5xx",
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(h.sim.messages(ids::P2P_CHAT_ID).len(), 1);
    assert!(h.sim.message(&sent.message_id).is_some());
    let statuses: Vec<u16> = h
        .calls_to("POST", "/open-apis/im/v1/messages")
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [502, 502, 200]);
}

// ------------------------------------------------------------------ the app-wide rate limit

/// A table on DynamoDB Local that counts rate takes; every client on it is one Lambda instance.
struct CountedTable {
    inner: DynamoStore,
    takes: AtomicU64,
    refused: AtomicU64,
}

impl CountedTable {
    async fn fresh() -> Arc<Self> {
        Arc::new(Self {
            inner: dynamodb_local::fresh_store().await,
            takes: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    fn takes(&self) -> u64 {
        self.takes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenStore for CountedTable {
    async fn get_tenant_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>> {
        self.inner.get_tenant_token(app_id).await
    }
    async fn put_tenant_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool> {
        self.inner.put_tenant_token(app_id, token).await
    }
    async fn evict_tenant_token(&self, app_id: &str, token: &str) -> StoreResult<()> {
        self.inner.evict_tenant_token(app_id, token).await
    }
}

#[async_trait]
impl RateStore for CountedTable {
    async fn take_permits(
        &self,
        app_id: &str,
        scope: &RateScope,
        requests: &[PermitRequest],
        now: EpochMillis,
    ) -> StoreResult<PermitTake> {
        self.takes.fetch_add(1, Ordering::SeqCst);
        let taken = self.inner.take_permits(app_id, scope, requests, now).await;
        if let Ok(PermitTake::Refused { .. }) = taken {
            self.refused.fetch_add(1, Ordering::SeqCst);
        }
        taken
    }
}

fn instance_on(sim: &Arc<Simulator>, table: Arc<CountedTable>) -> FeishuClient {
    let config = FeishuClientConfig {
        base_url: sim.base_url(),
        app_id: ids::APP_ID.into(),
        app_secret: ids::APP_SECRET.into(),
    };
    FeishuClient::builder(config, table)
        .retry_policy(fast_retries())
        .clock(Arc::new(SimTime(sim.clone())))
        .build()
        .unwrap()
}

/// The most Open API calls (the token fetch has limits of its own) the simulator saw in any
/// one-second window, as its own limiter counts them.
fn busiest_second(calls: &[ApiCall]) -> usize {
    let mut at: Vec<i64> = calls
        .iter()
        .filter(|c| c.path != AUTH_PATH)
        .map(|c| c.at_ms)
        .collect();
    at.sort_unstable();
    (0..at.len())
        .map(|i| at[i..].iter().take_while(|t| **t < at[i] + 1_000).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_table_send_150_calls_without_a_429_or_a_second_over_50() {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let table = CountedTable::fresh().await;
    let instances = [
        instance_on(&sim, table.clone()),
        instance_on(&sim, table.clone()),
    ];
    let started = Instant::now();
    let cards: Vec<Value> = (0..150)
        .map(|i| approval_card(&format!("card {i}")))
        .collect();
    let calls = cards.iter().enumerate().map(|(i, card)| {
        instances[i % 2].create_card(card, Deadline::after(Duration::from_secs(20)))
    });
    let results = futures::future::join_all(calls).await;
    let elapsed = started.elapsed();
    for result in &results {
        assert!(result.is_ok(), "{result:?}");
    }
    let calls = sim.calls();
    let limited: Vec<_> = calls.iter().filter(|c| c.status == 429).collect();
    assert!(limited.is_empty(), "{} answered 429", limited.len());
    let busiest = busiest_second(&calls);
    let takes = table.takes();
    eprintln!(
        "150 calls from two instances in {elapsed:?}: busiest second {busiest}, {takes} takes \
         ({} refused; {:.2} DynamoDB requests per Feishu call)",
        table.refused.load(Ordering::SeqCst),
        takes as f64 / 150.0
    );
    assert!(busiest <= 50, "{busiest} calls in one second");
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.path == "/open-apis/cardkit/v1/cards")
            .count(),
        150,
        "no call was retried"
    );
    // Busy takes hold up to 8 permits: far fewer round trips than calls (about 0.3 per call
    // here, half of them refusals that tell when to come back).
    assert!(takes <= 75, "{takes} takes");
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
}

#[tokio::test]
async fn a_quiet_event_costs_one_take_of_the_app_and_one_of_the_chat() {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let table = CountedTable::fresh().await;
    let client = instance_on(&sim, table.clone());
    let source = client
        .send_message(
            &ReceiveId::ChatId(ids::P2P_CHAT_ID.into()),
            &MessageContent::Text("审批".into()),
            "source",
            deadline(),
        )
        .await
        .unwrap();
    let mut per_event = Vec::new();
    for event in 0..3 {
        // Quiet: a few seconds between events, so every app and chat permit of the last ran out.
        sim.advance(Duration::from_secs(3));
        let before = table.takes();
        let text = MessageContent::Text("收到".into());
        let (text_key, card) = (format!("text {event}"), approval_card("待审批"));
        let (text, card) = tokio::join!(
            client.reply_message_in_chat(
                ids::P2P_CHAT_ID,
                &source.message_id,
                &text,
                false,
                &text_key,
                deadline(),
            ),
            client.create_card(&card, deadline())
        );
        text.unwrap();
        let card_id = card.unwrap();
        client
            .reply_message_in_chat(
                ids::P2P_CHAT_ID,
                &source.message_id,
                &MessageContent::CardEntity { card_id },
                false,
                &format!("card {event}"),
                deadline(),
            )
            .await
            .unwrap();
        per_event.push(table.takes() - before);
    }
    eprintln!("takes per quiet event of 3 Feishu calls: {per_event:?}");
    // The first event on a cold instance also takes the card API's permits; later ones find them
    // held (or topped up): one take of the app item and one of the chat item, in parallel.
    assert!(per_event[0] <= 3, "{per_event:?}");
    assert!(per_event[1..].iter().all(|n| *n == 2), "{per_event:?}");
}

#[tokio::test]
async fn a_huge_reset_header_over_http_is_clamped_and_returned_at_once() {
    let h = Harness::warm().await;
    h.fail_card_creates(
        1,
        FaultKind::RateLimited {
            reset_secs: 18_000_000_000_000_000_000,
        },
    );
    let (err, elapsed) = h.failing_create(Duration::from_secs(5)).await;
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(
        err.retry_after(),
        Some(cardbot::feishu::request::MAX_RATE_LIMIT_RESET)
    );
    let now = h.sim.now_ms();
    match cardbot::jobs::on_failure(&err, now) {
        cardbot::jobs::FailureAction::Retry { retry_at: Some(at) } => assert_eq!(at, now + 60_000),
        other => panic!("{other:?}"),
    }
}

/// A server that answers the token request, and every other request with 429 and `reset`.
async fn limited_server(reset: &'static str) -> String {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| async move {
        if uri.path() == AUTH_PATH {
            axum::Json(
                json!({"code": 0, "msg": "ok", "tenant_access_token": "t-limited", "expire": 7200}),
            )
            .into_response()
        } else {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("x-ogw-ratelimit-reset", reset)],
                axum::Json(json!({"code": 99991400, "msg": "request trigger frequency limit"})),
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_malformed_reset_header_over_http_falls_back_to_the_backoff() {
    for (reset, expected) in [
        ("abc", None),
        (
            "18000000000000000000",
            Some(cardbot::feishu::request::MAX_RATE_LIMIT_RESET),
        ),
    ] {
        let config = FeishuClientConfig {
            base_url: limited_server(reset).await,
            app_id: ids::APP_ID.into(),
            app_secret: ids::APP_SECRET.into(),
        };
        let client = FeishuClient::builder(config, Arc::new(SharedTokenTable::default()))
            .retry_policy(RetryPolicy {
                max_attempts: 3,
                ..fast_retries()
            })
            .build()
            .unwrap();
        let started = Instant::now();
        let err = client
            .create_card(&approval_card("x"), Deadline::after(Duration::from_secs(3)))
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(
            matches!(err, FeishuError::RateLimited { retry_after, .. } if retry_after == expected),
            "{reset}: {err:?}"
        );
        // `abc`: three attempts with the short backoff between them; the huge one: at once.
        assert!(elapsed < Duration::from_secs(2), "{reset}: {elapsed:?}");
    }
}
