//! The domain: commands, card actions, the approval state machine, and what each card looks like.
//!
//! Pure functions: the functions' handlers call them between the store and Feishu, and every
//! decision (which reply, which transition, which toast, which job) is made here.

use crate::cards::approval::{self as views, RequestView};
use crate::cards::{CallbackAnswer, Card};
use crate::jobs::{self, DeliveryMode};
use crate::store::{CardState, EpochMillis, NewJob, StoredUpdateToken};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `CardState.kind` of an approval card.
pub const CARD_KIND: &str = "approval";

// ---------------------------------------------------------------------------------------------
// Commands

/// What a user's text message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `审批` / `approval`: reply with text and the approval card.
    Approval,
    /// `帮助` / `help`: the help text.
    Help,
    /// Anything else: also the help text.
    Unknown,
}

/// What the bot sends back for a command, in order, as replies to the user's message.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandReply {
    /// A text, then the approval card.
    TextAndApprovalCard { text: &'static str, card: Card },
    /// Only a text.
    Text(&'static str),
}

impl Command {
    pub fn reply(self) -> CommandReply {
        match self {
            Self::Approval => CommandReply::TextAndApprovalCard {
                text: views::APPROVAL_REPLY_TEXT,
                card: views::pending_card(),
            },
            Self::Help | Self::Unknown => CommandReply::Text(views::HELP_TEXT),
        }
    }
}

/// Full-width ASCII (U+FF01–U+FF5E) and the ideographic space become their half-width forms.
fn to_half_width(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// Removes Feishu's mention placeholders (`@_user_1`, `@_all`) from a text message.
fn strip_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let placeholder = if let Some(after) = tail.strip_prefix("@_user_") {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            (digits > 0).then_some("@_user_".len() + digits)
        } else if tail.starts_with("@_all") {
            Some("@_all".len())
        } else {
            None
        };
        match placeholder {
            Some(len) => {
                out.push(' ');
                rest = &tail[len..];
            }
            None => {
                out.push('@');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text as the router compares it: half-width, mentions removed, trimmed, lower case,
/// inner whitespace collapsed.
pub fn normalize_text(raw: &str) -> String {
    let half: String = raw.chars().map(to_half_width).collect();
    let without_mentions = strip_mentions(&half);
    without_mentions
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Routes a text message (the `text` of its `content`).
pub fn parse_command(raw: &str) -> Command {
    match normalize_text(raw).as_str() {
        "审批" | "approval" => Command::Approval,
        "帮助" | "help" => Command::Help,
        _ => Command::Unknown,
    }
}

// ---------------------------------------------------------------------------------------------
// Requests, statuses, the state machine

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

    /// `action.value.type` of the button.
    pub fn value_type(self) -> &'static str {
        match self {
            Self::Leave => "leave",
            Self::WorkOvertime => "work_overtime",
        }
    }

    /// The button's callback value, exactly as the tutorial defines it.
    pub fn callback_value(self) -> Value {
        serde_json::json!({ "type": self.value_type() })
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
    fn outcome_text(self) -> &'static str {
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
// Card actions

/// A click the bot understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardAction {
    Submit(RequestKind),
}

/// Why a callback's `action.value` is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("action.value is not an object")]
    NotAnObject,
    #[error("action.value has no string `type`")]
    MissingType,
    #[error("unknown action type {0:?}")]
    UnknownType(String),
}

/// Parses a callback's `action.value` (an object, or a string holding one).
pub fn parse_action(value: &Value) -> Result<CardAction, ActionError> {
    let parsed;
    let object = match value {
        Value::Object(map) => map,
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text).map_err(|_| ActionError::NotAnObject)?;
            parsed.as_object().ok_or(ActionError::NotAnObject)?
        }
        _ => return Err(ActionError::NotAnObject),
    };
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .ok_or(ActionError::MissingType)?;
    match kind {
        "leave" => Ok(CardAction::Submit(RequestKind::Leave)),
        "work_overtime" => Ok(CardAction::Submit(RequestKind::WorkOvertime)),
        other => Err(ActionError::UnknownType(other.chars().take(64).collect())),
    }
}

// ---------------------------------------------------------------------------------------------
// Card state and rendering

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

/// `MM-dd HH:mm` in China Standard Time (UTC+8, no DST), the tenant's clock in the tutorial.
pub fn format_cst(at: EpochMillis) -> String {
    let minutes = at.div_euclid(60_000) + 8 * 60;
    let days = minutes.div_euclid(24 * 60);
    let minute_of_day = minutes.rem_euclid(24 * 60);
    let (_, month, day) = civil_from_days(days);
    format!(
        "{month:02}-{day:02} {:02}:{:02}",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The card for a status and its data: what every delivery path shows.
pub fn render(status: ApprovalStatus, data: &ApprovalData) -> Card {
    let submitted_at = data.submitted_at.map(format_cst).unwrap_or_default();
    let view = |kind| RequestView {
        request: kind,
        submitted_by: data.submitted_by.as_deref(),
        submitted_at: &submitted_at,
    };
    match status {
        ApprovalStatus::Pending => views::pending_card(),
        ApprovalStatus::Expired => views::expired_card(),
        ApprovalStatus::LeaveSubmitted | ApprovalStatus::OvertimeSubmitted => {
            let kind = status.request().unwrap_or(RequestKind::Leave);
            views::submitted_card(&view(kind))
        }
        ApprovalStatus::LeaveApproved | ApprovalStatus::OvertimeApproved => {
            let kind = status.request().unwrap_or(RequestKind::Leave);
            let decided_at = data.decided_at.map(format_cst).unwrap_or_default();
            views::approved_card(&view(kind), &decided_at)
        }
    }
}

/// Renders a stored approval card.
pub fn render_state(state: &CardState) -> Result<Card, DomainError> {
    Ok(render(
        status_of(state)?,
        &ApprovalData::from_value(&state.data)?,
    ))
}

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
    pub delivery: DeliveryMode,
}

/// The card key of an approval card: the bot card's `message_id`, which every click carries.
pub fn card_key(message_id: &str) -> String {
    message_id.to_owned()
}

/// The state item of a pending approval card, written right after the send.
pub fn new_card_state(sent: &SentCard, now: EpochMillis) -> CardState {
    CardState {
        card_key: card_key(&sent.message_id),
        version: 0,
        sequence: 0,
        chat_id: sent.chat_id.clone(),
        requester_open_id: sent.requester_open_id.clone(),
        source_message_id: Some(sent.source_message_id.clone()),
        message_id: Some(sent.message_id.clone()),
        card_id: sent.card_id.clone(),
        delivery: sent.delivery.as_str().to_owned(),
        kind: CARD_KIND.to_owned(),
        status: ApprovalStatus::Pending.as_str().to_owned(),
        update_token: None,
        data: ApprovalData::default().to_value(),
        created_at: now,
        updated_at: now,
    }
}

/// The jobs to enqueue once a card is sent: its expiry.
pub fn jobs_for_new_card(state: &CardState, approval_ttl_ms: i64) -> Vec<NewJob> {
    vec![jobs::expire_job(
        &state.card_key,
        state.created_at,
        approval_ttl_ms,
    )]
}

// ---------------------------------------------------------------------------------------------
// Clicks

/// One verified click, whichever callback style carried it.
#[derive(Clone, PartialEq)]
pub struct Click<'a> {
    /// `action.value`.
    pub value: &'a Value,
    /// `operator.open_id` (new) or `open_id` (legacy).
    pub operator_open_id: Option<&'a str>,
    /// The card-update token (`c-…`): 30 minutes, 2 uses. A secret.
    pub update_token: Option<&'a str>,
    pub now: EpochMillis,
    /// An undecided card older than this is expired (`APPROVAL_TTL`).
    pub approval_ttl_ms: i64,
}

impl std::fmt::Debug for Click<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Click")
            .field("value", self.value)
            .field("operator_open_id", &self.operator_open_id)
            .field("update_token", &self.update_token.map(|_| "<redacted>"))
            .field("now", &self.now)
            .finish()
    }
}

/// What to do with a click.
#[derive(Debug, Clone, PartialEq)]
pub enum ClickDecision {
    /// Write `state` (version-checked) and enqueue `job` in one transaction, then answer.
    Transition {
        state: Box<CardState>,
        job: NewJob,
        answer: CallbackAnswer,
    },
    /// Answer with a toast; write nothing.
    NoChange { answer: CallbackAnswer },
    /// Not an action of ours: an error toast; write nothing.
    Rejected {
        error: ActionError,
        answer: CallbackAnswer,
    },
}

/// Decides a click on a stored approval card.
pub fn decide_click(state: &CardState, click: &Click<'_>) -> Result<ClickDecision, DomainError> {
    let action = match parse_action(click.value) {
        Ok(action) => action,
        Err(error) => {
            let answer = CallbackAnswer::toast_only(views::unknown_action_toast());
            return Ok(ClickDecision::Rejected { error, answer });
        }
    };
    let status = status_of(state)?;
    let mut data = ApprovalData::from_value(&state.data)?;
    let CardAction::Submit(kind) = action;
    let overdue =
        status == ApprovalStatus::Pending && click.now >= state.created_at + click.approval_ttl_ms;
    if overdue {
        // The expire job re-renders it; the click must not revive it meanwhile.
        return Ok(ClickDecision::NoChange {
            answer: CallbackAnswer::toast_only(views::expired_toast()),
        });
    }
    let next = match status.apply(ApprovalEvent::Submit(kind)) {
        Ok(next) => next,
        Err(Refusal::Expired) => {
            return Ok(ClickDecision::NoChange {
                answer: CallbackAnswer::toast_only(views::expired_toast()),
            })
        }
        Err(_) => {
            let toast = views::already_decided_toast(status.outcome_text());
            return Ok(ClickDecision::NoChange {
                answer: CallbackAnswer::toast_only(toast),
            });
        }
    };
    data.submitted_by = click.operator_open_id.map(str::to_owned);
    data.submitted_at = Some(click.now);
    let card = render(next, &data);
    let mut new_state = state.clone();
    new_state.status = next.as_str().to_owned();
    new_state.data = data.to_value();
    new_state.updated_at = click.now;
    new_state.update_token = click.update_token.map(|token| StoredUpdateToken {
        token: token.to_owned(),
        uses: 0,
        expires_at: click.now + jobs::UPDATE_TOKEN_TTL_MS,
    });
    Ok(ClickDecision::Transition {
        job: jobs::post_answer_job(&state.card_key, click.now),
        state: Box::new(new_state),
        answer: CallbackAnswer {
            toast: Some(views::submitted_toast(kind)),
            card: Some(card),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cards::{Element, ToastKind};
    use serde_json::json;

    const NOW: EpochMillis = 1_732_233_600_734;
    const TTL: i64 = 7 * 24 * 3600 * 1000;

    #[test]
    fn commands_are_recognised_in_every_spelling() {
        for text in [
            "审批",
            " 审批 ",
            "\u{3000}审批\u{3000}",
            "@_user_1 审批",
            "@_user_1审批",
            "审批 @_user_2",
            "approval",
            "APPROVAL",
            "Approval",
            "ＡＰＰＲＯＶＡＬ",
            "ａｐｐｒｏｖａｌ",
            "@_user_12 approval\n",
            "@_all 审批",
        ] {
            assert_eq!(parse_command(text), Command::Approval, "{text:?}");
        }
        for text in ["帮助", "help", "HELP", "ｈｅｌｐ", " @_user_1 帮助 "] {
            assert_eq!(parse_command(text), Command::Help, "{text:?}");
        }
        for text in [
            "hello",
            "",
            "审批审批",
            "审 批",
            "@_user_1",
            "approve",
            "@_user_ 审批",
            "请假",
        ] {
            assert_eq!(parse_command(text), Command::Unknown, "{text:?}");
        }
    }

    #[test]
    fn normalisation_keeps_real_at_signs_and_collapses_spaces() {
        assert_eq!(normalize_text("mail a@b.c"), "mail a@b.c");
        assert_eq!(normalize_text("Ａ　Ｂ！"), "a b!");
        assert_eq!(normalize_text("x@_user_1y"), "x y");
        assert_eq!(normalize_text("@"), "@");
    }

    #[test]
    fn replies_for_each_command() {
        let CommandReply::TextAndApprovalCard { text, card } = Command::Approval.reply() else {
            panic!()
        };
        assert_eq!(text, views::APPROVAL_REPLY_TEXT);
        assert_eq!(card, views::pending_card());
        assert_eq!(Command::Help.reply(), CommandReply::Text(views::HELP_TEXT));
        assert_eq!(
            Command::Unknown.reply(),
            CommandReply::Text(views::HELP_TEXT)
        );
    }

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

    #[test]
    fn actions_parse_from_callback_values() {
        assert_eq!(
            parse_action(&json!({"type": "leave"})),
            Ok(CardAction::Submit(RequestKind::Leave))
        );
        assert_eq!(
            parse_action(&json!({"type": "work_overtime"})),
            Ok(CardAction::Submit(RequestKind::WorkOvertime))
        );
        assert_eq!(
            parse_action(&json!("{\"type\":\"leave\"}")),
            Ok(CardAction::Submit(RequestKind::Leave))
        );
        assert_eq!(
            parse_action(&json!({"type": "delete_all"})),
            Err(ActionError::UnknownType("delete_all".into()))
        );
        assert_eq!(
            parse_action(&json!({"kind": "leave"})),
            Err(ActionError::MissingType)
        );
        assert_eq!(
            parse_action(&json!({"type": 1})),
            Err(ActionError::MissingType)
        );
        assert_eq!(
            parse_action(&json!(["leave"])),
            Err(ActionError::NotAnObject)
        );
        assert_eq!(parse_action(&json!("leave")), Err(ActionError::NotAnObject));
        assert_eq!(parse_action(&Value::Null), Err(ActionError::NotAnObject));
        for kind in [RequestKind::Leave, RequestKind::WorkOvertime] {
            assert_eq!(
                parse_action(&kind.callback_value()),
                Ok(CardAction::Submit(kind))
            );
        }
    }

    #[test]
    fn fixture_click_values_parse() {
        for (file, kind) in [
            (
                "callback_card_action_trigger_leave.json",
                RequestKind::Leave,
            ),
            (
                "callback_card_action_trigger_work_overtime.json",
                RequestKind::WorkOvertime,
            ),
        ] {
            let path = format!(
                "{}/../../shared/fixtures/feishu/{file}",
                env!("CARGO_MANIFEST_DIR")
            );
            let body: Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            assert_eq!(
                parse_action(&body["event"]["action"]["value"]),
                Ok(CardAction::Submit(kind))
            );
        }
        let path = format!(
            "{}/../../shared/fixtures/feishu/callback_card_legacy_leave.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let body: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(
            parse_action(&body["action"]["value"]),
            Ok(CardAction::Submit(RequestKind::Leave))
        );
    }

    #[test]
    fn cst_formatting() {
        assert_eq!(format_cst(0), "01-01 08:00");
        // 2024-11-22T00:00:00.734Z is 08:00 in Beijing.
        assert_eq!(format_cst(NOW), "11-22 08:00");
        assert_eq!(format_cst(1_709_222_399_000), "02-29 23:59"); // 2024-02-29T15:59:59Z
        assert_eq!(format_cst(1_709_222_400_000), "03-01 00:00");
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(format_cst(-60_000), "01-01 07:59");
    }

    fn sent(delivery: DeliveryMode) -> SentCard {
        SentCard {
            message_id: "om_dc13264520392913993dd051dba21dcf".into(),
            chat_id: "oc_5ad11d72b830411d72b836c20".into(),
            requester_open_id: "ou_84aad35d084aa403a838cf73ee18467".into(),
            source_message_id: "om_5ce6d572455d361153b7cb51da133945".into(),
            card_id: (delivery == DeliveryMode::Entity).then(|| "7355372766134157313".into()),
            delivery,
        }
    }

    fn click(value: &Value) -> Click<'_> {
        Click {
            value,
            operator_open_id: Some("ou_84aad35d084aa403a838cf73ee18467"),
            update_token: Some("c-295ee57216a5dc9de90fefd0aadb4b1d7d8e21a4"),
            now: NOW + 5_000,
            approval_ttl_ms: TTL,
        }
    }

    #[test]
    fn a_new_card_is_pending_keyed_by_the_bot_message_and_expires_later() {
        let state = new_card_state(&sent(DeliveryMode::Entity), NOW);
        assert_eq!(state.card_key, "om_dc13264520392913993dd051dba21dcf");
        assert_eq!(state.status, "pending");
        assert_eq!(state.kind, CARD_KIND);
        assert_eq!(state.delivery, "entity");
        assert_eq!(state.card_id.as_deref(), Some("7355372766134157313"));
        assert_eq!(render_state(&state).unwrap(), views::pending_card());
        let jobs = jobs_for_new_card(&state, TTL);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].kind, "expire");
        assert_eq!(jobs[0].not_before, NOW + TTL);
    }

    #[test]
    fn a_click_on_a_pending_card_submits_stores_the_token_and_enqueues_the_post_answer_job() {
        for (kind, status, words) in [
            (RequestKind::Leave, "leave_submitted", "已提交请假申请"),
            (
                RequestKind::WorkOvertime,
                "overtime_submitted",
                "已提交加班申请",
            ),
        ] {
            let state = new_card_state(&sent(DeliveryMode::Message), NOW);
            let value = kind.callback_value();
            let ClickDecision::Transition {
                state: next,
                job,
                answer,
            } = decide_click(&state, &click(&value)).unwrap()
            else {
                panic!("transition expected")
            };
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
            assert_eq!(job.kind, "post_answer");
            assert_eq!(job.card_key, state.card_key);
            assert_eq!(job.not_before, NOW + 5_000 + jobs::POST_ANSWER_DELAY_MS);
            let toast = answer.toast.unwrap();
            assert_eq!(
                (toast.kind, toast.content.as_str()),
                (ToastKind::Success, words)
            );
            let card = answer.card.unwrap();
            assert_eq!(card, render_state(&next).unwrap());
            let Some(Element::Button(button)) = card.find(views::ids::BTN_LEAVE) else {
                panic!()
            };
            assert!(button.disabled);
        }
    }

    #[test]
    fn a_second_click_changes_nothing() {
        let state = new_card_state(&sent(DeliveryMode::Entity), NOW);
        let leave = RequestKind::Leave.callback_value();
        let ClickDecision::Transition {
            state: submitted, ..
        } = decide_click(&state, &click(&leave)).unwrap()
        else {
            panic!()
        };
        for value in [leave.clone(), RequestKind::WorkOvertime.callback_value()] {
            let decision = decide_click(&submitted, &click(&value)).unwrap();
            let ClickDecision::NoChange { answer } = decision else {
                panic!("no change expected")
            };
            assert!(answer.card.is_none(), "the card stays as it is");
            assert_eq!(answer.toast.unwrap().content, "该审批已处理：请假审批中");
        }
        let mut approved = (*submitted).clone();
        approved.status = "leave_approved".into();
        let ClickDecision::NoChange { answer } = decide_click(&approved, &click(&leave)).unwrap()
        else {
            panic!()
        };
        assert_eq!(answer.toast.unwrap().content, "该审批已处理：请假通过");
    }

    #[test]
    fn expired_and_overdue_cards_refuse_clicks() {
        let leave = RequestKind::Leave.callback_value();
        let mut expired = new_card_state(&sent(DeliveryMode::Entity), NOW);
        expired.status = "expired".into();
        let ClickDecision::NoChange { answer } = decide_click(&expired, &click(&leave)).unwrap()
        else {
            panic!()
        };
        assert_eq!(answer.toast.unwrap().kind, ToastKind::Warning);
        let old = new_card_state(&sent(DeliveryMode::Entity), NOW - TTL);
        let ClickDecision::NoChange { answer } = decide_click(&old, &click(&leave)).unwrap() else {
            panic!()
        };
        assert_eq!(answer.toast.unwrap().kind, ToastKind::Warning);
    }

    #[test]
    fn an_unknown_action_is_rejected_with_an_error_toast() {
        let state = new_card_state(&sent(DeliveryMode::Entity), NOW);
        let value = json!({"type": "drop_table"});
        let ClickDecision::Rejected { error, answer } =
            decide_click(&state, &click(&value)).unwrap()
        else {
            panic!()
        };
        assert_eq!(error, ActionError::UnknownType("drop_table".into()));
        assert_eq!(answer.toast.unwrap().kind, ToastKind::Error);
        assert!(answer.card.is_none());
    }

    #[test]
    fn corrupt_or_foreign_state_is_an_error() {
        let value = RequestKind::Leave.callback_value();
        let mut state = new_card_state(&sent(DeliveryMode::Entity), NOW);
        state.status = "weird".into();
        assert!(matches!(
            decide_click(&state, &click(&value)),
            Err(DomainError::CorruptState(_))
        ));
        state.status = "pending".into();
        state.kind = "poll".into();
        assert!(matches!(
            decide_click(&state, &click(&value)),
            Err(DomainError::NotAnApprovalCard(_))
        ));
        state.kind = CARD_KIND.into();
        state.data = json!({"submitted_at": "yesterday"});
        assert!(matches!(
            decide_click(&state, &click(&value)),
            Err(DomainError::CorruptState(_))
        ));
    }

    #[test]
    fn a_click_without_token_or_operator_still_works() {
        let state = new_card_state(&sent(DeliveryMode::Entity), NOW);
        let value = RequestKind::Leave.callback_value();
        let mut c = click(&value);
        c.update_token = None;
        c.operator_open_id = None;
        let ClickDecision::Transition { state: next, .. } = decide_click(&state, &c).unwrap()
        else {
            panic!()
        };
        assert!(next.update_token.is_none());
        assert!(render_state(&next).unwrap().validate().is_ok());
    }

    #[test]
    fn click_debug_hides_the_update_token() {
        let value = json!({});
        let text = format!("{:?}", click(&value));
        assert!(!text.contains("c-295ee"), "{text}");
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn every_status_renders_a_valid_card() {
        let data = ApprovalData {
            submitted_by: Some("ou_x".into()),
            submitted_at: Some(NOW),
            decided_at: Some(NOW + 2_000),
        };
        for status in ApprovalStatus::ALL {
            let card = render(status, &data);
            assert_eq!(card.validate(), Ok(()), "{status:?}");
            assert!(card.to_json_string().contains("审批"), "{status:?}");
        }
        let approved = render(ApprovalStatus::OvertimeApproved, &data).to_json_string();
        assert!(approved.contains("加班通过") && approved.contains("11-22 08:00"));
    }
}
