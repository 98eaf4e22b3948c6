//! Finding processes by an entry of their environment, through `/proc`:
//! how a sandbox finds what it started, whoever started it.

use std::path::Path;

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
    marked_pids(&crate::state_dir_marker(state_dir))
}

/// Live processes (other than this one) whose environment holds the entry
/// `marker` (`NAME=value`). Sorted.
pub fn marked_pids(marker: &str) -> Vec<u32> {
    let marker = marker.as_bytes();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && alive(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|&b| b == 0).any(|var| var == marker))
                .unwrap_or(false)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// SIGKILL every process whose environment holds `marker`.
pub fn kill_marked(marker: &str) {
    for pid in marked_pids(marker) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
