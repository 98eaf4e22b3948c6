//! Configuration: built-in defaults, then a TOML file, then the environment.
//!
//! The file is strict: an unknown key, a value of the wrong type or an
//! endpoint that parses to nothing is an error that names the file, the line
//! and the column, because a typo silently ignored is a service that silently
//! does the wrong thing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

pub use spfs_autostart_protocol::env;

/// The longest timeout we accept; longer is a typo, not a wish.
const MAX_TIMEOUT_SECS: u64 = 3600;
/// The most rotated logs we keep: rotation renames each one under
/// `spawn.lock`, so the count bounds how long a spawn may take.
pub const MAX_LOG_KEEP: u32 = 100;
/// The smallest `log_max_bytes`: 1 rotates at every start that finds a
/// log with anything in it; 0 would mean the same and is taken for a typo.
pub const MIN_LOG_MAX_BYTES: u64 = 1;
/// The largest `log_max_bytes` (1 TiB); larger is a typo, not a wish.
pub const MAX_LOG_MAX_BYTES: u64 = 1 << 40;

pub use spfs_autostart_protocol::endpoint::Endpoint;

/// What to do when the running service reports another version than
/// `expected_version`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionPolicy {
    /// Stop the old service and start the configured program.
    #[default]
    Restart,
    /// Fail with `VersionMismatch` and leave the service alone.
    Error,
}

/// One step of the stop sequence of a plain service (one that does not
/// embed the kit; a kit service is always stopped by `Control.Shutdown`,
/// then SIGTERM, then SIGKILL). `ServiceManager::stop_steps` turns these
/// into the steps the stop loop runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopStep {
    /// Call `spfs_vfs.VfsService/Shutdown`. The step ends when the call
    /// returns: upstream's spfs-fuse-macos only unmounts and serves on, so
    /// waiting for it to exit would only waste `stop_timeout_secs`.
    Shutdown,
    /// Send this signal, then wait until the service is gone, at most
    /// `stop_timeout_secs`, and no longer than it takes.
    Signal(nix::sys::signal::Signal),
}

impl StopStep {
    /// The signals a stop sequence may send: those that end a process by
    /// default or are commonly handled as "stop".
    const SIGNALS: [nix::sys::signal::Signal; 7] = [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGKILL,
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGQUIT,
        nix::sys::signal::Signal::SIGUSR1,
        nix::sys::signal::Signal::SIGUSR2,
    ];

    /// spfs-fuse-macos's: `Shutdown` unmounts, SIGINT is its one graceful
    /// signal, SIGTERM kills it at once (leaving the mount behind), SIGKILL
    /// is the last resort.
    pub fn default_sequence() -> Vec<StopStep> {
        use nix::sys::signal::Signal;
        vec![
            StopStep::Shutdown,
            StopStep::Signal(Signal::SIGINT),
            StopStep::Signal(Signal::SIGTERM),
            StopStep::Signal(Signal::SIGKILL),
        ]
    }
}

impl FromStr for StopStep {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "shutdown" {
            return Ok(StopStep::Shutdown);
        }
        let name = if s.starts_with("SIG") {
            s.to_string()
        } else {
            format!("SIG{s}")
        };
        match name.parse::<nix::sys::signal::Signal>() {
            Ok(signal) if StopStep::SIGNALS.contains(&signal) => Ok(StopStep::Signal(signal)),
            _ => Err(format!(
                "{s:?} is not a stop step; use \"shutdown\" or one of {}",
                StopStep::SIGNALS
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

impl fmt::Display for StopStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopStep::Shutdown => f.write_str("shutdown"),
            StopStep::Signal(signal) => f.write_str(signal.as_str()),
        }
    }
}

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
    /// How long each stop step (graceful, TERM, KILL) may take.
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
}

/// The TOML file's shape: every key optional, unknown keys rejected, and
/// every value checked while it is read, so a bad value is reported with the
/// line and column of the file, like a typo.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "checked::program"
    )]
    program: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<Vec<String>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        with = "endpoint_opt"
    )]
    endpoint: Option<Endpoint>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "checked::endpoint_env"
    )]
    endpoint_env: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "checked::ready_timeout_secs"
    )]
    ready_timeout_secs: Option<u64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "checked::stop_timeout_secs"
    )]
    stop_timeout_secs: Option<u64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "checked::stop_sequence"
    )]
    stop_sequence: Option<Vec<String>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "checked::idle_timeout_secs"
    )]
    idle_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_version_mismatch: Option<VersionPolicy>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "checked::state_dir"
    )]
    state_dir: Option<PathBuf>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "checked::log_dir"
    )]
    log_dir: Option<PathBuf>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "checked::log_max_bytes"
    )]
    log_max_bytes: Option<u64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "checked::log_keep"
    )]
    log_keep: Option<u32>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "checked::env"
    )]
    env: Option<BTreeMap<String, String>>,
}

/// Deserializers that run the same checks as the environment and
/// [`Config::validate`], and prefix the key, so the TOML error carries the
/// key, the line and the column.
mod checked {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    fn with<'de, D, T>(
        d: D,
        key: &str,
        check: impl FnOnce(&T) -> Result<(), String>,
    ) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        let value = T::deserialize(d)?;
        check(&value).map_err(|why| D::Error::custom(format!("{key}: {why}")))?;
        Ok(Some(value))
    }

    pub fn program<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        with(d, "program", |p: &String| super::check_program(p).map(drop))
    }

    pub fn stop_sequence<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        with(d, "stop_sequence", |steps: &Vec<String>| {
            super::stop_sequence(steps).map(drop)
        })
    }

    pub fn endpoint_env<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        with(d, "endpoint_env", |n: &String| {
            super::check_endpoint_env(n).map(drop)
        })
    }

    pub fn ready_timeout_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        with(d, "ready_timeout_secs", |s: &u64| {
            super::timeout(*s, super::MAX_TIMEOUT_SECS).map(drop)
        })
    }

    pub fn stop_timeout_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        with(d, "stop_timeout_secs", |s: &u64| {
            super::timeout(*s, super::MAX_TIMEOUT_SECS).map(drop)
        })
    }

    pub fn idle_timeout_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        with(d, "idle_timeout_secs", |s: &u64| {
            super::idle_timeout(*s).map(drop)
        })
    }

    pub fn state_dir<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        with(d, "state_dir", |p: &PathBuf| super::check_absolute_dir(p))
    }

    pub fn log_dir<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        with(d, "log_dir", |p: &PathBuf| super::check_absolute_dir(p))
    }

    pub fn log_max_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        with(d, "log_max_bytes", |b: &u64| super::check_log_max_bytes(*b))
    }

    pub fn log_keep<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        with(d, "log_keep", |k: &u32| super::check_log_keep(*k))
    }

    pub fn env<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<BTreeMap<String, String>>, D::Error> {
        let env = BTreeMap::<EnvName, String>::deserialize(d)?;
        let env: BTreeMap<String, String> = env.into_iter().map(|(k, v)| (k.0, v)).collect();
        env.iter()
            .try_for_each(|(key, value)| super::check_env_var(key, value))
            .map_err(|why| D::Error::custom(format!("env: {why}")))?;
        Ok(Some(env))
    }

    /// An `[env]` key, checked as it is read so the error points at it.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct EnvName(String);

    impl<'de> Deserialize<'de> for EnvName {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let key = String::deserialize(d)?;
            super::check_env_var(&key, "")
                .map_err(|why| D::Error::custom(format!("env: {why}")))?;
            Ok(EnvName(key))
        }
    }
}

mod endpoint_opt {
    use super::Endpoint;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(e: &Option<Endpoint>, s: S) -> Result<S::Ok, S::Error> {
        match e {
            Some(e) => s.serialize_str(&e.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Endpoint>, D::Error> {
        Endpoint::deserialize(d).map(Some)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::defaults()
    }
}

impl Config {
    /// The files this configuration selects: its `state_dir` and `log_dir`,
    /// else the per-user defaults.
    pub fn paths(&self) -> Result<crate::Paths> {
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
        }
    }

    /// Defaults, then `file` (or `SPFS_AUTOSTART_CONFIG`, or the per-user
    /// config file when it exists), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        Config::load_with(file, process_env)
    }

    /// [`Config::load`] with the environment given as a lookup function, so
    /// tests never depend on the caller's environment.
    pub fn load_with(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let mut config = Config::defaults();
        let file = match file {
            Some(file) => Some(file.to_path_buf()),
            None => match env(env::CONFIG).filter(|s| !s.is_empty()) {
                Some(path) => Some(PathBuf::from(path)),
                None => user_config_file(&env).filter(|p| p.is_file()),
            },
        };
        if let Some(path) = file {
            // A relative path is read from the current directory; the
            // absolute one is what `config` shows.
            let path = std::path::absolute(&path).unwrap_or(path);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "cannot read config file {}: {e}; fix the path given with --config or {}",
                        path.display(),
                        env::CONFIG
                    ),
                )
            })?;
            config.apply_toml(&text, &path)?;
        }
        config.apply_env(&env)?;
        config.validate()?;
        Ok(config)
    }

    /// Apply one TOML document on top of this configuration. Every value
    /// was checked while it was read (see `FileConfig`).
    pub fn apply_toml(&mut self, text: &str, origin: &Path) -> Result<()> {
        let file: FileConfig = toml::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("invalid config file {}: {e}", origin.display()),
            )
        })?;
        if let Some(program) = file.program {
            self.program = program;
        }
        if let Some(args) = file.args {
            self.args = args;
        }
        if let Some(endpoint) = file.endpoint {
            self.endpoint = endpoint;
        }
        if let Some(name) = file.endpoint_env {
            self.endpoint_env = Some(name).filter(|n| !n.is_empty());
        }
        if let Some(secs) = file.ready_timeout_secs {
            self.ready_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = file.stop_timeout_secs {
            self.stop_timeout = Duration::from_secs(secs);
        }
        if let Some(steps) = file.stop_sequence {
            // Checked as it was read; parsed here into steps.
            self.stop_sequence = stop_sequence(&steps).map_err(|w| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "invalid config file {}: stop_sequence: {w}",
                        origin.display()
                    ),
                )
            })?;
        }
        if let Some(secs) = file.idle_timeout_secs {
            self.idle_timeout = Duration::from_secs(secs);
        }
        if let Some(version) = file.expected_version {
            self.expected_version = Some(version).filter(|v| !v.is_empty());
        }
        if let Some(policy) = file.on_version_mismatch {
            self.on_version_mismatch = policy;
        }
        if let Some(dir) = file.state_dir {
            self.state_dir = Some(dir);
        }
        if let Some(dir) = file.log_dir {
            self.log_dir = Some(dir);
        }
        if let Some(bytes) = file.log_max_bytes {
            self.log_max_bytes = bytes;
        }
        if let Some(keep) = file.log_keep {
            self.log_keep = keep;
        }
        if let Some(env) = file.env {
            self.env.extend(env);
        }
        self.source = Some(origin.to_path_buf());
        Ok(())
    }

    /// Check every value with the same rules as the file and the
    /// environment: for configurations built field by field (the FFI, the
    /// bindings, programs). The error names the key and the fix.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |key: &str, why: String| Error::new(ErrorKind::InvalidConfig, format!("{key}: {why}"));
        check_program(&self.program).map_err(|w| bad("program", w))?;
        // The endpoint's own rules live in its parser: run them on its text.
        self.endpoint
            .to_string()
            .parse::<Endpoint>()
            .map_err(|w| bad("endpoint", w))?;
        if let Some(name) = &self.endpoint_env {
            check_endpoint_env(name).map_err(|w| bad("endpoint_env", w))?;
        }
        let steps: Vec<String> = self.stop_sequence.iter().map(StopStep::to_string).collect();
        stop_sequence(&steps).map_err(|w| bad("stop_sequence", w))?;
        timeout(self.ready_timeout.as_secs(), MAX_TIMEOUT_SECS)
            .map_err(|w| bad("ready_timeout_secs", w))?;
        timeout(self.stop_timeout.as_secs(), MAX_TIMEOUT_SECS)
            .map_err(|w| bad("stop_timeout_secs", w))?;
        idle_timeout(self.idle_timeout.as_secs()).map_err(|w| bad("idle_timeout_secs", w))?;
        if self.expected_version.as_deref() == Some("") {
            return Err(bad(
                "expected_version",
                "is empty; give a version such as \"1.2.3\", or leave it unset".into(),
            ));
        }
        if let Some(dir) = &self.state_dir {
            check_absolute_dir(dir).map_err(|w| bad("state_dir", w))?;
        }
        if let Some(dir) = &self.log_dir {
            check_absolute_dir(dir).map_err(|w| bad("log_dir", w))?;
        }
        check_log_max_bytes(self.log_max_bytes).map_err(|w| bad("log_max_bytes", w))?;
        check_log_keep(self.log_keep).map_err(|w| bad("log_keep", w))?;
        for (key, value) in &self.env {
            check_env_var(key, value).map_err(|w| bad("env", w))?;
        }
        Ok(())
    }

    /// Apply the `SPFS_AUTOSTART_*` overrides.
    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<()> {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        let bad = |name: &str, why: String| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("environment variable {name}: {why}"),
            )
        };
        if let Some(program) = get(env::PROGRAM) {
            self.program = check_program(&program).map_err(|w| bad(env::PROGRAM, w))?;
        }
        if let Some(endpoint) = get(env::ENDPOINT) {
            self.endpoint = endpoint.parse().map_err(|w| bad(env::ENDPOINT, w))?;
        } else if let (Endpoint::Tcp(_), Some(addr)) =
            (&self.endpoint, get(env::MACFUSE_LISTEN_ADDRESS))
        {
            // spfs-fuse-macos reads the same variable, so both sides agree.
            let addr = addr.parse().map_err(|_| {
                bad(
                    env::MACFUSE_LISTEN_ADDRESS,
                    format!("{addr:?} is not an IP:PORT address"),
                )
            })?;
            self.endpoint = Endpoint::Tcp(addr);
        }
        if let Some(dir) = get(env::STATE_DIR) {
            let dir = PathBuf::from(dir);
            check_absolute_dir(&dir).map_err(|w| bad(env::STATE_DIR, w))?;
            self.state_dir = Some(dir);
        }
        if let Some(dir) = get(env::LOG_DIR) {
            let dir = PathBuf::from(dir);
            check_absolute_dir(&dir).map_err(|w| bad(env::LOG_DIR, w))?;
            self.log_dir = Some(dir);
        }
        if let Some(secs) = get(env::IDLE_TIMEOUT_SECS) {
            let secs = parse_secs(&secs).map_err(|w| bad(env::IDLE_TIMEOUT_SECS, w))?;
            self.idle_timeout = idle_timeout(secs).map_err(|w| bad(env::IDLE_TIMEOUT_SECS, w))?;
        }
        if let Some(secs) = get(env::READY_TIMEOUT_SECS) {
            let secs = parse_secs(&secs).map_err(|w| bad(env::READY_TIMEOUT_SECS, w))?;
            self.ready_timeout =
                timeout(secs, MAX_TIMEOUT_SECS).map_err(|w| bad(env::READY_TIMEOUT_SECS, w))?;
        }
        Ok(())
    }

    /// Set the program (bare name or absolute path), checked as in the file.
    pub fn set_program(&mut self, program: &str) -> Result<()> {
        self.program = check_program(program)
            .map_err(|w| Error::new(ErrorKind::InvalidConfig, format!("program: {w}")))?;
        Ok(())
    }

    /// Set the endpoint from its config syntax.
    pub fn set_endpoint(&mut self, endpoint: &str) -> Result<()> {
        self.endpoint = endpoint
            .parse()
            .map_err(|w| Error::new(ErrorKind::InvalidConfig, format!("endpoint: {w}")))?;
        Ok(())
    }

    /// Set the idle timeout (0 = never), with the same bounds as the file.
    pub fn set_idle_timeout_secs(&mut self, secs: u64) -> Result<()> {
        self.idle_timeout = idle_timeout(secs)
            .map_err(|w| Error::new(ErrorKind::InvalidConfig, format!("idle_timeout_secs: {w}")))?;
        Ok(())
    }

    /// Set the ready timeout from a command-line value, with the same bounds
    /// as the file.
    pub fn set_ready_timeout_secs(&mut self, secs: u64) -> Result<()> {
        self.ready_timeout = timeout(secs, MAX_TIMEOUT_SECS)
            .map_err(|w| Error::new(ErrorKind::InvalidConfig, format!("--timeout: {w}")))?;
        Ok(())
    }

    /// Set the stop timeout from a command-line value.
    pub fn set_stop_timeout_secs(&mut self, secs: u64) -> Result<()> {
        self.stop_timeout = timeout(secs, MAX_TIMEOUT_SECS)
            .map_err(|w| Error::new(ErrorKind::InvalidConfig, format!("--timeout: {w}")))?;
        Ok(())
    }

    /// The environment the service is given besides the spawner's own
    /// `SPFS_AUTOSTART_*` variables: `NO_COLOR=1` first (a plain service such
    /// as spfs-fuse-macos logs in ANSI colour otherwise, and its log is a
    /// file), then `env` (which may set `NO_COLOR` itself), then
    /// `endpoint_env` with a TCP endpoint's `IP:PORT`, last so that the
    /// service listens where the client looks.
    pub fn service_env(&self) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::from([("NO_COLOR".to_string(), "1".to_string())]);
        vars.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let (Some(name), Endpoint::Tcp(addr)) = (&self.endpoint_env, &self.endpoint) {
            vars.insert(name.clone(), addr.to_string());
        }
        vars
    }

    /// The effective configuration as a TOML document that [`Config::load`]
    /// reads back to the same values.
    pub fn to_toml(&self) -> String {
        let file = FileConfig {
            program: Some(self.program.clone()),
            args: Some(self.args.clone()),
            endpoint: Some(self.endpoint.clone()),
            endpoint_env: Some(self.endpoint_env.clone().unwrap_or_default()),
            ready_timeout_secs: Some(self.ready_timeout.as_secs()),
            stop_timeout_secs: Some(self.stop_timeout.as_secs()),
            stop_sequence: Some(self.stop_sequence.iter().map(StopStep::to_string).collect()),
            idle_timeout_secs: Some(self.idle_timeout.as_secs()),
            expected_version: self.expected_version.clone(),
            on_version_mismatch: Some(self.on_version_mismatch),
            state_dir: self.state_dir.clone(),
            log_dir: self.log_dir.clone(),
            log_max_bytes: Some(self.log_max_bytes),
            log_keep: Some(self.log_keep),
            env: Some(self.env.clone()),
        };
        toml::to_string(&file).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

pub use spfs_autostart_protocol::env::process_env;

/// The per-user config file: `~/Library/Application Support/spfs-autostart/`
/// on macOS, `$XDG_CONFIG_HOME/spfs-autostart/` (or `~/.config/...`) elsewhere.
pub fn user_config_file(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    let dir = if cfg!(target_os = "macos") {
        home?.join("Library/Application Support")
    } else {
        match env("XDG_CONFIG_HOME").filter(|d| d.starts_with('/')) {
            Some(dir) => PathBuf::from(dir),
            None => home?.join(".config"),
        }
    };
    Some(dir.join("spfs-autostart").join("config.toml"))
}

fn check_program(program: &str) -> Result<String, String> {
    if program.is_empty() {
        return Err("is empty; give a program name or an absolute path".into());
    }
    if program.contains('/') && !program.starts_with('/') {
        return Err(format!(
            "{program:?} is a relative path; give an absolute path or a bare name looked up on PATH"
        ));
    }
    Ok(program.to_string())
}

/// `stop_sequence`: at least one step, each known, none twice.
fn stop_sequence(steps: &[String]) -> Result<Vec<StopStep>, String> {
    if steps.is_empty() {
        return Err(
            "is empty, so nothing would stop the service; use for example \
             [\"shutdown\", \"SIGINT\", \"SIGTERM\", \"SIGKILL\"]"
                .into(),
        );
    }
    let mut sequence: Vec<StopStep> = Vec::with_capacity(steps.len());
    for step in steps {
        let step: StopStep = step.parse()?;
        if sequence.contains(&step) {
            return Err(format!("{step} is listed twice; give each step once"));
        }
        sequence.push(step);
    }
    Ok(sequence)
}

/// `endpoint_env`: a variable name, or `""` for none. The `SPFS_AUTOSTART_*`
/// names are the spawner's own and cannot be repurposed.
fn check_endpoint_env(name: &str) -> Result<Option<String>, String> {
    if name.is_empty() {
        return Ok(None);
    }
    if name.contains('=') || name.contains('\0') {
        return Err(format!(
            "{name:?} is not an environment variable name; give a name such as {:?}, or \"\" for none",
            env::MACFUSE_LISTEN_ADDRESS
        ));
    }
    if name.starts_with("SPFS_AUTOSTART_") {
        return Err(format!(
            "{name} is set by the spawner itself; give the variable the service reads its \
             listen address from, such as {:?}, or \"\" for none",
            env::MACFUSE_LISTEN_ADDRESS
        ));
    }
    Ok(Some(name.to_string()))
}

fn parse_secs(text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number of seconds"))
}

fn timeout(secs: u64, max: u64) -> Result<Duration, String> {
    if secs == 0 {
        return Err("0 seconds leaves no time at all; use at least 1".into());
    }
    if secs > max {
        return Err(format!(
            "{secs} seconds is absurdly long; use at most {max}"
        ));
    }
    Ok(Duration::from_secs(secs))
}

use spfs_autostart_protocol::env::idle_timeout;

fn check_absolute_dir(dir: &Path) -> Result<(), String> {
    if dir.is_absolute() {
        Ok(())
    } else {
        Err(format!(
            "{} is relative; give an absolute path",
            dir.display()
        ))
    }
}

fn check_log_max_bytes(bytes: u64) -> Result<(), String> {
    if bytes < MIN_LOG_MAX_BYTES {
        return Err(format!(
            "{bytes} bytes is no size; use at least {MIN_LOG_MAX_BYTES} (which rotates at every \
             start), or a size such as 10485760"
        ));
    }
    if bytes > MAX_LOG_MAX_BYTES {
        return Err(format!(
            "{bytes} bytes is absurdly large; use at most {MAX_LOG_MAX_BYTES} (1 TiB)"
        ));
    }
    Ok(())
}

fn check_log_keep(keep: u32) -> Result<(), String> {
    if keep > MAX_LOG_KEEP {
        return Err(format!(
            "{keep} rotated logs is too many to shift at every start; use at most {MAX_LOG_KEEP} \
             (0 keeps none)"
        ));
    }
    Ok(())
}

/// An environment variable the service can be given: `NAME=value` must
/// split back into the same name and value, and neither may hold a NUL.
fn check_env_var(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.contains('=') || key.contains('\0') {
        return Err(format!(
            "environment variable name {key:?} is empty or contains '=' or NUL; \
             use a plain name such as RUST_LOG"
        ));
    }
    if value.contains('\0') {
        return Err(format!(
            "the value of {key} contains a NUL byte, which no environment can carry; remove it"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        let mut config = Config::defaults();
        config.apply_toml(text, Path::new("/etc/test.toml"))?;
        Ok(config)
    }

    #[test]
    fn unknown_key_is_rejected_with_line_and_column() {
        let err = parse("program = \"x\"\nprogramm = \"y\"\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        let msg = err.to_string();
        assert!(msg.contains("/etc/test.toml"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("column 1"), "{msg}");
        assert!(msg.contains("programm"), "{msg}");
    }

    #[test]
    fn malformed_toml_names_the_line() {
        let err = parse("args = [\"a\",\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn endpoint_forms_parse_and_bad_ones_name_the_forms() {
        assert_eq!(
            "unix".parse::<Endpoint>().unwrap(),
            Endpoint::StateDirSocket
        );
        assert_eq!(
            "unix:///run/x.sock".parse::<Endpoint>().unwrap(),
            Endpoint::Unix("/run/x.sock".into())
        );
        assert_eq!(
            "tcp://127.0.0.1:37738".parse::<Endpoint>().unwrap(),
            Endpoint::Tcp(([127, 0, 0, 1], 37738).into())
        );
        for bad in ["", "unix://", "unix://rel/x", "tcp://localhost", "http://x"] {
            let err = bad.parse::<Endpoint>().unwrap_err();
            assert!(err.contains("tcp://IP:PORT"), "{bad}: {err}");
        }
        let err = parse("endpoint = \"tcp://nowhere\"").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn relative_program_and_zero_timeouts_are_refused() {
        let err = parse("program = \"bin/svc\"").unwrap_err();
        assert!(err.to_string().contains("relative"), "{err}");
        let err = parse("ready_timeout_secs = 0").unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
        let err = parse("stop_timeout_secs = 99999999").unwrap_err();
        assert!(err.to_string().contains("absurdly long"), "{err}");
        assert_eq!(
            parse("idle_timeout_secs = 0").unwrap().idle_timeout,
            Duration::ZERO
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "program = \"/bin/a\"\nidle_timeout_secs = 5\n").unwrap();
        let config = Config::load_with(Some(&file), |name| match name {
            env::PROGRAM => Some("/bin/b".into()),
            env::ENDPOINT => Some("tcp://127.0.0.1:9".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.program, "/bin/b");
        assert_eq!(config.idle_timeout, Duration::from_secs(5));
        assert_eq!(config.endpoint, Endpoint::Tcp(([127, 0, 0, 1], 9).into()));
        assert_eq!(config.source.as_deref(), Some(file.as_path()));
    }

    #[test]
    fn bad_environment_value_names_the_variable() {
        let err = Config::load_with(None, |name| {
            (name == env::IDLE_TIMEOUT_SECS).then(|| "soon".to_string())
        })
        .unwrap_err();
        assert!(err.to_string().contains(env::IDLE_TIMEOUT_SECS), "{err}");
    }

    #[test]
    fn rendered_config_reads_back_the_same() {
        let mut config =
            parse("program = \"/bin/x\"\nargs = [\"a b\"]\n[env]\nRUST_LOG = \"debug\"\n").unwrap();
        config.expected_version = Some("1.2.3".into());
        let text = config.to_toml();
        let mut back = Config::defaults();
        back.apply_toml(&text, Path::new("/x.toml")).unwrap();
        back.source = config.source.clone();
        assert_eq!(back, config);
    }

    #[test]
    fn endpoint_env_gives_a_tcp_endpoint_to_the_service_as_ip_port() {
        let config = parse("endpoint = \"tcp://127.0.0.1:4100\"").unwrap();
        assert_eq!(
            config.endpoint_env.as_deref(),
            Some(env::MACFUSE_LISTEN_ADDRESS),
            "the default profile is spfs-fuse-macos's"
        );
        let vars = config.service_env();
        assert_eq!(
            vars.get(env::MACFUSE_LISTEN_ADDRESS).map(String::as_str),
            Some("127.0.0.1:4100")
        );
        let custom =
            parse("endpoint = \"tcp://127.0.0.1:4100\"\nendpoint_env = \"MY_LISTEN\"").unwrap();
        let vars = custom.service_env();
        assert_eq!(
            vars.get("MY_LISTEN").map(String::as_str),
            Some("127.0.0.1:4100")
        );
        assert!(!vars.contains_key(env::MACFUSE_LISTEN_ADDRESS));
        let none = parse("endpoint = \"tcp://127.0.0.1:4100\"\nendpoint_env = \"\"").unwrap();
        assert_eq!(none.endpoint_env, None);
        assert!(!none.service_env().contains_key(env::MACFUSE_LISTEN_ADDRESS));
        // A Unix endpoint has no IP:PORT form: nothing is set.
        let unix = parse("endpoint = \"unix\"").unwrap();
        assert!(!unix.service_env().contains_key(env::MACFUSE_LISTEN_ADDRESS));
    }

    #[test]
    fn endpoint_env_wins_over_the_env_table_so_the_service_listens_where_we_look() {
        let config = parse(
            "endpoint = \"tcp://127.0.0.1:4100\"\n[env]\nSPFS_MACFUSE_LISTEN_ADDRESS = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        assert_eq!(
            config.service_env()[env::MACFUSE_LISTEN_ADDRESS],
            "127.0.0.1:4100"
        );
    }

    #[test]
    fn bad_endpoint_env_is_refused_naming_the_key() {
        for bad in ["A=B", "SPFS_AUTOSTART_ENDPOINT"] {
            let err = parse(&format!("endpoint_env = {bad:?}")).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("endpoint_env"), "{msg}");
            assert!(msg.contains(env::MACFUSE_LISTEN_ADDRESS), "{msg}");
        }
    }

    #[test]
    fn stop_sequence_defaults_to_spfs_fuse_macos_and_reads_back() {
        use nix::sys::signal::Signal;
        let config = parse("").unwrap();
        assert_eq!(
            config.stop_sequence,
            [
                StopStep::Shutdown,
                StopStep::Signal(Signal::SIGINT),
                StopStep::Signal(Signal::SIGTERM),
                StopStep::Signal(Signal::SIGKILL),
            ]
        );
        let custom = parse("stop_sequence = [\"TERM\", \"SIGKILL\"]").unwrap();
        assert_eq!(
            custom.stop_sequence,
            [
                StopStep::Signal(Signal::SIGTERM),
                StopStep::Signal(Signal::SIGKILL)
            ]
        );
        let mut back = Config::defaults();
        back.apply_toml(&custom.to_toml(), Path::new("/x.toml"))
            .unwrap();
        assert_eq!(back.stop_sequence, custom.stop_sequence);
    }

    #[test]
    fn bad_stop_sequences_are_refused_naming_the_key_and_the_fix() {
        for (bad, why) in [
            ("[]", "is empty"),
            ("[\"SIGSTOP\"]", "not a stop step"),
            ("[\"halt\"]", "\"shutdown\" or one of SIGINT"),
            ("[\"SIGINT\", \"INT\"]", "listed twice"),
        ] {
            let err = parse(&format!("stop_sequence = {bad}")).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("stop_sequence"), "{bad}: {msg}");
            assert!(msg.contains(why), "{bad}: {msg}");
        }
    }

    #[test]
    fn the_service_gets_no_color_unless_the_env_table_says_otherwise() {
        let config = parse("").unwrap();
        assert_eq!(config.service_env()["NO_COLOR"], "1");
        let coloured = parse("[env]\nNO_COLOR = \"\"\n").unwrap();
        assert_eq!(coloured.service_env()["NO_COLOR"], "");
    }

    #[test]
    fn missing_config_file_is_a_clear_error() {
        let err = Config::load_with(Some(Path::new("/nonexistent/c.toml")), |_| None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.to_string().contains("/nonexistent/c.toml"), "{err}");
    }

    #[test]
    fn out_of_bounds_values_are_refused_with_key_line_and_column() {
        for (text, key, line) in [
            (
                "program = \"/x\"\nlog_keep = 4294967295\n",
                "log_keep",
                "line 2",
            ),
            ("log_max_bytes = 0\n", "log_max_bytes", "line 1"),
            (
                "\n\nready_timeout_secs = 0\n",
                "ready_timeout_secs",
                "line 3",
            ),
            ("endpoint = \"tcp://127.0.0.1:0\"\n", "port 0", "line 1"),
            ("[env]\n\"A=B\" = \"c\"\n", "env", "line 2"),
            ("[env]\n\"\" = \"c\"\n", "env", "line 2"),
            ("state_dir = \"rel\"\n", "state_dir", "line 1"),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{text}");
            let msg = err.to_string();
            assert!(msg.contains(key), "{text}: {msg}");
            assert!(
                msg.contains(line) && msg.contains("column"),
                "{text}: {msg}"
            );
        }
        let ok = parse("log_keep = 100\nlog_max_bytes = 4096\n").unwrap();
        assert_eq!((ok.log_keep, ok.log_max_bytes), (100, 4096));
    }

    #[test]
    fn long_unix_endpoint_is_refused_and_names_the_fix() {
        let long = format!("unix:///tmp/{}.sock", "s".repeat(120));
        let err = long.parse::<Endpoint>().unwrap_err();
        assert!(err.contains("shorter path"), "{err}");
        let short = format!("unix:///tmp/{}.sock", "s".repeat(40));
        assert!(short.parse::<Endpoint>().is_ok());
    }

    #[test]
    fn validate_applies_the_file_rules_to_a_config_built_in_code() {
        let mut config = Config::defaults();
        config.validate().unwrap();
        config.log_keep = MAX_LOG_KEEP + 1;
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("log_keep")
        );
        let mut config = Config::defaults();
        config.env.insert("A=B".into(), "c".into());
        assert!(config.validate().unwrap_err().to_string().contains("env"));
        let mut config = Config::defaults();
        config.state_dir = Some("relstate".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("state_dir")
        );
        let mut config = Config::defaults();
        config.expected_version = Some(String::new());
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("expected_version")
        );
        let mut config = Config::defaults();
        config.endpoint = Endpoint::Tcp(([127, 0, 0, 1], 0).into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("port 0")
        );
    }
}
