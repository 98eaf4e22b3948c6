//! The one place that runs `launchctl`.
//!
//! Every call goes through a [`CommandRunner`], so tests inject a fake that records the argv and
//! replays launchctl's real outputs; [`SystemRunner`] is the only code that needs a Mac. Only
//! the domain-target subcommands (`bootstrap gui/<uid>`, `bootout gui/<uid>/<label>`,
//! `print gui/<uid>/<label>`) are used: the legacy `load`/`unload` hide errors and are
//! deprecated.
//!
//! launchctl's failures, as it prints them (collected from real reports):
//!
//! | output | status | meaning here |
//! | --- | --- | --- |
//! | `Bootstrap failed: 5: Input/output error` | 5 | already loaded, or launchd rejected the plist |
//! | `Bootstrap failed: 37: Operation already in progress` | 37 | already loaded (or still unloading) |
//! | `Boot-out failed: 3: No such process` | 3 | not loaded: not an error for `bootout` |
//! | `Could not find service "<label>" in domain for port` / `... for user gui: <uid>` | 113 | not loaded |
//! | `Boot-out failed: 5: Input/output error` | 5 | bootout: not loaded on current macOS (confirmed with `print`) |
//! | `Bootstrap failed: 125: Domain does not support specified action` | 125 | no GUI session (SSH, headless): `user/<uid>` is used instead |
//!
//! Every call has a deadline ([`LAUNCHCTL_TIMEOUT`]): a launchctl that hangs is killed and
//! reported instead of hanging the caller.

use std::cell::Cell;
use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::LaunchdError;

/// One launchctl invocation's result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandOutput {
    /// The exit status; `None` when launchctl was killed by a signal.
    pub status: Option<i32>,
    /// What launchctl wrote to stdout.
    pub stdout: String,
    /// What launchctl wrote to stderr.
    pub stderr: String,
}

impl CommandOutput {
    fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// stderr then stdout, trimmed: launchctl is not consistent about which one it uses.
    fn text(&self) -> String {
        let mut parts = Vec::new();
        for part in [self.stderr.trim(), self.stdout.trim()] {
            if !part.is_empty() {
                parts.push(part);
            }
        }
        parts.join("\n")
    }
}

/// Runs launchctl; the real one spawns `/bin/launchctl`, tests inject a fake that records the
/// argv and returns canned output.
pub trait CommandRunner {
    /// Runs `argv` (whose first element is `launchctl`) to completion and returns its output.
    /// An `Err` means it could not be run at all.
    fn run(&self, argv: &[String]) -> io::Result<CommandOutput>;

    /// Whether launchctl can run here at all. [`install`](super::install),
    /// [`uninstall`](super::uninstall) and [`status`](super::status) check it first, so on a
    /// system without launchd they fail with [`LaunchdError::Unsupported`] before creating
    /// `~/Library/LaunchAgents`. Fakes keep the default, `true`.
    fn available(&self) -> bool {
        true
    }
}

impl<R: CommandRunner + ?Sized> CommandRunner for &R {
    fn run(&self, argv: &[String]) -> io::Result<CommandOutput> {
        (**self).run(argv)
    }

    fn available(&self) -> bool {
        (**self).available()
    }
}

/// How long one launchctl call may take before it is killed and reported as timed out.
pub const LAUNCHCTL_TIMEOUT: Duration = Duration::from_secs(30);

/// The real runner: `/bin/launchctl` through [`std::process::Command`], with a deadline.
///
/// The absolute path is used so a `launchctl` earlier on `PATH` cannot stand in for it. On a
/// system without launchd it fails with [`io::ErrorKind::Unsupported`], which [`Launchctl`]
/// reports as [`LaunchdError::Unsupported`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, argv: &[String]) -> io::Result<CommandOutput> {
        if !super::supported() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "launchctl exists only on macOS",
            ));
        }
        // argv[0] is "launchctl" by contract; the absolute path replaces it.
        run_with_deadline(
            Path::new("/bin/launchctl"),
            argv.get(1..).unwrap_or_default(),
            LAUNCHCTL_TIMEOUT,
        )
    }

    fn available(&self) -> bool {
        super::supported()
    }
}

/// Runs `program args` to completion, or kills it after `timeout` and fails with
/// [`io::ErrorKind::TimedOut`]. Its output is read on helper threads so a chatty child cannot
/// block on a full pipe.
pub(crate) fn run_with_deadline(
    program: &Path,
    args: &[String],
    timeout: Duration,
) -> io::Result<CommandOutput> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} did not finish within {}s",
                    program.display(),
                    timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(CommandOutput {
        status: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// What [`Launchctl::bootout`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootoutOutcome {
    /// The job was loaded and has been removed from launchd (its process was stopped).
    Removed,
    /// The job was not loaded; nothing was done.
    NotLoaded,
}

/// What launchd knows about a job, from `launchctl print`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentStatus {
    /// launchd has no job with this label in the user's GUI domain.
    NotLoaded,
    /// The job is loaded (it may or may not be running).
    Loaded(LoadedAgent),
}

/// The parts of `launchctl print` a user needs to see.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadedAgent {
    /// launchd's `state` (`running`, `not running`, `waiting`, ...), as it printed it.
    pub state: Option<String>,
    /// The process id, while it runs.
    pub pid: Option<u32>,
    /// The last exit code, once it has exited at least once.
    pub last_exit_code: Option<i32>,
}

impl LoadedAgent {
    /// Whether launchd reports the job's process as running.
    pub fn is_running(&self) -> bool {
        self.state.as_deref() == Some("running")
    }
}

/// `launchctl` for one user's GUI domain (`gui/<uid>`), where LaunchAgents run; without a GUI
/// session (over SSH, headless) launchctl refuses that domain with error 125, and the user's
/// background domain (`user/<uid>`) is used instead for this and every later call.
#[derive(Debug, Clone)]
pub struct Launchctl<R: CommandRunner> {
    runner: R,
    uid: u32,
    /// Set once `gui/<uid>` was refused with 125: `user/<uid>` from then on.
    user_domain: Cell<bool>,
}

impl Launchctl<SystemRunner> {
    /// The real `launchctl` for the calling user.
    pub fn system() -> Self {
        Launchctl::new(SystemRunner, nix::unistd::getuid().as_raw())
    }
}

impl<R: CommandRunner> Launchctl<R> {
    /// launchctl through `runner`, acting on `gui/<uid>`.
    pub fn new(runner: R, uid: u32) -> Self {
        Launchctl {
            runner,
            uid,
            user_domain: Cell::new(false),
        }
    }

    /// The runner, e.g. for a test to read what a fake recorded.
    pub fn runner(&self) -> &R {
        &self.runner
    }

    /// The user id whose GUI domain this acts on.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The domain acted on: `gui/<uid>`, or `user/<uid>` once the GUI domain was refused.
    pub fn domain(&self) -> String {
        let kind = if self.user_domain.get() {
            "user"
        } else {
            "gui"
        };
        format!("{kind}/{}", self.uid)
    }

    /// Runs `args` (built for the current domain by `build`); when launchctl refuses the GUI
    /// domain with 125 (no GUI session), switches to `user/<uid>` and runs them once more.
    fn run_in_domain(
        &self,
        build: impl Fn(&str) -> Vec<String>,
    ) -> Result<(String, CommandOutput), LaunchdError> {
        let (command, output) = self.run(&build(&self.domain()))?;
        if !self.user_domain.get() && is_unsupported_domain(&output) {
            self.user_domain.set(true);
            return self.run(&build(&self.domain()));
        }
        Ok((command, output))
    }

    /// Fails with [`LaunchdError::Unsupported`] when the runner cannot run launchctl here.
    pub(crate) fn require_available(&self, operation: &str) -> Result<(), LaunchdError> {
        if self.runner.available() {
            Ok(())
        } else {
            Err(LaunchdError::Unsupported {
                operation: operation.to_owned(),
            })
        }
    }

    fn service_target(&self, label: &str) -> String {
        format!("{}/{label}", self.domain())
    }

    fn run(&self, args: &[String]) -> Result<(String, CommandOutput), LaunchdError> {
        let argv = std::iter::once("launchctl".to_owned())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>();
        let command = argv.join(" ");
        match self.runner.run(&argv) {
            Ok(output) => Ok((command, output)),
            Err(e) if e.kind() == io::ErrorKind::Unsupported => Err(LaunchdError::Unsupported {
                operation: format!("`{command}`"),
            }),
            Err(source) => Err(LaunchdError::Spawn { command, source }),
        }
    }

    /// Refuses to act for root: `sudo spfs-autostart agent install` would load the job into
    /// root's domain and write a root-owned plist into the invoking user's LaunchAgents.
    pub(crate) fn refuse_root(&self) -> Result<(), LaunchdError> {
        if self.uid == 0 {
            return Err(LaunchdError::invalid(
                "uid",
                "the LaunchAgent is per user, but this runs as root (sudo?): it would load the \
                 job into root's domain and leave a root-owned plist behind; run it as the user \
                 the service is for, without sudo",
            ));
        }
        Ok(())
    }

    /// Loads the job described by `plist` into the user's GUI domain
    /// (`launchctl bootstrap gui/<uid> <plist>`); in always mode this also starts it.
    pub fn bootstrap(&self, plist: &Path) -> Result<(), LaunchdError> {
        let path = plist.to_string_lossy();
        let (command, output) = self.run_in_domain(|domain| {
            vec![
                "bootstrap".into(),
                domain.to_owned(),
                path.clone().into_owned(),
            ]
        })?;
        if output.success() {
            return Ok(());
        }
        let domain = self.domain();
        let label = plist
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = output.text();
        let hint = if output.status == Some(37) || text.contains("Operation already in progress") {
            "the job is already loaded or launchd is still unloading it; wait a moment and install \
             the agent again, or uninstall it first"
                .to_owned()
        } else if output.status == Some(5) || text.contains("Input/output error") {
            format!(
                "the job is probably already loaded (uninstall the agent, then \
                 install it again), or it is disabled (`launchctl enable {domain}/{label}` enables \
                 it), or launchd rejected the plist (check it with `plutil -lint {path}`)"
            )
        } else if is_unsupported_domain(&output) {
            "launchd has no session for this user to run the agent in (over SSH or headless); \
             log in to the Mac's desktop once, then install again, or rely on on-demand start"
                .to_owned()
        } else {
            format!(
                "check the plist with `plutil -lint {path}`; `sudo launchctl bootstrap {domain} \
                 {path}` prints richer errors"
            )
        };
        Err(LaunchdError::Launchctl {
            command,
            status: output.status,
            output: text,
            hint,
        })
    }

    /// Removes the job from launchd, stopping its process
    /// (`launchctl bootout gui/<uid>/<label>`). A job that is not loaded is
    /// [`BootoutOutcome::NotLoaded`], not an error.
    pub fn bootout(&self, label: &str) -> Result<BootoutOutcome, LaunchdError> {
        let (command, output) =
            self.run_in_domain(|domain| vec!["bootout".into(), format!("{domain}/{label}")])?;
        let target = self.service_target(label);
        if output.success() {
            return Ok(BootoutOutcome::Removed);
        }
        let text = output.text();
        if is_not_loaded(&output, &text) {
            return Ok(BootoutOutcome::NotLoaded);
        }
        // Current macOS also answers 5 for a job that is not loaded; `print` tells which.
        if output.status == Some(5) && self.print(label)? == AgentStatus::NotLoaded {
            return Ok(BootoutOutcome::NotLoaded);
        }
        Err(LaunchdError::Launchctl {
            command,
            status: output.status,
            output: text,
            hint: format!(
                "the job may still be loaded: check with `launchctl print {target}`, retry \
                 the agent uninstall, or log out and back in"
            ),
        })
    }

    /// What launchd knows about the job (`launchctl print gui/<uid>/<label>`). A job that is
    /// not loaded is [`AgentStatus::NotLoaded`], not an error.
    pub fn print(&self, label: &str) -> Result<AgentStatus, LaunchdError> {
        let (command, output) =
            self.run_in_domain(|domain| vec!["print".into(), format!("{domain}/{label}")])?;
        if output.success() {
            return Ok(AgentStatus::Loaded(parse_print(&output.stdout)));
        }
        let text = output.text();
        if is_not_loaded(&output, &text) {
            return Ok(AgentStatus::NotLoaded);
        }
        Err(LaunchdError::Launchctl {
            command,
            status: output.status,
            output: text,
            hint: "launchd could not report on the job; is this a GUI login session (the agent \
                   lives in the gui/<uid> domain)?"
                .to_owned(),
        })
    }
}

/// launchctl refuses a domain this session does not have (`gui/<uid>` over SSH) with 125,
/// "Domain does not support specified action".
fn is_unsupported_domain(output: &CommandOutput) -> bool {
    output.status == Some(125)
        || output
            .text()
            .contains("Domain does not support specified action")
}

/// launchctl says "not loaded" with exit 3 (`No such process`, bootout) or 113 (`Could not find
/// service ...`, print and newer bootout); the texts are checked too because the numbers have
/// shifted between macOS releases.
fn is_not_loaded(output: &CommandOutput, text: &str) -> bool {
    matches!(output.status, Some(3) | Some(113))
        || text.contains("No such process")
        || text.contains("Could not find service")
        || text.contains("Could not find specified service")
}

/// Reads the job's own top-level `state`, `pid` and `last exit code` lines; nested blocks
/// (`arguments = { ... }`, `sockets`, `endpoints`) can hold lines of the same shape and are
/// skipped by tracking brace depth.
fn parse_print(stdout: &str) -> LoadedAgent {
    let mut agent = LoadedAgent::default();
    let mut depth = 0usize;
    for line in stdout.lines() {
        let line = line.trim();
        if line == "}" {
            depth = depth.saturating_sub(1);
            continue;
        }
        if line.ends_with('{') {
            depth += 1;
            continue;
        }
        if depth != 1 {
            continue;
        }
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "state" => agent.state = Some(value.to_owned()),
            "pid" => agent.pid = value.parse().ok(),
            "last exit code" => agent.last_exit_code = value.parse().ok(),
            _ => {}
        }
    }
    agent
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::tests::{
        BOOTOUT_NOT_LOADED, BOOTSTRAP_EIO, BOOTSTRAP_IN_PROGRESS, FakeRunner, PRINT_NOT_FOUND_PORT,
        PRINT_NOT_FOUND_USER, failed, ok,
    };
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
        let (_, status, _, text) =
            launchctl_error(lc.bootstrap(Path::new("/h/x.plist")).unwrap_err());
        assert_eq!(status, Some(37));
        assert!(text.contains("Operation already in progress"), "{text}");
        assert!(text.contains("already loaded"), "{text}");
    }

    #[test]
    fn bootstrap_unknown_failure_quotes_launchctl_and_points_at_richer_errors() {
        let lc = Launchctl::new(FakeRunner::replying([failed(1, "Something new\n")]), 501);
        let (_, _, output, text) =
            launchctl_error(lc.bootstrap(Path::new("/h/x.plist")).unwrap_err());
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
    fn print_parses_the_jobs_own_state_pid_and_exit_code() {
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
        assert_eq!(agent.last_exit_code, None);

        let stopped = PRINT_RUNNING
            .replace("state = running", "state = not running")
            .replace("\tpid = 4242\n", "")
            .replace("(never exited)", "78");
        let agent = parse_print(&stopped);
        assert!(!agent.is_running());
        assert_eq!(agent.pid, None);
        assert_eq!(agent.last_exit_code, Some(78));
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
}
