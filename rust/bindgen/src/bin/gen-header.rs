//! Generate `include/spfs_autostart.h` from the ffi crate with the pinned
//! cbindgen and `rust/ffi/cbindgen.toml`. The version macros come from the
//! workspace version (which the ffi crate inherits), never from a hand edit.
//!
//! Usage: `gen-header OUTPUT`

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(output) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gen-header OUTPUT (scripts/gen-header runs it)");
        return ExitCode::from(2);
    };
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ffi");
    let config_file = crate_dir.join("cbindgen.toml");
    let mut config = match cbindgen::Config::from_file(&config_file) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gen-header: cannot read {}: {e}", config_file.display());
            return ExitCode::FAILURE;
        }
    };
    config.after_includes = Some(version_macros());
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(&output);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "gen-header: cbindgen failed on {}: {e}",
                crate_dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// The version macros, from the workspace version the ffi crate shares.
fn version_macros() -> String {
    format!(
        "\n#define SPFS_AUTOSTART_VERSION_MAJOR {}\n#define SPFS_AUTOSTART_VERSION_MINOR {}\n#define SPFS_AUTOSTART_VERSION_PATCH {}\n#define SPFS_AUTOSTART_VERSION \"{}\"",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION"),
    )
}
