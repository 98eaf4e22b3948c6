//! The configuration's tests: the file, the rules, and that every key
//! reaches every rendering; environment variables in `environment`.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::error::{ErrorKind, Result};

mod environment;

fn parse(text: &str) -> Result<Config> {
    let mut config = Config::defaults();
    config.apply_toml(text, Path::new("/etc/test.toml"))?;
    Ok(config)
}

#[test]
fn unknown_key_is_rejected_with_line_and_column() {
    let err = parse("program = \"x\"\nprogramm = \"y\"\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let msg = err.to_string();
    assert!(msg.contains("/etc/test.toml"), "{msg}");
    assert!(msg.contains("line 2"), "{msg}");
    assert!(msg.contains("column 1"), "{msg}");
    assert!(msg.contains("programm"), "{msg}");
}

#[test]
fn malformed_toml_names_the_line() {
    let err = parse("args = [\"a\",\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("line"), "{err}");
}

#[test]
fn endpoint_forms_parse_and_bad_ones_name_the_forms() {
    assert_eq!(
        "unix".parse::<Endpoint>().unwrap(),
        Endpoint::StateDirSocket
    );
    assert_eq!(
        "unix:///run/x.sock".parse::<Endpoint>().unwrap(),
        Endpoint::Unix("/run/x.sock".into())
    );
    assert_eq!(
        "tcp://127.0.0.1:37738".parse::<Endpoint>().unwrap(),
        Endpoint::Tcp(([127, 0, 0, 1], 37738).into())
    );
    for bad in ["", "unix://", "unix://rel/x", "tcp://localhost", "http://x"] {
        let err = bad.parse::<Endpoint>().unwrap_err();
        assert!(err.contains("tcp://IP:PORT"), "{bad}: {err}");
    }
    // Forms written from elsewhere get the spelling that works.
    for (bad, fix) in [
        ("127.0.0.1:37738", "write \"tcp://127.0.0.1:37738\""),
        ("[::1]:37738", "write \"tcp://[::1]:37738\""),
        ("/run/spfs.sock", "write \"unix:///run/spfs.sock\""),
        ("tcp://localhost:37738", "write \"tcp://127.0.0.1:37738\""),
    ] {
        let err = bad.parse::<Endpoint>().unwrap_err();
        assert!(err.ends_with(fix), "{bad}: {err}");
        // What it suggests parses.
        let suggested = fix.trim_start_matches("write ").trim_matches('"');
        assert!(suggested.parse::<Endpoint>().is_ok(), "{suggested}");
    }
    // A directory is not a socket: the file in it that was meant works.
    let err = "unix:///run/spfs/".parse::<Endpoint>().unwrap_err();
    assert!(err.contains("\"unix:///run/spfs/service.sock\""), "{err}");
    assert!("unix:///run/spfs/service.sock".parse::<Endpoint>().is_ok());
    let err = parse("endpoint = \"tcp://nowhere\"").unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[test]
fn relative_program_and_zero_timeouts_are_refused() {
    let err = parse("program = \"bin/svc\"").unwrap_err();
    assert!(err.to_string().contains("relative"), "{err}");
    let err = parse("ready_timeout_secs = 0").unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");
    let err = parse("stop_timeout_secs = 99999999").unwrap_err();
    assert!(err.to_string().contains("at most 3600"), "{err}");
    assert_eq!(
        parse("idle_timeout_secs = 0").unwrap().idle_timeout,
        Duration::ZERO
    );
}

#[test]
fn shell_style_paths_are_refused_saying_they_are_not_expanded() {
    for (text, key) in [
        ("state_dir = \"~/spfs-state\"", "state_dir"),
        ("log_dir = \"$HOME/logs\"", "log_dir"),
        ("program = \"~/bin/spfs-fuse-macos\"", "program"),
    ] {
        let msg = parse(text).unwrap_err().to_string();
        assert!(
            msg.contains(key) && msg.contains("(~ and $VARIABLES are not expanded here)"),
            "{text}: {msg}"
        );
    }
    // A plain relative path gets the plain words.
    let msg = parse("state_dir = \"spfs-state\"").unwrap_err().to_string();
    assert!(msg.contains("is relative; give an absolute path"), "{msg}");
}

#[test]
fn a_bad_file_names_the_config_file_as_the_remedy() {
    for text in ["ready_timeout_secs = 0", "programm = \"x\"", "program = ["] {
        let err = parse(text).unwrap_err();
        assert!(err.to_string().contains("/etc/test.toml"), "{text}: {err}");
        assert_eq!(
            err.remedies(),
            [crate::remedy::Remedy::ConfigFile],
            "{text}: {err}"
        );
    }
}

#[test]
fn rendered_config_reads_back_the_same() {
    let mut config =
        parse("program = \"/bin/x\"\nargs = [\"a b\"]\n[env]\nRUST_LOG = \"debug\"\n").unwrap();
    config.expected_version = Some("1.2.3".into());
    let text = config.to_toml();
    let mut back = Config::defaults();
    back.apply_toml(&text, Path::new("/x.toml")).unwrap();
    back.source = config.source.clone();
    assert_eq!(back, config);
}

#[test]
fn stop_sequence_defaults_to_spfs_fuse_macos_and_reads_back() {
    use nix::sys::signal::Signal;
    let config = parse("").unwrap();
    assert_eq!(
        config.stop_sequence,
        [
            StopStep::Shutdown,
            StopStep::Signal(Signal::SIGINT),
            StopStep::Signal(Signal::SIGTERM),
            StopStep::Signal(Signal::SIGKILL),
        ]
    );
    let custom = parse("stop_sequence = [\"TERM\", \"SIGKILL\"]").unwrap();
    assert_eq!(
        custom.stop_sequence,
        [
            StopStep::Signal(Signal::SIGTERM),
            StopStep::Signal(Signal::SIGKILL)
        ]
    );
    let mut back = Config::defaults();
    back.apply_toml(&custom.to_toml(), Path::new("/x.toml"))
        .unwrap();
    assert_eq!(back.stop_sequence, custom.stop_sequence);
}

#[test]
fn bad_stop_sequences_are_refused_naming_the_key_and_the_fix() {
    for (bad, why) in [
        ("[]", "is empty"),
        ("[\"SIGSTOP\"]", "not a stop step"),
        ("[\"halt\"]", "\"shutdown\" or one of SIGINT"),
        ("[\"SIGINT\", \"INT\"]", "listed twice"),
    ] {
        let err = parse(&format!("stop_sequence = {bad}")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("stop_sequence"), "{bad}: {msg}");
        assert!(msg.contains(why), "{bad}: {msg}");
    }
}

#[test]
fn a_config_file_that_is_not_utf8_says_so_not_that_its_path_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("latin1.toml");
    std::fs::write(&file, b"program = \"caf\xe9\"\n").unwrap();
    let err = Config::load_with(Some(&file), |_| None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let text = err.to_string();
    assert!(text.contains("is not UTF-8 text"), "{text}");
    assert!(!text.contains("path"), "{text}");
    assert_eq!(err.remedies(), [crate::remedy::Remedy::ConfigFile]);
}

#[test]
fn a_nul_byte_is_refused_naming_the_key() {
    for (text, key) in [
        ("program = \"spfs\\u0000x\"", "program"),
        ("args = [\"ok\", \"a\\u0000b\"]", "args"),
        ("state_dir = \"/tmp/a\\u0000b\"", "state_dir"),
        ("log_dir = \"/tmp/a\\u0000b\"", "log_dir"),
        ("endpoint = \"unix:///tmp/a\\u0000b\"", "endpoint"),
    ] {
        // Refused as the file is read, with its line and column (`args`
        // was refused only by the final check, without them).
        let err = parse(text).expect_err(&format!("{text} was accepted"));
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{text}");
        let message = err.to_string();
        assert!(
            message.contains(key) && message.contains("NUL"),
            "{text}: {message}"
        );
        assert!(message.contains("line 1, column"), "{text}: {message}");
    }
}

#[test]
fn an_empty_config_path_is_refused_as_empty() {
    let err = Config::load_with(Some(Path::new("")), |_| None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("path is empty"), "{err}");
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let err = Config::load_with(Some(Path::new("/nonexistent/c.toml")), |_| None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("/nonexistent/c.toml"), "{err}");
}

/// The per-user file is read whenever something stands at its path: a
/// dangling symlink or a directory there is an error naming the path and
/// the fix, not a run on the defaults the user did not ask for. Only
/// nothing there (or no `~/.config` directory to hold it) means the
/// defaults.
#[test]
fn anything_at_the_per_user_path_is_read_and_only_nothing_there_means_the_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let xdg = tmp.path().join("xdg");
    let dir = xdg.join("spfs-autostart");
    let file = dir.join("config.toml");
    let env = |name: &str| (name == "XDG_CONFIG_HOME").then(|| xdg.display().to_string());
    // Nothing there: the defaults.
    let config = Config::load_with(None, env).unwrap();
    assert_eq!(config.source, None);
    // A parent that is a file: nothing can be there.
    std::fs::write(&xdg, "").unwrap();
    assert_eq!(Config::load_with(None, env).unwrap().source, None);
    std::fs::remove_file(&xdg).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    // A dangling symlink: its missing target is named.
    let target = tmp.path().join("dotfiles/config.toml");
    std::os::unix::fs::symlink(&target, &file).unwrap();
    let err = Config::load_with(None, env).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let message = err.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(
        message.contains(&format!(
            "it is a symlink to {}, which is missing",
            target.display()
        )),
        "{message}"
    );
    // A directory: named, with the per-user fix.
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    let err = Config::load_with(None, env).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(
        message.contains("fix or remove the per-user config file"),
        "{message}"
    );
    // The link's target restored: read.
    std::fs::remove_dir(&file).unwrap();
    std::os::unix::fs::symlink(&target, &file).unwrap();
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, "stop_timeout_secs = 7\n").unwrap();
    let config = Config::load_with(None, env).unwrap();
    assert_eq!(config.source.as_deref(), Some(file.as_path()));
    assert_eq!(config.stop_timeout, Duration::from_secs(7));
}

#[test]
fn out_of_bounds_values_are_refused_with_key_line_and_column() {
    for (text, key, line) in [
        (
            "program = \"/x\"\nlog_keep = 4294967295\n",
            "log_keep",
            "line 2",
        ),
        ("log_max_bytes = 0\n", "log_max_bytes", "line 1"),
        (
            "\n\nready_timeout_secs = 0\n",
            "ready_timeout_secs",
            "line 3",
        ),
        ("endpoint = \"tcp://127.0.0.1:0\"\n", "port 0", "line 1"),
        ("[env]\n\"A=B\" = \"c\"\n", "env", "line 2"),
        ("[env]\n\"\" = \"c\"\n", "env", "line 2"),
        // What the agent files could not carry either.
        ("[env]\n\"A B\" = \"c\"\n", "portable", "line 2"),
        ("[env]\n\"1X\" = \"c\"\n", "portable", "line 2"),
        // What every start sets, from a key of its own: [env] would be
        // replaced without a word.
        (
            "[env]\nSPFS_AUTOSTART_IDLE_TIMEOUT_SECS = \"60\"\n",
            "set idle_timeout_secs instead",
            "line 2",
        ),
        (
            "[env]\nSPFS_AUTOSTART_LOCK_FD = \"3\"\n",
            "every start sets it",
            "line 2",
        ),
        ("state_dir = \"rel\"\n", "state_dir", "line 1"),
        // A value of the wrong type names its key as well.
        (
            "idle_timeout_secs = -1\n",
            "idle_timeout_secs: invalid",
            "line 1",
        ),
        (
            "ready_timeout_secs = \"10\"\n",
            "ready_timeout_secs: invalid",
            "line 1",
        ),
        (
            "\non_version_mismatch = \"ignore\"\n",
            "on_version_mismatch: unknown",
            "line 2",
        ),
        (
            "stop_sequence = \"SIGINT\"\n",
            "stop_sequence: invalid",
            "line 1",
        ),
        (
            "expected_version = 1\n",
            "expected_version: invalid",
            "line 1",
        ),
        ("endpoint = 1\n", "endpoint: invalid", "line 1"),
    ] {
        let err = parse(text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{text}");
        let msg = err.to_string();
        assert!(msg.contains(key), "{text}: {msg}");
        assert!(
            msg.contains(line) && msg.contains("column"),
            "{text}: {msg}"
        );
    }
    let ok = parse("log_keep = 100\nlog_max_bytes = 4096\n").unwrap();
    assert_eq!((ok.log_keep, ok.log_max_bytes), (100, 4096));
}

/// The service's calls ask for no credentials: an address other machines
/// reach (every interface, a LAN address) is refused, naming the loopback
/// address to use instead; loopback addresses are fine.
#[test]
fn a_tcp_endpoint_other_machines_could_reach_is_refused() {
    for (text, fix) in [
        ("tcp://0.0.0.0:37738", "use tcp://127.0.0.1:37738"),
        ("tcp://192.168.1.20:37738", "use tcp://127.0.0.1:37738"),
        ("tcp://[::]:37738", "use tcp://[::1]:37738"),
    ] {
        let err = text.parse::<Endpoint>().unwrap_err();
        assert!(
            err.contains("not a loopback address") && err.ends_with(fix),
            "{text}: {err}"
        );
    }
    for text in [
        "tcp://127.0.0.1:37738",
        "tcp://127.0.0.2:1",
        "tcp://[::1]:37738",
    ] {
        assert!(text.parse::<Endpoint>().is_ok(), "{text}");
    }
    // A config built in code is held to the same rule.
    let mut config = Config::defaults();
    config.endpoint = Endpoint::Tcp(([0, 0, 0, 0], 37738).into());
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("not a loopback address"), "{err}");
}

#[test]
fn long_unix_endpoint_is_refused_and_names_the_fix() {
    let long = format!("unix:///tmp/{}.sock", "s".repeat(120));
    let err = long.parse::<Endpoint>().unwrap_err();
    assert!(err.contains("shorter path"), "{err}");
    let short = format!("unix:///tmp/{}.sock", "s".repeat(40));
    assert!(short.parse::<Endpoint>().is_ok());
}

#[test]
fn validate_applies_the_file_rules_to_a_config_built_in_code() {
    let mut config = Config::defaults();
    config.validate().unwrap();
    config.log_keep = MAX_LOG_KEEP + 1;
    assert!(
        config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("log_keep")
    );
    let mut config = Config::defaults();
    config.env.insert("A=B".into(), "c".into());
    assert!(config.validate().unwrap_err().to_string().contains("env"));
    let mut config = Config::defaults();
    config.state_dir = Some("relstate".into());
    assert!(
        config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("state_dir")
    );
    let mut config = Config::defaults();
    config.expected_version = Some(String::new());
    assert!(
        config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("expected_version")
    );
    let mut config = Config::defaults();
    config.endpoint = Endpoint::Tcp(([127, 0, 0, 1], 0).into());
    assert!(
        config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("port 0")
    );
}

/// A configuration with every optional key set, so every key is rendered.
fn every_key_set() -> Config {
    let mut config = parse("[env]\nRUST_LOG = \"debug\"\n").unwrap();
    config.expected_version = Some("1.2.3".into());
    config.state_dir = Some("/run/state".into());
    config.log_dir = Some("/var/log/x".into());
    config.on_version_mismatch = VersionPolicy::Error;
    config
}

#[test]
fn the_key_list_is_what_the_file_accepts() {
    let keys = ConfigView::keys();
    assert!(
        keys.contains(&"program") && keys.contains(&"env"),
        "{keys:?}"
    );
    for key in keys {
        // Every listed key is accepted (with a value of its type, from the
        // rendering), and a key one letter off is refused.
        let rendered: toml::Table = toml::from_str(&every_key_set().to_toml()).unwrap();
        let value = &rendered[*key];
        let one = toml::Table::from_iter([(key.to_string(), value.clone())]);
        parse(&toml::to_string(&one).unwrap()).unwrap_or_else(|e| panic!("{key}: {e}"));
        let err = parse(&format!("{key}x = 1")).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{key}: {err}");
    }
}

#[test]
fn toml_and_json_views_hold_every_key() {
    let config = every_key_set();
    let toml_keys: Vec<String> = toml::from_str::<toml::Table>(&config.to_toml())
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let json = serde_json::to_value(config.view()).unwrap();
    let mut json_keys: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
    let mut keys: Vec<String> = ConfigView::keys().iter().map(|k| k.to_string()).collect();
    keys.sort();
    json_keys.sort();
    let mut toml_keys = toml_keys;
    toml_keys.sort();
    assert_eq!(json_keys, keys);
    assert_eq!(toml_keys, keys);
    // Unset keys are null in JSON and left out of TOML, so TOML reads back.
    let defaults = serde_json::to_value(Config::defaults().view()).unwrap();
    assert_eq!(defaults["state_dir"], serde_json::Value::Null);
    assert_eq!(defaults["log_dir"], serde_json::Value::Null);
    assert_eq!(defaults["on_version_mismatch"], "restart");
    assert_eq!(defaults["endpoint_env"], env::MACFUSE_LISTEN_ADDRESS);
    assert_eq!(defaults["stop_sequence"][0], "shutdown");
}

#[test]
fn every_key_set_reads_back_the_same() {
    let config = every_key_set();
    let mut back = Config::defaults();
    back.apply_toml(&config.to_toml(), Path::new("/x.toml"))
        .unwrap();
    back.source = config.source.clone();
    assert_eq!(back, config);
}

#[test]
fn each_bound_index_names_its_key_and_the_key_is_in_the_file() {
    use validate::{BOUNDS, bound};
    for (index, key) in [
        (bound::READY_TIMEOUT_SECS, "ready_timeout_secs"),
        (bound::STOP_TIMEOUT_SECS, "stop_timeout_secs"),
        (bound::IDLE_TIMEOUT_SECS, "idle_timeout_secs"),
        (bound::LOG_MAX_BYTES, "log_max_bytes"),
        (bound::LOG_KEEP, "log_keep"),
    ] {
        assert_eq!(BOUNDS[index].key, key);
        assert!(ConfigView::keys().contains(&key), "{key}");
    }
}

#[test]
fn each_bound_is_enforced_by_the_file_and_validate_at_both_ends() {
    for bound in &validate::BOUNDS {
        let key = bound.key;
        let below = bound.min.checked_sub(1);
        for (value, why) in [(below, "at least"), (bound.max.checked_add(1), "at most")] {
            let Some(value) = value else { continue };
            let err = parse(&format!("{key} = {value}")).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(key) && msg.contains(why),
                "{key}={value}: {msg}"
            );
        }
        for value in [bound.min, bound.max] {
            let config = parse(&format!("{key} = {value}"))
                .unwrap_or_else(|e| panic!("{key} = {value}: {e}"));
            config.validate().unwrap();
        }
    }
    let mut config = Config::defaults();
    config.stop_timeout = Duration::from_secs(3601);
    let err = config.validate().unwrap_err();
    assert!(err.to_string().starts_with("stop_timeout_secs:"), "{err}");
    assert_eq!(
        err.remedies(),
        [crate::remedy::Remedy::SetKey("stop_timeout_secs")]
    );
}

#[test]
fn setters_refuse_what_the_file_refuses_naming_the_key() {
    let mut config = Config::defaults();
    let err = config.set_state_dir("relative/state").unwrap_err();
    assert!(err.to_string().starts_with("state_dir:"), "{err}");
    assert_eq!(config.state_dir, None, "unchanged");
    let err = config.set_log_dir("logs").unwrap_err();
    assert!(err.to_string().starts_with("log_dir:"), "{err}");
    let err = config.set_expected_version("").unwrap_err();
    assert!(err.to_string().starts_with("expected_version:"), "{err}");
    config.set_state_dir("/run/s").unwrap();
    config.set_expected_version("2.0").unwrap();
    assert_eq!(config.state_dir.as_deref(), Some(Path::new("/run/s")));
    assert_eq!(config.expected_version.as_deref(), Some("2.0"));
}
