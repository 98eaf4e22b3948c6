//! Where a service's files live, and the checks that make them safe to use.
//!
//! The state dir holds the socket and the locks, so whoever can write it can
//! impersonate the service. It must be a real directory owned by the caller
//! with no group or other bits; we never chmod a directory we did not just
//! create, because it might be someone else's.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::endpoint::{Endpoint, ResolvedEndpoint};
use crate::error::{Error, ErrorKind, Result};
use crate::remedy::Remedy;

/// The per-user files of one managed service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// Holds the socket, the locks and the pid record.
    pub state_dir: PathBuf,
    /// Holds `service.log` and its rotated predecessors.
    pub log_dir: PathBuf,
}

/// The instance lock's file name in a state dir.
const INSTANCE_LOCK: &str = "instance.lock";

impl Paths {
    /// The paths configured (`state_dir`, `log_dir`), else the per-user
    /// defaults.
    pub fn resolve(state_dir: Option<&Path>, log_dir: Option<&Path>) -> Result<Paths> {
        let env = crate::env::process_env;
        let state_dir = match state_dir {
            Some(dir) => dir.to_path_buf(),
            None => default_state_dir(&env),
        };
        let log_dir = match log_dir {
            Some(dir) => dir.to_path_buf(),
            None => default_log_dir(&env).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    "cannot find a log dir: HOME is not set (or is not an absolute UTF-8 path); set \
                     SPFS_AUTOSTART_LOG_DIR or log_dir",
                )
            })?,
        };
        Ok(Paths { state_dir, log_dir })
    }

    /// `service.sock`, the default endpoint.
    pub fn socket(&self) -> PathBuf {
        self.state_dir.join("service.sock")
    }

    /// `info.sock`: where a serving kit answers the quick look
    /// ([`crate::quick_info`]).
    pub fn info_socket(&self) -> PathBuf {
        self.state_dir.join("info.sock")
    }

    /// `instance.lock`: held by the service for its whole life.
    pub fn instance_lock(&self) -> PathBuf {
        self.state_dir.join(INSTANCE_LOCK)
    }

    /// `spawn.lock`: held by one spawner during spawn and readiness wait.
    pub fn spawn_lock(&self) -> PathBuf {
        self.state_dir.join("spawn.lock")
    }

    /// `service.json`: the pid record.
    pub fn record(&self) -> PathBuf {
        self.state_dir.join("service.json")
    }

    /// `stopping`: the instance (`PID START_TIME`) a client is stopping
    /// while it holds `spawn.lock`, so that others read a plain service,
    /// which cannot say so itself, as stopping.
    pub fn stopping(&self) -> PathBuf {
        self.state_dir.join("stopping")
    }

    /// `abandoned-start`: the id of a start whose caller gave up on it
    /// (Ctrl-C) after the service's first process had exited and before
    /// its daemon named itself: a kit service that inherited that id
    /// ([`crate::env::SPAWN_ID`]) ends instead of serving.
    pub fn abandoned_start(&self) -> PathBuf {
        self.state_dir.join("abandoned-start")
    }

    /// `start-failed.json`: why the last start failed, for the calls that
    /// waited on it and those that come soon after (the client's).
    pub fn failed_start(&self) -> PathBuf {
        self.state_dir.join("start-failed.json")
    }

    /// `version-restart.json`: the instance a restart for another version
    /// produced that still reported the wrong one (the client's).
    pub fn version_restart(&self) -> PathBuf {
        self.state_dir.join("version-restart.json")
    }

    /// `service.log`.
    pub fn log_file(&self) -> PathBuf {
        self.log_dir.join("service.log")
    }

    /// The endpoint with `unix` resolved to this state dir's socket.
    pub fn endpoint(&self, endpoint: &Endpoint) -> ResolvedEndpoint {
        match endpoint {
            Endpoint::StateDirSocket => ResolvedEndpoint::Unix(self.socket()),
            Endpoint::Unix(path) => ResolvedEndpoint::Unix(path.clone()),
            Endpoint::Tcp(addr) => ResolvedEndpoint::Tcp(*addr),
        }
    }

    /// Create the state dir (`0700`) if missing, then check it is safe.
    pub fn create_state_dir(&self) -> Result<()> {
        create_private_dir(&self.state_dir, "state dir")
    }

    /// Check the state dir if it exists; `Ok(false)` when it does not.
    /// Never creates anything, so `status` and `stop` leave no trace.
    pub fn check_state_dir(&self) -> Result<bool> {
        // One `lstat` for both questions: this runs on every `ensure`.
        match fs::symlink_metadata(&self.state_dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(inspect_error(&self.state_dir, "state dir", e)),
            Ok(meta) => check_private_meta(&self.state_dir, "state dir", &meta).map(|()| true),
        }
    }

    /// Create the log dir (`0700`) if missing. It may be shared for
    /// reading, but nobody else may write it: whoever can create files there
    /// could plant the service log (a link to one of your files) and choose
    /// where the service's output goes.
    pub fn create_log_dir(&self) -> Result<()> {
        create_dir(&self.log_dir, "log dir")?;
        self.check_log_dir().map(drop)
    }

    /// Refuse a state dir, or log dir, that files cannot be created in (a
    /// read-only file system; for root, nothing else): what starting a
    /// service needs, before a lock or the log fails there with the file's
    /// name instead of the setting's. A look or a reader needs neither.
    pub fn check_writable(&self) -> Result<()> {
        check_writable(&self.state_dir, "state dir")?;
        check_writable(&self.log_dir, "log dir")
    }

    /// Check the log dir as [`Paths::create_log_dir`] does, if it exists;
    /// `Ok(false)` when it does not. Never creates anything.
    pub fn check_log_dir(&self) -> Result<bool> {
        let meta = match fs::metadata(&self.log_dir) {
            // A link to nothing: `ensure` would take it for made and fail
            // to open the log in it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return match fs::read_link(&self.log_dir) {
                    Ok(target) => Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!(
                            "log dir {} is a symbolic link to {}, which does not exist; \
                             create {}, or choose another log dir with {}",
                            self.log_dir.display(),
                            target.display(),
                            target.display(),
                            fix_for("log dir")
                        ),
                    )
                    .with_remedy(remedy_for("log dir"))),
                    Err(_) => Ok(false),
                };
            }
            Err(e) => return Err(inspect_error(&self.log_dir, "log dir", e)),
            Ok(meta) => meta,
        };
        if !meta.is_dir() {
            return Err(not_a_directory(&self.log_dir, "log dir"));
        }
        let me = crate::sys::my_uid();
        // A link of one's own (or root's) to a dir elsewhere is fine; one
        // another user made (in a HOME that `sudo -E` kept) would lead our
        // log into a dir of their choosing that passes the owner check below.
        if let Ok(link) = fs::symlink_metadata(&self.log_dir)
            && link.file_type().is_symlink()
            && link.uid() != me
            && link.uid() != 0
        {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "log dir {} is a symbolic link made by uid {}, not by you (uid {me}); \
                     choose a log dir of your own with {}",
                    self.log_dir.display(),
                    link.uid(),
                    fix_for("log dir"),
                ),
            )
            .with_remedy(remedy_for("log dir")));
        }
        let mode = meta.mode() & 0o7777;
        if meta.uid() != me || mode & 0o022 != 0 {
            let chmod = if meta.uid() != me || shared_on_purpose(&self.log_dir, mode) {
                String::new()
            } else {
                format!(
                    ", or run `chmod go-w {}`",
                    crate::shell::word(&self.log_dir)
                )
            };
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "log dir {} (owner uid {}, mode {mode:o}) is not yours alone: another user \
                     could plant the log there and redirect the service's output into your \
                     files; choose a log dir of your own with {}{chmod}",
                    self.log_dir.display(),
                    meta.uid(),
                    fix_for("log dir"),
                ),
            )
            .with_remedy(remedy_for("log dir")));
        }
        Ok(true)
    }
}

fn create_private_dir(dir: &Path, what: &str) -> Result<()> {
    create_dir(dir, what)?;
    check_private_dir(dir, what)
}

/// Refuse a directory we cannot create files in (see
/// [`Paths::check_writable`]).
fn check_writable(dir: &Path, what: &str) -> Result<()> {
    use nix::unistd::{AccessFlags, access};
    match access(dir, AccessFlags::W_OK | AccessFlags::X_OK) {
        // Not made yet: creating it says what is wrong, if anything.
        Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        // A file, or a file among its parents (EACCES, for want of search
        // permission, or ENOTDIR): the check that runs next says so.
        Err(nix::errno::Errno::ENOTDIR) => Ok(()),
        Err(_) if fs::metadata(dir).is_ok_and(|meta| !meta.is_dir()) => Ok(()),
        Err(errno) => Err(Error::new(
            if errno == nix::errno::Errno::EACCES {
                ErrorKind::PermissionDenied
            } else {
                ErrorKind::Io
            },
            format!(
                "{what} {} is not writable ({}); choose a {what} you can write, on a writable \
                 file system, with {}",
                dir.display(),
                std::io::Error::from(errno),
                fix_for(what)
            ),
        )
        .with_remedy(remedy_for(what))),
    }
}

/// A directory (or a parent of it) that cannot be looked at: a parent that
/// is a file, or one the user may not search.
fn inspect_error(dir: &Path, what: &str, e: std::io::Error) -> Error {
    if let Some(error) = under_a_file(dir, what, &e) {
        return error;
    }
    let hint = format!(
        "a part of that path is not a directory you can search; choose another {what} with {}",
        fix_for(what)
    );
    Error::io(format!("cannot inspect {what}"), dir, e)
        .with_hint(&hint)
        .with_remedy(remedy_for(what))
}

/// `ENOTDIR` for `dir`: a file where one of its parents belongs, a setting
/// to change (see [`not_a_directory`]). `None` for any other error.
fn under_a_file(dir: &Path, what: &str, e: &std::io::Error) -> Option<Error> {
    (e.raw_os_error() == Some(libc::ENOTDIR)).then(|| not_a_directory(dir, what))
}

/// `dir` is not a directory, or cannot be one: a setting to change, said
/// with what stands in the way. Only a regular file is advised to be
/// removed (not `/dev/null`).
fn not_a_directory(dir: &Path, what: &str) -> Error {
    let (why, removable) = in_the_way(dir);
    // Another dir first: the path may be a mistake (`--state-dir ~/.zshrc`)
    // and the file precious.
    let remove = if removable {
        "; or, if that file is a leftover, remove it"
    } else {
        ""
    };
    let message = format!(
        "{what} {} {why}; choose another {what} with {}{remove}",
        dir.display(),
        fix_for(what)
    );
    Error::new(ErrorKind::InvalidConfig, message).with_remedy(remedy_for(what))
}

/// Why `dir` is not a directory, said of it: "is not a directory" when it
/// is something else, or "cannot exist: PATH is a file" (or, for a device,
/// socket or FIFO, "PATH is not a directory") when something stands where
/// one of its parents belongs (`ENOTDIR`); and whether what stands there is
/// a regular file of this user's, the only kind worth advising to remove
/// (not `/dev/null`, nor `/etc/passwd` named by mistake).
fn in_the_way(dir: &Path) -> (String, bool) {
    // Without a trailing `/` or `/.`, so that `afile/.` is said as `afile`.
    let dir: PathBuf = dir.components().collect();
    let found = dir.ancestors().find_map(|part| {
        let meta = fs::metadata(part).ok().filter(|meta| !meta.is_dir())?;
        let ours = meta.uid() == crate::sys::my_uid();
        Some((part, meta.is_file(), ours))
    });
    match found {
        Some((part, regular, ours)) if part == dir => {
            ("is not a directory".to_string(), regular && ours)
        }
        Some((part, true, ours)) => (format!("cannot exist: {} is a file", part.display()), ours),
        Some((part, false, _)) => (
            format!("cannot exist: {} is not a directory", part.display()),
            false,
        ),
        // Changed since the error.
        None => ("is not a directory".to_string(), false),
    }
}

/// Create `dir` (and missing parents) with mode `0700` unless something is
/// already there. Each directory we create gets its mode set explicitly,
/// because `mkdir` applies the umask: under umask `0277` it would be `0500`,
/// a directory we could not even create our lock files in.
fn create_dir(dir: &Path, what: &str) -> Result<()> {
    let fail = |e: std::io::Error| {
        if let Some(error) = under_a_file(dir, what, &e) {
            return error;
        }
        Error::new(
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                ErrorKind::PermissionDenied
            } else {
                ErrorKind::Io
            },
            format!(
                "cannot create {what} {}: {e}; choose a writable place with {}",
                dir.display(),
                fix_for(what)
            ),
        )
        .with_remedy(remedy_for(what))
    };
    match fs::symlink_metadata(dir) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    // The missing components, outermost first.
    let mut missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && fs::symlink_metadata(p).is_err())
        .collect();
    missing.reverse();
    for component in missing {
        match DirBuilder::new().mode(0o700).create(component) {
            Ok(()) => {
                fs::set_permissions(component, fs::Permissions::from_mode(0o700)).map_err(fail)?
            }
            // Another process created it a moment ago: theirs to set.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(fail(e)),
        }
    }
    Ok(())
}

/// The config key and variable that move `what` ("log dir" or "state
/// dir"), as the message names them; front ends add their own way (the
/// CLI's `--state-dir`) from the error's remedy.
fn fix_for(what: &str) -> &'static str {
    if what == "log dir" {
        "log_dir (or SPFS_AUTOSTART_LOG_DIR)"
    } else {
        "state_dir (or SPFS_AUTOSTART_STATE_DIR)"
    }
}

/// Whether `dir`, with `mode`, is shared on purpose: the sticky bit
/// (`/tmp`, `/var/tmp`) lets many users keep files in one directory, and
/// the root and its children (`/`, `/home`, `/usr`) are the system's.
/// Closing it would break everyone else's use, so the fix is a directory of
/// one's own, not `chmod`.
fn shared_on_purpose(dir: &Path, mode: u32) -> bool {
    mode & 0o1000 != 0 || dir.components().count() <= 2
}

/// The config key that moves `what`, as the error's remedy.
fn remedy_for(what: &str) -> Remedy {
    Remedy::SetKey(if what == "log dir" {
        "log_dir"
    } else {
        "state_dir"
    })
}

/// Refuse a directory that is not ours alone: wrong type, wrong owner, or
/// group/other permission bits. The message names the path and the fix.
pub fn check_private_dir(dir: &Path, what: &str) -> Result<()> {
    let meta = fs::symlink_metadata(dir).map_err(|e| inspect_error(dir, what, e))?;
    check_private_meta(dir, what, &meta)
}

/// [`check_private_dir`] on metadata already read (with `lstat`).
fn check_private_meta(dir: &Path, what: &str, meta: &fs::Metadata) -> Result<()> {
    if meta.is_symlink() {
        // Refused because whoever can change the link can move our socket
        // and locks; the fix is the path it points to.
        let target = fs::canonicalize(dir)
            .map(|t| format!(" (to {})", t.display()))
            .unwrap_or_default();
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "{what} {} is a symbolic link{target}, which is not followed; give the real \
                 directory with {}",
                dir.display(),
                fix_for(what)
            ),
        )
        .with_remedy(remedy_for(what)));
    }
    if !meta.is_dir() {
        return Err(not_a_directory(dir, what));
    }
    let me = crate::sys::my_uid();
    if meta.uid() != me {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{what} {} belongs to uid {}, not to you (uid {me}); another user may control it. \
                 Choose a {what} of your own with {}",
                dir.display(),
                meta.uid(),
                fix_for(what)
            ),
        )
        .with_remedy(remedy_for(what)));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        let fix = if shared_on_purpose(dir, mode) {
            format!("choose a {what} of your own with {}", fix_for(what))
        } else {
            format!(
                "run `chmod 700 {}`, or choose another {what} with {}",
                crate::shell::word(dir),
                fix_for(what)
            )
        };
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{what} {} has mode {mode:o}, which lets other users in; {fix}",
                dir.display()
            ),
        )
        .with_remedy(remedy_for(what)));
    }
    // Made under a strict umask by an older version: we could not create
    // the socket or the locks in it.
    if mode & 0o700 != 0o700 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{what} {} has mode {mode:o}, which does not let you use it; run `chmod 700 {}`",
                dir.display(),
                crate::shell::word(dir)
            ),
        ));
    }
    Ok(())
}

mod defaults;
mod socket;

#[cfg(test)]
use defaults::live_among;
pub use defaults::{default_log_dir, default_state_dir, live_instances_elsewhere};
pub use socket::check_socket_path;

#[cfg(test)]
mod tests;
