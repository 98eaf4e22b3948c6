//! Section 2, the cold start: `ensure` when nothing runs.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use spfs_autostart::proto::control::{InfoRequest, control_client::ControlClient};
use spfs_autostart::proto::vfs::{StatusRequest, vfs_service_client::VfsServiceClient};
use tokio::runtime::Runtime;

use super::{Result, err, ratio, stop_child};
use crate::Options;
use crate::naive;
use crate::report::{Row, Verdict, timing};
use crate::sandbox::{BenchSandbox, Bins, free_port, kit_sandbox};
use crate::stats::{Summary, fmt_secs};

/// Every sample of one run of the section, in the order they were taken.
#[derive(Debug, Default)]
struct Samples {
    /// The kit service started directly: exec to connectable.
    kit_connect: Vec<Duration>,
    /// The kit service started directly: exec to first answer.
    kit_direct: Vec<Duration>,
    /// `ensure()` from stopped to ready.
    ours: Vec<Duration>,
    /// The plain service started directly: exec to connectable.
    plain_connect: Vec<Duration>,
    /// The plain service started directly: exec to first answer.
    plain_direct: Vec<Duration>,
    /// The naive cold start, probe to ready.
    naive_total: Vec<Duration>,
}

/// Section 2: stopped to ready, through `ensure()` and the naive design,
/// and each service started directly for what it costs alone.
pub(super) fn run(rt: &Runtime, bins: &Bins, opts: &Options, rows: &mut Vec<Row>) -> Result<()> {
    let mut samples = Samples::default();
    for _ in 0..opts.iters(40, 5) {
        let (connected, answered) = kit_alone(rt, bins)?;
        samples.kit_connect.push(connected);
        samples.kit_direct.push(answered);
        samples.ours.push(ours_cold(rt, bins)?);
        let (connected, answered) = plain_alone(rt, bins)?;
        samples.plain_connect.push(connected);
        samples.plain_direct.push(answered);
        samples.naive_total.push(naive_cold(rt, bins)?);
    }
    push_rows(&samples, rows);
    Ok(())
}

/// The kit service started directly: its own exec-to-serving time.
fn kit_alone(rt: &Runtime, bins: &Bins) -> Result<(Duration, Duration)> {
    let sb = kit_sandbox(bins)?;
    let socket = sb.paths().socket();
    std::fs::create_dir_all(sb.log_dir()).map_err(|e| e.to_string())?;
    let manager = sb.manager();
    let start = Instant::now();
    // The kit never reads the client's config file: like a spawner, say
    // where its state dir is.
    let child = sb
        .command(&bins.service)
        .env("SPFS_AUTOSTART_STATE_DIR", sb.state_dir())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn the reference service: {e}"))?;
    time_to_serve(
        child,
        || std::os::unix::net::UnixStream::connect(&socket).is_ok(),
        // `Control.Info` on a new connection, as `ensure` asks.
        || {
            rt.block_on(async {
                let Ok(channel) = manager.channel().await else {
                    return false;
                };
                let mut control = ControlClient::new(channel);
                let info = control.info(InfoRequest { touch: false });
                matches!(
                    tokio::time::timeout(Duration::from_secs(1), info).await,
                    Ok(Ok(_))
                )
            })
        },
        start,
    )
}

/// Ours: stopped -> ready through `ensure()`, fresh state dir.
fn ours_cold(rt: &Runtime, bins: &Bins) -> Result<Duration> {
    let sb = kit_sandbox(bins)?;
    let manager = sb.manager();
    let start = Instant::now();
    rt.block_on(manager.ensure()).map_err(err("cold ensure"))?;
    let took = start.elapsed();
    rt.block_on(manager.stop())
        .map_err(err("stop after cold ensure"))?;
    Ok(took)
}

/// The plain service started directly (the naive design's service time).
fn plain_alone(rt: &Runtime, bins: &Bins) -> Result<(Duration, Duration)> {
    let port = free_port();
    let start = Instant::now();
    let child = naive::spawn_plain(&bins.service, port).map_err(|e| format!("spawn plain: {e}"))?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    time_to_serve(
        child,
        || std::net::TcpStream::connect(addr).is_ok(),
        // Any gRPC answer, on a new connection.
        || {
            rt.block_on(async {
                let Ok(endpoint) =
                    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                else {
                    return false;
                };
                let Ok(channel) = endpoint.connect().await else {
                    return false;
                };
                let mut vfs = VfsServiceClient::new(channel);
                let status = vfs.status(StatusRequest {});
                matches!(
                    tokio::time::timeout(Duration::from_secs(1), status).await,
                    Ok(Ok(_))
                )
            })
        },
        start,
    )
}

/// The naive cold start: probe, spawn, poll until it answers.
fn naive_cold(rt: &Runtime, bins: &Bins) -> Result<Duration> {
    let port = free_port();
    let start = Instant::now();
    let outcome = rt
        .block_on(naive::ensure(&bins.service, port))
        .map_err(|e| format!("naive ensure: {e}"))?;
    let took = start.elapsed();
    if let Some(child) = outcome.spawned {
        stop_child(child);
    }
    if !outcome.ready {
        return Err("the naive cold start never became ready".into());
    }
    Ok(took)
}

/// Rows 2 and 2'.
fn push_rows(samples: &Samples, rows: &mut Vec<Row>) {
    let (t, s, pd, nv) = (
        Summary::of(&samples.ours),
        Summary::of(&samples.kit_direct),
        Summary::of(&samples.plain_direct),
        Summary::of(&samples.naive_total),
    );
    let (kit_connect, plain_connect) = (
        Summary::of(&samples.kit_connect),
        Summary::of(&samples.plain_connect),
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
            timing(kit_connect),
            timing(pd),
            timing(plain_connect),
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
            "kit_service_connectable": kit_connect.map(|x| x.json(1e3)),
            "plain_service_connectable": plain_connect.map(|x| x.json(1e3)),
            "plain_service_alone": pd.map(|x| x.json(1e3)),
        }),
    });
}

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
