//! The client: `ensure`, `stop`, `status`, leases, logs.
//!
//! The handshake (DESIGN.md section 4), written down once here:
//! 1. Probe the endpoint; an answer is the fast path.
//! 2. `instance.lock` held but no answer: a service is alive; wait for it
//!    (blocked on `spawn.lock` while a spawner works, else with backoff),
//!    never spawn a second one.
//! 3. Not held: try `spawn.lock`; the winner probes again under it, then
//!    takes `instance.lock` and spawns, handing the lock to the child, and
//!    holds `spawn.lock` until the child is ready. The others wait for
//!    `spawn.lock` to be released.
//! 4. Wait for readiness; on any failure, timeout or cancellation no child
//!    of ours is left.
//!
//! `stop` and version restarts hold `spawn.lock` too, so they never run
//! while a service is being started, and nobody starts one while they
//! stop. They act on the instance they observed (pid and start time, see
//! [`crate::sys::Instance`]) and signal only that process.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;

use tokio::time::Instant;
use tonic::transport::Channel;

use crate::config::{Config, VersionPolicy};
use crate::error::{Error, ErrorKind, LogExcerpt, Result};
use crate::lock::{self, Backoff};
use crate::logs::{self, LogFollower};
use crate::proto::control::{self, control_client::ControlClient};
use crate::proto::vfs::{self, vfs_service_client::VfsServiceClient};
use crate::record::{Phase, ServiceRecord, unix_ms};
use crate::remedy::{Operation, Remedy};
use crate::rpc::{self, Probe};
use crate::spawn;
use crate::status::{Lease, State, Status, StopMethod, StopOutcome};
use crate::sys::{Instance, ProcessHandle};
use crate::{Paths, ResolvedEndpoint};

/// How long one probe may wait for an answer. A healthy service answers in
/// well under a millisecond; this bounds a hung or foreign peer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a plain service may take to exit after its `Shutdown` answered
/// before the next stop step: services whose `Shutdown` ends them do so at
/// once; spfs-fuse-macos's never does.
const PLAIN_SHUTDOWN_GRACE: Duration = Duration::from_millis(250);

/// Manages one service: the only type most callers need.
#[derive(Debug)]
pub struct ServiceManager {
    config: Config,
    paths: Paths,
    endpoint: ResolvedEndpoint,
    /// The channel of the last successful probe, reused by the fast path.
    channel: Mutex<Option<Channel>>,
}

/// What one look at the endpoint and the locks found. The instance is the
/// process behind it, when known exactly.
enum Observation {
    /// The service answers (and is not shutting down).
    Serving(Status, Channel, Option<Instance>),
    /// A service is alive but does not serve: starting, shutting down or
    /// hung.
    Alive(Status, Option<Instance>),
    /// No service. `orphaned_lock`: `instance.lock` is held, but only by
    /// what a dead service left behind (a helper that inherited it).
    Absent { orphaned_lock: bool },
    /// Something else is at the endpoint.
    Conflict(String),
}

/// One step of the stop sequence. The sequence is data, so a service that
/// needs another one (another signal first, other timeouts) is a change of
/// [`ServiceManager::stop_steps`], not of the loop that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopStep {
    /// Ask over gRPC (`Control.Shutdown`, or `spfs_vfs.VfsService/Shutdown`
    /// for a plain service).
    Rpc,
    /// Send this signal to the observed instance.
    Signal(Signal),
}

impl StopStep {
    fn method(self) -> StopMethod {
        match self {
            StopStep::Rpc => StopMethod::Graceful,
            // spfs-fuse-macos's one graceful signal: it unmounts and exits.
            StopStep::Signal(Signal::SIGINT) => StopMethod::Graceful,
            StopStep::Signal(Signal::SIGKILL) => StopMethod::Killed,
            StopStep::Signal(_) => StopMethod::Terminated,
        }
    }
}

/// What a version restart that did not help left behind: the instance that
/// still reports the wrong version, so no later `ensure` restarts it again.
#[derive(serde::Serialize, serde::Deserialize)]
struct FailedRestart {
    pid: u32,
    start_time: u64,
    expected: String,
}

impl ServiceManager {
    /// A manager for `config`. Touches nothing on disk.
    pub fn new(config: Config) -> Result<ServiceManager> {
        config.validate()?;
        let paths = config.paths()?;
        let endpoint = paths.endpoint(&config.endpoint);
        paths.check_endpoint(&endpoint)?;
        Ok(ServiceManager {
            config,
            paths,
            endpoint,
            channel: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The state and log paths.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The resolved endpoint.
    pub fn endpoint(&self) -> &ResolvedEndpoint {
        &self.endpoint
    }

    /// Make sure the service runs, starting it if needed; returns its status
    /// once it answers. Safe to call from many processes at once: exactly
    /// one service is started. Dropping the future (a timeout, Ctrl-C)
    /// kills a service this call was starting.
    pub async fn ensure(&self) -> Result<Status> {
        let deadline = Instant::now() + self.config.ready_timeout;
        let status = self.ensure_running(deadline).await?;
        let (Some(want), Some(have)) = (&self.config.expected_version, &status.version) else {
            // Nothing to compare (a plain service reports no version): say so.
            return Ok(self.with_version_warning(status));
        };
        if want == have {
            return Ok(status);
        }
        if self.config.on_version_mismatch == VersionPolicy::Error {
            return Err(version_mismatch(want, have, false));
        }
        if !status.leases.is_empty() {
            // Runtimes use it: replacing it would cut them off. It is
            // replaced once idle (or when the user stops it).
            return Ok(self.with_version_warning(status));
        }
        self.restart_for_version(want, deadline).await
    }

    /// Replace a service that reports the wrong version: once, by one
    /// process, under `spawn.lock` (the others wait for it and find the
    /// new service). A replacement that still reports the wrong version is
    /// an error, now and for every later `ensure`, never a restart loop.
    async fn restart_for_version(&self, want: &str, deadline: Instant) -> Result<Status> {
        loop {
            let Some(guard) = lock::take(&self.paths.spawn_lock(), deadline).await? else {
                return Err(self.starting_elsewhere_error());
            };
            let (status, channel, instance) = match self.observe(true, true).await? {
                Observation::Serving(status, channel, instance) => (status, channel, instance),
                Observation::Conflict(what) => return Err(self.conflict_error(&what)),
                Observation::Alive(..) | Observation::Absent { .. } => {
                    drop(guard);
                    let status = self.ensure_running(deadline).await?;
                    if status.version.as_deref() == Some(want) {
                        return Ok(status);
                    }
                    continue;
                }
            };
            let have = status.version.clone().unwrap_or_default();
            if have == want || !status.leases.is_empty() {
                return Ok(self.remember(status, channel));
            }
            if let Some(instance) = instance
                && self.failed_restart(want) == Some(instance)
            {
                return Err(version_mismatch(want, &have, true));
            }
            tracing::info!("service reports version {have}, want {want}: restarting it");
            self.stop_observed(instance, Some(channel), status.managed)
                .await?;
            let status = match self.observe(true, true).await? {
                Observation::Absent { orphaned_lock } => self
                    .spawn(orphaned_lock, deadline)
                    .await?
                    .ok_or_else(|| self.starting_elsewhere_error())?,
                Observation::Serving(status, ..) => status,
                Observation::Conflict(what) => return Err(self.conflict_error(&what)),
                Observation::Alive(status, _) => return Err(self.unresponsive_error(&status)),
            };
            drop(guard);
            return match &status.version {
                Some(have) if have != want => {
                    self.remember_failed_restart(want, status.pid);
                    Err(version_mismatch(want, have, true))
                }
                _ => Ok(status),
            };
        }
    }

    fn failed_restart_path(&self) -> std::path::PathBuf {
        self.paths.state_dir.join("version-restart.json")
    }

    /// The instance a restart for `want` produced that still reported
    /// another version, if that is recorded.
    fn failed_restart(&self, want: &str) -> Option<Instance> {
        let text = std::fs::read(self.failed_restart_path()).ok()?;
        let failed: FailedRestart = serde_json::from_slice(&text).ok()?;
        (failed.expected == want).then_some(Instance {
            pid: failed.pid,
            start_time: failed.start_time,
        })
    }

    fn remember_failed_restart(&self, want: &str, pid: Option<u32>) {
        let Some(instance) = pid.and_then(Instance::of) else {
            return;
        };
        let failed = FailedRestart {
            pid: instance.pid,
            start_time: instance.start_time,
            expected: want.to_string(),
        };
        let text = serde_json::to_vec(&failed).expect("record serializes");
        if let Err(e) = std::fs::write(self.failed_restart_path(), text) {
            tracing::warn!("cannot remember the failed version restart: {e}");
        }
    }

    async fn ensure_running(&self, deadline: Instant) -> Result<Status> {
        if let Some(status) = self.fast_path(true).await {
            return Ok(status);
        }
        let mut backoff = Backoff::new(Duration::from_millis(50));
        loop {
            match self.observe(true, false).await? {
                Observation::Serving(status, channel, _) => {
                    return Ok(self.remember(status, channel));
                }
                Observation::Conflict(what) => return Err(self.conflict_error(&what)),
                Observation::Alive(status, _) => {
                    if Instant::now() >= deadline {
                        return Err(self.waiting_error(&status));
                    }
                }
                Observation::Absent { .. } => {
                    self.paths.create_state_dir()?;
                    if let Some(spawn_guard) = lock::try_take(&self.paths.spawn_lock())? {
                        // Someone may have started it while we waited.
                        match self.observe(true, true).await? {
                            Observation::Serving(status, channel, _) => {
                                return Ok(self.remember(status, channel));
                            }
                            Observation::Conflict(what) => return Err(self.conflict_error(&what)),
                            Observation::Alive(..) => {}
                            Observation::Absent { orphaned_lock } => {
                                if let Some(status) = self.spawn(orphaned_lock, deadline).await? {
                                    drop(spawn_guard);
                                    return Ok(status);
                                }
                            }
                        }
                        drop(spawn_guard);
                    } else if Instant::now() >= deadline {
                        return Err(self.starting_elsewhere_error());
                    }
                }
            }
            // A spawner (or a stop) holds spawn.lock until it is done: wake
            // soon after it lets go. With nobody at work (a service started
            // elsewhere still starting, or shutting down), poll.
            if !lock::wait_released(&self.paths.spawn_lock(), deadline).await? {
                backoff.wait(deadline).await;
            }
        }
    }

    /// Spawn under `spawn.lock`; `None` when a service took the instance
    /// lock first (the caller goes back to waiting for it).
    /// `orphaned_lock`: the observation found `instance.lock` held only by
    /// leftovers of a dead service; it is replaced with a fresh one.
    async fn spawn(&self, orphaned_lock: bool, deadline: Instant) -> Result<Option<Status>> {
        let program = spawn::resolve_program(&self.config.program)?;
        let lock_path = self.paths.instance_lock();
        let instance = match lock::take(&lock_path, Instant::now() + lock::PROBE_GRACE).await? {
            Some(file) => file,
            None if orphaned_lock => {
                tracing::info!(
                    "{} is held by processes a dead service left behind; replacing it",
                    lock_path.display()
                );
                lock::replace(&lock_path)?
            }
            None => return Ok(None),
        };
        tracing::debug!("starting {}", program.display());
        let mut child = spawn::start(&self.config, &self.paths, &program, instance)?;
        let log_warning = child.log_warning();
        let probe = child
            .wait_ready(&self.endpoint, &lock_path, deadline, PROBE_TIMEOUT)
            .await?;
        let first = child.instance;
        match self.observation_of(probe, true)? {
            Observation::Serving(mut status, channel, instance) => {
                child.release();
                if !status.managed {
                    self.record_plain(&program, instance.or(first));
                }
                status.warnings.extend(log_warning);
                status.warnings.extend(self.elsewhere_warnings());
                Ok(Some(self.remember(status, channel)))
            }
            // Dropping the child kills it.
            Observation::Conflict(what) => Err(self.conflict_error(&what)),
            _ => Ok(None),
        }
    }

    /// A plain service writes no record: the spawner writes its `Running`
    /// record, naming the process that serves (a daemonizing service's
    /// daemon, not the first process that exited).
    fn record_plain(&self, program: &std::path::Path, instance: Option<Instance>) {
        let Some(instance) = instance.filter(Instance::is_alive) else {
            return;
        };
        let record = ServiceRecord {
            pid: instance.pid,
            start_time: Some(instance.start_time),
            program: program.display().to_string(),
            version: None,
            endpoint: self.endpoint.to_string(),
            started_at_unix_ms: unix_ms(SystemTime::now()),
            phase: Phase::Running,
        };
        if let Err(e) = record.write(&self.paths.record()) {
            tracing::warn!("{e}");
        }
    }

    /// The cached channel answers: the cheapest possible look. `touch`
    /// counts it as use (for `ensure`, not for `status`).
    async fn fast_path(&self, touch: bool) -> Option<Status> {
        let channel = self.channel.lock().expect("channel mutex").clone()?;
        match rpc::info(channel, touch, PROBE_TIMEOUT).await {
            // No process lookup here: this path must stay one RPC.
            Probe::Kit(info, _) if !info.shutting_down => Some(self.kit_status(&info, None)),
            Probe::Plain(_) if touch => Some(self.plain_status(self.plain_record(), None)),
            // `status` of a plain service looks up who listens (pid,
            // owner); the channel stays good for that.
            Probe::Plain(_) => None,
            _ => {
                *self.channel.lock().expect("channel mutex") = None;
                None
            }
        }
    }

    fn remember(&self, status: Status, channel: Channel) -> Status {
        *self.channel.lock().expect("channel mutex") = Some(channel);
        status
    }

    /// The service's status, with its active mounts when it answers
    /// `VfsService/Status`. Never starts anything, never creates files.
    pub async fn status(&self) -> Result<Status> {
        let mut status = self.status_here().await?;
        status.warnings.extend(self.elsewhere_warnings());
        self.add_mounts(&mut status).await;
        Ok(status)
    }

    /// Fill `status.mounts` from a running service, over the channel the
    /// look that found it running left behind.
    pub(crate) async fn add_mounts(&self, status: &mut Status) {
        if status.state != State::Running {
            return;
        }
        let channel = self.channel.lock().expect("channel mutex").clone();
        if let Some(channel) = channel {
            status.mounts = crate::mounts::active(channel, PROBE_TIMEOUT).await;
        }
    }

    /// Warnings about services of this user running in another default
    /// state dir (started where `XDG_RUNTIME_DIR` or `TMPDIR` differed).
    /// Only when the state dir is the default: an explicit one is chosen.
    fn elsewhere_warnings(&self) -> Vec<String> {
        let explicit = self.config.state_dir.is_some()
            || crate::config::process_env(crate::config::env::STATE_DIR).is_some();
        if explicit {
            return Vec::new();
        }
        crate::paths::live_instances_elsewhere(&self.paths.state_dir)
            .into_iter()
            .map(|dir| {
                format!(
                    "another service of yours runs with state dir {} (started where \
                     XDG_RUNTIME_DIR or TMPDIR differed, e.g. from cron, ssh or sudo); the two \
                     share the log {} and rotate it under each other. Stop it with the \
                     stop operation under state_dir = {:?} (SPFS_AUTOSTART_STATE_DIR), or set \
                     state_dir in the config so every context agrees",
                    dir.display(),
                    self.paths.log_file().display(),
                    dir.display()
                )
            })
            .collect()
    }

    async fn status_here(&self) -> Result<Status> {
        if let Some(status) = self.fast_path(false).await {
            return Ok(self.with_version_warning(status));
        }
        Ok(match self.observe(false, false).await? {
            Observation::Serving(status, channel, _) => {
                self.with_version_warning(self.remember(status, channel))
            }
            Observation::Alive(status, _) => status,
            Observation::Absent { orphaned_lock } => Status {
                detail: orphaned_lock.then(|| {
                    format!(
                        "{} is still held by processes the last service left behind; \
                         the next start replaces it",
                        self.paths.instance_lock().display()
                    )
                }),
                ..self.stopped_status()
            },
            Observation::Conflict(what) => Status {
                state: State::Conflict,
                detail: Some(what),
                ..self.stopped_status()
            },
        })
    }

    /// A running service of another version than `expected_version` says
    /// so, and why it was not replaced.
    fn with_version_warning(&self, mut status: Status) -> Status {
        if let Some(want) = &self.config.expected_version
            && status.version.is_none()
            && status.state == State::Running
        {
            status.warnings.push(format!(
                "expected_version = {want:?} is not checked: the service does not report its \
                 version (it does not embed the kit)"
            ));
        }
        if let (Some(want), Some(have)) = (&self.config.expected_version, &status.version)
            && want != have
        {
            status.warnings.push(if status.leases.is_empty() {
                format!("it runs version {have}, not the expected {want}")
            } else {
                format!(
                    "it runs version {have}, not the expected {want}; it is not replaced while \
                     {} lease(s) use it: the next ensure once it is idle replaces it, or \
                     the stop operation does now",
                    status.leases.len()
                )
            });
        }
        status
    }

    /// Stop the service: the steps of [`Self::stop_steps`] (a graceful RPC,
    /// then SIGTERM, then SIGKILL), each bounded by `stop_timeout`. Never
    /// starts anything; a service that is not running is success. It waits
    /// for a start in progress to finish, then acts only on the instance it
    /// observed: every signal goes to that very process (a pidfd on Linux,
    /// a start-time check right before the signal elsewhere), never to a
    /// service started after it looked.
    pub async fn stop(&self) -> Result<StopOutcome> {
        *self.channel.lock().expect("channel mutex") = None;
        // A start in progress ends first (ready or failed); nobody starts
        // one while we stop. Bounded by the longest a spawner may take.
        // (Without a state dir there is no spawner, and no lock to take.)
        let _guard = if self.paths.check_state_dir()? {
            let wait = self.config.ready_timeout + self.config.stop_timeout;
            let guard = lock::take(&self.paths.spawn_lock(), Instant::now() + wait).await?;
            Some(guard.ok_or_else(|| self.starting_elsewhere_error())?)
        } else {
            None
        };
        let (instance, channel, managed) = match self.observe(false, true).await? {
            Observation::Absent { .. } => return Ok(StopOutcome::NotRunning),
            Observation::Conflict(what) => {
                return Err(Error::new(
                    ErrorKind::EndpointConflict,
                    format!(
                        "{} is not our service ({what}); it was left alone",
                        self.endpoint
                    ),
                ));
            }
            Observation::Serving(status, channel, instance) => {
                (instance, Some(channel), status.managed)
            }
            Observation::Alive(status, instance) => (instance, None, status.managed),
        };
        self.stop_observed(instance, channel, managed).await
    }

    /// The stop sequence for a service: data, run step by step by `stop`.
    /// A kit service always gets `Control.Shutdown`, SIGTERM, SIGKILL; a
    /// plain one the configured `stop_sequence` (spfs-fuse-macos's default:
    /// `Shutdown` only unmounts, SIGINT is its graceful exit, SIGTERM kills
    /// it leaving the mount behind).
    pub fn stop_steps(&self, managed: bool) -> Vec<StopStep> {
        if managed {
            return vec![
                StopStep::Rpc,
                StopStep::Signal(Signal::SIGTERM),
                StopStep::Signal(Signal::SIGKILL),
            ];
        }
        self.config
            .stop_sequence
            .iter()
            .map(|step| match step {
                crate::config::StopStep::Shutdown => StopStep::Rpc,
                crate::config::StopStep::Signal(signal) => StopStep::Signal(*signal),
            })
            .collect()
    }

    /// Run the stop sequence against the observed `instance` (and its
    /// endpoint `channel`). Call under `spawn.lock`.
    async fn stop_observed(
        &self,
        instance: Option<Instance>,
        channel: Option<Channel>,
        managed: bool,
    ) -> Result<StopOutcome> {
        let handle = match instance {
            Some(instance) => match ProcessHandle::open(instance) {
                Some(handle) => Some(handle),
                // It ended between the look and now.
                None => return Ok(StopOutcome::NotRunning),
            },
            None => None,
        };
        let pid = handle.as_ref().map(|h| h.instance().pid);
        let mut acted = false;
        for step in self.stop_steps(managed) {
            match (step, &channel, &handle) {
                (StopStep::Rpc, Some(channel), _) => {
                    if let Err(e) = self.ask_to_shut_down(managed, channel.clone()).await {
                        tracing::debug!("graceful shutdown request failed: {e}");
                    }
                }
                (StopStep::Signal(signal), _, Some(handle)) => {
                    tracing::info!("sending {signal} to service pid {}", handle.instance().pid);
                    match handle.signal(signal) {
                        Ok(true) => {}
                        Ok(false) => {
                            return Ok(StopOutcome::Stopped {
                                how: step.method(),
                                pid,
                            });
                        }
                        Err(e) => {
                            return Err(Error::new(
                                ErrorKind::PermissionDenied,
                                format!(
                                    "cannot send {signal} to service pid {}: {e}",
                                    handle.instance().pid
                                ),
                            ));
                        }
                    }
                }
                _ => continue,
            }
            acted = true;
            // A plain service's Shutdown is done when it answers (upstream's
            // only unmounts and serves on): a short look for an exit, not
            // the whole stop_timeout, before the next step.
            let wait = if step == StopStep::Rpc && !managed {
                PLAIN_SHUTDOWN_GRACE.min(self.config.stop_timeout)
            } else {
                self.config.stop_timeout
            };
            if self.wait_gone(handle.as_ref(), wait).await? {
                return Ok(StopOutcome::Stopped {
                    how: step.method(),
                    pid,
                });
            }
        }
        Err(Error::new(
            ErrorKind::Unresponsive,
            match (&handle, acted) {
                (Some(handle), _) => format!(
                    "the service (pid {}) is still alive after SIGKILL; see {}",
                    handle.instance().pid,
                    self.paths.log_file().display()
                ),
                (None, true) => format!(
                    "the service at {} did not stop when asked, and its process is unknown \
                     (no record names it and no process of yours listens there); stop it by hand",
                    self.endpoint
                ),
                (None, false) => format!(
                    "a service holds {} but does not answer, and {} does not identify it; \
                     refusing to signal a pid that may belong to another process. \
                     Find the holder with `fuser {}` and stop it by hand",
                    self.paths.instance_lock().display(),
                    self.paths.record().display(),
                    self.paths.instance_lock().display()
                ),
            },
        ))
    }

    async fn ask_to_shut_down(&self, managed: bool, channel: Channel) -> Result<(), tonic::Status> {
        let call = async {
            if managed {
                ControlClient::new(channel)
                    .shutdown(control::ShutdownRequest {
                        reason: "stop requested by an spfs-autostart client".into(),
                        // Leave a quarter of our wait for the exit itself, so
                        // a service finishing calls is not taken for one
                        // that ignored the request.
                        drain_ms: (self.config.stop_timeout * 3 / 4).as_millis() as u64,
                    })
                    .await
                    .map(drop)
            } else {
                VfsServiceClient::new(channel)
                    .shutdown(vfs::ShutdownRequest {})
                    .await
                    .map(drop)
            }
        };
        tokio::time::timeout(self.config.stop_timeout, call)
            .await
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("shutdown request")))
    }

    /// Wait up to `stop_timeout` for the service to be gone: the observed
    /// process exited (whatever its helpers still hold), or, with no
    /// process known, the lock free and the endpoint silent.
    async fn wait_gone(&self, handle: Option<&ProcessHandle>, wait: Duration) -> Result<bool> {
        let deadline = Instant::now() + wait;
        if let Some(handle) = handle {
            return Ok(tokio::time::timeout_at(deadline, handle.exited())
                .await
                .is_ok());
        }
        let mut backoff = Backoff::new(Duration::from_millis(50));
        loop {
            if !lock::is_held(&self.paths.instance_lock())?
                && matches!(
                    rpc::probe(&self.endpoint, false, PROBE_TIMEOUT).await,
                    Probe::Nothing
                )
            {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            backoff.wait(deadline).await;
        }
    }

    /// Take a lease for `pid`: the service stays up while that process
    /// lives. Starts the service if needed.
    pub async fn acquire(&self, pid: u32, label: &str) -> Result<Lease> {
        self.ensure().await?;
        let channel = self.channel().await?;
        let reply = ControlClient::new(channel)
            .acquire(control::AcquireRequest {
                pid,
                label: label.to_string(),
            })
            .await
            .map_err(|s| rpc_error("acquire a lease", &s))?;
        let lease = reply.into_inner().lease.ok_or_else(|| {
            Error::new(ErrorKind::Io, "the service granted a lease without details")
        })?;
        Ok(Lease {
            id: lease.id,
            pid: lease.pid,
            label: lease.label,
        })
    }

    /// A gRPC channel to the service, for calling its own services (spfs:
    /// `spfs_vfs.VfsService/Mount`, with [`crate::proto::vfs`]'s client):
    /// the connection the last `ensure` or `status` used, so `ensure` then a
    /// call costs no second connect; a new connection when there is none.
    /// Never starts anything. The channel reconnects by itself when the
    /// service is restarted.
    pub async fn channel(&self) -> Result<Channel> {
        let cached = self.channel.lock().expect("channel mutex").clone();
        match cached {
            Some(channel) => Ok(channel),
            None => rpc::channel(self.endpoint.clone(), None)
                .await
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Io,
                        format!(
                            "cannot connect to the service at {}: {e}; \
                             ensure it runs first (the ensure operation)",
                            self.endpoint
                        ),
                    )
                    .with_remedy(Remedy::Run(Operation::Ensure))
                }),
        }
    }

    /// Drop a lease; `false` when it was no longer held. Never starts anything.
    pub async fn release(&self, lease_id: u64) -> Result<bool> {
        let channel = match self.observe(false, false).await? {
            Observation::Serving(_, channel, _) => channel,
            _ => return Ok(false),
        };
        let reply = ControlClient::new(channel)
            .release(control::ReleaseRequest { lease_id })
            .await
            .map_err(|s| rpc_error("release a lease", &s))?;
        Ok(reply.into_inner().released)
    }

    /// A feed of status changes (first the current status), without busy
    /// polling; see [`StatusWatcher`](crate::StatusWatcher). Must be called inside a tokio runtime.
    pub fn watch(&self) -> Result<crate::watch::StatusWatcher> {
        crate::watch::watch(self.config.clone())
    }

    /// The last `n` lines of the service log; works when the service is dead.
    pub fn tail_logs(&self, n: usize) -> Result<Vec<String>> {
        let path = self.paths.log_file();
        logs::tail(&path, n)
            .map(|t| t.lines)
            .map_err(|e| Error::io("cannot read the service log", &path, e))
    }

    /// The last `n` lines of the service log one at a time, in memory
    /// bounded whatever `n` (see [`logs::tail_lines`]); for callers that
    /// print them, such as `spfs-autostart logs -n 100000000`.
    pub fn tail_logs_lines(&self, n: usize) -> Result<logs::TailLines> {
        let path = self.paths.log_file();
        logs::tail_lines(&path, n).map_err(|e| Error::io("cannot read the service log", &path, e))
    }

    /// Follow the service log: its last `backlog` lines, then each new line,
    /// across rotation.
    pub fn follow_logs(&self, backlog: usize) -> Result<LogFollower> {
        self.paths.create_log_dir()?;
        let path = self.paths.log_file();
        logs::follow(&path, backlog)
            .map_err(|e| Error::io("cannot follow the service log", &path, e))
    }

    /// Probe and, when nothing answers, look at the instance lock. `touch`
    /// counts the probe as use of the service; `under_spawn_lock`: the
    /// caller holds `spawn.lock` (so no spawner is at work). The state dir is
    /// checked first (one `lstat`): a socket in a directory someone else
    /// controls must not be trusted, even when it answers.
    async fn observe(&self, touch: bool, under_spawn_lock: bool) -> Result<Observation> {
        self.paths.check_state_dir()?;
        let probe = rpc::probe(&self.endpoint, touch, PROBE_TIMEOUT).await;
        let failed_call = matches!(probe, Probe::Foreign(_));
        match self.observation_of(probe, under_spawn_lock)? {
            // A service that dies between our connect and the lock check
            // resets the connection and then frees the lock, so for a moment
            // it looks like a foreign peer. Its descriptors are closed once
            // the lock is free: a second look finds nothing there, while a
            // real foreign peer still answers the same way. (A peer that
            // does not answer at all is not looked at twice: that would
            // double the wait.)
            Observation::Conflict(_) if failed_call => {
                let probe = rpc::probe(&self.endpoint, touch, PROBE_TIMEOUT).await;
                self.observation_of(probe, under_spawn_lock)
            }
            observation => Ok(observation),
        }
    }

    fn observation_of(&self, probe: Probe, under_spawn_lock: bool) -> Result<Observation> {
        let foreign = match probe {
            Probe::Kit(info, channel) => {
                if let Some(what) = self.foreign_listener() {
                    return Ok(Observation::Conflict(what));
                }
                let instance = self.kit_instance(info.pid);
                // Where the listener lookup cannot see other users' sockets
                // (macOS), the pid the service reports still has an owner.
                if matches!(self.endpoint, ResolvedEndpoint::Tcp(_))
                    && let Some(uid) = instance.and_then(|i| i.uid())
                    && uid != crate::sys::my_uid()
                {
                    return Ok(Observation::Conflict(foreign_user(
                        &crate::owner::Listener { uid, process: None },
                    )));
                }
                let status = self.kit_status(&info, instance);
                // A service that is shutting down is not ready: waiting for
                // it to go (and starting a fresh one) is what `ensure` needs.
                return Ok(if info.shutting_down {
                    Observation::Alive(status, instance)
                } else {
                    Observation::Serving(status, channel, instance)
                });
            }
            Probe::Plain(channel) => return self.plain_observation(channel),
            Probe::Nothing => None,
            Probe::Foreign(what) => Some(what),
            Probe::NoAnswer => Some("it accepts connections but does not answer gRPC".to_string()),
        };
        if !lock::is_held(&self.paths.instance_lock())? {
            return Ok(match foreign {
                None => Observation::Absent {
                    orphaned_lock: false,
                },
                Some(what) => Observation::Conflict(what),
            });
        }
        let record = ServiceRecord::read(&self.paths.record());
        let spawner_at_work =
            !under_spawn_lock && lock::is_held(&self.paths.spawn_lock()).unwrap_or(false);
        match record.as_ref().and_then(ServiceRecord::instance) {
            Some(instance) if instance.is_alive() => Ok(Observation::Alive(
                self.alive_status(foreign, record.as_ref(), Some(instance)),
                Some(instance),
            )),
            // The recorded service is dead, nobody is starting one, yet the
            // lock is held: by processes it left behind, which must not
            // make it look alive.
            Some(_) if !spawner_at_work => Ok(match foreign {
                None => Observation::Absent {
                    orphaned_lock: true,
                },
                Some(what) => Observation::Conflict(what),
            }),
            // No record yet (or an old one, while a spawner works): a
            // service that has just taken the lock.
            _ => Ok(Observation::Alive(
                self.alive_status(foreign, None, None),
                None,
            )),
        }
    }

    /// A plain service answered: whose is it? On a TCP endpoint the
    /// listener's owner decides: another user's is a conflict; one of ours
    /// that holds no lock is adopted only when it runs the configured
    /// program.
    fn plain_observation(&self, channel: Channel) -> Result<Observation> {
        let held = lock::is_held(&self.paths.instance_lock())?;
        let record = held.then(|| self.plain_record()).flatten();
        let mut instance = record.as_ref().and_then(ServiceRecord::instance);
        let mut adopted = false;
        // Our lock is held and the record names a live process: that is the
        // server (a port has one listener), and the lookup, which scans
        // processes (or runs lsof), is skipped on this common path.
        let known = instance.is_some();
        if let ResolvedEndpoint::Tcp(addr) = &self.endpoint
            && !known
        {
            let Some(listener) = crate::owner::tcp_listener(*addr) else {
                if held {
                    // Ours by the lock; only its process is not found.
                    return Ok(Observation::Serving(
                        self.plain_status(record, instance),
                        channel,
                        instance,
                    ));
                }
                // No lock and no listener of ours found (macOS cannot see
                // other users' sockets): never assume it is ours.
                return Ok(Observation::Conflict(format!(
                    "a gRPC server answers at {} but no process of yours listens there",
                    self.endpoint
                )));
            };
            if listener.is_foreign() {
                return Ok(Observation::Conflict(foreign_user(&listener)));
            }
            if let Some(process) = listener.process {
                if !held && !self.runs_configured_program(process) {
                    return Ok(Observation::Conflict(format!(
                        "pid {} ({}) listens there, which is not the configured program {}",
                        process.pid,
                        crate::sys::executable(process.pid)
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|| "unknown executable".into()),
                        self.config.program
                    )));
                }
                adopted = !held;
                instance = Some(process);
            }
        }
        let mut status = self.plain_status(record, instance);
        if adopted {
            status.detail = Some(
                "started outside spfs-autostart (it holds no instance lock); \
                 the stop operation stops it"
                    .into(),
            );
        }
        Ok(Observation::Serving(status, channel, instance))
    }

    /// Another user's listener on our TCP endpoint, described.
    fn foreign_listener(&self) -> Option<String> {
        let ResolvedEndpoint::Tcp(addr) = &self.endpoint else {
            return None;
        };
        crate::owner::tcp_listener(*addr)
            .filter(crate::owner::Listener::is_foreign)
            .map(|l| foreign_user(&l))
    }

    /// Whether `process` runs the configured program: the same file, or a
    /// file of the same name (spfs finds its spfs-fuse-macos on PATH first,
    /// we look next to ourselves first, so the two may be different copies
    /// of the same program; the process is the user's own either way).
    fn runs_configured_program(&self, process: Instance) -> bool {
        let Some(exe) = crate::sys::executable(process.pid) else {
            return false;
        };
        let configured = std::path::Path::new(&self.config.program);
        if configured.file_name().is_some() && configured.file_name() == exe.file_name() {
            return true;
        }
        match spawn::resolve_program(&self.config.program) {
            Ok(program) => {
                let canonical = |p: &std::path::Path| std::fs::canonicalize(p).ok();
                canonical(&program).is_some_and(|p| Some(p) == canonical(&exe))
            }
            Err(_) => false,
        }
    }

    /// The kit's process: from its record when that names the same pid (the
    /// record holds the start time the kit itself read), else as it is now.
    fn kit_instance(&self, pid: u32) -> Option<Instance> {
        ServiceRecord::read(&self.paths.record())
            .filter(|r| r.pid == pid)
            .and_then(|r| r.instance())
            .or_else(|| Instance::of(pid))
    }

    /// The record, when it names a live process.
    fn plain_record(&self) -> Option<ServiceRecord> {
        ServiceRecord::read(&self.paths.record()).filter(ServiceRecord::process_matches)
    }

    fn base_status(&self, state: State) -> Status {
        let mut warnings = Vec::new();
        if let ResolvedEndpoint::Tcp(addr) = &self.endpoint {
            warnings.push(format!(
                "endpoint tcp://{addr} can be reached by every user of this machine; \
                 a Unix socket endpoint (\"unix\") is private"
            ));
        }
        Status {
            state,
            pid: None,
            version: None,
            endpoint: self.endpoint.to_string(),
            uptime_secs: None,
            log_file: self.paths.log_file(),
            leases: Vec::new(),
            mounts: Vec::new(),
            idle_exit_in_secs: None,
            warnings,
            detail: None,
            managed: false,
        }
    }

    fn stopped_status(&self) -> Status {
        self.base_status(State::Stopped)
    }

    pub(crate) fn kit_status(
        &self,
        info: &control::InfoResponse,
        instance: Option<Instance>,
    ) -> Status {
        let state = if info.shutting_down {
            State::Stopping
        } else {
            State::Running
        };
        let uptime = instance.and_then(|i| i.age()).map(|d| d.as_secs());
        let now = unix_ms(SystemTime::now());
        Status {
            pid: Some(info.pid),
            version: Some(info.version.clone()).filter(|v| !v.is_empty()),
            uptime_secs: uptime
                .or_else(|| Some(now.saturating_sub(info.started_at_unix_ms) / 1000)),
            leases: info
                .leases
                .iter()
                .map(|l| Lease {
                    id: l.id,
                    pid: l.pid,
                    label: l.label.clone(),
                })
                .collect(),
            idle_exit_in_secs: info.idle_exit_in_ms.map(|ms| ms.div_ceil(1000)),
            managed: true,
            ..self.base_status(state)
        }
    }

    fn plain_status(&self, record: Option<ServiceRecord>, instance: Option<Instance>) -> Status {
        let instance = instance.or_else(|| record.as_ref().and_then(ServiceRecord::instance));
        Status {
            pid: instance.map(|i| i.pid),
            uptime_secs: instance.and_then(|i| i.age()).map(|d| d.as_secs()),
            ..self.base_status(State::Running)
        }
    }

    /// A service that holds the lock but does not serve. Starting or
    /// unresponsive is decided by the process's age on the monotonic clock,
    /// not by wall-clock times in the record.
    fn alive_status(
        &self,
        detail: Option<String>,
        record: Option<&ServiceRecord>,
        instance: Option<Instance>,
    ) -> Status {
        let age = instance.and_then(|i| i.age());
        let state = match record {
            None => State::Starting,
            Some(r) if r.phase == Phase::Stopping => State::Stopping,
            Some(r)
                if r.phase == Phase::Starting
                    && age.is_none_or(|age| age < self.config.ready_timeout) =>
            {
                State::Starting
            }
            Some(_) => State::Unresponsive,
        };
        Status {
            pid: instance.map(|i| i.pid),
            uptime_secs: age.map(|d| d.as_secs()),
            detail: Some(match (state, detail) {
                // A draining kit service closes its listener: what the probe
                // met (refused, or reset in the backlog) is no news.
                (State::Stopping, _) => "shutting down: finishing the calls in flight".to_string(),
                (_, Some(detail)) => detail,
                (_, None) => format!("{} does not answer yet", self.endpoint),
            }),
            ..self.base_status(state)
        }
    }

    /// `ensure` gave up waiting for a service that is alive but not serving.
    fn waiting_error(&self, status: &Status) -> Error {
        match status.state {
            State::Stopping => Error::new(
                ErrorKind::Unresponsive,
                format!(
                    "the service{} is shutting down and did not finish within {:.1}s; \
                     try again in a moment",
                    pid_text(status.pid),
                    self.config.ready_timeout.as_secs_f64()
                ),
            ),
            _ if lock::is_held(&self.paths.spawn_lock()).unwrap_or(false) => {
                self.starting_elsewhere_error()
            }
            _ => self.unresponsive_error(status),
        }
    }

    /// Another process holds `spawn.lock` (starting the service, or
    /// stopping it) past our deadline.
    fn starting_elsewhere_error(&self) -> Error {
        Error::new(
            ErrorKind::ReadyTimeout,
            format!(
                "another process is starting (or stopping) the service and it did not answer \
                 at {} within {:.1}s; that process reports its own outcome. Try again later, \
                 or raise ready_timeout_secs; see {}",
                self.endpoint,
                self.config.ready_timeout.as_secs_f64(),
                self.paths.log_file().display()
            ),
        )
        .with_log(self.log_excerpt())
    }

    fn conflict_error(&self, what: &str) -> Error {
        Error::new(
            ErrorKind::EndpointConflict,
            format!(
                "{} is taken by something that is not our service: {what}. \
                 It was left alone; stop it, or choose another endpoint in the config",
                self.endpoint
            ),
        )
    }

    fn unresponsive_error(&self, status: &Status) -> Error {
        Error::new(
            ErrorKind::Unresponsive,
            format!(
                "a service{} holds {} but has not answered at {} for {:.1}s; \
                 stop it (the stop operation), then try again",
                pid_text(status.pid),
                self.paths.instance_lock().display(),
                self.endpoint,
                self.config.ready_timeout.as_secs_f64()
            ),
        )
        .with_log(self.log_excerpt())
        .with_remedy(Remedy::Run(Operation::Stop))
    }

    fn log_excerpt(&self) -> LogExcerpt {
        LogExcerpt {
            path: self.paths.log_file(),
            tail: self.tail_logs(20).unwrap_or_default(),
        }
    }
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

fn foreign_user(listener: &crate::owner::Listener) -> String {
    format!(
        "the listener belongs to {}, not to you; it is never used, signalled or asked to shut down",
        crate::owner::user_name(listener.uid)
    )
}

fn version_mismatch(want: &str, have: &str, after_restart: bool) -> Error {
    if after_restart {
        Error::new(
            ErrorKind::VersionMismatch,
            format!(
                "the service was restarted but reports version {have}, not the expected {want}; \
                 install version {want} or change expected_version"
            ),
        )
        .with_remedy(Remedy::SetKey("expected_version"))
    } else {
        Error::new(
            ErrorKind::VersionMismatch,
            format!(
                "the running service reports version {have}, not the expected {want}; \
                 stop it (the stop operation) to replace it, or set \
                 on_version_mismatch = \"restart\""
            ),
        )
        .with_remedy(Remedy::Run(Operation::Stop))
        .with_remedy(Remedy::SetKey("on_version_mismatch"))
    }
}

fn rpc_error(what: &str, status: &tonic::Status) -> Error {
    let kind = match status.code() {
        tonic::Code::InvalidArgument | tonic::Code::NotFound | tonic::Code::FailedPrecondition => {
            ErrorKind::InvalidConfig
        }
        tonic::Code::PermissionDenied => ErrorKind::PermissionDenied,
        tonic::Code::Unimplemented => ErrorKind::Unsupported,
        _ => ErrorKind::Io,
    };
    Error::new(kind, format!("cannot {what}: {}", status.message()))
}
