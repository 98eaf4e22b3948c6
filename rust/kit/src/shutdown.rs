//! How a serving kit ends: it stops listening once asked to, drains the
//! calls that do work for a bounded time, and leaves the state dir saying
//! `stopping` however `serve` ends.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use spfs_autostart_protocol::record::Phase;

use crate::lifetime::Lifetime;
use crate::listener::Incoming;
use crate::owned::Owned;
use crate::state::write_record;

/// How long a graceful shutdown may wait for calls and connections to end:
/// below the client's default `stop_timeout_secs` (5), so a drain after
/// SIGTERM ends before the client escalates to SIGKILL. A `Shutdown` request
/// may ask for less (see [`Lifetime::limit_drain`]).
const GRACE: Duration = Duration::from_secs(4);
/// How long the last answers of a drain get to leave before the process
/// exits, when only watchers keep connections open.
const ANSWERS_OUT: Duration = Duration::from_millis(100);

/// What `serve` leaves however it ends: returning, failing, or dropped by
/// its caller (a `select!` in the service, which aborts the server). The
/// endpoint is released now and the lock at exit, so a successor that takes
/// the lock finds the path free or stale, never live; the record says
/// `stopping` until then (a successor replaces it), not `running` with
/// nothing answering, which a look reads as a hung service.
pub(crate) struct ServeEnd {
    pub(crate) lifetime: Arc<Lifetime>,
    pub(crate) owned: Owned,
}

impl Drop for ServeEnd {
    fn drop(&mut self) {
        // Said once already when it ends by shutting down.
        self.lifetime.request_shutdown("no longer serving");
        if self.owned.holds_the_lock() {
            write_record(&self.lifetime, self.owned.paths(), Phase::Stopping);
        }
        self.owned.remove_sockets();
    }
}

/// Once shutting down, say so in the record, then to the watchers (in that
/// order: see [`Lifetime::tell_watchers_shutting_down`]), then close the
/// listening socket: tonic stops accepting but would keep it open while calls drain,
/// so new connections would hang unanswered. Refused, they tell a client at
/// once to look at the lock and the record, which say "stopping".
pub(crate) async fn stop_listening(
    lifetime: Arc<Lifetime>,
    owned: Owned,
    listening: CloseHandle,
    health: tonic_health::server::HealthReporter,
) {
    let reason = lifetime.shutdown_requested().await;
    if owned.holds_the_lock() {
        write_record(&lifetime, owned.paths(), Phase::Stopping);
    }
    lifetime.tell_watchers_shutting_down(reason);
    // Health's watchers too: serving no more (the drain is not service).
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    listening.close();
}

/// Resolves once shutdown was asked for and the calls that do work have
/// finished, with a moment for their answers to go out; or when the drain
/// limit is up, with a warning. The limit may shrink meanwhile (a client's
/// `Shutdown` naming less, a signal ending the drain now).
pub(crate) async fn drained(lifetime: &Lifetime) {
    lifetime.shutdown_requested().await;
    let started = tokio::time::Instant::now();
    let finished = async {
        lifetime.calls_finished().await;
        tokio::time::sleep(ANSWERS_OUT).await;
    };
    tokio::pin!(finished);
    loop {
        let drain = lifetime.drain_limit(GRACE);
        tokio::select! {
            () = &mut finished => return,
            () = tokio::time::sleep_until(started + drain) => break,
            () = lifetime.drain_limit_changed() => {}
        }
    }
    tracing::warn!(
        "calls still open after {:.1}s; exiting anyway",
        started.elapsed().as_secs_f64()
    );
}

/// The stream of accepted connections, with a handle that closes the
/// listening socket under the server's feet.
pub(crate) struct Closable(Arc<std::sync::Mutex<Option<Incoming>>>);

/// Closes a [`Closable`]'s stream.
pub(crate) struct CloseHandle(Arc<std::sync::Mutex<Option<Incoming>>>);

impl Closable {
    pub(crate) fn new(stream: Incoming) -> (Closable, CloseHandle) {
        let shared = Arc::new(std::sync::Mutex::new(Some(stream)));
        (Closable(shared.clone()), CloseHandle(shared))
    }
}

impl CloseHandle {
    /// Drop the stream, and with it the listening socket.
    fn close(&self) {
        drop(self.0.lock().expect("listener mutex").take());
    }
}

impl tokio_stream::Stream for Closable {
    type Item = std::io::Result<spfs_autostart_protocol::Stream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.0.lock().expect("listener mutex").as_mut() {
            Some(stream) => stream.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}
