//! The listening socket: bound by us, or handed over by launchd or systemd.
//!
//! Only the holder of `instance.lock` calls [`bind`], so removing a stale
//! socket there cannot pull the endpoint from under a live service. A socket
//! that was handed over is never unlinked: its owner (launchd, systemd)
//! keeps listening on it after we exit.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

use spfs_autostart_protocol::ResolvedEndpoint;
use spfs_autostart_protocol::error::{Error, ErrorKind, Result};
use spfs_autostart_protocol::sys;

/// A listening socket and where it came from.
#[derive(Debug)]
pub(crate) enum Listener {
    /// A Unix socket; `bound_here` when we created the path (and so remove it).
    Unix {
        /// The listener.
        listener: UnixListener,
        /// Its path, when known.
        path: Option<PathBuf>,
        /// Whether we bound it, and so unlink it at exit.
        bound_here: bool,
    },
    /// A TCP socket.
    Tcp {
        /// The listener.
        listener: TcpListener,
        /// Whether launchd or systemd handed it over.
        activated: bool,
    },
}

impl Listener {
    /// Whether the socket was handed over by launchd or systemd.
    pub(crate) fn activated(&self) -> bool {
        match self {
            Listener::Unix { bound_here, .. } => !bound_here,
            Listener::Tcp { activated, .. } => *activated,
        }
    }

    /// The socket path we created (and so remove at exit); `None` for TCP
    /// and for a socket handed over by launchd or systemd.
    pub(crate) fn bound_path(&self) -> Option<PathBuf> {
        match self {
            Listener::Unix {
                path: Some(path),
                bound_here: true,
                ..
            } => Some(path.clone()),
            _ => None,
        }
    }
}

/// Bind `endpoint`. A stale Unix socket (nobody listening: we hold the
/// instance lock) is replaced; a socket something listens on (launchd or
/// systemd holding it for activation) and anything that is not a socket are
/// refused and left in place.
pub(crate) fn bind(endpoint: &ResolvedEndpoint) -> Result<Listener> {
    match endpoint {
        ResolvedEndpoint::Tcp(addr) => {
            let listener = std::net::TcpListener::bind(addr).map_err(|e| {
                let fix = if e.kind() == std::io::ErrorKind::AddrInUse {
                    format!(
                        "another process listens there (`lsof -nP -iTCP:{} -sTCP:LISTEN` \
                         names it): stop it, or set the endpoint to a free port",
                        addr.port()
                    )
                } else {
                    "set the endpoint to an address of this machine".to_string()
                };
                Error::new(
                    ErrorKind::EndpointConflict,
                    format!("cannot listen on tcp://{addr}: {e}; {fix}"),
                )
            })?;
            listener
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(listener))
                .map(|listener| Listener::Tcp {
                    listener,
                    activated: false,
                })
                .map_err(|e| {
                    Error::new(ErrorKind::Io, format!("cannot listen on tcp://{addr}: {e}"))
                })
        }
        ResolvedEndpoint::Unix(path) => {
            match std::fs::symlink_metadata(path) {
                // Something listens there although we hold the instance lock: launchd or
                // systemd owns the socket (and failed to start us through it), or a
                // service of another state dir serves this endpoint. Unlinking it would
                // break either for good, so it is left alone, its holder named.
                Ok(meta) if meta.file_type().is_socket() => {
                    if let Ok(stream) = std::os::unix::net::UnixStream::connect(path) {
                        return Err(live_socket_error(path, listening_pid(stream)));
                    }
                    std::fs::remove_file(path)
                        .map_err(|e| Error::io("cannot remove stale socket", path, e))?;
                }
                Ok(_) => {
                    return Err(Error::new(
                        ErrorKind::EndpointConflict,
                        format!(
                            "{} exists and is not a socket; it was left alone. Remove it or choose another endpoint",
                            path.display()
                        ),
                    ));
                }
                Err(_) => {}
            }
            let listener =
                UnixListener::bind(path).map_err(|e| Error::io("cannot listen on", path, e))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io("cannot restrict socket", path, e))?;
            Ok(Listener::Unix {
                listener,
                path: Some(path.clone()),
                bound_here: true,
            })
        }
    }
}

/// The pid of the process at the other end of `stream`, a connection to a
/// listening socket: the socket's holder.
fn listening_pid(stream: std::os::unix::net::UnixStream) -> Option<u32> {
    stream.set_nonblocking(true).ok()?;
    let stream = UnixStream::from_std(stream).ok()?;
    let pid = stream.peer_cred().ok()?.pid()?;
    u32::try_from(pid).ok()
}

/// The error for a live socket at `path` this service did not bind, held by
/// `holder`: launchd or systemd holding it for socket activation, or
/// another process (another state dir's service at the same endpoint).
fn live_socket_error(path: &Path, holder: Option<u32>) -> Error {
    let executable = holder.and_then(sys::executable);
    let activator = holder == Some(1)
        || executable
            .as_ref()
            .and_then(|e| e.file_name())
            .is_some_and(|name| {
                let name = name.to_string_lossy();
                name.starts_with("systemd") || name == "launchd"
            });
    let message = match holder {
        Some(pid) if !activator => format!(
            "{} is a live socket held by pid {pid} ({}), not by launchd or systemd: most \
             likely a service of another state dir serving this endpoint; it was left alone. \
             Give each state dir its own endpoint, or stop that service",
            path.display(),
            executable.map_or_else(|| "unknown executable".into(), |e| e.display().to_string())
        ),
        _ => format!(
            "{} is a live socket that this service did not bind, most likely held by launchd \
             or systemd for socket activation; it was left alone. Check the agent (its agent \
             status, or `systemctl --user status` for the .socket unit) and its log, or \
             uninstall it to start the service on demand",
            path.display()
        ),
    };
    Error::new(ErrorKind::EndpointConflict, message)
}

/// A socket handed over by systemd (`LISTEN_FDS`/`LISTEN_PID`) or launchd.
/// `LISTEN_FDS` meant for another process is ignored with a log line.
pub(crate) fn activated() -> Result<Option<Listener>> {
    #[cfg(target_os = "macos")]
    if let Some(fd) = launchd_socket()? {
        return from_fd(fd).map(Some);
    }
    let (Ok(fds), Ok(pid)) = (std::env::var("LISTEN_FDS"), std::env::var("LISTEN_PID")) else {
        return Ok(None);
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        tracing::warn!(
            "ignoring LISTEN_FDS={fds}: LISTEN_PID={pid} is not this process ({})",
            std::process::id()
        );
        return Ok(None);
    }
    match fds.parse::<u32>() {
        Ok(n) if n >= 1 => {
            if n > 1 {
                tracing::warn!("systemd passed {n} sockets; serving the first");
                // The others stay open (they are systemd's to close), but
                // our own children must not inherit them.
                for extra in 4..3 + n.min(1024) as RawFd {
                    let _ = sys::set_cloexec(extra, true);
                }
            }
            // Taken only if it is a socket: otherwise descriptor 3 is one
            // of our own files (the instance lock, opened first), which
            // owning would close.
            passed_socket(3)?;
            // SAFETY: systemd passes the sockets as descriptors 3.. to us,
            // and descriptor 3 is a socket, not a file of ours.
            let fd = unsafe { OwnedFd::from_raw_fd(3) };
            from_fd(fd).map(Some)
        }
        _ => {
            tracing::warn!("ignoring LISTEN_FDS={fds:?}: not a positive count");
            Ok(None)
        }
    }
}

/// Mark the sockets systemd passed to this process (`LISTEN_FDS` from
/// descriptor 3, `LISTEN_PID` ours) close-on-exec, at once: a process the
/// service starts before [`Kit::start`](crate::Kit::start) takes them (a
/// helper in its set-up) must not inherit them. Only sockets: a descriptor
/// that is not one is not systemd's, and is left as it is.
pub(crate) fn protect_activation_sockets() {
    let (Ok(fds), Ok(pid)) = (std::env::var("LISTEN_FDS"), std::env::var("LISTEN_PID")) else {
        return;
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return;
    }
    let Ok(n) = fds.parse::<u32>() else {
        return;
    };
    for fd in 3..3 + n.min(1024) as RawFd {
        if passed_socket(fd).is_ok() {
            let _ = sys::set_cloexec(fd, true);
        }
    }
}

/// Refuse descriptor `fd` as an activated socket unless it is open and a
/// socket: `LISTEN_FDS` set without the socket passed (a wrapper that closed
/// it, a hand-made environment) is said, not served.
fn passed_socket(fd: RawFd) -> Result<()> {
    // SAFETY: fstat only writes the stat buffer it is given; a descriptor
    // that is not open is an error (EBADF), nothing is taken or closed.
    let (rc, stat) = unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut stat), stat)
    };
    let what = match rc {
        0 if stat.st_mode & libc::S_IFMT == libc::S_IFSOCK => return Ok(()),
        0 => "is a file, not a socket",
        _ => "is not open",
    };
    Err(Error::new(
        ErrorKind::InvalidConfig,
        format!(
            "LISTEN_FDS and LISTEN_PID say a socket was passed as descriptor {fd}, but it \
             {what}: start the service from the socket unit (or launchd), or without those \
             variables"
        ),
    ))
}

/// An activated socket that failed a system call, as an error that says
/// where to look.
fn unusable(e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Io,
        format!(
            "the activated socket is unusable: {e}; check the Sockets of the launchd job \
             or the socket unit that started the service"
        ),
    )
}

/// A listener on the socket launchd or systemd handed over as `fd`,
/// refusing one the service's clients could not use.
fn from_fd(fd: OwnedFd) -> Result<Listener> {
    use nix::sys::socket::{AddressFamily, SockaddrLike, SockaddrStorage, getsockname};
    use std::os::fd::AsRawFd;
    let raw: RawFd = fd.as_raw_fd();
    // Our own children must not inherit the listener.
    let _ = sys::set_cloexec(raw, true);
    let addr: SockaddrStorage = getsockname(raw).map_err(unusable)?;
    // A connected socket (systemd's `Accept=yes` hands over one connection
    // per service instance) fails every accept at once, and the server
    // would retry without end.
    let listening = nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::AcceptConn);
    if listening == Ok(false) {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "the activated socket is not listening: it is one connection, as systemd hands \
             over with Accept=yes; use Accept=no (the default, as in the units spfs-autostart \
             describes)",
        ));
    }
    match addr.family() {
        Some(AddressFamily::Unix) => {
            let path = addr
                .as_unix_addr()
                .and_then(|a| a.path())
                .map(|p| p.to_path_buf());
            activated_unix(fd, path)
        }
        Some(AddressFamily::Inet | AddressFamily::Inet6) => activated_tcp(fd),
        other => Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "the activated socket has address family {other:?}; use a Unix or TCP stream socket"
            ),
        )),
    }
}

/// The activated Unix socket `fd`, bound at `path`.
fn activated_unix(fd: OwnedFd, path: Option<PathBuf>) -> Result<Listener> {
    // Clients find the service by a path; an abstract socket has none the
    // record or `Info` could name.
    if path.is_none() {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "the activated Unix socket has no path (an abstract socket): clients find the \
             service by the socket's path; listen on a path (systemd ListenStream=/path, as \
             in the units spfs-autostart describes)",
        ));
    }
    let std_listener = std::os::unix::net::UnixListener::from(fd);
    std_listener.set_nonblocking(true).map_err(unusable)?;
    Ok(Listener::Unix {
        listener: UnixListener::from_std(std_listener).map_err(unusable)?,
        path,
        bound_here: false,
    })
}

/// The activated TCP socket `fd`, if it listens on loopback.
fn activated_tcp(fd: OwnedFd) -> Result<Listener> {
    let std_listener = std::net::TcpListener::from(fd);
    // As for an endpoint the service binds itself: its calls ask for no
    // credentials (a `ListenStream=PORT` listens on every interface).
    let local = std_listener.local_addr().map_err(unusable)?;
    if !local.ip().is_loopback() {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "the activated socket listens on {local}, which other machines reach, and the \
                 service's calls ask for no credentials: listen on a loopback address \
                 (ListenStream=127.0.0.1:{port} in the socket unit, SockNodeName 127.0.0.1 in \
                 the launchd job)",
                port = local.port()
            ),
        ));
    }
    std_listener.set_nonblocking(true).map_err(unusable)?;
    Ok(Listener::Tcp {
        listener: TcpListener::from_std(std_listener).map_err(unusable)?,
        activated: true,
    })
}

#[cfg(target_os = "macos")]
fn launchd_socket() -> Result<Option<OwnedFd>> {
    use std::ffi::CString;
    unsafe extern "C" {
        fn launch_activate_socket(
            name: *const libc::c_char,
            fds: *mut *mut libc::c_int,
            cnt: *mut libc::size_t,
        ) -> libc::c_int;
    }
    let name = CString::new(spfs_autostart_protocol::LAUNCHD_SOCKET_NAME).expect("no NUL");
    let mut fds: *mut libc::c_int = std::ptr::null_mut();
    let mut count: libc::size_t = 0;
    // SAFETY: name is a valid C string; fds/count are valid out-pointers.
    let rc = unsafe { launch_activate_socket(name.as_ptr(), &mut fds, &mut count) };
    if rc != 0 {
        // ESRCH: not started by launchd; ENOENT: no such socket in the plist.
        return Ok(None);
    }
    if fds.is_null() || count == 0 {
        // Nothing handed over (and `from_raw_parts` needs a real pointer).
        if !fds.is_null() {
            // SAFETY: a malloc'd array launchd gave us, freed once.
            unsafe { libc::free(fds.cast()) };
        }
        return Ok(None);
    }
    // SAFETY: launchd returned `count` (> 0) descriptors in a malloc'd array
    // (not null) we free.
    let all: Vec<libc::c_int> = unsafe { std::slice::from_raw_parts(fds, count).to_vec() };
    // SAFETY: the array was malloc'd by launchd for us, copied above, freed once.
    unsafe { libc::free(fds.cast()) };
    let mut owned: Vec<OwnedFd> = all
        .into_iter()
        // SAFETY: launchd handed these descriptors to us; nothing else owns them.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    Ok(if owned.is_empty() {
        None
    } else {
        Some(owned.swap_remove(0))
    })
}

/// Accepted connections, as tonic's server takes them.
pub(crate) type Incoming = std::pin::Pin<
    Box<
        dyn tokio_stream::Stream<Item = std::io::Result<spfs_autostart_protocol::endpoint::Stream>>
            + Send,
    >,
>;

/// The stream of accepted connections. On a Unix socket every peer is
/// checked: a connection from another uid is closed at once and logged.
pub(crate) fn incoming(listener: Listener) -> Incoming {
    let accepted: Incoming = match listener {
        Listener::Tcp { listener, .. } => Box::pin(TcpListenerStream::new(listener).map(|conn| {
            conn.map(|s| {
                let _ = s.set_nodelay(true);
                spfs_autostart_protocol::endpoint::Stream::Tcp(s)
            })
        })),
        Listener::Unix { listener, .. } => {
            let me = sys::my_uid();
            Box::pin(UnixListenerStream::new(listener).filter_map(move |conn| {
                match conn {
                    Ok(stream) => same_user(stream, me)
                        .map(|s| Ok(spfs_autostart_protocol::endpoint::Stream::Unix(s))),
                    Err(e) => Some(Err(e)),
                }
            }))
        }
    };
    Box::pin(accepted.then(rest_when_out_of_descriptors))
}

/// How long accepting rests when no descriptor is left.
const OUT_OF_DESCRIPTORS_REST: Duration = Duration::from_millis(100);

/// How long accepting rests after any other failure.
const OTHER_FAILURE_REST: Duration = Duration::from_millis(10);

/// Whether a warning for the current shortage was logged already.
static SHORTAGE_LOGGED: AtomicBool = AtomicBool::new(false);

/// Pass `conn` on; after a failure for want of descriptors, only once
/// [`OUT_OF_DESCRIPTORS_REST`] has passed. The connection stays queued, so
/// accepting again at once fails again at once, and tonic's server retries
/// a failed accept immediately: without the rest, a service at its
/// descriptor limit spins at full CPU until one frees.
pub(crate) async fn rest_when_out_of_descriptors<T>(
    conn: std::io::Result<T>,
) -> std::io::Result<T> {
    match &conn {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
            if !SHORTAGE_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "cannot accept connections: {e}; new connections wait until one closes \
                     (raise the open-files limit, `ulimit -n`, if this lasts)"
                );
            }
            tokio::time::sleep(OUT_OF_DESCRIPTORS_REST).await;
        }
        Ok(_) => SHORTAGE_LOGGED.store(false, Ordering::Relaxed),
        // Any other failure that repeats would spin just the same; one that
        // does not (a client that gave up while queued) costs a moment.
        Err(_) => tokio::time::sleep(OTHER_FAILURE_REST).await,
    }
    conn
}

/// `stream` if its peer is uid `me`; else `None`, the refusal logged.
pub(crate) fn same_user(stream: UnixStream, me: u32) -> Option<UnixStream> {
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == me => Some(stream),
        Ok(cred) => {
            tracing::warn!(
                "refused a connection from uid {} (pid {:?}): this service belongs to uid {me}",
                cred.uid(),
                cred.pid()
            );
            None
        }
        Err(e) => {
            tracing::warn!("refused a connection whose peer cannot be identified: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A holder that is launchd (pid 1) or systemd (the user manager, or
    /// `systemd-socket-activate`) is taken for socket activation; one that
    /// cannot be told is too.
    #[test]
    fn a_socket_held_by_launchd_or_systemd_points_at_the_agent() {
        let path = Path::new("/run/x/service.sock");
        for holder in [Some(1), None] {
            let err = live_socket_error(path, holder).to_string();
            assert!(
                err.contains("most likely held by launchd or systemd"),
                "{err}"
            );
        }
    }

    /// An abstract socket handed over has no path to name in the record
    /// or `Info`: refused, saying why, not reported at the configured path.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_abstract_socket_handed_over_is_refused() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("spfs-autostart-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
        let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        let err = from_fd(OwnedFd::from(listener)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("abstract socket"), "{err}");
    }

    #[tokio::test]
    async fn a_socket_someone_listens_on_is_refused_and_left_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("service.sock");
        // Held by this process, which is neither launchd nor systemd: named.
        let owner = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let err = bind(&ResolvedEndpoint::Unix(path.clone())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::EndpointConflict);
        let named = format!(
            "is a live socket held by pid {} ({}), not by launchd or systemd",
            std::process::id(),
            std::env::current_exe().unwrap().display()
        );
        assert!(err.to_string().contains(&named), "{err}");
        assert!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_socket()
        );
        std::os::unix::net::UnixStream::connect(&path).expect("the owner still listens");
        drop(owner);
        // Once nobody listens it is stale, and replaced.
        let listener = bind(&ResolvedEndpoint::Unix(path.clone())).unwrap();
        assert_eq!(listener.bound_path(), Some(path));
    }
}
