//! The card-action Lambda: wiring only (config and store built once; it never calls Feishu).
use std::sync::Arc;

use card_action::CardAction;
use cardbot::config::Config;
use cardbot::feishu::SystemClock;
use cardbot::store::dynamo::DynamoStore;
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    cardbot::logging::init();
    let config = Config::from_env()?;
    let store = Arc::new(DynamoStore::from_env().await?);
    let handler = CardAction::new(&config, store, Arc::new(SystemClock));
    let handler = &handler;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(handler.handle(request).await)
    }))
    .await
}
