//! `FeishuClient`: the reqwest implementation of `FeishuApi`, with token refresh and bounded retries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;
use tokio::time::Instant;

use super::cardkit::{self, BatchUpdateAction, CardIdData, CardWrite, ElementPosition};
use super::contact::{self, ContactUser};
use super::deadline::Deadline;
use super::error::{FeishuError, FeishuResult};
use super::im::{self, MessageContent, ReceiveId, SentMessage};
use super::limiter::{CallBudget, NoPermit};
use super::request::{
    classify_answer, parse_data, AnswerOutcome, ApiRequest, Method, LOG_ID_HEADER,
    MAX_RATE_LIMIT_RESET, RATE_LIMIT_RESET_HEADER,
};
use super::request_uuid::RequestUuid;
use super::store_app::{AuthCalls, StoreAppAuth, TenantKey, TenantScope};
use super::token::{
    tenant_access_token_request, Clock, FetchTenantToken, SystemClock, TenantAccessToken,
    TenantAccessTokenAnswer,
};
use super::FeishuApi;
use crate::config::FeishuConfig;
use crate::store::{AppTicketStore, RateStore, TokenStore};

/// Feishu (China).
pub const FEISHU_BASE_URL: &str = "https://open.feishu.cn";
/// Lark (international).
pub const LARK_BASE_URL: &str = "https://open.larksuite.com";

/// Where and as whom the client calls. `app_secret` never prints.
#[derive(Clone)]
pub struct FeishuClientConfig {
    /// `https://open.feishu.cn`, `https://open.larksuite.com`, or the simulator.
    pub base_url: String,
    /// The app's `app_id`.
    pub app_id: String,
    /// The app secret, exchanged for the tenant_access_token; never printed.
    pub app_secret: String,
}

impl From<&FeishuConfig> for FeishuClientConfig {
    fn from(app: &FeishuConfig) -> Self {
        Self {
            base_url: app.base_url.clone(),
            app_id: app.app_id.clone(),
            app_secret: app.app_secret.expose().to_owned(),
        }
    }
}

impl fmt::Debug for FeishuClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeishuClientConfig")
            .field("base_url", &self.base_url)
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .finish()
    }
}

/// How hard one call tries; every wait is also bounded by the caller's `Deadline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included (rate-limit and 5xx/transport retries alike).
    pub max_attempts: u32,
    /// First backoff after a 5xx or transport failure; doubles per attempt, with jitter.
    pub base_backoff: Duration,
    /// The longest backoff between attempts.
    pub max_backoff: Duration,
    /// Timeout of one HTTP attempt (cut to the deadline).
    pub attempt_timeout: Duration,
    /// Timeout of opening a connection.
    pub connect_timeout: Duration,
    /// An attempt is not started with less than this left before the deadline.
    pub min_attempt_window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            min_attempt_window: Duration::from_millis(50),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff for retry number `retry` (0-based), jittered to 50–100 %.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_backoff
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.max_backoff);
        exp.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }

    /// Wait after a rate limit: at least Feishu's reset, clamped to [`MAX_RATE_LIMIT_RESET`] (plus
    /// up to 10 % so instances spread out), else the backoff.
    pub fn rate_limit_wait(&self, retry_after: Option<Duration>, retry: u32) -> Duration {
        match retry_after {
            Some(reset) if !reset.is_zero() => {
                let reset = reset.min(MAX_RATE_LIMIT_RESET);
                reset.saturating_add(reset.mul_f64(rand::thread_rng().gen_range(0.0..=0.1)))
            }
            _ => self.backoff(retry).max(self.base_backoff),
        }
    }
}

/// Builds a [`FeishuClient`].
pub struct FeishuClientBuilder {
    config: FeishuClientConfig,
    token_store: Arc<dyn TokenStore>,
    rate_store: Arc<dyn RateStore>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    /// A store app's tickets and app token; `None` for a self-built app.
    store_app: Option<Arc<dyn AppTicketStore>>,
}

impl FeishuClientBuilder {
    /// Makes the client a store app's (商店应用, `FEISHU_APP_TYPE=store`): tokens come from the
    /// `app_ticket`s kept in `tickets` ([`super::store_app`]), one tenant token per `tenant_key`,
    /// and every API call needs a tenant ([`FeishuClient::for_tenant`]).
    pub fn store_app(mut self, tickets: Arc<dyn AppTicketStore>) -> Self {
        self.store_app = Some(tickets);
        self
    }

    /// Replaces the default retry policy.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Replaces the system clock used for token expiry.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the one reqwest client; fails only if the TLS stack cannot start.
    pub fn build(self) -> FeishuResult<FeishuClient> {
        let http = reqwest::Client::builder()
            .connect_timeout(self.retry.connect_timeout)
            .read_timeout(self.retry.attempt_timeout)
            // A frozen Lambda's pooled connections may be dead when it thaws; keep them short-lived.
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("cardbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FeishuError::Transport(format!("cannot build the HTTP client: {e}")))?;
        let base_url: Arc<str> = Arc::from(self.config.base_url.trim_end_matches('/'));
        let store_app = self.store_app.map(|tickets| {
            Arc::new(StoreAppAuth::new(
                self.config.app_id.clone(),
                tickets,
                self.token_store.clone(),
                self.rate_store.clone(),
                self.clock.clone(),
            ))
        });
        // A self-built app's one tenant is keyed by the app id alone (the keys of every earlier
        // version); a store app's root client has no tenant and refuses API calls.
        let scope = Arc::new(TenantScope::new(
            self.config.app_id.clone(),
            self.token_store.clone(),
            self.rate_store,
            self.clock,
            None,
        ));
        Ok(FeishuClient {
            http,
            base_url,
            scope,
            store_app,
            tenant: None,
            token_store: self.token_store,
            app_id: Arc::from(self.config.app_id),
            app_secret: Arc::from(self.config.app_secret),
            retry: self.retry,
        })
    }
}

/// The Feishu Open API client. Build once per Lambda container and share it (`Arc`); a store
/// app's client is a root from which [`FeishuClient::for_tenant`] makes each tenant's (cheap, and
/// sharing the root's caches).
#[derive(Clone)]
pub struct FeishuClient {
    http: reqwest::Client,
    /// Shared by every tenant's client of a store app (cloned per request).
    base_url: Arc<str>,
    app_id: Arc<str>,
    app_secret: Arc<str>,
    retry: RetryPolicy,
    /// The tenant's token cache, pacer, app-wide limits (shared with every other instance through
    /// the table) and bot open_id: a self-built app's one tenant, or a store app's `tenant`.
    scope: Arc<TenantScope>,
    /// A store app's shared credentials; `None` for a self-built app.
    store_app: Option<Arc<StoreAppAuth>>,
    /// The tenant a store app's client calls for; `None` for a self-built app and a store app's root.
    tenant: Option<TenantKey>,
    /// Where the bot's open_id is kept for every instance (beside the tenant token).
    token_store: Arc<dyn TokenStore>,
}

impl fmt::Debug for FeishuClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeishuClient")
            .field("base_url", &self.base_url)
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl FeishuClient {
    /// A client with the default retry policy and the system clock, keeping the tenant token and
    /// the app-wide rate limit in `store`.
    pub fn new<S>(config: FeishuClientConfig, store: Arc<S>) -> FeishuResult<Self>
    where
        S: TokenStore + RateStore + 'static,
    {
        Self::builder(config, store).build()
    }

    /// A builder for a non-default retry policy or clock.
    pub fn builder<S>(config: FeishuClientConfig, store: Arc<S>) -> FeishuClientBuilder
    where
        S: TokenStore + RateStore + 'static,
    {
        FeishuClientBuilder {
            config,
            token_store: store.clone(),
            rate_store: store,
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
            store_app: None,
        }
    }

    /// The client of `tenant` (a store app's tenant, from the event or callback header): its own
    /// tenant token, rate limits and bot open_id, sharing the root's HTTP client and caches. A
    /// self-built app serves one tenant: its client is answered as it is.
    pub fn for_tenant(&self, tenant: &TenantKey) -> Self {
        match &self.store_app {
            None => self.clone(),
            Some(store_app) => Self {
                scope: store_app.scope(tenant),
                tenant: Some(tenant.clone()),
                ..self.clone()
            },
        }
    }

    /// The tenant this client calls for (a store app's, after [`Self::for_tenant`]).
    pub fn tenant(&self) -> Option<&TenantKey> {
        self.tenant.as_ref()
    }

    /// A store app: asks Feishu to push an `app_ticket` unless an instance did within the last
    /// minute (the deploy's first step, and what a call without a ticket does itself); answers
    /// whether this call asked. A self-built app has no ticket: `false`.
    pub async fn request_app_ticket(&self, deadline: Deadline) -> bool {
        match &self.store_app {
            Some(store_app) => {
                store_app
                    .ask_for_ticket(self, &self.app_secret, deadline)
                    .await
            }
            None => false,
        }
    }

    /// A tenant token (memory, store, or a fetch); mostly for diagnostics and tests.
    pub async fn tenant_access_token(&self, deadline: Deadline) -> FeishuResult<TenantAccessToken> {
        self.check_tenant()?;
        self.scope.tokens.get(self, deadline).await
    }

    /// A store app's root has no tenant to call for.
    fn check_tenant(&self) -> FeishuResult<()> {
        if self.store_app.is_some() && self.tenant.is_none() {
            return Err(FeishuError::InvalidRequest(
                "a store app's call needs a tenant: use FeishuClient::for_tenant(tenant_key)"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// Calls an API with the tenant token; on an invalid-token answer evicts, refetches and
    /// retries once.
    async fn call<T: DeserializeOwned>(
        &self,
        request: &ApiRequest,
        deadline: Deadline,
    ) -> FeishuResult<T> {
        self.call_in(request, None, deadline).await
    }

    /// [`Self::call`] for a message send or reply, which also takes a permit of `chat`'s 5/s.
    async fn call_in<T: DeserializeOwned>(
        &self,
        request: &ApiRequest,
        chat: Option<&str>,
        deadline: Deadline,
    ) -> FeishuResult<T> {
        parse_data(self.call_body(request, chat, deadline).await?)
    }

    /// [`Self::call_in`], answering the whole success body (an answer without `data`, such as
    /// `bot/v3/info`'s `bot`).
    async fn call_body(
        &self,
        request: &ApiRequest,
        chat: Option<&str>,
        deadline: Deadline,
    ) -> FeishuResult<serde_json::Value> {
        let mut refetched = false;
        let budget = CallBudget {
            api: request.api_name(),
            chat,
        };
        self.check_tenant()?;
        loop {
            let token = self.scope.tokens.get(self, deadline).await?;
            match self
                .execute(request, Some((&token, budget)), deadline)
                .await
            {
                Err(FeishuError::InvalidToken { code, log_id }) if !refetched => {
                    tracing::warn!(code, ?log_id, path = %request.path, "tenant token rejected; refetching once");
                    self.scope.tokens.evict(&token).await;
                    refetched = true;
                }
                Err(e) => return Err(e),
                Ok(body) => return Ok(body),
            }
        }
    }

    /// Sends `request` until success, a final error, the attempt limit, or the deadline. An API
    /// call (with a token) takes a slot of the local pacer and a permit of the app-wide limits
    /// on every attempt; the token fetch has limits of its own and takes neither.
    async fn execute(
        &self,
        request: &ApiRequest,
        api: Option<(&TenantAccessToken, CallBudget<'_>)>,
        deadline: Deadline,
    ) -> FeishuResult<Value> {
        let token = api.map(|(token, _)| token);
        let mut attempts = 0u32;
        loop {
            let timeout = deadline.attempt_timeout_at(Instant::now(), self.retry.attempt_timeout);
            if timeout < self.retry.min_attempt_window {
                return Err(FeishuError::DeadlineExceeded {
                    attempts,
                    last: "no time left for an attempt".to_owned(),
                });
            }
            if let Some((_, budget)) = api {
                // Every API call, retries included, takes a slot of the app's rate.
                // Waiting for a slot or a refused permit stops at the rate wait (an event answer's
                // is short); the limiter's round trip itself may use the whole deadline.
                let window = self.retry.min_attempt_window;
                let wait_until = deadline.rate_wait_until(Instant::now(), window);
                if !matches!(wait_until, Some(until) if self.scope.pacer.acquire(until).await) {
                    return Err(FeishuError::DeadlineExceeded {
                        attempts,
                        last: "no slot of the app's request rate before the deadline".to_owned(),
                    });
                }
                let latest = deadline
                    .instant()
                    .checked_sub(window)
                    .unwrap_or_else(Instant::now);
                let wait_until = wait_until.unwrap_or(latest);
                let asked = Instant::now();
                let permit = self
                    .scope
                    .limiter
                    .acquire_within(budget, latest, wait_until)
                    .await;
                crate::metrics::limiter_wait(asked.elapsed());
                if let Err(NoPermit { retry_after }) = permit {
                    tracing::warn!(
                        api = budget.api,
                        retry_after_ms = retry_after.as_millis() as u64,
                        "no app-wide rate permit before the deadline"
                    );
                    return Err(FeishuError::NoPermit { retry_after });
                }
            }
            let timeout = deadline.attempt_timeout_at(Instant::now(), self.retry.attempt_timeout);
            attempts += 1;
            let outcome = self.attempt(request, token, timeout).await;
            match &outcome {
                AnswerOutcome::Success(_) => {}
                AnswerOutcome::RateLimited(error) => {
                    crate::metrics::rate_limited();
                    if let Some(code) = error.code() {
                        crate::metrics::feishu_error(code);
                    }
                }
                AnswerOutcome::Failed(error) | AnswerOutcome::Transient(error) => {
                    if let Some(code) = error.code() {
                        crate::metrics::feishu_error(code);
                    }
                }
            }
            let (error, wait) = match outcome {
                AnswerOutcome::Success(body) => return Ok(body),
                AnswerOutcome::Failed(error) => return Err(error),
                AnswerOutcome::RateLimited(error) => {
                    let wait = self
                        .retry
                        .rate_limit_wait(error.retry_after(), attempts - 1);
                    (error, wait)
                }
                AnswerOutcome::Transient(error) => (error, self.retry.backoff(attempts - 1)),
            };
            tracing::warn!(path = %request.path, attempts, error = %error, wait_ms = wait.as_millis() as u64, "Feishu call failed; may retry");
            if attempts >= self.retry.max_attempts {
                return Err(error);
            }
            if !deadline.allows_wait_at(Instant::now(), wait, self.retry.min_attempt_window) {
                // The rate-limit error tells the caller when to come back; others become the deadline.
                return Err(match error {
                    FeishuError::RateLimited { .. } => error,
                    other => FeishuError::DeadlineExceeded {
                        attempts,
                        last: other.to_string(),
                    },
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP exchange, classified.
    async fn attempt(
        &self,
        request: &ApiRequest,
        token: Option<&TenantAccessToken>,
        timeout: Duration,
    ) -> AnswerOutcome {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self
            .http
            .request(method, format!("{}{}", self.base_url, request.path))
            .timeout(timeout);
        if let Some(token) = token {
            builder = builder.bearer_auth(token.secret());
        }
        if let Some(body) = &request.body {
            builder = builder
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                )
                .body(body.to_string());
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => return AnswerOutcome::Transient(transport_error(&e)),
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let log_id = header(LOG_ID_HEADER);
        let reset = header(RATE_LIMIT_RESET_HEADER);
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => return AnswerOutcome::Transient(transport_error(&e)),
        };
        let outcome = classify_answer(status, log_id.clone(), reset.as_deref(), &body);
        tracing::debug!(method = ?request.method, path = %request.path, status, ?log_id, ok = matches!(outcome, AnswerOutcome::Success(_)), "Feishu answered");
        outcome
    }
}

/// Describes a reqwest failure without its URL's query (no secrets are in URLs, but keep it short).
fn transport_error(error: &reqwest::Error) -> FeishuError {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    };
    let path = error.url().map(|u| u.path().to_owned()).unwrap_or_default();
    FeishuError::Transport(format!("{kind} error on {path}: {error}"))
}

#[async_trait]
impl FetchTenantToken for FeishuClient {
    async fn fetch_tenant_token(
        &self,
        deadline: Deadline,
    ) -> FeishuResult<TenantAccessTokenAnswer> {
        match (&self.store_app, &self.tenant) {
            (Some(store_app), Some(tenant)) => {
                store_app
                    .fetch_tenant_token(self, &self.app_secret, tenant, deadline)
                    .await
            }
            (Some(_), None) => Err(FeishuError::InvalidRequest(
                "a store app's tenant token needs a tenant_key".to_owned(),
            )),
            (None, _) => {
                let request = tenant_access_token_request(&self.app_id, &self.app_secret);
                let body = self.execute(&request, None, deadline).await?;
                TenantAccessTokenAnswer::parse(body)
            }
        }
    }
}

#[async_trait]
impl AuthCalls for FeishuClient {
    async fn send_auth(&self, request: &ApiRequest, deadline: Deadline) -> FeishuResult<Value> {
        self.execute(request, None, deadline).await
    }
}

#[async_trait]
impl FeishuApi for FeishuClient {
    fn tenant_client(&self, tenant: &TenantKey) -> Option<Arc<dyn FeishuApi>> {
        self.store_app
            .as_ref()
            .map(|_| Arc::new(self.for_tenant(tenant)) as Arc<dyn FeishuApi>)
    }

    async fn urgent_app(
        &self,
        message_id: &str,
        open_ids: &[String],
        deadline: Deadline,
    ) -> FeishuResult<()> {
        let request = im::urgent_app(message_id, open_ids)?;
        let _: IgnoredAny = self.call(&request, deadline).await?;
        Ok(())
    }

    async fn bot_open_id(&self, deadline: Deadline) -> FeishuResult<String> {
        let open_id = self
            .scope
            .bot_open_id
            .get_or_try_init(|| async {
                // The table first (one read), so only the first instance ever asks Feishu.
                match self.token_store.get_bot_open_id(&self.scope.owner).await {
                    Ok(Some(open_id)) => return Ok(open_id),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read the bot's open_id"),
                }
                let body = self.call_body(&contact::bot_info(), None, deadline).await?;
                let bot = contact::BotInfo::from_body(body)?;
                if let Err(e) = self
                    .token_store
                    .put_bot_open_id(&self.scope.owner, &bot.open_id)
                    .await
                {
                    tracing::warn!(error = %e, "cannot keep the bot's open_id");
                }
                Ok::<_, FeishuError>(bot.open_id)
            })
            .await?;
        Ok(open_id.clone())
    }

    async fn get_user(&self, open_id: &str, deadline: Deadline) -> FeishuResult<ContactUser> {
        let request = contact::get_user(open_id)?;
        let data: contact::UserData = self.call(&request, deadline).await?;
        Ok(data.user)
    }

    async fn department_users(
        &self,
        department_id: &str,
        page_size: u32,
        deadline: Deadline,
    ) -> FeishuResult<Vec<ContactUser>> {
        let request = contact::find_by_department(department_id, page_size)?;
        let data: contact::DepartmentUsers = self.call(&request, deadline).await?;
        Ok(data.items)
    }

    async fn send_message(
        &self,
        receiver: &ReceiveId,
        content: &MessageContent,
        idempotency_key: &str,
        deadline: Deadline,
    ) -> FeishuResult<SentMessage> {
        let uuid = RequestUuid::derive(idempotency_key);
        let chat = match receiver {
            ReceiveId::ChatId(chat_id) => chat_id.clone(),
            other => format!("{}:{}", other.id_type(), other.id()),
        };
        let request = im::send_message(receiver, content, &uuid)?;
        self.call_in(&request, Some(&chat), deadline).await
    }

    async fn reply_message(
        &self,
        message_id: &str,
        content: &MessageContent,
        reply_in_thread: bool,
        idempotency_key: &str,
        deadline: Deadline,
    ) -> FeishuResult<SentMessage> {
        // Without the chat, replies to one message share a budget (a part of their chat's).
        let chat = format!("message:{message_id}");
        self.reply_message_in_chat(
            &chat,
            message_id,
            content,
            reply_in_thread,
            idempotency_key,
            deadline,
        )
        .await
    }

    async fn reply_message_in_chat(
        &self,
        chat_id: &str,
        message_id: &str,
        content: &MessageContent,
        reply_in_thread: bool,
        idempotency_key: &str,
        deadline: Deadline,
    ) -> FeishuResult<SentMessage> {
        let uuid = RequestUuid::derive(idempotency_key);
        let request = im::reply_message(message_id, content, reply_in_thread, &uuid)?;
        self.call_in(&request, Some(chat_id), deadline).await
    }

    async fn patch_message_card(
        &self,
        message_id: &str,
        card: &Value,
        deadline: Deadline,
    ) -> FeishuResult<()> {
        let request = im::patch_message_card(message_id, card)?;
        self.call::<IgnoredAny>(&request, deadline).await.map(drop)
    }

    async fn delayed_update_card(
        &self,
        update_token: &str,
        card: &Value,
        deadline: Deadline,
    ) -> FeishuResult<()> {
        let request = im::delayed_update_card(update_token, card);
        self.call::<IgnoredAny>(&request, deadline).await.map(drop)
    }

    async fn create_card(&self, card: &Value, deadline: Deadline) -> FeishuResult<String> {
        let data: CardIdData = self.call(&cardkit::create_card(card)?, deadline).await?;
        Ok(data.card_id)
    }

    async fn update_card(
        &self,
        card_id: &str,
        card: &Value,
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()> {
        let request = cardkit::update_card(card_id, card, write)?;
        self.call::<IgnoredAny>(&request, deadline).await.map(drop)
    }

    async fn update_card_settings(
        &self,
        card_id: &str,
        settings: &Value,
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()> {
        let request = cardkit::update_card_settings(card_id, settings, write)?;
        self.call::<IgnoredAny>(&request, deadline).await.map(drop)
    }

    async fn batch_update_card(
        &self,
        card_id: &str,
        actions: &[BatchUpdateAction],
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()> {
        let request = cardkit::batch_update_card(card_id, actions, write)?;
        self.call::<IgnoredAny>(&request, deadline).await.map(drop)
    }

    async fn add_card_elements(
        &self,
        card_id: &str,
        position: &ElementPosition,
        elements: &[Value],
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()> {
        let request = cardkit::add_card_elements(card_id, position, elements, write)?;
        self.call::<IgnoredAny>(&request, deadline).await.map(drop)
    }

    async fn update_card_element(
        &self,
        card_id: &str,
        element_id: &str,
        element: &Value,
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()> {
        let request = cardkit::update_card_element(card_id, element_id, element, write)?;
        self.call::<IgnoredAny>(&request, deadline).await.map(drop)
    }

    async fn patch_card_element(
        &self,
        card_id: &str,
        element_id: &str,
        partial_element: &Value,
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()> {
        let request = cardkit::patch_card_element(card_id, element_id, partial_element, write)?;
        self.call::<IgnoredAny>(&request, deadline).await.map(drop)
    }

    async fn stream_card_element_text(
        &self,
        card_id: &str,
        element_id: &str,
        content: &str,
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()> {
        let request = cardkit::stream_card_element_text(card_id, element_id, content, write)?;
        self.call::<IgnoredAny>(&request, deadline).await.map(drop)
    }

    async fn delete_card_element(
        &self,
        card_id: &str,
        element_id: &str,
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()> {
        let request = cardkit::delete_card_element(card_id, element_id, write)?;
        self.call::<IgnoredAny>(&request, deadline).await.map(drop)
    }

    async fn convert_message_to_card_id(
        &self,
        message_id: &str,
        deadline: Deadline,
    ) -> FeishuResult<String> {
        let data: CardIdData = self
            .call(&cardkit::convert_message_id(message_id)?, deadline)
            .await?;
        Ok(data.card_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy::default();
        for retry in 0..20 {
            let exp = policy
                .base_backoff
                .saturating_mul(2u32.saturating_pow(retry.min(16)))
                .min(policy.max_backoff);
            for _ in 0..50 {
                let wait = policy.backoff(retry);
                assert!(wait >= exp / 2 && wait <= exp, "retry {retry}: {wait:?}");
            }
        }
        assert!(policy.backoff(30) <= policy.max_backoff);
    }

    #[test]
    fn rate_limit_wait_is_at_least_the_reset() {
        let policy = RetryPolicy::default();
        for _ in 0..100 {
            let wait = policy.rate_limit_wait(Some(Duration::from_secs(1)), 0);
            assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_millis(1100));
        }
        assert!(policy.rate_limit_wait(None, 0) >= policy.base_backoff);
        assert!(policy.rate_limit_wait(Some(Duration::ZERO), 3) >= policy.base_backoff);
    }

    #[test]
    fn debug_never_shows_the_app_secret() {
        let config = FeishuClientConfig {
            base_url: FEISHU_BASE_URL.into(),
            app_id: "cli_9f5343c580712544".into(),
            app_secret: "dskLLdkasdjlasdKK".into(),
        };
        assert!(!format!("{config:?}").contains("dskLL"));
    }
}
