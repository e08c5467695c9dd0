//! The approval state machine: the two requests, where a card stands, what may happen to it,
//! and the render inputs kept in `CardState.data`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{CardState, EpochMillis};

/// `CardState.kind` of an approval card.
pub const CARD_KIND: &str = "approval";

/// The two requests of the tutorial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// 请假, callback value `{"type":"leave"}`.
    Leave,
    /// 加班, callback value `{"type":"work_overtime"}`.
    WorkOvertime,
}

impl RequestKind {
    /// The button text and request name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Leave => "请假",
            Self::WorkOvertime => "加班",
        }
    }

    /// The simulated approver's note.
    pub fn decision_note(self) -> &'static str {
        match self {
            Self::Leave => "同意。请提前安排好工作交接。",
            Self::WorkOvertime => "同意。辛苦了，请注意休息。",
        }
    }
}

/// Where an approval card stands (`CardState.status`). The tutorial's path is pending →
/// *_submitted → *_approved (the simulated approver, `APPROVAL_FALLBACK=simulated`); with an
/// approver source it is pending → *_draft (the form) → *_filed → *_approved / *_rejected, or
/// *_withdrawn by the requester, or *_unrouted when filing found nobody to decide and the fallback
/// refuses. A card in a group chat never shows the form: pending → *_moved, and the form goes to
/// the requester's p2p chat as a card of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalStatus {
    Pending,
    LeaveSubmitted,
    OvertimeSubmitted,
    LeaveApproved,
    OvertimeApproved,
    Expired,
    LeaveDraft,
    OvertimeDraft,
    LeaveFiled,
    OvertimeFiled,
    LeaveRejected,
    OvertimeRejected,
    LeaveWithdrawn,
    OvertimeWithdrawn,
    LeaveMoved,
    OvertimeMoved,
    LeaveUnrouted,
    OvertimeUnrouted,
}

impl ApprovalStatus {
    pub const ALL: [Self; 18] = [
        Self::Pending,
        Self::LeaveSubmitted,
        Self::OvertimeSubmitted,
        Self::LeaveApproved,
        Self::OvertimeApproved,
        Self::Expired,
        Self::LeaveDraft,
        Self::OvertimeDraft,
        Self::LeaveFiled,
        Self::OvertimeFiled,
        Self::LeaveRejected,
        Self::OvertimeRejected,
        Self::LeaveWithdrawn,
        Self::OvertimeWithdrawn,
        Self::LeaveMoved,
        Self::OvertimeMoved,
        Self::LeaveUnrouted,
        Self::OvertimeUnrouted,
    ];

    /// The string stored in `CardState.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::LeaveSubmitted => "leave_submitted",
            Self::OvertimeSubmitted => "overtime_submitted",
            Self::LeaveApproved => "leave_approved",
            Self::OvertimeApproved => "overtime_approved",
            Self::Expired => "expired",
            Self::LeaveDraft => "leave_draft",
            Self::OvertimeDraft => "overtime_draft",
            Self::LeaveFiled => "leave_filed",
            Self::OvertimeFiled => "overtime_filed",
            Self::LeaveRejected => "leave_rejected",
            Self::OvertimeRejected => "overtime_rejected",
            Self::LeaveWithdrawn => "leave_withdrawn",
            Self::OvertimeWithdrawn => "overtime_withdrawn",
            Self::LeaveMoved => "leave_moved",
            Self::OvertimeMoved => "overtime_moved",
            Self::LeaveUnrouted => "leave_unrouted",
            Self::OvertimeUnrouted => "overtime_unrouted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// The status of `kind` at `stage`.
    fn of(kind: RequestKind, stage: Stage) -> Self {
        use RequestKind::{Leave, WorkOvertime as Overtime};
        match (stage, kind) {
            (Stage::Submitted, Leave) => Self::LeaveSubmitted,
            (Stage::Submitted, Overtime) => Self::OvertimeSubmitted,
            (Stage::Approved, Leave) => Self::LeaveApproved,
            (Stage::Approved, Overtime) => Self::OvertimeApproved,
            (Stage::Draft, Leave) => Self::LeaveDraft,
            (Stage::Draft, Overtime) => Self::OvertimeDraft,
            (Stage::Filed, Leave) => Self::LeaveFiled,
            (Stage::Filed, Overtime) => Self::OvertimeFiled,
            (Stage::Rejected, Leave) => Self::LeaveRejected,
            (Stage::Rejected, Overtime) => Self::OvertimeRejected,
            (Stage::Withdrawn, Leave) => Self::LeaveWithdrawn,
            (Stage::Withdrawn, Overtime) => Self::OvertimeWithdrawn,
            (Stage::Moved, Leave) => Self::LeaveMoved,
            (Stage::Moved, Overtime) => Self::OvertimeMoved,
            (Stage::Unrouted, Leave) => Self::LeaveUnrouted,
            (Stage::Unrouted, Overtime) => Self::OvertimeUnrouted,
        }
    }

    /// Where a request stands, whatever its kind; `None` for pending and expired.
    pub fn stage(self) -> Option<Stage> {
        Some(match self {
            Self::LeaveSubmitted | Self::OvertimeSubmitted => Stage::Submitted,
            Self::LeaveApproved | Self::OvertimeApproved => Stage::Approved,
            Self::LeaveDraft | Self::OvertimeDraft => Stage::Draft,
            Self::LeaveFiled | Self::OvertimeFiled => Stage::Filed,
            Self::LeaveRejected | Self::OvertimeRejected => Stage::Rejected,
            Self::LeaveWithdrawn | Self::OvertimeWithdrawn => Stage::Withdrawn,
            Self::LeaveMoved | Self::OvertimeMoved => Stage::Moved,
            Self::LeaveUnrouted | Self::OvertimeUnrouted => Stage::Unrouted,
            Self::Pending | Self::Expired => return None,
        })
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
            Self::LeaveSubmitted
            | Self::LeaveApproved
            | Self::LeaveDraft
            | Self::LeaveFiled
            | Self::LeaveRejected
            | Self::LeaveWithdrawn
            | Self::LeaveMoved
            | Self::LeaveUnrouted => Some(RequestKind::Leave),
            Self::OvertimeSubmitted
            | Self::OvertimeApproved
            | Self::OvertimeDraft
            | Self::OvertimeFiled
            | Self::OvertimeRejected
            | Self::OvertimeWithdrawn
            | Self::OvertimeMoved
            | Self::OvertimeUnrouted => Some(RequestKind::WorkOvertime),
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
            (E::Withdraw, Some(Stage::Filed), Some(kind)) => Ok(Self::of(kind, Stage::Withdrawn)),
            (E::Submit(_) | E::Open(_) | E::Move(_), Some(_), _) => {
                Err(Refusal::AlreadySubmitted(self))
            }
            (E::Expire, _, _) => Err(Refusal::NotPending(self)),
            (E::Approve | E::File | E::Decide { .. } | E::Withdraw | E::Unroute, _, _) => {
                Err(Refusal::NotSubmitted(self))
            }
        }
    }

    /// What a clicker is told when this status refuses a click.
    pub fn outcome_text(self) -> &'static str {
        match self {
            Self::Pending => "待处理",
            Self::LeaveSubmitted | Self::LeaveFiled => "请假审批中",
            Self::OvertimeSubmitted | Self::OvertimeFiled => "加班审批中",
            Self::LeaveApproved => "请假通过",
            Self::OvertimeApproved => "加班通过",
            Self::Expired => "已过期",
            Self::LeaveDraft => "请假申请填写中",
            Self::OvertimeDraft => "加班申请填写中",
            Self::LeaveRejected => "请假未通过",
            Self::OvertimeRejected => "加班未通过",
            Self::LeaveWithdrawn => "请假已撤回",
            Self::OvertimeWithdrawn => "加班已撤回",
            Self::LeaveMoved => "请假申请已转到私聊",
            Self::OvertimeMoved => "加班申请已转到私聊",
            Self::LeaveUnrouted => "请假未送审：无审批人",
            Self::OvertimeUnrouted => "加班未送审：无审批人",
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
}

/// Why the state machine refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("already submitted ({})", .0.as_str())]
    AlreadySubmitted(ApprovalStatus),
    #[error("already decided ({})", .0.as_str())]
    AlreadyDecided(ApprovalStatus),
    #[error("expired")]
    Expired,
    #[error("not submitted ({})", .0.as_str())]
    NotSubmitted(ApprovalStatus),
    #[error("not pending ({})", .0.as_str())]
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
    /// What the requester filed.
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

/// The leave types of the 请假 form: the select's option values.
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

/// A filed request's form, validated (`request::parse_form`).
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
            Self::Leave { .. } => RequestKind::Leave,
            Self::WorkOvertime { .. } => RequestKind::WorkOvertime,
        }
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
}

/// `CardState.kind` of an approver's card: it shows a request kept on the requester's card.
pub const REVIEW_KIND: &str = "approval_review";

/// An approver's card's data (`CardState.data` of a [`REVIEW_KIND`] card).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewData {
    /// The requester's card key: the request.
    pub request_key: String,
    /// The approver this card was sent to.
    pub approver: String,
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
    /// Which request a card at `status` is about: the status says, else the filed form (an
    /// expired request's status names no kind).
    pub fn request_kind(&self, status: ApprovalStatus) -> Option<RequestKind> {
        status
            .request()
            .or_else(|| self.form.as_ref().map(RequestForm::kind))
    }

    /// [`ApprovalData::request_kind`], or why there is none.
    pub fn request_kind_of(&self, status: ApprovalStatus) -> Result<RequestKind, DomainError> {
        self.request_kind(status)
            .ok_or_else(|| DomainError::CorruptState(format!("no request in {}", status.as_str())))
    }

    pub fn from_value(value: &Value) -> Result<Self, DomainError> {
        if value.is_null() {
            return Ok(Self::default());
        }
        serde_json::from_value(value.clone())
            .map_err(|e| DomainError::CorruptState(format!("data: {e}")))
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

    #[test]
    fn the_state_machine_exhaustively() {
        use ApprovalEvent::*;
        use ApprovalStatus::*;
        let leave = RequestKind::Leave;
        let overtime = RequestKind::WorkOvertime;
        let events = [
            Submit(leave),
            Submit(overtime),
            Open(leave),
            Open(overtime),
            File,
            Decide { approve: true },
            Decide { approve: false },
            Withdraw,
            Approve,
            Expire,
            Move(leave),
            Move(overtime),
            Unroute,
        ];
        let mut allowed = 0;
        for status in ApprovalStatus::ALL {
            for event in events {
                let expected = match (status, event) {
                    (Pending, Submit(RequestKind::Leave)) => Ok(LeaveSubmitted),
                    (Pending, Submit(RequestKind::WorkOvertime)) => Ok(OvertimeSubmitted),
                    (Pending, Open(RequestKind::Leave)) => Ok(LeaveDraft),
                    (Pending, Open(RequestKind::WorkOvertime)) => Ok(OvertimeDraft),
                    (Pending, Move(RequestKind::Leave)) => Ok(LeaveMoved),
                    (Pending, Move(RequestKind::WorkOvertime)) => Ok(OvertimeMoved),
                    (LeaveFiled, Unroute) => Ok(LeaveUnrouted),
                    (OvertimeFiled, Unroute) => Ok(OvertimeUnrouted),
                    (Pending | LeaveDraft | OvertimeDraft, Expire) => Ok(Expired),
                    (LeaveSubmitted, Approve) => Ok(LeaveApproved),
                    (OvertimeSubmitted, Approve) => Ok(OvertimeApproved),
                    (LeaveDraft, File) => Ok(LeaveFiled),
                    (OvertimeDraft, File) => Ok(OvertimeFiled),
                    (LeaveFiled, Decide { approve: true }) => Ok(LeaveApproved),
                    (OvertimeFiled, Decide { approve: true }) => Ok(OvertimeApproved),
                    (LeaveFiled, Decide { approve: false }) => Ok(LeaveRejected),
                    (OvertimeFiled, Decide { approve: false }) => Ok(OvertimeRejected),
                    (LeaveFiled, Withdraw) => Ok(LeaveWithdrawn),
                    (OvertimeFiled, Withdraw) => Ok(OvertimeWithdrawn),
                    (Expired, _) => Err(Refusal::Expired),
                    (
                        LeaveApproved | OvertimeApproved | LeaveRejected | OvertimeRejected
                        | LeaveWithdrawn | OvertimeWithdrawn | LeaveMoved | OvertimeMoved
                        | LeaveUnrouted | OvertimeUnrouted,
                        _,
                    ) => Err(Refusal::AlreadyDecided(status)),
                    (_, Submit(_) | Open(_) | Move(_)) => Err(Refusal::AlreadySubmitted(status)),
                    (_, Expire) => Err(Refusal::NotPending(status)),
                    (_, _) => Err(Refusal::NotSubmitted(status)),
                };
                allowed += usize::from(expected.is_ok());
                assert_eq!(status.apply(event), expected, "{status:?} + {event:?}");
            }
        }
        assert_eq!(allowed, 21);
    }

    #[test]
    fn statuses_round_trip_and_know_their_request() {
        for status in ApprovalStatus::ALL {
            assert_eq!(ApprovalStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ApprovalStatus::parse("approved"), None);
        assert_eq!(
            ApprovalStatus::LeaveApproved.request(),
            Some(RequestKind::Leave)
        );
        assert_eq!(
            ApprovalStatus::OvertimeSubmitted.request(),
            Some(RequestKind::WorkOvertime)
        );
        assert_eq!(ApprovalStatus::Pending.request(), None);
        assert!(ApprovalStatus::Expired.is_final() && !ApprovalStatus::LeaveSubmitted.is_final());
    }
}
