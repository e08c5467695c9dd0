//! The follow-ups of a filed request as pure steps: who is still to get a card (notify), the next
//! reminder (remind), and a card shown again (refresh). The effects (`crate::deliver`) read the
//! request, ask these, then write, send and retry; they decide nothing themselves.

use crate::cards::Card;
use crate::store::{CardState, EpochMillis};
use jiff::tz::TimeZone;

use super::machine::{status_of, ApprovalData, AuditAction, AuditEntry, DomainError, ReviewData};
use super::scheduled::{Scheduled, Timer};

/// Whether the request is still waiting for a decision (filed, not decided, withdrawn or expired).
pub fn is_waiting(request: &CardState) -> Result<bool, DomainError> {
    Ok(status_of(request)?.is_waiting())
}

/// The approvers of a filed request who have not been sent their card yet, in order.
pub fn approvers_to_notify(request: &CardState) -> Result<Vec<String>, DomainError> {
    let data = ApprovalData::from_value(&request.data)?;
    Ok(data
        .approvers
        .iter()
        .filter(|a| !data.notified.contains(a))
        .cloned()
        .collect())
}

/// The request after recording that `approver` was sent their card (`card_key`; `None`: Feishu
/// refused them for good); `None` when it is recorded already (a retried job).
pub fn notified_step(
    request: &CardState,
    approver: &str,
    card_key: Option<&str>,
) -> Result<Option<CardState>, DomainError> {
    let mut data = ApprovalData::from_value(&request.data)?;
    if data.notified.iter().any(|a| a == approver) {
        return Ok(None);
    }
    data.notified.push(approver.to_owned());
    if let Some(card_key) = card_key {
        if !data.review_cards.iter().any(|k| k == card_key) {
            data.review_cards.push(card_key.to_owned());
        }
    }
    let mut next = request.clone();
    next.data = data.to_value();
    Ok(Some(next))
}

/// Whether every approver was tried and none has a card: nobody can decide, and the requester
/// must be told rather than wait for the expiry.
pub fn nobody_reached(request: &CardState) -> Result<bool, DomainError> {
    let data = ApprovalData::from_value(&request.data)?;
    Ok(data.review_cards.is_empty() && data.notified.len() >= data.approvers.len())
}

/// What the `n`th reminder of a request does.
#[derive(Debug, Clone, PartialEq)]
pub enum RemindStep {
    /// Decided, withdrawn or expired: nothing to remind.
    NotWaiting,
    /// The approvers or their cards are not there yet (the notify job has not got through):
    /// try again later.
    NotReady(&'static str),
    /// Every approver was refused for good: nobody to remind.
    NobodyReachable,
    /// Record the reminder in the audit trail (`next`, version-checked) with the next reminder's
    /// job (`later`), then send to `review_cards`.
    Record {
        /// The request with the `Reminded` entry.
        next: Box<CardState>,
        /// The next reminder, unless this was the last.
        later: Option<Scheduled>,
        /// The approvers' cards to reply to.
        review_cards: Vec<String>,
    },
    /// Recorded by an earlier attempt: only send to `review_cards`.
    Send {
        /// The approvers' cards to reply to.
        review_cards: Vec<String>,
    },
}

/// The `n`th reminder (1-based, at most `max`) of `request` at `now`; the next comes `interval_ms`
/// later.
pub fn remind_step(
    request: &CardState,
    n: u32,
    max: u32,
    now: EpochMillis,
    interval_ms: i64,
) -> Result<RemindStep, DomainError> {
    if !is_waiting(request)? {
        return Ok(RemindStep::NotWaiting);
    }
    let mut data = ApprovalData::from_value(&request.data)?;
    if data.approvers.is_empty() {
        return Ok(RemindStep::NotReady("approvers not resolved yet"));
    }
    if data.review_cards.is_empty() {
        if data.notified.len() >= data.approvers.len() {
            return Ok(RemindStep::NobodyReachable);
        }
        return Ok(RemindStep::NotReady("approvers' cards not sent yet"));
    }
    let review_cards = data.review_cards.clone();
    let reminded = data
        .audit
        .iter()
        .filter(|e| e.action == AuditAction::Reminded)
        .count();
    if reminded >= n as usize {
        return Ok(RemindStep::Send { review_cards });
    }
    data.audit.push(AuditEntry {
        at: now,
        by: None,
        action: AuditAction::Reminded,
    });
    let mut next = request.clone();
    next.data = data.to_value();
    next.updated_at = now;
    let later = (n < max).then(|| Scheduled {
        timer: Timer::Remind(n + 1),
        at: now + interval_ms,
    });
    Ok(RemindStep::Record {
        next: Box::new(next),
        later,
        review_cards,
    })
}

/// A card shown again as it renders now.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshStep {
    /// The card to show.
    pub card: Card,
    /// The card's state to write with it: an approver's card of a request that ended leaves their
    /// 待我审批 list.
    pub next: CardState,
    /// Whether `next` differs from the stored state (the list rule applied).
    pub changed: bool,
}

/// The refresh of `state` (an approver's card, with its `request`; or a request's own card).
pub fn refresh_step(
    state: &CardState,
    request: Option<&CardState>,
    time_zone: &TimeZone,
) -> Result<RefreshStep, DomainError> {
    let card = super::views::render_card(state, request, time_zone)?;
    let ended = request
        .and_then(|r| status_of(r).ok())
        .is_some_and(super::ApprovalStatus::is_final);
    let mut next = state.clone();
    if ended {
        next.list_key = None;
    }
    Ok(RefreshStep {
        card,
        changed: ended && state.list_key.is_some(),
        next,
    })
}

/// The request an approver's card belongs to (its key), or `None` for a request's own card.
pub fn request_of(state: &CardState) -> Option<String> {
    ReviewData::of(state).ok().map(|review| review.request_key)
}
