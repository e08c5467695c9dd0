//! Decisions other systems receive: every request that ends puts one event on the deployment's
//! event bus (Amazon EventBridge, `DECISION_EVENT_BUS`), for HR, finance and access systems to act
//! on. The event is written as a job in the same write as the state that ended the request, so a
//! crash never loses it; a retried job may put it twice, with the same `event_id` in its detail,
//! which consumers deduplicate on (docs/decision-events.md).

use serde_json::{json, Map, Value};

use crate::approval::definition::DefinitionRef;
use crate::approval::DomainError;
use crate::approval::{status_of, ApprovalData, ApprovalStatus, Stage, StepOutcome};
use crate::store::CardState;
use feishu_kit::events::BusEvent;

/// The events' `source`.
pub const SOURCE: &str = "cardbot";
/// The events' `detail-type`.
pub const DETAIL_TYPE: &str = "Approval request ended";
/// `detail.schema`: raised when a field changes meaning or goes away (new fields do not raise it).
pub const SCHEMA: u32 = 1;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Approved,
    Rejected,
    Withdrawn,
    /// Filed, but nobody could decide it and the deployment refuses (`APPROVAL_FALLBACK=refuse`).
    Unrouted,
    /// Filed, and still undecided when `APPROVAL_TTL` ran out.
    Expired,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
            Self::Unrouted => "unrouted",
            Self::Expired => "expired",
        }
    }

    /// The outcome of a request in `status`, when it has ended.
    pub fn of(status: ApprovalStatus) -> Option<Self> {
        if status == ApprovalStatus::Expired {
            return Some(Self::Expired);
        }
        match status.stage()? {
            Stage::Approved => Some(Self::Approved),
            Stage::Rejected => Some(Self::Rejected),
            Stage::Withdrawn => Some(Self::Withdrawn),
            Stage::Unrouted => Some(Self::Unrouted),
            Stage::Submitted | Stage::Draft | Stage::Filed | Stage::Moved => None,
        }
    }
}

/// Whether writing `after` over `before` (the same card) ends a request: a filed (or, in the
/// tutorial, submitted) request reaching its outcome. `None` for every other write, and for
/// cards that are not requests (an approver's card, a CC card).
pub fn ends(before: &CardState, after: &CardState) -> Option<Outcome> {
    if before.card_key != after.card_key {
        return None;
    }
    let returned = || {
        ApprovalData::from_value(&before.data)
            .is_ok_and(|d| crate::approval::handover::is_resubmission(&d))
    };
    let (Ok(before), Ok(after)) = (status_of(before), status_of(after)) else {
        return None;
    };
    // A request returned for changes (its form again) was filed: its end is a decision too.
    let waiting = match before.stage() {
        Some(Stage::Filed | Stage::Submitted) => true,
        Some(Stage::Draft) => returned(),
        _ => false,
    };
    waiting.then(|| Outcome::of(after)).flatten()
}

/// The event id of the end of the request on `card_key`: the same for every put of it.
pub fn event_id(card_key: &str, outcome: Outcome) -> String {
    format!("{card_key}/{}", outcome.as_str())
}

/// The event of the ended request on `state`; `Ok(None)` when it has not ended.
///
/// `detail`: `{schema, event_id, request_id, definition: {id, version}, requester, fields,
/// outcome, automatic, steps: [{id, mode, outcome, approvers, votes: [{open_id, approve, comment,
/// at}]}], filed_at, ended_at}`; times are epoch milliseconds.
pub fn event(state: &CardState) -> Result<Option<BusEvent>, DomainError> {
    let status = status_of(state)?;
    let Some(outcome) = Outcome::of(status) else {
        return Ok(None);
    };
    let data = ApprovalData::from_value(&state.data)?;
    let definition = data
        .definition
        .or_else(|| status.request().map(|id| DefinitionRef::new(id, 0)));
    let steps: Vec<Value> = if data.route.is_empty() {
        // A one-step request: its approvers, and the decision as the one vote.
        let votes: Vec<Value> = match (&data.decided_by, outcome) {
            (Some(by), Outcome::Approved | Outcome::Rejected) => vec![json!({
                "open_id": by,
                "approve": outcome == Outcome::Approved,
                "comment": data.comment,
                "at": data.decided_at,
            })],
            _ => Vec::new(),
        };
        vec![json!({
            "id": "approval",
            "mode": "any",
            "outcome": match outcome {
                Outcome::Approved => "approved",
                Outcome::Rejected => "rejected",
                Outcome::Withdrawn | Outcome::Unrouted | Outcome::Expired => "cancelled",
            },
            "approvers": data.approvers,
            "votes": votes,
        })]
    } else {
        data.route
            .iter()
            .map(|step| {
                json!({
                    "id": step.id,
                    "mode": step.mode,
                    "outcome": step_outcome(step.outcome),
                    "approvers": step.approvers,
                    "votes": step.votes.iter().map(|v| json!({
                        "open_id": v.by,
                        "approve": v.approve,
                        "comment": v.comment,
                        "at": v.at,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect()
    };
    let mut detail = json!({
        "schema": SCHEMA,
        "event_id": event_id(&state.card_key, outcome),
        "request_id": state.card_key,
        "definition": definition.map(|d| json!({"id": d.id.as_str(), "version": d.version})),
        "requester": data.submitted_by,
        "fields": data.values.clone().unwrap_or_else(Map::new),
        "outcome": outcome.as_str(),
        "automatic": data.automatic,
        "steps": steps,
        "filed_at": data.submitted_at,
        "ended_at": data.decided_at.unwrap_or(state.updated_at),
    });
    // A store app's request: whose it is (absent for a self-built app's, whose events are as before).
    if let Some(tenant) = crate::store::keys::card_key_tenant(&state.card_key) {
        detail["tenant_key"] = json!(tenant);
    }
    Ok(Some(BusEvent {
        source: SOURCE.to_owned(),
        detail_type: DETAIL_TYPE.to_owned(),
        detail,
    }))
}

fn step_outcome(outcome: StepOutcome) -> &'static str {
    match outcome {
        StepOutcome::Upcoming => "upcoming",
        StepOutcome::Waiting => "waiting",
        StepOutcome::Approved => "approved",
        StepOutcome::Rejected => "rejected",
        StepOutcome::Skipped => "skipped",
        StepOutcome::Cancelled => "cancelled",
    }
}
