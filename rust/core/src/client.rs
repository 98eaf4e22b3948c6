//! The client: `ensure`, `stop`, `status`, leases, logs.
//!
//! The handshake (DESIGN.md section 4), written down once here:
//! 1. Probe the endpoint; an answer is the fast path.
//! 2. `instance.lock` held but no answer: a service is alive; wait for it
//!    (blocked on `spawn.lock` while a spawner works, else with backoff),
//!    never spawn a second one.
//! 3. Not held: try `spawn.lock`; the winner probes again under it, then
//!    takes `instance.lock` and spawns, handing the lock to the child, and
//!    holds `spawn.lock` until the child is ready. The others block on
//!    `spawn.lock` and wake together when it is released.

//! 4. Wait for readiness; on any failure no child of ours is left.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tonic::transport::Channel;

use crate::config::{Config, VersionPolicy};
use crate::error::{Error, ErrorKind, LogExcerpt, Result};
use crate::lock::{self, Backoff};
use crate::logs::{self, LogFollower};
use crate::paths::{Paths, ResolvedEndpoint};
use crate::proto::control::{self, control_client::ControlClient};
use crate::proto::vfs::{self, vfs_service_client::VfsServiceClient};
use crate::record::{Phase, ServiceRecord, unix_ms};
use crate::rpc::{self, Probe};
use crate::spawn;
use crate::status::{Lease, State, Status, StopMethod, StopOutcome};

/// How long one probe may wait for an answer. A healthy service answers in
/// well under a millisecond; this bounds a hung or foreign peer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Manages one service: the only type most callers need.
#[derive(Debug)]
pub struct ServiceManager {
    config: Config,
    paths: Paths,
    endpoint: ResolvedEndpoint,
    /// The channel of the last successful probe, reused by the fast path.
    channel: Mutex<Option<Channel>>,
}

/// What one look at the endpoint and the locks found.
enum Observation {
    /// The service answers.
    Serving(Status, Channel),
    /// A service holds the instance lock but does not answer (yet).
    Alive(Status),
    /// No service.
    Absent,
    /// Something else is at the endpoint.
    Conflict(String),
}

impl ServiceManager {
    /// A manager for `config`. Touches nothing on disk.
    pub fn new(config: Config) -> Result<ServiceManager> {
        config.validate()?;
        let paths = Paths::resolve(&config)?;
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
    /// one service is started.
    pub async fn ensure(&self) -> Result<Status> {
        let status = self.ensure_running().await?;
        match (&self.config.expected_version, &status.version) {
            (Some(want), Some(have)) if want != have => match self.config.on_version_mismatch {
                VersionPolicy::Error => Err(version_mismatch(want, have, false)),
                VersionPolicy::Restart => {
                    tracing::info!("service reports version {have}, want {want}: restarting it");
                    self.stop().await?;
                    let status = self.ensure_running().await?;
                    match &status.version {
                        Some(have) if have != want => Err(version_mismatch(want, have, true)),
                        _ => Ok(status),
                    }
                }
            },
            _ => Ok(status),
        }
    }

    async fn ensure_running(&self) -> Result<Status> {
        if let Some(status) = self.fast_path(true).await {
            return Ok(status);
        }
        let deadline = Instant::now() + self.config.ready_timeout;
        let mut backoff = Backoff::new(Duration::from_millis(50));
        loop {
            match self.observe(true).await? {
                Observation::Serving(status, channel) => return Ok(self.remember(status, channel)),
                Observation::Conflict(what) => return Err(self.conflict_error(&what)),
                Observation::Alive(status) => {
                    if Instant::now() >= deadline {
                        return Err(self.unresponsive_error(&status));
                    }
                }
                Observation::Absent => {
                    self.paths.create_state_dir()?;
                    if let Some(spawn_guard) = lock::try_take(&self.paths.spawn_lock())? {
                        // Someone may have started it while we waited.
                        match self.observe(true).await? {
                            Observation::Serving(status, channel) => {
                                return Ok(self.remember(status, channel));
                            }
                            Observation::Conflict(what) => return Err(self.conflict_error(&what)),
                            Observation::Alive(_) => {}
                            Observation::Absent => {
                                if let Some(status) = self.spawn().await? {
                                    drop(spawn_guard);
                                    return Ok(status);
                                }
                            }
                        }
                        drop(spawn_guard);
                    } else if Instant::now() >= deadline {
                        return Err(Error::new(
                            ErrorKind::Unresponsive,
                            format!(
                                "another process has been starting the service for {:.1}s without success; \
                                 see {}",
                                self.config.ready_timeout.as_secs_f64(),
                                self.paths.log_file().display()
                            ),
                        ));
                    }
                }
            }
            // A spawner holds spawn.lock until its child is ready or has
            // failed: wake the moment it lets go. With no spawner at work (a
            // service started elsewhere still starting, or hung), poll.
            if !lock::wait_released(&self.paths.spawn_lock(), deadline).await? {
                backoff.wait(deadline).await;
            }
        }
    }

    /// Spawn under `spawn.lock`; `None` when a service took the instance
    /// lock first (the caller goes back to waiting for it).
    async fn spawn(&self) -> Result<Option<Status>> {
        let program = spawn::resolve_program(&self.config.program)?;
        let Some(instance) = lock::try_take(&self.paths.instance_lock())? else {
            return Ok(None);
        };
        tracing::debug!("starting {}", program.display());
        let child = spawn::start(&self.config, &self.paths, &program, instance)?;
        let log_warning = child.log_warning();
        let probe = child
            .wait_ready(&self.endpoint, self.config.ready_timeout, PROBE_TIMEOUT)
            .await?;
        match self.observation_of(probe)? {
            Observation::Serving(mut status, channel) => {
                status.warnings.extend(log_warning);
                status.warnings.extend(self.elsewhere_warnings());
                Ok(Some(self.remember(status, channel)))
            }
            _ => Ok(None),
        }
    }

    /// The cached channel answers: the cheapest possible look. `touch`
    /// counts it as use (for `ensure`, not for `status`).
    async fn fast_path(&self, touch: bool) -> Option<Status> {
        let channel = self.channel.lock().expect("channel mutex").clone()?;
        match rpc::info(channel, touch, PROBE_TIMEOUT).await {
            Probe::Kit(info, _) => Some(self.kit_status(&info)),
            Probe::Plain(_) => Some(self.plain_status()),
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
                     share the log {} and rotate it under each other. Stop it with \
                     `SPFS_AUTOSTART_STATE_DIR={} spfs-autostart stop`, or set state_dir in the \
                     config so every context agrees",
                    dir.display(),
                    self.paths.log_file().display(),
                    dir.display()
                )
            })
            .collect()
    }

    async fn status_here(&self) -> Result<Status> {
        if let Some(status) = self.fast_path(false).await {
            return Ok(status);
        }
        Ok(match self.observe(false).await? {
            Observation::Serving(status, channel) => self.remember(status, channel),
            Observation::Alive(status) => status,
            Observation::Absent => self.stopped_status(),
            Observation::Conflict(what) => Status {
                state: State::Conflict,
                detail: Some(what),
                ..self.stopped_status()
            },
        })
    }

    /// Stop the service: graceful RPC, then SIGTERM, then SIGKILL, each
    /// bounded by `stop_timeout`. Never starts anything; a service that is
    /// not running is success. A pid is signalled only while the instance
    /// lock is held and its start time matches the record.
    pub async fn stop(&self) -> Result<StopOutcome> {
        *self.channel.lock().expect("channel mutex") = None;
        match self.observe(false).await? {
            Observation::Absent => return Ok(StopOutcome::NotRunning),
            Observation::Conflict(what) => {
                return Err(Error::new(
                    ErrorKind::EndpointConflict,
                    format!(
                        "{} is not our service ({what}); it was left alone",
                        self.endpoint
                    ),
                ));
            }
            Observation::Serving(status, channel) => {
                if let Err(e) = self.ask_to_shut_down(&status, channel).await {
                    tracing::debug!("graceful shutdown request failed: {e}");
                }
                if self.wait_gone().await? {
                    return Ok(StopOutcome::Stopped {
                        how: StopMethod::Graceful,
                    });
                }
            }
            Observation::Alive(_) => {}
        }
        for (signal, how) in [
            (nix::sys::signal::Signal::SIGTERM, StopMethod::Terminated),
            (nix::sys::signal::Signal::SIGKILL, StopMethod::Killed),
        ] {
            if !lock::is_held(&self.paths.instance_lock())? {
                if self.wait_gone().await? {
                    return Ok(StopOutcome::Stopped { how });
                }
                return Err(Error::new(
                    ErrorKind::Unresponsive,
                    format!(
                        "the service at {} did not stop when asked and holds no instance lock, \
                         so its pid is unknown; stop it by hand",
                        self.endpoint
                    ),
                ));
            }
            let pid = self.verified_pid()?;
            tracing::info!("sending {signal} to service pid {pid}");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
            if self.wait_gone().await? {
                return Ok(StopOutcome::Stopped { how });
            }
        }
        Err(Error::new(
            ErrorKind::Unresponsive,
            format!(
                "the service is still alive after SIGKILL; see {}",
                self.paths.log_file().display()
            ),
        ))
    }

    async fn ask_to_shut_down(
        &self,
        status: &Status,
        channel: Channel,
    ) -> Result<(), tonic::Status> {
        let call = async {
            if status.managed {
                ControlClient::new(channel)
                    .shutdown(control::ShutdownRequest {
                        reason: "requested by spfs-autostart stop".into(),
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

    /// The recorded pid, only if the record still names the live process.
    fn verified_pid(&self) -> Result<u32> {
        match ServiceRecord::read(&self.paths.record()) {
            Some(record) if record.process_matches() => Ok(record.pid),
            record => Err(Error::new(
                ErrorKind::Unresponsive,
                format!(
                    "a service holds {} but does not answer, and {} does not identify it{}; \
                     refusing to signal a pid that may belong to another process. \
                     Find the holder with `fuser {}` and stop it by hand",
                    self.paths.instance_lock().display(),
                    self.paths.record().display(),
                    match record {
                        Some(r) => format!(" (pid {} has another start time now)", r.pid),
                        None => " (no record)".to_string(),
                    },
                    self.paths.instance_lock().display()
                ),
            )),
        }
    }

    /// Wait up to `stop_timeout` for the lock to be free and the endpoint
    /// silent.
    async fn wait_gone(&self) -> Result<bool> {
        let deadline = Instant::now() + self.config.stop_timeout;
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
                             run `spfs-autostart ensure` or call ensure() first",
                            self.endpoint
                        ),
                    )
                }),
        }
    }

    /// Drop a lease; `false` when it was no longer held. Never starts anything.
    pub async fn release(&self, lease_id: u64) -> Result<bool> {
        let channel = match self.observe(false).await? {
            Observation::Serving(_, channel) => channel,
            _ => return Ok(false),
        };
        let reply = ControlClient::new(channel)
            .release(control::ReleaseRequest { lease_id })
            .await
            .map_err(|s| rpc_error("release a lease", &s))?;
        Ok(reply.into_inner().released)
    }

    /// A feed of status changes (first the current status), without busy
    /// polling; see [`crate::watch`]. Must be called inside a tokio runtime.
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
    /// counts the probe as use of the service. The state dir is checked
    /// first (one `lstat`): a socket in a directory someone else controls
    /// must not be trusted, even when it answers.
    async fn observe(&self, touch: bool) -> Result<Observation> {
        self.paths.check_state_dir()?;
        let probe = rpc::probe(&self.endpoint, touch, PROBE_TIMEOUT).await;
        let failed_call = matches!(probe, Probe::Foreign(_));
        match self.observation_of(probe)? {
            // A service that dies between our connect and the lock check
            // resets the connection and then frees the lock, so for a moment
            // it looks like a foreign peer. Its descriptors are closed once
            // the lock is free: a second look finds nothing there, while a
            // real foreign peer still answers the same way. (A peer that
            // does not answer at all is not looked at twice: that would
            // double the wait.)
            Observation::Conflict(_) if failed_call => {
                let probe = rpc::probe(&self.endpoint, touch, PROBE_TIMEOUT).await;
                self.observation_of(probe)
            }
            observation => Ok(observation),
        }
    }

    fn observation_of(&self, probe: Probe) -> Result<Observation> {
        let foreign = match probe {
            Probe::Kit(info, channel) => {
                return Ok(Observation::Serving(self.kit_status(&info), channel));
            }
            Probe::Plain(channel) => return Ok(Observation::Serving(self.plain_status(), channel)),
            Probe::Nothing => None,
            Probe::Foreign(what) => Some(what),
            Probe::NoAnswer => Some("it accepts connections but does not answer gRPC".to_string()),
        };
        let held = lock::is_held(&self.paths.instance_lock())?;
        Ok(match (held, foreign) {
            (true, detail) => Observation::Alive(self.alive_status(detail)),
            (false, None) => Observation::Absent,
            (false, Some(what)) => Observation::Conflict(what),
        })
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

    pub(crate) fn kit_status(&self, info: &control::InfoResponse) -> Status {
        let now = unix_ms(SystemTime::now());
        let state = if info.shutting_down {
            State::Stopping
        } else {
            State::Running
        };
        Status {
            pid: Some(info.pid),
            version: Some(info.version.clone()).filter(|v| !v.is_empty()),
            uptime_secs: Some(now.saturating_sub(info.started_at_unix_ms) / 1000),
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

    fn plain_status(&self) -> Status {
        let record =
            ServiceRecord::read(&self.paths.record()).filter(ServiceRecord::process_matches);
        let now = unix_ms(SystemTime::now());
        Status {
            pid: record.as_ref().map(|r| r.pid),
            uptime_secs: record.map(|r| now.saturating_sub(r.started_at_unix_ms) / 1000),
            ..self.base_status(State::Running)
        }
    }

    fn alive_status(&self, detail: Option<String>) -> Status {
        let record =
            ServiceRecord::read(&self.paths.record()).filter(ServiceRecord::process_matches);
        let now = unix_ms(SystemTime::now());
        let ready_ms = self.config.ready_timeout.as_millis() as u64;
        // No valid record yet: a spawner has just taken the lock for its
        // child and not written the record yet.
        let state = match &record {
            None => State::Starting,
            Some(r) if r.phase == Phase::Stopping => State::Stopping,
            Some(r)
                if r.phase == Phase::Starting
                    && now.saturating_sub(r.started_at_unix_ms) < ready_ms =>
            {
                State::Starting
            }
            Some(_) => State::Unresponsive,
        };
        Status {
            pid: record.as_ref().map(|r| r.pid),
            uptime_secs: record.map(|r| now.saturating_sub(r.started_at_unix_ms) / 1000),
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
                 run `spfs-autostart stop` to end it, then try again",
                status
                    .pid
                    .map(|p| format!(" (pid {p})"))
                    .unwrap_or_default(),
                self.paths.instance_lock().display(),
                self.endpoint,
                self.config.ready_timeout.as_secs_f64()
            ),
        )
        .with_log(self.log_excerpt())
    }

    fn log_excerpt(&self) -> LogExcerpt {
        LogExcerpt {
            path: self.paths.log_file(),
            tail: self.tail_logs(20).unwrap_or_default(),
        }
    }
}

fn version_mismatch(want: &str, have: &str, after_restart: bool) -> Error {
    let message = if after_restart {
        format!(
            "the service was restarted but reports version {have}, not the expected {want}; \
             install version {want} or change expected_version"
        )
    } else {
        format!(
            "the running service reports version {have}, not the expected {want}; \
             run `spfs-autostart stop` to replace it, or set on_version_mismatch = \"restart\""
        )
    };
    Error::new(ErrorKind::VersionMismatch, message)
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
