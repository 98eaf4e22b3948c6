//! `flock(2)` locks on files in the state dir.
//!
//! The kernel releases a flock when the last descriptor of its open file is
//! closed, including when the holder dies, so a held `instance.lock` is the
//! truth about whether a service is alive: no pid file can lie about it.
//! We use std's `File::try_lock` (flock on Unix) and never unlock explicitly
//! where a child may share the descriptor: closing our copy is enough, and an
//! explicit unlock would release the child's lock too.

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

/// Whether someone holds the lock on `path`. A missing file is not held.
/// Probing takes the lock for an instant when it is free.
pub fn is_held(path: &Path) -> Result<bool> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("cannot open lock file", path, e)),
    };
    match file.try_lock() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(Error::io("cannot lock", path, e)),
    }
}

/// Wait until nobody holds the lock on `path` exclusively, at most until
/// `deadline`. `Ok(false)` when it was free at once (nothing to wait for);
/// `Ok(true)` after waiting. The wait blocks a pool thread in `flock`, so the
/// kernel wakes every waiter the moment the holder lets go: no polling.
/// (After a timeout that thread stays blocked until the holder lets go.)
pub async fn wait_released(path: &Path, deadline: tokio::time::Instant) -> Result<bool> {
    let file = open(path)?;
    match file.try_lock_shared() {
        // Dropping the file releases the shared lock at once.
        Ok(()) => return Ok(false),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(e)) => return Err(Error::io("cannot lock", path, e)),
    }
    let waiter = tokio::task::spawn_blocking(move || {
        let _ = file.lock_shared();
    });
    let _ = tokio::time::timeout_at(deadline, waiter).await;
    Ok(true)
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
