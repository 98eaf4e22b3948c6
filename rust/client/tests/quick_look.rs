//! The quick look (`ServiceManager::ensure_if_serving`): a serving kit
//! service found over `info.sock` as `ensure` finds it, and everything it
//! cannot settle left to `ensure`. Runs the real reference service
//! (`cargo build --bins` first).

mod common;

use std::time::Duration;

use common::{Client, kit_sandbox, status, wait_gone};
use spfs_autostart::State;
use spfs_autostart_test_support::kill_services;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serving_kit_service_is_found_as_ensure_finds_it() {
    let sandbox = kit_sandbox(0, &[]);
    let started = sandbox.manager().ensure().await.expect("ensure");
    assert!(sandbox.state_dir().join("info.sock").exists());
    // A fresh manager, as a fresh process has.
    let quick = sandbox
        .manager()
        .ensure_if_serving()
        .expect("the serving service is found by the quick look");
    let full = sandbox.manager().ensure().await.expect("ensure");
    assert_eq!(quick.state, State::Running);
    assert_eq!(quick.pid, started.pid);
    assert_eq!(
        (
            &quick.version,
            &quick.endpoint,
            &quick.log_file,
            quick.managed
        ),
        (&full.version, &full.endpoint, &full.log_file, full.managed)
    );
    assert_eq!(quick.idle_timeout_secs, full.idle_timeout_secs);
    sandbox.manager().stop().await.expect("stop");
    assert!(
        !sandbox.state_dir().join("info.sock").exists(),
        "the stopped service left its info.sock"
    );
    assert_eq!(sandbox.manager().ensure_if_serving(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_look_counts_as_use() {
    let sandbox = kit_sandbox(30, &[]);
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // `status` does not touch: the clock has run for two seconds.
    let before = status(&manager).await.idle_exit_in_secs.expect("idle");
    assert!(before <= 28, "idle exit in {before}s after 2 s of 30");
    let quick = sandbox.manager().ensure_if_serving().expect("found");
    let after = quick.idle_exit_in_secs.expect("idle");
    assert!(
        after >= 29,
        "the quick look did not restart the idle clock: {after}s"
    );
    sandbox.manager().stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_quick_look_cannot_settle_is_left_to_ensure() {
    let mut sandbox = kit_sandbox(0, &[]);
    // Nothing there, and nothing made by looking.
    assert_eq!(sandbox.manager().ensure_if_serving(), None);
    assert!(!sandbox.state_dir().exists(), "a look made the state dir");

    let pid = started(&sandbox).await;
    // Another version wanted: `ensure` decides (here, a restart).
    sandbox.set("expected_version", "9.9.9");
    assert_eq!(sandbox.manager().ensure_if_serving(), None);
    sandbox.unset("expected_version");
    assert!(sandbox.manager().ensure_if_serving().is_some());

    // Killed outright, its info.sock stays behind with nobody listening.
    kill_services(&sandbox.state_dir());
    wait_gone(pid, "the killed service").await;
    assert!(sandbox.state_dir().join("info.sock").exists());
    assert_eq!(sandbox.manager().ensure_if_serving(), None);
    let fresh = sandbox
        .manager()
        .ensure()
        .await
        .expect("ensure after a kill");
    assert_ne!(fresh.pid, Some(pid));
    sandbox.manager().stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_serving_elsewhere_or_unreachable_is_left_to_ensure() {
    let mut sandbox = kit_sandbox(0, &[]);
    sandbox.manager().ensure().await.expect("ensure");
    // The config now points elsewhere: the service serves, not there.
    let elsewhere = sandbox.root().join("elsewhere.sock");
    sandbox.set("endpoint", format!("unix://{}", elsewhere.display()));
    assert_eq!(sandbox.manager().ensure_if_serving(), None);
    sandbox.set("endpoint", "unix");
    // A client that connects and says nothing holds up nobody.
    let _silent = std::os::unix::net::UnixStream::connect(sandbox.state_dir().join("info.sock"))
        .expect("connect");
    assert!(sandbox.manager().ensure_if_serving().is_some());
    // Its socket removed (a tmp cleaner): no client can reach it.
    let socket = sandbox.state_dir().join("service.sock");
    std::fs::remove_file(&socket).unwrap();
    assert_eq!(sandbox.manager().ensure_if_serving(), None);
    // And another server of the user's listening there now: clients reach
    // that one, and the kit no longer says it serves, before its own watch
    // would notice.
    let _other = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    assert_eq!(sandbox.manager().ensure_if_serving(), None);
    kill_services(&sandbox.state_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_that_has_found_the_service_keeps_to_its_connection() {
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    let fresh = sandbox.manager();
    assert!(!fresh.is_connected());
    manager.ensure().await.expect("ensure");
    assert!(manager.is_connected());
    assert_eq!(manager.ensure_if_serving(), None);
    assert!(fresh.ensure_if_serving().is_some());
    manager.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_exits_when_idle_takes_its_info_socket_along() {
    let sandbox = kit_sandbox(1, &[]);
    let pid = started(&sandbox).await;
    assert!(sandbox.state_dir().join("info.sock").exists());
    wait_gone(pid, "the idle service to exit").await;
    assert!(!sandbox.state_dir().join("info.sock").exists());
}

/// Start the sandbox's service; its pid.
async fn started(sandbox: &spfs_autostart_test_support::Sandbox) -> u32 {
    let status = sandbox.manager().ensure().await.expect("ensure");
    status.pid.expect("a kit service reports its pid")
}
