//! systemd user units for the same service, so Linux users get always-on or socket-activated
//! runs under `systemctl --user` with the spec they would give launchd.
//!
//! Quoting follows `systemd.syntax(7)` and `systemd.service(5)`: `ExecStart=` arguments are
//! double-quoted when they hold spaces, quotes, backslashes or control characters, with C-style
//! escapes inside the quotes; `%` is a specifier everywhere, so it is always written `%%`; `$`
//! is variable expansion only in `ExecStart=`, so only there is it written `$$` (in
//! `Environment=` a `$` is literal and doubling it would change the value).

use std::fmt::Write as _;

use super::{AgentMode, AgentSpec, LaunchdError};

/// The units that run the service under systemd's user manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdUnits {
    /// The service unit's file name, e.g. `spfs-fuse-macos.service`.
    pub service_name: String,
    /// The service unit's text.
    pub service: String,
    /// The socket unit's file name (same stem as the service, so systemd pairs them), in socket
    /// mode only.
    pub socket_name: Option<String>,
    /// The socket unit's text, in socket mode only.
    pub socket: Option<String>,
}

/// systemd's limit on a unit file name.
const MAX_UNIT_NAME_LEN: usize = 255;

/// The systemd user units for `spec`.
///
/// The unit name is the label's last dot-component (`ai.spk.spfs-fuse-macos` ->
/// `spfs-fuse-macos.service`): systemd unit names are not reverse-DNS by convention, and the
/// last component is the part a user recognises in `systemctl --user status`. In socket mode the
/// `.socket` unit shares the stem, which is how systemd knows which service it activates; the
/// service then has no `[Install]` section (the socket is what gets enabled) and requires the
/// socket, and the kit takes the listening descriptor from `LISTEN_FDS`.
pub fn systemd_units(spec: &AgentSpec) -> Result<SystemdUnits, LaunchdError> {
    spec.validate()?;
    let stem = spec.label.rsplit('.').next().unwrap_or(&spec.label);
    let service_name = format!("{stem}.service");
    if service_name.len() > MAX_UNIT_NAME_LEN {
        return Err(LaunchdError::invalid(
            "label",
            format!(
                "the unit name {service_name:?} is longer than systemd's {MAX_UNIT_NAME_LEN} \
                 bytes; use a shorter last label component"
            ),
        ));
    }
    let socket_name = format!("{stem}.socket");
    let service = service_unit(spec, &socket_name)?;
    let socket = (spec.mode == AgentMode::Socket).then(|| socket_unit(spec));
    Ok(SystemdUnits {
        service_name,
        service,
        socket_name: socket.as_ref().map(|_| socket_name),
        socket,
    })
}

/// The `.service` unit; in socket mode it requires `socket_name`.
fn service_unit(spec: &AgentSpec, socket_name: &str) -> Result<String, LaunchdError> {
    let log = escape_specifiers(&spec.log_file.to_string_lossy());
    let mut service = String::new();
    // Writing to a String cannot fail, hence the ignored fmt::Results below.
    let _ = writeln!(service, "[Unit]");
    let _ = writeln!(
        service,
        "Description={}",
        escape_specifiers(&format!("SPFS service ({})", spec.label))
    );
    if spec.mode == AgentMode::Socket {
        let _ = writeln!(service, "Requires={socket_name}");
        let _ = writeln!(service, "After={socket_name}");
    }
    let _ = writeln!(service);
    let _ = writeln!(service, "[Service]");
    let argv = std::iter::once(exec_path(&spec.program.to_string_lossy())?)
        .chain(spec.args.iter().map(|arg| quote_exec_arg(arg)))
        .collect::<Vec<_>>();
    let _ = writeln!(service, "ExecStart={}", argv.join(" "));
    // Where the spawner and launchd run it, not the user's home (systemd's
    // default for user units): a relative argument means the same
    // everywhere.
    let _ = writeln!(service, "WorkingDirectory=/");
    for (key, value) in &spec.env {
        let _ = writeln!(
            service,
            "Environment={}",
            quote_always(&escape_specifiers(&format!("{key}={value}")))
        );
    }
    let _ = writeln!(service, "StandardOutput=append:{log}");
    let _ = writeln!(service, "StandardError=append:{log}");
    if spec.mode == AgentMode::Always {
        // Like launchd's KeepAlive {SuccessfulExit: false}: a crash restarts the service, the
        // kit's clean idle exit does not.
        let _ = writeln!(service, "Restart=on-failure");
        let _ = writeln!(service);
        let _ = writeln!(service, "[Install]");
        let _ = writeln!(service, "WantedBy=default.target");
    }
    Ok(service)
}

/// The `.socket` unit of socket mode: systemd owns the listening socket.
fn socket_unit(spec: &AgentSpec) -> String {
    let path = spec.socket_path_text();
    let mut socket = String::new();
    let _ = writeln!(socket, "[Unit]");
    let _ = writeln!(
        socket,
        "Description={}",
        escape_specifiers(&format!("SPFS service socket ({})", spec.label))
    );
    let _ = writeln!(socket);
    let _ = writeln!(socket, "[Socket]");
    let _ = writeln!(socket, "ListenStream={}", escape_specifiers(&path));
    // Only the owner may connect, as with launchd's SockPathMode; the kit also checks
    // peer credentials.
    let _ = writeln!(socket, "SocketMode=0600");
    // systemd creates missing parents of the socket; 0700, because the client
    // refuses a state dir that others can enter.
    let _ = writeln!(socket, "DirectoryMode=0700");
    // One service instance takes the listening socket and accepts itself.
    let _ = writeln!(socket, "Accept=no");
    // A socket file left once the unit stops would look, to a client, like
    // a socket systemd still holds for activation.
    let _ = writeln!(socket, "RemoveOnStop=yes");
    let _ = writeln!(socket);
    let _ = writeln!(socket, "[Install]");
    let _ = writeln!(socket, "WantedBy=sockets.target");
    socket
}

/// `%` starts a specifier in almost every unit setting; `%%` is a literal percent sign.
fn escape_specifiers(text: &str) -> String {
    text.replace('%', "%%")
}

/// The executable in `ExecStart=`: systemd refuses one whose path holds quotes, backslashes or
/// control characters ("Executable name contains special characters"), and it expands no `$`
/// in it, so `$` stays single (doubling it would name another file); `%` is still a specifier.
fn exec_path(program: &str) -> Result<String, LaunchdError> {
    if let Some(bad) = program
        .chars()
        .find(|&c| c.is_control() || matches!(c, '"' | '\'' | '\\'))
    {
        return Err(LaunchdError::invalid(
            "program",
            format!(
                "{program:?} contains {bad:?}, which systemd does not accept in an executable \
                 path; move or link the program to a path without quotes or backslashes"
            ),
        ));
    }
    let escaped = escape_specifiers(program);
    Ok(if escaped.chars().any(char::is_whitespace) {
        quote_always(&escaped)
    } else {
        escaped
    })
}

/// One `ExecStart=` word: `%` and `$` doubled, then quoted if systemd would otherwise split or
/// unescape it.
fn quote_exec_arg(arg: &str) -> String {
    let escaped = escape_specifiers(arg).replace('$', "$$");
    let needs_quotes = escaped.is_empty()
        || escaped
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | ';'));
    if needs_quotes {
        quote_always(&escaped)
    } else {
        escaped
    }
}

/// Double quotes with C-style escapes inside, per systemd.syntax(7).
fn quote_always(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
