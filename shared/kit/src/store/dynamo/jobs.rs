//! Update jobs: their item encoding and decoding, leases, the `due` index Query, and `JobStore`
//! for `DynamoStore`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::{
    condition_failed_item, is_condition_failed, json_to_av, n, s, set_remove, store_error,
    DynamoStore, Expr, Fields, Item,
};
use crate::store::keys::{self, PK};
use crate::store::table::{DUE_INDEX, LISTS_INDEX, TABLE};
use crate::store::{
    is_last_attempt, plan_failure, truncate_error, ttl_secs, EpochMillis, FailOutcome, Job,
    JobStatus, JobStore, NewJob, StoreError, StoreResult, DONE_JOB_TTL_MS, LEASE_EXPIRED_ERROR,
};
use crate::store::{DedupStore, JobKind, JobRef, DEAD_JOBS_LIST};

/// Items per `due` index page; a sweep asks for fewer in practice.
const MAX_QUERY_PAGE: usize = 1_000;

/// What a `due` index Query read, to prove it read no more than it returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Items DynamoDB read (and billed) across pages.
    pub scanned_count: usize,
    /// Query pages read.
    pub pages: usize,
}

/// A leased job re-armed meanwhile (`NewJob::rearm`): its completion makes it pending again.
const RERUN: &str = "rerun";

fn job_status_str(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Pending => "pending",
        JobStatus::Leased => "leased",
        JobStatus::Done => "done",
        JobStatus::Dead => "dead",
    }
}

/// The item [`JobStore::enqueue`] writes, for bulk seeding (BatchWriteItem) in tests and benchmarks.
pub fn pending_job_item(job: &NewJob, now: EpochMillis) -> HashMap<String, AttributeValue> {
    job_item(job, now)
}

fn job_item(job: &NewJob, now: EpochMillis) -> Item {
    let mut item = DynamoStore::key(keys::card_pk(&job.card_key), &keys::job_sk(&job.job_id));
    item.extend([
        ("card_key".to_owned(), s(&job.card_key)),
        ("job_id".to_owned(), s(&job.job_id)),
        ("kind".to_owned(), s(job.kind.as_str())),
        ("payload".to_owned(), json_to_av(&job.payload)),
        ("status".to_owned(), s(job_status_str(JobStatus::Pending))),
        (DUE_INDEX.partition_key.name.to_owned(), s(keys::DUE_PK)),
        (DUE_INDEX.sort_key.name.to_owned(), n(job.not_before)),
        ("attempts".to_owned(), n(0)),
        ("created_at".to_owned(), n(now)),
        ("updated_at".to_owned(), n(now)),
    ]);
    item
}

fn job_from_item(item: &Item) -> StoreResult<Job> {
    let f = Fields::new(item);
    let status = match f.s("status")?.as_str() {
        "pending" => JobStatus::Pending,
        "leased" => JobStatus::Leased,
        "done" => JobStatus::Done,
        "dead" => JobStatus::Dead,
        other => return Err(f.corrupt(format!("unknown job status {other}"))),
    };
    Ok(Job {
        card_key: f.s("card_key")?,
        job_id: f.s("job_id")?,
        kind: JobKind::from(f.s("kind")?.as_str()),
        payload: f.json("payload")?,
        status,
        due_at: f.n(DUE_INDEX.sort_key.name)?,
        attempts: f.n("attempts")?,
        last_error: f.opt_s("last_error")?,
        lease_owner: f.opt_s("lease_owner")?,
        lease_until: f.opt_n("lease_until")?,
        created_at: f.n("created_at")?,
        updated_at: f.n("updated_at")?,
    })
}

pub(super) fn put_job(table: &str, job: &NewJob, now: EpochMillis) -> StoreResult<Put> {
    let (condition, names, values) = job_condition(job);
    Put::builder()
        .table_name(table)
        .set_item(Some(job_item(job, now)))
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(values)
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// The put condition of [`NewJob::rearm`]: no job of that id, or (re-armed) one done.
#[allow(clippy::type_complexity)]
fn job_condition(
    job: &NewJob,
) -> (
    &'static str,
    HashMap<String, String>,
    Option<HashMap<String, AttributeValue>>,
) {
    let mut names = HashMap::from([("#pk".to_owned(), PK.to_owned())]);
    if !job.rearm {
        return ("attribute_not_exists(#pk)", names, None);
    }
    names.insert("#status".to_owned(), "status".to_owned());
    let values = HashMap::from([(":done".to_owned(), s(job_status_str(JobStatus::Done)))]);
    (
        "attribute_not_exists(#pk) OR #status = :done",
        names,
        Some(values),
    )
}

/// What a conditional job update did.
enum JobWrite {
    /// Written; the item as it is now.
    Written(Item),
    /// The condition failed; the item as it was (`None`: no such job).
    Refused(Option<Item>),
}

/// `status = leased AND lease_owner = owner AND attempts = attempts`: still the lease a job was
/// claimed under (every lease that does not complete adds an attempt, so it never repeats).
fn lease_condition(expr: &mut Expr, owner: Option<&str>, attempts: u32) -> String {
    let owner = match owner {
        Some(owner) => format!("{} = {}", expr.name("lease_owner"), expr.value(s(owner))),
        None => format!("attribute_not_exists({})", expr.name("lease_owner")),
    };
    format!(
        "{} = {} AND {owner} AND {} = {}",
        expr.name("status"),
        expr.value(s(job_status_str(JobStatus::Leased))),
        expr.name("attempts"),
        expr.value(n(attempts)),
    )
}

/// The changes that leave a job `Dead`: out of the index, lease cleared, kept for a human for
/// [`crate::store::DEAD_JOB_TTL_MS`].
fn dead_changes(now: EpochMillis) -> Vec<(&'static str, Option<AttributeValue>)> {
    vec![
        ("status", Some(s(job_status_str(JobStatus::Dead)))),
        ("updated_at", Some(n(now))),
        (
            TABLE.ttl_attribute,
            Some(n(ttl_secs(now + crate::store::DEAD_JOB_TTL_MS))),
        ),
        (DUE_INDEX.partition_key.name, None),
        (LISTS_INDEX.partition_key.name, Some(s(DEAD_JOBS_LIST))),
        (LISTS_INDEX.sort_key.name, Some(n(now))),
        ("lease_owner", None),
        ("lease_until", None),
    ]
}

impl DynamoStore {
    /// Like [`JobStore::due_jobs`], with what the Query read: tests show it reads only due jobs.
    pub async fn due_jobs_with_stats(
        &self,
        now: EpochMillis,
        limit: usize,
    ) -> StoreResult<(Vec<Job>, QueryStats)> {
        let mut jobs = Vec::new();
        let mut stats = QueryStats::default();
        let mut start: Option<Item> = None;
        while jobs.len() < limit {
            let page = (limit - jobs.len()).min(MAX_QUERY_PAGE);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX.name)
                .key_condition_expression("#due_pk = :due_pk AND #due_at <= :now")
                .expression_attribute_names("#due_pk", DUE_INDEX.partition_key.name)
                .expression_attribute_names("#due_at", DUE_INDEX.sort_key.name)
                .expression_attribute_values(":due_pk", s(keys::DUE_PK))
                .expression_attribute_values(":now", n(now))
                .scan_index_forward(true)
                .limit(i32::try_from(page).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("query due jobs", e))?;
            stats.pages += 1;
            stats.scanned_count += usize::try_from(out.scanned_count()).unwrap_or(0);
            for item in out.items() {
                jobs.push(job_from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok((jobs, stats))
    }

    /// One UpdateItem on a job: `update` if `condition` (both built over `expr`) holds.
    async fn update_job_if(
        &self,
        card_key: &str,
        job_id: &str,
        op: &str,
        expr: Expr,
        update: String,
        condition: String,
    ) -> StoreResult<JobWrite> {
        let result = self
            .conditional_update(
                keys::card_pk(card_key),
                &keys::job_sk(job_id),
                update,
                condition,
                expr,
            )
            .send()
            .await;
        match result {
            Ok(mut out) => out
                .attributes
                .take()
                .map(JobWrite::Written)
                .ok_or_else(|| StoreError::Unavailable(format!("{op}: no item returned"))),
            Err(e) if is_condition_failed(&e) => {
                Ok(JobWrite::Refused(condition_failed_item(&e).cloned()))
            }
            Err(e) => Err(store_error(op, e)),
        }
    }

    /// Updates a job `job` leased, if it is still under that lease (owner and attempts unchanged).
    async fn update_leased_job(
        &self,
        job: &Job,
        op: &str,
        changes: Vec<(&str, Option<AttributeValue>)>,
    ) -> StoreResult<()> {
        if job.lease_owner.is_none() {
            return Err(StoreError::Conflict(format!(
                "{op}: job {} has no lease",
                job.job_id
            )));
        }
        let mut expr = Expr::default();
        let update = set_remove(&mut expr, changes);
        let condition = lease_condition(&mut expr, job.lease_owner.as_deref(), job.attempts);
        let write = self
            .update_job_if(&job.card_key, &job.job_id, op, expr, update, condition)
            .await?;
        match write {
            JobWrite::Written(_) => Ok(()),
            JobWrite::Refused(Some(_)) => Err(StoreError::Conflict(format!(
                "{op}: job {} is not under this lease",
                job.job_id
            ))),
            JobWrite::Refused(None) => Err(StoreError::NotFound(format!(
                "job {}/{}",
                job.card_key, job.job_id
            ))),
        }
    }

    /// [`Self::update_leased_job`] unless the job was re-armed meanwhile (`Conflict` then).
    async fn update_leased_job_unless_rerun(
        &self,
        job: &Job,
        op: &str,
        changes: Vec<(&str, Option<AttributeValue>)>,
    ) -> StoreResult<()> {
        let mut expr = Expr::default();
        let update = set_remove(&mut expr, changes);
        let lease = lease_condition(&mut expr, job.lease_owner.as_deref(), job.attempts);
        let condition = format!("{lease} AND attribute_not_exists({})", expr.name(RERUN));
        match self
            .update_job_if(&job.card_key, &job.job_id, op, expr, update, condition)
            .await?
        {
            JobWrite::Written(_) => Ok(()),
            JobWrite::Refused(Some(_)) => Err(StoreError::Conflict(format!(
                "{op}: job {} is re-armed or not under this lease",
                job.job_id
            ))),
            JobWrite::Refused(None) => Err(StoreError::NotFound(format!(
                "job {}/{}",
                job.card_key, job.job_id
            ))),
        }
    }

    /// Marks a leased job to run once more when its run completes ([`NewJob::rearm`]); a job in
    /// any other state (pending, dead, gone meanwhile) is left as it is.
    async fn mark_rerun(&self, job: &NewJob) -> StoreResult<()> {
        let mut expr = Expr::default();
        let update = set_remove(&mut expr, vec![(RERUN, Some(AttributeValue::Bool(true)))]);
        let condition = format!(
            "{} = {}",
            expr.name("status"),
            expr.value(s(job_status_str(JobStatus::Leased)))
        );
        self.update_job_if(
            &job.card_key,
            &job.job_id,
            "mark job rerun",
            expr,
            update,
            condition,
        )
        .await
        .map(|_| ())
    }

    /// Takes over the lapsed lease `lapsed` (as read), counting it as a failed attempt; buries the
    /// job instead when that was its last one.
    async fn claim_lapsed_job(
        &self,
        lapsed: &Job,
        owner: &str,
        now: EpochMillis,
        lease_until: EpochMillis,
    ) -> StoreResult<Option<Job>> {
        let attempts = lapsed.attempts.saturating_add(1);
        let dead = is_last_attempt(lapsed);
        let mut changes = vec![
            ("attempts", Some(n(attempts))),
            ("last_error", Some(s(LEASE_EXPIRED_ERROR))),
        ];
        if dead {
            changes.extend(dead_changes(now));
        } else {
            changes.extend(lease_changes(owner, now, lease_until));
        }
        let mut expr = Expr::default();
        let update = set_remove(&mut expr, changes);
        let condition = format!(
            "{} AND {} <= {}",
            lease_condition(&mut expr, lapsed.lease_owner.as_deref(), lapsed.attempts),
            expr.name(DUE_INDEX.sort_key.name),
            expr.value(n(now)),
        );
        let write = self
            .update_job_if(
                &lapsed.card_key,
                &lapsed.job_id,
                "claim lapsed job",
                expr,
                update,
                condition,
            )
            .await?;
        match write {
            // Another updater took it over (or its holder finished it) since we read it.
            JobWrite::Refused(_) => Ok(None),
            JobWrite::Written(_) if dead => {
                tracing::warn!(card_key = %lapsed.card_key, job_id = %lapsed.job_id, attempts, "job dead: leases lapsed");
                // Counted here: the claim returns nothing, so the updater never sees this death
                // (the job that kills its updater every time), and the alarm must.
                crate::metrics::job_dead();
                Ok(None)
            }
            JobWrite::Written(item) => job_from_item(&item).map(Some),
        }
    }
}

/// The changes that lease a job to `owner` until `lease_until`. The job stays in the index, due
/// again when the lease lapses (a crashed updater).
fn lease_changes(
    owner: &str,
    now: EpochMillis,
    lease_until: EpochMillis,
) -> Vec<(&'static str, Option<AttributeValue>)> {
    vec![
        ("status", Some(s(job_status_str(JobStatus::Leased)))),
        ("lease_owner", Some(s(owner))),
        ("lease_until", Some(n(lease_until))),
        (DUE_INDEX.sort_key.name, Some(n(lease_until))),
        ("updated_at", Some(n(now))),
    ]
}

#[async_trait]
impl JobStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %job.card_key, job_id = %job.job_id))]
    async fn enqueue(&self, job: &NewJob) -> StoreResult<()> {
        let (condition, names, values) = job_condition(job);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(job, crate::store::now_millis())))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(values)
            .send()
            .await;
        match result {
            // A re-armed job under way: marked to run once more when that run completes.
            Err(e) if is_condition_failed(&e) && job.rearm => self.mark_rerun(job).await,
            // Enqueued before (deterministic job id): the first one stands.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("enqueue job", e)),
            Ok(_) => Ok(()),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn enqueue_finishing(
        &self,
        job: &NewJob,
        dedup_key: &str,
        now: EpochMillis,
    ) -> StoreResult<()> {
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(put_job(&self.table, job, crate::store::now_millis())?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(super::dedup::finish_update(&self.table, dedup_key)?)
                    .build(),
            )
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let op = "enqueue job and finish delivery";
        let reasons = super::cancellation_reasons(op, err)?;
        let failed = |i: usize| {
            reasons
                .get(i)
                .is_some_and(|r| super::reason_code(r) == "ConditionalCheckFailed")
        };
        // Nothing was written; do what each half still needs on its own.
        match (failed(0), failed(1)) {
            (true, _) => self.finish(dedup_key, now).await,
            (false, true) => self.enqueue(job).await,
            (false, false) => Err(StoreError::Unavailable(format!(
                "{op}: transaction cancelled: {reasons:?}"
            ))),
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn get_job(&self, card_key: &str, job_id: &str) -> StoreResult<Option<Job>> {
        let item = self
            .get(keys::card_pk(card_key), &keys::job_sk(job_id), "get job")
            .await?;
        item.as_ref().map(job_from_item).transpose()
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn jobs_for_card(&self, card_key: &str) -> StoreResult<Vec<Job>> {
        self.query_partition(
            keys::card_pk(card_key),
            keys::JOB_SK_PREFIX,
            "query card jobs",
        )
        .await?
        .iter()
        .map(job_from_item)
        .collect()
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn due_jobs(&self, now: EpochMillis, limit: usize) -> StoreResult<Vec<Job>> {
        Ok(self.due_jobs_with_stats(now, limit).await?.0)
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn waiting_jobs(&self, card_key_prefix: &str, limit: usize) -> StoreResult<Vec<JobRef>> {
        let mut jobs = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX.name)
                .key_condition_expression("#due_pk = :due_pk")
                .filter_expression("begins_with(#pk, :prefix)")
                .expression_attribute_names("#due_pk", DUE_INDEX.partition_key.name)
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_values(":due_pk", s(keys::DUE_PK))
                .expression_attribute_values(":prefix", s(keys::card_pk(card_key_prefix)))
                .scan_index_forward(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("query waiting jobs", e))?;
            for item in out.items() {
                jobs.push(JobRef::from(job_from_item(item)?));
                if jobs.len() == limit {
                    return Ok(jobs);
                }
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(jobs),
            }
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn claim_job(
        &self,
        card_key: &str,
        job_id: &str,
        owner: &str,
        now: EpochMillis,
        lease_ms: i64,
    ) -> StoreResult<Option<Job>> {
        let lease_until = now + lease_ms;
        let mut expr = Expr::default();
        let update = set_remove(&mut expr, lease_changes(owner, now, lease_until));
        // The common case, one write: a pending job that is due.
        let condition = format!(
            "{} = {} AND {} <= {}",
            expr.name("status"),
            expr.value(s(job_status_str(JobStatus::Pending))),
            expr.name(DUE_INDEX.sort_key.name),
            expr.value(n(now)),
        );
        let write = self
            .update_job_if(card_key, job_id, "claim job", expr, update, condition)
            .await?;
        let current = match write {
            JobWrite::Written(item) => return job_from_item(&item).map(Some),
            JobWrite::Refused(None) => return Ok(None),
            JobWrite::Refused(Some(item)) => job_from_item(&item)?,
        };
        if current.status == JobStatus::Leased && current.due_at <= now {
            self.claim_lapsed_job(&current, owner, now, lease_until)
                .await
        } else {
            Ok(None)
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %job.card_key, job_id = %job.job_id))]
    async fn complete_job(&self, job: &Job, now: EpochMillis) -> StoreResult<()> {
        let done = self
            .update_leased_job_unless_rerun(
                job,
                "complete job",
                vec![
                    ("status", Some(s(job_status_str(JobStatus::Done)))),
                    ("updated_at", Some(n(now))),
                    (
                        TABLE.ttl_attribute,
                        Some(n(ttl_secs(now + DONE_JOB_TTL_MS))),
                    ),
                    (DUE_INDEX.partition_key.name, None),
                    ("lease_until", None),
                ],
            )
            .await;
        match done {
            Err(StoreError::Conflict(_)) if job.lease_owner.is_some() => {
                // Re-armed while this run held it (`rerun` set): pending again, due now.
                self.update_leased_job(
                    job,
                    "rerun job",
                    vec![
                        ("status", Some(s(job_status_str(JobStatus::Pending)))),
                        ("updated_at", Some(n(now))),
                        (DUE_INDEX.partition_key.name, Some(s(keys::DUE_PK))),
                        (DUE_INDEX.sort_key.name, Some(n(now))),
                        ("lease_owner", None),
                        ("lease_until", None),
                        (RERUN, None),
                    ],
                )
                .await
            }
            other => other,
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %job.card_key, job_id = %job.job_id))]
    async fn fail_job(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<EpochMillis>,
        now: EpochMillis,
    ) -> StoreResult<FailOutcome> {
        let outcome = plan_failure(job, retry_at, now);
        let mut changes = vec![
            ("attempts", Some(n(job.attempts.saturating_add(1)))),
            ("last_error", Some(s(truncate_error(error)))),
            ("updated_at", Some(n(now))),
            ("lease_owner", None),
            ("lease_until", None),
        ];
        match outcome {
            FailOutcome::Rescheduled { due_at } => changes.extend([
                ("status", Some(s(job_status_str(JobStatus::Pending)))),
                (DUE_INDEX.sort_key.name, Some(n(due_at))),
            ]),
            // Out of the index: a dead job stays for a human to see, for `DEAD_JOB_TTL_MS`.
            FailOutcome::Dead => changes.extend([
                ("status", Some(s(job_status_str(JobStatus::Dead)))),
                (
                    TABLE.ttl_attribute,
                    Some(n(ttl_secs(now + crate::store::DEAD_JOB_TTL_MS))),
                ),
                (DUE_INDEX.partition_key.name, None),
                (LISTS_INDEX.partition_key.name, Some(s(DEAD_JOBS_LIST))),
                (LISTS_INDEX.sort_key.name, Some(n(now))),
            ]),
        }
        self.update_leased_job(job, "fail job", changes).await?;
        Ok(outcome)
    }

    #[tracing::instrument(level = "debug", skip(self, error))]
    async fn bury_waiting_job(
        &self,
        card_key: &str,
        job_id: &str,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<bool> {
        let mut changes = vec![("last_error", Some(s(truncate_error(error))))];
        changes.extend(dead_changes(now));
        let mut expr = Expr::default();
        let update = set_remove(&mut expr, changes);
        let condition = format!(
            "{status} = {pending} OR ({status} = {leased} AND {until} < {now})",
            status = expr.name("status"),
            pending = expr.value(s(job_status_str(JobStatus::Pending))),
            leased = expr.value(s(job_status_str(JobStatus::Leased))),
            until = expr.name("lease_until"),
            now = expr.value(n(now)),
        );
        let write = self
            .update_job_if(
                card_key,
                job_id,
                "bury waiting job",
                expr,
                update,
                condition,
            )
            .await?;
        Ok(matches!(write, JobWrite::Written(_)))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %job.card_key, job_id = %job.job_id))]
    async fn fail_job_permanently(
        &self,
        job: &Job,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<()> {
        let mut changes = vec![
            ("attempts", Some(n(job.attempts.saturating_add(1)))),
            ("last_error", Some(s(truncate_error(error)))),
        ];
        changes.extend(dead_changes(now));
        self.update_leased_job(job, "fail job permanently", changes)
            .await
    }
}

#[async_trait]
impl crate::store::DeadJobStore for DynamoStore {
    async fn dead_jobs(&self, limit: usize) -> StoreResult<Vec<Job>> {
        let out = self.query_list(DEAD_JOBS_LIST, limit).await?;
        out.items().iter().map(job_from_item).collect()
    }

    async fn requeue_dead_job(
        &self,
        card_key: &str,
        job_id: &str,
        now: EpochMillis,
    ) -> StoreResult<bool> {
        let mut expr = Expr::default();
        let update = set_remove(
            &mut expr,
            vec![
                ("status", Some(s(job_status_str(JobStatus::Pending)))),
                (DUE_INDEX.partition_key.name, Some(s(keys::DUE_PK))),
                (DUE_INDEX.sort_key.name, Some(n(now))),
                ("updated_at", Some(n(now))),
                ("attempts", Some(n(0))),
                (TABLE.ttl_attribute, None),
                (LISTS_INDEX.partition_key.name, None),
                (LISTS_INDEX.sort_key.name, None),
            ],
        );
        let condition = format!(
            "{} = {}",
            expr.name("status"),
            expr.value(s(job_status_str(JobStatus::Dead)))
        );
        match self
            .update_job_if(
                card_key,
                job_id,
                "requeue dead job",
                expr,
                update,
                condition,
            )
            .await?
        {
            JobWrite::Written(_) => Ok(true),
            JobWrite::Refused(_) => Ok(false),
        }
    }
}
