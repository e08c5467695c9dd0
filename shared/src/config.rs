//! Env → typed config, validated at start; secrets are wrapped so they never print.

use std::time::Duration;

/// Feishu (China) Open Platform base URL, the default.
pub const FEISHU_BASE_URL: &str = "https://open.feishu.cn";
/// Lark (international) Open Platform base URL.
pub const LARK_BASE_URL: &str = "https://open.larksuite.com";

/// Defines a string secret whose `Debug`/`Display` print `<redacted>`.
macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, ::serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret value itself; call only where it is sent or hashed.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str("<redacted>")
            }
        }
    };
}
pub(crate) use secret_string;

secret_string!(
    /// The app secret (`FEISHU_APP_SECRET`), exchanged for a tenant_access_token.
    AppSecret
);
secret_string!(
    /// The Encrypt Key (`FEISHU_ENCRYPT_KEY`): AES key source and SHA-256 signature key.
    EncryptKey
);
secret_string!(
    /// The Verification Token (`FEISHU_VERIFICATION_TOKEN`): `header.token` / `token` of every request,
    /// and the SHA-1 key of legacy card callbacks.
    VerificationToken
);

/// A missing or invalid environment variable; never carries a variable's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set")]
    Missing { name: &'static str },
    #[error("{name} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        reason: &'static str,
    },
}

/// How the approval card is sent, and so how it is updated later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum CardDelivery {
    /// A CardKit card entity sent by `card_id` (element-level updates, strictly increasing `sequence`).
    #[default]
    Entity,
    /// A plain interactive message carrying the card JSON (updated with message PATCH).
    Message,
}

impl CardDelivery {
    /// `CARD_DELIVERY` and `CardState.delivery`: `entity` or `message`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Entity => "entity",
            Self::Message => "message",
        }
    }

    /// The one parser (`CARD_DELIVERY`, stored items, job payloads), case- and space-insensitive.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "entity" => Some(Self::Entity),
            "message" => Some(Self::Message),
            _ => None,
        }
    }
}

impl From<CardDelivery> for &'static str {
    fn from(mode: CardDelivery) -> Self {
        mode.as_str()
    }
}

impl TryFrom<String> for CardDelivery {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("unknown card delivery {s:?}"))
    }
}

/// The Feishu app: who we are and where the Open API lives.
#[derive(Debug, Clone)]
pub struct FeishuConfig {
    pub app_id: String,
    pub app_secret: AppSecret,
    /// Without a trailing slash, e.g. `https://open.feishu.cn`.
    pub base_url: String,
}

/// What the webhook needs to verify an inbound request.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `None` when the console has no Encrypt Key: bodies are plain and unsigned.
    pub encrypt_key: Option<EncryptKey>,
    pub verification_token: VerificationToken,
    /// A signed request older than this is rejected as a replay.
    pub replay_window: Duration,
    /// How long an inbound id is remembered; longer than `replay_window`, so a replay inside the
    /// window is always caught as a duplicate.
    pub dedup_ttl: Duration,
    pub max_body_bytes: usize,
}

/// Everything a cardbot function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub feishu: FeishuConfig,
    pub webhook: WebhookConfig,
    pub table_name: String,
    pub card_delivery: CardDelivery,
    /// How long an undecided approval stays open.
    pub approval_ttl: Duration,
    /// Time the callback handler may spend before it must answer Feishu (deadline 3 s).
    pub answer_budget: Duration,
    /// `TENANT_TIME_ZONE`: the IANA zone the cards show times in (default `Asia/Shanghai`).
    pub time_zone: jiff::tz::TimeZone,
}

/// The tutorial's tenant clock: China Standard Time.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

const DEFAULT_APPROVAL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
// Feishu retries an event for about 7.1 h, so a legitimate retry must still fit in the window.
const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(8 * 3600);
const DEFAULT_DEDUP_TTL: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
const DEFAULT_ANSWER_BUDGET: Duration = Duration::from_millis(2500);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_lookup)
    }

    /// Builds the config from any variable source (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(&lookup);
        Ok(Self {
            feishu: FeishuConfig::read(&vars)?,
            webhook: WebhookConfig::read(&vars)?,
            table_name: vars.required("TABLE_NAME")?,
            card_delivery: match vars.optional("CARD_DELIVERY") {
                None => CardDelivery::default(),
                Some(v) => CardDelivery::parse(&v).ok_or(ConfigError::Invalid {
                    name: "CARD_DELIVERY",
                    reason: "expected `entity` or `message`",
                })?,
            },
            approval_ttl: vars.duration("APPROVAL_TTL", DEFAULT_APPROVAL_TTL)?,
            answer_budget: match vars.optional("ANSWER_BUDGET_MS") {
                None => DEFAULT_ANSWER_BUDGET,
                Some(v) => Duration::from_millis(positive_integer("ANSWER_BUDGET_MS", &v)?),
            },
            time_zone: {
                let name = vars.optional("TENANT_TIME_ZONE");
                jiff::tz::TimeZone::get(name.as_deref().unwrap_or(DEFAULT_TIME_ZONE)).map_err(
                    |_| ConfigError::Invalid {
                        name: "TENANT_TIME_ZONE",
                        reason: "expected an IANA time zone name, e.g. Asia/Shanghai",
                    },
                )?
            },
        })
    }
}

impl FeishuConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_lookup)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&Vars(&lookup))
    }

    fn read(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            app_id: vars.required("FEISHU_APP_ID")?,
            app_secret: AppSecret::new(vars.secret("FEISHU_APP_SECRET")?),
            base_url: match vars.optional("FEISHU_BASE_URL") {
                None => FEISHU_BASE_URL.to_owned(),
                Some(v) => base_url("FEISHU_BASE_URL", &v)?,
            },
        })
    }
}

impl WebhookConfig {
    /// Defaults for everything but the secrets (8 h replay window, 24 h dedup, 1 MiB bodies).
    pub fn new(verification_token: VerificationToken, encrypt_key: Option<EncryptKey>) -> Self {
        Self {
            encrypt_key,
            verification_token,
            replay_window: DEFAULT_REPLAY_WINDOW,
            dedup_ttl: DEFAULT_DEDUP_TTL,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_lookup)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&Vars(&lookup))
    }

    fn read(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        let config = Self {
            // An empty value means "no Encrypt Key" (a SAM parameter left blank).
            encrypt_key: vars
                .secret_optional("FEISHU_ENCRYPT_KEY")
                .map(EncryptKey::new),
            verification_token: VerificationToken::new(vars.secret("FEISHU_VERIFICATION_TOKEN")?),
            replay_window: vars.duration("REPLAY_WINDOW", DEFAULT_REPLAY_WINDOW)?,
            dedup_ttl: vars.duration("DEDUP_TTL", DEFAULT_DEDUP_TTL)?,
            max_body_bytes: match vars.optional("MAX_BODY_BYTES") {
                None => DEFAULT_MAX_BODY_BYTES,
                Some(v) => {
                    usize::try_from(positive_integer("MAX_BODY_BYTES", &v)?).map_err(|_| {
                        ConfigError::Invalid {
                            name: "MAX_BODY_BYTES",
                            reason: "too large",
                        }
                    })?
                }
            },
        };
        if config.replay_window >= config.dedup_ttl {
            return Err(ConfigError::Invalid {
                name: "REPLAY_WINDOW",
                reason:
                    "must be shorter than DEDUP_TTL, or a replay inside the window escapes dedup",
            });
        }
        Ok(config)
    }
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads variables; blank values count as unset.
struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing { name })
    }

    // Secrets are kept byte for byte: they are hashed, so trimming would change them silently.
    fn secret_optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn secret(&self, name: &'static str) -> Result<String, ConfigError> {
        self.secret_optional(name)
            .ok_or(ConfigError::Missing { name })
    }

    fn duration(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => parse_duration(&v).ok_or(ConfigError::Invalid {
                name,
                reason: "expected a positive duration: seconds, or a number with s/m/h/d (e.g. 8h)",
            }),
        }
    }
}

/// Parses `90`, `30s`, `10m`, `8h` or `7d` into a positive duration.
pub fn parse_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (digits, unit_secs) = match value.as_bytes().last()? {
        b's' => (&value[..value.len() - 1], 1),
        b'm' => (&value[..value.len() - 1], 60),
        b'h' => (&value[..value.len() - 1], 3600),
        b'd' => (&value[..value.len() - 1], 86_400),
        _ => (value, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = digits.parse::<u64>().ok()?.checked_mul(unit_secs)?;
    (secs > 0).then(|| Duration::from_secs(secs))
}

fn positive_integer(name: &'static str, value: &str) -> Result<u64, ConfigError> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ConfigError::Invalid {
            name,
            reason: "expected a positive integer",
        }),
    }
}

fn base_url(name: &'static str, value: &str) -> Result<String, ConfigError> {
    let invalid = ConfigError::Invalid {
        name,
        reason: "expected an http(s) URL such as https://open.feishu.cn",
    };
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or(invalid.clone())?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_ok = !host.is_empty()
        && !host.contains('@')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    if !host_ok || rest.contains(['?', '#']) || value.chars().any(char::is_whitespace) {
        return Err(invalid);
    }
    Ok(value.trim_end_matches('/').to_owned())
}
