//! `logs`: the last lines of the service log, and with `--follow` each new
//! one.

use std::io::{self, Write};

use spfs_autostart::{Error, ServiceManager};

use crate::{Failure, output};

/// `logs`: print the last `lines` lines, then with `follow` each new one;
/// first, in text, say when there is no log yet.
pub async fn run(
    manager: &ServiceManager,
    lines: usize,
    follow: bool,
    json: bool,
) -> Result<(), Failure> {
    if !json {
        note_missing_log(manager, follow);
    }
    if follow {
        follow_logs(manager, lines, json).await
    } else {
        print_logs(manager, lines, json)
    }
}

/// Say on stderr when the log does not exist yet, so that no output is not
/// taken for an empty log (or, with `--follow`, for a hang).
fn note_missing_log(manager: &ServiceManager, follow: bool) {
    let path = manager.paths().log_file();
    // Anything there (a link to nothing included) is not "no log yet", and
    // a log that cannot be looked at is an error the read reports.
    match path.symlink_metadata() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        _ => return,
    }
    let then = if follow {
        "; waiting for it to appear"
    } else {
        ""
    };
    let path = path.display();
    // A log dir without its log: the log was removed (a start always
    // writes it), or the dir was made by a follower.
    let note = if manager.paths().log_dir.exists() {
        format!("no log at {path}: it was removed, or none was written since its dir was made")
    } else {
        format!("no log yet at {path}: the service has not run with this log dir")
    };
    let _ = writeln!(io::stderr(), "{note}{then}");
    // A dir a start would refuse (another user's, or others may write it):
    // no log will come until that is fixed, so it is said now.
    if let Err(e) = manager.paths().check_log_dir() {
        let _ = writeln!(io::stderr(), "and a start would not use this log dir: {e}");
    }
}

/// The error for a log line that could not be read.
fn log_error(manager: &ServiceManager, e: io::Error) -> Error {
    Error::io("cannot read", &manager.paths().log_file(), e)
}

/// `logs --follow`: print the last `lines` lines, then each new one, until
/// the log ends or whoever reads stdout goes away. A read that fails (the
/// log replaced by a link, a rotated run another user owns) is said on
/// stderr, and following goes on, as `tail -F` does: the follower says
/// each failure once and reads again once the next change may mend it.
async fn follow_logs(manager: &ServiceManager, lines: usize, json: bool) -> Result<(), Failure> {
    let mut follower = manager.follow_logs(lines)?;
    let closed = output::stdout_closed();
    tokio::pin!(closed);
    loop {
        let line = tokio::select! {
            line = follower.next() => line,
            () = &mut closed => break,
        };
        match line {
            None => break,
            Some(Ok(line)) => output::log_line(&mut io::stdout().lock(), &line, json)?,
            Some(Err(e)) => output::error(&log_error(manager, e), json),
        }
    }
    Ok(())
}

/// `logs`: print the last `lines` lines of the log.
fn print_logs(manager: &ServiceManager, lines: usize, json: bool) -> Result<(), Failure> {
    // Streamed, so `-n 100000000` on a huge log costs no memory.
    let mut out = io::BufWriter::new(io::stdout().lock());
    for line in manager.tail_logs_lines(lines)? {
        output::log_line(&mut out, &line.map_err(|e| log_error(manager, e))?, json)?;
    }
    out.flush()?;
    Ok(())
}
