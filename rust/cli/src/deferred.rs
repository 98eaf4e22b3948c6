//! A subcommand tree clap builds only when it is used.
//!
//! clap's derive builds every subcommand's arguments before it parses, and
//! a fresh `spfs-autostart ensure` (which spfs users pay on every shell)
//! would build the whole `agent` tree too (about 30 us of the 200 us clap
//! took in a fresh process, measured). `Command::defer` delays that until
//! `agent` is invoked or its help is shown; the derive has no switch for it
//! yet (clap-rs/clap#4959), hence this wrapper.

use clap::{ArgMatches, Command, FromArgMatches, Subcommand};

/// `T`'s subcommands, added to the command only when it is built.
#[derive(Debug)]
pub struct Deferred<T>(pub T);

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Deferred)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

impl<T: Subcommand> Subcommand for Deferred<T> {
    fn augment_subcommands(cmd: Command) -> Command {
        cmd.defer(|cmd| keep_about(cmd, T::augment_subcommands))
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        cmd.defer(|cmd| keep_about(cmd, T::augment_subcommands_for_update))
    }

    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

/// `augment(cmd)`, keeping `cmd`'s own description: run late, the enum's
/// doc comment would replace the one the variant gave it.
fn keep_about(cmd: Command, augment: fn(Command) -> Command) -> Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let mut cmd = augment(cmd);
    if let Some(about) = about {
        cmd = cmd.about(about);
    }
    if let Some(long_about) = long_about {
        cmd = cmd.long_about(long_about);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::Cli;

    #[test]
    fn the_agent_tree_is_not_built_until_used() {
        let cli = Cli::command();
        let agent = cli.find_subcommand("agent").expect("agent");
        assert_eq!(agent.get_subcommands().count(), 0);
        // Parsing another command leaves it unbuilt and still works.
        let parsed = Cli::try_parse_from(["spfs-autostart", "ensure", "--timeout", "5"]);
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    #[test]
    fn the_agent_tree_parses_and_keeps_its_description_when_used() {
        Cli::command().debug_assert();
        let parsed = Cli::try_parse_from(["spfs-autostart", "agent", "print", "--mode", "socket"]);
        assert!(parsed.is_ok(), "{parsed:?}");
        let help = Cli::try_parse_from(["spfs-autostart", "agent", "--help"])
            .expect_err("help is an early exit")
            .to_string();
        assert!(help.contains("Run the service under launchd"), "{help}");
        for sub in ["print", "install", "uninstall", "status"] {
            assert!(help.contains(sub), "{sub} missing from:\n{help}");
        }
    }
}
