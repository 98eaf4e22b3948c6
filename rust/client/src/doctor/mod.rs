//! `doctor`: everything a user would otherwise debug by hand, checked in one
//! go, each finding with its fix.
//!
//! It looks and never acts: nothing is started, stopped, created or changed
//! (running the program's `--version` is the one process it starts). Each
//! check is independent, so one broken thing does not hide the next.

mod agent;
mod dirs;
mod endpoint;
mod program;

use std::path::Path;

use serde::Serialize;

use crate::client::ServiceManager;
use crate::config::Config;
use crate::remedy::Remedy;
use crate::status::{State, Status};
use agent::{check_agent, check_config};
use dirs::{check_log_dir, check_log_size, check_shared_log, check_state_dir};
use endpoint::{check_endpoint, check_version};
#[cfg(target_os = "macos")]
use program::check_macfuse;
use program::check_program;
pub(crate) use program::end_version_probe;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// As it should be.
    Ok,
    /// Works, but the user should know.
    Warning,
    /// Stops the service from working; `doctor` exits 1.
    Problem,
}

/// One thing checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked: `program`, `endpoint`, `state dir`, ...
    pub check: String,
    /// How it went.
    pub severity: Severity,
    /// What was found.
    pub summary: String,
    /// What to do about it, for warnings and problems.
    pub fix: Option<String>,
    /// The fix as data, where it is a config key or an operation: each
    /// front end says it in its own words (a CLI flag or command, a menu
    /// item), as for errors. Empty when the fix is outside the project
    /// (a `chmod`, installing macFUSE, freeing disk space).
    #[serde(skip)]
    pub remedies: Vec<Remedy>,
}

impl Finding {
    /// This finding with `remedies` appended.
    fn with_remedies(mut self, remedies: impl IntoIterator<Item = Remedy>) -> Finding {
        self.remedies.extend(remedies);
        self
    }
}

/// Everything `doctor` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every finding, in the order checked.
    pub findings: Vec<Finding>,
    /// What `ensure` would do next.
    pub next: String,
}

impl Report {
    /// No finding is a problem.
    pub fn healthy(&self) -> bool {
        self.findings
            .iter()
            .all(|f| f.severity != Severity::Problem)
    }
}

/// The report when the configuration itself cannot be used (`error`, from
/// loading or validating it): the one finding, a problem, and nothing else
/// checked, since every other check reads the configuration.
pub fn unusable_config(error: &crate::Error) -> Report {
    Report {
        findings: vec![
            finding(
                "config",
                Severity::Problem,
                error.to_string(),
                Some("fix the config (the message names the key or the variable)".into()),
            )
            .with_remedies(error.remedies().iter().copied()),
        ],
        next: "fail: the config cannot be used (see above)".into(),
    }
}

/// What lets another user change the file at `path` (following links, as
/// it is read or run): its owner, when that is neither you nor root, or its
/// group and other write bits. `None` when only you (or root) can.
fn others_can_write(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let owner = meta.uid();
    let mode = meta.mode() & 0o7777;
    if owner != crate::sys::my_uid() && owner != 0 {
        return Some(format!("belongs to uid {owner}, not to you"));
    }
    (mode & 0o022 != 0).then(|| format!("can be written by its group or by others (mode {mode:o})"))
}

/// The warning for a file others can change (see [`others_can_write`]),
/// `what` saying what a change would do.
fn writable_by_others(check: &str, path: &Path, what: &str) -> Option<Finding> {
    let why = others_can_write(path)?;
    Some(finding(
        check,
        Severity::Warning,
        format!("{} {why}: {what}", path.display()),
        Some(format!(
            "make it yours alone: `chmod go-w {}` (and `chown` it, if it is another user's)",
            crate::shell::word(path)
        )),
    ))
}

fn finding(check: &str, severity: Severity, summary: String, fix: Option<String>) -> Finding {
    Finding {
        check: check.to_string(),
        severity,
        summary,
        fix,
        remedies: Vec::new(),
    }
}

/// Check everything about the service `manager` manages.
///
/// Two checks wait on other programs: the program's `--version` (up to
/// seconds for a hung one) and, on macOS, `launchctl`. They run on a
/// blocking thread of the caller's runtime, beside the endpoint check, so
/// a runtime that also serves other work (the bindings', a host's
/// single-threaded one) goes on meanwhile.
pub async fn diagnose(manager: &ServiceManager) -> Report {
    let (config, paths) = (manager.config().clone(), manager.paths().clone());
    let waiting = tokio::task::spawn_blocking(move || {
        let (mut program_findings, mut agent_findings) = (Vec::new(), Vec::new());
        let program = check_program(&config, &mut program_findings);
        check_agent(&config, &paths, &mut agent_findings);
        (program, program_findings, agent_findings)
    });
    let mut looked = Vec::new();
    #[cfg(target_os = "macos")]
    check_macfuse(manager, &mut looked).await;
    let state_ok = check_state_dir(manager, &mut looked);
    check_log_dir(manager, &mut looked);
    let seen = if state_ok {
        check_endpoint(manager, &mut looked).await
    } else {
        None
    };
    let activated = seen.as_ref().is_some_and(|seen| seen.activated);
    let status = seen.map(|seen| seen.status);
    if status
        .as_ref()
        .is_some_and(|status| matches!(status.state, State::Running | State::Unresponsive))
    {
        check_log_size(manager, true, &mut looked);
    }
    if status
        .as_ref()
        .is_some_and(|status| status.state == State::Stopped)
    {
        check_shared_log(manager, &mut looked);
        check_log_size(manager, false, &mut looked);
        looked.extend(last_failed_start(manager));
    }
    let version_next = status
        .as_ref()
        .and_then(|status| check_version(manager, status, &mut looked));
    if let Some(status) = &status {
        looked.extend(unused_stop_sequence(manager.config(), status));
    }
    let (program, mut findings, agent_findings) = match waiting.await {
        Ok(checked) => checked,
        // A panic in the checks is the caller's, as if they ran here.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    // The findings in the order of the checks: the program, the files and
    // the endpoint, the agent, the config.
    findings.extend(looked);
    findings.extend(agent_findings);
    check_config(manager, &mut findings);
    let state = status.as_ref().map(|status| status.state);
    let service_pid = status.and_then(|status| status.pid);
    let next = match version_next {
        Some(next) => next.to_string(),
        None if activated => format!(
            "connect to {}, where launchd or systemd starts the service",
            manager.endpoint()
        ),
        None => next_step(
            manager,
            (state, service_pid),
            program.as_deref(),
            state_ok,
            &findings,
        ),
    };
    Report { findings, next }
}

/// A `stop_sequence` set for a service that embeds the kit, which is always
/// stopped by `Control.Shutdown`, SIGTERM, SIGKILL: the setting does
/// nothing, and a user who set it should know.
fn unused_stop_sequence(config: &Config, status: &Status) -> Option<Finding> {
    use crate::config::StopStep;
    let default = StopStep::default_sequence();
    if !status.managed || config.stop_sequence == default {
        return None;
    }
    // Its first signal ends a start that is abandoned or times out, a kit
    // service's too.
    let first_signal = |steps: &[StopStep]| {
        steps.iter().find_map(|step| match step {
            StopStep::Signal(signal) => Some(*signal),
            StopStep::Shutdown => None,
        })
    };
    let counts = match first_signal(&config.stop_sequence) {
        Some(signal) if Some(signal) != first_signal(&default) => format!(
            "of the setting only its first signal, {signal}, counts: it ends a start that is \
             abandoned or times out"
        ),
        _ => "the setting changes nothing for it".to_string(),
    };
    Some(
        finding(
            "config",
            Severity::Warning,
            format!(
                "stop_sequence is set, but the running service embeds the kit, which is always \
                 stopped by Control.Shutdown, then SIGTERM, then SIGKILL: {counts}"
            ),
            Some("remove stop_sequence from the config, unless that first signal is meant".into()),
        )
        .with_remedies([Remedy::SetKey("stop_sequence")]),
    )
}

/// For a state dir where no service runs: the last start's failure, when
/// the last start failed (a later success forgets it), as a warning with
/// its fixes and when it was.
fn last_failed_start(manager: &ServiceManager) -> Option<Finding> {
    let (ago, error) = manager.last_failed_start()?;
    let ago = match ago.as_secs() {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86400 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86400),
    };
    Some(
        finding(
            "last start",
            Severity::Warning,
            format!("the last start, {ago} ago, failed: {error}"),
            None,
        )
        .with_remedies(error.remedies().iter().copied()),
    )
}

/// What `ensure` would do now; `seen`: the state the endpoint check found,
/// and the pid it names.
fn next_step(
    manager: &ServiceManager,
    (state, service_pid): (Option<State>, Option<u32>),
    program: Option<&Path>,
    state_ok: bool,
    findings: &[Finding],
) -> String {
    let config = manager.config();
    if !state_ok {
        return "fail: the state dir cannot be used (see above)".into();
    }
    // A start needs its log too, a directory for its socket, and args that
    // agree with the endpoint: with a problem there, `ensure` fails before
    // the program runs.
    let start_blocked = findings.iter().find(|f| {
        f.severity == Severity::Problem
            && matches!(
                f.check.as_str(),
                "log dir" | "state dir" | "endpoint" | "args"
            )
    });
    match state {
        Some(State::Running) => "use the running service (one RPC)".into(),
        Some(State::Starting) => "wait for the starting service to answer".into(),
        Some(State::Stopping) => "wait for the service to stop, then start a new one".into(),
        Some(State::Unresponsive) => format!(
            "wait up to {}s for the service to answer, then fail",
            config.ready_timeout.as_secs()
        ),
        Some(State::Conflict) if service_pid.is_some() => {
            "fail: the service serves at another endpoint; stop it first (see above)".into()
        }
        Some(State::Conflict) => "fail: the endpoint is taken (see above)".into(),
        // The endpoint could not be looked at: what `ensure` would do is
        // not known, but it would meet the same failure.
        None if findings
            .iter()
            .any(|f| f.severity == Severity::Problem && f.check == "endpoint") =>
        {
            "fail: the endpoint cannot be looked at (see above)".into()
        }
        Some(State::Stopped) | None => match program {
            Some(_) if let Some(blocked) = start_blocked => {
                format!("fail: the {} cannot be used (see above)", blocked.check)
            }
            Some(program) => {
                let mut line = format!("start {}", program.display());
                for arg in &config.args {
                    line.push(' ');
                    line.push_str(arg);
                }
                format!(
                    "{line} and wait up to {}s for it to answer at {}",
                    config.ready_timeout.as_secs(),
                    manager.endpoint()
                )
            }
            None => "fail: the program cannot be started (see above)".into(),
        },
    }
}
