//! A function's Feishu secrets, read once per cold start: from the Secrets Manager secrets named by
//! `FEISHU_SECRET_ARN` (in AWS: one ARN, or several separated by commas, each a JSON object whose
//! keys are merged; the stack gives each function only the secrets it uses), or from plain env
//! values when it is unset (local runs). Only the keys the function uses are kept
//! ([`SecretHolder::secrets`]).

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::Client;
use tracing::info;

use crate::config::{ConfigError, SecretHolder, SecretSource, Secrets};

/// The env variable naming the secrets: an ARN (or a name), or several separated by commas.
pub const SECRET_ARN_VAR: &str = "FEISHU_SECRET_ARN";

/// Most secrets `FEISHU_SECRET_ARN` names.
pub const MAX_SECRETS: usize = 4;

/// Why the secrets could not be read; never holds a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The secrets are unusable: a bad secret JSON, a missing or unheld secret.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `GetSecretValue` failed: the service's error code and message, or the kind of failure.
    #[error("cannot read the secret named by FEISHU_SECRET_ARN: {0}")]
    Fetch(String),
    /// The secret has no `SecretString` (a binary secret).
    #[error("the secret named by FEISHU_SECRET_ARN has no SecretString (a binary secret)")]
    NotAString,
}

/// The secrets of `function`: from Secrets Manager when `FEISHU_SECRET_ARN` is set, else from
/// `FEISHU_APP_SECRET`, `FEISHU_ENCRYPT_KEY`, `FEISHU_VERIFICATION_TOKEN`.
pub async fn load(
    function: impl Into<SecretHolder>,
    aws: &SdkConfig,
) -> Result<Secrets, SecretsError> {
    let function = function.into();
    let secret_id = std::env::var(SECRET_ARN_VAR)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let secrets = match secret_id {
        None => Secrets::from_env(function),
        Some(secret_ids) => fetch_all(&Client::new(aws), &secret_ids, function).await?,
    };
    info!(
        function = function.name,
        source = match secrets.source() {
            SecretSource::Env => "env",
            SecretSource::SecretsManager => "secrets manager",
        },
        "secrets loaded"
    );
    Ok(secrets)
}

/// `GetSecretValue` of each of the comma-separated `secret_ids` (ARNs or names, at most
/// [`MAX_SECRETS`]); the function's keys from their JSON objects merged (a key in two secrets:
/// the later one's value).
pub async fn fetch_all(
    client: &Client,
    secret_ids: &str,
    function: impl Into<SecretHolder>,
) -> Result<Secrets, SecretsError> {
    let ids: Vec<&str> = secret_ids
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    if ids.is_empty() || ids.len() > MAX_SECRETS {
        return Err(SecretsError::Fetch(format!(
            "FEISHU_SECRET_ARN names {} secrets (1 to {MAX_SECRETS})",
            ids.len()
        )));
    }
    let mut merged = serde_json::Map::new();
    for id in ids {
        // The secret's id (an ARN or a name) is no secret: it names which one failed.
        let out = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| match fetch_error(e) {
                SecretsError::Fetch(why) => SecretsError::Fetch(format!("{id}: {why}")),
                other => other,
            })?;
        let text = out.secret_string().ok_or(SecretsError::NotAString)?;
        // serde's messages quote the offending input: a fixed reason instead.
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|_| ConfigError::InvalidSecret {
                reason: "expected a JSON object of strings",
            })?;
        merged.extend(object);
    }
    let text = serde_json::Value::Object(merged).to_string();
    Ok(Secrets::from_secret_string(function, &text)?)
}

/// One `GetSecretValue` of `secret_id` (ARN or name); the function's keys from its JSON.
pub async fn fetch(
    client: &Client,
    secret_id: &str,
    function: impl Into<SecretHolder>,
) -> Result<Secrets, SecretsError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(fetch_error)?;
    let text = out.secret_string().ok_or(SecretsError::NotAString)?;
    Ok(Secrets::from_secret_string(function, text)?)
}

/// The service's error code and message, or the kind of failure: never the response body.
fn fetch_error<E: ProvideErrorMetadata, R>(e: SdkError<E, R>) -> SecretsError {
    SecretsError::Fetch(match &e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            format!(
                "{}: {}",
                err.code().unwrap_or("service error"),
                err.message().unwrap_or("no message")
            )
        }
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(failure) if failure.is_io() => "connection failed".to_owned(),
        SdkError::DispatchFailure(_) => "request not sent".to_owned(),
        SdkError::ResponseError(_) => "unreadable response".to_owned(),
        SdkError::ConstructionFailure(_) => "request not built".to_owned(),
        _ => "unknown error".to_owned(),
    })
}
