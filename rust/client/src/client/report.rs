//! Statuses and errors as the user reads them.

use super::*;

pub(super) fn pid_text(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

/// What the run state of a live process that does not answer explains, if
/// anything (suspended, or stuck in the kernel), after `separator`; empty
/// when nothing stands out.
pub(super) fn stuck_because(pid: Option<u32>, separator: &str) -> String {
    run_state_note(pid, true)
        .map(|why| format!("{separator}{why}"))
        .unwrap_or_default()
}

/// [`stuck_because`], for a process that is starting: only a suspension.
/// (A starting process blocks in the kernel for a moment as a matter of
/// course: exec, paging in.)
fn suspended_because(pid: Option<u32>, separator: &str) -> String {
    run_state_note(pid, false)
        .map(|why| format!("{separator}{why}"))
        .unwrap_or_default()
}

/// What the run state says; a block in the kernel only if `blocked_counts`.
fn run_state_note(pid: Option<u32>, blocked_counts: bool) -> Option<&'static str> {
    let info = crate::sys::process_info(pid?)?;
    if info.stopped {
        Some(
            "the process is suspended (by a signal such as Ctrl-Z, or by a debugger) \
             and runs again on SIGCONT",
        )
    } else if info.blocked && blocked_counts {
        Some(
            "the process is blocked in the kernel (an uninterruptible wait, often a hung \
             mount) and can neither answer nor exit until that ends",
        )
    } else {
        None
    }
}

/// What [`foreign_user`] says of the listener, which [`ServiceManager::conflict_error`]
/// looks for: another user's service is theirs to stop.
const NOT_YOURS: &str = "not to you; it is never used, signalled or asked to shut down";

pub(super) fn foreign_user(listener: &crate::owner::Listener) -> String {
    format!(
        "the listener belongs to {}, {NOT_YOURS}",
        crate::owner::user_name(listener.uid)
    )
}

pub(super) fn rpc_error(what: &str, status: &tonic::Status) -> Error {
    let kind = match status.code() {
        tonic::Code::InvalidArgument | tonic::Code::NotFound | tonic::Code::FailedPrecondition => {
            ErrorKind::InvalidArgument
        }
        tonic::Code::PermissionDenied => ErrorKind::PermissionDenied,
        tonic::Code::Unimplemented => ErrorKind::Unsupported,
        _ => ErrorKind::Io,
    };
    let why = match status.code() {
        // A plain service (spfs-fuse-macos) has no Control service, so no
        // leases, and tonic says nothing about it.
        tonic::Code::Unimplemented => {
            "the service does not implement it (only a service that embeds the \
             spfs-autostart kit takes leases; spfs-fuse-macos does not)"
        }
        _ if status.message().is_empty() => status.code().description(),
        _ => status.message(),
    };
    Error::new(kind, format!("cannot {what}: {why}"))
}

/// Where a service of ours that holds no instance lock here came from:
/// the state dir and log a spawner gave it (the `SPFS_AUTOSTART_*`
/// variables in the environment it started with), when those are not this
/// config's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OtherStateDir {
    /// The state dir it was started for.
    pub state_dir: std::path::PathBuf,
    /// The log it writes, when its environment names the log dir.
    pub log_file: Option<std::path::PathBuf>,
}

/// What a service of ours that holds no lock here was started for.
enum StartedFor {
    /// Outside spfs-autostart (spfs, by hand): its environment names no
    /// state dir, and its output is not in our log.
    Outside,
    /// With this state dir in its environment but not by a start of ours:
    /// by an agent (`agent install`'s plist or unit, whose log is ours), or
    /// from a shell that exported the variable.
    ThisStateDirByAgent,
    /// By spfs-autostart for this state dir, which was removed or emptied
    /// under it.
    ThisStateDir,
    /// By spfs-autostart for another state dir.
    OtherStateDir(OtherStateDir),
}

/// Whether two paths name one dir: equal, or equal once resolved.
fn same_dir(a: &std::path::Path, b: &std::path::Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(a), Ok(b)) if a == b
        )
}

impl ServiceManager {
    /// The warning every status on a TCP endpoint carries (`doctor` says it
    /// as a finding of the config's instead).
    pub(crate) fn reachable_by_all_warning(&self) -> Option<String> {
        let ResolvedEndpoint::Tcp(addr) = &self.endpoint else {
            return None;
        };
        // spfs-fuse-macos listens on TCP only: the private socket is
        // advice for a service that embeds the kit.
        Some(format!(
            "endpoint tcp://{addr} can be reached by every user of this machine; \
             a service that embeds the spfs-autostart kit can use a private Unix socket \
             instead (endpoint \"unix\"); spfs-fuse-macos listens on TCP only"
        ))
    }

    /// The other state dir `pid`, a service of ours holding no lock here,
    /// was started for by spfs-autostart; `None` when it was started
    /// outside spfs-autostart (spfs, by hand), or for this state dir.
    pub(crate) fn other_state_dir_of(&self, pid: u32) -> Option<OtherStateDir> {
        match self.started_for(pid) {
            StartedFor::OtherStateDir(other) => Some(other),
            StartedFor::ThisStateDir | StartedFor::ThisStateDirByAgent | StartedFor::Outside => {
                None
            }
        }
    }

    /// What a service of ours that holds no lock here was started for, as
    /// its environment says (read once: a watch asks on every look).
    fn started_for(&self, pid: u32) -> StartedFor {
        use crate::config::env;
        let Some(vars) = crate::sys::ProcessEnv::of(pid) else {
            return StartedFor::Outside;
        };
        let Some(state_dir) = vars.var(env::STATE_DIR).filter(|v| !v.is_empty()) else {
            return StartedFor::Outside;
        };
        let state_dir = std::path::PathBuf::from(state_dir);
        if !same_dir(&state_dir, &self.paths.state_dir) {
            let log_file = vars.var(env::LOG_DIR).map(|dir| {
                crate::Paths {
                    state_dir: state_dir.clone(),
                    log_dir: dir.into(),
                }
                .log_file()
            });
            return StartedFor::OtherStateDir(OtherStateDir {
                state_dir,
                log_file,
            });
        }
        // Only the spawner gives the start's id: a user may export the
        // dir's variable in the shell spfs starts the service from.
        match vars.var(env::SPAWN_ID).filter(|v| !v.is_empty()) {
            Some(_) => StartedFor::ThisStateDir,
            None => StartedFor::ThisStateDirByAgent,
        }
    }

    /// Who started an adopted service `pid` (one of ours, holding no
    /// instance lock here), for its status: outside spfs-autostart, for
    /// this state dir (since removed under it), or for another state dir
    /// (then with the log it writes, which `log_file` should name).
    pub(super) fn adopted_origin(&self, pid: u32) -> (String, Option<std::path::PathBuf>) {
        match self.started_for(pid) {
            StartedFor::OtherStateDir(other) => (
                format!(
                    "started by spfs-autostart for state dir {} (another config's, or one \
                     where XDG_RUNTIME_DIR or TMPDIR differed), not for this config's {}: it \
                     holds no instance lock here",
                    other.state_dir.display(),
                    self.paths.state_dir.display()
                ),
                other.log_file,
            ),
            StartedFor::ThisStateDir => (
                format!(
                    "started by spfs-autostart for this state dir, {}, which was removed or \
                     emptied while it ran: it holds no instance lock there now",
                    self.paths.state_dir.display()
                ),
                None,
            ),
            StartedFor::ThisStateDirByAgent => (
                "started outside spfs-autostart's ensure, by an agent or with \
                 SPFS_AUTOSTART_STATE_DIR set (it holds no instance lock)"
                    .to_string(),
                None,
            ),
            // Its output goes where whoever started it sent it: spfs
            // gives spfs-fuse-macos no stderr, and it logs to the system
            // log as well.
            StartedFor::Outside => (
                format!(
                    "started outside spfs-autostart (it holds no instance lock), so its output \
                     is not in {}{}",
                    self.paths.log_file().display(),
                    if cfg!(target_os = "macos") {
                        format!(
                            "; see the system log: `{}`",
                            crate::logs::system_log_command(&self.config.program)
                        )
                    } else {
                        String::new()
                    }
                ),
                None,
            ),
        }
    }

    pub(super) fn base_status(&self, state: State) -> Status {
        let warnings = self.reachable_by_all_warning().into_iter().collect();
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
            idle_timeout_secs: None,
            warnings,
            detail: None,
            managed: false,
        }
    }

    /// For a stopped service: what its record says of the last one when
    /// that ended without being stopped. A stop leaves the record
    /// `stopping` (a kit service writes it as it shuts down, `stop` for a
    /// plain one), so a record still `running` for a process that is gone
    /// is a crash, a kill, or a restart of the machine.
    pub(super) fn ended_unasked(&self) -> Option<String> {
        let record = ServiceRecord::read(&self.paths.record())?;
        if record.phase != Phase::Running || record.instance().is_some_and(|i| i.is_alive()) {
            return None;
        }
        Some(format!(
            "the last service (pid {}) ended without being stopped: it crashed or was \
             killed, or the machine restarted; its log may say why ({})",
            record.pid,
            self.paths.log_file().display()
        ))
    }

    pub(super) fn stopped_status(&self) -> Status {
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
                    // As the kit keeps it; any service may say anything.
                    label: crate::shell::one_line(&l.label, crate::shell::MAX_LABEL_CHARS),
                })
                .collect(),
            // None while it shuts down, whatever an older kit says.
            idle_exit_in_secs: info
                .idle_exit_in_ms
                .filter(|_| !info.shutting_down)
                .map(|ms| ms.div_ceil(1000)),
            idle_timeout_secs: Some(info.idle_timeout_secs),
            managed: true,
            ..self.base_status(state)
        }
    }

    pub(super) fn plain_status(
        &self,
        record: Option<ServiceRecord>,
        instance: Option<Instance>,
    ) -> Status {
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
    pub(super) fn alive_status(
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
                (State::Starting, detail) => format!(
                    "{}{}",
                    detail.unwrap_or_else(|| format!("{} does not answer yet", self.endpoint)),
                    suspended_because(instance.map(|i| i.pid), "; ")
                ),
                (_, detail) => format!(
                    "{}{}",
                    detail.unwrap_or_else(|| format!("{} does not answer", self.endpoint)),
                    stuck_because(instance.map(|i| i.pid), "; ")
                ),
            }),
            // Only the kit writes a version into the record: a kit service
            // that does not answer (hung, suspended) still gets the kit's
            // stop steps, not a plain service's stop_sequence.
            managed: record.is_some_and(|r| r.version.is_some()),
            ..self.base_status(state)
        }
    }

    /// Why a running service of ours does not answer at the configured
    /// endpoint: it serves at `there`.
    pub(super) fn elsewhere_detail(&self, pid: u32, there: &str) -> String {
        format!(
            "the service (pid {pid}) serves at {there}, not at the configured endpoint {}: the \
             endpoint changed while it ran. Stop it to start it again at {}, or set endpoint \
             back",
            self.endpoint, self.endpoint
        )
    }

    /// `ensure` gave up waiting for a service that is alive but not serving.
    pub(super) fn waiting_error(&self, status: &Status) -> Error {
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

    /// launchd's always-on `job` runs the service (or was to start it),
    /// which did not serve by the deadline. It is launchd's to end, not ours.
    pub(super) fn launchd_not_serving(&self, job: &crate::launchd_job::AgentJob) -> Error {
        let runs = match job.pid() {
            Some(pid) => format!("runs the service (pid {pid})"),
            None => "was to start the service".to_string(),
        };
        Error::new(
            ErrorKind::ReadyTimeout,
            format!(
                "launchd's job {} {runs}, but it did not serve at {} within {:.1}s; see {}. \
                 Try again later, or raise ready_timeout_secs",
                job.label,
                self.endpoint,
                self.config.ready_timeout.as_secs_f64(),
                job.log(&self.paths)
            ),
        )
        .with_remedy(Remedy::SetKey("ready_timeout_secs"))
    }

    /// launchd's always-on `job` started its service (at this call's
    /// request, or as this call waited), and it exited before it served.
    pub(super) fn launchd_start_failed(&self, job: &crate::launchd_job::AgentJob) -> Error {
        let how = job
            .job
            .last_failure()
            .unwrap_or_else(|| "exited".to_string());
        let err = Error::new(
            ErrorKind::ExitedDuringStartup,
            format!(
                "launchd started the service of its job {} and it {how} before it served at \
                 {}; see {}",
                job.label,
                self.endpoint,
                job.log(&self.paths)
            ),
        );
        if job.writes_our_log() {
            err.with_log(self.log_excerpt())
        } else {
            err
        }
    }

    /// Another process holds `spawn.lock` (starting the service, or
    /// stopping it) past our deadline.
    pub(super) fn starting_elsewhere_error(&self) -> Error {
        Error::new(
            ErrorKind::ReadyTimeout,
            format!(
                "another process is starting (or stopping) the service and it was not ready \
                 at {} within {:.1}s; that process reports its own outcome. Try again later, \
                 or raise ready_timeout_secs; see {}",
                self.endpoint,
                self.config.ready_timeout.as_secs_f64(),
                self.paths.log_file().display()
            ),
        )
        .with_log(self.log_excerpt())
        .with_remedy(Remedy::SetKey("ready_timeout_secs"))
    }

    /// A restart stopped the old service, and before its replacement could
    /// serve, another took its place (the instance lock, or the endpoint).
    pub(super) fn replaced_meanwhile_error(&self) -> Error {
        // The version asked for is still not what serves.
        Error::new(
            ErrorKind::VersionMismatch,
            format!(
                "the service of another version was stopped, but before the new one could \
                 serve, another process took the instance lock or {} (spfs may have started \
                 its own); ensure again to use or replace it; see {}",
                self.endpoint,
                self.paths.log_file().display()
            ),
        )
        .with_log(self.log_excerpt())
        .with_remedy(Remedy::Run(Operation::Ensure))
    }

    pub(super) fn conflict_error(&self, what: &str) -> Error {
        // A file or directory where the socket belongs: nothing listens, so
        // there is nothing to stop (as `doctor` says it).
        let fix = if rpc::nothing_listens(what) {
            "remove it (nothing listens there)"
        } else if what.contains(NOT_YOURS) {
            "ask its owner to stop it"
        } else {
            "stop it"
        };
        Error::new(
            ErrorKind::EndpointConflict,
            format!(
                "{} is taken by something that is not our service: {what}. \
                 It was left alone; {fix}, or choose another endpoint in the config",
                self.endpoint
            ),
        )
        .with_remedy(Remedy::SetKey("endpoint"))
    }

    pub(super) fn unresponsive_error(&self, status: &Status) -> Error {
        // `stop` signals only a process it can identify: without one, the
        // fix is by hand, as `stop` would say.
        if status.pid.is_none() {
            let lock = self.paths.instance_lock();
            return Error::new(
                ErrorKind::Unresponsive,
                format!(
                    "a service holds {} but has not answered at {} for {:.1}s, and {} does not \
                     identify it, so it is not signalled (its pid may belong to another \
                     process by now). Find the holder with `fuser {}` (macOS: `lsof {}`), \
                     stop it by hand, then try again",
                    lock.display(),
                    self.endpoint,
                    self.config.ready_timeout.as_secs_f64(),
                    self.paths.record().display(),
                    crate::shell::word(&lock),
                    crate::shell::word(&lock),
                ),
            )
            .with_log(self.log_excerpt());
        }
        let outside = matches!(lock::is_held(&self.paths.instance_lock()), Ok(false));
        let err = Error::new(
            ErrorKind::Unresponsive,
            format!(
                "a service{} {} but has not answered at {} for {:.1}s{}; \
                 stop it (the stop operation), then try again",
                pid_text(status.pid),
                match outside {
                    true => "started outside spfs-autostart (it holds no instance lock) \
                             accepts connections"
                        .to_string(),
                    false => format!("holds {}", self.paths.instance_lock().display()),
                },
                self.endpoint,
                self.config.ready_timeout.as_secs_f64(),
                stuck_because(status.pid, ": "),
            ),
        )
        .with_remedy(Remedy::Run(Operation::Stop));
        // One started outside writes its output elsewhere: our log would
        // show other, older runs.
        match outside {
            true => err,
            false => err.with_log(self.log_excerpt()),
        }
    }

    /// The service log's last lines, for an error about the running
    /// service: those of its run only.
    pub(super) fn log_excerpt(&self) -> LogExcerpt {
        LogExcerpt {
            path: self.paths.log_file(),
            tail: crate::logs::mark::last_run(self.tail_logs(20).unwrap_or_default()),
        }
    }
}
