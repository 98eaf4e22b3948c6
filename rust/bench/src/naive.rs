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

use spfs_autostart::proto::vfs::{StatusRequest, vfs_service_client::VfsServiceClient};
use tonic::transport::{Channel, Endpoint};

/// The probe's bound, connect and handshake together.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(100);
/// The poll interval after a spawn.
pub const POLL: Duration = Duration::from_millis(50);
/// How long a naive ensure waits after spawning.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// One naive probe: does an HTTP/2 server accept a connection at `port`?
pub async fn probe(port: u16) -> bool {
    connect(port).await.is_some()
}

/// The naive probe that also waits for an answer: the same connection,
/// then one unary `VfsService.Status` on it. Not part of the naive design,
/// which never waits; it shows what the wait `ensure` keeps (the service's
/// answer, which tells it the service serves) costs a fresh process.
pub async fn probe_answered(port: u16) -> bool {
    let Some(channel) = connect(port).await else {
        return false;
    };
    let mut client = VfsServiceClient::new(channel);
    let call = client.status(StatusRequest {});
    matches!(tokio::time::timeout(PROBE_TIMEOUT, call).await, Ok(Ok(_)))
}

/// The probe's connection: TCP and the HTTP/2 handshake, within
/// [`PROBE_TIMEOUT`].
async fn connect(port: u16) -> Option<Channel> {
    let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .ok()?
        .connect_timeout(PROBE_TIMEOUT);
    tokio::time::timeout(PROBE_TIMEOUT, endpoint.connect())
        .await
        .ok()?
        .ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use spfs_autostart::proto::vfs::vfs_service_server::{VfsService, VfsServiceServer};
    use spfs_autostart::proto::vfs::{
        MountRequest, MountResponse, ShutdownRequest, ShutdownResponse, StatusResponse,
        UnmountRequest, UnmountResponse,
    };
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic::{Request, Response, Status};

    /// A `VfsService` whose `Status` answers at once, or never.
    struct Vfs {
        answers: bool,
    }

    #[tonic::async_trait]
    impl VfsService for Vfs {
        async fn mount(&self, _: Request<MountRequest>) -> Result<Response<MountResponse>, Status> {
            Err(Status::unimplemented("mount"))
        }

        async fn unmount(
            &self,
            _: Request<UnmountRequest>,
        ) -> Result<Response<UnmountResponse>, Status> {
            Err(Status::unimplemented("unmount"))
        }

        async fn shutdown(
            &self,
            _: Request<ShutdownRequest>,
        ) -> Result<Response<ShutdownResponse>, Status> {
            Err(Status::unimplemented("shutdown"))
        }

        async fn status(
            &self,
            _: Request<StatusRequest>,
        ) -> Result<Response<StatusResponse>, Status> {
            if !self.answers {
                std::future::pending::<()>().await;
            }
            Ok(Response::new(StatusResponse::default()))
        }
    }

    /// A loopback port where `vfs` is served (until the test's runtime ends).
    async fn serve(vfs: Vfs) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tonic::transport::Server::builder()
            .add_service(VfsServiceServer::new(vfs))
            .serve_with_incoming(TcpListenerStream::new(listener));
        tokio::spawn(server);
        port
    }

    #[tokio::test]
    async fn the_answered_probe_waits_for_an_answer_the_naive_probe_does_not() {
        let answering = serve(Vfs { answers: true }).await;
        assert!(probe(answering).await);
        assert!(probe_answered(answering).await);

        let silent = serve(Vfs { answers: false }).await;
        assert!(
            probe(silent).await,
            "a connection is all the naive probe needs"
        );
        assert!(
            !probe_answered(silent).await,
            "no answer within the timeout"
        );

        let closed = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().port()
        };
        assert!(!probe(closed).await);
        assert!(!probe_answered(closed).await);
    }
}
