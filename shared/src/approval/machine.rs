//! The approval state machine: the two requests, where a card stands, what may happen to it,
//! and the render inputs kept in `CardState.data`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::definition::DefinitionRef;

use crate::store::{CardState, EpochMillis};

/// `CardState.kind` of an approval card.
pub const CARD_KIND: &str = "approval";

pub use super::definition::RequestKind;

/// Where an approval card stands (`CardState.status`). The tutorial's path is pending →
/// *_submitted → *_approved (the simulated approver, `APPROVAL_FALLBACK=simulated`); with an
/// approver source it is pending → *_draft (the form) → *_filed → *_approved / *_rejected, or
/// *_withdrawn by the requester, or *_unrouted when filing found nobody to decide and the fallback
/// refuses. A card in a group chat never shows the form: pending → *_moved, and the form goes to
/// the requester's p2p chat as a card of its own.
///
/// Stored as `pending`, `expired`, or `<prefix>_<stage>` ([`RequestKind::status_prefix`]: the
/// definition's id, `overtime` for `work_overtime`), the strings earlier versions wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalStatus {
    Pending,
    Expired,
    /// A request of `kind` at `stage`.
    Request {
        kind: RequestKind,
        stage: Stage,
    },
}

impl ApprovalStatus {
    /// The string stored in `CardState.status`.
    pub fn stored(self) -> String {
        match self {
            Self::Pending => "pending".to_owned(),
            Self::Expired => "expired".to_owned(),
            Self::Request { kind, stage } => format!("{}_{}", kind.status_prefix(), stage.as_str()),
        }
    }

    /// A stored status; `None` for anything this code never writes.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => return Some(Self::Pending),
            "expired" => return Some(Self::Expired),
            _ => {}
        }
        let (prefix, stage) = s.rsplit_once('_')?;
        let stage = Stage::ALL.into_iter().find(|st| st.as_str() == stage)?;
        let kind = RequestKind::from_status_prefix(prefix)?;
        Some(Self::Request { kind, stage })
    }

    /// The status of `kind` at `stage`.
    pub fn of(kind: RequestKind, stage: Stage) -> Self {
        Self::Request { kind, stage }
    }

    /// Where a request stands, whatever its kind; `None` for pending and expired.
    pub fn stage(self) -> Option<Stage> {
        match self {
            Self::Request { stage, .. } => Some(stage),
            Self::Pending | Self::Expired => None,
        }
    }

    pub fn submitted(kind: RequestKind) -> Self {
        Self::of(kind, Stage::Submitted)
    }

    pub fn approved(kind: RequestKind) -> Self {
        Self::of(kind, Stage::Approved)
    }

    /// The form of `kind`, being filled in.
    pub fn draft(kind: RequestKind) -> Self {
        Self::of(kind, Stage::Draft)
    }

    /// The request a card is about, once one was chosen.
    pub fn request(self) -> Option<RequestKind> {
        match self {
            Self::Request { kind, .. } => Some(kind),
            Self::Pending | Self::Expired => None,
        }
    }

    /// Terminal: nothing moves it any more.
    pub fn is_final(self) -> bool {
        self == Self::Expired
            || matches!(
                self.stage(),
                Some(
                    Stage::Approved
                        | Stage::Rejected
                        | Stage::Withdrawn
                        | Stage::Moved
                        | Stage::Unrouted
                )
            )
    }

    /// Whether a filed request still waits for a decision (notify, remind and 待我审批 ask).
    pub fn is_waiting(self) -> bool {
        self.stage() == Some(Stage::Filed)
    }

    /// Applies an event. Tutorial: pending → *_submitted → *_approved. With an approver:
    /// pending → *_draft → *_filed → *_approved | *_rejected | *_withdrawn | *_unrouted; a group
    /// card: pending → *_moved. Pending and draft cards expire.
    pub fn apply(self, event: ApprovalEvent) -> Result<Self, Refusal> {
        use ApprovalEvent as E;
        if self == Self::Expired {
            return Err(Refusal::Expired);
        }
        if self.is_final() {
            return Err(Refusal::AlreadyDecided(self));
        }
        let stage = self.stage();
        let kind = self.request();
        match (event, stage, kind) {
            (E::Submit(kind), None, _) => Ok(Self::submitted(kind)),
            (E::Open(kind), None, _) => Ok(Self::of(kind, Stage::Draft)),
            (E::Move(kind), None, _) => Ok(Self::of(kind, Stage::Moved)),
            (E::Unroute, Some(Stage::Filed), Some(kind)) => Ok(Self::of(kind, Stage::Unrouted)),
            (E::Expire, None | Some(Stage::Draft), _) => Ok(Self::Expired),
            (E::Approve, Some(Stage::Submitted), Some(kind)) => Ok(Self::approved(kind)),
            (E::File, Some(Stage::Draft), Some(kind)) => Ok(Self::of(kind, Stage::Filed)),
            (E::Decide { approve }, Some(Stage::Filed), Some(kind)) => Ok(Self::of(
                kind,
                if approve {
                    Stage::Approved
                } else {
                    Stage::Rejected
                },
            )),
            // A returned request's form may be withdrawn too (the click refuses a form never filed).
            (E::Withdraw, Some(Stage::Filed | Stage::Draft), Some(kind)) => {
                Ok(Self::of(kind, Stage::Withdrawn))
            }
            (E::Return, Some(Stage::Filed), Some(kind)) => Ok(Self::of(kind, Stage::Draft)),
            (E::Submit(_) | E::Open(_) | E::Move(_), Some(_), _) => {
                Err(Refusal::AlreadySubmitted(self))
            }
            (E::Expire, _, _) => Err(Refusal::NotPending(self)),
            (
                E::Approve | E::File | E::Decide { .. } | E::Withdraw | E::Unroute | E::Return,
                _,
                _,
            ) => Err(Refusal::NotSubmitted(self)),
        }
    }
}

/// A request's stage, whatever its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Tutorial: clicked, waiting for the simulated approver.
    Submitted,
    Approved,
    /// The form is on the requester's card.
    Draft,
    /// Filed, waiting for an approver.
    Filed,
    Rejected,
    Withdrawn,
    /// A group card: the request continues in the requester's p2p chat, on a card of its own.
    Moved,
    /// Filed, but nobody can decide it and the fallback refuses: ended, with the reason.
    Unrouted,
}

impl Stage {
    /// Every stage.
    pub const ALL: [Self; 8] = [
        Self::Submitted,
        Self::Approved,
        Self::Draft,
        Self::Filed,
        Self::Rejected,
        Self::Withdrawn,
        Self::Moved,
        Self::Unrouted,
    ];

    /// The stored status's last word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Draft => "draft",
            Self::Filed => "filed",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
            Self::Moved => "moved",
            Self::Unrouted => "unrouted",
        }
    }
}

/// What can happen to an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalEvent {
    /// A click on 请假 / 加班 with no approver (the tutorial).
    Submit(RequestKind),
    /// A click on 请假 / 加班 with an approver: the card becomes the request form.
    Open(RequestKind),
    /// The same click on a card in a group: the form goes to the requester's p2p chat.
    Move(RequestKind),
    /// Filing found nobody to decide and `APPROVAL_FALLBACK=refuse`.
    Unroute,
    /// A valid form submit: the request goes to the approvers.
    File,
    /// An approver's 同意 (`approve`) or 拒绝.
    Decide { approve: bool },
    /// The requester's 撤回 while the request waits.
    Withdraw,
    /// The tutorial's simulated approval (the post-answer job).
    Approve,
    /// The card outlived `APPROVAL_TTL` undecided.
    Expire,
    /// An approver sent a filed request back for changes (退回): the requester's form again.
    Return,
}

/// Why the state machine refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("already submitted ({})", .0.stored())]
    AlreadySubmitted(ApprovalStatus),
    #[error("already decided ({})", .0.stored())]
    AlreadyDecided(ApprovalStatus),
    #[error("expired")]
    Expired,
    #[error("not submitted ({})", .0.stored())]
    NotSubmitted(ApprovalStatus),
    #[error("not pending ({})", .0.stored())]
    NotPending(ApprovalStatus),
}

// ---------------------------------------------------------------------------------------------

/// The approval's render inputs, kept in `CardState.data`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalData {
    /// Who clicked 请假 / 加班.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<EpochMillis>,
    /// Who decides this request (open_ids), resolved when it is filed (cards of earlier versions:
    /// when the card was sent): `APPROVER_OPEN_IDS`, else the requester's leader. A decision is
    /// checked against this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Decided by the simulated approver (`APPROVAL_FALLBACK=simulated`): every card, toast, list
    /// line and text of it says it was decided automatically.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub automatic: bool,
    /// The card sits in the requester's p2p chat with the bot, where nobody else sees it. A card
    /// without it (in a group, or written by an earlier version) never shows a request's details:
    /// the form continues in p2p.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_p2p: bool,
    /// Why filing found nobody to decide (`*_unrouted`, or an automatic decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_approver: Option<NoApprover>,
    /// The definition and version the form was drawn with (set when the form opens; a request of
    /// an earlier version has none: it is the built-in version 0 of its kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<DefinitionRef>,
    /// What the requester filed, validated against [`ApprovalData::definition`]
    /// (`request::parse_form`): field name → value (a string; a list for a multi_select;
    /// `{start, end}` for a date_range; a bool for a checkbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Map<String, Value>>,
    /// What an earlier version stored instead of `values` (请假 / 加班 only); read, never
    /// written: [`ApprovalData::from_value`] turns it into `values`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<RequestForm>,
    /// The approver who decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The decider's comment, as typed (escaped and capped where it is shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The approvers' cards of this request (their card keys), as the notify job sends them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub review_cards: Vec<String>,
    /// The approvers whose card was sent (a retried notify job skips them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notified: Vec<String>,
    /// Who did what and when, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit: Vec<AuditEntry>,
    /// A routed request's steps as they stand (a definition with `steps`), set when it is filed;
    /// empty for a one-step request (its decision is `decided_by` / `comment`). While it waits,
    /// `approvers` and `notified` are the current step's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<StepState>,
    /// The read-only cards sent to the definition's `cc` (their card keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc_cards: Vec<String>,
    /// The CC recipients whose card was sent (a retried job skips them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc_sent: Vec<String>,
    /// How often the request was returned for changes and filed again: its route's round (0:
    /// the first). An approver's card of an earlier round no longer decides.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: u32,
    /// Approvers added to a waiting step (转交, escalation, a new round) so far: each addition's
    /// notify job has its own id (`notify_approvers_added_<n>`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub added: u32,
    /// The routes of earlier rounds, as they stood when the request was returned (their votes
    /// and comments no longer count, and are kept for the record).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_rounds: Vec<Vec<StepState>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where one step of a route stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// Not reached yet.
    Upcoming,
    /// The current step: its approvers have their cards and vote.
    Waiting,
    Approved,
    Rejected,
    /// Its `when` did not hold for the filed values.
    Skipped,
    /// Not reached: the request ended before (rejected, withdrawn, expired).
    Cancelled,
}

/// One approver's vote in a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The open_id who voted.
    pub by: String,
    pub approve: bool,
    /// As typed (escaped and capped where it is shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Epoch ms.
    pub at: EpochMillis,
}

/// One step of a filed request's route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepState {
    /// The definition's step id.
    pub id: String,
    pub mode: super::definition::Mode,
    pub outcome: StepOutcome,
    /// Who decides it, resolved when it becomes current (the requester never among them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// One per approver at most, in the order they were recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub votes: Vec<Vote>,
    /// Decided by the simulated approver (`APPROVAL_FALLBACK=simulated`, nobody found).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub automatic: bool,
}

/// Why a filed request found nobody to decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum NoApprover {
    /// No approver configured and the leader look-up off.
    NoneConfigured,
    /// The requester has no leader in the contact data.
    NoLeader,
    /// The app may not read the requester's leader: 99991672 (missing API scope) or 41050 (the
    /// requester outside the contact data scope), `../shared/feishu/approval-apis.md` §1.
    NoPermission { code: i64 },
    /// The requester's id cannot be looked up (not a well-formed open_id).
    UnknownUser,
}

/// The leave types of an earlier version's 请假 form (`data.form`): the select's option values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveType {
    Annual,
    Personal,
    Sick,
    Compensatory,
}

impl LeaveType {
    pub const ALL: [Self; 4] = [Self::Annual, Self::Personal, Self::Sick, Self::Compensatory];

    pub fn label(self) -> &'static str {
        match self {
            Self::Annual => "年假",
            Self::Personal => "事假",
            Self::Sick => "病假",
            Self::Compensatory => "调休",
        }
    }

    /// The select option's `value`.
    pub fn value(self) -> &'static str {
        match self {
            Self::Annual => "annual",
            Self::Personal => "personal",
            Self::Sick => "sick",
            Self::Compensatory => "compensatory",
        }
    }
}

/// A filed request's form as earlier versions stored it (`data.form`); read for upgrade in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RequestForm {
    Leave {
        leave_type: LeaveType,
        /// `yyyy-MM-dd`, inclusive.
        start: String,
        end: String,
        reason: String,
    },
    WorkOvertime {
        /// `yyyy-MM-dd`.
        date: String,
        /// Decimal hours as typed, validated (`0.5`–`12`).
        hours: String,
        reason: String,
    },
}

impl RequestForm {
    /// Which request this form files.
    pub fn kind(&self) -> RequestKind {
        match self {
            Self::Leave { .. } => RequestKind::LEAVE,
            Self::WorkOvertime { .. } => RequestKind::WORK_OVERTIME,
        }
    }

    /// The values of the built-in definition (version 0) this form was filed as.
    pub fn values(&self) -> Map<String, Value> {
        let pairs = match self {
            Self::Leave {
                leave_type,
                start,
                end,
                reason,
            } => vec![
                ("leave_type", Value::from(leave_type.value())),
                ("date", serde_json::json!({"start": start, "end": end})),
                ("reason", Value::from(reason.as_str())),
            ],
            Self::WorkOvertime {
                date,
                hours,
                reason,
            } => vec![
                ("date", Value::from(date.as_str())),
                ("hours", Value::from(hours.as_str())),
                ("reason", Value::from(reason.as_str())),
            ],
        };
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

/// What happened to a request (`AuditEntry.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Submitted,
    Approved,
    Rejected,
    Withdrawn,
    Reminded,
    Expired,
    /// Filing found nobody to decide (refused, or decided automatically after it).
    NoApprover,
    /// 转交: `by` handed their vote to `to`.
    Transferred,
    /// 退回: `by` sent the request back for changes.
    Returned,
    /// The requester filed it again after a return: the route starts over.
    Resubmitted,
    /// Reminders ran out: `to` was added to the waiting step.
    Escalated,
}

impl AuditAction {
    pub fn label(self) -> &'static str {
        match self {
            Self::Submitted => "提交申请",
            Self::Approved => "同意",
            Self::Rejected => "拒绝",
            Self::Withdrawn => "撤回申请",
            Self::Reminded => "提醒审批人",
            Self::Expired => "已过期",
            Self::NoApprover => "无审批人",
            Self::Transferred => "转交",
            Self::Returned => "退回修改",
            Self::Resubmitted => "重新提交",
            Self::Escalated => "超时升级",
        }
    }
}

/// One line of a request's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Epoch ms.
    pub at: EpochMillis,
    /// The open_id who acted; `None` for the bot (reminders, expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub action: AuditAction,
    /// Whom a 转交 or an escalation added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// The approver's comment on a 转交 or 退回 (shown on private cards only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl AuditEntry {
    /// An entry of `action` by `by` (`None`: the bot) at `at`.
    pub fn new(at: EpochMillis, by: Option<&str>, action: AuditAction) -> Self {
        Self {
            at,
            by: by.map(str::to_owned),
            action,
            to: Vec::new(),
            comment: None,
        }
    }
}

/// `CardState.kind` of an approver's card: it shows a request kept on the requester's card.
pub const REVIEW_KIND: &str = "approval_review";

/// An approver's card's data (`CardState.data` of a [`REVIEW_KIND`] card).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewData {
    /// The requester's card key: the request.
    pub request_key: String,
    /// The approver this card was sent to (a CC card: the user or chat it was sent to).
    pub approver: String,
    /// The route step this card votes in (`None`: a one-step request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// A read-only card of a request's `cc`, not an approver's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc: Option<CcKind>,
    /// The request's round this card was sent in ([`ApprovalData::round`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: u32,
    /// A `transfer_to: {department: true}` step: the approver's department's users, looked up
    /// when the card was sent (the 转交 picker's candidates, and what a 转交 is checked against).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
}

/// Whom a CC card was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CcKind {
    /// A user, in their p2p chat with the bot: the request as its approvers see it, no buttons.
    User,
    /// A chat other people share: only the fields marked `cc_visible`, no reason or comments.
    Chat,
}

impl ReviewData {
    pub fn of(state: &CardState) -> Result<Self, DomainError> {
        if state.kind != REVIEW_KIND {
            return Err(DomainError::NotAnApprovalCard(state.kind.clone()));
        }
        serde_json::from_value(state.data.clone())
            .map_err(|e| DomainError::CorruptState(format!("review data: {e}")))
    }
}

impl ApprovalData {
    /// Every other card of the request: the approvers' and the CC cards.
    pub fn all_cards(&self) -> Vec<String> {
        self.review_cards
            .iter()
            .chain(&self.cc_cards)
            .cloned()
            .collect()
    }

    /// Which request a card at `status` is about: the status says, else the pinned definition
    /// (an expired request's status names no kind).
    pub fn request_kind(&self, status: ApprovalStatus) -> Option<RequestKind> {
        status
            .request()
            .or_else(|| self.definition.map(|d| d.id))
            .or_else(|| self.form.as_ref().map(RequestForm::kind))
    }

    /// [`ApprovalData::request_kind`], or why there is none.
    pub fn request_kind_of(&self, status: ApprovalStatus) -> Result<RequestKind, DomainError> {
        self.request_kind(status)
            .ok_or_else(|| DomainError::CorruptState(format!("no request in {}", status.stored())))
    }

    pub fn from_value(value: &Value) -> Result<Self, DomainError> {
        if value.is_null() {
            return Ok(Self::default());
        }
        let mut data: Self = serde_json::from_value(value.clone())
            .map_err(|e| DomainError::CorruptState(format!("data: {e}")))?;
        // Upgrade in place: an earlier version's form is the built-in definition's values.
        if let Some(form) = data.form.take() {
            data.definition
                .get_or_insert(DefinitionRef::new(form.kind(), 0));
            data.values.get_or_insert_with(|| form.values());
        }
        Ok(data)
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A card state the domain cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("corrupt card state: {0}")]
    CorruptState(String),
    #[error("card is not an approval card (kind {0:?})")]
    NotAnApprovalCard(String),
}

/// The approval status of a stored card.
pub fn status_of(state: &CardState) -> Result<ApprovalStatus, DomainError> {
    if state.kind != CARD_KIND {
        return Err(DomainError::NotAnApprovalCard(state.kind.clone()));
    }
    ApprovalStatus::parse(&state.status)
        .ok_or_else(|| DomainError::CorruptState(format!("status {:?}", state.status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_statuses(kinds: &[RequestKind]) -> Vec<ApprovalStatus> {
        let mut all = vec![ApprovalStatus::Pending, ApprovalStatus::Expired];
        for kind in kinds {
            all.extend(Stage::ALL.map(|stage| ApprovalStatus::of(*kind, stage)));
        }
        all
    }

    #[test]
    fn the_state_machine_exhaustively() {
        use ApprovalEvent::*;
        use ApprovalStatus::*;
        let leave = RequestKind::LEAVE;
        let expense = RequestKind::new("expense").unwrap();
        let events = [
            Submit(leave),
            Submit(expense),
            Open(leave),
            Open(expense),
            File,
            Decide { approve: true },
            Decide { approve: false },
            Withdraw,
            Approve,
            Expire,
            Move(leave),
            Move(expense),
            Unroute,
            Return,
        ];
        let mut allowed = 0;
        for status in all_statuses(&[leave, expense]) {
            for event in events {
                let stage = status.stage();
                let at = |stage| Ok(ApprovalStatus::of(status.request().unwrap(), stage));
                let expected = match (stage, event) {
                    _ if status == Expired => Err(Refusal::Expired),
                    _ if status.is_final() => Err(Refusal::AlreadyDecided(status)),
                    (None, Submit(k)) => Ok(ApprovalStatus::submitted(k)),
                    (None, Open(k)) => Ok(ApprovalStatus::draft(k)),
                    (None, Move(k)) => Ok(ApprovalStatus::of(k, Stage::Moved)),
                    (None | Some(Stage::Draft), Expire) => Ok(Expired),
                    (Some(Stage::Filed), Unroute) => at(Stage::Unrouted),
                    (Some(Stage::Submitted), Approve) => at(Stage::Approved),
                    (Some(Stage::Draft), File) => at(Stage::Filed),
                    (Some(Stage::Filed), Decide { approve: true }) => at(Stage::Approved),
                    (Some(Stage::Filed), Decide { approve: false }) => at(Stage::Rejected),
                    // A returned request's form may be withdrawn (the click checks it was filed).
                    (Some(Stage::Filed | Stage::Draft), Withdraw) => at(Stage::Withdrawn),
                    (Some(Stage::Filed), Return) => at(Stage::Draft),
                    (_, Submit(_) | Open(_) | Move(_)) => Err(Refusal::AlreadySubmitted(status)),
                    (_, Expire) => Err(Refusal::NotPending(status)),
                    (_, _) => Err(Refusal::NotSubmitted(status)),
                };
                allowed += usize::from(expected.is_ok());
                assert_eq!(status.apply(event), expected, "{status:?} + {event:?}");
            }
        }
        // Pending: 3 events × 2 kinds + expire; per kind: draft expire, file, unroute, approve,
        // two decisions, withdraw (filed or returned), return.
        assert_eq!(allowed, 7 + 2 * 9);
    }

    #[test]
    fn statuses_round_trip_in_the_strings_earlier_versions_wrote() {
        let expense = RequestKind::new("expense").unwrap();
        let long = RequestKind::new("a_b_c_filed").unwrap();
        for status in all_statuses(&[
            RequestKind::LEAVE,
            RequestKind::WORK_OVERTIME,
            expense,
            long,
        ]) {
            assert_eq!(ApprovalStatus::parse(&status.stored()), Some(status));
        }
        for (stored, status) in [
            ("pending", ApprovalStatus::Pending),
            ("expired", ApprovalStatus::Expired),
            (
                "leave_submitted",
                ApprovalStatus::submitted(RequestKind::LEAVE),
            ),
            (
                "overtime_filed",
                ApprovalStatus::of(RequestKind::WORK_OVERTIME, Stage::Filed),
            ),
            ("expense_draft", ApprovalStatus::draft(expense)),
        ] {
            assert_eq!(status.stored(), stored);
            assert_eq!(ApprovalStatus::parse(stored), Some(status));
        }
        for bad in [
            "approved",
            "work_overtime_filed",
            "leave_done",
            "Leave_filed",
            "_filed",
            "",
        ] {
            assert_eq!(ApprovalStatus::parse(bad), None, "{bad}");
        }
        assert!(ApprovalStatus::Expired.is_final());
        assert!(!ApprovalStatus::submitted(RequestKind::LEAVE).is_final());
    }

    #[test]
    fn an_earlier_versions_form_reads_as_the_builtin_definitions_values() {
        let data = ApprovalData::from_value(&serde_json::json!({
            "form": {"kind": "leave", "leave_type": "annual", "start": "2026-12-01",
                     "end": "2026-12-03", "reason": "trip"}
        }))
        .unwrap();
        assert_eq!(
            data.definition,
            Some(DefinitionRef::new(RequestKind::LEAVE, 0))
        );
        let values = data.values.clone().unwrap();
        assert_eq!(values["leave_type"], "annual");
        assert_eq!(values["date"]["end"], "2026-12-03");
        assert!(data.form.is_none(), "written back in the new shape");
        assert!(!data.to_value().to_string().contains("\"kind\""));
    }
}
