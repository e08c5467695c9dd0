//! Env → typed config, validated at start; each function's secrets (from Secrets Manager or plain
//! env) hold only what that function uses, and are wrapped so they never print.

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

        $crate::config::redacted_fmt!($name);
    };
}
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
    #[error("{name} is not set")]
    Missing { name: &'static str },
    #[error("{name} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        reason: &'static str,
    },
    #[error(
        "FEISHU_ENCRYPT_KEY (or encrypt_key in the FEISHU_SECRET_ARN secret) is not set: without an \
         Encrypt Key Feishu signs nothing and anyone who has seen one request can forge events and \
         clicks. Set the app's Encrypt Key (事件与回调 > 加密策略), or set ALLOW_UNENCRYPTED=true to \
         run without one"
    )]
    EncryptKeyRequired,
    #[error("\"{key}\" is missing from the Secrets Manager secret named by FEISHU_SECRET_ARN")]
    MissingInSecret { key: &'static str },
    #[error("the Secrets Manager secret named by FEISHU_SECRET_ARN is invalid: {reason}")]
    InvalidSecret { reason: &'static str },
    #[error("{function} does not hold {name}: it is not among the secrets that function uses")]
    NotHeld {
        function: &'static str,
        name: &'static str,
    },
}

/// The three Lambda functions. Each reads only the secrets it uses ([`Function::secrets`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// The event subscription URL: verifies webhooks and calls Feishu.
    EventCallback,
    /// The card callback URL: verifies webhooks, never calls Feishu.
    CardAction,
    /// The updater: calls Feishu, receives no webhook.
    CardUpdater,
}

impl Function {
    pub const ALL: [Function; 3] = [Self::EventCallback, Self::CardAction, Self::CardUpdater];

    /// The crate and binary name, as in `functions/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::EventCallback => "event-callback",
            Self::CardAction => "card-action",
            Self::CardUpdater => "card-updater",
        }
    }

    /// The secrets this function holds; the others are never read into it.
    pub fn secrets(self) -> &'static [SecretName] {
        use SecretName::*;
        match self {
            Self::EventCallback => &[AppSecret, EncryptKey, VerificationToken],
            Self::CardAction => &[EncryptKey, VerificationToken],
            Self::CardUpdater => &[AppSecret],
        }
    }

    pub fn holds(self, secret: SecretName) -> bool {
        self.secrets().contains(&secret)
    }
}

/// One of the app's three secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretName {
    AppSecret,
    EncryptKey,
    VerificationToken,
}

impl SecretName {
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

/// The secrets one function holds: only those in [`Function::secrets`] are ever read into it.
#[derive(Debug, Clone)]
pub struct Secrets {
    function: Function,
    source: SecretSource,
    app_secret: Option<AppSecret>,
    encrypt_key: Option<EncryptKey>,
    verification_token: Option<VerificationToken>,
}

impl Secrets {
    /// From plain env values; blank counts as unset.
    pub fn from_env(function: Function) -> Self {
        Self::from_lookup(function, env_lookup)
    }

    /// From any variable source (tests pass a map); reads only `function`'s variables.
    pub fn from_lookup(function: Function, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let vars = Vars(&lookup);
        let mut secrets = Self::empty(function, SecretSource::Env);
        for &name in function.secrets() {
            secrets.set(name, vars.secret_optional(name.env_var()));
        }
        secrets
    }

    /// From the `SecretString` of the Secrets Manager secret, a JSON object such as
    /// `{"app_secret": "…", "encrypt_key": "…", "verification_token": "…"}`. Keys the function
    /// does not use are dropped unread; an empty string counts as unset.
    pub fn from_secret_string(function: Function, text: &str) -> Result<Self, ConfigError> {
        // serde's messages quote the offending input: map them to fixed reasons.
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|_| ConfigError::InvalidSecret {
                reason: "expected a JSON object of strings",
            })?;
        let mut secrets = Self::empty(function, SecretSource::SecretsManager);
        for &name in function.secrets() {
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

    fn empty(function: Function, source: SecretSource) -> Self {
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

    pub fn function(&self) -> Function {
        self.function
    }

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

    pub fn app_secret(&self) -> Result<AppSecret, ConfigError> {
        self.required(SecretName::AppSecret, self.app_secret.as_ref())
    }

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
                function: self.function.name(),
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
    /// `None` only in unencrypted mode (`ALLOW_UNENCRYPTED=true`, no Encrypt Key in the console):
    /// bodies are plain and unsigned, and every request but the challenge must carry a timestamp
    /// inside the replay window.
    pub encrypt_key: Option<EncryptKey>,
    pub verification_token: VerificationToken,
    /// A signed request older than this is rejected as a replay.
    pub replay_window: Duration,
    /// How long an inbound id is remembered; longer than `replay_window`, so a replay inside the
    /// window is always caught as a duplicate.
    pub dedup_ttl: Duration,
    pub max_body_bytes: usize,
}

/// The settings every cardbot function reads from its environment; none of them is a secret.
/// The sections that hold secrets load apart, each only in the functions that use it:
/// [`FeishuConfig`] (event-callback, card-updater) and [`WebhookConfig`] (event-callback,
/// card-action), from the function's [`Secrets`].
#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub card_delivery: CardDelivery,
    /// How long an undecided approval stays open (`APPROVAL_TTL`, default 7 days, under 14).
    pub approval_ttl: Duration,
    /// When a pending request's approvers are first reminded (`APPROVAL_REMIND_AFTER`, default
    /// 24 h); then every [`REMIND_INTERVAL`], at most [`MAX_REMINDERS`] times.
    pub remind_after: Duration,
    /// Time the callback handler may spend before it must answer Feishu (deadline 3 s).
    pub answer_budget: Duration,
    /// `TENANT_TIME_ZONE`: the IANA zone the cards show times in (default `Asia/Shanghai`).
    pub time_zone: jiff::tz::TimeZone,
    /// Who decides requests (`APPROVER_OPEN_IDS`, `APPROVER_FROM_LEADER`).
    pub approvers: ApproverConfig,
}

/// How a request's approvers are found, in order: the configured open_ids; else the requester's
/// leader from the contact API (when `from_leader`), looked up when the request is filed; else
/// nobody, and `fallback` says what happens then. Nothing is ever approved by nobody unless the
/// deployment chose [`ApprovalFallback::Simulated`], and then the card says so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApproverConfig {
    /// `APPROVER_OPEN_IDS`: comma-separated open_ids (`ou_…`), at most [`MAX_APPROVERS`].
    pub open_ids: Vec<String>,
    /// `APPROVER_FROM_LEADER` (default `true`): without configured approvers, look the
    /// requester's leader up (`contact:user.department:readonly`).
    pub from_leader: bool,
    /// `APPROVAL_FALLBACK` (default `refuse`): what a request with nobody to decide it gets.
    pub fallback: ApprovalFallback,
}

impl ApproverConfig {
    /// Whether the deployment names a source of approvers at all (configured open_ids or the
    /// leader look-up): then 请假 / 加班 open the form, and who decides is resolved at filing.
    pub fn has_source(&self) -> bool {
        !self.open_ids.is_empty() || self.from_leader
    }
}

/// `APPROVAL_FALLBACK` (template parameter `ApprovalFallback`): what happens to a request nobody
/// can decide (no approver configured, or filing found nobody: no leader, no contact scope). A
/// public setting: operators' scripts use these names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ApprovalFallback {
    /// `refuse` (the default): the requester is told that nobody can approve it; nothing is
    /// approved.
    #[default]
    Refuse,
    /// `simulated`: the tutorial's simulated approver decides, and every card, toast and list
    /// line it decides says it was decided automatically.
    Simulated,
}

impl ApprovalFallback {
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "refuse" => Some(Self::Refuse),
            "simulated" => Some(Self::Simulated),
            _ => None,
        }
    }
}

/// At most this many configured approvers: each gets a card, and a decision refreshes them all in
/// one transaction.
pub const MAX_APPROVERS: usize = 20;

fn parse_approvers(value: Option<String>) -> Result<Vec<String>, ConfigError> {
    let invalid = |reason| ConfigError::Invalid {
        name: "APPROVER_OPEN_IDS",
        reason,
    };
    let mut ids: Vec<String> = Vec::new();
    for id in value.iter().flat_map(|v| v.split(',')).map(str::trim) {
        if id.is_empty() {
            continue;
        }
        let well_formed = id.strip_prefix("ou_").is_some_and(|rest| {
            (1..=64).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if !well_formed {
            return Err(invalid("expected comma-separated open_ids (ou_…)"));
        }
        if !ids.iter().any(|seen| seen == id) {
            ids.push(id.to_owned());
        }
    }
    if ids.len() > MAX_APPROVERS {
        return Err(invalid("more than 20 approvers"));
    }
    Ok(ids)
}

/// The tutorial's tenant clock: China Standard Time.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

const DEFAULT_APPROVAL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Feishu refuses every update to a message or card entity older than 14 days (230031, 200750):
/// a request must end before, so that its cards can still show it.
pub const MAX_APPROVAL_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
const DEFAULT_REMIND_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Reminders after the first come this often.
pub const REMIND_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// A request's approvers are reminded at most this many times.
pub const MAX_REMINDERS: u32 = 3;
// Feishu retries an event for about 7.1 h, so a legitimate retry must still fit in the window.
const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(8 * 3600);
const DEFAULT_DEDUP_TTL: Duration = Duration::from_secs(24 * 3600);
/// Request body cap (`MAX_BODY_BYTES`): a user's text message may hold 150 KB, which an encrypted
/// event carries as about 210 KB of base64; card callbacks stay under a few KB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
const DEFAULT_ANSWER_BUDGET: Duration = Duration::from_millis(2500);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_lookup)
    }

    /// Builds the config from any variable source (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(&lookup);
        Ok(Self {
            table_name: vars.required("TABLE_NAME")?,
            card_delivery: match vars.optional("CARD_DELIVERY") {
                None => CardDelivery::default(),
                Some(v) => CardDelivery::parse(&v).ok_or(ConfigError::Invalid {
                    name: "CARD_DELIVERY",
                    reason: "expected `entity` or `message`",
                })?,
            },
            approval_ttl: match vars.duration("APPROVAL_TTL", DEFAULT_APPROVAL_TTL)? {
                ttl if ttl >= MAX_APPROVAL_TTL => {
                    return Err(ConfigError::Invalid {
                        name: "APPROVAL_TTL",
                        reason: "must be under 14 days (e.g. 7d): Feishu refuses card updates \
                                 after 14 days (230031), so an older request could never show \
                                 that it expired",
                    })
                }
                ttl => ttl,
            },
            remind_after: vars.duration("APPROVAL_REMIND_AFTER", DEFAULT_REMIND_AFTER)?,
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
            approvers: ApproverConfig {
                open_ids: parse_approvers(vars.optional("APPROVER_OPEN_IDS"))?,
                from_leader: match vars.optional("APPROVER_FROM_LEADER") {
                    None => true,
                    Some(_) => vars.flag("APPROVER_FROM_LEADER")?,
                },
                // Unset or empty (the template's default passes ""): `refuse`.
                fallback: match vars.optional("APPROVAL_FALLBACK") {
                    None => ApprovalFallback::Refuse,
                    Some(v) => ApprovalFallback::parse(&v).ok_or(ConfigError::Invalid {
                        name: "APPROVAL_FALLBACK",
                        reason: "expected `refuse` (the default) or `simulated`",
                    })?,
                },
            },
        })
    }
}

impl FeishuConfig {
    /// `FEISHU_APP_ID`, `FEISHU_BASE_URL` and the app secret from `secrets`.
    pub fn from_env(secrets: &Secrets) -> Result<Self, ConfigError> {
        Self::from_lookup(env_lookup, secrets)
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        secrets: &Secrets,
    ) -> Result<Self, ConfigError> {
        let vars = Vars(&lookup);
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

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        secrets: &Secrets,
    ) -> Result<Self, ConfigError> {
        let vars = Vars(&lookup);
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

    /// `true` or `false` (any case); unset is `false`.
    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
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

#[cfg(test)]
mod approver_tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain([("TABLE_NAME".to_owned(), "cardbot".to_owned())])
            .collect();
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn approvers_are_open_ids_deduplicated_and_the_leader_is_asked_by_default() {
        let none = config(&[]).unwrap().approvers;
        assert_eq!(
            none,
            ApproverConfig {
                open_ids: vec![],
                from_leader: true,
                fallback: ApprovalFallback::Refuse,
            }
        );
        let two = config(&[
            ("APPROVER_OPEN_IDS", " ou_a1 , ou_b2,,ou_a1 "),
            ("APPROVER_FROM_LEADER", "false"),
        ])
        .unwrap()
        .approvers;
        assert_eq!(two.open_ids, ["ou_a1", "ou_b2"]);
        assert!(!two.from_leader);
    }

    #[test]
    fn the_fallback_refuses_unless_simulated_is_chosen_by_name() {
        assert_eq!(
            config(&[]).unwrap().approvers.fallback,
            ApprovalFallback::Refuse
        );
        assert_eq!(
            config(&[("APPROVAL_FALLBACK", "")])
                .unwrap()
                .approvers
                .fallback,
            ApprovalFallback::Refuse
        );
        assert_eq!(
            config(&[("APPROVAL_FALLBACK", "simulated")])
                .unwrap()
                .approvers
                .fallback,
            ApprovalFallback::Simulated
        );
        for bad in ["approve", "Simulated", "yes"] {
            let error = config(&[("APPROVAL_FALLBACK", bad)]).unwrap_err();
            assert!(error.to_string().contains("APPROVAL_FALLBACK"), "{error}");
        }
    }

    #[test]
    fn anything_but_open_ids_is_refused_by_name() {
        let many: Vec<String> = (0..21).map(|i| format!("ou_{i}")).collect();
        for bad in [
            "all",
            "ou_",
            "on_abc",
            "ou_a/b",
            "<at id=all>",
            many.join(",").as_str(),
        ] {
            let error = config(&[("APPROVER_OPEN_IDS", bad)]).unwrap_err();
            assert!(
                matches!(
                    error,
                    ConfigError::Invalid {
                        name: "APPROVER_OPEN_IDS",
                        ..
                    }
                ),
                "{bad}: {error}"
            );
        }
        assert!(config(&[("APPROVER_FROM_LEADER", "maybe")]).is_err());
    }

    #[test]
    fn a_ttl_of_14_days_or_more_is_refused_and_reminders_default_to_a_day() {
        let defaults = config(&[]).unwrap();
        assert_eq!(defaults.approval_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(defaults.remind_after, Duration::from_secs(86_400));
        for ttl in ["14d", "336h", "30d"] {
            let error = config(&[("APPROVAL_TTL", ttl)]).unwrap_err();
            assert!(
                error.to_string().contains("under 14 days"),
                "{ttl}: {error}"
            );
        }
        assert_eq!(
            config(&[("APPROVAL_TTL", "13d"), ("APPROVAL_REMIND_AFTER", "4h")])
                .unwrap()
                .remind_after,
            Duration::from_secs(4 * 3600)
        );
        assert!(config(&[("APPROVAL_REMIND_AFTER", "soon")]).is_err());
    }
}
