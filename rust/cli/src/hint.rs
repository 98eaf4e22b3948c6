//! The CLI's own hints: the core's messages name config keys and library
//! operations, because they reach every front end; here each remedy an
//! error carries becomes the flag or command that does it on this CLI.

use std::path::PathBuf;
use std::sync::OnceLock;

use spfs_autostart::{Activity, Config, Operation, Remedy, State};

/// What of this run a command in a hint must repeat to act on the same
/// service and agent: the global flags (`--config`, `--state-dir`), as
/// ` --flag=VALUE` words, and the agent's `--label`. Set once, by `main`
/// and the agent command. (Not `--mode`: a fix may be the other mode, so
/// the remedy names it when it matters, as `agent install --mode always`.)
static GLOBAL_FLAGS: OnceLock<String> = OnceLock::new();
static AGENT_LABEL: OnceLock<String> = OnceLock::new();
/// Where this run's config came from: a key is set where its value came
/// from, which is not always a config file.
static CONFIG_ORIGIN: OnceLock<ConfigOrigin> = OnceLock::new();

struct ConfigOrigin {
    /// Whether a config file was read.
    read_file: bool,
    /// Each environment variable that set a key, with the key.
    env_overrides: Vec<(&'static str, &'static str)>,
}

/// Remember where this run's config came from.
pub fn remember_config(config: &Config) {
    let _ = CONFIG_ORIGIN.set(ConfigOrigin {
        read_file: config.source.is_some(),
        env_overrides: config.env_overrides.clone(),
    });
}

/// Where the per-user config file goes, for a run that read none (so
/// nothing stood there); `None` when there is no home to put it in.
/// Looked up only to be said (an error's hint, `config`), not on every run.
pub fn per_user_config() -> Option<PathBuf> {
    spfs_autostart::config::user_config_file(&spfs_autostart::config::process_env)
}

/// How to set `key` where this run's value of it comes from (`origin`;
/// `per_user` when no config file was read).
fn set_key(
    origin: Option<&ConfigOrigin>,
    per_user: impl FnOnce() -> Option<PathBuf>,
    program: &str,
    key: &str,
) -> String {
    let Some(origin) = origin else {
        return format!("`{program} config` shows the config file to set {key} in");
    };
    if let Some((var, _)) = origin.env_overrides.iter().find(|(_, k)| *k == key) {
        return format!("{key} comes from {var} in this environment: change or unset it");
    }
    if origin.read_file {
        return format!("`{program} config` shows the config file to set {key} in");
    }
    match per_user() {
        Some(file) => format!(
            "no config file was read: set {key} in {} (create it), or name one with `--config FILE`",
            file.display()
        ),
        None => format!("`--config FILE` reads a config file that sets {key}"),
    }
}

/// Remember this run's global flags: each flag with its value, if given.
pub fn remember_global_flags(flags: &[(&str, Option<&std::path::Path>)]) {
    let text = flags
        .iter()
        .filter_map(|&(flag, value)| {
            // Absolute, as the messages name the file: a hint run from
            // another directory acts on the same one.
            let value = value?;
            let value = std::path::absolute(value).unwrap_or_else(|_| value.to_path_buf());
            // `--flag=VALUE`: a value that begins with `-` is still its value.
            Some(format!(" {flag}={}", shell_word(&value.to_string_lossy())))
        })
        .collect();
    let _ = GLOBAL_FLAGS.set(text);
}

/// Remember the agent label this run named, if it named one.
pub fn remember_agent_label(label: Option<&str>) {
    if let Some(label) = label {
        let _ = AGENT_LABEL.set(format!(" --label={}", shell_word(label)));
    }
}

/// `word` as a shell reads it back: as it is when it is plain, else in
/// single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `spfs-autostart` with this run's global flags.
fn program() -> String {
    format!(
        "spfs-autostart{}",
        GLOBAL_FLAGS.get().map(String::as_str).unwrap_or_default()
    )
}

/// What an `ensure` or `stop` interrupted while doing `activity` leaves
/// behind, and the command that finishes or shows it.
pub fn after_interruption(activity: &Activity) -> String {
    let program = program();
    let service = |pid: &Option<u32>| match pid {
        Some(pid) => format!("the service (pid {pid})"),
        None => "the service".to_string(),
    };
    match activity {
        // The core ends a start it abandons (finish_abandoned_starts).
        Activity::Starting {
            program: name,
            pid,
            mountpoint,
        } => format!(
            "ending {name} (pid {pid}) and any daemon it forked, whose start this was; \
             `{program} ensure` starts it again{}",
            mountpoint
                .as_deref()
                .map(|m| format!("; {}", spfs_autostart::mountpoint::left_mount_hint(m)))
                .unwrap_or_default()
        ),
        Activity::WaitingForAnotherClient => format!(
            "another process is still starting or stopping the service; `{program} status` \
             shows how that ends"
        ),
        Activity::WaitingForService { state, pid } => {
            let left = match state {
                State::Starting => "still starting",
                State::Stopping => "still stopping",
                State::Unresponsive => "not answering",
                _ => "as it was",
            };
            format!("{} is {left}; `{program} status` shows it", service(pid))
        }
        Activity::WaitingForLaunchd { label, pid } => format!(
            "launchd's job {label} is still starting {}; `{program} status` shows it",
            service(pid)
        ),
        Activity::Stopping { pid, step } => format!(
            "{} may still be stopping after {step}; `{program} stop` finishes the stop",
            service(pid)
        ),
    }
}

/// What to look at after a stop that had to end the service by a signal:
/// it did not shut down, so it may have left things behind (spfs-fuse-macos
/// leaves its mount, which only `doctor` on macOS checks).
pub fn after_forced_stop() -> String {
    let program = program();
    let doctor = if cfg!(target_os = "macos") {
        format!(", and `{program} doctor` whether its mount is left behind")
    } else {
        String::new()
    };
    format!(
        "a service ended by a signal may have left things behind (spfs-fuse-macos leaves its \
         mount); `{program} logs` shows what it was doing{doctor}"
    )
}

/// What a user of this CLI types to do what `remedy` names; `None` when
/// the CLI has no way of its own (the message already names the key).
pub fn for_remedy(remedy: &Remedy) -> Option<String> {
    let program = program();
    Some(match remedy {
        Remedy::SetKey("ready_timeout_secs") => {
            format!("`{program} ensure --timeout SECS` sets ready_timeout_secs for one run")
        }
        Remedy::SetKey("stop_timeout_secs") => {
            format!("`{program} stop --timeout SECS` sets stop_timeout_secs for one run")
        }
        Remedy::SetKey("state_dir") => "`--state-dir DIR` sets state_dir for one run".into(),
        Remedy::SetKey(key) => set_key(CONFIG_ORIGIN.get(), per_user_config, &program, key),
        Remedy::ConfigFile => "fix the config file, or read another with `--config FILE`".into(),
        Remedy::Run(operation) => {
            let line = command(*operation)?;
            // An agent command acts on the agent this run named.
            let agent = match line.starts_with("agent ") {
                true => AGENT_LABEL.get().map(String::as_str).unwrap_or_default(),
                false => "",
            };
            format!("run `{program} {line}{agent}`")
        }
    })
}

/// The command line (after `spfs-autostart`) that runs `operation`.
fn command(operation: Operation) -> Option<&'static str> {
    Some(match operation {
        Operation::Ensure => "ensure",
        Operation::Stop => "stop",
        Operation::Status => "status",
        Operation::Doctor => "doctor",
        Operation::AgentInstall => "agent install",
        Operation::AgentInstallAlways => "agent install --mode always",
        Operation::AgentUninstall => "agent uninstall",
        Operation::AgentStatus => "agent status",
        Operation::AgentPrintSystemd => "agent print --format systemd",
        Operation::AgentInstallSocket => "agent install --mode socket",
        Operation::AgentPrintSystemdSocket => "agent print --format systemd --mode socket",
        _ => return None,
    })
}

/// Every hint for `remedies`, in order, without repeats.
pub fn for_remedies(remedies: &[Remedy]) -> Vec<String> {
    let mut hints: Vec<String> = Vec::new();
    for hint in remedies.iter().filter_map(for_remedy) {
        if !hints.contains(&hint) {
            hints.push(hint);
        }
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_set_where_this_runs_value_of_it_comes_from() {
        let per_user = || Some("/home/u/.config/spfs-autostart/config.toml".into());
        // A variable set it: the file would not win.
        let from_env = ConfigOrigin {
            read_file: true,
            env_overrides: vec![("SPFS_AUTOSTART_LOG_DIR", "log_dir")],
        };
        assert_eq!(
            set_key(Some(&from_env), per_user, "spfs-autostart", "log_dir"),
            "log_dir comes from SPFS_AUTOSTART_LOG_DIR in this environment: change or unset it"
        );
        // Another key of the same run is the file's.
        assert_eq!(
            set_key(Some(&from_env), per_user, "spfs-autostart", "endpoint"),
            "`spfs-autostart config` shows the config file to set endpoint in"
        );
        // No file was read: where the per-user one goes, not `config`.
        let no_file = ConfigOrigin {
            read_file: false,
            env_overrides: vec![],
        };
        assert_eq!(
            set_key(Some(&no_file), per_user, "spfs-autostart", "endpoint"),
            "no config file was read: set endpoint in \
             /home/u/.config/spfs-autostart/config.toml (create it), or name one with \
             `--config FILE`"
        );
        // No home: the flag that reads a file.
        assert_eq!(
            set_key(Some(&no_file), || None, "spfs-autostart", "endpoint"),
            "`--config FILE` reads a config file that sets endpoint"
        );
    }

    #[test]
    fn timeout_keys_become_the_timeout_flag_of_their_command() {
        let ready = for_remedy(&Remedy::SetKey("ready_timeout_secs")).unwrap();
        assert!(ready.contains("ensure --timeout"), "{ready}");
        let stop = for_remedy(&Remedy::SetKey("stop_timeout_secs")).unwrap();
        assert!(stop.contains("stop --timeout"), "{stop}");
    }

    #[test]
    fn state_dir_and_config_file_become_their_global_flags() {
        let state = for_remedy(&Remedy::SetKey("state_dir")).unwrap();
        assert!(state.contains("--state-dir"), "{state}");
        let file = for_remedy(&Remedy::ConfigFile).unwrap();
        assert!(file.contains("--config"), "{file}");
    }

    #[test]
    fn operations_become_commands() {
        for (operation, line) in [
            (Operation::Stop, "run `spfs-autostart stop`"),
            (Operation::Ensure, "run `spfs-autostart ensure`"),
            (
                Operation::AgentInstallAlways,
                "run `spfs-autostart agent install --mode always`",
            ),
            (
                Operation::AgentPrintSystemd,
                "run `spfs-autostart agent print --format systemd`",
            ),
            (
                Operation::AgentInstallSocket,
                "run `spfs-autostart agent install --mode socket`",
            ),
        ] {
            assert_eq!(
                for_remedy(&Remedy::Run(operation)).as_deref(),
                Some(line),
                "{operation}"
            );
        }
    }

    #[test]
    fn repeated_remedies_give_one_hint() {
        let stop = Remedy::Run(Operation::Stop);
        assert_eq!(for_remedies(&[stop, stop]).len(), 1);
    }

    #[test]
    fn every_operation_has_a_command() {
        // `Operation` is non-exhaustive to this crate, so the compiler cannot
        // ask for a new operation's command; this test does.
        for &operation in Operation::ALL {
            assert!(command(operation).is_some(), "{operation:?} has no command");
        }
    }
}
