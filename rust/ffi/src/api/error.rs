//! The bindings' one error: the core's [`ErrorKind`] carried as data, with
//! the message and, for startup failures, the service's log.

use spfs_autostart_core::ErrorKind;

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

/// A failure of the library: one shape whatever its kind, so callers match
/// on `kind` (data) and a new kind adds no variant here.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ServiceError {
    /// Every failure: its kind, the full message and, for startup failures,
    /// the service's log file and its last lines.
    #[error("{message}")]
    Failed {
        /// What kind of failure it is.
        kind: ErrorKind,
        /// What happened, to what, and what to do next.
        message: String,
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
    fn a_core_error_keeps_its_kind_message_and_log() {
        let core = Error::new(ErrorKind::ExitedDuringStartup, "it died").with_log(LogExcerpt {
            path: "/tmp/x.log".into(),
            tail: vec!["last words".into()],
        });
        let ServiceError::Failed {
            kind,
            message,
            log_file,
            log_tail,
        } = ServiceError::from(core);
        assert_eq!(kind, ErrorKind::ExitedDuringStartup);
        assert_eq!(message, "it died");
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
