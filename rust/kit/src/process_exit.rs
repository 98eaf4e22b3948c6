//! Waiting for an unrelated process (a lease holder) to exit.
//!
//! Not our child, so no `waitpid`: Linux gives a pidfd that becomes readable
//! at exit, macOS a kqueue `EVFILT_PROC`/`NOTE_EXIT` event; elsewhere, or if
//! those fail, a slow `kill(pid, 0)` poll.

use std::time::Duration;

/// Resolves when process `pid` has exited (at once if it does not exist).
pub async fn wait(pid: u32) {
    #[cfg(target_os = "linux")]
    if let Some(()) = wait_pidfd(pid).await {
        return;
    }
    #[cfg(target_os = "macos")]
    if let Some(()) = wait_kqueue(pid).await {
        return;
    }
    poll(pid).await
}

fn alive(pid: u32) -> bool {
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

async fn poll(pid: u32) {
    while alive(pid) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(target_os = "linux")]
async fn wait_pidfd(pid: u32) -> Option<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        // No such process: it has already exited.
        return (err.raw_os_error() == Some(libc::ESRCH)).then_some(());
    }
    // SAFETY: the syscall returned a fresh descriptor that we now own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: the OwnedFd is moved in and stays open as long as the AsyncFd.
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }
    .ok()?;
    let _ = fd.readable().await.ok()?;
    Some(())
}

#[cfg(target_os = "macos")]
async fn wait_kqueue(pid: u32) -> Option<()> {
    use nix::sys::event::{EvFlags, EventFilter, FilterFlag, KEvent, Kqueue};
    let kq = Kqueue::new().ok()?;
    let change = KEvent::new(
        pid as usize,
        EventFilter::EVFILT_PROC,
        EvFlags::EV_ADD | EvFlags::EV_ONESHOT,
        FilterFlag::NOTE_EXIT,
        0,
        0,
    );
    if let Err(e) = kq.kevent(
        &[change],
        &mut [],
        Some(nix::libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }),
    ) {
        return (e == nix::errno::Errno::ESRCH).then_some(());
    }
    // A kqueue descriptor is readable while it has pending events. (`Kqueue`
    // offers `AsFd` only; its `OwnedFd` keeps the queue and our event alive.)
    let kq = std::os::fd::OwnedFd::from(kq);
    // SAFETY: the descriptor is moved in and stays open as long as the AsyncFd.
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(kq, tokio::io::Interest::READABLE)
    }
    .ok()?;
    let _ = fd.readable().await.ok()?;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_of_a_child_is_noticed() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let pid = child.id();
        let reaper = std::thread::spawn(move || child.wait());
        tokio::time::timeout(Duration::from_secs(10), wait(pid))
            .await
            .expect("exit noticed");
        reaper.join().unwrap().unwrap();
    }

    #[tokio::test]
    async fn missing_process_resolves_at_once() {
        tokio::time::timeout(Duration::from_secs(2), wait(u32::MAX / 2))
            .await
            .expect("resolves");
    }
}
