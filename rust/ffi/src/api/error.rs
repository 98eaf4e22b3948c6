//! The bindings' error: one variant per kind of the core, each with the
//! message and, for startup failures, the service's log.

/// A failure, by kind. Every variant carries the full message, and for
/// startup failures the service's log file and its last lines.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ServiceError {
    /// The service program was not found where we looked.
    #[error("{message}")]
    BinaryNotFound {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The program was found but could not be started.
    #[error("{message}")]
    SpawnFailed {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The service exited before it became ready.
    #[error("{message}")]
    ExitedDuringStartup {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The service did not become ready in time; it was killed.
    #[error("{message}")]
    ReadyTimeout {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// A service is alive but does not answer.
    #[error("{message}")]
    Unresponsive {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The endpoint is taken by something that is not our service.
    #[error("{message}")]
    EndpointConflict {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// A file or directory has an owner or mode we must not use.
    #[error("{message}")]
    PermissionDenied {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The running service has another version than the configured one.
    #[error("{message}")]
    VersionMismatch {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The configuration is malformed or names something unusable.
    #[error("{message}")]
    InvalidConfig {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// The operation does not exist on this system.
    #[error("{message}")]
    Unsupported {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// Any other operating-system error.
    #[error("{message}")]
    Io {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// `launchctl` refused, timed out or could not be run.
    #[error("{message}")]
    LaunchctlFailed {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
    /// A bug: a panic was caught, or the core reported a kind this binding
    /// does not know yet.
    #[error("{message}")]
    Internal {
        /// What happened and what to do.
        message: String,
        /// The service's log file, when relevant.
        log_file: Option<String>,
        /// Its last lines, oldest first.
        log_tail: Vec<String>,
    },
}

impl ServiceError {
    /// An `Internal` error with `message` and no log.
    pub(crate) fn internal(message: String) -> Self {
        ServiceError::Internal {
            message,
            log_file: None,
            log_tail: Vec::new(),
        }
    }
}

/// The one mapping of core errors to the public enum.
impl From<spfs_autostart_core::Error> for ServiceError {
    fn from(e: spfs_autostart_core::Error) -> Self {
        use spfs_autostart_core::ErrorKind as K;
        let message = e.message().to_string();
        let log_file = e.log().map(|l| l.path.to_string_lossy().into_owned());
        let log_tail = e.log().map(|l| l.tail.clone()).unwrap_or_default();
        macro_rules! variant {
            ($v:ident) => {
                ServiceError::$v {
                    message,
                    log_file,
                    log_tail,
                }
            };
        }
        match e.kind() {
            K::BinaryNotFound => variant!(BinaryNotFound),
            K::SpawnFailed => variant!(SpawnFailed),
            K::ExitedDuringStartup => variant!(ExitedDuringStartup),
            K::ReadyTimeout => variant!(ReadyTimeout),
            K::Unresponsive => variant!(Unresponsive),
            K::EndpointConflict => variant!(EndpointConflict),
            K::PermissionDenied => variant!(PermissionDenied),
            K::VersionMismatch => variant!(VersionMismatch),
            K::InvalidConfig => variant!(InvalidConfig),
            K::Unsupported => variant!(Unsupported),
            K::Io => variant!(Io),
            K::LaunchctlFailed => variant!(LaunchctlFailed),
            _ => variant!(Internal),
        }
    }
}

/// A callback failed in the host: the host's own error, or an unexpected
/// one (a Python exception, a Swift error) that the bindings report as this.
impl From<uniffi::UnexpectedUniFFICallbackError> for ServiceError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ServiceError::internal(format!("the observer failed: {}", e.reason))
    }
}
