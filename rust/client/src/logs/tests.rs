//! Tail, rotation and follow on real files.

use std::time::Duration;

use super::*;
use std::io::Write;

#[test]
fn tail_returns_last_lines_with_or_without_final_newline() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("log");
    std::fs::write(&path, "a\nb\nc\n").unwrap();
    assert_eq!(tail(&path, 2).unwrap().lines, ["b", "c"]);
    assert_eq!(tail(&path, 10).unwrap().lines, ["a", "b", "c"]);
    std::fs::write(&path, "a\nb\nc").unwrap();
    assert_eq!(tail(&path, 2).unwrap().lines, ["b", "c"]);
    assert_eq!(tail(&path, 0).unwrap().lines, Vec::<String>::new());
    assert_eq!(tail(&tmp.path().join("none"), 3).unwrap(), Tail::default());
}

#[test]
fn tail_and_follow_remove_colour_escapes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("log");
    let coloured = "\x1b[32m INFO\x1b[0m \x1b[2mspfs\x1b[0m\x1b[2m:\x1b[0m Service started \x1b[3mlisten\x1b[0m\x1b[2m=\x1b[0m127.0.0.1:1";
    let plain = " INFO spfs: Service started listen=127.0.0.1:1";
    std::fs::write(&path, format!("{coloured}\nno escapes \u{e9}\n")).unwrap();
    assert_eq!(tail(&path, 2).unwrap().lines, [plain, "no escapes \u{e9}"]);
    let streamed: Vec<String> = tail_lines(&path, 2).unwrap().map(Result::unwrap).collect();
    assert_eq!(streamed, [plain, "no escapes \u{e9}"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut follower = follow(&path, 1).unwrap();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(20), follower.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
            "no escapes \u{e9}"
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(f, "{coloured}").unwrap();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(20), follower.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
            plain
        );
    });
}

#[test]
fn control_characters_and_8_bit_sequences_are_removed_tabs_kept() {
    for (raw, clean) in [
        ("\u{9b}31mred\u{9b}0m plain", "red plain"),
        ("bell\x07 back\x08 feed\x0c", "bell back feed"),
        ("windows line\r", "windows line"),
        // Redrawn with carriage returns: what a terminal shows, the last.
        ("50%\r60%\r70%", "70%"),
        ("progress 90%\rdone\r", "done"),
        ("\u{9d}0;title\x07after", "after"),
        ("tab\there \u{e9}", "tab\there \u{e9}"),
    ] {
        assert_eq!(clean_line(raw.as_bytes()), clean, "{raw:?}");
    }
}

#[test]
fn tail_since_skips_earlier_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("log");
    std::fs::write(&path, "old 1\nold 2\n").unwrap();
    let start = std::fs::metadata(&path).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(f, "new 1").unwrap();
    assert_eq!(tail_since(&path, start, 10).unwrap().lines, ["new 1"]);
}

#[test]
fn tail_of_every_line_reads_at_most_the_cap_and_keeps_lines_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    // 100-byte lines (99 digits + newline), 3x the cap.
    let lines = (3 * MAX_TAIL_BYTES / 100) as usize;
    let mut text = String::with_capacity(lines * 100);
    for i in 0..lines {
        text.push_str(&format!("{i:099}\n"));
    }
    std::fs::write(&path, &text).unwrap();
    let tail = tail(&path, usize::MAX).unwrap();
    assert!(tail.bytes_read <= MAX_TAIL_BYTES, "{}", tail.bytes_read);
    assert!(tail.lines.len() as u64 >= MAX_TAIL_BYTES / 100 - 1);
    assert!(tail.lines.iter().all(|l| l.len() == 99), "whole lines only");
    assert_eq!(tail.lines.last().unwrap(), &format!("{:099}", lines - 1));
}

#[test]
fn a_last_line_longer_than_the_cap_gives_its_last_piece() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    let over_the_cap = MAX_TAIL_BYTES as usize + 10;
    // A progress line redrawn with carriage returns for hours: where it got.
    let redraws = "progress 10%\r".repeat(over_the_cap / 13 + 1);
    std::fs::write(&path, format!("before\n{redraws}progress 99%")).unwrap();
    let tail = tail(&path, 10).unwrap();
    assert_eq!(tail.lines, ["progress 99%"]);
    assert!(tail.bytes_read <= MAX_TAIL_BYTES, "{}", tail.bytes_read);
    // Any long line: its last MAX_LINE_BYTES, never a character cut in two
    // (the odd "x" puts the cut inside an "é").
    let long = format!("start{}x", "\u{e9}".repeat(over_the_cap / 2));
    std::fs::write(&path, format!("{long}\n")).unwrap();
    let lines = super::tail(&path, 1).unwrap().lines;
    assert_eq!(lines.len(), 1);
    assert!(lines[0].len() <= MAX_LINE_BYTES && lines[0].len() >= MAX_LINE_BYTES - 3);
    assert!(
        long.ends_with(&lines[0]),
        "the line's end, whole characters"
    );
}

#[test]
fn a_last_piece_starts_at_a_character() {
    use super::last_piece;
    let piece = |text: &str, limit| String::from_utf8(last_piece(text.as_bytes(), limit).to_vec());
    assert_eq!(piece("a\u{e9}", 2).unwrap(), "\u{e9}");
    assert_eq!(piece("a\u{e9}", 1).unwrap(), "", "half an é is none of it");
    assert_eq!(piece("a\u{20ac}b", 3).unwrap(), "b");
    assert_eq!(piece("a\u{20ac}b", 4).unwrap(), "\u{20ac}b");
    assert_eq!(piece("a\u{1d11e}", 4).unwrap(), "\u{1d11e}");
    assert_eq!(piece("a\u{1d11e}", 3).unwrap(), "");
    assert_eq!(piece("ab", 5).unwrap(), "ab");
    assert_eq!(piece("ab", 0).unwrap(), "");
}

/// `n` lines, `line 0` to `line {n-1}`: long enough to span many of
/// `tail`'s chunks, and each line says where it was.
fn numbered_log(n: usize) -> String {
    (0..n).map(|i| format!("line {i}\n")).collect()
}

#[test]
fn tail_crosses_chunk_boundaries() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("log");
    std::fs::write(&path, numbered_log(50_000)).unwrap();
    let got = tail(&path, 20_000).unwrap().lines;
    assert_eq!(got.len(), 20_000);
    assert_eq!(got[0], "line 30000");
    assert_eq!(got[19_999], "line 49999");
}

#[test]
fn rotation_shifts_runs_and_drops_the_oldest() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("service.log");
    for run in 0..5 {
        std::fs::write(&log, format!("run {run}\n")).unwrap();
        assert!(rotate_if_needed(&log, 1, 3).unwrap());
    }
    assert!(!log.exists());
    assert_eq!(
        std::fs::read_to_string(rotated(&log, 1)).unwrap(),
        "run 4\n"
    );
    assert_eq!(
        std::fs::read_to_string(rotated(&log, 3)).unwrap(),
        "run 2\n"
    );
    assert!(!rotated(&log, 4).exists());
    std::fs::write(&log, "small\n").unwrap();
    assert!(!rotate_if_needed(&log, 1024, 3).unwrap());
}

/// A smaller `log_keep` removes the runs beyond it, `0` included (which
/// keeps no previous run at all).
#[test]
fn a_smaller_keep_removes_the_runs_beyond_it_zero_too() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("service.log");
    for run in 0..3 {
        std::fs::write(&log, format!("run {run}\n")).unwrap();
        assert!(rotate_if_needed(&log, 1, 3).unwrap());
    }
    assert!(rotated(&log, 3).exists());
    std::fs::write(&log, "run 3\n").unwrap();
    assert!(rotate_if_needed(&log, 1, 1).unwrap());
    assert_eq!(
        std::fs::read_to_string(rotated(&log, 1)).unwrap(),
        "run 3\n"
    );
    assert!(!rotated(&log, 2).exists() && !rotated(&log, 3).exists());
    std::fs::write(&log, "run 4\n").unwrap();
    assert!(rotate_if_needed(&log, 1, 0).unwrap());
    assert!(!log.exists() && !rotated(&log, 1).exists());
}

#[test]
fn tail_lines_streams_the_same_lines_as_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("log");
    let text = numbered_log(30_000);
    for body in [text.as_str(), "a\nb\nc", "a\n\n", "", "\n"] {
        std::fs::write(&path, body).unwrap();
        for n in [0, 1, 2, 3, 20_000, 1_000_000] {
            let streamed: Vec<String> = tail_lines(&path, n)
                .unwrap()
                .collect::<io::Result<_>>()
                .unwrap();
            assert_eq!(streamed, tail(&path, n).unwrap().lines, "n={n}");
        }
    }
    assert_eq!(tail_lines(&tmp.path().join("none"), 3).unwrap().count(), 0);
}

#[test]
fn tail_lines_hands_out_a_huge_line_in_pieces_losing_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("log");
    let long = format!("x{}", "\u{e9}".repeat(MAX_LINE_BYTES + 10));
    std::fs::write(&path, format!("first\n{long}\nlast")).unwrap();
    let lines: Vec<String> = tail_lines(&path, 3)
        .unwrap()
        .collect::<io::Result<_>>()
        .unwrap();
    assert_eq!(lines.first().map(String::as_str), Some("first"));
    assert_eq!(lines.last().map(String::as_str), Some("last"));
    let pieces = &lines[1..lines.len() - 1];
    assert!(pieces.len() >= 2, "{} pieces", pieces.len());
    assert!(pieces.iter().all(|p| p.len() <= MAX_LINE_BYTES));
    assert!(pieces.iter().all(|p| !p.contains('\u{fffd}')));
    assert_eq!(pieces.concat(), long);
    // A line of exactly the limit is one line.
    let full = "a".repeat(MAX_LINE_BYTES);
    std::fs::write(&path, format!("first\n{full}\nlast\n")).unwrap();
    let lines: Vec<String> = tail_lines(&path, 3).unwrap().map(Result::unwrap).collect();
    assert_eq!(lines, ["first", full.as_str(), "last"]);
}

// A follower saw the open refused (a link at the log's path), and the link
// was removed before the refusal was explained: the error said twice, in
// two ways, and the second reached the caller as a raw OS error.
#[test]
fn a_link_refused_then_removed_is_still_said_to_be_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.log");
    let refused = std::io::Error::from_raw_os_error(libc::ELOOP);
    let err = open_refusal(&path, refused);
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
    // Any other failure is left as it is.
    let other = open_refusal(&path, std::io::Error::from_raw_os_error(libc::EACCES));
    assert_eq!(other.raw_os_error(), Some(libc::EACCES));
}

/// CPU time (clock ticks) of this process's follower threads; `None` when
/// there is none.
fn follower_ticks() -> Option<u64> {
    let mut found = None;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        // "spfs-autostart-follow", cut to the kernel's 15 bytes.
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != "spfs-autostart-" {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
        let ticks: u64 = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|t| t.parse::<u64>().ok())
            .sum();
        *found.get_or_insert(0) += ticks;
    }
    found
}

/// Something that cannot be read where the log belongs (here a FIFO, with a
/// rotated run beside it) is said once, and looked at again calmly: each
/// failed read opened files in the dir, whose events woke the next read at
/// once, a core spinning for as long as the fault lasted.
#[test]
fn a_log_that_cannot_be_read_is_retried_calmly() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("service.log");
    std::fs::write(&path, "a\n").unwrap();
    std::fs::write(tmp.path().join("service.log.1"), "old\n").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut follower = follow(&path, 0).unwrap();
        std::fs::remove_file(&path).unwrap();
        nix::unistd::mkfifo(
            &path,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .unwrap();
        let error = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(Err(e)) = follower.next().await {
                    return e;
                }
            }
        })
        .await
        .expect("the error is said");
        assert!(!error.to_string().is_empty());
        let before = follower_ticks().expect("the follower's thread is found");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let used = follower_ticks().expect("the follower still runs") - before;
        // Ticks are 10 ms: a spin is about 200 here.
        assert!(used < 50, "{used} ticks in 2 s");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), follower.next())
                .await
                .is_err(),
            "said once"
        );
    });
}

/// A directory or a symbolic link where the log belongs is not a log: it
/// is not moved aside as a run (the start refuses it, naming it), whatever
/// its size or its target's.
#[test]
fn only_a_log_file_is_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    std::fs::create_dir(&log).unwrap();
    assert!(!rotate_if_needed(&log, 1, 3).unwrap());
    assert!(log.is_dir(), "left in place");
    assert!(!dir.path().join("service.log.1").exists());
    std::fs::remove_dir(&log).unwrap();

    let elsewhere = dir.path().join("elsewhere");
    std::fs::write(&elsewhere, "x".repeat(100)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &log).unwrap();
    assert!(!rotate_if_needed(&log, 1, 3).unwrap());
    assert!(log.is_symlink(), "left in place");
    assert!(!dir.path().join("service.log.1").exists());
}

/// A directory among the rotated runs blocks a rotation only where one is
/// removed (the oldest kept, or beyond it): lower down it is renamed up.
#[test]
fn a_rotation_is_blocked_only_by_a_directory_where_a_run_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    std::fs::write(&log, "a run\n").unwrap();
    std::fs::create_dir(rotated(&log, 1)).unwrap();
    assert_eq!(blocked_by(&log, 3), None);
    assert!(rotate_if_needed(&log, 1, 3).unwrap(), "renamed up");
    assert!(rotated(&log, 2).is_dir());
    std::fs::write(&log, "a run\n").unwrap();
    assert!(rotate_if_needed(&log, 1, 3).unwrap());
    // Now at the oldest kept number: the next rotation cannot remove it.
    assert_eq!(blocked_by(&log, 3), Some(rotated(&log, 3)));
    std::fs::write(&log, "a run\n").unwrap();
    assert!(rotate_if_needed(&log, 1, 3).is_err());
    // Beyond the kept ones (an earlier, larger log_keep): blocking too.
    assert_eq!(blocked_by(&log, 2), Some(rotated(&log, 3)));
}
