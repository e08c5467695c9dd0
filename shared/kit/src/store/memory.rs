//! The in-memory adapter with the same semantics, for fast domain tests: `MemoryStore`.
//!
//! One mutex over plain maps: every method is one critical section, which gives the same
//! atomicity as DynamoDB's conditional writes. The `due` index is a filter over the jobs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    is_last_attempt, is_step_name, plan_failure, truncate_error, ttl_secs, AppTicketStore,
    CardState, CardStore, DedupClaim, DedupStore, EpochMillis, FailOutcome, Job, JobStatus,
    JobStore, Kept, NewJob, StoreError, StoreResult, StoredAppTicket, StoredTenantToken,
    TenantRecord, TenantStatus, TenantStore, TokenStore, LEASE_EXPIRED_ERROR,
};

/// A dedup record as DynamoDB holds it.
struct DedupRecord {
    /// Epoch seconds (the TTL attribute).
    expires_at: i64,
    /// `processing` until this time (epoch ms); `None` once `done`.
    lease_until: Option<EpochMillis>,
    /// What the work's steps kept ([`DedupStore::keep`]).
    kept: Kept,
}

#[derive(Default)]
struct Tables {
    dedup: HashMap<String, DedupRecord>,
    tokens: HashMap<String, StoredTenantToken>,
    /// The bot's open_id per app.
    bots: HashMap<String, String>,
    app_tickets: HashMap<String, Vec<StoredAppTicket>>,
    /// (token owner, slot) → when it was last claimed: ticket resends and token refreshes.
    token_claims: HashMap<(String, &'static str), EpochMillis>,
    app_tokens: HashMap<String, StoredTenantToken>,
    /// (app_id, tenant_key) → record.
    tenants: BTreeMap<(String, String), TenantRecord>,
    cards: BTreeMap<String, CardState>,
    /// (card_key, job_id) → job; ordered like a card partition's `job#` sort keys.
    jobs: BTreeMap<(String, String), Job>,
    /// Rate item `pk` → its counters.
    rates: HashMap<String, super::rate::RateCounters>,
    /// (collection, key) → document.
    documents: BTreeMap<(String, String), super::Document>,
    /// Leased jobs re-armed meanwhile: their completion makes them pending again.
    reruns: std::collections::HashSet<(String, String)>,
}

/// Everything in process memory; cheap to create per test.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panicking test thread must not hide the data from the others.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn job_key(card_key: &str, job_id: &str) -> (String, String) {
    (card_key.to_owned(), job_id.to_owned())
}

impl Tables {
    /// Queues `job` unless it exists (the first one stands), as a conditional put does.
    fn enqueue(&mut self, job: &NewJob, now: EpochMillis) {
        let key = job_key(&job.card_key, &job.job_id);
        match self.jobs.get(&key).map(|j| j.status) {
            Some(JobStatus::Done) if job.rearm => {
                self.jobs.insert(key, new_job(job, now));
            }
            Some(JobStatus::Leased) if job.rearm => {
                self.reruns.insert(key);
            }
            Some(_) => {}
            None => {
                self.jobs.insert(key, new_job(job, now));
            }
        }
    }

    /// Stores a new card at version 1; `Conflict` if it exists.
    fn create_card(&mut self, state: &CardState) -> StoreResult<CardState> {
        if self.cards.contains_key(&state.card_key) {
            return Err(StoreError::Conflict(format!(
                "card {} exists",
                state.card_key
            )));
        }
        let created = CardState {
            version: 1,
            ..state.clone()
        };
        self.cards.insert(state.card_key.clone(), created.clone());
        Ok(created)
    }
}

/// Pending jobs and leased ones (whose lease may lapse) are in the `due` index.
fn in_due_index(job: &Job) -> bool {
    matches!(job.status, JobStatus::Pending | JobStatus::Leased)
}

/// The stored job `job` was claimed as, if it is still under that same lease.
fn leased_as<'a>(
    jobs: &'a mut BTreeMap<(String, String), Job>,
    job: &Job,
) -> StoreResult<&'a mut Job> {
    let key = format!("{}/{}", job.card_key, job.job_id);
    let stored = jobs
        .get_mut(&job_key(&job.card_key, &job.job_id))
        .ok_or_else(|| StoreError::NotFound(key.clone()))?;
    let same_lease = stored.status == JobStatus::Leased
        && job.lease_owner.is_some()
        && stored.lease_owner == job.lease_owner
        && stored.attempts == job.attempts;
    if same_lease {
        Ok(stored)
    } else {
        Err(StoreError::Conflict(format!(
            "job {key} is not under this lease"
        )))
    }
}

#[async_trait]
impl DedupStore for MemoryStore {
    async fn claim(
        &self,
        key: &str,
        now: EpochMillis,
        lease_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<DedupClaim> {
        let mut tables = self.lock();
        let now_secs = now.div_euclid(1000);
        let claim = match tables.dedup.get(key) {
            Some(record) if record.expires_at >= now_secs => match record.lease_until {
                Some(until) if until >= now => return Ok(DedupClaim::InProgress),
                Some(_) => DedupClaim::TakenOver,
                None => return Ok(DedupClaim::Done),
            },
            _ => DedupClaim::FirstTime,
        };
        // A takeover keeps what the lapsed attempt recorded (its reply entity, its sends).
        let kept = tables.dedup.remove(key).map(|old| old.kept);
        let kept = kept
            .filter(|_| claim == DedupClaim::TakenOver)
            .unwrap_or_default();
        let record = DedupRecord {
            expires_at: ttl_secs(now + ttl_ms),
            lease_until: Some(now + lease_ms),
            kept,
        };
        tables.dedup.insert(key.to_owned(), record);
        Ok(claim)
    }

    async fn finish(&self, key: &str, _now: EpochMillis) -> StoreResult<()> {
        if let Some(record) = self.lock().dedup.get_mut(key) {
            record.lease_until = None;
        }
        Ok(())
    }

    async fn keep(&self, key: &str, step: &str, value: &str) -> StoreResult<String> {
        if !is_step_name(step) {
            return Err(StoreError::Invalid(format!("step name {step:?}")));
        }
        Ok(match self.lock().dedup.get_mut(key) {
            Some(record) => record
                .kept
                .entry(step.to_owned())
                .or_insert_with(|| value.to_owned())
                .clone(),
            None => value.to_owned(),
        })
    }

    async fn kept(&self, key: &str) -> StoreResult<Kept> {
        Ok(self
            .lock()
            .dedup
            .get(key)
            .map(|record| record.kept.clone())
            .unwrap_or_default())
    }

    async fn release(&self, key: &str) -> StoreResult<()> {
        // The lease ends now; what the attempt kept stays for the retry (see the trait).
        // Only a claim in progress (`lease_until` set): a finished delivery stays done.
        if let Some(record) = self.lock().dedup.get_mut(key) {
            if record.lease_until.is_some() {
                record.lease_until = Some(0);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn get_tenant_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>> {
        Ok(self.lock().tokens.get(app_id).cloned())
    }

    async fn put_tenant_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool> {
        let mut tables = self.lock();
        if let Some(stored) = tables.tokens.get(app_id) {
            if stored.expires_at > token.expires_at {
                return Ok(false);
            }
        }
        tables.tokens.insert(app_id.to_owned(), token.clone());
        Ok(true)
    }

    async fn evict_tenant_token(&self, app_id: &str, token: &str) -> StoreResult<()> {
        let mut tables = self.lock();
        if tables.tokens.get(app_id).is_some_and(|t| t.token == token) {
            tables.tokens.remove(app_id);
        }
        Ok(())
    }

    async fn get_bot_open_id(&self, app_id: &str) -> StoreResult<Option<String>> {
        Ok(self.lock().bots.get(app_id).cloned())
    }

    async fn put_bot_open_id(&self, app_id: &str, open_id: &str) -> StoreResult<()> {
        self.lock()
            .bots
            .insert(app_id.to_owned(), open_id.to_owned());
        Ok(())
    }
}

impl MemoryStore {
    /// Claims `owner`'s `slot` at `now`: `true` for one caller per `gap_ms`.
    fn claim_slot(
        &self,
        owner: &str,
        slot: &'static str,
        now: EpochMillis,
        gap_ms: EpochMillis,
    ) -> bool {
        let mut tables = self.lock();
        let key = (owner.to_owned(), slot);
        if tables
            .token_claims
            .get(&key)
            .is_some_and(|at| *at > now - gap_ms)
        {
            return false;
        }
        tables.token_claims.insert(key, now);
        true
    }
}

#[async_trait]
impl AppTicketStore for MemoryStore {
    async fn get_app_tickets(&self, app_id: &str) -> StoreResult<Vec<StoredAppTicket>> {
        Ok(self
            .lock()
            .app_tickets
            .get(app_id)
            .cloned()
            .unwrap_or_default())
    }

    async fn put_app_ticket(
        &self,
        app_id: &str,
        ticket: &str,
        received_at: EpochMillis,
    ) -> StoreResult<()> {
        let mut tables = self.lock();
        let tickets = tables.app_tickets.entry(app_id.to_owned()).or_default();
        super::keep_app_ticket(tickets, ticket, received_at);
        Ok(())
    }

    async fn mark_app_ticket_stale(&self, app_id: &str, ticket: &str) -> StoreResult<()> {
        if let Some(tickets) = self.lock().app_tickets.get_mut(app_id) {
            super::mark_app_ticket_stale(tickets, ticket);
        }
        Ok(())
    }

    async fn claim_ticket_resend(
        &self,
        app_id: &str,
        now: EpochMillis,
        gap_ms: EpochMillis,
    ) -> StoreResult<bool> {
        Ok(self.claim_slot(app_id, super::keys::TICKET_RESEND_SK, now, gap_ms))
    }

    async fn claim_token_refresh(
        &self,
        owner: &str,
        now: EpochMillis,
        hold_ms: EpochMillis,
    ) -> StoreResult<bool> {
        Ok(self.claim_slot(owner, super::keys::TOKEN_REFRESH_SK, now, hold_ms))
    }

    async fn get_app_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>> {
        Ok(self.lock().app_tokens.get(app_id).cloned())
    }

    async fn put_app_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool> {
        let mut tables = self.lock();
        if tables
            .app_tokens
            .get(app_id)
            .is_some_and(|stored| stored.expires_at > token.expires_at)
        {
            return Ok(false);
        }
        tables.app_tokens.insert(app_id.to_owned(), token.clone());
        Ok(true)
    }

    async fn evict_app_token(&self, app_id: &str, token: &str) -> StoreResult<()> {
        let mut tables = self.lock();
        if tables
            .app_tokens
            .get(app_id)
            .is_some_and(|t| t.token == token)
        {
            tables.app_tokens.remove(app_id);
        }
        Ok(())
    }
}

#[async_trait]
impl TenantStore for MemoryStore {
    async fn get_tenant(
        &self,
        app_id: &str,
        tenant_key: &str,
    ) -> StoreResult<Option<TenantRecord>> {
        let key = (app_id.to_owned(), tenant_key.to_owned());
        Ok(self.lock().tenants.get(&key).cloned())
    }

    async fn ensure_tenant(
        &self,
        app_id: &str,
        tenant_key: &str,
        now: EpochMillis,
    ) -> StoreResult<TenantRecord> {
        let key = (app_id.to_owned(), tenant_key.to_owned());
        Ok(self
            .lock()
            .tenants
            .entry(key)
            .or_insert_with(|| TenantRecord {
                tenant_key: tenant_key.to_owned(),
                status: TenantStatus::Active,
                status_at: 0,
                installed_at: None,
                installer_open_id: None,
                last_error: None,
                updated_at: now,
            })
            .clone())
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
        let key = (app_id.to_owned(), tenant_key.to_owned());
        let mut tables = self.lock();
        let record = tables.tenants.entry(key).or_insert_with(|| TenantRecord {
            tenant_key: tenant_key.to_owned(),
            status,
            status_at: i64::MIN,
            installed_at: None,
            installer_open_id: None,
            last_error: None,
            updated_at: now,
        });
        if record.status_at >= event_at {
            return Ok(false);
        }
        record.status = status;
        record.status_at = event_at;
        record.updated_at = now;
        if let Some(installer) = installed {
            record.installed_at = Some(event_at);
            if !installer.is_empty() {
                record.installer_open_id = Some(installer.to_owned());
            }
        }
        Ok(true)
    }

    async fn note_tenant_error(
        &self,
        app_id: &str,
        tenant_key: &str,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<()> {
        let key = (app_id.to_owned(), tenant_key.to_owned());
        if let Some(record) = self.lock().tenants.get_mut(&key) {
            record.last_error = Some(truncate_error(error));
            record.updated_at = now;
        }
        Ok(())
    }

    async fn list_tenants(&self, app_id: &str) -> StoreResult<Vec<TenantRecord>> {
        Ok(self
            .lock()
            .tenants
            .iter()
            .filter(|((app, _), _)| app == app_id)
            .map(|(_, record)| record.clone())
            .collect())
    }
}

/// Checks `state.version` against the stored card and returns the stored one.
fn card_at_version<'a>(
    cards: &'a mut BTreeMap<String, CardState>,
    state: &CardState,
) -> StoreResult<&'a mut CardState> {
    let stored = cards
        .get_mut(&state.card_key)
        .ok_or_else(|| StoreError::NotFound(format!("card {}", state.card_key)))?;
    if stored.version != state.version {
        return Err(StoreError::Conflict(format!(
            "card {} is at version {}, not {}",
            state.card_key, stored.version, state.version
        )));
    }
    Ok(stored)
}

#[async_trait]
impl CardStore for MemoryStore {
    async fn create_card(&self, state: &CardState) -> StoreResult<CardState> {
        self.lock().create_card(state)
    }

    async fn create_card_with_jobs(
        &self,
        state: &CardState,
        jobs: &[NewJob],
    ) -> StoreResult<CardState> {
        let now = super::now_millis();
        let mut tables = self.lock();
        let created = tables.create_card(state)?;
        for job in jobs {
            tables.enqueue(job, now);
        }
        Ok(created)
    }

    async fn get_card(&self, card_key: &str) -> StoreResult<Option<CardState>> {
        Ok(self.lock().cards.get(card_key).cloned())
    }

    async fn update_card(&self, state: &CardState) -> StoreResult<CardState> {
        let mut tables = self.lock();
        let stored = card_at_version(&mut tables.cards, state)?;
        *stored = CardState {
            version: state.version + 1,
            sequence: stored.sequence,
            ..state.clone()
        };
        Ok(stored.clone())
    }

    async fn next_sequences(&self, card_key: &str, count: u32) -> StoreResult<i32> {
        let mut tables = self.lock();
        let stored = tables
            .cards
            .get_mut(card_key)
            .ok_or_else(|| StoreError::NotFound(format!("card {card_key}")))?;
        let count = i32::try_from(count.max(1))
            .map_err(|_| StoreError::SequenceExhausted(card_key.to_owned()))?;
        stored.sequence = stored
            .sequence
            .checked_add(count)
            .ok_or_else(|| StoreError::SequenceExhausted(card_key.to_owned()))?;
        Ok(stored.sequence - count + 1)
    }

    async fn update_card_and_enqueue(
        &self,
        state: &CardState,
        jobs: &[NewJob],
    ) -> StoreResult<CardState> {
        let mut tables = self.lock();
        let stored = card_at_version(&mut tables.cards, state)?;
        *stored = CardState {
            version: state.version + 1,
            sequence: stored.sequence,
            ..state.clone()
        };
        for job in jobs {
            tables.enqueue(job, state.updated_at);
        }
        Ok(CardState {
            version: state.version + 1,
            ..state.clone()
        })
    }
}

fn new_job(job: &NewJob, now: EpochMillis) -> Job {
    Job {
        card_key: job.card_key.clone(),
        job_id: job.job_id.clone(),
        kind: job.kind.clone(),
        payload: job.payload.clone(),
        status: JobStatus::Pending,
        due_at: job.not_before,
        attempts: 0,
        last_error: None,
        lease_owner: None,
        lease_until: None,
        created_at: now,
        updated_at: now,
    }
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn enqueue(&self, job: &NewJob) -> StoreResult<()> {
        self.lock().enqueue(job, super::now_millis());
        Ok(())
    }

    async fn enqueue_finishing(
        &self,
        job: &NewJob,
        dedup_key: &str,
        _now: EpochMillis,
    ) -> StoreResult<()> {
        let mut tables = self.lock();
        tables.enqueue(job, super::now_millis());
        if let Some(record) = tables.dedup.get_mut(dedup_key) {
            record.lease_until = None;
        }
        Ok(())
    }

    async fn get_job(&self, card_key: &str, job_id: &str) -> StoreResult<Option<Job>> {
        Ok(self.lock().jobs.get(&job_key(card_key, job_id)).cloned())
    }

    async fn jobs_for_card(&self, card_key: &str) -> StoreResult<Vec<Job>> {
        Ok(self
            .lock()
            .jobs
            .values()
            .filter(|j| j.card_key == card_key)
            .cloned()
            .collect())
    }

    async fn due_jobs(&self, now: EpochMillis, limit: usize) -> StoreResult<Vec<Job>> {
        let tables = self.lock();
        let mut due: Vec<Job> = tables
            .jobs
            .values()
            .filter(|j| in_due_index(j) && j.due_at <= now)
            .cloned()
            .collect();
        due.sort_by_key(|j| j.due_at);
        due.truncate(limit);
        Ok(due)
    }

    async fn waiting_jobs(
        &self,
        card_key_prefix: &str,
        limit: usize,
    ) -> StoreResult<Vec<super::JobRef>> {
        let tables = self.lock();
        let mut waiting: Vec<&Job> = tables
            .jobs
            .values()
            .filter(|j| in_due_index(j) && j.card_key.starts_with(card_key_prefix))
            .collect();
        waiting.sort_by_key(|j| j.due_at);
        Ok(waiting
            .into_iter()
            .take(limit)
            .map(|j| super::JobRef::from(j.clone()))
            .collect())
    }

    async fn claim_job(
        &self,
        card_key: &str,
        job_id: &str,
        owner: &str,
        now: EpochMillis,
        lease_ms: i64,
    ) -> StoreResult<Option<Job>> {
        let mut tables = self.lock();
        let Some(stored) = tables.jobs.get_mut(&job_key(card_key, job_id)) else {
            return Ok(None);
        };
        if !in_due_index(stored) || stored.due_at > now {
            return Ok(None);
        }
        if stored.status == JobStatus::Leased {
            // The holder crashed or timed out: its lease counts as a failed attempt.
            let dead = is_last_attempt(stored);
            stored.attempts += 1;
            stored.last_error = Some(LEASE_EXPIRED_ERROR.to_owned());
            if dead {
                bury(stored, now);
                crate::metrics::job_dead();
                tracing::warn!(
                    card_key,
                    job_id,
                    attempts = stored.attempts,
                    "job dead: leases lapsed"
                );
                return Ok(None);
            }
        }
        let lease_until = now + lease_ms;
        stored.status = JobStatus::Leased;
        stored.lease_owner = Some(owner.to_owned());
        stored.lease_until = Some(lease_until);
        stored.due_at = lease_until;
        stored.updated_at = now;
        Ok(Some(stored.clone()))
    }

    async fn complete_job(&self, job: &Job, now: EpochMillis) -> StoreResult<()> {
        let mut tables = self.lock();
        let key = job_key(&job.card_key, &job.job_id);
        let rerun = tables.reruns.contains(&key);
        let stored = leased_as(&mut tables.jobs, job)?;
        stored.lease_until = None;
        stored.updated_at = now;
        if rerun {
            // Re-armed while this run held it: it runs once more, with the latest state.
            stored.status = JobStatus::Pending;
            stored.lease_owner = None;
            stored.due_at = now;
            tables.reruns.remove(&key);
        } else {
            stored.status = JobStatus::Done;
        }
        // DynamoDB's TTL removes done jobs after a week; in memory they stay.
        Ok(())
    }

    async fn fail_job(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<EpochMillis>,
        now: EpochMillis,
    ) -> StoreResult<FailOutcome> {
        let mut tables = self.lock();
        let stored = leased_as(&mut tables.jobs, job)?;
        let outcome = plan_failure(stored, retry_at, now);
        stored.attempts += 1;
        stored.last_error = Some(truncate_error(error));
        stored.lease_owner = None;
        stored.lease_until = None;
        stored.updated_at = now;
        match outcome {
            FailOutcome::Rescheduled { due_at } => {
                stored.status = JobStatus::Pending;
                stored.due_at = due_at;
            }
            FailOutcome::Dead => stored.status = JobStatus::Dead,
        }
        Ok(outcome)
    }

    async fn bury_waiting_job(
        &self,
        card_key: &str,
        job_id: &str,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<bool> {
        let mut tables = self.lock();
        match tables.jobs.get_mut(&job_key(card_key, job_id)) {
            Some(stored) if buriable(stored, now) => {
                stored.last_error = Some(truncate_error(error));
                bury(stored, now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn fail_job_permanently(
        &self,
        job: &Job,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<()> {
        let mut tables = self.lock();
        let stored = leased_as(&mut tables.jobs, job)?;
        stored.attempts += 1;
        stored.last_error = Some(truncate_error(error));
        bury(stored, now);
        Ok(())
    }
}

/// Whether `job` waits and no run holds it at `now`.
fn buriable(job: &Job, now: EpochMillis) -> bool {
    match job.status {
        JobStatus::Pending => true,
        JobStatus::Leased => job.lease_until.is_none_or(|until| until < now),
        JobStatus::Done | JobStatus::Dead => false,
    }
}

/// Leaves `job` `Dead`: out of the index (status alone decides that here), lease cleared.
fn bury(job: &mut Job, now: EpochMillis) {
    job.status = JobStatus::Dead;
    job.lease_owner = None;
    job.lease_until = None;
    job.updated_at = now;
}

#[async_trait]
impl super::RateStore for MemoryStore {
    async fn take_permits(
        &self,
        app_id: &str,
        scope: &super::RateScope,
        requests: &[super::PermitRequest],
        now: EpochMillis,
    ) -> StoreResult<super::PermitTake> {
        let mut tables = self.lock();
        let counters = tables
            .rates
            .entry(super::keys::rate_pk(app_id, scope))
            .or_default();
        counters.prune(now);
        Ok(counters.take(requests, now))
    }
}

#[async_trait]
impl super::ListStore for MemoryStore {
    async fn list_cards(&self, list_key: &str, limit: usize) -> StoreResult<super::Listed> {
        let tables = self.lock();
        let mut cards: Vec<CardState> = tables
            .cards
            .values()
            .filter(|c| c.list_key.as_deref() == Some(list_key))
            .cloned()
            .collect();
        cards.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        cards.truncate(limit.clamp(1, 100));
        Ok(super::Listed {
            cards,
            consumed_capacity: None,
        })
    }
}

#[async_trait]
impl super::DocumentStore for MemoryStore {
    async fn get_document(
        &self,
        collection: &str,
        key: &str,
    ) -> StoreResult<Option<super::Document>> {
        let tables = self.lock();
        Ok(tables
            .documents
            .get(&(collection.to_owned(), key.to_owned()))
            .cloned())
    }

    async fn put_document(
        &self,
        collection: &str,
        key: &str,
        body: &serde_json::Value,
        expected: Option<u64>,
    ) -> StoreResult<bool> {
        super::documents::check_size(collection, key, body)?;
        let mut tables = self.lock();
        let id = (collection.to_owned(), key.to_owned());
        if tables.documents.get(&id).map(|d| d.revision) != expected {
            return Ok(false);
        }
        let document = super::Document {
            key: key.to_owned(),
            revision: expected.unwrap_or(0) + 1,
            body: body.clone(),
        };
        tables.documents.insert(id, document);
        Ok(true)
    }

    async fn list_documents(
        &self,
        collection: &str,
        prefix: &str,
    ) -> StoreResult<Vec<super::Document>> {
        let tables = self.lock();
        Ok(tables
            .documents
            .iter()
            .filter(|((c, k), _)| c == collection && k.starts_with(prefix))
            .map(|(_, d)| d.clone())
            .collect())
    }
}

#[async_trait]
impl super::DeadJobStore for MemoryStore {
    async fn dead_jobs(&self, limit: usize) -> StoreResult<Vec<Job>> {
        let tables = self.lock();
        let mut dead: Vec<Job> = tables
            .jobs
            .values()
            .filter(|j| j.status == JobStatus::Dead)
            .cloned()
            .collect();
        dead.sort_by_key(|j| std::cmp::Reverse(j.updated_at));
        dead.truncate(limit.clamp(1, 100));
        Ok(dead)
    }

    async fn requeue_dead_job(
        &self,
        card_key: &str,
        job_id: &str,
        now: EpochMillis,
    ) -> StoreResult<bool> {
        let mut tables = self.lock();
        let key = (card_key.to_owned(), job_id.to_owned());
        match tables.jobs.get_mut(&key) {
            Some(job) if job.status == JobStatus::Dead => {
                job.status = JobStatus::Pending;
                job.due_at = now;
                job.updated_at = now;
                job.attempts = 0;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
