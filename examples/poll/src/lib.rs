//! A poll bot on feishu-kit alone. `poll Lunch? | Noodles | Rice` (or `投票 …`) gets a poll card,
//! a CardKit entity: a button per option, one vote per user (another click moves it), and Close
//! for the poll's creator. Three handlers, one Lambda each: [`Poll::on_event`] (event URL),
//! [`Poll::on_click`] (card callback URL) and [`Poll::on_tally`] (the table's stream).
//!
//! Feishu refuses CardKit writes while a click is being answered (200810), so a click only counts
//! the vote and answers with a toast; the stream record of that write then invokes `on_tally`,
//! which writes the tally to the card entity. The README (below) walks through a vote.
#![doc = include_str!("../README.md")]

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use feishu_kit::api::{CardWrite, Clock, Deadline, FeishuApi, MessageContent};
use feishu_kit::cards::{text, CallbackAnswer, Toast, ToastKind};
use feishu_kit::lambda::function_url::{self as url, claim_lease_ms, error_response};
use feishu_kit::store::{
    self, stream, Abandon, CardState, CardStore, DedupStore, Finish, Kept, Once,
};
use feishu_kit::webhook::{CardClick, Inbound, MessageReceive};
use lambda_http::{http::StatusCode, Body, Request, Response};
use serde_json::{json, Value};

/// Feishu wants an answer within 3 s: the work stops before.
const BUDGET: Duration = Duration::from_millis(2_500);

/// How the work on a claimed delivery ends ([`feishu_kit::store::once`]).
type Work<T> = Result<Finish<T>, Abandon<String>>;

/// A poll as its card state keeps it in `data` (the state's `status` is `open` or `closed`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PollData {
    pub question: String,
    pub options: Vec<String>,
    /// Voter open_id → the option they voted for: one vote per user.
    pub votes: BTreeMap<String, usize>,
}

/// `poll <question> | <option> | …` or `投票 …` with 2 to 10 options, the texts capped. Words
/// such as `@_user_1` (how a group message carries its @bot) are skipped.
pub fn parse_command(message: &str) -> Option<PollData> {
    let words: Vec<&str> = message.split_whitespace().filter(|w| !w.starts_with("@_")).collect();
    let (command, rest) = words.split_first()?;
    let rest = rest.join(" ");
    let mut parts = rest.split('|').map(str::trim).filter(|part| !part.is_empty());
    let question = text::plain(parts.next()?, 100);
    let options: Vec<String> = parts.map(|option| text::plain(option, 40)).collect();
    let ok = ["poll", "投票"].contains(command) && (2..=10).contains(&options.len());
    ok.then_some(PollData { question, options, votes: BTreeMap::new() })
}

/// The card JSON 2.0: question, tally and, while open, a button per option and Close. User text
/// goes in `plain_text`, or escaped in markdown.
pub fn render(poll: &PollData, open: bool) -> Value {
    let plain = |content: &str| json!({"tag": "plain_text", "content": text::plain(content, 100)});
    let button = |id: String, label: &str, value: Value| {
        json!({"tag": "button", "element_id": id, "type": "default", "text": plain(label),
               "behaviors": [{"type": "callback", "value": value}]})
    };
    let (mut tally, mut buttons) = (vec![], vec![]);
    for (i, option) in poll.options.iter().enumerate() {
        let votes = poll.votes.values().filter(|&&vote| vote == i).count();
        tally.push(format!("{}: {votes}", text::escape_markdown(option, 40)));
        buttons.push(button(format!("vote_{i}"), option, json!({"vote": i})));
    }
    buttons.push(button("close".into(), "结束 Close", json!({"close": true})));
    let status = format!("{} votes · {}", poll.votes.len(), if open { "open" } else { "closed" });
    let mut elements = vec![
        json!({"tag": "markdown", "element_id": "tally", "content": tally.join("\n")}),
        json!({"tag": "div", "element_id": "status", "text": plain(&status)}),
    ];
    elements.extend(buttons.into_iter().filter(|_| open));
    let header =
        json!({"title": plain(&poll.question), "template": if open { "blue" } else { "grey" }});
    json!({"schema": "2.0", "config": {"update_multi": true}, "header": header,
           "body": {"elements": elements}})
}

/// A click's answer: a toast; the click is done.
fn toast(kind: ToastKind, zh: &str, en: &str) -> Work<CallbackAnswer> {
    Ok(Finish::Done(CallbackAnswer::toast_only(Toast::new(kind, zh, en))))
}

/// The bot, built once per Lambda container, generic over the kit's store and Open API ports.
pub struct Poll<S, F> {
    pub store: Arc<S>,
    pub feishu: Arc<F>,
    pub webhook: feishu_kit::config::WebhookConfig,
    pub clock: Arc<dyn Clock>,
}

impl<S: DedupStore + CardStore, F: FeishuApi> Poll<S, F> {
    /// Runs `work(resumed)` once per Feishu delivery `key` ([`store::once`]): `None` for a redelivery.
    async fn once<T, W: Future<Output = Work<T>>>(
        &self,
        key: &str,
        work: impl FnOnce(bool) -> W,
    ) -> Option<Result<T, String>> {
        let (now, ttl) = (self.clock.now_millis(), self.webhook.dedup_ttl.as_millis() as i64);
        match store::once(&*self.store, key, now, claim_lease_ms(BUDGET), ttl, work).await {
            Ok(Once::Duplicate(_)) => None,
            Ok(Once::Ran(done)) => Some(Ok(done)),
            Ok(Once::Abandoned(error)) => Some(Err(error)),
            Err(e) => Some(Err(e.to_string())),
        }
    }

    /// The event subscription URL: a poll command (`im.message.receive_v1`) gets a poll card.
    pub async fn on_event(&self, request: Request) -> Response<Body> {
        let message = match url::verify_or_answer(&self.webhook, &request, self.clock.now_millis())
        {
            Ok(Inbound::MessageReceive(message)) => message,
            Ok(_) => return url::json_response(StatusCode::OK, "{}".into()),
            Err(answer) => return *answer,
        };
        let text = message.event.message.content.text.as_deref().unwrap_or("");
        let Some(poll) = parse_command(text) else {
            return url::json_response(StatusCode::OK, "{}".into());
        };
        let key = &message.event.message.message_id;
        let sent = self.once(key, |resumed| self.send_poll(&message, poll, resumed)).await;
        let Some(Err(error)) = sent else {
            return url::json_response(StatusCode::OK, "{}".into());
        };
        // A 5xx makes Feishu deliver the message again, and the retry resumes what was kept.
        tracing::warn!(%error, "poll not sent");
        error_response(StatusCode::SERVICE_UNAVAILABLE, "retry")
    }

    /// Creates the card entity, replies with it, then stores the poll under the card's message.
    /// Each step's outcome is kept under the delivery's key, so a retry after a crash reuses it.
    async fn send_poll(&self, message: &MessageReceive, poll: PollData, resumed: bool) -> Work<()> {
        let (key, deadline) = (&message.event.message.message_id, Deadline::after(BUDGET));
        let keep = |e: &dyn std::fmt::Display| Abandon::Keep(e.to_string());
        // Only a resumed attempt has steps to skip: the first one reads nothing.
        let kept =
            if resumed { self.store.kept(key).await.map_err(|e| keep(&e))? } else { Kept::new() };
        let card = render(&poll, true);
        let created = self.feishu.create_card(&card, deadline);
        let card_id = store::step(&*self.store, key, &kept, "card_id", created)
            .await
            .map_err(|e| keep(&e))?;
        let content = MessageContent::CardEntity { card_id: card_id.clone() };
        let reply = self.feishu.reply_message(key, &content, false, key, deadline);
        let sent = async { reply.await.map(|sent| sent.message_id) };
        let message_id = store::step(&*self.store, key, &kept, "message_id", sent)
            .await
            .map_err(|e| keep(&e))?;
        let (event, now) = (&message.event, self.clock.now_millis());
        let state = CardState {
            chat_id: event.message.chat_id.clone(),
            requester_open_id: event.sender.sender_id.open_id.clone().unwrap_or_default(),
            source_message_id: Some(key.clone()),
            message_id: Some(message_id.clone()),
            card_id: Some(card_id),
            data: json!(poll),
            ..CardState::new(message_id, "poll", "open", now)
        };
        match self.store.create_card(&state).await {
            Ok(_) | Err(store::StoreError::Conflict(_)) => Ok(Finish::Done(())),
            Err(e) => Err(keep(&e)),
        }
    }

    /// The card callback URL (`card.action.trigger`): a vote or Close, counted once per click and
    /// answered with a toast; a re-delivery of the click answers `{}`.
    pub async fn on_click(&self, request: Request) -> Response<Body> {
        let inbound = url::verify_or_answer(&self.webhook, &request, self.clock.now_millis());
        let click = match inbound.map(|inbound| inbound.card_click()) {
            Ok(Some(click)) => click,
            Ok(None) => return error_response(StatusCode::BAD_REQUEST, "not a card callback"),
            Err(answer) => return *answer,
        };
        let voted =
            tokio::time::timeout(BUDGET, self.once(&click.dedup_key, |_| self.vote(&click)));
        let answer = match voted.await {
            Ok(None) => CallbackAnswer::default(),
            Ok(Some(Ok(answer))) => answer,
            _ => CallbackAnswer::toast_only(Toast::new(ToastKind::Error, "请重试", "Try again")),
        };
        url::callback_response(click.style, &answer)
    }

    /// Reads the poll, decides, and writes it back if its version is unchanged (else reads again).
    /// A failure before the write is `Release`d: nothing changed, the click may be tried again.
    async fn vote(&self, click: &CardClick) -> Work<CallbackAnswer> {
        let (vote, close) = (click.value["vote"].as_u64(), click.value["close"] == true);
        let (Some(key), Some(voter)) = (&click.open_message_id, &click.operator_open_id) else {
            return toast(ToastKind::Error, "无法识别", "Unknown click");
        };
        let release = |e: &dyn std::fmt::Display| Abandon::Release(e.to_string());
        for _ in 0..3 {
            // No state yet (a click a moment after the card was sent): the clicker tries again.
            let state = self.store.get_card(key).await.map_err(|e| release(&e))?;
            let mut state = state.ok_or_else(|| release(&"no such poll"))?;
            let mut poll: PollData = serde_json::from_value(state.data).map_err(|e| release(&e))?;
            let (zh, en) = match vote.map(|option| option as usize) {
                _ if state.status == "closed" => {
                    return toast(ToastKind::Info, "投票已结束", "Poll closed")
                }
                Some(option) if option < poll.options.len() => {
                    poll.votes.insert(voter.clone(), option);
                    ("已投票", "Vote counted")
                }
                None if close && *voter == state.requester_open_id => {
                    state.status = "closed".into();
                    ("投票已结束", "Poll closed")
                }
                None if close => {
                    return toast(ToastKind::Warning, "仅发起人可结束", "Creator only")
                }
                _ => return toast(ToastKind::Error, "无法识别", "Unknown click"),
            };
            (state.data, state.updated_at) = (json!(poll), self.clock.now_millis());
            match self.store.update_card(&state).await {
                Ok(_) => return toast(ToastKind::Success, zh, en),
                Err(store::StoreError::Conflict(_)) => continue,
                Err(e) => return Err(release(&e)),
            }
        }
        Err(release(&"the poll kept changing"))
    }

    /// The table's stream (a batch as Lambda sends it): each poll whose state changed gets its
    /// tally written to its card entity through CardKit. `Err` makes Lambda retry the batch.
    pub async fn on_tally(&self, batch: Value) -> Result<(), String> {
        let batch: stream::StreamEvent =
            serde_json::from_value(batch).map_err(|e| e.to_string())?;
        for key in stream::changed_cards(&batch.records) {
            let state =
                self.store.get_card(&key).await.map_err(|e| e.to_string())?.ok_or("gone")?;
            let poll: PollData = serde_json::from_value(state.data).map_err(|e| e.to_string())?;
            // The state's version is the CardKit sequence: a later state always wins, and this
            // function writes nothing (`CardStore::next_sequence` would write the state item, whose
            // stream record would invoke it again).
            let sequence = i32::try_from(state.version).map_err(|e| e.to_string())?;
            let write = CardWrite::new(sequence, &format!("{key}:{sequence}"));
            let (card, card_id) =
                (render(&poll, state.status == "open"), state.card_id.ok_or("no entity")?);
            match self.feishu.update_card(&card_id, &card, &write, Deadline::after(BUDGET)).await {
                Err(e) if e.is_retryable() => return Err(e.to_string()),
                // 300317: this version, or a later one, is shown already; the rest can never pass.
                Err(e) => tracing::warn!(error = %e, key, "tally not written"),
                Ok(()) => {}
            }
        }
        Ok(())
    }
}
