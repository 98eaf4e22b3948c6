//! The kit's end of the quick look (`spfs_autostart_protocol::quick_info`):
//! `Info` over `info.sock` in the state dir, without HTTP/2, for a fresh
//! `ensure` that would otherwise spend most of its time on the handshake.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use spfs_autostart_protocol::ResolvedEndpoint;
use spfs_autostart_protocol::quick_info::{REQUEST_LEN, answer, read_request};
use spfs_autostart_protocol::sys;

use crate::lifetime::Lifetime;
use crate::listener::{self, Listener, rest_when_out_of_descriptors, same_user};
use crate::owned::Owned;
use crate::signals::AbortOnDrop;

/// How long a connection may take to send its request, and the answer to
/// leave: a client sends it with the connection.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(1);

/// The quick look's socket, bound and not yet answered on.
pub(crate) struct QuickLook {
    listener: UnixListener,
    owned: Owned,
}

/// Bind `info.sock` in the state dir of `owned`, the instance that holds
/// the lock (replacing a stale one, as for the endpoint); `owned` now owns
/// it too. None when it cannot be, said in the log: the service serves all
/// the same, and clients ask over gRPC.
pub(crate) fn bind(owned: Owned) -> (Owned, Option<QuickLook>) {
    if !owned.holds_the_lock() {
        return (owned, None);
    }
    let path = owned.paths().info_socket();
    match listener::bind(&ResolvedEndpoint::Unix(path.clone())) {
        Ok(Listener::Unix { listener, .. }) => {
            let owned = owned.with_info_socket(path);
            let look = QuickLook {
                listener,
                owned: owned.clone(),
            };
            (owned, Some(look))
        }
        Ok(Listener::Tcp { .. }) => (owned, None),
        Err(e) => {
            tracing::warn!("no quick look for clients (they ask over gRPC): {e}");
            (owned, None)
        }
    }
}

impl QuickLook {
    /// Answer on it from now on, until the guard is dropped.
    pub(crate) fn start(self, lifetime: Arc<Lifetime>) -> AbortOnDrop {
        let answers = serve(self.listener, lifetime, self.owned);
        AbortOnDrop(tokio::spawn(answers).abort_handle())
    }
}

/// Answer every connection to `listener` from this uid with `lifetime`'s
/// `Info`, until the task running this is aborted; no longer once the
/// state dir does not lead to this service (`owned`): its endpoint or its
/// lock was removed or replaced, and clients must find that out (the gRPC
/// look does) before its watcher sees it.
async fn serve(listener: UnixListener, lifetime: Arc<Lifetime>, owned: Owned) {
    let me = sys::my_uid();
    loop {
        let Ok((stream, _)) = rest_when_out_of_descriptors(listener.accept().await).await else {
            continue;
        };
        let Some(stream) = same_user(stream, me) else {
            continue;
        };
        if owned.lost().is_some() {
            continue;
        }
        // The client sends its request with the connection: it is usually
        // here already, and answered at once, without a task to schedule
        // (a fresh `ensure` waits for this answer).
        let mut request = [0; REQUEST_LEN];
        match stream.try_read(&mut request) {
            Ok(REQUEST_LEN) => {
                if let Some(bytes) = answer_to(&request, &lifetime) {
                    let written = stream.try_write(&bytes).unwrap_or(0);
                    if written < bytes.len() {
                        tokio::spawn(send_rest(stream, bytes, written));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tokio::spawn(answer_one(stream, lifetime.clone()));
            }
            // Closed, or cut short: no request of ours.
            _ => {}
        }
    }
}

/// The answer to `request` (touching `lifetime` if it asks to); `None` for
/// anything that is not a request (another protocol, another version),
/// which is closed unanswered.
fn answer_to(request: &[u8; REQUEST_LEN], lifetime: &Lifetime) -> Option<Vec<u8>> {
    let touch = read_request(request)?;
    if touch {
        lifetime.touch();
    }
    Some(answer(&lifetime.info()))
}

/// Wait for the request from `stream`, then answer it.
async fn answer_one(mut stream: UnixStream, lifetime: Arc<Lifetime>) {
    let mut request = [0; REQUEST_LEN];
    let read = tokio::time::timeout(EXCHANGE_LIMIT, stream.read_exact(&mut request)).await;
    if let Ok(Ok(_)) = read
        && let Some(bytes) = answer_to(&request, &lifetime)
    {
        send_rest(stream, bytes, 0).await;
    }
}

/// Send what is left of `bytes` after the first `sent`, within the limit.
async fn send_rest(mut stream: UnixStream, bytes: Vec<u8>, sent: usize) {
    let _ = tokio::time::timeout(EXCHANGE_LIMIT, stream.write_all(&bytes[sent..])).await;
}
