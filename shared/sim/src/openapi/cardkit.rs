//! CardKit v1 (`/cardkit/v1/cards`): card entities, id conversion, and every card write with its
//! sequence, uuid and streaming checks.

use axum::body::Bytes;
use serde_json::{json, Map, Value};

use super::{
    admit_card_write, opt_uuid, parse_object, req_str, success, ApiError, ApiResult, CardOp,
};
use crate::card::{self, InsertKind};
use crate::state::{CardDoc, CardEntity, UuidRecord, CARDKIT_UUID_WINDOW_MS, FOURTEEN_DAYS_MS};
use crate::{Shared, UuidRepeat};

fn new_card_id() -> String {
    format!("7{:018}", rand::random::<u64>() % 1_000_000_000_000_000_000)
}

/// `POST /cardkit/v1/cards`: create an entity from card JSON 2.0.
pub(super) fn create_card(sim: &Shared, body: &Bytes, now: i64) -> ApiResult {
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
pub(super) fn id_convert(sim: &Shared, body: &Bytes, now: i64) -> ApiResult {
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
pub(super) fn card_write(
    sim: &Shared,
    card_id: &str,
    op: CardOp<'_>,
    body: &Bytes,
    now: i64,
) -> ApiResult {
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
            if now - rec.at_ms < CARDKIT_UUID_WINDOW_MS
                && sim.config.uuid_repeat != UuidRepeat::Ignore
            {
                if rec.request == request_fingerprint
                    && sim.config.uuid_repeat == UuidRepeat::Replay
                {
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
