//! The `stopping` file: which service instance a client is ending, for
//! the looks of other clients. A plain service cannot say it is shutting
//! down, so without it a `watch` would read a slow stop as a death, and an
//! `ensure` would take a service about to be killed for one that serves.
//!
//! Advice, like the record: it counts only while `spawn.lock` is held and
//! only for the very instance it names (pid and start time), so one left by
//! a client that died means nothing.

use std::path::{Path, PathBuf};

use crate::sys::Instance;

/// The mark while it is set: the file is removed when this drops, however
/// the ending ends. Set it only while holding `spawn.lock`.
#[derive(Debug)]
pub(crate) struct StoppingMark(PathBuf);

impl StoppingMark {
    /// Name `instance` in the file at `path` (`Paths::stopping`).
    pub(crate) fn set(path: PathBuf, instance: Instance) -> StoppingMark {
        let text = format!("{} {}\n", instance.pid, instance.start_time);
        if let Err(e) = crate::record::write_private(&path, text.as_bytes()) {
            tracing::debug!("cannot write {}: {e}", path.display());
        }
        StoppingMark(path)
    }
}

impl Drop for StoppingMark {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether the file at `path` names `instance`. (Whether it counts, that
/// is whether `spawn.lock` is held, is the caller's to check.)
pub(crate) fn names(path: &Path, instance: Instance) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let mut words = text.split_whitespace().map(str::parse::<u64>);
    match (words.next(), words.next()) {
        (Some(Ok(pid)), Some(Ok(start_time))) => {
            u64::from(instance.pid) == pid && instance.start_time == start_time
        }
        _ => false,
    }
}
