//! Rate counters: `RateStore` for `DynamoStore`. A take is one `UpdateItem` on the scope's item:
//! `ADD` the count to every counter it touches, on the condition that none is above its ceiling
//! less the count, returning the item; a refusal returns the item as it stood, from which the
//! earliest retry time is computed. The same write removes counters this process saw go stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{condition_failed_item, is_condition_failed, n, store_error, DynamoStore, Expr, Item};
use crate::store::keys;
use crate::store::rate::{parse_counter_name, RateCounters};
use crate::store::table::TABLE;
use crate::store::{
    ttl_secs, EpochMillis, PermitRequest, PermitTake, RateScope, RateStore, StoreResult,
};

/// A rate item outlives its last take by this much; its counters end within ~80 s of a take.
const RATE_ITEM_TTL_MS: i64 = 10 * 60_000;
/// Stale counters removed per take at most, so the expression stays far under DynamoDB's 4 KB.
const MAX_REMOVALS: usize = 64;
/// Items remembered per process; past it the memory starts over (stale counters of a forgotten
/// item are removed by whichever process reads them next, or by the TTL).
const MAX_ITEMS: usize = 1_000;

/// The counter names this process last saw in each rate item, so its next take can remove the
/// ones gone stale without reading the item first.
#[derive(Debug, Default, Clone)]
pub(super) struct RateMemo(Arc<Mutex<HashMap<String, Vec<String>>>>);

impl RateMemo {
    fn stale(&self, pk: &str, now: EpochMillis) -> Vec<String> {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(pk)
            .map(|names| {
                names
                    .iter()
                    .filter(|name| parse_counter_name(name).is_some_and(|(_, end)| end <= now))
                    .take(MAX_REMOVALS)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn remember(&self, pk: String, item: &Item) {
        let names = item
            .keys()
            .filter(|name| parse_counter_name(name).is_some())
            .cloned()
            .collect();
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_ITEMS && !seen.contains_key(&pk) {
            seen.clear();
        }
        seen.insert(pk, names);
    }
}

/// The counters of a returned item (attributes that are not counters are ignored).
fn counters(item: &Item) -> RateCounters {
    RateCounters::from_attributes(item.iter().filter_map(|(name, value)| match value {
        AttributeValue::N(v) => v.parse::<u32>().ok().map(|v| (name.as_str(), v)),
        _ => None,
    }))
}

#[async_trait]
impl RateStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip(self, requests), fields(takes = requests.len()))]
    async fn take_permits(
        &self,
        app_id: &str,
        scope: &RateScope,
        requests: &[PermitRequest],
        now: EpochMillis,
    ) -> StoreResult<PermitTake> {
        if requests.is_empty() {
            return Ok(PermitTake::Granted { peaks: Vec::new() });
        }
        let pk = keys::rate_pk(app_id, scope);
        let mut expr = Expr::default();
        let mut adds = Vec::new();
        let mut over = Vec::new();
        for r in requests {
            let count = expr.value(n(r.count()));
            let max = expr.value(n(r.max_before()));
            for x in r.counters(now) {
                let name = expr.name(&r.budget().counter_name(x));
                adds.push(format!("{name} {count}"));
                // A missing counter compares false, so it passes.
                over.push(format!("{name} > {max}"));
            }
        }
        let ttl_name = expr.name(TABLE.ttl_attribute);
        let ttl = expr.value(n(ttl_secs(now + RATE_ITEM_TTL_MS)));
        let mut update = format!("SET {ttl_name} = {ttl} ADD {}", adds.join(", "));
        let stale: Vec<String> = self
            .rate_memo
            .stale(&pk, now)
            .iter()
            .map(|name| expr.name(name))
            .collect();
        if !stale.is_empty() {
            update.push_str(&format!(" REMOVE {}", stale.join(", ")));
        }
        let condition = format!("NOT ({})", over.join(" OR "));
        let result = self
            .conditional_update(pk.clone(), keys::RATE_SK, update, condition, expr)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                self.rate_memo.remember(pk, &item);
                Ok(PermitTake::Granted {
                    peaks: counters(&item).peaks(requests, now),
                })
            }
            Err(e) if is_condition_failed(&e) => {
                let item = condition_failed_item(&e).cloned().unwrap_or_default();
                let current = counters(&item);
                self.rate_memo.remember(pk, &item);
                Ok(PermitTake::Refused {
                    retry_at: current.retry_at(requests, now),
                    peaks: current.peaks(requests, now),
                })
            }
            Err(e) => Err(store_error("take rate permits", e)),
        }
    }
}
