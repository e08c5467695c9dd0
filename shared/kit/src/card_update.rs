//! The card-update delivery rules every card bot needs: which Feishu API shows a changed card,
//! and what a failed call means.
//!
//! A change ([`CardChange`]: the whole card, and optionally the CardKit edits that lead to it) goes
//! out by CardKit on the card entity (each element call with its own store-allocated `sequence`,
//! at most 10 per second per card) or, for a card sent as a message, by the callback's update token
//! while it is valid (30 minutes, 2 uses), else `PATCH im/v1/messages/:id` (14 days); past 14 days
//! Feishu refuses every update (`../shared/feishu/cards-and-cardkit.md` §3, §7).

use serde_json::Value;

use crate::api::{CardWrite, Deadline, FeishuApi, FeishuError, FeishuResult};
use crate::cards::{element_value, Card, CardDelivery, CardKitOp};
use crate::store::{CardState, EpochMillis, StoredUpdateToken};

pub use crate::api::limits::{
    CARDKIT_MIN_INTERVAL_MS, UPDATE_TOKEN_MAX_USES, UPDATE_TOKEN_TTL_MS, UPDATE_WINDOW_MS,
};

/// A token this close to expiry is not started on: the call could land after it.
pub const UPDATE_TOKEN_MARGIN_MS: i64 = 30_000;

/// What the user should see after a change.
#[derive(Debug, Clone, PartialEq)]
pub struct CardChange {
    /// The whole card as it must end up.
    pub card: Card,
    /// CardKit edits from the card as first shown to `card`, in order; `None`: replace the whole
    /// card. Whether the edits or one full update go out is the delivery's choice.
    pub edits: Option<Vec<CardKitOp>>,
}

/// Why a change cannot be shown at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlanDeliveryError {
    /// The card is past Feishu's 14-day update window (230031, 200750).
    #[error("card is past Feishu's 14-day update window")]
    TooOld,
    /// A message-mode card whose state has no `message_id`.
    #[error("card state has no message_id to update")]
    NoMessage,
}

/// Whether the card of `state` is past Feishu's 14-day update window at `now`.
pub fn is_too_old(state: &CardState, now: EpochMillis) -> bool {
    now - state.created_at >= UPDATE_WINDOW_MS
}

/// Chooses how `change` reaches the card of `state` at `now`: CardKit on its entity (the edits
/// when `walk`, else one full update), else the update token while it lasts, else PATCH. When the
/// update token is chosen its use is counted in `state` before the call (a crash after the call
/// must not allow a third use); the returned flag says so, and the caller writes `state` first.
pub fn plan_delivery(
    state: &mut CardState,
    change: CardChange,
    now: EpochMillis,
    walk: bool,
) -> Result<(Delivery, bool), PlanDeliveryError> {
    let CardChange { card, edits } = change;
    if is_too_old(state, now) {
        return Err(PlanDeliveryError::TooOld);
    }
    let entity = state.delivery == CardDelivery::Entity;
    let mut token_used = false;
    let delivery = match (entity, state.card_id.clone()) {
        (true, Some(card_id)) => Delivery::CardKit {
            card_id,
            ops: edits
                .filter(|_| walk)
                .unwrap_or_else(|| vec![CardKitOp::UpdateCard { card }]),
        },
        // Without an entity id (or in message mode) the message itself is updated.
        _ => match choose_message_path(state, now) {
            MessagePath::DelayedUpdate => {
                if let Some(token) = state.update_token.as_mut() {
                    token.uses += 1;
                    token_used = true;
                }
                Delivery::Message(MessageOp::DelayedUpdate {
                    card: Box::new(card),
                })
            }
            MessagePath::PatchMessage => {
                let message_id = state
                    .message_id
                    .clone()
                    .ok_or(PlanDeliveryError::NoMessage)?;
                Delivery::Message(MessageOp::PatchMessage {
                    message_id,
                    card: Box::new(card),
                })
            }
            MessagePath::TooOld => return Err(PlanDeliveryError::TooOld),
        },
    };
    Ok((delivery, token_used))
}

impl CardKitOp {
    /// Makes the call with its `sequence` and `uuid`.
    pub async fn send<F: FeishuApi + ?Sized>(
        &self,
        api: &F,
        card_id: &str,
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()> {
        match self {
            Self::Settings { settings } => {
                api.update_card_settings(card_id, settings, write, deadline)
                    .await
            }
            Self::StreamText {
                element_id,
                content,
            } => {
                api.stream_card_element_text(card_id, element_id, content, write, deadline)
                    .await
            }
            Self::PatchElement {
                element_id,
                partial_element,
            } => {
                api.patch_card_element(card_id, element_id, partial_element, write, deadline)
                    .await
            }
            Self::UpdateElement {
                element_id,
                element,
            } => {
                api.update_card_element(
                    card_id,
                    element_id,
                    &element_value(element),
                    write,
                    deadline,
                )
                .await
            }
            Self::DeleteElement { element_id } => {
                api.delete_card_element(card_id, element_id, write, deadline)
                    .await
            }
            Self::AddElements { position, elements } => {
                let elements: Vec<Value> = elements.iter().map(element_value).collect();
                api.add_card_elements(card_id, position, &elements, write, deadline)
                    .await
            }
            Self::BatchUpdate { actions } => {
                api.batch_update_card(card_id, actions, write, deadline)
                    .await
            }
            Self::UpdateCard { card } => {
                api.update_card(card_id, &card.to_value(), write, deadline)
                    .await
            }
        }
    }
}

/// The idempotency key of one CardKit call: stable across a retried request, distinct across calls
/// (each call of a job run has its own reserved `sequence`, so a job run again, re-armed after it
/// was done, never repeats an earlier run's key with another body: Feishu would refuse it, 200770).
pub fn op_idempotency_key(
    card_key: &str,
    job_id: &str,
    attempt: u32,
    index: usize,
    sequence: i32,
) -> String {
    format!("cardkit:{card_key}:{job_id}:{attempt}:{index}:{sequence}")
}

/// A message-mode update.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageOp {
    /// `POST /interactive/v1/card/update` with the stored token (the executor adds it).
    DelayedUpdate {
        /// The new card.
        card: Box<Card>,
    },
    /// `PATCH /im/v1/messages/:message_id` with `{"content": "<card json>"}`.
    PatchMessage {
        /// The message to PATCH (`om_…`).
        message_id: String,
        /// The new card.
        card: Box<Card>,
    },
}

/// How a job reaches the card.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// CardKit calls on the entity, in order, at most 10/s, each with `next_sequence`.
    CardKit {
        /// The card entity's `card_id`.
        card_id: String,
        /// The CardKit calls, in order.
        ops: Vec<CardKitOp>,
    },
    /// Through the message: the delayed update or message PATCH.
    Message(MessageOp),
}

impl Delivery {
    /// The card the user sees once every call has gone through.
    pub fn final_card(&self) -> Option<&Card> {
        match self {
            Self::Message(
                MessageOp::DelayedUpdate { card } | MessageOp::PatchMessage { card, .. },
            ) => Some(&**card),
            Self::CardKit { ops, .. } => ops.iter().rev().find_map(|op| match op {
                CardKitOp::UpdateCard { card } => Some(card),
                _ => None,
            }),
        }
    }
}

/// Which message-mode API can still update a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagePath {
    /// The click's token: valid, not used up.
    DelayedUpdate,
    /// The token is gone; the message is younger than 14 days.
    PatchMessage,
    /// Past 14 days: Feishu refuses every update.
    TooOld,
}

/// The update token of a click as the state keeps it: unused, valid `UPDATE_TOKEN_TTL_MS` from the
/// click (Feishu: 30 minutes, 2 uses).
pub fn issue_update_token(token: &str, clicked_at: EpochMillis) -> StoredUpdateToken {
    StoredUpdateToken {
        token: token.to_owned(),
        uses: 0,
        expires_at: clicked_at + UPDATE_TOKEN_TTL_MS,
    }
}

/// Picks the message-mode path: the update token while valid (< 2 uses, ≤ 30 min), else PATCH.
pub fn choose_message_path(state: &CardState, now: EpochMillis) -> MessagePath {
    if now - state.created_at >= UPDATE_WINDOW_MS {
        return MessagePath::TooOld;
    }
    match &state.update_token {
        Some(token)
            if token.uses < UPDATE_TOKEN_MAX_USES
                && now + UPDATE_TOKEN_MARGIN_MS < token.expires_at =>
        {
            MessagePath::DelayedUpdate
        }
        _ => MessagePath::PatchMessage,
    }
}

/// The state after Feishu refused the update token (300030 expired, 300040 used up): spent.
pub fn spend_update_token(state: &CardState) -> CardState {
    let mut next = state.clone();
    if let Some(token) = next.update_token.as_mut() {
        token.uses = UPDATE_TOKEN_MAX_USES;
    }
    next
}

/// What to do after a Feishu call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    /// Transient (5xx, network, rate limit, card busy, sequence race): `fail_job` with this
    /// `retry_at` (Feishu's rate-limit reset) or the store's backoff when `None`.
    Retry {
        /// When to retry (epoch ms); `None`: the store's backoff.
        retry_at: Option<EpochMillis>,
    },
    /// The update token is spent (300030/300040): mark it and re-plan at once (PATCH).
    SpendTokenAndReplan,
    /// Feishu will never accept it (too old, gone, not ours, bad card): record it, stop trying.
    Permanent,
}

/// CardKit's element-edit failures: the element an edit names is not on the card as it is.
pub const ELEMENT_EDIT_FAILED: [i64; 4] = [300313, 300314, 300315, 300121];

/// Classifies a failed call.
pub fn on_failure(error: &FeishuError, now: EpochMillis) -> FailureAction {
    match error {
        FeishuError::UpdateTokenExpired { .. } | FeishuError::UpdateTokenUsedUp { .. } => {
            FailureAction::SpendTokenAndReplan
        }
        // The next attempt allocates a fresh sequence, so this one is worth retrying.
        FeishuError::SequenceNotIncreasing { .. } => FailureAction::Retry { retry_at: None },
        // An element edit failed (300313 update props, 300314 delete, 300315 add, 300121 replace
        // failed; cards-and-cardkit.md §6): the card does not show what the edits started from,
        // e.g. a click's answer that never reached Feishu left the card as first sent. The
        // retry replaces the whole card, whatever it shows.
        FeishuError::Api { code, .. } if ELEMENT_EDIT_FAILED.contains(code) => {
            FailureAction::Retry { retry_at: None }
        }
        // Never further than the backoff's cap, whatever a header said: no job parked for years.
        e if e.is_retryable() => FailureAction::Retry {
            retry_at: e.retry_after().map(|wait| {
                let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                now.saturating_add(wait.min(crate::store::JOB_RETRY_CAP_MS))
            }),
        },
        _ => FailureAction::Permanent,
    }
}

/// Refusals of a send that concern one recipient, not the deployment
/// (`../shared/feishu/approval-apis.md` §5): 230013 outside the app's availability scope (or
/// disabled, or resigned), 230029 resigned, 230053 the user turned the bot's messages off, 230035
/// no permission (blocked, tenant communication controls), 230038 a p2p chat across tenants. Any
/// other permanent refusal of a send to a person (99992361 an open_id of another app, 99991672 a
/// missing scope, 230006 bot ability off, …) means every send of this deployment fails the same
/// way: the job must go dead, not skip the person.
pub fn is_per_recipient_refusal(code: i64) -> bool {
    PER_RECIPIENT_REFUSALS.contains(&code)
}

const PER_RECIPIENT_REFUSALS: [i64; 5] = [230_013, 230_029, 230_053, 230_035, 230_038];

/// The updater claims jobs only while enough of its own timeout is left to finish one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimBudget {
    /// The invocation's deadline (epoch ms).
    pub deadline: EpochMillis,
    /// Time one job may take (its Feishu calls and store writes).
    pub per_job_ms: i64,
}

impl ClaimBudget {
    /// Whether a job claimed at `now` (epoch ms) can finish before the deadline.
    pub fn may_claim(&self, now: EpochMillis) -> bool {
        now + self.per_job_ms < self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_element_edit_is_retried_as_a_whole_card_and_others_stay_permanent() {
        for code in ELEMENT_EDIT_FAILED {
            let error = FeishuError::from_code(code, "update props failed", None, None);
            assert_eq!(
                on_failure(&error, 0),
                FailureAction::Retry { retry_at: None },
                "{code}"
            );
        }
        let other = FeishuError::from_code(300311, "not the creating app", None, None);
        assert_eq!(on_failure(&other, 0), FailureAction::Permanent);
    }
}
