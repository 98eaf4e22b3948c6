//! The quick look: a kit service's `Info` over `info.sock`, without HTTP/2
//! and without a runtime, for the `ensure` of a fresh process.

use super::*;

use crate::quick_info;

/// How long the whole quick look may take. A serving kit answers within a
/// millisecond; one that does not answer in this (a machine under a herd
/// of starts, a stopped process) is asked over gRPC, within
/// [`PROBE_TIMEOUT`], before anything else is done.
const QUICK_LIMIT: Duration = Duration::from_millis(100);

impl ServiceManager {
    /// What `ensure` would return, when a kit service already serves as
    /// configured: found with one blocking round trip on its `info.sock`
    /// (no runtime, no HTTP/2), the way a shell's fresh `ensure` goes.
    /// Counts as use of the service, as `ensure` does.
    ///
    /// `None` whenever that does not settle it: nothing there, a plain
    /// service, one starting, shutting down or serving elsewhere, another
    /// version than `expected_version`, an answer that cannot be believed.
    /// Then call `ensure`, which looks again and acts. Blocks the calling
    /// thread (not for async code) for at most 100 ms, on a service that
    /// does not answer.
    ///
    /// For a manager's first call (a fresh process's): one that has found
    /// the service before keeps a connection, over which `ensure` is as
    /// quick and checks it reaches the same process, so this gives `None`
    /// at once.
    pub fn ensure_if_serving(&self) -> Option<Status> {
        if self.is_connected() {
            return None;
        }
        // The state dir is checked first, as for every look: a socket in a
        // dir someone else controls is not trusted.
        if !self.paths.check_state_dir().ok()? {
            return None;
        }
        let socket = self.paths.info_socket();
        let info = match quick_info::ask(&socket, true, QUICK_LIMIT) {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!("{}: no quick look ({e})", socket.display());
                return None;
            }
        };
        let serves_here = info.endpoint == self.endpoint.to_string() && self.endpoint_is_ours();
        let status = self.kit_status(&info, None);
        let wanted = self.config.expected_version.as_ref();
        let settled = !info.shutting_down
            && serves_here
            && wanted.is_none_or(|want| status.version.as_ref() == Some(want));
        tracing::debug!(
            "{}: pid {} {}",
            socket.display(),
            info.pid,
            if settled {
                "serves as configured (the quick look)"
            } else {
                "answered, but not as configured: asking over gRPC"
            }
        );
        settled.then_some(status)
    }

    /// Whether this manager keeps a connection to the service from an
    /// earlier call, over which `ensure` is as quick as the quick look
    /// ([`Self::ensure_if_serving`] then gives `None` at once).
    pub fn is_connected(&self) -> bool {
        self.channel.lock().expect("channel mutex").is_some()
    }

    /// Whether the endpoint is still the kit's: a TCP port it listens on
    /// stays its own while it runs; a Unix socket path must still be a
    /// socket of this user's (root's in a private dir: launchd's, for a
    /// socket-activated agent), not one another user made where the
    /// service's was removed. (The gRPC look asks the kernel who listens.)
    fn endpoint_is_ours(&self) -> bool {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let ResolvedEndpoint::Unix(path) = &self.endpoint else {
            return true;
        };
        std::fs::symlink_metadata(path).is_ok_and(|meta| {
            meta.file_type().is_socket()
                && spfs_autostart_protocol::endpoint::owner_is_ours(meta.uid(), path)
        })
    }
}
