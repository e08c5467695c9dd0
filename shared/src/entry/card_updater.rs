//! The card-updater Lambda: drains the job outbox. Triggered by the table's stream (new job items,
//! the fast path) and by an EventBridge schedule (the sweep for due, retried and time-based work).
//! It claims each due job (a conditional lease, so two instances never deliver one job twice),
//! delivers it with `crate::deliver::Effects::run_job`, and stops claiming before its own timeout.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::deliver::{Effects, JobOutcome};
use crate::feishu::{Clock, Deadline, FeishuApi};
use crate::jobs::ClaimBudget;
use crate::store::{self, CardStore, DedupStore, EpochMillis, JobRef, JobStore};
use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use futures::stream::{self, StreamExt};
use jiff::tz::TimeZone;
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

/// The handler with everything it uses, built once per container.
pub struct CardUpdater<S: ?Sized, F: ?Sized> {
    pub store: Arc<S>,
    pub feishu: Arc<F>,
    pub clock: Arc<dyn Clock>,
    /// This instance's lease owner id.
    pub owner: String,
    pub approval_ttl: Duration,
    /// The zone cards show times in (`TENANT_TIME_ZONE`).
    pub time_zone: TimeZone,
    /// How a new card's approvers are found (`APPROVER_OPEN_IDS`, `APPROVER_FROM_LEADER`).
    pub approvers: crate::config::ApproverConfig,
    /// The approval definitions in the table, cached.
    pub definitions: std::sync::Arc<crate::definitions::Definitions>,
    /// A claimed job is ours this long; longer than one job can take.
    pub lease: Duration,
    /// Jobs per sweep.
    pub batch: usize,
    /// Time one job may take; no job is claimed with less than this left.
    pub per_job: Duration,
    /// A streamed job due within this long is waited for (the post-answer job is due ≈ 2 s after
    /// the click); later ones are left to the sweep.
    pub max_stream_wait: Duration,
    /// Cards worked on at once. One card's jobs run in order (its CardKit sequence and 10/s
    /// limit are per card); the Feishu client paces all of them to the app's rate.
    pub concurrency: usize,
    /// Where ended requests' decision events go (`DECISION_EVENT_BUS`); `None`: nowhere.
    pub events: Option<Arc<dyn feishu_kit::events::EventBus>>,
    /// A store app's job runs with its tenant's client (the tenant is in the job's card key),
    /// and only while the tenant is active.
    pub tenants: crate::tenants::Gate,
}

/// The error a job of a stopped or uninstalled tenant dies with (`cardbot-admin dead-jobs` shows
/// it; `requeue` brings the job back once the tenant started the app again).
pub const TENANT_NOT_ACTIVE: &str = "tenant_stopped";

/// What one invocation did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub seen: usize,
    pub claimed: usize,
    pub done: usize,
    pub failed: usize,
    /// Left for the next sweep: not claimable, not due soon enough, or out of time; or run while a
    /// later change re-armed it (the re-armed run shows the latest state).
    pub skipped: usize,
    /// A stream batch's records whose job could not be claimed or recorded (a store error, an
    /// item that does not read as a job): the invocation's answer names each (the template's
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`), so Lambda retries from that record on, not
    /// the batch. A job's own failure is not here: the job table retries it.
    #[serde(
        rename = "batchItemFailures",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

/// One entry of a stream answer's `batchItemFailures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItemFailure {
    /// The record's `SequenceNumber`.
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

impl Summary {
    fn add(mut self, other: Summary) -> Summary {
        self.seen += other.seen;
        self.claimed += other.claimed;
        self.done += other.done;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.batch_item_failures.extend(other.batch_item_failures);
        self
    }
}

/// The jobs grouped by card, cards in the order they first appear, each card's jobs in order.
fn by_card(targets: Vec<(JobRef, Option<String>)>) -> Vec<Vec<(JobRef, Option<String>)>> {
    let mut groups: Vec<Vec<(JobRef, Option<String>)>> = Vec::new();
    for target in targets {
        match groups
            .iter_mut()
            .find(|g| g[0].0.card_key == target.0.card_key)
        {
            Some(group) => group.push(target),
            None => groups.push(vec![target]),
        }
    }
    groups
}

/// What invokes the updater: a batch of the table's stream or a tick of the schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdaterEvent {
    /// New items on the table's stream: the fast path for new jobs.
    Stream(DynamoDbEvent),
    /// The EventBridge schedule: the sweep for due, retried and time-based work.
    Schedule(EventBridgeEvent<Value>),
    /// Anything else (a manual invoke such as `{}`, a stream batch this code cannot read): a
    /// sweep too, so no invocation is wasted and every due job is still found.
    Other,
}

impl<'de> Deserialize<'de> for UpdaterEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let event = Value::deserialize(deserializer)?;
        // A stream batch has `Records`: a bad record is reported as that, not as "not a schedule".
        if event.get("Records").is_some() {
            serde_json::from_value(event).map(Self::Stream)
        } else {
            serde_json::from_value(event).map(Self::Schedule)
        }
        .map_err(D::Error::custom)
    }
}

impl UpdaterEvent {
    /// The invocation's payload as an updater event; anything that is neither kind is
    /// [`UpdaterEvent::Other`] (logged), which sweeps: a retry of the same payload cannot help.
    pub fn from_payload(payload: Value) -> Self {
        match serde_json::from_value(payload) {
            Ok(event) => event,
            Err(e) => {
                warn!(error = %e, "neither a stream batch nor a schedule event; sweeping");
                Self::Other
            }
        }
    }
}

impl<S, F> CardUpdater<S, F>
where
    S: CardStore
        + JobStore
        + DedupStore
        + crate::store::ListStore
        + crate::store::DocumentStore
        + crate::store::TenantStore
        + ?Sized,
    F: FeishuApi + 'static,
{
    pub fn new(
        config: &Config,
        store: Arc<S>,
        feishu: Arc<F>,
        clock: Arc<dyn Clock>,
        owner: String,
    ) -> Self {
        Self {
            store,
            feishu,
            clock,
            owner,
            approval_ttl: config.approval_ttl,
            time_zone: config.time_zone.clone(),
            approvers: config.approvers.clone(),
            definitions: std::sync::Arc::new(crate::definitions::Definitions::default()),
            lease: Duration::from_secs(60),
            batch: 100,
            per_job: Duration::from_secs(10),
            max_stream_wait: Duration::from_secs(10),
            concurrency: 16,
            events: None,
            tenants: crate::tenants::Gate::new(config),
        }
    }

    /// The client and tenant a claimed job runs with; `Err(reason)` when its tenant is not
    /// active (the job dies with the reason: nothing is sent for a stopped tenant).
    async fn job_tenant<'j>(
        &self,
        job: &'j crate::store::Job,
        now: EpochMillis,
    ) -> Result<Option<(&'j str, Arc<dyn FeishuApi>)>, String> {
        if !self.tenants.is_store() {
            return Ok(None);
        }
        let Some(tenant) = crate::store::keys::card_key_tenant(&job.card_key) else {
            // Written before the deployment became a store app: no tenant to serve it with.
            return Err("no tenant in the card key (written in self-built mode)".to_owned());
        };
        use crate::tenants::Refused;
        let key = match self.tenants.admit(&*self.store, Some(tenant), now).await {
            Ok(Some(key)) => key,
            Ok(None) => return Ok(None),
            Err(Refused::NoTenant(reason)) => return Err(reason),
            Err(Refused::NotActive(_, status)) => {
                return Err(format!("{TENANT_NOT_ACTIVE}: {}", status.as_str()))
            }
            // Unreadable a moment: served as active (a stop applies from the next job on).
            Err(Refused::Unreadable(key, _)) => key,
        };
        let client = self
            .feishu
            .tenant_client(&key)
            .ok_or("the Feishu client serves no tenant (not a store app's)")?;
        Ok(Some((tenant, client)))
    }

    fn ms(duration: Duration) -> i64 {
        i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
    }

    /// One invocation; `deadline` is the Lambda's own deadline in epoch ms.
    #[tracing::instrument(name = "card_updater", skip_all)]
    pub async fn handle(&self, event: &UpdaterEvent, deadline: EpochMillis) -> Summary {
        let budget = ClaimBudget {
            deadline,
            per_job_ms: Self::ms(self.per_job),
        };
        let targets = match event {
            UpdaterEvent::Stream(batch) => store::stream::new_jobs_with_sequence(&batch.records),
            UpdaterEvent::Schedule(_) | UpdaterEvent::Other => self
                .due_jobs()
                .await
                .into_iter()
                .map(|job| (job, None))
                .collect(),
        };
        let budget = &budget;
        let summary = stream::iter(by_card(targets))
            .map(|jobs| async move {
                let mut summary = Summary::default();
                for (target, sequence) in jobs {
                    summary.seen += 1;
                    if !self.wait_until_due(&target, budget).await {
                        summary.skipped += 1;
                        continue;
                    }
                    let retry = self.run_one(&target, budget, &mut summary).await;
                    if let (true, Some(sequence)) = (retry, sequence) {
                        summary.batch_item_failures.push(BatchItemFailure {
                            item_identifier: sequence,
                        });
                    }
                }
                summary
            })
            .buffer_unordered(self.concurrency.max(1))
            .fold(
                Summary::default(),
                |total, one| async move { total.add(one) },
            )
            .await;
        info!(?summary, "updater done");
        summary
    }

    /// The sweep's jobs: those due now, oldest first.
    async fn due_jobs(&self) -> Vec<JobRef> {
        match self
            .store
            .due_jobs(self.clock.now_millis(), self.batch)
            .await
        {
            Ok(jobs) => jobs.into_iter().map(JobRef::from).collect(),
            Err(e) => {
                warn!(error = %e, "cannot list due jobs");
                Vec::new()
            }
        }
    }

    /// Sleeps until a streamed job is due, if that is soon and leaves time to run it.
    async fn wait_until_due(&self, target: &JobRef, budget: &ClaimBudget) -> bool {
        let now = self.clock.now_millis();
        let wait = target.due_at.map_or(0, |due| (due - now).max(0));
        if wait > Self::ms(self.max_stream_wait) || !budget.may_claim(now + wait) {
            return false;
        }
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        true
    }

    /// Claims and runs one job; `true` when its record should be retried (the claim or the job's
    /// bookkeeping failed in the store: the job may be unreadable, or the table briefly not
    /// answering).
    async fn run_one(&self, target: &JobRef, budget: &ClaimBudget, summary: &mut Summary) -> bool {
        let now = self.clock.now_millis();
        if !budget.may_claim(now) {
            summary.skipped += 1;
            return false;
        }
        let claimed = self
            .store
            .claim_job(
                &target.card_key,
                &target.job_id,
                &self.owner,
                now,
                Self::ms(self.lease),
            )
            .await;
        let job = match claimed {
            Ok(Some(job)) => job,
            Ok(None) => {
                summary.skipped += 1;
                return false;
            }
            Err(e) => {
                warn!(card_key = %target.card_key, error = %e, "claim failed");
                summary.skipped += 1;
                return true;
            }
        };
        summary.claimed += 1;
        if matches!(
            crate::jobs::JobKind::from(&job.kind),
            crate::jobs::JobKind::TenantCleanup
        ) {
            let cleaned = self.clean_up_tenant(&job, now).await;
            let ran = match cleaned {
                Ok(reason) => self
                    .store
                    .complete_job(&job, now)
                    .await
                    .map(|()| JobOutcome::Done { reason }),
                Err(error) => self
                    .store
                    .fail_job(&job, &error.to_string(), None, now)
                    .await
                    .map(|outcome| JobOutcome::Failed {
                        error: error.to_string(),
                        outcome,
                        permanent: false,
                    }),
            };
            Self::count(&job, ran, summary);
            return false;
        }
        let scoped = match self.job_tenant(&job, now).await {
            Ok(scoped) => scoped,
            Err(reason) => {
                warn!(card_key = %job.card_key, job_id = %job.job_id, %reason, "job of a tenant not served: dead");
                if let Err(e) = self.store.fail_job_permanently(&job, &reason, now).await {
                    warn!(card_key = %job.card_key, error = %e, "cannot mark the job dead");
                }
                // Not the dead-job alarm's metric: a tenant stopping the app is not a failure
                // for a person to look at (the job is listed dead with its reason all the same).
                summary.failed += 1;
                return false;
            }
        };
        let effects = Effects {
            store: &*self.store,
            feishu: match &scoped {
                Some((_, client)) => client.as_ref(),
                None => &*self.feishu,
            },
            tenant: scoped.as_ref().map(|(tenant, _)| *tenant),
            approval_ttl_ms: Self::ms(self.approval_ttl),
            now,
            deadline: Deadline::after(self.per_job),
            time_zone: &self.time_zone,
            approvers: &self.approvers,
            definitions: &self.definitions,
            events: self.events.as_deref(),
        };
        // A store app's job: every log line of its run names the tenant.
        let span = match &scoped {
            Some((tenant, _)) => {
                crate::telemetry::tenant_served(tenant, "job");
                tracing::info_span!("job", tenant = *tenant)
            }
            None => tracing::Span::none(),
        };
        let tenant = scoped.as_ref().map(|(tenant, _)| *tenant);
        let run = async {
            let ran = effects.run_job(&job).await;
            // A store app's tenant keeps its last error (`cardbot-admin tenants`).
            if let (Some(tenant), Ok(JobOutcome::Failed { error, .. })) = (tenant, &ran) {
                let noted = self
                    .store
                    .note_tenant_error(&self.tenants.app_id, tenant, error, now)
                    .await;
                if let Err(e) = noted {
                    warn!(tenant, error = %e, "cannot note the tenant's error");
                }
            }
            Self::count(&job, ran, summary);
        };
        tracing::Instrument::instrument(run, span).await;
        false
    }

    /// A store app's tenant uninstalled the app: every job of it still waiting goes dead with
    /// `tenant_uninstalled` (a dead job expires after 90 days; its card states already expire 400
    /// days after their last write), unless the tenant is active again.
    async fn clean_up_tenant(
        &self,
        job: &crate::store::Job,
        now: EpochMillis,
    ) -> Result<&'static str, crate::store::StoreError> {
        use crate::store::StoreError;
        let Some(tenant) = crate::store::keys::card_key_tenant(&job.card_key) else {
            return Ok("no tenant in the card key");
        };
        let status =
            crate::tenants::status(&*self.store, &self.tenants.app_id, tenant, now).await?;
        if status != crate::store::TenantStatus::Uninstalled {
            return Ok("the tenant is not uninstalled: nothing to clean up");
        }
        let prefix = crate::store::keys::tenant_card_key(Some(tenant), "");
        let mut buried = 0usize;
        loop {
            let waiting = self.store.waiting_jobs(&prefix, 100).await?;
            let others: Vec<_> = waiting
                .into_iter()
                .filter(|w| !(w.card_key == job.card_key && w.job_id == job.job_id))
                .collect();
            if others.is_empty() {
                break;
            }
            let mut progressed = false;
            for waiting in others {
                if self
                    .store
                    .bury_waiting_job(
                        &waiting.card_key,
                        &waiting.job_id,
                        "tenant_uninstalled",
                        now,
                    )
                    .await?
                {
                    buried += 1;
                    progressed = true;
                }
            }
            if !progressed {
                // Only jobs a run holds now are left (or the index has not caught up yet): this
                // cleanup runs again later.
                return Err(StoreError::Conflict(
                    "jobs of the tenant are being run; cleaning up again later".to_owned(),
                ));
            }
        }
        info!(tenant, buried, "uninstalled tenant's waiting jobs dead");
        Ok("tenant cleaned up")
    }

    /// Logs and counts how a claimed job's run ended.
    fn count(
        job: &crate::store::Job,
        ran: Result<JobOutcome, crate::store::StoreError>,
        summary: &mut Summary,
    ) {
        match ran {
            Ok(JobOutcome::Done { reason }) => {
                info!(card_key = %job.card_key, job_id = %job.job_id, reason, "job done");
                crate::telemetry::job_delivered();
                summary.done += 1;
            }
            Ok(JobOutcome::Failed {
                error,
                outcome,
                permanent,
            }) => {
                warn!(card_key = %job.card_key, job_id = %job.job_id, %error, ?outcome, permanent, "job failed");
                match outcome {
                    crate::store::FailOutcome::Dead => crate::telemetry::job_dead(),
                    crate::store::FailOutcome::Rescheduled { .. } => {
                        crate::telemetry::job_retried()
                    }
                }
                summary.failed += 1;
            }
            // A later change re-armed the job while this run held it (`NewJob::rearm`): the new
            // run is pending and shows the latest state; this one's work is superseded, not failed.
            Err(crate::store::StoreError::Conflict(e)) => {
                info!(card_key = %job.card_key, job_id = %job.job_id, error = %e, "job superseded by a re-armed run");
                summary.skipped += 1;
            }
            Err(e) => {
                // The lease lapses and the job is due again: it is never lost (the sweep finds
                // it; its record retried would find it leased).
                warn!(card_key = %job.card_key, job_id = %job.job_id, error = %e, "job bookkeeping failed");
                summary.failed += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Three records as Lambda delivers them: a job's INSERT, a card state's MODIFY, a TTL REMOVE.
    const STREAM_EVENT: &str = include_str!("../../tests/data/dynamodb-stream-event.json");
    /// The `rate(1 minute)` rule's event.
    const SCHEDULED_EVENT: &str = include_str!("../../tests/data/eventbridge-scheduled-event.json");

    #[test]
    fn a_stream_batch_is_a_stream_event_naming_its_new_job() {
        let event: UpdaterEvent = serde_json::from_str(STREAM_EVENT).unwrap();
        let UpdaterEvent::Stream(batch) = event else {
            panic!("not a stream event: {event:?}");
        };
        assert_eq!(batch.records.len(), 3);
        assert_eq!(
            store::stream::new_jobs(&batch.records),
            [JobRef {
                card_key: "om_1".into(),
                job_id: "post_answer".into(),
                due_at: Some(1_700_000_002_000),
            }]
        );
    }

    #[test]
    fn a_scheduled_event_is_the_sweep() {
        let event: UpdaterEvent = serde_json::from_str(SCHEDULED_EVENT).unwrap();
        let UpdaterEvent::Schedule(tick) = event else {
            panic!("not a schedule event: {event:?}");
        };
        assert_eq!(tick.detail_type, "Scheduled Event");
        assert_eq!(tick.source, "aws.events");
        assert_eq!(tick.region.as_deref(), Some("us-east-1"));
    }

    #[test]
    fn an_empty_batch_is_a_stream_event() {
        let event = UpdaterEvent::from_payload(json!({ "Records": [] }));
        assert!(
            matches!(&event, UpdaterEvent::Stream(b) if b.records.is_empty()),
            "{event:?}"
        );
    }

    #[test]
    fn any_other_payload_sweeps() {
        let mut bad_record: Value = serde_json::from_str(STREAM_EVENT).unwrap();
        bad_record["Records"][0]
            .as_object_mut()
            .unwrap()
            .remove("dynamodb");
        for payload in [
            json!({}),
            json!(null),
            json!("tick"),
            json!({ "detail-type": "Scheduled Event" }),
            json!({ "Records": "none" }),
            bad_record,
        ] {
            assert_eq!(
                UpdaterEvent::from_payload(payload.clone()),
                UpdaterEvent::Other,
                "{payload}"
            );
        }
    }

    fn job(card: &str, id: &str) -> JobRef {
        JobRef {
            card_key: card.into(),
            job_id: id.into(),
            due_at: None,
        }
    }

    #[test]
    fn jobs_are_grouped_by_card_in_order() {
        let groups = by_card(
            [
                job("a", "1"),
                job("b", "1"),
                job("a", "2"),
                job("c", "1"),
                job("b", "2"),
            ]
            .into_iter()
            .map(|j| (j, None))
            .collect(),
        );
        let ids: Vec<Vec<String>> = groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|(j, _)| format!("{}{}", j.card_key, j.job_id))
                    .collect()
            })
            .collect();
        assert_eq!(ids, [vec!["a1", "a2"], vec!["b1", "b2"], vec!["c1"]]);
    }

    #[test]
    fn summaries_add_up() {
        let one = Summary {
            seen: 2,
            claimed: 2,
            done: 1,
            failed: 1,
            skipped: 0,
            batch_item_failures: vec![BatchItemFailure {
                item_identifier: "100".into(),
            }],
        };
        let two = Summary {
            seen: 3,
            claimed: 1,
            done: 1,
            failed: 0,
            skipped: 2,
            batch_item_failures: Vec::new(),
        };
        assert_eq!(
            one.add(two),
            Summary {
                seen: 5,
                claimed: 3,
                done: 2,
                failed: 1,
                skipped: 2,
                batch_item_failures: vec![BatchItemFailure {
                    item_identifier: "100".into(),
                }],
            }
        );
        // A stream answer names its failed records as Lambda reads them; a sweep's has none.
        let answer = serde_json::to_value(one_with_failure()).unwrap();
        assert_eq!(
            answer["batchItemFailures"],
            serde_json::json!([{"itemIdentifier": "7"}])
        );
        assert!(serde_json::to_value(Summary::default())
            .unwrap()
            .get("batchItemFailures")
            .is_none());
    }

    fn one_with_failure() -> Summary {
        Summary {
            batch_item_failures: vec![BatchItemFailure {
                item_identifier: "7".into(),
            }],
            ..Summary::default()
        }
    }
}
