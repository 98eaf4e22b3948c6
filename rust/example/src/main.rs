//! `spfs-mount-example ROOT_PID ENV_SPEC [RUNTIME_NAME]`: what spfs's
//! `env_macos.rs` does with this crate (docs/spfs-integration.md): make sure
//! the per-user service runs, then ask it to mount an environment for a
//! process tree over the connection `ensure` used, with no second connect
//! and no `spfs-fuse-macos mount` subprocess.
//!
//! The configuration is the usual one (`SPFS_AUTOSTART_CONFIG`, the
//! per-user file, the defaults). Exit 0 once mounted; 1 with the error
//! otherwise.

use std::process::ExitCode;

use spfs_autostart::proto::vfs::{MountRequest, vfs_service_client::VfsServiceClient};
use spfs_autostart::{Config, ServiceManager};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (root_pid, env_spec, runtime_name) = match args.as_slice() {
        [pid, spec] => (pid, spec, String::new()),
        [pid, spec, name] => (pid, spec, name.clone()),
        _ => {
            eprintln!("usage: spfs-mount-example ROOT_PID ENV_SPEC [RUNTIME_NAME]");
            return ExitCode::from(2);
        }
    };
    let Ok(root_pid) = root_pid.parse::<u32>() else {
        eprintln!("error: ROOT_PID {root_pid:?} is not a process id");
        return ExitCode::from(2);
    };
    match mount(root_pid, env_spec, runtime_name).await {
        Ok(endpoint) => {
            println!("mounted {env_spec} for pid {root_pid} at {endpoint}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Ensure, then `Mount` over the same channel; the endpoint on success.
async fn mount(root_pid: u32, env_spec: &str, runtime_name: String) -> Result<String, String> {
    let config = Config::load(None).map_err(|e| e.to_string())?;
    let manager = ServiceManager::new(config).map_err(|e| e.to_string())?;
    // Starts the service on demand, exactly once however many shells ask;
    // the error says what failed and carries the service's log tail.
    manager.ensure().await.map_err(|e| e.to_string())?;
    // The connection ensure just used: no second connect.
    let channel = manager.channel().await.map_err(|e| e.to_string())?;
    VfsServiceClient::new(channel)
        .mount(MountRequest {
            root_pid,
            env_spec: env_spec.to_string(),
            editable: false,
            runtime_name,
            repositories: Vec::new(),
        })
        .await
        .map_err(|status| format!("the service refused the mount: {}", status.message()))?;
    Ok(manager.endpoint().to_string())
}
