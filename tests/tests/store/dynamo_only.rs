//! DynamoDB-only checks: the items as the table holds them, and the `due` index's cost.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use cardbot::store::dynamo::{pending_job_item, DynamoStore};
use cardbot::store::{
    ttl_secs, CardStore, DedupClaim, DedupStore, JobStore, StoreError, StoredTenantToken,
    StoredUpdateToken, TokenStore, DONE_JOB_TTL_MS, LEASE_EXPIRED_ERROR, MAX_JOB_ATTEMPTS,
};
use cardbot_tests::dynamodb_local;
use futures::StreamExt;
use serde_json::json;

use cardbot::store::ListStore;

use crate::conformance::{card, job, t0, unique};

type Item = HashMap<String, AttributeValue>;

async fn raw(client: &Client, table: &str, pk: &str, sk: &str) -> Option<Item> {
    client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

async fn store_and_client() -> (DynamoStore, Client, String) {
    let client = dynamodb_local::client().await;
    let table = dynamodb_local::fresh_table(&client).await;
    (
        DynamoStore::new(client.clone(), table.clone()),
        client,
        table,
    )
}

#[tokio::test]
async fn items_are_laid_out_as_documented() {
    let (store, client, table) = store_and_client().await;
    let now = t0();

    // Dedup: `dedup#<key>` / `-`, TTL in epoch seconds; `processing` with a lease, then `done`.
    assert_eq!(
        store.claim("om_1", now, 7_500, 86_400_000).await.unwrap(),
        DedupClaim::FirstTime
    );
    let dedup = raw(&client, &table, "dedup#om_1", "-").await.unwrap();
    assert_eq!(dedup["expires_at"], n(ttl_secs(now + 86_400_000)));
    assert_eq!(dedup["claimed_at"], n(now));
    assert_eq!(dedup["status"], AttributeValue::S("processing".into()));
    assert_eq!(dedup["lease_until"], n(now + 7_500));
    store
        .keep("om_1", "card_id", "7355372766134157313")
        .await
        .unwrap();
    store.finish("om_1", now + 1).await.unwrap();
    let dedup = raw(&client, &table, "dedup#om_1", "-").await.unwrap();
    assert_eq!(dedup["status"], AttributeValue::S("done".into()));
    assert!(!dedup.contains_key("lease_until"));
    assert_eq!(
        dedup["kept_card_id"],
        AttributeValue::S("7355372766134157313".into())
    );

    // Tenant token: the ms field and the TTL in seconds.
    let token = StoredTenantToken {
        token: "t-secret".into(),
        expires_at: now + 7_200_500,
    };
    assert!(store.put_tenant_token("cli_app", &token).await.unwrap());
    let stored = raw(&client, &table, "token#cli_app", "tenant")
        .await
        .unwrap();
    assert_eq!(
        (
            &stored["token"],
            &stored["expires_at_ms"],
            &stored["expires_at"]
        ),
        (
            &s("t-secret"),
            &n(now + 7_200_500),
            &n(ttl_secs(now + 7_200_500))
        )
    );

    // Card state: readable maps, no TTL.
    let mut state = card("c1", now);
    state.update_token = Some(StoredUpdateToken {
        token: "c-tok".into(),
        uses: 2,
        expires_at: now + 1_800_000,
    });
    store.create_card(&state).await.unwrap();
    let item = raw(&client, &table, "card#c1", "state").await.unwrap();
    assert_eq!((&item["version"], &item["sequence"]), (&n(1), &n(0)));
    assert_eq!(item["status"], s("pending"));
    assert!(
        !item.contains_key("message_id"),
        "None is no attribute, not NULL"
    );
    let AttributeValue::M(data) = &item["data"] else {
        panic!("data is not a map: {item:?}")
    };
    assert_eq!(data["title"], s("审批"));
    let AttributeValue::M(update_token) = &item["update_token"] else {
        panic!("{item:?}")
    };
    assert_eq!(update_token["uses"], n(2));
    // Kept 400 days after its last write (`CARD_STATE_TTL_MS`).
    assert_eq!(
        item["expires_at"],
        n(ttl_secs(
            state.updated_at + cardbot::store::CARD_STATE_TTL_MS
        ))
    );

    // Pending job: in the index.
    store
        .enqueue(&job("c1", "pending", now + 5_000))
        .await
        .unwrap();
    let item = raw(&client, &table, "card#c1", "job#pending")
        .await
        .unwrap();
    assert_eq!(
        (&item["due_pk"], &item["due_at"]),
        (&s("due"), &n(now + 5_000))
    );
    assert_eq!((&item["status"], &item["attempts"]), (&s("pending"), &n(0)));
    assert!(matches!(item["payload"], AttributeValue::M(_)));

    // Leased: still in the index, due when the lease lapses.
    store.enqueue(&job("c1", "done", now)).await.unwrap();
    let leased = store
        .claim_job("c1", "done", "u1", now, 30_000)
        .await
        .unwrap()
        .unwrap();
    let item = raw(&client, &table, "card#c1", "job#done").await.unwrap();
    assert_eq!(
        (&item["due_pk"], &item["due_at"]),
        (&s("due"), &n(now + 30_000))
    );
    assert_eq!(
        (&item["lease_owner"], &item["lease_until"]),
        (&s("u1"), &n(now + 30_000))
    );

    // Done: out of the index, TTL a week on.
    store.complete_job(&leased, now + 10).await.unwrap();
    let item = raw(&client, &table, "card#c1", "job#done").await.unwrap();
    assert_eq!(item["status"], s("done"));
    assert!(!item.contains_key("due_pk"));
    assert_eq!(item["expires_at"], n(ttl_secs(now + 10 + DONE_JOB_TTL_MS)));

    // Dead: out of the index, no TTL, kept.
    store.enqueue(&job("c1", "dead", now)).await.unwrap();
    for attempt in 0..MAX_JOB_ATTEMPTS {
        let at = now + i64::from(attempt);
        let leased = store
            .claim_job("c1", "dead", "u1", at, 30_000)
            .await
            .unwrap()
            .unwrap();
        store
            .fail_job(&leased, "boom", Some(at + 1), at)
            .await
            .unwrap();
    }
    let item = raw(&client, &table, "card#c1", "job#dead").await.unwrap();
    assert_eq!(
        (&item["status"], &item["attempts"]),
        (&s("dead"), &n(i64::from(MAX_JOB_ATTEMPTS)))
    );
    assert_eq!(item["last_error"], s("boom"));
    assert_dead_layout(&item);

    // Dead at once on a permanent failure: the same layout after one attempt.
    store.enqueue(&job("c1", "permanent", now)).await.unwrap();
    let leased = store
        .claim_job("c1", "permanent", "u1", now, 30_000)
        .await
        .unwrap()
        .unwrap();
    store
        .fail_job_permanently(&leased, "permanent: gone", now + 1)
        .await
        .unwrap();
    let item = raw(&client, &table, "card#c1", "job#permanent")
        .await
        .unwrap();
    assert_eq!(
        (&item["status"], &item["attempts"], &item["last_error"]),
        (&s("dead"), &n(1), &s("permanent: gone"))
    );
    assert_dead_layout(&item);

    // Dead after its leases lapsed MAX_JOB_ATTEMPTS times: the same layout.
    store.enqueue(&job("c1", "crashing", now)).await.unwrap();
    let mut at = now;
    while store
        .claim_job("c1", "crashing", "u1", at, 30_000)
        .await
        .unwrap()
        .is_some()
    {
        at += 30_000;
    }
    let item = raw(&client, &table, "card#c1", "job#crashing")
        .await
        .unwrap();
    assert_eq!(
        (&item["status"], &item["attempts"], &item["last_error"]),
        (
            &s("dead"),
            &n(i64::from(MAX_JOB_ATTEMPTS)),
            &s(LEASE_EXPIRED_ERROR)
        )
    );
    assert_dead_layout(&item);
}

/// A dead job is out of the `due` index, has no lease, and is kept for a human for
/// `DEAD_JOB_TTL_MS` after it died (its `updated_at`).
fn assert_dead_layout(item: &Item) {
    for gone in ["due_pk", "lease_owner", "lease_until"] {
        assert!(
            !item.contains_key(gone),
            "dead job still has {gone}: {item:?}"
        );
    }
    let AttributeValue::N(died) = &item["updated_at"] else {
        panic!("{item:?}")
    };
    let died: i64 = died.parse().unwrap();
    assert_eq!(
        item["expires_at"],
        n(ttl_secs(died + cardbot::store::DEAD_JOB_TTL_MS)),
        "{item:?}"
    );
}

#[tokio::test]
async fn expired_dedup_record_still_in_table_is_reclaimed() {
    let (store, client, table) = store_and_client().await;
    let now = t0();
    assert_eq!(
        store.claim("ev_1", now, 500, 1_000).await.unwrap(),
        DedupClaim::FirstTime
    );
    let later = now + 5_000;
    assert!(
        raw(&client, &table, "dedup#ev_1", "-").await.is_some(),
        "the expired record is there"
    );
    assert_eq!(
        store.claim("ev_1", later, 500, 1_000).await.unwrap(),
        DedupClaim::FirstTime
    );
    let item = raw(&client, &table, "dedup#ev_1", "-").await.unwrap();
    assert_eq!(item["claimed_at"], n(later));
}

#[tokio::test]
async fn a_seen_record_of_the_previous_version_counts_as_done() {
    let (store, client, table) = store_and_client().await;
    let now = t0();
    // What the version before leases wrote: no status, no lease.
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("dedup#om_old".into()))
        .item("sk", AttributeValue::S("-".into()))
        .item("claimed_at", n(now))
        .item("expires_at", n(ttl_secs(now + 86_400_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        store
            .claim("om_old", now + 60_000, 7_500, 86_400_000)
            .await
            .unwrap(),
        DedupClaim::Done
    );
}

#[tokio::test]
async fn item_of_another_shape_is_corrupt_not_a_panic() {
    let (store, client, table) = store_and_client().await;
    client
        .put_item()
        .table_name(&table)
        .item("pk", s("card#bad"))
        .item("sk", s("state"))
        .item("card_key", s("bad"))
        .item("version", s("one"))
        .send()
        .await
        .unwrap();
    let read = store.get_card("bad").await;
    assert!(
        matches!(&read, Err(StoreError::Corrupt { key, .. }) if key == "card#bad/state"),
        "{read:?}"
    );
}

#[tokio::test]
async fn unreachable_table_is_unavailable() {
    let client = dynamodb_local::client().await;
    let store = DynamoStore::new(client, unique("no-such-table"));
    let read = store.get_card("c").await;
    assert!(
        matches!(&read, Err(StoreError::Unavailable(m)) if m.contains("ResourceNotFoundException")),
        "{read:?}"
    );
}

/// 10,000 jobs of which 100 are due: the Query returns those 100 and reads no others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_query_reads_only_the_due_jobs_of_10000() {
    let (store, client, table) = store_and_client().await;
    let now = t0();
    let started = Instant::now();
    let items: Vec<Item> = (0..10_000_i64)
        .map(|i| {
            // 100 due (the oldest first), 9,900 pending but due later: all in the index.
            let not_before = if i < 100 {
                now - 100 + i
            } else {
                now + 60_000 + i
            };
            pending_job_item(
                &job(&format!("card{}", i % 500), &format!("j{i:05}"), not_before),
                now,
            )
        })
        .collect();
    let batches = items
        .chunks(25)
        .map(|chunk| batch_write(&client, &table, chunk.to_vec()));
    futures::stream::iter(batches)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    let seeded = started.elapsed();

    let (due, stats) = store.due_jobs_with_stats(now, 1_000).await.unwrap();
    assert_eq!(due.len(), 100);
    assert_eq!(stats.scanned_count, 100, "the Query read only the due jobs");
    assert_eq!(stats.pages, 1);
    let ids: Vec<_> = due.iter().map(|j| j.job_id.clone()).collect();
    assert_eq!(
        ids,
        (0..100).map(|i| format!("j{i:05}")).collect::<Vec<_>>(),
        "oldest first"
    );

    let (first, page) = store.due_jobs_with_stats(now, 30).await.unwrap();
    assert_eq!((first.len(), page.scanned_count), (30, 30));
    assert_eq!(first[0].job_id, "j00000");
    eprintln!(
        "seeded 10,000 jobs in {seeded:?}; the due query read {} items for 100 due jobs",
        stats.scanned_count
    );
}

async fn batch_write(client: &Client, table: &str, items: Vec<Item>) {
    let mut requests: Vec<WriteRequest> = items
        .into_iter()
        .map(|item| {
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build()
        })
        .collect();
    while !requests.is_empty() {
        let out = client
            .batch_write_item()
            .request_items(table, std::mem::take(&mut requests))
            .send()
            .await
            .unwrap();
        requests = out
            .unprocessed_items
            .and_then(|mut u| u.remove(table))
            .unwrap_or_default();
    }
}

#[tokio::test]
async fn update_token_uses_survive_a_round_trip() {
    let (store, _, _) = store_and_client().await;
    let key = unique("card");
    let mut state = card(&key, t0());
    state.data = json!({"big": 12345678901_i64, "neg": -3, "f": 0.25});
    state.update_token = Some(StoredUpdateToken {
        token: "u".into(),
        uses: 1,
        expires_at: 7,
    });
    let created = store.create_card(&state).await.unwrap();
    assert_eq!(store.get_card(&key).await.unwrap(), Some(created));
}

#[tokio::test]
async fn rate_items_are_one_per_scope_with_a_short_ttl_and_drop_stale_counters() {
    use cardbot::store::{PermitRequest, PermitTake, RateBudget, RateScope, RateStore};
    let (store, client, table) = store_and_client().await;
    let app = unique("cli");
    let now = t0().div_euclid(1_000) * 1_000;
    let budget = RateBudget::new("app", 50, 1_000, 100);
    let take = |count| [PermitRequest::new(budget.clone(), count, 2, 50)];
    let outcome = store
        .take_permits(&app, &RateScope::App, &take(3), now)
        .await
        .unwrap();
    assert_eq!(outcome, PermitTake::Granted { peaks: vec![3] });
    let item = raw(&client, &table, &format!("rate#{app}#app"), "counters")
        .await
        .expect("the app's rate item");
    // Held two ticks of 100 ms, counted in 13 counters named by when each one ends.
    let counters: Vec<_> = item.keys().filter(|k| k.starts_with("app@")).collect();
    assert_eq!(counters.len(), 13, "{item:?}");
    assert_eq!(item[&format!("app@{}", now + 100)], n(3));
    assert_eq!(item[&format!("app@{}", now + 1_300)], n(3));
    // A short TTL, in epoch seconds: minutes, not days.
    let AttributeValue::N(expires_at) = &item["expires_at"] else {
        panic!("{item:?}");
    };
    let expires_at: i64 = expires_at.parse().unwrap();
    assert!(expires_at > now / 1_000 + 60 && expires_at <= now / 1_000 + 15 * 60);
    // A chat's item is its own.
    store
        .take_permits(&app, &RateScope::Chat("oc_1".into()), &take(1), now)
        .await
        .unwrap();
    assert!(raw(
        &client,
        &table,
        &format!("rate#{app}#chat#oc_1"),
        "counters"
    )
    .await
    .is_some());

    // Two seconds later every counter of the first take has ended: this store saw them, so its
    // next take removes them in the same write.
    let later = now + 2_000;
    store
        .take_permits(&app, &RateScope::App, &take(1), later)
        .await
        .unwrap();
    let item = raw(&client, &table, &format!("rate#{app}#app"), "counters")
        .await
        .unwrap();
    let ends: Vec<i64> = item
        .keys()
        .filter_map(|k| k.strip_prefix("app@"))
        .map(|end| end.parse().unwrap())
        .collect();
    assert_eq!(ends.len(), 13, "{item:?}");
    assert!(ends.iter().all(|end| *end > later), "{ends:?}");
}

/// 我的申请 / 待我审批 are a Query on the `lists` index: the item holds `list_pk` / `list_at`, and the
/// read reports its consumed capacity; a card without a list is not in the index.
#[tokio::test]
async fn lists_are_read_by_a_query_with_its_consumed_capacity() {
    let (store, client, table) = store_and_client().await;
    let now = t0();
    let list = unique("requests#ou_me");
    let mut listed = card(&unique("card"), now);
    listed.list_key = Some(list.clone());
    store.create_card(&listed).await.unwrap();
    let item = raw(
        &client,
        &table,
        &format!("card#{}", listed.card_key),
        "state",
    )
    .await
    .unwrap();
    assert_eq!(item.get("list_pk"), Some(&s(&list)));
    assert_eq!(item.get("list_at"), Some(&n(now)));
    let plain = card(&unique("card"), now);
    store.create_card(&plain).await.unwrap();
    let item = raw(
        &client,
        &table,
        &format!("card#{}", plain.card_key),
        "state",
    )
    .await
    .unwrap();
    assert!(!item.contains_key("list_pk") && !item.contains_key("list_at"));
    let read = store.list_cards(&list, 10).await.unwrap();
    assert_eq!(read.cards.len(), 1);
    let capacity = read
        .consumed_capacity
        .expect("DynamoDB reports the Query's capacity");
    println!(
        "lists Query: {} card(s), {capacity} read capacity units",
        read.cards.len()
    );
    assert!(capacity > 0.0 && capacity <= 1.0, "{capacity}");
}

/// Retention: a card's state item is kept `CARD_STATE_TTL_MS` after its last write (every write
/// moves it on), an admin's retain holds it longer, a dead job is kept `DEAD_JOB_TTL_MS` after it
/// died and a requeue takes that away; all as DynamoDB's TTL attribute in epoch seconds.
#[tokio::test]
async fn card_state_and_dead_jobs_expire_and_a_retain_holds_a_card_longer() {
    use cardbot::store::{DeadJobStore, CARD_STATE_TTL_MS, DEAD_JOB_TTL_MS};
    let (store, client, table) = store_and_client().await;
    let now = t0();
    let key = unique("om");
    let created = store.create_card(&card(&key, now)).await.unwrap();
    let item = raw(&client, &table, &format!("card#{key}"), "state")
        .await
        .unwrap();
    assert_eq!(
        item["expires_at"],
        n(ttl_secs(created.updated_at + CARD_STATE_TTL_MS))
    );
    let mut later = created.clone();
    later.updated_at = now + 86_400_000;
    store.update_card(&later).await.unwrap();
    let item = raw(&client, &table, &format!("card#{key}"), "state")
        .await
        .unwrap();
    assert_eq!(
        item["expires_at"],
        n(ttl_secs(later.updated_at + CARD_STATE_TTL_MS))
    );
    // An admin holds it ten years; a card nobody has is refused.
    let until = now + 3650 * 86_400_000;
    assert!(store.retain_card(&key, until).await.unwrap());
    let item = raw(&client, &table, &format!("card#{key}"), "state")
        .await
        .unwrap();
    assert_eq!(item["expires_at"], n(ttl_secs(until)));
    assert!(!store.retain_card(&unique("om"), until).await.unwrap());
    // Never shorter: a hold of 30 days on a card kept for ten years changes nothing.
    assert!(!store
        .retain_card(&key, now + 30 * 86_400_000)
        .await
        .unwrap());
    let item = raw(&client, &table, &format!("card#{key}"), "state")
        .await
        .unwrap();
    assert_eq!(item["expires_at"], n(ttl_secs(until)));

    // A dead job: kept 90 days for a human; requeued, it has no TTL again.
    store.enqueue(&job(&key, "post_answer", now)).await.unwrap();
    let claimed = store
        .claim_job(&key, "post_answer", "me", now, 10_000)
        .await
        .unwrap()
        .unwrap();
    store
        .fail_job_permanently(&claimed, "permanent: 230011", now + 5)
        .await
        .unwrap();
    let item = raw(&client, &table, &format!("card#{key}"), "job#post_answer")
        .await
        .unwrap();
    assert_eq!(item["expires_at"], n(ttl_secs(now + 5 + DEAD_JOB_TTL_MS)));
    assert!(store
        .requeue_dead_job(&key, "post_answer", now + 10)
        .await
        .unwrap());
    let item = raw(&client, &table, &format!("card#{key}"), "job#post_answer")
        .await
        .unwrap();
    assert!(!item.contains_key("expires_at"), "{item:?}");
}
