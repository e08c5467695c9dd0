//! Every key format of the table, in one file.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | tenant token | `token#<app_id>` | `tenant` |
//! | the bot's open_id | `token#<app_id>` | `bot` |
//! | a store app's `app_ticket`s | `token#<app_id>` | `ticket` |
//! | a store app's ticket-resend throttle | `token#<app_id>` | `resend` |
//! | a store app's `app_access_token` | `token#<app_id>` | `app` |
//! | a store app's tenant token of one tenant | `token#<app_id>#<tenant_key>` | `tenant` |
//! | a store app's token-refresh claim | `token#<app_id>[#<tenant_key>]` | `refresh` |
//! | a store app's tenant (status, install) | `tenant#<app_id>` | `<tenant_key>` |
//! | dedup record | `dedup#<key>` | `-` |
//! | card state | `card#<card_key>` | `state` |
//! | job | `card#<card_key>` | `job#<job_id>` |
//! | app rate counters | `rate#<app_id>#app` | `counters` |
//! | chat rate counters | `rate#<app_id>#chat#<chat>` | `counters` |
//! | document ([`super::documents`]) | `doc#<collection>` | `<key>` |
//!
//! Pending and leased jobs also carry `due_pk` = [`DUE_PK`] for the sparse `due` index.

/// The kinds of partition, each a `pk` prefix every key of its kind is built from (below): what
/// an IAM `dynamodb:LeadingKeys` condition grants a function (`template.yaml`, each function's
/// `TableItems` statement admits exactly the prefixes of the partitions it uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Partition {
    /// `token#<app_id>`: the tenant token and the bot's open_id.
    Token,
    /// `dedup#<key>`: a delivery's dedup record.
    Dedup,
    /// `card#<card_key>`: a card's state and its jobs.
    Card,
    /// `rate#<app_id>#…`: the shared rate counters.
    Rate,
    /// `doc#<collection>`: documents (the approval definitions).
    Document,
    /// `tenant#<app_id>`: a store app's tenants (status, install), apart from the tokens so the
    /// card callback may read them without reaching any token.
    Tenant,
}

impl Partition {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::Token,
        Self::Dedup,
        Self::Card,
        Self::Rate,
        Self::Document,
        Self::Tenant,
    ];

    /// The `pk` prefix of every key of this kind.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::Token => "token#",
            Self::Dedup => "dedup#",
            Self::Card => CARD_PK_PREFIX,
            Self::Rate => "rate#",
            Self::Document => "doc#",
            Self::Tenant => "tenant#",
        }
    }
}

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";

/// Sort key of the tenant token item.
pub const TENANT_TOKEN_SK: &str = "tenant";
/// Sort key of the bot's own open_id (`bot/v3/info`), beside the app's tenant token.
pub const BOT_SK: &str = "bot";
/// Sort key of a store app's kept `app_ticket`s.
pub const APP_TICKET_SK: &str = "ticket";
/// Sort key of a store app's ticket-resend throttle.
pub const TICKET_RESEND_SK: &str = "resend";
/// Sort key of a store app's `app_access_token`.
pub const APP_TOKEN_SK: &str = "app";
/// Sort key of a store app's token-refresh claim, beside the token it refreshes (`token#<app_id>`
/// for the app token, `token#<app_id>#<tenant_key>` for a tenant's).
pub const TOKEN_REFRESH_SK: &str = "refresh";
/// `pk` of a store app's tenant records (one partition: the app's tenants are one Query); the
/// `sk` is the tenant_key.
pub fn tenants_pk(app_id: &str) -> String {
    format!("{}{app_id}", Partition::Tenant.prefix())
}

/// Sort key of a dedup record.
pub const DEDUP_SK: &str = "-";
/// Sort key of a card's state item.
pub const CARD_STATE_SK: &str = "state";
/// Prefix of a job's sort key; a card's jobs are a `begins_with` Query on its partition.
pub const JOB_SK_PREFIX: &str = "job#";
/// Prefix of a card partition's `pk`.
const CARD_PK_PREFIX: &str = "card#";

/// The `due` index partition of every job waiting for delivery. One partition is fine for our
/// volume (a GSI partition takes ~1,000 writes/s; a click writes one job); shard it by suffix if not.
pub const DUE_PK: &str = "due";

/// `pk` of the tenant token of `app_id`.
pub fn tenant_token_pk(app_id: &str) -> String {
    format!("{}{app_id}", Partition::Token.prefix())
}

/// The token owner of `tenant_key`'s tenant token in store app `app_id`: what the
/// [`crate::store::TokenStore`] methods take in place of the app id, so the item is
/// `token#<app_id>#<tenant_key>` / `tenant`. A self-built app's owner is its app id alone.
pub fn store_tenant_token_owner(app_id: &str, tenant_key: &str) -> String {
    format!("{app_id}#{tenant_key}")
}

/// Separates a store app's tenant from the rest of a card key.
pub const TENANT_SEPARATOR: char = '#';

/// The card key of `id` (a card's `message_id`, or a user's message for a reply not yet sent) in
/// `tenant`'s namespace: `id` itself for a self-built app (`None`: the keys of every earlier
/// version, unchanged), `<tenant_key>#<id>` for a store app's tenant. Every item of a card (its
/// state and its jobs) sits under this key, so a lookup built from one tenant's request can never
/// reach another tenant's card, whatever message id it names.
pub fn tenant_card_key(tenant: Option<&str>, id: &str) -> String {
    match tenant {
        None => id.to_owned(),
        Some(tenant) => format!("{tenant}{TENANT_SEPARATOR}{id}"),
    }
}

/// The tenant of a card key built by [`tenant_card_key`]: `None` for a self-built app's.
pub fn card_key_tenant(card_key: &str) -> Option<&str> {
    card_key
        .split_once(TENANT_SEPARATOR)
        .map(|(tenant, _)| tenant)
}

/// `pk` of a dedup record.
pub fn dedup_pk(key: &str) -> String {
    format!("{}{key}", Partition::Dedup.prefix())
}

/// `pk` of a card's partition (its state and its jobs).
pub fn card_pk(card_key: &str) -> String {
    format!("{CARD_PK_PREFIX}{card_key}")
}

/// `sk` of a job.
pub fn job_sk(job_id: &str) -> String {
    format!("{JOB_SK_PREFIX}{job_id}")
}

/// Sort key of a rate item: one item holds every counter of its scope (a take checks several
/// windows in one conditional write), so the window is in the attribute names, not the key.
pub const RATE_SK: &str = "counters";

/// `pk` of the rate item of `app_id` for `scope`.
pub fn rate_pk(app_id: &str, scope: &super::rate::RateScope) -> String {
    match scope {
        super::rate::RateScope::App => format!("{}{app_id}#app", Partition::Rate.prefix()),
        super::rate::RateScope::Chat(chat) => {
            format!("{}{app_id}#chat#{chat}", Partition::Rate.prefix())
        }
    }
}

/// The card key of a card's state item (`card#<card_key>` / `state`); `None` for any other item.
pub fn parse_card_state_key<'a>(pk: &'a str, sk: &str) -> Option<&'a str> {
    (sk == CARD_STATE_SK)
        .then(|| pk.strip_prefix(CARD_PK_PREFIX))
        .flatten()
}

/// `(card_key, job_id)` of the item keyed `(pk, sk)` if it is a job, else `None` (a card's state,
/// any other item, or a key with an empty card key or job id).
pub fn parse_job_key<'a>(pk: &'a str, sk: &'a str) -> Option<(&'a str, &'a str)> {
    let card_key = pk.strip_prefix(CARD_PK_PREFIX)?;
    let job_id = sk.strip_prefix(JOB_SK_PREFIX)?;
    (!card_key.is_empty() && !job_id.is_empty()).then_some((card_key, job_id))
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_key_constructor_builds_its_partitions_prefix() {
        use super::super::rate::RateScope;
        let built = [
            (Partition::Token, tenant_token_pk("cli_1")),
            (Partition::Dedup, dedup_pk("om_1")),
            (Partition::Card, card_pk("om_1")),
            (Partition::Rate, rate_pk("cli_1", &RateScope::App)),
            (
                Partition::Rate,
                rate_pk("cli_1", &RateScope::Chat("oc_1".into())),
            ),
            (
                Partition::Document,
                super::super::documents::collection_pk("definitions"),
            ),
            (Partition::Tenant, tenants_pk("cli_1")),
        ];
        for (partition, pk) in built {
            assert!(pk.starts_with(partition.prefix()), "{pk} of {partition:?}");
            let others = Partition::ALL.iter().filter(|p| **p != partition);
            for other in others {
                assert!(!pk.starts_with(other.prefix()), "{pk} is also {other:?}");
            }
        }
    }

    use super::*;

    #[test]
    fn formats_match_the_design_table() {
        assert_eq!(tenant_token_pk("cli_a"), "token#cli_a");
        assert_eq!(
            tenant_token_pk(&store_tenant_token_owner("cli_a", "2ed263bf32cf1651")),
            "token#cli_a#2ed263bf32cf1651"
        );
        assert_eq!(dedup_pk("om_1"), "dedup#om_1");
        assert_eq!(card_pk("c1"), "card#c1");
        assert_eq!(job_sk("j1"), "job#j1");
        assert!(job_sk("j1").starts_with(JOB_SK_PREFIX));
        use crate::store::rate::RateScope;
        assert_eq!(rate_pk("cli_a", &RateScope::App), "rate#cli_a#app");
        assert_eq!(
            rate_pk("cli_a", &RateScope::Chat("oc_1".into())),
            "rate#cli_a#chat#oc_1"
        );
    }

    #[test]
    fn a_card_key_names_its_tenant_and_a_self_built_key_is_the_id_itself() {
        assert_eq!(tenant_card_key(None, "om_1"), "om_1");
        assert_eq!(card_key_tenant("om_1"), None);
        let key = tenant_card_key(Some("2ed263bf32cf1651"), "om_1");
        assert_eq!(key, "2ed263bf32cf1651#om_1");
        assert_eq!(card_key_tenant(&key), Some("2ed263bf32cf1651"));
        assert_eq!(card_pk(&key), "card#2ed263bf32cf1651#om_1");
    }

    #[test]
    fn a_job_key_parses_back_and_nothing_else_does() {
        assert_eq!(
            parse_job_key(&card_pk("om_1"), &job_sk("post_answer")),
            Some(("om_1", "post_answer"))
        );
        assert_eq!(parse_job_key(&card_pk("om_1"), CARD_STATE_SK), None);
        assert_eq!(parse_job_key(&dedup_pk("om_1"), &job_sk("j1")), None);
        assert_eq!(parse_job_key(&card_pk(""), &job_sk("j1")), None);
        assert_eq!(parse_job_key(&card_pk("om_1"), &job_sk("")), None);
        assert_eq!(parse_job_key("om_1", "j1"), None);
    }
}
