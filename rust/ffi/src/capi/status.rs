//! Reading a `struct spfs_autostart_status`: one accessor per field, each
//! NULL-safe with a documented default.

use std::ffi::{c_char, c_int};
use std::ptr;

use super::{
    StatusMount, guard, opt_str, secs, spfs_autostart_state, spfs_autostart_status,
    spfs_autostart_string_array, take,
};

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

/// What was found, for the `CONFLICT` and `UNRESPONSIVE` states; NULL when
/// there is nothing to say (or `status` is NULL). Borrowed: valid until the
/// status is freed.
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

/// Free a status. NULL does nothing.
///
/// # Safety
/// `status` is NULL or a status from this library, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_status_free(status: *mut spfs_autostart_status) {
    // SAFETY: the caller's contract.
    guard((), || unsafe { take(status) })
}
