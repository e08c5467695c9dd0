//! The three functions' handlers, each built once per cold start by its binary in `functions/`:
//! the event subscription URL ([`event_callback`]), the card callback URL ([`card_action`]) and the
//! scheduled card updater ([`card_updater`]).

pub mod card_action;
pub mod card_updater;
pub mod event_callback;

use std::sync::Arc;

use crate::config::{Config, FeishuConfig};
use crate::feishu::{AppType, FeishuClientBuilder, FeishuClientConfig};

/// The Feishu client builder of a function, as `config` says: a store app's
/// (`FEISHU_APP_TYPE=store`) takes its tokens from the tickets kept in `store`.
pub fn feishu_client_builder<S>(
    config: &Config,
    app: &FeishuConfig,
    store: Arc<S>,
) -> FeishuClientBuilder
where
    S: crate::store::TokenStore + crate::store::RateStore + crate::store::AppTicketStore + 'static,
{
    let builder =
        crate::feishu::FeishuClient::builder(FeishuClientConfig::from(app), store.clone());
    match config.app_type {
        AppType::SelfBuilt => builder,
        AppType::Store => builder.store_app(store),
    }
}
