//! The directories the service needs: the state dir (socket, locks, record)
//! and the log dir, with the log in it.

use std::path::Path;

use super::{Finding, Severity, finding};
use crate::client::ServiceManager;
use crate::remedy::{Operation, Remedy};

/// Less free space than this in the log dir is worth a warning.
const LOW_SPACE_BYTES: u64 = 100 * 1024 * 1024;

/// Owner and mode (the same check every command makes).
pub(super) fn check_state_dir(manager: &ServiceManager, findings: &mut Vec<Finding>) -> bool {
    let dir = &manager.paths().state_dir;
    match manager.paths().check_state_dir() {
        // `ensure` would fail to create it or to write in it (a read-only
        // file system), as the finding says.
        Ok(exists) => match unwritable(dir) {
            // A service that runs there can still be used (and looked at):
            // only a start needs to write.
            Some(why) => {
                findings.push(
                    finding(
                        "state dir",
                        Severity::Problem,
                        why,
                        Some(
                            "choose a state dir you can write with state_dir (or \
                             SPFS_AUTOSTART_STATE_DIR)"
                                .into(),
                        ),
                    )
                    .with_remedies([Remedy::SetKey("state_dir")]),
                );
                exists
            }
            None if exists => {
                findings.push(finding(
                    "state dir",
                    Severity::Ok,
                    format!("{} (private, yours)", dir.display()),
                    None,
                ));
                true
            }
            None => {
                findings.push(finding(
                    "state dir",
                    Severity::Ok,
                    format!(
                        "{} does not exist yet; ensure creates it 0700",
                        dir.display()
                    ),
                    None,
                ));
                true
            }
        },
        // The message names the directory and the fix (`chmod` only where
        // that cannot break anyone else's use of it).
        Err(e) => {
            findings.push(
                finding("state dir", Severity::Problem, e.to_string(), None)
                    .with_remedies([Remedy::SetKey("state_dir")]),
            );
            false
        }
    }
}

/// Exists or can be made, is ours alone (the same check `ensure` makes),
/// and has room.
pub(super) fn check_log_dir(manager: &ServiceManager, findings: &mut Vec<Finding>) {
    let log = manager.paths().log_file();
    let Some(dir) = log.parent() else { return };
    if let Err(e) = manager.paths().check_log_dir() {
        // The message names the directory and the fix.
        findings.push(
            finding("log dir", Severity::Problem, e.to_string(), None)
                .with_remedies(e.remedies().iter().copied()),
        );
        return;
    }
    // The log file itself, as `ensure` opens it: never through a link,
    // and only a regular file.
    if let Some(what) = crate::logs::unusable_log_file(&log) {
        findings.push(finding(
            "log dir",
            Severity::Problem,
            format!("the service log {} {what}", log.display()),
            Some(format!("remove {}", log.display())),
        ));
        return;
    }
    // A log left by a run as root (or made read-only): `ensure` cannot
    // open it, whatever the directory allows.
    if log.exists()
        && let Err(e) = nix::unistd::access(&log, nix::unistd::AccessFlags::W_OK)
    {
        findings.push(finding(
            "log dir",
            Severity::Problem,
            format!(
                "the service log {} is not writable by you ({e})",
                log.display()
            ),
            Some(format!(
                "remove {} (or make it yours and writable)",
                log.display()
            )),
        ));
        return;
    }
    if let Some(why) = unwritable(dir) {
        findings.push(
            finding(
                "log dir",
                Severity::Problem,
                why,
                Some(
                    "choose a log dir you can write with log_dir (or SPFS_AUTOSTART_LOG_DIR)"
                        .into(),
                ),
            )
            .with_remedies([Remedy::SetKey("log_dir")]),
        );
        return;
    }
    let existing = dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("/"));
    let free = nix::sys::statvfs::statvfs(existing).map(|fs| free_bytes(&fs));
    match free {
        Ok(free) if free < LOW_SPACE_BYTES => {
            findings.push(finding(
                "log dir",
                Severity::Warning,
                match free {
                    0 => format!("{}: no space left", dir.display()),
                    free => format!("{}: only {} free", dir.display(), size(free)),
                },
                Some("free some space; a full disk loses the service's log".into()),
            ));
        }
        _ => findings.push(finding(
            "log dir",
            Severity::Ok,
            if existing == dir {
                format!("{}", dir.display())
            } else {
                format!("{} does not exist yet; ensure creates it", dir.display())
            },
            None,
        )),
    }
}

/// The log, when it is over `log_max_bytes`: for a running service
/// (`running`), always (a log is rotated only when we spawn the service, so
/// a run that lasts, spfs-fuse-macos never exits when idle, or one launchd
/// started writes past the limit); where none runs, only when the next
/// start could not rotate it ([`crate::logs::blocked_by`]).
pub(super) fn check_log_size(manager: &ServiceManager, running: bool, findings: &mut Vec<Finding>) {
    let log = manager.paths().log_file();
    let config = manager.config();
    let blocker = crate::logs::blocked_by(&log, config.log_keep);
    if !running && blocker.is_none() {
        return;
    }
    let len = std::fs::symlink_metadata(&log).map_or(0, |meta| meta.len());
    findings.extend(oversized_log(
        &log,
        len,
        config.log_max_bytes,
        blocker.as_deref(),
    ));
}

/// For a state dir where no service runs: its log, when a running process
/// writes it all the same (a service of another state dir with this log
/// dir, or a process such a service left behind). The next start here
/// would mix their lines and could not rotate it (`ensure` warns then).
pub(super) fn check_shared_log(manager: &ServiceManager, findings: &mut Vec<Finding>) {
    let log = manager.paths().log_file();
    if !crate::logs::written_by_a_service(&log) {
        return;
    }
    findings.push(
        finding(
            "log",
            Severity::Warning,
            format!(
                "no service runs here, but another running process writes the service log {} \
                 (a service of another state dir, or a process a service left behind): a start \
                 here would mix their lines and could not rotate it",
                log.display()
            ),
            Some("give each state dir its own log_dir (or SPFS_AUTOSTART_LOG_DIR)".into()),
        )
        .with_remedies([Remedy::SetKey("log_dir")]),
    );
}

/// The log at `log` is `len` bytes, more than `max_bytes`; `blocker`:
/// what stops its rotation, if anything does.
fn oversized_log(log: &Path, len: u64, max_bytes: u64, blocker: Option<&Path>) -> Option<Finding> {
    if len <= max_bytes {
        return None;
    }
    let over = format!(
        "the service log {} is {}, more than log_max_bytes ({})",
        log.display(),
        size(len),
        size(max_bytes)
    );
    if let Some(blocker) = blocker {
        return Some(finding(
            "log",
            Severity::Warning,
            format!(
                "{over}, and no start can rotate it: {} is a directory where a rotated run goes",
                blocker.display()
            ),
            Some(format!(
                "remove {}; the next start rotates the log",
                blocker.display()
            )),
        ));
    }
    Some(
        finding(
            "log",
            Severity::Warning,
            format!(
                "{over}: it is rotated only when spfs-autostart starts the service, and a \
                 service that runs long (or that launchd starts) writes past it"
            ),
            Some(
                "stop the service when nothing uses it: the next ensure starts it again and \
                 rotates the log first; or raise log_max_bytes"
                    .into(),
            ),
        )
        .with_remedies([
            Remedy::Run(Operation::Stop),
            Remedy::SetKey("log_max_bytes"),
        ]),
    )
}

/// `bytes` for people: "57.3 MiB", "4.9 KiB", "100 bytes".
fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    match bytes {
        b if b >= MIB => format!("{:.1} MiB", b as f64 / MIB as f64),
        b if b >= KIB => format!("{:.1} KiB", b as f64 / KIB as f64),
        b => format!("{b} bytes"),
    }
}

/// Why `dir` cannot be written, or made, by us: it, or the nearest of its
/// parents that exists, does not let us add entries. `None` when it can.
fn unwritable(dir: &Path) -> Option<String> {
    use nix::unistd::{AccessFlags, access};
    let existing = dir.ancestors().find(|d| d.exists())?;
    let e = access(existing, AccessFlags::W_OK | AccessFlags::X_OK).err()?;
    Some(if existing == dir {
        format!(
            "{} is not writable by you ({e}); ensure could not start the service there",
            dir.display()
        )
    } else {
        format!(
            "{} does not exist, and {} does not let you create it ({e}); ensure would fail",
            dir.display(),
            existing.display()
        )
    })
}

/// Bytes an unprivileged user may still write. The field types differ
/// between platforms (32-bit block counts on macOS), so the conversions that
/// are identities here are not elsewhere.
#[allow(clippy::useless_conversion)]
fn free_bytes(fs: &nix::sys::statvfs::Statvfs) -> u64 {
    u64::from(fs.blocks_available()) * u64::from(fs.fragment_size())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_over_log_max_bytes_is_a_warning_with_its_size_and_the_fix() {
        let log = Path::new("/logs/service.log");
        assert!(oversized_log(log, 10 * 1024 * 1024, 10 * 1024 * 1024, None).is_none());
        let found = oversized_log(log, 60_083_405, 10 * 1024 * 1024, None).expect("a warning");
        assert_eq!(found.severity, Severity::Warning);
        assert!(
            found.summary.starts_with(
                "the service log /logs/service.log is 57.3 MiB, more than log_max_bytes (10.0 MiB)"
            ),
            "{}",
            found.summary
        );
        assert_eq!(
            found.remedies,
            [
                Remedy::Run(Operation::Stop),
                Remedy::SetKey("log_max_bytes")
            ]
        );
        // A directory where a rotated run goes: stopping would not help.
        let blocked = oversized_log(
            log,
            60_083_405,
            10 * 1024 * 1024,
            Some(Path::new("/logs/service.log.3")),
        )
        .expect("a warning");
        assert!(
            blocked.summary.contains("no start can rotate it"),
            "{}",
            blocked.summary
        );
        assert_eq!(
            blocked.fix.as_deref(),
            Some("remove /logs/service.log.3; the next start rotates the log")
        );
        assert!(blocked.remedies.is_empty());
        assert_eq!(size(5000), "4.9 KiB");
        assert_eq!(size(100), "100 bytes");
    }
}
