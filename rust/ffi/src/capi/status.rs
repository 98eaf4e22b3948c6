//! `struct spfs_autostart_status`, the state and idle-exit enums: a status
//! report for C, one accessor per field, each NULL-safe with a documented
//! default.

use std::ffi::{CString, c_char, c_int};
use std::ptr;

use super::{c_string, guard, opt_str, spfs_autostart_string_array, take};
use crate::api::{IdleExit, ServiceState, ServiceStatus};

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

/// When a running kit service exits for idleness, or why it does not yet.
/// An `int32_t` in C.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum spfs_autostart_idle_exit {
    /// Not told: no running kit service answered (a plain service, one
    /// not running).
    Unknown = 0,
    /// In the seconds `spfs_autostart_status_idle_exit_in_secs` gives,
    /// unless a call or a lease comes first.
    After = 1,
    /// Never: its idle timeout is 0.
    Never = 2,
    /// Not while it holds leases.
    NotWhileLeased = 3,
    /// Not while a call is in flight.
    NotWhileBusy = 4,
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
    idle_exit: spfs_autostart_idle_exit,
    idle_timeout_secs: Option<u64>,
    managed: bool,
    warnings: spfs_autostart_string_array,
    detail: Option<CString>,
    mounts: Vec<StatusMount>,
    users: spfs_autostart_string_array,
}

/// One of a status's mounts, its strings ready for C.
#[derive(Debug)]
struct StatusMount {
    runtime_name: CString,
    root_pid: u32,
    editable: bool,
    env_spec: CString,
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

impl From<Option<IdleExit>> for spfs_autostart_idle_exit {
    fn from(i: Option<IdleExit>) -> Self {
        match i {
            None => spfs_autostart_idle_exit::Unknown,
            Some(IdleExit::After { .. }) => spfs_autostart_idle_exit::After,
            Some(IdleExit::Never) => spfs_autostart_idle_exit::Never,
            Some(IdleExit::NotWhileLeased) => spfs_autostart_idle_exit::NotWhileLeased,
            Some(IdleExit::NotWhileBusy) => spfs_autostart_idle_exit::NotWhileBusy,
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
            idle_exit: s.idle_exit.into(),
            idle_timeout_secs: s.idle_timeout_secs,
            managed: s.managed,
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
            users: s.users.into(),
        }
    }
}

/// Seconds for C: -1 when unknown.
fn secs(s: Option<u64>) -> i64 {
    s.map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX))
}

/// The state. A NULL `status` gives `SPFS_AUTOSTART_STATE_STOPPED`.
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_state(
    status: *const spfs_autostart_status,
) -> spfs_autostart_state {
    guard(spfs_autostart_state::Stopped, || {
        // SAFETY: the caller's contract.
        unsafe { status.as_ref() }.map_or(spfs_autostart_state::Stopped, |s| s.state)
    })
}

/// The service's pid, or 0 when unknown (or `status` is NULL).
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_pid(status: *const spfs_autostart_status) -> u32 {
    guard(0, || {
        // SAFETY: the caller's contract.
        unsafe { status.as_ref() }.and_then(|s| s.pid).unwrap_or(0)
    })
}

/// The version the service reports, or NULL when unknown (or `status` is
/// NULL). Borrowed: valid until the status is freed.
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_version(
    status: *const spfs_autostart_status,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller's contract.
        opt_str(unsafe { status.as_ref() }.and_then(|s| s.version.as_ref()))
    })
}

/// The endpoint in config syntax (`unix:///...`, `tcp://...`); NULL only
/// when `status` is NULL. Borrowed: valid until the status is freed.
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_endpoint(
    status: *const spfs_autostart_status,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller's contract.
        opt_str(unsafe { status.as_ref() }.map(|s| &s.endpoint))
    })
}

/// The service's log file; NULL only when `status` is NULL. Borrowed: valid
/// until the status is freed.
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_log_file(
    status: *const spfs_autostart_status,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller's contract.
        opt_str(unsafe { status.as_ref() }.map(|s| &s.log_file))
    })
}

/// What was found, in words: who is in the way (`CONFLICT`), why it does
/// not answer (`UNRESPONSIVE`), what it is waiting for (`STARTING`, a kit
/// service's `STOPPING`), or a note on a running or stopped service (started outside,
/// socket-activated); NULL when there is nothing to say (or `status` is
/// NULL). Borrowed: valid until the status is freed.
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_detail(
    status: *const spfs_autostart_status,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller's contract.
        opt_str(unsafe { status.as_ref() }.and_then(|s| s.detail.as_ref()))
    })
}

/// Seconds since the service started, or -1 when unknown (or `status` is
/// NULL).
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_uptime_secs(
    status: *const spfs_autostart_status,
) -> i64 {
    guard(-1, || {
        // SAFETY: the caller's contract.
        secs(unsafe { status.as_ref() }.and_then(|s| s.uptime_secs))
    })
}

/// Seconds until the service exits for idleness, or -1 when it is not idle
/// or it is unknown (or `status` is NULL).
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_idle_exit_in_secs(
    status: *const spfs_autostart_status,
) -> i64 {
    guard(-1, || {
        // SAFETY: the caller's contract.
        secs(unsafe { status.as_ref() }.and_then(|s| s.idle_exit_in_secs))
    })
}

/// When the service exits for idleness, or why it does not yet;
/// `SPFS_AUTOSTART_IDLE_EXIT_UNKNOWN` when no running kit service told it
/// (or `status` is NULL).
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_idle_exit(
    status: *const spfs_autostart_status,
) -> spfs_autostart_idle_exit {
    guard(spfs_autostart_idle_exit::Unknown, || {
        // SAFETY: the caller's contract.
        unsafe { status.as_ref() }.map_or(spfs_autostart_idle_exit::Unknown, |s| s.idle_exit)
    })
}

/// The idle timeout a kit service reports, in seconds (0: it never exits
/// for idleness), or -1 when no kit service answered (or `status` is NULL).
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_idle_timeout_secs(
    status: *const spfs_autostart_status,
) -> i64 {
    guard(-1, || {
        // SAFETY: the caller's contract.
        secs(unsafe { status.as_ref() }.and_then(|s| s.idle_timeout_secs))
    })
}

/// 1 when the service embeds the kit (it answers `Control`: version,
/// leases, idle exit); 0 for a plain service such as spfs-fuse-macos as
/// upstream ships it, when none answered, or when `status` is NULL.
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_managed(
    status: *const spfs_autostart_status,
) -> c_int {
    guard(0, || {
        // SAFETY: the caller's contract.
        c_int::from(unsafe { status.as_ref() }.is_some_and(|s| s.managed))
    })
}

/// How many leases the service holds (0 when `status` is NULL).
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_lease_count(
    status: *const spfs_autostart_status,
) -> usize {
    guard(0, || {
        // SAFETY: the caller's contract.
        unsafe { status.as_ref() }.map_or(0, |s| s.lease_count)
    })
}

/// How many environments the service has mounted (0 when `status` is NULL,
/// or when the service does not report its mounts). Mounts are numbered
/// `0 .. count`, sorted by root pid.
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_mount_count(
    status: *const spfs_autostart_status,
) -> usize {
    guard(0, || {
        // SAFETY: the caller's contract.
        unsafe { status.as_ref() }.map_or(0, |s| s.mounts.len())
    })
}

/// Mount `index` of `status`, when both exist.
///
/// # Safety
/// `status` is NULL or a live status that outlives the returned reference.
unsafe fn mount_at<'a>(
    status: *const spfs_autostart_status,
    index: usize,
) -> Option<&'a StatusMount> {
    // SAFETY: the caller's contract.
    unsafe { status.as_ref() }.and_then(|s| s.mounts.get(index))
}

/// The root pid of mount `index`: the process tree it serves. 0 when
/// `index` is out of range (or `status` is NULL).
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_mount_root_pid(
    status: *const spfs_autostart_status,
    index: usize,
) -> u32 {
    guard(0, || {
        // SAFETY: the caller's contract.
        unsafe { mount_at(status, index) }.map_or(0, |m| m.root_pid)
    })
}

/// The runtime name of mount `index` ("" when the caller gave none); NULL
/// when `index` is out of range (or `status` is NULL). Borrowed: valid
/// until the status is freed.
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_mount_runtime_name(
    status: *const spfs_autostart_status,
    index: usize,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller's contract.
        opt_str(unsafe { mount_at(status, index) }.map(|m| &m.runtime_name))
    })
}

/// The environment of mount `index`, in spfs's EnvSpec text form ("-" is
/// empty); NULL when `index` is out of range (or `status` is NULL).
/// Borrowed: valid until the status is freed.
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_mount_env_spec(
    status: *const spfs_autostart_status,
    index: usize,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller's contract.
        opt_str(unsafe { mount_at(status, index) }.map(|m| &m.env_spec))
    })
}

/// 1 when mount `index` is editable (writes go to a scratch directory),
/// else 0; 0 when `index` is out of range (or `status` is NULL).
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_mount_editable(
    status: *const spfs_autostart_status,
    index: usize,
) -> c_int {
    guard(0, || {
        // SAFETY: the caller's contract.
        let editable = unsafe { mount_at(status, index) }.is_some_and(|m| m.editable);
        c_int::from(editable)
    })
}

/// Things the user should know (e.g. a TCP endpoint other users can reach).
/// Borrowed: valid until the status is freed; do not free it. NULL only
/// when `status` is NULL.
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_warnings(
    status: *const spfs_autostart_status,
) -> *const spfs_autostart_string_array {
    guard(ptr::null(), || {
        // SAFETY: the caller's contract.
        unsafe { status.as_ref() }.map_or(ptr::null(), |s| &s.warnings as *const _)
    })
}

/// Who uses the service, in words: each runtime it mounted for, then each
/// other process holding a lease ("spfs shell (pid 77)"); what a stop would
/// cut off, empty when nothing uses it. Borrowed: valid until the status is
/// freed; do not free it. NULL only when `status` is NULL.
///
/// # Safety
/// `status` is NULL or a live status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_users(
    status: *const spfs_autostart_status,
) -> *const spfs_autostart_string_array {
    guard(ptr::null(), || {
        // SAFETY: the caller's contract.
        unsafe { status.as_ref() }.map_or(ptr::null(), |s| &s.users as *const _)
    })
}

/// Free a status. NULL does nothing.
///
/// # Safety
/// `status` is NULL or a status from this library, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_free(status: *mut spfs_autostart_status) {
    // SAFETY: the caller's contract.
    guard((), || unsafe { take(status) })
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn a_status_carries_its_mounts_and_users_to_c() {
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
            idle_timeout_secs: None,
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
            // Who uses it, as the core words it: one per mounted runtime.
            let users = &*spfs_autostart_status_users(s);
            let users: Vec<String> = users.items.iter().map(|u| text(u.as_ptr())).collect();
            assert_eq!(users, ["rt-1 (pid 42)", "pid 43"]);
        }
    }
}
