//! A store app's (商店应用) credentials for many stateless instances: the `app_ticket` Feishu
//! pushes to the event URL, the `app_access_token` made from it, and one `tenant_access_token` per
//! `tenant_key`, each shared through the table.
//!
//! Protocol (Feishu's auth-v3 pages and the ISV FAQ):
//! - the 1.0 event `app_ticket` arrives about once an hour; a ticket is valid 3 h and any valid one
//!   may be used, so the last [`KEPT_APP_TICKETS`] are kept ([`AppTicketStore`]);
//! - `POST /open-apis/auth/v3/app_ticket/resend` `{app_id, app_secret}` asks for a push "最长 2 分钟"
//!   later; cardbot asks at most once per [`TICKET_RESEND_GAP_MS`] across every instance;
//! - `POST /open-apis/auth/v3/app_access_token` `{app_id, app_secret, app_ticket}` answers
//!   `{app_access_token, expire}` (seconds); code 10012 means the ticket is no good: it is marked
//!   stale and a resend is asked for;
//! - `POST /open-apis/auth/v3/tenant_access_token` `{app_access_token, tenant_key}` answers
//!   `{tenant_access_token, expire}`; 99991664 (app token invalid) evicts the app token and fetches
//!   it once more.
//!
//! With no usable ticket a call fails with [`FeishuError::NoAppTicket`] (retryable): the caller
//! queues its work, which runs once Feishu pushed a ticket.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::deadline::Deadline;
use super::error::{FeishuError, FeishuResult};
use super::limiter::SharedLimiter;
use super::request::{ApiRequest, Method};
use super::token::{Clock, FetchTenantToken, TenantAccessTokenAnswer, TenantTokenProvider};
use crate::store::keys::store_tenant_token_owner;
use crate::store::{
    AppTicketStore, EpochMillis, RateStore, StoreResult, StoredTenantToken, TokenStore,
    KEPT_APP_TICKETS,
};
use crate::webhook::{EventSchema, OtherEvent};

/// The 1.0 event type of a pushed ticket (`event.type`).
pub const APP_TICKET_EVENT: &str = "app_ticket";

/// At most one ticket resend per this many ms across every instance (a push takes up to 2 min,
/// so asking more often only adds calls).
pub const TICKET_RESEND_GAP_MS: EpochMillis = 60_000;

/// How long a caller without a ticket is told to wait before trying again.
pub const NO_TICKET_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Feishu's code for an `app_access_token` call whose `app_ticket` is unknown or expired
/// ("get app access token fail"; the Go SDK's `errCodeAppTicketInvalid`).
pub const APP_TICKET_INVALID: i64 = 10012;

/// Which kind of Feishu app the deployment is (`FEISHU_APP_TYPE`): a self-built app
/// (企业自建应用) of one company, or a store app (商店应用) any company can install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppType {
    /// `self_built`: one tenant; the token from `tenant_access_token/internal`.
    #[default]
    SelfBuilt,
    /// `store`: many tenants; tokens from the pushed `app_ticket` (this module).
    Store,
}

impl AppType {
    /// The setting's spelling: `self_built` or `store`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfBuilt => "self_built",
            Self::Store => "store",
        }
    }

    /// Reads `self_built` or `store` (surrounding spaces and case ignored); the error names the
    /// value and both choices.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "self_built" => Ok(Self::SelfBuilt),
            "store" => Ok(Self::Store),
            other => Err(format!(
                "FEISHU_APP_TYPE is {other:?}: expected self_built or store"
            )),
        }
    }
}

/// A tenant's `tenant_key`: 1–64 ASCII letters, digits, `_` or `-` (Feishu's are 16 hex digits).
/// Checked before it reaches a table key or a request body.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantKey(String);

impl TenantKey {
    /// The longest accepted key.
    pub const MAX_LEN: usize = 64;

    /// `value` if it is a well-formed tenant_key; the error says what is wrong (never echoing
    /// more than the length of a hostile value).
    pub fn new(value: &str) -> Result<Self, String> {
        if value.is_empty() || value.len() > Self::MAX_LEN {
            return Err(format!(
                "tenant_key must be 1 to {} characters, got {}",
                Self::MAX_LEN,
                value.len()
            ));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err("tenant_key may hold only ASCII letters, digits, _ and -".to_owned());
        }
        Ok(Self(value.to_owned()))
    }

    /// The key as Feishu sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantKey({})", self.0)
    }
}

impl fmt::Display for TenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pushed ticket: the 1.0 event `{"event": {"app_id", "app_ticket", "type": "app_ticket"}}`.
#[derive(Clone, PartialEq, Eq)]
pub struct AppTicketEvent {
    /// The app it is for (`event.app_id`).
    pub app_id: String,
    /// The ticket, a secret (`event.app_ticket`).
    pub app_ticket: String,
}

impl fmt::Debug for AppTicketEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppTicketEvent")
            .field("app_id", &self.app_id)
            .field("app_ticket", &"<redacted>")
            .finish()
    }
}

impl AppTicketEvent {
    /// The ticket of a verified 1.0 `app_ticket` event; `None` for any other event, an error
    /// naming the field for an `app_ticket` event without `app_id` or `app_ticket`.
    pub fn from_event(event: &OtherEvent) -> Option<Result<Self, String>> {
        if event.schema != EventSchema::V1 || event.event_type != APP_TICKET_EVENT {
            return None;
        }
        #[derive(Deserialize)]
        struct Body {
            app_id: Option<String>,
            app_ticket: Option<String>,
        }
        let body = event
            .raw
            .get("event")
            .cloned()
            .map(serde_json::from_value::<Body>);
        Some(match body {
            Some(Ok(Body {
                app_id: Some(app_id),
                app_ticket: Some(app_ticket),
            })) if !app_id.is_empty() && !app_ticket.is_empty() => Ok(Self { app_id, app_ticket }),
            Some(Ok(Body { app_id: None, .. })) => Err("app_ticket event without app_id".into()),
            _ => Err("app_ticket event without an app_ticket".into()),
        })
    }
}

/// `POST /open-apis/auth/v3/app_ticket/resend` (store apps only; a self-built app gets 10016).
pub fn app_ticket_resend_request(app_id: &str, app_secret: &str) -> ApiRequest {
    ApiRequest::new(
        Method::Post,
        "/open-apis/auth/v3/app_ticket/resend".to_owned(),
        json!({ "app_id": app_id, "app_secret": app_secret }),
    )
}

/// `POST /open-apis/auth/v3/app_access_token` (store app): the body holds the secret and ticket.
pub fn app_access_token_request(app_id: &str, app_secret: &str, app_ticket: &str) -> ApiRequest {
    ApiRequest::new(
        Method::Post,
        "/open-apis/auth/v3/app_access_token".to_owned(),
        json!({ "app_id": app_id, "app_secret": app_secret, "app_ticket": app_ticket }),
    )
}

/// `POST /open-apis/auth/v3/tenant_access_token` (store app): the body holds the app token.
pub fn store_tenant_access_token_request(app_access_token: &str, tenant_key: &str) -> ApiRequest {
    ApiRequest::new(
        Method::Post,
        "/open-apis/auth/v3/tenant_access_token".to_owned(),
        json!({ "app_access_token": app_access_token, "tenant_key": tenant_key }),
    )
}

/// The flat answer `{code, msg, app_access_token, expire}`.
#[derive(Deserialize)]
struct AppAccessTokenAnswer {
    app_access_token: String,
    expire: i64,
}

fn parse_app_token(body: Value) -> FeishuResult<AppAccessTokenAnswer> {
    let answer: AppAccessTokenAnswer = serde_json::from_value(body)
        .map_err(|e| FeishuError::Transport(format!("unexpected app_access_token answer: {e}")))?;
    if answer.app_access_token.is_empty() || answer.expire <= 0 {
        return Err(FeishuError::Transport(
            "app_access_token answer without a token or expiry".to_owned(),
        ));
    }
    Ok(answer)
}

/// The unauthenticated auth calls, sent by the client with its retry policy.
#[async_trait::async_trait]
pub(crate) trait AuthCalls: Send + Sync {
    /// Sends an auth request (no bearer token, no rate permit) and answers its whole body.
    async fn send_auth(&self, request: &ApiRequest, deadline: Deadline) -> FeishuResult<Value>;
}

/// What one tenant's calls share inside a process: its token cache, its rate limits (Feishu's
/// budgets are per app and tenant), and its bot's open_id.
pub(crate) struct TenantScope {
    pub(crate) tokens: TenantTokenProvider,
    /// Spaces this process's calls of the tenant.
    pub(crate) pacer: super::pacer::Pacer,
    pub(crate) limiter: SharedLimiter,
    pub(crate) bot_open_id: tokio::sync::OnceCell<String>,
    /// What the token and rate items are keyed by: the app id (self-built) or
    /// `<app_id>#<tenant_key>` (store).
    pub(crate) owner: String,
}

impl TenantScope {
    pub(crate) fn new(
        owner: String,
        tokens: Arc<dyn TokenStore>,
        rates: Arc<dyn RateStore>,
        clock: Arc<dyn Clock>,
        refresh_claims: Option<Arc<dyn AppTicketStore>>,
    ) -> Self {
        let provider = TenantTokenProvider::new(owner.clone(), tokens, clock.clone());
        Self {
            tokens: match refresh_claims {
                Some(claims) => provider.with_refresh_claims(claims),
                None => provider,
            },
            limiter: SharedLimiter::new(owner.clone(), rates, clock),
            pacer: super::pacer::Pacer::default(),
            bot_open_id: tokio::sync::OnceCell::new(),
            owner,
        }
    }
}

/// The app token through the [`TokenStore`] port (its item `token#<app_id>` / `app`), so the
/// provider that keeps tenant tokens keeps it too: memory, the table, one fetch per process, one
/// refresh across instances, eviction.
struct AppTokens(Arc<dyn AppTicketStore>);

#[async_trait::async_trait]
impl TokenStore for AppTokens {
    async fn get_tenant_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>> {
        self.0.get_app_token(app_id).await
    }
    async fn put_tenant_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool> {
        self.0.put_app_token(app_id, token).await
    }
    async fn evict_tenant_token(&self, app_id: &str, token: &str) -> StoreResult<()> {
        self.0.evict_app_token(app_id, token).await
    }
}

/// A fetch of the app token: from the kept tickets, by [`StoreAppAuth::app_token_from_ticket`].
struct FromTicket<'a> {
    auth: &'a StoreAppAuth,
    calls: &'a dyn AuthCalls,
    app_secret: &'a str,
}

#[async_trait::async_trait]
impl FetchTenantToken for FromTicket<'_> {
    async fn fetch_tenant_token(
        &self,
        deadline: Deadline,
    ) -> FeishuResult<TenantAccessTokenAnswer> {
        self.auth
            .app_token_from_ticket(self.calls, self.app_secret, deadline)
            .await
    }
}

/// A store app's shared credentials in one process: the app token and every tenant's scope.
pub(crate) struct StoreAppAuth {
    app_id: String,
    tickets: Arc<dyn AppTicketStore>,
    tokens: Arc<dyn TokenStore>,
    rates: Arc<dyn RateStore>,
    clock: Arc<dyn Clock>,
    /// The app token, kept as a tenant token is (the provider holds its own fetch lock).
    app_token: TenantTokenProvider,
    tenants: std::sync::Mutex<HashMap<TenantKey, Arc<TenantScope>>>,
}

impl StoreAppAuth {
    pub(crate) fn new(
        app_id: String,
        tickets: Arc<dyn AppTicketStore>,
        tokens: Arc<dyn TokenStore>,
        rates: Arc<dyn RateStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let app_token = TenantTokenProvider::new(
            app_id.clone(),
            Arc::new(AppTokens(tickets.clone())),
            clock.clone(),
        )
        .with_refresh_claims(tickets.clone())
        .naming("app_access_token");
        Self {
            app_id,
            tickets,
            tokens,
            rates,
            clock,
            app_token,
            tenants: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The scope of `tenant`, made on first use and shared by every later call of this process.
    pub(crate) fn scope(&self, tenant: &TenantKey) -> Arc<TenantScope> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        tenants
            .entry(tenant.clone())
            .or_insert_with(|| {
                Arc::new(TenantScope::new(
                    store_tenant_token_owner(&self.app_id, tenant.as_str()),
                    self.tokens.clone(),
                    self.rates.clone(),
                    self.clock.clone(),
                    Some(self.tickets.clone()),
                ))
            })
            .clone()
    }

    /// A fresh tenant token of `tenant`: the app token (memory, table, or a fetch from a ticket),
    /// then `tenant_access_token`; a rejected app token (99991664) is evicted and fetched once more.
    pub(crate) async fn fetch_tenant_token(
        &self,
        calls: &dyn AuthCalls,
        app_secret: &str,
        tenant: &TenantKey,
        deadline: Deadline,
    ) -> FeishuResult<TenantAccessTokenAnswer> {
        let mut refetched = false;
        loop {
            let from_ticket = FromTicket {
                auth: self,
                calls,
                app_secret,
            };
            let app_token = self.app_token.get(&from_ticket, deadline).await?;
            let request = store_tenant_access_token_request(app_token.secret(), tenant.as_str());
            match calls.send_auth(&request, deadline).await {
                Err(FeishuError::InvalidToken { code, log_id })
                    if code == super::error::codes::INVALID_APP_ACCESS_TOKEN && !refetched =>
                {
                    tracing::warn!(code, ?log_id, "app_access_token rejected; refetching once");
                    self.app_token.evict(&app_token).await;
                    refetched = true;
                }
                Err(e) => return Err(e),
                Ok(body) => return TenantAccessTokenAnswer::parse(body),
            }
        }
    }

    /// A new app token from the newest usable ticket (the older kept one if Feishu calls the
    /// newest stale, 10012); with none, a resend is asked for and the call fails with
    /// [`FeishuError::NoAppTicket`].
    async fn app_token_from_ticket(
        &self,
        calls: &dyn AuthCalls,
        app_secret: &str,
        deadline: Deadline,
    ) -> FeishuResult<TenantAccessTokenAnswer> {
        let now = self.clock.now_millis();
        // The tickets are the one thing only the table has: a failed read is the caller's error.
        let tickets = self
            .tickets
            .get_app_tickets(&self.app_id)
            .await
            .map_err(|e| FeishuError::Transport(format!("cannot read the app_ticket: {e}")))?;
        for ticket in tickets
            .iter()
            .filter(|t| t.usable(now))
            .take(KEPT_APP_TICKETS)
        {
            let request = app_access_token_request(&self.app_id, app_secret, &ticket.ticket);
            match calls.send_auth(&request, deadline).await {
                Err(FeishuError::Api { code, log_id, .. }) if code == APP_TICKET_INVALID => {
                    tracing::warn!(code, ?log_id, "app_ticket refused; marking it stale");
                    if let Err(e) = self
                        .tickets
                        .mark_app_ticket_stale(&self.app_id, &ticket.ticket)
                        .await
                    {
                        tracing::warn!(error = %e, "could not mark the app_ticket stale");
                    }
                }
                Err(e) => return Err(e),
                Ok(body) => {
                    let answer = parse_app_token(body)?;
                    // The provider keeps it as it keeps a tenant token.
                    return Ok(TenantAccessTokenAnswer {
                        tenant_access_token: answer.app_access_token,
                        expire: answer.expire,
                    });
                }
            }
        }
        self.ask_for_ticket(calls, app_secret, deadline).await;
        Err(FeishuError::NoAppTicket {
            retry_after: NO_TICKET_RETRY_AFTER,
        })
    }

    /// Asks Feishu to push a ticket, if no instance did in the last [`TICKET_RESEND_GAP_MS`];
    /// answers whether this call asked. Failures are logged: the next gap tries again.
    pub(crate) async fn ask_for_ticket(
        &self,
        calls: &dyn AuthCalls,
        app_secret: &str,
        deadline: Deadline,
    ) -> bool {
        let now = self.clock.now_millis();
        match self
            .tickets
            .claim_ticket_resend(&self.app_id, now, TICKET_RESEND_GAP_MS)
            .await
        {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim the app_ticket resend");
                return false;
            }
        }
        let request = app_ticket_resend_request(&self.app_id, app_secret);
        match calls.send_auth(&request, deadline).await {
            Ok(_) => tracing::info!("asked Feishu to push an app_ticket"),
            Err(e) => tracing::warn!(error = %e, "app_ticket resend failed"),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::token::Clock;
    use crate::store::memory::MemoryStore;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Mutex as StdMutex;

    const APP: &str = "cli_store";
    const T0: EpochMillis = 1_790_000_000_000;

    struct TestClock(AtomicI64);
    impl Clock for TestClock {
        fn now_millis(&self) -> EpochMillis {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// Feishu's auth endpoints as a script: which tickets it takes, which app tokens it rejects.
    #[derive(Default)]
    struct Auth {
        good_tickets: StdMutex<Vec<String>>,
        /// App tokens `tenant_access_token` answers 99991664 for.
        rejected_app_tokens: StdMutex<Vec<String>>,
        sent: StdMutex<Vec<(String, Value)>>,
        issued: AtomicI64,
    }

    #[async_trait::async_trait]
    impl AuthCalls for Auth {
        async fn send_auth(&self, request: &ApiRequest, _: Deadline) -> FeishuResult<Value> {
            let body = request.body.clone().unwrap_or(Value::Null);
            self.sent
                .lock()
                .unwrap()
                .push((request.path.clone(), body.clone()));
            let n = self.issued.fetch_add(1, Ordering::SeqCst);
            // As slow as a round trip: callers at once overlap.
            tokio::time::sleep(Duration::from_millis(20)).await;
            match request.path.as_str() {
                "/open-apis/auth/v3/app_ticket/resend" => Ok(json!({"code": 0})),
                "/open-apis/auth/v3/app_access_token" => {
                    let ticket = body["app_ticket"].as_str().unwrap_or("");
                    if self
                        .good_tickets
                        .lock()
                        .unwrap()
                        .iter()
                        .any(|t| t == ticket)
                    {
                        Ok(json!({"code": 0, "app_access_token": format!("a-{n}"), "expire": 7200}))
                    } else {
                        Err(FeishuError::from_code(
                            10012,
                            "app ticket invalid",
                            None,
                            None,
                        ))
                    }
                }
                "/open-apis/auth/v3/tenant_access_token" => {
                    let app_token = body["app_access_token"].as_str().unwrap_or("");
                    if self
                        .rejected_app_tokens
                        .lock()
                        .unwrap()
                        .iter()
                        .any(|t| t == app_token)
                    {
                        return Err(FeishuError::from_code(99991664, "invalid", None, None));
                    }
                    let tenant = body["tenant_key"].as_str().unwrap_or("");
                    Ok(
                        json!({"code": 0, "tenant_access_token": format!("t-{tenant}-{n}"), "expire": 7200}),
                    )
                }
                other => panic!("unexpected auth call {other}"),
            }
        }
    }

    impl Auth {
        fn paths(&self) -> Vec<String> {
            let sent = self.sent.lock().unwrap();
            sent.iter()
                .map(|(p, _)| p.trim_start_matches("/open-apis/auth/v3/").to_owned())
                .collect()
        }
    }

    fn setup() -> (Arc<MemoryStore>, Arc<TestClock>, StoreAppAuth, Auth) {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(TestClock(AtomicI64::new(T0)));
        let auth = StoreAppAuth::new(
            APP.into(),
            store.clone(),
            store.clone(),
            store.clone(),
            clock.clone(),
        );
        (store, clock, auth, Auth::default())
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    fn tenant(key: &str) -> TenantKey {
        TenantKey::new(key).unwrap()
    }

    #[tokio::test]
    async fn without_a_ticket_the_call_is_retryable_and_one_resend_is_asked_a_minute() {
        let (_store, clock, auth, feishu) = setup();
        for _ in 0..3 {
            let err = auth
                .fetch_tenant_token(&feishu, "secret", &tenant("t1"), deadline())
                .await
                .unwrap_err();
            assert!(matches!(err, FeishuError::NoAppTicket { .. }), "{err}");
            assert!(err.is_retryable());
        }
        assert_eq!(feishu.paths(), ["app_ticket/resend"]);
        clock.0.fetch_add(TICKET_RESEND_GAP_MS, Ordering::SeqCst);
        auth.fetch_tenant_token(&feishu, "secret", &tenant("t1"), deadline())
            .await
            .unwrap_err();
        assert_eq!(feishu.paths(), ["app_ticket/resend", "app_ticket/resend"]);
        // The resend carries the app's id and secret.
        let sent = feishu.sent.lock().unwrap();
        assert_eq!(sent[0].1, json!({"app_id": APP, "app_secret": "secret"}));
    }

    #[tokio::test]
    async fn a_ticket_gives_one_app_token_then_a_token_per_tenant() {
        let (store, _clock, auth, feishu) = setup();
        store.put_app_ticket(APP, "tk-1", T0).await.unwrap();
        feishu.good_tickets.lock().unwrap().push("tk-1".into());
        let a = auth
            .fetch_tenant_token(&feishu, "secret", &tenant("ta"), deadline())
            .await
            .unwrap();
        let b = auth
            .fetch_tenant_token(&feishu, "secret", &tenant("tb"), deadline())
            .await
            .unwrap();
        assert!(a.tenant_access_token.starts_with("t-ta-"));
        assert!(b.tenant_access_token.starts_with("t-tb-"));
        assert_eq!(
            feishu.paths(),
            [
                "app_access_token",
                "tenant_access_token",
                "tenant_access_token"
            ]
        );
        // The app token is in the table for every other instance, and in each body.
        let stored = store.get_app_token(APP).await.unwrap().unwrap();
        let sent = feishu.sent.lock().unwrap();
        assert_eq!(
            sent[1].1,
            json!({"app_access_token": stored.token, "tenant_key": "ta"})
        );
        assert_eq!(
            sent[0].1,
            json!({"app_id": APP, "app_secret": "secret", "app_ticket": "tk-1"})
        );
    }

    #[tokio::test]
    async fn a_stale_newest_ticket_falls_back_to_the_older_one_and_is_never_tried_again() {
        let (store, _clock, auth, feishu) = setup();
        store.put_app_ticket(APP, "tk-old", T0).await.unwrap();
        store.put_app_ticket(APP, "tk-new", T0 + 1).await.unwrap();
        feishu.good_tickets.lock().unwrap().push("tk-old".into());
        auth.fetch_tenant_token(&feishu, "secret", &tenant("ta"), deadline())
            .await
            .unwrap();
        assert_eq!(
            feishu.paths(),
            [
                "app_access_token",
                "app_access_token",
                "tenant_access_token"
            ]
        );
        let kept = store.get_app_tickets(APP).await.unwrap();
        assert!(kept[0].stale && kept[0].ticket == "tk-new" && !kept[1].stale);
    }

    #[tokio::test]
    async fn every_ticket_stale_asks_for_a_resend() {
        let (store, _clock, auth, feishu) = setup();
        store.put_app_ticket(APP, "tk-bad", T0).await.unwrap();
        let err = auth
            .fetch_tenant_token(&feishu, "secret", &tenant("ta"), deadline())
            .await
            .unwrap_err();
        assert!(matches!(err, FeishuError::NoAppTicket { .. }));
        assert_eq!(feishu.paths(), ["app_access_token", "app_ticket/resend"]);
    }

    #[tokio::test]
    async fn a_ticket_older_than_three_hours_is_not_used() {
        let (store, clock, auth, feishu) = setup();
        store.put_app_ticket(APP, "tk-1", T0).await.unwrap();
        feishu.good_tickets.lock().unwrap().push("tk-1".into());
        clock
            .0
            .store(T0 + crate::store::APP_TICKET_TTL_MS, Ordering::SeqCst);
        let err = auth
            .fetch_tenant_token(&feishu, "secret", &tenant("ta"), deadline())
            .await
            .unwrap_err();
        assert!(matches!(err, FeishuError::NoAppTicket { .. }));
        assert_eq!(feishu.paths(), ["app_ticket/resend"]);
    }

    /// One instance's token fetch: the store-app auth behind the tenant token provider.
    struct Instance<'a> {
        auth: &'a StoreAppAuth,
        calls: &'a Auth,
        tenant: TenantKey,
    }

    #[async_trait::async_trait]
    impl super::super::token::FetchTenantToken for Instance<'_> {
        async fn fetch_tenant_token(
            &self,
            deadline: Deadline,
        ) -> FeishuResult<TenantAccessTokenAnswer> {
            self.auth
                .fetch_tenant_token(self.calls, "secret", &self.tenant, deadline)
                .await
        }
    }

    #[tokio::test]
    async fn sixteen_instances_at_refresh_time_fetch_each_token_once() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(TestClock(AtomicI64::new(T0)));
        let calls = Auth::default();
        store.put_app_ticket(APP, "tk-1", T0).await.unwrap();
        calls.good_tickets.lock().unwrap().push("tk-1".into());
        // Both tokens are inside the refresh margin (18 min left) but still safe to use.
        let aging = |token: &str| StoredTenantToken {
            token: token.into(),
            expires_at: T0 + 18 * 60_000,
        };
        store.put_app_token(APP, &aging("a-old")).await.unwrap();
        let owner = store_tenant_token_owner(APP, "ta");
        store
            .put_tenant_token(&owner, &aging("t-old"))
            .await
            .unwrap();
        let instances: Vec<StoreAppAuth> = (0..16)
            .map(|_| {
                StoreAppAuth::new(
                    APP.into(),
                    store.clone(),
                    store.clone(),
                    store.clone(),
                    clock.clone(),
                )
            })
            .collect();
        let tenant = tenant("ta");
        let tokens = futures::future::join_all(instances.iter().map(|auth| {
            let fetcher = Instance {
                auth,
                calls: &calls,
                tenant: tenant.clone(),
            };
            let scope = auth.scope(&tenant);
            async move { scope.tokens.get(&fetcher, deadline()).await.unwrap() }
        }))
        .await;
        // One instance refreshed both tokens, once each; the others went on with the stored
        // tenant token (18 minutes left) or took the refreshed one from the table.
        assert_eq!(calls.paths(), ["app_access_token", "tenant_access_token"]);
        // Each got the stored token or the one refreshed token.
        let mut seen: Vec<&str> = tokens.iter().map(|t| t.secret()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert!(
            seen.len() <= 2 && seen.iter().all(|t| *t == "t-old" || t.starts_with("t-ta-")),
            "{seen:?}"
        );
        // A second round within the claim's hold: nobody fetches again.
        for auth in &instances {
            let fetcher = Instance {
                auth,
                calls: &calls,
                tenant: tenant.clone(),
            };
            auth.scope(&tenant)
                .tokens
                .get(&fetcher, deadline())
                .await
                .unwrap();
        }
        assert_eq!(calls.paths().len(), 2);
    }

    #[tokio::test]
    async fn a_rejected_app_token_is_evicted_and_fetched_once_more() {
        let (store, _clock, auth, feishu) = setup();
        store.put_app_ticket(APP, "tk-1", T0).await.unwrap();
        feishu.good_tickets.lock().unwrap().push("tk-1".into());
        store
            .put_app_token(
                APP,
                &StoredTenantToken {
                    token: "a-revoked".into(),
                    expires_at: T0 + 7_200_000,
                },
            )
            .await
            .unwrap();
        feishu
            .rejected_app_tokens
            .lock()
            .unwrap()
            .push("a-revoked".into());
        auth.fetch_tenant_token(&feishu, "secret", &tenant("ta"), deadline())
            .await
            .unwrap();
        assert_eq!(
            feishu.paths(),
            [
                "tenant_access_token",
                "app_access_token",
                "tenant_access_token"
            ]
        );
        assert_ne!(
            store.get_app_token(APP).await.unwrap().unwrap().token,
            "a-revoked"
        );
    }

    #[test]
    fn app_type_reads_both_spellings_and_names_a_wrong_one() {
        assert_eq!(AppType::parse("self_built"), Ok(AppType::SelfBuilt));
        assert_eq!(AppType::parse(" Store "), Ok(AppType::Store));
        let err = AppType::parse("isv").unwrap_err();
        assert!(
            err.contains("\"isv\"") && err.contains("self_built or store"),
            "{err}"
        );
        assert_eq!(AppType::default(), AppType::SelfBuilt);
    }

    #[test]
    fn tenant_keys_are_checked_before_they_reach_a_key() {
        assert!(TenantKey::new("2ed263bf32cf1651").is_ok());
        for bad in ["", "a#b", "t/../x", "名字", &"a".repeat(65)] {
            assert!(TenantKey::new(bad).is_err(), "{bad}");
        }
    }

    fn v1(event: Value) -> OtherEvent {
        OtherEvent {
            schema: EventSchema::V1,
            event_type: event["type"].as_str().unwrap_or("").to_owned(),
            event_id: "uuid-1".into(),
            raw: json!({"uuid": "uuid-1", "type": "event_callback", "event": event}),
        }
    }

    #[test]
    fn an_app_ticket_event_is_read_and_never_printed() {
        let event = v1(json!({"app_id": "cli_1", "app_ticket": "tk-secret", "type": "app_ticket"}));
        let ticket = AppTicketEvent::from_event(&event).unwrap().unwrap();
        assert_eq!(ticket.app_id, "cli_1");
        assert_eq!(ticket.app_ticket, "tk-secret");
        assert!(!format!("{ticket:?}").contains("tk-secret"));
        let other = v1(json!({"app_id": "cli_1", "type": "app_open"}));
        assert!(AppTicketEvent::from_event(&other).is_none());
        let broken = v1(json!({"app_id": "cli_1", "type": "app_ticket"}));
        assert!(AppTicketEvent::from_event(&broken).unwrap().is_err());
    }
}
