//! `stop`: the observed instance, asked, then signalled, each step bounded.

use super::*;
use crate::config::StopStep;
use crate::stopping::StoppingMark;

/// How long a plain service may take to exit after its `Shutdown` answered
/// before the next stop step: services whose `Shutdown` ends them do so at
/// once; spfs-fuse-macos's never does.
pub(super) const PLAIN_SHUTDOWN_GRACE: Duration = Duration::from_millis(250);
/// How long what a service left in its process group gets to end on
/// SIGTERM before SIGKILL ([`ServiceManager::end_leftovers`]).
const LEFTOVER_GRACE: Duration = Duration::from_secs(1);

/// What the stop loop needs of a step of the sequence.
impl StopStep {
    /// The step in words: "the shutdown request", or the signal's name.
    fn describe(self) -> String {
        match self {
            StopStep::Shutdown => "the shutdown request".into(),
            StopStep::Signal(signal) => signal.as_str().into(),
        }
    }

    /// How a service (`managed`: a kit service) that this step ended
    /// stopped.
    pub(super) fn method(self, managed: bool) -> StopMethod {
        match self {
            StopStep::Shutdown => StopMethod::Graceful,
            StopStep::Signal(Signal::SIGKILL) => StopMethod::Killed,
            // spfs-fuse-macos's one graceful signal: it unmounts and exits.
            StopStep::Signal(Signal::SIGINT) => StopMethod::Graceful,
            // The kit shuts down on SIGTERM as on the request: drained, and
            // its socket and record removed.
            StopStep::Signal(Signal::SIGTERM) if managed => StopMethod::Graceful,
            StopStep::Signal(_) => StopMethod::Terminated,
        }
    }
}

impl ServiceManager {
    /// Stop the service: the steps of [`Self::stop_steps`] (graceful first,
    /// SIGKILL last), each bounded by `stop_timeout`. Never
    /// starts anything; a service that is not running is success. It waits
    /// for a start in progress to finish, then acts only on the instance it
    /// observed: every signal goes to that very process (a pidfd on Linux,
    /// a start-time check right before the signal elsewhere), or to the
    /// process group it leads (every service spfs-autostart starts leads
    /// its session, and what it started goes with it), never to a service
    /// started after it looked.
    pub async fn stop(&self) -> Result<StopOutcome> {
        let outcome = self.stop_chosen(|_| true).await?;
        Ok(outcome.unwrap_or(StopOutcome::NotRunning))
    }

    /// Stop the service, as [`Self::stop`], only when it is the process
    /// `pid`; `None`, with nothing done, when the service is another process
    /// or none. For a job launchd runs and is about to end (`launchctl
    /// bootout`: an agent uninstalled or replaced): launchd ends it with
    /// SIGTERM, which spfs-fuse-macos does not handle (it dies leaving its
    /// mount behind), so it is stopped its own way first, and launchd has
    /// nothing left to end.
    pub async fn stop_if_pid(&self, pid: u32) -> Result<Option<StopOutcome>> {
        self.stop_chosen(|instance| instance.is_some_and(|i| i.pid == pid))
            .await
    }

    /// `stop`, of the instance it observes if `chosen` says so (`None`
    /// otherwise); a service that is not running is `NotRunning` when
    /// chosen.
    async fn stop_chosen(
        &self,
        chosen: impl Fn(Option<&Instance>) -> bool,
    ) -> Result<Option<StopOutcome>> {
        self.forget_channel();
        self.set_activity(None);
        // A start in progress ends first (ready or failed); nobody starts
        // one while we stop. Bounded by the longest a spawner may take.
        // (Without a state dir there is no spawner, and no lock to take.)
        let _guard = if self.paths.check_state_dir()? {
            let wait = self.config.ready_timeout + self.config.stop_timeout;
            let spawn_lock = self.paths.spawn_lock();
            let guard = match lock::try_take(&spawn_lock)? {
                Some(file) => Some(file),
                None => {
                    // Said while it lasts (a progress line), not "stopping".
                    self.set_activity(Activity::WaitingForAnotherClient);
                    lock::take(&spawn_lock, Instant::now() + wait).await?
                }
            }
            .map(lock::OwnLock::from);
            Some(guard.ok_or_else(|| self.busy_elsewhere_error(wait))?)
        } else {
            None
        };
        let mut shutting_down = false;
        let (instance, channel, managed) = match self.observe(false, true).await? {
            Observation::Absent { .. } => {
                return Ok(chosen(None).then_some(StopOutcome::NotRunning));
            }
            // Never touched; the fix is the same as for `ensure`. (Not ours,
            // so not the one a caller chose by its pid either.)
            Observation::Conflict(what) => {
                if !chosen(None) {
                    return Ok(None);
                }
                return Err(self.conflict_error(&what));
            }
            Observation::Serving(status, channel, instance) => {
                (instance, Some(channel), status.managed)
            }
            // Ours, at the endpoint its record names (the config names
            // another now): asked to shut down there.
            Observation::Alive(status, instance) if status.state == State::Conflict => {
                (instance, self.recorded_channel().await, status.managed)
            }
            Observation::Alive(status, instance) => {
                shutting_down = status.managed && status.state == State::Stopping;
                (instance, None, status.managed)
            }
        };
        if !chosen(instance.as_ref()) {
            return Ok(None);
        }
        let asked = format!("stop asked by {}", logs::mark::caller());
        if shutting_down && let Some(outcome) = self.await_shutdown(instance, &asked).await? {
            return Ok(Some(outcome));
        }
        let outcome = self
            .stop_observed(instance, channel, managed, &asked)
            .await?;
        self.mark_stopped(instance);
        Ok(Some(outcome))
    }

    /// The record of a plain service this stop ended says so (`stopping`;
    /// a kit service writes it itself): a look after it does not take the
    /// record of a process that is gone for a crash. (Under `spawn.lock`:
    /// no start writes a record meanwhile.)
    fn mark_stopped(&self, instance: Option<Instance>) {
        let path = self.paths.record();
        let Some(mut record) = ServiceRecord::read(&path) else {
            return;
        };
        if record.phase != Phase::Running || instance.is_none() || record.instance() != instance {
            return;
        }
        record.phase = Phase::Stopping;
        if let Err(e) = record.write(&path) {
            tracing::warn!("{e}");
        }
    }

    /// A kit service shutting down already (its idle exit, launchd's
    /// SIGTERM, its own decision) is given the time a shutdown request
    /// would get before any signal: it would take one as the second and die
    /// at once, skipping its clean-up. The outcome once it has exited;
    /// `None` when it is still there (the stop sequence follows).
    async fn await_shutdown(
        &self,
        instance: Option<Instance>,
        asked: &str,
    ) -> Result<Option<StopOutcome>> {
        let Some(handle) = instance.and_then(ProcessHandle::open) else {
            return Ok(None);
        };
        let pid = handle.instance().pid;
        self.set_activity(Activity::Stopping {
            pid: Some(pid),
            step: "the shutdown it began".into(),
        });
        logs::mark::append(
            &self.paths.log_file(),
            &format!(
                "stopping pid {pid} at {}: it is shutting down already, given \
                 {:?} before any signal: {asked}",
                logs::mark::now(),
                self.config.stop_timeout
            ),
        );
        let group = handle.leads_session();
        if !self
            .wait_gone(Some(&handle), group, self.config.stop_timeout)
            .await?
        {
            return Ok(None);
        }
        if group {
            self.end_leftovers(&handle).await;
        }
        Ok(Some(StopOutcome::Stopped {
            how: StopMethod::Graceful,
            pid: Some(pid),
        }))
    }

    /// A channel to the endpoint the record names, when it can be had.
    async fn recorded_channel(&self) -> Option<Channel> {
        let record = ServiceRecord::read(&self.paths.record())?;
        let endpoint = record.endpoint.parse::<ResolvedEndpoint>().ok()?;
        tokio::time::timeout(PROBE_TIMEOUT, rpc::channel(endpoint, None))
            .await
            .ok()?
            .ok()
    }

    /// `stop` waited `wait` for another process's start (or stop) to end.
    fn busy_elsewhere_error(&self, wait: Duration) -> Error {
        Error::new(
            ErrorKind::ReadyTimeout,
            format!(
                "another process is starting (or stopping) the service and was not done \
                 within {:.1}s (ready_timeout_secs and stop_timeout_secs); nothing was \
                 stopped. Try again once it is done, or raise stop_timeout_secs to wait longer",
                wait.as_secs_f64()
            ),
        )
        .with_remedy(Remedy::SetKey("stop_timeout_secs"))
    }

    /// The stop sequence for a service: data, run step by step by `stop`.
    /// A kit service always gets `Control.Shutdown`, SIGTERM, SIGKILL; a
    /// plain one the configured `stop_sequence` (spfs-fuse-macos's default:
    /// `Shutdown` only unmounts, SIGINT is its graceful exit, SIGTERM kills
    /// it leaving the mount behind).
    pub fn stop_steps(&self, managed: bool) -> Vec<StopStep> {
        if managed {
            return vec![
                StopStep::Shutdown,
                StopStep::Signal(Signal::SIGTERM),
                StopStep::Signal(Signal::SIGKILL),
            ];
        }
        self.config.stop_sequence.clone()
    }

    /// Run the stop sequence against the observed `instance` (and its
    /// endpoint `channel`). `asked` says who asked and why, for the
    /// service's log (and a kit service's shutdown request). Call under
    /// `spawn.lock`.
    pub(super) async fn stop_observed(
        &self,
        instance: Option<Instance>,
        channel: Option<Channel>,
        managed: bool,
        asked: &str,
    ) -> Result<StopOutcome> {
        let handle = match instance {
            Some(instance) => match ProcessHandle::open(instance) {
                Some(handle) => Some(handle),
                // It ended between the look and now.
                None => return Ok(StopOutcome::NotRunning),
            },
            None => None,
        };
        let pid = handle.as_ref().map(|h| h.instance().pid);
        // A plain service cannot say it is shutting down: others (a `watch`
        // in a menu bar) read it as stopping from this mark, not as a
        // service that died.
        let _mark = handle
            .as_ref()
            .filter(|_| !managed)
            .map(|h| StoppingMark::set(self.paths.stopping(), h.instance()));
        // A service that leads its own session (every one we start) is
        // stopped with all it started: a wrapper script's child would
        // otherwise outlive the script and serve on.
        let group = handle.as_ref().is_some_and(ProcessHandle::leads_session);
        let mut last = None;
        // A plain service's `Shutdown` that worked: spfs-fuse-macos has
        // unmounted, and unmounts again, in vain, on SIGINT.
        let mut unmounted = false;
        let ended_by = 'steps: {
            for step in self.stop_steps(managed) {
                match (step, &channel, &handle) {
                    (StopStep::Shutdown, Some(channel), _) => {
                        self.note_stop_step(pid, step, last, managed, asked, false);
                        tracing::info!("asking the service to shut down over gRPC");
                        match self
                            .ask_to_shut_down(managed, channel.clone(), asked, false)
                            .await
                        {
                            Ok(_) => unmounted = !managed,
                            Err(e) => tracing::debug!("graceful shutdown request failed: {e}"),
                        }
                    }
                    (StopStep::Signal(signal), _, Some(handle)) => {
                        let again = unmounted && signal == Signal::SIGINT;
                        self.note_stop_step(pid, step, last, managed, asked, again);
                        if !send_stop_signal(handle, signal, group)? {
                            break 'steps Some(step);
                        }
                    }
                    _ => continue,
                }
                last = Some(step);
                if self
                    .wait_gone(handle.as_ref(), group, self.step_wait(step, managed))
                    .await?
                {
                    break 'steps Some(step);
                }
            }
            None
        };
        let Some(step) = ended_by else {
            return Err(self.still_running_error(handle.as_ref(), last));
        };
        if let Some(handle) = handle.as_ref().filter(|_| group) {
            self.end_leftovers(handle).await;
        }
        Ok(StopOutcome::Stopped {
            how: step.method(managed),
            pid,
        })
    }

    /// End what the service left in its process group when it exited (a
    /// helper it started, which would serve on or hold its files), as the
    /// service was asked to end: SIGTERM, then SIGKILL after [`LEFTOVER_GRACE`].
    /// The group's id is not reused while it has members.
    async fn end_leftovers(&self, handle: &ProcessHandle) {
        if !handle.group_has_members() {
            return;
        }
        let pid = handle.instance().pid;
        tracing::info!("ending what pid {pid} left running in its process group");
        logs::mark::append(
            &self.paths.log_file(),
            &format!(
                "ending the processes pid {pid} left in its process group at {}: it has \
                 exited, they would outlive it",
                logs::mark::now()
            ),
        );
        for signal in [Signal::SIGTERM, Signal::SIGCONT] {
            let _ = handle.signal_group(signal);
        }
        let deadline = Instant::now() + LEFTOVER_GRACE;
        let mut backoff = Backoff::new(Duration::from_millis(20));
        while handle.group_has_members() && Instant::now() < deadline {
            backoff.wait(deadline).await;
        }
        if handle.group_has_members() {
            let _ = handle.signal_group(Signal::SIGKILL);
        }
    }

    /// Say in the service's log (and [`Self::activity`]) that `step` is
    /// about to be taken, and why: who `asked`, for the first step; how
    /// long the service outlived the step before (`previous`), for a later
    /// one; `unmounts_again`: the step is the SIGINT after a `Shutdown`
    /// that unmounted spfs-fuse-macos, whose warning about unmounting
    /// again is then said to be expected.
    fn note_stop_step(
        &self,
        pid: Option<u32>,
        step: StopStep,
        previous: Option<StopStep>,
        managed: bool,
        asked: &str,
        unmounts_again: bool,
    ) {
        self.set_activity(Activity::Stopping {
            pid,
            step: step.describe(),
        });
        let whom = pid.map_or("the service".to_string(), |pid| format!("pid {pid}"));
        let why = match previous {
            None => asked.to_string(),
            Some(previous) => format!(
                "still running {:?} after {}",
                self.step_wait(previous, managed),
                previous.describe()
            ),
        };
        // spfs-fuse-macos unmounted on `Shutdown`; on SIGINT it unmounts
        // again, which fails, and it logs a warning a reader would take
        // for a fault.
        let expected =
            if unmounts_again && let Some(mountpoint) = crate::mountpoint::of(&self.config) {
                format!(
                    " ({mountpoint} was unmounted on the shutdown request: a warning that \
                 unmounting it again failed is expected)"
                )
            } else {
                String::new()
            };
        logs::mark::append(
            &self.paths.log_file(),
            &format!(
                "stopping {whom} at {} with {}: {why}{expected}",
                logs::mark::now(),
                step.describe()
            ),
        );
    }

    /// How long to wait for an exit after `step` before the next one.
    fn step_wait(&self, step: StopStep, managed: bool) -> Duration {
        // A plain service's Shutdown is done when it answers (upstream's
        // only unmounts and serves on): a short look for an exit, not
        // the whole stop_timeout, before the next step.
        if step == StopStep::Shutdown && !managed {
            PLAIN_SHUTDOWN_GRACE.min(self.config.stop_timeout)
        } else {
            self.config.stop_timeout
        }
    }

    /// The error when every stop step has run and the service is still
    /// there: what is known about it (its process, or whether anything could
    /// be tried at all: the `last` step run) decides what the user is told.
    fn still_running_error(&self, handle: Option<&ProcessHandle>, last: Option<StopStep>) -> Error {
        let pid = handle.map(|h| h.instance().pid);
        let log = self.paths.log_file();
        let message = match (pid, last) {
            (Some(pid), Some(StopStep::Signal(Signal::SIGKILL))) => format!(
                "the service (pid {pid}) is still alive after SIGKILL{}; see {}",
                report::stuck_because(Some(pid), ": "),
                log.display()
            ),
            // A stop_sequence without SIGKILL, run to its end (or with no
            // step that could act on a service that does not answer).
            (Some(pid), last) => {
                let after = match last {
                    Some(step) => {
                        format!("after {}, the last step of stop_sequence", step.describe())
                    }
                    None => "and stop_sequence has no signal to send it".into(),
                };
                // With no signal in it at all, the graceful one comes first.
                let fix = if matches!(last, Some(StopStep::Signal(_))) {
                    "add \"SIGKILL\" to stop_sequence to end it"
                } else {
                    "add signals to stop_sequence to end it: \"SIGINT\" (spfs-fuse-macos's \
                     graceful stop), then \"SIGKILL\""
                };
                return Error::new(
                    ErrorKind::Unresponsive,
                    format!(
                        "the service (pid {pid}) is still alive {after}{}; {fix}, and see {}",
                        report::stuck_because(Some(pid), ": "),
                        log.display()
                    ),
                )
                .with_remedy(Remedy::SetKey("stop_sequence"));
            }
            (None, Some(_)) => format!(
                "the service at {} did not stop when asked, and its process is unknown \
                     (no record names it and no process of yours listens there); stop it by hand",
                self.endpoint
            ),
            (None, None) => format!(
                "a service holds {} but does not answer, and {} does not identify it; \
                 refusing to signal a pid that may belong to another process. \
                 Find the holder with `fuser {}` and stop it by hand",
                self.paths.instance_lock().display(),
                self.paths.record().display(),
                crate::shell::word(self.paths.instance_lock())
            ),
        };
        Error::new(ErrorKind::Unresponsive, message)
    }

    /// Ask the service to shut down over gRPC, bounded by
    /// `stop_timeout_secs`; a kit service logs `reason`, and with
    /// `unless_leased` refuses (`FAILED_PRECONDITION`) while it holds
    /// leases.
    pub(super) async fn ask_to_shut_down(
        &self,
        managed: bool,
        channel: Channel,
        reason: &str,
        unless_leased: bool,
    ) -> Result<(), tonic::Status> {
        let call = async {
            if managed {
                ControlClient::new(channel)
                    .shutdown(control::ShutdownRequest {
                        reason: reason.to_string(),
                        // Leave a quarter of our wait for the exit itself, so
                        // a service finishing calls is not taken for one
                        // that ignored the request.
                        drain_ms: (self.config.stop_timeout * 3 / 4).as_millis() as u64,
                        unless_leased,
                    })
                    .await
                    .map(drop)
            } else {
                VfsServiceClient::new(channel)
                    .shutdown(vfs::ShutdownRequest {})
                    .await
                    .map(drop)
            }
        };
        tokio::time::timeout(self.config.stop_timeout, call)
            .await
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("shutdown request")))
    }

    /// Wait up to `wait` for the service to be gone: the observed process
    /// exited, and with `group` (it led its session) none of its group
    /// still holding the instance lock (a wrapper script without `exec`
    /// exits on a signal its service is still handling, unmounting); or,
    /// with no process known, the lock free and the endpoint silent.
    ///
    /// Both, not either: a group's zombie leader (its parent slow to reap
    /// it) holds no lock, and a helper that left the group may hold it.
    pub(super) async fn wait_gone(
        &self,
        handle: Option<&ProcessHandle>,
        group: bool,
        wait: Duration,
    ) -> Result<bool> {
        let deadline = Instant::now() + wait;
        if let Some(handle) = handle {
            let lock_path = self.paths.instance_lock();
            let gone = async {
                handle.exited().await;
                // Polled: the kernel tells no one when a group empties.
                let mut backoff = Backoff::new(Duration::from_millis(20));
                while group
                    && handle.group_has_members()
                    && lock::is_held(&lock_path).unwrap_or(false)
                {
                    backoff.wait(deadline).await;
                }
            };
            return Ok(tokio::time::timeout_at(deadline, gone).await.is_ok());
        }
        let mut backoff = Backoff::new(Duration::from_millis(50));
        loop {
            if !lock::is_held(&self.paths.instance_lock())?
                && matches!(
                    rpc::probe(&self.endpoint, false, PROBE_TIMEOUT).await,
                    Probe::Nothing
                )
            {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            backoff.wait(deadline).await;
        }
    }
}

/// Send `signal` to the observed instance (and, with `group`, first to the
/// process group it leads): `Ok(false)` when it is already gone, an error
/// when it may not be signalled.
///
/// A graceful signal is followed by SIGCONT, as systemd does: a suspended
/// service (Ctrl-Z in the terminal that started it, a debugger) would keep
/// the signal pending until the SIGKILL, and spfs-fuse-macos killed leaves
/// its mount behind.
fn send_stop_signal(handle: &ProcessHandle, signal: Signal, group: bool) -> Result<bool> {
    tracing::info!("sending {signal} to service pid {}", handle.instance().pid);
    let send = |signal| match group {
        true => handle.signal_group(signal),
        false => handle.signal(signal),
    };
    let sent = send(signal).map_err(|e| {
        Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "cannot send {signal} to service pid {}: {e}",
                handle.instance().pid
            ),
        )
    })?;
    if sent && signal != Signal::SIGKILL {
        let _ = send(Signal::SIGCONT);
    }
    Ok(sent)
}

impl ServiceManager {
    /// Whether a client is stopping `instance` now: the `stopping` file
    /// names it and `spawn.lock` is held.
    pub(super) fn being_stopped(&self, instance: Instance) -> bool {
        crate::stopping::names(&self.paths.stopping(), instance)
            && lock::is_held(&self.paths.spawn_lock()).unwrap_or(false)
    }
}
