//! im v1 messages (send, reply, PATCH a sent card) and the delayed card update, as wire requests.

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::FeishuResult;
use super::request::{json_string, path_segment, ApiRequest, Method};
use super::request_uuid::RequestUuid;

/// Who receives a sent message; the variant is the `receive_id_type` query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiveId {
    /// `open_id` (`ou_…`): a user, by their id in this app.
    OpenId(String),
    /// `union_id`: a user, by their union_id.
    UnionId(String),
    /// `user_id`: a user, by their user_id.
    UserId(String),
    /// `email`: a user, by their email address.
    Email(String),
    /// `chat_id` (`oc_…`): a chat.
    ChatId(String),
}

impl ReceiveId {
    /// The `receive_id_type` value.
    pub fn id_type(&self) -> &'static str {
        match self {
            Self::OpenId(_) => "open_id",
            Self::UnionId(_) => "union_id",
            Self::UserId(_) => "user_id",
            Self::Email(_) => "email",
            Self::ChatId(_) => "chat_id",
        }
    }

    /// The `receive_id` value.
    pub fn id(&self) -> &str {
        match self {
            Self::OpenId(id)
            | Self::UnionId(id)
            | Self::UserId(id)
            | Self::Email(id)
            | Self::ChatId(id) => id,
        }
    }
}

/// What a message shows. Serialised to `msg_type` + the `content` JSON string.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageContent {
    /// `text`: `{"text": …}`.
    Text(String),
    /// `interactive`: a card JSON (1.0 or 2.0) given inline.
    Card(Value),
    /// `interactive`: a CardKit card entity, `{"type":"card","data":{"card_id":…}}`.
    CardEntity {
        /// The CardKit `card_id`.
        card_id: String,
    },
    /// `interactive`: a card-builder template.
    Template {
        /// The template's `template_id`.
        template_id: String,
        /// `template_version_name`; `None` leaves it out.
        template_version_name: Option<String>,
        /// `template_variable`: the values of the template's variables.
        template_variable: Value,
    },
}

impl MessageContent {
    /// The `msg_type` field.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Card(_) | Self::CardEntity { .. } | Self::Template { .. } => "interactive",
        }
    }

    /// The `content` field: always a JSON **string**, never an object.
    pub fn content_string(&self) -> FeishuResult<String> {
        match self {
            Self::Text(text) => json_string("text content", &json!({ "text": text })),
            Self::Card(card) => json_string("card", card),
            Self::CardEntity { card_id } => json_string(
                "card entity reference",
                &json!({ "type": "card", "data": { "card_id": card_id } }),
            ),
            Self::Template {
                template_id,
                template_version_name,
                template_variable,
            } => {
                let mut data = json!({
                    "template_id": template_id,
                    "template_variable": template_variable,
                });
                if let Some(version) = template_version_name {
                    data["template_version_name"] = json!(version);
                }
                json_string("template", &json!({ "type": "template", "data": data }))
            }
        }
    }
}

/// The `data` of a send/reply answer (only the fields the bot uses; Feishu sends more).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SentMessage {
    /// `message_id` (`om_…`) of the sent message.
    pub message_id: String,
    /// `chat_id` (`oc_…`) of the chat it went to.
    #[serde(default)]
    pub chat_id: Option<String>,
    /// `msg_type`, e.g. `text` or `interactive`.
    #[serde(default)]
    pub msg_type: Option<String>,
    /// Epoch milliseconds as a string, as Feishu sends it.
    #[serde(default)]
    pub create_time: Option<String>,
}

/// `POST /open-apis/im/v1/messages?receive_id_type=…`.
pub fn send_message(
    receiver: &ReceiveId,
    content: &MessageContent,
    uuid: &RequestUuid,
) -> FeishuResult<ApiRequest> {
    Ok(ApiRequest::new(
        Method::Post,
        format!(
            "/open-apis/im/v1/messages?receive_id_type={}",
            receiver.id_type()
        ),
        json!({
            "receive_id": receiver.id(),
            "msg_type": content.msg_type(),
            "content": content.content_string()?,
            "uuid": uuid.as_str(),
        }),
    ))
}

/// `POST /open-apis/im/v1/messages/:message_id/reply`.
pub fn reply_message(
    message_id: &str,
    content: &MessageContent,
    reply_in_thread: bool,
    uuid: &RequestUuid,
) -> FeishuResult<ApiRequest> {
    Ok(ApiRequest::new(
        Method::Post,
        format!(
            "/open-apis/im/v1/messages/{}/reply",
            path_segment("message_id", message_id)?
        ),
        json!({
            "content": content.content_string()?,
            "msg_type": content.msg_type(),
            "reply_in_thread": reply_in_thread,
            "uuid": uuid.as_str(),
        }),
    ))
}

/// `PATCH /open-apis/im/v1/messages/:message_id` with the new card (both cards need `update_multi: true`).
pub fn patch_message_card(message_id: &str, card: &Value) -> FeishuResult<ApiRequest> {
    Ok(ApiRequest::new(
        Method::Patch,
        format!(
            "/open-apis/im/v1/messages/{}",
            path_segment("message_id", message_id)?
        ),
        json!({ "content": json_string("card", card)? }),
    ))
}

/// `PATCH /open-apis/im/v1/messages/:message_id/urgent_app?user_id_type=open_id`: an in-app buzz
/// on a message the bot sent, for members of its chat (≤ 200 ids; `approval-apis.md` §4).
pub fn urgent_app(message_id: &str, open_ids: &[String]) -> FeishuResult<ApiRequest> {
    Ok(ApiRequest::new(
        Method::Patch,
        format!(
            "/open-apis/im/v1/messages/{}/urgent_app?user_id_type=open_id",
            path_segment("message_id", message_id)?
        ),
        json!({ "user_id_list": open_ids }),
    ))
}

/// `POST /open-apis/interactive/v1/card/update` with the callback's update token; `card` is an
/// object here, not a string. The body holds a secret: never log it.
pub fn delayed_update_card(update_token: &str, card: &Value) -> ApiRequest {
    ApiRequest::new(
        Method::Post,
        "/open-apis/interactive/v1/card/update".to_owned(),
        json!({ "token": update_token, "card": card }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> Value {
        json!({"schema":"2.0","config":{"update_multi":true},"body":{"elements":[{"tag":"markdown","content":"请选择需要的操作"}]}})
    }

    #[test]
    fn send_text_matches_the_documented_body() {
        let uuid = RequestUuid::new("a0d69e20-1dd1-458b-k525-dfeca4015204").unwrap();
        let request = send_message(
            &ReceiveId::OpenId("ou_7d8a6e6df7621556ce0d21922b676706ccs".into()),
            &MessageContent::Text("test content".into()),
            &uuid,
        )
        .unwrap();
        assert_eq!(request.method, Method::Post);
        assert_eq!(
            request.path,
            "/open-apis/im/v1/messages?receive_id_type=open_id"
        );
        assert_eq!(
            request.body.unwrap(),
            json!({ "receive_id": "ou_7d8a6e6df7621556ce0d21922b676706ccs", "msg_type": "text",
                    "content": "{\"text\":\"test content\"}", "uuid": "a0d69e20-1dd1-458b-k525-dfeca4015204" })
        );
    }

    #[test]
    fn card_content_is_a_json_string() {
        let uuid = RequestUuid::derive("k");
        let request = send_message(
            &ReceiveId::ChatId("oc_5ad11d72b830411d72b836c20".into()),
            &MessageContent::Card(card()),
            &uuid,
        )
        .unwrap();
        assert_eq!(
            request.path,
            "/open-apis/im/v1/messages?receive_id_type=chat_id"
        );
        let body = request.body.unwrap();
        assert_eq!(body["msg_type"], "interactive");
        let content = body["content"].as_str().expect("content is a string");
        assert_eq!(serde_json::from_str::<Value>(content).unwrap(), card());
    }

    #[test]
    fn card_entity_and_template_contents() {
        let entity = MessageContent::CardEntity {
            card_id: "7371713483664506900".into(),
        };
        assert_eq!(entity.msg_type(), "interactive");
        let parsed: Value = serde_json::from_str(&entity.content_string().unwrap()).unwrap();
        assert_eq!(
            parsed,
            json!({"type":"card","data":{"card_id":"7371713483664506900"}})
        );

        let template = MessageContent::Template {
            template_id: "AAqi6xJ8rabcd".into(),
            template_version_name: Some("1.0.0".into()),
            template_variable: json!({"open_id":"ou_1"}),
        };
        let parsed: Value = serde_json::from_str(&template.content_string().unwrap()).unwrap();
        assert_eq!(
            parsed,
            json!({"type":"template","data":{"template_id":"AAqi6xJ8rabcd","template_version_name":"1.0.0","template_variable":{"open_id":"ou_1"}}})
        );
    }

    #[test]
    fn reply_with_a_card_entity() {
        let uuid = RequestUuid::derive("reply:om_5ce6d572455d361153b7cb51da133945:card");
        let request = reply_message(
            "om_5ce6d572455d361153b7cb51da133945",
            &MessageContent::CardEntity {
                card_id: "7355372766134157313".into(),
            },
            false,
            &uuid,
        )
        .unwrap();
        assert_eq!(request.method, Method::Post);
        assert_eq!(
            request.path,
            "/open-apis/im/v1/messages/om_5ce6d572455d361153b7cb51da133945/reply"
        );
        let body = request.body.unwrap();
        assert_eq!(body["msg_type"], "interactive");
        assert_eq!(body["reply_in_thread"], false);
        assert_eq!(body["uuid"], uuid.as_str());
        assert_eq!(
            serde_json::from_str::<Value>(body["content"].as_str().unwrap()).unwrap(),
            json!({"type":"card","data":{"card_id":"7355372766134157313"}})
        );
        assert!(
            reply_message("om_x/../y", &MessageContent::Text("t".into()), false, &uuid).is_err()
        );
    }

    #[test]
    fn patch_sends_the_card_as_a_string() {
        let request = patch_message_card("om_dc13264520392913993dd051dba21dcf", &card()).unwrap();
        assert_eq!(request.method, Method::Patch);
        assert_eq!(
            request.path,
            "/open-apis/im/v1/messages/om_dc13264520392913993dd051dba21dcf"
        );
        let body = request.body.unwrap();
        assert_eq!(body.as_object().unwrap().len(), 1);
        assert_eq!(
            serde_json::from_str::<Value>(body["content"].as_str().unwrap()).unwrap(),
            card()
        );
    }

    #[test]
    fn delayed_update_sends_the_card_as_an_object() {
        let request = delayed_update_card("c-515fbxxxx", &card());
        assert_eq!(request.path, "/open-apis/interactive/v1/card/update");
        assert_eq!(
            request.body.clone().unwrap(),
            json!({"token":"c-515fbxxxx","card":card()})
        );
        assert!(!format!("{request:?}").contains("c-515fb"));
    }
}
