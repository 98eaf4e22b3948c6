//! The systemd units: strictly well formed, quoted so they round-trip, and verified by
//! `systemd-analyze` where it is installed.

use std::path::Path;
use std::process::Command;

use super::*;

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
            "WorkingDirectory",
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
        &[
            "ListenStream",
            "SocketMode",
            "DirectoryMode",
            "Accept",
            "RemoveOnStop",
        ],
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
    // Where the spawner and launchd run it, not the user's home.
    assert_eq!(values(&entries, "WorkingDirectory"), ["/"]);
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
    assert_eq!(values(&socket, "RemoveOnStop"), ["yes"]);
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
