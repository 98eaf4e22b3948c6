//! Version restarts: once, by one process, never a loop.

use super::*;

/// What a version restart that did not help left behind: the instance that
/// still reports the wrong version, so no later `ensure` restarts it again.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct FailedRestart {
    pid: u32,
    start_time: u64,
    expected: String,
}

/// `fresh`: the service that reports `have` was freshly started for it.
pub(super) fn version_mismatch(want: &str, have: &str, fresh: bool) -> Error {
    if fresh {
        Error::new(
            ErrorKind::VersionMismatch,
            format!(
                "the service reports version {have}, not the expected {want}, even when \
                 freshly started; install version {want} and stop the running service (the \
                 stop operation) so that the next ensure starts it, or change expected_version"
            ),
        )
        .with_remedy(Remedy::Run(Operation::Stop))
        .with_remedy(Remedy::SetKey("expected_version"))
    } else {
        Error::new(
            ErrorKind::VersionMismatch,
            format!(
                "the running service reports version {have}, not the expected {want}; \
                 stop it (the stop operation) to replace it, or set \
                 on_version_mismatch = \"restart\""
            ),
        )
        .with_remedy(Remedy::Run(Operation::Stop))
        .with_remedy(Remedy::SetKey("on_version_mismatch"))
    }
}

impl ServiceManager {
    /// Replace a service that reports the wrong version: once, by one
    /// process, under `spawn.lock` (the others wait for it and find the
    /// new service). A replacement that still reports the wrong version is
    /// an error, now and for every later `ensure`, never a restart loop.
    pub(super) async fn restart_for_version(
        &self,
        want: &str,
        deadline: Instant,
    ) -> Result<Status> {
        // The first look, which found the service, makes nothing: a state
        // dir never made holds no spawn.lock yet.
        self.paths.create_state_dir()?;
        loop {
            let Some(guard) = lock::take(&self.paths.spawn_lock(), deadline)
                .await?
                .map(|file| Arc::new(lock::OwnLock::from(file)))
            else {
                return Err(self.starting_elsewhere_error());
            };
            let (status, channel, instance) = match self.observe(true, true).await? {
                Observation::Serving(status, channel, instance) => (status, channel, instance),
                Observation::Conflict(what) => return Err(self.conflict_error(&what)),
                Observation::Alive(..) | Observation::Absent { .. } => {
                    drop(guard);
                    let (status, started) = self.ensure_running(deadline).await?;
                    match &status.version {
                        Some(have) if have != want && started => {
                            return Err(self.fresh_start_mismatch(want, have, status.pid));
                        }
                        Some(have) if have != want => continue,
                        _ => return Ok(status),
                    }
                }
            };
            let have = status.version.clone().unwrap_or_default();
            if have == want || !status.leases.is_empty() {
                let status = self.with_version_warning(status);
                return Ok(self.remember(status, channel, instance));
            }
            if let Some(instance) = instance
                && self.failed_restart(want) == Some(instance)
            {
                return Err(version_mismatch(want, &have, true));
            }
            tracing::info!("service reports version {have}, want {want}: restarting it");
            let asked = format!(
                "restart asked by {}, which wants version {want}, not {have}",
                logs::mark::caller()
            );
            // A runtime may have taken a lease since the look: the kit
            // refuses then, and the next look finds the lease and keeps the
            // service. (A kit from before the condition shuts down anyway;
            // any other failure leaves it to the stop's own steps.)
            if status.managed
                && let Err(e) = self
                    .ask_to_shut_down(true, channel.clone(), &asked, true)
                    .await
                && e.code() == tonic::Code::FailedPrecondition
            {
                tracing::info!("not restarting: {}", e.message());
                drop(guard);
                continue;
            }
            self.stop_observed(instance, Some(channel), status.managed, &asked)
                .await?;
            // The replacement gets ready_timeout_secs of its own: the stop
            // took what it needed (a drain of calls in flight, bounded by
            // stop_timeout_secs), and a call that stopped the old service
            // must not give up before starting the new one.
            let deadline = deadline.max(Instant::now() + self.config.ready_timeout);
            let status = match self.observe(true, true).await? {
                // launchd's always-on job starts it again when one is
                // loaded for it. `None` under our own spawn.lock: a service
                // took the instance lock, or another process of ours the
                // port, in between (spfs started its own); not another start.
                Observation::Absent { orphaned_lock } => {
                    match self.start_by_launchd(deadline, orphaned_lock).await? {
                        Some(status) => status,
                        None => self
                            .spawn(&guard, orphaned_lock, deadline)
                            .await?
                            .ok_or_else(|| self.replaced_meanwhile_error())?,
                    }
                }
                Observation::Serving(status, ..) => status,
                Observation::Conflict(what) => return Err(self.conflict_error(&what)),
                Observation::Alive(status, _) => return Err(self.unresponsive_error(&status)),
            };
            drop(guard);
            return match &status.version {
                Some(have) if have != want => {
                    Err(self.fresh_start_mismatch(want, have, status.pid))
                }
                _ => Ok(status),
            };
        }
    }

    /// A service this call started reports `have`, not `want`: remembered,
    /// so that later calls do not start the same program again for it.
    pub(super) fn fresh_start_mismatch(&self, want: &str, have: &str, pid: Option<u32>) -> Error {
        self.remember_failed_restart(want, pid);
        version_mismatch(want, have, true)
    }

    /// The instance a restart for `want` produced that still reported
    /// another version, if that is recorded.
    pub(super) fn failed_restart(&self, want: &str) -> Option<Instance> {
        let text = std::fs::read(self.paths.version_restart()).ok()?;
        let failed: FailedRestart = serde_json::from_slice(&text).ok()?;
        (failed.expected == want).then_some(Instance {
            pid: failed.pid,
            start_time: failed.start_time,
        })
    }

    pub(super) fn remember_failed_restart(&self, want: &str, pid: Option<u32>) {
        let Some(instance) = pid.and_then(Instance::of) else {
            return;
        };
        let failed = FailedRestart {
            pid: instance.pid,
            start_time: instance.start_time,
            expected: want.to_string(),
        };
        let text = serde_json::to_vec(&failed).expect("record serializes");
        if let Err(e) =
            spfs_autostart_protocol::record::write_private(&self.paths.version_restart(), &text)
        {
            tracing::warn!("cannot remember the failed version restart: {e}");
        }
    }

    /// A running service of another version than `expected_version` (or
    /// of a version it cannot tell) says so.
    pub(super) fn with_version_warning(&self, mut status: Status) -> Status {
        status.warnings.extend(self.version_warning(&status));
        status
    }

    /// The warning [`Self::with_version_warning`] adds to `status`, if any.
    pub(crate) fn version_warning(&self, status: &Status) -> Option<String> {
        Some(match self.version_verdict(status)? {
            VersionVerdict::Fails(e) => e.to_string(),
            VersionVerdict::Note(note) | VersionVerdict::Replaces(note) => note,
        })
    }

    /// What `ensure` makes of the version of the running service in
    /// `status`: nothing to say (`None`: it matches, or nothing is
    /// expected), a note, or the error it fails with.
    pub(crate) fn version_verdict(&self, status: &Status) -> Option<VersionVerdict> {
        let want = self.config.expected_version.as_ref()?;
        if status.state != State::Running {
            return None;
        }
        let Some(have) = &status.version else {
            return Some(VersionVerdict::Note(format!(
                "expected_version = {want:?} is not checked: the service does not report its \
                 version (it does not embed the kit)"
            )));
        };
        if want == have {
            return None;
        }
        if self.config.on_version_mismatch == VersionPolicy::Error {
            return Some(VersionVerdict::Fails(version_mismatch(want, have, false)));
        }
        if !status.leases.is_empty() {
            return Some(VersionVerdict::Note(format!(
                "it runs version {have}, not the expected {want}; it is not replaced while \
                 {} lease(s) use it: the next ensure once it is idle replaces it, or \
                 the stop operation does now",
                status.leases.len()
            )));
        }
        let failed = self.failed_restart(want);
        if failed.is_some() && failed == status.pid.and_then(Instance::of) {
            return Some(VersionVerdict::Fails(version_mismatch(want, have, true)));
        }
        Some(VersionVerdict::Replaces(format!(
            "it runs version {have}, not the expected {want}; the next ensure replaces it \
             (on_version_mismatch = \"restart\")"
        )))
    }
}

/// What `ensure` makes of a running service's version.
pub(crate) enum VersionVerdict {
    /// It uses the service (it cannot tell the version, or leases keep
    /// it); the user should know why.
    Note(String),
    /// It replaces the service with a fresh start, as this says.
    Replaces(String),
    /// It fails with this error and starts nothing.
    Fails(Error),
}
