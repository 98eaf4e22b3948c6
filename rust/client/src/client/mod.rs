//! The client: `ensure`, `stop`, `status`, leases, logs.
//!
//! The handshake, in short (docs/DESIGN.md section 4 is the contract):
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
//! [`crate::sys::Instance`]) and signal only that process, or the process
//! group it leads.

mod activity;
mod ensure;
mod failed_start;
#[cfg(test)]
mod launchd_tests;
mod leases;
mod observe;
mod quick;
mod report;
mod stop;
mod version;

use std::sync::{Arc, Mutex};
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
pub(crate) use report::OtherStateDir;
use report::{foreign_user, rpc_error};
pub(crate) use version::VersionVerdict;
use version::version_mismatch;

/// How long one probe may wait for an answer. A healthy service answers in
/// well under a millisecond; this bounds a hung or foreign peer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the cached channel was found to reach, when it was cached. The
/// channel reconnects by itself, so an answer over it may come from whoever
/// serves at the endpoint now.
#[derive(Clone, Copy, Debug, Default)]
struct Reached {
    /// The socket file (device and inode), for a Unix endpoint: another
    /// file at the path (the state dir removed and made again, a new
    /// service) means the channel reaches a service nobody else can find
    /// any more.
    socket_file: Option<(u64, u64)>,
    /// The process found serving. A plain service cannot say who it is: its
    /// answer counts only while this process lives and is not being
    /// stopped (otherwise the answer may be a service being stopped, or a
    /// listener that took the port after ours died). A kit service names
    /// its pid, which must be this one's when it is known (TCP).
    instance: Option<Instance>,
}

/// Manages one service: the only type most callers need.
#[derive(Debug)]
pub struct ServiceManager {
    config: Config,
    paths: Paths,
    endpoint: ResolvedEndpoint,
    /// The channel of the last successful probe, reused by the fast path.
    channel: Mutex<Option<Channel>>,
    /// What that channel was found to reach, which the fast path checks
    /// before it trusts an answer over it.
    reached: Mutex<Reached>,
    /// What a slow `ensure` or `stop` is doing now ([`Self::activity`]).
    activity: Mutex<Option<Activity>>,
    /// Who was last found listening at a TCP endpoint, a process of ours,
    /// with the kernel's id of that listening socket (see `listener_at`).
    listener: Mutex<Option<(crate::owner::Listener, Option<u64>)>>,
    /// launchd, which starts the service when an always-on job of its is
    /// loaded for it (`ensure`'s `start_by_launchd`).
    launchd: Arc<dyn crate::launchd_job::Launchd>,
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
            reached: Mutex::new(Reached::default()),
            activity: Mutex::new(None),
            listener: Mutex::new(None),
            launchd: Arc::new(crate::launchd_job::SystemLaunchd),
        })
    }

    /// This manager with `launchd` in place of the user's (a test's
    /// stand-in).
    #[cfg(test)]
    pub(crate) fn with_launchd(mut self, launchd: Arc<dyn crate::launchd_job::Launchd>) -> Self {
        self.launchd = launchd;
        self
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

    /// The cached channel answers, from the process it reached: the
    /// cheapest possible look. `touch` counts it as use (for `ensure`, not
    /// for `status`).
    async fn fast_path(&self, touch: bool) -> Option<Status> {
        let channel = self.channel.lock().expect("channel mutex").clone()?;
        let reached = *self.reached.lock().expect("reached mutex");
        if self.socket_file() != reached.socket_file {
            self.forget_channel();
            return None;
        }
        // One RPC; for a plain service also a look at its process (a read
        // of /proc or one sysctl, and a missing `stopping` file), never a
        // listener lookup.
        let status = match rpc::info(channel, touch, PROBE_TIMEOUT).await {
            Probe::Kit(info, _)
                if !info.shutting_down && reached.instance.is_none_or(|i| i.pid == info.pid) =>
            {
                Some(self.kit_status(&info, None))
            }
            Probe::Plain(_) if touch => reached
                .instance
                .filter(|&i| i.is_alive() && !self.being_stopped(i))
                .map(|i| self.plain_status(None, Some(i))),
            // `status` of a plain service looks up who listens (pid,
            // owner); the channel stays good for that.
            Probe::Plain(_) => return None,
            _ => None,
        };
        if status.is_none() {
            self.forget_channel();
        }
        status
    }

    /// Keep `channel` for the fast path, with what it reached: `instance`,
    /// the process found serving (if known).
    fn remember(&self, status: Status, channel: Channel, instance: Option<Instance>) -> Status {
        *self.reached.lock().expect("reached mutex") = Reached {
            socket_file: self.socket_file(),
            instance,
        };
        *self.channel.lock().expect("channel mutex") = Some(channel);
        status
    }

    /// Drop the cached channel: the next look connects afresh.
    fn forget_channel(&self) {
        *self.channel.lock().expect("channel mutex") = None;
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
    /// look that found it running left behind, and warn when nothing is
    /// mounted where spfs-fuse-macos mounts.
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
        status
            .warnings
            .extend(crate::mountpoint::unmounted_warning(&self.config).await);
    }

    /// Warnings about services of this user running in another default
    /// state dir (started where `XDG_RUNTIME_DIR` or `TMPDIR` differed).
    /// Only when the state dir is the default: an explicit one is chosen.
    pub(crate) fn elsewhere_warnings(&self) -> Vec<String> {
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
                     XDG_RUNTIME_DIR or TMPDIR differed, e.g. from cron, ssh or sudo): two \
                     services, and with the same HOME one log ({}). Stop it with the \
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
                self.forget_channel();
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
                self.forget_channel();
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
            Observation::Serving(status, channel, instance) => {
                self.with_version_warning(self.remember(status, channel, instance))
            }
            Observation::Alive(status, _) => status,
            Observation::Absent { orphaned_lock } => Status {
                detail: match orphaned_lock {
                    true => Some(format!(
                        "{} is still held by processes the last service left behind; \
                         the next start replaces it",
                        self.paths.instance_lock().display()
                    )),
                    false => self.ended_unasked(),
                },
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
            .map_err(|e| self.log_read_error("cannot read the service log", &path, e))
    }

    /// Why the log at `path` could not be read: often its dir (a file, not
    /// ours alone), which is then said with its fix, as `follow_logs` says it.
    /// Else the file's own error, with the fix for one not readable by us.
    fn log_read_error(&self, what: &str, path: &std::path::Path, e: std::io::Error) -> Error {
        match self.paths.check_log_dir() {
            Err(dir) => dir,
            Ok(_) if e.kind() == std::io::ErrorKind::PermissionDenied => Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{what} {}: {e}; make it readable by you (a service once started with \
                     sudo leaves a log that is root's: chown it)",
                    path.display()
                ),
            ),
            Ok(_) => Error::io(what, path, e),
        }
    }

    /// The last `n` lines of the service log one at a time, in memory
    /// bounded whatever `n` (see [`logs::tail_lines`]); for callers that
    /// print them, such as `spfs-autostart logs -n 100000000`.
    pub fn tail_logs_lines(&self, n: usize) -> Result<logs::TailLines> {
        let path = self.paths.log_file();
        logs::tail_lines(&path, n)
            .map_err(|e| self.log_read_error("cannot read the service log", &path, e))
    }

    /// Follow the service log: its last `backlog` lines, then each new line,
    /// across rotation.
    pub fn follow_logs(&self, backlog: usize) -> Result<LogFollower> {
        // The dir is watched for the log's creation and rotation, so it
        // must be there: made when missing, as a start makes it. One that
        // is there is read as `tail_logs` reads it: a dir others may write
        // is refused to a service writing there, not to a reader.
        if std::fs::symlink_metadata(&self.paths.log_dir).is_err() {
            self.paths.create_log_dir()?;
        }
        let path = self.paths.log_file();
        logs::follow(&path, backlog)
            .map_err(|e| self.log_read_error("cannot follow the service log", &path, e))
    }
}
