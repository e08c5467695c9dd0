//! The deployed functions' log lines, followed in the emulator's CloudWatch Logs (the log groups
//! the template makes, `LoggingConfig.LogGroup`) and printed as `make run` prints its functions'.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::emulator::Api;

/// How often the log groups are read.
const POLL: Duration = Duration::from_millis(500);

/// Whether a line is the platform's (START, END, REPORT) or a metrics document (EMF), which say
/// nothing a person reading along needs.
fn is_noise(message: &str) -> bool {
    let m = message.trim_start();
    m.starts_with("START RequestId")
        || m.starts_with("END RequestId")
        || m.starts_with("REPORT RequestId")
        || m.starts_with("{\"_aws\"")
}

/// Prints each new line of `groups` (`(label, log group name)`) as `  <label> │ <line>`, from now on.
pub fn follow(api: Api, groups: Vec<(String, String)>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        // Per group: the newest timestamp printed, and how many lines carried it.
        let mut seen: Vec<(i64, usize)> = vec![(started, 0); groups.len()];
        loop {
            for ((label, group), (newest, at_newest)) in groups.iter().zip(seen.iter_mut()) {
                let Ok(answer) = api
                    .logs(
                        "FilterLogEvents",
                        json!({"logGroupName": group, "startTime": *newest}),
                    )
                    .await
                else {
                    continue;
                };
                let events = answer["events"].as_array().cloned().unwrap_or_default();
                let mut same = 0;
                for event in events {
                    let ts = event["timestamp"].as_i64().unwrap_or(0);
                    if ts < *newest {
                        continue;
                    }
                    if ts == *newest {
                        same += 1;
                        if same <= *at_newest {
                            continue;
                        }
                        *at_newest += 1;
                    } else {
                        *newest = ts;
                        *at_newest = 1;
                        same = 1;
                    }
                    let message = event["message"].as_str().unwrap_or_default();
                    if !is_noise(message) {
                        println!("  {label} │ {}", render(message.trim_end()));
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    })
}

/// A JSON log line (the functions log JSON when Lambda says `AWS_LAMBDA_LOG_FORMAT=JSON`, from the
/// template's `LoggingConfig`) as `LEVEL message key=value …`; any other line as it is.
pub fn render(line: &str) -> String {
    let Ok(Value::Object(record)) = serde_json::from_str::<Value>(line) else {
        return line.to_owned();
    };
    let level = record.get("level").and_then(Value::as_str).unwrap_or("");
    let mut out = format!("{level:>5}");
    if let Some(Value::Object(fields)) = record.get("fields") {
        if let Some(message) = fields.get("message").and_then(Value::as_str) {
            out.push(' ');
            out.push_str(message);
        }
        for (key, value) in fields.iter().filter(|(k, _)| *k != "message") {
            match value {
                Value::String(text) => out.push_str(&format!(" {key}={text:?}")),
                other => out.push_str(&format!(" {key}={other}")),
            }
        }
    }
    out
}

/// The message of the function's answer to a failed invocation, as the function URL returns it.
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["errorMessage"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_and_metric_lines_are_left_out() {
        assert!(is_noise("START RequestId: 1 Version: $LATEST"));
        assert!(is_noise("REPORT RequestId: 1 Duration: 2 ms"));
        assert!(is_noise(r#"{"_aws":{"Timestamp":1}}"#));
        assert!(!is_noise(" WARN request rejected reason=\"bad signature\""));
        assert_eq!(
            render(
                r#"{"level":"WARN","fields":{"message":"request rejected","reason":"bad signature","ms":3}}"#
            ),
            r#" WARN request rejected ms=3 reason="bad signature""#
        );
        assert_eq!(render("plain line"), "plain line");
        assert_eq!(
            error_message(
                r#"{"errorMessage":"bootstrap exited during init with code 1","errorType":"Runtime.Unknown"}"#
            ),
            "bootstrap exited during init with code 1"
        );
    }
}
