//! The uniffi surface: mirror types with `From` conversions and a
//! `ServiceManager` object that holds the core's manager and delegates.
//!
//! Async methods run on the library's runtime (so the foreign side may poll
//! them from any executor); a call whose future the caller drops still runs
//! to its end, so an `ensure` is never cut off halfway through a start.
//! `watch` and `follow_logs` feed an observer from a task on that runtime
//! until their [`TaskHandle`] is cancelled or dropped.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::feed;
use crate::process::PerProcess;
use crate::runtime::runtime;

/// How to build a [`ServiceManager`]: the config file (or the usual
/// lookup when `None`), then each field that is `Some` on top of it. Every
/// field defaults to `None` in the generated bindings.
#[derive(Clone, Debug, Default, uniffi::Record)]
pub struct ServiceConfig {
    /// A TOML config file; `None` reads `SPFS_AUTOSTART_CONFIG` or the
    /// per-user file when it exists.
    #[uniffi(default)]
    pub config_file: Option<String>,
    /// The service program: a bare name or an absolute path.
    #[uniffi(default)]
    pub program: Option<String>,
    /// The program's arguments (replace the configured ones).
    #[uniffi(default)]
    pub args: Option<Vec<String>>,
    /// Where the service listens: `unix`, `unix:///PATH` or `tcp://IP:PORT`.
    #[uniffi(default)]
    pub endpoint: Option<String>,
    /// The state directory (locks, record, socket).
    #[uniffi(default)]
    pub state_dir: Option<String>,
    /// The log directory.
    #[uniffi(default)]
    pub log_dir: Option<String>,
    /// How long a start may take.
    #[uniffi(default)]
    pub ready_timeout_secs: Option<u64>,
    /// How long each stop step may take.
    #[uniffi(default)]
    pub stop_timeout_secs: Option<u64>,
    /// Idle exit for kit services; 0 means never.
    #[uniffi(default)]
    pub idle_timeout_secs: Option<u64>,
    /// The version the running service must report.
    #[uniffi(default)]
    pub expected_version: Option<String>,
}

/// The state of the service as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ServiceState {
    /// It answers at its endpoint.
    Running,
    /// It holds the instance lock and is not serving yet.
    Starting,
    /// It is shutting down.
    Stopping,
    /// No service is alive.
    Stopped,
    /// It holds the instance lock but does not answer.
    Unresponsive,
    /// Something that is not our service answers at the endpoint.
    Conflict,
}

/// A lease: the service stays up while process `pid` lives.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Lease {
    /// Its id, for `release`.
    pub id: u64,
    /// The process it follows.
    pub pid: u32,
    /// Who took it.
    pub label: String,
}

/// An environment the service has mounted for a process tree.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Mount {
    /// The runtime's name; empty when the caller gave none.
    pub runtime_name: String,
    /// The root of the process tree the mount serves.
    pub root_pid: u32,
    /// Whether writes go to a scratch directory.
    pub editable: bool,
    /// The environment, in spfs's EnvSpec text form (`-` is empty).
    pub env_spec: String,
}

/// How bad a doctor finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum DoctorSeverity {
    /// As it should be.
    Ok,
    /// Works, but the user should know.
    Warning,
    /// Stops the service from working.
    Problem,
}

/// One thing the doctor checked.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DoctorFinding {
    /// What was checked: `program`, `endpoint`, `state dir`, ...
    pub check: String,
    /// How it went.
    pub severity: DoctorSeverity,
    /// What was found.
    pub message: String,
    /// What to do about it, for warnings and problems.
    pub fix: Option<String>,
}

/// Everything the doctor found.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DoctorReport {
    /// Every finding, in the order checked.
    pub findings: Vec<DoctorFinding>,
    /// What `ensure` would do next.
    pub next: String,
    /// No finding is a problem.
    pub healthy: bool,
}

impl From<spfs_autostart_core::doctor::Report> for DoctorReport {
    fn from(report: spfs_autostart_core::doctor::Report) -> Self {
        use spfs_autostart_core::doctor::Severity as S;
        let healthy = report.healthy();
        DoctorReport {
            findings: report
                .findings
                .into_iter()
                .map(|f| DoctorFinding {
                    check: f.check,
                    severity: match f.severity {
                        S::Ok => DoctorSeverity::Ok,
                        S::Warning => DoctorSeverity::Warning,
                        S::Problem => DoctorSeverity::Problem,
                    },
                    message: f.summary,
                    fix: f.fix,
                })
                .collect(),
            next: report.next,
            healthy,
        }
    }
}

/// A status report.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ServiceStatus {
    /// The state.
    pub state: ServiceState,
    /// The service's pid, when known.
    pub pid: Option<u32>,
    /// The version it reports (kit services only).
    pub version: Option<String>,
    /// The endpoint, in config syntax.
    pub endpoint: String,
    /// Seconds since it started.
    pub uptime_secs: Option<u64>,
    /// Its log file.
    pub log_file: String,
    /// Leases it holds.
    pub leases: Vec<Lease>,
    /// The environments it has mounted (from `status` and `watch`, when
    /// the service answers `VfsService/Status`; empty otherwise).
    pub mounts: Vec<Mount>,
    /// Seconds until it exits for idleness, when idle.
    pub idle_exit_in_secs: Option<u64>,
    /// Things the user should know.
    pub warnings: Vec<String>,
    /// What was found, for `Conflict` and `Unresponsive`.
    pub detail: Option<String>,
}

/// How `stop` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum StopOutcome {
    /// It was running and has stopped.
    Stopped,
    /// Nothing was running.
    NotRunning,
}

/// A failure, by kind. Every variant carries the full message, and for
/// startup failures the service's log file and its last lines.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ServiceError {
    /// The service program was not found where we looked.
    #[error("{message}")]
    BinaryNotFound {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The program was found but could not be started.
    #[error("{message}")]
    SpawnFailed {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The service exited before it became ready.
    #[error("{message}")]
    ExitedDuringStartup {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The service did not become ready in time; it was killed.
    #[error("{message}")]
    ReadyTimeout {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// A service is alive but does not answer.
    #[error("{message}")]
    Unresponsive {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The endpoint is taken by something that is not our service.
    #[error("{message}")]
    EndpointConflict {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// A file or directory has an owner or mode we must not use.
    #[error("{message}")]
    PermissionDenied {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The running service has another version than the configured one.
    #[error("{message}")]
    VersionMismatch {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The configuration is malformed or names something unusable.
    #[error("{message}")]
    InvalidConfig {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The operation does not exist on this system.
    #[error("{message}")]
    Unsupported {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// Any other operating-system error.
    #[error("{message}")]
    Io {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// `launchctl` refused, timed out or could not be run.
    #[error("{message}")]
    LaunchctlFailed {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// A bug: a panic was caught, or the core reported a kind this binding
    /// does not know yet.
    #[error("{message}")]
    Internal {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
}

impl ServiceError {
    /// An `Internal` error with `message` and no log.
    pub(crate) fn internal(message: String) -> Self {
        ServiceError::Internal {
            message,
            log_file: None,
            log_tail: Vec::new(),
        }
    }
}

/// The one mapping of core errors to the public enum.
impl From<spfs_autostart_core::Error> for ServiceError {
    fn from(e: spfs_autostart_core::Error) -> Self {
        use spfs_autostart_core::ErrorKind as K;
        let message = e.message().to_string();
        let log_file = e.log().map(|l| l.path.to_string_lossy().into_owned());
        let log_tail = e.log().map(|l| l.tail.clone()).unwrap_or_default();
        macro_rules! variant {
            ($v:ident) => {
                ServiceError::$v {
                    message,
                    log_file,
                    log_tail,
                }
            };
        }
        match e.kind() {
            K::BinaryNotFound => variant!(BinaryNotFound),
            K::SpawnFailed => variant!(SpawnFailed),
            K::ExitedDuringStartup => variant!(ExitedDuringStartup),
            K::ReadyTimeout => variant!(ReadyTimeout),
            K::Unresponsive => variant!(Unresponsive),
            K::EndpointConflict => variant!(EndpointConflict),
            K::PermissionDenied => variant!(PermissionDenied),
            K::VersionMismatch => variant!(VersionMismatch),
            K::InvalidConfig => variant!(InvalidConfig),
            K::Unsupported => variant!(Unsupported),
            K::Io => variant!(Io),
            K::LaunchctlFailed => variant!(LaunchctlFailed),
            _ => variant!(Internal),
        }
    }
}

impl From<spfs_autostart_core::State> for ServiceState {
    fn from(s: spfs_autostart_core::State) -> Self {
        use spfs_autostart_core::State as S;
        match s {
            S::Running => ServiceState::Running,
            S::Starting => ServiceState::Starting,
            S::Stopping => ServiceState::Stopping,
            S::Stopped => ServiceState::Stopped,
            S::Unresponsive => ServiceState::Unresponsive,
            S::Conflict => ServiceState::Conflict,
        }
    }
}

impl From<spfs_autostart_core::Lease> for Lease {
    fn from(l: spfs_autostart_core::Lease) -> Self {
        Lease {
            id: l.id,
            pid: l.pid,
            label: l.label,
        }
    }
}

impl From<spfs_autostart_core::Mount> for Mount {
    fn from(m: spfs_autostart_core::Mount) -> Self {
        Mount {
            runtime_name: m.runtime_name,
            root_pid: m.root_pid,
            editable: m.editable,
            env_spec: m.env_spec,
        }
    }
}

impl From<spfs_autostart_core::Status> for ServiceStatus {
    fn from(s: spfs_autostart_core::Status) -> Self {
        ServiceStatus {
            state: s.state.into(),
            pid: s.pid,
            version: s.version,
            endpoint: s.endpoint,
            uptime_secs: s.uptime_secs,
            log_file: s.log_file.to_string_lossy().into_owned(),
            leases: s.leases.into_iter().map(Lease::from).collect(),
            mounts: s.mounts.into_iter().map(Mount::from).collect(),
            idle_exit_in_secs: s.idle_exit_in_secs,
            warnings: s.warnings,
            detail: s.detail,
        }
    }
}

impl From<spfs_autostart_core::StopOutcome> for StopOutcome {
    fn from(o: spfs_autostart_core::StopOutcome) -> Self {
        match o {
            spfs_autostart_core::StopOutcome::Stopped { .. } => StopOutcome::Stopped,
            spfs_autostart_core::StopOutcome::NotRunning => StopOutcome::NotRunning,
        }
    }
}

impl ServiceConfig {
    /// The core configuration: the file (or the usual lookup), then every
    /// field that is set.
    pub(crate) fn to_core(
        &self,
    ) -> Result<spfs_autostart_core::Config, spfs_autostart_core::Error> {
        let mut config =
            spfs_autostart_core::Config::load(self.config_file.as_deref().map(Path::new))?;
        if let Some(program) = &self.program {
            config.set_program(program)?;
        }
        if let Some(args) = &self.args {
            config.args = args.clone();
        }
        if let Some(endpoint) = &self.endpoint {
            config.set_endpoint(endpoint)?;
        }
        if let Some(dir) = &self.state_dir {
            config.set_state_dir(dir)?;
        }
        if let Some(dir) = &self.log_dir {
            config.set_log_dir(dir)?;
        }
        if let Some(secs) = self.ready_timeout_secs {
            config.set_ready_timeout_secs(secs)?;
        }
        if let Some(secs) = self.stop_timeout_secs {
            config.set_stop_timeout_secs(secs)?;
        }
        if let Some(secs) = self.idle_timeout_secs {
            config.set_idle_timeout_secs(secs)?;
        }
        if let Some(version) = &self.expected_version {
            config.set_expected_version(version)?;
        }
        // Each setter checked its value by the same rules as the config
        // file and the environment, which `load` checked.
        Ok(config)
    }
}

/// Receives each state change of the service, starting with the current one.
///
/// Calls come one at a time on a thread that belongs to the feed (never on
/// the caller's thread, never two at once). A method that fails (a foreign
/// exception) does not end the feed: the failure is passed to `on_error`.
#[uniffi::export(with_foreign)]
pub trait StatusObserver: Send + Sync {
    /// Called with the new status.
    fn on_status(&self, status: ServiceStatus) -> Result<(), ServiceError>;
    /// Called when the feed cannot go on as asked: the state dir cannot be
    /// watched (the feed then ends; `status()` says why), or `on_status`
    /// failed (the feed goes on). When this method fails too, the feed ends.
    fn on_error(&self, message: String) -> Result<(), ServiceError>;
}

/// Receives the lines appended to the service log.
///
/// Calls come one at a time on a thread that belongs to the feed. A method
/// that fails (a foreign exception) does not end the feed: the failure is
/// passed to `on_error`.
#[uniffi::export(with_foreign)]
pub trait LogObserver: Send + Sync {
    /// Called with each new line, without its newline.
    fn on_line(&self, line: String) -> Result<(), ServiceError>;
    /// Called when the log cannot be read (more lines may follow), or when
    /// `on_line` failed. When this method fails too, the feed ends.
    fn on_error(&self, message: String) -> Result<(), ServiceError>;
}

/// A callback failed in the host: the host's own error, or an unexpected
/// one (a Python exception, a Swift error) that the bindings report as this.
impl From<uniffi::UnexpectedUniFFICallbackError> for ServiceError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ServiceError::internal(format!("the observer failed: {}", e.reason))
    }
}

/// Report a failed observer call to `on_error`; `false` ends the feed.
fn report(result: Result<(), ServiceError>, on_error: impl FnOnce(String) -> bool) -> bool {
    match result {
        Ok(()) => true,
        Err(e) => on_error(e.to_string()),
    }
}

/// A running `watch` or `follow_logs` feed. It stops on [`TaskHandle::cancel`]
/// or when the handle is dropped.
///
/// Each feed costs one thread of its own (the observer is called there) plus
/// what it watches: a connection to the service for `watch`, the open log
/// file and a file-system watch for `follow_logs`. Observers that block
/// therefore delay only their own feed.
#[derive(Debug, uniffi::Object)]
pub struct TaskHandle {
    gate: Arc<feed::Gate>,
}

#[uniffi::export]
impl TaskHandle {
    /// Stop the feed. When it returns, the observer is not being called and
    /// will not be called again (a call in progress is waited for, unless
    /// `cancel` is called from inside it). Calling it again does nothing.
    pub fn cancel(&self) {
        self.gate.cancel(None);
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        self.gate.cancel(None);
    }
}

/// Stop every `watch` and `follow_logs` feed of this process, waiting up to
/// five seconds for observer calls in progress; no observer is called
/// afterwards, even by feeds started later. For hosts that are exiting: an
/// interpreter must not be called into while it finalizes, so the Python
/// bindings run this at exit (`atexit`).
#[uniffi::export]
pub fn stop_all_feeds() {
    feed::stop_all(Duration::from_secs(5));
}

/// Run a core future on the library's runtime, so the foreign side may poll
/// the result from any executor; a panic becomes `ServiceError::Internal`.
async fn on_runtime<T, F>(future: F) -> Result<T, ServiceError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, spfs_autostart_core::Error>> + Send + 'static,
{
    match runtime().spawn(future).await {
        Ok(result) => result.map_err(ServiceError::from),
        Err(e) => Err(ServiceError::internal(format!(
            "spfs-autostart: internal error ({e}); please report it"
        ))),
    }
}

/// Manages one service: start it on demand, stop it, report its status and
/// read its logs. Usable in a child after `fork()`: the child gets its own
/// connections on first use.
#[derive(Debug, uniffi::Object)]
pub struct ServiceManager {
    core: PerProcess,
}

impl ServiceManager {
    fn core(&self) -> Result<Arc<spfs_autostart_core::ServiceManager>, ServiceError> {
        Ok(self.core.get()?)
    }
}

#[uniffi::export]
impl ServiceManager {
    /// A manager for `config`: the config file (or the usual lookup), then
    /// every field that is set, validated as the file and the environment
    /// are. Touches nothing on disk but the config file.
    #[uniffi::constructor]
    pub fn new(config: ServiceConfig) -> Result<Arc<Self>, ServiceError> {
        Ok(Arc::new(ServiceManager {
            core: PerProcess::new(config.to_core()?)?,
        }))
    }

    /// A manager for the usual configuration (file, then environment).
    #[uniffi::constructor]
    pub fn with_defaults() -> Result<Arc<Self>, ServiceError> {
        Self::new(ServiceConfig::default())
    }

    /// Make sure the service runs, starting it if needed; its status once it
    /// answers. Exactly one service starts however many callers race.
    pub async fn ensure(&self) -> Result<ServiceStatus, ServiceError> {
        let core = self.core()?;
        on_runtime(async move { core.ensure().await })
            .await
            .map(ServiceStatus::from)
    }

    /// Stop the service: graceful, then SIGTERM, then SIGKILL.
    pub async fn stop(&self) -> Result<StopOutcome, ServiceError> {
        let core = self.core()?;
        on_runtime(async move { core.stop().await })
            .await
            .map(StopOutcome::from)
    }

    /// The service's status, without starting it.
    pub async fn status(&self) -> Result<ServiceStatus, ServiceError> {
        let core = self.core()?;
        on_runtime(async move { core.status().await })
            .await
            .map(ServiceStatus::from)
    }

    /// Check everything a user would otherwise debug by hand (as
    /// `spfs-autostart doctor` does): each finding with its fix. It only
    /// looks: nothing is started, stopped or changed.
    pub async fn doctor(&self) -> Result<DoctorReport, ServiceError> {
        let core = self.core()?;
        on_runtime(async move {
            Ok::<_, spfs_autostart_core::Error>(spfs_autostart_core::doctor::diagnose(&core).await)
        })
        .await
        .map(DoctorReport::from)
    }

    /// The last `n` lines of the service log, oldest first; at most its
    /// last 4 MiB are read, however large `n` is.
    pub fn tail_logs(&self, n: u32) -> Result<Vec<String>, ServiceError> {
        Ok(self.core()?.tail_logs(n as usize)?)
    }

    /// The service's log file.
    pub fn log_file(&self) -> String {
        self.core()
            .map(|core| core.paths().log_file().to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Feed `observer` the current status, then every state change, until the
    /// returned handle is cancelled or dropped. When the state dir cannot be
    /// watched, `on_error` says why and the feed ends.
    pub fn watch(&self, observer: Arc<dyn StatusObserver>) -> Arc<TaskHandle> {
        let core = self.core();
        let gate = feed::start(
            move |tx: mpsc::Sender<Result<ServiceStatus, String>>| async move {
                let mut watcher = match core.and_then(|core| Ok(core.watch()?)) {
                    Ok(watcher) => watcher,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string())).await;
                        return;
                    }
                };
                while let Some(status) = watcher.next().await {
                    if tx.send(Ok(status.into())).await.is_err() {
                        return;
                    }
                }
            },
            move |event| match event {
                Ok(status) => report(observer.on_status(status), |message| {
                    observer.on_error(message).is_ok()
                }),
                // The feed could not start: report it and end.
                Err(message) => {
                    let _ = observer.on_error(message);
                    false
                }
            },
        );
        Arc::new(TaskHandle { gate })
    }

    /// Feed `observer` every line appended to the service log from now on
    /// (use `tail_logs` for the lines before), across rotation, until the
    /// returned handle is cancelled or dropped.
    pub fn follow_logs(&self, observer: Arc<dyn LogObserver>) -> Arc<TaskHandle> {
        let core = self.core();
        let gate = feed::start(
            move |tx: mpsc::Sender<Result<String, String>>| async move {
                let mut follower = match core.and_then(|core| Ok(core.follow_logs(0)?)) {
                    Ok(follower) => follower,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string())).await;
                        return;
                    }
                };
                while let Some(line) = follower.next().await {
                    if tx.send(line.map_err(|e| e.to_string())).await.is_err() {
                        return;
                    }
                }
            },
            move |event| match event {
                Ok(line) => report(observer.on_line(line), |message| {
                    observer.on_error(message).is_ok()
                }),
                Err(message) => observer.on_error(message).is_ok(),
            },
        );
        Arc::new(TaskHandle { gate })
    }

    /// Take a lease: the service stays up while process `pid` lives.
    pub async fn acquire(&self, pid: u32, label: String) -> Result<Lease, ServiceError> {
        let core = self.core()?;
        on_runtime(async move { core.acquire(pid, &label).await })
            .await
            .map(Lease::from)
    }

    /// Give a lease back; `false` when the service did not hold it.
    pub async fn release(&self, lease_id: u64) -> Result<bool, ServiceError> {
        let core = self.core()?;
        on_runtime(async move { core.release(lease_id).await }).await
    }
}

/// The library's version (the Cargo package version).
#[uniffi::export]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
