//! `ensure`: the handshake of the module's documentation, from the first
//! look to a spawned service that answers.

use super::*;

/// The least time left of a call's deadline worth starting a service in.
const MIN_START_TIME: Duration = Duration::from_millis(100);

impl ServiceManager {
    /// Make sure the service runs, starting it if needed; returns its status
    /// once it answers. Safe to call from many processes at once: exactly
    /// one service is started. Dropping the future (a timeout, Ctrl-C)
    /// kills a service this call was starting.
    pub async fn ensure(&self) -> Result<Status> {
        let deadline = Instant::now() + self.config.ready_timeout;
        let (status, started) = self.ensure_running(deadline).await?;
        let (Some(want), Some(have)) = (&self.config.expected_version, &status.version) else {
            // Nothing to compare (a plain service reports no version): say so.
            return Ok(self.with_version_warning(status));
        };
        if want == have {
            return Ok(status);
        }
        if started {
            // Just started from the configured program: a restart would
            // start the same program again.
            return Err(self.fresh_start_mismatch(want, have, status.pid));
        }
        if self.config.on_version_mismatch == VersionPolicy::Error {
            return Err(version_mismatch(want, have, false));
        }
        if !status.leases.is_empty() {
            // Runtimes use it: replacing it would cut them off. It is
            // replaced once idle (or when the user stops it).
            return Ok(self.with_version_warning(status));
        }
        self.restart_for_version(want, deadline).await
    }

    /// The service's status once it serves, and whether this call started
    /// it.
    pub(super) async fn ensure_running(&self, deadline: Instant) -> Result<(Status, bool)> {
        if let Some(status) = self.fast_path(true).await {
            return Ok((status, false));
        }
        // A start that fails after this moment, another process's while this
        // call waits for it, is this call's answer too.
        let began = SystemTime::now();
        self.set_activity(None);
        let mut backoff = Backoff::new(Duration::from_millis(50));
        loop {
            match self.observe(true, false).await? {
                Observation::Serving(status, channel, instance) => {
                    return Ok((self.remember(status, channel, instance), false));
                }
                Observation::Conflict(what) => return Err(self.conflict_error(&what)),
                // Ours, serving at another endpoint: waiting changes nothing.
                Observation::Alive(status, _) if status.state == State::Conflict => {
                    return Err(Error::new(
                        ErrorKind::EndpointConflict,
                        status.detail.unwrap_or_default(),
                    )
                    .with_remedy(Remedy::Run(Operation::Stop)));
                }
                Observation::Alive(status, _) => {
                    if Instant::now() >= deadline {
                        return Err(self.waiting_error(&status));
                    }
                    self.set_activity(Activity::WaitingForService {
                        state: status.state,
                        pid: status.pid,
                    });
                }
                Observation::Absent { .. } => {
                    // A program that cannot be found fails before anything
                    // is made (the state dir, its locks).
                    spawn::resolve_program(&self.config.program)?;
                    self.paths.create_state_dir()?;
                    // A start writes there (a read-only file system cannot
                    // take it); a look or a running service's use does not.
                    self.paths.check_writable()?;
                    // Said now, not as the service's failure to listen.
                    self.paths.check_endpoint_dir(&self.endpoint)?;
                    if let Some(spawn_guard) = lock::try_take(&self.paths.spawn_lock())?
                        .map(|file| Arc::new(lock::OwnLock::from(file)))
                    {
                        let done = self.start_under_lock(&spawn_guard, began, deadline).await?;
                        drop(spawn_guard);
                        if let Some(done) = done {
                            return Ok(done);
                        }
                    } else if Instant::now() >= deadline {
                        return Err(self.starting_elsewhere_error());
                    } else {
                        self.set_activity(Activity::WaitingForAnotherClient);
                    }
                }
            }
            // A spawner (or a stop) holds spawn.lock until it is done: wake
            // soon after it lets go. With nobody at work (a service started
            // elsewhere still starting, or shutting down), poll.
            if !lock::wait_released(&self.paths.spawn_lock(), deadline).await? {
                backoff.wait(deadline).await;
            }
        }
    }

    /// This call's turn to start the service, under `spawn.lock`
    /// (`spawn_guard`): a look again (someone may have started it while we
    /// waited), then a start, launchd's ([`Self::start_by_launchd`]) or ours.
    /// `Some`: the service serves, and whether this call had it started;
    /// `None`: the caller waits and looks again.
    async fn start_under_lock(
        &self,
        spawn_guard: &Arc<lock::OwnLock>,
        began: SystemTime,
        deadline: Instant,
    ) -> Result<Option<(Status, bool)>> {
        match self.observe(true, true).await? {
            Observation::Serving(status, channel, instance) => {
                Ok(Some((self.remember(status, channel, instance), false)))
            }
            Observation::Conflict(what) => Err(self.conflict_error(&what)),
            Observation::Alive(..) => Ok(None),
            Observation::Absent { orphaned_lock } => {
                if let Some(failed) = self.start_failed_since(began) {
                    return Err(failed);
                }
                if let Some(status) = self.start_by_launchd(deadline, orphaned_lock).await? {
                    return Ok(Some((status, true)));
                }
                self.check_time_to_start(deadline)?;
                let started = self.spawn(spawn_guard, orphaned_lock, deadline).await?;
                Ok(started.map(|status| (status, true)))
            }
        }
    }

    /// Under `spawn.lock`, with no service there: when launchd has an
    /// always-on job loaded for it ([`crate::launchd_job`]), launchd starts
    /// it, and this call waits for it to serve, holding `spawn.lock` as a
    /// spawner does (other calls wait for it, and learn its failure from
    /// `start-failed.json`). The job's process running, it is waited for; none
    /// running, launchd is asked to start one (`launchctl kickstart`).
    /// `None`: no such job, or launchd did not start it (disabled, awaiting
    /// approval, gone meanwhile): the caller starts the service on demand.
    pub(super) async fn start_by_launchd(
        &self,
        deadline: Instant,
        orphaned_lock: bool,
    ) -> Result<Option<Status>> {
        use crate::launchd_job::{JobLook, NextStep, next_step};
        let mut job = match self.launchd_job().await {
            JobLook::None => return Ok(None),
            JobLook::Unknown(why) => {
                tracing::warn!(
                    "cannot ask launchd about its job ({why}); starting the service on demand"
                );
                return Ok(None);
            }
            JobLook::Loaded(job) => job,
        };
        if orphaned_lock {
            // What a dead service left holds it: launchd's would fail on it.
            drop(lock::replace(&self.paths.instance_lock())?);
        }
        let mut entry_runs = job.job.runs;
        let mut kicked = false;
        let mut backoff = Backoff::new(Duration::from_millis(50));
        // Whether `job` is news to act on: as it is when this call comes
        // (none running: kickstart), then after each look that worked.
        let mut news = true;
        loop {
            let step = match news {
                true => next_step(&job, entry_runs, kicked),
                false => NextStep::Wait,
            };
            match step {
                NextStep::Wait => {}
                NextStep::Kickstart => {
                    if !self.kickstart(job.label).await {
                        return Ok(None);
                    }
                    (kicked, entry_runs) = (true, job.job.runs);
                }
                NextStep::OnDemand => {
                    tracing::warn!(
                        "launchd did not start its job {} (disabled, or waiting for approval \
                         in Login Items?); starting the service on demand",
                        job.label
                    );
                    return Ok(None);
                }
                NextStep::Failed => {
                    let err = self.launchd_start_failed(&job);
                    self.remember_failed_start(&err);
                    return Err(err);
                }
            }
            self.set_activity(Activity::WaitingForLaunchd {
                label: job.label.to_string(),
                pid: job.pid(),
            });
            match self.observe(true, true).await? {
                Observation::Serving(status, channel, instance) => {
                    self.forget_failed_start();
                    return Ok(Some(self.remember(status, channel, instance)));
                }
                Observation::Conflict(what) => return Err(self.conflict_error(&what)),
                Observation::Alive(..) | Observation::Absent { .. } => {}
            }
            if Instant::now() >= deadline {
                return Err(self.launchd_not_serving(&job));
            }
            backoff.wait(deadline).await;
            // launchctl failing for a moment (busy at login) is no news:
            // the job as last seen still says to wait.
            news = match self.launchd_job().await {
                JobLook::Loaded(now) => {
                    job = now;
                    true
                }
                JobLook::None => return Ok(None),
                JobLook::Unknown(_) => false,
            };
        }
    }

    /// The always-on job launchd has loaded for the service, if any; where
    /// launchd is, asked on a blocking thread (it runs `launchctl`).
    async fn launchd_job(&self) -> crate::launchd_job::JobLook {
        if !self.launchd.present() {
            return crate::launchd_job::JobLook::None;
        }
        let (launchd, config, paths) = (
            Arc::clone(&self.launchd),
            self.config.clone(),
            self.paths.clone(),
        );
        tokio::task::spawn_blocking(move || launchd.loaded(&config, &paths))
            .await
            .unwrap_or_else(|e| crate::launchd_job::JobLook::Unknown(e.to_string()))
    }

    /// Ask launchd to start the job `label`; whether it took the request.
    async fn kickstart(&self, label: &'static str) -> bool {
        let launchd = Arc::clone(&self.launchd);
        let asked = match tokio::task::spawn_blocking(move || launchd.kickstart(label)).await {
            Ok(asked) => asked.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match &asked {
            Ok(()) => tracing::info!("launchd's job {label} runs the service: asked it to start"),
            Err(e) => tracing::warn!(
                "launchd did not start its job {label}: {e}; starting the service on demand"
            ),
        }
        asked.is_ok()
    }

    /// Spawn under `spawn.lock`; `None` when a service took the instance
    /// lock first, or another process of ours came to serve at the TCP
    /// endpoint before ours did (the caller goes back to looking).
    /// `orphaned_lock`: the observation found `instance.lock` held only by
    /// leftovers of a dead service; it is replaced with a fresh one.
    /// `spawn_guard`: the caller's hold on `spawn.lock`, shared with the
    /// start, which keeps it while an abandoned service is still ending.
    ///
    /// Its failure is told, before `spawn.lock` is let go, to every call
    /// waiting for this start (`start-failed.json`); a start that works
    /// forgets an earlier failure. Not told: a timeout of a start made with
    /// only what the caller's own wait left of `ready_timeout_secs`.
    pub(super) async fn spawn(
        &self,
        spawn_guard: &Arc<lock::OwnLock>,
        orphaned_lock: bool,
        deadline: Instant,
    ) -> Result<Option<Status>> {
        let full_time = deadline.saturating_duration_since(Instant::now())
            >= self.config.ready_timeout.mul_f64(0.9);
        let started = self
            .start_service(spawn_guard, orphaned_lock, deadline)
            .await;
        match &started {
            Ok(Some(_)) => self.forget_failed_start(),
            Err(e) if full_time || e.kind() != ErrorKind::ReadyTimeout => {
                self.remember_failed_start(e)
            }
            _ => {}
        }
        started
    }

    /// [`Self::spawn`]'s start itself.
    async fn start_service(
        &self,
        spawn_guard: &Arc<lock::OwnLock>,
        orphaned_lock: bool,
        deadline: Instant,
    ) -> Result<Option<Status>> {
        if let Some(why) = self.config.listen_conflict() {
            return Err(
                Error::new(ErrorKind::InvalidConfig, why).with_remedy(Remedy::SetKey("args"))
            );
        }
        let program = spawn::resolve_program(&self.config.program)?;
        let lock_path = self.paths.instance_lock();
        let instance = match lock::take(&lock_path, Instant::now() + lock::PROBE_GRACE).await? {
            Some(file) => file,
            None if orphaned_lock => {
                tracing::info!(
                    "{} is held by processes a dead service left behind; replacing it",
                    lock_path.display()
                );
                lock::replace(&lock_path)?
            }
            None => return Ok(None),
        };
        tracing::debug!("starting {}", program.display());
        let mut child = spawn::start(
            &self.config,
            &self.paths,
            &program,
            instance,
            Arc::clone(spawn_guard),
        )?;
        self.set_activity(Activity::Starting {
            program: self.config.program.clone(),
            pid: child.pid,
            mountpoint: crate::mountpoint::of(&self.config).map(str::to_string),
        });
        let log_warnings = child.log_warnings();
        let probe = child
            .wait_ready(&self.endpoint, &lock_path, deadline, PROBE_TIMEOUT)
            .await?;
        // Another process of ours answers on the port while ours has not
        // bound it (spfs started its own meanwhile): ours cannot serve
        // there. It is ended, and the caller looks again, which adopts the
        // other as started outside (or names it a conflict).
        if matches!(probe, Probe::Plain(_)) && !child.may_serve_at(&self.endpoint) {
            tracing::info!("another process serves at {}; ending ours", self.endpoint);
            let why = format!(
                "another process serves at {}, started meanwhile; that one is used",
                self.endpoint
            );
            child.end(&why).await;
            // Until ours has let go of the lock, a look would take the
            // answer for ours.
            spawn::still_held(&lock_path).await;
            return Ok(None);
        }
        let first = child.instance;
        match self.observation_of(probe, true)? {
            Observation::Serving(mut status, channel, instance) => {
                child.release();
                let instance = instance.or(first);
                if !status.managed {
                    self.record_plain(&program, instance);
                }
                status.warnings.extend(log_warnings);
                status.warnings.extend(self.elsewhere_warnings());
                // spfs-fuse-macos mounts before it listens, and serves on
                // when the mount failed: said now, not at the first shell.
                status.warnings.extend(
                    crate::mountpoint::unmounted_warning_after_start(&self.config, deadline).await,
                );
                Ok(Some(self.remember(status, channel, instance)))
            }
            Observation::Conflict(what) => {
                child.end(&what).await;
                Err(self.conflict_error(&what))
            }
            _ => Ok(None),
        }
    }

    /// A call that waited out its time (for a stop, or a start that ended
    /// in a service that went again) does not start one it could not wait
    /// for: it would be killed at once, and the call would overrun its
    /// deadline. (This call's own limit, not the service's failure: never
    /// told to other calls as a failed start.)
    fn check_time_to_start(&self, deadline: Instant) -> Result<()> {
        if deadline.saturating_duration_since(Instant::now()) >= MIN_START_TIME {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::ReadyTimeout,
            format!(
                "no time was left of ready_timeout_secs ({}s) to start the service: this \
                 call spent it waiting (for another process's start or stop); see the \
                 log, or raise ready_timeout_secs",
                self.config.ready_timeout.as_secs()
            ),
        )
        .with_log(self.log_excerpt())
        .with_remedy(Remedy::SetKey("ready_timeout_secs")))
    }

    /// A plain service writes no record: the spawner writes its `Running`
    /// record, naming the process that serves (a daemonizing service's
    /// daemon, not the first process that exited).
    fn record_plain(&self, program: &std::path::Path, instance: Option<Instance>) {
        let Some(instance) = instance.filter(Instance::is_alive) else {
            return;
        };
        let record = ServiceRecord {
            pid: instance.pid,
            start_time: Some(instance.start_time),
            program: program.display().to_string(),
            version: None,
            endpoint: self.endpoint.to_string(),
            started_at_unix_ms: unix_ms(SystemTime::now()),
            phase: Phase::Running,
            socket_activated: false,
            spawn_id: None,
        };
        if let Err(e) = record.write(&self.paths.record()) {
            tracing::warn!("{e}");
        }
    }
}
