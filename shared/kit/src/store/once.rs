//! Exactly once for a Feishu delivery: claim its key, do the work, then finish the key, or release
//! it when nothing reached anyone. The one place that pairs [`DedupStore::claim`] with
//! [`DedupStore::finish`] and [`DedupStore::release`]; handlers call [`once`].
//!
//! Feishu re-delivers an unanswered event for about 7.1 hours and may send a card callback twice;
//! a function can die at any point. A claim is a lease: if the function dies, the lease lapses and
//! the next re-delivery takes the work over with `resumed = true`, reading what the dead attempt
//! kept ([`DedupStore::kept`]) instead of doing it twice.

use std::future::Future;

use super::{DedupClaim, DedupStore, EpochMillis, StoreError};

/// How the work of a claimed delivery ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish<T> {
    /// The work is durable: [`once`] marks the key done.
    Done(T),
    /// The work marked the key done itself, in the same write as its last effect (for example
    /// [`super::JobStore::enqueue_finishing`], which queues a job and finishes the key at once).
    AlreadyDone(T),
}

/// How the work of a claimed delivery gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abandon<E> {
    /// Nothing reached anyone (no message sent, no state written, no job queued): [`once`]
    /// releases the key, so Feishu's retry takes it over (`resumed = true`) with whatever this
    /// attempt kept (a CardKit entity it created is reused).
    Release(E),
    /// Something may have reached someone: the claim stays, its lease lapses, and the next
    /// re-delivery resumes the work (`resumed = true`) instead of repeating what was done.
    Keep(E),
}

/// What [`once`] did with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Once<T, E> {
    /// The work ran (for the first time, or resuming an attempt that died) and ended well.
    Ran(T),
    /// The work ran and gave up with `E`; the key was released or kept as it asked.
    Abandoned(E),
    /// Another attempt holds a live claim ([`DedupClaim::InProgress`]) or the work is done
    /// ([`DedupClaim::Done`]): nothing ran. Answer the re-delivery without working.
    Duplicate(DedupClaim),
}

/// Runs `work` at most once per `key` across re-deliveries, concurrent deliveries and crashes.
///
/// Claims `key` for `lease_ms` (the record lives `ttl_ms`), runs `work(resumed)` when the claim is
/// the caller's (`resumed`: an earlier attempt died holding it), then finishes or releases the key
/// as the work says. `Err` only when the claim itself fails (nothing ran: answer so Feishu
/// retries). A failed finish or release is logged, not returned: the lease lapses and a
/// re-delivery resumes, which the kept steps make harmless.
pub async fn once<S, T, E, F, Fut>(
    store: &S,
    key: &str,
    now: EpochMillis,
    lease_ms: i64,
    ttl_ms: i64,
    work: F,
) -> Result<Once<T, E>, StoreError>
where
    S: DedupStore + ?Sized,
    F: FnOnce(bool) -> Fut,
    Fut: Future<Output = Result<Finish<T>, Abandon<E>>>,
{
    let resumed = match store.claim(key, now, lease_ms, ttl_ms).await? {
        DedupClaim::FirstTime => false,
        DedupClaim::TakenOver => {
            tracing::warn!(
                key,
                "an earlier attempt of this delivery did not finish (it died, or gave up); \
                 resuming it"
            );
            true
        }
        other => {
            tracing::info!(key, claim = ?other, "duplicate delivery");
            crate::metrics::duplicate();
            return Ok(Once::Duplicate(other));
        }
    };
    match work(resumed).await {
        Ok(Finish::Done(value)) => {
            if let Err(e) = store.finish(key, now).await {
                tracing::warn!(key, error = %e, "cannot mark the delivery done; its lease lapses");
            }
            Ok(Once::Ran(value))
        }
        Ok(Finish::AlreadyDone(value)) => Ok(Once::Ran(value)),
        Err(Abandon::Release(error)) => {
            if let Err(e) = store.release(key).await {
                tracing::warn!(key, error = %e, "cannot release the claim; its lease lapses");
            }
            Ok(Once::Abandoned(error))
        }
        Err(Abandon::Keep(error)) => Ok(Once::Abandoned(error)),
    }
}

/// Why a [`step`] did not give its outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError<E> {
    /// The step's own work failed.
    #[error("{0}")]
    Work(E),
    /// Its outcome could not be kept.
    #[error("cannot keep the step: {0}")]
    Store(StoreError),
}

/// One step of a delivery's work, done at most once: the outcome an earlier attempt kept for
/// `step` under `key` (in `kept`, read once with [`DedupStore::kept`] when resuming), else `run`'s
/// outcome, kept ([`DedupStore::keep`]; the first writer wins, and the kept value is returned).
pub async fn step<S, E, Fut>(
    store: &S,
    key: &str,
    kept: &super::Kept,
    step: &str,
    run: Fut,
) -> Result<String, StepError<E>>
where
    S: DedupStore + ?Sized,
    Fut: Future<Output = Result<String, E>>,
{
    if let Some(done) = kept.get(step) {
        return Ok(done.clone());
    }
    let value = run.await.map_err(StepError::Work)?;
    store
        .keep(key, step, &value)
        .await
        .map_err(StepError::Store)
}
