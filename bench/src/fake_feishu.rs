//! An in-process Feishu for the hot-path handler benches: answers every call at once and counts it.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use cardbot::feishu::{
    BatchUpdateAction, CardWrite, Deadline, ElementPosition, FeishuApi, FeishuResult,
    MessageContent, ReceiveId, SentMessage,
};
use serde_json::Value;

/// Succeeds on every call; `send`/`reply` return fresh message ids, `create_card` fresh card ids.
#[derive(Debug, Default)]
pub struct FakeFeishu {
    calls: AtomicU64,
    next_id: AtomicU64,
}

impl FakeFeishu {
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    fn sent(&self) -> SentMessage {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        SentMessage {
            message_id: format!("om_bench_{n:016x}"),
            chat_id: Some("oc_5ad11d72b830411d72b836c20".to_owned()),
            msg_type: Some("interactive".to_owned()),
            create_time: None,
        }
    }
}

#[async_trait]
impl FeishuApi for FakeFeishu {
    async fn bot_open_id(&self, _deadline: Deadline) -> FeishuResult<String> {
        Ok("ou_bench0000000000000000000000000bot".to_owned())
    }

    async fn urgent_app(
        &self,
        _message_id: &str,
        _open_ids: &[String],
        _deadline: Deadline,
    ) -> FeishuResult<()> {
        self.call();
        Ok(())
    }

    async fn get_user(
        &self,
        open_id: &str,
        _deadline: Deadline,
    ) -> FeishuResult<cardbot::feishu::ContactUser> {
        self.call();
        Ok(cardbot::feishu::ContactUser {
            open_id: Some(open_id.to_owned()),
            ..Default::default()
        })
    }

    async fn department_users(
        &self,
        _department_id: &str,
        _page_size: u32,
        _deadline: Deadline,
    ) -> FeishuResult<Vec<cardbot::feishu::ContactUser>> {
        self.call();
        Ok(Vec::new())
    }

    async fn send_message(
        &self,
        _receiver: &ReceiveId,
        _content: &MessageContent,
        _idempotency_key: &str,
        _deadline: Deadline,
    ) -> FeishuResult<SentMessage> {
        self.call();
        Ok(self.sent())
    }

    async fn reply_message(
        &self,
        _message_id: &str,
        _content: &MessageContent,
        _reply_in_thread: bool,
        _idempotency_key: &str,
        _deadline: Deadline,
    ) -> FeishuResult<SentMessage> {
        self.call();
        Ok(self.sent())
    }

    async fn patch_message_card(&self, _: &str, _: &Value, _: Deadline) -> FeishuResult<()> {
        self.call();
        Ok(())
    }

    async fn delayed_update_card(&self, _: &str, _: &Value, _: Deadline) -> FeishuResult<()> {
        self.call();
        Ok(())
    }

    async fn create_card(&self, _card: &Value, _deadline: Deadline) -> FeishuResult<String> {
        self.call();
        Ok(format!(
            "73553727661{:08}",
            self.next_id.fetch_add(1, Ordering::Relaxed) % 100_000_000
        ))
    }

    async fn update_card(
        &self,
        _: &str,
        _: &Value,
        _: &CardWrite,
        _: Deadline,
    ) -> FeishuResult<()> {
        self.call();
        Ok(())
    }

    async fn update_card_settings(
        &self,
        _: &str,
        _: &Value,
        _: &CardWrite,
        _: Deadline,
    ) -> FeishuResult<()> {
        self.call();
        Ok(())
    }

    async fn batch_update_card(
        &self,
        _: &str,
        _: &[BatchUpdateAction],
        _: &CardWrite,
        _: Deadline,
    ) -> FeishuResult<()> {
        self.call();
        Ok(())
    }

    async fn add_card_elements(
        &self,
        _: &str,
        _: &ElementPosition,
        _: &[Value],
        _: &CardWrite,
        _: Deadline,
    ) -> FeishuResult<()> {
        self.call();
        Ok(())
    }

    async fn update_card_element(
        &self,
        _: &str,
        _: &str,
        _: &Value,
        _: &CardWrite,
        _: Deadline,
    ) -> FeishuResult<()> {
        self.call();
        Ok(())
    }

    async fn patch_card_element(
        &self,
        _: &str,
        _: &str,
        _: &Value,
        _: &CardWrite,
        _: Deadline,
    ) -> FeishuResult<()> {
        self.call();
        Ok(())
    }

    async fn stream_card_element_text(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &CardWrite,
        _: Deadline,
    ) -> FeishuResult<()> {
        self.call();
        Ok(())
    }

    async fn delete_card_element(
        &self,
        _: &str,
        _: &str,
        _: &CardWrite,
        _: Deadline,
    ) -> FeishuResult<()> {
        self.call();
        Ok(())
    }

    async fn convert_message_to_card_id(&self, _: &str, _: Deadline) -> FeishuResult<String> {
        self.call();
        Ok("7355372766134157313".to_owned())
    }
}
