//! A core manager per process, so a manager made before `fork()` works in
//! the child.
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

use crate::runtime::this_process;

/// Managers inherited through `fork()`, kept (never dropped) so they stay
/// reachable: a leak checker in the child then sees no lost memory.
static INHERITED: Mutex<Vec<Inherited>> = Mutex::new(Vec::new());

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
        let fresh = Box::into_raw(Box::new(Slot {
            pid,
            manager: Arc::new(ServiceManager::new(self.config.clone())?),
        }));
        match self
            .current
            .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(inherited) => {
                // Leaked on purpose: see the module docs.
                INHERITED
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Inherited(inherited));
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
            let slot = Box::into_raw(slot);
            INHERITED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Inherited(slot));
        }
    }
}
