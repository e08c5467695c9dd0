//! The bot's effects: sending command replies and running card-update jobs, generic over the store
//! traits and [`FeishuApi`]. Every decision comes from [`crate::approval`] and [`crate::jobs`];
//! this module only performs it, in order, and records what happened. [`Effects`] carries what
//! every effect needs: the store, Feishu, the approval TTL, the time and the deadline.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::approval::{self, Command, CommandReply, SentCard};
use crate::config::CardDelivery;
use crate::feishu::{CardWrite, Deadline, FeishuApi, FeishuError, MessageContent};
use crate::jobs::{self, Delivery, FailureAction, JobKind, MessageOp};
use crate::store::{CardStore, DedupStore, EpochMillis, FailOutcome, Job, JobStore, StoreError};
use jiff::tz::TimeZone;

/// What every effect needs, borrowed for one reply or one job.
pub struct Effects<'a, S: ?Sized, F: ?Sized> {
    pub store: &'a S,
    pub feishu: &'a F,
    /// `APPROVAL_TTL` in ms: a new card's expiry job is due this long after the send.
    pub approval_ttl_ms: i64,
    /// The time the effect is decided at (epoch ms).
    pub now: EpochMillis,
    /// Bounds every Feishu call and retry of this effect.
    pub deadline: Deadline,
    /// The zone cards show times in (`TENANT_TIME_ZONE`).
    pub time_zone: &'a TimeZone,
}

impl<S: ?Sized, F: ?Sized> Clone for Effects<'_, S, F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: ?Sized, F: ?Sized> Copy for Effects<'_, S, F> {}

/// Why a reply or a job could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliverError {
    #[error("feishu: {0}")]
    Feishu(#[from] FeishuError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("bad job: {0}")]
    BadJob(String),
}

/// Everything needed to answer one user command, also the `send_reply` job's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyRequest {
    /// The user's message; replies go to it.
    pub source_message_id: String,
    pub chat_id: String,
    pub requester_open_id: String,
    /// `approval` or `help` (an unknown text is answered with the help).
    pub command: Command,
    /// `entity` or `message`.
    pub delivery: CardDelivery,
    /// A CardKit entity already created by an earlier attempt (an entity can be sent only once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
}

impl ReplyRequest {
    pub fn new(
        source_message_id: &str,
        chat_id: &str,
        requester_open_id: &str,
        command: Command,
        delivery: CardDelivery,
    ) -> Self {
        let command = match command {
            Command::Approval => Command::Approval,
            Command::Help | Command::Unknown => Command::Help,
        };
        Self {
            source_message_id: source_message_id.to_owned(),
            chat_id: chat_id.to_owned(),
            requester_open_id: requester_open_id.to_owned(),
            command,
            delivery,
            card_id: None,
        }
    }

    fn key(&self, part: &str) -> String {
        format!("reply:{}:{part}", self.source_message_id)
    }
}

/// What a reply produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentReply {
    /// The approval card's key (the bot card's message_id), when a card was sent.
    pub card_key: Option<String>,
}

/// A reply that failed part-way; `progress` is the request to retry with (it keeps a created
/// CardKit entity so the retry does not create a second one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyFailure {
    pub error: DeliverError,
    pub progress: ReplyRequest,
}

/// How one claimed job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Delivered (or nothing left to deliver); the job is done.
    Done { reason: &'static str },
    /// Failed; rescheduled by the store, or dead after the bounded attempts or at once when
    /// `permanent`.
    Failed {
        error: String,
        outcome: FailOutcome,
        permanent: bool,
    },
}

impl<S, F> Effects<'_, S, F>
where
    S: CardStore + JobStore + DedupStore + ?Sized,
    F: FeishuApi + ?Sized,
{
    /// Sends the reply to a command: the help text, or the text and the approval card; then writes
    /// the card's state and its expiry job. Every send carries a uuid derived from the user's message,
    /// so a retried reply (by Feishu's retry or the outbox job) is one message.
    pub async fn send_command_reply(
        &self,
        request: &ReplyRequest,
    ) -> Result<SentReply, ReplyFailure> {
        let Self {
            store,
            feishu,
            approval_ttl_ms,
            now,
            deadline,
            ..
        } = *self;
        let mut progress = request.clone();
        let fail = |error: DeliverError, progress: &ReplyRequest| ReplyFailure {
            error,
            progress: progress.clone(),
        };
        let source = request.source_message_id.as_str();
        let chat = request.chat_id.as_str();
        let reply = match request.command.reply() {
            CommandReply::Text(text) => {
                let content = MessageContent::Text(text.to_owned());
                feishu
                    .reply_message_in_chat(
                        chat,
                        source,
                        &content,
                        false,
                        &request.key("help"),
                        deadline,
                    )
                    .await
                    .map_err(|e| fail(e.into(), &progress))?;
                return Ok(SentReply { card_key: None });
            }
            CommandReply::TextAndApprovalCard { text, card } => (text, card),
        };
        let (text, card) = reply;
        let delivery = request.delivery;
        // The text reply and the card entity do not depend on each other: one round trip for both.
        let (content, text_key) = (MessageContent::Text(text.to_owned()), request.key("text"));
        let text_reply =
            feishu.reply_message_in_chat(chat, source, &content, false, &text_key, deadline);
        let entity = async {
            match (delivery, &progress.card_id) {
                (CardDelivery::Entity, None) => {
                    Some(feishu.create_card(&card.to_value(), deadline).await)
                }
                _ => None,
            }
        };
        let (text_sent, created) = tokio::join!(text_reply, entity);
        // A created entity is kept in the progress even when the text failed, so a retry reuses
        // it, and in the message's dedup record, so a retry after a crash does too.
        if let Some(created) = created {
            let created = created.map_err(|e| fail(e.into(), &progress))?;
            progress.card_id = Some(created.clone());
            let kept = store
                .keep_reply_entity(source, &created)
                .await
                .map_err(|e| fail(e.into(), &progress))?;
            progress.card_id = Some(kept);
        }
        text_sent.map_err(|e| fail(e.into(), &progress))?;
        let content = match (delivery, &progress.card_id) {
            (CardDelivery::Entity, Some(card_id)) => MessageContent::CardEntity {
                card_id: card_id.clone(),
            },
            _ => MessageContent::Card(card.to_value()),
        };
        let sent = feishu
            .reply_message_in_chat(
                chat,
                source,
                &content,
                false,
                &request.key("card"),
                deadline,
            )
            .await
            .map_err(|e| fail(e.into(), &progress))?;
        let state = approval::new_card_state(
            &SentCard {
                message_id: sent.message_id,
                chat_id: request.chat_id.clone(),
                requester_open_id: request.requester_open_id.clone(),
                source_message_id: request.source_message_id.clone(),
                card_id: progress
                    .card_id
                    .clone()
                    .filter(|_| delivery == CardDelivery::Entity),
                delivery,
            },
            now,
        );
        let jobs: Vec<_> = approval::scheduled_for_new_card(&state, approval_ttl_ms)
            .into_iter()
            .map(|scheduled| jobs::scheduled_job(&state.card_key, scheduled))
            .collect();
        match store.create_card_with_jobs(&state, &jobs).await {
            // A retried reply: the card and its jobs were written together the first time.
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(fail(e.into(), &progress)),
        }
        Ok(SentReply {
            card_key: Some(state.card_key),
        })
    }

    /// Runs a job this updater has claimed: plan against the card's state, write the state, make the
    /// Feishu calls (CardKit with fresh sequences), then complete or fail the job. Never drops a job.
    pub async fn run_job(&self, job: &Job) -> Result<JobOutcome, StoreError> {
        let Self { store, now, .. } = *self;
        let result = match job.kind {
            JobKind::SendReply => self.run_send_reply(job).await,
            _ => self.run_card_update(job).await,
        };
        match result {
            Ok(reason) => {
                store.complete_job(job, now).await?;
                Ok(JobOutcome::Done { reason })
            }
            Err(error) => {
                let (retry_at, permanent) = match &error {
                    DeliverError::Feishu(e) => match jobs::on_failure(e, now) {
                        FailureAction::Retry { retry_at } => (retry_at, false),
                        FailureAction::SpendTokenAndReplan => (None, false),
                        FailureAction::Permanent => (None, true),
                    },
                    DeliverError::Store(e)
                        if e.is_retryable() || matches!(e, StoreError::Conflict(_)) =>
                    {
                        (None, false)
                    }
                    DeliverError::Store(_) | DeliverError::BadJob(_) => (None, true),
                };
                // A permanent failure is dead at once with its error, kept for a human; never dropped.
                let (text, outcome) = if permanent {
                    let text = format!("permanent: {error}");
                    store.fail_job_permanently(job, &text, now).await?;
                    (text, FailOutcome::Dead)
                } else {
                    let text = error.to_string();
                    let outcome = store.fail_job(job, &text, retry_at, now).await?;
                    (text, outcome)
                };
                Ok(JobOutcome::Failed {
                    error: text,
                    outcome,
                    permanent,
                })
            }
        }
    }

    async fn run_send_reply(&self, job: &Job) -> Result<&'static str, DeliverError> {
        let request: ReplyRequest = serde_json::from_value(job.payload.clone())
            .map_err(|e| DeliverError::BadJob(format!("send_reply payload: {e}")))?;
        self.send_command_reply(&request)
            .await
            .map(|_| "reply sent")
            .map_err(|failure| failure.error)
    }

    async fn run_card_update(&self, job: &Job) -> Result<&'static str, DeliverError> {
        let Self {
            store,
            feishu,
            now,
            deadline,
            ..
        } = *self;
        // One re-plan after Feishu refused the update token (then the message is PATCHed).
        let mut replanned = false;
        loop {
            let state = store.get_card(&job.card_key).await?.ok_or_else(|| {
                DeliverError::BadJob(format!("no card state for {}", job.card_key))
            })?;
            let plan = jobs::plan_job(job, &state, now, self.time_zone)
                .map_err(|e| DeliverError::BadJob(e.to_string()))?;
            let current = match &plan.state_update {
                Some(next) => store.update_card(next).await?,
                None => state,
            };
            let Some(delivery) = plan.delivery else {
                return Ok(plan.reason);
            };
            let result = match delivery {
                Delivery::CardKit { card_id, ops } => {
                    // One write reserves the sequences of every call, in the order they are sent.
                    let count = u32::try_from(ops.len()).unwrap_or(u32::MAX);
                    let first = match count {
                        0 => 0,
                        _ => store.next_sequences(&job.card_key, count).await?,
                    };
                    for (index, op) in ops.iter().enumerate() {
                        if index > 0 {
                            // CardKit allows 10 writes/s per card.
                            tokio::time::sleep(Duration::from_millis(
                                jobs::CARDKIT_MIN_INTERVAL_MS,
                            ))
                            .await;
                        }
                        let sequence = first + i32::try_from(index).unwrap_or(i32::MAX);
                        let key = jobs::op_idempotency_key(
                            &job.card_key,
                            &job.job_id,
                            job.attempts,
                            index,
                        );
                        op.send(feishu, &card_id, &CardWrite::new(sequence, &key), deadline)
                            .await?;
                    }
                    Ok(())
                }
                Delivery::Message(MessageOp::DelayedUpdate { card }) => {
                    let token = current
                        .update_token
                        .as_ref()
                        .map(|t| t.token.clone())
                        .unwrap_or_default();
                    feishu
                        .delayed_update_card(&token, &card.to_value(), deadline)
                        .await
                }
                Delivery::Message(MessageOp::PatchMessage { message_id, card }) => {
                    feishu
                        .patch_message_card(&message_id, &card.to_value(), deadline)
                        .await
                }
            };
            match result {
                Ok(()) => return Ok(plan.reason),
                Err(e)
                    if !replanned
                        && jobs::on_failure(&e, now) == FailureAction::SpendTokenAndReplan =>
                {
                    store
                        .update_card(&jobs::spend_update_token(&current))
                        .await?;
                    replanned = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_payloads_written_before_the_typed_fields_still_read() {
        // A `send_reply` payload as the string-typed version stored it.
        let old = serde_json::json!({
            "source_message_id": "om_5ce6d572455d361153b7cb51da133945",
            "chat_id": "oc_5ad11d72b830411d72b836c20",
            "requester_open_id": "ou_84aad35d084aa403a838cf73ee18467",
            "command": "approval",
            "delivery": "entity",
            "card_id": "7355372766134157313",
        });
        let request: ReplyRequest = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(request.command, Command::Approval);
        assert_eq!(request.delivery, CardDelivery::Entity);
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            old,
            "written the same way"
        );
        let help = ReplyRequest::new(
            "om_1",
            "oc_1",
            "ou_1",
            Command::Unknown,
            CardDelivery::Message,
        );
        let value = serde_json::to_value(&help).unwrap();
        assert_eq!(
            (value["command"].as_str(), value["delivery"].as_str()),
            (Some("help"), Some("message"))
        );
        assert!(serde_json::from_value::<ReplyRequest>(serde_json::json!({
            "source_message_id": "om_1", "chat_id": "oc_1", "requester_open_id": "ou_1",
            "command": "help", "delivery": "carrier-pigeon"
        }))
        .is_err());
    }
}
