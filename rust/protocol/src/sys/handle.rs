//! Signalling exactly one process (or the process group it leads), and
//! waiting for it to exit without being its parent; and ending a session or
//! a group by the pid of its leader.

use std::io;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::process::group_has_live_members;
use super::{Instance, kernel_group, kernel_pid};

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
        let pidfd = kernel_pid(instance.pid).and_then(|pid| {
            use std::os::fd::{FromRawFd, OwnedFd, RawFd};
            // SAFETY: pidfd_open takes a pid and flags and returns a new
            // descriptor (close-on-exec) or -1.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
            // SAFETY: a non-negative return is a fresh descriptor we own.
            (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
        });
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
        let Some(pid) = kernel_pid(self.instance.pid).filter(|_| self.instance.is_alive()) else {
            return Ok(false);
        };
        match nix::sys::signal::kill(pid, signal) {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::ESRCH) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether this instance leads its own session (`setsid`, as every
    /// service our spawner starts, and launchd's jobs): its process group is
    /// then its own, holding only what it started (a wrapper script's
    /// child, its helpers). Never for pid 1 (see [`kernel_group`]): its
    /// group cannot be signalled as a whole.
    pub fn leads_session(&self) -> bool {
        kernel_group(self.instance.pid).is_some_and(|pid| {
            nix::unistd::getsid(Some(pid)) == Ok(pid) && self.instance.is_alive()
        })
    }

    /// Send `signal` to the process group this instance leads (see
    /// [`ProcessHandle::leads_session`]), the instance among them, once
    /// each (a second SIGINT may mean "now" to a service); `Ok(false)` when
    /// the group is gone. Call it only for an instance seen leading its
    /// session: its id names that group while the group has members, the
    /// leader or not (a wrapper script may exit before the service it ran),
    /// since a process group's id is not reused while the group exists.
    pub fn signal_group(&self, signal: Signal) -> io::Result<bool> {
        let Some(group) = kernel_group(self.instance.pid) else {
            return self.signal(signal);
        };
        match nix::sys::signal::killpg(group, signal) {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::ESRCH) => Ok(false),
            // Not a group we may signal as a whole: the instance alone.
            Err(_) => self.signal(signal),
        }
    }

    /// Whether the process group this instance led still has members that
    /// have not exited (see [`ProcessHandle::signal_group`] for when to
    /// ask): a stop is done when the whole group is, not when the leader
    /// alone has exited. Zombies do not count: the leader itself is one
    /// for good when its parent never reaps it, as spfs does not.
    pub fn group_has_members(&self) -> bool {
        kernel_group(self.instance.pid).is_some_and(|group| {
            !matches!(
                nix::sys::signal::killpg(group, None),
                Err(nix::errno::Errno::ESRCH)
            ) && group_has_live_members(group)
        })
    }

    /// Resolves when the instance has exited (a zombie has).
    ///
    /// Woken by the kernel: a pidfd on Linux, a kqueue `NOTE_EXIT` event on
    /// macOS. Where neither is available, the start time is polled, at first
    /// often (a stop waits on this) and then every 50 ms.
    pub async fn exited(&self) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.pidfd
            && readable(fd).await.is_some()
        {
            // A pidfd becomes readable when the process exits.
            return;
        }
        #[cfg(target_os = "macos")]
        if exit_event(self.instance).await.is_some() {
            return;
        }
        let mut step = Duration::from_millis(1);
        while self.instance.is_alive() {
            tokio::time::sleep(step).await;
            step = (step * 2).min(Duration::from_millis(50));
        }
    }
}

/// Resolves when `fd` becomes readable; `None` when the runtime cannot
/// watch it. Watches the descriptor itself, not a duplicate: a lease follows
/// its holder with one descriptor, not two.
#[cfg(any(target_os = "linux", target_os = "macos"))]
async fn readable(fd: &std::os::fd::OwnedFd) -> Option<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `fd` is borrowed for as long as this future, and with it the
    // AsyncFd, lives, so the descriptor stays open while it is registered.
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(
            fd.as_raw_fd(),
            tokio::io::Interest::READABLE,
        )
    }
    .ok()?;
    fd.readable().await.ok().map(drop)
}

/// Resolves when `instance` exits, through a kqueue `EVFILT_PROC` /
/// `NOTE_EXIT` event; `None` when the event cannot be registered.
#[cfg(target_os = "macos")]
async fn exit_event(instance: Instance) -> Option<()> {
    use nix::sys::event::{EvFlags, EventFilter, FilterFlag, KEvent, Kqueue};
    let pid = kernel_pid(instance.pid)?;
    let kq = Kqueue::new().ok()?;
    let change = KEvent::new(
        pid.as_raw() as usize,
        EventFilter::EVFILT_PROC,
        EvFlags::EV_ADD | EvFlags::EV_ONESHOT,
        FilterFlag::NOTE_EXIT,
        0,
        0,
    );
    let now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match kq.kevent(&[change], &mut [], Some(now)) {
        // Gone already.
        Err(nix::errno::Errno::ESRCH) => return Some(()),
        Err(_) => return None,
        Ok(_) => {}
    }
    // Registered on the pid: if that pid now names another process, ours
    // exited before the registration, and the event would wait for the
    // wrong one.
    if !instance.is_alive() {
        return Some(());
    }
    // A kqueue descriptor is readable while it has pending events (`Kqueue`
    // offers `AsFd` only; its `OwnedFd` keeps the queue and the event).
    let kq = std::os::fd::OwnedFd::from(kq);
    readable(&kq).await
}

/// SIGKILL the process group `pid` leads (its session, when it was started
/// with `setsid`), then `pid` itself.
///
/// Only for a pid that cannot have been reused: one whose parent has not
/// reaped it yet (the spawner's intermediate holds its service so). Anyone
/// else goes through [`ProcessHandle`].
pub fn kill_group_and_leader(pid: u32) {
    if let Some(group) = kernel_group(pid) {
        let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
    }
    if let Some(pid) = kernel_pid(pid) {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    }
}

/// Send `signal` to the session `pid` leads (a service our spawner started
/// with `setsid`, which is in it), each process once. The same rule as
/// [`kill_group_and_leader`]: only for a pid that cannot have been reused.
pub fn signal_session(pid: u32, signal: Signal) {
    if let Some(group) = kernel_group(pid) {
        let _ = nix::sys::signal::killpg(group, signal);
    }
}
