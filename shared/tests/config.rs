//! `cardbot::config`: env parsing, defaults, validation, and that secrets never print.

use std::collections::HashMap;
use std::time::Duration;

use cardbot::config::{
    parse_duration, AppSecret, CardDelivery, Config, ConfigError, EncryptKey, FeishuConfig,
    VerificationToken, WebhookConfig,
};

const APP_SECRET: &str = "app-secret-value-7f3a";
const ENCRYPT_KEY: &str = "encrypt-key-value-91bc";
const VERIFICATION_TOKEN: &str = "verification-token-value-44de";
const SECRETS: [&str; 3] = [APP_SECRET, ENCRYPT_KEY, VERIFICATION_TOKEN];

fn full_env() -> HashMap<&'static str, String> {
    HashMap::from([
        ("FEISHU_APP_ID", "cli_9f5343c580712544".to_owned()),
        ("FEISHU_APP_SECRET", APP_SECRET.to_owned()),
        ("FEISHU_ENCRYPT_KEY", ENCRYPT_KEY.to_owned()),
        ("FEISHU_VERIFICATION_TOKEN", VERIFICATION_TOKEN.to_owned()),
        ("TABLE_NAME", "cardbot".to_owned()),
    ])
}

fn load(env: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
    Config::from_lookup(|name| env.get(name).cloned())
}

fn with(var: &'static str, value: &str) -> Result<Config, ConfigError> {
    let mut env = full_env();
    env.insert(var, value.to_owned());
    load(&env)
}

fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "secret leaked into {text:?}");
    }
}

#[test]
fn minimal_env_gets_documented_defaults() {
    let config = load(&full_env()).unwrap();
    assert_eq!(config.feishu.app_id, "cli_9f5343c580712544");
    assert_eq!(config.feishu.app_secret.expose(), APP_SECRET);
    assert_eq!(config.feishu.base_url, "https://open.feishu.cn");
    assert_eq!(config.table_name, "cardbot");
    assert_eq!(config.card_delivery, CardDelivery::Entity);
    assert_eq!(config.approval_ttl, Duration::from_secs(7 * 86_400));
    assert_eq!(config.answer_budget, Duration::from_millis(2500));
    let webhook = &config.webhook;
    assert_eq!(webhook.encrypt_key.as_ref().unwrap().expose(), ENCRYPT_KEY);
    assert_eq!(webhook.verification_token.expose(), VERIFICATION_TOKEN);
    assert_eq!(webhook.replay_window, Duration::from_secs(8 * 3600));
    assert_eq!(webhook.dedup_ttl, Duration::from_secs(24 * 3600));
    assert_eq!(webhook.max_body_bytes, 1_048_576);
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
    assert_eq!(config.feishu.base_url, "https://open.larksuite.com");
    assert_eq!(config.card_delivery, CardDelivery::Message);
    assert_eq!(config.approval_ttl, Duration::from_secs(3 * 86_400));
    assert_eq!(config.webhook.replay_window, Duration::from_secs(1800));
    assert_eq!(config.webhook.dedup_ttl, Duration::from_secs(7200));
    assert_eq!(config.webhook.max_body_bytes, 65_536);
    assert_eq!(config.answer_budget, Duration::from_millis(1800));
}

#[test]
fn simulator_base_url_over_http_is_accepted() {
    let config = with("FEISHU_BASE_URL", "http://127.0.0.1:9123").unwrap();
    assert_eq!(config.feishu.base_url, "http://127.0.0.1:9123");
    let config = with("CARD_DELIVERY", "entity").unwrap();
    assert_eq!(config.card_delivery, CardDelivery::Entity);
    // The one parser of the mode is case- and space-insensitive, here as in stored items.
    let config = with("CARD_DELIVERY", " Message ").unwrap();
    assert_eq!(config.card_delivery, CardDelivery::Message);
}

#[test]
fn the_time_zone_defaults_to_shanghai_and_must_be_an_iana_name() {
    let config = load(&full_env()).unwrap();
    assert_eq!(config.time_zone.iana_name(), Some("Asia/Shanghai"));
    for bad in ["Mars/Olympus_Mons", "UTC+8", "../../etc/passwd"] {
        let err = with("TENANT_TIME_ZONE", bad).unwrap_err();
        assert!(err.to_string().contains("TENANT_TIME_ZONE"), "{bad}: {err}");
    }
}

#[test]
fn empty_encrypt_key_means_none() {
    let config = with("FEISHU_ENCRYPT_KEY", "").unwrap();
    assert!(config.webhook.encrypt_key.is_none());
    let mut env = full_env();
    env.remove("FEISHU_ENCRYPT_KEY");
    assert!(load(&env).unwrap().webhook.encrypt_key.is_none());
}

#[test]
fn each_missing_required_variable_is_named() {
    for name in [
        "FEISHU_APP_ID",
        "FEISHU_APP_SECRET",
        "FEISHU_VERIFICATION_TOKEN",
        "TABLE_NAME",
    ] {
        let mut env = full_env();
        env.remove(name);
        assert_eq!(load(&env).unwrap_err(), ConfigError::Missing { name });
        env.insert(name, "  ".to_owned());
        assert_eq!(
            load(&env).unwrap_err(),
            ConfigError::Missing { name },
            "blank {name}"
        );
        assert!(load(&env).unwrap_err().to_string().contains(name));
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
    ];
    for (name, value) in cases {
        let err = with(name, value).unwrap_err();
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
        load(&env).unwrap_err(),
        ConfigError::Invalid {
            name: "REPLAY_WINDOW",
            ..
        }
    ));
    env.insert("REPLAY_WINDOW", "23h".into());
    assert_eq!(
        load(&env).unwrap().webhook.replay_window,
        Duration::from_secs(23 * 3600)
    );
    env.insert("DEDUP_TTL", "4h".into());
    env.remove("REPLAY_WINDOW");
    assert!(
        load(&env).is_err(),
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
    let env = HashMap::from([("FEISHU_VERIFICATION_TOKEN", VERIFICATION_TOKEN.to_owned())]);
    let webhook = WebhookConfig::from_lookup(|name| env.get(name).cloned()).unwrap();
    assert_eq!(webhook.verification_token.expose(), VERIFICATION_TOKEN);
    assert!(webhook.encrypt_key.is_none());
    assert_eq!(
        FeishuConfig::from_lookup(|name| env.get(name).cloned()).unwrap_err(),
        ConfigError::Missing {
            name: "FEISHU_APP_ID"
        }
    );
}

#[test]
fn secrets_are_kept_byte_for_byte() {
    let config = with("FEISHU_ENCRYPT_KEY", " key with spaces ").unwrap();
    assert_eq!(
        config.webhook.encrypt_key.unwrap().expose(),
        " key with spaces "
    );
}

#[test]
fn debug_and_display_never_show_secrets() {
    let config = load(&full_env()).unwrap();
    let debug = format!("{config:?} {:#?}", config);
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
    for (name, value) in [
        ("TABLE_NAME", ""),
        ("CARD_DELIVERY", "x"),
        ("REPLAY_WINDOW", "48h"),
    ] {
        let err = with(name, value).unwrap_err();
        assert_no_secret(&format!("{err} {err:?}"));
    }
    // A secret-valued typo in a non-secret variable is not echoed.
    let err = with("CARD_DELIVERY", APP_SECRET).unwrap_err();
    assert_no_secret(&format!("{err} {err:?}"));
}
