//! What every integration test that runs the real binaries needs: find the
//! reference service, find the processes a test started (by the state dir
//! the spawner wrote into their environment), and make sure none outlives
//! the test, whatever it asserted.

#![deny(missing_docs)]

use std::path::{Path, PathBuf};

/// `target/<profile>/spfs-reference-service`, next to the `deps` dir holding
/// the test executable. Panics with the fix when it has not been built.
pub fn reference_service() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let program = dir.join("spfs-reference-service");
    assert!(
        program.is_file(),
        "{} is missing: run `cargo build --bins` first (scripts/check does)",
        program.display()
    );
    program
}

/// The file the reference service in `--plain` mode keeps in its MOUNTPOINT
/// while its stand-in filesystem is "mounted" (its `plain::MOUNT_MARKER`).
/// Left behind, it is the trace of an unclean exit: upstream's
/// spfs-fuse-macos leaves its mount behind when it dies on SIGTERM.
pub fn mount_marker(mountpoint: &Path) -> PathBuf {
    mountpoint.join(".spfs-reference-service.mounted")
}

/// A free TCP port on loopback, chosen by the kernel (never the fixed 37738).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

/// Whether `pid` is alive and not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesized command name.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next()),
            Some(Some('Z' | 'X'))
        ),
        Err(_) => false,
    }
}

/// Live processes (other than this one) started for `state_dir`: the spawner
/// gives every service `SPFS_AUTOSTART_STATE_DIR=<state_dir>`. Sorted.
pub fn service_pids(state_dir: &Path) -> Vec<u32> {
    let marker = format!("SPFS_AUTOSTART_STATE_DIR={}", state_dir.display()).into_bytes();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && alive(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|&b| b == 0).any(|var| var == marker.as_slice()))
                .unwrap_or(false)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// SIGKILL every process started for `state_dir`; for a sandbox's Drop.
pub fn kill_services(state_dir: &Path) {
    for pid in service_pids(state_dir) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
