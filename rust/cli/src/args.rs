//! The command line: its grammar (clap), the shortcut for a plain
//! `ensure`, and how a usage error is told.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::entry::ExitCode;
use crate::{agent, deferred, output};

/// Exit code for arguments that cannot be parsed, as clap's own.
const EXIT_USAGE: u8 = 2;

/// Keep the per-user SPFS service running exactly when it is needed.
#[derive(Debug, Parser)]
#[command(name = "spfs-autostart", version, about)]
pub(crate) struct Cli {
    /// Read this config file instead of the one SPFS_AUTOSTART_CONFIG names
    /// or the per-user one.
    // Not clap's `env`: the library reads SPFS_AUTOSTART_CONFIG itself, and
    // as every front end does, counts an empty value as unset (clap would
    // refuse it as a missing `--config` value the user never typed).
    #[arg(long, global = true)]
    pub(crate) config: Option<PathBuf>,
    /// Use this state dir (socket, locks, pid record).
    #[arg(long, global = true)]
    pub(crate) state_dir: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Log what the client does to stderr.
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands; each one's doc comment is its line in `--help`.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start the service if needed; print its status; exit 0 once it is ready.
    Ensure {
        /// How long to wait for it to become ready (seconds).
        #[arg(long, value_name = "SECS", value_parser = ready_secs)]
        timeout: Option<u64>,
    },
    /// Stop the service; exit 0 when stopped or not running, 1 when something
    /// that is not our service holds the endpoint (it is left alone).
    Stop {
        /// How long each stop step may take (seconds).
        #[arg(long, value_name = "SECS", value_parser = stop_secs)]
        timeout: Option<u64>,
    },
    /// Print the status: exit 0 running, 3 not running (stopped, starting or
    /// stopping), 1 unresponsive, conflict or error.
    Status,
    /// Print the last lines of the service log.
    Logs {
        /// How many lines.
        #[arg(short = 'n', long = "lines", default_value_t = 50)]
        lines: usize,
        /// Keep printing lines as they are written, across rotation.
        #[arg(short, long)]
        follow: bool,
    },
    /// Print each status change as a line, until interrupted.
    ///
    /// A running kit service's line has its leases and its idle exit:
    /// `idle_exit_in=<SECS>s`, or why it has none (`idle_exit=busy`,
    /// `idle_exit=leased`, `idle_exit=never`).
    Watch,
    /// Print the effective configuration.
    Config {
        /// Anything after `config` (`config set KEY VALUE`): refused with
        /// where a key is set, as `config` sets nothing.
        #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// Check everything the service needs and print each finding with its
    /// fix: exit 0 when healthy, 1 otherwise.
    Doctor,
    /// Run the service under launchd (always on, or started on first connect).
    #[command(subcommand)]
    Agent(deferred::Deferred<agent::AgentCommand>),
}

/// `ensure --timeout`: whole seconds that ready_timeout_secs accepts, so
/// a bad one is a usage error of the flag (exit 2), not of the key.
fn ready_secs(text: &str) -> Result<u64, String> {
    spfs_autostart::config::check_ready_timeout_secs(whole_secs(text)?)
}

/// `stop --timeout`: as [`ready_secs`], for stop_timeout_secs.
fn stop_secs(text: &str) -> Result<u64, String> {
    spfs_autostart::config::check_stop_timeout_secs(whole_secs(text)?)
}

fn whole_secs(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| "give a whole number of seconds, such as 30".to_string())
}

/// The command line `args` (the program's name first), as clap reads it.
pub(crate) fn parse(args: &[OsString]) -> Result<Cli, clap::Error> {
    plain_ensure(args).map_or_else(|| Cli::try_parse_from(args), Ok)
}

/// `spfs-autostart ensure` with nothing else, the command a shell runs
/// every time it starts, read without clap: building clap's parser was
/// about a fifth of a fresh `ensure`'s own work (README, "A fresh `ensure`
/// without clap"). Any other arguments, `None`: clap reads them.
fn plain_ensure(args: &[OsString]) -> Option<Cli> {
    let plain = matches!(args, [_program, command] if command == "ensure");
    plain.then_some(Cli {
        config: None,
        state_dir: None,
        json: false,
        verbose: false,
        command: Command::Ensure { timeout: None },
    })
}

/// Arguments clap refused (or `--help`, `--version`): clap's own output
/// and exit code 2, but as the one JSON error object on stderr when the
/// arguments ask for `--json`, so a script that parses errors gets one.
pub(crate) fn usage_error(e: clap::Error, args: &[OsString]) -> ExitCode {
    use clap::error::ErrorKind as Clap;
    // `--json`, or `--json=VALUE` (which clap refuses: the error is still
    // for a script that wants JSON).
    let json = args
        .iter()
        .skip(1)
        .take_while(|arg| *arg != "--")
        .any(|arg| *arg == "--json" || arg.as_encoded_bytes().starts_with(b"--json="));
    // Asked-for output, exit 0; a missing subcommand's help is an error.
    let shown = matches!(e.kind(), Clap::DisplayHelp | Clap::DisplayVersion);
    if !json || shown {
        e.exit();
    }
    output::usage_error(&e.render().to_string());
    ExitCode::from(EXIT_USAGE)
}

/// `config set ...`: `config` only prints, so a word after it is a usage
/// error that says where a key is set.
pub(crate) fn config_takes_no_words(word: &str) -> clap::Error {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    cli.build();
    let config = cli
        .find_subcommand_mut("config")
        .expect("config is a subcommand");
    config.error(
        clap::error::ErrorKind::UnknownArgument,
        format!(
            "unexpected argument '{word}': `config` only prints the effective configuration; \
             to set a key, edit the config file its first line names (or set the key's \
             SPFS_AUTOSTART_* variable)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(Into::into).collect()
    }

    #[test]
    fn a_plain_ensure_is_read_as_clap_reads_it() {
        let words = ["spfs-autostart", "ensure"];
        let shortcut = plain_ensure(&args(&words)).expect("a plain ensure is recognised");
        let clap = Cli::try_parse_from(words).expect("clap reads it");
        assert_eq!(format!("{shortcut:?}"), format!("{clap:?}"));
    }

    #[test]
    fn anything_more_than_a_plain_ensure_goes_to_clap() {
        for words in [
            &["spfs-autostart"][..],
            &["spfs-autostart", "status"],
            &["spfs-autostart", "ensure", "--json"],
            &["spfs-autostart", "--json", "ensure"],
            &["spfs-autostart", "ensure", "--help"],
            &["spfs-autostart", "ensure", "--"],
            &["spfs-autostart", "ensur"],
        ] {
            assert!(plain_ensure(&args(words)).is_none(), "{words:?}");
        }
    }
}
