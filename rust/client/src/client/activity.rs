//! What a slow `ensure` or `stop` is doing now, for a progress line: a
//! wait of seconds says what it waits for, not only that it waits.

use std::fmt;

use crate::status::State;

/// What a [`super::ServiceManager::ensure`] or
/// [`super::ServiceManager::stop`] in progress is doing, as
/// [`super::ServiceManager::activity`] reads it. Its `Display` is a phrase
/// for a progress line: "starting spfs-fuse-macos (pid 4242)".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Starting `program`, spawned as `pid`.
    Starting {
        /// The configured program.
        program: String,
        /// The service's pid.
        pid: u32,
        /// Where it mounts, if it is spfs-fuse-macos (ended before it
        /// listens, it leaves its mount: [`crate::mountpoint::left_mount_hint`]).
        mountpoint: Option<String>,
    },
    /// Another process holds `spawn.lock`: it is starting (or stopping)
    /// the service, and this call waits for it to finish.
    WaitingForAnotherClient,
    /// A service is there but not ready; `state` says how (starting,
    /// stopping, unresponsive).
    WaitingForService {
        /// Its state when last looked at.
        state: State,
        /// Its pid, when known.
        pid: Option<u32>,
    },
    /// launchd's always-on job `label` runs the service (or was asked to
    /// start it), and this call waits for it to serve.
    WaitingForLaunchd {
        /// The job's label.
        label: String,
        /// launchd's process for it, once known.
        pid: Option<u32>,
    },
    /// Stopping the service: `step` (the shutdown request, or a signal's
    /// name) was the last taken.
    Stopping {
        /// Its pid, when known.
        pid: Option<u32>,
        /// The step last taken: "the shutdown request", "SIGINT".
        step: String,
    },
}

impl fmt::Display for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let service = |pid: &Option<u32>| match pid {
            Some(pid) => format!("the service (pid {pid})"),
            None => "the service".to_string(),
        };
        match self {
            Activity::Starting { program, pid, .. } => {
                write!(f, "starting {program} (pid {pid})")
            }
            Activity::WaitingForAnotherClient => {
                write!(
                    f,
                    "waiting for another process to finish starting or stopping the service"
                )
            }
            Activity::WaitingForService { state, pid } => {
                let what = service(pid);
                match state {
                    State::Starting => write!(f, "waiting for {what} to become ready"),
                    State::Stopping => {
                        write!(
                            f,
                            "waiting for {what} to finish stopping, to start it again"
                        )
                    }
                    State::Unresponsive => write!(f, "waiting for {what} to answer"),
                    _ => write!(f, "waiting for {what}"),
                }
            }
            Activity::WaitingForLaunchd { label, pid } => {
                write!(
                    f,
                    "waiting for launchd's job {label} to start {}",
                    service(pid)
                )
            }
            Activity::Stopping { pid, step } => {
                write!(
                    f,
                    "stopping {}: waiting for it to exit after {step}",
                    service(pid)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_activity_says_what_is_waited_for() {
        let cases = [
            (
                Activity::Starting {
                    program: "spfs-fuse-macos".into(),
                    pid: 42,
                    mountpoint: Some("/spfs".into()),
                },
                "starting spfs-fuse-macos (pid 42)",
            ),
            (
                Activity::WaitingForLaunchd {
                    label: "ai.spk.spfs-fuse-macos".into(),
                    pid: Some(7),
                },
                "waiting for launchd's job ai.spk.spfs-fuse-macos to start the service (pid 7)",
            ),
            (
                Activity::WaitingForService {
                    state: State::Stopping,
                    pid: Some(7),
                },
                "waiting for the service (pid 7) to finish stopping, to start it again",
            ),
            (
                Activity::WaitingForService {
                    state: State::Unresponsive,
                    pid: Some(7),
                },
                "waiting for the service (pid 7) to answer",
            ),
            (
                Activity::WaitingForService {
                    state: State::Starting,
                    pid: None,
                },
                "waiting for the service to become ready",
            ),
            (
                Activity::Stopping {
                    pid: Some(7),
                    step: "SIGINT".into(),
                },
                "stopping the service (pid 7): waiting for it to exit after SIGINT",
            ),
        ];
        for (activity, text) in cases {
            assert_eq!(activity.to_string(), text);
        }
    }
}
