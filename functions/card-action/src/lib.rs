//! The card-action Lambda: Feishu's card callback URL (`card.action.trigger` and the legacy card
//! request). Verifies, deduplicates, applies the click to the card state with a version check,
//! stores the update token and enqueues the post-answer job in one write, and answers with a
//! toast and the new card. It never calls Feishu: everything after the answer is a job.

use std::sync::Arc;
use std::time::Duration;

use cardbot::approval::{self, Click, ClickDecision};
use cardbot::cards::approval as views;
use cardbot::cards::CallbackAnswer;
use cardbot::config::{Config, WebhookConfig};
use cardbot::feishu::Clock;
use cardbot::store::{CardStore, DedupClaim, DedupStore, StoreError};
use cardbot::webhook::{self, Inbound};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

/// Version conflicts (two clicks at once) are re-read and re-decided this many times.
const MAX_CONFLICT_RETRIES: usize = 3;

/// The handler with everything it uses, built once per container.
pub struct CardAction<S: ?Sized> {
    pub store: Arc<S>,
    pub clock: Arc<dyn Clock>,
    pub webhook: WebhookConfig,
    pub approval_ttl: Duration,
    /// Feishu wants the answer within 3 s; past this budget the click gets a "retry" toast.
    pub answer_budget: Duration,
}

/// Which callback style carried the click; the answer has that style's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Trigger,
    Legacy,
}

/// The click fields both styles share.
struct Clicked {
    style: Style,
    dedup_key: String,
    open_message_id: Option<String>,
    operator_open_id: Option<String>,
    update_token: String,
    value: Value,
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

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

fn answer(style: Style, answer: &CallbackAnswer) -> Response<Body> {
    let body = match style {
        Style::Trigger => serde_json::to_string(&answer.card_action_trigger_response()),
        Style::Legacy => serde_json::to_string(&answer.legacy_response()),
    };
    json_response(StatusCode::OK, body.unwrap_or_else(|_| "{}".to_owned()))
}

fn retry_later(style: Style) -> Response<Body> {
    answer(
        style,
        &CallbackAnswer::toast_only(views::retry_later_toast()),
    )
}

impl<S> CardAction<S>
where
    S: DedupStore + CardStore + ?Sized,
{
    pub fn new(config: &Config, store: Arc<S>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            webhook: config.webhook.clone(),
            approval_ttl: config.approval_ttl,
            answer_budget: config.answer_budget,
        }
    }

    /// One request to the card callback URL.
    #[tracing::instrument(name = "card_action", skip_all)]
    pub async fn handle(&self, request: Request) -> Response<Body> {
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
        let clicked = match inbound {
            Inbound::Challenge(challenge) => {
                return json_response(StatusCode::OK, challenge.response_body())
            }
            Inbound::CardAction(trigger) => Clicked {
                style: Style::Trigger,
                dedup_key: trigger.header.event_id.clone(),
                open_message_id: trigger.event.context.open_message_id.clone(),
                operator_open_id: trigger.event.operator.open_id.clone().or(trigger
                    .event
                    .operator
                    .user_id
                    .clone()),
                update_token: trigger.event.token.expose().to_owned(),
                value: trigger.event.action.value.clone(),
            },
            Inbound::LegacyCardAction(legacy) => Clicked {
                style: Style::Legacy,
                // Without X-Refresh-Token the update token identifies the click; hashed, it is a secret.
                dedup_key: legacy.refresh_token.clone().unwrap_or_else(|| {
                    format!(
                        "legacy-token-{}",
                        hex::encode(Sha256::digest(legacy.token.expose().as_bytes()))
                    )
                }),
                open_message_id: Some(legacy.open_message_id.clone()),
                operator_open_id: legacy.open_id.clone().or(legacy.user_id.clone()),
                update_token: legacy.token.expose().to_owned(),
                value: legacy.action.value.clone(),
            },
            Inbound::MessageReceive(_) | Inbound::Event(_) => {
                warn!("event sent to the card callback URL");
                return json_response(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": "event on the card URL" }).to_string(),
                );
            }
        };
        let style = clicked.style;
        match tokio::time::timeout(self.answer_budget, self.on_click(clicked, now)).await {
            Ok(response) => response,
            Err(_) => {
                warn!("click not decided within the answer budget");
                retry_later(style)
            }
        }
    }

    async fn on_click(&self, clicked: Clicked, now: i64) -> Response<Body> {
        let style = clicked.style;
        // An action that is not ours is answered before any table access: it writes nothing.
        if let Err(error) = approval::parse_action(&clicked.value) {
            warn!(%error, "unknown card action");
            return answer(
                style,
                &CallbackAnswer::toast_only(views::unknown_action_toast()),
            );
        }
        let Some(card_key) = clicked.open_message_id.as_deref().map(approval::card_key) else {
            warn!("click without open_message_id");
            return retry_later(style);
        };
        let dedup_ttl_ms = i64::try_from(self.webhook.dedup_ttl.as_millis()).unwrap_or(i64::MAX);
        match self
            .store
            .claim(&clicked.dedup_key, now, dedup_ttl_ms)
            .await
        {
            Ok(DedupClaim::FirstTime) => {}
            Ok(DedupClaim::Duplicate) => {
                info!(card_key, "duplicate callback");
                return answer(
                    style,
                    &CallbackAnswer {
                        toast: None,
                        card: None,
                    },
                );
            }
            Err(e) => {
                warn!(error = %e, "dedup claim failed");
                return retry_later(style);
            }
        }
        let click = Click {
            value: &clicked.value,
            operator_open_id: clicked.operator_open_id.as_deref(),
            update_token: Some(clicked.update_token.as_str()).filter(|t| !t.is_empty()),
            now,
            approval_ttl_ms: i64::try_from(self.approval_ttl.as_millis()).unwrap_or(i64::MAX),
        };
        match self.decide_and_write(&card_key, &click).await {
            Ok(result) => answer(style, &result),
            Err(e) => {
                warn!(card_key, error = %e, "click not applied");
                // Nothing changed: the same click may be tried again.
                if let Err(e) = self.store.release(&clicked.dedup_key).await {
                    warn!(error = %e, "cannot release the dedup claim");
                }
                retry_later(style)
            }
        }
    }

    /// Reads the card, decides, and writes state + job in one transaction; re-reads on a conflict.
    async fn decide_and_write(
        &self,
        card_key: &str,
        click: &Click<'_>,
    ) -> Result<CallbackAnswer, ClickError> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let state = self
                .store
                .get_card(card_key)
                .await?
                .ok_or(ClickError::UnknownCard)?;
            match approval::decide_click(&state, click)? {
                ClickDecision::Transition { state, job, answer } => {
                    match self.store.update_card_and_enqueue(&state, &job).await {
                        Ok(_) => {
                            info!(card_key, status = %state.status, "click applied");
                            return Ok(answer);
                        }
                        Err(StoreError::Conflict(_)) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                ClickDecision::NoChange { answer } => return Ok(answer),
                ClickDecision::Rejected { error, answer } => {
                    warn!(%error, "click rejected");
                    return Ok(answer);
                }
            }
        }
        Err(ClickError::Store(StoreError::Conflict(format!(
            "card {card_key} kept changing"
        ))))
    }
}

/// Why a click could not be applied (the clicker sees a "retry" toast).
#[derive(Debug, thiserror::Error)]
enum ClickError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("no state for this card")]
    UnknownCard,
    #[error(transparent)]
    Domain(#[from] approval::DomainError),
}
