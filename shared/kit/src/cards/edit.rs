//! CardKit's element-level writes on a card entity, as data: what the domain plans and the
//! jobs send (`../shared/feishu/cards-and-cardkit.md`, CardKit).

use serde_json::{json, Value};

use super::{Card, Element};

/// One CardKit write on a card entity. Each needs a fresh, strictly increasing `sequence`.
#[derive(Debug, Clone, PartialEq)]
pub enum CardKitOp {
    /// `PATCH /cards/:id/settings`: `config` (streaming, summary) and `card_link` only.
    Settings {
        /// The `settings` object: `config` and/or `card_link`, e.g.
        /// `{"config":{"streaming_mode":false}}`.
        settings: Value,
    },
    /// `PUT /cards/:id/elements/:eid/content`: types out text (streaming mode only).
    StreamText {
        /// The text component to type into.
        element_id: String,
        /// The full text it ends up showing (not a delta).
        content: String,
    },
    /// `PATCH /cards/:id/elements/:eid`: merges properties.
    PatchElement {
        /// The component to patch.
        element_id: String,
        /// The properties to merge into it.
        partial_element: Value,
    },
    /// `PUT /cards/:id/elements/:eid`: replaces one component.
    UpdateElement {
        /// The component to replace.
        element_id: String,
        /// Its replacement.
        element: Element,
    },
    /// `DELETE /cards/:id/elements/:eid`.
    DeleteElement {
        /// The component to delete.
        element_id: String,
    },
    /// `POST /cards/:id/elements`.
    AddElements {
        /// Where the new components go.
        position: ElementPosition,
        /// The new components, in order.
        elements: Vec<Element>,
    },
    /// `POST /cards/:id/batch_update`.
    BatchUpdate {
        /// The actions, in order; at least one.
        actions: Vec<BatchUpdateAction>,
    },
    /// `PUT /cards/:id`: full replace.
    UpdateCard {
        /// The whole new card.
        card: Card,
    },
}

/// A component as the JSON CardKit takes.
pub fn element_value(element: &Element) -> Value {
    serde_json::to_value(element).unwrap_or(Value::Null)
}

impl CardKitOp {
    /// A short name for logs and the simulator's call log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Settings { .. } => "settings",
            Self::StreamText { .. } => "content",
            Self::PatchElement { .. } => "patch_element",
            Self::UpdateElement { .. } => "update_element",
            Self::DeleteElement { .. } => "delete_element",
            Self::AddElements { .. } => "add_elements",
            Self::BatchUpdate { .. } => "batch_update",
            Self::UpdateCard { .. } => "update_card",
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
    PartialUpdateSetting {
        /// The `settings` object to merge.
        settings: Value,
    },
    /// Adds elements at a position.
    AddElements {
        /// Where the new elements go.
        position: ElementPosition,
        /// The new elements as JSON ([`element_value`]), in order.
        elements: Vec<Value>,
    },
    /// Deletes elements (a container with its children).
    DeleteElements {
        /// The `element_id`s to delete.
        element_ids: Vec<String>,
    },
    /// Merges properties into one element.
    PartialUpdateElement {
        /// The element to patch.
        element_id: String,
        /// The properties to merge into it.
        partial_element: Value,
    },
    /// Replaces one element.
    UpdateElement {
        /// The element to replace.
        element_id: String,
        /// Its replacement as JSON ([`element_value`]).
        element: Value,
    },
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
