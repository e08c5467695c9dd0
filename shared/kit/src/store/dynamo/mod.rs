//! The DynamoDB adapter (aws-sdk-dynamodb): `DynamoStore`, and `create_table` for tests and `make run`.
//!
//! Items are readable in the console: attribute names are the Rust field names, JSON (`data`,
//! `payload`) is stored as native maps, times are epoch ms, and `expires_at` (the TTL attribute)
//! is epoch seconds. Every write that races is a conditional write; nothing reads then writes blind.
//!
//! This file owns the store's construction, `create_table` and the helpers every capability
//! shares (error mapping, attribute values, update expressions); each capability's encoding and
//! trait impl is in its own file: `token`, `dedup`, `cards`, `jobs`, `rate`.

mod cards;
mod dedup;
mod documents;
mod jobs;
mod rate;
mod token;

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, SseSpecification,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use super::keys::{PK, SK};
use super::table::{KeyAttribute, TABLE};
use super::{StoreError, StoreResult};

pub use crate::aws::{retry_config, timeout_config};
pub use jobs::{pending_job_item, QueryStats};

type Item = HashMap<String, AttributeValue>;

/// The store on one DynamoDB table. Cheap to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Rate counters this process saw, removed by its next take once stale.
    rate_memo: rate::RateMemo,
}

impl DynamoStore {
    /// A store on `table_name` through `client` (build the client with [`retry_config`]).
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table: table_name.into(),
            rate_memo: rate::RateMemo::default(),
        }
    }

    /// From the environment: the table from `TABLE_NAME`, the endpoint, region and credentials
    /// from the SDK's own variables (`AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local).
    pub async fn from_env() -> StoreResult<Self> {
        Self::from_sdk_config(&crate::aws::sdk_config().await)
    }

    /// As [`DynamoStore::from_env`], on an SDK config the function already loaded
    /// ([`crate::aws::sdk_config`]) and shares with its other clients.
    pub fn from_sdk_config(sdk: &SdkConfig) -> StoreResult<Self> {
        let table = std::env::var("TABLE_NAME")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| StoreError::Unavailable("TABLE_NAME is not set".into()))?;
        Ok(Self::new(Client::new(sdk), table))
    }

    /// The table's name.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    fn key(pk: String, sk: &str) -> Item {
        HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
    }

    /// An `UpdateItem` of (`pk`, `sk`): `update` if `condition` holds, both over `expr`'s names and
    /// values; it answers the item as written, or as it was when the condition failed.
    fn conditional_update(
        &self,
        pk: String,
        sk: &str,
        update: String,
        condition: String,
        expr: Expr,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let (names, values) = expr.values();
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(values)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }

    /// Every item of partition `pk` whose sort key starts with `sk_prefix` (all of them for
    /// `""`), in sort-key order: a strongly consistent Query, page after page; `what` names it in
    /// an error.
    async fn query_partition(
        &self,
        pk: String,
        sk_prefix: &str,
        what: &str,
    ) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            // DynamoDB takes no empty `begins_with` prefix: without one, the whole partition.
            let query = match sk_prefix {
                "" => self.client.query().key_condition_expression("#pk = :pk"),
                prefix => self
                    .client
                    .query()
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":prefix", s(prefix)),
            };
            let out = query
                .table_name(&self.table)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(pk.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error(what, e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(items),
            }
        }
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

// ---- update expressions ----

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

impl DynamoStore {
    /// One page of the `lists` index partition `list_pk`, newest first, at most `limit` (1–100)
    /// items, with the read capacity it consumed: the per-user lists and the dead jobs.
    pub(super) async fn query_list(
        &self,
        list_pk: &str,
        limit: usize,
    ) -> StoreResult<aws_sdk_dynamodb::operation::query::QueryOutput> {
        use crate::store::table::LISTS_INDEX;
        self.client
            .query()
            .table_name(&self.table)
            .index_name(LISTS_INDEX.name)
            .key_condition_expression("#list_pk = :list_pk")
            .expression_attribute_names("#list_pk", LISTS_INDEX.partition_key.name)
            .expression_attribute_values(":list_pk", s(list_pk))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.clamp(1, 100)).unwrap_or(100))
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| store_error("query a list", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ttl_secs;
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
