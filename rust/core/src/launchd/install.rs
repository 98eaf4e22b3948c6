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
//! - if `launchctl bootstrap` then fails, the file is rolled back: removed when there was none
//!   before, the previous contents restored when there was one. The old job stays unloaded (it
//!   was booted out); the error says so and how to load it again;
//! - installs are serialized by a lock file beside the plists (`.<label>.plist.lock`), so two
//!   concurrent installs cannot interleave, and temporary files left by an interrupted install
//!   are removed under that lock;
//! - SIGINT, SIGTERM and SIGHUP are blocked on the calling thread from the bootout to the end of
//!   the bootstrap (or rollback), so an interrupt cannot leave the job unloaded halfway; they
//!   are delivered when install returns (every launchctl call has a deadline, so this is
//!   bounded);
//! - the log file's directory is created (0700) before the job is loaded: neither launchd's
//!   `StandardOutPath` nor systemd's `append:` creates it, and the job would fail to start;
//! - root is refused: the agent belongs to a user, not to `gui/0`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

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

/// Installs the agent: writes `<home>/Library/LaunchAgents/<label>.plist` atomically (mode
/// 0644), boots out a job already loaded under the label, then bootstraps the new plist.
/// Returns the plist's path.
///
/// On failure nothing half-written is left: see the module docs for the rollback.
pub fn install<R: CommandRunner>(
    lc: &Launchctl<R>,
    spec: &AgentSpec,
    home: &Path,
) -> Result<PathBuf, LaunchdError> {
    // Everything that can be checked is checked before the disk or launchd is touched.
    let contents = launchd_plist(spec)?;
    lc.require_available("installing the LaunchAgent")?;
    lc.refuse_root()?;
    let dir = launch_agents_dir(home);
    let path = plist_path(home, &spec.label);
    create_agents_dir(&dir)?;
    let _lock = lock_installs(&dir, &spec.label)?;
    remove_leftovers(&dir, &spec.label);
    if spec.bundle_program.is_none()
        && let Some(log_dir) = spec.log_file.parent()
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(log_dir)
            .map_err(|e| {
                LaunchdError::io(
                    "create the log directory",
                    log_dir,
                    "the service could not write its log there; make it writable by you or set \
                     log_dir (SPFS_AUTOSTART_LOG_DIR) elsewhere",
                    e,
                )
            })?;
    }
    let previous = match fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(LaunchdError::io(
                "read the existing plist",
                &path,
                "check its permissions, or remove it and install again",
                e,
            ));
        }
    };
    let staged = stage(&path, &contents)?;
    // From the bootout to the end of the bootstrap an interrupt would leave no job loaded.
    let _signals = BlockedSignals::block();
    // The old job must go before the new one can be bootstrapped under the same label.
    let replaced = match lc.bootout(&spec.label) {
        Ok(outcome) => outcome == BootoutOutcome::Removed,
        Err(e) => {
            staged.discard();
            return Err(e);
        }
    };
    if replaced && let Err(e) = wait_until_gone(lc, &spec.label) {
        staged.discard();
        return Err(e);
    }
    staged.commit()?;
    if let Err(e) = bootstrap_after_bootout(lc, &path, replaced) {
        let rollback = match &previous {
            Some(bytes) => stage(&path, bytes).and_then(Staged::commit),
            None => fs::remove_file(&path).map_err(|err| {
                LaunchdError::io("remove the refused plist", &path, "delete it by hand", err)
            }),
        };
        // If the rollback itself fails, its error wins: it names the file left behind, which
        // the user now has to deal with.
        return Err(match (rollback, e) {
            (Err(rollback_err), _) => rollback_err,
            (
                Ok(()),
                LaunchdError::Launchctl {
                    command,
                    status,
                    output,
                    hint,
                },
            ) if previous.is_some() => {
                // The old job was running before: load it again rather than leave none.
                let reloaded = replaced && lc.bootstrap(&path).is_ok();
                let what = if reloaded {
                    "The previous plist was restored and loaded again".to_owned()
                } else {
                    format!(
                        "The previous plist was restored but is not loaded; `launchctl bootstrap \
                         {} {}` loads it again",
                        lc.domain(),
                        path.display()
                    )
                };
                LaunchdError::Launchctl {
                    command,
                    status,
                    output,
                    hint: format!("{hint}. {what}"),
                }
            }
            (Ok(()), e) => e,
        });
    }
    Ok(path)
}

/// How long install waits for a booted-out job to be gone: longer than the kit's 5 s drain.
pub const BOOTOUT_WAIT: Duration = Duration::from_secs(10);
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

/// Blocks SIGINT, SIGTERM and SIGHUP on this thread until dropped; pending ones are delivered
/// then.
struct BlockedSignals(Option<SigSet>);

impl BlockedSignals {
    fn block() -> Self {
        let mut set = SigSet::empty();
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(signal);
        }
        let mut old = SigSet::empty();
        match pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)) {
            Ok(()) => BlockedSignals(Some(old)),
            Err(_) => BlockedSignals(None),
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(old), None);
        }
    }
}

/// Takes the install lock for `label` (waiting for a concurrent install to finish).
fn lock_installs(dir: &Path, label: &str) -> Result<File, LaunchdError> {
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
fn remove_leftovers(dir: &Path, label: &str) {
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

fn create_agents_dir(dir: &Path) -> Result<(), LaunchdError> {
    fs::create_dir_all(dir).map_err(|e| {
        LaunchdError::io(
            "create the LaunchAgents directory",
            dir,
            "make sure it is a writable directory owned by you (not a file)",
            e,
        )
    })
}

/// A complete, fsynced temporary file next to its destination, not yet renamed into place.
struct Staged {
    temp: PathBuf,
    dest: PathBuf,
}

/// Writes `contents` to a temporary file beside `dest` (same directory, so the rename is
/// atomic) and flushes it to disk. On any failure the temporary file is removed.
fn stage(dest: &Path, contents: &[u8]) -> Result<Staged, LaunchdError> {
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
    fn commit(self) -> Result<(), LaunchdError> {
        if let Err(e) = fs::rename(&self.temp, &self.dest) {
            let _ = fs::remove_file(&self.temp);
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

    fn discard(self) {
        let _ = fs::remove_file(&self.temp);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::super::CommandOutput;
    use super::super::tests::{
        BOOTOUT_NOT_LOADED, BOOTSTRAP_EIO, BOOTSTRAP_IN_PROGRESS, FakeRunner, PRINT_NOT_FOUND_PORT,
        failed, ok,
    };

    /// What LaunchAgents holds after an install: the plist and the install lock.
    const LISTING: [&str; 2] = [
        ".ai.spk.spfs-fuse-macos.plist.lock",
        "ai.spk.spfs-fuse-macos.plist",
    ];
    use super::*;
    use crate::launchd::{AgentMode, DEFAULT_LABEL, LaunchdErrorKind};

    fn spec_for(home: &Path) -> AgentSpec {
        let mut spec = AgentSpec::new(
            "/usr/local/bin/spfs-fuse-macos",
            home.join("logs/service.log"),
        );
        spec.args = vec!["service".into(), "/spfs".into()];
        spec
    }

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut names = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>();
        names.sort();
        names
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    /// A previous install under `home`: its LaunchAgents dir and, in it,
    /// the agent's plist holding `previous plist`. Returns both paths.
    fn existing_install(home: &Path) -> (PathBuf, PathBuf) {
        let dir = launch_agents_dir(home);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ai.spk.spfs-fuse-macos.plist");
        fs::write(&path, b"previous plist").unwrap();
        (dir, path)
    }

    #[test]
    fn install_writes_the_plist_0644_then_bootstraps_it() {
        let home = tempfile::tempdir().unwrap();
        let lc = Launchctl::new(
            FakeRunner::replying([failed(3, BOOTOUT_NOT_LOADED), ok()]),
            501,
        );
        let path = install(&lc, &spec_for(home.path()), home.path()).unwrap();
        let dir = launch_agents_dir(home.path());
        assert_eq!(path, dir.join("ai.spk.spfs-fuse-macos.plist"));
        assert_eq!(
            fs::read(&path).unwrap(),
            launchd_plist(&spec_for(home.path())).unwrap()
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(dir_entries(&dir), LISTING, "no temp file left");
        assert_eq!(
            lc.runner().calls(),
            [
                argv(&["launchctl", "bootout", "gui/501/ai.spk.spfs-fuse-macos"]),
                argv(&["launchctl", "bootstrap", "gui/501", path.to_str().unwrap()]),
            ]
        );
    }

    #[test]
    fn reinstall_boots_out_the_loaded_job_and_replaces_the_plist() {
        let home = tempfile::tempdir().unwrap();
        let dir = launch_agents_dir(home.path());
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ai.spk.spfs-fuse-macos.plist");
        fs::write(&path, b"old version").unwrap();
        let mut new = spec_for(home.path());
        new.mode = AgentMode::Socket;
        new.socket_path = Some("/tmp/spfs/service.sock".into());
        // The old job is loaded: bootout succeeds, then print says it is gone.
        let lc = Launchctl::new(
            FakeRunner::replying([ok(), failed(113, PRINT_NOT_FOUND_PORT), ok()]),
            501,
        );
        install(&lc, &new, home.path()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), launchd_plist(&new).unwrap());
        assert_eq!(dir_entries(&dir), LISTING);
        let calls = lc.runner().calls();
        assert_eq!(calls[0][1], "bootout");
        assert_eq!(calls[1][1], "print");
        assert_eq!(calls[2][1], "bootstrap");
    }

    #[test]
    fn failed_bootstrap_of_a_first_install_leaves_no_plist() {
        let home = tempfile::tempdir().unwrap();
        let lc = Launchctl::new(
            FakeRunner::replying([failed(3, BOOTOUT_NOT_LOADED), failed(5, BOOTSTRAP_EIO)]),
            501,
        );
        let err = install(&lc, &spec_for(home.path()), home.path()).unwrap_err();
        assert_eq!(err.kind(), LaunchdErrorKind::Launchctl);
        assert!(err.to_string().contains("Input/output error"), "{err}");
        assert_eq!(
            dir_entries(&launch_agents_dir(home.path())),
            [".ai.spk.spfs-fuse-macos.plist.lock"]
        );
    }

    #[test]
    fn failed_bootstrap_of_a_reinstall_restores_the_previous_plist() {
        let home = tempfile::tempdir().unwrap();
        let (dir, path) = existing_install(home.path());
        // The new plist is refused, and so is the previous one when loaded again.
        let mut replies = vec![ok(), failed(113, PRINT_NOT_FOUND_PORT)];
        replies.extend(std::iter::repeat_n(failed(5, BOOTSTRAP_EIO), 5));
        let lc = Launchctl::new(FakeRunner::replying(replies), 501);
        let err = install(&lc, &spec_for(home.path()), home.path()).unwrap_err();
        assert_eq!(
            lc.runner().calls().len(),
            7,
            "bootout, print, bootstrap, 3 retries and the previous plist's bootstrap"
        );
        let text = err.to_string();
        assert!(
            text.contains("previous plist was restored but is not loaded"),
            "{text}"
        );
        assert!(
            text.contains(&format!("launchctl bootstrap gui/501 {}", path.display())),
            "{text}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"previous plist");
        assert_eq!(dir_entries(&dir), LISTING);
    }

    #[test]
    fn reinstall_retries_a_bootstrap_refused_while_the_old_job_unloads() {
        let home = tempfile::tempdir().unwrap();
        let lc = Launchctl::new(
            FakeRunner::replying([
                ok(),
                failed(113, PRINT_NOT_FOUND_PORT),
                failed(37, BOOTSTRAP_IN_PROGRESS),
                ok(),
            ]),
            501,
        );
        install(&lc, &spec_for(home.path()), home.path()).unwrap();
        let verbs = lc.runner().verbs();
        assert_eq!(verbs, ["bootout", "print", "bootstrap", "bootstrap"]);
    }

    #[test]
    fn failed_bootout_keeps_the_old_plist_and_does_not_bootstrap() {
        let home = tempfile::tempdir().unwrap();
        let dir = launch_agents_dir(home.path());
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ai.spk.spfs-fuse-macos.plist");
        fs::write(&path, b"old").unwrap();
        let lc = Launchctl::new(
            FakeRunner::replying([failed(1, "Boot-out failed: 1: Operation not permitted\n")]),
            501,
        );
        install(&lc, &spec_for(home.path()), home.path()).unwrap_err();
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(dir_entries(&dir), LISTING);
        assert_eq!(lc.runner().calls().len(), 1);
    }

    /// Root ignores mode bits, so the unwritable LaunchAgents directory is made a file instead.
    #[test]
    fn unwritable_launch_agents_dir_is_an_io_error_naming_it() {
        let home = tempfile::tempdir().unwrap();
        fs::create_dir(home.path().join("Library")).unwrap();
        let dir = launch_agents_dir(home.path());
        fs::write(&dir, b"not a directory").unwrap();
        let lc = Launchctl::new(FakeRunner::replying([]), 501);
        let err = install(&lc, &spec_for(home.path()), home.path()).unwrap_err();
        assert_eq!(err.kind(), LaunchdErrorKind::Io);
        let text = err.to_string();
        assert!(text.contains(&dir.display().to_string()), "{text}");
        assert!(text.contains("writable directory"), "{text}");
        assert!(lc.runner().calls().is_empty(), "launchctl untouched");
        assert_eq!(fs::read(&dir).unwrap(), b"not a directory");
        assert_eq!(dir_entries(&home.path().join("Library")), ["LaunchAgents"]);
    }

    #[test]
    fn without_launchd_install_uninstall_and_status_are_unsupported_and_touch_nothing() {
        if crate::launchd::supported() {
            return;
        }
        let home = tempfile::tempdir().unwrap();
        let lc = Launchctl::new(crate::launchd::SystemRunner, 501);
        let err = install(&lc, &spec_for(home.path()), home.path()).unwrap_err();
        assert_eq!(err.kind(), LaunchdErrorKind::Unsupported);
        assert!(err.to_string().contains("spfs-autostart ensure"), "{err}");
        let err = uninstall(&lc, DEFAULT_LABEL, home.path()).unwrap_err();
        assert_eq!(err.kind(), LaunchdErrorKind::Unsupported);
        let err = status(&lc, DEFAULT_LABEL, home.path()).unwrap_err();
        assert_eq!(err.kind(), LaunchdErrorKind::Unsupported);
        assert!(dir_entries(home.path()).is_empty(), "no ~/Library created");
    }

    #[test]
    fn invalid_spec_touches_neither_disk_nor_launchctl() {
        let home = tempfile::tempdir().unwrap();
        let mut bad = spec_for(home.path());
        bad.label = "has space".into();
        let lc = Launchctl::new(FakeRunner::replying([]), 501);
        let err = install(&lc, &bad, home.path()).unwrap_err();
        assert_eq!(err.kind(), LaunchdErrorKind::InvalidSpec);
        assert!(dir_entries(home.path()).is_empty());
        assert!(lc.runner().calls().is_empty());
    }

    #[test]
    fn uninstall_boots_out_then_removes_the_plist() {
        let home = tempfile::tempdir().unwrap();
        let dir = launch_agents_dir(home.path());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("ai.spk.spfs-fuse-macos.plist"), b"x").unwrap();
        let lc = Launchctl::new(FakeRunner::replying([ok()]), 501);
        let outcome = uninstall(&lc, "ai.spk.spfs-fuse-macos", home.path()).unwrap();
        assert_eq!(
            outcome,
            UninstallOutcome::Removed {
                was_loaded: true,
                removed_plist: true
            }
        );
        assert!(dir_entries(&dir).is_empty());
        assert_eq!(
            lc.runner().calls(),
            [argv(&[
                "launchctl",
                "bootout",
                "gui/501/ai.spk.spfs-fuse-macos"
            ])]
        );
    }

    #[test]
    fn uninstall_of_nothing_is_not_installed() {
        let home = tempfile::tempdir().unwrap();
        let lc = Launchctl::new(FakeRunner::replying([failed(3, BOOTOUT_NOT_LOADED)]), 501);
        let outcome = uninstall(&lc, "ai.spk.spfs-fuse-macos", home.path()).unwrap();
        assert_eq!(outcome, UninstallOutcome::NotInstalled);
    }

    #[test]
    fn uninstall_of_a_stray_plist_removes_it() {
        let home = tempfile::tempdir().unwrap();
        let dir = launch_agents_dir(home.path());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("ai.spk.spfs-fuse-macos.plist"), b"x").unwrap();
        let lc = Launchctl::new(FakeRunner::replying([failed(3, BOOTOUT_NOT_LOADED)]), 501);
        assert_eq!(
            uninstall(&lc, "ai.spk.spfs-fuse-macos", home.path()).unwrap(),
            UninstallOutcome::Removed {
                was_loaded: false,
                removed_plist: true
            }
        );
    }

    #[test]
    fn status_reports_launchd_and_the_plist_file() {
        let home = tempfile::tempdir().unwrap();
        let lc = Launchctl::new(
            FakeRunner::replying([failed(113, super::super::tests::PRINT_NOT_FOUND_PORT)]),
            501,
        );
        let report = status(&lc, "ai.spk.spfs-fuse-macos", home.path()).unwrap();
        assert_eq!(report.agent, AgentStatus::NotLoaded);
        assert!(!report.plist_installed);
        assert_eq!(
            report.plist_path,
            launch_agents_dir(home.path()).join("ai.spk.spfs-fuse-macos.plist")
        );

        fs::create_dir_all(launch_agents_dir(home.path())).unwrap();
        fs::write(&report.plist_path, b"x").unwrap();
        let lc = Launchctl::new(FakeRunner::replying([ok()]), 501);
        let report = status(&lc, "ai.spk.spfs-fuse-macos", home.path()).unwrap();
        assert!(report.plist_installed);
        assert!(matches!(report.agent, AgentStatus::Loaded(_)));
    }

    #[test]
    fn install_creates_the_log_dir_0700_before_loading() {
        let home = tempfile::tempdir().unwrap();
        let spec = spec_for(home.path());
        let log_dir = spec.log_file.parent().unwrap().to_owned();
        assert!(!log_dir.exists());
        let lc = Launchctl::new(
            FakeRunner::replying([failed(3, BOOTOUT_NOT_LOADED), ok()]),
            501,
        );
        install(&lc, &spec, home.path()).unwrap();
        let meta = fs::metadata(&log_dir).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn install_and_uninstall_as_root_are_refused_before_touching_anything() {
        let home = tempfile::tempdir().unwrap();
        let lc = Launchctl::new(FakeRunner::replying([]), 0);
        let err = install(&lc, &spec_for(home.path()), home.path()).unwrap_err();
        assert_eq!(err.kind(), LaunchdErrorKind::InvalidSpec);
        assert!(err.to_string().contains("without sudo"), "{err}");
        let err = uninstall(&lc, DEFAULT_LABEL, home.path()).unwrap_err();
        assert!(err.to_string().contains("without sudo"), "{err}");
        assert!(lc.runner().calls().is_empty());
        assert!(dir_entries(home.path()).is_empty());
    }

    #[test]
    fn reinstall_waits_until_the_old_job_is_gone_before_bootstrapping() {
        let home = tempfile::tempdir().unwrap();
        let running = CommandOutput {
            status: Some(0),
            stdout: "gui/501/ai.spk.spfs-fuse-macos = {\n\tstate = running\n\tpid = 77\n}\n".into(),
            stderr: String::new(),
        };
        let lc = Launchctl::new(
            FakeRunner::replying([
                ok(),
                running.clone(),
                running,
                failed(113, PRINT_NOT_FOUND_PORT),
                ok(),
            ]),
            501,
        );
        install(&lc, &spec_for(home.path()), home.path()).unwrap();
        let verbs = lc.runner().verbs();
        assert_eq!(verbs, ["bootout", "print", "print", "print", "bootstrap"]);
    }

    #[test]
    fn install_removes_leftover_temp_files_of_an_interrupted_install() {
        let home = tempfile::tempdir().unwrap();
        let dir = launch_agents_dir(home.path());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(".ai.spk.spfs-fuse-macos.plist.4242.tmp"), b"half").unwrap();
        fs::write(dir.join("other.plist"), b"not ours").unwrap();
        let lc = Launchctl::new(
            FakeRunner::replying([failed(3, BOOTOUT_NOT_LOADED), ok()]),
            501,
        );
        install(&lc, &spec_for(home.path()), home.path()).unwrap();
        assert_eq!(
            dir_entries(&dir),
            [
                ".ai.spk.spfs-fuse-macos.plist.lock",
                "ai.spk.spfs-fuse-macos.plist",
                "other.plist"
            ]
        );
    }

    /// A launchctl that records, at each call, whether SIGINT is blocked on this thread.
    struct MaskRecorder(FakeRunner, std::cell::RefCell<Vec<bool>>);

    impl CommandRunner for MaskRecorder {
        fn run(&self, argv: &[String]) -> io::Result<CommandOutput> {
            let mut mask = SigSet::empty();
            pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut mask)).unwrap();
            self.1.borrow_mut().push(mask.contains(Signal::SIGINT));
            self.0.run(argv)
        }
    }

    #[test]
    fn interrupts_are_held_from_bootout_to_bootstrap_and_released_after() {
        let home = tempfile::tempdir().unwrap();
        let runner = MaskRecorder(
            FakeRunner::replying([ok(), failed(113, PRINT_NOT_FOUND_PORT), ok()]),
            Default::default(),
        );
        let lc = Launchctl::new(runner, 501);
        install(&lc, &spec_for(home.path()), home.path()).unwrap();
        assert_eq!(*lc.runner().1.borrow(), [true, true, true]);
        let mut mask = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut mask)).unwrap();
        assert!(!mask.contains(Signal::SIGINT), "restored after install");
    }

    #[test]
    fn a_second_install_waits_for_the_first_to_finish() {
        let home = tempfile::tempdir().unwrap();
        let dir = launch_agents_dir(home.path());
        fs::create_dir_all(&dir).unwrap();
        // The first install holds the lock.
        let held = lock_installs(&dir, DEFAULT_LABEL).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let home_path = home.path().to_owned();
        let second = std::thread::spawn(move || {
            let lc = Launchctl::new(
                FakeRunner::replying([failed(3, BOOTOUT_NOT_LOADED), ok()]),
                501,
            );
            let result = install(&lc, &spec_for(&home_path), &home_path).map(|_| ());
            done_tx.send(lc.runner().calls().len()).unwrap();
            result
        });
        // The second has not called launchctl while the lock is held.
        assert!(
            done_rx.recv_timeout(Duration::from_millis(500)).is_err(),
            "the second install ran while the first held the lock"
        );
        drop(held);
        assert_eq!(done_rx.recv_timeout(Duration::from_secs(60)).unwrap(), 2);
        second.join().unwrap().unwrap();
    }

    #[test]
    fn a_refused_reinstall_loads_the_previous_plist_again() {
        let home = tempfile::tempdir().unwrap();
        let (_, path) = existing_install(home.path());
        let mut replies = vec![ok(), failed(113, PRINT_NOT_FOUND_PORT)];
        replies.extend(std::iter::repeat_n(failed(5, BOOTSTRAP_EIO), 4));
        replies.push(ok());
        let lc = Launchctl::new(FakeRunner::replying(replies), 501);
        let err = install(&lc, &spec_for(home.path()), home.path()).unwrap_err();
        assert!(
            err.to_string().contains("restored and loaded again"),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"previous plist");
        let last = lc.runner().calls().pop().unwrap();
        assert_eq!(
            last,
            argv(&["launchctl", "bootstrap", "gui/501", path.to_str().unwrap()])
        );
    }
}
