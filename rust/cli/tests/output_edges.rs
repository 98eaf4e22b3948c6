//! The edges of where output goes, each against the real binaries: stdout
//! into a closed pipe, stderr on a terminal (the progress spinner), huge,
//! unwritable, shared or symlinked logs, a strict umask and a state dir
//! without owner access.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// The generous bound for "soon": far above what any of this takes.
const SOON: Duration = Duration::from_secs(20);

/// A close-on-exec pipe: (read end, write end). Only the write end reaches
/// a child (as its stdout), so the reader's going is seen there.
fn pipe() -> (OwnedFd, OwnedFd) {
    use std::os::fd::AsRawFd;
    // Not pipe2: macOS lacks it, and these tests must type-check there.
    let (reader, writer) = nix::unistd::pipe().unwrap();
    for fd in [&reader, &writer] {
        // SAFETY: fcntl on a descriptor we own; no other thread forks here.
        let set = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        assert_ne!(set, -1);
    }
    (reader, writer)
}

/// Wait for `child` to exit within `SOON`; kill it and fail otherwise.
fn exits_soon(child: &mut Child, what: &str) -> std::process::ExitStatus {
    if wait_for(SOON, || child.try_wait().unwrap().is_some()) {
        return child.wait().unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{what} did not exit within {SOON:?}");
}

// `status | true` panicked with "failed printing to stdout".
#[test]
fn status_and_doctor_into_a_closed_pipe_exit_quietly_with_their_code() {
    let sb = Sandbox::new();
    let (reader, writer) = pipe();
    drop(reader);
    let out = sb
        .cli(&["status"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(stderr(&out), "", "a closed pipe is no error to report");
    assert_eq!(
        out.status.code(),
        Some(3),
        "not running, and no panic (101): {:?}",
        out.status
    );
    // The same for every printing command; `logs` has a line to print.
    std::fs::create_dir_all(sb.log_dir()).unwrap();
    std::fs::write(sb.log_file(), "a line\n").unwrap();
    for args in [
        &["config"][..],
        &["--json", "status"],
        &["logs"],
        &["doctor"],
        &["--json", "doctor"],
    ] {
        let (reader, writer) = pipe();
        drop(reader);
        let out = sb
            .cli(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(101), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
    // `doctor`'s code is its verdict, read or not.
    let sick = Sandbox::new().with("program", "spfs-no-such-service");
    let read = sick.cli(&["doctor"]).output().unwrap();
    assert_eq!(read.status.code(), Some(1), "the program is missing");
    for args in [&["doctor"][..], &["--json", "doctor"]] {
        let (reader, writer) = pipe();
        drop(reader);
        let unread = sick.cli(args).stdout(Stdio::from(writer)).output().unwrap();
        assert_eq!(unread.status.code(), Some(1), "{args:?} unread");
    }
}

/// `cmd` with its stdout closed, as a host that closed its own descriptor 1
/// starts it: the first file the process opens would get number 1.
fn with_stdout_closed(mut cmd: Command) -> Command {
    // SAFETY: `close` is async-signal-safe, and runs in the forked child
    // alone, on a number it then no longer uses.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    cmd
}

// The CLI enters at C's `main`, past std's wrapper, which opens /dev/null
// on a closed standard descriptor: the CLI must do that itself.
#[test]
fn with_stdout_closed_ensure_and_status_print_into_no_file_of_theirs() {
    let sb = Sandbox::new();
    // A cold start (locks, the log, the record), the quick look of a
    // serving kit, and a status over gRPC.
    for args in [&["ensure"][..], &["ensure"], &["status"]] {
        let out = with_stdout_closed(sb.cli(args))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}: printing went nowhere, quietly");
    }
    assert_eq!(sb.pids().len(), 1, "one service");
    for dir in [sb.state_dir(), sb.log_dir()] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read(&path).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&text).contains("state      running"),
                "the status went into {}",
                path.display()
            );
        }
    }
    assert_eq!(sb.ok(&["stop"]).trim(), "stopped");
}

// `logs -f | head -1` and `watch | head -1` ran until killed.
#[test]
fn logs_follow_and_watch_exit_once_their_reader_is_gone() {
    let sb = Sandbox::new();
    sb.ensure();
    for args in [&["logs", "-f", "-n", "1"][..], &["watch"]] {
        let (reader, writer) = pipe();
        let mut child = sb
            .cli(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Like `head -1`: read one line, then go.
        let mut first = String::new();
        BufReader::new(std::fs::File::from(reader))
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty(), "{args:?} printed a first line");
        let status = exits_soon(&mut child, &format!("{args:?} after its reader left"));
        assert!(status.success(), "{args:?}: {status:?}");
    }
    // A reader that leaves while lines keep coming: the next write fails.
    let (reader, writer) = pipe();
    let mut child = sb
        .cli(&["logs", "-f", "-n", "1"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(std::fs::File::from(reader));
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    drop(reader);
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(sb.log_dir().join("service.log"))
        .unwrap();
    writeln!(log, "one more line").unwrap();
    assert!(exits_soon(&mut child, "logs -f with more lines").success());
    sb.ok(&["stop"]);
}

// Under umask 0177/0277/0777 the state dir was created 0600/0500/0000.
#[test]
fn strict_umask_still_makes_a_private_usable_state_dir_and_socket() {
    for umask in [0o177, 0o277, 0o777] {
        let sb = Sandbox::new();
        let mut command = sb.cli(&["--json", "ensure"]);
        // SAFETY: umask is async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                libc::umask(umask);
                Ok(())
            });
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "umask {umask:o}: {}", stderr(&out));
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sb.state_dir()), 0o700, "umask {umask:o}: state dir");
        assert_eq!(mode(&sb.log_dir()), 0o700, "umask {umask:o}: log dir");
        assert_eq!(
            mode(&sb.state_dir().join("service.sock")),
            0o600,
            "umask {umask:o}: socket"
        );
        for file in ["spawn.lock", "instance.lock", "service.json"] {
            assert_eq!(
                mode(&sb.state_dir().join(file)),
                0o600,
                "umask {umask:o}: {file}"
            );
        }
        assert_eq!(
            mode(&sb.log_dir().join("service.log")),
            0o600,
            "umask {umask:o}: log"
        );
        // Later calls under an ordinary umask find it all usable.
        assert_eq!(sb.status()["state"], "running", "umask {umask:o}");
        assert_eq!(sb.ok(&["stop"]).trim(), "stopped", "umask {umask:o}");
    }
}

// A state dir left unusable by an older version
// (mode 0500 or 0000) is refused with the fix, not trusted.
#[test]
fn state_dir_without_owner_access_is_refused_with_the_fix() {
    for mode in [0o500, 0o000] {
        let sb = Sandbox::new();
        std::fs::create_dir(sb.state_dir()).unwrap();
        std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(mode)).unwrap();
        let out = sb.run(&["ensure"]);
        assert_eq!(out.status.code(), Some(1), "mode {mode:o}");
        assert!(
            stderr(&out).contains("chmod 700"),
            "mode {mode:o}: {}",
            stderr(&out)
        );
        std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}

/// `command` with every file it (and what it starts) writes limited to
/// `limit` bytes, and SIGXFSZ ignored, so a write past it fails with EFBIG
/// as it would with ENOSPC on a full disk.
fn with_file_size_limit(command: Command, limit: libc::rlim_t) -> Command {
    with_file_size_limit_and(command, limit, libc::SIG_IGN)
}

/// `command` under RLIMIT_FSIZE `limit`, with SIGXFSZ's action `xfsz`.
fn with_file_size_limit_and(
    mut command: Command,
    limit: libc::rlim_t,
    xfsz: libc::sighandler_t,
) -> Command {
    // SAFETY: setrlimit and signal are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &rl);
            libc::signal(libc::SIGXFSZ, xfsz);
            Ok(())
        });
    }
    command
}

/// A real `ulimit -f` below the log's size, the signal at its default (as
/// a shell leaves it): the CLI is not killed writing the run's header (it
/// ignores SIGXFSZ and reports the failed write), and the service, which
/// has the default action, dies at its first log line: the error names the
/// signal and the limit.
#[test]
fn a_file_size_limit_is_named_not_a_silent_death() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.log_dir()).unwrap();
    let filler = "x".repeat(8191) + "\n";
    std::fs::write(sb.log_dir().join("service.log"), &filler).unwrap();
    let limit = filler.len() as libc::rlim_t;
    let out = with_file_size_limit_and(sb.cli(&["ensure"]), limit, libc::SIG_DFL)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("SIGXFSZ"), "{err}");
    assert!(err.contains("ulimit -f"), "{err}");
    assert!(err.contains("could not be written"), "{err}");
    assert!(err.contains("raise the limit"), "{err}");
    assert!(sb.pids().is_empty());
}

// With its log unwritable (a full disk) the reference service
// panicked and the spawner said "the service wrote nothing to its log".
// Simulated with RLIMIT_FSIZE at the log's current size (SIGXFSZ ignored, so
// a write past it fails with EFBIG as it would with ENOSPC on a full disk);
// the pid record and the locks stay far below the limit.
#[test]
fn unwritable_log_is_reported_and_the_service_keeps_running() {
    let mut sb = Sandbox::new();
    // The spawner gives the service default signal actions (SIGXFSZ would
    // kill it at the limit, which a full disk does not do): it ignores
    // SIGXFSZ itself, through a wrapper.
    let wrapper = sb.root().join("ignore-xfsz.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ntrap '' XFSZ\nexec '{}' \"$@\"\n",
            reference_service().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    sb.set("program", path_str(&wrapper));
    std::fs::create_dir_all(sb.log_dir()).unwrap();
    let filler = "x".repeat(8191) + "\n";
    std::fs::write(sb.log_dir().join("service.log"), &filler).unwrap();
    let limit = filler.len() as libc::rlim_t;
    let out = with_file_size_limit(sb.cli(&["--json", "ensure"]), limit)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["state"], "running");
    let warnings = status["warnings"].to_string();
    assert!(
        warnings.contains("could not be written") && warnings.contains("service.log"),
        "{warnings}"
    );
    let pid = pid_of(&status);
    // It keeps running and serving although each of its log lines fails.
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(pid));
    assert_eq!(sb.status()["state"], "running");
    assert_eq!(
        std::fs::read_to_string(sb.log_dir().join("service.log")).unwrap(),
        filler,
        "nothing could be written"
    );
    sb.ok(&["stop"]);
    // And a failed start says why its log is empty.
    let mut command = sb.cli(&["ensure"]);
    command.env("SPFS_AUTOSTART_PROGRAM", "/bin/false");
    let out = with_file_size_limit(command, limit).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("could not be written"), "{err}");
    assert!(!err.contains("wrote nothing"), "{err}");
}

/// Two state dirs, one log dir (an explicit `state_dir`): the second start
/// does not rotate the log the first service still writes, and says so.
#[test]
fn a_start_does_not_rotate_a_log_another_running_service_writes() {
    let mut sb = Sandbox::new().with("log_max_bytes", 1);
    let first = pid_of(&sb.ensure());
    let other = sb.root().join("other-state");
    sb.set("state_dir", path_str(&other));
    let out = sb.run(&["--json", "ensure"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let second = pid_of(&status);
    assert_ne!(first, second);
    let warnings = status["warnings"].to_string();
    assert!(warnings.contains("writes its log"), "{warnings}");
    let log = sb.log_dir().join("service.log");
    for pid in [first, second] {
        let out = std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap();
        assert_eq!(out, log, "pid {pid} writes {}", out.display());
    }
    assert!(!sb.log_dir().join("service.log.1").exists());
    sb.ok(&["stop"]);
    sb.reset_config();
    sb.set("log_max_bytes", 1);
    sb.ok(&["stop"]);
    // Alone again, the next start rotates as before.
    sb.ensure();
    assert!(sb.log_dir().join("service.log.1").exists());
    sb.ok(&["stop"]);
}

// `logs -n 100000000` on a 300 MB log took 1.1 GiB. Here a 48 MiB
// log: the peak RSS of the `logs` process must stay far below its size.
#[test]
fn logs_with_a_huge_count_streams_in_bounded_memory() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.log_dir()).unwrap();
    let path = sb.log_dir().join("service.log");
    {
        let mut log = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..800_000 {
            writeln!(log, "line {i:08} {}", "y".repeat(50)).unwrap();
        }
    }
    let size = std::fs::metadata(&path).unwrap().len();
    let out_path = sb.root().join("out");
    let status = sb
        .cli(&["logs", "-n", "100000000"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    // Every line, in order: what `tail` would print.
    assert_eq!(std::fs::metadata(&out_path).unwrap().len(), size);
    let printed = std::fs::read_to_string(&out_path).unwrap();
    assert!(printed.starts_with("line 00000000 "));
    assert!(printed.ends_with(&format!("line 00799999 {}\n", "y".repeat(50))));
    // SAFETY: getrusage fills the struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    // ru_maxrss is in KiB on Linux: the largest child this test waited for.
    let peak = usage.ru_maxrss as u64 * 1024;
    assert!(
        peak < size / 2,
        "peak RSS {peak} bytes for a {size}-byte log: not streamed"
    );
}

// A log dir others can write let them redirect the service's output;
// a symlinked log was followed.
#[test]
fn shared_log_dir_and_symlinked_log_are_refused() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.log_dir()).unwrap();
    std::fs::set_permissions(sb.log_dir(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // A dir everyone writes to (sticky, like /tmp): the fix is another
    // dir, never closing this one.
    assert!(
        err.contains("log dir") && err.contains("choose a log dir of your own"),
        "{err}"
    );
    assert!(!err.contains("chmod"), "{err}");
    assert!(sb.pids().is_empty());

    std::fs::set_permissions(sb.log_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = sb.root().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, sb.log_dir().join("service.log")).unwrap();
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(sb.pids().is_empty());
    // Nor is it read through the link (`logs` printed the file it points
    // at), also when it points at nothing ("no log yet" was wrong).
    let out = sb.run(&["logs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("precious"));
    std::fs::remove_file(&victim).unwrap();
    let out = sb.run(&["logs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
}

/// A log dir others may write is refused to a service (`ensure`) but read
/// by `logs` and `logs -f` alike: `logs -f` refused what `logs` printed.
#[test]
fn a_log_dir_others_may_write_is_read_by_logs_and_logs_follow_alike() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.log_dir()).unwrap();
    std::fs::set_permissions(sb.log_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(sb.log_file(), "an old line\n").unwrap();
    assert_eq!(sb.ok(&["logs"]), "an old line\n");
    let (reader, writer) = pipe();
    let mut child = sb
        .cli(&["logs", "-f", "-n", "1"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its first line, or its end (an error) with nothing.
    let mut first = String::new();
    BufReader::new(std::fs::File::from(reader))
        .read_line(&mut first)
        .unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(first, "an old line\n", "{}", stderr(&out));
    // A service is still not started there.
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(sb.pids().is_empty());
}

/// A log its user cannot read (written by a service once started with
/// sudo, so root's): `logs` and `logs -f` say how to make it readable, not
/// only "permission denied".
#[test]
fn a_log_left_by_sudo_is_said_to_need_its_owner_changed() {
    use std::os::unix::process::CommandExt;
    let uid = second_user();
    let sb = Sandbox::new();
    std::fs::set_permissions(sb.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The user's own dirs; the log in them root's and private.
    let home = sb.root().join("their-home");
    let logs = home.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for dir in [&home, &logs] {
        std::os::unix::fs::chown(dir, Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let log = logs.join("service.log");
    std::fs::write(&log, "root's line\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    for args in [&["logs"][..], &["logs", "-f"]] {
        let mut command = std::process::Command::new(spfs_autostart_test_support::cli());
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .env("SPFS_AUTOSTART_STATE_DIR", home.join("state"))
            .env("SPFS_AUTOSTART_LOG_DIR", &logs)
            .args(args)
            .uid(uid)
            .gid(uid)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let status = exits_soon(&mut child, &format!("{args:?} of an unreadable log"));
        assert_eq!(status.code(), Some(1), "{args:?}");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(err.contains(&log.display().to_string()), "{args:?}: {err}");
        assert!(
            err.contains(
                "make it readable by you (a service once started with sudo leaves a \
                          log that is root's: chown it)"
            ),
            "{args:?}: {err}"
        );
    }
}

/// A FIFO where the log should be blocked `ensure` in its open, where no
/// signal could end it, and `logs` likewise: both refuse it at once.
#[test]
fn a_fifo_in_place_of_the_log_is_refused_without_waiting() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.log_dir()).unwrap();
    std::fs::set_permissions(sb.log_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    nix::unistd::mkfifo(
        &sb.log_file(),
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .unwrap();
    for command in [&["ensure"][..], &["logs"], &["logs", "-f"]] {
        let mut child = sb
            .cli(command)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = exits_soon(&mut child, &format!("{command:?} with a FIFO log"));
        assert_eq!(status.code(), Some(1), "{command:?}");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(err.contains("not a regular file"), "{command:?}: {err}");
    }
    assert!(sb.pids().is_empty());
}

/// Start `command` with its stderr on a pseudo-terminal (stdout piped):
/// the child, and the terminal's side to read what it writes there
/// (without blocking).
fn spawn_on_a_terminal(mut command: Command) -> (Child, std::fs::File) {
    use std::os::fd::AsRawFd;
    let pty = nix::pty::openpty(None, None).unwrap();
    // SAFETY: fcntl on a descriptor we own.
    let nonblocking =
        unsafe { libc::fcntl(pty.master.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    assert_ne!(nonblocking, -1);
    // The slave goes into the command, which closes it when dropped.
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::from(pty.slave))
        .spawn()
        .unwrap();
    (child, std::fs::File::from(pty.master))
}

/// Append what the terminal holds now to `terminal`.
fn read_terminal(master: &mut std::fs::File, terminal: &mut Vec<u8>) {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = master.read(&mut buf) {
        terminal.extend_from_slice(&buf[..n]);
    }
}

/// Run `command` with its stderr on a pseudo-terminal; its output and what
/// it wrote to the terminal.
fn with_stderr_on_a_terminal(command: Command) -> (std::process::Output, String) {
    let (child, mut master) = spawn_on_a_terminal(command);
    let out = child.wait_with_output().unwrap();
    // Everything the CLI wrote is in the terminal's buffer by now.
    let mut terminal = Vec::new();
    read_terminal(&mut master, &mut terminal);
    (out, String::from_utf8_lossy(&terminal).into_owned())
}

/// The spinner frames `terminal` shows that contain `what`.
fn frames<'a>(terminal: &'a str, what: &str) -> Vec<&'a str> {
    terminal
        .split('\r')
        .filter(|line| line.contains(what) && line.contains("... "))
        .collect()
}

/// A start slower than half a second shows a spinner with what it does
/// (starting the program, as this pid) and the elapsed time when stderr is
/// a terminal, and clears its line once the service answers; stdout (a
/// pipe here) gets the status alone.
#[test]
fn a_slow_start_shows_progress_on_a_terminal_and_clears_it() {
    let sb = Sandbox::new().with("args", vec!["--start-delay-ms", "1500"]);
    let mut command = sb.cli(&["ensure"]);
    command.env("TERM", "xterm");
    let (out, terminal) = with_stderr_on_a_terminal(command);
    assert!(out.status.success(), "{}", sb.log());
    let pid = pid_of(&serde_json::from_str(&sb.ok(&["--json", "status"])).unwrap());
    let starting = format!(" starting {} (pid {pid})", reference_service().display());
    let frames = frames(&terminal, &starting);
    assert!(
        frames.len() >= 2,
        "expected spinner frames {starting:?} on the terminal, got {terminal:?}"
    );
    // Each frame ends with the elapsed seconds, and clears what a longer
    // frame before it left: "... 0.6s\x1b[K".
    let elapsed = frames[0]
        .rsplit("... ")
        .next()
        .unwrap()
        .trim_end_matches("\x1b[K");
    assert!(
        elapsed.ends_with('s') && elapsed.trim_end_matches('s').parse::<f64>().is_ok(),
        "no elapsed time in {:?}",
        frames[0]
    );
    assert!(
        terminal.ends_with("\r\x1b[2K"),
        "the spinner's line is not cleared at the end: {terminal:?}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("running") && !stdout.contains("starting"),
        "{stdout}"
    );
}

/// A wait for a service that does not answer (suspended here) says so on
/// the terminal, naming its pid: it is not a start.
#[test]
fn a_wait_for_a_service_that_does_not_answer_shows_what_it_waits_for() {
    let sb = Sandbox::new();
    let pid = pid_of(&sb.ensure());
    signal(pid, nix::sys::signal::Signal::SIGSTOP);
    let mut command = sb.cli(&["ensure", "--timeout", "3"]);
    command.env("TERM", "xterm");
    let (out, terminal) = with_stderr_on_a_terminal(command);
    signal(pid, nix::sys::signal::Signal::SIGCONT);
    assert_eq!(out.status.code(), Some(1), "{terminal:?}");
    let waiting = format!(" waiting for the service (pid {pid}) to answer");
    assert!(
        !frames(&terminal, &waiting).is_empty(),
        "expected {waiting:?} on the terminal, got {terminal:?}"
    );
    assert!(
        frames(&terminal, " starting ").is_empty(),
        "nothing was started: {terminal:?}"
    );
    sb.ok(&["stop"]);
}

/// Ctrl-C on a `stop` whose service is still shutting down clears the
/// spinner's line and says what is left and how to finish: the service,
/// by pid, may still be stopping; `stop` again. It exits 130.
#[test]
fn an_interrupted_stop_clears_its_line_and_says_the_service_may_still_be_stopping() {
    let port = free_port();
    // A wrapper that outlives SIGINT: the service under it ends, and the
    // wrapper (the session's leader, whose pid the record holds) waits on,
    // so the stop waits out its timeout with the spinner on.
    let mut sb = Sandbox::new()
        .with("endpoint", tcp(port))
        .with("stop_sequence", vec!["SIGINT"])
        .with("stop_timeout_secs", 60);
    use_script(
        &mut sb,
        "deaf-wrapper.sh",
        &format!(
            "trap '' INT\n{} --plain --listen {}\nexec sleep 600\n",
            reference_service().display(),
            listen(port)
        ),
    );
    sb.set("args", Vec::<String>::new());
    let pid = pid_of(&sb.ensure());
    let mut command = sb.cli(&["stop"]);
    command.env("TERM", "xterm");
    let (child, mut master) = spawn_on_a_terminal(command);
    let stopping = format!("stopping the service (pid {pid})");
    let mut terminal = Vec::new();
    let spinning = wait_for(SOON, || {
        read_terminal(&mut master, &mut terminal);
        String::from_utf8_lossy(&terminal).contains(&stopping)
    });
    assert!(spinning, "{:?}", String::from_utf8_lossy(&terminal));
    signal(child.id(), nix::sys::signal::Signal::SIGINT);
    let out = child.wait_with_output().unwrap();
    read_terminal(&mut master, &mut terminal);
    let terminal = String::from_utf8_lossy(&terminal);
    assert_eq!(out.status.code(), Some(130), "{terminal:?}");
    let note = as_run(
        &sb,
        &format!(
            "\r\x1b[2Kinterrupted: the service (pid {pid}) may still be stopping after \
             SIGINT; `spfs-autostart stop` finishes the stop\r\n"
        ),
    );
    assert!(terminal.ends_with(&note), "{terminal:?}");
    assert!(alive(pid));
    sb.set("stop_sequence", vec!["SIGKILL"]);
    sb.ok(&["stop"]);
    assert!(sb.pids().is_empty());
}

/// A `stop` that waits for another process's start to end says so on the
/// terminal: it is not stopping anything yet.
#[test]
fn a_stop_behind_another_start_shows_what_it_waits_for() {
    let sb = Sandbox::new()
        .with("args", vec!["--hang"])
        .with("ready_timeout_secs", 1);
    let spawner = background(&sb, &["ensure", "--timeout", "20"]);
    assert!(wait_for(SOON, || !sb.pids().is_empty()), "started");
    let mut command = sb.cli(&["stop", "--timeout", "1"]);
    command.env("TERM", "xterm");
    let (out, terminal) = with_stderr_on_a_terminal(command);
    assert_eq!(out.status.code(), Some(1), "{terminal:?}");
    let waiting = " waiting for another process to finish starting or stopping the service";
    assert!(
        !frames(&terminal, waiting).is_empty(),
        "expected {waiting:?} on the terminal, got {terminal:?}"
    );
    // Every frame says it: none says "stopping the service".
    assert_eq!(
        frames(&terminal, "").len(),
        frames(&terminal, waiting).len(),
        "{terminal:?}"
    );
    signal(spawner.id(), nix::sys::signal::Signal::SIGINT);
    spawner.wait_with_output().unwrap();
    assert!(wait_for(SOON, || sb.pids().is_empty()));
}

// `logs` printed nothing and exited 0 when the service had never written a
// log, the same as for an empty log; `logs -f` waited without a word.
#[test]
fn logs_say_on_stderr_when_there_is_no_log_yet() {
    let sb = Sandbox::new();
    let out = sb.run(&["logs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let note = format!("no log yet at {}", sb.log_file().display());
    assert!(stderr(&out).contains(&note), "{}", stderr(&out));
    // JSON output keeps stderr for errors.
    let out = sb.run(&["--json", "logs"]);
    assert!(out.status.success());
    assert_eq!(stderr(&out), "");
    // Once there is a log, no note.
    std::fs::create_dir_all(sb.log_dir()).unwrap();
    std::fs::write(sb.log_file(), "").unwrap();
    assert_eq!(stderr(&sb.run(&["logs"])), "");
    // A log removed from its dir is not one the service never wrote.
    std::fs::remove_file(sb.log_file()).unwrap();
    let out = sb.run(&["logs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "no log at {}: it was removed, or none was written since its dir was made\n",
            sb.log_file().display()
        )
    );
    // A log dir a start would refuse: that is why none comes, and it is said.
    std::fs::set_permissions(sb.log_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = stderr(&sb.run(&["logs"]));
    assert!(
        err.contains("a start would not use this log dir") && err.contains("chmod go-w"),
        "{err}"
    );
}

#[test]
fn verbose_output_into_a_pipe_has_no_colour_codes() {
    let sb = Sandbox::new();
    let out = sb.run(&["-v", "ensure"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("DEBUG"), "-v logs what it does: {err}");
    assert!(!err.contains('\x1b'), "{err:?}");
    sb.ok(&["stop"]);
}

/// Output that cannot be written is a failure for `agent print` too: a
/// plist redirected into a file on a full disk exited 0 with nothing
/// written.
#[test]
fn agent_print_into_a_full_disk_fails_saying_so() {
    let sb = Sandbox::new();
    for args in [
        &["agent", "print"][..],
        &["agent", "print", "--format", "systemd"],
        &["--json", "agent", "print"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = sb.cli(args).stdout(full).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("cannot write to stdout"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// A terminal that takes no escape sequences (`TERM=dumb`), or a user who
/// asked for no colour (`NO_COLOR`), gets none: not the spinner's line
/// clearing, not `-v`'s colours.
#[test]
fn no_escape_sequences_for_a_dumb_terminal_or_no_color() {
    let sb = Sandbox::new().with("args", vec!["--start-delay-ms", "1500"]);
    for (name, value) in [("TERM", "dumb"), ("NO_COLOR", "1")] {
        let mut command = sb.cli(&["-v", "ensure"]);
        command.env("TERM", "xterm").env(name, value);
        let (out, terminal) = with_stderr_on_a_terminal(command);
        assert!(out.status.success(), "{}", sb.log());
        assert!(terminal.contains("DEBUG"), "{name}={value}: {terminal:?}");
        let escapes = if name == "TERM" {
            assert!(
                frames(&terminal, " starting ").is_empty(),
                "no spinner: {terminal:?}"
            );
            terminal.clone()
        } else {
            // NO_COLOR is about colour: the spinner still clears what a
            // frame leaves, and its line at the end.
            assert!(!frames(&terminal, " starting ").is_empty(), "{terminal:?}");
            terminal.trim_end_matches("\r\x1b[2K").replace("\x1b[K", "")
        };
        assert!(
            !escapes.contains("\x1b["),
            "{name}={value}: escape sequences on the terminal: {terminal:?}"
        );
        sb.ok(&["stop"]);
    }
}

/// A watch whose every look fails (here: a directory where `instance.lock`
/// belongs) says so once and looks again every 2 s. Each failed look used
/// to wake the next at once (the look's own file events), a core spinning
/// for as long as the fault lasted.
#[test]
fn a_watch_that_cannot_look_retries_calmly() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.state_dir().join("instance.lock")).unwrap();
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    // A record, which each look reads first (a file event of its own).
    std::fs::write(sb.state_dir().join("service.json"), "{}").unwrap();
    let watch = VerboseWatch::start(&sb);
    // Counted from its first look (a loaded machine may take a while to
    // get there): 3 s more.
    let looked = || watch.said().contains("watch: cannot open lock file");
    assert!(wait_for(Duration::from_secs(20), looked), "no look");
    // Reads of the record (as every look of its own, or another's, makes)
    // change nothing there, and wake nothing.
    let record = sb.state_dir().join("service.json");
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < until {
        std::fs::read(&record).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = watch.stop();
    // The error printed once, and one log line per look: every 2 s, not
    // at every read of the record (which also made its own looks pairs).
    assert_eq!(err.matches("error: ").count(), 1, "{err}");
    let looks = err.matches("watch: cannot open lock file").count();
    assert!(
        (1..=3).contains(&looks),
        "{looks} looks in about 3 s: {err}"
    );
}

/// `watch -v` of `sb`, its stderr (a debug line per look) collected as it
/// comes.
struct VerboseWatch {
    child: Child,
    said: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl VerboseWatch {
    fn start(sb: &Sandbox) -> VerboseWatch {
        let mut child = sb
            .cli(&["-v", "watch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let reader = {
            let said = said.clone();
            let mut stderr = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stderr.read(&mut buf) {
                    said.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
        };
        VerboseWatch {
            child,
            said,
            reader,
        }
    }

    /// What it has said so far.
    fn said(&self) -> String {
        self.said.lock().unwrap().clone()
    }

    /// End it; all it said.
    fn stop(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.reader.join().unwrap();
        self.said.lock().unwrap().clone()
    }
}

// Each look probes instance.lock; the probe opened it for writing, and its
// close woke every watch of the state dir, whose looks woke the others: two
// watches of a stopped service (the app's and a terminal's) looked
// thousands of times a second.
#[test]
fn watches_of_a_stopped_service_wake_neither_each_other_nor_at_others_looks() {
    let sb = Sandbox::new();
    sb.ensure();
    assert_eq!(sb.ok(&["stop"]).trim(), "stopped");
    assert!(sb.state_dir().join("instance.lock").is_file());
    let watches: Vec<VerboseWatch> = (0..3).map(|_| VerboseWatch::start(&sb)).collect();
    let no_service = "no service";
    for watch in &watches {
        let looked = || watch.said().contains(no_service);
        assert!(wait_for(Duration::from_secs(20), looked), "no look");
    }
    // Others' looks, as the shells' and the app's.
    for _ in 0..5 {
        assert_eq!(sb.cli(&["status"]).output().unwrap().status.code(), Some(3));
    }
    std::thread::sleep(Duration::from_secs(3));
    for watch in watches {
        let said = watch.stop();
        let looks = said.matches(no_service).count();
        // One at the start, then one every 2 s (with room for a slow start).
        assert!((1..=4).contains(&looks), "{looks} looks in about 3 s");
    }
}

/// A watch that cannot watch the state dir (here: too few descriptors for
/// inotify) polls it every 2 s. Its closed event channel used to answer
/// every wait at once: a core spinning all along.
#[test]
fn a_watch_without_a_file_watch_polls_calmly() {
    let sb = Sandbox::new();
    let mut command = sb.cli(&["-v", "watch"]);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe, and nothing else runs in the
    // child between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 10,
                rlim_max: 10,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut watch = command.spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    watch.kill().unwrap();
    let output = watch.wait_with_output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(out.starts_with("stopped"), "{out}{err}");
    assert!(err.contains("falling back to polling"), "{err}");
    let looks = err.matches("service.sock: no service").count();
    assert!((1..=4).contains(&looks), "{looks} looks in 3 s: {err}");
}

/// `logs -f` says a read that fails on stderr and follows on, as `tail -F`
/// does: a log replaced by a link for a while, then a real log again.
#[test]
fn logs_follow_says_a_failed_read_and_goes_on() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.log_dir()).unwrap();
    let log = sb.log_dir().join("service.log");
    std::fs::write(&log, "first\n").unwrap();
    let mut follower = sb
        .cli(&["logs", "-f", "-n", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for (name, pipe) in [
        (
            "out",
            Box::new(follower.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        ),
        ("err", Box::new(follower.stderr.take().unwrap())),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send((name, line));
            }
        });
    }
    let next = |want: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(said) if said.1.contains(want) => return said,
                Ok(_) => {}
                Err(_) => panic!("no line with {want:?} within 10 s"),
            }
        }
    };
    assert_eq!(next("first").0, "out");
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &log).unwrap();
    let (from, said) = next("symbolic link");
    assert_eq!(from, "err", "{said}");
    std::fs::remove_file(&log).unwrap();
    std::fs::write(&log, "after\n").unwrap();
    assert_eq!(next("after").0, "out");
    assert!(matches!(follower.try_wait(), Ok(None)), "still following");
    follower.kill().unwrap();
    follower.wait().unwrap();
}
