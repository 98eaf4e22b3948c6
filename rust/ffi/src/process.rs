//! State per process, so what was made before `fork()` is never used in
//! the child: a core manager per handle ([`PerProcess`]), and the library's
//! process-wide values ([`OncePerProcess`]: the runtime, the wake gate).
//!
//! The core's manager caches a gRPC channel whose connection task lives on
//! the runtime that made it. After `fork()` that runtime has no threads in
//! the child (see [`crate::runtime`]), so the inherited channel would wait
//! forever; and dropping it would deregister descriptors from the epoll the
//! child shares with its parent. So each handle keeps its configuration and
//! builds a fresh core manager the first time it is used in a new process,
//! leaking (never dropping) the one it inherited.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};

use spfs_autostart_core::{Config, ServiceManager};

use crate::runtime::{on_a_thread_of_its_own, this_process};

/// A value made on first use in each process and never freed: the
/// library's runtime, the host's wake gate. A child after `fork()` makes
/// its own on first use and leaves the parent's alone (still reachable, so
/// a leak checker does not call it lost): its threads are not in the child,
/// and a lock one of them held at the fork stays held.
#[derive(Debug)]
pub(crate) struct OncePerProcess<T> {
    current: AtomicPtr<Tagged<T>>,
}

/// A value and the process that made it.
#[derive(Debug)]
struct Tagged<T> {
    pid: u32,
    value: T,
    /// The parent's, if any: kept reachable, never used or dropped.
    _inherited: *const Tagged<T>,
}

// SAFETY: `_inherited` is only stored, never dereferenced; the values
// shared between threads are `T`s, which are Send and Sync.
unsafe impl<T: Send + Sync> Sync for OncePerProcess<T> {}

impl<T> OncePerProcess<T> {
    pub(crate) const fn new() -> OncePerProcess<T> {
        OncePerProcess {
            current: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// This process's value, made with `make` on first use. Threads that
    /// race may each make one: the first installed wins, and the others'
    /// go to `discard`.
    pub(crate) fn get(
        &'static self,
        make: impl FnOnce() -> T,
        discard: impl FnOnce(T),
    ) -> &'static T {
        let pid = this_process();
        let current = self.current.load(Ordering::Acquire);
        // SAFETY: a non-null pointer came from `Box::leak` below and is
        // never freed, so it is valid for 'static.
        if let Some(tagged) = unsafe { current.as_ref() }
            && tagged.pid == pid
        {
            return &tagged.value;
        }
        let fresh: &'static mut Tagged<T> = Box::leak(Box::new(Tagged {
            pid,
            value: make(),
            _inherited: current,
        }));
        match self
            .current
            .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => &fresh.value,
            Err(winner) => {
                // SAFETY: ours was never shared (the exchange failed), so it
                // is freed once, here.
                discard(unsafe { Box::from_raw(fresh as *mut Tagged<T>) }.value);
                // SAFETY: as above, a leaked, never-freed value.
                let winner = unsafe { &*winner };
                debug_assert_eq!(winner.pid, pid);
                &winner.value
            }
        }
    }
}

/// Managers inherited through `fork()`, kept (never dropped) so they stay
/// reachable: a leak checker in the child then sees no lost memory. Per
/// process, as its lock may be held by a parent thread at a fork.
static INHERITED: OncePerProcess<Mutex<Vec<Inherited>>> = OncePerProcess::new();

/// Keep `slot`, made in another process, reachable for good.
fn keep_inherited(slot: *mut Slot) {
    INHERITED
        .get(Mutex::default, drop)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Inherited(slot));
}

/// A slot made in another process.
struct Inherited(#[allow(dead_code)] *mut Slot); // kept, never read

// SAFETY: the pointer is only stored, never dereferenced.
unsafe impl Send for Inherited {}

/// A core manager and the process it was made in.
struct Slot {
    pid: u32,
    manager: Arc<ServiceManager>,
}

/// The core manager of one FFI handle, rebuilt once per process.
#[derive(Debug)]
pub(crate) struct PerProcess {
    config: Config,
    current: AtomicPtr<Slot>,
}

impl PerProcess {
    /// A manager for `config` in this process.
    pub(crate) fn new(config: Config) -> spfs_autostart_core::Result<Self> {
        let manager = Arc::new(ServiceManager::new(config.clone())?);
        let slot = Box::new(Slot {
            pid: this_process(),
            manager,
        });
        Ok(PerProcess {
            config,
            current: AtomicPtr::new(Box::into_raw(slot)),
        })
    }

    /// The core manager for the calling process.
    pub(crate) fn get(&self) -> spfs_autostart_core::Result<Arc<ServiceManager>> {
        let pid = this_process();
        let current = self.current.load(Ordering::Acquire);
        // SAFETY: `current` is never null (set in `new`) and a slot is freed
        // only by `drop`, which has `&mut self`.
        let slot = unsafe { &*current };
        if slot.pid == pid {
            return Ok(slot.manager.clone());
        }
        // Built on a thread of its own: the caller may be a C thread with a
        // small stack (the parent's calls only wait on theirs), and building
        // a manager takes more than the wait does.
        // (The manager comes back in its `Arc`: by value it is big enough
        // to overflow a 16 KiB stack on its way.)
        let manager =
            on_a_thread_of_its_own(|| ServiceManager::new(self.config.clone()).map(Arc::new))?;
        let fresh = Box::into_raw(Box::new(Slot { pid, manager }));
        match self
            .current
            .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(inherited) => {
                // Leaked on purpose: see the module docs.
                keep_inherited(inherited);
                // SAFETY: `fresh` was just installed and is freed only by
                // `drop`.
                Ok(unsafe { &*fresh }.manager.clone())
            }
            Err(winner) => {
                // SAFETY: `fresh` lost the race, so only we know it; it was
                // made in this process, so dropping it is safe.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: as for `current` above.
                Ok(unsafe { &*winner }.manager.clone())
            }
        }
    }
}

impl Drop for PerProcess {
    fn drop(&mut self) {
        let current = *self.current.get_mut();
        // SAFETY: the pointer came from `Box::into_raw` and nothing else
        // frees it; `&mut self` means no other thread uses it.
        let slot = unsafe { Box::from_raw(current) };
        if slot.pid != this_process() {
            // Made in the parent: its channel must not be dropped here.
            keep_inherited(Box::into_raw(slot));
        }
    }
}
