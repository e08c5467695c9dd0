//! Shared by the functions' `tests/start.rs` (included with `#[path]`): a function binary at cold
//! start with only the given environment.

use std::process::Command;

/// Runs `binary` with a clean environment holding `vars` plus a region and a table name; with no
/// Lambda runtime API it stops right past its config. Returns (exited 0, stdout + stderr).
pub fn start(binary: &str, vars: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(binary)
        .env_clear()
        .envs([
            ("AWS_REGION", "us-east-1"),
            ("TABLE_NAME", "t"),
            ("NO_COLOR", "1"),
        ])
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
