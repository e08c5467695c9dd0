//! The bot's metrics in CloudWatch Embedded Metric Format (EMF), in namespace [`NAMESPACE`] with
//! the dimension `Function`: the kit's platform metrics ([`feishu_kit::metrics`], re-exported here)
//! and the app's own. The names live here, in one place: the handlers record them, the template's
//! alarms and dashboard use them, and a test checks that the two agree.

pub use feishu_kit::metrics::{
    answered, duplicate, feishu_error, job_dead, job_delivered, job_retried, limiter_wait,
    rate_limited, received, rejected, Emitter, FUNCTION_DIMENSION,
};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "cardbot";

/// Metric names (CloudWatch's), each with what it counts: the kit's and the app's.
pub mod names {
    pub use feishu_kit::metrics::names::{
        ANSWERED, ANSWER_LATENCY, DUPLICATES, FEISHU_ERRORS, JOBS_DEAD, JOBS_DELIVERED,
        JOBS_RETRIED, LIMITER_WAIT, RATE_LIMITED, RECEIVED, REJECTED,
    };

    /// Replies to a command sent inline (count).
    pub const REPLIES_SENT: &str = "RepliesSent";
    /// Card clicks decided (count).
    pub const CLICKS: &str = "Clicks";
    /// Approvers' decisions written (count).
    pub const DECISIONS: &str = "Decisions";
    /// Leader look-ups the contact API refused for a missing permission (99991672 scope, 41050
    /// contact data scope) (count): the alarm's metric.
    pub const APPROVER_LOOKUP_DENIED: &str = "ApproverLookupDenied";
    /// Approvers skipped because Feishu refuses to reach that one person (230013 outside the
    /// availability scope, 230029 resigned, …) (count).
    pub const APPROVERS_UNREACHABLE: &str = "ApproversUnreachable";
    /// A store app's requests and jobs served, by `Tenant` (its tenant_key) and `Kind` (`event`,
    /// `click`, `job`) (count): one metric per tenant, so only a store app writes it.
    pub const TENANT_REQUESTS: &str = "TenantRequests";

    /// Every name, for the template test.
    pub const ALL: [&str; 17] = [
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
        TENANT_REQUESTS,
    ];
}

/// Registers the app's metrics' units and descriptions (the kit's are registered by
/// [`Emitter::install`]).
pub fn describe() {
    use metrics::Unit;
    feishu_kit::metrics::describe();
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
    metrics::describe_counter!(
        names::TENANT_REQUESTS,
        Unit::Count,
        "a store app's requests and jobs served, by tenant"
    );
}

/// Installs the EMF exporter for `function` in [`NAMESPACE`] and registers every metric's unit;
/// `None` when a recorder is already installed.
pub fn install(function: &str) -> Option<Emitter> {
    let emitter = Emitter::install(NAMESPACE, function)?;
    describe();
    Some(emitter)
}

/// A store app's request or job served for `tenant`; `kind`: `event`, `click` or `job`.
pub fn tenant_served(tenant: &str, kind: &'static str) {
    metrics::counter!(names::TENANT_REQUESTS, "Tenant" => tenant.to_owned(), "Kind" => kind)
        .increment(1);
}

/// A command reply sent inline.
pub fn reply_sent() {
    metrics::counter!(names::REPLIES_SENT).increment(1);
}

/// A card click decided.
pub fn click() {
    metrics::counter!(names::CLICKS).increment(1);
}

/// An approver's decision written.
pub fn decision() {
    metrics::counter!(names::DECISIONS).increment(1);
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
