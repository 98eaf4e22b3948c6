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

// cbindgen writes the header's functions in the order of these modules:
// the manager's calls, then the accessors of what they return. (One module
// per group, so that rustfmt keeps the order.)
mod manager;

mod error;

mod strings;

mod status;

mod result;

mod remedy;

pub use error::*;
pub use manager::*;
pub use remedy::*;
pub use result::*;
pub use status::*;
pub use strings::*;

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

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

#[cfg(test)]
mod tests {
    use std::ffi::CStr;
    use std::ptr;

    use super::*;

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
}
