//! An event bus port: one event out to other systems (Amazon EventBridge `PutEvents` in AWS, a
//! recording bus in tests). The domain decides what an event says; this module only delivers it.
//!
//! EventBridge delivers at least once and a caller may retry a put that in fact succeeded, so an
//! event carries its own id in its detail (the domain's choice) for consumers to deduplicate on.

use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

/// One event: EventBridge's `Source`, `DetailType` and `Detail` (a JSON object).
///
/// Limits (EventBridge `PutEvents`): an entry is at most 256 KB in all; `Source` and
/// `DetailType` are at most 256 characters.
#[derive(Debug, Clone, PartialEq)]
pub struct BusEvent {
    /// Who the event is from (`Source`), e.g. `cardbot`.
    pub source: String,
    /// What it is (`DetailType`), what rules match on beside the source.
    pub detail_type: String,
    /// The event itself (`Detail`), a JSON object.
    pub detail: Value,
}

/// Why an event was not put.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventBusError {
    /// Worth trying again later (throttled, an internal failure, the network).
    #[error("event bus (retryable): {0}")]
    Retryable(String),
    /// Trying again cannot help (no permission, no such bus, an entry too large).
    #[error("event bus: {0}")]
    Permanent(String),
}

/// Where events go.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Puts one event; `Ok` once the bus accepted it.
    async fn put(&self, event: &BusEvent) -> Result<(), EventBusError>;
}

/// Amazon EventBridge: `PutEvents` of one entry on `bus` (a name or an ARN; `default` is the
/// account's default bus). Needs `events:PutEvents` on that bus.
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeBus {
    /// A client from the functions' SDK config (its region, credentials and endpoint).
    pub fn new(sdk: &aws_config::SdkConfig, bus: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_eventbridge::Client::new(sdk),
            bus: bus.into(),
        }
    }
}

/// EventBridge's entry error codes worth a retry (`PutEventsResultEntry.ErrorCode`).
fn retryable_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException" | "InternalFailure" | "InternalException" | "ServiceUnavailable"
    )
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn put(&self, event: &BusEvent) -> Result<(), EventBusError> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&event.source)
            .detail_type(&event.detail_type)
            .detail(event.detail.to_string())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                let text = aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string();
                let permanent = text.contains("AccessDenied")
                    || text.contains("ResourceNotFound")
                    || text.contains("ValidationException");
                if permanent {
                    EventBusError::Permanent(text)
                } else {
                    EventBusError::Retryable(text)
                }
            })?;
        if out.failed_entry_count() == 0 {
            return Ok(());
        }
        let failed = out
            .entries()
            .iter()
            .find(|e| e.error_code().is_some())
            .map(|e| {
                (
                    e.error_code().unwrap_or_default().to_owned(),
                    e.error_message().unwrap_or_default().to_owned(),
                )
            })
            .unwrap_or_default();
        let text = format!("PutEvents refused the entry: {} {}", failed.0, failed.1);
        if retryable_code(&failed.0) {
            Err(EventBusError::Retryable(text))
        } else {
            Err(EventBusError::Permanent(text))
        }
    }
}

/// A bus that keeps what it is given (tests, and local runs without EventBridge).
#[derive(Default)]
pub struct MemoryBus {
    events: Mutex<Vec<BusEvent>>,
}

impl MemoryBus {
    /// Every event put so far, oldest first.
    pub fn events(&self) -> Vec<BusEvent> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn put(&self, event: &BusEvent) -> Result<(), EventBusError> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_internal_failures_are_retried_the_rest_is_not() {
        assert!(retryable_code("ThrottlingException"));
        assert!(retryable_code("InternalFailure"));
        assert!(!retryable_code("AccessDeniedException"));
        assert!(!retryable_code("MalformedDetail"));
    }

    #[tokio::test]
    async fn the_memory_bus_keeps_each_event() {
        let bus = MemoryBus::default();
        let event = BusEvent {
            source: "cardbot".into(),
            detail_type: "x".into(),
            detail: serde_json::json!({"a": 1}),
        };
        bus.put(&event).await.unwrap();
        assert_eq!(bus.events(), [event]);
    }
}
