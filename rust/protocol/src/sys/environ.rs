//! Another process's environment, as it started: `/proc/PID/environ`
//! (Linux) or `sysctl(KERN_PROCARGS2)` (macOS). Readable for a process of
//! the same user; a client reads the `SPFS_AUTOSTART_*` variables a spawner
//! gave a service to tell which state dir started it.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// The environment a process started with (one that changes its own
/// environment later may show the change on Linux, not on macOS), read
/// once for any number of variables.
#[derive(Debug)]
pub struct ProcessEnv(Vec<u8>);

impl ProcessEnv {
    /// The environment of `pid`; `None` when the process is gone or not
    /// ours to read.
    pub fn of(pid: u32) -> Option<ProcessEnv> {
        environment_block(pid).map(ProcessEnv)
    }

    /// The value of `name`; `None` when it is unset.
    pub fn var(&self, name: &str) -> Option<OsString> {
        let prefix = [name.as_bytes(), b"="].concat();
        self.0
            .split(|&b| b == 0)
            .find_map(|entry| entry.strip_prefix(prefix.as_slice()))
            .map(|value| OsString::from_vec(value.to_vec()))
    }
}

/// The environment as NUL-separated `NAME=value` entries.
#[cfg(target_os = "linux")]
fn environment_block(pid: u32) -> Option<Vec<u8>> {
    super::kernel_pid(pid)?;
    std::fs::read(format!("/proc/{pid}/environ")).ok()
}

/// The environment as NUL-separated `NAME=value` entries.
#[cfg(target_os = "macos")]
fn environment_block(pid: u32) -> Option<Vec<u8>> {
    let pid = super::kernel_pid(pid)?;
    let mut argmax: libc::c_int = 0;
    let mut size = std::mem::size_of::<libc::c_int>();
    let mut mib = [libc::CTL_KERN, libc::KERN_ARGMAX];
    // SAFETY: `mib` names a c_int value; `argmax` and `size` are writable
    // and `size` holds the size of `argmax`.
    let got = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            2,
            (&mut argmax as *mut libc::c_int).cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    if got != 0 || argmax <= 0 {
        return None;
    }
    let mut buf = vec![0u8; argmax as usize];
    let mut size = buf.len();
    let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid.as_raw()];
    // SAFETY: `buf` is writable for `size` bytes; the kernel writes at most
    // that many and sets `size` to what it wrote.
    let got = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            3,
            buf.as_mut_ptr().cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    if got != 0 {
        return None;
    }
    buf.truncate(size);
    environment_of_procargs(&buf)
}

/// No way to read another process's environment here.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn environment_block(_pid: u32) -> Option<Vec<u8>> {
    None
}

/// The environment part of a `KERN_PROCARGS2` buffer: `argc` (a native
/// `int`), the executable's path, NUL padding, `argc` arguments, then the
/// environment's entries up to an empty one. Plain parsing, built on every
/// platform so its tests run on Linux.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub(crate) fn environment_of_procargs(buf: &[u8]) -> Option<Vec<u8>> {
    let (argc, rest) = buf.split_at_checked(std::mem::size_of::<i32>())?;
    let argc = i32::from_ne_bytes(argc.try_into().ok()?);
    let argc = usize::try_from(argc).ok()?;
    // The executable's path, then its padding.
    let path_end = rest.iter().position(|&b| b == 0)?;
    let mut rest = &rest[path_end..];
    let start = rest.iter().position(|&b| b != 0)?;
    rest = &rest[start..];
    for _ in 0..argc {
        let end = rest.iter().position(|&b| b == 0)?;
        rest = &rest[end + 1..];
    }
    // Entries until the first empty one (what follows is the kernel's
    // own, after the terminator).
    let mut len = 0;
    for entry in rest
        .split(|&b| b == 0)
        .take_while(|entry| !entry.is_empty())
    {
        len += entry.len() + 1;
    }
    Some(rest[..len.min(rest.len())].to_vec())
}
