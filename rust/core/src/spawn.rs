//! Starting the service process and waiting until it serves.
//!
//! The child is detached (`setsid`, stdin `/dev/null`, output appended to the
//! log, working directory `/`) and inherits exactly two descriptors besides
//! 0-2: the write end of the readiness pipe and the locked `instance.lock`,
//! so the lock lives exactly as long as the service, whoever started it. A
//! thread reaps the child, so a long-lived host never collects zombies, and
//! its exit status reaches the readiness wait at once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::config::{Config, env};
use crate::error::{Error, ErrorKind, LogExcerpt, Result};
use crate::lock::Backoff;
use crate::logs;
use crate::paths::{Paths, ResolvedEndpoint};
use crate::record::{Phase, ServiceRecord, process_start_time, unix_ms};
use crate::rpc::{self, Probe};

/// How many log lines a startup error carries.
const LOG_TAIL_LINES: usize = 20;

/// Find the program: an absolute path as is; a bare name next to the current
/// executable, then next to the library holding this code (an FFI host such
/// as Python loads it from elsewhere), then on `PATH`. `BinaryNotFound`
/// lists every place looked.
pub fn resolve_program(program: &str) -> Result<PathBuf> {
    let mut looked = Vec::new();
    let candidates: Vec<PathBuf> = if program.starts_with('/') {
        vec![PathBuf::from(program)]
    } else {
        let mut dirs = Vec::new();
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            dirs.push(dir);
        }
        for dir in library_dirs() {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path).filter(|d| d.is_absolute()));
        }
        dirs.into_iter().map(|d| d.join(program)).collect()
    };
    for candidate in candidates {
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
                return Ok(candidate);
            }
            Ok(meta) if meta.is_file() => {
                return Err(Error::new(
                    ErrorKind::SpawnFailed,
                    format!(
                        "service program {} is not executable; run `chmod +x {}` or set `program`",
                        candidate.display(),
                        candidate.display()
                    ),
                ));
            }
            _ => looked.push(candidate),
        }
    }
    let list: Vec<String> = looked
        .iter()
        .map(|p| format!("  {}", p.display()))
        .collect();
    Err(Error::new(
        ErrorKind::BinaryNotFound,
        format!(
            "service program {program:?} was not found; looked in:\n{}\n\
             install it, or set `program` in the config (or SPFS_AUTOSTART_PROGRAM) to its absolute path",
            list.join("\n")
        ),
    ))
}

/// The directory of the file that holds this code, as it was loaded and
/// with symbolic links resolved (a library linked beside generated
/// bindings): the shared library an FFI host loaded, or the executable.
/// Only an absolute name is trusted: a relative one would be resolved
/// against whatever the current directory is now.
fn library_dirs() -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: Dl_info is plain data; all-zero is a valid value to fill.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let here = library_dirs as fn() -> Vec<PathBuf> as *const libc::c_void;
    // SAFETY: dladdr only reads the address and writes `info`.
    if unsafe { libc::dladdr(here, &mut info) } == 0 || info.dli_fname.is_null() {
        return Vec::new();
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by the loader; it
    // lives while the object holding this function stays loaded.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    let loaded = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
    if !loaded.is_absolute() {
        return Vec::new();
    }
    let mut dirs: Vec<PathBuf> = loaded.parent().map(Path::to_path_buf).into_iter().collect();
    if let Some(real) = std::fs::canonicalize(&loaded)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        && !dirs.contains(&real)
    {
        dirs.push(real);
    }
    dirs
}

/// A started child, not yet known to be ready.
#[derive(Debug)]
pub struct Child {
    /// Its pid.
    pub pid: u32,
    exited: oneshot::Receiver<ExitStatus>,
    ready: tokio::net::unix::pipe::Receiver,
    log_file: PathBuf,
    log_start: u64,
    /// Why the log could not be written, when the run header failed (a
    /// full disk): then an empty log says nothing about the service.
    log_unwritable: Option<String>,
}

/// Start the service. `instance_lock` is the locked `instance.lock`, handed
/// to the child; our copy is closed when this returns.
pub fn start(config: &Config, paths: &Paths, program: &Path, instance_lock: File) -> Result<Child> {
    paths.create_log_dir()?;
    let log_path = paths.log_file();
    if let Err(e) = logs::rotate_if_needed(&log_path, config.log_max_bytes, config.log_keep) {
        tracing::warn!("cannot rotate {}: {e}", log_path.display());
    }
    // Never through a symlink: whoever could plant one would choose the
    // file the service's output goes to.
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&log_path)
        .map_err(|e| {
            let symlink =
                std::fs::symlink_metadata(&log_path).is_ok_and(|m| m.file_type().is_symlink());
            Error::io("cannot open the service log", &log_path, e).with_hint(if symlink {
                "it is a symbolic link, which is never followed; remove it"
            } else {
                "make the log dir writable or choose another with SPFS_AUTOSTART_LOG_DIR"
            })
        })?;
    // Readable by its owner whatever the umask (a no-op when it already is).
    let _ = log.set_permissions(std::fs::Permissions::from_mode(0o600));
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    // One header per run: where a run starts, and how many spawns happened.
    let command_line: Vec<String> = std::iter::once(program.display().to_string())
        .chain(config.args.iter().cloned())
        .collect();
    // A header that cannot be written means the service's output is lost
    // too (a full disk): it still starts, and the caller is told.
    let log_unwritable = writeln!(
        log,
        "--- spfs-autostart: starting {} ---",
        command_line.join(" ")
    )
    .err()
    .map(|e| {
        tracing::warn!("cannot write {}: {e}", log_path.display());
        format!(
            "its log {} could not be written ({e}), so the service runs without one; \
             free space there or choose another log dir with SPFS_AUTOSTART_LOG_DIR",
            log_path.display()
        )
    });
    let stderr = log
        .try_clone()
        .map_err(|e| Error::io("cannot use the service log", &log_path, e))?;
    let (ready_rx, ready_tx) = readiness_pipe()
        .map_err(|e| Error::new(ErrorKind::SpawnFailed, format!("cannot create a pipe: {e}")))?;
    let ready_fd = ready_tx.as_raw_fd();
    let lock_fd = instance_lock.as_raw_fd();
    let endpoint = paths.endpoint(&config.endpoint);

    // We hold the instance lock, so a record left in the state dir is stale;
    // it goes now so nobody mistakes the new child for the old process.
    let _ = std::fs::remove_file(paths.record());

    let mut command = Command::new(program);
    command
        .args(&config.args)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(stderr))
        .envs(config.service_env())
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .env(env::READY_FD, ready_fd.to_string())
        .env(env::LOCK_FD, lock_fd.to_string())
        .env(env::STATE_DIR, &paths.state_dir)
        .env(env::ENDPOINT, endpoint.to_string())
        .env(
            env::IDLE_TIMEOUT_SECS,
            config.idle_timeout.as_secs().to_string(),
        );
    // SAFETY: the closure only makes async-signal-safe system calls.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid()?;
            close_on_exec_from(3);
            keep_across_exec(ready_fd)?;
            keep_across_exec(lock_fd)?;
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| {
        Error::new(
            ErrorKind::SpawnFailed,
            format!("cannot start {}: {e}", program.display()),
        )
    })?;
    // Our copies go now: the pipe reports EOF when the child exits, and the
    // lock is the child's alone.
    drop(ready_tx);
    drop(instance_lock);
    let pid = child.id();
    let record = ServiceRecord {
        pid,
        start_time: process_start_time(pid),
        program: program.display().to_string(),
        version: None,
        endpoint: endpoint.to_string(),
        started_at_unix_ms: unix_ms(SystemTime::now()),
        phase: Phase::Starting,
    };
    if let Err(e) = record.write(&paths.record()) {
        tracing::warn!("{e}");
    }
    let (exit_tx, exited) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("spfs-autostart-reap-{pid}"))
        .spawn(move || {
            let mut child = child;
            if let Ok(status) = child.wait() {
                let _ = exit_tx.send(status);
            }
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::SpawnFailed,
                format!("cannot start a reaper thread: {e}"),
            )
        })?;
    let ready = tokio::net::unix::pipe::Receiver::from_owned_fd(ready_rx).map_err(|e| {
        Error::new(
            ErrorKind::SpawnFailed,
            format!("cannot watch the readiness pipe: {e}"),
        )
    })?;
    Ok(Child {
        pid,
        exited,
        ready,
        log_file: log_path,
        log_start,
        log_unwritable,
    })
}

/// What the readiness pipe said.
enum Signal {
    Ready,
    Failed(String),
    Closed,
}

async fn read_signal(pipe: &mut tokio::net::unix::pipe::Receiver) -> Signal {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return Signal::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&buf[..end]).into_owned();
            return match line.split_once(' ') {
                Some(("FAILED", reason)) => Signal::Failed(reason.to_string()),
                _ if line.starts_with("READY") => Signal::Ready,
                _ => Signal::Failed(format!("unexpected readiness message {line:?}")),
            };
        }
    }
}

impl Child {
    /// Wait until the child serves at `endpoint`: woken by its readiness
    /// message (kit services) or found by polling with backoff (plain ones).
    /// If it exits first, fail at once with its status and log; at the
    /// deadline, kill it and fail with `ReadyTimeout`. Either way no process
    /// of ours is left behind.
    pub async fn wait_ready(
        mut self,
        endpoint: &ResolvedEndpoint,
        timeout: Duration,
        probe_timeout: Duration,
    ) -> Result<Probe> {
        let deadline = Instant::now() + timeout;
        let mut pipe_open = true;
        let mut backoff = Backoff::new(Duration::from_millis(50));
        loop {
            tokio::select! {
                biased;
                status = &mut self.exited => {
                    let status = status.ok();
                    return Err(self.exited_error(status));
                }
                signal = read_signal(&mut self.ready), if pipe_open => match signal {
                    Signal::Ready => {
                        let probe = rpc::probe(endpoint, true, probe_timeout).await;
                        if matches!(probe, Probe::Kit(..) | Probe::Plain(_)) {
                            return Ok(probe);
                        }
                        pipe_open = false;
                    }
                    Signal::Failed(reason) => {
                        let err = Error::new(
                            ErrorKind::ExitedDuringStartup,
                            format!("the service (pid {}) failed to start: {reason}", self.pid),
                        );
                        self.kill().await;
                        return Err(self.with_log(err));
                    }
                    // Closed without a word: the child is exiting (its status
                    // arrives next) or is a plain service that closed it.
                    Signal::Closed => pipe_open = false,
                },
                () = tokio::time::sleep_until(deadline) => {
                    self.kill().await;
                    let err = Error::new(
                        ErrorKind::ReadyTimeout,
                        format!(
                            "the service (pid {}) did not become ready within {:.1}s and was killed; \
                             see its log, or raise ready_timeout_secs if it is just slow",
                            self.pid,
                            timeout.as_secs_f64()
                        ),
                    );
                    return Err(self.with_log(err));
                }
                () = backoff.wait(deadline) => {
                    let probe = rpc::probe(endpoint, true, probe_timeout).await;
                    if matches!(probe, Probe::Kit(..) | Probe::Plain(_)) {
                        return Ok(probe);
                    }
                }
            }
        }
    }

    /// Kill the child's whole session (it is ours: it has not been reaped,
    /// so its pid cannot have been reused) and wait for the reaper.
    async fn kill(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.exited).await;
    }

    fn exited_error(&self, status: Option<ExitStatus>) -> Error {
        let how = match status {
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exited with status {code}"),
                (None, Some(sig)) => format!("was killed by signal {sig}"),
                _ => format!("ended ({s})"),
            },
            None => "ended".to_string(),
        };
        self.with_log(Error::new(
            ErrorKind::ExitedDuringStartup,
            format!(
                "the service (pid {}) {how} before it became ready; its log says why",
                self.pid
            ),
        ))
    }

    /// Why the log could not be written, if it could not: for the status
    /// of a service that started anyway.
    pub fn log_warning(&self) -> Option<String> {
        self.log_unwritable.clone()
    }

    /// `err` with this run's log lines, and why there are none when the log
    /// could not be written.
    fn with_log(&self, err: Error) -> Error {
        let err = match &self.log_unwritable {
            Some(note) => err.with_hint(note),
            None => err,
        };
        err.with_log(self.log_excerpt())
    }

    fn log_excerpt(&self) -> LogExcerpt {
        LogExcerpt {
            path: self.log_file.clone(),
            tail: logs::tail_since(&self.log_file, self.log_start, LOG_TAIL_LINES)
                .map(|t| t.lines)
                .unwrap_or_default(),
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
fn readiness_pipe() -> nix::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
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
fn readiness_pipe() -> nix::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    let (rx, tx) = nix::unistd::pipe()?;
    for fd in [rx.as_raw_fd(), tx.as_raw_fd()] {
        // SAFETY: fcntl on descriptors we own.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
            return Err(nix::errno::Errno::last());
        }
    }
    Ok((rx, tx))
}

/// Mark every descriptor from `first` up close-on-exec (between fork and
/// exec, so only async-signal-safe calls).
fn close_on_exec_from(first: RawFd) {
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
    // SAFETY: getdtablesize and fcntl are async-signal-safe.
    let max = unsafe { libc::getdtablesize() }.clamp(first, 65_536);
    for fd in first..max {
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

fn keep_across_exec(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor we own; async-signal-safe.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
