//! A tiny AWS Lambda Runtime API emulator: hands a bootstrap one event, records its answer, and
//! measures the cold start (exec → answer) and the process's peak RSS.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, Notify};

const API: &str = "/2018-06-01/runtime";

/// What the function reported for one invocation (or for its init).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub request_id: Option<String>,
    pub body: Bytes,
    /// When the emulator received it.
    pub at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// `POST /invocation/<id>/response`.
    Response,
    /// `POST /invocation/<id>/error`.
    Error,
    /// `POST /init/error`.
    InitError,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<(String, Value)>,
    first_poll: Option<Instant>,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Notify,
    outcomes: mpsc::UnboundedSender<Outcome>,
    function_arn: String,
}

/// The emulator's HTTP server on `127.0.0.1:<port>`, for one function process at a time.
pub struct RuntimeApi {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start(function_name: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, outcomes) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
            outcomes: tx,
            function_arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{function_name}"),
        });
        let app = Router::new()
            .route(&format!("{API}/invocation/next"), get(next))
            .route(&format!("{API}/invocation/{{id}}/response"), post(response))
            .route(&format!("{API}/invocation/{{id}}/error"), post(error))
            .route(&format!("{API}/init/error"), post(init_error))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            shared,
            outcomes,
            server,
        })
    }

    /// `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues one invocation; returns its request id.
    pub fn invoke(&self, event: Value) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        if let Ok(mut q) = self.shared.queue.lock() {
            q.events.push_back((id.clone(), event));
        }
        self.shared.ready.notify_waiters();
        self.shared.ready.notify_one();
        id
    }

    /// When the function first asked for an event (end of its init).
    pub fn first_poll(&self) -> Option<Instant> {
        self.shared.queue.lock().ok().and_then(|q| q.first_poll)
    }

    /// The next answer, or `None` after `timeout`.
    pub async fn outcome(&mut self, timeout: Duration) -> Option<Outcome> {
        tokio::time::timeout(timeout, self.outcomes.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    loop {
        // Register interest before looking, so an invoke between the check and the wait is not lost.
        let notified = shared.ready.notified();
        {
            let Ok(mut q) = shared.queue.lock() else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            q.first_poll.get_or_insert_with(Instant::now);
            if let Some((id, event)) = q.events.pop_front() {
                let mut headers = HeaderMap::new();
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis())
                    + 3_000;
                for (name, value) in [
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        shared.function_arn.clone(),
                    ),
                    (
                        "lambda-runtime-trace-id",
                        "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
                    ),
                ] {
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        headers.insert(name, value);
                    }
                }
                headers.insert("content-type", HeaderValue::from_static("application/json"));
                return (StatusCode::OK, headers, event.to_string()).into_response();
            }
        }
        // The runtime long-polls: hold the request until an event is queued.
        notified.await;
    }
}

fn record(shared: &Shared, kind: OutcomeKind, request_id: Option<String>, body: Bytes) -> Response {
    let _ = shared.outcomes.send(Outcome {
        kind,
        request_id,
        body,
        at: Instant::now(),
    });
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

async fn response(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    record(&shared, OutcomeKind::Response, Some(id), body)
}

async fn error(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    record(&shared, OutcomeKind::Error, Some(id), body)
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    record(&shared, OutcomeKind::InitError, None, body)
}

/// One cold start of one bootstrap binary.
#[derive(Debug, Clone)]
pub struct ColdStart {
    /// exec → the first answer reached the emulator.
    pub exec_to_response: Duration,
    /// exec → the first `invocation/next` (the function's init).
    pub exec_to_first_poll: Option<Duration>,
    /// `VmHWM` of the process after it answered, in KiB.
    pub peak_rss_kib: Option<u64>,
    pub outcome: Outcome,
}

/// A release bootstrap to start under the emulator.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub binary: PathBuf,
    pub function_name: String,
    /// The function's own env (config), on top of what Lambda sets.
    pub env: BTreeMap<String, String>,
    /// stderr of the process goes here (it holds the function's logs).
    pub log: PathBuf,
}

/// Execs `bootstrap` with a Lambda-like environment, hands it `event`, waits for the answer.
pub async fn cold_start(
    bootstrap: &Bootstrap,
    event: Value,
    timeout: Duration,
) -> Result<ColdStart, String> {
    let mut api = RuntimeApi::start(&bootstrap.function_name)
        .await
        .map_err(|e| format!("runtime api: {e}"))?;
    api.invoke(event);
    let log = std::fs::File::create(&bootstrap.log)
        .map_err(|e| format!("{}: {e}", bootstrap.log.display()))?;
    let mut command = tokio::process::Command::new(&bootstrap.binary);
    command
        .env_clear()
        .envs(lambda_env(&bootstrap.function_name, &api.address()))
        .envs(&bootstrap.env)
        .current_dir(bootstrap.binary.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true);
    let start = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("exec {}: {e}", bootstrap.binary.display()))?;
    let outcome = api.outcome(timeout).await;
    // Read the high-water mark while the process still lives (it is parked in `invocation/next`).
    let peak_rss_kib = child.id().and_then(vm_hwm_kib);
    let _ = child.start_kill();
    let _ = child.wait().await;
    let outcome = outcome.ok_or_else(|| {
        format!(
            "{} did not answer within {timeout:?} (log: {})",
            bootstrap.function_name,
            bootstrap.log.display()
        )
    })?;
    Ok(ColdStart {
        exec_to_response: outcome.at.duration_since(start),
        exec_to_first_poll: api.first_poll().map(|t| t.duration_since(start)),
        peak_rss_kib,
        outcome,
    })
}

/// What Lambda's `provided.al2023` runtime sets for every function, with the test AWS credentials.
fn lambda_env(function_name: &str, runtime_api: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            &format!("/aws/lambda/{function_name}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2024/11/22/[$LATEST]bench"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_SESSION_TOKEN", "test"),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_rust"),
        ("LAMBDA_TASK_ROOT", "/var/task"),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        ("_HANDLER", "bootstrap"),
        ("TZ", ":UTC"),
        ("LANG", "en_US.UTF-8"),
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// `VmHWM` (peak resident set) of a live process, in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The emulator speaks the Runtime API as the runtime client expects: headers on `next`,
    /// 202 on `response`, and the outcome carries the function's answer.
    #[tokio::test]
    async fn hands_out_one_event_and_records_the_answer() {
        let mut api = RuntimeApi::start("bench-fn").await.unwrap();
        let id = api.invoke(serde_json::json!({"hello": "world"}));
        let client = reqwest::Client::new();
        let base = format!("http://{}{API}", api.address());
        let next = client
            .get(format!("{base}/invocation/next"))
            .send()
            .await
            .unwrap();
        assert_eq!(next.status(), 200);
        assert_eq!(next.headers()["lambda-runtime-aws-request-id"], id.as_str());
        assert!(next.headers().contains_key("lambda-runtime-deadline-ms"));
        assert_eq!(
            next.headers()["lambda-runtime-invoked-function-arn"],
            "arn:aws:lambda:us-east-1:000000000000:function:bench-fn"
        );
        assert_eq!(next.json::<Value>().await.unwrap()["hello"], "world");
        let posted = client
            .post(format!("{base}/invocation/{id}/response"))
            .body(r#"{"statusCode":200}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), 202);
        let outcome = api.outcome(Duration::from_secs(5)).await.unwrap();
        assert_eq!(outcome.kind, OutcomeKind::Response);
        assert_eq!(outcome.request_id.as_deref(), Some(id.as_str()));
        assert_eq!(&outcome.body[..], br#"{"statusCode":200}"#);
        assert!(api.first_poll().is_some());
    }

    #[test]
    fn reads_this_process_peak_rss() {
        let kib = vm_hwm_kib(std::process::id()).unwrap();
        assert!(kib > 100, "VmHWM {kib} KiB");
    }
}
