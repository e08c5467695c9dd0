//! The table's stream records, decoded: which new jobs a batch announces (the updater's fast path),
//! and which cards' states it changed.

pub use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use serde_dynamo::AttributeValue;

use super::keys::{self, PK, SK};
use super::table::DUE_INDEX;
use super::JobRef;

/// `eventName` of a record for an item's first write.
const INSERT: &str = "INSERT";
/// `eventName` of a record for an item's later write.
const MODIFY: &str = "MODIFY";
/// A job's `status` while it waits to be claimed.
const PENDING: &str = "pending";

/// The jobs `records` made pending, in stream order: inserted, or written pending again (re-armed
/// after they were done, a re-armed run's rerun, a retry rescheduled; the updater waits for a job
/// that is not due yet). Records of other items (card state, tokens, dedup), of a job's other
/// writes (claims, completion, its TTL removal) and records whose keys are not a job's are
/// skipped: the sweep finds any due job the stream does not name.
pub fn new_jobs(records: &[EventRecord]) -> Vec<JobRef> {
    new_jobs_with_sequence(records)
        .into_iter()
        .map(|(job, _)| job)
        .collect()
}

/// [`new_jobs`], each with its record's `SequenceNumber` (what a `batchItemFailures` entry names
/// as `itemIdentifier`, so Lambda retries that record and those after it, not the whole batch).
pub fn new_jobs_with_sequence(records: &[EventRecord]) -> Vec<(JobRef, Option<String>)> {
    records
        .iter()
        .filter(|record| {
            record.event_name == INSERT
                || (record.event_name == MODIFY
                    && matches!(
                        record.change.new_image.get("status"),
                        Some(AttributeValue::S(status)) if status == PENDING
                    ))
        })
        .filter_map(|record| {
            inserted_job(record).map(|job| (job, record.change.sequence_number.clone()))
        })
        .collect()
}

/// The card keys whose state item `records` created or changed, each once, in stream order; the
/// records of other items and of removals are skipped. A bot that shows a card's state from the
/// stream reads it again (the record may be older than the item).
pub fn changed_cards(records: &[EventRecord]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for record in records.iter().filter(|r| r.event_name != "REMOVE") {
        let key = |name: &str| match record.change.keys.get(name)? {
            AttributeValue::S(value) => Some(value.as_str()),
            _ => None,
        };
        let card = key(PK)
            .zip(key(SK))
            .and_then(|(pk, sk)| keys::parse_card_state_key(pk, sk));
        if let Some(card) = card.filter(|card| !out.iter().any(|seen| seen == card)) {
            out.push(card.to_owned());
        }
    }
    out
}

fn inserted_job(record: &EventRecord) -> Option<JobRef> {
    let change = &record.change;
    // `Keys` is in every record whatever the stream's view type.
    let key = |name: &str| match change.keys.get(name)? {
        AttributeValue::S(value) => Some(value.as_str()),
        _ => None,
    };
    let (card_key, job_id) = keys::parse_job_key(key(PK)?, key(SK)?)?;
    let due_at = match change.new_image.get(DUE_INDEX.sort_key.name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    };
    Some(JobRef {
        card_key: card_key.to_owned(),
        job_id: job_id.to_owned(),
        due_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A record as Lambda delivers it from the table's stream (NEW_IMAGE view).
    fn record(event_name: &str, pk: &str, sk: &str, image: Value) -> EventRecord {
        let keys = json!({ "pk": { "S": pk }, "sk": { "S": sk } });
        let mut change = json!({
            "ApproximateCreationDateTime": 1_700_000_000.0,
            "Keys": keys,
            "SequenceNumber": "000000000000000000001",
            "SizeBytes": 104,
            "StreamViewType": "NEW_IMAGE"
        });
        if event_name != "REMOVE" {
            let mut image = image;
            image["pk"] = keys["pk"].clone();
            image["sk"] = keys["sk"].clone();
            change["NewImage"] = image;
        }
        serde_json::from_value(json!({
            "eventID": "cf30d08e-0056-4499-8258-0e5298246e05",
            "eventName": event_name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": change,
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/cardbot/stream/2024-01-01T00:00:00.000"
        }))
        .unwrap()
    }

    fn pending_job() -> Value {
        json!({
            "card_key": { "S": "om_1" }, "job_id": { "S": "post_answer" },
            "kind": { "S": "post_answer" }, "payload": { "M": { "status": { "S": "leave_submitted" } } },
            "status": { "S": "pending" }, "due_pk": { "S": "due" },
            "due_at": { "N": "1700000002000" }, "attempts": { "N": "0" }
        })
    }

    #[test]
    fn an_inserted_job_is_named_with_its_due_time() {
        let insert = record("INSERT", "card#om_1", "job#post_answer", pending_job());
        assert_eq!(
            new_jobs(&[insert]),
            [JobRef {
                card_key: "om_1".into(),
                job_id: "post_answer".into(),
                due_at: Some(1_700_000_002_000),
            }]
        );
    }

    #[test]
    fn an_inserted_job_without_a_readable_due_time_is_still_named() {
        let mut image = pending_job();
        image["due_at"] = json!({ "S": "soon" });
        let jobs = new_jobs(&[record("INSERT", "card#om_1", "job#j1", image)]);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].due_at, None);
    }

    #[test]
    fn later_writes_and_removals_of_a_job_name_nothing() {
        let mut leased = pending_job();
        leased["status"] = json!({ "S": "leased" });
        let records = [
            record("MODIFY", "card#om_1", "job#post_answer", leased),
            record("REMOVE", "card#om_1", "job#post_answer", Value::Null),
        ];
        assert_eq!(new_jobs(&records), []);
    }

    #[test]
    fn changed_cards_are_the_state_items_written_each_once() {
        let state = json!({ "status": { "S": "open" }, "version": { "N": "2" } });
        let records = [
            record("INSERT", "card#om_1", "state", state.clone()),
            record("MODIFY", "card#om_2", "state", state.clone()),
            record("MODIFY", "card#om_1", "state", state.clone()),
            record("INSERT", "card#om_3", "job#post_answer", pending_job()),
            record("REMOVE", "card#om_4", "state", Value::Null),
            record("INSERT", "dedup#om_5", "-", json!({})),
        ];
        assert_eq!(changed_cards(&records), ["om_1", "om_2"]);
    }

    #[test]
    fn other_items_name_nothing() {
        let state = json!({ "status": { "S": "pending" }, "version": { "N": "1" } });
        let records = [
            record("INSERT", "card#om_1", "state", state.clone()),
            record("INSERT", "dedup#om_1", "-", json!({})),
            record("INSERT", "token#cli_a", "tenant", json!({})),
        ];
        assert_eq!(new_jobs(&records), []);
    }

    #[test]
    fn malformed_keys_name_nothing() {
        let mut numeric_sk = record("INSERT", "card#om_1", "job#j1", pending_job());
        numeric_sk
            .change
            .keys
            .insert("sk".into(), AttributeValue::N("1".into()));
        let mut no_keys = record("INSERT", "card#om_1", "job#j1", pending_job());
        no_keys.change.keys.clear();
        let records = [
            record("INSERT", "card#", "job#j1", pending_job()),
            record("INSERT", "card#om_1", "job#", pending_job()),
            record("INSERT", "om_1", "j1", pending_job()),
            record("INSERT", "job#j1", "card#om_1", pending_job()),
            numeric_sk,
            no_keys,
        ];
        assert_eq!(new_jobs(&records), []);
    }

    #[test]
    fn a_batch_keeps_only_its_pending_jobs_in_stream_order() {
        let mut done = pending_job();
        done["status"] = json!({ "S": "done" });
        let records = [
            record("INSERT", "card#om_2", "job#b", pending_job()),
            record("INSERT", "card#om_1", "state", json!({})),
            // Re-armed (or its rerun, or a retry): pending again, so named again.
            record("MODIFY", "card#om_1", "job#x", pending_job()),
            record("MODIFY", "card#om_1", "job#y", done),
            record("INSERT", "card#om_1", "job#a", pending_job()),
        ];
        let named: Vec<(String, String)> = new_jobs(&records)
            .into_iter()
            .map(|j| (j.card_key, j.job_id))
            .collect();
        assert_eq!(
            named,
            [
                ("om_2".into(), "b".into()),
                ("om_1".into(), "x".into()),
                ("om_1".into(), "a".into())
            ]
        );
    }
}
