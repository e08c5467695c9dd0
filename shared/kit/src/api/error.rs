//! `FeishuError`: every way a Feishu Open API call can fail, typed by Feishu's `code`.

use std::time::Duration;

/// Feishu's `code` values this client gives a meaning to.
pub mod codes {
    /// tenant_access_token expired or invalid.
    pub const INVALID_ACCESS_TOKEN: i64 = 99991663;
    /// app_access_token invalid.
    pub const INVALID_APP_ACCESS_TOKEN: i64 = 99991664;
    /// Tenant code / tenant_access_token illegal.
    pub const INVALID_TENANT_CODE: i64 = 99991665;
    /// Generic "request trigger frequency limit".
    pub const FREQUENCY_LIMIT: i64 = 99991400;
    /// im: message API frequency limit.
    pub const MESSAGE_FREQUENCY_LIMIT: i64 = 230020;
    /// im: create-message service rate limit.
    pub const CREATE_MESSAGE_RATE_LIMIT: i64 = 11232;
    /// im: create-message chat rate limit.
    pub const CHAT_RATE_LIMIT: i64 = 11233;
    /// im: internal send-message rate limit.
    pub const INTERNAL_SEND_RATE_LIMIT: i64 = 11247;
    /// im: the same create-message request is still being processed.
    pub const SAME_REQUEST_IN_PROGRESS: i64 = 18121;
    /// im: message is being sent.
    pub const MESSAGE_BEING_SENT: i64 = 230049;
    /// im: a message can only be modified within 14 days after sending.
    pub const MESSAGE_TOO_OLD: i64 = 230031;
    /// im: content too long.
    pub const MESSAGE_TOO_LARGE: i64 = 230025;
    /// CardKit: sequence not strictly increasing.
    pub const SEQUENCE_NOT_INCREASING: i64 = 300317;
    /// CardKit: entity older than 14 days.
    pub const CARD_ENTITY_EXPIRED: i64 = 200750;
    /// CardKit: the card is in an ongoing callback interaction.
    pub const CARD_IN_CALLBACK: i64 = 200810;
    /// CardKit: card over 30 KB.
    pub const CARD_TOO_LARGE: i64 = 200860;
    /// CardKit: internal error (the docs say: check the sequence and retry).
    pub const CARDKIT_INTERNAL: i64 = 300120;
    /// Delayed update: the card-update token expired (30 min).
    pub const UPDATE_TOKEN_EXPIRED: i64 = 300030;
    /// Delayed update: the card-update token was used too often (2 uses).
    pub const UPDATE_TOKEN_USED_UP: i64 = 300040;

    /// Codes after which a fresh tenant token may help.
    pub fn is_invalid_token(code: i64) -> bool {
        matches!(
            code,
            INVALID_ACCESS_TOKEN | INVALID_APP_ACCESS_TOKEN | INVALID_TENANT_CODE
        )
    }

    /// Codes that mean "slow down" and honour `x-ogw-ratelimit-reset`.
    pub fn is_rate_limit(code: i64) -> bool {
        matches!(
            code,
            FREQUENCY_LIMIT | MESSAGE_FREQUENCY_LIMIT | CREATE_MESSAGE_RATE_LIMIT | CHAT_RATE_LIMIT
        )
    }
}

/// The result of a Feishu call.
pub type FeishuResult<T> = Result<T, FeishuError>;

/// A failed Feishu call. `log_id` is Feishu's `X-Tt-Logid`, for support tickets. No secret is
/// ever part of an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeishuError {
    /// Feishu rejected the tenant token even after one eviction and refetch.
    #[error("invalid access token (code {code}, log_id {log_id:?})")]
    InvalidToken {
        /// Feishu's `code`: 99991663, 99991664 or 99991665.
        code: i64,
        /// `X-Tt-Logid` of the answer, when Feishu sent one.
        log_id: Option<String>,
    },
    /// Rate limited (HTTP 429, 99991400, 230020, 11232, 11233); `retry_after` from `x-ogw-ratelimit-reset`.
    #[error("rate limited (code {code}, retry after {retry_after:?}, log_id {log_id:?})")]
    RateLimited {
        /// Feishu's `code` (99991400 for an HTTP 429 without a Feishu answer).
        code: i64,
        /// From `x-ogw-ratelimit-reset`, at most 60 s; `None` when absent.
        retry_after: Option<Duration>,
        /// `X-Tt-Logid` of the answer, when Feishu sent one.
        log_id: Option<String>,
    },
    /// 300317: the CardKit `sequence` was not above the card's last one.
    #[error("CardKit sequence not increasing (log_id {log_id:?})")]
    SequenceNotIncreasing {
        /// `X-Tt-Logid` of the answer, when Feishu sent one.
        log_id: Option<String>,
    },
    /// 200750: the CardKit entity is older than 14 days.
    #[error("CardKit card entity expired (200750, log_id {log_id:?})")]
    CardEntityExpired {
        /// `X-Tt-Logid` of the answer, when Feishu sent one.
        log_id: Option<String>,
    },
    /// 300030: the callback's card-update token is older than 30 minutes.
    #[error("card-update token expired (log_id {log_id:?})")]
    UpdateTokenExpired {
        /// `X-Tt-Logid` of the answer, when Feishu sent one.
        log_id: Option<String>,
    },
    /// 300040: the callback's card-update token was already used twice.
    #[error("card-update token used up (log_id {log_id:?})")]
    UpdateTokenUsedUp {
        /// `X-Tt-Logid` of the answer, when Feishu sent one.
        log_id: Option<String>,
    },
    /// 200810: the card is in an ongoing callback interaction; try again after it.
    #[error("card is in a callback interaction (log_id {log_id:?})")]
    CardInCallback {
        /// `X-Tt-Logid` of the answer, when Feishu sent one.
        log_id: Option<String>,
    },
    /// 230031: a message can only be modified within 14 days after sending.
    #[error("message older than 14 days (230031, log_id {log_id:?})")]
    MessageTooOld {
        /// `X-Tt-Logid` of the answer, when Feishu sent one.
        log_id: Option<String>,
    },
    /// 200860 / 230025: card or message over Feishu's size limit (30 KB for cards).
    #[error("content too large (code {code}, log_id {log_id:?})")]
    TooLarge {
        /// Feishu's `code`: 200860 (CardKit) or 230025 (im).
        code: i64,
        /// `X-Tt-Logid` of the answer, when Feishu sent one.
        log_id: Option<String>,
    },
    /// The app-wide rate limit (shared by every instance through the table) has no permit for the
    /// call before its deadline; nothing was sent. One could come after `retry_after`: retry then,
    /// or queue the work.
    #[error("no app-wide rate permit before the deadline (retry after {retry_after:?})")]
    NoPermit {
        /// When a permit could come.
        retry_after: Duration,
    },
    /// A store app has no usable `app_ticket` yet (first deploy, or none pushed for 3 h): a resend
    /// was asked for (at most once a minute across instances) and Feishu pushes one within 2 min.
    /// Nothing was sent; queue the work and retry after `retry_after`.
    #[error("no app_ticket yet (store app); a resend was asked for (retry after {retry_after:?})")]
    NoAppTicket {
        /// When to try again.
        retry_after: Duration,
    },
    /// The caller's deadline passed (or the next wait would cross it) before a success.
    #[error("deadline exceeded after {attempts} attempt(s); last: {last}")]
    DeadlineExceeded {
        /// Attempts made before giving up (0 when none could start).
        attempts: u32,
        /// The last attempt's error, or why no attempt was made.
        last: String,
    },
    /// HTTP 5xx on every attempt the retry policy allowed.
    #[error("Feishu server error HTTP {status} (log_id {log_id:?})")]
    Server {
        /// The HTTP status of the last attempt.
        status: u16,
        /// `X-Tt-Logid` of the answer, when Feishu sent one.
        log_id: Option<String>,
    },
    /// Connect, timeout, or an unreadable answer, on every attempt the retry policy allowed.
    #[error("transport: {0}")]
    Transport(String),
    /// Refused before sending: the request cannot be valid (bad id, sequence, serialisation).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Any other non-zero `code`.
    #[error("Feishu API error {code}: {msg} (log_id {log_id:?})")]
    Api {
        /// Feishu's `code`.
        code: i64,
        /// Feishu's `msg`.
        msg: String,
        /// `X-Tt-Logid` of the answer, when Feishu sent one.
        log_id: Option<String>,
    },
}

impl FeishuError {
    /// Maps a non-zero `code` to its variant; rate limits get `retry_after` from the header.
    pub fn from_code(
        code: i64,
        msg: &str,
        log_id: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        use codes::*;
        match code {
            c if is_invalid_token(c) => Self::InvalidToken { code, log_id },
            c if is_rate_limit(c) => Self::RateLimited {
                code,
                retry_after,
                log_id,
            },
            SEQUENCE_NOT_INCREASING => Self::SequenceNotIncreasing { log_id },
            CARD_ENTITY_EXPIRED => Self::CardEntityExpired { log_id },
            UPDATE_TOKEN_EXPIRED => Self::UpdateTokenExpired { log_id },
            UPDATE_TOKEN_USED_UP => Self::UpdateTokenUsedUp { log_id },
            CARD_IN_CALLBACK => Self::CardInCallback { log_id },
            MESSAGE_TOO_OLD => Self::MessageTooOld { log_id },
            CARD_TOO_LARGE | MESSAGE_TOO_LARGE => Self::TooLarge { code, log_id },
            _ => Self::Api {
                code,
                msg: msg.to_owned(),
                log_id,
            },
        }
    }

    /// Whether the same request may succeed later (the updater reschedules it); false means
    /// retrying the same request cannot help (e.g. a used-up token needs another delivery path,
    /// a stale sequence needs a new one).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::InvalidToken { .. }
            | Self::RateLimited { .. }
            | Self::CardInCallback { .. }
            | Self::NoPermit { .. }
            | Self::NoAppTicket { .. }
            | Self::DeadlineExceeded { .. }
            | Self::Server { .. }
            | Self::Transport(_) => true,
            Self::Api { code, .. } => matches!(
                *code,
                codes::INTERNAL_SEND_RATE_LIMIT
                    | codes::SAME_REQUEST_IN_PROGRESS
                    | codes::MESSAGE_BEING_SENT
                    | codes::CARDKIT_INTERNAL
            ),
            Self::SequenceNotIncreasing { .. }
            | Self::CardEntityExpired { .. }
            | Self::UpdateTokenExpired { .. }
            | Self::UpdateTokenUsedUp { .. }
            | Self::MessageTooOld { .. }
            | Self::TooLarge { .. }
            | Self::InvalidRequest(_) => false,
        }
    }

    /// How long Feishu asked us to wait (`x-ogw-ratelimit-reset`, clamped where it is parsed), or
    /// the app-wide limiter's next permit, when known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            Self::NoPermit { retry_after } | Self::NoAppTicket { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// Feishu's `code`, when the error came from an answer that had one.
    pub fn code(&self) -> Option<i64> {
        use codes::*;
        match self {
            Self::InvalidToken { code, .. }
            | Self::RateLimited { code, .. }
            | Self::TooLarge { code, .. }
            | Self::Api { code, .. } => Some(*code),
            Self::SequenceNotIncreasing { .. } => Some(SEQUENCE_NOT_INCREASING),
            Self::CardEntityExpired { .. } => Some(CARD_ENTITY_EXPIRED),
            Self::UpdateTokenExpired { .. } => Some(UPDATE_TOKEN_EXPIRED),
            Self::UpdateTokenUsedUp { .. } => Some(UPDATE_TOKEN_USED_UP),
            Self::CardInCallback { .. } => Some(CARD_IN_CALLBACK),
            Self::MessageTooOld { .. } => Some(MESSAGE_TOO_OLD),
            Self::NoPermit { .. }
            | Self::NoAppTicket { .. }
            | Self::DeadlineExceeded { .. }
            | Self::Server { .. }
            | Self::Transport(_)
            | Self::InvalidRequest(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_errors_are_the_ones_a_later_attempt_can_fix() {
        let retryable = [
            FeishuError::RateLimited {
                code: 99991400,
                retry_after: Some(Duration::from_secs(3)),
                log_id: None,
            },
            FeishuError::InvalidToken {
                code: 99991663,
                log_id: None,
            },
            FeishuError::CardInCallback { log_id: None },
            FeishuError::DeadlineExceeded {
                attempts: 2,
                last: "x".into(),
            },
            FeishuError::Server {
                status: 503,
                log_id: None,
            },
            FeishuError::Transport("reset".into()),
            FeishuError::from_code(18121, "same request in progress", None, None),
            FeishuError::NoPermit {
                retry_after: Duration::from_millis(300),
            },
        ];
        for e in &retryable {
            assert!(e.is_retryable(), "{e}");
        }
        let final_errors = [
            FeishuError::from_code(300317, "", None, None),
            FeishuError::from_code(200750, "", None, None),
            FeishuError::from_code(300030, "", None, None),
            FeishuError::from_code(300040, "", None, None),
            FeishuError::from_code(230031, "", None, None),
            FeishuError::from_code(200860, "", None, None),
            FeishuError::from_code(230002, "bot not in chat", None, None),
            FeishuError::InvalidRequest("bad id".into()),
        ];
        for e in &final_errors {
            assert!(!e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn retry_after_only_from_rate_limits() {
        let e = FeishuError::from_code(230020, "", None, Some(Duration::from_secs(7)));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let e = FeishuError::from_code(300317, "", None, Some(Duration::from_secs(7)));
        assert_eq!(e.retry_after(), None);
        let e = FeishuError::NoPermit {
            retry_after: Duration::from_millis(300),
        };
        assert_eq!(e.retry_after(), Some(Duration::from_millis(300)));
    }

    #[test]
    fn code_round_trips_through_from_code() {
        for code in [
            99991663, 99991400, 230020, 11232, 11233, 300317, 200750, 300030, 300040, 200810,
            230031, 200860, 230025, 12345,
        ] {
            assert_eq!(
                FeishuError::from_code(code, "m", None, None).code(),
                Some(code)
            );
        }
    }
}
