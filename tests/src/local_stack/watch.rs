//! The functions under `cargo lambda watch`, run as Lambda runs them: up to N instances (processes)
//! of each function at once, and a function process that dies (panic, kill, OOM) is started again on
//! the next request.
//!
//! cargo lambda watch itself never starts a dead instance again: its slot stays taken and requests
//! routed to it hang. So the [`Supervisor`] looks at the watch's process tree four times a second;
//! when a function process it saw is gone, it restarts cargo lambda watch on the same port, which
//! starts each function again on its first request. Requests in flight at that moment fail as they
//! would on Lambda (Feishu delivers them again). Editing a function's code ends its process the same
//! way, so a reload also goes through a restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::process::{self, command, Service};
use super::{lines, FUNCTIONS};

/// How often the supervisor looks for dead function processes.
const POLL: Duration = Duration::from_millis(250);
/// How long cargo lambda watch may take to open its port (no build: the runner built first).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything needed to start cargo lambda watch, again and again.
#[derive(Debug, Clone)]
pub struct WatchRecipe {
    pub program: PathBuf,
    pub repo_root: PathBuf,
    pub address: String,
    pub port: u16,
    /// `--concurrency`: instances per function.
    pub instances: u16,
    /// `--release`: the functions' release builds.
    pub release: bool,
    pub env: Vec<(String, String)>,
    pub env_remove: Vec<&'static str>,
    /// The functions' non-secret settings (`--env-file`).
    pub env_file: PathBuf,
}

impl WatchRecipe {
    fn command(&self) -> tokio::process::Command {
        let mut watch = command(&self.program);
        watch
            .args(["lambda", "watch", "--invoke-address", &self.address])
            .args(["--invoke-port", &self.port.to_string()])
            .args(["--concurrency", &self.instances.to_string()])
            .args(self.release.then_some("--release"))
            .arg("--env-file")
            .arg(&self.env_file)
            .current_dir(&self.repo_root);
        for name in &self.env_remove {
            watch.env_remove(name);
        }
        for (name, value) in &self.env {
            watch.env(name, value);
        }
        watch
    }

    /// Starts cargo lambda watch and waits until it accepts connections.
    pub async fn start(&self) -> Result<Service, String> {
        let mut watch = Service::spawn("cargo lambda watch", self.command())?;
        watch.forward_output("  λ │ ");
        process::wait_for_port(self.port, &mut watch, START_TIMEOUT).await?;
        Ok(watch)
    }
}

/// Keeps cargo lambda watch serving; see the module docs.
pub struct Supervisor {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    failures: mpsc::UnboundedReceiver<String>,
}

impl Supervisor {
    /// Takes over a started watch; restarts it when a function process dies.
    pub fn start(recipe: WatchRecipe, watch: Service) -> Self {
        let (stop, stopped) = oneshot::channel();
        let (report, failures) = mpsc::unbounded_channel();
        let task = tokio::spawn(supervise(recipe, watch, stopped, report));
        Self {
            stop: Some(stop),
            task,
            failures,
        }
    }

    /// Resolves when cargo lambda watch cannot be kept running; says why.
    pub async fn failed(&mut self) -> String {
        self.failures
            .recv()
            .await
            .unwrap_or_else(|| "the cargo lambda watch supervisor stopped".into())
    }

    /// Stops cargo lambda watch with every function process.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

async fn supervise(
    recipe: WatchRecipe,
    mut watch: Service,
    mut stopped: oneshot::Receiver<()>,
    report: mpsc::UnboundedSender<String>,
) {
    // pid → function name of every function process seen since the last (re)start.
    let mut seen: HashMap<u32, &'static str> = HashMap::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tokio::time::sleep(POLL) => {}
        }
        let why = match watch.exited() {
            Some(status) => format!("cargo lambda watch exited ({status})"),
            None => {
                let running = function_processes(watch.pid());
                let dead = seen
                    .iter()
                    .find(|(pid, _)| !running.contains_key(pid))
                    .map(|(pid, name)| format!("{name} (pid {pid})"));
                seen.extend(running);
                match dead {
                    Some(dead) => dead,
                    None => continue,
                }
            }
        };
        println!(
            "{}{why}; restarting cargo lambda watch, the function starts again on its next request",
            lines::FUNCTION_DIED
        );
        watch.stop(Duration::from_secs(5)).await;
        seen.clear();
        match recipe.start().await {
            Ok(started) => watch = started,
            Err(e) => {
                let _ = report.send(format!("cannot restart cargo lambda watch: {e}"));
                // Nothing left to stop; wait for the stack to stop us.
                let _ = stopped.await;
                return;
            }
        }
    }
    watch.stop(Duration::from_secs(5)).await;
}

/// The function processes (pid → binary name) below `root`.
pub fn function_processes(root: u32) -> HashMap<u32, &'static str> {
    process::descendants(root)
        .into_iter()
        .filter_map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let name = FUNCTIONS.into_iter().find(|f| *f == comm.trim())?;
            Some((pid, name))
        })
        .collect()
}
