//! Card JSON 2.0 as typed serde structs, the callback answer, message contents, and the size rules.
//!
//! The shapes mirror Feishu's JSON exactly (`../shared/feishu/cards-and-cardkit.md` §2.4, §5, §6);
//! a bot builds every card and text it shows from them, and [`CardKitOp`] describes CardKit's
//! element-level writes on a card entity. [`CardDelivery`] is how a card is sent.

mod delivery;
mod edit;
pub mod text;

pub use delivery::CardDelivery;
pub use edit::{element_value, BatchUpdateAction, CardKitOp, ElementPosition};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;

/// A card is at most 30 KB (errors 200860 CardKit, 230025 im).
pub const MAX_CARD_BYTES: usize = 30 * 1024;
/// A 2.0 card has at most 200 elements plus components (300305).
pub const MAX_COMPONENTS: usize = 200;
/// `header.text_tag_list` shows at most 3 tags.
pub const MAX_HEADER_TAGS: usize = 3;

/// A card in JSON 2.0 (`schema: "2.0"`, elements under `body`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    /// `schema`: always `"2.0"`.
    pub schema: Schema,
    /// `config`: the shared-card flag, streaming mode and chat-list summary.
    pub config: CardConfig,
    /// `header`: title, subtitle, tags and colour; `None` for a card without a header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<CardHeader>,
    /// `body`: the card's components.
    pub body: CardBody,
}

/// The only schema the bot writes; a sent 2.0 card cannot become 1.0 (200830).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Schema {
    /// `"2.0"`: card JSON 2.0.
    #[serde(rename = "2.0")]
    V2,
}

/// `config`: global behaviour. 2.0 only supports `update_multi: true` (shared card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardConfig {
    /// `update_multi`: whether the card is shared; must be `true` in JSON 2.0
    /// ([`CardError::NotShared`]).
    pub update_multi: bool,
    /// `streaming_mode`: whether the card entity types out text ([`CardKitOp::StreamText`]); unset
    /// when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming_mode: Option<bool>,
    /// The chat-list preview; "[生成中...]" while streaming unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
}

/// The languages every card and text of the bot speaks. JSON 2.0 has no card-wide i18n: each text
/// carries `i18n_content` keyed by locale, and the client shows its display language
/// (`approval-apis.md` §6). `content` holds the Chinese as well, since which of `content` and an
/// `i18n_content` without the client's language wins is unconfirmed there: filling both, with
/// both locales, shows the right text either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// `zh_cn`, the default.
    ZhCn,
    /// `en_us`, for Lark international users and English clients.
    EnUs,
}

impl Lang {
    /// Both languages, the default ([`Lang::ZhCn`]) first.
    pub const ALL: [Self; 2] = [Self::ZhCn, Self::EnUs];

    /// `zh` or `en`.
    pub fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Self::ZhCn => zh,
            Self::EnUs => en,
        }
    }

    /// The locale code of `i18n_content`.
    pub fn code(self) -> &'static str {
        match self {
            Self::ZhCn => "zh_cn",
            Self::EnUs => "en_us",
        }
    }
}

/// `i18n_content`: a text in each language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct I18n {
    /// The Chinese text (`zh_cn`).
    pub zh_cn: String,
    /// The English text (`en_us`).
    pub en_us: String,
}

impl I18n {
    /// The text `text` writes in each language.
    pub fn of(text: impl Fn(Lang) -> String) -> Self {
        Self {
            zh_cn: text(Lang::ZhCn),
            en_us: text(Lang::EnUs),
        }
    }

    /// The text in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        lang.pick(&self.zh_cn, &self.en_us)
    }
}

/// `config.summary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// `content`: the summary text; the Chinese one when localized.
    pub content: String,
    /// `i18n_content`: the summary in each language; `None` for one text for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub i18n_content: Option<I18n>,
}

impl Summary {
    /// A summary of one text for every language (no `i18n_content`).
    pub fn new(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            i18n_content: None,
        }
    }

    /// A summary in both languages.
    pub fn localized(text: impl Fn(Lang) -> String) -> Self {
        let i18n = I18n::of(text);
        Self {
            content: i18n.zh_cn.clone(),
            i18n_content: Some(i18n),
        }
    }
}

/// `header`: title, optional subtitle, up to 3 suffix tags, colour template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardHeader {
    /// `title`: the header's title.
    pub title: PlainText,
    /// `subtitle`: the header's optional subtitle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<PlainText>,
    /// `text_tag_list`: the suffix tags after the title, at most [`MAX_HEADER_TAGS`]; left out when
    /// empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text_tag_list: Vec<TextTag>,
    /// `template`: the header's colour.
    pub template: HeaderTemplate,
}

/// `header.template` colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderTemplate {
    /// `blue`.
    Blue,
    /// `wathet`.
    Wathet,
    /// `turquoise`.
    Turquoise,
    /// `green`.
    Green,
    /// `yellow`.
    Yellow,
    /// `orange`.
    Orange,
    /// `red`.
    Red,
    /// `carmine`.
    Carmine,
    /// `violet`.
    Violet,
    /// `purple`.
    Purple,
    /// `indigo`.
    Indigo,
    /// `grey`.
    Grey,
    /// `default`.
    Default,
}

/// A header suffix tag: `{"tag":"text_tag","text":{…},"color":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tag", rename = "text_tag")]
pub struct TextTag {
    /// `text`: the tag's label.
    pub text: PlainText,
    /// `color`: the tag's colour.
    pub color: TagColor,
}

/// Colours of `text_tag` (header tags and `<text_tag>` in markdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagColor {
    /// `neutral`.
    Neutral,
    /// `blue`.
    Blue,
    /// `turquoise`.
    Turquoise,
    /// `lime`.
    Lime,
    /// `orange`.
    Orange,
    /// `violet`.
    Violet,
    /// `indigo`.
    Indigo,
    /// `wathet`.
    Wathet,
    /// `green`.
    Green,
    /// `yellow`.
    Yellow,
    /// `red`.
    Red,
    /// `purple`.
    Purple,
    /// `carmine`.
    Carmine,
}

impl TagColor {
    /// The name Feishu uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Neutral => "neutral",
            Self::Blue => "blue",
            Self::Turquoise => "turquoise",
            Self::Lime => "lime",
            Self::Orange => "orange",
            Self::Violet => "violet",
            Self::Indigo => "indigo",
            Self::Wathet => "wathet",
            Self::Green => "green",
            Self::Yellow => "yellow",
            Self::Red => "red",
            Self::Purple => "purple",
            Self::Carmine => "carmine",
        }
    }
}

/// `{"tag":"plain_text","content":"…"}` with optional text colour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tag", rename = "plain_text")]
pub struct PlainText {
    /// `content`: the text; the Chinese one when localized (see [`Lang`]).
    pub content: String,
    /// `i18n_content`: the text in each language; `None` for one text for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub i18n_content: Option<I18n>,
    /// `text_color`, e.g. `default`; unset when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_color: Option<String>,
}

impl PlainText {
    /// One text for every language (no `i18n_content`, no colour).
    pub fn new(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            i18n_content: None,
            text_color: None,
        }
    }

    /// A text in both languages.
    pub fn localized(text: impl Fn(Lang) -> String) -> Self {
        let i18n = I18n::of(text);
        Self {
            content: i18n.zh_cn.clone(),
            i18n_content: Some(i18n),
            text_color: None,
        }
    }

    /// [`PlainText::localized`] of two fixed texts.
    pub fn both(zh: &str, en: &str) -> Self {
        Self::localized(|lang| lang.pick(zh, en).to_owned())
    }

    /// The text a client in `lang` shows.
    pub fn shown(&self, lang: Lang) -> &str {
        self.i18n_content
            .as_ref()
            .map_or(self.content.as_str(), |i| i.get(lang))
    }
}

/// `body`: the card's components, top to bottom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardBody {
    /// `elements`: the components, top to bottom; with their children at most [`MAX_COMPONENTS`].
    pub elements: Vec<Element>,
}

/// A body component. Every one the bot writes carries a stable `element_id` (CardKit addresses it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "tag", rename_all = "snake_case")]
pub enum Element {
    /// A `markdown` text.
    Markdown(Markdown),
    /// A `div` of plain text.
    Div(Div),
    /// A `column_set`: a row of columns.
    ColumnSet(ColumnSet),
    /// A `button`.
    Button(Button),
    /// An `hr` divider.
    Hr(Hr),
    /// A `form` (at the body root only).
    Form(Form),
    /// A `date_picker`.
    DatePicker(DatePicker),
    /// A `select_static`: one choice among fixed options.
    SelectStatic(SelectStatic),
    /// An `input` text field.
    Input(Input),
    /// A `multi_select_static`: any number of fixed options.
    MultiSelectStatic(MultiSelectStatic),
    /// A `checker`: a box to tick.
    Checker(Checker),
    /// A `select_person`: one person among the given candidates.
    SelectPerson(SelectPerson),
}

/// `{"tag":"form","name":…,"elements":[…]}`: at the body root only; its interactive children
/// need card-unique `name`s and one button with `form_action_type: "submit"`; their values
/// arrive only on submit, in the callback's `form_value` keyed by `name`
/// (`../shared/feishu/cards-and-cardkit.md` §6, `approval-apis.md` §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Form {
    /// `element_id`: the component's card-unique id, which CardKit addresses (see
    /// [`is_valid_element_id`]); empty when a parsed card had none.
    #[serde(default)]
    pub element_id: String,
    /// `name`: the form's name.
    pub name: String,
    /// `elements`: the form's children: named fields and a submit button.
    pub elements: Vec<Element>,
}

/// `{"tag":"date_picker",…}`: its `form_value` entry is `"2024-04-01 +0800"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatePicker {
    /// `element_id`: the component's card-unique id, which CardKit addresses (see
    /// [`is_valid_element_id`]); empty when a parsed card had none.
    #[serde(default)]
    pub element_id: String,
    /// `name`: the card-unique key of its value in the callback's `form_value`.
    pub name: String,
    /// `required`: whether it must be filled for the form to submit; left out when `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// `yyyy-MM-dd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_date: Option<String>,
    /// `placeholder`: the text shown while no date is picked.
    pub placeholder: PlainText,
}

/// `{"tag":"select_static",…}`: its `form_value` entry is the chosen option's `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectStatic {
    /// `element_id`: the component's card-unique id, which CardKit addresses (see
    /// [`is_valid_element_id`]); empty when a parsed card had none.
    #[serde(default)]
    pub element_id: String,
    /// `name`: the card-unique key of its value in the callback's `form_value`.
    pub name: String,
    /// `required`: whether it must be filled for the form to submit; left out when `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// `placeholder`: the text shown while no option is chosen.
    pub placeholder: PlainText,
    /// `initial_option`: the `value` of the option chosen at first; none when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_option: Option<String>,
    /// `options`: the choices, in the order shown.
    pub options: Vec<SelectOption>,
}

/// `{"tag":"multi_select_static",…}`: its `form_value` entry is the chosen options' `value`s
/// (an array; a JSON string holding one is also reported, `approval-apis.md` §7, unconfirmed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiSelectStatic {
    /// `element_id` (see [`SelectStatic::element_id`]).
    #[serde(default)]
    pub element_id: String,
    /// `name`: the key of its values in `form_value`.
    pub name: String,
    /// `required`: at least one option must be chosen; left out when `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// `placeholder`: the text shown while nothing is chosen.
    pub placeholder: PlainText,
    /// `options`: the choices, in the order shown.
    pub options: Vec<SelectOption>,
    /// `selected_values`: the options chosen at first. Feishu's field name for a multi-select's
    /// initial choices is unconfirmed (`../shared/feishu/` does not list it): a client that does
    /// not know it shows the select empty, and the requester chooses again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selected_values: Vec<String>,
}

/// `{"tag":"checker",…}` inside a form: its `form_value` entry is `true` or `false` (a string
/// `"true"` is also reported, `approval-apis.md` §7, unconfirmed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checker {
    /// `element_id` (see [`SelectStatic::element_id`]).
    #[serde(default)]
    pub element_id: String,
    /// `name`: the key of its value in `form_value`.
    pub name: String,
    /// `checked`: ticked at first.
    #[serde(default)]
    pub checked: bool,
    /// `text`: the words beside the box.
    pub text: PlainText,
}

/// `{"tag":"select_person",…}` inside a form: Feishu's person picker, showing only `options` (when
/// given; else the chat's members, which in a p2p chat is only the viewer). Its `form_value` entry
/// is the chosen person's open_id (`cards-and-cardkit.md` §1.2: `option` and `form_value` carry a
/// select's value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectPerson {
    /// `element_id` (see [`SelectStatic::element_id`]).
    #[serde(default)]
    pub element_id: String,
    /// `name`: the key of the chosen open_id in `form_value`.
    pub name: String,
    /// `required`: a person must be chosen for the form to submit; left out when `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// `placeholder`: the text shown while nobody is chosen.
    pub placeholder: PlainText,
    /// `options`: the candidates, `{"value": "<open_id>"}` each (Feishu shows their names).
    pub options: Vec<PersonOption>,
}

/// One candidate of a [`SelectPerson`]: `{"value": "<open_id>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonOption {
    /// `value`: the person's open_id, what `form_value` carries when they are chosen.
    pub value: String,
}

/// One option of a select: shown `text`, returned `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectOption {
    /// `text`: what the option shows.
    pub text: PlainText,
    /// `value`: what `form_value` carries when this option is chosen.
    pub value: String,
}

/// `{"tag":"input",…}`: its `form_value` entry is the typed text (`""` when left empty).
/// `max_length` is 1–1000, enforced by the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// `element_id`: the component's card-unique id, which CardKit addresses (see
    /// [`is_valid_element_id`]); empty when a parsed card had none.
    #[serde(default)]
    pub element_id: String,
    /// `name`: the card-unique key of its value in the callback's `form_value`.
    pub name: String,
    /// `required`: whether it must be filled for the form to submit; left out when `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// `placeholder`: the text shown while the field is empty.
    pub placeholder: PlainText,
    /// `max_length`: the most characters it takes, 1–1000; the client's default when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// `text`, `multiline_text`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_type: Option<String>,
    /// `label`: the field's label; none when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<PlainText>,
    /// `default_value`: the text it starts with (`approval-apis.md` §6); empty when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
}

/// `{"tag":"markdown","element_id":…,"content":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Markdown {
    /// `element_id`: the component's card-unique id, which CardKit addresses (see
    /// [`is_valid_element_id`]); empty when a parsed card had none.
    #[serde(default)]
    pub element_id: String,
    /// `content`: the markdown text; the Chinese one when localized.
    pub content: String,
    /// `i18n_content`: the text in each language; `None` for one text for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub i18n_content: Option<I18n>,
}

/// `{"tag":"div","element_id":…,"text":{"tag":"plain_text",…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Div {
    /// `element_id`: the component's card-unique id, which CardKit addresses (see
    /// [`is_valid_element_id`]); empty when a parsed card had none.
    #[serde(default)]
    pub element_id: String,
    /// `text`: the plain text shown.
    pub text: PlainText,
}

/// `{"tag":"hr","element_id":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hr {
    /// `element_id`: the component's card-unique id, which CardKit addresses (see
    /// [`is_valid_element_id`]); empty when a parsed card had none.
    #[serde(default)]
    pub element_id: String,
}

/// `{"tag":"column_set",…,"columns":[…]}`: a row; 2.0 has no `action` wrapper for buttons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnSet {
    /// `element_id`: the component's card-unique id, which CardKit addresses (see
    /// [`is_valid_element_id`]); empty when a parsed card had none.
    #[serde(default)]
    pub element_id: String,
    /// `flex_mode`, e.g. `none`; Feishu's default when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flex_mode: Option<String>,
    /// `horizontal_spacing` between the columns; Feishu's default when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal_spacing: Option<String>,
    /// `columns`: the row's columns, left to right.
    pub columns: Vec<Column>,
}

/// `{"tag":"column","width":…,"elements":[…]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "tag", rename = "column")]
pub struct Column {
    /// `element_id`: the component's card-unique id, which CardKit addresses (see
    /// [`is_valid_element_id`]); empty when a parsed card had none.
    #[serde(default)]
    pub element_id: String,
    /// `width`, e.g. `auto`; Feishu's default when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<String>,
    /// `elements`: the column's components, top to bottom.
    pub elements: Vec<Element>,
}

/// A 2.0 button: the click is a `callback` behaviour carrying `value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Button {
    /// `element_id`: the component's card-unique id, which CardKit addresses (see
    /// [`is_valid_element_id`]); empty when a parsed card had none.
    #[serde(default)]
    pub element_id: String,
    /// `type`: the button's style.
    #[serde(rename = "type")]
    pub button_type: ButtonType,
    /// `text`: the button's label.
    pub text: PlainText,
    /// `disabled`: whether the button cannot be clicked; left out when `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// `disabled_tips`: the hint a disabled button shows; none when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_tips: Option<PlainText>,
    /// Inside a form: the button's card-unique `name` (`action.name` of its callback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Inside a form: `submit` sends the form's values with the callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_action_type: Option<String>,
    /// `behaviors`: what a click does; a bot's button carries one [`Behavior::Callback`].
    pub behaviors: Vec<Behavior>,
}

/// Button `type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonType {
    /// `default`.
    Default,
    /// `primary`.
    Primary,
    /// `danger`.
    Danger,
    /// `text`.
    Text,
    /// `primary_text`.
    PrimaryText,
    /// `danger_text`.
    DangerText,
    /// `primary_filled`.
    PrimaryFilled,
    /// `danger_filled`.
    DangerFilled,
    /// `laser`.
    Laser,
}

/// `behaviors[]`: `{"type":"callback","value":{…}}` (the value comes back as `action.value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Behavior {
    /// `callback`: the click is sent to the bot's card callback.
    Callback {
        /// `value`: any JSON; it comes back as `action.value`
        /// ([`crate::webhook::CardClick::value`]).
        value: Value,
    },
}

impl Element {
    /// The component's `element_id` (empty when a parsed card had none).
    pub fn element_id(&self) -> &str {
        match self {
            Self::Markdown(m) => &m.element_id,
            Self::Div(d) => &d.element_id,
            Self::ColumnSet(c) => &c.element_id,
            Self::Button(b) => &b.element_id,
            Self::Hr(h) => &h.element_id,
            Self::Form(f) => &f.element_id,
            Self::DatePicker(d) => &d.element_id,
            Self::SelectStatic(s) => &s.element_id,
            Self::Input(i) => &i.element_id,
            Self::MultiSelectStatic(m) => &m.element_id,
            Self::Checker(c) => &c.element_id,
            Self::SelectPerson(p) => &p.element_id,
        }
    }

    /// A `markdown` element with one text for every language.
    pub fn markdown(element_id: &str, content: impl Into<String>) -> Self {
        Self::Markdown(Markdown {
            element_id: element_id.to_owned(),
            content: content.into(),
            i18n_content: None,
        })
    }

    /// A markdown element in both languages.
    pub fn markdown_localized(element_id: &str, text: impl Fn(Lang) -> String) -> Self {
        let i18n = I18n::of(text);
        Self::Markdown(Markdown {
            element_id: element_id.to_owned(),
            content: i18n.zh_cn.clone(),
            i18n_content: Some(i18n),
        })
    }

    /// A plain-text `div` with one text for every language.
    pub fn div(element_id: &str, text: impl Into<String>) -> Self {
        Self::Div(Div {
            element_id: element_id.to_owned(),
            text: PlainText::new(text),
        })
    }

    /// A plain-text `div` in both languages.
    pub fn div_localized(element_id: &str, text: impl Fn(Lang) -> String) -> Self {
        Self::Div(Div {
            element_id: element_id.to_owned(),
            text: PlainText::localized(text),
        })
    }

    /// An `hr` divider.
    pub fn hr(element_id: &str) -> Self {
        Self::Hr(Hr {
            element_id: element_id.to_owned(),
        })
    }

    /// Every `element_id` in this component and its children, depth first.
    fn collect_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        out.push(self.element_id());
        match self {
            Self::ColumnSet(set) => {
                for column in &set.columns {
                    out.push(&column.element_id);
                    for child in &column.elements {
                        child.collect_ids(out);
                    }
                }
            }
            Self::Form(form) => {
                for child in &form.elements {
                    child.collect_ids(out);
                }
            }
            _ => {}
        }
    }
}

/// Why a card would be refused by Feishu.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// An `element_id` that does not match `^[A-Za-z][A-Za-z0-9_]{0,19}$`.
    #[error("element_id {0:?} does not match ^[A-Za-z][A-Za-z0-9_]{{0,19}}$")]
    BadElementId(String),
    /// An `element_id` used twice in the card (300301).
    #[error("element_id {0:?} is used twice (300301)")]
    DuplicateElementId(String),
    /// More than [`MAX_COMPONENTS`] components (300305); holds the count.
    #[error("card has {0} components, more than 200 (300305)")]
    TooManyComponents(usize),
    /// The card JSON is over [`MAX_CARD_BYTES`] (200860 CardKit, 230025 im); holds its size in
    /// bytes.
    #[error("card is {0} bytes, more than 30 KB (200860/230025)")]
    TooLarge(usize),
    /// More than [`MAX_HEADER_TAGS`] header tags; holds the count.
    #[error("header has {0} tags, more than 3")]
    TooManyHeaderTags(usize),
    /// `config.update_multi` is `false`: a JSON 2.0 card must be shared.
    #[error("update_multi must be true for JSON 2.0 cards")]
    NotShared,
    /// A form rule is broken (200530): a form in a form, an empty or reused `name`, no submit
    /// button.
    #[error("form rule: {0} (200530)")]
    Form(String),
}

/// Whether `id` is a valid CardKit `element_id`: `^[A-Za-z][A-Za-z0-9_]{0,19}$`.
pub fn is_valid_element_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 20
        && bytes[0].is_ascii_alphabetic()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

impl Card {
    /// A shared (`update_multi: true`) 2.0 card.
    pub fn new(header: Option<CardHeader>, elements: Vec<Element>) -> Self {
        Self {
            schema: Schema::V2,
            config: CardConfig {
                update_multi: true,
                streaming_mode: None,
                summary: None,
            },
            header,
            body: CardBody { elements },
        }
    }

    /// Every `element_id` in the body, depth first.
    pub fn element_ids(&self) -> Vec<&str> {
        let mut ids = Vec::new();
        for element in &self.body.elements {
            element.collect_ids(&mut ids);
        }
        ids
    }

    /// The number of components (elements, columns and their children) Feishu counts toward 200.
    pub fn component_count(&self) -> usize {
        self.element_ids().len()
    }

    /// The card as a JSON value (what the callback answer and CardKit bodies embed).
    pub fn to_value(&self) -> Value {
        // Serialising these plain structs cannot fail: no maps with non-string keys, no floats.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The card as a JSON string (what `content` / CardKit `data` carry).
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks what Feishu checks: ids, uniqueness, component count, size, shared card.
    pub fn validate(&self) -> Result<(), CardError> {
        if !self.config.update_multi {
            return Err(CardError::NotShared);
        }
        if let Some(header) = &self.header {
            if header.text_tag_list.len() > MAX_HEADER_TAGS {
                return Err(CardError::TooManyHeaderTags(header.text_tag_list.len()));
            }
        }
        let ids = self.element_ids();
        let mut seen = HashSet::new();
        for id in &ids {
            if !is_valid_element_id(id) {
                return Err(CardError::BadElementId((*id).to_owned()));
            }
            if !seen.insert(*id) {
                return Err(CardError::DuplicateElementId((*id).to_owned()));
            }
        }
        self.validate_forms()?;
        if ids.len() > MAX_COMPONENTS {
            return Err(CardError::TooManyComponents(ids.len()));
        }
        let size = self.to_json_string().len();
        if size > MAX_CARD_BYTES {
            return Err(CardError::TooLarge(size));
        }
        Ok(())
    }

    /// Feishu's form rules: a form only at the body root, holding a submit button, and every
    /// named child's `name` unique in the card (`cards-and-cardkit.md` §6).
    fn validate_forms(&self) -> Result<(), CardError> {
        let mut names = HashSet::new();
        for element in &self.body.elements {
            let Element::Form(form) = element else {
                continue;
            };
            let mut submit = false;
            for child in &form.elements {
                let name = match child {
                    Element::Form(_) => {
                        return Err(CardError::Form("a form inside a form".to_owned()))
                    }
                    Element::DatePicker(d) => Some(&d.name),
                    Element::SelectStatic(s) => Some(&s.name),
                    Element::Input(i) => Some(&i.name),
                    Element::MultiSelectStatic(m) => Some(&m.name),
                    Element::Checker(c) => Some(&c.name),
                    Element::SelectPerson(p) => Some(&p.name),
                    Element::Button(b) => {
                        submit |= b.form_action_type.as_deref() == Some("submit");
                        b.name.as_ref()
                    }
                    _ => None,
                };
                if let Some(name) = name {
                    if name.is_empty() || !names.insert(name.as_str()) {
                        return Err(CardError::Form(format!("name {name:?} empty or reused")));
                    }
                }
            }
            if !submit {
                return Err(CardError::Form(format!(
                    "form {:?} has no submit button",
                    form.name
                )));
            }
        }
        Ok(())
    }

    /// The element with `element_id`, searched depth first.
    pub fn find(&self, element_id: &str) -> Option<&Element> {
        fn walk<'a>(elements: &'a [Element], id: &str) -> Option<&'a Element> {
            for element in elements {
                if element.element_id() == id {
                    return Some(element);
                }
                match element {
                    Element::ColumnSet(set) => {
                        for column in &set.columns {
                            if let Some(found) = walk(&column.elements, id) {
                                return Some(found);
                            }
                        }
                    }
                    Element::Form(form) => {
                        if let Some(found) = walk(&form.elements, id) {
                            return Some(found);
                        }
                    }
                    _ => {}
                }
            }
            None
        }
        walk(&self.body.elements, element_id)
    }
}

/// `toast.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToastKind {
    /// `info`.
    Info,
    /// `success`.
    Success,
    /// `error`.
    Error,
    /// `warning`.
    Warning,
}

/// The toast shown to the clicker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toast {
    /// `type`: the kind of toast.
    #[serde(rename = "type")]
    pub kind: ToastKind,
    /// `content`: the default text, the Chinese one when built by [`Toast::new`].
    pub content: String,
    /// `i18n`: the text per locale; `None` for `content` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub i18n: Option<ToastI18n>,
}

/// `toast.i18n` for the two locales the bot speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToastI18n {
    /// The Chinese text (`zh_cn`).
    pub zh_cn: String,
    /// The English text (`en_us`).
    pub en_us: String,
}

impl Toast {
    /// A toast in Chinese (default content) and English.
    pub fn new(kind: ToastKind, zh_cn: &str, en_us: &str) -> Self {
        Self {
            kind,
            content: zh_cn.to_owned(),
            i18n: Some(ToastI18n {
                zh_cn: zh_cn.to_owned(),
                en_us: en_us.to_owned(),
            }),
        }
    }
}

/// What a bot answers a click with: a toast and/or the new card (`Default`: neither, `{}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallbackAnswer {
    /// The toast shown to the clicker; `None` shows none.
    pub toast: Option<Toast>,
    /// The immediate update; `None` leaves the card as it is.
    pub card: Option<Card>,
}

/// `card` of a `card.action.trigger` answer: `{"type":"raw","data":{…card…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallbackCard {
    /// `raw`: the card JSON itself, as an object in `data` (not a string).
    Raw {
        /// `data`: the new card.
        data: Card,
    },
}

/// The body of a `card.action.trigger` (schema 2.0) answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardActionTriggerResponse {
    /// `toast`: shown to the clicker; left out when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toast: Option<Toast>,
    /// `card`: the card to show now; left out when `None`, which leaves the card as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CallbackCard>,
}

/// The body of a legacy card callback answer: the card's own fields at the top, toast beside them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LegacyCardResponse {
    /// `toast`: shown to the clicker; left out when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toast: Option<Toast>,
    /// The new card's own fields, flattened beside `toast`; `None` leaves the card as it is.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
}

impl CallbackAnswer {
    /// An answer that shows `toast` and leaves the card as it is.
    pub fn toast_only(toast: Toast) -> Self {
        Self {
            toast: Some(toast),
            card: None,
        }
    }

    /// The answer to a new-style `card.action.trigger` callback.
    pub fn card_action_trigger_response(&self) -> CardActionTriggerResponse {
        CardActionTriggerResponse {
            toast: self.toast.clone(),
            card: self.card.clone().map(|data| CallbackCard::Raw { data }),
        }
    }

    /// The answer to a legacy (message card request URL) callback.
    pub fn legacy_response(&self) -> LegacyCardResponse {
        LegacyCardResponse {
            toast: self.toast.clone(),
            card: self.card.clone(),
        }
    }
}

/// `content` of a text message: the JSON string `{"text":"…"}`.
pub fn text_message_content(text: &str) -> String {
    serde_json::json!({ "text": text }).to_string()
}

/// `content` of an interactive message that shows a CardKit entity.
pub fn card_entity_message_content(card_id: &str) -> String {
    serde_json::json!({ "type": "card", "data": { "card_id": card_id } }).to_string()
}

/// `content` of an interactive message that carries the card JSON itself.
pub fn card_message_content(card: &Card) -> String {
    card.to_json_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../fixtures/feishu/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    /// Every key and value of `ours` is present at the same path in `theirs` (arrays index-wise).
    fn assert_subset(ours: &Value, theirs: &Value, path: &str) {
        match (ours, theirs) {
            (Value::Object(a), Value::Object(b)) => {
                for (key, value) in a {
                    let there = b
                        .get(key)
                        .unwrap_or_else(|| panic!("{path}.{key} not in the fixture"));
                    assert_subset(value, there, &format!("{path}.{key}"));
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                assert_eq!(a.len(), b.len(), "{path}: array length");
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    assert_subset(x, y, &format!("{path}[{i}]"));
                }
            }
            _ => assert_eq!(ours, theirs, "{path}"),
        }
    }

    fn strip_element_ids(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("element_id");
                map.values_mut().for_each(strip_element_ids);
            }
            Value::Array(items) => items.iter_mut().for_each(strip_element_ids),
            _ => {}
        }
    }

    #[test]
    fn callback_answer_has_the_shape_of_the_official_example() {
        let official = fixture("callback_response_toast_and_raw_card.json");
        let card = Card::new(
            Some(CardHeader {
                title: PlainText::new("示例标题"),
                subtitle: Some(PlainText::new("示例文本")),
                text_tag_list: vec![],
                template: HeaderTemplate::Blue,
            }),
            vec![Element::Div(Div {
                element_id: "div_1".into(),
                text: PlainText {
                    content: "示例文本".into(),
                    i18n_content: None,
                    text_color: Some("default".into()),
                },
            })],
        );
        let answer = CallbackAnswer {
            toast: Some(Toast::new(
                ToastKind::Info,
                "卡片交互成功",
                "card action success",
            )),
            card: Some(card),
        };
        let mut ours = serde_json::to_value(answer.card_action_trigger_response()).unwrap();
        strip_element_ids(&mut ours);
        assert_subset(&ours, &official, "$");
        assert_eq!(ours["card"]["type"], "raw");
        assert!(
            ours["card"]["data"].is_object(),
            "card.data is an object, not a string"
        );
    }

    #[test]
    fn official_callback_answer_parses_into_the_typed_response() {
        let official = fixture("callback_response_toast_and_raw_card.json");
        let parsed: CardActionTriggerResponse = serde_json::from_value(official).unwrap();
        let Some(CallbackCard::Raw { data }) = parsed.card else {
            panic!("raw card expected")
        };
        assert_eq!(data.schema, Schema::V2);
        assert!(data.config.update_multi);
        assert_eq!(data.header.unwrap().title.content, "示例标题");
        assert!(matches!(&data.body.elements[0], Element::Div(d) if d.text.content == "示例文本"));
        assert_eq!(parsed.toast.unwrap().kind, ToastKind::Info);
    }

    #[test]
    fn legacy_answer_puts_the_card_fields_at_the_top_level() {
        let card = Card::new(None, vec![Element::markdown("md", "**已同意**")]);
        let answer = CallbackAnswer {
            toast: Some(Toast::new(ToastKind::Success, "已保存", "Saved")),
            card: Some(card),
        };
        let body = serde_json::to_value(answer.legacy_response()).unwrap();
        assert_eq!(body["toast"]["type"], "success");
        assert_eq!(body["schema"], "2.0");
        assert_eq!(body["config"]["update_multi"], true);
        assert_eq!(body["body"]["elements"][0]["tag"], "markdown");
        assert!(body.get("card").is_none());
        let toast_only = serde_json::to_value(
            CallbackAnswer::toast_only(Toast::new(ToastKind::Info, "a", "b")).legacy_response(),
        )
        .unwrap();
        assert_eq!(toast_only.as_object().unwrap().len(), 1);
    }

    #[test]
    fn button_serialises_in_the_2_0_callback_behaviour_shape() {
        let button = Element::Button(Button {
            element_id: "btn_leave".into(),
            button_type: ButtonType::Primary,
            text: PlainText::new("出差"),
            disabled: false,
            disabled_tips: None,
            name: None,
            form_action_type: None,
            behaviors: vec![Behavior::Callback {
                value: json!({"type": "leave"}),
            }],
        });
        assert_eq!(
            serde_json::to_value(&button).unwrap(),
            json!({
                "tag": "button", "element_id": "btn_leave", "type": "primary",
                "text": {"tag": "plain_text", "content": "出差"},
                "behaviors": [{"type": "callback", "value": {"type": "leave"}}]
            })
        );
    }

    #[test]
    fn components_round_trip_through_json() {
        let card = Card {
            schema: Schema::V2,
            config: CardConfig {
                update_multi: true,
                streaming_mode: Some(false),
                summary: Some(Summary::new("摘要")),
            },
            header: Some(CardHeader {
                title: PlainText::new("审批"),
                subtitle: None,
                text_tag_list: vec![TextTag {
                    text: PlainText::new("出差"),
                    color: TagColor::Orange,
                }],
                template: HeaderTemplate::Orange,
            }),
            body: CardBody {
                elements: vec![
                    Element::markdown("md", "x"),
                    Element::hr("hr"),
                    Element::ColumnSet(ColumnSet {
                        element_id: "row".into(),
                        flex_mode: Some("none".into()),
                        horizontal_spacing: None,
                        columns: vec![Column {
                            element_id: "col".into(),
                            width: Some("auto".into()),
                            elements: vec![Element::div("d", "y")],
                        }],
                    }),
                ],
            },
        };
        let value = card.to_value();
        assert_eq!(
            value["header"]["text_tag_list"][0],
            json!({"tag": "text_tag", "text": {"tag": "plain_text", "content": "出差"}, "color": "orange"})
        );
        assert_eq!(value["body"]["elements"][2]["columns"][0]["tag"], "column");
        let back: Card = serde_json::from_value(value).unwrap();
        assert_eq!(back, card);
        assert_eq!(card.element_ids(), vec!["md", "hr", "row", "col", "d"]);
        assert_eq!(card.component_count(), 5);
        assert!(matches!(card.find("d"), Some(Element::Div(_))));
        assert!(card.find("nope").is_none());
    }

    #[test]
    fn element_id_pattern() {
        for good in ["a", "btn_leave", "A1_b2", "abcdefghijklmnopqrst"] {
            assert!(is_valid_element_id(good), "{good}");
        }
        for bad in [
            "",
            "1a",
            "_a",
            "a-b",
            "a b",
            "abcdefghijklmnopqrstu",
            "审批",
        ] {
            assert!(!is_valid_element_id(bad), "{bad}");
        }
    }

    #[test]
    fn validate_refuses_what_feishu_refuses() {
        let dup = Card::new(None, vec![Element::hr("x"), Element::hr("x")]);
        assert_eq!(
            dup.validate(),
            Err(CardError::DuplicateElementId("x".into()))
        );
        let bad = Card::new(None, vec![Element::hr("1x")]);
        assert_eq!(bad.validate(), Err(CardError::BadElementId("1x".into())));
        let many = Card::new(
            None,
            (0..201).map(|i| Element::hr(&format!("h{i}"))).collect(),
        );
        assert_eq!(many.validate(), Err(CardError::TooManyComponents(201)));
        let big = Card::new(None, vec![Element::markdown("md", "字".repeat(11_000))]);
        assert!(matches!(big.validate(), Err(CardError::TooLarge(n)) if n > MAX_CARD_BYTES));
        let mut exclusive = Card::new(None, vec![Element::hr("h")]);
        exclusive.config.update_multi = false;
        assert_eq!(exclusive.validate(), Err(CardError::NotShared));
        let mut tags = Card::new(
            Some(CardHeader {
                title: PlainText::new("t"),
                subtitle: None,
                text_tag_list: vec![],
                template: HeaderTemplate::Blue,
            }),
            vec![],
        );
        tags.header.as_mut().unwrap().text_tag_list = vec![
            TextTag {
                text: PlainText::new("t"),
                color: TagColor::Blue
            };
            4
        ];
        assert_eq!(tags.validate(), Err(CardError::TooManyHeaderTags(4)));
        assert_eq!(Card::new(None, vec![Element::hr("h")]).validate(), Ok(()));
    }

    #[test]
    fn message_contents_are_json_strings() {
        let text: Value = serde_json::from_str(&text_message_content("你好 \"x\"")).unwrap();
        assert_eq!(text, json!({"text": "你好 \"x\""}));
        let entity: Value =
            serde_json::from_str(&card_entity_message_content("7355372766134157313")).unwrap();
        assert_eq!(
            entity,
            json!({"type": "card", "data": {"card_id": "7355372766134157313"}})
        );
        let card = Card::new(None, vec![Element::hr("h")]);
        let raw: Value = serde_json::from_str(&card_message_content(&card)).unwrap();
        assert_eq!(raw, card.to_value());
    }
}
