//! `struct spfs_autostart`: the manager handle and the calls that act on
//! the service (ensure, status, stop, tail the log), and the stop-method
//! enum.

use std::ffi::{c_char, c_int};
use std::path::Path;
use std::sync::Arc;

// The type only: the function of the same name is defined here.
use super::status::spfs_autostart_status;
use super::{
    borrow, boundary, give, guard, out_ptr, spfs_autostart_error, spfs_autostart_result,
    spfs_autostart_string_array, take, utf8,
};
use crate::api::{ServiceStatus, StopMethod, StopReport};
use crate::process::PerProcess;
use crate::runtime::{block_on, on_a_thread_of_its_own};

/// A manager for one service. Create it with `spfs_autostart_new`, free it
/// with `spfs_autostart_free`. Safe to share between threads.
#[derive(Debug)]
pub struct spfs_autostart {
    core: PerProcess,
}

/// Create a manager. `config_path` names a TOML config file, or is NULL for
/// the usual lookup (`SPFS_AUTOSTART_CONFIG`, then the per-user file when it
/// exists). Either way the `SPFS_AUTOSTART_*` variables then override what
/// the file says, as for every front end (defaults, file, environment). A file that cannot be read or parsed
/// gives `SPFS_AUTOSTART_RESULT_INVALID_CONFIG`. Touches nothing on disk but
/// the config file. The first call that needs the library's thread (every
/// call but an `ensure` that finds the service serving) starts it.
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
        // The config file is parsed recursively (nested arrays): not on
        // the caller's stack, which may be a small C thread's. The
        // library's runtime is left to the first call that needs it: an
        // `ensure` of a service that serves needs none (the quick look).
        let core =
            on_a_thread_of_its_own(|| PerProcess::new(spfs_autostart_core::Config::load(path)?))?;
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
/// answers or fails, at most about `ready_timeout_secs` (longer only when it
/// first waits for another process's stop, or replaces a service of another
/// version: then also up to the stop sequence's time). It cannot be
/// cancelled: call it from a thread that may block that long. Exactly one
/// service starts however many threads and processes call this at once.
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
            // A service that already serves is found with one round trip
            // and no runtime (the core's quick look), on a thread of the
            // library's own: the caller's may be a C thread whose small
            // stack the look does not fit (the C test's 16 KiB). A manager
            // that keeps a connection needs no look, nor its thread.
            let quick = if core.is_connected() {
                None
            } else {
                on_a_thread_of_its_own(|| core.ensure_if_serving())
            };
            match quick {
                Some(status) => Ok(status),
                None => block_on(move || async move { core.ensure().await }),
            }
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
            block_on(move || async move { core.status().await })
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

/// How `spfs_autostart_stop_how` found the service ended. An `int32_t` in C.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum spfs_autostart_stop_method {
    /// Nothing was running; nothing was done.
    NotRunning = 0,
    /// It shut down when asked: over RPC, or by its graceful signal (SIGINT
    /// for spfs-fuse-macos; SIGTERM or SIGINT for a kit service).
    Graceful = 1,
    /// A signal that is not its graceful exit ended it (SIGTERM for
    /// spfs-fuse-macos): it had not exited within the stop timeout, or
    /// `stop_sequence` starts there. It may have left things behind.
    Terminated = 2,
    /// It had to be killed with SIGKILL.
    Killed = 3,
}

impl From<Option<StopMethod>> for spfs_autostart_stop_method {
    fn from(how: Option<StopMethod>) -> Self {
        match how {
            None => spfs_autostart_stop_method::NotRunning,
            Some(StopMethod::Graceful) => spfs_autostart_stop_method::Graceful,
            Some(StopMethod::Terminated) => spfs_autostart_stop_method::Terminated,
            Some(StopMethod::Killed) => spfs_autostart_stop_method::Killed,
        }
    }
}

/// Stop the service (its stop sequence, graceful first, SIGKILL last); blocks until it
/// is gone: up to `stop_timeout_secs` for each step (and, first, as long as
/// a start in progress elsewhere takes). It cannot be cancelled. On success `*stopped_out` is 1 when a service was stopped and 0
/// when none was running (`spfs_autostart_stop_how` also says how it
/// ended). `mgr` and `stopped_out` must not be NULL; `err` may be.
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
        let stopped_out = out_ptr(stopped_out, "stopped_out")?;
        let how = stop_how(mgr)?;
        // SAFETY: `stopped_out` was checked.
        unsafe { *stopped_out = c_int::from(how != spfs_autostart_stop_method::NotRunning) };
        Ok(())
    })
}

/// Stop the service, as `spfs_autostart_stop`, and say how it ended: on
/// success `*how_out` is `SPFS_AUTOSTART_STOP_METHOD_NOT_RUNNING` (0) when
/// none was running, else the step that ended it (`GRACEFUL`, `TERMINATED`
/// or `KILLED`; a service terminated or killed may have left things behind,
/// spfs-fuse-macos its mount). `mgr` and `how_out` must not be NULL; `err`
/// may be.
///
/// # Safety
/// `mgr` is NULL or a live manager; `how_out` and `err` are NULL or valid
/// for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spfs_autostart_stop_how(
    mgr: *const spfs_autostart,
    how_out: *mut spfs_autostart_stop_method,
    err: *mut *mut spfs_autostart_error,
) -> spfs_autostart_result {
    boundary(err, || {
        let how_out = out_ptr(how_out, "how_out")?;
        let how = stop_how(mgr)?;
        // SAFETY: `how_out` was checked.
        unsafe { *how_out = how };
        Ok(())
    })
}

/// Stop the service of `mgr` (NULL or a live manager) and say how.
fn stop_how(
    mgr: *const spfs_autostart,
) -> Result<spfs_autostart_stop_method, spfs_autostart_error> {
    // SAFETY: the callers' contract.
    let mgr = unsafe { borrow(mgr, "mgr") }?;
    let core = mgr.core.get()?;
    let report = StopReport::from(block_on(move || async move { core.stop().await })?);
    Ok(spfs_autostart_stop_method::from(report.how))
}

/// The last `n` lines of the service log, oldest first; works when the
/// service is not running (a missing log gives no lines). At most the log's
/// last 4 MiB are read, however large `n` is: lines before that are not
/// given (the CLI's `logs -n` prints any number).
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

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, CString};
    use std::ptr;

    use super::*;
    use crate::capi::{spfs_autostart_error_free, spfs_autostart_error_message};

    fn message(err: *const spfs_autostart_error) -> String {
        // SAFETY: a live error from this library.
        let p = unsafe { spfs_autostart_error_message(err) };
        // SAFETY: the message is a NUL-terminated string owned by `err`.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string()
    }

    /// A config in `dir` whose program does not exist, so `ensure` fails
    /// with `BinaryNotFound` having started nothing.
    fn missing_program_config(dir: &std::path::Path) -> CString {
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "program = \"spfs-autostart-no-such-program\"\nstate_dir = \"{0}/state\"\nlog_dir = \"{0}/log\"\n",
                dir.display()
            ),
        )
        .unwrap();
        // The C ABI reads the environment's overrides, as it must; a
        // caller's (SPFS_AUTOSTART_PROGRAM, _STATE_DIR ...) would make
        // these tests start a real service in the caller's state dir.
        // scripts/check clears them; here the library names any left.
        let overrides = spfs_autostart_core::Config::load(Some(&config))
            .unwrap()
            .env_overrides;
        assert!(
            overrides.is_empty(),
            "the environment sets {overrides:?}: unset those variables to run this test"
        );
        CString::new(config.to_str().unwrap()).unwrap()
    }

    /// A manager for the config at `path`.
    fn new_manager(path: &CString) -> *mut spfs_autostart {
        let mut mgr = ptr::null_mut();
        let mut err = ptr::null_mut();
        // SAFETY: a valid C string and out-pointers.
        let result = unsafe { spfs_autostart_new(path.as_ptr(), &mut mgr, &mut err) };
        assert_eq!(result, spfs_autostart_result::Ok);
        mgr
    }

    /// `spfs_autostart_ensure` on `mgr`, which must fail with
    /// `BinaryNotFound`.
    fn ensure_finds_no_program(mgr: *const spfs_autostart) {
        let mut status = ptr::null_mut();
        let mut err = ptr::null_mut();
        // SAFETY: a live manager and valid out-pointers; the error is freed once.
        unsafe {
            assert_eq!(
                spfs_autostart_ensure(mgr, &mut status, &mut err),
                spfs_autostart_result::BinaryNotFound
            );
            assert!(status.is_null());
            assert!(message(err).contains("looked in"));
            spfs_autostart_error_free(err);
        }
    }

    #[test]
    fn blocking_calls_work_from_inside_a_tokio_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // Removed when dropped, a failed assertion included.
            let tmp = tempfile::tempdir().unwrap();
            let mgr = new_manager(&missing_program_config(tmp.path()));
            ensure_finds_no_program(mgr);
            // SAFETY: made above, freed once.
            unsafe { spfs_autostart_free(mgr) };
        });
    }

    /// A call from a thread with a 32 KiB stack (a C host's choice): it
    /// crashed when the call's future was polled, or the runtime built, on
    /// the caller's stack. Under nextest (a process per test) it is also the
    /// process's first call, which builds the runtime.
    #[test]
    fn a_call_from_a_thread_with_a_small_stack_works() {
        let tmp = tempfile::tempdir().unwrap();
        // Made here: reading the config is not what is tested.
        let mgr = new_manager(&missing_program_config(tmp.path())) as usize;
        std::thread::Builder::new()
            .stack_size(32 * 1024)
            .spawn(move || ensure_finds_no_program(mgr as *const spfs_autostart))
            .unwrap()
            .join()
            .unwrap();
        // SAFETY: made above, freed once, after the thread is done with it.
        unsafe { spfs_autostart_free(mgr as *mut spfs_autostart) };
    }

    /// A config file with deeply nested arrays, read by `spfs_autostart_new`
    /// on a 32 KiB thread: refused as a bad config (it crashed the host,
    /// parsed recursively on the caller's stack).
    #[test]
    fn new_on_a_small_stack_refuses_a_deeply_nested_config() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("nested.toml");
        std::fs::write(
            &config,
            format!("args = {}{}\n", "[".repeat(60), "]".repeat(60)),
        )
        .unwrap();
        let path = CString::new(config.to_str().unwrap()).unwrap();
        let result = std::thread::Builder::new()
            .stack_size(32 * 1024)
            .spawn(move || {
                let mut mgr = ptr::null_mut();
                let mut err = ptr::null_mut();
                // SAFETY: a valid C string and out-pointers; the error is freed once.
                unsafe {
                    let result = spfs_autostart_new(path.as_ptr(), &mut mgr, &mut err);
                    assert!(mgr.is_null());
                    spfs_autostart_error_free(err);
                    result
                }
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(result, spfs_autostart_result::InvalidConfig);
    }
}
