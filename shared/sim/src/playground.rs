//! The playground: the simulator's chats as a web page, so a person can use the bot with no Feishu
//! account. `GET /playground` renders, on the server, the chat list of the user you are (switch
//! between the simulated users), the messages of one chat with every card drawn from its current
//! JSON 2.0, a box to type a message, and the Open API calls the bot made for the selected card.
//! A message goes to the bot as the signed, encrypted event Feishu would send (with @bot in the
//! group); a button or a form's submit goes as the card callback Feishu would send (new style, or
//! legacy with the switch) and its answer is applied as Feishu applies it. A small script polls
//! `GET /playground/version` and swaps the page in place when anything changed (CardKit writes,
//! PATCHes, new messages), typing out a streamed text's new part.
//!
//! Every text from users and cards goes through maud's escaping; the card's own markup (`<at>`,
//! `<text_tag>`, `**bold**`, line breaks) is read by a small scanner that emits only fixed tags.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::delivery::{self, ChatKind};
use super::state::{ApiCall, CardSnapshot, ChatMessage, Sender, SimUser, World};
use super::{card, Shared};

/// Where the playground sends what the person does: the bot's two callback URLs.
#[derive(Debug, Clone, Default)]
pub struct BotUrls {
    pub event_url: String,
    pub card_url: String,
}

/// How long a press's toast stays on the page (the client's toast fades after a few seconds).
const TOAST_SHOWN: Duration = Duration::from_secs(5);

/// The answer's toast of a person's last press or the reason nothing was sent, shown until
/// `until` (real time, not the simulator's clock: it is for the person looking at the page).
#[derive(Debug, Clone)]
pub struct PlaygroundToast {
    pub text: String,
    pub until: Instant,
}

/// What a page shows: who you are, which chat, which card's calls, the language, the callback
/// style. It is the page's query, and every post carries it back.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub(super) struct View {
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    card: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    legacy: Option<String>,
}

impl View {
    /// The view a post's fields name.
    fn from_fields(fields: &[(String, String)]) -> Self {
        let get = |k: &str| field(fields, k).map(str::to_owned);
        Self {
            user: get("as"),
            chat: get("chat"),
            card: get("card"),
            lang: get("lang"),
            legacy: get("legacy"),
        }
    }

    fn english(&self) -> bool {
        self.lang.as_deref() == Some("en")
    }

    /// The client's text: `zh` in the Chinese client, `en` in the English one.
    fn pick<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        if self.english() {
            en
        } else {
            zh
        }
    }

    fn legacy(&self) -> bool {
        self.legacy.as_deref() == Some("1")
    }

    /// This view's address with who, which chat and which card changed.
    fn href(&self, user: &str, chat: &str, card: Option<&str>) -> String {
        let view = View {
            user: Some(user.to_owned()),
            chat: Some(chat.to_owned()),
            card: card.map(str::to_owned),
            lang: self.english().then(|| "en".to_owned()),
            legacy: self.legacy().then(|| "1".to_owned()),
        };
        let query = serde_urlencoded::to_string(&view).unwrap_or_default();
        format!("/playground?{query}")
    }

    /// Back to the page a post came from (the selected card's calls stay open).
    fn back(&self, user: &str) -> Redirect {
        let chat = self.chat.as_deref().unwrap_or_default();
        Redirect::to(&self.href(user, chat, self.card.as_deref()))
    }
}

/// A form field's value by name.
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A user's chats with the bot, as (chat_id, title): their p2p chat, and the group (every
/// simulated user is in it).
fn chats(shared: &Shared, user: &SimUser) -> [(String, String); 2] {
    [
        (
            user.p2p_chat_id.clone(),
            format!("{} · {}", shared.config.bot_name, user.name),
        ),
        (
            shared.config.group_chat_id.clone(),
            "审批群 (group)".to_owned(),
        ),
    ]
}

/// `GET /playground/version`: changes whenever anything a page shows may have changed.
pub(super) async fn version(State(shared): State<Arc<Shared>>) -> String {
    version_of(&shared.world())
}

/// The world's version: its messages, Open API calls, card revisions and deliveries so far. A
/// page carries the version it was drawn at (`#live[data-version]`), so a change that lands
/// between drawing it and the script's first poll is not missed.
fn version_of(world: &World) -> String {
    let revisions: usize = world
        .messages
        .iter()
        .map(|m| m.inline_card.as_ref().map_or(0, |d| d.history.len()))
        .sum::<usize>()
        + world
            .entities
            .values()
            .map(|e| e.doc.history.len())
            .sum::<usize>();
    format!(
        "{}-{}-{}-{}",
        world.messages.len(),
        world.calls.len(),
        revisions,
        world.deliveries.len()
    )
}

/// `GET /playground`.
pub(super) async fn page(State(shared): State<Arc<Shared>>, Query(view): Query<View>) -> Response {
    let all = shared.users();
    let me = view
        .user
        .as_deref()
        .and_then(|id| all.iter().find(|u| u.open_id == id))
        .unwrap_or(&all[0])
        .clone();
    // The people by tenant, the configured tenant first (more than one only for a store app).
    let mut tenants: Vec<(String, Vec<SimUser>)> = Vec::new();
    for user in &all {
        let tenant = shared.tenant_of_user(&user.open_id);
        match tenants.iter_mut().find(|(t, _)| *t == tenant) {
            Some((_, users)) => users.push(user.clone()),
            None => tenants.push((tenant, vec![user.clone()])),
        }
    }
    let my_chats = chats(&shared, &me);
    let chat = view
        .chat
        .as_deref()
        .and_then(|id| my_chats.iter().find(|(c, _)| c == id))
        .unwrap_or(&my_chats[0])
        .clone();
    let names: HashMap<String, String> = all
        .iter()
        .map(|u| (u.open_id.clone(), u.name.clone()))
        .chain([(
            shared.config.bot_open_id.clone(),
            shared.config.bot_name.clone(),
        )])
        .collect();
    let now = shared.clock.now_ms();
    let (messages, cards, calls, toast, configured, drawn_at) = {
        let mut world = shared.world();
        let messages: Vec<ChatMessage> = world
            .messages
            .iter()
            .filter(|m| m.msg.chat_id == chat.0)
            .map(|m| m.msg.clone())
            .collect();
        let cards: HashMap<String, CardSnapshot> = messages
            .iter()
            .filter(|m| m.msg_type == "interactive")
            .filter_map(|m| {
                let snapshot = world.snapshot_message_card(&m.message_id, now)?;
                Some((m.message_id.clone(), snapshot))
            })
            .collect();
        // Only a card on this page has a calls panel (an empty or foreign id lists nothing).
        let calls = view
            .card
            .as_deref()
            .filter(|id| cards.contains_key(*id))
            .map(|id| {
                let entity = cards.get(id).and_then(|c| c.card_id.as_deref());
                calls_for(&world.calls, id, entity)
            })
            .unwrap_or_default();
        let toast = world
            .playground_toasts
            .get(&me.open_id)
            .filter(|t| t.until > Instant::now())
            .map(|t| t.text.clone());
        let drawn_at = version_of(&world);
        (
            messages,
            cards,
            calls,
            toast,
            world.bot_urls.is_some(),
            drawn_at,
        )
    };
    let body = html! {
        div #live data-version=(drawn_at) {
            @if !configured {
                p.warn { "No bot is connected to this simulator yet (make run connects it)." }
            }
            @if let Some(toast) = &toast {
                div.toast { (toast) }
            }
            div.columns {
                nav.chats {
                    h2 { "Chats" }
                    @for (id, title) in &my_chats {
                        a.chat.active[*id == chat.0] href=(view.href(&me.open_id, id, None)) { (title) }
                    }
                }
                section.messages #messages {
                    h2 { (chat.1) }
                    @for m in &messages {
                        (message(m, &names, &cards, &view, &me, &chat.0, &shared.config.bot_name))
                    }
                    form.compose method="post" action="/playground/send" {
                        input type="hidden" name="as" value=(me.open_id);
                        input type="hidden" name="chat" value=(chat.0);
                        (view_fields(&view))
                        input #compose type="text" name="text" autocomplete="off"
                            placeholder=(view.pick("输入消息，例如 审批", "Type a message, e.g. 审批"));
                        button type="submit" { (view.pick("发送", "Send")) }
                    }
                }
                aside.calls {
                    h2 { "Open API calls" }
                    @if view.card.is_none() {
                        p.hint { "Pick “calls” on a card to see what the bot asked Feishu for it." }
                    }
                    @for c in &calls {
                        details.call {
                            summary {
                                span.method { (c.method) } " " (short_path(&c.path)) " → " (c.status)
                                @if let Some(code) = c.code { " code " (code) }
                            }
                            @if !c.body.is_empty() { div.label { "request" } pre { (truncate(&c.body, 1500)) } }
                            div.label { "answer" }
                            pre { (truncate(&c.response, 1500)) }
                        }
                    }
                }
            }
        }
    };
    let markup = html! {
        (DOCTYPE)
        html lang="zh" {
            head {
                meta charset="utf-8";
                title { "cardbot playground" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "cardbot playground" }
                    // The chat stays as it is when who you are, the language or the callback
                    // style changes (the page falls back to the p2p chat of a user not in it).
                    form.who method="get" action="/playground" {
                        input type="hidden" name="chat" value=(chat.0);
                        label { "You are "
                            select name="as" onchange="this.form.submit()" {
                                @if tenants.len() > 1 {
                                    // A store app: each tenant's people, so picking one switches tenant.
                                    @for (tenant, users) in &tenants {
                                        optgroup label={ "tenant " (tenant) } {
                                            @for u in users {
                                                option value=(u.open_id) selected[u.open_id == me.open_id] { (u.name) " (" (u.open_id) ")" }
                                            }
                                        }
                                    }
                                } @else {
                                    @for u in &all {
                                        option value=(u.open_id) selected[u.open_id == me.open_id] { (u.name) " (" (u.open_id) ")" }
                                    }
                                }
                            }
                        }
                        label { input type="checkbox" name="lang" value="en" checked[view.english()] onchange="this.form.submit()"; " English client" }
                        label { input type="checkbox" name="legacy" value="1" checked[view.legacy()] onchange="this.form.submit()"; " legacy callbacks" }
                    }
                }
                (body)
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// The hidden fields that keep the language and callback style across a post.
fn view_fields(view: &View) -> Markup {
    html! {
        @if let Some(card) = &view.card { input type="hidden" name="card" value=(card); }
        @if view.english() { input type="hidden" name="lang" value="en"; }
        @if view.legacy() { input type="hidden" name="legacy" value="1"; }
    }
}

fn message(
    m: &ChatMessage,
    names: &HashMap<String, String>,
    cards: &HashMap<String, CardSnapshot>,
    view: &View,
    me: &SimUser,
    chat: &str,
    bot_name: &str,
) -> Markup {
    let (who, from_bot) = match &m.sender {
        Sender::App { .. } => ("cardbot".to_owned(), true),
        Sender::User { open_id } => (
            names
                .get(open_id)
                .cloned()
                .unwrap_or_else(|| open_id.clone()),
            false,
        ),
    };
    let content: Value = serde_json::from_str(&m.content).unwrap_or(Value::Null);
    html! {
        div.message.bot[from_bot] data-message=(m.message_id) {
            div.sender { (who) }
            @match m.msg_type.as_str() {
                "interactive" => {
                    @if let Some(shown) = cards.get(&m.message_id) {
                        (render_card(&shown.card, shown.streaming, &m.message_id, names, view, me, chat))
                    }
                }
                "text" => {
                    div.text { (mentioned(content["text"].as_str().unwrap_or_default(), bot_name)) }
                }
                "post" => {
                    div.text { (mentioned(&feishu_kit::webhook::post_text(&content).unwrap_or_default(), bot_name)) }
                }
                other => {
                    div.text { "[" (other) "]" }
                }
            }
        }
    }
}

/// A card's text in the language of the view: `i18n_content` first, else `content`.
fn text_of(v: &Value, english: bool) -> String {
    let lang = if english { "en_us" } else { "zh_cn" };
    v.get("i18n_content")
        .and_then(|i| i.get(lang))
        .and_then(Value::as_str)
        .or_else(|| v.get("content").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned()
}

/// One card drawn from its JSON 2.0: header with its tags, body elements, and the summary.
fn render_card(
    card: &Value,
    streaming: bool,
    message_id: &str,
    names: &HashMap<String, String>,
    view: &View,
    me: &SimUser,
    chat: &str,
) -> Markup {
    let english = view.english();
    let header = &card["header"];
    let template = header["template"].as_str().unwrap_or("default");
    let summary = text_of(&card["config"]["summary"], english);
    let ctx = Ctx {
        message_id,
        names,
        view,
        me,
        chat,
    };
    html! {
        div.card.streaming[streaming] data-card=(message_id) {
            @if header.is_object() {
                div class=(format!("card-header t-{}", css_word(template))) {
                    span.title { (text_of(&header["title"], english)) }
                    @for tag in header["text_tag_list"].as_array().into_iter().flatten() {
                        span class=(format!("tag c-{}", css_word(tag["color"].as_str().unwrap_or("neutral")))) {
                            (text_of(&tag["text"], english))
                        }
                    }
                    @if header["subtitle"].is_object() {
                        div.subtitle { (text_of(&header["subtitle"], english)) }
                    }
                }
            }
            div.card-body {
                @for e in card["body"]["elements"].as_array().into_iter().flatten() {
                    (element(e, &ctx, None))
                }
            }
            div.card-foot {
                @if !summary.is_empty() { span.summary { (view.pick("摘要: ", "Summary: ")) (summary) } }
                a.calls-link href=(view.href(&me.open_id, chat, Some(message_id))) { "calls" }
            }
        }
    }
}

struct Ctx<'a> {
    message_id: &'a str,
    names: &'a HashMap<String, String>,
    view: &'a View,
    me: &'a SimUser,
    chat: &'a str,
}

impl Ctx<'_> {
    /// The hidden fields every press carries.
    fn press_fields(&self) -> Markup {
        html! {
            input type="hidden" name="as" value=(self.me.open_id);
            input type="hidden" name="chat" value=(self.chat);
            input type="hidden" name="message_id" value=(self.message_id);
            (view_fields(self.view))
        }
    }
}

/// A person's group message holds the bot's mention as its placeholder; the client shows the
/// name (the simulator's one mention is the bot).
fn mentioned(text: &str, bot_name: &str) -> String {
    text.replace(delivery::BOT_MENTION_KEY, &format!("@{bot_name}"))
}

/// Only `[a-z0-9-]` reaches a class name (`primary_filled` → `primary-filled`).
fn css_word(word: &str) -> String {
    word.chars()
        .map(|c| if c == '_' { '-' } else { c })
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(20)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// One body element. `form` is the name of the enclosing form, whose fields post with its submit.
fn element(e: &Value, ctx: &Ctx, form: Option<&str>) -> Markup {
    let english = ctx.view.english();
    let id = e["element_id"].as_str().unwrap_or_default();
    match e["tag"].as_str().unwrap_or_default() {
        "markdown" => html! {
            div.markdown data-eid=(id) { (markdown(&text_of(e, english), ctx.names)) }
        },
        "div" => html! {
            div.div data-eid=(id) {
                @if e["text"]["tag"] == "lark_md" {
                    (markdown(&text_of(&e["text"], english), ctx.names))
                } @else {
                    (text_of(&e["text"], english))
                }
            }
        },
        "hr" => html! { hr; },
        "column_set" => html! {
            div.columns-set {
                @for column in e["columns"].as_array().into_iter().flatten() {
                    div.column {
                        @for child in column["elements"].as_array().into_iter().flatten() {
                            (element(child, ctx, form))
                        }
                    }
                }
            }
        },
        "button" => button(e, ctx, form),
        "form" => {
            let name = e["name"].as_str().unwrap_or_default();
            html! {
                form.card-form method="post" action="/playground/press" {
                    (ctx.press_fields())
                    @for child in e["elements"].as_array().into_iter().flatten() {
                        (element(child, ctx, Some(name)))
                    }
                }
            }
        }
        "input" => {
            let name = e["name"].as_str().unwrap_or_default();
            html! {
                label.field {
                    input type="text" name=(format!("f_{name}")) placeholder=(text_of(&e["placeholder"], english))
                        value=(e["default_value"].as_str().unwrap_or_default()) required[e["required"] == true];
                }
            }
        }
        "date_picker" => {
            let name = e["name"].as_str().unwrap_or_default();
            html! {
                label.field {
                    span { (text_of(&e["placeholder"], english)) }
                    input type="date" name=(format!("d_{name}")) value=(e["initial_date"].as_str().unwrap_or_default())
                        required[e["required"] == true];
                }
            }
        }
        "select_static" => {
            let name = e["name"].as_str().unwrap_or_default();
            html! {
                label.field {
                    select name=(format!("f_{name}")) required[e["required"] == true] {
                        option value="" { (text_of(&e["placeholder"], english)) }
                        @for o in e["options"].as_array().into_iter().flatten() {
                            option value=(o["value"].as_str().unwrap_or_default()) { (text_of(&o["text"], english)) }
                        }
                    }
                }
            }
        }
        "multi_select_static" => {
            let name = e["name"].as_str().unwrap_or_default();
            html! {
                label.field {
                    span { (text_of(&e["placeholder"], english)) }
                    select name=(format!("m_{name}")) multiple required[e["required"] == true] {
                        @for o in e["options"].as_array().into_iter().flatten() {
                            option value=(o["value"].as_str().unwrap_or_default()) { (text_of(&o["text"], english)) }
                        }
                    }
                }
            }
        }
        "checker" => {
            let name = e["name"].as_str().unwrap_or_default();
            html! {
                label.field {
                    input type="checkbox" name=(format!("c_{name}")) value="true" checked[e["checked"] == true];
                    span { (text_of(&e["text"], english)) }
                }
            }
        }
        other => html! { div.unknown { "[" (other) "]" } },
    }
}

fn button(e: &Value, ctx: &Ctx, form: Option<&str>) -> Markup {
    let id = e["element_id"].as_str().unwrap_or_default();
    let kind = css_word(e["type"].as_str().unwrap_or("default"));
    let label = text_of(&e["text"], ctx.view.english());
    let disabled = e["disabled"] == true;
    let submit = e["form_action_type"] == "submit";
    if form.is_some() {
        // Inside a Feishu form only the submit button posts, with every field of the form.
        return html! {
            button class=(format!("btn {kind}")) type="submit" name="element_id" value=(id)
                disabled[disabled || !submit] data-eid=(id) { (label) }
        };
    }
    html! {
        form.inline method="post" action="/playground/press" {
            (ctx.press_fields())
            button class=(format!("btn {kind}")) type="submit" name="element_id" value=(id)
                disabled[disabled] data-eid=(id) { (label) }
        }
    }
}

/// Card markdown as Feishu draws it, as far as the bot uses it: `<at id=…></at>` as @name,
/// `<text_tag color='…'>…</text_tag>` as a tag, `**bold**`, and line breaks. Everything else,
/// tags included, is text, with its HTML entities decoded once the tags are read (so a decoded
/// `<` stays text): the bot writes user text in card markdown as numeric entities
/// (`cards::text::escape_markdown`), and the page shows what a client that decodes them shows,
/// the text as written. Whether Feishu's client decodes them is unconfirmed in
/// `../shared/feishu/`; the bot's escaping is safe either way.
fn markdown(source: &str, names: &HashMap<String, String>) -> Markup {
    let mut parts: Vec<Markup> = Vec::new();
    let mut rest = source;
    let mut bold = false;
    let mut text = String::new();
    let flush = |text: &mut String, parts: &mut Vec<Markup>, bold: bool| {
        if !text.is_empty() {
            let t = html_escape::decode_html_entities(&std::mem::take(text)).into_owned();
            parts.push(if bold {
                html! { b { (t) } }
            } else {
                html! { (t) }
            });
        }
    };
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("**") {
            flush(&mut text, &mut parts, bold);
            bold = !bold;
            rest = after;
        } else if let Some(after) = rest.strip_prefix('\n') {
            flush(&mut text, &mut parts, bold);
            parts.push(html! { br; });
            rest = after;
        } else if let Some((id, after)) = at_tag(rest) {
            flush(&mut text, &mut parts, bold);
            let name = match id.as_str() {
                "all" => "所有人".to_owned(),
                _ => names.get(&id).cloned().unwrap_or(id),
            };
            parts.push(html! { span.at { "@" (name) } });
            rest = after;
        } else if let Some((color, inner, after)) = text_tag(rest) {
            flush(&mut text, &mut parts, bold);
            let inner = html_escape::decode_html_entities(&inner);
            parts.push(html! { span class=(format!("tag c-{}", css_word(&color))) { (inner) } });
            rest = after;
        } else {
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    flush(&mut text, &mut parts, bold);
    html! { @for p in &parts { (p) } }
}

/// `<at id=ou_x></at>` (or `id="…"`, `user_id=`) at the start of `s`: the id and what follows.
fn at_tag(s: &str) -> Option<(String, &str)> {
    let rest = s.strip_prefix("<at ")?;
    let end = rest.find('>')?;
    let attrs = &rest[..end];
    let after = rest[end + 1..].strip_prefix("</at>")?;
    let value = attrs.split_once('=')?.1.trim().trim_matches(['"', '\'']);
    Some((value.to_owned(), after))
}

/// `<text_tag color='blue'>…</text_tag>` at the start of `s`: color, text and what follows.
fn text_tag(s: &str) -> Option<(String, String, &str)> {
    let rest = s.strip_prefix("<text_tag")?;
    let end = rest.find('>')?;
    let attrs = &rest[..end];
    let body = &rest[end + 1..];
    let close = body.find("</text_tag>")?;
    let color = attrs
        .split_once("color=")
        .map(|(_, v)| v.trim().trim_matches(['"', '\'']).to_owned())
        .unwrap_or_else(|| "neutral".into());
    Some((
        color,
        body[..close].to_owned(),
        &body[close + "</text_tag>".len()..],
    ))
}

/// The calls that name this card's message or entity, in their path or body.
fn calls_for(calls: &[ApiCall], message_id: &str, card_id: Option<&str>) -> Vec<ApiCall> {
    calls
        .iter()
        .filter(|c| {
            let names =
                |id: &str| c.path.contains(id) || c.body.contains(id) || c.response.contains(id);
            names(message_id) || card_id.is_some_and(names)
        })
        .cloned()
        .collect()
}

fn short_path(path: &str) -> &str {
    path.strip_prefix("/open-apis").unwrap_or(path)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// Shows `text` on `open_id`'s page for [`TOAST_SHOWN`].
fn show_toast(shared: &Shared, open_id: &str, text: String) {
    let until = Instant::now() + TOAST_SHOWN;
    shared
        .world()
        .playground_toasts
        .insert(open_id.to_owned(), PlaygroundToast { text, until });
}

#[derive(Debug, Deserialize)]
pub(super) struct Send {
    text: String,
    #[serde(flatten)]
    view: View,
}

/// `POST /playground/send`: the person's message, to the bot as Feishu's event.
pub(super) async fn send(State(shared): State<Arc<Shared>>, Form(form): Form<Send>) -> Response {
    let Some(urls) = shared.world().bot_urls.clone() else {
        return (StatusCode::CONFLICT, "no bot connected").into_response();
    };
    let Some(user) = form.view.user.as_deref().and_then(|id| shared.user(id)) else {
        return (StatusCode::BAD_REQUEST, "unknown user").into_response();
    };
    let kind = if form.view.chat.as_deref() == Some(shared.config.group_chat_id.as_str()) {
        ChatKind::Group
    } else {
        ChatKind::P2p
    };
    let text = form.text.trim();
    if !text.is_empty() {
        let sent = delivery::user_message(&shared, &urls.event_url, &user, kind, text).await;
        // Feishu would retry a refused push and the person would see no answer; the page says why.
        let refused = match sent.status {
            Some(status) if (200..300).contains(&status) => None,
            Some(status) => Some(format!(
                "the bot answered HTTP {status}: {}",
                truncate(&sent.response_body, 200)
            )),
            None => Some("the bot did not answer".to_owned()),
        };
        if let Some(reason) = refused {
            show_toast(&shared, &user.open_id, reason);
        }
    }
    form.view.back(&user.open_id).into_response()
}

/// `POST /playground/press`: a button or a form's submit, as Feishu's card callback. Fields:
/// `as`, `chat`, `message_id`, `element_id`, and the form's fields as `f_<name>` (text, select),
/// `d_<name>` (date, sent as `yyyy-MM-dd +0800` like the client), `m_<name>` (each choice of a
/// multi-select) and `c_<name>` (a ticked checker).
pub(super) async fn press(
    State(shared): State<Arc<Shared>>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let view = View::from_fields(&fields);
    let (Some(user), Some(message_id), Some(element_id)) = (
        view.user.as_deref(),
        field(&fields, "message_id"),
        field(&fields, "element_id"),
    ) else {
        return (StatusCode::BAD_REQUEST, "missing field").into_response();
    };
    let Some(urls) = shared.world().bot_urls.clone() else {
        return (StatusCode::CONFLICT, "no bot connected").into_response();
    };
    let Some(who) = shared.user(user) else {
        return (StatusCode::BAD_REQUEST, "unknown user").into_response();
    };
    // Filled fields only (an empty one is not sent, as in the client); a date goes with its zone,
    // a multi-select's choices as one array, a ticked checker as `true`.
    let mut form_value: Vec<(&str, Value)> = Vec::new();
    for (k, v) in fields.iter().filter(|(_, v)| !v.is_empty()) {
        let (name, value) = if let Some(name) = k.strip_prefix("f_") {
            (name, Value::String(v.clone()))
        } else if let Some(name) = k.strip_prefix("d_") {
            (name, Value::String(format!("{v} +0800")))
        } else if let Some(name) = k.strip_prefix("c_") {
            (name, Value::Bool(true))
        } else if let Some(name) = k.strip_prefix("m_") {
            match form_value.iter_mut().find(|(n, _)| *n == name) {
                Some((_, Value::Array(chosen))) => {
                    chosen.push(Value::String(v.clone()));
                    continue;
                }
                _ => (name, Value::Array(vec![Value::String(v.clone())])),
            }
        } else {
            continue;
        };
        form_value.push((name, value));
    }
    let now = shared.clock.now_ms();
    let shown = shared.world().snapshot_message_card(message_id, now);
    let toast = match shown {
        None => Some("这张卡片已不存在".to_owned()),
        Some(snapshot) => match card::press(&snapshot.card, element_id, &form_value) {
            Err(e) => Some(format!("没有发送回调: {e}")),
            Ok(action) => {
                let answered = delivery::card_callback_action(
                    &shared,
                    &urls.card_url,
                    &who,
                    message_id,
                    action,
                    view.legacy(),
                )
                .await;
                // The client shows the toast in its language: `i18n.<locale>`, else `content`.
                let locale = view.pick("zh_cn", "en_us");
                answered.ok().and_then(|d| d.toast).and_then(|t| {
                    t["i18n"][locale]
                        .as_str()
                        .or(t["content"].as_str())
                        .map(str::to_owned)
                })
            }
        },
    };
    if let Some(toast) = toast {
        show_toast(&shared, &who.open_id, toast);
    }
    view.back(&who.open_id).into_response()
}

const STYLE: &str = r#"
body { font-family: -apple-system, "PingFang SC", "Noto Sans CJK SC", sans-serif; margin: 0; background: #f2f3f5; color: #1f2329; }
header { display: flex; gap: 24px; align-items: center; padding: 10px 16px; background: #fff; border-bottom: 1px solid #dee0e3; }
header form.who { display: flex; gap: 16px; align-items: center; }
.columns { display: grid; grid-template-columns: 220px minmax(420px, 1fr) 360px; gap: 12px; padding: 12px; }
h2 { font-size: 14px; color: #646a73; margin: 4px 0 10px; }
nav.chats a.chat { display: block; padding: 8px 10px; border-radius: 6px; color: inherit; text-decoration: none; }
nav.chats a.chat.active { background: #e1eaff; }
section.messages { background: #fff; border-radius: 8px; padding: 12px; min-height: 70vh; }
.message { margin: 10px 0; }
.message .sender { font-size: 12px; color: #8f959e; margin-bottom: 4px; }
.message .text { display: inline-block; background: #e1eaff; padding: 8px 12px; border-radius: 8px; white-space: pre-wrap; }
.message.bot .text { background: #f2f3f5; }
.card { width: 420px; border: 1px solid #dee0e3; border-radius: 8px; overflow: hidden; background: #fff; }
.card-header { padding: 12px 14px; color: #fff; background: #3370ff; }
.card-header.t-green { background: #34c724; } .card-header.t-red { background: #f54a45; }
.card-header.t-orange { background: #ff8800; } .card-header.t-grey { background: #8f959e; }
.card-header.t-wathet { background: #4fb8f5; } .card-header.t-turquoise { background: #2dbeab; }
.card-header .title { font-weight: 600; margin-right: 8px; }
.card-header .subtitle { font-size: 12px; opacity: .9; margin-top: 4px; }
.tag { display: inline-block; font-size: 12px; padding: 0 6px; border-radius: 4px; background: #eff0f1; color: #1f2329; margin: 0 2px; }
.tag.c-blue { background: #e1eaff; color: #245bdb; } .tag.c-green { background: #d9f5d6; color: #237b19; }
.tag.c-red { background: #fde2e2; color: #d83931; } .tag.c-orange { background: #feead2; color: #b26206; }
.card-body { padding: 12px 14px; display: flex; flex-direction: column; gap: 8px; }
.card-body .at { color: #3370ff; }
.columns-set { display: flex; gap: 8px; } .column { flex: 1; }
.btn { padding: 6px 14px; border-radius: 6px; border: 1px solid #d0d3d6; background: #fff; cursor: pointer; }
.btn.primary, .btn.primary-filled { background: #3370ff; color: #fff; border-color: #3370ff; }
.btn.primary-text { color: #3370ff; border-color: transparent; }
.btn.danger { color: #f54a45; border-color: #f54a45; }
.btn.danger-filled { background: #f54a45; color: #fff; border-color: #f54a45; }
.card-body hr { width: 100%; border: 0; border-top: 1px solid #dee0e3; margin: 4px 0; }
.btn:disabled { opacity: .45; cursor: not-allowed; }
form.inline { display: inline; }
.card-form { display: flex; flex-direction: column; gap: 8px; }
.field input, .field select { width: 100%; padding: 6px; box-sizing: border-box; }
.field span { font-size: 12px; color: #646a73; }
.card-foot { display: flex; justify-content: space-between; font-size: 12px; color: #8f959e; padding: 6px 14px 10px; }
.card.streaming { box-shadow: 0 0 0 2px #b3ccff; }
form.compose { display: flex; gap: 8px; margin-top: 16px; } form.compose input { flex: 1; padding: 8px; }
aside.calls { background: #fff; border-radius: 8px; padding: 12px; font-size: 12px; overflow: auto; max-height: 85vh; }
.call summary { cursor: pointer; padding: 4px 0; word-break: break-all; } .call pre { white-space: pre-wrap; word-break: break-all; background: #f5f6f7; padding: 6px; }
.method { font-weight: 600; } .call .label { color: #8f959e; margin-top: 4px; }
.toast { margin: 12px 12px 0; padding: 8px 12px; background: #1f2329; color: #fff; border-radius: 6px; display: inline-block; }
.warn { margin: 12px; color: #b26206; }
"#;

/// Polls the version; when it differs from the one the shown `#live` was drawn at, swaps in the
/// new page's `#live` (which carries its own), keeping what is being
/// typed, and types out a card text that grew at its end (CardKit's streamed `content` does that).
const SCRIPT: &str = r#"
(function () {
  async function tick() {
    try {
      const v = await (await fetch('/playground/version', { cache: 'no-store' })).text();
      const shown = document.getElementById('live');
      if (shown && v !== shown.dataset.version && !busy()) await swap();
    } catch (e) {}
    setTimeout(tick, 500);
  }
  // A card form someone started to fill stays as it is until they submit it.
  let filling = false;
  ['input', 'change'].forEach(function (kind) {
    document.addEventListener(kind, function (e) {
      if (e.target.closest && e.target.closest('#live form.card-form')) filling = true;
    });
  });
  function busy() { return filling; }
  // The newest message is in view: on load, and after a swap when the page was at its end.
  function atEnd() { return window.innerHeight + window.scrollY >= document.body.scrollHeight - 120; }
  function toEnd() { const c = document.getElementById('compose'); if (c) c.scrollIntoView({ block: 'end' }); }
  async function swap() {
    const follow = atEnd();
    const html = await (await fetch(location.href, { cache: 'no-store' })).text();
    const next = new DOMParser().parseFromString(html, 'text/html').getElementById('live');
    const live = document.getElementById('live');
    if (!next || !live) return;
    const before = {};
    live.querySelectorAll('.card [data-eid]').forEach(function (e) { before[e.closest('.card').dataset.card + '/' + e.dataset.eid] = e.textContent; });
    const typed = document.getElementById('compose');
    const draft = typed ? typed.value : '';
    live.replaceWith(next);
    const compose = document.getElementById('compose');
    if (compose) compose.value = draft;
    next.querySelectorAll('.card [data-eid]').forEach(function (e) {
      const old = before[e.closest('.card').dataset.card + '/' + e.dataset.eid];
      const now = e.textContent;
      if (old !== undefined && now.startsWith(old) && now.length > old.length) {
        const html = e.innerHTML; let i = old.length;
        e.textContent = old;
        const t = setInterval(function () {
          i += 1; e.textContent = now.slice(0, i);
          if (i >= now.length) { clearInterval(t); e.innerHTML = html; }
        }, 25);
      }
    });
    if (follow) toEnd();
  }
  toEnd();
  tick();
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_user_text_shows_as_written_and_stays_text() {
        let names = HashMap::new();
        let escaped = feishu_kit::cards::text::escape_markdown(
            "<script>alert(1)</script></at> **x** & &#60; 1+1=2",
            500,
        );
        let out = markdown(&format!("事由：{escaped}"), &names).into_string();
        assert_eq!(
            out,
            "事由：&lt;script&gt;alert(1)&lt;/script&gt;&lt;/at&gt; **x** &amp; &amp;#60; 1+1=2"
        );
        // A decoded `<` never opens a tag, and what is not an entity stays as it is.
        assert_eq!(
            markdown(
                "&#60;at id=ou_1&#62;&#60;/at&#62; &#99999999; &bogus; &",
                &names
            )
            .into_string(),
            "&lt;at id=ou_1&gt;&lt;/at&gt; &amp;#99999999; &amp;bogus; &amp;"
        );
        assert_eq!(
            markdown("&#x3C;&lt;&gt;&amp;&quot;&#39;", &names).into_string(),
            "&lt;&lt;&gt;&amp;&quot;'"
        );
    }

    #[test]
    fn card_markup_keeps_its_own_tags_and_escapes_everything_else() {
        let names = HashMap::from([("ou_1".to_owned(), "Tom".to_owned())]);
        let out = markdown(
            "**出差** <at id=ou_1></at> <text_tag color='blue'>审批中</text_tag>\n<script>x</script></at><b>",
            &names,
        )
        .into_string();
        assert_eq!(
            out,
            "<b>出差</b> <span class=\"at\">@Tom</span> <span class=\"tag c-blue\">审批中</span><br>&lt;script&gt;x&lt;/script&gt;&lt;/at&gt;&lt;b&gt;"
        );
        let hostile =
            markdown("<text_tag color='x\" onmouseover=\"y'>z</text_tag>", &names).into_string();
        assert_eq!(hostile, "<span class=\"tag c-xonmouseovery\">z</span>");
    }
}
