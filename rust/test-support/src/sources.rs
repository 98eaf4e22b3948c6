//! Scans of the workspace's own library code, for the tests that keep a
//! rule across crates (which words messages use, where platform calls
//! live).

use std::path::{Path, PathBuf};

/// The library sources of these workspace crates (`rust/<name>/src`, every
/// `.rs` file below it), without the `tests.rs` files that hold unit tests.
pub fn library_sources(crates: &[&str]) -> Vec<PathBuf> {
    let rust = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for name in crates {
        rust_files(&rust.join(name).join("src"), &mut files);
    }
    files.retain(|f| f.file_name().is_none_or(|n| n != "tests.rs"));
    files
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of `file` that contain one of `words`, as `file:line: text`,
/// leaving out comments (they are for us) and the unit tests at the end of
/// the file (after its `#[cfg(test)]`).
pub fn code_lines_with(file: &Path, words: &[String]) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| words.iter().any(|w| line.contains(w.as_str())))
        .map(|(n, line)| format!("{}:{}: {}", file.display(), n + 1, line.trim_start()))
        .collect()
}
