//! The naive design the project replaces, as the baseline.
//!
//! Probe: a new TCP connection and HTTP/2 handshake to `127.0.0.1:PORT`
//! within 100 ms (tonic's `Endpoint::connect`, no RPC). Ensure: probe; on
//! failure spawn the service (`--plain --listen`) and poll the probe every
//! 50 ms for up to 5 s. No lock: concurrent callers each spawn.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

/// The probe's bound, connect and handshake together.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(100);
/// The poll interval after a spawn.
pub const POLL: Duration = Duration::from_millis(50);
/// How long a naive ensure waits after spawning.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// One naive probe: does an HTTP/2 server accept a connection at `port`?
pub async fn probe(port: u16) -> bool {
    let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
    {
        Ok(endpoint) => endpoint.connect_timeout(PROBE_TIMEOUT),
        Err(_) => return false,
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, endpoint.connect()).await,
        Ok(Ok(_))
    )
}

/// What one naive ensure did.
#[derive(Debug)]
pub struct Outcome {
    /// The service it spawned, if it spawned one (it may have lost the race
    /// for the port and exited).
    pub spawned: Option<Child>,
    /// Whether the probe succeeded in the end.
    pub ready: bool,
}

/// The plain reference service on `port`, detached into its own group.
pub fn spawn_plain(program: &Path, port: u16) -> std::io::Result<Child> {
    Command::new(program)
        .args(["--plain", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("SPFS_MACFUSE_LISTEN_ADDRESS")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}

/// One naive ensure.
pub async fn ensure(program: &Path, port: u16) -> std::io::Result<Outcome> {
    if probe(port).await {
        return Ok(Outcome {
            spawned: None,
            ready: true,
        });
    }
    let child = spawn_plain(program, port)?;
    let deadline = Instant::now() + DEADLINE;
    loop {
        tokio::time::sleep(POLL).await;
        if probe(port).await {
            return Ok(Outcome {
                spawned: Some(child),
                ready: true,
            });
        }
        if Instant::now() >= deadline {
            return Ok(Outcome {
                spawned: Some(child),
                ready: false,
            });
        }
    }
}
