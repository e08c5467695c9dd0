//! The store contract as generic async functions over `S: Store`, run against both adapters.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use cardbot::store::{
    now_millis, CardState, DedupClaim, EpochMillis, FailOutcome, JobKind, JobStatus, NewJob,
    PermitRequest, PermitTake, RateBudget, RateScope, RateStore, Store, StoreError,
    StoredTenantToken, StoredUpdateToken, JOB_RETRY_BASE_MS, LEASE_EXPIRED_ERROR, MAX_JOB_ATTEMPTS,
};
use futures::StreamExt;
use rand::seq::SliceRandom;
use serde_json::json;

const DAY_MS: i64 = 86_400_000;
const LEASE_MS: i64 = 30_000;

/// A clock a day ahead of the wall clock: DynamoDB Local's TTL never removes what tests write.
pub fn t0() -> EpochMillis {
    now_millis() + DAY_MS
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub fn card(card_key: &str, now: EpochMillis) -> CardState {
    CardState {
        card_key: card_key.to_owned(),
        version: 0,
        sequence: 0,
        chat_id: "oc_chat".into(),
        requester_open_id: "ou_requester".into(),
        source_message_id: Some("om_source".into()),
        message_id: None,
        card_id: Some("7355_card".into()),
        delivery: cardbot::config::CardDelivery::Entity,
        kind: "approval".into(),
        status: "pending".into(),
        update_token: None,
        data: json!({"counter": 0, "title": "审批", "options": ["请假", "加班"], "nested": {"x": 1.5, "n": null}}),
        created_at: now,
        updated_at: now,
        list_key: None,
    }
}

/// A user's list: newest first, limited, only that user's cards; a card joins a list by an
/// update and keeps its place (its `created_at`).
pub async fn lists_are_per_user_newest_first<S: Store>(store: Arc<S>) {
    let now = t0();
    let (me, other) = (unique("requests#ou_me"), unique("requests#ou_other"));
    let mut mine = Vec::new();
    for i in 0..4 {
        let mut state = card(&unique("card"), now + i * 1_000);
        state.list_key = Some(me.clone());
        mine.push(store.create_card(&state).await.unwrap());
    }
    let mut theirs = card(&unique("card"), now + 10_000);
    theirs.list_key = Some(other.clone());
    store.create_card(&theirs).await.unwrap();
    store
        .create_card(&card(&unique("card"), now + 20_000))
        .await
        .unwrap();
    // A card that joins later, by an update, is placed by its creation.
    let joined = store
        .create_card(&card(&unique("card"), now + 1_500))
        .await
        .unwrap();
    store
        .update_card(&CardState {
            list_key: Some(me.clone()),
            ..joined.clone()
        })
        .await
        .unwrap();
    let listed = store.list_cards(&me, 3).await.unwrap();
    let keys: Vec<_> = listed.cards.iter().map(|c| c.card_key.as_str()).collect();
    assert_eq!(
        keys,
        [
            mine[3].card_key.as_str(),
            mine[2].card_key.as_str(),
            joined.card_key.as_str()
        ]
    );
    assert!(listed
        .cards
        .iter()
        .all(|c| c.list_key.as_deref() == Some(me.as_str())));
    assert_eq!(store.list_cards(&me, 100).await.unwrap().cards.len(), 5);
    assert_eq!(store.list_cards(&other, 10).await.unwrap().cards.len(), 1);
    assert!(store
        .list_cards(&unique("requests#ou_nobody"), 10)
        .await
        .unwrap()
        .cards
        .is_empty());
}

pub fn job(card_key: &str, job_id: &str, not_before: EpochMillis) -> NewJob {
    NewJob {
        card_key: card_key.to_owned(),
        job_id: job_id.to_owned(),
        kind: "post_answer".into(),
        payload: json!({"action": "leave", "n": 1}),
        not_before,
        rearm: false,
    }
}

// ---- dedup ----

/// A delivery that created its reply's CardKit entity, then gave up (released): Feishu's retry
/// takes the record over and finds the entity, so it sends that one and makes no second.
pub async fn dedup_release_keeps_what_was_kept<S: Store>(store: Arc<S>) {
    let key = unique("om");
    let now = t0();
    assert_eq!(
        store
            .claim(&key, now, CLAIM_LEASE_MS, DAY_MS)
            .await
            .unwrap(),
        DedupClaim::FirstTime
    );
    store.keep(&key, "card_id", "card-1").await.unwrap();
    store.release(&key).await.unwrap();
    assert_eq!(
        store
            .claim(&key, now + 1, CLAIM_LEASE_MS, DAY_MS)
            .await
            .unwrap(),
        DedupClaim::TakenOver
    );
    let kept = store.kept(&key).await.unwrap();
    assert_eq!(kept.get("card_id").map(String::as_str), Some("card-1"));
    assert_eq!(
        store.keep(&key, "card_id", "card-2").await.unwrap(),
        "card-1"
    );
    // Releasing a key nobody claimed creates nothing.
    let never = unique("om");
    store.release(&never).await.unwrap();
    assert_eq!(
        store
            .claim(&never, now, CLAIM_LEASE_MS, DAY_MS)
            .await
            .unwrap(),
        DedupClaim::FirstTime
    );
}

/// A claim's lease in these tests: longer than any step between two calls.
const CLAIM_LEASE_MS: i64 = 10_000;

pub async fn dedup_claims_once_and_a_late_release_keeps_it_done<S: Store>(store: Arc<S>) {
    let key = unique("om");
    let now = t0();
    let claim = |at| {
        let (store, key) = (store.clone(), key.clone());
        async move { store.claim(&key, at, CLAIM_LEASE_MS, DAY_MS).await.unwrap() }
    };
    assert_eq!(claim(now).await, DedupClaim::FirstTime);
    assert_eq!(claim(now + 1).await, DedupClaim::InProgress);
    store.finish(&key, now + 2).await.unwrap();
    assert_eq!(claim(now + 3).await, DedupClaim::Done);
    assert_eq!(claim(now + DAY_MS - 1_000).await, DedupClaim::Done);
    // A late release of a finished delivery leaves it done.
    store.release(&key).await.unwrap();
    assert_eq!(claim(now + 4).await, DedupClaim::Done);
    // Another key is independent.
    assert_eq!(
        store
            .claim(&unique("om"), now, CLAIM_LEASE_MS, DAY_MS)
            .await
            .unwrap(),
        DedupClaim::FirstTime
    );
    // Finishing a key that is gone creates nothing.
    let gone = unique("om");
    store.finish(&gone, now).await.unwrap();
    assert_eq!(
        store
            .claim(&gone, now + 1, CLAIM_LEASE_MS, DAY_MS)
            .await
            .unwrap(),
        DedupClaim::FirstTime
    );
}

/// A queued reply and its finished delivery come together; a job already queued or a delivery
/// record already gone does not stop the other half.
pub async fn enqueue_finishing_queues_and_finishes_in_one_write<S: Store>(store: Arc<S>) {
    let now = t0();
    let key = unique("om");
    let card_key = unique("card");
    assert_eq!(
        store
            .claim(&key, now, CLAIM_LEASE_MS, DAY_MS)
            .await
            .unwrap(),
        DedupClaim::FirstTime
    );
    let queued = job(&card_key, "send_reply", now);
    store.enqueue_finishing(&queued, &key, now).await.unwrap();
    let stored = store
        .get_job(&card_key, "send_reply")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, JobStatus::Pending);
    assert_eq!(
        store
            .claim(&key, now + 1, CLAIM_LEASE_MS, DAY_MS)
            .await
            .unwrap(),
        DedupClaim::Done
    );

    // The job is already there (a retried answer): the delivery is still finished.
    let again = unique("om");
    store
        .claim(&again, now, CLAIM_LEASE_MS, DAY_MS)
        .await
        .unwrap();
    store.enqueue_finishing(&queued, &again, now).await.unwrap();
    assert_eq!(
        store
            .claim(&again, now + 1, CLAIM_LEASE_MS, DAY_MS)
            .await
            .unwrap(),
        DedupClaim::Done
    );
    // No delivery record: the job is still queued, and no record is created.
    let gone = unique("om");
    let other = job(&card_key, "other_reply", now);
    store.enqueue_finishing(&other, &gone, now).await.unwrap();
    assert!(store
        .get_job(&card_key, "other_reply")
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .claim(&gone, now + 1, CLAIM_LEASE_MS, DAY_MS)
            .await
            .unwrap(),
        DedupClaim::FirstTime
    );
}

pub async fn dedup_expired_record_does_not_block<S: Store>(store: Arc<S>) {
    let key = unique("ev");
    let now = t0();
    assert_eq!(
        store.claim(&key, now, 500, 1_000).await.unwrap(),
        DedupClaim::FirstTime
    );
    // The record expired at now + 1 s; TTL has not removed it (its time is a day ahead).
    assert_eq!(
        store.claim(&key, now + 3_500, 500, 1_000).await.unwrap(),
        DedupClaim::FirstTime
    );
    assert_eq!(
        store.claim(&key, now + 3_600, 500, 1_000).await.unwrap(),
        DedupClaim::InProgress
    );
}

/// A claim whose holder died is taken over once its lease lapses, by exactly one of many
/// concurrent re-deliveries; a finished claim never is.
pub async fn dedup_lapsed_lease_is_taken_over_once<S: Store + 'static>(store: Arc<S>) {
    let key = unique("om");
    let now = t0();
    assert_eq!(
        store.claim(&key, now, 5_000, DAY_MS).await.unwrap(),
        DedupClaim::FirstTime
    );
    assert_eq!(
        store.claim(&key, now + 4_999, 5_000, DAY_MS).await.unwrap(),
        DedupClaim::InProgress
    );
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.claim(&key, now + 6_000, 5_000, DAY_MS).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().unwrap());
    }
    let taken: Vec<_> = outcomes.iter().filter(|c| c.is_ours()).collect();
    assert_eq!(taken, [&DedupClaim::TakenOver], "{outcomes:?}");
    store.finish(&key, now + 7_000).await.unwrap();
    assert_eq!(
        store
            .claim(&key, now + 60_000, 5_000, DAY_MS)
            .await
            .unwrap(),
        DedupClaim::Done
    );
}

/// A step's outcome (the reply's CardKit entity, a sent text) is kept first-writer-wins per step,
/// read back by `kept`, and survives a takeover; an expired record claimed anew forgets them all.
pub async fn dedup_keeps_steps_across_a_takeover<S: Store>(store: Arc<S>) {
    let key = unique("om");
    let now = t0();
    store.claim(&key, now, 5_000, DAY_MS).await.unwrap();
    assert_eq!(
        store.keep(&key, "card_id", "card-1").await.unwrap(),
        "card-1"
    );
    assert_eq!(
        store.keep(&key, "card_id", "card-2").await.unwrap(),
        "card-1"
    );
    assert_eq!(
        store.keep(&key, "text", "om_text").await.unwrap(),
        "om_text"
    );
    let kept = store.kept(&key).await.unwrap();
    assert_eq!(
        kept.iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        [("card_id", "card-1"), ("text", "om_text")]
    );
    assert!(
        store.keep(&key, "Bad Step", "x").await.is_err(),
        "a step name outside [a-z0-9_] is refused"
    );
    assert_eq!(
        store.claim(&key, now + 6_000, 5_000, DAY_MS).await.unwrap(),
        DedupClaim::TakenOver
    );
    assert_eq!(
        store.keep(&key, "card_id", "card-3").await.unwrap(),
        "card-1"
    );
    // Without a record (released, or never claimed) the caller's entity stands.
    assert_eq!(
        store
            .keep(&unique("om"), "card_id", "card-4")
            .await
            .unwrap(),
        "card-4"
    );
    // A record claimed anew after it expired forgets the old entity.
    let old = unique("om");
    store.claim(&old, now, 500, 1_000).await.unwrap();
    store.keep(&old, "card_id", "card-5").await.unwrap();
    assert_eq!(
        store.claim(&old, now + 3_000, 500, 1_000).await.unwrap(),
        DedupClaim::FirstTime
    );
    assert!(store.kept(&old).await.unwrap().is_empty());
    assert_eq!(
        store.keep(&old, "card_id", "card-6").await.unwrap(),
        "card-6"
    );
    assert!(store.kept(&unique("om")).await.unwrap().is_empty());
}

pub async fn dedup_100_concurrent_claims_one_first_time<S: Store + 'static>(store: Arc<S>) {
    let key = unique("om");
    let now = t0();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.claim(&key, now, CLAIM_LEASE_MS, DAY_MS).await })
        })
        .collect();
    let mut first = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().is_ours() {
            first += 1;
        }
    }
    assert_eq!(first, 1, "exactly one of 100 concurrent claims is ours");
}

// ---- tenant token ----

fn token(value: &str, expires_at: EpochMillis) -> StoredTenantToken {
    StoredTenantToken {
        token: value.into(),
        expires_at,
    }
}

pub async fn token_never_replaced_by_earlier_expiry<S: Store>(store: Arc<S>) {
    let app = unique("cli");
    let now = t0();
    assert_eq!(store.get_tenant_token(&app).await.unwrap(), None);
    assert!(store
        .put_tenant_token(&app, &token("t-later", now + 7_200_000))
        .await
        .unwrap());
    // A slower instance that fetched an older token must not overwrite the newer one.
    assert!(!store
        .put_tenant_token(&app, &token("t-earlier", now + 3_600_000))
        .await
        .unwrap());
    assert_eq!(
        store.get_tenant_token(&app).await.unwrap(),
        Some(token("t-later", now + 7_200_000))
    );
    assert!(store
        .put_tenant_token(&app, &token("t-newest", now + 7_300_000))
        .await
        .unwrap());
    assert_eq!(
        store.get_tenant_token(&app).await.unwrap(),
        Some(token("t-newest", now + 7_300_000))
    );
    // Tokens are per app.
    assert_eq!(store.get_tenant_token(&unique("cli")).await.unwrap(), None);
}

// ---- a store app's tickets and app token ----

pub async fn app_tickets_keep_the_newest_two_and_ignore_a_redelivery<S: Store>(store: Arc<S>) {
    let app = unique("cli");
    let now = t0();
    assert!(store.get_app_tickets(&app).await.unwrap().is_empty());
    store.put_app_ticket(&app, "tk-1", now).await.unwrap();
    store
        .put_app_ticket(&app, "tk-2", now + 3_600_000)
        .await
        .unwrap();
    // Feishu re-delivers a 1.0 event: the same ticket, later, changes nothing.
    store
        .put_app_ticket(&app, "tk-1", now + 7_000_000)
        .await
        .unwrap();
    let kept = store.get_app_tickets(&app).await.unwrap();
    let names: Vec<_> = kept
        .iter()
        .map(|t| (t.ticket.as_str(), t.received_at))
        .collect();
    assert_eq!(names, [("tk-2", now + 3_600_000), ("tk-1", now)]);
    store
        .put_app_ticket(&app, "tk-3", now + 7_200_000)
        .await
        .unwrap();
    let kept = store.get_app_tickets(&app).await.unwrap();
    let names: Vec<_> = kept.iter().map(|t| t.ticket.as_str()).collect();
    assert_eq!(names, ["tk-3", "tk-2"]);
    assert!(kept.iter().all(|t| !t.stale));
    // Tickets are per app.
    assert!(store
        .get_app_tickets(&unique("cli"))
        .await
        .unwrap()
        .is_empty());
}

pub async fn app_ticket_marked_stale_stays_kept_but_unusable<S: Store>(store: Arc<S>) {
    let app = unique("cli");
    let now = t0();
    store.put_app_ticket(&app, "tk-1", now).await.unwrap();
    store
        .put_app_ticket(&app, "tk-2", now + 1_000)
        .await
        .unwrap();
    store.mark_app_ticket_stale(&app, "tk-2").await.unwrap();
    // A ticket no longer kept is ignored.
    store.mark_app_ticket_stale(&app, "tk-gone").await.unwrap();
    let kept = store.get_app_tickets(&app).await.unwrap();
    let states: Vec<_> = kept
        .iter()
        .map(|t| (t.ticket.as_str(), t.stale, t.usable(now + 2_000)))
        .collect();
    assert_eq!(states, [("tk-2", true, false), ("tk-1", false, true)]);
    // Valid 3 h from its receipt.
    assert!(!kept[1].usable(now + cardbot::store::APP_TICKET_TTL_MS));
}

pub async fn concurrent_ticket_puts_lose_none<S: Store + 'static>(store: Arc<S>) {
    let app = unique("cli");
    let now = t0();
    let puts = ["tk-a", "tk-b"].map(|ticket| {
        let store = store.clone();
        let app = app.clone();
        tokio::spawn(async move { store.put_app_ticket(&app, ticket, now).await })
    });
    for put in futures::future::join_all(puts).await {
        put.unwrap().unwrap();
    }
    let mut names: Vec<_> = store
        .get_app_tickets(&app)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.ticket)
        .collect();
    names.sort();
    assert_eq!(names, ["tk-a", "tk-b"]);
}

pub async fn ticket_resend_claimed_once_per_gap_by_16_concurrent_instances<S: Store + 'static>(
    store: Arc<S>,
) {
    let app = unique("cli");
    let now = t0();
    let claims = (0..16).map(|i| {
        let store = store.clone();
        let app = app.clone();
        tokio::spawn(async move { store.claim_ticket_resend(&app, now + i, 60_000).await })
    });
    let won = futures::future::join_all(claims)
        .await
        .into_iter()
        .filter(|claim| *claim.as_ref().unwrap().as_ref().unwrap())
        .count();
    assert_eq!(won, 1);
    assert!(!store
        .claim_ticket_resend(&app, now + 59_000, 60_000)
        .await
        .unwrap());
    assert!(store
        .claim_ticket_resend(&app, now + 60_016, 60_000)
        .await
        .unwrap());
}

pub async fn app_token_kept_by_expiry_and_evicted_only_when_same<S: Store>(store: Arc<S>) {
    let app = unique("cli");
    let now = t0();
    assert_eq!(store.get_app_token(&app).await.unwrap(), None);
    assert!(store
        .put_app_token(&app, &token("a-later", now + 7_200_000))
        .await
        .unwrap());
    assert!(!store
        .put_app_token(&app, &token("a-earlier", now + 3_600_000))
        .await
        .unwrap());
    // The app token and the self-built tenant token of the same app id are different items.
    assert_eq!(store.get_tenant_token(&app).await.unwrap(), None);
    store.evict_app_token(&app, "a-other").await.unwrap();
    assert_eq!(
        store.get_app_token(&app).await.unwrap(),
        Some(token("a-later", now + 7_200_000))
    );
    store.evict_app_token(&app, "a-later").await.unwrap();
    assert_eq!(store.get_app_token(&app).await.unwrap(), None);
    // One refresh claim per hold, per token (the app's, each tenant's).
    let tenant = format!("{app}#ta");
    assert!(store.claim_token_refresh(&app, now, 30_000).await.unwrap());
    assert!(!store
        .claim_token_refresh(&app, now + 29_999, 30_000)
        .await
        .unwrap());
    assert!(store
        .claim_token_refresh(&tenant, now + 1, 30_000)
        .await
        .unwrap());
    assert!(store
        .claim_token_refresh(&app, now + 30_000, 30_000)
        .await
        .unwrap());
}

// ---- a store app's tenants ----

pub async fn tenant_status_takes_only_newer_events_and_lists_per_app<S: Store>(store: Arc<S>) {
    use cardbot::store::TenantStatus;
    let app = unique("cli");
    let now = t0();
    assert_eq!(store.get_tenant(&app, "ta").await.unwrap(), None);
    // First seen in a message: created active, status time 0.
    let seen = store.ensure_tenant(&app, "ta", now).await.unwrap();
    assert_eq!((seen.status, seen.status_at), (TenantStatus::Active, 0));
    // app_open at t+10 s, then stop at t+20 s.
    assert!(store
        .set_tenant_status(
            &app,
            "ta",
            TenantStatus::Active,
            now + 10_000,
            Some("ou_admin"),
            now
        )
        .await
        .unwrap());
    assert!(store
        .set_tenant_status(
            &app,
            "ta",
            TenantStatus::StoppedByTenant,
            now + 20_000,
            None,
            now
        )
        .await
        .unwrap());
    // A start sent at t+30 s, then Feishu's late retry of an older stop (t+25 s): ignored.
    assert!(store
        .set_tenant_status(&app, "ta", TenantStatus::Active, now + 30_000, None, now)
        .await
        .unwrap());
    assert!(!store
        .set_tenant_status(
            &app,
            "ta",
            TenantStatus::StoppedByTenant,
            now + 25_000,
            None,
            now
        )
        .await
        .unwrap());
    // ensure on a known tenant changes nothing.
    let record = store.ensure_tenant(&app, "ta", now + 40_000).await.unwrap();
    assert_eq!(record.status, TenantStatus::Active);
    assert_eq!(record.status_at, now + 30_000);
    assert_eq!(record.installed_at, Some(now + 10_000));
    assert_eq!(record.installer_open_id.as_deref(), Some("ou_admin"));
    store
        .note_tenant_error(&app, "ta", "99991673 unauthorized app", now)
        .await
        .unwrap();
    store
        .set_tenant_status(&app, "tb", TenantStatus::Uninstalled, now, None, now)
        .await
        .unwrap();
    let listed = store.list_tenants(&app).await.unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|t| (t.tenant_key.as_str(), t.status, t.last_error.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "ta",
                TenantStatus::Active,
                Some("99991673 unauthorized app")
            ),
            ("tb", TenantStatus::Uninstalled, None)
        ]
    );
    assert!(store.list_tenants(&unique("cli")).await.unwrap().is_empty());
}

pub async fn token_evicted_only_when_same<S: Store>(store: Arc<S>) {
    let app = unique("cli");
    let now = t0();
    assert!(store
        .put_tenant_token(&app, &token("t-current", now + 7_200_000))
        .await
        .unwrap());
    // An instance that saw an older token rejected must not evict the current one.
    store.evict_tenant_token(&app, "t-old").await.unwrap();
    assert_eq!(
        store.get_tenant_token(&app).await.unwrap().map(|t| t.token),
        Some("t-current".into())
    );
    store.evict_tenant_token(&app, "t-current").await.unwrap();
    assert_eq!(store.get_tenant_token(&app).await.unwrap(), None);
    // Evicting what is not there is fine.
    store.evict_tenant_token(&app, "t-current").await.unwrap();
    // After an eviction any token may be written, even one expiring earlier.
    assert!(store
        .put_tenant_token(&app, &token("t-next", now + 60_000))
        .await
        .unwrap());
}

// ---- card state ----

pub async fn card_create_get_update_round_trip<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    let created = store.create_card(&card(&key, now)).await.unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(
        created,
        CardState {
            version: 1,
            ..card(&key, now)
        }
    );
    assert_eq!(store.get_card(&key).await.unwrap(), Some(created.clone()));
    assert!(matches!(
        store.create_card(&card(&key, now)).await,
        Err(StoreError::Conflict(_))
    ));

    let mut next = created.clone();
    next.message_id = Some("om_bot".into());
    next.card_id = None; // removed from the item
    next.status = "leave_submitted".into();
    next.update_token = Some(StoredUpdateToken {
        token: "c-update".into(),
        uses: 2,
        expires_at: now + 1_800_000,
    });
    next.data = json!({"counter": 1, "choice": "请假", "list": [1, "two", true]});
    next.updated_at = now + 10;
    let updated = store.update_card(&next).await.unwrap();
    assert_eq!(
        updated,
        CardState {
            version: 2,
            ..next.clone()
        }
    );
    assert_eq!(store.get_card(&key).await.unwrap(), Some(updated));
    assert_eq!(store.get_card(&unique("card")).await.unwrap(), None);
}

pub async fn card_update_conflicts_on_stale_version<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    let v1 = store.create_card(&card(&key, now)).await.unwrap();
    let v2 = store
        .update_card(&CardState {
            status: "a".into(),
            ..v1.clone()
        })
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    // A writer that read version 1 loses, and the stored card keeps the winner's change.
    let stale = store
        .update_card(&CardState {
            status: "b".into(),
            ..v1.clone()
        })
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    let stored = store.get_card(&key).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.status.as_str()), (2, "a"));
    let missing = store.update_card(&card(&unique("card"), now)).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn card_update_never_touches_sequence<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    let v1 = store.create_card(&card(&key, now)).await.unwrap();
    assert_eq!(store.next_sequence(&key).await.unwrap(), 1);
    assert_eq!(store.next_sequence(&key).await.unwrap(), 2);
    // `v1.sequence` is the stale 0: the update must not write it back.
    let v2 = store
        .update_card(&CardState {
            status: "x".into(),
            ..v1
        })
        .await
        .unwrap();
    assert_eq!(v2.sequence, 2);
    assert_eq!(store.get_card(&key).await.unwrap().unwrap().sequence, 2);
    assert_eq!(store.next_sequence(&key).await.unwrap(), 3);
    let missing = store.next_sequence(&unique("card")).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn card_50_concurrent_read_modify_writes_lose_nothing<S: Store + 'static>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    store.create_card(&card(&key, now)).await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let mut conflicts = 0_u32;
                loop {
                    let mut state = store.get_card(&key).await.unwrap().unwrap();
                    let counter = state.data["counter"].as_i64().unwrap();
                    state.data["counter"] = json!(counter + 1);
                    match store.update_card(&state).await {
                        Ok(_) => return conflicts,
                        Err(StoreError::Conflict(_)) => {
                            conflicts += 1;
                            let pause = rand::random::<u64>() % 5;
                            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                        }
                        Err(e) => panic!("update failed: {e}"),
                    }
                }
            })
        })
        .collect();
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    let stored = store.get_card(&key).await.unwrap().unwrap();
    assert_eq!(
        stored.data["counter"],
        json!(50),
        "no increment lost ({conflicts} conflicts retried)"
    );
    assert_eq!(stored.version, 51);
}

pub async fn sequence_200_concurrent_distinct_1_to_200<S: Store + 'static>(store: Arc<S>) {
    let key = unique("card");
    store.create_card(&card(&key, t0())).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.next_sequence(&key).await })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        assert!(
            seen.insert(task.await.unwrap().unwrap()),
            "a sequence was handed out twice"
        );
    }
    assert_eq!(seen, (1..=200).collect::<BTreeSet<i32>>());
    assert_eq!(store.get_card(&key).await.unwrap().unwrap().sequence, 200);
}

pub async fn sequence_refuses_past_int32<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let seeded = CardState {
        sequence: i32::MAX - 2,
        ..card(&key, t0())
    };
    store.create_card(&seeded).await.unwrap();
    assert_eq!(store.next_sequence(&key).await.unwrap(), i32::MAX - 1);
    assert_eq!(store.next_sequence(&key).await.unwrap(), i32::MAX);
    let past = store.next_sequence(&key).await;
    assert!(
        matches!(past, Err(StoreError::SequenceExhausted(ref k)) if *k == key),
        "{past:?}"
    );
    assert_eq!(
        store.get_card(&key).await.unwrap().unwrap().sequence,
        i32::MAX
    );
}

pub async fn sequence_ranges_are_reserved_in_one_write<S: Store + 'static>(store: Arc<S>) {
    let key = unique("card");
    store.create_card(&card(&key, t0())).await.unwrap();
    assert_eq!(store.next_sequences(&key, 7).await.unwrap(), 1);
    assert_eq!(store.next_sequence(&key).await.unwrap(), 8);
    assert_eq!(store.next_sequences(&key, 3).await.unwrap(), 9);
    assert_eq!(store.get_card(&key).await.unwrap().unwrap().sequence, 11);
    // Concurrent reservations never overlap and leave no gap.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.next_sequences(&key, 5).await.unwrap() })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        let first = task.await.unwrap();
        for sequence in first..first + 5 {
            assert!(seen.insert(sequence), "{sequence} handed out twice");
        }
    }
    assert_eq!(seen, (12..=111).collect::<BTreeSet<i32>>());
    // A range that would pass int32 is refused whole; a smaller one still fits.
    let full = unique("card");
    let seeded = CardState {
        sequence: i32::MAX - 2,
        ..card(&full, t0())
    };
    store.create_card(&seeded).await.unwrap();
    let past = store.next_sequences(&full, 3).await;
    assert!(
        matches!(past, Err(StoreError::SequenceExhausted(_))),
        "{past:?}"
    );
    assert_eq!(store.next_sequences(&full, 2).await.unwrap(), i32::MAX - 1);
    let missing = store.next_sequences(&unique("card"), 2).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn update_card_and_enqueue_is_one_write<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    let v1 = store.create_card(&card(&key, now)).await.unwrap();
    let clicked = CardState {
        status: "leave_submitted".into(),
        updated_at: now + 5,
        ..v1.clone()
    };
    let v2 = store
        .update_card_and_enqueue(&clicked, &[job(&key, "answer-v1", now + 2_000)])
        .await
        .unwrap();
    assert_eq!(
        v2,
        CardState {
            version: 2,
            ..clicked.clone()
        }
    );
    assert_eq!(store.get_card(&key).await.unwrap().unwrap(), v2);
    let queued = store.get_job(&key, "answer-v1").await.unwrap().unwrap();
    assert_eq!(
        (queued.status, queued.due_at, queued.attempts),
        (JobStatus::Pending, now + 2_000, 0)
    );

    // A stale click changes nothing: no card write, no job.
    let stale = store
        .update_card_and_enqueue(&clicked, &[job(&key, "answer-stale", now)])
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(store.get_job(&key, "answer-stale").await.unwrap(), None);
    assert_eq!(store.get_card(&key).await.unwrap().unwrap().version, 2);

    // A retried click whose job exists: the card is updated, the job left as it was.
    let again = CardState {
        status: "again".into(),
        ..v2.clone()
    };
    let mut same_job = job(&key, "answer-v1", now + 9_999);
    same_job.payload = json!({"other": true});
    // With it, a job on another card (a decision refreshes the request's other cards): queued.
    let other = unique("card");
    let v3 = store
        .update_card_and_enqueue(&again, &[same_job, job(&other, "refresh", now)])
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
    assert_eq!(store.get_card(&key).await.unwrap().unwrap().status, "again");
    assert_eq!(
        store.get_job(&key, "answer-v1").await.unwrap().unwrap(),
        queued
    );
    assert_eq!(store.jobs_for_card(&key).await.unwrap().len(), 1);
    assert_eq!(store.jobs_for_card(&other).await.unwrap().len(), 1);

    // Several cards' jobs in one write with the card; none without the card.
    let (a, b) = (unique("card"), unique("card"));
    let withdrawn = CardState {
        status: "withdrawn".into(),
        ..v3.clone()
    };
    let v4 = store
        .update_card_and_enqueue(
            &withdrawn,
            &[job(&a, "refresh", now), job(&b, "refresh", now)],
        )
        .await
        .unwrap();
    assert_eq!(v4.version, 4);
    for card_key in [&a, &b] {
        assert_eq!(store.jobs_for_card(card_key).await.unwrap().len(), 1);
    }
    let c = unique("card");
    let stale = store
        .update_card_and_enqueue(&withdrawn, &[job(&c, "refresh", now)])
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert!(store.jobs_for_card(&c).await.unwrap().is_empty());
    // No job: a plain version-checked update.
    let v5 = store.update_card_and_enqueue(&v4, &[]).await.unwrap();
    assert_eq!(v5.version, 5);

    let missing = store
        .update_card_and_enqueue(&card(&unique("card"), now), &[job("x", "y", now)])
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

// ---- jobs ----

pub async fn create_card_with_jobs_writes_both_or_neither<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    let jobs = [job(&key, "expire", now + 60_000), job(&key, "other", now)];
    let created = store
        .create_card_with_jobs(&card(&key, now), &jobs)
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(store.get_card(&key).await.unwrap().unwrap(), created);
    let mut ids: Vec<_> = store
        .jobs_for_card(&key)
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.job_id, j.status, j.due_at))
        .collect();
    ids.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        ids,
        [
            ("expire".to_owned(), JobStatus::Pending, now + 60_000),
            ("other".to_owned(), JobStatus::Pending, now)
        ]
    );
    // Again (a retried reply): Conflict, and neither the card nor a job changes.
    let again = CardState {
        status: "changed".into(),
        ..card(&key, now)
    };
    let mut changed_job = job(&key, "expire", now);
    changed_job.payload = json!({"changed": true});
    let conflict = store
        .create_card_with_jobs(&again, &[changed_job, job(&key, "third", now)])
        .await;
    assert!(
        matches!(conflict, Err(StoreError::Conflict(_))),
        "{conflict:?}"
    );
    assert_eq!(store.get_card(&key).await.unwrap().unwrap(), created);
    let after: Vec<_> = store.jobs_for_card(&key).await.unwrap();
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.iter().all(|j| j.payload != json!({"changed": true})));
    // A job queued before its card (one by one): the card is still created, the job kept.
    let early = unique("card");
    store.enqueue(&job(&early, "expire", now)).await.unwrap();
    let queued = store.get_job(&early, "expire").await.unwrap().unwrap();
    store
        .create_card_with_jobs(&card(&early, now), &[job(&early, "expire", now + 5)])
        .await
        .unwrap();
    assert!(store.get_card(&early).await.unwrap().is_some());
    assert_eq!(
        store.get_job(&early, "expire").await.unwrap().unwrap(),
        queued
    );
}

pub async fn enqueue_is_idempotent<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    store.enqueue(&job(&key, "j1", now)).await.unwrap();
    let first = store.get_job(&key, "j1").await.unwrap().unwrap();
    assert_eq!(
        (
            first.kind.as_str(),
            &first.payload,
            first.status,
            first.due_at,
            first.attempts
        ),
        (
            "post_answer",
            &json!({"action": "leave", "n": 1}),
            JobStatus::Pending,
            now,
            0
        )
    );
    assert_eq!(
        (first.lease_owner.as_ref(), first.last_error.as_ref()),
        (None, None)
    );
    let mut second = job(&key, "j1", now + 1);
    second.payload = json!({"changed": true});
    store.enqueue(&second).await.unwrap();
    assert_eq!(store.get_job(&key, "j1").await.unwrap().unwrap(), first);
    store.enqueue(&job(&key, "j2", now)).await.unwrap();
    let ids: Vec<_> = store
        .jobs_for_card(&key)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job_id)
        .collect();
    assert_eq!(ids, ["j1", "j2"]);
    assert_eq!(store.get_job(&key, "j3").await.unwrap(), None);
}

/// A kind this version does not know (written by a newer one) is read, listed due and claimed
/// like any other, so the updater can record it dead instead of stalling on it.
pub async fn unknown_job_kinds_round_trip<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    let mut newer = job(&key, "reminder", now);
    newer.kind = JobKind::new("reminder");
    store.enqueue(&newer).await.unwrap();
    let stored = store.get_job(&key, "reminder").await.unwrap().unwrap();
    assert_eq!(stored.kind, JobKind::new("reminder"));
    assert_eq!(due_ids(&*store, &key, now).await, ["reminder"]);
    let claimed = store
        .claim_job(&key, "reminder", "owner", now, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.kind.as_str(), "reminder");
    // The store keeps any kind; which ones the app knows is the app's (`cardbot::jobs::JobKind`).
    assert_eq!(cardbot::jobs::JobKind::parse("reminder"), None);
    assert_eq!(
        cardbot::jobs::JobKind::parse("expire"),
        Some(cardbot::jobs::JobKind::Expire)
    );
}

/// Due jobs of this test's card only (other tests share a MemoryStore's index never; a
/// DynamoStore table is fresh, so this is just a guard).
async fn due_ids<S: Store>(store: &S, key: &str, now: EpochMillis) -> Vec<String> {
    store
        .due_jobs(now, 1_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.card_key == key)
        .map(|j| j.job_id)
        .collect()
}

pub async fn job_claim_complete_lifecycle<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    store
        .enqueue(&job(&key, "later", now + 60_000))
        .await
        .unwrap();
    store
        .enqueue(&job(&key, "older", now - 2_000))
        .await
        .unwrap();
    store.enqueue(&job(&key, "now", now - 1_000)).await.unwrap();
    // Oldest first, and not the one not yet due.
    assert_eq!(due_ids(&*store, &key, now).await, ["older", "now"]);
    assert_eq!(store.due_jobs(now, 1).await.unwrap().len(), 1);
    assert!(store
        .claim_job(&key, "later", "u1", now, LEASE_MS)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .claim_job(&key, "missing", "u1", now, LEASE_MS)
        .await
        .unwrap()
        .is_none());

    let leased = store
        .claim_job(&key, "now", "u1", now, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(leased.status, JobStatus::Leased);
    assert_eq!(leased.lease_owner.as_deref(), Some("u1"));
    assert_eq!(
        (leased.lease_until, leased.due_at),
        (Some(now + LEASE_MS), now + LEASE_MS)
    );
    assert_eq!(store.get_job(&key, "now").await.unwrap().unwrap(), leased);
    // Held: nobody else gets it and it is not due.
    assert!(store
        .claim_job(&key, "now", "u2", now + 1, LEASE_MS)
        .await
        .unwrap()
        .is_none());
    assert_eq!(due_ids(&*store, &key, now + 1).await, ["older"]);

    store.complete_job(&leased, now + 100).await.unwrap();
    let done = store.get_job(&key, "now").await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.updated_at, done.lease_until),
        (JobStatus::Done, now + 100, None)
    );
    // Done leaves the index for good, even past its old lease.
    assert_eq!(
        due_ids(&*store, &key, now + 10 * LEASE_MS).await,
        ["older", "later"]
    );
    assert!(store
        .claim_job(&key, "now", "u2", now + 10 * LEASE_MS, LEASE_MS)
        .await
        .unwrap()
        .is_none());
    let twice = store.complete_job(&leased, now + 200).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
}

pub async fn waiting_jobs_of_a_prefix_are_buried_unless_a_run_holds_them<S: Store>(store: Arc<S>) {
    let tenant = unique("tenant");
    let key = |id: &str| format!("{tenant}#{id}");
    let now = t0();
    // Due in a week, due now, being run, run and lapsed, done; and another tenant's.
    store
        .enqueue(&job(&key("a"), "later", now + 7 * DAY_MS))
        .await
        .unwrap();
    store.enqueue(&job(&key("b"), "now", now)).await.unwrap();
    store
        .enqueue(&job(&key("c"), "running", now))
        .await
        .unwrap();
    store.enqueue(&job(&key("d"), "lapsed", now)).await.unwrap();
    store.enqueue(&job(&key("e"), "done", now)).await.unwrap();
    let other = format!("{}#x", unique("tenant"));
    store.enqueue(&job(&other, "theirs", now)).await.unwrap();
    store
        .claim_job(&key("c"), "running", "u1", now, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    store
        .claim_job(&key("d"), "lapsed", "u1", now - 2 * LEASE_MS, LEASE_MS)
        .await
        .unwrap();
    let done = store
        .claim_job(&key("e"), "done", "u1", now, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    store.complete_job(&done, now).await.unwrap();
    let mut waiting: Vec<String> = store
        .waiting_jobs(&format!("{tenant}#"), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job_id)
        .collect();
    waiting.sort();
    assert_eq!(waiting, ["lapsed", "later", "now", "running"]);
    let mut buried = Vec::new();
    for id in ["later", "now", "running", "lapsed", "done"] {
        let card = key(match id {
            "later" => "a",
            "now" => "b",
            "running" => "c",
            "lapsed" => "d",
            _ => "e",
        });
        if store
            .bury_waiting_job(&card, id, "tenant_uninstalled", now)
            .await
            .unwrap()
        {
            buried.push(id);
        }
    }
    assert_eq!(buried, ["later", "now", "lapsed"]);
    let later = store.get_job(&key("a"), "later").await.unwrap().unwrap();
    assert_eq!(later.status, JobStatus::Dead);
    assert_eq!(later.last_error.as_deref(), Some("tenant_uninstalled"));
    assert_eq!(
        store
            .get_job(&key("c"), "running")
            .await
            .unwrap()
            .unwrap()
            .status,
        JobStatus::Leased
    );
    assert_eq!(
        store
            .get_job(&other, "theirs")
            .await
            .unwrap()
            .unwrap()
            .status,
        JobStatus::Pending
    );
    assert!(!store
        .bury_waiting_job(&key("z"), "gone", "x", now)
        .await
        .unwrap());
}

pub async fn job_lapsed_lease_becomes_due_again<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    store.enqueue(&job(&key, "j", now)).await.unwrap();
    let first = store
        .claim_job(&key, "j", "crashed", now, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    assert!(due_ids(&*store, &key, now + LEASE_MS - 1).await.is_empty());
    // The updater crashed: once the lease lapses the job is due and claimable again.
    assert_eq!(due_ids(&*store, &key, now + LEASE_MS).await, ["j"]);
    let second = store
        .claim_job(&key, "j", "u2", now + LEASE_MS, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.lease_owner.as_deref(), Some("u2"));
    // The lapsed lease counted as a failed attempt.
    assert_eq!(
        (second.attempts, second.last_error.as_deref()),
        (1, Some(LEASE_EXPIRED_ERROR))
    );
    assert_eq!(store.get_job(&key, "j").await.unwrap().unwrap(), second);
    // The crashed owner wakes up: it may neither complete nor fail the job.
    let late = store.complete_job(&first, now + LEASE_MS + 1).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    let late_fail = store
        .fail_job(&first, "late", None, now + LEASE_MS + 1)
        .await;
    assert!(
        matches!(late_fail, Err(StoreError::Conflict(_))),
        "{late_fail:?}"
    );
    store
        .complete_job(&second, now + LEASE_MS + 2)
        .await
        .unwrap();
    assert_eq!(
        store.get_job(&key, "j").await.unwrap().unwrap().status,
        JobStatus::Done
    );
}

pub async fn job_fail_backs_off_then_dead_stays_visible<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let mut now = t0();
    store.enqueue(&job(&key, "j", now)).await.unwrap();
    for attempt in 1..MAX_JOB_ATTEMPTS {
        let leased = store
            .claim_job(&key, "j", "u", now, LEASE_MS)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(leased.attempts, attempt - 1);
        let outcome = store
            .fail_job(&leased, &format!("429 #{attempt}"), None, now)
            .await
            .unwrap();
        let FailOutcome::Rescheduled { due_at } = outcome else {
            panic!("attempt {attempt} should be rescheduled, got {outcome:?}");
        };
        // Exponential with jitter: within [d/2, d] for d = base * 2^(attempt-1), capped.
        let full = (JOB_RETRY_BASE_MS << (attempt - 1)).min(cardbot::store::JOB_RETRY_CAP_MS);
        assert!(
            (now + full / 2..=now + full).contains(&due_at),
            "attempt {attempt}: {due_at}"
        );
        let stored = store.get_job(&key, "j").await.unwrap().unwrap();
        assert_eq!(
            (stored.status, stored.due_at, stored.attempts),
            (JobStatus::Pending, due_at, attempt)
        );
        assert_eq!(
            stored.last_error.as_deref(),
            Some(format!("429 #{attempt}").as_str())
        );
        assert_eq!((stored.lease_owner, stored.lease_until), (None, None));
        assert!(store
            .claim_job(&key, "j", "u", due_at - 1, LEASE_MS)
            .await
            .unwrap()
            .is_none());
        now = due_at;
    }
    let leased = store
        .claim_job(&key, "j", "u", now, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    let long_error = "x".repeat(5_000);
    assert_eq!(
        store
            .fail_job(&leased, &long_error, None, now)
            .await
            .unwrap(),
        FailOutcome::Dead
    );
    let dead = store.get_job(&key, "j").await.unwrap().unwrap();
    assert_eq!(
        (dead.status, dead.attempts),
        (JobStatus::Dead, MAX_JOB_ATTEMPTS)
    );
    assert_eq!(
        dead.last_error.map(|e| e.len()),
        Some(cardbot::store::LAST_ERROR_MAX_CHARS)
    );
    // Out of the index for good, never claimable, still visible with its card's jobs.
    assert!(due_ids(&*store, &key, now + 365 * DAY_MS).await.is_empty());
    assert!(store
        .claim_job(&key, "j", "u", now + DAY_MS, LEASE_MS)
        .await
        .unwrap()
        .is_none());
    let jobs = store.jobs_for_card(&key).await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.status).collect::<Vec<_>>(),
        [JobStatus::Dead]
    );
}

pub async fn job_fail_honours_retry_at<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    store.enqueue(&job(&key, "j", now)).await.unwrap();
    let leased = store
        .claim_job(&key, "j", "u", now, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    // Feishu said when (x-ogw-ratelimit-reset): exactly then, not the backoff.
    let outcome = store
        .fail_job(&leased, "rate limited", Some(now + 1_234), now)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FailOutcome::Rescheduled {
            due_at: now + 1_234
        }
    );
    assert!(due_ids(&*store, &key, now + 1_233).await.is_empty());
    assert_eq!(due_ids(&*store, &key, now + 1_234).await, ["j"]);
    // A `retry_at` in the past means now.
    let leased = store
        .claim_job(&key, "j", "u", now + 1_234, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    let outcome = store
        .fail_job(&leased, "again", Some(now), now + 2_000)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FailOutcome::Rescheduled {
            due_at: now + 2_000
        }
    );
}

pub async fn job_fail_permanently_is_dead_at_once<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    store.enqueue(&job(&key, "j", now)).await.unwrap();
    store.enqueue(&job(&key, "other", now)).await.unwrap();
    let leased = store
        .claim_job(&key, "j", "u", now, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    let long_error = format!("permanent: 230099 card expired {}", "x".repeat(5_000));
    store
        .fail_job_permanently(&leased, &long_error, now + 10)
        .await
        .unwrap();
    let dead = store.get_job(&key, "j").await.unwrap().unwrap();
    assert_eq!(
        (dead.status, dead.attempts, dead.updated_at),
        (JobStatus::Dead, 1, now + 10)
    );
    assert_eq!((dead.lease_owner.as_ref(), dead.lease_until), (None, None));
    let last_error = dead.last_error.clone().unwrap();
    assert_eq!(
        last_error.chars().count(),
        cardbot::store::LAST_ERROR_MAX_CHARS
    );
    assert!(last_error.starts_with("permanent: 230099"), "{last_error}");
    // Out of the index for good (only the other job is due), never claimable, still visible.
    assert_eq!(due_ids(&*store, &key, now + 365 * DAY_MS).await, ["other"]);
    assert!(store
        .claim_job(&key, "j", "u", now + DAY_MS, LEASE_MS)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .jobs_for_card(&key)
            .await
            .unwrap()
            .iter()
            .map(|j| (j.job_id.as_str(), j.status))
            .collect::<Vec<_>>(),
        [("j", JobStatus::Dead), ("other", JobStatus::Pending)]
    );
    // Only once, and only under the lease: a second call or a completion conflicts.
    let again = store.fail_job_permanently(&leased, "again", now + 20).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let complete = store.complete_job(&leased, now + 20).await;
    assert!(
        matches!(complete, Err(StoreError::Conflict(_))),
        "{complete:?}"
    );
    assert_eq!(store.get_job(&key, "j").await.unwrap().unwrap(), dead);
    // A holder whose lease lapsed and was taken over may not bury the job.
    let stale = store
        .claim_job(&key, "other", "crashed", now, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    let current = store
        .claim_job(&key, "other", "u2", now + LEASE_MS, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    let late = store
        .fail_job_permanently(&stale, "late", now + LEASE_MS + 1)
        .await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    assert_eq!(
        store.get_job(&key, "other").await.unwrap().unwrap(),
        current
    );
    let mut missing = stale.clone();
    missing.job_id = "missing".into();
    let missing = store.fail_job_permanently(&missing, "x", now).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn job_lapsed_leases_count_until_dead<S: Store>(store: Arc<S>) {
    let key = unique("card");
    let mut now = t0();
    store.enqueue(&job(&key, "j", now)).await.unwrap();
    // A failure and lapsed leases share one budget of MAX_JOB_ATTEMPTS.
    let leased = store
        .claim_job(&key, "j", "u", now, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    store
        .fail_job(&leased, "503", Some(now), now)
        .await
        .unwrap();
    let mut handed_out = 1;
    let mut last = None;
    loop {
        let claimed = store
            .claim_job(&key, "j", &format!("crash-{handed_out}"), now, LEASE_MS)
            .await
            .unwrap();
        let Some(leased) = claimed else { break };
        assert_eq!(leased.attempts, handed_out, "claim #{}", handed_out + 1);
        let expected_error = if handed_out == 1 {
            "503"
        } else {
            LEASE_EXPIRED_ERROR
        };
        assert_eq!(leased.last_error.as_deref(), Some(expected_error));
        handed_out += 1;
        assert!(handed_out <= MAX_JOB_ATTEMPTS + 1, "never dies");
        // The updater crashes: nothing completes or fails the job; its lease lapses.
        now += LEASE_MS;
        last = Some(leased);
    }
    assert_eq!(handed_out, MAX_JOB_ATTEMPTS);
    let dead = store.get_job(&key, "j").await.unwrap().unwrap();
    assert_eq!(
        (dead.status, dead.attempts, dead.last_error.as_deref()),
        (JobStatus::Dead, MAX_JOB_ATTEMPTS, Some(LEASE_EXPIRED_ERROR))
    );
    assert_eq!(
        (dead.lease_owner.as_ref(), dead.lease_until, dead.updated_at),
        (None, None, now)
    );
    assert!(due_ids(&*store, &key, now + 365 * DAY_MS).await.is_empty());
    assert!(store
        .claim_job(&key, "j", "u", now + DAY_MS, LEASE_MS)
        .await
        .unwrap()
        .is_none());
    // The last crashed holder wakes up: the job stays dead.
    let late = store.complete_job(&last.unwrap(), now + 1).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    assert_eq!(store.get_job(&key, "j").await.unwrap().unwrap(), dead);
}

pub async fn job_lapsed_lease_taken_over_once<S: Store + 'static>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    store.enqueue(&job(&key, "j", now)).await.unwrap();
    store
        .claim_job(&key, "j", "crashed", now, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    let claims = (0..10).map(|i| {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move {
            store
                .claim_job(&key, "j", &format!("u{i}"), now + LEASE_MS, LEASE_MS)
                .await
                .unwrap()
        })
    });
    let mut won = Vec::new();
    for claim in claims.collect::<Vec<_>>() {
        won.extend(claim.await.unwrap());
    }
    assert_eq!(won.len(), 1, "{won:?}");
    // One lapse, counted once.
    let stored = store.get_job(&key, "j").await.unwrap().unwrap();
    assert_eq!(stored, won[0]);
    assert_eq!((stored.status, stored.attempts), (JobStatus::Leased, 1));
}

pub async fn jobs_two_claimers_deliver_500_exactly_once<S: Store + 'static>(store: Arc<S>) {
    let key = unique("card");
    let now = t0();
    let enqueues = (0..500).map(|i| {
        let (store, key) = (store.clone(), key.clone());
        async move {
            store
                .enqueue(&job(&key, &format!("j{i:03}"), now - 1_000 + i))
                .await
        }
    });
    let results: Vec<_> = futures::stream::iter(enqueues)
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let claimer = |owner: &'static str| {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move {
            let mut delivered = Vec::new();
            loop {
                let mut due = store.due_jobs(now, 50).await.unwrap();
                if due.is_empty() {
                    return delivered;
                }
                // Like an updater: claims in parallel, in its own order, racing the other one.
                due.retain(|j| j.card_key == key);
                due.shuffle(&mut rand::thread_rng());
                let claims = due.into_iter().map(|job| {
                    let store = store.clone();
                    async move {
                        let leased = store
                            .claim_job(&job.card_key, &job.job_id, owner, now, LEASE_MS)
                            .await
                            .unwrap()?;
                        store.complete_job(&leased, now).await.unwrap();
                        Some(leased.job_id)
                    }
                });
                let won: Vec<Option<String>> = futures::stream::iter(claims)
                    .buffer_unordered(8)
                    .collect()
                    .await;
                delivered.extend(won.into_iter().flatten());
            }
        })
    };
    let (a, b) = (claimer("updater-a"), claimer("updater-b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let (set_a, set_b): (HashSet<_>, HashSet<_>) = (a.iter().collect(), b.iter().collect());
    assert_eq!(
        (set_a.len(), set_b.len()),
        (a.len(), b.len()),
        "one claimer delivered a job twice"
    );
    assert!(
        set_a.is_disjoint(&set_b),
        "a job was delivered by both claimers"
    );
    assert_eq!(a.len() + b.len(), 500, "a: {}, b: {}", a.len(), b.len());
    let jobs = store.jobs_for_card(&key).await.unwrap();
    assert_eq!(jobs.len(), 500);
    assert!(jobs.iter().all(|j| j.status == JobStatus::Done));
}

// ---- rate counters ----

/// Feishu's per-app budget as the client keeps it: 50 calls in any second, ticks of 100 ms.
fn app_second() -> RateBudget {
    RateBudget::new("app", 50, 1_000, 100)
}

/// A time at the start of a 5 s tick (so minute and second ticks both start there).
fn tick_start() -> EpochMillis {
    t0().div_euclid(5_000) * 5_000
}

/// `count` permits of `budget` at once, held for the take's tick only, up to the limit.
fn take(budget: &RateBudget, count: u32) -> PermitRequest {
    PermitRequest::new(budget.clone(), count, 1, budget.limit())
}

fn granted(outcome: &PermitTake) -> bool {
    matches!(outcome, PermitTake::Granted { .. })
}

pub async fn rate_200_concurrent_takes_never_grant_more_than_50<S: RateStore + 'static>(
    store: Arc<S>,
) {
    let app = unique("cli");
    let start = tick_start();
    let now = start + 20;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (store, app) = (store.clone(), app.clone());
            // Spread over the first second's ticks: every one of them shares counters.
            let at = now + (i % 10) * 7;
            tokio::spawn(async move {
                store
                    .take_permits(&app, &RateScope::App, &[take(&app_second(), 1)], at)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut grants = 0;
    for task in tasks {
        match task.await.unwrap() {
            PermitTake::Granted { peaks } => {
                grants += 1;
                assert!(peaks[0] <= 50, "{peaks:?}");
            }
            PermitTake::Refused { retry_at, peaks } => {
                assert_eq!(peaks, vec![50]);
                // Once the full counters (ticks 0..=11) have ended.
                assert_eq!(retry_at, start + 1_200);
            }
        }
    }
    assert_eq!(grants, 50, "50 of 200 concurrent takes granted");
}

pub async fn rate_refused_take_adds_nothing_and_fits_at_retry_at<S: RateStore>(store: Arc<S>) {
    let app = unique("cli");
    let budget = app_second();
    let now = tick_start();
    // Held two ticks: counts in 13 counters.
    let full = PermitRequest::new(budget.clone(), 50, 2, 50);
    assert!(granted(
        &store
            .take_permits(&app, &RateScope::App, &[full], now)
            .await
            .unwrap()
    ));
    let one = [take(&budget, 1)];
    let retry_at = match store
        .take_permits(&app, &RateScope::App, &one, now + 150)
        .await
        .unwrap()
    {
        PermitTake::Refused { retry_at, peaks } => {
            assert_eq!(peaks, vec![50]);
            retry_at
        }
        other => panic!("{other:?}"),
    };
    // The full counters cover ticks 0..=12: the first take that touches none is at tick 13.
    assert_eq!(retry_at, now + 1_300);
    // Refused just before it, granted at it: the refusals added nothing.
    for at in [now + 700, retry_at - 1] {
        assert!(!granted(
            &store
                .take_permits(&app, &RateScope::App, &one, at)
                .await
                .unwrap()
        ));
    }
    match store
        .take_permits(&app, &RateScope::App, &one, retry_at)
        .await
        .unwrap()
    {
        PermitTake::Granted { peaks } => assert_eq!(peaks, vec![1]),
        other => panic!("{other:?}"),
    }
}

pub async fn rate_windows_roll_over_and_holds_count_where_they_reach<S: RateStore>(store: Arc<S>) {
    let app = unique("cli");
    let budget = app_second();
    let start = tick_start();
    let two = [take(&budget, 2)];
    // A steady 6 calls (3 takes of 2) every 100 ms tick, more than a span (12 ticks: 1.1 s and
    // jitter) can hold: 50 per span are granted, whichever second it is.
    let mut granted_at = Vec::new();
    for tick in 0..24 {
        for i in 0..3 {
            let at = start + tick * 100 + i;
            if granted(
                &store
                    .take_permits(&app, &RateScope::App, &two, at)
                    .await
                    .unwrap(),
            ) {
                granted_at.extend([at, at]);
            }
        }
    }
    // Every 1.1 s window holds at most 50 grants, and the later seconds get permits again.
    for (i, first) in granted_at.iter().enumerate() {
        let in_window = granted_at[i..]
            .iter()
            .take_while(|t| **t < first + 1_100)
            .count();
        assert!(in_window <= 50, "{in_window} grants from {first}");
    }
    assert_eq!(granted_at.len(), 100, "grants in 2.4 s");
    assert!(granted_at.iter().any(|t| *t >= start + 1_800));

    // A long hold counts in every window it can reach: 25 permits held 1 s leave only 25 for
    // takes in the next 2.1 s.
    let app = unique("cli");
    let long = PermitRequest::new(budget.clone(), 25, 10, 50);
    assert!(granted(
        &store
            .take_permits(&app, &RateScope::App, &[long], start)
            .await
            .unwrap()
    ));
    let quarter = [PermitRequest::new(budget.clone(), 25, 1, 50)];
    assert!(granted(
        &store
            .take_permits(&app, &RateScope::App, &quarter, start + 1_900)
            .await
            .unwrap()
    ));
    assert!(!granted(
        &store
            .take_permits(&app, &RateScope::App, &quarter, start + 2_000)
            .await
            .unwrap()
    ));
    // The long take's counters end with tick 20, the quarter's with tick 30: whole again at 31.
    let whole = [PermitRequest::new(budget.clone(), 50, 1, 50)];
    assert!(granted(
        &store
            .take_permits(&app, &RateScope::App, &whole, start + 3_100)
            .await
            .unwrap()
    ));
}

pub async fn rate_per_api_minute_budget<S: RateStore>(store: Arc<S>) {
    let app = unique("cli");
    let reply = RateBudget::new("api:im.message.reply", 1_000, 60_000, 5_000);
    let create = RateBudget::new("api:cardkit.card.create", 1_000, 60_000, 5_000);
    let start = tick_start();
    // 1000 replies in batches of 25 over 40 s pass the minute budget, and not one batch more
    // (the per-second budget is left out of this test).
    let mut replies = 0;
    for i in 0..44 {
        let at = start + i * 900;
        if granted(
            &store
                .take_permits(&app, &RateScope::App, &[take(&reply, 25)], at)
                .await
                .unwrap(),
        ) {
            replies += 25;
        }
    }
    assert_eq!(replies, 1_000, "a minute's budget, and not one more");
    let refused = store
        .take_permits(&app, &RateScope::App, &[take(&reply, 1)], start + 40_000)
        .await
        .unwrap();
    let PermitTake::Refused { retry_at, .. } = refused else {
        panic!("{refused:?}");
    };
    // Back once the first takes' counters end: 14 ticks of 5 s (a minute and jitter) later.
    assert!(retry_at > start + 60_000, "{}", retry_at - start);
    assert!(retry_at <= start + 40_000 + 75_000, "{}", retry_at - start);
    // Another API has its own minute.
    assert!(granted(
        &store
            .take_permits(&app, &RateScope::App, &[take(&create, 25)], start + 40_000)
            .await
            .unwrap()
    ));
    // A take of both is all or nothing: the full one refuses it, the other gains nothing.
    let both = [take(&create, 975), take(&reply, 1)];
    assert!(!granted(
        &store
            .take_permits(&app, &RateScope::App, &both, start + 40_000)
            .await
            .unwrap()
    ));
    assert!(granted(
        &store
            .take_permits(&app, &RateScope::App, &[take(&create, 975)], start + 40_000)
            .await
            .unwrap()
    ));
}

pub async fn rate_per_chat_budget<S: RateStore>(store: Arc<S>) {
    let app = unique("cli");
    let chat = RateBudget::new("chat", 5, 1_000, 100);
    let now = tick_start();
    let in_chat = |c: &str| RateScope::Chat(c.to_owned());
    for i in 0..5 {
        assert!(
            granted(
                &store
                    .take_permits(&app, &in_chat("oc_1"), &[take(&chat, 1)], now + i)
                    .await
                    .unwrap()
            ),
            "send {i}"
        );
    }
    let refused = store
        .take_permits(&app, &in_chat("oc_1"), &[take(&chat, 1)], now + 10)
        .await
        .unwrap();
    assert!(
        matches!(refused, PermitTake::Refused { retry_at, .. } if retry_at == now + 1_200),
        "{refused:?}"
    );
    // Other chats, the same chat of another app, and the app's own item are apart.
    assert!(granted(
        &store
            .take_permits(&app, &in_chat("oc_2"), &[take(&chat, 5)], now + 10)
            .await
            .unwrap()
    ));
    assert!(granted(
        &store
            .take_permits(
                &unique("cli"),
                &in_chat("oc_1"),
                &[take(&chat, 5)],
                now + 10
            )
            .await
            .unwrap()
    ));
    assert!(granted(
        &store
            .take_permits(&app, &RateScope::App, &[take(&chat, 5)], now + 10)
            .await
            .unwrap()
    ));
    assert!(granted(
        &store
            .take_permits(&app, &in_chat("oc_1"), &[take(&chat, 5)], now + 1_200)
            .await
            .unwrap()
    ));
}

/// Documents: a new one is written once, a replacement checks the revision, a list is a key
/// prefix in key order, and of 20 writers racing on one revision exactly one wins.
pub async fn documents_write_once_replace_by_revision_and_race_safely<S: Store>(store: Arc<S>) {
    let collection = unique("definitions");
    assert_eq!(
        store.get_document(&collection, "current").await.unwrap(),
        None
    );
    let body = json!({"definitions": [{"version": 1, "amount": "0.01"}], "empty": ""});
    assert!(store
        .put_document(&collection, "current", &body, None)
        .await
        .unwrap());
    assert!(
        !store
            .put_document(&collection, "current", &json!({"x": 1}), None)
            .await
            .unwrap(),
        "a new document is written once"
    );
    let stored = store
        .get_document(&collection, "current")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.revision, &stored.body), (1, &body));
    assert!(!store
        .put_document(&collection, "current", &json!({"x": 2}), Some(7))
        .await
        .unwrap());
    for key in ["def#b#2", "def#a#1", "def#b#1", "other"] {
        assert!(store
            .put_document(&collection, key, &json!({"key": key}), None)
            .await
            .unwrap());
    }
    let keys: Vec<String> = store
        .list_documents(&collection, "def#")
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.key)
        .collect();
    assert_eq!(keys, ["def#a#1", "def#b#1", "def#b#2"]);
    let racers = (0..20).map(|i| {
        let store = store.clone();
        let collection = collection.clone();
        async move {
            store
                .put_document(&collection, "current", &json!({"writer": i}), Some(1))
                .await
                .unwrap()
        }
    });
    let won = futures::future::join_all(racers).await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let last = store
        .get_document(&collection, "current")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.revision, 2);
    let too_big = json!({"text": "x".repeat(400 * 1024)});
    assert!(matches!(
        store.put_document(&collection, "big", &too_big, None).await,
        Err(StoreError::Corrupt { .. })
    ));
}

/// A re-armed job: a done (or leased) one of its id is replaced by a pending one, a pending one
/// is left (changes in a row coalesce into one run), a dead one is kept; in a transaction with
/// the card's state too.
pub async fn rearmed_jobs_run_again_once_done_and_coalesce_while_pending<S: Store>(store: Arc<S>) {
    let now = t0();
    let card_key = unique("rearm");
    store.create_card(&card(&card_key, now)).await.unwrap();
    let refresh = |at: EpochMillis| NewJob {
        rearm: true,
        ..job(&card_key, "refresh", at)
    };
    store.enqueue(&refresh(now)).await.unwrap();
    store.enqueue(&refresh(now + 5)).await.unwrap();
    let pending = store.get_job(&card_key, "refresh").await.unwrap().unwrap();
    assert_eq!(
        pending.due_at, now,
        "a pending one is left: the two coalesce"
    );
    assert_eq!(pending.status, JobStatus::Pending);
    let leased = store
        .claim_job(&card_key, "refresh", "worker", now, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    // Re-armed while its run is under way: never a second run at once; once more after it.
    store.enqueue(&refresh(now + 3)).await.unwrap();
    let still = store.get_job(&card_key, "refresh").await.unwrap().unwrap();
    assert_eq!(
        still.status,
        JobStatus::Leased,
        "not replaced under its run"
    );
    assert!(store
        .claim_job(&card_key, "refresh", "other", now + 1, LEASE_MS)
        .await
        .unwrap()
        .is_none());
    store.complete_job(&leased, now + 1).await.unwrap();
    let rerun = store.get_job(&card_key, "refresh").await.unwrap().unwrap();
    assert_eq!(
        rerun.status,
        JobStatus::Pending,
        "pending again after the run"
    );
    let leased = store
        .claim_job(&card_key, "refresh", "worker", now + 2, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    store.complete_job(&leased, now + 2).await.unwrap();
    assert_eq!(
        store
            .get_job(&card_key, "refresh")
            .await
            .unwrap()
            .unwrap()
            .status,
        JobStatus::Done,
        "the rerun ran once"
    );
    let mut state = store.get_card(&card_key).await.unwrap().unwrap();
    state.status = "changed".into();
    store
        .update_card_and_enqueue(&state, &[refresh(now + 10)])
        .await
        .unwrap();
    let again = store.get_job(&card_key, "refresh").await.unwrap().unwrap();
    assert_eq!(
        (again.status, again.due_at, again.attempts),
        (JobStatus::Pending, now + 10, 0),
        "a done one is re-armed by the state write"
    );
    // Without `rearm`, the done job stands.
    let plain = job(&card_key, "once", now);
    store.enqueue(&plain).await.unwrap();
    let once = store
        .claim_job(&card_key, "once", "w", now, LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    store.complete_job(&once, now + 1).await.unwrap();
    store
        .enqueue(&job(&card_key, "once", now + 20))
        .await
        .unwrap();
    let done = store.get_job(&card_key, "once").await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Done);
}
