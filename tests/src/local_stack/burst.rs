//! A burst against a running local stack: many users send `审批` at the same moment, then many click
//! 请假 at the same moment, all through the simulator's control API (so it works against `make run`
//! in another process). The report holds what Feishu would see: every answer's status and time, the
//! messages in each chat, the busiest windows of Open API calls, 429s, and how long until the last
//! card and the last approval.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::Serialize;
use serde_json::{json, Value};

use super::demo::{button_value, COMMAND, LEAVE_APPROVED, LEAVE_BUTTON};
use crate::simulator::{CallRates, SimUser};

/// Feishu counts an answer after 3 s as a failure and delivers again.
pub const ANSWER_DEADLINE_MS: u64 = 3_000;

/// What to send.
#[derive(Debug, Clone)]
pub struct BurstPlan {
    /// Users who each send `审批` in their p2p chat, all at once.
    pub users: usize,
    /// How many of them then click 请假, all at once (at most `users`).
    pub clicks: usize,
    /// How long to wait for every card, and then for every approval.
    pub settle: Duration,
    /// Messages from other users sent first, a few at a time, and not counted: the first request
    /// of each function instance and DynamoDB Local's JIT are not what a burst measures.
    pub warm_up: usize,
}

/// Answer times of one kind of push, in ms.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Answers {
    pub sent: usize,
    /// Answered 200 within [`ANSWER_DEADLINE_MS`].
    pub ok_in_time: usize,
    /// Not 200, or later than the deadline, or no answer (status and error of the first few).
    pub failed: Vec<String>,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
}

impl Answers {
    fn of(deliveries: &[Value]) -> Self {
        let mut times: Vec<f64> = Vec::new();
        let mut out = Self {
            sent: deliveries.len(),
            ..Self::default()
        };
        for d in deliveries {
            let elapsed = d["elapsed_ms"].as_u64().unwrap_or(u64::MAX);
            times.push(elapsed as f64);
            if d["status"] == 200 && elapsed <= ANSWER_DEADLINE_MS {
                out.ok_in_time += 1;
            } else if out.failed.len() < 5 {
                out.failed.push(format!(
                    "status {} after {elapsed} ms ({})",
                    d["status"], d["error"]
                ));
            }
        }
        out.p50_ms = percentile(&mut times, 50.0) as u64;
        out.p99_ms = percentile(&mut times, 99.0) as u64;
        out.max_ms = percentile(&mut times, 100.0) as u64;
        out
    }

    /// Every push answered 200 in time.
    pub fn all_in_time(&self) -> bool {
        self.ok_in_time == self.sent
    }
}

/// What a burst did.
#[derive(Debug, Clone, Serialize)]
pub struct BurstReport {
    pub users: usize,
    pub messages: Answers,
    /// Chats with exactly one text and one card from the bot.
    pub chats_exact: usize,
    /// Chats that got something else, with what they got (the first few).
    pub chats_wrong: Vec<String>,
    /// From the first `审批` sent until the last card appeared in its chat.
    pub last_card_ms: Option<u64>,
    pub clicks: Answers,
    /// Clicks the plan asked for that could not be made (no card, or no 请假 button on it).
    pub clicks_missing: usize,
    /// Clicked cards that reached 请假通过.
    pub cards_approved: usize,
    /// From the first click until the last clicked card showed 请假通过.
    pub last_approval_ms: Option<u64>,
    /// The busiest windows of the Open API calls during the burst, and 429s (code 99991400).
    pub rates: CallRates,
    /// Open API calls during the burst (tenant token calls excluded).
    pub open_api_calls: usize,
}

impl BurstReport {
    /// Each way the burst fell short of Feishu's rules and the bar, in words.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.messages.all_in_time() {
            out.push(format!(
                "{} of {} events not answered 200 within 3 s: {:?}",
                self.messages.sent - self.messages.ok_in_time,
                self.messages.sent,
                self.messages.failed
            ));
        }
        if self.chats_exact != self.users {
            out.push(format!(
                "{} of {} chats without exactly 1 text + 1 card: {:?}",
                self.users - self.chats_exact,
                self.users,
                self.chats_wrong
            ));
        }
        if !self.clicks.all_in_time() {
            out.push(format!(
                "{} of {} clicks not answered 200 within 3 s: {:?}",
                self.clicks.sent - self.clicks.ok_in_time,
                self.clicks.sent,
                self.clicks.failed
            ));
        }
        if self.clicks_missing > 0 {
            out.push(format!(
                "{} clicks could not be made: no card with a {LEAVE_BUTTON} button",
                self.clicks_missing
            ));
        }
        if self.cards_approved != self.clicks.sent {
            out.push(format!(
                "{} of {} clicked cards never showed {LEAVE_APPROVED}",
                self.clicks.sent - self.cards_approved,
                self.clicks.sent
            ));
        }
        if self.rates.app_max_per_second > 50 {
            out.push(format!(
                "{} Open API calls in one second (Feishu: 50/s per app)",
                self.rates.app_max_per_second
            ));
        }
        if self.rates.api_max_per_minute > 1000 {
            out.push(format!(
                "{} calls to {:?} in one minute (Feishu: 1000/min per API)",
                self.rates.api_max_per_minute, self.rates.busiest_api
            ));
        }
        if self.rates.chat_max_per_second > 5 {
            out.push(format!(
                "{} messages into one chat in one second (Feishu: 5/s)",
                self.rates.chat_max_per_second
            ));
        }
        if self.rates.rate_limited > 0 {
            out.push(format!("{} calls answered 429", self.rates.rate_limited));
        }
        out
    }

    /// The figures in a few lines, for people.
    pub fn summary(&self) -> String {
        let ms = |v: Option<u64>| v.map_or("never".to_owned(), |v| format!("{v} ms"));
        format!(
            "{users} users send 审批 at once: {ok}/{users} answered 200 within 3 s (p50 {p50} ms, p99 {p99} ms, max {max} ms); \
             {exact}/{users} chats got exactly 1 text + 1 card, the last card after {last_card}\n\
             {clicks} click 请假 at once: {cok}/{clicks} answered 200 within 3 s (p50 {cp50} ms, p99 {cp99} ms, max {cmax} ms); \
             {approved}/{clicks} cards reached {LEAVE_APPROVED}, the last after {last_approval}\n\
             Open API: {calls} calls, busiest second {app}/50, busiest API minute {api}/1000, busiest chat second {chat}/5, {limited} answered 429",
            users = self.users,
            ok = self.messages.ok_in_time,
            p50 = self.messages.p50_ms,
            p99 = self.messages.p99_ms,
            max = self.messages.max_ms,
            exact = self.chats_exact,
            last_card = ms(self.last_card_ms),
            clicks = self.clicks.sent,
            cok = self.clicks.ok_in_time,
            cp50 = self.clicks.p50_ms,
            cp99 = self.clicks.p99_ms,
            cmax = self.clicks.max_ms,
            approved = self.cards_approved,
            last_approval = ms(self.last_approval_ms),
            calls = self.open_api_calls,
            app = self.rates.app_max_per_second,
            api = self.rates.api_max_per_minute,
            chat = self.rates.chat_max_per_second,
            limited = self.rates.rate_limited,
        )
    }
}

/// The `p`-th percentile (nearest rank) of `xs`; NaN when empty.
pub fn percentile(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    if xs.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * xs.len() as f64).ceil() as usize;
    xs[rank.clamp(1, xs.len()) - 1]
}

/// The simulator's control API (`/_sim/…`, see `simulator::control`) as a client, for a stack in
/// another process.
pub struct SimControl {
    http: reqwest::Client,
    base: String,
}

impl SimControl {
    /// A client for the simulator at `base` (its base URL, without `/_sim`).
    pub fn new(base: &str) -> Result<Self, String> {
        Ok(Self {
            http: reqwest::Client::builder()
                .build()
                .map_err(|e| e.to_string())?,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/_sim/{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{url}: {status} {body}"));
        }
        Ok(body)
    }

    /// `GET /_sim/<path>`; a non-2xx answer is an error.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// `POST /_sim/<path>` with a JSON body; a non-2xx answer is an error.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn now_ms(&self) -> Result<i64, String> {
        self.get("clock").await?["now_ms"]
            .as_i64()
            .ok_or_else(|| "clock: no now_ms".to_owned())
    }

    /// The messages of a chat, oldest first.
    pub async fn messages(&self, chat_id: &str) -> Result<Vec<Value>, String> {
        let list = self.get(&format!("chats/{chat_id}/messages")).await?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    /// A card as users see it now, in short text.
    pub async fn card_text(&self, message_id: &str) -> Result<String, String> {
        let card = self.get(&format!("messages/{message_id}/card")).await?;
        Ok(card["text"].as_str().unwrap_or_default().to_owned())
    }
}

fn from_bot(message: &Value) -> bool {
    message["sender"]["sender_type"] == "app"
}

/// Runs `plan` against the stack whose simulator is at `simulator` (its base URL) and whose
/// functions are at `event_url` and `card_url`.
pub async fn run(
    simulator: &str,
    event_url: &str,
    card_url: &str,
    plan: &BurstPlan,
) -> Result<BurstReport, String> {
    let sim = SimControl::new(simulator)?;
    if plan.warm_up > 0 {
        let warm = sim.post("users", json!({ "count": plan.warm_up })).await?;
        let warm: Vec<SimUser> =
            serde_json::from_value(warm["items"].clone()).map_err(|e| format!("users: {e}"))?;
        for group in warm.chunks(4) {
            join_all(group.iter().map(|u| {
                sim.post(
                    "user/message",
                    json!({"url": event_url, "text": COMMAND, "open_id": u.open_id}),
                )
            }))
            .await;
        }
        // Their replies may still be going out: let them, so they are not counted as the burst's.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let added = sim.post("users", json!({ "count": plan.users })).await?;
    let users: Vec<SimUser> =
        serde_json::from_value(added["items"].clone()).map_err(|e| format!("users: {e}"))?;
    let calls_before = sim.get("calls").await?["items"]
        .as_array()
        .map_or(0, Vec::len);

    // 1. Everyone sends 审批 at once.
    let started_ms = sim.now_ms().await?;
    let sends = users.iter().map(|u| {
        sim.post(
            "user/message",
            json!({"url": event_url, "text": COMMAND, "open_id": u.open_id}),
        )
    });
    let deliveries: Vec<Value> = join_all(sends)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let messages = Answers::of(&deliveries);

    // 2. Until every chat has its card (or the time is up); then count what each chat got.
    let deadline = Instant::now() + plan.settle;
    let mut cards: Vec<Option<(String, i64)>> = vec![None; users.len()];
    let (chats_exact, chats_wrong) = loop {
        let mut missing = 0;
        let mut chats_wrong = Vec::new();
        let mut chats_exact = 0;
        for (i, user) in users.iter().enumerate() {
            let from_bot: Vec<Value> = sim
                .messages(&user.p2p_chat_id)
                .await?
                .into_iter()
                .filter(from_bot)
                .collect();
            let texts = from_bot.iter().filter(|m| m["msg_type"] == "text").count();
            let card_list: Vec<&Value> = from_bot
                .iter()
                .filter(|m| m["msg_type"] == "interactive")
                .collect();
            if let Some(card) = card_list.first() {
                cards[i] = Some((
                    card["message_id"].as_str().unwrap_or_default().to_owned(),
                    card["create_time_ms"].as_i64().unwrap_or_default(),
                ));
            } else {
                missing += 1;
            }
            if texts == 1 && card_list.len() == 1 {
                chats_exact += 1;
            } else if chats_wrong.len() < 5 {
                chats_wrong.push(format!(
                    "{}: {texts} text(s), {} card(s)",
                    user.p2p_chat_id,
                    card_list.len()
                ));
            }
        }
        if (missing == 0 && chats_exact == users.len()) || Instant::now() > deadline {
            break (chats_exact, chats_wrong);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let last_card_ms = cards
        .iter()
        .map(|c| c.as_ref().map(|(_, at)| *at))
        .collect::<Option<Vec<i64>>>()
        .and_then(|ats| ats.into_iter().max())
        .map(|at| u64::try_from(at - started_ms).unwrap_or_default());

    // 3. The first `clicks` users click 请假 on their card at once.
    let mut clicked: Vec<(usize, String, Value)> = Vec::new();
    for (i, card) in cards.iter().enumerate().take(plan.clicks) {
        let Some((message_id, _)) = card else {
            continue;
        };
        let card = sim.get(&format!("messages/{message_id}/card")).await?;
        if let Some(value) = button_value(&card["card"], LEAVE_BUTTON) {
            clicked.push((i, message_id.clone(), value));
        }
    }
    let clicks_started_ms = sim.now_ms().await?;
    let posts = clicked.iter().map(|(i, message_id, value)| {
        sim.post(
            "user/click",
            json!({"url": card_url, "message_id": message_id, "value": value, "open_id": users[*i].open_id}),
        )
    });
    let click_deliveries: Vec<Value> = join_all(posts)
        .await
        .into_iter()
        .map(|r| r.map(|c| c["delivery"].clone()))
        .collect::<Result<_, _>>()?;
    let clicks = Answers::of(&click_deliveries);
    let clicks_missing = plan.clicks.min(users.len()) - clicked.len();

    // 4. Until every clicked card shows 请假通过.
    let deadline = Instant::now() + plan.settle;
    let mut approved_at: Vec<Option<i64>> = vec![None; clicked.len()];
    loop {
        for (slot, (_, message_id, _)) in approved_at.iter_mut().zip(&clicked) {
            if slot.is_none() && sim.card_text(message_id).await?.contains(LEAVE_APPROVED) {
                *slot = Some(sim.now_ms().await?);
            }
        }
        if approved_at.iter().all(Option::is_some) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let cards_approved = approved_at.iter().flatten().count();
    let last_approval_ms = (cards_approved == clicked.len() && !clicked.is_empty())
        .then(|| approved_at.iter().flatten().max().copied())
        .flatten()
        .map(|at| u64::try_from(at - clicks_started_ms).unwrap_or_default());

    let calls = sim.get("calls").await?["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let during: Vec<crate::simulator::ApiCall> = calls
        .into_iter()
        .skip(calls_before)
        .filter_map(|c| serde_json::from_value(c).ok())
        .collect();
    let rates = CallRates::of(&during);
    let open_api_calls = during.iter().filter(|c| !c.path.contains("/auth/")).count();
    Ok(BurstReport {
        users: users.len(),
        messages,
        chats_exact,
        chats_wrong,
        last_card_ms,
        clicks,
        clicks_missing,
        cards_approved,
        last_approval_ms,
        rates,
        open_api_calls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut xs = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&mut xs, 50.0), 3.0);
        assert_eq!(percentile(&mut xs, 99.0), 5.0);
        assert_eq!(percentile(&mut xs, 0.0), 1.0);
        assert!(percentile(&mut [], 50.0).is_nan());
    }

    #[test]
    fn answers_count_late_and_failed_pushes() {
        let deliveries = [
            json!({"status": 200, "elapsed_ms": 120}),
            json!({"status": 200, "elapsed_ms": 3_200}),
            json!({"status": 503, "elapsed_ms": 40}),
            json!({"status": null, "elapsed_ms": 3_001, "error": "timeout"}),
        ];
        let a = Answers::of(&deliveries);
        assert_eq!((a.sent, a.ok_in_time), (4, 1));
        assert_eq!(a.failed.len(), 3);
        assert!(!a.all_in_time());
        assert_eq!(a.max_ms, 3_200);
    }
}
