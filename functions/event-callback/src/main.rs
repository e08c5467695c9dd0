//! The event-callback Lambda: wiring only (config, store, Feishu client built once).
use std::sync::Arc;

use cardbot::config::Config;
use cardbot::feishu::{FeishuClient, FeishuClientConfig, SystemClock};
use cardbot::function_url;
use cardbot::store::dynamo::DynamoStore;
use event_callback::EventCallback;
use lambda_http::Error;

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
    // Not lambda_http::run: its event conversion panics on an odd query string (function_url).
    function_url::run(|request| handler.handle(request)).await
}
