//! Rotation at spawn: `service.log` becomes `service.log.1`, so a crash's
//! log survives the restart that follows it.

use std::io;
use std::path::{Path, PathBuf};

/// The path of the `i`-th rotated log (`service.log.1` is the newest).
pub fn rotated(log: &Path, i: u32) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".{i}"));
    PathBuf::from(name)
}

/// Rotate `log` when it is larger than `max_bytes`: `service.log` becomes
/// `service.log.1`, older runs shift up, and runs beyond `keep` are removed.
/// Called by the spawner, under `spawn.lock`, before a new run opens the log.
pub fn rotate_if_needed(log: &Path, max_bytes: u64, keep: u32) -> io::Result<bool> {
    // Only a log file is rotated: a directory, a symbolic link or a FIFO
    // in its place is left there, for the start's open to refuse, naming it.
    let len = match std::fs::symlink_metadata(log) {
        Ok(meta) if !meta.is_file() => return Ok(false),
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len <= max_bytes {
        return Ok(false);
    }
    if keep == 0 {
        std::fs::remove_file(log).map_err(|e| at(log, e))?;
    } else {
        remove_if_exists(&rotated(log, keep))?;
        for i in (1..keep).rev() {
            let from = rotated(log, i);
            match std::fs::rename(&from, rotated(log, i + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(at(&from, e)),
                _ => {}
            }
        }
        std::fs::rename(log, rotated(log, 1)).map_err(|e| at(log, e))?;
    }
    // Runs beyond `keep` left by an earlier, larger setting go too.
    let mut i = keep + 1;
    while rotated(log, i).exists() {
        remove_if_exists(&rotated(log, i))?;
        i += 1;
    }
    Ok(true)
}

/// What would stop the next rotation of `log` (keeping `keep` runs): a
/// directory where the oldest kept run is removed, or beyond it (a removal
/// of a file cannot remove it). One at a lower number is only renamed up,
/// and blocks once it gets there.
pub fn blocked_by(log: &Path, keep: u32) -> Option<PathBuf> {
    let is_dir = |run: &PathBuf| std::fs::symlink_metadata(run).is_ok_and(|m| m.is_dir());
    // As `rotate_if_needed` removes them: the oldest kept, then those
    // beyond it, up to the first number that is free.
    let oldest = (keep > 0).then(|| rotated(log, keep));
    let beyond = (keep + 1..)
        .map(|i| rotated(log, i))
        .take_while(|run| run.exists());
    oldest.into_iter().chain(beyond).find(is_dir)
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(at(path, e)),
        _ => Ok(()),
    }
}

/// `e`, naming the file it is about: a rotation moves several.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
