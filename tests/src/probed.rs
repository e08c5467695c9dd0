//! Store wrappers for tests and the bench: [`Probed`] passes every call of the store traits to an
//! inner store and tells a [`StoreProbe`] before and after it. Two probes: [`Counts`] (the
//! `CountingStore` of `make bench`: round trips per method) and `faults::Hang` (a caller that dies
//! right after a chosen write).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use cardbot::store::{
    AppTicketStore, CardState, CardStore, DedupClaim, DedupStore, Document, DocumentStore,
    EpochMillis, FailOutcome, Job, JobStore, Kept, ListStore, Listed, NewJob, PermitRequest,
    PermitTake, RateScope, RateStore, StoreResult, StoredAppTicket, StoredTenantToken,
    TenantRecord, TenantStatus, TenantStore, TokenStore,
};

/// Every store method; each is one DynamoDB request in `DynamoStore` (a transaction counts once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StoreCall {
    Claim,
    Release,
    Finish,
    KeepReplyEntity,
    KeepReplyText,
    Keep,
    Kept,
    GetTenantToken,
    PutTenantToken,
    EvictTenantToken,
    WaitingJobs,
    AppTicket,
    AppToken,
    Tenant,
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
    ListCards,
    GetDocument,
    PutDocument,
    ListDocuments,
}

const ALL: [StoreCall; 34] = [
    StoreCall::Claim,
    StoreCall::Release,
    StoreCall::Finish,
    StoreCall::KeepReplyEntity,
    StoreCall::KeepReplyText,
    StoreCall::Keep,
    StoreCall::Kept,
    StoreCall::GetTenantToken,
    StoreCall::PutTenantToken,
    StoreCall::EvictTenantToken,
    StoreCall::WaitingJobs,
    StoreCall::AppTicket,
    StoreCall::AppToken,
    StoreCall::Tenant,
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
    StoreCall::ListCards,
    StoreCall::GetDocument,
    StoreCall::PutDocument,
    StoreCall::ListDocuments,
];

impl StoreCall {
    pub fn name(self) -> &'static str {
        match self {
            Self::ListCards => "lists.query",
            Self::Claim => "dedup.claim",
            Self::Release => "dedup.release",
            Self::Finish => "dedup.finish",
            Self::KeepReplyEntity => "dedup.keep(card_id)",
            Self::KeepReplyText => "dedup.keep(text)",
            Self::Keep => "dedup.keep",
            Self::Kept => "dedup.kept",
            Self::GetTenantToken => "token.get",
            Self::PutTenantToken => "token.put",
            Self::EvictTenantToken => "token.evict",
            Self::AppTicket => "app_ticket",
            Self::WaitingJobs => "jobs.waiting",
            Self::AppToken => "app_token",
            Self::Tenant => "tenant",
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
            Self::GetDocument => "document.get",
            Self::PutDocument => "document.put",
            Self::ListDocuments => "document.list",
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

/// What a [`Probed`] store tells about each call.
pub trait StoreProbe: Send + Sync {
    /// Before `call` goes to the inner store.
    fn before(&self, _call: StoreCall) {}
    /// After `call` succeeded. `took` is false only for a dedup claim that is not the caller's (a
    /// duplicate delivery).
    fn after(&self, _call: StoreCall, _took: bool) {}
}

/// Any store behind a [`StoreProbe`]; otherwise transparent.
pub struct Probed<S, P> {
    inner: Arc<S>,
    probe: P,
}

impl<S, P> Probed<S, P> {
    pub fn with(inner: Arc<S>, probe: P) -> Self {
        Self { inner, probe }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn probe(&self) -> &P {
        &self.probe
    }
}

/// One probed call: `before`, the inner call, `after` on success.
macro_rules! probed {
    ($self:ident, $call:expr, $inner:expr) => {{
        $self.probe.before($call);
        let out = $inner.await?;
        $self.probe.after($call, true);
        Ok(out)
    }};
}

/// Counts every call per method: each is one DynamoDB request in `DynamoStore`.
pub struct Counts([AtomicU64; ALL.len()]);

impl StoreProbe for Counts {
    fn before(&self, call: StoreCall) {
        self.0[call as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// A store that counts its round trips per method, so a flow's cost is a number.
pub type CountingStore<S> = Probed<S, Counts>;

impl<S> Probed<S, Counts> {
    pub fn new(inner: S) -> Self {
        Self::with(
            Arc::new(inner),
            Counts(std::array::from_fn(|_| AtomicU64::new(0))),
        )
    }

    /// The counts so far, without resetting them.
    pub fn counts(&self) -> StoreCounts {
        StoreCounts(
            ALL.iter()
                .filter_map(|&c| {
                    let n = self.probe.0[c as usize].load(Ordering::Relaxed);
                    (n > 0).then_some((c.name(), n))
                })
                .collect(),
        )
    }

    /// The counts so far, resetting them to zero.
    pub fn take(&self) -> StoreCounts {
        let counts = self.counts();
        for c in &self.probe.0 {
            c.store(0, Ordering::Relaxed);
        }
        counts
    }
}

#[async_trait]
impl<S: DedupStore, P: StoreProbe> DedupStore for Probed<S, P> {
    async fn claim(
        &self,
        key: &str,
        now: EpochMillis,
        lease_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<DedupClaim> {
        self.probe.before(StoreCall::Claim);
        let claim = self.inner.claim(key, now, lease_ms, ttl_ms).await?;
        self.probe.after(StoreCall::Claim, claim.is_ours());
        Ok(claim)
    }

    async fn finish(&self, key: &str, now: EpochMillis) -> StoreResult<()> {
        probed!(self, StoreCall::Finish, self.inner.finish(key, now))
    }

    async fn keep(&self, key: &str, step: &str, value: &str) -> StoreResult<String> {
        // The reply's steps have their own calls, so a fault can pick one.
        let call = match step {
            "card_id" => StoreCall::KeepReplyEntity,
            "text" => StoreCall::KeepReplyText,
            _ => StoreCall::Keep,
        };
        probed!(self, call, self.inner.keep(key, step, value))
    }

    async fn kept(&self, key: &str) -> StoreResult<Kept> {
        probed!(self, StoreCall::Kept, self.inner.kept(key))
    }

    async fn release(&self, key: &str) -> StoreResult<()> {
        probed!(self, StoreCall::Release, self.inner.release(key))
    }
}

#[async_trait]
impl<S: RateStore, P: StoreProbe> RateStore for Probed<S, P> {
    async fn take_permits(
        &self,
        app_id: &str,
        scope: &RateScope,
        requests: &[PermitRequest],
        now: EpochMillis,
    ) -> StoreResult<PermitTake> {
        probed!(
            self,
            StoreCall::TakePermits,
            self.inner.take_permits(app_id, scope, requests, now)
        )
    }
}

#[async_trait]
impl<S: TokenStore, P: StoreProbe> TokenStore for Probed<S, P> {
    async fn get_tenant_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>> {
        probed!(
            self,
            StoreCall::GetTenantToken,
            self.inner.get_tenant_token(app_id)
        )
    }

    async fn put_tenant_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool> {
        probed!(
            self,
            StoreCall::PutTenantToken,
            self.inner.put_tenant_token(app_id, token)
        )
    }

    async fn evict_tenant_token(&self, app_id: &str, token: &str) -> StoreResult<()> {
        probed!(
            self,
            StoreCall::EvictTenantToken,
            self.inner.evict_tenant_token(app_id, token)
        )
    }
}

#[async_trait]
impl<S: AppTicketStore, P: StoreProbe> AppTicketStore for Probed<S, P> {
    async fn get_app_tickets(&self, app_id: &str) -> StoreResult<Vec<StoredAppTicket>> {
        probed!(
            self,
            StoreCall::AppTicket,
            self.inner.get_app_tickets(app_id)
        )
    }

    async fn put_app_ticket(
        &self,
        app_id: &str,
        ticket: &str,
        received_at: EpochMillis,
    ) -> StoreResult<()> {
        probed!(
            self,
            StoreCall::AppTicket,
            self.inner.put_app_ticket(app_id, ticket, received_at)
        )
    }

    async fn mark_app_ticket_stale(&self, app_id: &str, ticket: &str) -> StoreResult<()> {
        probed!(
            self,
            StoreCall::AppTicket,
            self.inner.mark_app_ticket_stale(app_id, ticket)
        )
    }

    async fn claim_ticket_resend(
        &self,
        app_id: &str,
        now: EpochMillis,
        gap_ms: EpochMillis,
    ) -> StoreResult<bool> {
        probed!(
            self,
            StoreCall::AppTicket,
            self.inner.claim_ticket_resend(app_id, now, gap_ms)
        )
    }

    async fn claim_token_refresh(
        &self,
        owner: &str,
        now: EpochMillis,
        hold_ms: EpochMillis,
    ) -> StoreResult<bool> {
        probed!(
            self,
            StoreCall::AppToken,
            self.inner.claim_token_refresh(owner, now, hold_ms)
        )
    }

    async fn get_app_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>> {
        probed!(self, StoreCall::AppToken, self.inner.get_app_token(app_id))
    }

    async fn put_app_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool> {
        probed!(
            self,
            StoreCall::AppToken,
            self.inner.put_app_token(app_id, token)
        )
    }

    async fn evict_app_token(&self, app_id: &str, token: &str) -> StoreResult<()> {
        probed!(
            self,
            StoreCall::AppToken,
            self.inner.evict_app_token(app_id, token)
        )
    }
}

#[async_trait]
impl<S: TenantStore, P: StoreProbe> TenantStore for Probed<S, P> {
    async fn get_tenant(
        &self,
        app_id: &str,
        tenant_key: &str,
    ) -> StoreResult<Option<TenantRecord>> {
        probed!(
            self,
            StoreCall::Tenant,
            self.inner.get_tenant(app_id, tenant_key)
        )
    }

    async fn ensure_tenant(
        &self,
        app_id: &str,
        tenant_key: &str,
        now: EpochMillis,
    ) -> StoreResult<TenantRecord> {
        probed!(
            self,
            StoreCall::Tenant,
            self.inner.ensure_tenant(app_id, tenant_key, now)
        )
    }

    async fn set_tenant_status(
        &self,
        app_id: &str,
        tenant_key: &str,
        status: TenantStatus,
        event_at: EpochMillis,
        installed: Option<&str>,
        now: EpochMillis,
    ) -> StoreResult<bool> {
        probed!(
            self,
            StoreCall::Tenant,
            self.inner
                .set_tenant_status(app_id, tenant_key, status, event_at, installed, now)
        )
    }

    async fn note_tenant_error(
        &self,
        app_id: &str,
        tenant_key: &str,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<()> {
        probed!(
            self,
            StoreCall::Tenant,
            self.inner.note_tenant_error(app_id, tenant_key, error, now)
        )
    }

    async fn list_tenants(&self, app_id: &str) -> StoreResult<Vec<TenantRecord>> {
        probed!(self, StoreCall::Tenant, self.inner.list_tenants(app_id))
    }
}

#[async_trait]
impl<S: DocumentStore, P: StoreProbe> DocumentStore for Probed<S, P> {
    async fn get_document(&self, collection: &str, key: &str) -> StoreResult<Option<Document>> {
        probed!(
            self,
            StoreCall::GetDocument,
            self.inner.get_document(collection, key)
        )
    }

    async fn put_document(
        &self,
        collection: &str,
        key: &str,
        body: &serde_json::Value,
        expected: Option<u64>,
    ) -> StoreResult<bool> {
        probed!(
            self,
            StoreCall::PutDocument,
            self.inner.put_document(collection, key, body, expected)
        )
    }

    async fn list_documents(&self, collection: &str, prefix: &str) -> StoreResult<Vec<Document>> {
        probed!(
            self,
            StoreCall::ListDocuments,
            self.inner.list_documents(collection, prefix)
        )
    }
}

#[async_trait]
impl<S: ListStore, P: StoreProbe> ListStore for Probed<S, P> {
    async fn list_cards(&self, list_key: &str, limit: usize) -> StoreResult<Listed> {
        probed!(
            self,
            StoreCall::ListCards,
            self.inner.list_cards(list_key, limit)
        )
    }
}

#[async_trait]
impl<S: CardStore, P: StoreProbe> CardStore for Probed<S, P> {
    async fn create_card(&self, state: &CardState) -> StoreResult<CardState> {
        probed!(self, StoreCall::CreateCard, self.inner.create_card(state))
    }

    async fn get_card(&self, card_key: &str) -> StoreResult<Option<CardState>> {
        probed!(self, StoreCall::GetCard, self.inner.get_card(card_key))
    }

    async fn update_card(&self, state: &CardState) -> StoreResult<CardState> {
        probed!(self, StoreCall::UpdateCard, self.inner.update_card(state))
    }

    async fn create_card_with_jobs(
        &self,
        state: &CardState,
        jobs: &[NewJob],
    ) -> StoreResult<CardState> {
        probed!(
            self,
            StoreCall::CreateCardWithJobs,
            self.inner.create_card_with_jobs(state, jobs)
        )
    }

    async fn next_sequences(&self, card_key: &str, count: u32) -> StoreResult<i32> {
        probed!(
            self,
            StoreCall::NextSequence,
            self.inner.next_sequences(card_key, count)
        )
    }

    async fn update_card_and_enqueue(
        &self,
        state: &CardState,
        jobs: &[NewJob],
    ) -> StoreResult<CardState> {
        probed!(
            self,
            StoreCall::UpdateCardAndEnqueue,
            self.inner.update_card_and_enqueue(state, jobs)
        )
    }
}

#[async_trait]
impl<S: JobStore, P: StoreProbe> JobStore for Probed<S, P> {
    async fn enqueue(&self, job: &NewJob) -> StoreResult<()> {
        probed!(self, StoreCall::Enqueue, self.inner.enqueue(job))
    }

    async fn enqueue_finishing(
        &self,
        job: &NewJob,
        dedup_key: &str,
        now: EpochMillis,
    ) -> StoreResult<()> {
        probed!(
            self,
            StoreCall::EnqueueFinishing,
            self.inner.enqueue_finishing(job, dedup_key, now)
        )
    }

    async fn get_job(&self, card_key: &str, job_id: &str) -> StoreResult<Option<Job>> {
        probed!(
            self,
            StoreCall::GetJob,
            self.inner.get_job(card_key, job_id)
        )
    }

    async fn jobs_for_card(&self, card_key: &str) -> StoreResult<Vec<Job>> {
        probed!(
            self,
            StoreCall::JobsForCard,
            self.inner.jobs_for_card(card_key)
        )
    }

    async fn due_jobs(&self, now: EpochMillis, limit: usize) -> StoreResult<Vec<Job>> {
        probed!(self, StoreCall::DueJobs, self.inner.due_jobs(now, limit))
    }

    async fn waiting_jobs(
        &self,
        card_key_prefix: &str,
        limit: usize,
    ) -> StoreResult<Vec<cardbot::store::JobRef>> {
        probed!(
            self,
            StoreCall::WaitingJobs,
            self.inner.waiting_jobs(card_key_prefix, limit)
        )
    }

    async fn bury_waiting_job(
        &self,
        card_key: &str,
        job_id: &str,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<bool> {
        probed!(
            self,
            StoreCall::WaitingJobs,
            self.inner.bury_waiting_job(card_key, job_id, error, now)
        )
    }

    async fn claim_job(
        &self,
        card_key: &str,
        job_id: &str,
        owner: &str,
        now: EpochMillis,
        lease_ms: i64,
    ) -> StoreResult<Option<Job>> {
        probed!(
            self,
            StoreCall::ClaimJob,
            self.inner.claim_job(card_key, job_id, owner, now, lease_ms)
        )
    }

    async fn complete_job(&self, job: &Job, now: EpochMillis) -> StoreResult<()> {
        probed!(
            self,
            StoreCall::CompleteJob,
            self.inner.complete_job(job, now)
        )
    }

    async fn fail_job(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<EpochMillis>,
        now: EpochMillis,
    ) -> StoreResult<FailOutcome> {
        probed!(
            self,
            StoreCall::FailJob,
            self.inner.fail_job(job, error, retry_at, now)
        )
    }

    async fn fail_job_permanently(
        &self,
        job: &Job,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<()> {
        probed!(
            self,
            StoreCall::FailJobPermanently,
            self.inner.fail_job_permanently(job, error, now)
        )
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
