//! Between fork and exec: the intermediate process, and the descriptors the
//! service keeps (only the readiness pipe and the lock). Only
//! async-signal-safe calls here.

use std::sync::atomic::{AtomicI32, Ordering};

use super::*;

/// The intermediate process, between fork and exec: report the service's
/// pid, close every other descriptor (the exec-error pipe of our parent
/// among them, so its `spawn` returns once the service has exec'd), wait
/// for the service and report how it ended, then exit. It also exits, and
/// reports nothing, once the spawner is gone (end of file on `lifeline_fd`,
/// whose only write end the spawner holds): a spawner that was killed
/// leaves no intermediate behind for the service's lifetime. Only
/// async-signal-safe calls.
pub(super) fn run_intermediate(
    service: libc::pid_t,
    status_fd: RawFd,
    lifeline_fd: RawFd,
    loop_end: RawFd,
    high_fds: &[RawFd],
) -> ! {
    // SAFETY: write, close, waitpid and _exit are async-signal-safe; the
    // buffers are on this stack.
    unsafe {
        let bytes = service.to_ne_bytes();
        libc::write(status_fd, bytes.as_ptr().cast(), bytes.len());
        close_all_but([status_fd, lifeline_fd], loop_end, high_fds);
        let status = wait_for_service(service, lifeline_fd);
        let bytes = status.to_ne_bytes();
        libc::write(status_fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(0)
    }
}

/// The write end of the intermediate's self-pipe, for its SIGCHLD handler.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// The intermediate's SIGCHLD handler: wake its `poll`. A byte per signal;
/// with one child (and `SA_NOCLDSTOP`) they are few, and each is read
/// before the next wait, so the write never blocks. A successful write
/// leaves `errno` as it was.
extern "C" fn wake_on_sigchld(_: libc::c_int) {
    let fd = WAKE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write is async-signal-safe; the byte is on this stack.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// Wait until `service` exits, returning its wait status, or `_exit` once
/// the spawner is gone (end of file on `lifeline_fd`). Woken by the kernel
/// for both: SIGCHLD through a self-pipe, and the lifeline's end of file.
/// Where the self-pipe or the handler cannot be set up, a plain blocking
/// `waitpid`, as before there was a lifeline.
///
/// # Safety
/// Between fork and exec in the intermediate only: it installs a signal
/// handler for the process.
unsafe fn wait_for_service(service: libc::pid_t, lifeline_fd: RawFd) -> libc::c_int {
    let mut status: libc::c_int = 0;
    // SAFETY: pipe, sigemptyset, sigaction, sigprocmask, waitpid, poll and
    // read are async-signal-safe; every buffer is on this stack.
    unsafe {
        let mut wake = [-1 as libc::c_int; 2];
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = wake_on_sigchld as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_NOCLDSTOP;
        libc::sigemptyset(&mut action.sa_mask);
        let mut unblock: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut unblock);
        libc::sigaddset(&mut unblock, libc::SIGCHLD);
        let watching = libc::pipe(wake.as_mut_ptr()) == 0 && {
            WAKE_FD.store(wake[1], Ordering::Relaxed);
            libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut()) == 0
                && libc::sigprocmask(libc::SIG_UNBLOCK, &unblock, std::ptr::null_mut()) == 0
        };
        loop {
            let flags = if watching { libc::WNOHANG } else { 0 };
            match libc::waitpid(service, &mut status, flags) {
                pid if pid == service => return status,
                // Still running: wait below.
                0 => {}
                // Interrupted (by SIGCHLD, say): look again.
                _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
                // Not our child any more: nothing to report.
                _ => return 0,
            }
            if !watching {
                continue;
            }
            let mut fds = [
                libc::pollfd {
                    fd: lifeline_fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: wake[0],
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // A SIGCHLD between the waitpid and here has written its byte,
            // so this returns at once.
            if libc::poll(fds.as_mut_ptr(), 2, -1) > 0 {
                if fds[0].revents != 0 {
                    // The spawner is gone (it never writes): nobody reads
                    // the status, and the service is left to run.
                    libc::_exit(0);
                }
                if fds[1].revents != 0 {
                    let mut buf = [0u8; 64];
                    libc::read(wake[0], buf.as_mut_ptr().cast(), buf.len());
                }
            }
        }
    }
}

/// A close-on-exec pipe (read end, write end).
#[cfg(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd"
))]
pub(super) fn readiness_pipe() -> nix::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
}

/// A close-on-exec pipe (read end, write end). macOS has no `pipe2`, so the
/// flag is set right after creation, as std does there.
#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd"
)))]
pub(super) fn readiness_pipe() -> nix::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    let (rx, tx) = nix::unistd::pipe()?;
    for fd in [rx.as_raw_fd(), tx.as_raw_fd()] {
        sys::set_cloexec(fd, true)
            .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    }
    Ok((rx, tx))
}

/// The most descriptors the fallback loops (no `close_range`) cover one by
/// one; open ones above are listed before the fork.
pub(super) const FALLBACK_FD_LIMIT: RawFd = 65_536;

/// The open descriptors of this process numbered `limit` or more (from
/// `/dev/fd`, which Linux and macOS both provide). The directory's own
/// descriptor is listed too; it is closed by then, and closing or marking
/// a closed descriptor just fails.
pub(super) fn open_descriptors_above(limit: RawFd) -> Vec<RawFd> {
    let Ok(entries) = std::fs::read_dir("/dev/fd") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .filter(|&fd| fd >= limit)
        .collect()
}

/// Mark every descriptor from `first` up close-on-exec (between fork and
/// exec, so only async-signal-safe calls): `close_range` where the kernel
/// has it, else one `fcntl` per descriptor up to `loop_end` plus the listed
/// higher ones.
pub(super) fn close_on_exec_from(first: RawFd, loop_end: RawFd, high_fds: &[RawFd]) {
    #[cfg(target_os = "linux")]
    {
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        // SAFETY: close_range with CLOEXEC only changes descriptor flags.
        let done = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first as libc::c_uint,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            )
        } == 0;
        if done {
            return;
        }
    }
    for fd in (first..loop_end).chain(high_fds.iter().copied()) {
        // A closed one just fails.
        let _ = sys::set_cloexec(fd, true);
    }
}

/// Close every descriptor from 3 up except the two in `keep` (between fork
/// and exec).
pub(super) fn close_all_but(keep: [RawFd; 2], loop_end: RawFd, high_fds: &[RawFd]) {
    #[cfg(target_os = "linux")]
    {
        let (low, high) = (keep[0].min(keep[1]), keep[0].max(keep[1]));
        // The ranges around the kept two; an empty one is skipped.
        let ranges = [(3, low - 1), (low + 1, high - 1), (high + 1, RawFd::MAX)];
        let done = ranges.iter().all(|&(first, last)| {
            first > last
                // SAFETY: close_range only closes descriptors of this process.
                || unsafe {
                    libc::syscall(
                        libc::SYS_close_range,
                        first as libc::c_uint,
                        last as libc::c_uint,
                        0,
                    )
                } == 0
        });
        if done {
            return;
        }
    }
    for fd in (3..loop_end).chain(high_fds.iter().copied()) {
        if !keep.contains(&fd) {
            // SAFETY: closing a descriptor number; a closed one just fails.
            unsafe { libc::close(fd) };
        }
    }
}
