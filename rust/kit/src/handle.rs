//! What a service's own handlers hold: leases and shutdown.

use std::sync::Arc;
use std::time::Duration;

use crate::lifetime::{LeaseError, Lifetime};

/// A cheap handle to a running kit: leases and shutdown, for the service's
/// own gRPC handlers.
#[derive(Clone, Debug)]
pub struct KitHandle(pub(crate) Arc<Lifetime>);

/// A lease: the service stays up while its process lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Names the lease in `Control.Release`.
    pub id: u64,
    /// The process whose life the lease follows.
    pub pid: u32,
    /// What the lease is for, as the caller put it.
    pub label: String,
    /// When it was taken.
    pub acquired_at: std::time::SystemTime,
}

impl From<spfs_autostart_protocol::proto::control::Lease> for Lease {
    fn from(lease: spfs_autostart_protocol::proto::control::Lease) -> Lease {
        Lease {
            id: lease.id,
            pid: lease.pid,
            label: lease.label,
            acquired_at: std::time::UNIX_EPOCH + Duration::from_millis(lease.acquired_at_unix_ms),
        }
    }
}

impl KitHandle {
    /// Hold the service while `pid` lives. Callable on any thread (a FUSE
    /// callback's too): the lease follows its holder on a task of the
    /// runtime the kit started in.
    pub fn acquire(&self, pid: u32, label: String) -> Result<Lease, LeaseError> {
        self.0.acquire(pid, label).map(Lease::from)
    }

    /// Give back the lease `id` ([`Lease::id`]), as `Control.Release` does;
    /// `true` when it was held.
    pub fn release(&self, id: u64) -> bool {
        self.0.release(id)
    }

    /// Drop every lease of `pid`; `true` when there was one.
    pub fn release_pid(&self, pid: u32) -> bool {
        self.0.release_pid(pid)
    }

    /// The leases held now.
    pub fn leases(&self) -> Vec<Lease> {
        self.0.leases().into_iter().map(Lease::from).collect()
    }

    /// Shut the service down gracefully.
    pub fn shutdown(&self, reason: &str) {
        self.0.request_shutdown(reason)
    }

    /// Resolves with the reason once a shutdown was requested (SIGTERM or
    /// SIGINT, `Control.Shutdown`, the idle exit, [`Self::shutdown`]). A
    /// long set-up between `Kit::start` and `serve` (a mount) can select on
    /// it to give up early: `serve` would return at once anyway.
    pub async fn shutdown_requested(&self) -> String {
        self.0.shutdown_requested().await
    }

    /// Whether a shutdown was requested.
    pub fn is_shutting_down(&self) -> bool {
        self.0.is_shutting_down()
    }
}
