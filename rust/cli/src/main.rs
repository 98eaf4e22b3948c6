//! `spfs-autostart`: start, stop and inspect the per-user SPFS service.
//!
//! Thin by design: parse arguments, call the core, print. Every decision
//! about the service lives in the `spfs-autostart` crate.
//!
//! On Linux the process enters at C's `main` ([`entry`]), which skips the
//! start-up work std's wrapper does before a Rust `main`.
#![cfg_attr(all(not(test), target_os = "linux"), no_main)]

mod agent;
mod args;
mod deferred;
mod entry;
mod hint;
mod interrupts;
mod logs;
mod output;

use std::ffi::OsString;
use std::io::{self, Write};
use std::pin::pin;

use spfs_autostart::{Config, Error, ServiceManager, State};

use crate::args::{Cli, Command, config_takes_no_words, usage_error};
use crate::entry::ExitCode;
use crate::interrupts::Interrupts;

/// Exit code of `status` when the service is not running.
const EXIT_NOT_RUNNING: u8 = 3;

/// Where the process starts off Linux: std's `main`, whose start-up costs
/// next to nothing there (see [`entry`]).
#[cfg(not(target_os = "linux"))]
fn main() {
    entry::run(std::env::args_os().collect())
}

/// The CLI: from its arguments (the program's name first) to its exit
/// code. Called by [`entry`], as the process starts.
fn cli_main(args: Vec<OsString>) -> ExitCode {
    let cli = match args::parse(&args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e, &args),
    };
    if let Command::Config { words } = &cli.command
        && let Some(word) = words.first()
    {
        return usage_error(config_takes_no_words(word), &args);
    }
    if cli.verbose {
        log_to_stderr();
    }
    // A command in a hint acts on the same service as this run.
    hint::remember_global_flags(&[
        ("--config", cli.config.as_deref()),
        ("--state-dir", cli.state_dir.as_deref()),
    ]);
    // Read before the signal handlers go in: a config path that blocks (a
    // FIFO nobody writes) can still be interrupted, by the default action.
    let config = match load_config(&cli) {
        Ok(config) => {
            hint::remember_config(&config);
            config
        }
        // `doctor` reports it as its finding: the diagnosis is most needed
        // for the most common mistake.
        Err(e) if matches!(cli.command, Command::Doctor) => {
            let report = spfs_autostart::doctor::unusable_config(&e);
            let _ = output::doctor(&report, cli.json);
            return ExitCode::FAILURE;
        }
        Err(e) => {
            output::error(&e, cli.json);
            return ExitCode::FAILURE;
        }
    };
    // A service that already serves, as every shell's `ensure` finds it:
    // said after one round trip, before the runtime exists.
    if let Command::Ensure { .. } = cli.command
        && let Some(result) = quick_ensure(&config, cli.json)
    {
        return exit_code(result, cli.json);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    // Ctrl-C (or SIGTERM, SIGHUP) drops the command's future, and with it
    // anything it was starting (the core kills a service it had not seen
    // ready), instead of dying with it half-started.
    // Boxed: the future is about 9 KiB, and `block_on` would hold copies
    // of it on the stack, which a fresh process faults in page by page.
    let outcome = runtime.block_on(Box::pin(async {
        // Caught before the command's first step: a start forks the
        // service before the command first waits, so handlers installed
        // on a later poll could miss a Ctrl-C that then killed us with the
        // service half-started.
        let mut interrupts = Interrupts::install();
        tokio::select! {
            // A command that has finished has nothing left half-done: its
            // result wins over a signal that came with it.
            biased;
            result = run(cli, config) => Ok(result),
            code = interrupts.next() => Err(code),
        }
    }));
    // Every future that could own a process has finished or been dropped
    // by now; what the runtime still holds (connection tasks, the timer
    // wheel, buffers) goes with the process. Tearing it down piece by piece
    // was a measurable share of a fresh `ensure`.
    std::mem::forget(runtime);
    match outcome {
        Ok(result) => exit_code(result, json),
        Err(code) => {
            // A start the interrupt abandoned has been asked to end; it
            // gets its moment to do so (spfs-fuse-macos unmounts) before
            // it is killed, which needs this process.
            spfs_autostart::finish_abandoned_starts();
            ExitCode::from(code)
        }
    }
}

/// How a command's `result` ends the process, its error printed.
fn exit_code(result: Result<ExitCode, Failure>, json: bool) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(Failure::Core(e)) => {
            output::error(&e, json);
            ExitCode::FAILURE
        }
        // Whoever read our output has gone (`| head -1`): nothing is wrong
        // and there is no one left to tell, as ripgrep does it.
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Output(e)) => {
            let _ = writeln!(io::stderr(), "error: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--verbose`: what the client does, at debug level, on stderr.
fn log_to_stderr() {
    // A fixed target filter, not `EnvFilter`: its directive parser
    // brings regex into the binary (a quarter megabyte, with its
    // relocations), which every fresh `ensure` would map and relocate.
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let only_ours = tracing_subscriber::filter::Targets::new().with_target(
        "spfs_autostart",
        tracing_subscriber::filter::LevelFilter::DEBUG,
    );
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour only for a person who wants it: not into a
                // file or a pipe, and not with NO_COLOR set
                // (no-color.org) or TERM=dumb.
                .with_ansi(
                    output::stderr_takes_escapes()
                        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
                ),
        )
        .with(only_ours)
        .init();
}

/// Why a command failed: the core said so, or its output could not be written.
#[derive(Debug)]
enum Failure {
    Core(Error),
    Output(io::Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Core(e)
    }
}

impl From<spfs_autostart_agent::LaunchdError> for Failure {
    fn from(e: spfs_autostart_agent::LaunchdError) -> Failure {
        use spfs_autostart_agent::LaunchdError;
        // The library names the agent setting; here the user typed its flag.
        if let LaunchdError::InvalidSpec { field, message } = &e
            && let Some(flag) = agent::flag_of(field)
        {
            return Failure::Core(Error::new(
                spfs_autostart::ErrorKind::InvalidConfig,
                format!("{flag}: {message}"),
            ));
        }
        Failure::Core(e.into())
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Output(e)
    }
}

fn load_config(cli: &Cli) -> Result<Config, Error> {
    // `--state-dir` wins over SPFS_AUTOSTART_STATE_DIR, which is then not read.
    let flags: &[&str] = match cli.state_dir {
        Some(_) => &["state_dir"],
        None => &[],
    };
    let mut config = Config::load_except(cli.config.as_deref(), flags)?;
    if let Some(dir) = &cli.state_dir {
        // The shell expands `~` only at the start of a word, not after
        // `--state-dir=`: a directory named `~` is never what was meant.
        if dir.as_os_str().as_encoded_bytes().starts_with(b"~") {
            return Err(Error::new(
                spfs_autostart::ErrorKind::InvalidConfig,
                format!(
                    "--state-dir {}: the shell did not expand ~ here (it does only at the start \
                     of a word); write `--state-dir {}` or give the full path",
                    dir.display(),
                    dir.display()
                ),
            ));
        }
        // A path on the command line is relative to where it was typed.
        config.set_state_dir(std::path::absolute(dir).unwrap_or_else(|_| dir.clone()))?;
    }
    Ok(config)
}

/// Runs the parsed command: a dispatch, each command in its own function.
async fn run(cli: Cli, config: Config) -> Result<ExitCode, Failure> {
    let json = cli.json;
    let state_dir_flag = cli.state_dir.is_some();
    match cli.command {
        Command::Ensure { timeout } => ensure(config, timeout, json).await,
        // Boxed, so `ensure` does not pay for the others' stack: with every
        // command in one future, its poll reserved 32 KiB of stack, which a
        // fresh process faults in page by page (README, "A fresh `ensure`
        // without clap").
        command => Box::pin(run_other(command, config, json, state_dir_flag)).await,
    }
}

/// Every command but `ensure`; `state_dir_flag`: `--state-dir` was given.
async fn run_other(
    command: Command,
    mut config: Config,
    json: bool,
    state_dir_flag: bool,
) -> Result<ExitCode, Failure> {
    match command {
        Command::Ensure { timeout } => ensure(config, timeout, json).await,
        Command::Stop { timeout } => {
            if let Some(secs) = timeout {
                config.set_stop_timeout_secs(secs)?;
            }
            stop(ServiceManager::new(config)?, json).await
        }
        Command::Status => status(ServiceManager::new(config)?, json).await,
        Command::Logs { lines, follow } => {
            logs::run(&ServiceManager::new(config)?, lines, follow, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Watch => watch(ServiceManager::new(config)?, json).await,
        Command::Agent(command) => {
            let manager = ServiceManager::new(config)?;
            agent::run(&manager, command.0, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor => match ServiceManager::new(config) {
            Ok(manager) => doctor(manager, json).await,
            Err(e) => verdict(
                ExitCode::FAILURE,
                output::doctor(&spfs_autostart::doctor::unusable_config(&e), json),
            ),
        },
        Command::Config { .. } => {
            let manager = ServiceManager::new(config)?;
            output::config(&manager, json, state_dir_flag)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `ensure`: start the service if needed, showing progress, and print its status.
async fn ensure(mut config: Config, timeout: Option<u64>, json: bool) -> Result<ExitCode, Failure> {
    if let Some(secs) = timeout {
        config.set_ready_timeout_secs(secs)?;
    }
    let manager = ServiceManager::new(config)?;
    let what = || match manager.activity() {
        Some(activity) => activity.to_string(),
        None => "looking for the service".to_string(),
    };
    let interrupt = output::OnInterrupt::new(&manager, json);
    let result = output::with_progress(what, pin!(manager.ensure())).await;
    interrupt.finished();
    let status = result?;
    output::status(&status, json)?;
    Ok(ExitCode::SUCCESS)
}

/// `ensure` of a kit service that already serves, without a runtime
/// (`ServiceManager::ensure_if_serving`; `--timeout` bounds a start, which
/// this never makes); `None`: the full `ensure` is needed, and says what is
/// wrong with the config if anything is.
fn quick_ensure(config: &Config, json: bool) -> Option<Result<ExitCode, Failure>> {
    let status = ServiceManager::new(config.clone())
        .ok()?
        .ensure_if_serving()?;
    Some(
        output::status(&status, json)
            .map(|()| ExitCode::SUCCESS)
            .map_err(Failure::from),
    )
}

/// `stop`: stop the service, showing progress, and print what happened.
async fn stop(manager: ServiceManager, json: bool) -> Result<ExitCode, Failure> {
    let what = || match manager.activity() {
        Some(activity) => activity.to_string(),
        None => "stopping the service".to_string(),
    };
    // Who uses it, to say whom the stop cuts off (a look: it starts nothing).
    let users = match manager.status().await {
        Ok(status) if status.state == State::Running => status.users(),
        _ => Vec::new(),
    };
    let interrupt = output::OnInterrupt::new(&manager, json);
    let result = output::with_progress(what, pin!(manager.stop())).await;
    interrupt.finished();
    let outcome = result?;
    output::stop(&outcome, &users, json)?;
    Ok(ExitCode::SUCCESS)
}

/// `status`: print the status; the exit code says the state.
async fn status(manager: ServiceManager, json: bool) -> Result<ExitCode, Failure> {
    let status = manager.status().await?;
    let code = match status.state {
        State::Running => ExitCode::SUCCESS,
        State::Starting | State::Stopping | State::Stopped => ExitCode::from(EXIT_NOT_RUNNING),
        State::Unresponsive | State::Conflict => ExitCode::FAILURE,
    };
    verdict(code, output::status(&status, json))
}

/// The exit code of a command whose code is its answer (`status`,
/// `doctor`): it stands whether or not anyone read the printout, so a
/// reader gone (`| true`) does not turn a failure into success.
fn verdict(code: ExitCode, printed: io::Result<()>) -> Result<ExitCode, Failure> {
    match printed {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(code),
        result => result.map(|()| code).map_err(Failure::from),
    }
}

/// `watch`: print each status change until the watch ends or whoever reads
/// stdout goes away. While the status cannot be read, the error goes to
/// stderr (once) and the watch goes on.
async fn watch(manager: ServiceManager, json: bool) -> Result<ExitCode, Failure> {
    let mut watcher = manager.watch()?;
    let closed = output::stdout_closed();
    tokio::pin!(closed);
    loop {
        let update = tokio::select! {
            update = watcher.next() => update,
            () = &mut closed => break,
        };
        match update {
            None => break,
            Some(Ok(status)) => output::change(&status, json)?,
            Some(Err(e)) => output::error(&e, json),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `doctor`: print every finding; exit 0 only when healthy.
async fn doctor(manager: ServiceManager, json: bool) -> Result<ExitCode, Failure> {
    let report = spfs_autostart::doctor::diagnose(&manager).await;
    let code = if report.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    verdict(code, output::doctor(&report, json))
}
