//! `ServiceManager::watch()` against the real reference service: a full
//! start/stop cycle in order, and a `kill -9` seen as a stop.

mod common;

use std::time::Duration;

use common::{Sandbox, WAIT, wait_gone};
use spfs_autostart::{State, StatusWatcher};

/// Read updates until one is in `target`; every state seen on the way is
/// appended to `seen`. Each update must arrive within the bound.
async fn until(watcher: &mut StatusWatcher, target: State, seen: &mut Vec<State>) {
    loop {
        let update = tokio::time::timeout(WAIT, watcher.next())
            .await
            .unwrap_or_else(|_| panic!("no {target} within {WAIT:?}; seen so far: {seen:?}"))
            .unwrap_or_else(|| panic!("the watch feed ended; seen so far: {seen:?}"));
        if seen.last() != Some(&update.state) {
            seen.push(update.state);
        }
        if update.state == target {
            return;
        }
    }
}

/// Whether `wanted` occurs in `seen` in order (not necessarily adjacent).
fn is_subsequence(wanted: &[State], seen: &[State]) -> bool {
    let mut it = seen.iter();
    wanted.iter().all(|w| it.any(|s| s == w))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_a_full_cycle_in_order() {
    let sandbox = Sandbox::new(0, &["--start-delay-ms", "300"]);
    let manager = sandbox.manager();
    let mut watcher = manager.watch().expect("watch");
    let first = tokio::time::timeout(WAIT, watcher.next())
        .await
        .expect("a first update")
        .expect("feed open");
    assert_eq!(
        first.state,
        State::Stopped,
        "the first update is the current status"
    );
    let mut seen = vec![first.state];

    let started = manager.ensure().await.expect("ensure");
    until(&mut watcher, State::Running, &mut seen).await;
    manager.stop().await.expect("stop");
    until(&mut watcher, State::Stopped, &mut seen).await;
    assert!(
        is_subsequence(
            &[
                State::Stopped,
                State::Running,
                State::Stopping,
                State::Stopped
            ],
            &seen
        ),
        "out of order: {seen:?}"
    );
    // Only the states of a start and a stop, nothing else.
    assert!(
        seen.iter().all(|s| matches!(
            s,
            State::Stopped | State::Starting | State::Running | State::Stopping
        )),
        "unexpected states: {seen:?}"
    );
    if let Some(pid) = started.pid {
        wait_gone(pid, "the stopped service").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_kill_9_as_stopped() {
    let sandbox = Sandbox::new(0, &[]);
    let manager = sandbox.manager();
    let mut watcher = manager.watch().expect("watch");
    let mut seen = Vec::new();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    until(&mut watcher, State::Running, &mut seen).await;
    // Let the watcher settle on the service's Watch stream.
    tokio::time::sleep(Duration::from_millis(200)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    until(&mut watcher, State::Stopped, &mut seen).await;
    // Straight from running to stopped: a killed service is not "stopping",
    // and a dead one is not "unresponsive".
    assert!(
        seen.ends_with(&[State::Running, State::Stopped]),
        "{seen:?}"
    );
    wait_gone(pid, "the killed service").await;
}
