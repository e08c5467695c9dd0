//! The point in time after which no Feishu call may sleep or send (e.g. a Lambda's remaining time).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Time left for a call, including all its retries and waits, and how long one call may wait for
/// a rate slot or permit. Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    /// `None`: a call may wait for a rate permit until the deadline.
    rate_wait: Option<Duration>,
}

impl Deadline {
    /// The deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self::at(Instant::now() + budget)
    }

    /// A deadline at a monotonic instant.
    pub fn at(at: Instant) -> Self {
        Self {
            at,
            rate_wait: None,
        }
    }

    /// The same deadline, but each call waits at most `wait` for a rate slot or permit: past that it
    /// fails at once (`NoPermit`) and the caller queues the work. For answers whose instance should
    /// not sit out a burst in the pacer (an event answer, Feishu's 3 s).
    pub fn with_rate_wait(self, wait: Duration) -> Self {
        Self {
            rate_wait: Some(wait),
            ..self
        }
    }

    /// The latest instant a call starting at `now` may wait until for a rate slot or permit,
    /// keeping `then_needed` for the attempt itself; `None` when no wait fits.
    pub fn rate_wait_until(&self, now: Instant, then_needed: Duration) -> Option<Instant> {
        let by_deadline = self.at.checked_sub(then_needed)?;
        Some(match self.rate_wait.and_then(|w| now.checked_add(w)) {
            Some(by_wait) => by_wait.min(by_deadline),
            None => by_deadline,
        })
    }

    /// A deadline given as epoch milliseconds (the Lambda context's `deadline`), less `reserve`
    /// for the work that must still happen after the Feishu call (answering, writing the table).
    pub fn from_epoch_millis(deadline_ms: u64, reserve: Duration) -> Self {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
        Self::after(left.saturating_sub(reserve))
    }

    /// The monotonic instant of the deadline.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Time left from now; zero once passed.
    pub fn remaining(&self) -> Duration {
        self.remaining_at(Instant::now())
    }

    /// Time left from `now`; zero once passed.
    pub fn remaining_at(&self, now: Instant) -> Duration {
        self.at.saturating_duration_since(now)
    }

    /// Whether the deadline has passed.
    pub fn is_past(&self) -> bool {
        self.remaining().is_zero()
    }

    /// Whether waiting `wait` from `now` still leaves `then_needed` to make the next attempt.
    pub fn allows_wait_at(&self, now: Instant, wait: Duration, then_needed: Duration) -> bool {
        match now
            .checked_add(wait)
            .and_then(|t| t.checked_add(then_needed))
        {
            Some(ready) => ready < self.at,
            None => false,
        }
    }

    /// The timeout for one attempt: `per_attempt`, cut to what is left of the deadline.
    pub fn attempt_timeout_at(&self, now: Instant, per_attempt: Duration) -> Duration {
        per_attempt.min(self.remaining_at(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_is_zero_once_past() {
        let start = Instant::now();
        let deadline = Deadline::at(start + Duration::from_secs(2));
        assert_eq!(deadline.remaining_at(start), Duration::from_secs(2));
        assert_eq!(
            deadline.remaining_at(start + Duration::from_millis(500)),
            Duration::from_millis(1500)
        );
        assert_eq!(
            deadline.remaining_at(start + Duration::from_secs(3)),
            Duration::ZERO
        );
    }

    #[test]
    fn a_wait_that_crosses_the_deadline_is_refused() {
        let start = Instant::now();
        let deadline = Deadline::at(start + Duration::from_secs(2));
        let need = Duration::from_millis(100);
        assert!(deadline.allows_wait_at(start, Duration::from_millis(1899), need));
        assert!(!deadline.allows_wait_at(start, Duration::from_millis(1900), need));
        assert!(!deadline.allows_wait_at(start, Duration::from_secs(52), need));
        assert!(!deadline.allows_wait_at(start, Duration::MAX, need));
    }

    #[test]
    fn attempt_timeout_is_cut_to_the_deadline() {
        let start = Instant::now();
        let deadline = Deadline::at(start + Duration::from_secs(3));
        let per_attempt = Duration::from_secs(10);
        assert_eq!(
            deadline.attempt_timeout_at(start, per_attempt),
            Duration::from_secs(3)
        );
        assert_eq!(
            deadline.attempt_timeout_at(start, Duration::from_secs(1)),
            Duration::from_secs(1)
        );
        assert_eq!(
            deadline.attempt_timeout_at(start + Duration::from_secs(4), per_attempt),
            Duration::ZERO
        );
    }

    #[test]
    fn a_rate_wait_caps_the_wait_not_the_deadline() {
        let start = Instant::now();
        let need = Duration::from_millis(50);
        let deadline = Deadline::at(start + Duration::from_secs(2));
        assert_eq!(
            deadline.rate_wait_until(start, need),
            Some(start + Duration::from_millis(1950))
        );
        let short = deadline.with_rate_wait(Duration::from_millis(200));
        assert_eq!(
            short.rate_wait_until(start, need),
            Some(start + Duration::from_millis(200))
        );
        // Late in the budget the deadline is the bound again.
        assert_eq!(
            short.rate_wait_until(start + Duration::from_millis(1900), need),
            Some(start + Duration::from_millis(1950))
        );
        assert_eq!(short.instant(), deadline.instant());
    }

    #[test]
    fn from_epoch_millis_keeps_the_reserve() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let deadline = Deadline::from_epoch_millis(now_ms + 10_000, Duration::from_secs(2));
        let left = deadline.remaining();
        assert!(left <= Duration::from_secs(8), "{left:?}");
        assert!(left > Duration::from_secs(7), "{left:?}");
        let passed = Deadline::from_epoch_millis(now_ms.saturating_sub(5_000), Duration::ZERO);
        assert!(passed.is_past());
    }
}
