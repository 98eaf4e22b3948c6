//! Connecting to an endpoint and asking who answers.
//!
//! The raw connect is done by hand, before gRPC, so "nothing listens" (refused,
//! no socket) is told apart from "something listens but is not our service"
//! (a non-gRPC peer, a file where the socket should be). The same connector
//! then serves tonic's channel, which reconnects on its own when the service
//! restarts, so a warm [`crate::ServiceManager`] keeps one connection.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use crate::ResolvedEndpoint;
use crate::proto::control::{InfoRequest, InfoResponse, control_client::ControlClient};

pub(crate) use spfs_autostart_protocol::Stream;

/// What answered at an endpoint.
#[derive(Debug)]
pub(crate) enum Probe {
    /// A kit service answered `Control.Info`.
    Kit(InfoResponse, Channel),
    /// A gRPC server without `Control` answered (`UNIMPLEMENTED` still
    /// proves a live gRPC server): a plain service such as spfs-fuse-macos.
    Plain(Channel),
    /// Nothing listens: connection refused, or no socket file.
    Nothing,
    /// Something that is not a gRPC server is there.
    Foreign(String),
    /// Connected, but no answer within the timeout.
    NoAnswer,
}

/// Open a channel whose first connection is `first`; later ones connect anew.
pub(crate) async fn channel(
    endpoint: ResolvedEndpoint,
    first: Option<Stream>,
) -> io::Result<Channel> {
    connect(Endpoint::from_static(URI), endpoint, first).await
}

/// How often a channel that carries a long-lived stream pings the service,
/// and how long an unanswered ping may wait before the connection fails: a
/// hung service is seen within 10 s, and a watcher (a menu bar, all day)
/// wakes itself and the service only every 5 s.
const STREAM_PING: Duration = Duration::from_secs(5);

/// Open a channel for a stream that may be silent for hours (`Watch`):
/// HTTP/2 pings every [`STREAM_PING`], and a ping unanswered within it
/// fails the connection, so a service that stopped running (suspended,
/// hung) ends the stream instead of looking alive behind it forever. Pings
/// are not calls: they keep no service from its idle exit.
pub(crate) async fn pinged_channel(endpoint: ResolvedEndpoint) -> io::Result<Channel> {
    let builder = Endpoint::from_static(URI)
        .http2_keep_alive_interval(STREAM_PING)
        .keep_alive_timeout(STREAM_PING)
        .keep_alive_while_idle(true);
    connect(builder, endpoint, None).await
}

/// The URI tonic requires but does not use: the connector picks the target.
const URI: &str = "http://localhost";

async fn connect(
    builder: Endpoint,
    endpoint: ResolvedEndpoint,
    first: Option<Stream>,
) -> io::Result<Channel> {
    let first = Arc::new(Mutex::new(first));
    builder
        .connect_with_connector(tower::service_fn(move |_| {
            let first = first.lock().expect("connector mutex").take();
            let endpoint = endpoint.clone();
            async move {
                let stream = match first {
                    Some(stream) => stream,
                    None => Stream::connect(&endpoint).await?,
                };
                Ok::<_, io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(io::Error::other)
}

/// Ask `channel` who it is, bounded by `timeout`; `touch` counts the call
/// as use of the service (restarting its idle clock).
pub(crate) async fn info(channel: Channel, touch: bool, timeout: Duration) -> Probe {
    let call = async {
        let mut client = ControlClient::new(channel.clone());
        client.info(InfoRequest { touch }).await
    };
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Probe::NoAnswer,
        Ok(Ok(info)) => Probe::Kit(info.into_inner(), channel),
        Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => Probe::Plain(channel),
        Ok(Err(status)) => Probe::Foreign(describe_status(&status)),
    }
}

/// Connect to `endpoint` and find out what answers there.
pub(crate) async fn probe(endpoint: &ResolvedEndpoint, touch: bool, timeout: Duration) -> Probe {
    let stream = match tokio::time::timeout(timeout, Stream::connect(endpoint)).await {
        Err(_) => return Probe::NoAnswer,
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return refused(endpoint, e),
    };
    match tokio::time::timeout(timeout, channel(endpoint.clone(), Some(stream))).await {
        Err(_) => Probe::NoAnswer,
        Ok(Err(e)) => Probe::Foreign(format!("the connection failed: {e}")),
        Ok(Ok(channel)) => info(channel, touch, timeout).await,
    }
}

/// What a probe's finding says when a file or directory stands where the
/// socket belongs: nothing listens, so the fix is to remove it.
pub(crate) const NOT_A_SOCKET: &str = "is not a socket";

/// Whether a conflict's description is [`NOT_A_SOCKET`]'s.
pub(crate) fn nothing_listens(what: &str) -> bool {
    what.contains(NOT_A_SOCKET)
}

/// Classify a failed connect: nothing there, or something that is not a socket.
fn refused(endpoint: &ResolvedEndpoint, e: io::Error) -> Probe {
    if let ResolvedEndpoint::Unix(path) = endpoint {
        use std::os::unix::fs::FileTypeExt;
        // A symbolic link there is what it leads to, as for the connection.
        if let Ok(meta) = std::fs::metadata(path)
            && !meta.file_type().is_socket()
        {
            return Probe::Foreign(format!(
                "{} {NOT_A_SOCKET} but a {}",
                path.display(),
                if meta.is_dir() { "directory" } else { "file" }
            ));
        }
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => Probe::Nothing,
        // A socket we may not connect to belongs to someone else.
        io::ErrorKind::PermissionDenied => Probe::Foreign(format!("connecting was refused: {e}")),
        _ => Probe::Nothing,
    }
}

fn describe_status(status: &tonic::Status) -> String {
    use std::error::Error as _;
    let mut parts = vec![status.message().to_string()];
    let mut source = status.source();
    while let Some(s) = source {
        // A wrapper often says what it wraps ("transport error" twice).
        let part = s.to_string();
        if !parts.contains(&part) {
            parts.push(part);
        }
        source = s.source();
    }
    format!("it does not speak gRPC ({})", parts.join(": "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error saying `text`, wrapping `inner`.
    #[derive(Debug)]
    struct Wrapping(&'static str, Option<Box<Wrapping>>);

    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn a_status_whose_source_repeats_it_is_described_once() {
        let mut status = tonic::Status::unknown("transport error");
        status.set_source(Arc::new(Wrapping(
            "transport error",
            Some(Box::new(Wrapping("connection error: broken pipe", None))),
        )));
        assert_eq!(
            describe_status(&status),
            "it does not speak gRPC (transport error: connection error: broken pipe)"
        );
        // Said again further down the chain, too.
        let mut status = tonic::Status::cancelled("operation was canceled");
        status.set_source(Arc::new(Wrapping(
            "transport error",
            Some(Box::new(Wrapping(
                "operation was canceled",
                Some(Box::new(Wrapping("connection closed", None))),
            ))),
        )));
        assert_eq!(
            describe_status(&status),
            "it does not speak gRPC (operation was canceled: transport error: connection closed)"
        );
    }
}
