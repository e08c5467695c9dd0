//! Starting a local server for the tests (DynamoDB Local, the local AWS emulator): a free port, a watcher shell that
//! ends the server when this test process is gone (statics are never dropped), and a wait until
//! the server answers.

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// How long a server may take to answer its first request.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The server's endpoint for this test process: the one `env` names (the server `make test`
/// shares), else the one `start` starts, once.
pub(crate) async fn shared_endpoint<Fut: Future<Output = String>>(
    cell: &'static OnceCell<String>,
    env: &str,
    start: impl FnOnce() -> Fut,
) -> String {
    cell.get_or_init(|| async {
        match std::env::var(env) {
            Ok(endpoint) if !endpoint.trim().is_empty() => endpoint,
            _ => start().await,
        }
    })
    .await
    .clone()
}

/// Runs the install script `scripts/<script> <args>` (its messages pass through) and returns what
/// it prints (a folder); panics with `unavailable` when it fails.
pub(crate) fn install(script: &str, args: &[&str], unavailable: &str) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(script);
    let out = Command::new(&script)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    if !out.status.success() {
        panic!("{unavailable}");
    }
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// [`launch`] on a free port, trying another when the port was taken between probing and binding;
/// panics after three failures.
pub(crate) async fn launch_on_a_free_port<F, Fut>(
    name: &str,
    command: &str,
    arg: &str,
    dir: Option<&str>,
    ready: F,
) -> String
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut last_error = String::new();
    for _ in 0..3 {
        match launch(name, command, arg, dir, free_port(), &ready).await {
            Ok(endpoint) => return endpoint,
            Err(e) => last_error = e,
        }
    }
    panic!("{name} did not start: {last_error}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free local port: {e}"))
}

/// Runs `command` (a shell command line that may use `"$1"` = `arg` and `"$2"` = the port) in
/// `dir`, tied to this process, and waits until `ready()` says it answers; returns its endpoint.
async fn launch<F, Fut>(
    name: &str,
    command: &str,
    arg: &str,
    dir: Option<&str>,
    port: u16,
    ready: &F,
) -> Result<String, String>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = bool>,
{
    let watcher = format!(
        r#"{command} >/dev/null 2>&1 &
s=$!
while kill -0 "$3" 2>/dev/null && kill -0 "$s" 2>/dev/null; do sleep 0.5; done
kill "$s" 2>/dev/null
wait "$s" 2>/dev/null"#
    );
    let mut shell = Command::new("sh");
    shell.args(["-c", &watcher, name]);
    if let Some(dir) = dir {
        shell.current_dir(dir);
    }
    let mut child = shell
        .arg(arg)
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{name} exited ({status}) on port {port}"));
        }
        if ready(endpoint.clone()).await {
            return Ok(endpoint);
        }
        if started.elapsed() > STARTUP_TIMEOUT {
            let _ = child.kill();
            return Err(format!(
                "{name}: no answer on port {port} after {STARTUP_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
