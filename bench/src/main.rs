//! `make bench`: runs every measurement, prints one table and writes `bench/results.json`.
//!
//! `bench/run.sh` runs the criterion hot path and the release builds first; this binary reads the
//! criterion medians, runs the peers, the flows and the cold starts, and reports. A part whose
//! prerequisite is missing prints `n/a (reason)`; nothing here fails a build on a number.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use cardbot_bench::approvals::{self, ModeFlows};
use cardbot_bench::cost::{self, Arch, CpuPerInvocation};
use cardbot_bench::fixtures::{self, Vectors};
use cardbot_bench::flows::{self, FlowPlan};
use cardbot_bench::peers::{self, PeerResult};
use cardbot_bench::report::{self, duration_ns, Row, Verdict};
use cardbot_bench::runtime_api::{self, Bootstrap, OutcomeKind};
use cardbot_tests::local_stack::burst::{self, percentile, BurstPlan, BurstReport};
use cardbot_tests::local_stack::{updater, LocalStack, Options};
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
        cold_runs: env_usize("BENCH_COLD_RUNS", 7),
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
    if wants("calls") {
        bench.calls_and_cost().await;
    }
    if wants("burst") {
        bench.burst(Stack::MakeRun).await;
    }
    if wants("deployed") {
        bench.burst(Stack::Deployed).await;
    }
    print!("{}", report::table(&bench.rows));
    let notes: Vec<String> = bench
        .rows
        .iter()
        .filter(|r| !r.note.is_empty())
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
    /// `make run`'s whole stack with `BENCH_BURST_INSTANCES` (4) instances of each function, or
    /// the stack `make deploy-local` deploys to the local AWS emulator (which starts a function
    /// process per concurrent request): 200 users send 审批 at once, then 100 of them click 请假 at
    /// once (`BENCH_BURST_USERS`, `BENCH_BURST_CLICKS`).
    async fn burst(&mut self, stack: Stack) {
        let plan = BurstPlan {
            users: env_usize("BENCH_BURST_USERS", 200),
            clicks: env_usize("BENCH_BURST_CLICKS", 100),
            settle: Duration::from_secs(180),
            warm_up: 16,
        };
        let instances = env_usize("BENCH_BURST_INSTANCES", 4);
        let (result, section, label) = match stack {
            Stack::MakeRun => (
                run_burst(&plan, instances).await,
                "burst",
                format!(
                    "{} users, {} clicks, {instances} instances/function (make run)",
                    plan.users, plan.clicks
                ),
            ),
            Stack::Deployed => (
                run_burst_deployed(&plan, instances).await,
                "deployed",
                format!(
                    "{} users, {} clicks, {} on the deployed stack (make deploy-local)",
                    plan.users,
                    plan.clicks,
                    match instances {
                        0 => "no cap".to_owned(),
                        n => format!("{n} at once/function"),
                    }
                ),
            ),
        };
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                self.rows
                    .push(Row::new(section, label).not_available("no problem", e));
                return;
            }
        };
        self.raw.insert(section.into(), json!(r));
        let problems = r.problems();
        let m = &r.messages;
        self.rows.push(
            Row::new(
                section,
                format!(
                    "{} users send 审批 at once: answers 200 within 3 s",
                    r.users
                ),
            )
            .value(
                m.ok_in_time as f64,
                "answers",
                format!(
                    "{}/{} (p50 {} ms, p99 {} ms, max {} ms)",
                    m.ok_in_time, m.sent, m.p50_ms, m.p99_ms, m.max_ms
                ),
            )
            .target("all", Verdict::from_bool(m.all_in_time())),
        );
        self.rows.push(
            Row::new(section, "chats with exactly 1 text + 1 card")
                .value(
                    r.chats_exact as f64,
                    "chats",
                    format!("{}/{}", r.chats_exact, r.users),
                )
                .target("all", Verdict::from_bool(r.chats_exact == r.users)),
        );
        if let Some(ms) = r.last_card_ms {
            self.rows
                .push(Row::new(section, "time until the last card").value(
                    ms as f64,
                    "ms",
                    format!("{:.1} s", ms as f64 / 1e3),
                ));
        }
        let c = &r.clicks;
        self.rows.push(
            Row::new(
                section,
                format!("{} click 请假 at once: answers 200 within 3 s", c.sent),
            )
            .value(
                c.ok_in_time as f64,
                "answers",
                format!(
                    "{}/{} (p50 {} ms, p99 {} ms, max {} ms)",
                    c.ok_in_time, c.sent, c.p50_ms, c.p99_ms, c.max_ms
                ),
            )
            .target("all", Verdict::from_bool(c.all_in_time())),
        );
        self.rows.push(
            Row::new(section, "clicked cards reaching 请假通过")
                .value(
                    r.cards_approved as f64,
                    "cards",
                    format!(
                        "{}/{}{}",
                        r.cards_approved,
                        c.sent,
                        r.last_approval_ms.map_or(String::new(), |ms| format!(
                            ", the last after {:.1} s",
                            ms as f64 / 1e3
                        ))
                    ),
                )
                .target("all", Verdict::from_bool(r.cards_approved == c.sent)),
        );
        let rates = &r.rates;
        for (metric, value, limit) in [
            (
                "busiest second of Open API calls",
                rates.app_max_per_second,
                50,
            ),
            ("busiest minute of one API", rates.api_max_per_minute, 1000),
            (
                "busiest second of sends into one chat",
                rates.chat_max_per_second,
                5,
            ),
        ] {
            self.rows.push(
                Row::new(section, metric)
                    .value(value as f64, "calls", value.to_string())
                    .target(format!("≤ {limit}"), Verdict::from_bool(value <= limit)),
            );
        }
        self.rows.push(
            Row::new(section, "Open API calls answered 429")
                .value(
                    rates.rate_limited as f64,
                    "calls",
                    rates.rate_limited.to_string(),
                )
                .target("0", Verdict::from_bool(rates.rate_limited == 0)),
        );
        self.rows.push(
            Row::new(section, "Open API calls in the burst and the clicks")
                .value(
                    r.open_api_calls as f64,
                    "calls",
                    r.open_api_calls.to_string(),
                )
                .note(problems.join("; ")),
        );
    }

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
                    "≥ 50× lark-oapi, ≥ 20× node-sdk",
                    format!("criterion hot_path/{id} has no result: run make bench"),
                ));
                continue;
            };
            self.raw.insert(format!("hot_path.{id}_ns"), json!(ours));
            for (peer, name, factor) in [(&lark, "lark-oapi", 50.0), (&node, "node-sdk", 20.0)] {
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
        self.floor();
        for (id, metric) in [
            (
                "event_part_signature",
                "审批 event, part: SHA-256 signature",
            ),
            (
                "event_part_decrypt",
                "审批 event, part: AES-256-CBC decrypt",
            ),
            (
                "event_part_json",
                "审批 event, part: plaintext JSON → typed (direct)",
            ),
            (
                "event_part_json_scan",
                "审批 event, part: plaintext JSON scanned, nothing kept",
            ),
            ("challenge_answer", "challenge: decrypt+answer"),
            (
                "approval_card_build_serialize",
                "approval card: build+serialise",
            ),
            (
                "definitions_file_check",
                "definitions file (examples/definitions.yaml): parse + check + cards fit",
            ),
            (
                "definition_form_build_serialize",
                "a definition's form (expense): build+serialise",
            ),
            (
                "event_handler",
                "event handler (MemoryStore, in-process Feishu)",
            ),
            ("card_handler", "card handler (MemoryStore)"),
        ] {
            match self.criterion_median(id) {
                Some(ns) => {
                    self.raw.insert(format!("hot_path.{id}_ns"), json!(ns));
                    self.rows
                        .push(Row::new("hot", metric).value(ns, "ns", duration_ns(ns)));
                }
                None => self.rows.push(
                    Row::new("hot", metric)
                        .not_available("-", format!("criterion hot_path/{id} has no result")),
                ),
            }
        }
    }

    /// The floor of an encrypted request: SHA-256 over the body and AES-256-CBC over the
    /// ciphertext, measured in the same run; the event's hot path as a multiple of it.
    fn floor(&mut self) {
        let (Some(sha), Some(aes), Some(event)) = (
            self.criterion_median("floor_sha256"),
            self.criterion_median("floor_aes_cbc"),
            self.criterion_median("event_verify_decrypt_parse"),
        ) else {
            self.rows.push(
                Row::new(
                    "hot",
                    "审批 event ÷ floor (SHA-256 + AES of the same bytes)",
                )
                .not_available(
                    "≤ 1.5×",
                    "criterion hot_path/floor_* has no result: run make bench",
                ),
            );
            return;
        };
        let floor = sha + aes;
        let ratio = event / floor;
        self.raw.insert(
            "hot_path.floor".into(),
            json!({"sha256_ns": sha, "aes_cbc_ns": aes, "floor_ns": floor, "event_ns": event, "ratio": ratio}),
        );
        self.rows.push(
            Row::new("hot", "floor: SHA-256 (body) + AES-256-CBC (ciphertext)")
                .value(floor, "ns", duration_ns(floor))
                .note(format!(
                    "SHA-256 {} + AES-256-CBC {}, key derived, nothing parsed",
                    duration_ns(sha),
                    duration_ns(aes)
                )),
        );
        let parts: Vec<String> = [
            ("event_part_signature", "signature"),
            ("event_part_decrypt", "base64+decrypt"),
            ("event_part_json", "JSON → typed"),
        ]
        .iter()
        .filter_map(|(id, name)| {
            Some(format!(
                "{name} {}",
                duration_ns(self.criterion_median(id)?)
            ))
        })
        .collect();
        self.rows.push(
            Row::new("hot", "审批 event ÷ floor")
                .value(ratio, "×", format!("{ratio:.2}×"))
                .target("≤ 1.5×", Verdict::from_bool(ratio <= 1.5))
                .note(format!(
                    "event {} = {}; what is above the floor is the typed JSON parse of the plaintext{}",
                    duration_ns(event),
                    parts.join(" + "),
                    self.criterion_median("event_part_json_scan")
                        .map(|ns| format!(", of which the bare JSON scan (nothing kept) is {}", duration_ns(ns)))
                        .unwrap_or_default()
                )),
        );
    }

    /// Feishu calls and DynamoDB requests and units per step of the tutorial interaction and of a
    /// full real approval, in both delivery modes; then what a million of them cost.
    async fn calls_and_cost(&mut self) {
        let flows = match approvals::run().await {
            Ok(f) => f,
            Err(e) => {
                for metric in [
                    "Feishu calls: one post-answer job",
                    "$ per million interactions",
                ] {
                    self.rows
                        .push(Row::new("calls", metric).not_available("-", e.clone()));
                }
                return;
            }
        };
        self.raw.insert("calls".into(), json!(flows));
        for mode in &flows {
            self.call_rows(mode);
        }
        self.cost_rows(&flows);
    }

    fn call_rows(&mut self, flows: &ModeFlows) {
        let mode = flows.mode;
        for step in &flows.tutorial {
            let t = &step.trips;
            let mut row = Row::new("calls", format!("{} ({mode})", step.name))
                .value(t.feishu_total() as f64, "Feishu calls", t.brief())
                .note(format!(
                    "{}; write units by item: {}",
                    t.summary(),
                    t.capacity.writes_summary()
                ));
            if step.name == approvals::POST_ANSWER_STEP {
                row = row.target("≤ 3 Feishu", Verdict::from_bool(t.feishu_total() <= 3));
            }
            self.rows.push(row);
        }
        let total = approvals::total(&flows.real);
        let steps: Vec<String> = flows
            .real
            .iter()
            .map(|s| {
                format!(
                    "{}: {} Feishu, {} DynamoDB",
                    s.name,
                    s.trips.feishu_total(),
                    s.trips.dynamodb_total()
                )
            })
            .collect();
        self.rows.push(
            Row::new("calls", format!("full real approval, 2 approvers ({mode})"))
                .value(total.feishu_total() as f64, "Feishu calls", total.brief())
                .note(format!(
                    "{}; write units by item: {}",
                    steps.join("; "),
                    total.capacity.writes_summary()
                )),
        );
        let most = flows
            .real
            .iter()
            .filter(|s| s.function == approvals::Function::CardUpdater)
            .map(|s| s.trips.feishu_total() as f64 / s.jobs.max(1) as f64)
            .fold(0.0, f64::max);
        self.rows.push(
            Row::new(
                "calls",
                format!("real approval: most Feishu calls per job ({mode})"),
            )
            .value(most, "Feishu calls", format!("{most:.1}"))
            .target("≤ 3", Verdict::from_bool(most <= 3.0))
            .note("notify_approvers sends one card per approver: 2 here"),
        );
    }

    fn cost_rows(&mut self, flows: &[ModeFlows]) {
        let ms =
            |id: &str, fallback: f64| self.criterion_median(id).map_or(fallback, |ns| ns / 1e6);
        let cpu = CpuPerInvocation {
            event_callback_ms: ms("event_handler", 1.0),
            card_action_ms: ms("card_handler", 1.0),
            card_updater_ms: ms("event_handler", 1.0),
        };
        let rtt = std::env::var("BENCH_FEISHU_RTT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cost::FEISHU_RTT_MS);
        let template_mb = match std::fs::read_to_string(self.repo.join("template.yaml"))
            .map_err(|e| e.to_string())
            .and_then(|t| cost::template_memory_mb(&t))
        {
            Ok(mb) => mb,
            Err(e) => {
                self.rows
                    .push(Row::new("cost", "$ per million interactions").not_available("≤ $5", e));
                return;
            }
        };
        let other_mb = if template_mb == 128.0 { 256.0 } else { 128.0 };
        let mut raw = serde_json::Map::new();
        for mode in flows {
            for (flow, steps, what) in [
                (
                    "tutorial",
                    &mode.tutorial,
                    "interactions (审批 → card → 请假 → post-answer job)",
                ),
                (
                    "real",
                    &mode.real,
                    "real approvals (request → decision → every card updated)",
                ),
            ] {
                let uses = cost::uses(steps, cpu, rtt);
                for (arch, memory) in [
                    (Arch::X86_64, template_mb),
                    (Arch::X86_64, other_mb),
                    (Arch::Arm64, template_mb),
                    (Arch::Arm64, other_mb),
                ] {
                    let d = cost::per_million(&uses, arch, memory);
                    raw.insert(
                        format!("{}.{flow}.{}.{memory}", mode.mode, arch.name()),
                        json!({"dollars": d, "total": d.total(), "steps": uses}),
                    );
                    // The table shows the interaction in every setting, the real approval once.
                    if flow == "real" && !(arch == Arch::X86_64 && memory == template_mb) {
                        continue;
                    }
                    let template = if memory == template_mb {
                        ", the template's"
                    } else {
                        ""
                    };
                    let mut row = Row::new(
                        "cost",
                        format!(
                            "$ per million {what}, {} {memory:.0} MB{template} ({})",
                            arch.name(),
                            mode.mode
                        ),
                    )
                    .value(d.total(), "$", format!("${:.2}", d.total()))
                    .note(format!(
                        "{}; write units by item: {}",
                        d.breakdown(),
                        approvals::total(steps).capacity.writes_summary()
                    ));
                    if flow == "tutorial" {
                        row = row.target("≤ $5", Verdict::from_bool(d.total() <= 5.0));
                    }
                    self.rows.push(row);
                }
            }
        }
        raw.insert(
            "assumptions".into(),
            json!({"feishu_rtt_ms": rtt, "stream_delay_ms": cost::STREAM_DELAY_MS,
                   "platform_log_bytes": cost::PLATFORM_LOG_BYTES, "template_memory_mb": template_mb,
                   "cpu_ms": {"event_callback": cpu.event_callback_ms, "card_action": cpu.card_action_ms,
                              "card_updater": cpu.card_updater_ms}}),
        );
        self.raw.insert("cost".into(), Value::Object(raw));
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
                "card-updater" => (
                    updater::scheduled_event(SystemTime::now(), "us-east-1"),
                    "a scheduled tick",
                ),
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
        let plan = FlowPlan {
            events: env_usize("BENCH_EVENTS", 1000),
            updater_time_box: Duration::from_secs(env_usize("BENCH_UPDATER_SECS", 60) as u64),
        };
        let r = match flows::run(&plan).await {
            Ok(r) => r,
            Err(e) => {
                for (metric, target) in [
                    ("round trips: message → card", "≤ 4 Feishu, ≤ 7 DynamoDB"),
                    ("round trips: click → answer", "≤ 4 DynamoDB, 0 Feishu"),
                    ("token fetches over 1,000 events", "≤ 1"),
                    ("click answer p99", "≤ 50 ms"),
                    (
                        "updater: jobs drained, share of what Feishu's limits allow",
                        "≥ 75%",
                    ),
                ] {
                    self.rows
                        .push(Row::new("flows", metric).not_available(target, e.clone()));
                }
                return;
            }
        };
        self.raw.insert("flows".into(), json!(r));
        let warm = &r.message_warm;
        self.rows.push(
            Row::new("flows", "round trips: message → card (warm)")
                .value(
                    warm.total() as f64,
                    "requests",
                    format!(
                        "{} ({} DynamoDB + {} Feishu)",
                        warm.total(),
                        warm.dynamodb_total(),
                        warm.feishu_total()
                    ),
                )
                // The reply's calls (leader look-up, entity, text, card) and its writes: the
                // delivery's lease (claim, entity kept, done), the shared limiter's takes and the
                // card with its jobs in one transaction.
                .target(
                    "≤ 4 Feishu, ≤ 7 DynamoDB",
                    Verdict::from_bool(warm.feishu_total() <= 4 && warm.dynamodb_total() <= 7),
                )
                .note(format!(
                    "{}; cold instance: {} ({})",
                    warm.summary(),
                    r.message_cold.total(),
                    r.message_cold.summary()
                )),
        );
        let click = &r.click_warm;
        self.rows.push(
            Row::new("flows", "round trips: click → answer")
                .value(
                    click.total() as f64,
                    "requests",
                    format!(
                        "{} DynamoDB + {} Feishu",
                        click.dynamodb_total(),
                        click.feishu_total()
                    ),
                )
                // The lease (claim, done), the card read and one transaction (state + job).
                .target(
                    "≤ 4 DynamoDB, 0 Feishu",
                    Verdict::from_bool(
                        click.dynamodb_total() <= 4
                            && click.feishu_total() == 0
                            && r.feishu_calls_during_clicks == 0,
                    ),
                )
                .note(format!(
                    "{}; Feishu requests during all {} clicks: {}",
                    click.summary(),
                    r.clicks,
                    r.feishu_calls_during_clicks
                )),
        );
        let job = &r.post_answer_job;
        self.rows.push(
            Row::new("flows", "round trips: one post-answer job")
                .value(
                    job.total() as f64,
                    "requests",
                    format!(
                        "{} ({} DynamoDB + {} Feishu)",
                        job.total(),
                        job.dynamodb_total(),
                        job.feishu_total()
                    ),
                )
                .note(job.summary()),
        );
        let warm_events = r.events.saturating_sub(1);
        self.rows.push(
            Row::new(
                "flows",
                format!("token fetches over {warm_events} warm events"),
            )
            .value(
                r.token_fetches_warm as f64,
                "fetches",
                r.token_fetches_warm.to_string(),
            )
            .target(
                "≤ 1 per 1,000",
                Verdict::from_bool(
                    (r.token_fetches_warm as f64) <= (warm_events as f64 / 1000.0).max(1.0),
                ),
            )
            .note(format!(
                "plus {} on the cold first event; {} events in {:.1} s, {} not answered 200",
                r.token_fetches_first_event,
                r.events,
                r.events_wall_ms / 1e3,
                r.events_failed
            )),
        );
        let mut handler = r.click_handler_ms.clone();
        let mut roundtrip = r.click_roundtrip_ms.clone();
        let (p50, p99) = (
            percentile(&mut handler, 50.0),
            percentile(&mut handler, 99.0),
        );
        let (rt50, rt99) = (
            percentile(&mut roundtrip, 50.0),
            percentile(&mut roundtrip, 99.0),
        );
        let clicks_note = format!(
            "{} clicks on DynamoDB Local (time in the card-action handler); seen by the simulator over HTTP: p50 {rt50:.1} ms, p99 {rt99:.1} ms; {} clicks without a card update",
            r.clicks, r.clicks_not_updated
        );
        self.rows.push(
            Row::new("flows", format!("click answer p50 ({} clicks)", r.clicks))
                .value(p50, "ms", format!("{p50:.1} ms"))
                .note(clicks_note),
        );
        self.rows.push(
            Row::new("flows", format!("click answer p99 ({} clicks)", r.clicks))
                .value(p99, "ms", format!("{p99:.1} ms"))
                .target(
                    "≤ 50 ms",
                    Verdict::from_bool(p99 <= 50.0 && r.clicks_not_updated == 0),
                ),
        );
        let u = &r.updater;
        let secs = u.wall_ms / 1e3;
        let rate = if secs > 0.0 {
            u.feishu_requests as f64 / secs
        } else {
            0.0
        };
        let jobs_per_s = if secs > 0.0 {
            u.jobs_done as f64 / secs
        } else {
            0.0
        };
        let ceiling = u.ceiling_jobs_per_s();
        let share = jobs_per_s / ceiling;
        let scope = if u.drained {
            format!("all {} due jobs", u.jobs_due)
        } else {
            format!(
                "{} of {} due jobs in the {} s time box",
                u.jobs_done, u.jobs_due, u.time_box_s
            )
        };
        let per_api: Vec<String> = u.per_api.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // Which limit binds depends on the jobs: a queued reply makes 2 `im.message.reply` calls,
        // and that API allows 1000/min, so replies drain at 500 a minute whatever the app's 50/s.
        self.rows.push(
            Row::new("flows", "updater: jobs drained, share of what Feishu's limits allow")
                .value(
                    share * 100.0,
                    "%",
                    format!("{jobs_per_s:.1} jobs/s of {ceiling:.1} ({:.0}%), {rate:.1} req/s", share * 100.0),
                )
                // The shared limiter keeps every 60 s window of an API under 1000 by counting it in
                // 10 s ticks over 70 s, so it plans 86% of the nominal minute; attempts that find
                // no permit before their deadline are retried and spend calls of their own.
                .target("≥ 75%", Verdict::from_bool(share >= 0.75))
                .note(format!(
                    "{scope}: {} Feishu requests ({}), {} jobs done, {} attempts failed and retried, {} sweeps by one instance (reserved concurrency 1); the ceiling is 50 calls/s for the app and 1000/min for each API over the calls a job made",
                    u.feishu_requests,
                    per_api.join(" "),
                    u.jobs_done,
                    u.jobs_failed,
                    u.invocations
                )),
        );
        self.rows.push(
            Row::new("flows", "updater: 429s seen")
                .value(
                    u.rate_limited as f64,
                    "responses",
                    u.rate_limited.to_string(),
                )
                .target("0", Verdict::from_bool(u.rate_limited == 0)),
        );
        let (wall, shown) = if u.drained {
            (secs, format!("{secs:.1} s"))
        } else {
            let per_job = if u.jobs_done > 0 {
                secs / u.jobs_done as f64
            } else {
                f64::NAN
            };
            let projected = per_job * u.jobs_due as f64;
            (projected, format!("≈ {projected:.0} s (projected)"))
        };
        self.rows.push(
            Row::new(
                "flows",
                format!("updater: wall for {} due jobs", u.jobs_due),
            )
            .value(wall, "s", shown),
        );
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

/// Which stack a burst runs against.
#[derive(Clone, Copy)]
enum Stack {
    MakeRun,
    Deployed,
}

/// The settings both bursts share (no demo, free ports, the tutorial's simulated approval, release
/// builds unless `BENCH_BURST_RELEASE=0`: `make run`'s debug builds are several times slower);
/// `extra` first; the rest from the environment.
fn burst_settings(
    extra: Vec<(&'static str, String)>,
) -> Result<impl Fn(&str) -> Option<String>, String> {
    let free = || -> Result<String, String> {
        Ok(cardbot_tests::local_stack::process::free_port()?.to_string())
    };
    let mut fixed = extra;
    fixed.extend([
        ("CARDBOT_WATCH_PORT", free()?),
        ("CARDBOT_SIMULATOR_PORT", free()?),
        ("CARDBOT_DEMO", "0".into()),
        ("APPROVAL_FALLBACK", "simulated".into()),
        ("APPROVER_FROM_LEADER", "false".into()),
        (
            "CARDBOT_RELEASE",
            std::env::var("BENCH_BURST_RELEASE").unwrap_or_else(|_| "1".into()),
        ),
    ]);
    Ok(move |name: &str| match name {
        "FEISHU_BASE_URL"
        | "AWS_ENDPOINT_URL_DYNAMODB"
        | "TABLE_NAME"
        | "CARDBOT_EMULATOR_PORT"
        | "CARDBOT_FUNCTIONS_DIR" => None,
        other => fixed
            .iter()
            .find(|(k, _)| *k == other)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(other).ok()),
    })
}

/// Deploys the template to the local AWS emulator (`make deploy-local`, no demo), runs `plan`
/// through the deployed function URLs with at most `instances` requests of a function at once
/// (0: no cap), stops.
async fn run_burst_deployed(plan: &BurstPlan, instances: usize) -> Result<BurstReport, String> {
    use cardbot_tests::local_aws::{DeployedStack, LocalAwsOptions};
    let mut extra = vec![("CARDBOT_STACK_NAME", "cardbot-bench".to_owned())];
    if instances > 0 {
        extra.push(("CARDBOT_LOCAL_INSTANCES", instances.to_string()));
    }
    let lookup = burst_settings(extra)?;
    let options = Options::from_lookup(&lookup)?;
    let aws = LocalAwsOptions::from_lookup(&lookup)?;
    let mut stack = DeployedStack::new(options, aws);
    let started = std::time::Instant::now();
    let urls = stack.start().await.cloned();
    if urls.is_ok() {
        eprintln!(
            "deployed stack up in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let result = burst_through(urls, plan).await;
    stack.stop().await;
    result
}

/// Runs `plan` through a started stack's URLs (its simulator included); the report, also printed.
async fn burst_through(
    urls: Result<cardbot_tests::local_stack::Urls, String>,
    plan: &BurstPlan,
) -> Result<BurstReport, String> {
    let urls = urls?;
    let sim = urls.simulator.clone().unwrap_or_default();
    let report = burst::run(&sim, &urls.event_callback, &urls.card_callback, plan).await?;
    eprintln!("{}", report.summary());
    Ok(report)
}

/// Starts `make run`'s stack (no demo, free ports) with `instances` per function, runs `plan`, stops.
async fn run_burst(plan: &BurstPlan, instances: usize) -> Result<BurstReport, String> {
    let lookup = burst_settings(vec![("CARDBOT_LOCAL_INSTANCES", instances.to_string())])?;
    let options = Options::from_lookup(&lookup)?;
    let mut stack = LocalStack::new(options);
    let urls = stack.start().await.cloned();
    let result = burst_through(urls, plan).await;
    stack.stop().await;
    result
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median_opt(xs: &mut [f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| median(xs))
}
