//! Platform calls about processes and descriptors, in one place: who a
//! process is (pid and start time), whether it still lives (a zombie does
//! not), its owner, signalling exactly that process (or the group it leads)
//! and nothing that reused its pid, waiting for it to exit without being its parent, and the
//! close-on-exec flag; and the environment a process of the user's started
//! with.
//!
//! (What runs between `fork` and `exec` in the client's spawner stays there,
//! beside the code it serves: it may call only async-signal-safe functions.
//! [`set_cloexec`] and [`reset_signals`] are two it calls from here.)

mod environ;
mod handle;
mod process;

pub use environ::ProcessEnv;
pub use handle::{ProcessHandle, kill_group_and_leader, signal_session};
pub use process::{
    Instance, ProcInfo, descends_from, executable, is_process_id, out_of_descriptors, pid_exists,
    process_info, process_start_time, process_uid, session_of,
};

use std::io::{self, Write};
use std::os::fd::RawFd;

use nix::unistd::Pid;

/// `pid` as the kernel's pid type, or `None` for 0 and for values above
/// `i32::MAX`. A plain cast would turn those into 0 or a negative number,
/// which `kill` reads as "my process group", "every process I may signal"
/// or a group: never what a caller holding one pid means.
pub fn kernel_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|&pid| pid > 0)
        .map(Pid::from_raw)
}

/// `pid` as the id of a process group to signal as a whole: never 1, since
/// `killpg(1, ..)` is `kill(-1, ..)`, every process the caller may signal
/// (a service that is the init of its pid namespace, in a container, has
/// pid 1 there and leads its session), nor 0 (the caller's own group).
pub fn kernel_group(pid: u32) -> Option<Pid> {
    kernel_pid(pid).filter(|pid| pid.as_raw() > 1)
}

/// Set (`on`) or clear close-on-exec on descriptor `fd`.
///
/// One `fcntl` call, so it is async-signal-safe and may run between `fork`
/// and `exec`. A descriptor that is not open gives `EBADF`.
pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    let flags = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: F_SETFD changes only the flags of a descriptor number; on one
    // that is not open it fails with EBADF and touches nothing.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ignore `SIGXFSZ` in this process: past a file size limit (`ulimit -f`)
/// a write then fails with `EFBIG`, which is reported, instead of ending the
/// process without a word. A service gets the default back from
/// [`reset_signals`]. Call before any thread exists.
pub fn ignore_file_size_signal() {
    // SAFETY: changes one signal's disposition, to "ignore"; no handler
    // runs, and before any thread exists nothing races it.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Ignore `SIGPIPE` in this process: a write to a pipe whose reader has
/// gone then fails with `EPIPE`, which the caller handles (`| head`),
/// instead of ending the process. std's wrapper around a Rust `main` does
/// this; a program that enters at C's `main` instead (the CLI) calls this
/// first, before any thread exists. Children get the default back: std's
/// `Command` resets it, as [`reset_signals`] does for a service.
pub fn ignore_broken_pipe_signal() {
    // SAFETY: changes one signal's disposition, to "ignore"; no handler
    // runs, and before any thread exists nothing races it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Open `/dev/null` on each standard descriptor (0, 1, 2) that is closed,
/// as std's wrapper around a Rust `main` does: otherwise the next file the
/// process opens takes that number, and what it prints lands in that file
/// (a lock file, say). For a program that enters at C's `main` instead (the
/// CLI); call first, before any thread exists. When `/dev/null` cannot be
/// opened there, the process aborts, as std's does: it could not run
/// without writing into its own files.
pub fn open_closed_stdio() {
    for fd in 0..=2 {
        if is_open(fd) {
            continue;
        }
        // `open` takes the lowest free number, which is `fd`: the ones
        // below it are open by now. Kept open for the process's lifetime.
        // SAFETY: a NUL-terminated path and plain flags; the descriptor it
        // returns is deliberately never closed.
        let opened = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if opened != fd {
            let _ = writeln!(
                io::stderr(),
                "fatal: descriptor {fd} is closed and /dev/null cannot be opened in its place"
            );
            std::process::abort();
        }
    }
}

/// Give every signal its default action and block none, as a new service
/// expects: a host that ignores some (a shell's background job ignores
/// SIGINT and SIGQUIT, `nohup` SIGHUP, Python SIGXFSZ) or blocks some (a
/// signal-handling library's threads do) would otherwise hand that on across
/// `exec` (std's `Command` keeps the mask too), and the service would
/// ignore, or hold back until the SIGKILL, the very signals its
/// `stop_sequence` sends. Handled signals are reset by `exec` itself;
/// ignored and blocked ones are not.
///
/// `sigaction` and `sigprocmask` only, so it is async-signal-safe and may
/// run between `fork` and `exec`. Numbers the system does not have (or
/// reserves, such as glibc's realtime signals) fail with `EINVAL` and are
/// skipped.
pub fn reset_signals() {
    // SAFETY: a zeroed sigaction is a valid SIG_DFL action with an empty
    // mask; sigaction on a number that is not a signal, or on SIGKILL and
    // SIGSTOP, fails with EINVAL and changes nothing. An emptied sigset_t
    // as the new mask of the one thread left after fork blocks nothing.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for signal in 1..65 {
            libc::sigaction(signal, &default, std::ptr::null_mut());
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// End this process by `signal`, with that signal's default action (for
/// SIGTERM and SIGINT: the process ends, and its parent sees it ended by
/// that signal), whatever handler was installed for it.
pub fn die_by(signal: nix::sys::signal::Signal) -> ! {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow};
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installs the default action, which runs no code of ours; the
    // handler it replaces (tokio's, say) only records signals.
    let _ = unsafe { nix::sys::signal::sigaction(signal, &default) };
    let mut only = SigSet::empty();
    only.add(signal);
    // This thread must not hold it back.
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&only), None);
    let _ = nix::sys::signal::raise(signal);
    // Not reached unless the signal could not end us: exit as a shell
    // reports a death by signal.
    std::process::exit(128 + signal as i32)
}

/// Whether `fd` is an open descriptor of this process.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads a descriptor's flags; it fails on a number
    // that is not open.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// The uid this process acts as (its effective uid): the owner of the files
/// it creates, the uid the kernel checks before a signal and reports to a
/// socket's peer, and the `gui/<uid>` domain of launchd. Every "is this
/// ours?" in the project compares with this one value.
pub fn my_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Who is at the other end of a Unix socket connection (for a client, the
/// process that listens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its effective uid.
    pub uid: u32,
    /// Its pid; `None` when the kernel cannot say (a peer in another pid
    /// namespace).
    pub pid: Option<u32>,
}

/// Who is at the other end of the connected Unix socket `socket`: the
/// kernel's word (`SO_PEERCRED`; macOS `getpeereid` and `LOCAL_PEERPID`,
/// which names no pid once the peer has closed its end: ask early).
pub fn socket_peer(socket: &impl std::os::fd::AsFd) -> io::Result<Peer> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
        let cred = getsockopt(socket, PeerCredentials)?;
        Ok(Peer {
            uid: cred.uid(),
            pid: u32::try_from(cred.pid()).ok().filter(|&pid| pid > 0),
        })
    }
    #[cfg(target_vendor = "apple")]
    {
        use nix::sys::socket::{getsockopt, sockopt::LocalPeerPid};
        let (uid, _) = nix::unistd::getpeereid(socket)?;
        let pid = getsockopt(socket, LocalPeerPid)?;
        Ok(Peer {
            uid: uid.as_raw(),
            pid: u32::try_from(pid).ok().filter(|&pid| pid > 0),
        })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
    {
        let _ = socket;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "telling a socket's peer is not supported here",
        ))
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
mod tests;
