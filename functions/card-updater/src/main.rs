//! The card-updater Lambda: wiring only (config, store, Feishu client built once).
use std::sync::Arc;

use card_updater::CardUpdater;
use cardbot::config::Config;
use cardbot::feishu::{FeishuClient, FeishuClientConfig, SystemClock};
use cardbot::store::dynamo::DynamoStore;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
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
    let owner = uuid::Uuid::new_v4().to_string();
    let updater = CardUpdater::new(&config, store, feishu, Arc::new(SystemClock), owner);
    let updater = &updater;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
        Ok::<_, Error>(serde_json::to_value(
            updater.handle(&event.payload, deadline).await,
        )?)
    }))
    .await
}
