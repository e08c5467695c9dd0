//! A store wrapper that counts every DynamoDB round trip per method, so a flow's cost is a number.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use cardbot::store::{
    CardState, CardStore, DedupClaim, DedupStore, EpochMillis, FailOutcome, Job, JobStore, NewJob,
    PermitRequest, PermitTake, RateScope, RateStore, StoreResult, StoredTenantToken, TokenStore,
};

/// Every store method; each is one DynamoDB request in `DynamoStore` (a transaction counts once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StoreCall {
    Claim,
    Release,
    Finish,
    KeepReplyEntity,
    GetTenantToken,
    PutTenantToken,
    EvictTenantToken,
    CreateCard,
    GetCard,
    UpdateCard,
    NextSequence,
    CreateCardWithJobs,
    UpdateCardAndEnqueue,
    Enqueue,
    EnqueueFinishing,
    GetJob,
    JobsForCard,
    DueJobs,
    ClaimJob,
    CompleteJob,
    FailJob,
    FailJobPermanently,
    TakePermits,
}

const ALL: [StoreCall; 23] = [
    StoreCall::Claim,
    StoreCall::Release,
    StoreCall::Finish,
    StoreCall::KeepReplyEntity,
    StoreCall::GetTenantToken,
    StoreCall::PutTenantToken,
    StoreCall::EvictTenantToken,
    StoreCall::CreateCard,
    StoreCall::GetCard,
    StoreCall::UpdateCard,
    StoreCall::NextSequence,
    StoreCall::CreateCardWithJobs,
    StoreCall::UpdateCardAndEnqueue,
    StoreCall::Enqueue,
    StoreCall::EnqueueFinishing,
    StoreCall::GetJob,
    StoreCall::JobsForCard,
    StoreCall::DueJobs,
    StoreCall::ClaimJob,
    StoreCall::CompleteJob,
    StoreCall::FailJob,
    StoreCall::FailJobPermanently,
    StoreCall::TakePermits,
];

impl StoreCall {
    pub fn name(self) -> &'static str {
        match self {
            Self::Claim => "dedup.claim",
            Self::Release => "dedup.release",
            Self::Finish => "dedup.finish",
            Self::KeepReplyEntity => "dedup.keep_reply_entity",
            Self::GetTenantToken => "token.get",
            Self::PutTenantToken => "token.put",
            Self::EvictTenantToken => "token.evict",
            Self::CreateCard => "card.create",
            Self::GetCard => "card.get",
            Self::UpdateCard => "card.update",
            Self::NextSequence => "card.next_sequences",
            Self::CreateCardWithJobs => "card.create_with_jobs",
            Self::UpdateCardAndEnqueue => "card.update_and_enqueue",
            Self::Enqueue => "job.enqueue",
            Self::EnqueueFinishing => "job.enqueue_finishing",
            Self::GetJob => "job.get",
            Self::JobsForCard => "job.for_card",
            Self::DueJobs => "job.due",
            Self::ClaimJob => "job.claim",
            Self::CompleteJob => "job.complete",
            Self::FailJob => "job.fail",
            Self::FailJobPermanently => "job.fail_permanently",
            Self::TakePermits => "rate.take",
        }
    }
}

/// Calls per method since the last [`CountingStore::take`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreCounts(pub BTreeMap<&'static str, u64>);

impl StoreCounts {
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn get(&self, call: StoreCall) -> u64 {
        self.0.get(call.name()).copied().unwrap_or(0)
    }

    /// `card.get=1 dedup.claim=1`, for the report.
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Wraps any store and counts its calls; otherwise transparent.
pub struct CountingStore<S> {
    inner: S,
    counts: [AtomicU64; ALL.len()],
}

impl<S> CountingStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn count(&self, call: StoreCall) {
        self.counts[call as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far, without resetting them.
    pub fn counts(&self) -> StoreCounts {
        StoreCounts(
            ALL.iter()
                .filter_map(|&c| {
                    let n = self.counts[c as usize].load(Ordering::Relaxed);
                    (n > 0).then_some((c.name(), n))
                })
                .collect(),
        )
    }

    /// The counts so far, resetting them to zero.
    pub fn take(&self) -> StoreCounts {
        let counts = self.counts();
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
        counts
    }
}

#[async_trait]
impl<S: DedupStore> DedupStore for CountingStore<S> {
    async fn claim(
        &self,
        key: &str,
        now: EpochMillis,
        lease_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<DedupClaim> {
        self.count(StoreCall::Claim);
        self.inner.claim(key, now, lease_ms, ttl_ms).await
    }

    async fn finish(&self, key: &str, now: EpochMillis) -> StoreResult<()> {
        self.count(StoreCall::Finish);
        self.inner.finish(key, now).await
    }

    async fn keep_reply_entity(&self, key: &str, card_id: &str) -> StoreResult<String> {
        self.count(StoreCall::KeepReplyEntity);
        self.inner.keep_reply_entity(key, card_id).await
    }

    async fn release(&self, key: &str) -> StoreResult<()> {
        self.count(StoreCall::Release);
        self.inner.release(key).await
    }
}

#[async_trait]
impl<S: RateStore> RateStore for CountingStore<S> {
    async fn take_permits(
        &self,
        app_id: &str,
        scope: &RateScope,
        requests: &[PermitRequest],
        now: EpochMillis,
    ) -> StoreResult<PermitTake> {
        self.count(StoreCall::TakePermits);
        self.inner.take_permits(app_id, scope, requests, now).await
    }
}

#[async_trait]
impl<S: TokenStore> TokenStore for CountingStore<S> {
    async fn get_tenant_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>> {
        self.count(StoreCall::GetTenantToken);
        self.inner.get_tenant_token(app_id).await
    }

    async fn put_tenant_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool> {
        self.count(StoreCall::PutTenantToken);
        self.inner.put_tenant_token(app_id, token).await
    }

    async fn evict_tenant_token(&self, app_id: &str, token: &str) -> StoreResult<()> {
        self.count(StoreCall::EvictTenantToken);
        self.inner.evict_tenant_token(app_id, token).await
    }
}

#[async_trait]
impl<S: CardStore> CardStore for CountingStore<S> {
    async fn create_card(&self, state: &CardState) -> StoreResult<CardState> {
        self.count(StoreCall::CreateCard);
        self.inner.create_card(state).await
    }

    async fn get_card(&self, card_key: &str) -> StoreResult<Option<CardState>> {
        self.count(StoreCall::GetCard);
        self.inner.get_card(card_key).await
    }

    async fn update_card(&self, state: &CardState) -> StoreResult<CardState> {
        self.count(StoreCall::UpdateCard);
        self.inner.update_card(state).await
    }

    async fn create_card_with_jobs(
        &self,
        state: &CardState,
        jobs: &[NewJob],
    ) -> StoreResult<CardState> {
        self.count(StoreCall::CreateCardWithJobs);
        self.inner.create_card_with_jobs(state, jobs).await
    }

    async fn next_sequences(&self, card_key: &str, count: u32) -> StoreResult<i32> {
        self.count(StoreCall::NextSequence);
        self.inner.next_sequences(card_key, count).await
    }

    async fn update_card_and_enqueue(
        &self,
        state: &CardState,
        job: &NewJob,
    ) -> StoreResult<CardState> {
        self.count(StoreCall::UpdateCardAndEnqueue);
        self.inner.update_card_and_enqueue(state, job).await
    }
}

#[async_trait]
impl<S: JobStore> JobStore for CountingStore<S> {
    async fn enqueue(&self, job: &NewJob) -> StoreResult<()> {
        self.count(StoreCall::Enqueue);
        self.inner.enqueue(job).await
    }

    async fn enqueue_finishing(
        &self,
        job: &NewJob,
        dedup_key: &str,
        now: EpochMillis,
    ) -> StoreResult<()> {
        self.count(StoreCall::EnqueueFinishing);
        self.inner.enqueue_finishing(job, dedup_key, now).await
    }

    async fn get_job(&self, card_key: &str, job_id: &str) -> StoreResult<Option<Job>> {
        self.count(StoreCall::GetJob);
        self.inner.get_job(card_key, job_id).await
    }

    async fn jobs_for_card(&self, card_key: &str) -> StoreResult<Vec<Job>> {
        self.count(StoreCall::JobsForCard);
        self.inner.jobs_for_card(card_key).await
    }

    async fn due_jobs(&self, now: EpochMillis, limit: usize) -> StoreResult<Vec<Job>> {
        self.count(StoreCall::DueJobs);
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
        self.count(StoreCall::ClaimJob);
        self.inner
            .claim_job(card_key, job_id, owner, now, lease_ms)
            .await
    }

    async fn complete_job(&self, job: &Job, now: EpochMillis) -> StoreResult<()> {
        self.count(StoreCall::CompleteJob);
        self.inner.complete_job(job, now).await
    }

    async fn fail_job(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<EpochMillis>,
        now: EpochMillis,
    ) -> StoreResult<FailOutcome> {
        self.count(StoreCall::FailJob);
        self.inner.fail_job(job, error, retry_at, now).await
    }

    async fn fail_job_permanently(
        &self,
        job: &Job,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<()> {
        self.count(StoreCall::FailJobPermanently);
        self.inner.fail_job_permanently(job, error, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardbot::store::memory::MemoryStore;

    #[tokio::test]
    async fn counts_each_call_once_and_take_resets() {
        let store = CountingStore::new(MemoryStore::new());
        assert_eq!(
            store.claim("dedup-a", 1_000, 5_000, 60_000).await.unwrap(),
            DedupClaim::FirstTime
        );
        assert_eq!(
            store.claim("dedup-a", 1_001, 5_000, 60_000).await.unwrap(),
            DedupClaim::InProgress
        );
        assert!(store.get_card("card-a").await.unwrap().is_none());
        let counts = store.take();
        assert_eq!(counts.get(StoreCall::Claim), 2);
        assert_eq!(counts.get(StoreCall::GetCard), 1);
        assert_eq!(counts.total(), 3);
        assert_eq!(counts.summary(), "card.get=1 dedup.claim=2");
        assert_eq!(store.counts().total(), 0);
    }
}
