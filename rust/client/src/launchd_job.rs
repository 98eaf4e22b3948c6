//! The always-on LaunchAgent that runs this config's service, when launchd
//! has one loaded: the CLI's (`agent install`, its plist made from this
//! config) or the menu-bar app's ("Keep service running", at its endpoint).
//!
//! `ensure` leaves the start of such a service to launchd: a copy of its
//! own would race launchd's for the endpoint while launchd's is still
//! starting (at login: the loser fails, and launchd starts its own again
//! every 10 s), and after a stop (a clean exit, which launchd does not
//! restart) it would run unsupervised until the next login. So `ensure`
//! waits for launchd's process, or asks launchd to start one
//! (`launchctl kickstart`) when none runs.

use std::path::Path;

use spfs_autostart_agent::{
    APP_LABEL, AgentMode, AgentSpec, AgentStatus, CommandRunner, DEFAULT_LABEL, Launchctl,
    LoadedAgent, launch_agents_dir, launchd_plist, plist_program,
};

use crate::config::Config;
use crate::{Endpoint, Paths};

/// Where the app's bundled agent runs the service (`macos-app/Resources/agent.toml`,
/// checked by a test): spfs-fuse-macos's default address.
pub(crate) const APP_AGENT_ENDPOINT: Endpoint =
    Endpoint::Tcp(spfs_autostart_protocol::endpoint::UPSTREAM_ADDRESS);

/// A loaded always-on job that runs this config's service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AgentJob {
    /// Its label: [`DEFAULT_LABEL`] or [`APP_LABEL`].
    pub(crate) label: &'static str,
    /// What `launchctl print` says of it now.
    pub(crate) job: LoadedAgent,
}

/// What launchd says of the always-on job for this config's service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JobLook {
    /// None is loaded for it.
    None,
    /// This one is.
    Loaded(AgentJob),
    /// launchd could not be asked (`launchctl` failed): why.
    Unknown(String),
}

impl AgentJob {
    /// Its process, while launchd has one for it (running, or still being
    /// set up: `state = xpcproxy` names the pid already).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.job.pid
    }

    /// Whether launchd is about to start it (`spawn scheduled`: a restart
    /// it holds back, at most 10 s after the last).
    pub(crate) fn scheduled(&self) -> bool {
        self.job.state.as_deref() == Some("spawn scheduled")
    }

    /// Where its service's output goes ([`job_log`]).
    pub(crate) fn log(&self, paths: &Paths) -> String {
        job_log(self.label, paths)
    }

    /// Whether its service writes this config's log (the CLI's agent does;
    /// the app's writes the system log).
    pub(crate) fn writes_our_log(&self) -> bool {
        self.label != APP_LABEL
    }
}

/// Where the service of the job `label` writes its output: the CLI's agent
/// writes this config's log; the app's bundled plist names no log file (one
/// plist serves every user), and spfs-fuse-macos logs to the system log too.
pub(crate) fn job_log(label: &str, paths: &Paths) -> String {
    if label == APP_LABEL {
        app_job_log()
    } else {
        format!("the service's log {}", paths.log_file().display())
    }
}

/// Where the service of the app's job writes its output ([`job_log`]).
pub(crate) fn app_job_log() -> String {
    format!(
        "the system log (`{}`)",
        crate::logs::system_log_command("spfs-fuse-macos")
    )
}

/// What `ensure` asks of launchd: [`SystemLaunchd`] (`launchctl`), or a
/// test's stand-in that runs the service as launchd would.
pub(crate) trait Launchd: std::fmt::Debug + Send + Sync {
    /// Whether there is a launchd to ask (macOS).
    fn present(&self) -> bool;

    /// The always-on job loaded for this config's service, if any. Blocks.
    fn loaded(&self, config: &Config, paths: &Paths) -> JobLook;

    /// Have launchd start the job `label`'s process. Blocks.
    fn kickstart(&self, label: &'static str) -> Result<(), spfs_autostart_agent::LaunchdError>;
}

/// The user's launchd, through `launchctl`.
#[derive(Debug)]
pub(crate) struct SystemLaunchd;

impl Launchd for SystemLaunchd {
    fn present(&self) -> bool {
        spfs_autostart_agent::supported()
    }

    fn loaded(&self, config: &Config, paths: &Paths) -> JobLook {
        let Some(home) = crate::config::process_env("HOME").filter(|_| self.present()) else {
            return JobLook::None;
        };
        find(&Launchctl::system(), config, paths, Path::new(&home))
    }

    fn kickstart(&self, label: &'static str) -> Result<(), spfs_autostart_agent::LaunchdError> {
        Launchctl::system().kickstart(label)
    }
}

/// [`SystemLaunchd::loaded`], asking `lc`, with the user's LaunchAgents
/// under `home`.
fn find<R: CommandRunner>(
    lc: &Launchctl<R>,
    config: &Config,
    paths: &Paths,
    home: &Path,
) -> JobLook {
    let plist = launch_agents_dir(home).join(format!("{DEFAULT_LABEL}.plist"));
    let cli_agent = std::fs::read(plist)
        .ok()
        .and_then(|installed| installed_spec(config, paths, &installed))
        .is_some_and(|spec| spec.mode == AgentMode::Always);
    let loaded = |label: &'static str| match lc.print(label) {
        Ok(AgentStatus::Loaded(job)) => JobLook::Loaded(AgentJob { label, job }),
        Ok(AgentStatus::NotLoaded) => JobLook::None,
        Err(e) => JobLook::Unknown(e.to_string()),
    };
    if cli_agent {
        match loaded(DEFAULT_LABEL) {
            JobLook::None => {}
            look => return look,
        }
    }
    if config.endpoint == APP_AGENT_ENDPOINT {
        return loaded(APP_LABEL);
    }
    JobLook::None
}

/// What `ensure`, waiting for launchd's `job`, does next. `entry_runs`:
/// how often launchd had started it when this wait began (or when this call
/// asked it to start the job: `kicked`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NextStep {
    /// launchd has a process for it, or is about to start one: wait.
    Wait,
    /// It stopped cleanly while this call waited (a stop): start it again.
    Kickstart,
    /// launchd did not run it when asked (disabled, awaiting approval):
    /// start the service on demand.
    OnDemand,
    /// It ran since and failed (or exited when started at our request).
    Failed,
}

/// The next step for a wait on `job` (see [`NextStep`]).
pub(crate) fn next_step(job: &AgentJob, entry_runs: Option<u64>, kicked: bool) -> NextStep {
    if job.pid().is_some() {
        return NextStep::Wait;
    }
    let ran_since = matches!((job.job.runs, entry_runs), (Some(now), Some(then)) if now > then);
    // A crash with KeepAlive: launchd holds the next start back (`spawn
    // scheduled`), again and again for a start that always fails.
    if ran_since && job.job.last_failure().is_some() {
        return NextStep::Failed;
    }
    if job.scheduled() {
        return NextStep::Wait;
    }
    match (kicked, ran_since) {
        (false, _) => NextStep::Kickstart,
        (true, true) => NextStep::Failed,
        (true, false) => NextStep::OnDemand,
    }
}

/// The spec of the config that the `installed` plist is, in either mode, if
/// any. The program is resolved as a start resolves it, except that a bare
/// name (`spfs-fuse-macos`) resolves by who asks (the CLI finds the one on
/// `PATH`, the menu-bar app its bundled copy): an installed program of that
/// name that runs stands then, so the app does not call the CLI's agent
/// different.
pub(crate) fn installed_spec(
    config: &Config,
    paths: &Paths,
    installed: &[u8],
) -> Option<AgentSpec> {
    let bare_name = !config.program.contains('/');
    let installed_program = plist_program(installed).filter(|program| {
        bare_name
            && program.file_name() == Some(std::ffi::OsStr::new(&config.program))
            && nix::unistd::access(program, nix::unistd::AccessFlags::X_OK).is_ok()
    });
    [AgentMode::Always, AgentMode::Socket]
        .into_iter()
        .filter_map(|mode| {
            crate::agent_spec::spec_from_config(config, paths, mode, None, None).ok()
        })
        .map(|mut spec| {
            if let Some(program) = &installed_program {
                spec.program = program.clone();
            }
            spec
        })
        .find(|spec| launchd_plist(spec).is_ok_and(|plist| plist == installed))
}

#[cfg(test)]
mod tests;
