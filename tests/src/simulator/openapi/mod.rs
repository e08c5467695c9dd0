//! The Open API endpoints: auth, im messages, delayed card update, CardKit v1, with Feishu's checks and codes.
//!
//! This file owns the routing, injected faults, the error and answer types and the request helpers
//! the endpoints share; the endpoints are in `auth`, `im`, `delayed_update` and `cardkit`.

mod auth;
mod cardkit;
mod delayed_update;
mod im;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::card::CardRuleError;
use super::crypto::random_hex;
use super::state::*;
use super::{control, Shared};

use auth::{authorize, tenant_access_token};
use cardkit::{card_write, create_card, id_convert};
use delayed_update::delayed_update;
use im::{patch_message, send_message};

pub(crate) use auth::issue_tenant_token;

/// A Feishu error answer: HTTP status, `code`, `msg`, extra headers and an optional `error` object.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: i64,
    pub msg: String,
    pub headers: Vec<(&'static str, String)>,
    pub error: Option<Value>,
}

impl ApiError {
    /// A business error: HTTP 400 with `code`.
    pub fn biz(code: i64, msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            msg: msg.into(),
            headers: Vec::new(),
            error: None,
        }
    }

    /// The gateway's parameter check (99992402 "field validation failed").
    pub fn field(field: &str, description: impl Into<String>) -> Self {
        let mut e = Self::biz(99992402, "field validation failed");
        e.error = Some(
            json!({"field_violations": [{"field": field, "description": description.into()}]}),
        );
        e
    }

    pub fn rate_limited(limit: u32, reset_secs: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: 99991400,
            msg: "request trigger frequency limit".into(),
            headers: vec![
                ("x-ogw-ratelimit-limit", limit.to_string()),
                ("x-ogw-ratelimit-reset", reset_secs.to_string()),
            ],
            error: None,
        }
    }

    /// An im card failure: 230099 with the card sub-code in `msg`, as Feishu words it.
    fn im_card(e: CardRuleError) -> Self {
        if e.code == 200860 {
            return Self::biz(230025, format!("content too long: {}", e.msg));
        }
        Self::biz(
            230099,
            format!(
                "Failed to create card content, ext=ErrCode: {}; ErrMsg: {};",
                e.code, e.msg
            ),
        )
    }

    fn invalid_token() -> Self {
        Self::biz(
            99991663,
            "Invalid access token for authorization. Please make a request with token attached.",
        )
    }
}

impl From<CardRuleError> for ApiError {
    fn from(e: CardRuleError) -> Self {
        Self::biz(e.code, e.msg)
    }
}

/// A complete JSON answer (success or error) before headers are added.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

impl From<ApiError> for Answer {
    fn from(e: ApiError) -> Self {
        let mut body = json!({"code": e.code, "msg": e.msg});
        if let Some(err) = e.error {
            body["error"] = err;
        }
        Answer {
            status: e.status,
            body,
            headers: e.headers,
        }
    }
}

type ApiResult = Result<Value, ApiError>;

fn success(data: Value) -> Value {
    json!({"code": 0, "msg": "success", "data": data})
}

fn logid() -> String {
    let now = chrono_like_stamp();
    format!("{now}{}", random_hex(10).to_uppercase())
}

/// `YYYYMMDDhhmmss`-shaped digits from real time, like Feishu's log ids (exact date is irrelevant).
fn chrono_like_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs:014}")
}

/// Entry point of every request on the simulator's port.
pub(crate) async fn handle(
    State(sim): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if path.starts_with("/_sim/") || path == "/_sim" {
        return control::handle(sim, method, uri, body).await;
    }
    let started = Instant::now();
    let at_ms = sim.clock.now_ms();
    let fault = take_fault(&sim, &method, &path);
    let answer: Option<Answer> = match fault {
        Some(FaultKind::Hang { millis }) => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            route(&sim, &method, &uri, &headers, &body)
        }
        Some(FaultKind::RateLimited { reset_secs }) => {
            let limit = sim.world().rate_limits.app_per_second.unwrap_or(50);
            Some(ApiError::rate_limited(limit, reset_secs).into())
        }
        Some(FaultKind::ServerError { status }) => Some(Answer {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: json!({"code": 2200, "msg": "Internal Error"}),
            headers: Vec::new(),
        }),
        Some(FaultKind::InvalidToken) => Some(ApiError::invalid_token().into()),
        None => route(&sim, &method, &uri, &headers, &body),
    };
    let (status, code, mut response) = match answer {
        Some(a) => {
            let code = a.body.get("code").and_then(Value::as_i64);
            let mut resp = (a.status, axum::Json(a.body)).into_response();
            for (k, v) in a.headers {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    resp.headers_mut().insert(k, v);
                }
            }
            (a.status, code, resp)
        }
        None => (
            StatusCode::NOT_FOUND,
            None,
            (StatusCode::NOT_FOUND, "404 page not found").into_response(),
        ),
    };
    if let Ok(v) = HeaderValue::from_str(&logid()) {
        response.headers_mut().insert("x-tt-logid", v);
    }
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or(path);
    sim.world().calls.push(ApiCall {
        method: method.as_str().to_owned(),
        path: path_and_query,
        body: String::from_utf8_lossy(&body).into_owned(),
        status: status.as_u16(),
        code,
        at_ms,
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    response
}

fn take_fault(sim: &Shared, method: &Method, path: &str) -> Option<FaultKind> {
    let mut world = sim.world();
    let idx = world.faults.iter().position(|f| {
        f.count > 0
            && f.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
            && path_matches(&f.path, path)
    })?;
    let fault = &mut world.faults[idx];
    fault.count -= 1;
    let kind = fault.kind.clone();
    if fault.count == 0 {
        world.faults.remove(idx);
    }
    Some(kind)
}

/// Dispatches to an endpoint; `None` is an unknown path (404).
fn route(
    sim: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Answer> {
    let segs: Vec<&str> = uri
        .path()
        .trim_start_matches("/open-apis/")
        .split('/')
        .collect();
    if !uri.path().starts_with("/open-apis/") {
        return None;
    }
    let query = uri.query().unwrap_or("");
    let m = method.as_str();
    if let (["auth", "v3", "tenant_access_token", "internal"], "POST") = (segs.as_slice(), m) {
        return Some(tenant_access_token(sim, body));
    }
    let endpoint: Endpoint = match (segs.as_slice(), m) {
        (["im", "v1", "messages"], "POST") => Endpoint::SendMessage,
        (["im", "v1", "messages", id, "reply"], "POST") => Endpoint::Reply(id),
        (["im", "v1", "messages", id], "PATCH") => Endpoint::PatchMessage(id),
        (["interactive", "v1", "card", "update"], "POST") => Endpoint::DelayedUpdate,
        (["cardkit", "v1", "cards"], "POST") => Endpoint::CreateCard,
        (["cardkit", "v1", "cards", "id_convert"], "POST") => Endpoint::IdConvert,
        (["cardkit", "v1", "cards", id], "PUT") => Endpoint::Card(id, CardOp::Update),
        (["cardkit", "v1", "cards", id, "settings"], "PATCH") => {
            Endpoint::Card(id, CardOp::Settings)
        }
        (["cardkit", "v1", "cards", id, "batch_update"], "POST") => {
            Endpoint::Card(id, CardOp::Batch)
        }
        (["cardkit", "v1", "cards", id, "elements"], "POST") => {
            Endpoint::Card(id, CardOp::AddElements)
        }
        (["cardkit", "v1", "cards", id, "elements", el], "PUT") => {
            Endpoint::Card(id, CardOp::UpdateElement(el))
        }
        (["cardkit", "v1", "cards", id, "elements", el], "PATCH") => {
            Endpoint::Card(id, CardOp::PatchElement(el))
        }
        (["cardkit", "v1", "cards", id, "elements", el], "DELETE") => {
            Endpoint::Card(id, CardOp::DeleteElement(el))
        }
        (["cardkit", "v1", "cards", id, "elements", el, "content"], "PUT") => {
            Endpoint::Card(id, CardOp::Content(el))
        }
        _ => return None,
    };
    let now = sim.clock.now_ms();
    let result = authorize(sim, headers, now).and_then(|()| {
        let mut world = sim.world();
        let limit = world.rate_limits.app_per_second;
        World::admit(&mut world.app_window, limit, now)
            .map_err(|reset| ApiError::rate_limited(limit.unwrap_or(0), reset))
    });
    let result = result.and_then(|()| match endpoint {
        Endpoint::SendMessage => send_message(sim, query, body, None, now),
        Endpoint::Reply(id) => send_message(sim, query, body, Some(id), now),
        Endpoint::PatchMessage(id) => patch_message(sim, id, body, now),
        Endpoint::DelayedUpdate => delayed_update(sim, body, now),
        Endpoint::CreateCard => create_card(sim, body, now),
        Endpoint::IdConvert => id_convert(sim, body, now),
        Endpoint::Card(id, op) => card_write(sim, id, op, body, now),
    });
    Some(match result {
        Ok(body) => Answer {
            status: StatusCode::OK,
            body,
            headers: Vec::new(),
        },
        Err(e) => e.into(),
    })
}

enum Endpoint<'a> {
    SendMessage,
    Reply(&'a str),
    PatchMessage(&'a str),
    DelayedUpdate,
    CreateCard,
    IdConvert,
    Card(&'a str, CardOp<'a>),
}

#[derive(Clone, Copy)]
enum CardOp<'a> {
    Update,
    Settings,
    Batch,
    AddElements,
    UpdateElement(&'a str),
    PatchElement(&'a str),
    DeleteElement(&'a str),
    Content(&'a str),
}

impl CardOp<'_> {
    fn via(&self) -> &'static str {
        match self {
            CardOp::Update => "cardkit.update",
            CardOp::Settings => "cardkit.settings",
            CardOp::Batch => "cardkit.batch_update",
            CardOp::AddElements => "cardkit.add_elements",
            CardOp::UpdateElement(_) => "cardkit.update_element",
            CardOp::PatchElement(_) => "cardkit.patch_element",
            CardOp::DeleteElement(_) => "cardkit.delete_element",
            CardOp::Content(_) => "cardkit.content",
        }
    }
}

// ---------------------------------------------------------------- helpers

fn parse_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::biz(
            9499,
            "Bad Request: body is not a JSON object",
        )),
    }
}

fn req_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) | None => {
            Err(ApiError::field(field, format!("{field} is required")))
        }
        Some(_) => Err(ApiError::field(field, format!("{field} must be a string"))),
    }
}

fn opt_uuid(obj: &Map<String, Value>, max: usize) -> Result<Option<String>, ApiError> {
    match obj.get("uuid") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= max => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::field(
            "uuid",
            format!("uuid must be a string of 1-{max} characters"),
        )),
    }
}

fn admit_card_write(world: &mut World, key: &str, now: i64) -> Result<(), ApiError> {
    let limit = world.rate_limits.card_writes_per_second;
    let window = world.card_windows.entry(key.to_owned()).or_default();
    World::admit(window, limit, now)
        .map_err(|reset| ApiError::rate_limited(limit.unwrap_or(0), reset))
}

pub(crate) fn new_message_id() -> String {
    format!("om_{}", random_hex(16))
}
