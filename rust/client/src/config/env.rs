//! The environment variables the client reads and gives the service (the
//! protocol's names), and how they override the file: each one names the
//! key it overrides, and a bad value is refused naming the variable.

use std::path::PathBuf;

use super::validate::{self, bound};
use super::{Config, Endpoint};
use crate::error::{Error, ErrorKind, Result};

// The names are the protocol's: the spawner gives some of them to the
// service, and the kit reads them.
pub use spfs_autostart_protocol::env::*;

/// Each variable that overrides a key of the file, with that key.
/// `SPFS_MACFUSE_LISTEN_ADDRESS` also moves a TCP `endpoint`, but only when
/// `SPFS_AUTOSTART_ENDPOINT` does not set it.
pub const OVERRIDES: [(&str, &str); 6] = [
    (PROGRAM, "program"),
    (ENDPOINT, "endpoint"),
    (STATE_DIR, "state_dir"),
    (LOG_DIR, "log_dir"),
    (IDLE_TIMEOUT_SECS, "idle_timeout_secs"),
    (READY_TIMEOUT_SECS, "ready_timeout_secs"),
];

/// Whether the variable `name` overrides one of `keys` (spfs-fuse-macos's
/// overrides `endpoint`).
pub(super) fn overrides_one_of(name: &str, keys: &[&str]) -> bool {
    (name == MACFUSE_LISTEN_ADDRESS && keys.contains(&"endpoint"))
        || OVERRIDES
            .iter()
            .any(|(var, key)| *var == name && keys.contains(key))
}

/// The variables every start sets for the service (the spawner, and the
/// agent's plist and units), with the key each comes from: `[env]` cannot
/// set them, as they would be replaced.
pub const SET_FOR_EACH_START: [(&str, Option<&str>); 7] = [
    (STATE_DIR, Some("state_dir")),
    (LOG_DIR, Some("log_dir")),
    (ENDPOINT, Some("endpoint")),
    (IDLE_TIMEOUT_SECS, Some("idle_timeout_secs")),
    (READY_FD, None),
    (LOCK_FD, None),
    (SPAWN_ID, None),
];

/// Refuse a variable the config reads (`SPFS_AUTOSTART_CONFIG`, those of
/// [`OVERRIDES`], spfs-fuse-macos's) whose value is not UTF-8 text, as
/// `var_os` reads it: no such value is a path or a number the config
/// takes, and reading it as unset would quietly use another directory.
pub(super) fn refuse_non_text(var_os: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<()> {
    let names = [CONFIG, MACFUSE_LISTEN_ADDRESS]
        .into_iter()
        .chain(OVERRIDES.iter().map(|(name, _)| *name));
    for name in names {
        if let Some(value) = var_os(name)
            && value.to_str().is_none()
        {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "environment variable {name}: {value:?} is not UTF-8 text; give it a UTF-8 \
                     value, or unset it"
                ),
            ));
        }
    }
    Ok(())
}

impl Config {
    /// Apply the `SPFS_AUTOSTART_*` overrides, each checked by the same rule
    /// as its key in the file.
    pub(super) fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<()> {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        // The fix is in the environment, which the message names: the
        // value, or unsetting it for the config file's.
        let bad = |name: &str, why: String| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "environment variable {name}: {why}; fix its value, or unset it to use \
                     the config file's"
                ),
            )
        };
        if let Some(program) = get(PROGRAM) {
            self.program = validate::program(&program).map_err(|w| bad(PROGRAM, w))?;
        }
        // Whether spfs-fuse-macos's variable moved the endpoint.
        let mut macfuse_moved = false;
        if let Some(endpoint) = get(ENDPOINT) {
            self.endpoint = endpoint.parse().map_err(|w| bad(ENDPOINT, w))?;
        } else if let (Endpoint::Tcp(_), Some(addr)) = (&self.endpoint, get(MACFUSE_LISTEN_ADDRESS))
        {
            // spfs-fuse-macos reads the same variable, so both sides agree.
            // The same rules as a `tcp://` endpoint (port 0 and addresses
            // other machines reach refused), said of the variable that set
            // it.
            self.endpoint = format!("tcp://{addr}")
                .parse()
                .map_err(|_| {
                    format!(
                        "{addr:?} is not a loopback IP:PORT address with a port other than 0 \
                         (such as 127.0.0.1:37738)"
                    )
                })
                .map_err(|w| bad(MACFUSE_LISTEN_ADDRESS, w))?;
            macfuse_moved = true;
        }
        if let Some(dir) = get(STATE_DIR) {
            let dir = PathBuf::from(dir);
            validate::absolute_dir(&dir).map_err(|w| bad(STATE_DIR, w))?;
            self.state_dir = Some(dir);
        }
        if let Some(dir) = get(LOG_DIR) {
            let dir = PathBuf::from(dir);
            validate::absolute_dir(&dir).map_err(|w| bad(LOG_DIR, w))?;
            self.log_dir = Some(dir);
        }
        for (name, index, field) in [
            (
                IDLE_TIMEOUT_SECS,
                bound::IDLE_TIMEOUT_SECS,
                &mut self.idle_timeout,
            ),
            (
                READY_TIMEOUT_SECS,
                bound::READY_TIMEOUT_SECS,
                &mut self.ready_timeout,
            ),
        ] {
            if let Some(text) = get(name) {
                let secs = parse_secs(&text)
                    .and_then(|secs| validate::check_bound(index, secs))
                    .map_err(|w| bad(name, w))?;
                *field = std::time::Duration::from_secs(secs);
            }
        }
        // Every value above was accepted; record which variables set one.
        self.env_overrides = OVERRIDES
            .into_iter()
            .filter(|(name, _)| get(name).is_some())
            .collect();
        if macfuse_moved {
            self.env_overrides
                .push((MACFUSE_LISTEN_ADDRESS, "endpoint"));
        }
        Ok(())
    }

    /// The caller has set `key` itself: no variable overrides it any more.
    pub(super) fn set_by_caller(&mut self, key: &str) {
        self.env_overrides.retain(|&(_, k)| k != key);
    }
}
