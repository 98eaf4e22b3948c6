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
fn a_variable_that_is_not_utf8_text_is_refused_naming_it() {
    use std::os::unix::ffi::OsStrExt;
    let sb = Sandbox::new();
    // Inside the sandbox: were it ever taken, nothing outside is touched.
    let mut bytes = sb.root().as_os_str().as_bytes().to_vec();
    bytes.extend_from_slice(b"/not-utf8-\xff");
    let bad = std::ffi::OsStr::from_bytes(&bytes);
    for name in [
        "SPFS_AUTOSTART_CONFIG",
        "SPFS_AUTOSTART_STATE_DIR",
        "SPFS_AUTOSTART_LOG_DIR",
    ] {
        for command in ["config", "ensure"] {
            let out = sb
                .cli(&["--json", command])
                .env(name, bad)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{name} {command}");
            let error = json_error(&out);
            assert_eq!(error["kind"], "InvalidConfig", "{name} {command}: {error}");
            let message = error["message"].as_str().unwrap();
            assert!(
                message.contains(name) && message.contains("UTF-8"),
                "{message}"
            );
        }
    }
    // Refused before anything was started.
    assert_eq!(sb.spawn_count(), 0);
    assert!(sb.pids().is_empty());
}

/// A `--timeout` out of bounds (or not whole seconds) is a usage error of
/// the flag, exit 2 as for any bad argument, saying what it accepts; not a
/// bad config key with a hint to use the very flag given.
#[test]
fn a_bad_timeout_flag_is_a_usage_error_saying_what_it_accepts() {
    let sb = Sandbox::new();
    for (args, says) in [
        (
            &["ensure", "--timeout", "0"][..],
            "0 seconds is too small; use at least 1",
        ),
        (
            &["stop", "--timeout", "0"],
            "0 seconds is too small; use at least 1",
        ),
        (
            &["stop", "--timeout", "86401"],
            "86401 seconds is too large; use at most",
        ),
        (
            &["ensure", "--timeout", "1.5"],
            "give a whole number of seconds",
        ),
    ] {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!(
                "error: invalid value '{}' for '--timeout <SECS>': {says}",
                args[2]
            )),
            "{args:?}: {err}"
        );
        assert!(!err.contains("_timeout_secs"), "{args:?}: {err}");
    }
    let out = sb.run(&["--json", "stop", "--timeout", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_error(&out)["kind"], "Usage");
    assert!(sb.pids().is_empty(), "nothing started");
    assert_eq!(sb.spawn_count(), 0);
}

#[test]
fn an_unusable_state_dir_names_the_key_and_the_cli_adds_state_dir_flag() {
    let sb = Sandbox::new();
    let file = sb.root().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = sb
        .cli(&["status"])
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
    let sb = Sandbox::new();
    let out = sb
        .command(cli_bin())
        .args(["--config", "/nonexistent/spfs-autostart.toml", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let first = err.lines().next().unwrap_or_default();
    assert!(first.contains("SPFS_AUTOSTART_CONFIG"), "{err}");
    assert!(!first.contains("--config"), "the core's message: {err}");
    assert!(
        err.contains("hint: fix the config file, or read another with `--config FILE`"),
        "{err}"
    );
}

#[test]
fn a_bad_value_in_the_config_file_names_the_line_and_gets_the_config_hint() {
    let sb = Sandbox::new();
    let file = sb.root().join("bad.toml");
    std::fs::write(&file, "ready_timeout_secs = 0\n").unwrap();
    let out = sb
        .command(cli_bin())
        .arg("--config")
        .arg(&file)
        .args(["--json", "ensure"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = json_error(&out);
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("line 1") && message.contains("ready_timeout_secs"),
        "{err}"
    );
    assert_eq!(
        err["hints"],
        serde_json::json!(["fix the config file, or read another with `--config FILE`"])
    );
    assert!(sb.pids().is_empty(), "nothing started: {err}");
}

/// A sandbox whose config sets every optional key, so every key is shown.
fn every_key_set() -> Sandbox {
    let mut sb = Sandbox::new()
        .with("expected_version", "1.2.3")
        .with("on_version_mismatch", "error")
        .with("log_keep", 7)
        .with("endpoint_env", "");
    sb.set_env("RUST_LOG", "debug");
    sb
}

#[test]
fn config_json_holds_every_key_the_file_accepts() {
    let sb = every_key_set();
    let json: serde_json::Value = serde_json::from_str(&sb.ok(&["--json", "config"])).unwrap();
    let object = json.as_object().unwrap();
    let accepted = spfs_autostart::ConfigView::keys();
    assert!(accepted.len() >= 15, "{accepted:?}");
    for key in accepted {
        assert!(
            object.contains_key(*key),
            "config --json lacks {key}: {json}"
        );
    }
    // Nothing else but where the config came from (the file, the
    // variables that set keys) and the resolved paths.
    let extra: Vec<&String> = object
        .keys()
        .filter(|k| !accepted.contains(&k.as_str()))
        .collect();
    assert_eq!(extra, ["env_overrides", "resolved", "source"], "{json}");
    // The values are the file's.
    assert_eq!(json["log_keep"], 7);
    assert_eq!(json["on_version_mismatch"], "error");
    assert_eq!(json["endpoint_env"], "");
    assert_eq!(json["env"]["RUST_LOG"], "debug");
    assert_eq!(json["log_dir"], path_str(&sb.log_dir()));
    assert_eq!(json["resolved"]["state_dir"], path_str(&sb.state_dir()));
    assert_eq!(json["source"], path_str(&sb.config_file()));
}

#[test]
fn config_text_is_toml_with_every_key_the_file_accepts_and_reads_back() {
    let sb = every_key_set();
    let text = sb.ok(&["config"]);
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut shown: Vec<&str> = table.keys().map(String::as_str).collect();
    let mut accepted = spfs_autostart::ConfigView::keys().to_vec();
    shown.sort();
    accepted.sort();
    assert_eq!(shown, accepted, "{text}");
    // Fed back as the config file, it gives the same configuration.
    std::fs::write(sb.config_file(), &text).unwrap();
    assert_eq!(sb.ok(&["config"]), text);
}

#[test]
fn config_text_reads_back_when_a_path_holds_a_newline() {
    let mut sb = Sandbox::new();
    let odd = sb.root().join("logs\n# not a comment = 1");
    sb.set("log_dir", path_str(&odd));
    let text = sb.ok(&["config"]);
    let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(table["log_dir"].as_str(), Some(path_str(&odd).as_str()));
    std::fs::write(sb.config_file(), &text).unwrap();
    assert_eq!(sb.ok(&["config"]), text);
}

// `SPFS_AUTOSTART_CONFIG=` (a script's unset variable) failed with clap's
// "a value is required for '--config'", a flag the user never typed.
#[test]
fn an_empty_config_variable_counts_as_unset_and_a_set_one_is_read() {
    let sb = Sandbox::new();
    let config_with = |value: &std::ffi::OsStr| {
        let out = sb
            .command(cli_bin())
            .env("SPFS_AUTOSTART_CONFIG", value)
            .args(["--json", "config"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{value:?}: {}", stderr(&out));
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        config["source"].clone()
    };
    assert_eq!(config_with("".as_ref()), serde_json::Value::Null);
    let file = sb.config_file();
    assert_eq!(
        config_with(file.as_os_str()),
        serde_json::json!(file.to_str().unwrap())
    );
}

// `config` showed an environment variable's value as if the file held it,
// so a user editing the file could not see why it had no effect.
/// `--state-dir=~/x` reaches us unexpanded (the shell expands `~` only at
/// the start of a word): refused, instead of a directory named `~` made in
/// the current one.
#[test]
fn a_state_dir_flag_with_an_unexpanded_tilde_is_refused() {
    let sb = Sandbox::new();
    for flag in ["--state-dir=~/x", "--state-dir=~root/x"] {
        let out = sb
            .cli(&[flag, "ensure"])
            .current_dir(sb.root())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{flag}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("did not expand ~"), "{flag}: {err}");
    }
    assert!(!sb.root().join("~").exists(), "made a directory named ~");
    assert!(
        !sb.root().join("~root").exists(),
        "made a directory named ~root"
    );
    assert!(sb.pids().is_empty(), "nothing started");
}

/// `--state-dir` wins over SPFS_AUTOSTART_STATE_DIR, so a bad value in
/// the variable is no error when the flag is given; without the flag it is.
#[test]
fn a_state_dir_flag_makes_a_bad_state_dir_variable_no_error() {
    let sb = Sandbox::new();
    let flag = format!("--state-dir={}", sb.root().join("flagged").display());
    let out = sb
        .cli(&[flag.as_str(), "config"])
        .env("SPFS_AUTOSTART_STATE_DIR", "relative/dir")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("flagged"), "{text}");
    let out = sb
        .cli(&["config"])
        .env("SPFS_AUTOSTART_STATE_DIR", "relative/dir")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("SPFS_AUTOSTART_STATE_DIR"),
        "{}",
        stderr(&out)
    );
}

/// Arguments that cannot be parsed exit 2, as clap's do; with `--json` the
/// error is the one JSON object every other error is.
#[test]
fn arguments_that_cannot_be_parsed_exit_2_and_say_so_in_json_when_asked() {
    let sb = Sandbox::new();
    for args in [
        &["--json", "ensure", "--timeout", "abc"][..],
        &["--json", "bogus"][..],
        &["agent", "print", "--json", "--format", "bogus"][..],
        &["--json", "agent"][..],
        &["--json=true", "status"][..],
    ] {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let error: serde_json::Value = serde_json::from_slice(&out.stderr)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", stderr(&out)));
        assert_eq!(error["error"]["kind"], "Usage", "{error}");
        assert!(error["error"]["message"].as_str().is_some(), "{error}");
    }
    // `config` sets nothing: a word after it is refused saying where a key
    // is set (clap said only "unexpected argument").
    for args in [
        &["config", "set", "endpoint", "unix"][..],
        &["--json", "config", "x"],
    ] {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("`config` only prints the effective configuration; to set a key, edit"),
            "{args:?}: {err}"
        );
    }
    let out = sb.run(&["ensure", "--timeout", "abc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: invalid value 'abc'"),
        "{}",
        stderr(&out)
    );
    assert!(sb.pids().is_empty(), "nothing started");
}

#[test]
fn config_and_doctor_name_the_variables_that_set_keys() {
    let sb = Sandbox::new();
    let with_env = |args: &[&str]| {
        let out = sb
            .cli(args)
            .env("SPFS_AUTOSTART_IDLE_TIMEOUT_SECS", "5")
            .env("SPFS_AUTOSTART_STATE_DIR", sb.root().join("from-env"))
            .arg("--state-dir")
            .arg(sb.state_dir())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = with_env(&["config"]);
    assert!(
        text.contains("\n# idle_timeout_secs: from SPFS_AUTOSTART_IDLE_TIMEOUT_SECS\n"),
        "{text}"
    );
    assert!(text.contains("idle_timeout_secs = 5\n"), "{text}");
    // The flag set the state dir last: it is named, not the variable.
    assert!(text.contains("\n# state_dir: from --state-dir\n"), "{text}");
    assert!(!text.contains("state_dir: from SPFS"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&with_env(&["--json", "config"])).unwrap();
    assert_eq!(
        json["env_overrides"],
        serde_json::json!({"idle_timeout_secs": "SPFS_AUTOSTART_IDLE_TIMEOUT_SECS"})
    );
    let doctor = with_env(&["doctor"]);
    assert!(
        doctor.contains("idle_timeout_secs from SPFS_AUTOSTART_IDLE_TIMEOUT_SECS"),
        "{doctor}"
    );
    // Without the variables, nothing is named.
    let plain: serde_json::Value = serde_json::from_str(&sb.ok(&["--json", "config"])).unwrap();
    assert_eq!(plain["env_overrides"], serde_json::json!({}));
}

/// A config path that is no config file: one that never ends (`/dev/zero`)
/// is refused after a bounded read, and one that blocks (a FIFO nobody
/// writes) can still be interrupted, as before any command has started.
#[test]
fn a_config_path_that_never_ends_or_blocks_neither_fills_memory_nor_ignores_a_signal() {
    use std::time::{Duration, Instant};
    let sb = Sandbox::new();
    // The sandbox's `cli` names its own config file: this one runs bare.
    let bare = |args: &[&str]| {
        let mut command = sb.command(spfs_autostart_test_support::cli());
        command.args(args);
        command
    };
    let out = bare(&["--json", "--config", "/dev/zero", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let error = json_error(&out);
    assert_eq!(error["kind"], "InvalidConfig", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("larger than"),
        "{error}"
    );

    let fifo = sb.root().join("fifo.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for signal in [nix::sys::signal::SIGINT, nix::sys::signal::SIGTERM] {
        let mut child = bare(&["--config", fifo.to_str().unwrap(), "status"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.is_some(), "{signal} did not end a read of a FIFO");
    }
}

/// A hint's command repeats the run's flags as `--flag=VALUE`, so a path
/// that begins with `-` stays the flag's value when the hint is followed;
/// and made absolute, as the messages name files, so a hint followed in
/// another directory reads the same file.
#[test]
fn a_hint_keeps_a_config_path_that_begins_with_a_dash() {
    // A start that times out: its hint is the flag that waits longer.
    let sb = Sandbox::new().with("args", vec!["--hang"]);
    std::fs::copy(sb.config_file(), sb.root().join("-x.toml")).unwrap();
    let mut command = sb.command(spfs_autostart_test_support::cli());
    command
        .current_dir(sb.root())
        .args(["--config=-x.toml", "ensure", "--timeout", "1"]);
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "hint: `spfs-autostart --config={}/-x.toml ensure --timeout SECS`",
            sb.root().display()
        )),
        "{err}"
    );
}

/// With no config file, `config` says where the per-user one goes, and a
/// key's hint names that file; a key set by a variable names the variable.
#[test]
fn without_a_config_file_the_per_user_path_is_named() {
    let sb = Sandbox::new();
    let xdg = sb.root().join("xdg");
    let out = sb
        .command(cli_bin())
        .arg("config")
        .env("XDG_CONFIG_HOME", &xdg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let per_user = xdg.join("spfs-autostart").join("config.toml");
    assert!(
        text.starts_with(&format!(
            "# built-in defaults: no config file (the per-user one goes at {})",
            per_user.display()
        )),
        "{text}"
    );
    // A log dir others may write, set by the variable: the variable is
    // what to change, not the file.
    let shared = sb.root().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = sb
        .cli(&["--json", "ensure"])
        .env("SPFS_AUTOSTART_LOG_DIR", &shared)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        json_error(&out)["hints"][0],
        "log_dir comes from SPFS_AUTOSTART_LOG_DIR in this environment: change or unset it"
    );
}

/// `-v` says what each look found, and how a stop went about it.
#[test]
fn verbose_says_what_the_look_found_and_how_the_stop_went() {
    let sb = Sandbox::new();
    let out = sb.run(&["-v", "status"]);
    assert!(stderr(&out).contains("no service"), "{}", stderr(&out));
    sb.ok(&["ensure"]);
    let out = sb.run(&["-v", "stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("serving, pid "), "{log}");
    assert!(log.contains("shut down over gRPC"), "{log}");
}

/// A per-user config file its user cannot read (left owned by root by a
/// `sudo` editor): the error says to make it readable, not to fix a path
/// or a variable the user never gave.
#[test]
fn an_unreadable_per_user_config_file_is_said_to_need_its_permissions_fixed() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let uid = second_user();
    let sb = Sandbox::new();
    let home = sb.root().join("their-home");
    let dir = home.join(".config/spfs-autostart");
    std::fs::create_dir_all(&dir).unwrap();
    for d in [
        sb.root().to_path_buf(),
        home.clone(),
        home.join(".config"),
        dir.clone(),
    ] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let file = dir.join("config.toml");
    std::fs::write(&file, "program = \"x\"\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new(spfs_autostart_test_support::cli())
        .arg("config")
        .env_clear()
        .env("HOME", &home)
        .uid(uid)
        .gid(uid)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("make it readable by you"), "{err}");
    assert!(!err.contains("SPFS_AUTOSTART_CONFIG"), "{err}");
}

/// `sudo -E` or `su` keeps another user's HOME: their config file would
/// have us run their program as us. One another user owns, or any user
/// may change, is refused, naming the owner or the mode and the fix, and
/// nothing runs (`doctor` would run the program for its version).
#[test]
fn a_config_file_another_user_owns_or_anyone_may_change_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let uid = second_user();
    let sb = Sandbox::new();
    let ran = sb.root().join("ran");
    let program = sb.root().join("theirs.sh");
    std::fs::write(&program, format!("#!/bin/sh\ntouch {}\n", path_str(&ran))).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = sb.root().join("their-config.toml");
    std::fs::write(&file, format!("program = \"{}\"\n", path_str(&program))).unwrap();
    std::os::unix::fs::chown(&file, Some(uid), None).unwrap();
    let theirs = std::process::Command::new(spfs_autostart_test_support::cli())
        .args(["doctor"])
        .env_clear()
        .env("HOME", sb.home())
        .env("SPFS_AUTOSTART_CONFIG", &file)
        .output()
        .unwrap();
    assert_eq!(theirs.status.code(), Some(1));
    let err = String::from_utf8_lossy(&theirs.stdout).to_string() + &stderr(&theirs);
    assert!(err.contains(&format!("(uid {uid})")), "{err}");
    assert!(err.contains("use a config file of your own"), "{err}");

    std::os::unix::fs::chown(&file, Some(0), None).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let open = std::process::Command::new(spfs_autostart_test_support::cli())
        .args(["ensure"])
        .env_clear()
        .env("HOME", sb.home())
        .env("SPFS_AUTOSTART_CONFIG", &file)
        .output()
        .unwrap();
    assert_eq!(open.status.code(), Some(1));
    assert!(stderr(&open).contains("mode 666"), "{}", stderr(&open));
    assert!(stderr(&open).contains("chmod o-w"), "{}", stderr(&open));
    assert!(!ran.exists(), "their program never ran");
}
