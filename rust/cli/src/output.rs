//! Everything the CLI prints: text for people, one JSON object for scripts,
//! errors on stderr with the service's log tail, progress on a terminal.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::json;
use spfs_autostart::{Error, ServiceManager, Status, StopMethod, StopOutcome};

/// Print a status.
pub fn status(status: &Status, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(status).expect("status serializes")
        );
        return;
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
    if status.managed {
        line("leases", status.leases.len().to_string());
        for lease in &status.leases {
            line(
                "",
                format!("#{} pid {} {}", lease.id, lease.pid, lease.label),
            );
        }
        line(
            "idle exit",
            match status.idle_exit_in_secs {
                Some(secs) => format!("in {}", human_secs(secs)),
                // No lease and no deadline: idle exit is off (or another
                // call is in flight at this very moment).
                None if status.leases.is_empty() => "never".into(),
                None => "not while leases are held".into(),
            },
        );
    }
    line("log", status.log_file.display().to_string());
    if let Some(detail) = &status.detail {
        line("detail", detail.clone());
    }
    for warning in &status.warnings {
        line("warning", warning.clone());
    }
    print!("{out}");
}

/// Print one status change as one line.
pub fn change(status: &Status, json: bool) {
    let mut stdout = std::io::stdout().lock();
    if json {
        let _ = writeln!(
            stdout,
            "{}",
            serde_json::to_string(status).expect("status serializes")
        );
    } else {
        let mut line = status.state.to_string();
        if let Some(pid) = status.pid {
            line.push_str(&format!(" pid={pid}"));
        }
        if status.managed && status.state == spfs_autostart::State::Running {
            line.push_str(&format!(" leases={}", status.leases.len()));
            if let Some(secs) = status.idle_exit_in_secs {
                line.push_str(&format!(" idle_exit_in={secs}s"));
            }
        }
        if let Some(detail) = &status.detail {
            line.push_str(&format!(" ({detail})"));
        }
        let _ = writeln!(stdout, "{line}");
    }
    let _ = stdout.flush();
}

/// Print how `stop` ended.
pub fn stop(outcome: &StopOutcome, json: bool) {
    let (outcome_name, how, pid) = match outcome {
        StopOutcome::NotRunning => ("not_running", None, None),
        StopOutcome::Stopped { how, pid } => ("stopped", Some(*how), *pid),
    };
    if json {
        println!(
            "{}",
            json!({ "outcome": outcome_name, "how": how, "pid": pid })
        );
        return;
    }
    match how {
        None => println!("not running"),
        Some(StopMethod::Graceful) => println!("stopped"),
        Some(StopMethod::Terminated) => {
            println!("stopped (it ignored the shutdown request and was sent SIGTERM)")
        }
        Some(StopMethod::Killed) => println!("stopped (it had to be killed with SIGKILL)"),
    }
}

/// Print one log line.
pub fn log_line(line: &str, json: bool) {
    let mut stdout = std::io::stdout().lock();
    let _ = if json {
        writeln!(stdout, "{}", json!({ "line": line }))
    } else {
        writeln!(stdout, "{line}")
    };
}

/// Print the effective configuration and where its files are.
pub fn config(manager: &ServiceManager, json: bool) {
    let config = manager.config();
    let paths = manager.paths();
    if json {
        println!(
            "{}",
            json!({
                "source": config.source,
                "program": config.program,
                "args": config.args,
                "endpoint": manager.endpoint().to_string(),
                "ready_timeout_secs": config.ready_timeout.as_secs(),
                "stop_timeout_secs": config.stop_timeout.as_secs(),
                "idle_timeout_secs": config.idle_timeout.as_secs(),
                "expected_version": config.expected_version,
                "env": config.env,
                "state_dir": paths.state_dir,
                "log_file": paths.log_file(),
                "log_max_bytes": config.log_max_bytes,
                "log_keep": config.log_keep,
            })
        );
        return;
    }
    match &config.source {
        Some(source) => println!("# from {}", source.display()),
        None => println!("# built-in defaults (no config file)"),
    }
    println!("# state dir: {}", paths.state_dir.display());
    println!("# log file:  {}", paths.log_file().display());
    print!("{}", config.to_toml());
}

/// Print an error: what failed, then the service's log file and last lines.
pub fn error(error: &Error, json: bool) {
    let mut stderr = std::io::stderr().lock();
    if json {
        let log = error.log();
        let _ = writeln!(
            stderr,
            "{}",
            json!({ "error": {
                "kind": error.kind().as_str(),
                "message": error.message(),
                "log_file": log.map(|l| &l.path),
                "log_tail": log.map(|l| &l.tail),
            }})
        );
        return;
    }
    let _ = writeln!(stderr, "error: {error}");
    if let Some(log) = error.log() {
        let _ = writeln!(stderr, "log: {}", log.path.display());
        if log.tail.is_empty() {
            let _ = writeln!(stderr, "(the service wrote nothing to its log)");
        } else {
            let _ = writeln!(stderr, "last lines of the log:");
            for line in &log.tail {
                let _ = writeln!(stderr, "  | {line}");
            }
        }
    }
}

/// Run `work`; if it takes longer than half a second and stderr is a
/// terminal, show a spinner with the elapsed time until it ends.
pub async fn with_progress<T>(what: &str, work: impl Future<Output = T>) -> T {
    if !std::io::stderr().is_terminal() {
        return work.await;
    }
    tokio::pin!(work);
    let started = Instant::now();
    let quiet = tokio::time::sleep(Duration::from_millis(500));
    tokio::select! {
        result = &mut work => return result,
        () = quiet => {}
    }
    let frames = ['|', '/', '-', '\\'];
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut frame = 0;
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            _ = tick.tick() => {
                eprint!("\r{} {what}... {:.1}s ", frames[frame % frames.len()], started.elapsed().as_secs_f64());
                frame += 1;
            }
        }
    };
    eprint!("\r\x1b[2K");
    result
}

fn human_secs(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
