//! `spfs_autostart_remedy` and `spfs_autostart_operation`: what fixes an
//! error, as data, so a C host can word the fix its own way (as the CLI
//! words its flags and the app its settings).
//!
//! The operation codes are derived from the core's list of operations by
//! name, as the result codes are from its kinds: an operation without a row
//! here does not compile.

use std::ffi::CString;

use spfs_autostart_core::{Operation, Remedy};

use super::c_string;

/// What kind of fix a remedy is. The values are stable: new kinds are only
/// ever added. An `int32_t` in C.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum spfs_autostart_remedy {
    /// No remedy at that index.
    None = 0,
    /// Change a config key (`spfs_autostart_error_remedy_key` names it, as
    /// the config file spells it, e.g. `ready_timeout_secs`).
    SetKey = 1,
    /// Give another config file (the path passed to `spfs_autostart_new`,
    /// or `SPFS_AUTOSTART_CONFIG`).
    ConfigFile = 2,
    /// Run an operation (`spfs_autostart_error_remedy_operation` names it).
    Run = 3,
}

/// An operation of the library a remedy asks for. The values are stable: new
/// operations are only ever added. An `int32_t` in C.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum spfs_autostart_operation {
    /// Not an operation (the remedy is not a `RUN`, or there is none).
    None = 0,
    /// `spfs_autostart_ensure`: start the service if needed.
    Ensure = 1,
    /// `spfs_autostart_stop`: stop the service.
    Stop = 2,
    /// `spfs_autostart_status`: report the service's state.
    Status = 3,
    /// The doctor (the CLI's `doctor`): check everything the service needs.
    Doctor = 4,
    /// Install the LaunchAgent (in the mode already chosen).
    AgentInstall = 5,
    /// Install the LaunchAgent always-on (it needs no Unix socket endpoint).
    AgentInstallAlways = 6,
    /// Remove the LaunchAgent.
    AgentUninstall = 7,
    /// Report whether the LaunchAgent is installed and loaded.
    AgentStatus = 8,
    /// Describe the service as a systemd user unit instead.
    AgentPrintSystemd = 9,
    /// Install the LaunchAgent socket-activated.
    AgentInstallSocket = 10,
    /// Describe the service as socket-activated systemd user units instead.
    AgentPrintSystemdSocket = 11,
}

/// Derives the code of each operation from the core's list: the variant of
/// the same name above.
macro_rules! code_of_operation {
    ($($(#[doc = $doc:tt])* $operation:ident,)*) => {
        impl From<Operation> for spfs_autostart_operation {
            fn from(operation: Operation) -> Self {
                match operation {
                    $(Operation::$operation => spfs_autostart_operation::$operation,)*
                    // `Operation` is non-exhaustive outside the core, but
                    // every operation of the core this was built with is above.
                    _ => spfs_autostart_operation::None,
                }
            }
        }
    };
}

spfs_autostart_core::for_each_operation!(code_of_operation);

/// One remedy of an error, as C reads it.
#[derive(Debug)]
pub(super) struct CRemedy {
    pub(super) kind: spfs_autostart_remedy,
    pub(super) key: Option<CString>,
    pub(super) operation: spfs_autostart_operation,
}

impl From<Remedy> for CRemedy {
    fn from(remedy: Remedy) -> Self {
        // Exhaustive: a new kind of remedy must get its C form here.
        let (kind, key, operation) = match remedy {
            Remedy::SetKey(key) => (
                spfs_autostart_remedy::SetKey,
                Some(c_string(key.to_string())),
                spfs_autostart_operation::None,
            ),
            Remedy::ConfigFile => (
                spfs_autostart_remedy::ConfigFile,
                None,
                spfs_autostart_operation::None,
            ),
            Remedy::Run(operation) => (spfs_autostart_remedy::Run, None, operation.into()),
        };
        CRemedy {
            kind,
            key,
            operation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_its_own_code() {
        let mut seen = std::collections::HashSet::new();
        for &operation in Operation::ALL {
            let code = spfs_autostart_operation::from(operation);
            assert_ne!(code, spfs_autostart_operation::None, "{operation}");
            assert!(seen.insert(code as i32), "{operation} shares its code");
        }
    }

    #[test]
    fn a_remedy_keeps_its_key_or_its_operation() {
        let key = CRemedy::from(Remedy::SetKey("ready_timeout_secs"));
        assert_eq!(key.kind, spfs_autostart_remedy::SetKey);
        assert_eq!(key.key.unwrap().to_str(), Ok("ready_timeout_secs"));
        let run = CRemedy::from(Remedy::Run(Operation::Stop));
        assert_eq!(
            (run.kind, run.operation),
            (spfs_autostart_remedy::Run, spfs_autostart_operation::Stop)
        );
        assert!(run.key.is_none());
        let file = CRemedy::from(Remedy::ConfigFile);
        assert_eq!(
            (file.kind, file.operation),
            (
                spfs_autostart_remedy::ConfigFile,
                spfs_autostart_operation::None
            )
        );
    }
}
