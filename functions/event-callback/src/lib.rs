//! The event-callback Lambda: Feishu's event subscription URL. Verifies, answers the challenge,
//! deduplicates `im.message.receive_v1` on `message_id`, and replies to `审批` / help; a reply that
//! does not fit the answer budget becomes a `send_reply` job for the updater.

use std::sync::Arc;
use std::time::Duration;

use cardbot::approval;
use cardbot::config::{CardDelivery, Config, WebhookConfig};
use cardbot::deliver::{self, ReplyRequest};
use cardbot::feishu::{Clock, Deadline, FeishuApi};
use cardbot::jobs;
use cardbot::store::{CardStore, DedupClaim, DedupStore, JobStore};
use cardbot::webhook::{self, Inbound, MessageReceive};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tracing::{info, warn};

/// The handler with everything it uses, built once per container.
pub struct EventCallback<S: ?Sized, F: ?Sized> {
    pub store: Arc<S>,
    pub feishu: Arc<F>,
    pub clock: Arc<dyn Clock>,
    pub webhook: WebhookConfig,
    pub delivery: CardDelivery,
    pub approval_ttl: Duration,
    /// Feishu wants the answer within 3 s; the reply work stops at this budget.
    pub answer_budget: Duration,
}

/// The raw bytes of a function-URL request body (lambda_http has already undone base64).
pub fn body_bytes(body: &Body) -> &[u8] {
    match body {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

fn ok_empty() -> Response<Body> {
    json_response(StatusCode::OK, "{}".to_owned())
}

impl<S, F> EventCallback<S, F>
where
    S: DedupStore + CardStore + JobStore + ?Sized,
    F: FeishuApi + ?Sized,
{
    pub fn new(config: &Config, store: Arc<S>, feishu: Arc<F>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            feishu,
            clock,
            webhook: config.webhook.clone(),
            delivery: config.card_delivery,
            approval_ttl: config.approval_ttl,
            answer_budget: config.answer_budget,
        }
    }

    /// One request to the event URL.
    #[tracing::instrument(name = "event_callback", skip_all)]
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let deadline = Deadline::after(self.answer_budget);
        let now = self.clock.now_millis();
        let inbound = match webhook::verify(
            &self.webhook,
            request.headers(),
            body_bytes(request.body()),
            now,
        ) {
            Ok(inbound) => inbound,
            Err(e) => {
                warn!(reason = e.reason(), "request rejected");
                return json_response(e.status(), json!({ "error": e.reason() }).to_string());
            }
        };
        match inbound {
            Inbound::Challenge(challenge) => {
                json_response(StatusCode::OK, challenge.response_body())
            }
            Inbound::MessageReceive(message) => self.on_message(&message, deadline).await,
            Inbound::Event(event) => {
                info!(event_type = %event.event_type, "event ignored");
                ok_empty()
            }
            Inbound::CardAction(_) | Inbound::LegacyCardAction(_) => {
                warn!("card callback sent to the event URL");
                json_response(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": "card callback on the event URL" }).to_string(),
                )
            }
        }
    }

    async fn on_message(&self, message: &MessageReceive, deadline: Deadline) -> Response<Body> {
        let event = &message.event;
        let message_id = event.message.message_id.as_str();
        let now = self.clock.now_millis();
        let dedup_ttl_ms = i64::try_from(self.webhook.dedup_ttl.as_millis()).unwrap_or(i64::MAX);
        match self.store.claim(message_id, now, dedup_ttl_ms).await {
            Ok(DedupClaim::FirstTime) => {}
            Ok(DedupClaim::Duplicate) => {
                info!(message_id, "duplicate delivery");
                return ok_empty();
            }
            Err(e) => {
                // Nothing happened yet: a 5xx makes Feishu retry later.
                warn!(error = %e, "dedup claim failed");
                return json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "error": "store unavailable" }).to_string(),
                );
            }
        }
        if event.sender.sender_type != "user" {
            return ok_empty();
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
        let sent = deliver::send_command_reply(
            &*self.store,
            &*self.feishu,
            &request,
            ttl_ms,
            now,
            deadline,
        )
        .await;
        let failure = match sent {
            Ok(sent) => {
                info!(message_id, ?command, card_key = ?sent.card_key, "replied");
                return ok_empty();
            }
            Err(failure) => failure,
        };
        warn!(message_id, error = %failure.error, "reply did not fit; queued for the updater");
        let payload = serde_json::to_value(&failure.progress).unwrap_or_default();
        match self
            .store
            .enqueue(&jobs::send_reply_job(message_id, payload, now))
            .await
        {
            Ok(()) => ok_empty(),
            Err(e) => {
                // Neither sent nor queued: let Feishu's retry try again.
                warn!(error = %e, "cannot queue the reply");
                if let Err(e) = self.store.release(message_id).await {
                    warn!(error = %e, "cannot release the dedup claim");
                }
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "error": "store unavailable" }).to_string(),
                )
            }
        }
    }
}
