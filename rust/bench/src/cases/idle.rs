//! Section 5, the idle cost: what a running service and a watcher use
//! while nothing happens.

use std::time::Duration;

use serde_json::json;
use tokio::runtime::Runtime;

use super::{Result, err, plain_service, stop_child};
use crate::Options;
use crate::procs::{self, Reaper};
use crate::report::{Row, Verdict};
use crate::sandbox::{BenchSandbox, Bins, kit_sandbox};

/// Section 5: the CPU and memory an idle kit service, a `watch`
/// subscriber and the plain service use over the window.
pub(super) fn run(
    rt: &Runtime,
    bins: &Bins,
    opts: &Options,
    reaper: &mut Reaper,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let window = Duration::from_secs(if opts.quick { 5 } else { 60 });
    let sb = kit_sandbox(bins)?;
    let manager = sb.manager();
    let status = rt
        .block_on(manager.ensure())
        .map_err(err("start the idle service"))?;
    let pid = status.pid.ok_or("the kit service reported no pid")?;
    let watcher = sb
        .quiet_cli(bins, &["watch"])
        .spawn()
        .map_err(|e| format!("spawn spfs-autostart watch: {e}"))?;
    reaper.adopt(watcher.id());
    let (plain, _port) = plain_service(rt, bins, reaper)?;
    // Let start-up work settle before the window opens.
    std::thread::sleep(Duration::from_secs(1));
    let pids = [pid, watcher.id(), plain.id()];
    let before: Vec<Option<Duration>> = pids.iter().map(|&p| procs::cpu_time(p)).collect();
    std::thread::sleep(window);
    let after: Vec<Option<Duration>> = pids.iter().map(|&p| procs::cpu_time(p)).collect();
    let rss: Vec<Option<u64>> = pids
        .iter()
        .map(|&p| procs::status_kib(&p.to_string(), "VmRSS"))
        .collect();
    let cpu: Vec<Option<Duration>> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| Some(a.as_ref()?.saturating_sub(*b.as_ref()?)))
        .collect();
    stop_child(watcher);
    stop_child(plain);
    rt.block_on(manager.stop())
        .map_err(err("stop the idle service"))?;
    // SAFETY: sysconf has no preconditions.
    let tick = Duration::from_nanos(
        1_000_000_000 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64,
    );
    let near_zero = |c: Option<Duration>| c.is_some_and(|c| c <= tick.max(window / 1000));
    let fmt_cpu = |c: Option<Duration>| {
        c.map(|c| format!("{:.3} s CPU", c.as_secs_f64()))
            .unwrap_or("-".into())
    };
    let fmt_rss = |r: Option<u64>| {
        r.map(|r| format!("{:.1} MiB RSS", r as f64 / 1024.0))
            .unwrap_or("-".into())
    };
    let secs = window.as_secs();
    rows.push(Row {
        id: "5".into(),
        name: format!("idle kit service over {secs} s"),
        ours: format!("{}, {}", fmt_cpu(cpu[0]), fmt_rss(rss[0])),
        baseline: format!("plain service: {}, {}", fmt_cpu(cpu[2]), fmt_rss(rss[2])),
        ratio: None,
        target: "CPU ~0 (<= max(1 tick, 0.1% of window))".into(),
        verdict: Verdict::of(near_zero(cpu[0])),
        data: json!({"window_secs": secs, "cpu_secs": cpu[0].map(|c| c.as_secs_f64()), "rss_kib": rss[0],
                     "plain_cpu_secs": cpu[2].map(|c| c.as_secs_f64()), "plain_rss_kib": rss[2]}),
    });
    rows.push(Row {
        id: "5'".into(),
        name: format!("`spfs-autostart watch` subscriber over {secs} s, nothing happening"),
        ours: format!("{}, {}", fmt_cpu(cpu[1]), fmt_rss(rss[1])),
        baseline: "-".into(),
        ratio: None,
        target: "CPU ~0 (<= max(1 tick, 0.1% of window))".into(),
        verdict: Verdict::of(near_zero(cpu[1])),
        data: json!({"window_secs": secs, "cpu_secs": cpu[1].map(|c| c.as_secs_f64()), "rss_kib": rss[1]}),
    });
    Ok(())
}
