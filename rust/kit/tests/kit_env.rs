//! The kit's configuration comes from the spawner's environment alone.
//! One test in its own binary, because it
//! changes the process environment.

use std::os::fd::AsRawFd;
use std::path::Path;

use spfs_autostart_kit::KitConfig;
use spfs_autostart_kit::ResolvedEndpoint;

// The kit re-read the client's config file (a relative path,
// a broken per-user file) and exited. It also kept READY_FD/LOCK_FD in
// its environment, so a process it started could write READY into an
// unrelated descriptor.
#[test]
fn kit_config_reads_only_the_spawner_variables_and_removes_the_descriptors() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.toml");
    std::fs::write(&broken, "not = = toml").unwrap();
    let state = tmp.path().join("state");
    let (_read, write) = nix::unistd::pipe().unwrap();
    let lock = std::fs::File::create(tmp.path().join("instance.lock")).unwrap();
    // SAFETY: this test binary runs this one test on its main thread; no
    // other thread reads the environment meanwhile.
    unsafe {
        std::env::set_var("SPFS_AUTOSTART_CONFIG", &broken);
        std::env::set_var("XDG_CONFIG_HOME", tmp.path());
        std::env::set_var("SPFS_AUTOSTART_STATE_DIR", &state);
        std::env::set_var("SPFS_AUTOSTART_ENDPOINT", "unix");
        std::env::set_var("SPFS_AUTOSTART_IDLE_TIMEOUT_SECS", "7");
        std::env::set_var("SPFS_AUTOSTART_READY_FD", write.as_raw_fd().to_string());
        std::env::set_var("SPFS_AUTOSTART_LOCK_FD", lock.as_raw_fd().to_string());
    }
    let config = KitConfig::from_env().expect("the client's config file is not the kit's");
    assert_eq!(config.state_dir, state);
    assert_eq!(
        config.endpoint,
        ResolvedEndpoint::Unix(state.join("service.sock")),
        "\"unix\" is the state dir's socket"
    );
    assert_eq!(config.idle_timeout.as_secs(), 7);
    assert_eq!(
        config.ready_fd.as_ref().map(|fd| fd.as_raw_fd()),
        Some(write.as_raw_fd())
    );
    assert_eq!(
        config.lock_fd.as_ref().map(|fd| fd.as_raw_fd()),
        Some(lock.as_raw_fd())
    );
    assert!(std::env::var_os("SPFS_AUTOSTART_READY_FD").is_none());
    assert!(std::env::var_os("SPFS_AUTOSTART_LOCK_FD").is_none());
    // A process the service starts sees neither.
    let out = std::process::Command::new("/bin/sh")
        .args([
            "-c",
            "echo \"${SPFS_AUTOSTART_READY_FD-unset} ${SPFS_AUTOSTART_LOCK_FD-unset}\"",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "unset unset");
    // The config reports the descriptors it owns now; ours are the same
    // numbers, so they must not be closed twice.
    std::mem::forget(write);
    std::mem::forget(lock);
    // Nothing was created by reading the configuration.
    assert!(!Path::new(&state).exists());
    drop(config);

    // Numbers that are not what the spawner passes (a pipe for readiness,
    // a file for the lock) are someone else's: not taken, and still open
    // once the config is gone.
    let (_read, pipe) = nix::unistd::pipe().unwrap();
    let file = std::fs::File::create(tmp.path().join("other")).unwrap();
    // SAFETY: as above.
    unsafe {
        std::env::set_var("SPFS_AUTOSTART_READY_FD", file.as_raw_fd().to_string());
        std::env::set_var("SPFS_AUTOSTART_LOCK_FD", pipe.as_raw_fd().to_string());
    }
    let config = KitConfig::from_env().expect("the config");
    assert!(
        config.ready_fd.is_none(),
        "a file taken as the readiness pipe"
    );
    assert!(
        config.lock_fd.is_none(),
        "a pipe taken as the instance lock"
    );
    drop(config);
    for fd in [file.as_raw_fd(), pipe.as_raw_fd()] {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert_ne!(flags, -1, "{fd} was closed");
    }
}
