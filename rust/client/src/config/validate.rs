//! The rules every value obeys, wherever it comes from: the file (checked
//! as it is read, so the error has a line and a column), the environment,
//! the setters and [`Config::validate`] for configurations built in code.
//! The numeric keys share one table of bounds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Config, Endpoint, StopStep, env};
use crate::error::{Error, ErrorKind, Result};
use crate::remedy::Remedy;

/// The longest timeout we accept; longer is a typo, not a wish.
const MAX_TIMEOUT_SECS: u64 = 3600;
/// The most rotated logs we keep: rotation renames each one under
/// `spawn.lock`, so the count bounds how long a spawn may take.
pub const MAX_LOG_KEEP: u32 = 100;
/// The smallest `log_max_bytes`: 1 rotates at every start that finds a
/// log with anything in it; 0 would mean the same and is taken for a typo.
pub const MIN_LOG_MAX_BYTES: u64 = 1;
/// The largest `log_max_bytes` (1 TiB); larger is a typo, not a wish.
pub const MAX_LOG_MAX_BYTES: u64 = 1 << 40;

/// The values a numeric key accepts.
pub(super) struct Bound {
    /// The key, as the file names it.
    pub key: &'static str,
    /// The smallest value.
    pub min: u64,
    /// The largest value.
    pub max: u64,
    /// What the number counts, for the message.
    pub unit: &'static str,
    /// What the edge values mean, for the message.
    pub note: &'static str,
}

/// Every numeric key and its bounds: the one place they are written.
pub(super) const BOUNDS: [Bound; 5] = [
    Bound {
        key: "ready_timeout_secs",
        min: 1,
        max: MAX_TIMEOUT_SECS,
        unit: "seconds",
        note: "",
    },
    Bound {
        key: "stop_timeout_secs",
        min: 1,
        max: MAX_TIMEOUT_SECS,
        unit: "seconds",
        note: "",
    },
    Bound {
        key: "idle_timeout_secs",
        min: 0,
        // The kit checks the variable it is given against the same bound.
        max: env::MAX_IDLE_TIMEOUT_SECS,
        unit: "seconds",
        note: " (0 means never)",
    },
    Bound {
        key: "log_max_bytes",
        min: MIN_LOG_MAX_BYTES,
        max: MAX_LOG_MAX_BYTES,
        unit: "bytes",
        note: " (1 rotates at every start; 1099511627776 is 1 TiB)",
    },
    Bound {
        key: "log_keep",
        min: 0,
        max: MAX_LOG_KEEP as u64,
        unit: "rotated logs",
        note: " (0 keeps none)",
    },
];

/// Each numeric key's place in [`BOUNDS`]: the file's deserializers take
/// it as a const parameter, since serde gives them no key.
pub(super) mod bound {
    /// `ready_timeout_secs`.
    pub(crate) const READY_TIMEOUT_SECS: usize = 0;
    /// `stop_timeout_secs`.
    pub(crate) const STOP_TIMEOUT_SECS: usize = 1;
    /// `idle_timeout_secs`.
    pub(crate) const IDLE_TIMEOUT_SECS: usize = 2;
    /// `log_max_bytes`.
    pub(crate) const LOG_MAX_BYTES: usize = 3;
    /// `log_keep`.
    pub(crate) const LOG_KEEP: usize = 4;
}

/// `value` if the key at `index` of [`BOUNDS`] accepts it; otherwise what
/// it accepts.
pub(super) fn check_bound(index: usize, value: u64) -> Result<u64, String> {
    let Bound {
        min,
        max,
        unit,
        note,
        ..
    } = BOUNDS[index];
    if value < min {
        return Err(format!(
            "{value} {unit} is too small; use at least {min}{note}"
        ));
    }
    if value > max {
        return Err(format!(
            "{value} {unit} is too large; use at most {max}{note}"
        ));
    }
    Ok(value)
}

/// `secs` if `ready_timeout_secs` accepts it; otherwise why not, without
/// the key: for a front end's own flag (`ensure --timeout`) to refuse as
/// that flag, before anything runs.
pub fn check_ready_timeout_secs(secs: u64) -> Result<u64, String> {
    check_bound(bound::READY_TIMEOUT_SECS, secs)
}

/// [`check_ready_timeout_secs`] for `stop_timeout_secs` (`stop --timeout`).
pub fn check_stop_timeout_secs(secs: u64) -> Result<u64, String> {
    check_bound(bound::STOP_TIMEOUT_SECS, secs)
}

/// The error for a bad value of `key`: names the key, and carries it as the
/// remedy so a front end can name its own way to set it.
fn invalid(key: &'static str, why: String) -> Error {
    Error::new(ErrorKind::InvalidConfig, format!("{key}: {why}")).with_remedy(Remedy::SetKey(key))
}

/// The numeric keys' values, in [`BOUNDS`] order.
fn numbers(config: &Config) -> [u64; 5] {
    [
        config.ready_timeout.as_secs(),
        config.stop_timeout.as_secs(),
        config.idle_timeout.as_secs(),
        config.log_max_bytes,
        u64::from(config.log_keep),
    ]
}

impl Config {
    /// Check every value with the same rules as the file and the
    /// environment: for configurations built field by field (programs,
    /// tests). The error names the key and the fix.
    pub fn validate(&self) -> Result<()> {
        program(&self.program).map_err(|w| invalid("program", w))?;
        args(&self.args).map_err(|w| invalid("args", w))?;
        // The endpoint's own rules live in its parser: run them on its text.
        self.endpoint
            .to_string()
            .parse::<Endpoint>()
            .map_err(|w| invalid("endpoint", w))?;
        if let Some(name) = &self.endpoint_env {
            endpoint_env(name).map_err(|w| invalid("endpoint_env", w))?;
        }
        let steps: Vec<String> = self.stop_sequence.iter().map(StopStep::to_string).collect();
        stop_sequence(&steps).map_err(|w| invalid("stop_sequence", w))?;
        for (index, value) in numbers(self).into_iter().enumerate() {
            check_bound(index, value).map_err(|w| invalid(BOUNDS[index].key, w))?;
        }
        if let Some(version) = &self.expected_version {
            expected_version(version).map_err(|w| invalid("expected_version", w))?;
        }
        if let Some(dir) = &self.state_dir {
            absolute_dir(dir).map_err(|w| invalid("state_dir", w))?;
        }
        if let Some(dir) = &self.log_dir {
            absolute_dir(dir).map_err(|w| invalid("log_dir", w))?;
        }
        for (key, value) in &self.env {
            env_var(key, value).map_err(|w| invalid("env", w))?;
        }
        Ok(())
    }

    /// Why `args` and a TCP `endpoint` disagree, if they do: an argument
    /// `--listen ADDR` (or `--listen=ADDR`) other than the endpoint's
    /// address. spfs-fuse-macos prefers `--listen` to its environment, so
    /// it would serve where `ensure` does not look, and every start would
    /// wait out `ready_timeout_secs` and fail.
    pub(crate) fn listen_conflict(&self) -> Option<String> {
        let Endpoint::Tcp(addr) = &self.endpoint else {
            return None;
        };
        let given = self.listen_arg()?;
        if given.parse::<std::net::SocketAddr>().ok() == Some(*addr) {
            return None;
        }
        let told = match &self.endpoint_env {
            Some(name) => format!("it is told the endpoint through {name}"),
            None => "set endpoint_env to tell it the endpoint".to_string(),
        };
        Some(format!(
            "args pass `--listen {given}`, but endpoint is tcp://{addr}: the service would \
             listen where ensure does not look; remove --listen from args ({told}), or make \
             endpoint and --listen the same address"
        ))
    }

    /// The address `args` pass with `--listen ADDR` (or `--listen=ADDR`),
    /// the last one given.
    fn listen_arg(&self) -> Option<&str> {
        let mut words = self.args.iter();
        let mut given = None;
        while let Some(word) = words.next() {
            if word == "--listen" {
                given = words.next().map(String::as_str);
            } else if let Some(value) = word.strip_prefix("--listen=") {
                given = Some(value);
            }
        }
        given
    }

    /// Why `args` passing `--listen ADDR` with an endpoint that is no TCP
    /// address likely fails: spfs-fuse-macos (a plain service) listens on
    /// that TCP address only, and `ensure` looks at the Unix socket, so
    /// every start waits out `ready_timeout_secs`. (A service that embeds
    /// the kit may mean something else by the flag: a warning, for
    /// `doctor`, not a refusal.)
    pub(crate) fn listen_beside_a_unix_endpoint(&self) -> Option<String> {
        if matches!(self.endpoint, Endpoint::Tcp(_)) {
            return None;
        }
        let given = self.listen_arg()?;
        Some(format!(
            "args pass `--listen {given}`, but endpoint is {}: a plain service such as \
             spfs-fuse-macos would listen on that TCP address, where ensure does not look, and \
             every start would wait out ready_timeout_secs; set endpoint = \"tcp://{given}\", \
             or remove --listen from args",
            self.endpoint
        ))
    }

    /// Set the program (bare name or absolute path), checked as in the file.
    pub fn set_program(&mut self, program: &str) -> Result<()> {
        self.program = self::program(program).map_err(|w| invalid("program", w))?;
        self.set_by_caller("program");
        Ok(())
    }

    /// Set the endpoint from its config syntax.
    pub fn set_endpoint(&mut self, endpoint: &str) -> Result<()> {
        self.endpoint = endpoint.parse().map_err(|w| invalid("endpoint", w))?;
        self.set_by_caller("endpoint");
        Ok(())
    }

    /// Set the ready timeout, with the same bounds as the file.
    pub fn set_ready_timeout_secs(&mut self, secs: u64) -> Result<()> {
        self.ready_timeout = secs_of(bound::READY_TIMEOUT_SECS, secs)?;
        self.set_by_caller("ready_timeout_secs");
        Ok(())
    }

    /// Set the stop timeout, with the same bounds as the file.
    pub fn set_stop_timeout_secs(&mut self, secs: u64) -> Result<()> {
        self.stop_timeout = secs_of(bound::STOP_TIMEOUT_SECS, secs)?;
        Ok(())
    }

    /// Set the idle timeout (0 = never), with the same bounds as the file.
    pub fn set_idle_timeout_secs(&mut self, secs: u64) -> Result<()> {
        self.idle_timeout = secs_of(bound::IDLE_TIMEOUT_SECS, secs)?;
        self.set_by_caller("idle_timeout_secs");
        Ok(())
    }

    /// Set the state dir, which must be absolute as in the file.
    pub fn set_state_dir(&mut self, dir: impl Into<PathBuf>) -> Result<()> {
        let dir = dir.into();
        absolute_dir(&dir).map_err(|w| invalid("state_dir", w))?;
        self.state_dir = Some(dir);
        self.set_by_caller("state_dir");
        Ok(())
    }

    /// Set the log dir, which must be absolute as in the file.
    pub fn set_log_dir(&mut self, dir: impl Into<PathBuf>) -> Result<()> {
        let dir = dir.into();
        absolute_dir(&dir).map_err(|w| invalid("log_dir", w))?;
        self.log_dir = Some(dir);
        self.set_by_caller("log_dir");
        Ok(())
    }

    /// Set the version the running service must report.
    pub fn set_expected_version(&mut self, version: &str) -> Result<()> {
        expected_version(version).map_err(|w| invalid("expected_version", w))?;
        self.expected_version = Some(version.to_string());
        Ok(())
    }
}

/// A timeout key's value as a duration, or the error naming the key.
fn secs_of(index: usize, secs: u64) -> Result<Duration> {
    check_bound(index, secs)
        .map(Duration::from_secs)
        .map_err(|w| invalid(BOUNDS[index].key, w))
}

/// Why a value holding a NUL byte is refused (the C strings of paths,
/// command lines and the environment end at the first one).
const NUL: &str = "contains a NUL byte, which no path or command line can hold; remove it";

/// `args`: each argument must fit in a C string.
pub(super) fn args(args: &[String]) -> Result<(), String> {
    match args.iter().position(|arg| arg.contains('\0')) {
        Some(i) => Err(format!("argument {} {:?} {NUL}", i + 1, args[i])),
        None => Ok(()),
    }
}

/// `program`: a bare name or an absolute path.
pub(super) fn program(program: &str) -> Result<String, String> {
    if program.is_empty() {
        return Err("is empty; give a program name or an absolute path".into());
    }
    if program.contains('\0') {
        return Err(format!("{program:?} {NUL}"));
    }
    if program.contains('/') && !program.starts_with('/') {
        return Err(format!(
            "{program:?} is a relative path{}; give an absolute path or a bare name looked up on PATH",
            not_expanded(program)
        ));
    }
    Ok(program.to_string())
}

/// `stop_sequence`: at least one step, each known, none twice.
pub(super) fn stop_sequence(steps: &[String]) -> Result<Vec<StopStep>, String> {
    if steps.is_empty() {
        return Err(
            "is empty, so nothing would stop the service; use for example \
             [\"shutdown\", \"SIGINT\", \"SIGTERM\", \"SIGKILL\"]"
                .into(),
        );
    }
    let mut sequence: Vec<StopStep> = Vec::with_capacity(steps.len());
    for step in steps {
        let step: StopStep = step.parse()?;
        if sequence.contains(&step) {
            return Err(format!("{step} is listed twice; give each step once"));
        }
        sequence.push(step);
    }
    Ok(sequence)
}

/// `endpoint_env`: a variable name, or `""` for none. The `SPFS_AUTOSTART_*`
/// names are the spawner's own and cannot be repurposed.
pub(super) fn endpoint_env(name: &str) -> Result<Option<String>, String> {
    if name.is_empty() {
        return Ok(None);
    }
    if !env::is_portable_name(name) {
        return Err(format!(
            "{name:?} is not a portable environment variable name (letters, digits and '_', \
             not starting with a digit); give a name such as {:?}, or \"\" for none",
            env::MACFUSE_LISTEN_ADDRESS
        ));
    }
    if name.starts_with("SPFS_AUTOSTART_") {
        return Err(format!(
            "{name} is set by the spawner itself; give the variable the service reads its \
             listen address from, such as {:?}, or \"\" for none",
            env::MACFUSE_LISTEN_ADDRESS
        ));
    }
    Ok(Some(name.to_string()))
}

/// `expected_version`: unset, or a version; an empty one is a mistake.
pub(super) fn expected_version(version: &str) -> Result<(), String> {
    if version.is_empty() {
        return Err("is empty; give a version such as \"1.2.3\", or leave it unset".into());
    }
    Ok(())
}

/// A directory: absolute.
pub(super) fn absolute_dir(dir: &Path) -> Result<(), String> {
    if dir.as_os_str().is_empty() {
        return Err("is empty; give an absolute path, or leave it out for the default".into());
    }
    if dir.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(format!("{:?} {NUL}", dir.display().to_string()));
    }
    if dir.to_str().is_none() {
        // The service is told its state dir in an environment variable it
        // reads as text, and both dirs are written into agent files and
        // messages as text.
        return Err(format!(
            "{:?} is not UTF-8 text; choose a path that is",
            dir.as_os_str()
        ));
    }
    if dir.is_absolute() {
        Ok(())
    } else {
        let shown = dir.display().to_string();
        Err(format!(
            "{shown} is relative{}; give an absolute path",
            not_expanded(&shown)
        ))
    }
}

/// What to add when a relative path looks written for a shell (`~/...`,
/// `$HOME/...`): neither the file nor the library expands them, and the
/// user should not have to guess why the path counts as relative.
fn not_expanded(path: &str) -> &'static str {
    if path.starts_with('~') || path.contains('$') {
        " (~ and $VARIABLES are not expanded here)"
    } else {
        ""
    }
}

/// An environment variable the service can be given: `NAME=value` must
/// split back into the same name and value, and neither may hold a NUL.
pub(super) fn env_var(key: &str, value: &str) -> Result<(), String> {
    // The rule the agent files need too, so that a config `ensure` takes
    // also installs as an agent.
    if !env::is_portable_name(key) {
        return Err(format!(
            "environment variable name {key:?} is not a portable name (letters, digits and \
             '_', not starting with a digit); use a name such as RUST_LOG"
        ));
    }
    if value.contains('\0') {
        return Err(format!(
            "the value of {key} contains a NUL byte, which no environment can carry; remove it"
        ));
    }
    if let Some((_, from)) = env::SET_FOR_EACH_START
        .iter()
        .find(|(name, _)| *name == key)
    {
        return Err(match from {
            Some(from) => format!(
                "{key} cannot be set here: every start sets it for the service from {from}; set {from} instead"
            ),
            None => {
                format!("{key} cannot be set here: every start sets it for the service; remove it")
            }
        });
    }
    Ok(())
}
