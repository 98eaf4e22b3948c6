//! A kit service out of file descriptors waits for one to free instead of
//! spinning on the accept that keeps failing, and serves again after.
#![cfg(target_os = "linux")]

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The service's open-files limit: a few dozen connections exhaust it.
const NOFILE: u64 = 48;

/// Generous: the machine is shared and loaded.
const WAIT: Duration = Duration::from_secs(20);

/// Kills the service when the test ends, however it ends.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0.id() as i32), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// The kit service on `state`'s socket, limited to [`NOFILE`] descriptors.
fn start(state: &Path) -> Service {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spfs-reference-service"));
    command
        .env("SPFS_AUTOSTART_STATE_DIR", state)
        .env("SPFS_AUTOSTART_IDLE_TIMEOUT_SECS", "120")
        .env_remove("SPFS_AUTOSTART_READY_FD")
        .env_remove("SPFS_AUTOSTART_LOCK_FD")
        .env_remove("SPFS_AUTOSTART_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let limit = libc::rlimit {
        rlim_cur: NOFILE,
        rlim_max: NOFILE,
    };
    // SAFETY: between fork and exec the closure makes one async-signal-safe
    // call (setrlimit) on memory copied before the fork; it limits only the
    // child.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    Service(command.spawn().expect("spawn spfs-reference-service"))
}

/// Whether a fresh connection is accepted: an HTTP/2 server sends its
/// SETTINGS frame as soon as it has the connection.
fn answers(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    let mut header = [0u8; 9];
    // Byte 3 of a frame header is its type; SETTINGS is 4.
    stream.read_exact(&mut header).is_ok() && header[3] == 4
}

/// The CPU time `pid` has used so far, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name (which may hold spaces) start at ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a constant.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_sec)
}

#[test]
fn out_of_descriptors_the_service_rests_and_serves_again_once_one_frees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let socket = state.join("service.sock");
    let service = start(&state);
    let deadline = Instant::now() + WAIT;
    while !answers(&socket) {
        assert!(Instant::now() < deadline, "the service never served");
        std::thread::sleep(Duration::from_millis(20));
    }

    // More connections than it has descriptors: the rest wait in the backlog.
    let held: Vec<UnixStream> = (0..NOFILE * 2)
        .map(|_| UnixStream::connect(&socket).expect("connect (the backlog has room)"))
        .collect();
    let pid = service.0.id();
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_time(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_time(pid) - before;
    assert!(
        used < Duration::from_millis(500),
        "a service out of descriptors used {used:?} of CPU in 2 s: it spins on accept"
    );

    drop(held);
    let deadline = Instant::now() + WAIT;
    while !answers(&socket) {
        assert!(
            Instant::now() < deadline,
            "the service did not accept again after its descriptors freed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
