//! `stop`: what it ends, and what it says when it cannot.

mod common;

use std::time::Duration;

use common::*;

/// `stop` that waits out another process's long start says so, and offers
/// what makes a stop wait longer, not an ensure's timeout.
#[test]
fn stop_behind_a_long_start_elsewhere_names_the_stop_timeout() {
    let sb = Sandbox::new()
        .with("args", vec!["--hang"])
        .with("ready_timeout_secs", 1);
    let spawner = background(&sb, &["ensure", "--timeout", "20"]);
    assert!(wait_for(Duration::from_secs(10), || !sb.pids().is_empty()));
    let out = sb.run(&["--json", "stop", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("nothing was stopped"), "{message}");
    assert_eq!(
        error["error"]["hints"],
        serde_json::json!([as_run(
            &sb,
            "`spfs-autostart stop --timeout SECS` sets stop_timeout_secs for one run"
        )])
    );
    signal(spawner.id(), nix::sys::signal::Signal::SIGINT);
    spawner.wait_with_output().unwrap();
}

/// A stop_sequence without SIGKILL, run to its end with the service still
/// there: the error names the step it ended with (not a SIGKILL never
/// sent) and the key to change.
#[test]
fn a_stop_sequence_that_does_not_end_the_service_says_so_and_names_the_key() {
    let port = free_port();
    let mut sb = plain_service(port, &[])
        .with("stop_sequence", vec!["shutdown"])
        .with("stop_timeout_secs", 1);
    let pid = pid_of(&sb.ensure());
    let out = sb.run(&["--json", "stop"]);
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("still alive after the shutdown request, the last step of stop_sequence"),
        "{message}"
    );
    assert!(!message.contains("SIGKILL;"), "{message}");
    assert_eq!(
        error["error"]["hints"],
        serde_json::json!([as_run(
            &sb,
            "`spfs-autostart config` shows the config file to set stop_sequence in"
        )])
    );
    assert!(alive(pid));
    sb.set("stop_sequence", vec!["shutdown", "SIGINT", "SIGKILL"]);
    assert_eq!(sb.ok(&["stop"]).trim(), "stopped");
    assert!(wait_for(Duration::from_secs(10), || !alive(pid)));
}

/// A kit service that does not answer (suspended here) is still a kit
/// service: `status` says so, and `stop` gives it the kit's steps (its
/// shutdown request, then SIGTERM, which it handles gracefully), not a
/// plain service's stop_sequence.
#[test]
fn a_suspended_kit_service_is_stopped_as_a_kit_service() {
    let sb = Sandbox::new()
        .with("stop_sequence", vec!["shutdown", "SIGKILL"])
        .with("stop_timeout_secs", 1);
    let pid = pid_of(&sb.ensure());
    signal(pid, nix::sys::signal::Signal::SIGSTOP);
    let status = sb.status();
    assert_eq!(status["state"], "unresponsive", "{status}");
    assert_eq!(status["managed"], true, "{status}");
    // Its text shows no leases or idle deadline it did not tell ("leases 0",
    // "idle exit never" were made up).
    let text = String::from_utf8(sb.run(&["status"]).stdout).unwrap();
    assert!(
        !text.contains("leases") && !text.contains("idle exit"),
        "{text}"
    );
    let out = sb.run(&["--json", "stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Its SIGTERM is its graceful exit: nothing to warn of.
    assert_eq!(outcome["how"], "graceful", "{outcome}");
    assert_eq!(stderr(&out), "", "no hint after a graceful stop");
    assert!(wait_for(Duration::from_secs(10), || !alive(pid)));
    // Its graceful exit removed its socket.
    assert!(!sb.state_dir().join("service.sock").exists());
}

/// A program that is a wrapper script running the service without `exec`:
/// `stop` ends the service too, not only the script (the signals go to the
/// group the script leads).
#[test]
fn a_wrapper_scripts_service_is_stopped_with_it() {
    let port = free_port();
    let mut sb = plain_service(port, &[]);
    use_script(
        &mut sb,
        "wrapper.sh",
        &format!("{} \"$@\"\n", reference_service().display()),
    );
    let status = sb.ensure();
    assert_eq!(status["state"], "running", "{status}");
    let service = sb.pids();
    assert_eq!(service.len(), 2, "the script and its service: {service:?}");
    assert_eq!(sb.ok(&["stop"]).trim(), "stopped");
    // `stop` returns once the script has exited; the service got the same
    // graceful signal and follows it.
    assert!(
        wait_for(Duration::from_secs(10), || sb.pids().is_empty()),
        "left running: {:?}",
        sb.pids()
    );
    assert_eq!(sb.status()["state"], "stopped");
}

/// A `stopping` mark left by a stop client that died (it names the live
/// service) is nobody's stop: the next `stop` runs its whole sequence,
/// `shutdown` first, and `status` reads the service as running meanwhile.
#[test]
fn a_stopping_mark_left_by_a_dead_client_does_not_change_the_next_stop() {
    let port = free_port();
    let sb = plain_service(port, &["--shutdown-exits"]).with("stop_sequence", vec!["shutdown"]);
    let pid = pid_of(&sb.ensure());
    let start_time = start_time_of(pid);
    std::fs::write(
        sb.state_dir().join("stopping"),
        format!("{pid} {start_time}\n"),
    )
    .unwrap();
    assert_eq!(sb.status()["state"], "running");
    assert_eq!(sb.ok(&["stop"]).trim(), "stopped");
    assert!(wait_for(Duration::from_secs(10), || !alive(pid)));
}

/// A stop that had to end the service by a signal says so, and says where
/// to look for what it may have left behind; a graceful stop says neither.
#[test]
fn a_forced_stop_says_where_to_look_and_a_graceful_one_does_not() {
    let port = free_port();
    let mut sb = plain_service(port, &[]).with("stop_sequence", vec!["SIGTERM"]);
    let pid = pid_of(&sb.ensure());
    let out = sb.run(&["stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("stopped (terminated by a signal"),
        "{text}"
    );
    let hint = stderr(&out);
    assert!(hint.starts_with("hint: "), "{hint}");
    assert!(
        hint.contains(&as_run(
            &sb,
            "`spfs-autostart logs` shows what it was doing"
        )),
        "{hint}"
    );
    assert!(!alive(pid));

    sb.set("stop_sequence", vec!["shutdown", "SIGINT"]);
    let pid = pid_of(&sb.ensure());
    let out = sb.run(&["stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "stopped\n");
    assert_eq!(stderr(&out), "", "no hint after a graceful stop");
    assert!(wait_for(Duration::from_secs(10), || !alive(pid)));
}

/// A wrapper script that runs the service without `exec` exits on the
/// stop's signal while the service under it, still handling it, does not:
/// the stop is not done until the service is, so it goes on to the next
/// step. It used to say "stopped" with the service still serving, and let
/// the next `ensure` start a second one beside it.
#[test]
fn a_stop_is_not_done_while_the_service_outlives_its_wrapper() {
    let port = free_port();
    let mut sb = Sandbox::new()
        .with("endpoint", tcp(port))
        .with("stop_sequence", vec!["SIGHUP", "SIGKILL"])
        .with("stop_timeout_secs", 1);
    // The service ignores SIGHUP, standing in for one slower to exit than
    // its wrapper; the wrapper dies of it.
    use_script(
        &mut sb,
        "wrapper.sh",
        &format!(
            "(trap '' HUP; exec {} --plain --listen {})\n",
            reference_service().display(),
            listen(port)
        ),
    );
    sb.set("args", Vec::<String>::new());
    let wrapper = pid_of(&sb.ensure());
    assert_eq!(sb.pids().len(), 2, "the wrapper and the service");
    let out = sb.run(&["--json", "stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["how"], "killed", "{outcome}");
    assert_eq!(outcome["pid"], wrapper, "{outcome}");
    assert!(sb.pids().is_empty(), "left running: {:?}", sb.pids());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// `stop` of a service that runtimes use says whom it cut off (a lease's
/// holder here), on stderr and in `--json`; with nobody using it, nothing.
#[test]
fn stop_names_the_runtimes_it_cut_off() {
    let sb = Sandbox::new();
    let holder = Sleeper::start();
    let lease = || {
        let config =
            spfs_autostart::Config::load_with(Some(&sb.config_file()), |name| sb.var(name))
                .unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let manager = spfs_autostart::ServiceManager::new(config).unwrap();
                manager.acquire(holder.pid(), "spfs shell").await.unwrap()
            });
    };
    let user = format!("spfs shell (pid {})", holder.pid());
    sb.ensure();
    lease();
    let out = sb.run(&["--json", "stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["outcome"], "stopped", "{outcome}");
    assert_eq!(outcome["cut_off"], serde_json::json!([user]), "{outcome}");
    // In words.
    sb.ensure();
    lease();
    let out = sb.run(&["stop"]);
    assert!(
        stderr(&out).contains(&format!("in use by 1 runtime: {user}")),
        "{}",
        stderr(&out)
    );
    // Nobody uses it: nothing said.
    sb.ensure();
    let out = sb.run(&["stop"]);
    assert!(out.status.success());
    assert_eq!(stderr(&out), "", "nobody used it");
}

/// A service that ended without being stopped (killed here) is `stopped`
/// with a detail that says so, and `doctor` warns of it; one that was
/// stopped, kit or plain, is plainly `stopped`.
#[test]
fn a_service_that_died_unasked_is_told_apart_from_one_stopped() {
    let sb = Sandbox::new();
    let pid = pid_of(&sb.ensure());
    signal(pid, nix::sys::signal::Signal::SIGKILL);
    assert!(wait_for(Duration::from_secs(10), || !alive(pid)));
    let status = sb.status();
    assert_eq!(status["state"], "stopped", "{status}");
    let detail = status["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("(pid {pid}) ended without being stopped")),
        "{status}"
    );
    let doctor: serde_json::Value =
        serde_json::from_slice(&sb.run(&["--json", "doctor"]).stdout).unwrap();
    assert!(
        doctor["findings"].as_array().unwrap().iter().any(|f| {
            f["severity"] == "warning"
                && f["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("ended without being stopped"))
        }),
        "{doctor}"
    );
    // Stopped: nothing to say, for a kit service and for a plain one.
    sb.ensure();
    sb.ok(&["stop"]);
    assert_eq!(sb.status()["detail"], serde_json::Value::Null);
    let port = free_port();
    let plain = plain_service(port, &[]);
    plain.ensure();
    plain.ok(&["stop"]);
    let status = plain.status();
    assert_eq!(status["state"], "stopped", "{status}");
    assert_eq!(status["detail"], serde_json::Value::Null, "{status}");
}
