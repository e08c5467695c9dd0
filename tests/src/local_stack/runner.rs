//! A runner binary (`cardbot-local`, `cardbot-deploy-local`) driven by a test: started with its
//! stdout read line by line (echoed behind a label, kept, and handed over), waited on until its
//! ready line, and stopped with SIGTERM as Ctrl-C would, reporting what it left running.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{lines, process};

/// A started runner; stopped with SIGTERM (then SIGKILL) when dropped.
pub struct Runner {
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Runner {
    /// Spawns `command` with stdout piped (stderr passes through); each line is printed behind
    /// `label`.
    pub fn spawn(mut command: Command, label: &'static str) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("{label} │ {line}");
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Self { child, lines, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads lines until the ready line ([`lines::READY`]); the value after each of `prefixes`
    /// (trimmed) as printed. Panics, with everything printed so far, when it does not come
    /// `within` or a prefix was not printed.
    pub fn wait_ready(
        &self,
        within: Duration,
        prefixes: &[&'static str],
    ) -> HashMap<&'static str, String> {
        let deadline = Instant::now() + within;
        let mut seen = HashMap::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|e| {
                panic!(
                    "no ready line within {within:?} ({e}):\n{}",
                    self.log_text()
                )
            });
            for prefix in prefixes {
                if let Some(v) = line.strip_prefix(prefix) {
                    seen.insert(*prefix, v.trim().to_owned());
                }
            }
            if line.starts_with(lines::READY) {
                for prefix in prefixes {
                    assert!(
                        seen.contains_key(prefix),
                        "no {prefix:?} line:\n{}",
                        self.log_text()
                    );
                }
                return seen;
            }
        }
    }

    /// Whether the runner printed a line that `matches`.
    pub fn printed(&self, matches: impl Fn(&str) -> bool) -> bool {
        self.log.lock().unwrap().iter().any(|l| matches(l))
    }

    /// Everything it printed so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGTERM, then waits up to 30 s; the exit status and the processes it had started that
    /// outlived it.
    pub fn stop(&mut self) -> (Option<i32>, Vec<u32>) {
        let tree = process::descendants(self.child.id());
        // SAFETY: kill has no memory effects; a stale pid only yields ESRCH.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(300));
        let orphans = tree
            .into_iter()
            .filter(|pid| process::alive(*pid))
            .collect();
        (status, orphans)
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.stop();
        }
    }
}
