//! Waking the host's executor safely, up to the host's exit.
//!
//! An async call of the bindings (`ensure`, `status` ...) runs on the
//! library's runtime and wakes the foreign executor through uniffi's waker,
//! which calls into the host (Python's continuation callback) on a runtime
//! worker. tokio may call that waker once more *after* the host has taken
//! the result (or dropped the call): the task stores its output, the host's
//! poll finds it, and only then does the worker wake the stale waker. By
//! then the host's event loop may be closed (Python prints "Event loop is
//! closed" from the callback), or the host exiting: Python then ends the
//! worker inside the callback with a forced unwind, which tokio's
//! `catch_unwind` cannot let through, and the process aborts ("FATAL:
//! exception not rethrown", about 1 run in 50 with the release library).
//!
//! So every such wake goes through [`HostWaking`], gated twice:
//! - per call: once the call has returned its result or been dropped, its
//!   wakes reach nobody, and a wake already under way on another thread is
//!   waited for (briefly) before the result is handed over;
//! - per process: once [`close`] has run (the bindings' exit hook,
//!   `stop_all_feeds`) no wake reaches the host, and `close` waits for those
//!   under way.
//!
//! The waits can end because the host, blocked in the library call, has
//! released its lock (ctypes releases the GIL).
//!
//! After `fork()` the child has none of the parent's threads, and a lock
//! one of them held stays held: the child gets gates of its own (the
//! process's, made anew as the runtime is), and leaves the parent's calls
//! alone.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::process::OncePerProcess;
use crate::runtime::this_process;

/// How long a call that finished waits for a wake of it under way.
const CALL_GRACE: Duration = Duration::from_secs(1);

/// Whether wakes may still pass, and the threads inside one now.
#[derive(Debug)]
struct State {
    closed: bool,
    waking: Vec<ThreadId>,
}

/// A gate for wakes: the process's ([`HOST`]), one call's, or a test's.
#[derive(Debug)]
struct Wakes {
    state: Mutex<State>,
    idle: Condvar,
}

/// The gate of the host this library is loaded into, one per process (see
/// [`OncePerProcess`]).
static HOST: OncePerProcess<Wakes> = OncePerProcess::new();

/// This process's gate.
fn host() -> &'static Wakes {
    HOST.get(Wakes::new, drop)
}

/// Wake the host no more, and wait until `deadline` for the wakes in
/// progress to return. For a host that is exiting: a call still pending is
/// never woken afterwards.
pub(crate) fn close(deadline: Instant) {
    host().close(deadline);
}

/// Whether [`close`] has run: an async call started now would never be
/// woken, so it is refused instead.
pub(crate) fn closed() -> bool {
    host().state().closed
}

impl Wakes {
    const fn new() -> Wakes {
        Wakes {
            state: Mutex::new(State {
                closed: false,
                waking: Vec::new(),
            }),
            idle: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Never held while foreign code runs: poisoning can only come from
        // a bug here, and the state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Let no wake pass, and wait until `deadline` for those under way on
    /// other threads (one of this thread's own cannot end while it waits).
    fn close(&self, deadline: Instant) {
        let me = std::thread::current().id();
        let mut state = self.state();
        state.closed = true;
        while state.waking.iter().any(|&t| t != me) {
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

    /// Call `wake` unless closed, counted as under way on this thread
    /// until it returns or unwinds.
    fn wake(&self, wake: impl FnOnce()) {
        {
            let mut state = self.state();
            if state.closed {
                return;
            }
            state.waking.push(std::thread::current().id());
        }
        let _done = WakeDone(self);
        wake();
    }
}

/// Ends this thread's wake when dropped, so a wake that unwinds cannot
/// leave `close` waiting for it.
struct WakeDone<'a>(&'a Wakes);

impl Drop for WakeDone<'_> {
    fn drop(&mut self) {
        let me = std::thread::current().id();
        let mut state = self.0.state();
        if let Some(i) = state.waking.iter().position(|&t| t == me) {
            state.waking.swap_remove(i);
        }
        self.0.idle.notify_all();
    }
}

/// The host's waker, called only while both the process and the call may
/// still be woken.
struct HostWaker {
    process: &'static Wakes,
    call: Arc<Wakes>,
    host: Waker,
}

impl Wake for HostWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.process
            .wake(|| self.call.wake(|| self.host.wake_by_ref()));
    }
}

/// `F`, with every wake of the host's executor going through [`HostWaker`],
/// and none once `F`'s result has been handed over or the call dropped.
#[derive(Debug)]
pub(crate) struct HostWaking<F> {
    inner: F,
    call: Arc<Wakes>,
    /// The process that made the call: a child after `fork()` leaves it
    /// alone.
    process: u32,
}

impl<F> HostWaking<F> {
    pub(crate) fn new(inner: F) -> HostWaking<F> {
        HostWaking {
            inner,
            call: Arc::new(Wakes::new()),
            process: this_process(),
        }
    }
}

impl<F: Future + Unpin> Future for HostWaking<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::new(HostWaker {
            process: host(),
            call: self.call.clone(),
            host: cx.waker().clone(),
        }));
        let poll = Pin::new(&mut self.inner).poll(&mut Context::from_waker(&waker));
        if poll.is_ready() {
            // A stale wake must not reach the host after it has the result.
            self.call.close(Instant::now() + CALL_GRACE);
        }
        poll
    }
}

impl<F> Drop for HostWaking<F> {
    fn drop(&mut self) {
        // In a forked child the call's wakes come from threads the child
        // does not have: nothing to close or wait for.
        if self.process == this_process() {
            // Dropped unfinished (cancelled), or after the result: no wake
            // of this call reaches the host any more.
            self.call.close(Instant::now() + CALL_GRACE);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

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
            process: wakes,
            call: Arc::new(Wakes::new()),
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

    /// Counts the wakes that reach it.
    #[derive(Default)]
    struct CountingHost(AtomicUsize);

    impl Wake for CountingHost {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Pending until `ready` is set; keeps the waker it was polled with.
    struct Manual {
        ready: bool,
        waker: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for Manual {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            if self.ready {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    #[test]
    fn a_call_that_returned_its_result_wakes_the_host_no_more() {
        let host = Arc::new(CountingHost::default());
        let host_waker = Waker::from(host.clone());
        let kept = Arc::new(Mutex::new(None));
        let mut call = HostWaking::new(Manual {
            ready: false,
            waker: kept.clone(),
        });
        let mut cx = Context::from_waker(&host_waker);
        assert!(Pin::new(&mut call).poll(&mut cx).is_pending());
        let stale = kept.lock().unwrap().clone().unwrap();
        stale.wake_by_ref();
        assert_eq!(
            host.0.load(Ordering::SeqCst),
            1,
            "a pending call wakes its host"
        );
        call.inner.ready = true;
        assert!(Pin::new(&mut call).poll(&mut cx).is_ready());
        // tokio's late wake of the waker it kept from the first poll.
        stale.wake_by_ref();
        assert_eq!(
            host.0.load(Ordering::SeqCst),
            1,
            "the host was woken after the result"
        );
        drop(call);
        stale.wake();
        assert_eq!(host.0.load(Ordering::SeqCst), 1);
    }
}
