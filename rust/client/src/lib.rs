//! spfs-autostart, the client: keep one per-user background service
//! available exactly when it is needed, and explain it when it is not.
//!
//! [`ServiceManager`] ensures the service runs (starting it on demand,
//! exactly once, even when many processes ask at the same time), stops it,
//! reports its status, watches it and reads its logs; [`doctor`] explains
//! what is wrong. [`Config`] is what it manages, read from built-in
//! defaults, a TOML file and the environment.
//!
//! The other roles live in their own crates: `spfs-autostart-protocol` (the
//! contract with the service: wire protocol, state-dir files, locks,
//! environment names, the error vocabulary), `spfs-autostart-kit` (what a
//! service embeds) and `spfs-autostart-agent` (launchd and systemd;
//! [`agent_spec`] builds its input from a [`Config`]). There is no FFI code
//! here: the C ABI and the uniffi bindings live in `spfs-autostart-ffi` and
//! only convert and delegate.

#![deny(missing_docs)]
#![warn(unreachable_pub)]

pub mod agent_spec;
mod client;
pub mod config;
pub mod doctor;
mod launchd_job;
pub mod logs;
pub mod mountpoint;
mod mounts;
mod owner;
mod rpc;
mod spawn;
mod status;
mod stopping;
mod watch;

// The contract shared with the kit, named inside this crate as if it were
// ours (`crate::paths`, `crate::lock`, ...).
use spfs_autostart_protocol::{error, lock, paths, quick_info, record, remedy, shell, sys};

pub use client::{Activity, ServiceManager};
pub use config::{Config, ConfigView, Endpoint, StopStep, VersionPolicy};
pub use logs::LogFollower;
pub use spawn::finish_abandoned_starts;
pub use spfs_autostart_protocol::proto;
/// For a front end's `main`, before any thread exists.
pub use spfs_autostart_protocol::sys::{
    ignore_broken_pipe_signal, ignore_file_size_signal, open_closed_stdio,
};
pub use spfs_autostart_protocol::{
    Error, ErrorKind, LogExcerpt, Operation, Paths, Remedy, ResolvedEndpoint, Result,
};
// The one lists of error kinds and of operations, for the FFI: it derives
// its uniffi enums and its C result codes from them (hidden, as in the
// protocol crate).
#[doc(hidden)]
pub use spfs_autostart_protocol::{for_each_error_kind, for_each_operation};
pub use status::{IdleExit, Lease, Mount, State, Status, StopMethod, StopOutcome};
/// The tonic this crate is built with: [`ServiceManager::channel`] returns
/// its `Channel` and [`proto`]'s clients return its `Status` errors, so a
/// caller names them through here and never needs a matching tonic itself.
pub use tonic;
pub use watch::StatusWatcher;
