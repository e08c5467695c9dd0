//! The event-callback Lambda: Feishu's event subscription URL. Verifies, answers the challenge,
//! deduplicates `im.message.receive_v1` on `message_id`, and replies to `审批` / help; a reply that
//! does not fit the answer budget becomes a `send_reply` job for the updater.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cardbot::approval;
use cardbot::config::{CardDelivery, Config, WebhookConfig};
use cardbot::deliver::{Effects, ReplyRequest};
use cardbot::feishu::{Clock, Deadline, FeishuApi};
use cardbot::function_url::{self, claim_lease_ms, error_response, json_response};
use cardbot::jobs;
use cardbot::store::{CardStore, DedupClaim, DedupStore, JobStore};
use cardbot::webhook::{Inbound, MessageReceive};
use jiff::tz::TimeZone;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use tracing::{info, warn};

/// The handler with everything it uses, built once per container.
pub struct EventCallback<S: ?Sized, F: ?Sized> {
    pub store: Arc<S>,
    pub feishu: Arc<F>,
    pub clock: Arc<dyn Clock>,
    pub webhook: WebhookConfig,
    pub delivery: CardDelivery,
    pub approval_ttl: Duration,
    /// The zone cards show times in (`TENANT_TIME_ZONE`).
    pub time_zone: TimeZone,
    /// How a new card\'s approvers are found (`APPROVER_OPEN_IDS`, `APPROVER_FROM_LEADER`).
    pub approvers: cardbot::config::ApproverConfig,
    /// Feishu wants the answer within 3 s; the reply work stops at this budget.
    pub answer_budget: Duration,
    /// Epoch ms until which replies go straight to the queue: a reply of this instance did not
    /// fit a moment ago (see [`BUSY_HOLD`]).
    busy_until: AtomicI64,
}

/// The part of the answer budget kept for queueing a reply that did not fit (one DynamoDB write).
const QUEUE_RESERVE: Duration = Duration::from_millis(500);

/// How long one Feishu call of the reply may wait for a rate slot or the app-wide permit. Past that
/// the reply is queued for the updater, which paces without a clock: in a burst the answer comes at
/// once and the instance is free for the next event (Lambda bills the wait, and where concurrency is
/// capped, reserved or `make run`'s instances, a waiting instance holds up every event behind it).
pub const ANSWER_RATE_WAIT: Duration = Duration::from_millis(100);

/// After a reply did not fit, the next replies of this instance within this time are queued
/// without trying Feishu: in a burst every try costs a round trip to the rate limiter's item only
/// to be refused, and the answer is what must stay fast. The updater delivers them (stream, ~1 s).
pub const BUSY_HOLD: Duration = Duration::from_secs(1);

fn ok_empty() -> Response<Body> {
    json_response(StatusCode::OK, "{}".to_owned())
}

impl<S, F> EventCallback<S, F>
where
    S: DedupStore + CardStore + JobStore + ?Sized,
    F: FeishuApi + ?Sized,
{
    pub fn new(
        config: &Config,
        webhook: WebhookConfig,
        store: Arc<S>,
        feishu: Arc<F>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            feishu,
            clock,
            webhook,
            delivery: config.card_delivery,
            approval_ttl: config.approval_ttl,
            time_zone: config.time_zone.clone(),
            approvers: config.approvers.clone(),
            answer_budget: config.answer_budget,
            busy_until: AtomicI64::new(0),
        }
    }

    /// One request to the event URL.
    #[tracing::instrument(name = "event_callback", skip_all)]
    pub async fn handle(&self, request: Request) -> Response<Body> {
        // Feishu calls stop early enough that a reply that did not fit is still queued in time.
        let deadline = Deadline::after(self.answer_budget.saturating_sub(QUEUE_RESERVE))
            .with_rate_wait(ANSWER_RATE_WAIT);
        let now = self.clock.now_millis();
        let inbound = match function_url::verify(&self.webhook, &request, now) {
            Ok(inbound) => inbound,
            Err(rejection) => return *rejection,
        };
        match inbound {
            Inbound::Challenge(challenge) => {
                json_response(StatusCode::OK, challenge.response_body())
            }
            Inbound::MessageReceive(message) => {
                let budget = self.answer_budget;
                let started = std::time::Instant::now();
                match tokio::time::timeout(budget, self.on_message(&message, deadline)).await {
                    Ok(response) => {
                        info!(
                            status = response.status().as_u16(),
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "message answered"
                        );
                        response
                    }
                    Err(_) => {
                        // Neither sent nor queued in time: no `done`, so the claim's lease lapses
                        // and Feishu's retry (a 5xx makes it retry) takes over the work.
                        warn!("message not handled within the answer budget");
                        error_response(StatusCode::SERVICE_UNAVAILABLE, "busy, retry")
                    }
                }
            }
            Inbound::Event(event) => {
                info!(event_type = %event.event_type, "event ignored");
                ok_empty()
            }
            Inbound::CardAction(_) | Inbound::LegacyCardAction(_) => {
                warn!("card callback sent to the event URL");
                error_response(StatusCode::BAD_REQUEST, "card callback on the event URL")
            }
        }
    }

    async fn on_message(&self, message: &MessageReceive, deadline: Deadline) -> Response<Body> {
        let event = &message.event;
        let message_id = event.message.message_id.as_str();
        let now = self.clock.now_millis();
        let dedup_ttl_ms = i64::try_from(self.webhook.dedup_ttl.as_millis()).unwrap_or(i64::MAX);
        let lease_ms = claim_lease_ms(self.answer_budget);
        match self
            .store
            .claim(message_id, now, lease_ms, dedup_ttl_ms)
            .await
        {
            Ok(DedupClaim::FirstTime) => {}
            Ok(DedupClaim::TakenOver) => {
                warn!(
                    message_id,
                    "an earlier attempt died after its claim; finishing its work"
                );
            }
            Ok(claim @ (DedupClaim::InProgress | DedupClaim::Done)) => {
                info!(message_id, ?claim, "duplicate delivery");
                return ok_empty();
            }
            Err(e) => {
                // Nothing happened yet: a 5xx makes Feishu retry later.
                warn!(error = %e, "dedup claim failed");
                return error_response(StatusCode::SERVICE_UNAVAILABLE, "store unavailable");
            }
        }
        if event.sender.sender_type != "user" {
            return self.finished(message_id, now).await;
        }
        let text = event.message.content.text.as_deref().unwrap_or_default();
        let command = approval::parse_command(text);
        let requester = event
            .sender
            .sender_id
            .open_id
            .as_deref()
            .unwrap_or_default();
        let request = ReplyRequest::new(
            message_id,
            &event.message.chat_id,
            requester,
            command,
            self.delivery,
        );
        let ttl_ms = i64::try_from(self.approval_ttl.as_millis()).unwrap_or(i64::MAX);
        let effects = Effects {
            store: &*self.store,
            feishu: &*self.feishu,
            approval_ttl_ms: ttl_ms,
            now,
            deadline,
            time_zone: &self.time_zone,
            approvers: &self.approvers,
        };
        let payload = if now < self.busy_until.load(Ordering::Relaxed) {
            info!(
                message_id,
                "busy a moment ago: reply queued for the updater"
            );
            serde_json::to_value(&request).unwrap_or_default()
        } else {
            let failure = match effects.send_command_reply(&request).await {
                Ok(sent) => {
                    info!(message_id, ?command, card_key = ?sent.card_key, "replied");
                    return self.finished(message_id, now).await;
                }
                Err(failure) => failure,
            };
            let hold = i64::try_from(BUSY_HOLD.as_millis()).unwrap_or(i64::MAX);
            self.busy_until
                .store(now.saturating_add(hold), Ordering::Relaxed);
            warn!(message_id, error = %failure.error, "reply did not fit; queued for the updater");
            serde_json::to_value(&failure.progress).unwrap_or_default()
        };
        let job = jobs::send_reply_job(message_id, payload, now);
        match self.store.enqueue_finishing(&job, message_id, now).await {
            Ok(()) => ok_empty(),
            Err(e) => {
                // Neither sent nor queued: let Feishu's retry try again.
                warn!(error = %e, "cannot queue the reply");
                if let Err(e) = self.store.release(message_id).await {
                    warn!(error = %e, "cannot release the dedup claim");
                }
                error_response(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
            }
        }
    }

    /// The reply is sent or durably queued: mark the delivery done. If that write fails the lease
    /// lapses and a re-delivery redoes the reply, which Feishu's uuid dedup makes one message.
    async fn finished(&self, message_id: &str, now: i64) -> Response<Body> {
        if let Err(e) = self.store.finish(message_id, now).await {
            warn!(message_id, error = %e, "cannot mark the delivery done");
        }
        ok_empty()
    }
}
