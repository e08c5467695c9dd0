//! A route step's condition (`when:`): a small expression over a request's field values, parsed
//! and checked against the definition's field types when the file is read, and evaluated over
//! the filed values, never run as code.
//!
//! ```text
//! expr    := or
//! or      := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | primary
//! primary := "(" expr ")" | operand (cmp operand)?
//! cmp     := "<" | "<=" | ">" | ">=" | "==" | "!="
//! operand := number | 'text' | "text" | field | "days(" field ")"
//! ```
//!
//! Types: a `number` or `amount` field, a number and `days(<date_range>)` (its days, both ends
//! counted) are numbers, compared exactly as decimals (never floats); a `date` field compares with
//! a date written as text (`'2026-12-24'`); a `select` field compares (`==`, `!=`) with one of its
//! option values; a `checkbox` field alone is a condition. A field left empty makes every
//! comparison with it false (`not` of it true).
//!
//! The grammar is ours (its words are `and`/`or`/`not`, its numbers exact decimals); general
//! expression crates evaluate numbers as `f64`, which an amount must never be.

use std::fmt;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::{Definition, FieldType};

/// A checked condition and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    source: String,
    expr: Expr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Operand, Cmp, Operand),
    /// A checkbox field as a condition.
    Ticked(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operand {
    Number(Decimal),
    Text(String),
    Field(String),
    Days(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// Why a condition does not read, or does not fit its definition's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError(pub String);

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Number(String),
    Text(String),
    Open,
    Close,
    Cmp(Cmp),
}

/// The longest condition read, in characters.
pub const MAX_CONDITION_CHARS: usize = 500;

fn tokens(source: &str) -> Result<Vec<Token>, ConditionError> {
    let err = |m: String| Err(ConditionError(m));
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            '<' | '>' | '=' | '!' => {
                let two = chars.get(i + 1) == Some(&'=');
                let cmp = match (c, two) {
                    ('<', false) => Cmp::Lt,
                    ('<', true) => Cmp::Le,
                    ('>', false) => Cmp::Gt,
                    ('>', true) => Cmp::Ge,
                    ('=', true) => Cmp::Eq,
                    ('!', true) => Cmp::Ne,
                    _ => {
                        return err(format!(
                            "`{c}` is not an operator (use ==, !=, <, <=, >, >=)"
                        ))
                    }
                };
                out.push(Token::Cmp(cmp));
                i += if two { 2 } else { 1 };
            }
            '\'' | '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|d| *d == c)
                    .ok_or_else(|| ConditionError("a text is not closed".to_owned()))?;
                out.push(Token::Text(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                // A number runs to the next delimiter, so `1e3` is one (refused) number.
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                out.push(Token::Number(chars[start..i].iter().collect()));
            }
            c if c.is_ascii_lowercase() => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_lowercase()
                        || chars[i].is_ascii_digit()
                        || chars[i] == '_')
                {
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => return err(format!("unexpected `{other}`")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// How deep `not` and parentheses nest here.
    depth: usize,
}

/// The deepest nesting of `not` and parentheses read.
const MAX_DEPTH: usize = 32;

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(x)) if x == w)
    }

    fn or(&mut self) -> Result<Expr, ConditionError> {
        let mut left = self.and()?;
        while self.word("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ConditionError> {
        let mut left = self.not()?;
        while self.word("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn deeper(&mut self) -> Result<(), ConditionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ConditionError(format!(
                "the condition nests deeper than {MAX_DEPTH}"
            )));
        }
        Ok(())
    }

    fn not(&mut self) -> Result<Expr, ConditionError> {
        if self.word("not") {
            self.at += 1;
            self.deeper()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ConditionError> {
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            self.deeper()?;
            let inner = self.or()?;
            self.depth -= 1;
            return match self.next() {
                Some(Token::Close) => Ok(inner),
                _ => Err(ConditionError("a `(` is not closed".to_owned())),
            };
        }
        let left = self.operand()?;
        match self.peek() {
            Some(Token::Cmp(cmp)) => {
                let cmp = *cmp;
                self.at += 1;
                let right = self.operand()?;
                Ok(Expr::Compare(left, cmp, right))
            }
            _ => match left {
                Operand::Field(name) => Ok(Expr::Ticked(name)),
                other => Err(ConditionError(format!(
                    "{} alone is not a condition (compare it)",
                    describe(&other)
                ))),
            },
        }
    }

    fn operand(&mut self) -> Result<Operand, ConditionError> {
        match self.next() {
            Some(Token::Number(n)) => super::decimal::strict_decimal(&n)
                .map(Operand::Number)
                .ok_or_else(|| ConditionError(format!("`{n}` is not a number"))),
            Some(Token::Text(t)) => Ok(Operand::Text(t)),
            Some(Token::Word(w)) if w == "days" => {
                let (Some(Token::Open), Some(Token::Word(field)), Some(Token::Close)) =
                    (self.next(), self.next(), self.next())
                else {
                    return Err(ConditionError(
                        "days takes one field: days(<date_range>)".to_owned(),
                    ));
                };
                Ok(Operand::Days(field))
            }
            Some(Token::Word(w)) if ["and", "or", "not"].contains(&w.as_str()) => {
                Err(ConditionError(format!("`{w}` where a value was expected")))
            }
            Some(Token::Word(w)) => Ok(Operand::Field(w)),
            Some(other) => Err(ConditionError(format!("unexpected {other:?}"))),
            None => Err(ConditionError("the condition ends too early".to_owned())),
        }
    }
}

fn describe(operand: &Operand) -> String {
    match operand {
        Operand::Number(n) => format!("the number {n}"),
        Operand::Text(t) => format!("the text '{t}'"),
        Operand::Field(f) => format!("field `{f}`"),
        Operand::Days(f) => format!("days({f})"),
    }
}

/// What an operand is, for the type check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Date,
    Choice,
    Text,
    Bool,
}

fn kind_of<'d>(
    operand: &Operand,
    definition: &'d Definition,
) -> Result<(Kind, Option<&'d super::Field>), ConditionError> {
    let field = |name: &str| {
        definition.field(name).ok_or_else(|| {
            ConditionError(format!(
                "unknown field `{name}` in definition `{}`",
                definition.id
            ))
        })
    };
    Ok(match operand {
        Operand::Number(_) => (Kind::Number, None),
        Operand::Text(_) => (Kind::Text, None),
        Operand::Days(name) => {
            let f = field(name)?;
            if f.field_type != FieldType::DateRange {
                return Err(ConditionError(format!(
                    "days() takes a date_range field, and `{name}` is {}",
                    f.field_type.as_str()
                )));
            }
            (Kind::Number, Some(f))
        }
        Operand::Field(name) => {
            let f = field(name)?;
            let kind = match f.field_type {
                FieldType::Number | FieldType::Amount => Kind::Number,
                FieldType::Date => Kind::Date,
                FieldType::Select => Kind::Choice,
                FieldType::Checkbox => Kind::Bool,
                other => {
                    return Err(ConditionError(format!(
                        "field `{name}` is {}: a condition compares numbers, amounts, dates, \
                         days(<date_range>), selects and checkboxes",
                        other.as_str()
                    )))
                }
            };
            (kind, Some(f))
        }
    })
}

fn check(expr: &Expr, definition: &Definition) -> Result<(), ConditionError> {
    match expr {
        Expr::Or(a, b) | Expr::And(a, b) => {
            check(a, definition)?;
            check(b, definition)
        }
        Expr::Not(a) => check(a, definition),
        Expr::Ticked(name) => match kind_of(&Operand::Field(name.clone()), definition)? {
            (Kind::Bool, _) => Ok(()),
            _ => Err(ConditionError(format!(
                "field `{name}` alone is not a condition (compare it)"
            ))),
        },
        Expr::Compare(left, cmp, right) => {
            let (lk, lf) = kind_of(left, definition)?;
            let (rk, rf) = kind_of(right, definition)?;
            let ordered = !matches!(cmp, Cmp::Eq | Cmp::Ne);
            let mismatch = || {
                ConditionError(format!(
                    "{} and {} cannot be compared",
                    describe(left),
                    describe(right)
                ))
            };
            match (lk, rk) {
                (Kind::Number, Kind::Number) => Ok(()),
                (Kind::Date, Kind::Text) | (Kind::Text, Kind::Date) => {
                    let text = match (left, right) {
                        (Operand::Text(t), _) | (_, Operand::Text(t)) => t,
                        _ => return Err(mismatch()),
                    };
                    text.parse::<jiff::civil::Date>()
                        .map(|_| ())
                        .map_err(|_| ConditionError(format!("'{text}' is not a date (yyyy-MM-dd)")))
                }
                (Kind::Date, Kind::Date) => Ok(()),
                (Kind::Choice, Kind::Text) | (Kind::Text, Kind::Choice) if !ordered => {
                    let (field, text) = match (left, right, lf, rf) {
                        (_, Operand::Text(t), Some(f), _) | (Operand::Text(t), _, _, Some(f)) => {
                            (f, t)
                        }
                        _ => return Err(mismatch()),
                    };
                    if field.choice(text).is_none() {
                        return Err(ConditionError(format!(
                            "'{text}' is not an option of `{}`",
                            field.name
                        )));
                    }
                    Ok(())
                }
                (Kind::Choice, Kind::Choice) if !ordered => Ok(()),
                (Kind::Choice, _) | (_, Kind::Choice) if ordered => Err(ConditionError(format!(
                    "a select compares with == or != only ({} {} {})",
                    describe(left),
                    cmp.as_str(),
                    describe(right)
                ))),
                _ => Err(mismatch()),
            }
        }
    }
}

impl Cmp {
    fn as_str(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }

    fn holds<T: PartialOrd>(self, a: &T, b: &T) -> bool {
        match self {
            Self::Lt => a < b,
            Self::Le => a <= b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
            Self::Eq => a == b,
            Self::Ne => a != b,
        }
    }
}

/// A value as the condition sees it.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Seen {
    Number(Decimal),
    Date(jiff::civil::Date),
    Text(String),
}

fn value_of(operand: &Operand, values: &Map<String, Value>) -> Option<Seen> {
    match operand {
        Operand::Number(n) => Some(Seen::Number(*n)),
        Operand::Text(t) => Some(match t.parse::<jiff::civil::Date>() {
            Ok(d) => Seen::Date(d),
            Err(_) => Seen::Text(t.clone()),
        }),
        Operand::Field(name) => match values.get(name)? {
            Value::String(s) => Some(
                super::decimal::strict_decimal(s)
                    .map(Seen::Number)
                    .or_else(|| s.parse::<jiff::civil::Date>().ok().map(Seen::Date))
                    .unwrap_or_else(|| Seen::Text(s.clone())),
            ),
            _ => None,
        },
        Operand::Days(name) => {
            let range = values.get(name)?.as_object()?;
            let day = |k: &str| range.get(k)?.as_str()?.parse::<jiff::civil::Date>().ok();
            let (start, end) = (day("start")?, day("end")?);
            let days = i64::from((end - start).get_days()) + 1;
            Some(Seen::Number(Decimal::from(days)))
        }
    }
}

fn eval(expr: &Expr, values: &Map<String, Value>) -> bool {
    match expr {
        Expr::Or(a, b) => eval(a, values) || eval(b, values),
        Expr::And(a, b) => eval(a, values) && eval(b, values),
        Expr::Not(a) => !eval(a, values),
        Expr::Ticked(name) => values.get(name) == Some(&Value::Bool(true)),
        Expr::Compare(left, cmp, right) => {
            // A select's value against a text compares as text, even when it reads as a number
            // (`'1'`): the check allowed only == and != there.
            if let (Operand::Field(field), Operand::Text(t))
            | (Operand::Text(t), Operand::Field(field)) = (left, right)
            {
                if let Some(Value::String(v)) = values.get(field) {
                    if t.parse::<jiff::civil::Date>().is_err() {
                        return cmp.holds(&v.as_str(), &t.as_str());
                    }
                }
            }
            match (value_of(left, values), value_of(right, values)) {
                (Some(Seen::Number(a)), Some(Seen::Number(b))) => cmp.holds(&a, &b),
                (Some(Seen::Date(a)), Some(Seen::Date(b))) => cmp.holds(&a, &b),
                (Some(Seen::Text(a)), Some(Seen::Text(b))) => cmp.holds(&a, &b),
                // An empty field (or a value of another shape) makes the comparison false.
                _ => false,
            }
        }
    }
}

impl Condition {
    /// Reads `source` (no type check: see [`Condition::check`]).
    pub fn parse(source: &str) -> Result<Self, ConditionError> {
        if source.chars().count() > MAX_CONDITION_CHARS {
            return Err(ConditionError(format!(
                "a condition is at most {MAX_CONDITION_CHARS} characters"
            )));
        }
        let mut parser = Parser {
            tokens: tokens(source)?,
            at: 0,
            depth: 0,
        };
        if parser.tokens.is_empty() {
            return Err(ConditionError("the condition is empty".to_owned()));
        }
        let expr = parser.or()?;
        if let Some(extra) = parser.peek() {
            return Err(ConditionError(format!(
                "unexpected {extra:?} after the condition"
            )));
        }
        Ok(Self {
            source: source.to_owned(),
            expr,
        })
    }

    /// Checks every field it names against `definition`'s fields and types.
    pub fn check(&self, definition: &Definition) -> Result<(), ConditionError> {
        check(&self.expr, definition)
    }

    /// Whether it holds for a request's values.
    pub fn holds(&self, values: &Map<String, Value>) -> bool {
        eval(&self.expr, values)
    }

    /// The condition as written.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl serde::Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Self::parse(&source).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expense() -> Definition {
        super::super::file::parse(
            "definitions:
  - id: expense
    name: 报销
    fields:
      - {name: amount, type: amount, label: 金额, required: true}
      - {name: category, type: select, label: 类别, options: [{value: travel, label: 差旅}, {value: office, label: 办公}]}
      - {name: period, type: date_range, label: 日期}
      - {name: day, type: date, label: 日}
      - {name: urgent, type: checkbox, label: 加急}
      - {name: reason, type: text, label: 事由}
",
        )
        .unwrap()
        .definitions
        .remove(0)
    }

    fn holds(source: &str, values: Value) -> bool {
        let c = Condition::parse(source).unwrap();
        c.check(&expense()).unwrap();
        c.holds(values.as_object().unwrap())
    }

    #[test]
    fn conditions_evaluate_exactly_over_the_values() {
        let v = json!({"amount": "5000.01", "category": "travel",
                       "period": {"start": "2026-12-01", "end": "2026-12-05"},
                       "day": "2026-12-24", "urgent": true});
        assert!(holds("amount > 5000", v.clone()));
        assert!(!holds("amount > 5000.01", v.clone()));
        assert!(holds(
            "amount >= 5000.01 and category == 'travel'",
            v.clone()
        ));
        assert!(holds("category != \"office\"", v.clone()));
        assert!(holds("days(period) == 5", v.clone()));
        assert!(holds(
            "days(period) > 3 and not (amount < 100 or urgent)",
            json!({"amount": "200", "period": {"start": "2026-12-01", "end": "2026-12-05"}})
        ));
        assert!(holds("day >= '2026-12-24'", v.clone()));
        assert!(holds("urgent", v.clone()));
        assert!(!holds("urgent", json!({})));
        assert!(
            !holds("amount > 1", json!({})),
            "an empty field compares false"
        );
        assert!(holds("not amount > 1", json!({})));
        assert!(
            holds("amount == 0.3", json!({"amount": "0.30"})),
            "decimals, not floats"
        );
        // A select whose option values read as numbers compares as text.
        let level = super::super::file::parse(
            "definitions:\n  - {id: a, name: x, fields: [{name: level, type: select, label: 级别, options: [{value: \"1\", label: 一}, {value: \"2\", label: 二}]}]}",
        )
        .unwrap()
        .definitions
        .remove(0);
        let c = Condition::parse("level == '1'").unwrap();
        c.check(&level).unwrap();
        assert!(c.holds(json!({"level": "1"}).as_object().unwrap()));
        assert!(!c.holds(json!({"level": "2"}).as_object().unwrap()));
    }

    #[test]
    fn bad_conditions_are_named() {
        for (source, needle) in [
            ("amount >", "ends too early"),
            ("amount > 5000 and", "ends too early"),
            ("(amount > 1", "not closed"),
            ("amount = 1", "not an operator"),
            ("amount > 1e3", "`1e3` is not a number"),
            ("cost > 1", "unknown field `cost`"),
            ("reason == 'x'", "field `reason` is text"),
            ("category > 'travel'", "== or != only"),
            ("category == 'hotel'", "not an option"),
            ("amount == 'travel'", "cannot be compared"),
            ("days(amount) > 1", "date_range"),
            ("day > 'soon'", "not a date"),
            ("amount", "alone is not a condition"),
            ("5000", "alone is not a condition"),
            ("amount > 1 amount", "after the condition"),
            ("", "empty"),
            ("amount > 1; drop", "unexpected `;`"),
            (&"(".repeat(40), "deeper than 32"),
            (&"not ".repeat(40), "deeper than 32"),
        ] {
            let result = Condition::parse(source).and_then(|c| c.check(&expense()));
            let error = result.expect_err(source).0;
            assert!(error.contains(needle), "{source}: {error}");
        }
    }
}
