//! Dollars per million interactions, from what the bench measured: each step's local wall time,
//! its Feishu calls, its DynamoDB units and the log bytes it wrote, priced at AWS list prices.
//!
//! What is measured and what is assumed:
//! - Measured here: the local wall time of each step (handler + DynamoDB Local + the simulator on
//!   loopback, CardKit pacing sleeps included), the Feishu calls, the DynamoDB read and write
//!   units (table and indexes, `ReturnConsumedCapacity: INDEXES`), the bytes of application log
//!   and EMF metrics lines, and the handlers' CPU time (criterion, `hot_path/*_handler`).
//! - Assumed: a Feishu Open API round trip from the function's region ([`FEISHU_RTT_MS`], override
//!   with `BENCH_FEISHU_RTT_MS`), the delay of a DynamoDB stream record before the updater sees
//!   it ([`STREAM_DELAY_MS`]), and the Lambda platform's own log lines per invocation
//!   ([`PLATFORM_LOG_BYTES`]). Lambda gives a function CPU in proportion to its memory, one vCPU at
//!   1,769 MB: the CPU part of a step is scaled by `1769 / memory`, the waiting part is not.

use serde::Serialize;

use crate::approvals::{Function, Step};

/// AWS list prices, US East (N. Virginia), on-demand, as published on aws.amazon.com/lambda/pricing,
/// /dynamodb/pricing/on-demand and /cloudwatch/pricing; checked 2026-12-01 (DynamoDB's on-demand
/// prices are those since the cut of 2024-11-01).
pub mod prices {
    /// Lambda requests, $ per request ($0.20 per million).
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// Lambda duration, $ per GB-second, x86_64 (first 6 billion GB-s a month).
    pub const LAMBDA_GB_SECOND_X86_64: f64 = 0.000_016_666_7;
    /// Lambda duration, $ per GB-second, arm64 (first 7.5 billion GB-s a month).
    pub const LAMBDA_GB_SECOND_ARM64: f64 = 0.000_013_333_4;
    /// DynamoDB on-demand, $ per write request unit ($0.625 per million).
    pub const DYNAMODB_WRU: f64 = 0.625 / 1e6;
    /// DynamoDB on-demand, $ per read request unit ($0.125 per million).
    pub const DYNAMODB_RRU: f64 = 0.125 / 1e6;
    /// DynamoDB Streams: GetRecords calls made by a Lambda trigger are free.
    pub const STREAM_READ_BY_LAMBDA: f64 = 0.0;
    /// CloudWatch Logs ingestion (standard class, first tier), $ per byte ($0.50 per GB).
    pub const LOG_BYTE: f64 = 0.50 / 1e9;
}

/// Assumed Feishu Open API round trip from an AWS region (ms): open.feishu.cn answers in tens of
/// ms inside mainland China and in 100–250 ms from regions abroad; 120 is a middle.
pub const FEISHU_RTT_MS: f64 = 120.0;
/// Assumed delay from a job's write to the stream invocation that runs it (ms); the updater then
/// sleeps until the job is due (`POST_ANSWER_DELAY_MS` after the click), and that sleep is billed.
pub const STREAM_DELAY_MS: f64 = 500.0;
/// Lambda's own JSON log lines per invocation (`platform.start`, `platform.report`), bytes.
pub const PLATFORM_LOG_BYTES: f64 = 700.0;
/// Memory at which Lambda gives a function one full vCPU (MB).
pub const FULL_VCPU_MB: f64 = 1769.0;

/// The functions' memory as `template.yaml` deploys it: the `FunctionMemory` parameter's default.
pub fn template_memory_mb(template_yaml: &str) -> Result<f64, String> {
    let template: serde_yaml::Value =
        serde_yaml::from_str(template_yaml).map_err(|e| format!("template.yaml: {e}"))?;
    template["Parameters"]["FunctionMemory"]["Default"]
        .as_f64()
        .ok_or_else(|| "template.yaml: no Parameters.FunctionMemory.Default".to_owned())
}

/// What one step costs to run, before prices.
#[derive(Debug, Clone, Serialize)]
pub struct StepUse {
    pub name: &'static str,
    pub function: &'static str,
    /// CPU time of the handler at one vCPU (ms).
    pub cpu_ms: f64,
    /// Time waiting on DynamoDB, Feishu and sleeps (ms), at AWS latencies.
    pub wait_ms: f64,
    pub feishu_calls: u64,
    pub read_units: f64,
    pub write_units: f64,
    pub log_bytes: f64,
}

impl StepUse {
    /// Billed duration at `memory_mb` (ms, rounded up to the ms as Lambda bills).
    pub fn billed_ms(&self, memory_mb: f64) -> f64 {
        (self.wait_ms + self.cpu_ms * (FULL_VCPU_MB / memory_mb).max(1.0)).ceil()
    }
}

/// The CPU time of each function's handler at one vCPU (ms), from criterion where it ran.
#[derive(Debug, Clone, Copy)]
pub struct CpuPerInvocation {
    pub event_callback_ms: f64,
    pub card_action_ms: f64,
    /// The updater runs no criterion bench: its work per job (read, plan, write, sign the calls)
    /// is taken as the event handler's.
    pub card_updater_ms: f64,
}

/// The steps as Lambda would run them: local time minus the handler's CPU is the waiting part,
/// plus the Feishu round trips at `feishu_rtt_ms` (the simulator answers in about 1 ms) and the
/// post-answer job's sleep until it is due.
pub fn uses(steps: &[Step], cpu: CpuPerInvocation, feishu_rtt_ms: f64) -> Vec<StepUse> {
    steps
        .iter()
        .map(|step| {
            let cpu_ms = match step.function {
                Function::EventCallback => cpu.event_callback_ms,
                Function::CardAction => cpu.card_action_ms,
                Function::CardUpdater => cpu.card_updater_ms * step.jobs.max(1) as f64,
            };
            let feishu_calls = step.trips.feishu_total();
            let stream_wait = if step.name == crate::approvals::POST_ANSWER_STEP {
                (cardbot::jobs::POST_ANSWER_DELAY_MS as f64 - STREAM_DELAY_MS).max(0.0)
            } else {
                0.0
            };
            let wait_ms = (step.wall_ms - cpu_ms).max(0.0)
                + feishu_calls as f64 * (feishu_rtt_ms - 1.0).max(0.0)
                + stream_wait;
            StepUse {
                name: step.name,
                function: step.function.name(),
                cpu_ms,
                wait_ms,
                feishu_calls,
                read_units: step.trips.capacity.read(),
                write_units: step.trips.capacity.write(),
                log_bytes: step.log_bytes + PLATFORM_LOG_BYTES,
            }
        })
        .collect()
}

/// Dollars per million interactions, by part.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Dollars {
    pub lambda_requests: f64,
    pub lambda_duration: f64,
    pub dynamodb_reads: f64,
    pub dynamodb_writes: f64,
    pub streams: f64,
    pub logs: f64,
}

impl Dollars {
    pub fn total(&self) -> f64 {
        self.lambda_requests
            + self.lambda_duration
            + self.dynamodb_reads
            + self.dynamodb_writes
            + self.streams
            + self.logs
    }

    /// The parts, largest first: `duration $2.10, logs $1.05, …`.
    pub fn breakdown(&self) -> String {
        let mut parts = [
            ("Lambda duration", self.lambda_duration),
            ("Lambda requests", self.lambda_requests),
            ("DynamoDB writes", self.dynamodb_writes),
            ("DynamoDB reads", self.dynamodb_reads),
            ("logs", self.logs),
            ("stream reads", self.streams),
        ];
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        parts
            .iter()
            .map(|(name, d)| format!("{name} ${d:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Lambda's architectures, priced apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Arch {
    X86_64,
    Arm64,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }

    fn gb_second(self) -> f64 {
        match self {
            Self::X86_64 => prices::LAMBDA_GB_SECOND_X86_64,
            Self::Arm64 => prices::LAMBDA_GB_SECOND_ARM64,
        }
    }
}

/// $ per million runs of `steps` (one interaction) at `memory_mb` on `arch`.
pub fn per_million(steps: &[StepUse], arch: Arch, memory_mb: f64) -> Dollars {
    let mut d = Dollars::default();
    for s in steps {
        d.lambda_requests += prices::LAMBDA_REQUEST;
        d.lambda_duration += s.billed_ms(memory_mb) / 1e3 * (memory_mb / 1024.0) * arch.gb_second();
        d.dynamodb_reads += s.read_units * prices::DYNAMODB_RRU;
        d.dynamodb_writes += s.write_units * prices::DYNAMODB_WRU;
        d.logs += s.log_bytes * prices::LOG_BYTE;
    }
    d.streams = prices::STREAM_READ_BY_LAMBDA;
    let million = |x: f64| x * 1e6;
    Dollars {
        lambda_requests: million(d.lambda_requests),
        lambda_duration: million(d.lambda_duration),
        dynamodb_reads: million(d.dynamodb_reads),
        dynamodb_writes: million(d.dynamodb_writes),
        streams: million(d.streams),
        logs: million(d.logs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(cpu_ms: f64, wait_ms: f64) -> StepUse {
        StepUse {
            name: "x",
            function: "event-callback",
            cpu_ms,
            wait_ms,
            feishu_calls: 0,
            read_units: 1.0,
            write_units: 2.0,
            log_bytes: 1000.0,
        }
    }

    #[test]
    fn one_invocation_prices_as_the_list_says() {
        // 100 ms at 1,024 MB on x86_64: 0.1 GB-s = $1.66667 per million; 1 request = $0.20.
        let d = per_million(&[step(0.0, 100.0)], Arch::X86_64, 1024.0);
        assert!((d.lambda_duration - 1.666_67).abs() < 1e-3, "{d:?}");
        assert!((d.lambda_requests - 0.20).abs() < 1e-9);
        assert!((d.dynamodb_reads - 0.125).abs() < 1e-9);
        assert!((d.dynamodb_writes - 1.25).abs() < 1e-9);
        assert!(
            (d.logs - 0.50).abs() < 1e-9,
            "1 KB a run is 1 GB a million runs"
        );
        let arm = per_million(&[step(0.0, 100.0)], Arch::Arm64, 1024.0);
        assert!(arm.lambda_duration < d.lambda_duration);
    }

    #[test]
    fn the_template_memory_is_read_from_its_parameter() {
        let yaml =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
                .unwrap();
        let mb = template_memory_mb(&yaml).unwrap();
        assert!([128.0, 256.0, 512.0, 1024.0].contains(&mb), "{mb}");
        assert!(template_memory_mb("Parameters: {}").is_err());
    }

    #[test]
    fn cpu_time_stretches_below_one_vcpu_and_waiting_does_not() {
        let s = step(1.0, 10.0);
        assert_eq!(s.billed_ms(1769.0), 11.0);
        assert_eq!(s.billed_ms(3538.0), 11.0);
        assert_eq!(s.billed_ms(128.0), (10.0 + 1769.0 / 128.0_f64).ceil());
    }
}
