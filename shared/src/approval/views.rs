//! What each approval card looks like (pending, submitted, approved, expired, the request form,
//! the requester's and the approvers' cards), its toasts and its texts, and [`render`]: the card
//! for a stored status. Every request's card is drawn from its definition (the version it pinned:
//! `definition::Catalog::resolve`), in zh_cn and en_us.
//!
//! Layout and `element_id`s are stable: the approval's CardKit walk (`scheduled`) turns a submitted
//! card into the approved one element by element, and a test checks that it lands exactly on
//! [`approved_card`].

use serde_json::{Map, Value};

use super::action::ApprovalAction;
use super::definition::{Catalog, Definition, Field, FieldType, RequestKind, Text};
use super::machine::{
    status_of, ApprovalData, ApprovalStatus, AuditAction, AuditEntry, DomainError, NoApprover,
    ReviewData, Stage, StepOutcome, StepState, REVIEW_KIND,
};
use super::request::{fields, FormProblem, MAX_REASON_CHARS};
use crate::cards::text;
use crate::cards::{
    Behavior, Button, ButtonType, Card, CardBody, CardConfig, CardHeader, Checker, Column,
    ColumnSet, DatePicker, Element, Form, HeaderTemplate, Input, Lang, MultiSelectStatic,
    PersonOption, PlainText, Schema, SelectOption, SelectPerson, SelectStatic, Summary, TagColor,
    TextTag, Toast, ToastKind,
};
use crate::store::{CardState, EpochMillis};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The `element_id`s of the approval card, in one place.
pub mod ids {
    /// The status tag (markdown holding a `<text_tag>`).
    pub const STATUS: &str = "status";
    /// The prompt line (`div` with plain text).
    pub const PROMPT: &str = "prompt";
    /// The button row (`column_set`), or the select of request types and its button (`form`).
    pub const ACTIONS: &str = "actions";
    pub const COL_OVERTIME: &str = "col_overtime";
    pub const COL_LEAVE: &str = "col_leave";
    pub const BTN_OVERTIME: &str = "btn_overtime";
    pub const BTN_LEAVE: &str = "btn_leave";
    /// The 发起 button beside the select of request types.
    pub const BTN_CHOOSE: &str = "btn_choose";
    pub const DIVIDER: &str = "divider";
    /// The decision note, streamed by CardKit.
    pub const NOTE: &str = "note";
    /// Timeline: the request line.
    pub const TL_SUBMITTED: &str = "tl_submitted";
    /// Timeline: the decision line, added by CardKit.
    pub const TL_APPROVED: &str = "tl_approved";
}

/// The card title of every approval card.
pub const TITLE: &str = "审批";
/// [`TITLE`] in English.
pub const TITLE_EN: &str = "Approval";
/// The pending card's text, as in the tutorial.
pub const PROMPT_PENDING: &str = "请选择需要的操作";
/// [`PROMPT_PENDING`] in English.
pub const PROMPT_PENDING_EN: &str = "Choose what you need";
/// The decision note's fixed prefix; the note is typed out after it.
pub const NOTE_PREFIX: &str = "**审批意见**：";
/// [`NOTE_PREFIX`] in English.
pub const NOTE_PREFIX_EN: &str = "**Note**: ";

/// The most request types the 审批 card shows as buttons; with more, a select and one button.
pub const MAX_BUTTONS: usize = 4;

/// What a submitted or approved card shows about the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestView<'a> {
    /// The request's definition.
    pub request: &'a Definition,
    /// Who clicked; shown as an @mention.
    pub submitted_by: Option<&'a str>,
    /// When, already formatted (e.g. `11-22 08:00`).
    pub submitted_at: &'a str,
    /// Decided by the simulated approver (`APPROVAL_FALLBACK=simulated`): the card says so.
    pub automatic: bool,
}

fn header(tags: Vec<TextTag>, template: HeaderTemplate) -> Option<CardHeader> {
    Some(CardHeader {
        title: PlainText::both(TITLE, TITLE_EN),
        subtitle: None,
        text_tag_list: tags,
        template,
    })
}

/// The request's name in `lang`: 请假 / Leave, 加班 / Overtime, a definition's `name`.
pub fn request_label(request: &Definition, lang: Lang) -> &str {
    request.name.get(lang)
}

fn english_label(request: &Definition) -> &str {
    &request.name.en_us
}

/// The English name inside a sentence: `Leave` → `leave`, `IT access` stays as written.
fn english(request: &Definition) -> String {
    let name = &request.name.en_us;
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(name.chars().skip(1)).collect()
        }
        _ => name.clone(),
    }
}

fn request_header(request: &Definition) -> Option<CardHeader> {
    let tag = TextTag {
        text: PlainText::both(&request.name.zh_cn, &request.name.en_us),
        color: TagColor::Blue,
    };
    header(vec![tag], HeaderTemplate::Blue)
}

/// `<prefix>_<status prefix>` when it is a valid `element_id` (at most 20 characters), else
/// `<prefix>_<index>`: `btn_leave`, `btn_overtime`, `btn_expense`, `btn_3`.
fn kind_element_id(prefix: &str, kind: RequestKind, index: usize) -> String {
    let id = format!("{prefix}_{}", kind.status_prefix());
    if id.len() <= 20 {
        id
    } else {
        format!("{prefix}_{index}")
    }
}

fn config(summary: impl Fn(Lang) -> String) -> CardConfig {
    CardConfig {
        update_multi: true,
        streaming_mode: Some(false),
        summary: Some(Summary::localized(summary)),
    }
}

/// The status tag's markdown: `<text_tag color='…'>…</text_tag>`.
pub fn status_tag(text: &str, color: TagColor) -> String {
    format!("<text_tag color='{}'>{text}</text_tag>", color.as_str())
}

/// A status tag in both languages.
fn status_element(id: &str, zh: &str, en: &str, color: TagColor) -> Element {
    Element::markdown_localized(id, |lang| status_tag(lang.pick(zh, en), color))
}

fn button(
    request: &Definition,
    index: usize,
    button_type: ButtonType,
    disabled_tips: Option<&PlainText>,
) -> Column {
    Column {
        element_id: kind_element_id("col", request.id, index),
        width: Some("auto".to_owned()),
        elements: vec![Element::Button(Button {
            element_id: kind_element_id("btn", request.id, index),
            button_type,
            text: PlainText::both(&request.name.zh_cn, &request.name.en_us),
            disabled: disabled_tips.is_some(),
            disabled_tips: disabled_tips.cloned(),
            name: None,
            form_action_type: None,
            behaviors: vec![Behavior::Callback {
                value: ApprovalAction::Submit(request.id).value(),
            }],
        })],
    }
}

/// The request types offered: a button each (up to [`MAX_BUTTONS`]; 请假 first and primary, as
/// the tutorial's card has it, then the others in the file's order), else a select and 发起.
/// `disabled_tips` set (a card already used): the buttons disabled with that tip, only
/// `chosen`'s when there are more types than fit.
fn actions(
    catalog: &Catalog,
    disabled_tips: Option<&PlainText>,
    chosen: Option<&Definition>,
) -> Element {
    let current: Vec<&Definition> = catalog
        .current()
        .iter()
        .map(|v| v.definition.as_ref())
        .collect();
    let fits = current.len() <= MAX_BUTTONS;
    let shown: Vec<&Definition> = match (fits, disabled_tips.is_some(), chosen) {
        (true, _, _) | (false, false, _) => current.clone(),
        (false, true, Some(chosen)) => vec![chosen],
        (false, true, None) => Vec::new(),
    };
    if !fits && disabled_tips.is_none() {
        return choose_form(&current);
    }
    // The tutorial's row: the primary button (the first type) on the right.
    let columns = shown
        .iter()
        .enumerate()
        .rev()
        .map(|(i, request)| {
            let button_type = if i == 0 {
                ButtonType::Primary
            } else {
                ButtonType::Default
            };
            button(request, i, button_type, disabled_tips)
        })
        .collect();
    Element::ColumnSet(ColumnSet {
        element_id: ids::ACTIONS.to_owned(),
        flex_mode: Some("none".to_owned()),
        horizontal_spacing: Some("8px".to_owned()),
        columns,
    })
}

/// More types than fit as buttons: a select of them and 发起 (`{"type":"open"}`).
fn choose_form(current: &[&Definition]) -> Element {
    Element::Form(Form {
        element_id: ids::ACTIONS.to_owned(),
        name: ids::ACTIONS.to_owned(),
        elements: vec![
            Element::SelectStatic(SelectStatic {
                element_id: "sel_definition".to_owned(),
                name: fields::DEFINITION.to_owned(),
                required: true,
                placeholder: PlainText::both("请选择审批类型", "Choose the request type"),
                initial_option: None,
                options: current
                    .iter()
                    .map(|d| SelectOption {
                        text: PlainText::both(&d.name.zh_cn, &d.name.en_us),
                        value: d.id.as_str().to_owned(),
                    })
                    .collect(),
            }),
            submit_button(
                ids::BTN_CHOOSE,
                ("发起", "Start"),
                ButtonType::PrimaryFilled,
                ApprovalAction::Choose,
            ),
        ],
    })
}

fn submitted_line(view: &RequestView<'_>, waiting: bool, lang: Lang) -> String {
    // Only a well-formed open_id becomes a mention (not `all`, not markup, not 40 KB).
    let who = view
        .submitted_by
        .and_then(text::mention)
        .map(|at| at + " ")
        .unwrap_or_default();
    match lang {
        Lang::ZhCn => {
            let suffix = if waiting { "，等待审批" } else { "" };
            format!(
                "{} · {who}提交{}申请{suffix}",
                view.submitted_at, view.request.name.zh_cn
            )
        }
        Lang::EnUs => {
            let suffix = if waiting {
                ", waiting for approval"
            } else {
                ""
            };
            format!(
                "{} · {who}requested {}{suffix}",
                view.submitted_at,
                english(view.request)
            )
        }
    }
}

/// What a card decided by the simulated approver says, so that nobody takes it for a person's
/// approval (`APPROVAL_FALLBACK=simulated`).
pub const AUTOMATIC_NOTICE: &str = "本机器人未配置审批人，由模拟审批自动处理，并非真人审批。";
/// [`AUTOMATIC_NOTICE`] in English.
pub const AUTOMATIC_NOTICE_EN: &str =
    "This bot has no approvers configured: a simulated approver decides it automatically, not a person.";

/// The decision line the CardKit plan adds under the request line.
pub fn approved_line(request: &Definition, approved_at: &str, automatic: bool) -> Element {
    let zh = &request.name.zh_cn;
    Element::markdown_localized(ids::TL_APPROVED, |lang| match (lang, automatic) {
        (Lang::ZhCn, false) => format!("{approved_at} · 审批通过：{zh}通过"),
        (Lang::EnUs, false) => format!(
            "{approved_at} · approved: {} approved",
            english_label(request)
        ),
        (Lang::ZhCn, true) => format!("{approved_at} · 自动审批（模拟）：{zh}通过"),
        (Lang::EnUs, true) => format!(
            "{approved_at} · decided automatically (simulated): {} approved",
            english_label(request)
        ),
    })
}

/// The approval card as first sent: title 审批, text 请选择需要的操作, a button per request type
/// (the tutorial's 加班 and 请假 without a definitions file).
pub fn pending_card(catalog: &Catalog) -> Card {
    Card {
        schema: Schema::V2,
        config: config(|lang| {
            format!(
                "{}：{}",
                lang.pick(TITLE, TITLE_EN),
                lang.pick(PROMPT_PENDING, PROMPT_PENDING_EN)
            )
        }),
        header: header(vec![], HeaderTemplate::Blue),
        body: CardBody {
            elements: vec![
                Element::div_localized(ids::PROMPT, |lang| {
                    lang.pick(PROMPT_PENDING, PROMPT_PENDING_EN).to_owned()
                }),
                actions(catalog, None, None),
            ],
        },
    }
}

/// After a click: status 审批中, buttons disabled, an empty decision note, the request line.
pub fn submitted_card(view: &RequestView<'_>, catalog: &Catalog) -> Card {
    let request = view.request;
    let zh = &request.name.zh_cn;
    let tips = PlainText::localized(|lang| match lang {
        Lang::ZhCn => format!("已提交{zh}申请"),
        Lang::EnUs => format!("{} request submitted", english_label(request)),
    });
    Card {
        schema: Schema::V2,
        config: config(|lang| match lang {
            Lang::ZhCn => format!("{zh}申请审批中"),
            Lang::EnUs => format!("{} request pending", english_label(request)),
        }),
        header: request_header(request),
        body: CardBody {
            elements: vec![
                status_element(ids::STATUS, "审批中", "Pending", TagColor::Orange),
                Element::div_localized(ids::PROMPT, |lang| match (lang, view.automatic) {
                    (Lang::ZhCn, false) => format!("已提交{zh}申请，等待审批"),
                    (Lang::EnUs, false) => format!(
                        "{} request submitted, waiting for approval",
                        english_label(request)
                    ),
                    (Lang::ZhCn, true) => format!("已提交{zh}申请。{AUTOMATIC_NOTICE}"),
                    (Lang::EnUs, true) => format!(
                        "{} request submitted. {AUTOMATIC_NOTICE_EN}",
                        english_label(request)
                    ),
                }),
                actions(catalog, Some(&tips), Some(request)),
                Element::hr(ids::DIVIDER),
                Element::markdown_localized(ids::NOTE, |lang| {
                    lang.pick(NOTE_PREFIX, NOTE_PREFIX_EN).to_owned()
                }),
                Element::markdown_localized(ids::TL_SUBMITTED, |lang| {
                    submitted_line(view, true, lang)
                }),
            ],
        },
    }
}

/// The simulated approver's note in `lang` (the tutorial's words for 请假 and 加班).
fn decision_note(request: &Definition, lang: Lang) -> &'static str {
    match request.id {
        RequestKind::LEAVE => lang.pick(
            "同意。请提前安排好工作交接。",
            "Approved. Please hand over your work in advance.",
        ),
        RequestKind::WORK_OVERTIME => lang.pick(
            "同意。辛苦了，请注意休息。",
            "Approved. Thanks for the extra effort, get some rest.",
        ),
        _ => lang.pick("同意。", "Approved."),
    }
}

/// The tutorial's 请假通过 / 加班通过 card: status tag, note, timeline; no buttons.
pub fn approved_card(view: &RequestView<'_>, approved_at: &str) -> Card {
    let request = view.request;
    let zh = &request.name.zh_cn;
    let automatic = view.automatic;
    let approved = |lang: Lang| match (lang, automatic) {
        (Lang::ZhCn, false) => format!("{zh}通过"),
        (Lang::EnUs, false) => format!("{} approved", english_label(request)),
        (Lang::ZhCn, true) => format!("{zh}通过（自动审批）"),
        (Lang::EnUs, true) => format!("{} approved (automatic)", english_label(request)),
    };
    Card {
        schema: Schema::V2,
        config: config(approved),
        header: request_header(request),
        body: CardBody {
            elements: vec![
                Element::markdown_localized(ids::STATUS, |lang| {
                    status_tag(&approved(lang), TagColor::Green)
                }),
                Element::div_localized(ids::PROMPT, |lang| match (lang, automatic) {
                    (Lang::ZhCn, false) => format!("{zh}申请已通过"),
                    (Lang::EnUs, false) => format!("{} request approved", english_label(request)),
                    (Lang::ZhCn, true) => format!("{zh}申请已自动通过。{AUTOMATIC_NOTICE}"),
                    (Lang::EnUs, true) => format!(
                        "{} request approved automatically. {AUTOMATIC_NOTICE_EN}",
                        english_label(request)
                    ),
                }),
                Element::hr(ids::DIVIDER),
                Element::markdown_localized(ids::NOTE, |lang| {
                    format!(
                        "{}{}",
                        lang.pick(NOTE_PREFIX, NOTE_PREFIX_EN),
                        decision_note(request, lang)
                    )
                }),
                Element::markdown_localized(ids::TL_SUBMITTED, |lang| {
                    submitted_line(view, false, lang)
                }),
                approved_line(request, approved_at, automatic),
            ],
        },
    }
}

/// An undecided card past its time to live: grey, no buttons.
pub fn expired_card() -> Card {
    Card {
        schema: Schema::V2,
        config: config(|lang| lang.pick("审批已过期", "Request expired").to_owned()),
        header: header(
            vec![TextTag {
                text: PlainText::both("已过期", "Expired"),
                color: TagColor::Neutral,
            }],
            HeaderTemplate::Grey,
        ),
        body: CardBody {
            elements: vec![
                status_element(ids::STATUS, "已过期", "Expired", TagColor::Neutral),
                Element::div_localized(ids::PROMPT, |lang| {
                    lang.pick(
                        "该审批已过期，如需申请请重新发送「审批」",
                        "This request expired. Send “approval” to start a new one.",
                    )
                    .to_owned()
                }),
            ],
        },
    }
}

/// The toast for an accepted click of the tutorial's flow: the simulated approver decides it.
pub fn submitted_toast(request: &Definition) -> Toast {
    Toast::new(
        ToastKind::Success,
        &format!("已提交{}申请（模拟审批，将自动通过）", request.name.zh_cn),
        &format!(
            "Your {} request was submitted (simulated approval: decided automatically)",
            english(request)
        ),
    )
}

/// The toast for 请假 / 加班 when the deployment has no approver source and
/// `APPROVAL_FALLBACK=refuse`: nothing is filed.
pub fn no_approvers_toast() -> Toast {
    Toast::new(
        ToastKind::Warning,
        "本机器人未配置审批人，暂时无法发起审批，请联系管理员",
        "This bot has no approvers configured; please ask your admin",
    )
}

/// The toast for a request type's button whose type is no longer offered (the definitions file
/// dropped it since the card was sent) or never was: nothing changes.
pub fn removed_type_toast() -> Toast {
    Toast::new(
        ToastKind::Error,
        "该审批类型已停用，请重新发送「审批」",
        "This request type is no longer offered; send “approval” again",
    )
}

/// The toast for 请假 / 加班 on a card in a group: the form continues in the requester's p2p chat
/// with the bot, where nobody else sees it.
pub fn moved_toast(kind: &Definition) -> Toast {
    Toast::new(
        ToastKind::Success,
        &format!("{}申请表单已发到你与机器人的私聊", kind.name.zh_cn),
        &format!(
            "The {} form is in your private chat with the bot",
            english(kind)
        ),
    )
}

/// A group card after 请假 / 加班: it says where the request went and shows none of it.
pub fn moved_card(kind: &Definition) -> Card {
    let zh = &kind.name.zh_cn;
    Card {
        schema: Schema::V2,
        config: config(|lang| match lang {
            Lang::ZhCn => format!("{zh}申请已转到私聊"),
            Lang::EnUs => format!("{} request continued in private", english_label(kind)),
        }),
        header: request_header(kind),
        body: CardBody {
            elements: vec![
                status_element(
                    ids::STATUS,
                    "已转到私聊",
                    "In private chat",
                    TagColor::Neutral,
                ),
                Element::div_localized(ids::PROMPT, |lang| match lang {
                    Lang::ZhCn => {
                        format!("{zh}申请在申请人与机器人的私聊中继续，内容不在群内显示。")
                    }
                    Lang::EnUs => format!(
                        "The {} request continues in the requester's private chat with the bot; \
                         its details are not shown in this group.",
                        english(kind)
                    ),
                }),
            ],
        },
    }
}

/// The toast for a click on a card that was already decided (nothing changes).
pub fn already_decided_toast(outcome: &str) -> Toast {
    Toast::new(
        ToastKind::Info,
        &format!("该审批已处理：{outcome}"),
        "This request was already handled",
    )
}

/// The toast for a click by anyone but the card's requester (nothing changes).
pub fn not_requester_toast() -> Toast {
    Toast::new(
        ToastKind::Warning,
        "仅申请人本人可以操作此审批卡片",
        "Only the requester can act on this card",
    )
}

/// The toast for a click on an expired card.
pub fn expired_toast() -> Toast {
    Toast::new(
        ToastKind::Warning,
        "该审批已过期，请重新发送「审批」",
        "This request has expired",
    )
}

/// The toast for a click the bot does not understand.
pub fn unknown_action_toast() -> Toast {
    Toast::new(ToastKind::Error, "无法识别的操作", "Unknown action")
}

/// The toast when the bot cannot find the card's state or is briefly unavailable.
pub fn retry_later_toast() -> Toast {
    Toast::new(
        ToastKind::Error,
        "操作失败，请稍后重试",
        "Something went wrong, please retry",
    )
}

/// The toast of a click in a tenant that stopped or uninstalled the app (store app): nothing is
/// applied.
pub fn app_stopped_toast() -> Toast {
    Toast::new(
        ToastKind::Warning,
        "应用已被停用，请联系管理员",
        "The app is stopped in your organization; ask your admin",
    )
}

/// How many requests 我的申请 shows, and pending ones 待我审批 lists (and links).
pub const LIST_LENGTH: usize = 10;

/// What a clicker is told when `status` refuses a click (the definition names the request).
pub fn outcome_text(status: ApprovalStatus, request: Option<&Definition>) -> String {
    let zh = request.map(|d| d.name.zh_cn.as_str()).unwrap_or("审批");
    match status.stage() {
        None if status == ApprovalStatus::Expired => "已过期".to_owned(),
        None => "待处理".to_owned(),
        Some(Stage::Submitted | Stage::Filed) => format!("{zh}审批中"),
        Some(Stage::Approved) => format!("{zh}通过"),
        Some(Stage::Draft) => format!("{zh}申请填写中"),
        Some(Stage::Rejected) => format!("{zh}未通过"),
        Some(Stage::Withdrawn) => format!("{zh}已撤回"),
        Some(Stage::Moved) => format!("{zh}申请已转到私聊"),
        Some(Stage::Unrouted) => format!("{zh}未送审：无审批人"),
    }
}

/// The definition a request at `status` with `data` was drawn with, if it names one.
pub fn definition_of(
    status: ApprovalStatus,
    data: &ApprovalData,
    catalog: &Catalog,
) -> Option<std::sync::Arc<Definition>> {
    data.request_kind(status)
        .map(|kind| catalog.resolve(kind, data.definition))
}

/// Where a request stands, in `lang`, for lists and toasts.
pub fn outcome(
    status: ApprovalStatus,
    data: &ApprovalData,
    catalog: &Catalog,
    lang: Lang,
) -> String {
    let definition = definition_of(status, data, catalog);
    if let (true, Some(Stage::Approved), Some(kind)) =
        (data.automatic, status.stage(), definition.as_deref())
    {
        return match lang {
            Lang::ZhCn => format!("{}通过（自动审批）", kind.name.zh_cn),
            Lang::EnUs => format!("{} approved (automatic)", english_label(kind)),
        };
    }
    if lang == Lang::ZhCn {
        return outcome_text(status, definition.as_deref());
    }
    let kind = definition
        .as_deref()
        .map(english_label)
        .unwrap_or("Request");
    match status.stage() {
        Some(Stage::Submitted | Stage::Filed) => format!("{kind} pending"),
        Some(Stage::Approved) => format!("{kind} approved"),
        Some(Stage::Rejected) => format!("{kind} rejected"),
        Some(Stage::Withdrawn) => format!("{kind} withdrawn"),
        Some(Stage::Draft) => format!("{kind} draft"),
        Some(Stage::Moved) => format!("{kind} continued in private"),
        Some(Stage::Unrouted) => format!("{kind} not sent: no approver"),
        None if status == ApprovalStatus::Expired => "Expired".to_owned(),
        None => "Open".to_owned(),
    }
}

/// One line of a list: when, what, its dates and number, the status.
fn list_line(
    request: &CardState,
    catalog: &Catalog,
    time_zone: &TimeZone,
    with_requester: bool,
    lang: Lang,
) -> String {
    let status = ApprovalStatus::parse(&request.status);
    let data = ApprovalData::from_value(&request.data).unwrap_or_default();
    let definition = status.and_then(|s| definition_of(s, &data, catalog));
    let kind = definition
        .as_deref()
        .map(|d| request_label(d, lang).to_owned())
        .unwrap_or_else(|| lang.pick("审批", "Approval").to_owned());
    let when = format_local(data.submitted_at.unwrap_or(request.created_at), time_zone);
    let detail = match (&data.values, definition.as_deref()) {
        (Some(values), Some(definition)) => list_detail(definition, values, lang),
        _ => String::new(),
    };
    let outcome = status
        .map(|s| outcome(s, &data, catalog, lang))
        .unwrap_or_else(|| lang.pick("未知", "unknown").to_owned());
    let from = if with_requester {
        format!("{} ", who(&request.requester_open_id))
    } else {
        String::new()
    };
    format!("· {when} {from}{kind}{detail} · {outcome}")
}

fn list_card(
    title: (&str, &str),
    lines: impl Fn(Lang) -> Vec<String>,
    empty: (&str, &str),
) -> Card {
    let count = lines(Lang::ZhCn).len();
    Card {
        schema: Schema::V2,
        config: config(|lang| match lang {
            Lang::ZhCn => format!("{}（{count} 条）", title.0),
            Lang::EnUs => format!("{} ({count})", title.1),
        }),
        header: Some(CardHeader {
            title: PlainText::both(title.0, title.1),
            subtitle: None,
            text_tag_list: vec![],
            template: HeaderTemplate::Blue,
        }),
        body: CardBody {
            elements: vec![Element::markdown_localized("list", |lang| {
                let lines = lines(lang);
                if lines.is_empty() {
                    lang.pick(empty.0, empty.1).to_owned()
                } else {
                    lines.join("\n")
                }
            })],
        },
    }
}

/// A list line's detail: the first date (or date range) and the first number (or amount).
fn list_detail(definition: &Definition, values: &Map<String, Value>, lang: Lang) -> String {
    let shown = |types: &[FieldType]| {
        definition
            .fields
            .iter()
            .filter(|f| types.contains(&f.field_type))
            .find_map(|f| values.get(&f.name).map(|v| value_text(f, v, lang)))
    };
    [
        shown(&[FieldType::Date, FieldType::DateRange]),
        shown(&[FieldType::Number, FieldType::Amount]),
    ]
    .into_iter()
    .flatten()
    .map(|text| format!(" {text}"))
    .collect()
}

/// 我的申请: the requester's requests (newest first), one line each with its status.
pub fn my_requests_card(requests: &[CardState], catalog: &Catalog, time_zone: &TimeZone) -> Card {
    list_card(
        ("我的申请", "My requests"),
        |lang| {
            requests
                .iter()
                .take(LIST_LENGTH)
                .map(|r| list_line(r, catalog, time_zone, false, lang))
                .collect()
        },
        (
            "你还没有申请。发送「审批」发起一个。",
            "No requests yet. Send “approval” to start one.",
        ),
    )
}

/// 待我审批: the filed requests waiting for this approver, newest first; each card is linked by a
/// reply to it.
pub fn pending_card_list(requests: &[CardState], catalog: &Catalog, time_zone: &TimeZone) -> Card {
    list_card(
        ("待我审批", "Waiting for me"),
        |lang| {
            requests
                .iter()
                .take(LIST_LENGTH)
                .map(|r| list_line(r, catalog, time_zone, true, lang))
                .collect()
        },
        (
            "没有等你审批的申请。",
            "Nothing is waiting for your decision.",
        ),
    )
}

/// The text to a requester whose request no approver can receive (every send refused for good).
pub const UNREACHABLE_TEXT: &str = "你的申请无法送达任何审批人（不在应用的可用范围内或已离职），请联系管理员。\n\
Your request could not reach any approver (outside the app's availability, or gone); please ask your admin.";

/// The reply to an approver's card that links it from 待我审批.
pub const PENDING_LINK_TEXT: &str =
    "待你审批：请在这张卡片中处理。\nWaiting for your decision: please decide on this card.";

/// The welcome card of a user's p2p chat with the bot: what it does, its commands, and 发起审批.
pub fn welcome_card() -> Card {
    Card {
        schema: Schema::V2,
        config: config(|lang| {
            lang.pick("审批助手：发起和处理审批", "Approvals: request and decide")
                .to_owned()
        }),
        header: Some(CardHeader {
            title: PlainText::both("审批助手", "Approvals"),
            subtitle: None,
            text_tag_list: vec![],
            template: HeaderTemplate::Blue,
        }),
        body: CardBody {
            elements: vec![
                Element::markdown_localized("welcome", |lang| {
                    lang.pick(
                        "你好！我可以帮你发起和处理审批（请假、加班等）。\n\
                         **指令**\n\
                         · 审批：发起审批\n\
                         · 我的申请：你最近的 10 条申请\n\
                         · 待我审批：等你处理的申请\n\
                         · 帮助：查看说明",
                        "Hi! I handle requests (leave, overtime and more).\n\
                         **Commands**\n\
                         · approval: start a request\n\
                         · my requests: your last 10 requests\n\
                         · pending: requests waiting for you\n\
                         · help: this help",
                    )
                    .to_owned()
                }),
                Element::Button(Button {
                    element_id: "btn_start".to_owned(),
                    button_type: ButtonType::PrimaryFilled,
                    text: PlainText::both("发起审批", "Start a request"),
                    disabled: false,
                    disabled_tips: None,
                    name: None,
                    form_action_type: None,
                    behaviors: vec![Behavior::Callback {
                        value: ApprovalAction::Start.value(),
                    }],
                }),
            ],
        },
    }
}

/// The toast for 发起审批: the card comes as a new message.
pub fn start_toast() -> Toast {
    Toast::new(
        ToastKind::Success,
        "审批卡片已发送",
        "The approval card is on its way",
    )
}

/// The text sent together with the approval card (Chinese, then English: a text message has no
/// per-language content).
pub const APPROVAL_REPLY_TEXT: &str = "收到，请在下方审批卡片中选择需要的操作。\n\
Got it: choose what you need on the card below.";

/// The help text: every command the bot understands.
pub const HELP_TEXT: &str = "我是审批机器人，支持以下指令：\n\
· 审批（approval）：发起审批，在卡片中选择类型（如请假、加班）\n\
· 我的申请（my requests）：你最近的 10 条申请\n\
· 待我审批（pending）：等你处理的申请\n\
· 帮助（help）：查看本说明\n\
\n\
I handle approvals. Commands: approval (start a request: leave, overtime, …), my requests (your \
last 10), pending (requests waiting for you), help (this text).";

/// `MM-dd HH:mm` of `at` (epoch ms) in the tenant's time zone (`TENANT_TIME_ZONE`); empty for a
/// time outside jiff's range (±9999 years), which no stored card holds.
pub fn format_local(at: EpochMillis, time_zone: &TimeZone) -> String {
    Timestamp::from_millisecond(at)
        .map(|at| {
            time_zone
                .to_datetime(at)
                .strftime("%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// The card for a status and its data: what every delivery path shows. The request's definition
/// is the version it pinned in `catalog`.
pub fn render(
    status: ApprovalStatus,
    data: &ApprovalData,
    catalog: &Catalog,
    time_zone: &TimeZone,
) -> Card {
    let local = |at| format_local(at, time_zone);
    let submitted_at = data.submitted_at.map(local).unwrap_or_default();
    let definition = definition_of(status, data, catalog);
    let view = |kind| RequestView {
        request: kind,
        submitted_by: data.submitted_by.as_deref(),
        submitted_at: &submitted_at,
        automatic: data.automatic,
    };
    let requester = data.submitted_by.as_deref().unwrap_or_default();
    let decided_at = data.decided_at.map(local).unwrap_or_default();
    match (status.stage(), definition.as_deref()) {
        _ if status == ApprovalStatus::Pending => pending_card(catalog),
        // A form left unfiled (its version pinned when it opened) expired: nothing to show of it.
        (None, _) if status == ApprovalStatus::Expired && data.values.is_none() => expired_card(),
        // Returned for changes: the form again, filled with what was filed.
        (Some(Stage::Draft), Some(kind)) if data.values.is_some() => {
            returned_form_card(kind, data, time_zone)
        }
        (Some(Stage::Draft), Some(kind)) => form_card(kind),
        (Some(Stage::Moved), Some(kind)) => moved_card(kind),
        // A request with an approver (filed, decided, withdrawn, or expired after filing) shows
        // its fields, decision and timeline.
        (_, Some(kind)) if data.values.is_some() => {
            request_card(kind, status, data, requester, time_zone)
        }
        (Some(Stage::Submitted), Some(kind)) => submitted_card(&view(kind), catalog),
        (Some(Stage::Approved), Some(kind)) => approved_card(&view(kind), &decided_at),
        (_, Some(kind)) => request_card(kind, status, data, requester, time_zone),
        (_, None) => expired_card(),
    }
}

/// Renders a stored approval card (the requester's; an approver's card needs its request:
/// [`render_card`]).
pub fn render_state(
    state: &CardState,
    catalog: &Catalog,
    time_zone: &TimeZone,
) -> Result<Card, DomainError> {
    let data = ApprovalData::from_value(&state.data)?;
    Ok(render(status_of(state)?, &data, catalog, time_zone))
}

/// Renders any stored card of an approval: the requester's card, or an approver's card
/// ([`REVIEW_KIND`]) from the `request` it shows (the requester's card state).
pub fn render_card(
    state: &CardState,
    request: Option<&CardState>,
    catalog: &Catalog,
    time_zone: &TimeZone,
) -> Result<Card, DomainError> {
    if state.kind != REVIEW_KIND {
        return render_state(state, catalog, time_zone);
    }
    let review = ReviewData::of(state)?;
    let request = request
        .filter(|r| r.card_key == review.request_key)
        .ok_or_else(|| {
            DomainError::CorruptState(format!("request {} not given", review.request_key))
        })?;
    review_card(request, Some(&review), catalog, time_zone)
}

// ---------------------------------------------------------------------------------------------
// The real approval: the request form, the requester's card, the approvers' cards

/// `element_id`s of the real approval's cards.
pub mod request_ids {
    pub const FIELDS: &str = "fields";
    /// A routed request's steps and votes.
    pub const ROUTE: &str = "route";
    pub const PEOPLE: &str = "people";
    pub const DECISION: &str = "decision";
    pub const TIMELINE: &str = "timeline";
    pub const FORM: &str = "request_form";
    pub const REVIEW_FORM: &str = "review_form";
    pub const BTN_FILE: &str = "btn_file";
    pub const BTN_APPROVE: &str = "btn_approve";
    pub const BTN_REJECT: &str = "btn_reject";
    pub const BTN_WITHDRAW: &str = "btn_withdraw";
    pub const BTN_TRANSFER: &str = "btn_transfer";
    pub const BTN_RETURN: &str = "btn_return";
    pub const TRANSFER_PICKER: &str = "transfer_to";
    /// A note on an approver's card: handed on (转交), or a round that was returned.
    pub const HANDOVER: &str = "handover";
    /// The returned form's note: who returned it, and why.
    pub const RETURNED: &str = "returned";
}

fn submit_button(
    id: &str,
    text: (&str, &str),
    button_type: ButtonType,
    action: ApprovalAction,
) -> Element {
    Element::Button(Button {
        element_id: id.to_owned(),
        button_type,
        text: PlainText::both(text.0, text.1),
        disabled: false,
        disabled_tips: None,
        name: Some(id.to_owned()),
        form_action_type: Some("submit".to_owned()),
        behaviors: vec![Behavior::Callback {
            value: action.value(),
        }],
    })
}

fn date_picker(element_id: String, name: String, required: bool, placeholder: &Text) -> Element {
    Element::DatePicker(DatePicker {
        element_id,
        name,
        required,
        initial_date: None,
        placeholder: PlainText::both(&placeholder.zh_cn, &placeholder.en_us),
    })
}

fn input(name: &str, placeholder: (&str, &str), required: bool, multiline: bool) -> Element {
    Element::Input(Input {
        element_id: name.to_owned(),
        name: name.to_owned(),
        required,
        placeholder: PlainText::both(placeholder.0, placeholder.1),
        max_length: Some(u32::try_from(MAX_REASON_CHARS).unwrap_or(1000)),
        input_type: multiline.then(|| "multiline_text".to_owned()),
        label: None,
        default_value: None,
    })
}

/// A form component's `element_id`: `fld_<n>` (`s`/`e` for a range's pickers), so no field
/// name can collide with the card's own ids (`prompt`, `btn_file`, …) and none exceeds Feishu's
/// 20 characters; the field's name is the component's `name`.
fn field_element_id(index: usize, part: &str) -> String {
    format!("fld_{index}{part}")
}

/// 请填写 / 请选择 and the label, unless the field names its own placeholder.
fn placeholder(field: &Field, label: &Text) -> Text {
    if let Some(p) = &field.placeholder {
        return p.clone();
    }
    let range = match (field.min, field.max) {
        (Some(a), Some(b)) => Some((a.normalize(), b.normalize())),
        _ => None,
    };
    match (field.field_type, range) {
        (FieldType::Number | FieldType::Amount, Some((a, b))) => Text {
            zh_cn: format!("{a} 到 {b}"),
            en_us: format!("{a} to {b}"),
        },
        (t, _) if t.is_chosen() => Text {
            zh_cn: format!("请选择{}", label.zh_cn),
            en_us: format!("Choose {}", label.en_us),
        },
        _ => Text {
            zh_cn: format!("请填写{}", label.zh_cn),
            en_us: format!("Fill in {}", label.en_us),
        },
    }
}

fn label_element(id: String, label: &Text, field: &Field) -> Element {
    let suffix = |lang: Lang| match (&field.unit, &field.currency) {
        (Some(unit), _) => format!("（{}）", unit.get(lang)),
        (None, Some(currency)) => format!("（{currency}）"),
        (None, None) => String::new(),
    };
    Element::markdown_localized(&id, |lang| {
        format!(
            "**{}{}**",
            text::escape_markdown(label.get(lang), 80),
            suffix(lang)
        )
    })
}

fn options(field: &Field) -> Vec<SelectOption> {
    field
        .options
        .iter()
        .map(|c| SelectOption {
            text: PlainText::both(&c.label.zh_cn, &c.label.en_us),
            value: c.value.clone(),
        })
        .collect()
}

/// A field's label and components on the request form.
fn field_elements(field: &Field, index: usize) -> Vec<Element> {
    let id = |part: &str| field_element_id(index, part);
    let label_id = format!("lbl_{index}");
    let mut out = Vec::new();
    match field.field_type {
        FieldType::DateRange => {
            let (start, end) = (field.start_label(), field.end_label());
            for (label, name, part, lbl) in [
                (&start, field.start_name(), "s", format!("{label_id}s")),
                (&end, field.end_name(), "e", format!("{label_id}e")),
            ] {
                out.push(label_element(lbl, label, field));
                out.push(date_picker(
                    field_element_id(index, part),
                    name,
                    field.required,
                    &placeholder(field, label),
                ));
            }
            return out;
        }
        _ => out.push(label_element(label_id, &field.label, field)),
    }
    let placeholder = placeholder(field, &field.label);
    out.push(match field.field_type {
        FieldType::Text | FieldType::Textarea | FieldType::Number | FieldType::Amount => {
            Element::Input(Input {
                element_id: id(""),
                name: field.name.clone(),
                required: field.required,
                placeholder: PlainText::both(&placeholder.zh_cn, &placeholder.en_us),
                max_length: Some(match field.field_type {
                    FieldType::Text | FieldType::Textarea => field.max_len(),
                    _ => 32,
                }),
                input_type: (field.field_type == FieldType::Textarea)
                    .then(|| "multiline_text".to_owned()),
                label: None,
                default_value: None,
            })
        }
        FieldType::Select => Element::SelectStatic(SelectStatic {
            element_id: id(""),
            name: field.name.clone(),
            required: field.required,
            placeholder: PlainText::both(&placeholder.zh_cn, &placeholder.en_us),
            initial_option: None,
            options: options(field),
        }),
        FieldType::MultiSelect => Element::MultiSelectStatic(MultiSelectStatic {
            element_id: id(""),
            name: field.name.clone(),
            required: field.required,
            placeholder: PlainText::both(&placeholder.zh_cn, &placeholder.en_us),
            options: options(field),
            selected_values: Vec::new(),
        }),
        FieldType::Date => date_picker(id(""), field.name.clone(), field.required, &placeholder),
        FieldType::Checkbox => Element::Checker(Checker {
            element_id: id(""),
            name: field.name.clone(),
            checked: false,
            text: PlainText::both(&field.label.zh_cn, &field.label.en_us),
        }),
        // Its two pickers were added above.
        FieldType::DateRange => return out,
    });
    out
}

/// The requester's card after a request type's button with an approver: the request form, one
/// label and component per field (Feishu's form, input, select, date picker and checker
/// components; the values come back in `form_value` on 提交).
pub fn form_card(kind: &Definition) -> Card {
    let mut children: Vec<Element> = kind
        .fields
        .iter()
        .enumerate()
        .flat_map(|(i, field)| field_elements(field, i))
        .collect();
    children.push(submit_button(
        request_ids::BTN_FILE,
        ("提交", "Submit"),
        ButtonType::PrimaryFilled,
        ApprovalAction::File,
    ));
    let zh = &kind.name.zh_cn;
    Card {
        schema: Schema::V2,
        config: config(|lang| match lang {
            Lang::ZhCn => format!("填写{zh}申请"),
            Lang::EnUs => format!("{} request form", english_label(kind)),
        }),
        header: request_header(kind),
        body: CardBody {
            elements: vec![
                Element::div_localized(ids::PROMPT, |lang| match lang {
                    Lang::ZhCn => format!("请填写{zh}申请，提交后发送给审批人"),
                    Lang::EnUs => format!(
                        "Fill in the {} request; it goes to the approver when you submit",
                        english(kind)
                    ),
                }),
                Element::Form(Form {
                    element_id: request_ids::FORM.to_owned(),
                    name: request_ids::FORM.to_owned(),
                    elements: children,
                }),
            ],
        },
    }
}

/// The requester's card after 退回: who returned it and their comment, then the form filled with
/// what was filed (inputs' `default_value`, selects' `initial_option`, pickers' `initial_date`,
/// checkers' `checked`); 提交 files it again and the route starts over.
pub fn returned_form_card(kind: &Definition, data: &ApprovalData, time_zone: &TimeZone) -> Card {
    let mut card = form_card(kind);
    let values = data.values.clone().unwrap_or_default();
    for element in &mut card.body.elements {
        if let Element::Form(form) = element {
            for child in &mut form.elements {
                prefill(child, &values);
            }
        }
    }
    let returned = data
        .audit
        .iter()
        .rev()
        .find(|e| e.action == AuditAction::Returned)
        .cloned();
    if let Some(entry) = returned {
        let by = entry.by.as_deref().map(who).unwrap_or_default();
        let at = format_local(entry.at, time_zone);
        let comment = entry
            .comment
            .as_deref()
            .map(|c| text::escape_markdown(c, MAX_REASON_CHARS))
            .unwrap_or_default();
        card.body.elements.insert(
            0,
            Element::markdown_localized(request_ids::RETURNED, |lang| {
                let head = match lang {
                    Lang::ZhCn => format!("{by} 于 {at} 退回了申请，请修改后重新提交"),
                    Lang::EnUs => {
                        format!("{by} returned the request at {at}: change it and submit it again")
                    }
                };
                match comment.is_empty() {
                    true => head,
                    false => format!("{head}\n> {comment}"),
                }
            }),
        );
        card.body.elements.push(withdraw_button());
    }
    card
}

/// The requester's 撤回 (a filed request, or one returned for changes).
fn withdraw_button() -> Element {
    Element::Button(Button {
        element_id: request_ids::BTN_WITHDRAW.to_owned(),
        button_type: ButtonType::Default,
        text: PlainText::both("撤回", "Withdraw"),
        disabled: false,
        disabled_tips: None,
        name: None,
        form_action_type: None,
        behaviors: vec![Behavior::Callback {
            value: ApprovalAction::Withdraw.value(),
        }],
    })
}

/// Fills one form component with the filed value of its `name` (a date range's pickers are
/// named after its two halves: `request::parse_form` stores them as `{start, end}`).
fn prefill(element: &mut Element, values: &Map<String, Value>) {
    let range_half = |name: &str| {
        let (field, half) = name
            .strip_prefix("start_")
            .map(|f| (f, "start"))
            .or_else(|| name.strip_prefix("end_").map(|f| (f, "end")))?;
        values.get(field)?.get(half)?.as_str().map(str::to_owned)
    };
    let plain = |name: &str| match values.get(name) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    match element {
        Element::Input(i) => i.default_value = plain(&i.name),
        Element::SelectStatic(s) => s.initial_option = plain(&s.name),
        Element::DatePicker(d) => d.initial_date = plain(&d.name).or_else(|| range_half(&d.name)),
        Element::Checker(c) => c.checked = values.get(&c.name) == Some(&Value::Bool(true)),
        Element::MultiSelectStatic(m) => {
            m.selected_values = values
                .get(&m.name)
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
        }
        _ => {}
    }
}

/// `@name` for an open_id, or nothing for a malformed one.
fn who(open_id: &str) -> String {
    text::mention(open_id).unwrap_or_default()
}

/// A stored date shown as is when it is a date (`request::parse_form` wrote it), else escaped.
fn date_text(date: &str) -> String {
    match date.parse::<jiff::civil::Date>() {
        Ok(day) => day.to_string(),
        Err(_) => text::escape_markdown(date, 10),
    }
}

/// A stored number shown as is when it is digits, a sign and one dot, else escaped.
fn number_text(number: &str) -> String {
    if number.len() <= 24
        && number
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        number.to_owned()
    } else {
        text::escape_markdown(number, 24)
    }
}

/// A stored value as the cards show it, in `lang`; user text escaped and capped.
fn value_text(field: &Field, value: &Value, lang: Lang) -> String {
    let choice = |v: &str| {
        field
            .choice(v)
            .map(|c| text::escape_markdown(c.label.get(lang), 80))
            .unwrap_or_else(|| text::escape_markdown(v, 64))
    };
    match (field.field_type, value) {
        (FieldType::Text | FieldType::Textarea, Value::String(s)) => {
            text::escape_markdown(s, field.max_len() as usize)
        }
        (FieldType::Number, Value::String(s)) => match &field.unit {
            Some(unit) => format!(
                "{} {}",
                number_text(s),
                text::escape_markdown(unit.get(lang), 20)
            ),
            None => number_text(s),
        },
        (FieldType::Amount, Value::String(s)) => match &field.currency {
            Some(currency) => format!("{} {currency}", number_text(s)),
            None => number_text(s),
        },
        (FieldType::Select, Value::String(s)) => choice(s),
        (FieldType::MultiSelect, Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .take(field.options.len().max(1))
            .map(choice)
            .collect::<Vec<_>>()
            .join(lang.pick("、", ", ")),
        (FieldType::Date, Value::String(s)) => date_text(s),
        (FieldType::DateRange, Value::Object(range)) => format!(
            "{} {} {}",
            date_text(
                range
                    .get("start")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            ),
            lang.pick("至", "to"),
            date_text(range.get("end").and_then(Value::as_str).unwrap_or_default())
        ),
        (FieldType::Checkbox, Value::Bool(b)) => lang
            .pick(if *b { "是" } else { "否" }, if *b { "yes" } else { "no" })
            .to_owned(),
        (_, other) => raw_value_text(other),
    }
}

/// A value its field does not explain (a version that cannot be read): shown as escaped text.
fn raw_value_text(value: &Value) -> String {
    let raw = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text::escape_markdown(&raw, MAX_REASON_CHARS)
}

/// The request's fields as markdown lines in `lang`, in the definition's order (values its
/// version does not define follow, by key); user text escaped and capped.
pub fn form_lines(definition: &Definition, values: &Map<String, Value>, lang: Lang) -> String {
    let mut lines: Vec<String> = definition
        .fields
        .iter()
        .filter_map(|field| {
            let value = values.get(&field.name)?;
            Some(format!(
                "**{}**：{}",
                text::escape_markdown(field.label.get(lang), 80),
                value_text(field, value, lang)
            ))
        })
        .collect();
    for (key, value) in values {
        if definition.field(key).is_none() {
            lines.push(format!(
                "**{}**：{}",
                text::escape_markdown(key, 32),
                raw_value_text(value)
            ));
        }
    }
    lines.join("\n")
}

fn audit_label(action: AuditAction, lang: Lang) -> &'static str {
    lang.pick(
        action.label(),
        match action {
            AuditAction::Submitted => "submitted the request",
            AuditAction::Approved => "approved",
            AuditAction::Rejected => "rejected",
            AuditAction::Withdrawn => "withdrew the request",
            AuditAction::Reminded => "reminded the approvers",
            AuditAction::Expired => "expired",
            AuditAction::NoApprover => "found no approver",
            AuditAction::Transferred => "transferred",
            AuditAction::Returned => "returned the request for changes",
            AuditAction::Resubmitted => "submitted the request again",
            AuditAction::Escalated => "escalated (reminders ran out)",
        },
    )
}

/// The most timeline lines a card shows (the latest; the table keeps them all): a request handed
/// on, returned and escalated many times stays within Feishu's card size.
pub const MAX_TIMELINE_LINES: usize = 6;

/// The audit trail as the card's timeline, one line per entry, in `lang` (no comments: the
/// shared form).
pub fn timeline(audit: &[AuditEntry], time_zone: &TimeZone, lang: Lang) -> String {
    timeline_for(audit, time_zone, lang, Audience::SharedChat)
}

/// A 转交's or 退回's comment on a timeline line, in characters (the returned form and the new
/// approver's texts carry it whole).
pub const TIMELINE_COMMENT_CHARS: usize = 12;

/// The timeline as `audience` sees it: a private card shows a 转交's or 退回's comment (escaped,
/// cut to [`TIMELINE_COMMENT_CHARS`]); a shared chat's card never shows one. At most the latest
/// [`MAX_TIMELINE_LINES`], after a line saying how many earlier ones are left out.
fn timeline_for(
    audit: &[AuditEntry],
    time_zone: &TimeZone,
    lang: Lang,
    audience: Audience,
) -> String {
    let skipped = audit.len().saturating_sub(MAX_TIMELINE_LINES);
    let earlier = (skipped > 0).then(|| match lang {
        Lang::ZhCn => format!("…（更早的 {skipped} 条记录未显示）"),
        Lang::EnUs => format!("… ({skipped} earlier entries not shown)"),
    });
    earlier
        .into_iter()
        .chain(audit[skipped..].iter().map(|entry| {
            let by = entry
                .by
                .as_deref()
                .map(who)
                .unwrap_or_else(|| lang.pick("系统", "cardbot").to_owned());
            let to: Vec<String> = entry.to.iter().map(|t| who(t)).collect();
            let to = match to.is_empty() {
                true => String::new(),
                false => format!(" → {}", to.join(" ")),
            };
            let comment = match (audience, entry.comment.as_deref()) {
                (Audience::Private, Some(c)) => {
                    format!("：{}", text::escape_markdown(c, TIMELINE_COMMENT_CHARS))
                }
                _ => String::new(),
            };
            format!(
                "{} · {by} {}{to}{comment}",
                format_local(entry.at, time_zone),
                audit_label(entry.action, lang)
            )
        }))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The status shown on a request's cards: tag text (zh, en), tag colour, header colour.
fn request_status(
    kind: &Definition,
    status: ApprovalStatus,
) -> ((String, String), TagColor, HeaderTemplate) {
    let (zh, en) = (&kind.name.zh_cn, english_label(kind));
    match status.stage() {
        Some(Stage::Approved) => (
            (format!("{zh}通过"), format!("{en} approved")),
            TagColor::Green,
            HeaderTemplate::Green,
        ),
        Some(Stage::Rejected) => (
            (format!("{zh}未通过"), format!("{en} rejected")),
            TagColor::Red,
            HeaderTemplate::Red,
        ),
        Some(Stage::Withdrawn) => (
            ("已撤回".to_owned(), "Withdrawn".to_owned()),
            TagColor::Neutral,
            HeaderTemplate::Grey,
        ),
        Some(Stage::Unrouted) => (
            ("无审批人".to_owned(), "No approver".to_owned()),
            TagColor::Red,
            HeaderTemplate::Grey,
        ),
        Some(Stage::Draft) => (
            ("已退回修改".to_owned(), "Returned for changes".to_owned()),
            TagColor::Orange,
            HeaderTemplate::Yellow,
        ),
        _ if status == ApprovalStatus::Expired => (
            ("已过期".to_owned(), "Expired".to_owned()),
            TagColor::Neutral,
            HeaderTemplate::Grey,
        ),
        _ => (
            ("审批中".to_owned(), "Pending".to_owned()),
            TagColor::Orange,
            HeaderTemplate::Orange,
        ),
    }
}

fn decision_line(
    data: &ApprovalData,
    status: ApprovalStatus,
    time_zone: &TimeZone,
    lang: Lang,
) -> Option<String> {
    let verdict = match status.stage() {
        Some(Stage::Approved) if data.automatic => lang.pick(
            "自动通过（模拟审批，并非真人审批）",
            "approved automatically (simulated, not a person)",
        ),
        Some(Stage::Approved) => lang.pick("已同意", "approved"),
        Some(Stage::Rejected) => lang.pick("已拒绝", "rejected"),
        Some(Stage::Unrouted) => lang.pick("未送审", "not sent to anyone"),
        _ => return None,
    };
    let by = data.decided_by.as_deref().map(who).unwrap_or_default();
    let at = data
        .decided_at
        .map(|at| format_local(at, time_zone))
        .unwrap_or_default();
    let mut line = format!(
        "**{}**：{by} {verdict} · {at}",
        lang.pick("审批结果", "Decision")
    );
    if let Some(why) = data.no_approver {
        line.push_str(&format!(
            "\n**{}**：{}",
            lang.pick("原因", "Why"),
            no_approver_reason(why, lang)
        ));
    }
    if let Some(comment) = &data.comment {
        line.push_str(&format!(
            "\n**{}**：{}",
            lang.pick("审批意见", "Comment"),
            text::escape_markdown(comment, MAX_REASON_CHARS)
        ));
    }
    Some(line)
}

/// Why filing found nobody to decide, in `lang`: what the admin must change.
pub fn no_approver_reason(why: NoApprover, lang: Lang) -> String {
    match why {
        NoApprover::NoneConfigured => lang
            .pick(
                "本机器人未配置审批人（APPROVER_OPEN_IDS）",
                "this bot has no approvers configured (APPROVER_OPEN_IDS)",
            )
            .to_owned(),
        NoApprover::NoLeader => lang
            .pick(
                "申请人在通讯录中没有直属上级",
                "the requester has no leader in the contact data",
            )
            .to_owned(),
        NoApprover::NoPermission { code } => match lang {
            Lang::ZhCn => format!(
                "应用无权读取申请人的上级（错误码 {code}：需开通 contact:contact.base:readonly、\
                 contact:user.department:readonly，并将成员加入通讯录权限范围）"
            ),
            Lang::EnUs => format!(
                "the app may not read the requester's leader (code {code}: grant \
                 contact:contact.base:readonly and contact:user.department:readonly, and put the \
                 user in the contact data scope)"
            ),
        },
        NoApprover::UnknownUser => lang
            .pick(
                "通讯录中找不到申请人",
                "the contact data does not know the requester",
            )
            .to_owned(),
    }
}

/// Who looks at a request's card: what it may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// The requester, an approver, a CC user: everything.
    Private,
    /// A CC chat other people share: the fields marked `cc_visible`, the outcome, never the
    /// reason or comments.
    SharedChat,
}

fn request_elements(
    status: ApprovalStatus,
    data: &ApprovalData,
    requester: &str,
    time_zone: &TimeZone,
    kind: &Definition,
) -> Vec<Element> {
    request_elements_for(status, data, requester, time_zone, kind, Audience::Private)
}

fn request_elements_for(
    status: ApprovalStatus,
    data: &ApprovalData,
    requester: &str,
    time_zone: &TimeZone,
    kind: &Definition,
    audience: Audience,
) -> Vec<Element> {
    let ((zh, en), color, _) = request_status(kind, status);
    let mut elements = vec![status_element(ids::STATUS, &zh, &en, color)];
    if let Some(values) = &data.values {
        let shown: Map<String, Value> = match audience {
            Audience::Private => values.clone(),
            Audience::SharedChat => values
                .iter()
                .filter(|(k, _)| kind.field(k).is_some_and(|f| f.cc_visible))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        if !shown.is_empty() {
            elements.push(Element::markdown_localized(request_ids::FIELDS, |lang| {
                form_lines(kind, &shown, lang)
            }));
        }
    }
    if !data.route.is_empty() {
        elements.push(Element::markdown_localized(request_ids::ROUTE, |lang| {
            route_lines(&data.route, audience, lang)
        }));
    }
    let approvers: Vec<String> = data.approvers.iter().map(|a| who(a)).collect();
    elements.push(Element::markdown_localized(request_ids::PEOPLE, |lang| {
        format!(
            "**{}**：{}\n**{}**：{}",
            lang.pick("申请人", "Requester"),
            who(requester),
            lang.pick("审批人", "Approvers"),
            approvers.join(" ")
        )
    }));
    let shown_data = match audience {
        Audience::Private => std::borrow::Cow::Borrowed(data),
        Audience::SharedChat => std::borrow::Cow::Owned(ApprovalData {
            comment: None,
            ..data.clone()
        }),
    };
    if decision_line(&shown_data, status, time_zone, Lang::ZhCn).is_some() {
        elements.push(Element::markdown_localized(request_ids::DECISION, |lang| {
            decision_line(&shown_data, status, time_zone, lang).unwrap_or_default()
        }));
    }
    elements.push(Element::hr(ids::DIVIDER));
    elements.push(Element::markdown_localized(request_ids::TIMELINE, |lang| {
        timeline_for(&data.audit, time_zone, lang, audience)
    }));
    elements
}

/// A vote's comment on the route lines, in characters.
pub const ROUTE_COMMENT_CHARS: usize = 20;

/// A route's steps, one line each: the step, how it decides, where it stands, then each
/// approver's vote (a shared chat's card leaves the comments out).
fn route_lines(route: &[StepState], audience: Audience, lang: Lang) -> String {
    use super::definition::Mode;
    route
        .iter()
        .map(|step| {
            let needed = super::route::needed(step);
            let mode = match (step.mode, lang) {
                (Mode::Any, Lang::ZhCn) => "任一人同意".to_owned(),
                (Mode::Any, Lang::EnUs) => "anyone approves".to_owned(),
                (Mode::All, Lang::ZhCn) => "全部同意".to_owned(),
                (Mode::All, Lang::EnUs) => "everyone approves".to_owned(),
                (Mode::NOf(n), Lang::ZhCn) => format!("{n} 人同意"),
                (Mode::NOf(n), Lang::EnUs) => format!("{n} approve"),
            };
            let outcome = match step.outcome {
                StepOutcome::Upcoming => lang.pick("待审批", "upcoming"),
                StepOutcome::Waiting => lang.pick("审批中", "current"),
                StepOutcome::Approved if step.automatic => {
                    lang.pick("自动通过（模拟审批）", "approved automatically (simulated)")
                }
                StepOutcome::Approved => lang.pick("已通过", "approved"),
                StepOutcome::Rejected => lang.pick("未通过", "rejected"),
                StepOutcome::Skipped => {
                    lang.pick("已跳过（条件不满足）", "skipped (condition not met)")
                }
                StepOutcome::Cancelled => lang.pick("未进行", "not reached"),
            };
            let approvals = step.votes.iter().filter(|v| v.approve).count();
            let count = if step.approvers.is_empty() {
                String::new()
            } else {
                format!(" {approvals}/{needed}")
            };
            let mut line = format!(
                "**{}** · {mode} · {outcome}{count}",
                text::escape_markdown(&step.id, 32)
            );
            for approver in &step.approvers {
                let vote = step.votes.iter().find(|v| &v.by == approver);
                let mark = match vote {
                    Some(v) if v.approve => lang.pick("✅ 同意", "✅ approved"),
                    Some(_) => lang.pick("❌ 拒绝", "❌ rejected"),
                    None if step.outcome == StepOutcome::Waiting => lang.pick("待审批", "to vote"),
                    None => "—",
                };
                line.push_str(&format!("\n· {} {mark}", who(approver)));
                if let (Some(comment), Audience::Private) =
                    (vote.and_then(|v| v.comment.as_deref()), audience)
                {
                    // Cut short here (the decision line shows the deciding comment in full): a
                    // route of many votes stays within a card.
                    line.push_str(&format!(
                        "：{}",
                        text::escape_markdown(comment, ROUTE_COMMENT_CHARS)
                    ));
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn request_card_of(
    kind: &Definition,
    status: ApprovalStatus,
    title: (String, String),
    mut elements: Vec<Element>,
    extra: Vec<Element>,
) -> Card {
    let ((zh, en), color, template) = request_status(kind, status);
    elements.extend(extra);
    Card {
        schema: Schema::V2,
        config: config(|lang| match lang {
            Lang::ZhCn => format!("{}：{zh}", title.0),
            Lang::EnUs => format!("{}: {en}", title.1),
        }),
        header: Some(CardHeader {
            title: PlainText::both(&title.0, &title.1),
            subtitle: None,
            text_tag_list: vec![TextTag {
                text: PlainText::both(&zh, &en),
                color,
            }],
            template,
        }),
        body: CardBody { elements },
    }
}

/// The requester's card of a filed request: fields, approvers, decision, timeline; 撤回 while it
/// waits.
pub fn request_card(
    kind: &Definition,
    status: ApprovalStatus,
    data: &ApprovalData,
    requester: &str,
    time_zone: &TimeZone,
) -> Card {
    let elements = request_elements(status, data, requester, time_zone, kind);
    let withdraw = (status.stage() == Some(Stage::Filed)).then(withdraw_button);
    request_card_of(
        kind,
        status,
        (
            format!("{}申请", kind.name.zh_cn),
            format!("{} request", english_label(kind)),
        ),
        elements,
        withdraw.into_iter().collect(),
    )
}

/// An approver's card, from the request (the requester's card state): while it waits, an
/// optional comment and 同意 / 拒绝; once decided, withdrawn or expired, the outcome and no
/// buttons.
pub fn review_card(
    request: &CardState,
    viewer: Option<&ReviewData>,
    catalog: &Catalog,
    time_zone: &TimeZone,
) -> Result<Card, DomainError> {
    let status = status_of(request)?;
    let data = ApprovalData::from_value(&request.data)?;
    let kind = catalog.resolve(data.request_kind_of(status)?, data.definition);
    let kind = kind.as_ref();
    let requester = data
        .submitted_by
        .as_deref()
        .unwrap_or(&request.requester_open_id);
    let cc = viewer.and_then(|v| v.cc);
    let audience = match cc {
        Some(super::machine::CcKind::Chat) => Audience::SharedChat,
        _ => Audience::Private,
    };
    let elements = request_elements_for(status, &data, requester, time_zone, kind, audience);
    // Buttons while the request waits, on an approver's card whose vote is still due: any card of
    // a one-step request, the current step's cards of a route; never a CC card.
    let votes = status.stage() == Some(Stage::Filed)
        && cc.is_none()
        && match viewer {
            None => data.route.is_empty(),
            Some(v) => super::handover::card_decides(&data, v),
        };
    if cc.is_some() {
        return Ok(request_card_of(
            kind,
            status,
            (
                format!("{}申请（抄送）", kind.name.zh_cn),
                format!("{} request (CC)", english_label(kind)),
            ),
            elements,
            Vec::new(),
        ));
    }
    let mut extra: Vec<Element> = viewer
        .and_then(|v| handover_note(&data, v))
        .into_iter()
        .collect();
    if votes {
        let candidates = viewer.map_or_else(Vec::new, |v| {
            super::handover::transfer_candidates(kind, &data, v, requester)
        });
        extra.push(review_form(&candidates));
    }
    Ok(request_card_of(
        kind,
        status,
        (
            format!("{}审批", kind.name.zh_cn),
            format!("{} approval", english_label(kind)),
        ),
        elements,
        extra,
    ))
}

/// What became of `viewer`'s place: handed on by their 转交 (to whom), or a round returned and
/// filed again (this card no longer decides).
fn handover_note(data: &ApprovalData, viewer: &ReviewData) -> Option<Element> {
    if viewer.round == data.round
        && super::handover::vote_due(data, viewer.step.as_deref(), &viewer.approver)
    {
        // Their vote is due (again, after a 转交 back to them): no note.
        return None;
    }
    if viewer.round < data.round {
        return Some(Element::markdown_localized(request_ids::HANDOVER, |lang| {
            lang.pick(
                "申请已退回修改并重新提交：本卡片不再审批，新一轮审批见新卡片",
                "The request was returned and submitted again: this card no longer decides; \
                 the new round has its own card",
            )
            .to_owned()
        }));
    }
    let to = data
        .audit
        .iter()
        .rev()
        .find(|e| {
            e.action == AuditAction::Transferred && e.by.as_deref() == Some(&viewer.approver)
        })?
        .to
        .first()
        .map(|t| who(t))?;
    Some(Element::markdown_localized(
        request_ids::HANDOVER,
        |lang| match lang {
            Lang::ZhCn => format!("你已将此审批转交给 {to}"),
            Lang::EnUs => format!("You transferred this approval to {to}"),
        },
    ))
}

/// An approver's form while their vote is due: an optional comment, 同意 / 拒绝, 转交 to one of
/// `candidates` (when there are any), and 退回 for changes.
fn review_form(candidates: &[String]) -> Element {
    let mut elements = vec![input(
        fields::COMMENT,
        ("审批意见（选填）", "Comment (optional)"),
        false,
        true,
    )];
    if !candidates.is_empty() {
        elements.push(Element::SelectPerson(SelectPerson {
            element_id: request_ids::TRANSFER_PICKER.to_owned(),
            name: fields::TRANSFER_TO.to_owned(),
            required: false,
            placeholder: PlainText::both("转交给（选填）", "Transfer to (optional)"),
            options: candidates
                .iter()
                .map(|c| PersonOption { value: c.clone() })
                .collect(),
        }));
    }
    elements.push(submit_button(
        request_ids::BTN_APPROVE,
        ("同意", "Approve"),
        ButtonType::PrimaryFilled,
        ApprovalAction::Approve,
    ));
    elements.push(submit_button(
        request_ids::BTN_REJECT,
        ("拒绝", "Reject"),
        ButtonType::DangerFilled,
        ApprovalAction::Reject,
    ));
    if !candidates.is_empty() {
        elements.push(submit_button(
            request_ids::BTN_TRANSFER,
            ("转交", "Transfer"),
            ButtonType::Default,
            ApprovalAction::Transfer,
        ));
    }
    elements.push(submit_button(
        request_ids::BTN_RETURN,
        ("退回修改", "Return for changes"),
        ButtonType::Default,
        ApprovalAction::Return,
    ));
    Element::Form(Form {
        element_id: request_ids::REVIEW_FORM.to_owned(),
        name: request_ids::REVIEW_FORM.to_owned(),
        elements,
    })
}

/// The text the requester gets when an approver returns the request for changes: who, when, and
/// their comment (plain: a text message reads no mention or link from it), Chinese then English.
pub fn returned_text(
    request: &CardState,
    catalog: &Catalog,
    time_zone: &TimeZone,
) -> Result<String, DomainError> {
    let status = status_of(request)?;
    let data = ApprovalData::from_value(&request.data)?;
    let kind = catalog.resolve(data.request_kind_of(status)?, data.definition);
    let (zh, en) = (
        text::message_text(&kind.name.zh_cn, 80),
        text::message_text(&english(&kind), 80),
    );
    let entry = data
        .audit
        .iter()
        .rev()
        .find(|e| e.action == AuditAction::Returned)
        .ok_or_else(|| DomainError::CorruptState("returned without a return".into()))?;
    let at = format_local(entry.at, time_zone);
    let mut out = format!(
        "你的{zh}申请被退回修改（{at}），请在原卡片上修改后重新提交。\nYour {en} request was returned \
         for changes ({at}): change it on its card and submit it again."
    );
    if let Some(comment) = entry.comment.as_deref() {
        out.push_str(&format!(
            "\n意见 / Comment: {}",
            text::message_text(comment, MAX_REASON_CHARS)
        ));
    }
    Ok(out)
}

/// The text the requester gets when an approver decides or the request expires (Chinese, then
/// English).
pub fn decision_text(
    request: &CardState,
    catalog: &Catalog,
    time_zone: &TimeZone,
) -> Result<String, DomainError> {
    let status = status_of(request)?;
    let data = ApprovalData::from_value(&request.data)?;
    let kind = catalog.resolve(data.request_kind_of(status)?, data.definition);
    // A definition's name is the admin's text: plain in a text message, as the comment is.
    let (zh, en) = (
        text::message_text(&kind.name.zh_cn, 80),
        text::message_text(&english(&kind), 80),
    );
    let at = data
        .decided_at
        .map(|at| format_local(at, time_zone))
        .unwrap_or_default();
    // A text message reads `<at …>` tags and `[text](url)` links: the comment must not.
    let comment = data
        .comment
        .as_deref()
        .map(|c| text::message_text(c, MAX_REASON_CHARS));
    let (mut cn, mut us) = match status.stage() {
        Some(Stage::Approved) if data.automatic => (
            format!("你的{zh}申请已由模拟审批自动通过（{at}），并非真人审批。"),
            format!(
                "Your {en} request was approved automatically by the simulated approver ({at}), \
                 not by a person."
            ),
        ),
        Some(Stage::Unrouted) => {
            let why = data.no_approver.unwrap_or(NoApprover::NoneConfigured);
            (
                format!(
                    "你的{zh}申请没有送审：找不到审批人（{}）。请联系管理员。",
                    no_approver_reason(why, Lang::ZhCn)
                ),
                format!(
                    "Your {en} request was not sent: no approver could be found ({}). Please ask \
                     your admin.",
                    no_approver_reason(why, Lang::EnUs)
                ),
            )
        }
        Some(Stage::Approved) => (
            format!("你的{zh}申请已通过（{at}）"),
            format!("Your {en} request was approved ({at})"),
        ),
        Some(Stage::Rejected) => (
            format!("你的{zh}申请未通过（{at}）"),
            format!("Your {en} request was rejected ({at})"),
        ),
        None if status == ApprovalStatus::Expired => (
            format!("你的{zh}申请无人审批，已过期。如仍需要，请重新发送「审批」。"),
            format!("Your {en} request expired undecided. Send “approval” to ask again."),
        ),
        _ => {
            return Err(DomainError::CorruptState(format!(
                "{} is not decided",
                status.stored()
            )))
        }
    };
    if let Some(comment) = comment {
        cn.push_str(&format!("\n审批意见：{comment}"));
        us.push_str(&format!("\nComment: {comment}"));
    }
    Ok(format!("{cn}\n\n{us}"))
}

/// The `n`th reminder to an approver, sent as a reply to their card (Chinese, then English).
pub fn reminder_text(
    request: &CardState,
    n: u32,
    catalog: &Catalog,
    time_zone: &TimeZone,
) -> Result<String, DomainError> {
    let data = ApprovalData::from_value(&request.data)?;
    let kind = catalog.resolve(data.request_kind_of(status_of(request)?)?, data.definition);
    let since = data
        .submitted_at
        .map(|at| format_local(at, time_zone))
        .unwrap_or_default();
    Ok(format!(
        "提醒（第 {n} 次）：{}申请（{since} 提交）仍在等待你审批，请在这张卡片中处理。\n\
         Reminder {n}: a {} request (submitted {since}) is still waiting for your decision on \
         this card.",
        text::message_text(&kind.name.zh_cn, 80),
        text::message_text(&english(&kind), 80)
    ))
}

/// The toast for a form that does not validate: names the field; nothing is filed.
pub fn form_problem_toast(problem: &FormProblem) -> Toast {
    Toast::new(
        ToastKind::Error,
        &problem.text(Lang::ZhCn),
        &problem.text(Lang::EnUs),
    )
}

/// The toast for a filed request.
pub fn filed_toast(kind: &Definition) -> Toast {
    Toast::new(
        ToastKind::Success,
        &format!("{}申请已提交，等待审批", kind.name.zh_cn),
        &format!("Your {} request was sent to the approver", english(kind)),
    )
}

/// The toast for a decision.
pub fn decided_toast(approve: bool) -> Toast {
    if approve {
        Toast::new(ToastKind::Success, "已同意", "Approved")
    } else {
        Toast::new(ToastKind::Success, "已拒绝", "Rejected")
    }
}

/// The toast for a vote on a route's step: recorded, or (`decided`) the vote that ended it.
pub fn voted_toast(approve: bool, decided: bool) -> Toast {
    match (approve, decided) {
        (true, true) => Toast::new(ToastKind::Success, "已同意", "Approved"),
        (false, _) => Toast::new(ToastKind::Success, "已拒绝", "Rejected"),
        (true, false) => Toast::new(
            ToastKind::Success,
            "已同意，等待其他审批人",
            "Approved; waiting for the other approvers",
        ),
    }
}

/// The toast for a vote on a step that is no longer current (decided, or not reached).
pub fn step_decided_toast() -> Toast {
    Toast::new(
        ToastKind::Info,
        "该审批步骤已处理",
        "This step was already decided",
    )
}

/// The toast for a second vote by the same approver in a step.
pub fn already_voted_toast() -> Toast {
    Toast::new(
        ToastKind::Info,
        "你已在此步骤表态",
        "You already voted in this step",
    )
}

/// The toast for a click on an approver's card of a round that was returned for changes.
pub fn returned_toast() -> Toast {
    Toast::new(
        ToastKind::Info,
        "申请已退回修改，请在重新提交后的新卡片上审批",
        "The request was returned for changes; decide on the card of its new submission",
    )
}

/// The toast for 转交 without a person, or to one who is not offered.
pub fn transfer_candidate_toast() -> Toast {
    Toast::new(
        ToastKind::Warning,
        "请从候选人中选择转交对象",
        "Choose whom to transfer to from the candidates",
    )
}

/// The toast after a 转交.
pub fn transferred_toast() -> Toast {
    Toast::new(ToastKind::Success, "已转交", "Transferred")
}

/// The toast after a 退回.
pub fn returned_by_you_toast() -> Toast {
    Toast::new(
        ToastKind::Success,
        "已退回申请人修改",
        "Returned to the requester for changes",
    )
}

/// The toast for a withdrawn request.
pub fn withdrawn_toast() -> Toast {
    Toast::new(ToastKind::Success, "已撤回申请", "Request withdrawn")
}

/// The toast for a click on an approver's card by anyone but a listed approver.
pub fn not_approver_toast() -> Toast {
    Toast::new(
        ToastKind::Warning,
        "仅审批人可以处理此申请",
        "Only an approver can decide this request",
    )
}

/// Whether `definition`'s cards fit Feishu's limits (≤ 200 components, 30 KB: `cards::Card::
/// validate`) at their largest: the form, and the requester's and an approver's card with every
/// field at its longest, every option chosen, 20 approvers and a full comment. The reason when
/// they do not.
pub fn check_fits(definition: &Definition) -> Result<(), String> {
    form_card(definition)
        .validate()
        .map_err(|e| format!("its form does not fit a card: {e}"))?;
    // The widest character after escaping: `-` becomes `&#45;` in card markdown.
    let long = |n: u32| "-".repeat(n as usize);
    let mut values = Map::new();
    for field in &definition.fields {
        let value = match field.field_type {
            FieldType::Text | FieldType::Textarea => Value::from(long(field.max_len())),
            FieldType::Number | FieldType::Amount => Value::from("-999999999999999.99"),
            FieldType::Select => Value::from(
                field
                    .options
                    .iter()
                    .max_by_key(|c| c.label.zh_cn.len() + c.label.en_us.len())
                    .map(|c| c.value.clone())
                    .unwrap_or_default(),
            ),
            FieldType::MultiSelect => Value::Array(
                field
                    .options
                    .iter()
                    .map(|c| Value::from(c.value.as_str()))
                    .collect(),
            ),
            FieldType::Date => Value::from("2026-12-31"),
            FieldType::DateRange => serde_json::json!({"start": "2026-12-01", "end": "2026-12-31"}),
            FieldType::Checkbox => Value::Bool(true),
        };
        values.insert(field.name.clone(), value);
    }
    let approvers: Vec<String> = (0..crate::config::MAX_APPROVERS)
        .map(|i| format!("ou_{i:032x}"))
        .collect();
    let data = ApprovalData {
        submitted_by: Some(approvers[0].clone()),
        submitted_at: Some(0),
        approvers: approvers.clone(),
        values: Some(values),
        comment: Some(long(MAX_REASON_CHARS as u32)),
        // A timeline at its longest: as many lines as a card shows, each a 转交 with a comment.
        audit: (0..MAX_TIMELINE_LINES as i64 + 1)
            .map(|i| AuditEntry {
                at: i,
                by: Some(approvers[0].clone()),
                action: AuditAction::Transferred,
                to: vec![approvers[1].clone()],
                comment: Some(long(TIMELINE_COMMENT_CHARS as u32)),
            })
            .collect(),
        ..ApprovalData::default()
    };
    // Its route at its largest: every step with all its approvers, each voted with a comment.
    let mut data = data;
    data.route = definition
        .steps
        .iter()
        .map(|step| {
            let count = match &step.approvers {
                Some(super::definition::Approvers::OpenIds { open_ids }) => open_ids.len(),
                _ => 1,
            };
            let approvers: Vec<String> = (0..count).map(|i| format!("ou_{i:032x}")).collect();
            StepState {
                id: step.id.clone(),
                mode: step.mode,
                outcome: StepOutcome::Approved,
                votes: approvers
                    .iter()
                    .map(|by| super::machine::Vote {
                        by: by.clone(),
                        approve: true,
                        comment: Some(long(ROUTE_COMMENT_CHARS as u32)),
                        at: 0,
                    })
                    .collect(),
                approvers,
                automatic: false,
            }
        })
        .collect();
    let filed = ApprovalStatus::of(definition.id, Stage::Filed);
    request_card(definition, filed, &data, &approvers[0], &TimeZone::UTC)
        .validate()
        .map_err(|e| format!("a request's card does not fit at the largest input: {e}"))?;
    // The approver's card: the same request with the comment form and its two buttons.
    data.definition = Some(super::definition::DefinitionRef::new(definition.id, 0));
    let request = CardState {
        card_key: "om_check".to_owned(),
        version: 0,
        sequence: 0,
        chat_id: String::new(),
        requester_open_id: approvers[0].clone(),
        source_message_id: None,
        message_id: None,
        card_id: None,
        delivery: crate::config::CardDelivery::Message,
        kind: super::machine::CARD_KIND.to_owned(),
        status: filed.stored(),
        update_token: None,
        data: data.to_value(),
        created_at: 0,
        updated_at: 0,
        list_key: None,
    };
    let mut catalog = Catalog::builtin();
    catalog.insert(
        super::definition::DefinitionRef::new(definition.id, 0),
        std::sync::Arc::new(definition.clone()),
    );
    review_card(&request, None, &catalog, &TimeZone::UTC)
        .map_err(|e| e.to_string())?
        .validate()
        .map_err(|e| format!("an approver's card does not fit at the largest input: {e}"))?;
    // And while their vote is due: the comment, 同意 / 拒绝 / 退回, and 转交 with every candidate.
    let mut waiting = data.clone();
    let viewer_id = waiting
        .route
        .first()
        .and_then(|s| s.approvers.first().cloned())
        .unwrap_or_else(|| approvers[1].clone());
    if let Some(first) = waiting.route.first_mut() {
        first.outcome = StepOutcome::Waiting;
        first.votes.retain(|v| v.by != viewer_id);
    }
    let viewer = ReviewData {
        request_key: request.card_key.clone(),
        approver: viewer_id,
        step: waiting.route.first().map(|s| s.id.clone()),
        cc: None,
        round: 0,
        candidates: (0..super::definition::MAX_TRANSFER_CANDIDATES)
            .map(|i| format!("ou_{:032x}", i + 1000))
            .collect(),
    };
    let request = CardState {
        data: waiting.to_value(),
        ..request
    };
    review_card(&request, Some(&viewer), &catalog, &TimeZone::UTC)
        .map_err(|e| e.to_string())?
        .validate()
        .map_err(|e| format!("an approver's card does not fit with its buttons: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::machine::{LeaveType, RequestForm};
    use super::*;
    use crate::cards::{CardError, MAX_CARD_BYTES, MAX_COMPONENTS};
    use serde_json::json;

    const NOW: EpochMillis = 1_732_233_600_734;

    fn shanghai() -> TimeZone {
        TimeZone::get(crate::config::DEFAULT_TIME_ZONE).unwrap()
    }

    static BUILTIN: std::sync::LazyLock<Catalog> = std::sync::LazyLock::new(Catalog::builtin);

    fn def(kind: RequestKind) -> &'static Definition {
        BUILTIN.current_of(kind).unwrap().definition.as_ref()
    }

    fn view(request: RequestKind) -> RequestView<'static> {
        RequestView {
            request: def(request),
            submitted_by: Some("ou_84aad35d084aa403a838cf73ee18467"),
            submitted_at: "11-22 08:00",
            automatic: true,
        }
    }

    fn all_statuses() -> Vec<ApprovalStatus> {
        let mut all = vec![ApprovalStatus::Pending, ApprovalStatus::Expired];
        for kind in [RequestKind::LEAVE, RequestKind::WORK_OVERTIME] {
            all.extend(Stage::ALL.map(|stage| ApprovalStatus::of(kind, stage)));
        }
        all
    }

    fn all_cards() -> Vec<(&'static str, Card)> {
        let mut cards = vec![
            ("pending", pending_card(&BUILTIN)),
            ("expired", expired_card()),
        ];
        for request in [RequestKind::LEAVE, RequestKind::WORK_OVERTIME] {
            cards.push(("submitted", submitted_card(&view(request), &BUILTIN)));
            cards.push(("approved", approved_card(&view(request), "11-22 08:01")));
        }
        cards
    }

    /// Every text of every card in both languages: Chinese in `content` and `zh_cn`, and an
    /// English `en_us` that holds no Chinese (user text and ids aside, which none of these have).
    #[test]
    fn every_text_of_every_card_speaks_both_languages() {
        fn texts(value: &Value, out: &mut Vec<Value>) {
            match value {
                Value::Object(map) => {
                    if map.contains_key("content") && map.get("tag") != Some(&json!("hr")) {
                        out.push(value.clone());
                    }
                    for child in map.values() {
                        texts(child, out);
                    }
                }
                Value::Array(list) => list.iter().for_each(|v| texts(v, out)),
                _ => {}
            }
        }
        let tz = shanghai();
        let mut cards = all_cards();
        cards.push(("form leave", form_card(def(RequestKind::LEAVE))));
        cards.push(("form overtime", form_card(def(RequestKind::WORK_OVERTIME))));
        cards.push(("welcome", welcome_card()));
        cards.push(("list", my_requests_card(&[], &BUILTIN, &tz)));
        cards.push(("pending list", pending_card_list(&[], &BUILTIN, &tz)));
        for (name, card) in cards {
            let mut found = Vec::new();
            texts(&card.to_value(), &mut found);
            assert!(!found.is_empty());
            for text in found {
                let content = text["content"].as_str().unwrap();
                assert_eq!(text["i18n_content"]["zh_cn"], content, "{name}: {text}");
                let en = text["i18n_content"]["en_us"].as_str().unwrap_or_default();
                assert!(!en.is_empty(), "{name}: no English in {text}");
                assert!(
                    !en.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                    "{name}: Chinese in the English {en:?}"
                );
            }
        }
    }

    #[test]
    fn pending_card_is_the_tutorials_approval_card() {
        let card = pending_card(&BUILTIN).to_value();
        assert_eq!(card["schema"], "2.0");
        assert_eq!(card["config"]["update_multi"], true);
        assert_eq!(
            card["header"]["title"],
            json!({"tag": "plain_text", "content": "审批",
                   "i18n_content": {"zh_cn": "审批", "en_us": "Approval"}})
        );
        assert_eq!(
            card["body"]["elements"][0]["text"],
            json!({"tag": "plain_text", "content": "请选择需要的操作",
                   "i18n_content": {"zh_cn": "请选择需要的操作", "en_us": "Choose what you need"}})
        );
        let columns = &card["body"]["elements"][1]["columns"];
        assert_eq!(columns[0]["elements"][0]["text"]["content"], "加班");
        assert_eq!(
            columns[0]["elements"][0]["behaviors"],
            json!([{"type": "callback", "value": {"type": "work_overtime"}}])
        );
        assert_eq!(columns[1]["elements"][0]["text"]["content"], "请假");
        assert_eq!(
            columns[1]["elements"][0]["behaviors"],
            json!([{"type": "callback", "value": {"type": "leave"}}])
        );
        assert!(columns[1]["elements"][0].get("disabled").is_none());
    }

    #[test]
    fn submitted_card_disables_both_buttons_and_shows_the_request() {
        let card = submitted_card(&view(RequestKind::LEAVE), &BUILTIN);
        let value = card.to_value();
        assert_eq!(
            value["header"]["text_tag_list"][0]["text"]["content"],
            "请假"
        );
        for id in [ids::BTN_LEAVE, ids::BTN_OVERTIME] {
            let Some(Element::Button(button)) = card.find(id) else {
                panic!("{id}")
            };
            assert!(button.disabled);
            assert_eq!(
                button.disabled_tips.as_ref().unwrap().content,
                "已提交请假申请"
            );
        }
        let Some(Element::Markdown(status)) = card.find(ids::STATUS) else {
            panic!()
        };
        assert_eq!(status.content, "<text_tag color='orange'>审批中</text_tag>");
        let Some(Element::Markdown(line)) = card.find(ids::TL_SUBMITTED) else {
            panic!()
        };
        assert_eq!(
            line.content,
            "11-22 08:00 · <at id=ou_84aad35d084aa403a838cf73ee18467></at> 提交请假申请，等待审批"
        );
    }

    #[test]
    fn approved_cards_say_the_tutorials_words() {
        for (request, words) in [
            (RequestKind::LEAVE, "请假通过"),
            (RequestKind::WORK_OVERTIME, "加班通过"),
        ] {
            let card = approved_card(&view(request), "11-22 08:01");
            assert!(card.find(ids::ACTIONS).is_none(), "no buttons once decided");
            let Some(Element::Markdown(status)) = card.find(ids::STATUS) else {
                panic!()
            };
            assert!(status.content.contains(words));
            // The tutorial's card is decided by the simulated approver, and says so.
            assert_eq!(
                card.config.summary.as_ref().unwrap().content,
                format!("{words}（自动审批）")
            );
            let Some(Element::Div(prompt)) = card.find(ids::PROMPT) else {
                panic!()
            };
            assert!(prompt.text.content.contains(AUTOMATIC_NOTICE), "{prompt:?}");
            let manual = approved_card(
                &RequestView {
                    automatic: false,
                    ..view(request)
                },
                "11-22 08:01",
            );
            assert_eq!(manual.config.summary.as_ref().unwrap().content, words);
            let Some(Element::Markdown(note)) = card.find(ids::NOTE) else {
                panic!()
            };
            assert!(
                note.content.starts_with(NOTE_PREFIX) && note.content.len() > NOTE_PREFIX.len()
            );
        }
    }

    #[test]
    fn expired_card_has_no_buttons_and_is_grey() {
        let card = expired_card();
        assert!(card.find(ids::ACTIONS).is_none());
        assert_eq!(card.header.as_ref().unwrap().template, HeaderTemplate::Grey);
    }

    #[test]
    fn every_card_is_valid_small_and_under_the_component_limit() {
        for (name, card) in all_cards() {
            assert_eq!(card.validate(), Ok(()), "{name}");
            let bytes = card.to_json_string().len();
            assert!(bytes < MAX_CARD_BYTES / 10, "{name}: {bytes} bytes");
            assert!(card.component_count() < MAX_COMPONENTS / 10, "{name}");
        }
    }

    #[test]
    fn a_huge_requester_list_would_be_refused_not_sent() {
        let mut card = submitted_card(&view(RequestKind::LEAVE), &BUILTIN);
        for i in 0..200 {
            card.body.elements.push(Element::hr(&format!("x{i}")));
        }
        assert!(matches!(
            card.validate(),
            Err(CardError::TooManyComponents(_))
        ));
    }

    #[test]
    fn element_ids_are_stable_across_states() {
        let submitted = submitted_card(&view(RequestKind::LEAVE), &BUILTIN);
        let approved = approved_card(&view(RequestKind::LEAVE), "11-22 08:01");
        for id in [
            ids::STATUS,
            ids::PROMPT,
            ids::DIVIDER,
            ids::NOTE,
            ids::TL_SUBMITTED,
        ] {
            assert!(
                submitted.find(id).is_some() && approved.find(id).is_some(),
                "{id}"
            );
        }
        assert!(submitted.find(ids::ACTIONS).is_some());
        assert!(
            approved.find(ids::TL_APPROVED).is_some() && submitted.find(ids::TL_APPROVED).is_none()
        );
        assert_eq!(
            submitted.header, approved.header,
            "CardKit element calls cannot change the header"
        );
    }

    #[test]
    fn help_text_lists_the_commands() {
        for command in ["审批", "approval", "帮助", "help"] {
            assert!(HELP_TEXT.contains(command), "{command}");
        }
    }

    #[test]
    fn toasts_have_the_feishu_types() {
        assert_eq!(
            serde_json::to_value(submitted_toast(def(RequestKind::LEAVE))).unwrap()["type"],
            "success"
        );
        assert_eq!(
            serde_json::to_value(unknown_action_toast()).unwrap()["type"],
            "error"
        );
        assert_eq!(
            serde_json::to_value(expired_toast()).unwrap()["type"],
            "warning"
        );
        assert_eq!(
            serde_json::to_value(already_decided_toast("请假通过")).unwrap()["type"],
            "info"
        );
        assert_eq!(
            serde_json::to_value(retry_later_toast()).unwrap()["i18n"]["en_us"],
            "Something went wrong, please retry"
        );
    }

    #[test]
    fn local_time_formatting() {
        let cst = |at| format_local(at, &shanghai());
        assert_eq!(cst(0), "01-01 08:00");
        // 2024-11-22T00:00:00.734Z is 08:00 in Beijing.
        assert_eq!(cst(NOW), "11-22 08:00");
        assert_eq!(cst(1_709_222_399_000), "02-29 23:59"); // 2024-02-29T15:59:59Z
        assert_eq!(cst(1_709_222_400_000), "03-01 00:00");
        assert_eq!(cst(-60_000), "01-01 07:59");
        // Another tenant's zone, with daylight saving: 2024-07-01T12:00Z is 14:00 in Berlin.
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(format_local(1_719_835_200_000, &berlin), "07-01 14:00");
        assert_eq!(format_local(i64::MAX, &berlin), "");
    }

    #[test]
    fn every_status_renders_a_valid_card() {
        let data = ApprovalData {
            submitted_by: Some("ou_x".into()),
            submitted_at: Some(NOW),
            decided_at: Some(NOW + 2_000),
            ..ApprovalData::default()
        };
        for status in all_statuses() {
            let card = render(status, &data, &BUILTIN, &shanghai());
            assert_eq!(card.validate(), Ok(()), "{status:?}");
            assert!(card.to_json_string().contains("审批"), "{status:?}");
        }
        let approved = render(
            ApprovalStatus::approved(RequestKind::WORK_OVERTIME),
            &data,
            &BUILTIN,
            &shanghai(),
        )
        .to_json_string();
        assert!(approved.contains("加班通过") && approved.contains("11-22 08:00"));
    }

    #[test]
    fn the_real_approvals_cards_are_valid_at_the_largest_input_and_keep_buttons_only_while_filed() {
        let long = "长<".repeat(MAX_REASON_CHARS);
        let approvers: Vec<String> = (0..crate::config::MAX_APPROVERS)
            .map(|i| format!("ou_{i:032x}"))
            .collect();
        for form in [
            RequestForm::Leave {
                leave_type: LeaveType::Compensatory,
                start: "2026-12-01".into(),
                end: "2026-12-31".into(),
                reason: long.clone(),
            },
            RequestForm::WorkOvertime {
                date: "2026-12-06".into(),
                hours: "12".into(),
                reason: long.clone(),
            },
        ] {
            let kind = form.kind();
            assert_eq!(form_card(def(kind)).validate(), Ok(()));
            let data = ApprovalData {
                submitted_by: Some(approvers[0].clone()),
                submitted_at: Some(NOW),
                decided_by: Some(approvers[1].clone()),
                decided_at: Some(NOW + 1),
                comment: Some(long.clone()),
                approvers: approvers.clone(),
                values: Some(form.values()),
                definition: Some(crate::approval::definition::DefinitionRef::new(kind, 0)),
                audit: (0..5)
                    .map(|i| AuditEntry {
                        at: NOW + i,
                        by: Some(approvers[0].clone()),
                        action: super::super::machine::AuditAction::Reminded,
                        to: Vec::new(),
                        comment: None,
                    })
                    .collect(),
                ..ApprovalData::default()
            };
            for status in all_statuses()
                .into_iter()
                .filter(|s| s.request() == Some(kind) && s.stage() != Some(Stage::Submitted))
            {
                let mut request = CardState {
                    card_key: "om_1".into(),
                    version: 1,
                    sequence: 0,
                    chat_id: "oc_1".into(),
                    requester_open_id: approvers[0].clone(),
                    source_message_id: None,
                    message_id: Some("om_1".into()),
                    card_id: None,
                    delivery: crate::config::CardDelivery::Message,
                    kind: super::super::machine::CARD_KIND.into(),
                    status: status.stored(),
                    update_token: None,
                    data: data.to_value(),
                    created_at: NOW,
                    updated_at: NOW,
                    list_key: None,
                };
                let mine = render_state(&request, &BUILTIN, &shanghai()).unwrap();
                assert_eq!(mine.validate(), Ok(()), "{status:?}");
                let filed = status.stage() == Some(Stage::Filed);
                let json = mine.to_json_string();
                assert_eq!(
                    json.contains(request_ids::BTN_WITHDRAW),
                    filed,
                    "{status:?}"
                );
                if status.stage() == Some(Stage::Draft) {
                    // Returned for changes: the form filled with what was filed. An input's
                    // `default_value` is plain text (never markup), so it keeps the value as
                    // typed; the returned note's comment is escaped like every markdown text.
                    assert!(json.contains("\"default_value\""), "{status:?}");
                    continue;
                }
                assert!(!json.contains("长<"), "escaped: {status:?}");
                request.data = data.to_value();
                let review = review_card(&request, None, &BUILTIN, &shanghai()).unwrap();
                assert_eq!(review.validate(), Ok(()), "{status:?}");
                let json = review.to_json_string();
                assert_eq!(json.contains(request_ids::BTN_APPROVE), filed, "{status:?}");
                assert_eq!(json.contains(request_ids::BTN_REJECT), filed, "{status:?}");
            }
        }
    }

    const EVERY_TYPE: &str = "definitions:
  - id: trip
    name: {zh_cn: 出差, en_us: Business trip}
    fields:
      - {name: city, type: text, label: 城市, required: true, max_len: 40}
      - {name: plan, type: textarea, label: 行程}
      - {name: nights, type: number, label: 晚数, min: 1, max: 30, step: 1, unit: {zh_cn: 晚, en_us: nights}}
      - {name: budget, type: amount, label: 预算, min: \"0.01\", currency: CNY}
      - {name: class, type: select, label: 舱位, options: [{value: economy, label: 经济舱}]}
      - {name: with, type: multi_select, label: 同行, options: [{value: a, label: 甲}, {value: b, label: 乙}]}
      - {name: leave_on, type: date, label: 出发日期}
      - {name: period, type: date_range, label: 日期, required: true}
      - {name: agreed, type: checkbox, label: 已阅读差旅制度, required: true}
";

    fn trip() -> Definition {
        crate::approval::definition::file::parse(EVERY_TYPE)
            .unwrap()
            .definitions
            .remove(0)
    }

    #[test]
    fn every_field_type_has_its_component_and_its_value_shown() {
        let trip = trip();
        let form = form_card(&trip);
        assert_eq!(form.validate(), Ok(()));
        let json = form.to_value();
        let children = json["body"]["elements"][1]["elements"].as_array().unwrap();
        let named: Vec<(String, String)> = children
            .iter()
            .filter_map(|c| {
                Some((
                    c["tag"].as_str()?.to_owned(),
                    c["name"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let expected = [
            ("input", "city"),
            ("input", "plan"),
            ("input", "nights"),
            ("input", "budget"),
            ("select_static", "class"),
            ("multi_select_static", "with"),
            ("date_picker", "leave_on"),
            ("date_picker", "start_period"),
            ("date_picker", "end_period"),
            ("checker", "agreed"),
            ("button", "btn_file"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(t, n)| (t.to_string(), n.to_string()))
            .collect();
        assert_eq!(named, expected);
        assert_eq!(children[3]["input_type"], "multiline_text", "{json}");
        let values = json!({
            "city": "<at id=all></at>", "plan": "**x**", "nights": "3", "budget": "12.50",
            "class": "economy", "with": ["b", "a"], "leave_on": "2026-12-01",
            "period": {"start": "2026-12-01", "end": "2026-12-04"}, "agreed": true,
            "gone": "a field of another version"
        });
        let lines = form_lines(&trip, values.as_object().unwrap(), Lang::ZhCn);
        for shown in [
            "**晚数**：3 晚",
            "**预算**：12.50 CNY",
            "**舱位**：经济舱",
            "**同行**：乙、甲",
            "**日期**：2026-12-01 至 2026-12-04",
            "**已阅读差旅制度**：是",
        ] {
            assert!(lines.contains(shown), "{shown} in {lines}");
        }
        assert!(
            !lines.contains("<at") && !lines.contains("**x**"),
            "{lines}"
        );
        assert!(
            lines.contains("gone"),
            "a value its version does not define is still shown"
        );
        let en = form_lines(&trip, values.as_object().unwrap(), Lang::EnUs);
        assert!(en.contains("3 nights") && en.contains(" to "), "{en}");
    }

    #[test]
    fn more_types_than_fit_are_a_select_and_one_button() {
        let mut current: Vec<_> = Catalog::builtin().current().to_vec();
        for id in ["trip", "expense", "purchase"] {
            let mut d = trip();
            d.id = RequestKind::new(id).unwrap();
            d.name = Text::new(id, id);
            current.push(crate::approval::definition::Versioned {
                version: 1,
                definition: std::sync::Arc::new(d),
            });
        }
        let catalog = Catalog::with_current(current);
        let card = pending_card(&catalog);
        assert_eq!(card.validate(), Ok(()));
        let Some(Element::Form(form)) = card.find(ids::ACTIONS) else {
            panic!("a form: {}", card.to_json_string())
        };
        let Element::SelectStatic(select) = &form.elements[0] else {
            panic!()
        };
        assert_eq!(select.name, fields::DEFINITION);
        let values: Vec<_> = select.options.iter().map(|o| o.value.as_str()).collect();
        assert_eq!(
            values,
            ["leave", "work_overtime", "trip", "expense", "purchase"]
        );
        assert!(card.find(ids::BTN_CHOOSE).is_some());
        // Once used, only the chosen type's button is left, disabled.
        let expense = catalog
            .current_of(RequestKind::new("expense").unwrap())
            .unwrap();
        let view = RequestView {
            request: &expense.definition,
            submitted_by: None,
            submitted_at: "11-22 08:00",
            automatic: true,
        };
        let used = submitted_card(&view, &catalog);
        assert_eq!(used.validate(), Ok(()));
        let Some(Element::Button(button)) = used.find("btn_expense") else {
            panic!("{}", used.to_json_string())
        };
        assert!(button.disabled);
        assert!(used.find("btn_leave").is_none());
    }

    #[test]
    fn a_definition_whose_cards_cannot_fit_is_refused() {
        assert_eq!(check_fits(&trip()), Ok(()));
        for builtin in Catalog::builtin().current() {
            assert_eq!(check_fits(&builtin.definition), Ok(()));
        }
        let mut huge = trip();
        huge.fields = (0..40)
            .map(|i| {
                let mut f = Field::new(
                    &format!("f{i}"),
                    FieldType::Textarea,
                    Text::new("长", "long"),
                    true,
                );
                f.max_len = Some(1000);
                f
            })
            .collect();
        let why = check_fits(&huge).unwrap_err();
        assert!(why.contains("does not fit"), "{why}");
        let text = format!(
            "definitions:\n  - id: huge\n    name: 大\n    fields:\n{}",
            (0..40)
                .map(|i| format!(
                    "      - {{name: f{i}, type: textarea, label: 长, max_len: 1000}}\n"
                ))
                .collect::<String>()
        );
        let problems = crate::approval::load_definitions(&text).unwrap_err();
        assert!(
            problems[0].to_string().starts_with("definition `huge`"),
            "{problems:?}"
        );
    }

    #[test]
    fn an_expired_form_that_was_never_filed_shows_the_expired_card() {
        let data = ApprovalData {
            definition: Some(crate::approval::definition::DefinitionRef::new(
                RequestKind::LEAVE,
                0,
            )),
            ..ApprovalData::default()
        };
        assert_eq!(
            render(ApprovalStatus::Expired, &data, &BUILTIN, &shanghai()),
            expired_card()
        );
    }

    #[test]
    fn a_route_too_large_for_a_card_is_refused_and_a_real_one_fits() {
        let ids = |step: usize| {
            (0..20)
                .map(|i| format!("ou_{:032x}", step * 100 + i))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let route = |steps: usize| {
            let lines: String = (0..steps)
                .map(|n| {
                    format!(
                        "      - {{id: s{n}, approvers: {{open_ids: [{}]}}, mode: all}}\n",
                        ids(n)
                    )
                })
                .collect();
            format!(
                "definitions:\n  - id: big\n    name: 大\n    fields: [{{name: amount, type: amount, label: 金额}}]\n    steps:\n{lines}"
            )
        };
        assert_eq!(crate::approval::load_definitions(&route(2)).err(), None);
        let problems = crate::approval::load_definitions(&route(10)).unwrap_err();
        assert!(problems[0].message.contains("does not fit"), "{problems:?}");
    }

    fn hostile_ids() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            any::<String>(),
            Just("all".to_owned()),
            Just("</at><font color='red'>x</font>".to_owned()),
            Just("ou_x></at><at id=all></at>".to_owned()),
            "[a-z_<>/='\" ]{0,40}",
            (0usize..45_000).prop_map(|n| "ou_".to_owned() + &"9".repeat(n)),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Any requester string renders every card valid, under 30 KB, and exactly as if no
        /// requester were known, unless it is a well-formed open_id (then only its mention differs).
        #[test]
        fn hostile_requesters_never_reach_card_markup(id in hostile_ids()) {
            for request in [RequestKind::LEAVE, RequestKind::WORK_OVERTIME] {
                let with = RequestView { request: def(request), submitted_by: Some(&id), submitted_at: "11-22 08:00", automatic: true };
                let without = RequestView { submitted_by: None, ..with };
                for (a, b) in [
                    (submitted_card(&with, &BUILTIN), submitted_card(&without, &BUILTIN)),
                    (approved_card(&with, "11-22 08:01"), approved_card(&without, "11-22 08:01")),
                ] {
                    proptest::prop_assert_eq!(a.validate(), Ok(()));
                    let json = a.to_json_string();
                    proptest::prop_assert!(json.len() <= MAX_CARD_BYTES);
                    match text::mention(&id) {
                        None => proptest::prop_assert_eq!(&a, &b),
                        Some(at) => {
                            proptest::prop_assert!(crate::cards::text::FeishuId::OpenId.is_valid(&id));
                            proptest::prop_assert_eq!(json.replace(&format!("{at} "), ""), b.to_json_string());
                        }
                    }
                }
            }
        }
    }
}
