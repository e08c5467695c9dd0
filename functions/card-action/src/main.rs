//! The card-action Lambda: wiring only (config and store built once; it never calls Feishu).
use std::sync::Arc;

use card_action::CardAction;
use cardbot::config::Config;
use cardbot::feishu::SystemClock;
use cardbot::function_url;
use cardbot::store::dynamo::DynamoStore;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    cardbot::logging::init();
    let config = Config::from_env()?;
    let store = Arc::new(DynamoStore::from_env().await?);
    let handler = CardAction::new(&config, store, Arc::new(SystemClock));
    // Not lambda_http::run: its event conversion panics on an odd query string (function_url).
    function_url::run(|request| handler.handle(request)).await
}
