//! The checks on a Unix endpoint's path, made before a service is started
//! there: what the kernel would refuse or the service could not create.

use std::fs;
use std::path::{Path, PathBuf};

use super::Paths;
use crate::endpoint::{MAX_SOCKET_PATH, ResolvedEndpoint};
use crate::error::{Error, ErrorKind, Result};
use crate::remedy::Remedy;

impl Paths {
    /// Refuse a Unix socket path the kernel would truncate, before anything
    /// is created, and a TCP endpoint that is not a loopback one.
    pub fn check_endpoint(&self, endpoint: &ResolvedEndpoint) -> Result<()> {
        match endpoint {
            ResolvedEndpoint::Unix(path) if *path == self.socket() => check_socket_path(path),
            ResolvedEndpoint::Unix(path) => check_socket_path(path).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "endpoint unix://{} has a socket path of {} bytes, longer than the \
                         {MAX_SOCKET_PATH} the system allows; set endpoint (or \
                         SPFS_AUTOSTART_ENDPOINT) to a shorter path",
                        path.display(),
                        path.as_os_str().len()
                    ),
                )
                .with_remedy(Remedy::SetKey("endpoint"))
            }),
            // What the config refuses (see `Endpoint`'s parser), refused for
            // an endpoint built by hand too: the service's calls ask for no
            // credentials.
            ResolvedEndpoint::Tcp(addr) if !addr.ip().is_loopback() => Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "endpoint tcp://{addr} is not a loopback address: the service would be \
                     reachable from other machines, and its calls ask for no credentials; \
                     give a loopback one (127.0.0.1 or [::1])"
                ),
            )
            .with_remedy(Remedy::SetKey("endpoint"))),
            ResolvedEndpoint::Tcp(_) => Ok(()),
        }
    }

    /// Refuse a Unix endpoint outside the state dir whose directory is
    /// missing or not a directory: the service could not create its socket
    /// there. (A start creates the state dir, so a socket directly in it
    /// passes.) Anything else about the directory is left for the bind to
    /// report.
    pub fn check_endpoint_dir(&self, endpoint: &ResolvedEndpoint) -> Result<()> {
        let ResolvedEndpoint::Unix(path) = endpoint else {
            return Ok(());
        };
        let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) else {
            return Ok(());
        };
        if self.is_state_dir(dir) {
            return Ok(());
        }
        // What stands in the way is named; only a regular file of the
        // user's is advised to be removed, and last (it may be precious).
        let in_the_way = || {
            let (why, removable) = super::in_the_way(dir);
            let last = match removable {
                true => "; or, if that file is a leftover, remove it and create the directory",
                false => "",
            };
            (why, "", last)
        };
        let (why, first, last) = match fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => in_the_way(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                "does not exist".to_string(),
                "create the directory, or ",
                "",
            ),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => in_the_way(),
            Err(_) => return Ok(()),
        };
        Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "endpoint unix://{}: its directory {} {why}, so the service cannot create its \
                 socket there; {first}set endpoint (or SPFS_AUTOSTART_ENDPOINT) to a socket in \
                 a directory that exists{last}",
                path.display(),
                dir.display()
            ),
        )
        .with_remedy(Remedy::SetKey("endpoint")))
    }

    /// Whether `dir` is the state dir, however either is spelled (`..`, a
    /// symlink to it), when the state dir need not exist yet.
    fn is_state_dir(&self, dir: &Path) -> bool {
        let state_dir = lexical(&self.state_dir);
        let dir = lexical(dir);
        if dir == state_dir {
            return true;
        }
        // A symlink to it, dangling until a start creates it.
        match fs::read_link(&dir) {
            Ok(target) => {
                let parent = dir.parent().unwrap_or(Path::new("/"));
                lexical(&parent.join(target)) == state_dir
            }
            Err(_) => false,
        }
    }
}

/// `path` with `.` dropped and each `..` taking off the part before it,
/// without looking at the file system.
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Refuse a socket path the kernel would truncate.
pub fn check_socket_path(path: &Path) -> Result<()> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "socket path {} is {len} bytes, longer than the {MAX_SOCKET_PATH} the system allows; \
                 set SPFS_AUTOSTART_STATE_DIR (or state_dir) to a shorter directory",
                path.display()
            ),
        )
        .with_remedy(Remedy::SetKey("state_dir")));
    }
    Ok(())
}
