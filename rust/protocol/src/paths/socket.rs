//! The checks on a Unix endpoint's path, made before a service is started
//! there: what the kernel would refuse or the service could not create.

use std::fs;
use std::path::Path;

use super::Paths;
use crate::endpoint::{MAX_SOCKET_PATH, ResolvedEndpoint};
use crate::error::{Error, ErrorKind, Result};
use crate::remedy::Remedy;

impl Paths {
    /// Refuse a Unix socket path the kernel would truncate, before anything
    /// is created; TCP endpoints use no path and pass.
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
        if dir == self.state_dir {
            return Ok(());
        }
        let (why, fix) = match fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => (
                "is not a directory",
                "remove that file and create the directory",
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                ("does not exist", "create the directory")
            }
            // A file where one of its parents belongs.
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => (
                "cannot be made: a file stands where one of its parents belongs",
                "remove that file and create the directory",
            ),
            Err(_) => return Ok(()),
        };
        Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "endpoint unix://{}: its directory {} {why}, so the service cannot create its \
                 socket there; {fix}, or set endpoint (or \
                 SPFS_AUTOSTART_ENDPOINT) to a socket in one that exists",
                path.display(),
                dir.display()
            ),
        )
        .with_remedy(Remedy::SetKey("endpoint")))
    }
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
