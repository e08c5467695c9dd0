//! Child processes of the local stack: each in its own process group, tied to our life, and
//! stopped with its whole tree (cargo lambda watch → cargo run → the function binaries).

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// A running child process with its own process group.
pub struct Service {
    pub name: &'static str,
    child: Child,
    pid: u32,
    /// Set while stopping: what a process says on its way out is noise.
    muted: Arc<AtomicBool>,
}

impl Service {
    /// Spawns `command` in a new process group. On Linux the child also gets SIGTERM when we die,
    /// so a killed runner (SIGKILL, panic) does not leave servers holding the ports.
    /// Call it from the main task: the parent-death signal follows the spawning thread.
    pub fn spawn(name: &'static str, mut command: Command) -> Result<Self, String> {
        command.process_group(0).kill_on_drop(true);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl and getppid are async-signal-safe; the closure allocates nothing.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let pid = child.id().ok_or_else(|| format!("{name} exited at once"))?;
        Ok(Self {
            name,
            child,
            pid,
            muted: Arc::default(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Streams the child's stdout and stderr to our stdout, each line behind `prefix`.
    pub fn forward_output(&mut self, prefix: &'static str) {
        if let Some(out) = self.child.stdout.take() {
            tokio::spawn(forward_lines(out, prefix, self.muted.clone()));
        }
        if let Some(err) = self.child.stderr.take() {
            tokio::spawn(forward_lines(err, prefix, self.muted.clone()));
        }
    }

    /// `Some(description)` once the child has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// Waits until the child exits; returns how.
    pub async fn wait(&mut self) -> String {
        match self.child.wait().await {
            Ok(status) => status.to_string(),
            Err(e) => e.to_string(),
        }
    }

    /// SIGTERM to the group and every descendant, up to `grace` to exit, then SIGKILL to what is left.
    pub async fn stop(&mut self, grace: Duration) {
        self.muted.store(true, Ordering::SeqCst);
        let mut tree = descendants(self.pid);
        tree.push(self.pid);
        signal_group(self.pid, libc::SIGTERM);
        for pid in &tree {
            signal(*pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && tree.iter().any(|pid| alive(*pid)) {
            let _ = self.child.try_wait();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Grandchildren may have started since: look again before the hard stop.
        for pid in descendants(self.pid) {
            if !tree.contains(&pid) {
                tree.push(pid);
            }
        }
        signal_group(self.pid, libc::SIGKILL);
        for pid in &tree {
            if alive(*pid) {
                signal(*pid, libc::SIGKILL);
            }
        }
        let _ = self.child.wait().await;
    }
}

/// Ctrl-C, SIGTERM or SIGHUP, whichever comes first; which one (the runners of `make run` and
/// `make deploy-local` stop on each).
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return "interrupted";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = term.recv() => "terminated",
        _ = hup.recv() => "hung up",
    }
}

/// A `Command` with piped output and no stdin.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

async fn forward_lines(
    stream: impl AsyncRead + Unpin,
    prefix: &'static str,
    muted: Arc<AtomicBool>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        // cargo's lock waits while the functions start together are noise, not progress.
        if !muted.load(Ordering::SeqCst)
            && !line
                .trim_start()
                .starts_with("Blocking waiting for file lock")
        {
            println!("{prefix}{line}");
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory effects; a stale pid only yields ESRCH.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

fn signal_group(pgid: u32, sig: libc::c_int) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid) {
        // SAFETY: as above; a negative pid addresses the process group.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// Is `pid` alive (a zombie counts as gone)?
pub fn alive(pid: u32) -> bool {
    // A zombie still answers kill(0): count it as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_fields(&stat).is_some_and(|(state, _)| state != "Z"),
        Err(_) => {
            let Ok(pid) = libc::pid_t::try_from(pid) else {
                return false;
            };
            // SAFETY: signal 0 only checks existence.
            unsafe { libc::kill(pid, 0) == 0 }
        }
    }
}

/// Every process below `root`, from /proc (empty where there is no /proc; the group kill remains).
pub fn descendants(root: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (_, ppid) = stat_fields(&stat)?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, ppid) in &parents {
            if *ppid == parent && !found.contains(pid) {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found
}

/// `(state, ppid)` of a /proc stat line; the command name may hold spaces and parentheses.
fn stat_fields(stat: &str) -> Option<(&str, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Fails with a clear message when `port` on 127.0.0.1 is taken.
pub fn ensure_port_free(port: u16, what: &str, env: &str) -> Result<(), String> {
    std::net::TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .map_err(|e| {
            format!(
                "port {port} ({what}) is taken ({e}): stop what uses it, or choose another port with {env}=<port>"
            )
        })
}

/// A free port on 127.0.0.1 (the OS picks it).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free local port: {e}"))
}

/// Waits until something accepts TCP connections on `port`, or `child` exits, or `timeout` passes.
pub async fn wait_for_port(
    port: u16,
    service: &mut Service,
    timeout: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Some(status) = service.exited() {
            return Err(format!("{} exited ({status})", service.name));
        }
        if started.elapsed() > timeout {
            return Err(format!(
                "{} did not open port {port} within {timeout:?}",
                service.name
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_odd_command_names() {
        let stat = "4242 (cargo (run) x) S 17 4242 4242 0 -1 4194560";
        assert_eq!(stat_fields(stat), Some(("S", 17)));
        assert_eq!(stat_fields("garbage"), None);
    }

    #[test]
    fn descendants_of_this_process_include_a_spawned_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let found = descendants(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
    }
}
