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
use std::sync::atomic::{AtomicPtr, Ordering};

use tokio::runtime::{Handle, Runtime};

/// A runtime and the process it belongs to.
struct Owned {
    pid: u32,
    runtime: Runtime,
    /// The runtime inherited from the parent, if any: kept reachable (so a
    /// leak checker does not call it lost), never used or dropped.
    _inherited: *const Owned,
}

// SAFETY: `_inherited` is only stored, never dereferenced; `Runtime` is
// Send and Sync.
unsafe impl Send for Owned {}
// SAFETY: as above.
unsafe impl Sync for Owned {}

/// The current process's runtime, or an inherited one (a different pid).
/// Never freed: a runtime lives as long as its process.
static RUNTIME: AtomicPtr<Owned> = AtomicPtr::new(std::ptr::null_mut());

/// The runtime every call of this library runs on, for this process.
pub(crate) fn runtime() -> &'static Runtime {
    let pid = std::process::id();
    let current = RUNTIME.load(Ordering::Acquire);
    // SAFETY: a non-null pointer came from `Box::leak` below and is never
    // freed, so it is valid for 'static.
    if let Some(owned) = unsafe { current.as_ref() }
        && owned.pid == pid
    {
        return &owned.runtime;
    }
    let fresh: &'static mut Owned = Box::leak(Box::new(Owned {
        pid,
        runtime: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("spfs-autostart")
            .enable_all()
            .build()
            .expect("spfs-autostart: cannot create the tokio runtime"),
        _inherited: current,
    }));
    match RUNTIME.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => &fresh.runtime,
        Err(winner) => {
            // Another thread of this process installed one first: use it.
            // Ours has no tasks yet; shutting it down in the background
            // neither blocks nor leaks its threads.
            // SAFETY: as above, `winner` is a leaked, never-freed `Owned`;
            // ours is only ours (the exchange failed, nobody else saw it).
            let ours = unsafe { Box::from_raw(fresh as *mut Owned) };
            ours.runtime.shutdown_background();
            // SAFETY: see above.
            let winner = unsafe { &*winner };
            debug_assert_eq!(winner.pid, pid);
            &winner.runtime
        }
    }
}

/// The id of the process whose runtime this is; a manager made before a
/// `fork()` compares it to know it must not use its inherited connections.
pub(crate) fn this_process() -> u32 {
    std::process::id()
}

/// Run `future` to completion on the library's runtime and wait for it, for
/// callers that block (the C ABI). The future runs on the runtime's worker
/// threads, never on the caller's stack, so a caller with a small stack (a
/// C thread of 32 KiB) is safe; the caller only parks until it is done. A
/// caller already inside a tokio runtime must not block its thread in
/// `block_on`, so the wait then happens on a scoped thread. A panic of
/// `future` propagates to the caller (the C ABI catches it).
pub(crate) fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let wait = move || {
        let rt = runtime();
        let task = rt.spawn(future);
        match rt.block_on(task) {
            Ok(output) => output,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("spfs-autostart: the call was cancelled: {e}"),
            },
        }
    };
    if Handle::try_current().is_err() {
        return wait();
    }
    std::thread::scope(|scope| match scope.spawn(wait).join() {
        Ok(output) => output,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}
