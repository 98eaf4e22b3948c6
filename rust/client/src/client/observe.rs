//! Looking at the endpoint, the locks and the record: what runs, and whose it is.

use super::*;

/// A socket-activated service, seen without a connection (see
/// [`ServiceManager::socket_activated_look`]).
pub(super) enum ActivatedLook {
    /// It has exited; the activator holds its socket.
    Gone,
    /// It is shutting down (its record says so).
    Going(ServiceRecord, Instance),
}

/// What one look at the endpoint and the locks found. The instance is the
/// process behind it, when known exactly.
pub(super) enum Observation {
    /// The service answers (and is not shutting down).
    Serving(Status, Channel, Option<Instance>),
    /// A service is alive but does not serve: starting, shutting down or
    /// hung.
    Alive(Status, Option<Instance>),
    /// No service. `orphaned_lock`: `instance.lock` is held, but only by
    /// what a dead service left behind (a helper that inherited it).
    Absent { orphaned_lock: bool },
    /// Something else is at the endpoint.
    Conflict(String),
}

impl Observation {
    /// One line for the `-v` log: what was found.
    fn summary(&self) -> String {
        let pid = |status: &Status| status.pid.map_or("unknown".into(), |p| p.to_string());
        match self {
            Observation::Serving(status, ..) => format!("serving, pid {}", pid(status)),
            Observation::Alive(status, _) => format!("{}, pid {}", status.state, pid(status)),
            Observation::Absent { orphaned_lock } => {
                format!("no service (lock orphaned: {orphaned_lock})")
            }
            Observation::Conflict(what) => format!("conflict: {what}"),
        }
    }
}

impl ServiceManager {
    /// Probe and, when nothing answers, look at the instance lock. `touch`
    /// counts the probe as use of the service; `under_spawn_lock`: the
    /// caller holds `spawn.lock` (so no spawner is at work). The state dir is
    /// checked first (one `lstat`): a socket in a directory someone else
    /// controls must not be trusted, even when it answers.
    pub(super) async fn observe(&self, touch: bool, under_spawn_lock: bool) -> Result<Observation> {
        self.paths.check_state_dir()?;
        // Connecting to a socket launchd or systemd holds starts the
        // service: only `ensure` may do that, not a look that reports (a
        // menu bar's watch would start it again after every idle exit).
        // (A look that touches connects in any case: its record is not read.)
        match (!touch).then(|| self.socket_activated_look()).flatten() {
            Some(ActivatedLook::Gone) => {
                return Ok(Observation::Absent {
                    orphaned_lock: false,
                });
            }
            Some(ActivatedLook::Going(record, instance)) => {
                let status = self.alive_status(None, Some(&record), Some(instance));
                return Ok(Observation::Alive(status, Some(instance)));
            }
            None => {}
        }
        let probe = rpc::probe(&self.endpoint, touch, PROBE_TIMEOUT).await;
        let answered = matches!(probe, Probe::Foreign(_) | Probe::Kit(..) | Probe::Plain(_));
        let observation = self.observation_of(probe, under_spawn_lock)?;
        tracing::debug!("{}: {}", self.endpoint, observation.summary());
        match observation {
            // A service that dies between our connect and the lock check
            // resets the connection (or answers, then exits) and frees the
            // lock, so for a moment it looks like a foreign peer (a plain
            // one: a server answering with no process of ours listening
            // there any more, the listener gone by the lookup). Its
            // descriptors are closed once the lock is free: a second look
            // finds nothing there, while a real foreign peer still answers
            // the same way. (A peer that does not answer at all is not
            // looked at twice: that would double the wait.)
            Observation::Conflict(_) if answered => {
                let probe = rpc::probe(&self.endpoint, touch, PROBE_TIMEOUT).await;
                self.observation_of(probe, under_spawn_lock)
            }
            observation => Ok(observation),
        }
    }

    pub(super) fn observation_of(
        &self,
        probe: Probe,
        under_spawn_lock: bool,
    ) -> Result<Observation> {
        let no_answer = matches!(probe, Probe::NoAnswer);
        let foreign = match probe {
            Probe::Kit(info, channel) => {
                return self.kit_observation(info, channel, under_spawn_lock);
            }
            Probe::Plain(channel) => return self.plain_observation(channel, under_spawn_lock),
            Probe::Nothing => None,
            Probe::Foreign(what) => Some(what),
            Probe::NoAnswer => Some("it accepts connections but does not answer gRPC".to_string()),
        }
        // Whose it is says more than how it answered, when it is another
        // user's.
        .map(|what| self.foreign_listener().unwrap_or(what));
        if !lock::is_held(&self.paths.instance_lock())? {
            if no_answer && let Some(adopted) = self.adopted_unresponsive() {
                return Ok(adopted);
            }
            return Ok(match foreign {
                None => Observation::Absent {
                    orphaned_lock: false,
                },
                Some(what) => Observation::Conflict(self.naming_the_listener(what)),
            });
        }
        let record = ServiceRecord::read(&self.paths.record());
        let spawner_at_work =
            !under_spawn_lock && lock::is_held(&self.paths.spawn_lock()).unwrap_or(false);
        let absent = |orphaned_lock| match &foreign {
            None => Observation::Absent { orphaned_lock },
            Some(what) => Observation::Conflict(what.clone()),
        };
        match record.as_ref().and_then(ServiceRecord::instance) {
            Some(instance) if instance.is_alive() => {
                let mut status = self.alive_status(foreign, record.as_ref(), Some(instance));
                // A plain service a client is stopping, which has closed its
                // listener and not yet exited (spfs-fuse-macos unmounting):
                // stopping, not unresponsive (a watch would flash "not
                // responding" through every slow stop).
                if status.state == State::Unresponsive
                    && !under_spawn_lock
                    && self.being_stopped(instance)
                {
                    status.state = State::Stopping;
                    status.detail = Some("being stopped: waiting for it to exit".into());
                }
                // Ours (it holds the lock), but serving where the config no
                // longer points: no wait makes it answer here.
                // (Being stopped, it is going anyway: that is what it is.)
                if status.state != State::Stopping
                    && let Some(there) = record.as_ref().and_then(|r| self.serves_elsewhere(r))
                {
                    status.state = State::Conflict;
                    status.detail = Some(self.elsewhere_detail(instance.pid, &there));
                }
                Ok(Observation::Alive(status, Some(instance)))
            }
            // The recorded service died since the lock was looked at: the
            // lock it held is free now (its descriptors close before it is
            // dead), so a second look tells a finished stop from a start.
            Some(_) if !lock::is_held(&self.paths.instance_lock())? => Ok(absent(false)),
            // The recorded service is dead, nobody is starting one, yet the
            // lock is held: by processes it left behind, which must not
            // make it look alive.
            Some(_) if !spawner_at_work => Ok(absent(true)),
            // No record yet (or an old one, while a spawner works): a
            // service that has just taken the lock.
            _ => Ok(Observation::Alive(
                self.alive_status(foreign, None, None),
                None,
            )),
        }
    }

    /// A kit service answered: is it ours, and is it ready?
    fn kit_observation(
        &self,
        info: control::InfoResponse,
        channel: Channel,
        under_spawn_lock: bool,
    ) -> Result<Observation> {
        if let Some(what) = self.foreign_listener() {
            return Ok(Observation::Conflict(what));
        }
        let tcp = matches!(self.endpoint, ResolvedEndpoint::Tcp(_));
        // The exact process (pid and start time, from the record)
        // matters to a caller that may stop or replace it, and those
        // hold spawn.lock. A look that only reports (every `ensure`
        // on every shell) skips the record: its uptime comes from
        // the service's own start time.
        let recorded = (under_spawn_lock || tcp)
            .then(|| self.recorded_kit(info.pid))
            .flatten();
        let instance = (under_spawn_lock || tcp)
            .then(|| recorded.or_else(|| Instance::of(info.pid)))
            .flatten();
        // Where the listener lookup cannot see other users' sockets
        // (macOS), the pid the service reports still has an owner.
        if tcp
            && let Some(uid) = instance.and_then(|i| i.uid())
            && uid != crate::sys::my_uid()
        {
            return Ok(Observation::Conflict(foreign_user(
                &crate::owner::Listener { uid, process: None },
            )));
        }
        let held = tcp && lock::is_held(&self.paths.instance_lock())?;
        // On a TCP port the pid is the peer's word. It is believed when our
        // record names that very process (under our lock: our kit wrote
        // it, or our spawner started it), else only when that process
        // holds the listening socket: anyone at the port could name a
        // process of ours for `stop` to signal. (macOS cannot tell another
        // user's listener from the kernel's table; this is the check there.)
        if let ResolvedEndpoint::Tcp(addr) = &self.endpoint {
            let listener = || self.listener_at(*addr).and_then(|l| l.process);
            let holds = (held && recorded.is_some())
                || crate::owner::holds_tcp_listener(info.pid, *addr)
                    .unwrap_or_else(|| listener().is_some_and(|p| p.pid == info.pid));
            if !holds {
                let listens = match listener() {
                    Some(p) => format!("pid {} listens there", p.pid),
                    None => "no process of yours listens there".to_string(),
                };
                return Ok(Observation::Conflict(format!(
                    "the gRPC server at {} says it is pid {}, but {listens}",
                    self.endpoint, info.pid
                )));
            }
        }
        let mut status = self.kit_status(&info, instance);
        // A kit service takes our instance lock before it serves. A
        // socket in our state dir is ours by where it is; a TCP port
        // may be served for another state dir. Like a plain service
        // started outside, it is ours only if it runs our program.
        if tcp && !held {
            if !instance.is_some_and(|i| self.runs_configured_program(i)) {
                return Ok(Observation::Conflict(
                    self.not_the_program(info.pid, "serves there for another state dir"),
                ));
            }
            status.detail = Some(format!(
                "serves for another state dir (it holds no instance lock in {}); \
                 `stop` stops it",
                self.paths.state_dir.display()
            ));
        }
        // A service that is shutting down is not ready: waiting for
        // it to go (and starting a fresh one) is what `ensure` needs.
        Ok(if info.shutting_down {
            Observation::Alive(status, instance)
        } else {
            Observation::Serving(status, channel, instance)
        })
    }

    /// A plain service answered: whose is it? On a TCP endpoint the
    /// listener's owner decides: another user's is a conflict; one of ours
    /// that holds no lock is adopted only when it runs the configured
    /// program.
    pub(super) fn plain_observation(
        &self,
        channel: Channel,
        under_spawn_lock: bool,
    ) -> Result<Observation> {
        // Another user's server is never used, never sent `Shutdown`: at an
        // explicit `unix://` path (the socket file is theirs) as on a TCP
        // port (the kernel's table; cheap, no process scan), whatever our
        // lock and record say (ours may be starting beside theirs).
        if let Some(what) = self.foreign_listener() {
            return Ok(Observation::Conflict(what));
        }
        let held = lock::is_held(&self.paths.instance_lock())?;
        let record = held.then(|| self.plain_record()).flatten();
        let mut instance = record.as_ref().and_then(ServiceRecord::instance);
        // A start under way: its spawner judges whether what answers is the
        // service it started (another process of ours may have taken the
        // port first, and then ours is ended). Until it writes `running`,
        // the others see the service starting.
        if !under_spawn_lock
            && record.as_ref().is_some_and(|r| r.phase == Phase::Starting)
            && lock::is_held(&self.paths.spawn_lock()).unwrap_or(false)
        {
            let detail = format!(
                "something answers at {}; the start under way has not yet found it to be the \
                 service it started",
                self.endpoint
            );
            let status = self.alive_status(Some(detail), record.as_ref(), instance);
            return Ok(Observation::Alive(status, instance));
        }
        let mut adopted = false;
        // Our lock is held and the record names a live process: that is the
        // server (a port has one listener), and the lookup, which scans
        // processes (or runs lsof), is skipped on this common path.
        let known = instance.is_some();
        if let ResolvedEndpoint::Tcp(addr) = &self.endpoint
            && !known
        {
            let Some(listener) = self.listener_at(*addr) else {
                if held {
                    // Ours by the lock; only its process is not found.
                    return Ok(Observation::Serving(
                        self.plain_status(record, instance),
                        channel,
                        instance,
                    ));
                }
                // No lock and no listener of ours found (macOS cannot see
                // other users' sockets): never assume it is ours.
                return Ok(Observation::Conflict(format!(
                    "a gRPC server answers at {} but no process of yours listens there",
                    self.endpoint
                )));
            };
            if listener.is_foreign() {
                return Ok(Observation::Conflict(foreign_user(&listener)));
            }
            if let Some(process) = listener.process {
                if !held && !self.runs_configured_program(process) {
                    return Ok(Observation::Conflict(
                        self.not_the_program(process.pid, "listens there"),
                    ));
                }
                adopted = !held;
                instance = Some(process);
            }
        }
        let mut status = self.plain_status(record, instance);
        if adopted && let Some(pid) = status.pid {
            let (origin, log_file) = self.adopted_origin(pid);
            status.detail = Some(format!("{origin}; `stop` stops it"));
            status.log_file = log_file.unwrap_or(status.log_file);
        }
        // Still serving, but a client is stopping it: not ready for `ensure`
        // (which waits for it to go), and not a death for a watcher. (A
        // caller that holds `spawn.lock` is that client, or the mark is one
        // a client that died left behind.)
        if !under_spawn_lock
            && let Some(marked) =
                instance.filter(|&i| crate::stopping::names(&self.paths.stopping(), i))
        {
            if lock::is_held(&self.paths.spawn_lock()).unwrap_or(false) {
                status.state = State::Stopping;
                return Ok(Observation::Alive(status, instance));
            }
            // The mark of a stop whose client is gone (killed between its
            // steps): the service serves on, but its `Shutdown` may have
            // been asked (spfs-fuse-macos's only unmounts).
            status.warnings.push(format!(
                "a stop of this service (pid {}) began and did not finish: the process that \
                 ran it is gone, and the service may have unmounted its filesystem already; \
                 stop it (or stop and ensure it) again",
                marked.pid
            ));
        }
        Ok(Observation::Serving(status, channel, instance))
    }

    /// A process of ours that runs the configured program listens at the
    /// TCP endpoint without our lock (spfs started it) and accepts
    /// connections but does not answer: adopted, and unresponsive, so
    /// `status` names it and `stop` may end it, as when it answers.
    fn adopted_unresponsive(&self) -> Option<Observation> {
        let ResolvedEndpoint::Tcp(addr) = &self.endpoint else {
            return None;
        };
        let listener = self.listener_at(*addr).filter(|l| !l.is_foreign())?;
        let process = listener
            .process
            .filter(|&p| self.runs_configured_program(p))?;
        let (origin, log_file) = self.adopted_origin(process.pid);
        let detail = format!(
            "{origin}; it accepts connections but does not answer gRPC{}",
            report::stuck_because(Some(process.pid), "; ")
        );
        let base = self.base_status(State::Unresponsive);
        let status = Status {
            pid: Some(process.pid),
            uptime_secs: process.age().map(|age| age.as_secs()),
            detail: Some(detail),
            log_file: log_file.unwrap_or(base.log_file.clone()),
            ..base
        };
        Some(Observation::Alive(status, Some(process)))
    }

    /// `what` (how the peer at a TCP endpoint answered) after the process
    /// of the user's own that listens there, when it is found: the user
    /// can stop it, or move one of the two. Looked up only for a conflict,
    /// and remembered while that process lives.
    fn naming_the_listener(&self, what: String) -> String {
        let ResolvedEndpoint::Tcp(addr) = &self.endpoint else {
            return what;
        };
        match self.listener_at(*addr) {
            Some(listener) if !listener.is_foreign() => match listener.process {
                Some(process) => {
                    format!("{} listens there, and {what}", process_named(process.pid))
                }
                None => what,
            },
            _ => what,
        }
    }

    /// Who listens at the TCP endpoint `addr`: the process found last time,
    /// while it lives and the port's listening socket is still the one it
    /// was (a live process may close its listener, and another take the
    /// port: Linux's table says, cheaply; elsewhere the socket is not
    /// known, and a live process is taken to keep it), else a lookup, which
    /// scans processes (macOS: runs lsof) and is remembered. So a watch,
    /// which asks twice a second about a service spfs started itself (no
    /// lock, no record to name it), looks it up once, not every time.
    fn listener_at(&self, addr: std::net::SocketAddr) -> Option<crate::owner::Listener> {
        let socket = crate::owner::tcp_listen_entry(addr).map(|(_, inode)| inode);
        let last = self.listener.lock().expect("listener mutex").clone();
        if let Some((listener, was)) = last
            && was == socket
            && listener.process.is_some_and(|p| p.is_alive())
        {
            return Some(listener);
        }
        tracing::debug!("looking up who listens at tcp://{addr}");
        let found = crate::owner::tcp_listener(addr);
        *self.listener.lock().expect("listener mutex") = found
            .clone()
            .filter(|l| l.process.is_some())
            .map(|l| (l, socket));
        found
    }

    /// Another user's listener at our endpoint (a TCP port, or a socket file), described.
    pub(super) fn foreign_listener(&self) -> Option<String> {
        match &self.endpoint {
            // The owner alone, from the kernel's table: no process scan (no
            // lsof) on the path of every `ensure`.
            ResolvedEndpoint::Tcp(addr) => crate::owner::tcp_listen_entry(*addr)
                .map(|(uid, _)| crate::owner::Listener { uid, process: None })
                .filter(crate::owner::Listener::is_foreign)
                .map(|l| foreign_user(&l)),
            // Our state dir is ours alone (checked), and so is its socket:
            // no look at it on the path every `ensure` takes.
            ResolvedEndpoint::Unix(path) if *path == self.paths.socket() => None,
            // A socket file is its creator's: one made by another user (at an
            // explicit `unix://` path outside our state dir) is theirs. A
            // symbolic link there leads to the socket a connection reaches.
            // (The connection itself refuses another user's server, whatever
            // the path said a moment before: `Stream::connect`.)
            ResolvedEndpoint::Unix(path) => {
                use std::os::unix::fs::{FileTypeExt, MetadataExt};
                let meta = std::fs::metadata(path).ok()?;
                let listener = crate::owner::Listener {
                    uid: meta.uid(),
                    process: None,
                };
                // Root's in a dir of ours is launchd's or systemd's,
                // listening for us (see `Stream::connect`).
                let ours = spfs_autostart_protocol::endpoint::owner_is_ours(meta.uid(), path);
                (meta.file_type().is_socket() && !ours).then(|| foreign_user(&listener))
            }
        }
    }

    /// A process of ours at the endpoint that is not the configured
    /// program: "pid N (EXECUTABLE) `does`, which is not ...".
    fn not_the_program(&self, pid: u32, does: &str) -> String {
        format!(
            "{} {does}, which is not the configured program {}",
            process_named(pid),
            self.config.program
        )
    }

    /// Whether `process` runs the configured program: the same file, or a
    /// file of the same name (spfs finds its spfs-fuse-macos on PATH first,
    /// we look next to ourselves first, so the two may be different copies
    /// of the same program; the process is the user's own either way).
    pub(super) fn runs_configured_program(&self, process: Instance) -> bool {
        let Some(exe) = crate::sys::executable(process.pid) else {
            return false;
        };
        let configured = std::path::Path::new(&self.config.program);
        if configured.file_name().is_some() && configured.file_name() == exe.file_name() {
            return true;
        }
        match spawn::resolve_program(&self.config.program) {
            Ok(program) => {
                let canonical = |p: &std::path::Path| std::fs::canonicalize(p).ok();
                canonical(&program).is_some_and(|p| Some(p) == canonical(&exe))
            }
            Err(_) => false,
        }
    }

    /// The kit's process as its record names it, when the record names
    /// that pid (the record holds the start time the kit itself read).
    fn recorded_kit(&self, pid: u32) -> Option<Instance> {
        ServiceRecord::read(&self.paths.record())
            .filter(|r| r.pid == pid)
            .and_then(|r| r.instance())
    }

    /// A socket-activated service seen without connecting to the socket
    /// launchd or systemd holds for it, where a connection would start it
    /// (again): the last service's record says it took its socket from them
    /// and names this endpoint, and the socket is there. `None` when that
    /// is not so, or the service runs and serves (then a look connects as
    /// to any other).
    pub(super) fn socket_activated_look(&self) -> Option<ActivatedLook> {
        let ResolvedEndpoint::Unix(socket) = &self.endpoint else {
            return None;
        };
        let record = ServiceRecord::read(&self.paths.record())?;
        if !record.socket_activated
            || record.endpoint != self.endpoint.to_string()
            || std::fs::symlink_metadata(socket).is_err()
        {
            return None;
        }
        // A socket file the activator left when it stopped (socket
        // activation turned off) is no socket it holds: nobody listens.
        if crate::owner::unix_socket_listens(socket) == Some(false) {
            return None;
        }
        match record.instance().filter(Instance::is_alive) {
            // Going: a connection now would wait in the activator's queue
            // and start the next service the moment this one is gone.
            Some(instance) if record.phase == Phase::Stopping => {
                Some(ActivatedLook::Going(record, instance))
            }
            Some(_) => None,
            None if !lock::is_held(&self.paths.instance_lock()).unwrap_or(true) => {
                Some(ActivatedLook::Gone)
            }
            None => None,
        }
    }

    /// Whether no service runs and launchd or systemd holds its socket, to
    /// start it on the next connection (see [`Self::socket_activated_look`]).
    pub(crate) fn activator_holds_socket(&self) -> bool {
        matches!(self.socket_activated_look(), Some(ActivatedLook::Gone))
    }

    /// The endpoint a running service's record names, when it is not the
    /// configured one (the endpoint changed while it ran). The same socket
    /// under another spelling is the same endpoint.
    pub(super) fn serves_elsewhere(&self, record: &ServiceRecord) -> Option<String> {
        if record.phase != Phase::Running
            || record.endpoint.is_empty()
            || record.endpoint == self.endpoint.to_string()
        {
            return None;
        }
        if let (ResolvedEndpoint::Unix(here), Ok(ResolvedEndpoint::Unix(there))) =
            (&self.endpoint, record.endpoint.parse::<ResolvedEndpoint>())
        {
            use std::os::unix::fs::MetadataExt;
            let id =
                |path: &std::path::Path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
            if id(here).is_some() && id(here) == id(&there) {
                return None;
            }
        }
        Some(record.endpoint.clone())
    }

    /// The record, when it names a live process.
    pub(super) fn plain_record(&self) -> Option<ServiceRecord> {
        ServiceRecord::read(&self.paths.record()).filter(ServiceRecord::process_matches)
    }
}

/// A process of ours for a message: "pid N (EXECUTABLE)".
fn process_named(pid: u32) -> String {
    let executable = crate::sys::executable(pid)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "unknown executable".into());
    format!("pid {pid} ({executable})")
}
