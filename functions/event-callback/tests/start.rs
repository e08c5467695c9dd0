//! The event-callback binary at cold start: without an Encrypt Key it refuses to start unless
//! `ALLOW_UNENCRYPTED=true`.

use std::process::Command;

/// Runs the binary with only `vars` (no Lambda runtime API: past its config it stops there).
fn start(vars: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_event-callback"))
        .env_clear()
        .envs([
            ("AWS_REGION", "us-east-1"),
            ("TABLE_NAME", "t"),
            ("NO_COLOR", "1"),
            ("FEISHU_APP_ID", "cli_test"),
            ("FEISHU_APP_SECRET", "s"),
            ("FEISHU_VERIFICATION_TOKEN", "v"),
        ])
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
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
