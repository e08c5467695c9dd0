//! The event-callback Lambda: Feishu's event subscription URL. Verifies, answers the challenge,
//! deduplicates `im.message.receive_v1` on `message_id`, and replies to `审批` / help (text or
//! rich text); a reply that does not fit the answer budget becomes a `send_reply` job for the
//! updater. It also welcomes a user who opens the bot's p2p chat (once a day), answers the bot
//! menu's `start_approval`, and handles a card callback that reached this URL as the card URL
//! would.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::approval::{self, Command};
use crate::cards::text::FeishuId;
use crate::config::{CardDelivery, Config, WebhookConfig};
use crate::deliver::{Effects, ReplyRequest};
use crate::entry::card_action::CardAction;
use crate::feishu::{
    AppTicketEvent, Clock, Deadline, FeishuApi, MessageContent, ReceiveId, TenantKey,
};
use crate::function_url::{self, claim_lease_ms, error_response, json_response};
use crate::jobs;
use crate::store::{
    self, Abandon, AppTicketStore, CardStore, DedupStore, Finish, JobStore, ListStore, Once,
    TenantStore,
};
use crate::tenants;
use crate::webhook::{BotMenu, BotP2pChatEntered, ChatType, Inbound, MessageReceive};
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
    /// How a new card's approvers are found (`APPROVER_OPEN_IDS`, `APPROVER_FROM_LEADER`).
    pub approvers: crate::config::ApproverConfig,
    /// The approval definitions in the table, cached.
    pub definitions: std::sync::Arc<crate::definitions::Definitions>,
    /// Feishu wants the answer within 3 s; the reply work stops at this budget.
    pub answer_budget: Duration,
    /// Epoch ms until which replies go straight to the queue: a reply of this instance did not
    /// fit a moment ago (see [`BUSY_HOLD`]).
    busy_until: AtomicI64,
    /// Card callbacks that reach this URL (one URL pasted in both places) are handled by the
    /// card-action function's own code, with the same verification, dedup and answer.
    card_action: CardAction<S>,
    /// A store app takes `app_ticket` and lifecycle events, and serves each request with its
    /// tenant's client while the tenant is active.
    tenants: tenants::Gate,
}

/// Whom one request is served for: a store app's tenant and its client, or the self-built app.
#[derive(Clone, Copy)]
struct For<'a> {
    feishu: &'a dyn FeishuApi,
    tenant: Option<&'a str>,
}

pub use crate::webhook::{BOT_MENU, BOT_P2P_CHAT_ENTERED as P2P_CHAT_ENTERED};
/// The menu item's event key (set in the console, 机器人 > 机器人自定义菜单) that sends the
/// approval card.
pub const MENU_START_APPROVAL: &str = "start_approval";
/// A user is welcomed at most once per day (the tenant's day, `TENANT_TIME_ZONE`); the record
/// outlives the day.
const WELCOME_TTL_MS: i64 = 26 * 3600 * 1000;

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
    S: DedupStore
        + CardStore
        + JobStore
        + ListStore
        + crate::store::DocumentStore
        + AppTicketStore
        + TenantStore
        + Sized,
    F: FeishuApi + 'static,
{
    pub fn new(
        config: &Config,
        webhook: WebhookConfig,
        store: Arc<S>,
        feishu: Arc<F>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            card_action: CardAction::new(config, webhook.clone(), store.clone(), clock.clone()),
            store,
            feishu,
            clock,
            webhook,
            delivery: config.card_delivery,
            approval_ttl: config.approval_ttl,
            time_zone: config.time_zone.clone(),
            approvers: config.approvers.clone(),
            definitions: std::sync::Arc::new(crate::definitions::Definitions::default()),
            answer_budget: config.answer_budget,
            busy_until: AtomicI64::new(0),
            tenants: tenants::Gate::new(config),
        }
    }

    /// One request to the event URL (one span per invocation; its metrics: received, answered,
    /// answer latency).
    #[tracing::instrument(name = "event_callback", skip_all, fields(tenant = tracing::field::Empty))]
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = std::time::Instant::now();
        let response = self.handle_request(request).await;
        crate::telemetry::answered(response.status() == StatusCode::OK, started.elapsed());
        response
    }

    async fn handle_request(&self, request: Request) -> Response<Body> {
        // Feishu calls stop early enough that a reply that did not fit is still queued in time.
        let deadline = Deadline::after(self.answer_budget.saturating_sub(QUEUE_RESERVE))
            .with_rate_wait(ANSWER_RATE_WAIT);
        let now = self.clock.now_millis();
        let inbound = match function_url::verify(&self.webhook, &request, now) {
            Ok(inbound) => inbound,
            Err(rejection) => return *rejection,
        };
        crate::telemetry::received();
        if self.tenants.is_store() {
            if let Inbound::Event(event) = &inbound {
                if let Some(ticket) = AppTicketEvent::from_event(event) {
                    return self.on_app_ticket(ticket, now).await;
                }
                if let Some(change) = tenants::lifecycle_event(event, &self.tenants.app_id, now) {
                    return self.on_lifecycle(change, now).await;
                }
            }
        }
        if let Some(clicked) = inbound.card_click() {
            warn!(
                "a card callback reached the event URL: handled as the card callback URL would; \
                 the card-action function URL is the one intended for 回调配置"
            );
            return self.card_action.handle_click(clicked, now).await;
        }
        // Its table read counts against the answer budget like the rest of the work.
        let tenant =
            match tokio::time::timeout(self.answer_budget, self.tenant_of(&inbound, now)).await {
                Ok(Ok(tenant)) => tenant,
                Ok(Err(response)) => return *response,
                Err(_) => {
                    warn!("tenant status not read within the answer budget; Feishu will retry");
                    return error_response(StatusCode::SERVICE_UNAVAILABLE, "busy, retry");
                }
            };
        if let Some(tenant) = &tenant {
            // Every later log line of this request names its tenant (a store app's).
            tracing::Span::current().record("tenant", tenant.as_str());
            crate::telemetry::tenant_served(tenant.as_str(), "event");
        }
        let scoped = tenant.as_ref().and_then(|t| self.feishu.tenant_client(t));
        let at = For {
            feishu: match &scoped {
                Some(client) => client.as_ref(),
                None => &*self.feishu,
            },
            tenant: tenant.as_ref().map(TenantKey::as_str),
        };
        match inbound {
            Inbound::Challenge(challenge) => {
                json_response(StatusCode::OK, challenge.response_body())
            }
            Inbound::MessageReceive(message) => {
                let budget = self.answer_budget;
                let started = std::time::Instant::now();
                match tokio::time::timeout(budget, self.on_message(&message, deadline, at)).await {
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
            Inbound::BotP2pChatEntered(entered) => {
                self.within_budget(self.on_chat_entered(&entered, deadline, now, at))
                    .await
            }
            Inbound::BotMenu(menu) => {
                self.within_budget(self.on_menu(&menu, deadline, now, at))
                    .await
            }
            Inbound::Event(event) => {
                info!(event_type = %event.event_type, "event ignored");
                ok_empty()
            }
            // Taken above: every card callback is a click.
            Inbound::CardAction(_) | Inbound::LegacyCardAction(_) => {
                error_response(StatusCode::BAD_REQUEST, "unreadable card callback")
            }
        }
    }

    /// The store app's tenant `inbound` is for (`None` for a self-built app), once it is known to
    /// be active; else the answer: 400 for a request without a well-formed `tenant_key`, 200
    /// with nothing sent for a stopped or uninstalled tenant, 503 when the table cannot say.
    async fn tenant_of(
        &self,
        inbound: &Inbound,
        now: i64,
    ) -> Result<Option<TenantKey>, Box<Response<Body>>> {
        if matches!(inbound, Inbound::Challenge(_)) {
            return Ok(None);
        }
        let admitted = self
            .tenants
            .admit(&*self.store, inbound.tenant_key(), now)
            .await;
        admitted.map_err(|refused| {
            Box::new(match refused {
                tenants::Refused::NoTenant(_) => {
                    error_response(StatusCode::BAD_REQUEST, "bad tenant_key")
                }
                tenants::Refused::NotActive(..) => ok_empty(),
                tenants::Refused::Unreadable(..) => {
                    error_response(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
                }
            })
        })
    }

    /// A pushed `app_ticket` (store app): kept for every instance, answered at once.
    async fn on_app_ticket(
        &self,
        ticket: Result<AppTicketEvent, String>,
        now: i64,
    ) -> Response<Body> {
        let ticket = match ticket {
            Ok(ticket) if ticket.app_id == self.tenants.app_id => ticket,
            Ok(ticket) => {
                warn!(app_id = %ticket.app_id, "app_ticket of another app: not kept");
                crate::telemetry::rejected("app_ticket of another app");
                return error_response(StatusCode::BAD_REQUEST, "app_ticket of another app");
            }
            Err(reason) => {
                warn!(%reason, "malformed app_ticket event: refused");
                crate::telemetry::rejected("bad app_ticket");
                return error_response(StatusCode::BAD_REQUEST, "bad app_ticket event");
            }
        };
        match self
            .store
            .put_app_ticket(&self.tenants.app_id, &ticket.app_ticket, now)
            .await
        {
            Ok(()) => {
                info!("app_ticket kept");
                ok_empty()
            }
            Err(e) => {
                // Not kept: Feishu's retry (or the next hourly push) brings it again.
                warn!(error = %e, "cannot keep the app_ticket");
                error_response(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
            }
        }
    }

    /// A tenant's lifecycle event (store app): applied to its record unless a later one was.
    async fn on_lifecycle(
        &self,
        change: Result<tenants::LifecycleEvent, String>,
        now: i64,
    ) -> Response<Body> {
        let change = match change {
            Ok(change) => change,
            Err(reason) => {
                warn!(%reason, "malformed lifecycle event: refused");
                crate::telemetry::rejected("bad lifecycle event");
                return error_response(StatusCode::BAD_REQUEST, "bad lifecycle event");
            }
        };
        let applied = tenants::apply(&*self.store, &self.tenants.app_id, &change, now).await;
        self.tenants.forget(change.tenant.as_str());
        match applied {
            Ok(applied) => {
                info!(
                    tenant = %change.tenant,
                    status = change.status.as_str(),
                    sent_at = change.sent_at,
                    applied,
                    "tenant lifecycle event"
                );
                if change.status == store::TenantStatus::Uninstalled {
                    // Also on a re-delivery (not applied again): the cleanup job is one per
                    // tenant, and a queued one is not queued twice.
                    let job = jobs::tenant_cleanup_job(change.tenant.as_str(), now);
                    if let Err(e) = self.store.enqueue(&job).await {
                        warn!(tenant = %change.tenant, error = %e, "cannot queue the tenant's cleanup; Feishu will retry");
                        return error_response(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "store unavailable",
                        );
                    }
                }
                ok_empty()
            }
            Err(e) => {
                warn!(tenant = %change.tenant, error = %e, "lifecycle event not applied; Feishu will retry");
                error_response(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
            }
        }
    }

    /// An event's work within the answer budget; past it, a 503 makes Feishu retry (a claim left
    /// behind lapses, and the retry resumes the work).
    async fn within_budget(
        &self,
        work: impl std::future::Future<Output = Response<Body>>,
    ) -> Response<Body> {
        match tokio::time::timeout(self.answer_budget, work).await {
            Ok(response) => response,
            Err(_) => {
                warn!("event not handled within the answer budget");
                error_response(StatusCode::SERVICE_UNAVAILABLE, "busy, retry")
            }
        }
    }

    /// A user opened their p2p chat with the bot: the welcome card.
    async fn on_chat_entered(
        &self,
        entered: &BotP2pChatEntered,
        deadline: Deadline,
        now: i64,
        at: For<'_>,
    ) -> Response<Body> {
        let event = &entered.event;
        match (&event.operator_id.open_id, &event.chat_id) {
            (Some(open_id), Some(chat_id))
                if FeishuId::OpenId.is_valid(open_id) && FeishuId::ChatId.is_valid(chat_id) =>
            {
                self.welcome(open_id, chat_id, deadline, now, at).await
            }
            _ => {
                warn!("p2p chat entered without a well-formed operator or chat");
                ok_empty()
            }
        }
    }

    /// A bot menu item: 发起审批 sends the approval card to the clicker's p2p chat.
    async fn on_menu(
        &self,
        menu: &BotMenu,
        deadline: Deadline,
        now: i64,
        at: For<'_>,
    ) -> Response<Body> {
        let key = menu.event.event_key.as_str();
        let open_id = menu
            .event
            .operator
            .operator_id
            .open_id
            .as_deref()
            .filter(|id| FeishuId::OpenId.is_valid(id));
        let Some(open_id) = open_id.filter(|_| key == MENU_START_APPROVAL) else {
            info!(event_key = %key.chars().take(30).collect::<String>(), "menu item ignored");
            return ok_empty();
        };
        let event_id = menu.header.event_id.as_str();
        let work = |resumed: bool| async move {
            let mut request =
                ReplyRequest::to_p2p(event_id, open_id, Command::Approval, self.delivery);
            request.resumed = resumed;
            self.reply_or_queue(event_id, &request, deadline, now, at)
                .await
        };
        self.once(event_id, now, self.dedup_ttl_ms(), work).await
    }

    /// The welcome card in a user's p2p chat, at most once a day per user.
    async fn welcome(
        &self,
        open_id: &str,
        chat_id: &str,
        deadline: Deadline,
        now: i64,
        at: For<'_>,
    ) -> Response<Body> {
        let day = jiff::Timestamp::from_millisecond(now)
            .map(|t| self.time_zone.to_datetime(t).date().to_string())
            .unwrap_or_default();
        let key = format!("welcome#{open_id}#{day}");
        let work = |_resumed: bool| async {
            let card = MessageContent::Card(approval::views::welcome_card().to_value());
            let receiver = ReceiveId::ChatId(chat_id.to_owned());
            let uuid_key = format!("welcome:{open_id}:{day}");
            match at
                .feishu
                .send_message(&receiver, &card, &uuid_key, deadline)
                .await
            {
                Ok(_) => {
                    info!("welcome card sent");
                    Ok(Finish::Done(ok_empty()))
                }
                Err(e) => {
                    // Not sent: Feishu's retry of the event tries again.
                    warn!(error = %e, "welcome card not sent");
                    Err(Abandon::Release(error_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "retry",
                    )))
                }
            }
        };
        self.once(&key, now, WELCOME_TTL_MS, work).await
    }

    /// How long a delivery's key is remembered (`DEDUP_TTL`), in ms.
    fn dedup_ttl_ms(&self) -> i64 {
        i64::try_from(self.webhook.dedup_ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// `work` at most once per delivery `key` ([`store::once`]); a duplicate is answered empty,
    /// and a store that cannot claim with a 503, so Feishu retries.
    async fn once<W, Fut>(&self, key: &str, now: i64, ttl_ms: i64, work: W) -> Response<Body>
    where
        W: FnOnce(bool) -> Fut,
        Fut: std::future::Future<Output = Result<Finish<Response<Body>>, Abandon<Response<Body>>>>,
    {
        let lease_ms = claim_lease_ms(self.answer_budget);
        match store::once(&*self.store, key, now, lease_ms, ttl_ms, work).await {
            Ok(Once::Ran(response) | Once::Abandoned(response)) => response,
            Ok(Once::Duplicate(_)) => ok_empty(),
            Err(e) => {
                // Nothing happened yet: a 5xx makes Feishu retry later.
                warn!(error = %e, "dedup claim failed");
                error_response(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
            }
        }
    }

    /// Whether a message in a group names this bot among its mentions (`mentions[].id.open_id`
    /// against `bot/v3/info`'s open_id): with the group-message scope every group message
    /// arrives, and only those that @mention the bot are for it. `Err` when the bot's open_id
    /// cannot be read now (Feishu's retry asks again).
    async fn mentions_this_bot(
        &self,
        message: &MessageReceive,
        deadline: Deadline,
        at: For<'_>,
    ) -> Result<bool, crate::feishu::FeishuError> {
        let mentions = &message.event.message.mentions;
        if mentions.is_empty() {
            return Ok(false);
        }
        let bot = at.feishu.bot_open_id(deadline).await?;
        Ok(mentions
            .iter()
            .any(|m| m.id.open_id.as_deref() == Some(bot.as_str())))
    }

    async fn on_message(
        &self,
        message: &MessageReceive,
        deadline: Deadline,
        at: For<'_>,
    ) -> Response<Body> {
        let event = &message.event;
        let message_id = event.message.message_id.as_str();
        let now = self.clock.now_millis();
        let in_p2p = event.message.chat_type == ChatType::P2p;
        // A store app with no ticket yet cannot read its own open_id: the group message is queued
        // with its mentions, and the updater replies only if one of them is this bot.
        let mut unchecked_mentions = Vec::new();
        if !in_p2p {
            match self.mentions_this_bot(message, deadline, at).await {
                Ok(true) => {}
                Ok(false) => {
                    // Not for this bot: nothing is written, nothing answered.
                    info!(
                        message_id,
                        "group message without an @mention of this bot: ignored"
                    );
                    return ok_empty();
                }
                Err(crate::feishu::FeishuError::NoAppTicket { .. }) => {
                    unchecked_mentions = event
                        .message
                        .mentions
                        .iter()
                        .filter_map(|m| m.id.open_id.clone())
                        .filter(|id| FeishuId::OpenId.is_valid(id))
                        .collect();
                }
                Err(e) => {
                    warn!(error = %e, "cannot read the bot's open_id; Feishu will retry the event");
                    return error_response(StatusCode::SERVICE_UNAVAILABLE, "retry");
                }
            }
        }
        let work = |resumed: bool| async move {
            if event.sender.sender_type != "user" {
                return Ok(Finish::Done(ok_empty()));
            }
            // A rich-text (`post`) message is read on its text runs, like a text message.
            let text = match event.message.message_type.as_str() {
                "post" => crate::webhook::post_text(&event.message.content.value()),
                _ => event.message.content.text.clone(),
            };
            let command = approval::parse_command(text.as_deref().unwrap_or_default());
            let requester = event
                .sender
                .sender_id
                .open_id
                .as_deref()
                .unwrap_or_default();
            let private = matches!(command, Command::MyRequests | Command::Pending);
            let request = if private && !in_p2p {
                // A user's requests are theirs: asked in a group, the list goes to their p2p chat.
                ReplyRequest::to_p2p(message_id, requester, command, self.delivery)
            } else {
                ReplyRequest::new(
                    message_id,
                    &event.message.chat_id,
                    requester,
                    command,
                    self.delivery,
                )
                .in_p2p(in_p2p)
            };
            let request = ReplyRequest {
                resumed,
                unchecked_mentions: unchecked_mentions.clone(),
                ..request
            };
            self.reply_or_queue(message_id, &request, deadline, now, at)
                .await
        };
        self.once(message_id, now, self.dedup_ttl_ms(), work).await
    }

    /// Sends the reply within the answer budget, or queues it for the updater in the write that
    /// marks the delivery `dedup_key` done. Neither sent nor queued: the claim is released when
    /// nothing was tried, and kept otherwise (a send may have gone out; the retry resumes from what
    /// the reply kept).
    async fn reply_or_queue(
        &self,
        dedup_key: &str,
        request: &ReplyRequest,
        deadline: Deadline,
        now: i64,
        at: For<'_>,
    ) -> Result<Finish<Response<Body>>, Abandon<Response<Body>>> {
        let message_id = dedup_key;
        let command = request.command;
        let ttl_ms = i64::try_from(self.approval_ttl.as_millis()).unwrap_or(i64::MAX);
        let effects = Effects {
            store: &*self.store,
            feishu: at.feishu,
            tenant: at.tenant,
            approval_ttl_ms: ttl_ms,
            now,
            deadline,
            time_zone: &self.time_zone,
            approvers: &self.approvers,
            definitions: &self.definitions,
            // A reply ends no request.
            events: None,
        };
        // A request whose mentions are unchecked waits for the bot's open_id: straight to the queue.
        let tried =
            now >= self.busy_until.load(Ordering::Relaxed) && request.unchecked_mentions.is_empty();
        let payload = if !tried {
            if request.unchecked_mentions.is_empty() {
                info!(
                    message_id,
                    "busy a moment ago: reply queued for the updater"
                );
            } else {
                info!(
                    message_id,
                    "no app_ticket yet: group message queued until the bot's open_id can be read"
                );
            }
            serde_json::to_value(request).unwrap_or_default()
        } else {
            let failure = match effects.send_command_reply(request).await {
                Ok(sent) => {
                    info!(message_id, ?command, card_key = ?sent.card_key, "replied");
                    crate::telemetry::reply_sent();
                    return Ok(Finish::Done(ok_empty()));
                }
                Err(failure) => failure,
            };
            let hold = i64::try_from(BUSY_HOLD.as_millis()).unwrap_or(i64::MAX);
            self.busy_until
                .store(now.saturating_add(hold), Ordering::Relaxed);
            warn!(message_id, error = %failure.error, "reply did not fit; queued for the updater");
            if let Some(tenant) = at.tenant {
                // A store app's tenant keeps its last error (`cardbot-admin tenants`).
                let error = failure.error.to_string();
                if let Err(e) = self
                    .store
                    .note_tenant_error(&self.tenants.app_id, tenant, &error, now)
                    .await
                {
                    warn!(tenant, error = %e, "cannot note the tenant's error");
                }
            }
            serde_json::to_value(&failure.progress).unwrap_or_default()
        };
        // In the tenant's namespace: the updater serves the job with the tenant's client.
        let job = jobs::send_reply_job(
            &crate::store::keys::tenant_card_key(at.tenant, message_id),
            payload,
            now,
        );
        match self.store.enqueue_finishing(&job, message_id, now).await {
            Ok(()) => Ok(Finish::AlreadyDone(ok_empty())),
            Err(e) => {
                // Neither sent nor queued: let Feishu's retry try again.
                warn!(error = %e, "cannot queue the reply");
                let retry = error_response(StatusCode::SERVICE_UNAVAILABLE, "store unavailable");
                Err(if tried {
                    Abandon::Keep(retry)
                } else {
                    Abandon::Release(retry)
                })
            }
        }
    }
}
