//! The service's identity (version) and what it inherits from its spawner.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use common::*;

#[test]
fn version_mismatch_restarts_the_service_or_is_reported_by_policy() {
    let mut sb = Sandbox::new().with("args", vec!["--report-version", "1.0.0"]);
    let old = sb.ensure();
    assert_eq!(old["version"], "1.0.0");

    sb.reset_config()
        .set("args", vec!["--report-version", "2.0.0"])
        .set("expected_version", "2.0.0")
        .set("on_version_mismatch", "error");
    let out = sb.run(&["--json", "ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "VersionMismatch", "{error}");
    assert_eq!(
        pid_of(&sb.status()),
        pid_of(&old),
        "policy error leaves it alone"
    );

    sb.reset_config()
        .set("args", vec!["--report-version", "2.0.0"])
        .set("expected_version", "2.0.0");
    let new = sb.ensure();
    assert_eq!(new["version"], "2.0.0");
    assert_ne!(pid_of(&new), pid_of(&old), "restarted");
    assert!(!alive(pid_of(&old)));
    assert_eq!(sb.pids(), vec![pid_of(&new)]);

    sb.reset_config()
        .set("args", vec!["--report-version", "2.0.0"])
        .set("expected_version", "3.0.0");
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("reports version 2.0.0, not the expected 3.0.0, even when freshly"),
        "{}",
        stderr(&out)
    );
    sb.ok(&["stop"]);

    // Stopped: the one start is the only one. Starting the same program
    // again, at once or on the next call, would not change its version.
    let spawns = sb.spawn_count();
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("even when freshly started"),
        "{}",
        stderr(&out)
    );
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(sb.spawn_count(), spawns + 1, "{}", sb.log());
    assert_eq!(sb.pids().len(), 1);
    // What is remembered is private to its owner, as every state file is.
    use std::os::unix::fs::PermissionsExt;
    let remembered = std::fs::metadata(sb.state_dir().join("version-restart.json")).unwrap();
    assert_eq!(remembered.permissions().mode() & 0o777, 0o600);
    sb.ok(&["stop"]);
}

#[test]
fn service_inherits_no_descriptor_of_its_spawner_but_the_lock() {
    let sb = Sandbox::new();
    let marker = sb.root().join("marker");
    let leaked = std::fs::File::create(&marker).unwrap();
    let fd = leaked.as_raw_fd();
    let mut command = sb.cli(&["--json", "ensure"]);
    // The spawner's host has an inheritable descriptor open, as a careless
    // host (a Python process, a shell) may.
    // SAFETY: the closure only calls fcntl, which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pid = pid_of(&status);
    let mut targets = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            targets.push(target.display().to_string());
        }
    }
    assert!(
        !targets.iter().any(|t| t.contains("marker")),
        "leaked: {targets:?}"
    );
    assert!(
        targets.iter().any(|t| t.ends_with("instance.lock")),
        "holds the lock: {targets:?}"
    );
    assert_eq!(
        targets
            .iter()
            .filter(|t| t.ends_with("service.log"))
            .count(),
        2,
        "stdout and stderr go to the log: {targets:?}"
    );
    assert!(
        targets.iter().any(|t| t == "/dev/null"),
        "stdin is /dev/null: {targets:?}"
    );
    // The readiness pipe was closed after READY.
    assert!(
        !targets.iter().any(|t| t.starts_with("pipe:")),
        "{targets:?}"
    );
    // A new session: the service is not in the spawner's process group.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        fields[3],
        pid.to_string(),
        "session leader (setsid): {stat}"
    );
    sb.ok(&["stop"]);
}

/// Make `close_range` fail with `ENOSYS` in this process and in every
/// process it starts, as on a Linux kernel before 5.9: a seccomp filter,
/// which fork and exec inherit. For `pre_exec`: only system calls, and the
/// filter lives on the stack.
///
/// The filter checks the system call number only, not the architecture:
/// the processes it governs run this build's code.
#[cfg(target_os = "linux")]
fn deny_close_range() -> std::io::Result<()> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, sock_filter};
    let filter = [
        // Load `seccomp_data.nr`, the system call number (offset 0).
        sock_filter {
            code: (BPF_LD | BPF_W | BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        // close_range: fall through to ENOSYS; anything else: skip to allow.
        sock_filter {
            code: (BPF_JMP | BPF_JEQ | BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_close_range as u32,
        },
        sock_filter {
            code: (BPF_RET | BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        },
        sock_filter {
            code: (BPF_RET | BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with NO_NEW_PRIVS takes plain integers; SET_SECCOMP
    // reads `program`, which points at `filter`, both alive for the call.
    let installed = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            ) == 0
    };
    if !installed {
        return Err(std::io::Error::last_os_error());
    }
    // The filter works: an empty range (nothing open up there) now fails.
    // SAFETY: close_range on descriptors no process can have open.
    let result = unsafe { libc::syscall(libc::SYS_close_range, u32::MAX, u32::MAX, 0) };
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ENOSYS) if result == -1 => Ok(()),
        // Between fork and exec nothing may allocate: an error without a
        // message. The spawn fails, and this line is where to look.
        _ => Err(std::io::ErrorKind::Unsupported.into()),
    }
}

/// On a kernel without `close_range` (a seccomp filter makes it fail as an
/// old kernel does), every inherited descriptor is still closed, even one
/// above the descriptor table size where a loop up to `getdtablesize()`
/// stops (a host that lowered its limit after opening it; the same gap as a
/// limit above the loop's cap of 65536, which this machine's hard limit
/// cannot reach).
#[cfg(target_os = "linux")]
#[test]
fn descriptors_of_the_host_do_not_leak_without_close_range() {
    let sb = Sandbox::new();
    let marker = sb.root().join("marker");
    let leaked = std::fs::File::create(&marker).unwrap();
    let fd = leaked.as_raw_fd();
    const HIGH: i32 = 3_000;
    let mut command = sb.cli(&["--json", "ensure"]);
    // SAFETY: between fork and exec only system calls: dup2, fcntl,
    // setrlimit, and the seccomp filter's prctl and close_range probe.
    unsafe {
        command.pre_exec(move || {
            deny_close_range()?;
            // dup2 leaves the copy inheritable, as a careless host would.
            if libc::dup2(fd, HIGH) == -1 || libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Lowering the soft limit below an open descriptor is allowed.
            limit.rlim_cur = 1024;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = pid_of(&serde_json::from_slice(&out.stdout).unwrap());
    let fds: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), target)
        })
        .collect();
    assert!(
        !fds.iter()
            .any(|(n, t)| t.contains("marker") || n == &HIGH.to_string()),
        "leaked: {fds:?}"
    );
    assert!(
        fds.iter().any(|(_, t)| t.ends_with("instance.lock")),
        "keeps the lock: {fds:?}"
    );
    sb.ok(&["stop"]);
}

/// A kit service on our TCP port, started for another state dir: a
/// conflict, left alone, when it runs another program; ours when it runs
/// the configured one (started where the default state dir differed), so
/// `status` reports it and `stop` ends it.
#[test]
fn a_kit_service_on_the_port_for_another_state_dir_is_ours_only_if_it_runs_our_program() {
    let port = free_port();
    let sb = Sandbox::new().with("endpoint", tcp(port));

    // Another program that embeds the kit: the reference service under
    // another name.
    let other = Sandbox::new();
    let renamed = other.root().join("other-grpc-server");
    std::fs::hard_link(reference_service(), &renamed)
        .or_else(|_| std::fs::copy(reference_service(), &renamed).map(drop))
        .unwrap();
    let other = other
        .with("program", path_str(&renamed))
        .with("endpoint", tcp(port));
    let theirs = pid_of(&other.ensure());
    let status = sb.status();
    assert_eq!(status["state"], "conflict", "{status}");
    let detail = status["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("other-grpc-server") && detail.contains("not the configured program"),
        "{detail}"
    );
    let stop = sb.run(&["stop"]);
    assert_eq!(stop.status.code(), Some(1), "{}", stderr(&stop));
    let ensure = sb.run(&["--json", "ensure"]);
    assert_eq!(ensure.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&ensure.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "EndpointConflict", "{error}");
    assert!(alive(theirs), "left alone");
    assert_eq!(other.pids(), vec![theirs]);
    assert!(sb.pids().is_empty());
    other.ok(&["stop"]);

    // The configured program, for another state dir.
    let first = Sandbox::new().with("endpoint", tcp(port));
    let pid = pid_of(&first.ensure());
    let status = sb.status();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(pid_of(&status), pid);
    let detail = status["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("another state dir"), "{detail}");
    assert_eq!(sb.ok(&["stop"]).trim(), "stopped");
    assert!(wait_for(Duration::from_secs(10), || !alive(pid)));
}
