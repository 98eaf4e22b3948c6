//! The integration example runs against the stand-in in upstream mode: it
//! starts the service on demand and mounts over the ensure connection.

use spfs_autostart::{Config, ServiceManager};
use spfs_autostart_test_support::{Sandbox, free_port};

#[tokio::test]
async fn the_example_ensures_then_mounts_over_the_same_connection() {
    let mut sb = Sandbox::new();
    let mnt = sb.root().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let port = free_port();
    sb.set(
        "args",
        vec![
            "--plain".into(),
            "service".into(),
            mnt.display().to_string(),
        ],
    )
    .set("endpoint", format!("tcp://127.0.0.1:{port}"));
    let pid = std::process::id();
    let out = sb
        .command(env!("CARGO_BIN_EXE_spfs-mount-example"))
        // A live root process (this test's): a mount whose root has
        // exited is cleaned up.
        .args([&pid.to_string(), "platform/base", "rt-4711"])
        .env("SPFS_AUTOSTART_CONFIG", sb.config_file())
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
        format!("mounted platform/base for pid {pid} at tcp://127.0.0.1:{port}")
    );
    assert_eq!(sb.pids().len(), 1, "started on demand, once");
    // Loaded as the example's own process saw it: the sandbox's environment,
    // none of the caller's SPFS_AUTOSTART_* settings.
    let config = Config::load_with(Some(&sb.config_file()), |name| sb.var(name)).unwrap();
    let manager = ServiceManager::new(config).unwrap();
    let mounts = manager.status().await.unwrap().mounts;
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(
        (
            mounts[0].root_pid,
            mounts[0].env_spec.as_str(),
            mounts[0].runtime_name.as_str()
        ),
        (pid, "platform/base", "rt-4711")
    );
}
