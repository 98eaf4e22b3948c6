//! The CLI's own hints: the core's messages name config keys and library
//! operations, because they reach every front end; here each remedy an
//! error carries becomes the flag or command that does it on this CLI.

use spfs_autostart::{Operation, Remedy};

/// What a user of this CLI types to do what `remedy` names; `None` when
/// the CLI has no way of its own (the message already names the key).
pub fn for_remedy(remedy: &Remedy) -> Option<String> {
    Some(match remedy {
        Remedy::SetKey("ready_timeout_secs") => {
            "`spfs-autostart ensure --timeout SECS` sets ready_timeout_secs for one run".into()
        }
        Remedy::SetKey("stop_timeout_secs") => {
            "`spfs-autostart stop --timeout SECS` sets stop_timeout_secs for one run".into()
        }
        Remedy::SetKey("state_dir") => "`--state-dir DIR` sets state_dir for one run".into(),
        Remedy::SetKey(key) => {
            format!("`spfs-autostart config` shows the config file to set {key} in")
        }
        Remedy::ConfigFile => "fix the config file, or read another with `--config FILE`".into(),
        Remedy::Run(operation) => format!("run `spfs-autostart {}`", command(*operation)?),
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
