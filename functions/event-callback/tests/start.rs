//! The event-callback binary at cold start: without an Encrypt Key it refuses to start unless
//! `ALLOW_UNENCRYPTED=true`.

#[path = "../../../tests/support/cold_start.rs"]
mod cold_start;

/// The binary with its app credentials and `vars`.
fn start(vars: &[(&str, &str)]) -> (bool, String) {
    let app = [
        ("FEISHU_APP_ID", "cli_test"),
        ("FEISHU_APP_SECRET", "s"),
        ("FEISHU_VERIFICATION_TOKEN", "v"),
    ];
    cold_start::start(
        env!("CARGO_BIN_EXE_event-callback"),
        &[&app[..], vars].concat(),
    )
}

#[test]
fn without_an_encrypt_key_it_refuses_to_start_unless_opted_in() {
    let (ok, text) = start(&[]);
    assert!(!ok, "{text}");
    assert!(text.contains("cannot start"), "{text}");
    assert!(text.contains("FEISHU_ENCRYPT_KEY"), "{text}");
    assert!(text.contains("ALLOW_UNENCRYPTED=true"), "{text}");

    let (ok, text) = start(&[("ALLOW_UNENCRYPTED", "false")]);
    assert!(!ok && text.contains("FEISHU_ENCRYPT_KEY"), "{text}");

    for vars in [
        &[("FEISHU_ENCRYPT_KEY", "k")][..],
        &[("ALLOW_UNENCRYPTED", "true")][..],
    ] {
        let (_, text) = start(vars);
        // Its config loaded: it got as far as the Lambda runtime, which this test does not run.
        assert!(!text.contains("cannot start"), "{vars:?}: {text}");
        assert!(text.contains("AWS_LAMBDA"), "{vars:?}: {text}");
    }
}
