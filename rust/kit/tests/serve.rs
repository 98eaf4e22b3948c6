//! `Kit::serve` runs its server as a task of its own; a `serve` its caller
//! drops must still stop serving, and the instance lock stays held until
//! the process exits, so the service's clean-up after `serve` ends before a
//! successor can start. Its idle clock starts with it.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use spfs_autostart_kit::{Identity, Kit, KitConfig, ResolvedEndpoint};
use spfs_autostart_protocol::record::Phase;

/// Whether nobody holds `instance.lock` (a successor could take it now).
fn lock_is_free(lock: &File) -> bool {
    match lock.try_lock() {
        Ok(()) => {
            lock.unlock().unwrap();
            true
        }
        Err(TryLockError::WouldBlock) => false,
        Err(TryLockError::Error(e)) => panic!("cannot test instance.lock: {e}"),
    }
}

/// A kit for `state`, serving at the Unix socket `socket`.
fn start_kit(name: &str, state: &Path, socket: PathBuf, idle_timeout: Duration) -> Kit {
    start_kit_telling(name, state, socket, idle_timeout, None)
}

/// [`start_kit`], telling the spawner's readiness pipe `ready`.
fn start_kit_telling(
    name: &str,
    state: &Path,
    socket: PathBuf,
    idle_timeout: Duration,
    ready: Option<std::io::PipeWriter>,
) -> Kit {
    Kit::start(
        Identity {
            name: name.into(),
            version: "0".into(),
        },
        KitConfig {
            state_dir: state.to_path_buf(),
            endpoint: ResolvedEndpoint::Unix(socket),
            idle_timeout,
            ready_fd: ready.map(std::os::fd::OwnedFd::from),
            lock_fd: None,
        },
    )
    .expect("start the kit in a temp state dir")
}

#[tokio::test(flavor = "current_thread")]
async fn a_serve_its_caller_drops_stops_serving_and_keeps_the_lock_until_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let socket = state.join("service.sock");
    let kit = start_kit("serve-test", &state, socket.clone(), Duration::ZERO);
    let lock = File::open(state.join("instance.lock")).unwrap();
    // A service that ends `serve` its own way, as a `select!` in its main
    // would.
    tokio::select! {
        result = kit.serve(|routes| routes) => panic!("serve ended by itself: {result:?}"),
        () = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the dropped service's socket still accepts 10 s later"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !lock_is_free(&lock),
        "instance.lock was let go before the process exited"
    );
}

/// The idle clock starts when the service serves: a service whose own
/// set-up (opening repositories, mounting) between `Kit::start` and
/// `serve` takes longer than its idle timeout still serves for that
/// timeout, and then exits. (It used to shut down as it became ready.)
#[tokio::test(flavor = "current_thread")]
async fn the_idle_clock_starts_when_the_service_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let socket = state.join("service.sock");
    let idle = Duration::from_secs(2);
    let kit = start_kit("idle-test", &state, socket.clone(), idle);
    // The service's own set-up, longer than its idle timeout.
    tokio::time::sleep(idle + Duration::from_millis(500)).await;
    let began = Instant::now();
    let serving = tokio::spawn(kit.serve(|routes| routes));
    tokio::time::sleep(idle / 2).await;
    assert!(
        !serving.is_finished(),
        "still serving {:?} after it began",
        began.elapsed()
    );
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
    tokio::time::timeout(Duration::from_secs(20), serving)
        .await
        .expect("it exits once idle")
        .unwrap()
        .expect("a clean exit");
    assert!(began.elapsed() >= idle, "{:?}", began.elapsed());
    // `serve` has returned; what the service does next (its clean-up) is
    // still done under the lock, which the kernel lets go at exit.
    let lock = File::open(state.join("instance.lock")).unwrap();
    assert!(
        !lock_is_free(&lock),
        "instance.lock was let go when serve returned"
    );
}

/// A state dir removed and made again during the service's set-up (a tmp
/// cleaner, a logout) belongs to whoever holds its new `instance.lock`:
/// the service that held the old one writes no `running` record there.
#[tokio::test(flavor = "current_thread")]
async fn a_service_whose_state_dir_was_replaced_writes_no_record_there() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let (ready, told) = std::io::pipe().unwrap();
    let kit = start_kit_telling(
        "replaced-test",
        &state,
        state.join("service.sock"),
        Duration::ZERO,
        Some(told),
    );
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::create_dir(&state).unwrap();
    let successors_lock = File::create(state.join("instance.lock")).unwrap();
    successors_lock.try_lock().unwrap();
    // Once it says READY, it is past where it would have written the record.
    let said = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(ready), &mut line).unwrap();
        line
    });
    tokio::select! {
        result = kit.serve(|routes| routes) => panic!("serve ended by itself: {result:?}"),
        line = said => assert!(line.unwrap().starts_with("READY"), "the service serves"),
    }
    assert!(
        !state.join("service.json").exists(),
        "a record was written into the successor's state dir"
    );
}

/// A SIGTERM during the service's own set-up (between `Kit::start` and
/// `serve`: mounting, opening repositories) asks for a graceful shutdown,
/// which `serve` then carries out, instead of killing the process (here,
/// the test itself) mid-set-up; the set-up hears of it, to give up early.
#[tokio::test(flavor = "current_thread")]
async fn a_signal_during_set_up_shuts_the_service_down_gracefully_and_tells_the_set_up() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let kit = start_kit(
        "signal-test",
        &state,
        state.join("service.sock"),
        Duration::ZERO,
    );
    let handle = kit.handle();
    assert!(!handle.is_shutting_down());
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).unwrap();
    // The rest of the set-up, which hears of the request and gives up.
    let reason = tokio::select! {
        reason = handle.shutdown_requested() => reason,
        () = tokio::time::sleep(Duration::from_secs(20)) => panic!("the set-up was not told"),
    };
    assert!(reason.contains("SIGTERM"), "{reason}");
    assert!(handle.is_shutting_down());
    tokio::time::timeout(Duration::from_secs(20), kit.serve(|routes| routes))
        .await
        .expect("serve ends: the signal asked for a shutdown")
        .expect("a clean exit");
}

/// What the spawner hears on its readiness pipe, the record's phase, and
/// whether the socket is still there, once the kit let go of the pipe.
fn ended_before_serving(
    mut heard: std::io::PipeReader,
    state: &Path,
) -> (String, Option<Phase>, bool) {
    use std::io::Read;
    let mut said = String::new();
    heard.read_to_string(&mut said).unwrap();
    let record = spfs_autostart_protocol::record::ServiceRecord::read(&state.join("service.json"));
    (
        said,
        record.map(|r| r.phase),
        state.join("service.sock").exists(),
    )
}

/// A service that gives up during its set-up by dropping its kit (on a
/// shutdown request, or a failure of its own) tells its spawner it failed,
/// leaves the record `stopping` and its socket gone, and keeps the lock
/// until the process exits, as after `serve`: its clean-up ends before a
/// successor starts.
#[tokio::test(flavor = "current_thread")]
async fn a_kit_dropped_during_set_up_says_so_and_keeps_the_lock_until_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let (heard, told) = std::io::pipe().unwrap();
    let kit = start_kit_telling(
        "give-up-test",
        &state,
        state.join("service.sock"),
        Duration::ZERO,
        Some(told),
    );
    let lock = File::open(state.join("instance.lock")).unwrap();
    drop(kit);
    let (said, phase, socket_left) = ended_before_serving(heard, &state);
    assert!(
        said.starts_with("FAILED it stopped before serving: the service dropped its kit"),
        "{said:?}"
    );
    assert_eq!(phase, Some(Phase::Stopping));
    assert!(!socket_left, "the socket it bound was left");
    assert!(
        !lock_is_free(&lock),
        "instance.lock was let go before the process exited"
    );
}

/// `serve` called after a shutdown was asked for during the set-up does
/// not begin serving: the spawner hears why the start failed, never READY.
#[tokio::test(flavor = "current_thread")]
async fn a_serve_after_a_shutdown_request_never_says_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let (heard, told) = std::io::pipe().unwrap();
    let kit = start_kit_telling(
        "late-serve-test",
        &state,
        state.join("service.sock"),
        Duration::ZERO,
        Some(told),
    );
    kit.handle().shutdown("asked during the set-up");
    tokio::time::timeout(Duration::from_secs(20), kit.serve(|routes| routes))
        .await
        .expect("serve ends at once")
        .expect("a clean end");
    let (said, phase, socket_left) = ended_before_serving(heard, &state);
    assert_eq!(
        said, "FAILED it stopped before serving: asked during the set-up\n",
        "{said:?}"
    );
    assert_eq!(phase, Some(Phase::Stopping));
    assert!(!socket_left);
}

/// A service's own handlers give one lease back by its id, as
/// `Control.Release` does; a second time, it was not held.
#[tokio::test(flavor = "current_thread")]
async fn a_lease_is_given_back_by_its_id() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let kit = start_kit(
        "release-test",
        &state,
        state.join("service.sock"),
        Duration::ZERO,
    );
    let handle = kit.handle();
    let mut holder = spfs_autostart_test_support::Sleeper::start();
    let first = handle.acquire(holder.pid(), "mount 1".into()).unwrap();
    let second = handle.acquire(holder.pid(), "mount 2".into()).unwrap();
    assert!(handle.release(first.id));
    assert!(!handle.release(first.id), "given back twice");
    let left: Vec<u64> = handle.leases().iter().map(|l| l.id).collect();
    assert_eq!(left, [second.id], "only the one named goes");
    holder.end();
}
