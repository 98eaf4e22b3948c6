//! The library's one tokio runtime, created on first use.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};

/// The process-wide runtime every call of this library runs on.
pub(crate) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("spfs-autostart")
            .enable_all()
            .build()
            .expect("spfs-autostart: cannot create the tokio runtime")
    })
}

/// Run `future` to completion on the library's runtime, for callers that
/// block (the C ABI). A caller already inside a tokio runtime must not block
/// its thread in `block_on`, so the wait then happens on a scoped thread.
/// Panics of `future` propagate to the caller (the C ABI catches them).
pub(crate) fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if Handle::try_current().is_err() {
        return runtime().block_on(future);
    }
    std::thread::scope(
        |scope| match scope.spawn(move || runtime().block_on(future)).join() {
            Ok(output) => output,
            Err(panic) => std::panic::resume_unwind(panic),
        },
    )
}
