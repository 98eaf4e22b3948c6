//! `spfs-autostart agent ...`: the service under launchd (or systemd).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;
use spfs_autostart::{Error, ErrorKind, ServiceManager, StopOutcome};
use spfs_autostart_agent::{
    self as launchd, AgentMode, AgentReport, AgentSpec, AgentStatus, Launchctl, SystemRunner,
    UninstallOutcome, UnitFormat,
};

use crate::Failure;

/// `agent` subcommands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Print the LaunchAgent plist (or systemd units) for the configured service.
    Print {
        #[command(flatten)]
        which: Which,
        /// launchd (a plist) or systemd (user units).
        #[arg(long, default_value = "launchd")]
        format: UnitFormat,
        /// For an app bundle: `BundleProgram`, relative to the bundle.
        #[arg(long)]
        bundle_program: Option<String>,
    },
    /// Write ~/Library/LaunchAgents/<label>.plist and load it (macOS).
    Install {
        #[command(flatten)]
        which: Which,
    },
    /// Unload the agent and remove its plist (macOS).
    Uninstall {
        /// The agent's label.
        #[arg(long)]
        label: Option<String>,
    },
    /// Show whether the agent is installed and loaded (macOS).
    Status {
        /// The agent's label.
        #[arg(long)]
        label: Option<String>,
    },
}

/// Which agent to describe.
#[derive(Debug, Args)]
pub struct Which {
    /// always: run at login, relaunch after a crash; socket: start on first connect.
    #[arg(long, default_value = "always")]
    mode: AgentMode,
    /// The agent's label.
    #[arg(long)]
    label: Option<String>,
}

/// The flag of this CLI that sets the agent setting `field`, if one does.
pub fn flag_of(field: &str) -> Option<&'static str> {
    match field {
        "label" => Some("--label"),
        "bundle_program" => Some("--bundle-program"),
        _ => None,
    }
}

/// The home whose `Library/LaunchAgents` holds the agent, by the rule every
/// per-user path follows (`process_env`: an absolute UTF-8 `HOME`, else the
/// password database's when `HOME` is unset).
fn home() -> Result<PathBuf, Error> {
    spfs_autostart::config::process_env("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                "HOME is not set, or not an absolute UTF-8 path; set it to your home directory",
            )
        })
}

/// Run an `agent` subcommand.
/// Output that cannot be written (a full disk, a closed pipe) is a
/// failure, as for every other command: a plist redirected into its file
/// must not be reported written when it was not.
pub async fn run(
    manager: &ServiceManager,
    command: AgentCommand,
    json: bool,
) -> Result<(), Failure> {
    let spec = |which: &Which, bundle: Option<String>| {
        spfs_autostart::agent_spec::spec_from_config(
            manager.config(),
            manager.paths(),
            which.mode,
            which.label.as_deref(),
            bundle,
        )
    };
    let label = |label: Option<String>| label.unwrap_or_else(|| launchd::DEFAULT_LABEL.to_string());
    // A command in a hint acts on the same agent as this one.
    crate::hint::remember_agent_label(match &command {
        AgentCommand::Print { which, .. } | AgentCommand::Install { which } => {
            which.label.as_deref()
        }
        AgentCommand::Uninstall { label } | AgentCommand::Status { label } => label.as_deref(),
    });
    // The app's own agent is the app's to register: a plist of ours under
    // its label, or a bootout, would leave the app's setting wrong.
    let label_given = match &command {
        AgentCommand::Install { which } => which.label.as_deref(),
        AgentCommand::Uninstall { label } => label.as_deref(),
        _ => None,
    };
    if label_given == Some(launchd::APP_LABEL) {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "{} is the menu-bar app's agent (Keep service running), which the app \
                 registers itself: turn it on or off in the app",
                launchd::APP_LABEL
            ),
        )
        .into());
    }
    let mut out = std::io::stdout().lock();
    match command {
        AgentCommand::Print {
            which,
            format,
            bundle_program,
        } => {
            if format == UnitFormat::Systemd && bundle_program.is_some() {
                // Said, not dropped: the user expects it in the output.
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "--bundle-program sets a plist's BundleProgram, for the launchd format \
                     only; systemd units name the program by its path",
                )
                .into());
            }
            let spec = spec(&which, bundle_program)?;
            print_units(&mut out, &spec, format, json)?;
        }
        AgentCommand::Install { which } => {
            let spec = spec(&which, None)?;
            install(manager, &mut out, spec, which.mode, json).await?;
        }
        AgentCommand::Uninstall { label: name } => {
            let name = label(name);
            let lc = Launchctl::system();
            stop_the_job_first(manager, &lc, &name).await?;
            let outcome = launchd::uninstall(&lc, &name, &home()?)?;
            print_uninstalled(&mut out, &name, &outcome, json)?;
        }
        AgentCommand::Status { label: name } => {
            let report = launchd::status(&Launchctl::system(), &label(name), &home()?)?;
            print_status(&mut out, &report, json)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Install the agent `spec` describes (in `mode`) and say so on `out`.
async fn install(
    manager: &ServiceManager,
    out: &mut impl Write,
    spec: AgentSpec,
    mode: AgentMode,
    json: bool,
) -> Result<(), Failure> {
    let home = home()?;
    // launchd binds a socket-mode job's socket at load, in a directory it does not
    // create: the state dir, made (0700) and checked as `ensure` makes it. (Another
    // socket's directory must exist, as for `ensure`.)
    if mode == AgentMode::Socket
        && manager.config().endpoint == spfs_autostart::Endpoint::StateDirSocket
    {
        launchd::check_install(&Launchctl::system(), &spec)?;
        manager.paths().create_state_dir()?;
    }
    // Every step that can fail before launchd is touched runs before the stop: a
    // refused install leaves the running service alone. On a thread of its own, so
    // Ctrl-C still ends a wait for another install of the label.
    let prepared = {
        let (spec, home) = (spec.clone(), home.clone());
        tokio::task::spawn_blocking(move || {
            launchd::prepare_install(&Launchctl::system(), &spec, &home)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("the install failed: {e}")))??
    };
    let stopped = stop_for_launchd(manager).await?;
    let path = prepared.finish(&Launchctl::system())?;
    print_installed(out, &spec, &path, stopped, json)?;
    Ok(())
}

/// Before an install, the running service, whoever started it, is stopped
/// its own way, and its pid returned: from now on launchd runs it. A job
/// being replaced would be ended by launchd with SIGTERM, which
/// spfs-fuse-macos does not handle (it dies leaving its mount behind); one
/// started on demand would keep the port, and launchd's instance would fail
/// and be started again every 10 s (a kit service's would exit at once, and
/// nothing would keep the service running).
async fn stop_for_launchd(manager: &ServiceManager) -> Result<Option<u32>, Failure> {
    if !launchd::supported() {
        return Ok(None);
    }
    Ok(match manager.stop().await? {
        StopOutcome::Stopped { pid, .. } => pid,
        StopOutcome::NotRunning => None,
    })
}

/// Before an uninstall, the service the job `label` runs is stopped its own
/// way: launchd would end it with SIGTERM (see [`stop_for_launchd`]). A job
/// that is not running, or runs another process than the service, is left
/// to launchd, and a service started on demand runs on.
async fn stop_the_job_first(
    manager: &ServiceManager,
    lc: &Launchctl<SystemRunner>,
    label: &str,
) -> Result<(), Failure> {
    if !launchd::supported() {
        return Ok(());
    }
    let pid = match lc.print(label) {
        Ok(AgentStatus::Loaded(job)) if job.is_running() => job.pid,
        _ => None,
    };
    if let Some(pid) = pid {
        manager.stop_if_pid(pid).await?;
    }
    Ok(())
}

/// `agent print`: the plist, or the systemd service unit and its socket unit.
/// In JSON, each file by the name it is installed under, so a script can
/// write them out without splitting the text.
fn print_units(
    out: &mut impl Write,
    spec: &AgentSpec,
    format: UnitFormat,
    json: bool,
) -> Result<(), Failure> {
    let files: Vec<(String, String)> = match format {
        UnitFormat::Launchd => {
            // plist's XML writer emits UTF-8.
            let plist = String::from_utf8_lossy(&launchd::launchd_plist(spec)?).into_owned();
            vec![(format!("{}.plist", spec.label), plist)]
        }
        UnitFormat::Systemd => {
            let units = launchd::systemd_units(spec)?;
            let mut files = vec![(units.service_name, units.service)];
            if let (Some(name), Some(socket)) = (units.socket_name, units.socket) {
                files.push((name, socket));
            }
            files
        }
    };
    if json {
        let files: Vec<_> = files
            .iter()
            .map(|(name, text)| json!({ "name": name, "text": text }))
            .collect();
        writeln!(out, "{}", json!({ "files": files }))?;
    } else {
        // A plist as is, to be redirected into its file; systemd's units
        // each after a comment line naming it.
        for (i, (name, text)) in files.iter().enumerate() {
            if format == UnitFormat::Systemd {
                writeln!(out, "{}# {name}", if i > 0 { "\n" } else { "" })?;
            }
            out.write_all(text.as_bytes())?;
        }
    }
    Ok(())
}

/// `agent install`: where the plist went.
fn print_installed(
    out: &mut impl Write,
    spec: &AgentSpec,
    path: &Path,
    stopped: Option<u32>,
    json: bool,
) -> std::io::Result<()> {
    if json {
        writeln!(
            out,
            "{}",
            json!({ "installed": path, "label": spec.label, "stopped_pid": stopped })
        )?;
        return Ok(());
    }
    if let Some(pid) = stopped {
        writeln!(
            out,
            "stopped the running service (pid {pid}): launchd runs it from now on"
        )?;
    }
    writeln!(
        out,
        "installed and loaded {} ({})",
        spec.label,
        path.display()
    )
}

/// `agent uninstall`: whether there was anything to remove.
fn print_uninstalled(
    out: &mut impl Write,
    name: &str,
    outcome: &UninstallOutcome,
    json: bool,
) -> std::io::Result<()> {
    let removed = matches!(outcome, UninstallOutcome::Removed { .. });
    if json {
        writeln!(out, "{}", json!({ "label": name, "removed": removed }))?;
    } else if removed {
        writeln!(out, "unloaded and removed {name}")?;
    } else {
        writeln!(out, "{name} was not installed")?;
    }
    Ok(())
}

/// `agent status`: the plist, and whether launchd has the agent loaded.
fn print_status(out: &mut impl Write, report: &AgentReport, json: bool) -> std::io::Result<()> {
    let (loaded, state, pid) = match &report.agent {
        AgentStatus::NotLoaded => (false, None, None),
        AgentStatus::Loaded(agent) => (true, agent.state.clone(), agent.pid),
    };
    if json {
        writeln!(
            out,
            "{}",
            json!({
                "label": report.label,
                "plist": report.plist_path,
                "installed": report.plist_installed,
                "loaded": loaded,
                "state": state,
                "pid": pid,
            })
        )?;
    } else {
        writeln!(out, "label      {}", report.label)?;
        writeln!(
            out,
            "plist      {} ({})",
            report.plist_path.display(),
            if report.plist_installed {
                "installed"
            } else {
                "absent"
            }
        )?;
        writeln!(out, "loaded     {}", if loaded { "yes" } else { "no" })?;
        if let Some(state) = state {
            writeln!(out, "state      {state}")?;
        }
        if let Some(pid) = pid {
            writeln!(out, "pid        {pid}")?;
        }
    }
    Ok(())
}
