//! The library against the stand-in in upstream mode (`spfs-reference-service
//! --plain service MOUNTPOINT`), which behaves as the spfs-fuse-macos SPFS
//! users run (docs/upstream.md).

mod common;

use std::path::PathBuf;

use common::*;
use spfs_autostart::proto::vfs::{
    MountRequest, UnmountRequest, vfs_service_client::VfsServiceClient,
};
use spfs_autostart::{ErrorKind, Mount, State};
use spfs_autostart_test_support::{free_port, mount_marker};

/// A sandbox whose service is the stand-in in upstream mode on a free
/// loopback port, told nothing but the endpoint in the config.
fn upstream() -> (Sandbox, u16, PathBuf) {
    let mut sandbox = kit_sandbox(0, &[]);
    let port = free_port();
    let mnt = sandbox.root().join("mnt");
    std::fs::create_dir(&mnt).expect("mountpoint");
    sandbox
        .set(
            "args",
            vec![
                "--plain".into(),
                "service".into(),
                mnt.display().to_string(),
            ],
        )
        .set("endpoint", format!("tcp://127.0.0.1:{port}"));
    (sandbox, port, mnt)
}

#[tokio::test]
async fn ensure_with_only_the_endpoint_configured_reaches_the_plain_service() {
    let (sandbox, port, mnt) = upstream();
    let manager = sandbox.manager();
    let status = manager.ensure().await.expect("ensure");
    assert_eq!(status.state, State::Running);
    assert!(!status.managed);
    assert_eq!(status.endpoint, format!("tcp://127.0.0.1:{port}"));
    assert_eq!(sandbox.pids().len(), 1);
    assert!(mount_marker(&mnt).exists(), "{}", sandbox.log());
}

#[tokio::test]
async fn status_lists_a_mount_made_over_the_ensure_channel_and_drops_it_after_unmount() {
    let (sandbox, _port, _mnt) = upstream();
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    assert!(status(&manager).await.mounts.is_empty());
    // A live root process: a mount whose root has exited is cleaned up.
    let pid = std::process::id();
    let mut vfs = VfsServiceClient::new(manager.channel().await.expect("channel"));
    vfs.mount(MountRequest {
        root_pid: pid,
        env_spec: "platform/base".into(),
        editable: false,
        runtime_name: format!("rt-{pid}"),
        repositories: Vec::new(),
    })
    .await
    .expect("mount");
    assert_eq!(
        status(&manager).await.mounts,
        vec![Mount {
            runtime_name: format!("rt-{pid}"),
            root_pid: pid,
            editable: false,
            env_spec: "platform/base".into(),
        }]
    );
    let reply = vfs
        .unmount(UnmountRequest { root_pid: pid })
        .await
        .expect("unmount");
    assert!(reply.into_inner().was_mounted);
    assert!(status(&manager).await.mounts.is_empty());
}

#[tokio::test]
async fn ensure_answers_without_asking_for_mounts() {
    // ensure runs before every `spfs shell`: it stays one RPC, so its answer
    // has no mounts even when there are some.
    let (sandbox, _port, _mnt) = upstream();
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    VfsServiceClient::new(manager.channel().await.expect("channel"))
        .mount(MountRequest {
            root_pid: std::process::id(),
            env_spec: "-".into(),
            ..Default::default()
        })
        .await
        .expect("mount");
    assert!(manager.ensure().await.expect("ensure").mounts.is_empty());
    assert_eq!(status(&manager).await.mounts.len(), 1);
}

#[tokio::test]
async fn stop_unmounts_and_ends_the_upstream_service_by_its_graceful_path() {
    let (mut sandbox, _port, mnt) = upstream();
    sandbox.set("stop_timeout_secs", 20);
    let manager = sandbox.manager();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    let outcome = manager.stop().await.expect("stop");
    assert_graceful(&outcome);
    wait_gone(pid, "the stopped service").await;
    assert!(!mount_marker(&mnt).exists(), "{}", sandbox.log());
    assert!(sandbox.log().contains("Shutdown requested"));
    assert!(sandbox.log().contains("Service stopped"));
}

/// A plain service logs no reason for a stop (its `Shutdown` carries none)
/// and no time: the log says each step spfs-autostart takes, when, and why,
/// between the service's own lines.
#[tokio::test]
async fn the_log_says_each_step_of_a_plain_services_stop_and_why() {
    let (mut sandbox, _port, _mnt) = upstream();
    sandbox.set("stop_timeout_secs", 20);
    let manager = sandbox.manager();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    manager.stop().await.expect("stop");
    let log = sandbox.log();
    let marker = |step: &str, why: &str| {
        log.lines()
            .find(|l| {
                l.starts_with(&format!("--- spfs-autostart: stopping pid {pid} at "))
                    && l.ends_with(&format!(" with {step}: {why} ---"))
            })
            .unwrap_or_else(|| panic!("no line for {step}:\n{log}"))
    };
    let asked = format!(
        "stop asked by {}",
        spfs_autostart_test_support::this_program()
    );
    let order = [
        marker("the shutdown request", &asked),
        "Shutdown requested",
        marker("SIGINT", "still running 250ms after the shutdown request"),
        "Service stopped",
    ]
    .map(|what| log.find(what).expect(what));
    assert!(order.is_sorted(), "{order:?} out of order:\n{log}");
}

/// A plain service cannot say it is shutting down; while a client stops it,
/// a `watch` elsewhere (a menu bar) sees it stopping, not a service that
/// died, and `ensure` does not take it for ready. Here it ignores SIGTERM
/// (a wrapper sets that before the exec), so the stop lasts the 2 s until
/// its SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_service_being_stopped_is_seen_as_stopping_by_others() {
    let sandbox = slow_to_stop();
    let manager = sandbox.manager();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    let elsewhere = sandbox.manager();
    let mut watcher = elsewhere.watch().expect("watch");
    let mut next = async || {
        tokio::time::timeout(WAIT, watcher.next())
            .await
            .expect("an update")
            .expect("the feed is open")
            .expect("a status")
            .state
    };
    assert_eq!(next().await, State::Running);
    let stop = tokio::spawn(async move { manager.stop().await });
    assert_eq!(next().await, State::Stopping);
    let status = elsewhere.status().await.expect("status");
    assert_eq!(status.state, State::Stopping, "{status:?}");
    assert_eq!(status.pid, Some(pid));
    assert_eq!(next().await, State::Stopped);
    let outcome = stop.await.unwrap().expect("stop");
    assert!(
        matches!(outcome, spfs_autostart::StopOutcome::Stopped { pid: Some(p), .. } if p == pid),
        "{outcome:?}"
    );
    // Once stopped, nothing says stopping any more.
    assert!(!sandbox.state_dir().join("stopping").exists());
    wait_gone(pid, "the stopped service").await;
}

/// An upstream sandbox whose service ignores SIGTERM (a wrapper sets that
/// before the exec), with `stop_sequence = ["SIGTERM", "SIGKILL"]` and 2 s
/// for each step: a stop lasts the 2 s until its SIGKILL.
fn slow_to_stop() -> Sandbox {
    use std::os::unix::fs::PermissionsExt;
    let (mut sandbox, _port, _mnt) = upstream();
    let wrapper = sandbox.root().join("ignores-term.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ntrap '' TERM\nexec '{}' \"$@\"\n",
            spfs_autostart_test_support::reference_service().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    sandbox
        .set("program", wrapper.display().to_string())
        .set("stop_sequence", vec!["SIGTERM", "SIGKILL"])
        .set("stop_timeout_secs", 2);
    sandbox
}

/// A plain service that closes its listener at once on SIGINT and then
/// takes a while to exit (spfs-fuse-macos unmounting) is stopping all
/// along for a watch elsewhere (the menu bar): it used to read
/// unresponsive from its listener's going until its exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_service_slow_to_exit_after_its_listener_closed_reads_stopping() {
    use std::os::unix::fs::PermissionsExt;
    let (mut sandbox, _port, _mnt) = upstream();
    let wrapper = sandbox.root().join("slow-exit.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/bash\n'{}' \"$@\" &\nchild=$!\n\
             trap 'kill -9 $child; sleep 2; exit 0' INT\nwait $child\n",
            spfs_autostart_test_support::reference_service().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    sandbox
        .set("program", wrapper.display().to_string())
        .set("stop_timeout_secs", 5);
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    let elsewhere = sandbox.manager();
    let mut watcher = elsewhere.watch().expect("watch");
    let mut states = Vec::new();
    let stop = tokio::spawn(async move { manager.stop().await });
    while states.last() != Some(&State::Stopped) {
        let next = tokio::time::timeout(WAIT, watcher.next())
            .await
            .expect("an update")
            .expect("the feed is open")
            .expect("a status");
        states.push(next.state);
    }
    stop.await.unwrap().expect("stop");
    assert!(states.contains(&State::Stopping), "{states:?}");
    assert!(!states.contains(&State::Unresponsive), "{states:?}");
}

/// A long-lived manager (the app, a library host) keeps the channel its
/// last `ensure` used. A plain service cannot say who it is, so an answer
/// over that channel counts only from the process it reached, while no
/// stop of it runs: an `ensure` during another process's stop waits for
/// the stop and starts a fresh service, as a fresh `ensure` does. (It
/// used to return the service being stopped as running.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_ensure_does_not_take_a_plain_service_being_stopped_for_ready() {
    let sandbox = slow_to_stop();
    let warm = sandbox.manager();
    let old = warm.ensure().await.expect("ensure").pid.expect("pid");
    let stopper = sandbox.manager();
    let stop = tokio::spawn(async move { stopper.stop().await });
    let mark = sandbox.state_dir().join("stopping");
    wait_for("the stop to begin", WAIT, || async {
        mark.exists().then_some(())
    })
    .await;
    let status = warm.ensure().await.expect("ensure during the stop");
    let outcome = stop.await.unwrap().expect("stop");
    assert!(
        matches!(outcome, spfs_autostart::StopOutcome::Stopped { pid: Some(p), .. } if p == old),
        "{outcome:?}"
    );
    let new = status.pid.expect("pid");
    assert_ne!(new, old, "not the service being stopped: {status:?}");
    assert!(alive(new), "a fresh service serves");
    warm.stop().await.expect("stop");
}

/// After the service a long-lived manager reached died, another program
/// took its port: that manager's next `ensure` names the conflict, as a
/// fresh one does, instead of answering over its old channel that the
/// service runs (and handing that listener to spfs for `Mount`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_ensure_does_not_use_a_listener_that_took_the_port_of_a_dead_service() {
    let (sandbox, port, mnt) = upstream();
    let warm = sandbox.manager();
    let old = warm.ensure().await.expect("ensure").pid.expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(old).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_gone(old, "the killed service").await;
    let impostor = sandbox.root().join("impostor");
    std::fs::copy(spfs_autostart_test_support::reference_service(), &impostor).unwrap();
    let mut other = sandbox
        .command(&impostor)
        .args(["--plain", "service", &mnt.display().to_string()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .expect("start another program on the port");
    wait_for("the other program to listen", WAIT, || async {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(drop)
    })
    .await;
    let conflict = sandbox.manager().ensure().await.expect_err("not ours");
    assert_eq!(conflict.kind(), ErrorKind::EndpointConflict, "{conflict}");
    let err = warm.ensure().await.expect_err("not ours");
    assert_eq!(err.kind(), ErrorKind::EndpointConflict, "{err}");
    assert!(err.to_string().contains("impostor"), "{err}");
    other.kill().unwrap();
    other.wait().unwrap();
}

/// The service a LaunchAgent runs (started by launchd, not by us: it holds
/// no lock) is stopped its own way by `stop_if_pid` with the pid launchd
/// reports, as `agent uninstall` does before `launchctl bootout` would end
/// it with SIGTERM and leave its mount behind: it unmounts. Any other pid
/// stops nothing, and nothing running is `None` too.
#[tokio::test]
async fn stop_if_pid_stops_the_service_launchd_runs_gracefully_and_nothing_else() {
    let (sandbox, port, mnt) = upstream();
    let mut launched = sandbox
        .command(spfs_autostart_test_support::reference_service())
        .args(["--plain", "service", &mnt.display().to_string()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .expect("start the service as launchd would");
    let manager = sandbox.manager();
    let running = wait_for("the service to answer", WAIT, || async {
        let now = manager.status().await.ok()?;
        (now.state == State::Running).then_some(now)
    })
    .await;
    assert_eq!(running.pid, Some(launched.id()), "{running:?}");
    assert!(mount_marker(&mnt).exists(), "{}", sandbox.log());

    let other = std::process::id();
    assert_eq!(manager.stop_if_pid(other).await.expect("stop_if_pid"), None);
    assert_eq!(status(&manager).await.state, State::Running);

    let outcome = manager
        .stop_if_pid(launched.id())
        .await
        .expect("stop_if_pid");
    assert_graceful(&outcome.expect("stopped"));
    let exit = launched.wait().expect("its exit");
    assert!(exit.success(), "its graceful exit: {exit:?}");
    assert!(!mount_marker(&mnt).exists(), "unmounted");
    assert_eq!(
        manager.stop_if_pid(launched.id()).await.expect("again"),
        None
    );
}

/// A lease asked of a plain service (spfs-fuse-macos has no Control
/// service): refused as unsupported, saying which services take leases, in
/// one line.
#[tokio::test]
async fn a_lease_asked_of_a_plain_service_is_unsupported_and_says_why() {
    let (sandbox, _port, _mnt) = upstream();
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    let e = manager
        .acquire(std::process::id(), "test")
        .await
        .expect_err("a plain service takes no leases");
    assert_eq!(e.kind(), spfs_autostart::ErrorKind::Unsupported, "{e}");
    let text = e.to_string();
    assert!(text.contains("embeds the spfs-autostart kit"), "{text}");
    assert!(!text.contains('\n'), "one line: {text:?}");
}

/// A `stop_sequence` of `shutdown` alone cannot end spfs-fuse-macos (its
/// `Shutdown` only unmounts): the error says so and names its graceful
/// signal first, not only SIGKILL.
#[tokio::test]
async fn a_stop_sequence_without_signals_is_told_to_add_the_graceful_one_first() {
    let (mut sandbox, _port, _mnt) = upstream();
    sandbox.set("stop_sequence", vec!["shutdown"]);
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    let e = manager
        .stop()
        .await
        .expect_err("shutdown alone leaves it running");
    assert_eq!(e.kind(), spfs_autostart::ErrorKind::Unresponsive, "{e}");
    let text = e.to_string();
    assert!(text.contains("still alive after"), "{text}");
    assert!(
        text.contains("\"SIGINT\" (spfs-fuse-macos's graceful stop), then \"SIGKILL\""),
        "{text}"
    );
}

/// A start abandoned (Ctrl-C, a host's cancelled task) while the plain
/// service is still on its way to listening, and a service that does not
/// end on its graceful signal at once: another client's `ensure` meanwhile
/// waits for the abandoned one to be ended instead of finding it serving
/// (it was, for up to a second, then killed), and then starts its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ensure_after_an_abandoned_start_never_returns_the_service_being_ended() {
    use std::os::unix::fs::PermissionsExt;
    let (mut sandbox, _port, _mnt) = upstream();
    // SIGINT, the graceful signal, comes while the script sleeps, which
    // ignores it; the service then listens at once.
    let script = sandbox.root().join("slow-to-listen.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntrap '' INT\nsleep 0.6\nexec {} \"$@\"\n",
            reference_service().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    sandbox.set("program", script.display().to_string());
    let record = sandbox.state_dir().join("service.json");
    let first = {
        let manager = sandbox.manager();
        tokio::spawn(async move { manager.ensure().await })
    };
    let abandoned = wait_for("the spawner's record", WAIT, || {
        let record = record.clone();
        async move { spfs_autostart_protocol::record::ServiceRecord::read(&record).map(|r| r.pid) }
    })
    .await;
    first.abort();
    assert!(
        first.await.is_err_and(|e| e.is_cancelled()),
        "the start was abandoned before it was ready"
    );
    let manager = sandbox.manager();
    let pid = manager
        .ensure()
        .await
        .expect("ensure after the abandoned start")
        .pid
        .expect("pid");
    assert_ne!(
        pid,
        abandoned,
        "the service being ended was returned as running:\n{}",
        sandbox.log()
    );
    spfs_autostart::finish_abandoned_starts();
    assert!(!alive(abandoned), "{}", sandbox.log());
    assert!(alive(pid), "the new service serves on:\n{}", sandbox.log());
    assert_eq!(status(&manager).await.pid, Some(pid));
    manager.stop().await.expect("stop");
}
