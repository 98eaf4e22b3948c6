//! `ensure` beside launchd's always-on job, against a stand-in launchd
//! that runs the reference service as launchd would (the program,
//! arguments and environment of the plist made from the config). The real
//! `launchctl` needs a Mac; `launchd_job`'s own tests cover what it is
//! asked and how its answers are read.

use std::process::{Child, Command, Stdio};

use spfs_autostart_agent::{AgentMode, LoadedAgent};
use spfs_autostart_test_support::Sandbox;

use super::*;
use crate::launchd_job::{AgentJob, JobLook, Launchd};

const LABEL: &str = spfs_autostart_agent::DEFAULT_LABEL;

/// launchd with one always-on job loaded: `kickstart` starts its command
/// (unless `starts` is false: a job waiting for approval), and `print`
/// says whether it runs, how often it ran and how its last run ended.
#[derive(Debug)]
struct FakeLaunchd {
    command: Mutex<Command>,
    starts: bool,
    job: Mutex<FakeJob>,
}

#[derive(Debug, Default)]
struct FakeJob {
    child: Option<Child>,
    runs: u64,
    last_exit_code: Option<i32>,
    /// KeepAlive (SuccessfulExit = false): a failed run is started again,
    /// after a throttle this stand-in never ends.
    scheduled: bool,
    kicks: u32,
}

impl FakeLaunchd {
    /// The job `agent install` would load for `config`.
    fn for_config(config: &Config, paths: &Paths, starts: bool) -> Arc<FakeLaunchd> {
        let spec =
            crate::agent_spec::spec_from_config(config, paths, AgentMode::Always, None, None)
                .expect("an agent spec");
        paths.create_log_dir().expect("log dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_file)
            .expect("the job's log");
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .env_clear()
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        Arc::new(FakeLaunchd {
            command: Mutex::new(command),
            starts,
            job: Mutex::new(FakeJob::default()),
        })
    }

    fn kicks(&self) -> u32 {
        self.job.lock().unwrap().kicks
    }

    /// The pid of the job's process, while it runs.
    fn pid(&self) -> Option<u32> {
        let mut job = self.job.lock().unwrap();
        job.update();
        job.child.as_ref().map(Child::id)
    }
}

impl FakeJob {
    /// Reap a process that exited, as launchd notes its exit.
    fn update(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.last_exit_code = status.code();
            self.scheduled = !status.success();
            self.child = None;
        }
    }
}

impl Launchd for FakeLaunchd {
    fn present(&self) -> bool {
        true
    }

    fn loaded(&self, _: &Config, _: &Paths) -> JobLook {
        let mut job = self.job.lock().unwrap();
        job.update();
        let state = match (job.child.is_some(), job.scheduled) {
            (true, _) => "running",
            (false, true) => "spawn scheduled",
            (false, false) => "not running",
        };
        JobLook::Loaded(AgentJob {
            label: LABEL,
            job: LoadedAgent {
                state: Some(state.into()),
                pid: job.child.as_ref().map(Child::id),
                runs: Some(job.runs),
                last_exit_code: job.last_exit_code,
                last_signal: None,
            },
        })
    }

    fn kickstart(
        &self,
        _: &'static str,
    ) -> std::result::Result<(), spfs_autostart_agent::LaunchdError> {
        let mut job = self.job.lock().unwrap();
        job.kicks += 1;
        job.update();
        if self.starts && job.child.is_none() {
            job.child = Some(self.command.lock().unwrap().spawn().expect("the job runs"));
            job.runs += 1;
        }
        Ok(())
    }
}

impl Drop for FakeLaunchd {
    fn drop(&mut self) {
        if let Some(mut child) = self.job.lock().unwrap().child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A sandbox for the reference service in kit mode on the state dir's
/// socket, with `args`, and a manager whose launchd is `starts`'s fake.
fn with_launchd(args: &[&str], starts: bool) -> (Sandbox, ServiceManager, Arc<FakeLaunchd>) {
    let sandbox = Sandbox::new()
        .with("args", args.to_vec())
        .with("idle_timeout_secs", 0)
        .with("endpoint", "unix")
        .with_env_in_config();
    let config = Config::load_with(Some(&sandbox.config_file()), |name| sandbox.var(name))
        .expect("the sandbox's config");
    let paths = config.paths().expect("paths");
    let launchd = FakeLaunchd::for_config(&config, &paths, starts);
    let manager = ServiceManager::new(config)
        .expect("a manager")
        .with_launchd(Arc::clone(&launchd) as Arc<dyn Launchd>);
    (sandbox, manager, launchd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_has_launchd_start_its_job_and_spawns_nothing() {
    let (sandbox, manager, launchd) = with_launchd(&[], true);
    let status = manager.ensure().await.expect("ensure");
    assert_eq!(launchd.kicks(), 1);
    assert_eq!(status.pid, launchd.pid(), "launchd's process serves");
    assert_eq!(sandbox.spawn_count(), 0, "{}", sandbox.log());
    // Running: nothing more is asked of launchd.
    manager.ensure().await.expect("ensure again");
    assert_eq!(launchd.kicks(), 1);
    manager.stop().await.expect("stop");
}

/// A job launchd takes the kickstart for but does not run (disabled,
/// waiting for approval in Login Items): the service is started on demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_launchd_does_not_run_leaves_the_start_to_ensure() {
    let (sandbox, manager, launchd) = with_launchd(&[], false);
    let status = manager.ensure().await.expect("ensure");
    assert_eq!(launchd.kicks(), 1);
    assert_eq!(launchd.pid(), None);
    assert!(status.pid.is_some());
    assert_eq!(sandbox.spawn_count(), 1, "{}", sandbox.log());
    manager.stop().await.expect("stop");
}

/// launchd's process exits before it serves, and launchd holds its next
/// start back (KeepAlive): the error says how at once, not at the deadline,
/// and is told to calls that waited for this start (`start-failed.json`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_exits_at_start_is_an_error_told_to_waiting_calls() {
    let (sandbox, manager, launchd) = with_launchd(&["--fail-at-start", "no mount"], true);
    let err = manager.ensure().await.expect_err("it exits");
    assert_eq!(err.kind(), ErrorKind::ExitedDuringStartup, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("its job {LABEL} and it exited with status 3")),
        "{err}"
    );
    assert_eq!(launchd.kicks(), 1);
    assert_eq!(sandbox.spawn_count(), 0, "{}", sandbox.log());
    assert!(manager.paths().failed_start().exists(), "told to others");
}

/// A version restart of launchd's service has launchd start it again, not
/// a copy of ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_restart_has_launchd_start_its_job_again() {
    let (sandbox, manager, launchd) = with_launchd(&["--report-version", "1.0.0"], true);
    let first = manager.ensure().await.expect("ensure").pid;
    assert_eq!(launchd.kicks(), 1);
    let mut config = manager.config().clone();
    config.expected_version = Some("9.9.9".into());
    let wanting = ServiceManager::new(config)
        .expect("a manager")
        .with_launchd(Arc::clone(&launchd) as Arc<dyn Launchd>);
    let err = wanting.ensure().await.expect_err("still the wrong version");
    assert_eq!(err.kind(), ErrorKind::VersionMismatch, "{err}");
    assert_eq!(launchd.kicks(), 2, "launchd started it again");
    let now = launchd.pid();
    assert!(now.is_some() && now != first, "{now:?} after {first:?}");
    assert_eq!(sandbox.spawn_count(), 0, "{}", sandbox.log());
    manager.stop().await.expect("stop");
}
