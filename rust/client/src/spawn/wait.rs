//! Waiting for readiness.

use super::*;

use spfs_autostart_protocol::readiness::{self, Readiness};

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

/// The service's exit status, once all of it is in `buf` (what the status
/// pipe said after the service's pid, which `start` read).
pub(super) fn exit_status(buf: &[u8]) -> Option<ExitStatus> {
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
                            self.daemonized = true;
                            status_open = false;
                        } else {
                            return Err(self.fail(self.exited_error(Some(status))));
                        }
                    } else if !open {
                        return Err(self.fail(self.exited_error(None)));
                    }
                }
                open = read_some(&mut self.ready, &mut self.ready_buf), if pipe_open => {
                    // The buffer lives in the `Child`, so a line written
                    // in parts (or a read interrupted by another branch of
                    // the wait) loses nothing.
                    match readiness::parse(&self.ready_buf) {
                        Some(Readiness::Ready) => {
                            self.ready_buf.clear();
                            let probe = rpc::probe(endpoint, true, probe_timeout).await;
                            if matches!(probe, Probe::Kit(..) | Probe::Plain(_)) {
                                return Ok(probe);
                            }
                            pipe_open = false;
                        }
                        Some(Readiness::Failed(reason)) => {
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
                    let left = self.daemonized && still_held(lock).await;
                    let err =
                        self.ready_timeout_error(pid, deadline - started, left.then_some(lock));
                    return Err(self.fail(err));
                }
                () = backoff.wait(deadline) => {
                    let probe = rpc::probe(endpoint, true, probe_timeout).await;
                    if matches!(probe, Probe::Kit(..) | Probe::Plain(_)) {
                        return Ok(probe);
                    }
                    if self.daemonized && !crate::lock::is_held(lock).unwrap_or(false) {
                        let err = self.exited_error(Some(ExitStatus::from_raw(0)));
                        return Err(self.fail(err));
                    }
                }
            }
        }
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
        let mount = self
            .mountpoint
            .as_deref()
            .map(|m| format!("; {}", crate::mountpoint::left_mount_hint(m)))
            .unwrap_or_default();
        Error::new(
            ErrorKind::ReadyTimeout,
            format!(
                "the service (pid {pid}) did not become ready within {:.1}s{rest} and was \
                 killed{left}; see its log, or raise ready_timeout_secs if it is just \
                 slow{mount}",
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
            .chain(&self.log_not_rotated)
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
