//! The one place that runs `launchctl`.
//!
//! Every call goes through a [`CommandRunner`], so tests inject a fake that records the argv and
//! replays launchctl's real outputs; [`SystemRunner`] is the only code that needs a Mac. Only
//! the domain-target subcommands (`bootstrap gui/<uid>`, `bootout gui/<uid>/<label>`,
//! `print gui/<uid>/<label>`, `kickstart gui/<uid>/<label>`) are used: the legacy
//! `load`/`unload` hide errors and are deprecated.
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
//! Every call has a deadline ([`runner::LAUNCHCTL_TIMEOUT`]): a launchctl that hangs is killed and
//! reported instead of hanging the caller.

use std::cell::Cell;
use std::io;
use std::path::Path;

use crate::LaunchdError;

mod runner;

pub use runner::{CommandOutput, CommandRunner, SystemRunner};

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
    /// How many times launchd has started it since it was loaded (`runs`).
    pub runs: Option<u64>,
    /// The last exit code, once it has exited at least once.
    pub last_exit_code: Option<i32>,
    /// The signal that ended its last run, when one did, as launchd names it
    /// (`Killed: 9`).
    pub last_signal: Option<String>,
}

impl LoadedAgent {
    /// Whether launchd reports the job's process as running.
    pub fn is_running(&self) -> bool {
        self.state.as_deref() == Some("running")
    }

    /// How its last run ended, when it failed: "exited with status 78",
    /// "was ended by a signal (Killed: 9)". `None` before its first exit and
    /// after a clean one (status 0: the kit's idle exit, a stop).
    pub fn last_failure(&self) -> Option<String> {
        match (&self.last_signal, self.last_exit_code) {
            (Some(signal), _) => Some(format!("was ended by a signal ({signal})")),
            (None, Some(code)) if code != 0 => Some(format!("exited with status {code}")),
            _ => None,
        }
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
        Launchctl::new(SystemRunner, spfs_autostart_protocol::sys::my_uid())
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
                socket: false,
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
                socket: false,
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

    /// Has launchd start the loaded job's process now, if it is not running
    /// (`launchctl kickstart gui/<uid>/<label>`): an always-on job after a
    /// clean exit (a stop) is otherwise left stopped until the next login.
    /// A job that is running is left as it is.
    pub fn kickstart(&self, label: &str) -> Result<(), LaunchdError> {
        let (command, output) =
            self.run_in_domain(|domain| vec!["kickstart".into(), format!("{domain}/{label}")])?;
        if output.success() {
            return Ok(());
        }
        let target = self.service_target(label);
        let text = output.text();
        let hint = if is_not_loaded(&output, &text) {
            "the job is no longer loaded (uninstalled, or Keep service running was turned off)"
                .to_owned()
        } else {
            format!(
                "the job may be disabled (`launchctl print-disabled {domain}` lists it; \
                 `launchctl enable {target}` enables it)",
                domain = self.domain()
            )
        };
        Err(LaunchdError::Launchctl {
            command,
            status: output.status,
            output: text,
            hint,
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

/// Reads the job's own top-level `state`, `pid`, `last exit code` and `last terminating signal`
/// lines; nested blocks
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
            "runs" => agent.runs = value.parse().ok(),
            // `78`, or with its name: `78: EX_CONFIG`; `(never exited)` before the first exit.
            "last exit code" => {
                agent.last_exit_code = value.split(':').next().and_then(|code| code.parse().ok());
            }
            "last terminating signal" => agent.last_signal = Some(value.to_owned()),
            _ => {}
        }
    }
    agent
}

#[cfg(test)]
mod tests;
