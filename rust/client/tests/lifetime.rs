//! How long a kit service lives: idle exit, leases that follow processes,
//! calls in flight, and bad lease input. Runs the real reference service
//! (`cargo build --bins` first).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Client, Sleeper, WAIT, alive, kit_sandbox, status, wait_gone};
use spfs_autostart::proto::vfs::{
    MountRequest, UnmountRequest, vfs_service_client::VfsServiceClient,
};
use spfs_autostart::{Config, ErrorKind, State};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_service_exits_by_itself() {
    let sandbox = kit_sandbox(1, &[]);
    let manager = sandbox.manager();
    let started = manager.ensure().await.expect("ensure");
    let pid = started.pid.expect("a kit service reports its pid");
    // Idle (no lease, no call): the countdown shows, at most the timeout.
    let now = status(&manager).await;
    if now.state == State::Running {
        let left = now
            .idle_exit_in_secs
            .expect("an idle service shows the time left");
        assert!(left <= 1, "idle_exit_in_secs {left} > the 1 s idle timeout");
    }
    wait_gone(pid, "the idle service to exit").await;
    assert_eq!(status(&manager).await.state, State::Stopped);
    let log = sandbox.log();
    assert!(
        log.contains("shutting down: idle for 1s with no lease and no call in flight"),
        "the log does not say the service exited for idleness:\n{log}"
    );
    assert!(
        log.contains("stopped"),
        "no orderly stop in the log:\n{log}"
    );
    assert!(!log.contains("ERROR"), "an error was logged:\n{log}");
    assert!(
        sandbox.pids().is_empty(),
        "processes left: {:?}",
        sandbox.pids()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_holds_the_service_until_its_process_exits() {
    let sandbox = kit_sandbox(1, &[]);
    let manager = sandbox.manager();
    let mut holder = Sleeper::start();
    let lease = manager
        .acquire(holder.pid(), "test")
        .await
        .expect("acquire");
    assert_eq!((lease.pid, lease.label.as_str()), (holder.pid(), "test"));
    let pid = status(&manager).await.pid.expect("service pid");

    // Well past the idle timeout, the lease still holds it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(alive(pid), "the service exited while a lease was live");
    let now = status(&manager).await;
    assert_eq!(now.state, State::Running);
    assert_eq!(now.leases, vec![lease.clone()]);
    assert_eq!(
        now.idle_exit_in_secs, None,
        "a leased service has no idle deadline"
    );

    // The holder dies: the service notices by itself, drops the lease, and
    // goes idle.
    holder.end();
    wait_gone(pid, "the service to exit after its lease holder died").await;
    let log = sandbox.log();
    let dropped = format!("lease {} dropped: process {} exited", lease.id, lease.pid);
    assert!(log.contains(&dropped), "no {dropped:?} in the log:\n{log}");
    assert!(log.contains("shutting down: idle for 1s"), "{log}");
    assert!(!log.contains("ERROR"), "an error was logged:\n{log}");
}

/// The log tells a lease's whole life: taken, then released by its holder
/// (not only dropped when the holder exits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_lease_is_logged_as_released() {
    let sandbox = kit_sandbox(60, &[]);
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    let mut holder = Sleeper::start();
    let lease = manager.acquire(holder.pid(), "job").await.expect("acquire");
    assert!(manager.release(lease.id).await.expect("release"));
    holder.end();
    manager.stop().await.expect("stop");
    let log = sandbox.log();
    let taken = format!("lease {} taken for pid {} (job)", lease.id, lease.pid);
    let released = format!("lease {} released", lease.id);
    assert!(log.contains(&taken), "no {taken:?} in the log:\n{log}");
    assert!(
        log.contains(&released),
        "no {released:?} in the log:\n{log}"
    );
    assert!(
        !log.contains("dropped"),
        "a released lease was dropped again:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_in_flight_holds_the_service() {
    let sandbox = kit_sandbox(1, &["--slow-calls-ms", "3000"]);
    let manager = sandbox.manager();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    let channel = manager.channel().await.expect("channel");
    let reply = VfsServiceClient::new(channel)
        .unmount(UnmountRequest { root_pid: 0 })
        .await
        .expect("a 3 s call outlives the 1 s idle timeout");
    assert!(!reply.into_inner().was_mounted);
    // Graceful shutdown would let the call finish too, so the proof is that
    // no shutdown was decided while it ran.
    let log = sandbox.log();
    assert!(
        !log.contains("shutting down"),
        "the service decided to exit during a call in flight:\n{log}"
    );
    // Afterwards, idle again: it exits.
    wait_gone(pid, "the service to exit after the call").await;
    assert!(
        sandbox.log().contains("shutting down: idle for 1s"),
        "{}",
        sandbox.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_watch_stream_does_not_keep_the_service_alive() {
    let sandbox = kit_sandbox(1, &[]);
    let manager = sandbox.manager();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    let mut watcher = manager.watch().expect("watch");
    // The watcher is on the service's Watch stream (and polls status) while
    // the service goes idle and exits.
    let first = tokio::time::timeout(WAIT, watcher.next())
        .await
        .expect("an update");
    assert!(first.is_some());
    wait_gone(pid, "the watched idle service to exit").await;
    assert!(
        sandbox.log().contains("shutting down: idle for 1s"),
        "{}",
        sandbox.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_takes_a_lease_for_the_root_pid() {
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    let holder = Sleeper::start();
    let service = manager.ensure().await.expect("ensure").pid.expect("pid");
    // The harness finds the service (its Drop kills what it finds).
    assert_eq!(sandbox.pids(), vec![service]);
    let channel = manager.channel().await.expect("channel");
    VfsServiceClient::new(channel)
        .mount(MountRequest {
            root_pid: holder.pid(),
            env_spec: "test-env".into(),
            editable: false,
            runtime_name: String::new(),
            repositories: Vec::new(),
        })
        .await
        .expect("mount");
    let now = status(&manager).await;
    assert_eq!(now.leases.len(), 1, "{:?}", now.leases);
    assert_eq!(now.leases[0].pid, holder.pid());
    assert!(
        now.leases[0].label.contains("test-env"),
        "{:?}",
        now.leases[0]
    );
    manager.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_for_a_missing_process_is_refused() {
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    // Far above any pid_max, below i32::MAX: no such process can exist.
    let missing = 2_000_000_000;
    for pid in [missing, 0, u32::MAX] {
        let err = manager.acquire(pid, "ghost").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{pid}: {err}");
    }
    // Refused before anything was started.
    assert!(sandbox.pids().is_empty(), "{:?}", sandbox.pids());
    let err = manager.acquire(missing, "ghost").await.unwrap_err();
    assert!(
        err.message()
            .contains(&format!("no process {missing} exists")),
        "unclear message: {err}"
    );
    // A reaped child's pid is just as dead.
    let mut gone = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let gone_pid = gone.id();
    gone.wait().expect("reap");
    if !alive(gone_pid) {
        let err = manager.acquire(gone_pid, "ghost").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    }
    assert!(status(&manager).await.leases.is_empty());
    manager.stop().await.expect("stop");
}

/// A lease on the service's own pid would keep it up for good: refused, and
/// the service still exits when idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_for_the_service_itself_is_refused() {
    let sandbox = kit_sandbox(1, &[]);
    let manager = sandbox.manager();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    let err = manager.acquire(pid, "itself").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.message().contains("the service itself"), "{err}");
    assert!(err.message().contains("idle_timeout_secs"), "{err}");
    wait_gone(pid, "the idle service").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_for_another_users_process_is_refused() {
    use std::os::unix::process::CommandExt;
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    // As root, a process of `nobody`; otherwise init, which is root's.
    let mut other = nix::unistd::geteuid()
        .is_root()
        .then(|| Sleeper::spawn(std::process::Command::new("sleep").uid(65534).gid(65534)));
    let pid = other.as_ref().map_or(1, Sleeper::pid);
    let err = manager.acquire(pid, "not mine").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(
        err.message().contains("belongs to another user"),
        "unclear message: {err}"
    );
    assert!(status(&manager).await.leases.is_empty());
    if let Some(other) = other.as_mut() {
        other.end();
    }
    manager.stop().await.expect("stop");
}

#[test]
fn absurd_idle_timeout_is_a_config_error() {
    let mut config = Config::defaults();
    let err = config
        .apply_toml(
            "idle_timeout_secs = 1000000000\n",
            Path::new("/test/config.toml"),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let text = err.to_string();
    assert!(
        text.contains("idle_timeout_secs")
            && text.contains("use at most 2592000")
            && text.contains("0 means never"),
        "unclear message: {text}"
    );
    let mut config = Config::defaults();
    let err = config.set_idle_timeout_secs(1_000_000_000).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
}

/// What an `always` agent meets after an on-demand start: a second instance
/// for the same state dir exits 0 (so launchd and systemd do not relaunch it
/// in a loop) and says which pid serves; the first one is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_defers_to_the_running_one_and_exits_0() {
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    let pid = manager
        .ensure()
        .await
        .expect("ensure")
        .pid
        .expect("service pid");
    let mut second = sandbox.command(common::reference_service());
    second
        .env("SPFS_AUTOSTART_STATE_DIR", sandbox.state_dir())
        .env("SPFS_AUTOSTART_LOG_DIR", sandbox.log_dir())
        .env("SPFS_AUTOSTART_CONFIG", "")
        .env("XDG_CONFIG_HOME", sandbox.root().join("config"))
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID");
    // A hang is killed by the sandbox's Drop (it finds the state dir in the
    // environment) once the timeout fails the test.
    let output = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || second.output()))
        .await
        .expect("the second instance did not exit")
        .expect("join")
        .expect("run the second instance");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: {stderr}", output.status);
    assert!(
        stderr.contains(&format!("already running as pid {pid}")),
        "{stderr}"
    );
    assert!(alive(pid), "the first instance was disturbed");
    assert_eq!(status(&manager).await.pid, Some(pid));
    manager.stop().await.expect("stop");
}

/// An open health watch only looks, as Control's does: it does not hold up
/// a stop, which ends once the calls that do work have finished, not at
/// the drain limit. It hears NOT_SERVING once the service shuts down (it
/// heard SERVING until the connection closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_health_watch_hears_not_serving_and_does_not_hold_up_the_stop() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    let channel = manager.channel().await.expect("channel");
    let mut health = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health watch")
        .into_inner();
    assert!(health.message().await.expect("first status").is_some());
    manager.stop().await.expect("stop");
    assert!(!alive(pid));
    let mut heard = Vec::new();
    while let Ok(Some(update)) = health.message().await {
        heard.push(update.status);
    }
    assert_eq!(heard, [ServingStatus::NotServing as i32]);
    assert!(
        !sandbox.log().contains("calls still open"),
        "the stop waited out the drain limit:\n{}",
        sandbox.log()
    );
}

/// A service out of file descriptors refuses a lease it could not follow,
/// saying so; it never grants one and then drops it as if its holder had
/// exited (each lease holds one descriptor while its holder lives).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_the_service_cannot_follow_is_refused_never_granted_and_dropped() {
    let sandbox = few_descriptors_sandbox();
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    let mut holder = Sleeper::start();
    let (mut granted, mut refused) = (Vec::new(), Vec::new());
    for n in 0..60 {
        match manager.acquire(holder.pid(), &format!("lease {n}")).await {
            Ok(lease) => granted.push(lease.id),
            Err(e) => refused.push(e.to_string()),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held: Vec<u64> = manager
        .status()
        .await
        .expect("status")
        .leases
        .iter()
        .map(|l| l.id)
        .collect();
    holder.end();
    manager.stop().await.expect("stop");
    assert!(!granted.is_empty(), "some leases fit: {refused:?}");
    assert_eq!(held, granted, "every lease granted is still held");
    assert!(
        !refused.is_empty(),
        "the limit was reached ({} granted)",
        granted.len()
    );
    assert!(
        refused
            .iter()
            .all(|e| e.contains("no file descriptors left")),
        "{refused:?}"
    );
}

/// A kit sandbox whose service may open only 48 descriptors (a wrapper
/// sets `ulimit -n`).
fn few_descriptors_sandbox() -> common::Sandbox {
    use std::os::unix::fs::PermissionsExt;
    let mut sandbox = kit_sandbox(0, &[]);
    let wrapper = sandbox.root().join("few-descriptors.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nulimit -n 48\nexec '{}' \"$@\"\n",
            common::reference_service().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    sandbox.set("program", wrapper.display().to_string());
    sandbox
}

/// A released lease gives back what following its holder took: a long-lived
/// host that takes and releases a lease per job never runs the service out
/// of descriptors while the holder lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_lease_gives_back_its_descriptor() {
    let sandbox = few_descriptors_sandbox();
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    let mut holder = Sleeper::start();
    let mut failed = None;
    for n in 0..100 {
        match manager.acquire(holder.pid(), &format!("job {n}")).await {
            Ok(lease) => assert!(manager.release(lease.id).await.expect("release")),
            Err(e) => {
                failed = Some(format!("job {n}: {e}"));
                break;
            }
        }
    }
    holder.end();
    manager.stop().await.expect("stop");
    assert_eq!(failed, None);
}

/// A service that drops `Kit::serve`'s future (a `select!` another branch
/// won) and cleans up a while before it exits: meanwhile its record says
/// stopping and its socket is gone, so `status` reads it as stopping and
/// `ensure` waits for it. It said `running` with nothing answering, which
/// read as a hung service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_drops_serve_reads_as_stopping_while_it_cleans_up() {
    let mut sandbox = kit_sandbox(0, &["--drop-serve-after-ms", "300"]);
    sandbox.set("stop_timeout_secs", 1);
    let manager = sandbox.manager();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    common::wait_for("the service to drop serve", WAIT, || {
        let log = sandbox.log();
        async move { log.contains("no longer serving; cleaning up").then_some(()) }
    })
    .await;
    assert!(
        !sandbox.state_dir().join("service.sock").exists(),
        "the socket is left"
    );
    let now = status(&manager).await;
    assert_eq!(now.state, spfs_autostart::State::Stopping, "{now:?}");
    assert_eq!(now.pid, Some(pid));
    manager.stop().await.expect("stop");
    assert!(!alive(pid));
}

/// A kit service's start time (`Control.Info`) is its process's, its own
/// set-up before `Kit::start` included: clients that cannot see the process
/// show the same uptime as those that measure it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kit_services_start_time_is_its_processs() {
    use spfs_autostart::proto::control::{InfoRequest, control_client::ControlClient};
    let sandbox = kit_sandbox(60, &["--start-delay-ms", "1500"]);
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    let info = ControlClient::new(manager.channel().await.expect("channel"))
        .info(InfoRequest { touch: false })
        .await
        .expect("Control.Info")
        .into_inner();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let up = now.saturating_sub(info.started_at_unix_ms);
    assert!(
        up >= 1500,
        "up {up} ms: counted from Kit::start, after its 1.5 s set-up"
    );
    manager.stop().await.expect("stop");
}

/// A lease's label is any caller's text: the service keeps it as one plain
/// line, so neither a `status` on a terminal nor the service log carries
/// its escapes or its newlines (a forged line, a retitled terminal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leases_label_is_kept_as_one_plain_line() {
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    let mut holder = Sleeper::start();
    let raw = "x\u{1b}]0;PWNED\u{7}\nstate      stopped";
    let plain = r"x\u{1b}]0;PWNED\u{7}\nstate      stopped";
    let lease = manager.acquire(holder.pid(), raw).await.expect("acquire");
    assert_eq!(lease.label, plain);
    let now = status(&manager).await;
    assert_eq!(now.leases[0].label, plain);
    let log = sandbox.log();
    assert!(
        log.contains(&format!("taken for pid {} ({plain})", holder.pid())),
        "{log}"
    );
    assert!(!log.contains('\u{1b}') && !log.contains('\u{7}'), "{log}");
    holder.end();
    manager.stop().await.expect("stop");
}
