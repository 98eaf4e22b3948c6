//! The library's messages (the client, the protocol, the kit and the agent)
//! reach a CLI user, a Swift app and a Python script alike: they name config
//! keys, environment variables and operations, never a flag or a command
//! line of one front end, and they carry the fix as a remedy so each front
//! end can add its own hint.

use std::path::Path;

use spfs_autostart::agent_spec::spec_from_config;
use spfs_autostart::{Config, Error, ErrorKind, Operation, Remedy};
use spfs_autostart_agent::{AgentMode, LaunchdError};
use spfs_autostart_test_support::{code_lines_with, library_sources};

/// What a CLI-only message looks like. Built by concatenation so that
/// this file does not match its own scan.
fn cli_words() -> Vec<String> {
    let mut words: Vec<String> = ["state-dir", "timeout", "mode", "format", "config", "bundle"]
        .iter()
        .map(|flag| format!("{}{flag}", "--"))
        .collect();
    words.push(format!("`{}-autostart ", "spfs"));
    words
}

fn no_cli_words(message: &str) {
    for word in cli_words() {
        assert!(!message.contains(&word), "names {word:?}: {message}");
    }
}

#[test]
fn no_message_of_the_library_names_a_cli_flag_or_command() {
    let files = library_sources(&["client", "protocol", "kit", "agent"]);
    assert!(files.len() > 30, "found the sources: {files:?}");
    // Unit tests (what they assert is not a message) and comments (they
    // are for us) are left out.
    let words = cli_words();
    let found: Vec<String> = files
        .iter()
        .flat_map(|file| code_lines_with(file, &words))
        .collect();
    assert!(
        found.is_empty(),
        "CLI words in the library:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_bad_timeout_names_its_key_and_carries_it_as_the_remedy() {
    let mut config = Config::defaults();
    for (err, key) in [
        (
            config.set_ready_timeout_secs(0).unwrap_err(),
            "ready_timeout_secs",
        ),
        (
            config.set_stop_timeout_secs(0).unwrap_err(),
            "stop_timeout_secs",
        ),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.message().contains(key), "{err}");
        no_cli_words(err.message());
        assert_eq!(err.remedies(), [Remedy::SetKey(key)]);
    }
}

#[test]
fn an_unreadable_config_file_names_the_variable_and_carries_the_remedy() {
    let err = Config::load_with(Some(Path::new("/nonexistent/c.toml")), |_| None).unwrap_err();
    assert!(err.message().contains("SPFS_AUTOSTART_CONFIG"), "{err}");
    no_cli_words(err.message());
    assert_eq!(err.remedies(), [Remedy::ConfigFile]);
}

#[test]
fn an_unusable_state_dir_names_the_key_and_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let err = spfs_autostart_protocol::paths::check_private_dir(&file, "state dir").unwrap_err();
    let msg = err.message();
    assert!(
        msg.contains("state_dir") && msg.contains("SPFS_AUTOSTART_STATE_DIR"),
        "{msg}"
    );
    no_cli_words(msg);
    assert_eq!(err.remedies(), [Remedy::SetKey("state_dir")]);
}

#[test]
fn socket_mode_on_tcp_names_the_endpoint_key_and_always_on_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.program = "/bin/sh".into();
    config.state_dir = Some(dir.path().join("state"));
    config.log_dir = Some(dir.path().join("logs"));
    config.set_endpoint("tcp://127.0.0.1:4100").unwrap();
    let paths = config.paths().unwrap();
    let err = spec_from_config(&config, &paths, AgentMode::Socket, None, None).unwrap_err();
    let msg = err.message();
    assert!(msg.contains("endpoint = \"unix\""), "{msg}");
    assert!(msg.contains("always-on"), "{msg}");
    no_cli_words(msg);
    // Always-on where it can be done: `agent install` needs launchd.
    let always_on = if cfg!(target_os = "macos") {
        Operation::AgentInstallAlways
    } else {
        Operation::AgentPrintSystemd
    };
    assert_eq!(
        err.remedies(),
        [Remedy::SetKey("endpoint"), Remedy::Run(always_on)]
    );
}

#[test]
fn launchd_unsupported_offers_systemd_units_and_ensure_as_operations() {
    for (socket, print) in [
        (false, Operation::AgentPrintSystemd),
        (true, Operation::AgentPrintSystemdSocket),
    ] {
        let err: Error = LaunchdError::Unsupported {
            operation: "launchctl bootstrap".into(),
            socket,
        }
        .into();
        let msg = err.message();
        assert!(msg.contains("systemd") && msg.contains("ensure"), "{msg}");
        no_cli_words(msg);
        assert_eq!(
            err.remedies(),
            [Remedy::Run(print), Remedy::Run(Operation::Ensure)]
        );
    }
}

/// Reading the log where the log dir is a file says so, with the key to
/// change, as following the log and starting the service do; not a bare
/// "Not a directory".
#[test]
fn reading_the_log_under_a_log_dir_that_is_a_file_names_the_key_to_change() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let mut config = Config::defaults();
    config.set_state_dir(root.path().join("state")).unwrap();
    config.set_log_dir(file.clone()).unwrap();
    let manager = spfs_autostart::ServiceManager::new(config).unwrap();
    for err in [
        manager.tail_logs(10).unwrap_err(),
        match manager.tail_logs_lines(10) {
            Ok(_) => panic!("read a log under a file"),
            Err(e) => e,
        },
    ] {
        assert!(err.to_string().contains("log_dir"), "{err}");
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{err}"
        );
        assert_eq!(err.remedies(), [Remedy::SetKey("log_dir")], "{err}");
        no_cli_words(&err.to_string());
    }
}
