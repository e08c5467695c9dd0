//! The three functions wired to a store and the Feishu simulator, behind local function URLs.
//!
//! Each URL is a real HTTP server that turns a request into a Lambda function-URL event (payload
//! 2.0, body base64-encoded), parses it with `lambda_http` as the runtime would, and calls the
//! handler; the simulator posts its events and clicks there.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cardbot::config::{Config, FeishuConfig, Function, Secrets, WebhookConfig};
use cardbot::entry::card_action::CardAction;
use cardbot::entry::card_updater::{CardUpdater, Summary, UpdaterEvent};
use cardbot::entry::event_callback::EventCallback;
use cardbot::feishu::{Clock, FeishuClient, RetryPolicy};
use cardbot::function_url;
use cardbot::jobs::JobKind;
use cardbot::store::{EpochMillis, Job, RateStore, Store};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use crate::local_stack::updater;
use crate::simulator::{ids, ChatKind, Sender, Simulator};

/// The bot's clock is the simulator's, so time travel moves both.
pub struct SimulatorClock(pub Arc<Simulator>);

impl Clock for SimulatorClock {
    fn now_millis(&self) -> EpochMillis {
        self.0.now_ms()
    }
}

/// A function-URL event for a POST, and serving a handler behind a local function URL: the
/// simulator's (`feishu_sim::function_url`), which kit users test with too.
pub use crate::simulator::function_url::{
    function_url_event, function_url_request, http_response, serve,
};

/// Reads a function-URL event as the functions' runtime loop does (`function_url::run`).
pub fn lambda_request(event: &Value) -> Request {
    function_url::request_from_event(event.clone()).expect("function URL event parses")
}

/// The bytes of a handler's response body.
pub fn response_bytes(response: &Response<Body>) -> Vec<u8> {
    match response.body() {
        Body::Text(text) => text.as_bytes().to_vec(),
        Body::Binary(bytes) => bytes.clone(),
        _ => Vec::new(),
    }
}

/// What the functions load, as their `main.rs` do, from an environment pointed at the simulator.
#[derive(Debug, Clone)]
pub struct FunctionConfigs {
    pub config: Config,
    /// The Feishu app (event-callback, card-updater).
    pub feishu: FeishuConfig,
    /// The webhook (event-callback, card-action), from card-action's secrets: no App Secret.
    pub webhook: WebhookConfig,
}

/// The functions' environment for the simulator's app. A simulator without an Encrypt Key is
/// unencrypted mode, so the environment opts in with `ALLOW_UNENCRYPTED=true`.
pub fn config_for(sim: &Simulator, delivery: &str) -> FunctionConfigs {
    config_with(sim, delivery, &[])
}

/// [`config_for`] with more settings (e.g. `APPROVER_OPEN_IDS`).
pub fn config_with(sim: &Simulator, delivery: &str, settings: &[(&str, &str)]) -> FunctionConfigs {
    let app = sim.config();
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("FEISHU_APP_ID", app.app_id.clone()),
        ("FEISHU_APP_SECRET", app.app_secret.clone()),
        ("FEISHU_VERIFICATION_TOKEN", app.verification_token.clone()),
        ("FEISHU_BASE_URL", sim.base_url()),
        ("TABLE_NAME", "cardbot-test".to_owned()),
        ("CARD_DELIVERY", delivery.to_owned()),
        // The tutorial's flow unless a test says otherwise: no approver source, and the
        // simulated approval (labelled as automatic) decides. Tests of the real approval set
        // `APPROVER_OPEN_IDS`, or `APPROVER_FROM_LEADER=true`, and `APPROVAL_FALLBACK`.
        ("APPROVER_FROM_LEADER", "false".to_owned()),
        ("APPROVAL_FALLBACK", "simulated".to_owned()),
    ]);
    match &app.encrypt_key {
        Some(key) => vars.insert("FEISHU_ENCRYPT_KEY", key.clone()),
        None => vars.insert("ALLOW_UNENCRYPTED", "true".to_owned()),
    };
    for (name, value) in settings {
        vars.insert(name, (*value).to_owned());
    }
    let lookup = |name: &str| vars.get(name).cloned();
    FunctionConfigs {
        config: Config::from_lookup(lookup).expect("test config is valid"),
        feishu: FeishuConfig::from_lookup(
            lookup,
            &Secrets::from_lookup(Function::CardUpdater, lookup),
        )
        .expect("test app config is valid"),
        webhook: WebhookConfig::from_lookup(
            lookup,
            &Secrets::from_lookup(Function::CardAction, lookup),
        )
        .expect("test webhook config is valid"),
    }
}

/// The three functions on one store and one simulator.
pub struct Bot<S: Store + 'static> {
    pub sim: Arc<Simulator>,
    pub store: Arc<S>,
    pub config: FunctionConfigs,
    pub event_callback: Arc<EventCallback<S, FeishuClient>>,
    pub card_action: Arc<CardAction<S>>,
    pub updater: Arc<CardUpdater<S, FeishuClient>>,
    pub event_url: String,
    pub card_url: String,
    /// The decision events the updater put, unless the bot was started on another bus
    /// ([`Bot::start_on_bus`]).
    pub events: Arc<cardbot::events::MemoryBus>,
}

impl<S: Store + RateStore + 'static> Bot<S> {
    /// Wires the functions as their `main.rs` do, with the simulator's clock.
    pub async fn start(sim: Arc<Simulator>, store: Arc<S>, delivery: &str) -> Self {
        Self::start_with(sim, store, delivery, &[]).await
    }

    /// [`Bot::start`] with more settings for the functions (e.g. `APPROVER_OPEN_IDS`).
    pub async fn start_with(
        sim: Arc<Simulator>,
        store: Arc<S>,
        delivery: &str,
        settings: &[(&str, &str)],
    ) -> Self {
        Self::start_on_bus(sim, store, delivery, settings, None).await
    }

    /// [`Bot::start_with`] whose updater puts decision events on `bus` (`None`: [`Bot::events`]).
    pub async fn start_on_bus(
        sim: Arc<Simulator>,
        store: Arc<S>,
        delivery: &str,
        settings: &[(&str, &str)],
        bus: Option<Arc<dyn cardbot::events::EventBus>>,
    ) -> Self {
        let config = config_with(&sim, delivery, settings);
        let clock: Arc<dyn Clock> = Arc::new(SimulatorClock(sim.clone()));
        let retry = RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            ..RetryPolicy::default()
        };
        let feishu = Arc::new(
            cardbot::entry::feishu_client_builder(&config.config, &config.feishu, store.clone())
                .retry_policy(retry)
                .clock(clock.clone())
                .build()
                .expect("client"),
        );
        // One cache for the three, re-read on every use: a test's `apply` shows at once.
        let definitions = Arc::new(cardbot::definitions::Definitions::new(Duration::ZERO));
        let mut event_callback = EventCallback::new(
            &config.config,
            config.webhook.clone(),
            store.clone(),
            feishu.clone(),
            clock.clone(),
        );
        event_callback.definitions = definitions.clone();
        let event_callback = Arc::new(event_callback);
        let mut card_action = CardAction::new(
            &config.config,
            config.webhook.clone(),
            store.clone(),
            clock.clone(),
        );
        card_action.definitions = definitions.clone();
        let card_action = Arc::new(card_action);
        let mut updater = CardUpdater::new(
            &config.config,
            store.clone(),
            feishu,
            clock,
            "updater-test".to_owned(),
        );
        updater.per_job = Duration::from_secs(5);
        updater.definitions = definitions;
        let recorded = Arc::new(cardbot::events::MemoryBus::default());
        updater.events = Some(bus.unwrap_or_else(|| recorded.clone()));
        let updater = Arc::new(updater);
        let events = event_callback.clone();
        let event_url = serve(move |request| {
            let events = events.clone();
            async move { events.handle(request).await }
        })
        .await;
        let cards = card_action.clone();
        let card_url = serve(move |request| {
            let cards = cards.clone();
            async move { cards.handle(request).await }
        })
        .await;
        Self {
            sim,
            store,
            config,
            event_callback,
            card_action,
            updater,
            event_url,
            card_url,
            events: recorded,
        }
    }
}

impl<S: Store + 'static> Bot<S> {
    /// One updater invocation with `event` and 60 s to run.
    pub async fn run_updater(&self, event: &UpdaterEvent) -> Summary {
        self.updater.handle(event, self.sim.now_ms() + 60_000).await
    }

    /// The messages the bot sent into `chat_id`, oldest first.
    pub fn bot_messages(&self, chat_id: &str) -> Vec<crate::simulator::ChatMessage> {
        self.sim
            .messages(chat_id)
            .into_iter()
            .filter(|m| matches!(m.sender, Sender::App { .. }))
            .collect()
    }

    /// Sends `审批` in the p2p chat; returns the message_id of the card it answers with (the
    /// newest card from the bot).
    pub async fn approval_card(&self) -> String {
        let delivery = self
            .sim
            .send_user_message(&self.event_url, ChatKind::P2p, "审批")
            .await;
        assert_eq!(delivery.status, Some(200), "{}", delivery.response_body);
        self.sim
            .messages(ids::P2P_CHAT_ID)
            .into_iter()
            .rev()
            .find(|m| matches!(m.sender, Sender::App { .. }) && m.msg_type == "interactive")
            .expect("the approval card")
            .message_id
    }

    /// Sends `审批` in the p2p chat and clicks 请假 on the card it answers with (the newest card
    /// from the bot); returns that card's message_id. The click is answered with the new card.
    pub async fn clicked_card(&self) -> String {
        let card = self.approval_card().await;
        let clicked = self
            .sim
            .click_card(&self.card_url, &card, json!({"type": "leave"}))
            .await
            .unwrap();
        assert_eq!(clicked.client_error, None);
        assert!(clicked.card_updated, "{:?}", clicked.delivery.response_body);
        card
    }

    /// `user` opens the 请假 form on `card` (an approver is configured) and submits `form`
    /// ([`leave_form`]); the submit's delivery.
    pub async fn file_leave(
        &self,
        user: &crate::simulator::SimUser,
        card: &str,
        form: &[(&str, Value)],
    ) -> crate::simulator::CallbackDelivery {
        self.sim
            .press_as(&self.card_url, user, card, "btn_leave", &[])
            .await
            .expect("the form opens");
        self.sim
            .press_as(&self.card_url, user, card, "btn_file", form)
            .await
            .expect("the form is submitted")
    }

    /// Runs the updater on the stream record of `card`'s post-answer job, as Lambda would.
    pub async fn run_post_answer(&self, card: &str) -> Summary {
        let job = self.post_answer_job(card).await;
        self.run_updater(&stream_insert(card, &job.job_id, job.due_at))
            .await
    }

    /// The click's post-answer job of `card` as the table holds it now.
    pub async fn post_answer_job(&self, card: &str) -> Job {
        self.store
            .get_job(card, JobKind::PostAnswer.as_str())
            .await
            .unwrap()
            .expect("the click's post-answer job")
    }

    /// The scheduled sweep (an EventBridge event).
    pub async fn sweep(&self) -> Summary {
        self.run_updater(&scheduled(SystemTime::now())).await
    }
}

/// The toast text of a callback's answer; the client must have taken the answer.
pub fn toast(delivery: &crate::simulator::CallbackDelivery) -> String {
    assert_eq!(delivery.client_error, None, "{delivery:?}");
    delivery
        .toast
        .as_ref()
        .and_then(|t| t["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The 请假 form's values as a client sends them in `form_value`: leave type, first and last day
/// (`yyyy-MM-dd`, sent with the date picker's zone), reason.
pub fn leave_form(
    leave_type: &str,
    start: &str,
    end: &str,
    reason: &str,
) -> Vec<(&'static str, Value)> {
    use cardbot::approval::fields;
    vec![
        (fields::LEAVE_TYPE, json!(leave_type)),
        (fields::START_DATE, json!(format!("{start} +0800"))),
        (fields::END_DATE, json!(format!("{end} +0800"))),
        (fields::REASON, json!(reason)),
    ]
}

/// The schedule's event at `at`, as the local stack sends it and the updater reads it.
pub fn scheduled(at: SystemTime) -> UpdaterEvent {
    serde_json::from_value(updater::scheduled_event(at, REGION))
        .expect("the local stack's scheduled event is an EventBridge event")
}

/// The region of the harness's events.
const REGION: &str = "us-east-1";
/// The stream of the harness's table, as Lambda names it in a record's `eventSourceARN`.
const STREAM_ARN: &str =
    "arn:aws:dynamodb:us-east-1:000000000000:table/cardbot/stream/2024-01-01T00:00:00.000";

/// A DynamoDB stream event with one INSERT of the job item `(card_key, job_id)` due at `due_at`:
/// the record as the stream's GetRecords returns it, wrapped as the local stack (and Lambda) sends it.
pub fn stream_insert(card_key: &str, job_id: &str, due_at: EpochMillis) -> UpdaterEvent {
    let keys = json!({ "pk": { "S": format!("card#{card_key}") }, "sk": { "S": format!("job#{job_id}") } });
    let record = json!({
        "eventID": uuid::Uuid::new_v4().to_string(), "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "ddblocal",
        "dynamodb": {
            "ApproximateCreationDateTime": SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            "Keys": keys,
            "NewImage": {
                "pk": keys["pk"], "sk": keys["sk"], "card_key": { "S": card_key }, "job_id": { "S": job_id },
                "due_pk": { "S": "due" }, "due_at": { "N": due_at.to_string() }, "status": { "S": "pending" }
            },
            "SequenceNumber": "000000000000000000001",
            "SizeBytes": 120,
            "StreamViewType": "NEW_IMAGE"
        }
    });
    serde_json::from_value(updater::stream_event(&[record], STREAM_ARN, REGION))
        .expect("the local stack's stream event is a DynamoDB stream event")
}
