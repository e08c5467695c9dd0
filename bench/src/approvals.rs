//! What each step of an approval costs, in both delivery modes, on DynamoDB Local (metered for
//! capacity) and the Feishu simulator over HTTP: the tutorial interaction (message → card → click
//! → post-answer job) and a full real approval with two approvers (request → form → filed →
//! approvers' cards → 同意 → every card and the requester's text updated). Feishu calls, DynamoDB
//! requests and units, and the local wall time of each step are what the cost section prices.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use std::future::Future;

use cardbot::store::dynamo::DynamoStore;
use cardbot_tests::harness::{leave_form, Bot};
use cardbot_tests::probed::CountingStore;
use cardbot_tests::simulator::{ids, ChatKind, Sender, SimConfig, SimUser, Simulator};
use serde::Serialize;
use serde_json::json;

use crate::flows::{Metered, RoundTrips};

/// The function a step runs in (each step is one invocation of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Function {
    EventCallback,
    CardAction,
    CardUpdater,
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Self::EventCallback => "event-callback",
            Self::CardAction => "card-action",
            Self::CardUpdater => "card-updater",
        }
    }
}

/// The name of the step whose stream invocation waits until its job is due (the cost section
/// prices that wait).
pub const POST_ANSWER_STEP: &str = "post-answer job";

/// Bytes the functions' code logged since the last [`log_bytes`]: their tracing lines at INFO as
/// Lambda's JSON log format carries them, and their EMF metric lines.
static LOGGED: AtomicU64 = AtomicU64::new(0);

struct CountingWriter;

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGGED.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log meter: a JSON subscriber for the functions' crates (not the simulator's) and the EMF
/// exporter, both writing into a byte count. `None` when the process already has either.
fn log_meter() -> Option<&'static cardbot::telemetry::Emitter> {
    static METER: OnceLock<Option<cardbot::telemetry::Emitter>> = OnceLock::new();
    METER
        .get_or_init(|| {
            use tracing_subscriber::filter::{LevelFilter, Targets};
            use tracing_subscriber::prelude::*;
            let targets = Targets::new()
                .with_target("cardbot", LevelFilter::INFO)
                .with_target("event_callback", LevelFilter::INFO)
                .with_target("card_action", LevelFilter::INFO)
                .with_target("card_updater", LevelFilter::INFO);
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .with_target(false)
                .with_writer(|| CountingWriter);
            tracing_subscriber::registry()
                .with(layer.with_filter(targets))
                .try_init()
                .ok()?;
            cardbot::telemetry::install("bench")
        })
        .as_ref()
}

/// Log bytes since the last call, after flushing the metrics as each invocation's end does.
fn log_bytes() -> f64 {
    if let Some(emitter) = log_meter() {
        emitter.flush_to(CountingWriter);
    }
    LOGGED.swap(0, Ordering::Relaxed) as f64
}

/// One step of a flow: one invocation of `function`.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: &'static str,
    pub function: Function,
    /// Jobs the updater ran in this step (0 for the webhooks).
    pub jobs: usize,
    /// Local wall time of the step: the handler, DynamoDB Local and the simulator on loopback.
    pub wall_ms: f64,
    pub trips: RoundTrips,
    /// Bytes of log and EMF lines the step wrote (Lambda's own lines not included).
    pub log_bytes: f64,
}

/// The steps of both flows in one delivery mode.
#[derive(Debug, Clone, Serialize)]
pub struct ModeFlows {
    pub mode: &'static str,
    /// 审批 → card, 请假, the post-answer job.
    pub tutorial: Vec<Step>,
    /// 审批 → card, 请假 (the form), 提交, notify_approvers, 同意, the decision's follow-ups.
    pub real: Vec<Step>,
}

/// The sum of some steps.
pub fn total(steps: &[Step]) -> RoundTrips {
    let mut out = RoundTrips::default();
    for step in steps {
        out.add(&step.trips);
    }
    out
}

/// Counts one step at a time for a flow's bot.
struct Meter {
    sim: Arc<Simulator>,
    metered: Metered,
}

impl Meter {
    /// Runs one step from zeroed counters and returns what it cost; `action` (not started until
    /// here) gives the number of jobs the updater ran in the step.
    async fn measure(
        &self,
        name: &'static str,
        function: Function,
        action: impl Future<Output = Result<usize, String>>,
    ) -> Result<Step, String> {
        self.metered.reset(&self.sim);
        log_bytes();
        let started = Instant::now();
        let jobs = action.await?;
        let wall_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(Step {
            name,
            function,
            jobs,
            wall_ms,
            trips: self.metered.trips(&self.sim.calls()),
            log_bytes: log_bytes(),
        })
    }
}

type MeteredBot = Bot<CountingStore<DynamoStore>>;

/// A bot on a metered store with `approvers` added users configured as its approvers (none: the
/// tutorial flow).
async fn bot(mode: &str, approvers: usize) -> Result<(MeteredBot, Meter, Vec<SimUser>), String> {
    let sim = Arc::new(
        Simulator::start(SimConfig::default())
            .await
            .map_err(|e| e.to_string())?,
    );
    let users = sim.add_users(approvers);
    let list: Vec<&str> = users.iter().map(|u| u.open_id.as_str()).collect();
    let list = list.join(",");
    let settings: Vec<(&str, &str)> = match approvers {
        0 => vec![],
        _ => vec![("APPROVER_OPEN_IDS", list.as_str())],
    };
    let metered = Metered::fresh().await;
    let bot = Bot::start_with(sim.clone(), metered.store.clone(), mode, &settings).await;
    Ok((bot, Meter { sim, metered }, users))
}

fn last_card(sim: &Simulator, chat_id: &str) -> Result<String, String> {
    sim.messages(chat_id)
        .into_iter()
        .rev()
        .find(|m| matches!(m.sender, Sender::App { .. }) && m.msg_type == "interactive")
        .map(|m| m.message_id)
        .ok_or_else(|| format!("no card in {chat_id}"))
}

/// `审批` from the configured user; its card's message_id.
async fn ask_once(bot: &MeteredBot) -> Result<String, String> {
    let delivery = bot
        .sim
        .send_user_message(&bot.event_url, ChatKind::P2p, "审批")
        .await;
    if delivery.status != Some(200) {
        return Err(format!("审批: {}", delivery.response_body));
    }
    last_card(&bot.sim, ids::P2P_CHAT_ID)
}

/// `审批` on a warm instance: one 审批 first (token fetch and first connections), then the measured one.
async fn ask(bot: &MeteredBot, meter: &Meter) -> Result<(String, Step), String> {
    ask_once(bot).await?;
    let step = meter
        .measure("审批 → text + card", Function::EventCallback, async {
            ask_once(bot).await.map(|_| 0)
        })
        .await?;
    Ok((last_card(&bot.sim, ids::P2P_CHAT_ID)?, step))
}

/// `who` presses `button` on `card` (with a form's values).
async fn press(
    bot: &MeteredBot,
    who: &SimUser,
    card: &str,
    button: &str,
    form: &[(&str, serde_json::Value)],
) -> Result<usize, String> {
    bot.sim
        .press_as(&bot.card_url, who, card, button, form)
        .await
        .map_err(|e| format!("{button}: {e}"))?;
    Ok(0)
}

async fn tutorial(mode: &'static str) -> Result<Vec<Step>, String> {
    let (bot, meter, _) = bot(mode, 0).await?;
    let (card, asked) = ask(&bot, &meter).await?;
    let click = meter
        .measure("请假 → answer", Function::CardAction, async {
            let clicked = bot
                .sim
                .click_card(&bot.card_url, &card, json!({ "type": "leave" }))
                .await
                .map_err(|e| format!("click: {e}"))?;
            if !clicked.card_updated {
                return Err(format!(
                    "the 请假 click did not update the card: {clicked:?}"
                ));
            }
            Ok(0)
        })
        .await?;
    // The job is due 2 s after the click; the simulated clock gets there at once (the cost
    // section prices the wait a stream invocation spends until then).
    bot.sim.advance(Duration::from_millis(
        cardbot::jobs::POST_ANSWER_DELAY_MS as u64 + 100,
    ));
    let job = meter
        .measure(POST_ANSWER_STEP, Function::CardUpdater, async {
            let summary = bot.run_post_answer(&card).await;
            match summary.done {
                1 => Ok(1),
                _ => Err(format!("post-answer job: {summary:?}")),
            }
        })
        .await?;
    if !bot
        .sim
        .card_text(&card)
        .unwrap_or_default()
        .contains("请假通过")
    {
        return Err("the post-answer job did not reach 请假通过".into());
    }
    Ok(vec![asked, click, job])
}

async fn real(mode: &'static str) -> Result<Vec<Step>, String> {
    let (bot, meter, approvers) = bot(mode, 2).await?;
    let requester = bot.sim.config().user();
    let (card, asked) = ask(&bot, &meter).await?;
    let sweep = || async { Ok(bot.sweep().await.done) };
    let form = leave_form("annual", "2026-12-01", "2026-12-03", "family trip");
    let mut steps = vec![asked];
    steps.push(
        meter
            .measure(
                "请假 → the form",
                Function::CardAction,
                press(&bot, &requester, &card, "btn_leave", &[]),
            )
            .await?,
    );
    steps.push(
        meter
            .measure(
                "提交 → filed",
                Function::CardAction,
                press(&bot, &requester, &card, "btn_file", &form),
            )
            .await?,
    );
    steps.push(
        meter
            .measure(
                "notify_approvers job (2 cards)",
                Function::CardUpdater,
                sweep(),
            )
            .await?,
    );
    let review = last_card(&bot.sim, &approvers[0].p2p_chat_id)?;
    let comment = [("comment", json!("好的"))];
    steps.push(
        meter
            .measure(
                "同意 → decided",
                Function::CardAction,
                press(&bot, &approvers[0], &review, "btn_approve", &comment),
            )
            .await?,
    );
    steps.push(
        meter
            .measure(
                "decision follow-ups (refresh, text, other approver)",
                Function::CardUpdater,
                sweep(),
            )
            .await?,
    );
    let shown = bot.sim.card_text(&card).unwrap_or_default();
    if !shown.contains("请假通过") {
        return Err(format!(
            "the requester's card did not reach 请假通过: {shown}"
        ));
    }
    Ok(steps)
}

/// Both flows in both delivery modes.
pub async fn run() -> Result<Vec<ModeFlows>, String> {
    log_meter();
    let mut out = Vec::new();
    for mode in ["entity", "message"] {
        out.push(ModeFlows {
            mode,
            tutorial: tutorial(mode).await?,
            real: real(mode).await?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::{self, Arch, CpuPerInvocation};

    /// The small version of `make bench`'s calls and cost sections, on DynamoDB Local.
    #[tokio::test]
    async fn both_modes_keep_a_job_within_three_feishu_calls_and_every_step_is_priced() {
        let flows = run().await.unwrap();
        assert_eq!(flows.len(), 2);
        for mode in &flows {
            let job = mode
                .tutorial
                .iter()
                .find(|s| s.name == POST_ANSWER_STEP)
                .unwrap();
            let calls = job.trips.feishu_total();
            match mode.mode {
                "entity" => assert_eq!(calls, 3, "{:?}", job.trips.feishu),
                _ => assert_eq!(calls, 1, "{:?}", job.trips.feishu),
            }
            for step in mode.tutorial.iter().chain(&mode.real) {
                // Every step writes something (a dedup record, a claim, a state), and the meter saw it.
                assert!(
                    step.trips.capacity.write() >= 1.0,
                    "{}: {:?}",
                    step.name,
                    step.trips
                );
                if step.function == Function::CardUpdater {
                    assert!(
                        step.trips.feishu_total() <= 3 * step.jobs.max(1) as u64,
                        "{}: {:?}",
                        step.name,
                        step.trips.feishu
                    );
                }
            }
            let real = total(&mode.real);
            // 2 approvers: the cards, the refreshes and the requester's text all went out.
            assert!(real.feishu_total() >= 8, "{:?}", real.feishu);
            let cpu = CpuPerInvocation {
                event_callback_ms: 1.0,
                card_action_ms: 1.0,
                card_updater_ms: 1.0,
            };
            let uses = cost::uses(&mode.tutorial, cpu, cost::FEISHU_RTT_MS);
            let x86 = cost::per_million(&uses, Arch::X86_64, 256.0);
            let arm = cost::per_million(&uses, Arch::Arm64, 128.0);
            assert!((x86.lambda_requests - 0.60).abs() < 1e-9, "3 invocations");
            assert!(x86.dynamodb_writes > 0.0 && x86.logs > 0.0);
            assert!(arm.total() < x86.total());
        }
    }
}
