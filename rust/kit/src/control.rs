//! `spfs_autostart.v1.Control`, served by every kit service.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::lifetime::Lifetime;
use spfs_autostart_protocol::proto::control::{
    AcquireRequest, AcquireResponse, InfoRequest, InfoResponse, ReleaseRequest, ReleaseResponse,
    ShutdownRequest, ShutdownResponse, StatusUpdate, WatchRequest, control_server::Control,
    status_update::Event,
};

/// The Control service over a [`Lifetime`].
#[derive(Debug)]
pub(crate) struct ControlService {
    lifetime: Arc<Lifetime>,
}

impl ControlService {
    /// Serve `lifetime`.
    pub(crate) fn new(lifetime: Arc<Lifetime>) -> Self {
        ControlService { lifetime }
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<StatusUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl Control for ControlService {
    async fn info(&self, request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        if request.get_ref().touch {
            self.lifetime.touch();
        }
        Ok(Response::new(self.lifetime.info()))
    }

    async fn shutdown(
        &self,
        request: Request<ShutdownRequest>,
    ) -> Result<Response<ShutdownResponse>, Status> {
        let request = request.into_inner();
        let drain = (request.drain_ms > 0).then(|| Duration::from_millis(request.drain_ms));
        let reason = match request.reason {
            r if r.is_empty() => "Shutdown requested".to_string(),
            r => r,
        };
        if request.unless_leased {
            if let Err(leases) = self.lifetime.request_shutdown_unless_leased(reason, drain) {
                return Err(Status::failed_precondition(format!(
                    "{leases} lease(s) held: not shutting down"
                )));
            }
        } else {
            if let Some(drain) = drain {
                self.lifetime.limit_drain(drain);
            }
            self.lifetime.request_shutdown(reason);
        }
        Ok(Response::new(ShutdownResponse {}))
    }

    type WatchStream = UpdateStream;

    async fn watch(
        &self,
        _request: Request<WatchRequest>,
    ) -> Result<Response<UpdateStream>, Status> {
        let mut updates = self.lifetime.subscribe();
        let lifetime = self.lifetime.clone();
        let snapshot = StatusUpdate {
            event: Event::Snapshot as i32,
            info: Some(lifetime.info()),
            detail: String::new(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            if tx.send(Ok(snapshot)).await.is_err() {
                return;
            }
            if lifetime.is_shutting_down() {
                return;
            }
            loop {
                let update = match updates.recv().await {
                    Ok(update) => update,
                    // Fell behind: the current state replaces what was missed.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => StatusUpdate {
                        event: Event::Snapshot as i32,
                        info: Some(lifetime.info()),
                        detail: String::new(),
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let last = update.event == Event::ShuttingDown as i32;
                if tx.send(Ok(update)).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn acquire(
        &self,
        request: Request<AcquireRequest>,
    ) -> Result<Response<AcquireResponse>, Status> {
        let AcquireRequest { pid, label } = request.into_inner();
        let lease = self.lifetime.acquire(pid, label)?;
        Ok(Response::new(AcquireResponse { lease: Some(lease) }))
    }

    async fn release(
        &self,
        request: Request<ReleaseRequest>,
    ) -> Result<Response<ReleaseResponse>, Status> {
        let released = self.lifetime.release(request.into_inner().lease_id);
        Ok(Response::new(ReleaseResponse { released }))
    }
}
