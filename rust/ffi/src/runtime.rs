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
        runtime: build(),
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

/// A new runtime, built on a thread of its own: building it takes more
/// stack (with LTO, tens of KiB) than a C thread of 56 KiB has, and the
/// first call may come from one. Once per process (and per fork).
fn build() -> Runtime {
    let build = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("spfs-autostart")
            .enable_all()
            .build()
    };
    let built = std::thread::Builder::new()
        .name("spfs-autostart-init".into())
        .spawn(build)
        .map(|thread| thread.join());
    match built {
        Ok(Ok(Ok(runtime))) => runtime,
        Ok(Ok(Err(e))) => panic!("spfs-autostart: cannot create the tokio runtime: {e}"),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(e) => panic!("spfs-autostart: cannot start a thread to create the runtime: {e}"),
    }
}

/// Run `work` on a thread of the library's own, with a full-sized stack, and
/// return what it returns: for synchronous work that may recurse deeply,
/// such as parsing a config file a user wrote, called from a C thread with
/// a small stack. A panic of `work` propagates to the caller.
pub(crate) fn on_a_full_stack<T: Send>(work: impl FnOnce() -> T + Send) -> T {
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
        // that worker's slot, which this thread then blocks: spawn from a
        // thread outside any runtime.
        std::thread::scope(|scope| {
            if let Err(panic) = scope.spawn(spawn).join() {
                std::panic::resume_unwind(panic);
            }
        });
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
