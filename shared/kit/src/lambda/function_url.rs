//! The function-URL side of the two webhook functions: the request's bytes in, verified or
//! answered with the rejection; JSON answers out.

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use tracing::warn;

use crate::config::WebhookConfig;
use crate::store::EpochMillis;
use crate::webhook::{self, Inbound};

/// The raw bytes of a function-URL request body (lambda_http has already undone base64).
pub fn body_bytes(body: &Body) -> &[u8] {
    match body {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// How long a webhook's dedup claim is ours (ms): the answer budget plus a margin, so a live
/// attempt is never taken over, and one that died is taken over by Feishu's next re-delivery
/// (its first retry comes after 15 s).
pub fn claim_lease_ms(answer_budget: std::time::Duration) -> i64 {
    const MARGIN_MS: i64 = 5_000;
    i64::try_from(answer_budget.as_millis()).unwrap_or(i64::MAX / 2) + MARGIN_MS
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// `{"error": reason}` with `status`.
pub fn error_response(status: StatusCode, reason: &str) -> Response<Body> {
    json_response(status, serde_json::json!({ "error": reason }).to_string())
}

/// Verifies the request (size, timestamp, signature, token, decryption, shape). A rejection is
/// logged once, with its reason only, and comes back as the 4xx answer to send (boxed:
/// the answer is large next to the `Ok`).
pub fn verify(
    config: &WebhookConfig,
    request: &Request,
    now: EpochMillis,
) -> Result<Inbound, Box<Response<Body>>> {
    webhook::verify(config, request.headers(), body_bytes(request.body()), now).map_err(|e| {
        warn!(reason = e.reason(), "request rejected");
        crate::metrics::rejected(e.reason());
        Box::new(error_response(e.status(), e.reason()))
    })
}

/// [`verify`], with Feishu's URL check (`url_verification`) answered at once: `Err` holds the
/// answer to send (a rejection, or the challenge's 200), `Ok` a request the bot handles.
pub fn verify_or_answer(
    config: &WebhookConfig,
    request: &Request,
    now: EpochMillis,
) -> Result<Inbound, Box<Response<Body>>> {
    match verify(config, request, now)? {
        Inbound::Challenge(challenge) => Err(Box::new(json_response(
            StatusCode::OK,
            challenge.response_body(),
        ))),
        inbound => Ok(inbound),
    }
}

/// A click's answer in the shape of the callback style that carried it (`card.action.trigger`:
/// `{toast, card}`; the legacy card request: the card itself), as a 200 JSON response.
pub fn callback_response(
    style: crate::webhook::CallbackStyle,
    answer: &crate::cards::CallbackAnswer,
) -> Response<Body> {
    let body = match style {
        crate::webhook::CallbackStyle::Trigger => {
            serde_json::to_string(&answer.card_action_trigger_response())
        }
        crate::webhook::CallbackStyle::Legacy => serde_json::to_string(&answer.legacy_response()),
    };
    json_response(StatusCode::OK, body.unwrap_or_else(|_| "{}".to_owned()))
}

/// The parts of a function-URL event (payload 2.0) the webhooks read: headers and body. The path
/// and query string are never read, so no request URI is ever built from them.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionUrlEvent {
    #[serde(default)]
    headers: std::collections::HashMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

/// Why a function-URL event could not become a request (answered 400 by [`run`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The event is not a function-URL event.
    #[error("not a function URL event")]
    Shape,
    /// `isBase64Encoded` is set but the body is not base64.
    #[error("body is not base64 although isBase64Encoded is set")]
    Base64,
}

/// A function-URL event as the request the handlers take: `POST /` with the event's headers
/// (those that are not valid HTTP headers are left out) and its body, base64 undone.
///
/// lambda_http's own conversion builds the URI from the raw path, query string and `Host` and
/// panics when that is not a valid URI (`?a<b"c`); under `panic = "abort"` one such request would
/// take the instance down, so the functions use this instead (see [`run`]).
pub fn request_from_event(event: serde_json::Value) -> Result<Request, EventError> {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    use lambda_http::http::{HeaderName, Method};

    let event: FunctionUrlEvent = serde_json::from_value(event).map_err(|_| EventError::Shape)?;
    let body = match (event.body, event.is_base64_encoded) {
        (None, _) => Body::Empty,
        (Some(text), false) => Body::Text(text),
        (Some(text), true) => Body::Binary(STANDARD.decode(text).map_err(|_| EventError::Base64)?),
    };
    let mut request = Request::new(body);
    *request.method_mut() = Method::POST;
    for (name, value) in &event.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            request.headers_mut().append(name, value);
        }
    }
    Ok(request)
}

/// A handler's answer as the function-URL response event (`statusCode`, `headers`, `body`).
pub fn response_event(response: &Response<Body>) -> serde_json::Value {
    use base64::{engine::general_purpose::STANDARD, Engine as _};

    let headers: serde_json::Map<String, serde_json::Value> = response
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.into())))
        .collect();
    let (body, base64) = match response.body() {
        Body::Text(text) => (text.clone(), false),
        Body::Binary(bytes) => (STANDARD.encode(bytes), true),
        _ => (String::new(), false),
    };
    // The function-URL response format; `cookies` and `multiValueHeaders` are sent even empty:
    // readers of the API Gateway v2 shape (cargo lambda watch) refuse an answer without them.
    serde_json::json!({
        "statusCode": response.status().as_u16(),
        "headers": headers,
        "multiValueHeaders": {},
        "body": body,
        "isBase64Encoded": base64,
        "cookies": [],
    })
}

/// Serves `handler` behind a function URL on the Lambda runtime: each event becomes a request
/// through [`request_from_event`] (an event that cannot is answered 400 and logged), the answer goes
/// back as [`response_event`], and the invocation's metrics follow as one EMF document when the
/// function installed an [`crate::metrics::Emitter`].
pub async fn run<H, F>(
    metrics: Option<crate::metrics::Emitter>,
    handler: H,
) -> Result<(), lambda_http::Error>
where
    H: Fn(Request) -> F,
    F: std::future::Future<Output = Response<Body>>,
{
    let metrics = &metrics;
    let handler = &handler;
    lambda_http::lambda_runtime::run(lambda_http::service_fn(
        move |event: lambda_http::LambdaEvent<serde_json::Value>| async move {
            let response = match request_from_event(event.payload) {
                Ok(request) => handler(request).await,
                Err(e) => {
                    warn!(reason = %e, "request rejected");
                    error_response(StatusCode::BAD_REQUEST, "bad function URL event")
                }
            };
            if let Some(metrics) = metrics {
                metrics.flush();
            }
            Ok::<_, lambda_http::Error>(response_event(&response))
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_become_post_requests_with_headers_and_body_only() {
        let event = json!({
            "rawPath": "/%zz<",
            "rawQueryString": "a<b\"c",
            "headers": { "x-lark-signature": "abc", "bad header": "x", "x-ok": "line\nbreak" },
            "body": "eyJhIjoxfQ==",
            "isBase64Encoded": true,
        });
        let request = request_from_event(event).unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(request.uri(), "/");
        assert_eq!(request.headers()["x-lark-signature"], "abc");
        assert_eq!(
            request.headers().len(),
            1,
            "invalid names and values are left out"
        );
        assert_eq!(body_bytes(request.body()), br#"{"a":1}"#);
        let plain = request_from_event(json!({"body": "{}", "isBase64Encoded": false})).unwrap();
        assert_eq!(body_bytes(plain.body()), b"{}");
    }

    #[test]
    fn broken_events_are_errors_not_panics() {
        assert_eq!(
            request_from_event(json!({"body": "***", "isBase64Encoded": true})).unwrap_err(),
            EventError::Base64
        );
        assert_eq!(
            request_from_event(json!(["not", "an", "object"])).unwrap_err(),
            EventError::Shape
        );
        assert_eq!(
            request_from_event(json!({"headers": {"a": 1}})).unwrap_err(),
            EventError::Shape
        );
    }

    #[test]
    fn answers_become_function_url_responses() {
        let event = response_event(&error_response(StatusCode::UNAUTHORIZED, "token mismatch"));
        assert_eq!(event["statusCode"], 401);
        assert_eq!(event["headers"]["content-type"], "application/json");
        assert_eq!(event["body"], r#"{"error":"token mismatch"}"#);
        assert_eq!(event["isBase64Encoded"], false);
        assert_eq!(event["cookies"], json!([]));
        // What lambda_http (and cargo lambda watch) read an API Gateway v2 answer into.
        let read: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse =
            serde_json::from_value(event).unwrap();
        assert_eq!(read.status_code, 401);
    }
}
