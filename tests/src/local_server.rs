//! Starting a local server for the tests (DynamoDB Local, moto): a free port, a watcher shell that
//! ends the server when this test process is gone (statics are never dropped), and a wait until
//! the server answers.

use std::future::Future;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first request.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free local port: {e}"))
}

/// Runs `command` (a shell command line that may use `"$1"` = `arg` and `"$2"` = the port) in
/// `dir`, tied to this process, and waits until `ready()` says it answers; returns its endpoint.
pub(crate) async fn launch<F, Fut>(
    name: &str,
    command: &str,
    arg: &str,
    dir: Option<&str>,
    port: u16,
    ready: F,
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
