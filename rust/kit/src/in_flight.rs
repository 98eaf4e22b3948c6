//! Counting the calls in flight, so a service never idles out under a caller.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::lifetime::Lifetime;

/// Counts calls in flight, except those that only observe the service
/// (`Info`, `Watch`, health), so watching never keeps a service alive.
#[derive(Clone, Debug)]
pub(crate) struct InFlightLayer(pub(crate) Arc<Lifetime>);

impl<S> tower::Layer<S> for InFlightLayer {
    type Service = InFlight<S>;

    fn layer(&self, inner: S) -> InFlight<S> {
        InFlight {
            inner,
            lifetime: self.0.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct InFlight<S> {
    inner: S,
    lifetime: Arc<Lifetime>,
}

/// Calls that only look. `VfsService/Status` is among them because every
/// client `status` and every watch update asks it for the mounts: counted,
/// it would restart the idle countdown on each look and, since the start and
/// end of a call move the idle deadline (an update to every watcher), a
/// watcher asking for mounts on each update would feed itself forever.
const OBSERVING_PATHS: [&str; 4] = [
    "/spfs_autostart.v1.Control/Info",
    "/spfs_autostart.v1.Control/Watch",
    "/grpc.health.v1.Health/",
    "/spfs_vfs.VfsService/Status",
];

impl<S, B> tower::Service<tonic::codegen::http::Request<B>> for InFlight<S>
where
    S: tower::Service<tonic::codegen::http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: tonic::codegen::http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let guard = (!OBSERVING_PATHS.iter().any(|p| path.starts_with(p)))
            .then(|| self.lifetime.call_started());
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(guard);
            response
        })
    }
}
