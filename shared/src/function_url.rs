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
        Box::new(error_response(e.status(), e.reason()))
    })
}
