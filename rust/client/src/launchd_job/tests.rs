//! Which loaded job runs this config's service, against a fake `launchctl`.

use std::cell::RefCell;
use std::collections::VecDeque;

use spfs_autostart_agent::{CommandOutput, LoadedAgent};

use super::*;

/// A `launchctl` that records every argv and replays canned outputs.
#[derive(Default)]
struct Fake {
    calls: RefCell<Vec<String>>,
    replies: RefCell<VecDeque<CommandOutput>>,
}

impl CommandRunner for Fake {
    fn run(&self, argv: &[String]) -> std::io::Result<CommandOutput> {
        self.calls.borrow_mut().push(argv.join(" "));
        Ok(self.replies.borrow_mut().pop_front().expect("a reply"))
    }
}

fn launchctl(replies: impl IntoIterator<Item = CommandOutput>) -> Launchctl<Fake> {
    let fake = Fake::default();
    fake.replies.borrow_mut().extend(replies);
    Launchctl::new(fake, 501)
}

/// `launchctl print` of a loaded job, in launchd's own layout.
fn loaded(label: &str, state: &str, pid: Option<u32>) -> CommandOutput {
    let pid = pid.map(|p| format!("\tpid = {p}\n")).unwrap_or_default();
    CommandOutput {
        status: Some(0),
        stdout: format!("gui/501/{label} = {{\n\tstate = {state}\n{pid}}}\n"),
        stderr: String::new(),
    }
}

fn not_loaded(label: &str) -> CommandOutput {
    CommandOutput {
        status: Some(113),
        stdout: String::new(),
        stderr: format!("Could not find service \"{label}\" in domain for user gui: 501\n"),
    }
}

/// A config on a Unix socket in `dir` (not the app's agent's endpoint).
fn sandbox(dir: &Path) -> (Config, Paths) {
    let config = Config {
        program: "sh".into(),
        endpoint: Endpoint::StateDirSocket,
        ..Config::default()
    };
    let paths = Paths {
        state_dir: dir.join("state"),
        log_dir: dir.join("logs"),
    };
    (config, paths)
}

/// The CLI's plist for `config` in `mode`, installed under `home`.
fn install(home: &Path, config: &Config, paths: &Paths, mode: AgentMode) {
    let spec = crate::agent_spec::spec_from_config(config, paths, mode, None, None).unwrap();
    let dir = launch_agents_dir(home);
    std::fs::create_dir_all(&dir).unwrap();
    let plist = dir.join(format!("{DEFAULT_LABEL}.plist"));
    std::fs::write(plist, launchd_plist(&spec).unwrap()).unwrap();
}

#[test]
fn the_clis_always_on_agent_made_from_this_config_runs_its_service() {
    let dir = tempfile::tempdir().unwrap();
    let (config, paths) = sandbox(dir.path());
    install(dir.path(), &config, &paths, AgentMode::Always);
    let lc = launchctl([loaded(DEFAULT_LABEL, "running", Some(42))]);
    let JobLook::Loaded(job) = find(&lc, &config, &paths, dir.path()) else {
        panic!("the CLI's job")
    };
    assert_eq!(job.label, DEFAULT_LABEL);
    assert_eq!(job.pid(), Some(42));
    assert_eq!(
        *lc.runner().calls.borrow(),
        [format!("launchctl print gui/501/{DEFAULT_LABEL}")]
    );
    // Loaded, not running (a stop ended it cleanly): no process to wait for.
    let lc = launchctl([loaded(DEFAULT_LABEL, "not running", None)]);
    let JobLook::Loaded(job) = find(&lc, &config, &paths, dir.path()) else {
        panic!("the CLI's job")
    };
    assert_eq!(job.pid(), None);
    // Installed but not loaded: launchd runs nothing.
    let lc = launchctl([not_loaded(DEFAULT_LABEL)]);
    assert_eq!(find(&lc, &config, &paths, dir.path()), JobLook::None);
}

/// A socket-mode agent starts the service on the next connection, which a
/// look makes; a plist made from another config runs another service.
/// Neither is asked about.
#[test]
fn a_socket_mode_agent_or_another_configs_plist_is_not_this_services_job() {
    let dir = tempfile::tempdir().unwrap();
    let (config, paths) = sandbox(dir.path());
    install(dir.path(), &config, &paths, AgentMode::Socket);
    let lc = launchctl([]);
    assert_eq!(find(&lc, &config, &paths, dir.path()), JobLook::None);

    let (other, other_paths) = sandbox(&dir.path().join("other"));
    install(dir.path(), &other, &other_paths, AgentMode::Always);
    assert_eq!(find(&lc, &config, &paths, dir.path()), JobLook::None);
    assert!(
        lc.runner().calls.borrow().is_empty(),
        "launchctl was not run"
    );
}

/// The app's agent ("Keep service running") leaves no plist to read: it
/// runs this service when the config looks where it listens.
#[test]
fn the_apps_agent_runs_the_service_at_its_endpoint_only() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, paths) = sandbox(dir.path());
    let lc = launchctl([]);
    assert_eq!(find(&lc, &config, &paths, dir.path()), JobLook::None);
    assert!(
        lc.runner().calls.borrow().is_empty(),
        "launchctl was not run"
    );

    config.endpoint = APP_AGENT_ENDPOINT;
    let lc = launchctl([loaded(APP_LABEL, "not running", None)]);
    let JobLook::Loaded(job) = find(&lc, &config, &paths, dir.path()) else {
        panic!("the app's job")
    };
    assert_eq!(job.label, APP_LABEL);
    assert_eq!(
        *lc.runner().calls.borrow(),
        [format!("launchctl print gui/501/{APP_LABEL}")]
    );
    assert!(
        job.log(&paths).contains("system log"),
        "{}",
        job.log(&paths)
    );
    let lc = launchctl([not_loaded(APP_LABEL)]);
    assert_eq!(find(&lc, &config, &paths, dir.path()), JobLook::None);
}

/// launchctl failing (busy, timed out) is not "no job": `ensure` must not
/// take it for one and start a second service beside launchd's.
#[test]
fn a_failed_print_is_unknown_not_no_job() {
    let dir = tempfile::tempdir().unwrap();
    let (config, paths) = sandbox(dir.path());
    install(dir.path(), &config, &paths, AgentMode::Always);
    let lc = launchctl([CommandOutput {
        status: Some(1),
        stdout: String::new(),
        stderr: "Operation not permitted\n".into(),
    }]);
    assert!(matches!(
        find(&lc, &config, &paths, dir.path()),
        JobLook::Unknown(_)
    ));
}

fn job(state: &str, pid: Option<u32>, runs: u64, last_exit_code: Option<i32>) -> AgentJob {
    AgentJob {
        label: DEFAULT_LABEL,
        job: LoadedAgent {
            state: Some(state.into()),
            pid,
            runs: Some(runs),
            last_exit_code,
            last_signal: None,
        },
    }
}

/// What a wait for launchd's job does next, from what `launchctl print`
/// says at each look.
#[test]
fn the_wait_for_launchds_job_goes_by_its_process_runs_and_last_exit() {
    use NextStep::*;
    // A process, running or still being set up (xpcproxy): wait.
    assert_eq!(
        next_step(&job("running", Some(7), 2, None), Some(1), true),
        Wait
    );
    assert_eq!(
        next_step(&job("xpcproxy", Some(7), 2, None), Some(1), true),
        Wait
    );
    // Crashed since, held back by KeepAlive's throttle: failed, not waited out.
    assert_eq!(
        next_step(&job("spawn scheduled", None, 2, Some(78)), Some(1), true),
        Failed
    );
    // Held back from before this wait: launchd starts it soon.
    assert_eq!(
        next_step(&job("spawn scheduled", None, 1, Some(1)), Some(1), false),
        Wait
    );
    // Asked to start, never run (disabled, awaiting approval): on demand.
    assert_eq!(
        next_step(&job("not running", None, 1, Some(0)), Some(1), true),
        OnDemand
    );
    // Asked to start, ran and exited: failed.
    assert_eq!(
        next_step(&job("not running", None, 2, Some(0)), Some(1), true),
        Failed
    );
    // Running when the wait began, then stopped cleanly (a stop): start it again.
    assert_eq!(
        next_step(&job("not running", None, 1, Some(0)), Some(1), false),
        Kickstart
    );
}
