//! Ctrl-C, SIGTERM and SIGHUP while a command runs: caught, so that the
//! command's future is dropped (and a start it was making is ended) instead
//! of the process dying with the service half-started.

/// SIGINT, SIGTERM and SIGHUP, caught from [`Interrupts::install`] on;
/// `None` when the handlers could not be installed (the default actions
/// then stand).
pub(crate) struct Interrupts(Option<Caught>);

struct Caught {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Catch the three signals from now on. Needs the runtime's context.
    pub(crate) fn install() -> Interrupts {
        use tokio::signal::unix::{SignalKind, signal};
        let caught = || {
            Some(Caught {
                int: signal(SignalKind::interrupt()).ok()?,
                term: signal(SignalKind::terminate()).ok()?,
                hup: signal(SignalKind::hangup()).ok()?,
            })
        };
        Interrupts(caught())
    }

    /// The shell's exit code (128 + the signal number) for the next of
    /// them; never, without handlers.
    pub(crate) async fn next(&mut self) -> u8 {
        let Some(caught) = &mut self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = caught.int.recv() => exit_status_for(libc::SIGINT),
            _ = caught.term.recv() => exit_status_for(libc::SIGTERM),
            _ = caught.hup.recv() => exit_status_for(libc::SIGHUP),
        }
    }
}

/// The exit status a shell gives a command ended by `signal`: 128 + its
/// number (the three caught here are below 128 on every platform).
fn exit_status_for(signal: libc::c_int) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}
