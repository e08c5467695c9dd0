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

/// Where an approval card stands (`CardState.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalStatus {
    Pending,
    LeaveSubmitted,
    OvertimeSubmitted,
    LeaveApproved,
    OvertimeApproved,
    Expired,
}

impl ApprovalStatus {
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::LeaveSubmitted,
        Self::OvertimeSubmitted,
        Self::LeaveApproved,
        Self::OvertimeApproved,
        Self::Expired,
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
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    pub fn submitted(kind: RequestKind) -> Self {
        match kind {
            RequestKind::Leave => Self::LeaveSubmitted,
            RequestKind::WorkOvertime => Self::OvertimeSubmitted,
        }
    }

    pub fn approved(kind: RequestKind) -> Self {
        match kind {
            RequestKind::Leave => Self::LeaveApproved,
            RequestKind::WorkOvertime => Self::OvertimeApproved,
        }
    }

    /// The request a card is about, once one was chosen.
    pub fn request(self) -> Option<RequestKind> {
        match self {
            Self::LeaveSubmitted | Self::LeaveApproved => Some(RequestKind::Leave),
            Self::OvertimeSubmitted | Self::OvertimeApproved => Some(RequestKind::WorkOvertime),
            Self::Pending | Self::Expired => None,
        }
    }

    /// Terminal: nothing moves it any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::LeaveApproved | Self::OvertimeApproved | Self::Expired
        )
    }

    /// Applies an event: pending → *_submitted → *_approved; pending → expired.
    pub fn apply(self, event: ApprovalEvent) -> Result<Self, Refusal> {
        match (self, event) {
            (Self::Pending, ApprovalEvent::Submit(kind)) => Ok(Self::submitted(kind)),
            (Self::Pending, ApprovalEvent::Expire) => Ok(Self::Expired),
            (Self::LeaveSubmitted | Self::OvertimeSubmitted, ApprovalEvent::Approve) => self
                .request()
                .map(Self::approved)
                .ok_or(Refusal::NotSubmitted(self)),
            (Self::Expired, _) => Err(Refusal::Expired),
            (Self::LeaveSubmitted | Self::OvertimeSubmitted, ApprovalEvent::Submit(_)) => {
                Err(Refusal::AlreadySubmitted(self))
            }
            (Self::LeaveApproved | Self::OvertimeApproved, ApprovalEvent::Submit(_)) => {
                Err(Refusal::AlreadyDecided(self))
            }
            (_, ApprovalEvent::Approve) => Err(Refusal::NotSubmitted(self)),
            (_, ApprovalEvent::Expire) => Err(Refusal::NotPending(self)),
        }
    }

    /// What a clicker is told when this status refuses a click.
    pub fn outcome_text(self) -> &'static str {
        match self {
            Self::Pending => "待处理",
            Self::LeaveSubmitted => "请假审批中",
            Self::OvertimeSubmitted => "加班审批中",
            Self::LeaveApproved => "请假通过",
            Self::OvertimeApproved => "加班通过",
            Self::Expired => "已过期",
        }
    }
}

/// What can happen to an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalEvent {
    /// A click on 请假 / 加班.
    Submit(RequestKind),
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
}

impl ApprovalData {
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
        let events = [
            Submit(RequestKind::Leave),
            Submit(RequestKind::WorkOvertime),
            Approve,
            Expire,
        ];
        for status in ApprovalStatus::ALL {
            for event in events {
                let expected = match (status, event) {
                    (Pending, Submit(RequestKind::Leave)) => Ok(LeaveSubmitted),
                    (Pending, Submit(RequestKind::WorkOvertime)) => Ok(OvertimeSubmitted),
                    (Pending, Expire) => Ok(Expired),
                    (LeaveSubmitted, Approve) => Ok(LeaveApproved),
                    (OvertimeSubmitted, Approve) => Ok(OvertimeApproved),
                    (Expired, _) => Err(Refusal::Expired),
                    (LeaveSubmitted | OvertimeSubmitted, Submit(_)) => {
                        Err(Refusal::AlreadySubmitted(status))
                    }
                    (LeaveApproved | OvertimeApproved, Submit(_)) => {
                        Err(Refusal::AlreadyDecided(status))
                    }
                    (_, Approve) => Err(Refusal::NotSubmitted(status)),
                    (_, Expire) => Err(Refusal::NotPending(status)),
                };
                assert_eq!(status.apply(event), expected, "{status:?} + {event:?}");
            }
        }
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
