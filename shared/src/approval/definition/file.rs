//! Reads a definitions file (YAML; JSON is YAML) into a [`DefinitionSet`], or every problem in it
//! with its line and column: an unknown key, type or option, a duplicate id or field name, a
//! select without options, `min` > `max`, … Nothing is ignored: a key this version does not know
//! is an error (a later version may give it a meaning).
//!
//! The YAML is read by `marked-yaml` (over `yaml-rust2`), which keeps every node's position and
//! every scalar as its text: `min: 0.01` is the decimal `0.01`, never a float.

use std::collections::HashSet;
use std::fmt;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoaderOptions, Node, Span};
use rust_decimal::Decimal;

use super::decimal::strict_decimal;
use super::when::Condition;
use super::{
    Approvers, Cc, Choice, Definition, DefinitionSet, Escalate, Field, FieldType, Mode, Remind,
    RequestKind, Step, Text, TransferTo,
};
use crate::cards::text::FeishuId;

/// One thing wrong with a definitions file, at `line`:`column` (1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => f.write_str(&self.message),
            line => write!(f, "line {line}:{}: {}", self.column, self.message),
        }
    }
}

/// The most definitions a file holds (the 审批 card's select lists them all).
pub const MAX_DEFINITIONS: usize = 50;
/// The most fields a definition holds (a form of 200 components at most, with labels).
pub const MAX_FIELDS: usize = 40;
/// The most options of a select.
pub const MAX_OPTIONS: usize = 50;
/// The longest name or label, in characters.
pub const MAX_LABEL_CHARS: usize = 40;
/// Characters a name or label may not hold: they open tags, links, marks or mentions in card
/// markdown, where names and labels are shown as written.
pub const MARKUP_CHARS: &str = "<>[]*_~`|\\${}#";
/// Names the request form gives its own components (`name` is unique in a card).
pub const RESERVED_FIELD_NAMES: [&str; 3] = ["btn_file", "request_form", "comment"];
/// The largest file read, in bytes.
pub const MAX_FILE_BYTES: usize = 256 * 1024;

const DEFINITION_KEYS: [&str; 8] = [
    "id",
    "name",
    "fields",
    "approvers",
    "steps",
    "cc",
    "transfer_to",
    "remind",
];
const STEP_KEYS: [&str; 5] = ["id", "approvers", "mode", "when", "transfer_to"];
/// The most steps a route holds.
pub const MAX_STEPS: usize = 10;
const FIELD_KEYS: [&str; 15] = [
    "name",
    "type",
    "label",
    "required",
    "min",
    "max",
    "step",
    "max_len",
    "options",
    "currency",
    "unit",
    "placeholder",
    "start_label",
    "end_label",
    "cc_visible",
];

struct Reader {
    problems: Vec<Problem>,
}

fn at(span: &Span) -> (usize, usize) {
    span.start()
        .map(|m| (m.line(), m.column()))
        .unwrap_or((0, 0))
}

impl Reader {
    fn problem(&mut self, span: &Span, message: impl Into<String>) {
        let (line, column) = at(span);
        self.problems.push(Problem {
            line,
            column,
            message: message.into(),
        });
    }

    fn mapping<'a>(&mut self, node: &'a Node, what: &str) -> Option<&'a MarkedMappingNode> {
        let map = node.as_mapping();
        if map.is_none() {
            self.problem(node.span(), format!("{what} must be a mapping"));
        }
        map
    }

    fn scalar<'a>(&mut self, node: &'a Node, what: &str) -> Option<&'a MarkedScalarNode> {
        let scalar = node.as_scalar();
        if scalar.is_none() {
            self.problem(node.span(), format!("{what} must be a single value"));
        }
        scalar
    }

    /// Every key of `map` not in `known` is a problem.
    fn known_keys(&mut self, map: &MarkedMappingNode, known: &[&str], what: &str) {
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                self.problem(
                    key.span(),
                    format!(
                        "unknown key `{}` in {what} (known: {})",
                        key.as_str(),
                        known.join(", ")
                    ),
                );
            }
        }
    }

    /// `{zh_cn: …, en_us: …}` (one is enough) or a plain string for both.
    fn text(&mut self, node: &Node, what: &str) -> Option<Text> {
        let check = |r: &mut Self, s: &str, span: &Span| {
            let chars = s.trim().chars().count();
            if chars == 0 || chars > MAX_LABEL_CHARS {
                r.problem(
                    span,
                    format!("{what} must be 1 to {MAX_LABEL_CHARS} characters"),
                );
                false
            } else if let Some(c) = s
                .chars()
                .find(|c| MARKUP_CHARS.contains(*c) || c.is_control())
            {
                // Names and labels go into card markdown as written: nothing in them may format.
                r.problem(
                    span,
                    format!("{what} may not contain {c:?} (not any of {MARKUP_CHARS} or a control character)"),
                );
                false
            } else {
                true
            }
        };
        if let Some(s) = node.as_scalar() {
            return check(self, s.as_str(), s.span()).then(|| Text::new(s.trim(), s.trim()));
        }
        let map = self.mapping(node, what)?;
        self.known_keys(map, &["zh_cn", "en_us"], what);
        let get = |r: &mut Self, lang: &str| -> Option<String> {
            let node = map.get_node(lang)?;
            let s = r.scalar(node, what)?;
            check(r, s.as_str(), s.span()).then(|| s.trim().to_owned())
        };
        let zh = get(self, "zh_cn");
        let en = get(self, "en_us");
        match (zh, en) {
            (Some(zh), Some(en)) => Some(Text {
                zh_cn: zh,
                en_us: en,
            }),
            (Some(one), None) | (None, Some(one)) => Some(Text::new(&one, &one)),
            (None, None) => {
                if map.get_node("zh_cn").is_none() && map.get_node("en_us").is_none() {
                    self.problem(map.span(), format!("{what} needs zh_cn or en_us"));
                }
                None
            }
        }
    }

    fn decimal(&mut self, node: &Node, what: &str) -> Option<Decimal> {
        let s = self.scalar(node, what)?;
        match strict_decimal(s.as_str()) {
            Some(d) => Some(d),
            None => {
                self.problem(
                    s.span(),
                    format!("{what} `{}` is not a decimal number", s.as_str()),
                );
                None
            }
        }
    }

    fn definitions(&mut self, root: &Node) -> Vec<Definition> {
        let Some(map) = self.mapping(root, "the file") else {
            return Vec::new();
        };
        self.known_keys(map, &["definitions", "drop"], "the file");
        let Some(list) = map.get_node("definitions") else {
            self.problem(map.span(), "the file needs `definitions:`, a list");
            return Vec::new();
        };
        let Some(items) = list.as_sequence() else {
            self.problem(list.span(), "`definitions` must be a list");
            return Vec::new();
        };
        if items.len() > MAX_DEFINITIONS {
            self.problem(
                list.span(),
                format!("more than {MAX_DEFINITIONS} definitions"),
            );
        }
        let mut ids = HashSet::new();
        let mut out = Vec::new();
        for item in items.iter() {
            if let Some(def) = self.definition(item) {
                if !ids.insert(def.id) {
                    self.problem(item.span(), format!("duplicate id `{}`", def.id));
                    continue;
                }
                out.push(def);
            }
        }
        out
    }

    /// `drop: [leave, work_overtime]`: built-in ids, none of them also defined.
    fn drop(&mut self, root: &Node, defined: &[Definition]) -> Vec<RequestKind> {
        let Some(node) = root.as_mapping().and_then(|m| m.get_node("drop")) else {
            return Vec::new();
        };
        let Some(items) = node.as_sequence() else {
            self.problem(node.span(), "`drop` must be a list of built-in ids");
            return Vec::new();
        };
        let builtins: Vec<RequestKind> =
            super::builtin().definitions.iter().map(|d| d.id).collect();
        let mut out = Vec::new();
        for item in items.iter() {
            let Some(s) = self.scalar(item, "a dropped id") else {
                continue;
            };
            match RequestKind::new(s.as_str()).filter(|k| builtins.contains(k)) {
                None => self.problem(
                    s.span(),
                    format!(
                        "drop: `{}` is not a built-in definition (leave, work_overtime)",
                        s.as_str()
                    ),
                ),
                Some(k) if defined.iter().any(|d| d.id == k) => self.problem(
                    s.span(),
                    format!("drop: `{k}` is also defined in this file (define it or drop it)"),
                ),
                Some(k) if !out.contains(&k) => out.push(k),
                Some(_) => {}
            }
        }
        out
    }

    fn definition(&mut self, node: &Node) -> Option<Definition> {
        let map = self.mapping(node, "a definition")?;
        self.known_keys(map, &DEFINITION_KEYS, "a definition");
        let id = match map.get_node("id") {
            None => {
                self.problem(map.span(), "a definition needs an `id`");
                None
            }
            Some(node) => {
                self.scalar(node, "id")
                    .and_then(|s| match RequestKind::new(s.as_str()) {
                        None => {
                            self.problem(
                                s.span(),
                                format!("id `{}` must match ^[a-z][a-z0-9_]{{0,31}}$", s.as_str()),
                            );
                            None
                        }
                        Some(id) if id.is_reserved() => {
                            self.problem(s.span(), format!("id `{id}` is reserved"));
                            None
                        }
                        Some(id) => Some(id),
                    })
            }
        };
        let what = match id {
            Some(id) => format!("definition `{id}`"),
            None => "a definition".to_owned(),
        };
        let name = match map.get_node("name") {
            None => {
                self.problem(map.span(), format!("{what} needs a `name`"));
                None
            }
            Some(node) => self.text(node, "name"),
        };
        let fields = self.fields(map, &what);
        let approvers = map
            .get_node("approvers")
            .and_then(|node| self.approvers(node));
        let approvers_ok = map.get_node("approvers").is_none() || approvers.is_some();
        let before = self.problems.len();
        let steps = match (map.get_node("steps"), &fields) {
            (None, _) => Vec::new(),
            (Some(node), Some(fields)) => {
                if map.get_node("approvers").is_some() {
                    self.problem(
                        node.span(),
                        format!("{what} has `steps` and `approvers`: give each step its approvers"),
                    );
                }
                self.steps(node, fields, id)
            }
            (Some(_), None) => Vec::new(),
        };
        let cc = map.get_node("cc").and_then(|node| self.cc(node));
        let transfer_to = match map.get_node("transfer_to") {
            Some(node) if map.get_node("steps").is_some() => {
                self.problem(
                    node.span(),
                    format!("{what} has `steps` and `transfer_to`: give each step its transfer_to"),
                );
                None
            }
            Some(node) => self.transfer_to(node),
            None => None,
        };
        let remind = map.get_node("remind").and_then(|node| self.remind(node));
        let route_ok = self.problems.len() == before;
        match (id, name, fields, approvers_ok && route_ok) {
            (Some(id), Some(name), Some(fields), true) => Some(Definition {
                id,
                name,
                fields,
                approvers,
                steps,
                cc,
                transfer_to,
                remind,
            }),
            _ => None,
        }
    }

    /// `steps:` 1–[`MAX_STEPS`], ids unique, each with approvers, a mode that fits them, and a
    /// condition that reads and fits the fields.
    fn steps(&mut self, node: &Node, fields: &[Field], id: Option<RequestKind>) -> Vec<Step> {
        let Some(items) = node.as_sequence() else {
            self.problem(node.span(), "`steps` must be a list");
            return Vec::new();
        };
        if items.is_empty() || items.len() > MAX_STEPS {
            self.problem(node.span(), format!("a route has 1 to {MAX_STEPS} steps"));
        }
        // Conditions are checked against the definition's fields.
        let shape = Definition {
            id: id.unwrap_or(RequestKind::LEAVE),
            name: Text::new("-", "-"),
            fields: fields.to_vec(),
            approvers: None,
            steps: Vec::new(),
            cc: None,
            transfer_to: None,
            remind: None,
        };
        let mut ids = HashSet::new();
        let mut out = Vec::new();
        for item in items.iter() {
            let Some(map) = self.mapping(item, "a step") else {
                continue;
            };
            self.known_keys(map, &STEP_KEYS, "a step");
            let step_id = match map.get_node("id").map(|n| (n, self.scalar(n, "a step id"))) {
                None => {
                    self.problem(map.span(), "a step needs an `id`");
                    None
                }
                Some((_, None)) => None,
                Some((_, Some(s))) => {
                    let text = s.as_str();
                    if RequestKind::new(text).is_none() {
                        self.problem(
                            s.span(),
                            format!("step id `{text}` must match ^[a-z][a-z0-9_]{{0,31}}$"),
                        );
                        None
                    } else if !ids.insert(text.to_owned()) {
                        self.problem(s.span(), format!("duplicate step id `{text}`"));
                        None
                    } else {
                        Some(text.to_owned())
                    }
                }
            };
            let approvers = match map.get_node("approvers") {
                None => {
                    self.problem(map.span(), "a step needs `approvers`");
                    None
                }
                Some(n) => self.approvers(n),
            };
            let mode = match map.get_node("mode") {
                None => Some(Mode::Any),
                Some(n) => self.mode(n, approvers.as_ref()),
            };
            let when = match map.get_node("when") {
                None => Some(None),
                Some(n) => self.scalar(n, "when").and_then(|s| {
                    match Condition::parse(s.as_str()).and_then(|c| c.check(&shape).map(|()| c)) {
                        Ok(c) => Some(Some(c)),
                        Err(e) => {
                            self.problem(s.span(), format!("when `{}`: {e}", s.as_str()));
                            None
                        }
                    }
                }),
            };
            let transfer_to = match map.get_node("transfer_to") {
                None => Some(None),
                Some(n) => self.transfer_to(n).map(Some),
            };
            if let (Some(id), Some(approvers), Some(mode), Some(when), Some(transfer_to)) =
                (step_id, approvers, mode, when, transfer_to)
            {
                out.push(Step {
                    id,
                    approvers: Some(approvers),
                    mode,
                    when,
                    transfer_to,
                });
            }
        }
        out
    }

    /// `any`, `all` or `{n_of: N}` with 1 ≤ N ≤ the step's approvers (one for a leader).
    fn mode(&mut self, node: &Node, approvers: Option<&Approvers>) -> Option<Mode> {
        if let Some(s) = node.as_scalar() {
            return match s.as_str() {
                "any" => Some(Mode::Any),
                "all" => Some(Mode::All),
                other => {
                    self.problem(
                        s.span(),
                        format!("unknown mode `{other}` (any, all or {{n_of: N}})"),
                    );
                    None
                }
            };
        }
        let map = self.mapping(node, "mode")?;
        self.known_keys(map, &["n_of"], "mode");
        let n = map
            .get_node("n_of")
            .and_then(|n| n.as_scalar())
            .and_then(|s| s.as_str().parse::<u32>().ok().map(|n| (n, *s.span())));
        let Some((n, span)) = n else {
            self.problem(map.span(), "mode takes `{n_of: N}`, N a whole number");
            return None;
        };
        let most = match approvers {
            Some(Approvers::OpenIds { open_ids }) => open_ids.len(),
            Some(Approvers::Leader { .. }) => 1,
            None => return None,
        };
        if n == 0 || n as usize > most {
            self.problem(
                &span,
                format!("n_of {n} needs 1 to {most} approvers (the step has {most})"),
            );
            return None;
        }
        Some(Mode::NOf(n))
    }

    /// `cc: {open_ids: [ou_…], chat_ids: [oc_…]}`.
    fn cc(&mut self, node: &Node) -> Option<Cc> {
        let map = self.mapping(node, "cc")?;
        self.known_keys(map, &["open_ids", "chat_ids"], "cc");
        let mut cc = Cc::default();
        for (key, kind, out) in [
            ("open_ids", FeishuId::OpenId, &mut cc.open_ids),
            ("chat_ids", FeishuId::ChatId, &mut cc.chat_ids),
        ] {
            let Some(list) = map.get_node(key) else {
                continue;
            };
            let Some(items) = list.as_sequence() else {
                self.problem(list.span(), format!("cc {key} must be a list"));
                continue;
            };
            if items.len() > crate::config::MAX_APPROVERS {
                self.problem(
                    list.span(),
                    format!("cc {key}: at most {}", crate::config::MAX_APPROVERS),
                );
            }
            for item in items.iter() {
                let Some(s) = self.scalar(item, key) else {
                    continue;
                };
                if kind.is_valid(s.as_str()) {
                    out.push(s.as_str().to_owned());
                } else {
                    self.problem(
                        s.span(),
                        format!("`{}` is not a valid {key} entry", s.as_str()),
                    );
                }
            }
        }
        (!cc.open_ids.is_empty() || !cc.chat_ids.is_empty()).then_some(cc)
    }

    fn fields(&mut self, map: &MarkedMappingNode, what: &str) -> Option<Vec<Field>> {
        let Some(list) = map.get_node("fields") else {
            self.problem(map.span(), format!("{what} needs `fields`, a list"));
            return None;
        };
        let Some(items) = list.as_sequence() else {
            self.problem(list.span(), "`fields` must be a list");
            return None;
        };
        if items.is_empty() || items.len() > MAX_FIELDS {
            self.problem(
                list.span(),
                format!("{what} needs 1 to {MAX_FIELDS} fields"),
            );
        }
        let before = self.problems.len();
        let mut names: HashSet<String> = HashSet::new();
        let mut out = Vec::new();
        for item in items.iter() {
            let Some(field) = self.field(item) else {
                continue;
            };
            let mut taken = field.component_names();
            if field.field_type == FieldType::DateRange {
                taken.push(field.name.clone());
            }
            for name in taken {
                if !names.insert(name.clone()) {
                    self.problem(item.span(), format!("duplicate field name `{name}`"));
                }
            }
            out.push(field);
        }
        (self.problems.len() == before).then_some(out)
    }

    fn field(&mut self, node: &Node) -> Option<Field> {
        let map = self.mapping(node, "a field")?;
        self.known_keys(map, &FIELD_KEYS, "a field");
        let before = self.problems.len();
        let name = match map.get_node("name") {
            None => {
                self.problem(map.span(), "a field needs a `name`");
                None
            }
            Some(node) => self.scalar(node, "name").and_then(|s| {
                let ok = RequestKind::new(s.as_str()).is_some()
                    && !RESERVED_FIELD_NAMES.contains(&s.as_str());
                if RESERVED_FIELD_NAMES.contains(&s.as_str()) {
                    self.problem(
                        s.span(),
                        format!("field name `{}` is reserved (the form's own)", s.as_str()),
                    );
                } else if !ok {
                    self.problem(
                        s.span(),
                        format!(
                            "field name `{}` must match ^[a-z][a-z0-9_]{{0,31}}$",
                            s.as_str()
                        ),
                    );
                }
                ok.then(|| s.as_str().to_owned())
            }),
        };
        let field_type = match map.get_node("type") {
            None => {
                self.problem(map.span(), "a field needs a `type`");
                None
            }
            Some(node) => self.scalar(node, "type").and_then(|s| {
                let found = FieldType::ALL
                    .into_iter()
                    .find(|t| t.as_str() == s.as_str());
                if found.is_none() {
                    let known: Vec<_> = FieldType::ALL.iter().map(|t| t.as_str()).collect();
                    self.problem(
                        s.span(),
                        format!(
                            "unknown type `{}` (one of {})",
                            s.as_str(),
                            known.join(", ")
                        ),
                    );
                }
                found
            }),
        };
        let label = match map.get_node("label") {
            None => {
                self.problem(map.span(), "a field needs a `label`");
                None
            }
            Some(node) => self.text(node, "label"),
        };
        let (Some(name), Some(field_type), Some(label)) = (name, field_type, label) else {
            return None;
        };
        let required = match map.get_node("required") {
            None => false,
            Some(node) => match self.scalar(node, "required").map(|s| (s, s.as_bool())) {
                Some((_, Some(b))) => b,
                Some((s, None)) => {
                    self.problem(s.span(), "required must be true or false");
                    false
                }
                None => false,
            },
        };
        let mut field = Field::new(&name, field_type, label, required);
        // Keys that only some types take.
        let only = |r: &mut Self, key: &str, allowed: bool, types: &str| {
            if let (Some(node), false) = (map.get_node(key), allowed) {
                r.problem(
                    node.span(),
                    format!("`{key}` applies to {types} fields only (field `{name}`)"),
                );
            }
        };
        only(self, "min", field_type.is_numeric(), "number and amount");
        only(self, "max", field_type.is_numeric(), "number and amount");
        only(self, "step", field_type.is_numeric(), "number and amount");
        only(self, "max_len", field_type.is_text(), "text and textarea");
        only(
            self,
            "options",
            matches!(field_type, FieldType::Select | FieldType::MultiSelect),
            "select and multi_select",
        );
        only(self, "currency", field_type == FieldType::Amount, "amount");
        only(self, "unit", field_type == FieldType::Number, "number");
        only(
            self,
            "placeholder",
            field_type != FieldType::Checkbox,
            "all but checkbox",
        );
        only(
            self,
            "start_label",
            field_type == FieldType::DateRange,
            "date_range",
        );
        only(
            self,
            "end_label",
            field_type == FieldType::DateRange,
            "date_range",
        );
        if field_type.is_numeric() {
            for key in ["min", "max", "step"] {
                let Some(node) = map.get_node(key) else {
                    continue;
                };
                let Some(value) = self.decimal(node, key) else {
                    continue;
                };
                if field_type == FieldType::Amount && value.scale() > 2 {
                    self.problem(
                        node.span(),
                        format!("{key} of an amount has at most 2 decimals"),
                    );
                }
                match key {
                    "min" => field.min = Some(value),
                    "max" => field.max = Some(value),
                    _ if value <= Decimal::ZERO => {
                        self.problem(node.span(), "step must be more than 0");
                    }
                    _ => field.step = Some(value),
                }
            }
            if let (Some(min), Some(max)) = (field.min, field.max) {
                if min > max {
                    let span = map.get_node("min").map(|n| *n.span());
                    self.problem(
                        &span.unwrap_or_else(|| *map.span()),
                        format!("min {min} is more than max {max} (field `{name}`)"),
                    );
                }
            }
        }
        if field_type.is_text() {
            if let Some(node) = map.get_node("max_len") {
                if let Some(s) = self.scalar(node, "max_len") {
                    match s.as_str().parse::<u32>() {
                        Ok(n) if (1..=1000).contains(&n) => field.max_len = Some(n),
                        _ => {
                            self.problem(s.span(), "max_len must be a whole number from 1 to 1000")
                        }
                    }
                }
            }
        }
        if matches!(field_type, FieldType::Select | FieldType::MultiSelect) {
            field.options = self.options(map, &name);
        }
        if let Some(node) = map.get_node("currency") {
            if let Some(s) = self.scalar(node, "currency") {
                let c = s.as_str();
                if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
                    field.currency = Some(c.to_owned());
                } else {
                    self.problem(
                        s.span(),
                        "currency must be 3 capital letters (ISO 4217, e.g. CNY)",
                    );
                }
            }
        }
        if let Some(node) = map.get_node("unit") {
            field.unit = self.text(node, "unit");
        }
        if let Some(node) = map.get_node("placeholder") {
            field.placeholder = self.text(node, "placeholder");
        }
        if let Some(node) = map.get_node("start_label") {
            field.start_label = self.text(node, "start_label");
        }
        if let Some(node) = map.get_node("end_label") {
            field.end_label = self.text(node, "end_label");
        }
        if let Some(node) = map.get_node("cc_visible") {
            match self.scalar(node, "cc_visible").map(|s| (s, s.as_bool())) {
                Some((_, Some(b))) => field.cc_visible = b,
                Some((s, None)) => self.problem(s.span(), "cc_visible must be true or false"),
                None => {}
            }
        }
        (self.problems.len() == before).then_some(field)
    }

    fn options(&mut self, map: &MarkedMappingNode, name: &str) -> Vec<Choice> {
        let Some(node) = map.get_node("options") else {
            self.problem(map.span(), format!("select field `{name}` needs `options`"));
            return Vec::new();
        };
        let Some(items) = node.as_sequence() else {
            self.problem(node.span(), "`options` must be a list");
            return Vec::new();
        };
        if items.is_empty() || items.len() > MAX_OPTIONS {
            self.problem(
                node.span(),
                format!("select field `{name}` needs 1 to {MAX_OPTIONS} options"),
            );
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for item in items.iter() {
            let Some(option) = self.mapping(item, "an option") else {
                continue;
            };
            self.known_keys(option, &["value", "label"], "an option");
            let value = match option.get_node("value") {
                None => {
                    self.problem(option.span(), "an option needs a `value`");
                    None
                }
                Some(v) => self.scalar(v, "value").and_then(|s| {
                    let v = s.as_str();
                    let ok = (1..=64).contains(&v.len())
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if !ok {
                        self.problem(
                            s.span(),
                            format!("option value `{v}` must be 1 to 64 of A-Z a-z 0-9 _ -"),
                        );
                    } else if !seen.insert(v.to_owned()) {
                        self.problem(s.span(), format!("duplicate option value `{v}`"));
                    }
                    ok.then(|| v.to_owned())
                }),
            };
            let label = match option.get_node("label") {
                None => {
                    self.problem(option.span(), "an option needs a `label`");
                    None
                }
                Some(l) => self.text(l, "label"),
            };
            if let (Some(value), Some(label)) = (value, label) {
                out.push(Choice { value, label });
            }
        }
        out
    }

    /// `open_ids: […]`: 1–[`crate::config::MAX_APPROVERS`] distinct open_ids.
    fn open_ids(&mut self, ids: &Node) -> Option<Vec<String>> {
        let Some(list) = ids.as_sequence() else {
            self.problem(ids.span(), "open_ids must be a list");
            return None;
        };
        if list.is_empty() || list.len() > crate::config::MAX_APPROVERS {
            self.problem(
                ids.span(),
                format!(
                    "open_ids needs 1 to {} open_ids",
                    crate::config::MAX_APPROVERS
                ),
            );
            return None;
        }
        let mut out = Vec::new();
        for id in list.iter() {
            let s = self.scalar(id, "an open_id")?;
            if !FeishuId::OpenId.is_valid(s.as_str()) {
                self.problem(
                    s.span(),
                    format!("`{}` is not an open_id (ou_…)", s.as_str()),
                );
                return None;
            }
            if out.iter().any(|o: &String| o == s.as_str()) {
                self.problem(s.span(), format!("duplicate open_id `{}`", s.as_str()));
                return None;
            }
            out.push(s.as_str().to_owned());
        }
        Some(out)
    }

    /// `transfer_to: {open_ids: […]}` or `{department: true}`.
    fn transfer_to(&mut self, node: &Node) -> Option<TransferTo> {
        let map = self.mapping(node, "transfer_to")?;
        self.known_keys(map, &["open_ids", "department"], "transfer_to");
        match (map.get_node("open_ids"), map.get_node("department")) {
            (Some(ids), None) => Some(TransferTo {
                open_ids: self.open_ids(ids)?,
                department: false,
            }),
            (None, Some(department)) => {
                let s = self.scalar(department, "department")?;
                if s.as_bool() != Some(true) {
                    self.problem(
                        s.span(),
                        "department must be true (leave transfer_to out for no 转交)",
                    );
                    return None;
                }
                Some(TransferTo {
                    open_ids: Vec::new(),
                    department: true,
                })
            }
            _ => {
                self.problem(
                    map.span(),
                    "transfer_to takes one of `open_ids` or `department: true`",
                );
                None
            }
        }
    }

    /// A duration: seconds, or a number with s/m/h/d, from a minute to below the 14-day life of
    /// a request's cards.
    fn duration_secs(&mut self, node: &Node, what: &str) -> Option<u64> {
        let s = self.scalar(node, what)?;
        match feishu_kit::config::parse_duration(s.as_str()) {
            Some(d) if (60..14 * 86_400).contains(&d.as_secs()) => Some(d.as_secs()),
            _ => {
                self.problem(
                    s.span(),
                    format!(
                        "{what} `{}` must be a duration from 1 minute to below 14 days: seconds, \
                         or a number with s/m/h/d (e.g. 8h)",
                        s.as_str()
                    ),
                );
                None
            }
        }
    }

    /// `remind: {after, every, max, then: {escalate: {leader: true} | {open_ids: […]}}}`.
    fn remind(&mut self, node: &Node) -> Option<Remind> {
        let map = self.mapping(node, "remind")?;
        self.known_keys(map, &["after", "every", "max", "then"], "remind");
        let before = self.problems.len();
        let need = |this: &mut Self, key: &str| {
            let node = map.get_node(key);
            if node.is_none() {
                this.problem(map.span(), format!("remind needs `{key}`"));
            }
            node
        };
        let after = need(self, "after").and_then(|n| self.duration_secs(n, "remind.after"));
        let every = need(self, "every").and_then(|n| self.duration_secs(n, "remind.every"));
        let most = crate::config::MAX_REMINDERS;
        let max = need(self, "max").and_then(|n| {
            let s = self.scalar(n, "remind.max")?;
            match s.as_str().parse::<u32>() {
                Ok(m) if (1..=most).contains(&m) => Some(m),
                _ => {
                    self.problem(
                        s.span(),
                        format!("remind.max `{}` must be 1 to {most}", s.as_str()),
                    );
                    None
                }
            }
        });
        let escalate = match map.get_node("then") {
            None => None,
            Some(then) => {
                let then = self.mapping(then, "remind.then")?;
                self.known_keys(then, &["escalate"], "remind.then");
                let Some(target) = then.get_node("escalate") else {
                    self.problem(then.span(), "remind.then needs `escalate`");
                    return None;
                };
                match self.approvers(target)? {
                    Approvers::OpenIds { open_ids } => Some(Escalate::OpenIds { open_ids }),
                    Approvers::Leader { leader } => Some(Escalate::Leader { leader }),
                }
            }
        };
        if self.problems.len() != before {
            return None;
        }
        Some(Remind {
            after_secs: after?,
            every_secs: every?,
            max: max?,
            escalate,
        })
    }

    fn approvers(&mut self, node: &Node) -> Option<Approvers> {
        let map = self.mapping(node, "approvers")?;
        self.known_keys(map, &["open_ids", "leader"], "approvers");
        match (map.get_node("open_ids"), map.get_node("leader")) {
            (Some(ids), None) => Some(Approvers::OpenIds {
                open_ids: self.open_ids(ids)?,
            }),
            (None, Some(leader)) => match self.scalar(leader, "leader").map(|s| (s, s.as_bool())) {
                Some((_, Some(true))) => Some(Approvers::Leader { leader: true }),
                Some((s, _)) => {
                    self.problem(
                        s.span(),
                        "leader must be true (leave approvers out for the deployment's)",
                    );
                    None
                }
                None => None,
            },
            _ => {
                self.problem(
                    map.span(),
                    "approvers takes one of `open_ids` or `leader: true`",
                );
                None
            }
        }
    }
}

/// Parses and checks a definitions file: the set, or every problem found (in file order).
pub fn parse(text: &str) -> Result<DefinitionSet, Vec<Problem>> {
    if text.len() > MAX_FILE_BYTES {
        return Err(vec![Problem {
            line: 0,
            column: 0,
            message: format!("the file is over {MAX_FILE_BYTES} bytes"),
        }]);
    }
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    let root = match marked_yaml::parse_yaml_with_options(0, text, options) {
        Ok(root) => root,
        Err(error) => return Err(vec![load_problem(&error)]),
    };
    let mut reader = Reader {
        problems: Vec::new(),
    };
    let definitions = reader.definitions(&root);
    let drop = reader.drop(&root, &definitions);
    if reader.problems.is_empty()
        && definitions.is_empty()
        && drop.len() == super::builtin().definitions.len()
    {
        reader.problem(
            root.span(),
            "the file offers nothing: define a type or keep a built-in one",
        );
    }
    if reader.problems.is_empty() {
        Ok(DefinitionSet { definitions, drop })
    } else {
        reader.problems.sort_by_key(|p| (p.line, p.column));
        Err(reader.problems)
    }
}

fn load_problem(error: &marked_yaml::LoadError) -> Problem {
    use marked_yaml::LoadError as E;
    let (marker, message) = match error {
        E::TopLevelMustBeMapping(m) => (
            Some(*m),
            "the file must be a mapping (definitions: …)".to_owned(),
        ),
        E::TopLevelMustBeSequence(m) => (Some(*m), "unexpected list at the top".to_owned()),
        E::UnexpectedAnchor(m) => (Some(*m), "anchors and aliases are not supported".to_owned()),
        E::MappingKeyMustBeScalar(m) => (Some(*m), "a key must be a plain value".to_owned()),
        E::UnexpectedTag(m) => (Some(*m), "tags (!…) are not supported".to_owned()),
        E::ScanError(m, e) => (Some(*m), format!("not valid YAML: {}", e.info())),
        E::DuplicateKey(d) => (
            d.key.span().start().copied(),
            format!("duplicate key `{}`", d.key.as_str()),
        ),
    };
    Problem {
        line: marker.map(|m| m.line()).unwrap_or(0),
        column: marker.map(|m| m.column()).unwrap_or(0),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPENSE: &str = r#"
definitions:
  - id: expense
    name: {zh_cn: 费用报销, en_us: Expense}
    fields:
      - {name: amount, type: amount, label: {zh_cn: 金额, en_us: Amount}, required: true,
         min: "0.01", max: "200000", currency: CNY}
      - {name: category, type: select, label: {zh_cn: 类别, en_us: Category}, required: true,
         options: [{value: travel, label: {zh_cn: 差旅, en_us: Travel}},
                   {value: office, label: {zh_cn: 办公, en_us: Office}}]}
      - {name: period, type: date_range, label: {zh_cn: 日期, en_us: Dates}, required: true}
      - {name: reason, type: textarea, label: {zh_cn: 事由, en_us: Reason}, required: true, max_len: 300}
    approvers: {open_ids: [ou_84aad35d084aa403a838cf73ee18467]}
"#;

    #[test]
    fn the_issue_example_reads() {
        let set = parse(EXPENSE).unwrap();
        let expense = &set.definitions[0];
        assert_eq!(expense.id.as_str(), "expense");
        assert_eq!(expense.fields.len(), 4);
        let amount = expense.field("amount").unwrap();
        assert_eq!(amount.min, Some(Decimal::new(1, 2)));
        assert_eq!(amount.max, Some(Decimal::new(200_000, 0)));
        assert_eq!(amount.currency.as_deref(), Some("CNY"));
        assert_eq!(expense.field("category").unwrap().options.len(), 2);
        assert_eq!(expense.field("reason").unwrap().max_len(), 300);
        assert!(matches!(expense.approvers, Some(Approvers::OpenIds { .. })));
    }

    #[test]
    fn json_is_yaml_too() {
        let json = serde_json::to_string(&parse(EXPENSE).unwrap()).unwrap();
        assert_eq!(parse(&json).unwrap(), parse(EXPENSE).unwrap());
    }

    #[test]
    fn every_problem_is_named_with_its_line() {
        let broken = "definitions:
  - id: expense
    name: 报销
    fields:
      - {name: amount, type: money, label: 金额}
      - {name: reason, type: text, label: 事由}
      - {name: reason, type: text, label: 事由2}
      - {name: kind, type: select, label: 类别}
      - {name: n, type: number, label: 数量, min: 5, max: 1}
      - {name: x, type: text, label: X, colour: red}
";
        let problems = parse(broken).unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let find = |needle: &str| {
            text.iter()
                .find(|p| p.contains(needle))
                .unwrap_or_else(|| panic!("{needle} in {text:#?}"))
                .clone()
        };
        assert!(find("unknown type `money`").starts_with("line 5:"));
        assert!(find("duplicate field name `reason`").starts_with("line 7:"));
        assert!(find("needs `options`").starts_with("line 8:"));
        assert!(find("min 5 is more than max 1").starts_with("line 9:"));
        assert!(find("unknown key `colour`").starts_with("line 10:"));
    }

    #[test]
    fn structure_and_scalar_problems() {
        for (file, needle) in [
            ("definitions: [", "not valid YAML"),
            ("[1, 2]", "must be a mapping"),
            ("definitions: []\ndrop: [leave, work_overtime]", "offers nothing"),
            ("defs: []", "unknown key `defs`"),
            ("definitions:\n  - {id: Expense, name: x, fields: [{name: a, type: text, label: a}]}", "must match"),
            ("definitions:\n  - {id: approve, name: x, fields: [{name: a, type: text, label: a}]}", "reserved"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}]}\n  - {id: a, name: y, fields: [{name: a, type: text, label: a}]}", "duplicate id"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: amount, label: a, min: \"0.001\"}]}", "at most 2 decimals"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: number, label: a, min: 1e3}]}", "not a decimal"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a, min: 1}]}", "applies to number"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}], approvers: {open_ids: [all]}}", "not an open_id"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}], approvers: {leader: false}}", "leader must be true"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}]}\n  - {id: a, id: b}", "duplicate key"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: date_range, label: a}, {name: start_a, type: date, label: b}]}", "duplicate field name `start_a`"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}]}\ndrop: [expense]", "not a built-in"),
            ("definitions:\n  - {id: leave, name: x, fields: [{name: a, type: text, label: a}]}\ndrop: [leave]", "also defined"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: btn_file, type: text, label: a}]}", "reserved (the form's own)"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: ok, type: checkbox, label: a, placeholder: b}]}", "all but checkbox"),
            ("definitions:\n  - {id: a, name: \"<at id=all></at>\", fields: [{name: a, type: text, label: a}]}", "may not contain '<'"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: \"**bold**\"}]}", "may not contain '*'"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}], transfer_to: {open_ids: [all]}}", "not an open_id"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}], transfer_to: {department: false}}", "department must be true"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}], transfer_to: {}}", "one of `open_ids` or `department: true`"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}], transfer_to: {department: true}, steps: [{id: s, approvers: {leader: true}}]}", "give each step its transfer_to"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}], remind: {after: 0, every: 1h, max: 2}}", "from 1 minute"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}], remind: {after: 1h, every: 20d, max: 2}}", "below 14 days"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}], remind: {after: 1h, every: 1h, max: 4}}", "must be 1 to 3"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}], remind: {after: 1h, max: 2}}", "remind needs `every`"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}], remind: {after: 1h, every: 1h, max: 2, then: {escalate: {leader: false}}}}", "leader must be true"),
            ("definitions:\n  - {id: a, name: x, fields: [{name: a, type: text, label: a}], remind: {after: 1h, every: 1h, max: 2, then: {page: me}}}", "unknown key"),
        ] {
            let problems = parse(file).unwrap_err();
            assert!(
                problems.iter().any(|p| p.message.contains(needle)),
                "{file}: {needle} not in {problems:?}"
            );
        }
    }

    const ROUTED: &str = "definitions:
  - id: expense
    name: 报销
    fields:
      - {name: amount, type: amount, label: 金额, required: true, cc_visible: true}
      - {name: reason, type: textarea, label: 事由}
    steps:
      - {id: manager, approvers: {leader: true}, mode: any}
      - {id: finance, approvers: {open_ids: [ou_a1, ou_b1, ou_c1]}, mode: all, when: \"amount > 5000\"}
      - {id: board,   approvers: {open_ids: [ou_d1, ou_e1, ou_f1]}, mode: {n_of: 2}}
    cc: {open_ids: [ou_g1], chat_ids: [oc_h1]}
";

    #[test]
    fn the_issue_route_reads() {
        let set = parse(ROUTED).unwrap();
        let expense = &set.definitions[0];
        let modes: Vec<_> = expense.steps.iter().map(|s| s.mode).collect();
        assert_eq!(modes, [Mode::Any, Mode::All, Mode::NOf(2)]);
        assert_eq!(
            expense.steps[1].when.as_ref().unwrap().source(),
            "amount > 5000"
        );
        assert_eq!(expense.cc.as_ref().unwrap().chat_ids, ["oc_h1"]);
        assert!(expense.fields[0].cc_visible && !expense.fields[1].cc_visible);
        assert_eq!(expense.route().len(), 3);
        // Stored and read back (the table's JSON) unchanged.
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(parse(&json).unwrap(), set);
        // Without steps: one `any` step with the definition's approvers.
        let plain = parse(&json.replace("\"steps\"", "\"x_steps\""));
        assert!(plain.is_err(), "unknown keys stay errors");
    }

    #[test]
    fn route_problems_are_named_with_their_line() {
        let bad = |from: &str, to: &str, needle: &str, line: usize| {
            let problems = parse(&ROUTED.replace(from, to)).unwrap_err();
            let p = problems
                .iter()
                .find(|p| p.message.contains(needle))
                .unwrap_or_else(|| panic!("{needle} in {problems:?}"));
            assert_eq!(p.line, line, "{needle}: {p}");
        };
        bad("amount > 5000", "cost > 5000", "unknown field `cost`", 9);
        bad(
            "amount > 5000",
            "reason > 5000",
            "field `reason` is textarea",
            9,
        );
        bad(
            "amount > 5000",
            "amount >> 5000",
            "when `amount >> 5000`",
            9,
        );
        bad("amount > 5000", "amount > 'x'", "cannot be compared", 9);
        bad("{n_of: 2}", "{n_of: 4}", "n_of 4 needs 1 to 3", 10);
        bad("mode: all", "mode: most", "unknown mode `most`", 9);
        bad(
            "id: board",
            "id: manager",
            "duplicate step id `manager`",
            10,
        );
        bad("oc_h1", "ou_h1", "not a valid chat_ids entry", 11);
        bad(
            "ou_b1, ou_c1]",
            "ou_b1, ou_a1]",
            "duplicate open_id `ou_a1`",
            9,
        );
        bad(
            "    steps:",
            "    approvers: {leader: true}\n    steps:",
            "has `steps` and `approvers`",
            9,
        );
    }
}
