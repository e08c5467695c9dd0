//! `cardbot-admin definitions validate` as an operator runs it: the binary, a file, the exit status
//! and what it prints. Validation needs no table and no AWS credentials.

use std::process::Command;

const BROKEN: &str = "definitions:
  - id: expense
    name: {zh_cn: 费用报销, en_us: Expense}
    fields:
      - {name: amount, type: money, label: 金额}
      - {name: reason, type: text, label: 事由}
      - {name: reason, type: textarea, label: 说明}
      - {name: category, type: select, label: 类别}
      - {name: nights, type: number, label: 晚数, min: 5, max: 1}
";

fn validate(text: &str) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("cardbot-defs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.yaml", text.len()));
    std::fs::write(&path, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_cardbot-admin"))
        .args(["definitions", "validate"])
        .arg(&path)
        .env_remove("TABLE_NAME")
        .output()
        .unwrap()
}

#[test]
fn a_broken_file_exits_non_zero_naming_each_problem_with_its_line() {
    let out = validate(BROKEN);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let line_of = |needle: &str| {
        let line = stderr
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {stderr}"));
        // `<file>:<line>:<column>: <problem>`
        line.split(".yaml:")
            .nth(1)
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(line_of("unknown type `money`"), "5");
    assert_eq!(line_of("duplicate field name `reason`"), "7");
    assert_eq!(line_of("needs `options`"), "8");
    assert_eq!(line_of("min 5 is more than max 1"), "9");
    assert!(out.stdout.is_empty(), "nothing printed as valid");
}

#[test]
fn the_example_file_is_valid() {
    let example = include_str!("../../examples/definitions.yaml");
    let out = validate(example);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    let ids: Vec<_> = report["definitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["expense", "purchase"]);
}

#[test]
fn a_route_with_a_bad_condition_is_named_with_its_line() {
    let routed = "definitions:
  - id: expense
    name: 报销
    fields:
      - {name: amount, type: amount, label: 金额, required: true}
      - {name: reason, type: textarea, label: 事由}
    steps:
      - {id: manager, approvers: {leader: true}, mode: any}
      - {id: finance, approvers: {open_ids: [ou_a1, ou_b1]}, mode: all, when: \"reason > 5000\"}
      - {id: board, approvers: {open_ids: [ou_d1]}, mode: any, when: \"cost > 1\"}
      - {id: audit, approvers: {open_ids: [ou_e1]}, mode: any, when: \"amount >\"}
";
    let out = validate(routed);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    for (line, needle) in [
        (":9:", "field `reason` is textarea"),
        (":10:", "unknown field `cost`"),
        (":11:", "ends too early"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(line) && l.contains(needle)),
            "{needle} at {line} in {stderr}"
        );
    }
}
