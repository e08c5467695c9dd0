//! Card JSON as Feishu checks and edits it: 2.0 validation, element operations by `element_id`, text rendering.

use serde_json::{Map, Value};

/// Largest card Feishu accepts (30 KB).
pub const MAX_CARD_BYTES: usize = 30 * 1024;
/// Most elements plus components in one JSON 2.0 card.
pub const MAX_COMPONENTS: usize = 200;

/// A broken card rule, with the CardKit error code Feishu gives for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRuleError {
    pub code: i64,
    pub msg: String,
}

impl CardRuleError {
    pub fn new(code: i64, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
        }
    }
}

/// The top-level properties JSON 2.0 allows; anything else is an error (unlike 1.0).
const V2_TOP_LEVEL: &[&str] = &["schema", "config", "card_link", "header", "body"];

/// Whether a card is JSON 2.0 (`"schema": "2.0"`).
pub fn is_v2(card: &Value) -> bool {
    card.get("schema").and_then(Value::as_str) == Some("2.0")
}

/// Whether a card is a template reference (`{"type":"template","data":{…}}`).
pub fn is_template(card: &Value) -> bool {
    card.get("type").and_then(Value::as_str) == Some("template")
}

/// `config.update_multi` with each version's default (2.0: true, 1.0: false; templates count as shared).
pub fn update_multi(card: &Value) -> bool {
    if is_template(card) {
        return true;
    }
    match card
        .pointer("/config/update_multi")
        .and_then(Value::as_bool)
    {
        Some(v) => v,
        None => is_v2(card),
    }
}

/// `config.streaming_mode` as written in the card.
pub fn streaming_mode(card: &Value) -> bool {
    card.pointer("/config/streaming_mode")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Compact JSON size in bytes, the measure used for the 30 KB rule.
pub fn size_bytes(card: &Value) -> usize {
    serde_json::to_string(card).map(|s| s.len()).unwrap_or(0)
}

/// Checks a JSON 2.0 card the way CardKit does (codes from the CardKit error table).
pub fn validate_v2(card: &Value) -> Result<(), CardRuleError> {
    let obj = card
        .as_object()
        .ok_or_else(|| CardRuleError::new(200220, "card JSON must be an object"))?;
    if !is_v2(card) {
        return Err(CardRuleError::new(
            300303,
            "only card JSON 2.0 (\"schema\":\"2.0\") is supported",
        ));
    }
    if let Some(unknown) = obj.keys().find(|k| !V2_TOP_LEVEL.contains(&k.as_str())) {
        return Err(CardRuleError::new(
            200220,
            format!("unknown property `{unknown}` in card JSON 2.0"),
        ));
    }
    if let Some(config) = obj.get("config") {
        if !config.is_object() {
            return Err(CardRuleError::new(200220, "config must be an object"));
        }
        if config.get("update_multi") == Some(&Value::Bool(false)) {
            return Err(CardRuleError::new(
                300302,
                "update_multi must be true in card JSON 2.0",
            ));
        }
    }
    let elements = obj
        .get("body")
        .and_then(|b| b.get("elements"))
        .and_then(Value::as_array)
        .ok_or_else(|| CardRuleError::new(300307, "card DSL is empty: body.elements missing"))?;
    let mut ids = Vec::new();
    let mut count = 0usize;
    check_components(elements, &mut ids, &mut count)?;
    check_forms(elements)?;
    if count > MAX_COMPONENTS {
        return Err(CardRuleError::new(
            300305,
            format!("card has {count} components, more than {MAX_COMPONENTS}"),
        ));
    }
    let size = size_bytes(card);
    if size > MAX_CARD_BYTES {
        return Err(CardRuleError::new(
            200860,
            format!("card is {size} bytes, more than 30 KB"),
        ));
    }
    Ok(())
}

/// Light checks of a JSON 1.0 card (1.0 ignores unknown properties).
pub fn validate_v1(card: &Value) -> Result<(), CardRuleError> {
    let obj = card
        .as_object()
        .ok_or_else(|| CardRuleError::new(200621, "card JSON must be an object"))?;
    let has_body = obj.get("elements").is_some_and(Value::is_array)
        || obj.get("i18n_elements").is_some_and(Value::is_object);
    if !has_body {
        return Err(CardRuleError::new(
            200621,
            "card JSON 1.0 needs elements or i18n_elements",
        ));
    }
    let size = size_bytes(card);
    if size > MAX_CARD_BYTES {
        return Err(CardRuleError::new(
            200860,
            format!("card is {size} bytes, more than 30 KB"),
        ));
    }
    Ok(())
}

/// Validates a card of either version, or a template reference.
pub fn validate_any(card: &Value) -> Result<(), CardRuleError> {
    if is_template(card) {
        let id = card.pointer("/data/template_id").and_then(Value::as_str);
        return match id {
            Some(id) if !id.is_empty() => Ok(()),
            _ => Err(CardRuleError::new(200380, "template_id missing")),
        };
    }
    if card.get("schema").is_some() {
        return validate_v2(card);
    }
    validate_v1(card)
}

/// The `element_id` pattern of JSON 2.0: a letter, then up to 19 letters, digits or `_`.
pub fn valid_element_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 20
        && bytes[0].is_ascii_alphabetic()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

fn check_components(
    list: &[Value],
    ids: &mut Vec<String>,
    count: &mut usize,
) -> Result<(), CardRuleError> {
    for item in list {
        let tag = item
            .get("tag")
            .and_then(Value::as_str)
            .ok_or_else(|| CardRuleError::new(200220, "every component needs a string tag"))?;
        if tag == "note" || tag == "action" {
            return Err(CardRuleError::new(
                200861,
                format!("tag `{tag}` is not supported in card JSON 2.0"),
            ));
        }
        *count += 1;
        if let Some(id) = item.get("element_id") {
            let id = id
                .as_str()
                .filter(|id| valid_element_id(id))
                .ok_or_else(|| {
                    CardRuleError::new(
                        300301,
                        format!("element_id {id} does not match ^[A-Za-z][A-Za-z0-9_]{{0,19}}$"),
                    )
                })?;
            if ids.iter().any(|seen| seen == id) {
                return Err(CardRuleError::new(
                    300301,
                    format!("duplicate element_id `{id}`"),
                ));
            }
            ids.push(id.to_owned());
        }
        for key in CHILD_LISTS {
            if let Some(children) = item.get(*key).and_then(Value::as_array) {
                check_components(children, ids, count)?;
            }
        }
    }
    Ok(())
}

/// Interactive components that carry a `name` inside a form and a value in `form_value`.
const FORM_FIELDS: &[&str] = &[
    "input",
    "select_static",
    "multi_select_static",
    "select_person",
    "multi_select_person",
    "date_picker",
    "picker_time",
    "picker_datetime",
    "checker",
];

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Feishu's form rules ([D-form], `cards-and-cardkit.md` §6): a form only at the body root and
/// never inside another; every interactive child with a card-unique, non-empty `name` (200530);
/// at least one submit button; a button needs a callback value (200340).
fn check_forms(root: &[Value]) -> Result<(), CardRuleError> {
    fn nested_form(list: &[Value]) -> bool {
        list.iter().any(|item| {
            str_of(item, "tag") == Some("form")
                || CHILD_LISTS.iter().any(|key| {
                    item.get(*key)
                        .and_then(Value::as_array)
                        .is_some_and(|children| nested_form(children))
                })
        })
    }
    let mut names: Vec<String> = Vec::new();
    for item in root {
        let children = item.get("elements").and_then(Value::as_array);
        if str_of(item, "tag") != Some("form") {
            if CHILD_LISTS.iter().any(|key| {
                item.get(*key)
                    .and_then(Value::as_array)
                    .is_some_and(|c| nested_form(c))
            }) {
                return Err(CardRuleError::new(
                    200530,
                    "a form may only sit at the body root",
                ));
            }
            continue;
        }
        let children =
            children.ok_or_else(|| CardRuleError::new(200530, "form without elements"))?;
        if nested_form(children) {
            return Err(CardRuleError::new(200530, "a form inside a form"));
        }
        let mut submit = false;
        for child in children {
            let tag = str_of(child, "tag").unwrap_or_default();
            let is_button = tag == "button";
            if !is_button && !FORM_FIELDS.contains(&tag) {
                continue;
            }
            if is_button {
                submit |= str_of(child, "form_action_type") == Some("submit");
                if child.get("value").is_none() && child.get("behaviors").is_none() {
                    return Err(CardRuleError::new(200340, "a form button needs a value"));
                }
            }
            let name = str_of(child, "name").unwrap_or_default();
            if name.is_empty() {
                if is_button {
                    continue;
                }
                return Err(CardRuleError::new(
                    200530,
                    format!("`{tag}` in a form has no name"),
                ));
            }
            if names.iter().any(|seen| seen == name) {
                return Err(CardRuleError::new(
                    200530,
                    format!("name `{name}` is used twice"),
                ));
            }
            names.push(name.to_owned());
        }
        if !submit {
            return Err(CardRuleError::new(200530, "a form needs a submit button"));
        }
    }
    Ok(())
}

/// The `action` a client sends when a user presses the button `element_id` of `card`: its
/// callback value; inside a form with `form_action_type: submit`, also its `name` and the form's
/// values (`form_value`): the given ones, an empty optional input as `""`. A gone or disabled
/// button, an empty required field or a value for an unknown name is what a client would refuse.
pub fn press(
    card: &Value,
    element_id: &str,
    form_value: &[(&str, Value)],
) -> Result<Value, super::SimError> {
    use super::SimError;
    let button = find_element(card, element_id)
        .filter(|b| str_of(b, "tag") == Some("button"))
        .filter(|b| b.get("disabled") != Some(&Value::Bool(true)))
        .ok_or_else(|| SimError::NoButton(element_id.to_owned()))?;
    let value = button
        .pointer("/behaviors/0/value")
        .or_else(|| button.get("value"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut action = serde_json::json!({"value": value, "tag": "button"});
    if str_of(button, "form_action_type") != Some("submit") {
        return Ok(action);
    }
    let form = card
        .pointer("/body/elements")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|item| {
            str_of(item, "tag") == Some("form")
                && item
                    .get("elements")
                    .and_then(Value::as_array)
                    .is_some_and(|c| {
                        c.iter()
                            .any(|e| str_of(e, "element_id") == Some(element_id))
                    })
        })
        .ok_or_else(|| SimError::NoButton(element_id.to_owned()))?;
    let fields: Vec<&Value> = form["elements"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| FORM_FIELDS.contains(&str_of(c, "tag").unwrap_or_default()))
        .collect();
    let mut values = serde_json::Map::new();
    for (name, value) in form_value {
        if !fields.iter().any(|f| str_of(f, "name") == Some(name)) {
            return Err(SimError::NotInForm((*name).to_owned()));
        }
        values.insert((*name).to_owned(), value.clone());
    }
    for field in fields {
        let name = str_of(field, "name").unwrap_or_default();
        let empty = match values.get(name) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        };
        if empty && field.get("required") == Some(&Value::Bool(true)) {
            return Err(SimError::RequiredEmpty(name.to_owned()));
        }
        // An optional input left empty arrives as "" ([D-card-interact]).
        if empty && str_of(field, "tag") == Some("input") {
            values.insert(name.to_owned(), Value::String(String::new()));
        }
    }
    action["name"] = button.get("name").cloned().unwrap_or(Value::Null);
    action["form_value"] = Value::Object(values);
    Ok(action)
}

/// Properties that hold nested components (containers, columns, 1.0 action modules).
const CHILD_LISTS: &[&str] = &["elements", "columns", "actions"];

#[derive(Debug, Clone)]
enum Step {
    Key(&'static str),
    Index(usize),
}

fn path_in_list(list: &[Value], id: &str, path: &mut Vec<Step>) -> bool {
    for (i, item) in list.iter().enumerate() {
        path.push(Step::Index(i));
        if item.get("element_id").and_then(Value::as_str) == Some(id) {
            return true;
        }
        for key in CHILD_LISTS {
            if let Some(children) = item.get(*key).and_then(Value::as_array) {
                path.push(Step::Key(key));
                if path_in_list(children, id, path) {
                    return true;
                }
                path.pop();
            }
        }
        path.pop();
    }
    false
}

/// Path from the card root to the element with `element_id == id`.
fn path_to(card: &Value, id: &str) -> Option<Vec<Step>> {
    let list = card.pointer("/body/elements")?.as_array()?;
    let mut path = vec![Step::Key("body"), Step::Key("elements")];
    path_in_list(list, id, &mut path).then_some(path)
}

fn navigate_mut<'a>(root: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut cur = root;
    for step in path {
        cur = match step {
            Step::Key(k) => cur.get_mut(*k)?,
            Step::Index(i) => cur.get_mut(*i)?,
        };
    }
    Some(cur)
}

/// The element with `element_id == id`, if the card has one.
pub fn find_element<'a>(card: &'a Value, id: &str) -> Option<&'a Value> {
    let path = path_to(card, id)?;
    let mut cur = card;
    for step in &path {
        cur = match step {
            Step::Key(k) => cur.get(*k)?,
            Step::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

fn find_element_mut<'a>(card: &'a mut Value, id: &str) -> Option<&'a mut Value> {
    let path = path_to(card, id)?;
    navigate_mut(card, &path)
}

/// Where `add_elements` puts new components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertKind {
    InsertBefore,
    InsertAfter,
    Append,
}

impl InsertKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "insert_before" => Some(Self::InsertBefore),
            "insert_after" => Some(Self::InsertAfter),
            "append" => Some(Self::Append),
            _ => None,
        }
    }
}

/// Inserts components next to `target` or appends them to a container (or to the body).
pub fn add_elements(
    card: &mut Value,
    kind: InsertKind,
    target: Option<&str>,
    elements: Vec<Value>,
) -> Result<(), CardRuleError> {
    let target = target.filter(|t| !t.is_empty());
    match (kind, target) {
        (InsertKind::Append, None) => {
            let list = card
                .pointer_mut("/body/elements")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| CardRuleError::new(300315, "card has no body.elements"))?;
            list.extend(elements);
            Ok(())
        }
        (InsertKind::Append, Some(container)) => {
            let el = find_element_mut(card, container).ok_or_else(|| {
                CardRuleError::new(300315, format!("container `{container}` not found"))
            })?;
            let list = el
                .get_mut("elements")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| {
                    CardRuleError::new(300315, format!("`{container}` is not a container"))
                })?;
            list.extend(elements);
            Ok(())
        }
        (_, None) => Err(CardRuleError::new(
            10002,
            "target_element_id is required for insert_before / insert_after",
        )),
        (kind, Some(target)) => {
            let path = path_to(card, target).ok_or_else(|| {
                CardRuleError::new(300315, format!("element `{target}` not found"))
            })?;
            let (parent, last) = path.split_at(path.len() - 1);
            let Some(Step::Index(index)) = last.first().cloned() else {
                return Err(CardRuleError::new(300315, "bad element path"));
            };
            let list = navigate_mut(card, parent)
                .and_then(Value::as_array_mut)
                .ok_or_else(|| CardRuleError::new(300315, "bad element path"))?;
            let at = if kind == InsertKind::InsertBefore {
                index
            } else {
                index + 1
            };
            for (offset, el) in elements.into_iter().enumerate() {
                list.insert(at + offset, el);
            }
            Ok(())
        }
    }
}

/// Deletes a component (and, for a container, its children).
pub fn delete_element(card: &mut Value, id: &str) -> Result<(), CardRuleError> {
    let path = path_to(card, id)
        .ok_or_else(|| CardRuleError::new(300314, format!("element `{id}` not found")))?;
    let (parent, last) = path.split_at(path.len() - 1);
    let Some(Step::Index(index)) = last.first().cloned() else {
        return Err(CardRuleError::new(300314, "bad element path"));
    };
    let list = navigate_mut(card, parent)
        .and_then(Value::as_array_mut)
        .ok_or_else(|| CardRuleError::new(300314, "bad element path"))?;
    list.remove(index);
    Ok(())
}

/// Replaces a component; the new one keeps the old `element_id` unless it names its own.
pub fn replace_element(
    card: &mut Value,
    id: &str,
    mut element: Value,
) -> Result<(), CardRuleError> {
    if !element.is_object() {
        return Err(CardRuleError::new(300121, "element must be a JSON object"));
    }
    let slot = find_element_mut(card, id)
        .ok_or_else(|| CardRuleError::new(300121, format!("element `{id}` not found")))?;
    if let Some(obj) = element.as_object_mut() {
        obj.entry("element_id")
            .or_insert_with(|| Value::String(id.to_owned()));
    }
    *slot = element;
    Ok(())
}

/// Merges properties into a component; `tag` cannot change, `element_id` renames it.
pub fn patch_element(
    card: &mut Value,
    id: &str,
    partial: &Map<String, Value>,
) -> Result<(), CardRuleError> {
    let slot = find_element_mut(card, id)
        .ok_or_else(|| CardRuleError::new(300313, format!("element `{id}` not found")))?;
    if let Some(tag) = partial.get("tag") {
        if slot.get("tag") != Some(tag) {
            return Err(CardRuleError::new(
                300312,
                "the tag of a component cannot change",
            ));
        }
    }
    let obj = slot
        .as_object_mut()
        .ok_or_else(|| CardRuleError::new(300313, "element is not an object"))?;
    for (k, v) in partial {
        obj.insert(k.clone(), v.clone());
    }
    Ok(())
}

/// Sets the text of a `plain_text` or `markdown` component (the stream-text API).
pub fn set_text_content(card: &mut Value, id: &str, content: &str) -> Result<(), CardRuleError> {
    let slot = find_element_mut(card, id)
        .ok_or_else(|| CardRuleError::new(300313, format!("element `{id}` not found")))?;
    let tag = slot.get("tag").and_then(Value::as_str).unwrap_or("");
    if tag != "plain_text" && tag != "markdown" {
        return Err(CardRuleError::new(
            300310,
            format!("element `{id}` is a `{tag}`, not plain_text or markdown"),
        ));
    }
    if let Some(obj) = slot.as_object_mut() {
        obj.insert("content".into(), Value::String(content.to_owned()));
    }
    Ok(())
}

/// Merges `settings.config` and `settings.card_link` into a card.
pub fn merge_settings(
    card: &mut Value,
    settings: &Map<String, Value>,
) -> Result<(), CardRuleError> {
    if let Some(unknown) = settings
        .keys()
        .find(|k| k.as_str() != "config" && k.as_str() != "card_link")
    {
        return Err(CardRuleError::new(
            300122,
            format!("settings may hold only config and card_link, not `{unknown}`"),
        ));
    }
    let obj = card
        .as_object_mut()
        .ok_or_else(|| CardRuleError::new(300122, "card is not an object"))?;
    if let Some(config) = settings.get("config") {
        let config = config
            .as_object()
            .ok_or_else(|| CardRuleError::new(300122, "config must be an object"))?;
        let target = obj
            .entry("config")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(target) = target.as_object_mut() {
            for (k, v) in config {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(link) = settings.get("card_link") {
        obj.insert("card_link".into(), link.clone());
    }
    Ok(())
}

/// A short text rendering of a card: the title, then texts, then buttons as `[label]`.
/// The card as a client in `locale` (`en_us`, `zh_cn`) shows it: every text with an
/// `i18n_content` for that locale shows that, others their `content` (`approval-apis.md` §6).
pub fn localize(card: &Value, locale: &str) -> Value {
    match card {
        Value::Object(map) => {
            let mut out: serde_json::Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), localize(v, locale)))
                .collect();
            if let Some(text) = map
                .get("i18n_content")
                .and_then(|i| i.get(locale))
                .and_then(Value::as_str)
            {
                out.insert("content".into(), Value::String(text.to_owned()));
            }
            Value::Object(out)
        }
        Value::Array(list) => Value::Array(list.iter().map(|v| localize(v, locale)).collect()),
        other => other.clone(),
    }
}

pub fn render_text(card: &Value) -> String {
    if is_template(card) {
        let id = card
            .pointer("/data/template_id")
            .and_then(Value::as_str)
            .unwrap_or("?");
        return format!("(template {id})");
    }
    let mut lines = Vec::new();
    if let Some(title) = card
        .pointer("/header/title/content")
        .and_then(Value::as_str)
    {
        lines.push(format!("# {title}"));
    }
    let elements = card
        .pointer("/body/elements")
        .or_else(|| card.get("elements"))
        .and_then(Value::as_array);
    if let Some(elements) = elements {
        render_list(elements, &mut lines);
    }
    lines.join("\n")
}

fn text_of(v: &Value) -> Option<&str> {
    v.get("content").and_then(Value::as_str)
}

fn render_list(list: &[Value], lines: &mut Vec<String>) {
    let mut buttons: Vec<String> = Vec::new();
    for item in list {
        let tag = item.get("tag").and_then(Value::as_str).unwrap_or("");
        if tag == "button" {
            let label = item.get("text").and_then(text_of).unwrap_or("");
            buttons.push(format!("[{label}]"));
            continue;
        }
        if tag == "column_set" || tag == "column" || tag == "action" {
            render_buttons_and_texts(item, &mut buttons, lines);
            continue;
        }
        flush_buttons(&mut buttons, lines);
        match tag {
            "markdown" | "plain_text" | "lark_md" => {
                if let Some(t) = text_of(item) {
                    lines.push(t.to_owned());
                }
            }
            "hr" => lines.push("---".into()),
            // Form fields as empty boxes with their placeholder; `*` marks a required one.
            "input" | "select_static" | "date_picker" | "picker_time" | "picker_datetime" => {
                let hint = item
                    .get("placeholder")
                    .and_then(text_of)
                    .unwrap_or_default();
                let required = if item.get("required") == Some(&Value::Bool(true)) {
                    "*"
                } else {
                    ""
                };
                let shape = match tag {
                    "select_static" => "▾",
                    "input" => "✎",
                    _ => "📅",
                };
                lines.push(format!("[{shape} {hint}{required}]"));
            }
            _ => {
                if let Some(t) = item.get("text").and_then(text_of) {
                    lines.push(t.to_owned());
                }
            }
        }
        if let Some(children) = item.get("elements").and_then(Value::as_array) {
            render_list(children, lines);
        }
    }
    flush_buttons(&mut buttons, lines);
}

/// Column sets and 1.0 action modules: buttons go on one line, texts on their own.
fn render_buttons_and_texts(item: &Value, buttons: &mut Vec<String>, lines: &mut Vec<String>) {
    for key in CHILD_LISTS {
        if let Some(children) = item.get(*key).and_then(Value::as_array) {
            for child in children {
                let tag = child.get("tag").and_then(Value::as_str).unwrap_or("");
                if tag == "button" {
                    let label = child.get("text").and_then(text_of).unwrap_or("");
                    buttons.push(format!("[{label}]"));
                } else if tag == "column" {
                    render_buttons_and_texts(child, buttons, lines);
                } else {
                    flush_buttons(buttons, lines);
                    render_list(std::slice::from_ref(child), lines);
                }
            }
        }
    }
}

fn flush_buttons(buttons: &mut Vec<String>, lines: &mut Vec<String>) {
    if !buttons.is_empty() {
        lines.push(buttons.join(" "));
        buttons.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn card() -> Value {
        json!({"schema":"2.0","header":{"title":{"tag":"plain_text","content":"审批"}},
            "body":{"elements":[
                {"tag":"markdown","element_id":"md_1","content":"请选择需要的操作"},
                {"tag":"column_set","element_id":"row","columns":[
                    {"tag":"column","elements":[{"tag":"button","element_id":"btn_a","text":{"tag":"plain_text","content":"出差"}}]},
                    {"tag":"column","elements":[{"tag":"button","element_id":"btn_b","text":{"tag":"plain_text","content":"外勤"}}]}]}]}})
    }

    #[test]
    fn renders_title_texts_and_buttons() {
        assert_eq!(
            render_text(&card()),
            "# 审批\n请选择需要的操作\n[出差] [外勤]"
        );
    }

    #[test]
    fn element_ops_find_nested_ids() {
        let mut c = card();
        add_elements(
            &mut c,
            InsertKind::InsertAfter,
            Some("btn_a"),
            vec![json!({"tag":"markdown","element_id":"x","content":"x"})],
        )
        .unwrap();
        assert!(find_element(&c, "x").is_some());
        delete_element(&mut c, "row").unwrap();
        assert!(find_element(&c, "btn_b").is_none());
        assert!(validate_v2(&c).is_ok());
    }

    #[test]
    fn element_id_pattern() {
        assert!(valid_element_id("a"));
        assert!(valid_element_id("A_1234567890123456789"[..20].as_ref()));
        assert!(!valid_element_id("1a"));
        assert!(!valid_element_id("a-b"));
        assert!(!valid_element_id("a23456789012345678901"));
    }
}
