//! `spfs-autostart-bench`: the fast path, the cold start, the thundering
//! herd, `tail_logs` and the idle cost, each against the naive design
//! measured in the same run.
//!
//! A benchmark, not a test: it reports, and exits 0 unless something is
//! broken (a binary missing, a service that never starts). Every service and
//! temp dir it starts is cleaned up; it never touches the user's state dir.
//!
//! Usage: `spfs-autostart-bench [--quick] [--json] [--only 1,2,3,4,5,6]`.
//! The hidden subcommands `naive-probe`, `naive-ensure`, `tail-child` and `gate` are
//! the harness's own child processes.

mod cases;
mod naive;
mod procs;
mod report;
mod sandbox;
mod stats;

use std::process::ExitCode;

use report::Report;

/// Command-line options of a benchmark run.
#[derive(Debug)]
pub struct Options {
    /// Fewer iterations and a 5 s idle window: a smoke test in seconds.
    pub quick: bool,
    /// Print JSON instead of the table.
    pub json: bool,
    /// Sections to run (1..=6); all when empty.
    pub only: Vec<u32>,
}

impl Options {
    /// Whether section `n` runs.
    pub fn runs(&self, n: u32) -> bool {
        self.only.is_empty() || self.only.contains(&n)
    }

    /// `full` iterations, or `quick` ones in quick mode.
    pub fn iters(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }
}

const USAGE: &str = "usage: spfs-autostart-bench [--quick] [--json] [--only 1,2,...]\n\
    \n  --quick   fewer iterations, 5 s idle window instead of 60 s\n  --json    print one JSON object instead of the table\n  --only    run only these sections (1 hot ensure, 2 cold ensure, 3 herd,\n            4 tail_logs, 5 idle cost, 6 FFI status from Python)\n";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The harness's own child processes.
    if let Some(code) = run_child(&args) {
        return code;
    }
    let options = match parse_options(&args) {
        Ok(options) => options,
        Err(code) => return code,
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build of the harness; run `cargo run --release -p spfs-autostart-bench`"
        );
    }
    let bins = match sandbox::Bins::find() {
        Ok(bins) => bins,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: no other thread exists yet (the runtime is built below).
    unsafe { clear_user_settings() };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut report = new_report(&options, &args);
    let outcome = cases::run_all(&runtime, &bins, &options, &mut report.rows);
    report.load.1 = report::load_average();
    match outcome {
        Ok(()) => {}
        Err(e) => {
            eprintln!("error: {e}");
            if !report.rows.is_empty() {
                eprintln!("partial results:\n{}", report.text());
            }
            return ExitCode::FAILURE;
        }
    }
    print_report(&report, &options);
    ExitCode::SUCCESS
}

/// Runs the hidden subcommand in `args`, if it names one, and returns its
/// exit code.
fn run_child(args: &[String]) -> Option<ExitCode> {
    match args.first().map(String::as_str) {
        Some("naive-probe") => Some(cases::child_naive_probe(&args[1..])),
        Some("naive-ensure") => Some(cases::child_naive_ensure(&args[1..])),
        Some("tail-child") => Some(cases::child_tail(&args[1..])),
        Some("gate") => Some(cases::child_gate(&args[1..])),
        _ => None,
    }
}

/// The options in `args`; or, after `--help` or a bad argument, the exit
/// code to leave with (the usage already printed).
fn parse_options(args: &[String]) -> Result<Options, ExitCode> {
    let mut options = Options {
        quick: false,
        json: false,
        only: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--json" => options.json = true,
            "--only" => {
                let list = it.next().map(String::as_str).unwrap_or("");
                match parse_sections(list) {
                    Some(sections) => options.only = sections,
                    None => {
                        eprintln!(
                            "--only takes section numbers 1 to 6, such as 1,3: {list:?}\n{USAGE}"
                        );
                        return Err(ExitCode::from(2));
                    }
                }
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return Err(ExitCode::SUCCESS);
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(options)
}

/// The section numbers of `--only`'s list, each 1 to 6; `None` for an
/// empty list or anything else in it.
fn parse_sections(list: &str) -> Option<Vec<u32>> {
    list.split(',')
        .map(|s| s.trim().parse().ok().filter(|n| (1..=6).contains(n)))
        .collect::<Option<Vec<u32>>>()
        .filter(|sections| !sections.is_empty())
}

/// Removes the user's settings from the environment, so that they cannot
/// leak into the measurements.
///
/// # Safety
///
/// No other thread may exist yet: it could be reading the environment.
unsafe fn clear_user_settings() {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("SPFS_AUTOSTART_") || name == "SPFS_MACFUSE_LISTEN_ADDRESS" {
            // SAFETY: no other thread exists yet (the caller's promise).
            unsafe { std::env::remove_var(&name) };
        }
    }
}

/// An empty report on this machine, for this run of the harness.
fn new_report(options: &Options, args: &[String]) -> Report {
    Report {
        date: report::utc_now(),
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        machine: sandbox::machine(),
        mode: if options.quick { "quick" } else { "full" }.into(),
        command: std::iter::once("spfs-autostart-bench".to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        load: (report::load_average(), String::new()),
        rows: Vec::new(),
    }
}

/// Prints the finished report: JSON or the table.
fn print_report(report: &Report, options: &Options) {
    if options.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.json()).expect("json")
        );
    } else {
        print!("{}", report.text());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_takes_section_numbers_and_refuses_anything_else() {
        assert_eq!(parse_sections("1"), Some(vec![1]));
        assert_eq!(parse_sections(" 3, 6"), Some(vec![3, 6]));
        for bad in ["", "7", "0", "x", "1,x", "1,"] {
            assert_eq!(parse_sections(bad), None, "{bad:?}");
        }
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(parse_options(&args(&["--only", "7"])).is_err());
        assert!(parse_options(&args(&["--only"])).is_err());
        assert_eq!(
            parse_options(&args(&["--only", "2"])).unwrap().only,
            vec![2]
        );
    }
}
