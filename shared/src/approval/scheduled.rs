//! The approval's scheduled transitions: the tutorial's simulated decision after a click, and the
//! expiry of a card left undecided. Each yields the state to write and the card change to show,
//! including the element-by-element CardKit walk from the submitted card to the approved one.
//! Which Feishu API delivers the change is the jobs' choice, not the domain's.

use serde_json::json;

use super::definition::Catalog;
use super::machine::{status_of, ApprovalData, ApprovalEvent, ApprovalStatus, DomainError, Stage};
use super::views::{ids, render};
use crate::cards::{BatchUpdateAction, Card, CardKitOp, Element, ElementPosition};
use crate::store::{CardState, EpochMillis};
use jiff::tz::TimeZone;

/// Work the approval schedules for later; the updater runs it as a job at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    pub timer: Timer,
    /// Epoch ms.
    pub at: EpochMillis,
}

/// What happens when a scheduled time comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The tutorial's simulated approver decides a submitted request.
    SimulatedDecision,
    /// The card reached `APPROVAL_TTL` undecided.
    Expiry,
    /// A request was filed: send each approver their card (p2p, by open_id).
    NotifyApprovers,
    /// A request was decided: tell the requester by a text.
    NotifyRequester,
    /// Show the card as its state (or its request) now renders: another card's click changed it.
    Refresh,
    /// The `n`th reminder (1-based) of a filed request's approvers.
    Remind(u32),
    /// A group card handed its request over: send the form to the requester's p2p chat.
    PrivateForm,
    /// A request was filed: send the definition's `cc` users and chats their read-only card.
    NotifyCc,
    /// A route's step `n` (0-based, after the first) became current: send its approvers their
    /// cards. A job of its own per step, written with the vote that decided the step before.
    NotifyStep(u32),
    /// Approvers were added to the waiting step (转交, escalation) or a returned request was filed
    /// again: send the ones not yet sent their card. `n` is [`super::ApprovalData::added`] after
    /// the change, so each change has a job of its own, written with it.
    NotifyAdded(u32),
    /// An approver returned the request for changes (the `n`th return): tell the requester by a
    /// text, since their card (the form again) may be far up the chat.
    NotifyReturned(u32),
    /// A definition's reminders ran out with the step still waiting: add its escalation target.
    /// `n` is the index of the step that waited at the last reminder ([`ONE_STEP`] for a
    /// request without a route): a step decided since ends the silence, and nothing is added.
    Escalate(u32),
    /// A routed request changed: show every card of it again (the requester's, each
    /// approver's, each CC's). One job on the request, so votes in a row coalesce into one.
    RefreshAll,
}

/// [`Timer::Escalate`]'s step of a request without a route.
pub const ONE_STEP: u32 = u32::MAX;

/// The index of the step that waits ([`ONE_STEP`] for a request without a route): what an
/// escalation is scheduled for.
pub fn waiting_step(data: &ApprovalData) -> u32 {
    super::route::current(&data.route).map_or(ONE_STEP, |i| u32::try_from(i).unwrap_or(u32::MAX))
}

/// Work scheduled on a card, which may be another than the one a click wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followup {
    pub card_key: String,
    pub scheduled: Scheduled,
}

pub use feishu_kit::card_update::CardChange;

/// One scheduled transition, decided against the card's current state.
#[derive(Debug, Clone, PartialEq)]
pub struct CardStep {
    /// The state after the step.
    pub state: CardState,
    /// The status changed: `state` must be written (version-checked) before the change is shown.
    pub changed: bool,
    /// What to show; `None`: nothing to deliver.
    pub show: Option<CardChange>,
    /// Why, for the log.
    pub reason: &'static str,
    /// Work on other cards, scheduled in the same write as `state`.
    pub followups: Vec<Followup>,
}

impl CardStep {
    fn nothing(state: &CardState, reason: &'static str) -> Self {
        Self {
            state: state.clone(),
            changed: false,
            show: None,
            reason,
            followups: Vec::new(),
        }
    }

    /// Shows the current card again: an earlier attempt wrote the state but its delivery failed.
    pub fn redeliver(state: &CardState, card: Card, reason: &'static str) -> Self {
        Self {
            state: state.clone(),
            changed: false,
            show: Some(CardChange { card, edits: None }),
            reason,
            followups: Vec::new(),
        }
    }
}

/// Runs `timer` against the card's current state at `now`. Times on the card are shown in
/// `time_zone`; the request is drawn from its definition in `catalog`.
pub fn on_timer(
    state: &CardState,
    timer: Timer,
    now: EpochMillis,
    catalog: &Catalog,
    time_zone: &TimeZone,
) -> Result<CardStep, DomainError> {
    let render = |status, data: &ApprovalData| render(status, data, catalog, time_zone);
    let status = status_of(state)?;
    let data = ApprovalData::from_value(&state.data)?;
    let mut next_state = state.clone();
    next_state.updated_at = now;
    match (timer, status) {
        (
            Timer::SimulatedDecision,
            ApprovalStatus::Request {
                stage: Stage::Submitted,
                ..
            },
        ) => {
            let next = status
                .apply(ApprovalEvent::Approve)
                .map_err(|refusal| DomainError::CorruptState(refusal.to_string()))?;
            let mut next_data = data.clone();
            next_data.decided_at = Some(now);
            // Only the simulated approver decides here, whichever version submitted the card.
            next_data.automatic = true;
            next_state.status = next.stored();
            next_state.data = next_data.to_value();
            let to = render(next, &next_data);
            let edits = Some(approval_walk(&render(status, &data), &to));
            Ok(CardStep {
                state: next_state,
                changed: true,
                show: Some(CardChange { card: to, edits }),
                reason: "simulated approval",
                followups: Vec::new(),
            })
        }
        (
            Timer::SimulatedDecision,
            ApprovalStatus::Request {
                stage: Stage::Approved,
                ..
            },
        ) => Ok(CardStep::redeliver(
            state,
            render(status, &data),
            "redeliver approval",
        )),
        (Timer::SimulatedDecision, ApprovalStatus::Pending | ApprovalStatus::Expired) => {
            Ok(CardStep::nothing(state, "nothing submitted"))
        }
        // A request with an approver is never decided by the simulated approver.
        (Timer::SimulatedDecision, _) => Ok(CardStep::nothing(state, "decided by an approver")),
        (
            Timer::Expiry,
            ApprovalStatus::Pending
            | ApprovalStatus::Request {
                stage: Stage::Draft,
                ..
            },
        ) if !super::handover::is_resubmission(&data) => {
            next_state.status = ApprovalStatus::Expired.stored();
            Ok(CardStep {
                state: next_state,
                changed: true,
                show: Some(CardChange {
                    card: render(ApprovalStatus::Expired, &data),
                    edits: None,
                }),
                reason: "expire",
                followups: Vec::new(),
            })
        }
        // A filed request nobody decided (or one returned for changes and not filed again): every
        // card shows 已过期 and the requester is told.
        (
            Timer::Expiry,
            ApprovalStatus::Request {
                stage: Stage::Filed | Stage::Draft,
                ..
            },
        ) => {
            let mut next_data = data.clone();
            next_data.audit.push(super::machine::AuditEntry {
                at: now,
                by: None,
                action: super::machine::AuditAction::Expired,
                to: Vec::new(),
                comment: None,
            });
            super::route::cancel_rest(&mut next_data.route);
            next_state.status = ApprovalStatus::Expired.stored();
            next_state.data = next_data.to_value();
            // A route's cards (every step's, each CC's) are refreshed by one job.
            let cards = if next_data.route.is_empty() {
                next_data.all_cards()
            } else {
                Vec::new()
            };
            let mut followups: Vec<Followup> = cards
                .iter()
                .map(|key| Followup {
                    card_key: key.clone(),
                    scheduled: Scheduled {
                        timer: Timer::Refresh,
                        at: now,
                    },
                })
                .collect();
            followups.push(Followup {
                card_key: state.card_key.clone(),
                scheduled: Scheduled {
                    timer: Timer::NotifyRequester,
                    at: now,
                },
            });
            if !next_data.route.is_empty() {
                followups.push(Followup {
                    card_key: state.card_key.clone(),
                    scheduled: Scheduled {
                        timer: Timer::RefreshAll,
                        at: now,
                    },
                });
            }
            Ok(CardStep {
                state: next_state,
                changed: true,
                show: Some(CardChange {
                    card: render(ApprovalStatus::Expired, &next_data),
                    edits: None,
                }),
                reason: "expire request",
                followups,
            })
        }
        (Timer::Expiry, ApprovalStatus::Expired) => Ok(CardStep::redeliver(
            state,
            render(status, &data),
            "redeliver expiry",
        )),
        (Timer::Expiry, _) => Ok(CardStep::nothing(state, "decided before expiry")),
        (Timer::Refresh, _) => Ok(CardStep::redeliver(
            state,
            super::views::render_state(state, catalog, time_zone)?,
            "refresh",
        )),
        (
            Timer::NotifyApprovers
            | Timer::NotifyRequester
            | Timer::Remind(_)
            | Timer::PrivateForm
            | Timer::NotifyCc
            | Timer::NotifyStep(_)
            | Timer::NotifyAdded(_)
            | Timer::NotifyReturned(_)
            | Timer::Escalate(_)
            | Timer::RefreshAll,
            _,
        ) => Ok(CardStep::nothing(state, "not a card update")),
    }
}

fn markdown_of(card: &Card, id: &str) -> Option<crate::cards::Markdown> {
    match card.find(id)? {
        Element::Markdown(m) => Some(m.clone()),
        _ => None,
    }
}

/// The CardKit walk from a submitted card to the approved one, in the fewest calls that still type
/// the decision note out (3, within the budget of one post-answer job):
///
/// 1. `batch_update`: streaming on, the status tag, the button row deleted, the timeline line
///    added, the prompt and the request line: one step the user sees at once, so one call.
/// 2. `content`: types the decision note out (only the content API streams, and only while
///    streaming is on).
/// 3. `batch_update`: the note's English, then streaming off with the final summary. The English
///    comes after the typed text because whether the content API keeps an element's
///    `i18n_content` is not documented (`cards-and-cardkit.md` §6), and this order shows it
///    either way.
///
/// Falls back to one full update if either card lacks an element the walk needs.
pub fn approval_walk(from: &Card, to: &Card) -> Vec<CardKitOp> {
    let full = || vec![CardKitOp::UpdateCard { card: to.clone() }];
    let (Some(note), Some(status), Some(line), Some(Element::Div(prompt)), Some(added)) = (
        markdown_of(to, ids::NOTE),
        markdown_of(to, ids::STATUS),
        markdown_of(to, ids::TL_SUBMITTED),
        to.find(ids::PROMPT),
        to.find(ids::TL_APPROVED),
    ) else {
        return full();
    };
    // A text's English travels with it (`i18n_content`); the streamed note gets its own after.
    let texts = |m: &crate::cards::Markdown| json!({ "content": m.content, "i18n_content": m.i18n_content });
    let needed = [
        ids::NOTE,
        ids::STATUS,
        ids::TL_SUBMITTED,
        ids::PROMPT,
        ids::ACTIONS,
    ];
    if needed.iter().any(|id| from.find(id).is_none()) || from.header != to.header {
        return full();
    }
    let streaming = |on: bool, card: &Card| json!({ "config": { "streaming_mode": on, "summary": card.config.summary } });
    let element =
        |id: &str, partial_element: serde_json::Value| BatchUpdateAction::PartialUpdateElement {
            element_id: id.to_owned(),
            partial_element,
        };
    vec![
        CardKitOp::BatchUpdate {
            actions: vec![
                BatchUpdateAction::PartialUpdateSetting {
                    settings: streaming(true, from),
                },
                element(ids::STATUS, texts(&status)),
                BatchUpdateAction::DeleteElements {
                    element_ids: vec![ids::ACTIONS.to_owned()],
                },
                BatchUpdateAction::AddElements {
                    position: ElementPosition::InsertAfter(ids::TL_SUBMITTED.to_owned()),
                    elements: vec![crate::cards::element_value(added)],
                },
                element(ids::PROMPT, json!({ "text": prompt.text })),
                element(ids::TL_SUBMITTED, texts(&line)),
            ],
        },
        CardKitOp::StreamText {
            element_id: ids::NOTE.to_owned(),
            content: note.content.clone(),
        },
        CardKitOp::BatchUpdate {
            actions: vec![
                element(ids::NOTE, json!({ "i18n_content": note.i18n_content })),
                BatchUpdateAction::PartialUpdateSetting {
                    settings: streaming(false, to),
                },
            ],
        },
    ]
}
