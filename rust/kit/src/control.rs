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
                    // Fell behind: the current state replaces what was
                    // missed, the shutdown too (else the stream would stay
                    // open through the drain, for nothing).
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let told = lifetime.watchers_told().map(str::to_owned);
                        StatusUpdate {
                            event: match told {
                                Some(_) => Event::ShuttingDown,
                                None => Event::Snapshot,
                            } as i32,
                            info: Some(lifetime.info()),
                            detail: told.unwrap_or_default(),
                        }
                    }
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
        // Shown by every client's status and written to the log: any user
        // who can connect gives it, so it is kept to one plain line.
        let label = spfs_autostart_protocol::shell::one_line(
            &label,
            spfs_autostart_protocol::shell::MAX_LABEL_CHARS,
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    /// A watcher that fell so far behind that it missed the update saying
    /// the service shuts down still has its stream end, with that update:
    /// left open, it would be a call the drain waits for.
    #[tokio::test]
    async fn a_watcher_that_missed_the_shutdown_update_has_its_stream_end() {
        let life = Lifetime::for_tests(Duration::from_secs(60));
        let control = ControlService::new(life.clone());
        let mut stream = control
            .watch(Request::new(WatchRequest {}))
            .await
            .unwrap()
            .into_inner();
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.event, Event::Snapshot as i32);
        life.request_shutdown("test");
        life.tell_watchers_shutting_down("the test ends it".into());
        // More updates than the broadcast keeps: the shutdown's is lost.
        for _ in 0..200 {
            life.touch();
        }
        let last = tokio::time::timeout(Duration::from_secs(10), async {
            let mut last = None;
            while let Some(update) = stream.next().await {
                last = Some(update.unwrap());
            }
            last
        })
        .await
        .expect("the stream ends")
        .expect("updates came");
        assert_eq!(last.event, Event::ShuttingDown as i32, "{last:?}");
        assert_eq!(last.detail, "the test ends it");
        assert!(last.info.is_some_and(|info| info.shutting_down));
    }
}
