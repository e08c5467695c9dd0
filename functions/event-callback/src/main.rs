//! The event-callback Lambda: wiring only (config, store, Feishu client built once).
use std::sync::Arc;

use cardbot::config::Config;
use cardbot::feishu::{FeishuClient, FeishuClientConfig, SystemClock};
use cardbot::store::dynamo::DynamoStore;
use event_callback::EventCallback;
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    cardbot::logging::init();
    let config = Config::from_env()?;
    let store = Arc::new(DynamoStore::from_env().await?);
    let feishu = Arc::new(FeishuClient::new(
        FeishuClientConfig::from(&config.feishu),
        store.clone(),
    )?);
    let handler = EventCallback::new(&config, store, feishu, Arc::new(SystemClock));
    let handler = &handler;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(handler.handle(request).await)
    }))
    .await
}
