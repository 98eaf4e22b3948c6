//! The LaunchAgent property list.
//!
//! Built as a [`plist::Value`] dictionary and serialized by the `plist` crate rather than
//! formatted by hand, so every string is escaped by a well-kept XML writer and the value types
//! (boolean, integer, string, array, dictionary) are exactly the ones `launchd.plist(5)`
//! documents. Key names and types were checked against that man page:
//!
//! | key | type | why |
//! | --- | --- | --- |
//! | `Label` | string | the job's identity in `gui/<uid>/<label>` |
//! | `Program` / `BundleProgram` | string | absolute executable / path inside the `.app` (SMAppService) |
//! | `ProgramArguments` | array of strings | argv, program first |
//! | `EnvironmentVariables` | dictionary of strings | the kit's settings and the user's env |
//! | `StandardOutPath`, `StandardErrorPath` | string | both appended to the service log |
//! | `ProcessType` | string | `Interactive` (of Background/Standard/Adaptive/Interactive) |
//! | `RunAtLoad` | boolean | always mode: start at load |
//! | `KeepAlive` | dictionary `{SuccessfulExit: false}` | always mode: relaunch after a crash, not after exit 0 |
//! | `Sockets` | dictionary of dictionaries | socket mode: `SockPathName` string, `SockPathMode` integer, `SockFamily` `Unix`, `SockType` `stream` |

use plist::{Dictionary, Value};

use super::{AgentMode, AgentSpec, LAUNCHD_SOCKET_NAME, LaunchdError};

/// `0600` for the socket launchd creates: only the owner may connect (the kit also checks peer
/// credentials). Property lists have no octal notation, so launchd takes the decimal integer.
const SOCK_PATH_MODE: i64 = 0o600;

/// The XML property list for `spec`, ready to be written to `<label>.plist`.
///
/// Fails only when [`AgentSpec::validate`] does.
pub fn launchd_plist(spec: &AgentSpec) -> Result<Vec<u8>, LaunchdError> {
    spec.validate()?;
    let mut out = Vec::new();
    plist_value(spec).to_writer_xml(&mut out).map_err(|e| {
        LaunchdError::invalid("spec", format!("could not serialize the plist: {e}"))
    })?;
    // The crate ends with `</plist>` and no newline; text tools and diffs expect one.
    out.push(b'\n');
    Ok(out)
}

/// The `Program` an installed plist runs, when it is a property list that names one (a
/// bundled plist's `BundleProgram` is not a path and is not returned).
pub fn plist_program(plist: &[u8]) -> Option<std::path::PathBuf> {
    let value = Value::from_reader(std::io::Cursor::new(plist)).ok()?;
    let program = value.as_dictionary()?.get("Program")?.as_string()?;
    Some(program.into())
}

/// validate() has made every path UTF-8, so `to_string_lossy` never loses anything here.
fn plist_value(spec: &AgentSpec) -> Value {
    let program = spec.program.to_string_lossy().into_owned();
    let log_file = spec.log_file.to_string_lossy().into_owned();

    let mut dict = Dictionary::new();
    dict.insert("Label".into(), spec.label.clone().into());
    match &spec.bundle_program {
        // launchd resolves BundleProgram against the app bundle that registered the plist, so
        // the absolute program path (a build machine's) must not appear as Program.
        Some(bundle) => dict.insert("BundleProgram".into(), bundle.clone().into()),
        None => dict.insert("Program".into(), program.clone().into()),
    };
    let argv0 = match &spec.bundle_program {
        Some(bundle) => bundle.clone(),
        None => program,
    };
    let argv = std::iter::once(argv0)
        .chain(spec.args.iter().cloned())
        .map(Value::String)
        .collect::<Vec<_>>();
    dict.insert("ProgramArguments".into(), Value::Array(argv));

    let env = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect::<Dictionary>();
    dict.insert("EnvironmentVariables".into(), Value::Dictionary(env));
    // A plist inside an app bundle is the same for every user, so it cannot
    // name a per-user log file (launchd expands no `~`); the service then
    // logs on its own terms.
    if spec.bundle_program.is_none() {
        dict.insert("StandardOutPath".into(), log_file.clone().into());
        dict.insert("StandardErrorPath".into(), log_file.into());
    }
    // Interactive: the service is a filesystem; every read the user's shell or app makes
    // under the mountpoint waits on it. launchd.plist(5) throttles the CPU and I/O of a
    // Background job, and lightly even of a Standard one (no ProcessType), and reserves
    // Interactive (no limits, as for apps) for jobs a responsive user experience depends on
    // that cannot be Adaptive; Adaptive follows XPC activity, and this service speaks gRPC.
    // Idle, it uses nothing either way.
    dict.insert("ProcessType".into(), "Interactive".into());

    match spec.mode {
        AgentMode::Always => {
            dict.insert("RunAtLoad".into(), true.into());
            let mut keep_alive = Dictionary::new();
            // Relaunch only after an unsuccessful exit: the kit's idle exit is status 0 and must
            // stay exited, or the idle timeout would be pointless.
            keep_alive.insert("SuccessfulExit".into(), false.into());
            dict.insert("KeepAlive".into(), Value::Dictionary(keep_alive));
        }
        AgentMode::Socket => {
            let path = spec.socket_path_text();
            let mut socket = Dictionary::new();
            socket.insert("SockPathName".into(), path.into());
            socket.insert("SockPathMode".into(), Value::Integer(SOCK_PATH_MODE.into()));
            socket.insert("SockFamily".into(), "Unix".into());
            socket.insert("SockType".into(), "stream".into());
            let mut sockets = Dictionary::new();
            sockets.insert(LAUNCHD_SOCKET_NAME.into(), Value::Dictionary(socket));
            dict.insert("Sockets".into(), Value::Dictionary(sockets));
        }
    }
    Value::Dictionary(dict)
}
