//! spfs-autostart: keep one per-user background service available exactly
//! when it is needed, and explain it when it is not.
//!
//! The client side ([`ServiceManager`]) ensures the service runs (starting it
//! on demand, exactly once, even when many processes ask at the same time),
//! stops it, reports its status and reads its logs. The service side
//! ([`service`]) is the kit a managed service embeds: single-instance lock,
//! readiness, idle exit, leases, socket activation and the `Control` gRPC
//! surface. Both sides share the contract written down in DESIGN.md: the
//! files in the state dir ([`paths`]), the handshake ([`client`]) and the
//! wire protocol ([`proto`]). [`launchd`] describes the service to launchd
//! and systemd for those who want it always on or socket-activated.
//!
//! There is no FFI code here: the C ABI and the uniffi bindings live in
//! `spfs-autostart-ffi` and only convert and delegate.

#![deny(missing_docs)]

pub mod client;
pub mod config;
pub mod doctor;
pub mod error;
pub mod launchd;
pub mod lock;
pub mod logs;
pub mod mounts;
pub mod owner;
pub mod paths;
pub mod proto;
pub mod record;
pub mod remedy;
pub mod rpc;
pub mod service;
pub mod spawn;
pub mod status;
pub mod sys;
pub mod watch;

pub use client::ServiceManager;
pub use config::{Config, ConfigView, Endpoint, StopStep, VersionPolicy};
pub use error::{Error, ErrorKind, LogExcerpt, Result};
pub use logs::LogFollower;
pub use paths::{Paths, ResolvedEndpoint};
pub use remedy::{Operation, Remedy};
pub use status::{Lease, Mount, State, Status, StopMethod, StopOutcome};
/// The tonic this crate is built with: [`ServiceManager::channel`] returns
/// its `Channel` and [`proto`]'s clients return its `Status` errors, so a
/// caller names them through here and never needs a matching tonic itself.
pub use tonic;
pub use watch::StatusWatcher;
