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

use std::io;
use std::path::Path;
use std::process::Command;

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
}

impl<R: CommandRunner + ?Sized> CommandRunner for &R {
    fn run(&self, argv: &[String]) -> io::Result<CommandOutput> {
        (**self).run(argv)
    }
}

/// The real runner: `/bin/launchctl` through [`std::process::Command`].
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
        let output = Command::new("/bin/launchctl").args(&argv[1..]).output()?;
        Ok(CommandOutput {
            status: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
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

/// `launchctl` for one user's GUI domain (`gui/<uid>`), where LaunchAgents run.
#[derive(Debug, Clone)]
pub struct Launchctl<R: CommandRunner> {
    runner: R,
    uid: u32,
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
        Launchctl { runner, uid }
    }

    /// The user id whose GUI domain this acts on.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    fn domain(&self) -> String {
        format!("gui/{}", self.uid)
    }

    fn service_target(&self, label: &str) -> String {
        format!("gui/{}/{label}", self.uid)
    }

    fn run(&self, args: &[&str]) -> Result<(String, CommandOutput), LaunchdError> {
        let argv = std::iter::once("launchctl")
            .chain(args.iter().copied())
            .map(str::to_owned)
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

    /// Loads the job described by `plist` into the user's GUI domain
    /// (`launchctl bootstrap gui/<uid> <plist>`); in always mode this also starts it.
    pub fn bootstrap(&self, plist: &Path) -> Result<(), LaunchdError> {
        let path = plist.to_string_lossy();
        let domain = self.domain();
        let (command, output) = self.run(&["bootstrap", &domain, &path])?;
        if output.success() {
            return Ok(());
        }
        let text = output.text();
        let hint = if output.status == Some(37) || text.contains("Operation already in progress") {
            "the job is already loaded or launchd is still unloading it; wait a moment and run \
             `spfs-autostart agent install` again, or `spfs-autostart agent uninstall` first"
                .to_owned()
        } else if output.status == Some(5) || text.contains("Input/output error") {
            format!(
                "the job is probably already loaded (run `spfs-autostart agent uninstall`, then \
                 install again), or launchd rejected the plist (check it with `plutil -lint {path}`)"
            )
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
        let target = self.service_target(label);
        let (command, output) = self.run(&["bootout", &target])?;
        if output.success() {
            return Ok(BootoutOutcome::Removed);
        }
        let text = output.text();
        if is_not_loaded(&output, &text) {
            return Ok(BootoutOutcome::NotLoaded);
        }
        Err(LaunchdError::Launchctl {
            command,
            status: output.status,
            output: text,
            hint: format!(
                "the job may still be loaded: check with `launchctl print {target}`, retry \
                 `spfs-autostart agent uninstall`, or log out and back in"
            ),
        })
    }

    /// What launchd knows about the job (`launchctl print gui/<uid>/<label>`). A job that is
    /// not loaded is [`AgentStatus::NotLoaded`], not an error.
    pub fn print(&self, label: &str) -> Result<AgentStatus, LaunchdError> {
        let target = self.service_target(label);
        let (command, output) = self.run(&["print", &target])?;
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
