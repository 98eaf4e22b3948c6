//! Waiting for readiness, and what a dropped start leaves: nothing.

use super::*;

/// What the readiness pipe said.
pub(super) enum Signal {
    Ready,
    Failed(String),
}

/// A complete readiness line in `buf`, if one has arrived. The buffer
/// lives in the [`Child`], so a message written in parts (or a read
/// interrupted by another branch of the wait) loses nothing.
pub(super) fn parse_signal(buf: &[u8]) -> Option<Signal> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let line = String::from_utf8_lossy(&buf[..end]).into_owned();
    Some(match line.split_once(' ') {
        Some(("FAILED", reason)) => Signal::Failed(reason.to_string()),
        _ if line.starts_with("READY") => Signal::Ready,
        _ => Signal::Failed(format!("unexpected readiness message {line:?}")),
    })
}

/// Read once from `pipe` into `buf`; `false` at end of file (or error).
/// Cancellation-safe: a dropped read has consumed nothing.
pub(super) async fn read_some(
    pipe: &mut tokio::net::unix::pipe::Receiver,
    buf: &mut Vec<u8>,
) -> bool {
    let mut chunk = [0u8; 256];
    match pipe.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

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

/// The service's exit status, once all of it is in `buf` (what the status
/// pipe said after the service's pid, which `start` read).
fn exit_status(buf: &[u8]) -> Option<ExitStatus> {
    let raw = i32::from_ne_bytes(buf.get(..4)?.try_into().expect("4 bytes"));
    Some(ExitStatus::from_raw(raw))
}

impl Child {
    /// Wait until the child serves at `endpoint`, at most until `deadline`:
    /// woken by its readiness message (kit services) or found by polling
    /// with backoff (plain ones). If it exits first, fail at once with its
    /// status and log, unless it exited 0 and a process it left behind (a
    /// daemonizing service) still holds `lock`: then keep polling. At the
    /// deadline, unless it serves by then, kill it and fail with
    /// `ReadyTimeout`. On failure no process
    /// of ours is left behind; on success call [`Child::release`].
    pub(crate) async fn wait_ready(
        &mut self,
        endpoint: &ResolvedEndpoint,
        lock: &Path,
        deadline: Instant,
        probe_timeout: Duration,
    ) -> Result<Probe> {
        let started = Instant::now();
        let mut pipe_open = true;
        let mut status_open = true;
        let mut daemonized = false;
        let mut backoff = Backoff::new(Duration::from_millis(50));
        loop {
            tokio::select! {
                biased;
                open = read_some(&mut self.status, &mut self.status_buf), if status_open => {
                    status_open = open;
                    if let Some(status) = exit_status(&self.status_buf) {
                        self.reap_intermediate();
                        if status.success() && crate::lock::is_held(lock).unwrap_or(false) {
                            tracing::debug!("the service's first process exited 0; polling for its daemon");
                            daemonized = true;
                            status_open = false;
                        } else {
                            return Err(self.fail(self.exited_error(Some(status))));
                        }
                    } else if !open {
                        return Err(self.fail(self.exited_error(None)));
                    }
                }
                open = read_some(&mut self.ready, &mut self.ready_buf), if pipe_open => {
                    match parse_signal(&self.ready_buf) {
                        Some(Signal::Ready) => {
                            self.ready_buf.clear();
                            let probe = rpc::probe(endpoint, true, probe_timeout).await;
                            if matches!(probe, Probe::Kit(..) | Probe::Plain(_)) {
                                return Ok(probe);
                            }
                            pipe_open = false;
                        }
                        Some(Signal::Failed(reason)) => {
                            let err = self.failed_to_start_error(&reason);
                            return Err(self.fail(err));
                        }
                        // Closed without a word: the child is exiting (its
                        // status arrives next) or is a plain service that
                        // closed it.
                        None if !open => pipe_open = false,
                        None => {}
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    // One last look before the kill. A client that was
                    // suspended (Ctrl-Z, a debugger) wakes past its deadline
                    // before it has seen the readiness message that came
                    // meanwhile, and other shells may be using the service.
                    let probe = rpc::probe(endpoint, true, probe_timeout).await;
                    if matches!(probe, Probe::Kit(..) | Probe::Plain(_)) {
                        return Ok(probe);
                    }
                    let pid = self.pid;
                    self.end(&format!(
                        "not ready within {:.1}s",
                        (deadline - started).as_secs_f64()
                    ))
                    .await;
                    // A plain daemon names itself nowhere, so it cannot be
                    // ended safely: said, with how to find it.
                    let left = daemonized && still_held(lock).await;
                    let err =
                        self.ready_timeout_error(pid, deadline - started, left.then_some(lock));
                    return Err(self.fail(err));
                }
                () = backoff.wait(deadline) => {
                    let probe = rpc::probe(endpoint, true, probe_timeout).await;
                    if matches!(probe, Probe::Kit(..) | Probe::Plain(_)) {
                        return Ok(probe);
                    }
                    if daemonized && !crate::lock::is_held(lock).unwrap_or(false) {
                        let err = self.exited_error(Some(ExitStatus::from_raw(0)));
                        return Err(self.fail(err));
                    }
                }
            }
        }
    }

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
    /// Whatever is left is killed by [`Child::fail`].
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

    /// The service said it cannot start, and why (`reason`).
    fn failed_to_start_error(&self, reason: &str) -> Error {
        Error::new(
            ErrorKind::ExitedDuringStartup,
            format!("the service (pid {}) failed to start: {reason}", self.pid),
        )
    }

    /// The service was not ready after `waited`; the caller kills it.
    fn ready_timeout_error(
        &self,
        pid: u32,
        waited: Duration,
        left_holding: Option<&Path>,
    ) -> Error {
        // A call that first waited (for another process's start, for a
        // draining service to go) had only the rest of ready_timeout_secs.
        let rest = if waited + Duration::from_millis(500) < self.ready_timeout {
            format!(
                ", what this call had left of ready_timeout_secs ({}s),",
                self.ready_timeout.as_secs()
            )
        } else {
            String::new()
        };
        let left = match left_holding {
            Some(lock) => format!(
                ", but a process it forked out of its session still holds {lock} and was not \
                 killed (it names itself nowhere): find it with `fuser {word}` (macOS: `lsof \
                 {word}`) and end it",
                lock = lock.display(),
                word = crate::shell::word(lock)
            ),
            None => String::new(),
        };
        Error::new(
            ErrorKind::ReadyTimeout,
            format!(
                "the service (pid {pid}) did not become ready within {:.1}s{rest} and was \
                 killed{left}; see its log, or raise ready_timeout_secs if it is just slow",
                waited.as_secs_f64()
            ),
        )
        .with_remedy(Remedy::SetKey("ready_timeout_secs"))
    }

    /// The service is ready: end the intermediate, so the service is
    /// reparented away from us, and keep it running when `self` drops.
    pub(crate) fn release(mut self) {
        if let Some(mut intermediate) = self.intermediate.take() {
            // Still our unreaped child: its pid is exact.
            let _ = intermediate.kill();
            let _ = intermediate.wait();
        }
        self.instance = None;
        self.pid = 0;
    }

    pub(super) fn reap_intermediate(&mut self) {
        if let Some(mut intermediate) = self.intermediate.take() {
            let _ = intermediate.wait();
        }
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
        if let Some(daemon) = self.kit_daemon() {
            tracing::info!(
                "killing pid {}, the daemon of a failed start",
                daemon.instance().pid
            );
            let _ = match daemon.leads_session() {
                true => daemon.signal_group(nix::sys::signal::Signal::SIGKILL),
                false => daemon.signal(nix::sys::signal::Signal::SIGKILL),
            };
        }
        // Killed too, so reaping it never waits for a service stuck in the
        // kernel (a hung mount) to die.
        if let Some(intermediate) = self.intermediate.as_mut() {
            let _ = intermediate.kill();
        }
        self.reap_intermediate();
        self.pid = 0;
    }

    /// The daemon a daemonizing kit service left, if it names itself in the
    /// record: the kit writes the record once it holds the instance lock,
    /// with the spawn id it inherited, so a live process of ours named there
    /// with this start's id, younger than this start, is the service's own
    /// daemon (never a service launchd started meanwhile, which has no id).
    /// A plain daemon names itself nowhere: the error says it may be left.
    fn kit_daemon(&self) -> Option<ProcessHandle> {
        let record = ServiceRecord::read(&self.record)?;
        if record.pid == self.pid || record.spawn_id.as_deref() != Some(&self.spawn_id) {
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
    }

    pub(super) fn exited_error(&self, status: Option<ExitStatus>) -> Error {
        let how = match status {
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exited with status {code}"),
                (None, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
                    // Its log is the file it writes most: the limit is
                    // the user's (`ulimit -f`), not the disk's.
                    Ok(nix::sys::signal::Signal::SIGXFSZ) => format!(
                        "was killed by signal {sig} (SIGXFSZ: it wrote past the file size \
                         limit, `ulimit -f`, most likely to its log)"
                    ),
                    Ok(name) => format!("was killed by signal {sig} ({name})"),
                    Err(_) => format!("was killed by signal {sig}"),
                },
                _ => format!("ended ({s})"),
            },
            None => "ended".to_string(),
        };
        let said_nothing = self
            .log_excerpt()
            .tail
            .iter()
            .all(|line| line.starts_with(logs::mark::PREFIX));
        let why = if self.log_unwritable.is_some() {
            // The hint says why the log is empty.
            "its output could not be logged"
        } else if said_nothing {
            "it wrote nothing to its log, so run the program by hand to see why"
        } else {
            "its log says why"
        };
        Error::new(
            ErrorKind::ExitedDuringStartup,
            format!(
                "the service (pid {}) {how} before it became ready; {why}",
                self.pid
            ),
        )
    }

    /// Whether what answers at `endpoint` may be this start's service:
    /// false only when, while the service still runs (so it is not its
    /// daemon either), the TCP listener is another user's (who took the
    /// port before ours bound it), or one of ours that is neither in the
    /// session the service leads nor started by it, as when spfs started
    /// one of its own meanwhile. Where that cannot be told (a Unix socket in
    /// our state dir, no listener found: macOS's lsof sees no other user's
    /// socket; a service that daemonized: its daemon is nobody's child), it
    /// may be.
    pub(crate) fn may_serve_at(&self, endpoint: &ResolvedEndpoint) -> bool {
        let ResolvedEndpoint::Tcp(addr) = endpoint else {
            return true;
        };
        if self.pid == 0 || !self.instance.is_some_and(|i| i.is_alive()) {
            return true;
        }
        let Some(listener) = crate::owner::tcp_listener(*addr) else {
            return true;
        };
        if listener.is_foreign() {
            return false;
        }
        let Some(listener) = listener.process else {
            return true;
        };
        // A wrapper may run it in a session of its own (`setsid -w`), but
        // then it is still the wrapper's child.
        sys::session_of(listener.pid).is_none_or(|sid| sid == self.pid)
            || sys::descends_from(listener.pid, self.pid)
    }

    /// Why the log could not be written, if it could not, and that another
    /// process writes it too, if one does: for the status of a service
    /// that started.
    pub(crate) fn log_warnings(&self) -> Vec<String> {
        self.log_unwritable
            .iter()
            .chain(&self.log_shared)
            .cloned()
            .collect()
    }

    /// `err` with this run's log lines, and why there are none when the log
    /// could not be written.
    pub(super) fn with_log(&self, err: Error) -> Error {
        let err = match &self.log_unwritable {
            Some(note) => err.with_hint(note),
            None => err,
        };
        err.with_log(self.log_excerpt())
    }

    pub(super) fn log_excerpt(&self) -> LogExcerpt {
        LogExcerpt {
            path: self.log_file.clone(),
            tail: logs::tail_since(&self.log_file, self.log_start, LOG_TAIL_LINES)
                .map(|t| t.lines)
                .unwrap_or_default(),
        }
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
/// a second each, then killed). A program about to exit after
/// cancelling a start (the CLI after Ctrl-C) calls it; otherwise the
/// service it asked to end is never killed if it does not end by itself.
pub fn finish_abandoned_starts() {
    let threads = std::mem::take(&mut *ABANDONED.lock().unwrap_or_else(|e| e.into_inner()));
    for thread in threads {
        let _ = thread.join();
    }
}

impl Child {
    /// A service still starting when its start is dropped: its graceful
    /// signal now, then, on a thread of its own (a drop cannot wait, and a
    /// host's runtime must not be held up), up to [`END_GRACE`] for it to
    /// exit before its session is killed. Nothing when the service is no
    /// longer our intermediate's child (then [`Child::kill`] does it all).
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
        sys::signal_session(pid, self.end_signal);
        sys::signal_session(pid, nix::sys::signal::Signal::SIGCONT);
        let ending = std::thread::Builder::new()
            .name("spfs-autostart-end".into())
            .spawn(move || {
                // The intermediate reports the service's exit, then exits.
                let until = Instant::now() + END_GRACE;
                while matches!(intermediate.try_wait(), Ok(None)) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if matches!(intermediate.try_wait(), Ok(None)) {
                    sys::kill_group_and_leader(pid);
                    let _ = intermediate.kill();
                }
                let _ = intermediate.wait();
                drop(lifeline);
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
