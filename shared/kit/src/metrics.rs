//! The platform's metrics in CloudWatch Embedded Metric Format (EMF): recorded through the
//! `metrics` facade, written by the `metrics_cloudwatch_embedded` exporter as one JSON document per
//! invocation on stdout, which CloudWatch Logs turns into metrics in the bot's namespace with the
//! dimension `Function`. A bot records its own metrics through the same facade; [`Emitter`] writes
//! them all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The most values of one metric an EMF document holds (CloudWatch's limit, which the exporter
/// enforces by dropping the rest with an error line per value).
pub const MAX_VALUES_PER_DOCUMENT: usize = 100;

/// The most histogram samples held between flushes; past it a sample is dropped (an invocation
/// makes far fewer Open API calls: 50/s for at most a 60 s timeout).
pub const MAX_PENDING_SAMPLES: usize = 100_000;

/// Whether an [`Emitter`] is installed: only then are histogram samples held for its flush.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Histogram samples since the last flush, in arrival order: written by [`Emitter::flush_to`]
/// in as many documents as they need, so a busy invocation (a sweep of hundreds of jobs, each
/// with its Open API calls) loses none.
static PENDING: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());

/// Records one histogram sample: held for the flush when an [`Emitter`] is installed, else
/// recorded at once (a test's own recorder).
fn sample(name: &'static str, value: f64) {
    if !INSTALLED.load(Ordering::Relaxed) {
        metrics::histogram!(name).record(value);
        return;
    }
    let mut pending = PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if pending.len() < MAX_PENDING_SAMPLES {
        pending.push((name, value));
    }
}

/// The one dimension every metric carries: the function's name (`event-callback`, …).
pub const FUNCTION_DIMENSION: &str = "Function";

/// The platform's metric names (CloudWatch's), each with what it counts.
pub mod names {
    /// Events and callbacks that passed verification (count).
    pub const RECEIVED: &str = "Received";
    /// Events and callbacks answered 200 (count).
    pub const ANSWERED: &str = "Answered";
    /// Re-deliveries answered without work (count).
    pub const DUPLICATES: &str = "Duplicates";
    /// Requests refused before any work (count), with a `Reason` dimension.
    pub const REJECTED: &str = "Rejected";
    /// Time from receipt to the answer (milliseconds).
    pub const ANSWER_LATENCY: &str = "AnswerLatency";
    /// Jobs delivered (count).
    pub const JOBS_DELIVERED: &str = "JobsDelivered";
    /// Jobs failed and rescheduled (count).
    pub const JOBS_RETRIED: &str = "JobsRetried";
    /// Jobs that went dead (count): an alarm's metric.
    pub const JOBS_DEAD: &str = "JobsDead";
    /// Open API answers with a non-zero `code` (count), with a `Code` dimension.
    pub const FEISHU_ERRORS: &str = "FeishuErrors";
    /// Open API answers HTTP 429 / 99991400 and its kin (count).
    pub const RATE_LIMITED: &str = "RateLimited";
    /// Time a call waited for the app-wide limiter (milliseconds).
    pub const LIMITER_WAIT: &str = "LimiterWait";

    /// Every platform name.
    pub const ALL: [&str; 11] = [
        RECEIVED,
        ANSWERED,
        DUPLICATES,
        REJECTED,
        ANSWER_LATENCY,
        JOBS_DELIVERED,
        JOBS_RETRIED,
        JOBS_DEAD,
        FEISHU_ERRORS,
        RATE_LIMITED,
        LIMITER_WAIT,
    ];
}

/// Registers each platform metric's unit and description with the recorder (EMF writes the unit).
pub fn describe() {
    use metrics::Unit;
    metrics::describe_counter!(
        names::RECEIVED,
        Unit::Count,
        "verified events and callbacks"
    );
    metrics::describe_counter!(names::ANSWERED, Unit::Count, "answered 200");
    metrics::describe_counter!(
        names::DUPLICATES,
        Unit::Count,
        "re-deliveries answered without work"
    );
    metrics::describe_counter!(
        names::REJECTED,
        Unit::Count,
        "refused before any work, by reason"
    );
    metrics::describe_histogram!(
        names::ANSWER_LATENCY,
        Unit::Milliseconds,
        "receipt to answer"
    );
    metrics::describe_counter!(names::JOBS_DELIVERED, Unit::Count, "jobs delivered");
    metrics::describe_counter!(
        names::JOBS_RETRIED,
        Unit::Count,
        "jobs failed and rescheduled"
    );
    metrics::describe_counter!(names::JOBS_DEAD, Unit::Count, "jobs that went dead");
    metrics::describe_counter!(
        names::FEISHU_ERRORS,
        Unit::Count,
        "Open API errors, by code"
    );
    metrics::describe_counter!(
        names::RATE_LIMITED,
        Unit::Count,
        "Open API rate-limit answers"
    );
    metrics::describe_histogram!(
        names::LIMITER_WAIT,
        Unit::Milliseconds,
        "app-wide limiter wait"
    );
}

/// A function's EMF exporter: installed once per process, flushed after each invocation.
pub struct Emitter(&'static metrics_cloudwatch_embedded::Collector);

impl Emitter {
    /// Installs the recorder for `function` (the `Function` dimension) in CloudWatch namespace
    /// `namespace`. `None` when a recorder is already installed (a second call, or a test that
    /// installed its own).
    pub fn install(namespace: &str, function: &str) -> Option<Self> {
        let collector = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(namespace.to_owned())
            .with_dimension(FUNCTION_DIMENSION, function.to_owned())
            .init()
            .ok()?;
        describe();
        INSTALLED.store(true, Ordering::Relaxed);
        Some(Self(collector))
    }

    /// Writes what was recorded since the last flush as EMF JSON lines to `out`: one document,
    /// or more when a histogram has more samples than one document holds
    /// ([`MAX_VALUES_PER_DOCUMENT`]); every sample is written, and the counters once.
    pub fn flush_to(&self, mut out: impl std::io::Write) {
        let pending = std::mem::take(
            &mut *PENDING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let mut by_name: Vec<(&'static str, Vec<f64>)> = Vec::new();
        for (name, value) in pending {
            match by_name.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(value),
                None => by_name.push((name, vec![value])),
            }
        }
        let documents = by_name
            .iter()
            .map(|(_, v)| v.len().div_ceil(MAX_VALUES_PER_DOCUMENT))
            .max()
            .unwrap_or(0)
            .max(1);
        for document in 0..documents {
            for (name, values) in &by_name {
                let chunk = values
                    .chunks(MAX_VALUES_PER_DOCUMENT)
                    .nth(document)
                    .unwrap_or_default();
                for value in chunk {
                    metrics::histogram!(*name).record(*value);
                }
            }
            if let Err(e) = self.0.flush(&mut out) {
                tracing::warn!(error = %e, "cannot write the metrics");
            }
        }
    }

    /// [`Emitter::flush_to`] stdout, where Lambda's log capture sends it to CloudWatch.
    pub fn flush(&self) {
        self.flush_to(std::io::stdout());
    }
}

/// A verified event or callback.
pub fn received() {
    metrics::counter!(names::RECEIVED).increment(1);
}

/// An answer: counted when it is a 200 (`ok`); its latency recorded for every answer, so the
/// slowest (a 503 after the whole budget) are in the p99.
pub fn answered(ok: bool, latency: Duration) {
    if ok {
        metrics::counter!(names::ANSWERED).increment(1);
    }
    sample(names::ANSWER_LATENCY, latency.as_secs_f64() * 1000.0);
}

/// A re-delivery answered without work.
pub fn duplicate() {
    metrics::counter!(names::DUPLICATES).increment(1);
}

/// A request refused before any work, with its reason (the webhook's rejection reason, or a bot's
/// own, e.g. `unknown action`).
pub fn rejected(reason: &'static str) {
    metrics::counter!(names::REJECTED, "Reason" => reason).increment(1);
}

/// A job delivered.
pub fn job_delivered() {
    metrics::counter!(names::JOBS_DELIVERED).increment(1);
}

/// A job failed and rescheduled.
pub fn job_retried() {
    metrics::counter!(names::JOBS_RETRIED).increment(1);
}

/// A job that went dead (its attempts used up, a permanent failure, or buried on claim).
pub fn job_dead() {
    metrics::counter!(names::JOBS_DEAD).increment(1);
}

/// An Open API answer with a non-zero `code`.
pub fn feishu_error(code: i64) {
    metrics::counter!(names::FEISHU_ERRORS, "Code" => code.to_string()).increment(1);
}

/// An Open API rate-limit answer.
pub fn rate_limited() {
    metrics::counter!(names::RATE_LIMITED).increment(1);
}

/// Time a call waited for the app-wide limiter.
pub fn limiter_wait(waited: Duration) {
    sample(names::LIMITER_WAIT, waited.as_secs_f64() * 1000.0);
}
