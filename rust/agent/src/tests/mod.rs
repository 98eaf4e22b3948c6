//! Unit tests of spec validation (here) and systemd unit generation (`systemd`), and the fake
//! launchctl the runner and install tests share (`fake_launchctl`). The launchctl runner and
//! the install/uninstall flow are tested beside their code; the plist's parse by independent
//! parsers is the integration test `tests/launchd_plist.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;

mod fake_launchctl;
mod systemd;

pub(crate) use fake_launchctl::*;

fn spec(mode: AgentMode) -> AgentSpec {
    let mut spec = AgentSpec::new(
        "/opt/spfs tools/bin/spfs-fuse-macos",
        "/var/log/spfs & co/service.log",
    );
    spec.args = vec![
        "service".into(),
        "/spfs".into(),
        "with space".into(),
        "quote\"d".into(),
        "it's".into(),
        "back\\slash".into(),
        "100%".into(),
        "$HOME".into(),
        "".into(),
    ];
    spec.env = BTreeMap::from([
        ("SPFS_AUTOSTART_IDLE_TIMEOUT_SECS".into(), "1800".into()),
        ("RUST_LOG".into(), "info,spfs=debug".into()),
        ("ODD".into(), "a \"b\" $c %d\\e".into()),
    ]);
    spec.mode = mode;
    if mode == AgentMode::Socket {
        spec.socket_path = Some("/tmp/spfs autostart/service.sock".into());
    }
    spec
}

fn invalid_field(result: Result<(), LaunchdError>) -> (&'static str, String) {
    match result {
        Err(LaunchdError::InvalidSpec { field, message }) => (field, message),
        other => panic!("expected InvalidSpec, got {other:?}"),
    }
}

#[test]
fn modes_and_formats_parse_and_unknown_ones_name_the_choices() {
    assert_eq!("always".parse::<AgentMode>().unwrap(), AgentMode::Always);
    assert_eq!("socket".parse::<AgentMode>().unwrap(), AgentMode::Socket);
    assert_eq!(
        "launchd".parse::<UnitFormat>().unwrap(),
        UnitFormat::Launchd
    );
    assert_eq!(
        "systemd".parse::<UnitFormat>().unwrap(),
        UnitFormat::Systemd
    );
    let err = "Always".parse::<AgentMode>().unwrap_err();
    assert_eq!(err.kind(), LaunchdErrorKind::InvalidSpec);
    let text = err.to_string();
    assert!(
        text.contains("\"always\"") && text.contains("\"socket\""),
        "{text}"
    );
    let text = "plist".parse::<UnitFormat>().unwrap_err().to_string();
    assert!(
        text.contains("\"launchd\"") && text.contains("\"systemd\""),
        "{text}"
    );
    assert_eq!(AgentMode::Socket.to_string(), "socket");
    assert_eq!(UnitFormat::Systemd.to_string(), "systemd");
}

#[test]
fn default_spec_is_valid() {
    spec(AgentMode::Always).validate().unwrap();
    spec(AgentMode::Socket).validate().unwrap();
    assert_eq!(AgentSpec::new("/a", "/b").label, DEFAULT_LABEL);
}

#[test]
fn labels_an_agent_cannot_have_are_invalid_spec_naming_the_label() {
    for label in [
        "",
        "ai.spk spfs",
        "ai/spk",
        "ai.spk/../x",
        ".hidden",
        "trailing.",
        "double..dot",
        "ai.spk.é",
        // One byte too long for `<label>.plist` to be a file name.
        &"a".repeat(250),
    ] {
        let mut spec = spec(AgentMode::Always);
        spec.label = label.to_owned();
        let (field, message) = invalid_field(spec.validate());
        assert_eq!(field, "label", "{label:?}");
        assert!(
            message.contains("reverse-DNS"),
            "the fix is named: {message}"
        );
        // The generators and install refuse it too, before touching anything.
        assert!(launchd_plist(&spec).is_err());
        assert!(systemd_units(&spec).is_err());
    }
    for label in ["com.example.My_Agent-2", &"a".repeat(249)] {
        let mut ok = spec(AgentMode::Always);
        ok.label = label.into();
        ok.validate().unwrap();
    }
}

#[test]
fn relative_paths_are_invalid_spec_naming_the_field() {
    let mut s = spec(AgentMode::Always);
    s.program = PathBuf::from("bin/spfs-fuse-macos");
    let (field, message) = invalid_field(s.validate());
    assert_eq!(field, "program");
    assert!(message.contains("absolute path"), "{message}");

    let mut s = spec(AgentMode::Always);
    s.log_file = PathBuf::from("service.log");
    assert_eq!(invalid_field(s.validate()).0, "log_file");

    let mut s = spec(AgentMode::Socket);
    s.socket_path = Some("service.sock".into());
    assert_eq!(invalid_field(s.validate()).0, "socket_path");
}

#[test]
fn socket_mode_without_a_socket_path_is_invalid_spec() {
    let mut s = spec(AgentMode::Socket);
    s.socket_path = None;
    let (field, message) = invalid_field(s.validate());
    assert_eq!(field, "socket_path");
    assert!(
        message.contains("\"always\""),
        "offers the other mode: {message}"
    );
    // Always mode does not need one.
    s.mode = AgentMode::Always;
    s.validate().unwrap();
}

#[test]
fn bundle_program_must_stay_inside_the_bundle() {
    for bad in [
        "/Applications/X.app/Contents/MacOS/x",
        "../x",
        "Contents/../../x",
        "",
    ] {
        let mut s = spec(AgentMode::Always);
        s.bundle_program = Some(bad.into());
        let (field, message) = invalid_field(s.validate());
        assert_eq!(field, "bundle_program", "{bad:?}");
        assert!(message.contains("Contents/MacOS/"), "{message}");
    }
    let mut s = spec(AgentMode::Always);
    s.bundle_program = Some("Contents/MacOS/spfs-fuse-macos".into());
    s.validate().unwrap();
}

#[test]
fn control_characters_and_bad_env_names_are_refused() {
    let mut s = spec(AgentMode::Always);
    s.args.push("nul\0byte".into());
    assert_eq!(invalid_field(s.validate()).0, "args");

    let mut s = spec(AgentMode::Always);
    s.env.insert("A=B".into(), "x".into());
    assert_eq!(invalid_field(s.validate()).0, "env");

    let mut s = spec(AgentMode::Always);
    s.program = PathBuf::from("/bin/new\nline");
    assert_eq!(invalid_field(s.validate()).0, "program");
}

#[test]
fn env_names_must_be_portable_and_values_must_survive_xml() {
    for key in ["A B", "1X", "ü", "", "A=B", "-x"] {
        let mut s = spec(AgentMode::Always);
        s.env.insert(key.into(), "v".into());
        let (field, message) = invalid_field(s.validate());
        assert_eq!(field, "env", "{key:?}");
        assert!(message.contains("[env]"), "{message}");
    }
    // A carriage return reads back from XML as a newline; U+FFFE and U+FFFF are not XML.
    for value in ["a\rb", "x\u{FFFE}", "x\u{FFFF}", "nul\0"] {
        let mut s = spec(AgentMode::Always);
        s.env.insert("OK_NAME".into(), value.into());
        assert_eq!(invalid_field(s.validate()).0, "env", "{value:?}");
        let mut s = spec(AgentMode::Always);
        s.args.push(value.into());
        assert_eq!(invalid_field(s.validate()).0, "args", "{value:?}");
    }
    let mut s = spec(AgentMode::Always);
    s.env.insert("_Ok_2".into(), "tab\tand\nnewline".into());
    let xml = launchd_plist(&s).unwrap();
    let back = ::plist::Value::from_reader_xml(xml.as_slice()).unwrap();
    let env = back
        .as_dictionary()
        .and_then(|d| d.get("EnvironmentVariables"))
        .and_then(|e| e.as_dictionary())
        .unwrap();
    assert_eq!(
        env.get("_Ok_2").and_then(|v| v.as_string()),
        Some("tab\tand\nnewline")
    );
}

#[test]
fn a_socket_path_longer_than_a_unix_socket_allows_is_refused() {
    let mut s = spec(AgentMode::Socket);
    let long = format!("/tmp/{}/service.sock", "d".repeat(180));
    s.socket_path = Some(long.clone().into());
    let (field, message) = invalid_field(s.validate());
    assert_eq!(field, "socket_path");
    assert!(message.contains("SPFS_AUTOSTART_STATE_DIR"), "{message}");
    assert!(launchd_plist(&s).is_err() && systemd_units(&s).is_err());
    // The longest accepted path is the client's own limit.
    let max = spfs_autostart_protocol::endpoint::MAX_SOCKET_PATH;
    let fits = format!("/{}", "s".repeat(max - 1));
    s.socket_path = Some(fits.into());
    s.validate().unwrap();
}

#[test]
fn a_bundled_plist_cannot_be_socket_mode() {
    let mut s = spec(AgentMode::Socket);
    s.bundle_program = Some("Contents/MacOS/spfs-fuse-macos".into());
    let (field, message) = invalid_field(s.validate());
    assert_eq!(field, "bundle_program");
    assert!(message.contains("every user"), "{message}");
    s.mode = AgentMode::Always;
    s.socket_path = None;
    s.validate().unwrap();
}
