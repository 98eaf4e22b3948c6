//! Bounded logs: a follower sees every line exactly once across rotation and
//! truncation, the spawner keeps only `log_keep` earlier runs, and the log
//! says when and for whom each run started and stopped.

mod common;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use common::{Client, WAIT, kit_sandbox};
use spfs_autostart::LogFollower;
use spfs_autostart::logs::{follow, rotate_if_needed, rotated};

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log for appending")
}

/// The next `n` lines, each within the bound.
async fn take(follower: &mut LogFollower, n: usize) -> Vec<String> {
    let mut lines = Vec::with_capacity(n);
    while lines.len() < n {
        let line = tokio::time::timeout(WAIT, follower.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of {n} lines within {WAIT:?}; last: {:?}",
                    lines.len(),
                    lines.last()
                )
            })
            .expect("the feed ended")
            .expect("read error");
        lines.push(line);
    }
    lines
}

/// Nothing more arrives (no line is repeated after the expected ones).
async fn assert_quiet(follower: &mut LogFollower) {
    if let Ok(extra) = tokio::time::timeout(Duration::from_millis(1500), follower.next()).await {
        panic!("unexpected extra line: {extra:?}");
    }
}

fn numbered(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("line {i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_sees_every_line_once_across_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    std::fs::write(&log, "an earlier line\n").unwrap();
    let mut follower = follow(&log, 0).expect("follow");
    let (caught_up_tx, caught_up) = std_mpsc::channel::<()>();
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            // Phase 1: lines written before and after a rotation, while the
            // follower reads.
            let mut file = append(&log);
            for i in 0..1000 {
                writeln!(file, "line {i}").unwrap();
                if i == 499 {
                    drop(file);
                    assert!(rotate_if_needed(&log, 0, 2).unwrap());
                    file = append(&log);
                }
                if i % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            // Phase 2, once the follower caught up: another rotation, which
            // shifts .1 to .2, and lines after it.
            caught_up.recv().unwrap();
            writeln!(file, "line 1000").unwrap();
            drop(file);
            assert!(rotate_if_needed(&log, 0, 2).unwrap());
            let mut file = append(&log);
            for i in 1001..1100 {
                writeln!(file, "line {i}").unwrap();
            }
        })
    };
    assert_eq!(take(&mut follower, 1000).await, numbered(0..1000));
    caught_up_tx.send(()).unwrap();
    assert_eq!(take(&mut follower, 100).await, numbered(1000..1100));
    writer.join().unwrap();
    assert_quiet(&mut follower).await;
    assert!(rotated(&log, 2).exists() && !rotated(&log, 3).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_sees_every_line_once_across_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    let mut follower = follow(&log, 0).expect("follow a log that does not exist yet");
    let mut file = append(&log);
    for i in 0..500 {
        writeln!(file, "line {i}").unwrap();
    }
    assert_eq!(take(&mut follower, 500).await, numbered(0..500));
    // Truncated in place (`: > service.log`) while the writer keeps its
    // descriptor and goes on appending.
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    for i in 500..520 {
        writeln!(file, "line {i}").unwrap();
    }
    assert_eq!(take(&mut follower, 20).await, numbered(500..520));
    assert_quiet(&mut follower).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_and_follow_neither_lose_nor_repeat_under_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    let (stop_tx, stop) = std_mpsc::channel::<()>();
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut file = append(&log);
            let mut i = 0usize;
            while stop.try_recv().is_err() {
                // One write per line, as a service's logger does.
                file.write_all(format!("{i}\n").as_bytes()).unwrap();
                i += 1;
                if i.is_multiple_of(200) {
                    std::thread::yield_now();
                }
            }
        })
    };
    while !log.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..30 {
        let mut follower = follow(&log, 5).expect("follow");
        let lines = take(&mut follower, 50).await;
        let numbers: Vec<usize> = lines
            .iter()
            .map(|l| l.parse().expect("a whole line"))
            .collect();
        for pair in numbers.windows(2) {
            assert_eq!(
                pair[1],
                pair[0] + 1,
                "lost or repeated lines between backlog and follow: {numbers:?}"
            );
        }
    }
    stop_tx.send(()).unwrap();
    writer.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_being_written_when_following_starts_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    std::fs::write(&log, "one\ntwo\nthr").unwrap();
    let mut follower = follow(&log, 5).expect("follow");
    append(&log).write_all(b"ee\nfour\n").unwrap();
    assert_eq!(
        take(&mut follower, 4).await,
        ["one", "two", "three", "four"]
    );
    assert_quiet(&mut follower).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawner_keeps_log_keep_runs() {
    let mut sandbox = kit_sandbox(0, &[]);
    sandbox.set("log_max_bytes", 1).set("log_keep", 2);
    let manager = sandbox.manager();
    let mut pids = Vec::new();
    for _ in 0..4 {
        pids.push(manager.ensure().await.expect("ensure").pid.expect("pid"));
        manager.stop().await.expect("stop");
    }
    let log = sandbox.log_file();
    let mut files: Vec<String> = std::fs::read_dir(sandbox.log_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["service.log", "service.log.1", "service.log.2"]);
    // Newest first: the current run, then each earlier one, whole; the
    // first run is gone.
    let runs = [log.clone(), rotated(&log, 1), rotated(&log, 2)];
    for (path, pid) in runs.iter().zip(pids.iter().rev()) {
        let text = std::fs::read_to_string(path).unwrap();
        let run = |p: &u32| text.contains(&format!("(pid {p})"));
        assert!(
            run(pid),
            "{} does not hold the run of pid {pid}:\n{text}",
            path.display()
        );
        assert_eq!(
            text.matches("--- spfs-autostart: starting").count(),
            1,
            "{}:\n{text}",
            path.display()
        );
        assert!(text.contains("serving on"), "{}:\n{text}", path.display());
        assert!(
            text.contains("stopped"),
            "{} is not a complete run:\n{text}",
            path.display()
        );
        assert!(
            !run(&pids[0]),
            "the oldest run was kept in {}",
            path.display()
        );
    }
}

/// A log that cannot be read for a while (replaced by a symbolic link,
/// which is never followed) is said once, and following goes on: once a
/// regular log is back, its lines arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_goes_on_after_the_log_could_not_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.log");
    let mut follower = follow(&path, 0).expect("follow");
    std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
    let said = tokio::time::timeout(WAIT, follower.next())
        .await
        .expect("the link is reported")
        .expect("the feed is open");
    let err = said.expect_err("a link is not read");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    std::fs::remove_file(&path).unwrap();
    writeln!(append(&path), "after the link").unwrap();
    assert_eq!(take(&mut follower, 1).await, ["after the link"]);
}

/// The line of `log` that starts with `start`, and the time it gives after
/// ` at ` (UTC to the microsecond), checked to lie between `before` and
/// `after`.
fn stamped_line<'a>(
    log: &'a str,
    start: &str,
    before: time::OffsetDateTime,
    after: time::OffsetDateTime,
) -> &'a str {
    let line = log
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starts with {start:?}:\n{log}"));
    let stamp = line
        .split_once(" at ")
        .and_then(|(_, rest)| rest.get(.."2026-11-28T09:00:00.000000Z".len()))
        .unwrap_or_else(|| panic!("no time in {line:?}"));
    let at = time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{stamp:?} in {line:?}: {e}"));
    assert!(
        before <= at && at <= after,
        "{at} not within {before}..{after}: {line}"
    );
    line
}

/// The service log says when each run started and for whom, and who
/// stopped it, when and how: the header names the asking program and its
/// pid, the stop its own line before the service's, and the kit service
/// logs the same reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_says_when_and_for_whom_the_service_started_and_stopped() {
    let sandbox = kit_sandbox(0, &[]);
    let manager = sandbox.manager();
    let me = spfs_autostart_test_support::this_program();
    let before = time::OffsetDateTime::now_utc();
    let pid = manager.ensure().await.expect("ensure").pid.expect("pid");
    manager.stop().await.expect("stop");
    let after = time::OffsetDateTime::now_utc();
    let log = sandbox.log();

    let header = stamped_line(&log, "--- spfs-autostart: starting ", before, after);
    assert!(
        header.ends_with(&format!(", asked by {me} ---")),
        "{header}"
    );
    let stop = stamped_line(
        &log,
        &format!("--- spfs-autostart: stopping pid {pid} at "),
        before,
        after,
    );
    assert!(
        stop.ends_with(&format!(
            " with the shutdown request: stop asked by {me} ---"
        )),
        "{stop}"
    );
    let kit = format!("shutting down: stop asked by {me}");
    let order = [header, "serving on", stop, &kit, "stopped"].map(|what| {
        log.find(what)
            .unwrap_or_else(|| panic!("{what:?} is not in the log:\n{log}"))
    });
    assert!(order.is_sorted(), "{order:?} out of order:\n{log}");
}

/// A rotation that fails (a directory where the oldest run goes) is an
/// `ensure` warning naming what stands in the way: the log would grow
/// without bound, unseen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_that_fails_is_a_warning_naming_the_file_in_the_way() {
    let mut sandbox = kit_sandbox(0, &[]);
    sandbox.set("log_max_bytes", 1).set("log_keep", 2);
    let manager = sandbox.manager();
    let first = manager.ensure().await.expect("ensure");
    assert!(
        !first.warnings.iter().any(|w| w.contains("rotated")),
        "{:?}",
        first.warnings
    );
    manager.stop().await.expect("stop");
    let in_the_way = rotated(&sandbox.log_file(), 2);
    std::fs::create_dir(&in_the_way).unwrap();
    let second = manager.ensure().await.expect("ensure");
    let said = in_the_way.display().to_string();
    assert!(
        second
            .warnings
            .iter()
            .any(|w| w.contains("could not be rotated") && w.contains(&said)),
        "{:?}",
        second.warnings
    );
    manager.stop().await.expect("stop");
}

/// The log dir removed and made again (a cleaner, a new session's runtime
/// dir) under a follower: the new dir's log is read, and the new dir is
/// watched, so its next line comes on its event, not on the follower's
/// slow safety poll (every 5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_dir_made_again_is_followed_and_watched_again() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("logs");
    std::fs::create_dir(&dir).unwrap();
    let log = dir.join("service.log");
    std::fs::write(&log, "").unwrap();
    let mut follower = follow(&log, 0).expect("follow");
    writeln!(append(&log), "line 0").unwrap();
    assert_eq!(take(&mut follower, 1).await, numbered(0..1));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    writeln!(append(&log), "line 1").unwrap();
    assert_eq!(take(&mut follower, 1).await, numbered(1..2));
    let written = std::time::Instant::now();
    writeln!(append(&log), "line 2").unwrap();
    assert_eq!(take(&mut follower, 1).await, numbered(2..3));
    assert!(
        written.elapsed() < Duration::from_millis(4500),
        "the next line came only with the poll: {:?}",
        written.elapsed()
    );
}
