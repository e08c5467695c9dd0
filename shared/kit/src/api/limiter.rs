//! One rate limit for the whole app, across every Lambda instance of every function: before each
//! Open API call the client holds a permit of the app's 50 calls/s, of the API's 1000 calls/min
//! and, for a message send or reply, of the chat's 5 calls/s. Permits come from the table's
//! shared counters ([`RateStore`], one conditional write per take) and are spent locally.
//!
//! The local fast path: a take fetches a batch, and the calls after it pay no round trip until the
//! batch is spent or its hold ends. How long a batch may be held is what it costs in the shared
//! budget (see [`crate::store::rate`]: a permit counts in every window its hold can meet), so:
//! - **quiet** (the counters far under the limit): 5 app permits held 1 s, 5 per API held to the
//!   end of its 10 s tick (topped up for the last APIs this instance called), 2 chat permits
//!   held 1 s: an event's reply text, card entity and card reply cost one take of the app item
//!   and one of the chat item, made in parallel, so one round trip of latency on the event's
//!   first call and none on the others;
//! - **busy** (a quiet take would pass half the limit): 1–8 app permits, as many as the waiting
//!   callers and this instance's rate want and its pacer can send before the hold ends, held
//!   100–200 ms, so the app sustains about 38 calls/s (50 per 1.3 s of counters). Measured on
//!   DynamoDB Local: one busy instance, about 0.25 takes per call; two competing, about 0.3
//!   (half of them refusals, each of which says when to come back).
//!
//! A refused take waits for the time the store says it could fit (never a retry loop against the
//! table), and a call whose permit would come after its deadline fails at once with
//! [`NoPermit`]. If the table cannot be reached the call goes ahead (the local pacer still
//! shapes it, and Feishu's own 429s are still honoured): a store outage must not stop every reply.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::token::Clock;
use crate::store::{EpochMillis, PermitRequest, PermitTake, RateBudget, RateScope, RateStore};

/// Feishu's limits (`../shared/feishu/events-and-auth.md`, section 8).
pub const APP_CALLS_PER_SECOND: u32 = 50;
/// Each API's limit per app: 1000 calls a minute.
pub const API_CALLS_PER_MINUTE: u32 = 1_000;
/// Message sends and replies: 5 calls a second per chat (or receiver).
pub const CHAT_CALLS_PER_SECOND: u32 = 5;

/// Per-second budgets count in ticks of 100 ms, per-minute ones in ticks of 10 s (8 counters a
/// take: the app item stays small, so a take is one or two write units).
const SECOND_TICK_MS: i64 = 100;
const MINUTE_TICK_MS: i64 = 10_000;

/// A take waits at most this long for the table before the call goes ahead without it.
const TAKE_TIMEOUT: Duration = Duration::from_millis(800);
/// After a failed take, calls go ahead without takes for this long (no hammering a failing table).
const FAIL_OPEN_MS: i64 = 1_000;
/// Once a take saw the counters past the quiet ceiling, takes stay busy this long.
const BUSY_FOR_MS: i64 = 2_000;
/// An API this instance called within this long is topped up with a quiet app take.
const TOP_UP_WITHIN_MS: i64 = 60_000;
/// At most this many budgets topped up per take (the most recently called), so a take of an
/// updater that touched every CardKit API stays a short expression on a small item.
const MAX_TOP_UPS: usize = 3;
/// Chats remembered per process before the map starts over.
const MAX_CHATS: usize = 1_024;
/// Largest busy app take.
const BUSY_MAX_COUNT: u32 = 8;
/// How fast this process sends at most (its pacer): a busy take holds no more than that sends.
const LOCAL_CALLS_PER_SECOND: u32 = super::pacer::DEFAULT_PER_SECOND + super::pacer::DEFAULT_BURST;

/// How one kind of budget is taken when quiet and when busy.
#[derive(Debug, Clone, Copy)]
struct Terms {
    quiet_count: u32,
    quiet_hold_ticks: i64,
    /// Quiet takes only while every counter they touch stays at or under this.
    quiet_ceiling: u32,
    busy_hold_ticks: i64,
    /// Largest busy take (the app's size is decided per take, up to [`BUSY_MAX_COUNT`]).
    busy_max_count: u32,
}

const APP_TERMS: Terms = Terms {
    quiet_count: 5,
    quiet_hold_ticks: 10,
    quiet_ceiling: APP_CALLS_PER_SECOND / 2,
    busy_hold_ticks: 2,
    busy_max_count: BUSY_MAX_COUNT,
};

const API_TERMS: Terms = Terms {
    quiet_count: 5,
    quiet_hold_ticks: 1,
    quiet_ceiling: API_CALLS_PER_MINUTE,
    busy_hold_ticks: 1,
    busy_max_count: BUSY_MAX_COUNT,
};

const CHAT_TERMS: Terms = Terms {
    quiet_count: 2,
    quiet_hold_ticks: 10,
    quiet_ceiling: 3,
    busy_hold_ticks: 2,
    busy_max_count: 1,
};

/// One budget and how it is taken.
#[derive(Debug, Clone)]
struct Budget {
    rate: RateBudget,
    terms: Terms,
}

impl Budget {
    fn app() -> Self {
        Self {
            rate: RateBudget::new("app", APP_CALLS_PER_SECOND, 1_000, SECOND_TICK_MS),
            terms: APP_TERMS,
        }
    }

    fn api(api: &str) -> Self {
        Self {
            rate: RateBudget::new(
                format!("api:{api}"),
                API_CALLS_PER_MINUTE,
                60_000,
                MINUTE_TICK_MS,
            ),
            terms: API_TERMS,
        }
    }

    fn chat() -> Self {
        Self {
            rate: RateBudget::new("chat", CHAT_CALLS_PER_SECOND, 1_000, SECOND_TICK_MS),
            terms: CHAT_TERMS,
        }
    }

    fn request(&self, quiet: bool, busy_count: u32) -> PermitRequest {
        let t = self.terms;
        if quiet {
            PermitRequest::new(
                self.rate.clone(),
                t.quiet_count,
                t.quiet_hold_ticks,
                t.quiet_ceiling,
            )
        } else {
            PermitRequest::new(
                self.rate.clone(),
                busy_count.min(t.busy_max_count),
                t.busy_hold_ticks,
                self.rate.limit(),
            )
        }
    }

    /// Whether a counter at `peak` leaves no room for another quiet take.
    fn is_busy_at(&self, peak: u32) -> bool {
        peak.saturating_add(self.terms.quiet_count) > self.terms.quiet_ceiling
    }
}

/// Permits this instance holds of one budget.
#[derive(Debug, Clone, Copy, Default)]
struct Held {
    count: u32,
    /// Usable before this time (epoch ms).
    until: EpochMillis,
}

/// What this instance knows of one rate item.
#[derive(Debug, Default)]
struct ItemState {
    /// Batches held per budget, each with its own end.
    held: HashMap<String, Vec<Held>>,
    /// Budgets called recently, with when: a quiet take tops them up.
    wanted: HashMap<String, (Budget, EpochMillis)>,
    /// Takes are busy until then.
    busy_until: EpochMillis,
    /// Budgets a busy take was refused for, and the time before which none of theirs can fit
    /// (an API out of its minute must not hold back the calls of other APIs).
    blocked: HashMap<String, EpochMillis>,
    /// The table failed: calls go ahead without takes until then.
    open_until: EpochMillis,
}

impl ItemState {
    /// Usable permits of `budget` at `now`.
    fn count(&self, budget: &Budget, now: EpochMillis) -> u32 {
        self.held.get(budget.rate.name()).map_or(0, |batches| {
            batches
                .iter()
                .filter(|h| h.until > now)
                .map(|h| h.count)
                .sum()
        })
    }

    fn hold(&mut self, name: &str, batch: Held, now: EpochMillis) {
        let batches = self.held.entry(name.to_owned()).or_default();
        batches.retain(|h| h.count > 0 && h.until > now);
        batches.push(batch);
    }

    /// Spends one permit of each of `needs` if all are held, each from the batch ending first.
    fn spend(&mut self, needs: &[Budget], now: EpochMillis) -> bool {
        if !needs.iter().all(|b| self.count(b, now) > 0) {
            return false;
        }
        for b in needs {
            let first = self.held.get_mut(b.rate.name()).and_then(|batches| {
                batches
                    .iter_mut()
                    .filter(|h| h.count > 0 && h.until > now)
                    .min_by_key(|h| h.until)
            });
            if let Some(batch) = first {
                batch.count -= 1;
            }
        }
        true
    }
}

/// One rate item as this instance sees it.
#[derive(Debug)]
struct RateItem {
    scope: RateScope,
    state: tokio::sync::Mutex<ItemState>,
    /// Callers waiting for this item right now (sizes busy takes).
    waiting: AtomicU32,
}

impl RateItem {
    fn new(scope: RateScope) -> Self {
        Self {
            scope,
            state: tokio::sync::Mutex::new(ItemState::default()),
            waiting: AtomicU32::new(0),
        }
    }
}

/// What one call needs permits of.
#[derive(Debug, Clone, Copy)]
pub struct CallBudget<'a> {
    /// The API, e.g. `im.message.reply` ([`super::request::ApiRequest::api_name`]).
    pub api: &'a str,
    /// The chat (or receiver) of a message send or reply.
    pub chat: Option<&'a str>,
}

/// How long one acquire may take: the deadline of everything, and of waiting for refused permits.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    latest: Instant,
    wait_until: Instant,
}

/// No permit for the call before its deadline; nothing was sent. One could come after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoPermit {
    /// When a permit could come.
    pub retry_after: Duration,
}

/// The app-wide limiter of one client (one per process).
pub struct SharedLimiter {
    app_id: String,
    store: Arc<dyn RateStore>,
    clock: Arc<dyn Clock>,
    app: RateItem,
    chats: Mutex<HashMap<String, Arc<RateItem>>>,
    /// When this instance spent app permits in the last second (sizes busy takes).
    recent: Mutex<VecDeque<EpochMillis>>,
}

impl std::fmt::Debug for SharedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimiter")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl SharedLimiter {
    /// The limiter of `app_id`, counting in `store`'s shared items, with `clock` for the ticks.
    pub fn new(app_id: String, store: Arc<dyn RateStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            app_id,
            store,
            clock,
            app: RateItem::new(RateScope::App),
            chats: Mutex::new(HashMap::new()),
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits for a permit of every budget `call` needs, or fails at once with [`NoPermit`] when
    /// one could only come after `latest`.
    pub async fn acquire(&self, call: CallBudget<'_>, latest: Instant) -> Result<(), NoPermit> {
        self.acquire_within(call, latest, latest).await
    }

    /// [`SharedLimiter::acquire`], but a permit the table refuses now is waited for only until
    /// `wait_until` (≤ `latest`); the round trip of a take itself may run until `latest`. So a
    /// quiet bot's first call is never refused for the time its take took.
    pub async fn acquire_within(
        &self,
        call: CallBudget<'_>,
        latest: Instant,
        wait_until: Instant,
    ) -> Result<(), NoPermit> {
        let bounds = Bounds {
            latest,
            wait_until: wait_until.min(latest),
        };
        let app_needs = [Budget::app(), Budget::api(call.api)];
        let app = self.acquire_in(&self.app, &app_needs, bounds);
        let Some(chat) = call.chat else {
            return app.await;
        };
        let item = self.chat_item(chat);
        let chat_needs = [Budget::chat()];
        let (app, chat) = tokio::join!(app, self.acquire_in(&item, &chat_needs, bounds));
        app.and(chat)
    }

    fn chat_item(&self, chat: &str) -> Arc<RateItem> {
        let mut chats = self.chats.lock().unwrap_or_else(|e| e.into_inner());
        if chats.len() >= MAX_CHATS && !chats.contains_key(chat) {
            chats.clear();
        }
        chats
            .entry(chat.to_owned())
            .or_insert_with(|| Arc::new(RateItem::new(RateScope::Chat(chat.to_owned()))))
            .clone()
    }

    /// App permits this instance spent in the last second, counting this one.
    fn note_spent(&self, now: EpochMillis) -> u32 {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        while recent.front().is_some_and(|t| *t <= now - 1_000) {
            recent.pop_front();
        }
        recent.push_back(now);
        u32::try_from(recent.len()).unwrap_or(u32::MAX)
    }

    fn recent_rate(&self, now: EpochMillis) -> u32 {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let n = recent.iter().filter(|t| **t > now - 1_000).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    async fn acquire_in(
        &self,
        item: &RateItem,
        needs: &[Budget],
        bounds: Bounds,
    ) -> Result<(), NoPermit> {
        item.waiting.fetch_add(1, Ordering::Relaxed);
        let result = self.acquire_counted(item, needs, bounds).await;
        item.waiting.fetch_sub(1, Ordering::Relaxed);
        result
    }

    async fn acquire_counted(
        &self,
        item: &RateItem,
        needs: &[Budget],
        bounds: Bounds,
    ) -> Result<(), NoPermit> {
        let Bounds { latest, wait_until } = bounds;
        let tick = Duration::from_millis(SECOND_TICK_MS as u64);
        loop {
            let Ok(mut state) = tokio::time::timeout_at(latest, item.state.lock()).await else {
                return Err(NoPermit { retry_after: tick });
            };
            let now = self.clock.now_millis();
            for b in needs {
                state
                    .wanted
                    .insert(b.rate.name().to_owned(), (b.clone(), now));
            }
            if state.spend(needs, now) {
                if item.scope == RateScope::App {
                    self.note_spent(now);
                }
                return Ok(());
            }
            if state.open_until > now {
                return Ok(());
            }
            let blocked_until = needs
                .iter()
                .filter_map(|b| state.blocked.get(b.rate.name()))
                .max()
                .copied()
                .unwrap_or(now);
            if blocked_until > now {
                let wait = millis(blocked_until - now);
                if Instant::now() + wait > wait_until {
                    return Err(NoPermit { retry_after: wait });
                }
                // Others may look (and fail fast) while this one sleeps.
                drop(state);
                tokio::time::sleep(wait).await;
                continue;
            }
            let quiet = now >= state.busy_until;
            let requests = self.requests(item, &state, needs, quiet, now);
            let budget = TAKE_TIMEOUT.min(latest.saturating_duration_since(Instant::now()));
            let taken = tokio::time::timeout(
                budget,
                self.store
                    .take_permits(&self.app_id, &item.scope, &requests, now),
            )
            .await;
            match taken {
                Ok(Ok(PermitTake::Granted { peaks })) => {
                    tracing::debug!(scope = ?item.scope, quiet, takes = requests.len(), ?peaks, "rate permits taken");
                    for (r, peak) in requests.iter().zip(peaks) {
                        let batch = Held {
                            count: r.count(),
                            until: r.usable_until(now),
                        };
                        state.hold(r.budget().name(), batch, now);
                        let busy = state
                            .wanted
                            .get(r.budget().name())
                            .is_some_and(|(b, _)| b.is_busy_at(peak));
                        if busy {
                            state.busy_until = now + BUSY_FOR_MS;
                        }
                    }
                }
                Ok(Ok(PermitTake::Refused { retry_at, peaks })) => {
                    tracing::debug!(scope = ?item.scope, quiet, ?peaks, wait_ms = retry_at - now, "rate permits refused");
                    if quiet {
                        // Not quiet any more: at once, a short busy take.
                        state.busy_until = now + BUSY_FOR_MS;
                    } else {
                        // The budgets that did not fit (all of them, if a race hid which).
                        let full: Vec<&PermitRequest> = requests
                            .iter()
                            .zip(&peaks)
                            .filter(|(r, peak)| *peak + r.count() > r.ceiling())
                            .map(|(r, _)| r)
                            .collect();
                        let full = if full.is_empty() {
                            requests.iter().collect()
                        } else {
                            full
                        };
                        let until = retry_at.max(now + 1);
                        state.blocked.retain(|_, at| *at > now);
                        for r in full {
                            state.blocked.insert(r.budget().name().to_owned(), until);
                        }
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, scope = ?item.scope, "rate limiter unavailable; calling without a shared permit");
                    state.open_until = now + FAIL_OPEN_MS;
                    return Ok(());
                }
                Err(_) if Instant::now() >= latest => {
                    return Err(NoPermit { retry_after: tick });
                }
                Err(_) => {
                    tracing::warn!(scope = ?item.scope, "rate limiter timed out; calling without a shared permit");
                    state.open_until = now + FAIL_OPEN_MS;
                    return Ok(());
                }
            }
        }
    }

    /// The take for `needs` not held now; a quiet take also tops up the budgets this instance used
    /// in the last minute that hold less than a quiet batch, so the calls that follow (the rest
    /// of an event, the next event) need no take of their own.
    fn requests(
        &self,
        item: &RateItem,
        state: &ItemState,
        needs: &[Budget],
        quiet: bool,
        now: EpochMillis,
    ) -> Vec<PermitRequest> {
        let waiting = item.waiting.load(Ordering::Relaxed);
        // Enough for the waiting callers and about a hold's worth of this instance's rate, but no
        // more than the pacer lets it send before the hold ends (an unsent permit is wasted).
        let hold_ends =
            (now.div_euclid(SECOND_TICK_MS) + APP_TERMS.busy_hold_ticks) * SECOND_TICK_MS;
        let sendable = (hold_ends - now) * i64::from(LOCAL_CALLS_PER_SECOND) / 1_000;
        let busy_count = (waiting + self.recent_rate(now) / 5)
            .min(u32::try_from(sendable).unwrap_or(1))
            .clamp(1, BUSY_MAX_COUNT);
        let mut wanted: Vec<&Budget> = needs.iter().collect();
        if quiet {
            let mut recent: Vec<_> = state
                .wanted
                .values()
                .filter(|(b, at)| {
                    now - at < TOP_UP_WITHIN_MS
                        && !needs.iter().any(|n| n.rate.name() == b.rate.name())
                })
                .collect();
            recent.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
            wanted.extend(recent.into_iter().take(MAX_TOP_UPS).map(|(b, _)| b));
        }
        wanted
            .into_iter()
            .filter(|b| {
                let held = state.count(b, now);
                held == 0 || (quiet && held < b.terms.quiet_count)
            })
            .map(|b| b.request(quiet, busy_count))
            .collect()
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::RateStore;
    use std::sync::atomic::AtomicI64;

    /// A clock tests move by hand.
    #[derive(Default)]
    struct ManualClock(AtomicI64);

    impl Clock for ManualClock {
        fn now_millis(&self) -> EpochMillis {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// Counts takes on a MemoryStore.
    #[derive(Default)]
    struct CountingRates {
        inner: MemoryStore,
        takes: AtomicU32,
    }

    #[async_trait::async_trait]
    impl RateStore for CountingRates {
        async fn take_permits(
            &self,
            app_id: &str,
            scope: &RateScope,
            requests: &[PermitRequest],
            now: EpochMillis,
        ) -> crate::store::StoreResult<PermitTake> {
            self.takes.fetch_add(1, Ordering::SeqCst);
            self.inner.take_permits(app_id, scope, requests, now).await
        }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    const T0: EpochMillis = 1_800_000_000_000;

    fn limiter(clock: Arc<ManualClock>) -> (SharedLimiter, Arc<CountingRates>) {
        clock.0.store(T0, Ordering::SeqCst);
        let store = Arc::new(CountingRates::default());
        (
            SharedLimiter::new("cli_a".into(), store.clone(), clock),
            store,
        )
    }

    const REPLY: CallBudget<'static> = CallBudget {
        api: "im.message.reply",
        chat: Some("oc_1"),
    };
    const CREATE: CallBudget<'static> = CallBudget {
        api: "cardkit.card.create",
        chat: None,
    };

    #[tokio::test]
    async fn a_quiet_event_costs_one_take_per_item() {
        let clock = Arc::new(ManualClock::default());
        let (limiter, store) = limiter(clock.clone());
        // First event on a cold instance: text reply and card entity together, then the card.
        let (a, b) = tokio::join!(
            limiter.acquire(REPLY, far()),
            limiter.acquire(CREATE, far())
        );
        a.unwrap();
        b.unwrap();
        clock.0.fetch_add(300, Ordering::SeqCst);
        limiter.acquire(REPLY, far()).await.unwrap();
        let cold = store.takes.load(Ordering::SeqCst);
        // App item: one take for the reply's budgets, one for the card API; chat item: one.
        assert_eq!(cold, 3);
        // A later event on the warm instance, after every permit ran out: the quiet take of the
        // reply's budgets tops up the card API too, so one take of each item.
        clock.0.fetch_add(11_000, Ordering::SeqCst);
        let (a, b) = tokio::join!(
            limiter.acquire(REPLY, far()),
            limiter.acquire(CREATE, far())
        );
        a.unwrap();
        b.unwrap();
        clock.0.fetch_add(300, Ordering::SeqCst);
        limiter.acquire(REPLY, far()).await.unwrap();
        assert_eq!(store.takes.load(Ordering::SeqCst) - cold, 2);
    }

    #[tokio::test]
    async fn a_permit_past_the_deadline_fails_at_once() {
        let clock = Arc::new(ManualClock::default());
        let (limiter, _) = limiter(clock.clone());
        let chat_only = |i: usize| format!("oc_{i}");
        // Five sends to one chat fill its 5/s; the sixth cannot come within 50 ms.
        let mut granted = 0;
        for _ in 0..5 {
            let chat = chat_only(1);
            let call = CallBudget {
                api: "im.message.reply",
                chat: Some(&chat),
            };
            if limiter
                .acquire(call, Instant::now() + Duration::from_millis(50))
                .await
                .is_ok()
            {
                granted += 1;
            }
        }
        assert_eq!(granted, 5);
        let chat = chat_only(1);
        let call = CallBudget {
            api: "im.message.reply",
            chat: Some(&chat),
        };
        let started = Instant::now();
        let refused = limiter
            .acquire(call, Instant::now() + Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(40));
        assert!(
            refused.retry_after > Duration::from_millis(50),
            "{refused:?}"
        );
        assert!(refused.retry_after <= Duration::from_secs(2), "{refused:?}");
    }

    #[tokio::test]
    async fn an_api_out_of_its_minute_holds_back_only_its_own_calls() {
        let clock = Arc::new(ManualClock::default());
        let (limiter, store) = limiter(clock.clone());
        // Another instance spent the reply API's minute.
        let spent = PermitRequest::new(
            Budget::api("im.message.reply").rate,
            API_CALLS_PER_MINUTE,
            1,
            API_CALLS_PER_MINUTE,
        );
        store
            .take_permits("cli_a", &RateScope::App, &[spent], T0)
            .await
            .unwrap();
        let soon = || Instant::now() + Duration::from_millis(200);
        let refused = limiter.acquire(REPLY, soon()).await.unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(60), "{refused:?}");
        // Refused again at once, without asking the table.
        let takes = store.takes.load(Ordering::SeqCst);
        limiter.acquire(REPLY, soon()).await.unwrap_err();
        assert_eq!(store.takes.load(Ordering::SeqCst), takes);
        // The card API and the app's own budget are not held back.
        limiter.acquire(CREATE, soon()).await.unwrap();
    }

    /// A store that always fails.
    struct Down;

    #[async_trait::async_trait]
    impl RateStore for Down {
        async fn take_permits(
            &self,
            _: &str,
            _: &RateScope,
            _: &[PermitRequest],
            _: EpochMillis,
        ) -> crate::store::StoreResult<PermitTake> {
            Err(crate::store::StoreError::Unavailable("down".into()))
        }
    }

    #[tokio::test]
    async fn a_store_outage_lets_calls_through() {
        let limiter = SharedLimiter::new(
            "cli_a".into(),
            Arc::new(Down),
            Arc::new(ManualClock::default()),
        );
        for _ in 0..100 {
            limiter.acquire(REPLY, far()).await.unwrap();
        }
    }
}
