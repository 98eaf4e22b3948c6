//! What the CLI's tests add to the shared sandbox
//! (`spfs_autostart_test_support::Sandbox`): running `spfs-autostart` in it
//! and reading its JSON, and a few helpers for plain services on TCP.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// The `spfs-autostart` binary under test.
pub fn cli_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spfs-autostart"))
}

// Not every test file uses every helper.
#[allow(unused_imports)]
pub use spfs_autostart_test_support::{
    SANDBOX_MARKER, Sandbox, Sleeper, alive, free_port, marked_pids, reference_service,
};

/// Running the CLI in a sandbox (`Sandbox::cli` builds the command).
pub trait Cli {
    /// Run `spfs-autostart ARGS` to completion.
    fn run(&self, args: &[&str]) -> Output;

    /// Run and expect success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "spfs-autostart {args:?} failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `ensure --json`, parsed.
    fn ensure(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["--json", "ensure"])).unwrap()
    }

    /// `status --json`, parsed (any exit code).
    fn status(&self) -> serde_json::Value {
        let out = self.run(&["--json", "status"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

impl Cli for Sandbox {
    fn run(&self, args: &[&str]) -> Output {
        self.cli(args).output().unwrap()
    }
}

/// One change that makes a sandbox's config wrong, for a test that tries
/// several on the same sandbox (each after `reset_config`).
pub type Mistake = fn(&mut Sandbox);

/// `tcp://127.0.0.1:PORT`, an endpoint in the config's syntax.
pub fn tcp(port: u16) -> String {
    format!("tcp://127.0.0.1:{port}")
}

/// `127.0.0.1:PORT`, for the reference service's `--listen`.
pub fn listen(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// A sandbox running the reference service as a plain service
/// (`--plain`, then `flags`, then `--listen`) on `port`.
pub fn plain_service(port: u16, flags: &[&str]) -> Sandbox {
    let listen = listen(port);
    let args: Vec<&str> = ["--plain"]
        .into_iter()
        .chain(flags.iter().copied())
        .chain(["--listen", listen.as_str()])
        .collect();
    Sandbox::new()
        .with("args", args)
        .with("endpoint", tcp(port))
}

pub use spfs_autostart_test_support::wait_for;

/// stderr of an output as text.
/// `text`, a hint as this CLI words it for a bare `spfs-autostart`, as it
/// words it for a run of `sb`: a command in a hint repeats the run's
/// `--config FILE`, so it acts on the same service.
pub fn as_run(sb: &Sandbox, text: &str) -> String {
    text.replace(
        "`spfs-autostart ",
        &format!("`spfs-autostart --config={} ", sb.config_file().display()),
    )
}

/// Make a shell script the sandbox's program: `body` after `#!/bin/sh`,
/// written as `name` in the sandbox's root.
pub fn use_script(sb: &mut Sandbox, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = sb.root().join(name);
    std::fs::write(&script, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    sb.set("program", script.display().to_string());
    script
}

/// The start time the kernel gives process `pid` (`/proc/PID/stat` field
/// 22), as the record stores it.
pub fn start_time_of(pid: u32) -> u64 {
    spfs_autostart_protocol::sys::process_start_time(pid).expect("a live process")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The pid in a status JSON.
pub fn pid_of(status: &serde_json::Value) -> u32 {
    status["pid"].as_u64().expect("status has a pid") as u32
}

/// Path helper.
pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// The uid of a second user, created for the test (root only).
pub fn second_user() -> u32 {
    let user = "spfs-autostart-test";
    if nix::unistd::User::from_name(user).unwrap().is_none() {
        let out = std::process::Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                user,
            ])
            .output()
            .expect("useradd (Debian package passwd) must exist: this test creates a second user");
        assert!(
            out.status.success() || nix::unistd::User::from_name(user).unwrap().is_some(),
            "useradd failed (the test needs root): {}",
            stderr(&out)
        );
    }
    let uid = nix::unistd::User::from_name(user)
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    assert_ne!(uid, nix::unistd::geteuid().as_raw(), "run as another user");
    uid
}

/// A plain reference service on `port`, started outside spfs-autostart (by
/// `uid` when given) with the sandbox's environment, answering before this
/// returns. Marked with the sandbox's state dir, as a spawner would, so the
/// sandbox cleans it up whatever happens.
pub fn outside_service(port: u16, uid: Option<u32>, sb: &Sandbox) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut command = sb.command(reference_service());
    command
        .args(["--plain", "--listen", &listen(port)])
        .env("SPFS_AUTOSTART_STATE_DIR", sb.state_dir())
        .current_dir("/")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(uid) = uid {
        command.uid(uid);
    }
    let child = command.spawn().unwrap();
    assert!(listening(port), "the outside service answers");
    child
}

/// Whether something accepts connections on loopback `port` within 10 s.
pub fn listening(port: u16) -> bool {
    wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
}

/// The lines `child` prints on its piped stdout, as they come (a thread
/// reads them), so a test can wait for each with a timeout.
pub fn lines_of(mut child: std::process::Child) -> (std::process::Child, Receiver<String>) {
    let stdout = child.stdout.take().expect("a piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Start `spfs-autostart ARGS` in the background with piped output.
pub fn background(sb: &Sandbox, args: &[&str]) -> std::process::Child {
    sb.cli(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Send `signal` to `pid`, if it is still there.
pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
}

/// Assert that `status` (`status --json`) is a conflict that says whose the
/// endpoint is: user `uid`'s.
pub fn assert_conflict_of(status: &serde_json::Value, uid: u32) {
    assert_eq!(status["state"], "conflict", "{status}");
    assert!(
        status["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("uid {uid}")),
        "says whose it is: {status}"
    );
}
