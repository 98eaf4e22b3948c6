//! Socket activation, systemd style, for real: `systemd-socket-activate`
//! (Debian package `systemd`) holds the socket and starts the reference
//! service on the first connection. Linux only.
#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::path::Path;
use std::process::{Command, Stdio};

use spfs_autostart_test_support::Reaped;

use common::{
    Client, Sandbox, WAIT, assert_graceful, kit_sandbox, reference_service, status, wait_for,
};
use spfs_autostart::proto::control::{InfoRequest, control_client::ControlClient};
use spfs_autostart::{ServiceManager, State};

const TOOL: &str = "systemd-socket-activate";

/// Kills and reaps a child on drop (the Sandbox's Drop only finds processes
/// whose environment names the state dir).
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
    socket_activate_with(sandbox, socket, &[], &[])
}

/// [`socket_activate`] with more options for the tool (`--accept`, more
/// `--listen`s), given after the service's socket, and `args` for the
/// service.
fn socket_activate_with(
    sandbox: &Sandbox,
    socket: &Path,
    options: &[&str],
    args: &[&str],
) -> Reaped {
    let endpoint = format!("unix://{}", socket.display());
    activate(
        sandbox,
        &socket.display().to_string(),
        Some(&endpoint),
        options,
        args,
    )
}

/// `systemd-socket-activate` listening on `listen` (a path, or `IP:PORT`)
/// for the reference service with `args`, told `endpoint` if given (else
/// the state dir's socket is its endpoint), its output in `activate.log`.
fn activate(
    sandbox: &Sandbox,
    listen: &str,
    endpoint: Option<&str>,
    options: &[&str],
    args: &[&str],
) -> Reaped {
    let state = sandbox.state_dir().display().to_string();
    let (out, err) = output_file(sandbox, "activate.log");
    let spawned = Command::new(TOOL)
        // The service's socket first: it is the one passed as descriptor 3.
        .arg(format!("--listen={listen}"))
        .args(options)
        .arg(format!("--setenv=SPFS_AUTOSTART_STATE_DIR={state}"))
        .args(endpoint.map(|e| format!("--setenv=SPFS_AUTOSTART_ENDPOINT={e}")))
        .arg("--setenv=SPFS_AUTOSTART_IDLE_TIMEOUT_SECS=0")
        .arg(format!(
            "--setenv=XDG_CONFIG_HOME={}",
            sandbox.root().join("config").display()
        ))
        .arg("--setenv=SPFS_AUTOSTART_CONFIG=")
        .arg(reference_service())
        .args(args)
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
/// Wait until the activator listens at `socket`: not only bound (between
/// its bind and its listen a connect is refused, and a busy machine made
/// that moment long enough for `ensure` to start a service of its own),
/// and without connecting, which would start the service.
async fn wait_listening(socket: &Path) {
    wait_for("systemd-socket-activate to listen", WAIT, || {
        let ready = listens(socket);
        async move { ready.then_some(()) }
    })
    .await;
}

/// Whether a socket listens at `socket`, by `/proc/net/unix` (its flags
/// have `__SO_ACCEPTCON`, 0x10000).
fn listens(socket: &Path) -> bool {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    let path = socket.to_string_lossy();
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() >= 8
            && fields[7] == path
            && u32::from_str_radix(fields[3], 16).is_ok_and(|flags| flags & 0x10000 != 0)
    })
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
    // The tool ran the service in its own process: nobody holds the socket
    // now, and nothing says an activator does (it said so, and `doctor`
    // found socket activation "ok").
    let now = status(&manager).await;
    assert_eq!(now.state, State::Stopped);
    assert!(
        !now.detail.unwrap_or_default().contains("socket-activated"),
        "{:?}",
        status(&manager).await
    );
    let report = spfs_autostart::doctor::diagnose(&manager).await;
    assert!(
        report
            .findings
            .iter()
            .all(|f| !f.summary.contains("launchd or systemd holds the socket")),
        "{:?}",
        report.findings
    );
    assert!(!log().contains("ERROR"), "{}", log());
}

/// systemd may pass more sockets than the one served: they stay open (they
/// are systemd's), but close on exec, so nothing the service starts
/// inherits them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_passed_sockets_are_not_inherited_by_the_services_children() {
    let sandbox = kit_sandbox(0, &[]);
    make_state_dir(&sandbox);
    let socket = sandbox.state_dir().join("service.sock");
    let extra = sandbox.root().join("extra.sock");
    let mut child = socket_activate_with(
        &sandbox,
        &socket,
        &[&format!("--listen={}", extra.display())],
        &[],
    );
    let log = || std::fs::read_to_string(sandbox.root().join("activate.log")).unwrap_or_default();
    wait_listening(&socket).await;
    let manager = sandbox.manager();
    let running = manager
        .ensure()
        .await
        .unwrap_or_else(|e| panic!("ensure: {e}\n{}", log()));
    let pid = running.pid.expect("a pid");
    let flags = |fd: u32| {
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
            .unwrap_or_else(|e| panic!("descriptor {fd} of the service: {e}\n{}", log()));
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .expect("a flags line");
        u32::from_str_radix(flags.trim(), 8).expect("octal flags")
    };
    const O_CLOEXEC: u32 = 0o2000000;
    assert_ne!(flags(3) & O_CLOEXEC, 0, "the served socket");
    assert_ne!(
        flags(4) & O_CLOEXEC,
        0,
        "the extra socket would be inherited"
    );
    assert!(log().contains("systemd passed 2 sockets"), "{}", log());
    assert_graceful(&manager.stop().await.expect("stop"));
    wait_exit(&mut child).await;
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
        sandbox
            .command(reference_service())
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
    let _tool = socket_activate_with(&sandbox, &socket, &["--accept"], &[]);
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
    // Refused before it wrote a record: the last one, which says the
    // service is socket-activated, would still keep a look from
    // connecting (and starting it again).
    assert!(
        !sandbox.state_dir().join("service.json").exists(),
        "a record was written before the socket was refused"
    );
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
    // The doctor says who holds the endpoint, and what `ensure` would do.
    let report = spfs_autostart::doctor::diagnose(&looks).await;
    let endpoint = report
        .findings
        .iter()
        .find(|f| f.check == "endpoint")
        .expect("an endpoint finding");
    assert!(
        endpoint.summary.contains("socket activation"),
        "{endpoint:?}"
    );
    assert!(report.next.starts_with("connect to"), "{}", report.next);
    assert_eq!(connections.load(Ordering::SeqCst), 0, "a look connected");

    // `ensure` wants the service, so it connects (here to a peer that is
    // not a gRPC server: a conflict).
    let _ = manager.ensure().await;
    assert!(
        connections.load(Ordering::SeqCst) > 0,
        "ensure never connected"
    );
}

/// An activator that holds the listening socket for as long as it runs, as
/// launchd and systemd do (`systemd-socket-activate` hands its own over and
/// is gone): whenever a connection waits and no service runs, it starts the
/// reference service with the socket as fd 3 (`LISTEN_FDS`), and counts.
struct Activator {
    starts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Activator {
    fn start(sandbox: &Sandbox, socket: &Path, idle_secs: u64) -> Activator {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        use std::sync::atomic::Ordering;
        let listener = std::os::unix::net::UnixListener::bind(socket).expect("bind");
        let starts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let env: Vec<(String, String)> = vec![
            (
                "SPFS_AUTOSTART_STATE_DIR".into(),
                sandbox.state_dir().display().to_string(),
            ),
            (
                "SPFS_AUTOSTART_ENDPOINT".into(),
                format!("unix://{}", socket.display()),
            ),
            (
                "SPFS_AUTOSTART_IDLE_TIMEOUT_SECS".into(),
                idle_secs.to_string(),
            ),
            (
                "XDG_CONFIG_HOME".into(),
                sandbox.root().join("config").display().to_string(),
            ),
            ("SPFS_AUTOSTART_CONFIG".into(), String::new()),
            ("LISTEN_FDS".into(), "1".into()),
        ];
        let (count, stop) = (starts.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            let fd = listener.as_raw_fd();
            while !stop.load(Ordering::SeqCst) {
                let mut poll = [libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                }];
                // SAFETY: one valid pollfd, for this call only.
                if unsafe { libc::poll(poll.as_mut_ptr(), 1, 50) } <= 0 {
                    continue;
                }
                count.fetch_add(1, Ordering::SeqCst);
                let mut command = Command::new("sh");
                // LISTEN_PID is the service's own pid: the shell's, kept by exec.
                command
                    .args(["-c", r#"LISTEN_PID=$$ exec "$0" "$@""#])
                    .arg(reference_service())
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                // SAFETY: dup2 and fcntl are async-signal-safe.
                unsafe {
                    command.pre_exec(move || {
                        if libc::dup2(fd, 3) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        libc::fcntl(3, libc::F_SETFD, 0);
                        Ok(())
                    });
                }
                let Ok(mut child) = command.spawn() else {
                    return;
                };
                while !stop.load(Ordering::SeqCst) {
                    if child.try_wait().ok().flatten().is_some() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        });
        Activator {
            starts,
            done,
            thread: Some(thread),
        }
    }

    fn starts(&self) -> usize {
        self.starts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Activator {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A watch that is open while a socket-activated service runs (a menu bar
/// is) sees it go idle and stop, and does not start it again on the way: a
/// look while it is going would wait in the activator's queue and start
/// the next service the moment this one exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_open_across_an_idle_exit_does_not_start_the_service_again() {
    let sandbox = kit_sandbox(0, &[]);
    make_state_dir(&sandbox);
    let socket = sandbox.state_dir().join("service.sock");
    let activator = Activator::start(&sandbox, &socket, 1);
    let manager = sandbox.manager();
    assert_eq!(
        manager.ensure().await.expect("ensure").state,
        State::Running
    );
    assert!(socket_activated(&manager).await);
    let mut watcher = manager.watch().expect("watch");
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while let Ok(Some(update)) = tokio::time::timeout_at(deadline, watcher.next()).await {
        seen.push(update.expect("a status").state);
    }
    assert_eq!(
        activator.starts(),
        1,
        "started again while watched; the watch saw {seen:?}"
    );
    assert_eq!(seen.last(), Some(&State::Stopped), "{seen:?}");
    // The next `ensure` starts it, as it should.
    manager.ensure().await.expect("ensure");
    assert_eq!(activator.starts(), 2);
    manager.stop().await.expect("stop");
}

/// `LISTEN_FDS` and `LISTEN_PID` without a socket passed as descriptor 3
/// (here it is a file): the service says so and exits, instead of taking
/// whatever descriptor 3 is (its own lock file, when none was passed).
#[test]
fn listen_fds_without_a_passed_socket_is_refused_with_the_reason() {
    let sandbox = kit_sandbox(0, &[]);
    make_state_dir(&sandbox);
    let mut child = std::process::Command::new("/bin/sh")
        .args([
            "-c",
            "export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" 3</dev/null",
        ])
        .arg(common::reference_service())
        .env("SPFS_AUTOSTART_STATE_DIR", sandbox.state_dir())
        .env("SPFS_AUTOSTART_ENDPOINT", "unix")
        .env("HOME", sandbox.home())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the service served (or hung) without its socket");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("LISTEN_FDS") && stderr.contains("is a file, not a socket"),
        "{stderr}"
    );
}

/// A TCP socket handed over while the endpoint the service was given (none:
/// the state dir's socket) is a Unix one: the service names where it
/// listens, the TCP address, in its log, its record and `Info`. It named
/// the Unix socket it never listened on, and `status` read it as
/// unresponsive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_over_tcp_socket_is_the_endpoint_the_service_names() {
    let mut sandbox = kit_sandbox(0, &[]);
    make_state_dir(&sandbox);
    let port = spfs_autostart_test_support::free_port();
    let address = format!("127.0.0.1:{port}");
    sandbox.set("endpoint", format!("tcp://{address}"));
    let mut child = activate(&sandbox, &address, None, &[], &[]);
    let log = || std::fs::read_to_string(sandbox.root().join("activate.log")).unwrap_or_default();
    wait_for("systemd-socket-activate to listen", WAIT, || {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let local = format!(":{port:04X}");
        let ready = table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[1].ends_with(&local) && fields[3] == "0A"
        });
        async move { ready.then_some(()) }
    })
    .await;
    let manager = sandbox.manager();
    let running = manager
        .ensure()
        .await
        .unwrap_or_else(|e| panic!("ensure: {e}\n{}", log()));
    assert_eq!(running.state, State::Running, "{running:?}");
    let tcp = format!("tcp://{address}");
    let channel = manager.channel().await.expect("channel");
    let info = ControlClient::new(channel)
        .info(InfoRequest { touch: false })
        .await
        .expect("Control.Info")
        .into_inner();
    assert_eq!(info.endpoint, tcp);
    assert!(info.socket_activated);
    assert!(log().contains(&format!("serving on {tcp}")), "{}", log());
    let record = std::fs::read_to_string(sandbox.state_dir().join("service.json")).unwrap();
    assert!(record.contains(&tcp), "{record}");
    assert_eq!(status(&manager).await.state, State::Running);
    assert_graceful(&manager.stop().await.expect("stop"));
    wait_exit(&mut child).await;
}

/// A process the service starts in its own set-up, before the kit takes the
/// passed sockets (after `KitConfig::from_env`), inherits none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_started_before_the_kit_takes_the_sockets_inherits_none() {
    let sandbox = kit_sandbox(0, &[]);
    make_state_dir(&sandbox);
    let socket = sandbox.state_dir().join("service.sock");
    let extra = sandbox.root().join("extra.sock");
    let mut child = socket_activate_with(
        &sandbox,
        &socket,
        &[&format!("--listen={}", extra.display())],
        &["--helper-secs", "60"],
    );
    let log = || std::fs::read_to_string(sandbox.root().join("activate.log")).unwrap_or_default();
    wait_listening(&socket).await;
    let manager = sandbox.manager();
    manager
        .ensure()
        .await
        .unwrap_or_else(|e| panic!("ensure: {e}\n{}", log()));
    let helper: u32 = log()
        .split("started helper pid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no helper started:\n{}", log()));
    let sockets: Vec<String> = std::fs::read_dir(format!("/proc/{helper}/fd"))
        .expect("the helper's descriptors")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| target.starts_with("socket:"))
        .collect();
    assert!(sockets.is_empty(), "the helper inherited {sockets:?}");
    assert_graceful(&manager.stop().await.expect("stop"));
    wait_exit(&mut child).await;
}
