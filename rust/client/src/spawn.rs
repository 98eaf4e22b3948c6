//! Starting the service process and waiting until it serves.
//!
//! The child is detached (`setsid`, stdin `/dev/null`, output appended to the
//! log, working directory `/`) and inherits exactly two descriptors besides
//! 0-2: the write end of the readiness pipe and the locked `instance.lock`,
//! so the lock lives exactly as long as the service, whoever started it. It
//! is started by a double fork (see [`Child`]): nobody's child once ready,
//! so a long-lived host neither collects zombies nor reaps our service.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::config::{Config, env};
use crate::error::{Error, ErrorKind, LogExcerpt, Result};
use crate::lock::Backoff;
use crate::logs;
use crate::record::{Phase, ServiceRecord, unix_ms};
use crate::rpc::{self, Probe};
use crate::sys::{self, Instance};
use crate::{Paths, ResolvedEndpoint};

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

/// A started service, not yet known to be ready.
///
/// The service is started by a double fork: our direct child (the
/// *intermediate*) forks the service, reports its pid through a pipe, and
/// waits for it, so that during startup the service's pid stays pinned and
/// its exit status reaches us at once. [`Child::release`] (after readiness)
/// ends the intermediate: the service is then nobody's child, so a host
/// that reaps every child (`while (wait(NULL) > 0)`) never collects it.
/// Dropping a `Child` that was not released (a failed, timed-out or
/// cancelled start) kills the service's whole session first.
#[derive(Debug)]
pub struct Child {
    /// The service's pid.
    pub pid: u32,
    /// The service process, exactly (pid and start time).
    pub instance: Option<Instance>,
    intermediate: Option<std::process::Child>,
    status: tokio::net::unix::pipe::Receiver,
    status_buf: Vec<u8>,
    ready: tokio::net::unix::pipe::Receiver,
    ready_buf: Vec<u8>,
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
    let pipe_error = |e: std::io::Error| {
        Error::new(ErrorKind::SpawnFailed, format!("cannot create a pipe: {e}"))
    };
    // Every descriptor the child keeps is moved above 2 first: in a host
    // that closed its standard descriptors they could be 0-2, and the
    // child's stdio redirections would replace them.
    let (ready_rx, ready_tx) = readiness_pipe().map_err(|e| pipe_error(e.into()))?;
    let ready_tx = sys::above_stdio(ready_tx).map_err(pipe_error)?;
    let (status_rx, status_tx) = readiness_pipe().map_err(|e| pipe_error(e.into()))?;
    let status_tx = sys::above_stdio(status_tx).map_err(pipe_error)?;
    let instance_lock = File::from(sys::above_stdio(instance_lock.into()).map_err(|e| {
        Error::new(
            ErrorKind::SpawnFailed,
            format!("cannot move the lock descriptor: {e}"),
        )
    })?);
    let ready_fd = ready_tx.as_raw_fd();
    let lock_fd = instance_lock.as_raw_fd();
    let status_fd = status_tx.as_raw_fd();
    let endpoint = paths.endpoint(&config.endpoint);
    // Where the fallback loop (no close_range) stops: the descriptor table
    // size, capped. Open descriptors at or above it (a host that lowered its
    // limit after opening them, or a huge limit) are listed now, as the
    // child may not allocate.
    // SAFETY: getdtablesize only reads a limit.
    let loop_end = unsafe { libc::getdtablesize() }.clamp(3, FALLBACK_FD_LIMIT);
    let high_fds = open_descriptors_above(loop_end);
    // Tests simulate a kernel without close_range (the fallback must still
    // close everything); read now, as the child may not touch the
    // environment.
    let use_close_range = std::env::var_os(NO_CLOSE_RANGE_VAR).is_none();

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
    // SAFETY: between fork and exec the closure makes only async-signal-safe
    // system calls (fork, setsid, fcntl, close, write, waitpid, _exit) and
    // reads memory allocated before the fork.
    unsafe {
        command.pre_exec(move || {
            match libc::fork() {
                -1 => Err(std::io::Error::last_os_error()),
                0 => {
                    // The service: a new session (its pid is its group id),
                    // only the readiness pipe and the lock kept.
                    nix::unistd::setsid()?;
                    close_on_exec_from(3, loop_end, &high_fds, use_close_range);
                    keep_across_exec(ready_fd)?;
                    keep_across_exec(lock_fd)?;
                    Ok(())
                }
                service => run_intermediate(service, status_fd, loop_end, &high_fds),
            }
        });
    }
    let intermediate = command.spawn().map_err(|e| {
        Error::new(
            ErrorKind::SpawnFailed,
            format!("cannot start {}: {e}", program.display()),
        )
    })?;
    // Our copies go now: the pipes report EOF when their writers exit, and
    // the lock is the child's alone.
    drop(ready_tx);
    drop(status_tx);
    drop(instance_lock);
    let mut status_rx = File::from(status_rx);
    let mut pid_bytes = [0u8; 4];
    // The intermediate wrote the pid before the service could exec, and the
    // spawn returned only after the exec: this read does not block.
    use std::io::Read;
    if let Err(e) = status_rx.read_exact(&mut pid_bytes) {
        let mut intermediate = intermediate;
        let _ = intermediate.kill();
        let _ = intermediate.wait();
        return Err(Error::new(
            ErrorKind::SpawnFailed,
            format!("cannot learn the pid of {}: {e}", program.display()),
        ));
    }
    let pid = i32::from_ne_bytes(pid_bytes) as u32;
    // Exact: the intermediate has not reaped the service, so the pid is
    // still the service's, alive or a zombie.
    let instance = sys::process_start_time(pid).map(|start_time| Instance { pid, start_time });
    let to_async = |fd: std::os::fd::OwnedFd, what: &str| {
        tokio::net::unix::pipe::Receiver::from_owned_fd(fd).map_err(|e| {
            Error::new(
                ErrorKind::SpawnFailed,
                format!("cannot watch the {what} pipe: {e}"),
            )
        })
    };
    let child = Child {
        pid,
        instance,
        intermediate: Some(intermediate),
        status: to_async(status_rx.into(), "exit status")?,
        status_buf: Vec::new(),
        ready: to_async(ready_rx, "readiness")?,
        ready_buf: Vec::new(),
        log_file: log_path,
        log_start,
        log_unwritable,
    };
    let record = ServiceRecord {
        pid,
        start_time: instance.map(|i| i.start_time),
        program: program.display().to_string(),
        version: None,
        endpoint: endpoint.to_string(),
        started_at_unix_ms: unix_ms(SystemTime::now()),
        phase: Phase::Starting,
    };
    // Never over a record the service already wrote itself.
    if let Err(e) = record.write_new(&paths.record()) {
        tracing::warn!("{e}");
    }
    Ok(child)
}

/// The intermediate process, between fork and exec: report the service's
/// pid, close every other descriptor (the exec-error pipe of our parent
/// among them, so its `spawn` returns once the service has exec'd), wait
/// for the service and report how it ended, then exit. Only
/// async-signal-safe calls.
fn run_intermediate(
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

/// What the readiness pipe said.
enum Signal {
    Ready,
    Failed(String),
}

/// A complete readiness line in `buf`, if one has arrived. The buffer
/// lives in the [`Child`], so a message written in parts (or a read
/// interrupted by another branch of the wait) loses nothing.
fn parse_signal(buf: &[u8]) -> Option<Signal> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let line = String::from_utf8_lossy(&buf[..end]).into_owned();
    Some(match line.split_once(' ') {
        Some(("FAILED", reason)) => Signal::Failed(reason.to_string()),
        _ if line.starts_with("READY") => Signal::Ready,
        _ => Signal::Failed(format!("unexpected readiness message {line:?}")),
    })
}

/// Read once from `pipe` into `buf`; `false` at end of file (or error).
/// Cancellation-safe: a dropped read has consumed nothing.
async fn read_some(pipe: &mut tokio::net::unix::pipe::Receiver, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 256];
    match pipe.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

impl Child {
    /// Wait until the child serves at `endpoint`, at most until `deadline`:
    /// woken by its readiness message (kit services) or found by polling
    /// with backoff (plain ones). If it exits first, fail at once with its
    /// status and log, unless it exited 0 and a process it left behind (a
    /// daemonizing service) still holds `lock`: then keep polling. At the
    /// deadline, kill it and fail with `ReadyTimeout`. On failure no process
    /// of ours is left behind; on success call [`Child::release`].
    pub async fn wait_ready(
        &mut self,
        endpoint: &ResolvedEndpoint,
        lock: &Path,
        deadline: Instant,
        probe_timeout: Duration,
    ) -> Result<Probe> {
        let started = Instant::now();
        let mut pipe_open = true;
        let mut status_open = true;
        let mut daemonized = false;
        let mut backoff = Backoff::new(Duration::from_millis(50));
        loop {
            tokio::select! {
                biased;
                open = read_some(&mut self.status, &mut self.status_buf), if status_open => {
                    status_open = open;
                    if self.status_buf.len() >= 4 {
                        let raw = i32::from_ne_bytes(self.status_buf[..4].try_into().expect("4 bytes"));
                        let status = ExitStatus::from_raw(raw);
                        self.reap_intermediate();
                        if status.success() && crate::lock::is_held(lock).unwrap_or(false) {
                            tracing::debug!("the service's first process exited 0; polling for its daemon");
                            daemonized = true;
                            status_open = false;
                        } else {
                            return Err(self.fail(self.exited_error(Some(status))));
                        }
                    } else if !open {
                        return Err(self.fail(self.exited_error(None)));
                    }
                }
                open = read_some(&mut self.ready, &mut self.ready_buf), if pipe_open => {
                    match parse_signal(&self.ready_buf) {
                        Some(Signal::Ready) => {
                            self.ready_buf.clear();
                            let probe = rpc::probe(endpoint, true, probe_timeout).await;
                            if matches!(probe, Probe::Kit(..) | Probe::Plain(_)) {
                                return Ok(probe);
                            }
                            pipe_open = false;
                        }
                        Some(Signal::Failed(reason)) => {
                            let err = Error::new(
                                ErrorKind::ExitedDuringStartup,
                                format!("the service (pid {}) failed to start: {reason}", self.pid),
                            );
                            return Err(self.fail(err));
                        }
                        // Closed without a word: the child is exiting (its
                        // status arrives next) or is a plain service that
                        // closed it.
                        None if !open => pipe_open = false,
                        None => {}
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    let err = Error::new(
                        ErrorKind::ReadyTimeout,
                        format!(
                            "the service (pid {}) did not become ready within {:.1}s and was killed; \
                             see its log, or raise ready_timeout_secs if it is just slow",
                            self.pid,
                            (deadline - started).as_secs_f64()
                        ),
                    );
                    return Err(self.fail(err));
                }
                () = backoff.wait(deadline) => {
                    let probe = rpc::probe(endpoint, true, probe_timeout).await;
                    if matches!(probe, Probe::Kit(..) | Probe::Plain(_)) {
                        return Ok(probe);
                    }
                    if daemonized && !crate::lock::is_held(lock).unwrap_or(false) {
                        let err = self.exited_error(Some(ExitStatus::from_raw(0)));
                        return Err(self.fail(err));
                    }
                }
            }
        }
    }

    /// The service is ready: end the intermediate, so the service is
    /// reparented away from us, and keep it running when `self` drops.
    pub fn release(mut self) {
        if let Some(mut intermediate) = self.intermediate.take() {
            // Still our unreaped child: its pid is exact.
            let _ = intermediate.kill();
            let _ = intermediate.wait();
        }
        self.instance = None;
        self.pid = 0;
    }

    fn reap_intermediate(&mut self) {
        if let Some(mut intermediate) = self.intermediate.take() {
            let _ = intermediate.wait();
        }
    }

    /// Kill what we started, then attach the log to `err`.
    fn fail(&mut self, err: Error) -> Error {
        self.kill();
        self.with_log(err)
    }

    /// Kill the service's whole session, then the intermediate. While the
    /// intermediate has not reaped the service, the service's pid (and so
    /// its group id) cannot have been reused.
    fn kill(&mut self) {
        if self.pid == 0 {
            return;
        }
        let service = nix::unistd::Pid::from_raw(self.pid as i32);
        let pinned = match self.intermediate.as_mut() {
            Some(intermediate) => matches!(intermediate.try_wait(), Ok(None)),
            None => false,
        };
        let alive = self.instance.is_some_and(|i| i.is_alive());
        if pinned || alive {
            let _ = nix::sys::signal::killpg(service, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::signal::kill(service, nix::sys::signal::Signal::SIGKILL);
        }
        // Killed too, so reaping it never waits for a service stuck in the
        // kernel (a hung mount) to die.
        if let Some(intermediate) = self.intermediate.as_mut() {
            let _ = intermediate.kill();
        }
        self.reap_intermediate();
        self.pid = 0;
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
        Error::new(
            ErrorKind::ExitedDuringStartup,
            format!(
                "the service (pid {}) {how} before it became ready; its log says why",
                self.pid
            ),
        )
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

impl Drop for Child {
    /// A start that was abandoned (an error, a timeout, a cancelled
    /// `ensure`) leaves nothing running.
    fn drop(&mut self) {
        self.kill();
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

/// Set (to anything) to make the spawner act as on a kernel without
/// `close_range`: for the tests of the fallback only.
pub const NO_CLOSE_RANGE_VAR: &str = "SPFS_AUTOSTART_TEST_NO_CLOSE_RANGE";

/// The most descriptors the fallback loops (no `close_range`) cover one by
/// one; open ones above are listed before the fork.
const FALLBACK_FD_LIMIT: RawFd = 65_536;

/// The open descriptors of this process numbered `limit` or more (from
/// `/dev/fd`, which Linux and macOS both provide). The directory's own
/// descriptor is listed too; it is closed by then, and closing or marking
/// a closed descriptor just fails.
fn open_descriptors_above(limit: RawFd) -> Vec<RawFd> {
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
fn close_on_exec_from(first: RawFd, loop_end: RawFd, high_fds: &[RawFd], use_close_range: bool) {
    #[cfg(not(target_os = "linux"))]
    let _ = use_close_range;
    #[cfg(target_os = "linux")]
    {
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        // SAFETY: close_range with CLOEXEC only changes descriptor flags.
        let done = use_close_range
            && unsafe {
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
        // SAFETY: fcntl on a descriptor number; a closed one just fails.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// Close every descriptor from 3 up except `keep` (between fork and exec).
fn close_all_but(keep: RawFd, loop_end: RawFd, high_fds: &[RawFd]) {
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

fn keep_across_exec(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor we own; async-signal-safe.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
