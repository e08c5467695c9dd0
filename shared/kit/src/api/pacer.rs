//! App-wide pacing: Feishu limits each API to 50 requests/s per app and answers 429 past it. One
//! [`Pacer`] per client spaces every API call (not the token fetch, whose limit is its own) so
//! that no one-second window holds more than `per_second + burst` of them: a token bucket in
//! GCRA form, where each call reserves the next free slot and sleeps until it. Calls that wake
//! late together (a stalled runtime) are then held to the same count over the real send times of
//! the last second, so a stall never turns into a burst.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Feishu's per-app limit is 50/s: 47/s plus a burst of 2 is at most 49 in any one-second window,
/// one call of slack for network jitter; the burst lets a text and a card go out together.
pub const DEFAULT_PER_SECOND: u32 = 47;
/// Calls that may go out at once above the steady rate (see [`DEFAULT_PER_SECOND`]).
pub const DEFAULT_BURST: u32 = 2;

/// Spaces one client's API calls: on average `per_second` a second, never more than
/// `per_second + burst` in any one-second window.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    /// How far ahead of the steady schedule a call may go: `(burst - 1) × interval`.
    tolerance: Duration,
    /// The theoretical arrival time of the next call.
    next: Mutex<Option<Instant>>,
    /// At most this many calls go out in any one second (`per_second + burst`).
    cap: usize,
    /// When the calls of the last second went out.
    sent: Mutex<VecDeque<Instant>>,
}

impl Pacer {
    /// `per_second` calls a second on average, up to `burst` at once; `per_second == 0` disables.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let interval = match per_second {
            0 => Duration::ZERO,
            n => Duration::from_secs(1) / n,
        };
        let cap = usize::try_from(per_second.saturating_add(burst.max(1))).unwrap_or(usize::MAX);
        Self {
            interval,
            tolerance: interval * burst.saturating_sub(1),
            next: Mutex::new(None),
            cap,
            sent: Mutex::new(VecDeque::with_capacity(cap.min(1024))),
        }
    }

    /// Waits for this call's slot: its place in the steady schedule, then room in the last
    /// second's real sends. `false`, without waiting, when the slot would come after `latest`.
    pub async fn acquire(&self, latest: Instant) -> bool {
        match self.reserve(Instant::now(), latest) {
            None => return false,
            Some(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
            Some(_) => {}
        }
        while let Some(wait) = self.admit(Instant::now()) {
            if Instant::now() + wait > latest {
                return false;
            }
            tokio::time::sleep(wait).await;
        }
        true
    }

    /// Records a send at `now` if the last second holds fewer than the cap, returning `None`;
    /// otherwise returns how long until a send falls out of that second.
    fn admit(&self, now: Instant) -> Option<Duration> {
        if self.interval.is_zero() {
            return None;
        }
        let second = Duration::from_secs(1);
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        while sent.front().is_some_and(|t| *t + second <= now) {
            sent.pop_front();
        }
        if sent.len() < self.cap {
            sent.push_back(now);
            return None;
        }
        sent.front()
            .map(|t| (*t + second).saturating_duration_since(now))
    }

    /// Reserves a slot and returns how long to wait for it from `now`; `None`, reserving nothing,
    /// when that wait would end past `latest`.
    fn reserve(&self, now: Instant, latest: Instant) -> Option<Duration> {
        if self.interval.is_zero() {
            return Some(Duration::ZERO);
        }
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let arrival = next.map_or(now, |t| t.max(now));
        let send_at = arrival
            .checked_sub(self.tolerance)
            .map_or(now, |t| t.max(now));
        if send_at > latest {
            return None;
        }
        *next = Some(arrival + self.interval);
        Some(send_at - now)
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new(DEFAULT_PER_SECOND, DEFAULT_BURST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `n` calls as fast as the pacer lets them go; returns their send times from `start`.
    fn send_times(pacer: &Pacer, start: Instant, n: usize) -> Vec<Duration> {
        let far = start + Duration::from_secs(3600);
        (0..n).map(|_| pacer.reserve(start, far).unwrap()).collect()
    }

    #[test]
    fn a_burst_goes_at_once_then_the_rate_holds() {
        let pacer = Pacer::new(45, 5);
        let start = Instant::now();
        let times = send_times(&pacer, start, 100);
        assert!(times[..5].iter().all(|t| t.is_zero()), "{:?}", &times[..5]);
        assert!(!times[5].is_zero());
        // No one-second window holds more than 45 + 5 calls.
        for (i, first) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|t| **t < *first + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 50,
                "{in_window} calls in the second from {first:?}"
            );
        }
        // 100 calls take about (100 - 5) / 45 s.
        let last = times[99].as_secs_f64();
        assert!((2.0..2.2).contains(&last), "{last}");
    }

    #[test]
    fn idle_time_does_not_bank_more_than_the_burst() {
        let pacer = Pacer::new(10, 2);
        let start = Instant::now();
        send_times(&pacer, start, 3);
        let later = start + Duration::from_secs(60);
        let times = send_times(&pacer, later, 4);
        assert_eq!(times[0], Duration::ZERO);
        assert_eq!(times[1], Duration::ZERO);
        assert!(times[2] >= Duration::from_millis(99), "{times:?}");
    }

    #[test]
    fn a_slot_past_the_latest_time_is_refused_and_not_taken() {
        let pacer = Pacer::new(1, 1);
        let start = Instant::now();
        assert_eq!(pacer.reserve(start, start), Some(Duration::ZERO));
        assert_eq!(
            pacer.reserve(start, start + Duration::from_millis(500)),
            None
        );
        assert_eq!(
            pacer.reserve(start, start + Duration::from_secs(2)),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn calls_that_wake_together_after_a_stall_are_held_to_the_cap() {
        let pacer = Pacer::new(45, 5);
        let start = Instant::now();
        // Slots for two seconds of calls, all woken at once by a stall.
        send_times(&pacer, start, 95);
        let woke = start + Duration::from_secs(2);
        let admitted = (0..95).filter(|_| pacer.admit(woke).is_none()).count();
        assert_eq!(admitted, 50);
        let wait = pacer.admit(woke).unwrap();
        assert_eq!(wait, Duration::from_secs(1));
        // A second later the window has room again.
        assert_eq!(pacer.admit(woke + wait), None);
    }

    #[tokio::test]
    async fn acquire_waits_for_the_slot_or_refuses_one_past_the_latest_time() {
        let pacer = Pacer::new(20, 1);
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        assert!(pacer.acquire(far).await);
        assert!(pacer.acquire(far).await);
        assert!(Instant::now() - start >= Duration::from_millis(50));
        // The next slot is 50 ms away: a call that must go within 1 ms is refused.
        assert!(
            !pacer
                .acquire(Instant::now() + Duration::from_millis(1))
                .await
        );
    }

    #[test]
    fn zero_per_second_never_waits() {
        let pacer = Pacer::new(0, 0);
        let start = Instant::now();
        assert!(send_times(&pacer, start, 1000).iter().all(|t| t.is_zero()));
        assert!((0..1000).all(|_| pacer.admit(start).is_none()));
    }
}
