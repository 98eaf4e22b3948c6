//! The observer interfaces of `watch` and `follow_logs`, and the handle
//! that stops a feed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{ServiceError, ServiceStatus};
use crate::feed;

/// Receives each state change of the service, starting with the current one.
///
/// Calls come one at a time on a thread that belongs to the feed (never on
/// the caller's thread, never two at once). A method that fails (a foreign
/// exception) does not end the feed: the failure is passed to `on_error`.
#[uniffi::export(with_foreign)]
pub trait StatusObserver: Send + Sync {
    /// Called with the new status.
    fn on_status(&self, status: ServiceStatus) -> Result<(), ServiceError>;
    /// Called when the feed cannot go on as asked: the state dir cannot be
    /// watched (the feed then ends; `status()` says why), the status cannot
    /// be read for now (said once; the feed goes on, and the next status
    /// comes when it can be read again), or `on_status` failed (the feed
    /// goes on). When this method fails too, the feed ends.
    fn on_error(&self, message: String) -> Result<(), ServiceError>;
}

/// Receives the lines appended to the service log.
///
/// Calls come one at a time on a thread that belongs to the feed. A method
/// that fails (a foreign exception) does not end the feed: the failure is
/// passed to `on_error`.
#[uniffi::export(with_foreign)]
pub trait LogObserver: Send + Sync {
    /// Called with each new line, without its newline.
    fn on_line(&self, line: String) -> Result<(), ServiceError>;
    /// Called when the log cannot be read (more lines may follow), or when
    /// `on_line` failed. When this method fails too, the feed ends.
    fn on_error(&self, message: String) -> Result<(), ServiceError>;
}

/// Report a failed observer call to `on_error`; `false` ends the feed.
pub(super) fn report(
    result: Result<(), ServiceError>,
    on_error: impl FnOnce(String) -> bool,
) -> bool {
    match result {
        Ok(()) => true,
        Err(e) => on_error(e.to_string()),
    }
}

/// A running `watch` or `follow_logs` feed. It stops on [`TaskHandle::cancel`]
/// or when the handle is dropped (which, unlike `cancel`, does not wait for
/// an observer call in progress).
///
/// Each feed costs one thread of its own (the observer is called there) plus
/// what it watches: a connection to the service for `watch`, the open log
/// file and a file-system watch for `follow_logs`. Observers that block
/// therefore delay only their own feed.
#[derive(Debug, uniffi::Object)]
pub struct TaskHandle {
    pub(super) gate: Arc<feed::Gate>,
}

#[uniffi::export]
impl TaskHandle {
    /// Stop the feed. When it returns, the observer is not being called and
    /// will not be called again (a call in progress is waited for, unless
    /// `cancel` is called from inside it). Calling it again does nothing.
    pub fn cancel(&self) {
        self.gate.cancel(None);
    }
}

impl Drop for TaskHandle {
    /// Stops the feed without waiting for a call in progress: a handle is
    /// dropped wherever its host lets go of it (a garbage collector, an
    /// event loop), maybe on the very thread the observer is waiting for.
    /// No call starts afterwards.
    fn drop(&mut self) {
        self.gate.cancel(Some(Instant::now()));
    }
}

/// Stop every `watch` and `follow_logs` feed of this process, waiting up to
/// five seconds for observer calls (and wakes of the host's executor) in
/// progress; no observer is called afterwards, even by feeds started later,
/// and no async call wakes the host again (one still pending never
/// completes; a new one fails at once). For hosts that are exiting only: an
/// interpreter must not be called into while it finalizes, so the Python
/// bindings run this at exit (`atexit`).
///
/// An observer call still running after the five seconds is left to the
/// host: if it returns into Python while the interpreter finalizes, CPython
/// ends its thread with a forced unwind, which aborts the process. Observers
/// should not block for long (hand the work to a queue instead).
#[uniffi::export]
pub fn stop_all_feeds() {
    feed::stop_all(Duration::from_secs(5));
}
