//! Section 4, the logs: `tail_logs(100)` on a 1 GiB log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Result, ratio};
use crate::Options;
use crate::procs::run_timed;
use crate::report::{Row, Verdict, timing};
use crate::sandbox::Bins;
use crate::stats::{Summary, fmt_secs};

/// The shared 1 GiB log: made once, reused by later runs.
const BIG_LOG: &str = "/tmp/spfs-bench-1GiB.log";
/// Its size: 2^23 lines of 128 bytes.
const BIG_LOG_SIZE: u64 = 1 << 30;

/// The shared log, written first when missing or of the wrong size.
fn big_log() -> Result<PathBuf> {
    let path = PathBuf::from(BIG_LOG);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == BIG_LOG_SIZE) {
        return Ok(path);
    }
    eprintln!("writing {BIG_LOG} (1 GiB, once; delete it when done)...");
    let tmp = path.with_extension("partial");
    let file = std::fs::File::create(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    // 128-byte lines, so the size is exact.
    let lines = BIG_LOG_SIZE / 128;
    for i in 0..lines {
        let line = format!(
            "2026-11-26T07:{:02}:{:02}.{:06}Z  INFO spfs_reference_service: request {i:012} served in {:>4}us",
            (i / 60_000_000) % 60,
            (i / 1_000_000) % 60,
            i % 1_000_000,
            i % 9973
        );
        writeln!(out, "{line:<127}").map_err(|e| format!("write {}: {e}", tmp.display()))?;
    }
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
    if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) != BIG_LOG_SIZE {
        return Err(format!("{BIG_LOG} has the wrong size"));
    }
    Ok(path)
}

/// Section 4: `tail_logs(100)` on a 1 GiB log, in-process and as a fresh
/// process beside GNU `tail -n 100`, with its peak memory.
pub(super) fn run(bins: &Bins, opts: &Options, rows: &mut Vec<Row>) -> Result<()> {
    let path = big_log()?;
    // Warm the end of the file into the page cache for both contenders.
    let _ = spfs_autostart::logs::tail(&path, 100);
    // In-process: the library call alone.
    let k = opts.iters(200, 20);
    let mut inproc = Vec::new();
    let mut bytes_read = 0;
    for _ in 0..k {
        let t = Instant::now();
        let tail = spfs_autostart::logs::tail(&path, 100).map_err(|e| format!("tail: {e}"))?;
        inproc.push(t.elapsed());
        bytes_read = tail.bytes_read;
    }
    let report = agrees_with_gnu_tail(bins)?;
    let processes = processes(bins, opts.iters(200, 10))?;
    push_timing_rows(processes, Summary::of(&inproc), rows);
    push_memory_row(bins, &report, bytes_read, rows);
    Ok(())
}

/// Correctness and VmHWM: one child reporting on stderr, whose lines must
/// be GNU tail's. Returns its report.
fn agrees_with_gnu_tail(bins: &Bins) -> Result<serde_json::Value> {
    let out = Command::new(&bins.bench)
        .args(["tail-child", BIG_LOG, "100"])
        .output()
        .map_err(|e| format!("tail-child: {e}"))?;
    let gnu = Command::new("tail")
        .args(["-n", "100", BIG_LOG])
        .output()
        .map_err(|e| format!("GNU tail: {e}"))?;
    if out.stdout != gnu.stdout {
        return Err("tail_logs(100) and GNU tail -n 100 disagree on the last 100 lines".into());
    }
    serde_json::from_slice(&out.stderr).map_err(|e| format!("tail-child report: {e}"))
}

/// Processes against processes, interleaved, each with its own start-up
/// cost (the same program doing nothing) beside it, `m` times: ours, ours
/// with `0`, GNU tail, GNU tail with `-n 0`.
fn processes(bins: &Bins, m: usize) -> Result<[Option<Summary>; 4]> {
    let mut runs: [Vec<Duration>; 4] = Default::default();
    for _ in 0..m {
        let commands: [(&Path, [&str; 3]); 4] = [
            (&bins.bench, ["tail-child", BIG_LOG, "100"]),
            (&bins.bench, ["tail-child", BIG_LOG, "0"]),
            (Path::new("tail"), ["-n", "100", BIG_LOG]),
            (Path::new("tail"), ["-n", "0", BIG_LOG]),
        ];
        for ((program, args), into) in commands.iter().zip(runs.iter_mut()) {
            let mut cmd = Command::new(program);
            cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
            let f = run_timed(&mut cmd).map_err(|e| format!("{}: {e}", program.display()))?;
            into.push(f.wall);
        }
    }
    Ok(runs.each_ref().map(|v| Summary::of(v)))
}

/// Rows 4 and 4'': the process timings (`processes`) and the in-process
/// call `i`.
fn push_timing_rows(processes: [Option<Summary>; 4], i: Option<Summary>, rows: &mut Vec<Row>) {
    let [o, os, g, gs] = processes;
    let work = |a: Option<Summary>, b: Option<Summary>| Some(a?.median - b?.median);
    let (ours_work, gnu_work) = (work(o, os), work(g, gs));
    let r = ratio(o, g);
    rows.push(Row {
        id: "4".into(),
        name: "tail_logs(100) on a 1 GiB log, fresh process".into(),
        ours: format!("{} (in-process call {})", timing(o), timing(i)),
        baseline: format!("GNU `tail -n 100`: {}", timing(g)),
        ratio: r,
        target: "<= 1.5x GNU tail".into(),
        verdict: Verdict::of(r.is_some_and(|r| r <= 1.5)),
        data: json!({"unit": "us", "process": o.map(|x| x.json(1e6)), "in_process": i.map(|x| x.json(1e6)),
                     "gnu_tail": g.map(|x| x.json(1e6))}),
    });
    let fmt = |w: Option<f64>| w.map(fmt_secs).unwrap_or_else(|| "-".into());
    rows.push(Row {
        id: "4''".into(),
        name: "  where 4 goes: run minus start-up (`-n 0`), medians".into(),
        ours: format!("{} (start-up {})", fmt(ours_work), timing(os)),
        baseline: format!("GNU tail: {} (start-up {})", fmt(gnu_work), timing(gs)),
        ratio: match (ours_work, gnu_work) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        },
        target: "-".into(),
        verdict: Verdict::Info,
        data: json!({"unit": "us", "ours_work": ours_work.map(|w| w * 1e6), "gnu_work": gnu_work.map(|w| w * 1e6),
                     "ours_startup": os.map(|x| x.json(1e6)), "gnu_startup": gs.map(|x| x.json(1e6))}),
    });
}

/// Peak memory through GNU time's %M: wait4's ru_maxrss of our own
/// children also counts the harness's RSS at fork time.
fn peak(program: &Path, args: &[&str]) -> Option<u64> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(program)
        .args(args)
        .stdout(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()?
        .trim()
        .parse()
        .ok()
}

/// Row 4': peak memory, ours (and the harness doing nothing) and GNU
/// tail's, and the bytes `tail_logs` read.
fn push_memory_row(bins: &Bins, report: &serde_json::Value, bytes_read: u64, rows: &mut Vec<Row>) {
    let ours_peak = peak(&bins.bench, &["tail-child", BIG_LOG, "100"]);
    let bench_idle_peak = peak(&bins.bench, &["--help"]);
    let gnu_peak = peak(Path::new("tail"), &["-n", "100", BIG_LOG]);
    let kib = |k: Option<u64>| {
        k.map(|k| format!("{k} KiB"))
            .unwrap_or_else(|| "- (no /usr/bin/time)".into())
    };
    rows.push(Row {
        id: "4'".into(),
        name: "tail_logs(100): peak memory and bytes read".into(),
        ours: format!(
            "peak RSS {} (VmHWM {} KiB; harness doing nothing: {}); {} bytes read",
            kib(ours_peak),
            report["vmhwm_kib"],
            kib(bench_idle_peak),
            bytes_read
        ),
        baseline: format!("GNU tail peak RSS {}", kib(gnu_peak)),
        ratio: None,
        target: "cost independent of file size".into(),
        verdict: Verdict::Info,
        data: json!({"vmhwm_kib": report["vmhwm_kib"], "peak_rss_kib": ours_peak,
                     "harness_idle_peak_rss_kib": bench_idle_peak, "gnu_peak_rss_kib": gnu_peak,
                     "bytes_read": bytes_read,
                     "file_bytes": BIG_LOG_SIZE}),
    });
}
