//! The functions' secrets from AWS Secrets Manager, against the local AWS emulator over HTTP: one
//! secret holds the three values, and each function keeps only the keys it uses.

use cardbot::config::{
    ConfigError, FeishuConfig, Function, SecretName, SecretSource, WebhookConfig,
};
use cardbot::secrets::{self, SecretsError};
use cardbot_tests::aws_emulator;
use serde_json::json;

const APP_SECRET: &str = "sm-app-secret-5c1e";
const ENCRYPT_KEY: &str = "sm-encrypt-key-b27d";
const VERIFICATION_TOKEN: &str = "sm-verification-token-90aa";

/// The secret as the template builds it from the stack's parameters.
fn template_secret() -> String {
    json!({
        "app_secret": APP_SECRET,
        "encrypt_key": ENCRYPT_KEY,
        "verification_token": VERIFICATION_TOKEN,
    })
    .to_string()
}

fn assert_no_secret(text: &str) {
    for secret in [APP_SECRET, ENCRYPT_KEY, VERIFICATION_TOKEN] {
        assert!(!text.contains(secret), "secret leaked into {text:?}");
    }
}

#[tokio::test]
async fn each_function_takes_only_its_keys_from_the_one_secret() {
    let client = aws_emulator::client().await;
    let arn = aws_emulator::create_secret(&client, &template_secret()).await;

    let events = secrets::fetch(&client, &arn, Function::EventCallback)
        .await
        .unwrap();
    assert_eq!(events.source(), SecretSource::SecretsManager);
    assert_eq!(events.app_secret().unwrap().expose(), APP_SECRET);
    assert_eq!(events.encrypt_key().unwrap().unwrap().expose(), ENCRYPT_KEY);
    assert_eq!(
        events.verification_token().unwrap().expose(),
        VERIFICATION_TOKEN
    );

    // card-action never calls Feishu: the App Secret is not kept, only the webhook's two.
    let cards = secrets::fetch(&client, &arn, Function::CardAction)
        .await
        .unwrap();
    assert!(!cards.is_set(SecretName::AppSecret));
    assert!(matches!(
        cards.app_secret(),
        Err(ConfigError::NotHeld {
            function: "card-action",
            ..
        })
    ));
    let none = |_: &str| None;
    let webhook = WebhookConfig::from_lookup(none, &cards).unwrap();
    assert_eq!(webhook.encrypt_key.unwrap().expose(), ENCRYPT_KEY);
    assert_eq!(webhook.verification_token.expose(), VERIFICATION_TOKEN);

    // The updater receives no webhook: only the App Secret.
    let updater = secrets::fetch(&client, &arn, Function::CardUpdater)
        .await
        .unwrap();
    assert!(updater.is_set(SecretName::AppSecret));
    assert!(!updater.is_set(SecretName::EncryptKey));
    assert!(!updater.is_set(SecretName::VerificationToken));
    let app = FeishuConfig::from_lookup(
        |name| (name == "FEISHU_APP_ID").then(|| "cli_test".to_owned()),
        &updater,
    )
    .unwrap();
    assert_eq!(app.app_secret.expose(), APP_SECRET);

    // The secret is also found by its name.
    let name = client
        .describe_secret()
        .secret_id(&arn)
        .send()
        .await
        .unwrap()
        .name()
        .unwrap()
        .to_owned();
    let by_name = secrets::fetch(&client, &name, Function::CardAction)
        .await
        .unwrap();
    assert!(by_name.is_set(SecretName::VerificationToken));

    assert_no_secret(&format!("{events:?} {cards:?} {updater:?} {app:?}"));
}

/// `!Ref` of the template's secret is its ARN on AWS and its name on the local AWS emulator
/// (docs/deploy-local.md): `FEISHU_SECRET_ARN` works either way.
#[tokio::test]
async fn the_secret_is_found_by_its_name_as_well_as_its_arn() {
    let client = aws_emulator::client().await;
    let arn = aws_emulator::create_secret(&client, &template_secret()).await;
    let name = client
        .describe_secret()
        .secret_id(&arn)
        .send()
        .await
        .unwrap()
        .name()
        .unwrap()
        .to_owned();
    assert!(!name.starts_with("arn:"), "{name}");
    for id in [&arn, &name] {
        let secrets = secrets::fetch(&client, id, Function::EventCallback)
            .await
            .unwrap();
        assert_eq!(secrets.app_secret().unwrap().expose(), APP_SECRET, "{id}");
    }
}

#[tokio::test]
async fn a_missing_or_malformed_secret_is_a_clear_error_without_values() {
    let client = aws_emulator::client().await;

    let err = secrets::fetch(&client, "cardbot-test/does-not-exist", Function::CardAction)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SecretsError::Fetch(_)), "{err:?}");
    assert!(text.contains("ResourceNotFoundException"), "{text}");
    assert!(text.contains("FEISHU_SECRET_ARN"), "{text}");

    // A key the function needs is missing: named as the secret's key.
    let partial = json!({ "app_secret": APP_SECRET }).to_string();
    let arn = aws_emulator::create_secret(&client, &partial).await;
    let cards = secrets::fetch(&client, &arn, Function::CardAction)
        .await
        .unwrap();
    let err = cards.verification_token().unwrap_err();
    assert_eq!(
        err,
        ConfigError::MissingInSecret {
            key: "verification_token"
        }
    );
    // ... and an empty Encrypt Key means encrypted-by-default refuses to start.
    assert_eq!(
        WebhookConfig::from_lookup(|_| None, &cards).unwrap_err(),
        ConfigError::EncryptKeyRequired
    );

    // Not JSON: the error holds none of the text.
    let arn = aws_emulator::create_secret(&client, APP_SECRET).await;
    let err = secrets::fetch(&client, &arn, Function::CardUpdater)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SecretsError::Config(ConfigError::InvalidSecret { .. })),
        "{err:?}"
    );
    assert_no_secret(&format!("{err} {err:?}"));

    // A binary secret has no SecretString.
    let name = format!("cardbot-test/{}", uuid::Uuid::new_v4().simple());
    let arn = client
        .create_secret()
        .name(&name)
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(
            APP_SECRET.as_bytes(),
        ))
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let err = secrets::fetch(&client, &arn, Function::CardUpdater)
        .await
        .unwrap_err();
    assert!(matches!(err, SecretsError::NotAString), "{err:?}");
    assert_no_secret(&format!("{err} {err:?}"));
}

/// `secrets::load` as each `main.rs` calls it: `FEISHU_SECRET_ARN` and the SDK's own
/// `AWS_ENDPOINT_URL_SECRETS_MANAGER`, through the shared SDK config. Runs in a child process so
/// the environment of this one stays untouched; plain env secrets set beside the ARN are ignored.
#[tokio::test]
async fn load_reads_the_secret_named_by_the_env_through_the_sdk_config() {
    let client = aws_emulator::client().await;
    let arn = aws_emulator::create_secret(&client, &template_secret()).await;
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "load_child", "--ignored", "--nocapture"])
        .env("FEISHU_SECRET_ARN", &arn)
        .env(
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            aws_emulator::endpoint().await,
        )
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", aws_emulator::REGION)
        .env("FEISHU_APP_SECRET", "plain-env-app-secret")
        .env("FEISHU_ENCRYPT_KEY", "plain-env-encrypt-key")
        .env("FEISHU_VERIFICATION_TOKEN", "plain-env-token")
        .env("FEISHU_APP_ID", "cli_test")
        .env("CARDBOT_LOAD_CHILD", "1")
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
#[ignore = "run by load_reads_the_secret_named_by_the_env_through_the_sdk_config in a child process"]
async fn load_child() {
    assert_eq!(std::env::var("CARDBOT_LOAD_CHILD").as_deref(), Ok("1"));
    let aws = cardbot::aws::sdk_config().await;

    let cards = secrets::load(Function::CardAction, &aws).await.unwrap();
    assert_eq!(cards.source(), SecretSource::SecretsManager);
    assert!(!cards.is_set(SecretName::AppSecret));
    let webhook = WebhookConfig::from_env(&cards).unwrap();
    assert_eq!(webhook.encrypt_key.unwrap().expose(), ENCRYPT_KEY);
    assert_eq!(webhook.verification_token.expose(), VERIFICATION_TOKEN);

    let updater = secrets::load(Function::CardUpdater, &aws).await.unwrap();
    assert_eq!(
        FeishuConfig::from_env(&updater)
            .unwrap()
            .app_secret
            .expose(),
        APP_SECRET
    );

    // Without the ARN, the plain env values serve (local runs).
    std::env::remove_var("FEISHU_SECRET_ARN");
    let local = secrets::load(Function::CardUpdater, &aws).await.unwrap();
    assert_eq!(local.source(), SecretSource::Env);
    assert_eq!(local.app_secret().unwrap().expose(), "plain-env-app-secret");
}

/// The stack's two secrets, as the template builds them: each function's `FEISHU_SECRET_ARN`
/// names the ones it uses (comma-separated), their keys merged; the card callback, given only the
/// webhook secret, has everything it needs and no App Secret anywhere it can read.
#[tokio::test]
async fn functions_read_the_secrets_their_arn_list_names_and_merge_them() {
    let client = aws_emulator::client().await;
    let credentials =
        aws_emulator::create_secret(&client, &json!({ "app_secret": APP_SECRET }).to_string())
            .await;
    let webhook = aws_emulator::create_secret(
        &client,
        &json!({ "encrypt_key": ENCRYPT_KEY, "verification_token": VERIFICATION_TOKEN })
            .to_string(),
    )
    .await;
    let both = format!("{credentials}, {webhook}");
    let events = secrets::fetch_all(&client, &both, Function::EventCallback)
        .await
        .unwrap();
    assert_eq!(events.app_secret().unwrap().expose(), APP_SECRET);
    assert_eq!(
        events.verification_token().unwrap().expose(),
        VERIFICATION_TOKEN
    );
    let cards = secrets::fetch_all(&client, &webhook, Function::CardAction)
        .await
        .unwrap();
    assert_eq!(cards.encrypt_key().unwrap().unwrap().expose(), ENCRYPT_KEY);
    let updater = secrets::fetch_all(&client, &credentials, Function::CardUpdater)
        .await
        .unwrap();
    assert_eq!(updater.app_secret().unwrap().expose(), APP_SECRET);
    // Too many, or none: an error naming the count, no value.
    let five = [credentials.as_str(); 5].join(",");
    let e = secrets::fetch_all(&client, &five, Function::CardUpdater)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("5 secrets"), "{e}");
    assert_no_secret(&e.to_string());
    assert!(secrets::fetch_all(&client, " , ", Function::CardUpdater)
        .await
        .is_err());
}
