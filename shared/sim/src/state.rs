//! Everything the simulated Feishu remembers: tokens, chats and messages, cards, update tokens, calls, faults.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::card;

/// 14 days in ms: message PATCH window and CardKit entity lifetime.
pub const FOURTEEN_DAYS_MS: i64 = 14 * 24 * 3600 * 1000;
/// Streaming mode switches itself off this long after it was switched on.
pub const STREAMING_LIMIT_MS: i64 = 10 * 60 * 1000;
/// An update token from a card callback is valid 30 minutes.
pub const UPDATE_TOKEN_TTL_MS: i64 = 30 * 60 * 1000;
/// An update token can be used twice.
pub const UPDATE_TOKEN_MAX_USES: u32 = 2;
/// im `uuid` deduplication window.
pub const MESSAGE_UUID_WINDOW_MS: i64 = 3600 * 1000;
/// CardKit `uuid` idempotency window (not documented; the im window is used).
pub const CARDKIT_UUID_WINDOW_MS: i64 = 3600 * 1000;
/// A tenant_access_token lives 2 hours.
pub const TENANT_TOKEN_TTL_MS: i64 = 7200 * 1000;
/// With less than 30 minutes left, the auth endpoint issues a new token.
pub const TENANT_TOKEN_RENEW_MS: i64 = 30 * 60 * 1000;

/// Who sent a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "sender_type", rename_all = "snake_case")]
pub enum Sender {
    /// A user, by open_id.
    User { open_id: String },
    /// The bot, by app_id.
    App { app_id: String },
}

/// A person in the simulated tenant: the configured user ([`SimConfig::user`]) or one added with
/// `Simulator::add_users`. Each has a p2p chat with the bot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimUser {
    pub open_id: String,
    pub union_id: String,
    pub user_id: String,
    pub name: String,
    pub p2p_chat_id: String,
}

impl SimUser {
    /// The `n`th added user, with ids in Feishu's formats (`ou_` / `on_` + 32 hex, `oc_` + 32 hex).
    pub fn numbered(n: usize) -> Self {
        Self {
            open_id: format!("ou_5e{n:030x}"),
            union_id: format!("on_5e{n:030x}"),
            user_id: format!("u{n:07x}"),
            name: format!("User {n}"),
            p2p_chat_id: format!("oc_5e{n:030x}"),
        }
    }
}

/// One message in a chat, as Feishu stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatMessage {
    pub message_id: String,
    pub chat_id: String,
    pub sender: Sender,
    pub msg_type: String,
    /// The `content` string exactly as sent (JSON inside a string).
    pub content: String,
    /// The message this one replies to.
    pub parent_id: Option<String>,
    pub root_id: Option<String>,
    pub create_time_ms: i64,
    pub update_time_ms: i64,
    /// Set when the message was sent as a CardKit entity (`{"type":"card","data":{"card_id":…}}`).
    pub card_id: Option<String>,
    pub uuid: Option<String>,
}

/// One state of a card, and what produced it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardRevision {
    pub at_ms: i64,
    /// The API or event: `send`, `patch`, `callback`, `delayed_update`, `cardkit.create`, `cardkit.batch_update`, …
    pub via: String,
    pub card: Value,
}

/// A card as a user sees it now, with its history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardSnapshot {
    pub message_id: Option<String>,
    pub card_id: Option<String>,
    pub card: Value,
    /// Title, texts and `[buttons]`, one per line, as a Chinese client shows them.
    pub text: String,
    /// The same as an English client (`en_us`) shows it.
    #[serde(default)]
    pub text_en: String,
    pub history: Vec<CardRevision>,
    pub streaming: bool,
    /// Last accepted CardKit `sequence` (entities only).
    pub last_sequence: Option<i64>,
}

/// One Open API request and Feishu's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiCall {
    pub method: String,
    /// Path with query string.
    pub path: String,
    pub body: String,
    /// The answer's body as sent.
    #[serde(default)]
    pub response: String,
    pub status: u16,
    /// `code` of the JSON answer, if any.
    pub code: Option<i64>,
    /// Simulated time when the request arrived; for a rate-limited API, the instant its limits
    /// were checked (after an injected hang), so the log and the limiter see the same times.
    pub at_ms: i64,
    pub elapsed_ms: u64,
    /// The chat a send or reply goes into, when it names one that exists (the per-chat limit's key).
    #[serde(default)]
    pub chat_id: Option<String>,
}

/// A fault to inject into the next calls that match.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultSpec {
    /// HTTP method to match; `None` matches any.
    pub method: Option<String>,
    /// Path pattern: `*` matches one segment, a trailing `**` any rest, e.g. `/open-apis/cardkit/v1/cards/*`.
    pub path: String,
    pub kind: FaultKind,
    /// How many matching calls get the fault.
    pub count: u32,
}

/// What a faulty call answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 429, code 99991400, `x-ogw-ratelimit-reset: reset_secs`.
    RateLimited { reset_secs: u64 },
    /// HTTP `status` (5xx), code 2200 "internal error".
    ServerError { status: u16 },
    /// HTTP 400, code 99991663, as if the token were invalid.
    InvalidToken,
    /// Waits `millis` before handling the call normally (so a client with a shorter timeout gives up).
    Hang { millis: u64 },
    /// Handles the call (its write is applied, and the call recorded), then waits `millis` before
    /// answering: a client with a shorter timeout never sees the answer (a lost answer), and its
    /// retry with the same uuid meets the uuid as used.
    LoseAnswer { millis: u64 },
    /// HTTP 400 with this business `code` (e.g. 230031 message too old, 230011 recalled).
    Api { code: i64 },
}

impl FaultKind {
    /// A hang for the given duration.
    pub fn hang(d: Duration) -> Self {
        Self::Hang {
            millis: d.as_millis() as u64,
        }
    }
}

/// Feishu's request-rate limits; `None` disables one. Over the control API a missing field keeps
/// Feishu's value and `null` disables it.
///
/// Every limit is a sliding window: a request is admitted when fewer than `limit` requests were
/// admitted in the window (1 s or 60 s) that ends with it. The rate-limit doc
/// (open.feishu.cn/document/server-docs/api-call-guide/frequency-control) names the limits and the
/// answer but not the window kind; a sliding window is the strictest reading, so a bot that never
/// trips it never trips a fixed-window gateway either. Refused requests use no budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// Requests per second per app across all Open APIs (Feishu: 50).
    pub app_per_second: Option<u32>,
    /// Requests per minute to one API, i.e. one method + path template such as
    /// `POST /open-apis/im/v1/messages/:message_id/reply` whatever the ids (Feishu: 1000).
    pub api_per_minute: Option<u32>,
    /// Sends and replies per second into one chat (Feishu: 5 per user and 5 per group).
    pub chat_per_second: Option<u32>,
    /// Writes per second per card: CardKit writes, message PATCH, delayed update (Feishu: 10).
    pub card_writes_per_second: Option<u32>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            app_per_second: Some(50),
            api_per_minute: Some(1000),
            chat_per_second: Some(5),
            card_writes_per_second: Some(10),
        }
    }
}

impl RateLimits {
    /// No limits at all (for tests of other things).
    pub fn disabled() -> Self {
        Self {
            app_per_second: None,
            api_per_minute: None,
            chat_per_second: None,
            card_writes_per_second: None,
        }
    }
}

/// One second and one minute, the spans of Feishu's windows, in ms.
pub const SECOND_MS: i64 = 1000;
pub const MINUTE_MS: i64 = 60 * SECOND_MS;

/// The times one budget admitted requests, oldest first (a sliding-log window).
#[derive(Debug, Default, Clone)]
pub struct SlidingWindow(VecDeque<i64>);

impl SlidingWindow {
    /// `Ok` when one more request at `now` keeps every `span_ms` window at or under `limit`;
    /// else `Err(reset_secs)`: whole seconds (at least 1) until it would.
    pub fn check(&mut self, limit: u32, span_ms: i64, now: i64) -> Result<(), u64> {
        while self.0.front().is_some_and(|t| *t <= now - span_ms) {
            self.0.pop_front();
        }
        let limit = limit as usize;
        if self.0.len() < limit {
            return Ok(());
        }
        // It fits once all but `limit - 1` of the admitted have left (more than `limit` are held
        // only after a test lowered the limit).
        let frees_at = self
            .0
            .get(self.0.len() - limit)
            .map_or(now + span_ms, |t| t + span_ms);
        let wait_ms = (frees_at - now).max(1);
        Err((wait_ms as u64).div_ceil(SECOND_MS as u64))
    }

    /// Counts an admitted request; `now` never goes back (it is read under the world lock).
    pub fn record(&mut self, now: i64) {
        self.0.push_back(now);
    }
}

/// The card-update token issued with one card callback.
#[derive(Clone, Serialize, Deserialize)]
pub struct UpdateTokenInfo {
    pub token: String,
    pub message_id: String,
    pub issued_at_ms: i64,
    /// When the callback was answered with HTTP 200; the token works only after that.
    pub answered_at_ms: Option<i64>,
    pub uses: u32,
}

impl std::fmt::Debug for UpdateTokenInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateTokenInfo")
            .field("token", &"c-***")
            .field("message_id", &self.message_id)
            .field("issued_at_ms", &self.issued_at_ms)
            .field("answered_at_ms", &self.answered_at_ms)
            .field("uses", &self.uses)
            .finish()
    }
}

/// A card's JSON and history, plus its streaming clock.
#[derive(Debug, Clone)]
pub(crate) struct CardDoc {
    pub json: Value,
    pub history: Vec<CardRevision>,
    pub streaming_since: Option<i64>,
    pub streaming_timed_out: bool,
}

impl CardDoc {
    pub fn new(json: Value, at_ms: i64, via: &str) -> Self {
        let streaming_since = card::streaming_mode(&json).then_some(at_ms);
        Self {
            history: vec![CardRevision {
                at_ms,
                via: via.into(),
                card: json.clone(),
            }],
            json,
            streaming_since,
            streaming_timed_out: false,
        }
    }

    /// Replaces the card; `switched_on` restarts the 10-minute streaming clock.
    pub fn set(&mut self, json: Value, at_ms: i64, via: &str, switched_on: bool) {
        let now_on = card::streaming_mode(&json);
        if now_on && (switched_on || !card::streaming_mode(&self.json)) {
            self.streaming_since = Some(at_ms);
        }
        if !now_on {
            self.streaming_since = None;
            self.streaming_timed_out = false;
        }
        self.history.push(CardRevision {
            at_ms,
            via: via.into(),
            card: json.clone(),
        });
        self.json = json;
    }

    /// Applies the 10-minute streaming timeout at `now`.
    pub fn refresh(&mut self, now: i64) {
        if !card::streaming_mode(&self.json) {
            return;
        }
        let since = *self.streaming_since.get_or_insert(now);
        if now >= since + STREAMING_LIMIT_MS {
            let mut closed = self.json.clone();
            if let Some(config) = closed.get_mut("config").and_then(Value::as_object_mut) {
                config.insert("streaming_mode".into(), Value::Bool(false));
            }
            self.history.push(CardRevision {
                at_ms: since + STREAMING_LIMIT_MS,
                via: "streaming_timeout".into(),
                card: closed.clone(),
            });
            self.json = closed;
            self.streaming_since = None;
            self.streaming_timed_out = true;
        }
    }

    pub fn streaming(&self) -> bool {
        card::streaming_mode(&self.json)
    }
}

/// A remembered CardKit answer for a `uuid`.
#[derive(Debug, Clone)]
pub(crate) struct UuidRecord {
    pub request: Value,
    pub response: Value,
    pub at_ms: i64,
}

/// A CardKit card entity.
#[derive(Debug, Clone)]
pub(crate) struct CardEntity {
    pub card_id: String,
    pub app_id: String,
    pub created_at_ms: i64,
    pub doc: CardDoc,
    pub last_sequence: Option<i64>,
    pub sent_message_id: Option<String>,
    pub uuids: HashMap<String, UuidRecord>,
}

/// A message plus, for inline cards, the card itself.
#[derive(Debug, Clone)]
pub(crate) struct StoredMessage {
    pub msg: ChatMessage,
    pub inline_card: Option<CardDoc>,
}

/// One event or callback the simulator pushed, and the answer.
#[derive(Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// `event`, `card_callback`, `card_callback_legacy`, `url_verification`.
    pub kind: String,
    pub url: String,
    /// The JSON before encryption.
    pub plaintext: Value,
    /// The exact body posted.
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub sent_at_ms: i64,
    /// HTTP status of the answer; `None` on a transport error or timeout.
    pub status: Option<u16>,
    pub response_body: String,
    pub response_json: Option<Value>,
    pub answered_at_ms: Option<i64>,
    pub elapsed_ms: u64,
    /// Transport error or `timeout`.
    pub error: Option<String>,
    /// The user's message, for `im.message.receive_v1`.
    pub message_id: Option<String>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The plaintext and body carry the Verification Token and update tokens: left out.
        f.debug_struct("Delivery")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("status", &self.status)
            .field("elapsed_ms", &self.elapsed_ms)
            .field("error", &self.error)
            .field("message_id", &self.message_id)
            .field("response_body", &self.response_body)
            .finish()
    }
}

impl Delivery {
    /// HTTP 200 within the deadline.
    pub fn ok(&self) -> bool {
        self.status == Some(200)
    }
}

/// The simulator's whole memory; one lock, never held across an await.
#[derive(Debug, Default)]
pub(crate) struct World {
    pub rate_limits: RateLimits,
    /// Users added after start (the configured user is in `SimConfig`).
    pub users: Vec<SimUser>,
    /// Every tenant token issued → its expiry (sim ms).
    pub tenant_tokens: HashMap<String, i64>,
    /// Every tenant token issued → its tenant_key.
    pub token_tenants: HashMap<String, String>,
    /// tenant_key → the tenant token the auth endpoint answers now.
    pub current_tokens: HashMap<String, String>,
    /// open_id → tenant_key of a user outside the configured tenant (`Simulator::add_tenant_users`).
    pub user_tenants: HashMap<String, String>,
    /// chat_id → tenant_key of a chat outside the configured tenant.
    pub chat_tenants: HashMap<String, String>,
    /// card_id → tenant_key of the token that created the CardKit entity.
    pub entity_tenants: HashMap<String, String>,
    /// A store app's tickets, app tokens and tenants.
    pub store_app: crate::store_app::StoreWorld,
    pub messages: Vec<StoredMessage>,
    pub entities: HashMap<String, CardEntity>,
    pub message_uuids: HashMap<String, (String, i64)>,
    pub update_tokens: HashMap<String, UpdateTokenInfo>,
    /// message_id → callbacks sent and not yet answered.
    pub interactions: HashMap<String, u32>,
    pub calls: Vec<ApiCall>,
    pub faults: Vec<FaultSpec>,
    /// Keyed by tenant_key: Feishu's limits are per app and tenant.
    pub app_windows: HashMap<String, SlidingWindow>,
    /// Keyed by API (method + path template).
    pub api_windows: HashMap<&'static str, SlidingWindow>,
    /// Keyed by chat_id: sends and replies into the chat.
    pub chat_windows: HashMap<String, SlidingWindow>,
    pub card_windows: HashMap<String, SlidingWindow>,
    pub deliveries: Vec<Delivery>,
    /// open_id → their leader's open_id, for the contact API.
    pub leaders: HashMap<String, String>,
    /// open_id → their department (`od-…`), for the contact API.
    pub departments: HashMap<String, String>,
    pub contact_access: super::openapi::ContactAccess,
    /// open_ids of another app: a send to one answers 99992361 `open_id cross app`.
    pub foreign_open_ids: std::collections::HashSet<String>,
    /// In-app buzzes: (message_id, open_id).
    pub buzzes: Vec<(String, String)>,
    /// Whether the app holds `im:message.urgent` (see [`World::default`]).
    pub urgent_allowed: bool,
    /// The bot the playground sends to (`Simulator::connect_bot`).
    pub bot_urls: Option<super::playground::BotUrls>,
    /// The toast of each person's last press in the playground, by open_id.
    pub playground_toasts: HashMap<String, super::playground::PlaygroundToast>,
}

impl World {
    pub fn message(&self, id: &str) -> Option<&StoredMessage> {
        self.messages.iter().find(|m| m.msg.message_id == id)
    }

    pub fn message_mut(&mut self, id: &str) -> Option<&mut StoredMessage> {
        self.messages.iter_mut().find(|m| m.msg.message_id == id)
    }

    /// The card shown in a message: its inline card or its entity's.
    pub fn card_doc_mut(&mut self, message_id: &str, now: i64) -> Option<&mut CardDoc> {
        let card_id = self.message(message_id)?.msg.card_id.clone();
        let doc = match card_id {
            Some(id) => &mut self.entities.get_mut(&id)?.doc,
            None => self.message_mut(message_id)?.inline_card.as_mut()?,
        };
        doc.refresh(now);
        Some(doc)
    }

    /// The key for the per-card write limit: the entity id, else the message id.
    pub fn card_key(&self, message_id: &str) -> String {
        self.message(message_id)
            .and_then(|m| m.msg.card_id.clone())
            .unwrap_or_else(|| message_id.to_owned())
    }

    /// Whether the card of `message_id` (or of an entity's message) is in a live callback interaction.
    pub fn in_interaction(&self, message_id: &str) -> bool {
        self.interactions.get(message_id).is_some_and(|n| *n > 0)
    }

    pub fn snapshot_message_card(&mut self, message_id: &str, now: i64) -> Option<CardSnapshot> {
        let card_id = self.message(message_id)?.msg.card_id.clone();
        if let Some(id) = card_id {
            return self.snapshot_entity(&id, now);
        }
        let doc = self.card_doc_mut(message_id, now)?.clone();
        Some(snapshot(Some(message_id.to_owned()), None, &doc, None))
    }

    pub fn snapshot_entity(&mut self, card_id: &str, now: i64) -> Option<CardSnapshot> {
        let entity = self.entities.get_mut(card_id)?;
        entity.doc.refresh(now);
        Some(snapshot(
            entity.sent_message_id.clone(),
            Some(entity.card_id.clone()),
            &entity.doc,
            entity.last_sequence,
        ))
    }
}

fn snapshot(
    message_id: Option<String>,
    card_id: Option<String>,
    doc: &CardDoc,
    last_sequence: Option<i64>,
) -> CardSnapshot {
    CardSnapshot {
        message_id,
        card_id,
        text: card::render_text(&doc.json),
        text_en: card::render_text(&card::localize(&doc.json, "en_us")),
        card: doc.json.clone(),
        history: doc.history.clone(),
        streaming: doc.streaming(),
        last_sequence,
    }
}

/// Whether `path` matches a fault pattern (`*` one segment, trailing `**` the rest).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    for (i, p) in pat.iter().enumerate() {
        if *p == "**" {
            return true;
        }
        match segs.get(i) {
            Some(s) if *p == "*" || p == s => {}
            _ => return false,
        }
    }
    pat.len() == segs.len()
}

/// The JSON `sender` of an im API answer.
pub fn sender_json(sender: &Sender, tenant_key: &str) -> Value {
    match sender {
        Sender::App { app_id } => {
            json!({"id": app_id, "id_type": "app_id", "sender_type": "app", "tenant_key": tenant_key})
        }
        Sender::User { open_id } => {
            json!({"id": open_id, "id_type": "open_id", "sender_type": "user", "tenant_key": tenant_key})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_patterns() {
        assert!(path_matches(
            "/open-apis/im/v1/messages",
            "/open-apis/im/v1/messages"
        ));
        assert!(path_matches(
            "/open-apis/im/v1/messages/*",
            "/open-apis/im/v1/messages/om_1"
        ));
        assert!(!path_matches(
            "/open-apis/im/v1/messages/*",
            "/open-apis/im/v1/messages"
        ));
        assert!(path_matches(
            "/open-apis/cardkit/**",
            "/open-apis/cardkit/v1/cards/1/elements/a"
        ));
    }

    #[test]
    fn sliding_window_admits_limit_per_span_and_says_when_the_next_fits() {
        let mut w = SlidingWindow::default();
        let mut admit = |now| w.check(2, SECOND_MS, now).map(|()| w.record(now));
        assert_eq!(admit(0), Ok(()));
        assert_eq!(admit(10), Ok(()));
        assert_eq!(admit(20), Err(1), "980 ms left, rounded up");
        assert_eq!(admit(999), Err(1), "1 ms left is still a second");
        assert_eq!(admit(1000), Ok(()), "the call at 0 has left the window");
        assert_eq!(admit(1001), Err(1));
        assert_eq!(admit(1010), Ok(()));
    }

    #[test]
    fn minute_window_reset_counts_whole_seconds_until_the_oldest_leaves() {
        let mut w = SlidingWindow::default();
        for t in [0, 15_000, 30_000] {
            w.record(t);
        }
        assert_eq!(w.check(3, MINUTE_MS, 30_500), Err(30));
        assert_eq!(w.check(3, MINUTE_MS, 59_999), Err(1));
        assert_eq!(w.check(3, MINUTE_MS, 60_000), Ok(()));
    }

    #[test]
    fn lowered_limit_waits_for_enough_calls_to_leave() {
        let mut w = SlidingWindow::default();
        for t in [0, 100, 200, 300] {
            w.record(t);
        }
        // Limit 2 with 4 held: the calls at 0, 100 and 200 must leave, the last at 1200.
        assert_eq!(w.check(2, SECOND_MS, 300), Err(1));
        assert_eq!(w.check(2, SECOND_MS, 1199), Err(1));
        assert_eq!(w.check(2, SECOND_MS, 1200), Ok(()));
        assert_eq!(
            w.check(0, SECOND_MS, 5000),
            Err(1),
            "limit 0 admits nothing"
        );
    }
}
