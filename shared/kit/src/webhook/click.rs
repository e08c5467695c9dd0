//! One card click, whichever callback style carried it (`card.action.trigger` or the legacy card
//! request): the ids the bot acts on, its one dedup key, the update token and the button's value,
//! which the bot parses into its own action type ([`CardClick::action`]).

use sha2::{Digest, Sha256};

use super::wire::{CardActionTrigger, LegacyCardAction, UpdateToken};

/// Which callback style carried a click; the answer must have that style's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackStyle {
    /// `card.action.trigger` (schema 2.0): answered with `{toast, card}`.
    Trigger,
    /// The legacy card request: answered with the card itself (or a toast).
    Legacy,
}

/// A verified card click. Built only from a verified [`super::Inbound`].
#[derive(Debug, Clone)]
pub struct CardClick {
    /// Which callback style carried it, and so the shape of the answer.
    pub style: CallbackStyle,
    /// What identifies a re-delivery of this click, from signed material only: `header.event_id`
    /// (new style), the hashed update token (legacy).
    pub dedup_key: String,
    /// `operator.open_id` (new) or `open_id` (legacy), else the `user_id`.
    pub operator_open_id: Option<String>,
    /// The card's message (`context.open_message_id` / `open_message_id`).
    pub open_message_id: Option<String>,
    /// The card's chat (`context.open_chat_id` / `open_chat_id`).
    pub open_chat_id: Option<String>,
    /// The card-update token (`c-…`; 30 min, 2 uses); `None` when Feishu sent an empty one.
    pub update_token: Option<UpdateToken>,
    /// `action.value`: the clicked component's `value` as the card declared it (any JSON; `null`
    /// when absent). Parse it with [`CardClick::action`].
    pub value: serde_json::Value,
    /// `action.form_value` of a form submit: the form's values keyed by component `name`.
    pub form_value: Option<serde_json::Map<String, serde_json::Value>>,
    /// The app's tenant the card belongs to: `header.tenant_key` (new style) or the top-level
    /// `tenant_key` (legacy), never the clicker's own (`operator.tenant_key`).
    pub tenant_key: Option<String>,
}

/// The dedup key of a `card.action.trigger` click: its signed `header.event_id`.
pub(super) fn trigger_dedup_key(trigger: &CardActionTrigger) -> &str {
    &trigger.header.event_id
}

/// The dedup key of a legacy click: its update token, hashed since it is a secret. The token is
/// new for every click, the same on every re-delivery of one, and covered by the SHA-1 signature;
/// the `X-Refresh-Token` header is not signed, so a replay could change it to pass as new.
pub(super) fn legacy_dedup_key(token: &UpdateToken) -> String {
    format!(
        "legacy-token-{}",
        hex::encode(Sha256::digest(token.expose().as_bytes()))
    )
}

fn non_empty(token: &UpdateToken) -> Option<UpdateToken> {
    (!token.expose().is_empty()).then(|| token.clone())
}

impl CardClick {
    /// The click's `value` parsed into the bot's own action type `A`; `A::Error` says why a value
    /// is not one of its actions (a forged or stale card). A click is data from a user's client:
    /// parse it, never trust it.
    pub fn action<A, E>(&self) -> Result<A, E>
    where
        A: for<'v> TryFrom<&'v serde_json::Value, Error = E>,
    {
        A::try_from(&self.value)
    }

    /// A `card.action.trigger` click; its dedup key is `header.event_id`.
    pub fn from_trigger(trigger: &CardActionTrigger) -> Self {
        let event = &trigger.event;
        Self {
            style: CallbackStyle::Trigger,
            dedup_key: trigger_dedup_key(trigger).to_owned(),
            operator_open_id: event
                .operator
                .open_id
                .clone()
                .or_else(|| event.operator.user_id.clone()),
            open_message_id: event.context.open_message_id.clone(),
            open_chat_id: event.context.open_chat_id.clone(),
            update_token: non_empty(&event.token),
            value: event.action.value.clone(),
            form_value: event.action.form_value.clone(),
            tenant_key: trigger.header.tenant_key.clone(),
        }
    }

    /// A legacy card click; its dedup key is the hashed update token (`legacy_dedup_key`).
    pub fn from_legacy(legacy: &LegacyCardAction) -> Self {
        Self {
            style: CallbackStyle::Legacy,
            dedup_key: legacy_dedup_key(&legacy.token),
            operator_open_id: legacy.open_id.clone().or_else(|| legacy.user_id.clone()),
            open_message_id: Some(legacy.open_message_id.clone()),
            open_chat_id: legacy.open_chat_id.clone(),
            update_token: non_empty(&legacy.token),
            value: legacy.action.value.clone(),
            form_value: legacy.action.form_value.clone(),
            tenant_key: legacy.tenant_key.clone(),
        }
    }
}
