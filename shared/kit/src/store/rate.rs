//! The app-wide rate limit's shared counters (`rate#<app_id>#…` items): budgets, permit requests,
//! and the arithmetic both adapters share, so one conditional write decides a take.
//!
//! A budget "at most `limit` calls in any `window`" is counted in ticks. Counter `x` covers the
//! `span_ticks` ticks ending with tick `x`: a window plus one tick of network jitter never touches
//! more ticks than that. A take of `n` permits at tick `j` that may be used until the end of tick
//! `j + hold - 1` adds `n` to every counter whose ticks meet `j ..= j + hold - 1`, and is granted
//! only if none of them passes the take's ceiling (at most the limit). So however many instances
//! take permits, and however long they hold them before using them, the calls sent in any window
//! never exceed the limit: a permit held longer only counts in more counters. Holding long is
//! what lets a quiet instance pay one round trip for several calls; holding briefly is what lets a
//! busy app use most of the limit.
//!
//! A counter is stored as the attribute `<budget>@<end>` (`end` = the epoch ms its last tick ends);
//! once `end` has passed no take can touch it again, so it is stale and the next take removes it.

use std::collections::BTreeMap;

use super::EpochMillis;

/// Which shared item a take counts in: the app's (its per-second and per-API budgets) or one chat's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateScope {
    /// The app's item: its per-second budget and its per-API budgets.
    App,
    /// A chat or a receiver (`oc_…`, `open_id:ou_…`), for Feishu's 5 QPS per chat / per user.
    Chat(String),
}

/// At most `limit` calls in any window, counted in ticks (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateBudget {
    name: String,
    limit: u32,
    tick_ms: i64,
    span_ticks: i64,
}

impl RateBudget {
    /// `limit` calls in any `window_ms`, in ticks of `tick_ms` (≥ 1); its counters are stored
    /// under `name` (`app`, `api:im.message.reply`, `chat`), which must not contain `@`.
    pub fn new(name: impl Into<String>, limit: u32, window_ms: i64, tick_ms: i64) -> Self {
        let tick_ms = tick_ms.max(1);
        let window_ms = window_ms.max(1);
        // Any interval of window + one tick touches at most ceil((window + tick) / tick) + 1 ticks.
        let span_ticks = (window_ms + tick_ms + tick_ms - 1) / tick_ms + 1;
        Self {
            name: name.into().replace('@', "_"),
            limit: limit.max(1),
            tick_ms,
            span_ticks,
        }
    }

    /// The name its counters are stored under (`@` replaced by `_`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// At most this many calls in any window (at least 1).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The tick length, in ms (at least 1).
    pub fn tick_ms(&self) -> i64 {
        self.tick_ms
    }

    /// How many ticks one counter covers.
    pub fn span_ticks(&self) -> i64 {
        self.span_ticks
    }

    /// The tick `at` falls in.
    pub fn tick(&self, at: EpochMillis) -> i64 {
        at.div_euclid(self.tick_ms)
    }

    /// The stored attribute of counter `x`.
    pub fn counter_name(&self, x: i64) -> String {
        format!("{}@{}", self.name, (x + 1).saturating_mul(self.tick_ms))
    }
}

/// `count` permits of one budget, usable for `hold_ticks` ticks, granted only while every counter
/// they touch stays at or under `ceiling`. Built clamped, so it can always be granted on an empty
/// item: `1 ≤ count ≤ ceiling ≤ limit`, `hold_ticks ≥ 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitRequest {
    budget: RateBudget,
    count: u32,
    hold_ticks: i64,
    ceiling: u32,
}

impl PermitRequest {
    /// `count` permits of `budget`, usable for `hold_ticks` ticks, granted while every touched
    /// counter stays at or under `ceiling`; clamped to `1 ≤ count ≤ ceiling ≤ limit` and
    /// `1 ≤ hold_ticks ≤ 10000`.
    pub fn new(budget: RateBudget, count: u32, hold_ticks: i64, ceiling: u32) -> Self {
        let ceiling = ceiling.clamp(1, budget.limit);
        Self {
            count: count.clamp(1, ceiling),
            hold_ticks: hold_ticks.clamp(1, 10_000),
            ceiling,
            budget,
        }
    }

    /// The budget the permits count in.
    pub fn budget(&self) -> &RateBudget {
        &self.budget
    }

    /// How many permits (clamped).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// For how many ticks they may be used (clamped).
    pub fn hold_ticks(&self) -> i64 {
        self.hold_ticks
    }

    /// The highest a touched counter may be after the take (clamped).
    pub fn ceiling(&self) -> u32 {
        self.ceiling
    }

    /// The highest a touched counter may be before the take.
    pub fn max_before(&self) -> u32 {
        self.ceiling - self.count
    }

    /// The counters a take at `now` adds to.
    pub fn counters(&self, now: EpochMillis) -> std::ops::RangeInclusive<i64> {
        self.counters_at_tick(self.budget.tick(now))
    }

    fn counters_at_tick(&self, j: i64) -> std::ops::RangeInclusive<i64> {
        j..=j + self.hold_ticks - 1 + self.budget.span_ticks - 1
    }

    /// Until when (epoch ms, exclusive) permits taken at `now` may be sent.
    pub fn usable_until(&self, now: EpochMillis) -> EpochMillis {
        (self.budget.tick(now) + self.hold_ticks).saturating_mul(self.budget.tick_ms)
    }
}

/// What a take did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermitTake {
    /// Every request granted; `peaks[i]` is the highest counter request `i` touched, after the take.
    Granted {
        /// The highest counter each request touched, after the take.
        peaks: Vec<u32>,
    },
    /// Nothing granted: some counter would pass its ceiling. `retry_at` is the earliest time the
    /// same take could fit given what is taken now (later takes by others can push it further);
    /// `peaks[i]` is the highest counter request `i` would touch now.
    Refused {
        /// When the same take could fit (epoch ms).
        retry_at: EpochMillis,
        /// The highest counter each request would touch now.
        peaks: Vec<u32>,
    },
}

/// The live counters of one rate item, by attribute name (stale ones may be present).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateCounters {
    counters: BTreeMap<String, u32>,
}

/// `(budget, end)` of a counter attribute, or `None` for any other attribute.
pub fn parse_counter_name(name: &str) -> Option<(&str, EpochMillis)> {
    let (budget, end) = name.rsplit_once('@')?;
    Some((budget, end.parse().ok()?))
}

impl RateCounters {
    /// From stored attributes (name, value); anything that is not a counter is ignored.
    pub fn from_attributes<'a>(attributes: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        Self {
            counters: attributes
                .into_iter()
                .filter(|(name, _)| parse_counter_name(name).is_some())
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        }
    }

    fn get(&self, budget: &RateBudget, x: i64) -> u32 {
        self.counters
            .get(&budget.counter_name(x))
            .copied()
            .unwrap_or(0)
    }

    /// The counters whose span has ended by `now`: no take can touch them again.
    pub fn stale(&self, now: EpochMillis) -> Vec<String> {
        self.counters
            .keys()
            .filter(|name| parse_counter_name(name).is_some_and(|(_, end)| end <= now))
            .cloned()
            .collect()
    }

    /// Removes the stale counters.
    pub fn prune(&mut self, now: EpochMillis) {
        for name in self.stale(now) {
            self.counters.remove(&name);
        }
    }

    /// How many counters are stored (stale ones included).
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// Whether no counter is stored.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// Whether request `r` fits if taken at tick `j` of its budget.
    fn fits_at_tick(&self, r: &PermitRequest, j: i64) -> bool {
        r.counters_at_tick(j)
            .all(|x| self.get(&r.budget, x) <= r.max_before())
    }

    /// Whether every request fits at `now` (the condition of the conditional write).
    pub fn fits(&self, requests: &[PermitRequest], now: EpochMillis) -> bool {
        requests
            .iter()
            .all(|r| self.fits_at_tick(r, r.budget.tick(now)))
    }

    /// The highest counter each request touches at `now`.
    pub fn peaks(&self, requests: &[PermitRequest], now: EpochMillis) -> Vec<u32> {
        requests
            .iter()
            .map(|r| {
                r.counters(now)
                    .map(|x| self.get(&r.budget, x))
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Adds every request at `now`, unconditionally (the write, once the condition held).
    pub fn add(&mut self, requests: &[PermitRequest], now: EpochMillis) {
        for r in requests {
            for x in r.counters(now) {
                *self.counters.entry(r.budget.counter_name(x)).or_insert(0) += r.count;
            }
        }
    }

    /// The take as one atomic step: grants and adds, or refuses with when to come back.
    pub fn take(&mut self, requests: &[PermitRequest], now: EpochMillis) -> PermitTake {
        if self.fits(requests, now) {
            self.add(requests, now);
            PermitTake::Granted {
                peaks: self.peaks(requests, now),
            }
        } else {
            PermitTake::Refused {
                retry_at: self.retry_at(requests, now),
                peaks: self.peaks(requests, now),
            }
        }
    }

    /// The earliest time, after `now`, at which every request fits together on these counters:
    /// at a tick start of some budget. Counters never shrink before their end, so no earlier time
    /// can fit; past every stored counter all are zero, and every request fits an empty item.
    pub fn retry_at(&self, requests: &[PermitRequest], now: EpochMillis) -> EpochMillis {
        let mut at = now;
        loop {
            let mut moved = false;
            for r in requests {
                let earliest = self.earliest_fit(r, at);
                if earliest > at {
                    at = earliest;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        // A refused take never comes back before the next tick: no busy loop on the store.
        let next_tick = requests
            .iter()
            .map(|r| (r.budget.tick(now) + 1).saturating_mul(r.budget.tick_ms))
            .min()
            .unwrap_or(now + 1);
        at.max(next_tick)
    }

    /// The earliest time ≥ `at` at which `r` alone fits.
    fn earliest_fit(&self, r: &PermitRequest, at: EpochMillis) -> EpochMillis {
        let first = r.budget.tick(at);
        // Past the last stored counter of this budget every counter is zero.
        let last = self
            .counters
            .keys()
            .filter_map(|name| parse_counter_name(name))
            .filter(|(budget, _)| *budget == r.budget.name)
            .map(|(_, end)| end.div_euclid(r.budget.tick_ms))
            .max()
            .unwrap_or(first)
            .max(first);
        for j in first..=last {
            if self.fits_at_tick(r, j) {
                return if j == first {
                    at
                } else {
                    j.saturating_mul(r.budget.tick_ms)
                };
            }
        }
        last.saturating_add(1).saturating_mul(r.budget.tick_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: EpochMillis = 1_800_000_000_000;

    fn app() -> RateBudget {
        RateBudget::new("app", 50, 1_000, 100)
    }

    #[test]
    fn a_counter_spans_the_window_and_one_tick_of_jitter() {
        // 1 s in ticks of 100 ms: an interval of 1.1 s touches at most 12 ticks.
        assert_eq!(app().span_ticks(), 12);
        assert_eq!(
            RateBudget::new("api:x", 1000, 60_000, 5_000).span_ticks(),
            14
        );
        assert_eq!(app().counter_name(18_000_000_000), "app@1800000000100");
        assert_eq!(
            parse_counter_name("api:im.message.reply@1800000000100"),
            Some(("api:im.message.reply", 1_800_000_000_100))
        );
        assert_eq!(parse_counter_name("expires_at"), None);
    }

    #[test]
    fn requests_are_clamped_so_they_fit_an_empty_item() {
        let r = PermitRequest::new(app(), 500, 0, 80);
        assert_eq!((r.count(), r.hold_ticks(), r.ceiling()), (50, 1, 50));
        assert_eq!(r.max_before(), 0);
        let r = PermitRequest::new(app(), 0, 3, 10);
        assert_eq!(r.count(), 1);
        assert!(RateCounters::default().fits(&[r], T));
    }

    #[test]
    fn a_take_counts_in_every_counter_its_hold_can_meet() {
        let mut counters = RateCounters::default();
        let r = PermitRequest::new(app(), 5, 2, 50);
        assert_eq!(r.counters(T + 50).count(), 13);
        assert_eq!(r.usable_until(T + 50), T + 200);
        assert_eq!(
            counters.take(std::slice::from_ref(&r), T + 50),
            PermitTake::Granted { peaks: vec![5] }
        );
        assert_eq!(counters.len(), 13);
        // Ten such takes fill the counters: the eleventh waits until it would touch fresh ones.
        for _ in 0..9 {
            assert!(matches!(
                counters.take(std::slice::from_ref(&r), T + 60),
                PermitTake::Granted { .. }
            ));
        }
        match counters.take(std::slice::from_ref(&r), T + 70) {
            PermitTake::Refused { retry_at, peaks } => {
                assert_eq!(peaks, vec![50]);
                // Counters of ticks T/100 ..= +12 are full; a take at tick +13 touches none of them.
                assert_eq!(retry_at, T + 1_300);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            counters.take(std::slice::from_ref(&r), T + 1_300),
            PermitTake::Granted { .. }
        ));
    }

    #[test]
    fn any_sliding_second_holds_at_most_the_limit_whatever_the_holds() {
        // Takes of mixed sizes and holds at random times; each permit is "sent" at a random time
        // within its hold. Count sends in every sliding 1.1 s window.
        let mut counters = RateCounters::default();
        let mut sends = Vec::new();
        let mut now = T;
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |m: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % m
        };
        for _ in 0..4_000 {
            now += next(40) as i64;
            let hold = [1, 2, 10, 20][next(4) as usize];
            let ceiling = if hold > 2 { 25 } else { 50 };
            let r = PermitRequest::new(app(), 1 + next(8) as u32, hold, ceiling);
            if let PermitTake::Granted { .. } = counters.take(std::slice::from_ref(&r), now) {
                let until = r.usable_until(now);
                for _ in 0..r.count() {
                    sends.push(now + next((until - now) as u64) as i64);
                }
            }
            counters.prune(now);
        }
        sends.sort_unstable();
        let mut most = 0;
        for (i, start) in sends.iter().enumerate() {
            let n = sends[i..]
                .iter()
                .take_while(|t| **t < start + 1_100)
                .count();
            most = most.max(n);
        }
        assert!(most <= 50, "{most} sends in 1.1 s");
        assert!(sends.len() > 1_000, "only {} sends", sends.len());
    }

    #[test]
    fn every_budget_of_a_take_must_fit_and_retry_at_waits_for_the_slowest() {
        let api = RateBudget::new("api:im.message.reply", 3, 60_000, 5_000);
        let mut counters = RateCounters::default();
        let take = [
            PermitRequest::new(app(), 1, 1, 50),
            PermitRequest::new(api.clone(), 3, 1, 3),
        ];
        assert!(matches!(
            counters.take(&take, T),
            PermitTake::Granted { .. }
        ));
        match counters.take(&take, T + 10) {
            PermitTake::Refused { retry_at, peaks } => {
                assert_eq!(peaks, vec![1, 3]);
                // The API's counters run 14 ticks of 5 s from the take's tick.
                let tick = api.tick(T);
                assert_eq!(retry_at, (tick + 14) * 5_000);
            }
            other => panic!("{other:?}"),
        }
        // Nothing was added by the refused take.
        assert_eq!(counters.peaks(&take, T + 10), vec![1, 3]);
    }

    #[test]
    fn stale_counters_are_the_ones_whose_span_ended() {
        let mut counters = RateCounters::default();
        counters.add(&[PermitRequest::new(app(), 1, 1, 50)], T);
        assert_eq!(counters.len(), 12);
        // The counter of the take's own tick ends first; the last one ends 12 ticks later.
        assert!(counters.stale(T + 99).is_empty());
        assert_eq!(counters.stale(T + 100).len(), 1);
        assert_eq!(counters.stale(T + 1_199).len(), 11);
        counters.prune(T + 1_200);
        assert!(counters.is_empty());
    }

    #[test]
    fn a_refusal_never_asks_to_come_back_before_the_next_tick() {
        let counters = RateCounters::default();
        let r = [PermitRequest::new(app(), 1, 1, 50)];
        assert!(counters.retry_at(&r, T + 30) >= T + 100);
    }
}
