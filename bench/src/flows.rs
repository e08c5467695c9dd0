//! The three flows end to end, wired as the functions' `main.rs` wire them (production retry
//! policy), on DynamoDB Local behind a [`CountingStore`] and the Feishu simulator over HTTP:
//! round trips per flow, token fetches, click latency, and the updater against 50 req/s.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use cardbot::approval;
use cardbot::entry::card_action::CardAction;
use cardbot::entry::card_updater::CardUpdater;
use cardbot::entry::event_callback::EventCallback;
use cardbot::feishu::{Clock, FeishuClient, FeishuClientConfig};
use cardbot::store::dynamo::DynamoStore;
use cardbot::store::JobStore;
use cardbot_tests::harness::{self, SimulatorClock};
use cardbot_tests::simulator::{ApiCall, ChatKind, RateLimits, Sender, SimConfig, Simulator};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::json;

use cardbot_tests::probed::{CountingStore, StoreCounts};

use crate::capacity::{Capacity, CapacityMeter};

type Handler =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync>;

/// What one flow cost: DynamoDB requests per store method, Feishu requests per API.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RoundTrips {
    pub dynamodb: BTreeMap<&'static str, u64>,
    pub feishu: BTreeMap<String, u64>,
    /// DynamoDB units the requests consumed (table and indexes), where the client was metered.
    pub capacity: Capacity,
}

impl RoundTrips {
    pub fn new(store: StoreCounts, calls: &[ApiCall]) -> Self {
        let mut feishu = BTreeMap::new();
        for call in calls {
            *feishu.entry(api_name(call)).or_insert(0) += 1;
        }
        Self {
            dynamodb: store.0,
            feishu,
            capacity: Capacity::default(),
        }
    }

    pub fn with_capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = capacity;
        self
    }

    /// Adds another flow's counts to these.
    pub fn add(&mut self, other: &RoundTrips) {
        for (k, v) in &other.dynamodb {
            *self.dynamodb.entry(k).or_insert(0) += v;
        }
        for (k, v) in &other.feishu {
            *self.feishu.entry(k.clone()).or_insert(0) += v;
        }
        self.capacity = self.capacity.plus(&other.capacity);
    }

    pub fn dynamodb_total(&self) -> u64 {
        self.dynamodb.values().sum()
    }

    pub fn feishu_total(&self) -> u64 {
        self.feishu.values().sum()
    }

    pub fn total(&self) -> u64 {
        self.dynamodb_total() + self.feishu_total()
    }

    /// `4 Feishu, 6 DynamoDB (0 RRU + 11 WRU (indexes: …))`.
    pub fn brief(&self) -> String {
        format!(
            "{} Feishu, {} DynamoDB ({})",
            self.feishu_total(),
            self.dynamodb_total(),
            self.capacity.summary()
        )
    }

    /// `dynamodb: dedup.claim=1 …; feishu: POST im.reply=2 …`.
    pub fn summary(&self) -> String {
        let join = |m: Vec<String>| {
            if m.is_empty() {
                "none".into()
            } else {
                m.join(" ")
            }
        };
        format!(
            "dynamodb: {}; feishu: {}",
            join(
                self.dynamodb
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect()
            ),
            join(
                self.feishu
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect()
            ),
        )
    }
}

/// A store on a fresh DynamoDB Local table that counts its requests per method and the units
/// DynamoDB reports for them: what a flow's [`RoundTrips`] are read from.
pub struct Metered {
    pub store: Arc<CountingStore<DynamoStore>>,
    capacity: CapacityMeter,
    pub table: String,
}

impl Metered {
    pub async fn fresh() -> Self {
        let client = cardbot_tests::dynamodb_local::client().await;
        let table = cardbot_tests::dynamodb_local::fresh_table(&client).await;
        let capacity = CapacityMeter::default();
        let store = Arc::new(CountingStore::new(DynamoStore::new(
            capacity.client(&client),
            table.clone(),
        )));
        Self {
            store,
            capacity,
            table,
        }
    }

    /// Starts counting from zero (the simulator's call log too).
    pub fn reset(&self, sim: &Simulator) {
        sim.clear_calls();
        self.store.take();
        self.capacity.take();
    }

    /// What was counted since the last reset, with `calls` as the Feishu side; counting restarts.
    pub fn trips(&self, calls: &[ApiCall]) -> RoundTrips {
        RoundTrips::new(self.store.take(), calls).with_capacity(self.capacity.take())
    }
}

/// `POST /open-apis/im/v1/messages/om_x/reply` → `POST im/v1/messages/:id/reply`.
pub fn api_name(call: &ApiCall) -> String {
    let path = call.path.split('?').next().unwrap_or_default();
    let path = path.strip_prefix("/open-apis/").unwrap_or(path);
    let segments: Vec<&str> = path
        .split('/')
        .map(|s| {
            let id_like = s.len() > 12 && s.chars().any(|c| c.is_ascii_digit());
            if id_like || s.starts_with("om_") || s.starts_with("oc_") {
                ":id"
            } else {
                s
            }
        })
        .collect();
    format!("{} {}", call.method, segments.join("/"))
}

fn is_token_fetch(call: &ApiCall) -> bool {
    call.path.contains("tenant_access_token")
}

fn is_rate_limited(call: &ApiCall) -> bool {
    call.status == 429 || call.code == Some(99_991_400)
}

/// Everything the flows measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlowResults {
    pub events: usize,
    /// The first `审批` on a cold instance (token fetch included).
    pub message_cold: RoundTrips,
    /// The second `审批` on the warm instance.
    pub message_warm: RoundTrips,
    pub token_fetches_first_event: u64,
    /// Token fetches over the events after the first.
    pub token_fetches_warm: u64,
    pub events_wall_ms: f64,
    pub events_failed: usize,
    pub clicks: usize,
    pub click_warm: RoundTrips,
    /// Time in the card-action handler per click.
    pub click_handler_ms: Vec<f64>,
    /// Feishu's view: post → answer, through HTTP (the simulator's clock).
    pub click_roundtrip_ms: Vec<f64>,
    pub clicks_not_updated: usize,
    /// Feishu requests while all the clicks were answered (the card-action never calls Feishu).
    pub feishu_calls_during_clicks: usize,
    pub post_answer_job: RoundTrips,
    pub updater: UpdaterRun,
}

/// The updater draining the due jobs against the simulator's limits.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdaterRun {
    pub jobs_due: usize,
    pub jobs_done: usize,
    pub jobs_failed: usize,
    pub invocations: usize,
    /// Feishu requests made (token fetches excluded).
    pub feishu_requests: usize,
    pub rate_limited: usize,
    /// Feishu requests per API (token fetches excluded).
    pub per_api: BTreeMap<String, u64>,
    pub wall_ms: f64,
    /// Whether every due job was done inside the time box.
    pub drained: bool,
    pub time_box_s: u64,
}

impl UpdaterRun {
    /// The most jobs per second Feishu's limits allow for this mix of jobs: 50 calls/s for the app
    /// and 1000/min for each API (`../shared/feishu/`), given the calls a job made per API.
    pub fn ceiling_jobs_per_s(&self) -> f64 {
        use cardbot::feishu::limiter::{API_CALLS_PER_MINUTE, APP_CALLS_PER_SECOND};
        let jobs = self.jobs_done.max(1) as f64;
        let app = f64::from(APP_CALLS_PER_SECOND)
            / (self.feishu_requests as f64 / jobs).max(f64::EPSILON);
        self.per_api
            .values()
            .map(|&n| f64::from(API_CALLS_PER_MINUTE) / 60.0 / (n as f64 / jobs))
            .fold(app, f64::min)
    }
}

/// How big the flows run.
#[derive(Debug, Clone)]
pub struct FlowPlan {
    pub events: usize,
    pub updater_time_box: Duration,
}

/// A local function URL: an HTTP server that turns each request into a function-URL event,
/// parses it as the Lambda runtime does, times the handler and records the time.
async fn serve(handler: Handler, times: Arc<Mutex<Vec<Duration>>>) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("addr: {e}"))?;
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let handler = handler.clone();
        let times = times.clone();
        async move {
            let request = harness::function_url_request(request)
                .await
                .expect("a function URL event");
            let start = Instant::now();
            let response = handler(request).await;
            let took = start.elapsed();
            if let Ok(mut t) = times.lock() {
                t.push(took);
            }
            harness::http_response(&response)
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs message → card, click → answer and the updater; see [`FlowResults`].
pub async fn run(plan: &FlowPlan) -> Result<FlowResults, String> {
    let sim = Arc::new(
        Simulator::start(SimConfig {
            rate_limits: RateLimits::disabled(),
            ..SimConfig::default()
        })
        .await
        .map_err(|e| format!("simulator: {e}"))?,
    );
    let metered = Metered::fresh().await;
    let (store, table) = (metered.store.clone(), metered.table.clone());
    // The functions' environment in the default (entity) mode, on this run's table.
    let mut config = harness::config_for(&sim, "entity");
    config.config.table_name = table.clone();
    let clock: Arc<dyn Clock> = Arc::new(SimulatorClock(sim.clone()));
    // As main.rs builds it: default retry policy.
    let feishu = Arc::new(
        FeishuClient::builder(FeishuClientConfig::from(&config.feishu), store.clone())
            .clock(clock.clone())
            .build()
            .map_err(|e| format!("feishu client: {e}"))?,
    );
    let events = Arc::new(EventCallback::new(
        &config.config,
        config.webhook.clone(),
        store.clone(),
        feishu.clone(),
        clock.clone(),
    ));
    let cards = Arc::new(CardAction::new(
        &config.config,
        config.webhook.clone(),
        store.clone(),
        clock.clone(),
    ));
    let updater = CardUpdater::new(
        &config.config,
        store.clone(),
        feishu,
        clock,
        "bench-updater".to_owned(),
    );
    let event_times = Arc::new(Mutex::new(Vec::new()));
    let click_times = Arc::new(Mutex::new(Vec::new()));
    let event_url = serve(
        Arc::new(move |r| {
            let events = events.clone();
            Box::pin(async move { events.handle(r).await })
        }),
        event_times,
    )
    .await?;
    let card_url = serve(
        Arc::new(move |r| {
            let cards = cards.clone();
            Box::pin(async move { cards.handle(r).await })
        }),
        click_times.clone(),
    )
    .await?;
    let mut out = FlowResults {
        events: plan.events,
        ..FlowResults::default()
    };

    // Message → card, each from its own user in their own p2p chat (as many people would send
    // them: Feishu's 5/s per chat never binds); replies that do not fit the app's 50/s are queued.
    let users = sim.add_users(plan.events);
    let started = Instant::now();
    for (i, user) in users.iter().enumerate() {
        metered.reset(&sim);
        let delivery = sim
            .send_message_as(&event_url, user, ChatKind::P2p, "审批")
            .await;
        if delivery.status != Some(200) {
            out.events_failed += 1;
        }
        let calls = sim.calls();
        let fetches = calls.iter().filter(|c| is_token_fetch(c)).count() as u64;
        match i {
            0 => {
                out.message_cold = metered.trips(&calls);
                out.token_fetches_first_event = fetches;
            }
            1 => {
                out.message_warm = metered.trips(&calls);
                out.token_fetches_warm += fetches;
            }
            _ => out.token_fetches_warm += fetches,
        }
    }
    out.events_wall_ms = ms(started.elapsed());
    // The cards sent in the answers, each with the user whose chat it is in.
    let cards: Vec<(String, cardbot_tests::simulator::SimUser)> = sim
        .all_messages()
        .into_iter()
        .filter(|m| matches!(m.sender, Sender::App { .. }) && m.msg_type == "interactive")
        .filter_map(|m| {
            let user = users.iter().find(|u| u.p2p_chat_id == m.chat_id)?;
            Some((m.message_id, user.clone()))
        })
        .collect();

    // Click → answer: 请假 on every card.
    metered.reset(&sim);
    if let Ok(mut t) = click_times.lock() {
        t.clear();
    }
    for (i, (message_id, user)) in cards.iter().enumerate() {
        let clicked = sim
            .click_card_as(&card_url, user, message_id, json!({ "type": "leave" }))
            .await
            .map_err(|e| format!("click: {e}"))?;
        if !clicked.card_updated || clicked.delivery.status != Some(200) {
            out.clicks_not_updated += 1;
        }
        out.click_roundtrip_ms
            .push(clicked.delivery.elapsed_ms as f64);
        let trips = metered.trips(&sim.calls());
        if i == 1 {
            out.click_warm = trips;
        }
    }
    out.clicks = cards.len();
    out.click_handler_ms = click_times
        .lock()
        .map(|t| t.iter().copied().map(ms).collect())
        .unwrap_or_default();
    out.feishu_calls_during_clicks = sim.calls().len();

    // The post-answer jobs become due 2 s after their click; Feishu's limits apply from here.
    tokio::time::sleep(Duration::from_millis(
        cardbot::jobs::POST_ANSWER_DELAY_MS as u64 + 200,
    ))
    .await;
    sim.set_rate_limits(RateLimits::default());

    // One post-answer job, as the stream delivers it.
    if let Some((first, _)) = cards.first() {
        let card_key = approval::card_key(None, first);
        let job = store
            .inner()
            .jobs_for_card(&card_key)
            .await
            .map_err(|e| format!("jobs_for_card: {e}"))?
            .into_iter()
            .find(|j| j.kind == "post_answer")
            .ok_or("the first click queued no post_answer job")?;
        metered.reset(&sim);
        let summary = updater
            .handle(
                &harness::stream_insert(&card_key, &job.job_id, job.due_at),
                sim.now_ms() + 60_000,
            )
            .await;
        if summary.done != 1 {
            return Err(format!("the post-answer job did not complete: {summary:?}"));
        }
        out.post_answer_job = metered.trips(&sim.calls());
    }

    // The rest of the due jobs, swept back to back by one instance (reserved concurrency 1).
    sim.clear_calls();
    let due = store
        .inner()
        .due_jobs(sim.now_ms() + 60_000, 100_000)
        .await
        .map_err(|e| format!("due_jobs: {e}"))?
        .len();
    let run = &mut out.updater;
    // The clicks' post-answer jobs and the replies queued during the events.
    run.jobs_due = due;
    run.time_box_s = plan.updater_time_box.as_secs();
    let started = Instant::now();
    let scheduled = harness::scheduled(SystemTime::now());
    while started.elapsed() < plan.updater_time_box {
        let summary = updater.handle(&scheduled, sim.now_ms() + 60_000).await;
        run.invocations += 1;
        run.jobs_done += summary.done;
        run.jobs_failed += summary.failed;
        if summary.seen == 0 || run.jobs_done + run.jobs_failed >= run.jobs_due {
            run.drained = run.jobs_done >= run.jobs_due;
            break;
        }
    }
    run.wall_ms = ms(started.elapsed());
    let calls = sim.calls();
    for call in calls.iter().filter(|c| !is_token_fetch(c)) {
        *run.per_api.entry(api_name(call)).or_insert(0) += 1;
    }
    run.feishu_requests = run.per_api.values().sum::<u64>() as usize;
    run.rate_limited = calls.iter().filter(|c| is_rate_limited(c)).count();
    Ok(out)
}
