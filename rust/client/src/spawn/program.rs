//! Finding the service program: next to us, next to our library, on `PATH`.

use super::*;
use crate::remedy::Remedy;

/// Find the program: an absolute path as is; a bare name next to the current
/// executable, then next to the library holding this code (an FFI host such
/// as Python loads it from elsewhere), then on `PATH`. `BinaryNotFound`
/// lists every place looked.
pub(crate) fn resolve_program(program: &str) -> Result<PathBuf> {
    find_program(program).map_err(ProgramProblem::into_error)
}

/// Why the program cannot be started: what is wrong and the fix, apart, so
/// `doctor` can show each on its own line.
pub(crate) struct ProgramProblem {
    /// `BinaryNotFound`, or `SpawnFailed` for a file that is not executable.
    pub kind: ErrorKind,
    /// What is wrong, naming the path or every place looked.
    pub what: String,
    /// What to do about it.
    pub fix: String,
}

impl ProgramProblem {
    /// The error `ensure` reports: what is wrong, then the fix (on a line of
    /// its own after a list of places).
    fn into_error(self) -> Error {
        let separator = if self.what.contains('\n') { "\n" } else { "; " };
        Error::new(self.kind, format!("{}{separator}{}", self.what, self.fix))
            .with_remedy(Remedy::SetKey("program"))
    }
}

/// [`resolve_program`], with the problem kept apart from its fix.
pub(crate) fn find_program(program: &str) -> std::result::Result<PathBuf, ProgramProblem> {
    let candidates: Vec<PathBuf> = if program.starts_with('/') {
        vec![PathBuf::from(program)]
    } else {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf));
        let path = std::env::var_os("PATH").unwrap_or_default();
        let on_path = std::env::split_paths(&path).filter(|d| d.is_absolute());
        // Each place once (the directory of the executable is often on
        // `PATH` too): the error lists them all.
        let mut dirs: Vec<PathBuf> = Vec::new();
        for dir in exe_dir.into_iter().chain(library_dirs()).chain(on_path) {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs.into_iter().map(|d| d.join(program)).collect()
    };
    // Each place looked, with what was there when it was not a file.
    let mut looked = Vec::new();
    for candidate in candidates {
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
                return Ok(candidate);
            }
            Ok(meta) if meta.is_file() => {
                return Err(ProgramProblem {
                    kind: ErrorKind::SpawnFailed,
                    what: format!("service program {} is not executable", candidate.display()),
                    fix: format!(
                        "run `chmod +x {}` or set `program`",
                        crate::shell::word(&candidate)
                    ),
                });
            }
            // A directory of that name is passed over, as a shell does.
            Ok(meta) if meta.is_dir() => {
                looked.push(format!("  {} (a directory)", candidate.display()))
            }
            // A device, a FIFO, a socket: there, but no program.
            Ok(_) => looked.push(format!("  {} (not a regular file)", candidate.display())),
            _ => looked.push(format!("  {}", candidate.display())),
        }
    }
    Err(ProgramProblem {
        kind: ErrorKind::BinaryNotFound,
        what: format!(
            "service program {program:?} was not found; looked in:\n{}",
            looked.join("\n")
        ),
        fix: "install it, or set `program` in the config (or SPFS_AUTOSTART_PROGRAM) to its \
              absolute path"
            .into(),
    })
}

/// The directory of the file that holds this code, as it was loaded and
/// with symbolic links resolved (a library linked beside generated
/// bindings): the shared library an FFI host loaded, or the executable.
/// Only an absolute name is trusted: a relative one would be resolved
/// against whatever the current directory is now.
pub(super) fn library_dirs() -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: Dl_info is plain data; all-zero is a valid value to fill.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let here = library_dirs as fn() -> Vec<PathBuf> as *const libc::c_void;
    // SAFETY: dladdr only reads the address and writes `info`.
    if unsafe { libc::dladdr(here, &mut info) } == 0 || info.dli_fname.is_null() {
        return Vec::new();
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by the loader; it
    // lives while the object holding this function stays loaded.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    let loaded = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
    if !loaded.is_absolute() {
        return Vec::new();
    }
    let mut dirs: Vec<PathBuf> = loaded.parent().map(Path::to_path_buf).into_iter().collect();
    if let Some(real) = std::fs::canonicalize(&loaded)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        && !dirs.contains(&real)
    {
        dirs.push(real);
    }
    dirs
}
