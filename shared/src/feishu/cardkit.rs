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
    pub sequence: i32,
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

/// Where `add_elements` puts new elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElementPosition {
    /// Before the element with this `element_id`.
    InsertBefore(String),
    /// After the element with this `element_id`.
    InsertAfter(String),
    /// At the end of this container, or of the card body when `None`.
    Append(Option<String>),
}

impl ElementPosition {
    /// The `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InsertBefore(_) => "insert_before",
            Self::InsertAfter(_) => "insert_after",
            Self::Append(_) => "append",
        }
    }

    /// The `target_element_id` field, if any.
    pub fn target_element_id(&self) -> Option<&str> {
        match self {
            Self::InsertBefore(id) | Self::InsertAfter(id) => Some(id),
            Self::Append(container) => container.as_deref(),
        }
    }
}

/// One action of `batch_update`. Inside the `actions` string, `params` are objects.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchUpdateAction {
    /// Merges `config` / `card_link` settings, e.g. `{"config":{"streaming_mode":false}}`.
    PartialUpdateSetting { settings: Value },
    /// Adds elements at a position.
    AddElements {
        position: ElementPosition,
        elements: Vec<Value>,
    },
    /// Deletes elements (a container with its children).
    DeleteElements { element_ids: Vec<String> },
    /// Merges properties into one element.
    PartialUpdateElement {
        element_id: String,
        partial_element: Value,
    },
    /// Replaces one element.
    UpdateElement { element_id: String, element: Value },
}

impl BatchUpdateAction {
    /// The action as Feishu's JSON object `{"action": …, "params": {…}}`.
    pub fn to_json(&self) -> Value {
        match self {
            Self::PartialUpdateSetting { settings } => json!({
                "action": "partial_update_setting",
                "params": { "settings": settings },
            }),
            Self::AddElements { position, elements } => {
                let mut params = json!({ "type": position.kind(), "elements": elements });
                if let Some(target) = position.target_element_id() {
                    params["target_element_id"] = json!(target);
                }
                json!({ "action": "add_elements", "params": params })
            }
            Self::DeleteElements { element_ids } => json!({
                "action": "delete_elements",
                "params": { "element_ids": element_ids },
            }),
            Self::PartialUpdateElement {
                element_id,
                partial_element,
            } => json!({
                "action": "partial_update_element",
                "params": { "element_id": element_id, "partial_element": partial_element },
            }),
            Self::UpdateElement {
                element_id,
                element,
            } => json!({
                "action": "update_element",
                "params": { "element_id": element_id, "element": element },
            }),
        }
    }
}

/// The `data` of create and id_convert answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CardIdData {
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
