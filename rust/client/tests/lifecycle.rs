//! Lifecycle soundness through the library, against the real reference
//! service: the races that need a call in flight or a lease, a service
//! that is nobody's child and survives a host without standard
//! descriptors, and one writer per record state.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use common::*;
use spfs_autostart::{ErrorKind, ServiceManager, StopOutcome};

/// A `stop` waiting for a draining service never touches the
/// service an `ensure` started after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_stop_never_touches_the_service_started_after_it() {
    for round in 0..2 {
        let mut sandbox = kit_sandbox(1800, &["--slow-calls-ms", "2500"]);
        sandbox.set("stop_timeout_secs", 20);
        let manager = sandbox.manager();
        let old = manager.ensure().await.expect("ensure").pid.expect("pid");
        let call = call_in_flight(&manager).await;
        let stopper = {
            let manager = sandbox.manager();
            tokio::spawn(async move { manager.stop().await })
        };
        // The old service drains its call: its record says so.
        record_says_stopping(&sandbox).await;
        let fresh = sandbox
            .manager()
            .ensure()
            .await
            .expect("ensure during the stop");
        let new = fresh.pid.expect("pid");
        assert_ne!(new, old, "round {round}: a fresh service");
        let outcome = stopper.await.unwrap().expect("stop");
        assert!(
            matches!(outcome, StopOutcome::Stopped { pid: Some(p), .. } if p == old),
            "round {round}: {outcome:?}"
        );
        let _ = call.await;
        assert!(!alive(old), "round {round}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            alive(new),
            "round {round}: the new service survives the old stop\n{}",
            sandbox.log()
        );
        assert_eq!(
            status(&manager).await.pid,
            Some(new),
            "round {round}: and still serves"
        );
    }
}

/// A version mismatch never restarts a service that holds leases;
/// once idle it is restarted once, and a program that still reports the
/// wrong version is an error, never a restart loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_service_keeps_its_pid_and_a_wrong_version_is_restarted_only_once() {
    let sandbox = kit_sandbox(0, &["--report-version", "1.0.0"]);
    let manager = sandbox.manager();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    let mut runtime = Sleeper::start();
    manager
        .acquire(runtime.pid(), "runtime")
        .await
        .expect("lease");
    let mut config = sandbox.client_config();
    config.expected_version = Some("9.9.9".into());
    let mismatching = ServiceManager::new(config).expect("manager");
    for round in 0..3 {
        let status = mismatching.ensure().await.expect("ensure with a lease");
        assert_eq!(status.pid, Some(pid), "round {round}: not restarted");
        assert!(
            status
                .warnings
                .iter()
                .any(|w| w.contains("9.9.9") && w.contains("lease")),
            "round {round}: says what runs and what was expected: {:?}",
            status.warnings
        );
    }
    assert_eq!(status(&manager).await.leases.len(), 1, "the lease is kept");
    runtime.end();
    wait_for("the lease to follow its process", WAIT, || async {
        status(&manager).await.leases.is_empty().then_some(())
    })
    .await;
    let err = mismatching
        .ensure()
        .await
        .expect_err("still the wrong version");
    assert_eq!(err.kind(), ErrorKind::VersionMismatch, "{err}");
    assert!(
        err.to_string().contains("even when freshly started"),
        "{err}"
    );
    let replaced = status(&manager).await.pid.expect("a service runs");
    assert_ne!(replaced, pid, "restarted once");
    let why = format!(
        "restart asked by {}, which wants version 9.9.9, not 1.0.0",
        spfs_autostart_test_support::this_program()
    );
    assert!(
        sandbox.log().contains(&format!("shutting down: {why}")),
        "the restarted service logged why:\n{}",
        sandbox.log()
    );
    for round in 0..3 {
        let err = mismatching.ensure().await.expect_err("no loop");
        assert_eq!(err.kind(), ErrorKind::VersionMismatch, "round {round}");
        assert_eq!(
            status(&manager).await.pid,
            Some(replaced),
            "round {round}: never restarted again"
        );
    }
    assert_eq!(
        sandbox
            .log()
            .matches("--- spfs-autostart: starting")
            .count(),
        2,
        "{}",
        sandbox.log()
    );
    manager.stop().await.expect("stop");
}

/// A version restart whose stop waits for a call in flight still starts
/// the replacement: the stop's wait is bounded by `stop_timeout_secs`, the
/// new start has `ready_timeout_secs` of its own. It used to fail with "no
/// time was left", blaming another process, and leave nothing running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_restart_that_waits_for_a_drain_still_starts_the_new_service() {
    // The call holds the drain about 3 s (under the 3.75 s a stop with the
    // default stop_timeout_secs allows it), past the 2 s the restart's
    // ensure is given.
    let sandbox = kit_sandbox(
        1800,
        &["--report-version", "1.0.0", "--slow-calls-ms", "3500"],
    );
    let manager = sandbox.manager();
    let old = manager.ensure().await.expect("ensure").pid.expect("pid");
    let call = call_in_flight(&manager).await;
    // The same program without `--report-version` reports the crate's.
    let mut config = sandbox.client_config();
    config.args.clear();
    config.expected_version = Some(env!("CARGO_PKG_VERSION").into());
    config
        .set_ready_timeout_secs(1)
        .expect("ready_timeout_secs");
    let upgrading = ServiceManager::new(config).expect("manager");
    let replaced = upgrading
        .ensure()
        .await
        .expect("the old service drained, the new one started");
    assert_eq!(
        replaced.version.as_deref(),
        Some(env!("CARGO_PKG_VERSION")),
        "{replaced:?}"
    );
    let new = replaced.pid.expect("pid");
    assert_ne!(new, old, "replaced");
    assert!(!alive(old), "the old service is gone");
    assert!(
        call.await.unwrap().is_ok(),
        "the call in flight was answered before the old service stopped"
    );
    assert_eq!(status(&manager).await.pid, Some(new), "and it serves");
    manager.stop().await.expect("stop");
}

/// The service is nobody's child, so a host that reaps
/// every child never collects it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_is_not_a_child_of_the_host() {
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: u32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(ppid, std::process::id(), "reparented away from the host");
    // What `while (wait(NULL) > 0)` would see: no child at all.
    assert_eq!(
        nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
        Err(nix::errno::Errno::ECHILD)
    );
    assert!(alive(pid));
    manager.stop().await.expect("stop");
}

/// The record the kit wrote (running, with its version)
/// is never overwritten by the spawner's `Starting` record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawner_never_overwrites_the_record_the_service_wrote() {
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    for round in 0..5 {
        let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
        let record: serde_json::Value = serde_json::from_slice(
            &std::fs::read(sandbox.state_dir().join("service.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(record["pid"], pid, "round {round}: {record}");
        assert_eq!(record["phase"], "running", "round {round}: {record}");
        assert!(record["version"].is_string(), "round {round}: {record}");
        manager.stop().await.expect("stop");
    }
}

/// A host that closed fds 0-2 starts a plain service; the
/// lock handed to it is not replaced by its stdio, so `instance.lock` is
/// held exactly while the service runs.
#[test]
fn host_without_standard_descriptors_hands_over_the_lock_intact() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut sandbox = kit_sandbox(0, &["--plain", "--listen", &listen]);
    sandbox.set("endpoint", format!("tcp://{listen}"));
    let manager = sandbox.manager();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Keep copies to restore; then close 0-2 as a daemon-style host does,
    // so the next descriptors the spawner opens are 0, 1 and 2.
    let saved: Vec<OwnedFd> = (0..3)
        .map(|fd| {
            let copy = nix::fcntl::fcntl(
                // SAFETY: 0-2 are open in the test process.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10),
            )
            .unwrap();
            // SAFETY: a fresh descriptor we own.
            unsafe { OwnedFd::from_raw_fd(copy) }
        })
        .collect();
    for fd in 0..3 {
        // SAFETY: closing the standard descriptors on purpose; restored below.
        unsafe { libc::close(fd) };
    }
    let result = runtime.block_on(manager.ensure());
    for (fd, copy) in saved.iter().enumerate() {
        // SAFETY: dup2 onto the standard descriptors from our copies.
        unsafe { libc::dup2(copy.as_raw_fd(), fd as i32) };
    }
    let status = result.expect("ensure from a host without fds 0-2");
    let pid = status.pid.expect("pid");
    let lock = sandbox.state_dir().join("instance.lock");
    assert!(
        spfs_autostart_protocol::lock::is_held(&lock).unwrap(),
        "instance.lock is held while the service runs"
    );
    let holds_lock = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .any(|t| t == lock);
    assert!(holds_lock, "the service holds the lock");
    let outcome = runtime.block_on(manager.stop()).expect("stop");
    assert_graceful(&outcome);
}

/// The drain: while a service drains calls after a shutdown request
/// (whether a probe meets `Info` with `shutting_down` or a server that no
/// longer accepts), `ensure` waits for it to go and returns a fresh service,
/// never the one that is leaving. (The CLI test repeats the idle-exit race.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_waits_for_a_draining_service_and_starts_a_fresh_one() {
    use spfs_autostart::proto::control::{ShutdownRequest, control_client::ControlClient};
    let sandbox = kit_sandbox(1800, &["--slow-calls-ms", "1500"]);
    let manager = sandbox.manager();
    for round in 0..2 {
        let old = manager.ensure().await.expect("ensure").pid.expect("pid");
        let channel = manager.channel().await.expect("channel");
        let call = call_in_flight(&manager).await;
        ControlClient::new(channel)
            .shutdown(ShutdownRequest {
                reason: "test".into(),
                drain_ms: 0,
                ..Default::default()
            })
            .await
            .expect("shutdown request");
        let fresh = sandbox
            .manager()
            .ensure()
            .await
            .expect("ensure while it drains");
        let new = fresh.pid.expect("pid");
        assert_ne!(new, old, "round {round}: never the service that is leaving");
        assert!(!alive(old), "round {round}: it waited for it to go");
        assert!(alive(new), "round {round}");
        let _ = call.await;
    }
    manager.stop().await.expect("stop");
}

/// The reference service behind a wrapper that first notes the signal
/// lines of its own `/proc/PID/status` (`SigIgn:`, `SigBlk:`) in the file
/// returned.
fn service_noting_its_signals(sandbox: &mut Sandbox) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let seen = sandbox.root().join("signals");
    let wrapper = sandbox.root().join("service.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ngrep '^Sig' /proc/$$/status > '{}'\nexec '{}' \"$@\"\n",
            seen.display(),
            spfs_autostart_test_support::reference_service().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    sandbox.set("program", wrapper.display().to_string());
    seen
}

/// The signals one line of what [`service_noting_its_signals`] noted
/// names (`SigIgn`, `SigBlk`), as a set of numbers in a bit mask.
fn noted_mask(seen: &std::path::Path, line: &str) -> u64 {
    let text = std::fs::read_to_string(seen).expect("the service noted its signals");
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{line}:")))
        .unwrap_or_else(|| panic!("no {line} in {text}"));
    u64::from_str_radix(value.trim(), 16).unwrap()
}

fn has(mask: u64, signal: i32) -> bool {
    mask & (1 << (signal - 1)) != 0
}

/// A host that ignores SIGINT and SIGQUIT (a shell's background job does)
/// does not hand that on: the service starts with every
/// signal at its default action, so `stop_sequence`'s SIGINT reaches a
/// service that does not handle it itself.
#[tokio::test]
async fn the_service_does_not_inherit_the_hosts_ignored_signals() {
    let mut sandbox = kit_sandbox(0, &[]);
    let seen = service_noting_its_signals(&mut sandbox);
    // SAFETY: SIG_IGN for two signals of this test's own process (nextest
    // runs each test in a process of its own).
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    let ignored = noted_mask(&seen, "SigIgn");
    assert!(
        !has(ignored, libc::SIGINT) && !has(ignored, libc::SIGQUIT),
        "the service started ignoring signals: {ignored:x}"
    );
    assert_graceful(&manager.stop().await.expect("stop"));
}

/// Nor does a host that blocks signals (a signal-handling library's
/// threads do; the mask survives `fork` and `exec`): the service starts
/// with none blocked, so a stop's SIGINT or SIGTERM is not held back until
/// the SIGKILL.
#[test]
fn the_service_does_not_inherit_the_hosts_blocked_signals() {
    // Read from the service's own status: a shell wrapper would clear its
    // mask itself.
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    // A thread of its own with the signals blocked: every thread the
    // runtime starts from it (the spawner's included) inherits its mask.
    std::thread::spawn(move || {
        // SAFETY: a sigset_t filled by sigemptyset/sigaddset, and a mask
        // changed for this thread only.
        unsafe {
            let mut blocked: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut blocked);
            for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut blocked, signal);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let stopped = manager.stop().await.expect("stop");
            let blocked = status
                .lines()
                .find_map(|l| l.strip_prefix("SigBlk:"))
                .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
                .expect("SigBlk");
            for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                assert!(
                    !has(blocked, signal),
                    "the service started with signal {signal} blocked: {blocked:x}"
                );
            }
            assert_graceful(&stopped);
        });
    })
    .join()
    .unwrap();
}

/// A kit service that daemonizes, whose first process is still waiting
/// when its start is abandoned and whose daemon has already taken the lock
/// and named itself: the daemon, out of the first process's session, is
/// ended too. It was left running, holding the instance lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_start_ends_the_daemon_a_kit_service_forked() {
    let sandbox = kit_sandbox(
        0,
        &[
            "--daemonize",
            "--daemon-parent-waits-ms",
            "30000",
            "--hang-after-lock",
        ],
    );
    let record = sandbox.state_dir().join("service.json");
    let start = {
        let manager = sandbox.manager();
        tokio::spawn(async move { manager.ensure().await })
    };
    // The kit's record carries the spawn id; the spawner's has none.
    let daemon = wait_for("the daemon to name itself", WAIT, || {
        let record = record.clone();
        async move {
            spfs_autostart_protocol::record::ServiceRecord::read(&record)
                .filter(|r| r.spawn_id.is_some())
                .map(|r| r.pid)
        }
    })
    .await;
    assert_eq!(sandbox.pids().len(), 2, "the waiting parent and its daemon");
    start.abort();
    assert!(start.await.is_err_and(|e| e.is_cancelled()));
    spfs_autostart::finish_abandoned_starts();
    wait_gone(daemon, "the daemon of the abandoned start").await;
    assert!(
        sandbox.pids().is_empty(),
        "left behind: {:?}",
        sandbox.pids()
    );
    assert!(
        !spfs_autostart_protocol::lock::is_held(&sandbox.state_dir().join("instance.lock"))
            .unwrap()
    );
}

/// `Control.Shutdown` with `unless_leased` (a version restart's ask) is
/// refused with FAILED_PRECONDITION by a kit service holding a lease,
/// which serves on; once the lease is gone it is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kit_service_refuses_a_shutdown_unless_leased_while_it_holds_a_lease() {
    use spfs_autostart::proto::control::{ShutdownRequest, control_client::ControlClient};
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    let mut runtime = Sleeper::start();
    let lease = manager
        .acquire(runtime.pid(), "runtime")
        .await
        .expect("lease");
    let ask = || async {
        let channel = manager.channel().await.expect("channel");
        ControlClient::new(channel)
            .shutdown(ShutdownRequest {
                reason: "restart".into(),
                unless_leased: true,
                ..Default::default()
            })
            .await
    };
    let refused = ask().await.expect_err("refused while leased");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused}");
    let now = status(&manager).await;
    assert_eq!(now.state, spfs_autostart::State::Running, "{now:?}");
    assert_eq!(now.pid, Some(pid));
    assert!(manager.release(lease.id).await.expect("release"));
    ask().await.expect("taken once no lease is held");
    wait_gone(pid, "the service, shut down").await;
    runtime.end();
}

/// A kit service still in its set-up (it holds the lock and has named
/// itself, and does not serve yet) is one: `stop` sends it the kit's steps
/// (SIGTERM first), not a plain service's `stop_sequence` (SIGINT, then
/// SIGTERM, which it took for a second signal). Its record had no version,
/// which is what marks a kit's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kit_service_in_its_set_up_is_stopped_as_a_kit_service() {
    let mut sandbox = kit_sandbox(0, &[]);
    sandbox.set("stop_timeout_secs", 1);
    let mut service = stuck_in_its_set_up(&sandbox).await;
    let manager = sandbox.manager();
    let now = status(&manager).await;
    assert!(now.managed, "{now:?}");
    manager.stop().await.expect("stop");
    service.wait().unwrap();
    let log = sandbox.log();
    assert!(log.contains("with SIGTERM: stop asked by"), "{log}");
    assert!(!log.contains("with SIGINT"), "{log}");
}

/// A kit service started as launchd would (by nobody who writes a record
/// for it, its output to the log) that never gets past its set-up, once
/// it has named itself in the record.
async fn stuck_in_its_set_up(sandbox: &Sandbox) -> std::process::Child {
    std::fs::create_dir_all(sandbox.log_dir()).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(sandbox.log_file())
        .unwrap();
    let service = sandbox
        .command(reference_service())
        .arg("--hang-after-lock")
        .env("SPFS_AUTOSTART_STATE_DIR", sandbox.state_dir())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let record = sandbox.state_dir().join("service.json");
    wait_for("the service to name itself", WAIT, || {
        let named = spfs_autostart_protocol::record::ServiceRecord::read(&record)
            .is_some_and(|r| r.pid == service.id());
        async move { named.then_some(()) }
    })
    .await;
    service
}

/// Past its ready timeout, a service still in its set-up is unresponsive,
/// and said to be so: it "does not answer", not "does not answer yet", as
/// one still starting would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_stuck_past_its_ready_timeout_is_unresponsive_without_a_yet() {
    let mut sandbox = kit_sandbox(0, &[]);
    sandbox.set("ready_timeout_secs", 1);
    let mut service = stuck_in_its_set_up(&sandbox).await;
    // Nothing to connect to: no answer of any kind says more.
    std::fs::remove_file(sandbox.state_dir().join("service.sock")).unwrap();
    let manager = sandbox.manager();
    let now = wait_for("the ready timeout to pass", WAIT, || {
        let manager = &manager;
        async move {
            let now = status(manager).await;
            (now.state == spfs_autostart::State::Unresponsive).then_some(now)
        }
    })
    .await;
    let detail = now.detail.unwrap_or_default();
    assert!(detail.contains("does not answer"), "{detail}");
    assert!(!detail.contains("yet"), "{detail}");
    service.kill().unwrap();
    service.wait().unwrap();
}

/// A service started as launchd or systemd would, finding `instance.lock`
/// held by a process a dead service left (its record names a dead pid):
/// it fails, naming the leftover holders, so the job is relaunched once
/// they are gone. It exited 0 ("already running as pid N", a dead pid), so
/// nothing was relaunched and nothing served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_started_by_a_job_fails_on_a_lock_only_leftovers_hold() {
    use std::os::unix::fs::DirBuilderExt;
    let sandbox = kit_sandbox(0, &[]);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(sandbox.state_dir())
        .unwrap();
    let lock = sandbox.state_dir().join("instance.lock");
    // The dead service: a process that has exited.
    let mut dead = Sleeper::start();
    let (pid, start_time) = (
        dead.pid(),
        spfs_autostart_protocol::sys::process_start_time(dead.pid()),
    );
    dead.end();
    spfs_autostart_protocol::record::ServiceRecord {
        pid,
        start_time,
        program: reference_service().display().to_string(),
        version: Some("0.1.0".into()),
        endpoint: String::new(),
        started_at_unix_ms: 1,
        phase: spfs_autostart_protocol::record::Phase::Running,
        socket_activated: false,
        spawn_id: None,
    }
    .write(&sandbox.state_dir().join("service.json"))
    .unwrap();
    // What it left holding the lock.
    let mut leftover = Sleeper::spawn(
        std::process::Command::new("flock")
            .arg("--no-fork")
            .arg(&lock)
            .arg("sleep"),
    );
    wait_for("the leftover to hold the lock", WAIT, || {
        let held = spfs_autostart_protocol::lock::is_held(&lock).unwrap();
        async move { held.then_some(()) }
    })
    .await;
    let out = sandbox
        .command(reference_service())
        .env("SPFS_AUTOSTART_STATE_DIR", sandbox.state_dir())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("no running service is recorded"), "{said}");
    assert!(!said.contains("already running"), "{said}");
    leftover.end();
}

/// A service whose environment from its spawner is wrong (here an idle
/// timeout that is no number) says why on the readiness pipe, so `ensure`
/// reports it instead of a bare exit; the pipe was left open and
/// inheritable, and nothing was said on it.
#[test]
fn a_service_that_cannot_read_its_environment_says_why_on_the_readiness_pipe() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let sandbox = kit_sandbox(0, &[]);
    let (read, write) = nix::unistd::pipe().unwrap();
    let out = sandbox
        .command(reference_service())
        .env("SPFS_AUTOSTART_STATE_DIR", sandbox.state_dir())
        .env("SPFS_AUTOSTART_IDLE_TIMEOUT_SECS", "soon")
        .env("SPFS_AUTOSTART_READY_FD", write.as_raw_fd().to_string())
        .output()
        .unwrap();
    drop(write);
    assert!(!out.status.success());
    let mut said = String::new();
    std::fs::File::from(read).read_to_string(&mut said).unwrap();
    assert!(
        said.starts_with("FAILED environment variable SPFS_AUTOSTART_IDLE_TIMEOUT_SECS"),
        "{said:?}"
    );
}

/// A config whose state dir was never made meets a service of another
/// version at its endpoint (found by the first look, which makes
/// nothing): the restart makes the state dir its locks live in, and the
/// answer is about the version, not a lock file that cannot be opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_restart_makes_the_state_dir_it_needs() {
    let port = spfs_autostart_test_support::free_port();
    let sandbox = kit_sandbox(0, &[]).with("endpoint", format!("tcp://127.0.0.1:{port}"));
    let manager = sandbox.manager();
    let first = manager.ensure().await.expect("ensure").pid.expect("pid");
    let mut config = sandbox.client_config();
    config.state_dir = Some(sandbox.root().join("never-made"));
    config.expected_version = Some("9.9.9".into());
    let other = ServiceManager::new(config).expect("manager");
    let err = other
        .ensure()
        .await
        .expect_err("the wrong version, even fresh");
    assert_eq!(err.kind(), ErrorKind::VersionMismatch, "{err}");
    assert!(sandbox.root().join("never-made").is_dir());
    wait_gone(first, "the restarted service to go").await;
    other.stop().await.expect("stop");
}
