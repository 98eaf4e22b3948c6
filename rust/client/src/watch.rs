//! `watch()`: a stream of status changes, stopped -> starting -> running ->
//! stopping -> stopped, with no busy polling.
//!
//! While a kit service runs, its `Control.Watch` stream says what happens the
//! moment it happens, and its end (even after `kill -9`, when the kernel
//! resets the connection) says the service is going. The stream's channel
//! pings the service ([`crate::rpc::pinged_channel`]), so one that stops
//! running (suspended, hung) ends the stream within seconds and is then
//! seen unresponsive, not shown running forever. While nothing runs, the
//! state dir's file events (the spawner and the service write `service.json`,
//! the service binds and removes the socket) wake the watcher. Only the
//! short transitional states (starting, stopping) and plain services, which
//! have no Watch stream, are re-checked on a timer.
//!
//! When the status cannot be read (the state dir became unsafe, say), the
//! feed says so once, as an error, and keeps asking; the status after it is
//! news again, so a consumer that showed the error learns it has passed.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::StreamExt;

use crate::client::ServiceManager;
use crate::config::Config;
use crate::proto::control::{
    StatusUpdate, WatchRequest, control_client::ControlClient, status_update::Event,
};
use crate::status::{State, Status};

/// How often a transitional state is re-checked.
const TRANSITION_POLL: Duration = Duration::from_millis(100);
/// The safety net while stopped: file events normally come first.
const IDLE_POLL: Duration = Duration::from_secs(2);
/// Plain services cannot be watched, only asked.
const PLAIN_POLL: Duration = Duration::from_millis(500);

/// A live feed of status changes; dropping it stops the feed.
#[derive(Debug)]
pub struct StatusWatcher {
    updates: mpsc::Receiver<crate::Result<Status>>,
    task: tokio::task::JoinHandle<()>,
}

impl StatusWatcher {
    /// The next change, or `None` when the feed ended. An error says the
    /// status cannot be read right now (once per distinct failure); the feed
    /// goes on and reports the status once it can be read again.
    pub async fn next(&mut self) -> Option<crate::Result<Status>> {
        self.updates.recv().await
    }
}

impl Drop for StatusWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start watching the service `config` describes. Must be called inside a
/// tokio runtime. The first update is the current status.
pub(crate) fn watch(config: Config) -> crate::Result<StatusWatcher> {
    let manager = ServiceManager::new(config)?;
    manager.paths().create_state_dir()?;
    let (tx, updates) = mpsc::channel(64);
    let (events_tx, events) = mpsc::channel(1);
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Each look reads the record: that must not wake the watch again.
        if !event.is_ok_and(|event| is_a_read(&event.kind)) {
            let _ = events_tx.try_send(());
        }
    })
    .and_then(|mut w| {
        notify::Watcher::watch(
            &mut w,
            &manager.paths().state_dir,
            notify::RecursiveMode::NonRecursive,
        )
        .map(|()| w)
    });
    let watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("cannot watch the state dir ({e}); falling back to polling");
            None
        }
    };
    let task = tokio::spawn(async move {
        let _watcher = watcher;
        run(manager, tx, events).await;
    });
    Ok(StatusWatcher { updates, task })
}

/// Whether a file event in the state dir is only a read (an open, a read,
/// a close without writing), which changes nothing there. Each look reads
/// the record, and its events reach the watch after the look has drained
/// what it caused: counted as changes, they made every look a pair.
fn is_a_read(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(
        kind,
        notify::EventKind::Access(
            AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read)
        )
    )
}

/// The part of a status whose change is news: not uptime ticking by, nor
/// the idle deadline moving, only the service becoming idle or busy,
/// mounting and unmounting, or a warning coming or going (`/spfs` no longer
/// mounted under a service that runs on, say).
fn key(status: &Status) -> impl PartialEq + use<> {
    (
        status.state,
        status.pid,
        status.leases.clone(),
        status.idle_exit_in_secs.is_some(),
        status.mounts.clone(),
        status.warnings.clone(),
    )
}

/// What the feed last sent, so that only news is sent.
struct Sent {
    tx: mpsc::Sender<crate::Result<Status>>,
    last: Option<Status>,
    last_error: Option<String>,
}

impl Sent {
    /// Send `status` if it is news; `false` when the receiver has gone.
    async fn status(&mut self, status: Status) -> bool {
        let news = self.last.as_ref().is_none_or(|l| key(l) != key(&status));
        self.last = Some(status.clone());
        self.last_error = None;
        !news || self.tx.send(Ok(status)).await.is_ok()
    }

    /// Send `error` unless the same one was the last thing sent; what comes
    /// after it is news. `false` when the receiver has gone.
    async fn error(&mut self, error: crate::Error) -> bool {
        self.last = None;
        let message = error.to_string();
        if self.last_error.as_ref() == Some(&message) {
            return true;
        }
        self.last_error = Some(message);
        self.tx.send(Err(error)).await.is_ok()
    }
}

async fn run(
    manager: ServiceManager,
    tx: mpsc::Sender<crate::Result<Status>>,
    mut events: mpsc::Receiver<()>,
) {
    let mut sent = Sent {
        tx,
        last: None,
        last_error: None,
    };
    let mut after_stream = false;
    // How long to wait before asking again when a running service's Watch
    // stream cannot be opened or ends at once: doubled up to IDLE_POLL, so
    // a service that answers Info but not Watch is not asked in a loop.
    let mut stream_retry = TRANSITION_POLL;
    loop {
        let status = match manager.status().await {
            Ok(status) => status,
            Err(e) => {
                tracing::warn!("watch: {e}");
                if !sent.error(e).await {
                    return;
                }
                // The failed look may have opened files there too.
                while events.try_recv().is_ok() {}
                changed_within(&mut events, IDLE_POLL).await;
                continue;
            }
        };
        // A dying process closes its connections a moment before the kernel
        // frees its lock: look again before calling it unresponsive.
        if std::mem::take(&mut after_stream) && status.state == State::Unresponsive {
            tokio::time::sleep(TRANSITION_POLL).await;
            continue;
        }
        let state = status.state;
        let managed = status.managed;
        if !sent.status(status).await {
            return;
        }
        // A plain service a stop marked during our look: its event goes with
        // our own (drained next), so look again soon. Only while a stopper
        // holds spawn.lock: a mark a dead stopper left changes nothing. (Asked
        // before the drain: the probe's own event goes with it.)
        let being_stopped = state == State::Running
            && !managed
            && manager.paths().stopping().exists()
            && crate::lock::is_held(&manager.paths().spawn_lock()).unwrap_or(false);
        // Drain events that our own look may have caused.
        while events.try_recv().is_ok() {}
        match state {
            State::Running if managed => {
                after_stream = true;
                let Some(updates) = follow_stream(&manager, &mut sent, &mut events).await else {
                    return;
                };
                // A stream that delivered at least its snapshot worked; one
                // that failed at once is retried later, not at once.
                if updates > 0 {
                    stream_retry = TRANSITION_POLL;
                } else {
                    tracing::debug!("watch: the Watch stream failed; retrying in {stream_retry:?}");
                    tokio::time::sleep(stream_retry).await;
                    stream_retry = (stream_retry * 2).min(IDLE_POLL);
                }
            }
            // A stop of a plain service marks it in the state dir: that
            // file event wakes us at once, so the stopping is seen.
            State::Running => {
                let wait = if being_stopped {
                    TRANSITION_POLL
                } else {
                    PLAIN_POLL
                };
                changed_within(&mut events, wait).await;
            }
            State::Stopped | State::Conflict => {
                changed_within(&mut events, IDLE_POLL).await;
            }
            State::Starting | State::Stopping | State::Unresponsive => {
                changed_within(&mut events, TRANSITION_POLL).await;
            }
        }
    }
}

/// Wait until the state dir changes, for at most `wait`. Without a file
/// watch (it could not be set up: out of inotify instances or descriptors)
/// the channel is closed: then simply `wait`, a poll, not a spin.
async fn changed_within(events: &mut mpsc::Receiver<()>, wait: Duration) {
    let start = tokio::time::Instant::now();
    if let Ok(None) = tokio::time::timeout(wait, events.recv()).await {
        tokio::time::sleep_until(start + wait).await;
    }
}

/// Send each update of a running kit service's Watch stream until it ends
/// (or the state dir stops being ours alone). How many updates came, or
/// `None` when the receiver has gone.
async fn follow_stream(
    manager: &ServiceManager,
    sent: &mut Sent,
    events: &mut mpsc::Receiver<()>,
) -> Option<usize> {
    let mut updates = 0;
    let Some(mut stream) = open_stream(manager).await else {
        return Some(updates);
    };
    // What the last look for the mounts found, and what it warned of, for
    // the updates in between.
    let mut mounts = Vec::new();
    let mut looked_warnings = Vec::new();
    loop {
        let update = tokio::select! {
            update = stream.next() => update,
            // The state dir changed: still ours alone? If not, the stream is
            // not trusted any more than a look would be; the look after it
            // says why.
            Some(()) = events.recv() => {
                if manager.paths().check_state_dir().is_err() {
                    return Some(updates);
                }
                continue;
            }
        };
        let Some(Ok(update)) = update else {
            return Some(updates);
        };
        updates += 1;
        let Some(mut status) = status_of(manager, &update) else {
            continue;
        };
        // A kit's update carries its leases, not its mounts: ask for them
        // when they may have changed, and only then, so the asking never
        // becomes a feed of its own.
        // What a look adds after the service's own warnings, in its order:
        // another state dir's service, then the mounts'. Looked for when the
        // mounts may change, not on every update (each call moves the idle
        // deadline), and carried in between.
        if may_change_mounts(&update) {
            let before = status.warnings.len();
            status.warnings.extend(manager.elsewhere_warnings());
            manager.add_mounts(&mut status).await;
            mounts.clone_from(&status.mounts);
            looked_warnings = status.warnings[before..].to_vec();
        } else {
            status.mounts.clone_from(&mounts);
            status.warnings.extend(looked_warnings.iter().cloned());
        }
        if !sent.status(status).await {
            return None;
        }
    }
}

/// Open a running kit service's `Watch` stream, on a channel of its own
/// that pings it.
async fn open_stream(manager: &ServiceManager) -> Option<tonic::Streaming<StatusUpdate>> {
    let channel = crate::rpc::pinged_channel(manager.endpoint().clone())
        .await
        .ok()?;
    let response = ControlClient::new(channel)
        .watch(WatchRequest {})
        .await
        .ok()?;
    Some(response.into_inner())
}

/// Whether the mounts may differ after `update`: a snapshot, the service
/// becoming ready, or a lease taken or dropped (a mount holds one). The idle
/// deadline moving and the shutdown notice change no mount.
fn may_change_mounts(update: &StatusUpdate) -> bool {
    [Event::Snapshot, Event::Ready, Event::LeasesChanged]
        .into_iter()
        .any(|event| update.event == event as i32)
}

/// The status an update of the Watch stream says, with the version's
/// warning a look (`status()`) gives too, so that a status is news for what
/// changed, not for where it came from (another state dir's and the
/// mounts' are the caller's, looked for only when the mounts may change).
fn status_of(manager: &ServiceManager, update: &StatusUpdate) -> Option<Status> {
    let info = update.info.as_ref()?;
    let mut status = manager.kit_status(info, crate::sys::Instance::of(info.pid));
    if update.event == Event::ShuttingDown as i32 {
        status.detail = Some(update.detail.clone());
    }
    status.warnings.extend(manager.version_warning(&status));
    Some(status)
}
