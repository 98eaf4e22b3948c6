//! The CLI against the stand-in in upstream mode (`spfs-reference-service
//! --plain service MOUNTPOINT`), which behaves as the spfs-fuse-macos SPFS
//! users run (docs/upstream.md): it learns its address only from
//! `--listen` or `SPFS_MACFUSE_LISTEN_ADDRESS`, `Shutdown` only unmounts,
//! SIGINT is its one graceful signal, and it logs in colour unless `NO_COLOR`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use spfs_autostart::proto::vfs::{
    MountRequest, UnmountRequest, vfs_service_client::VfsServiceClient,
};
use spfs_autostart_test_support::{Reaped, mount_marker};

/// A sandbox whose service is the stand-in in upstream mode on a free
/// loopback port, mounting at `<sandbox>/mnt`.
struct Upstream {
    sb: Sandbox,
    port: u16,
    mnt: PathBuf,
}

impl Upstream {
    fn new() -> Upstream {
        let mut sb = Sandbox::new();
        let port = free_port();
        let mnt = sb.root().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        sb.set(
            "args",
            vec!["--plain".into(), "service".into(), path_str(&mnt)],
        )
        .set("endpoint", tcp(port));
        Upstream { sb, port, mnt }
    }

    /// The service mounts, then waits a minute before it listens, as
    /// spfs-fuse-macos does while macFUSE mounts (here, for long enough
    /// that only what the test does ends it).
    fn mount_then_wait_to_listen(&mut self) {
        self.sb.set(
            "args",
            vec![
                "--plain".into(),
                "--listen-delay-ms".into(),
                "60000".into(),
                "service".into(),
                path_str(&self.mnt),
            ],
        );
    }

    fn mounted(&self) -> bool {
        mount_marker(&self.mnt).exists()
    }

    /// Call the service's `VfsService` as spfs does, over a new connection.
    fn vfs<T>(
        &self,
        call: impl AsyncFnOnce(VfsServiceClient<spfs_autostart::tonic::transport::Channel>) -> T,
    ) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let channel = spfs_autostart::tonic::transport::Endpoint::from_shared(format!(
                    "http://127.0.0.1:{}",
                    self.port
                ))
                .expect("an http URI")
                .connect()
                .await
                .expect("connect to the service");
                call(VfsServiceClient::new(channel)).await
            })
    }
}

#[test]
fn ensure_reaches_a_plain_service_with_the_endpoint_only_in_the_config() {
    let up = Upstream::new();
    let status = up.sb.ensure();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["managed"], false);
    assert_eq!(status["endpoint"], format!("tcp://127.0.0.1:{}", up.port));
    assert_eq!(up.sb.pids().len(), 1);
    assert!(up.mounted(), "the service started and mounted");
    assert!(
        up.sb
            .log()
            .contains(&format!("Service started listen=127.0.0.1:{}", up.port)),
        "the service listens where the config says: {}",
        up.sb.log()
    );
    // The second ensure finds it: no second spawn.
    assert_eq!(up.sb.ensure()["state"], "running");
    assert_eq!(up.sb.spawn_count(), 1);
}

#[test]
fn logs_of_a_plain_service_show_no_escape_codes() {
    let up = Upstream::new();
    up.sb.ensure();
    assert!(
        !up.sb.log().contains('\x1b'),
        "the service got NO_COLOR=1: {:?}",
        up.sb.log()
    );
    let shown = up.sb.ok(&["logs", "-n", "20"]);
    assert!(shown.contains("Service started"), "{shown}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
}

#[test]
fn the_plain_services_own_log_lines_carry_timestamps() {
    // spfs logs to stderr without times unless SPFS_LOG_TIMESTAMP is set,
    // and a service that runs for weeks needs them in its log.
    let up = Upstream::new();
    up.sb.ensure();
    let log = up.sb.log();
    let line = log
        .lines()
        .find(|l| l.contains("Service started"))
        .unwrap_or_else(|| panic!("{log}"));
    let first = line.split_whitespace().next().unwrap_or_default();
    assert!(
        first.starts_with("20") && first.contains('T'),
        "the line starts with an RFC 3339 time: {line:?}"
    );
}

/// The stand-in under upstream's file name, so that the client knows its
/// arguments say where it mounts. It never mounts for real (a marker file
/// stands for its mount), so nothing is mounted at its mountpoint.
fn named_as_upstream(up: &mut Upstream) {
    let bin = up.sb.root().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let program = bin.join("spfs-fuse-macos");
    std::os::unix::fs::symlink(spfs_autostart_test_support::reference_service(), &program).unwrap();
    up.sb.set("program", path_str(&program));
}

/// Upstream logs a failed FUSE mount and serves on: "running" alone would
/// hide that `/spfs` is empty. `ensure` and `status` say so; a mountpoint
/// with a filesystem on it (here `/proc`) is no warning.
#[test]
fn a_service_serving_without_its_mount_is_a_warning_of_ensure_and_status() {
    let mut up = Upstream::new();
    named_as_upstream(&mut up);
    let unmounted = format!("nothing is mounted at {}", up.mnt.display());
    let said = |status: &serde_json::Value| {
        status["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(&unmounted))
    };
    let started = up.sb.ensure();
    assert_eq!(started["state"], "running", "{started}");
    assert!(said(&started), "{started}");
    assert!(said(&up.sb.status()), "{}", up.sb.status());
    let shown = up.sb.ok(&["status"]);
    assert!(shown.contains(&unmounted), "{shown}");
    up.sb.ok(&["stop"]);
    up.sb.set("args", vec!["--plain", "service", "/proc"]);
    let started = up.sb.ensure();
    assert_eq!(started["state"], "running", "{started}");
    let mounted = |status: &serde_json::Value| {
        !status["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("nothing is mounted"))
    };
    assert!(mounted(&started), "{started}");
    assert!(mounted(&up.sb.status()), "{}", up.sb.status());
    // A mountpoint that does not exist (macOS: /spfs not made through
    // /etc/synthetic.conf) is said so.
    up.sb.ok(&["stop"]);
    let missing = up.sb.root().join("missing");
    up.sb.set(
        "args",
        vec!["--plain".into(), "service".into(), path_str(&missing)],
    );
    let started = up.sb.ensure();
    let said = format!(
        "{} does not exist, so nothing is mounted there",
        missing.display()
    );
    assert!(started.to_string().contains(&said), "{started}");
}

#[test]
fn logs_strip_colour_the_user_asked_the_service_for() {
    // The user's [env] may turn colour back on; the log then holds escape
    // codes, and `logs` still shows plain text.
    let mut up = Upstream::new();
    up.sb.set_env("NO_COLOR", "");
    up.sb.ensure();
    assert!(up.sb.log().contains("\x1b["), "{:?}", up.sb.log());
    let shown = up.sb.ok(&["logs", "-n", "20"]);
    assert!(shown.contains("Service started"), "{shown}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
    let json = up.sb.ok(&["--json", "logs", "-n", "20"]);
    assert!(!json.contains("\\u001b"), "{json}");
}

#[test]
fn status_json_lists_a_mount_made_through_mount_and_drops_it_after_unmount() {
    let up = Upstream::new();
    up.sb.ensure();
    // A live root process: the service cleans up a mount whose root exits.
    let pid = std::process::id();
    assert_eq!(up.sb.status()["mounts"], serde_json::json!([]));
    up.vfs(async |mut vfs| {
        vfs.mount(MountRequest {
            root_pid: pid,
            env_spec: "platform/base+tools".into(),
            editable: true,
            runtime_name: format!("rt-{pid}"),
            repositories: vec!["origin".into()],
        })
        .await
        .expect("mount")
    });
    let status = up.sb.status();
    assert_eq!(
        status["mounts"],
        serde_json::json!([{
            "runtime_name": format!("rt-{pid}"),
            "root_pid": pid,
            "editable": true,
            "env_spec": "platform/base+tools",
        }]),
        "{status}"
    );
    let text = up.sb.ok(&["status"]);
    assert!(
        text.contains(&format!("pid {pid} rt-{pid} editable platform/base+tools")),
        "{text}"
    );
    let was_mounted = up.vfs(async |mut vfs| {
        vfs.unmount(UnmountRequest { root_pid: pid })
            .await
            .expect("unmount")
            .into_inner()
            .was_mounted
    });
    assert!(was_mounted);
    assert_eq!(up.sb.status()["mounts"], serde_json::json!([]));
    assert!(!up.sb.ok(&["status"]).contains("mounts"));
}

/// A mount whose root process exited is gone from the status, as upstream
/// cleans it up.
#[test]
fn a_mount_whose_root_process_exited_is_not_listed() {
    let up = Upstream::new();
    up.sb.ensure();
    let mut root = Sleeper::start();
    let pid = root.pid();
    up.vfs(async |mut vfs| {
        vfs.mount(MountRequest {
            root_pid: pid,
            env_spec: "-".into(),
            ..Default::default()
        })
        .await
        .expect("mount")
    });
    assert_eq!(
        up.sb.status()["mounts"][0]["root_pid"],
        pid,
        "listed while it lives"
    );
    root.end();
    assert_eq!(up.sb.status()["mounts"], serde_json::json!([]));
}

#[test]
fn a_service_without_vfs_status_shows_no_mounts_and_no_error() {
    // spk's main: only Mount and Shutdown.
    let mut up = Upstream::new();
    let args = vec![
        "--plain".into(),
        "--main-proto".into(),
        "service".into(),
        path_str(&up.mnt),
    ];
    up.sb.set("args", args);
    up.sb.ensure();
    up.vfs(async |mut vfs| {
        vfs.mount(MountRequest {
            root_pid: 4242,
            env_spec: "-".into(),
            ..Default::default()
        })
        .await
        .expect("main has Mount")
    });
    let out = up.sb.run(&["--json", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["state"], "running");
    assert_eq!(status["mounts"], serde_json::json!([]));
    let warnings = status["warnings"].to_string();
    assert!(
        !warnings.contains("mounted"),
        "no Status is no news: {warnings}"
    );
}

/// A service whose `Status` hangs (as on a hung mount) is running, but not
/// "running with nothing mounted": a warning says its mounts are not known.
#[test]
fn a_service_whose_status_hangs_is_said_not_to_have_told_its_mounts() {
    let mut up = Upstream::new();
    let args = vec![
        "--plain".into(),
        "--slow-status-ms".into(),
        "5000".into(),
        "service".into(),
        path_str(&up.mnt),
    ];
    up.sb.set("args", args);
    up.sb.ensure();
    let out = up.sb.run(&["--json", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["state"], "running");
    let warnings = status["warnings"].to_string();
    assert!(
        warnings.contains("did not say what it has mounted"),
        "{warnings}"
    );
}

#[test]
fn stop_ends_the_upstream_service_gracefully_without_waiting_out_stop_timeout() {
    // Shutdown only unmounts; SIGINT then ends it cleanly. With the old
    // sequence this took the whole stop_timeout and SIGTERM left the mount.
    let mut up = Upstream::new();
    up.sb.set("stop_timeout_secs", 20);
    let pid = pid_of(&up.sb.ensure());
    assert!(up.mounted());
    let started = std::time::Instant::now();
    assert_eq!(up.sb.ok(&["stop"]).trim(), "stopped");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "stop waited {took:?}: it sat out a 20 s step"
    );
    assert!(!alive(pid));
    assert!(!up.mounted(), "no unclean-exit trace: the mount is gone");
    assert!(up.sb.log().contains("Service stopped"), "{}", up.sb.log());
    assert_eq!(up.sb.status()["state"], "stopped");
}

/// A suspended service (Ctrl-Z in the terminal that started it, a debugger)
/// would hold SIGINT pending until the SIGKILL, which leaves the mount:
/// `stop` wakes it, so it unmounts and exits on SIGINT.
#[test]
fn a_suspended_service_is_woken_to_stop_gracefully() {
    use nix::sys::signal::{Signal, kill};
    let mut up = Upstream::new();
    up.sb.set("stop_timeout_secs", 20);
    let pid = pid_of(&up.sb.ensure());
    assert!(up.mounted());
    kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    assert_eq!(up.sb.ok(&["stop"]).trim(), "stopped", "not killed");
    assert!(!alive(pid));
    assert!(!up.mounted(), "no unclean-exit trace: the mount is gone");
    assert!(up.sb.log().contains("Service stopped"), "{}", up.sb.log());
}

/// A service that does not answer because it is suspended says so, in
/// `status` and in the error of `ensure`, with what resumes it.
#[test]
fn a_suspended_service_reads_unresponsive_and_says_why() {
    use nix::sys::signal::{Signal, kill};
    let mut up = Upstream::new();
    let pid = pid_of(&up.sb.ensure());
    up.sb.set("ready_timeout_secs", 1);
    kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    let status = up.sb.status();
    assert_eq!(status["state"], "unresponsive", "{status}");
    let detail = status["detail"].as_str().unwrap();
    assert!(
        detail.contains("suspended") && detail.contains("SIGCONT"),
        "{detail}"
    );
    let out = up.sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("(pid {pid})")) && err.contains("suspended"),
        "{err}"
    );
    // Resumed, it answers again and is no longer called suspended.
    kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGCONT).unwrap();
    let status = up.sb.ensure();
    assert_eq!(status["state"], "running", "{status}");
    assert!(status["detail"].is_null(), "{status}");
}

/// The stand-in started as upstream spfs starts it (setsid, null stdio, no
/// lock, no record), on `up`'s port and mountpoint, once it has mounted;
/// killed on drop.
fn started_by_spfs(up: &Upstream) -> Reaped {
    use std::os::unix::process::CommandExt;
    let mut command = up.sb.command(reference_service());
    command
        .args(["--plain", "service", "--listen"])
        .arg(format!("127.0.0.1:{}", up.port))
        .arg(&up.mnt)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe; nothing else runs before exec.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(Into::into));
    }
    let outside = Reaped(command.spawn().unwrap());
    assert!(wait_for(Duration::from_secs(20), || up.mounted()));
    outside
}

#[test]
fn a_service_spfs_started_is_reported_used_and_stopped_gracefully() {
    let mut up = Upstream::new();
    up.sb.set("stop_timeout_secs", 20);
    let mut outside = started_by_spfs(&up);
    let pid = outside.0.id();
    assert!(wait_for(Duration::from_secs(20), || {
        up.sb.status()["state"] == "running"
    }));
    let status = up.sb.status();
    assert_eq!(pid_of(&status), pid, "reported with its pid");
    // spfs gave it no stderr: our log holds none of its lines.
    let detail = status["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!(
            "its output is not in {}",
            up.sb.log_file().display()
        )),
        "{status}"
    );
    assert_eq!(pid_of(&up.sb.ensure()), pid, "ensure uses it");
    assert_eq!(up.sb.spawn_count(), 0, "no second spawn");
    let out = up.sb.run(&["-v", "stop"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "stopped",
        "{}",
        stderr(&out)
    );
    // spfs never reaps it (nor does this test until the end): its zombie is
    // no process left behind in its group to end.
    let said = stderr(&out);
    assert!(
        !said.contains("left running in its process group"),
        "{said}"
    );
    assert!(wait_for(Duration::from_secs(20), || {
        matches!(outside.0.try_wait(), Ok(Some(_)))
    }));
    assert!(!up.mounted(), "stopped gracefully: unmounted");
}

/// A watch (the menu's) says so when `/spfs` stops being mounted under a
/// service that runs on (`Shutdown`, `umount`): the warning is news.
#[test]
fn a_watch_reports_the_mount_going_away_under_a_running_service() {
    let mut up = Upstream::new();
    named_as_upstream(&mut up);
    // The mountpoint, a link: first to /proc, a filesystem of its own.
    let link = up.sb.root().join("spfs");
    std::os::unix::fs::symlink("/proc", &link).unwrap();
    up.sb.set(
        "args",
        vec!["--plain".into(), "service".into(), path_str(&link)],
    );
    up.sb.ensure();
    let (mut watch, rx) = lines_of(
        up.sb
            .cli(&["--json", "watch"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let unmounted = format!("nothing is mounted at {}", link.display());
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a first status");
    assert!(first.contains("\"running\""), "{first}");
    assert!(!first.contains(&unmounted), "{first}");
    // Now the mountpoint is a plain directory: nothing mounted.
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&up.mnt, &link).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut said = false;
    while let Ok(line) =
        rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        if line.contains(&unmounted) {
            said = true;
            break;
        }
        seen.push(line);
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(said, "no update said it: {seen:?}");
}

/// A stop of spfs-fuse-macos asks it to unmount (`Shutdown`), then to exit
/// (SIGINT), which unmounts again and fails: its log's warning about that
/// is said to be expected, right before it.
#[test]
fn the_second_unmount_of_a_stop_is_said_to_be_expected_in_the_log() {
    let mut up = Upstream::new();
    named_as_upstream(&mut up);
    up.sb.ensure();
    assert_eq!(up.sb.ok(&["stop"]).trim(), "stopped");
    let log = up.sb.log();
    let note = log
        .find("a warning that unmounting it again failed is expected")
        .unwrap_or_else(|| panic!("{log}"));
    let warning = log
        .find("Failed to cleanly unmount")
        .unwrap_or_else(|| panic!("the stand-in warns as upstream does: {log}"));
    assert!(note < warning, "said before the warning: {log}");
    // Not before a signal that does not unmount again (SIGTERM), nor after
    // a `Shutdown` that failed (nothing was mounted: a missing mountpoint).
    for (sequence, mountpoint) in [
        (vec!["shutdown", "SIGTERM"], path_str(&up.mnt)),
        (
            vec!["shutdown", "SIGINT"],
            path_str(&up.sb.root().join("missing")),
        ),
    ] {
        std::fs::write(up.sb.log_file(), "").unwrap();
        up.sb.set("stop_sequence", sequence);
        up.sb
            .set("args", vec!["--plain".into(), "service".into(), mountpoint]);
        up.sb.ensure();
        assert!(up.sb.ok(&["stop"]).starts_with("stopped"));
        let log = up.sb.log();
        assert!(log.contains("stopping pid"), "{log}");
        assert!(!log.contains("is expected"), "{log}");
    }
}

/// A watch (the menu bar's, all day) asks a plain service twice a second;
/// one spfs started names itself nowhere, so whose it is takes a lookup
/// (macOS: an lsof run). It is looked up once while that process lives, not
/// on every look, and the watch still reports it by its pid.
#[test]
fn watching_a_service_spfs_started_looks_up_its_listener_once() {
    let up = Upstream::new();
    let outside = started_by_spfs(&up);
    let mut watch = up
        .sb
        .cli(&["-v", "watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Six looks or more (every 0.5 s).
    std::thread::sleep(Duration::from_secs(3));
    watch.kill().unwrap();
    let output = watch.wait_with_output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        out.starts_with(&format!("running pid={} ", outside.0.id())),
        "{out}"
    );
    // Each look logs what it found.
    let looks = err.matches(": serving, pid").count();
    let lookups = err.matches("looking up who listens").count();
    assert!(looks >= 4, "{looks} looks in 3 s: {err}");
    assert_eq!(lookups, 1, "{err}");
}

/// The same, wedged (here: suspended): it holds no lock and does not
/// answer, yet it is ours and runs the configured program, so it reads as
/// unresponsive with its pid and why, not as someone else's listener, and
/// `stop` ends it gracefully.
#[test]
fn a_wedged_service_spfs_started_reads_unresponsive_and_stop_ends_it() {
    use nix::sys::signal::{Signal, kill};
    let mut up = Upstream::new();
    up.sb
        .set("stop_timeout_secs", 20)
        .set("ready_timeout_secs", 1);
    let mut outside = started_by_spfs(&up);
    let pid = outside.0.id();
    assert!(wait_for(Duration::from_secs(20), || {
        up.sb.status()["state"] == "running"
    }));
    kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    let status = up.sb.status();
    assert_eq!(status["state"], "unresponsive", "{status}");
    assert_eq!(pid_of(&status), pid);
    let detail = status["detail"].as_str().unwrap();
    assert!(
        detail.contains("started outside") && detail.contains("suspended"),
        "{detail}"
    );
    let doctor = String::from_utf8_lossy(&up.sb.run(&["doctor"]).stdout).into_owned();
    assert!(
        doctor.contains(&format!("(pid {pid}) does not answer: started outside")),
        "{doctor}"
    );
    // The fix as this CLI's commands, in order.
    assert!(
        doctor.contains(&as_run(
            &up.sb,
            "         hint: run `spfs-autostart stop`\n         hint: run `spfs-autostart ensure`"
        )),
        "{doctor}"
    );
    let out = up.sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("has not answered") && !err.contains("not our service"),
        "{err}"
    );
    // Its output goes elsewhere: our log's earlier runs say nothing of it.
    assert!(!err.lines().any(|l| l.starts_with("log: ")), "{err}");
    assert_eq!(up.sb.spawn_count(), 0, "no second spawn");
    assert_eq!(up.sb.ok(&["stop"]).trim(), "stopped", "not killed");
    assert!(wait_for(Duration::from_secs(20), || {
        matches!(outside.0.try_wait(), Ok(Some(_)))
    }));
    assert!(!up.mounted(), "stopped gracefully: unmounted");
}

/// A service that does not answer in time (here it listens only after a
/// minute, mounting meanwhile) is ended: spfs-fuse-macos catches SIGINT only
/// once its mount is made, so it dies and its mount stays, and the error
/// says how to clear it. Nothing is left running.
#[test]
fn a_service_ended_before_it_listens_is_said_to_leave_its_mount() {
    let mut up = Upstream::new();
    named_as_upstream(&mut up);
    up.mount_then_wait_to_listen();
    up.sb.set("ready_timeout_secs", 1);
    let out = up.sb.run(&["--json", "ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "ReadyTimeout", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("umount {}", up.mnt.display())),
        "{message}"
    );
    assert!(
        up.mounted(),
        "as upstream, the mount stays:\n{}",
        up.sb.log()
    );
    assert!(up.sb.pids().is_empty());
}

/// `--listen` in `args` to another address than the endpoint: the service
/// would serve where `ensure` never looks. `ensure` refuses before it
/// starts anything, naming both, and `doctor` says so.
#[test]
fn a_listen_argument_that_contradicts_the_endpoint_is_refused_before_a_start() {
    let mut up = Upstream::new();
    let elsewhere = free_port();
    up.sb.set(
        "args",
        vec![
            "--plain".into(),
            "service".into(),
            format!("--listen={}", listen(elsewhere)),
            path_str(&up.mnt),
        ],
    );
    let out = up.sb.run(&["--json", "ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "InvalidConfig", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains(&listen(elsewhere)), "{message}");
    assert!(
        message.contains(&format!("tcp://127.0.0.1:{}", up.port)),
        "{message}"
    );
    assert_eq!(up.sb.spawn_count(), 0, "nothing was started");
    let doctor = up.sb.run(&["--json", "doctor"]);
    assert_eq!(doctor.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "args" && f["severity"] == "problem"),
        "{report}"
    );
    assert!(
        report["next"].as_str().unwrap().starts_with("fail"),
        "{report}"
    );
    // The same address is no contradiction.
    up.sb.set(
        "args",
        vec![
            "--plain".into(),
            "service".into(),
            "--listen".into(),
            listen(up.port),
            path_str(&up.mnt),
        ],
    );
    assert_eq!(up.sb.ensure()["state"], "running");
    up.sb.ok(&["stop"]);
}

/// Ctrl-C on an `ensure` whose service mounts and does not listen yet
/// (spfs-fuse-macos while macFUSE mounts): the service is ended, but it
/// catches SIGINT only once its mount is made, so the mount may stay; the
/// interruption says how to clear it, and nothing is left running.
#[test]
fn ctrl_c_while_the_service_mounts_ends_it_and_says_its_mount_may_be_left() {
    let mut up = Upstream::new();
    named_as_upstream(&mut up);
    up.mount_then_wait_to_listen();
    let ensure = background(&up.sb, &["ensure"]);
    assert!(
        wait_for(Duration::from_secs(20), || up.mounted()),
        "the service mounted: {}",
        up.sb.log()
    );
    signal(ensure.id(), nix::sys::signal::Signal::SIGINT);
    let out = ensure.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains(&format!("umount {}", up.mnt.display())),
        "{said}"
    );
    assert!(
        up.sb.log().contains("its start was abandoned"),
        "{}",
        up.sb.log()
    );
    assert!(
        wait_for(Duration::from_secs(5), || up.sb.pids().is_empty()),
        "left behind: {:?}",
        up.sb.pids()
    );
}

/// A service that is the init of its pid namespace (a container's
/// entrypoint) has pid 1 there and leads its session; a `stop` run in the
/// namespace must signal it, not its group: `killpg(1, ..)` is
/// `kill(-1, ..)`, every other process the caller may signal, which left
/// the service running (init is spared) and said "stopped". Once it exits,
/// the kernel ends the rest of its namespace, the `stop` too: that is the
/// namespace's end, not ours. Needs root (`unshare`, `nsenter`), as the
/// tests run.
#[test]
fn stopping_a_service_that_is_its_namespaces_init_signals_it_not_everyone() {
    use std::process::Stdio;
    let up = Upstream::new();
    // The namespace, with the service as its init (setsid: it leads its
    // session, as a container's init does); the sandbox's environment marks
    // it, so the sandbox ends it whatever the test found.
    let mut namespace = Reaped(
        up.sb
            .command("unshare")
            .args(["--pid", "--fork", "--mount-proc", "setsid"])
            .arg(reference_service())
            .args(["--plain", "service", "--listen"])
            .arg(format!("127.0.0.1:{}", up.port))
            .arg(&up.mnt)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare (util-linux)"),
    );
    assert!(wait_for(Duration::from_secs(20), || up.mounted()));
    // The init's pid here, to enter its namespace by.
    let children = format!("/proc/{0}/task/{0}/children", namespace.0.id());
    let init = std::fs::read_to_string(&children).unwrap();
    let init = init
        .split_whitespace()
        .next()
        .expect("the namespace's init");
    let stop = up
        .sb
        .command("nsenter")
        .args(["-t", init, "-p", "-m"])
        .arg(spfs_autostart_test_support::cli())
        .arg("--config")
        .arg(up.sb.config_file())
        .arg("stop")
        .output()
        .expect("nsenter (util-linux)");
    // Its graceful signal reached it: it unmounted and exited.
    assert!(
        wait_for(Duration::from_secs(20), || {
            matches!(namespace.0.try_wait(), Ok(Some(_)))
        }),
        "the service is still running; stop said {:?}: {}",
        stop.status,
        stderr(&stop)
    );
    assert!(!up.mounted(), "stopped gracefully: unmounted");
}

/// A stop whose client was killed midway (here while it waits for the
/// service's `Shutdown`, which makes spfs-fuse-macos unmount) leaves the
/// service serving: `status` says a stop began and did not finish, so a
/// "running" without its filesystem is not taken at its word.
#[test]
fn a_stop_whose_client_died_midway_is_a_warning() {
    let mut up = Upstream::new();
    // Its `Shutdown` answers only after 30 s: a stop waits in that step.
    up.sb
        .set(
            "args",
            vec![
                "--plain".into(),
                "--slow-calls-ms".into(),
                "30000".into(),
                "service".into(),
                path_str(&up.mnt),
            ],
        )
        .set("stop_timeout_secs", 60);
    let pid = pid_of(&up.sb.ensure());
    assert!(
        !up.sb.status()["warnings"]
            .to_string()
            .contains("did not finish")
    );
    // A stop, killed while it waits: the mark it set stays.
    let mut stop = background(&up.sb, &["stop"]);
    assert!(
        wait_for(Duration::from_secs(20), || up
            .sb
            .log()
            .contains("Shutdown requested")),
        "the stop asked: {}",
        up.sb.log()
    );
    assert!(up.sb.state_dir().join("stopping").exists(), "its mark");
    stop.kill().unwrap();
    stop.wait().unwrap();
    let status = up.sb.status();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(pid_of(&status), pid, "{status}");
    let warnings = status["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            "a stop of this service (pid {pid}) began and did not finish"
        )),
        "{status}"
    );
}
