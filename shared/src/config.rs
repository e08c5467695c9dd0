//! The app's settings: which function is which and the secrets it holds, the card delivery mode,
//! approval timing and who approves. The Feishu app, the webhook and the secret types come from
//! the kit ([`feishu_kit::config`]) and are re-exported here.

use std::time::Duration;

pub use feishu_kit::cards::CardDelivery;
pub use feishu_kit::config::*;

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

impl From<Function> for SecretHolder {
    fn from(function: Function) -> Self {
        function.holder()
    }
}

/// What a function may do in the table (its IAM policy in `template.yaml`, which
/// `tests/tests/template.rs` checks against this): the item actions on the partitions it uses
/// (`dynamodb:LeadingKeys`), and the indexes it queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableAccess {
    /// The partitions its item actions touch (each a `pk` prefix).
    pub partitions: &'static [crate::store::keys::Partition],
    /// Its item actions (`dynamodb:GetItem`, …), transactions included (authorised per item).
    pub item_actions: &'static [&'static str],
    /// The indexes it queries (`due`, `lists`).
    pub indexes: &'static [&'static str],
}

impl Function {
    pub const ALL: [Function; 3] = [Self::EventCallback, Self::CardAction, Self::CardUpdater];

    /// Its table access: the event callback answers commands (replies, lists, the tenant token,
    /// the rate counters); the card callback decides clicks and never calls Feishu (no token,
    /// no rate counters); the updater runs jobs (all partitions, the due jobs, the lists). A
    /// store app's tenant records (`tenant#`) are read by all three and written by the two
    /// webhooks (first sight, lifecycle events).
    pub fn table_access(self) -> TableAccess {
        use crate::store::keys::Partition::{Card, Dedup, Document, Rate, Tenant, Token};
        // No transaction holds a ConditionCheck item; only the tenant token is ever deleted
        // (evicted), by the two functions that call Feishu.
        const READ_WRITE_DELETE: &[&str] = &[
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        ];
        const READ_WRITE: &[&str] = &[
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        ];
        match self {
            Self::EventCallback => TableAccess {
                partitions: &[Token, Dedup, Card, Rate, Document, Tenant],
                item_actions: READ_WRITE_DELETE,
                indexes: &["lists"],
            },
            Self::CardAction => TableAccess {
                partitions: &[Dedup, Card, Document, Tenant],
                item_actions: READ_WRITE,
                indexes: &[],
            },
            Self::CardUpdater => TableAccess {
                partitions: &[Token, Dedup, Card, Rate, Document, Tenant],
                item_actions: READ_WRITE_DELETE,
                indexes: &["due", "lists"],
            },
        }
    }

    /// The crate and binary name, as in `functions/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::EventCallback => "event-callback",
            Self::CardAction => "card-action",
            Self::CardUpdater => "card-updater",
        }
    }

    /// This function as its secrets see it: its name and [`Function::secrets`].
    pub fn holder(self) -> SecretHolder {
        SecretHolder {
            name: self.name(),
            secrets: self.secrets(),
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
    /// `DECISION_EVENT_BUS`: the EventBridge bus (name or ARN) every ended request's decision
    /// event goes to (docs/decision-events.md); unset: none are put (local runs).
    pub decision_event_bus: Option<String>,
    /// `FEISHU_APP_TYPE` (template parameter `AppType`): `self_built` (the default, one company)
    /// or `store` (a store app any company installs; docs/store-apps.md).
    pub app_type: crate::feishu::AppType,
    /// `FEISHU_APP_ID` (every function has it; required in store mode): the app whose tenants
    /// and tokens the table keeps.
    pub app_id: Option<String>,
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
const DEFAULT_ANSWER_BUDGET: Duration = Duration::from_millis(2500);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_lookup)
    }

    /// Builds the config from any variable source (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = EnvVars(&lookup);
        let config = Self::read(&vars)?;
        // open_ids are per app and tenant: one list cannot name approvers in every company.
        if config.app_type == crate::feishu::AppType::Store && !config.approvers.open_ids.is_empty()
        {
            return Err(ConfigError::Invalid {
                name: "APPROVER_OPEN_IDS",
                reason: "must be empty when FEISHU_APP_TYPE=store: an open_id belongs to one \
                         tenant; name approvers per tenant in its definitions (cardbot-admin \
                         definitions apply --tenant) or use the leader look-up",
            });
        }
        if config.app_type == crate::feishu::AppType::Store && config.app_id.is_none() {
            return Err(ConfigError::Invalid {
                name: "FEISHU_APP_ID",
                reason: "is required when FEISHU_APP_TYPE=store",
            });
        }
        Ok(config)
    }

    fn read(vars: &EnvVars<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            app_id: vars.optional("FEISHU_APP_ID"),
            app_type: match vars.optional("FEISHU_APP_TYPE") {
                None => crate::feishu::AppType::SelfBuilt,
                Some(v) => crate::feishu::AppType::parse(&v).map_err(|_| ConfigError::Invalid {
                    name: "FEISHU_APP_TYPE",
                    reason: "expected `self_built` (the default) or `store`",
                })?,
            },
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
            decision_event_bus: vars.optional("DECISION_EVENT_BUS"),
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
    fn a_store_app_takes_no_open_ids_and_needs_its_app_id() {
        use crate::feishu::AppType;
        let built = config(&[]).unwrap();
        assert_eq!(built.app_type, AppType::SelfBuilt);
        let store = config(&[("FEISHU_APP_TYPE", "store"), ("FEISHU_APP_ID", "cli_1")]).unwrap();
        assert_eq!(store.app_type, AppType::Store);
        // Open_ids belong to one tenant: the functions stop at start, naming the setting.
        let error = config(&[
            ("FEISHU_APP_TYPE", "store"),
            ("FEISHU_APP_ID", "cli_1"),
            ("APPROVER_OPEN_IDS", "ou_a1"),
        ])
        .unwrap_err();
        assert!(
            matches!(&error, ConfigError::Invalid { name: "APPROVER_OPEN_IDS", reason } if reason.contains("FEISHU_APP_TYPE=store")),
            "{error:?}"
        );
        let error = config(&[("FEISHU_APP_TYPE", "store")]).unwrap_err();
        assert!(matches!(
            error,
            ConfigError::Invalid {
                name: "FEISHU_APP_ID",
                ..
            }
        ));
        let error = config(&[("FEISHU_APP_TYPE", "isv")]).unwrap_err();
        assert!(matches!(
            error,
            ConfigError::Invalid {
                name: "FEISHU_APP_TYPE",
                ..
            }
        ));
        // Empty (the template's default is never empty, but a local run may pass ""): self-built.
        assert_eq!(
            config(&[("FEISHU_APP_TYPE", "")]).unwrap().app_type,
            AppType::SelfBuilt
        );
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
