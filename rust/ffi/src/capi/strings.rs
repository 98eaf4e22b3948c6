//! `struct spfs_autostart_string_array`: owned lists of strings, and the
//! conversion of Rust strings to C ones.

use std::ffi::{CString, c_char};
use std::ptr;

use super::{guard, take};

/// An owned list of strings. Free it with `spfs_autostart_string_array_free`
/// when a function gave it to you; one borrowed from another handle (a
/// status's warnings, an error's log tail) lives as long as that handle.
#[derive(Debug, Default)]
pub struct spfs_autostart_string_array {
    pub(super) items: Vec<CString>,
}

/// A C string from text that may hold NULs (replaced, never truncated).
pub(super) fn c_string(s: String) -> CString {
    CString::new(s).unwrap_or_else(|e| {
        let text = String::from_utf8_lossy(&e.into_vec()).replace('\0', "\u{FFFD}");
        CString::new(text).unwrap_or_default()
    })
}

/// A borrowed C string, or NULL.
pub(super) fn opt_str(s: Option<&CString>) -> *const c_char {
    s.map_or(ptr::null(), |s| s.as_ptr())
}

impl From<Vec<String>> for spfs_autostart_string_array {
    fn from(items: Vec<String>) -> Self {
        spfs_autostart_string_array {
            items: items.into_iter().map(c_string).collect(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_with_nul_are_kept_whole() {
        assert_eq!(c_string("a\0b".into()).to_str().unwrap(), "a\u{FFFD}b");
    }
}
