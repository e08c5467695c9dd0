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
    /// `event_id`: the event's id; the dedup key of events other than messages.
    pub event_id: String,
    /// `event_type`, e.g. `im.message.receive_v1` or `card.action.trigger`.
    pub event_type: String,
    /// Opaque: milliseconds on events, microseconds on card callbacks.
    pub create_time: Option<String>,
    /// The Verification Token, already checked by the webhook.
    pub token: VerificationToken,
    /// `app_id` of the app the request is for.
    pub app_id: Option<String>,
    /// `tenant_key` of the tenant it comes from.
    pub tenant_key: Option<String>,
}

/// `open_id` / `user_id` / `union_id` of a user; each needs its own scope, so each may be absent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserId {
    /// `open_id`: the user's id in this app.
    pub open_id: Option<String>,
    /// `user_id`, when the app has its scope.
    pub user_id: Option<String>,
    /// `union_id`, when the app has its scope.
    pub union_id: Option<String>,
}

/// `im.chat.access_event.bot_p2p_chat_entered_v1`, schema 2.0: a user opened their p2p chat with
/// the bot (`approval-apis.md` §3). The ids are optional: each needs its own scope, and a malformed
/// event is answered and logged by the bot, never retried for hours.
#[derive(Debug, Clone, Deserialize)]
pub struct BotP2pChatEntered {
    /// `"2.0"`.
    pub schema: String,
    /// The event header (`event_id` keys its dedup).
    pub header: EventHeader,
    /// The chat and the user.
    pub event: BotP2pChatEnteredEvent,
}

/// The `event` of [`BotP2pChatEntered`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BotP2pChatEnteredEvent {
    /// The p2p chat (`oc_…`).
    #[serde(default)]
    pub chat_id: Option<String>,
    /// The user who opened it.
    #[serde(default)]
    pub operator_id: UserId,
    /// The chat's last message (`om_…`), when there is one.
    #[serde(default)]
    pub last_message_id: Option<String>,
}

/// `application.bot.menu_v6`, schema 2.0: a user clicked a bot menu item whose action is a push
/// event (`approval-apis.md` §4). It carries no chat and no message: answer the user by open_id.
#[derive(Debug, Clone, Deserialize)]
pub struct BotMenu {
    /// `"2.0"`.
    pub schema: String,
    /// The event header (`event_id` keys its dedup).
    pub header: EventHeader,
    /// The menu item and the user.
    pub event: BotMenuEvent,
}

/// The `event` of [`BotMenu`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BotMenuEvent {
    /// The item's key as set in the developer console (1-30 chars).
    #[serde(default)]
    pub event_key: String,
    /// Who clicked.
    #[serde(default)]
    pub operator: BotMenuOperator,
}

/// The `operator` of a [`BotMenuEvent`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BotMenuOperator {
    /// The user's ids.
    #[serde(default)]
    pub operator_id: UserId,
}

/// `im.message.receive_v1`, schema 2.0.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageReceive {
    /// `schema`: `"2.0"`.
    pub schema: String,
    /// The envelope header: ids, event type, Verification Token, app and tenant.
    pub header: EventHeader,
    /// The sender and the message.
    pub event: MessageReceiveEvent,
}

/// The `event` of [`MessageReceive`]: who sent which message.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageReceiveEvent {
    /// `sender`: who sent it.
    pub sender: EventSender,
    /// `message`: the message itself.
    pub message: EventMessage,
}

/// `event.sender` of a received message.
#[derive(Debug, Clone, Deserialize)]
pub struct EventSender {
    /// `sender_id`: the sender's ids.
    pub sender_id: UserId,
    /// Currently always `user`.
    pub sender_type: String,
    /// `tenant_key` of the sender's tenant.
    pub tenant_key: Option<String>,
}

/// `event.message` of a received message.
#[derive(Debug, Clone, Deserialize)]
pub struct EventMessage {
    /// `message_id` (`om_…`): the message's id, and its dedup key.
    pub message_id: String,
    /// `root_id`: the root message of the reply chain, for a reply.
    pub root_id: Option<String>,
    /// `parent_id`: the message this one replies to, for a reply.
    pub parent_id: Option<String>,
    /// `create_time`: epoch milliseconds as a string.
    pub create_time: String,
    /// `update_time`: epoch milliseconds as a string, when sent.
    pub update_time: Option<String>,
    /// `chat_id` (`oc_…`) of the chat it was sent in.
    pub chat_id: String,
    /// `thread_id` of its thread, for a message in a thread.
    pub thread_id: Option<String>,
    /// `chat_type`: p2p, group or topic group.
    pub chat_type: ChatType,
    /// `text`, `post`, `image`, `interactive`, …
    pub message_type: String,
    /// `content`: the message body, a JSON document inside a JSON string.
    pub content: MessageContent,
    /// `mentions`: the `@`s in the message, in order; empty when none.
    #[serde(default)]
    pub mentions: Vec<MentionEvent>,
    /// `user_agent` of the sender's client, when sent.
    pub user_agent: Option<String>,
}

/// `chat_type` of a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatType {
    /// `p2p`: a one-to-one chat.
    P2p,
    /// `group`: a group chat.
    Group,
    /// `topic_group`: a topic group.
    TopicGroup,
    /// A chat type newer than this code.
    #[serde(other)]
    Unknown,
}

/// `message.content`: a JSON document inside a JSON string. Its `text` is read here, in one pass
/// that builds nothing else; [`MessageContent::value`] parses the whole document on demand (a
/// `post`, read with [`post_text`]).
#[derive(Debug, Clone)]
pub struct MessageContent {
    /// The string exactly as Feishu sent it.
    pub raw: String,
    /// `text` of a text message, with `@_user_N` placeholders still in it.
    pub text: Option<String>,
}

impl MessageContent {
    /// The whole content document (`Value::Null` never happens: the raw string was checked to be
    /// a JSON document when the event was read).
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.raw).unwrap_or(Value::Null)
    }
}

/// The plain text of a received `post` (rich text) content (`approval-apis.md` §2): the title,
/// then each paragraph's `text` / `a` / `code_block` / `md` runs, `at` runs as their `@_user_N`
/// placeholder (the command parser removes mentions as in text messages), images, media,
/// emotions and rules as nothing; paragraphs joined by `\n`. A locale-wrapped body
/// (`{"zh_cn": {…}}`) and a non-empty `content_v2` are accepted too: official code reads both,
/// unconfirmed on the wire, and reading them costs nothing when absent. `None` when the value
/// has no paragraphs.
pub fn post_text(value: &Value) -> Option<String> {
    let body = if value.get("content").is_some() || value.get("content_v2").is_some() {
        value
    } else {
        ["zh_cn", "en_us", "ja_jp"]
            .iter()
            .find_map(|locale| value.get(*locale))
            .or_else(|| value.as_object()?.values().find(|v| v.is_object()))?
    };
    let paragraphs = body
        .get("content_v2")
        .and_then(Value::as_array)
        .filter(|list| !list.is_empty())
        .or_else(|| body.get("content").and_then(Value::as_array))?;
    let mut lines: Vec<String> = Vec::new();
    if let Some(title) = body.get("title").and_then(Value::as_str) {
        if !title.trim().is_empty() {
            lines.push(title.to_owned());
        }
    }
    for paragraph in paragraphs {
        let mut line = String::new();
        for run in paragraph.as_array().into_iter().flatten() {
            let tag = run.get("tag").and_then(Value::as_str).unwrap_or_default();
            match tag {
                "at" => {
                    if let Some(key) = run.get("user_id").and_then(Value::as_str) {
                        line.push(' ');
                        line.push_str(key);
                        line.push(' ');
                    }
                }
                "img" | "media" | "emotion" | "hr" => {}
                _ => {
                    if let Some(text) = run.get("text").and_then(Value::as_str) {
                        line.push_str(text);
                    }
                }
            }
        }
        lines.push(line);
    }
    Some(lines.join("\n"))
}

impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        let text = content_text(&raw)
            .ok_or_else(|| D::Error::custom("message content is not a JSON document"))?;
        Ok(Self { raw, text })
    }
}

/// The `text` of a content document (`None` inside when it has none or it is not a string);
/// `None` when the content is not JSON. An object is read for `text` alone, building nothing
/// else; anything unusual (another JSON value, a repeated key) is read as a whole `Value`, which
/// gives the same answer.
fn content_text(raw: &str) -> Option<Option<String>> {
    #[derive(Deserialize)]
    struct TextOnly {
        #[serde(default)]
        text: Option<Value>,
    }
    let as_string = |v: Value| match v {
        Value::String(s) => Some(s),
        _ => None,
    };
    if raw.trim_start().starts_with('{') {
        if let Ok(TextOnly { text }) = serde_json::from_str(raw) {
            return Some(text.and_then(as_string));
        }
    }
    let value: Value = serde_json::from_str(raw).ok()?;
    Some(value.get("text").cloned().and_then(as_string))
}

/// One `@` in a message; `key` is its placeholder (`@_user_1`) in the text.
#[derive(Debug, Clone, Deserialize)]
pub struct MentionEvent {
    /// `key`: the mention's placeholder in the text, e.g. `@_user_1`.
    pub key: String,
    /// `id`: the mentioned user's ids.
    pub id: UserId,
    /// `name`: the mentioned user's name.
    pub name: String,
    /// `tenant_key` of the mentioned user's tenant.
    pub tenant_key: Option<String>,
    /// `mentioned_type`, when sent.
    pub mentioned_type: Option<String>,
}

/// `card.action.trigger` (schema 2.0 card callback).
#[derive(Debug, Clone, Deserialize)]
pub struct CardActionTrigger {
    /// `schema`: `"2.0"`.
    pub schema: String,
    /// The envelope header; its `event_id` is the click's dedup key.
    pub header: EventHeader,
    /// The click: who, which component, where, and the update token.
    pub event: CardActionEvent,
}

/// The `event` of [`CardActionTrigger`].
#[derive(Debug, Clone, Deserialize)]
pub struct CardActionEvent {
    /// `operator`: who clicked.
    pub operator: CardOperator,
    /// Update token for the delayed update.
    pub token: UpdateToken,
    /// `action`: the component's value and input.
    pub action: CardAction,
    /// `im_message` or `im_top_notice`.
    pub host: Option<String>,
    /// Only for link previews (`url_preview`).
    pub delivery_type: Option<String>,
    /// `context`: the card's message and chat; empty when absent.
    #[serde(default)]
    pub context: CardActionContext,
}

/// Who clicked; the official plugin falls back to `user_id` when `open_id` is absent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CardOperator {
    /// `open_id` of the clicker.
    pub open_id: Option<String>,
    /// `user_id` of the clicker, when the app has its scope.
    pub user_id: Option<String>,
    /// `union_id` of the clicker, when the app has its scope.
    pub union_id: Option<String>,
    /// `tenant_key` of the clicker's tenant.
    pub tenant_key: Option<String>,
}

/// The component's action; which fields are present depends on the component.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CardAction {
    /// The component's `value` as set on the card (object or string).
    #[serde(default)]
    pub value: Value,
    /// `tag` of the component, e.g. `button`.
    pub tag: Option<String>,
    /// `option`: the chosen option of a select component.
    pub option: Option<String>,
    /// `timezone`, for date and time pickers.
    pub timezone: Option<String>,
    /// `name` of the component, for form components.
    pub name: Option<String>,
    /// `form_value`: a submitted form's values keyed by component `name`.
    pub form_value: Option<serde_json::Map<String, Value>>,
    /// `input_value`: the text of an input component.
    pub input_value: Option<String>,
    /// `options`: the chosen options of a multi-choice component.
    pub options: Option<Vec<String>>,
    /// `checked`: the state of a checker component.
    pub checked: Option<bool>,
}

/// `context` of a card callback: where the card is.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CardActionContext {
    /// `open_message_id` (`om_…`): the message that shows the card.
    pub open_message_id: Option<String>,
    /// `open_chat_id` (`oc_…`): the chat the card is in.
    pub open_chat_id: Option<String>,
    /// Only for link previews.
    pub url: Option<String>,
    /// Only for link previews.
    pub preview_token: Option<String>,
}

/// Legacy card callback (`card.action.trigger_v1`, the "message card request URL").
#[derive(Debug, Clone, Deserialize)]
pub struct LegacyCardAction {
    /// `open_id` of the clicker.
    pub open_id: Option<String>,
    /// `user_id` of the clicker, when the app has its scope.
    pub user_id: Option<String>,
    /// `open_message_id` (`om_…`): the message that shows the card.
    pub open_message_id: String,
    /// `open_chat_id` (`oc_…`): the chat the card is in, when sent.
    pub open_chat_id: Option<String>,
    /// `tenant_key` of the clicker's tenant.
    pub tenant_key: Option<String>,
    /// Update token (not the Verification Token).
    pub token: UpdateToken,
    /// `action`: the component's value and input.
    pub action: CardAction,
    /// `X-Refresh-Token` header: the same value on a re-delivery of one click.
    #[serde(skip)]
    pub refresh_token: Option<String>,
}

#[cfg(test)]
mod post_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_post_reads_as_its_text_runs_with_mention_placeholders() {
        let post = json!({"title": "", "content": [
            [{"tag":"at","user_id":"@_user_1","user_name":"审批助手","style":[]},
             {"tag":"text","text":" 审批 ","style":["bold"]},
             {"tag":"a","href":"https://example.com","text":"单据","style":[]}],
            [{"tag":"img","image_key":"img_v2_451522f0"}],
            [{"tag":"emotion","emoji_type":"SMILE"}], [{"tag":"hr"}],
            [{"tag":"code_block","language":"GO","text":"x"}]]});
        assert_eq!(post_text(&post).unwrap(), " @_user_1  审批 单据\n\n\n\nx");
        let only = json!({"title": "", "content": [[{"tag":"text","text":"审批"}]]});
        assert_eq!(post_text(&only).as_deref(), Some("审批"));
    }

    #[test]
    fn content_text_reads_text_as_the_whole_document_would() {
        for raw in [
            r#"{"text":"审批"}"#,
            r#"{"image_key":"img_1"}"#,
            r#"{"text":7}"#,
            r#"{"text":null}"#,
            r#"{"text":"a","text":"b"}"#,
            r#"["text"]"#,
            r#""x""#,
            r#" {"x":{"text":"no"},"text":"yes"}"#,
        ] {
            let whole: serde_json::Value = serde_json::from_str(raw).unwrap();
            let expected = whole
                .get("text")
                .and_then(|t| t.as_str())
                .map(str::to_owned);
            assert_eq!(content_text(raw), Some(expected), "{raw}");
        }
        assert_eq!(content_text("{not json"), None);
    }

    #[test]
    fn locale_wrapped_and_content_v2_posts_are_read_and_other_contents_are_not() {
        let wrapped =
            json!({"en_us": {"title": "Leave", "content": [[{"tag":"text","text":"request"}]]}});
        assert_eq!(post_text(&wrapped).as_deref(), Some("Leave\nrequest"));
        let v2 = json!({"content": [[{"tag":"text","text":"old"}]],
                        "content_v2": [[{"tag":"md","text":"审批"}]]});
        assert_eq!(post_text(&v2).as_deref(), Some("审批"));
        assert_eq!(post_text(&json!({"image_key": "img_1"})), None);
        assert_eq!(post_text(&json!({"text": "x"})), None);
    }
}
