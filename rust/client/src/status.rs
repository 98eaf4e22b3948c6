//! What `status`, `ensure` and `watch` report about the service.

use std::path::PathBuf;

use serde::Serialize;

/// The state of the managed service as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
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

impl State {
    /// The lowercase name used in text and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Starting => "starting",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Unresponsive => "unresponsive",
            State::Conflict => "conflict",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lease: the service stays up while process `pid` lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// Its id, for `release`.
    pub id: u64,
    /// The process it follows.
    pub pid: u32,
    /// Who took it.
    pub label: String,
}

/// An environment the service has mounted for a process tree, as its
/// `spfs_vfs.VfsService/Status` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// The runtime's name (names an editable mount's scratch directory);
    /// empty when the caller gave none.
    pub runtime_name: String,
    /// The root of the process tree the mount serves; the service drops the
    /// mount when it exits.
    pub root_pid: u32,
    /// Whether writes go to a scratch directory.
    pub editable: bool,
    /// The environment, in spfs's EnvSpec text form (`-` is empty).
    pub env_spec: String,
}

/// A full status report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The state.
    pub state: State,
    /// The service's pid, when known and verified.
    pub pid: Option<u32>,
    /// The version it reports (kit services only).
    pub version: Option<String>,
    /// The endpoint, in config syntax.
    pub endpoint: String,
    /// Seconds since it started.
    pub uptime_secs: Option<u64>,
    /// Its log file.
    pub log_file: PathBuf,
    /// Leases it holds.
    pub leases: Vec<Lease>,
    /// The environments it has mounted. Filled by `status()` and `watch()`
    /// when the service answers `VfsService/Status`; empty for a service
    /// without it (spfs's `main`), and in `ensure()`'s answer, which stays
    /// one RPC.
    pub mounts: Vec<Mount>,
    /// Seconds until it exits for idleness, when idle.
    pub idle_exit_in_secs: Option<u64>,
    /// The idle timeout a kit service reports (0: it never exits for
    /// idleness); `None` when no kit service answered.
    pub idle_timeout_secs: Option<u64>,
    /// Things the user should know, e.g. a TCP endpoint other users can reach.
    pub warnings: Vec<String>,
    /// What was found, for `conflict` and `unresponsive`.
    pub detail: Option<String>,
    /// Whether the service embeds the kit (answers `Control`).
    pub managed: bool,
}

/// How `stop` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopOutcome {
    /// It was running and has stopped.
    Stopped {
        /// Which step stopped it.
        how: StopMethod,
        /// The process that was stopped, when it was known.
        pid: Option<u32>,
    },
    /// Nothing was running; nothing was done.
    NotRunning,
}

/// The step of the stop sequence that ended the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StopMethod {
    /// It shut down when asked over RPC.
    Graceful,
    /// It exited on SIGTERM.
    Terminated,
    /// It had to be SIGKILLed.
    Killed,
}
