//! The im message endpoints: send, reply and patch (`/im/v1/messages`), and a message's JSON.

use axum::body::Bytes;
use serde_json::{json, Value};

use super::{
    admit_card_write, new_message_id, opt_uuid, parse_object, req_str, success, ApiError, ApiResult,
};
use crate::card::{self, CardRuleError};
use crate::state::{
    sender_json, CardDoc, ChatMessage, Sender, StoredMessage, World, FOURTEEN_DAYS_MS,
    MESSAGE_UUID_WINDOW_MS,
};
use crate::{Shared, UuidRepeat};

const RECEIVE_ID_TYPES: &[&str] = &["open_id", "union_id", "user_id", "email", "chat_id"];

/// `POST /im/v1/messages` and `POST /im/v1/messages/:id/reply`.
pub(super) fn send_message(
    sim: &Shared,
    query: &str,
    body: &Bytes,
    reply_to: Option<&str>,
    now: i64,
) -> ApiResult {
    let cfg = &sim.config;
    let receive = if reply_to.is_none() {
        let rtype = receive_id_type(query)
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
    // uuid dedup: a repeat within 1 hour answers with the first message, is refused, or (the uuid
    // forgotten) is a second message, as `SimConfig::uuid_repeat` says.
    if let Some(u) = &uuid {
        if let Some((mid, at)) = world.message_uuids.get(u).cloned() {
            if now - at < MESSAGE_UUID_WINDOW_MS {
                match cfg.uuid_repeat {
                    UuidRepeat::Replay => {
                        if let Some(m) = world.message(&mid) {
                            return Ok(success(message_json(&m.msg, &cfg.tenant_key)));
                        }
                    }
                    UuidRepeat::Conflict => {
                        return Err(ApiError::biz(
                            200770,
                            "uuid conflict: this uuid was already used",
                        ));
                    }
                    UuidRepeat::Ignore => {}
                }
            }
        }
    }
    let (chat_id, parent_id, root_id) = match (&receive, reply_to) {
        (Some(rtype), _) => {
            let rid = receive_id.as_deref().unwrap_or("");
            if rtype == "open_id" && world.foreign_open_ids.contains(rid) {
                return Err(ApiError::biz(99992361, "open_id cross app"));
            }
            let chat = receiver_chat(sim, &world, rtype, rid)
                .ok_or_else(|| ApiError::biz(230034, "The receive_id is invalid."))?;
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

/// The chat a send (`reply_to` is `None`) or a reply goes into, when the request names an existing
/// one: the key of the per-chat limit.
///
/// The send and reply docs ([D-msg-create], [D-msg-reply] in the shared `events-and-auth.md` §7)
/// give "5 QPS to the same user; 5 QPS per group, shared by all bots in that group" for both
/// calls. A send to the user (by open_id, union_id or user_id) lands in their p2p chat, so the
/// user's budget is that chat's: sends and replies whose message lands in a chat share its 5/s.
pub(super) fn target_chat(
    sim: &Shared,
    query: &str,
    body: &[u8],
    reply_to: Option<&str>,
) -> Option<String> {
    match reply_to {
        Some(parent) => sim.world().message(parent).map(|p| p.msg.chat_id.clone()),
        None => {
            let rtype = receive_id_type(query)?;
            let req: Value = serde_json::from_slice(body).ok()?;
            let world = sim.world();
            receiver_chat(sim, &world, rtype, req.get("receive_id")?.as_str()?)
        }
    }
}

fn receive_id_type(query: &str) -> Option<&str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "receive_id_type")
        .map(|(_, v)| v)
}

/// The chat a message to `rid` (of type `rtype`) lands in; `None` when no such receiver exists.
/// Users are the configured one and those added since (`World::users`), each with a p2p chat.
fn receiver_chat(sim: &Shared, world: &World, rtype: &str, rid: &str) -> Option<String> {
    let cfg = &sim.config;
    if rtype == "chat_id" && rid == cfg.group_chat_id {
        return Some(rid.to_owned());
    }
    let configured = cfg.user();
    std::iter::once(&configured)
        .chain(world.users.iter())
        .find(|u| match rtype {
            "chat_id" => u.p2p_chat_id == rid,
            "open_id" => u.open_id == rid,
            "union_id" => u.union_id == rid,
            "user_id" => u.user_id == rid,
            _ => false,
        })
        .map(|u| u.p2p_chat_id.clone())
}

/// `PATCH /im/v1/messages/:message_id`: replace a sent card (shared cards only, within 14 days).
pub(super) fn patch_message(sim: &Shared, message_id: &str, body: &Bytes, now: i64) -> ApiResult {
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
    let stored = bot_message(
        sim,
        &world,
        message_id,
        (230017, "The bot is not the owner of the message."),
    )?;
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

/// `PATCH /im/v1/messages/:id/urgent_app?user_id_type=open_id`: an in-app buzz
/// (`approval-apis.md` §4). Only on a message the bot sent (230012); targets that are not members
/// of its chat come back in `invalid_user_id_list`, all invalid is 230001; without the
/// `im:message.urgent` scope, 99991672.
pub(super) fn urgent_app(sim: &Shared, message_id: &str, query: &str, body: &Bytes) -> ApiResult {
    if !query.split('&').any(|kv| kv == "user_id_type=open_id") {
        return Err(ApiError::field("user_id_type", "user_id_type is required"));
    }
    let req = parse_object(body)?;
    let ids: Vec<String> = req
        .get("user_id_list")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > 200 {
        return Err(ApiError::field("user_id_list", "1 to 200 ids"));
    }
    let chat_members: Vec<String> = {
        let world = sim.world();
        if !world.urgent_allowed {
            let mut e = ApiError::biz(
                99991672,
                "Access denied. One of the following scopes is required: [im:message.urgent, im:message.urgent:app_send]",
            );
            e.error = Some(json!({"permission_violations": [
                {"type": "action_scope_required", "subject": "im:message.urgent"}]}));
            return Err(e);
        }
        let stored = bot_message(
            sim,
            &world,
            message_id,
            (230012, "the bot is not the sender of the message"),
        )?;
        let chat = stored.msg.chat_id.clone();
        drop(world);
        // A p2p chat's members: its user (and the bot).
        let configured = sim.config.user();
        let world = sim.world();
        std::iter::once(configured)
            .chain(world.users.iter().cloned())
            .filter(|u| u.p2p_chat_id == chat)
            .map(|u| u.open_id)
            .collect()
    };
    let (valid, invalid): (Vec<String>, Vec<String>) =
        ids.into_iter().partition(|id| chat_members.contains(id));
    if valid.is_empty() {
        return Err(ApiError::biz(
            230001,
            "invalid param: no target is a member of the chat",
        ));
    }
    let mut world = sim.world();
    for id in valid {
        world.buzzes.push((message_id.to_owned(), id));
    }
    Ok(success(json!({ "invalid_user_id_list": invalid })))
}

/// A message this app sent: `message_id` unknown is 230001, another sender's is `not_ours`
/// (PATCH says 230017, a buzz 230012).
fn bot_message<'w>(
    sim: &Shared,
    world: &'w World,
    message_id: &str,
    not_ours: (i64, &str),
) -> Result<&'w StoredMessage, ApiError> {
    let stored = world.message(message_id).ok_or_else(|| {
        ApiError::biz(
            230001,
            format!("invalid param: message {message_id} not found"),
        )
    })?;
    let ours = Sender::App {
        app_id: sim.config.app_id.clone(),
    };
    if stored.msg.sender != ours {
        return Err(ApiError::biz(not_ours.0, not_ours.1));
    }
    Ok(stored)
}
