//! `flock(2)` locks on files in the state dir.
//!
//! The kernel releases a flock when the last descriptor of its open file is
//! closed, including when the holder dies, so a held `instance.lock` is the
//! truth about whether a service is alive: no pid file can lie about it.
//! We use std's `File::try_lock` (flock on Unix) and never unlock explicitly
//! where a child may share the descriptor on purpose (`instance.lock`, handed
//! to the service): closing our copy is enough, and an explicit unlock would
//! release the child's lock too. A lock no child may keep (`spawn.lock`) is
//! an [`OwnLock`], unlocked explicitly.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// Open (creating, mode `0600`) a lock file; close-on-exec like every std file.
/// A file we create gets its mode set explicitly: the umask must not leave
/// it unopenable (`0400`, `0000`) for the next process.
pub fn open(path: &Path) -> Result<File> {
    let open = |create: bool| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(create)
            .mode(0o600)
            .open(path)
    };
    let file = match open(false) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match open(true) {
            Ok(file) => file
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map(|()| file),
            // Created by another process between our two opens.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => open(false),
            Err(e) => Err(e),
        },
        other => other,
    };
    file.map_err(|e| Error::io("cannot open lock file", path, e))
}

/// Take the exclusive lock on `path` if nobody holds it.
pub fn try_take(path: &Path) -> Result<Option<File>> {
    let file = open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(Error::io("cannot lock", path, e)),
    }
}

/// An exclusive lock only this process may hold (`spawn.lock`), let go
/// explicitly when dropped, not only by closing our descriptor: a child the
/// host forks meanwhile (Python's `multiprocessing`, a prefork server)
/// shares the open file, and would otherwise hold the lock for as long as
/// it lives, failing every start and stop of the user's.
#[derive(Debug)]
pub struct OwnLock(File);

impl From<File> for OwnLock {
    fn from(file: File) -> OwnLock {
        OwnLock(file)
    }
}

impl Drop for OwnLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Whether someone holds the lock on `path`. A missing file is not held.
/// The probe takes a *shared* lock for an instant when the lock is free, so
/// probes never block each other; a service taking the lock at that very
/// instant retries (see [`take_soon`]).
///
/// It opens the file read-only (a flock needs no more): closing a file
/// opened for writing is a change event (`IN_CLOSE_WRITE`) to every watch
/// of the state dir, and watches that look when woken woke each other in
/// a loop, thousands of looks a second.
pub fn is_held(path: &Path) -> Result<bool> {
    let file = match OpenOptions::new().read(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("cannot open lock file", path, e)),
    };
    // Read-only, a directory opens too (as a lock file, it failed to):
    // said as the error every open of the lock file meets.
    if file.metadata().is_ok_and(|meta| meta.is_dir()) {
        let is_a_dir = std::io::Error::from_raw_os_error(libc::EISDIR);
        return Err(Error::io("cannot open lock file", path, is_a_dir));
    }
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(Error::io("cannot lock", path, e)),
    }
}

/// How long an exclusive taker keeps retrying while the lock may only be
/// held for an instant by a probe ([`is_held`], [`wait_released`]).
pub const PROBE_GRACE: Duration = Duration::from_millis(200);

/// Take the exclusive lock on `path`, retrying for [`PROBE_GRACE`]: a
/// probe holds it shared for microseconds, a real holder for much longer.
/// Blocking (for the service side, before its runtime serves).
pub fn take_soon(path: &Path) -> Result<Option<File>> {
    let until = std::time::Instant::now() + PROBE_GRACE;
    let mut step = Duration::from_micros(200);
    loop {
        if let Some(file) = try_take(path)? {
            return Ok(Some(file));
        }
        if std::time::Instant::now() >= until {
            return Ok(None);
        }
        std::thread::sleep(step);
        step = (step * 2).min(Duration::from_millis(20));
    }
}

/// Wait until nobody holds the lock on `path` exclusively, at most until
/// `deadline`. `Ok(false)` when it was free at once (nothing to wait for);
/// `Ok(true)` after waiting. Polls with a short backoff (1 to 10 ms) rather
/// than blocking a thread in `flock`: a blocked thread cannot be cancelled,
/// so a timed-out or dropped wait would leave it (and its descriptor)
/// behind, and a runtime shutting down would wait for it.
pub async fn wait_released(path: &Path, deadline: tokio::time::Instant) -> Result<bool> {
    let file = open(path)?;
    let mut backoff = Backoff::new(Duration::from_millis(10));
    let mut waited = false;
    loop {
        match file.try_lock_shared() {
            Ok(()) => {
                // Let go at once: a shared hold blocks exclusive takers.
                let _ = file.unlock();
                return Ok(waited);
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(Error::io("cannot lock", path, e)),
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(true);
        }
        waited = true;
        backoff.wait(deadline).await;
    }
}

/// Take the exclusive lock on `path`, waiting (cancellably, as
/// [`wait_released`]) until `deadline`; `None` when it was still held then.
pub async fn take(path: &Path, deadline: tokio::time::Instant) -> Result<Option<File>> {
    let mut backoff = Backoff::new(Duration::from_millis(10));
    loop {
        if let Some(file) = try_take(path)? {
            return Ok(Some(file));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        backoff.wait(deadline).await;
    }
}

/// Replace the lock file at `path` with a fresh one, locked by us, for
/// when the old one is held only by leftovers of a dead service (a helper
/// that inherited its descriptor). They keep their lock on the old,
/// unlinked file; everyone who opens `path` from now on finds ours. Call
/// only under `spawn.lock`, after making sure the service itself is gone.
pub fn replace(path: &Path) -> Result<File> {
    let tmp = path.with_extension(format!("lock.{}.new", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let file = try_take(&tmp)?.ok_or_else(|| {
        Error::new(
            crate::error::ErrorKind::Io,
            format!("cannot lock the new lock file {}", tmp.display()),
        )
    })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("cannot replace the lock file", path, e)
    })?;
    Ok(file)
}

/// Exponential backoff for the few waits that must poll: from about 1 ms up
/// to `max`, so quick events are seen quickly and slow ones cost little.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Start at 1 ms, double up to `max`.
    pub fn new(max: Duration) -> Self {
        Backoff {
            next: Duration::from_millis(1),
            max,
        }
    }

    /// Sleep for the next step, never past `deadline`.
    pub async fn wait(&mut self, deadline: tokio::time::Instant) {
        let until = (tokio::time::Instant::now() + self.next).min(deadline);
        tokio::time::sleep_until(until).await;
        self.next = (self.next * 2).min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_lock_is_seen_and_freed_on_close() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("instance.lock");
        assert!(!is_held(&path).unwrap(), "missing file is not held");
        let held = try_take(&path).unwrap().expect("free lock");
        assert!(is_held(&path).unwrap());
        assert!(try_take(&path).unwrap().is_none());
        drop(held);
        assert!(!is_held(&path).unwrap());
    }

    #[tokio::test]
    async fn waiter_wakes_when_the_holder_lets_go() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("spawn.lock");
        let far = tokio::time::Instant::now() + Duration::from_secs(30);
        assert!(!wait_released(&path, far).await.unwrap(), "free: no wait");
        let held = try_take(&path).unwrap().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(held);
        });
        let started = std::time::Instant::now();
        assert!(wait_released(&path, far).await.unwrap());
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "it waited for the holder"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "and woke when it let go"
        );
        release.join().unwrap();
    }
}
