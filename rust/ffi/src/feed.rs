//! Feeding a foreign observer (`watch`, `follow_logs`) safely.
//!
//! Each feed has two halves: a task on the library's runtime that produces
//! events, and one thread of its own that hands them to the observer. The
//! foreign code therefore never runs on a runtime worker or in tokio's
//! blocking pool, so observers that block do not delay other calls, however
//! many there are; the cost of a feed is that one thread (plus the channel
//! between the halves and what the producer holds: the status watch's
//! connection, or the log follower's file and file-system watch).
//!
//! A [`Gate`] between the halves gives the guarantees the handle documents:
//! no call starts after `cancel()` has returned (it waits for a call in
//! progress, unless it is made from inside that call), and no call starts
//! once the host is exiting ([`stop_all`]).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::process::OncePerProcess;
use crate::runtime::{runtime, this_process};

/// How many events may wait for a slow observer before the producer waits.
const QUEUE: usize = 256;

/// Set once the host is exiting: no observer is called any more.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Every feed of this process that may still call its observer, for
/// [`stop_all`]. Per process: a parent thread may hold the parent's list at
/// a fork, and a child never gets that lock back.
static LIVE: OncePerProcess<Mutex<Vec<Weak<Gate>>>> = OncePerProcess::new();

/// This process's [`LIVE`] list, locked.
fn live() -> MutexGuard<'static, Vec<Weak<Gate>>> {
    LIVE.get(Mutex::default, drop)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Whether the observer may be called, and which thread is calling it now.
#[derive(Debug)]
pub(crate) struct Gate {
    /// The process whose thread feeds the observer: after `fork()` the
    /// child has no such thread, so it never waits for one.
    pid: u32,
    state: Mutex<GateState>,
    idle: Condvar,
    task: OnceLock<AbortHandle>,
}

#[derive(Debug, Default)]
struct GateState {
    cancelled: bool,
    in_call: Option<ThreadId>,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        // The lock is never held while foreign code runs, so poisoning can
        // only come from a bug here; the state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `call` unless the feed is cancelled or the host is exiting;
    /// `false` when it was not run (the feed is over).
    fn deliver(&self, call: impl FnOnce()) -> bool {
        {
            let mut state = self.lock();
            if state.cancelled || EXITING.load(Ordering::Acquire) {
                return false;
            }
            state.in_call = Some(std::thread::current().id());
        }
        // A panic (a bug) must not leave `in_call` set, or cancel() would
        // wait forever; it ends the feed instead.
        let ok = catch_unwind(AssertUnwindSafe(call)).is_ok();
        let mut state = self.lock();
        state.in_call = None;
        self.idle.notify_all();
        ok && !state.cancelled
    }

    /// Drop `value` (which holds a foreign observer) as a gated call; once
    /// the host is exiting it is leaked instead, because freeing it would
    /// call into a finalizing interpreter.
    fn release<T>(&self, value: T) {
        {
            let mut state = self.lock();
            if EXITING.load(Ordering::Acquire) {
                std::mem::forget(value);
                return;
            }
            state.in_call = Some(std::thread::current().id());
        }
        let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
        let mut state = self.lock();
        state.in_call = None;
        self.idle.notify_all();
    }

    /// Stop the feed; return once no call is in progress (or at
    /// `deadline`; one already past stops it without waiting). Called from
    /// inside the observer's own call, it does not wait for that call.
    /// In a child after `fork()` it does nothing: the feed's thread and the
    /// runtime's workers stayed in the parent, so there is nothing to stop,
    /// and aborting the task would take the runtime's queue lock, which a
    /// parent worker may have held at the fork (the child then hung).
    pub(crate) fn cancel(&self, deadline: Option<Instant>) {
        if self.pid != this_process() {
            return;
        }
        if let Some(task) = self.task.get() {
            task.abort();
        }
        let me = std::thread::current().id();
        let mut state = self.lock();
        state.cancelled = true;
        while let Some(caller) = state.in_call {
            if caller == me {
                break;
            }
            state = match deadline {
                None => self.idle.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.idle
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

/// Start a feed: `produce` runs on the runtime and sends events until the
/// channel closes; `consume` is called with each, on the feed's own thread,
/// and returns `false` to end the feed. Fails, with nothing started, when
/// the feed's thread cannot be had (the process is out of threads or
/// memory).
pub(crate) fn start<E, F>(
    produce: impl FnOnce(mpsc::Sender<E>) -> F,
    mut consume: impl FnMut(E) -> bool + Send + 'static,
) -> std::io::Result<Arc<Gate>>
where
    E: Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let gate = Arc::new(Gate {
        pid: this_process(),
        state: Mutex::default(),
        idle: Condvar::new(),
        task: OnceLock::new(),
    });
    let feed = gate.clone();
    // The thread first: the producer starts only once someone will take
    // its events.
    std::thread::Builder::new()
        .name("spfs-autostart-feed".into())
        .spawn(move || {
            while let Some(event) = rx.blocking_recv() {
                let mut go_on = true;
                if !feed.deliver(|| go_on = consume(event)) || !go_on {
                    break;
                }
            }
            // Dropping `rx` ends the producer at its next send.
            if let Some(task) = feed.task.get() {
                task.abort();
            }
            // Dropping the observer calls into the host too (it frees its
            // side of the object), so it is gated like a call.
            feed.release(consume);
        })?;
    let task = runtime().spawn(produce(tx));
    let _ = gate.task.set(task.abort_handle());
    {
        let mut live = live();
        live.retain(|g| g.strong_count() > 0);
        live.push(Arc::downgrade(&gate));
    }
    Ok(gate)
}

/// Stop every feed of this process and wait, up to `grace` in all, for
/// observer calls and wakes of the host's executor in progress; no observer
/// is called and no async call wakes the host afterwards.
pub(crate) fn stop_all(grace: Duration) {
    EXITING.store(true, Ordering::Release);
    let deadline = Instant::now() + grace;
    let live = std::mem::take(&mut *live());
    for gate in live.iter().filter_map(Weak::upgrade) {
        gate.cancel(Some(deadline));
    }
    crate::wake::close(deadline);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child forked while a thread of its parent holds the list of feeds
    /// (here the forking thread itself, so the child inherits the lock
    /// held) stops its own feeds: it never waits for the parent's lock.
    #[test]
    fn a_child_forked_while_the_feed_list_is_held_can_stop_its_feeds() {
        let held = live();
        // SAFETY: the child only runs `stop_all` (its own locks and
        // allocations; glibc's malloc is fork-safe) and `_exit`s.
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork: {}", std::io::Error::last_os_error());
        if child == 0 {
            let stopped = catch_unwind(|| stop_all(Duration::from_millis(100)));
            // SAFETY: ends the child at once, running nothing of the parent's.
            unsafe { libc::_exit(if stopped.is_ok() { 0 } else { 1 }) };
        }
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut status = 0;
        // SAFETY: waitpid on our own child, with a valid status pointer.
        while unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) } == 0 {
            if Instant::now() > deadline {
                // SAFETY: our child, still unreaped.
                unsafe {
                    libc::kill(child, libc::SIGKILL);
                    libc::waitpid(child, &mut status, 0);
                }
                panic!("the child hung on the list its parent held");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status:#x}"
        );
    }

    /// A process out of room for one more thread gets an error from
    /// `start`, not a panic (which a Swift caller's `try!` turned into a
    /// crash). Run in a forked child whose address space is capped.
    #[test]
    fn a_feed_without_a_thread_is_an_error() {
        // SAFETY: the child runs only our code (its own runtime, threads and
        // allocations; glibc's malloc is fork-safe) and `_exit`s.
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork: {}", std::io::Error::last_os_error());
        if child == 0 {
            let _ = runtime();
            let vm: u64 = std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("VmSize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap();
            let cap = libc::rlimit {
                rlim_cur: (vm + 16 * 1024) * 1024,
                rlim_max: libc::RLIM_INFINITY,
            };
            // SAFETY: a valid rlimit for this process.
            unsafe { libc::setrlimit(libc::RLIMIT_AS, &cap) };
            let outcome = catch_unwind(|| {
                let mut feeds = Vec::new();
                for _ in 0..1000 {
                    match start(
                        |tx: mpsc::Sender<()>| async move {
                            std::future::pending::<()>().await;
                            drop(tx);
                        },
                        |()| true,
                    ) {
                        Ok(gate) => feeds.push(gate),
                        Err(_) => return feeds.len(),
                    }
                }
                usize::MAX
            });
            let code = match outcome {
                Ok(n) if n < 1000 => 0,
                Ok(_) => 2,
                Err(_) => 1,
            };
            // SAFETY: ends the child at once, running nothing of the parent's.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child, with a valid status pointer.
        unsafe { libc::waitpid(child, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "the child died: {status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "1: start panicked; 2: no start failed under the cap"
        );
    }

    /// A gate as a child process sees one it inherited: made by another
    /// process (its pid), its state lock held at the fork by a thread that
    /// does not exist in the child, and its producer on a runtime whose
    /// workers stayed in the parent.
    #[test]
    fn cancelling_an_inherited_feed_touches_neither_its_lock_nor_its_task() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let task = rt.spawn(std::future::pending::<()>());
        let gate = Arc::new(Gate {
            pid: this_process().wrapping_add(1),
            state: Mutex::default(),
            idle: Condvar::new(),
            task: OnceLock::new(),
        });
        let _ = gate.task.set(task.abort_handle());
        let held = gate.lock();
        let (done, cancelled) = std::sync::mpsc::channel();
        let inherited = gate.clone();
        std::thread::spawn(move || {
            inherited.cancel(None);
            let _ = done.send(());
        });
        // A cancel that took the lock would wait for it forever.
        cancelled
            .recv_timeout(Duration::from_secs(20))
            .expect("cancel returns without the lock");
        drop(held);
        // An abort would end the task at the runtime's next turn.
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(10)).await });
        assert!(!task.is_finished(), "the parent's task is not aborted");
        assert!(!gate.lock().cancelled, "nothing of the gate was touched");
    }
}
