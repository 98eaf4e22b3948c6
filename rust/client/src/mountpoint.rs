//! Where spfs-fuse-macos mounts its filesystem, and whether something is
//! mounted there.
//!
//! Upstream only logs a failed FUSE mount and serves on (macFUSE missing or
//! not allowed, a mountpoint it cannot use), and `Shutdown`, `umount` or
//! `spfs-fuse-macos service --stop` unmount it while it serves: "answers
//! gRPC" is not "`/spfs` works" (docs/upstream.md). A look at the
//! mountpoint tells the two apart.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::Config;

/// The program SPFS users run: it reports no version, and its arguments
/// `service [MOUNTPOINT]` say where it mounts.
pub(crate) const UPSTREAM_PROGRAM: &str = "spfs-fuse-macos";

/// How long the look at the mountpoint may take before it counts as not
/// known: a FUSE mount whose service hangs answers nothing (`doctor` says
/// so).
const LOOK_TIMEOUT: Duration = Duration::from_secs(1);

/// How long an `ensure` that started the service gives its mount to appear
/// before it warns: upstream listens about 100 ms after asking macFUSE to
/// mount, which may take longer.
const MOUNT_SETTLE: Duration = Duration::from_secs(1);

/// Set while a look runs: a look stuck in the kernel (a hung mount) keeps
/// its thread, and a watch looking twice a second must not pile up more.
static LOOKING: AtomicBool = AtomicBool::new(false);

/// The last verdict, and on which mountpoint (a process watches one), given
/// while a look cannot run or finish (one already under way, a hung mount),
/// so that a watch's warning does not come and go with the looks.
static LAST: Mutex<Option<(String, Mounted)>> = Mutex::new(None);

/// What a look at a mountpoint found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mounted {
    /// A filesystem is mounted there.
    Yes,
    /// The directory is there, with nothing mounted on it.
    No,
    /// There is nothing at that path to mount on.
    Missing,
}

/// Where the configured service mounts: spfs-fuse-macos's MOUNTPOINT when
/// it runs as `service`; `None` for another program, whose arguments say
/// nothing we know of.
pub(crate) fn of(config: &Config) -> Option<&str> {
    let name = Path::new(&config.program).file_name()?;
    (name == UPSTREAM_PROGRAM && config.args.iter().any(|a| a == "service"))
        .then(|| service_mountpoint(&config.args))
}

/// A warning for a running service when nothing is mounted where it mounts
/// (see [`of`]); `None` when something is, when the service is another
/// program, or when nothing is known (no look finished yet).
pub(crate) async fn unmounted_warning(config: &Config) -> Option<String> {
    let mountpoint = of(config)?;
    warning(mountpoint, look(mountpoint).await?)
}

/// [`unmounted_warning`] for a service just started: a mount not there yet
/// is looked for again for up to [`MOUNT_SETTLE`], and no later than the
/// caller's `deadline`.
pub(crate) async fn unmounted_warning_after_start(
    config: &Config,
    deadline: tokio::time::Instant,
) -> Option<String> {
    let mountpoint = of(config)?;
    let deadline = deadline.min(tokio::time::Instant::now() + MOUNT_SETTLE);
    loop {
        let found = look(mountpoint).await?;
        if found != Mounted::No || tokio::time::Instant::now() >= deadline {
            return warning(mountpoint, found);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The warning for what a look at `mountpoint` `found`, if any.
fn warning(mountpoint: &str, found: Mounted) -> Option<String> {
    let why = match found {
        Mounted::Yes => return None,
        Mounted::No => format!("nothing is mounted at {mountpoint}"),
        Mounted::Missing => format!("{mountpoint} does not exist, so nothing is mounted there"),
    };
    Some(format!(
        "{why}: the service answers, but without its filesystem. Its log says why (macFUSE \
         not installed or not allowed in System Settings, a mountpoint it cannot use); \
         `Shutdown`, `umount` or `{UPSTREAM_PROGRAM} service --stop` also unmount it while it \
         runs. Stop the service, fix that, then ensure it again"
    ))
}

/// Look at `mountpoint` on a thread of its own, one look at a time, for up
/// to [`LOOK_TIMEOUT`]; the last verdict on it when a look is already under
/// way or does not finish, `None` when there is none.
async fn look(mountpoint: &str) -> Option<Mounted> {
    let last = || {
        let last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|(path, _)| path == mountpoint)
            .map(|(_, found)| *found)
    };
    if LOOKING.swap(true, Ordering::AcqRel) {
        return last();
    }
    let path = mountpoint.to_string();
    let found = within(LOOK_TIMEOUT, move || {
        let found = is_mounted(Path::new(&path));
        LOOKING.store(false, Ordering::Release);
        found
    })
    .await
    .flatten();
    match found {
        Some(found) => {
            *LAST.lock().unwrap_or_else(|e| e.into_inner()) = Some((mountpoint.to_string(), found));
            Some(found)
        }
        None => last(),
    }
}

/// What to do about the mount a service ended before it listened may have
/// left at `mountpoint`: spfs-fuse-macos catches SIGINT only once its mount
/// is made, and unmounts only once it has served, so one ended while it
/// mounted, or unable to listen, leaves the mount behind.
pub fn left_mount_hint(mountpoint: &str) -> String {
    let word = crate::shell::word(mountpoint);
    format!(
        "if it had mounted {mountpoint}, the mount is left behind: `umount {word}` clears it \
         (`diskutil unmount force {word}` when it is busy)"
    )
}

/// Whether a filesystem is mounted at `path`: it is on another device than
/// the directory above it. `None` when it cannot be looked at (a mount
/// left behind by a killed service fails every look: `doctor` says so).
/// Symlinks are followed first (`/spfs` may be one, made by
/// /etc/synthetic.conf).
fn is_mounted(path: &Path) -> Option<Mounted> {
    use std::os::unix::fs::MetadataExt;
    let path = match std::fs::canonicalize(path) {
        Ok(path) => path,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Mounted::Missing),
        Err(_) => return None,
    };
    let Some(parent) = path.parent() else {
        return Some(Mounted::Yes);
    };
    let here = std::fs::metadata(&path).ok()?;
    let above = std::fs::metadata(parent).ok()?;
    Some(if here.dev() != above.dev() {
        Mounted::Yes
    } else {
        Mounted::No
    })
}

/// What `look` returns, unless it takes longer than `timeout`. It runs on a
/// thread of its own, not the runtime's blocking pool: a look stuck in the
/// kernel (a hung mount) must hold up neither the caller nor the runtime's
/// shutdown, and the thread ends whenever the kernel lets it.
pub(crate) async fn within<T: Send + 'static>(
    timeout: Duration,
    look: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(look());
    });
    tokio::time::timeout(timeout, rx).await.ok()?.ok()
}

/// The mountpoint in spfs-fuse-macos's `service [--stop] [--listen ADDR]
/// [MOUNTPOINT]`: the last word after `service` that is neither an option
/// nor `--listen`'s value; `/spfs` when there is none.
pub(crate) fn service_mountpoint(args: &[String]) -> &str {
    let mut words = args.iter().skip_while(|a| a.as_str() != "service").skip(1);
    let mut mountpoint = "/spfs";
    while let Some(word) = words.next() {
        if word == "--listen" {
            words.next();
        } else if !word.starts_with('-') {
            mountpoint = word;
        }
    }
    mountpoint
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mountpoint_is_the_last_word_after_service_that_is_no_option_or_its_value() {
        let mountpoint = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            service_mountpoint(&args).to_string()
        };
        assert_eq!(mountpoint(&["service", "/spfs"]), "/spfs");
        assert_eq!(mountpoint(&["service"]), "/spfs");
        assert_eq!(mountpoint(&[]), "/spfs");
        assert_eq!(
            mountpoint(&["service", "/mnt/x", "--listen", "127.0.0.1:1"]),
            "/mnt/x"
        );
        assert_eq!(mountpoint(&["service", "--listen", "127.0.0.1:1"]), "/spfs");
        assert_eq!(
            mountpoint(&["service", "--listen=127.0.0.1:1", "/mnt/y"]),
            "/mnt/y"
        );
        assert_eq!(mountpoint(&["-v", "service", "--stop", "/mnt/z"]), "/mnt/z");
    }

    /// A look that hangs (as `stat` on a hung FUSE mount does) is given up
    /// at the timeout, and one that answers is waited for.
    #[tokio::test]
    async fn a_look_that_hangs_is_given_up_at_the_timeout() {
        let started = std::time::Instant::now();
        let hung = within(Duration::from_millis(100), || {
            std::thread::sleep(Duration::from_secs(30));
        })
        .await;
        assert_eq!(hung, None);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(within(Duration::from_secs(10), || 7).await, Some(7));
    }

    #[test]
    fn a_mount_point_is_told_from_a_plain_directory_and_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(is_mounted(dir.path()), Some(Mounted::No));
        assert_eq!(is_mounted(Path::new("/")), Some(Mounted::Yes));
        assert_eq!(
            is_mounted(&dir.path().join("missing")),
            Some(Mounted::Missing)
        );
    }

    /// /proc is a filesystem of its own wherever Linux runs.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_mounted_filesystem_is_told() {
        assert_eq!(is_mounted(Path::new("/proc")), Some(Mounted::Yes));
    }

    #[test]
    fn a_missing_mountpoint_is_said_to_be_missing() {
        let said = warning("/spfs", Mounted::Missing).unwrap();
        assert!(said.starts_with("/spfs does not exist"), "{said}");
        assert!(warning("/spfs", Mounted::Yes).is_none());
    }

    #[test]
    fn only_spfs_fuse_macos_run_as_service_has_a_mountpoint() {
        let config = |program: &str, args: &[&str]| Config {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Config::default()
        };
        assert_eq!(of(&config("spfs-fuse-macos", &["service"])), Some("/spfs"));
        assert_eq!(
            of(&config("/opt/bin/spfs-fuse-macos", &["service", "/mnt/x"])),
            Some("/mnt/x")
        );
        assert_eq!(of(&config("spfs-fuse-macos", &["--version"])), None);
        assert_eq!(of(&config("my-service", &["service", "/spfs"])), None);
    }
}
