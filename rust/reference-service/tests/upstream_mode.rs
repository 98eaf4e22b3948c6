//! `--plain` behaves as upstream's spfs-fuse-macos (spk pull request #1308):
//! the arguments and environment it takes, `Shutdown` that only unmounts,
//! SIGINT graceful, SIGTERM unclean, stderr in colour unless `NO_COLOR`.
//! Every client test of the upstream case relies on these.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use spfs_autostart_kit::proto::vfs::{
    MountRequest, ShutdownRequest, StatusRequest, UnmountRequest,
    vfs_service_client::VfsServiceClient,
};
use spfs_autostart_test_support::{Sandbox, free_port, mount_marker};
use tonic::transport::Channel;

/// Generous: the machine is shared and loaded.
const WAIT: Duration = Duration::from_secs(20);

/// One stand-in process with its own mountpoint and stderr file in a
/// sandbox; killed on drop (and the sandbox kills whatever it started).
struct Upstream {
    child: Child,
    port: u16,
    sb: Sandbox,
}

impl Upstream {
    /// Start `spfs-reference-service --plain ARGS` with `env`, where ARGS may
    /// name `{port}` and `{mnt}`.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Upstream {
        let sb = Sandbox::new();
        std::fs::create_dir(sb.root().join("mnt")).expect("mountpoint");
        let port = free_port();
        let mnt = sb.root().join("mnt").display().to_string();
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                a.replace("{port}", &port.to_string())
                    .replace("{mnt}", &mnt)
            })
            .collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.replace("{port}", &port.to_string())))
            .collect();
        let stderr = std::fs::File::create(sb.root().join("stderr")).expect("stderr file");
        // The sandbox's environment already leaves out the caller's
        // SPFS_MACFUSE_LISTEN_ADDRESS.
        let mut command = sb.command(env!("CARGO_BIN_EXE_spfs-reference-service"));
        command
            .arg("--plain")
            .args(&args)
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = command.spawn().expect("spawn spfs-reference-service");
        Upstream { child, port, sb }
    }

    fn mountpoint(&self) -> PathBuf {
        self.sb.root().join("mnt")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.sb.root().join("stderr")).unwrap_or_default()
    }

    /// A client, once the service answers `Status`.
    async fn client(&self) -> VfsServiceClient<Channel> {
        let deadline = Instant::now() + WAIT;
        loop {
            let endpoint = format!("http://127.0.0.1:{}", self.port);
            if let Ok(channel) = Channel::from_shared(endpoint).unwrap().connect().await {
                let mut client = VfsServiceClient::new(channel);
                if client.status(StatusRequest {}).await.is_ok() {
                    return client;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the service never answered on port {}: {}",
                self.port,
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal the service");
    }

    /// Wait for the exit; its code, or 128 + the signal. Async, so the
    /// test's own connections keep being served (a graceful shutdown waits
    /// for them to close).
    async fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                use std::os::unix::process::ExitStatusExt;
                return status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            }
            assert!(Instant::now() < deadline, "the service did not exit");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn marked(mountpoint: &Path) -> bool {
    mount_marker(mountpoint).exists()
}

#[tokio::test]
async fn service_subcommand_takes_listen_and_mountpoint_and_mounts_before_serving() {
    let service = Upstream::start(&["service", "--listen", "127.0.0.1:{port}", "{mnt}"], &[]);
    service.client().await;
    assert!(marked(&service.mountpoint()), "{}", service.stderr());
    assert_eq!(
        std::fs::read_to_string(mount_marker(&service.mountpoint())).unwrap(),
        service.child.id().to_string()
    );
}

#[tokio::test]
async fn listen_address_comes_from_spfs_macfuse_listen_address() {
    let service = Upstream::start(
        &["service", "{mnt}"],
        &[("SPFS_MACFUSE_LISTEN_ADDRESS", "127.0.0.1:{port}")],
    );
    service.client().await;
    assert!(service.stderr().contains("Service started"));
}

#[tokio::test]
async fn mount_status_unmount_carry_upstream_fields() {
    let service = Upstream::start(&["service", "--listen", "127.0.0.1:{port}", "{mnt}"], &[]);
    let mut client = service.client().await;
    // A live root process: a mount whose root has exited is cleaned up.
    let pid = std::process::id();
    client
        .mount(MountRequest {
            root_pid: pid,
            env_spec: "platform/base+tools".into(),
            editable: true,
            runtime_name: "rt-1".into(),
            repositories: vec!["origin".into()],
        })
        .await
        .expect("mount");
    let status = client.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.active_mounts, 1);
    let mount = &status.mounts[0];
    assert_eq!(
        (
            mount.root_pid,
            mount.env_spec.as_str(),
            mount.editable,
            mount.runtime_name.as_str()
        ),
        (pid, "platform/base+tools", true, "rt-1")
    );
    let unmount = client.unmount(UnmountRequest { root_pid: pid }).await;
    assert!(unmount.unwrap().into_inner().was_mounted);
    let again = client.unmount(UnmountRequest { root_pid: pid }).await;
    assert!(!again.unwrap().into_inner().was_mounted);
    let status = client.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!((status.active_mounts, status.mounts.len()), (0, 0));
}

#[tokio::test]
async fn shutdown_unmounts_but_the_process_keeps_serving() {
    let mut service = Upstream::start(&["service", "--listen", "127.0.0.1:{port}", "{mnt}"], &[]);
    let mut client = service.client().await;
    client.shutdown(ShutdownRequest {}).await.expect("shutdown");
    assert!(!marked(&service.mountpoint()), "Shutdown unmounts");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        service.running(),
        "upstream's Shutdown does not end the process"
    );
    client
        .status(StatusRequest {})
        .await
        .expect("still serving");
    // A second Shutdown fails like upstream's second `umount`.
    let err = client.shutdown(ShutdownRequest {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Internal);
    assert!(err.message().contains("Failed to stop service"), "{err}");
    assert!(service.running());
}

#[tokio::test]
async fn sigint_stops_serving_unmounts_and_exits_zero() {
    let mut service = Upstream::start(&["service", "--listen", "127.0.0.1:{port}", "{mnt}"], &[]);
    service.client().await;
    service.signal(Signal::SIGINT);
    assert_eq!(service.wait_exit().await, 0, "{}", service.stderr());
    assert!(!marked(&service.mountpoint()), "SIGINT unmounts");
    assert!(service.stderr().contains("Service stopped"));
}

#[tokio::test]
async fn sigterm_kills_at_once_and_leaves_the_mount_behind() {
    let mut service = Upstream::start(&["service", "--listen", "127.0.0.1:{port}", "{mnt}"], &[]);
    service.client().await;
    service.signal(Signal::SIGTERM);
    assert_eq!(service.wait_exit().await, 128 + Signal::SIGTERM as i32);
    assert!(
        marked(&service.mountpoint()),
        "the unclean exit's trace stays"
    );
    assert!(!service.stderr().contains("Service stopped"));
}

#[tokio::test]
async fn stderr_is_in_colour_unless_no_color_is_set() {
    let coloured = Upstream::start(&["service", "--listen", "127.0.0.1:{port}", "{mnt}"], &[]);
    coloured.client().await;
    assert!(coloured.stderr().contains("\x1b["), "{}", coloured.stderr());
    let plain = Upstream::start(
        &["service", "--listen", "127.0.0.1:{port}", "{mnt}"],
        &[("NO_COLOR", "1")],
    );
    plain.client().await;
    let text = plain.stderr();
    assert!(text.contains("Service started"), "{text}");
    assert!(!text.contains('\x1b'), "{text:?}");
}

#[tokio::test]
async fn a_missing_mountpoint_is_logged_and_the_service_still_serves() {
    let service = Upstream::start(
        &["service", "--listen", "127.0.0.1:{port}", "{mnt}/absent"],
        &[],
    );
    service.client().await;
    assert!(
        service.stderr().contains("FUSE mount error"),
        "{}",
        service.stderr()
    );
}

#[tokio::test]
async fn the_old_form_without_service_still_works() {
    let service = Upstream::start(&["--listen", "127.0.0.1:{port}"], &[]);
    service.client().await;
}

#[tokio::test]
async fn shutdown_exits_switch_ends_the_process_after_unmounting() {
    let mut service = Upstream::start(
        &[
            "--shutdown-exits",
            "service",
            "--listen",
            "127.0.0.1:{port}",
            "{mnt}",
        ],
        &[],
    );
    let mut client = service.client().await;
    client.shutdown(ShutdownRequest {}).await.expect("shutdown");
    drop(client);
    assert_eq!(service.wait_exit().await, 0, "{}", service.stderr());
    assert!(!marked(&service.mountpoint()));
}
