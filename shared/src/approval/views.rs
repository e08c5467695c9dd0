//! What each approval card looks like (pending, submitted, approved, expired), its toasts and its
//! texts, and [`render`]: the card for a stored status.
//!
//! Layout and `element_id`s are stable: the approval's CardKit walk (`scheduled`) turns a submitted
//! card into the approved one element by element, and a test checks that it lands exactly on
//! [`approved_card`].

use super::action::ApprovalAction;
use super::machine::{
    status_of, ApprovalData, ApprovalStatus, AuditEntry, DomainError, LeaveType, RequestForm,
    RequestKind, ReviewData, Stage, REVIEW_KIND,
};
use super::request::{fields, FormProblem, MAX_REASON_CHARS};
use crate::cards::text;
use crate::cards::{
    Behavior, Button, ButtonType, Card, CardBody, CardConfig, CardHeader, Column, ColumnSet,
    DatePicker, Element, Form, HeaderTemplate, Input, PlainText, Schema, SelectOption,
    SelectStatic, Summary, TagColor, TextTag, Toast, ToastKind,
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
    /// The button row (`column_set`).
    pub const ACTIONS: &str = "actions";
    pub const COL_OVERTIME: &str = "col_overtime";
    pub const COL_LEAVE: &str = "col_leave";
    pub const BTN_OVERTIME: &str = "btn_overtime";
    pub const BTN_LEAVE: &str = "btn_leave";
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
/// The pending card's text, as in the tutorial.
pub const PROMPT_PENDING: &str = "请选择需要的操作";
/// The decision note's fixed prefix; the note is typed out after it.
pub const NOTE_PREFIX: &str = "**审批意见**：";

/// What a submitted or approved card shows about the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestView<'a> {
    pub request: RequestKind,
    /// Who clicked; shown as an @mention.
    pub submitted_by: Option<&'a str>,
    /// When, already formatted (e.g. `11-22 08:00`).
    pub submitted_at: &'a str,
}

fn header(tags: Vec<TextTag>, template: HeaderTemplate) -> Option<CardHeader> {
    Some(CardHeader {
        title: PlainText::new(TITLE),
        subtitle: None,
        text_tag_list: tags,
        template,
    })
}

fn request_header(request: RequestKind) -> Option<CardHeader> {
    let tag = TextTag {
        text: PlainText::new(request.label()),
        color: TagColor::Blue,
    };
    header(vec![tag], HeaderTemplate::Blue)
}

fn config(summary: String) -> CardConfig {
    CardConfig {
        update_multi: true,
        streaming_mode: Some(false),
        summary: Some(Summary::new(summary)),
    }
}

/// The status tag's markdown: `<text_tag color='…'>…</text_tag>`.
pub fn status_tag(text: &str, color: TagColor) -> String {
    format!("<text_tag color='{}'>{text}</text_tag>", color.as_str())
}

fn button(
    id: &str,
    request: RequestKind,
    button_type: ButtonType,
    disabled_tips: Option<&str>,
) -> Column {
    let column_id = match request {
        RequestKind::Leave => ids::COL_LEAVE,
        RequestKind::WorkOvertime => ids::COL_OVERTIME,
    };
    Column {
        element_id: column_id.to_owned(),
        width: Some("auto".to_owned()),
        elements: vec![Element::Button(Button {
            element_id: id.to_owned(),
            button_type,
            text: PlainText::new(request.label()),
            disabled: disabled_tips.is_some(),
            disabled_tips: disabled_tips.map(PlainText::new),
            name: None,
            form_action_type: None,
            behaviors: vec![Behavior::Callback {
                value: ApprovalAction::Submit(request).value(),
            }],
        })],
    }
}

/// The button row; `disabled_tips` set means both buttons are disabled with that tip.
fn actions(disabled_tips: Option<&str>) -> Element {
    Element::ColumnSet(ColumnSet {
        element_id: ids::ACTIONS.to_owned(),
        flex_mode: Some("none".to_owned()),
        horizontal_spacing: Some("8px".to_owned()),
        columns: vec![
            button(
                ids::BTN_OVERTIME,
                RequestKind::WorkOvertime,
                ButtonType::Default,
                disabled_tips,
            ),
            button(
                ids::BTN_LEAVE,
                RequestKind::Leave,
                ButtonType::Primary,
                disabled_tips,
            ),
        ],
    })
}

fn submitted_line(view: &RequestView<'_>, waiting: bool) -> String {
    // Only a well-formed open_id becomes a mention (not `all`, not markup, not 40 KB).
    let who = view
        .submitted_by
        .and_then(text::mention)
        .map(|at| at + " ")
        .unwrap_or_default();
    let suffix = if waiting { "，等待审批" } else { "" };
    format!(
        "{} · {who}提交{}申请{suffix}",
        view.submitted_at,
        view.request.label()
    )
}

/// The decision line the CardKit plan adds under the request line.
pub fn approved_line(request: RequestKind, approved_at: &str) -> Element {
    Element::markdown(
        ids::TL_APPROVED,
        format!("{approved_at} · 审批通过：{}通过", request.label()),
    )
}

/// The approval card as first sent: title 审批, text 请选择需要的操作, buttons 加班 and 请假.
pub fn pending_card() -> Card {
    Card {
        schema: Schema::V2,
        config: config(format!("{TITLE}：{PROMPT_PENDING}")),
        header: header(vec![], HeaderTemplate::Blue),
        body: CardBody {
            elements: vec![Element::div(ids::PROMPT, PROMPT_PENDING), actions(None)],
        },
    }
}

/// After a click: status 审批中, buttons disabled, an empty decision note, the request line.
pub fn submitted_card(view: &RequestView<'_>) -> Card {
    let label = view.request.label();
    let tips = format!("已提交{label}申请");
    Card {
        schema: Schema::V2,
        config: config(format!("{label}申请审批中")),
        header: request_header(view.request),
        body: CardBody {
            elements: vec![
                Element::markdown(ids::STATUS, status_tag("审批中", TagColor::Orange)),
                Element::div(ids::PROMPT, format!("已提交{label}申请，等待审批")),
                actions(Some(&tips)),
                Element::hr(ids::DIVIDER),
                Element::markdown(ids::NOTE, NOTE_PREFIX),
                Element::markdown(ids::TL_SUBMITTED, submitted_line(view, true)),
            ],
        },
    }
}

/// The tutorial's 请假通过 / 加班通过 card: status tag, note, timeline; no buttons.
pub fn approved_card(view: &RequestView<'_>, approved_at: &str) -> Card {
    let label = view.request.label();
    Card {
        schema: Schema::V2,
        config: config(format!("{label}通过")),
        header: request_header(view.request),
        body: CardBody {
            elements: vec![
                Element::markdown(
                    ids::STATUS,
                    status_tag(&format!("{label}通过"), TagColor::Green),
                ),
                Element::div(ids::PROMPT, format!("{label}申请已通过")),
                Element::hr(ids::DIVIDER),
                Element::markdown(
                    ids::NOTE,
                    format!("{NOTE_PREFIX}{}", view.request.decision_note()),
                ),
                Element::markdown(ids::TL_SUBMITTED, submitted_line(view, false)),
                approved_line(view.request, approved_at),
            ],
        },
    }
}

/// An undecided card past its time to live: grey, no buttons.
pub fn expired_card() -> Card {
    Card {
        schema: Schema::V2,
        config: config("审批已过期".to_owned()),
        header: header(
            vec![TextTag {
                text: PlainText::new("已过期"),
                color: TagColor::Neutral,
            }],
            HeaderTemplate::Grey,
        ),
        body: CardBody {
            elements: vec![
                Element::markdown(ids::STATUS, status_tag("已过期", TagColor::Neutral)),
                Element::div(ids::PROMPT, "该审批已过期，如需申请请重新发送「审批」"),
            ],
        },
    }
}

fn english(request: RequestKind) -> &'static str {
    match request {
        RequestKind::Leave => "leave",
        RequestKind::WorkOvertime => "overtime",
    }
}

/// The toast for an accepted click.
pub fn submitted_toast(request: RequestKind) -> Toast {
    Toast::new(
        ToastKind::Success,
        &format!("已提交{}申请", request.label()),
        &format!("Your {} request was submitted", english(request)),
    )
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

/// How many requests 我的申请 shows, and pending ones 待我审批 lists (and links).
pub const LIST_LENGTH: usize = 10;

/// One line of a list: when, what, the dates, the status.
fn list_line(request: &CardState, time_zone: &TimeZone, with_requester: bool) -> String {
    let status = ApprovalStatus::parse(&request.status);
    let data = ApprovalData::from_value(&request.data).unwrap_or_default();
    let kind = status
        .and_then(ApprovalStatus::request)
        .or_else(|| data.form.as_ref().map(RequestForm::kind))
        .map(RequestKind::label)
        .unwrap_or("审批");
    let when = format_local(data.submitted_at.unwrap_or(request.created_at), time_zone);
    let detail = match &data.form {
        Some(RequestForm::Leave { start, end, .. }) => {
            format!(" {} 至 {}", date_text(start), date_text(end))
        }
        Some(RequestForm::WorkOvertime { date, hours, .. }) => {
            format!(" {} {} 小时", date_text(date), hours_text(hours))
        }
        None => String::new(),
    };
    let outcome = status.map(ApprovalStatus::outcome_text).unwrap_or("未知");
    let from = if with_requester {
        format!("{} ", who(&request.requester_open_id))
    } else {
        String::new()
    };
    format!("· {when} {from}{kind}{detail} · {outcome}")
}

fn list_card(title: &str, summary: String, lines: Vec<String>, empty: &str) -> Card {
    let body = if lines.is_empty() {
        empty.to_owned()
    } else {
        lines.join("\n")
    };
    Card {
        schema: Schema::V2,
        config: config(summary),
        header: Some(CardHeader {
            title: PlainText::new(title),
            subtitle: None,
            text_tag_list: vec![],
            template: HeaderTemplate::Blue,
        }),
        body: CardBody {
            elements: vec![Element::markdown("list", body)],
        },
    }
}

/// 我的申请: the requester's requests (newest first), one line each with its status.
pub fn my_requests_card(requests: &[CardState], time_zone: &TimeZone) -> Card {
    let lines: Vec<String> = requests
        .iter()
        .take(LIST_LENGTH)
        .map(|r| list_line(r, time_zone, false))
        .collect();
    list_card(
        "我的申请",
        format!("我的申请（{} 条）", lines.len()),
        lines,
        "你还没有申请。发送「审批」发起一个。",
    )
}

/// 待我审批: the filed requests waiting for this approver, newest first; each card is linked by a
/// reply to it.
pub fn pending_card_list(requests: &[CardState], time_zone: &TimeZone) -> Card {
    let lines: Vec<String> = requests
        .iter()
        .take(LIST_LENGTH)
        .map(|r| list_line(r, time_zone, true))
        .collect();
    list_card(
        "待我审批",
        format!("待我审批（{} 条）", lines.len()),
        lines,
        "没有等你审批的申请。",
    )
}

/// The reply to an approver's card that links it from 待我审批.
pub const PENDING_LINK_TEXT: &str = "待你审批：请在这张卡片中处理。";

/// The welcome card of a user's p2p chat with the bot: what it does, its commands, and 发起审批.
pub fn welcome_card() -> Card {
    Card {
        schema: Schema::V2,
        config: config("审批助手：发起和处理请假、加班审批".to_owned()),
        header: Some(CardHeader {
            title: PlainText::new("审批助手"),
            subtitle: None,
            text_tag_list: vec![],
            template: HeaderTemplate::Blue,
        }),
        body: CardBody {
            elements: vec![
                Element::markdown(
                    "welcome",
                    "你好！我可以帮你发起和处理请假、加班审批。\n\
                     **指令**\n\
                     · 审批：发起审批\n\
                     · 我的申请：你最近的 10 条申请\n\
                     · 待我审批：等你处理的申请\n\
                     · 帮助：查看说明",
                ),
                Element::Button(Button {
                    element_id: "btn_start".to_owned(),
                    button_type: ButtonType::PrimaryFilled,
                    text: PlainText::new("发起审批"),
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

/// The text sent together with the approval card.
pub const APPROVAL_REPLY_TEXT: &str = "收到，请在下方审批卡片中选择需要的操作。";

/// The help text: every command the bot understands.
pub const HELP_TEXT: &str = "我是审批机器人，支持以下指令：\n\
· 审批（approval）：发起审批，在卡片中选择请假或加班\n\
· 我的申请（my requests）：你最近的 10 条申请\n\
· 待我审批（pending）：等你处理的申请\n\
· 帮助（help）：查看本说明";

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

/// The card for a status and its data: what every delivery path shows.
pub fn render(status: ApprovalStatus, data: &ApprovalData, time_zone: &TimeZone) -> Card {
    let local = |at| format_local(at, time_zone);
    let submitted_at = data.submitted_at.map(local).unwrap_or_default();
    let view = |kind| RequestView {
        request: kind,
        submitted_by: data.submitted_by.as_deref(),
        submitted_at: &submitted_at,
    };
    let requester = data.submitted_by.as_deref().unwrap_or_default();
    match status {
        ApprovalStatus::Pending => pending_card(),
        // A filed request that expired keeps its fields, decision line and timeline.
        ApprovalStatus::Expired => match &data.form {
            Some(form) => request_card(form.kind(), status, data, requester, time_zone),
            None => expired_card(),
        },
        ApprovalStatus::LeaveDraft | ApprovalStatus::OvertimeDraft => {
            form_card(status.request().unwrap_or(RequestKind::Leave))
        }
        _ if data.form.is_some()
            || status
                .stage()
                .is_some_and(|s| s != Stage::Submitted && s != Stage::Approved) =>
        {
            let kind = status.request().unwrap_or(RequestKind::Leave);
            request_card(kind, status, data, requester, time_zone)
        }
        ApprovalStatus::LeaveSubmitted | ApprovalStatus::OvertimeSubmitted => {
            let kind = status.request().unwrap_or(RequestKind::Leave);
            submitted_card(&view(kind))
        }
        _ => {
            let kind = status.request().unwrap_or(RequestKind::Leave);
            let decided_at = data.decided_at.map(local).unwrap_or_default();
            approved_card(&view(kind), &decided_at)
        }
    }
}

/// Renders a stored approval card (the requester's; an approver's card needs its request:
/// [`render_card`]).
pub fn render_state(state: &CardState, time_zone: &TimeZone) -> Result<Card, DomainError> {
    let data = ApprovalData::from_value(&state.data)?;
    Ok(render(status_of(state)?, &data, time_zone))
}

/// Renders any stored card of an approval: the requester's card, or an approver's card
/// ([`REVIEW_KIND`]) from the `request` it shows (the requester's card state).
pub fn render_card(
    state: &CardState,
    request: Option<&CardState>,
    time_zone: &TimeZone,
) -> Result<Card, DomainError> {
    if state.kind != REVIEW_KIND {
        return render_state(state, time_zone);
    }
    let review = ReviewData::of(state)?;
    let request = request
        .filter(|r| r.card_key == review.request_key)
        .ok_or_else(|| {
            DomainError::CorruptState(format!("request {} not given", review.request_key))
        })?;
    review_card(request, time_zone)
}

// ---------------------------------------------------------------------------------------------
// The real approval: the request form, the requester's card, the approvers' cards

/// `element_id`s of the real approval's cards.
pub mod request_ids {
    pub const FIELDS: &str = "fields";
    pub const PEOPLE: &str = "people";
    pub const DECISION: &str = "decision";
    pub const TIMELINE: &str = "timeline";
    pub const FORM: &str = "request_form";
    pub const REVIEW_FORM: &str = "review_form";
    pub const BTN_FILE: &str = "btn_file";
    pub const BTN_APPROVE: &str = "btn_approve";
    pub const BTN_REJECT: &str = "btn_reject";
    pub const BTN_WITHDRAW: &str = "btn_withdraw";
}

fn label(id: &str, text: &str) -> Element {
    Element::markdown(id, format!("**{text}**"))
}

fn submit_button(id: &str, text: &str, button_type: ButtonType, action: ApprovalAction) -> Element {
    Element::Button(Button {
        element_id: id.to_owned(),
        button_type,
        text: PlainText::new(text),
        disabled: false,
        disabled_tips: None,
        name: Some(id.to_owned()),
        form_action_type: Some("submit".to_owned()),
        behaviors: vec![Behavior::Callback {
            value: action.value(),
        }],
    })
}

fn date_picker(name: &str, placeholder: &str) -> Element {
    Element::DatePicker(DatePicker {
        element_id: name.to_owned(),
        name: name.to_owned(),
        required: true,
        initial_date: None,
        placeholder: PlainText::new(placeholder),
    })
}

fn input(name: &str, placeholder: &str, required: bool, multiline: bool) -> Element {
    Element::Input(Input {
        element_id: name.to_owned(),
        name: name.to_owned(),
        required,
        placeholder: PlainText::new(placeholder),
        max_length: Some(u32::try_from(MAX_REASON_CHARS).unwrap_or(1000)),
        input_type: multiline.then(|| "multiline_text".to_owned()),
        label: None,
    })
}

/// The requester's card after 请假 / 加班 with an approver: the request form (Feishu's form,
/// select, date picker and input components; values come back in `form_value` on 提交).
pub fn form_card(kind: RequestKind) -> Card {
    let mut children = Vec::new();
    match kind {
        RequestKind::Leave => {
            children.push(label("lbl_type", "请假类型"));
            children.push(Element::SelectStatic(SelectStatic {
                element_id: fields::LEAVE_TYPE.to_owned(),
                name: fields::LEAVE_TYPE.to_owned(),
                required: true,
                placeholder: PlainText::new("请选择请假类型"),
                initial_option: None,
                options: LeaveType::ALL
                    .into_iter()
                    .map(|t| SelectOption {
                        text: PlainText::new(t.label()),
                        value: t.value().to_owned(),
                    })
                    .collect(),
            }));
            children.push(label("lbl_start", "开始日期"));
            children.push(date_picker(fields::START_DATE, "请选择开始日期"));
            children.push(label("lbl_end", "结束日期"));
            children.push(date_picker(fields::END_DATE, "请选择结束日期"));
        }
        RequestKind::WorkOvertime => {
            children.push(label("lbl_date", "加班日期"));
            children.push(date_picker(fields::DATE, "请选择加班日期"));
            children.push(label("lbl_hours", "加班时长（小时）"));
            children.push(input(fields::HOURS, "0.5 到 12，如 2 或 2.5", true, false));
        }
    }
    children.push(label("lbl_reason", "申请事由"));
    children.push(input(fields::REASON, "请填写申请事由", true, true));
    children.push(submit_button(
        request_ids::BTN_FILE,
        "提交",
        ButtonType::PrimaryFilled,
        ApprovalAction::File,
    ));
    let title = format!("{}申请", kind.label());
    Card {
        schema: Schema::V2,
        config: config(format!("填写{title}")),
        header: request_header(kind),
        body: CardBody {
            elements: vec![
                Element::div(ids::PROMPT, format!("请填写{title}，提交后发送给审批人")),
                Element::Form(Form {
                    element_id: request_ids::FORM.to_owned(),
                    name: request_ids::FORM.to_owned(),
                    elements: children,
                }),
            ],
        },
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

/// Stored hours shown as is when they are digits and one dot, else escaped.
fn hours_text(hours: &str) -> String {
    if hours.len() <= 4 && hours.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        hours.to_owned()
    } else {
        text::escape_markdown(hours, 4)
    }
}

/// The request's fields as markdown lines; user text escaped and capped.
pub fn form_lines(form: &RequestForm) -> String {
    match form {
        RequestForm::Leave {
            leave_type,
            start,
            end,
            reason,
        } => format!(
            "**请假类型**：{}\n**时间**：{} 至 {}\n**事由**：{}",
            leave_type.label(),
            date_text(start),
            date_text(end),
            text::escape_markdown(reason, MAX_REASON_CHARS)
        ),
        RequestForm::WorkOvertime {
            date,
            hours,
            reason,
        } => format!(
            "**加班日期**：{}\n**时长**：{} 小时\n**事由**：{}",
            date_text(date),
            hours_text(hours),
            text::escape_markdown(reason, MAX_REASON_CHARS)
        ),
    }
}

/// The audit trail as the card's timeline, one line per entry.
pub fn timeline(audit: &[AuditEntry], time_zone: &TimeZone) -> String {
    audit
        .iter()
        .map(|entry| {
            let by = entry
                .by
                .as_deref()
                .map(who)
                .unwrap_or_else(|| "系统".to_owned());
            format!(
                "{} · {by} {}",
                format_local(entry.at, time_zone),
                entry.action.label()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The status shown on a request's cards: tag text, tag colour, header colour.
fn request_status(kind: RequestKind, status: ApprovalStatus) -> (String, TagColor, HeaderTemplate) {
    let label = kind.label();
    match status.stage() {
        Some(Stage::Approved) => (
            format!("{label}通过"),
            TagColor::Green,
            HeaderTemplate::Green,
        ),
        Some(Stage::Rejected) => (format!("{label}未通过"), TagColor::Red, HeaderTemplate::Red),
        Some(Stage::Withdrawn) => ("已撤回".to_owned(), TagColor::Neutral, HeaderTemplate::Grey),
        _ if status == ApprovalStatus::Expired => {
            ("已过期".to_owned(), TagColor::Neutral, HeaderTemplate::Grey)
        }
        _ => (
            "审批中".to_owned(),
            TagColor::Orange,
            HeaderTemplate::Orange,
        ),
    }
}

fn decision_line(
    data: &ApprovalData,
    status: ApprovalStatus,
    time_zone: &TimeZone,
) -> Option<String> {
    let verdict = match status.stage() {
        Some(Stage::Approved) => "已同意",
        Some(Stage::Rejected) => "已拒绝",
        _ => return None,
    };
    let by = data.decided_by.as_deref().map(who).unwrap_or_default();
    let at = data
        .decided_at
        .map(|at| format_local(at, time_zone))
        .unwrap_or_default();
    let mut line = format!("**审批结果**：{by} {verdict} · {at}");
    if let Some(comment) = &data.comment {
        line.push_str(&format!(
            "\n**审批意见**：{}",
            text::escape_markdown(comment, MAX_REASON_CHARS)
        ));
    }
    Some(line)
}

fn request_elements(
    status: ApprovalStatus,
    data: &ApprovalData,
    requester: &str,
    time_zone: &TimeZone,
    kind: RequestKind,
) -> Vec<Element> {
    let (tag, color, _) = request_status(kind, status);
    let mut elements = vec![Element::markdown(ids::STATUS, status_tag(&tag, color))];
    if let Some(form) = &data.form {
        elements.push(Element::markdown(request_ids::FIELDS, form_lines(form)));
    }
    let approvers: Vec<String> = data.approvers.iter().map(|a| who(a)).collect();
    elements.push(Element::markdown(
        request_ids::PEOPLE,
        format!(
            "**申请人**：{}\n**审批人**：{}",
            who(requester),
            approvers.join(" ")
        ),
    ));
    if let Some(line) = decision_line(data, status, time_zone) {
        elements.push(Element::markdown(request_ids::DECISION, line));
    }
    elements.push(Element::hr(ids::DIVIDER));
    elements.push(Element::markdown(
        request_ids::TIMELINE,
        timeline(&data.audit, time_zone),
    ));
    elements
}

fn request_card_of(
    kind: RequestKind,
    status: ApprovalStatus,
    title: String,
    mut elements: Vec<Element>,
    extra: Vec<Element>,
) -> Card {
    let (tag, color, template) = request_status(kind, status);
    elements.extend(extra);
    Card {
        schema: Schema::V2,
        config: config(format!("{title}：{tag}")),
        header: Some(CardHeader {
            title: PlainText::new(title),
            subtitle: None,
            text_tag_list: vec![TextTag {
                text: PlainText::new(tag),
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
    kind: RequestKind,
    status: ApprovalStatus,
    data: &ApprovalData,
    requester: &str,
    time_zone: &TimeZone,
) -> Card {
    let elements = request_elements(status, data, requester, time_zone, kind);
    let withdraw = (status.stage() == Some(Stage::Filed)).then(|| {
        Element::Button(Button {
            element_id: request_ids::BTN_WITHDRAW.to_owned(),
            button_type: ButtonType::Default,
            text: PlainText::new("撤回"),
            disabled: false,
            disabled_tips: None,
            name: None,
            form_action_type: None,
            behaviors: vec![Behavior::Callback {
                value: ApprovalAction::Withdraw.value(),
            }],
        })
    });
    request_card_of(
        kind,
        status,
        format!("{}申请", kind.label()),
        elements,
        withdraw.into_iter().collect(),
    )
}

/// An approver's card, from the request (the requester's card state): while it waits, an
/// optional comment and 同意 / 拒绝; once decided, withdrawn or expired, the outcome and no
/// buttons.
pub fn review_card(request: &CardState, time_zone: &TimeZone) -> Result<Card, DomainError> {
    let status = status_of(request)?;
    let data = ApprovalData::from_value(&request.data)?;
    let kind = status
        .request()
        .or_else(|| data.form.as_ref().map(RequestForm::kind))
        .ok_or_else(|| DomainError::CorruptState(format!("no request in {}", status.as_str())))?;
    let requester = data
        .submitted_by
        .as_deref()
        .unwrap_or(&request.requester_open_id);
    let elements = request_elements(status, &data, requester, time_zone, kind);
    let buttons = (status.stage() == Some(Stage::Filed)).then(|| {
        Element::Form(Form {
            element_id: request_ids::REVIEW_FORM.to_owned(),
            name: request_ids::REVIEW_FORM.to_owned(),
            elements: vec![
                input(fields::COMMENT, "审批意见（选填）", false, true),
                submit_button(
                    request_ids::BTN_APPROVE,
                    "同意",
                    ButtonType::PrimaryFilled,
                    ApprovalAction::Approve,
                ),
                submit_button(
                    request_ids::BTN_REJECT,
                    "拒绝",
                    ButtonType::DangerFilled,
                    ApprovalAction::Reject,
                ),
            ],
        })
    });
    Ok(request_card_of(
        kind,
        status,
        format!("{}审批", kind.label()),
        elements,
        buttons.into_iter().collect(),
    ))
}

/// The text the requester gets when an approver decides.
pub fn decision_text(request: &CardState, time_zone: &TimeZone) -> Result<String, DomainError> {
    let status = status_of(request)?;
    let data = ApprovalData::from_value(&request.data)?;
    let kind = status
        .request()
        .or_else(|| data.form.as_ref().map(RequestForm::kind))
        .ok_or_else(|| DomainError::CorruptState(format!("no request in {}", status.as_str())))?;
    let verdict = match status.stage() {
        Some(Stage::Approved) => "已通过",
        Some(Stage::Rejected) => "未通过",
        None if status == ApprovalStatus::Expired => {
            return Ok(format!(
                "你的{}申请无人审批，已过期。如仍需要，请重新发送「审批」。",
                kind.label()
            ))
        }
        _ => {
            return Err(DomainError::CorruptState(format!(
                "{} is not decided",
                status.as_str()
            )))
        }
    };
    let at = data
        .decided_at
        .map(|at| format_local(at, time_zone))
        .unwrap_or_default();
    let mut text = format!("你的{}申请{verdict}（{at}）", kind.label());
    if let Some(comment) = &data.comment {
        text.push_str(&format!(
            "\n审批意见：{}",
            text::plain(comment, MAX_REASON_CHARS)
        ));
    }
    Ok(text)
}

/// The `n`th reminder to an approver, sent as a reply to their card.
pub fn reminder_text(
    request: &CardState,
    n: u32,
    time_zone: &TimeZone,
) -> Result<String, DomainError> {
    let data = ApprovalData::from_value(&request.data)?;
    let kind = data
        .form
        .as_ref()
        .map(RequestForm::kind)
        .or_else(|| status_of(request).ok().and_then(ApprovalStatus::request))
        .ok_or_else(|| DomainError::CorruptState("no request to remind of".to_owned()))?;
    let since = data
        .submitted_at
        .map(|at| format_local(at, time_zone))
        .unwrap_or_default();
    Ok(format!(
        "提醒（第 {n} 次）：{}申请（{since} 提交）仍在等待你审批，请在这张卡片中处理。",
        kind.label()
    ))
}

/// The toast for a form that does not validate: names the field; nothing is filed.
pub fn form_problem_toast(problem: &FormProblem) -> Toast {
    Toast::new(ToastKind::Error, &problem.to_string(), &problem.english())
}

/// The toast for a filed request.
pub fn filed_toast(kind: RequestKind) -> Toast {
    Toast::new(
        ToastKind::Success,
        &format!("{}申请已提交，等待审批", kind.label()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cards::{CardError, MAX_CARD_BYTES, MAX_COMPONENTS};
    use serde_json::json;

    const NOW: EpochMillis = 1_732_233_600_734;

    fn shanghai() -> TimeZone {
        TimeZone::get(crate::config::DEFAULT_TIME_ZONE).unwrap()
    }

    fn view(request: RequestKind) -> RequestView<'static> {
        RequestView {
            request,
            submitted_by: Some("ou_84aad35d084aa403a838cf73ee18467"),
            submitted_at: "11-22 08:00",
        }
    }

    fn all_cards() -> Vec<(&'static str, Card)> {
        let mut cards = vec![("pending", pending_card()), ("expired", expired_card())];
        for request in [RequestKind::Leave, RequestKind::WorkOvertime] {
            cards.push(("submitted", submitted_card(&view(request))));
            cards.push(("approved", approved_card(&view(request), "11-22 08:01")));
        }
        cards
    }

    #[test]
    fn pending_card_is_the_tutorials_approval_card() {
        let card = pending_card().to_value();
        assert_eq!(card["schema"], "2.0");
        assert_eq!(card["config"]["update_multi"], true);
        assert_eq!(
            card["header"]["title"],
            json!({"tag": "plain_text", "content": "审批"})
        );
        assert_eq!(
            card["body"]["elements"][0]["text"],
            json!({"tag": "plain_text", "content": "请选择需要的操作"})
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
        let card = submitted_card(&view(RequestKind::Leave));
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
            (RequestKind::Leave, "请假通过"),
            (RequestKind::WorkOvertime, "加班通过"),
        ] {
            let card = approved_card(&view(request), "11-22 08:01");
            assert!(card.find(ids::ACTIONS).is_none(), "no buttons once decided");
            let Some(Element::Markdown(status)) = card.find(ids::STATUS) else {
                panic!()
            };
            assert!(status.content.contains(words));
            assert_eq!(card.config.summary.as_ref().unwrap().content, words);
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
        let mut card = submitted_card(&view(RequestKind::Leave));
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
        let submitted = submitted_card(&view(RequestKind::Leave));
        let approved = approved_card(&view(RequestKind::Leave), "11-22 08:01");
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
            serde_json::to_value(submitted_toast(RequestKind::Leave)).unwrap()["type"],
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
        for status in ApprovalStatus::ALL {
            let card = render(status, &data, &shanghai());
            assert_eq!(card.validate(), Ok(()), "{status:?}");
            assert!(card.to_json_string().contains("审批"), "{status:?}");
        }
        let approved =
            render(ApprovalStatus::OvertimeApproved, &data, &shanghai()).to_json_string();
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
            let kind = match form {
                RequestForm::Leave { .. } => RequestKind::Leave,
                RequestForm::WorkOvertime { .. } => RequestKind::WorkOvertime,
            };
            assert_eq!(form_card(kind).validate(), Ok(()));
            let data = ApprovalData {
                submitted_by: Some(approvers[0].clone()),
                submitted_at: Some(NOW),
                decided_by: Some(approvers[1].clone()),
                decided_at: Some(NOW + 1),
                comment: Some(long.clone()),
                approvers: approvers.clone(),
                form: Some(form),
                audit: (0..5)
                    .map(|i| AuditEntry {
                        at: NOW + i,
                        by: Some(approvers[0].clone()),
                        action: super::super::machine::AuditAction::Reminded,
                    })
                    .collect(),
                ..ApprovalData::default()
            };
            for status in ApprovalStatus::ALL
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
                    status: status.as_str().into(),
                    update_token: None,
                    data: data.to_value(),
                    created_at: NOW,
                    updated_at: NOW,
                    list_key: None,
                };
                let mine = render_state(&request, &shanghai()).unwrap();
                assert_eq!(mine.validate(), Ok(()), "{status:?}");
                let filed = status.stage() == Some(Stage::Filed);
                let json = mine.to_json_string();
                assert_eq!(
                    json.contains(request_ids::BTN_WITHDRAW),
                    filed,
                    "{status:?}"
                );
                assert!(!json.contains("长<"), "escaped: {status:?}");
                if status.stage() == Some(Stage::Draft) {
                    continue;
                }
                request.data = data.to_value();
                let review = review_card(&request, &shanghai()).unwrap();
                assert_eq!(review.validate(), Ok(()), "{status:?}");
                let json = review.to_json_string();
                assert_eq!(json.contains(request_ids::BTN_APPROVE), filed, "{status:?}");
                assert_eq!(json.contains(request_ids::BTN_REJECT), filed, "{status:?}");
            }
        }
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
            for request in [RequestKind::Leave, RequestKind::WorkOvertime] {
                let with = RequestView { request, submitted_by: Some(&id), submitted_at: "11-22 08:00" };
                let without = RequestView { submitted_by: None, ..with };
                for (a, b) in [
                    (submitted_card(&with), submitted_card(&without)),
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
