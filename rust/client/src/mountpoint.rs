//! Where spfs-fuse-macos mounts its filesystem, and whether something is
//! mounted there.
//!
//! Upstream only logs a failed FUSE mount and serves on (macFUSE missing or
//! not allowed, a mountpoint it cannot use), and `Shutdown`, `umount` or
//! `spfs-fuse-macos service --stop` unmount it while it serves: "answers
//! gRPC" is not "`/spfs` works" (docs/upstream.md). A look at the
//! mountpoint tells the two apart.

use std::path::Path;
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

/// Set while a look runs: a look stuck in the kernel (a hung mount) keeps
/// its thread, and a watch looking twice a second must not pile up more.
static LOOKING: AtomicBool = AtomicBool::new(false);

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
/// program, or when the look does not finish in [`LOOK_TIMEOUT`].
pub(crate) async fn unmounted_warning(config: &Config) -> Option<String> {
    let mountpoint = of(config)?.to_string();
    if LOOKING.swap(true, Ordering::AcqRel) {
        return None;
    }
    let path = mountpoint.clone();
    let mounted = within(LOOK_TIMEOUT, move || {
        let mounted = is_mounted(Path::new(&path));
        LOOKING.store(false, Ordering::Release);
        mounted
    })
    .await
    .flatten();
    (mounted == Some(false)).then(|| {
        format!(
            "nothing is mounted at {mountpoint}: the service answers, but without its \
             filesystem. Its log says why (macFUSE not installed or not allowed in System \
             Settings, a mountpoint it cannot use); `Shutdown`, `umount` or `{UPSTREAM_PROGRAM} \
             service --stop` also unmount it while it runs. Stop the service, fix that, then \
             ensure it again"
        )
    })
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
/// the directory above it. `None` when either cannot be looked at (a
/// missing mountpoint; a mount left behind by a killed service, which
/// fails every look: `doctor` tells those apart). Symlinks are followed
/// first (`/spfs` may be one, made by /etc/synthetic.conf).
fn is_mounted(path: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let path = std::fs::canonicalize(path).ok()?;
    let Some(parent) = path.parent() else {
        return Some(true);
    };
    let here = std::fs::metadata(&path).ok()?;
    let above = std::fs::metadata(parent).ok()?;
    Some(here.dev() != above.dev())
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
    fn a_mount_point_is_told_from_a_plain_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(is_mounted(dir.path()), Some(false));
        // /proc is a filesystem of its own wherever these tests run.
        assert_eq!(is_mounted(Path::new("/proc")), Some(true));
        assert_eq!(is_mounted(Path::new("/")), Some(true));
        assert_eq!(is_mounted(&dir.path().join("missing")), None);
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
