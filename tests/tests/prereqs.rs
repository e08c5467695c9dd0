//! What a newcomer's machine meets first: `make run` / `make test` name a system tool they cannot
//! install (with its package) before anything builds, and a tools venv left half made by an
//! earlier failure is made again on the next run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cardbot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A PATH holding every command of this one but `without`.
fn path_without(without: &str) -> TempDir {
    let dir = TempDir::new("path");
    let path = std::env::var_os("PATH").unwrap_or_default();
    for folder in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let link = dir.path().join(&name);
            if name == without || link.exists() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(entry.path(), link);
        }
    }
    dir
}

#[test]
fn a_missing_system_tool_is_named_with_its_package_before_anything_builds() {
    let path = path_without("java");
    let out = Command::new("bash")
        .arg(repo().join("scripts/check-prereqs.sh"))
        .arg("test")
        .env("PATH", path.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("java") && stderr.contains("openjdk-17-jre-headless"),
        "{stderr}"
    );
    // Everything else this machine has is not named.
    assert_eq!(stderr.matches("\n  - ").count(), 1, "{stderr}");
    // With the tool back, the check passes.
    let ok = Command::new("bash")
        .arg(repo().join("scripts/check-prereqs.sh"))
        .arg("test")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn a_half_made_tools_venv_is_made_again() {
    let root = TempDir::new("venv");
    std::fs::create_dir_all(root.path().join("scripts")).unwrap();
    std::fs::copy(
        repo().join("scripts/ensure-tools.sh"),
        root.path().join("scripts/ensure-tools.sh"),
    )
    .unwrap();
    let venv = root.path().join(".tools/venv");
    // What an interrupted first run leaves: a venv without pip.
    let made = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success());
    let has_pip = || {
        Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "--version"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(!has_pip());
    // The venv is made again before any package is looked at (no download: the tool is unknown).
    let out = Command::new("bash")
        .arg(root.path().join("scripts/ensure-tools.sh"))
        .arg("no-such-tool")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("creating the tools venv"), "{stderr}");
    assert!(stderr.contains("unknown tool: no-such-tool"), "{stderr}");
    assert!(has_pip(), "{stderr}");
}
