//! `doctor`: everything a user would otherwise debug by hand, checked in one
//! go, each finding with its fix.
//!
//! It looks and never acts: nothing is started, stopped, created or changed
//! (running the program's `--version` is the one process it starts). Each
//! check is independent, so one broken thing does not hide the next.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::ResolvedEndpoint;
use crate::client::ServiceManager;
use crate::status::State;

/// How long the program's `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(3);
/// Less free space than this in the log dir is worth a warning.
const LOW_SPACE_BYTES: u64 = 100 * 1024 * 1024;

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

fn finding(check: &str, severity: Severity, summary: String, fix: Option<String>) -> Finding {
    Finding {
        check: check.to_string(),
        severity,
        summary,
        fix,
    }
}

/// Check everything about the service `manager` manages.
pub async fn diagnose(manager: &ServiceManager) -> Report {
    let mut findings = Vec::new();
    let program = check_program(manager, &mut findings);
    #[cfg(target_os = "macos")]
    check_macfuse(manager, &mut findings);
    let state_ok = check_state_dir(manager, &mut findings);
    check_log_dir(manager, &mut findings);
    let state = if state_ok {
        check_endpoint(manager, &mut findings).await
    } else {
        None
    };
    check_agent(manager, &mut findings);
    check_config(manager, &mut findings);
    let next = next_step(manager, state, program.as_deref(), state_ok);
    Report { findings, next }
}

/// Found where, executable, and its version.
fn check_program(manager: &ServiceManager, findings: &mut Vec<Finding>) -> Option<PathBuf> {
    let program = match crate::spawn::resolve_program(&manager.config().program) {
        Ok(program) => program,
        Err(e) => {
            findings.push(finding(
                "program",
                Severity::Problem,
                e.message().to_string(),
                Some(
                    "install it, or set `program` in the config (or SPFS_AUTOSTART_PROGRAM) \
                     to its absolute path"
                        .into(),
                ),
            ));
            return None;
        }
    };
    match program_version(&program) {
        Some(version) => findings.push(finding(
            "program",
            Severity::Ok,
            format!("{} ({version})", program.display()),
            None,
        )),
        None => findings.push(finding(
            "program",
            Severity::Warning,
            format!(
                "{} is there, but `{} --version` did not say its version",
                program.display(),
                program.display()
            ),
            Some("check that it is the service program, not another tool of that name".into()),
        )),
    }
    Some(program)
}

/// The first line `program --version` prints, within [`VERSION_TIMEOUT`].
fn program_version(program: &Path) -> Option<String> {
    let mut child = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    out.lines()
        .next()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
}

/// macFUSE installed, and the mountpoint the service is given present.
#[cfg(target_os = "macos")]
fn check_macfuse(manager: &ServiceManager, findings: &mut Vec<Finding>) {
    let fs = Path::new("/Library/Filesystems/macfuse.fs");
    if fs.is_dir() {
        findings.push(finding(
            "macFUSE",
            Severity::Ok,
            format!("installed ({})", fs.display()),
            None,
        ));
    } else {
        findings.push(finding(
            "macFUSE",
            Severity::Problem,
            format!("not installed: {} is missing", fs.display()),
            Some(
                "install it: brew install --cask macfuse, then allow it in System Settings".into(),
            ),
        ));
    }
    // `service [--listen ADDR] [MOUNTPOINT]`: the last word that is no option.
    let args = &manager.config().args;
    let mountpoint = args
        .iter()
        .skip_while(|a| a.as_str() != "service")
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .last()
        .map_or("/spfs", String::as_str);
    if Path::new(mountpoint).is_dir() {
        findings.push(finding(
            "mountpoint",
            Severity::Ok,
            format!("{mountpoint} exists"),
            None,
        ));
    } else {
        findings.push(finding(
            "mountpoint",
            Severity::Problem,
            format!("{mountpoint} does not exist"),
            Some(
                "add `spfs` to /etc/synthetic.conf and reboot (spk's `make -f Makefile.macos \
                 setup-spfs-mount` does this)"
                    .into(),
            ),
        ));
    }
}

/// Owner and mode (the same check every command makes).
fn check_state_dir(manager: &ServiceManager, findings: &mut Vec<Finding>) -> bool {
    let dir = &manager.paths().state_dir;
    match manager.paths().check_state_dir() {
        Ok(true) => {
            findings.push(finding(
                "state dir",
                Severity::Ok,
                format!("{} (private, yours)", dir.display()),
                None,
            ));
            true
        }
        Ok(false) => {
            findings.push(finding(
                "state dir",
                Severity::Ok,
                format!(
                    "{} does not exist yet; ensure creates it 0700",
                    dir.display()
                ),
                None,
            ));
            true
        }
        Err(e) => {
            findings.push(finding(
                "state dir",
                Severity::Problem,
                e.to_string(),
                Some(format!(
                    "run `chmod 700 {}` if it is yours, or set SPFS_AUTOSTART_STATE_DIR \
                     (or state_dir) to a private directory",
                    dir.display()
                )),
            ));
            false
        }
    }
}

/// Exists or can be made, is ours, and has room.
fn check_log_dir(manager: &ServiceManager, findings: &mut Vec<Finding>) {
    let log = manager.paths().log_file();
    let Some(dir) = log.parent() else { return };
    let existing = dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("/"));
    match std::fs::metadata(existing) {
        Ok(meta) if existing == dir && meta.uid() != nix::unistd::getuid().as_raw() => {
            findings.push(finding(
                "log dir",
                Severity::Warning,
                format!(
                    "{} belongs to uid {}, not to you",
                    dir.display(),
                    meta.uid()
                ),
                Some("set SPFS_AUTOSTART_LOG_DIR (or log_dir) to a directory of yours".into()),
            ));
            return;
        }
        Ok(meta) if existing == dir && meta.mode() & 0o002 != 0 => {
            findings.push(finding(
                "log dir",
                Severity::Warning,
                format!("{} is writable by every user", dir.display()),
                Some(format!("run `chmod o-w {}`", dir.display())),
            ));
            return;
        }
        Ok(_) => {}
        Err(e) => {
            findings.push(finding(
                "log dir",
                Severity::Problem,
                format!("cannot look at {}: {e}", existing.display()),
                Some("set SPFS_AUTOSTART_LOG_DIR (or log_dir) to a directory of yours".into()),
            ));
            return;
        }
    }
    let free = nix::sys::statvfs::statvfs(existing).map(|fs| free_bytes(&fs));
    match free {
        Ok(free) if free < LOW_SPACE_BYTES => {
            findings.push(finding(
                "log dir",
                Severity::Warning,
                format!("{}: only {} MiB free", dir.display(), free / (1024 * 1024)),
                Some("free some space; a full disk loses the service's log".into()),
            ));
        }
        _ => findings.push(finding(
            "log dir",
            Severity::Ok,
            if existing == dir {
                format!("{}", dir.display())
            } else {
                format!("{} does not exist yet; ensure creates it", dir.display())
            },
            None,
        )),
    }
}

/// Bytes an unprivileged user may still write. The field types differ
/// between platforms (32-bit block counts on macOS), so the conversions that
/// are identities here are not elsewhere.
#[allow(clippy::useless_conversion)]
fn free_bytes(fs: &nix::sys::statvfs::Statvfs) -> u64 {
    u64::from(fs.blocks_available()) * u64::from(fs.fragment_size())
}

/// Who answers at the endpoint.
async fn check_endpoint(manager: &ServiceManager, findings: &mut Vec<Finding>) -> Option<State> {
    let endpoint = manager.endpoint().to_string();
    let status = match manager.status().await {
        Ok(status) => status,
        Err(e) => {
            findings.push(finding(
                "endpoint",
                Severity::Problem,
                format!("cannot look at {endpoint}: {e}"),
                Some("fix what the message names, then run `spfs-autostart doctor` again".into()),
            ));
            return None;
        }
    };
    let pid = status
        .pid
        .map(|p| format!(" (pid {p})"))
        .unwrap_or_default();
    let (severity, summary, fix) = match status.state {
        State::Stopped => (
            Severity::Ok,
            format!("{endpoint} is free: no service runs"),
            None,
        ),
        State::Running if adopted(manager, &status) => (
            Severity::Ok,
            format!(
                "{endpoint}: our plain service{pid} answers, adopted: it was started outside \
                 spfs-autostart (no instance lock); `ensure` uses it and `stop` stops it"
            ),
            None,
        ),
        State::Running => (
            Severity::Ok,
            format!(
                "{endpoint}: our {} service answers{pid}",
                if status.managed { "kit" } else { "plain" }
            ),
            None,
        ),
        State::Starting | State::Stopping => (
            Severity::Ok,
            format!("{endpoint}: the service{pid} is {}", status.state),
            None,
        ),
        State::Unresponsive => (
            Severity::Problem,
            format!(
                "{endpoint}: a service{pid} holds the instance lock but does not answer: {}",
                status.detail.clone().unwrap_or_default()
            ),
            Some("run `spfs-autostart stop`, then `spfs-autostart ensure`".into()),
        ),
        State::Conflict => match endpoint_taker(manager).await {
            Taker::OtherUser(user) => (
                Severity::Problem,
                format!(
                    "{endpoint} is another user's: {user} listens there; it is never used, \
                     signalled or asked to shut down"
                ),
                Some(format!(
                    "ask {user} to stop their service (or stop it as root), or choose another \
                     `endpoint` in the config (or SPFS_AUTOSTART_ENDPOINT)"
                )),
            ),
            Taker::NotGrpc => (
                Severity::Problem,
                format!(
                    "{endpoint} is taken by something that is not our service and does not \
                     speak gRPC: {}",
                    status.detail.clone().unwrap_or_default()
                ),
                Some(
                    "stop whatever listens there, or choose another `endpoint` in the config \
                     (or SPFS_AUTOSTART_ENDPOINT)"
                        .into(),
                ),
            ),
            Taker::Other => (
                Severity::Problem,
                format!(
                    "{endpoint} is taken by something that is not our service: {}",
                    status.detail.clone().unwrap_or_default()
                ),
                Some(
                    "stop whatever listens there, or choose another `endpoint` in the config \
                 (or SPFS_AUTOSTART_ENDPOINT)"
                        .into(),
                ),
            ),
        },
    };
    findings.push(finding("endpoint", severity, summary, fix));
    Some(status.state)
}

/// Whether a running service is ours but was started elsewhere: a plain
/// service with a pid while no instance lock is held.
fn adopted(manager: &ServiceManager, status: &crate::status::Status) -> bool {
    !status.managed
        && status.pid.is_some()
        && !crate::lock::is_held(&manager.paths().instance_lock()).unwrap_or(true)
}

/// What holds an endpoint that is not our service.
enum Taker {
    /// Another user's listener, described by [`crate::owner::user_name`].
    OtherUser(String),
    /// Something that does not answer gRPC.
    NotGrpc,
    /// A gRPC server that is not ours (or cannot be told apart).
    Other,
}

/// Who holds the endpoint: the listener's owner first (on TCP), then
/// whether it speaks gRPC at all.
async fn endpoint_taker(manager: &ServiceManager) -> Taker {
    let endpoint = manager.endpoint();
    if let ResolvedEndpoint::Tcp(addr) = endpoint
        && let Some(listener) = crate::owner::tcp_listener(*addr)
        && listener.is_foreign()
    {
        return Taker::OtherUser(crate::owner::user_name(listener.uid));
    }
    match crate::rpc::probe(endpoint, false, Duration::from_secs(1)).await {
        crate::rpc::Probe::Foreign(_) | crate::rpc::Probe::NoAnswer => Taker::NotGrpc,
        _ => Taker::Other,
    }
}

/// The LaunchAgent, where launchd exists: installed, loaded, matching the config.
fn check_agent(manager: &ServiceManager, findings: &mut Vec<Finding>) {
    use spfs_autostart_agent::{self as launchd, AgentMode, AgentStatus, DEFAULT_LABEL, Launchctl};
    if !launchd::supported() {
        return;
    }
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
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
    let (severity, summary, fix) = match (report.plist_installed, loaded) {
        (false, false) => (
            Severity::Ok,
            "not installed: the service starts on demand".to_string(),
            None,
        ),
        (false, true) => (
            Severity::Warning,
            format!("{DEFAULT_LABEL} is loaded but its plist is gone"),
            Some("run `spfs-autostart agent uninstall`, then install it again if wanted".into()),
        ),
        (true, false) => (
            Severity::Warning,
            format!(
                "{} is installed but not loaded",
                report.plist_path.display()
            ),
            Some("run `spfs-autostart agent install` (or log out and in)".into()),
        ),
        (true, true) => {
            let installed = std::fs::read(&report.plist_path).unwrap_or_default();
            let matches = [AgentMode::Always, AgentMode::Socket]
                .into_iter()
                .any(|mode| {
                    crate::agent_spec::spec_from_config(
                        manager.config(),
                        manager.paths(),
                        mode,
                        None,
                        None,
                    )
                    .ok()
                    .and_then(|spec| launchd::launchd_plist(&spec).ok())
                    .is_some_and(|plist| plist == installed)
                });
            if matches {
                (
                    Severity::Ok,
                    format!("{DEFAULT_LABEL} is installed and loaded"),
                    None,
                )
            } else {
                (
                    Severity::Warning,
                    format!(
                        "{} differs from what the config describes",
                        report.plist_path.display()
                    ),
                    Some("run `spfs-autostart agent install` to bring it in line".into()),
                )
            }
        }
    };
    findings.push(finding("LaunchAgent", severity, summary, fix));
}

/// What the configuration itself says that the user should know.
fn check_config(manager: &ServiceManager, findings: &mut Vec<Finding>) {
    let source = match &manager.config().source {
        Some(path) => path.display().to_string(),
        None => "built-in defaults".to_string(),
    };
    if let ResolvedEndpoint::Tcp(addr) = manager.endpoint() {
        findings.push(finding(
            "config",
            Severity::Warning,
            format!(
                "({source}) endpoint tcp://{addr} can be reached by every user of this machine"
            ),
            Some(
                "use endpoint = \"unix\" with a service that embeds the kit; spfs-fuse-macos \
                 speaks only TCP today"
                    .into(),
            ),
        ));
    } else {
        findings.push(finding("config", Severity::Ok, format!("({source})"), None));
    }
}

fn next_step(
    manager: &ServiceManager,
    state: Option<State>,
    program: Option<&Path>,
    state_ok: bool,
) -> String {
    let config = manager.config();
    if !state_ok {
        return "fail: the state dir is not private (see above)".into();
    }
    match state {
        Some(State::Running) => "use the running service (one RPC)".into(),
        Some(State::Starting) => "wait for the starting service to answer".into(),
        Some(State::Stopping) => "wait for the service to stop, then start a new one".into(),
        Some(State::Unresponsive) => format!(
            "wait up to {}s for the service to answer, then fail",
            config.ready_timeout.as_secs()
        ),
        Some(State::Conflict) => "fail: the endpoint is taken (see above)".into(),
        Some(State::Stopped) | None => match program {
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
            None => "fail: the program was not found (see above)".into(),
        },
    }
}
