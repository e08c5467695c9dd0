//! `template.yaml` and `cardbot::store::table::TABLE` describe one table: these tests fail when
//! either side changes alone, and check the template's functions against the workspace: their
//! environment, their secrets (Secrets Manager, least privilege), encrypted by default, and the
//! limits on the public function URLs.

use cardbot::config::{Function, SecretName, DEFAULT_MAX_BODY_BYTES};
use cardbot::store::table::{IndexSpec, KeyAttribute, TableSpec, DUE_INDEX, TABLE};
use serde_yaml::Value;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");

/// Every env var the template sets for the functions, exactly (design.md, Config). The plain
/// secret variables (`FEISHU_APP_SECRET`, …) serve local runs only: in AWS the secrets come from
/// the Secrets Manager secret named by `FEISHU_SECRET_ARN`.
const ENV_VARS: &[&str] = &[
    "FEISHU_APP_ID",
    "FEISHU_APP_TYPE",
    "FEISHU_SECRET_ARN",
    "ALLOW_UNENCRYPTED",
    "MAX_BODY_BYTES",
    "FEISHU_BASE_URL",
    "TABLE_NAME",
    "CARD_DELIVERY",
    "TENANT_TIME_ZONE",
    "APPROVER_OPEN_IDS",
    "APPROVER_FROM_LEADER",
    "APPROVAL_FALLBACK",
    "APPROVAL_TTL",
    "APPROVAL_REMIND_AFTER",
    "DECISION_EVENT_BUS",
    "RUST_LOG",
];

/// The three functions: logical id in the template and package/binary name in `functions/`.
const FUNCTIONS: &[(&str, &str)] = &[
    ("EventCallbackFunction", "event-callback"),
    ("CardActionFunction", "card-action"),
    ("CardUpdaterFunction", "card-updater"),
];

/// The two public function URLs (webhooks), with their reserved-concurrency parameter.
const WEBHOOK_FUNCTIONS: &[(&str, &str)] = &[
    ("EventCallbackFunction", "EventCallbackConcurrency"),
    ("CardActionFunction", "CardActionConcurrency"),
];

/// The template parameter of each secret.
fn secret_parameter(name: SecretName) -> &'static str {
    match name {
        SecretName::AppSecret => "FeishuAppSecret",
        SecretName::EncryptKey => "FeishuEncryptKey",
        SecretName::VerificationToken => "FeishuVerificationToken",
    }
}

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
            "ProjectionType: ALL\n        # 我的申请",
            "ProjectionType: KEYS_ONLY\n        # 我的申请",
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
    // FEISHU_SECRET_ARN is each function's own: it names only the secrets that function reads.
    let mut expected: Vec<&str> = ENV_VARS
        .iter()
        .copied()
        .filter(|v| *v != "FEISHU_SECRET_ARN")
        .collect();
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
        let own: Vec<&str> = props["Environment"]["Variables"]
            .as_mapping()
            .map(|m| m.keys().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(own, ["FEISHU_SECRET_ARN"], "{id}'s own environment");
        let mut all: Vec<String> = environment(&template, id)
            .keys()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        all.sort_unstable();
        let mut want: Vec<String> = ENV_VARS.iter().map(|v| (*v).to_owned()).collect();
        want.sort_unstable();
        assert_eq!(all, want, "{id}'s effective environment");
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

#[test]
fn every_function_runs_at_the_function_memory_parameter_128_mb_by_default() {
    let template = template();
    let memory = &template["Globals"]["Function"]["MemorySize"];
    assert_eq!(
        tagged(memory).map(|(tag, v)| (tag, v.as_str().map(str::to_owned))),
        Some(("Ref".to_owned(), Some("FunctionMemory".to_owned()))),
        "{memory:?}"
    );
    let parameter = &template["Parameters"]["FunctionMemory"];
    // make bench's cost section: the functions peak under 10 MiB and mostly wait, so 128 MB is
    // the cheapest setting that fits.
    assert_eq!(parameter["Default"].as_u64(), Some(128));
    for (id, _) in FUNCTIONS {
        assert!(
            template["Resources"][*id]["Properties"]["MemorySize"].is_null(),
            "{id} overrides the memory"
        );
    }
}

// ---------- secrets, encrypted by default, function URLs ----------

/// A CloudFormation short-form tag (`!Ref X`) as (tag, value).
fn tagged(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            &t.value,
        )),
        _ => None,
    }
}

/// `!Ref name` → `name`.
fn ref_name(v: &Value) -> Option<&str> {
    match tagged(v) {
        Some((tag, value)) if tag == "Ref" => value.as_str(),
        _ => None,
    }
}

/// Every parameter a value refers to, through `!Ref`, `!Sub` (`${Name}`) and nested functions.
fn referenced_parameters(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let tag = tag.trim_start_matches('!');
            if tag == "Ref" {
                if let Some(name) = t.value.as_str() {
                    out.push(name.to_owned());
                }
            } else if tag == "Sub" {
                let text = match &t.value {
                    Value::String(s) => Some(s.as_str()),
                    Value::Sequence(seq) => seq.first().and_then(Value::as_str),
                    _ => None,
                };
                let mut rest = text.unwrap_or_default();
                while let Some(at) = rest.find("${") {
                    let tail = &rest[at + 2..];
                    let end = tail.find('}').unwrap_or(tail.len());
                    out.push(tail[..end].to_owned());
                    rest = &tail[end..];
                }
            }
            referenced_parameters(&t.value, out);
        }
        Value::Sequence(seq) => seq.iter().for_each(|v| referenced_parameters(v, out)),
        Value::Mapping(map) => map.values().for_each(|v| referenced_parameters(v, out)),
        _ => {}
    }
}

/// A function's effective environment: the globals, overridden by its own.
fn environment(template: &Value, id: &str) -> serde_yaml::Mapping {
    let mut env = template["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .cloned()
        .unwrap_or_default();
    if let Some(own) =
        template["Resources"][id]["Properties"]["Environment"]["Variables"].as_mapping()
    {
        env.extend(own.clone());
    }
    env
}

fn no_echo_parameters(template: &Value) -> Vec<String> {
    template["Parameters"]
        .as_mapping()
        .expect("Parameters")
        .iter()
        .filter(|(_, p)| p["NoEcho"].as_bool() == Some(true))
        .filter_map(|(k, _)| k.as_str().map(str::to_owned))
        .collect()
}

/// Each `AWS::SecretsManager::Secret` of the template (logical id) with the JSON keys its
/// `SecretString` holds, each checked to come from its secret's parameter.
fn secret_holders(template: &Value) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (id, resource) in resources(template) {
        if resource["Type"].as_str() != Some("AWS::SecretsManager::Secret") {
            continue;
        }
        let id = id.as_str().expect("a logical id").to_owned();
        let (tag, text) = tagged(&resource["Properties"]["SecretString"])
            .unwrap_or_else(|| panic!("{id}: SecretString is a !Sub"));
        assert_eq!(tag, "Sub", "{id}");
        let text = text.as_str().expect("a !Sub string");
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{id}: {e}: {text}"));
        let mut keys = Vec::new();
        for (key, value) in object {
            let name = SecretName::ALL
                .into_iter()
                .find(|n| n.json_key() == key)
                .unwrap_or_else(|| panic!("{id} holds `{key}`, which no function reads"));
            assert_eq!(
                value.as_str(),
                Some(format!("${{{}}}", secret_parameter(name)).as_str()),
                "{id}: `{key}` comes from its parameter"
            );
            keys.push(key);
        }
        out.push((id, keys));
    }
    out
}

/// The logical ids a value names: `!Ref X`, each `${X}` of a `!Sub`, or each `!Ref` joined by a
/// `!Join`.
fn named_resources(v: &Value) -> Vec<String> {
    if let Some(name) = ref_name(v) {
        return vec![name.to_owned()];
    }
    match tagged(v) {
        Some((tag, joined)) if tag == "Join" => joined[1]
            .as_sequence()
            .map(|parts| {
                parts
                    .iter()
                    .filter_map(|p| ref_name(p).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        Some((tag, text)) if tag == "Sub" => text
            .as_str()
            .unwrap_or_default()
            .split("${")
            .skip(1)
            .filter_map(|part| part.split('}').next())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn no_function_environment_holds_a_secret_value() {
    check_no_function_environment_holds_a_secret_value(&template());
}

fn check_no_function_environment_holds_a_secret_value(template: &Value) {
    let no_echo = no_echo_parameters(template);
    for name in SecretName::ALL {
        assert!(
            no_echo.iter().any(|p| p == secret_parameter(name)),
            "{} is NoEcho",
            secret_parameter(name)
        );
    }
    for (id, _) in FUNCTIONS {
        let env = environment(template, id);
        for name in SecretName::ALL {
            assert!(
                !env.contains_key(name.env_var()),
                "{id}'s environment sets {}",
                name.env_var()
            );
        }
        let mut refs = Vec::new();
        for value in env.values() {
            referenced_parameters(value, &mut refs);
        }
        for secret in &no_echo {
            assert!(
                !refs.contains(secret),
                "{id}'s environment holds the value of the NoEcho parameter {secret}"
            );
        }
    }
    // card-action in particular: no App Secret in any form.
    let env = environment(template, "CardActionFunction");
    let text = format!("{env:?}");
    assert!(
        !text.contains("FeishuAppSecret") && !text.contains("APP_SECRET"),
        "{text}"
    );
}

#[test]
fn each_function_reads_only_its_secrets_through_secrets_manager() {
    check_each_function_reads_only_its_secrets_through_secrets_manager(&template());
}

/// Every secret is held by exactly one Secrets Manager secret; each function's `FEISHU_SECRET_ARN`
/// names, and its policies may read, exactly the secrets holding what it uses
/// (`Function::secrets`), and nothing grants Secrets Manager otherwise or on every resource.
fn check_each_function_reads_only_its_secrets_through_secrets_manager(template: &Value) {
    let holders = secret_holders(template);
    for name in SecretName::ALL {
        let holding: Vec<&String> = holders
            .iter()
            .filter(|(_, keys)| keys.iter().any(|k| k == name.json_key()))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(
            holding.len(),
            1,
            "{} is in one secret: {holding:?}",
            name.json_key()
        );
    }
    let holder_of = |name: SecretName| -> String {
        holders
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| k == name.json_key()))
            .map(|(id, _)| id.clone())
            .expect("held")
    };
    for (id, package) in FUNCTIONS {
        let function = Function::ALL
            .into_iter()
            .find(|f| f.name() == *package)
            .expect("a cardbot::config::Function per template function");
        let mut want: Vec<String> = function.secrets().iter().map(|n| holder_of(*n)).collect();
        want.sort();
        want.dedup();
        assert!(!want.is_empty(), "{id} uses a secret");
        // Nothing the function does not use is in a secret it reads.
        for (holder, keys) in holders.iter().filter(|(h, _)| want.contains(h)) {
            for key in keys {
                assert!(
                    function.secrets().iter().any(|n| n.json_key() == key),
                    "{id} reads {holder}, which holds `{key}` it does not use"
                );
            }
        }
        let env = environment(template, id);
        let arn = env
            .get("FEISHU_SECRET_ARN")
            .unwrap_or_else(|| panic!("{id} gets FEISHU_SECRET_ARN"));
        let mut named = named_resources(arn);
        named.sort();
        assert_eq!(named, want, "{id}: FEISHU_SECRET_ARN");

        let policies = template["Resources"][*id]["Properties"]["Policies"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{id} has a Policies list"));
        let mut reads: Vec<String> = policies
            .iter()
            .filter_map(|p| p.get("AWSSecretsManagerGetSecretValuePolicy"))
            .map(|p| {
                ref_name(&p["SecretArn"])
                    .unwrap_or_else(|| panic!("{id}: a GetSecretValue policy on one secret: {p:?}"))
                    .to_owned()
            })
            .collect();
        reads.sort();
        assert_eq!(reads, want, "{id} may read exactly its secrets");
        // Nothing else grants Secrets Manager, and nothing is granted on every resource.
        for statement in policies
            .iter()
            .filter_map(|p| p["Statement"].as_sequence())
            .flatten()
        {
            let text = format!("{:?}", statement["Action"]);
            assert!(!text.contains("secretsmanager"), "{id}: {text}");
            assert_ne!(statement["Resource"].as_str(), Some("*"), "{id}");
        }
    }
    let mut refs: Vec<String> = Vec::new();
    for (id, _) in &holders {
        referenced_parameters(
            &template["Resources"][id.as_str()]["Properties"]["SecretString"],
            &mut refs,
        );
    }
    refs.sort();
    assert_eq!(
        refs,
        [
            "FeishuAppSecret",
            "FeishuEncryptKey",
            "FeishuVerificationToken"
        ]
    );
}

#[test]
fn the_encrypt_key_is_required_unless_the_deploy_opts_out() {
    check_the_encrypt_key_is_required_unless_the_deploy_opts_out(&template());
}

fn check_the_encrypt_key_is_required_unless_the_deploy_opts_out(template: &Value) {
    let key = &template["Parameters"]["FeishuEncryptKey"];
    let empty_default = key["Default"].as_str() == Some("");
    let allow = &template["Parameters"]["AllowUnencrypted"];
    assert_eq!(allow["Default"].as_str(), Some("false"));
    let allowed: Vec<&str> = allow["AllowedValues"]
        .as_sequence()
        .expect("AllowedValues")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(allowed, ["true", "false"]);
    for (id, _) in WEBHOOK_FUNCTIONS {
        assert_eq!(
            environment(template, id)
                .get("ALLOW_UNENCRYPTED")
                .and_then(ref_name),
            Some("AllowUnencrypted"),
            "{id}"
        );
    }

    // A rule fails the deploy when the key is empty and the opt-out is off.
    let rules: Vec<&Value> = template["Rules"]
        .as_mapping()
        .map(|m| m.values().collect())
        .unwrap_or_default();
    let guarded = rules.iter().any(|rule| {
        let condition = tagged(&rule["RuleCondition"]);
        let condition_ok = matches!(&condition, Some((tag, args)) if tag == "Equals"
            && args[0].clone() == rule_ref("AllowUnencrypted")
            && args[1].as_str() == Some("false"));
        let asserts_key = rule["Assertions"].as_sequence().is_some_and(|asserts| {
            asserts.iter().any(|a| {
                let not = tagged(&a["Assert"]);
                let inner = match &not {
                    Some((tag, args)) if tag == "Not" => args.as_sequence().and_then(|s| s.first()),
                    _ => None,
                };
                let key_not_empty = inner.and_then(tagged).is_some_and(|(tag, args)| {
                    tag == "Equals"
                        && args[0].clone() == rule_ref("FeishuEncryptKey")
                        && args[1].as_str() == Some("")
                });
                let says_how = a["AssertDescription"].as_str().is_some_and(|d| {
                    d.contains("AllowUnencrypted=true") && d.contains("Encrypt Key")
                });
                key_not_empty && says_how
            })
        });
        condition_ok && asserts_key
    });
    assert!(
        guarded || !empty_default,
        "FeishuEncryptKey defaults to empty and no rule requires it unless AllowUnencrypted=true"
    );
    assert!(guarded, "the EncryptKeyRequired rule");
}

/// `!Ref name` as serde_yaml reads it, to compare against.
fn rule_ref(name: &str) -> Value {
    serde_yaml::from_str(&format!("!Ref {name}")).unwrap()
}

#[test]
fn approval_ttl_refuses_14_days_or_more_and_a_bare_number() {
    let template = template();
    let p = &template["Parameters"]["ApprovalTtl"];
    let pattern = regex::Regex::new(p["AllowedPattern"].as_str().unwrap()).unwrap();
    for refused in [
        "14d", "7", "15d", "336h", "20160m", "1209600s", "0d", "0h", "7 d", "7D", "-1d", "",
    ] {
        assert!(!pattern.is_match(refused), "{refused} must fail validation");
    }
    let default = p["Default"].as_str().unwrap();
    for accepted in [
        default, "7d", "13d", "1d", "72h", "335h", "9999m", "999999s", "90s",
    ] {
        assert!(pattern.is_match(accepted), "{accepted}");
        // What the template lets through, the functions start with.
        let config = cardbot::config::Config::from_lookup(|name| match name {
            "TABLE_NAME" => Some("t".to_owned()),
            "APPROVAL_TTL" => Some(accepted.to_owned()),
            _ => None,
        });
        assert!(config.is_ok(), "{accepted}: {config:?}");
    }
    // The updater reserves nothing by default, so the stack deploys on a new account.
    let updater = &template["Parameters"]["UpdaterConcurrency"];
    assert_eq!(updater["Default"].as_u64(), Some(0));
}

#[test]
fn the_approval_fallback_refuses_by_default_and_offers_only_the_two_settings() {
    let template = template();
    let p = &template["Parameters"]["ApprovalFallback"];
    assert_eq!(p["Default"].as_str(), Some("refuse"));
    let allowed: Vec<&str> = p["AllowedValues"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(allowed, ["refuse", "simulated"]);
    // Each allowed value is one the functions read, and the default is what unset means.
    for value in allowed {
        assert!(
            cardbot::config::ApprovalFallback::parse(value).is_some(),
            "{value}"
        );
    }
    assert_eq!(
        cardbot::config::ApprovalFallback::parse("refuse"),
        Some(cardbot::config::ApprovalFallback::default())
    );
}

#[test]
fn the_webhook_functions_have_a_concurrency_setting_that_fits_a_new_account() {
    check_the_webhook_functions_have_a_concurrency_setting_that_fits_a_new_account(&template());
}

fn check_the_webhook_functions_have_a_concurrency_setting_that_fits_a_new_account(
    template: &Value,
) {
    for (id, parameter) in WEBHOOK_FUNCTIONS {
        let p = &template["Parameters"][*parameter];
        assert_eq!(p["Type"].as_str(), Some("Number"), "{parameter}");
        // A new account may have a limit of 10 and must keep 10 unreserved: no reservation by default.
        assert_eq!(p["Default"].as_u64(), Some(0), "{parameter}");
        assert_eq!(p["MinValue"].as_u64(), Some(0), "{parameter}");

        let reserved = &template["Resources"][*id]["Properties"]["ReservedConcurrentExecutions"];
        let (tag, args) = tagged(reserved).unwrap_or_else(|| panic!("{id}: !If"));
        assert_eq!(tag, "If", "{id}");
        let args = args.as_sequence().expect("!If args");
        let condition = args[0].as_str().expect("condition name");
        assert_eq!(ref_name(&args[1]), Some(*parameter), "{id}");
        assert_eq!(ref_name(&args[2]), Some("AWS::NoValue"), "{id}");
        // The condition: the parameter is not 0.
        let (not, inner) = tagged(&template["Conditions"][condition]).expect("condition");
        assert_eq!(not, "Not");
        let (eq, operands) = tagged(&inner[0]).expect("!Equals");
        assert_eq!(eq, "Equals");
        assert_eq!(ref_name(&operands[0]), Some(*parameter));
        assert_eq!(operands[1].as_u64(), Some(0));
        // And a function URL, which is what the cap protects.
        assert!(
            template["Resources"][*id]["Properties"]["FunctionUrlConfig"].is_mapping(),
            "{id}"
        );
    }
}

#[test]
fn the_body_cap_parameter_feeds_max_body_bytes_with_the_config_default() {
    check_the_body_cap_parameter_feeds_max_body_bytes_with_the_config_default(&template());
}

fn check_the_body_cap_parameter_feeds_max_body_bytes_with_the_config_default(template: &Value) {
    let p = &template["Parameters"]["MaxBodyBytes"];
    assert_eq!(p["Type"].as_str(), Some("Number"));
    assert_eq!(p["Default"].as_u64(), Some(DEFAULT_MAX_BODY_BYTES as u64));
    // Lambda's own request payload limit is 6 MB.
    assert!(p["MaxValue"]
        .as_u64()
        .is_some_and(|max| max <= 6 * 1024 * 1024));
    for (id, _) in WEBHOOK_FUNCTIONS {
        assert_eq!(
            environment(template, id)
                .get("MAX_BODY_BYTES")
                .and_then(ref_name),
            Some("MaxBodyBytes"),
            "{id}"
        );
    }
}

/// Each check above fails on a template edited to break what it guards: none is a test that
/// cannot fail.
#[test]
fn the_secret_and_url_checks_catch_a_template_edited_alone() {
    let text = std::fs::read_to_string(TEMPLATE).expect("template.yaml");
    type Check = fn(&Value);
    let edits: [(&str, &str, &str, Check); 10] = [
        (
            "FEISHU_APP_ID: !Ref FeishuAppId\n",
            "FEISHU_APP_ID: !Ref FeishuAppId\n        FEISHU_APP_SECRET: !Ref FeishuAppSecret\n",
            "an App Secret in the environment",
            check_no_function_environment_holds_a_secret_value,
        ),
        (
            "FEISHU_BASE_URL: !Ref FeishuBaseUrl\n",
            "FEISHU_BASE_URL: !Sub \"${FeishuBaseUrl}?k=${FeishuEncryptKey}\"\n",
            "a secret smuggled in through !Sub",
            check_no_function_environment_holds_a_secret_value,
        ),
        (
            "          FEISHU_SECRET_ARN: !Ref FeishuWebhookSecret\n",
            "          FEISHU_SECRET_ARN: !Ref FeishuWebhookSecret\n          FEISHU_TOKEN: !Ref FeishuAppSecret\n",
            "card-action's own environment",
            check_no_function_environment_holds_a_secret_value,
        ),
        (
            "            SecretArn: !Ref FeishuWebhookSecret\n        - Statement:\n            # Transactions",
            "            SecretArn: \"*\"\n        - Statement:\n            # Transactions",
            "a policy on every secret",
            check_each_function_reads_only_its_secrets_through_secrets_manager,
        ),
        (
            "\"encrypt_key\":\"${FeishuEncryptKey}\"",
            "\"encryptKey\":\"${FeishuEncryptKey}\"",
            "a key the functions do not read",
            check_each_function_reads_only_its_secrets_through_secrets_manager,
        ),
        (
            "          FEISHU_SECRET_ARN: !Ref FeishuWebhookSecret\n",
            "          FEISHU_SECRET_ARN: !Join [\",\", [!Ref FeishuAppCredentials, !Ref FeishuWebhookSecret]]\n",
            "card-action named the App Secret's secret, which it does not use",
            check_each_function_reads_only_its_secrets_through_secrets_manager,
        ),
        (
            "      - Assert: !Not [!Equals [!Ref FeishuEncryptKey, \"\"]]",
            "      - Assert: !Not [!Equals [!Ref FeishuAppId, \"\"]]",
            "a rule that guards another parameter",
            check_the_encrypt_key_is_required_unless_the_deploy_opts_out,
        ),
        (
            "    RuleCondition: !Equals [!Ref AllowUnencrypted, \"false\"]",
            "    RuleCondition: !Equals [!Ref AllowUnencrypted, \"true\"]",
            "a rule on the wrong condition",
            check_the_encrypt_key_is_required_unless_the_deploy_opts_out,
        ),
        (
            "!If [ReserveCardActionConcurrency, !Ref CardActionConcurrency, !Ref AWS::NoValue]",
            "!Ref AWS::NoValue",
            "card-action without a concurrency setting",
            check_the_webhook_functions_have_a_concurrency_setting_that_fits_a_new_account,
        ),
        (
            "    Default: 262144",
            "    Default: 1048576",
            "a body cap default that differs from the config's",
            check_the_body_cap_parameter_feeds_max_body_bytes_with_the_config_default,
        ),
    ];
    for (from, to, what, check) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "template.yaml holds {from:?} once"
        );
        let edited = parse(&text.replacen(from, to, 1));
        let caught = std::panic::catch_unwind(|| check(&edited)).is_err();
        assert!(caught, "{what} is not caught");
    }
}

/// The alarms and the dashboard read the metrics the code writes: every `cardbot` metric they
/// name is in `cardbot::telemetry::names`, every `Function` dimension is a function's name, and
/// the dead-job and answer-latency alarms exist.
#[test]
fn alarms_and_dashboard_reference_metrics_the_code_emits() {
    use cardbot::telemetry::{names, NAMESPACE};
    let template = template();
    let functions: Vec<&str> = Function::ALL.iter().map(|f| f.name()).collect();
    let mut alarmed = Vec::new();
    for (id, resource) in resources(&template) {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let props = &resource["Properties"];
        assert!(
            matches!(props["AlarmActions"], Value::Tagged(_)),
            "{id:?} notifies the AlarmEmail topic when one is set (!If HasAlarmEmail)"
        );
        if props["Namespace"].as_str() != Some(NAMESPACE) {
            assert_eq!(props["Namespace"].as_str(), Some("AWS/Lambda"), "{id:?}");
            continue;
        }
        let metric = props["MetricName"].as_str().unwrap();
        assert!(
            names::ALL.contains(&metric),
            "{id:?} alarms on {metric}, which no code writes"
        );
        for dimension in props["Dimensions"].as_sequence().unwrap() {
            assert_eq!(dimension["Name"].as_str(), Some("Function"), "{id:?}");
            let value = dimension["Value"].as_str().unwrap();
            assert!(functions.contains(&value), "{id:?}: {value}");
        }
        alarmed.push(metric.to_owned());
    }
    for needed in [
        names::JOBS_DEAD,
        names::ANSWER_LATENCY,
        names::APPROVER_LOOKUP_DENIED,
    ] {
        assert!(alarmed.iter().any(|m| m == needed), "no alarm on {needed}");
    }
    let dashboard = &resources(&template)[&Value::from("Dashboard")];
    let body = match &dashboard["Properties"]["DashboardBody"] {
        Value::Tagged(tagged) => tagged.value.as_str().unwrap().to_owned(),
        other => other.as_str().unwrap().to_owned(),
    };
    let body: serde_json::Value =
        serde_json::from_str(&body.replace("${AWS::Region}", "us-east-1")).expect("dashboard JSON");
    let mut shown = 0;
    for widget in body["widgets"].as_array().unwrap() {
        for metric in widget["properties"]["metrics"].as_array().unwrap() {
            let Some(parts) = metric.as_array() else {
                continue;
            };
            if parts.first().and_then(|p| p.as_str()) != Some(NAMESPACE) {
                if let Some(expression) = parts[0]["expression"].as_str() {
                    let named = names::ALL
                        .iter()
                        .any(|n| expression.contains(&format!("\"{n}\"")));
                    assert!(named, "{expression}");
                    shown += 1;
                }
                continue;
            }
            let name = parts[1].as_str().unwrap();
            assert!(
                names::ALL.contains(&name),
                "the dashboard shows {name}, which no code writes"
            );
            assert_eq!(parts[2], "Function");
            assert!(functions.contains(&parts[3].as_str().unwrap()), "{metric}");
            shown += 1;
        }
    }
    assert!(
        shown >= names::ALL.len(),
        "{shown} metrics on the dashboard"
    );
}

/// The README's one configuration table: its rows, from the header to the first non-table line.
fn readme_configuration_rows() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md at the workspace root");
    readme
        .lines()
        .skip_while(|l| {
            l.trim() != "| template parameter | environment variable | default | meaning |"
        })
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_configuration_table_names_every_template_parameter_and_setting() {
    let template = template();
    let rows = readme_configuration_rows();
    assert!(!rows.is_empty(), "README has no configuration table");
    let first_column = |row: &String| row.split('|').nth(1).unwrap_or_default().to_owned();
    for (name, _) in template["Parameters"].as_mapping().unwrap() {
        let name = format!("`{}`", name.as_str().unwrap());
        assert!(
            rows.iter().any(|row| first_column(row).contains(&name)),
            "the README's configuration table lacks the template parameter {name}"
        );
    }
    for variable in ENV_VARS {
        let variable = format!("`{variable}`");
        assert!(
            rows.iter().any(|row| row.contains(&variable)),
            "the README's configuration table lacks {variable}"
        );
    }
}

/// Each function's table statements, read from the template: its item actions and the
/// `dynamodb:LeadingKeys` prefixes they are limited to, and the indexes it queries.
fn table_statements(template: &Value, id: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let policies = template["Resources"][id]["Properties"]["Policies"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{id} has a Policies list"));
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::Sequence(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let (mut actions, mut leading, mut indexes) = (Vec::new(), Vec::new(), Vec::new());
    for statement in policies
        .iter()
        .filter_map(|p| p["Statement"].as_sequence())
        .flatten()
    {
        let statement_actions = strings(&statement["Action"]);
        if !statement_actions.iter().any(|a| a.starts_with("dynamodb:")) {
            continue;
        }
        let resource = format!("{:?}", statement["Resource"]);
        if let Some(index) = resource.split("/index/").nth(1) {
            let index: String = index.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert_eq!(statement_actions, ["dynamodb:Query"], "{id}: {resource}");
            indexes.push(index);
            continue;
        }
        actions.extend(statement_actions);
        leading.extend(strings(
            &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
        ));
        assert!(
            statement["Condition"]
                .as_mapping()
                .is_some_and(|m| m.len() == 1),
            "{id}: the table's items only under LeadingKeys: {statement:?}"
        );
    }
    (actions, leading, indexes)
}

fn check_each_function_reaches_only_the_table_items_it_uses(template: &Value) {
    for (id, package) in FUNCTIONS {
        let function = Function::ALL
            .into_iter()
            .find(|f| f.name() == *package)
            .expect("a cardbot::config::Function per template function");
        let access = function.table_access();
        let (mut actions, mut leading, mut indexes) = table_statements(template, id);
        let mut want_actions: Vec<String> = access
            .item_actions
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
        let mut want_leading: Vec<String> = access
            .partitions
            .iter()
            .map(|p| format!("{}*", p.prefix()))
            .collect();
        let mut want_indexes: Vec<String> =
            access.indexes.iter().map(|i| (*i).to_owned()).collect();
        for list in [
            &mut actions,
            &mut leading,
            &mut indexes,
            &mut want_actions,
            &mut want_leading,
            &mut want_indexes,
        ] {
            list.sort();
        }
        assert_eq!(actions, want_actions, "{id}: item actions");
        assert_eq!(leading, want_leading, "{id}: dynamodb:LeadingKeys");
        assert_eq!(indexes, want_indexes, "{id}: indexes queried");
    }
}

/// Each function's item actions are limited (`dynamodb:LeadingKeys`) to exactly the partitions
/// its code uses (`Function::table_access`, built from the key constructors' prefixes): a new key
/// kind the template does not admit fails here, not with AccessDenied on AWS.
#[test]
fn each_function_reaches_only_the_table_items_it_uses() {
    check_each_function_reaches_only_the_table_items_it_uses(&template());
}

#[test]
fn the_table_access_check_catches_a_template_edited_alone() {
    let text = std::fs::read_to_string(TEMPLATE).unwrap();
    // The card callback granted the tenant token's partition: refused.
    let widened = text.replacen(
        "                    - \"dedup#*\"\n                    - \"card#*\"\n                    - \"doc#*\"",
        "                    - \"token#*\"\n                    - \"dedup#*\"\n                    - \"card#*\"\n                    - \"doc#*\"",
        1,
    );
    assert_ne!(
        widened, text,
        "the card callback's prefixes are in the template"
    );
    let caught = std::panic::catch_unwind(|| {
        check_each_function_reaches_only_the_table_items_it_uses(&parse(&widened))
    });
    assert!(caught.is_err(), "a widened LeadingKeys condition is caught");
    // The condition dropped: every item again, refused.
    let dropped = text.replacen("ForAllValues:StringLike", "ForAnyValue:StringLike", 1);
    let caught = std::panic::catch_unwind(|| {
        check_each_function_reaches_only_the_table_items_it_uses(&parse(&dropped))
    });
    assert!(caught.is_err(), "a loosened condition is caught");
}
