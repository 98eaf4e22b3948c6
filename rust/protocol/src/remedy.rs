//! What to do about an error, as data, beside the message.
//!
//! Messages of the core speak in config keys, environment variables and
//! library operations, because the same message reaches a CLI user, a Swift
//! app and a Python script. A front end that has its own way to do the fix
//! (the CLI its flags and commands, an app its settings) reads the
//! [`Remedy`] an error carries and adds that as its own hint.

use std::fmt;

/// One way to fix what an error reports.
///
/// Exhaustive on purpose: every front end (the CLI's hints, the bindings'
/// mirror of it) matches on it, and a new kind of remedy must fail to compile
/// there until each has its words, rather than be dropped quietly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Remedy {
    /// Change this config key (as named in the config file, e.g.
    /// `ready_timeout_secs`).
    SetKey(&'static str),
    /// Give another config file (the path passed to `Config::load`, or
    /// `SPFS_AUTOSTART_CONFIG`).
    ConfigFile,
    /// Run this operation.
    Run(Operation),
}

/// Calls the macro named `$then` with every [`Operation`], in order: its doc
/// comment and its name, each followed by a comma.
///
/// This is the one list of operations. [`Operation`] is declared from it, and
/// the FFI crate exports the same list to uniffi, so an operation added here
/// reaches the bindings, and the Swift app's exhaustive switch asks for its
/// words.
#[doc(hidden)]
#[macro_export]
macro_rules! for_each_operation {
    ($then:ident) => {
        $then! {
            /// `ServiceManager::ensure`: start the service if needed.
            Ensure,
            /// `ServiceManager::stop`: stop the service.
            Stop,
            /// `ServiceManager::status`: report the service's state.
            Status,
            /// `doctor::diagnose`: check everything the service needs.
            Doctor,
            /// Install the LaunchAgent (in the mode already chosen).
            AgentInstall,
            /// Install the LaunchAgent always-on, launchd starting the service at
            /// login (it needs no Unix socket endpoint).
            AgentInstallAlways,
            /// Remove the LaunchAgent.
            AgentUninstall,
            /// Report whether the LaunchAgent is installed and loaded.
            AgentStatus,
            /// Describe the service as a systemd user unit instead of a LaunchAgent.
            AgentPrintSystemd,
            /// Install the LaunchAgent socket-activated: launchd holds the Unix
            /// socket and starts the service on the first connection.
            AgentInstallSocket,
            /// Describe the service as systemd user units, socket-activated (a
            /// `.socket` unit beside the service), instead of a LaunchAgent.
            AgentPrintSystemdSocket,
        }
    };
}

/// Declares [`Operation`] from the list in [`for_each_operation`].
macro_rules! declare_operation {
    ($($(#[doc = $doc:tt])* $operation:ident,)*) => {
        /// An operation of the library that a front end offers under its own name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Operation {
            $($(#[doc = $doc])* $operation,)*
        }

        impl Operation {
            /// Every operation, in declaration order.
            pub const ALL: &'static [Operation] = &[$(Operation::$operation),*];
        }
    };
}

for_each_operation!(declare_operation);

impl Operation {
    /// The operation's name as the messages of the core write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Ensure => "ensure",
            Operation::Stop => "stop",
            Operation::Status => "status",
            Operation::Doctor => "doctor",
            Operation::AgentInstall => "agent install",
            Operation::AgentInstallAlways => "agent install (always-on)",
            Operation::AgentUninstall => "agent uninstall",
            Operation::AgentStatus => "agent status",
            Operation::AgentPrintSystemd => "agent print (systemd)",
            Operation::AgentInstallSocket => "agent install (socket-activated)",
            Operation::AgentPrintSystemdSocket => "agent print (systemd, socket-activated)",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
