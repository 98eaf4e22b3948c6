//! `spfs-autostart agent print`: the plist or the systemd units, as text to
//! redirect into a file, or with `--json` each file by the name it is
//! installed under.

mod common;

use common::*;

/// `--json agent print ARGS`: (name, text) of each file.
fn files(sb: &Sandbox, args: &[&str]) -> Vec<(String, String)> {
    let mut argv = vec!["--json", "agent", "print"];
    argv.extend_from_slice(args);
    let report: serde_json::Value = serde_json::from_str(&sb.ok(&argv)).unwrap();
    report["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files: {report}"))
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn json_gives_the_plist_by_its_file_name_and_text_mode_the_plist_alone() {
    let sb = Sandbox::new();
    let files = files(&sb, &["--label", "org.example.spfs"]);
    assert_eq!(files.len(), 1, "{files:?}");
    let (name, text) = &files[0];
    assert_eq!(name, "org.example.spfs.plist");
    assert!(text.starts_with("<?xml"), "{text}");
    assert!(text.contains("<string>org.example.spfs</string>"), "{text}");
    // Text mode prints exactly the file, to be redirected into it.
    assert_eq!(
        &sb.ok(&["agent", "print", "--label", "org.example.spfs"]),
        text
    );
}

#[test]
fn json_gives_each_systemd_unit_by_its_file_name() {
    let sb = Sandbox::new();
    let always = files(&sb, &["--format", "systemd"]);
    let names: Vec<&str> = always.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["spfs-fuse-macos.service"]);

    let socket = files(&sb, &["--format", "systemd", "--mode", "socket"]);
    let names: Vec<&str> = socket.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["spfs-fuse-macos.service", "spfs-fuse-macos.socket"]);
    assert!(socket[0].1.contains("[Service]"), "{}", socket[0].1);
    assert!(socket[1].1.contains("[Socket]"), "{}", socket[1].1);
    // Text mode names each unit in a comment line before it.
    let text = sb.ok(&["agent", "print", "--format", "systemd", "--mode", "socket"]);
    assert_eq!(
        text,
        format!(
            "# {}\n{}\n# {}\n{}",
            socket[0].0, socket[0].1, socket[1].0, socket[1].1
        )
    );
}

#[test]
fn a_bundle_program_for_systemd_units_is_refused_not_dropped() {
    let sb = Sandbox::new();
    let out = sb.run(&[
        "agent",
        "print",
        "--format",
        "systemd",
        "--bundle-program",
        "Contents/MacOS/spfs-fuse-macos",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("--bundle-program"),
        "{}",
        stderr(&out)
    );
    // For a plist it is what it is for.
    let plist = files(&sb, &["--bundle-program", "Contents/MacOS/spfs-fuse-macos"]);
    assert!(
        plist[0].1.contains("<key>BundleProgram</key>"),
        "{}",
        plist[0].1
    );
}

/// Socket mode with a TCP endpoint is refused with fixes that work here:
/// off macOS, printing the always-on units, not `agent install` (launchd
/// only), which would fail.
#[test]
fn socket_mode_with_a_tcp_endpoint_offers_fixes_that_work_here() {
    let sb = Sandbox::new().with("endpoint", "tcp://127.0.0.1:47738");
    let out = sb.run(&["agent", "print", "--format", "systemd", "--mode", "socket"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("socket mode needs a Unix socket endpoint"),
        "{err}"
    );
    if cfg!(target_os = "macos") {
        assert!(err.contains("agent install --mode always"), "{err}");
    } else {
        assert!(
            err.contains(&as_run(
                &sb,
                "`spfs-autostart agent print --format systemd`"
            )),
            "{err}"
        );
        assert!(!err.contains("agent install"), "{err}");
        // That fix works when followed.
        sb.ok(&["agent", "print", "--format", "systemd"]);
    }
}

/// A command in a hint acts on what this run named: its global flags and
/// the agent's label come along, quoted for a shell where they need it.
#[test]
fn a_hint_repeats_the_runs_config_state_dir_and_label() {
    if cfg!(target_os = "macos") {
        return; // `agent install` works there: no hint to follow
    }
    let sb = Sandbox::new();
    let dir = sb.root().join("a state dir");
    let out = sb.run(&[
        "--state-dir",
        dir.to_str().unwrap(),
        "agent",
        "install",
        "--label",
        "my.label",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let expected = format!(
        "`spfs-autostart --config={} --state-dir='{}' agent print --format systemd --label=my.label`",
        sb.config_file().display(),
        dir.display()
    );
    assert!(err.contains(&expected), "{err}");
}

/// `agent install --mode socket` where launchd is missing points at the
/// systemd units of socket mode; the hint printed the always-on ones.
#[test]
fn the_systemd_hint_of_a_socket_install_prints_socket_units() {
    if cfg!(target_os = "macos") {
        return; // `agent install` works there: no hint to follow
    }
    let sb = Sandbox::new().with("endpoint", "unix");
    let out = sb.run(&["agent", "install", "--mode", "socket"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&as_run(
            &sb,
            "`spfs-autostart agent print --format systemd --mode socket`"
        )),
        "{err}"
    );
    // The command given works, and prints a socket unit.
    let printed = sb.ok(&["agent", "print", "--format", "systemd", "--mode", "socket"]);
    assert!(printed.contains("ListenStream="), "{printed}");
    // Always-on asked, always-on offered.
    let err = stderr(&sb.run(&["agent", "install"]));
    assert!(
        err.contains(&as_run(
            &sb,
            "`spfs-autostart agent print --format systemd`"
        )),
        "{err}"
    );
}

/// A flag's bad value is named by the flag typed, not by the library's
/// name for the setting.
#[test]
fn a_bad_agent_flag_value_is_named_by_its_flag() {
    let sb = Sandbox::new();
    for (args, flag) in [
        (["--label", "bad label"], "--label: "),
        (["--bundle-program", "/abs/x"], "--bundle-program: "),
    ] {
        let mut argv = vec!["--json", "agent", "print"];
        argv.extend_from_slice(&args);
        let out = sb.run(&argv);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(error["error"]["kind"], "InvalidConfig", "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(flag), "{error}");
    }
}

/// The label rules are the project's own, for launchd and systemd alike:
/// a refused label is not said to be launchd's (it was, for systemd units).
#[test]
fn a_bad_label_is_refused_by_the_same_rule_for_either_format() {
    let sb = Sandbox::new();
    for format in ["launchd", "systemd"] {
        let out = sb.run(&["agent", "print", "--format", format, "--label", "a b"]);
        assert_eq!(out.status.code(), Some(1), "{format}: {}", stderr(&out));
        let said = stderr(&out);
        assert!(said.contains("contains ' '"), "{format}: {said}");
        assert!(!said.contains("launchd"), "{format}: {said}");
    }
}

/// The app's own agent is the app's: `agent install` and `uninstall` with
/// its label are refused, saying where to turn it on or off.
#[test]
fn the_apps_agent_label_is_refused_by_install_and_uninstall() {
    let sb = Sandbox::new();
    let label = spfs_autostart_agent::APP_LABEL;
    for args in [
        &["agent", "install", "--label", label][..],
        &["agent", "uninstall", "--label", label],
    ] {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("menu-bar app"), "{args:?}: {err}");
    }
}

/// A plist for the app's bundle is the app's: its label unless one is
/// given. It took the CLI's agent's label, which the app's then collided
/// with (two jobs, one service).
#[test]
fn a_bundled_plist_takes_the_apps_label_unless_one_is_given() {
    let sb = Sandbox::new();
    let bundled = ["--bundle-program", "Contents/MacOS/spfs-fuse-macos"];
    let plist = files(&sb, &bundled);
    assert_eq!(plist[0].0, "ai.spk.spfs-menu.spfs-fuse-macos.plist");
    assert!(
        plist[0]
            .1
            .contains("<string>ai.spk.spfs-menu.spfs-fuse-macos</string>"),
        "{}",
        plist[0].1
    );
    let named = files(&sb, &[bundled[0], bundled[1], "--label", "my.label"]);
    assert!(
        named[0].1.contains("<string>my.label</string>"),
        "{}",
        named[0].1
    );
    // Without a bundle, the CLI's own.
    let own = files(&sb, &[]);
    assert!(
        own[0].1.contains("<string>ai.spk.spfs-fuse-macos</string>"),
        "{}",
        own[0].1
    );
}
