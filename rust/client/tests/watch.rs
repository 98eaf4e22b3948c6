//! `ServiceManager::watch()` against the real reference service: a full
//! start/stop cycle in order, and a `kill -9` seen as a stop.

mod common;

use std::time::Duration;

use common::{Client, WAIT, kit_sandbox, wait_gone};
use spfs_autostart::{State, StatusWatcher};

/// The next update, which must come within the bound (`what` names it).
async fn next(
    watcher: &mut StatusWatcher,
    what: &str,
) -> spfs_autostart::Result<spfs_autostart::Status> {
    tokio::time::timeout(WAIT, watcher.next())
        .await
        .unwrap_or_else(|_| panic!("no update within {WAIT:?}: {what}"))
        .unwrap_or_else(|| panic!("the watch feed ended: {what}"))
}

/// The next update, which must be the error that the status cannot be read
/// because the state dir is open to others.
async fn next_unsafe_state_dir(watcher: &mut StatusWatcher, what: &str) {
    let err = next(watcher, what)
        .await
        .expect_err("the status of an unsafe state dir");
    assert_eq!(
        err.kind(),
        spfs_autostart::ErrorKind::PermissionDenied,
        "{err}"
    );
}

/// Read updates until one is in `target`; every state seen on the way is
/// appended to `seen`. Each update must arrive within the bound.
async fn until(watcher: &mut StatusWatcher, target: State, seen: &mut Vec<State>) {
    loop {
        let update = tokio::time::timeout(WAIT, watcher.next())
            .await
            .unwrap_or_else(|_| panic!("no {target} within {WAIT:?}; seen so far: {seen:?}"))
            .unwrap_or_else(|| panic!("the watch feed ended; seen so far: {seen:?}"))
            .unwrap_or_else(|e| panic!("the status could not be read: {e}; seen so far: {seen:?}"));
        if seen.last() != Some(&update.state) {
            seen.push(update.state);
        }
        if update.state == target {
            return;
        }
    }
}

/// Send `signal` to `pid`.
fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).expect("signal");
}

/// A kit service started while watched, the watcher settled on its Watch
/// stream.
struct Watched {
    sandbox: common::Sandbox,
    manager: spfs_autostart::ServiceManager,
    watcher: StatusWatcher,
    /// The states the feed went through.
    seen: Vec<State>,
    pid: u32,
}

async fn watched_kit_service() -> Watched {
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    let mut watcher = manager.watch().expect("watch");
    let mut seen = Vec::new();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    until(&mut watcher, State::Running, &mut seen).await;
    // Let the watcher settle on the service's Watch stream.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Watched {
        sandbox,
        manager,
        watcher,
        seen,
        pid,
    }
}

/// Whether `wanted` occurs in `seen` in order (not necessarily adjacent).
fn is_subsequence(wanted: &[State], seen: &[State]) -> bool {
    let mut it = seen.iter();
    wanted.iter().all(|w| it.any(|s| s == w))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_a_full_cycle_in_order() {
    let sandbox = kit_sandbox(0, &["--start-delay-ms", "300"]);
    let manager = sandbox.manager();
    let mut watcher = manager.watch().expect("watch");
    let first = tokio::time::timeout(WAIT, watcher.next())
        .await
        .expect("a first update")
        .expect("feed open")
        .expect("a status");
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
    let mut w = watched_kit_service().await;
    signal(w.pid, nix::sys::signal::Signal::SIGKILL);
    until(&mut w.watcher, State::Stopped, &mut w.seen).await;
    // Straight from running to stopped: a killed service is not "stopping",
    // and a dead one is not "unresponsive".
    assert!(
        w.seen.ends_with(&[State::Running, State::Stopped]),
        "{:?}",
        w.seen
    );
    wait_gone(w.pid, "the killed service").await;
}

/// A service that stops running without exiting (suspended here; hung in
/// the kernel alike) keeps its Watch stream open and sends nothing: the
/// stream's pings go unanswered, so the feed says unresponsive, and running
/// again once it runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_a_suspended_service_as_unresponsive_and_its_return() {
    use nix::sys::signal::Signal::{SIGCONT, SIGSTOP};
    let mut w = watched_kit_service().await;
    // (A failed assertion leaves it suspended: the sandbox kills it.)
    signal(w.pid, SIGSTOP);
    until(&mut w.watcher, State::Unresponsive, &mut w.seen).await;
    signal(w.pid, SIGCONT);
    until(&mut w.watcher, State::Running, &mut w.seen).await;
    assert!(
        w.seen
            .ends_with(&[State::Running, State::Unresponsive, State::Running]),
        "{:?}",
        w.seen
    );
    drop(w.watcher);
    w.manager.stop().await.expect("stop");
    wait_gone(w.pid, "the stopped service").await;
}

/// The second look that keeps a dying service from showing as a conflict
/// must not hide a real one: a peer that is not a gRPC server stays
/// `Conflict` and is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_peer_is_still_a_conflict() {
    use std::io::{Read, Write};
    use std::os::unix::fs::DirBuilderExt;
    let sandbox = kit_sandbox(0, &[]);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(sandbox.state_dir())
        .unwrap();
    let listener =
        std::os::unix::net::UnixListener::bind(sandbox.state_dir().join("service.sock")).unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 64];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let manager = sandbox.manager();
    let now = manager.status().await.expect("status");
    assert_eq!(now.state, State::Conflict, "{now:?}");
    let err = manager.ensure().await.unwrap_err();
    assert_eq!(
        err.kind(),
        spfs_autostart::ErrorKind::EndpointConflict,
        "{err}"
    );
    assert!(
        sandbox.pids().is_empty(),
        "a service was started next to a foreign peer"
    );
}

/// Watching a service that does nothing costs nothing: after the first
/// update no other arrives, and the service's idle countdown keeps running
/// down, through the watch and through `status` calls. (Asking for the mounts on every update once made each update cause
/// the next, thousands a second.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_or_asking_an_idle_service_brings_no_updates_and_keeps_nothing_alive() {
    let sandbox = kit_sandbox(600, &[]);
    let manager = sandbox.manager();
    let started = manager.ensure().await.expect("ensure");
    let mut watcher = manager.watch().expect("watch");
    let first = tokio::time::timeout(WAIT, watcher.next())
        .await
        .expect("a first update")
        .expect("feed open")
        .expect("a status");
    assert_eq!(first.state, State::Running);
    let before = first.idle_exit_in_secs.expect("an idle deadline");
    let mut more = Vec::new();
    let quiet = Duration::from_secs(3);
    let deadline = tokio::time::Instant::now() + quiet;
    while let Ok(Some(update)) = tokio::time::timeout_at(deadline, watcher.next()).await {
        let update = update.expect("a status");
        more.push(update);
    }
    assert!(
        more.is_empty(),
        "{} updates in {quiet:?} from an idle service, the first: {:?}",
        more.len(),
        more.first()
    );
    let after = manager
        .status()
        .await
        .expect("status")
        .idle_exit_in_secs
        .expect("an idle deadline");
    assert!(
        after < before,
        "the idle countdown went on while watched: {before}s, then {after}s"
    );
    // Nor does asking for the status (and its mounts) restart the countdown.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = manager
        .status()
        .await
        .expect("status")
        .idle_exit_in_secs
        .expect("an idle deadline");
    assert!(
        later < after,
        "a status restarted the idle countdown: {after}s, then {later}s"
    );
    drop(watcher);
    manager.stop().await.expect("stop");
    if let Some(pid) = started.pid {
        wait_gone(pid, "the stopped service").await;
    }
}

/// A status that cannot be read (here: the state dir was opened to others
/// and the service died) is said once, as an error, and the watch goes on:
/// once the state dir is private again, the status comes, news after the
/// error even though it is the state the feed showed before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_that_cannot_be_read_is_said_once_and_the_watch_goes_on() {
    use std::os::unix::fs::PermissionsExt;
    let Watched {
        sandbox,
        mut watcher,
        pid,
        ..
    } = watched_kit_service().await;
    let private = std::fs::Permissions::from_mode(0o700);
    std::fs::set_permissions(sandbox.state_dir(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod 777");
    signal(pid, nix::sys::signal::Signal::SIGKILL);
    next_unsafe_state_dir(&mut watcher, "an update after the service died").await;
    // Said once: the watch asks again (every 2 s) without repeating it.
    let quiet = tokio::time::timeout(Duration::from_millis(2500), watcher.next()).await;
    assert!(quiet.is_err(), "said twice, or ended: {quiet:?}");
    std::fs::set_permissions(sandbox.state_dir(), private).expect("chmod 700");
    let update = next(&mut watcher, "a status once it can be read")
        .await
        .expect("a status");
    assert_eq!(update.state, State::Stopped, "{update:?}");
    wait_gone(pid, "the killed service").await;
}

/// While the watch follows a running kit service's own stream, the state
/// dir opened to others is noticed too (its change wakes the watch): the
/// stream is trusted no more than a look, which says why; once private
/// again, the service is reported running again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_dir_opened_under_a_running_watch_is_said() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    let mut watcher = manager.watch().expect("watch");
    let mut seen = Vec::new();
    manager.ensure().await.expect("ensure");
    until(&mut watcher, State::Running, &mut seen).await;
    // Let the watcher settle on the service's Watch stream.
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::set_permissions(sandbox.state_dir(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod 777");
    next_unsafe_state_dir(&mut watcher, "an update after the chmod").await;
    std::fs::set_permissions(sandbox.state_dir(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod 700");
    let mut seen = Vec::new();
    until(&mut watcher, State::Running, &mut seen).await;
    manager.stop().await.expect("stop");
}
