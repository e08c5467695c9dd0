//! A store app's tenants (`FEISHU_APP_TYPE=store`, docs/store-apps.md): the tenant an inbound
//! request is for, the lifecycle events that start, stop and uninstall the app in a tenant, and
//! the gate every request and job passes (a stopped or uninstalled tenant gets no Open API call).
//!
//! Lifecycle events are schema 1.0 (`event.type`; store-apps.md §2): `app_open` (first install),
//! `app_status_change` (`start_by_tenant`, `stop_by_tenant`, `stop_by_platform`),
//! `app_uninstalled`. Feishu retries 1.0 events for about 7 h, so a status event applies only when
//! it was sent after the last one applied (its `ts`).

use crate::feishu::TenantKey;
use crate::store::{EpochMillis, StoreResult, TenantStatus, TenantStore};
use crate::webhook::{EventSchema, OtherEvent};

/// A tenant's lifecycle event, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEvent {
    /// `event.tenant_key`.
    pub tenant: TenantKey,
    /// The status it sets.
    pub status: TenantStatus,
    /// When Feishu sent it: the envelope's `ts` (seconds with a fraction) in epoch ms. A retry
    /// is taken to keep its first delivery's `ts` (unconfirmed: the 1.0 envelope's `ts` is
    /// documented only as the send time); were it restamped, a late retry would be applied as
    /// if sent then, which is the order Feishu sent it in.
    pub sent_at: EpochMillis,
    /// `Some(installer open_id, may be empty)` for `app_open`.
    pub installed_by: Option<String>,
}

/// A lifecycle event's `ts` may run at most this far ahead of the receiver's clock (a day): one
/// stamped far in the future would freeze its tenant's status.
pub const MAX_TS_AHEAD_MS: EpochMillis = 24 * 3_600_000;

/// The lifecycle event `event` is, if it is one; an error naming the problem for one that is
/// malformed (another app's, no or a hostile `tenant_key`, an unknown status, no `ts` or one more
/// than [`MAX_TS_AHEAD_MS`] ahead of `received_at`).
pub fn lifecycle_event(
    event: &OtherEvent,
    app_id: &str,
    received_at: EpochMillis,
) -> Option<Result<LifecycleEvent, String>> {
    if event.schema != EventSchema::V1 {
        return None;
    }
    let body = event.raw.get("event")?;
    let str_at = |path: &str| body.pointer(path).and_then(serde_json::Value::as_str);
    let (status, installed_by) = match event.event_type.as_str() {
        "app_open" => {
            let installer = str_at("/installer/open_id")
                .or_else(|| str_at("/installer_employee/open_id"))
                .unwrap_or_default();
            (Some(TenantStatus::Active), Some(installer.to_owned()))
        }
        "app_status_change" => (
            match str_at("/status") {
                Some("start_by_tenant") => Some(TenantStatus::Active),
                Some("stop_by_tenant") => Some(TenantStatus::StoppedByTenant),
                Some("stop_by_platform") => Some(TenantStatus::StoppedByPlatform),
                _ => None,
            },
            None,
        ),
        "app_uninstalled" => (Some(TenantStatus::Uninstalled), None),
        _ => return None,
    };
    Some((|| {
        if str_at("/app_id") != Some(app_id) {
            return Err(format!("{} event of another app", event.event_type));
        }
        let status = status.ok_or("app_status_change with an unknown status")?;
        let tenant = TenantKey::new(str_at("/tenant_key").unwrap_or_default())
            .map_err(|e| format!("{} event: {e}", event.event_type))?;
        let installed_by = installed_by.map(|id| {
            let well_formed = crate::cards::text::FeishuId::OpenId.is_valid(&id);
            if well_formed {
                id
            } else {
                String::new()
            }
        });
        let sent_at = sent_at(&event.raw)
            .ok_or_else(|| format!("{} event without a `ts`", event.event_type))?;
        if sent_at > received_at.saturating_add(MAX_TS_AHEAD_MS) {
            return Err(format!("{} event stamped in the future", event.event_type));
        }
        Ok(LifecycleEvent {
            tenant,
            status,
            sent_at,
            installed_by,
        })
    })())
}

/// The 1.0 envelope's `ts` ("1603977298.000000", seconds) in epoch ms.
fn sent_at(envelope: &serde_json::Value) -> Option<EpochMillis> {
    let ts = envelope.get("ts")?;
    let seconds = match ts {
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        serde_json::Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    (seconds.is_finite() && seconds > 0.0).then(|| (seconds * 1000.0).round() as EpochMillis)
}

/// Applies `event` to the tenant's record; answers whether it applied (a late one does not).
pub async fn apply<S: TenantStore + ?Sized>(
    store: &S,
    app_id: &str,
    event: &LifecycleEvent,
    now: EpochMillis,
) -> StoreResult<bool> {
    store
        .set_tenant_status(
            app_id,
            event.tenant.as_str(),
            event.status,
            event.sent_at,
            event.installed_by.as_deref(),
            now,
        )
        .await
}

/// Where `tenant` stands for a request or job now: its record's status; a tenant never seen is
/// created active (the app was installed before this deployment kept tenants; store-apps.md §7).
pub async fn status<S: TenantStore + ?Sized>(
    store: &S,
    app_id: &str,
    tenant: &str,
    now: EpochMillis,
) -> StoreResult<TenantStatus> {
    match store.get_tenant(app_id, tenant).await? {
        Some(record) => Ok(record.status),
        None => Ok(store.ensure_tenant(app_id, tenant, now).await?.status),
    }
}

/// How long an instance trusts a tenant's status it read: a stop reaches every other instance
/// within this long (the instance that receives the lifecycle event applies it at once), and a
/// burst of one tenant's requests reads the table once per this long, not once per request.
pub const STATUS_CACHE_MS: EpochMillis = 1_000;

/// The tenants' statuses one instance read, each trusted for [`STATUS_CACHE_MS`].
#[derive(Debug, Default)]
pub struct StatusCache {
    read: std::sync::Mutex<std::collections::HashMap<String, (EpochMillis, TenantStatus)>>,
}

impl StatusCache {
    /// [`status`], from this instance's copy when it is younger than [`STATUS_CACHE_MS`].
    pub async fn status<S: TenantStore + ?Sized>(
        &self,
        store: &S,
        app_id: &str,
        tenant: &str,
        now: EpochMillis,
    ) -> StoreResult<TenantStatus> {
        let cached = self.lock().get(tenant).copied();
        if let Some((read_at, status)) = cached {
            if (read_at..read_at + STATUS_CACHE_MS).contains(&now) {
                return Ok(status);
            }
        }
        let status = status(store, app_id, tenant, now).await?;
        self.lock().insert(tenant.to_owned(), (now, status));
        Ok(status)
    }

    /// Forgets `tenant`'s copy (this instance applied a lifecycle event of it).
    pub fn forget(&self, tenant: &str) {
        self.lock().remove(tenant);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (EpochMillis, TenantStatus)>>
    {
        self.read.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a store app does not serve a request's or job's tenant.
#[derive(Debug)]
pub enum Refused {
    /// No `tenant_key`, or one that is not a key (the reason).
    NoTenant(String),
    /// The tenant stopped or uninstalled the app.
    NotActive(TenantKey, TenantStatus),
    /// The tenant's status could not be read now.
    Unreadable(TenantKey, crate::store::StoreError),
}

/// Which tenant a function serves a request or job for: `None` for a self-built app, a store
/// app's tenant while it is active. One per function instance (it holds the statuses it read).
#[derive(Debug)]
pub struct Gate {
    /// `FEISHU_APP_TYPE`.
    pub app_type: crate::feishu::AppType,
    /// `FEISHU_APP_ID`: whose tickets and tenants the table keeps (store mode).
    pub app_id: String,
    statuses: StatusCache,
}

impl Gate {
    /// The deployment's, from `config`.
    pub fn new(config: &crate::config::Config) -> Self {
        Self {
            app_type: config.app_type,
            app_id: config.app_id.clone().unwrap_or_default(),
            statuses: StatusCache::default(),
        }
    }

    /// Whether the deployment is a store app.
    pub fn is_store(&self) -> bool {
        self.app_type == crate::feishu::AppType::Store
    }

    /// The tenant `tenant_key` names, if a store app serves it now ([`StatusCache`]); `None` for
    /// a self-built app. A refusal is logged (a missing or malformed key also counted as
    /// rejected); the caller answers it.
    pub async fn admit<S: TenantStore + ?Sized>(
        &self,
        store: &S,
        tenant_key: Option<&str>,
        now: EpochMillis,
    ) -> Result<Option<TenantKey>, Refused> {
        if !self.is_store() {
            return Ok(None);
        }
        let tenant = match tenant_key.map(TenantKey::new) {
            Some(Ok(tenant)) => tenant,
            refused => {
                let reason = match refused {
                    Some(Err(reason)) => reason,
                    _ => "no tenant_key".to_owned(),
                };
                tracing::warn!(%reason, "store app: request without a well-formed tenant_key");
                crate::telemetry::rejected("bad tenant_key");
                return Err(Refused::NoTenant(reason));
            }
        };
        match self
            .statuses
            .status(store, &self.app_id, tenant.as_str(), now)
            .await
        {
            Ok(status) if status.is_active() => Ok(Some(tenant)),
            Ok(status) => {
                tracing::info!(tenant = %tenant, status = status.as_str(), "tenant not active: nothing sent");
                Err(Refused::NotActive(tenant, status))
            }
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "tenant status unreadable");
                Err(Refused::Unreadable(tenant, e))
            }
        }
    }

    /// Forgets this instance's copy of `tenant`'s status (it applied a lifecycle event of it).
    pub fn forget(&self, tenant: &str) {
        self.statuses.forget(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v1(event: serde_json::Value, ts: &str) -> OtherEvent {
        OtherEvent {
            schema: EventSchema::V1,
            event_type: event["type"].as_str().unwrap_or("").to_owned(),
            event_id: "u-1".into(),
            raw: json!({"ts": ts, "uuid": "u-1", "type": "event_callback", "event": event}),
        }
    }

    #[test]
    fn the_documented_lifecycle_events_read_with_their_send_time() {
        let open = v1(
            json!({"app_id": "cli_1", "tenant_key": "2ed263bf32cf1651", "type": "app_open",
                   "applicants": [{"open_id": "ou_a"}], "installer_employee": {"open_id": "ou_b"}}),
            "1603977298.000000",
        );
        let read = lifecycle_event(&open, "cli_1", 1_603_977_300_000)
            .unwrap()
            .unwrap();
        assert_eq!(read.tenant.as_str(), "2ed263bf32cf1651");
        assert_eq!(read.status, TenantStatus::Active);
        assert_eq!(read.sent_at, 1_603_977_298_000);
        assert_eq!(read.installed_by.as_deref(), Some("ou_b"));
        let stop = v1(
            json!({"app_id": "cli_1", "tenant_key": "t1", "type": "app_status_change",
                   "status": "stop_by_platform"}),
            "1603977300.250000",
        );
        let read = lifecycle_event(&stop, "cli_1", 1_603_977_300_000)
            .unwrap()
            .unwrap();
        assert_eq!(
            (read.status, read.sent_at),
            (TenantStatus::StoppedByPlatform, 1_603_977_300_250)
        );
        let gone = v1(
            json!({"app_id": "cli_1", "tenant_key": "t1", "type": "app_uninstalled"}),
            "77.5",
        );
        let read = lifecycle_event(&gone, "cli_1", 1_000_000).unwrap().unwrap();
        assert_eq!(
            (read.status, read.sent_at),
            (TenantStatus::Uninstalled, 77_500)
        );
    }

    #[test]
    fn malformed_lifecycle_events_name_the_problem_and_others_are_not_lifecycle() {
        let at = 2_000_000_000_000;
        let refused = |event: serde_json::Value, ts: &str| {
            lifecycle_event(&v1(event, ts), "cli_1", at)
                .unwrap()
                .unwrap_err()
        };
        let hostile = json!({"app_id": "cli_1", "tenant_key": "a#b", "type": "app_uninstalled"});
        assert!(refused(hostile, "1").contains("tenant_key"));
        let odd = json!({"app_id": "cli_1", "tenant_key": "t1", "type": "app_status_change",
                         "status": "paused"});
        assert!(refused(odd, "1").contains("unknown status"));
        let theirs = json!({"app_id": "cli_2", "tenant_key": "t1", "type": "app_uninstalled"});
        assert!(refused(theirs, "1").contains("another app"));
        let ours = json!({"app_id": "cli_1", "tenant_key": "t1", "type": "app_uninstalled"});
        assert!(refused(ours.clone(), "").contains("without a `ts`"));
        assert!(refused(ours, "99999999999").contains("future"));
        let ticket = v1(json!({"app_id": "cli_1", "type": "app_ticket"}), "1");
        assert!(lifecycle_event(&ticket, "cli_1", at).is_none());
    }
}
