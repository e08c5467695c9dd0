//! The bot's effects: sending command replies and running card-update jobs, generic over the store
//! traits and [`FeishuApi`]. Every decision comes from [`crate::approval`] and [`crate::jobs`];
//! this module only performs it, in order, and records what happened. [`Effects`] carries what
//! every effect needs: the store, Feishu, the approval TTL, the time and the deadline.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::approval::definition::{Approvers, Catalog};
use crate::approval::{self, followup, ApprovalData, Command, CommandReply, NoApprover, SentCard};
use crate::config::{ApproverConfig, CardDelivery};
use crate::feishu::{
    CardWrite, Deadline, FeishuApi, FeishuError, Leader, MessageContent, ReceiveId,
};
use crate::jobs::{self, Delivery, FailureAction, JobKind, MessageOp};
use crate::store::{
    CardStore, DedupStore, DocumentStore, EpochMillis, FailOutcome, Job, JobStore, ListStore,
    StoreError,
};
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
    /// How a new card's approvers are found (`APPROVER_OPEN_IDS`, `APPROVER_FROM_LEADER`), unless
    /// its definition names them.
    pub approvers: &'a ApproverConfig,
    /// The approval definitions in the table, cached.
    pub definitions: &'a crate::definitions::Definitions,
    /// Where ended requests' decision events go (`DECISION_EVENT_BUS`); `None`: nowhere (a local
    /// run without an event bus), and the job says so.
    pub events: Option<&'a dyn feishu_kit::events::EventBus>,
    /// The store app's tenant the effect is for (from the event header, or the job's card key);
    /// `None` for a self-built app. `feishu` is that tenant's client.
    pub tenant: Option<&'a str>,
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
    #[error("{0}")]
    Events(#[from] feishu_kit::events::EventBusError),
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
    /// How the answer goes out: as replies to the user's message (a command), or as new messages
    /// in the requester's p2p chat (the bot menu and the welcome card's button, which have no
    /// message to reply to; `source_message_id` is then the event's id, for the uuids).
    #[serde(default, skip_serializing_if = "SendAs::is_reply")]
    pub send_as: SendAs,
    /// The command came in the requester's p2p chat with the bot (a reply there is seen by nobody
    /// else; a [`SendAs::P2p`] answer lands there too). A card sent elsewhere never shows a
    /// request's details.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_p2p: bool,
    /// An earlier attempt may have done some of the sends (its claim was taken over, or this is an
    /// outbox job): the reply reads what it kept ([`DedupStore::kept`]) and skips those.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
    /// A group message queued before the bot could read its own open_id (a store app with no
    /// `app_ticket` yet): the open_ids it @mentions. The reply goes out only if the bot is among
    /// them; empty for every other request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked_mentions: Vec<String>,
}

/// The steps of a reply kept on its message's dedup record ([`DedupStore::keep`]).
mod step {
    /// The CardKit entity the reply created.
    pub const CARD_ID: &str = "card_id";
    /// The text reply's message_id.
    pub const TEXT: &str = "text";
    /// The card reply's message_id and chat_id, space-separated.
    pub const CARD: &str = "card";
}

/// 200770 (uuid conflict): Feishu refused a repeat of a send it already made. Documented for
/// CardKit; for im sends the docs say only that a uuid "succeeds at most once" within 1 hour, so a
/// refusal with this code is read as "sent before" (`docs/architecture.md`, exactly once).
const UUID_CONFLICT: i64 = 200770;

/// How long a reminder's dedup record (the buzzes it sent) lives and holds its claim: longer
/// than every retry of its job.
const REMINDER_RECORD_MS: i64 = 2 * 24 * 3_600_000;

/// How a command's answer is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendAs {
    /// Replies to the user's message, in its chat.
    #[default]
    Reply,
    /// New messages to the requester by open_id (their p2p chat with the bot).
    P2p,
}

impl SendAs {
    fn is_reply(&self) -> bool {
        *self == Self::Reply
    }
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
            Command::Help | Command::Unknown => Command::Help,
            other => other,
        };
        Self {
            source_message_id: source_message_id.to_owned(),
            chat_id: chat_id.to_owned(),
            requester_open_id: requester_open_id.to_owned(),
            command,
            delivery,
            card_id: None,
            send_as: SendAs::Reply,
            in_p2p: false,
            resumed: false,
            unchecked_mentions: Vec::new(),
        }
    }

    /// This request as a retry of an attempt that may have sent some of it (see `resumed`).
    pub fn resumed(mut self) -> Self {
        self.resumed = true;
        self
    }

    /// [`ReplyRequest::new`] for a message in the requester's p2p chat with the bot.
    pub fn in_p2p(mut self, in_p2p: bool) -> Self {
        self.in_p2p = in_p2p;
        self
    }

    /// The answer to a command that came without a message (the bot menu, the welcome card's
    /// button): new messages in `requester`'s p2p chat; `event_id` keys their uuids.
    pub fn to_p2p(
        event_id: &str,
        requester: &str,
        command: Command,
        delivery: CardDelivery,
    ) -> Self {
        Self {
            send_as: SendAs::P2p,
            ..Self::new(event_id, "", requester, command, delivery)
        }
    }

    /// Whether the answer lands in the requester's p2p chat: a message there, or a p2p send.
    fn lands_in_p2p(&self) -> bool {
        self.in_p2p || self.send_as == SendAs::P2p
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
    S: CardStore + JobStore + DedupStore + ListStore + DocumentStore + ?Sized,
    F: FeishuApi + ?Sized,
{
    /// The definitions offered now and every version `states` pinned.
    async fn catalog(
        &self,
        states: &[&crate::store::CardState],
    ) -> Result<std::sync::Arc<Catalog>, DeliverError> {
        Ok(self
            .definitions
            .catalog(self.store, self.tenant, states)
            .await?)
    }

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
        // What an earlier attempt sent is kept on the message's dedup record, so a retry skips it
        // instead of trusting Feishu to replay a repeated uuid.
        let kept = if request.resumed {
            store
                .kept(source)
                .await
                .map_err(|e| fail(e.into(), &progress))?
        } else {
            Default::default()
        };
        if progress.card_id.is_none() {
            progress.card_id = kept.get(step::CARD_ID).cloned();
        }
        let catalog = self.catalog(&[]).await.map_err(|e| fail(e, &progress))?;
        let reply = match request.command.reply(&catalog) {
            CommandReply::Text(text) => {
                if !kept.contains_key(step::TEXT) {
                    let content = MessageContent::Text(text.to_owned());
                    self.send_text_once(request, &content, &request.key("help"))
                        .await
                        .map_err(|e| fail(e, &progress))?;
                }
                return Ok(SentReply { card_key: None });
            }
            CommandReply::List => {
                self.send_list(request)
                    .await
                    .map_err(|e| fail(e, &progress))?;
                return Ok(SentReply { card_key: None });
            }
            CommandReply::TextAndApprovalCard { text, card } => (text, card),
        };
        let (text, card) = reply;
        let delivery = request.delivery;
        // The text reply and the card entity do not depend on each other: one round trip for both.
        let (content, text_key) = (MessageContent::Text(text.to_owned()), request.key("text"));
        let text_reply = async {
            if kept.contains_key(step::TEXT) {
                return Ok(());
            }
            self.send_text_once(request, &content, &text_key).await
        };
        let entity = async {
            match (delivery, &progress.card_id) {
                (CardDelivery::Entity, None) => {
                    Some(feishu.create_card(&card.to_value(), deadline).await)
                }
                _ => None,
            }
        };
        // Who approves is resolved when a request is filed, never here: the reply makes only its
        // own Feishu calls, and a contact API failure can never hold a card back.
        let (text_sent, created) = tokio::join!(text_reply, entity);
        // A created entity is kept in the progress even when the text failed, so a retry reuses
        // it, and in the message's dedup record, so a retry after a crash does too.
        if let Some(created) = created {
            let created = created.map_err(|e| fail(e.into(), &progress))?;
            progress.card_id = Some(created.clone());
            let kept = store
                .keep(source, step::CARD_ID, &created)
                .await
                .map_err(|e| fail(e.into(), &progress))?;
            progress.card_id = Some(kept);
        }
        text_sent.map_err(|e| fail(e, &progress))?;
        let content = match (delivery, &progress.card_id) {
            (CardDelivery::Entity, Some(card_id)) => MessageContent::CardEntity {
                card_id: card_id.clone(),
            },
            _ => MessageContent::Card(card.to_value()),
        };
        let sent = match kept.get(step::CARD).and_then(|v| v.split_once(' ')) {
            Some((message_id, chat_id)) => crate::feishu::SentMessage {
                message_id: message_id.to_owned(),
                chat_id: Some(chat_id.to_owned()).filter(|c| !c.is_empty()),
                msg_type: None,
                create_time: None,
            },
            None => {
                let sent = self
                    .answer(request, &content, &request.key("card"))
                    .await
                    .map_err(|e| fail(e.into(), &progress))?;
                let record = format!(
                    "{} {}",
                    sent.message_id,
                    sent.chat_id.as_deref().unwrap_or_default()
                );
                store
                    .keep(source, step::CARD, &record)
                    .await
                    .map_err(|e| fail(e.into(), &progress))?;
                sent
            }
        };
        // A p2p send names its chat only in the answer.
        let chat_id = match request.send_as {
            SendAs::Reply => request.chat_id.clone(),
            SendAs::P2p => sent.chat_id.clone().unwrap_or_default(),
        };
        let state = approval::new_card_state(
            &SentCard {
                message_id: sent.message_id,
                chat_id,
                requester_open_id: request.requester_open_id.clone(),
                source_message_id: request.source_message_id.clone(),
                card_id: progress
                    .card_id
                    .clone()
                    .filter(|_| delivery == CardDelivery::Entity),
                delivery,
                in_p2p: request.lands_in_p2p(),
                tenant: self.tenant.map(str::to_owned),
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

    /// 我的申请 / 待我审批: the list, read by a Query on the `lists` index. 待我审批 also links each
    /// waiting request's card by a reply to it (one message each, uuid-keyed, so a retried list
    /// links nothing twice).
    async fn send_list(&self, request: &ReplyRequest) -> Result<(), DeliverError> {
        use approval::views;
        let me = &request.requester_open_id;
        let (card, links) = match request.command {
            Command::MyRequests => {
                let listed = match approval::requests_list(self.tenant, me) {
                    Some(list) => {
                        self.store
                            .list_cards(&list, views::LIST_LENGTH)
                            .await?
                            .cards
                    }
                    None => Vec::new(),
                };
                let states: Vec<_> = listed.iter().collect();
                let catalog = self.catalog(&states).await?;
                (
                    views::my_requests_card(&listed, &catalog, self.time_zone),
                    Vec::new(),
                )
            }
            Command::Pending => {
                let listed = match approval::reviews_list(self.tenant, me) {
                    Some(list) => self.store.list_cards(&list, PENDING_SCAN).await?.cards,
                    None => Vec::new(),
                };
                let mut pending = Vec::new();
                for review in listed {
                    if pending.len() == views::LIST_LENGTH {
                        break;
                    }
                    let Ok(data) = approval::ReviewData::of(&review) else {
                        continue;
                    };
                    let Some(filed) = self.store.get_card(&data.request_key).await? else {
                        continue;
                    };
                    // Waiting for this approver: the request, and their vote (in a route, in the
                    // current step), on the card of the request's current round.
                    let request_data = ApprovalData::from_value(&filed.data).unwrap_or_default();
                    let waiting = approval::status_of(&filed)
                        .is_ok_and(approval::ApprovalStatus::is_waiting)
                        && approval::handover::card_decides(&request_data, &data);
                    if waiting {
                        pending.push((filed, review));
                    }
                }
                let requests: Vec<_> = pending.iter().map(|(r, _)| r.clone()).collect();
                let links = pending.into_iter().map(|(_, review)| review).collect();
                let states: Vec<_> = requests.iter().collect();
                let catalog = self.catalog(&states).await?;
                (
                    views::pending_card_list(&requests, &catalog, self.time_zone),
                    links,
                )
            }
            other => {
                return Err(DeliverError::BadJob(format!("{other:?} is not a list")));
            }
        };
        let content = MessageContent::Card(card.to_value());
        self.answer(request, &content, &request.key("list")).await?;
        for review in links {
            let Some(message_id) = review.message_id.as_deref() else {
                continue;
            };
            self.feishu
                .reply_message_in_chat(
                    &review.chat_id,
                    message_id,
                    &MessageContent::Text(views::PENDING_LINK_TEXT.to_owned()),
                    false,
                    &request.key(&format!("link:{}", review.card_key)),
                    self.deadline,
                )
                .await?;
        }
        Ok(())
    }

    /// Sends one message of a command's answer: a reply to the user's message, or a new message
    /// in the requester's p2p chat ([`SendAs`]).
    /// Sends a text answer and keeps it on the message's dedup record (step `text`), so a retry
    /// after a crash does not send it again. A 200770 answer means an earlier attempt sent it.
    async fn send_text_once(
        &self,
        request: &ReplyRequest,
        content: &MessageContent,
        key: &str,
    ) -> Result<(), DeliverError> {
        let message_id = match self.answer(request, content, key).await {
            Ok(sent) => sent.message_id,
            Err(e) if e.code() == Some(UUID_CONFLICT) => {
                tracing::info!("the text was sent by an earlier attempt (uuid conflict)");
                String::new()
            }
            Err(e) => return Err(e.into()),
        };
        self.store
            .keep(&request.source_message_id, step::TEXT, &message_id)
            .await?;
        Ok(())
    }

    async fn answer(
        &self,
        request: &ReplyRequest,
        content: &MessageContent,
        key: &str,
    ) -> Result<crate::feishu::SentMessage, FeishuError> {
        match request.send_as {
            SendAs::Reply => {
                self.feishu
                    .reply_message_in_chat(
                        &request.chat_id,
                        &request.source_message_id,
                        content,
                        false,
                        key,
                        self.deadline,
                    )
                    .await
            }
            SendAs::P2p => {
                self.feishu
                    .send_message(
                        &ReceiveId::OpenId(request.requester_open_id.clone()),
                        content,
                        key,
                        self.deadline,
                    )
                    .await
            }
        }
    }

    /// Who decides a request filed by `requester`: the configured approvers (but the requester),
    /// else their leader from the contact API, else the requester when they are the only one
    /// configured; else nobody, and why. A missing permission (99991672, 41050) means nobody,
    /// with a WARN naming the scopes and the `ApproverLookupDenied` metric (its alarm is in the
    /// template); any other contact failure fails the notify job, which is retried: a request
    /// must never go to nobody because Feishu hiccuped.
    async fn resolve_approvers(
        &self,
        requester: &str,
        config: &ApproverConfig,
    ) -> Result<Resolved, FeishuError> {
        let configured: Vec<String> = config
            .open_ids
            .iter()
            .filter(|id| id.as_str() != requester)
            .cloned()
            .collect();
        if !configured.is_empty() {
            return Ok(Resolved::Approvers(configured));
        }
        // The requester is the only configured approver: their leader decides, else they do.
        let own = config.open_ids.clone();
        // Only a well-formed open_id is looked up (the event's id is the user's, but never trusted).
        if !config.from_leader || !crate::cards::text::FeishuId::OpenId.is_valid(requester) {
            return Ok(match own.is_empty() {
                false => Resolved::Approvers(own),
                true if config.from_leader => Resolved::Nobody(NoApprover::UnknownUser),
                true => Resolved::Nobody(NoApprover::NoneConfigured),
            });
        }
        let answer = self.feishu.get_user(requester, self.deadline).await;
        let leader = Leader::of(requester, answer)?;
        // A denied look-up pages someone even when the requester's own id is the fallback.
        if let Leader::NoPermission { code } = leader {
            crate::telemetry::approver_lookup_denied();
            tracing::warn!(
                code,
                "cannot read the requester's leader: grant the scopes \
                 contact:contact.base:readonly and contact:user.department:readonly, and put the \
                 users in the app's contact data scope (通讯录权限范围); the request follows \
                 APPROVAL_FALLBACK"
            );
        }
        Ok(match leader {
            Leader::Found(leader) => Resolved::Approvers(vec![leader]),
            _ if !own.is_empty() => Resolved::Approvers(own),
            Leader::None => {
                // Feishu leaves `leader_user_id` out silently without the department field
                // scope (`approval-apis.md` §1, field scopes): say so, since it looks like "no leader".
                tracing::warn!(
                    "the requester has no leader in the contact data (if every user shows this, \
                     grant contact:user.department:readonly); the request follows \
                     APPROVAL_FALLBACK"
                );
                Resolved::Nobody(NoApprover::NoLeader)
            }
            Leader::NoPermission { code } => Resolved::Nobody(NoApprover::NoPermission { code }),
        })
    }

    /// Who decides a request: its definition's approvers (these open_ids, or the requester's
    /// leader), else the deployment's (`APPROVER_OPEN_IDS`, then the leader look-up); the
    /// deployment's `APPROVAL_FALLBACK` when nobody is found.
    async fn approver_config(
        &self,
        request: &crate::store::CardState,
        status: approval::ApprovalStatus,
        data: &ApprovalData,
    ) -> Result<ApproverConfig, DeliverError> {
        let catalog = self.catalog(&[request]).await?;
        let definition = data
            .request_kind(status)
            .map(|kind| catalog.resolve(kind, data.definition));
        let fallback = self.approvers.fallback;
        let nobody = ApproverConfig {
            open_ids: Vec::new(),
            from_leader: false,
            fallback,
        };
        // A routed request: the current step's approvers (every step skipped: nobody).
        let chosen = if data.route.is_empty() {
            definition.as_deref().and_then(|d| d.approvers.clone())
        } else {
            let Some(i) = approval::route::current(&data.route) else {
                return Ok(nobody);
            };
            let id = &data.route[i].id;
            match definition
                .as_deref()
                .and_then(|d| d.steps.iter().find(|s| &s.id == id))
            {
                Some(step) => step.approvers.clone(),
                None => return Ok(nobody),
            }
        };
        Ok(match chosen.as_ref() {
            Some(Approvers::OpenIds { open_ids }) => ApproverConfig {
                open_ids: open_ids.clone(),
                from_leader: false,
                fallback,
            },
            Some(Approvers::Leader { .. }) => ApproverConfig {
                open_ids: Vec::new(),
                from_leader: true,
                fallback,
            },
            None => self.approvers.clone(),
        })
    }

    /// The approvers of the filed `request`, resolved once and stored with it (a
    /// decision is checked against that list); `None` when filing found nobody, after the request
    /// was ended (`refuse`) or decided automatically (`simulated`), labelled, with the requester's
    /// card refreshed and the requester told.
    async fn approvers_of(
        &self,
        mut request: crate::store::CardState,
    ) -> Result<Option<crate::store::CardState>, DeliverError> {
        // Looked up once per step, whatever the conflicts on writing it.
        let mut resolved: Option<(Option<String>, Resolved)> = None;
        for _ in 0..MAX_RECORD_ATTEMPTS {
            let status = approval::status_of(&request).map_err(bad_job)?;
            let mut data = ApprovalData::from_value(&request.data).map_err(bad_job)?;
            if !status.is_waiting() {
                return Ok(None);
            }
            if !data.approvers.is_empty() {
                return Ok(Some(request));
            }
            let step = approval::route::current(&data.route);
            let step_id = step.map(|i| data.route[i].id.clone());
            if resolved.as_ref().is_none_or(|(id, _)| *id != step_id) {
                let config = self.approver_config(&request, status, &data).await?;
                let mut found = self
                    .resolve_approvers(&request.requester_open_id, &config)
                    .await?;
                // In a route the requester never decides their own request.
                if let Resolved::Approvers(approvers) = &mut found {
                    // Each person once, in the order given.
                    let mut seen = std::collections::HashSet::new();
                    approvers.retain(|a| seen.insert(a.clone()));
                }
                if let (false, Resolved::Approvers(approvers)) = (data.route.is_empty(), &mut found)
                {
                    approvers.retain(|a| *a != request.requester_open_id);
                    if approvers.is_empty() {
                        found = Resolved::Nobody(NoApprover::NoneConfigured);
                    }
                }
                resolved = Some((step_id.clone(), found));
            }
            let Some((_, resolved)) = &resolved else {
                continue;
            };
            let mut next = request.clone();
            next.updated_at = self.now;
            let at = |timer| approval::Scheduled {
                timer,
                at: self.now,
            };
            let followups: Vec<crate::store::NewJob> = match resolved {
                Resolved::Approvers(approvers) => {
                    data.approvers = approvers.clone();
                    if let Some(i) = step {
                        data.route[i].approvers = approvers.clone();
                    }
                    // The requester's card shows who decides the step.
                    (!data.route.is_empty())
                        .then(|| {
                            jobs::scheduled_job(&request.card_key, at(approval::Timer::Refresh))
                        })
                        .into_iter()
                        .collect()
                }
                // A route's step nobody can decide, and the fallback is the simulated approver:
                // that step is approved automatically, labelled, and the next one notified.
                Resolved::Nobody(_)
                    if self.approvers.fallback == crate::config::ApprovalFallback::Simulated
                        && step.is_some()
                        && data
                            .route
                            .iter()
                            .skip(step.unwrap_or(0) + 1)
                            .any(|s| s.outcome == approval::StepOutcome::Upcoming) =>
                {
                    let next_step =
                        approval::route::approve_automatically(&mut data.route).unwrap_or_default();
                    data.notified.clear();
                    [
                        approval::step_notify(&mut data, next_step),
                        approval::Timer::RefreshAll,
                    ]
                    .into_iter()
                    .map(|timer| jobs::scheduled_job(&request.card_key, at(timer)))
                    .collect()
                }
                Resolved::Nobody(why) => {
                    if self.approvers.fallback == crate::config::ApprovalFallback::Simulated {
                        // The last step: approved automatically, labelled, like the request.
                        approval::route::approve_automatically(&mut data.route);
                    }
                    approval::route::cancel_rest(&mut data.route);
                    let step = approval::no_approver_step(
                        status,
                        &mut data,
                        *why,
                        self.approvers.fallback,
                        self.now,
                    )
                    .map_err(bad_job)?;
                    next.status = step.stored();
                    // A route's other cards (earlier steps', CC) show the end too.
                    let others = (!data.route.is_empty()).then_some(approval::Timer::RefreshAll);
                    [approval::Timer::Refresh, approval::Timer::NotifyRequester]
                        .into_iter()
                        .chain(others)
                        .map(|timer| {
                            let at = self.now;
                            jobs::scheduled_job(
                                &request.card_key,
                                approval::Scheduled { timer, at },
                            )
                        })
                        .collect()
                }
            };
            next.data = data.to_value();
            // Nobody to decide it and the fallback refuses: the request ended.
            let mut followups = followups;
            followups.extend(jobs::decision_event_job(&request, &next));
            match self.store.update_card_and_enqueue(&next, &followups).await {
                Ok(stored) if matches!(resolved, Resolved::Approvers(_)) => {
                    return Ok(Some(stored))
                }
                Ok(_) => return Ok(None),
                Err(StoreError::Conflict(_)) => {
                    request = self.card_or_bad_job(&request.card_key).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!("request {} kept changing", request.card_key)).into())
    }

    /// Puts the decision event of the ended request on the job's card (one put per run; a run
    /// retried after a crash puts it again with the same `event_id`).
    async fn run_decision_event(&self, job: &Job) -> Result<&'static str, DeliverError> {
        let request = self.card_or_bad_job(&job.card_key).await?;
        let Some(event) = crate::decisions::event(&request).map_err(bad_job)? else {
            return Ok("the request has not ended");
        };
        let Some(bus) = self.events else {
            return Ok("no event bus (DECISION_EVENT_BUS unset)");
        };
        bus.put(&event).await?;
        tracing::info!(
            card_key = %job.card_key,
            event_id = %event.detail["event_id"].as_str().unwrap_or_default(),
            outcome = %event.detail["outcome"].as_str().unwrap_or_default(),
            "decision event put"
        );
        Ok("decision event put")
    }

    /// Sends the definition's `cc` users (p2p) and chats their read-only card of a filed request
    /// and records each (a retry skips those recorded; a send retried after a crash is one
    /// message through its uuid). A recipient Feishu refuses for good is recorded and skipped.
    async fn run_notify_cc(&self, job: &Job) -> Result<&'static str, DeliverError> {
        let request = self.card_or_bad_job(&job.card_key).await?;
        let status = approval::status_of(&request).map_err(bad_job)?;
        let data = ApprovalData::from_value(&request.data).map_err(bad_job)?;
        let catalog = self.catalog(&[&request]).await?;
        let Some(kind) = data.request_kind(status) else {
            return Ok("no request");
        };
        let Some(cc) = catalog.resolve(kind, data.definition).cc.clone() else {
            return Ok("no cc");
        };
        let recipients = cc
            .open_ids
            .iter()
            .map(|id| (id, approval::CcKind::User, ReceiveId::OpenId(id.clone())))
            .chain(
                cc.chat_ids
                    .iter()
                    .map(|id| (id, approval::CcKind::Chat, ReceiveId::ChatId(id.clone()))),
            );
        for (to, kind, receive_id) in recipients {
            if data.cc_sent.contains(to) {
                continue;
            }
            let viewer = approval::ReviewData {
                request_key: request.card_key.clone(),
                approver: to.clone(),
                step: None,
                cc: Some(kind),
                round: 0,
                candidates: Vec::new(),
            };
            let card =
                approval::views::review_card(&request, Some(&viewer), &catalog, self.time_zone)
                    .map_err(bad_job)?;
            let sent = match self
                .feishu
                .send_message(
                    &receive_id,
                    &MessageContent::Card(card.to_value()),
                    &format!("cc:{}:{to}", request.card_key),
                    self.deadline,
                )
                .await
            {
                Ok(sent) => Some(sent),
                Err(e)
                    if jobs::on_failure(&e, self.now) == FailureAction::Permanent
                        && e.code().is_some_and(jobs::is_per_recipient_refusal) =>
                {
                    tracing::warn!(error = %e, "cc recipient unreachable; their card is skipped");
                    None
                }
                Err(e) => return Err(e.into()),
            };
            let card_key = match sent {
                Some(sent) => {
                    let chat_id = sent.chat_id.clone().unwrap_or_default();
                    let state = approval::new_review_state(
                        &request,
                        &viewer,
                        &sent.message_id,
                        &chat_id,
                        self.now,
                    );
                    match self.store.create_card(&state).await {
                        Ok(_) | Err(StoreError::Conflict(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                    Some(state.card_key)
                }
                None => None,
            };
            self.record_cc_card(&request.card_key, to, card_key.as_deref())
                .await?;
        }
        // A request decided meanwhile: the CC cards sent after its refreshes show it too.
        let now_request = self.card_or_bad_job(&request.card_key).await?;
        if approval::status_of(&now_request)
            .map_err(bad_job)?
            .is_final()
        {
            let data = ApprovalData::from_value(&now_request.data).map_err(bad_job)?;
            for key in &data.cc_cards {
                let scheduled = approval::Scheduled {
                    timer: approval::Timer::Refresh,
                    at: self.now,
                };
                self.store
                    .enqueue(&jobs::scheduled_job(key, scheduled))
                    .await?;
            }
        }
        Ok("cc cards sent")
    }

    /// Queues a refresh of every card of a request (its own, each approver's, each CC's); a
    /// refresh already pending is left: it shows the latest state when it runs.
    async fn run_refresh_all(&self, job: &Job) -> Result<&'static str, DeliverError> {
        let request = self.card_or_bad_job(&job.card_key).await?;
        let data = ApprovalData::from_value(&request.data).map_err(bad_job)?;
        let scheduled = approval::Scheduled {
            timer: approval::Timer::Refresh,
            at: self.now,
        };
        for key in std::iter::once(&request.card_key).chain(&data.all_cards()) {
            self.store
                .enqueue(&jobs::scheduled_job(key, scheduled))
                .await?;
        }
        Ok("refreshes queued")
    }

    /// Records a CC card on the request, version-checked and retried on a conflict.
    async fn record_cc_card(
        &self,
        request_key: &str,
        to: &str,
        card_key: Option<&str>,
    ) -> Result<(), DeliverError> {
        for _ in 0..MAX_RECORD_ATTEMPTS {
            let request = self.card_or_bad_job(request_key).await?;
            let mut data = ApprovalData::from_value(&request.data).map_err(bad_job)?;
            if data.cc_sent.iter().any(|s| s == to) {
                return Ok(());
            }
            data.cc_sent.push(to.to_owned());
            if let Some(key) = card_key {
                data.cc_cards.push(key.to_owned());
            }
            let mut next = request.clone();
            next.data = data.to_value();
            match self.store.update_card(&next).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!("request {request_key} kept changing")).into())
    }

    /// Sends the form a group card handed over to the requester's p2p chat (one message through
    /// its uuid, however often the job is retried) and writes that card's state and expiry.
    async fn run_private_form(&self, job: &Job) -> Result<&'static str, DeliverError> {
        let group = self.card_or_bad_job(&job.card_key).await?;
        let status = approval::status_of(&group).map_err(bad_job)?;
        let Some(kind) = status
            .request()
            .filter(|_| status.stage() == Some(approval::Stage::Moved))
        else {
            return Ok("nothing handed over");
        };
        let catalog = self.catalog(&[&group]).await?;
        let pinned = ApprovalData::from_value(&group.data)
            .map_err(bad_job)?
            .definition;
        let card = approval::views::form_card(&catalog.resolve(kind, pinned));
        let sent = self
            .feishu
            .send_message(
                &ReceiveId::OpenId(group.requester_open_id.clone()),
                &MessageContent::Card(card.to_value()),
                &format!("form:{}", group.card_key),
                self.deadline,
            )
            .await?;
        let chat_id = sent.chat_id.clone().unwrap_or_default();
        let state =
            approval::new_private_form_state(&group, kind, &sent.message_id, &chat_id, self.now);
        let jobs: Vec<_> = approval::scheduled_for_new_card(&state, self.approval_ttl_ms)
            .into_iter()
            .map(|scheduled| jobs::scheduled_job(&state.card_key, scheduled))
            .collect();
        match self.store.create_card_with_jobs(&state, &jobs).await {
            // A retried job: the card and its expiry were written together the first time.
            Ok(_) | Err(StoreError::Conflict(_)) => Ok("form sent to the requester's p2p chat"),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs a job this updater has claimed: plan against the card's state, write the state, make the
    /// Feishu calls (CardKit with fresh sequences), then complete or fail the job. Never drops a job.
    pub async fn run_job(&self, job: &Job) -> Result<JobOutcome, StoreError> {
        let Self { store, now, .. } = *self;
        let result = match JobKind::from(&job.kind) {
            JobKind::SendReply => self.run_send_reply(job).await,
            JobKind::NotifyApprovers => self.run_notify_approvers(job).await,
            JobKind::NotifyRequester => self.run_notify_requester(job).await,
            JobKind::Remind => self.run_remind(job).await,
            JobKind::PrivateForm => self.run_private_form(job).await,
            JobKind::NotifyCc => self.run_notify_cc(job).await,
            JobKind::RefreshAll => self.run_refresh_all(job).await,
            JobKind::DecisionEvent => self.run_decision_event(job).await,
            JobKind::Escalate => self.run_escalate(job).await,
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
                    DeliverError::Events(feishu_kit::events::EventBusError::Retryable(_)) => {
                        (None, false)
                    }
                    DeliverError::Events(feishu_kit::events::EventBusError::Permanent(_)) => {
                        (None, true)
                    }
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
        // A queued reply may have been half sent by the function that queued it or an earlier run.
        let request = request.resumed();
        if !request.unchecked_mentions.is_empty() {
            let bot = self.feishu.bot_open_id(self.deadline).await?;
            if !request.unchecked_mentions.contains(&bot) {
                return Ok("a group message not for this bot");
            }
        }
        self.send_command_reply(&request)
            .await
            .map(|_| "reply sent")
            .map_err(|failure| failure.error)
    }

    /// Sends each approver of a filed request their card (p2p by open_id), writes its state and
    /// records it on the request. A retry skips the approvers already recorded; a send retried
    /// after a crash is one message through its uuid. A card sent after the request was decided
    /// or withdrawn gets a refresh job, since the decision's refreshes did not know it.
    async fn run_notify_approvers(&self, job: &Job) -> Result<&'static str, DeliverError> {
        let Self {
            store,
            feishu,
            now,
            deadline,
            time_zone,
            ..
        } = *self;
        let request = self.card_or_bad_job(&job.card_key).await?;
        let Some(request) = self.approvers_of(request).await? else {
            return Ok("request no longer waiting (decided, withdrawn, or nobody to decide it)");
        };
        let to_notify = followup::approvers_to_notify(&request).map_err(bad_job)?;
        let catalog = self.catalog(&[&request]).await?;
        let data = ApprovalData::from_value(&request.data).map_err(bad_job)?;
        let step = approval::route::current(&data.route).map(|i| data.route[i].id.clone());
        let kind = data
            .request_kind_of(approval::status_of(&request).map_err(bad_job)?)
            .map_err(bad_job)?;
        let department = approval::handover::transfers_to_department(
            &catalog.resolve(kind, data.definition),
            step.as_deref(),
        );
        for approver in &to_notify {
            // `transfer_to: {department: true}`: the approver's department, looked up now.
            let candidates = match department {
                true => self.department_candidates(approver).await?,
                false => Vec::new(),
            };
            let viewer = approval::ReviewData {
                request_key: request.card_key.clone(),
                approver: approver.clone(),
                step: step.clone(),
                cc: None,
                round: data.round,
                candidates,
            };
            let card = approval::views::review_card(&request, Some(&viewer), &catalog, time_zone)
                .map_err(bad_job)?;
            // One message per approver, step and round, however often the job is retried.
            let key = match (&step, data.round) {
                (None, 0) => format!("notify:{}:{approver}", request.card_key),
                (Some(step), 0) => format!("notify:{}:{step}:{approver}", request.card_key),
                (step, round) => format!(
                    "notify:{}:r{round}:{}:{approver}",
                    request.card_key,
                    step.as_deref().unwrap_or_default()
                ),
            };
            let sent = match feishu
                .send_message(
                    &ReceiveId::OpenId(approver.clone()),
                    &MessageContent::Card(card.to_value()),
                    &key,
                    deadline,
                )
                .await
            {
                Ok(sent) => sent,
                // One approver Feishu will never reach (230013 outside the availability scope,
                // 230029 resigned, …) must not keep the others from their cards: recorded as
                // tried, skipped, counted. A refusal that says the deployment is wrong (an open_id
                // of another app, a missing scope) fails the job for good: it goes dead and the
                // dead-job alarm pages someone, instead of every request quietly going nowhere.
                // A retryable failure retries the job (the sent ones are kept).
                Err(e)
                    if jobs::on_failure(&e, now) == FailureAction::Permanent
                        && e.code().is_some_and(jobs::is_per_recipient_refusal) =>
                {
                    crate::telemetry::approver_unreachable();
                    tracing::warn!(error = %e, "approver unreachable; their card is skipped");
                    self.record_review_card(&request.card_key, approver, None)
                        .await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let chat_id = sent.chat_id.clone().unwrap_or_default();
            let review =
                approval::new_review_state(&request, &viewer, &sent.message_id, &chat_id, now);
            match store.create_card(&review).await {
                Ok(_) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            let recorded = self
                .record_review_card(&request.card_key, approver, Some(&review.card_key))
                .await?;
            if approval::status_of(&recorded).map_err(bad_job)?.is_final() {
                let scheduled = approval::Scheduled {
                    timer: approval::Timer::Refresh,
                    at: now,
                };
                store
                    .enqueue(&jobs::scheduled_job(&review.card_key, scheduled))
                    .await?;
            }
        }
        {
            // Decided from the stored request, not this attempt's refusals: a retry after the
            // text failed must still send it (one message through its uuid).
            let reached = self.card_or_bad_job(&request.card_key).await?;
            if followup::nobody_reached(&reached).map_err(bad_job)? {
                // Nobody can decide: the requester must know rather than wait for the expiry.
                feishu
                    .send_message(
                        &ReceiveId::OpenId(request.requester_open_id.clone()),
                        &MessageContent::Text(approval::views::UNREACHABLE_TEXT.to_owned()),
                        &format!("unreachable:{}", request.card_key),
                        deadline,
                    )
                    .await?;
                return Ok("no approver reachable; requester told");
            }
        }
        Ok("approvers notified")
    }

    /// Records that `approver` was sent their card (`card_key`; `None`: Feishu refused them for
    /// good) on the request (version-checked, re-read on a conflict).
    async fn record_review_card(
        &self,
        request_key: &str,
        approver: &str,
        card_key: Option<&str>,
    ) -> Result<crate::store::CardState, DeliverError> {
        for _ in 0..MAX_RECORD_ATTEMPTS {
            let request = self.card_or_bad_job(request_key).await?;
            let Some(next) =
                followup::notified_step(&request, approver, card_key).map_err(bad_job)?
            else {
                return Ok(request);
            };
            match self.store.update_card(&next).await {
                Ok(stored) => return Ok(stored),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!("request {request_key} kept changing")).into())
    }

    /// The `n`th reminder of a filed request: each approver whose vote is due gets a reply to their
    /// card (the reply links to it) and, where the app may, an in-app buzz on it (`urgent_app`;
    /// without the permission the message alone); then, if it reached anyone, it is recorded in
    /// the audit trail with the next reminder (or the escalation) queued in one write, else only
    /// the next is queued. A retry sends each reply once (its uuid), buzzes nobody twice, and
    /// records once ([`Self::send_reminders`]).
    async fn run_remind(&self, job: &Job) -> Result<&'static str, DeliverError> {
        let n = job
            .payload
            .get("n")
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=crate::config::MAX_REMINDERS).contains(n))
            .ok_or_else(|| DeliverError::BadJob(format!("reminder {:?}", job.payload)))?;
        let (max, every_ms, escalates) = {
            let request = self.card_or_bad_job(&job.card_key).await?;
            let remind = self.definition_of(&request).await?.remind.clone();
            match remind {
                // The definition's own reminders (`remind:`), and its escalation after the last.
                Some(r) => (
                    r.max,
                    i64::try_from(r.every_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
                    r.escalate.is_some(),
                ),
                None => (
                    crate::config::MAX_REMINDERS,
                    self.remind_interval_ms(),
                    false,
                ),
            }
        };
        // Sent first, recorded after: "reminded" is in the trail only when a reminder went out.
        let request = self.card_or_bad_job(&job.card_key).await?;
        let step = followup::remind_step(&request, n, max, self.now, every_ms).map_err(bad_job)?;
        let (review_cards, recorded) = match step {
            followup::RemindStep::NotWaiting => return Ok("request no longer waiting"),
            followup::RemindStep::NobodyReachable => return Ok("no approver reachable to remind"),
            // The notify job has not got through yet: try again later.
            followup::RemindStep::NotReady(why) => {
                return Err(StoreError::Conflict(why.into()).into())
            }
            followup::RemindStep::Send { review_cards } => (review_cards, true),
            followup::RemindStep::Record { review_cards, .. } => (review_cards, false),
        };
        let reached = self.send_reminders(&request, n, &review_cards).await?;
        // Recorded by an earlier run: the trail's count says so, or (when an earlier reminder
        // reached nobody and left no entry) the reminder's own dedup record.
        let record = format!("remind:{}:{n}", request.card_key);
        if recorded || self.store.kept(&record).await?.contains_key("recorded") {
            return Ok("approvers reminded (recorded before)");
        }
        // The next reminder (or the escalation after the last) is due whether or not anyone was
        // reached: escalation is for the silence reminders could not break.
        for _ in 0..MAX_RECORD_ATTEMPTS {
            let request = self.card_or_bad_job(&job.card_key).await?;
            let step =
                followup::remind_step(&request, n, max, self.now, every_ms).map_err(bad_job)?;
            let followup::RemindStep::Record { next, later, .. } = step else {
                return Ok("approvers reminded");
            };
            let waiting_step = ApprovalData::from_value(&request.data)
                .map_or(approval::ONE_STEP, |d| approval::waiting_step(&d));
            let escalation = (n == max && escalates).then(|| approval::Scheduled {
                timer: approval::Timer::Escalate(waiting_step),
                at: self.now + every_ms,
            });
            let later: Vec<_> = later
                .into_iter()
                .chain(escalation)
                .map(|at| jobs::scheduled_job(&request.card_key, at))
                .collect();
            if reached == 0 {
                for job in &later {
                    self.store.enqueue(job).await?;
                }
                return Ok("no approver could be reminded (not recorded)");
            }
            match self.store.update_card_and_enqueue(&next, &later).await {
                Ok(_) => {
                    self.store.keep(&record, "recorded", "1").await?;
                    return Ok("approvers reminded");
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!("request {} kept changing", job.card_key)).into())
    }

    /// The `n`th reminder to the approvers whose vote is due, each a reply to their current card
    /// (one message through its uuid however often the job runs) and, where the app may, an
    /// in-app buzz on it (`urgent_app`, which takes no idempotency key: each buzz is kept on the
    /// reminder's dedup record, so a retried job never buzzes twice). Returns how many were
    /// reached.
    async fn send_reminders(
        &self,
        request: &crate::store::CardState,
        n: u32,
        review_cards: &[String],
    ) -> Result<usize, DeliverError> {
        let catalog = self.catalog(&[request]).await?;
        let text = approval::views::reminder_text(request, n, &catalog, self.time_zone)
            .map_err(bad_job)?;
        let request_data = ApprovalData::from_value(&request.data).map_err(bad_job)?;
        // The record that keeps which buzzes went out (it outlives every retry of the job).
        let record = format!("remind:{}:{n}", request.card_key);
        self.store
            .claim(&record, self.now, REMINDER_RECORD_MS, REMINDER_RECORD_MS)
            .await?;
        let buzzed = self.store.kept(&record).await?;
        let mut reached = 0;
        for (index, card_key) in review_cards.iter().enumerate() {
            let review = self.card_or_bad_job(card_key).await?;
            let data = approval::ReviewData::of(&review).map_err(bad_job)?;
            // A reminder goes to the approvers whose vote is due (in a route, the current
            // step's who have not voted; not one who handed theirs on), on their current card.
            if !approval::handover::card_decides(&request_data, &data) {
                continue;
            }
            let approver = data.approver;
            let Some(message_id) = review.message_id.as_deref() else {
                continue;
            };
            let sent = match self
                .feishu
                .reply_message_in_chat(
                    &review.chat_id,
                    message_id,
                    &MessageContent::Text(text.clone()),
                    false,
                    &format!("remind:{}:{n}:{approver}", request.card_key),
                    self.deadline,
                )
                .await
            {
                Ok(sent) => sent,
                // Sent by an earlier run of this job (the uuid was used): reached, and its buzz
                // was kept below if it went out.
                Err(e) if e.code() == Some(UUID_CONFLICT) => {
                    reached += 1;
                    continue;
                }
                // A resigned approver or a deleted card must not stop the others' reminders.
                Err(e) if jobs::on_failure(&e, self.now) == FailureAction::Permanent => {
                    tracing::warn!(error = %e, "approver not reminded: Feishu refuses for good");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            reached += 1;
            let step = format!("buzz_{index}");
            if buzzed.contains_key(&step) {
                continue;
            }
            // The buzz is a courtesy: without `im:message.urgent` (or any other refusal) the
            // reminder message stands alone.
            match self
                .feishu
                .urgent_app(
                    &sent.message_id,
                    std::slice::from_ref(&approver),
                    self.deadline,
                )
                .await
            {
                Ok(()) => {
                    self.store.keep(&record, &step, "1").await?;
                }
                Err(e) => tracing::info!(error = %e, "reminder sent without an in-app buzz"),
            }
        }
        Ok(reached)
    }

    /// The 转交 candidates of `approver` in a `transfer_to: {department: true}` step: the direct
    /// users of their first department (`department_ids`, contact API), them left out, at most
    /// `MAX_TRANSFER_CANDIDATES`. Without the permission (99991672, 41050; or no department, as
    /// when `contact:user.department:readonly` is missing) nobody: the card has no 转交, with a
    /// WARN. Any other failure of the look-up leaves this card without 转交 too (a WARN with the
    /// error): the vote is what the card is for, and the other approvers' cards must not wait.
    async fn department_candidates(&self, approver: &str) -> Result<Vec<String>, DeliverError> {
        use crate::feishu::contact::NO_PERMISSION_CODES;
        let denied = |code: i64| {
            crate::telemetry::approver_lookup_denied();
            tracing::warn!(
                code,
                "cannot read an approver's department for 转交 candidates: grant \
                 contact:contact.base:readonly and contact:user.department:readonly, and put the \
                 department in the app's contact data scope; the card has no 转交"
            );
            Ok(Vec::new())
        };
        if !crate::cards::text::FeishuId::OpenId.is_valid(approver) {
            return Ok(Vec::new());
        }
        let failed = |e: FeishuError| {
            tracing::warn!(error = %e, "转交 candidates not looked up; the card has no 转交");
            Ok(Vec::new())
        };
        let user = match self.feishu.get_user(approver, self.deadline).await {
            Ok(user) => user,
            Err(FeishuError::Api { code, .. }) if NO_PERMISSION_CODES.contains(&code) => {
                return denied(code)
            }
            Err(e) => return failed(e),
        };
        let Some(department) = user.department_ids.first() else {
            tracing::warn!(
                "an approver has no department in the contact data (without \
                 contact:user.department:readonly every user shows this); the card has no 转交"
            );
            return Ok(Vec::new());
        };
        let page = u32::try_from(approval::definition::MAX_TRANSFER_CANDIDATES + 1).unwrap_or(21);
        let users = match self
            .feishu
            .department_users(department, page, self.deadline)
            .await
        {
            Ok(users) => users,
            Err(FeishuError::Api { code, .. }) if NO_PERMISSION_CODES.contains(&code) => {
                return denied(code)
            }
            Err(e) => return failed(e),
        };
        Ok(users
            .into_iter()
            .filter_map(|u| u.open_id)
            .filter(|id| id != approver && crate::cards::text::FeishuId::OpenId.is_valid(id))
            .take(approval::definition::MAX_TRANSFER_CANDIDATES)
            .collect())
    }

    /// The definition a request was filed with (its pinned version).
    async fn definition_of(
        &self,
        request: &crate::store::CardState,
    ) -> Result<std::sync::Arc<approval::definition::Definition>, DeliverError> {
        let status = approval::status_of(request).map_err(bad_job)?;
        let data = ApprovalData::from_value(&request.data).map_err(bad_job)?;
        let kind = data.request_kind_of(status).map_err(bad_job)?;
        Ok(self
            .catalog(&[request])
            .await?
            .resolve(kind, data.definition))
    }

    /// A definition's reminders ran out and the request still waits: its `then: {escalate}`
    /// target joins the waiting step (`approval::handover::escalate`), recorded in the trail and
    /// written with the notify job that sends the target their card (one write; a retry finds
    /// the target added and stops). `{leader: true}`: each silent approver's leader from the
    /// contact API (a missing permission leaves that one out, with a WARN; any other contact
    /// failure retries the job).
    async fn run_escalate(&self, job: &Job) -> Result<&'static str, DeliverError> {
        let step = job
            .payload
            .get("step")
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| DeliverError::BadJob(format!("escalate {:?}", job.payload)))?;
        // The silence is the one the reminders were about: the same step, the first round, and
        // its approvers resolved and sent their cards (else the escalation would stand in for
        // approvers never asked: retried until the notify job got through).
        let still_silent = |data: &ApprovalData| -> Result<bool, DeliverError> {
            if data.round != 0 || approval::waiting_step(data) != step {
                return Ok(false);
            }
            if data.approvers.is_empty()
                || data.approvers.iter().any(|a| !data.notified.contains(a))
            {
                return Err(
                    StoreError::Conflict("the step's cards are not sent yet".into()).into(),
                );
            }
            Ok(true)
        };
        let request = self.card_or_bad_job(&job.card_key).await?;
        if !approval::status_of(&request).map_err(bad_job)?.is_waiting() {
            return Ok("request no longer waiting");
        }
        let Some(target) = self
            .definition_of(&request)
            .await?
            .remind
            .as_ref()
            .and_then(|r| r.escalate.clone())
        else {
            return Ok("the definition does not escalate");
        };
        let data = ApprovalData::from_value(&request.data).map_err(bad_job)?;
        if !still_silent(&data)? {
            return Ok("the step was decided (or the request returned) since the last reminder");
        }
        let plan = match target {
            approval::definition::Escalate::OpenIds { open_ids } => {
                approval::handover::EscalationPlan::Everyone(open_ids)
            }
            approval::definition::Escalate::Leader { .. } => {
                let mut pairs = Vec::new();
                for approver in approval::handover::silent(&data) {
                    if !crate::cards::text::FeishuId::OpenId.is_valid(&approver) {
                        continue;
                    }
                    let answer = self.feishu.get_user(&approver, self.deadline).await;
                    match Leader::of(&approver, answer)? {
                        Leader::Found(leader) => pairs.push((approver, leader)),
                        Leader::NoPermission { code } => {
                            crate::telemetry::approver_lookup_denied();
                            tracing::warn!(
                                code,
                                "cannot read a silent approver's leader for escalation: grant \
                                 contact:user.department:readonly and the contact data scope; \
                                 that approver is still awaited"
                            );
                        }
                        Leader::None => {}
                    }
                }
                approval::handover::EscalationPlan::PerApprover(pairs)
            }
        };
        for _ in 0..MAX_RECORD_ATTEMPTS {
            let request = self.card_or_bad_job(&job.card_key).await?;
            if !approval::status_of(&request).map_err(bad_job)?.is_waiting() {
                return Ok("request no longer waiting");
            }
            let mut data = ApprovalData::from_value(&request.data).map_err(bad_job)?;
            if !still_silent(&data)? {
                return Ok("the step was decided since the last reminder");
            }
            if !approval::handover::escalate(&mut data, &plan, &request.requester_open_id, self.now)
            {
                return Ok("nobody new to escalate to");
            }
            let mut next = request.clone();
            next.data = data.to_value();
            next.updated_at = self.now;
            let followups: Vec<_> = [
                approval::Timer::NotifyAdded(data.added),
                approval::Timer::RefreshAll,
            ]
            .into_iter()
            .map(|timer| {
                jobs::scheduled_job(
                    &request.card_key,
                    approval::Scheduled {
                        timer,
                        at: self.now,
                    },
                )
            })
            .collect();
            match self.store.update_card_and_enqueue(&next, &followups).await {
                Ok(_) => return Ok("escalated"),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!("request {} kept changing", job.card_key)).into())
    }

    fn remind_interval_ms(&self) -> i64 {
        i64::try_from(crate::config::REMIND_INTERVAL.as_millis()).unwrap_or(i64::MAX)
    }

    /// Tells the requester of a decided request (p2p by open_id; one message through its uuid).
    async fn run_notify_requester(&self, job: &Job) -> Result<&'static str, DeliverError> {
        let request = self.card_or_bad_job(&job.card_key).await?;
        let catalog = self.catalog(&[&request]).await?;
        // The `n`th 退回 (its own job), else the decision.
        let returned = job
            .payload
            .get("returned")
            .and_then(serde_json::Value::as_u64);
        let (text, key) = match returned {
            Some(n) => (
                approval::views::returned_text(&request, &catalog, self.time_zone)
                    .map_err(bad_job)?,
                format!("returned:{}:{n}", request.card_key),
            ),
            None => (
                approval::views::decision_text(&request, &catalog, self.time_zone)
                    .map_err(bad_job)?,
                format!("decided:{}", request.card_key),
            ),
        };
        self.feishu
            .send_message(
                &ReceiveId::OpenId(request.requester_open_id.clone()),
                &MessageContent::Text(text),
                &key,
                self.deadline,
            )
            .await?;
        Ok("requester told")
    }

    async fn card_or_bad_job(
        &self,
        card_key: &str,
    ) -> Result<crate::store::CardState, DeliverError> {
        self.store
            .get_card(card_key)
            .await?
            .ok_or_else(|| DeliverError::BadJob(format!("no card state for {card_key}")))
    }

    /// The plan of a refresh: the card as it renders now (an approver's card from its request).
    async fn plan_refresh(
        &self,
        state: &crate::store::CardState,
    ) -> Result<jobs::JobPlan, DeliverError> {
        let request = match followup::request_of(state) {
            Some(request_key) => Some(self.card_or_bad_job(&request_key).await?),
            None => None,
        };
        let mut states = vec![state];
        states.extend(request.as_ref());
        let catalog = self.catalog(&states).await?;
        let step = followup::refresh_step(state, request.as_ref(), &catalog, self.time_zone)
            .map_err(bad_job)?;
        let mut plan = jobs::plan_redelivery(&step.next, step.card, self.now)
            .map_err(|e| DeliverError::BadJob(e.to_string()))?;
        if step.changed && plan.state_update.is_none() {
            plan.state_update = Some(step.next);
        }
        Ok(plan)
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
            let plan = match JobKind::from(&job.kind) {
                JobKind::Refresh => self.plan_refresh(&state).await?,
                _ => {
                    let catalog = self.catalog(&[&state]).await?;
                    jobs::plan_job(job, &state, now, &catalog, self.time_zone)
                        .map_err(|e| DeliverError::BadJob(e.to_string()))?
                }
            };
            // A transition that ends the request (the tutorial's simulated decision) also puts
            // its decision event, in the same write.
            let followups: Vec<_> = match &plan.state_update {
                Some(next) => plan
                    .followups
                    .iter()
                    .cloned()
                    .chain(jobs::decision_event_job(&state, next))
                    .collect(),
                None => Vec::new(),
            };
            let current = match &plan.state_update {
                Some(next) if !followups.is_empty() => {
                    store.update_card_and_enqueue(next, &followups).await?
                }
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
                            sequence,
                        );
                        match op
                            .send(feishu, &card_id, &CardWrite::new(sequence, &key), deadline)
                            .await
                        {
                            Ok(()) => {}
                            // This very write (its uuid is unique to the job run, the call and its
                            // sequence) was applied before: its answer was lost and the client
                            // sent it again. Feishu runs a uuid's write only once and refuses the
                            // repeat with 200770 (`cards-and-cardkit.md` §6); whether it may
                            // instead replay the first answer is unconfirmed, and both mean done.
                            Err(e) if e.code() == Some(UUID_CONFLICT) => {
                                tracing::info!(
                                    index,
                                    sequence,
                                    "CardKit write already applied (uuid conflict): done"
                                );
                            }
                            Err(e) => return Err(e.into()),
                        }
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

/// Who filing found to decide a request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
    Approvers(Vec<String>),
    Nobody(NoApprover),
}

/// 待我审批 reads at most this many of an approver's cards to find the waiting ones.
const PENDING_SCAN: usize = 50;

/// A request's record of its approvers' cards is re-read and retried this many times.
const MAX_RECORD_ATTEMPTS: usize = 5;

fn bad_job(error: approval::DomainError) -> DeliverError {
    DeliverError::BadJob(error.to_string())
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
