//! The client: `ensure`, `stop`, `status`, leases, logs.
//!
//! The handshake (DESIGN.md section 4), written down once here:
//! 1. Probe the endpoint; an answer is the fast path.
//! 2. `instance.lock` held but no answer: a service is alive; wait for it
//!    (polling `spawn.lock` with a short backoff while a spawner works, so
//!    the wait can be cancelled; else with a longer backoff),
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

mod activity;
mod leases;
mod observe;
mod report;
mod stop;
mod version;

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
pub use activity::Activity;
// What the parts share; each part takes the parent's names with `use super::*`.
use observe::{ActivatedLook, Observation};
use report::{foreign_user, rpc_error};
pub(crate) use version::VersionVerdict;
use version::version_mismatch;

/// The least time left of a call's deadline worth starting a service in.
const MIN_START_TIME: Duration = Duration::from_millis(100);

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
    /// The socket file that channel reached (device and inode), for a Unix
    /// endpoint: another file at the path (the state dir removed and made
    /// again, a new service) means the channel reaches a service nobody
    /// else can find any more.
    socket_file: Mutex<Option<(u64, u64)>>,
    /// What a slow `ensure` or `stop` is doing now ([`Self::activity`]).
    activity: Mutex<Option<Activity>>,
    /// Who was last found listening at a TCP endpoint, a process of ours
    /// (see `listener_at`).
    listener: Mutex<Option<crate::owner::Listener>>,
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
            socket_file: Mutex::new(None),
            activity: Mutex::new(None),
            listener: Mutex::new(None),
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

    /// What an `ensure` or `stop` of this manager that is taking a while
    /// is doing now (the last one to say, if several run): read by a
    /// progress display while it waits. `None` while the call still looks
    /// for the service.
    pub fn activity(&self) -> Option<Activity> {
        self.activity.lock().expect("activity mutex").clone()
    }

    /// Say what this call does now (`None`: it looks), for
    /// [`Self::activity`].
    fn set_activity(&self, activity: impl Into<Option<Activity>>) {
        *self.activity.lock().expect("activity mutex") = activity.into();
    }

    /// Make sure the service runs, starting it if needed; returns its status
    /// once it answers. Safe to call from many processes at once: exactly
    /// one service is started. Dropping the future (a timeout, Ctrl-C)
    /// kills a service this call was starting.
    pub async fn ensure(&self) -> Result<Status> {
        let deadline = Instant::now() + self.config.ready_timeout;
        let (status, started) = self.ensure_running(deadline).await?;
        let (Some(want), Some(have)) = (&self.config.expected_version, &status.version) else {
            // Nothing to compare (a plain service reports no version): say so.
            return Ok(self.with_version_warning(status));
        };
        if want == have {
            return Ok(status);
        }
        if started {
            // Just started from the configured program: a restart would
            // start the same program again.
            return Err(self.fresh_start_mismatch(want, have, status.pid));
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

    /// The service's status once it serves, and whether this call started
    /// it.
    async fn ensure_running(&self, deadline: Instant) -> Result<(Status, bool)> {
        if let Some(status) = self.fast_path(true).await {
            return Ok((status, false));
        }
        self.set_activity(None);
        let mut backoff = Backoff::new(Duration::from_millis(50));
        loop {
            match self.observe(true, false).await? {
                Observation::Serving(status, channel, _) => {
                    return Ok((self.remember(status, channel), false));
                }
                Observation::Conflict(what) => return Err(self.conflict_error(&what)),
                // Ours, serving at another endpoint: waiting changes nothing.
                Observation::Alive(status, _) if status.state == State::Conflict => {
                    return Err(Error::new(
                        ErrorKind::EndpointConflict,
                        status.detail.unwrap_or_default(),
                    )
                    .with_remedy(Remedy::Run(Operation::Stop)));
                }
                Observation::Alive(status, _) => {
                    if Instant::now() >= deadline {
                        return Err(self.waiting_error(&status));
                    }
                    self.set_activity(Activity::WaitingForService {
                        state: status.state,
                        pid: status.pid,
                    });
                }
                Observation::Absent { .. } => {
                    self.paths.create_state_dir()?;
                    // A start writes there (a read-only file system cannot
                    // take it); a look or a running service's use does not.
                    self.paths.check_writable()?;
                    // Said now, not as the service's failure to listen.
                    self.paths.check_endpoint_dir(&self.endpoint)?;
                    if let Some(spawn_guard) =
                        lock::try_take(&self.paths.spawn_lock())?.map(lock::OwnLock::from)
                    {
                        // Someone may have started it while we waited.
                        match self.observe(true, true).await? {
                            Observation::Serving(status, channel, _) => {
                                return Ok((self.remember(status, channel), false));
                            }
                            Observation::Conflict(what) => return Err(self.conflict_error(&what)),
                            Observation::Alive(..) => {}
                            Observation::Absent { orphaned_lock } => {
                                if let Some(status) = self.spawn(orphaned_lock, deadline).await? {
                                    drop(spawn_guard);
                                    return Ok((status, true));
                                }
                            }
                        }
                        drop(spawn_guard);
                    } else if Instant::now() >= deadline {
                        return Err(self.starting_elsewhere_error());
                    } else {
                        self.set_activity(Activity::WaitingForAnotherClient);
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
    /// lock first, or another process of ours came to serve at the TCP
    /// endpoint before ours did (the caller goes back to looking).
    /// `orphaned_lock`: the observation found `instance.lock` held only by
    /// leftovers of a dead service; it is replaced with a fresh one.
    async fn spawn(&self, orphaned_lock: bool, deadline: Instant) -> Result<Option<Status>> {
        // A call that waited out its time (for another start, which failed;
        // for a stop) does not start one it could not wait for: it would be
        // killed at once, and the call would overrun its deadline.
        if deadline.saturating_duration_since(Instant::now()) < MIN_START_TIME {
            return Err(Error::new(
                ErrorKind::ReadyTimeout,
                format!(
                    "no time was left of ready_timeout_secs ({}s) to start the service: this \
                     call spent it waiting (for another process's start or stop); see the \
                     log, or raise ready_timeout_secs",
                    self.config.ready_timeout.as_secs()
                ),
            )
            .with_log(self.log_excerpt())
            .with_remedy(Remedy::SetKey("ready_timeout_secs")));
        }
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
        self.set_activity(Activity::Starting {
            program: self.config.program.clone(),
            pid: child.pid,
        });
        let log_warning = child.log_warning();
        let probe = child
            .wait_ready(&self.endpoint, &lock_path, deadline, PROBE_TIMEOUT)
            .await?;
        // Another process of ours answers on the port while ours has not
        // bound it (spfs started its own meanwhile): ours cannot serve
        // there. It is ended, and the caller looks again, which adopts the
        // other as started outside (or names it a conflict).
        if matches!(probe, Probe::Plain(_)) && !child.may_serve_at(&self.endpoint) {
            tracing::info!("another process serves at {}; ending ours", self.endpoint);
            let why = format!(
                "another process serves at {}, started meanwhile; that one is used",
                self.endpoint
            );
            child.end(&why).await;
            // Until ours has let go of the lock, a look would take the
            // answer for ours.
            spawn::still_held(&lock_path).await;
            return Ok(None);
        }
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
            Observation::Conflict(what) => {
                child.end(&what).await;
                Err(self.conflict_error(&what))
            }
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
            socket_activated: false,
            spawn_id: None,
        };
        if let Err(e) = record.write(&self.paths.record()) {
            tracing::warn!("{e}");
        }
    }

    /// The cached channel answers: the cheapest possible look. `touch`
    /// counts it as use (for `ensure`, not for `status`).
    async fn fast_path(&self, touch: bool) -> Option<Status> {
        let channel = self.channel.lock().expect("channel mutex").clone()?;
        if self.socket_file() != *self.socket_file.lock().expect("socket mutex") {
            *self.channel.lock().expect("channel mutex") = None;
            return None;
        }
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
        *self.socket_file.lock().expect("socket mutex") = self.socket_file();
        *self.channel.lock().expect("channel mutex") = Some(channel);
        status
    }

    /// The device and inode of the file at a Unix endpoint (one `lstat`);
    /// `None` for TCP, or when nothing is there.
    fn socket_file(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let ResolvedEndpoint::Unix(path) = &self.endpoint else {
            return None;
        };
        std::fs::symlink_metadata(path)
            .ok()
            .map(|meta| (meta.dev(), meta.ino()))
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
            match crate::mounts::active(channel, PROBE_TIMEOUT).await {
                Ok(mounts) => status.mounts = mounts,
                Err(why) => status.warnings.push(why),
            }
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
        // Not even over the cached channel, which would connect again: a
        // connection to the socket starts a socket-activated service.
        let activated = match self.paths.check_state_dir()? {
            true => self.socket_activated_look(),
            false => None,
        };
        match activated {
            Some(ActivatedLook::Gone) => {
                *self.channel.lock().expect("channel mutex") = None;
                return Ok(Status {
                    detail: Some(
                        "socket-activated: launchd or systemd holds its socket and starts it \
                         on the next connection (ensure)"
                            .into(),
                    ),
                    ..self.stopped_status()
                });
            }
            Some(ActivatedLook::Going(..)) => {
                *self.channel.lock().expect("channel mutex") = None;
            }
            None => {
                if let Some(status) = self.fast_path(false).await {
                    return Ok(self.with_version_warning(status));
                }
            }
        }
        // `observe` looks at the record again, on purpose: a fast path that
        // fails is most often a service that has just begun to exit, and a
        // socket-activated one must then not be connected to (the look above
        // was taken while it still served).
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
            .map_err(|e| self.log_read_error(&path, e))
    }

    /// Why the log at `path` could not be read: often its dir (a file, not
    /// ours alone), which is then said with its fix, as `follow_logs` says it.
    fn log_read_error(&self, path: &std::path::Path, e: std::io::Error) -> Error {
        match self.paths.check_log_dir() {
            Err(dir) => dir,
            Ok(_) => Error::io("cannot read the service log", path, e),
        }
    }

    /// The last `n` lines of the service log one at a time, in memory
    /// bounded whatever `n` (see [`logs::tail_lines`]); for callers that
    /// print them, such as `spfs-autostart logs -n 100000000`.
    pub fn tail_logs_lines(&self, n: usize) -> Result<logs::TailLines> {
        let path = self.paths.log_file();
        logs::tail_lines(&path, n).map_err(|e| self.log_read_error(&path, e))
    }

    /// Follow the service log: its last `backlog` lines, then each new line,
    /// across rotation.
    pub fn follow_logs(&self, backlog: usize) -> Result<LogFollower> {
        self.paths.create_log_dir()?;
        let path = self.paths.log_file();
        logs::follow(&path, backlog)
            .map_err(|e| Error::io("cannot follow the service log", &path, e))
    }
}
