//! The bindings' one error: the core's [`ErrorKind`] carried as data, with
//! the message, the fixes ([`Remedy`]) and, for startup failures, the
//! service's log.

use spfs_autostart_core::{ErrorKind, Operation};

/// Exports the core's `ErrorKind` to uniffi from the core's own list of
/// kinds, so the bindings get every kind and no second list is kept here.
macro_rules! export_error_kind {
    ($($(#[doc = $doc:tt])* $kind:ident,)*) => {
        /// What kind of failure happened; stable, so callers can match on it
        /// (and choose their own words for it).
        #[uniffi::remote(Enum)]
        #[non_exhaustive]
        enum ErrorKind {
            $($(#[doc = $doc])* $kind,)*
        }
    };
}

spfs_autostart_core::for_each_error_kind!(export_error_kind);

/// Exports the core's `Operation` to uniffi from the core's own list, as
/// for `ErrorKind`.
macro_rules! export_operation {
    ($($(#[doc = $doc:tt])* $operation:ident,)*) => {
        /// An operation of the library that a front end offers under its own
        /// name (a menu item, a command).
        #[uniffi::remote(Enum)]
        #[non_exhaustive]
        enum Operation {
            $($(#[doc = $doc])* $operation,)*
        }
    };
}

spfs_autostart_core::for_each_operation!(export_operation);

/// One way to fix a failure, as data: the front end says it in its own words
/// (the app its menu and settings, a script whatever it offers).
///
/// The core's `Remedy` names a key as `&'static str`, which uniffi cannot
/// carry; this mirror holds it as a `String` and is otherwise the same. The
/// conversion matches the core's enum exhaustively, so a new remedy there
/// fails to compile here until it has its place.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Remedy {
    /// Change this config key (as named in the config file, e.g.
    /// `ready_timeout_secs`).
    SetKey {
        /// The key.
        key: String,
    },
    /// Give another config file (or fix the one read).
    ConfigFile,
    /// Run this operation.
    Run {
        /// The operation.
        operation: Operation,
    },
}

impl From<spfs_autostart_core::Remedy> for Remedy {
    fn from(remedy: spfs_autostart_core::Remedy) -> Self {
        match remedy {
            spfs_autostart_core::Remedy::SetKey(key) => Remedy::SetKey {
                key: key.to_string(),
            },
            spfs_autostart_core::Remedy::ConfigFile => Remedy::ConfigFile,
            spfs_autostart_core::Remedy::Run(operation) => Remedy::Run { operation },
        }
    }
}

/// A failure of the library: one shape whatever its kind, so callers match
/// on `kind` (data) and a new kind adds no variant here.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ServiceError {
    /// Every failure: its kind, the full message, its remedies and, for
    /// startup failures,
    /// the service's log file and its last lines.
    #[error("{message}")]
    Failed {
        /// What kind of failure it is.
        kind: ErrorKind,
        /// What happened, to what, and what to do next.
        message: String,
        /// What to do about it, as data, in the order the core gives them
        /// (often empty); the caller words each its own way.
        remedies: Vec<Remedy>,
        /// The service's log file, when the failure has one.
        log_file: Option<String>,
        /// Its last lines, oldest first (empty when there is no log).
        log_tail: Vec<String>,
    },
}

impl ServiceError {
    /// An `Internal` failure (a bug) with `message` and no log.
    pub(crate) fn internal(message: String) -> Self {
        spfs_autostart_core::Error::new(ErrorKind::Internal, message).into()
    }
}

/// The one conversion of core errors: the kind passes through as it is.
impl From<spfs_autostart_core::Error> for ServiceError {
    fn from(e: spfs_autostart_core::Error) -> Self {
        ServiceError::Failed {
            kind: e.kind(),
            message: e.message().to_string(),
            remedies: e.remedies().iter().copied().map(Remedy::from).collect(),
            log_file: e.log().map(|l| l.path.to_string_lossy().into_owned()),
            log_tail: e.log().map(|l| l.tail.clone()).unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use spfs_autostart_core::{Error, LogExcerpt};

    #[test]
    fn a_core_error_keeps_its_remedies_in_order() {
        let core = Error::new(ErrorKind::InvalidConfig, "bad")
            .with_remedy(spfs_autostart_core::Remedy::SetKey("ready_timeout_secs"))
            .with_remedy(spfs_autostart_core::Remedy::ConfigFile)
            .with_remedy(spfs_autostart_core::Remedy::Run(Operation::Stop));
        let ServiceError::Failed { remedies, .. } = ServiceError::from(core);
        assert_eq!(
            remedies,
            [
                Remedy::SetKey {
                    key: "ready_timeout_secs".into()
                },
                Remedy::ConfigFile,
                Remedy::Run {
                    operation: Operation::Stop
                },
            ]
        );
    }

    #[test]
    fn every_operation_passes_through_as_itself() {
        for &operation in Operation::ALL {
            let remedy = Remedy::from(spfs_autostart_core::Remedy::Run(operation));
            assert_eq!(remedy, Remedy::Run { operation });
        }
    }

    #[test]
    fn a_core_error_keeps_its_kind_message_and_log() {
        let core = Error::new(ErrorKind::ExitedDuringStartup, "it died").with_log(LogExcerpt {
            path: "/tmp/x.log".into(),
            tail: vec!["last words".into()],
        });
        let ServiceError::Failed {
            kind,
            message,
            remedies,
            log_file,
            log_tail,
        } = ServiceError::from(core);
        assert_eq!(kind, ErrorKind::ExitedDuringStartup);
        assert_eq!(message, "it died");
        assert!(remedies.is_empty(), "{remedies:?}");
        assert_eq!(log_file.as_deref(), Some("/tmp/x.log"));
        assert_eq!(log_tail, ["last words"]);
    }

    #[test]
    fn a_failed_callback_is_internal() {
        let e = ServiceError::from(uniffi::UnexpectedUniFFICallbackError::new("boom"));
        let ServiceError::Failed { kind, message, .. } = &e;
        assert_eq!(*kind, ErrorKind::Internal);
        assert!(message.contains("boom"), "{message}");
        assert_eq!(e.to_string(), *message);
    }
}
