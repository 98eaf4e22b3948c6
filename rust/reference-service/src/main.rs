//! `spfs-reference-service`: a stand-in for `spfs-fuse-macos service /spfs`.
//!
//! It serves a wire-compatible `spfs_vfs.VfsService` with no filesystem
//! behind it, so every client path is tested against a real binary:
//! - kit mode (default): the service kit, `Mount(root_pid)` takes a lease
//!   that follows `root_pid`;
//! - `--plain`: behaves as upstream's spfs-fuse-macos does
//!   (`service [--listen ADDR] [MOUNTPOINT]`, see [`plain`]): TCP, no kit,
//!   no Control service, `Shutdown` only unmounts, SIGINT is graceful and
//!   SIGTERM is not;
//! - failure switches: `--start-delay-ms`, `--fail-at-start`, `--hang`,
//!   `--hang-after-lock`;
//! - test switches: `--slow-calls-ms` (a call in flight that outlasts the
//!   idle timeout, for the idle-exit tests); `--main-proto` (only `Mount`
//!   and `Shutdown`, as spk's `main` has them); `--shutdown-exits`
//!   (`Shutdown` ends a --plain service, as spk's winfsp service does);
//! - lifecycle test switches: `--ready-in-parts-ms` (the readiness line in
//!   two writes), `--helper-secs` (a helper process that inherits every
//!   descriptor), `--exit-after-ms` (exit on its own after serving a while),
//!   `--daemonize` (fork, the first process exits 0, the daemon serves;
//!   `--daemon-parent-waits-ms`: only after a while), `--drop-serve-after-ms`
//!   (the service drops `Kit::serve`'s future, then cleans up a while),
//!   `--listen-delay-ms` (--plain: mounted, not yet listening).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod plain;

use clap::Parser;
use spfs_autostart_kit::proto::vfs::{
    MountInfo, MountRequest, MountResponse, ShutdownRequest, ShutdownResponse, StatusRequest,
    StatusResponse, UnmountRequest, UnmountResponse,
    vfs_service_server::{VfsService, VfsServiceServer},
};
use spfs_autostart_kit::{Identity, Kit, KitConfig, KitHandle};
use tonic::{Request, Response, Status};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "A stand-in for spfs-fuse-macos: the service kit plus spfs_vfs.VfsService"
)]
struct Args {
    /// Behave as upstream's spfs-fuse-macos: TCP, no kit, no Control service.
    #[arg(long)]
    plain: bool,
    /// The TCP address for --plain mode (`IP:PORT`).
    #[arg(
        long,
        env = "SPFS_MACFUSE_LISTEN_ADDRESS",
        default_value = "127.0.0.1:37738"
    )]
    listen: SocketAddr,
    /// Wait this long before serving (a slow start).
    #[arg(long, default_value_t = 0)]
    start_delay_ms: u64,
    /// Print this message and exit 3 instead of serving.
    #[arg(long)]
    fail_at_start: Option<String>,
    /// Never become ready (and never exit on its own).
    #[arg(long)]
    hang: bool,
    /// Test switch: kit mode: take the instance lock (and so name itself in
    /// the record), then never become ready, as a service stuck in its own
    /// set-up would.
    #[arg(long)]
    hang_after_lock: bool,
    /// Report this version instead of the crate's.
    #[arg(long)]
    report_version: Option<String>,
    /// Test switch: `VfsService/Unmount` waits this long before answering, so
    /// tests can hold a call in flight (one that counts as work, unlike
    /// `Status`, which only looks) past the idle timeout or into a drain;
    /// with --plain, so does `Shutdown` (a stop held in its first step).
    #[arg(long, default_value_t = 0)]
    slow_calls_ms: u64,
    /// Test switch: `VfsService/Status` waits this long before answering, as
    /// a service stuck on a hung mount would.
    #[arg(long, default_value_t = 0)]
    slow_status_ms: u64,
    /// --plain: `Shutdown` unmounts and then ends the process, as a service
    /// whose shutdown channel is wired up does (spk's winfsp service),
    /// instead of serving on as spfs-fuse-macos does.
    #[arg(long)]
    shutdown_exits: bool,
    /// Answer only `Mount` and `Shutdown`, as spk's `main` does (`Unmount`
    /// and `Status` are `UNIMPLEMENTED`).
    #[arg(long)]
    main_proto: bool,
    /// Test switch: write the readiness line in two parts, "READY " at once
    /// and the rest once serving, after a pause of this many milliseconds
    /// before binding.
    #[arg(long, default_value_t = 0)]
    ready_in_parts_ms: u64,
    /// Test switch: start a helper (`sleep SECS`) that inherits every
    /// inheritable descriptor, as a careless service's child would.
    #[arg(long)]
    helper_secs: Option<u64>,
    /// Test switch: exit on its own this long after it starts serving.
    #[arg(long)]
    exit_after_ms: Option<u64>,
    /// Test switch: --plain: mount, then wait this long before listening, as
    /// spfs-fuse-macos does while macFUSE mounts (SIGINT meanwhile kills it
    /// and leaves the mount, as upstream catches it only once mounted).
    #[arg(long, default_value_t = 0)]
    listen_delay_ms: u64,
    /// Test switch: fork before serving; the first process exits 0 and the
    /// forked daemon (in a new session) serves, as classic daemons do.
    #[arg(long)]
    daemonize: bool,
    /// Test switch: kit mode: drop the future of `Kit::serve` this long
    /// after serving begins (a `select!` in the service that another branch
    /// won), then go on for a minute before exiting, as a long clean-up.
    #[arg(long)]
    drop_serve_after_ms: Option<u64>,
    /// Test switch: with --daemonize, the first process exits only this
    /// long after the fork, as a daemon's parent that waits for its set-up
    /// does (meanwhile the daemon takes the lock and names itself).
    #[arg(long, default_value_t = 0)]
    daemon_parent_waits_ms: u64,
    /// `[service] [MOUNTPOINT]`, as spfs-fuse-macos takes them: --plain
    /// mode "mounts" at MOUNTPOINT (default /spfs); kit mode ignores them.
    #[arg(value_name = "service] [MOUNTPOINT")]
    words: Vec<String>,
}

/// Mounts by root pid; in kit mode each holds a lease.
#[derive(Debug, Default)]
struct Mounts(Mutex<BTreeMap<u32, MountInfo>>);

/// The `spfs_vfs.VfsService` of both modes.
#[derive(Debug)]
struct Vfs {
    mounts: Arc<Mounts>,
    /// Kit mode: the kit, which `Mount` takes leases from.
    kit: Option<KitHandle>,
    /// `--plain` mode: the stand-in for the FUSE mount, which `Shutdown`
    /// unmounts.
    mount: Option<Arc<plain::Mount>>,
    /// `--slow-calls-ms`: how long `Status` waits before answering.
    slow_calls: Duration,
    slow_status: Duration,
    /// `--main-proto`: `Unmount` and `Status` are unimplemented.
    main_proto: bool,
    /// `--shutdown-exits`: told to end serving after `Shutdown`.
    shutdown_exits: Option<tokio::sync::watch::Sender<bool>>,
}

#[tonic::async_trait]
impl VfsService for Vfs {
    async fn mount(
        &self,
        request: Request<MountRequest>,
    ) -> Result<Response<MountResponse>, Status> {
        let req = request.into_inner();
        if let Some(kit) = &self.kit {
            kit.acquire(req.root_pid, format!("mount {}", req.env_spec))?;
        }
        tracing::info!(
            root_pid = req.root_pid,
            env_spec = req.env_spec,
            editable = req.editable,
            repositories = ?req.repositories,
            "Mounted {} environment",
            if req.editable { "editable" } else { "read-only" }
        );
        self.mounts.0.lock().expect("mounts").insert(
            req.root_pid,
            MountInfo {
                root_pid: req.root_pid,
                env_spec: req.env_spec,
                editable: req.editable,
                runtime_name: req.runtime_name,
            },
        );
        Ok(Response::new(MountResponse {}))
    }

    async fn unmount(
        &self,
        request: Request<UnmountRequest>,
    ) -> Result<Response<UnmountResponse>, Status> {
        if self.main_proto {
            return Err(Status::unimplemented("spk main has no VfsService/Unmount"));
        }
        if !self.slow_calls.is_zero() {
            tokio::time::sleep(self.slow_calls).await;
        }
        let pid = request.into_inner().root_pid;
        let was_mounted = self.mounts.0.lock().expect("mounts").remove(&pid).is_some();
        if let Some(kit) = &self.kit {
            kit.release_pid(pid);
        }
        tracing::info!(root_pid = pid, was_mounted, "Unmounted environment");
        Ok(Response::new(UnmountResponse { was_mounted }))
    }

    async fn shutdown(
        &self,
        _request: Request<ShutdownRequest>,
    ) -> Result<Response<ShutdownResponse>, Status> {
        if let Some(mount) = &self.mount {
            // Upstream: unmount and keep serving; only SIGINT ends the process.
            tracing::info!("Shutdown requested");
            if !self.slow_calls.is_zero() {
                tokio::time::sleep(self.slow_calls).await;
            }
            let unmounted = mount.stop();
            if let Some(exit) = &self.shutdown_exits {
                let _ = exit.send(true);
            }
            unmounted.map_err(|e| Status::internal(format!("Failed to stop service: {e}")))?;
            return Ok(Response::new(ShutdownResponse {}));
        }
        tracing::info!("VfsService/Shutdown requested");
        if let Some(kit) = &self.kit {
            kit.shutdown("VfsService/Shutdown requested");
        }
        Ok(Response::new(ShutdownResponse {}))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        if self.main_proto {
            return Err(Status::unimplemented("spk main has no VfsService/Status"));
        }
        if !self.slow_status.is_zero() {
            tokio::time::sleep(self.slow_status).await;
        }
        let mut mounts = self.mounts.0.lock().expect("mounts");
        // As upstream cleans up a mount when its root process exits: here,
        // when asked (a stand-in need not watch).
        mounts.retain(|&pid, _| root_alive(pid));
        Ok(Response::new(StatusResponse {
            active_mounts: mounts.len() as u32,
            mounts: mounts.values().cloned().collect(),
        }))
    }
}

/// Whether a mount's root process still lives (`kill(pid, 0)`); a pid the
/// kernel cannot take is none.
fn root_alive(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .filter(|&pid| pid > 0)
        .is_some_and(|pid| {
            !matches!(
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
                Err(nix::errno::Errno::ESRCH)
            )
        })
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.daemonize {
        // Before any thread exists, so the fork is safe.
        // SAFETY: single-threaded here; the child only continues main.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Parent { .. }) => {
                std::thread::sleep(Duration::from_millis(args.daemon_parent_waits_ms));
                return std::process::ExitCode::SUCCESS;
            }
            Ok(nix::unistd::ForkResult::Child) => {
                let _ = nix::unistd::setsid();
            }
            Err(e) => {
                eprintln!("cannot fork: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if args.plain {
        plain::init_logging(filter);
    } else {
        tracing_subscriber::fmt()
            .with_ansi(false)
            // A log that cannot be written (a full disk) must not end the
            // service: the default reports the failure with `eprintln!`, which
            // panics on the same broken stderr.
            .log_internal_errors(false)
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init();
    }
    // Before the runtime starts its threads: this takes (and removes from
    // the environment) the descriptors the spawner passed.
    let kit_config = if args.plain {
        None
    } else {
        match KitConfig::from_env() {
            Ok(config) => Some(config),
            Err(e) => {
                tracing::error!("{e}");
                return std::process::ExitCode::from(2);
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(args, kit_config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(code) => std::process::ExitCode::from(code),
    }
}

async fn run(args: Args, kit_config: Option<KitConfig>) -> Result<(), u8> {
    tracing::info!(
        "spfs-reference-service {} (pid {})",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    misbehave_at_start(&args).await?;
    if args.plain {
        return run_plain(args).await;
    }
    let Some(kit_config) = kit_config else {
        unreachable!("kit mode always has a kit config");
    };
    run_kit(args, kit_config).await
}

/// The failure-test switches that act before serving: `--fail-at-start`,
/// `--hang`, `--start-delay-ms` and `--helper-secs`.
async fn misbehave_at_start(args: &Args) -> Result<(), u8> {
    if let Some(message) = &args.fail_at_start {
        use std::io::Write;
        // Not `eprintln!`: it panics when the log cannot be written.
        let _ = writeln!(std::io::stderr(), "{message}");
        return Err(3);
    }
    if args.hang {
        tracing::info!("--hang: never becoming ready");
        std::future::pending::<()>().await;
    }
    if args.start_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(args.start_delay_ms)).await;
    }
    if let Some(secs) = args.helper_secs {
        // std marks only its own descriptors close-on-exec: the spawner's
        // lock and readiness pipe are inherited, as by a careless helper.
        match std::process::Command::new("sleep")
            .arg(secs.to_string())
            .stdin(std::process::Stdio::null())
            .spawn()
        {
            Ok(helper) => tracing::info!("started helper pid {}", helper.id()),
            Err(e) => tracing::warn!("cannot start the helper: {e}"),
        }
    }
    Ok(())
}

/// `--plain`: what spfs-fuse-macos does upstream, no kit.
async fn run_plain(args: Args) -> Result<(), u8> {
    let mountpoint = plain::mountpoint(&args.words).map_err(|e| {
        tracing::error!("{e}");
        2
    })?;
    tracing::info!("Starting macFUSE service...");
    let mount = Arc::new(plain::Mount::start(&mountpoint));
    let (exit, exit_rx) = tokio::sync::watch::channel(false);
    let vfs = Vfs {
        mounts: Arc::new(Mounts::default()),
        kit: None,
        mount: Some(Arc::clone(&mount)),
        slow_calls: Duration::from_millis(args.slow_calls_ms),
        slow_status: Duration::from_millis(args.slow_status_ms),
        main_proto: args.main_proto,
        shutdown_exits: args.shutdown_exits.then(|| exit.clone()),
    };
    if let Some(after) = args.exit_after_ms.map(Duration::from_millis) {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            tracing::info!("--exit-after-ms: exiting");
            let _ = exit.send(true);
        });
    }
    let listen_delay = Duration::from_millis(args.listen_delay_ms);
    plain::serve(
        args.listen,
        &mount,
        VfsServiceServer::new(vfs),
        exit_rx,
        listen_delay,
    )
    .await
}

/// The kit service: lock, readiness, idle exit, leases, `Control`.
async fn run_kit(args: Args, kit_config: KitConfig) -> Result<(), u8> {
    let identity = Identity {
        name: "spfs-reference-service".into(),
        version: args
            .report_version
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
    };
    let parts = Duration::from_millis(args.ready_in_parts_ms);
    let kit = Kit::start_or_defer(identity, split_readiness(kit_config, parts)).map_err(|e| {
        tracing::error!("{e}");
        2
    })?;
    // Another instance serves this state dir (the kit logged its pid): a
    // clean exit, so launchd/systemd do not relaunch this one in a loop.
    let Some(kit) = kit else {
        return Ok(());
    };
    if args.hang_after_lock {
        tracing::info!("--hang-after-lock: holding the instance lock, never becoming ready");
        std::future::pending::<()>().await;
    }
    if let Some(after) = args.exit_after_ms.map(Duration::from_millis) {
        let handle = kit.handle();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            handle.shutdown("--exit-after-ms");
        });
    }
    let vfs = Vfs {
        mounts: Arc::new(Mounts::default()),
        kit: Some(kit.handle()),
        mount: None,
        slow_calls: Duration::from_millis(args.slow_calls_ms),
        slow_status: Duration::from_millis(args.slow_status_ms),
        main_proto: args.main_proto,
        shutdown_exits: None,
    };
    let serving = kit.serve(|routes| routes.add_service(VfsServiceServer::new(vfs)));
    if let Some(after) = args.drop_serve_after_ms.map(Duration::from_millis) {
        tokio::select! {
            served = serving => return served.map_err(|e| {
                tracing::error!("{e}");
                1
            }),
            () = tokio::time::sleep(after) => {}
        }
        tracing::info!("--drop-serve-after-ms: no longer serving; cleaning up for a minute");
        tokio::time::sleep(Duration::from_secs(60)).await;
        return Ok(());
    }
    serving.await.map_err(|e| {
        tracing::error!("{e}");
        1
    })
}

/// `--ready-in-parts-ms`: write "READY " to the spawner's readiness
/// descriptor at once, wait `pause` before even binding, then relay the rest
/// of the kit's line (`"<pid>\n"`) when the kit writes it. The spawner holds
/// a partial line for the whole pause while it polls the endpoint.
fn split_readiness(mut config: KitConfig, pause: Duration) -> KitConfig {
    use std::io::{Read, Write};
    const FIRST: &[u8] = b"READY ";
    // Without a pause the kit keeps the descriptor and writes the line
    // itself. (Taking it first would close it unwritten: the spawner would
    // then find the service only by polling.)
    if pause.is_zero() {
        return config;
    }
    let Some(real) = config.ready_fd.take() else {
        return config;
    };
    let mut real = std::fs::File::from(real);
    let (mut from_kit, to_relay) = match nix::unistd::pipe() {
        Ok((rx, tx)) => (std::fs::File::from(rx), tx),
        Err(e) => {
            tracing::warn!("cannot split the readiness line: {e}");
            config.ready_fd = Some(real.into());
            return config;
        }
    };
    let _ = real.write_all(FIRST);
    // Blocking on purpose: nothing serves yet, so only the pipe can wake
    // the spawner.
    std::thread::sleep(pause);
    config.ready_fd = Some(to_relay);
    std::thread::spawn(move || {
        let mut line = Vec::new();
        let _ = from_kit.read_to_end(&mut line);
        let rest = line.strip_prefix(FIRST).unwrap_or(&line);
        let _ = real.write_all(rest);
    });
    config
}
