//! The Open API endpoints: auth, im messages, delayed card update, CardKit v1, with Feishu's checks and codes.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::card::{self, CardRuleError, InsertKind};
use super::crypto::random_hex;
use super::state::*;
use super::{control, Shared};

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

// ---------------------------------------------------------------- auth

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
fn tenant_access_token(sim: &Shared, body: &Bytes) -> Answer {
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

fn authorize(sim: &Shared, headers: &HeaderMap, now: i64) -> Result<(), ApiError> {
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

/// `sequence`: required, a positive int32.
fn sequence(obj: &Map<String, Value>) -> Result<i64, ApiError> {
    let v = obj
        .get("sequence")
        .ok_or_else(|| ApiError::field("sequence", "sequence is required"))?;
    match v.as_i64() {
        Some(n) if (1..=i64::from(i32::MAX)).contains(&n) => Ok(n),
        _ => Err(ApiError::field(
            "sequence",
            "sequence must be an integer between 1 and 2147483647",
        )),
    }
}

/// Parses a field that Feishu wants as a string holding JSON.
fn json_string_field(obj: &Map<String, Value>, field: &str) -> Result<Value, ApiError> {
    let s = req_str(obj, field)?;
    serde_json::from_str(s)
        .map_err(|e| ApiError::biz(200220, format!("{field} is not valid JSON: {e}")))
}

fn admit_card_write(world: &mut World, key: &str, now: i64) -> Result<(), ApiError> {
    let limit = world.rate_limits.card_writes_per_second;
    let window = world.card_windows.entry(key.to_owned()).or_default();
    World::admit(window, limit, now)
        .map_err(|reset| ApiError::rate_limited(limit.unwrap_or(0), reset))
}

fn message_json(m: &ChatMessage, tenant_key: &str) -> Value {
    let mut v = json!({
        "message_id": m.message_id,
        "msg_type": m.msg_type,
        "create_time": m.create_time_ms.to_string(),
        "update_time": m.update_time_ms.to_string(),
        "deleted": false,
        "updated": m.update_time_ms != m.create_time_ms,
        "chat_id": m.chat_id,
        "sender": sender_json(&m.sender, tenant_key),
        "body": {"content": m.content},
    });
    if let Some(p) = &m.parent_id {
        v["parent_id"] = json!(p);
        v["root_id"] = json!(m.root_id.clone().unwrap_or_else(|| p.clone()));
        v["upper_message_id"] = json!(p);
    }
    v
}

pub(crate) fn new_message_id() -> String {
    format!("om_{}", random_hex(16))
}

// ---------------------------------------------------------------- im messages

const RECEIVE_ID_TYPES: &[&str] = &["open_id", "union_id", "user_id", "email", "chat_id"];

/// `POST /im/v1/messages` and `POST /im/v1/messages/:id/reply`.
fn send_message(
    sim: &Shared,
    query: &str,
    body: &Bytes,
    reply_to: Option<&str>,
    now: i64,
) -> ApiResult {
    let cfg = &sim.config;
    let receive = if reply_to.is_none() {
        let rtype = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "receive_id_type")
            .map(|(_, v)| v)
            .ok_or_else(|| ApiError::field("receive_id_type", "receive_id_type is required"))?;
        if !RECEIVE_ID_TYPES.contains(&rtype) {
            return Err(ApiError::field(
                "receive_id_type",
                "receive_id_type must be one of open_id, union_id, user_id, email, chat_id",
            ));
        }
        Some(rtype.to_owned())
    } else {
        None
    };
    let req = parse_object(body)?;
    let receive_id = match &receive {
        Some(_) => Some(req_str(&req, "receive_id")?.to_owned()),
        None => None,
    };
    let msg_type = req_str(&req, "msg_type")?.to_owned();
    let content = match req.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => return Err(ApiError::field("content", "content is required")),
        Some(_) => {
            return Err(ApiError::biz(
                230001,
                "invalid param: content must be a string holding serialized JSON",
            ))
        }
    };
    let uuid = opt_uuid(&req, 50)?;
    let parsed: Value = serde_json::from_str(&content)
        .map_err(|_| ApiError::biz(230001, "invalid param: content is not valid JSON"))?;

    let mut world = sim.world();
    // uuid dedup: a repeat within 1 hour answers with the first message.
    if let Some(u) = &uuid {
        if let Some((mid, at)) = world.message_uuids.get(u).cloned() {
            if now - at < MESSAGE_UUID_WINDOW_MS {
                if let Some(m) = world.message(&mid) {
                    return Ok(success(message_json(&m.msg, &cfg.tenant_key)));
                }
            }
        }
    }
    let (chat_id, parent_id, root_id) = match (&receive, reply_to) {
        (Some(rtype), _) => {
            let rid = receive_id.as_deref().unwrap_or("");
            let chat = match rtype.as_str() {
                "chat_id" if rid == cfg.p2p_chat_id || rid == cfg.group_chat_id => {
                    Some(rid.to_owned())
                }
                "open_id" if rid == cfg.user_open_id => Some(cfg.p2p_chat_id.clone()),
                "union_id" if rid == cfg.user_union_id => Some(cfg.p2p_chat_id.clone()),
                "user_id" if rid == cfg.user_id => Some(cfg.p2p_chat_id.clone()),
                _ => None,
            };
            let chat = chat.ok_or_else(|| ApiError::biz(230034, "The receive_id is invalid."))?;
            (chat, None, None)
        }
        (None, Some(parent)) => {
            let p = world.message(parent).ok_or_else(|| {
                ApiError::biz(230001, format!("invalid param: message {parent} not found"))
            })?;
            let root = p.msg.root_id.clone().unwrap_or_else(|| parent.to_owned());
            (p.msg.chat_id.clone(), Some(parent.to_owned()), Some(root))
        }
        (None, None) => return Err(ApiError::biz(230001, "invalid param")),
    };
    let mut card_id = None;
    let mut inline_card = None;
    match msg_type.as_str() {
        "text" => {
            if !parsed.get("text").is_some_and(Value::is_string) {
                return Err(ApiError::biz(
                    230001,
                    "invalid param: text content needs a string `text`",
                ));
            }
            if content.len() > 150 * 1024 {
                return Err(ApiError::biz(
                    230025,
                    "content too long: text is over 150 KB",
                ));
            }
        }
        "interactive" => {
            if parsed.get("type").and_then(Value::as_str) == Some("card") {
                let id = parsed
                    .pointer("/data/card_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let entity = world.entities.get_mut(&id).ok_or_else(|| {
                    ApiError::im_card(CardRuleError::new(11310, "cardid is invalid"))
                })?;
                if entity.app_id != cfg.app_id {
                    return Err(ApiError::im_card(CardRuleError::new(
                        300311,
                        "card was created by another app",
                    )));
                }
                if now - entity.created_at_ms > FOURTEEN_DAYS_MS {
                    return Err(ApiError::im_card(CardRuleError::new(
                        200750,
                        "The card entity has expired",
                    )));
                }
                if entity.sent_message_id.is_some() {
                    return Err(ApiError::im_card(CardRuleError::new(
                        200780,
                        "card binding biz count over limit",
                    )));
                }
                card_id = Some(id);
            } else {
                if content.len() > card::MAX_CARD_BYTES {
                    return Err(ApiError::biz(
                        230025,
                        "content too long: card is over 30 KB",
                    ));
                }
                card::validate_any(&parsed).map_err(ApiError::im_card)?;
                inline_card = Some(CardDoc::new(parsed.clone(), now, "send"));
            }
        }
        "post" | "image" | "file" | "audio" | "media" | "sticker" | "share_chat" | "share_user"
        | "system" => {
            return Err(ApiError::biz(
                230001,
                format!("invalid param: msg_type {msg_type} is not supported by the simulator"),
            ))
        }
        _ => return Err(ApiError::field("msg_type", "msg_type is invalid")),
    }
    let msg = ChatMessage {
        message_id: new_message_id(),
        chat_id,
        sender: Sender::App {
            app_id: cfg.app_id.clone(),
        },
        msg_type,
        content,
        parent_id,
        root_id,
        create_time_ms: now,
        update_time_ms: now,
        card_id: card_id.clone(),
        uuid: uuid.clone(),
    };
    if let Some(id) = &card_id {
        if let Some(e) = world.entities.get_mut(id) {
            e.sent_message_id = Some(msg.message_id.clone());
        }
    }
    if let Some(u) = uuid {
        world.message_uuids.insert(u, (msg.message_id.clone(), now));
    }
    let answer = success(message_json(&msg, &cfg.tenant_key));
    world.messages.push(StoredMessage { msg, inline_card });
    Ok(answer)
}

/// `PATCH /im/v1/messages/:message_id`: replace a sent card (shared cards only, within 14 days).
fn patch_message(sim: &Shared, message_id: &str, body: &Bytes, now: i64) -> ApiResult {
    let req = parse_object(body)?;
    let content = match req.get("content") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => return Err(ApiError::field("content", "content is required")),
        Some(_) => {
            return Err(ApiError::biz(
                230001,
                "invalid param: content must be a string holding serialized JSON",
            ))
        }
    };
    let new_card: Value = serde_json::from_str(&content)
        .map_err(|_| ApiError::biz(230001, "invalid param: content is not valid JSON"))?;
    let mut world = sim.world();
    let stored = world.message(message_id).ok_or_else(|| {
        ApiError::biz(
            230001,
            format!("invalid param: message {message_id} not found"),
        )
    })?;
    if stored.msg.sender
        != (Sender::App {
            app_id: sim.config.app_id.clone(),
        })
    {
        return Err(ApiError::biz(
            230017,
            "The bot is not the owner of the message.",
        ));
    }
    if stored.msg.msg_type != "interactive" {
        return Err(ApiError::biz(
            230001,
            "invalid param: only interactive (card) messages can be updated",
        ));
    }
    if now - stored.msg.create_time_ms > FOURTEEN_DAYS_MS {
        return Err(ApiError::biz(
            230031,
            "Message can only be modified within 14 days after sending",
        ));
    }
    let key = world.card_key(message_id);
    let in_interaction = world.in_interaction(message_id);
    let old = world
        .card_doc_mut(message_id, now)
        .map(|d| d.json.clone())
        .ok_or_else(|| ApiError::biz(230001, "invalid param: message has no card"))?;
    if in_interaction && card::is_v2(&old) {
        return Err(ApiError::biz(
            230099,
            "Failed to update card content, ext=ErrCode: 11310; ErrMsg: card action is lock;",
        ));
    }
    if content.len() > card::MAX_CARD_BYTES {
        return Err(ApiError::biz(
            230025,
            "content too long: card is over 30 KB",
        ));
    }
    card::validate_any(&new_card).map_err(ApiError::im_card)?;
    if card::is_v2(&old) && !card::is_v2(&new_card) && !card::is_template(&new_card) {
        return Err(ApiError::im_card(CardRuleError::new(
            200830,
            "a JSON 2.0 card cannot become a JSON 1.0 card",
        )));
    }
    if !card::update_multi(&old) {
        return Err(ApiError::biz(
            230001,
            "invalid param: the sent card is not shared (config.update_multi is not true)",
        ));
    }
    if !card::update_multi(&new_card) {
        return Err(ApiError::biz(
            230001,
            "invalid param: the new card is not shared (config.update_multi is not true)",
        ));
    }
    admit_card_write(&mut world, &key, now)?;
    if let Some(doc) = world.card_doc_mut(message_id, now) {
        doc.set(new_card, now, "patch", false);
    }
    if let Some(m) = world.message_mut(message_id) {
        m.msg.content = content;
        m.msg.update_time_ms = now;
    }
    Ok(json!({"code": 0, "data": {}, "msg": "ok"}))
}

// ---------------------------------------------------------------- delayed update

/// `POST /interactive/v1/card/update` with the update token of a card callback.
fn delayed_update(sim: &Shared, body: &Bytes, now: i64) -> ApiResult {
    let req = parse_object(body)?;
    let token = match req.get("token") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(ApiError::biz(
                300020,
                "token is invalid: the format must be c-xxxx",
            ))
        }
    };
    if !token.starts_with("c-") || token.len() < 3 {
        return Err(ApiError::biz(
            300020,
            "token is invalid: the format must be c-xxxx",
        ));
    }
    let new_card = match req.get("card") {
        Some(Value::Object(_)) => req.get("card").cloned().unwrap_or(Value::Null),
        Some(Value::String(_)) => {
            return Err(ApiError::biz(
                11311,
                "card format invalid: card must be a JSON object",
            ))
        }
        _ => return Err(ApiError::biz(10002, "card is required")),
    };
    let mut world = sim.world();
    let info = world
        .update_tokens
        .get(&token)
        .cloned()
        .ok_or_else(|| ApiError::biz(300030, "更新卡片的 token 失效。"))?;
    if now - info.issued_at_ms > UPDATE_TOKEN_TTL_MS {
        return Err(ApiError::biz(300030, "更新卡片的 token 失效。"));
    }
    if info.uses >= UPDATE_TOKEN_MAX_USES {
        return Err(ApiError::biz(300040, "更新卡片的 token 超过使用限制次数。"));
    }
    if info.answered_at_ms.is_none() {
        // Feishu: an update before the callback answer fails or is reverted; the simulator fails it.
        return Err(ApiError::biz(
            200810,
            "the card is in an ongoing callback interaction: answer the callback before the delayed update",
        ));
    }
    let message_id = info.message_id.clone();
    let old = world
        .card_doc_mut(&message_id, now)
        .map(|d| d.json.clone())
        .ok_or_else(|| ApiError::biz(200000, "the message was recalled"))?;
    let mut body_card = new_card;
    let open_ids = body_card.as_object_mut().and_then(|o| o.remove("open_ids"));
    card::validate_any(&body_card).map_err(|e| match e.code {
        200860 => ApiError::biz(100000, e.msg),
        _ => ApiError::biz(11311, format!("card format invalid: {}", e.msg)),
    })?;
    if card::is_v2(&old) && !card::is_v2(&body_card) && !card::is_template(&body_card) {
        return Err(ApiError::biz(
            11311,
            "card format invalid: a JSON 2.0 card cannot become 1.0",
        ));
    }
    if !card::is_v2(&body_card) && !card::update_multi(&body_card) && open_ids.is_none() {
        return Err(ApiError::biz(300090, "exclusive card requires open_ids"));
    }
    let key = world.card_key(&message_id);
    admit_card_write(&mut world, &key, now)?;
    if let Some(doc) = world.card_doc_mut(&message_id, now) {
        doc.set(body_card, now, "delayed_update", false);
    }
    if let Some(t) = world.update_tokens.get_mut(&token) {
        t.uses += 1;
    }
    Ok(json!({"code": 0, "msg": "ok"}))
}

// ---------------------------------------------------------------- CardKit

fn new_card_id() -> String {
    format!("7{:018}", rand::random::<u64>() % 1_000_000_000_000_000_000)
}

/// `POST /cardkit/v1/cards`: create an entity from card JSON 2.0.
fn create_card(sim: &Shared, body: &Bytes, now: i64) -> ApiResult {
    let req = parse_object(body)?;
    let kind = req_str(&req, "type")?;
    let data = req_str(&req, "data")?;
    if data.chars().count() > 3_000_000 {
        return Err(ApiError::field(
            "data",
            "data is longer than 3000000 characters",
        ));
    }
    let card: Value = match kind {
        "card_json" => {
            let card: Value = serde_json::from_str(data)
                .map_err(|e| ApiError::biz(200220, format!("failed to generate content: {e}")))?;
            card::validate_v2(&card)?;
            card
        }
        "template" => {
            let data: Value = serde_json::from_str(data)
                .map_err(|e| ApiError::biz(200220, format!("failed to generate content: {e}")))?;
            let tpl = json!({"type": "template", "data": data});
            card::validate_any(&tpl)?;
            tpl
        }
        _ => {
            return Err(ApiError::field(
                "type",
                "type must be card_json or template",
            ))
        }
    };
    let card_id = new_card_id();
    let entity = CardEntity {
        card_id: card_id.clone(),
        app_id: sim.config.app_id.clone(),
        created_at_ms: now,
        doc: CardDoc::new(card, now, "cardkit.create"),
        last_sequence: None,
        sent_message_id: None,
        uuids: Default::default(),
    };
    sim.world().entities.insert(card_id.clone(), entity);
    Ok(success(json!({"card_id": card_id})))
}

/// `POST /cardkit/v1/cards/id_convert`: the card_id behind a card message.
fn id_convert(sim: &Shared, body: &Bytes, now: i64) -> ApiResult {
    let req = parse_object(body)?;
    let message_id = req_str(&req, "message_id")?;
    let mut world = sim.world();
    let stored = world
        .message(message_id)
        .cloned()
        .ok_or_else(|| ApiError::biz(10002, format!("message {message_id} not found")))?;
    if stored.msg.msg_type != "interactive" {
        return Err(ApiError::biz(10002, "the message is not a card"));
    }
    if let Some(id) = stored.msg.card_id {
        return Ok(success(json!({"card_id": id})));
    }
    let Some(mut doc) = stored.inline_card else {
        return Err(ApiError::biz(10002, "the message is not a card"));
    };
    if !card::is_v2(&doc.json) {
        return Err(ApiError::biz(
            300303,
            "only card JSON 2.0 cards can be converted",
        ));
    }
    doc.refresh(now);
    // The inline card becomes an entity bound to its message; later CardKit writes change the message.
    let card_id = new_card_id();
    world.entities.insert(
        card_id.clone(),
        CardEntity {
            card_id: card_id.clone(),
            app_id: sim.config.app_id.clone(),
            created_at_ms: stored.msg.create_time_ms,
            doc,
            last_sequence: None,
            sent_message_id: Some(message_id.to_owned()),
            uuids: Default::default(),
        },
    );
    if let Some(m) = world.message_mut(message_id) {
        m.inline_card = None;
        m.msg.card_id = Some(card_id.clone());
    }
    Ok(success(json!({"card_id": card_id})))
}

/// Every CardKit write: checks shared by all, then the operation on a copy, then commit.
fn card_write(sim: &Shared, card_id: &str, op: CardOp<'_>, body: &Bytes, now: i64) -> ApiResult {
    let req = parse_object(body)?;
    let seq = sequence(&req)?;
    let uuid = opt_uuid(&req, 64)?;
    if let CardOp::UpdateElement(el)
    | CardOp::PatchElement(el)
    | CardOp::DeleteElement(el)
    | CardOp::Content(el) = op
    {
        if el.is_empty() || el.len() > 20 {
            return Err(ApiError::field(
                "element_id",
                "element_id must be 1-20 characters",
            ));
        }
    }
    let mut world = sim.world();
    let entity = world
        .entities
        .get(card_id)
        .ok_or_else(|| ApiError::biz(200740, format!("card entity {card_id} not found")))?;
    if entity.app_id != sim.config.app_id {
        return Err(ApiError::biz(300311, "the card was created by another app"));
    }
    if now - entity.created_at_ms > FOURTEEN_DAYS_MS {
        return Err(ApiError::biz(200750, "The card entity has expired"));
    }
    if let Some(mid) = entity.sent_message_id.clone() {
        if world.in_interaction(&mid) {
            return Err(ApiError::biz(
                200810,
                "the card is in an ongoing callback interaction and cannot be updated now",
            ));
        }
    }
    admit_card_write(&mut world, card_id, now)?;
    let Some(entity) = world.entities.get_mut(card_id) else {
        return Err(ApiError::biz(200740, "card entity not found"));
    };
    let request_fingerprint = Value::Object(req.clone());
    if let Some(u) = &uuid {
        if let Some(rec) = entity.uuids.get(u) {
            if now - rec.at_ms < CARDKIT_UUID_WINDOW_MS {
                if rec.request == request_fingerprint {
                    return Ok(rec.response.clone());
                }
                return Err(ApiError::biz(
                    200770,
                    "uuid conflict: this uuid was used for another operation",
                ));
            }
        }
    }
    if let Some(last) = entity.last_sequence {
        if seq <= last {
            return Err(ApiError::biz(
                300317,
                format!("The sequence number for operating on the card did not increment consecutively (last {last}, got {seq})"),
            ));
        }
    }
    entity.doc.refresh(now);
    let mut next = entity.doc.json.clone();
    let mut switched_on = false;
    apply_card_op(&mut next, op, &req, &entity.doc, &mut switched_on)?;
    card::validate_v2(&next)?;
    entity.doc.set(next, now, op.via(), switched_on);
    entity.last_sequence = Some(seq);
    let response = success(json!({}));
    if let Some(u) = uuid {
        entity.uuids.insert(
            u,
            UuidRecord {
                request: request_fingerprint,
                response: response.clone(),
                at_ms: now,
            },
        );
    }
    Ok(response)
}

fn apply_card_op(
    card: &mut Value,
    op: CardOp<'_>,
    req: &Map<String, Value>,
    doc: &CardDoc,
    switched_on: &mut bool,
) -> Result<(), ApiError> {
    match op {
        CardOp::Update => {
            let c = req
                .get("card")
                .and_then(Value::as_object)
                .ok_or_else(|| ApiError::field("card", "card is required"))?;
            if c.get("type").and_then(Value::as_str) != Some("card_json") {
                return Err(ApiError::field("card.type", "card.type must be card_json"));
            }
            let data = req_str(c, "data")?;
            if data.chars().count() > 1_000_000 {
                return Err(ApiError::field(
                    "card.data",
                    "data is longer than 1000000 characters",
                ));
            }
            let new: Value = serde_json::from_str(data)
                .map_err(|e| ApiError::biz(200220, format!("failed to generate content: {e}")))?;
            card::validate_v2(&new)?;
            *switched_on = card::streaming_mode(&new);
            *card = new;
        }
        CardOp::Settings => {
            let settings = json_string_field(req, "settings")?;
            let settings = settings
                .as_object()
                .ok_or_else(|| ApiError::biz(300122, "settings must be a JSON object"))?;
            *switched_on = settings.get("config").and_then(|c| c.get("streaming_mode"))
                == Some(&Value::Bool(true));
            card::merge_settings(card, settings)?;
        }
        CardOp::AddElements => {
            let kind = req_str(req, "type")?;
            let kind = InsertKind::parse(kind).ok_or_else(|| {
                ApiError::field("type", "type must be insert_before, insert_after or append")
            })?;
            let target = req.get("target_element_id").and_then(Value::as_str);
            let elements = json_string_field(req, "elements")?;
            let elements = elements
                .as_array()
                .cloned()
                .ok_or_else(|| ApiError::biz(300315, "elements must be a JSON array"))?;
            card::add_elements(card, kind, target, elements)?;
        }
        CardOp::UpdateElement(id) => {
            let element = json_string_field(req, "element")?;
            card::replace_element(card, id, element)?;
        }
        CardOp::PatchElement(id) => {
            let partial = json_string_field(req, "partial_element")?;
            let partial = partial
                .as_object()
                .ok_or_else(|| ApiError::biz(300313, "partial_element must be a JSON object"))?;
            card::patch_element(card, id, partial)?;
        }
        CardOp::DeleteElement(id) => card::delete_element(card, id)?,
        CardOp::Content(id) => {
            let content = match req.get("content") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(ApiError::field("content", "content is required")),
            };
            if content.chars().count() > 100_000 {
                return Err(ApiError::field(
                    "content",
                    "content is longer than 100000 characters",
                ));
            }
            let tag = card::find_element(card, id)
                .and_then(|e| e.get("tag"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(tag) = tag {
                if tag != "plain_text" && tag != "markdown" {
                    return Err(ApiError::biz(
                        300310,
                        format!("element `{id}` is a `{tag}`: only plain_text and markdown stream"),
                    ));
                }
            }
            if !doc.streaming() {
                if doc.streaming_timed_out {
                    return Err(ApiError::biz(
                        200850,
                        "streaming timed out: streaming mode closed itself after 10 minutes",
                    ));
                }
                return Err(ApiError::biz(
                    300309,
                    "streaming mode is closed: switch config.streaming_mode on first",
                ));
            }
            card::set_text_content(card, id, &content)?;
        }
        CardOp::Batch => {
            let actions = json_string_field(req, "actions")?;
            let actions = actions
                .as_array()
                .ok_or_else(|| ApiError::biz(10002, "actions must be a JSON array"))?;
            for action in actions {
                apply_batch_action(card, action, switched_on)?;
            }
        }
    }
    Ok(())
}

fn apply_batch_action(
    card: &mut Value,
    action: &Value,
    switched_on: &mut bool,
) -> Result<(), ApiError> {
    let name = action.get("action").and_then(Value::as_str).unwrap_or("");
    let params = action
        .get("params")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::biz(10002, format!("action `{name}` needs params")))?;
    let id_param = || {
        params
            .get("element_id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::biz(10002, format!("action `{name}` needs params.element_id")))
    };
    match name {
        "partial_update_setting" => {
            let settings = params
                .get("settings")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    ApiError::biz(10002, "partial_update_setting needs params.settings")
                })?;
            if settings.get("config").and_then(|c| c.get("streaming_mode"))
                == Some(&Value::Bool(true))
            {
                *switched_on = true;
            }
            card::merge_settings(card, settings)?;
        }
        "add_elements" => {
            let kind = params
                .get("type")
                .and_then(Value::as_str)
                .and_then(InsertKind::parse)
                .ok_or_else(|| ApiError::biz(10002, "add_elements needs params.type"))?;
            let target = params.get("target_element_id").and_then(Value::as_str);
            let elements = params
                .get("elements")
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| ApiError::biz(10002, "add_elements needs params.elements"))?;
            card::add_elements(card, kind, target, elements)?;
        }
        "delete_elements" => {
            let ids = params
                .get("element_ids")
                .and_then(Value::as_array)
                .ok_or_else(|| ApiError::biz(10002, "delete_elements needs params.element_ids"))?;
            for id in ids {
                card::delete_element(card, id.as_str().unwrap_or(""))?;
            }
        }
        "partial_update_element" => {
            let partial = params
                .get("partial_element")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    ApiError::biz(10002, "partial_update_element needs params.partial_element")
                })?;
            card::patch_element(card, id_param()?, partial)?;
        }
        "update_element" => {
            let element = params
                .get("element")
                .cloned()
                .ok_or_else(|| ApiError::biz(10002, "update_element needs params.element"))?;
            card::replace_element(card, id_param()?, element)?;
        }
        other => {
            return Err(ApiError::biz(
                10002,
                format!("unknown batch action `{other}`"),
            ))
        }
    }
    Ok(())
}
