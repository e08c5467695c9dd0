//! cardbot's operator command, against the deployed table (the user's AWS credentials, region
//! and `TABLE_NAME`) or DynamoDB Local (`AWS_ENDPOINT_URL_DYNAMODB`): list dead jobs with their
//! reasons, requeue one, show a card's state and its jobs, export a request's audit trail as JSON,
//! and check, apply, list and show the approval definitions (`docs/definitions.md`).
//! Output is JSON, one document per command; secrets (the card's update token) are never printed.

use cardbot::approval::definition::RequestKind;
use cardbot::approval::{ApprovalData, ReviewData};
use cardbot::store::{
    CardState, CardStore, DeadJobStore, DocumentStore, EpochMillis, Job, JobStore, StoreError,
    TenantStore,
};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

/// `cardbot-admin`: operate a deployed cardbot.
#[derive(Debug, Parser)]
#[command(name = "cardbot-admin", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Dead jobs, newest first, with the error that killed each.
    DeadJobs {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Puts a dead job back in the queue, due now, with a fresh set of attempts (the updater
    /// delivers it within a minute). A job that sends messages, created more than an hour ago
    /// (past Feishu's 1 h uuid window), is refused unless `--force`: its run may send a message
    /// the user already has.
    Requeue {
        card_key: String,
        job_id: String,
        /// Requeue a message-sending job older than Feishu's 1 h uuid window anyway.
        #[arg(long)]
        force: bool,
    },
    /// Keeps a card's state (a request: its fields, audit trail and list entries) for `--days`
    /// from now instead of 400 days after its last write (a later write of the card sets it back).
    Retain {
        card_key: String,
        /// Days from now, 1–3650.
        #[arg(long)]
        days: u32,
    },
    /// A card's state and all its jobs.
    Card { card_key: String },
    /// A request's audit trail (the requester's card key; an approver's card leads to it).
    Audit { card_key: String },
    /// The approval definitions: a team's request types (`docs/definitions.md`).
    #[command(subcommand)]
    Definitions(DefinitionsCommand),
    /// A store app's tenants (`docs/store-apps.md`): status, install time, installer, last
    /// change and last error of each company that installed the app.
    Tenants {
        /// The app (`FEISHU_APP_ID`).
        #[arg(long, env = "FEISHU_APP_ID")]
        app_id: String,
    },
}

/// Whose definitions a command works on: a store app's tenant's own, or the deployment's.
#[derive(Debug, Clone, clap::Args, PartialEq, Eq, Default)]
pub struct DefinitionsOf {
    /// A store app's tenant (`tenant_key`): its own definitions (`docs/store-apps.md`); without
    /// it, the deployment's.
    #[arg(long)]
    pub tenant: Option<String>,
}

impl DefinitionsOf {
    /// The set's slot: the tenant_key, checked, or `-`.
    fn set(&self) -> Result<&str, AdminError> {
        match &self.tenant {
            None => Ok(cardbot::definitions::SELF_BUILT_TENANT),
            Some(tenant) => cardbot::feishu::TenantKey::new(tenant)
                .map(|_| tenant.as_str())
                .map_err(|e| AdminError::Refused(format!("--tenant: {e}"))),
        }
    }
}

/// `cardbot-admin definitions …`.
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum DefinitionsCommand {
    /// Checks a definitions file (YAML or JSON) without touching the table: every problem with
    /// its line, exit status 1 if there is one.
    Validate { file: std::path::PathBuf },
    /// Checks the file, then makes it the definitions offered: a changed or new definition is a
    /// new version; requests already filed keep the version they were filed with. The functions
    /// pick it up within a minute. A store app's deployment-wide definitions (no `--tenant`, with
    /// `FEISHU_APP_TYPE=store`) may not name open_ids or chat_ids: they belong to one tenant.
    Apply {
        file: std::path::PathBuf,
        #[command(flatten)]
        of: DefinitionsOf,
        /// `self_built` or `store`, as the deployment's `AppType`.
        #[arg(long, env = "FEISHU_APP_TYPE", default_value = "self_built")]
        app_type: String,
    },
    /// The definitions offered now, each with its version.
    List {
        #[command(flatten)]
        of: DefinitionsOf,
    },
    /// One definition as stored: the current version, or `--version N` (0: the built-in one).
    Show {
        id: String,
        #[arg(long)]
        version: Option<u32>,
        #[command(flatten)]
        of: DefinitionsOf,
    },
}

impl Cli {
    /// Parses a command line (the program name first), as the binary does.
    pub fn parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        <Self as Parser>::try_parse_from(args)
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    /// A definitions file with problems: one line each, `<file>:<line>:<column>: <problem>`.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// Reads and checks a definitions file; its problems as `<file>:<line>:<column>: <problem>`.
pub fn load_definitions(
    path: &std::path::Path,
) -> Result<cardbot::approval::definition::DefinitionSet, AdminError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AdminError::Invalid(vec![format!("{}: cannot read: {e}", path.display())]))?;
    cardbot::approval::load_definitions(&text).map_err(|problems| {
        AdminError::Invalid(
            problems
                .iter()
                .map(|p| match p.line {
                    0 => format!("{}: {}", path.display(), p.message),
                    line => format!("{}:{line}:{}: {}", path.display(), p.column, p.message),
                })
                .collect(),
        )
    })
}

/// `definitions validate`: needs no table.
pub fn validate_definitions(path: &std::path::Path) -> Result<String, AdminError> {
    let set = load_definitions(path)?;
    let out = json!({
        "valid": true,
        "definitions": set.definitions.iter().map(|d| json!({
            "id": d.id, "name": d.name, "fields": d.fields.len(),
        })).collect::<Vec<_>>(),
    });
    Ok(serde_json::to_string_pretty(&out).unwrap_or_default())
}

/// Runs `command` against `store` at `now`; the JSON to print.
/// Feishu remembers a message's uuid for 1 hour (`../shared/feishu/`, im `messages.create`).
const UUID_WINDOW_MS: i64 = 3_600_000;

pub async fn run<S>(command: &Command, store: &S, now: EpochMillis) -> Result<String, AdminError>
where
    S: CardStore + JobStore + DeadJobStore + DocumentStore + TenantStore + ?Sized,
{
    use cardbot::definitions;
    let out = match command {
        Command::Definitions(DefinitionsCommand::Validate { file }) => {
            return validate_definitions(file)
        }
        Command::Definitions(DefinitionsCommand::Apply { file, of, app_type }) => {
            let set = load_definitions(file)?;
            let app_type =
                cardbot::feishu::AppType::parse(app_type).map_err(AdminError::Refused)?;
            if app_type == cardbot::feishu::AppType::Store && of.tenant.is_none() {
                let named = tenant_bound_ids(&set);
                if !named.is_empty() {
                    return Err(AdminError::Invalid(
                        named
                            .into_iter()
                            .map(|(id, key)| {
                                format!(
                                    "{}: definition `{id}` names {key}: a store app's \
                                     deployment-wide definitions serve every tenant, and an id \
                                     belongs to one; use leader approvers, or apply it for one \
                                     tenant with --tenant <tenant_key>",
                                    file.display()
                                )
                            })
                            .collect(),
                    ));
                }
            }
            let applied = definitions::apply(store, of.set()?, &set, now).await?;
            json!({ "applied": applied })
        }
        Command::Definitions(DefinitionsCommand::List { of }) => {
            let offered = definitions::list(store, of.set()?).await?;
            json!({ "definitions": offered.iter().map(|(version, d)| json!({
                "id": d.id, "version": version, "name": d.name,
                "fields": d.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>() })
        }
        Command::Definitions(DefinitionsCommand::Show { id, version, of }) => {
            let tenant_set = of.set()?;
            let kind = RequestKind::new(id)
                .ok_or_else(|| AdminError::NotFound(format!("`{id}` is not a definition id")))?;
            let version = match version {
                Some(v) => *v,
                None => definitions::list(store, tenant_set)
                    .await?
                    .iter()
                    .find(|(_, d)| d.id == kind)
                    .map(|(v, _)| *v)
                    .ok_or_else(|| {
                        AdminError::NotFound(format!(
                            "`{id}` is not offered now (give --version for an earlier one)"
                        ))
                    })?,
            };
            let definition = definitions::show(store, tenant_set, kind, version)
                .await?
                .ok_or_else(|| AdminError::NotFound(format!("no version {version} of `{id}`")))?;
            json!({ "version": version, "definition": definition })
        }
        Command::Tenants { app_id } => {
            let tenants = store.list_tenants(app_id).await?;
            json!({ "tenants": tenants.iter().map(|t| json!({
                "tenant_key": t.tenant_key,
                "status": t.status.as_str(),
                "installed_at": t.installed_at.map(time),
                "installer_open_id": t.installer_open_id,
                "status_changed_at": (t.status_at > 0).then(|| time(t.status_at)),
                "updated_at": time(t.updated_at),
                "last_error": t.last_error,
            })).collect::<Vec<_>>() })
        }
        Command::DeadJobs { limit } => {
            let jobs = store.dead_jobs(*limit).await?;
            json!({ "dead_jobs": jobs.iter().map(job_json).collect::<Vec<_>>() })
        }
        Command::Requeue {
            card_key,
            job_id,
            force,
        } => {
            let job = store.get_job(card_key, job_id).await?.ok_or_else(|| {
                AdminError::Refused(format!(
                    "job {card_key}/{job_id} does not exist: nothing requeued"
                ))
            })?;
            let age_ms = now - job.created_at;
            let kind = cardbot::jobs::JobKind::from(&job.kind);
            if kind.sends_messages() && age_ms > UUID_WINDOW_MS && !force {
                return Err(AdminError::Refused(format!(
                    "job {card_key}/{job_id} ({}) sends messages and was created {} min ago, past \
                     Feishu's 1 h uuid window: run again it may send a message the user already \
                     has. Check the chat, then requeue with --force to send anyway",
                    kind.as_str(),
                    age_ms / 60_000
                )));
            }
            if !store.requeue_dead_job(card_key, job_id, now).await? {
                return Err(AdminError::Refused(format!(
                    "job {card_key}/{job_id} is not dead (or does not exist): nothing requeued"
                )));
            }
            json!({ "requeued": { "card_key": card_key, "job_id": job_id, "due_at": time(now) } })
        }
        Command::Retain { card_key, days } => {
            if !(1..=3650).contains(days) {
                return Err(AdminError::Refused(format!(
                    "--days {days}: give 1 to 3650 days"
                )));
            }
            let until = now + i64::from(*days) * 86_400_000;
            if !store.retain_card(card_key, until).await? {
                return Err(AdminError::NotFound(format!(
                    "no card {card_key}, or it is kept past that already (nothing shortened)"
                )));
            }
            json!({ "retained": { "card_key": card_key, "until": time(until) } })
        }
        Command::Card { card_key } => {
            let state = card(store, card_key).await?;
            let jobs = store.jobs_for_card(card_key).await?;
            json!({
                "card": card_json(&state),
                "jobs": jobs.iter().map(job_json).collect::<Vec<_>>(),
            })
        }
        Command::Audit { card_key } => {
            let mut state = card(store, card_key).await?;
            if let Ok(review) = ReviewData::of(&state) {
                state = card(store, &review.request_key).await?;
            }
            audit_json(&state)?
        }
    };
    Ok(serde_json::to_string_pretty(&out).unwrap_or_default())
}

/// Where a definition names ids that belong to one tenant (open_ids, chat_ids): `(definition id,
/// key)`, e.g. `approvers.open_ids`.
fn tenant_bound_ids(set: &cardbot::approval::definition::DefinitionSet) -> Vec<(String, String)> {
    fn walk(value: &Value, path: &str, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    let here = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    let bound = matches!(key.as_str(), "open_ids" | "chat_ids");
                    if bound && inner.as_array().is_some_and(|ids| !ids.is_empty()) {
                        found.push(here);
                    } else {
                        walk(inner, &here, found);
                    }
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    walk(inner, &format!("{path}[{i}]"), found);
                }
            }
            _ => {}
        }
    }
    let mut named = Vec::new();
    for definition in &set.definitions {
        let mut found = Vec::new();
        walk(
            &serde_json::to_value(definition).unwrap_or_default(),
            "",
            &mut found,
        );
        named.extend(
            found
                .into_iter()
                .map(|key| (definition.id.to_string(), key)),
        );
    }
    named
}

async fn card<S: CardStore + ?Sized>(store: &S, card_key: &str) -> Result<CardState, AdminError> {
    store
        .get_card(card_key)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no card {card_key}")))
}

/// Epoch ms as RFC 3339 (UTC).
fn time(at: EpochMillis) -> Value {
    jiff::Timestamp::from_millisecond(at)
        .map(|t| Value::String(t.to_string()))
        .unwrap_or(Value::Null)
}

fn job_json(job: &Job) -> Value {
    json!({
        "card_key": job.card_key,
        "job_id": job.job_id,
        "kind": job.kind.as_str(),
        "status": job.status,
        "attempts": job.attempts,
        "last_error": job.last_error,
        "due_at": time(job.due_at),
        "created_at": time(job.created_at),
        "updated_at": time(job.updated_at),
    })
}

/// A card's state without its secret: the update token shows only its uses and expiry.
fn card_json(state: &CardState) -> Value {
    json!({
        "card_key": state.card_key,
        "kind": state.kind,
        "status": state.status,
        "version": state.version,
        "sequence": state.sequence,
        "chat_id": state.chat_id,
        "requester_open_id": state.requester_open_id,
        "message_id": state.message_id,
        "card_id": state.card_id,
        "delivery": state.delivery.as_str(),
        "update_token": state.update_token.as_ref().map(|t| json!({
            "uses": t.uses, "expires_at": time(t.expires_at)
        })),
        "data": state.data,
        "created_at": time(state.created_at),
        "updated_at": time(state.updated_at),
    })
}

fn audit_json(request: &CardState) -> Result<Value, AdminError> {
    let data = ApprovalData::from_value(&request.data)
        .map_err(|e| AdminError::Refused(format!("{}: {e}", request.card_key)))?;
    Ok(json!({
        "request": request.card_key,
        "status": request.status,
        "requester": data.submitted_by.as_deref().unwrap_or(&request.requester_open_id),
        "approvers": data.approvers,
        // What was filed: its type and definition version, and the values by field name.
        "form": data.definition.map(|d| json!({
            "kind": d.id, "version": d.version, "values": data.values,
        })),
        "decided_by": data.decided_by,
        "decided_at": data.decided_at.map(time),
        "comment": data.comment,
        "approver_cards": data.review_cards,
        "round": data.round,
        "audit": data.audit.iter().map(|e| json!({
            "at": time(e.at),
            "by": e.by,
            "action": e.action,
            "to": e.to,
            "comment": e.comment,
        })).collect::<Vec<_>>(),
    }))
}
