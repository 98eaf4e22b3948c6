//! `spfs_autostart_result`: the one table of C result codes.
//!
//! Each error kind of the core has the code of the same name here; the
//! conversion is derived from the core's list of kinds by name, so a kind
//! without a row in this table does not compile. The codes of the C
//! boundary itself (`NULL_PARAMETER`, `INVALID_UTF8`, `PANIC`) start at 100.

use spfs_autostart_core::ErrorKind;

/// The result of a fallible call. The values are stable: new codes are only
/// ever added. An `int32_t` in C.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum spfs_autostart_result {
    /// Success; the outputs were written.
    Ok = 0,
    /// The service program was not found where the library looked (the
    /// message lists the places).
    BinaryNotFound = 1,
    /// The program was found but could not be started.
    SpawnFailed = 2,
    /// The service exited before it became ready (see the log tail).
    ExitedDuringStartup = 3,
    /// The service did not become ready in time; it was killed.
    ReadyTimeout = 4,
    /// A service is alive but does not answer.
    Unresponsive = 5,
    /// The endpoint is taken by something that is not our service.
    EndpointConflict = 6,
    /// A file or directory has an owner or mode we must not use.
    PermissionDenied = 7,
    /// The running service has another version than the configured one.
    VersionMismatch = 8,
    /// The configuration is malformed or names something unusable, or the
    /// config file cannot be read.
    InvalidConfig = 9,
    /// The operation does not exist on this system.
    Unsupported = 10,
    /// Any other operating-system error.
    Io = 11,
    /// A bug in the library (the message says where).
    Internal = 12,
    /// `launchctl` refused, timed out or could not be run.
    LaunchctlFailed = 13,
    /// A call's argument names nothing that can be used (a lease for a
    /// process that does not exist).
    InvalidArgument = 14,
    /// A pointer parameter that must not be NULL was NULL.
    NullParameter = 100,
    /// A string parameter was not valid UTF-8.
    InvalidUtf8 = 101,
    /// The library panicked (a bug); the call had no effect on the outputs.
    Panic = 102,
}

/// Derives the code of each kind from the core's list: the variant of the
/// same name above.
macro_rules! code_of_kind {
    ($($(#[doc = $doc:tt])* $kind:ident,)*) => {
        impl From<ErrorKind> for spfs_autostart_result {
            fn from(kind: ErrorKind) -> Self {
                match kind {
                    $(ErrorKind::$kind => spfs_autostart_result::$kind,)*
                    // `ErrorKind` is non-exhaustive outside the core, but
                    // every kind of the core this was built with is above.
                    _ => spfs_autostart_result::Internal,
                }
            }
        }
    };
}

spfs_autostart_core::for_each_error_kind!(code_of_kind);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_failure_code_below_the_boundary_codes() {
        let mut seen = std::collections::HashSet::new();
        for &kind in ErrorKind::ALL {
            let code = spfs_autostart_result::from(kind) as i32;
            assert!((1..100).contains(&code), "{kind}: code {code}");
            assert!(seen.insert(code), "{kind}: code {code} is taken twice");
        }
    }

    /// The header is an ABI: a code, once given, keeps its value.
    #[test]
    fn existing_kinds_keep_their_codes() {
        let abi = [
            (ErrorKind::BinaryNotFound, 1),
            (ErrorKind::SpawnFailed, 2),
            (ErrorKind::ExitedDuringStartup, 3),
            (ErrorKind::ReadyTimeout, 4),
            (ErrorKind::Unresponsive, 5),
            (ErrorKind::EndpointConflict, 6),
            (ErrorKind::PermissionDenied, 7),
            (ErrorKind::VersionMismatch, 8),
            (ErrorKind::InvalidConfig, 9),
            (ErrorKind::Unsupported, 10),
            (ErrorKind::Io, 11),
            (ErrorKind::Internal, 12),
            (ErrorKind::LaunchctlFailed, 13),
            (ErrorKind::InvalidArgument, 14),
        ];
        for (kind, code) in abi {
            assert_eq!(spfs_autostart_result::from(kind) as i32, code, "{kind}");
        }
    }
}
