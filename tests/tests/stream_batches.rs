//! The updater's answer to a stream batch, on DynamoDB Local and the simulator: a record whose job
//! cannot be claimed (its item does not read as a job) is named in `batchItemFailures`, alone, so
//! Lambda retries that record and not the batch; the other records' jobs are done once.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use cardbot::entry::card_updater::UpdaterEvent;
use cardbot::jobs::send_reply_job;
use cardbot::store::keys::{card_pk, job_sk, PK, SK};
use cardbot::store::JobStore;
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::Bot;
use cardbot_tests::simulator::{SimConfig, SimUser, Simulator};
use serde_json::{json, Value};

fn payload(i: usize, user: &SimUser) -> Value {
    json!({
        "source_message_id": format!("om_batch_{i}"),
        "chat_id": user.p2p_chat_id,
        "requester_open_id": user.open_id,
        "command": "help",
        "delivery": "message",
        "send_as": "p2p",
    })
}

/// An INSERT record of the job `send_reply` on `card`, as the table's stream carries it.
fn record(sequence: &str, card: &str, due_at: i64) -> Value {
    json!({
        "eventID": format!("ev-{sequence}"),
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"pk": {"S": card_pk(card)}, "sk": {"S": job_sk("send_reply")}},
            "NewImage": {
                "pk": {"S": card_pk(card)}, "sk": {"S": job_sk("send_reply")},
                "status": {"S": "pending"}, "due_at": {"N": due_at.to_string()},
            },
            "SequenceNumber": sequence,
            "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000",
    })
}

#[tokio::test]
async fn a_stream_batch_with_one_poison_record_names_only_that_record() {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let users = sim.add_users(3);
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let bot = Bot::start(sim.clone(), store.clone(), "message").await;
    let now = sim.now_ms();
    for (i, user) in users.iter().enumerate() {
        let card = format!("om_batch_{i}");
        store
            .enqueue(&send_reply_job(&card, payload(i, user), now))
            .await
            .unwrap();
    }
    // The second job's item no longer reads as a job (its `kind` is gone).
    let client = dynamodb_local::client().await;
    client
        .update_item()
        .table_name(store.table_name())
        .key(PK, AttributeValue::S(card_pk("om_batch_1")))
        .key(SK, AttributeValue::S(job_sk("send_reply")))
        .update_expression("REMOVE kind")
        .send()
        .await
        .unwrap();

    let batch = json!({"Records": [
        record("100", "om_batch_0", now),
        record("200", "om_batch_1", now),
        record("300", "om_batch_2", now),
    ]});
    let summary = bot.run_updater(&UpdaterEvent::from_payload(batch)).await;
    assert_eq!(summary.done, 2, "{summary:?}");
    // The answer as Lambda reads it: only the poison record.
    let answer = serde_json::to_value(&summary).unwrap();
    assert_eq!(
        answer["batchItemFailures"],
        json!([{"itemIdentifier": "200"}]),
        "{answer}"
    );
    for (i, user) in users.iter().enumerate() {
        let texts = bot.bot_messages(&user.p2p_chat_id).len();
        assert_eq!(texts, usize::from(i != 1), "user {i}");
    }

    // Lambda's retry of that record (and those after it): reported again, nothing sent twice.
    let retry =
        json!({"Records": [record("200", "om_batch_1", now), record("300", "om_batch_2", now)]});
    let summary = bot.run_updater(&UpdaterEvent::from_payload(retry)).await;
    assert_eq!(summary.done, 0, "{summary:?}");
    let answer = serde_json::to_value(&summary).unwrap();
    assert_eq!(
        answer["batchItemFailures"],
        json!([{"itemIdentifier": "200"}])
    );
    assert_eq!(bot.bot_messages(&users[2].p2p_chat_id).len(), 1);

    // A sweep's answer names no record.
    let swept = serde_json::to_value(bot.sweep().await).unwrap();
    assert!(swept.get("batchItemFailures").is_none(), "{swept}");
}
