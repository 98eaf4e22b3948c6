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
}

impl ServiceRecord {
    /// Read the record; `None` when it is missing or unreadable (it is advice).
    pub fn read(path: &Path) -> Option<ServiceRecord> {
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Write the record atomically (temp file + rename in the same dir).
    pub fn write(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_vec_pretty(self).expect("record serializes");
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            // The umask must not make the record unreadable to its owner.
            .and_then(|mut file| {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                file.write_all(&text)
            })
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::io("cannot write pid record", path, e)
            })
    }

    /// Whether the recorded process is still the one that was recorded.
    pub fn process_matches(&self) -> bool {
        match (self.start_time, process_start_time(self.pid)) {
            (Some(recorded), Some(now)) => recorded == now,
            _ => false,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The start time of `pid`, in a unit of the platform's choosing (clock ticks
/// since boot on Linux, microseconds since the epoch on macOS), or `None`
/// when there is no such process.
#[cfg(target_os = "linux")]
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; the fields
    // after the last ')' are plain. starttime is field 22, the 20th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The start time of `pid`, in microseconds since the epoch.
#[cfg(target_os = "macos")]
pub fn process_start_time(pid: u32) -> Option<u64> {
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: `info` is a properly sized, writable proc_bsdinfo.
    let got = unsafe {
        libc::proc_pidinfo(
            pid as libc::c_int,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    (got == size).then(|| info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec)
}

/// Without a way to read start times, no pid can be verified, so none is
/// ever signalled.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn process_start_time(_pid: u32) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_stable_and_missing_pid_has_none() {
        let me = std::process::id();
        let a = process_start_time(me).expect("own start time");
        assert_eq!(process_start_time(me), Some(a));
        assert_eq!(process_start_time(u32::MAX / 2), None);
    }

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
        };
        rec.write(&path).unwrap();
        assert_eq!(ServiceRecord::read(&path), Some(rec.clone()));
        assert!(rec.process_matches());
        rec.start_time = rec.start_time.map(|t| t + 1);
        assert!(
            !rec.process_matches(),
            "another start time is another process"
        );
    }
}
