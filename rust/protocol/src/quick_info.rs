//! The quick look: `Control.Info` without HTTP/2, over `info.sock` in the
//! state dir ([`crate::Paths::info_socket`]).
//!
//! A fresh `ensure` (every shell's) spent more on HTTP/2 than on anything
//! else it did: the handshake, four writes, HPACK, and a runtime to drive
//! them. A serving kit also answers this: the client connects, writes
//! [`request`] (5 bytes: [`MAGIC`] and whether the look counts as use), and
//! reads the answer, a 4-byte big-endian length and that many bytes of the
//! encoded `InfoResponse` the gRPC `Info` would give; the kit then closes
//! the connection. One round trip, blocking, no runtime.
//!
//! The socket is bound by the kit once it serves, in the private state dir,
//! and removed when it stops serving; a client believes an answer only from
//! its own uid, and only naming the process at the other end (see [`ask`]).
//! It is an addition, never the only way: a client that gets no answer here
//! (no kit service, an older one, a stale socket, a busy one) asks over
//! gRPC as before.

use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use prost::Message;

use crate::proto::control::InfoResponse;

/// What a request starts with: the protocol and its version.
pub const MAGIC: [u8; 4] = *b"SAI1";

/// A request's length: [`MAGIC`] and one byte of flags.
pub const REQUEST_LEN: usize = MAGIC.len() + 1;

/// The flag that counts the look as use of the service (restarting its idle
/// clock), as `InfoRequest.touch` does.
const TOUCH: u8 = 1;

/// The longest answer a client reads: an `InfoResponse` with many leases is
/// a few KiB; anything near this is not a kit's answer.
pub const MAX_ANSWER: usize = 1 << 20;

/// The request for one look; `touch` counts it as use.
pub fn request(touch: bool) -> [u8; REQUEST_LEN] {
    let [a, b, c, d] = MAGIC;
    [a, b, c, d, if touch { TOUCH } else { 0 }]
}

/// Whether `bytes` is a request, and if so whether it touches. `None`:
/// something else (another protocol, a newer version), which gets no answer.
pub fn read_request(bytes: &[u8; REQUEST_LEN]) -> Option<bool> {
    (bytes[..MAGIC.len()] == MAGIC).then_some(bytes[MAGIC.len()] & TOUCH != 0)
}

/// The answer for `info`: its length, then its encoding.
pub fn answer(info: &InfoResponse) -> Vec<u8> {
    let body = info.encode_to_vec();
    let mut bytes = Vec::with_capacity(4 + body.len());
    bytes.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    bytes.extend_from_slice(&body);
    bytes
}

/// Ask the kit serving at `socket` for its `Info` (`touch`: counting as
/// use), all of it within `limit`.
///
/// An error whenever the answer cannot be believed, too: the connection
/// does not come from this process's uid, or the answer names another
/// process than the one at the other end (or that one cannot be told).
/// Nothing waits beyond `limit`, however slowly a peer answers: the
/// connect does not wait for a full backlog (an error at once), and every
/// read waits only for what is left of it.
pub fn ask(socket: &Path, touch: bool, limit: Duration) -> io::Result<InfoResponse> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let deadline = Instant::now() + limit;
    // Close-on-exec from the start (socket2 sets it), and the connect does
    // not wait: a Unix socket connects at once or fails (a full backlog
    // with EAGAIN).
    let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    sock.set_nonblocking(true)?;
    sock.connect(&SockAddr::unix(socket)?)?;
    // Who listens, asked before the request: given it, the kit answers and
    // closes, and macOS names no pid for a peer that has gone.
    let peer = crate::sys::socket_peer(&sock)?;
    if peer.uid != crate::sys::my_uid() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is served by another user (uid {})",
                socket.display(),
                peer.uid
            ),
        ));
    }
    // Five bytes into a new connection's empty buffer never wait. A peer
    // that has closed its end gives EPIPE, never SIGPIPE (which would end
    // a host process that has not ignored it).
    let written = sock.send_with_flags(&request(touch), NO_SIGPIPE)?;
    if written != REQUEST_LEN {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the request was cut short",
        ));
    }
    sock.set_nonblocking(false)?;
    let mut stream = std::os::unix::net::UnixStream::from(sock);
    let mut len = [0; 4];
    read_by(&mut stream, &mut len, deadline)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_ANSWER {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("an answer of {len} bytes is not a kit's"),
        ));
    }
    let mut body = vec![0; len];
    read_by(&mut stream, &mut body, deadline)?;
    let info = InfoResponse::decode(body.as_slice()).map_err(io::Error::other)?;
    if peer.pid != Some(info.pid) {
        let gave = peer
            .pid
            .map_or("a process whose pid cannot be told".into(), |pid| {
                format!("pid {pid}")
            });
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the answer names pid {}, but {gave} gave it", info.pid),
        ));
    }
    Ok(info)
}

/// Fill `buf` from `stream` by `deadline`, however the peer divides what it
/// sends.
fn read_by(
    stream: &mut std::os::unix::net::UnixStream,
    buf: &mut [u8],
    deadline: Instant,
) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no whole answer in time",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the answer was cut short",
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `send`'s flag that keeps a write to a closed peer from raising SIGPIPE
/// (Linux); macOS has the socket option instead, which socket2 sets.
#[cfg(any(target_os = "linux", target_os = "android"))]
const NO_SIGPIPE: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const NO_SIGPIPE: libc::c_int = 0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_says_whether_it_touches_and_nothing_else_is_one() {
        assert_eq!(read_request(&request(true)), Some(true));
        assert_eq!(read_request(&request(false)), Some(false));
        assert_eq!(read_request(b"PRI *"), None, "HTTP/2's preface is not one");
        assert_eq!(
            read_request(b"SAI2\x01"),
            None,
            "another version is not one"
        );
    }

    /// A listener in this process, in a temp dir, whose first connection
    /// goes to `respond` once its request is read.
    fn one_answer(
        respond: impl FnOnce(std::os::unix::net::UnixStream) + Send + 'static,
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        std::thread::JoinHandle<()>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("info.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0; REQUEST_LEN];
            conn.read_exact(&mut request).unwrap();
            assert!(read_request(&request).is_some());
            respond(conn);
        });
        (dir, path, server)
    }

    /// Ask a listener in this process that answers with `info` at once.
    fn ask_one_answering(info: InfoResponse) -> io::Result<InfoResponse> {
        use std::io::Write;
        let (_dir, path, server) = one_answer(move |mut conn| {
            conn.write_all(&answer(&info)).unwrap();
        });
        let asked = ask(&path, true, Duration::from_secs(5));
        server.join().unwrap();
        asked
    }

    #[test]
    fn an_answer_is_believed_only_from_the_process_it_names() {
        let mine = InfoResponse {
            pid: std::process::id(),
            version: "1.0.0".into(),
            ..InfoResponse::default()
        };
        assert_eq!(ask_one_answering(mine.clone()).unwrap(), mine);
        // Any process of the user's may listen there; it may not speak for
        // another (whose pid `stop` would then signal).
        let e = ask_one_answering(InfoResponse { pid: 1, ..mine }).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("names pid 1"), "{e}");
    }

    #[test]
    fn a_peer_that_answers_a_byte_at_a_time_is_given_up_on_in_time() {
        use std::io::Write;
        let (_dir, path, server) = one_answer(|mut conn| {
            let info = InfoResponse {
                pid: std::process::id(),
                name: "x".repeat(100),
                ..InfoResponse::default()
            };
            // Each byte well within a read's wait, all of them far beyond
            // the limit: until the client has gone.
            for byte in answer(&info) {
                std::thread::sleep(Duration::from_millis(20));
                if conn.write_all(&[byte]).is_err() {
                    return;
                }
            }
        });
        let started = Instant::now();
        let e = ask(&path, false, Duration::from_millis(200)).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            "{e}"
        );
        // Generously bounded: the whole answer would take over 2 s.
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        server.join().unwrap();
    }

    #[test]
    fn nothing_listening_is_an_error_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("info.sock");
        // A socket file nobody listens on any more (a killed service's).
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let e = ask(&path, false, Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            ask(&path, false, Duration::from_secs(5))
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn an_answer_is_its_length_then_the_encoded_info() {
        let info = InfoResponse {
            name: "svc".into(),
            version: "1.2.3".into(),
            pid: 42,
            ..InfoResponse::default()
        };
        let bytes = answer(&info);
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(len, bytes.len() - 4);
        assert_eq!(InfoResponse::decode(&bytes[4..]).unwrap(), info);
    }
}
