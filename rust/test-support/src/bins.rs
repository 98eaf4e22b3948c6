//! Where the built binaries are: next to the running executable, which is
//! `target/<profile>/deps/<test>` for a test and `target/<profile>/<bin>`
//! for the bench.

use std::path::{Path, PathBuf};

/// The binaries of the workspace that tests and the bench run.
#[derive(Debug, Clone)]
pub struct Bins {
    /// The dir holding them (`target/<profile>`).
    pub dir: PathBuf,
    /// `spfs-autostart`, the CLI.
    pub cli: PathBuf,
    /// `spfs-reference-service`.
    pub service: PathBuf,
}

impl Bins {
    /// Both binaries, or an error listing the missing ones with the fix (for
    /// the bench, which reports rather than panics).
    pub fn find() -> Result<Bins, String> {
        let dir = bin_dir();
        let bins = Bins {
            cli: dir.join("spfs-autostart"),
            service: dir.join("spfs-reference-service"),
            dir,
        };
        let missing: Vec<String> = [&bins.cli, &bins.service]
            .iter()
            .filter(|p| !p.is_file())
            .map(|p| format!("  {}", p.display()))
            .collect();
        if missing.is_empty() {
            Ok(bins)
        } else {
            Err(format!(
                "missing binaries:\n{}\nbuild them first: `cargo build --bins` \
                 (`cargo build --release --bins` for the bench)",
                missing.join("\n")
            ))
        }
    }
}

/// `target/<profile>`: the running executable's dir, or its parent when
/// that is `deps` (a test executable).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("an executable lives in a dir");
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        dir.to_path_buf()
    }
}

/// `target/<profile>/spfs-reference-service`. Panics with the fix when it
/// has not been built.
pub fn reference_service() -> PathBuf {
    built("spfs-reference-service")
}

/// `target/<profile>/spfs-autostart`, the CLI. Panics with the fix when it
/// has not been built (only the CLI's own tests get it built for them).
pub fn cli() -> PathBuf {
    built("spfs-autostart")
}

fn built(name: &str) -> PathBuf {
    let program = bin_dir().join(name);
    assert!(
        program.is_file(),
        "{} is missing: run `cargo build --bins` first (scripts/check does)",
        program.display()
    );
    program
}
