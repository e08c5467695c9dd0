//! The event-callback Lambda: wiring only (config, secrets, store, Feishu client built once).
use std::sync::Arc;

use cardbot::config::{Config, FeishuConfig, Function, WebhookConfig};
use cardbot::entry::event_callback::EventCallback;
use cardbot::feishu::{FeishuClient, SystemClock};
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
    let feishu =
        Arc::new(cardbot::entry::feishu_client_builder(&config, &app, store.clone()).build()?);
    // A store app's first deploy has no app_ticket: ask Feishu for one now (at most once a minute
    // across instances), so the first user's reply waits the least.
    if config.app_type == cardbot::feishu::AppType::Store {
        use cardbot::store::AppTicketStore;
        match store.get_app_tickets(&app.app_id).await {
            Ok(tickets) if tickets.is_empty() => {
                let deadline = cardbot::feishu::Deadline::after(std::time::Duration::from_secs(3));
                feishu.request_app_ticket(deadline).await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the app_ticket"),
        }
    }
    Ok(EventCallback::new(
        &config,
        webhook,
        store,
        feishu,
        Arc::new(SystemClock),
    ))
}
