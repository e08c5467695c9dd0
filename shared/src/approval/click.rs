//! A new approval card and the click transitions: with an approver source configured, 请假 / 加班
//! open the request form (in the requester's p2p chat: a group card hands the form over), which
//! files a request, decided on an approver's card (the first decision wins: the request's state
//! is written version-checked). With none, `APPROVAL_FALLBACK` decides: the tutorial's simulated
//! approval, labelled as automatic, or a toast that the bot has no approvers.

use serde_json::{Map, Value};

use super::action::ApprovalAction;
use super::definition::Catalog;
use super::machine::{
    status_of, ApprovalData, ApprovalEvent, ApprovalStatus, AuditAction, AuditEntry, DomainError,
    Refusal, ReviewData, CARD_KIND, REVIEW_KIND,
};
use super::request::{parse_comment, parse_form};
use super::scheduled::{Followup, Scheduled, Timer};
use super::views::{self, render};
use crate::cards::text::FeishuId;
use crate::cards::CallbackAnswer;
use crate::config::{ApprovalFallback, ApproverConfig, CardDelivery};
use crate::store::keys::{card_key_tenant, tenant_card_key};
use crate::store::{CardState, EpochMillis, StoredUpdateToken};
use jiff::tz::TimeZone;

/// The simulated approval runs this long after the click, so the click's answer reaches Feishu
/// first.
pub const POST_ANSWER_DELAY_MS: i64 = 2_000;

/// Where a freshly sent approval card lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCard {
    /// The bot's card message (`open_message_id` of every click); the card key.
    pub message_id: String,
    pub chat_id: String,
    pub requester_open_id: String,
    /// The user's `审批` message.
    pub source_message_id: String,
    /// The CardKit entity, in entity mode.
    pub card_id: Option<String>,
    pub delivery: CardDelivery,
    /// The card is in the requester's p2p chat with the bot (nobody else sees it).
    pub in_p2p: bool,
    /// A store app's tenant the card belongs to; `None` for a self-built app.
    pub tenant: Option<String>,
}

/// The list of a requester's requests (我的申请) in `tenant` (a store app's; `None`: a self-built
/// app's); `None` for an id that is not an open_id (it could not be listed by anyone, and a key
/// attribute of the index holds at most 2 KB).
pub fn requests_list(tenant: Option<&str>, requester: &str) -> Option<String> {
    FeishuId::OpenId
        .is_valid(requester)
        .then(|| tenant_card_key(tenant, &format!("requests#{requester}")))
}

/// The list of an approver's cards (待我审批); `None` as for [`requests_list`].
pub fn reviews_list(tenant: Option<&str>, approver: &str) -> Option<String> {
    FeishuId::OpenId
        .is_valid(approver)
        .then(|| tenant_card_key(tenant, &format!("reviews#{approver}")))
}

/// The card key of an approval card: the bot card's `message_id`, which every click carries, in
/// its tenant's namespace (a store app's; `None`: a self-built app's, the id itself).
pub fn card_key(tenant: Option<&str>, message_id: &str) -> String {
    tenant_card_key(tenant, message_id)
}

/// The store app's tenant a card belongs to (from its key); `None` for a self-built app's card.
pub fn tenant_of(state: &CardState) -> Option<&str> {
    card_key_tenant(&state.card_key)
}

/// The state item of a pending approval card, written right after the send.
pub fn new_card_state(sent: &SentCard, now: EpochMillis) -> CardState {
    CardState {
        card_key: card_key(sent.tenant.as_deref(), &sent.message_id),
        version: 0,
        sequence: 0,
        chat_id: sent.chat_id.clone(),
        requester_open_id: sent.requester_open_id.clone(),
        source_message_id: Some(sent.source_message_id.clone()),
        message_id: Some(sent.message_id.clone()),
        card_id: sent.card_id.clone(),
        delivery: sent.delivery,
        kind: CARD_KIND.to_owned(),
        status: ApprovalStatus::Pending.stored(),
        update_token: None,
        data: ApprovalData {
            in_p2p: sent.in_p2p,
            ..ApprovalData::default()
        }
        .to_value(),
        created_at: now,
        updated_at: now,
        list_key: None,
    }
}

/// The request form a group card handed over, as sent to the requester's p2p chat
/// (`message_id` in `chat_id`): a draft of `kind` of its own, a message card (the job that sends
/// it may be retried, and a retried send is one message through its uuid, which a created CardKit
/// entity is not).
pub fn new_private_form_state(
    group_card: &CardState,
    kind: super::machine::RequestKind,
    message_id: &str,
    chat_id: &str,
    now: EpochMillis,
) -> CardState {
    let sent = SentCard {
        message_id: message_id.to_owned(),
        chat_id: chat_id.to_owned(),
        requester_open_id: group_card.requester_open_id.clone(),
        source_message_id: String::new(),
        card_id: None,
        delivery: CardDelivery::Message,
        in_p2p: true,
        tenant: tenant_of(group_card).map(str::to_owned),
    };
    // The form is drawn with the definition version the group card's click pinned.
    let pinned = ApprovalData::from_value(&group_card.data)
        .ok()
        .and_then(|d| d.definition);
    let mut state = CardState {
        status: ApprovalStatus::draft(kind).stored(),
        source_message_id: group_card.source_message_id.clone(),
        ..new_card_state(&sent, now)
    };
    if let Some(pinned) = pinned {
        let mut data = ApprovalData::from_value(&state.data).unwrap_or_default();
        data.definition = Some(pinned);
        state.data = data.to_value();
    }
    state
}

/// The state item of an approver's or a CC card (`viewer`: whose, for which step and round), written
/// right after its send; an approver's card is in their 待我审批, a CC card in nobody's. These are
/// message cards (no CardKit entity): the notify job that sends them may be retried, and a
/// retried send is one message through its uuid, which a created entity is not.
pub fn new_review_state(
    request: &CardState,
    viewer: &ReviewData,
    message_id: &str,
    chat_id: &str,
    now: EpochMillis,
) -> CardState {
    CardState {
        card_key: card_key(tenant_of(request), message_id),
        version: 0,
        sequence: 0,
        chat_id: chat_id.to_owned(),
        requester_open_id: request.requester_open_id.clone(),
        source_message_id: None,
        message_id: Some(message_id.to_owned()),
        card_id: None,
        delivery: CardDelivery::Message,
        kind: REVIEW_KIND.to_owned(),
        status: "open".to_owned(),
        update_token: None,
        data: serde_json::to_value(viewer).unwrap_or(Value::Null),
        created_at: now,
        updated_at: now,
        // A CC card is in nobody's 待我审批.
        list_key: viewer
            .cc
            .is_none()
            .then(|| reviews_list(tenant_of(request), &viewer.approver))
            .flatten(),
    }
}

/// What a new card schedules: its expiry, `approval_ttl_ms` after the send.
pub fn scheduled_for_new_card(state: &CardState, approval_ttl_ms: i64) -> Vec<Scheduled> {
    vec![Scheduled {
        timer: Timer::Expiry,
        at: state.created_at + approval_ttl_ms,
    }]
}

/// One click on an approval card, its action already parsed (an action that is not ours never
/// reaches the domain: it is answered with an error toast before any table access).
#[derive(Clone, PartialEq)]
pub struct Click<'a> {
    pub action: ApprovalAction,
    /// `operator.open_id` (new) or `open_id` (legacy).
    pub operator_open_id: Option<&'a str>,
    /// The click's card-update token as the delivery side records it (`jobs::issue_update_token`):
    /// kept on the new state for the post-answer update. A secret.
    pub update_token: Option<StoredUpdateToken>,
    pub now: EpochMillis,
    /// An undecided card older than this is expired (`APPROVAL_TTL`).
    pub approval_ttl_ms: i64,
    /// A filed request's approvers are first reminded this long after it was filed
    /// (`APPROVAL_REMIND_AFTER`).
    pub remind_after_ms: i64,
    /// The zone the card shows times in (`TENANT_TIME_ZONE`).
    pub time_zone: &'a TimeZone,
    /// A form submit's values (`action.form_value`, keyed by component `name`).
    pub form_value: Option<&'a Map<String, Value>>,
    /// The deployment's approver source and fallback: whether 请假 / 加班 open the form.
    pub approvers: &'a ApproverConfig,
    /// The definitions offered now and every version the clicked request pinned.
    pub catalog: &'a Catalog,
}

impl std::fmt::Debug for Click<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Click")
            .field("action", &self.action)
            .field("operator_open_id", &self.operator_open_id)
            .field("update_token", &self.update_token)
            .field("now", &self.now)
            .field("form_fields", &self.form_value.map(Map::len))
            .finish()
    }
}

/// What to do with a click.
#[derive(Debug, Clone, PartialEq)]
pub enum ClickDecision {
    /// Write `state` (version-checked; the clicked card's, or the request's for an approver's
    /// card) and schedule `followups` in one transaction, then answer.
    Transition {
        state: Box<CardState>,
        followups: Vec<Followup>,
        answer: CallbackAnswer,
    },
    /// Answer with a toast; write nothing.
    NoChange { answer: CallbackAnswer },
}

fn no_change(toast: crate::cards::Toast) -> Result<ClickDecision, DomainError> {
    Ok(ClickDecision::NoChange {
        answer: CallbackAnswer::toast_only(toast),
    })
}

fn refused(
    status: ApprovalStatus,
    data: &ApprovalData,
    catalog: &Catalog,
    refusal: Refusal,
) -> Result<ClickDecision, DomainError> {
    match refusal {
        Refusal::Expired => no_change(views::expired_toast()),
        _ => {
            let definition = views::definition_of(status, data, catalog);
            no_change(views::already_decided_toast(&views::outcome_text(
                status,
                definition.as_deref(),
            )))
        }
    }
}

/// Decides a click on a stored approval card (the requester's card).
pub fn decide_click(state: &CardState, click: &Click<'_>) -> Result<ClickDecision, DomainError> {
    let status = status_of(state)?;
    let mut data = ApprovalData::from_value(&state.data)?;
    // Only the requester acts on their approval card: in a group every member could click it.
    if click.operator_open_id != Some(state.requester_open_id.as_str()) {
        return no_change(views::not_requester_toast());
    }
    if !status.is_final() && click.now >= state.created_at + click.approval_ttl_ms {
        // The expiry job re-renders it; the click must not revive it meanwhile.
        return no_change(views::expired_toast());
    }
    // 发起 beside the select of request types: the type comes in the form.
    let action = match click.action {
        ApprovalAction::Choose => {
            let chosen = click
                .form_value
                .and_then(|f| f.get(super::request::fields::DEFINITION))
                .and_then(serde_json::Value::as_str)
                .and_then(super::definition::RequestKind::new);
            match chosen {
                Some(kind) => ApprovalAction::Submit(kind),
                None => return no_change(views::removed_type_toast()),
            }
        }
        other => other,
    };
    // A request type's button on a card drawn before the type was dropped (or never offered).
    let offered = match action {
        ApprovalAction::Submit(kind) if status == ApprovalStatus::Pending => {
            match click.catalog.current_of(kind) {
                Some(current) => Some(current),
                None => return no_change(views::removed_type_toast()),
            }
        }
        _ => None,
    };
    // Configuration decides, not a look-up (who approves is resolved when the request is filed):
    // the definition's approvers, else the deployment's. A card of an earlier version that
    // already holds its approvers opens the form too.
    let real = offered
        .is_some_and(|v| v.definition.approvers.is_some() || !v.definition.steps.is_empty())
        || click.approvers.has_source()
        || !data.approvers.is_empty();
    if let Some(current) = offered {
        // The form is drawn with this version, and submits against it.
        data.definition = Some(click.catalog.pin(current.definition.id, current.version));
    }
    let event = match action {
        ApprovalAction::Submit(kind) if real && data.in_p2p => ApprovalEvent::Open(kind),
        // A request's details never appear on a card other people share.
        ApprovalAction::Submit(kind) if real => ApprovalEvent::Move(kind),
        ApprovalAction::Submit(kind) => match click.approvers.fallback {
            ApprovalFallback::Simulated => ApprovalEvent::Submit(kind),
            ApprovalFallback::Refuse => return no_change(views::no_approvers_toast()),
        },
        ApprovalAction::File => ApprovalEvent::File,
        ApprovalAction::Withdraw
            if status.stage() == Some(super::machine::Stage::Draft)
                && !super::handover::is_resubmission(&data) =>
        {
            return refused(status, &data, click.catalog, Refusal::NotSubmitted(status));
        }
        ApprovalAction::Withdraw => ApprovalEvent::Withdraw,
        // 发起审批 belongs to the welcome card, which has no state (the handler answers it).
        ApprovalAction::Approve
        | ApprovalAction::Reject
        | ApprovalAction::Transfer
        | ApprovalAction::Return
        | ApprovalAction::Start
        | ApprovalAction::Choose => return no_change(views::unknown_action_toast()),
    };
    let next = match status.apply(event) {
        Ok(next) => next,
        Err(refusal) => return refused(status, &data, click.catalog, refusal),
    };
    let Some(kind) = next.request() else {
        return refused(status, &data, click.catalog, Refusal::NotSubmitted(status));
    };
    let definition = click.catalog.resolve(kind, data.definition);
    let mut followups = Vec::new();
    let toast = match event {
        ApprovalEvent::Submit(_) => {
            data.automatic = true;
            data.submitted_by = click.operator_open_id.map(str::to_owned);
            data.submitted_at = Some(click.now);
            followups.push(Followup {
                card_key: state.card_key.clone(),
                scheduled: Scheduled {
                    timer: Timer::SimulatedDecision,
                    at: click.now + POST_ANSWER_DELAY_MS,
                },
            });
            views::submitted_toast(&definition)
        }
        ApprovalEvent::Open(_) => return status_only(state, next, &data, click, None, Vec::new()),
        // The card says where the request went (and shows none of it); a job sends the form to
        // the requester's p2p chat.
        ApprovalEvent::Move(_) => {
            let handover = Followup {
                card_key: state.card_key.clone(),
                scheduled: Scheduled {
                    timer: Timer::PrivateForm,
                    at: click.now,
                },
            };
            let toast = Some(views::moved_toast(&definition));
            return status_only(state, next, &data, click, toast, vec![handover]);
        }
        ApprovalEvent::File => {
            // The form submits against the version it was drawn with, never a stand-in.
            if let Some(pin) = data.definition.filter(|pin| !click.catalog.has(*pin)) {
                tracing::warn!(id = %pin.id, version = pin.version, "pinned definition unreadable");
                return no_change(views::retry_later_toast());
            }
            let values = match parse_form(&definition, click.form_value.unwrap_or(&Map::new())) {
                Ok(values) => values,
                Err(problem) => return no_change(views::form_problem_toast(&problem)),
            };
            if super::handover::is_resubmission(&data) {
                // 退回 and filed again: a new round; the first round's votes do not count.
                super::handover::restart(&mut data, click.operator_open_id, click.now);
            }
            data.route = super::route::start(&definition, &values);
            data.values = Some(values);
            data.submitted_by = click.operator_open_id.map(str::to_owned);
            data.submitted_at = Some(click.now);
            data.audit.push(AuditEntry {
                at: click.now,
                by: data.submitted_by.clone(),
                action: AuditAction::Submitted,
                to: Vec::new(),
                comment: None,
            });
            let notify = match data.round {
                0 => Timer::NotifyApprovers,
                _ => Timer::NotifyAdded(data.added),
            };
            followups.push(Followup {
                card_key: state.card_key.clone(),
                scheduled: Scheduled {
                    timer: notify,
                    at: click.now,
                },
            });
            if data.round > 0 {
                // The first round's cards show the new round began.
                followups.push(Followup {
                    card_key: state.card_key.clone(),
                    scheduled: Scheduled {
                        timer: Timer::RefreshAll,
                        at: click.now,
                    },
                });
            }
            if definition.cc.is_some() && data.round == 0 {
                followups.push(Followup {
                    card_key: state.card_key.clone(),
                    scheduled: Scheduled {
                        timer: Timer::NotifyCc,
                        at: click.now,
                    },
                });
            }
            // Reminders only while the request can still expire after them (the definition's
            // `remind.after`, else the deployment's); a new round keeps the first round's.
            let remind_after_ms = definition
                .remind
                .as_ref()
                .map_or(click.remind_after_ms, |r| {
                    i64::try_from(r.after_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
                });
            let first_reminder = click.now + remind_after_ms;
            if first_reminder < state.created_at + click.approval_ttl_ms && data.round == 0 {
                followups.push(Followup {
                    card_key: state.card_key.clone(),
                    scheduled: Scheduled {
                        timer: Timer::Remind(1),
                        at: first_reminder,
                    },
                });
            }
            views::filed_toast(&definition)
        }
        ApprovalEvent::Withdraw => {
            data.audit.push(AuditEntry {
                at: click.now,
                by: click.operator_open_id.map(str::to_owned),
                action: AuditAction::Withdrawn,
                to: Vec::new(),
                comment: None,
            });
            super::route::cancel_rest(&mut data.route);
            if data.route.is_empty() {
                followups.extend(refresh_all(&data.all_cards(), None, click.now));
            } else {
                // A route's cards (every step's, each CC's) are refreshed by one job.
                followups.push(Followup {
                    card_key: state.card_key.clone(),
                    scheduled: Scheduled {
                        timer: Timer::RefreshAll,
                        at: click.now,
                    },
                });
            }
            views::withdrawn_toast()
        }
        _ => return refused(status, &data, click.catalog, Refusal::NotSubmitted(status)),
    };
    let mut new_state = state.clone();
    new_state.status = next.stored();
    new_state.data = data.to_value();
    new_state.updated_at = click.now;
    new_state.update_token = click.update_token.clone();
    // A request (tutorial or filed) is listed under its requester's 我的申请.
    new_state.list_key = requests_list(tenant_of(state), &state.requester_open_id);
    let card = render(next, &data, click.catalog, click.time_zone);
    Ok(ClickDecision::Transition {
        state: Box::new(new_state),
        followups,
        answer: CallbackAnswer {
            toast: Some(toast),
            card: Some(card),
        },
    })
}

/// A click that changes only the card's status (the form opened on it, or handed over to the
/// requester's p2p chat): the card as it now renders, with `toast` and `followups`.
fn status_only(
    state: &CardState,
    next: ApprovalStatus,
    data: &ApprovalData,
    click: &Click<'_>,
    toast: Option<crate::cards::Toast>,
    followups: Vec<Followup>,
) -> Result<ClickDecision, DomainError> {
    let mut new_state = state.clone();
    new_state.status = next.stored();
    new_state.data = data.to_value();
    new_state.updated_at = click.now;
    new_state.update_token = click.update_token.clone();
    Ok(ClickDecision::Transition {
        state: Box::new(new_state),
        followups,
        answer: CallbackAnswer {
            toast,
            card: Some(render(next, data, click.catalog, click.time_zone)),
        },
    })
}

/// A filed request nobody can decide (`why`): with `refuse` it ends, unrouted, with the reason;
/// with `simulated` it is approved automatically, labelled. Records it in `data` (the audit
/// trail, the reason, the time) and answers the status to write; the effects refresh the
/// requester's card and tell them.
pub fn no_approver_step(
    status: ApprovalStatus,
    data: &mut ApprovalData,
    why: super::machine::NoApprover,
    fallback: ApprovalFallback,
    now: EpochMillis,
) -> Result<ApprovalStatus, DomainError> {
    let event = match fallback {
        ApprovalFallback::Refuse => ApprovalEvent::Unroute,
        ApprovalFallback::Simulated => ApprovalEvent::Decide { approve: true },
    };
    let next = status
        .apply(event)
        .map_err(|refusal| DomainError::CorruptState(refusal.to_string()))?;
    data.no_approver = Some(why);
    data.decided_at = Some(now);
    data.audit.push(AuditEntry {
        at: now,
        by: None,
        action: AuditAction::NoApprover,
        to: Vec::new(),
        comment: None,
    });
    if fallback == ApprovalFallback::Simulated {
        data.automatic = true;
        data.audit.push(AuditEntry {
            at: now,
            by: None,
            action: AuditAction::Approved,
            to: Vec::new(),
            comment: None,
        });
    }
    Ok(next)
}

/// A vote on a routed request's step (`route::vote`): recorded exactly once (the request's state
/// is written version-checked, so of votes at once each is re-decided against the others); the
/// step decided by its mode makes the next step current (its approvers notified) or ends the
/// request. Every card of the request is refreshed after the answer.
fn decide_route_vote(
    review_data: &ReviewData,
    request: &CardState,
    status: ApprovalStatus,
    mut data: ApprovalData,
    click: &Click<'_>,
    approve: bool,
) -> Result<ClickDecision, DomainError> {
    use super::route::Voted;
    let (operator, comment) = match approver_answer(review_data, status, &data, click) {
        Ok(answer) => answer,
        Err(refusal) => return *refusal,
    };
    let step = review_data.step.as_deref().unwrap_or_default();
    let voted = super::route::vote(
        &mut data.route,
        step,
        operator,
        approve,
        comment.clone(),
        click.now,
    );
    let next = match voted {
        Voted::NotCurrent => return no_change(views::step_decided_toast()),
        Voted::AlreadyVoted => return no_change(views::already_voted_toast()),
        Voted::Recorded | Voted::StepApproved { next: Some(_) } => status,
        Voted::StepApproved { next: None } => status
            .apply(ApprovalEvent::Decide { approve: true })
            .map_err(|r| DomainError::CorruptState(r.to_string()))?,
        Voted::Rejected => status
            .apply(ApprovalEvent::Decide { approve: false })
            .map_err(|r| DomainError::CorruptState(r.to_string()))?,
    };
    data.audit
        .push(decision_entry(operator, approve, click.now));
    let mut followups = Vec::new();
    let at = |timer| Scheduled {
        timer,
        at: click.now,
    };
    if next.is_final() {
        data.decided_by = Some(operator.to_owned());
        data.decided_at = Some(click.now);
        data.comment = comment;
        followups.push(Followup {
            card_key: request.card_key.clone(),
            scheduled: at(Timer::NotifyRequester),
        });
    }
    if let Voted::StepApproved { next: Some(next) } = voted {
        // The next step's approvers are resolved and sent their cards by its notify job.
        data.approvers.clear();
        data.notified.clear();
        followups.push(Followup {
            card_key: request.card_key.clone(),
            scheduled: at(step_notify(&mut data, next)),
        });
    }
    // Every card of the request shows the vote: the requester's, each approver's, each CC's,
    // queued by one job on the request (votes at once write one small transaction each, and
    // their refreshes coalesce).
    followups.push(Followup {
        card_key: request.card_key.clone(),
        scheduled: at(Timer::RefreshAll),
    });
    let toast = views::voted_toast(approve, next.is_final());
    request_transition(request, next, &data, review_data, click, followups, toast)
}

/// The job that sends the cards of step `next`, now current: its own step's job in the first
/// round; in a later round (whose step jobs ran in the first) one of [`ApprovalData::added`].
pub fn step_notify(data: &mut ApprovalData, next: usize) -> Timer {
    if data.round == 0 {
        return Timer::NotifyStep(u32::try_from(next).unwrap_or(u32::MAX));
    }
    data.added += 1;
    Timer::NotifyAdded(data.added)
}

/// An approver's 转交 or 退回 on their card (`handover`): only the card's approver, with a vote
/// due; the written state is the request's, version-checked, as a vote's. 转交 gives the chosen
/// candidate the approver's place (their card is sent by the job of the change); 退回 turns the
/// requester's card back into the form, filled with what was filed. Every card is refreshed.
fn decide_handover(
    review_data: &ReviewData,
    request: &CardState,
    status: ApprovalStatus,
    mut data: ApprovalData,
    click: &Click<'_>,
) -> Result<ClickDecision, DomainError> {
    use super::handover::{self, HandoverRefusal};
    let (operator, comment) = match approver_answer(review_data, status, &data, click) {
        Ok(answer) => answer,
        Err(refusal) => return *refusal,
    };
    let step = review_data.step.as_deref();
    if !handover::vote_due(&data, step, operator) {
        return no_change(views::step_decided_toast());
    }
    let at = |timer| Followup {
        card_key: request.card_key.clone(),
        scheduled: Scheduled {
            timer,
            at: click.now,
        },
    };
    let (next, toast, mut followups) = if click.action == ApprovalAction::Transfer {
        let definition = click
            .catalog
            .resolve(data.request_kind_of(status)?, data.definition);
        let to = click
            .form_value
            .and_then(|f| f.get(super::request::fields::TRANSFER_TO))
            .and_then(super::request::single_value)
            .unwrap_or_default();
        match handover::transfer(
            &mut data,
            &definition,
            review_data,
            &request.requester_open_id,
            &to,
            comment,
            click.now,
        ) {
            Ok(()) => {}
            Err(HandoverRefusal::NotACandidate) => {
                return no_change(views::transfer_candidate_toast())
            }
            Err(HandoverRefusal::NotDue) => return no_change(views::step_decided_toast()),
        }
        (
            status,
            views::transferred_toast(),
            vec![at(Timer::NotifyAdded(data.added))],
        )
    } else {
        handover::record_return(&mut data, operator, comment, click.now);
        let next = status
            .apply(ApprovalEvent::Return)
            .map_err(|r| DomainError::CorruptState(r.to_string()))?;
        let returns = data
            .audit
            .iter()
            .filter(|e| e.action == AuditAction::Returned)
            .count();
        let told = at(Timer::NotifyReturned(
            u32::try_from(returns).unwrap_or(u32::MAX),
        ));
        (next, views::returned_by_you_toast(), vec![told])
    };
    // Every card of the request shows it: the requester's (the form again, after 退回), each
    // approver's (the old one's says to whom it went), each CC's.
    followups.push(at(Timer::RefreshAll));
    request_transition(request, next, &data, review_data, click, followups, toast)
}

/// Who answered on an approver's card, and their comment: only the card's approver, only while
/// the request waits; else the click's answer (a toast, nothing written).
#[allow(clippy::type_complexity)]
fn approver_answer<'c>(
    review_data: &ReviewData,
    status: ApprovalStatus,
    data: &ApprovalData,
    click: &Click<'c>,
) -> Result<(&'c str, Option<String>), Box<Result<ClickDecision, DomainError>>> {
    let Some(operator) = click
        .operator_open_id
        .filter(|op| *op == review_data.approver)
    else {
        return Err(Box::new(no_change(views::not_approver_toast())));
    };
    if !status.is_waiting() {
        return Err(Box::new(refused(
            status,
            data,
            click.catalog,
            Refusal::AlreadyDecided(status),
        )));
    }
    match parse_comment(click.form_value) {
        Ok(comment) => Ok((operator, comment)),
        Err(problem) => Err(Box::new(no_change(views::form_problem_toast(&problem)))),
    }
}

/// The request written after an approver's answer on their card (`review_data`): its new status
/// and data, the clicked card as it now renders with `toast`, and `followups`.
fn request_transition(
    request: &CardState,
    next: ApprovalStatus,
    data: &ApprovalData,
    review_data: &ReviewData,
    click: &Click<'_>,
    followups: Vec<Followup>,
    toast: crate::cards::Toast,
) -> Result<ClickDecision, DomainError> {
    let mut next_request = request.clone();
    next_request.status = next.stored();
    next_request.data = data.to_value();
    next_request.updated_at = click.now;
    let card = views::review_card(
        &next_request,
        Some(review_data),
        click.catalog,
        click.time_zone,
    )?;
    Ok(ClickDecision::Transition {
        state: Box::new(next_request),
        followups,
        answer: CallbackAnswer {
            toast: Some(toast),
            card: Some(card),
        },
    })
}

/// The audit line of an approver's 同意 or 拒绝.
fn decision_entry(by: &str, approve: bool, at: EpochMillis) -> AuditEntry {
    AuditEntry {
        at,
        by: Some(by.to_owned()),
        action: if approve {
            AuditAction::Approved
        } else {
            AuditAction::Rejected
        },
        to: Vec::new(),
        comment: None,
    }
}

/// A refresh of each card in `cards` but `except`, due `now`.
fn refresh_all(cards: &[String], except: Option<&str>, now: EpochMillis) -> Vec<Followup> {
    cards
        .iter()
        .filter(|key| Some(key.as_str()) != except)
        .map(|key| Followup {
            card_key: key.clone(),
            scheduled: Scheduled {
                timer: Timer::Refresh,
                at: now,
            },
        })
        .collect()
}

/// Decides a click on an approver's card (`review`) against its `request` (the requester's card
/// state). Only a listed approver decides; the written state is the request's, version-checked,
/// so of two decisions at once exactly one is written and the other is re-decided against it
/// (and refused). Every other card of the request is refreshed after the answer, and the
/// requester is told.
pub fn decide_review_click(
    review: &CardState,
    request: &CardState,
    click: &Click<'_>,
) -> Result<ClickDecision, DomainError> {
    let review_data = ReviewData::of(review)?;
    if review_data.request_key != request.card_key {
        return Err(DomainError::CorruptState(format!(
            "review of {} given {}",
            review_data.request_key, request.card_key
        )));
    }
    let approve = match click.action {
        ApprovalAction::Approve if review_data.cc.is_none() => true,
        ApprovalAction::Reject if review_data.cc.is_none() => false,
        ApprovalAction::Transfer | ApprovalAction::Return if review_data.cc.is_none() => false,
        _ => return no_change(views::unknown_action_toast()),
    };
    let status = status_of(request)?;
    let mut data = ApprovalData::from_value(&request.data)?;
    if !status.is_final() && click.now >= request.created_at + click.approval_ttl_ms {
        // Past its time to live: the expiry job ends it; no decision may revive it meanwhile.
        return no_change(views::expired_toast());
    }
    if review_data.round != data.round || status.stage() == Some(super::machine::Stage::Draft) {
        // A card of a round that was returned: the new round's card decides.
        return no_change(views::returned_toast());
    }
    if matches!(
        click.action,
        ApprovalAction::Transfer | ApprovalAction::Return
    ) {
        return decide_handover(&review_data, request, status, data, click);
    }
    if !data.route.is_empty() {
        return decide_route_vote(&review_data, request, status, data, click, approve);
    }
    let Some(operator) = click
        .operator_open_id
        .filter(|op| data.approvers.iter().any(|a| a == op))
    else {
        return no_change(views::not_approver_toast());
    };
    let next = match status.apply(ApprovalEvent::Decide { approve }) {
        Ok(next) => next,
        Err(refusal) => return refused(status, &data, click.catalog, refusal),
    };
    let comment = match parse_comment(click.form_value) {
        Ok(comment) => comment,
        Err(problem) => return no_change(views::form_problem_toast(&problem)),
    };
    data.decided_by = Some(operator.to_owned());
    data.decided_at = Some(click.now);
    data.comment = comment;
    data.audit
        .push(decision_entry(operator, approve, click.now));
    let mut next_request = request.clone();
    next_request.status = next.stored();
    next_request.data = data.to_value();
    next_request.updated_at = click.now;
    let mut followups = vec![
        Followup {
            card_key: request.card_key.clone(),
            scheduled: Scheduled {
                timer: Timer::Refresh,
                at: click.now,
            },
        },
        Followup {
            card_key: request.card_key.clone(),
            scheduled: Scheduled {
                timer: Timer::NotifyRequester,
                at: click.now,
            },
        },
    ];
    // Every approver's card, the decider's too: its refresh leaves it out of 待我审批 (and shows
    // the decision again should the callback's answer not have reached the client).
    followups.extend(refresh_all(&data.all_cards(), None, click.now));
    let card = views::review_card(
        &next_request,
        Some(&review_data),
        click.catalog,
        click.time_zone,
    )?;
    Ok(ClickDecision::Transition {
        state: Box::new(next_request),
        followups,
        answer: CallbackAnswer {
            toast: Some(views::decided_toast(approve)),
            card: Some(card),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::machine::RequestKind;
    use crate::approval::views::render_state;
    use crate::cards::{Element, ToastKind};
    use serde_json::json;

    fn sent(delivery: CardDelivery) -> SentCard {
        SentCard {
            message_id: "om_dc13264520392913993dd051dba21dcf".into(),
            chat_id: "oc_5ad11d72b830411d72b836c20".into(),
            requester_open_id: "ou_84aad35d084aa403a838cf73ee18467".into(),
            source_message_id: "om_5ce6d572455d361153b7cb51da133945".into(),
            card_id: (delivery == CardDelivery::Entity).then(|| "7355372766134157313".into()),
            delivery,
            in_p2p: true,
            tenant: None,
        }
    }

    fn click(kind: RequestKind) -> Click<'static> {
        Click {
            action: ApprovalAction::Submit(kind),
            operator_open_id: Some("ou_84aad35d084aa403a838cf73ee18467"),
            update_token: Some(StoredUpdateToken {
                token: "c-295ee57216a5dc9de90fefd0aadb4b1d7d8e21a4".into(),
                uses: 0,
                expires_at: NOW + 5_000 + 30 * 60 * 1000,
            }),
            now: NOW + 5_000,
            approval_ttl_ms: TTL,
            remind_after_ms: 24 * 3600 * 1000,
            time_zone: &CST,
            form_value: None,
            approvers: &TUTORIAL,
            catalog: &BUILTIN,
        }
    }

    static BUILTIN: std::sync::LazyLock<Catalog> = std::sync::LazyLock::new(Catalog::builtin);

    /// No approver source, and the deployment chose the simulated approval: the tutorial's flow.
    static TUTORIAL: ApproverConfig = ApproverConfig {
        open_ids: Vec::new(),
        from_leader: false,
        fallback: ApprovalFallback::Simulated,
    };

    const NOW: EpochMillis = 1_732_233_600_734;
    static CST: std::sync::LazyLock<TimeZone> =
        std::sync::LazyLock::new(|| TimeZone::get(crate::config::DEFAULT_TIME_ZONE).unwrap());
    const TTL: i64 = 7 * 24 * 3600 * 1000;

    #[test]
    fn a_new_card_is_pending_keyed_by_the_bot_message_and_expires_later() {
        let state = new_card_state(&sent(CardDelivery::Entity), NOW);
        assert_eq!(state.card_key, "om_dc13264520392913993dd051dba21dcf");
        assert_eq!(state.status, "pending");
        assert_eq!(state.kind, CARD_KIND);
        assert_eq!(state.delivery.as_str(), "entity");
        assert_eq!(state.card_id.as_deref(), Some("7355372766134157313"));
        assert_eq!(
            render_state(&state, &BUILTIN, &CST).unwrap(),
            views::pending_card(&BUILTIN)
        );
        let scheduled = scheduled_for_new_card(&state, TTL);
        assert_eq!(
            scheduled,
            [Scheduled {
                timer: Timer::Expiry,
                at: NOW + TTL
            }]
        );
    }

    #[test]
    fn a_click_on_a_pending_card_submits_stores_the_token_and_enqueues_the_post_answer_job() {
        for (kind, status, words) in [
            (
                RequestKind::LEAVE,
                "leave_submitted",
                "已提交请假申请（模拟审批，将自动通过）",
            ),
            (
                RequestKind::WORK_OVERTIME,
                "overtime_submitted",
                "已提交加班申请（模拟审批，将自动通过）",
            ),
        ] {
            let state = new_card_state(&sent(CardDelivery::Message), NOW);
            let ClickDecision::Transition {
                state: next,
                followups,
                answer,
            } = decide_click(&state, &click(kind)).unwrap()
            else {
                panic!("transition expected")
            };
            let [Followup {
                card_key,
                scheduled,
            }] = &followups[..]
            else {
                panic!("one followup: {followups:?}")
            };
            assert_eq!(card_key, &state.card_key);
            let scheduled = *scheduled;
            assert_eq!(next.status, status);
            assert_eq!(
                next.version, state.version,
                "the store bumps the version, the domain checks against it"
            );
            let token = next.update_token.clone().unwrap();
            assert_eq!(token.uses, 0);
            assert_eq!(token.expires_at, NOW + 5_000 + 30 * 60 * 1000);
            let data = ApprovalData::from_value(&next.data).unwrap();
            assert_eq!(data.submitted_at, Some(NOW + 5_000));
            assert_eq!(
                data.submitted_by.as_deref(),
                Some("ou_84aad35d084aa403a838cf73ee18467")
            );
            assert_eq!(
                scheduled,
                Scheduled {
                    timer: Timer::SimulatedDecision,
                    at: NOW + 5_000 + POST_ANSWER_DELAY_MS
                }
            );
            let toast = answer.toast.unwrap();
            assert_eq!(
                (toast.kind, toast.content.as_str()),
                (ToastKind::Success, words)
            );
            let card = answer.card.unwrap();
            assert_eq!(card, render_state(&next, &BUILTIN, &CST).unwrap());
            let Some(Element::Button(button)) = card.find(views::ids::BTN_LEAVE) else {
                panic!()
            };
            assert!(button.disabled);
        }
    }

    #[test]
    fn a_second_click_changes_nothing() {
        let state = new_card_state(&sent(CardDelivery::Entity), NOW);
        let leave = RequestKind::LEAVE;
        let ClickDecision::Transition {
            state: submitted, ..
        } = decide_click(&state, &click(leave)).unwrap()
        else {
            panic!()
        };
        for value in [leave, RequestKind::WORK_OVERTIME] {
            let decision = decide_click(&submitted, &click(value)).unwrap();
            let ClickDecision::NoChange { answer } = decision else {
                panic!("no change expected")
            };
            assert!(answer.card.is_none(), "the card stays as it is");
            assert_eq!(answer.toast.unwrap().content, "该审批已处理：请假审批中");
        }
        let mut approved = (*submitted).clone();
        approved.status = "leave_approved".into();
        let ClickDecision::NoChange { answer } = decide_click(&approved, &click(leave)).unwrap()
        else {
            panic!()
        };
        assert_eq!(answer.toast.unwrap().content, "该审批已处理：请假通过");
    }

    #[test]
    fn expired_and_overdue_cards_refuse_clicks() {
        let leave = RequestKind::LEAVE;
        let mut expired = new_card_state(&sent(CardDelivery::Entity), NOW);
        expired.status = "expired".into();
        let ClickDecision::NoChange { answer } = decide_click(&expired, &click(leave)).unwrap()
        else {
            panic!()
        };
        assert_eq!(answer.toast.unwrap().kind, ToastKind::Warning);
        let old = new_card_state(&sent(CardDelivery::Entity), NOW - TTL);
        let ClickDecision::NoChange { answer } = decide_click(&old, &click(leave)).unwrap() else {
            panic!()
        };
        assert_eq!(answer.toast.unwrap().kind, ToastKind::Warning);
    }

    #[test]
    fn corrupt_or_foreign_state_is_an_error() {
        let value = RequestKind::LEAVE;
        let mut state = new_card_state(&sent(CardDelivery::Entity), NOW);
        state.status = "weird".into();
        assert!(matches!(
            decide_click(&state, &click(value)),
            Err(DomainError::CorruptState(_))
        ));
        state.status = "pending".into();
        state.kind = "poll".into();
        assert!(matches!(
            decide_click(&state, &click(value)),
            Err(DomainError::NotAnApprovalCard(_))
        ));
        state.kind = CARD_KIND.into();
        state.data = json!({"submitted_at": "yesterday"});
        assert!(matches!(
            decide_click(&state, &click(value)),
            Err(DomainError::CorruptState(_))
        ));
    }

    #[test]
    fn a_click_without_token_still_works() {
        let state = new_card_state(&sent(CardDelivery::Entity), NOW);
        let mut c = click(RequestKind::LEAVE);
        c.update_token = None;
        let ClickDecision::Transition { state: next, .. } = decide_click(&state, &c).unwrap()
        else {
            panic!()
        };
        assert!(next.update_token.is_none());
        assert!(render_state(&next, &BUILTIN, &CST)
            .unwrap()
            .validate()
            .is_ok());
    }

    #[test]
    fn only_the_requester_may_click_and_others_change_nothing() {
        let state = new_card_state(&sent(CardDelivery::Entity), NOW);
        for operator in [None, Some("ou_someone_else"), Some("all"), Some("")] {
            let mut c = click(RequestKind::LEAVE);
            c.operator_open_id = operator;
            let ClickDecision::NoChange { answer } = decide_click(&state, &c).unwrap() else {
                panic!("{operator:?} may not decide")
            };
            assert!(answer.card.is_none());
            let toast = answer.toast.unwrap();
            assert_eq!(toast.kind, ToastKind::Warning);
            assert!(toast.content.contains("仅申请人"), "{}", toast.content);
        }
    }

    #[test]
    fn with_no_approver_source_refuse_files_nothing_and_says_why() {
        let refuse = ApproverConfig {
            fallback: ApprovalFallback::Refuse,
            ..TUTORIAL.clone()
        };
        let state = new_card_state(&sent(CardDelivery::Entity), NOW);
        let mut c = click(RequestKind::LEAVE);
        c.approvers = &refuse;
        let ClickDecision::NoChange { answer } = decide_click(&state, &c).unwrap() else {
            panic!("nothing may be decided without an approver")
        };
        assert!(answer.card.is_none());
        assert!(answer.toast.unwrap().content.contains("未配置审批人"));
    }

    #[test]
    fn with_an_approver_source_a_group_card_hands_the_form_to_p2p_and_shows_none_of_it() {
        let leader = ApproverConfig {
            from_leader: true,
            fallback: ApprovalFallback::Refuse,
            ..TUTORIAL.clone()
        };
        let mut in_group = sent(CardDelivery::Entity);
        in_group.in_p2p = false;
        let state = new_card_state(&in_group, NOW);
        let mut c = click(RequestKind::LEAVE);
        c.approvers = &leader;
        let ClickDecision::Transition {
            state: next,
            followups,
            answer,
        } = decide_click(&state, &c).unwrap()
        else {
            panic!()
        };
        assert_eq!(next.status, "leave_moved");
        assert_eq!(next.list_key, None, "the group card is in nobody's list");
        assert_eq!(
            followups
                .iter()
                .map(|f| f.scheduled.timer)
                .collect::<Vec<_>>(),
            [Timer::PrivateForm]
        );
        let card = answer.card.unwrap().to_json_string();
        assert!(!card.contains("form"), "no form on the group card: {card}");
        // In p2p the same click opens the form on the card itself.
        let state = new_card_state(&sent(CardDelivery::Entity), NOW);
        let ClickDecision::Transition { state: next, .. } = decide_click(&state, &c).unwrap()
        else {
            panic!()
        };
        assert_eq!(next.status, "leave_draft");
    }

    #[test]
    fn a_form_never_filed_cannot_be_withdrawn_but_a_returned_one_can() {
        let leader = ApproverConfig {
            from_leader: true,
            fallback: ApprovalFallback::Refuse,
            ..TUTORIAL.clone()
        };
        let state = new_card_state(&sent(CardDelivery::Entity), NOW);
        let mut c = click(RequestKind::LEAVE);
        c.approvers = &leader;
        let ClickDecision::Transition { state: draft, .. } = decide_click(&state, &c).unwrap()
        else {
            panic!()
        };
        assert_eq!(draft.status, "leave_draft");
        c.action = ApprovalAction::Withdraw;
        assert!(matches!(
            decide_click(&draft, &c).unwrap(),
            ClickDecision::NoChange { .. }
        ));
        let mut returned = (*draft).clone();
        let mut data = ApprovalData::from_value(&returned.data).unwrap();
        super::super::handover::record_return(&mut data, "ou_approver", None, NOW);
        returned.data = data.to_value();
        let ClickDecision::Transition { state: next, .. } = decide_click(&returned, &c).unwrap()
        else {
            panic!("a returned request may be withdrawn")
        };
        assert_eq!(next.status, "leave_withdrawn");
    }

    #[test]
    fn a_request_nobody_can_decide_is_refused_or_approved_automatically_never_silently() {
        use crate::approval::machine::NoApprover;
        let why = NoApprover::NoPermission { code: 99_991_672 };
        let mut data = ApprovalData::default();
        let refused = no_approver_step(
            ApprovalStatus::parse("leave_filed").unwrap(),
            &mut data,
            why,
            ApprovalFallback::Refuse,
            NOW,
        )
        .unwrap();
        assert_eq!(refused.stored(), "leave_unrouted");
        assert!(refused.is_final() && !data.automatic);
        assert_eq!(data.no_approver, Some(why));
        let mut data = ApprovalData::default();
        let approved = no_approver_step(
            ApprovalStatus::parse("overtime_filed").unwrap(),
            &mut data,
            why,
            ApprovalFallback::Simulated,
            NOW,
        )
        .unwrap();
        assert_eq!(approved.stored(), "overtime_approved");
        assert!(data.automatic, "labelled as automatic");
        assert!(no_approver_step(
            ApprovalStatus::Pending,
            &mut data,
            why,
            ApprovalFallback::Refuse,
            NOW
        )
        .is_err());
    }

    #[test]
    fn a_form_whose_pinned_version_cannot_be_read_files_nothing() {
        let leader = ApproverConfig {
            from_leader: true,
            fallback: ApprovalFallback::Refuse,
            ..TUTORIAL.clone()
        };
        let mut state = new_card_state(&sent(CardDelivery::Entity), NOW);
        state.status = ApprovalStatus::draft(RequestKind::LEAVE).stored();
        let mut data = ApprovalData::from_value(&state.data).unwrap();
        data.definition = Some(crate::approval::definition::DefinitionRef::new(
            RequestKind::LEAVE,
            9,
        ));
        state.data = data.to_value();
        let form = json!({"leave_type": "annual", "start_date": "2026-12-01",
                          "end_date": "2026-12-01", "reason": "x"});
        let mut c = click(RequestKind::LEAVE);
        c.action = ApprovalAction::File;
        c.approvers = &leader;
        c.form_value = form.as_object();
        let ClickDecision::NoChange { answer } = decide_click(&state, &c).unwrap() else {
            panic!("nothing may be filed against a stand-in definition")
        };
        assert_eq!(answer.toast.unwrap().kind, ToastKind::Error);
        // With the version readable, the same submit files.
        let mut catalog = Catalog::builtin();
        catalog.insert(
            crate::approval::definition::DefinitionRef::new(RequestKind::LEAVE, 9),
            std::sync::Arc::new(crate::approval::definition::builtin().definitions[0].clone()),
        );
        c.catalog = &catalog;
        let decision = decide_click(&state, &c).unwrap();
        assert!(
            matches!(decision, ClickDecision::Transition { .. }),
            "{decision:?}"
        );
    }

    #[test]
    fn click_debug_hides_the_update_token() {
        let text = format!("{:?}", click(RequestKind::LEAVE));
        assert!(!text.contains("c-295ee"), "{text}");
        assert!(text.contains("<redacted>"));
    }
}
