//! `config` and the CLI's own hints: the core's errors name config keys and
//! operations, and the CLI adds the flag or command that does the fix here.

mod common;

use common::*;

/// The error object of a `--json` failure.
fn json_error(out: &std::process::Output) -> serde_json::Value {
    let err: serde_json::Value = serde_json::from_str(stderr(out).trim()).unwrap();
    err["error"].clone()
}

#[test]
fn a_bad_timeout_names_the_key_and_the_cli_adds_its_timeout_flag() {
    let sb = Sandbox::new("");
    let out = sb.run(&["ensure", "--timeout", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: ready_timeout_secs:"), "{err}");
    assert!(!first.contains("--timeout"), "the core's message: {err}");
    assert!(
        err.contains("hint: `spfs-autostart ensure --timeout SECS`"),
        "{err}"
    );
    assert!(sb.service_pids().is_empty(), "nothing started: {err}");

    let out = sb.run(&["--json", "stop", "--timeout", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = json_error(&out);
    let message = err["message"].as_str().unwrap();
    assert!(message.starts_with("stop_timeout_secs:"), "{err}");
    assert!(!message.contains("--timeout"), "{err}");
    assert_eq!(
        err["hints"],
        serde_json::json!([
            "`spfs-autostart stop --timeout SECS` sets stop_timeout_secs for one run"
        ])
    );
}

#[test]
fn an_unusable_state_dir_names_the_key_and_the_cli_adds_state_dir_flag() {
    let sb = Sandbox::new("");
    let file = sb.dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = sb
        .command(&["status"])
        .arg("--state-dir")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains("state_dir") && first.contains("SPFS_AUTOSTART_STATE_DIR"),
        "{err}"
    );
    assert!(!first.contains("--state-dir"), "the core's message: {err}");
    assert!(err.contains("hint: `--state-dir DIR`"), "{err}");
}

#[test]
fn a_missing_config_file_names_the_variable_and_the_cli_adds_config_flag() {
    let sb = Sandbox::new("");
    let out = std::process::Command::new(cli_bin())
        .args(["--config", "/nonexistent/spfs-autostart.toml", "status"])
        .env("HOME", sb.dir.path())
        .env_remove("SPFS_AUTOSTART_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let first = err.lines().next().unwrap_or_default();
    assert!(first.contains("SPFS_AUTOSTART_CONFIG"), "{err}");
    assert!(!first.contains("--config"), "the core's message: {err}");
    assert!(err.contains("hint: `--config FILE`"), "{err}");
}
