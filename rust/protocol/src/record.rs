//! `service.json`: who was started, when, and how to recognise it later.
//!
//! The record is advice, never proof: a pid is only signalled when the
//! instance lock is held *and* the process's start time still matches the
//! recorded one, so a pid reused by an unrelated process is never touched.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The phase the writer last saw the service in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Spawned, not yet serving.
    Starting,
    /// Serving.
    Running,
    /// Shutting down.
    Stopping,
}

/// The contents of `service.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The service process.
    pub pid: u32,
    /// Its start time as the kernel reports it (opaque, compared for equality).
    pub start_time: Option<u64>,
    /// The program that was started.
    pub program: String,
    /// The service's version, once the service itself wrote the record.
    #[serde(default)]
    pub version: Option<String>,
    /// The endpoint, in config syntax.
    pub endpoint: String,
    /// When it was started, in milliseconds since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// What the writer last saw.
    pub phase: Phase,
    /// The service took its listening socket from launchd or systemd: the
    /// socket stays with them after the service exits, and a connection to
    /// it starts the service again. Only the kit knows; its record says.
    #[serde(default)]
    pub socket_activated: bool,
    /// The start that spawned it ([`crate::env::SPAWN_ID`]), as the kit
    /// found it in its environment; none for one started otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn_id: Option<String>,
}

impl ServiceRecord {
    /// Read the record; `None` when it is missing or unreadable (it is advice).
    pub fn read(path: &Path) -> Option<ServiceRecord> {
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Write the record atomically (temp file + rename in the same dir).
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).expect("record serializes");
        write_private(path, &text).map_err(|e| Error::io("cannot write pid record", path, e))
    }

    /// Write the record only if none exists (a hard link of a temp file,
    /// which never replaces): the spawner's `Starting` record must not
    /// overwrite what the service itself wrote first. `Ok(false)` when a
    /// record was already there.
    pub fn write_new(&self, path: &Path) -> Result<bool> {
        let tmp = path.with_extension(format!("json.{}.new", std::process::id()));
        self.write(&tmp)?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::io("cannot write pid record", path, e)),
        }
    }

    /// The recorded process, exactly (`None` without a start time).
    pub fn instance(&self) -> Option<crate::sys::Instance> {
        Some(crate::sys::Instance {
            pid: self.pid,
            start_time: self.start_time?,
        })
    }

    /// Whether the recorded process is still the one that was recorded, and
    /// alive (a zombie is not).
    pub fn process_matches(&self) -> bool {
        self.instance().is_some_and(|i| i.is_alive())
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub use crate::sys::process_start_time;

/// Write `bytes` to `path` atomically (a temporary file renamed over it),
/// readable by its owner only (0600, whatever the umask): for the state
/// dir's JSON files, which readers must never see half-written.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(bytes)
        })
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_detects_reuse() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("service.json");
        let mut rec = ServiceRecord {
            pid: std::process::id(),
            start_time: process_start_time(std::process::id()),
            program: "/bin/x".into(),
            version: None,
            endpoint: "unix".into(),
            started_at_unix_ms: 1,
            phase: Phase::Starting,
            socket_activated: false,
            spawn_id: None,
        };
        rec.write(&path).unwrap();
        assert_eq!(ServiceRecord::read(&path), Some(rec.clone()));
        assert!(rec.process_matches());
        rec.start_time = rec.start_time.map(|t| t + 1);
        assert!(
            !rec.process_matches(),
            "another start time is another process"
        );
        let fresh = tmp.path().join("fresh.json");
        assert!(rec.write_new(&fresh).unwrap(), "written when missing");
        let mut other = rec.clone();
        other.pid += 1;
        assert!(!other.write_new(&fresh).unwrap(), "never replaces");
        assert_eq!(ServiceRecord::read(&fresh), Some(rec));
    }
}
