//! Everything the CLI prints: text for people, one JSON object for scripts,
//! errors on stderr with the service's log tail, progress on a terminal.
//!
//! Printing to stdout returns the write's error instead of panicking like
//! `println!`: a closed pipe (`status | head -0`) ends the command quietly,
//! and a feed (`logs -f`, `watch`) stops at its first failed write.

use std::future::Future;
use std::io::{self, IsTerminal, Write};
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::json;
use spfs_autostart::{Error, IdleExit, ServiceManager, Status, StopMethod, StopOutcome};

use crate::hint;

/// Print a status.
pub fn status(status: &Status, json: bool) -> io::Result<()> {
    if json {
        return print(&format!(
            "{}\n",
            serde_json::to_string(status).expect("status serializes")
        ));
    }
    let mut out = String::new();
    let mut line = |key: &str, value: String| out.push_str(&format!("{key:<10} {value}\n"));
    line("state", status.state.to_string());
    if let Some(pid) = status.pid {
        line("pid", pid.to_string());
    }
    if let Some(version) = &status.version {
        line("version", version.clone());
    }
    line("endpoint", status.endpoint.clone());
    if let Some(uptime) = status.uptime_secs {
        line("uptime", human_secs(uptime));
    }
    // Leases and the idle deadline only as a kit service told them (not for
    // one that is suspended or hung, which answers nothing).
    if status.idle_timeout_secs.is_some() {
        line("leases", status.leases.len().to_string());
        for lease in &status.leases {
            line(
                "",
                format!("#{} pid {} {}", lease.id, lease.pid, lease.label),
            );
        }
        if let Some(idle_exit) = status.idle_exit() {
            line(
                "idle exit",
                match idle_exit {
                    IdleExit::After { secs } => format!("in {}", human_secs(secs)),
                    IdleExit::Never => "never (idle_timeout_secs = 0)".into(),
                    IdleExit::NotWhileLeased => "not while leases are held".into(),
                    IdleExit::NotWhileBusy => "not while a call is in flight".into(),
                },
            );
        }
    }
    if !status.mounts.is_empty() {
        line("mounts", status.mounts.len().to_string());
        for mount in &status.mounts {
            line("", mount_line(mount));
        }
    }
    line("log", status.log_file.display().to_string());
    if let Some(detail) = &status.detail {
        line("detail", detail.clone());
    }
    for warning in &status.warnings {
        line("warning", warning.clone());
    }
    print(&out)
}

/// Write `text` to stdout and flush it, returning the error.
fn print(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// Print one status change as one line.
pub fn change(status: &Status, json: bool) -> io::Result<()> {
    if json {
        print(&format!(
            "{}\n",
            serde_json::to_string(status).expect("status serializes")
        ))
    } else {
        print(&format!("{}\n", change_line(status)))
    }
}

/// A status change in one line of `key=value` words. A running kit
/// service's idle deadline is there with why it has none, when it has
/// none: going busy or idle is a change, and the line shows which.
fn change_line(status: &Status) -> String {
    let mut line = status.state.to_string();
    if let Some(pid) = status.pid {
        line.push_str(&format!(" pid={pid}"));
    }
    if let Some(idle_exit) = status.idle_exit() {
        line.push_str(&format!(
            " leases={} {}",
            status.leases.len(),
            idle_exit_word(idle_exit)
        ));
    }
    if let Some(detail) = &status.detail {
        line.push_str(&format!(" ({detail})"));
    }
    line
}

/// A change line's word for the idle exit: `idle_exit_in=SECSs`, or
/// `idle_exit=` and why there is no deadline.
fn idle_exit_word(idle_exit: IdleExit) -> String {
    match idle_exit {
        IdleExit::After { secs } => format!("idle_exit_in={secs}s"),
        IdleExit::Never => "idle_exit=never".into(),
        IdleExit::NotWhileLeased => "idle_exit=leased".into(),
        IdleExit::NotWhileBusy => "idle_exit=busy".into(),
    }
}

/// Print how `stop` ended; `users`: who used the service just before (see
/// `Status::users`), whom a stop cut off.
pub fn stop(outcome: &StopOutcome, users: &[String], json: bool) -> io::Result<()> {
    let (outcome_name, how, pid) = match outcome {
        StopOutcome::NotRunning => ("not_running", None, None),
        StopOutcome::Stopped { how, pid } => ("stopped", Some(*how), *pid),
    };
    let cut_off = if how.is_some() { users } else { &[] };
    if json {
        return print(&format!(
            "{}\n",
            json!({ "outcome": outcome_name, "how": how, "pid": pid, "cut_off": cut_off })
        ));
    }
    if !cut_off.is_empty() {
        let count = match cut_off.len() {
            1 => "1 runtime".to_string(),
            n => format!("{n} runtimes"),
        };
        let _ = writeln!(
            io::stderr(),
            "warning: it was in use by {count}: {}; they lost its filesystem",
            cut_off.join(", ")
        );
    }
    print(match how {
        None => "not running\n",
        Some(StopMethod::Graceful) => "stopped\n",
        // Whatever the steps before (a request ignored, or calls still
        // finishing; or none, as stop_sequence says), a signal that is not
        // its graceful exit ended it.
        Some(StopMethod::Terminated) => {
            "stopped (terminated by a signal: it had not exited gracefully within the stop \
             timeout, or stop_sequence starts with that signal)\n"
        }
        Some(StopMethod::Killed) => "stopped (it had to be killed with SIGKILL)\n",
    })?;
    if matches!(how, Some(StopMethod::Terminated | StopMethod::Killed)) {
        let _ = writeln!(io::stderr(), "hint: {}", hint::after_forced_stop());
    }
    Ok(())
}

/// Print one log line.
pub fn log_line(out: &mut impl Write, line: &str, json: bool) -> io::Result<()> {
    if json {
        writeln!(out, "{}", json!({ "line": line }))
    } else {
        writeln!(out, "{line}")
    }
}

/// Resolves when nobody can read stdout any more (the reader of a pipe
/// exited), so a feed that prints rarely ends with its reader instead of at
/// its next line. Never resolves where this cannot be seen (a file, a
/// terminal that stays open), leaving the failed write to end the feed.
pub fn stdout_closed() -> impl Future<Output = ()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let watching = std::thread::Builder::new()
        .name("stdout-watch".into())
        .spawn(move || {
            // poll() reports POLLERR on a pipe's write end once its last
            // reader is gone, and POLLHUP when a terminal hangs up, even
            // when no event is asked for.
            let mut fd = libc::pollfd {
                fd: libc::STDOUT_FILENO,
                events: 0,
                revents: 0,
            };
            loop {
                // SAFETY: one valid pollfd, owned by this frame.
                let rc = unsafe { libc::poll(&mut fd, 1, -1) };
                if rc > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                    let _ = tx.send(());
                    return;
                }
                if rc < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    // Cannot watch: keep the sender, so the future stays pending.
                    std::mem::forget(tx);
                    return;
                }
            }
        });
    async move {
        match (watching, rx.await) {
            (Ok(_), Ok(())) => {}
            _ => std::future::pending().await,
        }
    }
}

/// Print the effective configuration and where its files are. The JSON is
/// the core's view of every key (the same the TOML text is written from),
/// plus `source` and the `resolved` paths. `state_dir_flag`: the state dir
/// came from `--state-dir`, which the text's header says.
pub fn config(manager: &ServiceManager, json: bool, state_dir_flag: bool) -> io::Result<()> {
    let config = manager.config();
    let paths = manager.paths();
    if json {
        let mut object = match serde_json::to_value(config.view()) {
            Ok(serde_json::Value::Object(object)) => object,
            _ => unreachable!("a struct of plain values serializes to a JSON object"),
        };
        object.insert("source".into(), json!(config.source));
        // Each key an environment variable set, with the variable.
        let overrides: serde_json::Map<_, _> = config
            .env_overrides
            .iter()
            .map(|&(var, key)| (key.to_string(), json!(var)))
            .collect();
        object.insert("env_overrides".into(), overrides.into());
        object.insert(
            "resolved".into(),
            json!({
                "endpoint": manager.endpoint().to_string(),
                "state_dir": paths.state_dir,
                "log_dir": paths.log_dir,
                "log_file": paths.log_file(),
            }),
        );
        return print(&format!("{}\n", serde_json::Value::Object(object)));
    }
    let mut source = match &config.source {
        Some(source) => format!("# from {}", one_line(source)),
        None => match hint::per_user_config() {
            Some(file) => format!(
                "# built-in defaults: no config file (the per-user one goes at {})",
                one_line(&file)
            ),
            None => "# built-in defaults (no config file)".to_string(),
        },
    };
    for (var, key) in &config.env_overrides {
        source.push_str(&format!("\n# {key}: from {var}"));
    }
    if state_dir_flag {
        source.push_str("\n# state_dir: from --state-dir");
    }
    print(&format!(
        "{source}\n# state dir: {}\n# log file:  {}\n{}",
        one_line(&paths.state_dir),
        one_line(&paths.log_file()),
        config.to_toml()
    ))
}

/// A path for a comment line: quoted, with its control characters escaped,
/// when it has any, so a newline in it cannot end the comment and leave
/// the rest to be read as TOML.
fn one_line(path: &std::path::Path) -> String {
    let text = path.display().to_string();
    if text.contains(char::is_control) {
        format!("{text:?}")
    } else {
        text
    }
}

/// Print a `doctor` report: one line per finding, its fix indented below.
pub fn doctor(report: &spfs_autostart::doctor::Report, json: bool) -> io::Result<()> {
    use spfs_autostart::doctor::Severity;
    // Each finding's remedies, as this CLI's flags and commands.
    let hints = |f: &spfs_autostart::doctor::Finding| hint::for_remedies(&f.remedies);
    if json {
        let findings: Vec<_> = report
            .findings
            .iter()
            .map(|f| {
                let mut finding = json!(f);
                finding["hints"] = json!(hints(f));
                finding
            })
            .collect();
        let report = json!({
            "healthy": report.healthy(),
            "findings": findings,
            "next": report.next,
        });
        return print(&format!("{report}\n"));
    }
    let mut out = String::new();
    for f in &report.findings {
        let mark = match f.severity {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Problem => "PROBLEM",
        };
        out.push_str(&format!("{mark:<8} {}: {}\n", f.check, f.summary));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("         fix: {fix}\n"));
        }
        for hint in hints(f) {
            out.push_str(&format!("         hint: {hint}\n"));
        }
    }
    out.push_str(&format!("next     ensure would {}\n", report.next));
    print(&out)
}

/// Print an error: what failed, the CLI's own way to fix it (its flags and
/// commands for the keys and operations the message names), then the
/// service's log file and last lines.
pub fn error(error: &Error, json: bool) {
    let mut stderr = std::io::stderr().lock();
    let hints = hint::for_remedies(error.remedies());
    if json {
        let log = error.log();
        let _ = writeln!(
            stderr,
            "{}",
            json!({ "error": {
                "kind": error.kind().as_str(),
                "message": error.message(),
                "hints": hints,
                "log_file": log.map(|l| &l.path),
                "log_tail": log.map(|l| &l.tail),
            }})
        );
        return;
    }
    let _ = writeln!(stderr, "error: {error}");
    for hint in &hints {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    if let Some(log) = error.log() {
        let _ = writeln!(stderr, "log: {}", log.path.display());
        if log.tail.is_empty() {
            let _ = writeln!(stderr, "(nothing from this run is in the log)");
        } else {
            let _ = writeln!(stderr, "last lines of the log:");
            for line in &log.tail {
                let _ = writeln!(stderr, "  | {line}");
            }
        }
    }
}

/// Arguments that cannot be parsed, with `--json`: the error object every
/// other error has, of kind `Usage`, with clap's text (usage line and all)
/// as the message.
pub fn usage_error(text: &str) {
    // The hint says what clap's last line says.
    let message = text
        .trim_end()
        .trim_end_matches("For more information, try '--help'.")
        .trim_end()
        .trim_start_matches("error: ");
    let _ = writeln!(
        std::io::stderr().lock(),
        "{}",
        json!({ "error": {
            "kind": "Usage",
            "message": message,
            "hints": ["spfs-autostart --help lists the commands and their arguments"],
            "log_file": null,
            "log_tail": null,
        }})
    );
}

/// Whether stderr is a terminal that understands escape sequences: not a
/// file or a pipe, and not `TERM=dumb` (Emacs's shell, some CI consoles),
/// which would print them.
pub fn stderr_takes_escapes() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// Run `work`; if it takes longer than half a second and stderr is a
/// terminal, show a spinner with what it does (`what`, asked at every
/// tick: a start may become a wait for another) and the elapsed time until
/// it ends.
///
/// `work` comes pinned by the caller, so its future (the core's `ensure` is
/// about 10 KB) is stored once, in the caller's. Taken by value and pinned
/// here, it was stored twice more, and the CLI's `ensure` future came to
/// 33 KB (now 11 KB), which a fresh process writes on first touch.
pub async fn with_progress<F: Future>(
    what: impl Fn() -> String,
    mut work: Pin<&mut F>,
) -> F::Output {
    if !stderr_takes_escapes() {
        return work.await;
    }
    let started = Instant::now();
    let quiet = tokio::time::sleep(Duration::from_millis(500));
    tokio::select! {
        result = &mut work => return result,
        () = quiet => {}
    }
    let frames = ['|', '/', '-', '\\'];
    // Cleared however the wait ends: Ctrl-C drops it mid-frame.
    let _line = SpinnerLine;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut frame = 0;
    loop {
        tokio::select! {
            result = &mut work => break result,
            _ = tick.tick() => {
                // What is done changes (a start becomes a wait): the rest
                // of a longer line before is cleared.
                eprint!(
                    "\r{} {}... {:.1}s\x1b[K",
                    frames[frame % frames.len()],
                    what(),
                    started.elapsed().as_secs_f64()
                );
                frame += 1;
            }
        }
    }
}

/// The spinner's line, cleared when dropped: at the end of the wait, or
/// when an interrupt drops the wait mid-frame (the shell's prompt, or what
/// the interruption left, would follow on the spinner's line).
struct SpinnerLine;

impl Drop for SpinnerLine {
    fn drop(&mut self) {
        eprint!("\r\x1b[2K");
    }
}

/// Says what an `ensure` or `stop` leaves behind when it is dropped before
/// it finishes (Ctrl-C, SIGTERM, SIGHUP drop the command): the service it
/// was starting or stopping, and the command that finishes the job. Not
/// with `--json`, whose stderr holds JSON only; the exit code says it.
pub struct OnInterrupt<'a> {
    manager: &'a ServiceManager,
    json: bool,
    finished: bool,
}

impl<'a> OnInterrupt<'a> {
    /// Watch a command of `manager` from now on.
    pub fn new(manager: &'a ServiceManager, json: bool) -> OnInterrupt<'a> {
        OnInterrupt {
            manager,
            json,
            finished: false,
        }
    }

    /// The command finished, with whatever result: nothing to say.
    pub fn finished(mut self) {
        self.finished = true;
    }
}

impl Drop for OnInterrupt<'_> {
    fn drop(&mut self) {
        if self.finished || self.json {
            return;
        }
        // What the manager was last doing; nothing when it had not begun.
        if let Some(activity) = self.manager.activity() {
            eprintln!("interrupted: {}", hint::after_interruption(&activity));
        }
    }
}

/// One mount as text: `pid 4242 rt-1 editable platform/base`.
fn mount_line(mount: &spfs_autostart::Mount) -> String {
    let mut text = format!("pid {}", mount.root_pid);
    if !mount.runtime_name.is_empty() {
        text.push_str(&format!(" {}", mount.runtime_name));
    }
    text.push_str(if mount.editable {
        " editable"
    } else {
        " read-only"
    });
    text.push_str(&format!(" {}", mount.env_spec));
    text
}

fn human_secs(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_line_gives_the_idle_deadline_or_why_there_is_none() {
        assert_eq!(
            idle_exit_word(IdleExit::After { secs: 1796 }),
            "idle_exit_in=1796s"
        );
        assert_eq!(idle_exit_word(IdleExit::Never), "idle_exit=never");
        assert_eq!(idle_exit_word(IdleExit::NotWhileLeased), "idle_exit=leased");
        assert_eq!(idle_exit_word(IdleExit::NotWhileBusy), "idle_exit=busy");
    }
}
