//! The card-updater Lambda: wiring only (config, App Secret, store, Feishu client built once; it
//! receives no webhook, so it holds neither the Encrypt Key nor the Verification Token).
use std::sync::Arc;

use cardbot::config::{Config, FeishuConfig, Function};
use cardbot::entry::card_updater::{CardUpdater, UpdaterEvent};
use cardbot::feishu::{Clock, FeishuClient, SystemClock};
use cardbot::store::dynamo::DynamoStore;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    cardbot::logging::init();
    // `main`'s `Err` prints only `Debug`: log the message that says what to fix.
    let updater = start()
        .await
        .inspect_err(|e| tracing::error!("cannot start: {e}"))?;
    let updater = &updater;
    let metrics = cardbot::telemetry::install(Function::CardUpdater.name());
    let metrics = &metrics;
    // The payload is read as JSON first: an event that is neither kind sweeps (the runtime would
    // report a deserialisation error and the stream would retry the same batch).
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = effective_deadline(event.context.deadline, SystemClock.now_millis());
        let event = UpdaterEvent::from_payload(event.payload);
        let summary = updater.handle(&event, deadline).await;
        // The invocation's metrics go out as one EMF document.
        if let Some(metrics) = metrics {
            metrics.flush();
        }
        Ok::<_, Error>(serde_json::to_value(summary)?)
    }))
    .await
}

async fn start() -> Result<CardUpdater<DynamoStore, FeishuClient>, Error> {
    let config = Config::from_env()?;
    let aws = cardbot::aws::sdk_config().await;
    let secrets = cardbot::secrets::load(Function::CardUpdater, &aws).await?;
    let app = FeishuConfig::from_env(&secrets)?;
    let store = Arc::new(DynamoStore::from_sdk_config(&aws)?);
    let feishu =
        Arc::new(cardbot::entry::feishu_client_builder(&config, &app, store.clone()).build()?);
    let owner = uuid::Uuid::new_v4().to_string();
    let mut updater = CardUpdater::new(&config, store, feishu, Arc::new(SystemClock), owner);
    // Ended requests' decision events (`DECISION_EVENT_BUS`, the template's DecisionEventBus).
    if let Some(bus) = &config.decision_event_bus {
        updater.events = Some(Arc::new(cardbot::events::EventBridgeBus::new(&aws, bus)));
    }
    Ok(updater)
}

/// The template's Timeout of this function.
const TIMEOUT_MS: i64 = 60_000;

/// The runtime's deadline (epoch ms), or `now + TIMEOUT_MS` when it is not in the future:
/// `cargo lambda watch` (`make run`) sends a fixed `lambda-runtime-deadline-ms: 600000`.
fn effective_deadline(runtime_deadline: u64, now: i64) -> i64 {
    match i64::try_from(runtime_deadline) {
        Ok(deadline) if deadline > now => deadline,
        _ => now + TIMEOUT_MS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_in_the_past_becomes_the_timeout_from_now() {
        let now = 1_800_000_000_000;
        assert_eq!(effective_deadline(600_000, now), now + TIMEOUT_MS);
        assert_eq!(effective_deadline(u64::MAX, now), now + TIMEOUT_MS);
        assert_eq!(effective_deadline(now as u64 + 5_000, now), now + 5_000);
    }
}
