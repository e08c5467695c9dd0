//! DynamoDB single-table access: tenant tokens, dedup records, card state, sequences, update jobs,
//! and the decoding of the table's stream records ([`stream`]).
//!
//! One trait per capability so each function depends on the least it needs. Two adapters share
//! the semantics: [`dynamo::DynamoStore`] (aws-sdk-dynamodb) and [`memory::MemoryStore`] (fast
//! domain tests). All times are passed in by the caller (epoch milliseconds) so tests control the
//! clock; DynamoDB's TTL attribute `expires_at` is written in epoch seconds.

pub mod documents;
pub mod dynamo;
pub mod keys;
pub mod memory;
mod once;
pub mod rate;
pub mod stream;
pub mod table;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::cards::CardDelivery;

/// Milliseconds since the Unix epoch.
pub type EpochMillis = i64;

/// Errors of the store layer. No SDK type leaks out of this module.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A conditional write lost: the item changed (or exists) since it was read.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The item (named) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// DynamoDB throttled us past the SDK's own retries.
    #[error("throttled")]
    Throttled,
    /// Network, endpoint or service error; retrying later may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// CardKit sequences are int32; the card has used them all.
    #[error("sequence exhausted for card {0}")]
    SequenceExhausted(String),
    /// An item in the table does not have the shape this code writes.
    #[error("corrupt item {key}: {reason}")]
    Corrupt {
        /// The item's key (`pk/sk`).
        key: String,
        /// What is wrong with it (never a value from the item).
        reason: String,
    },
    /// The caller passed a value the store does not take (a step name outside `[a-z0-9_]`).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether the same call may succeed later (throttling, network); a conflict needs a re-read.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Throttled | StoreError::Unavailable(_))
    }
}

/// The result of every store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Attempts after which a failing job is left `Dead` (about 10 minutes of retries with the backoff).
pub const MAX_JOB_ATTEMPTS: u32 = 8;
/// First retry delay; doubles per attempt up to [`JOB_RETRY_CAP_MS`].
pub const JOB_RETRY_BASE_MS: i64 = 5_000;
/// Longest retry delay.
pub const JOB_RETRY_CAP_MS: i64 = 10 * 60_000;
/// How long a done job stays readable before DynamoDB's TTL removes it.
pub const DONE_JOB_TTL_MS: i64 = 7 * 24 * 3_600_000;
/// How long a dead job stays for a human (`dead-jobs`, `requeue`) before DynamoDB's TTL removes
/// it: 90 days after it died (a requeue clears it).
pub const DEAD_JOB_TTL_MS: i64 = 90 * 24 * 3_600_000;
/// How long a card's state item (a request with its fields and audit trail, the lists' entries)
/// stays after its last write before DynamoDB's TTL removes it: 400 days, a year of 我的申请 and
/// audit with room. `cardbot-admin retain` keeps one longer ([`CardStore::retain_card`]).
pub const CARD_STATE_TTL_MS: i64 = 400 * 24 * 3_600_000;
/// `last_error` is cut to this many characters so a huge error body cannot bloat the item.
pub const LAST_ERROR_MAX_CHARS: usize = 1_000;
/// `last_error` of a job re-claimed after its lease lapsed: that lease counts as a failed attempt.
pub const LEASE_EXPIRED_ERROR: &str = "lease expired (updater crashed or timed out)";

/// Exponential backoff with jitter for the `attempts`-th failure (1-based): a delay drawn from
/// `[d/2, d]` where `d = base * 2^(attempts-1)` capped, so failing updaters do not retry in step.
pub fn job_retry_delay_ms(attempts: u32) -> i64 {
    let exp = attempts.saturating_sub(1).min(20);
    let full = JOB_RETRY_BASE_MS
        .saturating_mul(1_i64 << exp)
        .min(JOB_RETRY_CAP_MS);
    let half = full / 2;
    half + rand::random::<u64>().rem_euclid(half as u64 + 1) as i64
}

/// What failing `job` (read under its lease) does: both adapters share this decision.
pub(crate) fn plan_failure(
    job: &Job,
    retry_at: Option<EpochMillis>,
    now: EpochMillis,
) -> FailOutcome {
    if is_last_attempt(job) {
        return FailOutcome::Dead;
    }
    let attempts = job.attempts.saturating_add(1);
    let due_at = match retry_at {
        Some(at) => at.max(now),
        None => now + job_retry_delay_ms(attempts),
    };
    FailOutcome::Rescheduled { due_at }
}

/// Whether one more failed attempt (a failure or a lapsed lease) leaves `job` `Dead`.
pub(crate) fn is_last_attempt(job: &Job) -> bool {
    job.attempts.saturating_add(1) >= MAX_JOB_ATTEMPTS
}

/// `error` cut to [`LAST_ERROR_MAX_CHARS`] characters.
pub(crate) fn truncate_error(error: &str) -> String {
    error.chars().take(LAST_ERROR_MAX_CHARS).collect()
}

/// The wall clock in epoch ms, for the few timestamps no caller passes in (a job's `created_at`).
pub fn now_millis() -> EpochMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Epoch ms → epoch seconds for DynamoDB's TTL attribute, rounded up so an item never expires early.
pub fn ttl_secs(at: EpochMillis) -> i64 {
    at.div_euclid(1000) + i64::from(at.rem_euclid(1000) != 0)
}

/// The outcome of claiming a dedup key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupClaim {
    /// Nobody had it: ours for the lease; [`DedupStore::finish`] it once the work is durable.
    FirstTime,
    /// An earlier attempt claimed it and its lease lapsed unfinished (the function died or timed
    /// out): ours now, for a new lease; finish what it left.
    TakenOver,
    /// Another attempt holds a live lease: answer without working (it is on it; if it dies, a
    /// later re-delivery takes over).
    InProgress,
    /// Finished (or claimed by a version that recorded only "seen"): answer without working.
    Done,
}

impl DedupClaim {
    /// Whether the caller does the work.
    pub fn is_ours(self) -> bool {
        matches!(self, Self::FirstTime | Self::TakenOver)
    }
}

/// The outcomes of a claimed delivery's steps ([`DedupStore::keep`]), by step name.
pub type Kept = std::collections::BTreeMap<String, String>;

/// Whether `step` is a name [`DedupStore::keep`] takes: 1-32 of `[a-z0-9_]`.
pub fn is_step_name(step: &str) -> bool {
    (1..=32).contains(&step.len())
        && step
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Exactly-once processing of Feishu deliveries (events retried for ~7.1 h, duplicate card
/// callbacks). A claim is a lease (`processing`) until the work is durable (`done`), so a
/// delivery whose function died after its claim is not lost: the next re-delivery takes it over.
#[async_trait]
pub trait DedupStore: Send + Sync {
    /// Claims `key` as `processing` until `now + lease_ms`; the record lives until `now + ttl_ms`.
    /// Exactly one concurrent caller gets a claim that [`DedupClaim::is_ours`]. An expired record
    /// that DynamoDB's TTL has not removed yet does not block a new claim.
    async fn claim(
        &self,
        key: &str,
        now: EpochMillis,
        lease_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<DedupClaim>;
    /// Marks a claimed key `done`: later deliveries answer without working.
    async fn finish(&self, key: &str, now: EpochMillis) -> StoreResult<()>;
    /// Keeps `value` as the outcome of `step` of the work claimed under `key` (a CardKit entity
    /// created, a message sent), first writer wins, and returns the kept one. A retry after a crash
    /// (a lease taken over, an outbox job re-run) reads them with [`DedupStore::kept`] and skips what
    /// is done, so it never leans on Feishu's uuid replay (documented only as "succeeds at most
    /// once"). `step` is 1-32 of `[a-z0-9_]`. Without a record for `key` it returns `value`.
    async fn keep(&self, key: &str, step: &str, value: &str) -> StoreResult<String>;
    /// What earlier attempts kept for `key`, by step; empty without a record.
    async fn kept(&self, key: &str) -> StoreResult<Kept>;
    /// Releases a claim so Feishu's retry is processed: its lease ends now, and the retry's claim
    /// takes the record over ([`DedupClaim::TakenOver`]) with what this attempt kept (a CardKit
    /// entity it created is reused, not made again). Call it only when processing failed before
    /// anything reached a user (no message sent, no card state changed, no job queued) and the
    /// request is answered with an error so Feishu retries; after any visible effect keep the
    /// claim, or the retry repeats that effect.
    async fn release(&self, key: &str) -> StoreResult<()>;
}

/// A tenant_access_token as stored; `token` is a secret and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredTenantToken {
    /// The tenant_access_token itself (`t-…`).
    pub token: String,
    /// When Feishu stops accepting it (epoch ms), without any refresh margin.
    pub expires_at: EpochMillis,
}

impl std::fmt::Debug for StoredTenantToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTenantToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The tenant token shared by every instance of every function.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// The stored tenant_access_token of `app_id`, if any (it may have expired: check `expires_at`).
    async fn get_tenant_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>>;
    /// Writes unless the stored token expires later; returns whether it wrote.
    async fn put_tenant_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool>;
    /// Deletes the stored token if it is still `token` (Feishu rejected it).
    async fn evict_tenant_token(&self, app_id: &str, token: &str) -> StoreResult<()>;
    /// The bot's own open_id in `app_id` (`bot/v3/info`), once any instance read it. A store
    /// that keeps none (the default) makes each process ask Feishu once.
    async fn get_bot_open_id(&self, _app_id: &str) -> StoreResult<Option<String>> {
        Ok(None)
    }
    /// Keeps the bot's open_id for every instance (it never changes for an app).
    async fn put_bot_open_id(&self, _app_id: &str, _open_id: &str) -> StoreResult<()> {
        Ok(())
    }
}

/// How long an `app_ticket` is taken to be valid after it reached the event URL: Feishu's 3 h
/// ("app_ticket有效期 3 小时", questions-related-to-isv). The event's `ts` is its send time, not the
/// start of the validity, so the receive time is the conservative start.
pub const APP_TICKET_TTL_MS: EpochMillis = 3 * 3_600_000;

/// A store app's `app_ticket` as kept (`token#<app_id>` / `ticket`); `ticket` is a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredAppTicket {
    /// The ticket Feishu pushed in the 1.0 `app_ticket` event.
    pub ticket: String,
    /// When the event URL received it (epoch ms).
    pub received_at: EpochMillis,
    /// Feishu answered 10012 to an `app_access_token` call with it: never used again.
    pub stale: bool,
}

impl StoredAppTicket {
    /// When it stops being valid: [`APP_TICKET_TTL_MS`] after it was received.
    pub fn expires_at(&self) -> EpochMillis {
        self.received_at.saturating_add(APP_TICKET_TTL_MS)
    }

    /// Neither stale nor past [`Self::expires_at`] at `now`.
    pub fn usable(&self, now: EpochMillis) -> bool {
        !self.stale && self.expires_at() > now
    }
}

impl std::fmt::Debug for StoredAppTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAppTicket")
            .field("ticket", &"<redacted>")
            .field("received_at", &self.received_at)
            .field("stale", &self.stale)
            .finish()
    }
}

/// How many `app_ticket`s are kept: the last two, since "若有多个在有效期内的app_ticket，则都可使用"
/// (questions-related-to-isv) and a new one is pushed before the old one expires.
pub const KEPT_APP_TICKETS: usize = 2;

/// Adds `ticket` as the newest of `tickets` unless it is there; `false` when nothing changed.
pub(crate) fn keep_app_ticket(
    tickets: &mut Vec<StoredAppTicket>,
    ticket: &str,
    received_at: EpochMillis,
) -> bool {
    if tickets.iter().any(|t| t.ticket == ticket) {
        return false;
    }
    tickets.push(StoredAppTicket {
        ticket: ticket.to_owned(),
        received_at,
        stale: false,
    });
    tickets.sort_by_key(|t| std::cmp::Reverse(t.received_at));
    tickets.truncate(KEPT_APP_TICKETS);
    true
}

/// Marks `ticket` stale in `tickets`; `false` when it is not there or already stale.
pub(crate) fn mark_app_ticket_stale(tickets: &mut [StoredAppTicket], ticket: &str) -> bool {
    match tickets.iter_mut().find(|t| t.ticket == ticket && !t.stale) {
        Some(found) => {
            found.stale = true;
            true
        }
        None => false,
    }
}

/// A store app's credentials shared by every instance of every function: the `app_ticket`s the
/// event URL received, the throttle of the ticket resend, and the `app_access_token`. All items sit
/// in the app's token partition (`token#<app_id>`, sort keys `ticket`, `resend`, `app`).
#[async_trait]
pub trait AppTicketStore: Send + Sync {
    /// The kept tickets of `app_id`, newest first (at most [`KEPT_APP_TICKETS`]), stale and
    /// expired ones included (check [`StoredAppTicket::usable`]).
    async fn get_app_tickets(&self, app_id: &str) -> StoreResult<Vec<StoredAppTicket>>;
    /// Keeps `ticket`, received at `received_at`, as the newest; the oldest beyond
    /// [`KEPT_APP_TICKETS`] drops out. A ticket already kept changes nothing (Feishu re-delivers
    /// 1.0 events). Safe against concurrent puts: none is lost.
    async fn put_app_ticket(
        &self,
        app_id: &str,
        ticket: &str,
        received_at: EpochMillis,
    ) -> StoreResult<()>;
    /// Marks `ticket` stale (Feishu answered 10012 for it); a ticket no longer kept is ignored.
    async fn mark_app_ticket_stale(&self, app_id: &str, ticket: &str) -> StoreResult<()>;
    /// Claims the right to ask Feishu for a ticket resend: `true` for one caller per `gap_ms`
    /// across every instance (the last claim is at least `gap_ms` before `now`).
    async fn claim_ticket_resend(
        &self,
        app_id: &str,
        now: EpochMillis,
        gap_ms: EpochMillis,
    ) -> StoreResult<bool>;
    /// Claims the refresh of the token of `owner` (`app_id` for the app token,
    /// `<app_id>#<tenant_key>` for a tenant's): `true` for one caller per `hold_ms` across every
    /// instance; the others go on with the stored token, which is still valid.
    async fn claim_token_refresh(
        &self,
        owner: &str,
        now: EpochMillis,
        hold_ms: EpochMillis,
    ) -> StoreResult<bool>;
    /// The stored `app_access_token` of `app_id` (it may have expired: check `expires_at`).
    async fn get_app_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>>;
    /// Writes unless the stored app token expires later; returns whether it wrote.
    async fn put_app_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool>;
    /// Deletes the stored app token if it is still `token` (Feishu rejected it: 99991664).
    async fn evict_app_token(&self, app_id: &str, token: &str) -> StoreResult<()>;
}

/// Where a store app's tenant stands (its item `tenant#<app_id>` / `<tenant_key>`), from the lifecycle events `app_open`, `app_status_change`, `app_uninstalled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// Installed and enabled (`app_open`, `start_by_tenant`), or first seen in a valid event.
    Active,
    /// `stop_by_tenant`: an admin stopped the app; nothing is sent for the tenant.
    StoppedByTenant,
    /// `stop_by_platform`.
    StoppedByPlatform,
    /// `app_uninstalled`: the tenant's items expire.
    Uninstalled,
}

impl TenantStatus {
    /// The stored spelling (`active`, `stopped_by_tenant`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::StoppedByTenant => "stopped_by_tenant",
            Self::StoppedByPlatform => "stopped_by_platform",
            Self::Uninstalled => "uninstalled",
        }
    }

    /// Reads [`Self::as_str`]'s spelling.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Active,
            Self::StoppedByTenant,
            Self::StoppedByPlatform,
            Self::Uninstalled,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// Whether the bot acts for the tenant (sends, updates cards, runs jobs).
    pub fn is_active(self) -> bool {
        self == Self::Active
    }
}

/// One tenant of a store app, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    /// The tenant's `tenant_key`.
    pub tenant_key: String,
    /// Where it stands now.
    pub status: TenantStatus,
    /// The `ts` of the lifecycle event that set `status` (epoch ms; 0 when first seen in another
    /// event): an older status event changes nothing (1.0 events are retried for hours).
    pub status_at: EpochMillis,
    /// When `app_open` arrived (epoch ms), if it did.
    pub installed_at: Option<EpochMillis>,
    /// The installer's open_id (`installer` or `installer_employee` of `app_open`).
    pub installer_open_id: Option<String>,
    /// The last error a call for the tenant met (`cardbot-admin tenants`), capped.
    pub last_error: Option<String>,
    /// When the item was last written (epoch ms).
    pub updated_at: EpochMillis,
}

/// A store app's tenants, in one partition of their own (`tenant#<app_id>` / `<tenant_key>`), apart
/// from the tokens: a function that reads them (the card callback) reaches no token.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// The tenant's record, if it was ever seen.
    async fn get_tenant(&self, app_id: &str, tenant_key: &str)
        -> StoreResult<Option<TenantRecord>>;
    /// Creates `tenant_key` active (first seen in a valid event at `now`) unless it exists;
    /// answers the record as it is after the call.
    async fn ensure_tenant(
        &self,
        app_id: &str,
        tenant_key: &str,
        now: EpochMillis,
    ) -> StoreResult<TenantRecord>;
    /// Sets the tenant's status from a lifecycle event sent at `event_at` (its `ts`, ms), only
    /// when no later status event was applied (a conditional write: concurrent and late events
    /// end with the newest). `installed` marks an `app_open`: its time and installer are kept.
    /// Answers whether it applied.
    async fn set_tenant_status(
        &self,
        app_id: &str,
        tenant_key: &str,
        status: TenantStatus,
        event_at: EpochMillis,
        installed: Option<&str>,
        now: EpochMillis,
    ) -> StoreResult<bool>;
    /// Keeps `error` (capped) as the tenant's last error.
    async fn note_tenant_error(
        &self,
        app_id: &str,
        tenant_key: &str,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<()>;
    /// Every tenant of `app_id`, by tenant_key.
    async fn list_tenants(&self, app_id: &str) -> StoreResult<Vec<TenantRecord>>;
}

/// The callback's card-update token: valid 30 minutes, for 2 uses. A secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUpdateToken {
    /// The card-update token of a click (`c-…`), a secret.
    pub token: String,
    /// How many delayed updates used it (Feishu allows 2).
    pub uses: u32,
    /// When Feishu stops accepting it (epoch ms): 30 minutes after the click.
    pub expires_at: EpochMillis,
}

impl std::fmt::Debug for StoredUpdateToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredUpdateToken")
            .field("token", &"<redacted>")
            .field("uses", &self.uses)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Durable state of one card the bot sent (`pk = card#<card_key>`, `sk = state`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardState {
    /// The card's key (`card#<card_key>` in the table): its message_id.
    pub card_key: String,
    /// Optimistic-concurrency version; the store sets it (1 on create, +1 per update).
    pub version: u64,
    /// Last CardKit sequence handed out (0 = none yet); see [`CardStore::next_sequence`].
    pub sequence: i32,
    /// The chat the card was sent to (`oc_…`).
    pub chat_id: String,
    /// The open_id of the user the card belongs to (who asked for it).
    pub requester_open_id: String,
    /// The user message the card answers.
    pub source_message_id: Option<String>,
    /// The bot's message that shows the card, once sent.
    pub message_id: Option<String>,
    /// The CardKit entity, in entity delivery mode.
    pub card_id: Option<String>,
    /// Delivery mode: a card entity or the message's card JSON.
    pub delivery: CardDelivery,
    /// What the card is, as the bot names it (e.g. `poll`).
    pub kind: String,
    /// The bot's status of the card (e.g. `open`, `closed`).
    pub status: String,
    /// The latest click's card-update token, for the delayed update.
    pub update_token: Option<StoredUpdateToken>,
    /// Domain data (the card's render inputs), owned by the domain.
    pub data: serde_json::Value,
    /// When the card was sent (epoch ms): Feishu updates it for 14 days from here.
    pub created_at: EpochMillis,
    /// The last write (epoch ms).
    pub updated_at: EpochMillis,
    /// The per-user list the card belongs to (`requests#<open_id>`, `reviews#<open_id>`): the
    /// partition of the `lists` index, newest `created_at` first ([`ListStore`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_key: Option<String>,
}

impl CardState {
    /// A new card's state: `card_key` (its message_id), `kind` and `status` as the bot names them,
    /// sent `now`; the rest empty (set them with struct update syntax).
    pub fn new(
        card_key: impl Into<String>,
        kind: impl Into<String>,
        status: impl Into<String>,
        now: EpochMillis,
    ) -> Self {
        Self {
            card_key: card_key.into(),
            version: 0,
            sequence: 0,
            chat_id: String::new(),
            requester_open_id: String::new(),
            source_message_id: None,
            message_id: None,
            card_id: None,
            delivery: CardDelivery::default(),
            kind: kind.into(),
            status: status.into(),
            update_token: None,
            data: serde_json::Value::Null,
            created_at: now,
            updated_at: now,
            list_key: None,
        }
    }
}

/// One page of a per-user list and what reading it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Newest first.
    pub cards: Vec<CardState>,
    /// Read capacity units the Query consumed, as DynamoDB reports it (`None` in memory).
    pub consumed_capacity: Option<f64>,
}

/// Per-user lists of cards (我的申请, 待我审批), read by a Query on the `lists` index, never a Scan.
#[async_trait]
pub trait ListStore: Send + Sync {
    /// The cards whose `list_key` is `list_key`, newest first, at most `limit` (1–100).
    /// Eventually consistent (a GSI): a card written a moment ago may be missing.
    async fn list_cards(&self, list_key: &str, limit: usize) -> StoreResult<Listed>;
}

/// The most jobs one [`CardStore::update_card_and_enqueue`] takes: a transaction holds at most
/// 100 items (DynamoDB `TransactWriteItems`), one of them the card.
pub const MAX_JOBS_PER_WRITE: usize = 99;

/// Card state with optimistic concurrency and CardKit sequence allocation.
#[async_trait]
pub trait CardStore: Send + Sync {
    /// Creates the state item; `Conflict` if it exists. The stored version is 1.
    async fn create_card(&self, state: &CardState) -> StoreResult<CardState>;
    /// Keeps the card's state item until `until` (epoch ms) instead of [`CARD_STATE_TTL_MS`]
    /// after its last write (an admin's hold on a request's audit trail), never shorter than it
    /// is kept already; a later write of the card sets it back to that. `false` when the card
    /// does not exist or is kept past `until` already. A store that removes nothing by age
    /// answers `true` for an existing card.
    async fn retain_card(&self, card_key: &str, until: EpochMillis) -> StoreResult<bool> {
        let _ = until;
        Ok(self.get_card(card_key).await?.is_some())
    }
    /// Strongly consistent read.
    async fn get_card(&self, card_key: &str) -> StoreResult<Option<CardState>>;
    /// Writes `state` if the stored version is still `state.version`; returns it with version + 1.
    /// Never touches `sequence` (only [`CardStore::next_sequence`] does). `Conflict` otherwise.
    async fn update_card(&self, state: &CardState) -> StoreResult<CardState>;
    /// Atomically increments and returns the card's CardKit sequence (1, 2, …); refuses past
    /// i32::MAX with `SequenceExhausted`; `NotFound` when the card has no state.
    async fn next_sequence(&self, card_key: &str) -> StoreResult<i32> {
        self.next_sequences(card_key, 1).await
    }
    /// Reserves `count` (≥ 1) consecutive sequences in one write and returns the first, so a job
    /// of several CardKit calls costs one round trip for all of them. Refuses with
    /// `SequenceExhausted` when the last would pass i32::MAX; `NotFound` without card state.
    async fn next_sequences(&self, card_key: &str, count: u32) -> StoreResult<i32>;
    /// [`CardStore::create_card`] and [`JobStore::enqueue`] of each of `jobs` in one write, so a
    /// new card never exists without its jobs. `Conflict` if the card exists (it was written with
    /// its jobs the first time, so a retried reply has nothing left to do).
    async fn create_card_with_jobs(
        &self,
        state: &CardState,
        jobs: &[NewJob],
    ) -> StoreResult<CardState>;
    /// [`CardStore::update_card`] and [`JobStore::enqueue`] of each of `jobs` (on this card or
    /// others) in one transaction, so a click is one write: all happen or none. If a job already
    /// exists (a retried click), the card is still updated, the existing job left as it is and the
    /// others enqueued one by one (each idempotent). The returned state's `sequence` is the one
    /// passed in (a transaction returns no item); read the card for the current one. At most
    /// [`MAX_JOBS_PER_WRITE`] jobs (DynamoDB's 100 items per transaction, with the card).
    async fn update_card_and_enqueue(
        &self,
        state: &CardState,
        jobs: &[NewJob],
    ) -> StoreResult<CardState>;
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// In the `due` index, waiting for `due_at`.
    Pending,
    /// Claimed by an updater until `lease_until`; still in the index, due again when the lease
    /// lapses (re-claiming it then counts the lapsed lease as a failed attempt).
    Leased,
    /// Delivered; left the index, expires by TTL.
    Done,
    /// Gave up: after the bounded attempts, or at once on a permanent failure; kept, visible,
    /// never deleted by the store.
    Dead,
}

/// What a job does (`Job.kind`), as the bot names it: the store keeps the string and never reads
/// it, so a kind written by a newer version is still read, claimed and recorded, never dropped.
/// A bot maps its own job enum to and from these strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKind(String);

impl JobKind {
    /// A kind named `kind` (e.g. `send_reply`).
    pub fn new(kind: impl Into<String>) -> Self {
        Self(kind.into())
    }

    /// The stored string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for JobKind {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl PartialEq<&str> for JobKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for JobKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(String::deserialize(d)?))
    }
}

/// A card-update job (`pk = card#<card_key>`, `sk = job#<job_id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The card the job works on (or the key a reply job is filed under).
    pub card_key: String,
    /// Unique per card; deterministic per logical job.
    pub job_id: String,
    /// What the job does, as the bot names it.
    pub kind: JobKind,
    /// The job's own input, owned by the bot.
    pub payload: serde_json::Value,
    /// Where the job stands.
    pub status: JobStatus,
    /// Not before this time (epoch ms); the `due` index sort key while pending.
    pub due_at: EpochMillis,
    /// Failed attempts so far: each `fail_job` and each lapsed lease adds one. With
    /// `lease_owner` it identifies a lease, since every lease that does not complete adds one.
    pub attempts: u32,
    /// The last failure, truncated; never a secret.
    pub last_error: Option<String>,
    /// Claim token of the current lease holder.
    pub lease_owner: Option<String>,
    /// The current lease ends at (epoch ms).
    pub lease_until: Option<EpochMillis>,
    /// When it was enqueued (epoch ms).
    pub created_at: EpochMillis,
    /// The last write (epoch ms).
    pub updated_at: EpochMillis,
}

/// A job named by a stream record or the sweep: what the updater needs to claim it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    /// The job's card key.
    pub card_key: String,
    /// The job's id on that card.
    pub job_id: String,
    /// When it is due, if the source says.
    pub due_at: Option<EpochMillis>,
}

impl From<Job> for JobRef {
    fn from(job: Job) -> Self {
        Self {
            card_key: job.card_key,
            job_id: job.job_id,
            due_at: Some(job.due_at),
        }
    }
}

/// A new job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// The card the job works on.
    pub card_key: String,
    /// Deterministic per logical job, so enqueueing twice is one job.
    pub job_id: String,
    /// What the job does, as the bot names it.
    pub kind: JobKind,
    /// The job's own input, owned by the bot.
    pub payload: serde_json::Value,
    /// Not due before this time (epoch ms).
    pub not_before: EpochMillis,
    /// What an enqueue does when a job of this id exists: `false` leaves it (the first one
    /// stands); `true` re-arms it: a done one is pending again; a leased one (a run under way,
    /// which may have read the earlier state) is marked to run once more when that run completes,
    /// never run twice at once; a pending one is left, as it will read the latest state when it
    /// runs (changes in a row coalesce into one run); a dead one is kept for a human. A re-armed
    /// job is never part of [`CardStore::update_card_and_enqueue`]'s transaction: it is enqueued
    /// right after the write (its work shows a state, and the state is what is kept).
    pub rearm: bool,
}

/// What `fail` did with a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Due again at `due_at` (epoch ms), after the store's backoff or the given retry time.
    Rescheduled {
        /// When it is due again (epoch ms).
        due_at: EpochMillis,
    },
    /// Its attempts are used up, or the failure was permanent: kept, never retried.
    Dead,
}

/// Card-update jobs: the outbox the updater drains.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Idempotent on (card_key, job_id): a second enqueue of the same id leaves the first.
    async fn enqueue(&self, job: &NewJob) -> StoreResult<()>;
    /// [`JobStore::enqueue`] and [`DedupStore::finish`] of the delivery `dedup_key` in one write
    /// (a transaction): the answer of a reply that did not fit costs one round trip for both, and
    /// a crash leaves either both or neither (then the lease lapses and a re-delivery queues it).
    /// A job already queued, or a delivery record already gone, does not stop the other half.
    async fn enqueue_finishing(
        &self,
        job: &NewJob,
        dedup_key: &str,
        now: EpochMillis,
    ) -> StoreResult<()>;
    /// Strongly consistent read.
    async fn get_job(&self, card_key: &str, job_id: &str) -> StoreResult<Option<Job>>;
    /// Every job of one card in any status, ordered by job id (strongly consistent).
    async fn jobs_for_card(&self, card_key: &str) -> StoreResult<Vec<Job>>;
    /// Jobs due at `now` (pending, or leased with a lapsed lease), oldest first, by a Query on the
    /// `due` index (never a Scan).
    async fn due_jobs(&self, now: EpochMillis, limit: usize) -> StoreResult<Vec<Job>>;
    /// Jobs waiting in the `due` index (due now or later, or leased) whose card key starts with
    /// `card_key_prefix` (a store app's tenant: `<tenant_key>#`), at most `limit`, soonest first:
    /// a Query on the index filtered by key, for the rare sweep of one tenant's work (its
    /// uninstall). Eventually consistent (a GSI).
    async fn waiting_jobs(&self, card_key_prefix: &str, limit: usize) -> StoreResult<Vec<JobRef>>;
    /// Leaves a waiting job `Dead` with `error` at `now` (out of the index, the dead TTL, listed
    /// with the dead jobs), whenever it is due: `true` when it was pending or its lease had
    /// lapsed; `false` (nothing written) when it is done, dead, gone or being run right now.
    async fn bury_waiting_job(
        &self,
        card_key: &str,
        job_id: &str,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<bool>;
    /// Conditionally takes the lease until `now + lease_ms`; `None` if another owner holds it, it
    /// is not due yet, or it is done/dead. Taking over a lapsed lease counts it as a failed
    /// attempt (`attempts + 1`, `last_error` = [`LEASE_EXPIRED_ERROR`]); when that is the
    /// [`MAX_JOB_ATTEMPTS`]-th, the job goes `Dead` (out of the index, no TTL) and `None` is
    /// returned, so an updater that crashes on a job cannot be handed it forever.
    async fn claim_job(
        &self,
        card_key: &str,
        job_id: &str,
        owner: &str,
        now: EpochMillis,
        lease_ms: i64,
    ) -> StoreResult<Option<Job>>;
    /// Marks a leased job done (only by its lease owner, else `Conflict`); it leaves the index and
    /// gets a TTL of [`DONE_JOB_TTL_MS`].
    async fn complete_job(&self, job: &Job, now: EpochMillis) -> StoreResult<()>;
    /// Records the error; reschedules with backoff (or at `retry_at` when Feishu said when), or
    /// after [`MAX_JOB_ATTEMPTS`] leaves it `Dead` (out of the index, no TTL). Only by the lease
    /// owner holding the `job` it claimed, else `Conflict`.
    async fn fail_job(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<EpochMillis>,
        now: EpochMillis,
    ) -> StoreResult<FailOutcome>;
    /// Records the error (`attempts + 1`) and leaves the job `Dead` at once (out of the index, no
    /// TTL): for a failure that will never succeed. Only by the lease owner holding the `job` it
    /// claimed, else `Conflict`.
    async fn fail_job_permanently(
        &self,
        job: &Job,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<()>;
}

/// The `lists` index partition of dead jobs (newest first by the time they died), read by
/// `cardbot-admin`.
pub const DEAD_JOBS_LIST: &str = "jobs#dead";

/// Dead jobs, for an operator: list them, put one back in the queue.
#[async_trait]
pub trait DeadJobStore: Send + Sync {
    /// Dead jobs, newest first, at most `limit` (1–100): a Query on the `lists` index.
    async fn dead_jobs(&self, limit: usize) -> StoreResult<Vec<Job>>;
    /// Puts a dead job back in the queue, due at `now`, with a fresh set of attempts (its
    /// `last_error` kept until the next attempt): the operator's requeue is a new start, retried
    /// as a new job is. Its CardKit calls still get fresh idempotency keys: each run reserves new
    /// `sequence`s, which the keys carry (`card_update::op_idempotency_key`). `false` when the job
    /// is not dead (or missing).
    async fn requeue_dead_job(
        &self,
        card_key: &str,
        job_id: &str,
        now: EpochMillis,
    ) -> StoreResult<bool>;
}

/// Everything a function may need, for wiring convenience.
pub trait Store:
    DedupStore
    + TokenStore
    + AppTicketStore
    + TenantStore
    + CardStore
    + JobStore
    + ListStore
    + DocumentStore
{
}

impl<T> Store for T where
    T: DedupStore
        + TokenStore
        + AppTicketStore
        + TenantStore
        + CardStore
        + JobStore
        + ListStore
        + DocumentStore
{
}

pub use documents::{Document, DocumentStore};
pub use once::{once, step, Abandon, Finish, Once, StepError};
pub use rate::{PermitRequest, PermitTake, RateBudget, RateScope};

/// The app-wide rate limit's shared counters (`rate#<app_id>#…`, short TTL): every instance of
/// every function takes its Feishu call permits here, so the app stays under Feishu's limits
/// however far Lambda scales out. See [`rate`] for how a take is counted.
#[async_trait]
pub trait RateStore: Send + Sync {
    /// Takes every request from the counters of `scope`'s item at `now` in one conditional write:
    /// all granted, or none (then `Refused` with the earliest time the same take could fit). Each
    /// budget appears at most once in `requests`.
    async fn take_permits(
        &self,
        app_id: &str,
        scope: &RateScope,
        requests: &[PermitRequest],
        now: EpochMillis,
    ) -> StoreResult<PermitTake>;
}
