//! Between fork and exec: the intermediate process, and the descriptors the
//! service keeps (only the readiness pipe and the lock). Only
//! async-signal-safe calls here.

use super::*;

/// The intermediate process, between fork and exec: report the service's
/// pid, close every other descriptor (the exec-error pipe of our parent
/// among them, so its `spawn` returns once the service has exec'd), wait
/// for the service and report how it ended, then exit. Only
/// async-signal-safe calls.
pub(super) fn run_intermediate(
    service: libc::pid_t,
    status_fd: RawFd,
    loop_end: RawFd,
    high_fds: &[RawFd],
) -> ! {
    // SAFETY: write, close, waitpid and _exit are async-signal-safe; the
    // buffers are on this stack.
    unsafe {
        let bytes = service.to_ne_bytes();
        libc::write(status_fd, bytes.as_ptr().cast(), bytes.len());
        close_all_but(status_fd, loop_end, high_fds);
        let mut status: libc::c_int = 0;
        while libc::waitpid(service, &mut status, 0) == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
        let bytes = status.to_ne_bytes();
        libc::write(status_fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(0)
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

/// Close every descriptor from 3 up except `keep` (between fork and exec).
pub(super) fn close_all_but(keep: RawFd, loop_end: RawFd, high_fds: &[RawFd]) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: close_range only closes descriptors of this process.
        let done = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                (keep - 1) as libc::c_uint,
                0,
            ) == 0
                && libc::syscall(
                    libc::SYS_close_range,
                    (keep + 1) as libc::c_uint,
                    libc::c_uint::MAX,
                    0,
                ) == 0
        };
        if done {
            return;
        }
    }
    for fd in (3..loop_end).chain(high_fds.iter().copied()) {
        if fd != keep {
            // SAFETY: closing a descriptor number; a closed one just fails.
            unsafe { libc::close(fd) };
        }
    }
}
