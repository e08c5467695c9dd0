//! One Open API request as data, and the classification of one HTTP answer (pure, no I/O).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::error::{codes, FeishuError, FeishuResult};

/// Response header with Feishu's request id, for support tickets.
pub const LOG_ID_HEADER: &str = "x-tt-logid";
/// Response header: seconds until the rate-limit window recovers.
pub const RATE_LIMIT_RESET_HEADER: &str = "x-ogw-ratelimit-reset";

/// HTTP methods the Open API calls use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// A request ready to send: method, path with query, JSON body. Whether it needs the tenant
/// token is decided by the caller. Debug omits the body: some bodies hold secrets.
#[derive(Clone, PartialEq)]
pub struct ApiRequest {
    pub method: Method,
    /// Path and query, starting with `/open-apis/`.
    pub path: String,
    pub body: Option<Value>,
}

impl ApiRequest {
    pub fn new(method: Method, path: String, body: Value) -> Self {
        Self {
            method,
            path,
            body: Some(body),
        }
    }
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body", &self.body.as_ref().map(|_| "<omitted>"))
            .finish()
    }
}

/// Checks an id before it becomes a path segment, so no id can change the path.
pub fn path_segment<'a>(what: &str, id: &'a str) -> FeishuResult<&'a str> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(id)
    } else {
        Err(FeishuError::InvalidRequest(format!(
            "{what} is not a valid id: {id:?}"
        )))
    }
}

/// Serialises a JSON value to the JSON *string* Feishu wants inside another JSON body.
pub fn json_string(what: &str, value: &impl serde::Serialize) -> FeishuResult<String> {
    serde_json::to_string(value)
        .map_err(|e| FeishuError::InvalidRequest(format!("cannot serialise {what}: {e}")))
}

/// What one HTTP answer means for the retry loop.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerOutcome {
    /// `code == 0`: the whole JSON body (auth answers are flat, others carry `data`).
    Success(Value),
    /// Slow down: wait at least `retry_after` when Feishu said, then try again.
    RateLimited(FeishuError),
    /// 5xx: try again after a backoff.
    Transient(FeishuError),
    /// Final (includes invalid token, which the caller handles with one refetch).
    Failed(FeishuError),
}

#[derive(Deserialize)]
struct Envelope {
    code: i64,
    #[serde(default)]
    msg: String,
}

/// Classifies an answer by Feishu's `code` (success is `code == 0`, not HTTP 200), the HTTP status
/// and the `X-Tt-Logid` / `x-ogw-ratelimit-reset` header values.
pub fn classify_answer(
    status: u16,
    log_id: Option<String>,
    rate_limit_reset: Option<&str>,
    body: &[u8],
) -> AnswerOutcome {
    let retry_after = rate_limit_reset
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let parsed: Option<(Envelope, Value)> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| Envelope::deserialize(&v).ok().map(|e| (e, v)));
    match parsed {
        Some((envelope, value)) if envelope.code == 0 => AnswerOutcome::Success(value),
        Some((envelope, _)) if status == 429 || codes::is_rate_limit(envelope.code) => {
            AnswerOutcome::RateLimited(FeishuError::RateLimited {
                code: envelope.code,
                retry_after,
                log_id,
            })
        }
        Some(_) | None if status >= 500 => {
            AnswerOutcome::Transient(FeishuError::Server { status, log_id })
        }
        Some((envelope, _)) => AnswerOutcome::Failed(FeishuError::from_code(
            envelope.code,
            &envelope.msg,
            log_id,
            retry_after,
        )),
        None if status == 429 => AnswerOutcome::RateLimited(FeishuError::RateLimited {
            code: codes::FREQUENCY_LIMIT,
            retry_after,
            log_id,
        }),
        None => AnswerOutcome::Failed(FeishuError::Transport(format!(
            "HTTP {status} without a Feishu JSON answer (log_id {log_id:?})"
        ))),
    }
}

/// Takes `data` out of a success body (`{}` when Feishu sent none) and parses it.
pub fn parse_data<T: serde::de::DeserializeOwned>(body: Value) -> FeishuResult<T> {
    let data = match body {
        Value::Object(mut map) => map.remove("data").unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let data = if data.is_null() {
        Value::Object(Default::default())
    } else {
        data
    };
    serde_json::from_value(data)
        .map_err(|e| FeishuError::Transport(format!("unexpected `data` in Feishu answer: {e}")))
}
