//! Where the process starts. On Linux that is C's `main`, in place of
//! std's wrapper around a Rust `fn main` (`#![no_main]` in `main.rs`);
//! elsewhere std's `main` calls [`run`].
//!
//! Before a Rust `main` runs, std's wrapper looks up the main thread's
//! stack guard, for its "has overflowed its stack" message. On Linux, glibc
//! finds the main thread's stack by reading and parsing `/proc/self/maps`,
//! which was a tenth of a fresh `ensure` (about 0.1 ms of 1 ms; README,
//! "Performance"), and every shell runs one. So on Linux the CLI enters
//! here and does itself what it needs of the wrapper:
//! - SIGPIPE ignored, so that printing to a reader that has gone is an
//!   error the CLI handles;
//! - closed standard descriptors opened on `/dev/null`, so that no file the
//!   CLI opens takes the place of stdout;
//! - the arguments read from C's `argv`;
//! - a panic ends the process with exit code 101, after the panic hook has
//!   printed its message, and the process ends through `std::process::exit`
//!   (stdout flushed), as std's wrapper ends it.
//!
//! What it gives up there: a stack overflow ends the process by SIGSEGV
//! without std's message, and a panic's message names the main thread
//! `<unnamed>`. On macOS, where the product runs, std's start-up asks the
//! system for the stack's bounds, which costs next to nothing: it stays,
//! with its message and the thread's name in crash reports.

use std::ffi::OsString;
#[cfg(target_os = "linux")]
use std::ffi::{CStr, c_char, c_int};
#[cfg(target_os = "linux")]
use std::os::unix::ffi::OsStringExt;

/// The process's entry on Linux, called by the C runtime. (Under `cargo
/// test` the test harness has the `main`: this one is then an ordinary
/// function.)
#[cfg(target_os = "linux")]
#[cfg_attr(not(test), unsafe(no_mangle))]
#[cfg_attr(test, allow(dead_code))]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    spfs_autostart::ignore_broken_pipe_signal();
    spfs_autostart::open_closed_stdio();
    // SAFETY: the C runtime calls `main` with `argc` strings in `argv`,
    // which live as long as the process.
    let args = unsafe { arguments(argc, argv) };
    run(args)
}

/// Run the CLI on `args` (the program's name first) and end the process
/// with its exit code: 101 after a panic, whose message the panic hook has
/// printed.
pub(crate) fn run(args: Vec<OsString>) -> ! {
    // Past a file size limit (`ulimit -f`), a write fails with EFBIG, which
    // is reported, instead of ending this process without a word.
    spfs_autostart::ignore_file_size_signal();
    let code = std::panic::catch_unwind(|| crate::cli_main(args)).map_or(101, |code| code.0);
    std::process::exit(i32::from(code))
}

/// A process's exit status: std's `ExitCode` keeps its number to itself,
/// and C's `main` has to return it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExitCode(u8);

impl ExitCode {
    /// Success: 0.
    pub(crate) const SUCCESS: ExitCode = ExitCode(0);
    /// Failure: 1.
    pub(crate) const FAILURE: ExitCode = ExitCode(1);
}

impl From<u8> for ExitCode {
    fn from(code: u8) -> ExitCode {
        ExitCode(code)
    }
}

/// The arguments C's `main` was given, the program's name first; bytes as
/// they are (`OsString`), as `std::env::args_os` gives them.
///
/// # Safety
///
/// `argv` is null or points to `argc` pointers, each null or pointing to a
/// NUL-terminated string, all valid while this runs: what C's `main` is
/// given. A null pointer ends the list, as C's `argv[argc]` does.
#[cfg(target_os = "linux")]
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    let count = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() || count == 0 {
        return Vec::new();
    }
    // SAFETY: `argv` points to `count` pointers (the caller's contract).
    let pointers = unsafe { std::slice::from_raw_parts(argv, count) };
    pointers
        .iter()
        .take_while(|pointer| !pointer.is_null())
        // SAFETY: each non-null pointer is a NUL-terminated string (the
        // caller's contract); its bytes are copied out.
        .map(|&pointer| OsString::from_vec(unsafe { CStr::from_ptr(pointer) }.to_bytes().to_vec()))
        .collect()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::ffi::{CString, OsString, c_char, c_int};
    use std::os::unix::ffi::OsStringExt;

    use super::arguments;

    #[test]
    fn the_arguments_are_read_from_argv_as_they_are_and_up_to_a_null() {
        let words: Vec<CString> = [&b"spfs-autostart"[..], b"ensure", b"--config=caf\xe9"]
            .iter()
            .map(|word| CString::new(*word).unwrap())
            .collect();
        let mut argv: Vec<*const c_char> = words.iter().map(|word| word.as_ptr()).collect();
        argv.push(std::ptr::null());
        let expected: Vec<OsString> = words
            .iter()
            .map(|word| OsString::from_vec(word.as_bytes().to_vec()))
            .collect();
        let argc = c_int::try_from(words.len()).unwrap();
        // SAFETY: `argv` holds `argc` strings and a null, alive here.
        assert_eq!(unsafe { arguments(argc, argv.as_ptr()) }, expected);
        // A null before `argc` ends the list, as C's `argv[argc]` does.
        // SAFETY: as above, with a count one past the strings, at the null.
        assert_eq!(unsafe { arguments(argc + 1, argv.as_ptr()) }, expected);
        // SAFETY: a null `argv` is allowed.
        assert!(unsafe { arguments(2, std::ptr::null()) }.is_empty());
    }
}
