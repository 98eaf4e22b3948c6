//! The C ABI and the uniffi bindings of spfs-autostart.
//!
//! This crate converts and delegates: every decision lives in the core crate
//! (`spfs-autostart`, imported as `spfs_autostart_core`). Two surfaces share one process-wide tokio runtime:
//!
//! - [`capi`]: the C ABI described by `include/spfs_autostart.h` (generated
//!   by cbindgen, rustls-ffi conventions: opaque handles, result codes,
//!   outputs written only on success, a panic boundary around every call);
//! - [`api`]: the uniffi object model the Swift and Python bindings are
//!   generated from (`ServiceManager`, `ServiceStatus`, `ServiceError`, ...).

#![deny(missing_docs)]

pub mod api;
pub mod capi;
mod feed;
mod process;
mod runtime;
mod wake;

pub use api::*;

uniffi::setup_scaffolding!();
