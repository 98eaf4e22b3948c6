//! `spfs-autostart doctor`: exit 0 on a healthy setup, 1 on each broken one,
//! naming the problem and its fix.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;

/// `doctor --json`: exit code and report.
fn doctor(sb: &Sandbox) -> (Option<i32>, serde_json::Value) {
    let out = sb.run(&["--json", "doctor"]);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor printed no JSON ({e}): {}", stderr(&out)));
    (out.status.code(), report)
}

/// `ensure --json`, which must fail: its error object.
fn ensure_fails(sb: &Sandbox) -> serde_json::Value {
    let out = sb.run(&["--json", "ensure"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    serde_json::from_slice(&out.stderr).unwrap()
}

/// The problems in a report, as (check, summary, fix).
fn problems(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "problem")
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["summary"].as_str().unwrap().to_string(),
                f["fix"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The CLI's hints for the finding of `check`.
fn hints(report: &serde_json::Value, check: &str) -> serde_json::Value {
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding: {report}"));
    finding["hints"].clone()
}

#[test]
fn a_healthy_setup_exits_0_stopped_and_running() {
    let sb = Sandbox::new();
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["healthy"], true);
    let (_, summary, _) = endpoint_finding(&report);
    assert!(summary.contains("is free"), "{summary}");
    assert!(
        report["next"].as_str().unwrap().starts_with("start "),
        "{report}"
    );
    sb.ensure();
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["next"], "use the running service (one RPC)");
    let text = sb.ok(&["doctor"]);
    assert!(text.contains("ok       program:"), "{text}");
    assert!(
        text.contains("spfs-reference-service 0.1.0"),
        "the version: {text}"
    );
}

#[test]
fn a_missing_program_exits_1_naming_it_and_the_fix() {
    let sb = Sandbox::new().with("program", "spfs-no-such-service");
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(1), "{report}");
    let problems = problems(&report);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let (check, summary, fix) = &problems[0];
    assert_eq!(check, "program");
    assert!(summary.contains("spfs-no-such-service"), "{summary}");
    assert!(summary.contains("looked in"), "{summary}");
    assert!(fix.contains("SPFS_AUTOSTART_PROGRAM"), "{fix}");
    assert_eq!(
        hints(&report, "program"),
        serde_json::json!([as_run(
            &sb,
            "`spfs-autostart config` shows the config file to set program in"
        )])
    );
    assert_eq!(hints(&report, "config"), serde_json::json!([]));
    let out = sb.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PROBLEM  program:"), "{text}");
    assert!(text.contains("fix: install it"), "{text}");
    assert!(
        text.contains(&as_run(
            &sb,
            "hint: `spfs-autostart config` shows the config file to set program in"
        )),
        "{text}"
    );
}

#[test]
fn a_program_whose_version_leaves_a_process_behind_does_not_stall_doctor() {
    // `--version` prints, then exits, leaving a child that holds its output
    // open (as a wrapper script that starts a helper may).
    let mut sb = Sandbox::new();
    let program = sb.root().join("wrapped-service");
    std::fs::write(
        &program,
        "#!/bin/sh\nsleep 120 &\necho $! > \"$0.helper\"\necho 'wrapped-service 9.9'\n",
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    sb.set("program", path_str(&program));
    let started = std::time::Instant::now();
    let (_, report) = doctor(&sb);
    // The helper is the test's to end, as every process it starts.
    let helper = std::fs::read_to_string(sb.root().join("wrapped-service.helper")).unwrap();
    let killed = std::process::Command::new("kill")
        .arg(helper.trim())
        .status()
        .unwrap();
    assert!(killed.success(), "kill the helper {helper}");
    // Far below the helper's 120 s, which reading to the end would wait.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    let (severity, summary) = finding_of(&report, "program");
    assert_eq!(severity, "ok", "{report}");
    assert!(summary.ends_with("(wrapped-service 9.9)"), "{summary}");
}

#[test]
fn a_program_that_cannot_run_gets_its_own_fix_once() {
    // Not executable: the fix is chmod, said once (the summary does not
    // repeat it), and `next` does not claim the program is missing.
    let mut sb = Sandbox::new();
    let not_exec = sb.root().join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    sb.set("program", path_str(&not_exec));
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(1), "{report}");
    let (check, summary, fix) = &problems(&report)[0];
    assert_eq!(check, "program");
    assert!(summary.ends_with("is not executable"), "{summary}");
    assert!(fix.starts_with("run `chmod +x "), "{fix}");
    assert_eq!(
        report["next"], "fail: the program cannot be started (see above)",
        "{report}"
    );

    // A directory of that name: listed among the places looked, marked.
    let dir = sb.root().join("a-dir");
    std::fs::create_dir(&dir).unwrap();
    sb.set("program", path_str(&dir));
    let (_, report) = doctor(&sb);
    let (_, summary, fix) = &problems(&report)[0];
    assert!(summary.contains("(a directory)"), "{summary}");
    assert!(
        !summary.contains("install it"),
        "the fix is not in the summary: {summary}"
    );
    assert!(fix.starts_with("install it"), "{fix}");
    // `ensure` says the same, the fix after the list.
    let err = stderr(&sb.run(&["ensure"]));
    assert!(
        err.contains("(a directory)\ninstall it, or set `program`"),
        "{err}"
    );
}

#[test]
fn an_endpoint_held_by_a_non_grpc_listener_exits_1_naming_it_and_the_fix() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and answer garbage, as a non-gRPC server would.
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            use std::io::Write;
            let mut conn = conn;
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nnot grpc\n");
        }
    });
    let sb = Sandbox::new().with("endpoint", tcp(port));
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(1), "{report}");
    let problems = problems(&report);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let (check, summary, fix) = &problems[0];
    assert_eq!(check, "endpoint");
    assert!(
        summary.contains(&format!("tcp://127.0.0.1:{port}")),
        "{summary}"
    );
    assert!(summary.contains("not our service"), "{summary}");
    assert!(summary.contains("does not speak gRPC"), "{summary}");
    assert!(fix.contains("endpoint"), "{fix}");
    assert_eq!(
        hints(&report, "endpoint"),
        serde_json::json!([as_run(
            &sb,
            "`spfs-autostart config` shows the config file to set endpoint in"
        )])
    );
    assert!(
        report["next"]
            .as_str()
            .unwrap()
            .contains("endpoint is taken"),
        "{report}"
    );
}

#[test]
fn a_state_dir_with_group_bits_exits_1_naming_it_and_the_fix() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.state_dir()).unwrap();
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o750)).unwrap();
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(1), "{report}");
    let problems = problems(&report);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let (check, summary, fix) = &problems[0];
    assert_eq!(check, "state dir");
    assert!(summary.contains(&path_str(&sb.state_dir())), "{summary}");
    assert!(summary.contains("750"), "{summary}");
    // The fix is said once, in the check's own words.
    let chmod = format!("chmod 700 {}", path_str(&sb.state_dir()));
    assert_eq!(
        summary.matches(&chmod).count() + fix.matches(&chmod).count(),
        1,
        "{summary} / {fix}"
    );
    assert_eq!(
        hints(&report, "state dir"),
        serde_json::json!(["`--state-dir DIR` sets state_dir for one run"])
    );
    // doctor only looks: the mode is left as it was.
    let mode = std::fs::metadata(sb.state_dir())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o750);
}

#[test]
fn a_log_dir_ensure_would_refuse_is_a_problem_naming_it_and_the_fix() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.log_dir()).unwrap();
    // Group-writable: `ensure` refuses it (a group member could plant the log).
    std::fs::set_permissions(sb.log_dir(), std::fs::Permissions::from_mode(0o770)).unwrap();
    let ensure = sb.run(&["ensure"]);
    assert_eq!(ensure.status.code(), Some(1), "{}", stderr(&ensure));
    assert!(sb.pids().is_empty());
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(1), "{report}");
    let problems = problems(&report);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let (check, summary, _) = &problems[0];
    assert_eq!(check, "log dir");
    assert!(summary.contains(&path_str(&sb.log_dir())), "{summary}");
    assert!(summary.contains("chmod go-w"), "{summary}");
    assert_eq!(
        hints(&report, "log dir"),
        serde_json::json!([as_run(
            &sb,
            "`spfs-autostart config` shows the config file to set log_dir in"
        )])
    );
}

/// A running service's log over log_max_bytes (a long run writes past it:
/// it is rotated only at a start) is a warning, not a problem, naming both
/// fixes as this CLI says them; at the limit, or with no service running
/// (its next start rotates the log), no such finding.
#[test]
fn a_running_services_log_over_log_max_bytes_is_a_warning_with_the_fix() {
    let sb = Sandbox::new().with("log_max_bytes", 4096);
    let no_log_finding = |report: &serde_json::Value| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["check"] != "log")
    };
    std::fs::create_dir(sb.log_dir()).unwrap();
    std::fs::set_permissions(sb.log_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(sb.log_file(), vec![b'x'; 5000]).unwrap();
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(0), "{report}");
    assert!(no_log_finding(&report), "stopped: {report}");
    // The start rotates the log; the run then writes past the limit, as a
    // long one would (here: the file is made longer).
    sb.ensure();
    let written = std::fs::metadata(sb.log_file()).unwrap().len();
    assert!(written < 4096, "rotated at the start: {written} bytes");
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(sb.log_file())
        .unwrap();
    log.set_len(4096).unwrap();
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(0), "{report}");
    assert!(no_log_finding(&report), "at the limit: {report}");
    log.set_len(5000).unwrap();
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(0), "a warning only: {report}");
    let (severity, summary) = finding_of(&report, "log");
    assert_eq!(severity, "warning");
    assert!(
        summary.contains("is 4.9 KiB, more than log_max_bytes (4.0 KiB)"),
        "{summary}"
    );
    assert_eq!(
        hints(&report, "log"),
        serde_json::json!([
            as_run(&sb, "run `spfs-autostart stop`"),
            as_run(
                &sb,
                "`spfs-autostart config` shows the config file to set log_max_bytes in"
            ),
        ])
    );
    sb.ok(&["stop"]);
}

#[test]
fn a_log_file_ensure_would_refuse_is_a_problem() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.log_dir()).unwrap();
    std::fs::set_permissions(sb.log_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", sb.log_file()).unwrap();
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(1), "{report}");
    let (check, summary, fix) = &problems(&report)[0];
    assert_eq!(check, "log dir");
    assert!(summary.contains("symbolic link"), "{summary}");
    assert!(fix.starts_with("remove "), "{fix}");
    std::fs::remove_file(sb.log_file()).unwrap();
    nix::unistd::mkfifo(&sb.log_file(), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        problems(&report)[0].1.contains("not a regular file"),
        "{report}"
    );
}

/// The one finding of `check`, as (severity, summary).
fn finding_of(report: &serde_json::Value, check: &str) -> (String, String) {
    let found: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .collect();
    assert_eq!(found.len(), 1, "one {check} finding: {report}");
    (
        found[0]["severity"].as_str().unwrap().to_string(),
        found[0]["summary"].as_str().unwrap().to_string(),
    )
}

/// Whether a finding of `report` says `words`.
fn says(report: &serde_json::Value, words: &str) -> bool {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["summary"].as_str().unwrap().contains(words))
}

/// `stop_sequence` is for plain services: set for a running kit service,
/// it does nothing, and doctor says so; for a plain one it is no warning.
#[test]
fn a_stop_sequence_a_kit_service_ignores_is_a_warning() {
    let said = |report: &serde_json::Value| says(report, "stop_sequence is set");
    let mut sb = Sandbox::new();
    sb.ensure();
    assert!(!said(&doctor(&sb).1), "the default sequence is no warning");
    sb.set("stop_sequence", vec!["SIGINT", "SIGKILL"]);
    let (_, report) = doctor(&sb);
    assert!(said(&report), "{report}");
    assert!(says(&report, "changes nothing for it"), "{report}");
    // Its first signal, another than the default's, does count.
    sb.set("stop_sequence", vec!["SIGTERM", "SIGKILL"]);
    let (_, report) = doctor(&sb);
    assert!(
        says(&report, "only its first signal, SIGTERM, counts"),
        "{report}"
    );
    sb.ok(&["stop"]);
    // A plain service runs the sequence: no warning.
    sb.set("args", vec!["--plain", "service", &path_str(sb.root())]);
    sb.set("endpoint", tcp(free_port()));
    sb.ensure();
    assert!(!said(&doctor(&sb).1));
}

#[test]
fn a_version_ensure_would_replace_warns_and_one_it_would_refuse_is_a_problem() {
    let mut sb = Sandbox::new().with("args", vec!["--report-version", "1.0.0"]);
    let pid = pid_of(&sb.ensure());
    sb.set("expected_version", "2.0.0");
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(0), "{report}");
    let (severity, summary) = finding_of(&report, "version");
    assert_eq!(severity, "warning");
    assert!(summary.contains("the next ensure replaces it"), "{summary}");
    assert_eq!(
        report["next"],
        "stop the running service (another version) and start a fresh one"
    );

    // The program itself is 1.0.0: ensure replaces it once, then fails.
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!alive(pid));
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(1), "{report}");
    let (severity, summary) = finding_of(&report, "version");
    assert_eq!(severity, "problem");
    assert!(summary.contains("even when freshly started"), "{summary}");
    assert_eq!(
        hints(&report, "version"),
        serde_json::json!([
            as_run(&sb, "run `spfs-autostart stop`"),
            as_run(
                &sb,
                "`spfs-autostart config` shows the config file to set expected_version in"
            )
        ])
    );
    assert!(
        report["next"].as_str().unwrap().starts_with("fail:"),
        "{report}"
    );

    // By policy, ensure refuses any other version.
    sb.set("on_version_mismatch", "error");
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(1), "{report}");
    let (_, summary) = finding_of(&report, "version");
    assert!(summary.contains("on_version_mismatch"), "{summary}");
    assert_eq!(
        hints(&report, "version"),
        serde_json::json!([
            as_run(&sb, "run `spfs-autostart stop`"),
            as_run(
                &sb,
                "`spfs-autostart config` shows the config file to set on_version_mismatch in"
            )
        ])
    );

    // The fix, followed: the expected version installed, the old service
    // stopped; the next ensure starts the new one.
    sb.set("on_version_mismatch", "restart");
    sb.set("args", vec!["--report-version", "2.0.0"]);
    sb.ok(&["stop"]);
    assert_eq!(sb.ensure()["version"], "2.0.0");
    sb.ok(&["stop"]);
}

/// The endpoint finding, as (severity, summary, fix).
fn endpoint_finding(report: &serde_json::Value) -> (String, String, String) {
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "endpoint")
        .unwrap_or_else(|| panic!("no endpoint finding: {report}"));
    (
        f["severity"].as_str().unwrap().to_string(),
        f["summary"].as_str().unwrap().to_string(),
        f["fix"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn an_endpoint_held_by_another_user_exits_1_naming_the_user_and_the_fix() {
    let other = second_user();
    let port = free_port();
    let sb = plain_service(port, &[]);
    let mut theirs = outside_service(port, Some(other), &sb);
    let (code, report) = doctor(&sb);
    let alive = matches!(theirs.try_wait(), Ok(None));
    theirs.kill().unwrap();
    theirs.wait().unwrap();
    assert_eq!(code, Some(1), "{report}");
    let problems = problems(&report);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let (check, summary, fix) = &problems[0];
    assert_eq!(check, "endpoint");
    assert!(summary.contains("another user's"), "{summary}");
    assert!(
        summary.contains("user spfs-autostart-test") && summary.contains(&format!("uid {other}")),
        "names the user: {summary}"
    );
    assert!(fix.contains("spfs-autostart-test"), "{fix}");
    assert!(fix.contains("another `endpoint`"), "{fix}");
    assert!(alive, "doctor left their service alone");
    assert_eq!(sb.spawn_count(), 0, "doctor spawned nothing");
}

#[test]
fn a_service_started_elsewhere_is_reported_adopted_with_its_pid() {
    let port = free_port();
    let sb = plain_service(port, &[]);
    let mut outside = outside_service(port, None, &sb);
    let pid = outside.id();
    let (code, report) = doctor(&sb);
    outside.kill().unwrap();
    outside.wait().unwrap();
    assert_eq!(code, Some(0), "{report}");
    let (severity, summary, _) = endpoint_finding(&report);
    assert_eq!(severity, "ok", "{report}");
    assert!(summary.contains("adopted"), "{summary}");
    assert!(summary.contains(&format!("pid {pid}")), "{summary}");
    assert_eq!(report["next"], "use the running service (one RPC)");
}

/// A plain service spfs-autostart started for another config's state dir
/// (two configs naming one TCP endpoint) is named with that state dir and
/// the log it writes, by `status` and by `doctor` (a warning: two state
/// dirs in use), not as one started outside spfs-autostart.
#[test]
fn a_service_started_for_another_state_dir_is_named_with_that_dir_and_its_log() {
    let port = free_port();
    let first = plain_service(port, &[]);
    let pid = pid_of(&first.ensure());
    let second = plain_service(port, &[]);
    let (state_dir, log) = (path_str(&first.state_dir()), path_str(&first.log_file()));
    let status = second.status();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(pid_of(&status), pid, "{status}");
    let detail = status["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("state dir {state_dir}")),
        "{status}"
    );
    assert!(!detail.contains("started outside"), "{status}");
    assert_eq!(
        status["log_file"],
        log.as_str(),
        "the log it writes: {status}"
    );
    let (code, report) = doctor(&second);
    assert_eq!(code, Some(0), "a warning, not a problem: {report}");
    let (severity, summary, fix) = endpoint_finding(&report);
    assert_eq!(severity, "warning", "{report}");
    assert!(
        summary.contains(&state_dir) && summary.contains(&log),
        "{summary}"
    );
    assert!(fix.contains(&format!("state_dir = {state_dir:?}")), "{fix}");
    assert_eq!(second.spawn_count(), 0, "nothing started for the second");
}

/// A service started for this very state dir, which was then removed
/// under it (a tmp cleaner, the end of a login session), is said to be
/// ours, not "started outside spfs-autostart".
#[test]
fn a_service_whose_state_dir_was_removed_is_said_to_be_started_for_it() {
    let port = free_port();
    let sb = plain_service(port, &[]);
    let pid = pid_of(&sb.ensure());
    std::fs::remove_dir_all(sb.state_dir()).unwrap();
    let status = sb.status();
    assert_eq!(pid_of(&status), pid, "{status}");
    let detail = status["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("for this state dir") && detail.contains("removed or emptied"),
        "{status}"
    );
    assert!(!detail.contains("started outside"), "{status}");
}

/// Where no service runs but a service of another state dir writes the
/// same log (one log dir for two state dirs), `doctor` warns before a start
/// here would mix their lines; with that service gone, it does not.
#[test]
fn a_log_a_service_of_another_state_dir_writes_is_a_warning() {
    let log_finding = |report: &serde_json::Value| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == "log")
            .cloned()
    };
    let mut sb = Sandbox::new();
    sb.ensure();
    let other = path_str(&sb.root().join("other-state"));
    sb.set("state_dir", other.as_str());
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(0), "a warning, not a problem: {report}");
    let finding = log_finding(&report).unwrap_or_else(|| panic!("no log finding: {report}"));
    assert_eq!(finding["severity"], "warning", "{finding}");
    let summary = finding["summary"].as_str().unwrap();
    assert!(summary.contains(&path_str(&sb.log_file())), "{summary}");
    assert!(summary.contains("another running process"), "{summary}");
    assert!(
        finding["fix"].as_str().unwrap().contains("log_dir"),
        "{finding}"
    );
    sb.reset_config();
    sb.ok(&["stop"]);
    sb.set("state_dir", other.as_str());
    let (_, report) = doctor(&sb);
    assert_eq!(log_finding(&report), None, "nobody writes it now: {report}");
}

/// spfs-fuse-macos has no `--version` (clap refuses the flag, exit 2):
/// that is no sign of a wrong program, as it is for another name.
#[test]
fn spfs_fuse_macos_refusing_version_is_no_warning_but_another_program_is() {
    let refuses = "echo \"error: unexpected argument '--version' found\" >&2\nexit 2\n";
    let mut sb = Sandbox::new();
    let dir = sb.root().join("bin");
    std::fs::create_dir(&dir).unwrap();
    let script = use_script(&mut sb, "bin/spfs-fuse-macos", refuses);
    let (_, report) = doctor(&sb);
    let (severity, summary) = finding_of(&report, "program");
    assert_eq!(severity, "ok", "{summary}");
    assert!(summary.contains("reports no version"), "{summary}");
    assert!(summary.contains(&path_str(&script)), "{summary}");
    // Another name refusing it may be another tool: still a warning.
    use_script(&mut sb, "bin/other-tool", refuses);
    let (_, report) = doctor(&sb);
    let (severity, summary) = finding_of(&report, "program");
    assert_eq!(severity, "warning", "{summary}");
    assert!(summary.contains("did not say its version"), "{summary}");
}

/// spfs (pull request #1308) finds spfs-fuse-macos only at its default
/// address: another endpoint for it is a warning, the default none.
#[test]
fn spfs_fuse_macos_away_from_its_default_address_is_a_warning() {
    let moved = |report: &serde_json::Value| says(report, "looks for the service only there");
    let mut sb = Sandbox::new();
    std::fs::create_dir(sb.root().join("bin")).unwrap();
    use_script(&mut sb, "bin/spfs-fuse-macos", "exit 2\n");
    sb.set("endpoint", tcp(free_port()));
    let (_, report) = doctor(&sb);
    assert!(moved(&report), "{report}");
    // (The default address is no warning: a unit test, so that nothing
    // here looks at the real 37738.)
    // Another program may listen where it likes.
    use_script(&mut sb, "bin/my-service", "exit 2\n");
    sb.set("endpoint", tcp(free_port()));
    let (_, report) = doctor(&sb);
    assert!(!moved(&report), "{report}");
}

/// A program whose `--version` does not finish (a wrapper that starts
/// something and waits) is ended with all it started, when `doctor` gives
/// up on it and when `doctor` itself is interrupted: nothing is left
/// running.
#[test]
fn a_version_probe_that_hangs_leaves_nothing_running() {
    let mut sb = Sandbox::new();
    let pid_file = sb.root().join("probe-child.pid");
    use_script(
        &mut sb,
        "wrapper.sh",
        &format!("sleep 47 &\necho $! > {}\nwait\n", pid_file.display()),
    );
    let probe_child = || -> u32 {
        assert!(
            wait_for(Duration::from_secs(10), || std::fs::read_to_string(
                &pid_file
            )
            .is_ok_and(|text| text.ends_with('\n'))),
            "the probe started its child"
        );
        std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    // Given up after its time.
    let (_, report) = doctor(&sb);
    let finding = &report["findings"][0];
    assert_eq!(finding["check"], "program", "{report}");
    assert_eq!(finding["severity"], "warning", "no version said: {report}");
    let child = probe_child();
    assert!(
        wait_for(Duration::from_secs(10), || !alive(child)),
        "the probe's child (pid {child}) was ended with it"
    );
    // Interrupted while it waits.
    std::fs::remove_file(&pid_file).unwrap();
    let doctor = background(&sb, &["doctor"]);
    let child = probe_child();
    signal(doctor.id(), nix::sys::signal::Signal::SIGINT);
    let out = doctor.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        wait_for(Duration::from_secs(10), || !alive(child)),
        "the probe's child (pid {child}) was ended with the interrupted doctor"
    );
}

/// A config that cannot be used (an unknown key, a relative dir) is what
/// `doctor` reports, as its one problem, not an error instead of a report.
#[test]
fn an_unusable_config_is_the_doctors_finding() {
    let sb = Sandbox::new();
    for (name, text, says) in [
        ("a bad key", "bogus_key = 1\n", "bogus_key"),
        ("a relative dir", "state_dir = \"rel/dir\"\n", "relative"),
    ] {
        std::fs::write(sb.config_file(), text).unwrap();
        let out = sb.run(&["--json", "doctor"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{name}: a report ({e}): {}", stderr(&out)));
        assert_eq!(report["healthy"], false, "{report}");
        let finding = &report["findings"][0];
        assert_eq!(finding["check"], "config", "{report}");
        assert_eq!(finding["severity"], "problem", "{report}");
        assert!(
            finding["summary"].as_str().unwrap().contains(says),
            "{report}"
        );
    }
}

/// What `doctor` can tell before a start that the start would fail by:
/// a program that says another version than `expected_version`, and a
/// `--listen` in args beside a Unix endpoint (a plain service would listen
/// where ensure does not look). Warnings, each naming the keys to change.
#[test]
fn doctor_warns_of_a_start_that_would_fail() {
    let finding = |sb: &Sandbox, check: &str| -> serde_json::Value {
        let (_, report) = doctor(sb);
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == check && f["severity"] == "warning")
            .cloned()
            .unwrap_or_else(|| panic!("no {check} warning: {report}"))
    };
    let sb = Sandbox::new().with("expected_version", "9.9.9");
    let version = finding(&sb, "program");
    let summary = version["summary"].as_str().unwrap();
    assert!(summary.contains("not expected_version 9.9.9"), "{summary}");
    assert!(sb.pids().is_empty(), "nothing started");
    // The version the program says is not warned of.
    let (_, report) = doctor(&Sandbox::new().with("expected_version", "0.1.0"));
    assert_eq!(report["findings"][0]["severity"], "ok", "{report}");

    let sb = Sandbox::new().with("args", vec!["--plain", "--listen=127.0.0.1:40150"]);
    let listen = finding(&sb, "args");
    let summary = listen["summary"].as_str().unwrap();
    assert!(summary.contains("--listen 127.0.0.1:40150"), "{summary}");
    assert!(summary.contains("tcp://127.0.0.1:40150"), "{summary}");
}

/// A config file or a program that other users can change is a warning:
/// whoever can change either chooses what runs as you. A config file any
/// user can change is not used at all: the finding is that.
#[test]
fn a_config_or_program_others_can_write_is_a_warning() {
    let mut sb = Sandbox::new();
    let program = use_script(&mut sb, "service.sh", "exit 0\n");
    let warned = |sb: &Sandbox, check: &str, path: &std::path::Path| {
        let (_, report) = doctor(sb);
        report["findings"].as_array().unwrap().iter().any(|f| {
            f["check"] == check
                && f["severity"] == "warning"
                && f["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains(&path_str(path)) && s.contains("mode"))
        })
    };
    assert!(!warned(&sb, "config", &sb.config_file()));
    assert!(!warned(&sb, "program", &program));
    std::fs::set_permissions(sb.config_file(), std::fs::Permissions::from_mode(0o664)).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(warned(&sb, "config", &sb.config_file()), "the config file");
    assert!(warned(&sb, "program", &program), "the program");
    std::fs::set_permissions(sb.config_file(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let (_, report) = doctor(&sb);
    let refused = report["findings"].as_array().unwrap().iter().any(|f| {
        f["severity"] == "problem"
            && f["summary"]
                .as_str()
                .is_some_and(|s| s.contains("mode 666") && s.contains("chmod o-w"))
    });
    assert!(refused, "{report}");
}

/// Where no service runs, the last start's failure is a warning with its
/// fixes (the keys it names); a later start that works forgets it.
#[test]
fn the_last_failed_start_is_a_warning_until_a_start_works() {
    let last_start = |sb: &Sandbox| {
        let (_, report) = doctor(sb);
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == "last start")
            .cloned()
    };
    let sb = Sandbox::new().with("args", vec!["--fail-at-start", "no mount for you"]);
    assert_eq!(sb.run(&["ensure"]).status.code(), Some(1));
    let finding = last_start(&sb).expect("the failed start is said");
    assert_eq!(finding["severity"], "warning", "{finding}");
    let summary = finding["summary"].as_str().unwrap();
    assert!(
        summary.contains("the last start, ") && summary.contains("exited with status 3"),
        "{summary}"
    );
    let sb = sb.with("args", Vec::<String>::new());
    sb.ensure();
    sb.ok(&["stop"]);
    assert_eq!(last_start(&sb), None, "a start worked since");
}

#[test]
fn our_own_running_service_is_reported_ours_not_adopted() {
    let sb = Sandbox::new();
    let pid = pid_of(&sb.ensure());
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(0), "{report}");
    let (severity, summary, _) = endpoint_finding(&report);
    assert_eq!(severity, "ok");
    assert!(summary.contains("our kit service answers"), "{summary}");
    assert!(summary.contains(&format!("pid {pid}")), "{summary}");
    assert!(!summary.contains("adopted"), "{summary}");
}

/// Run by a user who may not write where the state dir or the log dir
/// would be made (a read-only HOME, say), `doctor` says so, as the problem
/// it is, instead of "ensure creates it" before `ensure` fails.
#[test]
fn a_state_or_log_dir_the_user_cannot_create_is_a_problem_as_ensure_finds() {
    use std::os::unix::process::CommandExt;
    let uid = second_user();
    let sb = Sandbox::new();
    // Ours (root's), open to read: the user may not create anything in it.
    std::fs::set_permissions(sb.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = sb.root().join("shared");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let own = root.join("own");
    std::fs::create_dir(&own).unwrap();
    std::os::unix::fs::chown(&own, Some(uid), Some(uid)).unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        format!("program = \"{}\"\n", reference_service().display()),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = |state: &std::path::Path, logs: &std::path::Path, args: &[&str]| {
        std::process::Command::new(spfs_autostart_test_support::cli())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &root)
            .env("SPFS_AUTOSTART_STATE_DIR", state)
            .env("SPFS_AUTOSTART_LOG_DIR", logs)
            .arg("--config")
            .arg(&config)
            .args(args)
            .uid(uid)
            .gid(uid)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    for (check, state, logs) in [
        ("state dir", root.join("state"), own.join("logs")),
        ("log dir", own.join("state"), root.join("logs")),
    ] {
        let out = run(&state, &logs, &["--json", "doctor"]);
        assert_eq!(out.status.code(), Some(1), "{check}: {}", stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            problems(&report).iter().any(|(c, summary, fix)| c == check
                && summary.contains("does not let you create it")
                && !fix.is_empty()),
            "{check}: {report}"
        );
        assert!(
            report["next"].as_str().unwrap().starts_with("fail:"),
            "{check}: {report}"
        );
        let ensure = run(&state, &logs, &["ensure"]);
        assert_eq!(ensure.status.code(), Some(1), "{check}: as doctor said");
    }
}

/// A plain file where the socket belongs: nothing listens, so the fix is to
/// remove it (or move the endpoint), not to stop a listener.
#[test]
fn a_file_at_the_socket_path_is_to_be_removed_not_stopped() {
    let sb = Sandbox::new();
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(sb.state_dir())
        .unwrap();
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(sb.state_dir().join("service.sock"), "").unwrap();
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(1), "{report}");
    let endpoint = problems(&report)
        .into_iter()
        .find(|(check, ..)| check == "endpoint")
        .unwrap_or_else(|| panic!("no endpoint problem: {report}"));
    assert!(endpoint.1.contains("is not a socket"), "{endpoint:?}");
    assert!(endpoint.2.starts_with("remove it"), "{endpoint:?}");
}

/// A read-only mount at a directory under the sandbox, undone on drop
/// (before the sandbox removes its root).
struct ReadOnlyMount(std::path::PathBuf);

impl ReadOnlyMount {
    /// A tmpfs, holding a private `state` dir.
    fn tmpfs(at: &std::path::Path) -> ReadOnlyMount {
        std::fs::create_dir_all(at).unwrap();
        mount(&["-t", "tmpfs", "-o", "size=1m,mode=700", "tmpfs"], at);
        let guard = ReadOnlyMount(at.to_path_buf());
        std::fs::create_dir(at.join("state")).unwrap();
        std::fs::set_permissions(at.join("state"), std::fs::Permissions::from_mode(0o700)).unwrap();
        mount(&["-o", "remount,ro"], at);
        guard
    }

    /// A view of `from`.
    fn bind(from: &std::path::Path, at: &std::path::Path) -> ReadOnlyMount {
        mount(&["--bind", &path_str(from)], at);
        let guard = ReadOnlyMount(at.to_path_buf());
        mount(&["-o", "remount,bind,ro"], at);
        guard
    }
}

/// `mount ARGS... AT`, which must work (the tests run as root, as CI does).
fn mount(args: &[&str], at: &std::path::Path) {
    let out = std::process::Command::new("mount")
        .args(args)
        .arg(at)
        .output()
        .expect("mount (util-linux) runs");
    assert!(
        out.status.success(),
        "mount {args:?} failed (the test needs root): {}",
        stderr(&out)
    );
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .output();
    }
}

/// A state dir that exists, is private and ours, but is on a read-only file
/// system: `doctor` finds what `ensure` then fails on, and `ensure` names
/// the setting, not a lock file inside it.
#[test]
fn a_state_dir_on_a_read_only_file_system_is_a_problem_as_ensure_finds() {
    let mut sb = Sandbox::new();
    let ro = ReadOnlyMount::tmpfs(&sb.root().join("ro"));
    sb.set("state_dir", path_str(&ro.0.join("state")));
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        problems(&report)
            .iter()
            .any(|(c, summary, fix)| c == "state dir"
                && summary.contains("not writable")
                && fix.contains("state_dir")),
        "{report}"
    );
    assert!(
        report["next"].as_str().unwrap().starts_with("fail:"),
        "{report}"
    );
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not writable") && err.contains("state_dir") && !err.contains(".lock"),
        "{err}"
    );
    assert!(sb.pids().is_empty(), "nothing started");
}

/// A running service's state dir seen read-only (a read-only bind mount of
/// it): a look, a watch and the doctor still work, only a start could not.
#[test]
fn a_read_only_view_of_a_running_services_state_dir_can_still_be_looked_at() {
    let mut sb = Sandbox::new();
    let rw = sb.root().join("rw");
    let ro = sb.root().join("ro");
    std::fs::create_dir_all(rw.join("state")).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::set_permissions(rw.join("state"), std::fs::Permissions::from_mode(0o700)).unwrap();
    sb.set("state_dir", path_str(&rw.join("state")));
    let pid = pid_of(&serde_json::from_str(&sb.ok(&["--json", "ensure"])).unwrap());
    let view = ReadOnlyMount::bind(&rw, &ro);
    sb.set("state_dir", path_str(&ro.join("state")));
    assert_eq!(
        pid_of(&sb.status()),
        pid,
        "status through the read-only view"
    );
    let mut watch = sb.cli(&["--json", "watch"]);
    watch.stdout(std::process::Stdio::piped());
    let mut watch = watch.spawn().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(watch.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(first.contains("\"running\""), "watch: {first:?}");
    let (code, report) = doctor(&sb);
    assert_eq!(
        code,
        Some(1),
        "the state dir is a problem for a start: {report}"
    );
    assert!(
        report["next"]
            .as_str()
            .unwrap()
            .starts_with("use the running service"),
        "{report}"
    );
    drop(view);
    sb.set("state_dir", path_str(&rw.join("state")));
    sb.ok(&["stop"]);
}

/// A file where a dir belongs: the error names the setting and the file,
/// as a config problem, not only the system's words ("not writable" for a
/// log dir that is a file, and a bare "Not a directory" of kind `Io` for
/// one under a file, before).
#[test]
fn a_file_in_place_of_the_state_or_log_dir_names_the_setting() {
    for (key, under) in [
        ("state_dir", Some("state")),
        ("log_dir", Some("logs")),
        ("log_dir", None),
    ] {
        let mut sb = Sandbox::new();
        let file = sb.root().join("afile");
        std::fs::write(&file, "").unwrap();
        sb.set(key, path_str(&under.map_or(file.clone(), |u| file.join(u))));
        let error = ensure_fails(&sb);
        assert_eq!(error["error"]["kind"], "InvalidConfig", "{error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        let said = match under {
            Some(_) => format!("{} is a file", path_str(&file)),
            None => "is not a directory".to_string(),
        };
        assert!(message.contains(key) && message.contains(&said), "{error}");
    }
}

/// A Unix endpoint in a directory that is not there: `ensure` says so at
/// once, naming `endpoint`, and starts nothing; `doctor` finds the same.
#[test]
fn a_unix_endpoint_in_a_missing_directory_is_said_before_anything_starts() {
    let mut sb = Sandbox::new();
    let dir = sb.root().join("nope");
    sb.set(
        "endpoint",
        format!("unix://{}", path_str(&dir.join("x.sock"))),
    );
    let error = ensure_fails(&sb);
    assert_eq!(error["error"]["kind"], "InvalidConfig", "{error}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("endpoint") && message.contains("does not exist"),
        "{error}"
    );
    assert!(
        !sb.log_dir().join("service.log").exists(),
        "no service was started"
    );
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(problems(&report).len(), 1, "{report}");
    assert_eq!(problems(&report)[0].0, "endpoint", "{report}");
    assert_eq!(
        report["next"], "fail: the endpoint cannot be used (see above)",
        "{report}"
    );
    std::fs::create_dir(&dir).unwrap();
    sb.ok(&["ensure"]);
    sb.ok(&["stop"]);
}

/// A log dir that is a link to nothing: `doctor` does not say `ensure`
/// creates it, and `ensure` says what the link points to.
#[test]
fn a_log_dir_linked_to_nothing_is_said_by_doctor_and_ensure() {
    let sb = Sandbox::new();
    let target = sb.root().join("gone");
    std::fs::create_dir_all(sb.log_dir().parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&target, sb.log_dir()).unwrap();
    let (code, report) = doctor(&sb);
    assert_eq!(code, Some(1), "{report}");
    let problems = problems(&report);
    let (check, summary, _) = &problems[0];
    assert_eq!(check, "log dir", "{problems:?}");
    assert!(summary.contains("symbolic link"), "{summary}");
    assert!(summary.contains(&path_str(&target)), "{summary}");
    let out = sb.run(&["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert!(sb.pids().is_empty());
}

/// A log left owned by root in the user's own log dir (a run as root):
/// `ensure` cannot open it, so `doctor` says so, with the fix, instead of
/// "ok".
#[test]
fn a_log_the_user_cannot_write_is_a_problem() {
    use std::os::unix::process::CommandExt;
    let uid = second_user();
    let sb = Sandbox::new();
    std::fs::set_permissions(sb.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let theirs = sb.root().join("theirs");
    let logs = theirs.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for dir in [&theirs, &logs] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        nix::unistd::chown(dir, Some(nix::unistd::Uid::from_raw(uid)), None).unwrap();
    }
    let log = logs.join("service.log");
    std::fs::write(&log, "a run as root\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = sb.root().join("theirs.toml");
    std::fs::write(
        &config,
        format!(
            "program = {:?}\nstate_dir = {:?}\nlog_dir = {:?}\n",
            path_str(&reference_service()),
            path_str(&theirs.join("state")),
            path_str(&logs)
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(spfs_autostart_test_support::cli())
        .arg("--config")
        .arg(&config)
        .args(["--json", "doctor"])
        .env_clear()
        .env("HOME", &theirs)
        .uid(uid)
        .gid(uid)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor printed no JSON ({e}): {}", stderr(&out)));
    assert_eq!(out.status.code(), Some(1), "{report}");
    let problems = problems(&report);
    assert!(
        problems
            .iter()
            .any(|(check, summary, fix)| check == "log dir"
                && summary.contains("not writable by you")
                && fix.contains("remove")),
        "{problems:?}"
    );
}

/// A lock held by what a dead service left (its record names a dead pid):
/// `status` says so, and now `doctor` too, as a warning on the endpoint.
/// It said "ok ... is free".
#[test]
fn a_lock_only_leftovers_hold_is_a_warning_naming_them() {
    let sb = Sandbox::new();
    sb.ensure();
    let pid = pid_of(&sb.status());
    // What it leaves holding the lock, once it is killed.
    let lock = sb.state_dir().join("instance.lock");
    // It says when it has the lock (the dying service may hold it a moment
    // after it reads as dead): a marker file, then `sleep`.
    let acquired = sb.root().join("leftover-holds-the-lock");
    let mut leftover = Sleeper::spawn(
        std::process::Command::new("flock")
            .arg("--no-fork")
            .arg(&lock)
            .args(["sh", "-c", "touch \"$0\" && exec sleep \"$1\""])
            .arg(&acquired),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_for(std::time::Duration::from_secs(10), || !alive(pid)));
    assert!(wait_for(std::time::Duration::from_secs(10), || acquired.exists()));
    let (code, report) = doctor(&sb);
    let (severity, summary) = finding_of(&report, "endpoint");
    assert_eq!(severity, "warning", "{report}");
    assert!(
        summary.contains("still held by processes the last service left behind"),
        "{summary}"
    );
    assert_eq!(code, Some(0), "a warning, not a problem: {report}");
    leftover.end();
}

/// A log over log_max_bytes whose rotation a directory blocks: where no
/// service runs, doctor says the next start could not rotate it, and what
/// to remove.
#[test]
fn a_log_no_start_could_rotate_is_a_warning_naming_what_blocks_it() {
    let sb = Sandbox::new().with("log_max_bytes", 1).with("log_keep", 2);
    std::fs::create_dir_all(sb.log_dir()).unwrap();
    std::fs::write(sb.log_dir().join("service.log"), "a run\n").unwrap();
    let (_, report) = doctor(&sb);
    let said = |report: &serde_json::Value| {
        report["findings"].as_array().unwrap().iter().any(|f| {
            f["summary"]
                .as_str()
                .is_some_and(|s| s.contains("no start can rotate it"))
        })
    };
    assert!(!said(&report), "{report}");
    let blocker = sb.log_dir().join("service.log.2");
    std::fs::create_dir(&blocker).unwrap();
    let (_, report) = doctor(&sb);
    assert!(said(&report), "{report}");
    assert!(report.to_string().contains(&path_str(&blocker)), "{report}");
}
