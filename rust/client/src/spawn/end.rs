//! Ending a start that will not be used: asked first, as a stop would,
//! then whatever is left is killed, and a dropped start (Ctrl-C, a
//! cancelled call) ended on a thread of its own.

use super::wait::{exit_status, read_some};
use super::*;
use crate::stopping::StoppingMark;

/// How long a service that did not become ready may take to end on its
/// graceful signal before it is killed.
const END_GRACE: Duration = Duration::from_secs(1);

/// Whether `lock` is still held after [`END_GRACE`]: a killed process lets
/// go of it only once its last thread has exited, a moment after its main
/// thread reads as dead.
pub(crate) async fn still_held(lock: &Path) -> bool {
    let until = Instant::now() + END_GRACE;
    while crate::lock::is_held(lock).unwrap_or(false) {
        if Instant::now() >= until {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

impl Child {
    /// End a start that will not be used, saying in the service's log when
    /// and `why`: asked first, as a stop would ([`Child::ask_to_end`]), then
    /// whatever is left is killed.
    pub(crate) async fn end(&mut self, why: &str) {
        if self.pid == 0 {
            return;
        }
        let line = format!("ending pid {} at {}: {why}", self.pid, logs::mark::now());
        logs::mark::append(&self.log_file, &line);
        self.ask_to_end().await;
        self.kill();
    }

    /// Ask a service that did not become ready to end, as a stop would:
    /// its graceful signal (the first of `stop_sequence`), then up to
    /// [`END_GRACE`] for its exit status. Killed outright, a service that
    /// has mounted its filesystem (spfs-fuse-macos) leaves the mount behind.
    /// [`Child::end`] kills whatever is left.
    async fn ask_to_end(&mut self) {
        if !self.pinned() || self.pid == 0 {
            return;
        }
        // The pid is exact while the intermediate has not reaped it.
        sys::signal_session(self.pid, self.end_signal);
        sys::signal_session(self.pid, nix::sys::signal::Signal::SIGCONT);
        let status = &mut self.status;
        let buf = &mut self.status_buf;
        let _ = tokio::time::timeout(END_GRACE, async {
            while exit_status(buf).is_none() && read_some(status, buf).await {}
        })
        .await;
    }

    /// Kill what we started, then attach the log to `err`.
    pub(super) fn fail(&mut self, err: Error) -> Error {
        self.kill();
        self.with_log(err)
    }

    /// Whether the service is still our intermediate's unreaped child, so
    /// its pid (and its group id) cannot have been reused.
    fn pinned(&mut self) -> bool {
        self.intermediate
            .as_mut()
            .is_some_and(|i| matches!(i.try_wait(), Ok(None)))
    }

    /// Kill the service's whole session, then the intermediate. While the
    /// intermediate has not reaped the service, the service's pid (and so
    /// its group id) cannot have been reused.
    pub(super) fn kill(&mut self) {
        if self.pid == 0 {
            return;
        }
        let alive = self.instance.is_some_and(|i| i.is_alive());
        if self.pinned() || alive {
            sys::kill_group_and_leader(self.pid);
        }
        if let Some(daemon) = self.daemon.find() {
            tracing::info!(
                "killing pid {}, the daemon of a failed start",
                daemon.instance().pid
            );
            daemon.kill();
        } else if self.daemonized {
            // A daemon it forked may still be on its way: a kit daemon
            // reads this and ends instead of serving. (A plain daemon names
            // itself nowhere.)
            self.daemon.leave_abandoned_note();
        }
        // Killed too, so reaping it never waits for a service stuck in the
        // kernel (a hung mount) to die.
        if let Some(intermediate) = self.intermediate.as_mut() {
            let _ = intermediate.kill();
        }
        self.reap_intermediate();
        self.pid = 0;
    }
}

/// How to find the daemon a daemonizing kit service forked: the kit
/// writes the record once it holds the instance lock, with the spawn id it
/// inherited, so a live process of ours named there with this start's id,
/// younger than this start, is the service's own daemon (never a service
/// launchd started meanwhile, which has no id). A plain daemon names
/// itself nowhere: the errors say it may be left.
#[derive(Clone, Debug)]
pub(super) struct KitDaemon {
    /// `service.json`.
    pub(super) record: PathBuf,
    /// `abandoned-start`, where an abandoned start leaves its id for a
    /// daemon that has not named itself yet.
    pub(super) abandoned: PathBuf,
    /// This start's id, given to the service ([`env::SPAWN_ID`]).
    pub(super) spawn_id: String,
    /// When this start spawned the service: a daemon it left is younger.
    pub(super) spawned_at: std::time::Instant,
    /// The process this start spawned, which is not its own daemon.
    pub(super) first: u32,
}

impl KitDaemon {
    /// Tell a daemon that has not named itself yet that its start was
    /// abandoned ([`crate::Paths::abandoned_start`]).
    fn leave_abandoned_note(&self) {
        if let Err(e) = spfs_autostart_protocol::record::write_private(
            &self.abandoned,
            self.spawn_id.as_bytes(),
        ) {
            tracing::debug!("cannot write {}: {e}", self.abandoned.display());
        }
    }

    /// The daemon, if one names itself in the record now.
    fn find(&self) -> Option<KitDaemonHandle> {
        let record = ServiceRecord::read(&self.record)?;
        if record.pid == self.first || record.spawn_id.as_deref() != Some(&self.spawn_id) {
            return None;
        }
        let daemon = record.instance()?;
        // Slack for the kernel's start-time granularity (10 ms ticks).
        let younger = daemon
            .age()
            .is_some_and(|age| age <= self.spawned_at.elapsed() + Duration::from_millis(50));
        let ours = daemon.uid() == Some(sys::my_uid());
        (younger && ours)
            .then(|| ProcessHandle::open(daemon))
            .flatten()
            .map(KitDaemonHandle)
    }
}

/// A kit service's daemon, found by [`KitDaemon::find`].
struct KitDaemonHandle(ProcessHandle);

impl KitDaemonHandle {
    fn instance(&self) -> Instance {
        self.0.instance()
    }

    /// Send `signal` to the daemon, and to its group when it leads a
    /// session (as a daemon that called `setsid` does).
    fn signal(&self, signal: nix::sys::signal::Signal) {
        let _ = match self.0.leads_session() {
            true => self.0.signal_group(signal),
            false => self.0.signal(signal),
        };
    }

    fn kill(&self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
    }

    fn is_alive(&self) -> bool {
        self.0.instance().is_alive()
    }
}

impl Drop for Child {
    /// A start that was abandoned (an error, a timeout, a cancelled
    /// `ensure`) leaves nothing running. A service still starting is asked
    /// to end first, as [`Child::end`] does: spfs-fuse-macos mounts before
    /// it listens, and killed outright it leaves the mount behind.
    fn drop(&mut self) {
        self.end_abandoned();
        self.kill();
    }
}

/// The threads that are ending abandoned starts (see
/// [`Child::end_abandoned`]), for [`finish_abandoned_starts`].
static ABANDONED: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Wait for every abandoned start of this process to have ended (at most
/// a second each, then killed), and end a `program --version` probe
/// `doctor` was waiting for, with what it started. A program about to exit
/// after cancelling a command (the CLI after Ctrl-C) calls it; otherwise the
/// service it asked to end is never killed if it does not end by itself.
pub fn finish_abandoned_starts() {
    crate::doctor::end_version_probe();
    let threads = std::mem::take(&mut *ABANDONED.lock().unwrap_or_else(|e| e.into_inner()));
    for thread in threads {
        let _ = thread.join();
    }
}

impl Child {
    /// A service still starting when its start is dropped: its graceful
    /// signal now (and its daemon's, for a kit that forked one), then, on a
    /// thread of its own (a drop cannot wait, and a host's runtime must not
    /// be held up), up to [`END_GRACE`] for it to exit before what is left
    /// is killed. Until then the thread keeps `spawn.lock` and the
    /// `stopping` mark naming the service: another client waits for the
    /// ending instead of starting a second service or taking this one, which
    /// may still answer (a plain service is ready once it does), for one
    /// that serves. Nothing when the service is no longer our
    /// intermediate's child (then [`Child::kill`] does it all at once).
    fn end_abandoned(&mut self) {
        if !self.pinned() || self.pid == 0 {
            return;
        }
        // The intermediate exits when our copy of the lifeline closes, and
        // the pid is exact only while it has not: the thread keeps one.
        // (Without one, `kill` ends it all at once, as before.)
        let Ok(lifeline) = self.lifeline.try_clone() else {
            return;
        };
        let Some(mut intermediate) = self.intermediate.take() else {
            return;
        };
        let pid = std::mem::take(&mut self.pid);
        let line = format!(
            "ending pid {pid} at {}: its start was abandoned",
            logs::mark::now()
        );
        logs::mark::append(&self.log_file, &line);
        let mark = self
            .instance
            .map(|i| StoppingMark::set(self.stopping.clone(), i));
        sys::signal_session(pid, self.end_signal);
        sys::signal_session(pid, nix::sys::signal::Signal::SIGCONT);
        // A daemon it forked already, in a session of its own, that has not
        // named itself yet ends when it reads this.
        self.daemon.leave_abandoned_note();
        let asked = self.daemon.find();
        if let Some(daemon) = &asked {
            daemon.signal(self.end_signal);
            daemon.signal(nix::sys::signal::Signal::SIGCONT);
        }
        let daemon = self.daemon.clone();
        let spawn_lock = Arc::clone(&self.spawn_lock);
        let instance_lock = self.instance_lock.clone();
        let ending = std::thread::Builder::new()
            .name("spfs-autostart-end".into())
            .spawn(move || {
                // The intermediate reports the service's exit, then exits.
                let until = Instant::now() + END_GRACE;
                let ending = |intermediate: &mut std::process::Child| {
                    matches!(intermediate.try_wait(), Ok(None))
                        || asked.as_ref().is_some_and(KitDaemonHandle::is_alive)
                };
                while ending(&mut intermediate) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if matches!(intermediate.try_wait(), Ok(None)) {
                    sys::kill_group_and_leader(pid);
                    let _ = intermediate.kill();
                }
                let _ = intermediate.wait();
                drop(lifeline);
                // Found now if it named itself only after the signal.
                if let Some(daemon) = daemon.find() {
                    daemon.kill();
                }
                // The lock lives exactly as long as the service: once it is
                // free, nothing of this start is left for a look to see.
                let until = Instant::now() + END_GRACE;
                while crate::lock::is_held(&instance_lock).unwrap_or(false)
                    && Instant::now() < until
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                // The mark goes before the lock: another client's stop,
                // under the lock, may set its own.
                drop(mark);
                drop(spawn_lock);
            });
        // Without a thread (none left to the process), the service has had
        // its signal, and the intermediate goes with the lifeline.
        if let Ok(thread) = ending {
            ABANDONED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(thread);
        }
    }
}
