//! Small JSON documents a bot keeps beside its cards: its configuration (an approval bot's request
//! definitions, a poll bot's templates), written rarely, read through a cache.
//!
//! A document lives at (`collection`, `key`): DynamoDB item `pk` = `doc#<collection>`, `sk` =
//! `<key>`, its body in `body` as a native map (readable in the console) and a `revision` that
//! every replacing write checks. Documents have no TTL: they stay until the bot replaces them.

use async_trait::async_trait;
use serde_json::Value;

use super::StoreResult;

/// A stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The key inside its collection (the item's `sk`).
    pub key: String,
    /// 1 for a new document, +1 on every replacement ([`DocumentStore::put_document`]).
    pub revision: u64,
    /// The JSON body (an object).
    pub body: Value,
}

/// The largest document body accepted, in bytes of its JSON: DynamoDB items hold at most 400 KB.
pub const MAX_DOCUMENT_BYTES: usize = 350 * 1024;

/// Documents keyed by collection and key; see the module docs for the item layout.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// The document at (`collection`, `key`), strongly consistent; `None` if there is none.
    async fn get_document(&self, collection: &str, key: &str) -> StoreResult<Option<Document>>;

    /// Writes `body` at (`collection`, `key`) if the stored revision is `expected` (`None`: no
    /// document there yet); `Ok(false)` and nothing written when it is not (another writer came
    /// first). A body over [`MAX_DOCUMENT_BYTES`] is refused ([`super::StoreError::Corrupt`]).
    async fn put_document(
        &self,
        collection: &str,
        key: &str,
        body: &Value,
        expected: Option<u64>,
    ) -> StoreResult<bool>;

    /// Every document of `collection` whose key begins with `prefix`, in key order (one Query,
    /// paginated to the end).
    async fn list_documents(&self, collection: &str, prefix: &str) -> StoreResult<Vec<Document>>;
}

/// `pk` of a document collection.
pub fn collection_pk(collection: &str) -> String {
    format!("{}{collection}", super::keys::Partition::Document.prefix())
}

pub(crate) fn check_size(collection: &str, key: &str, body: &Value) -> StoreResult<()> {
    let bytes = serde_json::to_vec(body)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if bytes > MAX_DOCUMENT_BYTES {
        return Err(super::StoreError::Corrupt {
            key: format!("{}/{key}", collection_pk(collection)),
            reason: format!("document body is {bytes} bytes, over {MAX_DOCUMENT_BYTES}"),
        });
    }
    Ok(())
}
