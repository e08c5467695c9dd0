//! Documents: `DocumentStore` for `DynamoStore` (`doc#<collection>` / `<key>`, body as a map).

use async_trait::async_trait;

use super::{is_condition_failed, json_to_av, n, store_error, DynamoStore, Fields};
use crate::store::documents::{check_size, collection_pk, Document, DocumentStore};
use crate::store::keys::{PK, SK};
use crate::store::StoreResult;

fn document_from_item(item: &super::Item) -> StoreResult<Document> {
    let f = Fields::new(item);
    Ok(Document {
        key: f.s(SK)?,
        revision: f.n("revision")?,
        body: f.json("body")?,
    })
}

#[async_trait]
impl DocumentStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn get_document(&self, collection: &str, key: &str) -> StoreResult<Option<Document>> {
        let item = self
            .get(collection_pk(collection), key, "get document")
            .await?;
        item.as_ref().map(document_from_item).transpose()
    }

    #[tracing::instrument(level = "debug", skip(self, body))]
    async fn put_document(
        &self,
        collection: &str,
        key: &str,
        body: &serde_json::Value,
        expected: Option<u64>,
    ) -> StoreResult<bool> {
        check_size(collection, key, body)?;
        let mut item = Self::key(collection_pk(collection), key);
        item.insert("body".into(), json_to_av(body));
        item.insert("revision".into(), n(expected.unwrap_or(0) + 1));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = match expected {
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Some(revision) => put
                .condition_expression("#revision = :revision")
                .expression_attribute_names("#revision", "revision")
                .expression_attribute_values(":revision", n(revision)),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("put document", e)),
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_documents(&self, collection: &str, prefix: &str) -> StoreResult<Vec<Document>> {
        self.query_partition(collection_pk(collection), prefix, "list documents")
            .await?
            .iter()
            .map(document_from_item)
            .collect()
    }
}
