//! Who answers at the endpoint: our service, one adopted, another user's,
//! or something else.

use std::time::Duration;

use super::{Finding, Severity, finding};
use crate::ResolvedEndpoint;
use crate::client::{OtherStateDir, ServiceManager, VersionVerdict};
use crate::remedy::{Operation, Remedy};
use crate::status::{State, Status};

/// What the endpoint check saw.
pub(super) struct Seen {
    /// The service's status.
    pub status: Status,
    /// No service runs and launchd or systemd holds its socket: `ensure`
    /// connects and they start it.
    pub activated: bool,
}

/// Who answers at the endpoint; what was seen when it could be looked at.
pub(super) async fn check_endpoint(
    manager: &ServiceManager,
    findings: &mut Vec<Finding>,
) -> Option<Seen> {
    let endpoint = manager.endpoint().to_string();
    let status = match manager.status().await {
        Ok(status) => status,
        Err(e) => {
            findings.push(
                finding(
                    "endpoint",
                    Severity::Problem,
                    format!("cannot look at {endpoint}: {e}"),
                    Some("fix what the message names, then run the doctor again".into()),
                )
                .with_remedies(e.remedies().iter().copied()),
            );
            return None;
        }
    };
    let activated = status.state == State::Stopped && manager.activator_holds_socket();
    if activated {
        findings.push(finding(
            "endpoint",
            Severity::Ok,
            format!(
                "{endpoint}: no service runs; launchd or systemd holds the socket and starts \
                 the service on the next connection (socket activation)"
            ),
            None,
        ));
        return Some(Seen { status, activated });
    }
    if status.state == State::Stopped
        && let Err(e) = manager.paths().check_endpoint_dir(manager.endpoint())
    {
        findings.push(
            finding("endpoint", Severity::Problem, e.to_string(), None)
                .with_remedies(e.remedies().iter().copied()),
        );
        return Some(Seen { status, activated });
    }
    // Who else holds the endpoint is looked up only when it is not ours.
    let taker = if status.state == State::Conflict && status.pid.is_none() {
        Some(endpoint_taker(manager).await)
    } else {
        None
    };
    findings.push(judge(manager, &status, &endpoint, taker));
    // What `status` warns of (a log another service writes too, a service
    // of this user's under another state dir, mounts that could not be
    // listed), but what has a finding of its own: the reach of a TCP
    // endpoint (the config's) and the version (see `check_version`).
    let said_elsewhere = [
        manager.reachable_by_all_warning(),
        manager.version_warning(&status),
    ];
    findings.extend(
        status
            .warnings
            .iter()
            .filter(|w| !said_elsewhere.iter().flatten().any(|said| said == *w))
            .map(|w| finding("service", Severity::Warning, w.clone(), None)),
    );
    Some(Seen { status, activated })
}

/// The endpoint's finding for the status found there; `taker`: who holds
/// it, for a conflict with something that is not ours.
fn judge(
    manager: &ServiceManager,
    status: &Status,
    endpoint: &str,
    taker: Option<Taker>,
) -> Finding {
    let pid = status
        .pid
        .map(|p| format!(" (pid {p})"))
        .unwrap_or_default();
    // The fixes below, as data.
    // A conflict with a pid is our own service, serving at the endpoint its
    // record names: the config now names another.
    let ours_elsewhere = status.state == State::Conflict && status.pid.is_some();
    // Ours, adopted, started for another state dir: two state dirs in use.
    let other_dir = (status.state == State::Running && adopted(manager, status))
        .then(|| status.pid.and_then(|p| manager.other_state_dir_of(p)))
        .flatten();
    let remedies = remedies(status.state, ours_elsewhere, other_dir.is_some());
    let (severity, summary, fix) = match status.state {
        // Free, but not clean: processes a dead service left hold its lock.
        State::Stopped if let Some(detail) = &status.detail => (
            Severity::Warning,
            format!("{endpoint} is free: no service runs; {detail}"),
            None,
        ),
        State::Stopped => (
            Severity::Ok,
            format!("{endpoint} is free: no service runs"),
            None,
        ),
        // Its record, locks and log are not where this config looks.
        State::Running if let Some(other) = other_dir => {
            started_for_other_dir(endpoint, &pid, other)
        }
        State::Running if adopted(manager, status) => (
            Severity::Ok,
            format!(
                "{endpoint}: our plain service{pid} answers, adopted: it was started outside \
                 spfs-autostart (no instance lock); `ensure` uses it and `stop` stops it"
            ),
            None,
        ),
        State::Running => (
            Severity::Ok,
            format!(
                "{endpoint}: our {} service answers{pid}",
                if status.managed { "kit" } else { "plain" }
            ),
            None,
        ),
        State::Starting | State::Stopping => (
            Severity::Ok,
            format!("{endpoint}: the service{pid} is {}", status.state),
            None,
        ),
        State::Unresponsive => (
            Severity::Problem,
            format!(
                "{endpoint}: a service{pid} {}does not answer: {}",
                // An adopted one's detail says it holds no lock.
                if adopted(manager, status) {
                    ""
                } else {
                    "holds the instance lock but "
                },
                status.detail.clone().unwrap_or_default()
            ),
            Some("stop the service, then ensure it (the stop and ensure operations)".into()),
        ),
        State::Conflict if ours_elsewhere => (
            Severity::Problem,
            status.detail.clone().unwrap_or_default(),
            Some("stop the service (the stop operation); ensure then starts it here".into()),
        ),
        State::Conflict => {
            let detail = status.detail.clone().unwrap_or_default();
            conflict(endpoint, taker.unwrap_or(Taker::Other), &detail)
        }
    };
    finding("endpoint", severity, summary, fix).with_remedies(remedies)
}

/// What fixes the endpoint's `state`, as data a front end can offer:
/// `ours_elsewhere`, our own service serving where its record says, not
/// where the config now does; `other_dir`, our service started for another
/// state dir.
fn remedies(state: State, ours_elsewhere: bool, other_dir: bool) -> Vec<Remedy> {
    match state {
        State::Running if other_dir => {
            vec![Remedy::SetKey("state_dir"), Remedy::Run(Operation::Stop)]
        }
        State::Unresponsive => vec![Remedy::Run(Operation::Stop), Remedy::Run(Operation::Ensure)],
        State::Conflict if ours_elsewhere => vec![Remedy::Run(Operation::Stop)],
        State::Conflict => vec![Remedy::SetKey("endpoint")],
        _ => vec![],
    }
}

/// Our plain service (`pid` as words) answers at `endpoint`, started for
/// `other`, another state dir: its record, locks and log are not where this
/// config looks.
fn started_for_other_dir(
    endpoint: &str,
    pid: &str,
    other: OtherStateDir,
) -> (Severity, String, Option<String>) {
    (
        Severity::Warning,
        format!(
            "{endpoint}: our plain service{pid} answers, started for another state dir, \
             {}{}; `ensure` uses it and `stop` stops it, but its record and locks are not \
             this config's",
            other.state_dir.display(),
            other
                .log_file
                .map(|log| format!(" (its log: {})", log.display()))
                .unwrap_or_default()
        ),
        Some(format!(
            "use one state dir everywhere: set state_dir = {:?} in this config \
             (SPFS_AUTOSTART_STATE_DIR), or stop the service and ensure it here",
            other.state_dir.display().to_string()
        )),
    )
}

/// The running service's version against `expected_version`, as `ensure`
/// judges it. Returns what `ensure` would do instead of using the service,
/// if anything.
pub(super) fn check_version(
    manager: &ServiceManager,
    status: &Status,
    findings: &mut Vec<Finding>,
) -> Option<&'static str> {
    match manager.version_verdict(status)? {
        VersionVerdict::Note(note) => {
            findings.push(finding("version", Severity::Warning, note, None));
            None
        }
        VersionVerdict::Replaces(note) => {
            findings.push(finding("version", Severity::Warning, note, None));
            Some("stop the running service (another version) and start a fresh one")
        }
        // The message names the fix.
        VersionVerdict::Fails(e) => {
            findings.push(
                finding("version", Severity::Problem, e.to_string(), None)
                    .with_remedies(e.remedies().iter().copied()),
            );
            Some("fail: the running service reports another version (see above)")
        }
    }
}

/// The finding for an endpoint held by something that is not our service.
fn conflict(endpoint: &str, taker: Taker, detail: &str) -> (Severity, String, Option<String>) {
    let elsewhere = "choose another `endpoint` in the config (or SPFS_AUTOSTART_ENDPOINT)";
    let (summary, fix) = match taker {
        Taker::OtherUser(user) => (
            format!(
                "{endpoint} is another user's: {user} listens there; it is never used, \
                 signalled or asked to shut down"
            ),
            format!("ask {user} to stop their service (or stop it as root), or {elsewhere}"),
        ),
        // A file or directory where the socket belongs: nothing listens.
        _ if crate::rpc::nothing_listens(detail) => (
            format!("{endpoint} is taken by something that is not our service: {detail}"),
            format!("remove it (nothing listens there), or {elsewhere}"),
        ),
        Taker::NotGrpc => (
            if detail.contains("does not speak gRPC") {
                format!("{endpoint} is taken by something that is not our service: {detail}")
            } else {
                format!(
                    "{endpoint} is taken by something that is not our service and does not \
                     speak gRPC: {detail}"
                )
            },
            format!("stop whatever listens there, or {elsewhere}"),
        ),
        Taker::Other => (
            format!("{endpoint} is taken by something that is not our service: {detail}"),
            format!("stop whatever listens there, or {elsewhere}"),
        ),
    };
    (Severity::Problem, summary, Some(fix))
}

/// Whether a running service is ours but was started elsewhere: a plain
/// service with a pid while no instance lock is held.
fn adopted(manager: &ServiceManager, status: &crate::status::Status) -> bool {
    !status.managed
        && status.pid.is_some()
        && !crate::lock::is_held(&manager.paths().instance_lock()).unwrap_or(true)
}

/// What holds an endpoint that is not our service.
enum Taker {
    /// Another user's listener, described by [`crate::owner::user_name`].
    OtherUser(String),
    /// Something that does not answer gRPC.
    NotGrpc,
    /// A gRPC server that is not ours (or cannot be told apart).
    Other,
}

/// Who holds the endpoint: the listener's owner first (on TCP), then
/// whether it speaks gRPC at all.
async fn endpoint_taker(manager: &ServiceManager) -> Taker {
    let endpoint = manager.endpoint();
    if let ResolvedEndpoint::Tcp(addr) = endpoint
        && let Some(listener) = crate::owner::tcp_listener(*addr)
        && listener.is_foreign()
    {
        return Taker::OtherUser(crate::owner::user_name(listener.uid));
    }
    match crate::rpc::probe(endpoint, false, Duration::from_secs(1)).await {
        crate::rpc::Probe::Foreign(_) | crate::rpc::Probe::NoAnswer => Taker::NotGrpc,
        _ => Taker::Other,
    }
}
