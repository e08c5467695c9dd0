//! A store that makes its caller die at a chosen point: after the named call completes (its write
//! is in the table), the call panics, which ends the handler's task and its connection without an
//! answer, as when a Lambda aborts on a panic, runs out of memory or times out right there. The rest
//! of the world (the table, the simulator) goes on.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cardbot::store::{
    CardState, CardStore, DedupClaim, DedupStore, EpochMillis, FailOutcome, Job, JobStore, NewJob,
    PermitRequest, PermitTake, RateScope, RateStore, StoreResult, StoredTenantToken, TokenStore,
};

/// A store call after which the caller can be made to hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangPoint {
    /// After a dedup claim that is the caller's.
    Claim,
    /// After a reply's CardKit entity was created and kept, before the card is sent.
    KeepReplyEntity,
    /// After a click's state write and job enqueue (one transaction).
    UpdateCardAndEnqueue,
}

/// Wraps a store; [`HangAfter::arm`] makes the next call at a point die, once.
pub struct HangAfter<S> {
    pub inner: Arc<S>,
    armed: Mutex<Option<HangPoint>>,
}

impl<S> HangAfter<S> {
    pub fn new(inner: Arc<S>) -> Self {
        Self {
            inner,
            armed: Mutex::new(None),
        }
    }

    /// The next call at `point` completes in the table, then its caller dies.
    pub fn arm(&self, point: HangPoint) {
        *self.armed.lock().unwrap() = Some(point);
    }

    /// Whether the armed point was reached (the crash happened).
    pub fn fired(&self) -> bool {
        self.armed.lock().unwrap().is_none()
    }

    async fn maybe_hang(&self, point: HangPoint) {
        let hang = {
            let mut armed = self.armed.lock().unwrap();
            if *armed == Some(point) {
                *armed = None;
                true
            } else {
                false
            }
        };
        if hang {
            // Not a pending future: a handler's own answer timeout would answer for it.
            panic!("simulated crash after {point:?}");
        }
    }
}

#[async_trait]
impl<S: DedupStore> DedupStore for HangAfter<S> {
    async fn claim(
        &self,
        key: &str,
        now: EpochMillis,
        lease_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<DedupClaim> {
        let claim = self.inner.claim(key, now, lease_ms, ttl_ms).await?;
        if claim.is_ours() {
            self.maybe_hang(HangPoint::Claim).await;
        }
        Ok(claim)
    }

    async fn finish(&self, key: &str, now: EpochMillis) -> StoreResult<()> {
        self.inner.finish(key, now).await
    }

    async fn keep_reply_entity(&self, key: &str, card_id: &str) -> StoreResult<String> {
        let kept = self.inner.keep_reply_entity(key, card_id).await?;
        self.maybe_hang(HangPoint::KeepReplyEntity).await;
        Ok(kept)
    }

    async fn release(&self, key: &str) -> StoreResult<()> {
        self.inner.release(key).await
    }
}

#[async_trait]
impl<S: TokenStore> TokenStore for HangAfter<S> {
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
impl<S: CardStore> CardStore for HangAfter<S> {
    async fn create_card(&self, state: &CardState) -> StoreResult<CardState> {
        self.inner.create_card(state).await
    }

    async fn get_card(&self, card_key: &str) -> StoreResult<Option<CardState>> {
        self.inner.get_card(card_key).await
    }

    async fn update_card(&self, state: &CardState) -> StoreResult<CardState> {
        self.inner.update_card(state).await
    }

    async fn next_sequences(&self, card_key: &str, count: u32) -> StoreResult<i32> {
        self.inner.next_sequences(card_key, count).await
    }

    async fn create_card_with_jobs(
        &self,
        state: &CardState,
        jobs: &[NewJob],
    ) -> StoreResult<CardState> {
        self.inner.create_card_with_jobs(state, jobs).await
    }

    async fn update_card_and_enqueue(
        &self,
        state: &CardState,
        job: &NewJob,
    ) -> StoreResult<CardState> {
        let written = self.inner.update_card_and_enqueue(state, job).await?;
        self.maybe_hang(HangPoint::UpdateCardAndEnqueue).await;
        Ok(written)
    }
}

#[async_trait]
impl<S: JobStore> JobStore for HangAfter<S> {
    async fn enqueue(&self, job: &NewJob) -> StoreResult<()> {
        self.inner.enqueue(job).await
    }

    async fn enqueue_finishing(
        &self,
        job: &NewJob,
        dedup_key: &str,
        now: EpochMillis,
    ) -> StoreResult<()> {
        self.inner.enqueue_finishing(job, dedup_key, now).await
    }

    async fn get_job(&self, card_key: &str, job_id: &str) -> StoreResult<Option<Job>> {
        self.inner.get_job(card_key, job_id).await
    }

    async fn jobs_for_card(&self, card_key: &str) -> StoreResult<Vec<Job>> {
        self.inner.jobs_for_card(card_key).await
    }

    async fn due_jobs(&self, now: EpochMillis, limit: usize) -> StoreResult<Vec<Job>> {
        self.inner.due_jobs(now, limit).await
    }

    async fn claim_job(
        &self,
        card_key: &str,
        job_id: &str,
        owner: &str,
        now: EpochMillis,
        lease_ms: i64,
    ) -> StoreResult<Option<Job>> {
        self.inner
            .claim_job(card_key, job_id, owner, now, lease_ms)
            .await
    }

    async fn complete_job(&self, job: &Job, now: EpochMillis) -> StoreResult<()> {
        self.inner.complete_job(job, now).await
    }

    async fn fail_job(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<EpochMillis>,
        now: EpochMillis,
    ) -> StoreResult<FailOutcome> {
        self.inner.fail_job(job, error, retry_at, now).await
    }

    async fn fail_job_permanently(
        &self,
        job: &Job,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<()> {
        self.inner.fail_job_permanently(job, error, now).await
    }
}

#[async_trait]
impl<S: RateStore> RateStore for HangAfter<S> {
    async fn take_permits(
        &self,
        app_id: &str,
        scope: &RateScope,
        requests: &[PermitRequest],
        now: EpochMillis,
    ) -> StoreResult<PermitTake> {
        self.inner.take_permits(app_id, scope, requests, now).await
    }
}
