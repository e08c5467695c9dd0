//! The contact API's calls the bot makes: get a user, for their leader and department
//! (`GET /open-apis/contact/v3/users/:user_id?user_id_type=open_id`, `approval-apis.md` §1), and a
//! department's direct users, for the candidates of a 转交
//! (`GET /open-apis/contact/v3/users/find_by_department`).

use serde::Deserialize;

use super::error::{FeishuError, FeishuResult};
use super::request::{path_segment, ApiRequest, Method};

/// The fields of a user the bot reads (Feishu sends more). A field whose scope the app lacks is
/// left out of the answer, not an error: `leader_user_id` needs `contact:user.department:readonly`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ContactUser {
    /// The user's open_id.
    #[serde(default)]
    pub open_id: Option<String>,
    /// The user's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The direct manager's open_id (with `user_id_type=open_id`).
    #[serde(default)]
    pub leader_user_id: Option<String>,
    /// The user's departments (`od-…` with `department_id_type=open_department_id`); left out
    /// without `contact:user.department:readonly`, as `leader_user_id` is.
    #[serde(default)]
    pub department_ids: Vec<String>,
}

/// `data` of the find-by-department answer: one page of users.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DepartmentUsers {
    /// `items`: the department's direct users on this page.
    #[serde(default)]
    pub items: Vec<ContactUser>,
    /// `has_more`: more pages follow (the bot reads the first only).
    #[serde(default)]
    pub has_more: bool,
}

/// Most users one page of [`find_by_department`] returns (Feishu's `page_size` maximum).
pub const MAX_DEPARTMENT_PAGE: u32 = 50;

/// `GET /open-apis/contact/v3/users/find_by_department?department_id=<od-…>&user_id_type=open_id
/// &department_id_type=open_department_id&page_size=<n>`: the first page of a department's direct
/// users (scope `contact:contact.base:readonly`, the department in the app's contact data scope;
/// the same refusals as [`get_user`]). `page_size` is capped at [`MAX_DEPARTMENT_PAGE`]. This
/// endpoint is not in `../shared/feishu/` (Feishu's contact v3 reference names it); its answer is
/// read leniently: a missing `items` is an empty page.
pub fn find_by_department(department_id: &str, page_size: u32) -> FeishuResult<ApiRequest> {
    let id = path_segment("department_id", department_id)?;
    let n = page_size.clamp(1, MAX_DEPARTMENT_PAGE);
    Ok(ApiRequest {
        method: Method::Get,
        path: format!(
            "/open-apis/contact/v3/users/find_by_department?department_id={id}&user_id_type=open_id&department_id_type=open_department_id&page_size={n}"
        ),
        body: None,
    })
}

/// `data` of the get-user answer.
#[derive(Debug, Clone, Deserialize)]
pub struct UserData {
    /// `user`: the user asked for.
    pub user: ContactUser,
}

/// `GET /open-apis/contact/v3/users/:open_id?user_id_type=open_id`.
pub fn get_user(open_id: &str) -> FeishuResult<ApiRequest> {
    let id = path_segment("open_id", open_id)?;
    Ok(ApiRequest {
        method: Method::Get,
        path: format!(
            "/open-apis/contact/v3/users/{id}?user_id_type=open_id&department_id_type=open_department_id"
        ),
        body: None,
    })
}

/// Who a contact look-up names as the requester's approver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leader {
    /// The leader's open_id.
    Found(String),
    /// The user has no leader: `leader_user_id` omitted or `""` (which of the two Feishu sends
    /// is unconfirmed, `approval-apis.md` §1; both mean none), or it is the user themself.
    None,
    /// The app may not read this user or the field (99991672 scope missing, 41050 user outside
    /// the contact data scope): the bot falls back to the tutorial's flow.
    NoPermission {
        /// Feishu's `code` (99991672 or 41050).
        code: i64,
    },
}

/// 41012 `user id invalid error`: no such user (or an id of another type).
pub const UNKNOWN_USER_CODE: i64 = 41_012;

/// The bot's identity, from `GET /open-apis/bot/v3/info` (`approval-apis.md` §8). Its answer is
/// flat: `{"code":0,"msg":"ok","bot":{"activate_status":2,"app_name":"…","open_id":"ou_…",…}}`,
/// with no `data`.
/// Only `open_id` is read; the rest of `bot` (`activate_status`, `app_name`, …) is not used.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BotInfo {
    /// The bot's open_id in this app: what a mention of it carries.
    pub open_id: String,
}

/// `GET /open-apis/bot/v3/info`.
pub fn bot_info() -> ApiRequest {
    ApiRequest {
        method: Method::Get,
        path: "/open-apis/bot/v3/info".to_owned(),
        body: None,
    }
}

impl BotInfo {
    /// Reads the answer's `bot`; an answer without a well-formed one is a transport error.
    pub fn from_body(mut body: serde_json::Value) -> FeishuResult<Self> {
        let bot = body
            .get_mut("bot")
            .map(serde_json::Value::take)
            .unwrap_or_default();
        serde_json::from_value::<Self>(bot)
            .ok()
            .filter(|b| crate::cards::text::FeishuId::OpenId.is_valid(&b.open_id))
            .ok_or_else(|| {
                FeishuError::Transport("bot/v3/info answered without a bot open_id".to_owned())
            })
    }
}

/// 99991672: the app lacks the API scope; 41050: the user is outside the contact data scope.
pub const NO_PERMISSION_CODES: [i64; 2] = [99_991_672, 41_050];

impl Leader {
    /// Reads the answer of [`get_user`] for `open_id`; errors other than a missing permission
    /// stay errors (the caller decides).
    pub fn of(open_id: &str, answer: FeishuResult<ContactUser>) -> FeishuResult<Self> {
        match answer {
            Ok(user) => Ok(match user.leader_user_id.filter(|l| !l.is_empty()) {
                Some(leader) if leader != open_id => Self::Found(leader),
                _ => Self::None,
            }),
            Err(FeishuError::Api { code, .. }) if NO_PERMISSION_CODES.contains(&code) => {
                Ok(Self::NoPermission { code })
            }
            // 41012: not a user of this app; nobody to route to.
            Err(FeishuError::Api {
                code: UNKNOWN_USER_CODE,
                ..
            }) => Ok(Self::None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bot_info_answer_is_read_flat_and_needs_an_open_id() {
        let body = serde_json::json!({"code": 0, "msg": "ok", "bot": {
            "activate_status": 2, "app_name": "审批助手", "avatar_url": "https://x", "ip_white_list": [],
            "open_id": "ou_0b3f7c1e2d4a5968b7c6d5e4f3a2b1c0"}});
        assert_eq!(
            BotInfo::from_body(body).unwrap().open_id,
            "ou_0b3f7c1e2d4a5968b7c6d5e4f3a2b1c0"
        );
        for broken in [
            serde_json::json!({"code": 0, "data": {"open_id": "ou_1"}}),
            serde_json::json!({"code": 0, "bot": {"open_id": "all"}}),
        ] {
            assert!(BotInfo::from_body(broken).is_err());
        }
        assert_eq!(bot_info().api_name(), "bot.info");
    }

    #[test]
    fn the_request_names_the_user_by_open_id() {
        let request = get_user("ou_7dab8a3d3cdcc9da365777c7ad535d62").unwrap();
        assert_eq!(request.method, Method::Get);
        assert_eq!(
            request.path,
            "/open-apis/contact/v3/users/ou_7dab8a3d3cdcc9da365777c7ad535d62?user_id_type=open_id&department_id_type=open_department_id"
        );
        assert!(request.body.is_none());
        assert_eq!(request.api_name(), "contact.user.get");
        assert!(get_user("ou_1/../../auth").is_err());
    }

    #[test]
    fn the_documented_answer_parses_and_every_no_leader_shape_is_none() {
        let body = serde_json::json!({"user": {
            "open_id": "ou_7dab8a3d3cdcc9da365777c7ad535d62", "name": "张三",
            "leader_user_id": "ou_7dab8a3d3cdcc9da365777c7ad535d99", "job_title": "xxxxx"}});
        let user = serde_json::from_value::<UserData>(body).unwrap().user;
        let me = "ou_7dab8a3d3cdcc9da365777c7ad535d62";
        assert_eq!(
            Leader::of(me, Ok(user.clone())),
            Ok(Leader::Found("ou_7dab8a3d3cdcc9da365777c7ad535d99".into()))
        );
        for leader in [None, Some(String::new()), Some(me.to_owned())] {
            let user = ContactUser {
                leader_user_id: leader,
                ..user.clone()
            };
            assert_eq!(Leader::of(me, Ok(user)), Ok(Leader::None));
        }
        for code in NO_PERMISSION_CODES {
            let error = FeishuError::Api {
                code,
                msg: "denied".into(),
                log_id: None,
            };
            assert_eq!(
                Leader::of(me, Err(error)),
                Ok(Leader::NoPermission { code })
            );
        }
        let unknown = FeishuError::Api {
            code: UNKNOWN_USER_CODE,
            msg: "user id invalid error".into(),
            log_id: None,
        };
        assert_eq!(Leader::of(me, Err(unknown)), Ok(Leader::None));
        let other = FeishuError::Server {
            status: 502,
            log_id: None,
        };
        assert!(Leader::of(me, Err(other)).is_err());
    }
}
