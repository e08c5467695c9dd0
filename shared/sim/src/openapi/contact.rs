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
        if let Some(department) = world.departments.get(open_id) {
            body["department_ids"] = json!([department]);
        }
    }
    Ok(success(json!({ "user": body })))
}

/// The access errors of the contact API, as [`get_user`] answers them.
fn check_access(sim: &Shared) -> Result<(), ApiError> {
    match sim.world().contact_access {
        ContactAccess::NoScope => Err(ApiError::biz(
            99991672,
            "Access denied. One of the following scopes is required: [contact:contact.base:readonly]",
        )),
        ContactAccess::OutsideScope => Err(ApiError::biz(41050, "no user authority")),
        ContactAccess::Granted | ContactAccess::NoLeaderField => Ok(()),
    }
}

/// `GET /open-apis/contact/v3/users/find_by_department?department_id=od-…&user_id_type=open_id
/// &department_id_type=open_department_id&page_size=N`: the department's direct users, one page
/// of at most `page_size` (1–50, default 10), with `has_more` (the simulator serves one page).
pub(super) fn find_by_department(sim: &Shared, query: &str) -> ApiResult {
    check_access(sim)?;
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    };
    let Some(department) = param("department_id").filter(|d| !d.is_empty()) else {
        return Err(ApiError::biz(
            99992402,
            "field validation failed: department_id",
        ));
    };
    if param("user_id_type").is_some_and(|t| t != "open_id") {
        return Err(ApiError::biz(41012, "user id invalid error"));
    }
    let page_size = param("page_size")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(10);
    if !(1..=50).contains(&page_size) {
        return Err(ApiError::biz(
            99992402,
            "field validation failed: page_size",
        ));
    }
    let world = sim.world();
    let mut members: Vec<&String> = world
        .departments
        .iter()
        .filter(|(_, d)| d.as_str() == department)
        .map(|(u, _)| u)
        .collect();
    members.sort();
    let has_more = members.len() > page_size;
    let items: Vec<_> = members
        .into_iter()
        .take(page_size)
        .map(|open_id| json!({"open_id": open_id, "department_ids": [department]}))
        .collect();
    Ok(success(json!({ "has_more": has_more, "items": items })))
}
