//! The official SDKs on the same encrypted request bytes: lark-oapi (Python) and
//! @larksuiteoapi/node-sdk, each run by its harness in `bench/peers/`, installed by `bench/run.sh`.

use std::path::Path;
use std::process::Command;

use serde::Deserialize;

/// Median ns per request of one peer (verify + decrypt + parse + handler call).
#[derive(Debug, Clone, Deserialize)]
pub struct PeerResult {
    pub peer: String,
    pub version: String,
    pub event_ns: f64,
    pub card_ns: f64,
}

/// lark-oapi 1.7.5 from `.tools/bench-venv`.
pub fn lark_oapi(repo: &Path) -> Result<PeerResult, String> {
    let python = repo.join(".tools/bench-venv/bin/python");
    if !python.exists() {
        return Err("lark-oapi not installed (.tools/bench-venv; run make bench)".into());
    }
    let mut cmd = Command::new(python);
    cmd.arg(repo.join("bench/peers/lark_oapi_peer.py"))
        .args(["2000", "7"]);
    run(cmd, "lark-oapi")
}

/// @larksuiteoapi/node-sdk 1.74.0 from `.tools/bench-node`.
pub fn node_sdk(repo: &Path) -> Result<PeerResult, String> {
    let modules = repo.join(".tools/bench-node/node_modules");
    if !modules.join("@larksuiteoapi/node-sdk").exists() {
        return Err("node-sdk not installed (.tools/bench-node; run make bench)".into());
    }
    let mut cmd = Command::new("node");
    cmd.arg(repo.join("bench/peers/node_sdk_peer.js"))
        .args(["5000", "7"])
        .env("NODE_PATH", modules);
    run(cmd, "node-sdk")
}

fn run(mut cmd: Command, name: &str) -> Result<PeerResult, String> {
    let out = cmd.output().map_err(|e| format!("{name}: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{name} failed: {}",
            stderr.lines().last().unwrap_or("no output")
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| format!("{name}: unreadable output {line:?}: {e}"))
}
