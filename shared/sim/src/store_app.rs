//! Store apps (商店应用): many tenants, and the store-app auth (`app_ticket` pushes and resends,
//! `app_access_token`, one `tenant_access_token` per `tenant_key`), plus the tenant lifecycle
//! events. The contract is `docs/simulator.md#store-apps`; codes from Feishu's generic error page
//! (10012, 10016, 10034, 99991664, 99991673), 10013 for an unknown tenant is the simulator's choice
//! (unconfirmed which code Feishu gives).

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::crypto::random_hex;
use crate::state::{World, TENANT_TOKEN_RENEW_MS, TENANT_TOKEN_TTL_MS};

/// Which kind of app the simulated Feishu serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimAppType {
    /// 企业自建应用: one tenant, `tenant_access_token/internal`.
    #[default]
    SelfBuilt,
    /// 商店应用: tenants install it; tokens from pushed tickets.
    Store,
}

/// A ticket is valid 3 h after it was pushed (questions-related-to-isv).
pub const APP_TICKET_VALID_MS: i64 = 3 * 3_600_000;
/// An app_access_token lives 2 h, renewed under 30 min as the tenant token is.
pub const APP_TOKEN_TTL_MS: i64 = TENANT_TOKEN_TTL_MS;

/// A tenant's state as Feishu knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// Installed and enabled.
    Active,
    /// `stop_by_tenant` (an admin stopped the app).
    StoppedByTenant,
    /// `stop_by_platform`.
    StoppedByPlatform,
    /// `app_uninstalled`.
    Uninstalled,
}

/// The store app's side of the world.
#[derive(Debug, Default)]
pub(crate) struct StoreWorld {
    /// Pushed tickets and when (sim ms).
    pub tickets: Vec<(String, i64)>,
    /// app_access_token → expiry (sim ms).
    pub app_tokens: HashMap<String, i64>,
    pub current_app_token: Option<String>,
    /// Every `app_ticket/resend` call (sim ms).
    pub resends: Vec<i64>,
    /// Tenants that installed the app; the configured tenant is active unless set here.
    pub tenants: HashMap<String, TenantStatus>,
}

impl StoreWorld {
    /// A new ticket pushed at `now`.
    pub fn new_ticket(&mut self, now: i64) -> String {
        let ticket = format!("tk-{}", random_hex(16));
        self.tickets.push((ticket.clone(), now));
        ticket
    }

    /// Whether `ticket` was pushed and is still valid at `now`.
    pub fn ticket_valid(&self, ticket: &str, now: i64) -> bool {
        self.tickets
            .iter()
            .any(|(t, at)| t == ticket && now < at + APP_TICKET_VALID_MS)
    }

    /// The current app token, or a new one when less than 30 minutes remain; `(token, expire_secs)`.
    pub fn issue_app_token(&mut self, now: i64) -> (String, i64) {
        if let Some(current) = self.current_app_token.clone() {
            if let Some(expires) = self.app_tokens.get(&current).copied() {
                if expires - now >= TENANT_TOKEN_RENEW_MS {
                    return (current, (expires - now) / 1000);
                }
            }
        }
        let token = format!("a-{}", random_hex(20));
        self.app_tokens
            .insert(token.clone(), now + APP_TOKEN_TTL_MS);
        self.current_app_token = Some(token.clone());
        (token, APP_TOKEN_TTL_MS / 1000)
    }

    pub fn app_token_valid(&self, token: &str, now: i64) -> bool {
        self.app_tokens.get(token).is_some_and(|e| *e > now)
    }
}

/// The current tenant token of `tenant`, or a new one when less than 30 minutes remain;
/// `(token, expire_secs)`.
pub(crate) fn issue_tenant_token_of(world: &mut World, tenant: &str, now: i64) -> (String, i64) {
    if let Some(current) = world.current_tokens.get(tenant).cloned() {
        if let Some(expires) = world.tenant_tokens.get(&current).copied() {
            if expires - now >= TENANT_TOKEN_RENEW_MS {
                return (current, (expires - now) / 1000);
            }
        }
    }
    let token = format!("t-{}", random_hex(20));
    world
        .tenant_tokens
        .insert(token.clone(), now + TENANT_TOKEN_TTL_MS);
    world.token_tenants.insert(token.clone(), tenant.to_owned());
    world
        .current_tokens
        .insert(tenant.to_owned(), token.clone());
    (token, TENANT_TOKEN_TTL_MS / 1000)
}

/// The 1.0 envelope of a store-app event, as Feishu pushes it (`ts` in seconds with a fraction).
pub(crate) fn v1_envelope(verification_token: &str, now_ms: i64, event: Value) -> Value {
    json!({
        "ts": format!("{}.{:03}", now_ms / 1000, now_ms % 1000),
        "uuid": random_hex(16),
        "token": verification_token,
        "type": "event_callback",
        "event": event,
    })
}

/// The lifecycle event of a tenant's change, as Feishu words it ([D-open], [D-status], [D-uninst]).
pub(crate) fn lifecycle_event(
    app_id: &str,
    tenant_key: &str,
    change: LifecycleChange,
    operator_open_id: &str,
) -> Value {
    match change {
        LifecycleChange::Install => json!({
            "app_id": app_id, "tenant_key": tenant_key, "type": "app_open",
            "applicants": [{"open_id": operator_open_id}],
            "installer": {"open_id": operator_open_id},
        }),
        LifecycleChange::Start => json!({
            "app_id": app_id, "tenant_key": tenant_key, "type": "app_status_change",
            "status": "start_by_tenant",
            "operator": {"open_id": operator_open_id, "user_id": "", "union_id": ""},
        }),
        LifecycleChange::Stop => json!({
            "app_id": app_id, "tenant_key": tenant_key, "type": "app_status_change",
            "status": "stop_by_tenant",
        }),
        LifecycleChange::Uninstall => json!({
            "app_id": app_id, "tenant_key": tenant_key, "type": "app_uninstalled",
        }),
    }
}

/// What happens to a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleChange {
    /// `app_open`: first install.
    Install,
    /// `app_status_change` `start_by_tenant`.
    Start,
    /// `app_status_change` `stop_by_tenant`.
    Stop,
    /// `app_uninstalled`.
    Uninstall,
}

impl LifecycleChange {
    /// The tenant's status after the change.
    pub fn status(self) -> TenantStatus {
        match self {
            Self::Install | Self::Start => TenantStatus::Active,
            Self::Stop => TenantStatus::StoppedByTenant,
            Self::Uninstall => TenantStatus::Uninstalled,
        }
    }
}

/// The 1.0 lifecycle event of `change` for `tenant`, stamped now (the installer or operator: the
/// tenant's first user, else the configured one).
pub(crate) fn stamped_event(sim: &crate::Shared, tenant: &str, change: LifecycleChange) -> Value {
    let cfg = &sim.config;
    let operator = sim
        .world()
        .user_tenants
        .iter()
        .filter(|(_, t)| t.as_str() == tenant)
        .map(|(open_id, _)| open_id.clone())
        .min()
        .unwrap_or_else(|| cfg.user_open_id.clone());
    v1_envelope(
        &cfg.verification_token,
        sim.clock.now_ms(),
        lifecycle_event(&cfg.app_id, tenant, change, &operator),
    )
}

/// `tenant`'s status changes now and the event is pushed to `url`.
pub(crate) async fn change_tenant(
    sim: &crate::Shared,
    url: &str,
    tenant: &str,
    change: LifecycleChange,
) -> crate::state::Delivery {
    let event = stamped_event(sim, tenant, change);
    sim.world()
        .store_app
        .tenants
        .insert(tenant.to_owned(), change.status());
    crate::delivery::post_event(sim, url, "event", &event, None).await
}

impl LifecycleChange {
    /// From the control API's path word: `install`, `start`, `stop`, `uninstall`.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "install" => Some(Self::Install),
            "start" => Some(Self::Start),
            "stop" => Some(Self::Stop),
            "uninstall" => Some(Self::Uninstall),
            _ => None,
        }
    }
}

/// How long after a resend the simulator pushes a ticket (Feishu: "最长 2 分钟").
pub const DEFAULT_RESEND_DELAY: Duration = Duration::from_secs(60);
