//! placeholder
//!
//! - [`launchd`]: LaunchAgent plists and systemd units for always-on or socket-activated runs,
//!   and `launchctl` install/uninstall/status.

pub mod launchd;
