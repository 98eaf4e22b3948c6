//! The C ABI and the Python bindings: row 1c (hot `ensure` from C) and
//! section 6 (`status()` from Python).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use serde_json::json;
use tokio::runtime::Runtime;

use super::{Result, err, ratio};
use crate::Options;
use crate::procs::run_timed;
use crate::report::{Row, Verdict, timing};
use crate::sandbox::{BenchSandbox, Bins, Sandbox, kit_sandbox, workspace_root};
use crate::stats::Summary;

/// The C library beside the harness, and its header: beside the harness
/// too when a before/after set was copied there, else the workspace's
/// `include/` (where `scripts/gen-header` writes it).
fn ffi_pieces(bins: &Bins) -> (PathBuf, Option<PathBuf>) {
    let lib = bins.dir.join("libspfs_autostart.so");
    let header = [
        bins.dir.join("spfs_autostart.h"),
        workspace_root().join("include/spfs_autostart.h"),
    ]
    .into_iter()
    .find(|p| p.is_file());
    (lib, header)
}

/// Row 1c: a fresh C process calling `ensure` through the C ABI, `m` times,
/// beside the C program's own start-up and the naive probe process
/// (`probe`), in rounds so the three share the noise: the C process
/// follows one that connects nowhere, and the probe (another service) the
/// C process. Not measured when the library, the header or a C compiler
/// is missing.
pub(super) fn c_hot(bins: &Bins, sb: &Sandbox, m: usize, mut probe: Command) -> Row {
    let id = "1c";
    let name = "hot ensure, fresh process, through the C ABI";
    let target = "not slower than naive probe";
    let (lib, header) = ffi_pieces(bins);
    let source = workspace_root().join("rust/bench/c/hot_ensure.c");
    if !lib.is_file() {
        return Row::not_measured(
            id,
            name,
            target,
            format!(
                "{} is absent (the FFI crate rust/ffi has not landed or was not built)",
                lib.display()
            ),
        );
    }
    let Some(header) = header else {
        return Row::not_measured(
            id,
            name,
            target,
            "include/spfs_autostart.h is absent".into(),
        );
    };
    let exe = sb.root().join("hot_ensure");
    if let Err(why) = compile_hot_ensure(bins, &source, &header, &exe) {
        return Row::not_measured(id, name, target, why);
    }
    let c_program = |startup_only: bool| {
        let mut cmd = Command::new(&exe);
        cmd.arg(sb.config_file())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if startup_only {
            cmd.arg("--startup-only");
        }
        cmd
    };
    let (mut startup_cmd, mut ensure_cmd) = (c_program(true), c_program(false));
    let (mut startup, mut ensure, mut naive) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..m {
        for (what, cmd, into) in [
            ("hot_ensure --startup-only", &mut startup_cmd, &mut startup),
            ("hot_ensure", &mut ensure_cmd, &mut ensure),
            ("the naive probe", &mut probe, &mut naive),
        ] {
            match run_timed(cmd) {
                Ok(f) if f.status.success() => into.push(f.wall),
                Ok(f) => {
                    return Row::not_measured(
                        id,
                        name,
                        target,
                        format!("{what} failed: {}", f.status),
                    );
                }
                Err(e) => {
                    return Row::not_measured(id, name, target, format!("cannot run {what}: {e}"));
                }
            }
        }
    }
    let naive = Summary::of(&naive);
    let (e, s) = (Summary::of(&ensure), Summary::of(&startup));
    let r = ratio(e, naive);
    Row {
        id: id.into(),
        name: name.into(),
        ours: timing(e),
        baseline: format!(
            "naive probe, fresh process: {}; C start-up only: {}",
            timing(naive),
            timing(s)
        ),
        ratio: r,
        target: target.into(),
        verdict: Verdict::of(r.is_some_and(|r| r <= 1.0)),
        data: json!({"unit": "us", "ensure": e.map(|x| x.json(1e6)), "startup": s.map(|x| x.json(1e6)),
                     "naive_probe": naive.map(|x| x.json(1e6))}),
    }
}

/// Compile `source` against `header` and the release library into `exe`;
/// why not, as the row's explanation, when it cannot.
fn compile_hot_ensure(bins: &Bins, source: &Path, header: &Path, exe: &Path) -> Result<()> {
    let include = header.parent().unwrap_or(Path::new("."));
    let compile = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(exe)
        .arg(source)
        .arg(format!("-I{}", include.display()))
        .arg(format!("-L{}", bins.dir.display()))
        .arg("-lspfs_autostart")
        .arg(format!("-Wl,-rpath,{}", bins.dir.display()))
        .output();
    match compile {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let first = String::from_utf8_lossy(&out.stderr)
                .lines()
                .find(|l| l.contains("error"))
                .unwrap_or("cc failed")
                .to_string();
            Err(format!(
                "{} does not compile against {}: {first}",
                source.display(),
                header.display()
            ))
        }
        Err(e) => Err(format!("cannot run cc: {e}")),
    }
}

/// Row 6: `status()` through the FFI from Python, per call, beside the Rust
/// in-process call. Not measured when the library, the generated module or
/// python3 is missing.
pub(super) fn python_status(rt: &Runtime, bins: &Bins, opts: &Options) -> Result<Row> {
    let id = "6";
    let name = "status() through the FFI from Python, per call";
    let target = "report (ratio to Rust in-process status())";
    let (lib, _) = ffi_pieces(bins);
    let pydir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let module = python_module(&lib, pydir.path())?;
    if !lib.is_file() {
        return Ok(Row::not_measured(
            id,
            name,
            target,
            format!(
                "{} is absent (the FFI crate rust/ffi has not landed or was not built)",
                lib.display()
            ),
        ));
    }
    let Some(module) = module else {
        return Ok(Row::not_measured(
            id,
            name,
            target,
            "the generated Python module tests/python/generated/spfs_autostart.py is absent \
             (run scripts/gen-bindings --python)"
                .into(),
        ));
    };
    let n = opts.iters(2000, 100);
    let sb = kit_sandbox(bins)?;
    let manager = sb.manager();
    rt.block_on(manager.ensure())
        .map_err(err("start the service for status"))?;
    let mut rust = Vec::new();
    rt.block_on(async {
        for _ in 0..n {
            let t = Instant::now();
            let _ = manager.status().await;
            rust.push(t.elapsed());
        }
    });
    let out = sb
        .command("python3")
        .arg(workspace_root().join("rust/bench/python/status_bench.py"))
        .arg(n.to_string())
        .env("PYTHONPATH", module.parent().unwrap_or(Path::new(".")))
        .env("SPFS_AUTOSTART_LIB", &lib)
        .env("SPFS_AUTOSTART_CONFIG", sb.config_file())
        .output();
    rt.block_on(manager.stop())
        .map_err(err("stop the status service"))?;
    let samples = match python_samples(out) {
        Ok(samples) => samples,
        Err(why) => return Ok(Row::not_measured(id, name, target, why)),
    };
    let (p, r) = (Summary::of_secs(&samples), Summary::of(&rust));
    Ok(Row {
        id: id.into(),
        name: name.into(),
        ours: timing(p),
        baseline: format!("Rust in-process status(): {}", timing(r)),
        ratio: ratio(p, r),
        target: target.into(),
        verdict: Verdict::Info,
        data: json!({"unit": "us", "python": p.map(|x| x.json(1e6)), "rust": r.map(|x| x.json(1e6))}),
    })
}

/// A private copy of the generated Python module beside a link to the
/// release `lib`, in `dir`: scripts/gen-bindings --python writes the module
/// beside a link to the debug library, and the release one is timed. None
/// when the module or the library is missing.
fn python_module(lib: &Path, dir: &Path) -> Result<Option<PathBuf>> {
    let generated = workspace_root().join("tests/python/generated/spfs_autostart.py");
    if !(generated.is_file() && lib.is_file()) {
        return Ok(None);
    }
    let copy = dir.join("spfs_autostart.py");
    std::fs::copy(&generated, &copy).map_err(|e| format!("copy the Python module: {e}"))?;
    std::os::unix::fs::symlink(lib, dir.join("libspfs_autostart.so"))
        .map_err(|e| format!("link the library: {e}"))?;
    Ok(Some(copy))
}

/// The per-call seconds status_bench.py printed, or why there are none.
fn python_samples(out: std::io::Result<Output>) -> Result<Vec<f64>> {
    match out {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|s| s.parse::<f64>().ok())
            .collect()),
        Ok(out) => {
            let why = String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .to_string();
            Err(format!("status_bench.py failed: {why}"))
        }
        Err(e) => Err(format!("cannot run python3: {e}")),
    }
}
