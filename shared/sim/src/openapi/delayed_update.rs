//! The delayed card update (`/interactive/v1/card/update`) with a card callback's update token.

use axum::body::Bytes;
use serde_json::{json, Value};

use super::{admit_card_write, parse_object, ApiError, ApiResult};
use crate::card;
use crate::state::{UPDATE_TOKEN_MAX_USES, UPDATE_TOKEN_TTL_MS};
use crate::Shared;

/// `POST /interactive/v1/card/update` with the update token of a card callback.
pub(super) fn delayed_update(sim: &Shared, body: &Bytes, now: i64) -> ApiResult {
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
