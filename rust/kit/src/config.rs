//! What the kit needs to know, from the spawner's environment.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

use spfs_autostart_protocol::endpoint::Endpoint;
use spfs_autostart_protocol::env;
use spfs_autostart_protocol::paths::Paths;
use spfs_autostart_protocol::sys;

use crate::{Error, ErrorKind, ResolvedEndpoint, Result};

/// Where and how the kit serves: from the spawner's environment
/// (`SPFS_AUTOSTART_*`), else the built-in defaults. The kit never reads the
/// client's config file: the client may have used another one (`--config`),
/// a relative path, or a `HOME` the service does not have.
#[derive(Debug)]
pub struct KitConfig {
    /// The state dir holding the locks and the record.
    pub state_dir: PathBuf,
    /// The endpoint to bind when no socket is handed over.
    pub endpoint: ResolvedEndpoint,
    /// Exit after this long idle; zero means never.
    pub idle_timeout: Duration,
    /// The readiness pipe, when started by a spawner.
    pub ready_fd: Option<OwnedFd>,
    /// The locked `instance.lock`, when started by a spawner.
    pub lock_fd: Option<OwnedFd>,
}

impl KitConfig {
    /// Read `SPFS_AUTOSTART_STATE_DIR`, `_ENDPOINT` (`unix` means the state
    /// dir's socket), `_IDLE_TIMEOUT_SECS`, and take the descriptors in
    /// `_READY_FD` and `_LOCK_FD`. Those two variables are removed from the
    /// environment, so a process this service starts never mistakes them for
    /// its own; call this early, before the service starts threads of its
    /// own that read the environment through C (see `std::env::remove_var`).
    pub fn from_env() -> Result<KitConfig> {
        // The descriptors first, whatever else is wrong: a process this
        // service starts must never inherit them, and the spawner hears of
        // an error below on its readiness pipe instead of a bare exit.
        crate::listener::protect_activation_sockets();
        let ready_fd = inherited_fd(env::READY_FD, libc::S_IFIFO, "a pipe");
        let lock_fd = inherited_fd(env::LOCK_FD, libc::S_IFREG, "a file");
        let (endpoint, state_dir, idle_timeout) = match read_settings() {
            Ok(settings) => settings,
            Err(e) => {
                if let Some(ready) = ready_fd {
                    crate::spawner::tell_failed(&mut std::fs::File::from(ready), &e);
                }
                return Err(e);
            }
        };
        Ok(KitConfig {
            endpoint,
            state_dir,
            idle_timeout,
            ready_fd,
            lock_fd,
        })
    }
}

/// The endpoint, state dir and idle timeout from the environment.
fn read_settings() -> Result<(ResolvedEndpoint, PathBuf, Duration)> {
    let bad = |name: &str, why: String| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!("environment variable {name}: {why}"),
        )
    };
    // A value that is not UTF-8 is refused, not read as unset: the
    // service would otherwise take the default state dir, not the one
    // its spawner chose.
    let var = |name: &str| match std::env::var(name) {
        Ok(value) => Ok(Some(value).filter(|v| !v.is_empty())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(value)) => Err(bad(
            name,
            format!("{value:?} is not UTF-8 text; give it a UTF-8 value, or unset it"),
        )),
    };
    let state_dir = match var(env::STATE_DIR)? {
        Some(dir) if dir.starts_with('/') => PathBuf::from(dir),
        Some(dir) => {
            return Err(bad(
                env::STATE_DIR,
                format!("{dir} is relative; give an absolute path"),
            ));
        }
        None => spfs_autostart_protocol::paths::default_state_dir(&env::process_env),
    };
    let paths = Paths {
        state_dir,
        log_dir: PathBuf::new(),
    };
    let endpoint = match var(env::ENDPOINT)? {
        Some(text) => text
            .parse::<Endpoint>()
            .map_err(|e| bad(env::ENDPOINT, e))?,
        None => Endpoint::platform_default(),
    };
    let idle_timeout = match var(env::IDLE_TIMEOUT_SECS)? {
        Some(text) => {
            let secs = env::parse_secs(&text).map_err(|why| bad(env::IDLE_TIMEOUT_SECS, why))?;
            env::idle_timeout(secs).map_err(|why| bad(env::IDLE_TIMEOUT_SECS, why))?
        }
        None => env::DEFAULT_IDLE_TIMEOUT,
    };
    Ok((paths.endpoint(&endpoint), paths.state_dir, idle_timeout))
}

/// A descriptor the spawner passed in `var`, if it is open and of the kind
/// it passes (`kind`, an `S_IF*` file type, said as `what`); `var` is
/// removed, it was meant for this process alone. A number that is not what
/// the spawner passes is someone else's, and is left alone, not owned (and
/// so never closed) here.
fn inherited_fd(var: &str, kind: libc::mode_t, what: &str) -> Option<OwnedFd> {
    let value = std::env::var(var).ok()?;
    // SAFETY: std serializes its own environment access; the only hazard is
    // C code reading `environ` on another thread at this moment, which
    // `KitConfig::from_env` documents: it is called before the service
    // starts such threads.
    unsafe { std::env::remove_var(var) };
    let fd: RawFd = value.parse().ok()?;
    if fd < 3 || !sys::is_open(fd) {
        tracing::warn!("ignoring {var}={fd}: not an open descriptor");
        return None;
    }
    // SAFETY: the descriptor is open (checked above) and not owned by us
    // yet; fstat only reads it.
    let stat = nix::sys::stat::fstat(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) });
    if !stat.is_ok_and(|st| st.st_mode & libc::S_IFMT == kind) {
        tracing::warn!("ignoring {var}={fd}: descriptor {fd} is not {what}, so not the spawner's");
        return None;
    }
    // Our own children must not inherit it.
    let _ = sys::set_cloexec(fd, true);
    // SAFETY: the spawner gave this descriptor to us alone (the variable
    // names it, and it is of the kind the spawner passes); nothing else in
    // this process owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}
