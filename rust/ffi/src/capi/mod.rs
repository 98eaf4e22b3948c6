//! The C ABI, following rustls-ffi's conventions.
//!
//! - Opaque handles come in `_new`/`_free` pairs; `_free(NULL)` does nothing.
//! - Fallible functions return an [`spfs_autostart_result`] and write their
//!   outputs only when it is `SPFS_AUTOSTART_RESULT_OK`. Their last parameter,
//!   `err`, may be NULL; when it is not, a failure stores a new
//!   `struct spfs_autostart_error` there that the caller frees with
//!   `spfs_autostart_error_free`.
//! - Every function checks its pointers (a NULL where one is required gives
//!   `SPFS_AUTOSTART_RESULT_NULL_PARAMETER`) and runs inside a panic boundary:
//!   a panic becomes `SPFS_AUTOSTART_RESULT_PANIC`, never an unwind into C.
//! - Strings are NUL-terminated UTF-8. Strings the library returns are
//!   borrowed from the handle they came from and live until it is freed.
//! - Every function may be called from any thread; one manager may be used
//!   by many threads at once (but not freed while in use). Blocking calls
//!   run on the library's own runtime, also from a thread inside a tokio
//!   runtime.
//!
//! Items here are named as in C (`spfs_autostart_...`), so cbindgen emits
//! the header without renaming.

#![allow(non_camel_case_types)]

mod error;
mod status;

pub use error::*;
pub use status::*;

use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::ptr;
use std::sync::Arc;

use crate::api::{ServiceError, ServiceState, ServiceStatus, StopOutcome};
use crate::process::PerProcess;
use crate::runtime::block_on;

/// The result of a fallible call. The values are stable: new codes are only
/// ever added. An `int32_t` in C.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum spfs_autostart_result {
    /// Success; the outputs were written.
    Ok = 0,
    /// The service program was not found where the library looked (the
    /// message lists the places).
    BinaryNotFound = 1,
    /// The program was found but could not be started.
    SpawnFailed = 2,
    /// The service exited before it became ready (see the log tail).
    ExitedDuringStartup = 3,
    /// The service did not become ready in time; it was killed.
    ReadyTimeout = 4,
    /// A service is alive but does not answer.
    Unresponsive = 5,
    /// The endpoint is taken by something that is not our service.
    EndpointConflict = 6,
    /// A file or directory has an owner or mode we must not use.
    PermissionDenied = 7,
    /// The running service has another version than the configured one.
    VersionMismatch = 8,
    /// The configuration is malformed or names something unusable, or the
    /// config file cannot be read.
    InvalidConfig = 9,
    /// The operation does not exist on this system.
    Unsupported = 10,
    /// Any other operating-system error.
    Io = 11,
    /// A failure of a kind this library version does not know.
    Internal = 12,
    /// `launchctl` refused, timed out or could not be run.
    LaunchctlFailed = 13,
    /// A pointer parameter that must not be NULL was NULL.
    NullParameter = 100,
    /// A string parameter was not valid UTF-8.
    InvalidUtf8 = 101,
    /// The library panicked (a bug); the call had no effect on the outputs.
    Panic = 102,
}

/// The state of the service. An `int32_t` in C.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum spfs_autostart_state {
    /// It answers at its endpoint.
    Running = 0,
    /// It holds the instance lock and is not serving yet.
    Starting = 1,
    /// It is shutting down.
    Stopping = 2,
    /// No service is alive.
    Stopped = 3,
    /// It holds the instance lock but does not answer.
    Unresponsive = 4,
    /// Something that is not our service answers at the endpoint.
    Conflict = 5,
}

/// A manager for one service. Create it with `spfs_autostart_new`, free it
/// with `spfs_autostart_free`. Safe to share between threads.
#[derive(Debug)]
pub struct spfs_autostart {
    core: PerProcess,
}

/// An owned list of strings. Free it with `spfs_autostart_string_array_free`
/// when a function gave it to you; one borrowed from another handle (a
/// status's warnings, an error's log tail) lives as long as that handle.
#[derive(Debug, Default)]
pub struct spfs_autostart_string_array {
    items: Vec<CString>,
}

/// A failure: its code, message and, for startup failures, the service's
/// log file and last lines. Free it with `spfs_autostart_error_free`.
#[derive(Debug)]
pub struct spfs_autostart_error {
    code: spfs_autostart_result,
    message: CString,
    log_file: Option<CString>,
    log_tail: spfs_autostart_string_array,
}

/// A status report. Free it with `spfs_autostart_status_free`; the strings
/// its accessors return live until then.
#[derive(Debug)]
pub struct spfs_autostart_status {
    state: spfs_autostart_state,
    pid: Option<u32>,
    version: Option<CString>,
    endpoint: CString,
    uptime_secs: Option<u64>,
    log_file: CString,
    lease_count: usize,
    idle_exit_in_secs: Option<u64>,
    warnings: spfs_autostart_string_array,
    detail: Option<CString>,
    mounts: Vec<StatusMount>,
}

/// One of a status's mounts, its strings ready for C.
#[derive(Debug)]
struct StatusMount {
    runtime_name: CString,
    root_pid: u32,
    editable: bool,
    env_spec: CString,
}

/// A C string from text that may hold NULs (replaced, never truncated).
fn c_string(s: String) -> CString {
    CString::new(s).unwrap_or_else(|e| {
        let text = String::from_utf8_lossy(&e.into_vec()).replace('\0', "\u{FFFD}");
        CString::new(text).unwrap_or_default()
    })
}

impl From<Vec<String>> for spfs_autostart_string_array {
    fn from(items: Vec<String>) -> Self {
        spfs_autostart_string_array {
            items: items.into_iter().map(c_string).collect(),
        }
    }
}

impl From<ServiceState> for spfs_autostart_state {
    fn from(s: ServiceState) -> Self {
        match s {
            ServiceState::Running => spfs_autostart_state::Running,
            ServiceState::Starting => spfs_autostart_state::Starting,
            ServiceState::Stopping => spfs_autostart_state::Stopping,
            ServiceState::Stopped => spfs_autostart_state::Stopped,
            ServiceState::Unresponsive => spfs_autostart_state::Unresponsive,
            ServiceState::Conflict => spfs_autostart_state::Conflict,
        }
    }
}

impl From<ServiceStatus> for spfs_autostart_status {
    fn from(s: ServiceStatus) -> Self {
        spfs_autostart_status {
            state: s.state.into(),
            pid: s.pid,
            version: s.version.map(c_string),
            endpoint: c_string(s.endpoint),
            uptime_secs: s.uptime_secs,
            log_file: c_string(s.log_file),
            lease_count: s.leases.len(),
            idle_exit_in_secs: s.idle_exit_in_secs,
            warnings: s.warnings.into(),
            detail: s.detail.map(c_string),
            mounts: s
                .mounts
                .into_iter()
                .map(|m| StatusMount {
                    runtime_name: c_string(m.runtime_name),
                    root_pid: m.root_pid,
                    editable: m.editable,
                    env_spec: c_string(m.env_spec),
                })
                .collect(),
        }
    }
}

impl From<ServiceError> for spfs_autostart_error {
    fn from(e: ServiceError) -> Self {
        use spfs_autostart_result as R;
        let (code, message, log_file, log_tail) = match e {
            ServiceError::BinaryNotFound {
                message,
                log_file,
                log_tail,
            } => (R::BinaryNotFound, message, log_file, log_tail),
            ServiceError::SpawnFailed {
                message,
                log_file,
                log_tail,
            } => (R::SpawnFailed, message, log_file, log_tail),
            ServiceError::ExitedDuringStartup {
                message,
                log_file,
                log_tail,
            } => (R::ExitedDuringStartup, message, log_file, log_tail),
            ServiceError::ReadyTimeout {
                message,
                log_file,
                log_tail,
            } => (R::ReadyTimeout, message, log_file, log_tail),
            ServiceError::Unresponsive {
                message,
                log_file,
                log_tail,
            } => (R::Unresponsive, message, log_file, log_tail),
            ServiceError::EndpointConflict {
                message,
                log_file,
                log_tail,
            } => (R::EndpointConflict, message, log_file, log_tail),
            ServiceError::PermissionDenied {
                message,
                log_file,
                log_tail,
            } => (R::PermissionDenied, message, log_file, log_tail),
            ServiceError::VersionMismatch {
                message,
                log_file,
                log_tail,
            } => (R::VersionMismatch, message, log_file, log_tail),
            ServiceError::InvalidConfig {
                message,
                log_file,
                log_tail,
            } => (R::InvalidConfig, message, log_file, log_tail),
            ServiceError::Unsupported {
                message,
                log_file,
                log_tail,
            } => (R::Unsupported, message, log_file, log_tail),
            ServiceError::Io {
                message,
                log_file,
                log_tail,
            } => (R::Io, message, log_file, log_tail),
            ServiceError::LaunchctlFailed {
                message,
                log_file,
                log_tail,
            } => (R::LaunchctlFailed, message, log_file, log_tail),
            ServiceError::Internal {
                message,
                log_file,
                log_tail,
            } => (R::Internal, message, log_file, log_tail),
        };
        spfs_autostart_error {
            code,
            message: c_string(message),
            log_file: log_file.map(c_string),
            log_tail: log_tail.into(),
        }
    }
}

impl From<spfs_autostart_core::Error> for spfs_autostart_error {
    fn from(e: spfs_autostart_core::Error) -> Self {
        ServiceError::from(e).into()
    }
}

impl spfs_autostart_error {
    fn plain(code: spfs_autostart_result, message: String) -> Self {
        spfs_autostart_error {
            code,
            message: c_string(message),
            log_file: None,
            log_tail: Default::default(),
        }
    }
}

/// Run `f` inside the panic boundary; on failure store the error in `*err`
/// when `err` is not NULL, and return its code.
fn boundary(
    err: *mut *mut spfs_autostart_error,
    f: impl FnOnce() -> Result<(), spfs_autostart_error>,
) -> spfs_autostart_result {
    let failure = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return spfs_autostart_result::Ok,
        Ok(Err(e)) => e,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            spfs_autostart_error::plain(
                spfs_autostart_result::Panic,
                format!("spfs-autostart panicked: {what}; this is a bug, please report it"),
            )
        }
    };
    let code = failure.code;
    if !err.is_null() {
        // A panic here (allocation failure) must not unwind into C either.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the caller passes NULL or a pointer valid for writes.
            unsafe { *err = Box::into_raw(Box::new(failure)) };
        }));
    }
    code
}

/// Run an infallible accessor inside the panic boundary; `default` on panic.
fn guard<T>(default: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(default)
}

fn null(name: &str) -> spfs_autostart_error {
    spfs_autostart_error::plain(
        spfs_autostart_result::NullParameter,
        format!("spfs-autostart: the parameter `{name}` must not be NULL"),
    )
}

/// Borrow `*p`, or fail with NULL_PARAMETER naming `name`.
///
/// # Safety
/// `p` is NULL or points to a live `T` for the returned lifetime.
unsafe fn borrow<'a, T>(p: *const T, name: &str) -> Result<&'a T, spfs_autostart_error> {
    // SAFETY: the caller's contract.
    unsafe { p.as_ref() }.ok_or_else(|| null(name))
}

/// Check an out-pointer, or fail with NULL_PARAMETER naming `name`.
fn out_ptr<T>(p: *mut T, name: &str) -> Result<*mut T, spfs_autostart_error> {
    if p.is_null() { Err(null(name)) } else { Ok(p) }
}

/// Borrow a C string as UTF-8.
///
/// # Safety
/// `p` is a valid NUL-terminated string.
unsafe fn utf8<'a>(p: *const c_char, name: &str) -> Result<&'a str, spfs_autostart_error> {
    // SAFETY: the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|e| {
        spfs_autostart_error::plain(
            spfs_autostart_result::InvalidUtf8,
            format!("spfs-autostart: the parameter `{name}` is not valid UTF-8: {e}"),
        )
    })
}

/// Move `value` to the heap and hand it to C through `out`.
///
/// # Safety
/// `out` is a checked, writable out-pointer.
unsafe fn give<T>(out: *mut *mut T, value: T) {
    // SAFETY: the caller's contract.
    unsafe { *out = Box::into_raw(Box::new(value)) };
}

/// Free a handle given out with [`give`]; NULL does nothing.
///
/// # Safety
/// `p` is NULL or came from [`give`] and was not freed.
unsafe fn take<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: the caller's contract.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// The library version, e.g. "0.1.0": a static NUL-terminated string that
/// must not be freed. Equals `SPFS_AUTOSTART_VERSION`.
#[unsafe(no_mangle)]
pub extern "C" fn spfs_autostart_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// Create a manager. `config_path` names a TOML config file, or is NULL for
/// the usual lookup (`SPFS_AUTOSTART_CONFIG`, then the per-user file when it
/// exists, then the environment). A file that cannot be read or parsed
/// gives `SPFS_AUTOSTART_RESULT_INVALID_CONFIG`. Touches nothing on disk but
/// the config file.
///
/// On success `*out` receives a manager the caller owns and frees with
/// `spfs_autostart_free`. `out` must not be NULL; `err` may be.
///
/// # Safety
/// `config_path` is NULL or a NUL-terminated string; `out` and `err` are
/// NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_new(
    config_path: *const c_char,
    out: *mut *mut spfs_autostart,
    err: *mut *mut spfs_autostart_error,
) -> spfs_autostart_result {
    boundary(err, || {
        let out = out_ptr(out, "out")?;
        let path = if config_path.is_null() {
            None
        } else {
            // SAFETY: a non-NULL `config_path` is a C string.
            Some(Path::new(unsafe { utf8(config_path, "config_path") }?))
        };
        let config = spfs_autostart_core::Config::load(path)?;
        let core = PerProcess::new(config)?;
        // SAFETY: `out` was checked.
        unsafe { give(out, spfs_autostart { core }) };
        Ok(())
    })
}

/// Free a manager. NULL does nothing. Does not stop the service.
///
/// # Safety
/// `mgr` is NULL or came from `spfs_autostart_new`, was not freed, and no
/// other thread uses it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_free(mgr: *mut spfs_autostart) {
    // SAFETY: the caller's contract.
    guard((), || unsafe { take(mgr) })
}

/// Make sure the service runs, starting it if needed; blocks until it
/// answers or fails. Exactly one service starts however many threads and
/// processes call this at once.
///
/// On success `*out` receives its status, owned by the caller (free with
/// `spfs_autostart_status_free`). `mgr` and `out` must not be NULL; `err`
/// may be.
///
/// # Safety
/// `mgr` is NULL or a live manager; `out` and `err` are NULL or valid for
/// writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_ensure(
    mgr: *const spfs_autostart,
    out: *mut *mut spfs_autostart_status,
    err: *mut *mut spfs_autostart_error,
) -> spfs_autostart_result {
    // SAFETY: the caller's contract.
    unsafe {
        status_call(mgr, out, err, |core| {
            block_on(async move { core.ensure().await })
        })
    }
}

/// The service's status, without starting it.
///
/// On success `*out` receives the status, owned by the caller (free with
/// `spfs_autostart_status_free`). `mgr` and `out` must not be NULL; `err`
/// may be.
///
/// # Safety
/// As for `spfs_autostart_ensure`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status(
    mgr: *const spfs_autostart,
    out: *mut *mut spfs_autostart_status,
    err: *mut *mut spfs_autostart_error,
) -> spfs_autostart_result {
    // SAFETY: the caller's contract.
    unsafe {
        status_call(mgr, out, err, |core| {
            block_on(async move { core.status().await })
        })
    }
}

/// The shared body of `_ensure` and `_status`: check the pointers, run
/// `call`, hand the status out.
///
/// # Safety
/// As for `spfs_autostart_ensure`.
unsafe fn status_call(
    mgr: *const spfs_autostart,
    out: *mut *mut spfs_autostart_status,
    err: *mut *mut spfs_autostart_error,
    call: impl FnOnce(
        Arc<spfs_autostart_core::ServiceManager>,
    ) -> spfs_autostart_core::Result<spfs_autostart_core::Status>,
) -> spfs_autostart_result {
    boundary(err, || {
        // SAFETY: the caller's contract.
        let mgr = unsafe { borrow(mgr, "mgr") }?;
        let out = out_ptr(out, "out")?;
        let status = call(mgr.core.get()?)?;
        // SAFETY: `out` was checked.
        unsafe { give(out, ServiceStatus::from(status).into()) };
        Ok(())
    })
}

/// Stop the service (graceful, then SIGTERM, then SIGKILL); blocks until it
/// is gone. On success `*stopped_out` is 1 when a service was stopped and 0
/// when none was running. `mgr` and `stopped_out` must not be NULL; `err`
/// may be.
///
/// # Safety
/// `mgr` is NULL or a live manager; `stopped_out` and `err` are NULL or
/// valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_stop(
    mgr: *const spfs_autostart,
    stopped_out: *mut c_int,
    err: *mut *mut spfs_autostart_error,
) -> spfs_autostart_result {
    boundary(err, || {
        // SAFETY: the caller's contract.
        let mgr = unsafe { borrow(mgr, "mgr") }?;
        let stopped_out = out_ptr(stopped_out, "stopped_out")?;
        let core = mgr.core.get()?;
        let outcome = StopOutcome::from(block_on(async move { core.stop().await })?);
        // SAFETY: `stopped_out` was checked.
        unsafe { *stopped_out = c_int::from(outcome == StopOutcome::Stopped) };
        Ok(())
    })
}

/// The last `n` lines of the service log, oldest first; works when the
/// service is not running (a missing log gives no lines).
///
/// On success `*out` receives the lines, owned by the caller (free with
/// `spfs_autostart_string_array_free`). `mgr` and `out` must not be NULL;
/// `err` may be.
///
/// # Safety
/// `mgr` is NULL or a live manager; `out` and `err` are NULL or valid for
/// writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_tail_logs(
    mgr: *const spfs_autostart,
    n: usize,
    out: *mut *mut spfs_autostart_string_array,
    err: *mut *mut spfs_autostart_error,
) -> spfs_autostart_result {
    boundary(err, || {
        // SAFETY: the caller's contract.
        let mgr = unsafe { borrow(mgr, "mgr") }?;
        let out = out_ptr(out, "out")?;
        let lines = mgr.core.get()?.tail_logs(n)?;
        // SAFETY: `out` was checked.
        unsafe { give(out, spfs_autostart_string_array::from(lines)) };
        Ok(())
    })
}

fn opt_str(s: Option<&CString>) -> *const c_char {
    s.map_or(ptr::null(), |s| s.as_ptr())
}

fn secs(s: Option<u64>) -> i64 {
    s.map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spfs_autostart_core::{Error, ErrorKind, LogExcerpt};

    fn message(err: *const spfs_autostart_error) -> String {
        // SAFETY: a live error from this library.
        let p = unsafe { spfs_autostart_error_message(err) };
        // SAFETY: the message is a NUL-terminated string owned by `err`.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string()
    }

    #[test]
    fn a_panic_becomes_a_code_and_an_error() {
        let mut err = ptr::null_mut();
        let code = boundary(&mut err, || panic!("deliberate test panic"));
        assert_eq!(code, spfs_autostart_result::Panic);
        assert!(message(err).contains("deliberate test panic"));
        // SAFETY: `err` was just made by the boundary and is freed once.
        unsafe { spfs_autostart_error_free(err) };
        // Without an error out-pointer the code alone comes back.
        let code = boundary(ptr::null_mut(), || panic!("deliberate test panic"));
        assert_eq!(code, spfs_autostart_result::Panic);
    }

    #[test]
    fn startup_errors_keep_their_kind_and_log_tail() {
        let core = Error::new(ErrorKind::ExitedDuringStartup, "it died").with_log(LogExcerpt {
            path: "/tmp/x.log".into(),
            tail: vec!["last words".into()],
        });
        let e = spfs_autostart_error::from(core);
        assert_eq!(e.code, spfs_autostart_result::ExitedDuringStartup);
        assert_eq!(e.message.to_str().unwrap(), "it died");
        assert_eq!(e.log_file.as_ref().unwrap().to_str().unwrap(), "/tmp/x.log");
        let tail = &e.log_tail as *const _;
        // SAFETY: `tail` points into `e`, which outlives the block.
        unsafe {
            assert_eq!(spfs_autostart_string_array_len(tail), 1);
            let line = CStr::from_ptr(spfs_autostart_string_array_get(tail, 0));
            assert_eq!(line.to_str().unwrap(), "last words");
            assert!(spfs_autostart_string_array_get(tail, 1).is_null());
        }
    }

    #[test]
    fn every_kind_has_its_own_code() {
        let kinds = [
            ErrorKind::BinaryNotFound,
            ErrorKind::SpawnFailed,
            ErrorKind::ExitedDuringStartup,
            ErrorKind::ReadyTimeout,
            ErrorKind::Unresponsive,
            ErrorKind::EndpointConflict,
            ErrorKind::PermissionDenied,
            ErrorKind::VersionMismatch,
            ErrorKind::InvalidConfig,
            ErrorKind::Unsupported,
            ErrorKind::Io,
            ErrorKind::LaunchctlFailed,
        ];
        let codes: Vec<i32> = kinds
            .iter()
            .map(|&k| spfs_autostart_error::from(Error::new(k, "x")).code as i32)
            .collect();
        assert_eq!(codes, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13]);
    }

    #[test]
    fn a_status_carries_its_mounts_to_c() {
        let mut core = spfs_autostart_core::Status {
            state: spfs_autostart_core::State::Running,
            pid: Some(7),
            version: None,
            endpoint: "tcp://127.0.0.1:1".into(),
            uptime_secs: None,
            log_file: "/tmp/x.log".into(),
            leases: Vec::new(),
            mounts: Vec::new(),
            idle_exit_in_secs: None,
            warnings: Vec::new(),
            detail: None,
            managed: false,
        };
        core.mounts = vec![
            spfs_autostart_core::Mount {
                runtime_name: "rt-1".into(),
                root_pid: 42,
                editable: true,
                env_spec: "platform/base".into(),
            },
            spfs_autostart_core::Mount {
                runtime_name: String::new(),
                root_pid: 43,
                editable: false,
                env_spec: "-".into(),
            },
        ];
        let status = spfs_autostart_status::from(ServiceStatus::from(core));
        let s = &status as *const _;
        // SAFETY: each string the accessors return lives as long as `status`.
        let text = |p: *const c_char| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string();
        // SAFETY: `s` points to `status`, which outlives the block.
        unsafe {
            assert_eq!(spfs_autostart_status_mount_count(s), 2);
            assert_eq!(spfs_autostart_status_mount_root_pid(s, 0), 42);
            assert_eq!(text(spfs_autostart_status_mount_runtime_name(s, 0)), "rt-1");
            assert_eq!(
                text(spfs_autostart_status_mount_env_spec(s, 0)),
                "platform/base"
            );
            assert_eq!(spfs_autostart_status_mount_editable(s, 0), 1);
            assert_eq!(spfs_autostart_status_mount_root_pid(s, 1), 43);
            assert_eq!(text(spfs_autostart_status_mount_runtime_name(s, 1)), "");
            assert_eq!(spfs_autostart_status_mount_editable(s, 1), 0);
            // Out of range: the documented defaults, never a read past the end.
            assert_eq!(spfs_autostart_status_mount_root_pid(s, 2), 0);
            assert!(spfs_autostart_status_mount_runtime_name(s, 2).is_null());
            assert!(spfs_autostart_status_mount_env_spec(s, 2).is_null());
            assert_eq!(spfs_autostart_status_mount_editable(s, 2), 0);
        }
    }

    #[test]
    fn strings_with_nul_are_kept_whole() {
        assert_eq!(c_string("a\0b".into()).to_str().unwrap(), "a\u{FFFD}b");
    }

    #[test]
    fn blocking_calls_work_from_inside_a_tokio_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = std::env::temp_dir().join(format!("spfs-ffi-test-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let config = dir.join("config.toml");
            std::fs::write(
                &config,
                format!(
                    "program = \"spfs-autostart-no-such-program\"\nstate_dir = \"{0}/state\"\nlog_dir = \"{0}/log\"\n",
                    dir.display()
                ),
            )
            .unwrap();
            let path = CString::new(config.to_str().unwrap()).unwrap();
            let mut mgr = ptr::null_mut();
            let mut err = ptr::null_mut();
            // SAFETY: valid C strings and out-pointers; each handle is freed once.
            unsafe {
                assert_eq!(
                    spfs_autostart_new(path.as_ptr(), &mut mgr, &mut err),
                    spfs_autostart_result::Ok
                );
                let mut status = ptr::null_mut();
                assert_eq!(
                    spfs_autostart_ensure(mgr, &mut status, &mut err),
                    spfs_autostart_result::BinaryNotFound
                );
                assert!(status.is_null());
                assert!(message(err).contains("looked in"));
                spfs_autostart_error_free(err);
                spfs_autostart_free(mgr);
            }
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }
}
