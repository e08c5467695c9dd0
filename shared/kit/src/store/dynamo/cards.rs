//! Card state: its item encoding and decoding, the versioned update, and `CardStore` for
//! `DynamoStore` (with the card-and-jobs transactions).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};

use super::jobs::put_job;
use super::{
    cancellation_reasons, cancelled_error, condition_failed_item, is_condition_failed, json_to_av,
    n, reason_code, s, set_remove, store_error, DynamoStore, Expr, Fields, Item,
};
use crate::cards::CardDelivery;
use crate::store::keys::{self, PK};
use crate::store::table::TABLE;
use crate::store::ttl_secs;
use crate::store::{
    CardState, CardStore, JobStore, NewJob, StoreError, StoreResult, StoredUpdateToken,
};

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
        ("delivery", Some(s(state.delivery.as_str()))),
        ("kind", Some(s(&state.kind))),
        ("status", Some(s(&state.status))),
        (
            "update_token",
            state.update_token.as_ref().map(update_token_av),
        ),
        ("data", Some(json_to_av(&state.data))),
        ("updated_at", Some(n(state.updated_at))),
        // Kept `CARD_STATE_TTL_MS` after its last write (every write moves it on).
        (
            TABLE.ttl_attribute,
            Some(n(ttl_secs(
                state
                    .updated_at
                    .saturating_add(crate::store::CARD_STATE_TTL_MS),
            ))),
        ),
        ("list_pk", state.list_key.as_ref().map(s)),
        (
            "list_at",
            state.list_key.as_ref().map(|_| n(state.created_at)),
        ),
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
        delivery: {
            let delivery = f.s("delivery")?;
            CardDelivery::parse(&delivery)
                .ok_or_else(|| f.corrupt(format!("unknown delivery {delivery}")))?
        },
        kind: f.s("kind")?,
        status: f.s("status")?,
        update_token,
        data: f.json("data")?,
        created_at: f.n("created_at")?,
        updated_at: f.n("updated_at")?,
        list_key: f.opt_s("list_pk")?,
    })
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
        let now = crate::store::now_millis();
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

    async fn retain_card(
        &self,
        card_key: &str,
        until: crate::store::EpochMillis,
    ) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::card_pk(card_key),
                keys::CARD_STATE_SK,
            )))
            .update_expression("SET #ttl = :until")
            // Never shorter than it is kept already.
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(#ttl) OR #ttl < :until)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#ttl", TABLE.ttl_attribute)
            .expression_attribute_values(":until", n(ttl_secs(until)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if super::is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("retain card", e)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %state.card_key, version = state.version))]
    async fn update_card(&self, state: &CardState) -> StoreResult<CardState> {
        let (update, condition, expr) = card_update(state);
        let result = self
            .conditional_update(
                keys::card_pk(&state.card_key),
                keys::CARD_STATE_SK,
                update,
                condition,
                expr,
            )
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

    async fn update_card_and_enqueue(
        &self,
        state: &CardState,
        jobs: &[NewJob],
    ) -> StoreResult<CardState> {
        // Re-armed jobs go right after the write, never in its transaction (`NewJob::rearm`).
        let (later, now): (Vec<NewJob>, Vec<NewJob>) = jobs.iter().cloned().partition(|j| j.rearm);
        let updated = self.update_card_and_enqueue_atomic(state, &now).await?;
        for job in &later {
            crate::store::JobStore::enqueue(self, job).await?;
        }
        Ok(updated)
    }
}

#[async_trait]
impl crate::store::ListStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_cards(&self, list_key: &str, limit: usize) -> StoreResult<crate::store::Listed> {
        let out = self.query_list(list_key, limit).await?;
        let cards = out
            .items()
            .iter()
            .map(card_from_item)
            .collect::<StoreResult<Vec<_>>>()?;
        let consumed_capacity = out.consumed_capacity().and_then(|c| c.capacity_units());
        tracing::info!(
            list = list_key.split('#').next().unwrap_or_default(),
            cards = cards.len(),
            consumed_capacity,
            "list read by Query"
        );
        Ok(crate::store::Listed {
            cards,
            consumed_capacity,
        })
    }
}

impl DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(card_key = %state.card_key, jobs = jobs.len()))]
    /// The card's update and `jobs` in one transaction (the trait method without re-armed jobs).
    async fn update_card_and_enqueue_atomic(
        &self,
        state: &CardState,
        jobs: &[NewJob],
    ) -> StoreResult<CardState> {
        if jobs.len() > super::super::MAX_JOBS_PER_WRITE {
            return Err(StoreError::Unavailable(format!(
                "{} jobs in one write, more than {}",
                jobs.len(),
                super::super::MAX_JOBS_PER_WRITE
            )));
        }
        if jobs.is_empty() {
            // One item: a plain conditional update says the same for less.
            return self.update_card(state).await;
        }
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
        let mut write = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(card).build());
        for job in jobs {
            write = write.transact_items(
                TransactWriteItem::builder()
                    .put(put_job(&self.table, job, state.updated_at)?)
                    .build(),
            );
        }
        let result = write.send().await;
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
        let job_exists = (1..=jobs.len()).any(|i| code(i) == "ConditionalCheckFailed");
        let others_fine =
            (1..=jobs.len()).all(|i| matches!(code(i), "None" | "ConditionalCheckFailed"));
        match code(0) {
            "ConditionalCheckFailed" => Err(card_condition_error(
                &state.card_key,
                reasons.first().and_then(|r| r.item()),
            )),
            // A retried click: a job is already queued; the card changes and the rest queue.
            "None" if job_exists && others_fine => {
                self.update_card(state).await?;
                for job in jobs {
                    self.enqueue(job).await?;
                }
                Ok(updated)
            }
            _ => Err(cancelled_error(op, &state.card_key, &reasons)),
        }
    }
}
