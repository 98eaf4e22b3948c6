//! A fake `launchctl` and launchctl's real failure texts.

use super::*;

/// A `launchctl` that records every argv and replays canned outputs in order.
#[derive(Debug, Default)]
pub(crate) struct FakeRunner {
    pub(crate) calls: std::cell::RefCell<Vec<Vec<String>>>,
    pub(crate) replies: std::cell::RefCell<std::collections::VecDeque<CommandOutput>>,
}

impl FakeRunner {
    pub(crate) fn replying(replies: impl IntoIterator<Item = CommandOutput>) -> Self {
        FakeRunner {
            calls: Default::default(),
            replies: std::cell::RefCell::new(replies.into_iter().collect()),
        }
    }

    pub(crate) fn calls(&self) -> Vec<Vec<String>> {
        self.calls.borrow().clone()
    }

    /// The launchctl verb of each call, in order.
    pub(crate) fn verbs(&self) -> Vec<String> {
        self.calls.borrow().iter().map(|c| c[1].clone()).collect()
    }
}

impl CommandRunner for FakeRunner {
    fn run(&self, argv: &[String]) -> std::io::Result<CommandOutput> {
        self.calls.borrow_mut().push(argv.to_vec());
        Ok(self
            .replies
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected launchctl call {argv:?}")))
    }
}

pub(crate) fn ok() -> CommandOutput {
    CommandOutput {
        status: Some(0),
        ..Default::default()
    }
}

pub(crate) fn failed(status: i32, stderr: &str) -> CommandOutput {
    CommandOutput {
        status: Some(status),
        stdout: String::new(),
        stderr: stderr.to_owned(),
    }
}

/// launchctl's real failure texts, as users have reported them.
pub(crate) const BOOTSTRAP_EIO: &str = "Bootstrap failed: 5: Input/output error\nTry re-running the command as root for richer errors.\n";
pub(crate) const BOOTSTRAP_IN_PROGRESS: &str =
    "Bootstrap failed: 37: Operation already in progress\n";
pub(crate) const BOOTOUT_NOT_LOADED: &str = "Boot-out failed: 3: No such process\n";
pub(crate) const PRINT_NOT_FOUND_PORT: &str =
    "Could not find service \"ai.spk.spfs-fuse-macos\" in domain for port\n";
pub(crate) const PRINT_NOT_FOUND_USER: &str =
    "Bad request.\nCould not find service \"ai.spk.spfs-fuse-macos\" in domain for user gui: 501\n";
