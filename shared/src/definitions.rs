//! Approval definitions in the table: `apply` writes a checked file as new immutable versions,
//! and the functions read the definitions offered now (cached for [`DEFAULT_REFRESH`]) and every
//! version a request pinned (cached for good: a version never changes).
//!
//! Documents (`feishu_kit::store::documents`) of the collection `definitions#<set>`: set `-` for
//! the deployment's (a self-built app's only one), a store app's `tenant_key` for a tenant's own
//! (docs/store-apps.md):
//!
//! | key | body |
//! |---|---|
//! | `current` | `{"definitions": [{"version": n, "definition": {…}}], "last_versions": {"<id>": n}, "applied_at": ms}`: what is offered now, in the file's order |
//! | `def#<id>#<version, 10 digits>` | `{"version": n, "definition": {…}, "applied_at": ms}`: one version, written once |
//!
//! With no `current` document the built-in `leave` and `work_overtime` (version 0, compiled in)
//! are offered. Versions are never deleted: a filed request refers to its version for as long as
//! the request is kept.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::approval::definition::{
    builtin, Catalog, Definition, DefinitionRef, DefinitionSet, RequestKind, Versioned,
};
use crate::store::{CardState, DocumentStore, EpochMillis, StoreError, StoreResult};

/// A new `current` document reaches every function within this long (a cached one is re-read
/// after it).
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);

/// The set of the deployment's definitions (a self-built app's only one).
pub const SELF_BUILT_TENANT: &str = "-";

const CURRENT: &str = "current";

/// The collection of `tenant`'s definitions.
pub fn collection(tenant: &str) -> String {
    format!("definitions#{tenant}")
}

/// The document key of `id` at `version`.
pub fn version_key(id: RequestKind, version: u32) -> String {
    format!("def#{id}#{version:010}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CurrentDoc {
    definitions: Vec<VersionDoc>,
    /// The last version written of every id ever applied (a dropped id that returns continues).
    #[serde(default)]
    last_versions: BTreeMap<String, u32>,
    #[serde(default)]
    applied_at: EpochMillis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct VersionDoc {
    version: u32,
    definition: Definition,
    #[serde(default)]
    applied_at: EpochMillis,
}

/// What `apply` did to one definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Offered for the first time (a new id, or one that returns).
    Added,
    /// A new version of an offered definition.
    Changed,
    /// Offered as before, at the same version.
    Unchanged,
    /// No longer offered (its versions stay for the requests that pinned them).
    Removed,
}

/// One line of `apply`'s report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub id: RequestKind,
    pub version: u32,
    pub change: Change,
}

/// When a set's `current` was read, and what it offers (`None`: no `current` document).
type ReadSet = (Instant, Option<Arc<Catalog>>);

/// The definitions a deployment reads, with its caches. One per function instance.
///
/// A self-built app reads one set (`definitions#-`). A store app's tenant reads its own set
/// (`definitions#<tenant_key>`) once it applied one, else the deployment's; a request pins the set
/// it was drawn from ([`DefinitionRef::tenant`]), so a tenant that applies its own set later
/// still reads its earlier requests' versions.
#[derive(Debug)]
pub struct Definitions {
    refresh: Duration,
    /// Per set (`-` or a tenant_key): when `current` was read, and what it offers (`None`: the
    /// set has no `current`).
    current: Mutex<HashMap<String, ReadSet>>,
    /// Versions read for pinned requests, per set; a version never changes, so they never expire.
    versions: Mutex<HashMap<(String, DefinitionRef), Arc<Definition>>>,
}

impl Default for Definitions {
    fn default() -> Self {
        Self::new(DEFAULT_REFRESH)
    }
}

impl Definitions {
    /// The definitions, the offered ones re-read after `refresh`.
    pub fn new(refresh: Duration) -> Self {
        Self {
            refresh,
            current: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
        }
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The definitions offered now to `tenant` (a store app's tenant; `None`: a self-built app),
    /// and every version `states` pinned (requests, approvers' cards' requests): one read of a
    /// set's `current` per [`Definitions::new`]'s `refresh`, one read per pinned version not
    /// seen before. A pinned version that cannot be found is left out (the card renders from the
    /// current one of its id: `Catalog::resolve`).
    pub async fn catalog<S: DocumentStore + ?Sized>(
        &self,
        store: &S,
        tenant: Option<&str>,
        states: &[&CardState],
    ) -> StoreResult<Arc<Catalog>> {
        let own = match tenant {
            Some(tenant) => self.current(store, tenant).await?,
            None => None,
        };
        let current = match own {
            Some(own) => own,
            None => self
                .current(store, SELF_BUILT_TENANT)
                .await?
                .unwrap_or_else(|| Arc::new(Catalog::builtin())),
        };
        let pins: Vec<DefinitionRef> = states
            .iter()
            .filter_map(|s| s.data.get("definition"))
            .filter_map(|d| serde_json::from_value::<DefinitionRef>(d.clone()).ok())
            .filter(|pin| !current.has(*pin))
            .collect();
        if pins.is_empty() {
            return Ok(current);
        }
        let mut catalog = (*current).clone();
        for pin in pins {
            let set = match (pin.tenant, tenant) {
                (true, Some(tenant)) => tenant,
                _ => SELF_BUILT_TENANT,
            };
            if let Some(definition) = self.version(store, set, pin).await? {
                catalog.insert(pin, definition);
            }
        }
        Ok(Arc::new(catalog))
    }

    /// What set `set` offers now (cached); `None` when it has no `current` document.
    async fn current<S: DocumentStore + ?Sized>(
        &self,
        store: &S,
        set: &str,
    ) -> StoreResult<Option<Arc<Catalog>>> {
        if let Some((read_at, catalog)) = Self::lock(&self.current).get(set) {
            if read_at.elapsed() < self.refresh {
                return Ok(catalog.clone());
            }
        }
        let catalog = read_current(store, set).await?.map(|(doc, _)| {
            let offered = doc
                .definitions
                .into_iter()
                .map(|v| Versioned {
                    version: v.version,
                    definition: Arc::new(v.definition),
                })
                .collect();
            Arc::new(match set {
                SELF_BUILT_TENANT => Catalog::with_current(offered),
                _ => Catalog::with_tenant_current(offered),
            })
        });
        Self::lock(&self.current).insert(set.to_owned(), (Instant::now(), catalog.clone()));
        Ok(catalog)
    }

    async fn version<S: DocumentStore + ?Sized>(
        &self,
        store: &S,
        set: &str,
        pin: DefinitionRef,
    ) -> StoreResult<Option<Arc<Definition>>> {
        let key = (set.to_owned(), pin);
        if let Some(found) = Self::lock(&self.versions).get(&key) {
            return Ok(Some(found.clone()));
        }
        let Some(doc) = store
            .get_document(&collection(set), &version_key(pin.id, pin.version))
            .await?
        else {
            tracing::warn!(id = %pin.id, version = pin.version, set, "pinned definition version not found");
            return Ok(None);
        };
        let version: VersionDoc = parse_body(&doc.body, &doc.key)?;
        let definition = Arc::new(version.definition);
        Self::lock(&self.versions).insert(key, definition.clone());
        Ok(Some(definition))
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Value, key: &str) -> StoreResult<T> {
    serde_json::from_value(body.clone()).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: format!("definitions document: {e}"),
    })
}

async fn read_current<S: DocumentStore + ?Sized>(
    store: &S,
    tenant: &str,
) -> StoreResult<Option<(CurrentDoc, u64)>> {
    let Some(doc) = store.get_document(&collection(tenant), CURRENT).await? else {
        return Ok(None);
    };
    Ok(Some((parse_body(&doc.body, &doc.key)?, doc.revision)))
}

/// The definitions offered now, each with its version: the table's, else the built-in ones.
pub async fn list<S: DocumentStore + ?Sized>(
    store: &S,
    tenant: &str,
) -> StoreResult<Vec<(u32, Definition)>> {
    Ok(match read_current(store, tenant).await? {
        Some((doc, _)) => doc
            .definitions
            .into_iter()
            .map(|v| (v.version, v.definition))
            .collect(),
        None => builtin().definitions.into_iter().map(|d| (0, d)).collect(),
    })
}

/// `id` at `version` (0: the built-in one), if it exists.
pub async fn show<S: DocumentStore + ?Sized>(
    store: &S,
    tenant: &str,
    id: RequestKind,
    version: u32,
) -> StoreResult<Option<Definition>> {
    if version == 0 {
        return Ok(builtin().definitions.into_iter().find(|d| d.id == id));
    }
    match store
        .get_document(&collection(tenant), &version_key(id, version))
        .await?
    {
        None => Ok(None),
        Some(doc) => Ok(Some(
            parse_body::<VersionDoc>(&doc.body, &doc.key)?.definition,
        )),
    }
}

/// Makes `set` the definitions offered ([`DefinitionSet::effective`]: the built-in types unless
/// redefined or dropped, then the file's): an unchanged definition keeps its version, a changed or
/// new one gets the next version of its id (written once, never replaced), and `current` is
/// replaced if nobody applied meanwhile (else [`StoreError::Conflict`]: run it again). A built-in
/// definition given unchanged stays version 0. Answers what changed, `set`'s order first, then
/// the definitions it removed.
pub async fn apply<S: DocumentStore + ?Sized>(
    store: &S,
    tenant: &str,
    set: &DefinitionSet,
    now: EpochMillis,
) -> StoreResult<Vec<Applied>> {
    let previous = read_current(store, tenant).await?;
    let (offered, mut last_versions, revision): (Vec<(u32, Definition)>, _, _) = match previous {
        Some((doc, revision)) => (
            doc.definitions
                .into_iter()
                .map(|v| (v.version, v.definition))
                .collect(),
            doc.last_versions,
            Some(revision),
        ),
        None => (
            builtin().definitions.into_iter().map(|d| (0, d)).collect(),
            BTreeMap::new(),
            None,
        ),
    };
    let builtins = builtin().definitions;
    let effective = set.effective();
    // `current` holds every offered definition: refuse before writing any version if it cannot.
    let size = serde_json::to_vec(&effective)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > crate::store::documents::MAX_DOCUMENT_BYTES / 2 {
        return Err(StoreError::Corrupt {
            key: collection(tenant),
            reason: format!("the definitions are {size} bytes: too large for one table item"),
        });
    }
    let mut report = Vec::new();
    let mut docs = Vec::new();
    for definition in &effective {
        let before = offered.iter().find(|(_, d)| d.id == definition.id);
        let (version, change) = match before {
            Some((version, d)) if d == definition => (*version, Change::Unchanged),
            _ if builtins.contains(definition) => (0, change_of(before)),
            _ => {
                let last = last_versions
                    .get(definition.id.as_str())
                    .copied()
                    .unwrap_or(0);
                let version = write_version(store, tenant, definition, last + 1, now).await?;
                (version, change_of(before))
            }
        };
        if version > 0 {
            last_versions.insert(definition.id.as_str().to_owned(), version);
        }
        report.push(Applied {
            id: definition.id,
            version,
            change,
        });
        docs.push(VersionDoc {
            version,
            definition: definition.clone(),
            applied_at: now,
        });
    }
    for (version, d) in &offered {
        if !effective.iter().any(|n| n.id == d.id) {
            report.push(Applied {
                id: d.id,
                version: *version,
                change: Change::Removed,
            });
        }
    }
    let current = serde_json::to_value(CurrentDoc {
        definitions: docs,
        last_versions,
        applied_at: now,
    })
    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    if !store
        .put_document(&collection(tenant), CURRENT, &current, revision)
        .await?
    {
        return Err(StoreError::Conflict(
            "the definitions changed while applying; run apply again".to_owned(),
        ));
    }
    Ok(report)
}

/// How many taken version numbers `apply` steps over before it gives up.
const MAX_VERSION_PROBES: u32 = 100;

/// Writes `definition` as the first free version from `from`: a version an interrupted or
/// concurrent `apply` left behind (written, but `current` never pointed at it) is reused when it
/// holds the same definition, else stepped over. Versions are written once and never replaced.
async fn write_version<S: DocumentStore + ?Sized>(
    store: &S,
    tenant: &str,
    definition: &Definition,
    from: u32,
    now: EpochMillis,
) -> StoreResult<u32> {
    for version in from..from.saturating_add(MAX_VERSION_PROBES) {
        let key = version_key(definition.id, version);
        let body = serde_json::to_value(VersionDoc {
            version,
            definition: definition.clone(),
            applied_at: now,
        })
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        if store
            .put_document(&collection(tenant), &key, &body, None)
            .await?
        {
            return Ok(version);
        }
        if let Some(doc) = store.get_document(&collection(tenant), &key).await? {
            let taken: VersionDoc = parse_body(&doc.body, &doc.key)?;
            if taken.definition == *definition {
                return Ok(version);
            }
        }
    }
    Err(StoreError::Conflict(format!(
        "{} versions of `{}` after {from} are taken",
        MAX_VERSION_PROBES, definition.id
    )))
}

fn change_of(before: Option<&(u32, Definition)>) -> Change {
    match before {
        Some(_) => Change::Changed,
        None => Change::Added,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::definition::file;
    use crate::store::memory::MemoryStore;

    const V1: &str = "definitions:
  - id: expense
    name: 报销
    fields: [{name: amount, type: amount, label: 金额, required: true}]
  - id: leave
    name: {zh_cn: 请假, en_us: Leave}
    fields: [{name: reason, type: text, label: 事由}]
";

    #[tokio::test]
    async fn apply_versions_what_changed_and_keeps_what_did_not() {
        let store = MemoryStore::new();
        let set = file::parse(V1).unwrap();
        let first = apply(&store, "-", &set, 1).await.unwrap();
        let changes: Vec<_> = first
            .iter()
            .map(|a| (a.id.as_str().to_owned(), a.version, a.change))
            .collect();
        assert_eq!(
            changes,
            [
                ("leave".to_owned(), 1, Change::Changed),
                ("work_overtime".to_owned(), 0, Change::Unchanged),
                ("expense".to_owned(), 1, Change::Added),
            ]
        );
        let again = apply(&store, "-", &set, 2).await.unwrap();
        assert!(again.iter().all(|a| a.change == Change::Unchanged));
        let mut changed = set.clone();
        changed.definitions[0].fields[0].required = false;
        changed.drop = vec![RequestKind::WORK_OVERTIME];
        let second = apply(&store, "-", &changed, 3).await.unwrap();
        let by_id = |id: &str| {
            let a = second.iter().find(|a| a.id.as_str() == id).unwrap();
            (a.version, a.change)
        };
        assert_eq!(by_id("expense"), (2, Change::Changed));
        assert_eq!(by_id("leave"), (1, Change::Unchanged));
        assert_eq!(by_id("work_overtime"), (0, Change::Removed));
        // Both versions of expense stay readable; the catalog offers the second.
        let id = RequestKind::new("expense").unwrap();
        assert!(show(&store, "-", id, 1).await.unwrap().unwrap().fields[0].required);
        let defs = Definitions::new(Duration::ZERO);
        let catalog = defs.catalog(&store, None, &[]).await.unwrap();
        assert_eq!(catalog.current_of(id).unwrap().version, 2);
        assert!(catalog.current_of(RequestKind::WORK_OVERTIME).is_none());
        // Back to the built-ins alone: version 0 again, nothing written for them.
        let back = apply(&store, "-", &builtin(), 4).await.unwrap();
        assert_eq!(
            back.iter().filter(|a| a.change == Change::Removed).count(),
            1
        );
        assert!(back
            .iter()
            .filter(|a| a.change != Change::Removed)
            .all(|a| a.version == 0));
    }

    #[tokio::test]
    async fn versions_an_interrupted_apply_left_behind_are_reused_or_stepped_over() {
        let store = MemoryStore::new();
        let set = file::parse(V1).unwrap();
        apply(&store, "-", &set, 1).await.unwrap();
        let expense = RequestKind::new("expense").unwrap();
        let mut changed = set.clone();
        changed.definitions[0].fields[0].required = false;
        // An earlier apply wrote version 2 of this very change, then died before `current`.
        let leftover = serde_json::to_value(VersionDoc {
            version: 2,
            definition: changed.definitions[0].clone(),
            applied_at: 2,
        })
        .unwrap();
        store
            .put_document(&collection("-"), &version_key(expense, 2), &leftover, None)
            .await
            .unwrap();
        let reused = apply(&store, "-", &changed, 3).await.unwrap();
        assert_eq!(reused.iter().find(|a| a.id == expense).unwrap().version, 2);
        // Another one left version 3 with something else: this change steps over it.
        let mut other = changed.clone();
        other.definitions[0].fields[0].required = true;
        other.definitions[0].name = crate::approval::definition::Text::new("别的", "Other");
        let stale = serde_json::to_value(VersionDoc {
            version: 3,
            definition: other.definitions[0].clone(),
            applied_at: 4,
        })
        .unwrap();
        store
            .put_document(&collection("-"), &version_key(expense, 3), &stale, None)
            .await
            .unwrap();
        let mut third = changed.clone();
        third.definitions[0].fields[0].required = true;
        let stepped = apply(&store, "-", &third, 5).await.unwrap();
        assert_eq!(stepped.iter().find(|a| a.id == expense).unwrap().version, 4);
        assert_eq!(
            show(&store, "-", expense, 3)
                .await
                .unwrap()
                .unwrap()
                .name
                .zh_cn,
            "别的",
            "a written version is never replaced"
        );
    }

    #[tokio::test]
    async fn a_replaced_current_refuses_a_stale_revision() {
        let store = MemoryStore::new();
        let set = file::parse(V1).unwrap();
        apply(&store, "-", &set, 1).await.unwrap();
        // Another writer replaced `current` between this apply's read and its write.
        let (doc, revision) = read_current(&store, "-").await.unwrap().unwrap();
        let body = serde_json::to_value(&doc).unwrap();
        assert!(store
            .put_document(&collection("-"), CURRENT, &body, Some(revision))
            .await
            .unwrap());
        assert!(!store
            .put_document(&collection("-"), CURRENT, &body, Some(revision))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn without_a_file_the_builtins_are_offered_and_read_once_per_refresh() {
        let store = MemoryStore::new();
        let defs = Definitions::new(Duration::from_secs(3600));
        let catalog = defs.catalog(&store, None, &[]).await.unwrap();
        assert_eq!(*catalog, Catalog::builtin());
        apply(&store, "-", &file::parse(V1).unwrap(), 1)
            .await
            .unwrap();
        let cached = defs.catalog(&store, None, &[]).await.unwrap();
        assert_eq!(*cached, Catalog::builtin(), "cached until the refresh");
    }
}
