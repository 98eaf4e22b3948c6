//! Leases: each follows one process of the service's own user and ends
//! with it, so the service can go away once every runtime using it is gone.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use spfs_autostart_protocol::proto::control::{Lease, status_update::Event};
use spfs_autostart_protocol::record::unix_ms;
use spfs_autostart_protocol::sys::{self, Instance, ProcessHandle};

use super::Lifetime;

/// Why a lease was refused.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// There is no process with that pid.
    #[error("no process {0} exists; a lease must follow a live process")]
    NoSuchProcess(u32),
    /// The process belongs to another user.
    #[error("process {0} belongs to another user; leases are per user")]
    OtherUser(u32),
    /// The pid is the service's own: a lease on it would outlive every
    /// client and keep the service up for good.
    #[error(
        "pid {0} is the service itself; a lease follows a client process (its own pid), and \
         for a service that never exits when idle set idle_timeout_secs to 0"
    )]
    OwnProcess(u32),
    /// The id is a thread's, not a process's: the lease would end with
    /// the thread (or, for one of the service's own, never).
    #[error("{0} is the id of a thread, not of a process; a lease follows a process (its pid)")]
    NotAProcess(u32),
    /// The service is shutting down.
    #[error("the service is shutting down")]
    ShuttingDown,
    /// The service has no file descriptor left to follow the process with
    /// (each lease holds one while its holder lives).
    #[error(
        "cannot follow process {0}: the service has no file descriptors left (too many open \
         files); release leases, or raise the service's limit (ulimit -n) where it is started"
    )]
    NoDescriptors(u32),
}

/// The gRPC status a refused lease answers with, as `Control/Acquire` does:
/// a service that takes leases in its own calls answers the same way.
impl From<LeaseError> for tonic::Status {
    fn from(e: LeaseError) -> tonic::Status {
        match e {
            LeaseError::NoSuchProcess(_) => tonic::Status::not_found(e.to_string()),
            LeaseError::OtherUser(_) => tonic::Status::permission_denied(e.to_string()),
            LeaseError::OwnProcess(_) | LeaseError::NotAProcess(_) => {
                tonic::Status::invalid_argument(e.to_string())
            }
            LeaseError::ShuttingDown => tonic::Status::unavailable(e.to_string()),
            LeaseError::NoDescriptors(..) => tonic::Status::resource_exhausted(e.to_string()),
        }
    }
}

impl Lifetime {
    /// Take a lease that lasts while process `pid` lives.
    pub(crate) fn acquire(self: &Arc<Self>, pid: u32, label: String) -> Result<Lease, LeaseError> {
        if self.shutdown.borrow().is_some() {
            return Err(LeaseError::ShuttingDown);
        }
        if pid == std::process::id() {
            return Err(LeaseError::OwnProcess(pid));
        }
        let holder = lease_holder(pid)?;
        // Opened now, so that a lease is only ever granted while it can be
        // followed: a handle that cannot be had is not an exit.
        // (It fails for a live holder when the last descriptor went to the
        // pidfd and none was left to check it with.)
        let Some(handle) = ProcessHandle::open(holder) else {
            return Err(
                if sys::out_of_descriptors().is_some() || holder.is_alive() {
                    LeaseError::NoDescriptors(pid)
                } else {
                    LeaseError::NoSuchProcess(pid)
                },
            );
        };
        let lease = {
            let mut inner = self.lock();
            // Again under the lock, which the idle timer decides under.
            if self.is_shutting_down() {
                return Err(LeaseError::ShuttingDown);
            }
            let id = inner.next_lease;
            inner.next_lease += 1;
            let lease = Lease {
                id,
                pid,
                label,
                acquired_at_unix_ms: unix_ms(SystemTime::now()),
            };
            inner.leases.insert(id, lease.clone());
            lease
        };
        tracing::info!("lease {} taken for pid {} ({})", lease.id, pid, lease.label);
        self.changed(
            Event::LeasesChanged,
            format!("lease {} taken for pid {pid}", lease.id),
        );
        let this = self.clone();
        let id = lease.id;
        let follower = self
            .runtime
            .spawn(async move {
                // The very process checked above: if its pid is reused after it
                // exits, the lease still ends with it.
                handle.exited().await;
                this.remove(id, &format!("dropped: process {pid} exited"));
            })
            .abort_handle();
        // Kept only while the lease is: a holder that exited at once has
        // already dropped it.
        let mut inner = self.lock();
        if inner.leases.contains_key(&id) {
            inner.followers.insert(id, follower);
        }
        drop(inner);
        Ok(lease)
    }

    /// Drop a lease, as its holder asked; `false` when it was not held.
    pub(crate) fn release(&self, id: u64) -> bool {
        self.remove(id, "released")
    }

    /// Drop a lease, saying `why` in the log and to watchers; `false` when
    /// it was not held.
    fn remove(&self, id: u64, why: &str) -> bool {
        let (removed, follower) = {
            let mut inner = self.lock();
            let removed = inner.leases.remove(&id).is_some();
            if removed && inner.leases.is_empty() {
                inner.idle_since = Instant::now();
            }
            (removed, inner.followers.remove(&id))
        };
        // Its holder need not be followed any more, nor its descriptor kept.
        if let Some(follower) = follower {
            follower.abort();
        }
        if removed {
            tracing::info!("lease {id} {why}");
            self.changed(Event::LeasesChanged, format!("lease {id} {why}"));
        }
        removed
    }

    /// Drop every lease of `pid`; `true` when there was one.
    pub(crate) fn release_pid(&self, pid: u32) -> bool {
        let ids: Vec<u64> = self
            .lock()
            .leases
            .values()
            .filter(|l| l.pid == pid)
            .map(|l| l.id)
            .collect();
        // Release every one: no short-circuit.
        let released = ids.into_iter().filter(|&id| self.release(id)).count();
        released > 0
    }

    /// The leases held now.
    pub(crate) fn leases(&self) -> Vec<Lease> {
        self.lock().leases.values().cloned().collect()
    }
}

/// The live process a lease for `pid` follows: one of our own user's.
/// (Root may signal anyone; leases still follow only our own user.)
fn lease_holder(pid: u32) -> Result<Instance, LeaseError> {
    let Some(holder) = Instance::of(pid) else {
        // A process we may not even look at (macOS hides other users'
        // from us) is another user's; a zombie of ours, or nothing, is gone.
        if sys::out_of_descriptors().is_some() {
            return Err(LeaseError::NoDescriptors(pid));
        }
        let hidden = sys::process_info(pid).is_none() && sys::pid_exists(pid);
        return Err(if hidden {
            LeaseError::OtherUser(pid)
        } else {
            LeaseError::NoSuchProcess(pid)
        });
    };
    if !sys::is_process_id(pid) {
        return Err(LeaseError::NotAProcess(pid));
    }
    match holder.uid() {
        Some(uid) if uid == sys::my_uid() => Ok(holder),
        Some(_) => Err(LeaseError::OtherUser(pid)),
        // It exited between the two looks.
        None => Err(LeaseError::NoSuchProcess(pid)),
    }
}
