//! The harness's own child processes (hidden subcommands): the naive
//! probe and ensure, the tail, and the gate that releases a herd at once.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use serde_json::json;
use tokio::runtime::Runtime;

use crate::naive;
use crate::procs;

/// A runtime for a child role: one thread, as a small tool would have.
fn single_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `naive-probe PORT [--answered]`: exit 0 when the naive probe succeeds;
/// with `--answered`, when the probe's connection also answers one call.
pub fn child_naive_probe(args: &[String]) -> ExitCode {
    let (port, answered) = match args {
        [port] => (port.parse().ok(), false),
        [port, flag] if flag == "--answered" => (port.parse().ok(), true),
        _ => (None, false),
    };
    let Some(port) = port else {
        eprintln!("usage: naive-probe PORT [--answered]");
        return ExitCode::from(2);
    };
    let rt = single_thread_runtime();
    let ok = if answered {
        rt.block_on(naive::probe_answered(port))
    } else {
        rt.block_on(naive::probe(port))
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `naive-ensure PORT PROGRAM PID_DIR`: the naive ensure; a spawn leaves an
/// empty file named after the child's pid in PID_DIR.
pub fn child_naive_ensure(args: &[String]) -> ExitCode {
    let [port, program, pid_dir] = args else {
        eprintln!("usage: naive-ensure PORT PROGRAM PID_DIR");
        return ExitCode::from(2);
    };
    let Ok(port) = port.parse() else {
        return ExitCode::from(2);
    };
    let program = PathBuf::from(program);
    let pid_dir = PathBuf::from(pid_dir);
    let rt = single_thread_runtime();
    // Record the pid as soon as it is spawned, before the polling.
    let outcome = rt.block_on(async {
        if naive::probe(port).await {
            return Ok(true);
        }
        let child = naive::spawn_plain(&program, port)?;
        std::fs::write(pid_dir.join(child.id().to_string()), b"")?;
        let deadline = Instant::now() + naive::DEADLINE;
        loop {
            tokio::time::sleep(naive::POLL).await;
            if naive::probe(port).await {
                return Ok::<bool, std::io::Error>(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("naive ensure: {e}");
            ExitCode::from(2)
        }
    }
}

/// `tail-child FILE N`: only the tail; lines to stdout, then
/// `{"bytes_read", "vmhwm_kib", "micros"}` on stderr.
pub fn child_tail(args: &[String]) -> ExitCode {
    let (Some(file), Some(n)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        eprintln!("usage: tail-child FILE N");
        return ExitCode::from(2);
    };
    let start = Instant::now();
    let tail = match spfs_autostart::logs::tail(Path::new(file), n) {
        Ok(tail) => tail,
        Err(e) => {
            eprintln!("tail: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in &tail.lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    let micros = start.elapsed().as_secs_f64() * 1e6;
    eprintln!(
        "{}",
        json!({"bytes_read": tail.bytes_read, "vmhwm_kib": procs::status_kib("self", "VmHWM"), "micros": micros})
    );
    ExitCode::SUCCESS
}

/// `gate PROGRAM ARGS...`: block until stdin reaches end of file (the
/// harness closes the pipe), then become PROGRAM.
pub fn child_gate(args: &[String]) -> ExitCode {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let Some(program) = args.first() else {
        eprintln!("usage: gate PROGRAM ARGS...");
        return ExitCode::from(2);
    };
    let mut buf = [0u8; 1];
    while let Ok(n) = std::io::stdin().read(&mut buf) {
        if n == 0 {
            break;
        }
    }
    let e = Command::new(program)
        .args(&args[1..])
        .stdin(Stdio::null())
        .exec();
    eprintln!("gate: cannot exec {program}: {e}");
    ExitCode::from(127)
}
