//! The front door of the function URLs: every request to `/lambda-url/<function>/…` is passed to
//! that function's upstream (cargo lambda watch on an inner loopback port for `make run`, the
//! deployed function URL on the local AWS emulator for `make deploy-local`) and its answer passed
//! back. Nothing else is served: the front is what a tunnel exposes, and the invoke API behind it
//! (cargo lambda watch's, or the emulator's whole AWS API with the table and the App Secret) stays
//! on the inner port, where only this machine reaches it.
//!
//! Why not let callers talk to cargo lambda watch directly: when a caller gives up on a request
//! (Feishu stops waiting after 3 s), cargo lambda watch answers the function's later response with
//! a 500 and never frees that instance: after as many timeouts as there are instances, the function
//! takes no request again. Here each request to cargo lambda watch runs in its own task, which reads
//! the answer to the end even after the caller has left, so an instance is always freed, as Lambda
//! frees it when the invocation ends. A request whose function process died gets 502, as a function
//! URL answers a crashed invocation.
//!
//! The front also holds each function to its instance count: at most that many of its requests are
//! at cargo lambda watch at once, the rest wait here in arrival order (cargo lambda watch stops
//! dispatching altogether when a couple of hundred requests queue inside it).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Headers that belong to one hop, not to the request.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// The function a function-URL request is for: `/lambda-url/<name>/…`.
fn function_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/lambda-url/")?;
    rest.split('/').next().filter(|name| !name.is_empty())
}

/// Where `/lambda-url/<function>/<rest>` goes: `<upstream of function>/<rest>`.
pub type Routes = HashMap<String, String>;

/// The routes of cargo lambda watch on `inner` (`http://127.0.0.1:<inner port>`): its own
/// `/lambda-url/<function>` paths.
pub fn watch_routes(inner: &str, functions: &[&str]) -> Routes {
    functions
        .iter()
        .map(|f| ((*f).to_owned(), format!("{inner}/lambda-url/{f}")))
        .collect()
}

/// Serves `address:port`, forwarding each function of `routes` to its upstream, at most
/// `instances` requests of each function at a time.
pub async fn start(
    address: &str,
    port: u16,
    routes: Routes,
    instances: u16,
) -> Result<JoinHandle<()>, String> {
    let slots: Arc<HashMap<String, (String, Arc<Semaphore>)>> = Arc::new(
        routes
            .into_iter()
            .map(|(f, upstream)| {
                (
                    f,
                    (
                        upstream.trim_end_matches('/').to_owned(),
                        Arc::new(Semaphore::new(usize::from(instances.max(1)))),
                    ),
                )
            })
            .collect(),
    );
    let listener = tokio::net::TcpListener::bind((address, port))
        .await
        .map_err(|e| format!("cannot listen on {address}:{port}: {e}"))?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| e.to_string())?;
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let http = http.clone();
            let route =
                function_of(uri.path()).and_then(|f| Some((f.len(), slots.get(f)?.clone())));
            async move {
                let Some((name_len, (upstream, slot))) = route else {
                    return (
                        StatusCode::NOT_FOUND,
                        "only the function URLs /lambda-url/<function>/ are served here",
                    )
                        .into_response();
                };
                // Its own task: dropped with the caller's connection, the request still completes.
                let forwarded = tokio::spawn(async move {
                    let _instance = slot.acquire_owned().await.ok();
                    // What follows `/lambda-url/<function>`, with the query.
                    let rest = uri
                        .path_and_query()
                        .map_or("/", |p| p.as_str())
                        .get("/lambda-url/".len() + name_len..)
                        .unwrap_or("")
                        .to_owned();
                    let rest = if rest.starts_with('/') {
                        rest
                    } else {
                        format!("/{rest}")
                    };
                    forward(http, format!("{upstream}{rest}"), method, headers, body).await
                })
                .await;
                match forwarded {
                    Ok(response) => response,
                    Err(e) => bad_gateway(format!("forwarding failed: {e}")),
                }
            }
        },
    );
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    }))
}

async fn forward(
    http: reqwest::Client,
    url: String,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut request = http.request(method, url).body(body);
    for (name, value) in &headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => return bad_gateway(format!("the function did not answer: {e}")),
    };
    let status = answer.status();
    let mut out_headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out_headers.append(name, value.clone());
        }
    }
    match answer.bytes().await {
        Ok(bytes) => (status, out_headers, bytes).into_response(),
        Err(e) => bad_gateway(format!("the function's answer broke off: {e}")),
    }
}

fn bad_gateway(reason: String) -> Response {
    tracing::warn!(%reason, "502 from the function URL front");
    (
        StatusCode::BAD_GATEWAY,
        axum::Json(serde_json::json!({ "message": reason })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deployed stack's routes: a function URL on the emulator, reached only through its
    /// function's path; the emulator's own API paths are not served.
    #[tokio::test]
    async fn a_route_forwards_the_rest_of_the_path_and_nothing_else_is_served() {
        let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let record = seen.clone();
        let upstream = axum::Router::new().fallback(move |uri: Uri| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(uri.to_string());
                "from the function"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let inner = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, upstream).await });
        let port = crate::local_stack::process::free_port().unwrap();
        let routes = Routes::from([(
            "event-callback".to_owned(),
            format!("{inner}/_aws/lambda-url/abc123/"),
        )]);
        let front = start("127.0.0.1", port, routes, 4).await.unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let answer = http
            .post(format!("{base}/lambda-url/event-callback/hook?x=1"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "from the function");
        for other in [
            "/_aws/lambda-url/abc123/",
            "/2015-03-31/functions/card-updater/invocations",
            "/lambda-url/card-action/",
            "/",
        ] {
            let answer = http.post(format!("{base}{other}")).send().await.unwrap();
            assert_eq!(answer.status(), 404, "{other}");
        }
        front.abort();
        assert_eq!(
            *seen.lock().unwrap(),
            ["/_aws/lambda-url/abc123/hook?x=1"],
            "only the function's request reached the upstream"
        );
    }

    #[test]
    fn requests_are_counted_per_function() {
        assert_eq!(
            function_of("/lambda-url/event-callback/"),
            Some("event-callback")
        );
        assert_eq!(function_of("/lambda-url/card-action"), Some("card-action"));
        assert_eq!(
            function_of("/2015-03-31/functions/card-updater/invocations"),
            None,
            "the invoke API is not served to the outside"
        );
        assert_eq!(function_of("/lambda-url//"), None);
        assert_eq!(function_of("/other"), None);
    }
}
