//! The card-action binary at cold start: it needs the webhook's two secrets and no App Secret, and
//! without an Encrypt Key it refuses to start unless `ALLOW_UNENCRYPTED=true`.

#[path = "../../../tests/support/cold_start.rs"]
mod cold_start;

fn start(vars: &[(&str, &str)]) -> (bool, String) {
    cold_start::start(env!("CARGO_BIN_EXE_card-action"), vars)
}

#[test]
fn without_an_encrypt_key_it_refuses_to_start_and_says_how_to_opt_out() {
    let (ok, text) = start(&[("FEISHU_VERIFICATION_TOKEN", "v")]);
    assert!(!ok, "{text}");
    assert!(text.contains("cannot start"), "{text}");
    assert!(text.contains("FEISHU_ENCRYPT_KEY"), "{text}");
    assert!(text.contains("ALLOW_UNENCRYPTED=true"), "{text}");
}

#[test]
fn it_starts_without_the_app_secret_and_with_the_opt_in_without_a_key() {
    for vars in [
        &[
            ("FEISHU_VERIFICATION_TOKEN", "v"),
            ("FEISHU_ENCRYPT_KEY", "k"),
        ][..],
        &[
            ("FEISHU_VERIFICATION_TOKEN", "v"),
            ("ALLOW_UNENCRYPTED", "true"),
        ][..],
    ] {
        let (_, text) = start(vars);
        // Its config loaded: it got as far as the Lambda runtime, which this test does not run.
        assert!(!text.contains("cannot start"), "{vars:?}: {text}");
        assert!(text.contains("AWS_LAMBDA"), "{vars:?}: {text}");
    }
}
