//! Drives the card-updater as AWS does: the table's stream (new job items, filtered and batched like
//! the template's `NewJobs` event source) and the every-minute EventBridge schedule, each invoking the
//! real function through cargo lambda watch's invoke endpoint with the real event shape.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
use serde_json::{json, Value};

/// The function the driver invokes.
pub const UPDATER_FUNCTION: &str = "card-updater";
/// `BatchSize` of the template's stream event source.
pub const STREAM_BATCH_SIZE: usize = 10;
/// `MaximumRetryAttempts` of the template's stream event source.
const STREAM_RETRIES: u32 = 3;
const STREAM_POLL: Duration = Duration::from_millis(250);
/// How often the shard list is read again (shards roll over; a closed one has children).
const SHARD_REFRESH: Duration = Duration::from_secs(10);

/// Invokes a function through cargo lambda watch (`/2015-03-31/functions/<name>/invocations`).
#[derive(Clone)]
pub struct Invoker {
    http: reqwest::Client,
    /// `http://127.0.0.1:<watch port>`.
    pub watch_url: String,
}

impl Invoker {
    pub fn new(http: reqwest::Client, watch_url: impl Into<String>) -> Self {
        Self {
            http,
            watch_url: watch_url.into(),
        }
    }

    /// The function's answer, or why there is none (transport failure or a function error).
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, String> {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.watch_url
        );
        let response = self
            .http
            .post(&url)
            .json(payload)
            .send()
            .await
            .map_err(|e| format!("invoke {function}: {e}"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| format!("invoke {function}: {e}"))?;
        let value: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
        // The runtime reports a handler error as {"errorType", "errorMessage"}.
        if !status.is_success() || value.get("errorType").is_some() {
            return Err(format!("{function} failed (HTTP {status}): {value}"));
        }
        Ok(value)
    }
}

/// An EventBridge "Scheduled Event", as the template's `rate(1 minute)` rule sends it.
pub fn scheduled_event(at: SystemTime, region: &str) -> Value {
    let time = DateTime::from(at)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into());
    // EventBridge sends whole seconds.
    let time = match time.split_once('.') {
        Some((secs, _)) => format!("{secs}Z"),
        None => time,
    };
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time,
        "region": region,
        "resources": [format!("arn:aws:events:{region}:000000000000:rule/cardbot-local-sweep")],
        "detail": {},
    })
}

/// The template's filter: only INSERTs of job items (`sk` starting with `job#`) wake the updater.
pub fn is_new_job(record: &Value) -> bool {
    record.get("eventName").and_then(Value::as_str) == Some("INSERT")
        && record
            .pointer("/dynamodb/Keys/sk/S")
            .and_then(Value::as_str)
            .is_some_and(|sk| sk.starts_with("job#"))
}

/// A DynamoDB stream event for Lambda: GetRecords' records plus the source ARN and region.
pub fn stream_event(records: &[Value], stream_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(images) = r.get_mut("dynamodb").and_then(Value::as_object_mut) {
                for name in ["Keys", "NewImage", "OldImage"] {
                    if let Some(Value::Object(image)) = images.get_mut(name) {
                        image.values_mut().for_each(repair_empty_map);
                    }
                }
            }
            if let Some(obj) = r.as_object_mut() {
                obj.insert("eventSourceARN".into(), json!(stream_arn));
                obj.insert("awsRegion".into(), json!(region));
                obj.entry("eventSource").or_insert(json!("aws:dynamodb"));
            }
            r
        })
        .collect();
    json!({ "Records": records })
}

/// DynamoDB Local's GetRecords writes an empty map attribute as `{}` where DynamoDB Streams (and
/// Lambda's event) have `{"M": {}}`; an attribute value with no type fails the event's parse.
fn repair_empty_map(av: &mut Value) {
    match av {
        Value::Object(typed) if typed.is_empty() => *av = json!({"M": {}}),
        Value::Object(typed) => {
            if let Some(Value::Object(map)) = typed.get_mut("M") {
                map.values_mut().for_each(repair_empty_map);
            }
            if let Some(Value::Array(list)) = typed.get_mut("L") {
                list.iter_mut().for_each(repair_empty_map);
            }
        }
        _ => {}
    }
}

/// Records to hand back after an invocation that reported `batchItemFailures`: Lambda resumes
/// from the lowest failed sequence number.
pub fn records_to_retry(batch: &[Value], answer: &Value) -> Vec<Value> {
    let failed: Vec<&str> = answer
        .get("batchItemFailures")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("itemIdentifier").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    match batch.iter().position(|r| {
        r.pointer("/dynamodb/SequenceNumber")
            .and_then(Value::as_str)
            .is_some_and(|seq| failed.contains(&seq))
    }) {
        Some(first) => batch[first..].to_vec(),
        None => Vec::new(),
    }
}

/// The DynamoDB Streams API (JSON 1.0) of DynamoDB Local, on the table's endpoint.
#[derive(Clone)]
pub struct StreamsApi {
    http: reqwest::Client,
    endpoint: String,
    region: String,
}

impl StreamsApi {
    pub fn new(
        http: reqwest::Client,
        endpoint: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        Self {
            http,
            endpoint: endpoint.into(),
            region: region.into(),
        }
    }

    async fn call(&self, action: &str, body: Value) -> Result<Value, String> {
        // DynamoDB Local wants an access key in the Authorization header but checks no signature;
        // this driver only ever talks to a local endpoint.
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=test/20240101/{}/dynamodb/aws4_request, \
             SignedHeaders=host, Signature=0",
            self.region
        );
        let response = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDBStreams_20120810.{action}"))
            .header("authorization", authorization)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("{action}: {e}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{action}: {e}"))?;
        let value: Value =
            serde_json::from_str(&text).map_err(|e| format!("{action}: {e}: {text}"))?;
        if !status.is_success() {
            return Err(format!("{action}: HTTP {status}: {text}"));
        }
        Ok(value)
    }

    /// The ARN of the table's current stream.
    pub async fn stream_arn(&self, table: &str) -> Result<String, String> {
        let answer = self
            .call("ListStreams", json!({ "TableName": table }))
            .await?;
        answer
            .pointer("/Streams/0/StreamArn")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("table {table} has no stream"))
    }

    async fn shards(&self, stream_arn: &str) -> Result<Vec<String>, String> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let mut body = json!({ "StreamArn": stream_arn });
            if let Some(s) = &start {
                body["ExclusiveStartShardId"] = json!(s);
            }
            let answer = self.call("DescribeStream", body).await?;
            if let Some(list) = answer
                .pointer("/StreamDescription/Shards")
                .and_then(Value::as_array)
            {
                shards.extend(
                    list.iter()
                        .filter_map(|s| s.get("ShardId").and_then(Value::as_str))
                        .map(str::to_owned),
                );
            }
            match answer
                .pointer("/StreamDescription/LastEvaluatedShardId")
                .and_then(Value::as_str)
            {
                Some(last) => start = Some(last.to_owned()),
                None => return Ok(shards),
            }
        }
    }

    async fn iterator(&self, stream_arn: &str, shard: &str, kind: &str) -> Result<String, String> {
        let answer = self
            .call(
                "GetShardIterator",
                json!({ "StreamArn": stream_arn, "ShardId": shard, "ShardIteratorType": kind }),
            )
            .await?;
        answer
            .get("ShardIterator")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("no iterator for shard {shard}"))
    }

    /// `(records, next iterator)`; no next iterator once a closed shard is read to its end.
    async fn records(&self, iterator: &str) -> Result<(Vec<Value>, Option<String>), String> {
        let answer = self
            .call(
                "GetRecords",
                json!({ "ShardIterator": iterator, "Limit": 1000 }),
            )
            .await?;
        let records = answer
            .get("Records")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let next = answer
            .get("NextShardIterator")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok((records, next))
    }
}

/// What the driver reports (the runner prints it).
pub type Report = tokio::sync::mpsc::UnboundedSender<String>;

/// Reads the stream of `table` and invokes the updater with each batch of new jobs. Returns once
/// the reader is positioned, so no insert after this call is missed.
pub async fn start_stream(
    streams: StreamsApi,
    table: &str,
    invoker: Invoker,
    region: String,
    report: Report,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let stream_arn = streams.stream_arn(table).await?;
    let mut reader = ShardReader {
        streams,
        stream_arn,
        iterators: HashMap::new(),
        finished: HashSet::new(),
        refreshed: Instant::now(),
    };
    // The template's event source starts at LATEST. Here the table is new (the runner creates it,
    // in memory), so its shards are read from their start: the same records, and no insert is
    // lost to DynamoDB Local placing a LATEST iterator after a write that raced with it.
    reader.refresh("TRIM_HORIZON").await?;
    Ok(tokio::spawn(async move {
        loop {
            match reader.poll().await {
                Ok(records) => {
                    let jobs: Vec<Value> = records.into_iter().filter(is_new_job).collect();
                    for batch in jobs.chunks(STREAM_BATCH_SIZE) {
                        deliver(&invoker, &reader.stream_arn, &region, batch, &report).await;
                    }
                }
                Err(e) => {
                    let _ = report.send(format!("stream: {e}"));
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
            tokio::time::sleep(STREAM_POLL).await;
        }
    }))
}

async fn deliver(
    invoker: &Invoker,
    stream_arn: &str,
    region: &str,
    batch: &[Value],
    report: &Report,
) {
    let mut pending = batch.to_vec();
    for attempt in 0..=STREAM_RETRIES {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let started = Instant::now();
        let event = stream_event(&pending, stream_arn, region);
        let noun = if pending.len() == 1 { "job" } else { "jobs" };
        match invoker.invoke(UPDATER_FUNCTION, &event).await {
            Ok(answer) => {
                let retry = records_to_retry(&pending, &answer);
                let _ = report.send(format!(
                    "stream: {} new {noun} → {UPDATER_FUNCTION} ({} ms{})",
                    pending.len(),
                    started.elapsed().as_millis(),
                    if retry.is_empty() {
                        String::new()
                    } else {
                        format!(", {} reported failed", retry.len())
                    }
                ));
                if retry.is_empty() {
                    return;
                }
                pending = retry;
            }
            Err(e) => {
                let _ = report.send(format!("stream: {} new {noun}: {e}", pending.len()));
            }
        }
    }
    let _ = report.send(format!(
        "stream: gave up on {} record(s) after {STREAM_RETRIES} retries; the schedule's sweep picks their jobs up",
        pending.len()
    ));
}

struct ShardReader {
    streams: StreamsApi,
    stream_arn: String,
    /// Open shards and where reading goes on.
    iterators: HashMap<String, String>,
    /// Closed shards read to their end.
    finished: HashSet<String>,
    refreshed: Instant,
}

impl ShardReader {
    async fn refresh(&mut self, new_shard_start: &str) -> Result<(), String> {
        for shard in self.streams.shards(&self.stream_arn).await? {
            if self.finished.contains(&shard) || self.iterators.contains_key(&shard) {
                continue;
            }
            let it = self
                .streams
                .iterator(&self.stream_arn, &shard, new_shard_start)
                .await?;
            self.iterators.insert(shard, it);
        }
        self.refreshed = Instant::now();
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<Value>, String> {
        if self.refreshed.elapsed() > SHARD_REFRESH || self.iterators.is_empty() {
            // A shard born after we started holds only records we have not seen: read it whole.
            self.refresh("TRIM_HORIZON").await?;
        }
        let mut all = Vec::new();
        let shards: Vec<String> = self.iterators.keys().cloned().collect();
        for shard in shards {
            let Some(it) = self.iterators.get(&shard).cloned() else {
                continue;
            };
            let (records, next) = self.streams.records(&it).await?;
            all.extend(records);
            match next {
                Some(next) => {
                    self.iterators.insert(shard, next);
                }
                None => {
                    self.iterators.remove(&shard);
                    self.finished.insert(shard);
                    self.refreshed = Instant::now() - SHARD_REFRESH * 2;
                }
            }
        }
        Ok(all)
    }
}

/// Invokes the updater with a Scheduled Event every `every`, the first one `every` from now.
pub fn start_schedule(
    invoker: Invoker,
    region: String,
    every: Duration,
    report: Report,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let started = Instant::now();
            let event = scheduled_event(SystemTime::now(), &region);
            let line = match invoker.invoke(UPDATER_FUNCTION, &event).await {
                Ok(_) => format!(
                    "schedule: sweep → {UPDATER_FUNCTION} ({} ms)",
                    started.elapsed().as_millis()
                ),
                Err(e) => format!("schedule: sweep: {e}"),
            };
            let _ = report.send(line);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, sk: &str, seq: &str) -> Value {
        json!({
            "eventID": "1", "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "ddblocal",
            "dynamodb": {"Keys": {"pk": {"S": "card#a"}, "sk": {"S": sk}},
                         "NewImage": {"pk": {"S": "card#a"}, "sk": {"S": sk}},
                         "SequenceNumber": seq, "SizeBytes": 10, "StreamViewType": "NEW_IMAGE"}
        })
    }

    #[test]
    fn only_job_inserts_pass_the_filter() {
        assert!(is_new_job(&record("INSERT", "job#1", "1")));
        assert!(!is_new_job(&record("MODIFY", "job#1", "1")));
        assert!(!is_new_job(&record("INSERT", "state", "1")));
        assert!(!is_new_job(&json!({})));
    }

    #[test]
    fn retry_resumes_from_the_first_failed_record() {
        let batch = vec![
            record("INSERT", "job#1", "1"),
            record("INSERT", "job#2", "2"),
            record("INSERT", "job#3", "3"),
        ];
        let answer = json!({"batchItemFailures": [{"itemIdentifier": "2"}]});
        let retry = records_to_retry(&batch, &answer);
        assert_eq!(retry.len(), 2);
        assert_eq!(retry[0]["dynamodb"]["SequenceNumber"], "2");
        assert!(records_to_retry(&batch, &json!({"batchItemFailures": []})).is_empty());
        assert!(records_to_retry(&batch, &Value::Null).is_empty());
    }

    /// A record exactly as DynamoDB Local 3.3's GetRecords returns it for a new job, with its way
    /// of writing an empty map (`{}`, where DynamoDB Streams writes `{"M": {}}`).
    fn get_records_insert() -> Value {
        json!({
            "eventID": "cf30d08e-0056-4499-8258-0e5298246e05", "eventName": "INSERT",
            "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "ddblocal",
            "dynamodb": {
                "ApproximateCreationDateTime": 1796063100.0,
                "Keys": {"sk": {"S": "job#post_answer"}, "pk": {"S": "card#om_1"}},
                "NewImage": {
                    "due_pk": {"S": "due"}, "payload": {"M": {"a": {"NULL": true}, "b": {}, "c": {"L": [{}]}}},
                    "sk": {"S": "job#post_answer"}, "due_at": {"N": "1700000002000"},
                    "pk": {"S": "card#om_1"}, "status": {"S": "pending"}
                },
                "SequenceNumber": "000000000000000000001", "SizeBytes": 104,
                "StreamViewType": "NEW_IMAGE"
            }
        })
    }

    #[test]
    fn the_stream_event_sent_is_the_updaters_stream_event() {
        let arn =
            "arn:aws:dynamodb:ddblocal:000000000000:table/cardbot/stream/2024-01-01T00:00:00.000";
        let event = stream_event(&[get_records_insert()], arn, "us-east-1");
        let cardbot::entry::card_updater::UpdaterEvent::Stream(batch) =
            cardbot::entry::card_updater::UpdaterEvent::from_payload(event)
        else {
            panic!("not a stream event");
        };
        let record = &batch.records[0];
        assert_eq!(record.aws_region, "us-east-1");
        let payload = &record.change.new_image["payload"];
        let serde_dynamo::AttributeValue::M(payload) = payload else {
            panic!("{payload:?}");
        };
        assert_eq!(
            payload["b"],
            serde_dynamo::AttributeValue::M(Default::default())
        );
        assert_eq!(record.event_source_arn.as_deref(), Some(arn));
        let jobs = cardbot::store::stream::new_jobs(&batch.records);
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            (jobs[0].card_key.as_str(), jobs[0].job_id.as_str()),
            ("om_1", "post_answer")
        );
    }

    #[test]
    fn the_scheduled_event_sent_is_the_updaters_schedule_event() {
        let event = scheduled_event(SystemTime::now(), "us-east-1");
        assert!(matches!(
            cardbot::entry::card_updater::UpdaterEvent::from_payload(event),
            cardbot::entry::card_updater::UpdaterEvent::Schedule(_)
        ));
    }

    #[test]
    fn scheduled_event_time_is_whole_seconds_utc() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let event = scheduled_event(at, "us-east-1");
        assert_eq!(event["time"], "2023-11-14T22:13:20Z");
        assert_eq!(event["detail-type"], "Scheduled Event");
    }
}
