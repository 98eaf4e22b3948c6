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

impl Status {
    /// Who uses the service, for a stop to name: each mount's runtime
    /// (`rt-1 (pid 42)`, or `pid 42` without a name), then each leaseholder
    /// without a mount (`spfs shell (pid 77)`). Empty when nothing is known
    /// to use it.
    pub fn users(&self) -> Vec<String> {
        let named = |name: &str, pid: u32| match name {
            "" => format!("pid {pid}"),
            name => format!("{name} (pid {pid})"),
        };
        let mounted: Vec<u32> = self.mounts.iter().map(|m| m.root_pid).collect();
        self.mounts
            .iter()
            .map(|m| named(&m.runtime_name, m.root_pid))
            .chain(
                self.leases
                    .iter()
                    .filter(|l| !mounted.contains(&l.pid))
                    .map(|l| named(&l.label, l.pid)),
            )
            .collect()
    }

    /// When a running kit service exits for idleness, or why it does not
    /// yet; `None` unless a running kit service told its idle timeout (a
    /// plain service has no idle exit).
    pub fn idle_exit(&self) -> Option<IdleExit> {
        let idle_timeout = self.idle_timeout_secs?;
        if self.state != State::Running {
            return None;
        }
        Some(match self.idle_exit_in_secs {
            Some(secs) => IdleExit::After { secs },
            None if idle_timeout == 0 => IdleExit::Never,
            None if !self.leases.is_empty() => IdleExit::NotWhileLeased,
            None => IdleExit::NotWhileBusy,
        })
    }
}

/// When a running kit service exits for idleness ([`Status::idle_exit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleExit {
    /// In this many seconds, unless a call or a lease comes first.
    After {
        /// Seconds from the status report.
        secs: u64,
    },
    /// Never: its idle timeout is 0 (`idle_timeout_secs`).
    Never,
    /// Not while it holds leases.
    NotWhileLeased,
    /// Not while a call is in flight.
    NotWhileBusy,
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
    /// It shut down when asked: over RPC, or by its graceful signal (SIGINT
    /// for spfs-fuse-macos; SIGTERM or SIGINT for a kit service).
    Graceful,
    /// A signal that is not its graceful exit ended it: SIGTERM, or another
    /// that `stop_sequence` names.
    Terminated,
    /// It had to be SIGKILLed.
    Killed,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kit service's status in `state`, with this idle timeout and
    /// deadline and `leases` leases.
    fn kit_status(
        state: State,
        idle_timeout: u64,
        idle_exit_in: Option<u64>,
        leases: u32,
    ) -> Status {
        Status {
            state,
            pid: Some(42),
            version: None,
            endpoint: "unix".into(),
            uptime_secs: Some(1),
            log_file: "service.log".into(),
            leases: (0..leases)
                .map(|id| Lease {
                    id: id.into(),
                    pid: 7,
                    label: "spfs shell".into(),
                })
                .collect(),
            mounts: vec![],
            idle_exit_in_secs: idle_exit_in,
            idle_timeout_secs: Some(idle_timeout),
            warnings: vec![],
            detail: None,
            managed: true,
        }
    }

    #[test]
    fn idle_exit_gives_the_deadline_or_why_there_is_none() {
        let running = |timeout, exit_in, leases| {
            kit_status(State::Running, timeout, exit_in, leases).idle_exit()
        };
        assert_eq!(
            running(1800, Some(60), 0),
            Some(IdleExit::After { secs: 60 })
        );
        assert_eq!(running(0, None, 0), Some(IdleExit::Never));
        assert_eq!(running(0, None, 1), Some(IdleExit::Never));
        assert_eq!(running(1800, None, 1), Some(IdleExit::NotWhileLeased));
        assert_eq!(running(1800, None, 0), Some(IdleExit::NotWhileBusy));
    }

    #[test]
    fn idle_exit_is_none_unless_a_running_kit_service_told_its_timeout() {
        let stopping = kit_status(State::Stopping, 1800, None, 0);
        assert_eq!(stopping.idle_exit(), None);
        let plain = Status {
            idle_timeout_secs: None,
            managed: false,
            ..kit_status(State::Running, 0, None, 0)
        };
        assert_eq!(plain.idle_exit(), None);
    }

    /// Each mount's runtime, then each leaseholder without a mount (one
    /// with a mount is named once, by it).
    #[test]
    fn users_name_each_runtime_once() {
        let mut status = kit_status(State::Running, 1800, None, 1);
        assert_eq!(status.users(), ["spfs shell (pid 7)"]);
        status.mounts = vec![
            Mount {
                runtime_name: "rt-1".into(),
                root_pid: 7,
                editable: true,
                env_spec: "base".into(),
            },
            Mount {
                runtime_name: String::new(),
                root_pid: 9,
                editable: false,
                env_spec: "-".into(),
            },
        ];
        status.leases.push(Lease {
            id: 5,
            pid: 11,
            label: String::new(),
        });
        assert_eq!(status.users(), ["rt-1 (pid 7)", "pid 9", "pid 11"]);
        assert!(kit_status(State::Running, 1800, None, 0).users().is_empty());
    }
}
