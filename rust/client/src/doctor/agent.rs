//! The LaunchAgent and the configuration itself.

use std::path::Path;

use super::{Finding, Severity, finding};
use crate::Paths;
use crate::ResolvedEndpoint;
use crate::client::ServiceManager;
use crate::config::Config;
use crate::remedy::{Operation, Remedy};

/// The LaunchAgent, where launchd exists: installed, loaded, matching the config.
pub(super) fn check_agent(config: &Config, paths: &Paths, findings: &mut Vec<Finding>) {
    use spfs_autostart_agent::{self as launchd, AgentMode, AgentStatus, DEFAULT_LABEL, Launchctl};
    if !launchd::supported() {
        return;
    }
    let Some(home) = crate::config::process_env("HOME") else {
        return;
    };
    let report = match launchd::status(&Launchctl::system(), DEFAULT_LABEL, Path::new(&home)) {
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
    let loaded = matches!(report.agent, AgentStatus::Loaded(_));
    let reinstall = [Remedy::Run(Operation::AgentInstall)];
    let (severity, summary, fix, remedies) = match (report.plist_installed, loaded) {
        (false, false) => (
            Severity::Ok,
            "not installed: the service starts on demand".to_string(),
            None,
            vec![],
        ),
        (false, true) => (
            Severity::Warning,
            format!("{DEFAULT_LABEL} is loaded but its plist is gone"),
            Some("uninstall the agent, then install it again if wanted".into()),
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
            let installed = std::fs::read(&report.plist_path).unwrap_or_default();
            let matches = [AgentMode::Always, AgentMode::Socket]
                .into_iter()
                .any(|mode| {
                    crate::agent_spec::spec_from_config(config, paths, mode, None, None)
                        .ok()
                        .and_then(|spec| launchd::launchd_plist(&spec).ok())
                        .is_some_and(|plist| plist == installed)
                });
            if matches {
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
        findings.push(finding(
            "config",
            Severity::Warning,
            format!("{source}: endpoint tcp://{addr} can be reached by every user of this machine"),
            Some(
                "use endpoint = \"unix\" with a service that embeds the kit; spfs-fuse-macos \
                 speaks only TCP today"
                    .into(),
            ),
        ));
    } else {
        findings.push(finding("config", Severity::Ok, source, None));
    }
}
