//! Card-update jobs: the app's job kinds and when they run, and the plan of one job. Pure data and
//! decisions; the updater executes them.
//!
//! The domain (`crate::approval`) decides every transition and the card it shows; a job kind maps
//! to the domain's timer. Which Feishu API shows the change, and what a failed call means, are the
//! kit's delivery rules ([`feishu_kit::card_update`]).

use crate::approval::{self, CardStep, DomainError, Scheduled, Timer};
use crate::cards::Card;
use crate::store::{self, CardState, EpochMillis, Job, NewJob};
use feishu_kit::card_update::{self, PlanDeliveryError};
use jiff::tz::TimeZone;
use serde_json::{json, Value};

pub use crate::approval::POST_ANSWER_DELAY_MS;
// The delivery rules are the kit's; the app's code and tests name them here as before.
pub use feishu_kit::card_update::{
    choose_message_path, is_per_recipient_refusal, issue_update_token, on_failure,
    op_idempotency_key, spend_update_token, CardChange, ClaimBudget, Delivery, FailureAction,
    MessageOp, MessagePath, CARDKIT_MIN_INTERVAL_MS, UPDATE_TOKEN_MARGIN_MS, UPDATE_TOKEN_MAX_USES,
    UPDATE_TOKEN_TTL_MS, UPDATE_WINDOW_MS,
};
/// Default `APPROVAL_TTL`: an undecided card expires after 7 days.
pub const DEFAULT_APPROVAL_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// What a job does (stored as `Job.kind`, a [`store::JobKind`] string; also its job id, since each
/// kind happens at most once per card).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// After a click's answer: the tutorial's simulated approval, delivered to the card.
    PostAnswer,
    /// An undecided card reached `APPROVAL_TTL`: re-render it as expired.
    Expire,
    /// A command reply the event handler could not send within its budget (the outbox).
    SendReply,
    /// A filed request: send each approver their card.
    NotifyApprovers,
    /// A decided request: tell the requester.
    NotifyRequester,
    /// Show a card as it now renders (another card's click changed its request).
    Refresh,
    /// Remind a filed request's approvers (`payload.n`: which reminder).
    Remind,
    /// Send the request form a group card handed over to the requester's p2p chat.
    PrivateForm,
    /// Send a filed request's `cc` users and chats their read-only card.
    NotifyCc,
    /// Queue a refresh of every card of a request.
    RefreshAll,
    /// A request ended: put its decision event on the event bus (`DECISION_EVENT_BUS`).
    DecisionEvent,
    /// A definition's reminders ran out: add its escalation target to the waiting step.
    Escalate,
    /// A store app's tenant uninstalled the app: every job of the tenant still waiting goes dead
    /// (`tenant_uninstalled`), so nothing more is sent for it and every item of it expires.
    TenantCleanup,
    /// A kind this version does not know (written by a newer one): kept as stored, so the job is
    /// still read, claimed and recorded dead, never dropped or left blocking the sweep.
    Other(String),
}

impl JobKind {
    /// The stored string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::PostAnswer => "post_answer",
            Self::Expire => "expire",
            Self::SendReply => "send_reply",
            Self::NotifyApprovers => "notify_approvers",
            Self::NotifyRequester => "notify_requester",
            Self::Refresh => "refresh",
            Self::Remind => "remind",
            Self::PrivateForm => "private_form",
            Self::NotifyCc => "notify_cc",
            Self::RefreshAll => "refresh_all",
            Self::DecisionEvent => "decision_event",
            Self::Escalate => "escalate",
            Self::TenantCleanup => "tenant_cleanup",
            Self::Other(kind) => kind,
        }
    }

    /// A kind this version knows; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match Self::from(s) {
            Self::Other(_) => None,
            known => Some(known),
        }
    }
}

impl From<&str> for JobKind {
    fn from(s: &str) -> Self {
        match s {
            "post_answer" => Self::PostAnswer,
            "expire" => Self::Expire,
            "send_reply" => Self::SendReply,
            "notify_approvers" => Self::NotifyApprovers,
            "notify_requester" => Self::NotifyRequester,
            "refresh" => Self::Refresh,
            "remind" => Self::Remind,
            "private_form" => Self::PrivateForm,
            "notify_cc" => Self::NotifyCc,
            "refresh_all" => Self::RefreshAll,
            "decision_event" => Self::DecisionEvent,
            "escalate" => Self::Escalate,
            "tenant_cleanup" => Self::TenantCleanup,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl PartialEq<&str> for JobKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<JobKind> for store::JobKind {
    fn from(kind: JobKind) -> Self {
        store::JobKind::new(kind.as_str())
    }
}

impl From<&store::JobKind> for JobKind {
    fn from(kind: &store::JobKind) -> Self {
        Self::from(kind.as_str())
    }
}

impl PartialEq<store::JobKind> for JobKind {
    fn eq(&self, other: &store::JobKind) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<JobKind> for store::JobKind {
    fn eq(&self, other: &JobKind) -> bool {
        self.as_str() == other.as_str()
    }
}

impl JobKind {
    /// Whether a run of this job sends messages (each through a uuid Feishu remembers for 1 h,
    /// `../shared/feishu/`): run again past that window, a message the user already has may be
    /// sent twice. Card updates and events are not messages.
    pub fn sends_messages(&self) -> bool {
        matches!(
            self,
            Self::SendReply
                | Self::NotifyApprovers
                | Self::NotifyRequester
                | Self::Remind
                | Self::PrivateForm
                | Self::NotifyCc
                | Self::Other(_)
        )
    }

    /// The domain timer a card-update job runs; `None` for the reply outbox and unknown kinds.
    pub fn timer(&self) -> Option<Timer> {
        match self {
            Self::PostAnswer => Some(Timer::SimulatedDecision),
            Self::Expire => Some(Timer::Expiry),
            Self::NotifyApprovers => Some(Timer::NotifyApprovers),
            Self::NotifyRequester => Some(Timer::NotifyRequester),
            Self::Refresh => Some(Timer::Refresh),
            Self::PrivateForm => Some(Timer::PrivateForm),
            Self::NotifyCc => Some(Timer::NotifyCc),
            Self::RefreshAll => Some(Timer::RefreshAll),
            // Which reminder it is lives in the payload; the effects run it.
            Self::Remind
            | Self::SendReply
            | Self::DecisionEvent
            | Self::Escalate
            | Self::TenantCleanup
            | Self::Other(_) => None,
        }
    }

    /// The job kind that runs a domain timer.
    pub fn for_timer(timer: Timer) -> Self {
        match timer {
            Timer::SimulatedDecision => Self::PostAnswer,
            Timer::Expiry => Self::Expire,
            Timer::NotifyApprovers => Self::NotifyApprovers,
            Timer::NotifyRequester => Self::NotifyRequester,
            Timer::Refresh => Self::Refresh,
            Timer::Remind(_) => Self::Remind,
            Timer::PrivateForm => Self::PrivateForm,
            Timer::NotifyCc => Self::NotifyCc,
            Timer::NotifyStep(_) | Timer::NotifyAdded(_) => Self::NotifyApprovers,
            Timer::NotifyReturned(_) => Self::NotifyRequester,
            Timer::Escalate(_) => Self::Escalate,
            Timer::RefreshAll => Self::RefreshAll,
        }
    }
}

/// The job that runs what the domain scheduled on a card. Its id is its kind: each timer runs at
/// most once per card, so scheduling one twice is one job.
pub fn scheduled_job(card_key: &str, scheduled: Scheduled) -> NewJob {
    let kind = JobKind::for_timer(scheduled.timer);
    // Reminders happen up to three times: each is its own job (`remind_1`, …).
    let (job_id, payload) = match scheduled.timer {
        Timer::Remind(n) => (format!("{}_{n}", kind.as_str()), json!({ "n": n })),
        // A step's approvers are notified by a job of that step (never a done one re-armed, so
        // it is written in the same transaction as the vote that made the step current).
        Timer::NotifyStep(n) => (format!("{}_{n}", kind.as_str()), json!({ "step": n })),
        Timer::NotifyAdded(n) => (
            format!("{}_added_{n}", kind.as_str()),
            json!({ "added": n }),
        ),
        Timer::NotifyReturned(n) => (
            format!("{}_returned_{n}", kind.as_str()),
            json!({ "returned": n }),
        ),
        Timer::Escalate(step) => (kind.as_str().to_owned(), json!({ "step": step })),
        _ => (kind.as_str().to_owned(), json!({})),
    };
    NewJob {
        card_key: card_key.to_owned(),
        job_id,
        kind: kind.into(),
        payload,
        not_before: scheduled.at,
        // A card shown again, or a route's next step notified: each change needs the work again
        // even when an earlier run of it is done; changes in a row coalesce into one pending run.
        rearm: matches!(scheduled.timer, Timer::Refresh | Timer::RefreshAll),
    }
}

/// The decision-event job of a write of `after` over `before` that ends a request
/// ([`crate::decisions::ends`]): written in the same transaction as `after`, due at once. Its id
/// is its kind, so a request's end is one job however often the write is retried.
pub fn decision_event_job(before: &CardState, after: &CardState) -> Option<NewJob> {
    crate::decisions::ends(before, after)?;
    Some(NewJob {
        card_key: after.card_key.clone(),
        job_id: JobKind::DecisionEvent.as_str().to_owned(),
        kind: JobKind::DecisionEvent.into(),
        payload: json!({}),
        not_before: after.updated_at,
        rearm: false,
    })
}

/// The cleanup of a store app's `tenant` after it uninstalled the app (one per tenant: a
/// re-delivered `app_uninstalled` enqueues nothing new), in the tenant's namespace.
pub fn tenant_cleanup_job(tenant: &str, now: EpochMillis) -> NewJob {
    NewJob {
        card_key: crate::store::keys::tenant_card_key(Some(tenant), "tenant"),
        job_id: JobKind::TenantCleanup.as_str().to_owned(),
        kind: JobKind::TenantCleanup.into(),
        payload: json!({}),
        not_before: now,
        rearm: true,
    }
}

/// The outbox job for a reply that did not fit the event handler's budget. Keyed by the user's
/// message (there is no card yet); `payload` is what the sender needs to try again.
pub fn send_reply_job(source_message_id: &str, payload: Value, now: EpochMillis) -> NewJob {
    NewJob {
        card_key: source_message_id.to_owned(),
        job_id: JobKind::SendReply.as_str().to_owned(),
        kind: JobKind::SendReply.into(),
        payload,
        not_before: now,
        rearm: false,
    }
}

// ---------------------------------------------------------------------------------------------
// Planning a job

/// What the updater does with one claimed job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPlan {
    /// Written first (version-checked); a conflict means re-read and re-plan.
    pub state_update: Option<CardState>,
    /// Then delivered; `None` completes the job without calling Feishu.
    pub delivery: Option<Delivery>,
    /// Why, for the log.
    pub reason: &'static str,
    /// Jobs (on this card or others) written with `state_update`, in one transaction.
    pub followups: Vec<NewJob>,
}

/// A job that can never be delivered; record it on the job (dead), never drop it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("unknown job kind {0:?}")]
    UnknownJobKind(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("card is past Feishu's 14-day update window")]
    TooOld,
    #[error("card state has no message_id to update")]
    NoMessage,
    #[error("job kind {0:?} is not a card update")]
    NotACardUpdate(&'static str),
}

/// Plans a claimed job against the card's current state, at `now`: the domain decides the step
/// (`approval::on_timer`, times shown in `time_zone`), this picks the Feishu API that shows it.
pub fn plan_job(
    job: &Job,
    state: &CardState,
    now: EpochMillis,
    catalog: &approval::definition::Catalog,
    time_zone: &TimeZone,
) -> Result<JobPlan, PlanError> {
    let timer = match &JobKind::from(&job.kind) {
        JobKind::Other(kind) => return Err(PlanError::UnknownJobKind(kind.clone())),
        JobKind::SendReply => return Err(PlanError::NotACardUpdate(JobKind::SendReply.as_str())),
        kind => kind.timer().ok_or(PlanError::NotACardUpdate("unknown"))?,
    };
    let step = approval::on_timer(state, timer, now, catalog, time_zone)?;
    // The element-by-element walk only on the first attempt: a retry cannot know how far a
    // failed walk got, so it replaces the whole card.
    deliver(step, now, job.attempts == 0)
}

/// Plans showing `card` again on the card of `state` as it stands (no state change but a spent
/// update token): the refresh of a card another card's click changed.
pub fn plan_redelivery(
    state: &CardState,
    card: Card,
    now: EpochMillis,
) -> Result<JobPlan, PlanError> {
    deliver(
        CardStep {
            state: state.clone(),
            changed: false,
            show: Some(CardChange { card, edits: None }),
            reason: "refresh",
            followups: Vec::new(),
        },
        now,
        false,
    )
}

/// Chooses the delivery path for the step's change and returns the plan.
fn deliver(step: CardStep, now: EpochMillis, walk: bool) -> Result<JobPlan, PlanError> {
    let CardStep {
        state: mut next_state,
        changed,
        show,
        reason,
        followups,
    } = step;
    let followups: Vec<NewJob> = followups
        .into_iter()
        .map(|f| scheduled_job(&f.card_key, f.scheduled))
        .collect();
    let Some(CardChange { card, edits }) = show else {
        return Ok(JobPlan {
            state_update: changed.then_some(next_state),
            delivery: None,
            reason,
            followups,
        });
    };
    if card_update::is_too_old(&next_state, now) && changed {
        // Feishu no longer takes updates to this card, but the transition (an expiry, say) must
        // still be written with its follow-ups (the other cards, the requester's text).
        return Ok(JobPlan {
            state_update: Some(next_state),
            delivery: None,
            reason: "too old to show; state written",
            followups,
        });
    }
    let (delivery, token_used) =
        card_update::plan_delivery(&mut next_state, CardChange { card, edits }, now, walk)
            .map_err(|e| match e {
                PlanDeliveryError::TooOld => PlanError::TooOld,
                PlanDeliveryError::NoMessage => PlanError::NoMessage,
            })?;
    let state_update = (changed || token_used).then_some(next_state);
    Ok(JobPlan {
        state_update,
        delivery: Some(delivery),
        reason,
        followups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::views;
    use crate::approval::{
        decide_click, new_card_state, ApprovalAction, ClickDecision, RequestKind, SentCard,
    };
    use crate::cards::{element_value, Card, CardKitOp, Element};
    use crate::config::CardDelivery;
    use crate::feishu::cardkit;
    use crate::feishu::request::ApiRequest;
    use crate::feishu::{BatchUpdateAction, ElementPosition};
    use crate::feishu::{CardWrite, FeishuError};
    use crate::store::JobStatus;
    use crate::store::StoredUpdateToken;

    const NOW: EpochMillis = 1_732_233_600_734;

    /// The job a click enqueues (with the state write, in one transaction).
    fn post_answer_job(card_key: &str, clicked_at: EpochMillis) -> NewJob {
        let at = clicked_at + POST_ANSWER_DELAY_MS;
        scheduled_job(
            card_key,
            Scheduled {
                timer: Timer::SimulatedDecision,
                at,
            },
        )
    }

    /// The job that expires a card left undecided.
    fn expire_job(card_key: &str, sent_at: EpochMillis, approval_ttl_ms: i64) -> NewJob {
        let at = sent_at + approval_ttl_ms;
        scheduled_job(
            card_key,
            Scheduled {
                timer: Timer::Expiry,
                at,
            },
        )
    }

    static BUILTIN: std::sync::LazyLock<approval::definition::Catalog> =
        std::sync::LazyLock::new(approval::definition::Catalog::builtin);

    fn label(kind: RequestKind, lang: crate::cards::Lang) -> &'static str {
        let definition = &BUILTIN.current_of(kind).unwrap().definition;
        approval::views::request_label(definition, lang)
    }

    static CST: std::sync::LazyLock<TimeZone> =
        std::sync::LazyLock::new(|| TimeZone::get(crate::config::DEFAULT_TIME_ZONE).unwrap());
    const TTL: i64 = DEFAULT_APPROVAL_TTL_MS;

    fn sent(delivery: CardDelivery) -> CardState {
        new_card_state(
            &SentCard {
                message_id: "om_dc13264520392913993dd051dba21dcf".into(),
                chat_id: "oc_5ad11d72b830411d72b836c20".into(),
                requester_open_id: "ou_84aad35d084aa403a838cf73ee18467".into(),
                source_message_id: "om_5ce6d572455d361153b7cb51da133945".into(),
                card_id: (delivery == CardDelivery::Entity).then(|| "7355372766134157313".into()),
                delivery,
                in_p2p: true,
                tenant: None,
            },
            NOW,
        )
    }

    fn clicked(delivery: CardDelivery, kind: RequestKind) -> (CardState, NewJob, Card) {
        let state = sent(delivery);
        let click = approval::Click {
            action: ApprovalAction::Submit(kind),
            operator_open_id: Some("ou_84aad35d084aa403a838cf73ee18467"),
            update_token: Some(issue_update_token(
                "c-295ee57216a5dc9de90fefd0aadb4b1d7d8e21a4",
                NOW + 10_000,
            )),
            now: NOW + 10_000,
            approval_ttl_ms: TTL,
            remind_after_ms: 24 * 3600 * 1000,
            time_zone: &CST,
            form_value: None,
            catalog: &BUILTIN,
            approvers: &crate::config::ApproverConfig {
                open_ids: Vec::new(),
                from_leader: false,
                fallback: crate::config::ApprovalFallback::Simulated,
            },
        };
        match decide_click(&state, &click).unwrap() {
            ClickDecision::Transition {
                state,
                mut followups,
                answer,
            } => {
                assert_eq!(followups.len(), 1);
                let followup = followups.remove(0);
                assert_eq!(followup.card_key, state.card_key);
                let job = scheduled_job(&followup.card_key, followup.scheduled);
                (*state, job, answer.card.unwrap())
            }
            other => panic!("{other:?}"),
        }
    }

    fn job_from(new: &NewJob, attempts: u32) -> Job {
        Job {
            card_key: new.card_key.clone(),
            job_id: new.job_id.clone(),
            kind: new.kind.clone(),
            payload: new.payload.clone(),
            status: JobStatus::Leased,
            due_at: new.not_before,
            attempts,
            last_error: None,
            lease_owner: Some("updater-1".into()),
            lease_until: Some(new.not_before + 60_000),
            created_at: new.not_before - POST_ANSWER_DELAY_MS,
            updated_at: new.not_before,
        }
    }

    // A tiny CardKit: applies ops to a card's JSON the way the docs describe, to prove the walk.
    fn find_mut<'a>(elements: &'a mut [Value], id: &str) -> Option<&'a mut Value> {
        for element in elements.iter_mut() {
            if element["element_id"] == id {
                return Some(element);
            }
            if let Some(columns) = element.get_mut("columns").and_then(Value::as_array_mut) {
                for column in columns {
                    if column["element_id"] == id {
                        return Some(column);
                    }
                    if let Some(found) = column
                        .get_mut("elements")
                        .and_then(Value::as_array_mut)
                        .and_then(|e| find_mut(e, id))
                    {
                        return Some(found);
                    }
                }
            }
        }
        None
    }

    fn merge(target: &mut Value, patch: &Value) {
        for (key, value) in patch.as_object().unwrap() {
            target[key] = value.clone();
        }
    }

    fn elements(card: &mut Value) -> &mut Vec<Value> {
        card["body"]["elements"].as_array_mut().unwrap()
    }

    fn apply_batch(card: &mut Value, action: &Value) {
        let params = &action["params"];
        match action["action"].as_str().unwrap() {
            "partial_update_setting" => merge(&mut card["config"], &params["settings"]["config"]),
            "partial_update_element" => merge(
                find_mut(elements(card), params["element_id"].as_str().unwrap()).unwrap(),
                &params["partial_element"],
            ),
            "update_element" => {
                *find_mut(elements(card), params["element_id"].as_str().unwrap()).unwrap() =
                    params["element"].clone()
            }
            "delete_elements" => {
                for id in params["element_ids"].as_array().unwrap() {
                    elements(card).retain(|e| e["element_id"] != *id);
                }
            }
            "add_elements" => {
                let target = params["target_element_id"].as_str().unwrap();
                let list = elements(card);
                let at = list.iter().position(|e| e["element_id"] == target).unwrap();
                let at = if params["type"] == "insert_after" {
                    at + 1
                } else {
                    at
                };
                for (i, e) in params["elements"].as_array().unwrap().iter().enumerate() {
                    list.insert(at + i, e.clone());
                }
            }
            other => panic!("unknown batch action {other}"),
        }
    }

    /// The request the real client sends for `op`.
    fn wire(op: &CardKitOp) -> ApiRequest {
        let w = CardWrite::new(1, "k");
        match op {
            CardKitOp::Settings { settings } => cardkit::update_card_settings("c1", settings, &w),
            CardKitOp::StreamText {
                element_id,
                content,
            } => cardkit::stream_card_element_text("c1", element_id, content, &w),
            CardKitOp::PatchElement {
                element_id,
                partial_element,
            } => cardkit::patch_card_element("c1", element_id, partial_element, &w),
            CardKitOp::UpdateElement {
                element_id,
                element,
            } => cardkit::update_card_element("c1", element_id, &element_value(element), &w),
            CardKitOp::DeleteElement { element_id } => {
                cardkit::delete_card_element("c1", element_id, &w)
            }
            CardKitOp::AddElements { position, elements } => {
                let values: Vec<Value> = elements.iter().map(element_value).collect();
                cardkit::add_card_elements("c1", position, &values, &w)
            }
            CardKitOp::BatchUpdate { actions } => cardkit::batch_update_card("c1", actions, &w),
            CardKitOp::UpdateCard { card } => cardkit::update_card("c1", &card.to_value(), &w),
        }
        .unwrap()
    }

    /// Applies one op through the client's wire body (string fields parsed back), like Feishu would.
    fn apply(card: &mut Value, op: &CardKitOp, streaming: &mut bool) {
        let body = wire(op).body.unwrap();
        let parse =
            |field: &str| serde_json::from_str::<Value>(body[field].as_str().unwrap()).unwrap();
        match op {
            CardKitOp::Settings { .. } => {
                let settings = parse("settings");
                merge(&mut card["config"], &settings["config"]);
                *streaming = card["config"]["streaming_mode"] == true;
            }
            CardKitOp::StreamText { element_id, .. } => {
                assert!(*streaming, "content API needs streaming_mode");
                find_mut(elements(card), element_id).unwrap()["content"] = body["content"].clone();
            }
            CardKitOp::PatchElement { element_id, .. } => merge(
                find_mut(elements(card), element_id).unwrap(),
                &parse("partial_element"),
            ),
            CardKitOp::UpdateElement { element_id, .. } => {
                *find_mut(elements(card), element_id).unwrap() = parse("element")
            }
            CardKitOp::DeleteElement { element_id } => {
                let before = elements(card).len();
                elements(card).retain(|e| e["element_id"] != element_id.as_str());
                assert_eq!(elements(card).len(), before - 1, "deleted {element_id}");
            }
            CardKitOp::AddElements { .. } => {
                let action = json!({"action": "add_elements", "params": {
                    "type": body["type"], "target_element_id": body["target_element_id"], "elements": parse("elements")}});
                apply_batch(card, &action);
            }
            CardKitOp::BatchUpdate { .. } => {
                for action in parse("actions").as_array().unwrap() {
                    // In order: an element the content API types out needs streaming on first.
                    apply_batch(card, action);
                    *streaming = card["config"]["streaming_mode"] == true;
                }
            }
            CardKitOp::UpdateCard { .. } => {
                let data = body["card"]["data"].as_str().unwrap();
                *card = serde_json::from_str(data).unwrap();
                *streaming = card["config"]["streaming_mode"] == true;
            }
        }
    }

    #[test]
    fn entity_walk_takes_three_calls_and_lands_on_the_approved_card() {
        for kind in [RequestKind::LEAVE, RequestKind::WORK_OVERTIME] {
            let (state, new_job, answered) = clicked(CardDelivery::Entity, kind);
            let now = new_job.not_before + 100;
            let plan = plan_job(&job_from(&new_job, 0), &state, now, &BUILTIN, &CST).unwrap();
            let next = plan.state_update.clone().unwrap();
            assert_eq!(
                next.status,
                approval::ApprovalStatus::approved(kind).stored()
            );
            let Some(Delivery::CardKit { card_id, ops }) = &plan.delivery else {
                panic!("{plan:?}")
            };
            assert_eq!(card_id, "7355372766134157313");
            let names: Vec<_> = ops.iter().map(CardKitOp::name).collect();
            assert_eq!(names, ["batch_update", "content", "batch_update"]);
            let actions = |op: &CardKitOp| -> Vec<Value> {
                let body = wire(op).body.unwrap();
                serde_json::from_str(body["actions"].as_str().unwrap()).unwrap()
            };
            let first = actions(&ops[0]);
            let kinds: Vec<_> = first
                .iter()
                .map(|a| a["action"].as_str().unwrap())
                .collect();
            assert_eq!(
                kinds,
                [
                    "partial_update_setting",
                    "partial_update_element",
                    "delete_elements",
                    "add_elements",
                    "partial_update_element",
                    "partial_update_element"
                ]
            );
            assert_eq!(
                first[0]["params"]["settings"].to_string(),
                r#"{"config":{"streaming_mode":true,"summary":{"content":"请假申请审批中","i18n_content":{"en_us":"Leave request pending","zh_cn":"请假申请审批中"}}}}"#
                    .replace("请假", label(kind, crate::cards::Lang::ZhCn))
                    .replace("Leave", label(kind, crate::cards::Lang::EnUs))
            );
            let last = actions(&ops[2]);
            assert_eq!(last[0]["params"]["element_id"], approval::views::ids::NOTE);
            assert_eq!(
                last[1]["params"]["settings"]["config"]["streaming_mode"],
                false
            );
            let mut card = answered.to_value();
            let mut streaming = false;
            for op in ops {
                apply(&mut card, op, &mut streaming);
            }
            assert!(
                !streaming,
                "streaming is off again before the card takes clicks"
            );
            let expected = approval::render_state(&next, &BUILTIN, &CST)
                .unwrap()
                .to_value();
            assert_eq!(card, expected, "{kind:?}");
            assert!(card
                .to_string()
                .contains(&format!("{}通过", label(kind, crate::cards::Lang::ZhCn))));
        }
    }

    #[test]
    fn entity_retry_replaces_the_whole_card() {
        let (state, new_job, _) = clicked(CardDelivery::Entity, RequestKind::LEAVE);
        let now = new_job.not_before;
        let plan = plan_job(&job_from(&new_job, 1), &state, now, &BUILTIN, &CST).unwrap();
        let Some(Delivery::CardKit { ops, .. }) = &plan.delivery else {
            panic!()
        };
        assert_eq!(ops.len(), 1);
        let CardKitOp::UpdateCard { card } = &ops[0] else {
            panic!()
        };
        assert_eq!(
            *card,
            approval::render_state(plan.state_update.as_ref().unwrap(), &BUILTIN, &CST).unwrap()
        );
        // After the state was written but the calls failed, a retry redelivers without a write.
        let approved = plan.state_update.unwrap();
        let again = plan_job(
            &job_from(&new_job, 2),
            &approved,
            now + 5_000,
            &BUILTIN,
            &CST,
        )
        .unwrap();
        assert!(again.state_update.is_none());
        assert_eq!(again.delivery.as_ref().unwrap().final_card(), Some(card));
    }

    #[test]
    fn message_mode_uses_the_token_then_patches() {
        let (state, new_job, _) = clicked(CardDelivery::Message, RequestKind::WORK_OVERTIME);
        let now = new_job.not_before;
        let plan = plan_job(&job_from(&new_job, 0), &state, now, &BUILTIN, &CST).unwrap();
        let next = plan.state_update.clone().unwrap();
        assert_eq!(
            next.update_token.as_ref().unwrap().uses,
            1,
            "use counted before the call"
        );
        let Some(Delivery::Message(MessageOp::DelayedUpdate { card })) = &plan.delivery else {
            panic!()
        };
        assert!(card.to_json_string().contains("加班通过"));
        // Second redelivery: second use; third: PATCH.
        let plan2 = plan_job(&job_from(&new_job, 1), &next, now + 1_000, &BUILTIN, &CST).unwrap();
        let next2 = plan2.state_update.clone().unwrap();
        assert_eq!(next2.update_token.as_ref().unwrap().uses, 2);
        let plan3 = plan_job(&job_from(&new_job, 2), &next2, now + 2_000, &BUILTIN, &CST).unwrap();
        assert!(plan3.state_update.is_none());
        let Some(Delivery::Message(MessageOp::PatchMessage {
            message_id,
            card: patched,
        })) = &plan3.delivery
        else {
            panic!()
        };
        assert_eq!(message_id, "om_dc13264520392913993dd051dba21dcf");
        assert_eq!(patched, card);
        // A token Feishu refused is spent.
        let spent = spend_update_token(&next);
        assert_eq!(choose_message_path(&spent, now), MessagePath::PatchMessage);
    }

    #[test]
    fn a_clicks_token_is_unused_and_valid_for_30_minutes() {
        let token = issue_update_token("c-x", NOW);
        assert_eq!((token.uses, token.expires_at), (0, NOW + 30 * 60 * 1000));
        assert_eq!(token.token, "c-x");
    }

    #[test]
    fn message_path_rules() {
        let mut state = sent(CardDelivery::Message);
        assert_eq!(
            choose_message_path(&state, NOW),
            MessagePath::PatchMessage,
            "no click, no token"
        );
        state.update_token = Some(StoredUpdateToken {
            token: "c-x".into(),
            uses: 0,
            expires_at: NOW + UPDATE_TOKEN_TTL_MS,
        });
        assert_eq!(choose_message_path(&state, NOW), MessagePath::DelayedUpdate);
        assert_eq!(
            choose_message_path(
                &state,
                NOW + UPDATE_TOKEN_TTL_MS - UPDATE_TOKEN_MARGIN_MS - 1
            ),
            MessagePath::DelayedUpdate
        );
        assert_eq!(
            choose_message_path(&state, NOW + UPDATE_TOKEN_TTL_MS - UPDATE_TOKEN_MARGIN_MS),
            MessagePath::PatchMessage
        );
        assert_eq!(
            choose_message_path(&state, NOW + UPDATE_TOKEN_TTL_MS + 1),
            MessagePath::PatchMessage
        );
        state.update_token.as_mut().unwrap().uses = 1;
        assert_eq!(choose_message_path(&state, NOW), MessagePath::DelayedUpdate);
        state.update_token.as_mut().unwrap().uses = 2;
        assert_eq!(choose_message_path(&state, NOW), MessagePath::PatchMessage);
        assert_eq!(
            choose_message_path(&state, NOW + UPDATE_WINDOW_MS - 1),
            MessagePath::PatchMessage
        );
        assert_eq!(
            choose_message_path(&state, NOW + UPDATE_WINDOW_MS),
            MessagePath::TooOld
        );
    }

    #[test]
    fn expiry_of_an_undecided_card() {
        for delivery in [CardDelivery::Entity, CardDelivery::Message] {
            let state = sent(delivery);
            let job = job_from(&expire_job(&state.card_key, state.created_at, TTL), 0);
            assert_eq!(job.due_at, NOW + TTL);
            let plan = plan_job(&job, &state, NOW + TTL, &BUILTIN, &CST).unwrap();
            assert_eq!(plan.state_update.as_ref().unwrap().status, "expired");
            let card = plan.delivery.as_ref().unwrap().final_card().unwrap();
            assert_eq!(*card, views::expired_card());
            match (delivery, plan.delivery.unwrap()) {
                (CardDelivery::Entity, Delivery::CardKit { ops, .. }) => assert_eq!(ops.len(), 1),
                (CardDelivery::Message, Delivery::Message(MessageOp::PatchMessage { .. })) => {}
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn expiry_of_a_decided_card_is_a_no_op() {
        let (state, _, _) = clicked(CardDelivery::Entity, RequestKind::LEAVE);
        let job = job_from(&expire_job(&state.card_key, state.created_at, TTL), 0);
        let plan = plan_job(&job, &state, NOW + TTL, &BUILTIN, &CST).unwrap();
        assert_eq!(
            plan,
            JobPlan {
                state_update: None,
                delivery: None,
                reason: "decided before expiry",
                followups: vec![],
            }
        );
    }

    #[test]
    fn post_answer_on_a_pending_card_does_nothing() {
        let state = sent(CardDelivery::Entity);
        let job = job_from(&post_answer_job(&state.card_key, NOW), 0);
        let plan = plan_job(&job, &state, NOW + 3_000, &BUILTIN, &CST).unwrap();
        assert!(plan.state_update.is_none() && plan.delivery.is_none());
    }

    #[test]
    fn unplannable_jobs_are_errors_to_record() {
        let (state, new_job, _) = clicked(CardDelivery::Message, RequestKind::LEAVE);
        let mut job = job_from(&new_job, 0);
        job.kind = "reminder".into();
        assert_eq!(
            plan_job(&job, &state, NOW, &BUILTIN, &CST),
            Err(PlanError::UnknownJobKind("reminder".into()))
        );
        let job = job_from(&new_job, 0);
        // Past Feishu's 14 days a transition is still written (with its follow-ups), only not
        // shown; showing an unchanged card again is an error to record.
        let late = plan_job(&job, &state, NOW + UPDATE_WINDOW_MS, &BUILTIN, &CST).unwrap();
        assert!(late.delivery.is_none());
        assert_eq!(late.state_update.unwrap().status, "leave_approved");
        let mut approved = state.clone();
        approved.status = "leave_approved".into();
        assert_eq!(
            plan_job(&job, &approved, NOW + UPDATE_WINDOW_MS, &BUILTIN, &CST),
            Err(PlanError::TooOld)
        );
        let mut no_message = state.clone();
        no_message.message_id = None;
        no_message.update_token = None;
        assert_eq!(
            plan_job(&job, &no_message, NOW + 3_000, &BUILTIN, &CST),
            Err(PlanError::NoMessage)
        );
        let mut corrupt = state.clone();
        corrupt.status = "??".into();
        assert!(matches!(
            plan_job(&job, &corrupt, NOW, &BUILTIN, &CST),
            Err(PlanError::Domain(_))
        ));
    }

    #[test]
    fn entity_mode_without_a_card_id_updates_the_message() {
        let (mut state, new_job, _) = clicked(CardDelivery::Entity, RequestKind::LEAVE);
        state.card_id = None;
        let plan = plan_job(
            &job_from(&new_job, 0),
            &state,
            new_job.not_before,
            &BUILTIN,
            &CST,
        )
        .unwrap();
        assert!(matches!(
            plan.delivery,
            Some(Delivery::Message(MessageOp::DelayedUpdate { .. }))
        ));
    }

    #[test]
    fn every_op_makes_a_valid_request_on_the_card() {
        let ops = vec![
            CardKitOp::Settings {
                settings: json!({"config": {"streaming_mode": false}}),
            },
            CardKitOp::StreamText {
                element_id: "note".into(),
                content: "x".into(),
            },
            CardKitOp::PatchElement {
                element_id: "status".into(),
                partial_element: json!({"content": "y"}),
            },
            CardKitOp::UpdateElement {
                element_id: "status".into(),
                element: Element::hr("status"),
            },
            CardKitOp::DeleteElement {
                element_id: "actions".into(),
            },
            CardKitOp::AddElements {
                position: ElementPosition::Append(None),
                elements: vec![Element::hr("h")],
            },
            CardKitOp::BatchUpdate {
                actions: vec![BatchUpdateAction::DeleteElements {
                    element_ids: vec!["a".into()],
                }],
            },
            CardKitOp::UpdateCard {
                card: views::expired_card(),
            },
        ];
        let mut names = std::collections::HashSet::new();
        for op in &ops {
            let request = wire(op);
            assert!(
                request.path.starts_with("/open-apis/cardkit/v1/cards/c1"),
                "{}",
                op.name()
            );
            assert_eq!(request.body.as_ref().unwrap()["sequence"], 1);
            names.insert(op.name());
        }
        assert_eq!(names.len(), ops.len());
        let CardKitOp::UpdateCard { card } = &ops[7] else {
            panic!()
        };
        let body = wire(&ops[7]).body.unwrap();
        let data: Value = serde_json::from_str(body["card"]["data"].as_str().unwrap()).unwrap();
        assert_eq!(data, card.to_value());
    }

    #[test]
    fn idempotency_keys_are_stable_and_distinct() {
        let a = op_idempotency_key("om_x", "post_answer", 0, 0, 1);
        assert_eq!(a, op_idempotency_key("om_x", "post_answer", 0, 0, 1));
        assert_ne!(a, op_idempotency_key("om_x", "post_answer", 0, 1, 2));
        assert_ne!(a, op_idempotency_key("om_x", "post_answer", 1, 0, 1));
        assert_ne!(
            a,
            op_idempotency_key("om_x", "post_answer", 0, 0, 7),
            "a re-armed run reserves other sequences"
        );
    }

    #[test]
    fn failures_are_classified() {
        use std::time::Duration;
        let log_id = None;
        assert_eq!(
            on_failure(&FeishuError::UpdateTokenExpired { log_id: None }, NOW),
            FailureAction::SpendTokenAndReplan
        );
        assert_eq!(
            on_failure(&FeishuError::UpdateTokenUsedUp { log_id: None }, NOW),
            FailureAction::SpendTokenAndReplan
        );
        let limited = FeishuError::RateLimited {
            code: 99991400,
            retry_after: Some(Duration::from_secs(52)),
            log_id,
        };
        assert_eq!(
            on_failure(&limited, NOW),
            FailureAction::Retry {
                retry_at: Some(NOW + 52_000)
            }
        );
        for transient in [
            FeishuError::Server {
                status: 503,
                log_id: None,
            },
            FeishuError::Transport("reset".into()),
            FeishuError::CardInCallback { log_id: None },
            FeishuError::SequenceNotIncreasing { log_id: None },
            FeishuError::DeadlineExceeded {
                attempts: 2,
                last: "timeout".into(),
            },
        ] {
            assert_eq!(
                on_failure(&transient, NOW),
                FailureAction::Retry { retry_at: None },
                "{transient}"
            );
        }
        for permanent in [
            FeishuError::CardEntityExpired { log_id: None },
            FeishuError::MessageTooOld { log_id: None },
            FeishuError::TooLarge {
                code: 200860,
                log_id: None,
            },
            FeishuError::InvalidRequest("bad id".into()),
            FeishuError::Api {
                code: 300311,
                msg: "not the creating app".into(),
                log_id: None,
            },
        ] {
            assert_eq!(
                on_failure(&permanent, NOW),
                FailureAction::Permanent,
                "{permanent}"
            );
        }
    }

    #[test]
    fn a_huge_reset_cannot_park_a_job() {
        use crate::feishu::request::{classify_answer, AnswerOutcome, MAX_RATE_LIMIT_RESET};
        use std::time::Duration;
        let body = br#"{"code":99991400,"msg":"request trigger frequency limit"}"#;
        for header in ["18000000000000000000", "abc"] {
            let AnswerOutcome::RateLimited(error) = classify_answer(429, None, Some(header), body)
            else {
                panic!("{header}");
            };
            match on_failure(&error, NOW) {
                FailureAction::Retry { retry_at: None } => assert_eq!(header, "abc"),
                FailureAction::Retry { retry_at: Some(at) } => {
                    assert_eq!(at, NOW + MAX_RATE_LIMIT_RESET.as_millis() as i64)
                }
                other => panic!("{header}: {other:?}"),
            }
        }
        // Even an error built by hand with the largest wait, at the largest time.
        let forever = FeishuError::RateLimited {
            code: 99991400,
            retry_after: Some(Duration::MAX),
            log_id: None,
        };
        assert_eq!(
            on_failure(&forever, NOW),
            FailureAction::Retry {
                retry_at: Some(NOW + crate::store::JOB_RETRY_CAP_MS)
            }
        );
        assert_eq!(
            on_failure(&forever, i64::MAX - 1),
            FailureAction::Retry {
                retry_at: Some(i64::MAX)
            }
        );
        let no_permit = FeishuError::NoPermit {
            retry_after: Duration::from_millis(1_300),
        };
        assert_eq!(
            on_failure(&no_permit, NOW),
            FailureAction::Retry {
                retry_at: Some(NOW + 1_300)
            }
        );
    }

    #[test]
    fn claim_budget_stops_before_the_deadline() {
        let budget = ClaimBudget {
            deadline: NOW + 10_000,
            per_job_ms: 3_000,
        };
        assert!(budget.may_claim(NOW));
        assert!(budget.may_claim(NOW + 6_999));
        assert!(!budget.may_claim(NOW + 7_000));
    }

    #[test]
    fn job_kinds_and_delivery_modes_round_trip() {
        for kind in [JobKind::PostAnswer, JobKind::Expire, JobKind::SendReply] {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
        for mode in [CardDelivery::Entity, CardDelivery::Message] {
            assert_eq!(CardDelivery::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(
            CardDelivery::parse(" MESSAGE "),
            Some(CardDelivery::Message)
        );
        assert_eq!(CardDelivery::parse("smoke"), None);
        assert_eq!(CardDelivery::default(), CardDelivery::Entity);
        let job = post_answer_job("om_x", NOW);
        assert_eq!(
            (job.job_id.as_str(), job.not_before),
            ("post_answer", NOW + 2_000)
        );
    }
}
