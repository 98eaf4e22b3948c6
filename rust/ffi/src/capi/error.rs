//! `struct spfs_autostart_error`: a failure's code, message and log, made
//! from the core's error, and its accessors.

use std::ffi::{CString, c_char};
use std::ptr;

use super::{c_string, guard, opt_str, spfs_autostart_result, spfs_autostart_string_array, take};

/// A failure: its code, message and, for startup failures, the service's
/// log file and last lines. Free it with `spfs_autostart_error_free`.
#[derive(Debug)]
pub struct spfs_autostart_error {
    pub(super) code: spfs_autostart_result,
    pub(super) message: CString,
    pub(super) log_file: Option<CString>,
    pub(super) log_tail: spfs_autostart_string_array,
}

/// A core error for C: its kind becomes its code (see `result.rs`).
impl From<spfs_autostart_core::Error> for spfs_autostart_error {
    fn from(e: spfs_autostart_core::Error) -> Self {
        let log = e.log();
        spfs_autostart_error {
            code: e.kind().into(),
            message: c_string(e.message().to_string()),
            log_file: log.map(|l| c_string(l.path.to_string_lossy().into_owned())),
            log_tail: log.map(|l| l.tail.clone()).unwrap_or_default().into(),
        }
    }
}

impl spfs_autostart_error {
    /// A failure of the C boundary itself (`code` 100 and up): no log.
    pub(super) fn plain(code: spfs_autostart_result, message: String) -> Self {
        spfs_autostart_error {
            code,
            message: c_string(message),
            log_file: None,
            log_tail: Default::default(),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;
    use crate::capi::{spfs_autostart_string_array_get, spfs_autostart_string_array_len};
    use spfs_autostart_core::{Error, ErrorKind, LogExcerpt};

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
}
