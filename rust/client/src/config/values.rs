//! The value types of the keys that are more than a number or a string
//! and belong to the client: what a version mismatch does, how a plain
//! service is stopped (the endpoint's type is the protocol's). Each reads
//! and writes the text the config file uses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What to do when the running service reports another version than
/// `expected_version`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionPolicy {
    /// Stop the old service and start the configured program.
    #[default]
    Restart,
    /// Fail with `VersionMismatch` and leave the service alone.
    Error,
}

/// One step of a stop sequence: the config's `stop_sequence` for a plain
/// service (one that does not embed the kit), and always `Shutdown`,
/// SIGTERM, SIGKILL for a kit service (`ServiceManager::stop_steps`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopStep {
    /// Ask over gRPC: `Control.Shutdown` of a kit service, or
    /// `spfs_vfs.VfsService/Shutdown` of a plain one. For a plain service
    /// the step ends when the call returns: upstream's spfs-fuse-macos only
    /// unmounts and serves on, so waiting for it to exit would only waste
    /// `stop_timeout_secs`.
    Shutdown,
    /// Send this signal, then wait until the service is gone, at most
    /// `stop_timeout_secs`, and no longer than it takes.
    Signal(nix::sys::signal::Signal),
}

impl StopStep {
    /// The signals a stop sequence may send: those that end a process by
    /// default or are commonly handled as "stop".
    const SIGNALS: [nix::sys::signal::Signal; 7] = [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGKILL,
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGQUIT,
        nix::sys::signal::Signal::SIGUSR1,
        nix::sys::signal::Signal::SIGUSR2,
    ];

    /// spfs-fuse-macos's: `Shutdown` unmounts, SIGINT is its one graceful
    /// signal, SIGTERM kills it at once (leaving the mount behind), SIGKILL
    /// is the last resort.
    pub fn default_sequence() -> Vec<StopStep> {
        use nix::sys::signal::Signal;
        vec![
            StopStep::Shutdown,
            StopStep::Signal(Signal::SIGINT),
            StopStep::Signal(Signal::SIGTERM),
            StopStep::Signal(Signal::SIGKILL),
        ]
    }
}

impl FromStr for StopStep {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "shutdown" {
            return Ok(StopStep::Shutdown);
        }
        let name = if s.starts_with("SIG") {
            s.to_string()
        } else {
            format!("SIG{s}")
        };
        match name.parse::<nix::sys::signal::Signal>() {
            Ok(signal) if StopStep::SIGNALS.contains(&signal) => Ok(StopStep::Signal(signal)),
            _ => Err(format!(
                "{s:?} is not a stop step; use \"shutdown\" or one of {}",
                StopStep::SIGNALS
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

impl fmt::Display for StopStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopStep::Shutdown => f.write_str("shutdown"),
            StopStep::Signal(signal) => f.write_str(signal.as_str()),
        }
    }
}

impl Serialize for StopStep {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
