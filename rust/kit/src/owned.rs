//! What a serving kit owns in its state dir: the `instance.lock` it holds
//! and the socket it bound, each known by device and inode, so that it
//! touches only those. The dir may be removed, or removed and made again
//! with another service there, under a running service (a tmp cleaner, the
//! end of a login session removing `$XDG_RUNTIME_DIR`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use spfs_autostart_protocol::paths::Paths;

use crate::lifetime::Lifetime;

/// How often a serving kit checks that its state dir still leads to it: a
/// `stat` or two, twice a minute (bench row 5 counts an idle service's CPU).
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(30);

/// A file's device and inode: which file it is, whatever its path.
type FileId = (u64, u64);

fn file_id(meta: Option<&std::fs::Metadata>) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    meta.map(|m| (m.dev(), m.ino()))
}

/// `path` with the file there now.
fn identified(path: PathBuf) -> (PathBuf, Option<FileId>) {
    let id = file_id(std::fs::symlink_metadata(&path).ok().as_ref());
    (path, id)
}

/// The files of one serving instance.
#[derive(Clone, Debug)]
pub(crate) struct Owned {
    paths: Paths,
    /// The `instance.lock` it holds (a descriptor of its own, which keeps
    /// the lock no longer than the one the kit keeps open) and which file
    /// it is; `None` when that could not be told, and then nothing in the
    /// dir counts as its own.
    lock: Option<(Arc<File>, FileId)>,
    /// The socket it bound itself, and which file it was (launchd's and
    /// systemd's sockets are theirs).
    socket: Option<(PathBuf, Option<FileId>)>,
    /// The quick look's socket (`info.sock`), once bound.
    info_socket: Option<(PathBuf, Option<FileId>)>,
}

impl Owned {
    /// What this instance owns now: the lock `instance_lock` holds and the
    /// socket at `bound`, the path it bound (if it bound one).
    pub(crate) fn now(paths: Paths, instance_lock: &File, bound: Option<PathBuf>) -> Owned {
        let socket = bound.map(identified);
        let lock = instance_lock.try_clone().ok().and_then(|file| {
            let id = file_id(file.metadata().ok().as_ref())?;
            Some((Arc::new(file), id))
        });
        Owned {
            lock,
            paths,
            socket,
            info_socket: None,
        }
    }

    /// This, owning the quick look's socket at `path` too, which it bound.
    pub(crate) fn with_info_socket(mut self, path: PathBuf) -> Owned {
        self.info_socket = Some(identified(path));
        self
    }

    /// The state dir's paths.
    pub(crate) fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Whether the state dir's `instance.lock` is still the file this
    /// service holds: only then are its record and socket this service's
    /// to write and remove. The held file must still be linked: a file
    /// made where it was removed may get its inode number.
    pub(crate) fn holds_the_lock(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some((file, id)) = &self.lock else {
            return false;
        };
        file.metadata().is_ok_and(|m| m.nlink() > 0)
            && file_id(std::fs::metadata(self.paths.instance_lock()).ok().as_ref()) == Some(*id)
    }

    /// Remove the sockets it bound, if it still holds the lock and each path
    /// is still that socket, not one a successor made there.
    pub(crate) fn remove_sockets(&self) {
        if !self.holds_the_lock() {
            return;
        }
        for (path, id) in [&self.socket, &self.info_socket].into_iter().flatten() {
            if id.is_some() && file_id(std::fs::symlink_metadata(path).ok().as_ref()) == *id {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Why no new client can find this service through its state dir, if
    /// none can: its lock file or its socket was removed or replaced.
    pub(crate) fn lost(&self) -> Option<String> {
        if self.lock.is_some() && !self.holds_the_lock() {
            return Some(gone(
                &self.paths.instance_lock(),
                "the lock this service holds",
            ));
        }
        match &self.socket {
            Some((path, id @ Some(_)))
                if file_id(std::fs::symlink_metadata(path).ok().as_ref()) != *id =>
            {
                Some(gone(path, "the socket this service listens on"))
            }
            _ => None,
        }
    }

    /// Check every `every` that the state dir still leads to this service;
    /// once it does not, the service exits as soon as it is idle
    /// ([`Lifetime::exit_when_idle`]): nobody can start using it, and a
    /// start of the service finds the state dir free and starts another.
    /// Ends then, or with the task that runs it.
    pub(crate) async fn watch(self, lifetime: Arc<Lifetime>, every: Duration) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Some(why) = self.lost() {
                lifetime.exit_when_idle(why);
                return;
            }
        }
    }
}

/// "`path` is no longer `what` (its state dir was removed or emptied)".
fn gone(path: &Path, what: &str) -> String {
    let how = if std::fs::symlink_metadata(path).is_ok() {
        "was replaced"
    } else {
        "was removed"
    };
    format!(
        "{} is no longer {what}: it {how} (the state dir {} was removed or emptied), so no \
         new client can find this service",
        path.display(),
        path.parent().unwrap_or(Path::new("/")).display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_millis(10);

    /// A state dir with an `instance.lock` and a socket bound in it.
    fn owned(dir: &Path) -> (Owned, std::os::unix::net::UnixListener) {
        let paths = Paths {
            state_dir: dir.to_path_buf(),
            log_dir: PathBuf::new(),
        };
        let lock = File::create(paths.instance_lock()).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(paths.socket()).unwrap();
        (
            Owned::now(paths.clone(), &lock, Some(paths.socket())),
            listener,
        )
    }

    /// Whether the lifetime's idle timer asks for shutdown within 10 s.
    async fn shuts_down(life: &Arc<Lifetime>) -> bool {
        tokio::time::timeout(Duration::from_secs(10), life.shutdown_requested())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_removed_state_dir_makes_an_idle_service_exit_despite_its_idle_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let (owned, _listener) = owned(&state);
        let life = Lifetime::for_tests(Duration::from_secs(3600));
        let _timer = tokio::spawn(life.clone().run_idle_timer());
        let watch = tokio::spawn(owned.watch(life.clone(), EVERY));
        // Serving, with its dir in place: several checks pass, no exit.
        tokio::time::sleep(EVERY * 10).await;
        assert!(!life.is_shutting_down());
        std::fs::remove_dir_all(&state).unwrap();
        assert!(shuts_down(&life).await, "no exit after the state dir went");
        let reason = life.shutdown_requested().await;
        assert!(
            reason.contains("instance.lock") && reason.contains("was removed"),
            "{reason}"
        );
        watch.await.unwrap();
    }

    #[tokio::test]
    async fn a_service_whose_lock_was_replaced_exits_once_its_call_ends_even_without_an_idle_timeout()
     {
        let dir = tempfile::tempdir().unwrap();
        let (owned, _listener) = owned(dir.path());
        let life = Lifetime::for_tests(Duration::ZERO);
        let _timer = tokio::spawn(life.clone().run_idle_timer());
        let call = life.call_started();
        // A successor's lock: the dir was emptied and a start made it again.
        std::fs::remove_file(owned.paths().instance_lock()).unwrap();
        File::create(owned.paths().instance_lock()).unwrap();
        tokio::spawn(owned.clone().watch(life.clone(), EVERY));
        tokio::time::sleep(EVERY * 10).await;
        assert!(!life.is_shutting_down(), "it exited under a call in flight");
        drop(call);
        assert!(shuts_down(&life).await, "no exit once the call ended");
        assert!(life.shutdown_requested().await.contains("was replaced"));
        // Nor is the socket at the path its own to remove any more.
        owned.remove_sockets();
        assert!(owned.paths().socket().exists());
    }

    #[test]
    fn a_lock_file_made_with_the_old_ones_inode_number_is_not_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (mut owned, _listener) = owned(dir.path());
        let path = owned.paths().instance_lock();
        std::fs::remove_file(&path).unwrap();
        File::create(&path).unwrap();
        // As if the new file had got the removed one's inode number, which
        // a file system may hand out again at once.
        let new_id = file_id(std::fs::metadata(&path).ok().as_ref()).unwrap();
        owned.lock.as_mut().unwrap().1 = new_id;
        assert!(!owned.holds_the_lock());
        assert!(owned.lost().unwrap().contains("was replaced"));
    }

    #[tokio::test]
    async fn a_removed_socket_makes_it_exit() {
        let dir = tempfile::tempdir().unwrap();
        let (owned, _listener) = owned(dir.path());
        assert!(owned.holds_the_lock());
        assert_eq!(owned.lost(), None);
        std::fs::remove_file(owned.paths().socket()).unwrap();
        let lost = owned.lost().expect("the socket went");
        assert!(
            lost.contains("service.sock") && lost.contains("was removed"),
            "{lost}"
        );
        let life = Lifetime::for_tests(Duration::from_secs(3600));
        let _timer = tokio::spawn(life.clone().run_idle_timer());
        tokio::spawn(owned.watch(life.clone(), EVERY));
        assert!(shuts_down(&life).await);
    }
}
