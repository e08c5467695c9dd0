//! AWS Secrets Manager for tests: moto in server mode (PyPI `moto[server]`, installed into
//! `.tools/venv` by `scripts/ensure-tools.sh moto`), one server per test process on a free port,
//! or the one named by `CARDBOT_MOTO_ENDPOINT`. It speaks the real wire protocol (`POST /` with
//! `X-Amz-Target: secretsmanager.*`), so the SDK client under test is the one the functions use.

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_secretsmanager::Client;
use tokio::sync::OnceCell;

use crate::local_server;

/// Set to a running moto server to share it instead of starting one.
pub const ENDPOINT_ENV: &str = "CARDBOT_MOTO_ENDPOINT";
pub const REGION: &str = "us-east-1";

static ENDPOINT: OnceCell<String> = OnceCell::const_new();

/// The endpoint of the moto server (`http://127.0.0.1:<port>`), started on first use.
pub async fn endpoint() -> String {
    local_server::shared_endpoint(&ENDPOINT, ENDPOINT_ENV, start).await
}

/// A Secrets Manager client for the moto server, with dummy credentials. A new one per call:
/// each `#[tokio::test]` has its own runtime.
pub async fn client() -> Client {
    client_for(&endpoint().await)
}

fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}

/// Creates a uniquely named secret holding `secret_string` and returns its ARN.
pub async fn create_secret(client: &Client, secret_string: &str) -> String {
    let name = format!("cardbot-test/{}", uuid::Uuid::new_v4().simple());
    let out = client
        .create_secret()
        .name(&name)
        .secret_string(secret_string)
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot create secret {name} in moto: {e:?}"));
    out.arn().expect("CreateSecret returns the ARN").to_owned()
}

/// Installs (when missing) and starts moto on a free port; it stops with this process.
async fn start() -> String {
    let bin = local_server::install(
        "ensure-tools.sh",
        &["moto"],
        &format!(
            "moto is not available (see the message above; it is installed from PyPI with Python 3), \
             or set {ENDPOINT_ENV} to a running moto server"
        ),
    );
    let bin = format!("{bin}/moto_server");
    local_server::launch_on_a_free_port(
        "moto",
        r#""$1" -H 127.0.0.1 -p "$2""#,
        &bin,
        None,
        |endpoint| async move {
            client_for(&endpoint)
                .list_secrets()
                .max_results(1)
                .send()
                .await
                .is_ok()
        },
    )
    .await
}
