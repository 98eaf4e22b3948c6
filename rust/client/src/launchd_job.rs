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

impl AgentJob {
    /// Its process, while launchd runs one.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.job.pid.filter(|_| self.job.is_running())
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
    fn loaded(&self, config: &Config, paths: &Paths) -> Option<AgentJob>;

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

    fn loaded(&self, config: &Config, paths: &Paths) -> Option<AgentJob> {
        if !self.present() {
            return None;
        }
        let home = crate::config::process_env("HOME")?;
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
) -> Option<AgentJob> {
    let plist = launch_agents_dir(home).join(format!("{DEFAULT_LABEL}.plist"));
    let cli_agent = std::fs::read(plist)
        .ok()
        .and_then(|installed| installed_spec(config, paths, &installed))
        .is_some_and(|spec| spec.mode == AgentMode::Always);
    let loaded = |label: &'static str| match lc.print(label) {
        Ok(AgentStatus::Loaded(job)) => Some(AgentJob { label, job }),
        _ => None,
    };
    if cli_agent && let Some(job) = loaded(DEFAULT_LABEL) {
        return Some(job);
    }
    if config.endpoint == APP_AGENT_ENDPOINT {
        return loaded(APP_LABEL);
    }
    None
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
