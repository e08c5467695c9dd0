//! The event-callback Lambda: wiring only (config, secrets, store, Feishu client built once).
use std::sync::Arc;

use cardbot::config::{Config, FeishuConfig, Function, WebhookConfig};
use cardbot::entry::event_callback::EventCallback;
use cardbot::feishu::{FeishuClient, FeishuClientConfig, SystemClock};
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
    let metrics = cardbot::telemetry::install(Function::EventCallback.name());
    function_url::run(metrics, |request| handler.handle(request)).await
}

async fn start() -> Result<EventCallback<DynamoStore, FeishuClient>, Error> {
    let config = Config::from_env()?;
    let aws = cardbot::aws::sdk_config().await;
    let secrets = cardbot::secrets::load(Function::EventCallback, &aws).await?;
    let app = FeishuConfig::from_env(&secrets)?;
    let webhook = WebhookConfig::from_env(&secrets)?;
    let store = Arc::new(DynamoStore::from_sdk_config(&aws)?);
    let feishu = Arc::new(FeishuClient::new(
        FeishuClientConfig::from(&app),
        store.clone(),
    )?);
    Ok(EventCallback::new(
        &config,
        webhook,
        store,
        feishu,
        Arc::new(SystemClock),
    ))
}
