//! The one test sandbox.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The variable every process a [`Sandbox`] starts carries, set to the
/// sandbox's root: how its Drop finds them all, the CLI, the services the
/// CLI started and a service started by hand alike.
pub const SANDBOX_MARKER: &str = "SPFS_AUTOSTART_TEST_SANDBOX";

/// One test's private world: a temporary dir (under `/tmp`, so the socket
/// path fits in `sun_path`) holding
///
/// - `state/`: the state dir (not created: the client creates it `0700`);
/// - `logs/`: the log dir (not created either);
/// - `home/`: the HOME of every process the sandbox starts (never the real
///   user's, so no per-user config or LaunchAgent of theirs is read);
/// - `config.toml`: the config file, always written from [`Sandbox::config`],
///   a TOML value; [`Sandbox::set`] changes a key and rewrites the file.
///
/// The config starts with the reference service as the program, the state
/// and log dirs above and a 20 s ready timeout (generous: timing belongs in
/// the bench). Every process started through [`Sandbox::command`] gets
/// HOME, [`SANDBOX_MARKER`] and none of the caller's `SPFS_*`, `LISTEN_*`
/// or `XDG_CONFIG_HOME`. Dropping the sandbox SIGKILLs every process that
/// carries its marker or was started for its state dir, whatever the test
/// asserted, then removes the dir.
#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
    config: toml::Table,
    /// The config [`Sandbox::for_program`] wrote, for [`Sandbox::reset_config`].
    initial: toml::Table,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    /// A sandbox running the reference service of this build. Panics when
    /// it cannot be made (a test has nothing better to do).
    pub fn new() -> Sandbox {
        Sandbox::for_program(&crate::reference_service()).expect("create the test sandbox")
    }

    /// A sandbox whose config runs `program`.
    pub fn for_program(program: &Path) -> std::io::Result<Sandbox> {
        let dir = tempfile::Builder::new()
            .prefix("spfs-sb-")
            .tempdir_in("/tmp")?;
        std::fs::create_dir(dir.path().join("home"))?;
        let mut sandbox = Sandbox {
            dir,
            config: toml::Table::new(),
            initial: toml::Table::new(),
        };
        let (state, logs) = (sandbox.state_dir(), sandbox.log_dir());
        sandbox.config = toml::Table::from_iter([
            ("program".to_string(), path_value(program)),
            ("ready_timeout_secs".to_string(), toml::Value::from(20)),
            ("state_dir".to_string(), path_value(&state)),
            ("log_dir".to_string(), path_value(&logs)),
        ]);
        sandbox.initial = sandbox.config.clone();
        sandbox.write_config()?;
        Ok(sandbox)
    }

    /// The sandbox's root dir.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The state dir.
    pub fn state_dir(&self) -> PathBuf {
        self.root().join("state")
    }

    /// The log dir.
    pub fn log_dir(&self) -> PathBuf {
        self.root().join("logs")
    }

    /// `service.log` in the log dir.
    pub fn log_file(&self) -> PathBuf {
        self.log_dir().join("service.log")
    }

    /// The HOME every process of the sandbox gets.
    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    /// The config file.
    pub fn config_file(&self) -> PathBuf {
        self.root().join("config.toml")
    }

    /// The config file's contents, as a value.
    pub fn config(&self) -> &toml::Table {
        &self.config
    }

    /// Set the config key `key` to `value` and rewrite the file. Any value
    /// TOML can hold goes, so a test can write one the client must refuse.
    pub fn set(&mut self, key: &str, value: impl Into<toml::Value>) -> &mut Sandbox {
        self.config.insert(key.to_string(), value.into());
        self.rewrite()
    }

    /// Remove the config key `key` (the client's default applies) and
    /// rewrite the file.
    pub fn unset(&mut self, key: &str) -> &mut Sandbox {
        self.config.remove(key);
        self.rewrite()
    }

    /// Set `name` in the config's `[env]` table (the service's extra
    /// environment) and rewrite the file.
    pub fn set_env(&mut self, name: &str, value: &str) -> &mut Sandbox {
        let env = self
            .config
            .entry("env")
            .or_insert_with(|| toml::Table::new().into());
        env.as_table_mut()
            .expect("[env] is a table")
            .insert(name.to_string(), value.into());
        self.rewrite()
    }

    /// Back to the config the sandbox started with (the program, the state
    /// and log dirs, the ready timeout), every other key gone, and rewrite
    /// the file: what a test that tries one config after another starts
    /// each from.
    pub fn reset_config(&mut self) -> &mut Sandbox {
        self.config = self.initial.clone();
        self.rewrite()
    }

    /// [`Sandbox::set`], by value, for building a sandbox in one expression.
    pub fn with(mut self, key: &str, value: impl Into<toml::Value>) -> Sandbox {
        self.set(key, value);
        self
    }

    /// Put the sandbox's environment ([`Sandbox::env`]) in the config's
    /// `[env]`: a service that a `ServiceManager` in the test process
    /// starts inherits the test's environment, not a sandbox command's, and
    /// needs them from the config.
    pub fn with_env_in_config(mut self) -> Sandbox {
        for (name, value) in self.env() {
            self.set_env(&name, &value);
        }
        self
    }

    fn rewrite(&mut self) -> &mut Sandbox {
        self.write_config()
            .expect("write the sandbox's config file");
        self
    }

    fn write_config(&self) -> std::io::Result<()> {
        let text = toml::to_string(&self.config).map_err(std::io::Error::other)?;
        std::fs::write(self.config_file(), text)
    }

    /// The variables the sandbox sets for every process it starts: HOME and
    /// [`SANDBOX_MARKER`].
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.home().display().to_string()),
            (SANDBOX_MARKER.into(), self.root().display().to_string()),
        ]
    }

    /// Whether the sandbox removes the caller's `name` from the processes
    /// it starts: they must not see the caller's settings.
    fn hides(name: &str) -> bool {
        name.starts_with("SPFS_") || name.starts_with("LISTEN_") || name == "XDG_CONFIG_HOME"
    }

    /// `name` as a process the sandbox starts sees it: the sandbox's own
    /// value, none for what it hides, else the caller's. For loading a
    /// config in the test process the way the CLI would.
    pub fn var(&self, name: &str) -> Option<String> {
        if let Some((_, value)) = self.env().into_iter().find(|(n, _)| n == name) {
            return Some(value);
        }
        if Sandbox::hides(name) {
            return None;
        }
        std::env::var(name).ok()
    }

    /// A command running `program` with the sandbox's environment and
    /// stdin from /dev/null.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        self.commands()(program.as_ref())
    }

    /// What makes [`Sandbox::command`]s, for a thread that outlives the
    /// borrow of the sandbox (a loop of commands beside a test's own).
    pub fn commands(&self) -> impl Fn(&OsStr) -> Command + Send + 'static {
        let env = self.env();
        move |program| {
            let mut command = Command::new(program);
            for (name, _) in std::env::vars_os() {
                if Sandbox::hides(&name.to_string_lossy()) {
                    command.env_remove(name);
                }
            }
            command.envs(env.clone()).stdin(Stdio::null());
            command
        }
    }

    /// `spfs-autostart --config <config file> ARGS` with the sandbox's
    /// environment.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut command = self.command(crate::cli());
        command.arg("--config").arg(self.config_file()).args(args);
        command
    }

    /// Live services started for the state dir. Sorted.
    pub fn pids(&self) -> Vec<u32> {
        crate::service_pids(&self.state_dir())
    }

    /// The whole service log ("" when missing).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// How many times a spawner started the service here: one header line
    /// per spawn in the service log.
    pub fn spawn_count(&self) -> usize {
        self.log().matches("--- spfs-autostart: starting").count()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        crate::kill_marked(&format!("{SANDBOX_MARKER}={}", self.root().display()));
        crate::kill_services(&self.state_dir());
    }
}

fn path_value(path: &Path) -> toml::Value {
    path.display().to_string().into()
}
