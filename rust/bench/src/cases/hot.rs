//! Section 1, the hot path: `ensure` when the service runs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use spfs_autostart::ServiceManager;
use spfs_autostart::proto::control::{InfoRequest, control_client::ControlClient};
use spfs_autostart::proto::vfs::{StatusRequest, vfs_service_client::VfsServiceClient};
use tokio::runtime::Runtime;

use super::{PAUSE, Result, err, ffi, plain_service, ratio, self_cpu, stop_child};
use crate::Options;
use crate::naive;
use crate::procs::{self, Reaper, run_timed};
use crate::report::{Row, Verdict, timing};
use crate::sandbox::{BenchSandbox, Bins, Sandbox, kit_sandbox};
use crate::stats::{Summary, fmt_secs};

/// Section 1: `ensure` against a running service, in-process, from a fresh
/// process and through the C ABI, each beside the naive probe.
pub(super) fn run(
    rt: &Runtime,
    bins: &Bins,
    opts: &Options,
    reaper: &mut Reaper,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let sb = kit_sandbox(bins)?;
    let manager = sb.manager();
    rt.block_on(manager.ensure())
        .map_err(err("start the service for the hot path"))?;
    let (plain, port) = plain_service(rt, bins, reaper)?;
    let n = opts.iters(5000, 300);
    in_process(rt, &manager, port, n, rows)?;
    cpu_per_call(rt, &manager, n, rows)?;
    let m = opts.iters(200, 20);
    fresh_processes(bins, &sb, port, m, rows)?;
    // (c) through the C ABI, from a fresh process.
    rows.push(ffi::c_hot(bins, &sb, m, naive_probe(bins, port, &[])));
    stop_child(plain);
    rt.block_on(manager.stop())
        .map_err(err("stop the hot-path service"))?;
    Ok(())
}

/// Rows 1a, 1a' and 1a-idle.
fn in_process(
    rt: &Runtime,
    manager: &ServiceManager,
    port: u16,
    n: usize,
    rows: &mut Vec<Row>,
) -> Result<()> {
    // (a) in-process, warm manager, vs the naive probe in-process; with,
    // interleaved so they share the noise, where the time goes: the
    // Control.Info RPC alone on a warm channel, and the gRPC floor (a unary
    // VfsService.Status on a warm tonic channel) over a Unix socket and TCP.
    // Once back to back (as criterion would), once 1 ms apart (the parked
    // threads on both sides must wake up, as for a real caller).
    let [o, b, i, fu, ft] = hot_loop(rt, manager, port, n, None)?;
    let [po, pb, _, pfu, _] = hot_loop(rt, manager, port, n, Some(PAUSE))?;
    rows.push(Row {
        id: "1a".into(),
        name: "hot ensure, in-process, warm ServiceManager, back to back".into(),
        ours: timing(o),
        baseline: format!("naive probe in-process: {}", timing(b)),
        ratio: ratio(o, b),
        target: "median <= 150 us".into(),
        verdict: Verdict::of(o.is_some_and(|o| o.median <= 150e-6)),
        data: json!({"unit": "us", "ours": o.map(|s| s.json(1e6)), "naive_probe": b.map(|s| s.json(1e6))}),
    });
    rows.push(Row {
        id: "1a'".into(),
        name: "  where 1a goes: Control.Info RPC alone, warm channel".into(),
        ours: timing(i),
        baseline: format!(
            "gRPC floor, VfsService.Status warm: Unix {}; TCP {}",
            timing(fu),
            timing(ft)
        ),
        ratio: ratio(i, fu),
        target: "-".into(),
        verdict: Verdict::Info,
        data: json!({"unit": "us", "info_rpc": i.map(|s| s.json(1e6)), "floor_unix": fu.map(|s| s.json(1e6)),
                     "floor_tcp": ft.map(|s| s.json(1e6))}),
    });
    rows.push(Row {
        id: "1a-idle".into(),
        name: "hot ensure, in-process, calls 1 ms apart".into(),
        ours: timing(po),
        baseline: format!(
            "naive probe: {}; gRPC floor (Unix): {}",
            timing(pb),
            timing(pfu)
        ),
        ratio: ratio(po, pb),
        target: "-".into(),
        verdict: Verdict::Info,
        data: json!({"unit": "us", "ours": po.map(|s| s.json(1e6)), "naive_probe": pb.map(|s| s.json(1e6)),
                     "floor_unix": pfu.map(|s| s.json(1e6))}),
    });
    Ok(())
}

/// Row 1a'': the CPU time of `n` back-to-back hot ensures, ours and the
/// service's.
fn cpu_per_call(
    rt: &Runtime,
    manager: &ServiceManager,
    n: usize,
    rows: &mut Vec<Row>,
) -> Result<()> {
    // CPU per hot ensure, ours and the service's: the rest of the wall
    // time is waiting for the other side to be scheduled.
    let service_pid = rt
        .block_on(manager.ensure())
        .map_err(err("hot ensure"))?
        .pid
        .ok_or("the kit service reported no pid")?;
    let (self0, svc0) = (self_cpu(), procs::cpu_time(service_pid));
    let t = Instant::now();
    rt.block_on(async {
        for _ in 0..n {
            manager.ensure().await.map_err(err("hot ensure"))?;
        }
        Ok::<(), String>(())
    })?;
    let wall = t.elapsed().as_secs_f64() / n as f64;
    let client = (self_cpu() - self0).as_secs_f64() / n as f64;
    let service = match (svc0, procs::cpu_time(service_pid)) {
        (Some(a), Some(b)) => Some((b - a).as_secs_f64() / n as f64),
        _ => None,
    };
    rows.push(Row {
        id: "1a''".into(),
        name: "  where 1a goes: CPU per call (back-to-back mean)".into(),
        ours: format!(
            "wall {}: client CPU {}, service CPU {}",
            fmt_secs(wall),
            fmt_secs(client),
            service.map(fmt_secs).unwrap_or_else(|| "-".into())
        ),
        baseline: format!(
            "remainder (wake-ups, scheduling): {}",
            service
                .map(|s| fmt_secs((wall - client - s).max(0.0)))
                .unwrap_or_else(|| "-".into())
        ),
        ratio: None,
        target: "-".into(),
        verdict: Verdict::Info,
        data: json!({"unit": "us", "wall_mean": wall * 1e6, "client_cpu": client * 1e6,
                     "service_cpu": service.map(|s| s * 1e6), "calls": n}),
    });
    Ok(())
}

/// Rows 1b, 1b', 1b'' and 1b'+: `m` fresh `spfs-autostart ensure`
/// processes beside `--version`, `config`, the naive probe process and the
/// naive probe that waits for an answer.
fn fresh_processes(
    bins: &Bins,
    sb: &Sandbox,
    port: u16,
    m: usize,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let [version, ensure, answered, config, probe] = time_fresh_processes(bins, sb, port, m)?;
    let (e, v, p) = (ensure.wall, version.wall, probe.wall);
    let (rv, rp) = (ratio(e, v), ratio(e, p));
    rows.push(Row {
        id: "1b".into(),
        name: "hot ensure, fresh process (`spfs-autostart ensure`)".into(),
        ours: timing(e),
        baseline: format!("`spfs-autostart --version`: {}", timing(v)),
        ratio: rv,
        target: "<= 2x process start-up".into(),
        verdict: Verdict::of(rv.is_some_and(|r| r <= 2.0)),
        data: json!({
            "unit": "us",
            "ensure": e.map(|s| s.json(1e6)),
            "version": v.map(|s| s.json(1e6)),
            "ensure_cpu": ensure.cpu.map(|s| s.json(1e6)),
            "version_cpu": version.cpu.map(|s| s.json(1e6)),
        }),
    });
    rows.push(Row {
        id: "1b'".into(),
        name: "hot ensure, fresh process, vs naive probe process".into(),
        ours: timing(e),
        baseline: format!("naive probe, fresh process: {}", timing(p)),
        ratio: rp,
        target: "not slower (<= 1.0)".into(),
        verdict: Verdict::of(rp.is_some_and(|r| r <= 1.0)),
        data: json!({"unit": "us", "ensure": e.map(|s| s.json(1e6)), "naive_probe": p.map(|s| s.json(1e6))}),
    });
    // How much of 1b' is spent before any connection: the same process
    // parsing its arguments (with clap, which a bare `ensure` skips),
    // reading its config file, building its runtime and printing, with no
    // socket. A floor for any way of checking the service.
    rows.push(info_row(
        "1b''",
        "  1b' before connecting: fresh `spfs-autostart config`",
        ("config", config.wall),
        ("naive probe, fresh process", "naive_probe", p),
    ));
    // The wait 1b' includes and the naive probe skips: `ensure` waits for
    // the service's answer (that is how it knows the service serves); the
    // naive probe exits once its connection is made.
    rows.push(info_row(
        "1b'+",
        "  1b' vs the naive probe waiting for one answer",
        ("ensure", e),
        (
            "naive probe + `VfsService.Status`, fresh process",
            "naive_probe_answered",
            answered.wall,
        ),
    ));
    Ok(())
}

/// A row that only informs: `ours` (its data key, its timing) beside
/// `baseline` (its label, its data key, its timing), with their ratio.
fn info_row(
    id: &str,
    name: &str,
    (ours_key, ours): (&str, Option<Summary>),
    (label, baseline_key, baseline): (&str, &str, Option<Summary>),
) -> Row {
    Row {
        id: id.into(),
        name: name.into(),
        ours: timing(ours),
        baseline: format!("{label}: {}", timing(baseline)),
        ratio: ratio(ours, baseline),
        target: "-".into(),
        verdict: Verdict::Info,
        data: json!({
            "unit": "us",
            ours_key: ours.map(|s| s.json(1e6)),
            baseline_key: baseline.map(|s| s.json(1e6)),
        }),
    }
}

/// Wall and CPU time of one kind of fresh process.
struct Timed {
    wall: Option<Summary>,
    cpu: Option<Summary>,
}

/// `m` rounds of five fresh processes, interleaved so they share the noise:
/// `spfs-autostart --version`, `ensure`, the naive probe waiting for one
/// answer, `spfs-autostart config`, and the naive probe.
///
/// The order matters: a service finishes with a closed connection while the
/// next process runs, and the naive probe leaves the most (it exits before
/// the service has read its handshake). So `ensure` and both probes each
/// follow a process that connects to no service or to the other one, and
/// `--version` (row 1b's baseline, met by far) follows the naive probe.
fn time_fresh_processes(bins: &Bins, sb: &Sandbox, port: u16, m: usize) -> Result<[Timed; 5]> {
    let mut commands = [
        sb.quiet_cli(bins, &["--version"]),
        sb.quiet_cli(bins, &["ensure"]),
        naive_probe(bins, port, &["--answered"]),
        sb.quiet_cli(bins, &["config"]),
        naive_probe(bins, port, &[]),
    ];
    let mut wall: [Vec<Duration>; 5] = Default::default();
    let mut cpu: [Vec<Duration>; 5] = Default::default();
    let mut failures = 0;
    for _ in 0..m {
        for (i, cmd) in commands.iter_mut().enumerate() {
            let f = run_timed(cmd).map_err(|e| format!("run {:?}: {e}", cmd.get_program()))?;
            failures += usize::from(!f.status.success());
            wall[i].push(f.wall);
            cpu[i].push(f.cpu);
        }
    }
    if failures > 0 {
        return Err(format!(
            "{failures} fresh processes (ensure, --version, config, probes) failed"
        ));
    }
    Ok(std::array::from_fn(|i| Timed {
        wall: Summary::of(&wall[i]),
        cpu: Summary::of(&cpu[i]),
    }))
}

/// The naive probe as a fresh process (`extra`: its options), quiet.
pub(super) fn naive_probe(bins: &Bins, port: u16, extra: &[&str]) -> Command {
    let mut cmd = Command::new(&bins.bench);
    cmd.args(["naive-probe", &port.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// `n` rounds of: naive probe, ensure, Control.Info alone, VfsService.Status
/// over Unix and over TCP; with `pause` before each call, or back to back.
/// Back to back, the naive probe comes first and is followed by an unmeasured
/// 1 ms pause and a warm-up call: the service must accept and tear down each
/// probe connection, and a probe loop that outruns it fills the listen
/// backlog (and the teardown would be charged to our next call).
fn hot_loop(
    rt: &Runtime,
    manager: &ServiceManager,
    port: u16,
    n: usize,
    pause: Option<Duration>,
) -> Result<[Option<Summary>; 5]> {
    let mut samples: [Vec<Duration>; 5] = Default::default();
    rt.block_on(async {
        // The manager's own warm connection, which `ensure` uses too.
        let unix = manager
            .channel()
            .await
            .map_err(|e| format!("channel: {e}"))?;
        let mut control = ControlClient::new(unix.clone());
        let tcp = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("channel: {e}"))?;
        let mut vfs_unix = VfsServiceClient::new(unix.clone());
        let mut vfs_tcp = VfsServiceClient::new(tcp);
        for round in 0..n + 100 {
            let mut took = [Duration::ZERO; 5];
            for op in [1, 0, 2, 3, 4] {
                if let Some(pause) = pause {
                    tokio::time::sleep(pause).await;
                }
                let t = Instant::now();
                let ok = match op {
                    0 => manager.ensure().await.is_ok(),
                    1 => naive::probe(port).await,
                    2 => control.info(InfoRequest { touch: true }).await.is_ok(),
                    3 => vfs_unix.status(StatusRequest {}).await.is_ok(),
                    _ => vfs_tcp.status(StatusRequest {}).await.is_ok(),
                };
                took[op] = t.elapsed();
                if !ok {
                    return Err(format!(
                        "hot-path operation {op} failed against a running service"
                    ));
                }
                if op == 1 && pause.is_none() {
                    tokio::time::sleep(PAUSE).await;
                    let _ = vfs_unix.status(StatusRequest {}).await;
                }
            }
            if round >= 100 {
                for (v, d) in samples.iter_mut().zip(took) {
                    v.push(d);
                }
            }
        }
        Ok(())
    })?;
    Ok(samples.each_ref().map(|v| Summary::of(v)))
}
