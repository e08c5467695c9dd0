//! DynamoDB capacity per flow, as DynamoDB bills it: every request the bench's client sends asks
//! for `ReturnConsumedCapacity: INDEXES`, and each answer's units are summed, split into reads and
//! writes on the table and on its global secondary indexes. On-demand tables bill these units as
//! read and write request units.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde::Serialize;
use serde_json::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Units consumed since the last [`CapacityMeter::take`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Capacity {
    /// Read units on the table (GetItem, Query, TransactGetItems, …).
    pub table_read: f64,
    /// Write units on the table (PutItem, UpdateItem, DeleteItem, TransactWriteItems, …).
    pub table_write: f64,
    /// Read units on the indexes (a Query on `lists` or `due`).
    pub index_read: f64,
    /// Write units the indexes took for the table's writes.
    pub index_write: f64,
    /// Write units (table and indexes) by the kind of item written: `rate`, `dedup`, `card state`,
    /// `job`, `token`, or `transaction` (a card with its jobs, in one TransactWriteItems).
    pub writes_by_item: BTreeMap<String, f64>,
}

impl Capacity {
    pub fn read(&self) -> f64 {
        self.table_read + self.index_read
    }

    pub fn write(&self) -> f64 {
        self.table_write + self.index_write
    }

    pub fn plus(&self, other: &Capacity) -> Capacity {
        let mut writes_by_item = self.writes_by_item.clone();
        for (kind, units) in &other.writes_by_item {
            *writes_by_item.entry(kind.clone()).or_insert(0.0) += units;
        }
        Capacity {
            table_read: self.table_read + other.table_read,
            table_write: self.table_write + other.table_write,
            index_read: self.index_read + other.index_read,
            index_write: self.index_write + other.index_write,
            writes_by_item,
        }
    }

    /// `rate 14, transaction 14, …`: write units by item kind, largest first.
    pub fn writes_summary(&self) -> String {
        let mut kinds: Vec<_> = self.writes_by_item.iter().collect();
        kinds.sort_by(|a, b| b.1.total_cmp(a.1));
        kinds
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `1.5 RRU + 4 WRU (of which index 1)`.
    pub fn summary(&self) -> String {
        format!(
            "{} RRU + {} WRU (indexes: {} RRU, {} WRU)",
            self.read(),
            self.write(),
            self.index_read,
            self.index_write
        )
    }
}

/// The client interceptor; share one with [`CapacityMeter::client`] and read it with `take`.
#[derive(Debug, Clone, Default)]
pub struct CapacityMeter(Arc<Mutex<Capacity>>);

impl CapacityMeter {
    /// `client` with this meter on every request.
    pub fn client(&self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        let config = client
            .config()
            .to_builder()
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// The units so far, resetting them to zero.
    pub fn take(&self) -> Capacity {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// One `ConsumedCapacity` object: its table part, then each index.
    fn record(&self, consumed: &Value, request: &Req) {
        let units = |v: &Value| v["CapacityUnits"].as_f64().unwrap_or(0.0);
        let table = consumed
            .get("Table")
            .map(units)
            .unwrap_or_else(|| units(consumed));
        let index: f64 = ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"]
            .iter()
            .flat_map(|map| consumed[*map].as_object().into_iter().flatten())
            .map(|(_, part)| units(part))
            .sum();
        let mut sum = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if request.write() {
            sum.table_write += table;
            sum.index_write += index;
            *sum.writes_by_item
                .entry(request.kind.clone())
                .or_insert(0.0) += table + index;
        } else {
            sum.table_read += table;
            sum.index_read += index;
        }
    }
}

/// The kind of item a request writes, from its key: `rate#…`, `dedup#…`, `card#…` + `state` or
/// `job#…`, `token#…`; a transaction is its own kind.
fn item_kind(body: &Value) -> String {
    if body.get("TransactItems").is_some() {
        return "transaction".into();
    }
    let key = body.get("Key").or_else(|| body.get("Item"));
    let part = |name: &str| {
        key.and_then(|k| k[name]["S"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let (pk, sk) = (part("pk"), part("sk"));
    match pk.split('#').next().unwrap_or_default() {
        "card" if sk.starts_with("job#") => "job".into(),
        "card" => "card state".into(),
        "" => "other".into(),
        kind => kind.to_owned(),
    }
}

/// The request's operation (`X-Amz-Target`) and the kind of item, kept from signing to the answer.
#[derive(Debug, Clone)]
struct Req {
    target: String,
    kind: String,
}

impl Req {
    /// Whether the operation (`DynamoDB_20120810.<Operation>`) writes.
    fn write(&self) -> bool {
        let op = self.target.rsplit('.').next().unwrap_or_default();
        matches!(
            op,
            "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems"
        )
    }
}

impl Storable for Req {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let Some(mut body) = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        else {
            return Ok(());
        };
        cfg.interceptor_state().store_put(Req {
            target: request
                .headers()
                .get("x-amz-target")
                .unwrap_or_default()
                .to_owned(),
            kind: item_kind(&body),
        });
        if let Some(object) = body.as_object_mut() {
            object.insert("ReturnConsumedCapacity".into(), "INDEXES".into());
            let bytes = serde_json::to_vec(&body)?;
            request
                .headers_mut()
                .insert("content-length", bytes.len().to_string());
            *request.body_mut() = SdkBody::from(bytes);
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(request) = cfg.load::<Req>().cloned() else {
            return Ok(());
        };
        let Some(body) = context
            .response()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        else {
            return Ok(());
        };
        if std::env::var_os("BENCH_CAPACITY_TRACE").is_some() {
            eprintln!(
                "capacity: {} {} {}",
                request.target, request.kind, body["ConsumedCapacity"]
            );
        }
        match &body["ConsumedCapacity"] {
            Value::Array(parts) => parts.iter().for_each(|p| self.record(p, &request)),
            one @ Value::Object(_) => self.record(one, &request),
            _ => {}
        }
        Ok(())
    }
}
