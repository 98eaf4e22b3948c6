//! The files an install writes: the LaunchAgents directory, the install lock, and plists
//! staged beside their destination and renamed into place, so a plist on disk is always
//! either the old one or the complete new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::LaunchdError;

/// Creates `<home>/Library/LaunchAgents` when it is missing.
pub(super) fn create_agents_dir(dir: &Path) -> Result<(), LaunchdError> {
    fs::create_dir_all(dir).map_err(|e| {
        LaunchdError::io(
            "create the LaunchAgents directory",
            dir,
            "make sure it is a writable directory owned by you (not a file)",
            e,
        )
    })
}

/// The plist at `path`, or `None` when there is none: what a failed re-install restores.
pub(super) fn read_previous(path: &Path) -> Result<Option<Vec<u8>>, LaunchdError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LaunchdError::io(
            "read the existing plist",
            path,
            "check its permissions, or remove it and install again",
            e,
        )),
    }
}

/// Takes the install lock for `label` (waiting for a concurrent install to finish).
pub(super) fn lock_installs(dir: &Path, label: &str) -> Result<File, LaunchdError> {
    let path = dir.join(format!(".{label}.plist.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .and_then(|file| file.lock().map(|()| file))
        .map_err(|e| {
            LaunchdError::io(
                "lock",
                &path,
                "make sure the LaunchAgents directory is writable by you",
                e,
            )
        })?;
    Ok(file)
}

/// Removes `.<label>.plist.<pid>.tmp` files an interrupted install left behind; called under
/// the install lock, so none of them is being written.
pub(super) fn remove_leftovers(dir: &Path, label: &str) {
    let prefix = format!(".{label}.plist.");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A complete, fsynced temporary file next to its destination, not yet renamed into place.
/// Dropped without [`commit`](Self::commit), it is removed: the destination stays as it was.
#[derive(Debug)]
pub(super) struct Staged {
    temp: PathBuf,
    dest: PathBuf,
}

/// Writes `contents` to a temporary file beside `dest` (same directory, so the rename is
/// atomic) and flushes it to disk. On any failure the temporary file is removed.
pub(super) fn stage(dest: &Path, contents: &[u8]) -> Result<Staged, LaunchdError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    // Dot-prefixed and not ending in .plist, so launchd never loads a leftover at login.
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let hint = "make sure the LaunchAgents directory is writable by you and the disk is not full";
    let write = |file: &mut File| -> io::Result<()> {
        // 0644 is launchd's expectation for agent plists; set explicitly so the umask does not
        // decide it.
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
        file.write_all(contents)?;
        file.sync_all()
    };
    // A leftover from a crashed earlier run of the same pid would make create_new fail.
    let _ = fs::remove_file(&temp);
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&temp)
        .and_then(|mut file| write(&mut file));
    match result {
        Ok(()) => Ok(Staged {
            temp,
            dest: dest.to_owned(),
        }),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(LaunchdError::io("write", dest, hint, e))
        }
    }
}

impl Staged {
    /// Renames the staged file over its destination and persists the rename.
    pub(super) fn commit(self) -> Result<(), LaunchdError> {
        // On failure the drop removes the staged file.
        if let Err(e) = fs::rename(&self.temp, &self.dest) {
            return Err(LaunchdError::io(
                "replace",
                &self.dest,
                "make sure the LaunchAgents directory is writable by you",
                e,
            ));
        }
        // Persist the rename itself; without this a crash could bring back the old name.
        if let Some(dir) = self.dest.parent()
            && let Ok(dir) = File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Gone already once committed (renamed away): then this finds nothing.
        let _ = fs::remove_file(&self.temp);
    }
}
