//! Endpoints: where a service listens and its clients connect, as written
//! in configuration ([`Endpoint`]), resolved against a state dir
//! ([`ResolvedEndpoint`]), and connected ([`Stream`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// The longest Unix socket path the platform accepts (`sun_path` less NUL).
pub const MAX_SOCKET_PATH: usize = if cfg!(target_os = "macos") { 103 } else { 107 };

/// Where the service listens and the client connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `unix`: `service.sock` in the state dir (the default off macOS).
    StateDirSocket,
    /// `unix:///abs/path`: a Unix socket elsewhere.
    Unix(PathBuf),
    /// `tcp://127.0.0.1:37738`: TCP, for services that only speak TCP; a
    /// loopback address only.
    Tcp(SocketAddr),
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "use \"unix\" (the state dir socket), \"unix:///ABSOLUTE/PATH\" or \
                     \"tcp://IP:PORT\" (a loopback IP)";
        if s == "unix" {
            return Ok(Endpoint::StateDirSocket);
        }
        if s.contains('\0') {
            return Err(format!(
                "endpoint {s:?} contains a NUL byte, which no address can hold; {usage}"
            ));
        }
        if let Some(path) = s.strip_prefix("unix://") {
            let path = PathBuf::from(path);
            if !path.is_absolute() || path.as_os_str().len() <= 1 {
                return Err(format!(
                    "endpoint {s:?} needs an absolute socket path after unix://; {usage}"
                ));
            }
            if s.ends_with('/') {
                return Err(format!(
                    "endpoint {s:?} ends with '/', which names a directory; name the socket \
                     file in it, such as \"{s}service.sock\""
                ));
            }
            let len = path.as_os_str().len();
            if len > MAX_SOCKET_PATH {
                return Err(format!(
                    "endpoint {s:?} has a socket path of {len} bytes, longer than the {} the \
                     system allows; choose a shorter path",
                    MAX_SOCKET_PATH
                ));
            }
            return Ok(Endpoint::Unix(path));
        }
        if let Some(addr) = s.strip_prefix("tcp://") {
            let addr: SocketAddr = addr.parse().map_err(|_| {
                // A host name cannot be told apart from a typo for sure,
                // but `localhost` is the one people mean.
                match addr.strip_prefix("localhost:") {
                    Some(port) => format!(
                        "endpoint {s:?} names a host; tcp:// takes an IP address: \
                         write \"tcp://127.0.0.1:{port}\""
                    ),
                    None => {
                        format!("endpoint {s:?} needs an IP address and port after tcp://; {usage}")
                    }
                }
            })?;
            // Port 0 makes the service bind a random port that no client
            // can know, so every start would end in a timeout.
            if addr.port() == 0 {
                return Err(format!(
                    "endpoint {s:?} has port 0, which would make the service listen on a \
                     random port no client can find; give a fixed port such as tcp://127.0.0.1:37738"
                ));
            }
            // The service's calls (Mount, Shutdown) ask for no
            // credentials: on an address other machines reach, anyone on
            // the network could use them. Nothing here needs that.
            if !addr.ip().is_loopback() {
                let loopback = match addr {
                    SocketAddr::V4(_) => format!("tcp://127.0.0.1:{}", addr.port()),
                    SocketAddr::V6(_) => format!("tcp://[::1]:{}", addr.port()),
                };
                return Err(format!(
                    "endpoint {s:?} is not a loopback address: the service would be reachable \
                     from other machines, and its calls (mounting, shutting down) ask for no \
                     credentials; use {loopback}"
                ));
            }
            return Ok(Endpoint::Tcp(addr));
        }
        // The forms people write from elsewhere: spfs-fuse-macos's own
        // `--listen IP:PORT`, and a bare socket path.
        if s.parse::<SocketAddr>().is_ok() {
            return Err(format!("endpoint {s:?} has no scheme; write \"tcp://{s}\""));
        }
        if s.starts_with('/') {
            return Err(format!(
                "endpoint {s:?} has no scheme; write \"unix://{s}\""
            ));
        }
        Err(format!("endpoint {s:?} is not understood; {usage}"))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::StateDirSocket => f.write_str("unix"),
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Its parse errors name the endpoint; a value that is no text too.
        let s = String::deserialize(d)
            .map_err(|e| serde::de::Error::custom(format!("endpoint: {e}")))?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// spfs-fuse-macos's own default listen address, where spfs (pull request
/// #1308) looks for it, and only there.
pub const UPSTREAM_ADDRESS: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    37738,
));

impl Endpoint {
    /// The endpoint of the service this platform runs by default:
    /// spfs-fuse-macos's TCP address on macOS, the state dir's socket
    /// elsewhere.
    pub fn platform_default() -> Endpoint {
        if cfg!(target_os = "macos") {
            Endpoint::Tcp(UPSTREAM_ADDRESS)
        } else {
            Endpoint::StateDirSocket
        }
    }
}

/// A resolved endpoint: what the client connects to and the service binds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResolvedEndpoint {
    /// A Unix socket path.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(std::net::SocketAddr),
}

impl std::fmt::Display for ResolvedEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolvedEndpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            ResolvedEndpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

impl std::str::FromStr for ResolvedEndpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.parse::<Endpoint>()? {
            Endpoint::Unix(path) => Ok(ResolvedEndpoint::Unix(path)),
            Endpoint::Tcp(addr) => Ok(ResolvedEndpoint::Tcp(addr)),
            Endpoint::StateDirSocket => Err(format!(
                "endpoint {s:?} must be resolved against a state dir first"
            )),
        }
    }
}

/// A connected byte stream to either kind of endpoint.
#[derive(Debug)]
pub enum Stream {
    /// A Unix socket connection.
    Unix(UnixStream),
    /// A TCP connection.
    Tcp(TcpStream),
}

impl Stream {
    /// Connect to `endpoint`. A Unix socket served by another user is
    /// refused (`PermissionDenied`): whatever its path looked like (a
    /// symbolic link in a shared dir, planted there), the kernel's word on
    /// who listens is final, so nothing it says is taken for our service's.
    /// Root's counts as ours only in a dir of ours that nobody else may
    /// write (the state dir): the kernel names whoever called `listen`, and
    /// launchd (root) listens there for a socket-mode agent; in a shared
    /// dir, any user's agent could have launchd listen for them.
    pub async fn connect(endpoint: &ResolvedEndpoint) -> io::Result<Stream> {
        match endpoint {
            ResolvedEndpoint::Unix(path) => {
                let stream = UnixStream::connect(path).await?;
                let uid = stream.peer_cred()?.uid();
                if !owner_is_ours(uid, path) {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("{} is served by another user (uid {uid})", path.display()),
                    ));
                }
                Ok(Stream::Unix(stream))
            }
            ResolvedEndpoint::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
        }
    }
}

/// Whether a Unix socket at `path` that `uid` listens on (or owns) counts
/// as ours: this user's, or root's in a private dir of ours (launchd's,
/// listening for a socket-mode agent), never another user's.
pub fn owner_is_ours(uid: u32, path: &std::path::Path) -> bool {
    uid == crate::sys::my_uid() || (uid == 0 && in_a_private_dir(path))
}

/// Whether the socket at `path` is in a directory of ours that no one else
/// may write, so root's socket there was made for us.
pub fn in_a_private_dir(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    path.parent()
        .and_then(|dir| std::fs::metadata(dir).ok())
        .is_some_and(|dir| dir.uid() == crate::sys::my_uid() && dir.mode() & 0o022 == 0)
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl tonic::transport::server::Connected for Stream {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}
