//! Store tests: one conformance suite run against both adapters (MemoryStore and DynamoStore on
//! DynamoDB Local), plus DynamoDB-only checks of the item layout and the `due` index.

mod conformance;
mod dynamo_only;
mod local;

/// Runs each generic suite function against a fresh `MemoryStore` and a fresh `DynamoStore`.
macro_rules! against_both_adapters {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let store = std::sync::Arc::new(cardbot::store::memory::MemoryStore::new());
                    crate::conformance::$name(store).await;
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let store = cardbot_tests::dynamodb_local::fresh_store().await;
                    crate::conformance::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

against_both_adapters!(
    dedup_claims_once_and_a_late_release_keeps_it_done,
    dedup_release_keeps_what_was_kept,
    dedup_expired_record_does_not_block,
    dedup_lapsed_lease_is_taken_over_once,
    dedup_keeps_steps_across_a_takeover,
    dedup_100_concurrent_claims_one_first_time,
    token_never_replaced_by_earlier_expiry,
    token_evicted_only_when_same,
    tenant_status_takes_only_newer_events_and_lists_per_app,
    app_tickets_keep_the_newest_two_and_ignore_a_redelivery,
    app_ticket_marked_stale_stays_kept_but_unusable,
    concurrent_ticket_puts_lose_none,
    ticket_resend_claimed_once_per_gap_by_16_concurrent_instances,
    app_token_kept_by_expiry_and_evicted_only_when_same,
    card_create_get_update_round_trip,
    card_update_conflicts_on_stale_version,
    card_update_never_touches_sequence,
    card_50_concurrent_read_modify_writes_lose_nothing,
    sequence_200_concurrent_distinct_1_to_200,
    sequence_refuses_past_int32,
    sequence_ranges_are_reserved_in_one_write,
    update_card_and_enqueue_is_one_write,
    enqueue_is_idempotent,
    enqueue_finishing_queues_and_finishes_in_one_write,
    unknown_job_kinds_round_trip,
    create_card_with_jobs_writes_both_or_neither,
    job_claim_complete_lifecycle,
    job_lapsed_lease_becomes_due_again,
    waiting_jobs_of_a_prefix_are_buried_unless_a_run_holds_them,
    job_fail_backs_off_then_dead_stays_visible,
    job_fail_honours_retry_at,
    job_fail_permanently_is_dead_at_once,
    job_lapsed_leases_count_until_dead,
    job_lapsed_lease_taken_over_once,
    jobs_two_claimers_deliver_500_exactly_once,
    rate_200_concurrent_takes_never_grant_more_than_50,
    rate_refused_take_adds_nothing_and_fits_at_retry_at,
    rate_windows_roll_over_and_holds_count_where_they_reach,
    rate_per_api_minute_budget,
    rate_per_chat_budget,
    lists_are_per_user_newest_first,
    documents_write_once_replace_by_revision_and_race_safely,
    rearmed_jobs_run_again_once_done_and_coalesce_while_pending,
);
