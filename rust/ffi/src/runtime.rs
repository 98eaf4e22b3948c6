//! The library's tokio runtime: one per process, created on first use, and
//! a fresh one in a child after `fork()`.
//!
//! A forked child inherits the parent's memory but none of its threads, so
//! the parent's runtime has no workers there and every call on it would wait
//! forever. Worse, its epoll (or kqueue) descriptor is shared with the
//! parent: a child that registered or dropped sockets on it would change
//! what the parent's runtime waits for. So the runtime is tagged with the
//! pid that built it; a call from another pid builds a new runtime and
//! leaks the inherited one without touching it (dropping it would join
//! threads that do not exist and deregister the parent's descriptors).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Poll;

use tokio::runtime::{Handle, Runtime};

use crate::process::OncePerProcess;

/// The current process's runtime (see [`OncePerProcess`]).
static RUNTIME: OncePerProcess<Runtime> = OncePerProcess::new();

/// The runtime every call of this library runs on, for this process.
pub(crate) fn runtime() -> &'static Runtime {
    // Built on a thread of its own (see `build`). A runtime another thread
    // installed first has no tasks yet: shutting it down in the background
    // neither blocks nor leaks its threads.
    RUNTIME.get(
        || on_a_thread_of_its_own(build),
        Runtime::shutdown_background,
    )
}

/// The id of the process whose runtime this is; a manager made before a
/// `fork()` compares it to know it must not use its inherited connections.
pub(crate) fn this_process() -> u32 {
    std::process::id()
}

/// A new runtime with one worker. Building it takes more stack (with LTO,
/// tens of KiB) than a C thread of 56 KiB has, and the first call may come
/// from one: callers build it on a thread of their own. Once per process
/// (and per fork).
///
/// One worker is enough, and a second only costs: the library's tasks wait
/// on sockets, timers and polled locks, never on a blocked thread (what
/// blocks, `doctor`'s wait on the program, runs on tokio's blocking
/// threads), and the only foreign code the worker runs is a host's waker,
/// which schedules and returns (feeds call observers on threads of their
/// own). A second worker costs wake-ups between the two: with two (and the
/// runtime built on a thread of its own, a call run as two tasks) a fresh C
/// process's `ensure` made 16 `futex` calls and 4 `clone`s, now 3 and 2,
/// and took 0.35-0.5 ms longer; an async call from Python 0.2-0.4 ms.
fn build() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("spfs-autostart")
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("spfs-autostart: cannot create the tokio runtime: {e}"))
}

/// Run `work` on a thread of the library's own, outside any runtime and
/// with a full-sized stack, and return what it returns: for work that may
/// recurse deeply (building the runtime, parsing a config file a user
/// wrote) called from a C thread with a small stack, or that must not run
/// on a runtime's worker. A panic of `work` propagates to the caller.
pub(crate) fn on_a_thread_of_its_own<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(output) => output,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Run the future `make` returns to completion on the library's runtime and
/// wait for it, for callers that block (the C ABI).
///
/// The caller's thread only parks on a channel: `make` runs on a worker,
/// and the future it makes is boxed there, so neither the future's state
/// (kilobytes for `ensure`) nor tokio's polling machinery ever sits on the
/// caller's stack, and a C thread with a small stack (56 KiB crashed the
/// release build when the caller polled) is safe. Parking on a channel is
/// also fine inside a tokio runtime, where `Runtime::block_on` would panic
/// (there the task is spawned from a helper thread). A panic of the future
/// propagates to the caller (the C ABI catches it).
pub(crate) fn block_on<T, F, Fut>(make: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (done, result) = std::sync::mpsc::sync_channel(1);
    let spawn = move || {
        runtime().spawn(async move {
            // `make` runs in the first poll, so its panic is caught too.
            let mut call = Box::pin(async move { make().await });
            // One task, its panic caught at each poll (as tokio catches a
            // task's), not a task that waits for another: a second task
            // is a second wake-up on every call.
            let outcome = std::future::poll_fn(|cx| {
                match catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(output)) => Poll::Ready(Ok(Box::new(output))),
                    Err(panic) => Poll::Ready(Err(panic)),
                }
            })
            .await;
            // The receiver is gone only if the caller is: nothing to tell.
            let _ = done.send(outcome);
        });
    };
    if Handle::try_current().is_ok() {
        // Spawned from a worker of our own runtime, the task would wait in
        // that worker's slot, which this thread then blocks.
        on_a_thread_of_its_own(spawn);
    } else {
        spawn();
    }
    match result.recv() {
        Ok(Ok(output)) => *output,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("spfs-autostart: the runtime dropped the call"),
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::block_on;

    /// The panic's message, as `panic!` with a format string makes it.
    fn message(panic: Box<dyn std::any::Any + Send>) -> String {
        match panic.downcast::<String>() {
            Ok(text) => *text,
            Err(panic) => panic.downcast::<&str>().map(|s| s.to_string()).unwrap(),
        }
    }

    #[test]
    fn a_call_returns_what_its_future_returns_after_waiting() {
        let got = block_on(|| async {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            41 + 1
        });
        assert_eq!(got, 42);
    }

    #[test]
    fn a_panic_in_the_future_or_in_making_it_reaches_the_caller_and_the_runtime_goes_on() {
        let polled = catch_unwind(AssertUnwindSafe(|| {
            block_on(|| async {
                tokio::task::yield_now().await;
                panic!("in the {}", "future")
            })
        }));
        assert_eq!(message(polled.unwrap_err()), "in the future");
        let making = catch_unwind(AssertUnwindSafe(|| {
            block_on(|| -> std::future::Ready<()> { panic!("in {}", "make") })
        }));
        assert_eq!(message(making.unwrap_err()), "in make");
        // The one worker survived both.
        assert_eq!(block_on(|| async { "still serving" }), "still serving");
    }
}
