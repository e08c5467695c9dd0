//! Wire types of the requests Feishu sends, mirroring its JSON field for field.

use serde::{de::Error as _, Deserialize, Deserializer};
use serde_json::Value;

use crate::config::{secret_string, VerificationToken};

secret_string!(
    /// The card-update token (`c-…`) of a card callback: 30 min, 2 delayed updates.
    UpdateToken
);

/// Schema 2.0 `header`; all values are strings.
#[derive(Debug, Clone, Deserialize)]
pub struct EventHeader {
    pub event_id: String,
    pub event_type: String,
    /// Opaque: milliseconds on events, microseconds on card callbacks.
    pub create_time: Option<String>,
    /// The Verification Token, already checked by the webhook.
    pub token: VerificationToken,
    pub app_id: Option<String>,
    pub tenant_key: Option<String>,
}

/// `open_id` / `user_id` / `union_id` of a user; each needs its own scope, so each may be absent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserId {
    pub open_id: Option<String>,
    pub user_id: Option<String>,
    pub union_id: Option<String>,
}

/// `im.message.receive_v1`, schema 2.0.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageReceive {
    pub schema: String,
    pub header: EventHeader,
    pub event: MessageReceiveEvent,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MessageReceiveEvent {
    pub sender: EventSender,
    pub message: EventMessage,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventSender {
    pub sender_id: UserId,
    /// Currently always `user`.
    pub sender_type: String,
    pub tenant_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventMessage {
    pub message_id: String,
    pub root_id: Option<String>,
    pub parent_id: Option<String>,
    pub create_time: String,
    pub update_time: Option<String>,
    pub chat_id: String,
    pub thread_id: Option<String>,
    pub chat_type: ChatType,
    /// `text`, `post`, `image`, `interactive`, …
    pub message_type: String,
    pub content: MessageContent,
    #[serde(default)]
    pub mentions: Vec<MentionEvent>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatType {
    P2p,
    Group,
    TopicGroup,
    /// A chat type newer than this code.
    #[serde(other)]
    Unknown,
}

/// `message.content`: a JSON document inside a JSON string, decoded once here.
#[derive(Debug, Clone)]
pub struct MessageContent {
    /// The string exactly as Feishu sent it.
    pub raw: String,
    pub value: Value,
    /// `text` of a text message, with `@_user_N` placeholders still in it.
    pub text: Option<String>,
}

impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        let value: Value = serde_json::from_str(&raw)
            .map_err(|_| D::Error::custom("message content is not a JSON document"))?;
        let text = value.get("text").and_then(Value::as_str).map(str::to_owned);
        Ok(Self { raw, value, text })
    }
}

/// One `@` in a message; `key` is its placeholder (`@_user_1`) in the text.
#[derive(Debug, Clone, Deserialize)]
pub struct MentionEvent {
    pub key: String,
    pub id: UserId,
    pub name: String,
    pub tenant_key: Option<String>,
    pub mentioned_type: Option<String>,
}

/// `card.action.trigger` (schema 2.0 card callback).
#[derive(Debug, Clone, Deserialize)]
pub struct CardActionTrigger {
    pub schema: String,
    pub header: EventHeader,
    pub event: CardActionEvent,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CardActionEvent {
    pub operator: CardOperator,
    /// Update token for the delayed update.
    pub token: UpdateToken,
    pub action: CardAction,
    /// `im_message` or `im_top_notice`.
    pub host: Option<String>,
    /// Only for link previews (`url_preview`).
    pub delivery_type: Option<String>,
    #[serde(default)]
    pub context: CardActionContext,
}

/// Who clicked; the official plugin falls back to `user_id` when `open_id` is absent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CardOperator {
    pub open_id: Option<String>,
    pub user_id: Option<String>,
    pub union_id: Option<String>,
    pub tenant_key: Option<String>,
}

/// The component's action; which fields are present depends on the component.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CardAction {
    /// The component's `value` as set on the card (object or string).
    #[serde(default)]
    pub value: Value,
    pub tag: Option<String>,
    pub option: Option<String>,
    pub timezone: Option<String>,
    pub name: Option<String>,
    pub form_value: Option<serde_json::Map<String, Value>>,
    pub input_value: Option<String>,
    pub options: Option<Vec<String>>,
    pub checked: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CardActionContext {
    pub open_message_id: Option<String>,
    pub open_chat_id: Option<String>,
    /// Only for link previews.
    pub url: Option<String>,
    /// Only for link previews.
    pub preview_token: Option<String>,
}

/// Legacy card callback (`card.action.trigger_v1`, the "message card request URL").
#[derive(Debug, Clone, Deserialize)]
pub struct LegacyCardAction {
    pub open_id: Option<String>,
    pub user_id: Option<String>,
    pub open_message_id: String,
    pub open_chat_id: Option<String>,
    pub tenant_key: Option<String>,
    /// Update token (not the Verification Token).
    pub token: UpdateToken,
    pub action: CardAction,
    /// `X-Refresh-Token` header: the same value on a re-delivery of one click.
    #[serde(skip)]
    pub refresh_token: Option<String>,
}
