//! CardKit v1 card entities and their elements, as wire requests (JSON 2.0 cards only).

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{FeishuError, FeishuResult};
use super::request::{json_string, path_segment, ApiRequest, Method};
use super::request_uuid::RequestUuid;

/// The per-write fields of every CardKit write: a `sequence` strictly above the card's last one
/// (a positive int32, from `CardStore::next_sequence`) and an idempotency `uuid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardWrite {
    /// `sequence`: a positive int32 above the card's last one.
    pub sequence: i32,
    /// `uuid`: the write's idempotency key.
    pub uuid: RequestUuid,
}

impl CardWrite {
    /// A write with `sequence` and the uuid derived from `idempotency_key`.
    pub fn new(sequence: i32, idempotency_key: &str) -> Self {
        Self {
            sequence,
            uuid: RequestUuid::derive(idempotency_key),
        }
    }

    fn checked_sequence(&self) -> FeishuResult<i32> {
        if self.sequence >= 1 {
            Ok(self.sequence)
        } else {
            Err(FeishuError::InvalidRequest(format!(
                "CardKit sequence must be a positive int32, got {}",
                self.sequence
            )))
        }
    }
}

// The edit vocabulary is the cards' (the domain plans with it); the requests here send it.
pub use crate::cards::{BatchUpdateAction, ElementPosition};

/// The `data` of create and id_convert answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CardIdData {
    /// The CardKit `card_id`.
    pub card_id: String,
}

const CARDS: &str = "/open-apis/cardkit/v1/cards";

fn write_fields(body: &mut Value, write: &CardWrite) -> FeishuResult<()> {
    body["uuid"] = json!(write.uuid.as_str());
    body["sequence"] = json!(write.checked_sequence()?);
    Ok(())
}

fn card_path(card_id: &str) -> FeishuResult<String> {
    Ok(format!("{CARDS}/{}", path_segment("card_id", card_id)?))
}

fn element_path(card_id: &str, element_id: &str) -> FeishuResult<String> {
    Ok(format!(
        "{}/elements/{}",
        card_path(card_id)?,
        path_segment("element_id", element_id)?
    ))
}

/// `POST /cards` `{"type":"card_json","data":"<card json string>"}`.
pub fn create_card(card: &Value) -> FeishuResult<ApiRequest> {
    Ok(ApiRequest::new(
        Method::Post,
        CARDS.to_owned(),
        json!({ "type": "card_json", "data": json_string("card", card)? }),
    ))
}

/// `PUT /cards/:card_id` `{"card":{"type":"card_json","data":"…"},"uuid","sequence"}`.
pub fn update_card(card_id: &str, card: &Value, write: &CardWrite) -> FeishuResult<ApiRequest> {
    let mut body = json!({ "card": { "type": "card_json", "data": json_string("card", card)? } });
    write_fields(&mut body, write)?;
    Ok(ApiRequest::new(Method::Put, card_path(card_id)?, body))
}

/// `PATCH /cards/:card_id/settings` `{"settings":"<json string>","uuid","sequence"}`.
pub fn update_card_settings(
    card_id: &str,
    settings: &Value,
    write: &CardWrite,
) -> FeishuResult<ApiRequest> {
    let mut body = json!({ "settings": json_string("settings", settings)? });
    write_fields(&mut body, write)?;
    Ok(ApiRequest::new(
        Method::Patch,
        format!("{}/settings", card_path(card_id)?),
        body,
    ))
}

/// `POST /cards/:card_id/batch_update` `{"uuid","sequence","actions":"[…]"}`.
pub fn batch_update_card(
    card_id: &str,
    actions: &[BatchUpdateAction],
    write: &CardWrite,
) -> FeishuResult<ApiRequest> {
    if actions.is_empty() {
        return Err(FeishuError::InvalidRequest(
            "batch_update needs at least one action".to_owned(),
        ));
    }
    let actions: Vec<Value> = actions.iter().map(BatchUpdateAction::to_json).collect();
    let mut body = json!({ "actions": json_string("actions", &actions)? });
    write_fields(&mut body, write)?;
    Ok(ApiRequest::new(
        Method::Post,
        format!("{}/batch_update", card_path(card_id)?),
        body,
    ))
}

/// `POST /cards/:card_id/elements` `{"type","target_element_id","uuid","sequence","elements":"[…]"}`.
pub fn add_card_elements(
    card_id: &str,
    position: &ElementPosition,
    elements: &[Value],
    write: &CardWrite,
) -> FeishuResult<ApiRequest> {
    let mut body = json!({
        "type": position.kind(),
        "elements": json_string("elements", &elements)?,
    });
    if let Some(target) = position.target_element_id() {
        body["target_element_id"] = json!(path_segment("target_element_id", target)?);
    }
    write_fields(&mut body, write)?;
    Ok(ApiRequest::new(
        Method::Post,
        format!("{}/elements", card_path(card_id)?),
        body,
    ))
}

/// `PUT /cards/:card_id/elements/:element_id` `{"element":"<json string>","uuid","sequence"}`.
pub fn update_card_element(
    card_id: &str,
    element_id: &str,
    element: &Value,
    write: &CardWrite,
) -> FeishuResult<ApiRequest> {
    let mut body = json!({ "element": json_string("element", element)? });
    write_fields(&mut body, write)?;
    Ok(ApiRequest::new(
        Method::Put,
        element_path(card_id, element_id)?,
        body,
    ))
}

/// `PATCH /cards/:card_id/elements/:element_id` `{"partial_element":"<json string>","uuid","sequence"}`.
pub fn patch_card_element(
    card_id: &str,
    element_id: &str,
    partial_element: &Value,
    write: &CardWrite,
) -> FeishuResult<ApiRequest> {
    let mut body = json!({ "partial_element": json_string("partial_element", partial_element)? });
    write_fields(&mut body, write)?;
    Ok(ApiRequest::new(
        Method::Patch,
        element_path(card_id, element_id)?,
        body,
    ))
}

/// `PUT /cards/:card_id/elements/:element_id/content` `{"content":"full text","uuid","sequence"}`.
pub fn stream_card_element_text(
    card_id: &str,
    element_id: &str,
    content: &str,
    write: &CardWrite,
) -> FeishuResult<ApiRequest> {
    let mut body = json!({ "content": content });
    write_fields(&mut body, write)?;
    Ok(ApiRequest::new(
        Method::Put,
        format!("{}/content", element_path(card_id, element_id)?),
        body,
    ))
}

/// `DELETE /cards/:card_id/elements/:element_id` `{"uuid","sequence"}`.
pub fn delete_card_element(
    card_id: &str,
    element_id: &str,
    write: &CardWrite,
) -> FeishuResult<ApiRequest> {
    let mut body = json!({});
    write_fields(&mut body, write)?;
    Ok(ApiRequest::new(
        Method::Delete,
        element_path(card_id, element_id)?,
        body,
    ))
}

/// `POST /cards/id_convert` `{"message_id"}` (deprecated by Feishu, kept for old messages).
pub fn convert_message_id(message_id: &str) -> FeishuResult<ApiRequest> {
    Ok(ApiRequest::new(
        Method::Post,
        format!("{CARDS}/id_convert"),
        json!({ "message_id": path_segment("message_id", message_id)? }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write() -> CardWrite {
        CardWrite {
            sequence: 7,
            uuid: RequestUuid::new("u-7").unwrap(),
        }
    }

    fn inner(body: &Value, field: &str) -> Value {
        serde_json::from_str(
            body[field]
                .as_str()
                .unwrap_or_else(|| panic!("{field} is a string")),
        )
        .unwrap()
    }

    #[test]
    fn create_sends_card_json_as_a_string() {
        let card = json!({"schema":"2.0","config":{"update_multi":true},"body":{"elements":[]}});
        let request = create_card(&card).unwrap();
        assert_eq!(
            (request.method, request.path.as_str()),
            (Method::Post, "/open-apis/cardkit/v1/cards")
        );
        let body = request.body.unwrap();
        assert_eq!(body["type"], "card_json");
        assert_eq!(inner(&body, "data"), card);
    }

    #[test]
    fn full_update_nests_the_card_and_carries_the_write() {
        let card = json!({"schema":"2.0","body":{"elements":[]}});
        let request = update_card("7355372766134157313", &card, &write()).unwrap();
        assert_eq!(request.method, Method::Put);
        assert_eq!(
            request.path,
            "/open-apis/cardkit/v1/cards/7355372766134157313"
        );
        let body = request.body.unwrap();
        assert_eq!(body["card"]["type"], "card_json");
        assert_eq!(inner(&body["card"], "data"), card);
        assert_eq!(body["uuid"], "u-7");
        assert_eq!(body["sequence"], 7);
    }

    #[test]
    fn settings_is_a_string() {
        let settings = json!({"config":{"streaming_mode":false}});
        let request = update_card_settings("1", &settings, &write()).unwrap();
        assert_eq!(request.method, Method::Patch);
        assert_eq!(request.path, "/open-apis/cardkit/v1/cards/1/settings");
        let body = request.body.unwrap();
        assert_eq!(inner(&body, "settings"), settings);
        assert_eq!(body["sequence"], 7);
    }

    #[test]
    fn batch_update_actions_match_the_documented_list() {
        let actions = vec![
            BatchUpdateAction::PartialUpdateSetting {
                settings: json!({"config":{"streaming_mode":true}}),
            },
            BatchUpdateAction::AddElements {
                position: ElementPosition::InsertBefore("markdown_1".into()),
                elements: vec![json!({"tag":"markdown","element_id":"md_1","content":"…"})],
            },
            BatchUpdateAction::DeleteElements {
                element_ids: vec!["text_1".into(), "text_2".into()],
            },
            BatchUpdateAction::PartialUpdateElement {
                element_id: "markdown_2".into(),
                partial_element: json!({"content":"…"}),
            },
            BatchUpdateAction::UpdateElement {
                element_id: "markdown_3".into(),
                element: json!({"tag":"button","text":{"tag":"plain_text","content":"有帮助"}}),
            },
        ];
        let request = batch_update_card("1", &actions, &write()).unwrap();
        assert_eq!(request.path, "/open-apis/cardkit/v1/cards/1/batch_update");
        let body = request.body.unwrap();
        assert_eq!(body["uuid"], "u-7");
        assert_eq!(
            inner(&body, "actions"),
            json!([
             {"action":"partial_update_setting","params":{"settings":{"config":{"streaming_mode":true}}}},
             {"action":"add_elements","params":{"type":"insert_before","target_element_id":"markdown_1","elements":[{"tag":"markdown","element_id":"md_1","content":"…"}]}},
             {"action":"delete_elements","params":{"element_ids":["text_1","text_2"]}},
             {"action":"partial_update_element","params":{"element_id":"markdown_2","partial_element":{"content":"…"}}},
             {"action":"update_element","params":{"element_id":"markdown_3","element":{"tag":"button","text":{"tag":"plain_text","content":"有帮助"}}}}
            ])
        );
        assert!(batch_update_card("1", &[], &write()).is_err());
    }

    #[test]
    fn add_elements_positions() {
        let elements = vec![json!({"tag":"markdown","element_id":"md_2","content":"x"})];
        for (position, kind, target) in [
            (
                ElementPosition::InsertBefore("markdown_1".into()),
                "insert_before",
                Some("markdown_1"),
            ),
            (
                ElementPosition::InsertAfter("markdown_1".into()),
                "insert_after",
                Some("markdown_1"),
            ),
            (
                ElementPosition::Append(Some("column_1".into())),
                "append",
                Some("column_1"),
            ),
            (ElementPosition::Append(None), "append", None),
        ] {
            let request = add_card_elements("1", &position, &elements, &write()).unwrap();
            assert_eq!(request.path, "/open-apis/cardkit/v1/cards/1/elements");
            let body = request.body.unwrap();
            assert_eq!(body["type"], kind);
            assert_eq!(body["target_element_id"].as_str(), target);
            assert_eq!(inner(&body, "elements"), json!(elements));
            assert_eq!(body["sequence"], 7);
        }
    }

    #[test]
    fn element_writes() {
        let element = json!({"tag":"markdown","element_id":"status","content":"已通过"});
        let r = update_card_element("1", "status", &element, &write()).unwrap();
        assert_eq!(
            (r.method, r.path.as_str()),
            (Method::Put, "/open-apis/cardkit/v1/cards/1/elements/status")
        );
        assert_eq!(inner(r.body.as_ref().unwrap(), "element"), element);

        let r = patch_card_element("1", "status", &json!({"content":"x"}), &write()).unwrap();
        assert_eq!(
            (r.method, r.path.as_str()),
            (
                Method::Patch,
                "/open-apis/cardkit/v1/cards/1/elements/status"
            )
        );
        assert_eq!(
            inner(r.body.as_ref().unwrap(), "partial_element"),
            json!({"content":"x"})
        );

        let r = stream_card_element_text("1", "status", "全文", &write()).unwrap();
        assert_eq!(
            (r.method, r.path.as_str()),
            (
                Method::Put,
                "/open-apis/cardkit/v1/cards/1/elements/status/content"
            )
        );
        assert_eq!(
            r.body.unwrap(),
            json!({"content":"全文","uuid":"u-7","sequence":7})
        );

        let r = delete_card_element("1", "status", &write()).unwrap();
        assert_eq!(
            (r.method, r.path.as_str()),
            (
                Method::Delete,
                "/open-apis/cardkit/v1/cards/1/elements/status"
            )
        );
        assert_eq!(r.body.unwrap(), json!({"uuid":"u-7","sequence":7}));

        let r = convert_message_id("om_dc13264520392913993dd051dba21dcf").unwrap();
        assert_eq!(
            (r.method, r.path.as_str()),
            (Method::Post, "/open-apis/cardkit/v1/cards/id_convert")
        );
        assert_eq!(
            r.body.unwrap(),
            json!({"message_id":"om_dc13264520392913993dd051dba21dcf"})
        );
    }

    #[test]
    fn sequence_must_be_a_positive_int32() {
        for sequence in [0, -1, i32::MIN] {
            let bad = CardWrite {
                sequence,
                uuid: RequestUuid::derive("k"),
            };
            assert!(matches!(
                delete_card_element("1", "x", &bad),
                Err(FeishuError::InvalidRequest(_))
            ));
        }
        let max = CardWrite {
            sequence: i32::MAX,
            uuid: RequestUuid::derive("k"),
        };
        assert_eq!(
            delete_card_element("1", "x", &max).unwrap().body.unwrap()["sequence"],
            i32::MAX
        );
    }

    #[test]
    fn card_write_derives_the_uuid_from_the_key() {
        assert_eq!(CardWrite::new(3, "job#1"), CardWrite::new(3, "job#1"));
        assert_ne!(
            CardWrite::new(3, "job#1").uuid,
            CardWrite::new(3, "job#2").uuid
        );
    }
}
