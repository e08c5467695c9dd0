//! A form submit checked against its definition: `form_value` (keyed by the components' `name`)
//! becomes the request's values, or the first problem, naming the field by its label.
//!
//! The client already refuses an empty `required` field (`approval-apis.md` §7, "有必填项未填写"),
//! but a callback is only a signed request: every rule is checked again here.

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::definition::decimal::strict_decimal;
use super::definition::{Definition, Field, FieldType, Text};
use crate::cards::Lang;

/// The components' `name`s the approval's own cards use (a definition's fields are named by it).
pub mod fields {
    pub const LEAVE_TYPE: &str = "leave_type";
    pub const START_DATE: &str = "start_date";
    pub const END_DATE: &str = "end_date";
    pub const DATE: &str = "date";
    pub const HOURS: &str = "hours";
    pub const REASON: &str = "reason";
    /// The approver's optional comment.
    pub const COMMENT: &str = "comment";
    /// The approver's 转交 person picker (`select_person`).
    pub const TRANSFER_TO: &str = "transfer_to";
    /// The 审批 card's select of request types (when there are more than fit as buttons).
    pub const DEFINITION: &str = "definition";
}

/// An approver's comment is at most this many characters (the input's `max_length`).
pub const MAX_REASON_CHARS: usize = 300;

/// The first thing wrong with a submitted form; it names the field by its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormProblem {
    /// A required field is empty (请选择 for a choice, 请填写 for a typed value).
    Missing { label: Text, chosen: bool },
    /// Not a value of the field's type, or not one of its options.
    Malformed(Text),
    /// A date range ends before it starts.
    EndBeforeStart { start: Text, end: Text },
    /// A number or amount outside `min`/`max` or off `step`.
    OutOfRange(Box<Range>),
    /// An amount with more than 2 decimals.
    TooPrecise(Text),
    /// A text longer than `max_len` characters.
    TooLong { label: Text, max: u32 },
}

/// The rules a number broke: the field's label, bounds, step and unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub label: Text,
    pub min: Option<Decimal>,
    pub max: Option<Decimal>,
    pub step: Option<Decimal>,
    pub unit: Option<Text>,
}

impl FormProblem {
    /// The toast's text in `lang`.
    pub fn text(&self, lang: Lang) -> String {
        let zh = lang == Lang::ZhCn;
        match self {
            Self::Missing { label, chosen } => match (zh, chosen) {
                (true, true) => format!("请选择{}", label.zh_cn),
                (true, false) => format!("请填写{}", label.zh_cn),
                (false, true) => format!("Please choose {}", label.en_us),
                (false, false) => format!("Please fill in {}", label.en_us),
            },
            Self::Malformed(label) if zh => format!("{}格式不正确", label.zh_cn),
            Self::Malformed(label) => format!("{} is not valid", label.en_us),
            Self::EndBeforeStart { start, end } if zh => {
                format!("{}不能早于{}", end.zh_cn, start.zh_cn)
            }
            Self::EndBeforeStart { start, end } => {
                format!("{} is before {}", end.en_us, start.en_us)
            }
            Self::OutOfRange(range) => {
                let Range {
                    label,
                    min,
                    max,
                    step,
                    unit,
                } = range.as_ref();
                let unit = unit
                    .as_ref()
                    .map(|u| format!(" {}", u.get(lang)))
                    .unwrap_or_default();
                let show = |d: &Option<Decimal>| d.map(|d| d.normalize().to_string());
                let range = match (show(min), show(max), zh) {
                    (Some(a), Some(b), true) => format!("需在 {a} 到 {b}{unit}之间"),
                    (Some(a), None, true) => format!("不能小于 {a}{unit}"),
                    (None, Some(b), true) => format!("不能大于 {b}{unit}"),
                    (Some(a), Some(b), false) => format!(" must be {a} to {b}{unit}"),
                    (Some(a), None, false) => format!(" must be at least {a}{unit}"),
                    (None, Some(b), false) => format!(" must be at most {b}{unit}"),
                    (None, None, true) => String::new(),
                    (None, None, false) => String::new(),
                };
                let step = match (show(step), zh) {
                    (Some(s), true) => format!("（以 {s}{unit}为单位）"),
                    (Some(s), false) => format!(", in steps of {s}{unit}"),
                    (None, _) => String::new(),
                };
                format!("{}{range}{step}", label.get(lang))
            }
            Self::TooPrecise(label) if zh => format!("{}最多两位小数", label.zh_cn),
            Self::TooPrecise(label) => format!("{} has at most 2 decimals", label.en_us),
            Self::TooLong { label, max } if zh => format!("{}不能超过 {max} 字", label.zh_cn),
            Self::TooLong { label, max } => {
                format!("{} is longer than {max} characters", label.en_us)
            }
        }
    }

    /// The English toast text.
    pub fn english(&self) -> String {
        self.text(Lang::EnUs)
    }
}

impl std::fmt::Display for FormProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text(Lang::ZhCn))
    }
}

impl std::error::Error for FormProblem {}

/// A `form_value` entry as a string: inputs and selects send strings; a number or a one-element
/// array (a multi-select encoding, unconfirmed: `approval-apis.md` §7) is accepted too.
fn string_field<'a>(form: &'a Map<String, Value>, name: &str) -> Option<Cow<'a, str>> {
    match form.get(name)? {
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Array(items) if items.len() == 1 => match &items[0] {
            Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            _ => None,
        },
        _ => None,
    }
}

/// A picker's one value: a string, or an array of one string (a `select_person`'s `form_value`
/// entry is the chosen open_id; an array is read too, as for the selects, `approval-apis.md` §7).
pub fn single_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.len() == 1 => items[0].as_str().map(str::to_owned),
        _ => None,
    }
}

/// A multi-select's values: an array of strings, or a string holding one (both encodings are
/// reported, `approval-apis.md` §7, unconfirmed: either is read).
fn list_field(form: &Map<String, Value>, name: &str) -> Option<Result<Vec<String>, ()>> {
    let strings = |items: &[Value]| {
        items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or(()))
            .collect::<Result<Vec<_>, ()>>()
    };
    Some(match form.get(name)? {
        Value::Array(items) => strings(items),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) => strings(&items),
            _ => Ok(vec![s.clone()]),
        },
        Value::Null => Ok(Vec::new()),
        _ => Err(()),
    })
}

/// A date picker's value `"2024-04-01 +0800"` (or a bare `2024-04-01`): `None` when empty.
fn date_value(
    form: &Map<String, Value>,
    name: &str,
    label: &Text,
) -> Result<Option<jiff::civil::Date>, FormProblem> {
    let raw = string_field(form, name).unwrap_or_default();
    let day = raw.trim().split(' ').next().unwrap_or_default();
    if day.is_empty() {
        return Ok(None);
    }
    day.parse::<jiff::civil::Date>()
        .map(Some)
        .map_err(|_| FormProblem::Malformed(label.clone()))
}

fn missing(label: &Text, field_type: FieldType) -> FormProblem {
    FormProblem::Missing {
        label: label.clone(),
        chosen: field_type.is_chosen(),
    }
}

/// A number or amount as typed: `None` when empty.
fn decimal_value(field: &Field, typed: &str) -> Result<Option<String>, FormProblem> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Ok(None);
    }
    let value = strict_decimal(typed).ok_or_else(|| FormProblem::Malformed(field.label.clone()))?;
    let out_of_range = || {
        FormProblem::OutOfRange(Box::new(Range {
            label: field.label.clone(),
            min: field.min,
            max: field.max,
            step: field.step,
            // An amount's bounds are in its currency.
            unit: field.unit.clone().or_else(|| {
                field
                    .currency
                    .as_ref()
                    .map(|c| Text::new(c.as_str(), c.as_str()))
            }),
        }))
    };
    if field.field_type == FieldType::Amount && value.scale() > 2 {
        // `1.005` and `1.0050` alike: an amount is never rounded silently.
        if value.normalize().scale() > 2 {
            return Err(FormProblem::TooPrecise(field.label.clone()));
        }
    }
    if field.min.is_some_and(|min| value < min) || field.max.is_some_and(|max| value > max) {
        return Err(out_of_range());
    }
    if let Some(step) = field.step {
        let base = field.min.unwrap_or(Decimal::ZERO);
        if !((value - base) % step).is_zero() {
            return Err(out_of_range());
        }
    }
    Ok(Some(match field.field_type {
        FieldType::Amount => {
            let mut v = value.normalize();
            v.rescale(2);
            v.to_string()
        }
        _ => value.normalize().to_string(),
    }))
}

/// One field's value from `form`, or `None` when it is empty (a problem if it is required).
fn field_value(field: &Field, form: &Map<String, Value>) -> Result<Option<Value>, FormProblem> {
    let label = &field.label;
    let value = match field.field_type {
        FieldType::Text | FieldType::Textarea => {
            let typed = string_field(form, &field.name).unwrap_or_default();
            // One line stays one line (the client's single-line input sends none, a forged
            // callback could, to add a line of its own under the field on the approver's card).
            let typed = match field.field_type {
                FieldType::Text => {
                    Cow::Owned(typed.split_whitespace().collect::<Vec<_>>().join(" "))
                }
                _ => typed,
            };
            let typed = typed.trim();
            if typed.chars().count() > field.max_len() as usize {
                return Err(FormProblem::TooLong {
                    label: label.clone(),
                    max: field.max_len(),
                });
            }
            (!typed.is_empty()).then(|| Value::from(typed))
        }
        FieldType::Number | FieldType::Amount => {
            let typed = string_field(form, &field.name).unwrap_or_default();
            decimal_value(field, &typed)?.map(Value::from)
        }
        FieldType::Select => {
            let chosen = string_field(form, &field.name).unwrap_or_default();
            if chosen.is_empty() {
                None
            } else if field.choice(&chosen).is_some() {
                Some(Value::from(chosen.as_ref()))
            } else {
                return Err(FormProblem::Malformed(label.clone()));
            }
        }
        FieldType::MultiSelect => {
            let chosen = match list_field(form, &field.name) {
                None => Vec::new(),
                Some(Ok(chosen)) => chosen,
                Some(Err(())) => return Err(FormProblem::Malformed(label.clone())),
            };
            let mut kept: Vec<Value> = Vec::new();
            for value in chosen {
                if field.choice(&value).is_none() {
                    return Err(FormProblem::Malformed(label.clone()));
                }
                if !kept.iter().any(|k| k == value.as_str()) {
                    kept.push(Value::from(value));
                }
            }
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        FieldType::Date => {
            date_value(form, &field.name, label)?.map(|d| Value::from(d.to_string()))
        }
        FieldType::DateRange => {
            let (start_label, end_label) = (field.start_label(), field.end_label());
            let start = date_value(form, &field.start_name(), &start_label)?;
            let end = date_value(form, &field.end_name(), &end_label)?;
            match (start, end) {
                (None, None) => None,
                (None, Some(_)) => return Err(missing(&start_label, FieldType::Date)),
                (Some(_), None) => return Err(missing(&end_label, FieldType::Date)),
                (Some(start), Some(end)) if end < start => {
                    return Err(FormProblem::EndBeforeStart {
                        start: start_label,
                        end: end_label,
                    })
                }
                (Some(start), Some(end)) => {
                    Some(serde_json::json!({"start": start.to_string(), "end": end.to_string()}))
                }
            }
        }
        FieldType::Checkbox => {
            let ticked = match form.get(&field.name) {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) if s == "true" => true,
                Some(Value::String(s)) if s == "false" || s.is_empty() => false,
                Some(_) => return Err(FormProblem::Malformed(label.clone())),
            };
            ticked.then_some(Value::Bool(true))
        }
    };
    match value {
        None if field.required => Err(match field.field_type {
            FieldType::DateRange => missing(&field.start_label(), FieldType::Date),
            other => missing(label, other),
        }),
        value => Ok(value),
    }
}

/// Validates a form submit against `definition`: the first problem, in the form's order, or the
/// values to keep (field name → value; empty optional fields left out).
pub fn parse_form(
    definition: &Definition,
    form: &Map<String, Value>,
) -> Result<Map<String, Value>, FormProblem> {
    let mut values = Map::new();
    for field in &definition.fields {
        if let Some(value) = field_value(field, form)? {
            values.insert(field.name.clone(), value);
        }
    }
    Ok(values)
}

/// The approver's comment: trimmed, empty → `None`; too long → [`FormProblem::TooLong`].
pub fn parse_comment(form: Option<&Map<String, Value>>) -> Result<Option<String>, FormProblem> {
    let Some(form) = form else { return Ok(None) };
    let comment = string_field(form, fields::COMMENT).unwrap_or_default();
    let comment = comment.trim();
    if comment.chars().count() > MAX_REASON_CHARS {
        return Err(FormProblem::TooLong {
            label: Text::new("审批意见", "The comment"),
            max: MAX_REASON_CHARS as u32,
        });
    }
    Ok((!comment.is_empty()).then(|| comment.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::super::definition::{builtin, file, RequestKind};
    use super::*;
    use serde_json::json;

    fn form(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn leave() -> Definition {
        builtin().definitions[0].clone()
    }

    fn overtime() -> Definition {
        builtin().definitions[1].clone()
    }

    #[test]
    fn a_valid_leave_form_in_feishus_date_format() {
        let parsed = parse_form(
            &leave(),
            &form(
                json!({"leave_type": "annual", "start_date": "2026-12-01 +0800",
                         "end_date": "2026-12-03 +0800", "reason": "  family trip "}),
            ),
        );
        assert_eq!(
            parsed,
            Ok(form(json!({"leave_type": "annual",
                           "date": {"start": "2026-12-01", "end": "2026-12-03"},
                           "reason": "family trip"})))
        );
    }

    #[test]
    fn leave_problems_name_the_first_bad_field_as_before() {
        let ok = json!({"leave_type": "sick", "start_date": "2026-12-02 +0800",
                        "end_date": "2026-12-02 +0800", "reason": "flu"});
        assert!(parse_form(&leave(), &form(ok.clone())).is_ok(), "one day");
        for (field, value, toast) in [
            ("leave_type", json!(""), "请选择请假类型"),
            ("leave_type", json!("holiday"), "请假类型格式不正确"),
            ("start_date", json!(null), "请选择开始日期"),
            (
                "start_date",
                json!("2026-13-45 +0800"),
                "开始日期格式不正确",
            ),
            (
                "end_date",
                json!("2026-12-01 +0800"),
                "结束日期不能早于开始日期",
            ),
            ("reason", json!("   "), "请填写申请事由"),
            ("reason", json!("长".repeat(301)), "申请事由不能超过 300 字"),
        ] {
            let mut bad = form(ok.clone());
            bad.insert(field.into(), value);
            let problem = parse_form(&leave(), &bad).unwrap_err();
            assert_eq!(problem.to_string(), toast, "{field}");
            assert!(!problem.english().is_empty());
        }
        let mut missing = form(ok);
        missing.remove("end_date");
        assert_eq!(
            parse_form(&leave(), &missing).unwrap_err().to_string(),
            "请选择结束日期"
        );
    }

    #[test]
    fn overtime_hours_in_half_hours_from_half_to_twelve() {
        let with = |hours: Value| {
            parse_form(
                &overtime(),
                &form(json!({"date": "2026-12-05 +0800", "hours": hours, "reason": "release"})),
            )
        };
        for (typed, stored) in [("0.5", "0.5"), ("2", "2"), ("2.50", "2.5"), ("12.0", "12")] {
            assert_eq!(with(json!(typed)).unwrap()["hours"], stored, "{typed}");
        }
        assert!(with(json!(3)).is_ok(), "a number is read too");
        let range = "加班时长需在 0.5 到 12 小时之间（以 0.5 小时为单位）";
        for bad in ["0", "12.5", "13", "-1", "1.25", "9999999999"] {
            assert_eq!(with(json!(bad)).unwrap_err().to_string(), range, "{bad}");
        }
        for bad in ["abc", "1e1", ".5"] {
            assert_eq!(
                with(json!(bad)).unwrap_err().to_string(),
                "加班时长格式不正确",
                "{bad}"
            );
        }
        assert_eq!(with(json!("")).unwrap_err().to_string(), "请填写加班时长");
    }

    #[test]
    fn amounts_are_exact_and_every_problem_names_the_field() {
        let set = file::parse(
            "definitions:
  - id: expense
    name: 报销
    fields:
      - {name: amount, type: amount, label: {zh_cn: 金额, en_us: Amount}, required: true,
         min: \"0.01\", max: \"200000\", currency: CNY}
      - {name: tags, type: multi_select, label: 标签, options: [{value: a, label: A}, {value: b, label: B}]}
      - {name: ok, type: checkbox, label: 确认, required: true}
",
        )
        .unwrap();
        let expense = &set.definitions[0];
        assert_eq!(expense.id, RequestKind::new("expense").unwrap());
        let with = |amount: &str| {
            parse_form(
                expense,
                &form(json!({"amount": amount, "tags": ["b", "a", "b"], "ok": "true"})),
            )
        };
        let range = "金额需在 0.01 到 200000 CNY之间";
        for (bad, toast) in [
            ("abc", "金额格式不正确"),
            ("-1", range),
            ("1.005", "金额最多两位小数"),
            ("200000.01", range),
            ("0", range),
            ("1e3", "金额格式不正确"),
        ] {
            let problem = with(bad).unwrap_err();
            assert_eq!(problem.to_string(), toast, "{bad}");
            assert!(problem.english().contains("Amount"), "{bad}");
        }
        assert_eq!(
            with("200000.01").unwrap_err().english(),
            "Amount must be 0.01 to 200000 CNY"
        );
        let values = with("1234.5").unwrap();
        assert_eq!(values["amount"], "1234.50");
        assert_eq!(values["tags"], json!(["b", "a"]));
        assert_eq!(values["ok"], true);
        assert_eq!(with("200000").unwrap()["amount"], "200000.00");
        let unticked = parse_form(expense, &form(json!({"amount": "1", "ok": false})));
        assert_eq!(unticked.unwrap_err().to_string(), "请选择确认");
        let foreign = parse_form(
            expense,
            &form(json!({"amount": "1", "tags": ["z"], "ok": true})),
        );
        assert_eq!(foreign.unwrap_err().to_string(), "标签格式不正确");
        let encoded = parse_form(
            expense,
            &form(json!({"amount": "1", "tags": "[\"a\"]", "ok": true})),
        );
        assert_eq!(
            encoded.unwrap()["tags"],
            json!(["a"]),
            "a JSON string is read too"
        );
    }

    #[test]
    fn a_one_line_text_stays_one_line() {
        let set = file::parse(
            "definitions:\n  - {id: a, name: x, fields: [{name: item, type: text, label: 物品}]}",
        )
        .unwrap();
        let values = parse_form(
            &set.definitions[0],
            &form(json!({"item": "pen\n**金额**：999999 CNY"})),
        )
        .unwrap();
        assert_eq!(values["item"], "pen **金额**：999999 CNY");
    }

    #[test]
    fn comments_are_optional_trimmed_and_capped() {
        assert_eq!(parse_comment(None), Ok(None));
        assert_eq!(parse_comment(Some(&form(json!({"comment": ""})))), Ok(None));
        assert_eq!(
            parse_comment(Some(&form(json!({"comment": " ok "})))),
            Ok(Some("ok".into()))
        );
        assert!(parse_comment(Some(&form(json!({"comment": "x".repeat(301)})))).is_err());
    }
}
