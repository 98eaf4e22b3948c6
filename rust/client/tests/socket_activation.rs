//! Socket activation, systemd style, for real: `systemd-socket-activate`
//! (Debian package `systemd`) holds the socket and starts the reference
//! service on the first connection. Linux only.
#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{
    Client, Sandbox, WAIT, assert_graceful, kit_sandbox, reference_service, status, wait_for,
};
use spfs_autostart::proto::control::{InfoRequest, control_client::ControlClient};
use spfs_autostart::{ServiceManager, State};

const TOOL: &str = "systemd-socket-activate";

/// Kills and reaps a child on drop (the Sandbox's Drop only finds processes
/// whose environment names the state dir).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn make_state_dir(sandbox: &Sandbox) {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(sandbox.state_dir())
        .expect("state dir");
}

fn output_file(sandbox: &Sandbox, name: &str) -> (File, File) {
    let file = File::create(sandbox.root().join(name)).expect("output file");
    let clone = file.try_clone().expect("clone");
    (file, clone)
}

fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

async fn socket_activated(manager: &ServiceManager) -> bool {
    let channel = manager.channel().await.expect("channel");
    ControlClient::new(channel)
        .info(InfoRequest { touch: false })
        .await
        .expect("Control.Info")
        .into_inner()
        .socket_activated
}

/// Wait for the child to exit by itself; its exit status.
async fn wait_exit(child: &mut Reaped) -> std::process::ExitStatus {
    wait_for("the service process to exit", WAIT, || {
        let done = child.0.try_wait().expect("try_wait");
        async move { done }
    })
    .await
}

/// Start `systemd-socket-activate` listening on `socket` for the reference
/// service, configured for `sandbox`, its output in `activate.log`.
fn socket_activate(sandbox: &Sandbox, socket: &Path) -> Reaped {
    socket_activate_with(sandbox, socket, &[])
}

/// [`socket_activate`] with more options for the tool (`--accept`).
fn socket_activate_with(sandbox: &Sandbox, socket: &Path, options: &[&str]) -> Reaped {
    let state = sandbox.state_dir().display().to_string();
    let (out, err) = output_file(sandbox, "activate.log");
    let spawned = Command::new(TOOL)
        .args(options)
        .arg(format!("--listen={}", socket.display()))
        .arg(format!("--setenv=SPFS_AUTOSTART_STATE_DIR={state}"))
        .arg(format!(
            "--setenv=SPFS_AUTOSTART_ENDPOINT=unix://{}",
            socket.display()
        ))
        .arg("--setenv=SPFS_AUTOSTART_IDLE_TIMEOUT_SECS=0")
        .arg(format!(
            "--setenv=XDG_CONFIG_HOME={}",
            sandbox.root().join("config").display()
        ))
        .arg("--setenv=SPFS_AUTOSTART_CONFIG=")
        .arg(reference_service())
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn();
    match spawned {
        Ok(child) => Reaped(child),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!(
                "{TOOL} is not installed: install the Debian package `systemd` (apt-get install systemd)"
            )
        }
        Err(e) => panic!("cannot run {TOOL}: {e}"),
    }
}

/// Wait until something listens on `socket`.
async fn wait_listening(socket: &Path) {
    wait_for("systemd-socket-activate to listen", WAIT, || {
        let ready = is_socket(socket);
        async move { ready.then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_socket_activate_starts_the_service_on_first_connect() {
    let sandbox = kit_sandbox(0, &[]);
    make_state_dir(&sandbox);
    let socket = sandbox.state_dir().join("service.sock");
    let mut child = socket_activate(&sandbox, &socket);
    let log = || std::fs::read_to_string(sandbox.root().join("activate.log")).unwrap_or_default();
    wait_listening(&socket).await;
    // Listening, but nothing started yet.
    assert!(
        sandbox.pids().is_empty(),
        "started before any connection: {}",
        log()
    );

    let manager = sandbox.manager();
    let running = manager
        .ensure()
        .await
        .unwrap_or_else(|e| panic!("ensure: {e}\n{}", log()));
    assert_eq!(running.state, State::Running);
    // systemd-socket-activate execs the service in place.
    assert_eq!(running.pid, Some(child.0.id()), "{}", log());
    assert!(
        socket_activated(&manager).await,
        "the service did not take the passed socket"
    );
    assert!(
        log().contains(&format!("serving on unix://{}", socket.display())),
        "{}",
        log()
    );

    assert_graceful(&manager.stop().await.expect("stop"));
    let exit = wait_exit(&mut child).await;
    assert!(exit.success(), "the service exited with {exit}:\n{}", log());
    assert!(
        is_socket(&socket),
        "the service unlinked the socket it was handed"
    );
    assert_eq!(status(&manager).await.state, State::Stopped);
    assert!(!log().contains("ERROR"), "{}", log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_fds_for_another_pid_is_ignored() {
    let sandbox = kit_sandbox(0, &[]);
    make_state_dir(&sandbox);
    let socket = sandbox.state_dir().join("service.sock");
    let (out, err) = output_file(&sandbox, "service.out");
    // Started directly (the spawner strips LISTEN_* from what it passes), as
    // a service that inherited another process's activation variables.
    let mut child = Reaped(
        Command::new(reference_service())
            .env("SPFS_AUTOSTART_STATE_DIR", sandbox.state_dir())
            .env(
                "SPFS_AUTOSTART_ENDPOINT",
                format!("unix://{}", socket.display()),
            )
            .env("SPFS_AUTOSTART_IDLE_TIMEOUT_SECS", "0")
            .env("XDG_CONFIG_HOME", sandbox.root().join("config"))
            .env("SPFS_AUTOSTART_CONFIG", "")
            .env("LISTEN_FDS", "1")
            .env("LISTEN_PID", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start the reference service"),
    );
    let log = || std::fs::read_to_string(sandbox.root().join("service.out")).unwrap_or_default();
    let manager = sandbox.manager();
    wait_for("the service to serve on its own socket", WAIT, || async {
        (status(&manager).await.state == State::Running).then_some(())
    })
    .await;
    let running = manager.ensure().await.expect("ensure");
    assert_eq!(running.pid, Some(child.0.id()));
    assert!(!socket_activated(&manager).await);
    assert!(
        log().contains("ignoring LISTEN_FDS=1: LISTEN_PID=1 is not this process"),
        "no log line about the ignored LISTEN_FDS:\n{}",
        log()
    );
    assert!(is_socket(&socket));
    manager.stop().await.expect("stop");
    let exit = wait_exit(&mut child).await;
    assert!(exit.success(), "exit {exit}:\n{}", log());
    // It bound the socket itself, so it removed it.
    assert!(!socket.exists(), "the service left the socket it bound");
}

/// systemd's `Accept=yes` hands the service one connected socket, on which
/// no accept succeeds: the service says so and exits, instead of retrying
/// the accept at full CPU for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_socket_from_accept_yes_is_refused_by_name() {
    let sandbox = kit_sandbox(0, &[]);
    make_state_dir(&sandbox);
    let socket = sandbox.state_dir().join("service.sock");
    let _tool = socket_activate_with(&sandbox, &socket, &["--accept"]);
    let log = || std::fs::read_to_string(sandbox.root().join("activate.log")).unwrap_or_default();
    wait_listening(&socket).await;
    // The connection makes the tool start a service with it.
    let _connection = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    wait_for("the service to refuse the connected socket", WAIT, || {
        let said = log().contains("the activated socket is not listening");
        async move { said.then_some(()) }
    })
    .await;
    wait_for("the service to exit", WAIT, || {
        let gone = sandbox.pids().is_empty();
        async move { gone.then_some(()) }
    })
    .await;
}

/// A TCP socket handed over is socket activation too: `Info` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_over_tcp_socket_counts_as_activated() {
    let port = spfs_autostart_test_support::free_port();
    let mut sandbox = kit_sandbox(0, &[]);
    sandbox.set("endpoint", format!("tcp://127.0.0.1:{port}"));
    make_state_dir(&sandbox);
    let (out, err) = output_file(&sandbox, "activate.log");
    let mut tool = Command::new(TOOL);
    tool.arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!(
            "--setenv=SPFS_AUTOSTART_STATE_DIR={}",
            sandbox.state_dir().display()
        ))
        .arg(format!(
            "--setenv=SPFS_AUTOSTART_ENDPOINT=tcp://127.0.0.1:{port}"
        ))
        .arg("--setenv=SPFS_AUTOSTART_IDLE_TIMEOUT_SECS=0")
        .arg(reference_service())
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let _tool = Reaped(tool.spawn().expect("systemd-socket-activate runs"));
    let log = || std::fs::read_to_string(sandbox.root().join("activate.log")).unwrap_or_default();
    wait_for("systemd-socket-activate to listen", WAIT, || {
        let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        async move { up.then_some(()) }
    })
    .await;
    let manager = sandbox.manager();
    manager
        .ensure()
        .await
        .unwrap_or_else(|e| panic!("ensure: {e}\n{}", log()));
    assert!(socket_activated(&manager).await, "{}", log());
    manager.stop().await.expect("stop");
}

/// Once a socket-activated service has exited, the socket stays with its
/// activator, and any connection would start the service again. A look
/// that only reports (`status`, a `watch`, `stop`) does not connect, and
/// says why the service is stopped; `ensure` does connect. The activator
/// here is a listener of the test's own that counts connections, in the
/// place of systemd's, which `systemd-socket-activate` (it execs the
/// service in place) does not keep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looking_at_a_stopped_socket_activated_service_does_not_start_it() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sandbox = kit_sandbox(0, &[]);
    make_state_dir(&sandbox);
    let socket = sandbox.state_dir().join("service.sock");
    let mut child = socket_activate(&sandbox, &socket);
    wait_listening(&socket).await;
    let manager = sandbox.manager();
    manager.ensure().await.expect("ensure");
    assert!(socket_activated(&manager).await);
    assert_graceful(&manager.stop().await.expect("stop"));
    wait_exit(&mut child).await;

    std::fs::remove_file(&socket).expect("remove the socket the tool left");
    let activator = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || {
        for conn in activator.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });

    let looks = sandbox.manager();
    let stopped = looks.status().await.expect("status");
    assert_eq!(stopped.state, State::Stopped, "{stopped:?}");
    let detail = stopped.detail.unwrap_or_default();
    assert!(detail.contains("socket-activated"), "{detail}");
    assert_eq!(
        looks.stop().await.expect("stop"),
        spfs_autostart::StopOutcome::NotRunning
    );
    let mut watcher = looks.watch().expect("watch");
    let first = tokio::time::timeout(WAIT, watcher.next())
        .await
        .expect("a first update")
        .expect("the feed is open")
        .expect("a status");
    assert_eq!(first.state, State::Stopped);
    // The watch asks again every 2 s while stopped.
    let more = tokio::time::timeout(std::time::Duration::from_millis(4500), watcher.next()).await;
    assert!(more.is_err(), "{more:?}");
    // The same manager that saw it running (its channel cached) too.
    assert_eq!(status(&manager).await.state, State::Stopped);
    assert_eq!(connections.load(Ordering::SeqCst), 0, "a look connected");

    // `ensure` wants the service, so it connects (here to a peer that is
    // not a gRPC server: a conflict).
    let _ = manager.ensure().await;
    assert!(
        connections.load(Ordering::SeqCst) > 0,
        "ensure never connected"
    );
}
