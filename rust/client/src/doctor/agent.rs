//! The LaunchAgent and the configuration itself.

use std::path::Path;

use super::{Finding, Severity, finding};
use crate::Paths;
use crate::ResolvedEndpoint;
use crate::client::ServiceManager;
use crate::config::Config;
use crate::launchd_job::{APP_AGENT_ENDPOINT, app_job_log, installed_spec, job_log};
use crate::remedy::{Operation, Remedy};

/// The LaunchAgents, where launchd exists: the CLI's (installed, loaded,
/// matching the config) and the menu-bar app's ("Keep service running",
/// registered with `SMAppService`, so it has no plist in
/// `~/Library/LaunchAgents`), each with how its last run ended.
pub(super) fn check_agent(config: &Config, paths: &Paths, findings: &mut Vec<Finding>) {
    use spfs_autostart_agent::{self as launchd, APP_LABEL, AgentStatus, DEFAULT_LABEL, Launchctl};
    if !launchd::supported() {
        return;
    }
    let Some(home) = crate::config::process_env("HOME") else {
        return;
    };
    let lc = Launchctl::system();
    let report = match launchd::status(&lc, DEFAULT_LABEL, Path::new(&home)) {
        Ok(report) => report,
        Err(e) => {
            findings.push(finding(
                "LaunchAgent",
                Severity::Warning,
                format!("cannot ask launchd: {e}"),
                None,
            ));
            return;
        }
    };
    let app_job = match lc.print(APP_LABEL) {
        Ok(AgentStatus::Loaded(job)) => Some(job),
        _ => None,
    };
    let cli_loaded = matches!(report.agent, AgentStatus::Loaded(_));
    // Without the CLI's agent, "not installed" would hide the app's.
    if cli_loaded || report.plist_installed || app_job.is_none() {
        check_cli_agent(config, paths, &report, app_job.is_some(), findings);
    }
    if let Some(job) = app_job {
        findings.extend(app_agent_findings(&job, cli_loaded, &config.endpoint));
    }
}

/// The CLI's agent (`agent install`), from launchd's `report` on it;
/// `app_loaded`: the app's own agent runs the service.
fn check_cli_agent(
    config: &Config,
    paths: &Paths,
    report: &spfs_autostart_agent::AgentReport,
    app_loaded: bool,
    findings: &mut Vec<Finding>,
) {
    use spfs_autostart_agent::{AgentStatus, DEFAULT_LABEL};
    let job = match &report.agent {
        AgentStatus::Loaded(job) => Some(job),
        AgentStatus::NotLoaded => None,
    };
    let loaded = job.is_some();
    // A socket-mode agent's socket, said after the agent itself.
    let mut socket_warning = None;
    let installed = std::fs::read(&report.plist_path).unwrap_or_default();
    let reinstall = [reinstall(&installed)];
    let (severity, summary, fix, remedies) = match (report.plist_installed, loaded) {
        (false, false) => (
            Severity::Ok,
            "not installed: the service starts on demand".to_string(),
            None,
            vec![],
        ),
        (false, true) => (
            Severity::Warning,
            format!(
                "{DEFAULT_LABEL} is loaded but its plist is gone (the menu-bar app 0.1.0 \
                 registered its Keep service running agent under this label)"
            ),
            Some(
                "uninstall the agent (it stops the service gracefully first), then install it \
                 again, or turn Keep service running on in the app, if wanted"
                    .into(),
            ),
            vec![Remedy::Run(Operation::AgentUninstall)],
        ),
        // Loading it beside the app's would race it for the endpoint.
        (true, false) if app_loaded => (
            Severity::Warning,
            format!(
                "{} is installed but not loaded; the menu-bar app's agent keeps the service \
                 running",
                report.plist_path.display()
            ),
            Some("uninstall it: it would start a second service at the next login".into()),
            vec![Remedy::Run(Operation::AgentUninstall)],
        ),
        (true, false) => (
            Severity::Warning,
            format!(
                "{} is installed but not loaded",
                report.plist_path.display()
            ),
            Some("install the agent again (or log out and in)".into()),
            reinstall.to_vec(),
        ),
        (true, true) => {
            if let Some(spec) = installed_spec(config, paths, &installed) {
                socket_warning = spec
                    .socket_path
                    .as_deref()
                    .and_then(|socket| socket_finding(socket, std::fs::symlink_metadata(socket)));
                (
                    Severity::Ok,
                    format!("{DEFAULT_LABEL} is installed and loaded"),
                    None,
                    vec![],
                )
            } else {
                (
                    Severity::Warning,
                    format!(
                        "{} differs from what the config describes",
                        report.plist_path.display()
                    ),
                    Some("install the agent again to bring it in line".into()),
                    reinstall.to_vec(),
                )
            }
        }
    };
    findings.push(finding("LaunchAgent", severity, summary, fix).with_remedies(remedies));
    findings.extend(socket_warning);
    let always_on = !socket_mode(&installed);
    let log = job_log(DEFAULT_LABEL, paths);
    findings.extend(job.and_then(|job| last_run_finding(job, DEFAULT_LABEL, always_on, &log)));
}

/// The menu-bar app's agent, loaded (`job`): it keeps the service running.
/// Beside the CLI's (`cli_loaded`), two jobs start the same service: the one
/// that finds the endpoint taken exits with a failure, and launchd starts it
/// again every 10 s. Its service listens at [`APP_AGENT_ENDPOINT`] whatever
/// the config says: a config's `endpoint` elsewhere looks where it is not.
fn app_agent_findings(
    job: &spfs_autostart_agent::LoadedAgent,
    cli_loaded: bool,
    endpoint: &crate::Endpoint,
) -> Vec<Finding> {
    use spfs_autostart_agent::{APP_LABEL, DEFAULT_LABEL};
    let mut findings = vec![finding(
        "LaunchAgent",
        Severity::Ok,
        format!("the menu-bar app keeps the service running ({APP_LABEL})"),
        None,
    )];
    if *endpoint != APP_AGENT_ENDPOINT {
        findings.push(
            finding(
                "LaunchAgent",
                Severity::Warning,
                format!(
                    "the menu-bar app's agent runs the service at {APP_AGENT_ENDPOINT}, but the \
                     config's endpoint is {endpoint}: ensure, status and the app look there, \
                     and may start a second service"
                ),
                Some(format!(
                    "set endpoint = \"{APP_AGENT_ENDPOINT}\" (or remove it), or turn off \
                     \"Keep service running\" in the app"
                )),
            )
            .with_remedies([Remedy::SetKey("endpoint")]),
        );
    }
    if cli_loaded {
        findings.push(
            finding(
                "LaunchAgent",
                Severity::Warning,
                format!(
                    "two agents run the service: {DEFAULT_LABEL} (agent install) and the \
                     menu-bar app's {APP_LABEL}; the one that finds the endpoint taken fails \
                     and is started again every 10 s"
                ),
                Some(
                    "keep one: uninstall the agent, or turn off \"Keep service running\" in \
                     the app"
                        .into(),
                ),
            )
            .with_remedies([Remedy::Run(Operation::AgentUninstall)]),
        );
    }
    findings.extend(last_run_finding(job, APP_LABEL, true, &app_job_log()));
    findings
}

/// What the loaded job's last run says, when it failed: an exit status
/// other than 0 or a signal. A job not running now after such a run is an
/// always-on service that launchd restarts after each failure (at most
/// every 10 s): a crash loop, a problem. Otherwise it is said as a warning:
/// launchd started it again, or a socket-activated one starts on the next
/// connection.
/// `label`: the job's; `log`: where its output went.
fn last_run_finding(
    job: &spfs_autostart_agent::LoadedAgent,
    label: &str,
    always_on: bool,
    log: &str,
) -> Option<Finding> {
    let how = job.last_failure()?;
    let fix = format!(
        "{log} says why; once that is fixed, launchd starts it again (at once: `launchctl \
         kickstart -k gui/$(id -u)/{label}`)"
    );
    let (severity, summary) = if job.is_running() {
        (
            Severity::Warning,
            format!("the service's last run {how}; launchd started it again"),
        )
    } else if always_on {
        (
            Severity::Problem,
            format!(
                "the service is not running: its last run {how}, and launchd starts it again \
                 after each failure, at most every 10 s"
            ),
        )
    } else {
        (
            Severity::Warning,
            format!("the service's last run {how}; launchd starts it on the next connection"),
        )
    };
    Some(finding("LaunchAgent run", severity, summary, Some(fix)))
}

/// Installing the agent again in the mode of the plist that is `installed`:
/// a front end's plain install may mean always-on (the CLI's does).
fn reinstall(installed: &[u8]) -> Remedy {
    if socket_mode(installed) {
        Remedy::Run(Operation::AgentInstallSocket)
    } else {
        Remedy::Run(Operation::AgentInstall)
    }
}

/// Whether the plist that is `installed` is a socket-mode one: ours are XML,
/// and only a socket-mode one has `Sockets`.
fn socket_mode(installed: &[u8]) -> bool {
    let sockets = b"<key>Sockets</key>";
    installed.windows(sockets.len()).any(|w| w == sockets)
}

/// The socket a loaded socket-mode agent has launchd hold, from what looking
/// at it `found`: nothing to say when it is there; when it is missing
/// (removed with the temporary dir it is in, which macOS empties at boot, or
/// by hand), launchd starts nothing on a connection, and `ensure` starts the
/// service on demand instead.
fn socket_finding(socket: &Path, found: std::io::Result<std::fs::Metadata>) -> Option<Finding> {
    use std::os::unix::fs::FileTypeExt;
    let summary = match found {
        Ok(meta) if meta.file_type().is_socket() => return None,
        Ok(_) => format!("{} is not a socket", socket.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!(
                "launchd holds no socket at {}: it is gone",
                socket.display()
            )
        }
        Err(e) => format!("{} cannot be looked at: {e}", socket.display()),
    };
    Some(
        finding(
            "LaunchAgent socket",
            Severity::Warning,
            format!("{summary}; the service is started on demand instead, not by launchd"),
            Some(
                "install the agent again in socket mode (launchd makes the socket when it \
                 loads the job); if it goes again after a restart, set state_dir to a \
                 directory outside the temporary dir"
                    .into(),
            ),
        )
        .with_remedies([Remedy::Run(Operation::AgentInstallSocket)]),
    )
}

/// What the configuration itself says that the user should know.
pub(super) fn check_config(manager: &ServiceManager, findings: &mut Vec<Finding>) {
    let mut source = match &manager.config().source {
        Some(path) => path.display().to_string(),
        None => "built-in defaults".to_string(),
    };
    // A value that is not the file's says where it came from.
    for (var, key) in &manager.config().env_overrides {
        source.push_str(&format!("; {key} from {var}"));
    }
    if let ResolvedEndpoint::Tcp(addr) = manager.endpoint() {
        findings.push(
            finding(
                "config",
                Severity::Warning,
                format!(
                    "{source}: endpoint tcp://{addr} can be reached by every user of this machine"
                ),
                Some(
                    "use endpoint = \"unix\" with a service that embeds the kit; spfs-fuse-macos \
                 speaks only TCP today"
                        .into(),
                ),
            )
            .with_remedies([Remedy::SetKey("endpoint")]),
        );
    } else {
        findings.push(finding("config", Severity::Ok, source, None));
    }
    if let Some(file) = &manager.config().source {
        findings.extend(super::writable_by_others(
            "config",
            file,
            "whoever can change it chooses the program that runs as you",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_mode_agents_missing_socket_is_said_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let look = |path: &Path| socket_finding(path, std::fs::symlink_metadata(path));

        let socket = dir.path().join("service.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(look(&socket), None, "there: nothing to say");

        let missing = dir.path().join("gone.sock");
        let finding = look(&missing).expect("a finding");
        assert_eq!(finding.severity, Severity::Warning);
        assert!(
            finding.summary.starts_with(&format!(
                "launchd holds no socket at {}: it is gone",
                missing.display()
            )),
            "{}",
            finding.summary
        );
        assert!(finding.summary.contains("started on demand instead"));
        assert_eq!(
            finding.remedies,
            [Remedy::Run(Operation::AgentInstallSocket)]
        );
        let fix = finding.fix.unwrap_or_default();
        assert!(
            fix.starts_with("install the agent again in socket mode"),
            "{fix}"
        );
        assert!(fix.contains("state_dir"), "{fix}");

        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let finding = look(&file).expect("a finding");
        assert!(
            finding
                .summary
                .starts_with(&format!("{} is not a socket", file.display())),
            "{}",
            finding.summary
        );

        let under_a_file = file.join("service.sock");
        let finding = look(&under_a_file).expect("a finding");
        assert!(
            finding.summary.contains("cannot be looked at"),
            "{}",
            finding.summary
        );
    }

    #[test]
    fn a_failed_last_run_is_said_and_a_crash_loop_is_a_problem() {
        use spfs_autostart_agent::LoadedAgent;
        let log = "the service's log /logs/service.log";
        let label = spfs_autostart_agent::DEFAULT_LABEL;
        let job = |state: &str, code, signal: Option<&str>| LoadedAgent {
            state: Some(state.into()),
            last_exit_code: code,
            last_signal: signal.map(Into::into),
            ..LoadedAgent::default()
        };
        // Never exited, or exited 0 (the kit's idle exit, a stop): nothing to say.
        for clean in [
            job("running", None, None),
            job("not running", Some(0), None),
        ] {
            assert_eq!(
                last_run_finding(&clean, label, true, log),
                None,
                "{clean:?}"
            );
        }
        let looping =
            last_run_finding(&job("not running", Some(78), None), label, true, log).unwrap();
        assert_eq!(looping.severity, Severity::Problem);
        assert!(
            looping.summary.contains("exited with status 78"),
            "{looping:?}"
        );
        let fix = looping.fix.unwrap();
        assert!(fix.contains("/logs/service.log"), "{fix}");
        assert!(
            fix.contains(&format!("kickstart -k gui/$(id -u)/{label}")),
            "{fix}"
        );
        let killed = last_run_finding(
            &job("not running", None, Some("Killed: 9")),
            label,
            true,
            log,
        );
        let killed = killed.unwrap();
        assert_eq!(killed.severity, Severity::Problem);
        assert!(killed.summary.contains("Killed: 9"), "{killed:?}");
        // Restarted, or waiting for its next connection: a warning.
        let restarted = last_run_finding(&job("running", Some(1), None), label, true, log).unwrap();
        assert_eq!(restarted.severity, Severity::Warning);
        let waiting =
            last_run_finding(&job("not running", Some(1), None), label, false, log).unwrap();
        assert_eq!(waiting.severity, Severity::Warning);
        assert!(waiting.summary.contains("next connection"), "{waiting:?}");
    }

    #[test]
    fn the_apps_agent_is_said_and_beside_the_clis_is_a_warning() {
        use spfs_autostart_agent::{APP_LABEL, LoadedAgent};
        let running = LoadedAgent {
            state: Some("running".into()),
            pid: Some(4242),
            ..LoadedAgent::default()
        };
        let alone = app_agent_findings(&running, false, &APP_AGENT_ENDPOINT);
        assert_eq!(alone.len(), 1, "{alone:?}");
        assert_eq!(alone[0].severity, Severity::Ok);
        assert!(alone[0].summary.contains(APP_LABEL), "{alone:?}");

        let both = app_agent_findings(&running, true, &APP_AGENT_ENDPOINT);
        assert_eq!(both.len(), 2, "{both:?}");
        assert_eq!(both[1].severity, Severity::Warning);
        assert!(both[1].summary.contains("two agents"), "{both:?}");
        assert_eq!(both[1].remedies, [Remedy::Run(Operation::AgentUninstall)]);

        // Its last run is judged as an always-on agent's.
        let looping = LoadedAgent {
            state: Some("not running".into()),
            last_exit_code: Some(1),
            ..LoadedAgent::default()
        };
        let down = app_agent_findings(&looping, false, &APP_AGENT_ENDPOINT);
        assert_eq!(down.last().unwrap().severity, Severity::Problem, "{down:?}");

        // A config that looks elsewhere than the agent's service listens.
        let elsewhere: crate::Endpoint = "tcp://127.0.0.1:40000".parse().unwrap();
        let apart = app_agent_findings(&running, false, &elsewhere);
        assert_eq!(apart.len(), 2, "{apart:?}");
        assert_eq!(apart[1].severity, Severity::Warning);
        assert!(
            apart[1].summary.contains("tcp://127.0.0.1:40000"),
            "{apart:?}"
        );
        assert_eq!(apart[1].remedies, [Remedy::SetKey("endpoint")]);
    }

    /// The endpoint the doctor assumes for the app's agent is the one its
    /// bundled plist is generated from.
    #[test]
    fn the_apps_agent_endpoint_is_the_one_agent_toml_gives() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../macos-app/Resources/agent.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        let toml: toml::Table = text.parse().unwrap();
        let endpoint: crate::Endpoint = toml["endpoint"].as_str().unwrap().parse().unwrap();
        assert_eq!(endpoint, APP_AGENT_ENDPOINT, "{}", file.display());
    }

    #[test]
    fn the_agent_is_installed_again_in_the_mode_it_has() {
        use spfs_autostart_agent::{AgentMode, AgentSpec};
        let plist = |mode| {
            let mut spec = AgentSpec::new("/bin/svc", "/tmp/svc.log");
            spec.mode = mode;
            if mode == AgentMode::Socket {
                spec.socket_path = Some("/tmp/svc.sock".into());
            }
            spfs_autostart_agent::launchd_plist(&spec).unwrap()
        };
        assert_eq!(
            reinstall(&plist(AgentMode::Socket)),
            Remedy::Run(Operation::AgentInstallSocket)
        );
        assert_eq!(
            reinstall(&plist(AgentMode::Always)),
            Remedy::Run(Operation::AgentInstall)
        );
        assert_eq!(reinstall(b""), Remedy::Run(Operation::AgentInstall));
    }

    /// A bare program name resolves by who asks (the app finds its bundled
    /// copy first): a plist the CLI installed with another copy of that name
    /// is still the config's; one naming another program, or a copy that
    /// does not run, is not.
    #[test]
    fn an_installed_plist_with_another_copy_of_a_bare_named_program_matches() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            program: "sh".into(),
            ..Config::default()
        };
        let paths = Paths {
            state_dir: dir.path().join("state"),
            log_dir: dir.path().join("logs"),
        };
        let installed_with = |program: &Path| {
            let mut spec = crate::agent_spec::spec_from_config(
                &config,
                &paths,
                spfs_autostart_agent::AgentMode::Always,
                None,
                None,
            )
            .unwrap();
            assert_ne!(spec.program, program, "another copy than the one resolved");
            spec.program = program.to_path_buf();
            spfs_autostart_agent::launchd_plist(&spec).unwrap()
        };
        let copy = dir.path().join("sh");
        std::fs::write(&copy, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = installed_spec(&config, &paths, &installed_with(&copy));
        assert_eq!(found.map(|spec| spec.program), Some(copy.clone()));

        let other = dir.path().join("bash");
        std::fs::write(&other, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(installed_spec(&config, &paths, &installed_with(&other)).is_none());

        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            installed_spec(&config, &paths, &installed_with(&copy)).is_none(),
            "a copy that does not run"
        );
    }
}
