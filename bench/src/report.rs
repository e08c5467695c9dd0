//! The bench's one table (metric, ours, target, peer/ratio, result) and `bench/results.json`.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Miss,
    /// No target: the number is for information.
    Info,
    /// Not measured; the row's `note` says why.
    NotAvailable,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Miss => "MISS",
            Self::Info => "-",
            Self::NotAvailable => "n/a",
        }
    }

    pub fn from_bool(pass: bool) -> Self {
        if pass {
            Self::Pass
        } else {
            Self::Miss
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub section: &'static str,
    pub metric: String,
    /// The measured value in `unit`, when there is one.
    pub value: Option<f64>,
    pub unit: &'static str,
    /// The value as printed (`1.21 µs`, `3 (dedup.claim=1 …)`, `n/a (reason)`).
    pub ours: String,
    pub target: String,
    pub peer: String,
    pub verdict: Verdict,
    /// Details: per-call counts, why a row is n/a, what a miss means.
    pub note: String,
}

impl Row {
    pub fn new(section: &'static str, metric: impl Into<String>) -> Self {
        Self {
            section,
            metric: metric.into(),
            value: None,
            unit: "",
            ours: String::new(),
            target: "-".into(),
            peer: "-".into(),
            verdict: Verdict::Info,
            note: String::new(),
        }
    }

    pub fn value(mut self, value: f64, unit: &'static str, shown: impl Into<String>) -> Self {
        self.value = Some(value);
        self.unit = unit;
        self.ours = shown.into();
        self
    }

    pub fn target(mut self, target: impl Into<String>, verdict: Verdict) -> Self {
        self.target = target.into();
        self.verdict = verdict;
        self
    }

    pub fn peer(mut self, peer: impl Into<String>) -> Self {
        self.peer = peer.into();
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    /// A row that could not be measured: prints `n/a (reason)`.
    pub fn not_available(mut self, target: impl Into<String>, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        self.ours = format!("n/a ({reason})");
        self.target = target.into();
        self.verdict = Verdict::NotAvailable;
        self.note = reason;
        self
    }
}

/// `1.21 µs`, `350 µs`, `12.3 ms`.
pub fn duration_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else if ns < 1_000_000_000.0 {
        format!("{:.1} ms", ns / 1_000_000.0)
    } else {
        format!("{:.2} s", ns / 1_000_000_000.0)
    }
}

/// Terminal columns of `s`: CJK and full-width characters take two.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6 => 2,
            _ => 1,
        })
        .sum()
}

/// The table as printed by `make bench`.
pub fn table(rows: &[Row]) -> String {
    let headers = ["metric", "ours", "target", "peer / ratio", "result"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.metric.clone(),
                r.ours.clone(),
                r.target.clone(),
                r.peer.clone(),
                r.verdict.label().to_owned(),
            ]
        })
        .collect();
    let mut widths = headers.map(width);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(c));
        }
    }
    let line = |cols: [&str; 5]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i > 0 {
                s.push_str(" | ");
            }
            let pad = w.saturating_sub(width(c));
            s.push_str(c);
            s.extend(std::iter::repeat_n(' ', pad));
        }
        s.trim_end().to_owned()
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", line(headers));
    let _ = writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-|-")
    );
    let mut section = "";
    for (row, c) in rows.iter().zip(&cells) {
        if row.section != section && !section.is_empty() {
            let _ = writeln!(out);
        }
        section = row.section;
        let _ = writeln!(out, "{}", line([&c[0], &c[1], &c[2], &c[3], &c[4]]));
    }
    out
}

/// `bench/results.json`: every row plus the raw measurements and the machine.
pub fn results_json(rows: &[Row], raw: Value) -> Value {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned));
    serde_json::json!({
        "generated_at_ms": cardbot::store::now_millis(),
        "machine": {
            "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "load_1m": load,
        },
        "rows": rows,
        "raw": raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_marks_misses_and_gaps() {
        let rows = vec![
            Row::new("hot", "event verify")
                .value(1210.0, "ns", duration_ns(1210.0))
                .target("≥ 50× lark-oapi", Verdict::Pass)
                .peer("350.00 µs (289×)"),
            Row::new("cold", "cold start card-updater")
                .value(61.0, "ms", "61.0 ms")
                .target("≤ 50 ms", Verdict::Miss),
            Row::new("cold", "latency p99").not_available("≤ 50 ms", "card handler not on main"),
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0].split(" | ").count(), 5);
        assert!(lines[2].starts_with("event verify            | 1.21 µs"));
        assert!(lines[2].ends_with("| pass"));
        assert_eq!(lines[3], "");
        assert!(lines[4].ends_with("| MISS"));
        assert!(lines[5].contains("n/a (card handler not on main)"));
        assert!(lines[5].ends_with("| n/a"));
    }

    #[test]
    fn chinese_metrics_pad_by_display_width() {
        let rows = vec![
            Row::new("hot", "审批 event").value(1.0, "ns", "1 ns"),
            Row::new("hot", "card click").value(2.0, "ns", "2 ns"),
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        // "审批 event" is 10 columns wide, like "card click": both cells end at the same column.
        assert!(lines[2].starts_with("审批 event | 1 ns"), "{t}");
        assert!(lines[3].starts_with("card click | 2 ns"), "{t}");
    }

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration_ns(950.0), "950 ns");
        assert_eq!(duration_ns(1_210.0), "1.21 µs");
        assert_eq!(duration_ns(12_300_000.0), "12.3 ms");
    }
}
