//! The environments a running service has mounted, asked of
//! `spfs_vfs.VfsService/Status`.
//!
//! Only spfs-fuse-macos from spk pull request #1308 on has `Status`; spk's
//! `main` has only `Mount` and `Shutdown`: a service without `Status` simply
//! has no mounts to show. One whose `Status` fails or hangs is not an error
//! to anyone looking at it either, but it is said (a warning of the
//! status): a hung mount must not read as "running, nothing mounted".

use std::time::Duration;

use tonic::transport::Channel;

use crate::proto::vfs::{StatusRequest, vfs_service_client::VfsServiceClient};
use crate::status::Mount;

/// The service's active mounts, sorted by root pid; none when it has no
/// `Status` (`UNIMPLEMENTED`); why they are not known when it fails the
/// call or does not answer within `timeout`.
pub(crate) async fn active(channel: Channel, timeout: Duration) -> Result<Vec<Mount>, String> {
    let mut client = VfsServiceClient::new(channel);
    let call = client.status(StatusRequest {});
    let reply = match tokio::time::timeout(timeout, call).await {
        Ok(Ok(reply)) => reply.into_inner(),
        Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => return Ok(Vec::new()),
        Ok(Err(status)) => {
            return Err(format!(
                "the service did not say what it has mounted: VfsService/Status failed ({}: {})",
                status.code().description(),
                status.message()
            ));
        }
        Err(_) => {
            return Err(format!(
                "the service did not say what it has mounted: VfsService/Status did not \
                 answer within {:.1}s (a hung mount?)",
                timeout.as_secs_f64()
            ));
        }
    };
    let mut mounts: Vec<Mount> = reply
        .mounts
        .into_iter()
        .map(|m| Mount {
            runtime_name: m.runtime_name,
            root_pid: m.root_pid,
            editable: m.editable,
            env_spec: m.env_spec,
        })
        .collect();
    mounts.sort_by_key(|m| m.root_pid);
    Ok(mounts)
}
