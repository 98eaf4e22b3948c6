//! The integration example runs against the stand-in in upstream mode: it
//! starts the service on demand and mounts over the ensure connection.

use std::process::Command;

use spfs_autostart::{Config, ServiceManager};
use spfs_autostart_test_support::{free_port, kill_services, reference_service, service_pids};

/// Kills every service started for the state dir, whatever the test asserted.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        kill_services(&self.0);
    }
}

#[tokio::test]
async fn the_example_ensures_then_mounts_over_the_same_connection() {
    let dir = tempfile::Builder::new()
        .prefix("sa-ex-")
        .tempdir_in("/tmp")
        .unwrap();
    let state = dir.path().join("state");
    let _cleanup = Cleanup(state.clone());
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let port = free_port();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "program = {:?}\nargs = [\"--plain\", \"service\", {:?}]\n\
             endpoint = \"tcp://127.0.0.1:{port}\"\nready_timeout_secs = 20\n\
             state_dir = {:?}\nlog_dir = {:?}\n",
            reference_service().display().to_string(),
            mnt.display().to_string(),
            state.display().to_string(),
            dir.path().join("logs").display().to_string(),
        ),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_spfs-mount-example"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SPFS_") {
            command.env_remove(key);
        }
    }
    let out = command
        .args(["4711", "platform/base", "rt-4711"])
        .env("SPFS_AUTOSTART_CONFIG", &config)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        format!("mounted platform/base for pid 4711 at tcp://127.0.0.1:{port}")
    );
    assert_eq!(service_pids(&state).len(), 1, "started on demand, once");
    let manager = ServiceManager::new(Config::load(Some(&config)).unwrap()).unwrap();
    let mounts = manager.status().await.unwrap().mounts;
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(
        (
            mounts[0].root_pid,
            mounts[0].env_spec.as_str(),
            mounts[0].runtime_name.as_str()
        ),
        (4711, "platform/base", "rt-4711")
    );
}
