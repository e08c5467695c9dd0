//! The tenant_access_token provider: in-memory copy, then the shared `TokenStore`, then Feishu.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::deadline::Deadline;
use super::error::{FeishuError, FeishuResult};
use super::request::{ApiRequest, Method};
use crate::store::{EpochMillis, StoredTenantToken, TokenStore};

/// A cached token is used only while more than this remains of it. 20 min: above 15 min (the
/// longest Lambda run), so a token taken from the cache never expires during an invocation; below
/// 30 min, because Feishu returns the *same* token while ≥ 30 min remain, so a larger margin would
/// find every fresh fetch already "stale" and refetch on every call.
pub const REFRESH_MARGIN_MS: i64 = 20 * 60 * 1000;

/// Wall-clock time in epoch milliseconds; injectable so tests control token expiry.
pub trait Clock: Send + Sync {
    fn now_millis(&self) -> EpochMillis;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> EpochMillis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as EpochMillis)
            .unwrap_or(0)
    }
}

/// A tenant_access_token (`t-…`), a secret: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct TenantAccessToken(String);

impl TenantAccessToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The bearer value; only for the Authorization header.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TenantAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TenantAccessToken(<redacted>)")
    }
}

/// The flat auth answer `{code, msg, tenant_access_token, expire}` (no `data` wrapper).
#[derive(Deserialize)]
pub struct TenantAccessTokenAnswer {
    pub tenant_access_token: String,
    /// Seconds from now.
    pub expire: i64,
}

impl fmt::Debug for TenantAccessTokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantAccessTokenAnswer")
            .field("tenant_access_token", &"<redacted>")
            .field("expire", &self.expire)
            .finish()
    }
}

impl TenantAccessTokenAnswer {
    /// Parses a whole success body (the auth answer is flat).
    pub fn parse(body: Value) -> FeishuResult<Self> {
        let answer: Self = serde_json::from_value(body).map_err(|e| {
            FeishuError::Transport(format!("unexpected tenant_access_token answer: {e}"))
        })?;
        if answer.tenant_access_token.is_empty() || answer.expire <= 0 {
            return Err(FeishuError::Transport(
                "tenant_access_token answer without a token or expiry".to_owned(),
            ));
        }
        Ok(answer)
    }
}

/// `POST /open-apis/auth/v3/tenant_access_token/internal` (self-built app); the body holds the secret.
pub fn tenant_access_token_request(app_id: &str, app_secret: &str) -> ApiRequest {
    ApiRequest::new(
        Method::Post,
        "/open-apis/auth/v3/tenant_access_token/internal".to_owned(),
        json!({ "app_id": app_id, "app_secret": app_secret }),
    )
}

/// Where a fresh token comes from (Feishu over HTTP; a counter in tests).
#[async_trait]
pub trait FetchTenantToken: Send + Sync {
    async fn fetch_tenant_token(&self, deadline: Deadline)
        -> FeishuResult<TenantAccessTokenAnswer>;
}

/// Tenant token cache of one client instance; one fetch at a time.
pub struct TenantTokenProvider {
    app_id: String,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    /// Held across the store read and the fetch, so concurrent callers wait for one fetch.
    memory: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    current: Option<StoredTenantToken>,
    /// The last token Feishu rejected: never taken from the store again, even if its evict failed.
    rejected: Option<String>,
}

impl fmt::Debug for TenantTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantTokenProvider")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl TenantTokenProvider {
    pub fn new(app_id: String, store: Arc<dyn TokenStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            app_id,
            store,
            clock,
            memory: Mutex::new(Memory::default()),
        }
    }

    fn usable(token: &StoredTenantToken, now: EpochMillis) -> bool {
        token.expires_at - REFRESH_MARGIN_MS > now
    }

    /// A token with more than the margin left: memory, else the store, else one fetch.
    pub async fn get(
        &self,
        fetcher: &dyn FetchTenantToken,
        deadline: Deadline,
    ) -> FeishuResult<TenantAccessToken> {
        let mut memory = tokio::time::timeout_at(deadline.instant(), self.memory.lock())
            .await
            .map_err(|_| FeishuError::DeadlineExceeded {
                attempts: 0,
                last: "waiting for another tenant token fetch".to_owned(),
            })?;
        let now = self.clock.now_millis();
        if let Some(token) = memory.current.as_ref().filter(|t| Self::usable(t, now)) {
            return Ok(TenantAccessToken::new(token.token.clone()));
        }
        match self.store.get_tenant_token(&self.app_id).await {
            Ok(Some(stored))
                if Self::usable(&stored, now)
                    && memory.rejected.as_deref() != Some(stored.token.as_str()) =>
            {
                let token = TenantAccessToken::new(stored.token.clone());
                memory.current = Some(stored);
                return Ok(token);
            }
            Ok(_) => {}
            // The store is a cache: when it fails, Feishu still answers.
            Err(e) => tracing::warn!(error = %e, "tenant token store read failed; fetching"),
        }
        let answer = fetcher.fetch_tenant_token(deadline).await?;
        let fetched_at = self.clock.now_millis();
        let stored = StoredTenantToken {
            token: answer.tenant_access_token,
            expires_at: fetched_at + answer.expire.saturating_mul(1000),
        };
        tracing::info!(expire_s = answer.expire, "fetched a tenant_access_token");
        if let Err(e) = self.store.put_tenant_token(&self.app_id, &stored).await {
            tracing::warn!(error = %e, "tenant token store write failed");
        }
        let token = TenantAccessToken::new(stored.token.clone());
        memory.current = Some(stored);
        Ok(token)
    }

    /// Drops `rejected` from memory and (conditionally on its value) from the store, so the next
    /// `get` fetches; a token another caller already replaced is left alone.
    pub async fn evict(&self, rejected: &TenantAccessToken) {
        {
            let mut memory = self.memory.lock().await;
            if memory
                .current
                .as_ref()
                .is_some_and(|t| t.token == rejected.secret())
            {
                memory.current = None;
            }
            memory.rejected = Some(rejected.secret().to_owned());
        }
        if let Err(e) = self
            .store
            .evict_tenant_token(&self.app_id, rejected.secret())
            .await
        {
            tracing::warn!(error = %e, "tenant token store evict failed");
        }
    }
}
