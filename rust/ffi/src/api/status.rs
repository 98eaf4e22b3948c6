//! The status records and enums the bindings report, converted from the
//! core's.

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

/// When a running kit service exits for idleness, or why it does not yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum IdleExit {
    /// In this many seconds, unless a call or a lease comes first.
    After {
        /// Seconds from the status report.
        secs: u64,
    },
    /// Never: its idle timeout is 0.
    Never,
    /// Not while it holds leases.
    NotWhileLeased,
    /// Not while a call is in flight.
    NotWhileBusy,
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
    /// Who uses the service, in words: each runtime it mounted for, then
    /// each other process holding a lease ("spfs shell (pid 77)"). What a
    /// stop would cut off; empty when nothing uses it.
    pub users: Vec<String>,
    /// Seconds until it exits for idleness, when idle.
    pub idle_exit_in_secs: Option<u64>,
    /// When a running kit service exits for idleness, or why it does not
    /// yet; `None` for any other (a plain service, one not running).
    pub idle_exit: Option<IdleExit>,
    /// The idle timeout a kit service reports (0: it never exits for
    /// idleness); `None` when no kit service answered.
    pub idle_timeout_secs: Option<u64>,
    /// Whether the service embeds the kit (it answers `Control`: version,
    /// leases, idle exit); false for a plain service such as
    /// spfs-fuse-macos as upstream ships it, and when none answered.
    pub managed: bool,
    /// Things the user should know.
    pub warnings: Vec<String>,
    /// What was found, in words: who is in the way (`Conflict`), why it
    /// does not answer (`Unresponsive`), what it waits for (`Starting`, a
    /// kit's `Stopping`), or a note on a running or stopped service (started
    /// outside, socket-activated); `None` when there is nothing to say.
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

/// The step of the stop sequence that ended the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum StopMethod {
    /// It shut down when asked: over RPC, or by its graceful signal
    /// (SIGINT for spfs-fuse-macos; SIGTERM or SIGINT for a kit service).
    Graceful,
    /// A signal that is not its graceful exit ended it (SIGTERM): it had not
    /// exited within the stop timeout, or `stop_sequence` starts there. A
    /// service ended this way may leave things behind (spfs-fuse-macos its
    /// mount).
    Terminated,
    /// It had to be killed with SIGKILL, and could clean up nothing.
    Killed,
}

/// How `stop` ended, in full: `ServiceManager::stop_report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct StopReport {
    /// Whether a service was stopped.
    pub outcome: StopOutcome,
    /// The step that ended it; `None` exactly when nothing was running.
    pub how: Option<StopMethod>,
    /// The process that was stopped, when it was known.
    pub pid: Option<u32>,
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

impl From<spfs_autostart_core::IdleExit> for IdleExit {
    fn from(i: spfs_autostart_core::IdleExit) -> Self {
        use spfs_autostart_core::IdleExit as I;
        match i {
            I::After { secs } => IdleExit::After { secs },
            I::Never => IdleExit::Never,
            I::NotWhileLeased => IdleExit::NotWhileLeased,
            I::NotWhileBusy => IdleExit::NotWhileBusy,
        }
    }
}

impl From<spfs_autostart_core::Status> for ServiceStatus {
    fn from(s: spfs_autostart_core::Status) -> Self {
        let idle_exit = s.idle_exit().map(IdleExit::from);
        let users = s.users();
        ServiceStatus {
            state: s.state.into(),
            pid: s.pid,
            version: s.version,
            endpoint: s.endpoint,
            uptime_secs: s.uptime_secs,
            log_file: s.log_file.to_string_lossy().into_owned(),
            leases: s.leases.into_iter().map(Lease::from).collect(),
            mounts: s.mounts.into_iter().map(Mount::from).collect(),
            users,
            idle_exit_in_secs: s.idle_exit_in_secs,
            idle_exit,
            idle_timeout_secs: s.idle_timeout_secs,
            managed: s.managed,
            warnings: s.warnings,
            detail: s.detail,
        }
    }
}

impl From<spfs_autostart_core::StopOutcome> for StopReport {
    fn from(o: spfs_autostart_core::StopOutcome) -> Self {
        use spfs_autostart_core::StopMethod as M;
        match o {
            spfs_autostart_core::StopOutcome::Stopped { how, pid } => StopReport {
                outcome: StopOutcome::Stopped,
                how: Some(match how {
                    M::Graceful => StopMethod::Graceful,
                    M::Terminated => StopMethod::Terminated,
                    M::Killed => StopMethod::Killed,
                }),
                pid,
            },
            spfs_autostart_core::StopOutcome::NotRunning => StopReport {
                outcome: StopOutcome::NotRunning,
                how: None,
                pid: None,
            },
        }
    }
}
