//! `GET /open-apis/contact/v3/users/:user_id`: one user, with `leader_user_id` when the test gave
//! them a leader and the app may read it (`../shared/feishu/approval-apis.md` §1).

use serde_json::json;

use super::{success, ApiError, ApiResult};
use crate::Shared;

/// What the app may read through the contact API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ContactAccess {
    /// Every user, with their leader (`contact:user.department:readonly` granted).
    #[default]
    Granted,
    /// The app lacks the API scope: 99991672 with `permission_violations`.
    NoScope,
    /// The users are outside the app's contact data scope: HTTP 400, 41050.
    OutsideScope,
    /// The API scope but not the department field scope: `leader_user_id` is left out.
    NoLeaderField,
}

/// `GET /open-apis/bot/v3/info`: the bot's identity, flat (a `bot` object, no `data`), as
/// `approval-apis.md` §8 documents it.
pub(super) fn bot_info(sim: &Shared) -> serde_json::Value {
    let cfg = &sim.config;
    json!({"code": 0, "msg": "ok", "bot": {
        "activate_status": 2,
        "app_name": cfg.bot_name,
        "avatar_url": "https://s1-imfile.feishucdn.com/static-resource/v1/bot_avatar",
        "ip_white_list": [],
        "open_id": cfg.bot_open_id,
    }})
}

pub(super) fn get_user(sim: &Shared, open_id: &str, query: &str) -> ApiResult {
    let id_type = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("user_id_type="))
        .unwrap_or("open_id");
    if id_type != "open_id" {
        // The bot only ever asks by open_id; anything else is a bug in the request.
        return Err(ApiError::biz(41012, "user id invalid error"));
    }
    let world = sim.world();
    match world.contact_access {
        ContactAccess::NoScope => {
            let mut e = ApiError::biz(
                99991672,
                "Access denied. One of the following scopes is required: [contact:contact.base:readonly, contact:contact:access_as_app, contact:contact:readonly, contact:contact:readonly_as_app]",
            );
            e.error = Some(json!({"permission_violations": [
                {"type": "action_scope_required", "subject": "contact:contact.base:readonly"}]}));
            return Err(e);
        }
        ContactAccess::OutsideScope => return Err(ApiError::biz(41050, "no user authority")),
        ContactAccess::Granted | ContactAccess::NoLeaderField => {}
    }
    drop(world);
    let user = sim
        .user(open_id)
        .ok_or_else(|| ApiError::biz(41012, "user id invalid error"))?;
    let world = sim.world();
    let mut body = json!({
        "open_id": user.open_id,
        "union_id": user.union_id,
        "user_id": user.user_id,
        "name": user.name,
        "status": {"is_frozen": false, "is_resigned": false, "is_activated": true,
                   "is_exited": false, "is_unjoin": false},
    });
    if world.contact_access == ContactAccess::Granted {
        if let Some(leader) = world.leaders.get(open_id) {
            body["leader_user_id"] = json!(leader);
        }
    }
    Ok(success(json!({ "user": body })))
}
