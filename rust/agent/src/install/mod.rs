//! Installing, removing and inspecting the LaunchAgent in `~/Library/LaunchAgents`.
//!
//! The plist file and launchd's loaded job are kept in step: the file is what launchd loads at
//! every login, so a file launchd refused must not stay behind. Hence:
//!
//! - the new plist is written to a temporary file in the same directory, fsynced, and renamed
//!   over `<label>.plist`, so the file is always either the old one or the complete new one;
//! - an already-loaded job is booted out before the new one is bootstrapped, which is how a
//!   re-install (e.g. after a version change) replaces the old job cleanly;
//! - on a re-install, a bootstrap refused while launchd is still unloading the old job (errors
//!   5 and 37) is retried a few times, half a second apart;
//! - after a bootout, install waits (up to [`BOOTOUT_WAIT`]) until launchd reports the old job
//!   gone: a busy kit service drains for up to 5 s before it exits;
//! - if any step after the bootout fails (the wait, the rename, `launchctl bootstrap`), the
//!   file is rolled back: removed when there was none before, the previous contents restored
//!   when there was one, and the old job the bootout removed is loaded again; the error says
//!   what is on disk and loaded now (and how to load the old job when launchd refuses it too);
//! - installs are serialized by a lock file beside the plists (`.<label>.plist.lock`), so two
//!   concurrent installs cannot interleave, and temporary files left by an interrupted install
//!   are removed under that lock;
//! - SIGINT, SIGTERM and SIGHUP are blocked on the calling thread from the bootout to the end of
//!   the bootstrap (or rollback), so an interrupt cannot leave the job unloaded halfway; they
//!   are delivered when install returns (every launchctl call has a deadline, so this is
//!   bounded);
//! - the log file's directory is created (0700) before the job is loaded: neither launchd's
//!   `StandardOutPath` nor systemd's `append:` creates it, and the job would fail to start (the
//!   state dir a socket-mode job's socket goes in is the caller's to make, with the client's
//!   checks);
//! - root is refused: the agent belongs to a user, not to `gui/0`.

mod files;
mod signals;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use files::{Staged, create_agents_dir, lock_installs, read_previous, remove_leftovers, stage};
use signals::BlockedSignals;

use super::{
    AgentSpec, AgentStatus, BootoutOutcome, CommandRunner, Launchctl, LaunchdError, launchd_plist,
    validate_label,
};

/// Where a user's LaunchAgents live: `<home>/Library/LaunchAgents`.
pub fn launch_agents_dir(home: &Path) -> PathBuf {
    home.join("Library").join("LaunchAgents")
}

fn plist_path(home: &Path, label: &str) -> PathBuf {
    launch_agents_dir(home).join(format!("{label}.plist"))
}

/// What [`uninstall`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UninstallOutcome {
    /// Something was removed.
    Removed {
        /// The job was loaded and has been booted out (its process stopped).
        was_loaded: bool,
        /// The plist file existed and has been deleted.
        removed_plist: bool,
    },
    /// Neither a loaded job nor a plist file existed: nothing to do (not an error).
    NotInstalled,
}

/// The agent's state as [`status`] reports it: launchd's view plus the file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentReport {
    /// The job's label.
    pub label: String,
    /// Where its plist is (or would be) installed.
    pub plist_path: PathBuf,
    /// Whether that file exists.
    pub plist_installed: bool,
    /// What launchd reports.
    pub agent: AgentStatus,
}

/// What [`install`] checks before it touches the disk or launchd: the spec is valid, launchd is
/// there, and this is not root. Returns the plist. A caller that must act before an install
/// (stop the running service) checks first, so a refused install leaves the service running.
pub fn check_install<R: CommandRunner>(
    lc: &Launchctl<R>,
    spec: &AgentSpec,
) -> Result<Vec<u8>, LaunchdError> {
    let contents = launchd_plist(spec)?;
    lc.require_available("installing the LaunchAgent")
        .map_err(|e| match e {
            // The units to describe instead are of the mode asked for.
            LaunchdError::Unsupported { operation, .. } => LaunchdError::Unsupported {
                operation,
                socket: spec.mode == crate::AgentMode::Socket,
            },
            e => e,
        })?;
    lc.refuse_root()?;
    Ok(contents)
}

/// Installs the agent: writes `<home>/Library/LaunchAgents/<label>.plist` atomically (mode
/// 0644), boots out a job already loaded under the label, then bootstraps the new plist.
/// Returns the plist's path. [`prepare_install`], then [`PreparedInstall::finish`].
///
/// On failure nothing half-written is left: see the module docs for the rollback.
pub fn install<R: CommandRunner>(
    lc: &Launchctl<R>,
    spec: &AgentSpec,
    home: &Path,
) -> Result<PathBuf, LaunchdError> {
    prepare_install(lc, spec, home)?.finish(lc)
}

/// An install made ready up to the bootout of the old job: checked, the install lock held,
/// the log dir made, the new plist staged beside the old one. Dropping it leaves the plist
/// and launchd as they were (the staged file is removed, the lock let go): a caller that must
/// act right before launchd takes over (stop the running service) acts between
/// [`prepare_install`] and [`finish`](Self::finish), once every step that can fail without
/// touching launchd has passed.
#[derive(Debug)]
pub struct PreparedInstall {
    label: String,
    path: PathBuf,
    previous: Option<Vec<u8>>,
    staged: Staged,
    _lock: std::fs::File,
}

/// The steps of an install before launchd is touched (see [`PreparedInstall`]). Waits for a
/// concurrent install of the same label to finish: a caller that must stay interruptible runs
/// it on a thread of its own.
pub fn prepare_install<R: CommandRunner>(
    lc: &Launchctl<R>,
    spec: &AgentSpec,
    home: &Path,
) -> Result<PreparedInstall, LaunchdError> {
    // Everything that can be checked is checked before the disk or launchd is touched.
    let contents = check_install(lc, spec)?;
    let dir = launch_agents_dir(home);
    let path = plist_path(home, &spec.label);
    create_agents_dir(&dir)?;
    let lock = lock_installs(&dir, &spec.label)?;
    remove_leftovers(&dir, &spec.label);
    if spec.bundle_program.is_none()
        && let Some(log_dir) = spec.log_file.parent()
    {
        create_log_dir(log_dir)?;
    }
    let previous = read_previous(&path)?;
    let staged = stage(&path, &contents)?;
    Ok(PreparedInstall {
        label: spec.label.clone(),
        path,
        previous,
        staged,
        _lock: lock,
    })
}

impl PreparedInstall {
    /// Boots out the job loaded under the label, puts the new plist in place and bootstraps
    /// it; returns the plist's path. A failure after the bootout puts the previous plist back
    /// and loads the old job again.
    pub fn finish<R: CommandRunner>(self, lc: &Launchctl<R>) -> Result<PathBuf, LaunchdError> {
        let PreparedInstall {
            label,
            path,
            previous,
            staged,
            _lock,
        } = self;
        // From the bootout to the end of the bootstrap an interrupt would leave no job loaded.
        let _signals = BlockedSignals::block();
        // The old job must go before the new one can be bootstrapped under the same label.
        // (A failed bootout drops the staged file: the old plist stays.)
        let replaced = lc.bootout(&label)? == BootoutOutcome::Removed;
        // From here a failure puts back what was there: the previous plist, and the job the
        // bootout removed, loaded again.
        if replaced && let Err(e) = wait_until_gone(lc, &label) {
            drop(staged);
            return Err(roll_back(lc, &path, previous.as_deref(), replaced, e));
        }
        if let Err(e) = staged.commit() {
            return Err(roll_back(lc, &path, previous.as_deref(), replaced, e));
        }
        if let Err(e) = bootstrap_after_bootout(lc, &path, replaced) {
            return Err(roll_back(lc, &path, previous.as_deref(), replaced, e));
        }
        Ok(path)
    }
}

/// The log's directory, made and checked as `ensure` makes it (`0700`, yours, nobody else
/// may write it): neither launchd's `StandardOutPath` nor systemd's `append:` creates it, and
/// the job would fail to start.
fn create_log_dir(log_dir: &Path) -> Result<(), LaunchdError> {
    let paths = spfs_autostart_protocol::paths::Paths {
        state_dir: PathBuf::new(),
        log_dir: log_dir.to_path_buf(),
    };
    paths.create_log_dir().map_err(LaunchdError::LogDir)
}

/// After a step of an install failed (`failed`): put the previous file back (or remove the
/// new one when there was none) and, when the bootout removed the old job (`replaced`), load it
/// again. The error returned says what is on disk and loaded now.
fn roll_back<R: CommandRunner>(
    lc: &Launchctl<R>,
    path: &Path,
    previous: Option<&[u8]>,
    replaced: bool,
    failed: LaunchdError,
) -> LaunchdError {
    let rollback = match previous {
        // Still in place when the failure came before the new file took its place.
        Some(bytes) if fs::read(path).is_ok_and(|now| now == bytes) => Ok(()),
        Some(bytes) => stage(path, bytes).and_then(Staged::commit),
        None => match fs::remove_file(path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(LaunchdError::io(
                "remove the refused plist",
                path,
                "delete it by hand",
                err,
            )),
            _ => Ok(()),
        },
    };
    // If the rollback itself fails, its error wins: it names the file left behind, which
    // the user now has to deal with.
    if let Err(rollback_err) = rollback {
        return rollback_err;
    }
    if previous.is_none() {
        return failed;
    }
    // The old job was running before: load it again rather than leave none.
    let reloaded = replaced && lc.bootstrap(path).is_ok();
    failed.with_note(&if reloaded {
        "The previous plist is in place and loaded again".to_owned()
    } else {
        format!(
            "The previous plist is in place but not loaded; `launchctl bootstrap {} {}` loads \
             it again",
            lc.domain(),
            path.display()
        )
    })
}

/// How long install waits for a booted-out job to be gone: longer than the kit's 5 s drain.
pub(crate) const BOOTOUT_WAIT: Duration = Duration::from_secs(10);
const BOOTOUT_POLL: Duration = Duration::from_millis(100);

/// Waits until `launchctl print` no longer knows the job; bootout returns while the old
/// process may still be draining, and a bootstrap then is refused.
fn wait_until_gone<R: CommandRunner>(lc: &Launchctl<R>, label: &str) -> Result<(), LaunchdError> {
    let deadline = Instant::now() + BOOTOUT_WAIT;
    loop {
        if lc.print(label)? == AgentStatus::NotLoaded || Instant::now() >= deadline {
            // Past the deadline the bootstrap retries below still give it a chance.
            return Ok(());
        }
        std::thread::sleep(BOOTOUT_POLL);
    }
}

/// How often, and how long apart, a bootstrap that follows a bootout is retried.
const BOOTSTRAP_RETRIES: u32 = 3;
const BOOTSTRAP_RETRY_DELAY: Duration = Duration::from_millis(500);

/// Right after a bootout, launchd may still be tearing the old job down and refuses the new one
/// with `5: Input/output error` or `37: Operation already in progress`; the same bootstrap
/// succeeds moments later. So only on a re-install, and only for those two, it is retried
/// briefly before the failure is reported.
fn bootstrap_after_bootout<R: CommandRunner>(
    lc: &Launchctl<R>,
    path: &Path,
    replaced: bool,
) -> Result<(), LaunchdError> {
    let mut attempt = 0;
    loop {
        match lc.bootstrap(path) {
            Err(LaunchdError::Launchctl {
                status: Some(5 | 37),
                ..
            }) if replaced && attempt < BOOTSTRAP_RETRIES => {
                attempt += 1;
                std::thread::sleep(BOOTSTRAP_RETRY_DELAY);
            }
            result => return result,
        }
    }
}

/// Uninstalls the agent: boots out the job (stopping the service), then deletes its plist.
/// Neither being present is [`UninstallOutcome::NotInstalled`], a success.
pub fn uninstall<R: CommandRunner>(
    lc: &Launchctl<R>,
    label: &str,
    home: &Path,
) -> Result<UninstallOutcome, LaunchdError> {
    validate_label(label)?;
    lc.require_available("uninstalling the LaunchAgent")?;
    lc.refuse_root()?;
    let was_loaded = lc.bootout(label)? == BootoutOutcome::Removed;
    let path = plist_path(home, label);
    let removed_plist = match fs::remove_file(&path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(LaunchdError::io(
                "remove",
                &path,
                "the job is unloaded but would be loaded again at the next login; delete the \
                 file by hand",
                e,
            ));
        }
    };
    Ok(if was_loaded || removed_plist {
        UninstallOutcome::Removed {
            was_loaded,
            removed_plist,
        }
    } else {
        UninstallOutcome::NotInstalled
    })
}

/// The agent's state: what `launchctl print` reports and whether its plist file exists.
pub fn status<R: CommandRunner>(
    lc: &Launchctl<R>,
    label: &str,
    home: &Path,
) -> Result<AgentReport, LaunchdError> {
    validate_label(label)?;
    lc.require_available("the LaunchAgent's status")?;
    let agent = lc.print(label)?;
    let plist_path = plist_path(home, label);
    Ok(AgentReport {
        label: label.to_owned(),
        plist_installed: plist_path.is_file(),
        plist_path,
        agent,
    })
}

#[cfg(test)]
mod tests;
