//! Unit tests of spec validation and systemd unit generation. The launchctl runner and the
//! install/uninstall flow are tested beside their code; the plist's parse by independent
//! parsers is the integration test `tests/launchd_plist.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

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
fn labels_launchd_rejects_are_invalid_spec_naming_the_label() {
    for label in [
        "",
        "ai.spk spfs",
        "ai/spk",
        "ai.spk/../x",
        ".hidden",
        "trailing.",
        "double..dot",
        "ai.spk.é",
        &"a".repeat(256),
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
    let mut ok = spec(AgentMode::Always);
    ok.label = "com.example.My_Agent-2".into();
    ok.validate().unwrap();
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

/// A strict reading of a unit file: every line is blank, a comment, a `[Section]` or a
/// `Key=Value` with a key known for that section; returns (section, key, value) triples.
fn parse_unit(text: &str, known: &[(&str, &[&str])]) -> Vec<(String, String, String)> {
    let mut section: Option<String> = None;
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            assert!(
                known.iter().any(|(s, _)| *s == name),
                "line {n}: unknown section [{name}] in\n{text}"
            );
            section = Some(name.to_owned());
            continue;
        }
        let section = section
            .as_deref()
            .unwrap_or_else(|| panic!("line {n}: entry before any section: {line:?}"));
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {n}: not Key=Value: {line:?}"));
        assert!(
            !line.ends_with('\\'),
            "line {n}: continuation lines are not expected"
        );
        let keys = known.iter().find(|(s, _)| *s == section).unwrap().1;
        assert!(
            keys.contains(&key),
            "line {n}: unknown key {key} in [{section}]"
        );
        assert!(!value.is_empty(), "line {n}: empty value for {key}");
        entries.push((section.to_owned(), key.to_owned(), value.to_owned()));
    }
    entries
}

const SERVICE_KEYS: &[(&str, &[&str])] = &[
    ("Unit", &["Description", "Requires", "After"]),
    (
        "Service",
        &[
            "ExecStart",
            "Environment",
            "StandardOutput",
            "StandardError",
            "Restart",
        ],
    ),
    ("Install", &["WantedBy"]),
];
const SOCKET_KEYS: &[(&str, &[&str])] = &[
    ("Unit", &["Description"]),
    (
        "Socket",
        &["ListenStream", "SocketMode", "DirectoryMode", "Accept"],
    ),
    ("Install", &["WantedBy"]),
];

fn values<'a>(entries: &'a [(String, String, String)], key: &str) -> Vec<&'a str> {
    entries
        .iter()
        .filter(|(_, k, _)| k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

/// Undoes systemd.syntax(7) word splitting (quotes and C escapes) and `$$`/`%%`, to check the
/// quoting round-trips.
fn systemd_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next().expect("unterminated quote") {
                    '"' => break,
                    '\\' => match chars.next().unwrap() {
                        'n' => word.push('\n'),
                        't' => word.push('\t'),
                        'r' => word.push('\r'),
                        c => word.push(c),
                    },
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                assert!(
                    !matches!(c, '"' | '\'' | '\\'),
                    "unquoted special in {line:?}"
                );
                word.push(c);
                chars.next();
            }
        }
        words.push(word.replace("%%", "%").replace("$$", "$"));
    }
    words
}

#[test]
fn always_mode_service_unit_is_strictly_well_formed() {
    let s = spec(AgentMode::Always);
    let units = systemd_units(&s).unwrap();
    assert_eq!(units.service_name, "spfs-fuse-macos.service");
    assert_eq!(units.socket_name, None);
    assert_eq!(units.socket, None);
    let entries = parse_unit(&units.service, SERVICE_KEYS);
    assert_eq!(values(&entries, "Restart"), ["on-failure"]);
    assert_eq!(values(&entries, "WantedBy"), ["default.target"]);
    assert!(values(&entries, "Requires").is_empty());
    let log = "append:/var/log/spfs & co/service.log";
    assert_eq!(values(&entries, "StandardOutput"), [log]);
    assert_eq!(values(&entries, "StandardError"), [log]);

    let exec = values(&entries, "ExecStart");
    assert_eq!(exec.len(), 1);
    let mut expected = vec![s.program.to_str().unwrap().to_owned()];
    expected.extend(s.args.iter().cloned());
    assert_eq!(systemd_words(exec[0]), expected, "{}", exec[0]);

    let env = values(&entries, "Environment")
        .into_iter()
        .flat_map(|line| {
            // In Environment= a `$` is literal: only `%` is escaped.
            assert!(!line.contains("$$"), "{line}");
            systemd_words(&line.replace('$', "$$"))
        })
        .collect::<Vec<_>>();
    let expected = s
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>();
    assert_eq!(env, expected);
}

#[test]
fn socket_mode_has_a_socket_unit_and_a_service_that_needs_it() {
    let units = systemd_units(&spec(AgentMode::Socket)).unwrap();
    assert_eq!(units.socket_name.as_deref(), Some("spfs-fuse-macos.socket"));
    let service = parse_unit(&units.service, SERVICE_KEYS);
    assert_eq!(values(&service, "Requires"), ["spfs-fuse-macos.socket"]);
    assert_eq!(values(&service, "After"), ["spfs-fuse-macos.socket"]);
    assert!(values(&service, "Restart").is_empty());
    assert!(
        !service.iter().any(|(section, _, _)| section == "Install"),
        "the socket is what gets enabled"
    );
    let socket = parse_unit(units.socket.as_deref().unwrap(), SOCKET_KEYS);
    assert_eq!(
        values(&socket, "ListenStream"),
        ["/tmp/spfs autostart/service.sock"]
    );
    assert_eq!(values(&socket, "SocketMode"), ["0600"]);
    assert_eq!(values(&socket, "Accept"), ["no"]);
    assert_eq!(values(&socket, "WantedBy"), ["sockets.target"]);
}

#[test]
fn unit_name_is_the_last_label_component() {
    let mut s = spec(AgentMode::Always);
    s.label = "spfs".into();
    assert_eq!(systemd_units(&s).unwrap().service_name, "spfs.service");
    s.label = "com.example.my-svc".into();
    assert_eq!(systemd_units(&s).unwrap().service_name, "my-svc.service");
}

#[test]
fn percent_signs_in_paths_are_not_specifiers() {
    let mut s = spec(AgentMode::Socket);
    s.log_file = "/logs/100%/x.log".into();
    s.socket_path = Some("/run/50%/s.sock".into());
    let units = systemd_units(&s).unwrap();
    assert!(
        units.service.contains("append:/logs/100%%/x.log"),
        "{}",
        units.service
    );
    assert!(
        units
            .socket
            .unwrap()
            .contains("ListenStream=/run/50%%/s.sock")
    );
}

/// `systemd-analyze verify --user` on the generated units, when systemd is installed. It needs a
/// runtime directory for the user manager (XDG_RUNTIME_DIR) and an ExecStart binary that exists;
/// unknown keys are only warnings (exit 0), so any output about our units fails the test.
#[test]
fn systemd_analyze_verifies_generated_units() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
    else {
        eprintln!("systemd-analyze not installed (Debian package `systemd`); strict parse only");
        return;
    };
    let program = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("a true(1) binary");
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    for mode in [AgentMode::Always, AgentMode::Socket] {
        let mut s = spec(mode);
        s.program = program.into();
        s.log_file = dir.path().join("log dir/service 100%.log");
        if mode == AgentMode::Socket {
            s.socket_path = Some(dir.path().join("sock dir/service.sock"));
        }
        let units = systemd_units(&s).unwrap();
        let mut files = vec![dir.path().join(&units.service_name)];
        std::fs::write(&files[0], &units.service).unwrap();
        if let (Some(name), Some(text)) = (&units.socket_name, &units.socket) {
            files.push(dir.path().join(name));
            std::fs::write(&files[1], text).unwrap();
        }
        let output = Command::new(analyze)
            .arg("verify")
            .arg("--user")
            .args(&files)
            .env("XDG_RUNTIME_DIR", &runtime)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && !stderr.contains(&units.service_name),
            "systemd-analyze verify rejected the {mode} units ({}):\n{stderr}\n{}\n{}",
            output.status,
            units.service,
            units.socket.as_deref().unwrap_or("")
        );
    }
}

/// A `launchctl` that records every argv and replays canned outputs in order.
#[derive(Debug, Default)]
pub(super) struct FakeRunner {
    pub(super) calls: std::cell::RefCell<Vec<Vec<String>>>,
    pub(super) replies: std::cell::RefCell<std::collections::VecDeque<CommandOutput>>,
}

impl FakeRunner {
    pub(super) fn replying(replies: impl IntoIterator<Item = CommandOutput>) -> Self {
        FakeRunner {
            calls: Default::default(),
            replies: std::cell::RefCell::new(replies.into_iter().collect()),
        }
    }

    pub(super) fn calls(&self) -> Vec<Vec<String>> {
        self.calls.borrow().clone()
    }

    /// The launchctl verb of each call, in order.
    pub(super) fn verbs(&self) -> Vec<String> {
        self.calls.borrow().iter().map(|c| c[1].clone()).collect()
    }
}

impl CommandRunner for FakeRunner {
    fn run(&self, argv: &[String]) -> std::io::Result<CommandOutput> {
        self.calls.borrow_mut().push(argv.to_vec());
        Ok(self
            .replies
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected launchctl call {argv:?}")))
    }
}

pub(super) fn ok() -> CommandOutput {
    CommandOutput {
        status: Some(0),
        ..Default::default()
    }
}

pub(super) fn failed(status: i32, stderr: &str) -> CommandOutput {
    CommandOutput {
        status: Some(status),
        stdout: String::new(),
        stderr: stderr.to_owned(),
    }
}

/// launchctl's real failure texts, as users have reported them.
pub(super) const BOOTSTRAP_EIO: &str = "Bootstrap failed: 5: Input/output error\nTry re-running the command as root for richer errors.\n";
pub(super) const BOOTSTRAP_IN_PROGRESS: &str =
    "Bootstrap failed: 37: Operation already in progress\n";
pub(super) const BOOTOUT_NOT_LOADED: &str = "Boot-out failed: 3: No such process\n";
pub(super) const PRINT_NOT_FOUND_PORT: &str =
    "Could not find service \"ai.spk.spfs-fuse-macos\" in domain for port\n";
pub(super) const PRINT_NOT_FOUND_USER: &str =
    "Bad request.\nCould not find service \"ai.spk.spfs-fuse-macos\" in domain for user gui: 501\n";

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

#[test]
fn systemd_refuses_quotes_and_backslashes_in_the_program_path_and_keeps_dollars() {
    for bad in ["/opt/a\"b/prog", "/opt/a'b/prog", "/opt/a\\b/prog"] {
        let mut s = spec(AgentMode::Always);
        s.program = bad.into();
        match systemd_units(&s) {
            Err(LaunchdError::InvalidSpec { field, message }) => {
                assert_eq!(field, "program");
                assert!(
                    message.contains("without quotes or backslashes"),
                    "{message}"
                );
            }
            other => panic!("{bad:?}: expected InvalidSpec, got {other:?}"),
        }
        // launchd has no such limit.
        launchd_plist(&s).unwrap();
    }
    let mut s = spec(AgentMode::Always);
    s.program = "/opt/a$b 100%/prog".into();
    let units = systemd_units(&s).unwrap();
    assert!(
        units.service.contains("ExecStart=\"/opt/a$b 100%%/prog\" "),
        "{}",
        units.service
    );
}

#[test]
fn the_socket_unit_creates_missing_parents_0700() {
    let units = systemd_units(&spec(AgentMode::Socket)).unwrap();
    assert!(
        units.socket.unwrap().contains("\nDirectoryMode=0700\n"),
        "the client refuses a state dir others can enter"
    );
}

/// With systemd's own parser: a program whose path holds a `$` (and a
/// space) verifies, and the one systemd refuses is refused by us first.
#[test]
fn systemd_analyze_accepts_a_program_path_with_a_dollar() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
    else {
        eprintln!("systemd-analyze not installed (Debian package `systemd`); strict parse only");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let bin = dir.path().join("a$b c");
    std::fs::create_dir(&bin).unwrap();
    let program = bin.join("prog");
    std::fs::copy("/bin/true", &program).unwrap();
    let mut s = spec(AgentMode::Socket);
    s.program = program;
    s.log_file = dir.path().join("logs/service.log");
    s.socket_path = Some(dir.path().join("state/service.sock"));
    let units = systemd_units(&s).unwrap();
    let service = dir.path().join(&units.service_name);
    let socket = dir.path().join(units.socket_name.as_deref().unwrap());
    std::fs::write(&service, &units.service).unwrap();
    std::fs::write(&socket, units.socket.as_deref().unwrap()).unwrap();
    let output = Command::new(analyze)
        .arg("verify")
        .arg("--user")
        .args([&service, &socket])
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains(&units.service_name),
        "systemd-analyze verify rejected the units ({}):\n{stderr}\n{}",
        output.status,
        units.service
    );
}
