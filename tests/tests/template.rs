//! `template.yaml` and `cardbot::store::table::TABLE` describe one table: these tests fail when
//! either side changes alone, and check the template's functions against the workspace.

use cardbot::store::table::{IndexSpec, KeyAttribute, TableSpec, DUE_INDEX, TABLE};
use serde_yaml::Value;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");

/// Every env var the functions read, exactly (design.md, Config).
const ENV_VARS: &[&str] = &[
    "FEISHU_APP_ID",
    "FEISHU_APP_SECRET",
    "FEISHU_ENCRYPT_KEY",
    "FEISHU_VERIFICATION_TOKEN",
    "FEISHU_BASE_URL",
    "TABLE_NAME",
    "CARD_DELIVERY",
    "TENANT_TIME_ZONE",
    "RUST_LOG",
];

/// The three functions: logical id in the template and package/binary name in `functions/`.
const FUNCTIONS: &[(&str, &str)] = &[
    ("EventCallbackFunction", "event-callback"),
    ("CardActionFunction", "card-action"),
    ("CardUpdaterFunction", "card-updater"),
];

fn parse(text: &str) -> Value {
    serde_yaml::from_str(text).expect("template.yaml parses (CloudFormation tags included)")
}

fn template() -> Value {
    let text = std::fs::read_to_string(TEMPLATE).expect("template.yaml beside the workspace root");
    parse(&text)
}

fn resources(template: &Value) -> &serde_yaml::Mapping {
    template["Resources"]
        .as_mapping()
        .expect("Resources is a mapping")
}

/// The properties of the one `AWS::DynamoDB::Table` resource.
fn table_properties(template: &Value) -> Result<&Value, String> {
    let tables: Vec<&Value> = resources(template)
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
        .collect();
    match tables.as_slice() {
        [table] => Ok(&table["Properties"]),
        other => Err(format!(
            "expected one AWS::DynamoDB::Table, found {}",
            other.len()
        )),
    }
}

/// A literal string at `v`, or a description of what stands there instead (tag, missing, …).
fn literal(v: &Value) -> Result<&str, String> {
    match v {
        Value::String(s) => Ok(s),
        Value::Tagged(t) => Err(format!("{} instead of a literal", t.tag)),
        Value::Null => Err("missing".to_string()),
        other => Err(format!("{other:?} instead of a string")),
    }
}

fn check_eq(problems: &mut Vec<String>, what: &str, template: &Value, spec: &str) {
    match literal(template) {
        Ok(found) if found == spec => {}
        Ok(found) => problems.push(format!(
            "{what}: template has {found:?}, TABLE has {spec:?}"
        )),
        Err(e) => problems.push(format!("{what}: {e}, TABLE has {spec:?}")),
    }
}

/// `true` only for a literal YAML `true`; absent means the feature is off.
fn enabled(v: &Value) -> bool {
    v.as_bool() == Some(true)
}

/// The (HASH, RANGE) attribute names of a CloudFormation `KeySchema` list.
fn key_schema(v: &Value) -> Result<(&str, &str), String> {
    let keys = v.as_sequence().ok_or("KeySchema is not a list")?;
    let name_of = |kind: &str| -> Result<&str, String> {
        let found: Vec<&Value> = keys
            .iter()
            .filter(|k| k["KeyType"].as_str() == Some(kind))
            .collect();
        match found.as_slice() {
            [k] => literal(&k["AttributeName"]),
            _ => Err(format!("expected one {kind} key, found {}", found.len())),
        }
    };
    if keys.len() != 2 {
        return Err(format!(
            "expected a HASH and a RANGE key, found {} keys",
            keys.len()
        ));
    }
    Ok((name_of("HASH")?, name_of("RANGE")?))
}

fn check_keys(
    problems: &mut Vec<String>,
    what: &str,
    schema: &Value,
    partition: KeyAttribute,
    sort: KeyAttribute,
) {
    match key_schema(schema) {
        Ok((hash, range)) => {
            if hash != partition.name || range != sort.name {
                problems.push(format!(
                    "{what} keys: template has ({hash}, {range}), TABLE has ({}, {})",
                    partition.name, sort.name
                ));
            }
        }
        Err(e) => problems.push(format!("{what} keys: {e}")),
    }
}

/// Every difference between the table resource's properties and `spec`; empty when they agree.
fn compare(spec: &TableSpec, props: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check_eq(
        &mut problems,
        "BillingMode",
        &props["BillingMode"],
        spec.billing_mode,
    );
    check_keys(
        &mut problems,
        "table",
        &props["KeySchema"],
        spec.partition_key,
        spec.sort_key,
    );

    // Attribute definitions: exactly the key attributes of the table and its indexes, typed alike.
    let mut wanted: Vec<KeyAttribute> = vec![spec.partition_key, spec.sort_key];
    for index in spec.indexes {
        wanted.extend([index.partition_key, index.sort_key]);
    }
    wanted.sort_by_key(|a| a.name);
    wanted.dedup();
    let mut defined: Vec<(String, String)> = Vec::new();
    for def in props["AttributeDefinitions"]
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        match (
            literal(&def["AttributeName"]),
            literal(&def["AttributeType"]),
        ) {
            (Ok(n), Ok(t)) => defined.push((n.to_string(), t.to_string())),
            (n, t) => problems.push(format!("AttributeDefinitions entry {n:?} {t:?}")),
        }
    }
    defined.sort();
    let wanted: Vec<(String, String)> = wanted
        .iter()
        .map(|a| (a.name.to_string(), a.kind.to_string()))
        .collect();
    if defined != wanted {
        problems.push(format!(
            "AttributeDefinitions: template has {defined:?}, TABLE has {wanted:?}"
        ));
    }

    let ttl = &props["TimeToLiveSpecification"];
    check_eq(
        &mut problems,
        "TTL attribute",
        &ttl["AttributeName"],
        spec.ttl_attribute,
    );
    if !enabled(&ttl["Enabled"]) {
        problems.push("TTL: template does not enable it".to_string());
    }
    check_eq(
        &mut problems,
        "StreamViewType",
        &props["StreamSpecification"]["StreamViewType"],
        spec.stream_view_type,
    );
    let pitr = enabled(&props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]);
    if pitr != spec.point_in_time_recovery {
        problems.push(format!(
            "point-in-time recovery: template {pitr}, TABLE {}",
            spec.point_in_time_recovery
        ));
    }
    let sse = enabled(&props["SSESpecification"]["SSEEnabled"]);
    if sse != spec.server_side_encryption {
        problems.push(format!(
            "SSE: template {sse}, TABLE {}",
            spec.server_side_encryption
        ));
    }

    let indexes = props["GlobalSecondaryIndexes"]
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut names: Vec<&str> = indexes
        .iter()
        .filter_map(|i| i["IndexName"].as_str())
        .collect();
    let mut spec_names: Vec<&str> = spec.indexes.iter().map(|i| i.name).collect();
    names.sort_unstable();
    spec_names.sort_unstable();
    if names != spec_names || names.len() != indexes.len() {
        problems.push(format!(
            "indexes: template has {names:?}, TABLE has {spec_names:?}"
        ));
    }
    for index in spec.indexes {
        let Some(found) = indexes
            .iter()
            .find(|i| i["IndexName"].as_str() == Some(index.name))
        else {
            continue; // already reported above
        };
        let what = format!("index {}", index.name);
        check_keys(
            &mut problems,
            &what,
            &found["KeySchema"],
            index.partition_key,
            index.sort_key,
        );
        check_eq(
            &mut problems,
            &format!("{what} projection"),
            &found["Projection"]["ProjectionType"],
            index.projection,
        );
    }
    problems
}

#[test]
fn template_table_matches_table_spec() {
    let template = template();
    let props = table_properties(&template).expect("one table");
    let problems = compare(&TABLE, props);
    assert!(
        problems.is_empty(),
        "template.yaml and TABLE differ:\n{}",
        problems.join("\n")
    );
}

/// Each variation of TABLE must be caught: the comparison is not a test that cannot fail.
#[test]
fn compare_reports_every_field_that_differs_from_the_template() {
    let template = template();
    let props = table_properties(&template).expect("one table");
    const OTHER_INDEX: IndexSpec = IndexSpec {
        name: "by_chat",
        ..DUE_INDEX
    };
    const DUE_KEYS_ONLY: IndexSpec = IndexSpec {
        projection: "KEYS_ONLY",
        ..DUE_INDEX
    };
    const DUE_AT_STRING: IndexSpec = IndexSpec {
        sort_key: KeyAttribute {
            name: "due_at",
            kind: "S",
        },
        ..DUE_INDEX
    };
    const DUE_SWAPPED: IndexSpec = IndexSpec {
        partition_key: DUE_INDEX.sort_key,
        sort_key: DUE_INDEX.partition_key,
        ..DUE_INDEX
    };
    let variants: Vec<(&str, TableSpec, &str)> = vec![
        (
            "partition key name",
            TableSpec {
                partition_key: KeyAttribute {
                    name: "id",
                    kind: "S",
                },
                ..TABLE
            },
            "table keys",
        ),
        (
            "sort key type",
            TableSpec {
                sort_key: KeyAttribute {
                    name: "sk",
                    kind: "N",
                },
                ..TABLE
            },
            "AttributeDefinitions",
        ),
        (
            "ttl attribute",
            TableSpec {
                ttl_attribute: "ttl",
                ..TABLE
            },
            "TTL attribute",
        ),
        (
            "stream view",
            TableSpec {
                stream_view_type: "NEW_AND_OLD_IMAGES",
                ..TABLE
            },
            "StreamViewType",
        ),
        (
            "billing",
            TableSpec {
                billing_mode: "PROVISIONED",
                ..TABLE
            },
            "BillingMode",
        ),
        (
            "pitr",
            TableSpec {
                point_in_time_recovery: false,
                ..TABLE
            },
            "point-in-time recovery",
        ),
        (
            "sse",
            TableSpec {
                server_side_encryption: false,
                ..TABLE
            },
            "SSE",
        ),
        (
            "no index",
            TableSpec {
                indexes: &[],
                ..TABLE
            },
            "indexes",
        ),
        (
            "extra index",
            TableSpec {
                indexes: &[DUE_INDEX, OTHER_INDEX],
                ..TABLE
            },
            "indexes",
        ),
        (
            "index projection",
            TableSpec {
                indexes: &[DUE_KEYS_ONLY],
                ..TABLE
            },
            "index due projection",
        ),
        (
            "index key type",
            TableSpec {
                indexes: &[DUE_AT_STRING],
                ..TABLE
            },
            "AttributeDefinitions",
        ),
        (
            "index keys swapped",
            TableSpec {
                indexes: &[DUE_SWAPPED],
                ..TABLE
            },
            "index due keys",
        ),
    ];
    for (name, spec, expected) in variants {
        let problems = compare(&spec, props);
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "changing the {name} in TABLE alone must be reported as {expected:?}; got {problems:?}"
        );
    }
}

/// The other direction: a template edited alone is caught too.
#[test]
fn compare_reports_a_template_edited_alone() {
    let text = std::fs::read_to_string(TEMPLATE).expect("template.yaml");
    let edits = [
        (
            "StreamViewType: NEW_IMAGE",
            "StreamViewType: NEW_AND_OLD_IMAGES",
            "StreamViewType",
        ),
        (
            "AttributeName: expires_at",
            "AttributeName: ttl",
            "TTL attribute",
        ),
        (
            "ProjectionType: ALL",
            "ProjectionType: KEYS_ONLY",
            "index due projection",
        ),
        (
            "{ AttributeName: due_at, AttributeType: N }",
            "{ AttributeName: due_at, AttributeType: S }",
            "AttributeDefinitions",
        ),
        (
            "PointInTimeRecoveryEnabled: true",
            "PointInTimeRecoveryEnabled: false",
            "point-in-time recovery",
        ),
        ("SSEEnabled: true", "SSEEnabled: !Ref AWS::NoValue", "SSE"),
        (
            "BillingMode: PAY_PER_REQUEST",
            "BillingMode: !Ref Billing",
            "BillingMode",
        ),
        ("- IndexName: due", "- IndexName: pending", "indexes"),
    ];
    for (from, to, expected) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "template.yaml holds {from:?} once"
        );
        let edited = parse(&text.replacen(from, to, 1));
        let problems = compare(&TABLE, table_properties(&edited).expect("one table"));
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "editing {from:?} alone must be reported as {expected:?}; got {problems:?}"
        );
    }
}

#[test]
fn short_form_tags_survive_the_parse() {
    let template = template();
    let url = &template["Outputs"]["EventCallbackUrl"]["Value"];
    let Value::Tagged(tagged) = url else {
        panic!("!GetAtt kept as a tagged value, got {url:?}")
    };
    assert_eq!(tagged.tag, "GetAtt");
    assert_eq!(
        tagged.value.as_str(),
        Some("EventCallbackFunctionUrl.FunctionUrl")
    );
}

#[test]
fn functions_get_exactly_the_config_env_vars() {
    let template = template();
    let globals = template["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .expect("Globals.Function.Environment.Variables");
    let mut names: Vec<&str> = globals.keys().filter_map(Value::as_str).collect();
    names.sort_unstable();
    let mut expected = ENV_VARS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected);
    assert_eq!(
        template["Globals"]["Function"]["Runtime"].as_str(),
        Some("provided.al2023")
    );
    assert_eq!(
        template["Globals"]["Function"]["Handler"].as_str(),
        Some("bootstrap")
    );
    for (id, _) in FUNCTIONS {
        let props = &template["Resources"][*id]["Properties"];
        assert!(
            props["Environment"].is_null(),
            "{id} overrides the shared environment"
        );
        assert_eq!(
            props["LoggingConfig"]["LogFormat"].as_str(),
            Some("JSON"),
            "{id} logs JSON"
        );
    }
}

#[test]
fn each_function_builds_its_own_workspace_binary() {
    let template = template();
    for (id, package) in FUNCTIONS {
        let function = &template["Resources"][*id];
        assert_eq!(
            function["Type"].as_str(),
            Some("AWS::Serverless::Function"),
            "{id}"
        );
        assert_eq!(
            function["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
        assert_eq!(
            function["Metadata"]["BuildProperties"]["Binary"].as_str(),
            Some(*package),
            "{id}"
        );
        let code_uri = function["Properties"]["CodeUri"].as_str().expect("CodeUri");
        assert_eq!(code_uri, format!("functions/{package}"), "{id}");
        let manifest = format!("{}/../{code_uri}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
        let manifest = std::fs::read_to_string(&manifest).expect("the function's Cargo.toml");
        assert!(
            manifest.contains(&format!("[[bin]]\nname = \"{package}\"")),
            "{code_uri} builds a binary named {package}"
        );
    }
}
