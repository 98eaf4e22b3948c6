//! The binaries under test, and throwaway state/log dirs with a config file
//! pointing at them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use spfs_autostart::{Config, Paths, ServiceManager};

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
        let dir = bench.parent().map(Path::to_path_buf).unwrap_or_default();
        let bins = Bins {
            cli: dir.join("spfs-autostart"),
            service: dir.join("spfs-reference-service"),
            bench: bench.clone(),
            dir: dir.clone(),
        };
        let missing: Vec<String> = [&bins.cli, &bins.service]
            .iter()
            .filter(|p| !p.is_file())
            .map(|p| format!("  {}", p.display()))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "missing binaries:\n{}\nbuild them first: `cargo build --release --bins` \
                 (then `cargo run --release -p spfs-autostart-bench`)",
                missing.join("\n")
            ));
        }
        Ok(bins)
    }
}

/// The workspace root, for the C and Python pieces.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A temp dir with `state/`, `log/` and `config.toml` for the reference
/// service in kit mode on the state dir's Unix socket. Removed on drop.
#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
    /// The configuration (also written to `config_file`).
    pub config: Config,
    /// `config.toml`, for child processes (`SPFS_AUTOSTART_CONFIG`).
    pub config_file: PathBuf,
}

impl Sandbox {
    /// A fresh sandbox.
    pub fn new(bins: &Bins) -> std::io::Result<Sandbox> {
        let dir = tempfile::Builder::new()
            .prefix("spfs-bench-")
            .tempdir_in("/tmp")?;
        let mut config = Config::defaults();
        config.program = bins.service.display().to_string();
        config.args = Vec::new();
        config.set_endpoint("unix").map_err(std::io::Error::other)?;
        config.state_dir = Some(dir.path().join("state"));
        config.log_dir = Some(dir.path().join("log"));
        config.env.insert("RUST_LOG".into(), "info".into());
        let config_file = dir.path().join("config.toml");
        std::fs::write(&config_file, config.to_toml())?;
        Ok(Sandbox {
            dir,
            config,
            config_file,
        })
    }

    /// The sandbox's root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A manager for this sandbox.
    pub fn manager(&self) -> ServiceManager {
        ServiceManager::new(self.config.clone()).expect("sandbox config is valid")
    }

    /// Its paths.
    pub fn paths(&self) -> Paths {
        self.config.paths().expect("sandbox config is valid")
    }

    /// `spfs-autostart ARGS...` on this sandbox, all output discarded.
    pub fn cli(&self, bins: &Bins, args: &[&str]) -> Command {
        let mut cmd = Command::new(&bins.cli);
        cmd.args(args)
            .env("SPFS_AUTOSTART_CONFIG", &self.config_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// How many times a service was started here: the spawner's header
    /// lines in the service log.
    pub fn spawn_count(&self) -> usize {
        std::fs::read_to_string(self.paths().log_file())
            .map(|log| log.matches("--- spfs-autostart: starting").count())
            .unwrap_or(0)
    }
}

impl Drop for Sandbox {
    /// A service still running here (an error path skipped its stop) is
    /// killed before its dir goes: nothing outlives the harness.
    fn drop(&mut self) {
        let record = spfs_autostart_protocol::record::ServiceRecord::read(&self.paths().record());
        if let Some(record) = record.filter(|r| r.process_matches()) {
            crate::procs::signal(record.pid, libc::SIGKILL);
        }
    }
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

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}
