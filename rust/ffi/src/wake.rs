//! Waking the host's executor safely, up to the host's exit.
//!
//! An async call of the bindings (`ensure`, `status` ...) runs on the
//! library's runtime and wakes the foreign executor through uniffi's waker,
//! which calls into the host (Python's continuation callback) on a runtime
//! worker. tokio may call that waker once more *after* the host has taken
//! the result: the task stores its output, the host's poll finds it, and
//! only then does the worker wake the stale waker. If the host is exiting by
//! then, Python ends the worker inside the callback with a forced unwind,
//! which tokio's `catch_unwind` cannot let through, and the process aborts
//! ("FATAL: exception not rethrown", about 1 run in 50 with the release
//! library).
//!
//! So every such wake goes through [`HostWaking`]: it counts the wakes in
//! progress, and once [`close`] has run (the bindings' exit hook,
//! `stop_all_feeds`) it wakes nobody. `close` waits for the wakes already in
//! progress, which can finish because the host, blocked in the library
//! call, has released its lock (ctypes releases the GIL).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

/// Whether the host may still be woken, and how many wakes are under way.
#[derive(Debug, Default)]
struct State {
    closed: bool,
    waking: usize,
}

/// The wakes of one host: the process's ([`HOST`]), or a test's.
#[derive(Debug)]
struct Wakes {
    state: Mutex<State>,
    idle: Condvar,
}

/// The wakes of the host this library is loaded into.
static HOST: Wakes = Wakes::new();

/// Wake the host no more, and wait until `deadline` for the wakes in
/// progress to return. For a host that is exiting: a call still pending is
/// never woken afterwards.
pub(crate) fn close(deadline: Instant) {
    HOST.close(deadline);
}

impl Wakes {
    const fn new() -> Wakes {
        Wakes {
            state: Mutex::new(State {
                closed: false,
                waking: 0,
            }),
            idle: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Never held while foreign code runs: poisoning can only come from
        // a bug here, and the counts are still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self, deadline: Instant) {
        let mut state = self.state();
        state.closed = true;
        while state.waking > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = self
                .idle
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Call `wake` unless closed, counted as a wake in progress (until it
    /// returns or unwinds).
    fn wake(&self, wake: impl FnOnce()) {
        {
            let mut state = self.state();
            if state.closed {
                return;
            }
            state.waking += 1;
        }
        let _done = WakeDone(self);
        wake();
    }

    fn is_closed(&self) -> bool {
        self.state().closed
    }
}

/// Ends one wake's count when dropped, so a wake that unwinds cannot leave
/// `close` waiting for it.
struct WakeDone<'a>(&'a Wakes);

impl Drop for WakeDone<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.waking -= 1;
        if state.waking == 0 {
            self.0.idle.notify_all();
        }
    }
}

/// Whether [`close`] has run: an async call started now would never be
/// woken, so it is refused instead.
pub(crate) fn closed() -> bool {
    HOST.is_closed()
}

/// The host's waker, called only while the host may be woken.
struct HostWaker {
    wakes: &'static Wakes,
    host: Waker,
}

impl Wake for HostWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.wake(|| self.host.wake_by_ref());
    }
}

/// `F`, with every wake of the host's executor going through [`HostWaker`].
#[derive(Debug)]
pub(crate) struct HostWaking<F>(pub(crate) F);

impl<F: Future + Unpin> Future for HostWaking<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::new(HostWaker {
            wakes: &HOST,
            host: cx.waker().clone(),
        }));
        Pin::new(&mut self.0).poll(&mut Context::from_waker(&waker))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// A host waker that reports when it starts and waits to be let go.
    struct SlowHost {
        calls: AtomicUsize,
        started: Mutex<mpsc::Sender<()>>,
        release: Mutex<mpsc::Receiver<()>>,
    }

    impl Wake for SlowHost {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.started.lock().unwrap().send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
        }
    }

    #[test]
    fn close_waits_for_a_wake_in_progress_and_then_wakes_nobody() {
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let host = Arc::new(SlowHost {
            calls: AtomicUsize::new(0),
            started: Mutex::new(started_tx),
            release: Mutex::new(release_rx),
        });
        // A host of its own: closing the process's would end every async
        // call of other tests in this process.
        let wakes: &'static Wakes = Box::leak(Box::new(Wakes::new()));
        let ours = Waker::from(Arc::new(HostWaker {
            wakes,
            host: Waker::from(host.clone()),
        }));

        // A wake in progress (the host is inside its callback).
        let waking = std::thread::spawn({
            let ours = ours.clone();
            move || ours.wake_by_ref()
        });
        started.recv().unwrap();
        let (closed_tx, closed) = mpsc::channel();
        let closer = std::thread::spawn(move || {
            wakes.close(Instant::now() + Duration::from_secs(60));
            closed_tx.send(()).unwrap();
        });
        // `close` waits for the callback to return...
        assert_eq!(
            closed.recv_timeout(Duration::from_millis(200)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "close returned while the host was inside a wake"
        );
        release.send(()).unwrap();
        closed.recv_timeout(Duration::from_secs(60)).unwrap();
        waking.join().unwrap();
        closer.join().unwrap();

        // ...and afterwards nothing reaches the host.
        ours.wake_by_ref();
        ours.wake();
        assert_eq!(host.calls.load(Ordering::SeqCst), 1);
    }
}
