//! Tenant access tokens: issuing them (`/auth/v3/tenant_access_token/internal`) and checking the
//! bearer token of every other Open API call.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::{Answer, ApiError};
use crate::crypto::random_hex;
use crate::state::{World, TENANT_TOKEN_RENEW_MS, TENANT_TOKEN_TTL_MS};
use crate::Shared;

/// Returns the current token, or a new one when less than 30 minutes remain; `(token, expire_secs)`.
pub(crate) fn issue_tenant_token(world: &mut World, now: i64) -> (String, i64) {
    if let Some(current) = world.current_token.clone() {
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
    world.current_token = Some(token.clone());
    (token, TENANT_TOKEN_TTL_MS / 1000)
}

/// `POST /auth/v3/tenant_access_token/internal`: flat answer; errors come with HTTP 200 (as Feishu does).
pub(super) fn tenant_access_token(sim: &Shared, body: &Bytes) -> Answer {
    let flat = |code: i64, msg: &str| Answer {
        status: StatusCode::OK,
        body: json!({"code": code, "msg": msg}),
        headers: Vec::new(),
    };
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return flat(10003, "invalid param");
    };
    let (Some(app_id), Some(secret)) = (
        req.get("app_id").and_then(Value::as_str),
        req.get("app_secret").and_then(Value::as_str),
    ) else {
        return flat(10003, "invalid param");
    };
    if app_id != sim.config.app_id {
        return flat(10003, "invalid param");
    }
    if secret != sim.config.app_secret {
        return flat(10014, "app secret invalid");
    }
    let now = sim.clock.now_ms();
    let (token, expire) = issue_tenant_token(&mut sim.world(), now);
    Answer {
        status: StatusCode::OK,
        body: json!({"code": 0, "msg": "ok", "tenant_access_token": token, "expire": expire}),
        headers: Vec::new(),
    }
}

pub(super) fn authorize(sim: &Shared, headers: &HeaderMap, now: i64) -> Result<(), ApiError> {
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
        Some(expires) if *expires > now => Ok(()),
        _ => Err(ApiError::invalid_token()),
    }
}
