//! Tenant access tokens: issuing them (`/auth/v3/tenant_access_token/internal`) and checking the
//! bearer token of every other Open API call.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::{Answer, ApiError};
use std::sync::Arc;

use crate::state::World;
use crate::store_app::{issue_tenant_token_of, SimAppType, TenantStatus};
use crate::Shared;

/// The configured tenant's current token, or a new one when less than 30 minutes remain;
/// `(token, expire_secs)`.
pub(crate) fn issue_tenant_token(sim: &Shared, world: &mut World, now: i64) -> (String, i64) {
    issue_tenant_token_of(world, &sim.config.tenant_key, now)
}

fn flat(code: i64, msg: &str) -> Answer {
    Answer {
        status: StatusCode::OK,
        body: json!({"code": code, "msg": msg}),
        headers: Vec::new(),
    }
}

/// `POST /auth/v3/app_ticket/resend` `{app_id, app_secret}`: a store app's ticket is pushed to
/// the connected event URL after `SimConfig::ticket_resend_delay`; a self-built app gets 10016.
pub(super) fn app_ticket_resend(sim: &Arc<Shared>, body: &Bytes) -> Answer {
    if let Err(answer) = check_app(sim, body) {
        return answer;
    }
    if sim.config.app_type != SimAppType::Store {
        return flat(
            10016,
            "app resend fail: self-built apps cannot ask for an app ticket",
        );
    }
    sim.world().store_app.resends.push(sim.clock.now_ms());
    let sim = sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(sim.config.ticket_resend_delay).await;
        let url = sim.world().bot_urls.as_ref().map(|b| b.event_url.clone());
        if let Some(url) = url {
            crate::delivery::app_ticket(&sim, &url).await;
        }
    });
    flat(0, "success")
}

/// The body's `app_id` and `app_secret` name this app: the parsed body, else the flat error.
fn check_app(sim: &Shared, body: &Bytes) -> Result<Value, Answer> {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return Err(flat(10003, "invalid param"));
    };
    let (Some(app_id), Some(secret)) = (
        req.get("app_id").and_then(Value::as_str),
        req.get("app_secret").and_then(Value::as_str),
    ) else {
        return Err(flat(10003, "invalid param"));
    };
    if app_id != sim.config.app_id {
        return Err(flat(10003, "invalid param"));
    }
    if secret != sim.config.app_secret {
        return Err(flat(10014, "app secret invalid"));
    }
    Ok(req)
}

/// `POST /auth/v3/app_access_token` `{app_id, app_secret, app_ticket}` (store app): 10012 for a
/// ticket never pushed or older than 3 h.
pub(super) fn app_access_token(sim: &Shared, body: &Bytes) -> Answer {
    let req = match check_app(sim, body) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    if sim.config.app_type != SimAppType::Store {
        return flat(10003, "invalid param: not a store app");
    }
    let now = sim.clock.now_ms();
    let mut world = sim.world();
    let ticket = req.get("app_ticket").and_then(Value::as_str).unwrap_or("");
    if !world.store_app.ticket_valid(ticket, now) {
        return flat(10012, "get app access token fail: app ticket is invalid");
    }
    let (token, expire) = world.store_app.issue_app_token(now);
    Answer {
        status: StatusCode::OK,
        body: json!({"code": 0, "msg": "success", "app_access_token": token, "expire": expire}),
        headers: Vec::new(),
    }
}

/// `POST /auth/v3/tenant_access_token` `{app_access_token, tenant_key}` (store app): 99991664 for
/// an app token that is not valid, 10013 for a tenant that never installed the app, 99991673 for
/// a stopped or uninstalled one.
pub(super) fn store_tenant_access_token(sim: &Shared, body: &Bytes) -> Answer {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return flat(10003, "invalid param");
    };
    let (Some(app_token), Some(tenant)) = (
        req.get("app_access_token").and_then(Value::as_str),
        req.get("tenant_key").and_then(Value::as_str),
    ) else {
        return flat(10003, "invalid param");
    };
    let now = sim.clock.now_ms();
    let mut world = sim.world();
    if sim.config.app_type != SimAppType::Store || !world.store_app.app_token_valid(app_token, now)
    {
        return flat(99991664, "invalid app access token");
    }
    match sim.tenant_status_in(&world, tenant) {
        None => return flat(10013, "get tenant access token fail: tenant not found"),
        Some(TenantStatus::Active) => {}
        Some(_) => {
            return flat(
                99991673,
                "unauthorized app: check the app's install status in the tenant",
            )
        }
    }
    let (token, expire) = issue_tenant_token_of(&mut world, tenant, now);
    Answer {
        status: StatusCode::OK,
        body: json!({"code": 0, "msg": "success", "tenant_access_token": token, "expire": expire}),
        headers: Vec::new(),
    }
}

/// `POST /auth/v3/tenant_access_token/internal`: flat answer; errors come with HTTP 200 (as Feishu does).
pub(super) fn tenant_access_token(sim: &Shared, body: &Bytes) -> Answer {
    if let Err(answer) = check_app(sim, body) {
        return answer;
    }
    if sim.config.app_type == SimAppType::Store {
        // A store app has no internal token: it must use its ticket (simulator's strictness).
        return flat(
            10003,
            "invalid param: a store app gets tokens from its app_ticket",
        );
    }
    let now = sim.clock.now_ms();
    let (token, expire) = issue_tenant_token(sim, &mut sim.world(), now);
    Answer {
        status: StatusCode::OK,
        body: json!({"code": 0, "msg": "ok", "tenant_access_token": token, "expire": expire}),
        headers: Vec::new(),
    }
}

/// The tenant whose valid token the call carries; else the answer Feishu gives.
pub(super) fn authorize(sim: &Shared, headers: &HeaderMap, now: i64) -> Result<String, ApiError> {
    let raw = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    let token = match raw.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        Some(_) => "",
        None if raw.eq_ignore_ascii_case("bearer") => "",
        None => raw,
    };
    if token.is_empty() {
        return Err(ApiError::biz(
            99991661,
            "Missing access token for authorization. Please make a request with token attached.",
        ));
    }
    if !token.starts_with("t-") && !token.starts_with("u-") {
        return Err(ApiError::biz(
            99991671,
            "Invalid token format. The token must start with \"t-\" or \"u-\".",
        ));
    }
    let world = sim.world();
    match world.tenant_tokens.get(token) {
        Some(expires) if *expires > now => Ok(world
            .token_tenants
            .get(token)
            .cloned()
            .unwrap_or_else(|| sim.config.tenant_key.clone())),
        _ => Err(ApiError::invalid_token()),
    }
}
