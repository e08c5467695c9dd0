//! The request form's fields and their server-side validation: a submit's `form_value` (keyed by
//! the components' `name`) becomes a [`RequestForm`] or the first problem, named for the toast.
//!
//! The client already refuses an empty `required` field (`approval-apis.md` §7, "有必填项未填写"),
//! but a callback is only a signed request: every rule is checked again here.

use serde_json::{Map, Value};

use super::machine::{LeaveType, RequestForm, RequestKind};

/// The form components' `name`s, in one place (they are the `form_value` keys).
pub mod fields {
    pub const LEAVE_TYPE: &str = "leave_type";
    pub const START_DATE: &str = "start_date";
    pub const END_DATE: &str = "end_date";
    pub const DATE: &str = "date";
    pub const HOURS: &str = "hours";
    pub const REASON: &str = "reason";
    /// The approver's optional comment.
    pub const COMMENT: &str = "comment";
}

/// A reason or comment is at most this many characters (the input's `max_length`, checked again).
pub const MAX_REASON_CHARS: usize = 300;
/// Overtime hours accepted: 0.5 to 12, in steps of 0.5.
pub const MIN_OVERTIME_HALF_HOURS: u32 = 1;
pub const MAX_OVERTIME_HALF_HOURS: u32 = 24;

/// The first thing wrong with a submitted form; its text names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormProblem {
    #[error("请选择{0}")]
    Missing(&'static str),
    #[error("{0}格式不正确")]
    Malformed(&'static str),
    #[error("结束日期不能早于开始日期")]
    EndBeforeStart,
    #[error("加班时长需在 0.5 到 12 小时之间（以 0.5 小时为单位）")]
    HoursOutOfRange,
    #[error("请填写申请事由")]
    EmptyReason,
    #[error("申请事由不能超过 {MAX_REASON_CHARS} 字")]
    ReasonTooLong,
}

impl FormProblem {
    /// The English toast text.
    pub fn english(&self) -> String {
        match self {
            Self::Missing(field) => format!("Please fill in {}", english_field(field)),
            Self::Malformed(field) => format!("{} is not valid", english_field(field)),
            Self::EndBeforeStart => "The end date is before the start date".to_owned(),
            Self::HoursOutOfRange => "Overtime hours must be 0.5 to 12, in half hours".to_owned(),
            Self::EmptyReason => "Please give a reason".to_owned(),
            Self::ReasonTooLong => {
                format!("The reason is longer than {MAX_REASON_CHARS} characters")
            }
        }
    }
}

fn english_field(label: &str) -> &'static str {
    match label {
        "请假类型" => "the leave type",
        "开始日期" => "the start date",
        "结束日期" => "the end date",
        "加班日期" => "the overtime date",
        "加班时长" => "the overtime hours",
        _ => "a field",
    }
}

/// A `form_value` entry as a string: inputs and selects send strings; a number or a one-element
/// array (a multi-select encoding, unconfirmed: `approval-apis.md` §7) is accepted too.
fn string_field<'a>(form: &'a Map<String, Value>, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    match form.get(name)? {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        Value::Array(items) if items.len() == 1 => match &items[0] {
            Value::String(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
            _ => None,
        },
        _ => None,
    }
}

/// A date picker's value `"2024-04-01 +0800"` (or a bare `2024-04-01`) as `2024-04-01`.
fn date_field(
    form: &Map<String, Value>,
    name: &str,
    label: &'static str,
) -> Result<jiff::civil::Date, FormProblem> {
    let raw = string_field(form, name).ok_or(FormProblem::Missing(label))?;
    let day = raw.trim().split(' ').next().unwrap_or_default();
    if day.is_empty() {
        return Err(FormProblem::Missing(label));
    }
    day.parse::<jiff::civil::Date>()
        .map_err(|_| FormProblem::Malformed(label))
}

fn reason_field(form: &Map<String, Value>) -> Result<String, FormProblem> {
    let reason = string_field(form, fields::REASON).unwrap_or_default();
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(FormProblem::EmptyReason);
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(FormProblem::ReasonTooLong);
    }
    Ok(reason.to_owned())
}

/// Half hours from `"2"`, `"2.5"`, `"2.0"`; `None` for anything else (no floats: `0.1 + 0.2`).
fn half_hours(text: &str) -> Option<u32> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || whole.len() > 3 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let half = match fraction.trim_end_matches('0') {
        "" => 0,
        "5" => 1,
        _ => return None,
    };
    Some(whole * 2 + half)
}

/// Validates a form submit of `kind`: the first problem, in the form's order, or the request.
pub fn parse_form(
    kind: RequestKind,
    form: &Map<String, Value>,
) -> Result<RequestForm, FormProblem> {
    match kind {
        RequestKind::Leave => {
            let chosen = string_field(form, fields::LEAVE_TYPE).unwrap_or_default();
            if chosen.is_empty() {
                return Err(FormProblem::Missing("请假类型"));
            }
            let leave_type = LeaveType::ALL
                .into_iter()
                .find(|t| t.value() == chosen)
                .ok_or(FormProblem::Malformed("请假类型"))?;
            let start = date_field(form, fields::START_DATE, "开始日期")?;
            let end = date_field(form, fields::END_DATE, "结束日期")?;
            if end < start {
                return Err(FormProblem::EndBeforeStart);
            }
            Ok(RequestForm::Leave {
                leave_type,
                start: start.to_string(),
                end: end.to_string(),
                reason: reason_field(form)?,
            })
        }
        RequestKind::WorkOvertime => {
            let date = date_field(form, fields::DATE, "加班日期")?;
            let typed = string_field(form, fields::HOURS).unwrap_or_default();
            let typed = typed.trim();
            if typed.is_empty() {
                return Err(FormProblem::Missing("加班时长"));
            }
            let halves = half_hours(typed).ok_or(FormProblem::HoursOutOfRange)?;
            if !(MIN_OVERTIME_HALF_HOURS..=MAX_OVERTIME_HALF_HOURS).contains(&halves) {
                return Err(FormProblem::HoursOutOfRange);
            }
            let hours = if halves % 2 == 0 {
                format!("{}", halves / 2)
            } else {
                format!("{}.5", halves / 2)
            };
            Ok(RequestForm::WorkOvertime {
                date: date.to_string(),
                hours,
                reason: reason_field(form)?,
            })
        }
    }
}

/// The approver's comment: trimmed, empty → `None`; too long → [`FormProblem::ReasonTooLong`].
pub fn parse_comment(form: Option<&Map<String, Value>>) -> Result<Option<String>, FormProblem> {
    let Some(form) = form else { return Ok(None) };
    let comment = string_field(form, fields::COMMENT).unwrap_or_default();
    let comment = comment.trim();
    if comment.chars().count() > MAX_REASON_CHARS {
        return Err(FormProblem::ReasonTooLong);
    }
    Ok((!comment.is_empty()).then(|| comment.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_valid_leave_form_in_feishus_date_format() {
        let parsed = parse_form(
            RequestKind::Leave,
            &form(
                json!({"leave_type": "annual", "start_date": "2026-12-01 +0800",
                         "end_date": "2026-12-03 +0800", "reason": "  family trip "}),
            ),
        );
        assert_eq!(
            parsed,
            Ok(RequestForm::Leave {
                leave_type: LeaveType::Annual,
                start: "2026-12-01".into(),
                end: "2026-12-03".into(),
                reason: "family trip".into(),
            })
        );
    }

    #[test]
    fn leave_problems_name_the_first_bad_field() {
        let ok = json!({"leave_type": "sick", "start_date": "2026-12-02 +0800",
                        "end_date": "2026-12-02 +0800", "reason": "flu"});
        assert!(
            parse_form(RequestKind::Leave, &form(ok.clone())).is_ok(),
            "one day"
        );
        for (field, value, problem) in [
            ("leave_type", json!(""), FormProblem::Missing("请假类型")),
            (
                "leave_type",
                json!("holiday"),
                FormProblem::Malformed("请假类型"),
            ),
            ("start_date", json!(null), FormProblem::Missing("开始日期")),
            (
                "start_date",
                json!("2026-13-45 +0800"),
                FormProblem::Malformed("开始日期"),
            ),
            (
                "end_date",
                json!("2026-12-01 +0800"),
                FormProblem::EndBeforeStart,
            ),
            ("reason", json!("   "), FormProblem::EmptyReason),
            (
                "reason",
                json!("长".repeat(301)),
                FormProblem::ReasonTooLong,
            ),
        ] {
            let mut bad = form(ok.clone());
            bad.insert(field.into(), value);
            let got = parse_form(RequestKind::Leave, &bad);
            assert_eq!(got, Err(problem.clone()), "{field}");
            assert!(!problem.to_string().is_empty() && !problem.english().is_empty());
        }
        let mut missing = form(ok);
        missing.remove("end_date");
        assert_eq!(
            parse_form(RequestKind::Leave, &missing),
            Err(FormProblem::Missing("结束日期"))
        );
    }

    #[test]
    fn overtime_hours_in_half_hours_from_half_to_twelve() {
        let with = |hours: Value| {
            parse_form(
                RequestKind::WorkOvertime,
                &form(json!({"date": "2026-12-05 +0800", "hours": hours, "reason": "release"})),
            )
        };
        for (typed, stored) in [("0.5", "0.5"), ("2", "2"), ("2.50", "2.5"), ("12.0", "12")] {
            match with(json!(typed)) {
                Ok(RequestForm::WorkOvertime { hours, .. }) => assert_eq!(hours, stored),
                other => panic!("{typed}: {other:?}"),
            }
        }
        assert!(with(json!(3)).is_ok(), "a number is read too");
        for bad in [
            "0",
            "12.5",
            "13",
            "-1",
            "1.25",
            "abc",
            "1e1",
            ".5",
            "9999999999",
        ] {
            assert_eq!(with(json!(bad)), Err(FormProblem::HoursOutOfRange), "{bad}");
        }
        assert_eq!(with(json!("")), Err(FormProblem::Missing("加班时长")));
    }

    #[test]
    fn comments_are_optional_trimmed_and_capped() {
        assert_eq!(parse_comment(None), Ok(None));
        assert_eq!(parse_comment(Some(&form(json!({"comment": ""})))), Ok(None));
        assert_eq!(
            parse_comment(Some(&form(json!({"comment": " ok "})))),
            Ok(Some("ok".into()))
        );
        assert_eq!(
            parse_comment(Some(&form(json!({"comment": "x".repeat(301)})))),
            Err(FormProblem::ReasonTooLong)
        );
    }
}
