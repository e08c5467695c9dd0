//! Feishu's rate limits seen from outside: the busiest windows of a call log, to check a bot kept them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::openapi::limited_api;
use super::state::{ApiCall, RateLimits, MINUTE_MS, SECOND_MS};

/// The busiest windows of a call log, counted as the simulator's limiter counts: calls to
/// rate-limited Open APIs (not the token endpoint, not unknown paths), per API by method + path
/// template, per chat by [`ApiCall::chat_id`]. A window is any 1 s (or 60 s) span of `at_ms`, the
/// instants the limiter used. Every call given is counted, refused or not: filter the log first
/// (e.g. drop 429s) to see what was admitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRates {
    /// Most calls in any one second across the rate-limited Open APIs (Feishu: 50).
    pub app_max_per_second: usize,
    /// Most calls to one API in any minute (Feishu: 1000), and that API.
    pub api_max_per_minute: usize,
    pub busiest_api: Option<String>,
    /// Most sends and replies into one chat in any second (Feishu: 5), and that chat.
    pub chat_max_per_second: usize,
    pub busiest_chat: Option<String>,
    /// Calls answered with code 99991400 (a limit, or an injected `rate_limited` fault).
    pub rate_limited: usize,
}

impl CallRates {
    pub fn of<'a>(calls: impl IntoIterator<Item = &'a ApiCall>) -> Self {
        let mut app = Vec::new();
        let mut per_api: HashMap<&'static str, Vec<i64>> = HashMap::new();
        let mut per_chat: HashMap<&str, Vec<i64>> = HashMap::new();
        let mut rate_limited = 0;
        for call in calls {
            if call.code == Some(99991400) {
                rate_limited += 1;
            }
            let Some(api) = limited_api(&call.method, &call.path) else {
                continue;
            };
            app.push(call.at_ms);
            per_api.entry(api).or_default().push(call.at_ms);
            if let Some(chat) = &call.chat_id {
                per_chat.entry(chat).or_default().push(call.at_ms);
            }
        }
        let (busiest_api, api_max_per_minute) = busiest(per_api, MINUTE_MS);
        let (busiest_chat, chat_max_per_second) = busiest(per_chat, SECOND_MS);
        Self {
            app_max_per_second: max_in_window(&mut app, SECOND_MS),
            api_max_per_minute,
            busiest_api,
            chat_max_per_second,
            busiest_chat,
            rate_limited,
        }
    }

    /// Each of `limits` the log went over, in words; empty when all were kept.
    pub fn over(&self, limits: &RateLimits) -> Vec<String> {
        let mut over = Vec::new();
        if let Some(l) = limits
            .app_per_second
            .filter(|l| self.app_max_per_second > *l as usize)
        {
            over.push(format!(
                "{} calls in one second (app limit {l}/s)",
                self.app_max_per_second
            ));
        }
        if let Some(l) = limits
            .api_per_minute
            .filter(|l| self.api_max_per_minute > *l as usize)
        {
            over.push(format!(
                "{} calls to {} in one minute (API limit {l}/min)",
                self.api_max_per_minute,
                self.busiest_api.as_deref().unwrap_or("?")
            ));
        }
        if let Some(l) = limits
            .chat_per_second
            .filter(|l| self.chat_max_per_second > *l as usize)
        {
            over.push(format!(
                "{} sends into {} in one second (chat limit {l}/s)",
                self.chat_max_per_second,
                self.busiest_chat.as_deref().unwrap_or("?")
            ));
        }
        over
    }
}

/// The key with the most times in one `span_ms` window, and that count.
fn busiest<K: ToString>(groups: HashMap<K, Vec<i64>>, span_ms: i64) -> (Option<String>, usize) {
    groups
        .into_iter()
        .map(|(k, mut times)| (max_in_window(&mut times, span_ms), k.to_string()))
        .max()
        .map_or((None, 0), |(n, k)| (Some(k), n))
}

/// Most of `times` (ms, any order; sorted in place) in any window `[t, t + span_ms)`: a call at
/// `t` and one at `t + span_ms` are never in one window, as in the simulator's limiter.
pub fn max_in_window(times: &mut [i64], span_ms: i64) -> usize {
    times.sort_unstable();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= span_ms {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: &str, path: &str, at_ms: i64, chat: Option<&str>) -> ApiCall {
        ApiCall {
            method: method.into(),
            path: path.into(),
            body: String::new(),
            response: String::new(),
            status: 200,
            code: Some(0),
            at_ms,
            elapsed_ms: 0,
            chat_id: chat.map(str::to_owned),
        }
    }

    #[test]
    fn window_is_half_open() {
        assert_eq!(max_in_window(&mut [], SECOND_MS), 0);
        assert_eq!(max_in_window(&mut [0, 999], SECOND_MS), 2);
        assert_eq!(max_in_window(&mut [0, 1000], SECOND_MS), 1);
        // Sorted 0, 900, 1000, 1500, 1800: [900, 1900) holds four.
        assert_eq!(max_in_window(&mut [1500, 0, 900, 1000, 1800], SECOND_MS), 4);
    }

    #[test]
    fn counts_per_app_per_api_template_and_per_chat() {
        let calls = [
            call(
                "POST",
                "/open-apis/auth/v3/tenant_access_token/internal",
                0,
                None,
            ),
            call(
                "POST",
                "/open-apis/im/v1/messages/om_a/reply",
                0,
                Some("oc_1"),
            ),
            call(
                "POST",
                "/open-apis/im/v1/messages/om_b/reply",
                100,
                Some("oc_1"),
            ),
            call(
                "POST",
                "/open-apis/im/v1/messages?receive_id_type=chat_id",
                200,
                Some("oc_2"),
            ),
            call("PATCH", "/open-apis/im/v1/messages/om_a", 300, None),
            call("GET", "/open-apis/im/v1/nothing", 400, None),
            call(
                "POST",
                "/open-apis/im/v1/messages/om_c/reply",
                30_000,
                Some("oc_1"),
            ),
        ];
        let rates = CallRates::of(&calls);
        assert_eq!(
            rates.app_max_per_second, 4,
            "token and unknown paths do not count"
        );
        assert_eq!(rates.api_max_per_minute, 3);
        assert_eq!(
            rates.busiest_api.as_deref(),
            Some("POST /open-apis/im/v1/messages/:message_id/reply")
        );
        assert_eq!(rates.chat_max_per_second, 2);
        assert_eq!(rates.busiest_chat.as_deref(), Some("oc_1"));
        assert!(rates.over(&RateLimits::default()).is_empty());
        let tight = RateLimits {
            app_per_second: Some(3),
            api_per_minute: Some(2),
            chat_per_second: Some(1),
            card_writes_per_second: None,
        };
        assert_eq!(rates.over(&tight).len(), 3, "{:?}", rates.over(&tight));
        assert!(rates.over(&RateLimits::disabled()).is_empty());
    }
}
