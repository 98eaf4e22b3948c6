//! `struct spfs_autostart_error`: a failure's code, message, log and
//! remedies, made from the core's error, and its accessors.

use std::ffi::{CString, c_char};
use std::ptr;

use super::remedy::CRemedy;
use super::{
    c_string, guard, opt_str, spfs_autostart_operation, spfs_autostart_remedy,
    spfs_autostart_result, spfs_autostart_string_array, take,
};

/// A failure: its code, message, what fixes it and, when the service's log
/// says more (a failed start, a service that does not answer), the log
/// file and its last lines. Free it with
/// `spfs_autostart_error_free`.
#[derive(Debug)]
pub struct spfs_autostart_error {
    pub(super) code: spfs_autostart_result,
    pub(super) message: CString,
    pub(super) log_file: Option<CString>,
    pub(super) log_tail: spfs_autostart_string_array,
    pub(super) remedies: Vec<CRemedy>,
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
            remedies: e.remedies().iter().map(|&r| r.into()).collect(),
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
            remedies: Vec::new(),
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

/// The service's log file, when the log says more about the failure (a
/// failed start, a service that does not answer); NULL otherwise. Borrowed:
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

/// The last lines of the service log at the time of the failure, when the
/// log says more about it (empty otherwise), oldest first. Borrowed: valid until the error
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

/// How many remedies the error carries: ways to fix it, as data, for a host
/// that words fixes its own way (the message already names them in config
/// keys). 0 for NULL.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_error_remedy_count(
    error: *const spfs_autostart_error,
) -> usize {
    guard(0, || {
        // SAFETY: the caller's contract.
        unsafe { error.as_ref() }.map_or(0, |e| e.remedies.len())
    })
}

/// The kind of remedy `index` (from 0): `SPFS_AUTOSTART_REMEDY_NONE` when
/// `error` is NULL or `index` is out of range.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_error_remedy(
    error: *const spfs_autostart_error,
    index: usize,
) -> spfs_autostart_remedy {
    guard(spfs_autostart_remedy::None, || {
        // SAFETY: the caller's contract.
        remedy_at(unsafe { error.as_ref() }, index).map_or(spfs_autostart_remedy::None, |r| r.kind)
    })
}

/// For a `SPFS_AUTOSTART_REMEDY_SET_KEY` remedy, the config key to change,
/// as the config file spells it; NULL for other remedies. Borrowed: valid
/// until the error is freed.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_error_remedy_key(
    error: *const spfs_autostart_error,
    index: usize,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller's contract.
        opt_str(remedy_at(unsafe { error.as_ref() }, index).and_then(|r| r.key.as_ref()))
    })
}

/// For a `SPFS_AUTOSTART_REMEDY_RUN` remedy, the operation to run;
/// `SPFS_AUTOSTART_OPERATION_NONE` for other remedies.
///
/// # Safety
/// `error` is NULL or a live error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_error_remedy_operation(
    error: *const spfs_autostart_error,
    index: usize,
) -> spfs_autostart_operation {
    guard(spfs_autostart_operation::None, || {
        // SAFETY: the caller's contract.
        remedy_at(unsafe { error.as_ref() }, index)
            .map_or(spfs_autostart_operation::None, |r| r.operation)
    })
}

fn remedy_at(error: Option<&spfs_autostart_error>, index: usize) -> Option<&CRemedy> {
    error?.remedies.get(index)
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
    use spfs_autostart_core::{Error, ErrorKind, LogExcerpt, Operation, Remedy};

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
    fn remedies_read_in_order_and_out_of_range_reads_none() {
        let core = Error::new(ErrorKind::VersionMismatch, "old")
            .with_remedy(Remedy::Run(Operation::Stop))
            .with_remedy(Remedy::SetKey("on_version_mismatch"))
            .with_remedy(Remedy::ConfigFile);
        let e = spfs_autostart_error::from(core);
        let e = &e as *const spfs_autostart_error;
        // SAFETY: `e` is a live error for the whole block; NULL is allowed.
        unsafe {
            assert_eq!(spfs_autostart_error_remedy_count(e), 3);
            assert_eq!(
                spfs_autostart_error_remedy(e, 0),
                spfs_autostart_remedy::Run
            );
            assert_eq!(
                spfs_autostart_error_remedy_operation(e, 0),
                spfs_autostart_operation::Stop
            );
            assert!(spfs_autostart_error_remedy_key(e, 0).is_null());
            assert_eq!(
                spfs_autostart_error_remedy(e, 1),
                spfs_autostart_remedy::SetKey
            );
            let key = CStr::from_ptr(spfs_autostart_error_remedy_key(e, 1));
            assert_eq!(key.to_str().unwrap(), "on_version_mismatch");
            assert_eq!(
                spfs_autostart_error_remedy_operation(e, 1),
                spfs_autostart_operation::None
            );
            assert_eq!(
                spfs_autostart_error_remedy(e, 2),
                spfs_autostart_remedy::ConfigFile
            );
            assert_eq!(
                spfs_autostart_error_remedy(e, 3),
                spfs_autostart_remedy::None
            );
            assert!(spfs_autostart_error_remedy_key(e, 3).is_null());
            assert_eq!(spfs_autostart_error_remedy_count(ptr::null()), 0);
            assert_eq!(
                spfs_autostart_error_remedy(ptr::null(), 0),
                spfs_autostart_remedy::None
            );
        }
    }
}
