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
