//! Starting the service process and waiting until it serves.
//!
//! The child is detached (`setsid`, stdin `/dev/null`, output appended to the
//! log, working directory `/`) and inherits exactly two descriptors besides
//! 0-2: the write end of the readiness pipe and the locked `instance.lock`,
//! so the lock lives exactly as long as the service, whoever started it. It
//! is started by a double fork (see [`Child`]): nobody's child once ready,
//! so a long-lived host neither collects zombies nor reaps our service.

mod end;
mod fork;
mod program;
mod run_log;
mod wait;

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::config::{Config, env};
use crate::error::{Error, ErrorKind, LogExcerpt, Result};
use crate::lock::Backoff;
use crate::logs;
use crate::record::{Phase, ServiceRecord, unix_ms};
use crate::remedy::Remedy;
use crate::rpc::{self, Probe};
use crate::sys::{self, Instance, ProcessHandle};
use crate::{Paths, ResolvedEndpoint};
// What the parts share; each part takes the parent's names with `use super::*`.
use end::KitDaemon;
pub use end::finish_abandoned_starts;
pub(crate) use end::still_held;
use fork::{
    FALLBACK_FD_LIMIT, close_on_exec_from, open_descriptors_above, readiness_pipe, run_intermediate,
};
pub(crate) use program::find_program;
pub(crate) use program::resolve_program;
use run_log::RunLog;

/// How many log lines a startup error carries.
const LOG_TAIL_LINES: usize = 20;

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
pub(crate) struct Child {
    /// The service's pid.
    pub pid: u32,
    /// The service process, exactly (pid and start time).
    pub instance: Option<Instance>,
    intermediate: Option<std::process::Child>,
    /// The only write end of the intermediate's lifeline: closed when we
    /// are gone, however we went, so the intermediate exits too.
    lifeline: OwnedFd,
    /// The signal that asks the service to end gracefully: the first of
    /// `stop_sequence` (SIGINT by default; the kit takes it too).
    end_signal: nix::sys::signal::Signal,
    /// `ready_timeout_secs`: a call that waited for another start first
    /// has less than this left, and its error says so.
    ready_timeout: std::time::Duration,
    /// Where the service mounts, if it is spfs-fuse-macos: ended before it
    /// listens, it leaves its mount there ([`crate::mountpoint::of`]).
    mountpoint: Option<String>,
    status: tokio::net::unix::pipe::Receiver,
    status_buf: Vec<u8>,
    ready: tokio::net::unix::pipe::Receiver,
    ready_buf: Vec<u8>,
    log_file: PathBuf,
    log_start: u64,
    /// Why the log could not be written, when the run header failed (a
    /// full disk): then an empty log says nothing about the service.
    log_unwritable: Option<String>,
    /// Why the log was not rotated (another running service writes it, or
    /// the rotation failed).
    log_not_rotated: Option<String>,
    /// Where a daemon the service forked names itself, if it is a kit.
    daemon: KitDaemon,
    /// The service's first process exited 0 holding the lock's
    /// description for a daemon it forked, which serves, or is on its way.
    daemonized: bool,
    /// The start's caller's hold on `spawn.lock`: an abandoned start keeps
    /// it until its service has ended (see [`Child::end_abandoned`]), so
    /// no other client starts another or takes the doomed one for serving.
    spawn_lock: Arc<crate::lock::OwnLock>,
    /// `instance.lock`, free once nothing of the service is left.
    instance_lock: PathBuf,
    /// The `stopping` file, set for an abandoned start while it ends.
    stopping: PathBuf,
}

/// Start the service. `instance_lock` is the locked `instance.lock`, handed
/// to the child; our copy is closed when this returns. `spawn_lock`: the
/// caller's hold on `spawn.lock`, which the start shares.
pub(crate) fn start(
    config: &Config,
    paths: &Paths,
    program: &Path,
    instance_lock: File,
    spawn_lock: Arc<crate::lock::OwnLock>,
) -> Result<Child> {
    let log = RunLog::open(config, paths, program)?;
    let endpoint = paths.endpoint(&config.endpoint);
    let spawned_at = std::time::Instant::now();
    let Detached {
        intermediate,
        pid,
        status_rx,
        ready_rx,
        lifeline,
        spawn_id,
    } = detach(
        config,
        paths,
        program,
        &endpoint,
        instance_lock,
        log.out,
        log.err,
    )?;
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
        daemon: KitDaemon {
            record: paths.record(),
            abandoned: paths.abandoned_start(),
            spawn_id,
            spawned_at,
            first: pid,
        },
        daemonized: false,
        spawn_lock,
        instance_lock: paths.instance_lock(),
        stopping: paths.stopping(),
        pid,
        instance,
        intermediate: Some(intermediate),
        lifeline,
        end_signal: config
            .stop_sequence
            .iter()
            .find_map(|step| match step {
                crate::config::StopStep::Signal(signal) => Some(*signal),
                crate::config::StopStep::Shutdown => None,
            })
            .unwrap_or(nix::sys::signal::Signal::SIGTERM),
        ready_timeout: config.ready_timeout,
        mountpoint: crate::mountpoint::of(config).map(str::to_string),
        status: to_async(status_rx.into(), "exit status")?,
        status_buf: Vec::new(),
        ready: to_async(ready_rx, "readiness")?,
        ready_buf: Vec::new(),
        log_file: log.path,
        log_start: log.start,
        log_unwritable: log.unwritable,
        log_not_rotated: log.not_rotated,
    };
    let record = ServiceRecord {
        pid,
        start_time: instance.map(|i| i.start_time),
        program: program.display().to_string(),
        version: None,
        endpoint: endpoint.to_string(),
        started_at_unix_ms: unix_ms(SystemTime::now()),
        phase: Phase::Starting,
        socket_activated: false,
        spawn_id: None,
    };
    // Never over a record the service already wrote itself.
    if let Err(e) = record.write_new(&paths.record()) {
        tracing::warn!("{e}");
    }
    Ok(child)
}

/// A service started by a double fork, its pid known.
struct Detached {
    intermediate: std::process::Child,
    pid: u32,
    status_rx: File,
    ready_rx: std::os::fd::OwnedFd,
    /// The write end of the intermediate's lifeline.
    lifeline: OwnedFd,
    /// The id the service was given ([`env::SPAWN_ID`]).
    spawn_id: String,
}

/// Fork the intermediate, which forks the service (its own session, only
/// the readiness pipe and the lock kept) and reports its pid.
fn detach(
    config: &Config,
    paths: &Paths,
    program: &Path,
    endpoint: &ResolvedEndpoint,
    instance_lock: File,
    log: File,
    stderr: File,
) -> Result<Detached> {
    let Inherited {
        ready_rx,
        ready_tx,
        status_rx,
        status_tx,
        lifeline_rx,
        lifeline_tx,
        instance_lock,
    } = Inherited::prepare(instance_lock)?;
    let ready_fd = ready_tx.as_raw_fd();
    let lock_fd = instance_lock.as_raw_fd();
    let status_fd = status_tx.as_raw_fd();
    let lifeline_fd = lifeline_rx.as_raw_fd();
    let sweep = FdSweep::gather();

    // We hold the instance lock, so a record left in the state dir is stale;
    // it goes now so nobody mistakes the new child for the old process.
    let _ = std::fs::remove_file(paths.record());

    let spawn_id = new_spawn_id();
    let mut command = service_command(config, paths, program, endpoint, log, stderr);
    command
        .env(env::READY_FD, ready_fd.to_string())
        .env(env::LOCK_FD, lock_fd.to_string())
        .env(env::SPAWN_ID, &spawn_id);
    let kept = Kept {
        ready_fd,
        lock_fd,
        status_fd,
        lifeline_fd,
    };
    fork_service_before_exec(&mut command, kept, sweep);
    let intermediate = command.spawn().map_err(|e| exec_error(program, &e))?;
    // Our copies go now: the pipes report EOF when their writers exit, and
    // the lock is the child's alone.
    drop(ready_tx);
    drop(status_tx);
    drop(lifeline_rx);
    drop(instance_lock);
    let mut status_rx = File::from(status_rx);
    let (pid, intermediate) = read_service_pid(&mut status_rx, intermediate, program)?;
    Ok(Detached {
        intermediate,
        pid,
        status_rx,
        ready_rx,
        lifeline: lifeline_tx,
        spawn_id,
    })
}

/// The descriptors the service and the intermediate inherit (the write
/// ends of the readiness and status pipes, the read end of the lifeline,
/// and the instance lock), each numbered above 2, with the ends we keep.
struct Inherited {
    ready_rx: OwnedFd,
    ready_tx: OwnedFd,
    status_rx: OwnedFd,
    status_tx: OwnedFd,
    lifeline_rx: OwnedFd,
    lifeline_tx: OwnedFd,
    instance_lock: File,
}

impl Inherited {
    /// Create both pipes and move every descriptor the child keeps above 2.
    fn prepare(instance_lock: File) -> Result<Inherited> {
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
        let (lifeline_rx, lifeline_tx) = readiness_pipe().map_err(|e| pipe_error(e.into()))?;
        let lifeline_rx = sys::above_stdio(lifeline_rx).map_err(pipe_error)?;
        let instance_lock = File::from(sys::above_stdio(instance_lock.into()).map_err(|e| {
            Error::new(
                ErrorKind::SpawnFailed,
                format!("cannot move the lock descriptor: {e}"),
            )
        })?);
        Ok(Inherited {
            ready_rx,
            ready_tx,
            status_rx,
            status_tx,
            lifeline_rx,
            lifeline_tx,
            instance_lock,
        })
    }
}

/// What the child needs to close every descriptor it must not keep,
/// gathered before the fork: after it, the child may neither allocate nor
/// read the environment.
struct FdSweep {
    /// Where the fallback loop (no close_range) stops.
    loop_end: RawFd,
    /// The open descriptors at or above `loop_end`.
    high_fds: Vec<RawFd>,
}

impl FdSweep {
    /// Gather it now, in the parent, before the fork.
    fn gather() -> FdSweep {
        // Where the fallback loop (no close_range) stops: the descriptor table
        // size, capped. Open descriptors at or above it (a host that lowered its
        // limit after opening them, or a huge limit) are listed now, as the
        // child may not allocate.
        // SAFETY: getdtablesize only reads a limit.
        let loop_end = unsafe { libc::getdtablesize() }.clamp(3, FALLBACK_FD_LIMIT);
        let high_fds = open_descriptors_above(loop_end);
        FdSweep { loop_end, high_fds }
    }
}

/// The descriptors kept across the fork: the service's two, the
/// intermediate's two.
struct Kept {
    ready_fd: RawFd,
    lock_fd: RawFd,
    status_fd: RawFd,
    lifeline_fd: RawFd,
}

/// Make `command`'s spawned child the intermediate: after its fork, and
/// before its exec, it forks the service (a new session, keeping only
/// `ready_fd` and `lock_fd`) and, instead of exec'ing, reports the service's
/// pid and exit status on `status_fd`, for as long as `lifeline_fd` is
/// open at our end (see [`run_intermediate`]).
fn fork_service_before_exec(command: &mut Command, kept: Kept, sweep: FdSweep) {
    let FdSweep { loop_end, high_fds } = sweep;
    let Kept {
        ready_fd,
        lock_fd,
        status_fd,
        lifeline_fd,
    } = kept;
    // SAFETY: between fork and exec the closure makes only async-signal-safe
    // system calls (fork, setsid, fcntl, close, write, waitpid, poll, pipe,
    // sigaction, sigprocmask, _exit) and reads memory allocated before the fork.
    unsafe {
        command.pre_exec(move || {
            match libc::fork() {
                -1 => Err(std::io::Error::last_os_error()),
                0 => {
                    // The service: a new session (its pid is its group id),
                    // only the readiness pipe and the lock kept.
                    nix::unistd::setsid()?;
                    // Not the signals the host ignores or blocks.
                    sys::reset_signals();
                    close_on_exec_from(3, loop_end, &high_fds);
                    // Kept across the exec: cleared close-on-exec.
                    sys::set_cloexec(ready_fd, false)?;
                    sys::set_cloexec(lock_fd, false)?;
                    Ok(())
                }
                service => run_intermediate(service, status_fd, lifeline_fd, loop_end, &high_fds),
            }
        });
    }
}

/// Why `program` could not be run, with what the system's words leave out:
/// which setting makes the command line too long, and that a script whose
/// interpreter is missing exists all the same.
fn exec_error(program: &Path, e: &std::io::Error) -> Error {
    let why = match e.raw_os_error() {
        Some(libc::E2BIG) => {
            "; its arguments and environment together are longer than the system allows: \
             shorten args or the [env] values in the config"
        }
        Some(libc::ENOENT) if program.exists() => {
            "; the program is there, so what is missing is what it names to run it: the \
             interpreter on its #! line, or a library it loads"
        }
        _ => "",
    };
    Error::new(
        ErrorKind::SpawnFailed,
        format!("cannot start {}: {e}{why}", program.display()),
    )
}

/// The service's command line, environment and stdio: what it is told of
/// its state dir, endpoint and idle timeout; none of the socket activation
/// variables a host of ours may have been given.
fn service_command(
    config: &Config,
    paths: &Paths,
    program: &Path,
    endpoint: &ResolvedEndpoint,
    log: File,
    stderr: File,
) -> Command {
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
        .env(env::STATE_DIR, &paths.state_dir)
        // Not for the kit: a client the service runs finds the same log,
        // and a client of another config can tell whose service it is.
        .env(env::LOG_DIR, &paths.log_dir)
        .env(env::ENDPOINT, endpoint.to_string())
        .env(
            env::IDLE_TIMEOUT_SECS,
            config.idle_timeout.as_secs().to_string(),
        );
    command
}

/// An id for one start, unique on this machine for long enough: the
/// spawner's pid and the time, to the nanosecond.
fn new_spawn_id() -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", std::process::id(), now.as_nanos())
}

/// The service's pid, as the intermediate reports it first on the status
/// pipe. It wrote it before the service could exec, and the spawn returned
/// only after the exec: this read does not block. When it fails, the
/// intermediate (and with it the service's start) is ended.
fn read_service_pid(
    status_rx: &mut File,
    mut intermediate: std::process::Child,
    program: &Path,
) -> Result<(u32, std::process::Child)> {
    use std::io::Read;
    let mut pid_bytes = [0u8; 4];
    if let Err(e) = status_rx.read_exact(&mut pid_bytes) {
        let _ = intermediate.kill();
        let _ = intermediate.wait();
        return Err(Error::new(
            ErrorKind::SpawnFailed,
            format!("cannot learn the pid of {}: {e}", program.display()),
        ));
    }
    Ok((i32::from_ne_bytes(pid_bytes) as u32, intermediate))
}
