//! Who a process is: its start time, whether it still lives, its owner and
//! its executable, read from `/proc` (Linux) or `proc_pidinfo` (macOS).

use std::time::Duration;

use nix::unistd::Pid;

use super::kernel_pid;

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
    /// Suspended by a signal (SIGSTOP, Ctrl-Z) or a debugger: it runs no
    /// code until SIGCONT.
    pub stopped: bool,
    /// In an uninterruptible wait in the kernel (Linux's `D` state: often
    /// a hung mount). Not reported on macOS.
    pub blocked: bool,
    /// Its owner: the effective uid.
    pub uid: u32,
    /// Its parent's pid (1, or a subreaper's, once the parent has gone).
    pub parent: u32,
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
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; the fields
    // after the last ')' are plain: state is field 3, the parent's pid
    // field 4, starttime field 22.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let parent = fields.next()?.parse().ok()?;
    let start_time = fields.nth(17)?.parse().ok()?;
    let uid = process_uid(pid)?;
    Some(ProcInfo {
        start_time,
        zombie: matches!(state, "Z" | "X" | "x"),
        stopped: matches!(state, "T" | "t"),
        blocked: state == "D",
        uid,
        parent,
    })
}

/// Facts about `pid`, or `None` when there is no such process.
#[cfg(target_os = "macos")]
pub fn process_info(pid: u32) -> Option<ProcInfo> {
    let pid = kernel_pid(pid)?;
    // SAFETY: proc_bsdinfo is plain data; all-zero is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: `info` is a properly sized, writable proc_bsdinfo.
    let got = unsafe {
        libc::proc_pidinfo(
            pid.as_raw(),
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    (got == size).then(|| ProcInfo {
        start_time: info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec,
        zombie: info.pbi_status == libc::SZOMB,
        stopped: info.pbi_status == libc::SSTOP,
        blocked: false,
        uid: info.pbi_uid,
        parent: info.pbi_ppid,
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

/// The error that says this process has no file descriptor left to open
/// (`EMFILE`, or the system's `ENFILE`), when that is so: a process lookup
/// that failed then says nothing about the process looked for.
pub fn out_of_descriptors() -> Option<std::io::Error> {
    match std::fs::File::open("/dev/null") {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => Some(e),
        _ => None,
    }
}

/// Whether any process holds `pid`: ours or another user's, a zombie too.
///
/// For telling "gone" from "not ours to see": macOS shows the facts of
/// [`process_info`] only for our own processes (unless we are root), while
/// `kill(pid, 0)` answers `EPERM` for a live process of another user.
pub fn pid_exists(pid: u32) -> bool {
    kernel_pid(pid).is_some_and(|pid| {
        !matches!(
            nix::sys::signal::kill(pid, None),
            Err(nix::errno::Errno::ESRCH)
        )
    })
}

/// Whether process group `group` has a member that has not exited: a
/// zombie counts as a member to `killpg`, and one whose parent never reaps
/// it (spfs leaves the service it started unreaped) would keep its group
/// "alive" for as long as that parent runs. A scan of the process table:
/// for a group `killpg` still finds.
#[cfg(target_os = "linux")]
pub(crate) fn group_has_live_members(group: Pid) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|entry| {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // After the command name: state (field 3), parent, group (field 5).
        let Some(rest) = stat.rfind(')').map(|end| &stat[end + 1..]) else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        pgrp == Some(group.as_raw()) && !matches!(state, "Z" | "X" | "x")
    })
}

/// Whether process group `group` has a member that has not exited (see the
/// Linux version).
#[cfg(target_os = "macos")]
pub(crate) fn group_has_live_members(group: Pid) -> bool {
    let mut pids = vec![0 as libc::pid_t; 256];
    let size = libc::c_int::try_from(pids.len() * std::mem::size_of::<libc::pid_t>())
        .unwrap_or(libc::c_int::MAX);
    // SAFETY: `pids` is a writable buffer of `size` bytes; the call writes
    // at most that many and returns how many pids it wrote.
    let count = unsafe { libc::proc_listpgrppids(group.as_raw(), pids.as_mut_ptr().cast(), size) };
    // libproc answers 0 for a failed listing too, and `killpg` has just
    // found the group: none listed is no proof that none lives. A full
    // buffer may have left members out. Either way, assume one lives.
    let count = usize::try_from(count).unwrap_or(0);
    count == 0
        || count >= pids.len()
        || pids[..count].iter().any(|&pid| {
            u32::try_from(pid)
                .ok()
                .and_then(process_info)
                .is_some_and(|info| !info.zombie)
        })
}

/// Elsewhere nothing tells a zombie: every member counts.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub(crate) fn group_has_live_members(_group: Pid) -> bool {
    true
}

/// The session process `pid` is in (the pid of its leader), when we may
/// see it. A service our spawner starts leads its own session, and what it
/// runs stays in it unless it calls `setsid` (a daemon does).
pub fn session_of(pid: u32) -> Option<u32> {
    let sid = nix::unistd::getsid(Some(kernel_pid(pid)?)).ok()?;
    u32::try_from(sid.as_raw()).ok()
}

/// Whether process `pid` is `ancestor` or was started by it, directly or
/// through processes still alive between them (a chain cut by a parent
/// that exited, whose children went to pid 1, is not followed).
pub fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut current = pid;
    // Bounded: a chain of parents is short, and a pid reused while we walk
    // must not loop us.
    for _ in 0..64 {
        if current == ancestor {
            return true;
        }
        match process_info(current) {
            Some(info) if info.parent > 1 && info.parent != current => current = info.parent,
            _ => return false,
        }
    }
    false
}

/// The owner of process `pid` (its effective uid), when we may see it.
/// On Linux one `stat`, cheap enough to filter every process with.
pub fn process_uid(pid: u32) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/{pid}"))
            .ok()
            .map(|meta| meta.uid())
    }
    #[cfg(not(target_os = "linux"))]
    {
        process_info(pid).map(|info| info.uid)
    }
}

/// Whether `pid` names a process, not another thread of one: Linux lets
/// `/proc/TID` be read for any thread, so a thread id passes for a process
/// that ends when the thread does. (macOS thread ids are no pids.)
pub fn is_process_id(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            return false;
        };
        status
            .lines()
            .find_map(|line| line.strip_prefix("Tgid:"))
            .and_then(|tgid| tgid.trim().parse::<u32>().ok())
            == Some(pid)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        true
    }
}

/// The executable of a live process, when we may see it.
pub fn executable(pid: u32) -> Option<std::path::PathBuf> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_link(format!("/proc/{pid}/exe")).ok()
    }
    #[cfg(target_os = "macos")]
    {
        let pid = kernel_pid(pid)?;
        let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
        // SAFETY: buf is writable for the size passed.
        let n =
            unsafe { libc::proc_pidpath(pid.as_raw(), buf.as_mut_ptr().cast(), buf.len() as u32) };
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
