//! Tenant access tokens: `TokenStore` for `DynamoStore` (one item per app, newest expiry wins).

use async_trait::async_trait;

use super::{is_condition_failed, n, s, store_error, DynamoStore, Fields};
use crate::store::keys::{self, PK};
use crate::store::table::TABLE;
use crate::store::{ttl_secs, StoreResult, StoredTenantToken, TokenStore};

#[async_trait]
impl TokenStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn get_bot_open_id(&self, app_id: &str) -> StoreResult<Option<String>> {
        let item = self
            .get(
                keys::tenant_token_pk(app_id),
                keys::BOT_SK,
                "get bot open_id",
            )
            .await?;
        item.map(|item| Fields::new(&item).s("open_id")).transpose()
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn put_bot_open_id(&self, app_id: &str, open_id: &str) -> StoreResult<()> {
        let mut item = Self::key(keys::tenant_token_pk(app_id), keys::BOT_SK);
        item.insert("open_id".into(), s(open_id));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error("put bot open_id", e))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn get_tenant_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>> {
        let item = self
            .get(
                keys::tenant_token_pk(app_id),
                keys::TENANT_TOKEN_SK,
                "get tenant token",
            )
            .await?;
        let Some(item) = item else {
            return Ok(None);
        };
        let f = Fields::new(&item);
        Ok(Some(StoredTenantToken {
            token: f.s("token")?,
            expires_at: f.n("expires_at_ms")?,
        }))
    }

    #[tracing::instrument(level = "debug", skip(self, token), fields(expires_at = token.expires_at))]
    async fn put_tenant_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool> {
        let mut item = Self::key(keys::tenant_token_pk(app_id), keys::TENANT_TOKEN_SK);
        item.insert("token".into(), s(&token.token));
        // The field in ms; `expires_at` is the TTL attribute in seconds.
        item.insert("expires_at_ms".into(), n(token.expires_at));
        item.insert(TABLE.ttl_attribute.into(), n(ttl_secs(token.expires_at)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #expires_at_ms <= :expires_at_ms")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires_at_ms", "expires_at_ms")
            .expression_attribute_values(":expires_at_ms", n(token.expires_at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("put tenant token", e)),
        }
    }

    #[tracing::instrument(level = "debug", skip(self, token))]
    async fn evict_tenant_token(&self, app_id: &str, token: &str) -> StoreResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::tenant_token_pk(app_id),
                keys::TENANT_TOKEN_SK,
            )))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        match result {
            // Another instance already replaced or evicted it: nothing to do.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("evict tenant token", e)),
            Ok(_) => Ok(()),
        }
    }
}
