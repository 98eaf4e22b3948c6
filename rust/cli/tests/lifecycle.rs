//! Lifecycle soundness against the real binaries: `ensure` and
//! `stop` act only on the instance they observed, under every race. One
//! test per reproduced failure; each race is repeated a few times.

mod common;

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// `stop` while one `ensure` starts the service and another waits.
/// Whatever order they end in, `stop` ends only the service it observed,
/// gracefully, and every service an `ensure` reported is alive afterwards
/// unless it is that one.
#[test]
fn stop_during_a_start_ends_only_the_service_it_observed() {
    for round in 0..3 {
        let sb = Sandbox::new()
            .with("args", vec!["--start-delay-ms", "1500"])
            .with("stop_timeout_secs", 3);
        let a = background(&sb, &["--json", "ensure"]);
        std::thread::sleep(Duration::from_millis(300));
        let b = background(&sb, &["--json", "ensure"]);
        std::thread::sleep(Duration::from_millis(100));
        let c = background(&sb, &["--json", "stop"]);
        let (a, b, c) = (
            a.wait_with_output().unwrap(),
            b.wait_with_output().unwrap(),
            c.wait_with_output().unwrap(),
        );
        assert!(c.status.success(), "round {round}: stop: {}", stderr(&c));
        let stop = json_of(&c);
        assert_eq!(stop["outcome"], "stopped", "round {round}: {stop}");
        assert_eq!(stop["how"], "graceful", "round {round}: {stop}");
        let stopped = stop["pid"].as_u64().map(|p| p as u32);
        for (name, out) in [("A", &a), ("B", &b)] {
            assert!(
                out.status.success(),
                "round {round}: ensure {name}: {}",
                stderr(out)
            );
            let pid = pid_of(&json_of(out));
            assert!(
                alive(pid) || Some(pid) == stopped,
                "round {round}: ensure {name} reported pid {pid}, which is dead, \
                 but stop ended {stopped:?}\n{}",
                sb.log()
            );
        }
        assert!(!sb.log().contains("SIGKILL"), "round {round}: {}", sb.log());
    }
}

/// Six `ensure`s meet a service of the wrong version: exactly one
/// restart, and all six get the new service.
#[test]
fn version_restart_in_a_herd_happens_once_and_every_ensure_succeeds() {
    for round in 0..3 {
        let mut sb = Sandbox::new().with("args", vec!["--report-version", "1.0.0"]);
        let old = pid_of(&sb.ensure());
        sb.reset_config()
            .set("args", vec!["--report-version", "2.0.0"])
            .set("expected_version", "2.0.0");
        let herd: Vec<Child> = (0..6)
            .map(|_| background(&sb, &["--json", "ensure"]))
            .collect();
        let mut pids = Vec::new();
        for child in herd {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
            let status = json_of(&out);
            assert_eq!(status["version"], "2.0.0", "round {round}: {status}");
            pids.push(pid_of(&status));
        }
        pids.dedup();
        assert_eq!(pids.len(), 1, "round {round}: one new service: {pids:?}");
        assert_ne!(pids[0], old);
        assert!(!alive(old), "round {round}: the old one is gone");
        assert_eq!(sb.spawn_count(), 2, "round {round}: exactly one restart");
        assert_eq!(sb.pids(), pids, "round {round}");
    }
}

/// A readiness line that arrives in two writes is read whole.
#[test]
fn readiness_line_written_in_parts_is_understood() {
    let sb = Sandbox::new().with("args", vec!["--ready-in-parts-ms", "300"]);
    for round in 0..3 {
        let status = sb.ensure();
        assert_eq!(status["state"], "running", "round {round}: {status}");
        let pid = pid_of(&status);
        assert!(alive(pid), "round {round}");
        assert_eq!(sb.ok(&["stop"]).trim(), "stopped");
        assert!(wait_for(Duration::from_secs(10), || !alive(pid)));
    }
    assert!(!sb.log().contains("unexpected readiness"), "{}", sb.log());
}

/// `ensure --timeout 2` while another process starts a service that
/// hangs returns in time, saying another process is starting it.
#[test]
fn ensure_timeout_is_honoured_while_another_process_starts_the_service() {
    for round in 0..2 {
        let sb = Sandbox::new()
            .with("args", vec!["--hang"])
            .with("ready_timeout_secs", 12);
        let spawner = background(&sb, &["ensure"]);
        assert!(
            wait_for(Duration::from_secs(10), || !sb.pids().is_empty()),
            "round {round}: the spawner started its child"
        );
        let started = Instant::now();
        let out = sb.run(&["ensure", "--timeout", "2"]);
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(1), "round {round}");
        // Well before the other start's 12 s ready timeout, generously
        // past its own 2 s (a debug CLI on a loaded machine).
        assert!(
            took < Duration::from_secs(8),
            "round {round}: took {took:?}"
        );
        assert!(
            stderr(&out).contains("another process is starting"),
            "round {round}: {}",
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains(&as_run(&sb, "run `spfs-autostart stop`")),
            "round {round}: never tells the user to stop a legitimate start: {}",
            stderr(&out)
        );
        signal(spawner.id(), nix::sys::signal::Signal::SIGINT);
        spawner.wait_with_output().unwrap();
    }
}

/// An `ensure` that waited out another process's start, which then timed
/// out, answers with that failure (naming `ready_timeout_secs`) instead of
/// starting the hung service a second time.
#[test]
fn an_ensure_that_waited_for_a_start_that_timed_out_answers_with_its_failure() {
    let sb = Sandbox::new()
        .with("args", vec!["--hang"])
        .with("ready_timeout_secs", 3);
    let spawner = background(&sb, &["ensure"]);
    assert!(
        wait_for(Duration::from_secs(10), || !sb.pids().is_empty()),
        "the first ensure started its child"
    );
    std::thread::sleep(Duration::from_millis(1000));
    let out = sb.run(&["ensure"]);
    let first = spawner.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(1));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("the start another process made while this call waited failed"),
        "{err}"
    );
    assert!(err.contains("did not become ready"), "{err}");
    assert!(
        err.contains("within 3.0s") && err.contains("ready_timeout_secs"),
        "{err}"
    );
    assert_eq!(sb.spawn_count(), 1, "started once");
    assert!(sb.pids().is_empty(), "the hung service was killed");
}

/// A wall-clock jump never turns a service that is starting into an
/// unresponsive one: starting-versus-unresponsive and the uptime come from
/// the process's own age (monotonic), not from the wall-clock time in
/// `service.json`. Simulated by moving the record's start time an hour
/// back, which is what a clock that jumped an hour forward looks like.
#[test]
fn a_wall_clock_jump_does_not_make_a_starting_service_unresponsive() {
    let sb = Sandbox::new()
        .with("args", vec!["--hang"])
        .with("ready_timeout_secs", 60);
    let spawner = background(&sb, &["ensure"]);
    let record_path = sb.state_dir().join("service.json");
    assert!(
        wait_for(Duration::from_secs(10), || !sb.pids().is_empty()
            && record_path.exists()),
        "the spawner started its child and wrote its record"
    );
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    let started = record["started_at_unix_ms"].as_u64().unwrap();
    record["started_at_unix_ms"] = (started - 3_600_000).into();
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();
    let status = json_of(&sb.run(&["--json", "status"]));
    signal(spawner.id(), nix::sys::signal::Signal::SIGINT);
    spawner.wait_with_output().unwrap();
    assert_eq!(status["state"], "starting", "{status}");
    let uptime = status["uptime_secs"].as_u64().expect("an uptime");
    assert!(
        uptime < 600,
        "uptime {uptime}s follows the wall clock: {status}"
    );
}

/// A plain service that leaves a helper holding its descriptors and
/// exits is stopped; the next `ensure` starts a fresh one.
#[test]
fn helper_of_a_dead_plain_service_does_not_keep_it_alive() {
    for round in 0..2 {
        let port = free_port();
        let sb = Sandbox::new()
            .with(
                "args",
                vec![
                    "--plain",
                    "--listen",
                    &listen(port),
                    "--helper-secs",
                    "60",
                    "--exit-after-ms",
                    "300",
                ],
            )
            .with("endpoint", tcp(port));
        let first = sb.ensure();
        let pid = pid_of(&first);
        assert!(
            wait_for(Duration::from_secs(10), || !alive(pid)),
            "round {round}: it exits by itself"
        );
        assert!(
            sb.pids().len() == 1,
            "round {round}: its helper lives on: {:?}",
            sb.pids()
        );
        let status = sb.status();
        assert_eq!(status["state"], "stopped", "round {round}: {status}");
        assert_eq!(sb.ok(&["stop"]).trim(), "not running", "round {round}");
        let fresh = sb.ensure();
        assert_eq!(fresh["state"], "running", "round {round}: {fresh}");
        assert_ne!(pid_of(&fresh), pid);
    }
}

/// A helper a kit service started (its child, in its process group) does
/// not outlive a `stop` of the service: a graceful shutdown ends the
/// service alone, and what it left is ended after it.
#[test]
fn stop_ends_what_a_service_left_in_its_process_group() {
    let sb = Sandbox::new().with("args", vec!["--helper-secs", "300"]);
    let pid = pid_of(&sb.ensure());
    assert!(
        wait_for(Duration::from_secs(10), || sb.pids().len() == 2),
        "the service and its helper: {:?}",
        sb.pids()
    );
    assert_eq!(sb.ok(&["stop"]).trim(), "stopped");
    assert!(!alive(pid));
    assert!(
        wait_for(Duration::from_secs(10), || sb.pids().is_empty()),
        "left running: {:?}",
        sb.pids()
    );
    assert!(
        sb.log().contains("left in its process group"),
        "{}",
        sb.log()
    );
}

/// A plain service that double-forks (its first process exits 0)
/// is up: `ensure` succeeds, `status` names the daemon, `stop` ends it.
#[test]
fn double_forking_plain_service_is_found_and_stopped() {
    for round in 0..3 {
        let port = free_port();
        let sb = plain_service(port, &["--daemonize"]);
        let status = sb.ensure();
        assert_eq!(status["state"], "running", "round {round}: {status}");
        let pid = pid_of(&status);
        assert_eq!(sb.pids(), vec![pid], "round {round}: the daemon");
        assert_eq!(pid_of(&sb.status()), pid, "round {round}");
        assert_eq!(sb.ok(&["stop"]).trim(), "stopped", "round {round}");
        assert!(wait_for(Duration::from_secs(10), || !alive(pid)));
        assert!(sb.pids().is_empty(), "round {round}");
    }
}

/// A daemonizing service that never becomes ready: its first process exits
/// 0 and its daemon, in a session of its own, holds the lock. A kit daemon
/// names itself in the record and is killed with the failed start, so
/// nothing is left; a plain one names itself nowhere, and the error says it
/// may be left and how to find it (then the test ends it).
#[test]
fn a_daemon_that_never_becomes_ready_is_killed_or_named() {
    let sb = Sandbox::new()
        .with("args", vec!["--daemonize", "--hang-after-lock"])
        .with("ready_timeout_secs", 2);
    let out = sb.run(&["ensure"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("did not become ready"), "{err}");
    assert!(!err.contains("fuser"), "{err}");
    assert!(
        wait_for(Duration::from_secs(5), || sb.pids().is_empty()),
        "the kit daemon was left: {:?}",
        sb.pids()
    );

    let port = free_port();
    let sb = plain_service(port, &["--daemonize", "--hang"]).with("ready_timeout_secs", 2);
    let out = sb.run(&["ensure"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("still holds"), "{err}");
    assert!(err.contains("fuser"), "{err}");
    assert!(err.contains("instance.lock"), "{err}");
}

/// A kit service started without a spawner is never refused by a
/// `status` probe running at the same time.
#[test]
fn status_probes_never_make_a_starting_kit_service_fail() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.state_dir()).unwrap();
    std::fs::set_permissions(
        sb.state_dir(),
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700),
    )
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // One `status` loop as users run it, and one that makes the very probe
    // `status` makes of the lock, back to back, so a start meets it often.
    let status_loop = {
        let stop = stop.clone();
        let config = sb.config_file();
        let command = sb.commands();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = command(cli_bin().as_os_str())
                    .arg("--config")
                    .arg(&config)
                    .arg("status")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        })
    };
    let probe_loop = {
        let stop = stop.clone();
        let lock = sb.state_dir().join("instance.lock");
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = spfs_autostart_protocol::lock::is_held(&lock);
            }
        })
    };
    let probes = [status_loop, probe_loop];
    for round in 0..30 {
        let mut service = sb
            .command(reference_service())
            .env("SPFS_AUTOSTART_CONFIG", sb.config_file())
            .env("SPFS_AUTOSTART_STATE_DIR", sb.state_dir())
            .env("SPFS_AUTOSTART_IDLE_TIMEOUT_SECS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let socket = sb.state_dir().join("service.sock");
        let served = wait_for(Duration::from_secs(10), || {
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
                || matches!(service.try_wait(), Ok(Some(_)))
        });
        let exited = service.try_wait().unwrap();
        signal(service.id(), nix::sys::signal::Signal::SIGTERM);
        let out = service.wait_with_output().unwrap();
        assert!(
            served && exited.is_none(),
            "round {round}: the service failed to start: {}",
            stderr(&out)
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for probe in probes {
        probe.join().unwrap();
    }
}

/// `ensure` never returns a service that is shutting down: whatever
/// it reports is alive and running right after.
#[test]
fn ensure_never_reports_a_service_that_is_shutting_down() {
    let sb = Sandbox::new().with("idle_timeout_secs", 1);
    for round in 0..10 {
        let status = sb.ensure();
        let pid = pid_of(&status);
        let now = sb.status();
        assert!(alive(pid), "round {round}: reported pid {pid} is dead");
        assert_eq!(now["state"], "running", "round {round}: {now}");
        assert_eq!(pid_of(&now), pid, "round {round}");
        // Around the idle deadline, so some ensures meet the service as it
        // decides to exit.
        std::thread::sleep(Duration::from_millis(900 + 25 * round));
    }
}

/// SIGINT to `ensure`, which is starting the service in `sb`: it exits
/// 130, and nothing it started is left. What the `ensure` wrote.
fn ctrl_c_ends_the_start(sb: &Sandbox, ensure: Child, round: usize) -> std::process::Output {
    signal(ensure.id(), nix::sys::signal::Signal::SIGINT);
    let out = ensure.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "round {round}: {}",
        stderr(&out)
    );
    assert!(
        wait_for(Duration::from_secs(10), || sb.pids().is_empty()),
        "round {round}: left behind: {:?}",
        sb.pids()
    );
    out
}

/// Ctrl-C on an `ensure` whose kit service forked a daemon and exited,
/// before the daemon named itself: the daemon ends instead of serving (it
/// served on), and the next `ensure` starts the service again.
#[test]
fn an_interrupted_ensure_leaves_no_daemon_of_its_start_serving() {
    let sb = Sandbox::new().with("args", vec!["--daemonize", "--start-delay-ms", "1500"]);
    let ensure = background(&sb, &["ensure"]);
    // The first process forks at once and exits; its daemon is in its
    // set-up for 1.5 s. Interrupted once only the daemon is left: the
    // service's only process is no longer the child of the start's
    // intermediate (a fork of this CLI).
    let cli = std::fs::canonicalize(cli_bin()).unwrap();
    let started_by_the_cli = |pid: u32| {
        spfs_autostart_protocol::sys::process_info(pid)
            .and_then(|info| std::fs::read_link(format!("/proc/{}/exe", info.parent)).ok())
            .is_some_and(|parent| parent == cli)
    };
    assert!(
        wait_for(Duration::from_secs(10), || {
            let pids = sb.pids();
            pids.len() == 1 && !started_by_the_cli(pids[0])
        }),
        "the first process forked its daemon and exited: {:?}",
        sb.pids()
    );
    signal(ensure.id(), nix::sys::signal::Signal::SIGINT);
    let out = ensure.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    // Past the daemon's set-up, nothing of that start serves: the daemon
    // itself said why it ended (the spawner's line says "its start was
    // abandoned" without the reason).
    assert!(
        wait_for(Duration::from_secs(10), || sb.pids().is_empty()),
        "left serving: {:?}: {}",
        sb.pids(),
        sb.log()
    );
    assert!(
        sb.log()
            .contains("was abandoned (its caller was interrupted)"),
        "{}",
        sb.log()
    );
    assert_eq!(sb.ensure()["state"], "running");
}

/// Ctrl-C on an `ensure` that is starting the service leaves no
/// process behind, says so, and the next `ensure` works.
#[test]
fn interrupted_ensure_leaves_no_process_behind() {
    for round in 0..3 {
        let mut sb = Sandbox::new()
            .with("args", vec!["--hang"])
            .with("ready_timeout_secs", 4);
        let ensure = background(&sb, &["ensure"]);
        assert!(
            wait_for(Duration::from_secs(10), || !sb.pids().is_empty()),
            "round {round}: started"
        );
        let pid = sb.pids()[0];
        let out = ctrl_c_ends_the_start(&sb, ensure, round);
        // It says what it ends, and how to start it again.
        assert_eq!(
            stderr(&out),
            as_run(
                &sb,
                &format!(
                    "interrupted: ending {} (pid {pid}) and any daemon it forked, whose start \
                     this was; `spfs-autostart ensure` starts it again\n",
                    reference_service().display()
                )
            ),
            "round {round}"
        );
        sb.reset_config();
        let status = sb.ensure();
        assert_eq!(status["state"], "running", "round {round}");
        sb.ok(&["stop"]);
    }
}

/// Ctrl-C on an `ensure` whose service ignores its graceful signal: it is
/// asked, given its moment, then killed; nothing is left running.
#[test]
fn an_interrupted_start_that_ignores_sigint_is_killed() {
    let mut sb = Sandbox::new();
    let script = sb.root().join("deaf.sh");
    std::fs::write(&script, "#!/bin/sh\ntrap '' INT\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    sb.set("program", script.display().to_string())
        .set("args", Vec::<String>::new());
    let ensure = background(&sb, &["ensure"]);
    assert!(
        wait_for(Duration::from_secs(10), || !sb.pids().is_empty()),
        "started"
    );
    ctrl_c_ends_the_start(&sb, ensure, 0);
    assert!(sb.log().contains("its start was abandoned"), "{}", sb.log());
}

/// Ctrl-C the moment a start has forked the service (the spawner's
/// `starting` record appears, before the command first waits) still ends
/// the start: the handlers are in before the command's first step.
#[test]
fn ctrl_c_the_moment_the_service_is_forked_ends_the_start() {
    for round in 0..10 {
        let sb = Sandbox::new()
            .with("args", vec!["--hang"])
            .with("ready_timeout_secs", 4);
        let record = sb.state_dir().join("service.json");
        let ensure = background(&sb, &["ensure"]);
        // Spun, not slept: the moment is a few microseconds long.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !record.exists() && Instant::now() < deadline {
            std::hint::spin_loop();
        }
        assert!(record.exists(), "round {round}: no start");
        ctrl_c_ends_the_start(&sb, ensure, round);
    }
}

/// Another user's plain service on our TCP port is a conflict:
/// never used, never asked to shut down, never signalled.
#[test]
fn another_users_service_on_our_port_is_left_alone() {
    let other = second_user();
    for round in 0..2 {
        let port = free_port();
        let sb = plain_service(port, &[]);
        let mut theirs = outside_service(port, Some(other), &sb);
        let status = sb.status();
        assert_eq!(status["state"], "conflict", "round {round}: {status}");
        assert!(
            status["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("uid {other}")),
            "round {round}: says whose it is: {status}"
        );
        let stop = sb.run(&["stop"]);
        assert_eq!(stop.status.code(), Some(1), "round {round}");
        let ensure = sb.run(&["--json", "ensure"]);
        assert_eq!(ensure.status.code(), Some(1), "round {round}");
        let error: serde_json::Value = serde_json::from_slice(&ensure.stderr).unwrap();
        assert_eq!(error["error"]["kind"], "EndpointConflict", "{error}");
        assert!(
            matches!(theirs.try_wait(), Ok(None)),
            "round {round}: their service is alive after our stop and ensure"
        );
        assert_eq!(sb.spawn_count(), 0, "round {round}: nothing spawned");
        theirs.kill().unwrap();
        theirs.wait().unwrap();
    }
}

/// Another user's service that takes our TCP port while ours starts (before
/// it binds) is not taken for ours: `ensure` names the conflict (and so
/// does another client's look meanwhile), ours is ended, and theirs is left
/// alone. It used to report ours running while
/// every call went to theirs.
#[test]
fn another_users_service_that_takes_our_port_during_our_start_is_not_used() {
    let other = second_user();
    let port = free_port();
    let sb = plain_service(port, &["--start-delay-ms", "1500"]);
    let ensure = background(&sb, &["--json", "ensure"]);
    let record = sb.state_dir().join("service.json");
    assert!(
        wait_for(Duration::from_secs(10), || record.exists()),
        "the start begins"
    );
    let ours = sb.pids();
    assert!(!ours.is_empty(), "ours runs");
    let mut theirs = outside_service(port, Some(other), &sb);
    // Meanwhile another client, which sees our lock and live record, is not
    // told that ours serves there: the port is theirs.
    assert_conflict_of(&sb.status(), other);
    let out = ensure.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "EndpointConflict", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("uid {other}")),
        "says whose it is: {error}"
    );
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("ask its owner to stop it") && !message.contains("; stop it"),
        "theirs to stop: {message}"
    );
    for pid in ours {
        assert!(
            wait_for(Duration::from_secs(10), || !alive(pid)),
            "ours (pid {pid}) is ended"
        );
    }
    assert!(
        matches!(theirs.try_wait(), Ok(None)),
        "their service is left alone"
    );
    theirs.kill().unwrap();
    theirs.wait().unwrap();
}

/// Our own plain service started outside spfs-autostart (as spfs
/// does) is adopted: reported with its pid, used by `ensure` (never a
/// second one), stopped by `stop`. (And an `expected_version` that a plain
/// service cannot be checked against is said to be unchecked.)
#[test]
fn service_started_elsewhere_is_adopted_and_stopped() {
    for round in 0..2 {
        let port = free_port();
        let sb = plain_service(port, &[]).with("expected_version", "9.9.9");
        let mut outside = outside_service(port, None, &sb);
        let pid = outside.id();
        let status = sb.status();
        assert_eq!(status["state"], "running", "round {round}: {status}");
        assert_eq!(pid_of(&status), pid, "round {round}: {status}");
        // Its environment names this state dir, as an agent's plist or
        // unit does, whose output goes to our log: not said to be elsewhere.
        let detail = status["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("started outside") && detail.contains("by an agent"),
            "round {round}: {status}"
        );
        assert!(
            !detail.contains("its output is not in"),
            "round {round}: {status}"
        );
        assert!(
            status["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w.as_str().unwrap().contains("is not checked")),
            "round {round}: {status}"
        );
        assert_eq!(pid_of(&sb.ensure()), pid, "round {round}");
        assert_eq!(sb.spawn_count(), 0, "round {round}: never a second one");
        assert_eq!(sb.ok(&["stop"]).trim(), "stopped", "round {round}");
        let exited = wait_for(Duration::from_secs(10), || {
            matches!(outside.try_wait(), Ok(Some(_)))
        });
        assert!(exited, "round {round}: the adopted service was stopped");
    }
}

/// An `ensure` suspended (Ctrl-Z, a debugger) while its service starts and
/// resumed past its deadline finds the service serving, as other shells
/// already do: it reports it and kills nothing.
#[test]
fn an_ensure_resumed_past_its_deadline_keeps_the_service_that_became_ready() {
    use nix::sys::signal::Signal::{SIGCONT, SIGSTOP};
    let sb = Sandbox::new()
        .with("args", vec!["--start-delay-ms", "300"])
        .with("ready_timeout_secs", 1);
    let ensure = background(&sb, &["--json", "ensure"]);
    let started = Instant::now();
    assert!(wait_for(Duration::from_secs(10), || !sb.pids().is_empty()));
    signal(ensure.id(), SIGSTOP);
    let pid = sb.pids()[0];
    // Serving, and another shell's look says so.
    assert!(wait_for(Duration::from_secs(10), || sb.status()["state"]
        == "running"));
    // Past the suspended client's deadline (1 s from its start), with room.
    std::thread::sleep(Duration::from_secs(2).saturating_sub(started.elapsed()));
    signal(ensure.id(), SIGCONT);
    let out = ensure.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(pid_of(&json_of(&out)), pid);
    assert!(alive(pid), "the ready service was killed");
    assert_eq!(sb.pids(), vec![pid]);
}

/// A spawner killed outright (SIGKILL: no chance to clean up) while its
/// service starts leaves only the service: its intermediate process, which
/// waited for the service, goes with it instead of lingering for the
/// service's lifetime.
#[test]
fn a_spawner_killed_mid_start_leaves_no_intermediate_behind() {
    let sb = Sandbox::new().with("args", vec!["--start-delay-ms", "2000"]);
    let mut ensure = background(&sb, &["ensure"]);
    assert!(wait_for(Duration::from_secs(10), || !sb.pids().is_empty()));
    let service = sb.pids();
    // Everything started in the sandbox carries its marker: the spawner,
    // its intermediate (a fork of it) and the service.
    let marker = format!("{SANDBOX_MARKER}={}", sb.root().display());
    assert_eq!(
        marked_pids(&marker).len(),
        3,
        "spawner, intermediate, service"
    );
    signal(ensure.id(), nix::sys::signal::Signal::SIGKILL);
    ensure.wait().unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || marked_pids(&marker) == service),
        "only the service is left: {:?} (service {service:?})",
        marked_pids(&marker)
    );
    // The service goes on to serve, and is used and stopped as usual.
    assert_eq!(pid_of(&sb.ensure()), service[0]);
    sb.ok(&["stop"]);
}

/// `ensure` starts a slow plain service while another process of ours
/// (spfs's own auto-start) starts one on the same port and serves first:
/// ours cannot bind there. `ensure` reports the one that serves, as started
/// outside, and ends its own (which would have died on the taken port),
/// saying so in the service's log; `stop` then ends the one that served.
#[test]
fn a_service_started_elsewhere_during_our_start_is_the_one_reported() {
    let port = free_port();
    let sb = plain_service(port, &["--start-delay-ms", "3000"]);
    let ensure = background(&sb, &["--json", "ensure"]);
    assert!(wait_for(Duration::from_secs(10), || !sb.pids().is_empty()));
    let ours = sb.pids()[0];
    let mut outside = outside_service(port, None, &sb);
    let out = ensure.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let status = json_of(&out);
    assert_eq!(pid_of(&status), outside.id(), "{status}");
    assert!(
        status["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("started outside"),
        "{status}"
    );
    assert!(
        wait_for(Duration::from_secs(10), || !alive(ours)),
        "ours was left"
    );
    let log = sb.log();
    let ending = format!("--- spfs-autostart: ending pid {ours} at ");
    let line = log.lines().find(|l| l.starts_with(&ending));
    assert!(
        line.is_some_and(|l| l.ends_with(&format!(
            ": another process serves at tcp://127.0.0.1:{port}, started meanwhile; that one \
             is used ---"
        ))),
        "{log}"
    );
    assert_eq!(sb.ok(&["stop"]).trim(), "stopped");
    assert!(wait_for(Duration::from_secs(10), || matches!(
        outside.try_wait(),
        Ok(Some(_))
    )));
}

/// A holder of the instance lock that nothing identifies (no record names
/// it): `stop` will not signal it, so `ensure` does not offer `stop` as the
/// fix; both say how to find the holder instead.
#[test]
fn an_unidentified_lock_holder_is_not_offered_to_stop() {
    use std::os::unix::fs::DirBuilderExt;
    let sb = Sandbox::new().with("ready_timeout_secs", 1);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(sb.state_dir())
        .unwrap();
    let lock = sb.state_dir().join("instance.lock");
    // --no-fork: the holder is the process killed below, not a child of it.
    let mut holder = std::process::Command::new("flock")
        .arg("--no-fork")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .expect("flock (Debian package util-linux)");
    assert!(wait_for(Duration::from_secs(10), || {
        std::fs::File::open(&lock).is_ok_and(|f| {
            nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_err()
        })
    }));
    let out = sb.run(&["--json", "ensure"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("fuser"), "{error}");
    assert!(!message.contains("stop operation"), "{error}");
    assert!(
        error["error"]["hints"].as_array().unwrap().is_empty(),
        "{error}"
    );
}

/// A wrapper that runs the service in a session of its own and waits for
/// it (`setsid -w`) is not taken for another process's start: the listener
/// is the wrapper's descendant, so nothing is ended.
#[test]
fn a_wrapper_that_runs_the_service_in_a_new_session_is_not_ended() {
    let port = free_port();
    let mut sb = plain_service(port, &[]);
    use_script(
        &mut sb,
        "setsid-wrapper.sh",
        &format!("setsid -w '{}' \"$@\"\n", reference_service().display()),
    );
    let out = sb.run(&["--json", "ensure"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = json_of(&out);
    assert_eq!(status["state"], "running", "{status}");
    // The wrapper (the session leader our spawner started) still runs.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.state_dir().join("service.json")).unwrap())
            .unwrap();
    let wrapper_pid = record["pid"].as_u64().unwrap() as u32;
    assert!(alive(wrapper_pid), "the wrapper was ended: {record}");
}

/// A record that names another live process of ours while a daemonizing
/// start fails (a service launchd started meanwhile could write one) is
/// not taken for the failed start's daemon: only a record with this
/// start's spawn id is, and that process alone is killed.
#[test]
fn a_failed_daemonizing_start_kills_no_process_it_did_not_start() {
    let port = free_port();
    let sb = plain_service(port, &["--daemonize", "--hang"]).with("ready_timeout_secs", 2);
    let ensure = background(&sb, &["ensure"]);
    assert!(wait_for(Duration::from_secs(10), || sb
        .state_dir()
        .join("service.json")
        .exists()));
    let mut bystander = Sleeper::start();
    let pid = bystander.pid();
    let start_time = start_time_of(pid);
    let record = serde_json::json!({
        "pid": pid, "start_time": start_time, "program": "/bin/sleep",
        "version": "1.0.0", "endpoint": "", "started_at_unix_ms": 1, "phase": "running",
    });
    std::fs::write(sb.state_dir().join("service.json"), record.to_string()).unwrap();
    let out = ensure.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(alive(pid), "a process the start did not start was killed");
    bystander.end();
}
