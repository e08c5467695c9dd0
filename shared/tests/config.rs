//! `cardbot::config`: env parsing, defaults, validation, each function's secrets (least
//! privilege), encrypted by default, and that secrets never print.

use std::collections::HashMap;
use std::time::Duration;

use cardbot::config::{
    parse_duration, AppSecret, CardDelivery, Config, ConfigError, EncryptKey, FeishuConfig,
    Function, SecretName, SecretSource, Secrets, VerificationToken, WebhookConfig,
};

const APP_SECRET: &str = "app-secret-value-7f3a";
const ENCRYPT_KEY: &str = "encrypt-key-value-91bc";
const VERIFICATION_TOKEN: &str = "verification-token-value-44de";
const SECRETS: [&str; 3] = [APP_SECRET, ENCRYPT_KEY, VERIFICATION_TOKEN];

type Env = HashMap<&'static str, String>;

fn full_env() -> Env {
    HashMap::from([
        ("FEISHU_APP_ID", "cli_9f5343c580712544".to_owned()),
        ("FEISHU_APP_SECRET", APP_SECRET.to_owned()),
        ("FEISHU_ENCRYPT_KEY", ENCRYPT_KEY.to_owned()),
        ("FEISHU_VERIFICATION_TOKEN", VERIFICATION_TOKEN.to_owned()),
        ("TABLE_NAME", "cardbot".to_owned()),
    ])
}

/// The secret's JSON as the template builds it.
fn secret_json() -> String {
    serde_json::json!({
        "app_secret": APP_SECRET,
        "encrypt_key": ENCRYPT_KEY,
        "verification_token": VERIFICATION_TOKEN,
    })
    .to_string()
}

fn load(env: &Env) -> Result<Config, ConfigError> {
    Config::from_lookup(|name| env.get(name).cloned())
}

fn secrets(function: Function, env: &Env) -> Secrets {
    Secrets::from_lookup(function, |name| env.get(name).cloned())
}

fn webhook(env: &Env) -> Result<WebhookConfig, ConfigError> {
    let secrets = secrets(Function::EventCallback, env);
    WebhookConfig::from_lookup(|name| env.get(name).cloned(), &secrets)
}

fn feishu(env: &Env) -> Result<FeishuConfig, ConfigError> {
    let secrets = secrets(Function::EventCallback, env);
    FeishuConfig::from_lookup(|name| env.get(name).cloned(), &secrets)
}

fn with(var: &'static str, value: &str) -> Env {
    let mut env = full_env();
    env.insert(var, value.to_owned());
    env
}

fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "secret leaked into {text:?}");
    }
}

#[test]
fn minimal_env_gets_documented_defaults() {
    let env = full_env();
    let config = load(&env).unwrap();
    assert_eq!(config.table_name, "cardbot");
    assert_eq!(config.card_delivery, CardDelivery::Entity);
    assert_eq!(config.approval_ttl, Duration::from_secs(7 * 86_400));
    assert_eq!(config.answer_budget, Duration::from_millis(2500));
    let app = feishu(&env).unwrap();
    assert_eq!(app.app_id, "cli_9f5343c580712544");
    assert_eq!(app.app_secret.expose(), APP_SECRET);
    assert_eq!(app.base_url, "https://open.feishu.cn");
    let webhook = webhook(&env).unwrap();
    assert_eq!(webhook.encrypt_key.as_ref().unwrap().expose(), ENCRYPT_KEY);
    assert_eq!(webhook.verification_token.expose(), VERIFICATION_TOKEN);
    assert_eq!(webhook.replay_window, Duration::from_secs(8 * 3600));
    assert_eq!(webhook.dedup_ttl, Duration::from_secs(24 * 3600));
    assert_eq!(webhook.max_body_bytes, 262_144);
    assert_eq!(
        webhook.max_body_bytes,
        cardbot::config::DEFAULT_MAX_BODY_BYTES
    );
}

#[test]
fn every_variable_is_read() {
    let mut env = full_env();
    for (k, v) in [
        ("FEISHU_BASE_URL", "https://open.larksuite.com/"),
        ("CARD_DELIVERY", "message"),
        ("APPROVAL_TTL", "3d"),
        ("REPLAY_WINDOW", "30m"),
        ("DEDUP_TTL", "7200"),
        ("MAX_BODY_BYTES", "65536"),
        ("ANSWER_BUDGET_MS", "1800"),
        ("TENANT_TIME_ZONE", "Europe/Berlin"),
    ] {
        env.insert(k, v.to_owned());
    }
    let config = load(&env).unwrap();
    assert_eq!(config.time_zone.iana_name(), Some("Europe/Berlin"));
    assert_eq!(feishu(&env).unwrap().base_url, "https://open.larksuite.com");
    assert_eq!(config.card_delivery, CardDelivery::Message);
    assert_eq!(config.approval_ttl, Duration::from_secs(3 * 86_400));
    let webhook = webhook(&env).unwrap();
    assert_eq!(webhook.replay_window, Duration::from_secs(1800));
    assert_eq!(webhook.dedup_ttl, Duration::from_secs(7200));
    assert_eq!(webhook.max_body_bytes, 65_536);
    assert_eq!(config.answer_budget, Duration::from_millis(1800));
}

#[test]
fn simulator_base_url_over_http_is_accepted() {
    let app = feishu(&with("FEISHU_BASE_URL", "http://127.0.0.1:9123")).unwrap();
    assert_eq!(app.base_url, "http://127.0.0.1:9123");
    let config = load(&with("CARD_DELIVERY", "entity")).unwrap();
    assert_eq!(config.card_delivery, CardDelivery::Entity);
    // The one parser of the mode is case- and space-insensitive, here as in stored items.
    let config = load(&with("CARD_DELIVERY", " Message ")).unwrap();
    assert_eq!(config.card_delivery, CardDelivery::Message);
}

#[test]
fn the_time_zone_defaults_to_shanghai_and_must_be_an_iana_name() {
    let config = load(&full_env()).unwrap();
    assert_eq!(config.time_zone.iana_name(), Some("Asia/Shanghai"));
    for bad in ["Mars/Olympus_Mons", "UTC+8", "../../etc/passwd"] {
        let err = load(&with("TENANT_TIME_ZONE", bad)).unwrap_err();
        assert!(err.to_string().contains("TENANT_TIME_ZONE"), "{bad}: {err}");
    }
}

// ---------- encrypted by default ----------

#[test]
fn without_an_encrypt_key_the_webhook_refuses_to_load_and_says_how_to_opt_out() {
    let mut env = full_env();
    env.remove("FEISHU_ENCRYPT_KEY");
    for env in [
        env.clone(),
        with("FEISHU_ENCRYPT_KEY", ""),
        with("FEISHU_ENCRYPT_KEY", " "),
    ] {
        let err = webhook(&env).unwrap_err();
        assert_eq!(err, ConfigError::EncryptKeyRequired);
        let text = err.to_string();
        assert!(text.contains("FEISHU_ENCRYPT_KEY"), "{text}");
        assert!(text.contains("ALLOW_UNENCRYPTED=true"), "{text}");
    }
    let mut off = env.clone();
    off.insert("ALLOW_UNENCRYPTED", "false".to_owned());
    assert_eq!(webhook(&off).unwrap_err(), ConfigError::EncryptKeyRequired);
    // The opt-in.
    for yes in ["true", "TRUE", " True "] {
        let mut opted = env.clone();
        opted.insert("ALLOW_UNENCRYPTED", yes.to_owned());
        assert!(webhook(&opted).unwrap().encrypt_key.is_none(), "{yes:?}");
    }
    for bad in ["yes", "1", "on"] {
        let mut opted = env.clone();
        opted.insert("ALLOW_UNENCRYPTED", bad.to_owned());
        assert_eq!(
            webhook(&opted).unwrap_err(),
            ConfigError::Invalid {
                name: "ALLOW_UNENCRYPTED",
                reason: "expected true or false"
            }
        );
    }
    // With a key, the opt-in changes nothing: the key is used.
    let keyed = with("ALLOW_UNENCRYPTED", "true");
    assert_eq!(
        webhook(&keyed).unwrap().encrypt_key.unwrap().expose(),
        ENCRYPT_KEY
    );
    // The functions that never verify a webhook do not care.
    assert!(load(&env).is_ok());
    let updater = secrets(Function::CardUpdater, &env);
    assert!(FeishuConfig::from_lookup(|name| env.get(name).cloned(), &updater).is_ok());
}

// ---------- least privilege: each function holds only its secrets ----------

#[test]
fn each_function_holds_only_the_secrets_it_uses() {
    use SecretName::*;
    assert_eq!(
        Function::EventCallback.secrets(),
        &[AppSecret, EncryptKey, VerificationToken]
    );
    assert_eq!(
        Function::CardAction.secrets(),
        &[EncryptKey, VerificationToken]
    );
    assert_eq!(Function::CardUpdater.secrets(), &[AppSecret]);

    let env = full_env();
    let from_json = |f| Secrets::from_secret_string(f, &secret_json()).unwrap();
    for function in Function::ALL {
        for held in [secrets(function, &env), from_json(function)] {
            for name in SecretName::ALL {
                assert_eq!(
                    held.is_set(name),
                    function.holds(name),
                    "{function:?} {name:?}"
                );
            }
            // What it does not hold is not in memory at all.
            let debug = format!("{held:?}");
            assert_no_secret(&debug);
        }
    }

    // card-action never gets the App Secret, even when it is in its environment.
    let card_action = secrets(Function::CardAction, &env);
    assert_eq!(
        card_action.app_secret().unwrap_err(),
        ConfigError::NotHeld {
            function: "card-action",
            name: "FEISHU_APP_SECRET"
        }
    );
    assert!(card_action
        .app_secret()
        .unwrap_err()
        .to_string()
        .contains("card-action"));
    assert!(FeishuConfig::from_lookup(|name| env.get(name).cloned(), &card_action).is_err());
    let webhook = WebhookConfig::from_lookup(|name| env.get(name).cloned(), &card_action).unwrap();
    assert_eq!(webhook.verification_token.expose(), VERIFICATION_TOKEN);

    // The updater holds neither webhook secret.
    let updater = secrets(Function::CardUpdater, &env);
    assert!(matches!(
        updater.verification_token(),
        Err(ConfigError::NotHeld { .. })
    ));
    assert!(matches!(
        updater.encrypt_key(),
        Err(ConfigError::NotHeld { .. })
    ));
    assert!(WebhookConfig::from_lookup(|name| env.get(name).cloned(), &updater).is_err());
    assert_eq!(
        FeishuConfig::from_lookup(|name| env.get(name).cloned(), &updater)
            .unwrap()
            .app_secret
            .expose(),
        APP_SECRET
    );
}

#[test]
fn the_secrets_manager_secret_is_read_by_key() {
    let s = Secrets::from_secret_string(Function::EventCallback, &secret_json()).unwrap();
    assert_eq!(s.source(), SecretSource::SecretsManager);
    assert_eq!(s.app_secret().unwrap().expose(), APP_SECRET);
    assert_eq!(s.encrypt_key().unwrap().unwrap().expose(), ENCRYPT_KEY);
    assert_eq!(s.verification_token().unwrap().expose(), VERIFICATION_TOKEN);

    // A missing key is named as the key of the secret, not as an env variable.
    let partial = r#"{"encrypt_key": "k", "other": 1}"#;
    let s = Secrets::from_secret_string(Function::EventCallback, partial).unwrap();
    assert_eq!(
        s.verification_token().unwrap_err(),
        ConfigError::MissingInSecret {
            key: "verification_token"
        }
    );
    let text = s.app_secret().unwrap_err().to_string();
    assert!(
        text.contains("app_secret") && text.contains("FEISHU_SECRET_ARN"),
        "{text}"
    );
    // An empty Encrypt Key in the secret is no key: encrypted by default applies.
    let unencrypted = r#"{"app_secret": "a", "encrypt_key": "", "verification_token": "v"}"#;
    let s = Secrets::from_secret_string(Function::CardAction, unencrypted).unwrap();
    let none: HashMap<&str, String> = HashMap::new();
    assert_eq!(
        WebhookConfig::from_lookup(|name| none.get(name).cloned(), &s).unwrap_err(),
        ConfigError::EncryptKeyRequired
    );
    // A value the function does not read may be anything; one it reads must be a string.
    let odd = r#"{"app_secret": 5, "encrypt_key": "k", "verification_token": "v"}"#;
    assert!(Secrets::from_secret_string(Function::CardAction, odd).is_ok());
    assert!(matches!(
        Secrets::from_secret_string(Function::CardUpdater, odd),
        Err(ConfigError::InvalidSecret { .. })
    ));
    // Not JSON, or not an object: the error never echoes the text.
    for bad in [
        APP_SECRET.to_owned(),
        format!("[\"{APP_SECRET}\"]"),
        format!("{{\"app_secret\": \"{APP_SECRET}\""),
    ] {
        let err = Secrets::from_secret_string(Function::CardUpdater, &bad).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidSecret { .. }), "{err:?}");
        assert_no_secret(&format!("{err} {err:?}"));
    }
    // Secrets are kept byte for byte here too.
    let spaced = r#"{"app_secret": " a b "}"#;
    let s = Secrets::from_secret_string(Function::CardUpdater, spaced).unwrap();
    assert_eq!(s.app_secret().unwrap().expose(), " a b ");
}

#[test]
fn each_missing_required_variable_is_named() {
    type Check = fn(&Env) -> Option<ConfigError>;
    let checks: [(&str, Check); 4] = [
        ("FEISHU_APP_ID", |env| feishu(env).err()),
        ("FEISHU_APP_SECRET", |env| feishu(env).err()),
        ("FEISHU_VERIFICATION_TOKEN", |env| webhook(env).err()),
        ("TABLE_NAME", |env| load(env).err()),
    ];
    for (name, check) in checks {
        let mut env = full_env();
        env.remove(name);
        assert_eq!(check(&env), Some(ConfigError::Missing { name }));
        env.insert(name, "  ".to_owned());
        assert_eq!(
            check(&env),
            Some(ConfigError::Missing { name }),
            "blank {name}"
        );
        assert!(check(&env).unwrap().to_string().contains(name));
    }
}

#[test]
fn each_invalid_variable_is_named_without_its_value() {
    let cases = [
        ("FEISHU_BASE_URL", "ftp://open.feishu.cn"),
        ("FEISHU_BASE_URL", "host-without-scheme.example"),
        ("FEISHU_BASE_URL", "https:///no-host"),
        ("FEISHU_BASE_URL", "https://user@open.feishu.cn"),
        ("FEISHU_BASE_URL", "https://open.feishu.cn/?q=1"),
        ("FEISHU_BASE_URL", "https://open feishu.cn"),
        ("CARD_DELIVERY", "carrier-pigeon"),
        ("APPROVAL_TTL", "7 days"),
        ("REPLAY_WINDOW", "0"),
        ("REPLAY_WINDOW", "8x"),
        ("DEDUP_TTL", "-5"),
        ("DEDUP_TTL", "h"),
        ("MAX_BODY_BYTES", "1MiB"),
        ("MAX_BODY_BYTES", "0"),
        ("ANSWER_BUDGET_MS", "2.5s"),
        ("ANSWER_BUDGET_MS", "+100"),
        ("ALLOW_UNENCRYPTED", "maybe-later"),
    ];
    for (name, value) in cases {
        let env = with(name, value);
        let err = [load(&env).err(), feishu(&env).err(), webhook(&env).err()]
            .into_iter()
            .flatten()
            .next()
            .unwrap_or_else(|| panic!("{name}={value:?} accepted"));
        assert!(
            matches!(err, ConfigError::Invalid { name: n, .. } if n == name),
            "{name}={value:?} gave {err:?}"
        );
        let text = err.to_string();
        assert!(text.starts_with(name), "{text}");
        // Short values ("h", "0") occur in any sentence; longer ones must not be echoed.
        assert!(
            value.len() < 6 || !text.contains(value),
            "{text} echoes {value}"
        );
    }
}

#[test]
fn replay_window_must_be_shorter_than_dedup_ttl() {
    let mut env = full_env();
    env.insert("REPLAY_WINDOW", "24h".into());
    env.insert("DEDUP_TTL", "1d".into());
    assert!(matches!(
        webhook(&env).unwrap_err(),
        ConfigError::Invalid {
            name: "REPLAY_WINDOW",
            ..
        }
    ));
    env.insert("REPLAY_WINDOW", "23h".into());
    assert_eq!(
        webhook(&env).unwrap().replay_window,
        Duration::from_secs(23 * 3600)
    );
    env.insert("DEDUP_TTL", "4h".into());
    env.remove("REPLAY_WINDOW");
    assert!(
        webhook(&env).is_err(),
        "default 8 h window against a 4 h dedup TTL"
    );
}

#[test]
fn durations_accept_plain_seconds_and_suffixes() {
    let cases = [
        ("45", 45),
        ("30s", 30),
        ("10m", 600),
        ("8h", 28_800),
        ("7d", 604_800),
        (" 2h ", 7200),
    ];
    for (text, secs) in cases {
        assert_eq!(
            parse_duration(text),
            Some(Duration::from_secs(secs)),
            "{text}"
        );
    }
    for bad in [
        "",
        "s",
        "0",
        "0s",
        "1.5h",
        "-1",
        "10w",
        "1h30m",
        "99999999999999999999d",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad:?}");
    }
}

#[test]
fn webhook_config_builds_without_app_variables() {
    let env: Env = HashMap::from([
        ("FEISHU_VERIFICATION_TOKEN", VERIFICATION_TOKEN.to_owned()),
        ("FEISHU_ENCRYPT_KEY", ENCRYPT_KEY.to_owned()),
    ]);
    let card_action = secrets(Function::CardAction, &env);
    let webhook = WebhookConfig::from_lookup(|name| env.get(name).cloned(), &card_action).unwrap();
    assert_eq!(webhook.verification_token.expose(), VERIFICATION_TOKEN);
    assert_eq!(webhook.encrypt_key.unwrap().expose(), ENCRYPT_KEY);
    assert_eq!(
        FeishuConfig::from_lookup(
            |name| env.get(name).cloned(),
            &secrets(Function::EventCallback, &env)
        )
        .unwrap_err(),
        ConfigError::Missing {
            name: "FEISHU_APP_ID"
        }
    );
}

#[test]
fn secrets_are_kept_byte_for_byte() {
    let webhook = webhook(&with("FEISHU_ENCRYPT_KEY", " key with spaces ")).unwrap();
    assert_eq!(webhook.encrypt_key.unwrap().expose(), " key with spaces ");
}

#[test]
fn debug_and_display_never_show_secrets() {
    let env = full_env();
    let debug = format!(
        "{:?} {:#?} {:?} {:#?} {:?}",
        load(&env).unwrap(),
        feishu(&env).unwrap(),
        webhook(&env).unwrap(),
        secrets(Function::EventCallback, &env),
        Secrets::from_secret_string(Function::EventCallback, &secret_json()).unwrap(),
    );
    assert_no_secret(&debug);
    assert!(debug.contains("<redacted>"));
    assert!(
        debug.contains("cli_9f5343c580712544"),
        "non-secrets still print"
    );

    assert_eq!(AppSecret::new(APP_SECRET).to_string(), "<redacted>");
    assert_eq!(EncryptKey::new(ENCRYPT_KEY).to_string(), "<redacted>");
    assert_eq!(
        VerificationToken::new(VERIFICATION_TOKEN).to_string(),
        "<redacted>"
    );
    assert_eq!(
        format!("{:?}", EncryptKey::new(ENCRYPT_KEY)),
        "EncryptKey(<redacted>)"
    );

    // Errors raised while secrets are set never carry them either.
    let errors = [
        load(&with("TABLE_NAME", "")).unwrap_err(),
        load(&with("CARD_DELIVERY", "x")).unwrap_err(),
        webhook(&with("REPLAY_WINDOW", "48h")).unwrap_err(),
        // A secret-valued typo in a non-secret variable is not echoed.
        load(&with("CARD_DELIVERY", APP_SECRET)).unwrap_err(),
        webhook(&with("ALLOW_UNENCRYPTED", ENCRYPT_KEY)).unwrap_err(),
    ];
    for err in errors {
        assert_no_secret(&format!("{err} {err:?}"));
    }
}
