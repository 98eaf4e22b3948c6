//! spfs-autostart's agent support: running the service under launchd (macOS) or systemd (Linux)
//! instead of, or beside, on-demand start.
//!
//! Some users want the service always running, or started by the service manager when the first
//! client connects. This module describes the service to those managers and, on macOS, installs
//! and removes the description:
//!
//! - [`launchd_plist`] writes a LaunchAgent property list for an [`AgentSpec`] in one of two
//!   [`AgentMode`]s: `always` (run at load, relaunched after a crash but not after a clean idle
//!   exit) or `socket` (launchd owns the Unix socket and starts the service on first connect;
//!   the service takes it with `launch_activate_socket(LAUNCHD_SOCKET_NAME)`).
//! - [`systemd_units`] writes the equivalent systemd user service (and `.socket`) units, so the
//!   same service runs under `systemctl --user` on Linux.
//! - [`install`], [`uninstall`] and [`status`] drive `launchctl bootstrap`/`bootout`/`print`
//!   through [`Launchctl`], which calls `launchctl` only through a [`CommandRunner`]. That seam
//!   is why the exact argv and the mapping of launchctl's real failure texts are unit-tested on
//!   Linux with a fake runner, while [`SystemRunner`] is the only code that needs a Mac.
//!
//! The crate is self-contained: it takes a fully resolved [`AgentSpec`] (absolute paths, the
//! kit's environment already filled in) and knows nothing of configuration files or the client.
//! The client crate (`spfs-autostart`) builds the spec from its configuration
//! (`spfs_autostart::agent_spec`) and maps [`LaunchdError`] into its error type through
//! [`LaunchdError::kind`].

#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod error;
mod install;
mod launchctl;
mod plist;
mod systemd;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

pub use error::{LaunchdError, LaunchdErrorKind};
pub use install::{
    AgentReport, PreparedInstall, UninstallOutcome, check_install, install, launch_agents_dir,
    prepare_install, status, uninstall,
};
pub use launchctl::{
    AgentStatus, BootoutOutcome, CommandOutput, CommandRunner, Launchctl, LoadedAgent, SystemRunner,
};
pub use plist::{launchd_plist, plist_program};
pub use systemd::{SystemdUnits, systemd_units};

/// The label (and plist file stem) the agent gets unless the configuration says otherwise.
pub const DEFAULT_LABEL: &str = "ai.spk.spfs-fuse-macos";

/// The label of the agent the menu-bar app bundles for "Keep service running" and registers
/// with `SMAppService`: its own, so the CLI's `agent install` and `uninstall` never act on the
/// app's job, and `doctor` tells the two apart (the app's leaves no plist in
/// `~/Library/LaunchAgents`).
pub const APP_LABEL: &str = "ai.spk.spfs-menu.spfs-fuse-macos";

/// The name of the socket entry in the plist's `Sockets` dictionary; the service passes it to
/// `launch_activate_socket` to receive the listening descriptor launchd created.
pub use spfs_autostart_protocol::LAUNCHD_SOCKET_NAME;

/// The longest label: its plist, `<label>.plist`, must have a file name, which is at most
/// 255 bytes on macOS and on Linux.
const MAX_LABEL_LEN: usize = 255 - ".plist".len();

/// Whether this system has launchd, so that [`install`], [`uninstall`] and [`status`] can work.
///
/// Everything in this module compiles and is tested everywhere; only the real `launchctl`
/// ([`SystemRunner`]) needs macOS. Generating plists and units works on every system.
pub fn supported() -> bool {
    cfg!(target_os = "macos")
}

/// Which way launchd (or systemd) runs the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AgentMode {
    /// Started at load (login) and relaunched after a crash, but not after a clean exit
    /// (status 0, e.g. the kit's idle exit): the next client's connection or `ensure` starts it.
    #[default]
    Always,
    /// launchd (or systemd) owns the Unix socket and starts the service when the first client
    /// connects; the service is not started at load and is not kept alive.
    Socket,
}

impl AgentMode {
    /// The spelling used on the command line and in configuration: `always` or `socket`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentMode::Always => "always",
            AgentMode::Socket => "socket",
        }
    }
}

impl fmt::Display for AgentMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgentMode {
    type Err = LaunchdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(AgentMode::Always),
            "socket" => Ok(AgentMode::Socket),
            other => Err(LaunchdError::invalid(
                "mode",
                format!(
                    "unknown agent mode {other:?}; use \"always\" (run at login, relaunch after a \
                     crash) or \"socket\" (start on the first connection)"
                ),
            )),
        }
    }
}

/// Which service manager's description to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UnitFormat {
    /// A launchd property list (macOS LaunchAgent).
    #[default]
    Launchd,
    /// systemd user units (a `.service`, plus a `.socket` in socket mode).
    Systemd,
}

impl UnitFormat {
    /// The spelling used on the command line: `launchd` or `systemd`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitFormat::Launchd => "launchd",
            UnitFormat::Systemd => "systemd",
        }
    }
}

impl fmt::Display for UnitFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UnitFormat {
    type Err = LaunchdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "launchd" => Ok(UnitFormat::Launchd),
            "systemd" => Ok(UnitFormat::Systemd),
            other => Err(LaunchdError::invalid(
                "format",
                format!(
                    "unknown unit format {other:?}; use \"launchd\" (macOS LaunchAgent plist) or \
                     \"systemd\" (systemd user units)"
                ),
            )),
        }
    }
}

/// Everything needed to describe the service to launchd or systemd.
///
/// Built by the caller from the configuration: paths are already resolved and absolute, and
/// `env` already holds the kit's settings (`SPFS_AUTOSTART_STATE_DIR`,
/// `SPFS_AUTOSTART_IDLE_TIMEOUT_SECS`, `SPFS_AUTOSTART_ENDPOINT`, ...) plus the user's extra
/// environment. Nothing here is looked up again, so the generated files say exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// The job's label, reverse-DNS style (default [`DEFAULT_LABEL`]); also the plist's file stem.
    pub label: String,
    /// The service executable; must be absolute (launchd does not search `PATH` reliably).
    pub program: PathBuf,
    /// Arguments after the program.
    pub args: Vec<String>,
    /// Environment variables for the service.
    pub env: BTreeMap<String, String>,
    /// Where stdout and stderr are appended; must be absolute.
    pub log_file: PathBuf,
    /// The Unix socket launchd/systemd listens on; required (and absolute) in
    /// [`AgentMode::Socket`], ignored otherwise.
    pub socket_path: Option<PathBuf>,
    /// How the service is run.
    pub mode: AgentMode,
    /// When set, the plist names the executable by this path relative to the `.app` bundle
    /// (`BundleProgram`, e.g. `Contents/MacOS/spfs-fuse-macos`) instead of `Program`, for a plist
    /// shipped inside the menu-bar app and registered with `SMAppService.agent(plistName:)`.
    pub bundle_program: Option<String>,
}

impl AgentSpec {
    /// A spec with the default label, no arguments, no environment, in [`AgentMode::Always`].
    pub fn new(program: impl Into<PathBuf>, log_file: impl Into<PathBuf>) -> Self {
        AgentSpec {
            label: DEFAULT_LABEL.to_owned(),
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            log_file: log_file.into(),
            socket_path: None,
            mode: AgentMode::Always,
            bundle_program: None,
        }
    }

    /// The socket path as text for the generators; validate() guarantees it in socket mode and
    /// that it is UTF-8.
    pub(crate) fn socket_path_text(&self) -> String {
        self.socket_path
            .as_deref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Checks that launchd and systemd will accept this spec, naming the field and the fix when
    /// they would not. Every generator and [`install`] calls this first, so a bad spec never
    /// reaches the disk.
    pub fn validate(&self) -> Result<(), LaunchdError> {
        validate_label(&self.label)?;
        require_absolute("program", &self.program)?;
        require_absolute("log_file", &self.log_file)?;
        for arg in &self.args {
            check_text("args", arg)?;
        }
        for (key, value) in &self.env {
            // systemd drops (and shells cannot set) any other name, so the
            // portable rule is enforced for both managers.
            if !spfs_autostart_protocol::env::is_portable_name(key) {
                return Err(LaunchdError::invalid(
                    "env",
                    format!(
                        "environment variable name {key:?} is not a portable name (letters, \
                         digits and '_', not starting with a digit); rename it in [env], \
                         e.g. RUST_LOG"
                    ),
                ));
            }
            check_text("env", value)?;
        }
        match (&self.mode, &self.socket_path) {
            (AgentMode::Socket, None) => {
                return Err(LaunchdError::invalid(
                    "socket_path",
                    "socket mode needs the Unix socket path launchd should listen on; \
                     set an absolute socket path (e.g. the state directory's service.sock) \
                     or use mode \"always\"",
                ));
            }
            (_, Some(path)) => {
                require_absolute("socket_path", path)?;
                // launchd and systemd bind it as given: the same limit as
                // the client's own bind.
                let len = path.as_os_str().len();
                if len > spfs_autostart_protocol::endpoint::MAX_SOCKET_PATH {
                    return Err(LaunchdError::invalid(
                        "socket_path",
                        format!(
                            "{} is {len} bytes, longer than the {} a Unix socket path may \
                             have; set a shorter state_dir (or SPFS_AUTOSTART_STATE_DIR)",
                            path.display(),
                            spfs_autostart_protocol::endpoint::MAX_SOCKET_PATH
                        ),
                    ));
                }
            }
            (AgentMode::Always, None) => {}
        }
        if let Some(bundle) = &self.bundle_program {
            validate_bundle_program(bundle)?;
            if self.mode == AgentMode::Socket {
                return Err(LaunchdError::invalid(
                    "bundle_program",
                    "a plist bundled in the app serves every user, but socket mode names one \
                     user's socket path; bundle the \"always\" mode, and install socket mode \
                     per user instead",
                ));
            }
        }
        Ok(())
    }
}

/// Labels must survive launchd, `launchctl` target strings (`gui/<uid>/<label>`), file names
/// (`<label>.plist`) and systemd unit names, so only reverse-DNS characters are allowed.
pub(crate) fn validate_label(label: &str) -> Result<(), LaunchdError> {
    const FIX: &str = "use a reverse-DNS name of letters, digits, '.', '-' and '_' such as \
                       \"ai.spk.spfs-fuse-macos\"";
    if label.is_empty() {
        return Err(LaunchdError::invalid(
            "label",
            format!("the label is empty; {FIX}"),
        ));
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(LaunchdError::invalid(
            "label",
            format!(
                "the label is {} bytes long, and a label may be at most {MAX_LABEL_LEN} bytes \
                 (its plist's file name, <label>.plist, may be at most 255); {FIX}",
                label.len()
            ),
        ));
    }
    if let Some(bad) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(LaunchdError::invalid(
            "label",
            format!(
                "the label {label:?} contains {bad:?}, which a label cannot hold (it names the \
                 agent's files and units); {FIX}"
            ),
        ));
    }
    // Empty dot-components would give a hidden plist file (".x.plist") or an empty systemd
    // unit name, so they are refused along with the leading dot.
    if label.starts_with('.') || label.ends_with('.') || label.contains("..") {
        return Err(LaunchdError::invalid(
            "label",
            format!(
                "the label {label:?} has an empty component (a leading, trailing or double '.'); {FIX}"
            ),
        ));
    }
    Ok(())
}

fn require_absolute(field: &'static str, path: &Path) -> Result<(), LaunchdError> {
    let text = path.to_str().ok_or_else(|| {
        LaunchdError::invalid(
            field,
            format!(
                "{} is not valid UTF-8, which a plist cannot hold; move it to a UTF-8 path",
                path.display()
            ),
        )
    })?;
    // A newline in a path could not be written on one systemd line; no real path needs one.
    if let Some(bad) = text.chars().find(|c| c.is_control()) {
        return Err(LaunchdError::invalid(
            field,
            format!("{text:?} contains the control character {bad:?}; use a path without it"),
        ));
    }
    if !path.is_absolute() {
        return Err(LaunchdError::invalid(
            field,
            format!(
                "{text:?} is a relative path, but launchd and systemd resolve nothing against the \
                 current directory; give an absolute path (e.g. /usr/local/bin/...)"
            ),
        ));
    }
    Ok(())
}

fn validate_bundle_program(bundle: &str) -> Result<(), LaunchdError> {
    check_text("bundle_program", bundle)?;
    let path = Path::new(bundle);
    let escapes = path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if bundle.is_empty() || path.is_absolute() || escapes {
        return Err(LaunchdError::invalid(
            "bundle_program",
            format!(
                "{bundle:?} must be a path inside the app bundle, relative and without '..', \
                 such as \"Contents/MacOS/spfs-fuse-macos\""
            ),
        ));
    }
    Ok(())
}

/// XML 1.0 (and so a plist) cannot carry NUL, most control characters or the noncharacters
/// U+FFFE and U+FFFF, and a carriage return reads back as a newline (XML normalizes line
/// ends); refuse them here rather than write a file that is not what was asked for.
fn check_text(field: &'static str, text: &str) -> Result<(), LaunchdError> {
    if let Some(bad) = text.chars().find(|&c| {
        (c.is_control() && !matches!(c, '\t' | '\n')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }) {
        return Err(LaunchdError::invalid(
            field,
            format!(
                "{text:?} contains the character {bad:?}, which a plist cannot hold as it is; \
                 remove it"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
