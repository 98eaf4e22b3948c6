//! The environments a running service has mounted, asked of
//! `spfs_vfs.VfsService/Status`.
//!
//! Only spfs-fuse-macos from spk pull request #1308 on has `Status`; spk's
//! `main` has only `Mount` and `Shutdown`. A service that cannot say what it
//! mounted is not an error to anyone looking at it, so every failure here is
//! "no mounts known".

use std::time::Duration;

use tonic::transport::Channel;

use crate::proto::vfs::{StatusRequest, vfs_service_client::VfsServiceClient};
use crate::status::Mount;

/// The service's active mounts, sorted by root pid; empty when it has no
/// `Status` (`UNIMPLEMENTED`), fails it, or does not answer within `timeout`.
pub async fn active(channel: Channel, timeout: Duration) -> Vec<Mount> {
    let mut client = VfsServiceClient::new(channel);
    let call = client.status(StatusRequest {});
    let reply = match tokio::time::timeout(timeout, call).await {
        Ok(Ok(reply)) => reply.into_inner(),
        Ok(Err(status)) => {
            tracing::debug!("VfsService/Status: {}", status.message());
            return Vec::new();
        }
        Err(_) => {
            tracing::debug!("VfsService/Status did not answer within {timeout:?}");
            return Vec::new();
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
    mounts
}
