//! The lines spfs-autostart itself writes into the service log: when a run
//! starts and for whom, and each step of a stop and why. With them the log
//! tells the service's whole life, also for a service that logs without
//! timestamps (spfs-fuse-macos) or says nothing when it is stopped.
//!
//! Every such line is `--- spfs-autostart: WHAT ---`, written with one
//! `write` to a file opened for appending, so it never lands inside a line
//! the service writes at the same moment.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// How every line spfs-autostart writes into the service log starts.
pub(crate) const PREFIX: &str = "--- spfs-autostart: ";

/// What the line that opens each run says first ([`line`]`("starting ...")`).
pub(crate) const STARTING: &str = "starting ";

/// The lines of the last run in `tail`: from its last run's opening line
/// on, that line included; all of them when it holds none (the run began
/// before them). Earlier runs' lines would pass for this one's.
pub(crate) fn last_run(mut tail: Vec<String>) -> Vec<String> {
    let opening = format!("{PREFIX}{STARTING}");
    if let Some(at) = tail.iter().rposition(|l| l.starts_with(&opening)) {
        tail.drain(..at);
    }
    tail
}

/// The whole line for `what`, newline included.
pub(crate) fn line(what: &str) -> String {
    format!("{PREFIX}{what} ---\n")
}

/// Now, in UTC to the microsecond: the form the kit's own log lines start
/// with, so the two read as one timeline.
pub(crate) fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

/// The process asking, as the log names it: its program's file name and
/// its pid (`spfs-autostart (pid 812)`, the menu-bar app's `SpfsMenu (pid 90)`).
pub(crate) fn caller() -> String {
    // Without its path (no /proc in a chroot), the pid alone names it.
    let name = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_name().map(|n| word(&n.to_string_lossy())))
        .unwrap_or_else(|| "a program".into());
    format!("{name} (pid {})", std::process::id())
}

/// One word from outside (a program, an argument, a caller's name) for a
/// log line, quoted (as a Rust string literal, with escapes) when it is
/// empty or holds a space, a quote, a backslash or a control character, so
/// words can be told apart and a newline cannot forge a log line.
pub(crate) fn word(word: &str) -> String {
    let plain = !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'));
    if plain {
        word.to_string()
    } else {
        format!("{word:?}")
    }
}

/// `line` as written to the end of `log`: on a line of its own, after a
/// newline when the service's last line is unfinished (`progress 42%`
/// before a stop), so the mark starts its line and is found as one.
pub(crate) fn own_line(log: &std::fs::File, line: String) -> String {
    use std::os::unix::fs::FileExt;
    let len = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut last = *b"\n";
    if len > 0 && log.read_exact_at(&mut last, len - 1).is_ok() && last[0] != b'\n' {
        return format!("\n{line}");
    }
    line
}

/// Append the line for `what` to the log at `path`, when there is one:
/// never through a symbolic link, never into anything but a regular file,
/// never creating it (a service with no log has nothing to annotate). A
/// line that cannot be written is only traced: it annotates, and the work
/// it describes goes on.
pub(crate) fn append(path: &Path, what: &str) {
    let written = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .and_then(|mut log| {
            if !log.metadata()?.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            let line = own_line(&log, line(what));
            log.write_all(line.as_bytes())
        });
    if let Err(e) = written {
        tracing::debug!("cannot note {what:?} in {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After a service's unfinished last line, a mark starts a line of its
    /// own; after a finished one (or in an empty log), nothing is added.
    #[test]
    fn a_mark_starts_its_own_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("service.log");
        std::fs::write(&log, "progress 42%").unwrap();
        append(&log, "stopping pid 7");
        append(&log, "stopped");
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!(
                "progress 42%\n{}{}",
                line("stopping pid 7"),
                line("stopped")
            )
        );
        std::fs::write(&log, "").unwrap();
        append(&log, "stopped");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), line("stopped"));
    }

    #[test]
    fn words_are_quoted_only_when_they_must_be() {
        assert_eq!(word("service"), "service");
        assert_eq!(word("/spfs"), "/spfs");
        assert_eq!(word("two words"), "\"two words\"");
        assert_eq!(word(""), "\"\"");
        assert_eq!(word("a\nb"), "\"a\\nb\"");
        assert_eq!(word("it's"), "\"it's\"");
    }

    #[test]
    fn now_is_utc_to_the_microsecond_in_a_fixed_width() {
        let stamp = now();
        assert_eq!(stamp.len(), "2026-11-28T09:00:00.000000Z".len(), "{stamp}");
        let parsed =
            time::OffsetDateTime::parse(&stamp, &time::format_description::well_known::Rfc3339)
                .expect(&stamp);
        let age = time::OffsetDateTime::now_utc() - parsed;
        assert!(
            age >= time::Duration::ZERO && age < time::Duration::minutes(1),
            "{stamp}"
        );
    }

    #[test]
    fn the_caller_is_this_program_and_its_pid() {
        // Cargo names the unit-test binary of the crate `spfs_autostart-HASH`.
        let caller = caller();
        assert!(caller.starts_with("spfs_autostart-"), "{caller}");
        assert!(
            caller.ends_with(&format!(" (pid {})", std::process::id())),
            "{caller}"
        );
        assert!(!caller.contains(['"', '/']), "a bare file name: {caller}");
    }

    #[test]
    fn the_last_run_starts_at_its_opening_line() {
        let lines = |text: &str| text.lines().map(String::from).collect::<Vec<_>>();
        let first = line("starting svc at T1, asked by a (pid 1)");
        let second = line("starting svc at T2, asked by a (pid 2)");
        let log = format!("old\n{first}run 1\n{}{second}run 2\n", line("stopped"));
        assert_eq!(last_run(lines(&log)), lines(&format!("{second}run 2")));
        // A tail of a long run has no opening line: all of it is that run's.
        assert_eq!(last_run(lines("a\nb\n")), lines("a\nb"));
    }

    #[test]
    fn a_line_is_appended_whole_only_to_a_log_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("service.log");
        append(&log, "nothing to annotate");
        assert!(!log.exists(), "never created");
        std::fs::write(&log, "a line of the service\n").unwrap();
        append(&log, "stopping pid 1");
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "a line of the service\n--- spfs-autostart: stopping pid 1 ---\n"
        );
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&log, &link).unwrap();
        append(&link, "through a link");
        assert!(
            !std::fs::read_to_string(&log)
                .unwrap()
                .contains("through a link")
        );
    }
}
