//! The paths' tests: the state dir's creation and checks, the default
//! dirs, and the socket path's length and directory.

use super::*;

/// A new directory at `path` with exactly `mode` (the umask does not apply).
fn dir_with_mode(path: PathBuf, mode: u32) -> PathBuf {
    fs::create_dir(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn state_dir_is_created_private() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = Paths {
        state_dir: tmp.path().join("a/state"),
        log_dir: tmp.path().join("logs"),
    };
    assert!(!paths.check_state_dir().unwrap());
    paths.create_state_dir().unwrap();
    let mode = fs::metadata(&paths.state_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(paths.check_state_dir().unwrap());
}

#[test]
fn group_readable_state_dir_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = dir_with_mode(tmp.path().join("state"), 0o750);
    let paths = Paths {
        state_dir: dir.clone(),
        log_dir: tmp.path().join("logs"),
    };
    let err = paths.create_state_dir().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(err.to_string().contains("chmod 700"), "{err}");
    assert_eq!(err.remedies(), [Remedy::SetKey("state_dir")]);
    let mode = fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o750, "we must not chmod it");
}

#[test]
fn a_shared_dir_like_tmp_is_refused_without_advice_to_close_it() {
    let tmp = tempfile::tempdir().unwrap();
    for mode in [0o1777, 0o1770] {
        let dir = dir_with_mode(tmp.path().join(format!("shared-{mode:o}")), mode);
        let err = check_private_dir(&dir, "state dir").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        let text = err.to_string();
        // Closing a directory others write to would break their use of it.
        assert!(!text.contains("chmod"), "{text}");
        assert!(text.contains("choose a state dir of your own"), "{text}");
        assert_eq!(err.remedies(), [Remedy::SetKey("state_dir")]);
        let left = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(left & 0o7777, mode, "we must not chmod it");
    }
}

#[test]
fn the_root_and_its_children_are_never_advised_to_be_closed() {
    // As root, `/` is ours; its mode lets others in, and closing it would
    // break the system.
    for dir in ["/", "/usr"] {
        let Err(err) = check_private_dir(Path::new(dir), "state dir") else {
            continue; // not ours here (not running as root): refused otherwise
        };
        let text = err.to_string();
        assert!(!text.contains("chmod"), "{dir}: {text}");
        assert!(text.contains("state dir"), "{dir}: {text}");
    }
    assert!(shared_on_purpose(Path::new("/"), 0o755));
    assert!(shared_on_purpose(Path::new("/home"), 0o755));
    assert!(!shared_on_purpose(Path::new("/home/me"), 0o755));
}

#[test]
fn state_dir_that_is_a_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("state");
    fs::write(&file, "x").unwrap();
    let paths = Paths {
        state_dir: file,
        log_dir: tmp.path().join("logs"),
    };
    let err = paths.create_state_dir().unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
}

/// A state dir that is a symbolic link (to a private dir) is refused as a
/// link, naming where it points, not as "not a directory".
#[test]
fn state_dir_that_is_a_symlink_is_refused_as_one() {
    let tmp = tempfile::tempdir().unwrap();
    let real = dir_with_mode(tmp.path().join("real"), 0o700);
    let link = tmp.path().join("state");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let paths = Paths {
        state_dir: link,
        log_dir: tmp.path().join("logs"),
    };
    let err = paths.create_state_dir().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("is a symbolic link"), "{text}");
    assert!(text.contains(&real.display().to_string()), "{text}");
}

/// Looking at an existing state dir (what every `ensure` does first)
/// refuses it exactly as creating it would, and makes nothing: a link, a
/// group-readable dir, a file, and a path under a file.
#[test]
fn checking_a_state_dir_refuses_what_creating_it_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let private = dir_with_mode(tmp.path().join("private"), 0o700);
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&private, &link).unwrap();
    let shared = dir_with_mode(tmp.path().join("shared"), 0o750);
    let file = tmp.path().join("afile");
    fs::write(&file, "").unwrap();
    for (dir, says) in [
        (link, "is a symbolic link"),
        (shared, "which lets other users in"),
        (file.clone(), "is not a directory"),
        (file.join("state"), "is a file"),
    ] {
        let paths = Paths {
            state_dir: dir.clone(),
            log_dir: tmp.path().join("logs"),
        };
        let looked = paths.check_state_dir().unwrap_err().to_string();
        assert!(looked.contains(says), "{dir:?}: {looked}");
        let created = paths.create_state_dir().unwrap_err().to_string();
        assert_eq!(looked, created, "{dir:?}");
    }
    let paths = Paths {
        state_dir: private,
        log_dir: tmp.path().join("logs"),
    };
    assert!(paths.check_state_dir().unwrap());
    assert!(!paths.log_dir.exists(), "a look creates nothing");
}

#[test]
fn long_socket_path_is_refused_naming_state_dir_as_the_remedy() {
    let long = PathBuf::from(format!("/tmp/{}/service.sock", "x".repeat(120)));
    let err = check_socket_path(&long).unwrap_err();
    assert!(
        err.to_string().contains("SPFS_AUTOSTART_STATE_DIR"),
        "{err}"
    );
    // As data too, so each front end can say how it sets the state dir.
    assert_eq!(err.remedies(), [Remedy::SetKey("state_dir")]);
}

/// A TCP endpoint built by hand (the config's parser refuses these) must
/// still be a loopback one: the service's calls ask for no credentials.
#[test]
fn a_tcp_endpoint_that_is_not_loopback_is_refused_naming_endpoint() {
    let paths = Paths {
        state_dir: PathBuf::from("/nonexistent/state"),
        log_dir: PathBuf::from("/nonexistent/logs"),
    };
    let tcp = |addr: &str| ResolvedEndpoint::Tcp(addr.parse().unwrap());
    for open in ["0.0.0.0:37738", "192.0.2.1:37738", "[::]:37738"] {
        let err = paths.check_endpoint(&tcp(open)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{open}");
        assert!(err.to_string().contains("not a loopback address"), "{err}");
        assert_eq!(err.remedies(), [Remedy::SetKey("endpoint")]);
    }
    paths.check_endpoint(&tcp("127.0.0.1:37738")).unwrap();
    paths.check_endpoint(&tcp("[::1]:37738")).unwrap();
}

#[test]
fn a_unix_endpoint_in_a_missing_or_non_directory_is_refused_naming_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = Paths {
        state_dir: tmp.path().join("state"),
        log_dir: tmp.path().join("logs"),
    };
    let unix = |path: PathBuf| ResolvedEndpoint::Unix(path);
    let missing = tmp.path().join("nope").join("x.sock");
    let err = paths.check_endpoint_dir(&unix(missing)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(err.remedies(), [Remedy::SetKey("endpoint")]);
    std::fs::write(tmp.path().join("afile"), "").unwrap();
    let err = paths
        .check_endpoint_dir(&unix(tmp.path().join("afile").join("x.sock")))
        .unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
    let err = paths
        .check_endpoint_dir(&unix(tmp.path().join("afile").join("sub").join("x.sock")))
        .unwrap_err();
    let named = format!("{} is a file", tmp.path().join("afile").display());
    assert!(err.to_string().contains(&named), "{err}");
    // A directory that is there passes; so does any socket directly in the
    // state dir (not made yet here), which a start creates, and TCP.
    paths
        .check_endpoint_dir(&unix(tmp.path().join("x.sock")))
        .unwrap();
    paths.check_endpoint_dir(&unix(paths.socket())).unwrap();
    paths
        .check_endpoint_dir(&unix(paths.state_dir.join("other.sock")))
        .unwrap();
    // The same not-yet-made state dir, spelled with `..`, or through a
    // symlink to it.
    let spelled = tmp.path().join("logs").join("..").join("state");
    paths
        .check_endpoint_dir(&unix(spelled.join("s.sock")))
        .unwrap();
    std::os::unix::fs::symlink(&paths.state_dir, tmp.path().join("link")).unwrap();
    paths
        .check_endpoint_dir(&unix(tmp.path().join("link").join("s.sock")))
        .unwrap();
    paths
        .check_endpoint_dir(&ResolvedEndpoint::Tcp("127.0.0.1:1".parse().unwrap()))
        .unwrap();
}

// A context with another XDG_RUNTIME_DIR (cron, sudo,
// ssh) started a second "singleton". Simulated with two private dirs:
// real login contexts and /run/user cannot be made in a test.
#[test]
fn a_live_service_in_another_default_state_dir_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let here = tmp.path().join("here");
    let there = tmp.path().join("there");
    let idle = tmp.path().join("idle");
    for dir in [&here, &there, &idle] {
        create_private_dir(dir, "state dir").unwrap();
    }
    let held = crate::lock::try_take(&there.join("instance.lock"))
        .unwrap()
        .expect("free");
    std::fs::File::create(idle.join("instance.lock")).unwrap();
    let candidates = vec![here.clone(), there.clone(), idle.clone()];
    assert_eq!(live_among(candidates.clone(), &here), vec![there.clone()]);
    drop(held);
    assert!(live_among(candidates, &here).is_empty());
}

#[test]
fn runtime_dir_of_another_user_is_not_a_default() {
    let tmp = tempfile::tempdir().unwrap();
    let theirs = tmp.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    let mine = tmp.path().join("mine");
    fs::create_dir(&mine).unwrap();
    let env_of = |dir: &Path| {
        let dir = dir.display().to_string();
        move |name: &str| (name == "XDG_RUNTIME_DIR").then(|| dir.clone())
    };
    assert_eq!(
        default_state_dir(&env_of(&mine)),
        mine.join("spfs-autostart")
    );
    // Another owner: as `su` leaves it. Only root can make one here.
    if nix::unistd::geteuid().is_root() && cfg!(not(target_os = "macos")) {
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        assert_ne!(
            default_state_dir(&env_of(&theirs)),
            theirs.join("spfs-autostart")
        );
    }
}

#[test]
fn a_writable_log_dir_gets_chmod_only_when_it_is_not_shared_on_purpose() {
    let tmp = tempfile::tempdir().unwrap();
    for (mode, chmod) in [(0o770, true), (0o1777, false), (0o777, true)] {
        let dir = dir_with_mode(tmp.path().join(format!("logs-{mode:o}")), mode);
        let paths = Paths {
            state_dir: tmp.path().join("state"),
            log_dir: dir.clone(),
        };
        let err = paths.create_log_dir().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("choose a log dir of your own"), "{text}");
        assert_eq!(text.contains("chmod go-w"), chmod, "{text}");
        assert_eq!(err.remedies(), [Remedy::SetKey("log_dir")]);
        let left = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(left & 0o7777, mode, "we must not chmod it");
    }
}

/// What stands where a directory belongs is named as what it is, without
/// the `/.` or `/` a setting may end in; only a regular file is one to
/// advise removing (not `/dev/null`).
#[test]
fn what_stands_in_a_dirs_way_is_named_as_what_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("afile");
    std::fs::write(&file, "").unwrap();
    let under = (format!("cannot exist: {} is a file", file.display()), true);
    for dir in [
        file.join("state"),
        file.join("a").join("b"),
        file.join("x/"),
    ] {
        assert_eq!(in_the_way(&dir), under, "{dir:?}");
    }
    let itself = ("is not a directory".to_string(), true);
    assert_eq!(in_the_way(&file), itself);
    assert_eq!(in_the_way(&file.join(".")), itself);
    assert_eq!(
        in_the_way(Path::new("/dev/null/state")),
        (
            "cannot exist: /dev/null is not a directory".to_string(),
            false
        )
    );
    assert_eq!(
        in_the_way(Path::new("/dev/null")),
        ("is not a directory".to_string(), false)
    );
    // The advice follows: a log dir at /dev/null is not to be removed.
    let paths = Paths {
        state_dir: tmp.path().join("state"),
        log_dir: "/dev/null".into(),
    };
    let err = paths.check_log_dir().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(
        err.to_string().contains("/dev/null is not a directory"),
        "{err}"
    );
    assert!(!err.to_string().contains("remove"), "{err}");
    // A file of the user's in the way: another dir first, removal last
    // and only for a leftover (the path may be a typo, the file precious).
    let paths = Paths {
        state_dir: file.clone(),
        log_dir: tmp.path().join("logs"),
    };
    let err = paths.check_state_dir().unwrap_err().to_string();
    assert!(
        err.ends_with(&format!(
            "is not a directory; choose another state dir with {}; or, if that file is a \
             leftover, remove it",
            fix_for("state dir")
        )),
        "{err}"
    );
    // Another user's file (`--state-dir /etc/passwd` as a user): never.
    let theirs = tmp.path().join("theirs");
    std::fs::write(&theirs, "").unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    assert_eq!(
        in_the_way(&theirs.join("state")),
        (
            format!("cannot exist: {} is a file", theirs.display()),
            false
        )
    );
    let paths = Paths {
        state_dir: theirs.clone(),
        log_dir: tmp.path().join("logs"),
    };
    let err = paths.check_state_dir().unwrap_err().to_string();
    assert!(!err.contains("remove"), "{err}");
}

/// A log dir may be a link of one's own to a dir elsewhere; a link another
/// user made (where `sudo -E` kept their HOME) is refused, naming its
/// maker, however good the dir it leads to looks.
#[test]
fn a_log_dir_linked_by_another_user_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o700)).unwrap();
    let link = tmp.path().join("logs");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let paths = Paths {
        state_dir: tmp.path().join("state"),
        log_dir: link.clone(),
    };
    assert!(paths.check_log_dir().unwrap(), "one's own link");
    let other = 65534;
    std::os::unix::fs::lchown(&link, Some(other), None).unwrap();
    let err = paths.check_log_dir().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(
        err.to_string().contains(&format!("made by uid {other}")),
        "{err}"
    );
}
