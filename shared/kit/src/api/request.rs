//! One Open API request as data, and the classification of one HTTP answer (pure, no I/O).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::error::{codes, FeishuError, FeishuResult};

/// Response header with Feishu's request id, for support tickets.
pub const LOG_ID_HEADER: &str = "x-tt-logid";
/// Response header: seconds until the rate-limit window recovers.
pub const RATE_LIMIT_RESET_HEADER: &str = "x-ogw-ratelimit-reset";
/// The longest `x-ogw-ratelimit-reset` honoured: Feishu's windows are a second or a minute, so a
/// larger value is a fault, and must not park a call or a job for longer.
pub const MAX_RATE_LIMIT_RESET: Duration = Duration::from_secs(60);

/// `x-ogw-ratelimit-reset` as a wait: whole seconds, clamped to [`MAX_RATE_LIMIT_RESET`]; `None`
/// when absent or not a number (the caller backs off instead).
pub fn parse_rate_limit_reset(value: Option<&str>) -> Option<Duration> {
    let value = value?.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: too large for u64 is as good as the clamp.
    let secs = value.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(secs).min(MAX_RATE_LIMIT_RESET))
}

/// HTTP methods the Open API calls use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

/// A request ready to send: method, path with query, JSON body. Whether it needs the tenant
/// token is decided by the caller. Debug omits the body: some bodies hold secrets.
#[derive(Clone, PartialEq)]
pub struct ApiRequest {
    /// The HTTP method.
    pub method: Method,
    /// Path and query, starting with `/open-apis/`.
    pub path: String,
    /// The JSON body; `None` for a request without one.
    pub body: Option<Value>,
}

impl ApiRequest {
    /// A request with a JSON body.
    pub fn new(method: Method, path: String, body: Value) -> Self {
        Self {
            method,
            path,
            body: Some(body),
        }
    }
}

impl ApiRequest {
    /// The API this request calls, method and path template without ids, in the dotted form of
    /// Feishu's docs (`im.message.reply`): the key of its 1000/min budget. Anything unknown
    /// shares one budget, `other`.
    pub fn api_name(&self) -> &'static str {
        let path = self.path.split('?').next().unwrap_or_default();
        let Some(rest) = path.strip_prefix("/open-apis/") else {
            return "other";
        };
        let segments: Vec<&str> = rest.split('/').collect();
        match (self.method, segments.as_slice()) {
            (Method::Post, ["auth", "v3", "tenant_access_token", "internal"]) => {
                "auth.tenant_access_token.internal"
            }
            (Method::Post, ["im", "v1", "messages"]) => "im.message.create",
            (Method::Get, ["contact", "v3", "users", _]) => "contact.user.get",
            (Method::Get, ["bot", "v3", "info"]) => "bot.info",
            (Method::Post, ["im", "v1", "messages", _, "reply"]) => "im.message.reply",
            (Method::Patch, ["im", "v1", "messages", _]) => "im.message.patch",
            (Method::Patch, ["im", "v1", "messages", _, "urgent_app"]) => "im.message.urgent_app",
            (Method::Post, ["interactive", "v1", "card", "update"]) => "interactive.card.update",
            (Method::Post, ["cardkit", "v1", "cards"]) => "cardkit.card.create",
            (Method::Post, ["cardkit", "v1", "cards", "id_convert"]) => "cardkit.card.id_convert",
            (Method::Put, ["cardkit", "v1", "cards", _]) => "cardkit.card.update",
            (Method::Patch, ["cardkit", "v1", "cards", _, "settings"]) => "cardkit.card.settings",
            (Method::Post, ["cardkit", "v1", "cards", _, "batch_update"]) => {
                "cardkit.card.batch_update"
            }
            (Method::Post, ["cardkit", "v1", "cards", _, "elements"]) => {
                "cardkit.card_element.create"
            }
            (Method::Put, ["cardkit", "v1", "cards", _, "elements", _]) => {
                "cardkit.card_element.update"
            }
            (Method::Patch, ["cardkit", "v1", "cards", _, "elements", _]) => {
                "cardkit.card_element.patch"
            }
            (Method::Delete, ["cardkit", "v1", "cards", _, "elements", _]) => {
                "cardkit.card_element.delete"
            }
            (Method::Put, ["cardkit", "v1", "cards", _, "elements", _, "content"]) => {
                "cardkit.card_element.content"
            }
            _ => "other",
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
    let retry_after = parse_rate_limit_reset(rate_limit_reset);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../fixtures/feishu/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn success(name: &str) -> Value {
        match classify_answer(200, None, None, &fixture(name)) {
            AnswerOutcome::Success(body) => body,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn failed(status: u16, name: &str) -> FeishuError {
        match classify_answer(status, Some("log-1".into()), None, &fixture(name)) {
            AnswerOutcome::Failed(e) => e,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn message_create_success_parses_to_sent_message() {
        let sent: crate::api::SentMessage =
            parse_data(success("response_im_message_create_success.json")).unwrap();
        assert_eq!(sent.message_id, "om_dc13264520392913993dd051dba21dcf");
        assert_eq!(
            sent.chat_id.as_deref(),
            Some("oc_5ad11d72b830411d72b836c20")
        );
        assert_eq!(sent.msg_type.as_deref(), Some("interactive"));
        assert_eq!(sent.create_time.as_deref(), Some("1732233600215"));
    }

    #[test]
    fn cardkit_create_success_parses_to_card_id() {
        let data: crate::api::cardkit::CardIdData =
            parse_data(success("response_cardkit_card_create_success.json")).unwrap();
        assert_eq!(data.card_id, "7355372766134157313");
    }

    #[test]
    fn patch_and_delayed_update_successes_have_no_data_to_read() {
        let _: serde::de::IgnoredAny =
            parse_data(success("response_im_message_patch_success.json")).unwrap();
        // The delayed update answers without `data` at all.
        let body = success("response_interactive_card_update_success.json");
        assert!(body.get("data").is_none());
        let _: serde::de::IgnoredAny = parse_data(body).unwrap();
    }

    #[test]
    fn tenant_token_answer_is_flat() {
        let answer = crate::api::token::TenantAccessTokenAnswer::parse(success(
            "response_tenant_access_token.json",
        ))
        .unwrap();
        assert_eq!(
            answer.tenant_access_token,
            "t-caecc734c2e3328a62489fe0648c4b98779515d3"
        );
        assert_eq!(answer.expire, 7200);
        assert!(!format!("{answer:?}").contains("t-caecc"));
    }

    #[test]
    fn url_verification_answer_is_not_an_api_answer() {
        // It has no `code`: never mistaken for a success.
        assert!(matches!(
            classify_answer(200, None, None, &fixture("response_url_verification.json")),
            AnswerOutcome::Failed(FeishuError::Transport(_))
        ));
    }

    #[test]
    fn each_error_fixture_maps_to_its_variant() {
        let log = Some("log-1".to_owned());
        assert_eq!(
            failed(400, "error_99991663_invalid_access_token.json"),
            FeishuError::InvalidToken {
                code: 99991663,
                log_id: log.clone()
            }
        );
        assert_eq!(
            failed(400, "error_300317_cardkit_sequence_not_increasing.json"),
            FeishuError::SequenceNotIncreasing {
                log_id: log.clone()
            }
        );
        assert_eq!(
            failed(400, "error_200750_cardkit_entity_expired.json"),
            FeishuError::CardEntityExpired {
                log_id: log.clone()
            }
        );
        assert_eq!(
            failed(200, "error_300030_card_update_token_expired.json"),
            FeishuError::UpdateTokenExpired {
                log_id: log.clone()
            }
        );
        assert_eq!(
            failed(200, "error_300040_card_update_token_used_too_often.json"),
            FeishuError::UpdateTokenUsedUp { log_id: log }
        );
    }

    #[test]
    fn rate_limits_carry_the_reset_header() {
        let body = fixture("error_99991400_rate_limited.json");
        for status in [429, 400] {
            assert_eq!(
                classify_answer(status, None, Some("52"), &body),
                AnswerOutcome::RateLimited(FeishuError::RateLimited {
                    code: 99991400,
                    retry_after: Some(Duration::from_secs(52)),
                    log_id: None,
                })
            );
        }
        let body = fixture("error_230020_message_frequency_limit.json");
        match classify_answer(400, Some("L".into()), None, &body) {
            AnswerOutcome::RateLimited(e) => {
                assert_eq!(e.code(), Some(230020));
                assert_eq!(e.retry_after(), None);
                assert!(e.is_retryable());
            }
            other => panic!("{other:?}"),
        }
        // A bare 429 without a Feishu body is still a rate limit.
        assert!(matches!(
            classify_answer(429, None, Some("1"), b"Too Many Requests"),
            AnswerOutcome::RateLimited(FeishuError::RateLimited {
                retry_after: Some(d),
                ..
            }) if d == Duration::from_secs(1)
        ));
    }

    #[test]
    fn a_huge_or_malformed_reset_never_panics_and_never_waits_past_the_clamp() {
        let body = fixture("error_99991400_rate_limited.json");
        for (header, expected) in [
            ("18000000000000000000", Some(MAX_RATE_LIMIT_RESET)),
            ("99999999999999999999999999", Some(MAX_RATE_LIMIT_RESET)),
            ("61", Some(MAX_RATE_LIMIT_RESET)),
            ("60", Some(Duration::from_secs(60))),
            (" 2 ", Some(Duration::from_secs(2))),
            ("0", Some(Duration::ZERO)),
            ("abc", None),
            ("-5", None),
            ("1.5", None),
            ("", None),
            ("+3", None),
        ] {
            let outcome = classify_answer(429, None, Some(header), &body);
            let AnswerOutcome::RateLimited(error) = outcome else {
                panic!("{header:?}: {outcome:?}");
            };
            assert_eq!(error.retry_after(), expected, "{header:?}");
            // The retry loop's wait, jitter included, stays within the clamp plus 10 %.
            let wait = crate::api::RetryPolicy::default().rate_limit_wait(error.retry_after(), 0);
            assert!(
                wait <= MAX_RATE_LIMIT_RESET.mul_f64(1.1),
                "{header:?}: {wait:?}"
            );
        }
        assert_eq!(parse_rate_limit_reset(None), None);
    }

    #[test]
    fn every_request_builder_names_its_api() {
        use crate::api::cardkit::{self, BatchUpdateAction, CardWrite, ElementPosition};
        use crate::api::im::{self, MessageContent, ReceiveId};
        use crate::api::RequestUuid;
        use serde_json::json;
        let uuid = RequestUuid::derive("k");
        let write = CardWrite::new(1, "k");
        let text = MessageContent::Text("x".into());
        let card = json!({"schema": "2.0"});
        let cases = [
            (
                crate::api::token::tenant_access_token_request("cli", "s"),
                "auth.tenant_access_token.internal",
            ),
            (
                im::send_message(&ReceiveId::ChatId("oc_1".into()), &text, &uuid).unwrap(),
                "im.message.create",
            ),
            (
                im::reply_message("om_1", &text, false, &uuid).unwrap(),
                "im.message.reply",
            ),
            (
                im::patch_message_card("om_1", &card).unwrap(),
                "im.message.patch",
            ),
            (
                im::delayed_update_card("t", &card),
                "interactive.card.update",
            ),
            (cardkit::create_card(&card).unwrap(), "cardkit.card.create"),
            (
                cardkit::convert_message_id("om_1").unwrap(),
                "cardkit.card.id_convert",
            ),
            (
                cardkit::update_card("7355", &card, &write).unwrap(),
                "cardkit.card.update",
            ),
            (
                cardkit::update_card_settings("7355", &card, &write).unwrap(),
                "cardkit.card.settings",
            ),
            (
                cardkit::batch_update_card(
                    "7355",
                    &[BatchUpdateAction::PartialUpdateSetting {
                        settings: card.clone(),
                    }],
                    &write,
                )
                .unwrap(),
                "cardkit.card.batch_update",
            ),
            (
                cardkit::add_card_elements(
                    "7355",
                    &ElementPosition::Append(None),
                    std::slice::from_ref(&card),
                    &write,
                )
                .unwrap(),
                "cardkit.card_element.create",
            ),
            (
                cardkit::update_card_element("7355", "e1", &card, &write).unwrap(),
                "cardkit.card_element.update",
            ),
            (
                cardkit::patch_card_element("7355", "e1", &card, &write).unwrap(),
                "cardkit.card_element.patch",
            ),
            (
                cardkit::delete_card_element("7355", "e1", &write).unwrap(),
                "cardkit.card_element.delete",
            ),
            (
                cardkit::stream_card_element_text("7355", "e1", "x", &write).unwrap(),
                "cardkit.card_element.content",
            ),
            (
                super::super::contact::get_user("ou_1").unwrap(),
                "contact.user.get",
            ),
            (
                im::urgent_app("om_1", &["ou_1".to_owned()]).unwrap(),
                "im.message.urgent_app",
            ),
        ];
        for (request, name) in cases {
            assert_eq!(request.api_name(), name, "{request:?}");
        }
        let odd = ApiRequest::new(
            Method::Get,
            "/open-apis/contact/v3/departments/od_1".into(),
            json!({}),
        );
        assert_eq!(odd.api_name(), "other");
    }

    #[test]
    fn server_errors_are_transient_and_other_statuses_final() {
        assert_eq!(
            classify_answer(502, Some("L".into()), None, b"<html>bad gateway</html>"),
            AnswerOutcome::Transient(FeishuError::Server {
                status: 502,
                log_id: Some("L".into())
            })
        );
        assert!(matches!(
            classify_answer(500, None, None, br#"{"code":1,"msg":"internal"}"#),
            AnswerOutcome::Transient(FeishuError::Server { status: 500, .. })
        ));
        assert!(matches!(
            classify_answer(404, None, None, b"not found"),
            AnswerOutcome::Failed(FeishuError::Transport(_))
        ));
        // HTTP 200 with a non-zero code is a failure.
        assert_eq!(
            classify_answer(
                200,
                None,
                None,
                br#"{"code":230002,"msg":"bot not in chat"}"#
            ),
            AnswerOutcome::Failed(FeishuError::Api {
                code: 230002,
                msg: "bot not in chat".into(),
                log_id: None
            })
        );
    }

    #[test]
    fn size_and_age_codes_are_typed() {
        for (code, expected) in [
            (
                200860,
                FeishuError::TooLarge {
                    code: 200860,
                    log_id: None,
                },
            ),
            (
                230025,
                FeishuError::TooLarge {
                    code: 230025,
                    log_id: None,
                },
            ),
            (230031, FeishuError::MessageTooOld { log_id: None }),
            (200810, FeishuError::CardInCallback { log_id: None }),
            (
                99991664,
                FeishuError::InvalidToken {
                    code: 99991664,
                    log_id: None,
                },
            ),
            (
                99991665,
                FeishuError::InvalidToken {
                    code: 99991665,
                    log_id: None,
                },
            ),
        ] {
            let body = format!(r#"{{"code":{code},"msg":"m"}}"#);
            assert_eq!(
                classify_answer(400, None, None, body.as_bytes()),
                AnswerOutcome::Failed(expected)
            );
        }
    }

    #[test]
    fn path_segments_refuse_anything_but_ids() {
        assert!(path_segment("card_id", "7355372766134157313").is_ok());
        assert!(path_segment("message_id", "om_dc13264520392913993dd051dba21dcf").is_ok());
        for bad in ["", "../x", "a/b", "a?b=1", "a b", "id%2F"] {
            assert!(path_segment("id", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_omits_the_body() {
        let request = crate::api::token::tenant_access_token_request("cli_1", "s3cr3t");
        assert!(!format!("{request:?}").contains("s3cr3t"));
    }
}
