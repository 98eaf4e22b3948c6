//! The measurements, each beside the naive design in the same run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use spfs_autostart::proto::vfs::{StatusRequest, vfs_service_client::VfsServiceClient};
use spfs_autostart::rpc;
use tokio::runtime::Runtime;

use crate::Options;
use crate::naive;
use crate::procs::{self, Reaper, run_timed};
use crate::report::{Row, Verdict, timing};
use crate::sandbox::{Bins, Sandbox, free_port, workspace_root};
use crate::stats::{Summary, fmt_secs};

type Result<T> = std::result::Result<T, String>;

/// The pause before each in-process hot call.
const PAUSE: Duration = Duration::from_millis(1);

/// Run every selected section, appending rows.
pub fn run_all(rt: &Runtime, bins: &Bins, opts: &Options, rows: &mut Vec<Row>) -> Result<()> {
    let mut reaper = Reaper::default();
    if opts.runs(1) {
        hot(rt, bins, opts, &mut reaper, rows)?;
    }
    if opts.runs(2) {
        cold(rt, bins, opts, rows)?;
    }
    if opts.runs(3) {
        for n in [32, 64] {
            herd(rt, bins, opts, n, &mut reaper, rows)?;
        }
    }
    if opts.runs(4) {
        tail(bins, opts, rows)?;
    }
    if opts.runs(5) {
        idle(rt, bins, opts, &mut reaper, rows)?;
    }
    if opts.runs(6) {
        rows.push(ffi_python_status(rt, bins, opts)?);
    }
    reaper.sweep();
    Ok(())
}

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

fn ratio(ours: Option<Summary>, base: Option<Summary>) -> Option<f64> {
    match (ours, base) {
        (Some(o), Some(b)) if b.median > 0.0 => Some(o.median / b.median),
        _ => None,
    }
}

// ---------------------------------------------------------------- 1. hot

fn hot(
    rt: &Runtime,
    bins: &Bins,
    opts: &Options,
    reaper: &mut Reaper,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let sb = Sandbox::new(bins).map_err(|e| format!("sandbox: {e}"))?;
    let manager = sb.manager();
    rt.block_on(manager.ensure())
        .map_err(err("start the service for the hot path"))?;
    let (plain, port) = plain_service(rt, bins, reaper)?;

    // (a) in-process, warm manager, vs the naive probe in-process; with,
    // interleaved so they share the noise, where the time goes: the
    // Control.Info RPC alone on a warm channel, and the gRPC floor (a unary
    // VfsService.Status on a warm tonic channel) over a Unix socket and TCP.
    // Once back to back (as criterion would), once 1 ms apart (the parked
    // threads on both sides must wake up, as for a real caller).
    let n = opts.iters(5000, 300);
    let [o, b, i, fu, ft] = hot_loop(rt, &manager, port, n, None)?;
    let [po, pb, _, pfu, _] = hot_loop(rt, &manager, port, n, Some(PAUSE))?;
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

    // (b) fresh processes, interleaved so they share the noise.
    let m = opts.iters(200, 20);
    let (mut ensure, mut version, mut probe) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ensure_cpu, mut version_cpu) = (Vec::new(), Vec::new());
    let mut failures = 0;
    let port_arg = port.to_string();
    for _ in 0..m {
        let f = run_timed(&mut sb.cli(bins, &["ensure"]))
            .map_err(|e| format!("run spfs-autostart: {e}"))?;
        failures += usize::from(!f.status.success());
        ensure.push(f.wall);
        ensure_cpu.push(f.cpu);
        let f = run_timed(&mut sb.cli(bins, &["--version"]))
            .map_err(|e| format!("run spfs-autostart: {e}"))?;
        version.push(f.wall);
        version_cpu.push(f.cpu);
        let mut cmd = Command::new(&bins.bench);
        cmd.args(["naive-probe", &port_arg])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let f = run_timed(&mut cmd).map_err(|e| format!("run naive probe: {e}"))?;
        failures += usize::from(!f.status.success());
        probe.push(f.wall);
    }
    if failures > 0 {
        return Err(format!(
            "{failures} fresh-process hot ensures or probes failed"
        ));
    }
    let (e, v, p) = (
        Summary::of(&ensure),
        Summary::of(&version),
        Summary::of(&probe),
    );
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
            "ensure_cpu": Summary::of(&ensure_cpu).map(|s| s.json(1e6)),
            "version_cpu": Summary::of(&version_cpu).map(|s| s.json(1e6)),
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

    // (c) through the C ABI, from a fresh process.
    rows.push(ffi_c_hot(bins, &sb, m, p));

    stop_child(plain);
    rt.block_on(manager.stop())
        .map_err(err("stop the hot-path service"))?;
    Ok(())
}

/// `n` rounds of: naive probe, ensure, Control.Info alone, VfsService.Status
/// over Unix and over TCP; with `pause` before each call, or back to back.
/// Back to back, the naive probe comes first and is followed by an unmeasured
/// 1 ms pause and a warm-up call: the service must accept and tear down each
/// probe connection, and a probe loop that outruns it fills the listen
/// backlog (and the teardown would be charged to our next call).
fn hot_loop(
    rt: &Runtime,
    manager: &spfs_autostart::ServiceManager,
    port: u16,
    n: usize,
    pause: Option<Duration>,
) -> Result<[Option<Summary>; 5]> {
    let mut samples: [Vec<Duration>; 5] = Default::default();
    rt.block_on(async {
        let unix = rpc::channel(manager.endpoint().clone(), None)
            .await
            .map_err(|e| format!("channel: {e}"))?;
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
                    2 => matches!(
                        rpc::info(unix.clone(), true, Duration::from_secs(1)).await,
                        rpc::Probe::Kit(..)
                    ),
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

/// Where the FFI crate puts its pieces once it lands.
fn ffi_pieces(bins: &Bins) -> (PathBuf, Option<PathBuf>) {
    let lib = bins.dir.join("libspfs_autostart.so");
    let root = workspace_root();
    let header = [
        root.join("rust/ffi/include/spfs_autostart.h"),
        root.join("include/spfs_autostart.h"),
    ]
    .into_iter()
    .find(|p| p.is_file());
    (lib, header)
}

fn ffi_c_hot(bins: &Bins, sb: &Sandbox, m: usize, naive: Option<Summary>) -> Row {
    let id = "1c";
    let name = "hot ensure, fresh process, through the C ABI";
    let target = "not slower than naive probe";
    let (lib, header) = ffi_pieces(bins);
    let source = workspace_root().join("rust/bench/c/hot_ensure.c");
    if !lib.is_file() {
        return Row::not_measured(
            id,
            name,
            target,
            format!(
                "{} is absent (the FFI crate rust/ffi has not landed or was not built)",
                lib.display()
            ),
        );
    }
    let Some(header) = header else {
        return Row::not_measured(
            id,
            name,
            target,
            "include/spfs_autostart.h is absent".into(),
        );
    };
    let exe = sb.path().join("hot_ensure");
    let include = header.parent().unwrap_or(Path::new("."));
    let compile = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&exe)
        .arg(&source)
        .arg(format!("-I{}", include.display()))
        .arg(format!("-L{}", bins.dir.display()))
        .arg("-lspfs_autostart")
        .arg(format!("-Wl,-rpath,{}", bins.dir.display()))
        .output();
    match compile {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            let first = String::from_utf8_lossy(&out.stderr)
                .lines()
                .find(|l| l.contains("error"))
                .unwrap_or("cc failed")
                .to_string();
            return Row::not_measured(
                id,
                name,
                target,
                format!(
                    "{} does not compile against {}: {first}",
                    source.display(),
                    header.display()
                ),
            );
        }
        Err(e) => return Row::not_measured(id, name, target, format!("cannot run cc: {e}")),
    }
    let (mut ensure, mut startup) = (Vec::new(), Vec::new());
    for _ in 0..m {
        for (startup_only, into) in [(false, &mut ensure), (true, &mut startup)] {
            let mut cmd = Command::new(&exe);
            cmd.arg(&sb.config_file)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if startup_only {
                cmd.arg("--startup-only");
            }
            match run_timed(&mut cmd) {
                Ok(f) if f.status.success() => into.push(f.wall),
                Ok(f) => {
                    return Row::not_measured(
                        id,
                        name,
                        target,
                        format!("hot_ensure failed: {}", f.status),
                    );
                }
                Err(e) => {
                    return Row::not_measured(
                        id,
                        name,
                        target,
                        format!("cannot run hot_ensure: {e}"),
                    );
                }
            }
        }
    }
    let (e, s) = (Summary::of(&ensure), Summary::of(&startup));
    let r = ratio(e, naive);
    Row {
        id: id.into(),
        name: name.into(),
        ours: timing(e),
        baseline: format!(
            "naive probe, fresh process: {}; C start-up only: {}",
            timing(naive),
            timing(s)
        ),
        ratio: r,
        target: target.into(),
        verdict: Verdict::of(r.is_some_and(|r| r <= 1.0)),
        data: json!({"unit": "us", "ensure": e.map(|x| x.json(1e6)), "startup": s.map(|x| x.json(1e6)),
                     "naive_probe": naive.map(|x| x.json(1e6))}),
    }
}

// ---------------------------------------------------------------- 2. cold

/// Exec to first successful connect, and exec to first answer to the same
/// probe our spawner uses (a cold service must also fault in its RPC path
/// before it answers), each polled every 100 us.
fn time_to_serve(
    mut child: Child,
    connect: impl Fn() -> bool,
    answer: impl Fn() -> bool,
    start: Instant,
) -> Result<(Duration, Duration)> {
    let deadline = start + Duration::from_secs(10);
    let mut connected = None;
    loop {
        if connected.is_none() && connect() {
            connected = Some(start.elapsed());
        }
        if let Some(connected) = connected
            && answer()
        {
            let answered = start.elapsed();
            stop_child(child);
            return Ok((connected, answered));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the service exited before serving: {status}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the service did not serve within 10 s".into());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

fn cold(rt: &Runtime, bins: &Bins, opts: &Options, rows: &mut Vec<Row>) -> Result<()> {
    let k = opts.iters(40, 5);
    let (mut kit_connect, mut plain_connect) = (vec![], vec![]);
    let (mut kit_direct, mut ours, mut plain_direct, mut naive_total) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..k {
        // The kit service started directly: its own exec-to-serving time.
        let sb = Sandbox::new(bins).map_err(|e| format!("sandbox: {e}"))?;
        let socket = sb.paths().socket();
        std::fs::create_dir_all(sb.path().join("log")).map_err(|e| e.to_string())?;
        let start = Instant::now();
        // The kit never reads the client's config file: like a spawner, say
        // where its state dir is.
        let child = Command::new(&bins.service)
            .env("SPFS_AUTOSTART_STATE_DIR", &sb.paths().state_dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn the reference service: {e}"))?;
        let endpoint = sb.manager().endpoint().clone();
        let (connected, answered) = time_to_serve(
            child,
            || std::os::unix::net::UnixStream::connect(&socket).is_ok(),
            || {
                matches!(
                    rt.block_on(rpc::probe(&endpoint, false, Duration::from_secs(1))),
                    rpc::Probe::Kit(..)
                )
            },
            start,
        )?;
        kit_connect.push(connected);
        kit_direct.push(answered);
        drop(sb);

        // Ours: stopped -> ready through ensure(), fresh state dir.
        let sb = Sandbox::new(bins).map_err(|e| format!("sandbox: {e}"))?;
        let manager = sb.manager();
        let start = Instant::now();
        rt.block_on(manager.ensure()).map_err(err("cold ensure"))?;
        ours.push(start.elapsed());
        rt.block_on(manager.stop())
            .map_err(err("stop after cold ensure"))?;
        drop(sb);

        // The plain service started directly (the naive design's service time).
        let port = free_port();
        let start = Instant::now();
        let child =
            naive::spawn_plain(&bins.service, port).map_err(|e| format!("spawn plain: {e}"))?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let endpoint = spfs_autostart::ResolvedEndpoint::Tcp(addr);
        let (connected, answered) = time_to_serve(
            child,
            || std::net::TcpStream::connect(addr).is_ok(),
            || {
                matches!(
                    rt.block_on(rpc::probe(&endpoint, false, Duration::from_secs(1))),
                    rpc::Probe::Plain(..)
                )
            },
            start,
        )?;
        plain_connect.push(connected);
        plain_direct.push(answered);

        // The naive cold start.
        let port = free_port();
        let start = Instant::now();
        let outcome = rt
            .block_on(naive::ensure(&bins.service, port))
            .map_err(|e| format!("naive ensure: {e}"))?;
        naive_total.push(start.elapsed());
        if let Some(child) = outcome.spawned {
            stop_child(child);
        }
        if !outcome.ready {
            return Err("the naive cold start never became ready".into());
        }
    }
    let (t, s, pd, nv) = (
        Summary::of(&ours),
        Summary::of(&kit_direct),
        Summary::of(&plain_direct),
        Summary::of(&naive_total),
    );
    let overhead = match (t, s) {
        (Some(t), Some(s)) => Some(t.median - s.median),
        _ => None,
    };
    rows.push(Row {
        id: "2".into(),
        name: "cold ensure, stopped -> ready (kit, Unix socket)".into(),
        ours: timing(t),
        baseline: format!("naive cold start: {}", timing(nv)),
        ratio: ratio(t, nv),
        target: "ratio <= 0.2".into(),
        verdict: Verdict::of(ratio(t, nv).is_some_and(|r| r <= 0.2)),
        data: json!({"unit": "ms", "ours": t.map(|x| x.json(1e3)), "naive": nv.map(|x| x.json(1e3))}),
    });
    rows.push(Row {
        id: "2'".into(),
        name: "cold ensure overhead = total - service exec-to-first-answer".into(),
        ours: overhead.map(fmt_secs).unwrap_or_else(|| "-".into()),
        baseline: format!(
            "service alone, exec to first answer (to connectable): kit {} ({}); plain {} ({}); naive overhead {}",
            timing(s),
            timing(Summary::of(&kit_connect)),
            timing(pd),
            timing(Summary::of(&plain_connect)),
            match (nv, pd) {
                (Some(n), Some(p)) => fmt_secs(n.median - p.median),
                _ => "-".into(),
            }
        ),
        ratio: None,
        target: "overhead <= 2 ms median".into(),
        verdict: Verdict::of(overhead.is_some_and(|o| o <= 2e-3)),
        data: json!({
            "unit": "ms",
            "overhead_median": overhead.map(|o| o * 1e3),
            "kit_service_alone": s.map(|x| x.json(1e3)),
            "kit_service_connectable": Summary::of(&kit_connect).map(|x| x.json(1e3)),
            "plain_service_connectable": Summary::of(&plain_connect).map(|x| x.json(1e3)),
            "plain_service_alone": pd.map(|x| x.json(1e3)),
        }),
    });
    Ok(())
}

// ---------------------------------------------------------------- 3. herd

fn herd(
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
        let sb = Sandbox::new(bins).map_err(|e| format!("sandbox: {e}"))?;
        for r in gated(bins, n, || sb.cli(bins, &["ensure"]))? {
            failures += usize::from(!r.1.success());
            ours.push(r.0);
        }
        ours_spawned.push(sb.spawn_count());
        rt.block_on(sb.manager().stop())
            .map_err(err("stop after the herd"))?;

        // The naive herd: every process probes, fails, spawns.
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
            naive_lat.push(r.0);
        }
        let spawned: Vec<u32> = std::fs::read_dir(pids.path())
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        naive_spawned.push(spawned.len());
        for pid in spawned {
            reaper.adopt(pid);
        }
        reaper.sweep();
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

// ---------------------------------------------------------------- 4. tail

/// The shared 1 GiB log: made once, reused by later runs.
const BIG_LOG: &str = "/tmp/spfs-bench-1GiB.log";
const BIG_LOG_SIZE: u64 = 1 << 30;

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

fn tail(bins: &Bins, opts: &Options, rows: &mut Vec<Row>) -> Result<()> {
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
    // Correctness and VmHWM: one child reporting on stderr.
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
    let report: serde_json::Value =
        serde_json::from_slice(&out.stderr).map_err(|e| format!("tail-child report: {e}"))?;
    // Processes against processes, interleaved, each with its own start-up
    // cost (the same program doing nothing) beside it.
    let m = opts.iters(200, 10);
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
    let [o, os, g, gs] = runs.each_ref().map(|v| Summary::of(v));
    let i = Summary::of(&inproc);
    let work = |a: Option<Summary>, b: Option<Summary>| Some(a?.median - b?.median);
    let (ours_work, gnu_work) = (work(o, os), work(g, gs));
    // Peak memory through GNU time's %M: wait4's ru_maxrss of our own
    // children also counts the harness's RSS at fork time.
    let peak = |program: &Path, args: &[&str]| -> Option<u64> {
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
    };
    let ours_peak = peak(&bins.bench, &["tail-child", BIG_LOG, "100"]);
    let bench_idle_peak = peak(&bins.bench, &["--help"]);
    let gnu_peak = peak(Path::new("tail"), &["-n", "100", BIG_LOG]);
    let kib = |k: Option<u64>| {
        k.map(|k| format!("{k} KiB"))
            .unwrap_or_else(|| "- (no /usr/bin/time)".into())
    };
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
    Ok(())
}

// ---------------------------------------------------------------- 5. idle

fn idle(
    rt: &Runtime,
    bins: &Bins,
    opts: &Options,
    reaper: &mut Reaper,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let window = Duration::from_secs(if opts.quick { 5 } else { 60 });
    let sb = Sandbox::new(bins).map_err(|e| format!("sandbox: {e}"))?;
    let manager = sb.manager();
    let status = rt
        .block_on(manager.ensure())
        .map_err(err("start the idle service"))?;
    let pid = status.pid.ok_or("the kit service reported no pid")?;
    let watcher = sb
        .cli(bins, &["watch"])
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

// ---------------------------------------------------------------- 6. FFI from Python

fn ffi_python_status(rt: &Runtime, bins: &Bins, opts: &Options) -> Result<Row> {
    let id = "6";
    let name = "status() through the FFI from Python, per call";
    let target = "report (ratio to Rust in-process status())";
    let (lib, _) = ffi_pieces(bins);
    let root = workspace_root();
    // scripts/gen-bindings --python writes the module beside a link to the
    // debug library; time the release one: a private copy beside it.
    let generated = root.join("tests/python/generated/spfs_autostart.py");
    let pydir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let module = if generated.is_file() && lib.is_file() {
        let copy = pydir.path().join("spfs_autostart.py");
        std::fs::copy(&generated, &copy).map_err(|e| format!("copy the Python module: {e}"))?;
        std::os::unix::fs::symlink(&lib, pydir.path().join("libspfs_autostart.so"))
            .map_err(|e| format!("link the library: {e}"))?;
        Some(copy)
    } else {
        None
    };
    if !lib.is_file() {
        return Ok(Row::not_measured(
            id,
            name,
            target,
            format!(
                "{} is absent (the FFI crate rust/ffi has not landed or was not built)",
                lib.display()
            ),
        ));
    }
    let Some(module) = module else {
        return Ok(Row::not_measured(
            id,
            name,
            target,
            "the generated Python module tests/python/generated/spfs_autostart.py is absent \
             (run scripts/gen-bindings --python)"
                .into(),
        ));
    };
    let n = opts.iters(2000, 100);
    let sb = Sandbox::new(bins).map_err(|e| format!("sandbox: {e}"))?;
    let manager = sb.manager();
    rt.block_on(manager.ensure())
        .map_err(err("start the service for status"))?;
    let mut rust = Vec::new();
    rt.block_on(async {
        for _ in 0..n {
            let t = Instant::now();
            let _ = manager.status().await;
            rust.push(t.elapsed());
        }
    });
    let out = Command::new("python3")
        .arg(root.join("rust/bench/python/status_bench.py"))
        .arg(n.to_string())
        .env("PYTHONPATH", module.parent().unwrap_or(Path::new(".")))
        .env("SPFS_AUTOSTART_LIB", &lib)
        .env("SPFS_AUTOSTART_CONFIG", &sb.config_file)
        .output();
    rt.block_on(manager.stop())
        .map_err(err("stop the status service"))?;
    let out = match out {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            let why = String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .to_string();
            return Ok(Row::not_measured(
                id,
                name,
                target,
                format!("status_bench.py failed: {why}"),
            ));
        }
        Err(e) => {
            return Ok(Row::not_measured(
                id,
                name,
                target,
                format!("cannot run python3: {e}"),
            ));
        }
    };
    let samples: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|s| s.parse::<f64>().ok())
        .collect();
    let (p, r) = (Summary::of_secs(&samples), Summary::of(&rust));
    Ok(Row {
        id: id.into(),
        name: name.into(),
        ours: timing(p),
        baseline: format!("Rust in-process status(): {}", timing(r)),
        ratio: ratio(p, r),
        target: target.into(),
        verdict: Verdict::Info,
        data: json!({"unit": "us", "python": p.map(|x| x.json(1e6)), "rust": r.map(|x| x.json(1e6))}),
    })
}

// ---------------------------------------------------------------- child roles

fn single_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `naive-probe PORT`: exit 0 when the naive probe succeeds.
pub fn child_naive_probe(args: &[String]) -> ExitCode {
    let Some(port) = args.first().and_then(|p| p.parse().ok()) else {
        eprintln!("usage: naive-probe PORT");
        return ExitCode::from(2);
    };
    if single_thread_runtime().block_on(naive::probe(port)) {
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
