//! Env → typed config, validated at start: the Feishu app ([`FeishuConfig`]), the webhook
//! ([`WebhookConfig`]) and each function's secrets (from Secrets Manager or plain env), which hold
//! only what that function uses and are wrapped so they never print. [`EnvVars`] reads a bot's own
//! settings the same way.

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
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret value itself; call only where it is sent or hashed.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        $crate::config::redacted_fmt!($name);
    };
}
#[allow(unused_imports)]
pub(crate) use secret_string;

/// `Debug` and `Display` of a secret type: `Name(<redacted>)` and `<redacted>`.
macro_rules! redacted_fmt {
    ($name:ident) => {
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
pub(crate) use redacted_fmt;

secret_string!(
    /// The app secret (`FEISHU_APP_SECRET`), exchanged for a tenant_access_token.
    AppSecret
);
/// The Encrypt Key (`FEISHU_ENCRYPT_KEY`): AES key source and SHA-256 signature key. Its AES-256
/// key, SHA-256(Encrypt Key), is derived once when the key is loaded, not on every request.
/// `Debug`/`Display` print `<redacted>`; equality is the value's (the key follows from it).
#[derive(Clone, PartialEq, Eq, ::serde::Deserialize)]
#[serde(from = "String")]
pub struct EncryptKey {
    value: String,
    aes_key: [u8; 32],
}

impl EncryptKey {
    /// Wraps the Encrypt Key and derives its AES-256 key (SHA-256 of it).
    pub fn new(value: impl Into<String>) -> Self {
        use sha2::Digest as _;
        let value = value.into();
        let aes_key = sha2::Sha256::digest(value.as_bytes()).into();
        Self { value, aes_key }
    }

    /// The secret value itself; call only where it is sent or hashed.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The AES-256 key of Feishu's body encryption: SHA-256 of the Encrypt Key.
    pub(crate) fn aes_key(&self) -> &[u8; 32] {
        &self.aes_key
    }
}

impl From<String> for EncryptKey {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

redacted_fmt!(EncryptKey);
secret_string!(
    /// The Verification Token (`FEISHU_VERIFICATION_TOKEN`): `header.token` / `token` of every request,
    /// and the SHA-1 key of legacy card callbacks.
    VerificationToken
);

/// A missing or invalid setting; never carries a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or blank.
    #[error("{name} is not set")]
    Missing {
        /// The variable's name.
        name: &'static str,
    },
    /// A variable's value is unusable.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// Why, in fixed words (never the value).
        reason: &'static str,
    },
    /// No Encrypt Key, and `ALLOW_UNENCRYPTED` is not `true`.
    #[error(
        "FEISHU_ENCRYPT_KEY (or encrypt_key in the FEISHU_SECRET_ARN secret) is not set: without an \
         Encrypt Key Feishu signs nothing and anyone who has seen one request can forge events and \
         clicks. Set the app's Encrypt Key (事件与回调 > 加密策略), or set ALLOW_UNENCRYPTED=true to \
         run without one"
    )]
    EncryptKeyRequired,
    /// A key the function reads is absent (or blank) in the Secrets Manager secret.
    #[error("\"{key}\" is missing from the Secrets Manager secret named by FEISHU_SECRET_ARN")]
    MissingInSecret {
        /// The JSON key, e.g. `app_secret`.
        key: &'static str,
    },
    /// The Secrets Manager secret is not a JSON object of strings.
    #[error("the Secrets Manager secret named by FEISHU_SECRET_ARN is invalid: {reason}")]
    InvalidSecret {
        /// Why, in fixed words (never the value).
        reason: &'static str,
    },
    /// A secret was asked of a function that does not hold it.
    #[error("{function} does not hold {name}: it is not among the secrets that function uses")]
    NotHeld {
        /// The function's name.
        function: &'static str,
        /// The secret's env variable.
        name: &'static str,
    },
}

/// One of a Feishu app's three secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretName {
    /// The app secret (`FEISHU_APP_SECRET`, `app_secret`).
    AppSecret,
    /// The Encrypt Key (`FEISHU_ENCRYPT_KEY`, `encrypt_key`).
    EncryptKey,
    /// The Verification Token (`FEISHU_VERIFICATION_TOKEN`, `verification_token`).
    VerificationToken,
}

impl SecretName {
    /// All three.
    pub const ALL: [SecretName; 3] = [Self::AppSecret, Self::EncryptKey, Self::VerificationToken];

    /// Its plain environment variable (local runs, when `FEISHU_SECRET_ARN` is unset).
    pub fn env_var(self) -> &'static str {
        match self {
            Self::AppSecret => "FEISHU_APP_SECRET",
            Self::EncryptKey => "FEISHU_ENCRYPT_KEY",
            Self::VerificationToken => "FEISHU_VERIFICATION_TOKEN",
        }
    }

    /// Its key in the JSON of the Secrets Manager secret.
    pub fn json_key(self) -> &'static str {
        match self {
            Self::AppSecret => "app_secret",
            Self::EncryptKey => "encrypt_key",
            Self::VerificationToken => "verification_token",
        }
    }
}

/// Where a function's secrets came from, so an error names the place to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// Plain env values (`FEISHU_APP_SECRET`, …).
    Env,
    /// The Secrets Manager secret named by `FEISHU_SECRET_ARN`.
    SecretsManager,
}

/// A function as its secrets see it: its name (for errors) and the secrets it holds. Each function
/// of a bot holds only the secrets it uses (least privilege); the bot names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretHolder {
    /// The function's name, e.g. `event-callback`.
    pub name: &'static str,
    /// The secrets it holds; the others are never read into it.
    pub secrets: &'static [SecretName],
}

impl SecretHolder {
    /// Whether this function holds `secret`.
    pub fn holds(self, secret: SecretName) -> bool {
        self.secrets.contains(&secret)
    }
}

/// The secrets one function holds: only those in [`SecretHolder::secrets`] are ever read into it.
#[derive(Debug, Clone)]
pub struct Secrets {
    function: SecretHolder,
    source: SecretSource,
    app_secret: Option<AppSecret>,
    encrypt_key: Option<EncryptKey>,
    verification_token: Option<VerificationToken>,
}

impl Secrets {
    /// From plain env values; blank counts as unset.
    pub fn from_env(function: impl Into<SecretHolder>) -> Self {
        Self::from_lookup(function, env_lookup)
    }

    /// From any variable source (tests pass a map); reads only `function`'s variables.
    pub fn from_lookup(
        function: impl Into<SecretHolder>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let function = function.into();
        let vars = EnvVars(&lookup);
        let mut secrets = Self::empty(function, SecretSource::Env);
        for &name in function.secrets {
            secrets.set(name, vars.secret_optional(name.env_var()));
        }
        secrets
    }

    /// From the `SecretString` of the Secrets Manager secret, a JSON object such as
    /// `{"app_secret": "…", "encrypt_key": "…", "verification_token": "…"}`. Keys the function
    /// does not use are dropped unread; an empty string counts as unset.
    pub fn from_secret_string(
        function: impl Into<SecretHolder>,
        text: &str,
    ) -> Result<Self, ConfigError> {
        let function = function.into();
        // serde's messages quote the offending input: map them to fixed reasons.
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|_| ConfigError::InvalidSecret {
                reason: "expected a JSON object of strings",
            })?;
        let mut secrets = Self::empty(function, SecretSource::SecretsManager);
        for &name in function.secrets {
            let value = match object.get(name.json_key()) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(v)) => Some(v.clone()),
                Some(_) => {
                    return Err(ConfigError::InvalidSecret {
                        reason: "a value the function reads is not a string",
                    })
                }
            };
            secrets.set(name, value.filter(|v| !v.trim().is_empty()));
        }
        Ok(secrets)
    }

    fn empty(function: SecretHolder, source: SecretSource) -> Self {
        Self {
            function,
            source,
            app_secret: None,
            encrypt_key: None,
            verification_token: None,
        }
    }

    fn set(&mut self, name: SecretName, value: Option<String>) {
        match name {
            SecretName::AppSecret => self.app_secret = value.map(AppSecret::new),
            SecretName::EncryptKey => self.encrypt_key = value.map(EncryptKey::new),
            SecretName::VerificationToken => {
                self.verification_token = value.map(VerificationToken::new)
            }
        }
    }

    /// The function these secrets belong to.
    pub fn function(&self) -> SecretHolder {
        self.function
    }

    /// Where the secrets came from.
    pub fn source(&self) -> SecretSource {
        self.source
    }

    /// Whether `name` is set (it is never set for a secret the function does not hold).
    pub fn is_set(&self, name: SecretName) -> bool {
        match name {
            SecretName::AppSecret => self.app_secret.is_some(),
            SecretName::EncryptKey => self.encrypt_key.is_some(),
            SecretName::VerificationToken => self.verification_token.is_some(),
        }
    }

    /// The app secret; [`ConfigError::NotHeld`] when the function does not hold it,
    /// [`ConfigError::Missing`] or [`ConfigError::MissingInSecret`] when it is unset.
    pub fn app_secret(&self) -> Result<AppSecret, ConfigError> {
        self.required(SecretName::AppSecret, self.app_secret.as_ref())
    }

    /// The Verification Token; [`ConfigError::NotHeld`] when the function does not hold it,
    /// [`ConfigError::Missing`] or [`ConfigError::MissingInSecret`] when it is unset.
    pub fn verification_token(&self) -> Result<VerificationToken, ConfigError> {
        self.required(
            SecretName::VerificationToken,
            self.verification_token.as_ref(),
        )
    }

    /// `None` when unset: the caller decides whether that is allowed (`ALLOW_UNENCRYPTED`).
    pub fn encrypt_key(&self) -> Result<Option<EncryptKey>, ConfigError> {
        self.held(SecretName::EncryptKey)?;
        Ok(self.encrypt_key.clone())
    }

    fn held(&self, name: SecretName) -> Result<(), ConfigError> {
        if self.function.holds(name) {
            Ok(())
        } else {
            Err(ConfigError::NotHeld {
                function: self.function.name,
                name: name.env_var(),
            })
        }
    }

    fn required<T: Clone>(&self, name: SecretName, value: Option<&T>) -> Result<T, ConfigError> {
        self.held(name)?;
        value.cloned().ok_or(match self.source {
            SecretSource::Env => ConfigError::Missing {
                name: name.env_var(),
            },
            SecretSource::SecretsManager => ConfigError::MissingInSecret {
                key: name.json_key(),
            },
        })
    }
}

/// The Feishu app: who we are and where the Open API lives.
#[derive(Debug, Clone)]
pub struct FeishuConfig {
    /// `FEISHU_APP_ID`: the app's `app_id`.
    pub app_id: String,
    /// The app secret, exchanged for a tenant_access_token.
    pub app_secret: AppSecret,
    /// Without a trailing slash, e.g. `https://open.feishu.cn`.
    pub base_url: String,
}

/// What the webhook needs to verify an inbound request.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `None` only in unencrypted mode (`ALLOW_UNENCRYPTED=true`, no Encrypt Key in the console):
    /// bodies are plain and unsigned, and every request but the challenge must carry a timestamp
    /// inside the replay window.
    pub encrypt_key: Option<EncryptKey>,
    /// The Verification Token every request must carry.
    pub verification_token: VerificationToken,
    /// A signed request older than this is rejected as a replay.
    pub replay_window: Duration,
    /// How long an inbound id is remembered; longer than `replay_window`, so a replay inside the
    /// window is always caught as a duplicate.
    pub dedup_ttl: Duration,
    /// The largest body accepted, in bytes (`MAX_BODY_BYTES`, default [`DEFAULT_MAX_BODY_BYTES`]).
    pub max_body_bytes: usize,
}

// Feishu retries an event for about 7.1 h, so a legitimate retry must still fit in the window.
const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(8 * 3600);
const DEFAULT_DEDUP_TTL: Duration = Duration::from_secs(24 * 3600);
/// Request body cap (`MAX_BODY_BYTES`): a user's text message may hold 150 KB, which an encrypted
/// event carries as about 210 KB of base64; card callbacks stay under a few KB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

impl FeishuConfig {
    /// `FEISHU_APP_ID`, `FEISHU_BASE_URL` and the app secret from `secrets`.
    pub fn from_env(secrets: &Secrets) -> Result<Self, ConfigError> {
        Self::from_lookup(env_lookup, secrets)
    }

    /// As [`FeishuConfig::from_env`], from any variable source. [`ConfigError`] when
    /// `FEISHU_APP_ID` is unset, `FEISHU_BASE_URL` is not an http(s) URL, or the app secret is
    /// unavailable.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        secrets: &Secrets,
    ) -> Result<Self, ConfigError> {
        let vars = EnvVars(&lookup);
        Ok(Self {
            app_id: vars.required("FEISHU_APP_ID")?,
            app_secret: secrets.app_secret()?,
            base_url: match vars.optional("FEISHU_BASE_URL") {
                None => FEISHU_BASE_URL.to_owned(),
                Some(v) => base_url("FEISHU_BASE_URL", &v)?,
            },
        })
    }
}

impl WebhookConfig {
    /// Defaults for everything but the secrets (8 h replay window, 24 h dedup, 256 KiB bodies).
    /// `encrypt_key: None` is unencrypted mode, which [`WebhookConfig::from_env`] allows only with
    /// `ALLOW_UNENCRYPTED=true`.
    pub fn new(verification_token: VerificationToken, encrypt_key: Option<EncryptKey>) -> Self {
        Self {
            encrypt_key,
            verification_token,
            replay_window: DEFAULT_REPLAY_WINDOW,
            dedup_ttl: DEFAULT_DEDUP_TTL,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// The Encrypt Key and Verification Token from `secrets`, `ALLOW_UNENCRYPTED`,
    /// `REPLAY_WINDOW`, `DEDUP_TTL` and `MAX_BODY_BYTES`. Without an Encrypt Key this refuses
    /// to load unless `ALLOW_UNENCRYPTED=true`.
    pub fn from_env(secrets: &Secrets) -> Result<Self, ConfigError> {
        Self::from_lookup(env_lookup, secrets)
    }

    /// As [`WebhookConfig::from_env`], from any variable source. [`ConfigError`] when a secret is
    /// unavailable, a setting is invalid, or `REPLAY_WINDOW` is not shorter than `DEDUP_TTL`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        secrets: &Secrets,
    ) -> Result<Self, ConfigError> {
        let vars = EnvVars(&lookup);
        let allow_unencrypted = vars.flag("ALLOW_UNENCRYPTED")?;
        let encrypt_key = secrets.encrypt_key()?;
        if encrypt_key.is_none() && !allow_unencrypted {
            return Err(ConfigError::EncryptKeyRequired);
        }
        let config = Self {
            encrypt_key,
            verification_token: secrets.verification_token()?,
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

/// The process environment as a variable source.
pub fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads settings from a variable source (the environment, or a map in tests); blank values count
/// as unset, and every error names the variable, never its value.
pub struct EnvVars<'a>(pub &'a dyn Fn(&str) -> Option<String>);

impl EnvVars<'_> {
    /// The trimmed value; `None` when unset or blank.
    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The trimmed value; [`ConfigError::Missing`] when unset or blank.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing { name })
    }

    // Secrets are kept byte for byte: they are hashed, so trimming would change them silently.
    fn secret_optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// `true` or `false` (any case); unset is `false`.
    pub fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.optional(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(ConfigError::Invalid {
                name,
                reason: "expected true or false",
            }),
        }
    }

    /// A duration ([`parse_duration`]); `default` when unset.
    pub fn duration(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
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

/// A positive integer setting; [`ConfigError::Invalid`] names `name` otherwise.
pub fn positive_integer(name: &'static str, value: &str) -> Result<u64, ConfigError> {
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
