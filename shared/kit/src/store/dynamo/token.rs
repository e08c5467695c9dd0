//! Access tokens and a store app's tickets: `TokenStore` and `AppTicketStore` for `DynamoStore`.
//!
//! A token item (a tenant token: `token#<owner>` / `tenant`; a store app's app token:
//! `token#<app_id>` / `app`) is replaced only by a token that expires later and evicted only while
//! it is still the rejected one. The tickets item (`token#<app_id>` / `ticket`) holds the last
//! [`crate::store::KEPT_APP_TICKETS`] tickets as a list, replaced by revision.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{is_condition_failed, n, s, store_error, DynamoStore, Fields, Item};
use crate::store::keys::{self, PK};
use crate::store::table::TABLE;
use crate::store::{
    keep_app_ticket, mark_app_ticket_stale, ttl_secs, AppTicketStore, EpochMillis, StoreError,
    StoreResult, StoredAppTicket, StoredTenantToken, TenantRecord, TenantStatus, TenantStore,
    TokenStore,
};

/// How often a ticket write is retried after losing a race with another instance's.
const TICKET_WRITE_TRIES: u32 = 8;

impl DynamoStore {
    async fn get_token(
        &self,
        pk: String,
        sk: &str,
        what: &str,
    ) -> StoreResult<Option<StoredTenantToken>> {
        let Some(item) = self.get(pk, sk, what).await? else {
            return Ok(None);
        };
        let f = Fields::new(&item);
        Ok(Some(StoredTenantToken {
            token: f.s("token")?,
            expires_at: f.n("expires_at_ms")?,
        }))
    }

    async fn put_token(
        &self,
        pk: String,
        sk: &str,
        token: &StoredTenantToken,
        what: &str,
    ) -> StoreResult<bool> {
        let mut item = Self::key(pk, sk);
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
            Err(e) => Err(store_error(what, e)),
        }
    }

    async fn evict_token(&self, pk: String, sk: &str, token: &str, what: &str) -> StoreResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        match result {
            // Another instance already replaced or evicted it: nothing to do.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error(what, e)),
            Ok(_) => Ok(()),
        }
    }

    /// A conditional put of `token#<owner>` / `sk` at `now`: `true` for one caller per `gap_ms`.
    async fn claim_slot(
        &self,
        owner: &str,
        sk: &str,
        now: EpochMillis,
        gap_ms: EpochMillis,
    ) -> StoreResult<bool> {
        let mut item = Self::key(keys::tenant_token_pk(owner), sk);
        item.insert("at".into(), n(now));
        item.insert(
            TABLE.ttl_attribute.into(),
            n(ttl_secs(now + 24 * 3_600_000)),
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #at <= :cutoff")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":cutoff", n(now - gap_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("claim a token slot", e)),
        }
    }

    /// The tickets item's list and revision (0 when there is no item).
    async fn read_tickets(&self, app_id: &str) -> StoreResult<(Vec<StoredAppTicket>, i64)> {
        let Some(item) = self
            .get(
                keys::tenant_token_pk(app_id),
                keys::APP_TICKET_SK,
                "get app tickets",
            )
            .await?
        else {
            return Ok((Vec::new(), 0));
        };
        let f = Fields::new(&item);
        let revision = f.n("revision")?;
        let corrupt = |reason: &str| StoreError::Corrupt {
            key: format!("{}/{}", keys::tenant_token_pk(app_id), keys::APP_TICKET_SK),
            reason: reason.to_owned(),
        };
        let Some(AttributeValue::L(list)) = item.get("tickets") else {
            return Err(corrupt("tickets is not a list"));
        };
        let mut tickets = Vec::with_capacity(list.len());
        for entry in list {
            let AttributeValue::M(map) = entry else {
                return Err(corrupt("a ticket is not a map"));
            };
            let f = Fields::new(map);
            tickets.push(StoredAppTicket {
                ticket: f.s("ticket")?,
                received_at: f.n("received_at")?,
                stale: matches!(map.get("stale"), Some(AttributeValue::Bool(true))),
            });
        }
        Ok((tickets, revision))
    }

    /// Writes `tickets` as revision `revision + 1` if the item is still at `revision`; `false`
    /// when another instance wrote first.
    async fn write_tickets(
        &self,
        app_id: &str,
        tickets: &[StoredAppTicket],
        revision: i64,
    ) -> StoreResult<bool> {
        let mut item: Item = Self::key(keys::tenant_token_pk(app_id), keys::APP_TICKET_SK);
        let list = tickets
            .iter()
            .map(|t| {
                AttributeValue::M(Item::from([
                    ("ticket".to_owned(), s(&t.ticket)),
                    ("received_at".to_owned(), n(t.received_at)),
                    ("stale".to_owned(), AttributeValue::Bool(t.stale)),
                ]))
            })
            .collect();
        item.insert("tickets".into(), AttributeValue::L(list));
        item.insert("revision".into(), n(revision + 1));
        // Gone a day after its newest ticket expired: an app that stopped getting tickets.
        let newest_expiry = tickets.iter().map(StoredAppTicket::expires_at).max();
        if let Some(expiry) = newest_expiry {
            item.insert(
                TABLE.ttl_attribute.into(),
                n(ttl_secs(expiry + 24 * 3_600_000)),
            );
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #revision = :revision")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#revision", "revision")
            .expression_attribute_values(":revision", n(revision))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("put app tickets", e)),
        }
    }

    /// Read, change, write by revision, until the write wins or [`TICKET_WRITE_TRIES`] ran out.
    async fn change_tickets(
        &self,
        app_id: &str,
        change: impl Fn(&mut Vec<StoredAppTicket>) -> bool + Send + Sync,
    ) -> StoreResult<()> {
        for _ in 0..TICKET_WRITE_TRIES {
            let (mut tickets, revision) = self.read_tickets(app_id).await?;
            if !change(&mut tickets) {
                return Ok(());
            }
            if self.write_tickets(app_id, &tickets, revision).await? {
                return Ok(());
            }
        }
        Err(StoreError::Conflict(format!(
            "app tickets of {app_id} changed on every one of {TICKET_WRITE_TRIES} tries"
        )))
    }
}

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
        self.get_token(
            keys::tenant_token_pk(app_id),
            keys::TENANT_TOKEN_SK,
            "get tenant token",
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip(self, token), fields(expires_at = token.expires_at))]
    async fn put_tenant_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool> {
        self.put_token(
            keys::tenant_token_pk(app_id),
            keys::TENANT_TOKEN_SK,
            token,
            "put tenant token",
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip(self, token))]
    async fn evict_tenant_token(&self, app_id: &str, token: &str) -> StoreResult<()> {
        self.evict_token(
            keys::tenant_token_pk(app_id),
            keys::TENANT_TOKEN_SK,
            token,
            "evict tenant token",
        )
        .await
    }
}

#[async_trait]
impl AppTicketStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn get_app_tickets(&self, app_id: &str) -> StoreResult<Vec<StoredAppTicket>> {
        Ok(self.read_tickets(app_id).await?.0)
    }

    #[tracing::instrument(level = "debug", skip(self, ticket))]
    async fn put_app_ticket(
        &self,
        app_id: &str,
        ticket: &str,
        received_at: EpochMillis,
    ) -> StoreResult<()> {
        self.change_tickets(app_id, |tickets| {
            keep_app_ticket(tickets, ticket, received_at)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self, ticket))]
    async fn mark_app_ticket_stale(&self, app_id: &str, ticket: &str) -> StoreResult<()> {
        self.change_tickets(app_id, |tickets| mark_app_ticket_stale(tickets, ticket))
            .await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn claim_ticket_resend(
        &self,
        app_id: &str,
        now: EpochMillis,
        gap_ms: EpochMillis,
    ) -> StoreResult<bool> {
        self.claim_slot(app_id, keys::TICKET_RESEND_SK, now, gap_ms)
            .await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn claim_token_refresh(
        &self,
        owner: &str,
        now: EpochMillis,
        hold_ms: EpochMillis,
    ) -> StoreResult<bool> {
        self.claim_slot(owner, keys::TOKEN_REFRESH_SK, now, hold_ms)
            .await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn get_app_token(&self, app_id: &str) -> StoreResult<Option<StoredTenantToken>> {
        self.get_token(
            keys::tenant_token_pk(app_id),
            keys::APP_TOKEN_SK,
            "get app token",
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip(self, token), fields(expires_at = token.expires_at))]
    async fn put_app_token(&self, app_id: &str, token: &StoredTenantToken) -> StoreResult<bool> {
        self.put_token(
            keys::tenant_token_pk(app_id),
            keys::APP_TOKEN_SK,
            token,
            "put app token",
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip(self, token))]
    async fn evict_app_token(&self, app_id: &str, token: &str) -> StoreResult<()> {
        self.evict_token(
            keys::tenant_token_pk(app_id),
            keys::APP_TOKEN_SK,
            token,
            "evict app token",
        )
        .await
    }
}

fn tenant_record(item: &Item) -> StoreResult<TenantRecord> {
    let f = Fields::new(item);
    let status = f.s("status")?;
    Ok(TenantRecord {
        tenant_key: f.s("tenant_key")?,
        status: TenantStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            key: format!("tenant {}", f.s("tenant_key").unwrap_or_default()),
            reason: "unknown status".to_owned(),
        })?,
        status_at: f.n("status_at")?,
        installed_at: f.opt_n("installed_at")?,
        installer_open_id: f.opt_s("installer_open_id")?,
        last_error: f.opt_s("last_error")?,
        updated_at: f.n("updated_at")?,
    })
}

#[async_trait]
impl TenantStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn get_tenant(
        &self,
        app_id: &str,
        tenant_key: &str,
    ) -> StoreResult<Option<TenantRecord>> {
        self.get(keys::tenants_pk(app_id), tenant_key, "get tenant")
            .await?
            .as_ref()
            .map(tenant_record)
            .transpose()
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn ensure_tenant(
        &self,
        app_id: &str,
        tenant_key: &str,
        now: EpochMillis,
    ) -> StoreResult<TenantRecord> {
        let mut item = Self::key(keys::tenants_pk(app_id), tenant_key);
        item.insert("tenant_key".into(), s(tenant_key));
        item.insert("status".into(), s(TenantStatus::Active.as_str()));
        item.insert("status_at".into(), n(0));
        item.insert("updated_at".into(), n(now));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item.clone()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => tenant_record(&item),
            Err(e) if is_condition_failed(&e) => self
                .get_tenant(app_id, tenant_key)
                .await?
                .ok_or_else(|| StoreError::Conflict("tenant record vanished".into())),
            Err(e) => Err(store_error("ensure tenant", e)),
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn set_tenant_status(
        &self,
        app_id: &str,
        tenant_key: &str,
        status: TenantStatus,
        event_at: EpochMillis,
        installed: Option<&str>,
        now: EpochMillis,
    ) -> StoreResult<bool> {
        let mut expr = super::Expr::default();
        let mut sets = vec![
            format!(
                "{} = {}",
                expr.name("tenant_key"),
                expr.value(s(tenant_key))
            ),
            format!(
                "{} = {}",
                expr.name("status"),
                expr.value(s(status.as_str()))
            ),
            format!("{} = {}", expr.name("status_at"), expr.value(n(event_at))),
            format!("{} = {}", expr.name("updated_at"), expr.value(n(now))),
        ];
        if let Some(installer) = installed {
            sets.push(format!(
                "{} = {}",
                expr.name("installed_at"),
                expr.value(n(event_at))
            ));
            if !installer.is_empty() {
                sets.push(format!(
                    "{} = {}",
                    expr.name("installer_open_id"),
                    expr.value(s(installer))
                ));
            }
        }
        let condition = format!(
            "attribute_not_exists({pk}) OR {at} < {value}",
            pk = expr.name(PK),
            at = expr.name("status_at"),
            value = expr.value(n(event_at)),
        );
        let result = self
            .conditional_update(
                keys::tenants_pk(app_id),
                tenant_key,
                format!("SET {}", sets.join(", ")),
                condition,
                expr,
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("set tenant status", e)),
        }
    }

    #[tracing::instrument(level = "debug", skip(self, error))]
    async fn note_tenant_error(
        &self,
        app_id: &str,
        tenant_key: &str,
        error: &str,
        now: EpochMillis,
    ) -> StoreResult<()> {
        let mut expr = super::Expr::default();
        let update = format!(
            "SET {} = {}, {} = {}",
            expr.name("last_error"),
            expr.value(s(crate::store::truncate_error(error))),
            expr.name("updated_at"),
            expr.value(n(now)),
        );
        let condition = format!("attribute_exists({})", expr.name(PK));
        match self
            .conditional_update(
                keys::tenants_pk(app_id),
                tenant_key,
                update,
                condition,
                expr,
            )
            .send()
            .await
        {
            // A tenant never seen has no record to note on.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("note tenant error", e)),
            Ok(_) => Ok(()),
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_tenants(&self, app_id: &str) -> StoreResult<Vec<TenantRecord>> {
        self.query_partition(keys::tenants_pk(app_id), "", "list tenants")
            .await?
            .iter()
            .map(tenant_record)
            .collect()
    }
}
