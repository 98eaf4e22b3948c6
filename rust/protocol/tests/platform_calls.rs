//! The platform calls about processes and descriptors (signals, pidfds,
//! process lookups, uids, close-on-exec) live in one module, `sys`, where
//! each is written once with its SAFETY reasoning and its pid-reuse rules.
//! Elsewhere the workspace calls `sys`.

use std::path::{Path, PathBuf};

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

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn signals_pids_uids_and_cloexec_go_through_sys() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sys = crates.join("protocol/src/sys");
    let mut files = Vec::new();
    for name in ["protocol", "client", "kit", "agent", "cli", "ffi"] {
        rust_files(&crates.join(name).join("src"), &mut files);
    }
    assert!(files.len() > 40, "found the sources: {files:?}");
    let in_sys = |f: &PathBuf| f.starts_with(&sys);
    assert!(files.iter().any(in_sys), "found sys among {files:?}");
    let calls = platform_calls();
    let mut found = Vec::new();
    let is_test_file = |f: &PathBuf| f.file_name().is_some_and(|n| n == "tests.rs");
    for file in files.iter().filter(|f| !in_sys(f) && !is_test_file(f)) {
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests sit at the end of a file and may poke at processes
        // directly; comments may name the calls.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let trimmed = line.trim_start();
            if !trimmed.starts_with("//") && calls.iter().any(|c| line.contains(c.as_str())) {
                found.push(format!("{}:{}: {trimmed}", file.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "platform calls outside sys (add or use a function of sys instead):\n{}",
        found.join("\n")
    );
    // And sys itself has them, so the scan looks for what is really there
    // (all but the real uid, which nothing uses: "ours" is the effective one).
    let sys_text: String = files
        .iter()
        .filter(|f| in_sys(f) && !is_test_file(f))
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for call in calls.iter().filter(|c| !c.starts_with("getuid")) {
        assert!(sys_text.contains(call.as_str()), "sys lacks {call}");
    }
}
