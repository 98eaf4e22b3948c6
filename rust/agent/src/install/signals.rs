//! Interrupts held back while launchd has no job loaded.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

/// Blocks SIGINT, SIGTERM and SIGHUP on this thread until dropped; pending ones are delivered
/// then.
pub(super) struct BlockedSignals(Option<SigSet>);

impl BlockedSignals {
    /// Blocks them now; the returned guard restores the previous mask.
    pub(super) fn block() -> Self {
        let mut set = SigSet::empty();
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(signal);
        }
        let mut old = SigSet::empty();
        match pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)) {
            Ok(()) => BlockedSignals(Some(old)),
            Err(_) => BlockedSignals(None),
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(old), None);
        }
    }
}
