//! What every test (and the bench) that runs the real binaries needs: one
//! [`Sandbox`] (its own state dir, log dir, HOME and config file, written
//! from a structured value), the paths of the built binaries ([`Bins`]),
//! and a way to find and kill every process started for a sandbox, so none
//! outlives the test, whatever it asserted, and a [`Sleeper`] for a test's
//! own stand-in process. Beside them, scans of the library sources for the
//! tests of rules that span crates.
//!
//! It depends on no crate of the workspace: the config file is TOML built
//! as a value, so a test can also write a value the client must refuse.

#![deny(missing_docs)]

mod bins;
mod procs;
mod sandbox;
mod sleeper;
mod sources;

pub use bins::{Bins, bin_dir, cli, reference_service};
pub use procs::{alive, free_port, kill_marked, marked_pids, service_pids};
pub use sandbox::{SANDBOX_MARKER, Sandbox};
pub use sleeper::{Reaped, Sleeper};
pub use sources::{code_lines_with, library_sources};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Wait until `check` holds, up to `limit`, looking every 20 ms; whether it
/// did (one last look at the limit).
pub fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    check()
}

/// This process as spfs-autostart names the one asking in the service log:
/// its program's file name and its pid (`logs-0123abcd (pid 812)`). Test
/// binaries' names need no quoting.
pub fn this_program() -> String {
    let exe = std::env::current_exe().expect("this program's path");
    let name = exe.file_name().expect("a file name").to_string_lossy();
    format!("{name} (pid {})", std::process::id())
}

/// The file the reference service in `--plain` mode keeps in its MOUNTPOINT
/// while its stand-in filesystem is "mounted" (its `plain::MOUNT_MARKER`).
/// Left behind, it is the trace of an unclean exit: upstream's
/// spfs-fuse-macos leaves its mount behind when it dies on SIGTERM.
pub fn mount_marker(mountpoint: &Path) -> PathBuf {
    mountpoint.join(".spfs-reference-service.mounted")
}

/// SIGKILL every process started for `state_dir` (the spawner gives each
/// service `SPFS_AUTOSTART_STATE_DIR=<state_dir>`).
pub fn kill_services(state_dir: &Path) {
    kill_marked(&state_dir_marker(state_dir));
}

/// The environment entry the spawner gives every service of `state_dir`.
fn state_dir_marker(state_dir: &Path) -> String {
    format!("SPFS_AUTOSTART_STATE_DIR={}", state_dir.display())
}
