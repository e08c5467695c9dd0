//! The Open API endpoints: auth, im messages, delayed card update, CardKit v1, with Feishu's checks and codes.
//!
//! This file owns the routing, injected faults, the error and answer types and the request helpers
//! the endpoints share; the endpoints are in `auth`, `im`, `delayed_update` and `cardkit`.

mod auth;
mod cardkit;
mod contact;
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

use auth::{
    app_access_token, app_ticket_resend, authorize, store_tenant_access_token, tenant_access_token,
};
use cardkit::{card_write, create_card, id_convert};
use delayed_update::delayed_update;
use im::{patch_message, send_message};

pub(crate) use auth::issue_tenant_token;
pub use contact::ContactAccess;

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
    let mut at_ms = sim.clock.now_ms();
    let query = uri.query().unwrap_or("");
    let endpoint = Endpoint::parse(method.as_str(), &path);
    let chat_id = match &endpoint {
        Some(Endpoint::Api(api)) => api.target_chat(&sim, query, &body),
        _ => None,
    };
    let fault = take_fault(&sim, &method, &path);
    let lose_answer = match fault {
        Some(FaultKind::LoseAnswer { millis }) => Some(millis),
        _ => None,
    };
    if let Some(FaultKind::Hang { millis }) = fault {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
    let answer = match fault.and_then(|f| fault_answer(&sim, f)) {
        Some(a) => Some(a),
        None => endpoint.map(|e| {
            let (answer, checked_at) = route(&sim, e, query, &headers, &body, chat_id.as_deref());
            at_ms = checked_at.unwrap_or(at_ms);
            answer
        }),
    };
    let (status, code, answer_body, mut response) = match answer {
        Some(a) => {
            let code = a.body.get("code").and_then(Value::as_i64);
            let answer_body = a.body.to_string();
            let mut resp = (a.status, axum::Json(a.body)).into_response();
            for (k, v) in a.headers {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    resp.headers_mut().insert(k, v);
                }
            }
            (a.status, code, answer_body, resp)
        }
        None => (
            StatusCode::NOT_FOUND,
            None,
            "404 page not found".to_owned(),
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
        response: answer_body,
        status: status.as_u16(),
        code,
        at_ms,
        elapsed_ms: started.elapsed().as_millis() as u64,
        chat_id,
    });
    if let Some(millis) = lose_answer {
        // Applied and recorded; the answer comes too late for a client with a shorter timeout.
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
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

/// What an injected fault answers instead of the endpoint; `None` for a hang, which is then handled.
fn fault_answer(sim: &Shared, fault: FaultKind) -> Option<Answer> {
    match fault {
        FaultKind::Hang { .. } | FaultKind::LoseAnswer { .. } => None,
        FaultKind::RateLimited { reset_secs } => {
            let limit = sim.world().rate_limits.app_per_second.unwrap_or(50);
            Some(ApiError::rate_limited(limit, reset_secs).into())
        }
        FaultKind::ServerError { status } => Some(Answer {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: json!({"code": 2200, "msg": "Internal Error"}),
            headers: Vec::new(),
        }),
        FaultKind::InvalidToken => Some(ApiError::invalid_token().into()),
        FaultKind::Api { code } => {
            Some(ApiError::biz(code, format!("injected error {code}")).into())
        }
    }
}

/// Answers a call to a known endpoint, and says when its rate limits were checked (if they were).
fn route(
    sim: &Arc<Shared>,
    endpoint: Endpoint,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
    chat_id: Option<&str>,
) -> (Answer, Option<i64>) {
    let api = match endpoint {
        // [D-tat] lists no rate limit for the token endpoint (UNCONFIRMED): it uses no budget.
        Endpoint::TenantAccessToken => return (tenant_access_token(sim, body), None),
        Endpoint::AppTicketResend => return (app_ticket_resend(sim, body), None),
        Endpoint::AppAccessToken => return (app_access_token(sim, body), None),
        Endpoint::StoreTenantAccessToken => return (store_tenant_access_token(sim, body), None),
        Endpoint::Api(api) => api,
    };
    // A call without a valid token names no app, so no app's budget counts it.
    let tenant = match authorize(sim, headers, sim.clock.now_ms()) {
        Ok(tenant) => tenant,
        Err(e) => return (e.into(), None),
    };
    // A token of one tenant on another tenant's chat, message, card or user: 10034 ("chat tenant
    // id mismatch tenant access token", generic error codes; the simulator answers it for every
    // target of another tenant, before any budget is used).
    if let Some(target) = api.target_tenant(sim, chat_id) {
        if target != tenant {
            return (
                ApiError::biz(10034, "chat tenant id mismatch tenant access token").into(),
                None,
            );
        }
    }
    let (now, admitted) = admit(sim, &tenant, api.template(), chat_id);
    let result = admitted.and_then(|()| match api {
        Api::GetUser(id) => contact::get_user(sim, id, query),
        Api::FindByDepartment => contact::find_by_department(sim, query),
        Api::BotInfo => Ok(contact::bot_info(sim)),
        Api::Urgent(id) => im::urgent_app(sim, id, query, body),
        Api::SendMessage => send_message(sim, query, body, None, now),
        Api::Reply(id) => send_message(sim, query, body, Some(id), now),
        Api::PatchMessage(id) => patch_message(sim, id, body, now),
        Api::DelayedUpdate => delayed_update(sim, body, now),
        Api::CreateCard => create_card(sim, body, now).inspect(|answer| {
            if let Some(card_id) = answer["data"]["card_id"].as_str() {
                sim.world()
                    .entity_tenants
                    .insert(card_id.to_owned(), tenant.clone());
            }
        }),
        Api::IdConvert => id_convert(sim, body, now),
        Api::Card(id, op) => card_write(sim, id, op, body, now),
    });
    let answer = match result {
        Ok(body) => Answer {
            status: StatusCode::OK,
            body,
            headers: Vec::new(),
        },
        Err(e) => e.into(),
    };
    (answer, Some(now))
}

/// Feishu's limits for one call to `api`, at the instant returned: read under the world lock, so
/// windows fill in time order.
fn admit(
    sim: &Shared,
    tenant: &str,
    api: &'static str,
    chat_id: Option<&str>,
) -> (i64, Result<(), ApiError>) {
    let mut world = sim.world();
    let now = sim.clock.now_ms();
    let admitted = admit_at(&mut world, tenant, api, chat_id, now);
    (now, admitted)
}

/// The gateway's 50/s per app and tenant and 1000/min per API (a call uses both budgets or
/// neither; "每个 API、每个应用、每个租户", frequency-control), then
/// 5/s per chat for a send or reply, which the message service checks behind the gateway (a call
/// refused there has used the gateway's budget). The docs give the per-chat limit but not its
/// answer; it answers as the gateway does (429 + 99991400 + reset).
fn admit_at(
    world: &mut World,
    tenant: &str,
    api: &'static str,
    chat_id: Option<&str>,
    now: i64,
) -> Result<(), ApiError> {
    let limits = world.rate_limits;
    let api_window = world.api_windows.entry(api).or_default();
    let app_window = world.app_windows.entry(tenant.to_owned()).or_default();
    check(app_window, limits.app_per_second, SECOND_MS, now)?;
    check(api_window, limits.api_per_minute, MINUTE_MS, now)?;
    record(app_window, limits.app_per_second, now);
    record(api_window, limits.api_per_minute, now);
    if let Some(chat) = chat_id {
        let window = world.chat_windows.entry(chat.to_owned()).or_default();
        check(window, limits.chat_per_second, SECOND_MS, now)?;
        record(window, limits.chat_per_second, now);
    }
    Ok(())
}

/// Whether `window` has room under `limit` (`None`: no limit); else Feishu's 429 answer.
fn check(
    window: &mut SlidingWindow,
    limit: Option<u32>,
    span_ms: i64,
    now: i64,
) -> Result<(), ApiError> {
    match limit {
        Some(limit) => window
            .check(limit, span_ms, now)
            .map_err(|reset| ApiError::rate_limited(limit, reset)),
        None => Ok(()),
    }
}

/// Counts an admitted call in `window` while its limit is on.
fn record(window: &mut SlidingWindow, limit: Option<u32>, now: i64) {
    if limit.is_some() {
        window.record(now);
    }
}

/// The API template of a rate-limited Open API call (`path` may carry a query); `None` for the
/// token endpoint and unknown paths. The key of the per-API limit.
pub(crate) fn limited_api(method: &str, path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    match Endpoint::parse(method, path)? {
        Endpoint::Api(api) => Some(api.template()),
        _ => None,
    }
}

/// What a request on the Open API port is for.
enum Endpoint<'a> {
    TenantAccessToken,
    AppTicketResend,
    AppAccessToken,
    StoreTenantAccessToken,
    Api(Api<'a>),
}

/// The rate-limited Open APIs, with the ids from their paths.
enum Api<'a> {
    GetUser(&'a str),
    FindByDepartment,
    BotInfo,
    Urgent(&'a str),
    SendMessage,
    Reply(&'a str),
    PatchMessage(&'a str),
    DelayedUpdate,
    CreateCard,
    IdConvert,
    Card(&'a str, CardOp<'a>),
}

impl<'a> Endpoint<'a> {
    /// The endpoint of `method` + `path` (no query); `None` is an unknown path (404).
    fn parse(method: &str, path: &'a str) -> Option<Self> {
        let segs: Vec<&str> = path.strip_prefix("/open-apis/")?.split('/').collect();
        let api = match (segs.as_slice(), method) {
            (["auth", "v3", "tenant_access_token", "internal"], "POST") => {
                return Some(Endpoint::TenantAccessToken)
            }
            (["auth", "v3", "app_ticket", "resend"], "POST") => {
                return Some(Endpoint::AppTicketResend)
            }
            (["auth", "v3", "app_access_token"], "POST") => return Some(Endpoint::AppAccessToken),
            (["auth", "v3", "tenant_access_token"], "POST") => {
                return Some(Endpoint::StoreTenantAccessToken)
            }
            (["im", "v1", "messages"], "POST") => Api::SendMessage,
            (["contact", "v3", "users", "find_by_department"], "GET") => Api::FindByDepartment,
            (["contact", "v3", "users", id], "GET") => Api::GetUser(id),
            (["bot", "v3", "info"], "GET") => Api::BotInfo,
            (["im", "v1", "messages", id, "urgent_app"], "PATCH") => Api::Urgent(id),
            (["im", "v1", "messages", id, "reply"], "POST") => Api::Reply(id),
            (["im", "v1", "messages", id], "PATCH") => Api::PatchMessage(id),
            (["interactive", "v1", "card", "update"], "POST") => Api::DelayedUpdate,
            (["cardkit", "v1", "cards"], "POST") => Api::CreateCard,
            (["cardkit", "v1", "cards", "id_convert"], "POST") => Api::IdConvert,
            (["cardkit", "v1", "cards", id], "PUT") => Api::Card(id, CardOp::Update),
            (["cardkit", "v1", "cards", id, "settings"], "PATCH") => {
                Api::Card(id, CardOp::Settings)
            }
            (["cardkit", "v1", "cards", id, "batch_update"], "POST") => {
                Api::Card(id, CardOp::Batch)
            }
            (["cardkit", "v1", "cards", id, "elements"], "POST") => {
                Api::Card(id, CardOp::AddElements)
            }
            (["cardkit", "v1", "cards", id, "elements", el], "PUT") => {
                Api::Card(id, CardOp::UpdateElement(el))
            }
            (["cardkit", "v1", "cards", id, "elements", el], "PATCH") => {
                Api::Card(id, CardOp::PatchElement(el))
            }
            (["cardkit", "v1", "cards", id, "elements", el], "DELETE") => {
                Api::Card(id, CardOp::DeleteElement(el))
            }
            (["cardkit", "v1", "cards", id, "elements", el, "content"], "PUT") => {
                Api::Card(id, CardOp::Content(el))
            }
            _ => return None,
        };
        Some(Endpoint::Api(api))
    }
}

impl Api<'_> {
    /// Method + path template, as Feishu's docs name the API: all calls to one share its budget.
    fn template(&self) -> &'static str {
        match self {
            Api::GetUser(_) => "GET /open-apis/contact/v3/users/:user_id",
            Api::FindByDepartment => "GET /open-apis/contact/v3/users/find_by_department",
            Api::BotInfo => "GET /open-apis/bot/v3/info",
            Api::Urgent(_) => "PATCH /open-apis/im/v1/messages/:message_id/urgent_app",
            Api::SendMessage => "POST /open-apis/im/v1/messages",
            Api::Reply(_) => "POST /open-apis/im/v1/messages/:message_id/reply",
            Api::PatchMessage(_) => "PATCH /open-apis/im/v1/messages/:message_id",
            Api::DelayedUpdate => "POST /open-apis/interactive/v1/card/update",
            Api::CreateCard => "POST /open-apis/cardkit/v1/cards",
            Api::IdConvert => "POST /open-apis/cardkit/v1/cards/id_convert",
            Api::Card(_, op) => op.template(),
        }
    }

    /// The tenant the call's target belongs to: its chat's, its message's, its card entity's or
    /// its user's; `None` when the target is unknown (the endpoint answers that) or has no tenant.
    fn target_tenant(&self, sim: &Shared, chat_id: Option<&str>) -> Option<String> {
        if let Some(chat) = chat_id {
            return Some(sim.tenant_of_chat(chat));
        }
        let chat_of = |id: &str| sim.world().message(id).map(|m| m.msg.chat_id.clone());
        match self {
            Api::Urgent(id) | Api::PatchMessage(id) => chat_of(id).map(|c| sim.tenant_of_chat(&c)),
            Api::Card(card_id, _) => sim.world().entity_tenants.get(*card_id).cloned(),
            Api::GetUser(open_id) => sim.user(open_id).map(|u| sim.tenant_of_user(&u.open_id)),
            _ => None,
        }
    }

    /// The chat a send or reply goes into (see [`im::target_chat`]); `None` for other APIs.
    fn target_chat(&self, sim: &Shared, query: &str, body: &[u8]) -> Option<String> {
        match self {
            Api::SendMessage => im::target_chat(sim, query, body, None),
            Api::Reply(parent) => im::target_chat(sim, query, body, Some(parent)),
            _ => None,
        }
    }
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
    fn template(&self) -> &'static str {
        match self {
            CardOp::Update => "PUT /open-apis/cardkit/v1/cards/:card_id",
            CardOp::Settings => "PATCH /open-apis/cardkit/v1/cards/:card_id/settings",
            CardOp::Batch => "POST /open-apis/cardkit/v1/cards/:card_id/batch_update",
            CardOp::AddElements => "POST /open-apis/cardkit/v1/cards/:card_id/elements",
            CardOp::UpdateElement(_) => {
                "PUT /open-apis/cardkit/v1/cards/:card_id/elements/:element_id"
            }
            CardOp::PatchElement(_) => {
                "PATCH /open-apis/cardkit/v1/cards/:card_id/elements/:element_id"
            }
            CardOp::DeleteElement(_) => {
                "DELETE /open-apis/cardkit/v1/cards/:card_id/elements/:element_id"
            }
            CardOp::Content(_) => {
                "PUT /open-apis/cardkit/v1/cards/:card_id/elements/:element_id/content"
            }
        }
    }

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
    check(window, limit, SECOND_MS, now)?;
    record(window, limit, now);
    Ok(())
}

pub(crate) fn new_message_id() -> String {
    format!("om_{}", random_hex(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATES: &[&str] = &[
        "GET /open-apis/contact/v3/users/:user_id",
        "GET /open-apis/contact/v3/users/find_by_department",
        "GET /open-apis/bot/v3/info",
        "PATCH /open-apis/im/v1/messages/:message_id/urgent_app",
        "POST /open-apis/im/v1/messages",
        "POST /open-apis/im/v1/messages/:message_id/reply",
        "PATCH /open-apis/im/v1/messages/:message_id",
        "POST /open-apis/interactive/v1/card/update",
        "POST /open-apis/cardkit/v1/cards",
        "POST /open-apis/cardkit/v1/cards/id_convert",
        "PUT /open-apis/cardkit/v1/cards/:card_id",
        "PATCH /open-apis/cardkit/v1/cards/:card_id/settings",
        "POST /open-apis/cardkit/v1/cards/:card_id/batch_update",
        "POST /open-apis/cardkit/v1/cards/:card_id/elements",
        "PUT /open-apis/cardkit/v1/cards/:card_id/elements/:element_id",
        "PATCH /open-apis/cardkit/v1/cards/:card_id/elements/:element_id",
        "DELETE /open-apis/cardkit/v1/cards/:card_id/elements/:element_id",
        "PUT /open-apis/cardkit/v1/cards/:card_id/elements/:element_id/content",
    ];

    #[test]
    fn every_api_template_is_the_key_of_its_calls() {
        for template in TEMPLATES {
            let (method, path) = template.split_once(' ').unwrap();
            let concrete = path
                .replace(":message_id", "om_1a2b")
                .replace(":user_id", "ou_1a2b")
                .replace(":card_id", "7371713483664506900")
                .replace(":element_id", "md_1");
            assert_eq!(
                limited_api(method, &format!("{concrete}?x=1")),
                Some(*template)
            );
        }
        assert_eq!(
            limited_api("POST", "/open-apis/auth/v3/tenant_access_token/internal"),
            None,
            "the token endpoint has no documented limit"
        );
        assert_eq!(limited_api("GET", "/open-apis/im/v1/messages"), None);
    }

    fn limit_header(e: &ApiError) -> Option<&str> {
        e.headers
            .iter()
            .find(|(k, _)| *k == "x-ogw-ratelimit-limit")
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_call_the_gateway_refuses_uses_no_budget_and_a_chat_refusal_uses_the_gateways() {
        let mut world = World {
            rate_limits: RateLimits {
                app_per_second: Some(2),
                api_per_minute: Some(1),
                chat_per_second: Some(1),
                card_writes_per_second: None,
            },
            ..World::default()
        };
        let send = TEMPLATES[0];
        let reply = TEMPLATES[1];
        assert!(admit_at(&mut world, "tk", send, Some("oc_a"), 0).is_ok());
        let per_api = admit_at(&mut world, "tk", send, None, 1).unwrap_err();
        assert_eq!(
            (per_api.status, limit_header(&per_api)),
            (StatusCode::TOO_MANY_REQUESTS, Some("1"))
        );
        // The refused send used no app budget, so the reply fits the app's 2/s.
        let per_chat = admit_at(&mut world, "tk", reply, Some("oc_a"), 2).unwrap_err();
        assert_eq!(
            (per_chat.code, limit_header(&per_chat)),
            (99991400, Some("1"))
        );
        // The reply the chat refused passed the gateway: the app's 2/s is used up.
        let per_app = admit_at(&mut world, "tk", TEMPLATES[4], None, 3).unwrap_err();
        assert_eq!(limit_header(&per_app), Some("2"));
        assert!(admit_at(&mut world, "tk", TEMPLATES[4], None, 1000).is_ok());
    }
}
