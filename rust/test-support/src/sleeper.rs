//! A stand-in process for the tests that need one that is not a service: a
//! lease holder, a bystander whose pid a record points at, a mount's root;
//! and a guard that ends any process a test started.

use std::process::{Child, Command};

/// A `sleep 60` child, killed and reaped when dropped, so a test that fails
/// an assertion leaves no process behind.
#[derive(Debug)]
pub struct Sleeper(pub Child);

impl Sleeper {
    /// Start one as this test's user.
    pub fn start() -> Sleeper {
        Sleeper::spawn(&mut Command::new("sleep"))
    }

    /// Start `command` with the argument `60` (`sleep`, set up as the test
    /// needs, for example under another uid).
    pub fn spawn(command: &mut Command) -> Sleeper {
        Sleeper(command.arg("60").spawn().expect("spawn sleep 60"))
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL it and reap it (again when dropped: a no-op).
    pub fn end(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.end();
    }
}

/// A process a test started, SIGKILLed and reaped when dropped, however the
/// test ends (a service started as spfs or a socket activator would).
#[derive(Debug)]
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
