//! Section 3, the thundering herd: many `ensure`s at the same instant on a
//! stopped service.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::runtime::Runtime;

use super::{Result, err, ratio};
use crate::Options;
use crate::procs::Reaper;
use crate::report::{Row, Verdict, timing};
use crate::sandbox::{BenchSandbox, Bins, free_port, kit_sandbox};
use crate::stats::Summary;

/// Section 3: `n` CLI `ensure`s released at once on a stopped service,
/// and `n` naive ensures likewise: their latency and how many services each
/// started.
pub(super) fn run(
    rt: &Runtime,
    bins: &Bins,
    opts: &Options,
    n: usize,
    reaper: &mut Reaper,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let reps = opts.iters(3, 1);
    let (mut ours, mut naive_lat) = (Vec::new(), Vec::new());
    let (mut ours_spawned, mut naive_spawned) = (Vec::new(), Vec::new());
    let mut failures = 0;
    for _ in 0..reps {
        let sb = kit_sandbox(bins)?;
        for r in gated(bins, n, || sb.quiet_cli(bins, &["ensure"]))? {
            failures += usize::from(!r.1.success());
            ours.push(r.0);
        }
        ours_spawned.push(sb.spawn_count());
        rt.block_on(sb.manager().stop())
            .map_err(err("stop after the herd"))?;
        naive_spawned.push(naive_herd(bins, n, reaper, &mut naive_lat)?);
    }
    let (o, b) = (Summary::of(&ours), Summary::of(&naive_lat));
    let max_spawned = ours_spawned.iter().copied().max().unwrap_or(0);
    rows.push(Row {
        id: format!("3/{n}"),
        name: format!("thundering herd: {n} x `spfs-autostart ensure` from cold (spawned per run)"),
        ours: format!(
            "{}; spawned {:?}{}",
            timing(o),
            ours_spawned,
            if failures > 0 {
                format!("; {failures} FAILED")
            } else {
                String::new()
            }
        ),
        baseline: format!("naive: {}; spawned {:?}", timing(b), naive_spawned),
        ratio: ratio(o, b),
        target: "exactly 1 service spawned".into(),
        verdict: Verdict::of(
            max_spawned == 1 && ours_spawned.iter().all(|&c| c == 1) && failures == 0,
        ),
        data: json!({
            "unit": "ms",
            "processes": n,
            "ours": o.map(|x| x.json(1e3)),
            "ours_spawned": ours_spawned,
            "ours_failures": failures,
            "naive": b.map(|x| x.json(1e3)),
            "naive_spawned": naive_spawned,
        }),
    });
    Ok(())
}

/// The naive herd: `n` processes each probe, fail and spawn. Appends their
/// latencies to `latencies`; returns how many services they started (all
/// reaped).
fn naive_herd(
    bins: &Bins,
    n: usize,
    reaper: &mut Reaper,
    latencies: &mut Vec<Duration>,
) -> Result<usize> {
    let port = free_port().to_string();
    let pids = tempfile::tempdir().map_err(|e| e.to_string())?;
    let service = bins.service.display().to_string();
    let pid_dir = pids.path().display().to_string();
    let naive_cmd = || {
        let mut cmd = Command::new(&bins.bench);
        cmd.args(["naive-ensure", &port, &service, &pid_dir])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    for r in gated(bins, n, naive_cmd)? {
        latencies.push(r.0);
    }
    let spawned: Vec<u32> = std::fs::read_dir(pids.path())
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let count = spawned.len();
    for pid in spawned {
        reaper.adopt(pid);
    }
    reaper.sweep();
    Ok(count)
}

/// Start `n` copies of `make()` held at a gate (a `gate` child blocked on a
/// shared pipe), then open the gate: they all exec at the same instant, with
/// fork and exec of the harness's children out of the way. Returns each
/// one's time from the opening to its exit, and its exit status.
fn gated(
    bins: &Bins,
    n: usize,
    make: impl Fn() -> Command,
) -> Result<Vec<(Duration, std::process::ExitStatus)>> {
    let (reader, writer) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let mut children = Vec::with_capacity(n);
    for _ in 0..n {
        let inner = make();
        let mut cmd = Command::new(&bins.bench);
        cmd.arg("gate")
            .arg(inner.get_program())
            .args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let gate = reader.try_clone().map_err(|e| format!("pipe: {e}"))?;
        cmd.stdin(Stdio::from(gate))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        children.push(
            cmd.spawn()
                .map_err(|e| format!("spawn a gated child: {e}"))?,
        );
    }
    drop(reader);
    // Let every child reach its read() of the gate.
    std::thread::sleep(Duration::from_millis(200));
    let open = Instant::now();
    drop(writer);
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = children
            .iter_mut()
            .map(|child| s.spawn(move || child.wait().map(|status| (open.elapsed(), status))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("waiter thread"))
            .collect::<Vec<_>>()
    });
    results
        .into_iter()
        .map(|r| r.map_err(|e| format!("wait for a gated child: {e}")))
        .collect()
}
