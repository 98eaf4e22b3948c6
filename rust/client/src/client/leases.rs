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
        let mut client = ControlClient::new(channel);
        let call = client.acquire(control::AcquireRequest {
            pid,
            label: label.to_string(),
        });
        let lease = self
            .lease_call("acquire a lease", call)
            .await?
            .lease
            .ok_or_else(|| {
                Error::new(ErrorKind::Io, "the service granted a lease without details")
            })?;
        Ok(Lease {
            id: lease.id,
            pid: lease.pid,
            label: crate::shell::one_line(&lease.label, crate::shell::MAX_LABEL_CHARS),
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
        let mut client = ControlClient::new(channel);
        let call = client.release(control::ReleaseRequest { lease_id });
        Ok(self.lease_call("release a lease", call).await?.released)
    }

    /// A lease call's answer, within `ready_timeout`: a service that hangs
    /// after answering `ensure` (a stuck mount) must not hold its caller
    /// forever.
    async fn lease_call<T>(
        &self,
        what: &str,
        call: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.config.ready_timeout, call).await {
            Ok(reply) => reply
                .map(tonic::Response::into_inner)
                .map_err(|s| rpc_error(what, &s)),
            Err(_) => Err(Error::new(
                ErrorKind::Unresponsive,
                format!(
                    "cannot {what}: the service did not answer within {:.1}s \
                     (ready_timeout_secs); see whether it is stuck in its status and log",
                    self.config.ready_timeout.as_secs_f64()
                ),
            )
            .with_remedy(Remedy::Run(Operation::Status))),
        }
    }
}
