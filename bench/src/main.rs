//! `make bench`: runs every measurement, prints one table and writes `bench/results.json`.
//!
//! `bench/run.sh` runs the criterion hot path and the release builds first; this binary reads the
//! criterion medians, runs the peers, the flows and the cold starts, and reports. A part whose
//! prerequisite is missing prints `n/a (reason)`; nothing here fails a build on a number.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use cardbot_bench::fixtures::{self, Vectors};
use cardbot_bench::peers::{self, PeerResult};
use cardbot_bench::report::{self, duration_ns, Row, Verdict};
use cardbot_bench::runtime_api::{self, Bootstrap, OutcomeKind};
use serde_json::{json, Value};

/// Which of a peer's two numbers a row compares against.
type PeerMetric = fn(&PeerResult) -> f64;

/// The three release bootstraps and what Lambda calls them.
const FUNCTIONS: [&str; 3] = ["event-callback", "card-action", "card-updater"];

struct Bench {
    repo: PathBuf,
    target: PathBuf,
    vectors: Vectors,
    cold_runs: usize,
    raw: BTreeMap<String, Value>,
    rows: Vec<Row>,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::to_owned).collect());
    let wants = |s: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == s));
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .canonicalize()
        .map_err(|e| format!("repo root: {e}"))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"));
    let mut bench = Bench {
        vectors: Vectors::load()?,
        repo,
        target,
        cold_runs: std::env::var("BENCH_COLD_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(7),
        raw: BTreeMap::new(),
        rows: Vec::new(),
    };
    if wants("hot") {
        bench.hot_path();
    }
    if wants("cold") {
        bench.cold_start().await;
    }
    if wants("flows") {
        bench.flows().await;
    }
    print!("{}", report::table(&bench.rows));
    let notes: Vec<String> = bench
        .rows
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Miss) || !r.note.is_empty())
        .map(|r| format!("  {}: {}", r.metric, r.note))
        .collect();
    if !notes.is_empty() {
        println!("\nnotes:\n{}", notes.join("\n"));
    }
    let out = bench.repo.join("bench/results.json");
    let json = report::results_json(&bench.rows, json!(bench.raw));
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    std::fs::write(&out, text + "\n").map_err(|e| format!("{}: {e}", out.display()))?;
    println!("\nwritten: {}", out.display());
    Ok(())
}

impl Bench {
    /// Median ns of one criterion bench of `hot_path`, from its last run.
    fn criterion_median(&self, id: &str) -> Option<f64> {
        let path = self
            .target
            .join("criterion/hot_path")
            .join(id)
            .join("new/estimates.json");
        let text = std::fs::read_to_string(path).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v["median"]["point_estimate"].as_f64()
    }

    /// Criterion medians, with the peers on the same request bytes as ratios.
    fn hot_path(&mut self) {
        let lark = peers::lark_oapi(&self.repo);
        let node = peers::node_sdk(&self.repo);
        for peer in [&lark, &node] {
            match peer {
                Ok(p) => {
                    self.raw.insert(
                        format!("peer.{}", p.peer),
                        json!({"peer": p.peer, "version": p.version, "event_ns": p.event_ns, "card_ns": p.card_ns}),
                    );
                }
                Err(e) => eprintln!("peer: {e}"),
            }
        }
        let cases: [(&str, &str, PeerMetric); 2] = [
            (
                "event_verify_decrypt_parse",
                "审批 event: verify+decrypt+parse",
                |p| p.event_ns,
            ),
            (
                "card_verify_decrypt_parse",
                "card click: verify+decrypt+parse",
                |p| p.card_ns,
            ),
        ];
        for (id, metric, peer_ns) in cases {
            let Some(ours) = self.criterion_median(id) else {
                self.rows.push(Row::new("hot", metric).not_available(
                    "≥ 50× lark-oapi, ≥ 10× node-sdk",
                    format!("criterion hot_path/{id} has no result: run make bench"),
                ));
                continue;
            };
            self.raw.insert(format!("hot_path.{id}_ns"), json!(ours));
            for (peer, name, factor) in [(&lark, "lark-oapi", 50.0), (&node, "node-sdk", 10.0)] {
                let target = format!("≥ {factor:.0}× {name}");
                let row = Row::new("hot", format!("{metric} vs {name}")).value(
                    ours,
                    "ns",
                    duration_ns(ours),
                );
                self.rows.push(match peer {
                    Ok(p) => {
                        let ratio = peer_ns(p) / ours;
                        row.target(target, Verdict::from_bool(ratio >= factor))
                            .peer(format!(
                                "{} {} = {ratio:.0}×",
                                name,
                                duration_ns(peer_ns(p))
                            ))
                    }
                    Err(e) => row
                        .target(target, Verdict::NotAvailable)
                        .peer(format!("n/a ({e})")),
                });
            }
        }
        match self.criterion_median("challenge_answer") {
            Some(ns) => self
                .rows
                .push(Row::new("hot", "challenge: decrypt+answer").value(
                    ns,
                    "ns",
                    duration_ns(ns),
                )),
            None => self.rows.push(
                Row::new("hot", "challenge: decrypt+answer")
                    .not_available("-", "criterion hot_path/challenge_answer has no result"),
            ),
        }
        for (id, metric, reason) in [
            (
                "approval_card_build_serialize",
                "approval card: build+serialise",
                "cards module not on main yet",
            ),
            (
                "event_handler",
                "event handler (MemoryStore, fake Feishu)",
                "event-callback handler not on main yet",
            ),
            (
                "card_handler",
                "card handler (MemoryStore, fake Feishu)",
                "card-action handler not on main yet",
            ),
        ] {
            match self.criterion_median(id) {
                Some(ns) => {
                    self.raw.insert(format!("hot_path.{id}_ns"), json!(ns));
                    self.rows
                        .push(Row::new("hot", metric).value(ns, "ns", duration_ns(ns)));
                }
                None => self
                    .rows
                    .push(Row::new("hot", metric).not_available("-", reason)),
            }
        }
    }

    /// Each release bootstrap under the Runtime API emulator: exec → answer, size, peak RSS.
    async fn cold_start(&mut self) {
        let dynamo = cardbot_tests::dynamodb_local::endpoint().await;
        let table = {
            let client = cardbot_tests::dynamodb_local::client().await;
            cardbot_tests::dynamodb_local::fresh_table(&client).await
        };
        let challenge = match fixtures::encrypted_challenge(&self.vectors.webhook) {
            Ok(c) => c,
            Err(e) => {
                self.rows
                    .push(Row::new("cold", "cold start").not_available("≤ 50 ms", e));
                return;
            }
        };
        let env = self.function_env(&dynamo, &table, "http://127.0.0.1:9");
        let logs = self.target.join("bench-logs");
        let _ = std::fs::create_dir_all(&logs);
        let mut raw = serde_json::Map::new();
        for name in FUNCTIONS {
            let binary = self.target.join("release").join(name);
            let size = std::fs::metadata(&binary).map(|m| m.len());
            let (event, expect): (Value, &str) = match name {
                "card-updater" => (scheduled_event(), "a scheduled tick"),
                "card-action" => (
                    fixtures::function_url_event(&challenge, "/"),
                    "the challenge",
                ),
                _ => (
                    fixtures::function_url_event(&challenge, "/"),
                    "the challenge",
                ),
            };
            let Ok(size) = size else {
                let reason = format!("no release build at {}", binary.display());
                for metric in ["cold start (exec → answer)", "binary size", "peak RSS"] {
                    self.rows.push(
                        Row::new("cold", format!("{name}: {metric}"))
                            .not_available("-", reason.clone()),
                    );
                }
                continue;
            };
            let bootstrap = Bootstrap {
                binary: binary.clone(),
                function_name: name.to_owned(),
                env: env.clone(),
                log: logs.join(format!("{name}.log")),
            };
            let mut times = Vec::new();
            let mut inits = Vec::new();
            let mut rss = Vec::new();
            let mut answer = String::new();
            let mut error = None;
            for _ in 0..self.cold_runs {
                match runtime_api::cold_start(&bootstrap, event.clone(), Duration::from_secs(10))
                    .await
                {
                    Ok(c) => {
                        times.push(c.exec_to_response.as_secs_f64() * 1e3);
                        if let Some(i) = c.exec_to_first_poll {
                            inits.push(i.as_secs_f64() * 1e3);
                        }
                        rss.extend(c.peak_rss_kib);
                        answer = describe_answer(c.outcome.kind, &c.outcome.body);
                    }
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            let size_mb = size as f64 / 1e6;
            self.rows.push(
                Row::new("cold", format!("{name}: binary size (stripped release)"))
                    .value(size_mb, "MB", format!("{size_mb:.2} MB"))
                    .target("≤ 8 MB", Verdict::from_bool(size_mb <= 8.0)),
            );
            let metric = format!("{name}: cold start, exec → answer to {expect}");
            if let Some(e) = error {
                self.rows
                    .push(Row::new("cold", metric).not_available("≤ 50 ms", e));
                self.rows.push(
                    Row::new("cold", format!("{name}: peak RSS"))
                        .not_available("≤ 32 MB", "did not answer"),
                );
                continue;
            }
            let median = median(&mut times);
            let init = median_opt(&mut inits);
            let peak_mb = rss.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
            raw.insert(
                name.to_owned(),
                json!({"exec_to_response_ms": times, "exec_to_first_poll_ms": inits, "peak_rss_kib": rss, "size_bytes": size, "answer": answer}),
            );
            self.rows.push(
                Row::new("cold", metric)
                    .value(median, "ms", format!("{median:.1} ms"))
                    .target("≤ 50 ms", Verdict::from_bool(median <= 50.0))
                    .note(format!(
                        "median of {} runs (min {:.1} ms); init (exec → first poll) {}; answer: {answer}",
                        times.len(),
                        times.first().copied().unwrap_or(0.0),
                        init.map_or("n/a".into(), |i| format!("{i:.1} ms")),
                    )),
            );
            self.rows.push(
                Row::new("cold", format!("{name}: peak RSS (VmHWM)"))
                    .value(peak_mb, "MiB", format!("{peak_mb:.1} MiB"))
                    .target("≤ 32 MB", Verdict::from_bool(peak_mb <= 32.0)),
            );
        }
        self.raw.insert("cold_start".into(), Value::Object(raw));
    }

    /// Round trips per flow, click latency over DynamoDB Local + the simulator, updater pacing.
    async fn flows(&mut self) {
        let rows = [
            (
                "round trips: message → card",
                "≤ 4",
                "event-callback handler and the simulator not on main yet",
            ),
            (
                "round trips: click → answer",
                "≤ 3 DynamoDB, 0 Feishu",
                "card-action handler not on main yet",
            ),
            (
                "round trips: one post-answer job",
                "-",
                "card-updater handler not on main yet",
            ),
            (
                "token fetches over 1,000 events",
                "≤ 1",
                "event-callback handler and the simulator not on main yet",
            ),
            (
                "click answer p50 (1,000 clicks)",
                "-",
                "card-action handler and the simulator not on main yet",
            ),
            (
                "click answer p99 (1,000 clicks)",
                "≤ 50 ms",
                "card-action handler and the simulator not on main yet",
            ),
            (
                "updater: 1,000 due jobs, achieved rate",
                "≥ 45 req/s",
                "card-updater handler and the simulator not on main yet",
            ),
            (
                "updater: 429s seen",
                "0",
                "card-updater handler and the simulator not on main yet",
            ),
            (
                "updater: wall for 1,000 jobs",
                "-",
                "card-updater handler and the simulator not on main yet",
            ),
        ];
        for (metric, target, reason) in rows {
            self.rows
                .push(Row::new("flows", metric).not_available(target, reason));
        }
    }

    /// The env each function reads (docs: design.md "Config"), pointed at local servers.
    fn function_env(&self, dynamo: &str, table: &str, feishu: &str) -> BTreeMap<String, String> {
        let v = &self.vectors;
        [
            ("FEISHU_APP_ID", v.app_id.as_str()),
            ("FEISHU_APP_SECRET", "bench-app-secret"),
            (
                "FEISHU_ENCRYPT_KEY",
                v.webhook.encrypt_key.as_ref().map_or("", |k| k.expose()),
            ),
            (
                "FEISHU_VERIFICATION_TOKEN",
                v.webhook.verification_token.expose(),
            ),
            ("FEISHU_BASE_URL", feishu),
            ("TABLE_NAME", table),
            ("AWS_ENDPOINT_URL_DYNAMODB", dynamo),
            ("RUST_LOG", "warn"),
        ]
        .into_iter()
        .map(|(k, val)| (k.to_owned(), val.to_owned()))
        .collect()
    }
}

/// An EventBridge schedule tick, as the updater's sweep receives it.
fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": "2024-11-22T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/cardbot-updater-sweep"],
        "detail": {}
    })
}

/// `200 {"challenge":…}`, `501 not implemented yet`, `error …`: what the function answered.
fn describe_answer(kind: OutcomeKind, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match kind {
        OutcomeKind::Response => match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.get("statusCode").is_some() => format!(
                "{} {}",
                v["statusCode"],
                v["body"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(60)
                    .collect::<String>()
            ),
            _ => text.chars().take(60).collect(),
        },
        OutcomeKind::Error => format!(
            "invocation error {}",
            text.chars().take(80).collect::<String>()
        ),
        OutcomeKind::InitError => {
            format!("init error {}", text.chars().take(80).collect::<String>())
        }
    }
}

/// Sorts and returns the median (the mean of the middle two for an even count).
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn median_opt(xs: &mut [f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| median(xs))
}
