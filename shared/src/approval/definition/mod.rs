//! Approval definitions: the request types a team approves, their fields and their approvers,
//! from a file (`APPROVAL_DEFINITIONS`, `cardbot-admin definitions apply`) instead of code.
//!
//! A definition is immutable once applied: `apply` writes a new version of each changed one
//! (`crate::definitions`), and a request pins the id and version it was drawn with
//! ([`DefinitionRef`]), so a filed request renders and decides as it was filed whatever the file
//! says later. Version 0 of `leave` (请假) and `work_overtime` (加班) are built in
//! ([`builtin`]): they are today's two forms written in this schema, and what a deployment
//! without a file offers.
//!
//! The file's shape is a public interface (admins' files and deploy pipelines use it): keys are
//! added, never renamed. `docs/definitions.md` documents it; [`file::parse`] reads it.

pub mod decimal;
pub mod file;
pub mod when;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::cards::Lang;

/// A definition's id: `^[a-z][a-z0-9_]{0,31}$`, the button value's `type` and part of the stored
/// status (`<id>_filed`). Copy, held inline (no allocation), so statuses stay `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestKind {
    len: u8,
    bytes: [u8; MAX_ID_LEN],
}

/// The longest definition id.
pub const MAX_ID_LEN: usize = 32;

/// Ids a definition may not take: the approval card's own button values (`{"type": …}`), the
/// word `overtime` (stored statuses of 加班 begin with it), and words kept for the next
/// actions (routes, transfer, return).
pub const RESERVED_IDS: [&str; 16] = [
    "file", "approve", "reject", "withdraw", "start", "open", "submit", "overtime", "pending",
    "expired", "transfer", "return", "comment", "cc", "remind", "cancel",
];

impl RequestKind {
    /// 请假, the built-in `leave`.
    pub const LEAVE: Self = Self::from_static("leave");
    /// 加班, the built-in `work_overtime`.
    pub const WORK_OVERTIME: Self = Self::from_static("work_overtime");

    const fn from_static(id: &str) -> Self {
        let src = id.as_bytes();
        let mut bytes = [0u8; MAX_ID_LEN];
        let mut i = 0;
        while i < src.len() {
            bytes[i] = src[i];
            i += 1;
        }
        Self {
            len: src.len() as u8,
            bytes,
        }
    }

    /// `id` if it matches `^[a-z][a-z0-9_]{0,31}$`; reserved words are checked by validation, not
    /// here (a stored status may hold any well-formed id).
    pub fn new(id: &str) -> Option<Self> {
        let b = id.as_bytes();
        let ok = (1..=MAX_ID_LEN).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
        ok.then(|| Self::from_static(id))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `new`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// The first word of its stored statuses: the id, but `overtime` for `work_overtime` (the
    /// statuses earlier versions wrote: `overtime_filed`).
    pub fn status_prefix(&self) -> &str {
        if *self == Self::WORK_OVERTIME {
            "overtime"
        } else {
            self.as_str()
        }
    }

    /// The kind a stored status prefix names (the inverse of [`RequestKind::status_prefix`]).
    pub fn from_status_prefix(prefix: &str) -> Option<Self> {
        if prefix == "overtime" {
            return Some(Self::WORK_OVERTIME);
        }
        Self::new(prefix).filter(|k| *k != Self::WORK_OVERTIME)
    }

    /// Whether a file may define it (not a [`RESERVED_IDS`] word).
    pub fn is_reserved(&self) -> bool {
        RESERVED_IDS.contains(&self.as_str())
    }
}

impl fmt::Debug for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestKind({})", self.as_str())
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RequestKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RequestKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = String::deserialize(d)?;
        Self::new(&id).ok_or_else(|| serde::de::Error::custom(format!("bad definition id {id:?}")))
    }
}

/// A text in both languages. A file may give one; the other then shows the same text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub zh_cn: String,
    pub en_us: String,
}

impl Text {
    /// `zh` and `en`.
    pub fn new(zh: &str, en: &str) -> Self {
        Self {
            zh_cn: zh.to_owned(),
            en_us: en.to_owned(),
        }
    }

    /// The text in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        lang.pick(&self.zh_cn, &self.en_us)
    }
}

/// A field's type and the card component that asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// One line of text (`input`); `max_len` default 100.
    Text,
    /// Several lines (`input`, `multiline_text`); `max_len` default 300.
    Textarea,
    /// A decimal number (`input`), within `min`/`max`, on `step`.
    Number,
    /// Money: a decimal string with at most 2 decimals (`input`), never a float; `currency`.
    Amount,
    /// One of `options` (`select_static`).
    Select,
    /// Any of `options` (`multi_select_static`).
    MultiSelect,
    /// A day (`date_picker`).
    Date,
    /// Two days, end ≥ start (two `date_picker`s: `start_<name>`, `end_<name>`).
    DateRange,
    /// Yes or no (`checker`); `required` means it must be ticked.
    Checkbox,
}

impl FieldType {
    /// Every type, as the file spells it.
    pub const ALL: [Self; 9] = [
        Self::Text,
        Self::Textarea,
        Self::Number,
        Self::Amount,
        Self::Select,
        Self::MultiSelect,
        Self::Date,
        Self::DateRange,
        Self::Checkbox,
    ];

    /// The file's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Textarea => "textarea",
            Self::Number => "number",
            Self::Amount => "amount",
            Self::Select => "select",
            Self::MultiSelect => "multi_select",
            Self::Date => "date",
            Self::DateRange => "date_range",
            Self::Checkbox => "checkbox",
        }
    }

    /// Chosen (请选择) rather than typed (请填写).
    pub fn is_chosen(self) -> bool {
        matches!(
            self,
            Self::Select | Self::MultiSelect | Self::Date | Self::DateRange | Self::Checkbox
        )
    }

    fn is_numeric(self) -> bool {
        matches!(self, Self::Number | Self::Amount)
    }

    fn is_text(self) -> bool {
        matches!(self, Self::Text | Self::Textarea)
    }

    /// The default and the largest `max_len` (Feishu's `input.max_length` is 1–1000).
    pub fn max_len_default(self) -> u32 {
        match self {
            Self::Textarea => 300,
            _ => 100,
        }
    }
}

/// One option of a select.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// What `form_value` carries and the request keeps: 1–64 of `[A-Za-z0-9_-]`.
    pub value: String,
    pub label: Text,
}

/// One field of a definition's form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The component's `name` and the key of the request's value: `^[a-z][a-z0-9_]{0,31}$`.
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub label: Text,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Numbers and amounts: the smallest and largest value, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Decimal>,
    /// Numbers and amounts: values are whole multiples of it (e.g. `0.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Decimal>,
    /// Text and textarea: the most characters (default 100 / 300, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<u32>,
    /// Select and multi_select: the choices, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Choice>,
    /// Amounts: the currency shown after the value (ISO 4217, e.g. `CNY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Numbers: the unit shown after the value (e.g. 小时 / h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Text>,
    /// The component's placeholder; default: 请填写 / 请选择 and the label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<Text>,
    /// Date ranges: the first and last picker's labels (default: the label with 开始 / 结束).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_label: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_label: Option<Text>,
    /// Shown on a CC chat's card (a card other people share): only fields marked so are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cc_visible: bool,
}

impl Field {
    /// A field with no optional keys.
    pub fn new(name: &str, field_type: FieldType, label: Text, required: bool) -> Self {
        Self {
            name: name.to_owned(),
            field_type,
            label,
            required,
            min: None,
            max: None,
            step: None,
            max_len: None,
            options: Vec::new(),
            currency: None,
            unit: None,
            placeholder: None,
            start_label: None,
            end_label: None,
            cc_visible: false,
        }
    }

    /// The components' names this field puts in the form (a date range has two).
    pub fn component_names(&self) -> Vec<String> {
        match self.field_type {
            FieldType::DateRange => vec![self.start_name(), self.end_name()],
            _ => vec![self.name.clone()],
        }
    }

    /// A date range's first picker: `start_<name>`.
    pub fn start_name(&self) -> String {
        format!("start_{}", self.name)
    }

    /// A date range's last picker: `end_<name>`.
    pub fn end_name(&self) -> String {
        format!("end_{}", self.name)
    }

    /// The first picker's label.
    pub fn start_label(&self) -> Text {
        self.start_label.clone().unwrap_or_else(|| Text {
            zh_cn: format!("{}（开始）", self.label.zh_cn),
            en_us: format!("{} (from)", self.label.en_us),
        })
    }

    /// The last picker's label.
    pub fn end_label(&self) -> Text {
        self.end_label.clone().unwrap_or_else(|| Text {
            zh_cn: format!("{}（结束）", self.label.zh_cn),
            en_us: format!("{} (to)", self.label.en_us),
        })
    }

    /// The most characters a text accepts.
    pub fn max_len(&self) -> u32 {
        self.max_len
            .unwrap_or_else(|| self.field_type.max_len_default())
    }

    /// The label of the option `value`, if it is one.
    pub fn choice(&self, value: &str) -> Option<&Choice> {
        self.options.iter().find(|c| c.value == value)
    }
}

/// Who decides a definition's requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Approvers {
    /// These open_ids (any one decides).
    OpenIds { open_ids: Vec<String> },
    /// The requester's leader in the contact data.
    Leader { leader: bool },
}

/// How a step's approvers decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `any`: the first approval decides the step; any rejection ends the request.
    Any,
    /// `all`: every approver must approve.
    All,
    /// `{n_of: N}`: N approvals decide the step.
    NOf(u32),
}

impl Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Any => s.serialize_str("any"),
            Self::All => s.serialize_str("all"),
            Self::NOf(n) => {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("n_of", n)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Word(String),
            NOf { n_of: u32 },
        }
        match Wire::deserialize(d)? {
            Wire::Word(w) if w == "any" => Ok(Self::Any),
            Wire::Word(w) if w == "all" => Ok(Self::All),
            Wire::Word(w) => Err(serde::de::Error::custom(format!("unknown mode {w:?}"))),
            Wire::NOf { n_of } => Ok(Self::NOf(n_of)),
        }
    }
}

/// One step of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// `^[a-z][a-z0-9_]{0,31}$`, unique in its definition.
    pub id: String,
    /// Who decides it; `None` (only for a definition without `steps`): the deployment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<Approvers>,
    pub mode: Mode,
    /// The step is skipped (and shown as skipped) when this does not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<when::Condition>,
    /// `transfer_to`: whom the step's approvers may hand their vote to (转交); none: no 转交.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_to: Option<TransferTo>,
}

/// `transfer_to: {open_ids: […]}` or `{department: true}`: the candidates an approver's person
/// picker offers for 转交 (Feishu's `select_person` shows only the options given, else the chat's
/// members, which in the approver's p2p chat is only themself: `cards-and-cardkit.md` §1.2): these
/// people, or the approver's own department's direct users from the contact API (looked up when
/// their card is sent; at most [`MAX_TRANSFER_CANDIDATES`]). The requester and the step's own
/// approvers are never offered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferTo {
    /// 1–[`crate::config::MAX_APPROVERS`] open_ids; empty with `department`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_ids: Vec<String>,
    /// The approver's department (its first `department_ids` entry).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub department: bool,
}

/// Most candidates a 转交 picker offers (the card stays within Feishu's size limits).
pub const MAX_TRANSFER_CANDIDATES: usize = 20;

/// `remind: {after, every, max, then}`: a definition's own reminders of silent approvers, in
/// place of the deployment's (`APPROVAL_REMIND_AFTER`, daily, three times); with `then`, the
/// escalation when they run out. Durations in seconds (the file takes `90`, `30m`, `8h`, `2d`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remind {
    /// First reminder this long after the request is filed (s).
    pub after_secs: u64,
    /// Then one every this long (s).
    pub every_secs: u64,
    /// At most this many reminders, 1–[`crate::config::MAX_REMINDERS`].
    pub max: u32,
    /// `then: {escalate: …}`: one `every` after the last reminder, the step still waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate: Option<Escalate>,
}

/// Whom a silent step escalates to: added to the step (an `all` step's silent approvers are
/// replaced by it; an `any` or `n_of` step gains it as a voter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Escalate {
    /// `{leader: true}`: each silent approver's leader (`leader_user_id`, contact API).
    Leader { leader: bool },
    /// `{open_ids: […]}`: these people.
    OpenIds { open_ids: Vec<String> },
}

/// Who gets a read-only card of each request when it is filed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cc {
    /// Users, each in their p2p chat with the bot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_ids: Vec<String>,
    /// Chats (the one shared card a definition's author may choose: it shows only the fields
    /// marked `cc_visible`, never the reason or comments).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chat_ids: Vec<String>,
}

/// The step id of a definition without `steps` (one `any` step).
pub const SINGLE_STEP: &str = "approval";

/// A request type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    pub id: RequestKind,
    pub name: Text,
    pub fields: Vec<Field>,
    /// `None`: the deployment's approvers (`APPROVER_OPEN_IDS`, then the leader look-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<Approvers>,
    /// The route, in order; empty: one `any` step with [`Definition::approvers`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Read-only cards for these users and chats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc: Option<Cc>,
    /// A definition without `steps`: whom its approvers may hand their vote to (转交).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_to: Option<TransferTo>,
    /// Its own reminders and escalation; `None`: the deployment's reminders, no escalation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind: Option<Remind>,
}

impl Definition {
    /// Its route: `steps`, or one `any` step with its `approvers` (as before routes).
    pub fn route(&self) -> Vec<Step> {
        if !self.steps.is_empty() {
            return self.steps.clone();
        }
        vec![Step {
            id: SINGLE_STEP.to_owned(),
            approvers: self.approvers.clone(),
            mode: Mode::Any,
            when: None,
            transfer_to: self.transfer_to.clone(),
        }]
    }

    /// The step `id` of its route.
    pub fn step(&self, id: &str) -> Option<Step> {
        self.route().into_iter().find(|s| s.id == id)
    }

    /// The field `name`, if the definition has it.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A definitions file, checked ([`file::parse`]): ids and field names unique, every rule sound,
/// every card within Feishu's limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionSet {
    pub definitions: Vec<Definition>,
    /// Built-in ids (`leave`, `work_overtime`) the deployment does not offer (`drop:`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<RequestKind>,
}

impl DefinitionSet {
    /// What a deployment with this file offers, in the 审批 card's order: the built-in types
    /// first (a file's definition of the same id in its place; a dropped one left out), then the
    /// file's other definitions in its order.
    pub fn effective(&self) -> Vec<Definition> {
        let mut out: Vec<Definition> = builtin()
            .definitions
            .into_iter()
            .filter(|b| !self.drop.contains(&b.id))
            .map(|b| {
                self.definitions
                    .iter()
                    .find(|d| d.id == b.id)
                    .cloned()
                    .unwrap_or(b)
            })
            .collect();
        for d in &self.definitions {
            if !out.iter().any(|o| o.id == d.id) {
                out.push(d.clone());
            }
        }
        out
    }
}

/// Which definition, at which version, a request was drawn with. Version 0 is built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DefinitionRef {
    pub id: RequestKind,
    pub version: u32,
    /// The version is one of the card's tenant's own definitions (a store app's tenant that
    /// applied its own set, `definitions#<tenant_key>`), not the deployment's. Absent (`false`) in
    /// every self-built request, whose data is as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tenant: bool,
}

impl DefinitionRef {
    /// Version `version` of `id` in the deployment's definitions.
    pub fn new(id: RequestKind, version: u32) -> Self {
        Self {
            id,
            version,
            tenant: false,
        }
    }

    fn key(self) -> (RequestKind, u32, bool) {
        (self.id, self.version, self.tenant)
    }
}

/// A definition at a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub version: u32,
    pub definition: Arc<Definition>,
}

/// The built-in definitions, version 0: `leave` (请假) and `work_overtime` (加班), exactly the two
/// forms of earlier versions (their component names, labels, rules and button values).
pub fn builtin() -> DefinitionSet {
    let reason = || {
        let mut f = Field::new(
            "reason",
            FieldType::Textarea,
            Text::new("申请事由", "Reason"),
            true,
        );
        f.max_len = Some(300);
        f.placeholder = Some(Text::new("请填写申请事由", "Why you need it"));
        f
    };
    let leave_type = {
        let mut f = Field::new(
            "leave_type",
            FieldType::Select,
            Text::new("请假类型", "Leave type"),
            true,
        );
        f.options = [
            ("annual", "年假", "Annual leave"),
            ("personal", "事假", "Personal leave"),
            ("sick", "病假", "Sick leave"),
            ("compensatory", "调休", "Time off in lieu"),
        ]
        .into_iter()
        .map(|(value, zh, en)| Choice {
            value: value.to_owned(),
            label: Text::new(zh, en),
        })
        .collect();
        f.placeholder = Some(Text::new("请选择请假类型", "Choose the leave type"));
        f
    };
    let dates = {
        let mut f = Field::new(
            "date",
            FieldType::DateRange,
            Text::new("时间", "Dates"),
            true,
        );
        f.start_label = Some(Text::new("开始日期", "First day"));
        f.end_label = Some(Text::new("结束日期", "Last day"));
        f
    };
    let day = {
        let mut f = Field::new("date", FieldType::Date, Text::new("加班日期", "Date"), true);
        f.placeholder = Some(Text::new("请选择加班日期", "Choose the date"));
        f
    };
    let hours = {
        let mut f = Field::new(
            "hours",
            FieldType::Number,
            Text::new("加班时长", "Hours"),
            true,
        );
        f.min = Some(Decimal::new(5, 1));
        f.max = Some(Decimal::new(12, 0));
        f.step = Some(Decimal::new(5, 1));
        f.unit = Some(Text::new("小时", "h"));
        f.placeholder = Some(Text::new(
            "0.5 到 12，如 2 或 2.5",
            "0.5 to 12, e.g. 2 or 2.5",
        ));
        f
    };
    DefinitionSet {
        drop: Vec::new(),
        definitions: vec![
            Definition {
                id: RequestKind::LEAVE,
                name: Text::new("请假", "Leave"),
                fields: vec![leave_type, dates, reason()],
                approvers: None,
                steps: Vec::new(),
                cc: None,
                transfer_to: None,
                remind: None,
            },
            Definition {
                id: RequestKind::WORK_OVERTIME,
                name: Text::new("加班", "Overtime"),
                fields: vec![day, hours, reason()],
                approvers: None,
                steps: Vec::new(),
                cc: None,
                transfer_to: None,
                remind: None,
            },
        ],
    }
}

/// The definitions a function works with: those offered now (in order, each at its current
/// version) and every version a request it reads was pinned to. Built by `crate::definitions`
/// from the table; [`Catalog::builtin`] for a deployment without a file and for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    current: Vec<Versioned>,
    versions: BTreeMap<(RequestKind, u32, bool), Arc<Definition>>,
    /// The offered definitions are a store app's tenant's own set (pins made from it say so).
    tenant_set: bool,
}

impl Catalog {
    /// The built-in definitions, offered at version 0.
    pub fn builtin() -> Self {
        Self::with_current(
            builtin()
                .definitions
                .into_iter()
                .map(|d| Versioned {
                    version: 0,
                    definition: Arc::new(d),
                })
                .collect(),
        )
    }

    /// `current` offered now; the built-in versions stay readable (requests of earlier versions
    /// pinned them).
    pub fn with_current(current: Vec<Versioned>) -> Self {
        let mut versions = BTreeMap::new();
        for d in builtin().definitions {
            versions.insert((d.id, 0, false), Arc::new(d));
        }
        for v in &current {
            versions.insert((v.definition.id, v.version, false), v.definition.clone());
        }
        Self {
            current,
            versions,
            tenant_set: false,
        }
    }

    /// `current` offered now from a store app's tenant's own set (`definitions#<tenant_key>`).
    pub fn with_tenant_current(current: Vec<Versioned>) -> Self {
        let mut catalog = Self::with_current(Vec::new());
        for v in &current {
            catalog
                .versions
                .insert((v.definition.id, v.version, true), v.definition.clone());
        }
        catalog.current = current;
        catalog.tenant_set = true;
        catalog
    }

    /// The pin of version `version` of `id` offered by this catalog.
    pub fn pin(&self, id: RequestKind, version: u32) -> DefinitionRef {
        DefinitionRef {
            id,
            version,
            tenant: self.tenant_set,
        }
    }

    /// Adds a pinned version read from the table.
    pub fn insert(&mut self, reference: DefinitionRef, definition: Arc<Definition>) {
        self.versions.insert(reference.key(), definition);
    }

    /// Whether `reference` is known.
    pub fn has(&self, reference: DefinitionRef) -> bool {
        self.versions.contains_key(&reference.key())
    }

    /// The definitions offered now, in the file's order.
    pub fn current(&self) -> &[Versioned] {
        &self.current
    }

    /// The current version of `id`, if it is offered.
    pub fn current_of(&self, id: RequestKind) -> Option<&Versioned> {
        self.current.iter().find(|v| v.definition.id == id)
    }

    /// The definition a request pinned; a request of an earlier version (no pin) is the
    /// built-in version 0. If the pinned version cannot be read (never, unless an item was
    /// deleted by hand), the current one of the same id, then a bare definition naming the id:
    /// a card always renders.
    pub fn resolve(&self, kind: RequestKind, pinned: Option<DefinitionRef>) -> Arc<Definition> {
        let reference = pinned.unwrap_or(DefinitionRef::new(kind, 0));
        if let Some(d) = self.versions.get(&reference.key()) {
            return d.clone();
        }
        if let Some(v) = self.current_of(reference.id) {
            return v.definition.clone();
        }
        Arc::new(Definition {
            id: reference.id,
            name: Text::new(reference.id.as_str(), reference.id.as_str()),
            fields: Vec::new(),
            approvers: None,
            steps: Vec::new(),
            cc: None,
            transfer_to: None,
            remind: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_and_held_inline() {
        for good in ["a", "expense", "leave_2", &"x".repeat(32)] {
            assert_eq!(RequestKind::new(good).unwrap().as_str(), good);
        }
        for bad in ["", "A", "1a", "_a", "a-b", "费用", &"x".repeat(33), "a b"] {
            assert!(RequestKind::new(bad).is_none(), "{bad:?}");
        }
        assert_eq!(RequestKind::LEAVE.as_str(), "leave");
        assert_eq!(RequestKind::WORK_OVERTIME.status_prefix(), "overtime");
        assert_eq!(
            RequestKind::from_status_prefix("overtime"),
            Some(RequestKind::WORK_OVERTIME)
        );
        assert_eq!(RequestKind::from_status_prefix("work_overtime"), None);
        assert!(RequestKind::new("approve").unwrap().is_reserved());
        assert_eq!(
            serde_json::to_string(&RequestKind::LEAVE).unwrap(),
            "\"leave\""
        );
    }

    #[test]
    fn the_builtins_pass_their_own_validation() {
        let text = serde_json::to_string(&builtin()).unwrap();
        let parsed = file::parse(&text).unwrap();
        assert_eq!(parsed, builtin());
    }

    #[test]
    fn the_catalog_resolves_pins_and_falls_back() {
        let catalog = Catalog::builtin();
        assert_eq!(catalog.resolve(RequestKind::LEAVE, None).name.zh_cn, "请假");
        let unknown = RequestKind::new("gone").unwrap();
        let pinned = DefinitionRef::new(unknown, 3);
        assert_eq!(catalog.resolve(unknown, Some(pinned)).name.zh_cn, "gone");
    }
}
