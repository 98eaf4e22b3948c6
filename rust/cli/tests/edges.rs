//! The edges of configuration and environment: odd inputs, each against
//! the real binaries. Nothing already running is disturbed by a bad input,
//! and nothing is written outside the sandbox's state and log dirs.

mod common;

use std::process::Command;

use common::*;

// `log_keep = 4294967295` made the spawner rename ~4e9 times.
#[test]
fn unbounded_log_rotation_values_are_refused_before_anything_starts() {
    for (key, value) in [("log_keep", 4_294_967_295_u32), ("log_max_bytes", 0)] {
        let extra = format!("{key} = {value}");
        let sb = Sandbox::new().with(key, value);
        std::fs::create_dir_all(sb.log_dir()).unwrap();
        std::fs::write(sb.log_dir().join("service.log"), "an existing log\n").unwrap();
        let out = sb.run(&["ensure"]);
        assert_eq!(out.status.code(), Some(1), "{extra}");
        let err = stderr(&out);
        assert!(err.contains(key), "{extra}: {err}");
        assert!(
            err.contains("line") && err.contains("column"),
            "{extra}: {err}"
        );
        assert!(sb.pids().is_empty(), "{extra}: nothing started");
        assert!(!sb.state_dir().exists(), "{extra}: no state dir created");
        assert!(
            !sb.log_dir().join("service.log.1").exists(),
            "{extra}: no rotation"
        );
    }
}

// A relative SPFS_AUTOSTART_CONFIG made the service exit 2 (it
// re-read the file with cwd `/`).
#[test]
fn relative_config_path_in_the_environment_starts_the_service() {
    let sb = Sandbox::new();
    let mut command = Command::new(cli_bin());
    command
        .args(["--json", "ensure"])
        .current_dir(sb.root())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", sb.home())
        .env("SPFS_AUTOSTART_CONFIG", "config.toml");
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["state"], "running");
    sb.ok(&["stop"]);
}

// `env -i ... ensure` with HOME unset made the service exit 2.
#[test]
fn ensure_works_with_an_empty_environment() {
    let sb = Sandbox::new();
    let out = Command::new(cli_bin())
        .arg("--config")
        .arg(sb.config_file())
        .args(["--json", "ensure"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["state"], "running");
    sb.ok(&["stop"]);
}

// A broken per-user config file reached the service although the
// client was given another one.
#[test]
fn broken_per_user_config_does_not_reach_the_service() {
    let sb = Sandbox::new();
    let user_config = sb.home().join(".config/spfs-autostart/config.toml");
    std::fs::create_dir_all(user_config.parent().unwrap()).unwrap();
    std::fs::write(&user_config, "this is not = = toml\n").unwrap();
    // `cli` passes --config and sets HOME to the sandbox's, where the
    // broken per-user file now is.
    let status = sb.ensure();
    assert_eq!(status["state"], "running");
    // The client itself still reads the per-user file when given none.
    let out = Command::new(cli_bin())
        .arg("status")
        .env_clear()
        .env("HOME", sb.home())
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("invalid config file"),
        "{}",
        stderr(&out)
    );
    sb.ok(&["stop"]);
}

// `endpoint = "tcp://127.0.0.1:0"` was accepted and timed out.
#[test]
fn port_zero_endpoint_is_refused_naming_the_key() {
    let sb = Sandbox::new().with("endpoint", "tcp://127.0.0.1:0");
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("endpoint") && err.contains("port 0"), "{err}");
    assert!(err.contains("line 1") || err.contains("line"), "{err}");
    assert!(sb.pids().is_empty());
    assert!(!sb.state_dir().exists());
    let sb = Sandbox::new();
    let out = sb
        .cli(&["ensure"])
        .env("SPFS_AUTOSTART_ENDPOINT", "tcp://127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("SPFS_AUTOSTART_ENDPOINT"),
        "{}",
        stderr(&out)
    );
    assert!(!sb.state_dir().exists());
}

// `[env]` keys "A=B" and "" reached the child as `A=B=c` and `=x`.
#[test]
fn env_keys_that_cannot_be_environment_names_are_refused() {
    for key in ["A=B", ""] {
        let mut sb = Sandbox::new();
        sb.set_env(key, "c");
        let out = sb.run(&["ensure"]);
        assert_eq!(out.status.code(), Some(1), "{key:?}");
        let err = stderr(&out);
        assert!(
            err.contains("env") && err.contains("line"),
            "{key:?}: {err}"
        );
        assert!(err.contains(&format!("{key:?}")), "{key:?}: {err}");
        assert!(sb.pids().is_empty(), "{key:?}");
    }
}

// The state dir tree was created before the socket path's length
// was checked, and explicit unix:// endpoints were checked only by the
// service. TCP endpoints use no socket and pass.
#[test]
fn long_socket_paths_are_refused_first_and_tcp_is_not_checked() {
    let sb = Sandbox::new();
    let long = sb.root().join("d".repeat(120)).join("state");
    let out = sb
        .cli(&["ensure"])
        .arg("--state-dir")
        .arg(&long)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("state_dir") && err.contains("shorter"),
        "{err}"
    );
    // The remedy, as this CLI's flag.
    assert!(err.contains("hint: `--state-dir DIR`"), "{err}");
    assert!(
        !long.exists() && !long.parent().unwrap().exists(),
        "created: {err}"
    );

    let socket = format!("unix://{}/{}.sock", sb.root().display(), "s".repeat(120));
    let sb2 = Sandbox::new().with("endpoint", socket);
    let out = sb2.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("endpoint") && err.contains("line"), "{err}");
    assert!(!sb2.state_dir().exists() && sb2.pids().is_empty(), "{err}");

    // A TCP endpoint with the same long state dir: no socket, no refusal.
    let sb3 = Sandbox::new().with("endpoint", tcp(free_port()));
    let out = sb3
        .cli(&["--json", "config"])
        .arg("--state-dir")
        .arg(&long)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sb3
        .cli(&["status"])
        .arg("--state-dir")
        .arg(&long)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

// Done-when: nothing already running is disturbed by a bad input.
#[test]
fn bad_config_leaves_a_running_service_and_its_log_alone() {
    let mut sb = Sandbox::new();
    let pid = pid_of(&sb.ensure());
    let log_before = sb.log();
    let bad_configs: [(&str, Mistake); 3] = [
        ("log_keep = 4294967295", |sb| {
            sb.set("log_keep", 4_294_967_295_u32);
        }),
        ("endpoint = \"tcp://127.0.0.1:0\"", |sb| {
            sb.set("endpoint", "tcp://127.0.0.1:0");
        }),
        ("[env]\n\"A=B\" = \"c\"", |sb| {
            sb.set_env("A=B", "c");
        }),
    ];
    for (bad, write) in bad_configs {
        write(sb.reset_config());
        let out = sb.run(&["ensure"]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let out = sb.run(&["stop"]);
        assert_eq!(out.status.code(), Some(1), "{bad}: stop must refuse too");
        assert!(alive(pid), "{bad}: the running service was disturbed");
        assert_eq!(sb.log(), log_before, "{bad}: the log was touched");
    }
    sb.reset_config();
    assert_eq!(pid_of(&sb.ensure()), pid);
    sb.ok(&["stop"]);
}

/// `OsStr` of raw bytes: a path that is not UTF-8.
fn not_utf8(prefix: &std::path::Path, name: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStrExt;
    prefix
        .join(std::ffi::OsStr::from_bytes(name))
        .into_os_string()
}

// A `--state-dir` that is not UTF-8 was accepted, and the service, which
// reads it from its environment as text, took the user's default state dir
// instead (and fought over its lock with the service there).
#[test]
fn a_state_dir_that_is_not_utf8_is_refused_before_anything_starts() {
    let sb = Sandbox::new();
    let dir = not_utf8(sb.root(), b"state-\xff");
    let out = sb
        .cli(&["ensure"])
        .arg("--state-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("state_dir") && err.contains("not UTF-8"),
        "{err}"
    );
    assert!(!std::path::Path::new(&dir).exists(), "nothing created");
    assert!(sb.pids().is_empty(), "nothing started");
}

// The kit read a state dir or endpoint that is not UTF-8 as unset, and
// served from the default state dir.
#[test]
fn the_kit_refuses_a_state_dir_variable_that_is_not_utf8() {
    let sb = Sandbox::new();
    let runtime_dir = sb.root().join("runtime");
    std::fs::create_dir_all(&runtime_dir).unwrap();
    let out = sb
        .command(reference_service())
        .env("SPFS_AUTOSTART_STATE_DIR", not_utf8(sb.root(), b"s-\xff"))
        // Where the default state dir would be.
        .env("XDG_RUNTIME_DIR", &runtime_dir)
        .env("TMPDIR", &runtime_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("SPFS_AUTOSTART_STATE_DIR") && err.contains("not UTF-8"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&runtime_dir).unwrap().count(),
        0,
        "nothing created in the default state dir"
    );
}

// A HOME that is not UTF-8, or relative, was replaced by the home in the
// password database (writing the log there), or made a log dir relative to
// the current directory.
#[test]
fn an_unusable_home_is_not_replaced_by_another_directory() {
    let mut sb = Sandbox::new();
    // The log dir comes from HOME.
    sb.unset("log_dir");
    for home in [not_utf8(sb.root(), b"home-\xff"), "relative-home".into()] {
        let out = sb
            .cli(&["config"])
            .env_remove("XDG_STATE_HOME")
            .env("HOME", &home)
            .current_dir(sb.root())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{home:?}");
        let err = stderr(&out);
        assert!(
            err.contains("HOME") && err.contains("SPFS_AUTOSTART_LOG_DIR"),
            "{home:?}: {err}"
        );
    }
}

/// What macOS's temp cleaner (`dirhelper`, daily) does to the user's temp
/// dir, where the default state dir is: every regular file it can lock
/// (`flock`, exclusive, not waiting) is removed. It also needs the file
/// unread for 3 days, which every file here is taken to be.
fn clean_like_dirhelper(dir: &std::path::Path) -> Vec<String> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !std::fs::symlink_metadata(&path).unwrap().is_file() {
            continue;
        }
        let file = std::fs::File::open(&path).unwrap();
        if file.try_lock().is_ok() {
            std::fs::remove_file(&path).unwrap();
            removed.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    removed.sort();
    removed
}

/// A service that has run for days loses its record and `spawn.lock` to
/// macOS's temp cleaner (nothing reads them on `ensure`'s path); its
/// `instance.lock`, held, and its socket stay. The service is still found
/// by `ensure` (no second one starts), named by `status`, and ended by
/// `stop`: the lock is the truth, the record only advice. Both kinds: a kit
/// service on its Unix socket, and a plain one on TCP, as spfs-fuse-macos.
#[test]
fn a_running_service_survives_the_macos_temp_cleaner() {
    for (plain, sb) in [
        (false, Sandbox::new()),
        (true, plain_service(free_port(), &[])),
    ] {
        let pid = pid_of(&sb.ensure());
        assert_eq!(
            clean_like_dirhelper(&sb.state_dir()),
            ["service.json", "spawn.lock"],
            "plain {plain}: what the cleaner takes"
        );
        assert_eq!(pid_of(&sb.ensure()), pid, "plain {plain}: the same service");
        assert_eq!(sb.pids(), [pid], "plain {plain}: no second service");
        let status = sb.status();
        assert_eq!(status["state"], "running", "plain {plain}: {status}");
        assert_eq!(pid_of(&status), pid, "plain {plain}: {status}");
        assert_eq!(sb.ok(&["stop"]).trim(), "stopped", "plain {plain}");
        assert!(
            wait_for(std::time::Duration::from_secs(10), || !alive(pid)),
            "plain {plain}: still running"
        );
        assert_eq!(sb.status()["state"], "stopped", "plain {plain}");
    }
}
