//! The service's log for one run: rotated if due, opened for appending
//! (never through a symbolic link), with the run's header line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::Paths;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::logs::{self, mark};

/// The service's log for this run: rotated if due, opened for appending
/// (never through a symbolic link), with the run's header line written.
pub(super) struct RunLog {
    /// The service's stdout.
    pub(super) out: File,
    /// The service's stderr: the same file.
    pub(super) err: File,
    /// The log's path.
    pub(super) path: PathBuf,
    /// Where this run's lines start.
    pub(super) start: u64,
    /// Why the log could not be written, when the header failed.
    pub(super) unwritable: Option<String>,
    /// Why the log was not rotated although it may be due: another
    /// running service writes it too (see [`logs::written_by_a_service`]),
    /// or the rotation failed.
    pub(super) not_rotated: Option<String>,
}

impl RunLog {
    /// Rotate the log if due, open it and write this run's header.
    pub(super) fn open(config: &Config, paths: &Paths, program: &Path) -> Result<RunLog> {
        paths.create_log_dir()?;
        let log_path = paths.log_file();
        // The spawner holds `spawn.lock`, so a writer is not this state
        // dir's service.
        let shared = logs::written_by_a_service(&log_path).then(|| {
            format!(
                "another running process writes its log {} too (a service of another state \
                 dir, or a process a service left behind), so it was not rotated and their \
                 lines mix; give each state dir its own log_dir (or SPFS_AUTOSTART_LOG_DIR)",
                log_path.display()
            )
        });
        let not_rotated = shared.or_else(|| {
            let e =
                logs::rotate_if_needed(&log_path, config.log_max_bytes, config.log_keep).err()?;
            tracing::warn!("cannot rotate {}: {e}", log_path.display());
            Some(format!(
                "its log {} could not be rotated ({e}), so it grows past log_max_bytes; \
                 remove what stands in the way",
                log_path.display()
            ))
        });
        let mut log = open_file(&log_path)?;
        // A shared lock on the log's open file, which the service inherits
        // as its output and holds for as long as it (or what inherited its
        // output) lives: how another state dir's spawner knows it writes
        // here. Best effort: a file system without flock just loses that.
        let _ = log.try_lock_shared();
        // Readable by its owner whatever the umask (a no-op when it already is).
        let _ = log.set_permissions(std::fs::Permissions::from_mode(0o600));
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let log_unwritable = write_header(&mut log, &log_path, program, &config.args);
        let stderr = log
            .try_clone()
            .map_err(|e| Error::io("cannot use the service log", &log_path, e))?;
        Ok(RunLog {
            out: log,
            err: stderr,
            path: log_path,
            start: log_start,
            unwritable: log_unwritable,
            not_rotated,
        })
    }
}

/// The log file, opened to append: never through a symbolic link, never
/// anything but a regular file.
fn open_file(log_path: &Path) -> Result<File> {
    // Never through a symlink: whoever could plant one would choose the
    // file the service's output goes to. Never waiting: a FIFO of that
    // name would block the open (and the signals that end us) until a
    // reader came; it is refused below. (Non-blocking changes nothing
    // for a regular file.)
    // Readable too: its header goes on a line of its own (`mark::own_line`).
    let log = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(log_path)
        .map_err(|e| {
            // A directory there is said, with its fix, by `Error::io`.
            let directory = e.kind() == std::io::ErrorKind::IsADirectory;
            let err = Error::io("cannot open the service log", log_path, e);
            if directory {
                return err;
            }
            let hint = match logs::unusable_log_file(log_path) {
                Some(what) => format!("it {what}; remove it"),
                // The file is there and not ours to write (left by a
                // run as root, or made read-only): the dir is not it.
                None if log_path.exists() => "the log file itself is not writable by you; \
                                              remove it (or make it yours and writable)"
                    .into(),
                None => "make the log dir writable or choose another with log_dir \
                         (or SPFS_AUTOSTART_LOG_DIR)"
                    .into(),
            };
            err.with_hint(&hint)
        })?;
    if !log.metadata().is_ok_and(|m| m.is_file()) {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "the service log {} is not a regular file; remove it",
                log_path.display()
            ),
        ));
    }
    Ok(log)
}

/// Write this run's header line (the command line, each word quoted only
/// when it must be, when, and for whom); why it could not be, for the
/// caller to tell.
fn write_header(
    log: &mut File,
    log_path: &Path,
    program: &Path,
    args: &[String],
) -> Option<String> {
    // One header per run: where a run starts, and how many spawns happened.
    let command_line: Vec<String> = std::iter::once(program.display().to_string())
        .chain(args.iter().cloned())
        .map(|word| mark::word(&word))
        .collect();
    let header = mark::line(&format!(
        "{}{} at {}, asked by {}",
        mark::STARTING,
        command_line.join(" "),
        mark::now(),
        mark::caller()
    ));
    // A header that cannot be written means the service's output is lost
    // too (a full disk): it still starts, and the caller is told.
    let header = mark::own_line(log, header);
    log.write_all(header.as_bytes()).err().map(|e| {
        tracing::warn!("cannot write {}: {e}", log_path.display());
        if e.raw_os_error() == Some(libc::EFBIG) {
            // Not the disk: the user's file size limit, which ends
            // a service that writes past it (SIGXFSZ).
            return format!(
                "its log {} could not be written ({e}: the file size limit, `ulimit \
                 -f`), so the service runs without one, unless the limit ends it \
                 (SIGXFSZ); raise the limit, or remove the log",
                log_path.display()
            );
        }
        format!(
            "its log {} could not be written ({e}), so the service runs without one; \
             free space there or choose another log dir with log_dir (or \
             SPFS_AUTOSTART_LOG_DIR)",
            log_path.display()
        )
    })
}
