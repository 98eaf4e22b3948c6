//! Leases and the shared connection.

use super::*;

impl ServiceManager {
    /// Take a lease for `pid`: the service stays up while that process
    /// lives. Starts the service if needed.
    pub async fn acquire(&self, pid: u32, label: &str) -> Result<Lease> {
        // Refused before anything is started: a lease follows a live process.
        // (Another user's, which we may not see, is the service's to refuse.)
        let gone =
            !crate::sys::pid_exists(pid) || crate::sys::process_info(pid).is_some_and(|p| p.zombie);
        if gone {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("no process {pid} exists; a lease must follow a live process"),
            ));
        }
        self.ensure().await?;
        let channel = self.channel().await?;
        let reply = ControlClient::new(channel)
            .acquire(control::AcquireRequest {
                pid,
                label: label.to_string(),
            })
            .await
            .map_err(|s| rpc_error("acquire a lease", &s))?;
        let lease = reply.into_inner().lease.ok_or_else(|| {
            Error::new(ErrorKind::Io, "the service granted a lease without details")
        })?;
        Ok(Lease {
            id: lease.id,
            pid: lease.pid,
            label: lease.label,
        })
    }

    /// A gRPC channel to the service, for calling its own services (spfs:
    /// `spfs_vfs.VfsService/Mount`, with [`crate::proto::vfs`]'s client):
    /// the connection the last `ensure` or `status` used, so `ensure` then a
    /// call costs no second connect; a new connection when there is none.
    /// Never starts anything. The channel reconnects by itself when the
    /// service is restarted.
    pub async fn channel(&self) -> Result<Channel> {
        let cached = self.channel.lock().expect("channel mutex").clone();
        match cached {
            Some(channel) => Ok(channel),
            None => rpc::channel(self.endpoint.clone(), None)
                .await
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Io,
                        format!(
                            "cannot connect to the service at {}: {e}; \
                             ensure it runs first (the ensure operation)",
                            self.endpoint
                        ),
                    )
                    .with_remedy(Remedy::Run(Operation::Ensure))
                }),
        }
    }

    /// Drop a lease; `false` when it was no longer held. Never starts anything.
    pub async fn release(&self, lease_id: u64) -> Result<bool> {
        let channel = match self.observe(false, false).await? {
            Observation::Serving(_, channel, _) => channel,
            _ => return Ok(false),
        };
        let reply = ControlClient::new(channel)
            .release(control::ReleaseRequest { lease_id })
            .await
            .map_err(|s| rpc_error("release a lease", &s))?;
        Ok(reply.into_inner().released)
    }
}
