//! The DynamoDB adapter (aws-sdk-dynamodb): `DynamoStore`, and `create_table` for tests and `make run`.
//!
//! Items are readable in the console: attribute names are the Rust field names, JSON (`data`,
//! `payload`) is stored as native maps, times are epoch ms, and `expires_at` (the TTL attribute)
//! is epoch seconds. Every write that races is a conditional write; nothing reads then writes blind.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, SseSpecification,
    StreamSpecification, StreamViewType, TimeToLiveSpecification, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;

use super::keys::{self, PK, SK};
use super::table::{KeyAttribute, DUE_INDEX, TABLE};
use super::{
    is_last_attempt, plan_failure, truncate_error, ttl_secs, CardState, CardStore, DedupClaim,
    DedupStore, EpochMillis, FailOutcome, Job, JobStatus, JobStore, NewJob, StoreError,
    StoreResult, StoredTenantToken, StoredUpdateToken, TokenStore, DONE_JOB_TTL_MS,
    LEASE_EXPIRED_ERROR,
};

type Item = HashMap<String, AttributeValue>;

/// Attempts per call (the first plus retries) for throttling and transient errors.
const MAX_ATTEMPTS: u32 = 3;
/// A Lambda answering Feishu within 3 s cannot wait longer than this for one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1_500);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Items per `due` index page; a sweep asks for fewer in practice.
const MAX_QUERY_PAGE: usize = 1_000;

/// The SDK retry policy every `DynamoStore` client should use: standard mode (exponential
/// backoff with jitter on throttling and transient errors), bounded attempts.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// Timeouts that fit a 3-second Feishu answer.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build()
}

/// The store on one DynamoDB table. Cheap to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// What a `due` index Query read, to prove it read no more than it returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Items DynamoDB read (and billed) across pages.
    pub scanned_count: usize,
    pub pages: usize,
}

impl DynamoStore {
    /// A store on `table_name` through `client` (build the client with [`retry_config`]).
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table: table_name.into(),
        }
    }

    /// From the environment: the table from `TABLE_NAME`, the endpoint, region and credentials
    /// from the SDK's own variables (`AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local).
    pub async fn from_env() -> StoreResult<Self> {
        let table = std::env::var("TABLE_NAME")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| StoreError::Unavailable("TABLE_NAME is not set".into()))?;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(retry_config())
            .timeout_config(timeout_config())
            .load()
            .await;
        Ok(Self::new(Client::new(&sdk), table))
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Like [`JobStore::due_jobs`], with what the Query read: tests show it reads only due jobs.
    pub async fn due_jobs_with_stats(
        &self,
        now: EpochMillis,
        limit: usize,
    ) -> StoreResult<(Vec<Job>, QueryStats)> {
        let mut jobs = Vec::new();
        let mut stats = QueryStats::default();
        let mut start: Option<Item> = None;
        while jobs.len() < limit {
            let page = (limit - jobs.len()).min(MAX_QUERY_PAGE);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX.name)
                .key_condition_expression("#due_pk = :due_pk AND #due_at <= :now")
                .expression_attribute_names("#due_pk", DUE_INDEX.partition_key.name)
                .expression_attribute_names("#due_at", DUE_INDEX.sort_key.name)
                .expression_attribute_values(":due_pk", s(keys::DUE_PK))
                .expression_attribute_values(":now", n(now))
                .scan_index_forward(true)
                .limit(i32::try_from(page).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("query due jobs", e))?;
            stats.pages += 1;
            stats.scanned_count += usize::try_from(out.scanned_count()).unwrap_or(0);
            for item in out.items() {
                jobs.push(job_from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok((jobs, stats))
    }

    fn key(pk: String, sk: &str) -> Item {
        HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
    }

    /// A strongly consistent read of one item; `what` names the read in an error.
    async fn get(&self, pk: String, sk: &str, what: &str) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(what, e))?;
        Ok(out.item)
    }
}

/// Creates the table from [`TABLE`] (keys, `due` index, stream, TTL) and waits until it is active.
/// An existing table of that name is left as it is. Point-in-time recovery is the template's job.
pub async fn create_table(client: &Client, name: &str) -> StoreResult<()> {
    let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Unavailable(e.to_string());
    let key_schema = |hash: KeyAttribute, range: KeyAttribute| {
        [(hash, KeyType::Hash), (range, KeyType::Range)]
            .into_iter()
            .map(|(a, kind)| {
                KeySchemaElement::builder()
                    .attribute_name(a.name)
                    .key_type(kind)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let mut attributes = vec![TABLE.partition_key, TABLE.sort_key];
    for index in TABLE.indexes {
        attributes.extend([index.partition_key, index.sort_key]);
    }
    attributes.dedup_by_key(|a| a.name);
    let definitions = attributes
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(a.name)
                .attribute_type(ScalarAttributeType::from(a.kind))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(build)?;
    let indexes = TABLE
        .indexes
        .iter()
        .map(|index| {
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(key_schema(index.partition_key, index.sort_key)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(index.projection))
                        .build(),
                )
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(build)?;
    let stream = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::from(TABLE.stream_view_type))
        .build()
        .map_err(build)?;
    let created = client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(definitions))
        .set_key_schema(Some(
            key_schema(TABLE.partition_key, TABLE.sort_key).map_err(build)?,
        ))
        .set_global_secondary_indexes(Some(indexes))
        .billing_mode(BillingMode::from(TABLE.billing_mode))
        .stream_specification(stream)
        .sse_specification(
            SseSpecification::builder()
                .enabled(TABLE.server_side_encryption)
                .build(),
        )
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
        Err(e) => return Err(store_error("create table", e)),
    }
    for _ in 0..120 {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| store_error("describe table", e))?;
        let active = described
            .table()
            .and_then(|t| t.table_status())
            .map(|s| s.as_str())
            == Some("ACTIVE");
        if active {
            let ttl = TimeToLiveSpecification::builder()
                .attribute_name(TABLE.ttl_attribute)
                .enabled(true)
                .build()
                .map_err(build)?;
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(ttl)
                .send()
                .await
                .map_err(|e| store_error("enable TTL", e))?;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(StoreError::Unavailable(format!(
        "table {name} did not become active"
    )))
}

// ---- errors ----

fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

fn is_condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    error_code(err) == Some("ConditionalCheckFailedException")
}

fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "ThrottlingError"
            | "ProvisionedThroughputExceeded"
    )
}

/// Maps an SDK error to a short `StoreError` that says what failed (never item values).
/// The per-item reasons of a cancelled transaction, in item order; any other failure as the
/// store error for `op`.
fn cancellation_reasons<R>(
    op: &str,
    err: SdkError<TransactWriteItemsError, R>,
) -> StoreResult<Vec<CancellationReason>> {
    if let SdkError::ServiceError(e) = &err {
        if let TransactWriteItemsError::TransactionCanceledException(c) = e.err() {
            return Ok(c.cancellation_reasons().to_vec());
        }
    }
    Err(store_error(op, err))
}

/// An item's cancellation code (`None` when it did not fail).
fn reason_code(reason: &CancellationReason) -> &str {
    reason.code().unwrap_or("None")
}

/// The error for a cancelled transaction no item condition explains: throttled, a concurrent
/// write (`Conflict`, retryable by the caller), or unavailable.
fn cancelled_error(op: &str, card_key: &str, reasons: &[CancellationReason]) -> StoreError {
    let codes: Vec<&str> = reasons.iter().map(reason_code).collect();
    if codes.iter().any(|c| is_throttling(c)) {
        StoreError::Throttled
    } else if codes.contains(&"TransactionConflict") {
        StoreError::Conflict(format!("card {card_key} is being written concurrently"))
    } else {
        StoreError::Unavailable(format!("{op}: cancelled ({})", codes.join(", ")))
    }
}

fn store_error<E: ProvideErrorMetadata, R>(op: &str, err: SdkError<E, R>) -> StoreError {
    match &err {
        SdkError::ServiceError(service) => {
            let meta = service.err();
            match meta.code() {
                Some("ConditionalCheckFailedException") => {
                    StoreError::Conflict(format!("{op}: condition failed"))
                }
                Some(code) if is_throttling(code) => StoreError::Throttled,
                Some(code) => {
                    let message: String = meta.message().unwrap_or("").chars().take(160).collect();
                    StoreError::Unavailable(format!("{op}: {code} {message}").trim_end().to_owned())
                }
                None => StoreError::Unavailable(format!("{op}: service error")),
            }
        }
        SdkError::TimeoutError(_) => StoreError::Unavailable(format!("{op}: timed out")),
        SdkError::DispatchFailure(_) => {
            StoreError::Unavailable(format!("{op}: cannot reach DynamoDB"))
        }
        SdkError::ResponseError(_) => StoreError::Unavailable(format!("{op}: unreadable response")),
        _ => StoreError::Unavailable(format!("{op}: request failed")),
    }
}

/// The stored item a failed condition returned (ReturnValuesOnConditionCheckFailure = ALL_OLD).
fn condition_failed_item<R>(
    err: &SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, R>,
) -> Option<&Item> {
    match err {
        SdkError::ServiceError(e) => match e.err() {
            aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => c.item(),
            _ => None,
        },
        _ => None,
    }
}

// ---- attribute values ----

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// JSON → DynamoDB value, so `data` and `payload` read as maps in the console.
fn json_to_av(v: &serde_json::Value) -> AttributeValue {
    use serde_json::Value;
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(num) => AttributeValue::N(num.to_string()),
        Value::String(text) => AttributeValue::S(text.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(json_to_av).collect()),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_av(v)))
                .collect(),
        ),
    }
}

/// DynamoDB value → JSON; numbers come back as DynamoDB normalised them (`1.0` reads as `1`).
fn av_to_json(av: &AttributeValue) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    Ok(match av {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(num) => Value::Number(
            num.parse::<serde_json::Number>()
                .map_err(|_| format!("bad number {num}"))?,
        ),
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::L(items) => {
            Value::Array(items.iter().map(av_to_json).collect::<Result<_, _>>()?)
        }
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), av_to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        _ => return Err("unsupported attribute type".into()),
    })
}

/// Typed reads of one item's attributes; any mismatch is `Corrupt` naming the item's key.
struct Fields<'a> {
    item: &'a Item,
}

impl<'a> Fields<'a> {
    fn new(item: &'a Item) -> Self {
        Self { item }
    }

    fn corrupt(&self, reason: String) -> StoreError {
        let part = |name: &str| match self.item.get(name) {
            Some(AttributeValue::S(v)) => v.clone(),
            _ => "?".into(),
        };
        StoreError::Corrupt {
            key: format!("{}/{}", part(PK), part(SK)),
            reason,
        }
    }

    /// The attribute, treating an absent one and DynamoDB NULL alike.
    fn get(&self, name: &str) -> Option<&'a AttributeValue> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => None,
            Some(v) => Some(v),
        }
    }

    fn opt_s(&self, name: &str) -> StoreResult<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            Some(_) => Err(self.corrupt(format!("{name} is not a string"))),
        }
    }

    fn s(&self, name: &str) -> StoreResult<String> {
        self.opt_s(name)?
            .ok_or_else(|| self.corrupt(format!("{name} is missing")))
    }

    fn opt_n<T: std::str::FromStr>(&self, name: &str) -> StoreResult<Option<T>> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|_| self.corrupt(format!("{name} is out of range"))),
            Some(_) => Err(self.corrupt(format!("{name} is not a number"))),
        }
    }

    fn n<T: std::str::FromStr>(&self, name: &str) -> StoreResult<T> {
        self.opt_n(name)?
            .ok_or_else(|| self.corrupt(format!("{name} is missing")))
    }

    fn json(&self, name: &str) -> StoreResult<serde_json::Value> {
        match self.get(name) {
            None => Ok(serde_json::Value::Null),
            Some(v) => av_to_json(v).map_err(|reason| self.corrupt(format!("{name}: {reason}"))),
        }
    }
}

// ---- card state ----

fn update_token_av(token: &StoredUpdateToken) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("token".to_owned(), s(&token.token)),
        ("uses".to_owned(), n(token.uses)),
        ("expires_at".to_owned(), n(token.expires_at)),
    ]))
}

/// The card attributes a writer may set: all but the key, `version`, `sequence`, `created_at`.
fn card_attributes(state: &CardState) -> Vec<(&'static str, Option<AttributeValue>)> {
    vec![
        ("chat_id", Some(s(&state.chat_id))),
        ("requester_open_id", Some(s(&state.requester_open_id))),
        ("source_message_id", state.source_message_id.as_ref().map(s)),
        ("message_id", state.message_id.as_ref().map(s)),
        ("card_id", state.card_id.as_ref().map(s)),
        ("delivery", Some(s(&state.delivery))),
        ("kind", Some(s(&state.kind))),
        ("status", Some(s(&state.status))),
        (
            "update_token",
            state.update_token.as_ref().map(update_token_av),
        ),
        ("data", Some(json_to_av(&state.data))),
        ("updated_at", Some(n(state.updated_at))),
    ]
}

fn card_item(state: &CardState, version: u64) -> Item {
    let mut item = DynamoStore::key(keys::card_pk(&state.card_key), keys::CARD_STATE_SK);
    item.insert("card_key".into(), s(&state.card_key));
    item.insert("version".into(), n(version));
    item.insert("sequence".into(), n(state.sequence));
    item.insert("created_at".into(), n(state.created_at));
    for (name, value) in card_attributes(state) {
        if let Some(value) = value {
            item.insert(name.into(), value);
        }
    }
    item
}

fn card_from_item(item: &Item) -> StoreResult<CardState> {
    let f = Fields::new(item);
    let update_token = match f.get("update_token") {
        None => None,
        Some(AttributeValue::M(token)) => {
            let t = Fields::new(token);
            Some(StoredUpdateToken {
                token: t.s("token")?,
                uses: t.n("uses")?,
                expires_at: t.n("expires_at")?,
            })
        }
        Some(_) => return Err(f.corrupt("update_token is not a map".into())),
    };
    Ok(CardState {
        card_key: f.s("card_key")?,
        version: f.n("version")?,
        sequence: f.n("sequence")?,
        chat_id: f.s("chat_id")?,
        requester_open_id: f.s("requester_open_id")?,
        source_message_id: f.opt_s("source_message_id")?,
        message_id: f.opt_s("message_id")?,
        card_id: f.opt_s("card_id")?,
        delivery: f.s("delivery")?,
        kind: f.s("kind")?,
        status: f.s("status")?,
        update_token,
        data: f.json("data")?,
        created_at: f.n("created_at")?,
        updated_at: f.n("updated_at")?,
    })
}

/// Builds an expression with `#nX`/`:vX` placeholders, so reserved words (`status`, `data`) are safe.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(&mut self, attr: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| a.as_str() == attr) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn values(
        self,
    ) -> (
        HashMap<String, String>,
        Option<HashMap<String, AttributeValue>>,
    ) {
        let values = (!self.values.is_empty()).then_some(self.values);
        (self.names, values)
    }
}

/// `SET a = :a, … REMOVE b, …` from (attribute, new value or None to remove).
fn set_remove(expr: &mut Expr, changes: Vec<(&str, Option<AttributeValue>)>) -> String {
    let mut sets = Vec::new();
    let mut removes = Vec::new();
    for (attr, value) in changes {
        let name = expr.name(attr);
        match value {
            Some(value) => sets.push(format!("{name} = {}", expr.value(value))),
            None => removes.push(name),
        }
    }
    let mut update = String::new();
    if !sets.is_empty() {
        update.push_str(&format!("SET {}", sets.join(", ")));
    }
    if !removes.is_empty() {
        update.push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    update.trim().to_owned()
}

/// The versioned card update: (update expression, condition, expression).
fn card_update(state: &CardState) -> (String, String, Expr) {
    let mut expr = Expr::default();
    let mut changes = card_attributes(state);
    changes.push(("version", Some(n(state.version + 1))));
    let update = set_remove(&mut expr, changes);
    let condition = format!(
        "attribute_exists({}) AND {} = {}",
        expr.name(PK),
        expr.name("version"),
        expr.value(n(state.version))
    );
    (update, condition, expr)
}

/// `Conflict` when the card exists at another version, `NotFound` when it does not exist.
fn card_condition_error(card_key: &str, stored: Option<&Item>) -> StoreError {
    match stored {
        Some(_) => StoreError::Conflict(format!("card {card_key} changed")),
        None => StoreError::NotFound(format!("card {card_key}")),
    }
}

// ---- jobs ----

fn job_status_str(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Pending => "pending",
        JobStatus::Leased => "leased",
        JobStatus::Done => "done",
        JobStatus::Dead => "dead",
    }
}

/// The item [`JobStore::enqueue`] writes, for bulk seeding (BatchWriteItem) in tests and benchmarks.
pub fn pending_job_item(job: &NewJob, now: EpochMillis) -> HashMap<String, AttributeValue> {
    job_item(job, now)
}

fn job_item(job: &NewJob, now: EpochMillis) -> Item {
    let mut item = DynamoStore::key(keys::card_pk(&job.card_key), &keys::job_sk(&job.job_id));
    item.extend([
        ("card_key".to_owned(), s(&job.card_key)),
        ("job_id".to_owned(), s(&job.job_id)),
        ("kind".to_owned(), s(&job.kind)),
        ("payload".to_owned(), json_to_av(&job.payload)),
        ("status".to_owned(), s(job_status_str(JobStatus::Pending))),
        (DUE_INDEX.partition_key.name.to_owned(), s(keys::DUE_PK)),
        (DUE_INDEX.sort_key.name.to_owned(), n(job.not_before)),
        ("attempts".to_owned(), n(0)),
        ("created_at".to_owned(), n(now)),
        ("updated_at".to_owned(), n(now)),
    ]);
    item
}

fn job_from_item(item: &Item) -> StoreResult<Job> {
    let f = Fields::new(item);
    let status = match f.s("status")?.as_str() {
        "pending" => JobStatus::Pending,
        "leased" => JobStatus::Leased,
        "done" => JobStatus::Done,
        "dead" => JobStatus::Dead,
        other => return Err(f.corrupt(format!("unknown job status {other}"))),
    };
    Ok(Job {
        card_key: f.s("card_key")?,
        job_id: f.s("job_id")?,
        kind: f.s("kind")?,
        payload: f.json("payload")?,
        status,
        due_at: f.n(DUE_INDEX.sort_key.name)?,
        attempts: f.n("attempts")?,
        last_error: f.opt_s("last_error")?,
        lease_owner: f.opt_s("lease_owner")?,
        lease_until: f.opt_n("lease_until")?,
        created_at: f.n("created_at")?,
        updated_at: f.n("updated_at")?,
    })
}

fn put_job(table: &str, job: &NewJob, now: EpochMillis) -> StoreResult<Put> {
    Put::builder()
        .table_name(table)
        .set_item(Some(job_item(job, now)))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// What a conditional job update did.
enum JobWrite {
    /// Written; the item as it is now.
    Written(Item),
    /// The condition failed; the item as it was (`None`: no such job).
    Refused(Option<Item>),
}

/// `status = leased AND lease_owner = owner AND attempts = attempts`: still the lease a job was
/// claimed under (every lease that does not complete adds an attempt, so it never repeats).
fn lease_condition(expr: &mut Expr, owner: Option<&str>, attempts: u32) -> String {
    let owner = match owner {
        Some(owner) => format!("{} = {}", expr.name("lease_owner"), expr.value(s(owner))),
        None => format!("attribute_not_exists({})", expr.name("lease_owner")),
    };
    format!(
        "{} = {} AND {owner} AND {} = {}",
        expr.name("status"),
        expr.value(s(job_status_str(JobStatus::Leased))),
        expr.name("attempts"),
        expr.value(n(attempts)),
    )
}

/// The changes that leave a job `Dead`: out of the index, lease cleared, no TTL (kept for a human).
fn dead_changes(now: EpochMillis) -> Vec<(&'static str, Option<AttributeValue>)> {
    vec![
        ("status", Some(s(job_status_str(JobStatus::Dead)))),
        ("updated_at", Some(n(now))),
        (DUE_INDEX.partition_key.name, None),
        ("lease_owner", None),
        ("lease_until", None),
    ]
}

impl DynamoStore {
    /// One UpdateItem on a job: `update` if `condition` (both built over `expr`) holds.
    async fn update_job_if(
        &self,
        card_key: &str,
        job_id: &str,
        op: &str,
        expr: Expr,
        update: String,
        condition: String,
    ) -> StoreResult<JobWrite> {
        let (names, values) = expr.values();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::card_pk(card_key),
                &keys::job_sk(job_id),
            )))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(values)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(mut out) => out
                .attributes
                .take()
                .map(JobWrite::Written)
                .ok_or_else(|| StoreError::Unavailable(format!("{op}: no item returned"))),
            Err(e) if is_condition_failed(&e) => {
                Ok(JobWrite::Refused(condition_failed_item(&e).cloned()))
            }
            Err(e) => Err(store_error(op, e)),
        }
    }

    /// Updates a job `job` leased, if it is still under that lease (owner and attempts unchanged).
    async fn update_leased_job(
        &self,
        job: &Job,
        op: &str,
        changes: Vec<(&str, Option<AttributeValue>)>,
    ) -> StoreResult<()> {
        if job.lease_owner.is_none() {
            return Err(StoreError::Conflict(format!(
                "{op}: job {} has no lease",
                job.job_id
            )));
        }
        let mut expr = Expr::default();
        let update = set_remove(&mut expr, changes);
        let condition = lease_condition(&mut expr, job.lease_owner.as_deref(), job.attempts);
        let write = self
            .update_job_if(&job.card_key, &job.job_id, op, expr, update, condition)
            .await?;
        match write {
            JobWrite::Written(_) => Ok(()),
            JobWrite::Refused(Some(_)) => Err(StoreError::Conflict(format!(
                "{op}: job {} is not under this lease",
                job.job_id
            ))),
            JobWrite::Refused(None) => Err(StoreError::NotFound(format!(
                "job {}/{}",
                job.card_key, job.job_id
            ))),
        }
    }

    /// Takes over the lapsed lease `lapsed` (as read), counting it as a failed attempt; buries the
    /// job instead when that was its last one.
    async fn claim_lapsed_job(
        &self,
        lapsed: &Job,
        owner: &str,
        now: EpochMillis,
        lease_until: EpochMillis,
    ) -> StoreResult<Option<Job>> {
        let attempts = lapsed.attempts.saturating_add(1);
        let dead = is_last_attempt(lapsed);
        let mut changes = vec![
            ("attempts", Some(n(attempts))),
            ("last_error", Some(s(LEASE_EXPIRED_ERROR))),
        ];
        if dead {
            changes.extend(dead_changes(now));
        } else {
            changes.extend(lease_changes(owner, now, lease_until));
        }
        let mut expr = Expr::default();
        let update = set_remove(&mut expr, changes);
        let condition = format!(
            "{} AND {} <= {}",
            lease_condition(&mut expr, lapsed.lease_owner.as_deref(), lapsed.attempts),
            expr.name(DUE_INDEX.sort_key.name),
            expr.value(n(now)),
        );
        let write = self
            .update_job_if(
                &lapsed.card_key,
                &lapsed.job_id,
                "claim lapsed job",
                expr,
                update,
                condition,
            )
            .await?;
        match write {
            // Another updater took it over (or its holder finished it) since we read it.
            JobWrite::Refused(_) => Ok(None),
            JobWrite::Written(_) if dead => {
                tracing::warn!(card_key = %lapsed.card_key, job_id = %lapsed.job_id, attempts, "job dead: leases lapsed");
                Ok(None)
            }
            JobWrite::Written(item) => job_from_item(&item).map(Some),
        }
    }
}

/// The changes that lease a job to `owner` until `lease_until`. The job stays in the index, due
/// again when the lease lapses (a crashed updater).
fn lease_changes(
    owner: &str,
    now: EpochMillis,
    lease_until: EpochMillis,
) -> Vec<(&'static str, Option<AttributeValue>)> {
    vec![
        ("status", Some(s(job_status_str(JobStatus::Leased)))),
        ("lease_owner", Some(s(owner))),
        ("lease_until", Some(n(lease_until))),
        (DUE_INDEX.sort_key.name, Some(n(lease_until))),
        ("updated_at", Some(n(now))),
    ]
}

// ---- the traits ----

#[async_trait]
impl DedupStore for DynamoStore {
    // The key may be a legacy callback token: not recorded.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn claim(&self, key: &str, now: EpochMillis, ttl_ms: i64) -> StoreResult<DedupClaim> {
        let mut item = Self::key(keys::dedup_pk(key), keys::DEDUP_SK);
        item.insert(TABLE.ttl_attribute.into(), n(ttl_secs(now + ttl_ms)));
        item.insert("claimed_at".into(), n(now));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // An expired record TTL has not removed yet must not block the claim.
            .condition_expression("attribute_not_exists(#pk) OR #expires_at < :now_secs")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires_at", TABLE.ttl_attribute)
            .expression_attribute_values(":now_secs", n(now.div_euclid(1000)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(DedupClaim::FirstTime),
            Err(e) if is_condition_failed(&e) => Ok(DedupClaim::Duplicate),
            Err(e) => Err(store_error("claim dedup key", e)),
        }
    }

    // The key may be a legacy callback token: not recorded.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn release(&self, key: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::dedup_pk(key), keys::DEDUP_SK)))
            .send()
            .await
            .map_err(|e| store_error("release dedup key", e))?;
        Ok(())
    }
}

#[async_trait]
impl TokenStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn get_tenant_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>> {
        let item = self
            .get(
                keys::tenant_token_pk(app_id),
                keys::TENANT_TOKEN_SK,
                "get tenant token",
            )
            .await?;
        let Some(item) = item else {
            return Ok(None);
        };
        let f = Fields::new(&item);
        Ok(Some(StoredTenantToken {
            token: f.s("token")?,
            expires_at: f.n("expires_at_ms")?,
        }))
    }

    #[tracing::instrument(level = "debug", skip(self, token), fields(expires_at = token.expires_at))]
    async fn put_tenant_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool> {
        let mut item = Self::key(keys::tenant_token_pk(app_id), keys::TENANT_TOKEN_SK);
        item.insert("token".into(), s(&token.token));
        // The field in ms; `expires_at` is the TTL attribute in seconds.
        item.insert("expires_at_ms".into(), n(token.expires_at));
        item.insert(TABLE.ttl_attribute.into(), n(ttl_secs(token.expires_at)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #expires_at_ms <= :expires_at_ms")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires_at_ms", "expires_at_ms")
            .expression_attribute_values(":expires_at_ms", n(token.expires_at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("put tenant token", e)),
        }
    }

    #[tracing::instrument(level = "debug", skip(self, token))]
    async fn evict_tenant_token(&self, app_id: &str, token: &str) -> StoreResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::tenant_token_pk(app_id),
                keys::TENANT_TOKEN_SK,
            )))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        match result {
            // Another instance already replaced or evicted it: nothing to do.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("evict tenant token", e)),
            Ok(_) => Ok(()),
        }
    }
}

#[async_trait]
impl CardStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %state.card_key))]
    async fn create_card(&self, state: &CardState) -> StoreResult<CardState> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(card_item(state, 1)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(CardState {
                version: 1,
                ..state.clone()
            }),
            Err(e) if is_condition_failed(&e) => Err(StoreError::Conflict(format!(
                "card {} exists",
                state.card_key
            ))),
            Err(e) => Err(store_error("create card", e)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %state.card_key, jobs = jobs.len()))]
    async fn create_card_with_jobs(
        &self,
        state: &CardState,
        jobs: &[NewJob],
    ) -> StoreResult<CardState> {
        if jobs.is_empty() {
            return self.create_card(state).await;
        }
        let card = Put::builder()
            .table_name(&self.table)
            .set_item(Some(card_item(state, 1)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let now = super::now_millis();
        let mut write = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(card).build());
        for job in jobs {
            write = write.transact_items(
                TransactWriteItem::builder()
                    .put(put_job(&self.table, job, now)?)
                    .build(),
            );
        }
        let err = match write.send().await {
            Ok(_) => {
                return Ok(CardState {
                    version: 1,
                    ..state.clone()
                })
            }
            Err(err) => err,
        };
        let op = "create card with jobs";
        let reasons = cancellation_reasons(op, err)?;
        let failed = |r: &CancellationReason| reason_code(r) == "ConditionalCheckFailed";
        match reasons.split_first() {
            Some((card, _)) if failed(card) => Err(StoreError::Conflict(format!(
                "card {} exists",
                state.card_key
            ))),
            // A job is there without its card (written one by one): do the same one by one.
            Some((_, jobs_reasons)) if jobs_reasons.iter().any(failed) => {
                let created = self.create_card(state).await?;
                for job in jobs {
                    self.enqueue(job).await?;
                }
                Ok(created)
            }
            _ => Err(cancelled_error(op, &state.card_key, &reasons)),
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn get_card(&self, card_key: &str) -> StoreResult<Option<CardState>> {
        let item = self
            .get(keys::card_pk(card_key), keys::CARD_STATE_SK, "get card")
            .await?;
        item.as_ref().map(card_from_item).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %state.card_key, version = state.version))]
    async fn update_card(&self, state: &CardState) -> StoreResult<CardState> {
        let (update, condition, expr) = card_update(state);
        let (names, values) = expr.values();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::card_pk(&state.card_key),
                keys::CARD_STATE_SK,
            )))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(values)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => match out.attributes() {
                Some(item) => card_from_item(item),
                None => Err(StoreError::Unavailable(
                    "update card: no item returned".into(),
                )),
            },
            Err(e) if is_condition_failed(&e) => Err(card_condition_error(
                &state.card_key,
                condition_failed_item(&e),
            )),
            Err(e) => Err(store_error("update card", e)),
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn next_sequences(&self, card_key: &str, count: u32) -> StoreResult<i32> {
        let count = i32::try_from(count.max(1))
            .map_err(|_| StoreError::SequenceExhausted(card_key.to_owned()))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::card_pk(card_key),
                keys::CARD_STATE_SK,
            )))
            .update_expression("ADD #sequence :count")
            // CardKit sequences are int32: refuse to hand out past i32::MAX.
            .condition_expression("attribute_exists(#pk) AND #sequence <= :max")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sequence", "sequence")
            .expression_attribute_values(":count", n(count))
            .expression_attribute_values(":max", n(i32::MAX - count))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                let last: i32 = Fields::new(&item).n("sequence")?;
                Ok(last - count + 1)
            }
            Err(e) if is_condition_failed(&e) => match condition_failed_item(&e) {
                Some(_) => Err(StoreError::SequenceExhausted(card_key.to_owned())),
                None => Err(StoreError::NotFound(format!("card {card_key}"))),
            },
            Err(e) => Err(store_error("next sequence", e)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %state.card_key, job_id = %job.job_id))]
    async fn update_card_and_enqueue(
        &self,
        state: &CardState,
        job: &NewJob,
    ) -> StoreResult<CardState> {
        let (update, condition, expr) = card_update(state);
        let (names, values) = expr.values();
        let card = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::card_pk(&state.card_key),
                keys::CARD_STATE_SK,
            )))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(card).build())
            .transact_items(
                TransactWriteItem::builder()
                    .put(put_job(&self.table, job, state.updated_at)?)
                    .build(),
            )
            .send()
            .await;
        let updated = CardState {
            version: state.version + 1,
            ..state.clone()
        };
        let err = match result {
            Ok(_) => return Ok(updated),
            Err(err) => err,
        };
        let op = "update card and enqueue";
        let reasons = cancellation_reasons(op, err)?;
        let code = |i: usize| reasons.get(i).map_or("None", reason_code);
        match (code(0), code(1)) {
            ("ConditionalCheckFailed", _) => Err(card_condition_error(
                &state.card_key,
                reasons.first().and_then(|r| r.item()),
            )),
            // A retried click: the job is already queued, so only the card changes.
            ("None", "ConditionalCheckFailed") => {
                self.update_card(state).await?;
                Ok(updated)
            }
            _ => Err(cancelled_error(op, &state.card_key, &reasons)),
        }
    }
}

#[async_trait]
impl JobStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %job.card_key, job_id = %job.job_id))]
    async fn enqueue(&self, job: &NewJob) -> StoreResult<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(job, super::now_millis())))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            // Enqueued before (deterministic job id): the first one stands.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("enqueue job", e)),
            Ok(_) => Ok(()),
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn get_job(&self, card_key: &str, job_id: &str) -> StoreResult<Option<Job>> {
        let item = self
            .get(keys::card_pk(card_key), &keys::job_sk(job_id), "get job")
            .await?;
        item.as_ref().map(job_from_item).transpose()
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn jobs_for_card(&self, card_key: &str) -> StoreResult<Vec<Job>> {
        let mut jobs = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(keys::card_pk(card_key)))
                .expression_attribute_values(":prefix", s(keys::JOB_SK_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("query card jobs", e))?;
            for item in out.items() {
                jobs.push(job_from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(jobs),
            }
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn due_jobs(&self, now: EpochMillis, limit: usize) -> StoreResult<Vec<Job>> {
        Ok(self.due_jobs_with_stats(now, limit).await?.0)
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn claim_job(
        &self,
        card_key: &str,
        job_id: &str,
        owner: &str,
        now: EpochMillis,
        lease_ms: i64,
    ) -> StoreResult<Option<Job>> {
        let lease_until = now + lease_ms;
        let mut expr = Expr::default();
        let update = set_remove(&mut expr, lease_changes(owner, now, lease_until));
        // The common case, one write: a pending job that is due.
        let condition = format!(
            "{} = {} AND {} <= {}",
            expr.name("status"),
            expr.value(s(job_status_str(JobStatus::Pending))),
            expr.name(DUE_INDEX.sort_key.name),
            expr.value(n(now)),
        );
        let write = self
            .update_job_if(card_key, job_id, "claim job", expr, update, condition)
            .await?;
        let current = match write {
            JobWrite::Written(item) => return job_from_item(&item).map(Some),
            JobWrite::Refused(None) => return Ok(None),
            JobWrite::Refused(Some(item)) => job_from_item(&item)?,
        };
        if current.status == JobStatus::Leased && current.due_at <= now {
            self.claim_lapsed_job(&current, owner, now, lease_until)
                .await
        } else {
            Ok(None)
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %job.card_key, job_id = %job.job_id))]
    async fn complete_job(&self, job: &Job, now: EpochMillis) -> StoreResult<()> {
        self.update_leased_job(
            job,
            "complete job",
            vec![
                ("status", Some(s(job_status_str(JobStatus::Done)))),
                ("updated_at", Some(n(now))),
                (
                    TABLE.ttl_attribute,
                    Some(n(ttl_secs(now + DONE_JOB_TTL_MS))),
                ),
                (DUE_INDEX.partition_key.name, None),
                ("lease_until", None),
            ],
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %job.card_key, job_id = %job.job_id))]
    async fn fail_job(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<EpochMillis>,
        now: EpochMillis,
    ) -> StoreResult<FailOutcome> {
        let outcome = plan_failure(job, retry_at, now);
        let mut changes = vec![
            ("attempts", Some(n(job.attempts.saturating_add(1)))),
            ("last_error", Some(s(truncate_error(error)))),
            ("updated_at", Some(n(now))),
            ("lease_owner", None),
            ("lease_until", None),
        ];
        match outcome {
            FailOutcome::Rescheduled { due_at } => changes.extend([
                ("status", Some(s(job_status_str(JobStatus::Pending)))),
                (DUE_INDEX.sort_key.name, Some(n(due_at))),
            ]),
            // Out of the index and no TTL: a dead job stays for a human to see.
            FailOutcome::Dead => changes.extend([
                ("status", Some(s(job_status_str(JobStatus::Dead)))),
                (DUE_INDEX.partition_key.name, None),
            ]),
        }
        self.update_leased_job(job, "fail job", changes).await?;
        Ok(outcome)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %job.card_key, job_id = %job.job_id))]
    async fn fail_job_permanently(
        &self,
        job: &Job,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<()> {
        let mut changes = vec![
            ("attempts", Some(n(job.attempts.saturating_add(1)))),
            ("last_error", Some(s(truncate_error(error)))),
        ];
        changes.extend(dead_changes(now));
        self.update_leased_job(job, "fail job permanently", changes)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_attribute_values() {
        let value =
            json!({"a": [1, -2, 3.5, "x", null, true], "b": {"c": ""}, "d": 12345678901_i64});
        assert_eq!(av_to_json(&json_to_av(&value)).unwrap(), value);
    }

    #[test]
    fn set_remove_builds_both_clauses() {
        let mut expr = Expr::default();
        let update = set_remove(&mut expr, vec![("status", Some(s("x"))), ("due_pk", None)]);
        assert_eq!(update, "SET #n0 = :v0 REMOVE #n1");
        assert_eq!(expr.names["#n1"], "due_pk");
    }

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        assert_eq!(ttl_secs(1_000), 1);
        assert_eq!(ttl_secs(1_001), 2);
    }
}
