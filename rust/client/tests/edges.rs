//! The edges of stopping and watching, against
//! the real reference service and, for a service whose Watch fails, a fake.

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{
    Client, Sandbox, WAIT, call_in_flight, kit_sandbox, record_says_stopping, status, wait_for,
    wait_gone,
};
use spfs_autostart::proto::control::{
    self, ShutdownRequest, control_client::ControlClient, control_server,
};
use spfs_autostart::{State, StopMethod, StopOutcome};

/// A reference service whose `VfsService/Status` calls take a minute, and
/// one such call in flight (its idle countdown disappears while it runs).
async fn service_with_a_call_in_flight(
    sandbox: &Sandbox,
) -> (spfs_autostart::ServiceManager, tokio::task::JoinHandle<()>) {
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    let call = call_in_flight(&manager).await;
    (manager, tokio::spawn(async move { drop(call.await) }))
}

// The default stop said "it ignored the shutdown request and was sent
// SIGTERM" at 5.01 s, when the service had exited on its own 5 s drain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_a_call_in_flight_drains_within_the_stop_timeout() {
    let sandbox = kit_sandbox(1800, &["--slow-calls-ms", "60000"]);
    assert_eq!(sandbox.client_config().stop_timeout, Duration::from_secs(5));
    let (manager, call) = service_with_a_call_in_flight(&sandbox).await;
    let pid = status(&manager).await.pid.expect("pid");
    let outcome = manager.stop().await.expect("stop");
    assert_eq!(
        outcome,
        StopOutcome::Stopped {
            how: StopMethod::Graceful,
            pid: Some(pid),
        },
        "the drain must end before the client escalates; log:\n{}",
        sandbox.log()
    );
    assert!(!common::alive(pid));
    let log = sandbox.log();
    assert!(
        log.contains("calls still open after 3.8s; exiting anyway"),
        "the drain was not limited to 3/4 of the stop timeout:\n{log}"
    );
    assert!(!log.contains("SIGTERM"), "{log}");
    call.abort();
}

/// SIGTERM to the service `pid` of `sandbox`, as launchd or a user's
/// `kill` sends it, and wait until it drains.
async fn sigterm_and_wait_for_the_drain(sandbox: &Sandbox, pid: u32) {
    let kernel_pid = nix::unistd::Pid::from_raw(pid as i32);
    nix::sys::signal::kill(kernel_pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    wait_for("the service to start draining", WAIT, || {
        let log = sandbox.log();
        async move { log.contains("received SIGTERM").then_some(()) }
    })
    .await;
}

// A second SIGTERM (or SIGINT) was ignored: a drain or a clean-up that
// hung could only be ended with SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_while_draining_ends_the_service_at_once() {
    let sandbox = kit_sandbox(1800, &["--slow-calls-ms", "60000"]);
    let (manager, call) = service_with_a_call_in_flight(&sandbox).await;
    let pid = status(&manager).await.pid.expect("pid");
    sigterm_and_wait_for_the_drain(&sandbox, pid).await;
    let kernel_pid = nix::unistd::Pid::from_raw(pid as i32);
    nix::sys::signal::kill(kernel_pid, nix::sys::signal::Signal::SIGINT).unwrap();
    wait_gone(pid, "the service, on the second signal").await;
    let log = sandbox.log();
    assert!(
        log.contains("received SIGINT after SIGTERM; exiting now"),
        "{log}"
    );
    assert!(
        !log.contains("calls still open"),
        "the service drained out its limit instead:\n{log}"
    );
    call.abort();
}

/// `stop` of a service draining after someone else's SIGTERM (launchd's,
/// a user's `kill`): the stop gives it the drain instead of signalling at
/// once, which the kit took for a second signal and died by, skipping its
/// clean-up, while the CLI said "stopped".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_of_a_service_draining_after_a_signal_lets_its_drain_finish() {
    let sandbox = kit_sandbox(1800, &["--slow-calls-ms", "60000"]);
    let (manager, call) = service_with_a_call_in_flight(&sandbox).await;
    let pid = status(&manager).await.pid.expect("pid");
    sigterm_and_wait_for_the_drain(&sandbox, pid).await;
    let outcome = manager.stop().await.expect("stop");
    assert_eq!(
        outcome,
        StopOutcome::Stopped {
            how: StopMethod::Graceful,
            pid: Some(pid),
        }
    );
    let log = sandbox.log();
    assert!(
        !log.contains("exiting now"),
        "died by a second signal:\n{log}"
    );
    assert!(log.contains("calls still open after"), "{log}");
    call.abort();
}

/// A service whose own shutdown drains longer than `stop_timeout_secs`:
/// `stop` waits that long, then its SIGTERM ends the drain, and the service
/// exits through its clean-up. The kit ignored that SIGTERM, so the stop
/// ended in SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_ends_the_drain_of_a_shutdown_asked_for_otherwise() {
    let mut sandbox = kit_sandbox(
        1800,
        &["--slow-calls-ms", "60000", "--exit-after-ms", "1500"],
    );
    sandbox.set("stop_timeout_secs", 1);
    let (manager, call) = service_with_a_call_in_flight(&sandbox).await;
    let pid = status(&manager).await.pid.expect("pid");
    wait_for("the service's own shutdown", WAIT, || {
        let log = sandbox.log();
        async move { log.contains("shutting down: --exit-after-ms").then_some(()) }
    })
    .await;
    let outcome = manager.stop().await.expect("stop");
    let log = sandbox.log();
    assert_eq!(
        outcome,
        StopOutcome::Stopped {
            how: StopMethod::Graceful,
            pid: Some(pid),
        },
        "{log}"
    );
    assert!(log.contains("ending the drain of calls now"), "{log}");
    assert!(!log.contains("SIGKILL"), "{log}");
    call.abort();
}

// `status` of a draining service took 1.01 s and said "accepts
// connections but does not answer gRPC".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_service_is_reported_stopping_without_a_probe_timeout() {
    let sandbox = kit_sandbox(1800, &["--slow-calls-ms", "60000"]);
    let (manager, call) = service_with_a_call_in_flight(&sandbox).await;
    let channel = manager.channel().await.expect("channel");
    ControlClient::new(channel)
        .shutdown(ShutdownRequest {
            reason: "test".into(),
            drain_ms: 30_000,
            ..Default::default()
        })
        .await
        .expect("shutdown");
    record_says_stopping(&sandbox).await;
    // A fresh manager, as a new `spfs-autostart status` process is: no
    // connection from before the shutdown to ask on.
    let fresh = sandbox.manager();
    let started = tokio::time::Instant::now();
    let now = status(&fresh).await;
    let took = started.elapsed();
    assert_eq!(now.state, State::Stopping, "{now:?}");
    let detail = now.detail.unwrap_or_default();
    assert!(
        detail.contains("shutting down") && !detail.contains("does not answer gRPC"),
        "{detail}"
    );
    // The probe timeout is 1 s; a refused connection is answered at once.
    assert!(took < Duration::from_secs(1), "status took {took:?}");
    call.abort();
}

/// A kit look-alike: its `Info` answers (version 1.0.0, the pid it claims,
/// a lease once `leased`), its `Watch` always fails, counting the calls,
/// and a `Shutdown` is only noted: one `unless_leased` is refused, as a
/// kit does when a runtime took a lease since the caller looked, and from
/// then on `Info` reports that lease.
#[derive(Debug, Default)]
struct FakeKit {
    watches: Arc<AtomicUsize>,
    /// The pid `Info` reports; this process's when unset.
    claims: Option<u32>,
    /// `Acquire` never answers, as a service stuck after `ensure`.
    acquire_hangs: bool,
    leased: Arc<std::sync::atomic::AtomicBool>,
    /// Each `Shutdown` received: whether it was `unless_leased`.
    shutdowns: Arc<std::sync::Mutex<Vec<bool>>>,
}

type Updates =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<control::StatusUpdate, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl control_server::Control for FakeKit {
    async fn info(
        &self,
        _: tonic::Request<control::InfoRequest>,
    ) -> Result<tonic::Response<control::InfoResponse>, tonic::Status> {
        let pid = self.claims.unwrap_or_else(std::process::id);
        let leases = match self.leased.load(Ordering::SeqCst) {
            true => vec![control::Lease {
                id: 1,
                pid,
                label: "runtime".into(),
                acquired_at_unix_ms: 1,
            }],
            false => Vec::new(),
        };
        Ok(tonic::Response::new(control::InfoResponse {
            name: "fake".into(),
            version: "1.0.0".into(),
            pid,
            leases,
            ..Default::default()
        }))
    }

    async fn shutdown(
        &self,
        request: tonic::Request<control::ShutdownRequest>,
    ) -> Result<tonic::Response<control::ShutdownResponse>, tonic::Status> {
        let unless_leased = request.into_inner().unless_leased;
        self.shutdowns.lock().unwrap().push(unless_leased);
        if unless_leased {
            self.leased.store(true, Ordering::SeqCst);
            return Err(tonic::Status::failed_precondition(
                "1 lease(s) held: not shutting down",
            ));
        }
        Ok(tonic::Response::new(control::ShutdownResponse {}))
    }

    type WatchStream = Updates;

    async fn watch(
        &self,
        _: tonic::Request<control::WatchRequest>,
    ) -> Result<tonic::Response<Updates>, tonic::Status> {
        self.watches.fetch_add(1, Ordering::SeqCst);
        Err(tonic::Status::unavailable("watch is broken here"))
    }

    async fn acquire(
        &self,
        _: tonic::Request<control::AcquireRequest>,
    ) -> Result<tonic::Response<control::AcquireResponse>, tonic::Status> {
        if self.acquire_hangs {
            std::future::pending::<()>().await;
        }
        Err(tonic::Status::unimplemented("fake"))
    }

    async fn release(
        &self,
        _: tonic::Request<control::ReleaseRequest>,
    ) -> Result<tonic::Response<control::ReleaseResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("fake"))
    }
}

/// Serve `fake` at `sandbox`'s state dir socket (the state dir made as a
/// start makes it), as a kit service there would; abort the task to stop.
fn serve_in_the_state_dir(sandbox: &Sandbox, fake: FakeKit) -> tokio::task::JoinHandle<()> {
    use std::os::unix::fs::PermissionsExt;
    let state = sandbox.state_dir();
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let listener = tokio::net::UnixListener::bind(state.join("service.sock")).unwrap();
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(control_server::ControlServer::new(fake))
            .serve_with_incoming(incoming)
            .await;
    })
}

// `watch` on a managed service whose Watch RPC fails looped without
// sleeping. Counted: over 3 s, a back-off asks a handful of times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_backs_off_when_the_watch_stream_fails() {
    let sandbox = kit_sandbox(1800, &[]);
    let fake = FakeKit::default();
    let watches = fake.watches.clone();
    let server = serve_in_the_state_dir(&sandbox, fake);
    let manager = sandbox.manager();
    let mut watcher = manager.watch().expect("watch");
    let first = tokio::time::timeout(WAIT, watcher.next())
        .await
        .expect("a first status")
        .expect("the feed is open")
        .expect("a status");
    assert_eq!(first.state, State::Running);
    assert!(first.managed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let asked = watches.load(Ordering::SeqCst);
    assert!(asked >= 1, "Watch was never tried");
    // 100 + 200 + 400 + 800 + 1600 ms: at most 5 or 6 in 3 s; without a
    // back-off it was thousands.
    assert!(asked <= 10, "Watch was asked {asked} times in 3 s");
    drop(watcher);
    server.abort();
}

/// A manager that cached its connection to a service whose state dir was
/// then replaced (moved away, made again, a new service started there) does
/// not go on reporting the old one, which nobody else can find: the socket
/// at the endpoint is another file now, so it looks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_connection_to_a_service_whose_socket_was_replaced_is_dropped() {
    let sandbox = kit_sandbox(0, &[]);
    let first = sandbox.manager();
    let old = first.ensure().await.expect("ensure").pid.expect("pid");
    let moved = sandbox.root().join("state.old");
    std::fs::rename(sandbox.state_dir(), &moved).unwrap();
    let second = sandbox.manager();
    let new = second.ensure().await.expect("ensure").pid.expect("pid");
    assert_ne!(old, new);
    let seen = first.status().await.expect("status");
    assert_eq!(seen.pid, Some(new), "{seen:?}");
    second.stop().await.expect("stop");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// A service whose state dir was removed under it (a tmp cleaner, a
/// logout) and replaced, with another service there, leaves that one alone
/// when it exits: it removes only the socket it bound and writes its
/// "stopping" record only while the lock there is the one it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_state_dir_was_replaced_leaves_its_successor_alone() {
    let mut sandbox = kit_sandbox(0, &["--exit-after-ms", "1500"]);
    let old = sandbox
        .manager()
        .ensure()
        .await
        .expect("ensure")
        .pid
        .expect("pid");
    std::fs::remove_dir_all(sandbox.state_dir()).unwrap();
    sandbox.set("args", Vec::<String>::new());
    let manager = sandbox.manager();
    let new = manager.ensure().await.expect("ensure").pid.expect("pid");
    wait_gone(old, "the first service, exiting on its own").await;
    let now = manager.status().await.expect("status");
    assert_eq!(now.state, State::Running, "{now:?}");
    assert_eq!(now.pid, Some(new), "{now:?}");
    manager.stop().await.expect("stop");
    wait_gone(new, "the second service").await;
}

/// The endpoint changed in the config while the service ran: `ensure` says
/// so at once (no wait for the ready timeout), `status` says where it
/// serves, and `stop` stops it, after which `ensure` starts it at the new
/// endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_serving_at_an_endpoint_the_config_no_longer_names_is_said_at_once() {
    let mut sandbox = kit_sandbox(0, &[]);
    sandbox.set("ready_timeout_secs", 30);
    let old = sandbox.manager().ensure().await.expect("ensure");
    let new_socket = sandbox.state_dir().join("other.sock");
    sandbox.set("endpoint", format!("unix://{}", new_socket.display()));
    let moved = sandbox.manager();
    let started = std::time::Instant::now();
    let e = moved.ensure().await.expect_err("serves elsewhere");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited {:?} for a service that cannot answer there",
        started.elapsed()
    );
    assert_eq!(e.kind(), spfs_autostart::ErrorKind::EndpointConflict, "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&old.endpoint),
        "names where it serves: {text}"
    );
    assert!(
        text.to_lowercase().contains("stop it"),
        "says the fix: {text}"
    );
    let seen = moved.status().await.expect("status");
    assert_eq!(seen.state, State::Conflict, "{seen:?}");
    assert_eq!(seen.pid, old.pid, "{seen:?}");
    // The doctor agrees: ours, to be stopped, not something else to move away from.
    let report = spfs_autostart::doctor::diagnose(&moved).await;
    let endpoint = report
        .findings
        .iter()
        .find(|f| f.check == "endpoint")
        .expect("an endpoint finding");
    assert!(endpoint.summary.contains(&old.endpoint), "{endpoint:?}");
    assert_eq!(
        endpoint.remedies,
        [spfs_autostart::Remedy::Run(spfs_autostart::Operation::Stop)],
        "{endpoint:?}"
    );
    assert!(
        report
            .next
            .starts_with("fail: the service serves at another endpoint"),
        "{}",
        report.next
    );
    // Asked to shut down where it serves, not signalled.
    common::assert_graceful(&moved.stop().await.expect("stop"));
    let now = moved.ensure().await.expect("ensure at the new endpoint");
    assert_ne!(now.pid, old.pid);
    assert!(now.endpoint.ends_with("other.sock"), "{now:?}");
    moved.stop().await.expect("stop");
}

/// A host that forks while an `ensure` holds `spawn.lock` (Python's
/// `multiprocessing`, a prefork server) gives its child a share of the
/// lock's open file: once the start is done, `stop` and the next start must
/// not wait for that child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_forked_during_a_start_does_not_keep_the_spawn_lock() {
    let mut sandbox = kit_sandbox(0, &["--start-delay-ms", "1000"]);
    sandbox.set("stop_timeout_secs", 2);
    let manager = sandbox.manager();
    let ensure = tokio::spawn({
        let manager = sandbox.manager();
        async move { manager.ensure().await }
    });
    // Once the start holds spawn.lock (the service is on its way).
    wait_for("a service process", WAIT, || async {
        (!sandbox.pids().is_empty()).then_some(())
    })
    .await;
    // SAFETY: the child only sleeps and exits: both async-signal-safe, as
    // a child of a multithreaded process needs.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: in the child: only async-signal-safe calls, then exit.
        unsafe {
            libc::sleep(60);
            libc::_exit(0);
        }
    }
    assert!(child > 0, "fork failed");
    struct Reap(i32);
    impl Drop for Reap {
        fn drop(&mut self) {
            // SAFETY: our own child, killed and reaped once.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }
    let _reap = Reap(child);
    ensure.await.unwrap().expect("ensure");
    let started = std::time::Instant::now();
    let outcome = manager
        .stop()
        .await
        .expect("stop, with the forked child alive");
    assert!(
        matches!(outcome, StopOutcome::Stopped { .. }),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stop waited {:?} for spawn.lock",
        started.elapsed()
    );
    manager
        .ensure()
        .await
        .expect("a start, with the forked child alive");
    manager.stop().await.expect("stop");
}

/// `doctor` waits on the program's `--version` (up to seconds for a slow
/// one): a caller's single-threaded runtime goes on meanwhile, as the
/// bindings' runtime, which also runs the app's feeds, must.
#[tokio::test(flavor = "current_thread")]
async fn doctor_waiting_on_a_slow_program_does_not_hold_up_its_runtime() {
    use std::os::unix::fs::PermissionsExt;
    let mut sandbox = Sandbox::new();
    let program = sandbox.root().join("slow-service");
    std::fs::write(&program, "#!/bin/sh\nsleep 2\necho 'slow-service 1.0'\n").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    sandbox.set("program", program.display().to_string());
    let manager = sandbox.manager();
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                // A sleep, not an interval: a held-up runtime catches up
                // with one tick, not a burst.
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let report = spfs_autostart::doctor::diagnose(&manager).await;
    let during = ticks.load(Ordering::Relaxed);
    ticker.abort();
    let program = report
        .findings
        .iter()
        .find(|f| f.check == "program")
        .expect("a program finding");
    // It did wait for the answer...
    assert!(
        program.summary.ends_with("(slow-service 1.0)"),
        "{program:?}"
    );
    // ...while the other task ran: some 200 ticks in 2 s, 1 if held up.
    assert!(during >= 20, "{during} ticks while doctor waited");
}

/// One manager (a `watch`, an app) remembers which process of ours listens
/// at the TCP endpoint. That process may close its listener and live on
/// while another takes the port: the next look names the new listener, not
/// the one remembered.
#[tokio::test(flavor = "current_thread")]
async fn a_remembered_listener_is_looked_up_again_once_the_port_has_another_socket() {
    let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = first.local_addr().unwrap().port();
    let sandbox = Sandbox::new().with("endpoint", format!("tcp://127.0.0.1:{port}"));
    let manager = sandbox.manager();
    let named = |pid: u32| format!("pid {pid} (");
    let status = manager.status().await.expect("status");
    assert_eq!(status.state, State::Conflict, "{status:?}");
    let detail = status.detail.unwrap_or_default();
    assert!(detail.contains(&named(std::process::id())), "{detail}");
    // This process lives on without its listener; another takes the port.
    drop(first);
    let script = format!(
        "import socket, time\n\
         s = socket.socket()\n\
         s.bind(('127.0.0.1', {port}))\n\
         s.listen()\n\
         print('up', flush=True)\n\
         time.sleep(60)\n"
    );
    let mut second = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut up = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(second.stdout.take().unwrap()),
        &mut up,
    )
    .unwrap();
    assert_eq!(up, "up\n");
    let status = manager.status().await.expect("status");
    let _ = second.kill();
    let _ = second.wait();
    let detail = status.detail.unwrap_or_default();
    assert!(detail.contains(&named(second.id())), "{detail}");
}

/// A kit at our TCP port (no lock of ours held) that reports the pid of
/// another process of ours, one that even runs the configured program: the
/// pid is only its word. Not taken for ours, so `stop` signals nothing; it
/// would have sent SIGTERM to that process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kit_on_our_port_that_names_another_process_of_ours_is_not_believed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut bystander = common::Sleeper::start();
    let fake = FakeKit {
        claims: Some(bystander.pid()),
        ..FakeKit::default()
    };
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(control_server::ControlServer::new(fake))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let sandbox = Sandbox::new()
        .with("endpoint", format!("tcp://127.0.0.1:{port}"))
        .with("program", "sleep")
        .with("stop_timeout_secs", 1);
    let manager = sandbox.manager();
    let status = manager.status().await.expect("status");
    assert_eq!(status.state, State::Conflict, "{status:?}");
    let detail = status.detail.unwrap_or_default();
    assert!(
        detail.contains(&format!(
            "says it is pid {}, but pid {} listens there",
            bystander.pid(),
            std::process::id()
        )),
        "{detail}"
    );
    assert!(manager.stop().await.is_err(), "a conflict is not stopped");
    assert!(
        common::alive(bystander.pid()),
        "the bystander was signalled"
    );
    bystander.end();
    server.abort();
}

/// A service that answers `ensure` and then never answers `Acquire` (a
/// stuck mount): the lease call gives up after ready_timeout, saying so,
/// instead of holding its caller forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_call_the_service_never_answers_ends_at_the_ready_timeout() {
    let sandbox = kit_sandbox(1800, &[]).with("ready_timeout_secs", 1);
    let fake = FakeKit {
        acquire_hangs: true,
        ..FakeKit::default()
    };
    let server = serve_in_the_state_dir(&sandbox, fake);
    let manager = sandbox.manager();
    let err = tokio::time::timeout(WAIT, manager.acquire(std::process::id(), "test"))
        .await
        .expect("the lease call ends")
        .expect_err("no lease from a service that does not answer");
    assert_eq!(err.kind(), spfs_autostart::ErrorKind::Unresponsive, "{err}");
    assert!(
        err.to_string()
            .contains("cannot acquire a lease: the service did not answer within 1.0s"),
        "{err}"
    );
    server.abort();
}

/// A version restart asks the service to shut down only if it holds no
/// lease, so a runtime that took one after the restart looked is not cut
/// off: the service is kept, with the warning a leased service gets. It
/// was shut down (and its process signalled) regardless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_restart_keeps_a_service_leased_since_it_looked() {
    let mut sandbox = kit_sandbox(0, &[]);
    sandbox
        .set("expected_version", "9.9.9")
        .set("stop_timeout_secs", 1)
        .set("ready_timeout_secs", 2);
    let mut bystander = spfs_autostart_test_support::Sleeper::start();
    let fake = FakeKit {
        claims: Some(bystander.pid()),
        ..FakeKit::default()
    };
    let shutdowns = fake.shutdowns.clone();
    let server = serve_in_the_state_dir(&sandbox, fake);
    let manager = sandbox.manager();
    let kept = manager.ensure().await;
    assert_eq!(
        *shutdowns.lock().unwrap(),
        vec![true],
        "one shutdown request, on condition: {kept:?}"
    );
    let kept = kept.expect("ensure keeps the leased service");
    assert_eq!(kept.pid, Some(bystander.pid()));
    assert_eq!(kept.leases.len(), 1, "{kept:?}");
    assert!(
        kept.warnings
            .iter()
            .any(|w| w.contains("9.9.9") && w.contains("lease")),
        "{:?}",
        kept.warnings
    );
    assert!(common::alive(bystander.pid()), "never signalled");
    server.abort();
    bystander.end();
}

/// A run's header starts a line of its own after a last run whose final
/// line was never finished, so the run is found by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_header_starts_its_own_line_after_an_unfinished_one() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = kit_sandbox(0, &[]);
    std::fs::create_dir_all(sandbox.log_dir()).unwrap();
    let log = sandbox.log_dir().join("service.log");
    std::fs::write(&log, "progress 42%").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    let text = sandbox.log();
    assert!(
        text.starts_with("progress 42%\n--- spfs-autostart: starting "),
        "{text}"
    );
    manager.stop().await.expect("stop");
}
