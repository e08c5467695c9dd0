//! The card-action Lambda: wiring only (config, webhook secrets and store built once; it never
//! calls Feishu, so it holds no App Secret).
use std::sync::Arc;

use cardbot::config::{Config, Function, WebhookConfig};
use cardbot::entry::card_action::CardAction;
use cardbot::feishu::SystemClock;
use cardbot::function_url;
use cardbot::store::dynamo::DynamoStore;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    cardbot::logging::init();
    // `main`'s `Err` prints only `Debug`: log the message that says what to fix.
    let handler = start()
        .await
        .inspect_err(|e| tracing::error!("cannot start: {e}"))?;
    // Not lambda_http::run: its event conversion panics on an odd query string (function_url).
    let metrics = cardbot::telemetry::install(Function::CardAction.name());
    function_url::run(metrics, |request| handler.handle(request)).await
}

async fn start() -> Result<CardAction<DynamoStore>, Error> {
    let config = Config::from_env()?;
    let aws = cardbot::aws::sdk_config().await;
    let secrets = cardbot::secrets::load(Function::CardAction, &aws).await?;
    let webhook = WebhookConfig::from_env(&secrets)?;
    let store = Arc::new(DynamoStore::from_sdk_config(&aws)?);
    Ok(CardAction::new(
        &config,
        webhook,
        store,
        Arc::new(SystemClock),
    ))
}
