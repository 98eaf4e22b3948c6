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

use tokio::runtime::{Handle, Runtime};

use crate::process::OncePerProcess;

/// The current process's runtime (see [`OncePerProcess`]).
static RUNTIME: OncePerProcess<Runtime> = OncePerProcess::new();

/// The runtime every call of this library runs on, for this process.
pub(crate) fn runtime() -> &'static Runtime {
    // A runtime another thread installed first has no tasks yet: shutting
    // it down in the background neither blocks nor leaks its threads.
    RUNTIME.get(build, Runtime::shutdown_background)
}

/// The id of the process whose runtime this is; a manager made before a
/// `fork()` compares it to know it must not use its inherited connections.
pub(crate) fn this_process() -> u32 {
    std::process::id()
}

/// A new runtime, built on a thread of its own: building it takes more
/// stack (with LTO, tens of KiB) than a C thread of 56 KiB has, and the
/// first call may come from one. Once per process (and per fork).
fn build() -> Runtime {
    on_a_thread_of_its_own(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("spfs-autostart")
            .enable_all()
            .build()
    })
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
        // The inner task runs the call; the outer one only waits for it, so
        // a panic reaches the caller as the inner task's JoinError.
        runtime().spawn(async move {
            let call = tokio::spawn(async move { Box::pin(make()).await });
            // The receiver is gone only if the caller is: nothing to tell.
            let _ = done.send(call.await.map(Box::new));
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
        Ok(Err(e)) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("spfs-autostart: the call was cancelled: {e}"),
        },
        Err(_) => panic!("spfs-autostart: the runtime dropped the call"),
    }
}
