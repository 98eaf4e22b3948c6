//! The contract between spfs-autostart's clients and the services they
//! manage, and nothing else: the wire protocol ([`proto`]), the files in the
//! state dir and their checks ([`paths`], [`record`], [`lock`]), the
//! environment a spawner hands its service ([`env`](mod@env)) and the line
//! it answers on the readiness pipe ([`readiness`]), endpoints
//! ([`endpoint`]), the error vocabulary both sides speak ([`error`], with
//! the fixes an error carries as data, [`remedy`]), paths quoted for a
//! command in a message ([`shell`]) and the platform calls both sides need
//! ([`sys`]).
//!
//! The client (`spfs-autostart`) and the service kit
//! (`spfs-autostart-kit`) each depend on this crate and not on each other,
//! so a service compiles none of the client and a client none of the kit.

#![deny(missing_docs)]
#![warn(unreachable_pub)]

pub mod endpoint;
pub mod env;
pub mod error;
pub mod lock;
pub mod paths;
pub mod proto;
pub mod quick_info;
pub mod readiness;
pub mod record;
pub mod remedy;
pub mod shell;
pub mod sys;

pub use endpoint::{Endpoint, ResolvedEndpoint, Stream};
pub use error::{Error, ErrorKind, LogExcerpt, Result};
pub use paths::Paths;
pub use remedy::{Operation, Remedy};

/// The name of the socket in a socket-activated launchd job: the agent
/// writes it into the plist's `Sockets` and the kit asks launchd for it.
pub const LAUNCHD_SOCKET_NAME: &str = "spfs-autostart";

/// The tonic this crate is built with: [`proto`]'s clients and servers use
/// its types, so a user names them through here and never needs a matching
/// tonic of its own.
pub use tonic;
