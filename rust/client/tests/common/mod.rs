//! What the client's integration tests add to the shared sandbox
//! (`spfs_autostart_test_support::Sandbox`): a kit-mode sandbox, the
//! client's view of its config, and bounded waits.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use spfs_autostart::{Config, ServiceManager, State, Status, StopMethod, StopOutcome};
use tokio::time::Instant;

/// The generous bound for anything that should happen "within a few seconds".
pub const WAIT: Duration = Duration::from_secs(20);

// Not every test file uses every helper.
#[allow(unused_imports)]
pub use spfs_autostart_test_support::{Sandbox, Sleeper, alive, reference_service};

/// The shared sandbox (`spfs_autostart_test_support::Sandbox`) for the
/// reference service in kit mode on the state dir's socket, with `args` and
/// an idle timeout of `idle_secs` (0 = never). The sandbox's environment
/// (its HOME, its marker) goes to the service through the config's `[env]`:
/// the `ServiceManager` here starts it from the test process.
pub fn kit_sandbox(idle_secs: u64, args: &[&str]) -> Sandbox {
    let mut sandbox = Sandbox::new()
        .with("args", args.to_vec())
        .with("idle_timeout_secs", secs(idle_secs))
        .with("endpoint", "unix")
        .with_env_in_config();
    // No per-user config file of the caller's reaches the service.
    let config_home = sandbox.root().join("config").display().to_string();
    sandbox
        .set_env("XDG_CONFIG_HOME", &config_home)
        .set_env("SPFS_AUTOSTART_CONFIG", "");
    sandbox
}

/// A whole number of seconds as a TOML integer.
pub fn secs(secs: u64) -> i64 {
    i64::try_from(secs).expect("seconds fit in a TOML integer")
}

/// What the client's tests need of a sandbox beyond the shared one: the
/// client's view of its config file.
pub trait Client {
    /// The sandbox's config file as the client loads it, with the
    /// sandbox's environment.
    fn client_config(&self) -> Config;

    /// A manager for that config.
    fn manager(&self) -> ServiceManager {
        ServiceManager::new(self.client_config()).expect("manager")
    }
}

impl Client for Sandbox {
    fn client_config(&self) -> Config {
        Config::load_with(Some(&self.config_file()), |name| self.var(name))
            .expect("the sandbox's config loads")
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

/// Asserts that a stop ended the service by its graceful path.
pub fn assert_graceful(outcome: &StopOutcome) {
    assert!(
        matches!(
            outcome,
            StopOutcome::Stopped {
                how: StopMethod::Graceful,
                ..
            }
        ),
        "{outcome:?}"
    );
}

/// Wait until the service's record says it is stopping (a kit writes so
/// once a shutdown is asked for).
pub async fn record_says_stopping(sandbox: &Sandbox) {
    let record = sandbox.state_dir().join("service.json");
    wait_for(
        "the record to say stopping",
        Duration::from_secs(20),
        || {
            let record = record.clone();
            async move {
                std::fs::read_to_string(&record)
                    .is_ok_and(|r| r.contains("\"stopping\""))
                    .then_some(())
            }
        },
    )
    .await;
}

/// Start a call that counts as work (`VfsService/Unmount`, which the
/// reference service's `--slow-calls-ms` holds open) over `manager`'s
/// channel, and return once the service counts it (its status shows no
/// idle exit ahead: the service needs an idle timeout other than 0); the
/// task ends with the call.
pub async fn call_in_flight(
    manager: &ServiceManager,
) -> tokio::task::JoinHandle<Result<(), tonic::Status>> {
    use spfs_autostart::proto::vfs::{UnmountRequest, vfs_service_client::VfsServiceClient};
    let channel = manager.channel().await.expect("channel");
    let call = tokio::spawn(async move {
        VfsServiceClient::new(channel)
            .unmount(UnmountRequest { root_pid: 0 })
            .await
            .map(drop)
    });
    wait_for(
        "the call to be in flight",
        Duration::from_secs(20),
        || async {
            let now = manager.status().await.expect("status");
            (now.state == State::Running && now.idle_exit_in_secs.is_none()).then_some(())
        },
    )
    .await;
    call
}
