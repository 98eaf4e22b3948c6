//! SIGTERM and SIGINT: the first asks for a graceful shutdown, the second
//! ends the process.

use std::sync::Arc;
use std::time::Duration;

use spfs_autostart_protocol::sys;

use crate::lifetime::Lifetime;

/// Cancels a spawned task when dropped (a `JoinHandle` dropped lets it run).
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The first SIGTERM or SIGINT asks for a graceful shutdown, or, when one
/// asked for otherwise is under way (an idle exit, `Shutdown`, the
/// service's own), ends its drain of calls now: the clean-up after `serve`
/// still runs (a client's `stop` that waited for the drain in vain signals
/// next). A second one (Ctrl-C pressed again, a stopper escalating) ends
/// the process at once by that signal, as it would without the kit, so a
/// drain or a clean-up after `serve` that hangs can always be ended.
///
/// The handlers are installed here, at once (a task installing them would
/// do so only when first run, maybe after the service's set-up); the task
/// that reacts runs on the caller's runtime.
pub(crate) fn watch_signals(lifetime: Arc<Lifetime>) -> AbortOnDrop {
    use nix::sys::signal::Signal;
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot watch SIGTERM/SIGINT");
        return AbortOnDrop(tokio::spawn(async {}).abort_handle());
    };
    let task = tokio::spawn(async move {
        let mut next = async || {
            tokio::select! {
                _ = term.recv() => Signal::SIGTERM,
                _ = int.recv() => Signal::SIGINT,
            }
        };
        let first = next().await;
        if lifetime.is_shutting_down() {
            tracing::info!("received {first} while shutting down; ending the drain of calls now");
            lifetime.limit_drain(Duration::ZERO);
        } else {
            lifetime.request_shutdown(format!("received {first}"));
        }
        let again = next().await;
        tracing::warn!("received {again} after {first}; exiting now");
        sys::die_by(again);
    });
    AbortOnDrop(task.abort_handle())
}
