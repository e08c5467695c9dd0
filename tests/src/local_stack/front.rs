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
                let not_served = || {
                    (
                        StatusCode::NOT_FOUND,
                        "only the function URLs /lambda-url/<function>/ are served here",
                    )
                        .into_response()
                };
                let Some((name_len, (upstream, slot))) = route else {
                    return not_served();
                };
                // What follows `/lambda-url/<function>`, with the query.
                let rest = uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .get("/lambda-url/".len() + name_len..)
                    .unwrap_or("");
                let rest = if rest.starts_with('/') {
                    rest.to_owned()
                } else {
                    format!("/{rest}")
                };
                let Some(url) = within(&upstream, &rest) else {
                    return not_served();
                };
                // Its own task: dropped with the caller's connection, the request still completes.
                let forwarded = tokio::spawn(async move {
                    let _instance = slot.acquire_owned().await.ok();
                    forward(http, url, method, headers, body).await
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

/// `upstream` + `rest` when that stays below `upstream`: a `..` or `%2e%2e` segment (which URL
/// parsing resolves) or a backslash could otherwise climb from a function URL to the server's
/// other paths (cargo lambda watch's invoke API, or the emulator's every AWS API).
fn within(upstream: &str, rest: &str) -> Option<reqwest::Url> {
    if rest.contains('\\') {
        return None;
    }
    let decoded = percent_decoded(rest.split('?').next().unwrap_or(""));
    if decoded
        .split('/')
        .any(|segment| segment == ".." || segment == "." || segment.contains('\\'))
    {
        return None;
    }
    let base = reqwest::Url::parse(&format!("{upstream}/")).ok()?;
    let url = reqwest::Url::parse(&format!("{upstream}{rest}")).ok()?;
    (url.origin() == base.origin() && url.path().starts_with(base.path())).then_some(url)
}

/// `%xx` escapes decoded (as bytes; invalid UTF-8 replaced), to see a `.` hidden as `%2e`.
fn percent_decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn forward(
    http: reqwest::Client,
    url: reqwest::Url,
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
            // Climbing out of the function URL to the emulator's APIs (the client resolves plain
            // dot segments itself; the raw forms are `within`'s own test).
            "/lambda-url/event-callback/..%2f..%2f..%2f",
            "/lambda-url/event-callback/..%5c..%5c",
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

    /// A client's URL library resolves dot segments before sending; a raw request need not.
    #[test]
    fn a_path_that_climbs_out_of_the_function_url_is_refused() {
        let up = "http://127.0.0.1:4566/_aws/lambda-url/abc123";
        assert_eq!(
            within(up, "/hook?x=1").map(|u| u.to_string()).as_deref(),
            Some("http://127.0.0.1:4566/_aws/lambda-url/abc123/hook?x=1")
        );
        assert!(within(up, "/?a=../..").is_some(), "a query is not a path");
        for climb in [
            "/../../../",
            "/..%2f..%2f..%2f2015-03-31/functions",
            "/%2e%2e/%2e%2e/",
            "/%2E%2E/x",
            "/.%2e/x",
            "/..\\..\\",
            "/..%5c..%5c",
            "/./x",
            "/x/../../y",
        ] {
            assert_eq!(within(up, climb), None, "{climb}");
        }
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
