//! Feishu as the sender: user messages as `im.message.receive_v1`, card clicks as callbacks, the URL check.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::card;
use super::crypto::{encrypt, random_hex, sign_sha1, sign_sha256};
use super::openapi::new_message_id;
use super::state::{ChatMessage, Delivery, Sender, SimUser, StoredMessage, UpdateTokenInfo};
use super::{Shared, SimError};

/// Which of the test chats a user message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    /// The user's p2p chat with the bot.
    P2p,
    /// The group chat; the message @mentions the bot.
    Group,
    /// The group chat, a message that does not @mention the bot (what an app with the
    /// group-message scope receives for every group message). `@Alice` in its text becomes a
    /// mention of another user, [`OTHER_USER_OPEN_ID`].
    GroupNotAddressed,
}

/// The open_id of `@Alice`, a group member who is not the bot (`ChatKind::GroupNotAddressed`).
pub const OTHER_USER_OPEN_ID: &str = "ou_a11ce0000000000000000000000000a1";

/// A card callback, its answer and what the Feishu client made of it.
#[derive(Clone, Serialize, Deserialize)]
pub struct CallbackDelivery {
    pub delivery: Delivery,
    pub message_id: String,
    /// The update token sent with this callback (`c-…`).
    pub update_token: String,
    /// The client error a user would see: 200341 timeout, 200671 non-200, 200672 bad body,
    /// 200673 bad card, 200830 card 2.0 → 1.0, 200342 connection failed.
    pub client_error: Option<i64>,
    pub toast: Option<Value>,
    /// Whether the answer's card replaced the card users see.
    pub card_updated: bool,
}

impl std::fmt::Debug for CallbackDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackDelivery")
            .field("delivery", &self.delivery)
            .field("message_id", &self.message_id)
            .field("update_token", &"c-***")
            .field("client_error", &self.client_error)
            .field("toast", &self.toast)
            .field("card_updated", &self.card_updated)
            .finish()
    }
}

/// How a push is protected.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Protection {
    /// Encrypted and SHA-256-signed when an Encrypt Key is set (events, schema 2.0 callbacks).
    EventStyle,
    /// Plain body, SHA-1 signature with the Verification Token (legacy card callbacks).
    Legacy,
    /// Encrypted when a key is set, no signature headers (url_verification).
    Challenge,
}

/// The placeholder of the bot's @mention in a group message the simulator sends (`mentions[0].key`).
pub(crate) const BOT_MENTION_KEY: &str = "@_user_1";

pub(crate) async fn user_message(
    sim: &Shared,
    url: &str,
    user: &SimUser,
    chat: ChatKind,
    text: &str,
) -> Delivery {
    user_message_of(sim, url, user, chat, text, false).await
}

/// A user's message: `text`, or with `rich` a rich-text (`post`) message holding it as one text
/// run, in the received shape (`approval-apis.md` §2: flat, no locale; the bot's @mention an
/// `at` run).
pub(crate) async fn user_message_of(
    sim: &Shared,
    url: &str,
    user: &SimUser,
    chat: ChatKind,
    text: &str,
    rich: bool,
) -> Delivery {
    let cfg = &sim.config;
    let now = sim.clock.now_ms();
    let message_id = new_message_id();
    let tenant_key = sim.tenant_of_user(&user.open_id);
    let (chat_id, chat_type) = match chat {
        ChatKind::P2p => (user.p2p_chat_id.clone(), "p2p"),
        ChatKind::Group | ChatKind::GroupNotAddressed => (cfg.group_chat_id.clone(), "group"),
    };
    let content_text = match chat {
        ChatKind::P2p => text.to_owned(),
        ChatKind::Group => format!("{BOT_MENTION_KEY} {text}"),
        ChatKind::GroupNotAddressed => text.replace("@Alice", BOT_MENTION_KEY),
    };
    let (msg_type, content) = if rich {
        let mut runs = Vec::new();
        if chat == ChatKind::Group {
            runs.push(
                json!({"tag": "at", "user_id": BOT_MENTION_KEY, "user_name": cfg.bot_name, "style": []}),
            );
        }
        runs.push(json!({"tag": "text", "text": format!(" {text}"), "style": ["bold"]}));
        ("post", json!({"title": "", "content": [runs]}).to_string())
    } else {
        ("text", json!({ "text": content_text }).to_string())
    };
    let mut message = json!({
        "message_id": message_id,
        "create_time": now.to_string(),
        "update_time": now.to_string(),
        "chat_id": chat_id,
        "chat_type": chat_type,
        "message_type": msg_type,
        "content": content,
    });
    if chat == ChatKind::Group {
        message["mentions"] = json!([{
            "key": BOT_MENTION_KEY,
            "id": {"union_id": "", "user_id": "", "open_id": cfg.bot_open_id},
            "name": cfg.bot_name,
            "tenant_key": cfg.tenant_key,
        }]);
    }
    if chat == ChatKind::GroupNotAddressed && text.contains("@Alice") {
        message["mentions"] = json!([{
            "key": BOT_MENTION_KEY,
            "id": {"union_id": "", "user_id": "", "open_id": OTHER_USER_OPEN_ID},
            "name": "Alice",
            "tenant_key": cfg.tenant_key,
        }]);
    }
    let event = json!({
        "schema": "2.0",
        "header": {
            "event_id": random_hex(16),
            "event_type": "im.message.receive_v1",
            "create_time": now.to_string(),
            "token": cfg.verification_token,
            "app_id": cfg.app_id,
            "tenant_key": tenant_key,
        },
        "event": {
            "sender": {
                "sender_id": {"union_id": user.union_id, "user_id": user.user_id, "open_id": user.open_id},
                "sender_type": "user",
                "tenant_key": tenant_key,
            },
            "message": message,
        }
    });
    sim.world().messages.push(StoredMessage {
        msg: ChatMessage {
            message_id: message_id.clone(),
            chat_id,
            sender: Sender::User {
                open_id: user.open_id.clone(),
            },
            msg_type: msg_type.into(),
            content,
            parent_id: None,
            root_id: None,
            create_time_ms: now,
            update_time_ms: now,
            card_id: None,
            uuid: None,
        },
        inline_card: None,
    });
    post(
        sim,
        url,
        "event",
        &event,
        Protection::EventStyle,
        Some(message_id),
    )
    .await
}

/// A 2.0 event envelope of `event_type` around `event` for `user`'s tenant, as Feishu pushes it.
fn envelope(sim: &Shared, user: &SimUser, event_type: &str, event: Value) -> Value {
    let cfg = &sim.config;
    let tenant_key = sim.tenant_of_user(&user.open_id);
    json!({
        "schema": "2.0",
        "header": {
            "event_id": random_hex(16),
            "event_type": event_type,
            "create_time": sim.clock.now_ms().to_string(),
            "token": cfg.verification_token,
            "app_id": cfg.app_id,
            "tenant_key": tenant_key,
        },
        "event": event,
    })
}

/// Pushes a new `app_ticket` to `url` (the 1.0 event `{app_id, app_ticket, type}`).
pub(crate) async fn app_ticket(sim: &Shared, url: &str) -> Delivery {
    let now = sim.clock.now_ms();
    let ticket = sim.world().store_app.new_ticket(now);
    let event = json!({"app_id": sim.config.app_id, "app_ticket": ticket, "type": "app_ticket"});
    let body = crate::store_app::v1_envelope(&sim.config.verification_token, now, event);
    post(sim, url, "event", &body, Protection::EventStyle, None).await
}

fn user_id_json(user: &SimUser) -> Value {
    json!({"union_id": user.union_id, "user_id": user.user_id, "open_id": user.open_id})
}

/// `user` opens their p2p chat with the bot: `im.chat.access_event.bot_p2p_chat_entered_v1`
/// (`approval-apis.md` §3.1).
pub(crate) async fn p2p_chat_entered(sim: &Shared, url: &str, user: &SimUser) -> Delivery {
    let last = sim
        .world()
        .messages
        .iter()
        .rev()
        .find(|m| m.msg.chat_id == user.p2p_chat_id)
        .map(|m| (m.msg.message_id.clone(), m.msg.create_time_ms));
    let mut event = json!({"chat_id": user.p2p_chat_id, "operator_id": user_id_json(user)});
    if let Some((id, at)) = last {
        event["last_message_id"] = json!(id);
        event["last_message_create_time"] = json!(at.to_string());
    }
    let body = envelope(
        sim,
        user,
        "im.chat.access_event.bot_p2p_chat_entered_v1",
        event,
    );
    post(sim, url, "event", &body, Protection::EventStyle, None).await
}

/// `user` clicks the bot menu item whose push-event key is `event_key`: `application.bot.menu_v6`
/// (`approval-apis.md` §3.2; no chat, no message).
pub(crate) async fn menu_click(
    sim: &Shared,
    url: &str,
    user: &SimUser,
    event_key: &str,
) -> Delivery {
    let event = json!({
        "operator": {"operator_name": user.name, "operator_id": user_id_json(user)},
        "event_key": event_key,
        "timestamp": sim.clock.now_ms() / 1000,
    });
    let body = envelope(sim, user, "application.bot.menu_v6", event);
    post(sim, url, "event", &body, Protection::EventStyle, None).await
}

pub(crate) async fn post_event(
    sim: &Shared,
    url: &str,
    kind: &str,
    plaintext: &Value,
    message_id: Option<String>,
) -> Delivery {
    post(
        sim,
        url,
        kind,
        plaintext,
        Protection::EventStyle,
        message_id,
    )
    .await
}

pub(crate) async fn url_verification(sim: &Shared, url: &str, challenge: &str) -> Delivery {
    let body = json!({
        "challenge": challenge,
        "token": sim.config.verification_token,
        "type": "url_verification",
    });
    post(
        sim,
        url,
        "url_verification",
        &body,
        Protection::Challenge,
        None,
    )
    .await
}

pub(crate) async fn card_callback(
    sim: &Shared,
    url: &str,
    operator: &SimUser,
    message_id: &str,
    value: Value,
    legacy: bool,
) -> Result<CallbackDelivery, SimError> {
    let action = json!({"value": value, "tag": "button"});
    card_callback_action(sim, url, operator, message_id, action, legacy).await
}

/// A card callback carrying `action` as given (`value`, `tag`, and for a form submit `name` and
/// `form_value`).
pub(crate) async fn card_callback_action(
    sim: &Shared,
    url: &str,
    operator: &SimUser,
    message_id: &str,
    action: Value,
    legacy: bool,
) -> Result<CallbackDelivery, SimError> {
    let cfg = &sim.config;
    let now = sim.clock.now_ms();
    let token = format!("c-{}", random_hex(20));
    let chat_id = {
        let mut world = sim.world();
        let stored = world
            .message(message_id)
            .ok_or_else(|| SimError::NoMessage(message_id.to_owned()))?;
        if stored.msg.msg_type != "interactive" {
            return Err(SimError::NotACard(message_id.to_owned()));
        }
        let chat_id = stored.msg.chat_id.clone();
        world.update_tokens.insert(
            token.clone(),
            UpdateTokenInfo {
                token: token.clone(),
                message_id: message_id.to_owned(),
                issued_at_ms: now,
                answered_at_ms: None,
                uses: 0,
            },
        );
        chat_id
    };
    // The header names the tenant the card (its chat) belongs to; the operator's is the clicker's
    // own (card-callback-communication: they differ for an external user in a shared chat).
    let app_tenant = sim.tenant_of_chat(&chat_id);
    let operator_tenant = sim.tenant_of_user(&operator.open_id);
    let (body, kind, protection) = if legacy {
        let body = json!({
            "open_id": operator.open_id,
            "user_id": operator.user_id,
            "open_message_id": message_id,
            "open_chat_id": chat_id,
            "tenant_key": app_tenant,
            "token": token,
            "action": action,
        });
        (body, "card_callback_legacy", Protection::Legacy)
    } else {
        let body = json!({
            "schema": "2.0",
            "header": {
                "event_id": random_hex(16),
                "token": cfg.verification_token,
                "create_time": (now * 1000).to_string(),
                "event_type": "card.action.trigger",
                "tenant_key": app_tenant,
                "app_id": cfg.app_id,
            },
            "event": {
                "operator": {
                    "tenant_key": operator_tenant,
                    "user_id": operator.user_id,
                    "open_id": operator.open_id,
                    "union_id": operator.union_id,
                },
                "token": token,
                "action": action,
                "host": "im_message",
                "context": {"open_message_id": message_id, "open_chat_id": chat_id},
            }
        });
        (body, "card_callback", Protection::EventStyle)
    };
    Ok(send_callback(sim, url, message_id, &token, &body, kind, protection).await)
}

/// Feishu re-delivers a callback that was not answered: the same body (same `event_id` and
/// update token), signed anew; the answer is applied as for the first delivery.
pub(crate) async fn redeliver_callback(
    sim: &Shared,
    url: &str,
    original: &CallbackDelivery,
) -> CallbackDelivery {
    let legacy = original.delivery.kind == "card_callback_legacy";
    let protection = if legacy {
        Protection::Legacy
    } else {
        Protection::EventStyle
    };
    send_callback(
        sim,
        url,
        &original.message_id,
        &original.update_token,
        &original.delivery.plaintext,
        &original.delivery.kind,
        protection,
    )
    .await
}

/// Posts a card callback and applies its answer (toast, immediate card update) as Feishu does.
async fn send_callback(
    sim: &Shared,
    url: &str,
    message_id: &str,
    token: &str,
    body: &Value,
    kind: &str,
    protection: Protection,
) -> CallbackDelivery {
    let legacy = protection == Protection::Legacy;
    let token = token.to_owned();
    {
        let mut world = sim.world();
        *world.interactions.entry(message_id.to_owned()).or_default() += 1;
    }
    let delivery = post(sim, url, kind, body, protection, None).await;
    let answered_at = sim.clock.now_ms();
    let mut world = sim.world();
    if let Some(n) = world.interactions.get_mut(message_id) {
        *n = n.saturating_sub(1);
    }
    let mut out = CallbackDelivery {
        delivery: delivery.clone(),
        message_id: message_id.to_owned(),
        update_token: token.clone(),
        client_error: None,
        toast: None,
        card_updated: false,
    };
    match delivery.status {
        None if delivery.error.as_deref() == Some("timeout") => out.client_error = Some(200341),
        None => out.client_error = Some(200342),
        Some(200) => {
            if let Some(t) = world.update_tokens.get_mut(&token) {
                t.answered_at_ms = Some(answered_at);
            }
            match &delivery.response_json {
                Some(Value::Object(resp)) => {
                    out.toast = resp.get("toast").cloned();
                    let new_card = if legacy {
                        let mut rest = resp.clone();
                        rest.remove("toast");
                        (!rest.is_empty()).then_some(Value::Object(rest))
                    } else {
                        match resp.get("card") {
                            None => None,
                            Some(c) => match (c.get("type").and_then(Value::as_str), c.get("data"))
                            {
                                (Some("raw"), Some(d @ Value::Object(_))) => Some(d.clone()),
                                (Some("template"), Some(d @ Value::Object(_))) => {
                                    Some(json!({"type": "template", "data": d}))
                                }
                                _ => {
                                    out.client_error = Some(200673);
                                    None
                                }
                            },
                        }
                    };
                    if let Some(new_card) = new_card {
                        apply_callback_card(
                            &mut world,
                            message_id,
                            new_card,
                            answered_at,
                            &mut out,
                        );
                    }
                }
                _ => out.client_error = Some(200672),
            }
        }
        Some(_) => out.client_error = Some(200671),
    }
    out
}

/// The immediate update carried by a callback answer (not while the card is streaming).
fn apply_callback_card(
    world: &mut super::state::World,
    message_id: &str,
    new_card: Value,
    now: i64,
    out: &mut CallbackDelivery,
) {
    let Some(doc) = world.card_doc_mut(message_id, now) else {
        return;
    };
    if card::is_v2(&doc.json) && !card::is_v2(&new_card) && !card::is_template(&new_card) {
        out.client_error = Some(200830);
        return;
    }
    if card::validate_any(&new_card).is_err() {
        out.client_error = Some(200673);
        return;
    }
    if doc.streaming() {
        return;
    }
    doc.set(new_card, now, "callback", false);
    out.card_updated = true;
}

pub(crate) async fn replay(
    sim: &Shared,
    url: &str,
    original: &Delivery,
    header: &str,
    value: &str,
) -> Delivery {
    let mut headers: Vec<(String, String)> = original
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case(header))
        .cloned()
        .collect();
    headers.push((header.to_owned(), value.to_owned()));
    let push = Push {
        kind: format!("{}_replay", original.kind),
        plaintext: original.plaintext.clone(),
        body: original.body.clone(),
        headers,
        message_id: original.message_id.clone(),
    };
    send(sim, url, push).await
}

/// One push as it goes on the wire.
struct Push {
    kind: String,
    plaintext: Value,
    body: String,
    headers: Vec<(String, String)>,
    message_id: Option<String>,
}

/// Posts `push` to `url` with Feishu's answer deadline and records the [`Delivery`].
async fn send(sim: &Shared, url: &str, push: Push) -> Delivery {
    let sent_at_ms = sim.clock.now_ms();
    let started = Instant::now();
    let mut request = sim
        .http
        .post(url)
        .timeout(sim.config.push_deadline)
        .body(push.body.clone());
    for (k, v) in &push.headers {
        request = request.header(k.as_str(), v.as_str());
    }
    let failed = |e: reqwest::Error| {
        let error = if e.is_timeout() {
            "timeout".to_owned()
        } else {
            e.to_string()
        };
        (None, String::new(), Some(error))
    };
    let (status, response_body, error) = match request.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.text().await {
                Ok(text) => (Some(status), text, None),
                Err(e) => failed(e),
            }
        }
        Err(e) => failed(e),
    };
    let delivery = Delivery {
        kind: push.kind,
        url: url.to_owned(),
        plaintext: push.plaintext,
        body: push.body,
        headers: push.headers,
        sent_at_ms,
        response_json: serde_json::from_str(&response_body).ok(),
        answered_at_ms: status.map(|_| sim.clock.now_ms()),
        status,
        response_body,
        elapsed_ms: started.elapsed().as_millis() as u64,
        error,
        message_id: push.message_id,
    };
    sim.world().deliveries.push(delivery.clone());
    delivery
}

async fn post(
    sim: &Shared,
    url: &str,
    kind: &str,
    plaintext: &Value,
    protection: Protection,
    message_id: Option<String>,
) -> Delivery {
    let cfg = &sim.config;
    let plain = plaintext.to_string();
    let timestamp = (sim.clock.now_ms() / 1000).to_string();
    let nonce = random_hex(8);
    let key = cfg.encrypt_key.as_deref().filter(|k| !k.is_empty());
    let body = match (protection, key) {
        (Protection::EventStyle | Protection::Challenge, Some(key)) => {
            json!({ "encrypt": encrypt(key, plain.as_bytes()) }).to_string()
        }
        _ => plain,
    };
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    let signature = match protection {
        Protection::EventStyle => Some(sign_sha256(
            &timestamp,
            &nonce,
            key.unwrap_or(""),
            body.as_bytes(),
        )),
        Protection::Legacy => Some(sign_sha1(
            &timestamp,
            &nonce,
            &cfg.verification_token,
            body.as_bytes(),
        )),
        Protection::Challenge => None,
    };
    if let Some(signature) = signature {
        headers.push(("X-Lark-Request-Timestamp".into(), timestamp));
        headers.push(("X-Lark-Request-Nonce".into(), nonce));
        headers.push(("X-Lark-Signature".into(), signature));
    }
    if protection == Protection::Legacy {
        headers.push(("X-Refresh-Token".into(), random_hex(16)));
    }
    let push = Push {
        kind: kind.to_owned(),
        plaintext: plaintext.clone(),
        body,
        headers,
        message_id,
    };
    send(sim, url, push).await
}
