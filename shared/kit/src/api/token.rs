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
const _: () = assert!(REFRESH_MARGIN_MS > 15 * 60 * 1000 && REFRESH_MARGIN_MS < 30 * 60 * 1000);

/// A stored token with more than this left is still used by an instance that lost the claim to
/// refresh it (a store app's tokens are refreshed by one instance at a time): 16 min, past the
/// longest Lambda run (15 min), so it never expires during an invocation.
pub const STILL_SAFE_MS: i64 = 16 * 60 * 1000;
const _: () = assert!(STILL_SAFE_MS > 15 * 60 * 1000 && STILL_SAFE_MS < REFRESH_MARGIN_MS);

/// How long one instance's claim to refresh a token holds off the others (it fetches within it;
/// past it another may try).
pub const REFRESH_HOLD_MS: i64 = 30 * 1000;

/// Wall-clock time in epoch milliseconds; injectable so tests control token expiry.
pub trait Clock: Send + Sync {
    /// The current time, in epoch milliseconds.
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
    /// Wraps a token value.
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
    /// The token (`t-…`).
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
    /// Fetches a new token within `deadline`; the call's [`FeishuError`] when it fails.
    async fn fetch_tenant_token(&self, deadline: Deadline)
        -> FeishuResult<TenantAccessTokenAnswer>;
}

/// Tenant token cache of one client instance; one fetch at a time.
pub struct TenantTokenProvider {
    app_id: String,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    /// A store app's: where instances claim the refresh of this token, one at a time.
    refresh_claims: Option<Arc<dyn crate::store::AppTicketStore>>,
    /// What the token is, for the log line of a fetch (`tenant_access_token`, `app_access_token`).
    name: &'static str,
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
    /// The provider of `app_id`, sharing tokens through `store`, with `clock` for their expiry.
    pub fn new(app_id: String, store: Arc<dyn TokenStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            app_id,
            store,
            clock,
            refresh_claims: None,
            name: "tenant_access_token",
            memory: Mutex::new(Memory::default()),
        }
    }

    /// Refreshes coordinated across instances through `claims` (a store app's tenant tokens): an
    /// instance that loses the claim goes on with the stored token while it has more than
    /// [`STILL_SAFE_MS`] left.
    pub fn with_refresh_claims(mut self, claims: Arc<dyn crate::store::AppTicketStore>) -> Self {
        self.refresh_claims = Some(claims);
        self
    }

    /// Names the token in the fetch's log line (a store app's `app_access_token`, kept by a
    /// provider of its own).
    pub fn naming(mut self, name: &'static str) -> Self {
        self.name = name;
        self
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
            Ok(Some(stored))
                if stored.expires_at - STILL_SAFE_MS > now
                    && memory.rejected.as_deref() != Some(stored.token.as_str()) =>
            {
                if let Some(claims) = &self.refresh_claims {
                    match claims
                        .claim_token_refresh(&self.app_id, now, REFRESH_HOLD_MS)
                        .await
                    {
                        // Another instance refreshes it: this one goes on with the stored token.
                        Ok(false) => return Ok(TenantAccessToken::new(stored.token)),
                        Ok(true) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot claim the token refresh"),
                    }
                }
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
        tracing::info!(
            expire_s = answer.expire,
            token = self.name,
            "fetched a token"
        );
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
    use std::sync::Mutex as StdMutex;
    use std::time::Duration;

    use super::*;
    use crate::store::{StoreError, StoreResult};

    const APP: &str = "cli_9f5343c580712544";
    const T0: EpochMillis = 1_732_233_600_000;

    /// Test-only TokenStore with the contract's semantics (later expiry wins, conditional evict).
    #[derive(Default)]
    struct TestTokenStore {
        items: StdMutex<HashMap<String, StoredTenantToken>>,
        fail_reads: std::sync::atomic::AtomicBool,
        evicts: AtomicU32,
    }

    #[async_trait]
    impl TokenStore for TestTokenStore {
        async fn get_tenant_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>> {
            if self.fail_reads.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("down".into()));
            }
            Ok(self.items.lock().unwrap().get(app_id).cloned())
        }
        async fn put_tenant_token(
            &self,
            app_id: &str,
            token: &StoredTenantToken,
        ) -> StoreResult<bool> {
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
            self.evicts.fetch_add(1, Ordering::SeqCst);
            let mut items = self.items.lock().unwrap();
            if items.get(app_id).is_some_and(|t| t.token == token) {
                items.remove(app_id);
            }
            Ok(())
        }
    }

    struct TestClock(AtomicI64);
    impl Clock for TestClock {
        fn now_millis(&self) -> EpochMillis {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// Hands out `t-1`, `t-2`, … with 7200 s each, slowly, counting fetches.
    #[derive(Default)]
    struct CountingFetcher {
        fetches: AtomicU32,
    }

    #[async_trait]
    impl FetchTenantToken for CountingFetcher {
        async fn fetch_tenant_token(&self, _: Deadline) -> FeishuResult<TenantAccessTokenAnswer> {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(TenantAccessTokenAnswer {
                tenant_access_token: format!("t-{n}"),
                expire: 7200,
            })
        }
    }

    fn setup() -> (
        Arc<TestTokenStore>,
        Arc<TestClock>,
        TenantTokenProvider,
        CountingFetcher,
    ) {
        let store = Arc::new(TestTokenStore::default());
        let clock = Arc::new(TestClock(AtomicI64::new(T0)));
        let provider = TenantTokenProvider::new(APP.into(), store.clone(), clock.clone());
        (store, clock, provider, CountingFetcher::default())
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    #[tokio::test]
    async fn fetches_once_then_serves_memory_and_writes_the_store() {
        let (store, _clock, provider, fetcher) = setup();
        assert_eq!(
            provider.get(&fetcher, deadline()).await.unwrap().secret(),
            "t-1"
        );
        assert_eq!(
            provider.get(&fetcher, deadline()).await.unwrap().secret(),
            "t-1"
        );
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
        let stored = store.items.lock().unwrap().get(APP).cloned().unwrap();
        // The store holds Feishu's expiry, without the margin.
        assert_eq!(
            stored,
            StoredTenantToken {
                token: "t-1".into(),
                expires_at: T0 + 7_200_000
            }
        );
    }

    #[tokio::test]
    async fn a_new_instance_takes_the_stored_token_without_fetching() {
        let (store, clock, _provider, fetcher) = setup();
        store.items.lock().unwrap().insert(
            APP.into(),
            StoredTenantToken {
                token: "t-shared".into(),
                expires_at: T0 + 3_600_000,
            },
        );
        let provider = TenantTokenProvider::new(APP.into(), store, clock);
        assert_eq!(
            provider.get(&fetcher, deadline()).await.unwrap().secret(),
            "t-shared"
        );
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn refreshes_when_less_than_the_margin_remains() {
        let (_store, clock, provider, fetcher) = setup();
        provider.get(&fetcher, deadline()).await.unwrap();
        // 1 ms before the margin starts: still the cached token.
        clock
            .0
            .store(T0 + 7_200_000 - REFRESH_MARGIN_MS - 1, Ordering::SeqCst);
        assert_eq!(
            provider.get(&fetcher, deadline()).await.unwrap().secret(),
            "t-1"
        );
        // Inside the margin: memory and store are both stale, so one fetch.
        clock
            .0
            .store(T0 + 7_200_000 - REFRESH_MARGIN_MS, Ordering::SeqCst);
        assert_eq!(
            provider.get(&fetcher, deadline()).await.unwrap().secret(),
            "t-2"
        );
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let (_store, _clock, provider, fetcher) = setup();
        let calls = (0..16).map(|_| provider.get(&fetcher, deadline()));
        let tokens = futures::future::join_all(calls).await;
        assert!(tokens.iter().all(|t| t.as_ref().unwrap().secret() == "t-1"));
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn evict_drops_both_copies_and_the_next_get_fetches() {
        let (store, _clock, provider, fetcher) = setup();
        let rejected = provider.get(&fetcher, deadline()).await.unwrap();
        provider.evict(&rejected).await;
        assert!(store.items.lock().unwrap().get(APP).is_none());
        assert_eq!(
            provider.get(&fetcher, deadline()).await.unwrap().secret(),
            "t-2"
        );
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn evict_of_an_already_replaced_token_keeps_the_new_one() {
        let (store, _clock, provider, fetcher) = setup();
        let old = provider.get(&fetcher, deadline()).await.unwrap();
        provider.evict(&old).await;
        let new = provider.get(&fetcher, deadline()).await.unwrap();
        // A second caller that also held the old token evicts it late.
        provider.evict(&old).await;
        assert_eq!(
            store.items.lock().unwrap().get(APP).unwrap().token,
            new.secret()
        );
        assert_eq!(
            provider.get(&fetcher, deadline()).await.unwrap().secret(),
            "t-2"
        );
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_rejected_token_is_not_taken_from_the_store_again() {
        let (store, _clock, provider, fetcher) = setup();
        store.items.lock().unwrap().insert(
            APP.into(),
            StoredTenantToken {
                token: "t-bad".into(),
                expires_at: T0 + 3_600_000,
            },
        );
        let bad = provider.get(&fetcher, deadline()).await.unwrap();
        assert_eq!(bad.secret(), "t-bad");
        // Simulate an evict whose store delete was lost: the item is still there.
        provider.evict(&bad).await;
        store.items.lock().unwrap().insert(
            APP.into(),
            StoredTenantToken {
                token: "t-bad".into(),
                expires_at: T0 + 3_600_000,
            },
        );
        assert_eq!(
            provider.get(&fetcher, deadline()).await.unwrap().secret(),
            "t-1"
        );
    }

    #[tokio::test]
    async fn a_failing_store_falls_back_to_fetching() {
        let (store, _clock, provider, fetcher) = setup();
        store.fail_reads.store(true, Ordering::SeqCst);
        assert_eq!(
            provider.get(&fetcher, deadline()).await.unwrap().secret(),
            "t-1"
        );
    }

    #[test]
    fn tokens_never_print() {
        let token = TenantAccessToken::new("t-caecc734c2e3328a62489fe0648c4b98779515d3");
        assert!(!format!("{token:?}").contains("caecc"));
    }
}
