//! `ensure`, `status`, `stop` against the real binaries: exactly one
//! service, every failure explained, nothing left running.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn cold_ensure_starts_one_service_and_second_ensure_takes_the_fast_path() {
    let sb = Sandbox::new();
    assert_eq!(sb.status()["state"], "stopped");
    let first = sb.ensure();
    assert_eq!(first["state"], "running");
    assert_eq!(first["managed"], true);
    let pid = pid_of(&first);
    assert_eq!(sb.pids(), vec![pid]);
    // ensure returns only once the service answers: status agrees at once.
    assert_eq!(sb.status()["state"], "running");
    let second = sb.ensure();
    assert_eq!(pid_of(&second), pid);
    assert_eq!(sb.spawn_count(), 1, "the second ensure must not spawn");
    assert_eq!(sb.ok(&["stop"]).trim(), "stopped");
    assert!(wait_for(Duration::from_secs(5), || !alive(pid)));
    assert_eq!(sb.status()["state"], "stopped");
}

/// A fresh `ensure` of a kit service that serves asks it over `info.sock`
/// (one round trip, no HTTP/2), and prints what the full look prints.
#[test]
fn ensure_of_a_serving_kit_service_takes_the_quick_look() {
    let sb = Sandbox::new();
    let first = sb.ensure();
    let out = sb.run(&["-v", "--json", "ensure"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    let pid = pid_of(&first);
    assert!(
        log.contains(&format!("pid {pid} serves as configured (the quick look)")),
        "{log}"
    );
    // The same status, but for the clocks that ran meanwhile.
    let mut quick: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut full = first.clone();
    for status in [&mut quick, &mut full] {
        let fields = status.as_object_mut().unwrap();
        for clock in ["uptime_secs", "idle_exit_in_secs"] {
            fields.remove(clock);
        }
    }
    assert_eq!(quick, full);
    // Gone with the service: the next start is the full one.
    sb.ok(&["stop"]);
    assert!(!sb.state_dir().join("info.sock").exists());
    let out = sb.run(&["-v", "ensure"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("no quick look"), "{}", stderr(&out));
    sb.ok(&["stop"]);
}

/// Once `ensure` returns, the service's log already ends with the line
/// that says it serves: a `logs` right after shows it.
#[test]
fn the_log_says_the_service_serves_once_ensure_returns() {
    let sb = Sandbox::new();
    for round in 0..5 {
        let pid = pid_of(&sb.ensure());
        let log = sb.log();
        assert!(
            log.lines().last().is_some_and(|l| l.contains("serving on")),
            "round {round}: {log}"
        );
        sb.ok(&["stop"]);
        assert!(wait_for(Duration::from_secs(5), || !alive(pid)));
    }
}

// `spfs-autostart ensure` with no other argument, as a shell runs it, is
// read without clap: the config comes from SPFS_AUTOSTART_CONFIG, as it
// does through clap.
#[test]
fn a_bare_ensure_as_a_shell_runs_it_starts_the_service_once_and_prints_it() {
    let sb = Sandbox::new();
    let bare_ensure = || {
        let out = sb
            .command(cli_bin())
            .arg("ensure")
            .env("SPFS_AUTOSTART_CONFIG", sb.config_file())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let first = bare_ensure();
    let pids = sb.pids();
    assert_eq!(pids.len(), 1, "one service: {pids:?}");
    assert!(first.starts_with("state      running\n"), "{first}");
    assert!(
        first.contains(&format!("pid        {}\n", pids[0])),
        "{first}"
    );
    let second = bare_ensure();
    assert!(
        second.contains(&format!("pid        {}\n", pids[0])),
        "{second}"
    );
    assert_eq!(sb.spawn_count(), 1, "the second ensure must not spawn");
    assert_eq!(sb.ok(&["stop"]).trim(), "stopped");
}

#[test]
fn thirty_two_concurrent_ensures_spawn_exactly_one_service() {
    for round in 0..5 {
        let sb = Sandbox::new();
        let children: Vec<_> = (0..32)
            .map(|_| {
                sb.cli(&["--json", "ensure"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut pids = Vec::new();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
            let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            pids.push(pid_of(&status));
        }
        pids.dedup();
        assert_eq!(
            pids.len(),
            1,
            "round {round}: every ensure reports the same service: {pids:?}"
        );
        assert_eq!(
            sb.pids(),
            pids,
            "round {round}: exactly one service process"
        );
        assert_eq!(sb.spawn_count(), 1, "round {round}: spawned once");
        sb.ok(&["stop"]);
    }
}

/// A service that fails to start, met by several shells at once, is
/// started once: the calls that waited for that start answer with its
/// failure (its message and log) instead of each starting it again in turn.
/// A call made after the failure tries again.
#[test]
fn concurrent_ensures_share_one_failed_start() {
    let mut sb = Sandbox::new();
    use_script(
        &mut sb,
        "crashes.sh",
        "echo 'fatal: cannot mount' >&2\nsleep 1\nexit 4\n",
    );
    let started = Instant::now();
    let children: Vec<_> = (0..4)
        .map(|_| {
            sb.cli(&["ensure"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("exit"), "the start's failure: {err}");
        assert!(err.contains("fatal: cannot mount"), "its log: {err}");
    }
    assert_eq!(sb.spawn_count(), 1, "started once: {}", sb.log());
    // One start's second, not one after another; slack for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    assert!(sb.pids().is_empty());
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !stderr(&out).contains("another process made"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sb.spawn_count(), 2, "a later call tries again");
}

#[test]
fn kill_9_is_seen_as_stopped_and_the_next_ensure_starts_a_fresh_service() {
    let sb = Sandbox::new();
    let pid = pid_of(&sb.ensure());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_for(Duration::from_secs(5), || !alive(pid)));
    assert!(
        sb.state_dir().join("service.sock").exists(),
        "a stale socket is left behind"
    );
    let status = sb.status();
    assert_eq!(status["state"], "stopped", "{status}");
    let fresh = sb.ensure();
    assert_ne!(pid_of(&fresh), pid);
    assert_eq!(sb.pids(), vec![pid_of(&fresh)]);
    sb.ok(&["stop"]);
}

#[test]
fn plain_service_over_tcp_is_started_detected_and_stopped_through_vfs_shutdown() {
    // A plain service whose Shutdown ends it (spk's winfsp service does;
    // spfs-fuse-macos's only unmounts: tests/upstream.rs).
    let port = free_port();
    let sb = plain_service(port, &["--shutdown-exits"]);
    let status = sb.ensure();
    assert_eq!(status["state"], "running");
    assert_eq!(
        status["managed"], false,
        "a plain service has no Control service"
    );
    assert!(
        status["warnings"][0]
            .as_str()
            .unwrap()
            .contains("every user")
    );
    let pids = sb.pids();
    assert_eq!(pids.len(), 1);
    assert_eq!(sb.status()["state"], "running");
    assert_eq!(
        sb.ok(&["stop"]).trim(),
        "stopped",
        "stopped by the graceful RPC"
    );
    assert!(sb.log().contains("Shutdown requested"), "{}", sb.log());
    assert!(wait_for(Duration::from_secs(5), || !alive(pids[0])));
    assert_eq!(sb.status()["state"], "stopped");
}

#[test]
fn missing_program_is_binary_not_found_listing_where_it_looked() {
    let sb = Sandbox::new().with("program", "spfs-no-such-service");
    let started = Instant::now();
    // The executable's directory is on PATH too, twice, as happens.
    let here = common::cli_bin().parent().unwrap().to_path_buf();
    let path = std::env::join_paths([here.clone(), "/usr/bin".into(), here.clone()]).unwrap();
    let out = sb.cli(&["ensure"]).env("PATH", path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("\"spfs-no-such-service\" was not found"),
        "{err}"
    );
    assert!(err.contains("looked in"), "{err}");
    let listed = |dir: &std::path::Path| {
        let line = format!("  {}", dir.join("spfs-no-such-service").display());
        err.lines().filter(|l| *l == line).count()
    };
    assert_eq!(listed(&here), 1, "next to the executable, once: {err}");
    assert_eq!(listed("/usr/bin".as_ref()), 1, "on PATH: {err}");
    assert!(started.elapsed() < Duration::from_secs(5), "must fail fast");
    let json = sb.run(&["--json", "ensure"]);
    let error: serde_json::Value = serde_json::from_slice(&json.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "BinaryNotFound");
    assert!(
        !sb.state_dir().exists(),
        "nothing made for a start that cannot be"
    );
}

#[test]
fn service_exiting_at_startup_reports_its_status_and_message_at_once() {
    let sb = Sandbox::new().with("args", vec!["--fail-at-start", "the disk is on fire"]);
    let started = Instant::now();
    let out = sb.run(&["--json", "ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "ExitedDuringStartup");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exited with status 3"),
        "{error}"
    );
    let tail = error["error"]["log_tail"].to_string();
    assert!(tail.contains("the disk is on fire"), "{tail}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "long before the 20 s ready timeout"
    );
    let text = stderr(&sb.run(&["ensure"]));
    assert!(
        text.contains("last lines of the log") && text.contains("the disk is on fire"),
        "{text}"
    );
    assert!(sb.pids().is_empty());
}

/// A program that exits without a word is not said to have explained
/// itself in its log.
#[test]
fn a_service_that_exits_saying_nothing_is_not_said_to_explain_itself() {
    let sb = Sandbox::new()
        .with("program", "/bin/true")
        .with("args", Vec::<&str>::new());
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(text.contains("exited with status 0"), "{text}");
    assert!(text.contains("wrote nothing to its log"), "{text}");
    assert!(!text.contains("its log says why"), "{text}");
}

#[test]
fn hanging_service_is_killed_at_the_ready_deadline() {
    let sb = Sandbox::new()
        .with("args", vec!["--hang"])
        .with("ready_timeout_secs", 2);
    let started = Instant::now();
    let out = sb.run(&["--json", "ensure"]);
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "ReadyTimeout", "{error}");
    assert!(
        error["error"]["log_tail"]
            .to_string()
            .contains("never becoming ready"),
        "{error}"
    );
    assert!(
        elapsed >= Duration::from_secs(2),
        "waited for the deadline: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    // The log says the run ended by our hand, and why.
    let log = sb.log();
    assert!(
        log.lines()
            .any(|l| l.starts_with("--- spfs-autostart: ending pid ")
                && l.ends_with(": not ready within 2.0s ---")),
        "{log}"
    );
    assert!(
        wait_for(Duration::from_secs(5), || sb.pids().is_empty()),
        "no process may be left behind: {:?}",
        sb.pids()
    );
    assert_eq!(sb.status()["state"], "stopped");
}

#[test]
fn logs_tail_reads_only_the_end_of_a_huge_log_and_follow_sees_new_lines() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.log_dir()).unwrap();
    let log = sb.log_dir().join("service.log");
    {
        // 300 MiB of hole, then the lines that matter: tail must not read it all.
        let file = std::fs::File::create(&log).unwrap();
        file.set_len(300 * 1024 * 1024).unwrap();
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(b"\n").unwrap();
        for i in 0..1000 {
            writeln!(file, "line {i}").unwrap();
        }
    }
    let started = Instant::now();
    let out = sb.ok(&["logs", "-n", "3"]);
    assert_eq!(out, "line 997\nline 998\nline 999\n");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let tail = spfs_autostart::logs::tail(&log, 3).unwrap();
    assert!(
        tail.bytes_read <= 128 * 1024,
        "read {} bytes",
        tail.bytes_read
    );

    let mut follower = sb
        .cli(&["logs", "-f", "-n", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = follower.stdout.take().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(file, "appended after follow started").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if seen.contains("appended after follow started") {
                let _ = tx.send(seen.clone());
                break;
            }
        }
    });
    let seen = rx.recv_timeout(Duration::from_secs(10));
    follower.kill().unwrap();
    follower.wait().unwrap();
    let seen = seen.expect("follow printed the appended line");
    assert!(seen.starts_with("line 999\n"), "backlog first: {seen}");
}

#[test]
fn bad_config_is_one_clear_error_and_disturbs_nothing_running() {
    let mut sb = Sandbox::new();
    let pid = pid_of(&sb.ensure());
    // Each case is the good config with one mistake.
    let cases: [(Mistake, &str); 5] = [
        (
            |sb| {
                sb.set("programm", "x");
            },
            "unknown field `programm`",
        ),
        // A syntax error, which no TOML value can hold: the good file's
        // text with an unterminated array after it.
        (
            |sb| {
                let good = std::fs::read_to_string(sb.config_file()).unwrap();
                std::fs::write(sb.config_file(), format!("{good}args = [\n")).unwrap();
            },
            "line",
        ),
        (
            |sb| {
                sb.set("program", "rel/x");
            },
            "relative path",
        ),
        (
            |sb| {
                sb.set("endpoint", "carrier-pigeon");
            },
            "not understood",
        ),
        (
            |sb| {
                sb.set("stop_timeout_secs", 0);
            },
            "at least 1",
        ),
    ];
    for (mistake, expect) in cases {
        mistake(sb.reset_config());
        let text = std::fs::read_to_string(sb.config_file()).unwrap();
        let out = sb.run(&["ensure"]);
        assert_eq!(out.status.code(), Some(1), "{text}");
        let err = stderr(&out);
        assert!(err.contains(expect), "expected {expect:?} in: {err}");
        assert!(
            err.contains(&path_str(&sb.config_file())),
            "names the file: {err}"
        );
        assert_eq!(err.matches("error:").count(), 1, "one clear error: {err}");
    }
    sb.reset_config();
    assert_eq!(
        pid_of(&sb.status()),
        pid,
        "the running service is untouched"
    );
    sb.ok(&["stop"]);
}

#[test]
fn unusable_program_state_dir_and_log_dir_are_clear_errors() {
    let mut sb = Sandbox::new();
    let not_exec = sb.root().join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    sb.set("program", path_str(&not_exec));
    let err = stderr(&sb.run(&["ensure"]));
    assert!(
        err.contains("is not executable") && err.contains("chmod +x"),
        "{err}"
    );

    let file = sb.root().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = sb.run(&["--state-dir", &path_str(&file), "ensure"]);
    assert!(
        stderr(&out).contains("is not a directory"),
        "{}",
        stderr(&out)
    );

    let bad_logs = format!("{}/logs", path_str(&file));
    sb.reset_config().set("log_dir", bad_logs);
    let err = stderr(&sb.run(&["ensure"]));
    assert!(
        err.contains("log dir") && err.contains("SPFS_AUTOSTART_LOG_DIR"),
        "{err}"
    );
    assert!(sb.pids().is_empty());
}

/// The text status says "never" for idle exit only when the service's
/// idle timeout is 0, and gives the deadline otherwise; so does `watch`.
#[test]
fn the_idle_exit_line_says_never_only_for_an_idle_timeout_of_zero() {
    for (timeout, expected, in_watch) in [
        (0, "never (idle_timeout_secs = 0)", " idle_exit=never"),
        (600, "in 10m", " idle_exit_in=6"),
    ] {
        let sb = Sandbox::new().with("idle_timeout_secs", timeout);
        let text = sb.ok(&["ensure"]);
        let line = text
            .lines()
            .find(|l| l.starts_with("idle exit"))
            .unwrap_or_else(|| panic!("no idle exit line: {text}"));
        assert!(line.contains(expected), "timeout {timeout}: {text}");
        // `watch`'s first line; then it is ended whatever it printed, so a
        // failure neither hangs the test nor leaves it running.
        let mut watch = background(&sb, &["watch"]);
        let mut first = String::new();
        let read = std::io::BufRead::read_line(
            &mut std::io::BufReader::new(watch.stdout.take().unwrap()),
            &mut first,
        );
        let _ = watch.kill();
        let _ = watch.wait();
        read.unwrap();
        assert!(
            first.starts_with("running pid=") && first.contains(in_watch),
            "timeout {timeout}: {first}"
        );
        let status = sb.status();
        assert_eq!(status["idle_timeout_secs"], timeout, "{status}");
        sb.ok(&["stop"]);
    }
}

/// When the system refuses to run the program, the message says what it
/// leaves out: which settings make the command line too long, and that a
/// script whose interpreter is missing exists all the same.
#[test]
fn a_program_the_system_cannot_run_is_explained() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let script = sb.root().join("needs-an-interpreter");
    std::fs::write(&script, "#!/nonexistent/interpreter\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = sb
        .cli(&["ensure"])
        .env("SPFS_AUTOSTART_PROGRAM", &script)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("interpreter on its #! line"), "{err}");

    // One argument longer than Linux takes (128 KiB).
    let sb = Sandbox::new().with("args", vec!["x".repeat(200 * 1024)]);
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("shorten args"), "{err}");
    assert!(sb.pids().is_empty());
}

/// A directory where the service log belongs: one error, with its fix said
/// once, and nothing started.
#[test]
fn a_directory_at_the_log_path_is_one_clear_error() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.log_file()).unwrap();
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&sb.log_file().display().to_string()), "{err}");
    assert_eq!(err.matches("remove it").count(), 1, "{err}");
    assert!(sb.pids().is_empty());
}

/// A watch of a kit service sends a status when something changes, not
/// again because the service's Watch stream said less than its first look
/// did: a warning the look gives (another version than expected_version)
/// is on the stream's statuses too.
#[test]
fn a_watch_of_a_kit_service_repeats_nothing_a_look_said() {
    let mut sb = Sandbox::new();
    sb.ensure();
    sb.set("expected_version", "9.9.9")
        .set("on_version_mismatch", "error");
    let (mut watch, rx) = lines_of(background(&sb, &["--json", "watch"]));
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a first status");
    assert!(first.contains("9.9.9"), "the version's warning: {first}");
    // Nothing happens: nothing more is sent.
    let more: Vec<String> =
        std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(3)).ok()).collect();
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(more.is_empty(), "sent again: {more:?}");
}
