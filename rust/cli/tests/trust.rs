//! What `ensure`, `status` and `stop` never trust or touch, against the real
//! binaries: a listener or a file that is not our service at the endpoint, a
//! pid reused by another process, a state dir open to others, a connection
//! from another user.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;

/// A listener of the user's own that speaks no gRPC on the TCP endpoint:
/// a conflict, named by pid and program, and left alone.
#[test]
fn tcp_listener_that_speaks_no_grpc_is_a_conflict_and_is_left_alone() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sb = Sandbox::new().with("endpoint", tcp(port));
    let out = sb.run(&["--json", "ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "EndpointConflict", "{error}");
    // The user's own listener (this test's process) is named: what to stop.
    let named = format!(
        "pid {} ({}) listens there, and it ",
        std::process::id(),
        std::env::current_exe().unwrap().display()
    );
    assert!(
        error["error"]["message"].as_str().unwrap().contains(&named),
        "{error}"
    );
    let status = sb.status();
    assert_eq!(status["state"], "conflict");
    assert!(
        status["detail"].as_str().unwrap().starts_with(&named),
        "{status}"
    );
    assert_eq!(sb.run(&["status"]).status.code(), Some(1));
    let stop = sb.run(&["--json", "stop"]);
    assert_eq!(stop.status.code(), Some(1), "stop refuses to touch it");
    // With the fix `ensure` gives (it had none).
    let error: serde_json::Value = serde_json::from_slice(&stop.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "EndpointConflict", "{error}");
    assert!(
        error["error"]["hints"].to_string().contains("endpoint"),
        "{error}"
    );
    assert!(sb.pids().is_empty(), "nothing was spawned");
    // Still ours, still listening.
    listener.set_nonblocking(true).unwrap();
    let _client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("listener still alive");
}

#[test]
fn file_in_place_of_the_socket_is_a_conflict_and_is_not_removed() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.state_dir()).unwrap();
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = sb.state_dir().join("service.sock");
    std::fs::write(&socket, "precious").unwrap();
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a socket"), "{}", stderr(&out));
    // Nothing listens there: the fix is to remove it, as `doctor` says.
    assert!(stderr(&out).contains("remove it"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("stop it"), "{}", stderr(&out));
    assert_eq!(sb.status()["state"], "conflict");
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "precious");
    assert!(sb.pids().is_empty());
}

#[test]
fn stop_never_signals_a_pid_that_was_reused_by_another_process() {
    let sb = Sandbox::new().with("stop_timeout_secs", 1);
    std::fs::create_dir(sb.state_dir()).unwrap();
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut bystander = Sleeper::start();
    let pid = bystander.pid();
    let start_time = spfs_start_time(pid);
    let write_record = |start: u64| {
        let record = serde_json::json!({
            "pid": pid, "start_time": start, "program": "/bin/sleep", "version": null,
            "endpoint": "unix", "started_at_unix_ms": 1, "phase": "running"
        });
        std::fs::write(sb.state_dir().join("service.json"), record.to_string()).unwrap();
    };
    // A hung "service" holds the lock, but the record's pid now belongs to
    // another process (another start time).
    // The recorded service is gone, so the lock holder is not it (a
    // leftover, like a helper that inherited the lock): not running, and
    // nothing is signalled.
    write_record(start_time + 1);
    let lock = std::fs::File::create(sb.state_dir().join("instance.lock")).unwrap();
    lock.try_lock().unwrap();
    assert_eq!(sb.ok(&["stop"]).trim(), "not running");
    assert!(alive(pid), "the bystander must not be signalled");
    // No lock held: nothing is running, whatever the record says.
    drop(lock);
    write_record(start_time);
    assert_eq!(sb.ok(&["stop"]).trim(), "not running");
    assert!(alive(pid), "the bystander must not be signalled");
    bystander.end();
}

/// Another user's plain server on our TCP port while our lock is held and
/// our record names a live process of ours (a start under way): not ours,
/// whatever the lock and record say. `status` names whose it is; `stop`
/// neither asks it to shut down nor signals our process.
#[test]
fn another_users_server_on_our_port_is_not_ours_whatever_our_lock_and_record_say() {
    let other = second_user();
    let port = free_port();
    let sb = plain_service(port, &[]).with("stop_timeout_secs", 1);
    std::fs::create_dir(sb.state_dir()).unwrap();
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut ours = Sleeper::start();
    let record = serde_json::json!({
        "pid": ours.pid(), "start_time": spfs_start_time(ours.pid()), "program": "/bin/sleep",
        "version": null, "endpoint": tcp(port), "started_at_unix_ms": 1, "phase": "running"
    });
    std::fs::write(sb.state_dir().join("service.json"), record.to_string()).unwrap();
    let lock = std::fs::File::create(sb.state_dir().join("instance.lock")).unwrap();
    lock.try_lock().unwrap();
    let mut theirs = outside_service(port, Some(other), &sb);
    assert_conflict_of(&sb.status(), other);
    let stop = sb.run(&["--json", "stop"]);
    assert_eq!(stop.status.code(), Some(1), "{}", stderr(&stop));
    let error: serde_json::Value = serde_json::from_slice(&stop.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "EndpointConflict", "{error}");
    assert!(alive(ours.pid()), "our process must not be signalled");
    assert!(
        matches!(theirs.try_wait(), Ok(None)),
        "theirs is left alone"
    );
    theirs.kill().unwrap();
    theirs.wait().unwrap();
    ours.end();
}

/// Another program of the user's that answers gRPC at the port while a
/// start is under way (our record says starting, a spawner holds
/// spawn.lock) is not reported running: the spawner alone can tell whether
/// it is the service it started (it ends its own when not), and until it
/// says so the others see a start. It was "running", the pid our record's.
#[test]
fn a_server_answering_while_a_start_is_under_way_is_not_running_until_the_spawner_says() {
    let port = free_port();
    let sb = plain_service(port, &[]);
    std::fs::create_dir(sb.state_dir()).unwrap();
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut starting = Sleeper::start();
    let record = serde_json::json!({
        "pid": starting.pid(), "start_time": spfs_start_time(starting.pid()),
        "program": reference_service(), "version": null, "endpoint": tcp(port),
        "started_at_unix_ms": 1, "phase": "starting"
    });
    std::fs::write(sb.state_dir().join("service.json"), record.to_string()).unwrap();
    let take = |name: &str| {
        let lock = std::fs::File::create(sb.state_dir().join(name)).unwrap();
        lock.try_lock().unwrap();
        lock
    };
    let (_instance, spawner) = (take("instance.lock"), take("spawn.lock"));
    let mut other = outside_service(port, None, &sb);
    let status = sb.status();
    assert_eq!(status["state"], "starting", "{status}");
    assert!(
        status["detail"]
            .as_str()
            .unwrap()
            .contains("has not yet found it to be the service it started"),
        "{status}"
    );
    // `ensure` waits for the start, here until its time is up.
    let out = sb.run(&["--json", "ensure", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    drop(spawner);
    other.kill().unwrap();
    other.wait().unwrap();
    starting.end();
}

fn spfs_start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// The fix a message suggests is a command to paste: a path with a space
/// in it is one quoted word, so the `chmod` acts on it and nothing else.
#[test]
fn the_chmod_a_message_suggests_works_when_pasted_for_a_path_with_a_space() {
    let mut sb = Sandbox::new();
    let state_dir = sb.root().join("my state");
    std::fs::create_dir(&state_dir).unwrap();
    std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    sb.set("state_dir", path_str(&state_dir));
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    let command = message
        .split('`')
        .find(|part| part.starts_with("chmod 700"))
        .unwrap_or_else(|| panic!("a chmod to run: {message}"));
    let ran = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(sb.root())
        .output()
        .unwrap();
    assert!(ran.status.success(), "{command}: {}", stderr(&ran));
    let mode = std::fs::metadata(&state_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{command}");
    assert!(!sb.root().join("state").exists(), "{command}");
    assert_eq!(sb.ensure()["state"], "running");
    sb.ok(&["stop"]);
}

#[test]
fn state_dir_open_to_others_or_owned_by_another_user_is_refused() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.state_dir()).unwrap();
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("chmod 700"), "{}", stderr(&out));
    assert_eq!(
        std::fs::metadata(sb.state_dir())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755,
        "never chmod a directory we did not create"
    );
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    nix::unistd::chown(
        &sb.state_dir(),
        Some(nix::unistd::Uid::from_raw(65534)),
        None,
    )
    .unwrap();
    let out = sb.run(&["--json", "ensure"]);
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "PermissionDenied");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("belongs to uid 65534"),
        "{error}"
    );
    assert!(sb.pids().is_empty());
}

#[test]
fn answering_service_in_a_state_dir_open_to_others_is_not_trusted() {
    let sb = Sandbox::new();
    let pid = pid_of(&sb.ensure());
    // Someone loosened the directory after the service started: whatever
    // answers in it could be anyone's, so even the fast path refuses.
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for command in ["ensure", "status"] {
        let out = sb.run(&[command]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert!(
            stderr(&out).contains("chmod 700"),
            "{command}: {}",
            stderr(&out)
        );
    }
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(
        pid_of(&sb.ensure()),
        pid,
        "the service itself was left alone"
    );
    sb.ok(&["stop"]);
}

/// Connect to `socket` as `uid`, send the HTTP/2 preface and report how many
/// bytes the server sent back before closing (a gRPC server sends SETTINGS).
fn bytes_from_server_as(uid: Option<u32>, socket: &std::path::Path) -> usize {
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
try:
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    data = s.recv(1024)
except (BrokenPipeError, ConnectionResetError, socket.timeout):
    data = b""
print(len(data))
"#;
    let mut command = std::process::Command::new("python3");
    command.arg("-c").arg(script).arg(socket);
    if let Some(uid) = uid {
        std::os::unix::process::CommandExt::uid(&mut command, uid);
    }
    let out = command.output().expect("python3 runs");
    assert!(out.status.success(), "probe failed: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn connection_from_another_uid_is_refused_by_the_peer_credential_check() {
    let other = second_user();
    let sb = Sandbox::new();
    sb.ensure();
    let socket = sb.state_dir().join("service.sock");
    assert!(
        bytes_from_server_as(None, &socket) > 0,
        "the owner is served"
    );
    // Open the file-system path to everyone, as a misconfigured machine
    // might, so only the peer-credential check stands in the way.
    std::fs::set_permissions(sb.root(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(
        bytes_from_server_as(Some(other), &socket),
        0,
        "another uid gets nothing"
    );
    assert!(
        wait_for(Duration::from_secs(5), || sb
            .log()
            .contains(&format!("refused a connection from uid {other}"))),
        "{}",
        sb.log()
    );
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(sb.status()["state"], "running", "the service is unharmed");
    sb.ok(&["stop"]);
}

/// Another user's listener that speaks no gRPC on our TCP port: the
/// conflict says whose it is, as for one that answers.
#[test]
fn another_users_listener_that_speaks_no_grpc_is_named_as_theirs() {
    let other = second_user();
    let port = free_port();
    let sb = Sandbox::new().with("endpoint", tcp(port));
    let mut theirs = sb.command("python3");
    theirs.args([
        "-c",
        "import socket, sys, time\n\
         s = socket.socket()\n\
         s.bind(('127.0.0.1', int(sys.argv[1])))\n\
         s.listen()\n\
         time.sleep(120)",
        &port.to_string(),
    ]);
    std::os::unix::process::CommandExt::uid(&mut theirs, other);
    let mut theirs = theirs.spawn().expect("python3 runs");
    assert!(listening(port), "their listener is up");
    let status = sb.status();
    let whose = format!("uid {other}");
    let detail = status["detail"].as_str().unwrap_or_default().to_string();
    let ensure = sb.run(&["ensure"]);
    let alive = matches!(theirs.try_wait(), Ok(None));
    theirs.kill().unwrap();
    theirs.wait().unwrap();
    assert_eq!(status["state"], "conflict", "{status}");
    assert!(detail.contains(&whose), "{detail}");
    assert_eq!(ensure.status.code(), Some(1));
    assert!(stderr(&ensure).contains(&whose), "{}", stderr(&ensure));
    assert!(
        stderr(&ensure).contains(&as_run(
            &sb,
            "hint: `spfs-autostart config` shows the config file to set endpoint in"
        )),
        "{}",
        stderr(&ensure)
    );
    assert!(alive, "left alone");
    assert_eq!(sb.spawn_count(), 0);
}

/// Another user's socket at an explicit `unix://` endpoint: the conflict
/// says whose it is, as on a TCP port, not only that it speaks no gRPC.
#[test]
fn another_users_socket_at_the_endpoint_is_named_as_theirs() {
    let other = second_user();
    let mut sb = Sandbox::new();
    let socket = sb.root().join("theirs.sock");
    let _theirs = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::os::unix::fs::chown(&socket, Some(other), None).unwrap();
    sb.set("endpoint", format!("unix://{}", path_str(&socket)));
    let whose = format!("uid {other}");
    let status = sb.status();
    assert_eq!(status["state"], "conflict", "{status}");
    let detail = status["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&whose), "{detail}");
    let ensure = sb.run(&["ensure"]);
    assert_eq!(ensure.status.code(), Some(1));
    assert!(stderr(&ensure).contains(&whose), "{}", stderr(&ensure));
    assert!(socket.exists(), "left alone");
    assert_eq!(sb.spawn_count(), 0);
}

/// Another user's server reached through a symbolic link at an explicit
/// `unix://` endpoint (a shared dir), or at a socket file whose owner says
/// ours: the server is theirs, said as theirs, never spoken to as ours
/// (its word on its pid would have us signal that process), and nothing is
/// started beside it.
#[test]
fn another_users_server_behind_a_link_or_a_lying_socket_file_is_theirs() {
    let other = second_user();
    let mut sb = Sandbox::new();
    std::fs::set_permissions(sb.root(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let dir = sb.root().join("theirs");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(other), None).unwrap();
    let target = dir.join("server.sock");
    let mut theirs = sb.command("python3");
    theirs.args([
        "-c",
        "import socket, sys, time\n\
         s = socket.socket(socket.AF_UNIX)\n\
         s.bind(sys.argv[1])\n\
         s.listen()\n\
         time.sleep(120)",
        &path_str(&target),
    ]);
    std::os::unix::process::CommandExt::uid(&mut theirs, other);
    let mut theirs = theirs.spawn().expect("python3 runs");
    assert!(
        wait_for(Duration::from_secs(10), || target.exists()),
        "their listener is up"
    );
    let link = sb.root().join("endpoint.sock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    sb.set("endpoint", format!("unix://{}", path_str(&link)));
    let whose = format!("uid {other}");
    let linked = sb.status();
    // The socket file's owner says ours: only the kernel's peer credentials tell.
    std::os::unix::fs::chown(&target, Some(0), None).unwrap();
    let lying = sb.status();
    let ensure = sb.run(&["ensure"]);
    let alive = matches!(theirs.try_wait(), Ok(None));
    theirs.kill().unwrap();
    theirs.wait().unwrap();
    for status in [&linked, &lying] {
        assert_eq!(status["state"], "conflict", "{status}");
        let detail = status["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(&whose), "{detail}");
    }
    assert_eq!(ensure.status.code(), Some(1));
    assert!(stderr(&ensure).contains(&whose), "{}", stderr(&ensure));
    assert!(alive, "left alone");
    assert_eq!(sb.spawn_count(), 0);
}

/// A socket root listens on and hands to our service (launchd does so for a
/// socket-mode agent; systemd's system manager too): the kernel names root
/// as the listener, and the service is ours all the same.
#[test]
fn a_socket_root_listens_on_for_our_service_is_ours() {
    let other = second_user();
    let sb = Sandbox::new();
    std::fs::set_permissions(sb.root(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let theirs = sb.root().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(other), Some(other)).unwrap();
    let socket = theirs.join("svc.sock");
    let endpoint = format!("unix://{}", path_str(&socket));
    // Root binds and listens, then the service runs as the user with the
    // socket as its descriptor 3 (LISTEN_FDS), as a socket activator does.
    let activator = r#"
import os, socket, sys
path, uid, program = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o666)
s.listen()
pid = os.fork()
if pid == 0:
    if s.fileno() != 3:
        os.dup2(s.fileno(), 3)
    os.set_inheritable(3, True)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.setgid(uid)
    os.setuid(uid)
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.execv(program, [program])
print(pid, flush=True)
"#;
    let home = theirs.join("home");
    let out = sb
        .command("python3")
        .args(["-c", activator, &path_str(&socket), &other.to_string()])
        .arg(spfs_autostart_test_support::reference_service())
        .env("SPFS_AUTOSTART_STATE_DIR", theirs.join("state"))
        .env("SPFS_AUTOSTART_ENDPOINT", &endpoint)
        .env("SPFS_AUTOSTART_IDLE_TIMEOUT_SECS", "0")
        .env("HOME", &home)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let service: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let config = theirs.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "program = \"{}\"\nstate_dir = \"{}\"\nlog_dir = \"{}\"\nendpoint = \"{endpoint}\"\n",
            path_str(&spfs_autostart_test_support::reference_service()),
            path_str(&theirs.join("state")),
            path_str(&theirs.join("logs")),
        ),
    )
    .unwrap();
    std::os::unix::fs::chown(&config, Some(other), Some(other)).unwrap();
    let as_them = |args: &[&str]| {
        use std::os::unix::process::CommandExt;
        sb.command(spfs_autostart_test_support::cli())
            .args(["--json", "--config", &path_str(&config)])
            .args(args)
            .env("HOME", &home)
            .uid(other)
            .gid(other)
            .output()
            .unwrap()
    };
    let seen = wait_for(Duration::from_secs(10), || {
        let status: serde_json::Value =
            serde_json::from_slice(&as_them(&["status"]).stdout).unwrap_or_default();
        status["state"] == "running"
    });
    let status = String::from_utf8_lossy(&as_them(&["status"]).stdout).to_string();
    let stop = as_them(&["stop"]);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(service as i32),
        nix::sys::signal::SIGKILL,
    );
    assert!(seen, "{status}");
    assert!(status.contains(&format!("\"pid\":{service}")), "{status}");
    assert!(stop.status.success(), "{}", stderr(&stop));
}

/// Root's socket in a dir others may write (a shared /tmp) is not taken for
/// ours: any user's LaunchAgent could have launchd (root) listen there.
#[test]
fn a_socket_root_listens_on_in_a_shared_dir_is_not_ours() {
    use std::os::unix::process::CommandExt;
    let other = second_user();
    let sb = Sandbox::new();
    std::fs::set_permissions(sb.root(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let shared = sb.root().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let socket = shared.join("svc.sock");
    let mut root_listener = sb.command("python3");
    root_listener.args([
        "-c",
        "import os, socket, sys, time\n\
         s = socket.socket(socket.AF_UNIX)\n\
         s.bind(sys.argv[1])\n\
         os.chmod(sys.argv[1], 0o666)\n\
         s.listen()\n\
         time.sleep(120)",
        &path_str(&socket),
    ]);
    let mut root_listener = root_listener.spawn().expect("python3 runs");
    assert!(
        wait_for(Duration::from_secs(10), || socket.exists()),
        "root's listener is up"
    );
    let home = shared.join("home");
    let config = shared.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "program = \"{}\"\nstate_dir = \"{}\"\nlog_dir = \"{}\"\nendpoint = \"unix://{}\"\n",
            path_str(&spfs_autostart_test_support::reference_service()),
            path_str(&shared.join("state")),
            path_str(&shared.join("logs")),
            path_str(&socket),
        ),
    )
    .unwrap();
    std::os::unix::fs::chown(&config, Some(other), Some(other)).unwrap();
    let status = sb
        .command(spfs_autostart_test_support::cli())
        .args(["--json", "--config", &path_str(&config), "status"])
        .env("HOME", &home)
        .uid(other)
        .gid(other)
        .output()
        .unwrap();
    root_listener.kill().unwrap();
    root_listener.wait().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["state"], "conflict", "{status}");
    assert!(
        status["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("uid 0"),
        "{status}"
    );
}
