//! Reading a `struct spfs_autostart_error` and owned string arrays.

use std::ffi::c_char;
use std::ptr;

use super::{
    guard, opt_str, spfs_autostart_error, spfs_autostart_result, spfs_autostart_string_array, take,
};

/// The error's code (never `SPFS_AUTOSTART_RESULT_OK`, except for a NULL
/// `error`, which gives `SPFS_AUTOSTART_RESULT_OK`).
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_error_code(
    error: *const spfs_autostart_error,
) -> spfs_autostart_result {
    guard(spfs_autostart_result::Panic, || {
        // SAFETY: the caller's contract.
        unsafe { error.as_ref() }.map_or(spfs_autostart_result::Ok, |e| e.code)
    })
}

/// The full message: what happened, to what, and what to do next. Borrowed:
/// valid until the error is freed. NULL only when `error` is NULL.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_error_message(
    error: *const spfs_autostart_error,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller's contract.
        opt_str(unsafe { error.as_ref() }.map(|e| &e.message))
    })
}

/// The service's log file, for startup failures; NULL otherwise. Borrowed:
/// valid until the error is freed.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_error_log_file(
    error: *const spfs_autostart_error,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller's contract.
        opt_str(unsafe { error.as_ref() }.and_then(|e| e.log_file.as_ref()))
    })
}

/// The last lines of the service log at the time of a startup failure
/// (empty for other failures), oldest first. Borrowed: valid until the error
/// is freed; do not free it. NULL only when `error` is NULL.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_error_log_tail(
    error: *const spfs_autostart_error,
) -> *const spfs_autostart_string_array {
    guard(ptr::null(), || {
        // SAFETY: the caller's contract.
        unsafe { error.as_ref() }.map_or(ptr::null(), |e| &e.log_tail as *const _)
    })
}

/// Free an error. NULL does nothing.
///
/// # Safety
/// `error` is NULL or an error from this library, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_error_free(error: *mut spfs_autostart_error) {
    // SAFETY: the caller's contract.
    guard((), || unsafe { take(error) })
}

/// The number of strings (0 when `array` is NULL).
///
/// # Safety
/// `array` is NULL or a live string array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_string_array_len(
    array: *const spfs_autostart_string_array,
) -> usize {
    // SAFETY: the caller's contract.
    guard(0, || unsafe { array.as_ref() }.map_or(0, |a| a.items.len()))
}

/// The string at `index`, or NULL when `index` is out of range (or `array`
/// is NULL). Borrowed: valid until the array (or the handle it is borrowed
/// from) is freed.
///
/// # Safety
/// `array` is NULL or a live string array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_string_array_get(
    array: *const spfs_autostart_string_array,
    index: usize,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller's contract.
        opt_str(unsafe { array.as_ref() }.and_then(|a| a.items.get(index)))
    })
}

/// Free a string array that a function gave you (not one borrowed from a
/// status or an error). NULL does nothing.
///
/// # Safety
/// `array` is NULL or an owned array from this library, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_string_array_free(array: *mut spfs_autostart_string_array) {
    // SAFETY: the caller's contract.
    guard((), || unsafe { take(array) })
}
