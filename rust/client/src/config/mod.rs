//! Configuration: built-in defaults, then a TOML file, then the environment.
//!
//! The file is strict: an unknown key, a value of the wrong type or an
//! endpoint that parses to nothing is an error that names the file, the line
//! and the column, because a typo silently ignored is a service that silently
//! does the wrong thing.
//!
//! The pieces, by what they do:
//! - [`Config`] (here): the effective configuration, typed for the code;
//! - [`keys`]: [`ConfigView`], every key as the file and `config` write it,
//!   the one list of keys;
//! - `file`: finding, reading and writing the TOML file;
//! - [`env`](mod@env): the environment variables and what they override;
//! - `validate`: the rules every value obeys, one table of numeric bounds,
//!   and the setters that apply them;
//! - `values`: [`StopStep`], [`VersionPolicy`] ([`Endpoint`] is the
//!   protocol's).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub mod env;
mod file;
pub mod keys;
mod validate;
mod values;

pub use env::process_env;
pub use file::user_config_file;
pub use keys::ConfigView;
pub use spfs_autostart_protocol::endpoint::Endpoint;
pub use validate::{
    MAX_LOG_KEEP, MAX_LOG_MAX_BYTES, MIN_LOG_MAX_BYTES, check_ready_timeout_secs,
    check_stop_timeout_secs,
};
pub use values::{StopStep, VersionPolicy};

/// The effective configuration of one managed service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The program: a bare name (looked up next to the current executable,
    /// then on `PATH`) or an absolute path.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Where it listens.
    pub endpoint: Endpoint,
    /// The environment variable through which a plain service learns a TCP
    /// endpoint, set to `IP:PORT` (spfs-fuse-macos reads
    /// `SPFS_MACFUSE_LISTEN_ADDRESS`); `None` sets none. Kit services learn
    /// every endpoint from `SPFS_AUTOSTART_ENDPOINT` regardless.
    pub endpoint_env: Option<String>,
    /// How long a start may take before the child is killed.
    pub ready_timeout: Duration,
    /// How long each stop step (graceful, TERM, KILL) may take; a plain
    /// service's `shutdown` step is given a fixed 0.25 s instead.
    pub stop_timeout: Duration,
    /// How a plain service is stopped, step by step (`stop_sequence`).
    pub stop_sequence: Vec<StopStep>,
    /// Passed to kit services: exit after this long idle; zero means never.
    pub idle_timeout: Duration,
    /// The version the running service must report, if any.
    pub expected_version: Option<String>,
    /// What a version mismatch does.
    pub on_version_mismatch: VersionPolicy,
    /// Extra environment for the service.
    pub env: BTreeMap<String, String>,
    /// Overrides the per-user state dir.
    pub state_dir: Option<PathBuf>,
    /// Overrides the per-user log dir.
    pub log_dir: Option<PathBuf>,
    /// Rotate the log at spawn when it is larger than this.
    pub log_max_bytes: u64,
    /// How many rotated logs to keep (`service.log.1` ...).
    pub log_keep: u32,
    /// The file this configuration was read from, if any.
    pub source: Option<PathBuf>,
    /// Each environment variable that set a key when this was loaded, with
    /// that key (`("SPFS_AUTOSTART_PROGRAM", "program")`), so `config` and
    /// `doctor` can say why a value is not the file's. A setter for the key
    /// takes its entry off: the value is then the caller's.
    pub env_overrides: Vec<(&'static str, &'static str)>,
}

impl Default for Config {
    fn default() -> Self {
        Config::defaults()
    }
}

impl Config {
    /// The files this configuration selects: its `state_dir` and `log_dir`,
    /// else the per-user defaults.
    pub fn paths(&self) -> crate::error::Result<crate::Paths> {
        crate::Paths::resolve(self.state_dir.as_deref(), self.log_dir.as_deref())
    }

    /// The built-in defaults: `spfs-fuse-macos service /spfs` on TCP on
    /// macOS (what SPFS runs today), the bundled reference service on the
    /// state-dir socket elsewhere, so the CLI works out of the box.
    pub fn defaults() -> Config {
        let (program, args) = if cfg!(target_os = "macos") {
            (
                "spfs-fuse-macos".to_string(),
                vec!["service".to_string(), "/spfs".to_string()],
            )
        } else {
            ("spfs-reference-service".to_string(), Vec::new())
        };
        let endpoint = Endpoint::platform_default();
        Config {
            program,
            args,
            endpoint,
            // The profile of spfs-fuse-macos, the service this project is
            // for; harmless to a kit service, which ignores it.
            endpoint_env: Some(env::MACFUSE_LISTEN_ADDRESS.to_string()),
            ready_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(5),
            stop_sequence: StopStep::default_sequence(),
            idle_timeout: env::DEFAULT_IDLE_TIMEOUT,
            expected_version: None,
            on_version_mismatch: VersionPolicy::Restart,
            env: BTreeMap::new(),
            state_dir: None,
            log_dir: None,
            log_max_bytes: 10 * 1024 * 1024,
            log_keep: 3,
            source: None,
            env_overrides: Vec::new(),
        }
    }

    /// The environment the service is given besides the spawner's own
    /// `SPFS_AUTOSTART_*` variables: [`LOG_DEFAULTS`] first, then `env`
    /// (which may set them otherwise), then `endpoint_env` with a TCP
    /// endpoint's `IP:PORT`, last so that the service listens where the
    /// client looks.
    pub fn service_env(&self) -> BTreeMap<String, String> {
        let mut vars: BTreeMap<String, String> = LOG_DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let (Some(name), Endpoint::Tcp(addr)) = (&self.endpoint_env, &self.endpoint) {
            vars.insert(name.clone(), addr.to_string());
        }
        vars
    }
}

/// What every service is given for a log that is a file read later, unless
/// the config's `env` says otherwise: `NO_COLOR=1` (a plain service such as
/// spfs-fuse-macos writes ANSI colour to stderr otherwise) and
/// `SPFS_LOG_TIMESTAMP=1` (spfs's own switch for timestamps on stderr,
/// which it leaves out otherwise; a service that runs for weeks needs them).
pub const LOG_DEFAULTS: [(&str, &str); 2] = [("NO_COLOR", "1"), ("SPFS_LOG_TIMESTAMP", "1")];

#[cfg(test)]
mod tests;
