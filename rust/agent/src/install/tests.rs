//! Install, uninstall and status against a fake launchctl.

use std::os::unix::fs::PermissionsExt;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

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
use crate::{AgentMode, DEFAULT_LABEL, LaunchdErrorKind};
use spfs_autostart_protocol::{Error, ErrorKind};

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

/// A previous install under `home`: its LaunchAgents dir and, in it, the
/// agent's plist holding `previous plist`. Returns both paths.
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
    new.socket_path = Some(home.path().join("state/service.sock"));
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
        text.contains("previous plist is in place but not loaded"),
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
    if crate::supported() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let lc = Launchctl::new(crate::SystemRunner, 501);
    let err = install(&lc, &spec_for(home.path()), home.path()).unwrap_err();
    assert_eq!(err.kind(), LaunchdErrorKind::Unsupported);
    assert!(err.to_string().contains("rely on ensure"), "{err}");
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

/// The log dir is checked as `ensure` checks it: one others may write
/// (who could plant the log as a link to a file of yours) is refused
/// before launchd is asked for anything.
#[test]
fn a_log_dir_others_may_write_is_refused_before_loading() {
    let home = tempfile::tempdir().unwrap();
    let spec = spec_for(home.path());
    let log_dir = spec.log_file.parent().unwrap().to_owned();
    fs::create_dir(&log_dir).unwrap();
    fs::set_permissions(&log_dir, fs::Permissions::from_mode(0o777)).unwrap();
    let lc = Launchctl::new(FakeRunner::replying([]), 501);
    let err = install(&lc, &spec, home.path()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&log_dir.display().to_string()) && message.contains("log dir"),
        "{message}"
    );
    assert!(lc.runner().calls().is_empty(), "launchctl was not run");
    let error = Error::from(err);
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
}

#[test]
fn install_and_uninstall_as_root_are_refused_before_touching_anything() {
    let home = tempfile::tempdir().unwrap();
    let lc = Launchctl::new(FakeRunner::replying([]), 0);
    // What a caller checks before it stops the running service.
    let err = check_install(&lc, &spec_for(home.path())).unwrap_err();
    assert!(err.to_string().contains("without sudo"), "{err}");
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
        err.to_string().contains("in place and loaded again"),
        "{err}"
    );
    assert_eq!(fs::read(&path).unwrap(), b"previous plist");
    let last = lc.runner().calls().pop().unwrap();
    assert_eq!(
        last,
        argv(&["launchctl", "bootstrap", "gui/501", path.to_str().unwrap()])
    );
}

/// A failure after the bootout removed the old job, before the new plist
/// took its place (launchd could not report on the job while install waited
/// for it to go), loads the old job again instead of leaving none.
#[test]
fn a_reinstall_failing_after_the_bootout_loads_the_previous_job_again() {
    let home = tempfile::tempdir().unwrap();
    let (dir, path) = existing_install(home.path());
    let lc = Launchctl::new(
        FakeRunner::replying([ok(), failed(1, "Unexpected launchd error\n"), ok()]),
        501,
    );
    let err = install(&lc, &spec_for(home.path()), home.path()).unwrap_err();
    assert_eq!(err.kind(), LaunchdErrorKind::Launchctl);
    assert!(
        err.to_string().contains("in place and loaded again"),
        "{err}"
    );
    assert_eq!(lc.runner().verbs(), ["bootout", "print", "bootstrap"]);
    assert_eq!(
        lc.runner().calls().pop().unwrap(),
        argv(&["launchctl", "bootstrap", "gui/501", path.to_str().unwrap()])
    );
    assert_eq!(fs::read(&path).unwrap(), b"previous plist");
    assert_eq!(dir_entries(&dir), LISTING, "no temp file left");
}

/// A prepared install that is dropped (the caller's stop of the running
/// service failed, or Ctrl-C came) leaves the plist and launchd as they
/// were, and lets the install lock go.
#[test]
fn a_prepared_install_dropped_changes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let (dir, path) = existing_install(home.path());
    let lc = Launchctl::new(FakeRunner::replying([]), 501);
    let prepared = prepare_install(&lc, &spec_for(home.path()), home.path()).unwrap();
    assert!(
        dir_entries(&dir).iter().any(|name| name.ends_with(".tmp")),
        "the new plist is staged: {:?}",
        dir_entries(&dir)
    );
    drop(prepared);
    assert_eq!(fs::read(&path).unwrap(), b"previous plist");
    assert_eq!(dir_entries(&dir), LISTING, "the staged file is gone");
    assert!(lc.runner().calls().is_empty(), "launchd was not touched");
    // The lock is free: the next install goes through at once.
    let lc = Launchctl::new(
        FakeRunner::replying([ok(), failed(113, PRINT_NOT_FOUND_PORT), ok()]),
        501,
    );
    install(&lc, &spec_for(home.path()), home.path()).unwrap();
    assert_eq!(lc.runner().verbs(), ["bootout", "print", "bootstrap"]);
}
