//! `sam deploy` of the real `template.yaml` to the emulator. The copy that is deployed differs from
//! the template in what a local run must change, and nothing else (each difference is checked to
//! apply, so a template that changes shape fails here by name instead of deploying something else):
//!
//! 1. Each function's `CodeUri` points at a folder holding the host build of that function as
//!    `bootstrap`: the emulator runs it as a plain process, so no cross-compiled Lambda build is
//!    needed (the template's `BuildMethod: rust-cargolambda` is for `sam build`, not run here).
//! 2. When the functions talk to the Feishu simulator, `FeishuBaseUrl` loses its `AllowedValues`
//!    (open.feishu.cn, open.larksuite.com), which would refuse the simulator's loopback URL.
//!
//! Everything else (parameters, rules, the table, its stream mapping and filter, the schedule, the
//! secret, the function URLs, roles, alarms, outputs) is the template's own.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The three functions: template logical id, `CodeUri` in the template, binary name.
pub const FUNCTIONS: [(&str, &str, &str); 3] = [
    (
        "EventCallbackFunction",
        "functions/event-callback",
        "event-callback",
    ),
    ("CardActionFunction", "functions/card-action", "card-action"),
    (
        "CardUpdaterFunction",
        "functions/card-updater",
        "card-updater",
    ),
];

/// The block `local_template` removes when the simulator stands in for Feishu.
const BASE_URL_ALLOWED_VALUES: &str =
    "    AllowedValues:\n      - https://open.feishu.cn\n      - https://open.larksuite.com\n";

/// The template to deploy locally: `template` with each function's `CodeUri` set to
/// `stage/<binary>` and, when `open_base_url`, `FeishuBaseUrl`'s `AllowedValues` removed.
/// An error names the change that no longer applies.
pub fn local_template(template: &str, stage: &Path, open_base_url: bool) -> Result<String, String> {
    let mut text = template.to_owned();
    for (logical_id, code_uri, binary) in FUNCTIONS {
        let line = format!("      CodeUri: {code_uri}\n");
        if text.matches(&line).count() != 1 {
            return Err(format!(
                "template.yaml: expected exactly one `CodeUri: {code_uri}` ({logical_id}); the local deploy points it at the host build"
            ));
        }
        text = text.replace(
            &line,
            &format!("      CodeUri: {}\n", stage.join(binary).display()),
        );
    }
    if open_base_url {
        let Some(at) = text.find("  FeishuBaseUrl:\n") else {
            return Err("template.yaml: no FeishuBaseUrl parameter".into());
        };
        // The parameter's block: its indented lines, up to the next parameter (two spaces, a name).
        let body = at + "  FeishuBaseUrl:\n".len();
        let block_end = text[body..]
            .match_indices('\n')
            .map(|(i, _)| body + i + 1)
            .find(|&i| {
                let line = &text[i..];
                line.starts_with("  ") && !line.starts_with("   ") || !line.starts_with(' ')
            })
            .unwrap_or(text.len());
        let Some(offset) = text[at..block_end].find(BASE_URL_ALLOWED_VALUES) else {
            return Err(
                "template.yaml: FeishuBaseUrl's AllowedValues changed; the local deploy removes them to reach the simulator"
                    .into(),
            );
        };
        text.replace_range(at + offset..at + offset + BASE_URL_ALLOWED_VALUES.len(), "");
    }
    Ok(text)
}

/// Copies each function's binary from `bin_dir` to `stage/<binary>/bootstrap` (mode 755).
pub fn stage_functions(bin_dir: &Path, stage: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for (_, _, binary) in FUNCTIONS {
        let from = bin_dir.join(binary);
        let dir = stage.join(binary);
        let to = dir.join("bootstrap");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        std::fs::copy(&from, &to).map_err(|e| {
            format!(
                "cannot copy the {binary} function ({}): {e}; build it first (cargo build --bin {binary})",
                from.display()
            )
        })?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot make {} executable: {e}", to.display()))?;
    }
    Ok(())
}

/// What `sam deploy` needs: the SAM CLI, a working folder, the emulator, the stack.
pub struct SamDeploy<'a> {
    /// The folder holding the `sam` executable (`.tools/venv/bin`).
    pub sam_bin: &'a Path,
    /// Where the template copy is written and `sam` runs (so no `samconfig.toml` of the repo applies).
    pub dir: &'a Path,
    pub endpoint: &'a str,
    pub region: &'a str,
    pub stack: &'a str,
    pub template: &'a str,
    /// `ParameterKey` → value, passed in a file (`--parameter-overrides file://…`, mode 0600): a
    /// value keeps its spaces, and the secrets are never on a command line `ps` shows.
    pub parameters: &'a [(String, String)],
}

impl SamDeploy<'_> {
    /// Writes the template and runs `sam deploy --resolve-s3` against the emulator, with a clean
    /// environment (dummy credentials, `AWS_ENDPOINT_URL`, no telemetry). Its output goes to
    /// `<dir>/sam-deploy.log`; an error carries the log's tail.
    pub async fn run(&self) -> Result<(), String> {
        let template = self.dir.join("template.yaml");
        std::fs::write(&template, self.template)
            .map_err(|e| format!("cannot write {}: {e}", template.display()))?;
        let log_path = self.dir.join("sam-deploy.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let home = self.dir.join("home");
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        let mut sam = tokio::process::Command::new(self.sam_bin.join("sam"));
        sam.current_dir(self.dir)
            .env_clear()
            .envs(super::emulator::clean_env(self.sam_bin, &home))
            .envs([
                ("AWS_ENDPOINT_URL", self.endpoint),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", self.region),
                ("AWS_DEFAULT_REGION", self.region),
                ("SAM_CLI_TELEMETRY", "0"),
            ])
            .args(["deploy", "--template-file"])
            .arg(&template)
            .args([
                "--stack-name",
                self.stack,
                "--resolve-s3",
                "--capabilities",
                "CAPABILITY_IAM",
                "--region",
                self.region,
                "--no-confirm-changeset",
                "--no-fail-on-empty-changeset",
                "--no-progressbar",
            ]);
        if !self.parameters.is_empty() {
            // JSON is YAML, and SAM 1.170 reads `.yaml` and `.toml` override files (not `.json`).
            let file = self.dir.join("parameters.yaml");
            write_private(&file, &parameters_json(self.parameters))?;
            sam.arg("--parameter-overrides")
                .arg(format!("file://{}", file.display()));
        }
        sam.stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .kill_on_drop(true);
        let status = sam
            .status()
            .await
            .map_err(|e| format!("cannot run sam: {e}"))?;
        if status.success() {
            return Ok(());
        }
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!(
            "sam deploy of {} failed ({status}):\n{}",
            self.stack,
            tail.join("\n")
        ))
    }
}

/// The parameters as a JSON object (a YAML flow mapping, which SAM reads from a `file://` override).
fn parameters_json(parameters: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = parameters
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// Writes `text` to `path`, readable by this user only (it holds the app's secrets).
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Where cargo puts the functions' binaries for `profile` (`debug` or `release`).
pub fn target_dir(repo_root: &Path, profile: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                repo_root.join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| repo_root.join("target"))
        .join(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> String {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
            .unwrap()
    }

    #[test]
    fn the_local_template_differs_only_in_code_and_the_base_urls_allowed_values() {
        let original = template();
        let local = local_template(&original, Path::new("/stage"), true).unwrap();
        let removed: Vec<&str> = original
            .lines()
            .filter(|l| !local.lines().any(|m| m == *l))
            .collect();
        assert_eq!(
            removed,
            [
                "    AllowedValues:",
                "      - https://open.feishu.cn",
                "      - https://open.larksuite.com",
                "      CodeUri: functions/event-callback",
                "      CodeUri: functions/card-action",
                "      CodeUri: functions/card-updater",
            ]
        );
        for binary in ["event-callback", "card-action", "card-updater"] {
            assert!(local.contains(&format!("      CodeUri: /stage/{binary}\n")));
        }
        // Other parameters keep their AllowedValues.
        assert!(local.contains("AllowedValues: [entity, message]"));
        let kept = local_template(&original, Path::new("/stage"), false).unwrap();
        assert!(kept.contains("      - https://open.larksuite.com\n"));
    }

    #[test]
    fn parameters_go_in_a_private_file_with_their_spaces() {
        let dir = std::env::temp_dir().join(format!("cardbot-params-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("parameters.yaml");
        let params = [("LogLevel".to_owned(), "info, cardbot=debug".to_owned())];
        write_private(&file, &parameters_json(&params)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(mode, 0o600);
        assert_eq!(text, r#"{"LogLevel":"info, cardbot=debug"}"#);
    }

    #[test]
    fn a_template_that_changed_shape_is_named() {
        let original = template();
        let moved = original.replace("CodeUri: functions/card-action", "CodeUri: functions/x");
        let err = local_template(&moved, Path::new("/s"), false).unwrap_err();
        assert!(err.contains("functions/card-action"), "{err}");
        let reworded = original.replace("      - https://open.larksuite.com\n", "");
        let err = local_template(&reworded, Path::new("/s"), true).unwrap_err();
        assert!(err.contains("FeishuBaseUrl"), "{err}");
    }
}
