//! The card-updater binary at cold start: it needs the App Secret and no webhook secret (it
//! receives no webhook). Integration tests also make cargo build this package's binary in the test
//! build, which the deployed_stack tests deploy (tests/tests/deployed_stack.rs).

#[path = "../../../tests/support/cold_start.rs"]
mod cold_start;

fn start(vars: &[(&str, &str)]) -> (bool, String) {
    cold_start::start(env!("CARGO_BIN_EXE_card-updater"), vars)
}

#[test]
fn without_the_app_secret_it_refuses_to_start_naming_it() {
    let (ok, text) = start(&[("FEISHU_APP_ID", "cli_test")]);
    assert!(!ok, "{text}");
    assert!(text.contains("cannot start"), "{text}");
    assert!(text.contains("FEISHU_APP_SECRET"), "{text}");
}

#[test]
fn it_starts_without_the_encrypt_key_and_the_verification_token() {
    let (_, text) = start(&[
        ("FEISHU_APP_ID", "cli_test"),
        ("FEISHU_APP_SECRET", "s3cr3t-value"),
    ]);
    // Its config loaded: it got as far as the Lambda runtime, which this test does not run.
    assert!(!text.contains("cannot start"), "{text}");
    assert!(text.contains("AWS_LAMBDA"), "{text}");
    assert!(
        !text.contains("s3cr3t-value"),
        "the App Secret never shows: {text}"
    );
}
