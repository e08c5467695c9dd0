//! CardKit's element-level writes on a card entity, as data: what the domain plans and the
//! jobs send (`../shared/feishu/cards-and-cardkit.md`, CardKit).

use serde_json::Value;

use super::{Card, Element};
use crate::feishu::{BatchUpdateAction, ElementPosition};

/// One CardKit write on a card entity. Each needs a fresh, strictly increasing `sequence`.
#[derive(Debug, Clone, PartialEq)]
pub enum CardKitOp {
    /// `PATCH /cards/:id/settings`: `config` (streaming, summary) and `card_link` only.
    Settings { settings: Value },
    /// `PUT /cards/:id/elements/:eid/content`: types out text (streaming mode only).
    StreamText { element_id: String, content: String },
    /// `PATCH /cards/:id/elements/:eid`: merges properties.
    PatchElement {
        element_id: String,
        partial_element: Value,
    },
    /// `PUT /cards/:id/elements/:eid`: replaces one component.
    UpdateElement {
        element_id: String,
        element: Element,
    },
    /// `DELETE /cards/:id/elements/:eid`.
    DeleteElement { element_id: String },
    /// `POST /cards/:id/elements`.
    AddElements {
        position: ElementPosition,
        elements: Vec<Element>,
    },
    /// `POST /cards/:id/batch_update`.
    BatchUpdate { actions: Vec<BatchUpdateAction> },
    /// `PUT /cards/:id`: full replace.
    UpdateCard { card: Card },
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
