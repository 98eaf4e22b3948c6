//! Platform calls about processes, in one place: who a process is (pid and
//! start time), whether it still lives (a zombie does not), signalling
//! exactly that process and nothing that reused its pid, and waiting for it
//! to exit without being its parent.

use std::io;
use std::time::Duration;

use nix::sys::signal::Signal;

/// One process, exactly: a pid and its start time, so a reused pid is
/// never mistaken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Its pid.
    pub pid: u32,
    /// Its start time, opaque (see [`process_start_time`]).
    pub start_time: u64,
}

impl Instance {
    /// The live (not zombie) process `pid`, if there is one.
    pub fn of(pid: u32) -> Option<Instance> {
        let info = process_info(pid)?;
        (!info.zombie).then_some(Instance {
            pid,
            start_time: info.start_time,
        })
    }

    /// Whether this very process still lives. A zombie (exited, not yet
    /// reaped, as under a PID 1 that never reaps) is dead.
    pub fn is_alive(&self) -> bool {
        matches!(process_info(self.pid), Some(info) if !info.zombie && info.start_time == self.start_time)
    }

    /// Its owner's uid, while it lives.
    pub fn uid(&self) -> Option<u32> {
        process_info(self.pid)
            .filter(|i| i.start_time == self.start_time)
            .map(|i| i.uid)
    }

    /// How long it has been running, by the clock since boot on Linux (never
    /// moved by wall-clock jumps).
    pub fn age(&self) -> Option<Duration> {
        process_age(self.pid, self.start_time)
    }
}

/// What the platform tells about a process.
#[derive(Clone, Copy, Debug)]
pub struct ProcInfo {
    /// Start time (opaque unit, compared for equality).
    pub start_time: u64,
    /// Exited but not reaped.
    pub zombie: bool,
    /// Real uid of its owner.
    pub uid: u32,
}

/// The start time of `pid` in a unit of the platform's choosing (clock
/// ticks since boot on Linux, microseconds since the epoch on macOS), or
/// `None` when there is no such process.
pub fn process_start_time(pid: u32) -> Option<u64> {
    process_info(pid).map(|i| i.start_time)
}

/// Facts about `pid`, or `None` when there is no such process.
#[cfg(target_os = "linux")]
pub fn process_info(pid: u32) -> Option<ProcInfo> {
    use std::os::unix::fs::MetadataExt;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; the fields
    // after the last ')' are plain: state is field 3, starttime field 22.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    let uid = std::fs::metadata(format!("/proc/{pid}")).ok()?.uid();
    Some(ProcInfo {
        start_time,
        zombie: matches!(state, "Z" | "X" | "x"),
        uid,
    })
}

/// Facts about `pid`, or `None` when there is no such process.
#[cfg(target_os = "macos")]
pub fn process_info(pid: u32) -> Option<ProcInfo> {
    // SAFETY: proc_bsdinfo is plain data; all-zero is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: `info` is a properly sized, writable proc_bsdinfo.
    let got = unsafe {
        libc::proc_pidinfo(
            pid as libc::c_int,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    (got == size).then(|| ProcInfo {
        start_time: info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec,
        zombie: info.pbi_status == libc::SZOMB,
        uid: info.pbi_ruid,
    })
}

/// Without a way to read start times, no process can be identified, so
/// none is ever signalled.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn process_info(_pid: u32) -> Option<ProcInfo> {
    None
}

/// How long ago process `pid` (with `start_time`) started, on the
/// monotonic clock since boot (Linux) or the wall clock (macOS reports
/// start times only that way).
fn process_age(pid: u32, start_time: u64) -> Option<Duration> {
    let _ = pid;
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf only reads a constant.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let ticks = u64::try_from(ticks).ok().filter(|&t| t > 0)?;
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we pass.
        if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0 {
            return None;
        }
        let now_ms = now.tv_sec as u64 * 1000 + now.tv_nsec as u64 / 1_000_000;
        let started_ms = start_time * 1000 / ticks;
        Some(Duration::from_millis(now_ms.saturating_sub(started_ms)))
    }
    #[cfg(target_os = "macos")]
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(now.saturating_sub(Duration::from_micros(start_time)))
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = start_time;
        None
    }
}

/// The uid this process runs as.
pub fn my_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// The executable of a live process, when we may see it.
pub fn executable(pid: u32) -> Option<std::path::PathBuf> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_link(format!("/proc/{pid}/exe")).ok()
    }
    #[cfg(target_os = "macos")]
    {
        let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
        // SAFETY: buf is writable for the size passed.
        let n = unsafe {
            libc::proc_pidpath(
                pid as libc::c_int,
                buf.as_mut_ptr().cast(),
                buf.len() as u32,
            )
        };
        if n <= 0 {
            return None;
        }
        buf.truncate(n as usize);
        use std::os::unix::ffi::OsStringExt;
        Some(std::ffi::OsString::from_vec(buf).into())
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = pid;
        None
    }
}

/// A handle on one [`Instance`] that signals only it: a pidfd on Linux
/// (opened, then checked to name the instance, so it can never point at a
/// later process with the same pid); elsewhere the start time is checked
/// immediately before each signal.
#[derive(Debug)]
pub struct ProcessHandle {
    instance: Instance,
    #[cfg(target_os = "linux")]
    pidfd: Option<std::os::fd::OwnedFd>,
}

impl ProcessHandle {
    /// A handle on `instance`; `None` when it is no longer alive.
    pub fn open(instance: Instance) -> Option<ProcessHandle> {
        #[cfg(target_os = "linux")]
        let pidfd = {
            use std::os::fd::{FromRawFd, OwnedFd};
            // SAFETY: pidfd_open takes a pid and flags and returns a new
            // descriptor (close-on-exec) or -1.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, instance.pid as libc::pid_t, 0) };
            // SAFETY: a non-negative return is a fresh descriptor we own.
            (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
        };
        // Checked after opening: if the instance is alive now, the pidfd
        // (opened before) refers to it.
        if !instance.is_alive() {
            return None;
        }
        Some(ProcessHandle {
            instance,
            #[cfg(target_os = "linux")]
            pidfd,
        })
    }

    /// The instance.
    pub fn instance(&self) -> Instance {
        self.instance
    }

    /// Send `signal` to this instance; `Ok(false)` when it is already gone.
    pub fn signal(&self, signal: Signal) -> io::Result<bool> {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.pidfd {
            use std::os::fd::AsRawFd;
            // SAFETY: pidfd_send_signal on a pidfd we own, no siginfo.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    signal as libc::c_int,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            return match rc {
                0 => Ok(true),
                _ => match io::Error::last_os_error() {
                    e if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
                    e => Err(e),
                },
            };
        }
        if !self.instance.is_alive() {
            return Ok(false);
        }
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.instance.pid as i32), signal) {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::ESRCH) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Send `signal` to the process group this instance leads (its session,
    /// when it was started with `setsid`), then to the instance itself. The
    /// group is signalled only while the leader lives, so its id cannot have
    /// been reused.
    pub fn signal_group(&self, signal: Signal) {
        if self.instance.is_alive() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.instance.pid as i32),
                signal,
            );
        }
        let _ = self.signal(signal);
    }

    /// Resolves when the instance has exited (a zombie has).
    pub async fn exited(&self) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.pidfd
            && let Ok(fd) = fd.try_clone()
            // SAFETY: the duplicate is moved in and stays open as long as the AsyncFd.
            && let Ok(fd) = unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
            }
        {
            // A pidfd becomes readable when the process exits.
            let _ = fd.readable().await;
            return;
        }
        let mut step = Duration::from_millis(1);
        while self.instance.is_alive() {
            tokio::time::sleep(step).await;
            step = (step * 2).min(Duration::from_millis(50));
        }
    }
}

/// Move `fd` to a descriptor number above 2 (close-on-exec), so a host that
/// closed its standard descriptors cannot have it replaced by the child's
/// stdio redirections.
pub fn above_stdio(fd: std::os::fd::OwnedFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::AsRawFd;
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let moved = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a fresh descriptor we own.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(moved) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_instance_is_alive_and_a_changed_start_time_is_not() {
        let me = Instance::of(std::process::id()).expect("own instance");
        assert!(me.is_alive());
        assert_eq!(me.uid(), Some(my_uid()));
        let other = Instance {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_alive(), "another start time is another process");
        assert_eq!(process_start_time(u32::MAX / 2), None);
    }

    #[test]
    fn a_zombie_is_dead() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let instance = Instance {
            pid,
            start_time: process_start_time(pid).unwrap(),
        };
        // Not reaped yet: a zombie once it has exited.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while instance.is_alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(process_info(pid).is_some(), "still a zombie, not reaped");
        assert!(!instance.is_alive(), "a zombie counts as dead");
        let mut child = child;
        child.wait().unwrap();
    }
}
