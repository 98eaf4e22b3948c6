//! The generated wire protocol (see `proto/`): our `Control` service and the
//! wire-compatible `spfs_vfs.VfsService`.

#![allow(
    missing_docs,
    clippy::all,
    clippy::too_many_lines,
    missing_debug_implementations
)]

/// `spfs_autostart.v1`: the control surface of kit-managed services.
pub mod control {
    tonic::include_proto!("spfs_autostart.v1");
}

/// `spfs_vfs`: the SPFS filesystem service's protocol.
pub mod vfs {
    tonic::include_proto!("spfs_vfs");
}
