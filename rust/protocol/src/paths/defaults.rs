//! The default state and log dirs, per platform and context, and the
//! other default state dirs a service of this user may be running in.

use std::path::{Path, PathBuf};

use super::check_private_dir;

/// The per-user state dir: the user's temporary dir on macOS (asked of the
/// system, so cron, ssh and `sudo -u` find the same one; `$TMPDIR` when the
/// system does not say), else `$XDG_RUNTIME_DIR/spfs-autostart`, else
/// `/run/user/<uid>/spfs-autostart` (each only when that dir is ours), else
/// `/tmp/spfs-autostart-<uid>`; `SPFS_AUTOSTART_STATE_DIR` overrides.
pub fn default_state_dir(env: &impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = env(crate::env::STATE_DIR) {
        return PathBuf::from(dir);
    }
    default_state_dir_candidates(env)
        .into_iter()
        .next()
        .unwrap_or_else(fallback_state_dir)
}

/// Every state dir the default may be in some context of this user, the
/// one this context uses first: `XDG_RUNTIME_DIR` (Linux) and `TMPDIR`
/// (macOS) differ between a login session, cron, ssh and `sudo -u`.
fn default_state_dir_candidates(env: &impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    #[cfg(target_os = "macos")]
    {
        if let Some(tmp) = darwin_user_temp_dir() {
            dirs.push(tmp.join("spfs-autostart"));
        }
        if let Some(tmp) = env("TMPDIR").filter(|d| d.starts_with('/')) {
            dirs.push(PathBuf::from(tmp).join("spfs-autostart"));
        }
    }
    #[cfg(not(target_os = "macos"))]
    {
        // `XDG_RUNTIME_DIR`, then where a login session's usually is, for
        // contexts that lack the variable (cron, `sudo -u`); each only when
        // it is a directory of ours (`su` keeps the other user's variable).
        use std::os::unix::fs::MetadataExt;
        let uid = crate::sys::my_uid();
        let runtime = env("XDG_RUNTIME_DIR").filter(|d| d.starts_with('/'));
        for dir in runtime
            .map(PathBuf::from)
            .into_iter()
            .chain([PathBuf::from(format!("/run/user/{uid}"))])
        {
            if std::fs::metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
                dirs.push(dir.join("spfs-autostart"));
            }
        }
    }
    dirs.push(fallback_state_dir());
    let mut unique = Vec::new();
    for dir in dirs {
        if !unique.contains(&dir) {
            unique.push(dir);
        }
    }
    unique
}

fn fallback_state_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/spfs-autostart-{}", crate::sys::my_uid()))
}

/// The user's own temporary dir, as the system names it whatever the
/// environment (`confstr(_CS_DARWIN_USER_TEMP_DIR)`).
#[cfg(target_os = "macos")]
fn darwin_user_temp_dir() -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: confstr writes at most `buf.len()` bytes, NUL included.
    let len = unsafe {
        libc::confstr(
            libc::_CS_DARWIN_USER_TEMP_DIR,
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if len == 0 || len > buf.len() {
        return None;
    }
    let path = std::ffi::OsStr::from_bytes(&buf[..len - 1]);
    // It ends with '/'; PathBuf drops that when joining.
    Some(PathBuf::from(path)).filter(|p| p.is_absolute())
}

/// Default state dirs other than `current` in which a service of this user
/// runs now (its `instance.lock` is held): started from a context whose
/// `XDG_RUNTIME_DIR` or `TMPDIR` differed. Two such services share one log,
/// and each one's rotation moves the other's live log. Only private dirs
/// (ours, `0700`) are looked into.
pub fn live_instances_elsewhere(current: &Path) -> Vec<PathBuf> {
    live_among(
        default_state_dir_candidates(&crate::env::process_env),
        current,
    )
}

pub(super) fn live_among(candidates: Vec<PathBuf>, current: &Path) -> Vec<PathBuf> {
    candidates
        .into_iter()
        .filter(|dir| dir != current)
        .filter(|dir| {
            check_private_dir(dir, "state dir").is_ok()
                && crate::lock::is_held(&dir.join(super::INSTANCE_LOCK)).unwrap_or(false)
        })
        .collect()
}

/// The per-user log dir: `~/Library/Logs/spfs-autostart` on macOS, else
/// `$XDG_STATE_HOME/spfs-autostart` (`~/.local/state/...`);
/// `SPFS_AUTOSTART_LOG_DIR` overrides.
pub fn default_log_dir(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(dir) = env(crate::env::LOG_DIR) {
        return Some(PathBuf::from(dir));
    }
    let home = env("HOME").map(PathBuf::from);
    if cfg!(target_os = "macos") {
        return Some(home?.join("Library/Logs/spfs-autostart"));
    }
    match env("XDG_STATE_HOME").filter(|d| d.starts_with('/')) {
        Some(dir) => Some(PathBuf::from(dir).join("spfs-autostart")),
        None => Some(home?.join(".local/state/spfs-autostart")),
    }
}
