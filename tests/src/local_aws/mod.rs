//! `make deploy-local`: the real `template.yaml` deployed with `sam deploy` to a local AWS emulator
//! (ministack, without Docker), with the Feishu simulator as the functions' Feishu: the stack AWS
//! would create (function URLs, the table and its stream mapping with the template's filter, the
//! schedule, the Secrets Manager secret), served to the outside by a front that forwards the two
//! webhook URLs and nothing else. `docs/deploy-local.md` lists what differs from a deploy to AWS.
//!
//! The settings are `make run`'s ([`crate::local_stack::Options`]) where they mean the same, plus
//! [`env::EMULATOR_PORT`], [`env::FUNCTIONS_DIR`] and [`env::STACK_NAME`]; the functions' own
//! settings reach them as the template's parameters ([`PARAMETERS`]), as on AWS.

pub mod deploy;
pub mod emulator;
pub mod logs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::local_stack::process::{self, command, Service};
use crate::local_stack::{self as stack, front, FeishuTarget, Options, Urls};
use crate::simulator::{SimUser, Simulator};
use emulator::{Api, Emulator, REGION};

/// Env names of `make deploy-local`'s own settings (beside `make run`'s).
pub mod env {
    /// The emulator's port (default: a free one). It serves every AWS API of the stack, the
    /// table and the App Secret included: never expose it.
    pub const EMULATOR_PORT: &str = "CARDBOT_EMULATOR_PORT";
    /// A folder holding already built `event-callback`, `card-action` and `card-updater`
    /// binaries, deployed as they are instead of building (the tests' debug builds).
    pub const FUNCTIONS_DIR: &str = "CARDBOT_FUNCTIONS_DIR";
    /// The CloudFormation stack's name (default `cardbot-local`).
    pub const STACK_NAME: &str = "CARDBOT_STACK_NAME";
}

/// Lines printed beside `make run`'s ([`crate::local_stack::lines`]).
pub mod lines {
    /// The emulator's endpoint: this machine only.
    pub const EMULATOR: &str = "local AWS endpoint (this machine only): ";
    pub const STACK: &str = "stack: ";
}

pub const DEFAULT_STACK: &str = "cardbot-local";
/// The front's per-function cap without `CARDBOT_LOCAL_INSTANCES`: none to speak of.
const UNCAPPED: u16 = 10_000;

/// The functions' settings (env name) and the template parameter each one is deployed as.
pub const PARAMETERS: [(&str, &str); 17] = [
    ("FEISHU_APP_ID", "FeishuAppId"),
    ("FEISHU_APP_TYPE", "AppType"),
    ("FEISHU_APP_SECRET", "FeishuAppSecret"),
    ("FEISHU_ENCRYPT_KEY", "FeishuEncryptKey"),
    ("FEISHU_VERIFICATION_TOKEN", "FeishuVerificationToken"),
    ("ALLOW_UNENCRYPTED", "AllowUnencrypted"),
    ("FEISHU_BASE_URL", "FeishuBaseUrl"),
    ("CARD_DELIVERY", "CardDelivery"),
    ("TENANT_TIME_ZONE", "TenantTimeZone"),
    ("APPROVER_OPEN_IDS", "ApproverOpenIds"),
    ("APPROVER_FROM_LEADER", "ApproverFromLeader"),
    ("APPROVAL_FALLBACK", "ApprovalFallback"),
    ("APPROVAL_TTL", "ApprovalTtl"),
    ("APPROVAL_REMIND_AFTER", "ApprovalRemindAfter"),
    ("DECISION_EVENT_BUS", "DecisionEventBus"),
    ("RUST_LOG", "LogLevel"),
    ("MAX_BODY_BYTES", "MaxBodyBytes"),
];

/// The template's `NoEcho` parameters: printed as `***`.
pub const SECRET_PARAMETERS: [&str; 3] = [
    "FeishuAppSecret",
    "FeishuEncryptKey",
    "FeishuVerificationToken",
];

/// `make deploy-local`'s own settings.
#[derive(Debug, Clone)]
pub struct LocalAwsOptions {
    pub emulator_port: u16,
    pub functions_dir: Option<PathBuf>,
    pub stack_name: String,
    /// `CARDBOT_LOCAL_INSTANCES` when set: the front lets at most that many requests of each
    /// function through at once. Unset: no cap, as Lambda without reserved concurrency (the
    /// emulator starts a function process per concurrent request).
    pub instances: Option<u16>,
    /// The functions' settings of [`PARAMETERS`] as the lookup gives them (non-empty only).
    pub settings: Vec<(&'static str, String)>,
}

impl LocalAwsOptions {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let stack_name = get(env::STACK_NAME).unwrap_or_else(|| DEFAULT_STACK.into());
        // CloudFormation: a letter, then letters, digits and hyphens, at most 128.
        let valid = stack_name.len() <= 128
            && stack_name.starts_with(|c: char| c.is_ascii_alphabetic())
            && stack_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return Err(format!(
                "{}={stack_name:?}: a stack name is a letter, then letters, digits and hyphens (at most 128)",
                env::STACK_NAME
            ));
        }
        Ok(Self {
            emulator_port: match get(env::EMULATOR_PORT) {
                None => 0,
                Some(v) => v.parse().map_err(|_| {
                    format!(
                        "{} must be a port number (0-65535), not {v:?}",
                        env::EMULATOR_PORT
                    )
                })?,
            },
            functions_dir: get(env::FUNCTIONS_DIR).map(PathBuf::from),
            stack_name,
            // Checked by `Options` (1 to 32).
            instances: get(stack::env::LOCAL_INSTANCES).and_then(|v| v.parse().ok()),
            settings: PARAMETERS
                .iter()
                .filter_map(|(name, _)| Some((*name, get(name)?)))
                .collect(),
        })
    }
}

/// The deployed stack as the tests and the printout need it.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub stack: String,
    /// The stack's outputs (EventCallbackUrl, CardCallbackUrl, TableName, FeishuAppSecretArn, …).
    pub outputs: BTreeMap<String, String>,
    /// Logical id → physical id of the stack's resources.
    pub resources: BTreeMap<String, String>,
    /// The emulator's endpoint (every AWS API; this machine only).
    pub endpoint: String,
    /// The function URLs in the emulator's local form (behind the front).
    pub event_function_url: String,
    pub card_function_url: String,
}

/// A running deployment; [`DeployedStack::stop`] ends every process it started.
pub struct DeployedStack {
    pub options: Options,
    pub aws: LocalAwsOptions,
    pub urls: Option<Urls>,
    pub deployed: Option<Deployed>,
    pub simulator: Option<Simulator>,
    pub approver: Option<SimUser>,
    emulator: Option<Emulator>,
    build: Option<Service>,
    tasks: Vec<JoinHandle<()>>,
    /// Scratch folder of this run (staged functions, template copy, emulator state); removed at stop.
    dir: PathBuf,
}

fn say(line: impl AsRef<str>) {
    println!("==> {}", line.as_ref());
}

impl DeployedStack {
    pub fn new(options: Options, aws: LocalAwsOptions) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "cardbot-deploy-local-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        Self {
            options,
            aws,
            urls: None,
            deployed: None,
            simulator: None,
            approver: None,
            emulator: None,
            build: None,
            tasks: Vec::new(),
            dir,
        }
    }

    /// The emulator's APIs, once it runs.
    pub fn api(&self) -> Option<Api> {
        self.emulator.as_ref().map(Emulator::api)
    }

    /// Installs what is missing, builds, starts the emulator and the simulator, deploys the
    /// template, and starts the front. On error, what was started keeps running until
    /// [`DeployedStack::stop`].
    pub async fn start(&mut self) -> Result<&Urls, String> {
        let o = self.options.clone();
        let started = Instant::now();
        process::ensure_port_free(
            o.watch_port,
            "the function URL front",
            stack::env::WATCH_PORT,
        )?;
        if let FeishuTarget::Simulator { port } = o.feishu {
            if port != 0 {
                process::ensure_port_free(port, "Feishu simulator", stack::env::SIMULATOR_PORT)?;
            }
        }
        if self.aws.emulator_port != 0 {
            process::ensure_port_free(
                self.aws.emulator_port,
                "local AWS emulator",
                env::EMULATOR_PORT,
            )?;
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;

        say("tools: the local AWS emulator (PyPI ministack, into .tools/ministack) and the SAM CLI (into .tools/venv)");
        let emulator_bin =
            script_output(&o.repo_root, "scripts/ensure-tools.sh", &["ministack"]).await?;
        let sam_bin = script_output(&o.repo_root, "scripts/ensure-tools.sh", &["sam"]).await?;

        let bin_dir = match &self.aws.functions_dir {
            Some(dir) => {
                say(format!(
                    "functions: the binaries in {} ({})",
                    dir.display(),
                    env::FUNCTIONS_DIR
                ));
                dir.clone()
            }
            None => {
                say(format!(
                    "building the three functions for this machine (cargo build{}; the first build takes a few minutes)",
                    if o.release { " --release" } else { "" }
                ));
                self.build_functions().await?;
                deploy::target_dir(&o.repo_root, if o.release { "release" } else { "debug" })
            }
        };
        let stage = self.dir.join("functions");
        deploy::stage_functions(&bin_dir, &stage)?;

        let (mut settings, simulator_url) = match &o.feishu {
            FeishuTarget::Simulator { port } => {
                let (sim, approver, env) = stack::start_simulator(&o, *port).await?;
                let url = sim.base_url();
                self.approver = approver;
                self.simulator = Some(sim);
                (env, Some(url))
            }
            FeishuTarget::External { base_url } => {
                say(format!(
                    "Feishu: {base_url} (credentials from FEISHU_* in the environment)"
                ));
                (Vec::new(), None)
            }
        };
        // The functions read their secrets from the stack's Secrets Manager secret, as on AWS.
        settings.retain(|(name, _)| *name != cardbot::secrets::SECRET_ARN_VAR);
        let parameters = parameters(&settings, |name| {
            self.aws
                .settings
                .iter()
                .find(|(set, _)| *set == name)
                .map(|(_, v)| v.clone())
        });
        // Chosen now, not before the install and the build: a free port does not stay free for minutes.
        let emulator_port = match self.aws.emulator_port {
            0 => process::free_port()?,
            port => port,
        };

        say(format!(
            "starting the local AWS emulator on 127.0.0.1:{emulator_port} (this machine only)"
        ));
        let emulator_dir = self.dir.join("emulator");
        std::fs::create_dir_all(&emulator_dir).map_err(|e| e.to_string())?;
        let emulator =
            Emulator::start(Path::new(&emulator_bin), &emulator_dir, emulator_port).await?;
        let endpoint = emulator.endpoint.clone();
        let api = emulator.api();
        self.emulator = Some(emulator);

        let template_path = o.repo_root.join("template.yaml");
        let template = std::fs::read_to_string(&template_path)
            .map_err(|e| format!("cannot read {}: {e}", template_path.display()))?;
        let open_base_url = simulator_url.is_some();
        let local = deploy::local_template(&template, &stage, open_base_url)?;
        say(format!(
            "sam deploy of template.yaml as stack {} (parameters: {})",
            self.aws.stack_name,
            parameters
                .iter()
                .map(|(k, v)| {
                    if SECRET_PARAMETERS.contains(&k.as_str()) {
                        format!("{k}=***")
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        ));
        let deploy_started = Instant::now();
        let deploy_dir = self.dir.join("deploy");
        std::fs::create_dir_all(&deploy_dir).map_err(|e| e.to_string())?;
        deploy::SamDeploy {
            sam_bin: Path::new(&sam_bin),
            dir: &deploy_dir,
            endpoint: &endpoint,
            region: REGION,
            stack: &self.aws.stack_name,
            template: &local,
            parameters: &parameters,
        }
        .run()
        .await?;
        say(format!(
            "deployed in {:.1} s",
            deploy_started.elapsed().as_secs_f64()
        ));

        let outputs = api.stack_outputs(&self.aws.stack_name).await?;
        let resources = api.stack_resources(&self.aws.stack_name).await?;
        let output = |key: &str| {
            outputs
                .get(key)
                .cloned()
                .ok_or_else(|| format!("the stack has no output {key} (outputs: {outputs:?})"))
        };
        let local_url = |key: &str| -> Result<String, String> {
            let url = output(key)?;
            emulator::local_function_url(&url, &endpoint)
                .ok_or_else(|| format!("output {key} is not a function URL: {url}"))
        };
        let deployed = Deployed {
            stack: self.aws.stack_name.clone(),
            event_function_url: local_url("EventCallbackUrl")?,
            card_function_url: local_url("CardCallbackUrl")?,
            outputs: outputs.clone(),
            resources,
            endpoint: endpoint.clone(),
        };
        let table = output("TableName")?;

        if let Some((path, set)) = &o.definitions {
            let client = stack::dynamodb_client(&endpoint, REGION);
            let store = cardbot::store::dynamo::DynamoStore::new(client, &table);
            let applied = cardbot::definitions::apply(
                &store,
                cardbot::definitions::SELF_BUILT_TENANT,
                set,
                cardbot::store::now_millis(),
            )
            .await
            .map_err(|e| format!("applying {}: {e}", path.display()))?;
            let shown: Vec<String> = applied
                .iter()
                .map(|a| format!("{} v{} ({:?})", a.id, a.version, a.change))
                .collect();
            say(format!(
                "definitions from {} (APPROVAL_DEFINITIONS): {}",
                path.display(),
                shown.join(", ")
            ));
        }

        let watch_url = format!("http://127.0.0.1:{}", o.watch_port);
        let routes = front::Routes::from([
            (
                stack::EVENT_CALLBACK.to_owned(),
                deployed.event_function_url.clone(),
            ),
            (
                stack::CARD_ACTION.to_owned(),
                deployed.card_function_url.clone(),
            ),
        ]);
        self.tasks.push(
            front::start(
                &o.watch_address,
                o.watch_port,
                routes,
                self.aws.instances.unwrap_or(UNCAPPED),
            )
            .await?,
        );
        let urls = Urls {
            event_callback: format!("{watch_url}/lambda-url/{}/", stack::EVENT_CALLBACK),
            card_callback: format!("{watch_url}/lambda-url/{}/", stack::CARD_ACTION),
            watch: watch_url,
            dynamodb: endpoint.clone(),
            simulator: simulator_url,
        };
        if let Some(sim) = &self.simulator {
            sim.connect_bot(&urls.event_callback, &urls.card_callback);
        }
        // The functions' lines, from the log groups the template made.
        let groups = [
            (stack::EVENT_CALLBACK, "EventCallbackLogGroup"),
            (stack::CARD_ACTION, "CardActionLogGroup"),
            (stack::updater::UPDATER_FUNCTION, "CardUpdaterLogGroup"),
        ]
        .into_iter()
        .map(|(label, logical)| {
            deployed
                .resources
                .get(logical)
                .map(|group| (label.to_owned(), group.clone()))
                .ok_or_else(|| format!("the stack has no {logical}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
        self.tasks.push(logs::follow(api.clone(), groups));
        say("starting the functions (an unsigned probe to each URL, a sweep to the updater)");
        self.warm_up(&api, &deployed, &urls).await?;
        self.deployed = Some(deployed);
        say(format!("up in {:.0} s", started.elapsed().as_secs_f64()));
        Ok(self.urls.insert(urls))
    }

    async fn build_functions(&mut self) -> Result<(), String> {
        let mut cargo = command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cargo.arg("build").current_dir(&self.options.repo_root);
        if self.options.release {
            cargo.arg("--release");
        }
        for (_, _, binary) in deploy::FUNCTIONS {
            cargo.args(["--bin", binary]);
        }
        let mut build = Service::spawn("cargo build", cargo)?;
        build.forward_output("  cargo │ ");
        let build = self.build.insert(build);
        let status = build.wait().await;
        self.build = None;
        if status != "exit status: 0" {
            return Err(format!("cargo build of the functions failed ({status})"));
        }
        Ok(())
    }

    /// The first request to each function starts its process: do that now, not on Feishu's clock.
    async fn warm_up(&self, api: &Api, deployed: &Deployed, urls: &Urls) -> Result<(), String> {
        let http = reqwest::Client::new();
        let knock = |url: String| {
            let http = http.clone();
            async move {
                let answer = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body("{}")
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                let status = answer.status();
                let body = answer.text().await.unwrap_or_default();
                Ok::<_, String>((status, body))
            }
        };
        let updater = deployed
            .resources
            .get("CardUpdaterFunction")
            .cloned()
            .ok_or("the stack has no CardUpdaterFunction")?;
        let sweep = stack::updater::scheduled_event(std::time::SystemTime::now(), REGION);
        let (event, card, swept) = tokio::join!(
            knock(urls.event_callback.clone()),
            knock(urls.card_callback.clone()),
            api.invoke(&updater, &sweep),
        );
        let ((event, event_body), (card, card_body)) = (event?, card?);
        for (function, status, body) in [
            (stack::EVENT_CALLBACK, event, event_body),
            (stack::CARD_ACTION, card, card_body),
        ] {
            // The functions' own refusal of a plain body: 400 (a 404 would be the front or a
            // wrong function URL, not the function).
            if status != reqwest::StatusCode::BAD_REQUEST {
                return Err(format!(
                    "the deployed {function} function answered an unsigned probe with {status}, not a refusal: {}",
                    logs::error_message(&body)
                ));
            }
        }
        swept.map_err(|e| format!("the deployed card-updater failed its first sweep: {e}"))?;
        say(format!(
            "functions up: event-callback {event} and card-action {card} to an unsigned probe (refused, as they must), card-updater swept"
        ));
        Ok(())
    }

    /// Resolves when the emulator exits on its own: the stack is gone.
    pub async fn wait_for_failure(&mut self) -> String {
        loop {
            if let Some(emulator) = &mut self.emulator {
                if let Some(status) = emulator.exited() {
                    return format!("the local AWS emulator exited ({status})");
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Stops the front, the emulator (its function processes included), the simulator and a
    /// running build; removes the run's scratch folder.
    pub async fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        if let Some(mut build) = self.build.take() {
            say("stopping cargo build");
            build.stop(Duration::from_secs(5)).await;
        }
        if let Some(mut emulator) = self.emulator.take() {
            say("stopping the local AWS emulator and its function processes");
            emulator.stop().await;
        }
        self.simulator = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// The run's scratch folder (emulator log, `sam deploy` log, staged functions).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The template parameters for the functions' settings: each of [`PARAMETERS`] from `settings`
/// (the simulator's app and the demo's routing), else from `lookup` (the environment); unset and
/// empty ones keep the template's default. On an arm64 host, `Architecture=arm64`.
pub fn parameters(
    settings: &[(&'static str, String)],
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = PARAMETERS
        .iter()
        .filter_map(|(name, key)| {
            let value = settings
                .iter()
                .find(|(set, _)| set == name)
                .map(|(_, v)| v.clone())
                .or_else(|| lookup(name))?;
            let value = value.trim().to_owned();
            (!value.is_empty()).then(|| ((*key).to_owned(), value))
        })
        .collect();
    if cfg!(target_arch = "aarch64") {
        out.push(("Architecture".into(), "arm64".into()));
    }
    out
}

/// Runs an install script from `scripts/` (its messages pass through) and returns its stdout.
async fn script_output(root: &Path, script: &str, args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new(root.join(script))
        .args(args)
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        // Stopped with us when Ctrl-C comes during an install.
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{script} failed ({}); see its message above",
            out.status
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_the_templates_parameters_and_the_simulators_win() {
        let settings = vec![
            ("FEISHU_APP_ID", "cli_sim".to_owned()),
            ("FEISHU_ENCRYPT_KEY", String::new()),
        ];
        let env = |name: &str| match name {
            "FEISHU_APP_ID" => Some("cli_env".to_owned()),
            "CARD_DELIVERY" => Some("message".to_owned()),
            "RUST_LOG" => Some("cardbot=debug,info".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("never".to_owned()),
            _ => None,
        };
        let p = parameters(&settings, env);
        let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("FeishuAppId"), Some("cli_sim"));
        assert_eq!(get("CardDelivery"), Some("message"));
        assert_eq!(get("LogLevel"), Some("cardbot=debug,info"));
        assert_eq!(get("FeishuEncryptKey"), None, "empty keeps the default");
        assert!(!p.iter().any(|(_, v)| v == "never"), "{p:?}");
    }

    #[test]
    fn every_parameter_is_in_the_template() {
        let template =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
                .unwrap();
        for (name, key) in PARAMETERS {
            assert!(
                template.contains(&format!("\n  {key}:\n")),
                "{key} ({name})"
            );
            assert!(
                template.contains(&format!("{name}: !Ref {key}"))
                    || name.starts_with("FEISHU_A")
                    || name.ends_with("_KEY")
                    || name.ends_with("_TOKEN"),
                "{name} reaches the functions as !Ref {key}"
            );
        }
    }

    #[test]
    fn the_secret_parameters_are_the_templates_no_echo_ones() {
        let template =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
                .unwrap();
        // A parameter is a two-space-indented `Name:` line; its properties follow, deeper.
        let mut current = "";
        let mut no_echo = Vec::new();
        for line in template.lines() {
            if line.starts_with("  ") && !line.starts_with("   ") && line.ends_with(':') {
                current = line.trim().trim_end_matches(':');
            } else if line.trim() == "NoEcho: true" {
                no_echo.push(current);
            }
        }
        no_echo.sort_unstable();
        assert_eq!(no_echo, SECRET_PARAMETERS);
    }

    #[test]
    fn a_bad_stack_name_or_port_is_refused_by_name() {
        let lookup = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let ok = LocalAwsOptions::from_lookup(lookup(&[])).unwrap();
        assert_eq!(ok.stack_name, DEFAULT_STACK);
        assert_eq!(ok.emulator_port, 0);
        let err =
            LocalAwsOptions::from_lookup(lookup(&[(env::STACK_NAME, "9 lives")])).unwrap_err();
        assert!(err.contains(env::STACK_NAME), "{err}");
        let err = LocalAwsOptions::from_lookup(lookup(&[(env::EMULATOR_PORT, "x")])).unwrap_err();
        assert!(err.contains(env::EMULATOR_PORT), "{err}");
    }
}
