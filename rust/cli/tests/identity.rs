//! The service's identity (version) and what it inherits from its spawner.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

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
        stderr(&out).contains("restarted but reports version 2.0.0"),
        "{}",
        stderr(&out)
    );
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
