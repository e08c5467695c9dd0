//! Dedup records: `DedupStore` for `DynamoStore`: a conditional put takes a `processing` lease,
//! an update marks it `done`; records expire by TTL.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure, Update};

use super::{
    condition_failed_item, is_condition_failed, n, s, store_error, DynamoStore, Fields, Item,
};
use crate::store::keys::{self, PK};
use crate::store::table::TABLE;
use crate::store::{
    is_step_name, ttl_secs, DedupClaim, DedupStore, EpochMillis, Kept, StoreError, StoreResult,
};

/// The attribute a kept step is stored in: `kept_<step>`.
const KEPT_PREFIX: &str = "kept_";
/// The attribute the version before `keep` stored the reply entity in; read as the `card_id` step.
const LEGACY_CARD_ID: &str = "card_id";

const PROCESSING: &str = "processing";
const DONE: &str = "done";
const FINISH_UPDATE: &str = "SET #status = :done REMOVE #lease_until";

/// `finish` as a transaction's update (`JobStore::enqueue_finishing`): the same expression and
/// condition, so it never creates a record.
pub(super) fn finish_update(table: &str, key: &str) -> StoreResult<Update> {
    Update::builder()
        .table_name(table)
        .set_key(Some(DynamoStore::key(keys::dedup_pk(key), keys::DEDUP_SK)))
        .update_expression(FINISH_UPDATE)
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#lease_until", "lease_until")
        .expression_attribute_values(":done", s(DONE))
        .build()
        .map_err(|e| StoreError::Unavailable(format!("finish update: {e}")))
}

/// What an existing record says to a new claim: a lapsed `processing` lease is taken over.
fn existing(item: Option<&Item>, now: EpochMillis) -> DedupClaim {
    let Some(item) = item else {
        return DedupClaim::Done;
    };
    let fields = Fields::new(item);
    let status = fields.opt_s("status").ok().flatten();
    let lease_until: Option<EpochMillis> = fields.opt_n("lease_until").ok().flatten();
    match (status.as_deref(), lease_until) {
        (Some(PROCESSING), Some(until)) if until >= now => DedupClaim::InProgress,
        (Some(PROCESSING), _) => DedupClaim::TakenOver,
        // `done`, or a record of the version that wrote only "seen".
        _ => DedupClaim::Done,
    }
}

#[async_trait]
impl DedupStore for DynamoStore {
    // The key may be a legacy callback token hash: not recorded.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn claim(
        &self,
        key: &str,
        now: EpochMillis,
        lease_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<DedupClaim> {
        let key_item = Self::key(keys::dedup_pk(key), keys::DEDUP_SK);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item.clone()))
            // An update, not a put: a takeover keeps what the lapsed attempt recorded (its reply
            // entity, `keep_reply_entity`).
            .update_expression(
                "SET #status = :processing, #lease_until = :lease_until, \
                 #claimed_at = :now, #expires_at = :expires_at",
            )
            // An expired record TTL has not removed yet must not block the claim, nor a lease
            // whose holder died before finishing.
            .condition_expression(
                "attribute_not_exists(#pk) OR #expires_at < :now_secs \
                 OR (#status = :processing AND #lease_until < :now)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires_at", TABLE.ttl_attribute)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lease_until", "lease_until")
            .expression_attribute_names("#claimed_at", "claimed_at")
            .expression_attribute_values(":now_secs", n(now.div_euclid(1000)))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":processing", s(PROCESSING))
            .expression_attribute_values(":lease_until", n(now + lease_ms))
            .expression_attribute_values(":expires_at", n(ttl_secs(now + ttl_ms)))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let Some(old) = out.attributes().filter(|old| !old.is_empty()) else {
                    return Ok(DedupClaim::FirstTime);
                };
                let expires: Option<i64> =
                    Fields::new(old).opt_n(TABLE.ttl_attribute).ok().flatten();
                if expires.is_some_and(|at| at >= now.div_euclid(1000)) {
                    return Ok(DedupClaim::TakenOver);
                }
                // An expired record claimed anew: a new delivery; forget what the old one kept
                // (rare: only a replay after the record's 24 h).
                let stale: Vec<String> = old
                    .keys()
                    .filter(|name| name.starts_with(KEPT_PREFIX) || *name == LEGACY_CARD_ID)
                    .cloned()
                    .collect();
                if !stale.is_empty() {
                    let mut update = self
                        .client
                        .update_item()
                        .table_name(&self.table)
                        .set_key(Some(key_item));
                    let mut names = Vec::new();
                    for (i, name) in stale.into_iter().enumerate() {
                        update = update.expression_attribute_names(format!("#k{i}"), name);
                        names.push(format!("#k{i}"));
                    }
                    update
                        .update_expression(format!("REMOVE {}", names.join(", ")))
                        .send()
                        .await
                        .map_err(|e| store_error("claim dedup key", e))?;
                }
                Ok(DedupClaim::FirstTime)
            }
            Err(e) if is_condition_failed(&e) => {
                Ok(match existing(condition_failed_item(&e), now) {
                    // The condition said no: the lease is live or the record is done.
                    DedupClaim::TakenOver => DedupClaim::InProgress,
                    other => other,
                })
            }
            Err(e) => Err(store_error("claim dedup key", e)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn finish(&self, key: &str, _now: EpochMillis) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::dedup_pk(key), keys::DEDUP_SK)))
            .update_expression(FINISH_UPDATE)
            // Never create a record without its TTL (a released or expired key stays gone).
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lease_until", "lease_until")
            .expression_attribute_values(":done", s(DONE))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("finish dedup key", e)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(step))]
    async fn keep(&self, key: &str, step: &str, value: &str) -> StoreResult<String> {
        if !is_step_name(step) {
            return Err(StoreError::Invalid(format!("step name {step:?}")));
        }
        let attribute = format!("{KEPT_PREFIX}{step}");
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::dedup_pk(key), keys::DEDUP_SK)))
            .update_expression("SET #step = if_not_exists(#step, :value)")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#step", &attribute)
            .expression_attribute_values(":value", s(value))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .attributes()
                .and_then(|item| Fields::new(item).opt_s(&attribute).ok().flatten())
                .unwrap_or_else(|| value.to_owned())),
            Err(e) if is_condition_failed(&e) => Ok(value.to_owned()),
            Err(e) => Err(store_error("keep a step", e)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn kept(&self, key: &str) -> StoreResult<Kept> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::dedup_pk(key), keys::DEDUP_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("read kept steps", e))?;
        let Some(item) = out.item() else {
            return Ok(Kept::new());
        };
        let mut kept: Kept = item
            .iter()
            .filter_map(|(name, value)| {
                let step = name.strip_prefix(KEPT_PREFIX)?;
                Some((step.to_owned(), value.as_s().ok()?.clone()))
            })
            .collect();
        if let Some(card_id) = item.get(LEGACY_CARD_ID).and_then(|v| v.as_s().ok()) {
            kept.entry("card_id".to_owned())
                .or_insert_with(|| card_id.clone());
        }
        Ok(kept)
    }

    // The key may be a legacy callback token hash: not recorded.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn release(&self, key: &str) -> StoreResult<()> {
        // The lease ends now; the record stays with what the attempt kept (a CardKit entity it
        // created), so the retry takes it over and reuses that instead of making another.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::dedup_pk(key), keys::DEDUP_SK)))
            .update_expression("SET #lease_until = :zero")
            // Only a claim in progress: a delivery another attempt finished stays done.
            .condition_expression("attribute_exists(#pk) AND #status = :processing")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lease_until", "lease_until")
            .expression_attribute_values(":processing", s(PROCESSING))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Nothing claimed, finished meanwhile, or gone: nothing to release.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("release dedup key", e)),
        }
    }
}
