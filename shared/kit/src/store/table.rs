//! The table definition, in one place: the store's tests and `make run` create the table from it,
//! and a test compares it with `template.yaml`.

/// One key attribute and its DynamoDB scalar type (`S` or `N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAttribute {
    /// The attribute's name.
    pub name: &'static str,
    /// Its DynamoDB type: `S` (string) or `N` (number).
    pub kind: &'static str,
}

/// A global secondary index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    /// The index's name.
    pub name: &'static str,
    /// Its partition key.
    pub partition_key: KeyAttribute,
    /// Its sort key.
    pub sort_key: KeyAttribute,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: &'static str,
}

/// The single table every function shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// The partition key.
    pub partition_key: KeyAttribute,
    /// The sort key.
    pub sort_key: KeyAttribute,
    /// The attribute DynamoDB's TTL deletes expired items by.
    pub ttl_attribute: &'static str,
    /// The stream's view type, e.g. `NEW_IMAGE`.
    pub stream_view_type: &'static str,
    /// The billing mode, e.g. `PAY_PER_REQUEST`.
    pub billing_mode: &'static str,
    /// Whether point-in-time recovery is on.
    pub point_in_time_recovery: bool,
    /// Whether server-side encryption is on.
    pub server_side_encryption: bool,
    /// The global secondary indexes.
    pub indexes: &'static [IndexSpec],
}

/// The `due` index holds only pending jobs (sparse: other items have no `due_pk`).
pub const DUE_INDEX: IndexSpec = IndexSpec {
    name: "due",
    partition_key: KeyAttribute {
        name: "due_pk",
        kind: "S",
    },
    sort_key: KeyAttribute {
        name: "due_at",
        kind: "N",
    },
    projection: "ALL",
};

/// The `lists` index holds the cards of per-user lists (sparse: only items with a `list_pk`):
/// a requester's requests (`requests#<open_id>`) and an approver's cards (`reviews#<open_id>`),
/// newest first by `list_at` (the card's `created_at`); and the dead jobs (`jobs#dead`, by the
/// time they died) for `cardbot-admin`.
pub const LISTS_INDEX: IndexSpec = IndexSpec {
    name: "lists",
    partition_key: KeyAttribute {
        name: "list_pk",
        kind: "S",
    },
    sort_key: KeyAttribute {
        name: "list_at",
        kind: "N",
    },
    projection: "ALL",
};

/// The table: string keys `pk` and `sk`, TTL on `expires_at`, a `NEW_IMAGE` stream, on-demand
/// billing, and the [`DUE_INDEX`] and [`LISTS_INDEX`] indexes.
pub const TABLE: TableSpec = TableSpec {
    partition_key: KeyAttribute {
        name: "pk",
        kind: "S",
    },
    sort_key: KeyAttribute {
        name: "sk",
        kind: "S",
    },
    ttl_attribute: "expires_at",
    stream_view_type: "NEW_IMAGE",
    billing_mode: "PAY_PER_REQUEST",
    point_in_time_recovery: true,
    server_side_encryption: true,
    indexes: &[DUE_INDEX, LISTS_INDEX],
};
