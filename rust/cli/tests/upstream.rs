//! The CLI against the stand-in in upstream mode (`spfs-reference-service
//! --plain service MOUNTPOINT`), which behaves as the spfs-fuse-macos SPFS
//! users run (../shared/UPSTREAM.md): it learns its address only from
//! `--listen` or `SPFS_MACFUSE_LISTEN_ADDRESS`, `Shutdown` only unmounts,
//! SIGINT is its one graceful signal, and it logs in colour unless `NO_COLOR`.

mod common;

use std::path::PathBuf;

use common::*;
use spfs_autostart_test_support::mount_marker;

/// A sandbox whose service is the stand-in in upstream mode on a free
/// loopback port, mounting at `<sandbox>/mnt`. `extra` is appended to the
/// config.
struct Upstream {
    sb: Sandbox,
    port: u16,
    mnt: PathBuf,
}

impl Upstream {
    fn new(extra: &str) -> Upstream {
        let sb = Sandbox::new("");
        let port = free_port();
        let mnt = sb.dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        sb.write_config(&format!(
            "args = [\"--plain\", \"service\", {:?}]\nendpoint = \"tcp://127.0.0.1:{port}\"\n{extra}",
            path_str(&mnt)
        ));
        Upstream { sb, port, mnt }
    }

    fn mounted(&self) -> bool {
        mount_marker(&self.mnt).exists()
    }
}

#[test]
fn ensure_reaches_a_plain_service_with_the_endpoint_only_in_the_config() {
    let up = Upstream::new("");
    let status = up.sb.ensure();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["managed"], false);
    assert_eq!(status["endpoint"], format!("tcp://127.0.0.1:{}", up.port));
    assert_eq!(up.sb.service_pids().len(), 1);
    assert!(up.mounted(), "the service started and mounted");
    assert!(
        up.sb
            .log()
            .contains(&format!("Service started listen=127.0.0.1:{}", up.port)),
        "the service listens where the config says: {}",
        up.sb.log()
    );
    // The second ensure finds it: no second spawn.
    assert_eq!(up.sb.ensure()["state"], "running");
    assert_eq!(up.sb.spawn_count(), 1);
}

#[test]
fn logs_of_a_plain_service_show_no_escape_codes() {
    let up = Upstream::new("");
    up.sb.ensure();
    assert!(
        !up.sb.log().contains('\x1b'),
        "the service got NO_COLOR=1: {:?}",
        up.sb.log()
    );
    let shown = up.sb.ok(&["logs", "-n", "20"]);
    assert!(shown.contains("Service started"), "{shown}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
}

#[test]
fn logs_strip_colour_the_user_asked_the_service_for() {
    // The user's [env] may turn colour back on; the log then holds escape
    // codes, and `logs` still shows plain text.
    let up = Upstream::new("[env]\nNO_COLOR = \"\"\n");
    up.sb.ensure();
    assert!(up.sb.log().contains("\x1b["), "{:?}", up.sb.log());
    let shown = up.sb.ok(&["logs", "-n", "20"]);
    assert!(shown.contains("Service started"), "{shown}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
    let json = up.sb.ok(&["--json", "logs", "-n", "20"]);
    assert!(!json.contains("\\u001b"), "{json}");
}
