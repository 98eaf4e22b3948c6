//! The argv of every launchctl call and the mapping of its real failure texts.

use std::path::Path;

use super::super::tests::{
    BOOTOUT_NOT_LOADED, BOOTSTRAP_EIO, BOOTSTRAP_IN_PROGRESS, FakeRunner, PRINT_NOT_FOUND_PORT,
    PRINT_NOT_FOUND_USER, failed, ok,
};
use super::runner::run_with_deadline;
use super::*;
use crate::LaunchdErrorKind;

const LABEL: &str = "ai.spk.spfs-fuse-macos";

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn launchctl_error(err: LaunchdError) -> (String, Option<i32>, String, String) {
    let text = err.to_string();
    assert!(
        text.contains("Ensure keeps starting the service on demand"),
        "says on-demand still works: {text}"
    );
    match err {
        LaunchdError::Launchctl {
            command,
            status,
            output,
            ..
        } => (command, status, output, text),
        other => panic!("expected a Launchctl error, got {other:?}"),
    }
}

#[test]
fn bootstrap_argv_targets_the_gui_domain_with_the_plist_path() {
    let lc = Launchctl::new(FakeRunner::replying([ok()]), 501);
    lc.bootstrap(Path::new("/Users/me/Library/LaunchAgents/x y.plist"))
        .unwrap();
    assert_eq!(
        lc.runner.calls(),
        [argv(&[
            "launchctl",
            "bootstrap",
            "gui/501",
            "/Users/me/Library/LaunchAgents/x y.plist"
        ])]
    );
}

#[test]
fn bootout_and_print_argv_target_the_service() {
    let lc = Launchctl::new(FakeRunner::replying([ok(), ok()]), 502);
    assert_eq!(lc.bootout(LABEL).unwrap(), BootoutOutcome::Removed);
    lc.print(LABEL).unwrap();
    assert_eq!(
        lc.runner.calls(),
        [
            argv(&["launchctl", "bootout", "gui/502/ai.spk.spfs-fuse-macos"]),
            argv(&["launchctl", "print", "gui/502/ai.spk.spfs-fuse-macos"]),
        ]
    );
}

#[test]
fn bootstrap_io_error_5_suggests_uninstall_and_plutil() {
    let lc = Launchctl::new(FakeRunner::replying([failed(5, BOOTSTRAP_EIO)]), 501);
    let err = lc.bootstrap(Path::new("/h/x.plist")).unwrap_err();
    assert_eq!(err.kind(), LaunchdErrorKind::Launchctl);
    let (command, status, output, text) = launchctl_error(err);
    assert_eq!(command, "launchctl bootstrap gui/501 /h/x.plist");
    assert_eq!(status, Some(5));
    assert!(output.starts_with("Bootstrap failed: 5: Input/output error"));
    assert!(
        text.contains("Bootstrap failed: 5: Input/output error"),
        "{text}"
    );
    assert!(text.contains("already loaded"), "{text}");
    assert!(text.contains("uninstall the agent"), "{text}");
    assert!(text.contains("plutil -lint /h/x.plist"), "{text}");
}

#[test]
fn bootstrap_37_in_progress_says_already_loaded() {
    let lc = Launchctl::new(
        FakeRunner::replying([failed(37, BOOTSTRAP_IN_PROGRESS)]),
        501,
    );
    let (_, status, _, text) = launchctl_error(lc.bootstrap(Path::new("/h/x.plist")).unwrap_err());
    assert_eq!(status, Some(37));
    assert!(text.contains("Operation already in progress"), "{text}");
    assert!(text.contains("already loaded"), "{text}");
}

#[test]
fn bootstrap_unknown_failure_quotes_launchctl_and_points_at_richer_errors() {
    let lc = Launchctl::new(FakeRunner::replying([failed(1, "Something new\n")]), 501);
    let (_, _, output, text) = launchctl_error(lc.bootstrap(Path::new("/h/x.plist")).unwrap_err());
    assert_eq!(output, "Something new");
    assert!(text.contains("\"Something new\""), "{text}");
    assert!(
        text.contains("sudo launchctl bootstrap gui/501 /h/x.plist"),
        "{text}"
    );
}

#[test]
fn bootout_of_a_job_that_is_not_loaded_is_not_an_error() {
    for reply in [
        failed(3, BOOTOUT_NOT_LOADED),
        failed(
            113,
            "Boot-out failed: 113: Could not find specified service\n",
        ),
        failed(113, PRINT_NOT_FOUND_PORT),
    ] {
        let lc = Launchctl::new(FakeRunner::replying([reply]), 501);
        assert_eq!(lc.bootout(LABEL).unwrap(), BootoutOutcome::NotLoaded);
    }
}

#[test]
fn bootout_real_failure_is_an_error_with_recovery() {
    let lc = Launchctl::new(
        FakeRunner::replying([failed(1, "Boot-out failed: 1: Operation not permitted\n")]),
        501,
    );
    let (_, status, _, text) = launchctl_error(lc.bootout(LABEL).unwrap_err());
    assert_eq!(status, Some(1));
    assert!(text.contains("Operation not permitted"), "{text}");
    assert!(
        text.contains("launchctl print gui/501/ai.spk.spfs-fuse-macos"),
        "{text}"
    );
}

#[test]
fn print_of_an_unknown_service_is_not_loaded() {
    for stderr in [PRINT_NOT_FOUND_PORT, PRINT_NOT_FOUND_USER] {
        let lc = Launchctl::new(FakeRunner::replying([failed(113, stderr)]), 501);
        assert_eq!(lc.print(LABEL).unwrap(), AgentStatus::NotLoaded);
    }
}

#[test]
fn kickstart_targets_the_job_and_says_why_it_failed() {
    let lc = Launchctl::new(FakeRunner::replying([ok()]), 501);
    lc.kickstart(LABEL).unwrap();
    assert_eq!(
        lc.runner().calls(),
        vec![argv(&[
            "launchctl",
            "kickstart",
            "gui/501/ai.spk.spfs-fuse-macos"
        ])]
    );
    // Gone since it was looked at.
    let lc = Launchctl::new(
        FakeRunner::replying([failed(113, PRINT_NOT_FOUND_USER)]),
        501,
    );
    let (command, status, _, text) = launchctl_error(lc.kickstart(LABEL).unwrap_err());
    assert_eq!(
        command,
        "launchctl kickstart gui/501/ai.spk.spfs-fuse-macos"
    );
    assert_eq!(status, Some(113));
    assert!(text.contains("no longer loaded"), "{text}");
    // Disabled (`launchctl disable`).
    let lc = Launchctl::new(
        FakeRunner::replying([failed(
            119,
            "Could not kickstart service: 119: Service is disabled\n",
        )]),
        501,
    );
    let (_, status, output, text) = launchctl_error(lc.kickstart(LABEL).unwrap_err());
    assert_eq!(status, Some(119));
    assert!(output.contains("Service is disabled"), "{output}");
    assert!(
        text.contains("launchctl enable gui/501/ai.spk.spfs-fuse-macos"),
        "{text}"
    );
}

#[test]
fn spawn_failures_are_launchctl_errors_and_unsupported_is_its_own_kind() {
    struct Broken(io::ErrorKind);
    impl CommandRunner for Broken {
        fn run(&self, _: &[String]) -> io::Result<CommandOutput> {
            Err(io::Error::new(self.0, "nope"))
        }
    }
    let err = Launchctl::new(Broken(io::ErrorKind::NotFound), 501)
        .print(LABEL)
        .unwrap_err();
    assert_eq!(err.kind(), LaunchdErrorKind::Launchctl);
    assert!(err.to_string().contains("/bin/launchctl"), "{err}");
    let err = Launchctl::new(Broken(io::ErrorKind::Unsupported), 501)
        .print(LABEL)
        .unwrap_err();
    assert_eq!(err.kind(), LaunchdErrorKind::Unsupported);
    assert!(err.to_string().contains("only macOS"), "{err}");
}

#[test]
fn system_runner_is_unsupported_off_macos() {
    if super::super::supported() {
        return;
    }
    let err = Launchctl::system().print(LABEL).unwrap_err();
    assert_eq!(err.kind(), LaunchdErrorKind::Unsupported);
}

const PRINT_RUNNING: &str = "gui/501/ai.spk.spfs-fuse-macos = {
\tactive count = 1
\tpath = /Users/me/Library/LaunchAgents/ai.spk.spfs-fuse-macos.plist
\ttype = LaunchAgent
\tstate = running

\tprogram = /usr/local/bin/spfs-fuse-macos
\targuments = {
\t\t/usr/local/bin/spfs-fuse-macos
\t\tstate = decoy
\t}

\tevent triggers = {
\t\tai.spk.spfs-fuse-macos.1 => {
\t\t\tstate = 0
\t\t\tpid = 1
\t\t}
\t}

\tdomain = gui/501 [100005]
\truns = 1
\tpid = 4242
\tlast exit code = (never exited)
\tproperties = keepalive | runatload
}
";

#[test]
fn print_parses_the_jobs_own_state_pid_runs_and_exit_code() {
    let lc = Launchctl::new(
        FakeRunner::replying([CommandOutput {
            status: Some(0),
            stdout: PRINT_RUNNING.into(),
            stderr: String::new(),
        }]),
        501,
    );
    let AgentStatus::Loaded(agent) = lc.print(LABEL).unwrap() else {
        panic!("loaded")
    };
    assert_eq!(agent.state.as_deref(), Some("running"));
    assert!(agent.is_running());
    assert_eq!(agent.pid, Some(4242));
    assert_eq!(agent.runs, Some(1));
    assert_eq!(agent.last_exit_code, None);

    let stopped = PRINT_RUNNING
        .replace("state = running", "state = not running")
        .replace("\tpid = 4242\n", "")
        .replace("(never exited)", "78");
    let agent = parse_print(&stopped);
    assert!(!agent.is_running());
    assert_eq!(agent.pid, None);
    assert_eq!(agent.last_exit_code, Some(78));
    assert_eq!(agent.last_signal, None);
    let named = parse_print(&stopped.replace("= 78", "= 78: EX_CONFIG"));
    assert_eq!(named.last_exit_code, Some(78));
    let killed = parse_print(&stopped.replace(
        "last exit code = 78",
        "last terminating signal = Segmentation fault: 11",
    ));
    assert_eq!(
        killed.last_signal.as_deref(),
        Some("Segmentation fault: 11")
    );
}

const DOMAIN_UNSUPPORTED: &str =
    "Bootstrap failed: 125: Domain does not support specified action\n";

#[test]
fn without_a_gui_session_the_user_domain_is_used() {
    let lc = Launchctl::new(
        FakeRunner::replying([failed(125, DOMAIN_UNSUPPORTED), ok(), ok()]),
        501,
    );
    lc.bootstrap(Path::new("/h/x.plist")).unwrap();
    assert_eq!(lc.domain(), "user/501");
    lc.print(LABEL).unwrap();
    assert_eq!(
        lc.runner.calls(),
        [
            argv(&["launchctl", "bootstrap", "gui/501", "/h/x.plist"]),
            argv(&["launchctl", "bootstrap", "user/501", "/h/x.plist"]),
            argv(&["launchctl", "print", "user/501/ai.spk.spfs-fuse-macos"]),
        ]
    );
}

#[test]
fn no_domain_at_all_says_to_log_in() {
    let lc = Launchctl::new(
        FakeRunner::replying([
            failed(125, DOMAIN_UNSUPPORTED),
            failed(125, DOMAIN_UNSUPPORTED),
        ]),
        501,
    );
    let err = lc.bootstrap(Path::new("/h/x.plist")).unwrap_err();
    let (_, status, _, text) = launchctl_error(err);
    assert_eq!(status, Some(125));
    assert!(text.contains("log in to the Mac's desktop"), "{text}");
}

#[test]
fn bootout_5_of_a_job_that_print_does_not_know_is_not_loaded() {
    let lc = Launchctl::new(
        FakeRunner::replying([
            failed(5, "Boot-out failed: 5: Input/output error\n"),
            failed(113, PRINT_NOT_FOUND_PORT),
        ]),
        501,
    );
    assert_eq!(lc.bootout(LABEL).unwrap(), BootoutOutcome::NotLoaded);
    // A loaded job that bootout could not remove is still an error.
    let lc = Launchctl::new(
        FakeRunner::replying([failed(5, "Boot-out failed: 5: Input/output error\n"), ok()]),
        501,
    );
    assert_eq!(
        lc.bootout(LABEL).unwrap_err().kind(),
        LaunchdErrorKind::Launchctl
    );
}

#[test]
fn bootstrap_5_suggests_enabling_a_disabled_job() {
    let lc = Launchctl::new(FakeRunner::replying([failed(5, BOOTSTRAP_EIO)]), 501);
    let text = lc
        .bootstrap(Path::new("/h/ai.spk.spfs-fuse-macos.plist"))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("launchctl enable gui/501/ai.spk.spfs-fuse-macos"),
        "{text}"
    );
}

#[test]
fn a_hanging_command_is_killed_at_its_deadline() {
    let started = std::time::Instant::now();
    let err = run_with_deadline(
        Path::new("/bin/sleep"),
        &["30".to_owned()],
        std::time::Duration::from_millis(300),
    )
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(err.to_string().contains("did not finish"), "{err}");
    // Generous: far less than the 30 s it would have slept.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // A command that finishes gives its output and status.
    let out = run_with_deadline(
        Path::new("/bin/sh"),
        &["-c".to_owned(), "echo out; echo err >&2; exit 3".to_owned()],
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (Some(3), "out\n", "err\n")
    );
}
