//! The TOML file: which one is read, reading it on top of the defaults,
//! and writing the effective configuration back as TOML.

use std::path::{Path, PathBuf};

use super::{Config, ConfigView, env, process_env};
use crate::error::{Error, ErrorKind, Result};
use crate::remedy::Remedy;

/// The most of a config file that is read: far more than any needs, and
/// a bound on what a wrong path (`/dev/zero`, a log) costs.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The bytes of `path`, at most one past [`MAX_CONFIG_BYTES`] of them.
fn read_capped(path: &Path) -> std::io::Result<(Vec<u8>, std::fs::Metadata)> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes)?;
    Ok((bytes, meta))
}

/// A config file names the program to run: one another user owns or can
/// change (any user may write it) would have us run their program as us
/// (`su` and `sudo -E` keep another user's HOME or SPFS_AUTOSTART_CONFIG).
/// Ours, or root's, and (a file) not open to every user's writes; a
/// device or a pipe (`--config /dev/stdin`) is as its owner made it.
fn check_trusted(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let word = crate::shell::word(path);
    let why = if meta.uid() != crate::sys::my_uid() && meta.uid() != 0 {
        format!(
            "config file {} belongs to {}, not to you, and names the program to run as you; \
             use a config file of your own (a copy of {word}, if you trust it)",
            path.display(),
            crate::owner::user_name(meta.uid())
        )
    } else if meta.is_file() && meta.mode() & 0o002 != 0 {
        format!(
            "config file {} can be changed by any user (mode {:o}), and names the program to \
             run as you; `chmod o-w {word}`",
            path.display(),
            meta.mode() & 0o7777
        )
    } else {
        return Ok(());
    };
    Err(Error::new(ErrorKind::PermissionDenied, why).with_remedy(Remedy::ConfigFile))
}

impl Config {
    /// Defaults, then `file` (or `SPFS_AUTOSTART_CONFIG`, or the per-user
    /// config file when it exists), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        Config::load_except(file, &[])
    }

    /// [`Config::load`] for a front end that sets `keys` itself afterwards
    /// (the bindings' fields, the CLI's `--state-dir`): the environment
    /// variables of those keys are not read, as they would be overridden,
    /// so a bad value in one is no error.
    pub fn load_except(file: Option<&Path>, keys: &[&str]) -> Result<Config> {
        let read = |name: &str| !env::overrides_one_of(name, keys);
        env::refuse_non_text(|name| std::env::var_os(name).filter(|_| read(name)))?;
        Config::load_with(file, |name| process_env(name).filter(|_| read(name)))
    }

    /// [`Config::load`] with the environment given as a lookup function, so
    /// tests never depend on the caller's environment.
    pub fn load_with(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let mut config = Config::defaults();
        // Where the path came from, for an error that says what to fix.
        let mut per_user = false;
        let file = match file {
            Some(file) if file.as_os_str().is_empty() => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "the config file's path is empty; give a path, or none for the usual \
                     lookup (SPFS_AUTOSTART_CONFIG, then the per-user file)",
                ));
            }
            Some(file) => Some(file.to_path_buf()),
            None => match env(env::CONFIG).filter(|s| !s.is_empty()) {
                Some(path) => Some(PathBuf::from(path)),
                None => {
                    per_user = true;
                    user_config_file(&env).filter(|p| stands(p))
                }
            },
        };
        if let Some(path) = file {
            // A relative path is read from the current directory; the
            // absolute one is what `config` shows.
            let path = std::path::absolute(&path).unwrap_or(path);
            let (bytes, meta) = read_capped(&path).map_err(|e| {
                // The path is right when the file is there: its permissions
                // are not (a file `sudo` left owned by root).
                let dangling = (e.kind() == std::io::ErrorKind::NotFound)
                    .then(|| std::fs::read_link(&path).ok())
                    .flatten();
                let fix = if e.kind() == std::io::ErrorKind::PermissionDenied {
                    "make it readable by you (a file left by sudo is root's: chown it)".to_string()
                } else if let Some(target) = dangling {
                    format!(
                        "it is a symlink to {}, which is missing: restore that file or \
                         remove the link",
                        target.display()
                    )
                } else if per_user {
                    "fix or remove the per-user config file".to_string()
                } else {
                    format!(
                        "fix the config file's path (the one given, or {})",
                        env::CONFIG
                    )
                };
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!("cannot read config file {}: {e}; {fix}", path.display()),
                )
                .with_remedy(Remedy::ConfigFile)
            })?;
            check_trusted(&path, &meta)?;
            if bytes.len() as u64 > MAX_CONFIG_BYTES {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "config file {} is larger than {} KiB, which no config file of this \
                         tool needs; is it the right file (the one given, or {})?",
                        path.display(),
                        MAX_CONFIG_BYTES / 1024,
                        env::CONFIG
                    ),
                )
                .with_remedy(Remedy::ConfigFile));
            }
            // Read, but not text: the path is right, the content is not.
            let text = String::from_utf8(bytes).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "config file {} is not UTF-8 text; save it as UTF-8",
                        path.display()
                    ),
                )
                .with_remedy(Remedy::ConfigFile)
            })?;
            config.apply_toml(&text, &path)?;
        }
        config.apply_env(&env)?;
        config.validate()?;
        Ok(config)
    }

    /// Apply one TOML document on top of this configuration. Every value
    /// was checked while it was read (see [`ConfigView`]).
    pub fn apply_toml(&mut self, text: &str, origin: &Path) -> Result<()> {
        let view: ConfigView = toml::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("invalid config file {}: {e}", origin.display()),
            )
            // The fix is in the file (the message names the key and line),
            // which the front end may open or name its own way to replace.
            .with_remedy(Remedy::ConfigFile)
        })?;
        self.apply_view(view);
        self.source = Some(origin.to_path_buf());
        Ok(())
    }

    /// The effective configuration as a TOML document that [`Config::load`]
    /// reads back to the same values: [`Config::view`] written as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.view()).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// Whether anything stands at `path`. The per-user file is read when it
/// does, whatever it is: a dangling symlink (a dotfiles checkout not yet
/// cloned) or a directory there is an error that names the path, not a
/// config silently left unread. Only nothing there means the defaults,
/// and so does a parent that is not a directory (`~/.config` a file).
fn stands(path: &Path) -> bool {
    match path.symlink_metadata() {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
        ),
    }
}

/// The per-user config file: `~/Library/Application Support/spfs-autostart/`
/// on macOS, `$XDG_CONFIG_HOME/spfs-autostart/` (or `~/.config/...`) elsewhere.
pub fn user_config_file(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    let dir = if cfg!(target_os = "macos") {
        home?.join("Library/Application Support")
    } else {
        match env("XDG_CONFIG_HOME").filter(|d| d.starts_with('/')) {
            Some(dir) => PathBuf::from(dir),
            None => home?.join(".config"),
        }
    };
    Some(dir.join("spfs-autostart").join("config.toml"))
}
