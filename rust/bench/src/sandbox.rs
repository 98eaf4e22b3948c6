//! The binaries under test, and the shared test sandbox
//! (`spfs_autostart_test_support::Sandbox`) set up for the reference
//! service in kit mode on the state dir's Unix socket.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use spfs_autostart::{Config, Paths, ServiceManager};
pub use spfs_autostart_test_support::{Sandbox, free_port};

/// Release builds of the workspace binaries, next to the harness.
#[derive(Debug, Clone)]
pub struct Bins {
    /// `spfs-autostart` (the CLI).
    pub cli: PathBuf,
    /// `spfs-reference-service`.
    pub service: PathBuf,
    /// This harness (for its child roles).
    pub bench: PathBuf,
    /// The target dir holding them (`target/release`).
    pub dir: PathBuf,
}

impl Bins {
    /// Find them in the harness's own target dir.
    pub fn find() -> Result<Bins, String> {
        let bench =
            std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let found = spfs_autostart_test_support::Bins::find()
            .map_err(|e| format!("{e}\nthen `cargo run --release -p spfs-autostart-bench`"))?;
        Ok(Bins {
            cli: found.cli,
            service: found.service,
            bench,
            dir: found.dir,
        })
    }
}

/// A fresh sandbox for the kit service, logging at `info`. The sandbox's
/// environment goes to the service through the config, since a
/// `ServiceManager` in the harness starts it too.
pub fn kit_sandbox(bins: &Bins) -> Result<Sandbox, String> {
    let mut sb = Sandbox::for_program(&bins.service)
        .map_err(|e| format!("sandbox: {e}"))?
        .with("endpoint", "unix")
        .with_env_in_config();
    sb.set_env("RUST_LOG", "info");
    Ok(sb)
}

/// What the harness needs of a sandbox beyond the shared one.
pub trait BenchSandbox {
    /// The sandbox's config file as the client loads it.
    fn client_config(&self) -> Config;

    /// A manager for this sandbox.
    fn manager(&self) -> ServiceManager {
        ServiceManager::new(self.client_config()).expect("sandbox config is valid")
    }

    /// Its paths.
    fn paths(&self) -> Paths {
        self.client_config()
            .paths()
            .expect("sandbox config is valid")
    }

    /// `spfs-autostart ARGS...` on this sandbox (the config named by
    /// `SPFS_AUTOSTART_CONFIG`, as a child of a tool would), all output
    /// discarded.
    fn quiet_cli(&self, bins: &Bins, args: &[&str]) -> Command;
}

impl BenchSandbox for Sandbox {
    fn client_config(&self) -> Config {
        Config::load_with(Some(&self.config_file()), |name| self.var(name))
            .expect("sandbox config is valid")
    }

    fn quiet_cli(&self, bins: &Bins, args: &[&str]) -> Command {
        let mut cmd = self.command(&bins.cli);
        cmd.args(args)
            .env("SPFS_AUTOSTART_CONFIG", self.config_file())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }
}

/// The workspace root, for the C and Python pieces.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// CPU model and kernel, for the report's header.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!("{model}, Linux {kernel}")
}
