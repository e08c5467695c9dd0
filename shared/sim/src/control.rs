//! The `/_sim/...` JSON control API: the handle's methods for tests running in another process.
//!
//! | method and path | body → answer |
//! |---|---|
//! | `GET /_sim/config` | → app_id, tenant_key, user ids, chat ids, `encrypted` (never secrets) |
//! | `GET /_sim/clock` | → `{now_ms}` |
//! | `POST /_sim/clock/advance` | `{seconds?, millis?}` → `{now_ms}` |
//! | `GET /_sim/chats/:chat_id/messages` | → `{items: [ChatMessage]}` |
//! | `GET /_sim/messages/:message_id/card` | → `CardSnapshot` (card, text, history, streaming) |
//! | `GET /_sim/cards/:card_id` | → `CardSnapshot` of a CardKit entity |
//! | `GET` / `DELETE /_sim/calls` | → `{items: [ApiCall]}` / clears the log |
//! | `GET /_sim/call_rates` | → `CallRates`: the busiest windows of the call log |
//! | `GET /_sim/deliveries` | → `{items: [Delivery]}` |
//! | `POST` / `DELETE /_sim/faults` | `FaultSpec` (`{"method":"POST","path":"/open-apis/im/v1/messages","count":1,"kind":{"type":"rate_limited","reset_secs":2}}`) / clears |
//! | `PUT /_sim/rate_limits` | `{"app_per_second":50,"api_per_minute":1000,"chat_per_second":5,"card_writes_per_second":10}` (a missing field keeps Feishu's value, null disables) |
//! | `GET /_sim/update_tokens/:token` | → `UpdateTokenInfo` |
//! | `GET` / `POST /_sim/users` | → / `{count}` → `{items: [SimUser]}`: the tenant's users / adds `count` (each with a p2p chat) |
//! | `POST /_sim/user/message` | `{url, chat: "p2p"\|"group", text, open_id?}` → `Delivery` (from `open_id`, default the configured user) |
//! | `POST /_sim/user/click` | `{url, message_id, value, legacy?, open_id?}` → `CallbackDelivery` |
//! | `POST /_sim/url_verification` | `{url, challenge}` → `Delivery` |
//! | `POST /_sim/users` with `tenant` | `{count, tenant}` → `{items}`: users of another tenant (store app) |
//! | `POST /_sim/app_ticket` | `{url}` → `Delivery`: pushes a new `app_ticket` (store app) |
//! | `POST /_sim/tenants/:tenant_key/install\|start\|stop\|uninstall` | `{url}` → `Delivery`: the tenant's lifecycle event, its status changed |

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::delivery::{self, ChatKind};
use super::limits::CallRates;
use super::state::{FaultSpec, RateLimits, SimUser};
use super::{to_json, Shared};

#[derive(Deserialize)]
struct Advance {
    #[serde(default)]
    seconds: u64,
    #[serde(default)]
    millis: u64,
}

#[derive(Deserialize)]
struct UserMessage {
    url: String,
    #[serde(default = "p2p")]
    chat: ChatKind,
    text: String,
    /// Who sends it; `None`: the configured user.
    #[serde(default)]
    open_id: Option<String>,
}

#[derive(Deserialize)]
struct AddUsers {
    count: usize,
    /// Users of another tenant (a store app's); `None`: the configured tenant's.
    #[serde(default)]
    tenant: Option<String>,
}

#[derive(Deserialize)]
struct Url {
    url: String,
}

/// Most users one `POST /_sim/users` adds.
const MAX_ADDED_USERS: usize = 10_000;

fn p2p() -> ChatKind {
    ChatKind::P2p
}

#[derive(Deserialize)]
struct Click {
    url: String,
    message_id: String,
    value: Value,
    #[serde(default)]
    legacy: bool,
    #[serde(default)]
    open_id: Option<String>,
}

#[derive(Deserialize)]
struct Challenge {
    url: String,
    challenge: String,
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn bad(msg: impl std::fmt::Display) -> Response {
    reply(StatusCode::BAD_REQUEST, json!({"error": msg.to_string()}))
}

/// The user acting: `open_id`'s, or the configured user when it is absent.
fn acting_user(sim: &Shared, open_id: Option<&str>) -> Result<SimUser, String> {
    match open_id {
        None => Ok(sim.config.user()),
        Some(id) => sim
            .user(id)
            .ok_or_else(|| format!("no user {id}; add users with POST /_sim/users")),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Routes `/_sim/...` (table above).
pub(crate) async fn handle(sim: Arc<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let segs: Vec<&str> = uri.path().trim_start_matches("/_sim/").split('/').collect();
    let now = sim.clock.now_ms();
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["config"]) => {
            let c = &sim.config;
            reply(
                StatusCode::OK,
                json!({
                    "base_url": sim.base_url, "app_id": c.app_id, "tenant_key": c.tenant_key,
                    "encrypted": c.encrypt_key.is_some(), "user_open_id": c.user_open_id,
                    "user_union_id": c.user_union_id, "user_id": c.user_id, "bot_open_id": c.bot_open_id,
                    "p2p_chat_id": c.p2p_chat_id, "group_chat_id": c.group_chat_id,
                }),
            )
        }
        ("GET", ["clock"]) => reply(StatusCode::OK, json!({"now_ms": now})),
        ("POST", ["clock", "advance"]) => match parse::<Advance>(&body) {
            Ok(a) => {
                sim.clock
                    .advance(Duration::from_secs(a.seconds) + Duration::from_millis(a.millis));
                reply(StatusCode::OK, json!({"now_ms": sim.clock.now_ms()}))
            }
            Err(e) => bad(e),
        },
        ("GET", ["chats", chat_id, "messages"]) => {
            let world = sim.world();
            let list: Vec<Value> = world
                .messages
                .iter()
                .filter(|m| m.msg.chat_id == *chat_id)
                .map(|m| to_json(&m.msg))
                .collect();
            reply(StatusCode::OK, json!({ "items": list }))
        }
        ("GET", ["messages", id, "card"]) => match sim.world().snapshot_message_card(id, now) {
            Some(c) => reply(StatusCode::OK, to_json(&c)),
            None => reply(
                StatusCode::NOT_FOUND,
                json!({"error": "no such card message"}),
            ),
        },
        ("GET", ["cards", id]) => match sim.world().snapshot_entity(id, now) {
            Some(c) => reply(StatusCode::OK, to_json(&c)),
            None => reply(
                StatusCode::NOT_FOUND,
                json!({"error": "no such card entity"}),
            ),
        },
        ("GET", ["calls"]) => reply(
            StatusCode::OK,
            json!({"items": to_json(&sim.world().calls)}),
        ),
        ("DELETE", ["calls"]) => {
            sim.world().calls.clear();
            reply(StatusCode::OK, json!({}))
        }
        ("GET", ["call_rates"]) => {
            reply(StatusCode::OK, to_json(&CallRates::of(&sim.world().calls)))
        }
        ("GET", ["deliveries"]) => reply(
            StatusCode::OK,
            json!({"items": to_json(&sim.world().deliveries)}),
        ),
        ("POST", ["faults"]) => match parse::<FaultSpec>(&body) {
            Ok(f) => {
                sim.world().faults.push(f);
                reply(StatusCode::OK, json!({}))
            }
            Err(e) => bad(e),
        },
        ("DELETE", ["faults"]) => {
            sim.world().faults.clear();
            reply(StatusCode::OK, json!({}))
        }
        ("PUT", ["rate_limits"]) => match parse::<RateLimits>(&body) {
            Ok(l) => {
                sim.world().rate_limits = l;
                reply(StatusCode::OK, json!({}))
            }
            Err(e) => bad(e),
        },
        ("GET", ["update_tokens", token]) => match sim.world().update_tokens.get(*token) {
            Some(t) => reply(StatusCode::OK, to_json(t)),
            None => reply(
                StatusCode::NOT_FOUND,
                json!({"error": "no such update token"}),
            ),
        },
        ("GET", ["users"]) => reply(StatusCode::OK, json!({ "items": to_json(&sim.users()) })),
        ("POST", ["users"]) => match parse::<AddUsers>(&body) {
            Ok(a) if a.count <= MAX_ADDED_USERS => {
                let added = match &a.tenant {
                    Some(tenant) => sim.add_tenant_users(tenant, a.count),
                    None => sim.add_users(a.count),
                };
                reply(StatusCode::OK, json!({ "items": to_json(&added) }))
            }
            Ok(_) => bad(format!("count is at most {MAX_ADDED_USERS}")),
            Err(e) => bad(e),
        },
        ("POST", ["user", "message"]) => match parse::<UserMessage>(&body) {
            Ok(m) => match acting_user(&sim, m.open_id.as_deref()) {
                Ok(user) => {
                    let d = delivery::user_message(&sim, &m.url, &user, m.chat, &m.text).await;
                    reply(StatusCode::OK, to_json(&d))
                }
                Err(e) => bad(e),
            },
            Err(e) => bad(e),
        },
        ("POST", ["user", "click"]) => match parse::<Click>(&body) {
            Ok(c) => {
                let user = match acting_user(&sim, c.open_id.as_deref()) {
                    Ok(user) => user,
                    Err(e) => return bad(e),
                };
                match delivery::card_callback(&sim, &c.url, &user, &c.message_id, c.value, c.legacy)
                    .await
                {
                    Ok(d) => reply(StatusCode::OK, to_json(&d)),
                    Err(e) => bad(e),
                }
            }
            Err(e) => bad(e),
        },
        ("POST", ["url_verification"]) => match parse::<Challenge>(&body) {
            Ok(c) => {
                let d = delivery::url_verification(&sim, &c.url, &c.challenge).await;
                reply(StatusCode::OK, to_json(&d))
            }
            Err(e) => bad(e),
        },
        ("POST", ["app_ticket"]) => match parse::<Url>(&body) {
            Ok(u) => reply(
                StatusCode::OK,
                to_json(&delivery::app_ticket(&sim, &u.url).await),
            ),
            Err(e) => bad(e),
        },
        ("POST", ["tenants", tenant, word]) => {
            match (
                crate::store_app::LifecycleChange::parse(word),
                parse::<Url>(&body),
            ) {
                (Some(change), Ok(u)) => {
                    let d = crate::store_app::change_tenant(&sim, &u.url, tenant, change).await;
                    reply(StatusCode::OK, to_json(&d))
                }
                (None, _) => bad("expected install, start, stop or uninstall"),
                (_, Err(e)) => bad(e),
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            json!({"error": "unknown control path"}),
        ),
    }
}
