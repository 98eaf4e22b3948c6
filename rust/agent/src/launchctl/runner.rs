//! How launchctl is run: the [`CommandRunner`] seam, and the real runner with a deadline.

use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One launchctl invocation's result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandOutput {
    /// The exit status; `None` when launchctl was killed by a signal.
    pub status: Option<i32>,
    /// What launchctl wrote to stdout.
    pub stdout: String,
    /// What launchctl wrote to stderr.
    pub stderr: String,
}

impl CommandOutput {
    pub(super) fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// stderr then stdout, trimmed: launchctl is not consistent about which one it uses.
    pub(super) fn text(&self) -> String {
        let mut parts = Vec::new();
        for part in [self.stderr.trim(), self.stdout.trim()] {
            if !part.is_empty() {
                parts.push(part);
            }
        }
        parts.join("\n")
    }
}

/// Runs launchctl; the real one spawns `/bin/launchctl`, tests inject a fake that records the
/// argv and returns canned output.
pub trait CommandRunner {
    /// Runs `argv` (whose first element is `launchctl`) to completion and returns its output.
    /// An `Err` means it could not be run at all.
    fn run(&self, argv: &[String]) -> io::Result<CommandOutput>;

    /// Whether launchctl can run here at all. [`install`](crate::install),
    /// [`uninstall`](crate::uninstall) and [`status`](crate::status) check it first, so on a
    /// system without launchd they fail with [`LaunchdError::Unsupported`](crate::LaunchdError::Unsupported) before creating
    /// `~/Library/LaunchAgents`. Fakes keep the default, `true`.
    fn available(&self) -> bool {
        true
    }
}

impl<R: CommandRunner + ?Sized> CommandRunner for &R {
    fn run(&self, argv: &[String]) -> io::Result<CommandOutput> {
        (**self).run(argv)
    }

    fn available(&self) -> bool {
        (**self).available()
    }
}

/// How long one launchctl call may take before it is killed and reported as timed out.
pub(crate) const LAUNCHCTL_TIMEOUT: Duration = Duration::from_secs(30);

/// The real runner: `/bin/launchctl` through [`std::process::Command`], with a deadline.
///
/// The absolute path is used so a `launchctl` earlier on `PATH` cannot stand in for it. On a
/// system without launchd it fails with [`io::ErrorKind::Unsupported`], which [`Launchctl`](crate::Launchctl)
/// reports as [`LaunchdError::Unsupported`](crate::LaunchdError::Unsupported).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, argv: &[String]) -> io::Result<CommandOutput> {
        if !crate::supported() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "launchctl exists only on macOS",
            ));
        }
        // argv[0] is "launchctl" by contract; the absolute path replaces it.
        run_with_deadline(
            Path::new("/bin/launchctl"),
            argv.get(1..).unwrap_or_default(),
            LAUNCHCTL_TIMEOUT,
        )
    }

    fn available(&self) -> bool {
        crate::supported()
    }
}

/// Runs `program args` to completion, or kills it after `timeout` and fails with
/// [`io::ErrorKind::TimedOut`]. Its output is read on helper threads so a chatty child cannot
/// block on a full pipe.
pub(crate) fn run_with_deadline(
    program: &Path,
    args: &[String],
    timeout: Duration,
) -> io::Result<CommandOutput> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} did not finish within {}s",
                    program.display(),
                    timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(CommandOutput {
        status: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}
