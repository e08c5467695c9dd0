//! Outbound Feishu Open API client: tenant token, im messages, delayed card update, CardKit.
//!
//! Domain code depends on the object-safe [`FeishuApi`] trait; [`FeishuClient`] implements it
//! over reqwest. Every call takes a [`Deadline`] that bounds all its retries and waits, and
//! fails with a typed [`FeishuError`] (success is Feishu's `code == 0`, not HTTP 200).

pub mod cardkit;
mod client;
pub mod contact;
pub mod deadline;
pub mod error;
pub mod im;
pub mod limiter;
pub mod limits;
pub mod pacer;
pub mod request;
pub mod request_uuid;
pub mod store_app;
pub mod token;

use async_trait::async_trait;
use serde_json::Value;

pub use cardkit::{BatchUpdateAction, CardWrite, ElementPosition};
pub use client::{
    FeishuClient, FeishuClientBuilder, FeishuClientConfig, RetryPolicy, FEISHU_BASE_URL,
    LARK_BASE_URL,
};
pub use contact::{BotInfo, ContactUser, Leader};
pub use deadline::Deadline;
pub use error::{codes, FeishuError, FeishuResult};
pub use im::{MessageContent, ReceiveId, SentMessage};
pub use request_uuid::RequestUuid;
pub use store_app::{AppTicketEvent, AppType, TenantKey};
pub use token::{Clock, SystemClock, TenantAccessToken, REFRESH_MARGIN_MS};

/// Every Feishu Open API call the bot makes. Writes that Feishu dedupes take an idempotency key
/// or a [`CardWrite`] (sequence + uuid), so a retried call is never applied twice.
#[async_trait]
pub trait FeishuApi: Send + Sync {
    /// This client for `tenant`'s calls: a store app's root client answers the tenant's own
    /// ([`FeishuClient::for_tenant`]: its tenant token, rate limits and bot open_id). `None` (the
    /// default) for a client of one tenant (a self-built app, a test double): use it as it is.
    fn tenant_client(&self, _tenant: &TenantKey) -> Option<std::sync::Arc<dyn FeishuApi>> {
        None
    }

    /// The bot's own open_id (`GET /open-apis/bot/v3/info`; no API scope needed, the bot
    /// capability enabled and published), which a group message's `mentions[]` carries when it
    /// @mentions this bot (`../shared/feishu/approval-apis.md` §8). Read once per app: kept in
    /// memory and in the table.
    async fn bot_open_id(&self, deadline: Deadline) -> FeishuResult<String>;

    /// Gets one user by open_id (`GET contact/v3/users/:user_id`), for their leader
    /// ([`contact::Leader::of`]).
    async fn get_user(&self, open_id: &str, deadline: Deadline) -> FeishuResult<ContactUser>;

    /// The first page of a department's direct users, at most `page_size` (≤ 50;
    /// `GET contact/v3/users/find_by_department`), for the candidates of a 转交.
    async fn department_users(
        &self,
        department_id: &str,
        page_size: u32,
        deadline: Deadline,
    ) -> FeishuResult<Vec<ContactUser>>;

    /// Buzzes `open_ids` in-app on a message the bot sent (`PATCH im/v1/messages/:id/urgent_app`,
    /// scope `im:message.urgent`).
    async fn urgent_app(
        &self,
        message_id: &str,
        open_ids: &[String],
        deadline: Deadline,
    ) -> FeishuResult<()>;

    /// Sends a message (`POST im/v1/messages`); the same `idempotency_key` within 1 h is one message.
    async fn send_message(
        &self,
        receiver: &ReceiveId,
        content: &MessageContent,
        idempotency_key: &str,
        deadline: Deadline,
    ) -> FeishuResult<SentMessage>;

    /// Replies to a message (`POST im/v1/messages/:id/reply`), deduplicated like `send_message`.
    async fn reply_message(
        &self,
        message_id: &str,
        content: &MessageContent,
        reply_in_thread: bool,
        idempotency_key: &str,
        deadline: Deadline,
    ) -> FeishuResult<SentMessage>;

    /// [`FeishuApi::reply_message`] to a message in `chat_id`, so the reply counts in that chat's
    /// 5 QPS (Feishu limits sends per chat; a reply's path names only the message).
    async fn reply_message_in_chat(
        &self,
        chat_id: &str,
        message_id: &str,
        content: &MessageContent,
        reply_in_thread: bool,
        idempotency_key: &str,
        deadline: Deadline,
    ) -> FeishuResult<SentMessage> {
        let _ = chat_id;
        self.reply_message(
            message_id,
            content,
            reply_in_thread,
            idempotency_key,
            deadline,
        )
        .await
    }

    /// Replaces a sent card (`PATCH im/v1/messages/:id`; ≤ 14 days, `update_multi: true` on both cards).
    async fn patch_message_card(
        &self,
        message_id: &str,
        card: &Value,
        deadline: Deadline,
    ) -> FeishuResult<()>;

    /// Delayed update with a callback's update token (`POST interactive/v1/card/update`; 30 min, 2 uses).
    async fn delayed_update_card(
        &self,
        update_token: &str,
        card: &Value,
        deadline: Deadline,
    ) -> FeishuResult<()>;

    /// Creates a CardKit card entity from card JSON 2.0 (`POST cardkit/v1/cards`); returns its card_id.
    async fn create_card(&self, card: &Value, deadline: Deadline) -> FeishuResult<String>;

    /// Replaces a card entity's whole JSON (`PUT cardkit/v1/cards/:card_id`).
    async fn update_card(
        &self,
        card_id: &str,
        card: &Value,
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()>;

    /// Merges `config` / `card_link` settings (`PATCH cardkit/v1/cards/:card_id/settings`).
    async fn update_card_settings(
        &self,
        card_id: &str,
        settings: &Value,
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()>;

    /// Applies several actions in one write (`POST cardkit/v1/cards/:card_id/batch_update`).
    async fn batch_update_card(
        &self,
        card_id: &str,
        actions: &[BatchUpdateAction],
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()>;

    /// Adds elements before/after an element or at a container's end (`POST …/:card_id/elements`).
    async fn add_card_elements(
        &self,
        card_id: &str,
        position: &ElementPosition,
        elements: &[Value],
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()>;

    /// Replaces one element (`PUT …/:card_id/elements/:element_id`).
    async fn update_card_element(
        &self,
        card_id: &str,
        element_id: &str,
        element: &Value,
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()>;

    /// Merges properties into one element (`PATCH …/:card_id/elements/:element_id`).
    async fn patch_card_element(
        &self,
        card_id: &str,
        element_id: &str,
        partial_element: &Value,
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()>;

    /// Streams the full text of a markdown/plain_text element (`PUT …/elements/:element_id/content`).
    async fn stream_card_element_text(
        &self,
        card_id: &str,
        element_id: &str,
        content: &str,
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()>;

    /// Deletes one element and its children (`DELETE …/:card_id/elements/:element_id`).
    async fn delete_card_element(
        &self,
        card_id: &str,
        element_id: &str,
        write: &CardWrite,
        deadline: Deadline,
    ) -> FeishuResult<()>;

    /// Finds the card entity behind a sent card message (`POST cardkit/v1/cards/id_convert`).
    async fn convert_message_to_card_id(
        &self,
        message_id: &str,
        deadline: Deadline,
    ) -> FeishuResult<String>;
}
