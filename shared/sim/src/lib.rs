//! A Feishu Open Platform simulator on real HTTP: the Open APIs the bot calls, as strict as Feishu, and
//! Feishu's side of events and card callbacks (encrypted, signed, posted to the bot).
//!
//! Start one with [`Simulator::start`]; point the bot's `FEISHU_BASE_URL` at [`Simulator::base_url`].
//! [`function_url::serve`] puts a bot's handlers behind local function URLs the simulator posts to.

pub mod card;
pub mod clock;
mod control;
pub mod crypto;
mod delivery;
pub mod function_url;
pub mod limits;
mod openapi;
pub mod playground;
pub mod state;
pub mod store_app;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

pub use clock::SimClock;
pub use delivery::{CallbackDelivery, ChatKind, OTHER_USER_OPEN_ID};
pub use limits::CallRates;
pub use openapi::ContactAccess;
pub use state::{
    ApiCall, CardRevision, CardSnapshot, ChatMessage, Delivery, FaultKind, FaultSpec, RateLimits,
    Sender, SimUser, UpdateTokenInfo,
};
pub use store_app::{LifecycleChange, SimAppType, TenantStatus};

/// The test app, user and chats of all fixtures (`fixtures/feishu/README.md`).
pub mod ids {
    pub const APP_ID: &str = "cli_9f5343c580712544";
    pub const APP_SECRET: &str = "cardbot-test-app-secret";
    pub const TENANT_KEY: &str = "2ca1d211f64f6438";
    pub const ENCRYPT_KEY: &str = "cardbot-test-encrypt-key";
    pub const VERIFICATION_TOKEN: &str = "cardbot-test-verification-token";
    pub const USER_OPEN_ID: &str = "ou_84aad35d084aa403a838cf73ee18467";
    pub const USER_UNION_ID: &str = "on_8ed6aa67826108097d9ee143816345";
    pub const USER_ID: &str = "e33ggbyz";
    pub const P2P_CHAT_ID: &str = "oc_5ad11d72b830411d72b836c20";
    pub const GROUP_CHAT_ID: &str = "oc_84983ff6516d731e5b5f68d4ea2e1da5";
    /// The bot's own open_id (made up in the fixtures' format; used for @bot mentions).
    pub const BOT_OPEN_ID: &str = "ou_0b3f7c1e2d4a5968b7c6d5e4f3a2b1c0";
}

/// How to start a simulator. `Default` is the fixtures' test app with encryption on.
#[derive(Clone)]
pub struct SimConfig {
    /// 0 picks a free port.
    pub port: u16,
    pub app_id: String,
    pub app_secret: String,
    pub tenant_key: String,
    /// `None`: events and callbacks go out in plain JSON, unsigned but with the timestamp header
    /// (the bot's unencrypted mode, `ALLOW_UNENCRYPTED=true`, requires it).
    pub encrypt_key: Option<String>,
    pub verification_token: String,
    pub user_open_id: String,
    pub user_union_id: String,
    pub user_id: String,
    pub user_name: String,
    pub bot_open_id: String,
    pub bot_name: String,
    pub p2p_chat_id: String,
    pub group_chat_id: String,
    pub rate_limits: RateLimits,
    /// How long Feishu waits for the bot to answer an event or callback (3 s).
    pub push_deadline: Duration,
    /// What a send or CardKit write repeating a `uuid` inside its window gets.
    pub uuid_repeat: UuidRepeat,
    /// A self-built app (one tenant) or a store app (tickets, many tenants).
    pub app_type: store_app::SimAppType,
    /// How long after an `app_ticket/resend` the ticket is pushed (Feishu: up to 2 min).
    pub ticket_resend_delay: Duration,
}

/// How the simulator answers a request that repeats a `uuid` inside its dedup window.
///
/// Feishu documents that requests with the same uuid "succeed at most once" (im `messages.create`,
/// 1 hour) and that CardKit answers a conflict with 200770; whether a repeat returns the first answer
/// is unconfirmed (`docs/architecture.md`, exactly once). A bot must be right under all three.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UuidRepeat {
    /// The repeat is answered with the first request's answer (the first message, the same result).
    #[default]
    Replay,
    /// The repeat is refused with 200770 (uuid conflict) and changes nothing.
    Conflict,
    /// The uuid is not remembered: the repeat is a second message or a second write.
    Ignore,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            port: 0,
            app_id: ids::APP_ID.into(),
            app_secret: ids::APP_SECRET.into(),
            tenant_key: ids::TENANT_KEY.into(),
            encrypt_key: Some(ids::ENCRYPT_KEY.into()),
            verification_token: ids::VERIFICATION_TOKEN.into(),
            user_open_id: ids::USER_OPEN_ID.into(),
            user_union_id: ids::USER_UNION_ID.into(),
            user_id: ids::USER_ID.into(),
            user_name: "Tom".into(),
            bot_open_id: ids::BOT_OPEN_ID.into(),
            bot_name: "cardbot".into(),
            p2p_chat_id: ids::P2P_CHAT_ID.into(),
            group_chat_id: ids::GROUP_CHAT_ID.into(),
            rate_limits: RateLimits::default(),
            push_deadline: Duration::from_secs(3),
            uuid_repeat: UuidRepeat::Replay,
            app_type: store_app::SimAppType::SelfBuilt,
            ticket_resend_delay: store_app::DEFAULT_RESEND_DELAY,
        }
    }
}

impl SimConfig {
    /// The configured user (the fixtures' Tom) and their p2p chat.
    pub fn user(&self) -> SimUser {
        SimUser {
            open_id: self.user_open_id.clone(),
            union_id: self.user_union_id.clone(),
            user_id: self.user_id.clone(),
            name: self.user_name.clone(),
            p2p_chat_id: self.p2p_chat_id.clone(),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("port", &self.port)
            .field("app_id", &self.app_id)
            .field("app_secret", &"***")
            .field("encrypt_key", &self.encrypt_key.as_ref().map(|_| "***"))
            .field("verification_token", &"***")
            .field("user_open_id", &self.user_open_id)
            .field("p2p_chat_id", &self.p2p_chat_id)
            .field("group_chat_id", &self.group_chat_id)
            .field("rate_limits", &self.rate_limits)
            .field("push_deadline", &self.push_deadline)
            .field("uuid_repeat", &self.uuid_repeat)
            .finish()
    }
}

/// Why the simulator could not do something.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot bind the simulator's port: {0}")]
    Bind(#[from] std::io::Error),
    #[error("no message {0}")]
    NoMessage(String),
    #[error("message {0} is not a card")]
    NotACard(String),
    #[error("cannot build the push: {0}")]
    Build(String),
    /// The card has no enabled button with this `element_id`: a user could not click it.
    #[error("no enabled button {0} on the card")]
    NoButton(String),
    /// A required form field is empty: the client shows 有必填项未填写 and sends nothing.
    #[error("required field {0} is empty: the client sends no callback")]
    RequiredEmpty(String),
    /// A value for a name the form does not have: the client could not send it.
    #[error("the form has no component named {0}")]
    NotInForm(String),
}

/// State shared by the HTTP handlers and the handle.
pub(crate) struct Shared {
    pub config: SimConfig,
    pub clock: SimClock,
    pub world: Mutex<state::World>,
    pub http: reqwest::Client,
    pub base_url: String,
}

impl Shared {
    pub fn world(&self) -> MutexGuard<'_, state::World> {
        // A panic while holding the lock only happens in a broken test; keep serving.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every user of the tenant: the configured one, then the added ones.
    pub fn users(&self) -> Vec<SimUser> {
        let mut users = vec![self.config.user()];
        users.extend(self.world().users.iter().cloned());
        users
    }

    /// The user with `open_id`: the configured one or an added one.
    pub fn user(&self, open_id: &str) -> Option<SimUser> {
        let configured = self.config.user();
        if configured.open_id == open_id {
            return Some(configured);
        }
        self.world()
            .users
            .iter()
            .find(|u| u.open_id == open_id)
            .cloned()
    }

    /// The tenant of `open_id`: an added tenant's, else the configured one.
    pub fn tenant_of_user(&self, open_id: &str) -> String {
        self.world()
            .user_tenants
            .get(open_id)
            .cloned()
            .unwrap_or_else(|| self.config.tenant_key.clone())
    }

    /// The tenant of `chat_id`: an added tenant's, else the configured one.
    pub fn tenant_of_chat(&self, chat_id: &str) -> String {
        self.world()
            .chat_tenants
            .get(chat_id)
            .cloned()
            .unwrap_or_else(|| self.config.tenant_key.clone())
    }

    /// Where `tenant` stands: the configured tenant is active unless changed; another is known
    /// once it installed the app (or got users); `None` for a tenant Feishu never saw.
    pub(crate) fn tenant_status_in(
        &self,
        world: &state::World,
        tenant: &str,
    ) -> Option<store_app::TenantStatus> {
        match world.store_app.tenants.get(tenant) {
            Some(status) => Some(*status),
            None if tenant == self.config.tenant_key => Some(store_app::TenantStatus::Active),
            None => None,
        }
    }

    /// Adds `count` users of `tenant` (installed, active, each with a p2p chat with the bot).
    pub fn add_tenant_users(&self, tenant: &str, count: usize) -> Vec<SimUser> {
        let added = self.add_users(count);
        let mut world = self.world();
        world
            .store_app
            .tenants
            .entry(tenant.to_owned())
            .or_insert(store_app::TenantStatus::Active);
        for user in &added {
            world
                .user_tenants
                .insert(user.open_id.clone(), tenant.to_owned());
            world
                .chat_tenants
                .insert(user.p2p_chat_id.clone(), tenant.to_owned());
        }
        added
    }

    /// Adds `count` users (each with a p2p chat with the bot); returns them.
    pub fn add_users(&self, count: usize) -> Vec<SimUser> {
        let mut world = self.world();
        let first = world.users.len() + 1;
        let added: Vec<SimUser> = (first..first + count).map(SimUser::numbered).collect();
        world.users.extend(added.iter().cloned());
        added
    }
}

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Simulator {
    /// Binds 127.0.0.1 on `config.port` (0 = free) and serves until dropped.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| SimError::Build(e.to_string()))?;
        let world = state::World {
            rate_limits: config.rate_limits,
            urgent_allowed: true,
            ..Default::default()
        };
        let shared = Arc::new(Shared {
            config,
            clock: SimClock::default(),
            world: Mutex::new(world),
            http,
            base_url: format!("http://{addr}"),
        });
        let app = axum::Router::new()
            .route("/playground", axum::routing::get(playground::page))
            .route(
                "/playground/version",
                axum::routing::get(playground::version),
            )
            .route("/playground/send", axum::routing::post(playground::send))
            .route("/playground/press", axum::routing::post(playground::press))
            .fallback(openapi::handle)
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            shared,
            addr,
            stop: Some(stop),
        })
    }

    /// Connects the playground to a bot: where a person's messages (events) and presses (card
    /// callbacks) go.
    pub fn connect_bot(&self, event_url: &str, card_url: &str) {
        self.shared.world().bot_urls = Some(playground::BotUrls {
            event_url: event_url.to_owned(),
            card_url: card_url.to_owned(),
        });
    }

    /// The playground page: `http://127.0.0.1:<port>/playground`.
    pub fn playground_url(&self) -> String {
        format!("{}/playground", self.shared.base_url)
    }

    /// `http://127.0.0.1:<port>`: the bot's `FEISHU_BASE_URL`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    // ---- clock ----

    /// Simulated now, epoch ms.
    pub fn now_ms(&self) -> i64 {
        self.shared.clock.now_ms()
    }

    /// Moves simulated time forward; every time rule (tokens, 14 days, streaming, uuid windows) follows.
    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    // ---- limits and faults ----

    pub fn set_rate_limits(&self, limits: RateLimits) {
        self.shared.world().rate_limits = limits;
    }

    /// The next `spec.count` calls matching `spec.method` + `spec.path` get `spec.kind`.
    pub fn inject_fault(&self, spec: FaultSpec) {
        self.shared.world().faults.push(spec);
    }

    /// Shorthand for [`Simulator::inject_fault`].
    pub fn fail_next(&self, method: &str, path: &str, count: u32, kind: FaultKind) {
        self.inject_fault(FaultSpec {
            method: Some(method.to_ascii_uppercase()),
            path: path.into(),
            kind,
            count,
        });
    }

    pub fn clear_faults(&self) {
        self.shared.world().faults.clear();
    }

    // ---- state ----

    /// Messages of one chat, oldest first.
    pub fn messages(&self, chat_id: &str) -> Vec<ChatMessage> {
        let world = self.shared.world();
        world
            .messages
            .iter()
            .filter(|m| m.msg.chat_id == chat_id)
            .map(|m| m.msg.clone())
            .collect()
    }

    /// Every message in every chat, oldest first.
    pub fn all_messages(&self) -> Vec<ChatMessage> {
        self.shared
            .world()
            .messages
            .iter()
            .map(|m| m.msg.clone())
            .collect()
    }

    pub fn message(&self, message_id: &str) -> Option<ChatMessage> {
        self.shared
            .world()
            .message(message_id)
            .map(|m| m.msg.clone())
    }

    /// The card of a message as users see it now (inline or entity), with its history.
    pub fn card(&self, message_id: &str) -> Option<CardSnapshot> {
        let now = self.now_ms();
        self.shared.world().snapshot_message_card(message_id, now)
    }

    /// A CardKit entity, sent or not.
    pub fn card_entity(&self, card_id: &str) -> Option<CardSnapshot> {
        let now = self.now_ms();
        self.shared.world().snapshot_entity(card_id, now)
    }

    /// Short text of a message's card (title, texts, `[buttons]`), for readable output.
    pub fn card_text(&self, message_id: &str) -> Option<String> {
        self.card(message_id).map(|c| c.text)
    }

    /// Every Open API call so far, in arrival order.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.shared.world().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.shared.world().calls.clear();
    }

    /// The busiest 1 s and 60 s windows of the call log, per app, per API and per chat.
    pub fn call_rates(&self) -> CallRates {
        CallRates::of(&self.shared.world().calls)
    }

    /// Every event and callback pushed so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.world().deliveries.clone()
    }

    /// The state of an update token the simulator issued with a callback.
    pub fn update_token(&self, token: &str) -> Option<UpdateTokenInfo> {
        self.shared.world().update_tokens.get(token).cloned()
    }

    /// Update tokens in issue order is not kept; this lists them all.
    pub fn update_tokens(&self) -> Vec<UpdateTokenInfo> {
        self.shared
            .world()
            .update_tokens
            .values()
            .cloned()
            .collect()
    }

    // ---- Feishu's side ----

    /// A user's text message: stored in the chat, pushed as `im.message.receive_v1` to `url`.
    /// In a group the text starts with an @mention of the bot.
    pub async fn send_user_message(&self, url: &str, chat: ChatKind, text: &str) -> Delivery {
        let user = self.shared.config.user();
        delivery::user_message(&self.shared, url, &user, chat, text).await
    }

    /// [`Simulator::send_user_message`] from another user (see [`Simulator::add_users`]).
    pub async fn send_message_as(
        &self,
        url: &str,
        user: &SimUser,
        chat: ChatKind,
        text: &str,
    ) -> Delivery {
        delivery::user_message(&self.shared, url, user, chat, text).await
    }

    /// [`Simulator::send_message_as`] as a rich-text (`post`) message holding `text`.
    pub async fn send_post_as(
        &self,
        url: &str,
        user: &SimUser,
        chat: ChatKind,
        text: &str,
    ) -> Delivery {
        delivery::user_message_of(&self.shared, url, user, chat, text, true).await
    }

    /// `user` opens their p2p chat with the bot (`bot_p2p_chat_entered_v1`).
    pub async fn enter_p2p_chat(&self, url: &str, user: &SimUser) -> Delivery {
        delivery::p2p_chat_entered(&self.shared, url, user).await
    }

    /// `user` clicks the bot menu item with push-event key `event_key` (`application.bot.menu_v6`).
    pub async fn click_menu(&self, url: &str, user: &SimUser, event_key: &str) -> Delivery {
        delivery::menu_click(&self.shared, url, user, event_key).await
    }

    /// Adds `count` users to the tenant, each with a p2p chat with the bot.
    pub fn add_users(&self, count: usize) -> Vec<SimUser> {
        self.shared.add_users(count)
    }

    /// Posts any plaintext event JSON (encrypted and signed as configured), e.g. to redeliver one.
    pub async fn post_event(&self, url: &str, plaintext: &Value) -> Delivery {
        delivery::post_event(&self.shared, url, "event", plaintext, None).await
    }

    /// The user clicks a button with `value` on the card of `message_id`: a `card.action.trigger`
    /// (schema 2.0) callback with a fresh update token; the answer's card is applied.
    pub async fn click_card(
        &self,
        url: &str,
        message_id: &str,
        value: Value,
    ) -> Result<CallbackDelivery, SimError> {
        let user = self.shared.config.user();
        delivery::card_callback(&self.shared, url, &user, message_id, value, false).await
    }

    /// `user` presses the button `element_id` of the card of `message_id` as it is shown now:
    /// its own callback value, refused when the button is gone or disabled. A form's submit
    /// button sends `form_value` as the client does: every named field of the form, an empty
    /// optional input as `""`; an empty required field sends nothing ([`SimError::RequiredEmpty`],
    /// `approval-apis.md` §7).
    pub async fn press_as(
        &self,
        url: &str,
        user: &SimUser,
        message_id: &str,
        element_id: &str,
        form_value: &[(&str, Value)],
    ) -> Result<CallbackDelivery, SimError> {
        let card = self
            .card(message_id)
            .ok_or_else(|| SimError::NoMessage(message_id.to_owned()))?
            .card;
        let action = card::press(&card, element_id, form_value)?;
        delivery::card_callback_action(&self.shared, url, user, message_id, action, false).await
    }

    /// Gives `user` a leader in the contact API (`leader_user_id`).
    pub fn set_leader(&self, user: &str, leader: &str) {
        self.shared
            .world()
            .leaders
            .insert(user.to_owned(), leader.to_owned());
    }

    /// Puts `user` in `department` (an open_department_id, `od-…`): their `department_ids` in the
    /// contact API, and one of the department's users in `find_by_department`.
    pub fn set_department(&self, user: &str, department: &str) {
        self.shared
            .world()
            .departments
            .insert(user.to_owned(), department.to_owned());
    }

    /// Whether the app holds the buzz scope `im:message.urgent` (default yes).
    pub fn set_urgent_allowed(&self, allowed: bool) {
        self.shared.world().urgent_allowed = allowed;
    }

    /// In-app buzzes so far: (message_id, open_id).
    pub fn buzzes(&self) -> Vec<(String, String)> {
        self.shared.world().buzzes.clone()
    }

    /// What the app may read through the contact API.
    pub fn set_contact_access(&self, access: ContactAccess) {
        self.shared.world().contact_access = access;
    }

    /// Makes `open_id` an id of another app (a well-formed open_id this app cannot use): a send
    /// to it answers 99992361 `open_id cross app`, as Feishu does (`approval-apis.md` §5).
    pub fn add_foreign_open_id(&self, open_id: &str) {
        self.shared
            .world()
            .foreign_open_ids
            .insert(open_id.to_owned());
    }

    /// [`Simulator::click_card`] by another user.
    pub async fn click_card_as(
        &self,
        url: &str,
        user: &SimUser,
        message_id: &str,
        value: Value,
    ) -> Result<CallbackDelivery, SimError> {
        delivery::card_callback(&self.shared, url, user, message_id, value, false).await
    }

    /// Feishu's re-delivery of an unanswered callback: the same body, signed anew; the answer is
    /// applied as for a first delivery.
    pub async fn redeliver_callback(
        &self,
        url: &str,
        original: &CallbackDelivery,
    ) -> CallbackDelivery {
        delivery::redeliver_callback(&self.shared, url, original).await
    }

    /// The same click as a legacy card callback (no schema; SHA-1 signature with the Verification Token).
    pub async fn click_card_legacy(
        &self,
        url: &str,
        message_id: &str,
        value: Value,
    ) -> Result<CallbackDelivery, SimError> {
        let user = self.shared.config.user();
        delivery::card_callback(&self.shared, url, &user, message_id, value, true).await
    }

    /// Posts `original` again, byte for byte with its headers, but `header` set to `value` (an
    /// attacker's replay of a captured request, or a proxy that rewrote an unsigned header).
    pub async fn redeliver_with_header(
        &self,
        url: &str,
        original: &Delivery,
        header: &str,
        value: &str,
    ) -> Delivery {
        delivery::replay(&self.shared, url, original, header, value).await
    }

    /// The console's URL check: `url_verification` with `challenge` (encrypted if a key is set, unsigned).
    pub async fn url_verification(&self, url: &str, challenge: &str) -> Delivery {
        delivery::url_verification(&self.shared, url, challenge).await
    }

    /// Issues a tenant_access_token as the auth endpoint would (for tests that skip the HTTP call).
    pub fn issue_tenant_token(&self) -> String {
        let now = self.now_ms();
        openapi::issue_tenant_token(&self.shared, &mut self.shared.world(), now).0
    }

    /// Adds `count` users of another tenant `tenant` (installed and active), each with a p2p chat
    /// with the bot: their messages and clicks carry `tenant` in the header, and a call on their
    /// chats, messages or cards with another tenant's token answers 10034.
    pub fn add_tenant_users(&self, tenant: &str, count: usize) -> Vec<SimUser> {
        self.shared.add_tenant_users(tenant, count)
    }

    /// The tenant of `open_id` (the configured one unless added with [`Self::add_tenant_users`]).
    pub fn tenant_of_user(&self, open_id: &str) -> String {
        self.shared.tenant_of_user(open_id)
    }

    /// Pushes a new `app_ticket` (the 1.0 event, encrypted and signed like any event) to `url`,
    /// as Feishu does hourly and after a resend; the ticket is valid 3 h from now.
    pub async fn push_app_ticket(&self, url: &str) -> Delivery {
        delivery::app_ticket(&self.shared, url).await
    }

    /// Every `app_ticket/resend` call so far (simulated epoch ms).
    pub fn ticket_resends(&self) -> Vec<i64> {
        self.shared.world().store_app.resends.clone()
    }

    /// How many tickets were pushed.
    pub fn tickets_pushed(&self) -> usize {
        self.shared.world().store_app.tickets.len()
    }

    /// `tenant` installs, starts, stops or uninstalls the app: its status changes now and the
    /// event (`app_open`, `app_status_change`, `app_uninstalled`, schema 1.0) is pushed to `url`.
    pub async fn change_tenant(
        &self,
        url: &str,
        tenant: &str,
        change: LifecycleChange,
    ) -> Delivery {
        store_app::change_tenant(&self.shared, url, tenant, change).await
    }

    /// The 1.0 lifecycle event of `change` for `tenant`, stamped now, without changing anything:
    /// post it later with [`Self::post_event`] to replay Feishu's late retries.
    pub fn lifecycle_event(&self, tenant: &str, change: LifecycleChange) -> Value {
        store_app::stamped_event(&self.shared, tenant, change)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serializes a value for the control API, never failing.
pub(crate) fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
