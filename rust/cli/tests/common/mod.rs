//! A sandbox per test: its own state dir, log dir and config file, the real
//! binaries, and a Drop that kills every service the test started.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `spfs-autostart` binary under test.
pub fn cli_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spfs-autostart"))
}

// Not every test file uses every helper.
#[allow(unused_imports)]
pub use spfs_autostart_test_support::{alive, reference_service};

/// One test's private world.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub logs: PathBuf,
    pub config: PathBuf,
}

impl Sandbox {
    /// A sandbox running the reference service with `extra` TOML appended.
    pub fn new(extra: &str) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("sa-")
            .tempdir_in("/tmp")
            .unwrap();
        let state = dir.path().join("state");
        let logs = dir.path().join("logs");
        let config = dir.path().join("config.toml");
        let sandbox = Sandbox {
            dir,
            state,
            logs,
            config,
        };
        sandbox.write_config(extra);
        sandbox
    }

    /// Rewrite the config file.
    pub fn write_config(&self, extra: &str) {
        // Defaults for the keys `extra` does not set (TOML allows each once).
        let sets = |key: &str| extra.lines().any(|l| l.trim_start().starts_with(key));
        let mut text = String::new();
        if !sets("program") {
            text.push_str(&format!(
                "program = {:?}\n",
                reference_service().display().to_string()
            ));
        }
        if !sets("ready_timeout_secs") {
            text.push_str("ready_timeout_secs = 20\n");
        }
        text.push_str(&format!(
            "state_dir = {:?}\nlog_dir = {:?}\n{extra}\n",
            self.state.display().to_string(),
            self.logs.display().to_string()
        ));
        std::fs::write(&self.config, text).unwrap();
    }

    /// A `spfs-autostart` command with this sandbox's config and a clean
    /// environment (no caller's SPFS_* settings, HOME inside the sandbox).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(cli_bin());
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("HOME", self.dir.path())
            .stdin(Stdio::null());
        for (key, _) in std::env::vars() {
            if key.starts_with("SPFS_") || key.starts_with("LISTEN_") || key == "XDG_CONFIG_HOME" {
                command.env_remove(key);
            }
        }
        command
    }

    /// Run `spfs-autostart ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Run and expect success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
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
    pub fn ensure(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["--json", "ensure"])).unwrap()
    }

    /// `status --json`, parsed (any exit code).
    pub fn status(&self) -> serde_json::Value {
        let out = self.run(&["--json", "status"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Every live process started for this sandbox's state dir.
    pub fn service_pids(&self) -> Vec<u32> {
        spfs_autostart_test_support::service_pids(&self.state)
    }

    /// How many times a spawner started the service (one header per spawn).
    pub fn spawn_count(&self) -> usize {
        std::fs::read_to_string(self.logs.join("service.log"))
            .unwrap_or_default()
            .matches("--- spfs-autostart: starting")
            .count()
    }

    /// The service log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.logs.join("service.log")).unwrap_or_default()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        spfs_autostart_test_support::kill_services(&self.state);
    }
}

/// Wait until `check` holds, up to `limit`.
pub fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    check()
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// stderr of an output as text.
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
/// `uid` when given), answering before this returns. Marked with
/// `state`, so the sandbox cleans it up whatever happens.
pub fn outside_service(
    port: u16,
    uid: Option<u32>,
    state: &std::path::Path,
) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(reference_service());
    command
        .args(["--plain", "--listen", &format!("127.0.0.1:{port}")])
        .env("SPFS_AUTOSTART_STATE_DIR", state)
        .current_dir("/")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(uid) = uid {
        command.uid(uid);
    }
    let child = command.spawn().unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "the outside service answers"
    );
    child
}
