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
    // Reminders (and the escalation after them) belong to a request's first round: one returned
    // for changes and filed again is not reminded again.
    if data.round > 0 {
        return Ok(RemindStep::NotWaiting);
    }
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
        to: Vec::new(),
        comment: None,
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
    catalog: &super::definition::Catalog,
    time_zone: &TimeZone,
) -> Result<RefreshStep, DomainError> {
    let card = super::views::render_card(state, request, catalog, time_zone)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::{new_card_state, SentCard};
    use crate::cards::CardDelivery;

    const NOW: EpochMillis = 1_732_233_600_734;
    const DAY: i64 = 24 * 3600 * 1000;

    /// A filed leave request with two approvers, `notified` and `cards` as given.
    fn filed(notified: &[&str], cards: &[&str]) -> CardState {
        let mut state = new_card_state(
            &SentCard {
                message_id: "om_dc13264520392913993dd051dba21dcf".into(),
                chat_id: "oc_5ad11d72b830411d72b836c20".into(),
                requester_open_id: "ou_84aad35d084aa403a838cf73ee18467".into(),
                source_message_id: "om_5ce6d572455d361153b7cb51da133945".into(),
                card_id: None,
                delivery: CardDelivery::Message,
                in_p2p: true,
                tenant: None,
            },
            NOW,
        );
        state.status = "leave_filed".into();
        let mut data = ApprovalData::from_value(&state.data).unwrap();
        data.approvers = vec!["ou_a1".into(), "ou_b2".into()];
        data.notified = notified.iter().map(|s| (*s).to_owned()).collect();
        data.review_cards = cards.iter().map(|s| (*s).to_owned()).collect();
        state.data = data.to_value();
        state
    }

    #[test]
    fn notify_sends_to_the_approvers_not_recorded_and_records_each_once() {
        let request = filed(&["ou_a1"], &["om_r1"]);
        assert_eq!(approvers_to_notify(&request).unwrap(), ["ou_b2"]);
        let next = notified_step(&request, "ou_b2", Some("om_r2"))
            .unwrap()
            .unwrap();
        assert!(approvers_to_notify(&next).unwrap().is_empty());
        let data = ApprovalData::from_value(&next.data).unwrap();
        assert_eq!(data.review_cards, ["om_r1", "om_r2"]);
        assert_eq!(notified_step(&next, "ou_b2", Some("om_r2")).unwrap(), None);
        assert!(!nobody_reached(&next).unwrap());
        // Both refused for good: tried, no card, nobody can decide.
        let refused = filed(&["ou_a1", "ou_b2"], &[]);
        assert!(nobody_reached(&refused).unwrap());
    }

    #[test]
    fn a_reminder_is_recorded_once_with_the_next_one_and_only_while_waiting() {
        let request = filed(&["ou_a1", "ou_b2"], &["om_r1", "om_r2"]);
        let RemindStep::Record {
            next,
            later,
            review_cards,
        } = remind_step(&request, 1, 3, NOW, DAY).unwrap()
        else {
            panic!("the first reminder is recorded");
        };
        assert_eq!(review_cards, ["om_r1", "om_r2"]);
        assert_eq!(
            later,
            Some(Scheduled {
                timer: Timer::Remind(2),
                at: NOW + DAY
            })
        );
        // A retry finds it recorded and only sends; the last one schedules nothing.
        assert!(matches!(
            remind_step(&next, 1, 3, NOW, DAY).unwrap(),
            RemindStep::Send { .. }
        ));
        assert!(matches!(
            remind_step(&next, 3, 3, NOW, DAY).unwrap(),
            RemindStep::Record { later: None, .. }
        ));
        let mut decided = request.clone();
        decided.status = "leave_approved".into();
        assert_eq!(
            remind_step(&decided, 1, 3, NOW, DAY).unwrap(),
            RemindStep::NotWaiting
        );
        assert!(matches!(
            remind_step(&filed(&["ou_a1"], &[]), 1, 3, NOW, DAY).unwrap(),
            RemindStep::NotReady(_)
        ));
        assert_eq!(
            remind_step(&filed(&["ou_a1", "ou_b2"], &[]), 1, 3, NOW, DAY).unwrap(),
            RemindStep::NobodyReachable
        );
    }
}
