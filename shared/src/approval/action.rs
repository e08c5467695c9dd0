//! The approval card's buttons as one typed action: it builds the button's callback `value` and
//! parses a callback's `action.value` back, so each value is spelled in one place.

use serde_json::Value;

use super::machine::RequestKind;

/// A click the bot understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalAction {
    /// A request type's button: `{"type":"<definition id>"}`; 请假 / 加班 are the tutorial's
    /// `{"type":"leave"}` / `{"type":"work_overtime"}`.
    Submit(RequestKind),
    /// The 审批 card's 发起 button beside its select of request types (when there are more than
    /// fit as buttons): `{"type":"open"}`; the type comes in `form_value.definition`.
    Choose,
    /// The request form's 提交 button: `{"type":"file"}`; the values come in `form_value`.
    File,
    /// The approver's 同意: `{"type":"approve"}` (an optional comment in `form_value`).
    Approve,
    /// The approver's 拒绝: `{"type":"reject"}`.
    Reject,
    /// The requester's 撤回: `{"type":"withdraw"}`.
    Withdraw,
    /// The welcome card's 发起审批: `{"type":"start"}`; the approval card comes as a new message.
    Start,
    /// The approver's 转交: `{"type":"transfer"}`; the chosen person in `form_value.transfer_to`,
    /// an optional comment in `form_value.comment`.
    Transfer,
    /// The approver's 退回 (return for changes): `{"type":"return"}` (an optional comment).
    Return,
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

/// An unknown `type` is kept for the log, cut to this many characters.
const MAX_LOGGED_TYPE_CHARS: usize = 64;

impl ApprovalAction {
    /// The button's callback `value`, a JSON object.
    pub fn value(self) -> Value {
        match self {
            Self::Submit(kind) => serde_json::json!({ "type": kind }),
            Self::Choose => serde_json::json!({ "type": "open" }),
            Self::File => serde_json::json!({ "type": "file" }),
            Self::Approve => serde_json::json!({ "type": "approve" }),
            Self::Reject => serde_json::json!({ "type": "reject" }),
            Self::Withdraw => serde_json::json!({ "type": "withdraw" }),
            Self::Start => serde_json::json!({ "type": "start" }),
            Self::Transfer => serde_json::json!({ "type": "transfer" }),
            Self::Return => serde_json::json!({ "type": "return" }),
        }
    }

    /// Parses a callback's `action.value` (an object, or a string holding one).
    pub fn parse(value: &Value) -> Result<Self, ActionError> {
        let parsed;
        let object = match value {
            Value::Object(map) => map,
            Value::String(text) => {
                parsed =
                    serde_json::from_str::<Value>(text).map_err(|_| ActionError::NotAnObject)?;
                parsed.as_object().ok_or(ActionError::NotAnObject)?
            }
            _ => return Err(ActionError::NotAnObject),
        };
        let kind = object.get("type").ok_or(ActionError::MissingType)?;
        let name = kind.as_str().ok_or(ActionError::MissingType)?;
        match name {
            "file" => return Ok(Self::File),
            "approve" => return Ok(Self::Approve),
            "reject" => return Ok(Self::Reject),
            "withdraw" => return Ok(Self::Withdraw),
            "start" => return Ok(Self::Start),
            "open" => return Ok(Self::Choose),
            "transfer" => return Ok(Self::Transfer),
            "return" => return Ok(Self::Return),
            _ => {}
        }
        // Any other well-formed id is a request type's button; whether it is still defined is
        // the domain's question (a removed type's button answers a toast).
        RequestKind::new(name)
            .filter(|kind| !kind.is_reserved())
            .map(Self::Submit)
            .ok_or_else(|| {
                ActionError::UnknownType(name.chars().take(MAX_LOGGED_TYPE_CHARS).collect())
            })
    }
}

impl TryFrom<&Value> for ApprovalAction {
    type Error = ActionError;

    /// [`ApprovalAction::parse`], for [`crate::webhook::CardClick::action`].
    fn try_from(value: &Value) -> Result<Self, ActionError> {
        Self::parse(value)
    }
}

/// Parses a callback's `action.value`; see [`ApprovalAction::parse`].
pub fn parse_action(value: &Value) -> Result<ApprovalAction, ActionError> {
    ApprovalAction::parse(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_parse_from_callback_values() {
        assert_eq!(
            parse_action(&json!({"type": "leave"})),
            Ok(ApprovalAction::Submit(RequestKind::LEAVE))
        );
        assert_eq!(
            parse_action(&json!({"type": "work_overtime"})),
            Ok(ApprovalAction::Submit(RequestKind::WORK_OVERTIME))
        );
        assert_eq!(
            parse_action(&json!("{\"type\":\"leave\"}")),
            Ok(ApprovalAction::Submit(RequestKind::LEAVE))
        );
        assert_eq!(
            parse_action(&json!({"type": "expense"})),
            Ok(ApprovalAction::Submit(RequestKind::new("expense").unwrap()))
        );
        assert_eq!(
            parse_action(&json!({"type": "Delete all"})),
            Err(ActionError::UnknownType("Delete all".into()))
        );
        assert_eq!(
            parse_action(&json!({"type": "overtime"})),
            Err(ActionError::UnknownType("overtime".into())),
            "a reserved word is no request type"
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
        for action in [
            ApprovalAction::Submit(RequestKind::LEAVE),
            ApprovalAction::Submit(RequestKind::WORK_OVERTIME),
            ApprovalAction::File,
            ApprovalAction::Approve,
            ApprovalAction::Reject,
            ApprovalAction::Withdraw,
            ApprovalAction::Start,
            ApprovalAction::Choose,
        ] {
            assert_eq!(parse_action(&action.value()), Ok(action));
        }
    }

    #[test]
    fn fixture_click_values_parse() {
        for (file, kind) in [
            (
                "callback_card_action_trigger_leave.json",
                RequestKind::LEAVE,
            ),
            (
                "callback_card_action_trigger_second_button.json",
                RequestKind::WORK_OVERTIME,
            ),
        ] {
            let path = format!("{}/../fixtures/feishu/{file}", env!("CARGO_MANIFEST_DIR"));
            let body: Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            assert_eq!(
                parse_action(&body["event"]["action"]["value"]),
                Ok(ApprovalAction::Submit(kind))
            );
        }
        let path = format!(
            "{}/../fixtures/feishu/callback_card_legacy_leave.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let body: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(
            parse_action(&body["action"]["value"]),
            Ok(ApprovalAction::Submit(RequestKind::LEAVE))
        );
    }

    #[test]
    fn callback_values_serialise_exactly() {
        assert_eq!(
            serde_json::to_string(&ApprovalAction::Submit(RequestKind::LEAVE).value()).unwrap(),
            r#"{"type":"leave"}"#
        );
        assert_eq!(
            serde_json::to_string(&ApprovalAction::Submit(RequestKind::WORK_OVERTIME).value())
                .unwrap(),
            r#"{"type":"work_overtime"}"#
        );
    }
}
