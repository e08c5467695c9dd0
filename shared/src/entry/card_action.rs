//! The card-action Lambda: Feishu's card callback URL (`card.action.trigger` and the legacy card
//! request). Verifies, deduplicates, applies the click to the card state with a version check,
//! stores the update token and enqueues the post-answer job in one write, and answers with a
//! toast and the new card. It never calls Feishu: everything after the answer is a job.

use std::sync::Arc;
use std::time::Duration;

use crate::approval::{self, views, ApprovalAction, Click, ClickDecision, Command};
use crate::cards::CallbackAnswer;
use crate::config::{CardDelivery, Config, WebhookConfig};
use crate::definitions::Definitions;
use crate::deliver::ReplyRequest;
use crate::feishu::Clock;
use crate::feishu::TenantKey;
use crate::function_url::{self, claim_lease_ms, error_response};
use crate::jobs;
use crate::store::{
    self, Abandon, CardStore, DedupStore, DocumentStore, Finish, JobStore, Once, StoreError,
    TenantStore,
};
use crate::tenants;
use crate::webhook::{CallbackStyle as Style, CardClick};
use jiff::tz::TimeZone;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use tracing::{info, warn};

/// Version conflicts (clicks at once: two approvers, or a route step's approvers voting together)
/// are re-read and re-decided this many times, within the answer budget: a vote that loses a race
/// is retried, not refused.
const MAX_CONFLICT_RETRIES: usize = 6;

/// The handler with everything it uses, built once per container.
pub struct CardAction<S: ?Sized> {
    pub store: Arc<S>,
    pub clock: Arc<dyn Clock>,
    pub webhook: WebhookConfig,
    pub approval_ttl: Duration,
    /// `APPROVAL_REMIND_AFTER`: a filed request's first reminder comes this long after it.
    pub remind_after: Duration,
    /// The zone cards show times in (`TENANT_TIME_ZONE`).
    pub time_zone: TimeZone,
    /// Feishu wants the answer within 3 s; past this budget the click gets a "retry" toast.
    pub answer_budget: Duration,
    /// How approval cards are sent (`CARD_DELIVERY`), for 发起审批's card.
    pub delivery: CardDelivery,
    /// The approver source and `APPROVAL_FALLBACK`: whether 请假 / 加班 open the form.
    pub approvers: crate::config::ApproverConfig,
    /// The approval definitions in the table, cached.
    pub definitions: Arc<Definitions>,
    /// A store app's clicks are served in their tenant's namespace, while it is active.
    pub tenants: tenants::Gate,
}

fn answer(style: Style, answer: &CallbackAnswer) -> Response<Body> {
    function_url::callback_response(style, answer)
}

fn retry_later(style: Style) -> Response<Body> {
    answer(
        style,
        &CallbackAnswer::toast_only(views::retry_later_toast()),
    )
}

impl<S> CardAction<S>
where
    S: DedupStore + CardStore + JobStore + DocumentStore + TenantStore + ?Sized,
{
    pub fn new(
        config: &Config,
        webhook: WebhookConfig,
        store: Arc<S>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            clock,
            webhook,
            approval_ttl: config.approval_ttl,
            remind_after: config.remind_after,
            time_zone: config.time_zone.clone(),
            answer_budget: config.answer_budget,
            delivery: config.card_delivery,
            approvers: config.approvers.clone(),
            definitions: Arc::new(Definitions::default()),
            tenants: tenants::Gate::new(config),
        }
    }

    /// The store app's tenant a click is for (`None` for a self-built app), once it is active;
    /// else the answer: a toast for a click without a well-formed tenant or in a stopped or
    /// uninstalled tenant (nothing is written), "retry" when the table cannot say.
    async fn click_tenant(
        &self,
        clicked: &CardClick,
        now: i64,
    ) -> Result<Option<TenantKey>, Box<Response<Body>>> {
        let style = clicked.style;
        let admitted = self
            .tenants
            .admit(&*self.store, clicked.tenant_key.as_deref(), now)
            .await;
        admitted.map_err(|refused| {
            let toast = match refused {
                tenants::Refused::NoTenant(_) => views::unknown_action_toast(),
                tenants::Refused::NotActive(..) => views::app_stopped_toast(),
                tenants::Refused::Unreadable(..) => return Box::new(retry_later(style)),
            };
            Box::new(answer(style, &CallbackAnswer::toast_only(toast)))
        })
    }

    /// One request to the card callback URL (one span per invocation; its metrics: received,
    /// answered, answer latency).
    #[tracing::instrument(name = "card_action", skip_all, fields(tenant = tracing::field::Empty))]
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = std::time::Instant::now();
        let response = self.handle_request(request).await;
        crate::telemetry::answered(response.status() == StatusCode::OK, started.elapsed());
        response
    }

    async fn handle_request(&self, request: Request) -> Response<Body> {
        let now = self.clock.now_millis();
        let inbound = match function_url::verify_or_answer(&self.webhook, &request, now) {
            Ok(inbound) => inbound,
            Err(answer) => return *answer,
        };
        crate::telemetry::received();
        let Some(clicked) = inbound.card_click() else {
            warn!("event sent to the card callback URL");
            return error_response(StatusCode::BAD_REQUEST, "event on the card URL");
        };
        self.handle_click(clicked, now).await
    }

    /// A verified click, from the card callback URL or (when an admin pasted one URL in both
    /// places) the event URL: decided within the answer budget.
    pub async fn handle_click(&self, clicked: CardClick, now: i64) -> Response<Body> {
        let style = clicked.style;
        match tokio::time::timeout(self.answer_budget, self.on_click(clicked, now)).await {
            Ok(response) => response,
            Err(_) => {
                warn!("click not decided within the answer budget");
                retry_later(style)
            }
        }
    }

    async fn on_click(&self, clicked: CardClick, now: i64) -> Response<Body> {
        let style = clicked.style;
        // A store app's tenant first: nothing of a stopped tenant is read or written.
        let tenant = match self.click_tenant(&clicked, now).await {
            Ok(tenant) => tenant,
            Err(answer) => return *answer,
        };
        if let Some(tenant) = &tenant {
            // Every later log line of this click names its tenant (a store app's).
            tracing::Span::current().record("tenant", tenant.as_str());
            crate::telemetry::tenant_served(tenant.as_str(), "click");
        }
        let tenant = tenant.as_ref().map(TenantKey::as_str);
        // An action that is not ours is answered before any table access: it writes nothing.
        let action = match clicked.action::<ApprovalAction, _>() {
            Ok(action) => action,
            Err(error) => {
                warn!(%error, "unknown card action");
                crate::telemetry::rejected("unknown action");
                return answer(
                    style,
                    &CallbackAnswer::toast_only(views::unknown_action_toast()),
                );
            }
        };
        // A request type's button of a type not offered (dropped since the card was drawn, or
        // never defined) is refused as unknown before any card is read: it writes nothing.
        let catalog = match self.definitions.catalog(&*self.store, tenant, &[]).await {
            Ok(catalog) => catalog,
            Err(e) => {
                warn!(error = %e, "definitions unreadable");
                return retry_later(style);
            }
        };
        if let ApprovalAction::Submit(kind) = action {
            if catalog.current_of(kind).is_none() {
                warn!(kind = %kind, "button of a request type not offered");
                crate::telemetry::rejected("unknown action");
                return answer(
                    style,
                    &CallbackAnswer::toast_only(views::removed_type_toast()),
                );
            }
        }
        // The key in the click's tenant: another tenant's message id finds no card here.
        let card_key = clicked
            .open_message_id
            .as_deref()
            .map(|id| approval::card_key(tenant, id));
        let Some(card_key) = card_key else {
            warn!("click without open_message_id");
            return retry_later(style);
        };
        let dedup_ttl_ms = i64::try_from(self.webhook.dedup_ttl.as_millis()).unwrap_or(i64::MAX);
        let lease_ms = claim_lease_ms(self.answer_budget);
        let key = clicked.dedup_key.clone();
        // The card state says whether an earlier attempt's transition was written: deciding again
        // against it (`resumed`) applies the click at most once.
        let work = |resumed: bool| async move {
            if action == ApprovalAction::Start {
                return self.start(&clicked, tenant, now).await;
            }
            let click = Click {
                action,
                operator_open_id: clicked.operator_open_id.as_deref(),
                update_token: clicked
                    .update_token
                    .as_ref()
                    .map(|t| jobs::issue_update_token(t.expose(), now)),
                now,
                approval_ttl_ms: i64::try_from(self.approval_ttl.as_millis()).unwrap_or(i64::MAX),
                remind_after_ms: i64::try_from(self.remind_after.as_millis()).unwrap_or(i64::MAX),
                time_zone: &self.time_zone,
                form_value: clicked.form_value.as_ref(),
                approvers: &self.approvers,
                catalog: &catalog,
            };
            match self.decide_and_write(&card_key, &click).await {
                Ok(mut result) => {
                    if resumed && result.card.is_none() {
                        // The first attempt's answer never reached Feishu: show the card as it
                        // stands, so what the user sees is what later element updates start from.
                        result.card = self.current_card(&card_key).await;
                    }
                    Ok(Finish::Done(answer(style, &result)))
                }
                Err(e) => {
                    warn!(card_key, error = %e, "click not applied");
                    // Nothing changed: the same click may be tried again.
                    Err(Abandon::Release(retry_later(style)))
                }
            }
        };
        match store::once(&*self.store, &key, now, lease_ms, dedup_ttl_ms, work).await {
            Ok(Once::Ran(response) | Once::Abandoned(response)) => response,
            Ok(Once::Duplicate(_)) => answer(style, &CallbackAnswer::default()),
            Err(e) => {
                warn!(error = %e, "dedup claim failed");
                retry_later(style)
            }
        }
    }

    /// 发起审批 on the welcome card: the approval card goes to the clicker's p2p chat as new
    /// messages, queued for the updater in the same write that marks the click done (this
    /// function never calls Feishu); the welcome card stays as it is.
    async fn start(
        &self,
        clicked: &CardClick,
        tenant: Option<&str>,
        now: i64,
    ) -> Result<Finish<Response<Body>>, Abandon<Response<Body>>> {
        let style = clicked.style;
        let operator = clicked
            .operator_open_id
            .as_deref()
            .filter(|id| crate::cards::text::FeishuId::OpenId.is_valid(id));
        let Some(operator) = operator else {
            warn!("发起审批 without a well-formed operator open_id");
            return Ok(Finish::Done(answer(
                style,
                &CallbackAnswer::toast_only(views::unknown_action_toast()),
            )));
        };
        let request = ReplyRequest::to_p2p(
            &clicked.dedup_key,
            operator,
            Command::Approval,
            self.delivery,
        );
        let payload = serde_json::to_value(&request).unwrap_or_default();
        let job = jobs::send_reply_job(
            &crate::store::keys::tenant_card_key(tenant, &clicked.dedup_key),
            payload,
            now,
        );
        match self
            .store
            .enqueue_finishing(&job, &clicked.dedup_key, now)
            .await
        {
            Ok(()) => {
                info!("approval card queued for the clicker's p2p chat");
                Ok(Finish::AlreadyDone(answer(
                    style,
                    &CallbackAnswer::toast_only(views::start_toast()),
                )))
            }
            Err(e) => {
                warn!(error = %e, "cannot queue the approval card");
                Err(Abandon::Release(retry_later(style)))
            }
        }
    }

    /// The card as its stored state renders now; `None` when it cannot be read.
    async fn current_card(&self, card_key: &str) -> Option<crate::cards::Card> {
        let state = self.store.get_card(card_key).await.ok()??;
        let request = match approval::ReviewData::of(&state) {
            Ok(review) => self.store.get_card(&review.request_key).await.ok()?,
            Err(_) => None,
        };
        let mut states = vec![&state];
        states.extend(request.as_ref());
        let tenant = crate::store::keys::card_key_tenant(card_key);
        let catalog = self
            .definitions
            .catalog(&*self.store, tenant, &states)
            .await
            .ok()?;
        approval::render_card(&state, request.as_ref(), &catalog, &self.time_zone).ok()
    }

    /// Reads the card, decides, and writes state + job in one transaction; re-reads on a conflict.
    async fn decide_and_write(
        &self,
        card_key: &str,
        click: &Click<'_>,
    ) -> Result<CallbackAnswer, ClickError> {
        // The card's tenant (a store app's), from its key: its definitions.
        let tenant = crate::store::keys::card_key_tenant(card_key);
        for attempt in 0..MAX_CONFLICT_RETRIES {
            if attempt > 0 {
                // Clicks that collided wait a little, each its own time, before re-deciding.
                let jitter = rand::random::<u64>() % (20 * attempt as u64 + 1);
                tokio::time::sleep(Duration::from_millis(5 + jitter)).await;
            }
            let state = self
                .store
                .get_card(card_key)
                .await?
                .ok_or(ClickError::UnknownCard)?;
            // An approver's card decides its request, kept on the requester's card.
            let review = approval::ReviewData::of(&state);
            let decided = review.is_ok();
            // The request as read: a transition that ends it also puts its decision event.
            let mut request_read = None;
            let decision = match review {
                Ok(review) => {
                    let request = self
                        .store
                        .get_card(&review.request_key)
                        .await?
                        .ok_or(ClickError::UnknownCard)?;
                    let catalog = self
                        .definitions
                        .catalog(&*self.store, tenant, &[&request])
                        .await?;
                    let click = Click {
                        catalog: &catalog,
                        ..click.clone()
                    };
                    let decision = approval::decide_review_click(&state, &request, &click)?;
                    request_read = Some(request);
                    decision
                }
                Err(_) => {
                    let catalog = self
                        .definitions
                        .catalog(&*self.store, tenant, &[&state])
                        .await?;
                    let click = Click {
                        catalog: &catalog,
                        ..click.clone()
                    };
                    approval::decide_click(&state, &click)?
                }
            };
            match decision {
                ClickDecision::Transition {
                    state: next,
                    followups,
                    answer,
                } => {
                    let before = request_read
                        .as_ref()
                        .filter(|r| r.card_key == next.card_key)
                        .unwrap_or(&state);
                    let jobs: Vec<_> = followups
                        .into_iter()
                        .map(|f| jobs::scheduled_job(&f.card_key, f.scheduled))
                        .chain(jobs::decision_event_job(before, &next))
                        .collect();
                    let state = next;
                    match self.store.update_card_and_enqueue(&state, &jobs).await {
                        Ok(_) => {
                            info!(card_key, status = %state.status, "click applied");
                            crate::telemetry::click();
                            if decided {
                                crate::telemetry::decision();
                            }
                            return Ok(answer);
                        }
                        Err(StoreError::Conflict(_)) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                ClickDecision::NoChange { answer } => return Ok(answer),
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
