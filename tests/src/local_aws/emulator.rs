//! The local AWS emulator (PyPI `ministack`, pinned in `scripts/ensure-tools.sh`): one process on
//! 127.0.0.1 serving CloudFormation, S3, Lambda, DynamoDB (and its streams), EventBridge, Secrets
//! Manager and CloudWatch Logs on one port. It runs a `provided.al2023` function's `bootstrap` as a
//! plain host process (no Docker), so host builds of the three functions run as deployed.
//!
//! Started with a clean environment: the emulator copies its own environment into every function
//! it runs, so nothing of the caller's shell (credentials, `RUST_LOG`, `FEISHU_*`) may be in it.
//! `AWS_ENDPOINT_URL` is set on it, which sends the functions' own AWS calls back to it.
//!
//! Its APIs are reached here with plain HTTP: the emulator does not check SigV4 signatures
//! (IAM is off unless started with `AUTH=true`), and the few calls the stack needs (Lambda invoke,
//! event source mappings, EventBridge rules, CloudFormation outputs) do not justify three more SDKs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::local_stack::process::{command, Service};

/// The region the emulator and the stack use.
pub const REGION: &str = "us-east-1";
/// How long the emulator may take to answer its health check (0.5 s on an idle machine).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running emulator; [`Emulator::stop`] ends it and every function process it started.
pub struct Emulator {
    service: Service,
    /// `http://127.0.0.1:<port>`: every AWS API of the emulator (never a tunnel's target).
    pub endpoint: String,
    /// The emulator's `TMPDIR`: each function's code is unpacked below it, and its workers run there.
    tmp: PathBuf,
}

impl Emulator {
    /// Starts `<bin>/ministack` on `port` with `dir` as its working directory (logs, `tmp/`).
    pub async fn start(bin: &Path, dir: &Path, port: u16) -> Result<Self, String> {
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let log = dir.join("emulator.log");
        let log_file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut emulator = command(bin.join("ministack"));
        emulator
            .current_dir(dir)
            .env_clear()
            .envs(clean_env(bin, dir))
            .envs([
                ("BIND_HOST", "127.0.0.1".to_owned()),
                ("GATEWAY_PORT", port.to_string()),
                // Copied into every function's environment: their SDK calls come back here.
                ("AWS_ENDPOINT_URL", endpoint.clone()),
                ("TMPDIR", tmp.display().to_string()),
                ("LOG_LEVEL", "WARNING".to_owned()),
                // The functions' SDK gets a non-empty session token (the emulator's default is "").
                ("AWS_SESSION_TOKEN", "test".to_owned()),
                // What Lambda sets from the template's `LoggingConfig: LogFormat: JSON` (the
                // emulator creates the log groups but does not set it): the functions log JSON.
                ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
            ])
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file);
        let mut service = Service::spawn("local AWS emulator", emulator)?;
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let health = http
                .get(format!("{endpoint}/_ministack/health"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            // A health answer counts only while ours runs: another server may hold the port.
            if health.is_ok_and(|r| r.status().is_success()) && service.exited().is_none() {
                break;
            }
            if let Some(status) = service.exited() {
                return Err(format!(
                    "the local AWS emulator exited ({status}); its log: {}",
                    log.display()
                ));
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                service.stop(Duration::from_secs(2)).await;
                return Err(format!(
                    "the local AWS emulator did not answer on port {port} within {STARTUP_TIMEOUT:?}; its log: {}",
                    log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            service,
            endpoint,
            tmp,
        })
    }

    /// `Some(how)` once the emulator has exited.
    pub fn exited(&mut self) -> Option<String> {
        self.service.exited()
    }

    /// The emulator's APIs.
    pub fn api(&self) -> Api {
        Api::new(&self.endpoint)
    }

    /// Stops the emulator's process group and tree, then any function process that outlived it
    /// (a worker is reparented when the emulator goes first; the emulator's own shutdown only
    /// stops Docker containers). Every one of them runs in a folder below the emulator's `TMPDIR`.
    pub async fn stop(&mut self) {
        self.service.stop(Duration::from_secs(5)).await;
        for _ in 0..20 {
            let left = processes_in(&self.tmp);
            if left.is_empty() {
                return;
            }
            for pid in left {
                if let Ok(pid) = libc::pid_t::try_from(pid) {
                    // SAFETY: kill has no memory effects; a stale pid only yields ESRCH.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The environment the emulator (and so every function it runs) gets: a PATH and a HOME of its
/// own, a UTF-8 locale, and nothing else of the caller's.
pub fn clean_env(bin: &Path, home: &Path) -> Vec<(&'static str, String)> {
    vec![
        (
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        ),
        ("HOME", home.display().to_string()),
        ("LANG", "C.UTF-8".to_owned()),
        ("LC_ALL", "C.UTF-8".to_owned()),
    ]
}

/// Live processes whose working directory is `dir` or below it (from /proc).
pub fn processes_in(dir: &Path) -> Vec<u32> {
    let Ok(dir) = dir.canonicalize() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&dir))
                && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| !s.contains(") Z "))
        })
        .collect()
}

/// The emulator's APIs over plain HTTP (see the module docs).
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    pub endpoint: String,
}

impl Api {
    pub fn new(endpoint: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
        }
    }

    /// A CloudFormation Query API call (`Action=<action>&...`); the XML answer as text.
    async fn cloudformation(
        &self,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<String, String> {
        let mut form = vec![("Action", action), ("Version", "2010-05-15")];
        form.extend_from_slice(params);
        let response = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&form).map_err(|e| e.to_string())?)
            .send()
            .await
            .map_err(|e| format!("CloudFormation {action}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("CloudFormation {action}: {status} {text}"));
        }
        Ok(text)
    }

    /// A stack's outputs, `OutputKey` → `OutputValue` (DescribeStacks).
    pub async fn stack_outputs(&self, stack: &str) -> Result<BTreeMap<String, String>, String> {
        let xml = self
            .cloudformation("DescribeStacks", &[("StackName", stack)])
            .await?;
        let outputs = xml_section(&xml, "Outputs").unwrap_or_default();
        Ok(xml_pairs(outputs, "OutputKey", "OutputValue"))
    }

    /// A stack's resources, logical id → physical id (DescribeStackResources).
    pub async fn stack_resources(&self, stack: &str) -> Result<BTreeMap<String, String>, String> {
        let xml = self
            .cloudformation("DescribeStackResources", &[("StackName", stack)])
            .await?;
        Ok(xml_pairs(&xml, "LogicalResourceId", "PhysicalResourceId"))
    }

    /// Invokes `function` (name or ARN) synchronously with `payload`, as the schedule and the stream
    /// mapping do; the function's answer, or its error (`X-Amz-Function-Error`).
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, String> {
        let response = self
            .http
            .post(format!(
                "{}/2015-03-31/functions/{function}/invocations",
                self.endpoint
            ))
            .json(payload)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .map_err(|e| format!("invoke {function}: {e}"))?;
        let status = response.status();
        let failed = response.headers().get("x-amz-function-error").cloned();
        let body = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() || failed.is_some() {
            return Err(format!("invoke {function}: {status} {failed:?} {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("invoke {function}: {e}: {body}"))
    }

    /// A Lambda REST call with a JSON answer.
    async fn lambda(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self
            .http
            .request(method, format!("{}/2015-03-31/{path}", self.endpoint));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("lambda {path}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("lambda {path}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("lambda {path}: {e}: {text}"))
    }

    /// The function URL of `function` (GetFunctionUrlConfig `FunctionUrl`).
    pub async fn function_url(&self, function: &str) -> Result<String, String> {
        let response = self
            .http
            .get(format!(
                "{}/2021-10-31/functions/{function}/url",
                self.endpoint
            ))
            .send()
            .await
            .map_err(|e| format!("lambda url of {function}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("lambda url of {function}: {status} {text}"));
        }
        let config: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        config["FunctionUrl"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no FunctionUrl: {text}"))
    }

    /// The event source mappings of `function` (ListEventSourceMappings).
    pub async fn event_source_mappings(&self, function: &str) -> Result<Vec<Value>, String> {
        let list = self
            .lambda(
                reqwest::Method::GET,
                &format!("event-source-mappings/?FunctionName={function}"),
                None,
            )
            .await?;
        Ok(list["EventSourceMappings"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Turns an event source mapping on or off (UpdateEventSourceMapping `Enabled`).
    pub async fn set_event_source_mapping_enabled(
        &self,
        uuid: &str,
        enabled: bool,
    ) -> Result<(), String> {
        self.lambda(
            reqwest::Method::PUT,
            &format!("event-source-mappings/{uuid}"),
            Some(json!({ "Enabled": enabled })),
        )
        .await
        .map(drop)
    }

    /// A CloudWatch Logs call (`Logs_20140328.<operation>`, JSON 1.1).
    pub async fn logs(&self, operation: &str, body: Value) -> Result<Value, String> {
        self.json_1_1(&format!("Logs_20140328.{operation}"), body)
            .await
    }

    /// An EventBridge call (`AWSEvents.<operation>`, JSON 1.1).
    pub async fn events(&self, operation: &str, body: Value) -> Result<Value, String> {
        self.json_1_1(&format!("AWSEvents.{operation}"), body).await
    }

    /// An SQS call (`AmazonSQS.<operation>`, JSON 1.0).
    pub async fn sqs(&self, operation: &str, body: Value) -> Result<Value, String> {
        self.json("1.0", &format!("AmazonSQS.{operation}"), body)
            .await
    }

    /// An SQS queue `name` that receives the events of `bus` (`None`: the default bus) matching
    /// `pattern` (an EventBridge event pattern) through a rule of the same name; its queue URL.
    pub async fn queue_for_rule(
        &self,
        bus: Option<&str>,
        name: &str,
        pattern: &Value,
    ) -> Result<String, String> {
        let queue = self
            .sqs("CreateQueue", json!({ "QueueName": name }))
            .await?;
        let url = queue["QueueUrl"].as_str().ok_or("no QueueUrl")?.to_owned();
        let attributes = json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]});
        let arn = self.sqs("GetQueueAttributes", attributes).await?["Attributes"]["QueueArn"]
            .as_str()
            .ok_or("no QueueArn")?
            .to_owned();
        let bus = bus.unwrap_or("default");
        let rule = json!({"Name": name, "EventBusName": bus, "EventPattern": pattern.to_string()});
        self.events("PutRule", rule).await?;
        let target = json!({"Id": "queue", "Arn": arn});
        let targets = json!({"Rule": name, "EventBusName": bus, "Targets": [target]});
        self.events("PutTargets", targets).await?;
        Ok(url)
    }

    /// The events (parsed message bodies) in the queue at `queue_url`, polled until some arrive or
    /// `within` has passed.
    pub async fn receive_events(
        &self,
        queue_url: &str,
        within: Duration,
    ) -> Result<Vec<Value>, String> {
        let started = Instant::now();
        loop {
            let request = json!({"QueueUrl": queue_url, "MaxNumberOfMessages": 10});
            let answer = self.sqs("ReceiveMessage", request).await?;
            let received: Vec<Value> = answer["Messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| serde_json::from_str(m["Body"].as_str()?).ok())
                .collect();
            if !received.is_empty() || started.elapsed() >= within {
                return Ok(received);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A call of an AWS JSON 1.1 API (`X-Amz-Target: <target>`).
    async fn json_1_1(&self, target: &str, body: Value) -> Result<Value, String> {
        self.json("1.1", target, body).await
    }

    /// A call of an AWS JSON API of `version` (1.0 or 1.1; `X-Amz-Target: <target>`).
    async fn json(&self, version: &str, target: &str, body: Value) -> Result<Value, String> {
        let operation = target;
        let response = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("x-amz-target", target)
            .header("content-type", format!("application/x-amz-json-{version}"))
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("{operation}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{operation}: {status} {text}"));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| format!("{operation}: {e}: {text}"))
    }
}

/// The text between the first `<tag>` and its `</tag>`.
fn xml_section<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}

/// Every `<key>k</key>` … `<value>v</value>` pair in order (entities decoded).
fn xml_pairs(xml: &str, key: &str, value: &str) -> BTreeMap<String, String> {
    let mut pairs = BTreeMap::new();
    let mut rest = xml;
    while let Some(k) = xml_section(rest, key) {
        let after_key = &rest[rest.find(&format!("</{key}>")).unwrap_or(0)..];
        let Some(v) = xml_section(after_key, value) else {
            break;
        };
        pairs.insert(
            html_escape::decode_html_entities(k).into_owned(),
            html_escape::decode_html_entities(v).into_owned(),
        );
        let close = format!("</{value}>");
        let Some(end) = after_key.find(&close) else {
            break;
        };
        rest = &after_key[end + close.len()..];
    }
    pairs
}

/// A function URL as the stack reports it (`https://<url-id>.lambda-url.<region>.on.aws/`) in the
/// path form the emulator serves on `endpoint`: `http://127.0.0.1:<port>/_aws/lambda-url/<url-id>/`.
pub fn local_function_url(function_url: &str, endpoint: &str) -> Option<String> {
    let host = function_url
        .strip_prefix("https://")
        .or_else(|| function_url.strip_prefix("http://"))?
        .split('/')
        .next()?;
    let (id, rest) = host.split_once('.')?;
    if id.is_empty() || !rest.starts_with("lambda-url.") {
        return None;
    }
    Some(format!(
        "{}/_aws/lambda-url/{id}/",
        endpoint.trim_end_matches('/')
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_url_maps_to_the_emulators_path_form() {
        assert_eq!(
            local_function_url(
                "https://abc123def.lambda-url.us-east-1.on.aws/",
                "http://127.0.0.1:4566"
            )
            .as_deref(),
            Some("http://127.0.0.1:4566/_aws/lambda-url/abc123def/")
        );
        assert_eq!(local_function_url("https://example.com/", "http://x"), None);
        assert_eq!(local_function_url("cardbot-FeishuSecret", "http://x"), None);
    }

    #[test]
    fn outputs_and_resources_are_read_from_the_query_apis_xml() {
        let xml = "<DescribeStacksResponse><Stacks><member><Outputs>\
            <member><OutputKey>EventCallbackUrl</OutputKey><OutputValue>https://a.lambda-url.us-east-1.on.aws/</OutputValue><Description>x</Description></member>\
            <member><Description>y</Description><OutputKey>TableName</OutputKey><OutputValue>t&amp;1</OutputValue></member>\
            </Outputs></member></Stacks></DescribeStacksResponse>";
        let outputs = xml_pairs(
            xml_section(xml, "Outputs").unwrap(),
            "OutputKey",
            "OutputValue",
        );
        assert_eq!(outputs.len(), 2, "{outputs:?}");
        assert_eq!(outputs["TableName"], "t&1");
        assert_eq!(
            outputs["EventCallbackUrl"],
            "https://a.lambda-url.us-east-1.on.aws/"
        );
    }
}
