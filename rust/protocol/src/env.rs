//! The environment: the names of the variables a client reads and a spawner
//! passes to the service, and how they are read.

use std::time::Duration;

/// A config file to read instead of the per-user one.
pub const CONFIG: &str = "SPFS_AUTOSTART_CONFIG";
/// Overrides `state_dir`. Also given to the service by the spawner.
pub const STATE_DIR: &str = "SPFS_AUTOSTART_STATE_DIR";
/// Overrides `log_dir`.
pub const LOG_DIR: &str = "SPFS_AUTOSTART_LOG_DIR";
/// Overrides `program`.
pub const PROGRAM: &str = "SPFS_AUTOSTART_PROGRAM";
/// Overrides `endpoint`. Also given to the service by the spawner.
pub const ENDPOINT: &str = "SPFS_AUTOSTART_ENDPOINT";
/// Overrides `idle_timeout_secs`. Also given to the service by the spawner.
pub const IDLE_TIMEOUT_SECS: &str = "SPFS_AUTOSTART_IDLE_TIMEOUT_SECS";
/// Overrides `ready_timeout_secs`.
pub const READY_TIMEOUT_SECS: &str = "SPFS_AUTOSTART_READY_TIMEOUT_SECS";
/// Given to the service: the write end of the readiness pipe.
pub const READY_FD: &str = "SPFS_AUTOSTART_READY_FD";
/// Given to the service: the descriptor holding `instance.lock`.
pub const LOCK_FD: &str = "SPFS_AUTOSTART_LOCK_FD";
/// Given to the service: which start this is. The kit writes it into the
/// record, so a spawner can tell its own service's daemon from any other.
pub const SPAWN_ID: &str = "SPFS_AUTOSTART_SPAWN_ID";
/// spfs-fuse-macos's own listen address; overrides the default TCP endpoint.
pub const MACFUSE_LISTEN_ADDRESS: &str = "SPFS_MACFUSE_LISTEN_ADDRESS";

/// The longest idle timeout we accept (30 days); use 0 for "never".
pub const MAX_IDLE_TIMEOUT_SECS: u64 = 30 * 24 * 3600;

/// The idle timeout a service gets when nobody sets one: 30 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(1800);

/// Whether `name` is a portable environment variable name (letters, digits
/// and `_`, not starting with a digit): one every shell, launchd and systemd
/// take. The one rule for names in `[env]`, `endpoint_env` and agent files.
pub fn is_portable_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The process environment as the configuration reads it: empty values
/// count as unset, and an unset `HOME` (`env -i`, some daemons) falls back
/// to the user's home directory in the password database. A `HOME` that is
/// set but unusable (relative, or not UTF-8) counts as unset *without* that
/// fallback: the user meant another directory, and nothing is written to
/// the one in the database instead.
pub fn process_env(name: &str) -> Option<String> {
    if name == "HOME"
        && let Some(home) = std::env::var_os(name).filter(|v| !v.is_empty())
    {
        return home
            .to_str()
            .filter(|h| h.starts_with('/'))
            .map(str::to_string);
    }
    let value = std::env::var(name).ok().filter(|v| !v.is_empty());
    if value.is_none() && name == "HOME" {
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(crate::sys::my_uid()))
            .ok()??;
        return Some(user.dir.to_str()?.to_string()).filter(|d| d.starts_with('/'));
    }
    value
}

/// A whole number of seconds as a variable's text gives it, or why it is
/// refused: not a number, or more than any timeout could be.
pub fn parse_secs(text: &str) -> Result<u64, String> {
    text.trim().parse().map_err(|e: std::num::ParseIntError| {
        if *e.kind() == std::num::IntErrorKind::PosOverflow {
            format!("{text:?} seconds is too large")
        } else {
            format!("{text:?} is not a whole number of seconds")
        }
    })
}

/// An idle timeout of `secs` seconds (0 for never), or why it is refused:
/// how the kit reads [`IDLE_TIMEOUT_SECS`]. The client checks
/// `idle_timeout_secs` against the same [`MAX_IDLE_TIMEOUT_SECS`], in the
/// same words, so both accept the same values.
pub fn idle_timeout(secs: u64) -> Result<Duration, String> {
    if secs > MAX_IDLE_TIMEOUT_SECS {
        return Err(format!(
            "{secs} seconds is too large; use at most {MAX_IDLE_TIMEOUT_SECS} (0 means never)"
        ));
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_too_large_for_any_timeout_are_called_too_large_not_a_non_number() {
        assert_eq!(parse_secs(" 30 "), Ok(30));
        let huge = parse_secs("99999999999999999999999").unwrap_err();
        assert!(huge.contains("too large"), "{huge}");
        let word = parse_secs("soon").unwrap_err();
        assert!(word.contains("not a whole number"), "{word}");
        let negative = parse_secs("-5").unwrap_err();
        assert!(negative.contains("not a whole number"), "{negative}");
    }
}
