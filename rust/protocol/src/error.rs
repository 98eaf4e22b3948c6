//! The one error type of the core.
//!
//! Every failure carries a [`ErrorKind`] the caller can act on (the FFI and
//! the CLI map kinds, never messages) and a message that says what happened,
//! to what, and what to do next. Startup failures also carry the service's log
//! file and its last lines, because the reason a service died is almost
//! always in its own log, not in ours.

use std::fmt;
use std::path::{Path, PathBuf};

/// Calls the macro named `$then` with every error kind, in order: its doc
/// comment and its name, each followed by a comma.
///
/// This is the one list of kinds. [`ErrorKind`] is declared from it, and the
/// FFI crate declares the uniffi enum and derives the C result codes from it,
/// so a kind added here reaches every binding, and a binding that has no
/// place for it (a C code) fails to compile instead of falling back quietly.
#[doc(hidden)]
#[macro_export]
macro_rules! for_each_error_kind {
    ($then:ident) => {
        $then! {
            /// The service program was not found where we looked.
            BinaryNotFound,
            /// The service program was found but could not be started.
            SpawnFailed,
            /// The service exited before it became ready.
            ExitedDuringStartup,
            /// The service did not become ready before the deadline; it was killed.
            ReadyTimeout,
            /// A service is alive (it holds the instance lock) but does not answer.
            Unresponsive,
            /// The endpoint is taken by something that is not our service.
            EndpointConflict,
            /// A file or directory has an owner or mode we must not use.
            PermissionDenied,
            /// The running service has another version than the configured one.
            VersionMismatch,
            /// The configuration is malformed or names something unusable.
            InvalidConfig,
            /// The operation does not exist on this system.
            Unsupported,
            /// Any other operating-system error.
            Io,
            /// A bug in spfs-autostart: a front end caught a panic, or a host
            /// callback failed unexpectedly. The message says where.
            Internal,
            /// `launchctl` (the LaunchAgent's service manager) refused, timed out or
            /// could not be run.
            LaunchctlFailed,
            /// A call's argument names nothing that can be used: a lease for a
            /// process that does not exist, a request the service refused as
            /// given.
            InvalidArgument,
        }
    };
}

/// Declares [`ErrorKind`] from the list in [`for_each_error_kind`].
macro_rules! declare_error_kind {
    ($($(#[doc = $doc:tt])* $kind:ident,)*) => {
        /// What kind of failure happened; stable, so callers can match on it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $($(#[doc = $doc])* $kind,)*
        }

        impl ErrorKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind),*];

            /// The kind's name as written in the design and shown to users.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => stringify!($kind),)*
                }
            }
        }
    };
}

for_each_error_kind!(declare_error_kind);

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The service's log at the time of a failure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogExcerpt {
    /// The log file the service writes.
    pub path: PathBuf,
    /// Its last lines, oldest first.
    pub tail: Vec<String>,
}

/// A failure of the core, with its kind, a full message and, for startup
/// failures, the service's log excerpt.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    log: Option<LogExcerpt>,
    source: Option<std::io::Error>,
    /// What to do about it, as data, for front ends that add their own hint.
    remedies: Vec<crate::remedy::Remedy>,
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message that names the thing and the fix.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            log: None,
            source: None,
            remedies: Vec::new(),
        }
    }

    /// An `Io` error about `path`, with the OS error kept as the source.
    pub fn io(what: impl fmt::Display, path: &Path, source: std::io::Error) -> Self {
        let kind = if source.kind() == std::io::ErrorKind::PermissionDenied {
            ErrorKind::PermissionDenied
        } else {
            ErrorKind::Io
        };
        // The fixes the system's own words leave out.
        let fix = match source.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                "; free space on that file system (or choose a dir on another one)"
            }
            std::io::ErrorKind::ReadOnlyFilesystem => {
                "; that file system is read-only: choose a dir on a writable one"
            }
            // A file of ours (a lock, the record, the log) where something
            // else stands: ours to replace, not the user's to puzzle over.
            std::io::ErrorKind::IsADirectory => {
                "; a directory stands where that file belongs: remove it"
            }
            _ => "",
        };
        Error {
            kind,
            message: format!("{what} {}: {source}{fix}", path.display()),
            log: None,
            source: Some(source),
            remedies: Vec::new(),
        }
    }

    /// Append what to do about it to the message.
    pub fn with_hint(mut self, hint: &str) -> Self {
        self.message.push_str("; ");
        self.message.push_str(hint);
        self
    }

    /// Attach the service's log excerpt.
    pub fn with_log(mut self, log: LogExcerpt) -> Self {
        self.log = Some(log);
        self
    }

    /// Say, as data, what fixes it: the message already says so in terms
    /// of config keys and operations; a front end may add its own way.
    pub fn with_remedy(mut self, remedy: crate::remedy::Remedy) -> Self {
        self.remedies.push(remedy);
        self
    }

    /// The fixes the message names, in its order.
    pub fn remedies(&self) -> &[crate::remedy::Remedy] {
        &self.remedies
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message alone, without the log excerpt.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The service's log file and last lines, when the failure has one.
    pub fn log(&self) -> Option<&LogExcerpt> {
        self.log.as_ref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_or_read_only_file_system_or_a_directory_in_the_way_says_what_to_do() {
        for (errno, fix) in [
            (libc::ENOSPC, "free space on that file system"),
            (libc::EDQUOT, "free space on that file system"),
            (libc::EROFS, "read-only"),
            (
                libc::EISDIR,
                "a directory stands where that file belongs: remove it",
            ),
        ] {
            let err = Error::io(
                "cannot open lock file",
                Path::new("/state/spawn.lock"),
                std::io::Error::from_raw_os_error(errno),
            );
            assert_eq!(err.kind(), ErrorKind::Io);
            assert!(err.to_string().contains("/state/spawn.lock"), "{err}");
            assert!(err.to_string().contains(fix), "{errno}: {err}");
        }
    }
}
