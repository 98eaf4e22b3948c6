//! The platform calls about processes and descriptors (signals, pidfds,
//! process lookups, uids, close-on-exec) live in one module, `sys`, where
//! each is written once with its SAFETY reasoning and its pid-reuse rules.
//! Elsewhere the workspace calls `sys`.

use spfs_autostart_test_support::{code_lines_with, library_sources};

/// The calls that belong in `sys`. Built by concatenation, so that a scan
/// of this file would not match itself.
fn platform_calls() -> Vec<String> {
    [
        ("libc::", "fcntl"),
        ("FD_", "CLOEXEC"),
        ("signal::", "kill("),
        ("signal::", "killpg("),
        ("SYS_", "pidfd"),
        ("proc_", "pidinfo"),
        ("Pid::", "from_raw"),
        ("getuid", "()"),
        ("geteuid", "()"),
        // A process's owner (its directory's), not what lies under it.
        ("\"/proc/", "{pid}\")"),
    ]
    .iter()
    .map(|(a, b)| format!("{a}{b}"))
    .collect()
}

#[test]
fn signals_pids_uids_and_cloexec_go_through_sys() {
    let files = library_sources(&["protocol", "client", "kit", "agent", "cli", "ffi"]);
    assert!(files.len() > 40, "found the sources: {files:?}");
    let (sys, elsewhere): (Vec<_>, Vec<_>) = files.iter().partition(|f| {
        f.parent()
            .is_some_and(|dir| dir.ends_with("protocol/src/sys"))
    });
    assert!(!sys.is_empty(), "found sys among {files:?}");
    let calls = platform_calls();
    let found: Vec<String> = elsewhere
        .iter()
        .flat_map(|file| code_lines_with(file, &calls))
        .collect();
    assert!(
        found.is_empty(),
        "platform calls outside sys (add or use a function of sys instead):\n{}",
        found.join("\n")
    );
    // And sys itself has them, so the scan looks for what is really there
    // (all but the real uid, which nothing uses: "ours" is the effective one).
    let sys_text: String = sys
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for call in calls.iter().filter(|c| !c.starts_with("getuid")) {
        assert!(sys_text.contains(call.as_str()), "sys lacks {call}");
    }
}
