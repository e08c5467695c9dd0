//! The bot's metrics in CloudWatch Embedded Metric Format (EMF): recorded through the `metrics`
//! facade, written by the `metrics_cloudwatch_embedded` exporter as one JSON document per
//! invocation on stdout, which CloudWatch Logs turns into metrics in namespace [`NAMESPACE`]
//! with the dimension `Function`. The names live here, in one place: the handlers record them,
//! the template's alarms and dashboard use them, and a test checks that the two agree.

use std::time::Duration;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "cardbot";
/// The one dimension every metric carries: the function's name (`event-callback`, …).
pub const FUNCTION_DIMENSION: &str = "Function";

/// Metric names (CloudWatch's), each with what it counts.
pub mod names {
    /// Events and callbacks that passed verification (count).
    pub const RECEIVED: &str = "Received";
    /// Events and callbacks answered 200 (count).
    pub const ANSWERED: &str = "Answered";
    /// Re-deliveries answered without work (count).
    pub const DUPLICATES: &str = "Duplicates";
    /// Requests refused before any work (count), one metric per reason (see [`super::Rejection`]).
    pub const REJECTED: &str = "Rejected";
    /// Time from receipt to the answer (milliseconds).
    pub const ANSWER_LATENCY: &str = "AnswerLatency";
    /// Replies to a command sent inline (count).
    pub const REPLIES_SENT: &str = "RepliesSent";
    /// Card clicks decided (count).
    pub const CLICKS: &str = "Clicks";
    /// Approvers' decisions written (count).
    pub const DECISIONS: &str = "Decisions";
    /// Jobs delivered (count).
    pub const JOBS_DELIVERED: &str = "JobsDelivered";
    /// Jobs failed and rescheduled (count).
    pub const JOBS_RETRIED: &str = "JobsRetried";
    /// Jobs that went dead (count): the alarm's metric.
    pub const JOBS_DEAD: &str = "JobsDead";
    /// Open API answers with a non-zero `code` (count), one metric per code.
    pub const FEISHU_ERRORS: &str = "FeishuErrors";
    /// Open API answers HTTP 429 / 99991400 and its kin (count).
    pub const RATE_LIMITED: &str = "RateLimited";
    /// Time a call waited for the app-wide limiter (milliseconds).
    pub const LIMITER_WAIT: &str = "LimiterWait";
    /// Leader look-ups the contact API refused for a missing permission (99991672 scope, 41050
    /// contact data scope) (count): the alarm's metric.
    pub const APPROVER_LOOKUP_DENIED: &str = "ApproverLookupDenied";
    /// Approvers skipped because Feishu refuses to reach that one person (230013 outside the
    /// availability scope, 230029 resigned, …) (count).
    pub const APPROVERS_UNREACHABLE: &str = "ApproversUnreachable";

    /// Every name, for the template test.
    pub const ALL: [&str; 16] = [
        RECEIVED,
        ANSWERED,
        DUPLICATES,
        REJECTED,
        ANSWER_LATENCY,
        REPLIES_SENT,
        CLICKS,
        DECISIONS,
        JOBS_DELIVERED,
        JOBS_RETRIED,
        JOBS_DEAD,
        FEISHU_ERRORS,
        RATE_LIMITED,
        LIMITER_WAIT,
        APPROVER_LOOKUP_DENIED,
        APPROVERS_UNREACHABLE,
    ];
}

/// Registers each metric's unit and description with the recorder (EMF writes the unit).
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
    metrics::describe_counter!(
        names::REPLIES_SENT,
        Unit::Count,
        "command replies sent inline"
    );
    metrics::describe_counter!(names::CLICKS, Unit::Count, "card clicks decided");
    metrics::describe_counter!(
        names::DECISIONS,
        Unit::Count,
        "approvers' decisions written"
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
    metrics::describe_counter!(
        names::APPROVER_LOOKUP_DENIED,
        Unit::Count,
        "leader look-ups refused for a missing contact permission"
    );
    metrics::describe_counter!(
        names::APPROVERS_UNREACHABLE,
        Unit::Count,
        "approvers Feishu will not reach, skipped"
    );
    metrics::describe_histogram!(
        names::LIMITER_WAIT,
        Unit::Milliseconds,
        "app-wide limiter wait"
    );
}

/// The function's EMF exporter: installed once per process, flushed after each invocation.
pub struct Emitter(&'static metrics_cloudwatch_embedded::Collector);

impl Emitter {
    /// Installs the recorder for `function` (the `Function` dimension). `None` when a recorder
    /// is already installed (a second call, or a test that installed its own).
    pub fn install(function: &str) -> Option<Self> {
        let collector = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(NAMESPACE)
            .with_dimension(FUNCTION_DIMENSION, function.to_owned())
            .init()
            .ok()?;
        describe();
        Some(Self(collector))
    }

    /// Writes what was recorded since the last flush as EMF JSON lines to `out`.
    pub fn flush_to(&self, out: impl std::io::Write) {
        if let Err(e) = self.0.flush(out) {
            tracing::warn!(error = %e, "cannot write the metrics");
        }
    }

    /// [`Emitter::flush_to`] stdout, where Lambda's log capture sends it to CloudWatch.
    pub fn flush(&self) {
        self.flush_to(std::io::stdout());
    }
}

pub fn received() {
    metrics::counter!(names::RECEIVED).increment(1);
}

/// An answer: counted when it is a 200 (`ok`); its latency recorded for every answer, so the
/// slowest (a 503 after the whole budget) are in the p99.
pub fn answered(ok: bool, latency: Duration) {
    if ok {
        metrics::counter!(names::ANSWERED).increment(1);
    }
    metrics::histogram!(names::ANSWER_LATENCY).record(latency.as_secs_f64() * 1000.0);
}

pub fn duplicate() {
    metrics::counter!(names::DUPLICATES).increment(1);
}

/// A request refused before any work, with its reason (the webhook's rejection reason, or
/// `unknown_action`).
pub fn rejected(reason: &'static str) {
    metrics::counter!(names::REJECTED, "Reason" => reason).increment(1);
}

pub fn reply_sent() {
    metrics::counter!(names::REPLIES_SENT).increment(1);
}

pub fn click() {
    metrics::counter!(names::CLICKS).increment(1);
}

pub fn decision() {
    metrics::counter!(names::DECISIONS).increment(1);
}

pub fn job_delivered() {
    metrics::counter!(names::JOBS_DELIVERED).increment(1);
}

pub fn job_retried() {
    metrics::counter!(names::JOBS_RETRIED).increment(1);
}

pub fn job_dead() {
    metrics::counter!(names::JOBS_DEAD).increment(1);
}

pub fn feishu_error(code: i64) {
    metrics::counter!(names::FEISHU_ERRORS, "Code" => code.to_string()).increment(1);
}

pub fn rate_limited() {
    metrics::counter!(names::RATE_LIMITED).increment(1);
}

pub fn limiter_wait(waited: Duration) {
    metrics::histogram!(names::LIMITER_WAIT).record(waited.as_secs_f64() * 1000.0);
}

/// A leader look-up refused for a missing permission (`code`: 99991672 or 41050; the code is in
/// the WARN line, the metric carries only the function, as its alarm reads it).
pub fn approver_lookup_denied() {
    metrics::counter!(names::APPROVER_LOOKUP_DENIED).increment(1);
}

/// An approver skipped: Feishu refuses to reach that person (`code`, in the WARN line).
pub fn approver_unreachable() {
    metrics::counter!(names::APPROVERS_UNREACHABLE).increment(1);
}
