//! Local "function URLs" for a bot under test: an HTTP server on 127.0.0.1 that turns each request
//! into a Lambda function-URL event (payload 2.0, body base64-encoded), reads it back as a
//! `lambda_http::Request` with the kit's own conversion (what `feishu_kit::lambda::function_url::run`
//! does on Lambda), calls the handler, and sends its answer back. Point [`crate::Simulator`]'s
//! deliveries (`send_user_message`, `press_as`, ...) at the URL [`serve`] returns.

use std::future::Future;
use std::sync::Arc;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use feishu_kit::lambda::function_url::{body_bytes, error_response, request_from_event};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use crate::crypto::random_hex;

/// The largest request body read (Feishu's events stay far below).
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Serves `handler` on a free port of 127.0.0.1 until the test's runtime ends; returns its URL
/// (`http://127.0.0.1:<port>/`). Each request reaches the handler as Lambda would hand it over.
pub async fn serve<H, F>(handler: H) -> String
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind a local function URL");
    let addr = listener.local_addr().expect("local address");
    let handler = Arc::new(handler);
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let handler = handler.clone();
        async move {
            let response = match function_url_request(request).await {
                Some(request) => handler(request).await,
                None => error_response(StatusCode::BAD_REQUEST, "bad function URL event"),
            };
            http_response(&response)
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/")
}

/// A function-URL event (payload 2.0) for a POST with `headers` and `body`, as Lambda builds it.
pub fn function_url_event(headers: &[(String, String)], body: &[u8]) -> Value {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone())))
        .collect();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "feishu-sim",
            "domainName": "feishu-sim.lambda-url.us-east-1.on.aws",
            "domainPrefix": "feishu-sim",
            "http": { "method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "Feishu" },
            "requestId": random_hex(16),
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": 0
        },
        "body": STANDARD.encode(body),
        "isBase64Encoded": true
    })
}

/// An HTTP request as a function URL hands it to the function: its event, read by the kit's
/// `request_from_event`; `None` when the kit cannot read it (answered 400, as `run` does).
pub async fn function_url_request(request: axum::extract::Request) -> Option<Request> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .unwrap_or_default();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    request_from_event(function_url_event(&headers, &bytes)).ok()
}

/// The handler's answer as the function URL sends it back: status, headers and body.
pub fn http_response(response: &Response<Body>) -> axum::response::Response {
    let mut out =
        axum::response::Response::new(axum::body::Body::from(body_bytes(response.body()).to_vec()));
    *out.status_mut() = response.status();
    for (name, value) in response.headers() {
        out.headers_mut().append(name, value.clone());
    }
    out
}
