//! The program the service runs: found, executable, its version; and on
//! macOS, macFUSE and the mountpoint the service is given.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Finding, Severity, finding};
#[cfg(target_os = "macos")]
use crate::client::ServiceManager;
use crate::config::Config;
use crate::mountpoint::UPSTREAM_PROGRAM;
#[cfg(target_os = "macos")]
use crate::mountpoint::{service_mountpoint, within};
use crate::remedy::{Operation, Remedy};

/// How long the program's `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(3);

/// Found where, executable, and its version; and whether its arguments
/// send it to listen elsewhere than the endpoint.
pub(super) fn check_program(config: &Config, findings: &mut Vec<Finding>) -> Option<PathBuf> {
    if let Some(why) = config.listen_conflict() {
        findings.push(
            finding("args", Severity::Problem, why, None).with_remedies([Remedy::SetKey("args")]),
        );
    }
    if let Some(why) = moved_from_where_spfs_looks(config) {
        findings.push(
            finding("endpoint", Severity::Warning, why, None)
                .with_remedies([Remedy::SetKey("endpoint")]),
        );
    }
    if let Some(why) = config.listen_beside_a_unix_endpoint() {
        findings.push(
            finding("args", Severity::Warning, why, None)
                .with_remedies([Remedy::SetKey("endpoint"), Remedy::SetKey("args")]),
        );
    }
    let program = match crate::spawn::find_program(&config.program) {
        Ok(program) => program,
        Err(problem) => {
            findings.push(
                finding(
                    "program",
                    Severity::Problem,
                    problem.what,
                    Some(problem.fix),
                )
                .with_remedies([Remedy::SetKey("program")]),
            );
            return None;
        }
    };
    findings.extend(super::writable_by_others(
        "program",
        &program,
        "whoever can change it runs code as you when the service starts",
    ));
    findings.push(version_finding(config, &program));
    Some(program)
}

/// spfs-fuse-macos on another endpoint than its default: spfs (pull request
/// #1308) looks for it only at that address and, finding nothing there,
/// starts a second one of its own.
fn moved_from_where_spfs_looks(config: &Config) -> Option<String> {
    use spfs_autostart_protocol::endpoint::UPSTREAM_ADDRESS;
    let name = Path::new(&config.program).file_name()?;
    if name != UPSTREAM_PROGRAM || config.endpoint == crate::Endpoint::Tcp(UPSTREAM_ADDRESS) {
        return None;
    }
    Some(format!(
        "the endpoint is {}, not {UPSTREAM_PROGRAM}'s default tcp://{UPSTREAM_ADDRESS}: spfs \
         (pull request #1308) looks for the service only there, and starts a second one of its \
         own when nothing answers; keep the default unless your spfs calls spfs-autostart \
         (docs/spfs-integration.md)",
        config.endpoint
    ))
}

/// The finding for what `program --version` says, against the config's
/// `expected_version`.
fn version_finding(config: &Config, program: &Path) -> Finding {
    match program_version(program) {
        // What ensure would start says another version: a fresh start of a
        // service that reports it fails (`VersionMismatch`), whatever
        // on_version_mismatch says.
        VersionAnswer::Said(version)
            if config
                .expected_version
                .as_deref()
                .is_some_and(|want| !says_version(&version, want)) =>
        {
            let want = config.expected_version.as_deref().unwrap_or_default();
            finding(
                "program",
                Severity::Warning,
                format!(
                    "{} says `{version}`, not expected_version {want}: if the service \
                         reports its version (one that embeds the kit does), a start by ensure \
                         would fail",
                    program.display()
                ),
                Some(
                    "install the expected version, or change expected_version (or program)".into(),
                ),
            )
            .with_remedies([
                Remedy::SetKey("expected_version"),
                Remedy::SetKey("program"),
            ])
        }
        VersionAnswer::Said(version) => finding(
            "program",
            Severity::Ok,
            format!("{} ({version})", program.display()),
            None,
        ),
        // spfs-fuse-macos has no `--version` (its clap command declares
        // none): a usage error from it is no sign of a wrong program.
        VersionAnswer::NoSuchFlag
            if program.file_name() == Some(std::ffi::OsStr::new(UPSTREAM_PROGRAM)) =>
        {
            finding(
                "program",
                Severity::Ok,
                format!(
                    "{} (reports no version: {UPSTREAM_PROGRAM} has no --version)",
                    program.display()
                ),
                None,
            )
        }
        VersionAnswer::NoSuchFlag | VersionAnswer::Nothing => finding(
            "program",
            Severity::Warning,
            format!(
                "{} is there, but `{} --version` did not say its version",
                program.display(),
                program.display()
            ),
            Some("check that it is the service program, not another tool of that name".into()),
        ),
    }
}

/// The `--version` probe under way, by its pid, which leads a process group
/// of its own: for [`end_version_probe`]. Cleared, under this lock, before
/// the probe is reaped, so a pid read here is never one reused.
static PROBE: std::sync::Mutex<Option<u32>> = std::sync::Mutex::new(None);

/// SIGKILL the `--version` probe under way, with all it started (its
/// process group): a command interrupted while `doctor` waited for it
/// (Ctrl-C) must not leave it running, nor the service a wrapper script
/// that ignores its arguments would have started.
pub(crate) fn end_version_probe() {
    let probe = PROBE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pid) = *probe {
        crate::sys::kill_group_and_leader(pid);
    }
}

/// Whether a `--version` line names `version` as a word of its own
/// (`spfs-fuse-macos 0.1.0`, `v0.1.0`, `0.1.0-dev` do not pass for `0.1`).
fn says_version(line: &str, version: &str) -> bool {
    line.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .any(|word| word == version || word.strip_prefix('v') == Some(version))
}

/// What `program --version` answered.
enum VersionAnswer {
    /// The first line it printed.
    Said(String),
    /// Nothing, and it exited with status 2, clap's usage error: a program
    /// without a `--version` flag.
    NoSuchFlag,
    /// Nothing usable: it failed otherwise, printed nothing or did not end
    /// in time.
    Nothing,
}

/// The first line `program --version` prints, within [`VERSION_TIMEOUT`].
/// It runs in a process group of its own, killed whole when it does not
/// finish in time: what it started (a wrapper's `sleep`, even the service)
/// goes with it.
fn program_version(program: &Path) -> VersionAnswer {
    use std::os::unix::process::CommandExt;
    let Ok(mut child) = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
    else {
        return VersionAnswer::Nothing;
    };
    *PROBE.lock().unwrap_or_else(|e| e.into_inner()) = Some(child.id());
    let done = |child: &mut std::process::Child, kill: bool| {
        let mut probe = PROBE.lock().unwrap_or_else(|e| e.into_inner());
        if kill {
            // Not reaped yet: the pid, and the group it leads, are its own.
            crate::sys::kill_group_and_leader(child.id());
        }
        *probe = None;
        drop(probe);
        child.wait().ok()
    };
    let deadline = Instant::now() + VERSION_TIMEOUT;
    // The first line only, not the end of the output: a process the program
    // left in the background may hold the pipe open for as long as it runs.
    let first = child
        .stdout
        .take()
        .map(|stdout| first_line(stdout, deadline))
        .unwrap_or_default();
    loop {
        // Looked at without reaping it (`try_wait` would): its pid stays its
        // own until `done` has cleared it from `PROBE`. Exited, it is a zombie.
        let running = crate::sys::process_info(child.id()).is_some_and(|info| !info.zombie);
        if !running {
            let status = done(&mut child, false);
            if status.is_some_and(|status| status.success()) {
                break;
            }
            return if first.is_empty() && status.and_then(|s| s.code()) == Some(2) {
                VersionAnswer::NoSuchFlag
            } else {
                VersionAnswer::Nothing
            };
        }
        if Instant::now() >= deadline {
            done(&mut child, true);
            return VersionAnswer::Nothing;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    String::from_utf8_lossy(&first)
        .lines()
        .next()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map_or(VersionAnswer::Nothing, |line| {
            VersionAnswer::Said(line.to_string())
        })
}

/// What `pipe` says up to its first newline (at most 4 KiB), its end, or
/// `deadline`, whichever comes first: each read waits only as long as is
/// left.
fn first_line(mut pipe: std::process::ChildStdout, deadline: Instant) -> Vec<u8> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::io::Read;
    use std::os::fd::AsFd;
    let mut line = Vec::new();
    while !line.contains(&b'\n') && line.len() < 4096 {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => break,
            Ok(_) => {
                let mut buf = [0u8; 1024];
                // Ready: this read does not block.
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => line.extend_from_slice(&buf[..n]),
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    line
}

/// How long looking at the mountpoint may take: a FUSE mount whose service
/// is suspended or stuck answers nothing until macFUSE gives up on it (a
/// minute by default).
const MOUNTPOINT_TIMEOUT: Duration = Duration::from_secs(2);

/// macFUSE installed, and the mountpoint the service is given present.
#[cfg(target_os = "macos")]
pub(super) async fn check_macfuse(manager: &ServiceManager, findings: &mut Vec<Finding>) {
    let fs = Path::new("/Library/Filesystems/macfuse.fs");
    if fs.is_dir() {
        findings.push(finding(
            "macFUSE",
            Severity::Ok,
            format!("installed ({})", fs.display()),
            None,
        ));
    } else {
        findings.push(finding(
            "macFUSE",
            Severity::Problem,
            format!("not installed: {} is missing", fs.display()),
            Some(
                "install it: brew install --cask macfuse, then allow it in System Settings".into(),
            ),
        ));
    }
    let mountpoint = service_mountpoint(&manager.config().args).to_string();
    let path = mountpoint.clone();
    let found = within(MOUNTPOINT_TIMEOUT, move || std::fs::metadata(path)).await;
    findings.push(mountpoint_finding(&mountpoint, found));
}

/// The finding for the mountpoint the service is given, from what looking
/// at it `found`. Only a mountpoint that is not there gets the advice to make
/// one: one that cannot be read is most likely the mount a killed service
/// left behind (spfs-fuse-macos killed by SIGTERM or SIGKILL leaves it).
/// `None`: it did not answer within [`MOUNTPOINT_TIMEOUT`].
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn mountpoint_finding(
    mountpoint: &str,
    found: Option<std::io::Result<std::fs::Metadata>>,
) -> Finding {
    let Some(found) = found else {
        return finding(
            "mountpoint",
            Severity::Problem,
            format!(
                "{mountpoint} did not answer within {}s: the filesystem mounted there hangs",
                MOUNTPOINT_TIMEOUT.as_secs()
            ),
            Some(format!(
                "its service is suspended or stuck: stop the service and start it again; if \
                 the mount stays, unmount it with `diskutil unmount force {}`",
                crate::shell::word(mountpoint)
            )),
        )
        .with_remedies([Remedy::Run(Operation::Stop), Remedy::Run(Operation::Ensure)]);
    };
    match found {
        Ok(meta) if meta.is_dir() => finding(
            "mountpoint",
            Severity::Ok,
            format!("{mountpoint} exists"),
            None,
        ),
        Ok(_) => finding(
            "mountpoint",
            Severity::Problem,
            format!("{mountpoint} is not a directory"),
            Some(format!(
                "the service mounts its filesystem on a directory: move what is at \
                 {mountpoint} away, then {}",
                how_to_make(mountpoint)
            )),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => finding(
            "mountpoint",
            Severity::Problem,
            format!("{mountpoint} does not exist"),
            Some(how_to_make(mountpoint)),
        ),
        Err(e) => finding(
            "mountpoint",
            Severity::Problem,
            format!("{mountpoint} cannot be read: {e}"),
            Some(format!(
                "if the service was stopped by force or crashed, this is most likely the \
                 mount it left behind: unmount it with `umount {word}` (`diskutil \
                 unmount force {word}` when it is busy), then start the service again",
                word = crate::shell::word(mountpoint)
            )),
        ),
    }
}

/// How to make the directory `mountpoint`. macOS's root is read-only: a
/// directory right under it is made by a line in /etc/synthetic.conf and a
/// reboot; anywhere else, by `mkdir`.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn how_to_make(mountpoint: &str) -> String {
    let under_root = mountpoint
        .trim_end_matches('/')
        .strip_prefix('/')
        .filter(|name| !name.is_empty() && !name.contains('/'));
    match under_root {
        // spk's own setup does it for its default.
        Some("spfs") => "add `spfs` to /etc/synthetic.conf and reboot (spk's `make -f \
                         Makefile.macos setup-spfs-mount` does this)"
            .into(),
        Some(name) => format!(
            "add `{name}` to /etc/synthetic.conf and reboot (the root of the disk is \
             read-only on macOS)"
        ),
        None => format!("create it: `mkdir -p {}`", crate::shell::word(mountpoint)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_mountpoint_is_told_to_be_made_and_an_unreadable_one_to_be_unmounted() {
        let dir = tempfile::tempdir().unwrap();
        let there = dir.path().display().to_string();
        let ok = mountpoint_finding(&there, Some(std::fs::metadata(dir.path())));
        assert_eq!((ok.severity, ok.fix), (Severity::Ok, None));

        let missing = dir.path().join("spfs");
        let missing = mountpoint_finding("/spfs", Some(std::fs::metadata(&missing)));
        assert_eq!(missing.severity, Severity::Problem);
        assert_eq!(missing.summary, "/spfs does not exist");
        assert!(
            missing
                .fix
                .unwrap()
                .contains("add `spfs` to /etc/synthetic.conf")
        );
        // Another mountpoint is made its own way.
        let missing = dir.path().join("elsewhere");
        let other = |mountpoint| mountpoint_finding(mountpoint, Some(std::fs::metadata(&missing)));
        let fix = other("/mnt/spfs").fix.unwrap();
        assert_eq!(fix, "create it: `mkdir -p /mnt/spfs`");
        let fix = other("/spfs/").fix.unwrap();
        assert!(
            fix.starts_with("add `spfs` to /etc/synthetic.conf"),
            "{fix}"
        );
        let fix = other("/layers").fix.unwrap();
        assert!(
            fix.starts_with("add `layers` to /etc/synthetic.conf"),
            "{fix}"
        );
        assert!(!fix.contains("spk"), "{fix}");

        // What a mount whose filesystem process is gone answers (macFUSE:
        // "Device not configured"; Linux FUSE: "not connected").
        for errno in [libc::ENXIO, libc::ENOTCONN, libc::EIO] {
            let dead =
                mountpoint_finding("/spfs", Some(Err(std::io::Error::from_raw_os_error(errno))));
            assert_eq!(dead.severity, Severity::Problem, "{errno}");
            assert!(
                dead.summary.starts_with("/spfs cannot be read: "),
                "{}",
                dead.summary
            );
            let fix = dead.fix.unwrap();
            assert!(fix.contains("umount /spfs"), "{fix}");
            assert!(!fix.contains("synthetic.conf"), "{fix}");
        }

        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let not_dir = mountpoint_finding("/spfs", Some(std::fs::metadata(&file)));
        assert_eq!(not_dir.severity, Severity::Problem);
        assert_eq!(not_dir.summary, "/spfs is not a directory");

        let hung = mountpoint_finding("/spfs", None);
        assert_eq!(hung.severity, Severity::Problem);
        assert!(
            hung.summary.contains("did not answer within 2s"),
            "{}",
            hung.summary
        );
        assert_eq!(
            hung.remedies,
            [Remedy::Run(Operation::Stop), Remedy::Run(Operation::Ensure)]
        );
    }

    #[test]
    fn only_spfs_fuse_macos_away_from_its_default_address_is_said_to_be_moved() {
        let config = |program: &str, endpoint: &str| Config {
            program: program.into(),
            endpoint: endpoint.parse().unwrap(),
            ..Config::default()
        };
        let moved = |c: &Config| moved_from_where_spfs_looks(c).is_some();
        assert!(moved(&config("spfs-fuse-macos", "tcp://127.0.0.1:40000")));
        assert!(moved(&config("/opt/spfs-fuse-macos", "unix")));
        assert!(!moved(&config("spfs-fuse-macos", "tcp://127.0.0.1:37738")));
        assert!(!moved(&config("my-service", "tcp://127.0.0.1:40000")));
    }

    #[test]
    fn a_version_is_a_word_of_its_own() {
        assert!(says_version("spfs-fuse-macos 0.1.0", "0.1.0"));
        assert!(says_version("spfs-fuse-macos v0.1.0 (abc123)", "0.1.0"));
        assert!(!says_version("spfs-fuse-macos 0.1.0", "0.1"));
        assert!(!says_version("spfs-fuse-macos 0.1.0-dev", "0.1.0"));
        assert!(!says_version("spfs-fuse-macos 10.1.0", "0.1.0"));
    }
}
