//! Counting the calls in flight, so a service never idles out under a caller.
//!
//! A call is in flight from its request until its response body has ended:
//! for a streaming call that is the end of its stream (or the client
//! going away), not the moment its handler returned the stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use tonic::codegen::http;

use crate::lifetime::{CallGuard, Lifetime};

/// Counts calls in flight, except those that only observe the service
/// (`Info`, `Watch`, health, and the service's own it names), so watching
/// never keeps a service alive.
#[derive(Clone, Debug)]
pub(crate) struct InFlightLayer {
    lifetime: Arc<Lifetime>,
    /// The service's own calls that only look ([`crate::Kit::calls_that_only_look`]).
    looks: Arc<[String]>,
}

impl InFlightLayer {
    pub(crate) fn new(lifetime: Arc<Lifetime>, looks: Vec<String>) -> InFlightLayer {
        InFlightLayer {
            lifetime,
            looks: looks.into(),
        }
    }
}

impl<S> tower::Layer<S> for InFlightLayer {
    type Service = InFlight<S>;

    fn layer(&self, inner: S) -> InFlight<S> {
        InFlight {
            inner,
            lifetime: self.lifetime.clone(),
            looks: self.looks.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct InFlight<S> {
    inner: S,
    lifetime: Arc<Lifetime>,
    looks: Arc<[String]>,
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

impl<S, B, ResBody> tower::Service<http::Request<B>> for InFlight<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Counted<ResBody>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let looks = OBSERVING_PATHS.iter().any(|p| path.starts_with(p))
            || self.looks.iter().any(|p| path.starts_with(p.as_str()));
        let guard = (!looks).then(|| self.lifetime.call_started());
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| Counted { body, guard }))
        })
    }
}

/// A response body that keeps its call in flight until it has ended (its
/// last frame polled, or the body dropped: sent, or the client gone).
#[derive(Debug)]
pub(crate) struct Counted<B> {
    body: B,
    guard: Option<CallGuard>,
}

impl<B: Body + Unpin> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) {
            this.guard = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use tokio::sync::mpsc;
    use tonic::codegen::Bytes;
    use tower::{Layer, ServiceExt};

    use super::*;

    /// A response body that streams what the test sends, until it drops
    /// the sender.
    struct Feed(mpsc::Receiver<Bytes>);

    impl Body for Feed {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.get_mut()
                .0
                .poll_recv(cx)
                .map(|next| next.map(|bytes| Ok(Frame::data(bytes))))
        }
    }

    /// A call of `path` to a handler that returns a stream at once: its
    /// response body, and the sender that feeds it.
    async fn streaming_call(
        lifetime: &Arc<Lifetime>,
        path: &str,
    ) -> (Counted<Feed>, mpsc::Sender<Bytes>) {
        streaming_call_among(lifetime, path, Vec::new()).await
    }

    /// [`streaming_call`], with the service's own `looks`.
    async fn streaming_call_among(
        lifetime: &Arc<Lifetime>,
        path: &str,
        looks: Vec<String>,
    ) -> (Counted<Feed>, mpsc::Sender<Bytes>) {
        let (tx, rx) = mpsc::channel(1);
        let mut rx = Some(rx);
        let handler = tower::service_fn(move |_: http::Request<()>| {
            let feed = Feed(rx.take().expect("one call"));
            std::future::ready(Ok::<_, Infallible>(http::Response::new(feed)))
        });
        let request = http::Request::builder().uri(path).body(()).unwrap();
        let response = InFlightLayer::new(lifetime.clone(), looks)
            .layer(handler)
            .oneshot(request)
            .await
            .unwrap();
        (response.into_body(), tx)
    }

    async fn next_frame(body: &mut Counted<Feed>) -> Option<Bytes> {
        std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx))
            .await
            .map(|frame| frame.unwrap().into_data().unwrap())
    }

    #[tokio::test]
    async fn a_streaming_call_is_in_flight_until_its_stream_ends_or_its_client_goes() {
        let life = Lifetime::for_tests(Duration::from_secs(60));
        assert!(life.idle_deadline().is_some(), "idle before any call");

        let (mut body, tx) = streaming_call(&life, "/svc.Progress/Follow").await;
        assert!(
            life.idle_deadline().is_none(),
            "in flight once its handler has returned the stream"
        );
        tx.send(Bytes::from_static(b"50%")).await.unwrap();
        assert_eq!(next_frame(&mut body).await.as_deref(), Some(&b"50%"[..]));
        assert!(life.idle_deadline().is_none(), "still streaming");
        drop(tx);
        assert_eq!(next_frame(&mut body).await, None);
        assert!(life.idle_deadline().is_some(), "idle once the stream ended");

        let (body, _tx) = streaming_call(&life, "/svc.Progress/Follow").await;
        assert!(life.idle_deadline().is_none());
        drop(body);
        assert!(
            life.idle_deadline().is_some(),
            "idle once the client went away"
        );

        let (_body, _tx) = streaming_call(&life, "/spfs_autostart.v1.Control/Watch").await;
        assert!(
            life.idle_deadline().is_some(),
            "a watch only observes: never in flight"
        );
    }

    /// A service names its own calls that only look (a UI polling its
    /// progress): they are never in flight, and its other calls still are.
    #[tokio::test]
    async fn a_call_the_service_named_a_look_is_never_in_flight() {
        let life = Lifetime::for_tests(Duration::from_secs(60));
        let looks = vec!["/svc.Progress/Poll".to_string(), "/svc.Stats/".to_string()];
        for path in ["/svc.Progress/Poll", "/svc.Stats/Read"] {
            let (_body, _tx) = streaming_call_among(&life, path, looks.clone()).await;
            assert!(life.idle_deadline().is_some(), "{path} counted as work");
        }
        let (_body, _tx) = streaming_call_among(&life, "/svc.Progress/Follow", looks).await;
        assert!(
            life.idle_deadline().is_none(),
            "a call that works is in flight"
        );
    }
}
