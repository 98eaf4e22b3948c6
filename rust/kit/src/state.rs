//! What the kit writes in the state dir: the instance lock it takes and
//! the record that says who holds it and in which phase.

use std::fs::File;
use std::os::fd::OwnedFd;

use spfs_autostart_protocol::paths::Paths;
use spfs_autostart_protocol::record::{Phase, ServiceRecord, process_start_time};
use spfs_autostart_protocol::{Error, ErrorKind, Result};

use crate::lifetime::Lifetime;
use crate::spawner::spawn_id;

/// How the instance-lock conflict starts its message; [`Kit::start_or_defer`]
/// recognises it by this.
pub(crate) const ANOTHER: &str = "another instance holds";

/// The `Starting` record of a service that has just taken the lock, with
/// its version: a record with one is a kit's, so a `stop` during the
/// set-up sends the kit's stop steps, not a plain service's
/// `stop_sequence`. (Its spawner's record for it has none.)
pub(crate) fn write_starting_record(paths: &Paths, version: &str, activated_at: Option<&str>) {
    let pid = std::process::id();
    if ServiceRecord::read(&paths.record()).is_some_and(|r| r.pid == pid && r.version.is_some()) {
        return;
    }
    let record = ServiceRecord {
        pid,
        start_time: process_start_time(pid),
        program: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        version: Some(version.to_string()),
        endpoint: activated_at.unwrap_or_default().to_string(),
        started_at_unix_ms: spfs_autostart_protocol::record::unix_ms(std::time::SystemTime::now()),
        phase: Phase::Starting,
        // With the endpoint: a look at a socket-activated service that is
        // not serving then does not connect (it would start it again).
        socket_activated: activated_at.is_some(),
        spawn_id: spawn_id(),
    };
    if let Err(e) = record.write(&paths.record()) {
        tracing::warn!("{e}");
    }
}

/// Say in the record that this service, as `lifetime` knows it, is in
/// `phase`.
pub(crate) fn write_record(lifetime: &Lifetime, paths: &Paths, phase: Phase) {
    let info = lifetime.info();
    let record = ServiceRecord {
        pid: info.pid,
        start_time: process_start_time(info.pid),
        program: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        version: Some(info.version),
        endpoint: info.endpoint,
        started_at_unix_ms: info.started_at_unix_ms,
        phase,
        socket_activated: info.socket_activated,
        spawn_id: spawn_id(),
    };
    if let Err(e) = record.write(&paths.record()) {
        tracing::warn!("{e}");
    }
}

/// Adopt the spawner's locked descriptor if it really is this state dir's
/// `instance.lock`; otherwise take the lock ourselves.
pub(crate) fn take_instance_lock(paths: &Paths, inherited: Option<OwnedFd>) -> Result<File> {
    use std::os::unix::fs::MetadataExt;
    let path = paths.instance_lock();
    if let Some(fd) = inherited {
        let file = File::from(fd);
        let same = match (file.metadata(), std::fs::metadata(&path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        // Locking a description that already holds the lock succeeds.
        if same && file.try_lock().is_ok() {
            return Ok(file);
        }
        tracing::warn!(
            "the inherited lock descriptor is not {}; taking the lock",
            path.display()
        );
        // Not ours to close: whatever that number is, it stays open.
        let _ = std::os::fd::IntoRawFd::into_raw_fd(file);
    }
    // A status probe may hold the lock shared for an instant: retry
    // briefly rather than refuse to start.
    match spfs_autostart_protocol::lock::take_soon(&path)? {
        Some(file) => Ok(file),
        None => Err(Error::new(
            ErrorKind::EndpointConflict,
            format!(
                "{ANOTHER} {}; only one service may run per state dir. \
                 The status operation shows it",
                path.display()
            ),
        )),
    }
}
