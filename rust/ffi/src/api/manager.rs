//! `ServiceManager`: the object the bindings call, holding the core's
//! manager and delegating to it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};

use super::feeds::report;
use super::{
    DoctorReport, Lease, LogObserver, ServiceConfig, ServiceError, ServiceStatus, StatusObserver,
    StopOutcome, StopReport, TaskHandle,
};
use crate::feed;
use crate::process::PerProcess;
use crate::runtime::{runtime, this_process};
use crate::wake::HostWaking;

/// Run a core future on the library's runtime, so the foreign side may poll
/// the result from any executor; a panic becomes an `Internal` failure.
///
/// Dropping the call's future (Python's `task.cancel()` does) aborts the
/// core future too, so it is cancelled as the core documents: an `ensure`
/// kills the service it was starting and lets go of `spawn.lock`. (Swift's
/// generated code frees the future only once it completes, so a Swift
/// task's cancellation does not reach it.) The host is woken through
/// [`HostWaking`], never once it is exiting; a call made after that is
/// refused at once rather than left pending forever.
async fn on_runtime<T, F>(future: F) -> Result<T, ServiceError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, spfs_autostart_core::Error>> + Send + 'static,
{
    if crate::wake::closed() {
        return Err(ServiceError::internal(
            "spfs-autostart: the library was shut down for the process's exit \
             (stop_all_feeds) and takes no more calls"
                .into(),
        ));
    }
    match HostWaking::new(AbortOnDrop::new(runtime().spawn(future))).await {
        Ok(result) => result.map_err(ServiceError::from),
        Err(e) => Err(ServiceError::internal(format!(
            "spfs-autostart: internal error ({e}); please report it"
        ))),
    }
}

/// A task that is aborted when its handle is dropped before it finished
/// (tokio's `JoinHandle` only detaches it). In a child after `fork()` it is
/// left alone: the task is the parent's, on a runtime whose threads the
/// child does not have, and whose locks one of them may have held at the
/// fork (aborting it there hung the child).
#[derive(Debug)]
struct AbortOnDrop<T> {
    task: std::mem::ManuallyDrop<JoinHandle<T>>,
    process: u32,
}

impl<T> AbortOnDrop<T> {
    fn new(task: JoinHandle<T>) -> AbortOnDrop<T> {
        AbortOnDrop {
            task: std::mem::ManuallyDrop::new(task),
            process: this_process(),
        }
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut *self.task).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if self.process != this_process() {
            // Leaked: nothing of the parent's runtime is touched.
            return;
        }
        // A no-op for a task that has finished.
        self.task.abort();
        // SAFETY: dropped once, here, and never used again.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.task) };
    }
}

/// Manages one service: start it on demand, stop it, report its status and
/// read its logs. Usable in a child after `fork()`: the child gets its own
/// connections on first use.
#[derive(Debug, uniffi::Object)]
pub struct ServiceManager {
    core: PerProcess,
    /// The service's log file, known from the config: in every process,
    /// whatever becomes of its connections.
    log_file: String,
}

impl ServiceManager {
    fn core(&self) -> Result<Arc<spfs_autostart_core::ServiceManager>, ServiceError> {
        Ok(self.core.get()?)
    }
}

#[uniffi::export]
impl ServiceManager {
    /// A manager for `config`: the config file (or the usual lookup), then
    /// every field that is set, validated as the file and the environment
    /// are. Touches nothing on disk but the config file.
    #[uniffi::constructor]
    pub fn new(config: ServiceConfig) -> Result<Arc<Self>, ServiceError> {
        let core = PerProcess::new(config.to_core()?)?;
        let log_file = core.get()?.paths().log_file();
        Ok(Arc::new(ServiceManager {
            core,
            log_file: log_file.to_string_lossy().into_owned(),
        }))
    }

    /// A manager for the usual configuration (file, then environment).
    #[uniffi::constructor]
    pub fn with_defaults() -> Result<Arc<Self>, ServiceError> {
        Self::new(ServiceConfig::default())
    }

    /// Make sure the service runs, starting it if needed; its status once it
    /// answers. Exactly one service starts however many callers race.
    pub async fn ensure(&self) -> Result<ServiceStatus, ServiceError> {
        let core = self.core()?;
        on_runtime(async move { core.ensure().await })
            .await
            .map(ServiceStatus::from)
    }

    /// Stop the service: its stop sequence, graceful first, SIGKILL last.
    pub async fn stop(&self) -> Result<StopOutcome, ServiceError> {
        Ok(self.stop_report().await?.outcome)
    }

    /// Stop the service, as `stop`, and say how it ended: which step ended
    /// it (a service that had to be terminated or killed may have left
    /// things behind: spfs-fuse-macos its mount) and its pid.
    pub async fn stop_report(&self) -> Result<StopReport, ServiceError> {
        let core = self.core()?;
        on_runtime(async move { core.stop().await })
            .await
            .map(StopReport::from)
    }

    /// The service's status, without starting it.
    pub async fn status(&self) -> Result<ServiceStatus, ServiceError> {
        let core = self.core()?;
        on_runtime(async move { core.status().await })
            .await
            .map(ServiceStatus::from)
    }

    /// Check everything a user would otherwise debug by hand (as
    /// `spfs-autostart doctor` does): each finding with its fix. It only
    /// looks: nothing is started, stopped or changed.
    pub async fn doctor(&self) -> Result<DoctorReport, ServiceError> {
        let core = self.core()?;
        on_runtime(async move {
            Ok::<_, spfs_autostart_core::Error>(spfs_autostart_core::doctor::diagnose(&core).await)
        })
        .await
        .map(DoctorReport::from)
    }

    /// The last `n` lines of the service log, oldest first; at most its
    /// last 4 MiB are read, however large `n` is.
    pub fn tail_logs(&self, n: u32) -> Result<Vec<String>, ServiceError> {
        Ok(self.core()?.tail_logs(n as usize)?)
    }

    /// The service's log file (from the config; it may not exist yet).
    pub fn log_file(&self) -> String {
        self.log_file.clone()
    }

    /// Feed `observer` the current status, then each change of what it says
    /// (the state, the pid, the leases, the mounts, the warnings, the service
    /// becoming idle or busy), until the returned handle is cancelled or dropped. Creates
    /// the state dir (`0700`) when it is missing: it must exist to be watched.
    /// When the state dir cannot be watched (it is unsafe, say), `on_error`
    /// says why and the feed ends; when the status cannot be read for a
    /// while, `on_error` says why (once) and the feed goes on, with the status
    /// once it can be read again.
    ///
    /// Fails (`Io`) only when the feed's thread cannot be started.
    pub fn watch(
        &self,
        observer: Arc<dyn StatusObserver>,
    ) -> Result<Arc<TaskHandle>, ServiceError> {
        let core = self.core();
        let gate = feed::start(
            move |tx: mpsc::Sender<Result<ServiceStatus, Failed>>| async move {
                let mut watcher = match core.and_then(|core| Ok(core.watch()?)) {
                    Ok(watcher) => watcher,
                    Err(e) => {
                        let _ = tx.send(Err(Failed::Start(e.to_string()))).await;
                        return;
                    }
                };
                while let Some(update) = watcher.next().await {
                    let update = update
                        .map(ServiceStatus::from)
                        .map_err(|e| Failed::Status(e.to_string()));
                    if tx.send(update).await.is_err() {
                        return;
                    }
                }
            },
            move |event| match event {
                Ok(status) => report(observer.on_status(status), |message| {
                    observer.on_error(message).is_ok()
                }),
                // The status cannot be read for now: said, and the feed goes on.
                Err(Failed::Status(message)) => observer.on_error(message).is_ok(),
                // The feed could not start: report it and end.
                Err(Failed::Start(message)) => {
                    let _ = observer.on_error(message);
                    false
                }
            },
        )
        .map_err(no_feed_thread)?;
        Ok(Arc::new(TaskHandle { gate }))
    }

    /// Feed `observer` the log's last `backlog` lines (read as `tail_logs`
    /// reads them), then every line appended to it from now on, across
    /// rotation, until the returned handle is cancelled or dropped: no line
    /// is lost or given twice between the two.
    ///
    /// Fails (`Io`) only when the feed's thread cannot be started.
    pub fn follow_logs(
        &self,
        observer: Arc<dyn LogObserver>,
        backlog: u32,
    ) -> Result<Arc<TaskHandle>, ServiceError> {
        // Where following starts is fixed before this returns (the follower
        // opens the log here, not later on the runtime), so a line appended
        // right after the call is followed, not lost.
        let follower = self
            .core()
            .and_then(|core| Ok(core.follow_logs(backlog as usize)?));
        let gate = feed::start(
            move |tx: mpsc::Sender<Result<String, String>>| async move {
                let mut follower = match follower {
                    Ok(follower) => follower,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string())).await;
                        return;
                    }
                };
                while let Some(line) = follower.next().await {
                    if tx.send(line.map_err(|e| e.to_string())).await.is_err() {
                        return;
                    }
                }
            },
            move |event| match event {
                Ok(line) => report(observer.on_line(line), |message| {
                    observer.on_error(message).is_ok()
                }),
                Err(message) => observer.on_error(message).is_ok(),
            },
        )
        .map_err(no_feed_thread)?;
        Ok(Arc::new(TaskHandle { gate }))
    }

    /// Take a lease: the service stays up while process `pid` lives. Starts
    /// the service first when it is not running, as `ensure` does.
    pub async fn acquire(&self, pid: u32, label: String) -> Result<Lease, ServiceError> {
        let core = self.core()?;
        on_runtime(async move { core.acquire(pid, &label).await })
            .await
            .map(Lease::from)
    }

    /// Give a lease back; `false` when the service did not hold it.
    pub async fn release(&self, lease_id: u64) -> Result<bool, ServiceError> {
        let core = self.core()?;
        on_runtime(async move { core.release(lease_id).await }).await
    }
}

/// The library's version (the Cargo package version).
#[uniffi::export]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Why a `watch` feed has no status to pass on.
enum Failed {
    /// It could not start: said, and the feed ends.
    Start(String),
    /// The status cannot be read for now: said, and the feed goes on.
    Status(String),
}

/// The error of a feed whose thread could not be started.
fn no_feed_thread(e: std::io::Error) -> ServiceError {
    spfs_autostart_core::Error::new(
        spfs_autostart_core::ErrorKind::Io,
        format!(
            "cannot start a thread to feed the observer: {e}; each watch or follow_logs feed \
             has one, so cancel the feeds no longer needed"
        ),
    )
    .into()
}
