//! Shared harness for the integration tests that run the real
//! `spfs-reference-service`: a private sandbox (state dir + log dir in a
//! tempdir), a config pointing at the binary, bounded waits, and a Drop that
//! kills every process started for this sandbox, so no test leaves a service
//! behind, whatever it asserted.

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use spfs_autostart::{Config, ServiceManager, Status};
use tokio::time::Instant;

/// The generous bound for anything that should happen "within a few seconds".
pub const WAIT: Duration = Duration::from_secs(20);

pub use spfs_autostart_test_support::{alive, reference_service};

/// A tempdir holding `state` (not created: the client creates it 0700) and
/// `logs`, and a config using them.
#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
    /// The configuration every test starts from.
    pub config: Config,
}

impl Sandbox {
    /// A sandbox running the reference service with `args` and an idle
    /// timeout of `idle_secs` (0 = never).
    pub fn new(idle_secs: u64, args: &[&str]) -> Sandbox {
        let program = reference_service();
        // Short paths: the socket path must fit in sun_path.
        let dir = tempfile::Builder::new()
            .prefix("spfs-at-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let mut config = Config::defaults();
        config.program = program.display().to_string();
        config.args = args.iter().map(|s| s.to_string()).collect();
        config.state_dir = Some(dir.path().join("state"));
        config.log_dir = Some(dir.path().join("logs"));
        config.idle_timeout = Duration::from_secs(idle_secs);
        config.ready_timeout = Duration::from_secs(20);
        config.set_endpoint("unix").expect("endpoint");
        // The service reads the per-user config file too: keep the caller's
        // out of the test.
        config.env.insert(
            "XDG_CONFIG_HOME".into(),
            dir.path().join("config").display().to_string(),
        );
        config
            .env
            .insert("SPFS_AUTOSTART_CONFIG".into(), String::new());
        Sandbox { dir, config }
    }

    /// The tempdir.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The state dir.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The log dir.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    /// `service.log`.
    pub fn log_file(&self) -> PathBuf {
        self.log_dir().join("service.log")
    }

    /// The whole service log ("" when missing).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// A manager for this sandbox's config.
    pub fn manager(&self) -> ServiceManager {
        ServiceManager::new(self.config.clone()).expect("manager")
    }

    /// Live processes started for this sandbox (their environment names its
    /// state dir).
    pub fn pids(&self) -> Vec<u32> {
        spfs_autostart_test_support::service_pids(&self.state_dir())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        spfs_autostart_test_support::kill_services(&self.state_dir());
    }
}

/// Poll `check` until it returns `Some`, for at most `bound`; panics naming
/// `what` otherwise.
pub async fn wait_for<T, F, Fut>(what: &str, bound: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + bound;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {bound:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until `pid` is gone.
pub async fn wait_gone(pid: u32, what: &str) {
    wait_for(what, WAIT, || async move { (!alive(pid)).then_some(()) }).await
}

/// The current status, which must be obtainable.
pub async fn status(manager: &ServiceManager) -> Status {
    manager.status().await.expect("status")
}

/// A `sleep 60` child for leases, killed and reaped on drop.
#[derive(Debug)]
pub struct Sleeper(pub std::process::Child);

impl Sleeper {
    /// Start one.
    pub fn start() -> Sleeper {
        Sleeper(
            std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("spawn sleep"),
        )
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL it and reap it.
    pub fn end(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.end();
    }
}
