//! The measurements, each beside the naive design in the same run: one
//! module per section of the report (`hot` 1, `cold` 2, `herd` 3, `logs` 4,
//! `idle` 5, `ffi` 1c and 6), the helpers they share here, and the
//! harness's own child processes in `children`.

mod children;
mod cold;
mod ffi;
mod herd;
mod hot;
mod idle;
mod logs;

use std::process::Child;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

pub use children::{child_gate, child_naive_ensure, child_naive_probe, child_tail};

use crate::Options;
use crate::naive;
use crate::procs::{self, Reaper};
use crate::report::Row;
use crate::sandbox::{Bins, free_port};
use crate::stats::Summary;

type Result<T> = std::result::Result<T, String>;

/// The pause before each in-process hot call.
const PAUSE: Duration = Duration::from_millis(1);

/// Run every selected section, appending rows.
pub fn run_all(rt: &Runtime, bins: &Bins, opts: &Options, rows: &mut Vec<Row>) -> Result<()> {
    let mut reaper = Reaper::default();
    if opts.runs(1) {
        hot::run(rt, bins, opts, &mut reaper, rows)?;
    }
    if opts.runs(2) {
        cold::run(rt, bins, opts, rows)?;
    }
    if opts.runs(3) {
        for n in [32, 64] {
            herd::run(rt, bins, opts, n, &mut reaper, rows)?;
        }
    }
    if opts.runs(4) {
        logs::run(bins, opts, rows)?;
    }
    if opts.runs(5) {
        idle::run(rt, bins, opts, &mut reaper, rows)?;
    }
    if opts.runs(6) {
        rows.push(ffi::python_status(rt, bins, opts)?);
    }
    reaper.sweep();
    Ok(())
}

/// Map a client error to the harness's, saying what failed.
fn err(what: &str) -> impl Fn(spfs_autostart::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Start the plain reference service on a fresh port and wait until the
/// naive probe succeeds.
fn plain_service(rt: &Runtime, bins: &Bins, reaper: &mut Reaper) -> Result<(Child, u16)> {
    let port = free_port();
    let child =
        naive::spawn_plain(&bins.service, port).map_err(|e| format!("spawn plain service: {e}"))?;
    reaper.adopt(child.id());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rt.block_on(naive::probe(port)) {
        if Instant::now() > deadline {
            return Err(format!(
                "the plain reference service never served on port {port}"
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok((child, port))
}

/// SIGTERM `child`, then SIGKILL it after 2 s, and reap it.
fn stop_child(mut child: Child) {
    procs::signal(child.id(), libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// This process's user + system CPU time.
fn self_cpu() -> Duration {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Ours over the baseline, by medians.
fn ratio(ours: Option<Summary>, base: Option<Summary>) -> Option<f64> {
    match (ours, base) {
        (Some(o), Some(b)) if b.median > 0.0 => Some(o.median / b.median),
        _ => None,
    }
}
