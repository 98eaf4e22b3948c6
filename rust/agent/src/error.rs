//! The agent crate's one error type.
//!
//! Its kinds say what the caller can do about an agent failure; `From<LaunchdError> for
//! Error`, below, maps them into the one error vocabulary (`ErrorKind`) in one place, so `?`
//! carries an agent failure into the client's errors.

use std::io;
use std::path::PathBuf;

use spfs_autostart_protocol::remedy::{Operation, Remedy};
use spfs_autostart_protocol::{Error, ErrorKind};

/// What the caller can do about a [`LaunchdError`]; the core maps these into its own kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaunchdErrorKind {
    /// The [`AgentSpec`](super::AgentSpec) (or a label) cannot describe a valid job: fix the
    /// input named in the message.
    InvalidSpec,
    /// The operation needs launchd, which this system does not have.
    Unsupported,
    /// A file or directory could not be read or written.
    Io,
    /// `launchctl` ran and refused, or could not be run.
    Launchctl,
}

/// Why generating, installing, removing or inspecting a LaunchAgent failed.
///
/// Every message says what happened, to what, and what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchdError {
    /// A field of the spec is unusable.
    #[error("invalid agent setting `{field}`: {message}")]
    InvalidSpec {
        /// The field at fault, as named in [`AgentSpec`](super::AgentSpec) (`label`, `program`, ...).
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// launchd is not available on this system.
    #[error(
        "{operation} needs launchd, which only macOS has; on this system describe \
         the service as a systemd user unit instead (the agent print operation in the systemd \
         format), or rely on ensure, which starts the service on demand"
    )]
    Unsupported {
        /// What was attempted (e.g. `launchctl bootstrap`).
        operation: String,
        /// Whether a socket-activated agent was asked for: the systemd
        /// units to describe instead are that mode's.
        socket: bool,
    },
    /// A filesystem operation failed.
    #[error("could not {action} {}: {source}; {hint}", path.display())]
    Io {
        /// What was being done, as a verb phrase (`write`, `create the directory`, ...).
        action: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// How to recover.
        hint: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `launchctl` failed.
    #[error(
        "`{command}` failed{}: {}; {hint}. \
         Ensure keeps starting the service on demand regardless",
        status.map(|s| format!(" with exit status {s}")).unwrap_or_default(),
        quote_output(output)
    )]
    Launchctl {
        /// The command line that was run.
        command: String,
        /// launchctl's exit status (None when it was killed by a signal).
        status: Option<i32>,
        /// launchctl's own output (stderr, then stdout), trimmed.
        output: String,
        /// What it most likely means and how to recover.
        hint: String,
    },
    /// The service's log dir could not be made, or is not safe to log in
    /// (not yours, or writable by others), checked as `ensure` checks it.
    /// Its [`LaunchdErrorKind`] is `Io`; converted, it keeps the kind the
    /// check gave it (`PermissionDenied`, `InvalidConfig`, `Io`).
    #[error("{0}")]
    LogDir(Error),
    /// `launchctl` could not be run at all.
    #[error(
        "could not run `{command}`: {source}; check that /bin/launchctl exists and is executable. \
         Ensure keeps starting the service on demand regardless"
    )]
    Spawn {
        /// The command line that was attempted.
        command: String,
        /// Why it could not start.
        #[source]
        source: io::Error,
    },
}

fn quote_output(output: &str) -> String {
    if output.is_empty() {
        "launchctl printed nothing".to_owned()
    } else {
        format!("launchctl said {output:?}")
    }
}

impl LaunchdError {
    /// This error with `note` (what a failed step left behind) after its hint. An error
    /// without a hint (`Spawn`, which names its own check) is returned as it is.
    pub(crate) fn with_note(self, note: &str) -> LaunchdError {
        match self {
            LaunchdError::Launchctl {
                command,
                status,
                output,
                hint,
            } => LaunchdError::Launchctl {
                command,
                status,
                output,
                hint: format!("{hint}. {note}"),
            },
            LaunchdError::Io {
                action,
                path,
                hint,
                source,
            } => LaunchdError::Io {
                action,
                path,
                hint: format!("{hint}. {note}"),
                source,
            },
            e => e,
        }
    }

    /// The kind of failure, for callers that act on it rather than print it.
    pub fn kind(&self) -> LaunchdErrorKind {
        match self {
            LaunchdError::InvalidSpec { .. } => LaunchdErrorKind::InvalidSpec,
            LaunchdError::Unsupported { .. } => LaunchdErrorKind::Unsupported,
            LaunchdError::Io { .. } | LaunchdError::LogDir(_) => LaunchdErrorKind::Io,
            LaunchdError::Launchctl { .. } | LaunchdError::Spawn { .. } => {
                LaunchdErrorKind::Launchctl
            }
        }
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        LaunchdError::InvalidSpec {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        hint: impl Into<String>,
        source: io::Error,
    ) -> Self {
        LaunchdError::Io {
            action,
            path: path.into(),
            hint: hint.into(),
            source,
        }
    }
}

/// The client's vocabulary for an agent failure, so `?` carries it there.
impl From<LaunchdError> for Error {
    fn from(e: LaunchdError) -> Error {
        // Already in the one vocabulary, with its own kind and fixes.
        if let LaunchdError::LogDir(error) = e {
            return error;
        }
        let kind = match e.kind() {
            LaunchdErrorKind::InvalidSpec => ErrorKind::InvalidConfig,
            LaunchdErrorKind::Unsupported => ErrorKind::Unsupported,
            // As `Error::io` says it: a refusal is the user's to fix.
            LaunchdErrorKind::Io
                if matches!(&e, LaunchdError::Io { source, .. }
                    if source.kind() == io::ErrorKind::PermissionDenied) =>
            {
                ErrorKind::PermissionDenied
            }
            LaunchdErrorKind::Io => ErrorKind::Io,
            LaunchdErrorKind::Launchctl => ErrorKind::LaunchctlFailed,
        };
        let error = Error::new(kind, e.to_string());
        match e.kind() {
            // The message offers both; front ends name them their way.
            LaunchdErrorKind::Unsupported => error
                .with_remedy(Remedy::Run(
                    match matches!(e, LaunchdError::Unsupported { socket: true, .. }) {
                        true => Operation::AgentPrintSystemdSocket,
                        false => Operation::AgentPrintSystemd,
                    },
                ))
                .with_remedy(Remedy::Run(Operation::Ensure)),
            _ => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused file operation is a permission problem in the one
    /// vocabulary, as `Error::io` says it; other I/O failures stay `Io`.
    #[test]
    fn a_refused_file_operation_is_permission_denied() {
        let refused = LaunchdError::io(
            "write",
            "/x",
            "fix it",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert_eq!(Error::from(refused).kind(), ErrorKind::PermissionDenied);
        let full = LaunchdError::io("write", "/x", "fix it", io::Error::other("disk full"));
        assert_eq!(Error::from(full).kind(), ErrorKind::Io);
    }
}
