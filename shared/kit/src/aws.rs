//! The AWS SDK config a function loads once per cold start and shares between its clients
//! (DynamoDB, Secrets Manager): region, credentials and endpoints from the SDK's own variables,
//! bounded retries, and timeouts that fit a 3-second Feishu answer.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Attempts per call (the first plus retries) for throttling and transient errors.
const MAX_ATTEMPTS: u32 = 3;
/// One attempt: DynamoDB answers in tens of ms; a stalled connection is cut and retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(800);
/// One call with all its attempts and backoff: well inside Feishu's 3 s answer, so a store that
/// stalls makes the call fail (and the webhook answer so Feishu retries) instead of the answer
/// coming late.
const OPERATION_TIMEOUT: Duration = Duration::from_millis(1_800);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The SDK retry policy every client should use: standard mode (exponential backoff with
/// jitter on throttling and transient errors), bounded attempts.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// Timeouts that fit a 3-second Feishu answer.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Loads the config from the environment (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL_*`).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await
}
