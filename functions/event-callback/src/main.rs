//! The event-callback Lambda: wiring only (config, store, Feishu client built once).
use std::sync::Arc;

use cardbot::config::Config;
use cardbot::feishu::{FeishuClient, FeishuClientConfig, SystemClock};
use cardbot::store::dynamo::DynamoStore;
use event_callback::EventCallback;
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let store = Arc::new(DynamoStore::from_env().await?);
    let feishu = Arc::new(FeishuClient::new(
        FeishuClientConfig {
            base_url: config.feishu.base_url.clone(),
            app_id: config.feishu.app_id.clone(),
            app_secret: config.feishu.app_secret.expose().to_owned(),
        },
        store.clone(),
    )?);
    let handler = EventCallback::new(&config, store, feishu, Arc::new(SystemClock));
    let handler = &handler;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(handler.handle(request).await)
    }))
    .await
}
