//! The service-side kit: what a managed service embeds.
//!
//! [`Kit::start`] takes (or adopts from the spawner) `instance.lock`, binds
//! the endpoint or takes a socket handed over by launchd/systemd, and
//! [`Kit::serve`] serves `grpc.health.v1` and `spfs_autostart.v1.Control`
//! next to the service's own gRPC services, tells the spawner it is ready,
//! exits after `idle_timeout` with no lease and no call in flight, and shuts
//! down gracefully on `Control.Shutdown`, SIGTERM and SIGINT.
//!
//! The kit says what it does through `tracing` ("serving on ...", "already
//! running as pid N", refused peers, its idle exit): give the process a
//! subscriber that writes to stderr, which the spawner appends to the
//! service log, or the log says nothing of it.
//!
//! ```no_run
//! use spfs_autostart_kit::{Identity, Kit, KitConfig};
//!
//! fn main() -> spfs_autostart_kit::Result<()> {
//!     // First, before the runtime's threads exist: it edits the environment.
//!     let config = KitConfig::from_env()?;
//!     let runtime = tokio::runtime::Builder::new_current_thread()
//!         .enable_all()
//!         .build()
//!         .expect("a tokio runtime");
//!     runtime.block_on(async {
//!         let Some(kit) = Kit::start_or_defer(
//!             Identity { name: "my-service".into(), version: "1.0.0".into() },
//!             config,
//!         )?
//!         else {
//!             return Ok(()); // another instance serves: exit 0
//!         };
//!         kit.serve(|routes| routes /* .add_service(MyServer::new(..)) */).await
//!     })
//! }
//! ```

#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod config;
mod control;
mod handle;
mod in_flight;
mod lifetime;
mod listener;
mod owned;
mod quick_info;
mod shutdown;
mod signals;
mod spawner;
mod state;

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tonic::service::Routes;
use tonic::transport::Server;

use in_flight::InFlightLayer;

pub use config::KitConfig;
use control::ControlService;
pub use handle::{KitHandle, Lease};
use lifetime::Lifetime;
pub use lifetime::{Identity, LeaseError};
use listener::Listener;
use owned::Owned;
use shutdown::{Closable, ServeEnd, drained, stop_listening};
use signals::{AbortOnDrop, watch_signals};
use spawner::{start_abandoned, tell_failed, tell_failed_because};
use state::{ANOTHER, take_instance_lock, write_record, write_starting_record};

pub use spfs_autostart_protocol::ResolvedEndpoint;
use spfs_autostart_protocol::paths::Paths;
use spfs_autostart_protocol::proto::control::control_server::ControlServer;
use spfs_autostart_protocol::record::{Phase, ServiceRecord};
/// The tonic the kit serves with: [`Kit::serve`] takes its `Routes`, so a
/// service adds its own gRPC services without pinning a matching tonic.
pub use spfs_autostart_protocol::tonic;
pub use spfs_autostart_protocol::{Error, ErrorKind, Result, proto};

/// A service that holds its instance lock and its listening socket.
///
/// A kit dropped without serving (the service gave up during its set-up,
/// say on [`KitHandle::shutdown_requested`]) ends as `serve` does: the
/// spawner is told the start failed, the record says `stopping`, the socket
/// it bound goes, the lock stays held until the process exits (the
/// service's clean-up ends before a successor starts), and a second
/// SIGTERM or SIGINT still ends the process.
#[derive(Debug)]
pub struct Kit {
    lifetime: Arc<Lifetime>,
    /// What `serve` takes; `None` once it has.
    parts: Option<Parts>,
}

/// What a kit holds until it serves or is dropped.
#[derive(Debug)]
struct Parts {
    listener: Listener,
    paths: Paths,
    instance_lock: File,
    ready: Option<File>,
    /// The service's own calls that only look ([`Kit::calls_that_only_look`]).
    looks: Vec<String>,
    /// SIGTERM and SIGINT are watched from `start` on, so a signal during
    /// the service's own set-up asks for a graceful shutdown instead of
    /// killing it; watched until the process exits once the kit serves or
    /// gives up.
    signals: AbortOnDrop,
}

impl Drop for Kit {
    fn drop(&mut self) {
        if let Some(parts) = self.parts.take() {
            let reason = self
                .lifetime
                .shutdown_reason()
                .unwrap_or_else(|| "the service dropped its kit".into());
            parts.give_up(&self.lifetime, &reason);
        }
    }
}

/// The parts once the kit holds the lock and watches the signals until the
/// process exits, whether it serves or gives up.
struct Held {
    listener: Listener,
    /// What this service owns in the state dir, so that it touches only
    /// that: the dir may have been removed and made again under it (a tmp
    /// cleaner, a logout) during its set-up or later, with another service
    /// there.
    owned: Owned,
    ready: Option<File>,
    looks: Vec<String>,
}

impl Parts {
    /// Hold the lock and watch the signals until the process exits: what
    /// the service does after `serve` (unmounting, flushing) and calls its
    /// server still runs then are done before a successor may start, and a
    /// second signal still ends a clean-up that hangs. The kernel lets go of
    /// the lock at exit.
    fn hold_until_exit(self) -> Held {
        let Parts {
            listener,
            paths,
            instance_lock,
            ready,
            looks,
            signals,
        } = self;
        std::mem::forget(signals);
        let owned = Owned::now(paths, &instance_lock, listener.bound_path());
        let _ = std::os::fd::IntoRawFd::into_raw_fd(instance_lock);
        Held {
            listener,
            owned,
            ready,
            looks,
        }
    }

    /// End without serving, because of `reason`: see [`Kit`].
    fn give_up(self, lifetime: &Lifetime, reason: &str) {
        lifetime.request_shutdown(reason);
        let Held {
            listener,
            owned,
            ready,
            ..
        } = self.hold_until_exit();
        if let Some(mut ready) = ready {
            tell_failed_because(&mut ready, &format!("it stopped before serving: {reason}"));
        }
        if owned.holds_the_lock() {
            write_record(lifetime, owned.paths(), Phase::Stopping);
        }
        drop(listener);
        owned.remove_sockets();
        tracing::info!("stopped before serving: {reason}");
    }
}

impl Kit {
    /// Take the instance lock and the endpoint. Must run inside a tokio
    /// runtime. On failure the spawner is told why through the readiness
    /// pipe, so `ensure` reports this error instead of a timeout.
    ///
    /// Once per process: the lock is held until the process exits (see
    /// [`Kit::serve`]), so a second `start` in the same process finds it
    /// held, as by another instance.
    pub fn start(identity: Identity, config: KitConfig) -> Result<Kit> {
        let KitConfig {
            state_dir,
            endpoint,
            idle_timeout,
            ready_fd,
            lock_fd,
        } = config;
        let mut ready = ready_fd.map(File::from);
        let result = Kit::acquire(identity, state_dir, endpoint, idle_timeout, lock_fd);
        match result {
            Ok(mut kit) => {
                if let Some(parts) = kit.parts.as_mut() {
                    parts.ready = ready.take();
                }
                Ok(kit)
            }
            Err(e) => {
                if let Some(ready) = ready.as_mut() {
                    tell_failed(ready, &e);
                }
                Err(e)
            }
        }
    }

    /// [`Kit::start`], except that another instance already serving this
    /// state dir is not an error: it logs "already running as pid N" and
    /// gives `None`, and the service should exit with status 0. This is what
    /// a launchd or systemd job meets after an on-demand start: exiting 0
    /// keeps `KeepAlive.SuccessfulExit=false` and `Restart=on-failure` from
    /// relaunching it in a loop.
    ///
    /// The lock held while the record names no live process is no running
    /// service but processes a dead one left holding it: an error then, so
    /// the job is relaunched (and succeeds once they are gone) instead of
    /// leaving nothing to serve.
    pub fn start_or_defer(identity: Identity, config: KitConfig) -> Result<Option<Kit>> {
        let paths = spfs_autostart_protocol::paths::Paths {
            state_dir: config.state_dir.clone(),
            log_dir: PathBuf::new(),
        };
        match Kit::start(identity, config) {
            Ok(kit) => Ok(Some(kit)),
            Err(e)
                if e.kind() == ErrorKind::EndpointConflict && e.message().starts_with(ANOTHER) =>
            {
                let Some(running) =
                    ServiceRecord::read(&paths.record()).filter(ServiceRecord::process_matches)
                else {
                    let lock = paths.instance_lock();
                    return Err(Error::new(
                        ErrorKind::EndpointConflict,
                        format!(
                            "{} is held, but no running service is recorded in {}: most \
                             likely by processes a dead service left behind. Find them with \
                             `fuser {word}` (macOS: `lsof {word}`) and end them; `ensure` \
                             replaces such a lock",
                            lock.display(),
                            paths.record().display(),
                            word = spfs_autostart_protocol::shell::word(&lock)
                        ),
                    ));
                };
                tracing::info!(
                    "already running as pid {}; this instance exits",
                    running.pid
                );
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn acquire(
        identity: Identity,
        state_dir: PathBuf,
        endpoint: ResolvedEndpoint,
        idle_timeout: Duration,
        lock_fd: Option<OwnedFd>,
    ) -> Result<Kit> {
        let paths = Paths {
            state_dir,
            log_dir: PathBuf::new(),
        };
        paths.check_endpoint(&endpoint)?;
        paths.create_state_dir()?;
        let instance_lock = take_instance_lock(&paths, lock_fd)?;
        if start_abandoned(&paths) {
            return Err(Error::new(
                ErrorKind::SpawnFailed,
                "the start of this service was abandoned (its caller was interrupted) \
                 before it served; it ends instead",
            ));
        }
        // A socket launchd or systemd handed over, before any record: one
        // it refuses leaves the last record, which says the service is
        // socket-activated, so a look does not connect there (and start
        // this failing service again).
        let activated = listener::activated()?;
        // Say at once who holds the lock, so nobody takes a record of a
        // dead predecessor as the truth about it; with the activator's
        // socket, so that a look after a set-up that died there does not
        // connect either.
        let activated_at = activated.as_ref().map(|l| listens_at(l, &endpoint));
        write_starting_record(&paths, &identity.version, activated_at.as_deref());
        let listener = match activated {
            Some(listener) => listener,
            None => listener::bind(&endpoint)?,
        };
        let endpoint_text = listens_at(&listener, &endpoint);
        let lifetime = Lifetime::new(identity, endpoint_text, listener.activated(), idle_timeout);
        let signals = watch_signals(lifetime.clone());
        Ok(Kit {
            lifetime,
            parts: Some(Parts {
                listener,
                paths,
                instance_lock,
                ready: None,
                looks: Vec::new(),
                signals,
            }),
        })
    }

    /// A handle for the service's own handlers.
    pub fn handle(&self) -> KitHandle {
        KitHandle(self.lifetime.clone())
    }

    /// Name the service's own calls that only look at it, as a UI polls:
    /// gRPC paths (`/package.Service/Method`, or `/package.Service/` for a
    /// whole service). Like `Info`, `Watch`, health and
    /// `VfsService/Status`, they neither keep the service up nor restart its
    /// idle clock; every other call does, while it runs.
    pub fn calls_that_only_look<I, P>(mut self, paths: I) -> Kit
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        if let Some(parts) = self.parts.as_mut() {
            parts.looks.extend(paths.into_iter().map(Into::into));
        }
        self
    }

    /// Serve until shutdown: health and Control plus whatever `add` adds.
    ///
    /// From its start the instance lock is held until the process exits,
    /// also when `serve` returns or is dropped: the service's clean-up
    /// after it (unmounting, say) ends before a successor can start, so the
    /// service should exit once that is done.
    ///
    /// Asked to shut down before it began (a signal during the set-up), it
    /// does not begin: the kit ends as a dropped one does (see [`Kit`]) and
    /// `serve` returns `Ok`.
    pub async fn serve(mut self, add: impl FnOnce(Routes) -> Routes) -> Result<()> {
        let lifetime = self.lifetime.clone();
        let Some(parts) = self.parts.take() else {
            unreachable!("only serve takes the parts, and it takes the kit");
        };
        let abandoned = || {
            start_abandoned(&parts.paths)
                .then(|| "its start was abandoned (its caller was interrupted)".to_string())
        };
        if let Some(reason) = lifetime.shutdown_reason().or_else(abandoned) {
            parts.give_up(&lifetime, &reason);
            return Ok(());
        }
        let Held {
            listener,
            owned,
            ready,
            looks,
        } = parts.hold_until_exit();
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        let control = ControlServer::new(ControlService::new(lifetime.clone()));
        let routes = add(Routes::new(health).add_service(control));
        if owned.holds_the_lock() {
            write_record(&lifetime, owned.paths(), Phase::Running);
        }
        // The quick look, answered from now on (connections wait in its
        // backlog until its task runs, after the server's).
        let (owned, quick) = quick_info::bind(owned);
        // However `serve` ends, also dropped by its caller.
        let end = ServeEnd {
            lifetime: lifetime.clone(),
            owned: owned.clone(),
        };
        let (incoming, listening) = Closable::new(listener::incoming(listener));
        let _idle_timer =
            AbortOnDrop(tokio::spawn(lifetime.clone().run_idle_timer()).abort_handle());
        let _state_dir_watch = AbortOnDrop(
            tokio::spawn(owned.clone().watch(lifetime.clone(), owned::CHECK_EVERY)).abort_handle(),
        );
        let shutdown = stop_listening(lifetime.clone(), owned, listening, health_reporter);
        // Spawned, not polled here: the accept loop then runs on the
        // worker that saw the connection, and each new client (every fresh
        // `ensure`) is answered without first waking the thread that
        // called `serve` (about 0.1 ms of a fresh `ensure`, bench row 1b').
        // A `serve` its caller drops (a `select!` in the service) aborts it.
        let mut server = tokio::spawn(
            Server::builder()
                .layer(InFlightLayer::new(lifetime.clone(), looks))
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, shutdown),
        );
        let _stop_with_serve = AbortOnDrop(server.abort_handle());
        let _quick = quick.map(|look| look.start(lifetime.clone()));
        // The listener is bound and the server is about to accept, so
        // connections made from now on are answered. Logged first: once
        // the spawner's `ensure` returns, the log says so (a `logs` right
        // after shows it, and nothing is added to the log behind its back).
        tracing::info!("serving on {}", lifetime.info().endpoint);
        if let Some(mut ready) = ready {
            // One write, so the spawner never sees half a line (it copes
            // with that too).
            let line = spfs_autostart_protocol::readiness::ready_line(std::process::id());
            let _ = ready.write_all(line.as_bytes());
        }
        lifetime.ready();
        let result = tokio::select! {
            joined = &mut server => match joined {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Cancelled: the runtime is shutting down under it.
                Err(e) => Err(e.to_string()),
            },
            // The server ends once every connection has closed, which a
            // watcher's stream (health's, or Control's) never does by
            // itself: once the calls that do work have finished and their
            // answers have had a moment to go out, nothing is left to wait
            // for. At most the drain limit either way.
            () = drained(&lifetime) => {
                // Its listener is gone before the socket file is removed,
                // as when it ends by itself.
                server.abort();
                let _ = server.await;
                Ok(())
            }
        };
        drop(end);
        tracing::info!("stopped");
        result.map_err(|e| Error::new(ErrorKind::Io, format!("the gRPC server failed: {e}")))
    }
}

/// Where `listener` listens, as an endpoint: a socket launchd or systemd
/// handed over may be elsewhere than the configured `endpoint`, even TCP.
fn listens_at(listener: &Listener, endpoint: &ResolvedEndpoint) -> String {
    match listener {
        Listener::Unix {
            path: Some(path), ..
        } => format!("unix://{}", path.display()),
        Listener::Tcp { listener, .. } => match listener.local_addr() {
            Ok(addr) => ResolvedEndpoint::Tcp(addr).to_string(),
            Err(_) => endpoint.to_string(),
        },
        Listener::Unix { path: None, .. } => endpoint.to_string(),
    }
}
