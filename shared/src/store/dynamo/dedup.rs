//! Dedup records: `DedupStore` for `DynamoStore` (a conditional put per key, expired by TTL).

use async_trait::async_trait;

use super::{is_condition_failed, n, store_error, DynamoStore};
use crate::store::keys::{self, PK};
use crate::store::table::TABLE;
use crate::store::{ttl_secs, DedupClaim, DedupStore, EpochMillis, StoreResult};

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
