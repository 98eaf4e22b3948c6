//! The shared library's SONAME on Linux: `libspfs_autostart.so.<ABI>`, so a
//! program linked against it records the C ABI it was built for, and a
//! future incompatible ABI (a removed or changed function or value; adding
//! is compatible) gets a new number that cannot be loaded by mistake.

use std::path::PathBuf;

/// The C ABI's version: bump it when the ABI changes incompatibly.
const ABI_VERSION: u32 = 0;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-env=SPFS_AUTOSTART_ABI_VERSION={ABI_VERSION}");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let soname = format!("libspfs_autostart.so.{ABI_VERSION}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    // Programs linked against target/<profile>/libspfs_autostart.so look for
    // the SONAME at run time: give it beside the library, as an install
    // would (OUT_DIR is target/<profile>/build/<pkg>-<hash>/out).
    let Some(profile_dir) = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .and_then(|out| out.ancestors().nth(3).map(PathBuf::from))
    else {
        return;
    };
    let link = profile_dir.join(&soname);
    if std::fs::symlink_metadata(&link).is_err() {
        let _ = std::os::unix::fs::symlink("libspfs_autostart.so", &link);
    }
}
