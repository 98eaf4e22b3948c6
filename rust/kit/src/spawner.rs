//! What passes between the kit and the `ensure` that spawned it: the
//! readiness pipe, the start's id, and the note that the start was
//! abandoned.

use std::fs::File;
use std::io::Write;

use spfs_autostart_protocol::paths::Paths;
use spfs_autostart_protocol::{Error, env};

/// Whether the start that spawned this service was abandoned before it
/// served: `abandoned-start` names its id (an interrupted `ensure` whose
/// service forked a daemon that had not named itself yet leaves it). The
/// note is used up.
pub(crate) fn start_abandoned(paths: &Paths) -> bool {
    let Some(id) = spawn_id() else {
        return false;
    };
    let note = paths.abandoned_start();
    let abandoned = std::fs::read_to_string(&note).is_ok_and(|text| text.trim() == id);
    if abandoned {
        let _ = std::fs::remove_file(&note);
    }
    abandoned
}

/// Which start spawned this service, as its spawner said
/// ([`env::SPAWN_ID`]); a daemon it forked says the same.
pub(crate) fn spawn_id() -> Option<String> {
    std::env::var(env::SPAWN_ID)
        .ok()
        .filter(|id| !id.is_empty())
}

/// Tell the spawner, on its readiness pipe, that the service cannot start
/// and why: `ensure` reports that instead of a bare exit.
pub(crate) fn tell_failed(ready: &mut File, e: &Error) {
    tell_failed_because(ready, &e.to_string());
}

/// [`tell_failed`], in words.
pub(crate) fn tell_failed_because(ready: &mut File, why: &str) {
    let line = spfs_autostart_protocol::readiness::failed_line(why);
    let _ = ready.write_all(line.as_bytes());
}
