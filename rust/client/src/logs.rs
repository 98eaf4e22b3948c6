//! The service log: tail it from the end, follow it across rotation, rotate
//! it at spawn.
//!
//! Tailing reads backwards in fixed chunks, so its cost depends on the lines
//! asked for, not on the file's size. Following keeps the open descriptor of
//! the file it reads: when the path is rotated away, it finishes the old file
//! through that descriptor before opening the new one, so no line is lost or
//! repeated; it wakes on file-system events (inotify/kqueue through
//! `notify`), with a slow timer only as a safety net.
//!
//! Every line handed out is plain text: terminal escape sequences (the ANSI
//! colour of a service that logs for a terminal, as spfs-fuse-macos does
//! unless `NO_COLOR` is set) are removed, so no reader, the menu-bar app
//! among them, ever shows them raw.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use tokio::sync::mpsc;

/// The first read from the end of the log; later ones double up to [`MAX_CHUNK`].
const FIRST_CHUNK: u64 = 8 * 1024;
const MAX_CHUNK: u64 = 1024 * 1024;
/// At most this much of the end of a log is read for one tail, however many
/// lines are asked for, so a host asking for `usize::MAX` lines of a huge log
/// gets its last 4 MiB (whole lines only), not the whole file in memory.
pub const MAX_TAIL_BYTES: u64 = 4 * 1024 * 1024;

/// The last lines of a file and what it cost to find them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tail {
    /// The lines, oldest first, without their newlines.
    pub lines: Vec<String>,
    /// How many bytes were read to find them.
    pub bytes_read: u64,
}

/// A log line as text: invalid UTF-8 replaced, escape sequences removed.
pub fn clean_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.contains('\x1b') {
        anstream::adapter::strip_str(&text).to_string()
    } else {
        text.into_owned()
    }
}

/// The last `n` lines of `path`, from at most its last [`MAX_TAIL_BYTES`].
/// A missing file has no lines.
pub fn tail(path: &Path, n: usize) -> io::Result<Tail> {
    tail_since(path, 0, n)
}

/// The last `n` lines of `path` that start at or after byte `start`, so a
/// failed start reports only what this run wrote.
pub fn tail_since(path: &Path, start: u64, n: usize) -> io::Result<Tail> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Tail::default()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    tail_of(&mut file, start, len, n)
}

/// The last `n` lines of the bytes `start..len` of `file`.
fn tail_of(file: &mut File, start: u64, len: u64, n: usize) -> io::Result<Tail> {
    let start = start.min(len);
    if n == 0 || len == start {
        return Ok(Tail::default());
    }
    // Chunks read from the end, newest first; joined once at the end. The
    // first is small (a hundred lines rarely need more than a few KiB) and
    // each next one doubles, so long lines cost few reads.
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut pos = len;
    let mut size = FIRST_CHUNK;
    let mut newlines = 0usize;
    // A newline ending the file ends the last line; it does not start another.
    let mut skip_final_newline = true;
    while pos > start && newlines <= n && len - pos < MAX_TAIL_BYTES {
        let take = size.min(pos - start).min(MAX_TAIL_BYTES - (len - pos));
        pos -= take;
        let mut chunk = vec![0; take as usize];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut chunk)?;
        let mut count = chunk.iter().filter(|&&b| b == b'\n').count();
        if skip_final_newline && chunk.last() == Some(&b'\n') {
            count -= 1;
        }
        skip_final_newline = false;
        newlines += count;
        chunks.push(chunk);
        size = (size * 2).min(MAX_CHUNK);
    }
    let bytes_read = len - pos;
    // Stopped by the byte cap in the middle of the file: the oldest bytes
    // read may be the end of a longer line, which is dropped below.
    let capped = pos > start && newlines <= n;
    let mut data = Vec::with_capacity(bytes_read as usize);
    for chunk in chunks.iter().rev() {
        data.extend_from_slice(chunk);
    }
    if data.last() == Some(&b'\n') {
        data.pop();
    }
    // Decode only the last n lines: cut after the n-th newline from the end.
    let cut = data
        .iter()
        .enumerate()
        .rev()
        .filter(|&(_, &b)| b == b'\n')
        .nth(n - 1)
        .map_or_else(
            || match capped {
                true => data
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(data.len(), |i| i + 1),
                false => 0,
            },
            |(i, _)| i + 1,
        );
    if capped && cut == data.len() {
        // One line longer than the cap: nothing whole to show.
        return Ok(Tail {
            lines: Vec::new(),
            bytes_read,
        });
    }
    let lines = data[cut..].split(|&b| b == b'\n').map(clean_line).collect();
    Ok(Tail { lines, bytes_read })
}

/// The last `n` lines of `path`, one at a time, for callers that may ask
/// for a great many: the first of them is found by reading backwards in
/// chunks that are counted and dropped, then the lines are read forwards,
/// so memory stays bounded whatever `n` and the file's size. Lines written
/// after this call are not included. A missing file has no lines.
pub fn tail_lines(path: &Path, n: usize) -> io::Result<TailLines> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(TailLines {
                reader: None,
                buf: Vec::new(),
            });
        }
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    TailLines::of(file, len, n)
}

/// Lines read forwards from where the last `n` lines of a file start; see
/// [`tail_lines`].
#[derive(Debug)]
pub struct TailLines {
    reader: Option<io::BufReader<io::Take<File>>>,
    buf: Vec<u8>,
}

impl TailLines {
    /// The last `n` lines of the first `len` bytes of `file`.
    fn of(mut file: File, len: u64, n: usize) -> io::Result<TailLines> {
        let start = tail_start(&mut file, len, n)?;
        file.seek(SeekFrom::Start(start))?;
        Ok(TailLines {
            reader: Some(io::BufReader::new(file.take(len - start))),
            buf: Vec::new(),
        })
    }
}

impl Iterator for TailLines {
    type Item = io::Result<String>;

    fn next(&mut self) -> Option<io::Result<String>> {
        use std::io::BufRead;
        let reader = self.reader.as_mut()?;
        self.buf.clear();
        match reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(_) => {
                if self.buf.last() == Some(&b'\n') {
                    self.buf.pop();
                }
                Some(Ok(clean_line(&self.buf)))
            }
            Err(e) => {
                self.reader = None;
                Some(Err(e))
            }
        }
    }
}

/// Where the last `n` lines of the first `len` bytes of `file` start.
fn tail_start(file: &mut File, len: u64, n: usize) -> io::Result<u64> {
    if n == 0 {
        return Ok(len);
    }
    let mut chunk = vec![0u8; FIRST_CHUNK as usize * 8];
    let mut pos = len;
    let mut newlines = 0usize;
    while pos > 0 {
        let take = (chunk.len() as u64).min(pos);
        pos -= take;
        let chunk = &mut chunk[..take as usize];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(chunk)?;
        for (i, _) in chunk.iter().enumerate().rev().filter(|&(_, &b)| b == b'\n') {
            let after = pos + i as u64 + 1;
            // A newline ending the file ends the last line; it starts none.
            if after == len {
                continue;
            }
            newlines += 1;
            if newlines == n {
                return Ok(after);
            }
        }
    }
    Ok(0)
}

/// The path of the `i`-th rotated log (`service.log.1` is the newest).
pub fn rotated(log: &Path, i: u32) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".{i}"));
    PathBuf::from(name)
}

/// Rotate `log` when it is larger than `max_bytes`: `service.log` becomes
/// `service.log.1`, older runs shift up, and runs beyond `keep` are removed.
/// Called by the spawner, under `spawn.lock`, before a new run opens the log.
pub fn rotate_if_needed(log: &Path, max_bytes: u64, keep: u32) -> io::Result<bool> {
    let len = match std::fs::metadata(log) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len <= max_bytes {
        return Ok(false);
    }
    if keep == 0 {
        std::fs::remove_file(log)?;
        return Ok(true);
    }
    remove_if_exists(&rotated(log, keep))?;
    for i in (1..keep).rev() {
        match std::fs::rename(rotated(log, i), rotated(log, i + 1)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(log, rotated(log, 1))?;
    // Runs beyond `keep` left by an earlier, larger setting go too.
    let mut i = keep + 1;
    while rotated(log, i).exists() {
        remove_if_exists(&rotated(log, i))?;
        i += 1;
    }
    Ok(true)
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A live feed of lines appended to a log; dropping it stops the feed.
#[derive(Debug)]
pub struct LogFollower {
    lines: mpsc::Receiver<io::Result<String>>,
}

impl LogFollower {
    /// The next line, or `None` when the feed has ended.
    pub async fn next(&mut self) -> Option<io::Result<String>> {
        self.lines.recv().await
    }
}

/// Follow `path`: first its last `backlog` lines, then every line appended,
/// across rotation and truncation. The file's directory must exist.
pub fn follow(path: &Path, backlog: usize) -> io::Result<LogFollower> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "log path has no directory"))?
        .to_path_buf();
    let (events_tx, events) = std_mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |_event| {
        let _ = events_tx.send(());
    })
    .map_err(io::Error::other)?;
    notify::Watcher::watch(&mut watcher, &dir, notify::RecursiveMode::NonRecursive)
        .map_err(io::Error::other)?;
    let (tx, lines) = mpsc::channel(1024);
    let mut reader = Reader::open_at_end(path.to_path_buf())?;
    // The backlog ends exactly where the reader starts: the same file, up to
    // the same offset, so a line written meanwhile is neither shown twice
    // nor lost. It is read line by line, so a huge backlog costs no memory.
    let backlog_lines = match reader.file.as_ref() {
        Some(file) => Some(TailLines::of(file.try_clone()?, reader.offset, backlog)?),
        None => None,
    };
    std::thread::Builder::new()
        .name("spfs-autostart-follow".into())
        .spawn(move || {
            let _watcher = watcher;
            for line in backlog_lines.into_iter().flatten() {
                if tx.blocking_send(line).is_err() {
                    return;
                }
            }
            loop {
                let result = reader.drain(&mut |line| tx.blocking_send(Ok(line)).is_ok());
                match result {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
                if tx.is_closed() {
                    return;
                }
                // Events wake us at once; the timeout is only a safety net
                // for file systems that do not report changes.
                match events.recv_timeout(Duration::from_millis(500)) {
                    Ok(()) | Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                }
                while events.try_recv().is_ok() {}
            }
        })?;
    Ok(LogFollower { lines })
}

/// Where the line holding byte `end` starts: `end` itself when the bytes
/// before it end with a newline, so a line being written when following
/// starts is followed whole rather than split between backlog and feed.
/// Looks back at most one chunk.
fn line_start_before(file: &mut File, end: u64) -> io::Result<u64> {
    let from = end.saturating_sub(MAX_CHUNK);
    let mut buf = vec![0; (end - from) as usize];
    file.seek(SeekFrom::Start(from))?;
    file.read_exact(&mut buf)?;
    Ok(match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) => from + i as u64 + 1,
        None if from == 0 => 0,
        None => end,
    })
}

/// Reads new bytes of one log path, switching files on rotation.
struct Reader {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    offset: u64,
    partial: Vec<u8>,
}

impl Reader {
    fn open_at_end(path: PathBuf) -> io::Result<Reader> {
        let mut reader = Reader {
            path,
            file: None,
            inode: 0,
            offset: 0,
            partial: Vec::new(),
        };
        if let Ok(mut file) = File::open(&reader.path) {
            let meta = file.metadata()?;
            reader.inode = meta.ino();
            reader.offset = line_start_before(&mut file, meta.len())?;
            reader.file = Some(file);
        }
        Ok(reader)
    }

    /// Emit every complete new line; `Ok(false)` when `emit` wants no more.
    fn drain(&mut self, emit: &mut dyn FnMut(String) -> bool) -> io::Result<bool> {
        if !self.read_current(emit)? {
            return Ok(false);
        }
        match std::fs::metadata(&self.path) {
            Ok(meta) if self.file.is_some() && meta.ino() == self.inode => {
                if meta.len() < self.offset {
                    // Truncated in place: start over at its beginning.
                    self.offset = 0;
                    self.partial.clear();
                    return self.read_current(emit);
                }
                Ok(true)
            }
            Ok(_) => {
                // Rotated or created: finish the old file, then switch.
                if !self.read_current(emit)? {
                    return Ok(false);
                }
                if !self.partial.is_empty() {
                    let rest = clean_line(&std::mem::take(&mut self.partial));
                    if !emit(rest) {
                        return Ok(false);
                    }
                }
                match File::open(&self.path) {
                    Ok(file) => {
                        self.inode = file.metadata()?.ino();
                        self.offset = 0;
                        self.file = Some(file);
                        self.read_current(emit)
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
                    Err(e) => Err(e),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    fn read_current(&mut self, emit: &mut dyn FnMut(String) -> bool) -> io::Result<bool> {
        let Some(file) = self.file.as_mut() else {
            return Ok(true);
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        let read = file.read_to_end(&mut buf)?;
        self.offset += read as u64;
        self.partial.extend_from_slice(&buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = clean_line(&line[..line.len() - 1]);
            if !emit(line) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
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
        // One line longer than the cap gives nothing rather than a fragment.
        std::fs::write(&path, "x".repeat(MAX_TAIL_BYTES as usize + 10)).unwrap();
        assert!(super::tail(&path, usize::MAX).unwrap().lines.is_empty());
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
}
