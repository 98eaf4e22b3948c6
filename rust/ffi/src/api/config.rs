//! `ServiceConfig`: how the bindings build a manager, and its conversion to
//! the core's configuration.

use std::path::Path;

/// How to build a [`ServiceManager`]: the config file (or the usual
/// lookup when `None`), then each field that is `Some` on top of it. Every
/// field defaults to `None` in the generated bindings.
#[derive(Clone, Debug, Default, uniffi::Record)]
pub struct ServiceConfig {
    /// A TOML config file; `None` reads `SPFS_AUTOSTART_CONFIG` or the
    /// per-user file when it exists.
    #[uniffi(default)]
    pub config_file: Option<String>,
    /// The service program: a bare name or an absolute path.
    #[uniffi(default)]
    pub program: Option<String>,
    /// The program's arguments (replace the configured ones).
    #[uniffi(default)]
    pub args: Option<Vec<String>>,
    /// Where the service listens: `unix`, `unix:///PATH` or `tcp://IP:PORT`
    /// (a loopback IP).
    #[uniffi(default)]
    pub endpoint: Option<String>,
    /// The state directory (locks, record, socket).
    #[uniffi(default)]
    pub state_dir: Option<String>,
    /// The log directory.
    #[uniffi(default)]
    pub log_dir: Option<String>,
    /// How long a start may take.
    #[uniffi(default)]
    pub ready_timeout_secs: Option<u64>,
    /// How long each stop step may take.
    #[uniffi(default)]
    pub stop_timeout_secs: Option<u64>,
    /// Idle exit for kit services; 0 means never.
    #[uniffi(default)]
    pub idle_timeout_secs: Option<u64>,
    /// The version the running service must report.
    #[uniffi(default)]
    pub expected_version: Option<String>,
}

impl ServiceConfig {
    /// The core configuration: the file (or the usual lookup), then every
    /// field that is set.
    pub(crate) fn to_core(
        &self,
    ) -> Result<spfs_autostart_core::Config, spfs_autostart_core::Error> {
        // A field set here wins over its environment variable, which is
        // then not read (a bad value in it is no error).
        let set = [
            ("program", self.program.is_some()),
            ("endpoint", self.endpoint.is_some()),
            ("state_dir", self.state_dir.is_some()),
            ("log_dir", self.log_dir.is_some()),
            ("ready_timeout_secs", self.ready_timeout_secs.is_some()),
            ("idle_timeout_secs", self.idle_timeout_secs.is_some()),
        ];
        let keys: Vec<&str> = set.iter().filter(|(_, s)| *s).map(|(k, _)| *k).collect();
        let mut config = spfs_autostart_core::Config::load_except(
            self.config_file.as_deref().map(Path::new),
            &keys,
        )?;
        if let Some(program) = &self.program {
            config.set_program(program)?;
        }
        if let Some(args) = &self.args {
            config.args = args.clone();
        }
        if let Some(endpoint) = &self.endpoint {
            config.set_endpoint(endpoint)?;
        }
        if let Some(dir) = &self.state_dir {
            config.set_state_dir(dir)?;
        }
        if let Some(dir) = &self.log_dir {
            config.set_log_dir(dir)?;
        }
        if let Some(secs) = self.ready_timeout_secs {
            config.set_ready_timeout_secs(secs)?;
        }
        if let Some(secs) = self.stop_timeout_secs {
            config.set_stop_timeout_secs(secs)?;
        }
        if let Some(secs) = self.idle_timeout_secs {
            config.set_idle_timeout_secs(secs)?;
        }
        if let Some(version) = &self.expected_version {
            config.set_expected_version(version)?;
        }
        // Each setter checked its value by the same rules as the config
        // file and the environment, which `load` checked.
        Ok(config)
    }
}
