use std::time::Duration;

use nix::unistd::Pid;
use spfs_autostart_test_support::Sleeper;

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
fn only_a_single_positive_pid_reaches_the_kernel() {
    assert_eq!(kernel_pid(1), Some(Pid::from_raw(1)));
    assert_eq!(kernel_pid(i32::MAX as u32), Some(Pid::from_raw(i32::MAX)));
    // 0 is "my group", -1 (u32::MAX cast) "everyone I may signal".
    for pid in [0, i32::MAX as u32 + 1, u32::MAX] {
        assert_eq!(kernel_pid(pid), None, "{pid}");
    }
}

/// Pid 1 (a container's init, the service in its own pid namespace) never
/// names a group to signal whole: `killpg(1)` is `kill(-1)`, every process
/// the caller may signal. Looked at only: nothing is signalled here.
#[test]
fn pid_1_never_counts_as_a_group_to_signal() {
    assert_eq!(kernel_group(1), None);
    assert_eq!(kernel_group(0), None);
    assert_eq!(kernel_group(2), Some(Pid::from_raw(2)));
    let init = Instance::of(1).expect("pid 1 runs");
    if let Some(handle) = ProcessHandle::open(init) {
        assert!(!handle.leads_session(), "pid 1 taken for a session leader");
        assert!(!handle.group_has_members());
    }
}

/// A group whose leader exited unreaped (spfs never reaps the service it
/// started) has no members left to wait for, but one where another
/// process lives on has. (Linux: macOS shows a zombie's facts, which the
/// test waits for, only to a different `proc_pidinfo` call.)
#[cfg(target_os = "linux")]
#[test]
fn a_zombie_leader_alone_leaves_no_members_but_a_live_member_counts() {
    use spfs_autostart_test_support::wait_for;
    use std::os::unix::process::CommandExt;
    /// A shell leading a group of its own, the group killed and the shell
    /// reaped however the test ends.
    struct Group(std::process::Child);
    impl Drop for Group {
        fn drop(&mut self) {
            let _ = nix::sys::signal::killpg(
                Pid::from_raw(self.0.id() as i32),
                nix::sys::signal::SIGKILL,
            );
            let _ = self.0.wait();
        }
    }
    let start = |script: &str| {
        Group(
            std::process::Command::new("sh")
                .args(["-c", script])
                .process_group(0)
                .spawn()
                .unwrap(),
        )
    };
    let handle_of = |child: &std::process::Child| {
        let instance = Instance::of(child.id()).unwrap();
        ProcessHandle::open(instance).unwrap()
    };
    let zombie_of = |child: &std::process::Child| {
        nix::sys::signal::kill(Pid::from_raw(child.id() as i32), nix::sys::signal::SIGKILL)
            .unwrap();
        // Not reaped: it stays a zombie until `wait` below.
        let pid = child.id();
        assert!(
            wait_for(Duration::from_secs(10), || {
                process_info(pid).is_some_and(|i| i.zombie)
            }),
            "pid {pid} became a zombie"
        );
    };
    // The leader alone.
    let alone = start("exec sleep 60");
    let handle = handle_of(&alone.0);
    assert!(handle.group_has_members(), "the live leader is a member");
    zombie_of(&alone.0);
    assert!(!handle.group_has_members(), "only its zombie is left");
    drop(alone);
    // The leader with a child that lives on.
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let parent = start(&format!("sleep 60 & touch {}; wait", started.display()));
    let handle = handle_of(&parent.0);
    assert!(
        wait_for(Duration::from_secs(10), || started.exists()),
        "the shell started its sleep"
    );
    zombie_of(&parent.0);
    assert!(
        handle.group_has_members(),
        "its sleep lives on in the group"
    );
    drop(parent);
    assert!(
        wait_for(Duration::from_secs(10), || { !handle.group_has_members() }),
        "killed, the sleep is gone (init reaps it)"
    );
}

#[test]
fn cloexec_is_set_and_cleared_and_a_descriptor_that_is_not_open_fails() {
    use std::os::fd::AsRawFd;
    let (rx, _tx) = std::io::pipe().unwrap();
    let fd = rx.as_raw_fd();
    let flags = || nix::fcntl::fcntl(&rx, nix::fcntl::FcntlArg::F_GETFD).unwrap();
    assert!(is_open(fd));
    set_cloexec(fd, false).unwrap();
    assert_eq!(flags() & libc::FD_CLOEXEC, 0);
    set_cloexec(fd, true).unwrap();
    assert_eq!(flags() & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    // -1 is never open. (A number just closed could be reused at once by a
    // test on another thread.)
    assert!(!is_open(-1));
    assert_eq!(
        set_cloexec(-1, true).unwrap_err().raw_os_error(),
        Some(libc::EBADF)
    );
}

#[tokio::test]
async fn an_exit_is_noticed_by_a_handle_that_does_not_reap_it() {
    let mut child = std::process::Command::new("sleep")
        .arg("0.2")
        .spawn()
        .unwrap();
    let instance = Instance::of(child.id()).expect("alive");
    let handle = ProcessHandle::open(instance).expect("open");
    // Reaped elsewhere, as a process that is not our child would be.
    let reaper = std::thread::spawn(move || child.wait());
    tokio::time::timeout(Duration::from_secs(20), handle.exited())
        .await
        .expect("exit noticed");
    reaper.join().unwrap().unwrap();
    assert!(!instance.is_alive());
    assert!(ProcessHandle::open(instance).is_none(), "gone: no handle");
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

#[test]
fn a_pid_exists_whoever_owns_it_and_a_zombie_still_holds_it() {
    assert!(pid_exists(std::process::id()));
    // init is root's: it exists for every user, visible or not.
    assert!(pid_exists(1));
    assert!(!pid_exists(u32::MAX / 2));
    assert!(!pid_exists(0), "0 is not a pid (kill would read my group)");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while process_info(pid).is_some_and(|i| !i.zombie) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(pid_exists(pid), "a zombie holds its pid until reaped");
    child.wait().unwrap();
    assert!(!pid_exists(pid), "reaped");
}

#[test]
fn a_suspended_process_reads_stopped_until_it_is_continued() {
    use nix::sys::signal::{Signal, kill};
    let child = Sleeper::start();
    let pid = child.pid();
    // Just spawned, it may still be in `exec` (briefly uninterruptible,
    // "blocked", on a loaded machine, and again while it faults its pages
    // in): wait for a look that finds it running, and judge that look.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let running = loop {
        let info = process_info(pid).unwrap();
        if !info.blocked || std::time::Instant::now() >= deadline {
            break info;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(!running.stopped && !running.blocked, "{running:?}");
    let target = kernel_pid(pid).unwrap();
    kill(target, Signal::SIGSTOP).unwrap();
    let wait = |stopped: bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while process_info(pid).unwrap().stopped != stopped && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        process_info(pid).unwrap().stopped
    };
    assert!(wait(true), "stopped after SIGSTOP");
    kill(target, Signal::SIGCONT).unwrap();
    assert!(!wait(false), "running again after SIGCONT");
}

#[test]
fn a_process_env_var_is_read_from_the_environment_the_process_started_with() {
    let child = Sleeper::spawn(
        std::process::Command::new("sleep")
            .env("SPFS_AUTOSTART_TEST_VAR", "the value=with equals")
            .env("SPFS_AUTOSTART_TEST_VAR_LONGER", "another"),
    );
    let read = |name| ProcessEnv::of(child.pid())?.var(name);
    // Right after the spawn returns the child may still be in `execve`
    // (posix_spawn resumes the parent once the old memory is let go, before
    // the new environment is in place): its environment reads empty.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while read("SPFS_AUTOSTART_TEST_VAR").is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        read("SPFS_AUTOSTART_TEST_VAR"),
        Some("the value=with equals".into())
    );
    assert_eq!(
        read("SPFS_AUTOSTART_TEST_VAR_LONGER"),
        Some("another".into())
    );
    assert_eq!(read("SPFS_AUTOSTART_TEST"), None, "a prefix is not a name");
    assert_eq!(read("SPFS_AUTOSTART_UNSET_IN_TEST"), None);
    let pid = child.pid();
    drop(child);
    assert!(ProcessEnv::of(pid).is_none(), "a process that is gone");
}

#[test]
fn the_environment_of_a_procargs_buffer_is_what_follows_the_arguments() {
    // argc 2, the executable's path, padding, two arguments, two entries,
    // the empty terminator, then what the kernel adds.
    let mut buf = 2i32.to_ne_bytes().to_vec();
    buf.extend_from_slice(b"/bin/svc\0\0\0\0svc\0service\0A=1\0B=two\0\0ptr_munge=x\0");
    assert_eq!(
        environ::environment_of_procargs(&buf).as_deref(),
        Some(&b"A=1\0B=two\0"[..])
    );
    let mut none = 1i32.to_ne_bytes().to_vec();
    none.extend_from_slice(b"/bin/svc\0svc\0");
    assert_eq!(
        environ::environment_of_procargs(&none).as_deref(),
        Some(&b""[..])
    );
    assert_eq!(environ::environment_of_procargs(b"\x01"), None, "too short");
    let mut truncated = 3i32.to_ne_bytes().to_vec();
    truncated.extend_from_slice(b"/bin/svc\0svc\0");
    assert_eq!(environ::environment_of_procargs(&truncated), None);
}
