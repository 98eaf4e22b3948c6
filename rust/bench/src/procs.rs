//! Child processes: run and time them, read their CPU time and memory from
//! `/proc`, and make sure none outlives the harness.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// What one finished child cost.
#[derive(Clone, Copy, Debug)]
pub struct Finished {
    /// From just before `spawn` to the reaping of the child.
    pub wall: Duration,
    /// Its user + system CPU time.
    pub cpu: Duration,
    /// How it ended.
    pub status: ExitStatus,
}

/// Run `cmd` to completion, timing it and collecting its rusage with
/// `wait4` (per child, unlike `getrusage(RUSAGE_CHILDREN)`).
pub fn run_timed(cmd: &mut Command) -> io::Result<Finished> {
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our unreaped child; both pointers are valid.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let wall = start.elapsed();
    // std's Child is never waited on again: dropping it does not reap.
    drop(child);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Finished {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        status: ExitStatus::from_raw(status),
    })
}

/// User + system CPU time of a live process, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may itself contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line; rest starts at 3.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`); `self` for our own.
pub fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Whether `pid` still exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].chars().next())
            .is_some_and(|state| state != 'Z'),
        Err(_) => false,
    }
}

/// Send `signal` to `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

/// Processes the harness started and must not leave behind: killed on drop.
#[derive(Debug, Default)]
pub struct Reaper {
    pids: Vec<u32>,
}

impl Reaper {
    /// Remember `pid` for the final sweep.
    pub fn adopt(&mut self, pid: u32) {
        self.pids.push(pid);
    }

    /// SIGTERM then SIGKILL every remembered process still alive.
    pub fn sweep(&mut self) {
        let live: Vec<u32> = self.pids.drain(..).filter(|&p| alive(p)).collect();
        for &pid in &live {
            signal(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while live.iter().any(|&p| alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for &pid in &live {
            if alive(pid) {
                signal(pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.sweep();
    }
}
