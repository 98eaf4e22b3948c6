//! `--plain`: the service as upstream's spfs-fuse-macos behaves (spk pull
//! request #1308, the service SPFS users run on macOS today), so every client
//! path is tested against the behaviour it must survive:
//! - `service [--listen ADDR] [MOUNTPOINT]`, the address also read from
//!   `SPFS_MACFUSE_LISTEN_ADDRESS`; only `spfs_vfs.VfsService`, on TCP;
//! - it "mounts" before it listens; the stand-in has no filesystem, so a
//!   marker file in MOUNTPOINT stands for the mount ([`MOUNT_MARKER`]);
//! - `Shutdown` only unmounts: the process keeps serving, and a second
//!   `Shutdown` fails as upstream's second `umount` does;
//! - SIGINT stops serving, unmounts and exits 0, once the mount is made
//!   (before, it kills the process, as upstream catches it only then);
//!   SIGTERM has no handler, so the process dies at once and the marker
//!   stays behind, the visible trace of a mount left behind by an unclean
//!   exit; so does a failure to listen (the address taken);
//! - stderr is in ANSI colour without timestamps unless `NO_COLOR` is set
//!   (`SPFS_LOG_TIMESTAMP=1` adds them), as tracing-subscriber does upstream.
//!
//! One deviation: upstream creates a missing mountpoint; the stand-in never
//! creates directories (tests run as root must not make `/spfs`), so a
//! missing MOUNTPOINT is logged as a mount error and the service serves with
//! nothing mounted, as upstream does when the FUSE mount itself fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use spfs_autostart_kit::proto::vfs::vfs_service_server::VfsServiceServer;

/// The file in MOUNTPOINT that stands for the mount while it exists. Its
/// content is the pid of the service that made it.
pub const MOUNT_MARKER: &str = ".spfs-reference-service.mounted";

/// The stand-in for the FUSE mount at MOUNTPOINT.
#[derive(Debug)]
pub struct Mount {
    mountpoint: PathBuf,
    /// Whether the marker is in place (the filesystem is "mounted").
    mounted: Mutex<bool>,
}

impl Mount {
    /// Mount at `mountpoint`: write the marker. A failure is only logged, as
    /// upstream only logs a failed FUSE mount.
    pub fn start(mountpoint: &Path) -> Mount {
        tracing::info!(mount_path = ?mountpoint, "Starting macFUSE mount");
        let marker = mountpoint.join(MOUNT_MARKER);
        let mounted = match std::fs::write(&marker, std::process::id().to_string()) {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(
                    "FUSE mount error: cannot mount at {}: {err}",
                    mountpoint.display()
                );
                false
            }
        };
        Mount {
            mountpoint: mountpoint.to_path_buf(),
            mounted: Mutex::new(mounted),
        }
    }

    /// Unmount: remove the marker. Fails when nothing is mounted, as
    /// upstream's `umount` of an unmounted path does.
    pub fn stop(&self) -> Result<(), String> {
        let mut mounted = self.mounted.lock().expect("mount state");
        if !*mounted {
            return Err(format!(
                "umount failed: {} is not mounted",
                self.mountpoint.display()
            ));
        }
        std::fs::remove_file(self.mountpoint.join(MOUNT_MARKER))
            .map_err(|e| format!("umount failed: {e}"))?;
        *mounted = false;
        Ok(())
    }
}

/// Set up logging as upstream does on stderr: colour unless `NO_COLOR` is set
/// (tracing-subscriber's own default), no timestamps unless
/// `SPFS_LOG_TIMESTAMP` is set.
pub fn init_logging(filter: tracing_subscriber::EnvFilter) {
    let builder = tracing_subscriber::fmt()
        // A log that cannot be written must not end the service.
        .log_internal_errors(false)
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    // As clap's `BoolishValueParser` reads it upstream.
    let on = std::env::var("SPFS_LOG_TIMESTAMP").is_ok_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "1" | "y" | "yes" | "t" | "true" | "on"
        )
    });
    if on {
        builder.init();
    } else {
        builder.without_time().init();
    }
}

/// Serve `vfs` on `listen` (after `listen_delay`, mounted meanwhile) until
/// SIGINT or, with `--shutdown-exits`, until `exit` turns true; then unmount
/// and return. As upstream: SIGINT is caught only once the mount is made
/// (after `listen_delay`, which stands for macFUSE's mount), so one before
/// kills the process and leaves the mount; a failure to serve (the address
/// taken) returns before the unmount, leaving it too.
pub async fn serve(
    listen: SocketAddr,
    mount: &Mount,
    vfs: VfsServiceServer<crate::Vfs>,
    mut exit: tokio::sync::watch::Receiver<bool>,
    listen_delay: Duration,
) -> Result<(), u8> {
    if !listen_delay.is_zero() {
        tracing::info!("--listen-delay-ms: mounting, listening in {listen_delay:?}");
        tokio::time::sleep(listen_delay).await;
    }
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| {
        tracing::error!("cannot catch SIGINT: {e}");
        1
    })?;
    let server = tonic::transport::Server::builder()
        .add_service(vfs)
        .serve_with_shutdown(listen, async move {
            // Without --shutdown-exits the sender is gone at once: that
            // must not end the server, only SIGINT then does.
            let told_to_exit = async {
                if exit.wait_for(|exit| *exit).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = interrupt.recv() => {}
                () = told_to_exit => {}
            }
            tracing::info!("Shutting down gRPC server...");
        });
    tracing::info!(%listen, mountpoint = %mount.mountpoint.display(), "Service started");
    if let Err(e) = server.await {
        tracing::error!("gRPC server failed: cannot serve on {listen}: {e}");
        return Err(1);
    }
    tracing::info!("Unmounting filesystem...");
    if let Err(err) = mount.stop() {
        tracing::warn!(%err, "Failed to cleanly unmount filesystem");
    }
    tracing::info!("Service stopped");
    Ok(())
}

/// The positional words of `service [MOUNTPOINT]`: an optional leading
/// `service`, then at most one mountpoint (default `/spfs`).
pub fn mountpoint(words: &[String]) -> Result<PathBuf, String> {
    let words = match words.first().map(String::as_str) {
        Some("service") => &words[1..],
        _ => words,
    };
    match words {
        [] => Ok(PathBuf::from("/spfs")),
        [mountpoint] => Ok(PathBuf::from(mountpoint)),
        _ => Err(format!(
            "unexpected arguments {words:?}; usage: service [--listen ADDR] [MOUNTPOINT]"
        )),
    }
}
