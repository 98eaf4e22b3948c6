//! How long the service lives: leases, calls in flight, the idle clock, and
//! the stream of changes `Control.Watch` serves.
//!
//! Idle means no live lease and no call in flight. Leases follow processes:
//! each lease watches its process (`sys::ProcessHandle`: pidfd on Linux,
//! kqueue on macOS) and drops itself when the process exits, so the service
//! can go away once every runtime using it is gone.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use spfs_autostart_protocol::proto::control::{
    InfoResponse, Lease, StatusUpdate, status_update::Event,
};
use spfs_autostart_protocol::record::unix_ms;

mod leases;
pub use leases::LeaseError;

/// Who the service is; fixed for its life.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The service's name.
    pub name: String,
    /// The service's version.
    pub version: String,
}

/// The shared lifetime state of one running service.
#[derive(Debug)]
pub(crate) struct Lifetime {
    identity: Identity,
    endpoint: String,
    started_at_unix_ms: u64,
    socket_activated: bool,
    idle_timeout: Duration,
    inner: Mutex<Inner>,
    /// Bumped on every change that may move the idle deadline.
    generation: watch::Sender<u64>,
    /// The shutdown reason, once one was requested.
    shutdown: watch::Sender<Option<String>>,
    updates: broadcast::Sender<StatusUpdate>,
    /// The reason the watchers were told the service shuts down, once they
    /// were ([`Self::tell_watchers_shutting_down`]): a watcher that fell
    /// behind and missed that update learns it here.
    watchers_told: std::sync::OnceLock<String>,
    /// How long a graceful shutdown may drain calls, when the requester
    /// asked for less than the kit's own limit.
    drain_limit: Mutex<Option<Duration>>,
    /// Woken when the drain limit changes (a drain under way re-reads it).
    drain_limited: tokio::sync::Notify,
    /// Woken when the last counted call in flight ends.
    calls_done: tokio::sync::Notify,
    /// The runtime the kit started in, where each lease's follower runs:
    /// a lease may be taken on any thread (a FUSE callback's).
    runtime: tokio::runtime::Handle,
}

#[derive(Debug)]
struct Inner {
    leases: BTreeMap<u64, Lease>,
    /// The task that follows each lease's holder (and holds its process
    /// handle, one descriptor): ended with the lease, not with the holder.
    followers: BTreeMap<u64, tokio::task::AbortHandle>,
    next_lease: u64,
    in_flight: usize,
    idle_since: Instant,
    /// Why no new client can reach the service any more, once the kit saw
    /// it ([`Lifetime::exit_when_idle`]): it then exits as soon as it is
    /// idle, whatever its idle timeout.
    unreachable: Option<String>,
}

/// When this process started, on the wall clock: what clients show as its
/// uptime, the same whether they measure the process (a client that can see
/// it) or take this (one that cannot), however long the service's own set-up
/// before `Kit::start` took.
fn process_started_at_unix_ms() -> u64 {
    let now = SystemTime::now();
    let age = spfs_autostart_protocol::sys::Instance::of(std::process::id())
        .and_then(|me| me.age())
        .unwrap_or_default();
    unix_ms(now.checked_sub(age).unwrap_or(now))
}

impl Lifetime {
    /// A new lifetime; the idle clock starts now, and again once the
    /// service serves ([`Self::run_idle_timer`]). Inside a tokio runtime.
    pub(crate) fn new(
        identity: Identity,
        endpoint: String,
        socket_activated: bool,
        idle_timeout: Duration,
    ) -> Arc<Lifetime> {
        Arc::new(Lifetime {
            identity,
            endpoint,
            started_at_unix_ms: process_started_at_unix_ms(),
            socket_activated,
            idle_timeout,
            inner: Mutex::new(Inner {
                leases: BTreeMap::new(),
                followers: BTreeMap::new(),
                next_lease: 1,
                in_flight: 0,
                idle_since: Instant::now(),
                unreachable: None,
            }),
            generation: watch::channel(0).0,
            shutdown: watch::channel(None).0,
            updates: broadcast::channel(64).0,
            watchers_told: std::sync::OnceLock::new(),
            drain_limit: Mutex::new(None),
            drain_limited: tokio::sync::Notify::new(),
            calls_done: tokio::sync::Notify::new(),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("lifetime mutex")
    }

    /// The service's current state, as `Control.Info` reports it.
    pub(crate) fn info(&self) -> InfoResponse {
        let inner = self.lock();
        let shutting_down = self.shutdown.borrow().is_some();
        InfoResponse {
            name: self.identity.name.clone(),
            version: self.identity.version.clone(),
            pid: std::process::id(),
            started_at_unix_ms: self.started_at_unix_ms,
            endpoint: self.endpoint.clone(),
            leases: inner.leases.values().cloned().collect(),
            // A service on its way out has no idle exit ahead of it.
            idle_exit_in_ms: self
                .deadline_of(&inner)
                .filter(|_| !shutting_down)
                .map(|d| d.saturating_duration_since(Instant::now()).as_millis() as u64),
            // Rounded up: a timeout under a second is not 0, "never".
            idle_timeout_secs: self
                .idle_timeout
                .as_secs()
                .saturating_add(u64::from(self.idle_timeout.subsec_nanos() > 0)),
            socket_activated: self.socket_activated,
            shutting_down,
        }
    }

    fn deadline_of(&self, inner: &Inner) -> Option<Instant> {
        if !inner.leases.is_empty() || inner.in_flight > 0 {
            return None;
        }
        if inner.unreachable.is_some() {
            return Some(inner.idle_since);
        }
        if self.idle_timeout.is_zero() {
            return None;
        }
        // A timeout past what the clock can hold (`KitConfig.idle_timeout`
        // is public: `Duration::MAX`) is never, not a panic under the lock.
        inner.idle_since.checked_add(self.idle_timeout)
    }

    /// No new client can reach the service (`why`): exit once idle, with no
    /// lease and no call in flight, at once if it is idle now. What holds
    /// a lease or a connection still gets its answers until then.
    pub(crate) fn exit_when_idle(&self, why: String) {
        {
            let mut inner = self.lock();
            if inner.unreachable.is_some() {
                return;
            }
            inner.unreachable = Some(why.clone());
        }
        tracing::warn!("{why}; exiting once no lease and no call keep this service");
        self.changed(Event::IdleDeadlineChanged, why);
    }

    /// When the service will exit for idleness, if it is idle.
    pub(crate) fn idle_deadline(&self) -> Option<Instant> {
        self.deadline_of(&self.lock())
    }

    /// A change the idle timer must see (the deadline may come closer or
    /// appear, or shutdown began): wake it, and tell the watchers. A change
    /// that only postpones the deadline calls [`Lifetime::announce`] alone.
    fn changed(&self, event: Event, detail: String) {
        self.generation.send_modify(|g| *g += 1);
        self.announce(event, detail);
    }

    /// Tell the watchers. The update carries a whole `info()`, so it is
    /// built only when someone watches.
    fn announce(&self, event: Event, detail: String) {
        if self.updates.receiver_count() == 0 {
            return;
        }
        let _ = self.updates.send(StatusUpdate {
            event: event as i32,
            info: Some(self.info()),
            detail,
        });
    }

    /// A call started; the guard ends it. Calls in flight keep the service up.
    pub(crate) fn call_started(self: &Arc<Self>) -> CallGuard {
        let first = {
            let mut inner = self.lock();
            inner.in_flight += 1;
            inner.in_flight == 1 && inner.leases.is_empty()
        };
        if first {
            self.changed(Event::IdleDeadlineChanged, "a call started".into());
        }
        CallGuard(self.clone())
    }

    /// Restart the idle clock, as a finished call does.
    ///
    /// A touch only ever moves the deadline later, so the idle timer is not
    /// woken: at the old deadline it finds the new one and sleeps again.
    /// (Waking it was a hop to another thread on every `ensure`.)
    pub(crate) fn touch(&self) {
        self.lock().idle_since = Instant::now();
        self.announce(Event::IdleDeadlineChanged, "used".into());
    }

    /// Ask the service to shut down; the first reason wins.
    pub(crate) fn request_shutdown(&self, reason: impl Into<String>) {
        let reason = reason.into();
        if self.mark_shutdown(&reason) {
            self.announce_shutdown(reason);
        }
    }

    /// Ask the service to shut down, draining calls for at most `drain`,
    /// unless it holds leases: decided under the lock lease grants take, so
    /// no lease is granted after the check and then cut off. The number of
    /// leases held when it refuses (and then nothing changes).
    pub(crate) fn request_shutdown_unless_leased(
        &self,
        reason: impl Into<String>,
        drain: Option<Duration>,
    ) -> Result<(), usize> {
        let reason = reason.into();
        let marked = {
            let inner = self.lock();
            if !inner.leases.is_empty() {
                return Err(inner.leases.len());
            }
            if let Some(drain) = drain {
                self.limit_drain(drain);
            }
            self.mark_shutdown(&reason)
        };
        if marked {
            self.announce_shutdown(reason);
        }
        Ok(())
    }

    /// Set the shutdown flag with `reason`, unless it is set; whether it was
    /// set now. Takes no lock of `inner`, so it may be called under it.
    fn mark_shutdown(&self, reason: &str) -> bool {
        self.shutdown.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason.to_owned());
                true
            } else {
                false
            }
        })
    }

    /// Log the shutdown the flag now says. The watchers are told by the
    /// server ([`Self::tell_watchers_shutting_down`]), once the record says
    /// so.
    fn announce_shutdown(&self, reason: String) {
        tracing::info!("shutting down: {reason}");
    }

    /// Tell the watchers the service is shutting down; their streams end.
    /// Only once the record says `stopping`: a watcher whose stream ends
    /// looks again, and with a record that still said `running` its look
    /// connected to a socket launchd or systemd holds, which started the
    /// service again the moment it had exited.
    pub(crate) fn tell_watchers_shutting_down(&self, reason: String) {
        let _ = self.watchers_told.set(reason.clone());
        self.changed(Event::ShuttingDown, reason);
    }

    /// The reason the watchers were told the service shuts down, once they
    /// were.
    pub(crate) fn watchers_told(&self) -> Option<&str> {
        self.watchers_told.get().map(String::as_str)
    }

    /// Resolves with the reason once shutdown was requested.
    /// Why the service shuts down, once a shutdown was requested.
    pub(crate) fn shutdown_reason(&self) -> Option<String> {
        self.shutdown.borrow().clone()
    }

    pub(crate) async fn shutdown_requested(&self) -> String {
        let mut rx = self.shutdown.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                return "the service is ending".into();
            }
        }
    }

    /// Drain calls for at most `limit` once shutting down: the requester
    /// signals the process soon after that, and a drain cut short by a
    /// signal would be reported as a service that ignored the request. A
    /// drain under way is told ([`Self::drain_limit_changed`]).
    pub(crate) fn limit_drain(&self, limit: Duration) {
        let mut current = self.drain_limit.lock().expect("drain mutex");
        *current = Some(current.map_or(limit, |c| c.min(limit)));
        // A permit when nobody waits yet: the drain reads the limit after.
        self.drain_limited.notify_one();
    }

    /// Resolves when the drain limit was changed (or had been, since the
    /// last time this resolved).
    pub(crate) async fn drain_limit_changed(&self) {
        self.drain_limited.notified().await;
    }

    /// How long the drain may take: `default`, or less when asked.
    pub(crate) fn drain_limit(&self, default: Duration) -> Duration {
        self.drain_limit
            .lock()
            .expect("drain mutex")
            .map_or(default, |limit| limit.min(default))
    }

    /// Resolves once no call is in flight but those that only look
    /// (`Info`, the watches, health), which never end by themselves.
    pub(crate) async fn calls_finished(&self) {
        loop {
            let notified = self.calls_done.notified();
            tokio::pin!(notified);
            // Registered before the count is read, so an end in between
            // still wakes us.
            notified.as_mut().enable();
            if self.lock().in_flight == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Whether shutdown was requested.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.borrow().is_some()
    }

    /// Announce that the service serves.
    pub(crate) fn ready(&self) {
        self.changed(Event::Ready, "serving".into());
    }

    /// Subscribe to changes, for `Control.Watch`.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<StatusUpdate> {
        self.updates.subscribe()
    }

    /// Exit when idle for `idle_timeout` (never when it is zero), or at
    /// once when idle after [`Self::exit_when_idle`]: sleeps until the
    /// deadline, woken early by every change; returns when shutdown was
    /// requested. Started as the service begins to serve, which is when its
    /// idle clock starts: the service's own set-up since `Kit::start`
    /// (opening repositories, mounting) is not idleness.
    pub(crate) async fn run_idle_timer(self: Arc<Self>) {
        self.lock().idle_since = Instant::now();
        let mut generation = self.generation.subscribe();
        loop {
            if self.is_shutting_down() {
                return;
            }
            generation.borrow_and_update();
            let deadline = self.idle_deadline();
            tokio::select! {
                changed = generation.changed() => if changed.is_err() { return },
                () = sleep_until_opt(deadline) => {
                    // Decided under the lock a call or a lease takes: one
                    // that comes at the deadline either keeps the service
                    // up or finds it shutting down (a lease is then
                    // refused), never a lease granted by a service that
                    // goes anyway.
                    let (expired, reason) = {
                        let inner = self.lock();
                        let reason = match &inner.unreachable {
                            Some(why) => format!("{why}, and it is idle"),
                            None => format!(
                                "idle for {}s with no lease and no call in flight",
                                self.idle_timeout.as_secs()
                            ),
                        };
                        let expired = self.deadline_of(&inner).is_some_and(|d| d <= Instant::now())
                            && self.mark_shutdown(&reason);
                        (expired, reason)
                    };
                    if expired {
                        self.announce_shutdown(reason);
                        return;
                    }
                }
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Ends a call: when the last call ends with no lease, the idle clock starts.
#[derive(Debug)]
pub(crate) struct CallGuard(Arc<Lifetime>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        let (none_left, idle) = {
            let mut inner = self.0.lock();
            inner.in_flight -= 1;
            inner.idle_since = Instant::now();
            let none_left = inner.in_flight == 0;
            (none_left, none_left && inner.leases.is_empty())
        };
        if none_left {
            self.0.calls_done.notify_waiters();
        }
        if idle {
            self.0
                .changed(Event::IdleDeadlineChanged, "calls finished".into());
        }
    }
}

#[cfg(test)]
impl Lifetime {
    /// A lifetime for the crate's unit tests: service `t` 1 at `unix:///x`.
    pub(crate) fn for_tests(idle: Duration) -> Arc<Lifetime> {
        Lifetime::new(
            Identity {
                name: "t".into(),
                version: "1".into(),
            },
            "unix:///x".into(),
            false,
            idle,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifetime(idle: Duration) -> Arc<Lifetime> {
        Lifetime::for_tests(idle)
    }

    #[tokio::test]
    async fn lease_for_missing_pid_is_refused() {
        let life = lifetime(Duration::from_secs(1));
        assert!(matches!(
            life.acquire(u32::MAX / 2, "x".into()),
            Err(LeaseError::NoSuchProcess(_))
        ));
        assert!(matches!(
            life.acquire(0, "x".into()),
            Err(LeaseError::NoSuchProcess(0))
        ));
    }

    /// A lease the service's own handlers take on its own pid (a `Mount`
    /// that leases for "whoever called") would keep it up for good: refused
    /// here, not only by `Control/Acquire`.
    #[tokio::test]
    async fn a_lease_on_the_service_itself_is_refused() {
        let life = lifetime(Duration::from_secs(1));
        let refused = life.acquire(std::process::id(), "self".into());
        assert!(
            matches!(refused, Err(LeaseError::OwnProcess(_))),
            "{refused:?}"
        );
        assert!(life.info().leases.is_empty());
        assert!(life.idle_deadline().is_some());
    }

    #[tokio::test]
    async fn calls_and_leases_hold_off_the_idle_deadline() {
        let life = lifetime(Duration::from_secs(60));
        assert!(life.idle_deadline().is_some());
        let call = life.call_started();
        assert!(life.idle_deadline().is_none());
        drop(call);
        assert!(life.idle_deadline().is_some());
        let mut holder = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let lease = life.acquire(holder.id(), "holder".into()).unwrap();
        assert!(life.idle_deadline().is_none());
        assert_eq!(life.info().leases.len(), 1);
        assert!(life.release(lease.id));
        assert!(!life.release(lease.id));
        assert!(life.idle_deadline().is_some());
        holder.kill().unwrap();
        holder.wait().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_touch_postpones_the_idle_exit_and_leaves_the_timer_asleep() {
        let life = lifetime(Duration::from_secs(10));
        let timer = tokio::spawn(life.clone().run_idle_timer());
        tokio::time::sleep(Duration::from_secs(6)).await;
        let generation = *life.generation.borrow();
        life.touch();
        assert_eq!(*life.generation.borrow(), generation, "the timer was woken");
        // Past the first deadline (10 s): the timer wakes and finds the new one.
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(
            !life.is_shutting_down(),
            "exited at the deadline before the touch"
        );
        // Past the new deadline (16 s).
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(life.is_shutting_down(), "did not exit at the new deadline");
        timer.await.unwrap();
    }

    /// A thread id reads like a pid on Linux (`/proc/TID` exists): a lease
    /// on one of the service's own threads kept it up for good, and one on
    /// another process's thread ended with the thread. Both refused.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_lease_on_a_thread_id_is_refused() {
        // The test runs on a thread of its own, so there is one besides
        // the main thread.
        let tid = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|&tid| tid != std::process::id())
            .expect("a thread besides the main one");
        let life = lifetime(Duration::from_secs(1));
        let refused = life.acquire(tid, "thread".into());
        assert!(
            matches!(refused, Err(LeaseError::NotAProcess(t)) if t == tid),
            "{refused:?}"
        );
        assert!(life.info().leases.is_empty());
    }

    /// A shutdown on condition (a version restart's) is refused while a
    /// lease is held, changing nothing (not even the drain), and taken once
    /// none is; after it, no lease is granted.
    /// A lease taken on a thread outside the runtime (a FUSE callback's)
    /// is followed as any other: it ends when its holder exits.
    #[tokio::test]
    async fn a_lease_taken_outside_the_runtime_ends_with_its_holder() {
        let life = lifetime(Duration::from_secs(60));
        let mut holder = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = holder.id();
        let taker = life.clone();
        let lease = std::thread::spawn(move || taker.acquire(pid, "fuse".into()))
            .join()
            .expect("no panic outside the runtime")
            .expect("a lease");
        assert_eq!(life.leases().len(), 1);
        holder.kill().unwrap();
        holder.wait().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !life.leases().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "lease {} outlived its holder",
                lease.id
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_shutdown_unless_leased_waits_for_no_lease_and_then_grants_none() {
        let life = lifetime(Duration::from_secs(60));
        let mut holder = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let lease = life.acquire(holder.id(), "runtime".into()).unwrap();
        let drain = Some(Duration::from_millis(5));
        assert_eq!(
            life.request_shutdown_unless_leased("restart", drain),
            Err(1)
        );
        assert!(!life.is_shutting_down());
        assert_eq!(
            life.drain_limit(Duration::from_secs(9)),
            Duration::from_secs(9)
        );
        assert!(life.release(lease.id));
        assert_eq!(
            life.request_shutdown_unless_leased("restart", drain),
            Ok(())
        );
        assert!(life.is_shutting_down());
        assert_eq!(
            life.drain_limit(Duration::from_secs(9)),
            Duration::from_millis(5)
        );
        assert!(matches!(
            life.acquire(holder.id(), "late".into()),
            Err(LeaseError::ShuttingDown)
        ));
        holder.kill().unwrap();
        holder.wait().unwrap();
    }

    #[tokio::test]
    async fn watchers_hear_of_a_touch() {
        let life = lifetime(Duration::from_secs(60));
        let mut updates = life.subscribe();
        life.touch();
        let update = updates.try_recv().expect("an update");
        assert_eq!(update.event, Event::IdleDeadlineChanged as i32);
        assert!(update.info.and_then(|i| i.idle_exit_in_ms).is_some());
    }

    #[tokio::test]
    async fn an_idle_timeout_past_the_clock_is_never() {
        let life = lifetime(Duration::MAX);
        assert!(life.idle_deadline().is_none());
        assert!(life.info().idle_exit_in_ms.is_none());
        assert_eq!(life.info().idle_timeout_secs, u64::MAX);
        assert_eq!(
            lifetime(Duration::from_millis(500))
                .info()
                .idle_timeout_secs,
            1,
            "under a second is not 0, never"
        );
        life.touch();
        assert!(!life.is_shutting_down());
    }

    #[tokio::test]
    async fn a_service_shutting_down_tells_no_idle_exit() {
        let life = lifetime(Duration::from_secs(1800));
        assert!(life.info().idle_exit_in_ms.is_some());
        life.request_shutdown("test");
        let info = life.info();
        assert!(info.shutting_down);
        assert_eq!(info.idle_exit_in_ms, None);
    }

    #[tokio::test]
    async fn zero_idle_timeout_never_sets_a_deadline() {
        let life = lifetime(Duration::ZERO);
        assert!(life.idle_deadline().is_none());
        assert!(life.info().idle_exit_in_ms.is_none());
    }
}
