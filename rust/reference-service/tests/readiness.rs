//! Kit mode tells its spawner it serves through the readiness pipe, so the
//! spawner wakes at once instead of finding it by polling.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Command, Stdio};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Generous: the machine is shared and loaded.
const WAIT_MS: u16 = 20_000;

#[test]
fn kit_mode_writes_ready_on_the_spawners_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    // Inheritable (no close-on-exec): the service gets the write end.
    let (read, write) = nix::unistd::pipe().expect("pipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_spfs-reference-service"))
        .env("SPFS_AUTOSTART_STATE_DIR", &state)
        .env("SPFS_AUTOSTART_READY_FD", write.as_raw_fd().to_string())
        .env("SPFS_AUTOSTART_IDLE_TIMEOUT_SECS", "60")
        .env_remove("SPFS_AUTOSTART_LOCK_FD")
        .env_remove("SPFS_AUTOSTART_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn spfs-reference-service");
    drop(write);
    // What the service writes before it closes the pipe: the line, or
    // nothing when it closed it unwritten (or never wrote within WAIT_MS).
    let mut line = Vec::new();
    let mut pipe = std::fs::File::from(read);
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::from(WAIT_MS)), Ok(n) if n > 0) {
            break;
        }
        match pipe.read(&mut byte) {
            Ok(0) | Err(_) => break,
            Ok(_) => line.push(byte[0]),
        }
    }
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
    assert_eq!(
        String::from_utf8_lossy(&line),
        format!("READY {}\n", child.id()),
        "the readiness line, from the serving process"
    );
}
