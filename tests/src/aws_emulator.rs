//! AWS Secrets Manager for tests: the local AWS emulator (PyPI `ministack`, installed into
//! `.tools/ministack` by `scripts/ensure-tools.sh ministack`; the same emulator `make deploy-local`
//! deploys the template to), one per test process on a free port, or the one named by
//! `CARDBOT_AWS_EMULATOR_ENDPOINT` (`make test` shares one). It speaks the real wire protocol
//! (`POST /` with `X-Amz-Target: secretsmanager.*`), so the SDK client under test is the one the
//! functions use.

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_secretsmanager::Client;
use tokio::sync::OnceCell;

use crate::local_server;

/// Set to a running emulator to share it instead of starting one.
pub const ENDPOINT_ENV: &str = "CARDBOT_AWS_EMULATOR_ENDPOINT";
pub const REGION: &str = "us-east-1";

static ENDPOINT: OnceCell<String> = OnceCell::const_new();

/// The endpoint of the emulator (`http://127.0.0.1:<port>`), started on first use.
pub async fn endpoint() -> String {
    local_server::shared_endpoint(&ENDPOINT, ENDPOINT_ENV, start).await
}

/// A Secrets Manager client for the emulator, with dummy credentials. A new one per call:
/// each `#[tokio::test]` has its own runtime.
pub async fn client() -> Client {
    client_for(&endpoint().await)
}

fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "emulator"))
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
        .unwrap_or_else(|e| panic!("cannot create secret {name} in the emulator: {e:?}"));
    out.arn().expect("CreateSecret returns the ARN").to_owned()
}

/// Installs (when missing) and starts the emulator on a free port, in a clean environment and a
/// scratch folder of its own; it stops with this process.
async fn start() -> String {
    let bin = local_server::install(
        "ensure-tools.sh",
        &["ministack"],
        &format!(
            "the local AWS emulator is not available (see the message above; it is installed from \
             PyPI with Python 3), or set {ENDPOINT_ENV} to a running one"
        ),
    );
    let dir = std::env::temp_dir().join(format!(
        "cardbot-aws-emulator-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("a scratch folder for the emulator");
    local_server::launch_on_a_free_port(
        "local AWS emulator",
        r#"exec env -i PATH="$1:/usr/bin:/bin" HOME="$PWD" LC_ALL=C.UTF-8 LANG=C.UTF-8 BIND_HOST=127.0.0.1 GATEWAY_PORT="$2" TMPDIR="$PWD" LOG_LEVEL=WARNING "$1/ministack""#,
        &bin,
        dir.to_str(),
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
