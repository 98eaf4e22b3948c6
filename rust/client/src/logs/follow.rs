//! Following the log across rotation and truncation, losing and repeating
//! nothing.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{MAX_CHUNK, MAX_LINE_BYTES, TailLines, clean_line, cut_between_chars, open_log};

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

/// How long a follower whose read failed waits before it reads again.
const RETRY_AFTER_ERROR: Duration = Duration::from_millis(500);

/// Follow `path`: first its last `backlog` lines, then every line appended,
/// across rotation and truncation. The file's directory must exist.
pub fn follow(path: &Path, backlog: usize) -> io::Result<LogFollower> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "log path has no directory"))?
        .to_path_buf();
    let (events_tx, events) = std_mpsc::channel();
    let mut watch = DirWatch::new(dir, events_tx)?;
    // A slow reader holds back the follower, not a growing queue: at most
    // this many lines wait, each at most MAX_LINE_BYTES (64 MiB in all for
    // a log of huge unbroken lines; kilobytes for a real one).
    let (tx, lines) = mpsc::channel(64);
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
            for line in backlog_lines.into_iter().flatten() {
                if tx.blocking_send(line).is_err() {
                    return;
                }
            }
            // A read that fails (the log replaced by a link, say) is said
            // once and following goes on: the next change may mend it.
            let mut last_error: Option<String> = None;
            loop {
                let result = reader.drain(&mut |line| tx.blocking_send(Ok(line)).is_ok());
                for skipped in std::mem::take(&mut reader.skipped) {
                    if tx.blocking_send(Err(skipped)).is_err() {
                        return;
                    }
                }
                match result {
                    Ok(true) => last_error = None,
                    Ok(false) => return,
                    Err(e) => {
                        let message = e.to_string();
                        if last_error.as_ref() != Some(&message) {
                            last_error = Some(message);
                            if tx.blocking_send(Err(e)).is_err() {
                                return;
                            }
                        }
                        // The failed read opened files in the dir (the log,
                        // the rotated runs), whose events would wake us at
                        // once: a spin for as long as the fault lasts. Poll.
                        std::thread::sleep(RETRY_AFTER_ERROR);
                        while events.try_recv().is_ok() {}
                    }
                }
                if tx.is_closed() {
                    return;
                }
                // Events wake us at once; the timeout is only a safety net
                // for file systems that do not report changes.
                match events.recv_timeout(SAFETY_POLL) {
                    Ok(()) | Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                }
                while events.try_recv().is_ok() {}
                watch.renew_if_replaced();
            }
        })?;
    Ok(LogFollower { lines })
}

/// How often a follower reads without an event: only a safety net for file
/// systems that report no changes (a network one), so an idle follower
/// (a `logs -f` left open all day) wakes rarely.
const SAFETY_POLL: Duration = Duration::from_secs(5);

/// The watch on the log's directory, which wakes the follower on every
/// change there. A directory removed and made again (a cleaner, a new
/// login session's runtime dir) is a new one, watched again once seen.
struct DirWatch {
    watcher: notify::RecommendedWatcher,
    dir: PathBuf,
    /// The watched directory's device and inode.
    id: Option<(u64, u64)>,
}

impl DirWatch {
    /// Watch `dir`, sending one event to `events` per change.
    fn new(dir: PathBuf, events: std_mpsc::Sender<()>) -> io::Result<DirWatch> {
        // Opening and reading a file are no change to it, and the
        // follower's own opens would wake it again and again.
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if !event.is_ok_and(|e| e.kind.is_access()) {
                    let _ = events.send(());
                }
            })
            .map_err(io::Error::other)?;
        notify::Watcher::watch(&mut watcher, &dir, notify::RecursiveMode::NonRecursive)
            .map_err(io::Error::other)?;
        let id = dir_id(&dir);
        Ok(DirWatch { watcher, dir, id })
    }

    /// Watch the directory again when it is another one than was watched.
    fn renew_if_replaced(&mut self) {
        let id = dir_id(&self.dir);
        if id.is_none() || id == self.id {
            return;
        }
        let _ = notify::Watcher::unwatch(&mut self.watcher, &self.dir);
        if notify::Watcher::watch(
            &mut self.watcher,
            &self.dir,
            notify::RecursiveMode::NonRecursive,
        )
        .is_ok()
        {
            self.id = id;
        }
    }
}

fn dir_id(dir: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
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

/// How many of the bytes before the read position are kept to tell an
/// append from a rewrite.
const SEEN_BYTES: usize = 64;

/// Reads new bytes of one log path, switching files on rotation.
struct Reader {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    offset: u64,
    partial: Vec<u8>,
    /// The last bytes read, just before `offset`: when the file no longer
    /// has them there, it was emptied and written again (as `: > log`
    /// followed by new lines) while we slept, however long it is now.
    seen: Vec<u8>,
    /// The rotated runs (`service.log.N`) already read, or there before the
    /// follow began, by inode, held open: a run rotated away while we
    /// lagged is one not among them. Held, a run's inode number is given to
    /// no new file (a file system reuses a freed one at once), so a run is
    /// known by it until the keep limit deletes it, when it is let go.
    done: Vec<Done>,
    /// Rotated runs that could not be opened (another user's, a link), said
    /// by the follower as it goes on without them.
    skipped: Vec<io::Error>,
    /// Those already noted in `skipped` (or there before the follow began),
    /// by device and inode: said once each, whatever number it moves to.
    said_skipped: std::collections::HashSet<(u64, u64)>,
}

/// A file read to `offset` (a rotated run, or the log as it was when it
/// went away), held open so its inode number stays its own.
struct Done {
    inode: u64,
    file: File,
    offset: u64,
}

impl Reader {
    fn open_at_end(path: PathBuf) -> io::Result<Reader> {
        let mut reader = Reader {
            path,
            file: None,
            inode: 0,
            offset: 0,
            partial: Vec::new(),
            seen: Vec::new(),
            done: Vec::new(),
            skipped: Vec::new(),
            said_skipped: std::collections::HashSet::new(),
        };
        reader.done = reader
            .rotated_runs()?
            .into_iter()
            .map(|(inode, file)| {
                let offset = file.metadata().map_or(0, |m| m.len());
                Done {
                    inode,
                    file,
                    offset,
                }
            })
            .collect();
        // Runs from before the follow are not read: nothing is skipped.
        reader.skipped.clear();
        let opened = match open_log(&reader.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            opened => Some(opened?),
        };
        if let Some(mut file) = opened {
            let meta = file.metadata()?;
            let start = line_start_before(&mut file, meta.len())?;
            reader.inode = meta.ino();
            reader.file = Some(file);
            reader.resume_at(start)?;
        }
        Ok(reader)
    }

    /// Emit every complete new line; `Ok(false)` when `emit` wants no more.
    fn drain(&mut self, emit: &mut dyn FnMut(String) -> bool) -> io::Result<bool> {
        if self.truncated()? {
            // Truncated in place: start over at its beginning.
            self.restart();
        }
        if !self.read_current(emit)? {
            return Ok(false);
        }
        match std::fs::metadata(&self.path) {
            Ok(meta) if self.file.is_some() && meta.ino() == self.inode => Ok(true),
            Ok(_) => {
                // Rotated or created: finish the old file, then switch.
                if !self.read_current(emit)? || !self.emit_partial(emit) {
                    return Ok(false);
                }
                self.switch_to_new_log(emit)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Emit an unfinished last line, as the file it was in is done.
    fn emit_partial(&mut self, emit: &mut dyn FnMut(String) -> bool) -> bool {
        self.partial.is_empty() || emit(clean_line(&std::mem::take(&mut self.partial)))
    }

    /// The file just finished was rotated away: read the runs rotated past
    /// us, then the new log, in the order they were written. A rotation
    /// while we open the new log makes the log we opened newer than a run
    /// not read yet: that run is read first, and the log opened again.
    fn switch_to_new_log(&mut self, emit: &mut dyn FnMut(String) -> bool) -> io::Result<bool> {
        self.set_aside();
        loop {
            if !self.read_runs_rotated_past(emit)? {
                return Ok(false);
            }
            let opened = match open_log(&self.path) {
                Ok(file) => Some(file),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            if !self.unread_runs()?.is_empty() {
                continue;
            }
            let Some(file) = opened else {
                return Ok(true);
            };
            self.inode = file.metadata()?.ino();
            self.file = Some(file);
            self.restart();
            // The log read before, back (moved away and back again): on
            // from where it was left, not from its start.
            if let Some(at) = self.done.iter().position(|d| d.inode == self.inode) {
                let done = self.done.remove(at);
                self.resume_at(done.offset)?;
            }
            return self.read_current(emit);
        }
    }

    /// The file being read is done with: kept among the runs read, with
    /// where it was read to.
    fn set_aside(&mut self) {
        if let Some(file) = self.file.take() {
            self.done.push(Done {
                inode: self.inode,
                file,
                offset: self.offset,
            });
        }
    }

    /// Go on reading the current file from `offset`, as if read up to it.
    fn resume_at(&mut self, offset: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        let offset = offset.min(file.metadata()?.len());
        let seen = offset.min(SEEN_BYTES as u64);
        self.seen = vec![0; seen as usize];
        file.read_exact_at(&mut self.seen, offset - seen)?;
        self.offset = offset;
        Ok(())
    }

    /// The rotated runs on disk now, oldest first (`service.log.N` down to
    /// `.1`), as inodes and open files: held open, they are read whole
    /// however the names move meanwhile. A rotation under way leaves a gap
    /// of one number, so the look goes past one free number and ends at two
    /// in a row (or the keep limit's most). A run that cannot be opened is
    /// skipped and noted in `skipped`.
    fn rotated_runs(&mut self) -> io::Result<Vec<(u64, File)>> {
        let mut runs = Vec::new();
        let mut free_in_a_row = 0;
        for i in 1..=crate::config::MAX_LOG_KEEP {
            let path = super::rotated(&self.path, i);
            match open_log(&path) {
                Ok(file) => runs.push((file.metadata()?.ino(), file)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    free_in_a_row += 1;
                    if free_in_a_row == 2 {
                        break;
                    }
                    continue;
                }
                Err(e) => self.skip(&path, e),
            }
            free_in_a_row = 0;
        }
        runs.reverse();
        Ok(runs)
    }

    /// Note a rotated run at `path` that cannot be opened, once.
    fn skip(&mut self, path: &Path, e: io::Error) {
        let id = std::fs::symlink_metadata(path).map_or((0, 0), |m| (m.dev(), m.ino()));
        if self.said_skipped.insert(id) {
            self.skipped.push(io::Error::new(
                e.kind(),
                format!("{} is skipped: {e}", path.display()),
            ));
        }
    }

    /// The rotated runs not read yet, oldest first; runs the keep limit
    /// deleted are let go first (their inode numbers may be reused now).
    fn unread_runs(&mut self) -> io::Result<Vec<(u64, File)>> {
        self.done
            .retain(|done| done.file.metadata().is_ok_and(|m| m.nlink() > 0));
        let runs = self.rotated_runs()?;
        Ok(runs
            .into_iter()
            .filter(|(ino, _)| !self.done.iter().any(|done| done.inode == *ino))
            .collect())
    }

    /// The runs rotated away while we lagged behind (a paused `logs -f`, a
    /// napping host): every rotated run not read yet, oldest first, until
    /// no new one appears. (A run the keep limit removed is gone for
    /// anyone.) `Ok(false)` when `emit` wants no more.
    fn read_runs_rotated_past(&mut self, emit: &mut dyn FnMut(String) -> bool) -> io::Result<bool> {
        loop {
            let news = self.unread_runs()?;
            if news.is_empty() {
                return Ok(true);
            }
            for (ino, file) in news {
                self.inode = ino;
                self.file = Some(file);
                self.restart();
                if !self.read_current(emit)? || !self.emit_partial(emit) {
                    return Ok(false);
                }
                self.set_aside();
            }
        }
    }

    /// Read the current file from its beginning.
    fn restart(&mut self) {
        self.offset = 0;
        self.partial.clear();
        self.seen.clear();
    }

    /// Whether the open file was truncated since the last read: it is
    /// shorter than where we read, or the bytes last read are no longer
    /// where they were (it was emptied, then written past that point).
    fn truncated(&self) -> io::Result<bool> {
        use std::os::unix::fs::FileExt;
        let Some(file) = self.file.as_ref() else {
            return Ok(false);
        };
        if file.metadata()?.len() < self.offset {
            return Ok(true);
        }
        let mut now = vec![0; self.seen.len()];
        match file.read_exact_at(&mut now, self.offset - self.seen.len() as u64) {
            Ok(()) => Ok(now != self.seen),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Emit every complete line appended since the last read, in pieces
    /// of at most [`MAX_LINE_BYTES`] for longer ones. Reads a chunk at a
    /// time, so a burst of output costs no more memory than one piece.
    fn read_current(&mut self, emit: &mut dyn FnMut(String) -> bool) -> io::Result<bool> {
        let Some(file) = self.file.as_mut() else {
            return Ok(true);
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let read = match file.read(&mut chunk) {
                Ok(0) => return Ok(true),
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.offset += read as u64;
            let chunk = &chunk[..read];
            let keep = self.seen.len().min(SEEN_BYTES.saturating_sub(read));
            self.seen.drain(..self.seen.len() - keep);
            self.seen
                .extend_from_slice(&chunk[read.saturating_sub(SEEN_BYTES)..]);
            self.partial.extend_from_slice(chunk);
            loop {
                // One byte past the limit tells whether a line ends within it.
                let newline = self
                    .partial
                    .iter()
                    .take(MAX_LINE_BYTES + 1)
                    .position(|&b| b == b'\n');
                let line = match newline {
                    Some(end) => {
                        let line = clean_line(&self.partial[..end]);
                        self.partial.drain(..=end);
                        line
                    }
                    None if self.partial.len() > MAX_LINE_BYTES => {
                        let end = cut_between_chars(&self.partial, MAX_LINE_BYTES);
                        let piece = clean_line(&self.partial[..end]);
                        self.partial.drain(..end);
                        piece
                    }
                    None => break,
                };
                if !emit(line) {
                    return Ok(false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Every line `reader` emits now.
    fn drained(reader: &mut Reader) -> Vec<String> {
        let mut lines = Vec::new();
        assert!(
            reader
                .drain(&mut |line| {
                    lines.push(line);
                    true
                })
                .unwrap()
        );
        lines
    }

    #[test]
    fn a_log_emptied_and_written_past_where_it_was_read_is_read_from_its_start() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log");
        std::fs::write(&path, "old line one\n").unwrap();
        let mut reader = Reader::open_at_end(path.clone()).unwrap();
        // Between two wakes: `: > log`, then a line longer than the old file.
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(0).unwrap();
        file.write_all(b"NEW-1 this line is longer than before\n")
            .unwrap();
        assert_eq!(
            drained(&mut reader),
            ["NEW-1 this line is longer than before"]
        );
        // And appends go on from there.
        file.write_all(b"NEW-2\n").unwrap();
        assert_eq!(drained(&mut reader), ["NEW-2"]);
        assert!(drained(&mut reader).is_empty());
    }

    #[test]
    fn a_line_longer_than_the_limit_comes_in_whole_characters_and_nothing_is_lost() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log");
        std::fs::write(&path, "").unwrap();
        let mut reader = Reader::open_at_end(path.clone()).unwrap();
        // Two-byte characters after one ASCII byte: every cut at the limit
        // would fall inside one.
        let long = format!("x{}", "\u{e9}".repeat(MAX_LINE_BYTES));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(format!("{long}\nnext\n").as_bytes())
            .unwrap();
        let lines = drained(&mut reader);
        let (pieces, rest) = lines.split_at(lines.len() - 1);
        assert_eq!(rest, ["next"]);
        assert!(pieces.len() >= 2, "{} pieces", pieces.len());
        assert!(pieces.iter().all(|p| p.len() <= MAX_LINE_BYTES));
        assert!(pieces.iter().all(|p| !p.contains('\u{fffd}')));
        assert_eq!(pieces.concat(), long);
        // A line of exactly the limit is one line.
        let full = "a".repeat(MAX_LINE_BYTES);
        file.write_all(format!("{full}\nafter\n").as_bytes())
            .unwrap();
        assert_eq!(drained(&mut reader), [full.as_str(), "after"]);
    }

    /// A reader that fell behind while the log was rotated twice (a paused
    /// `logs -f`, a napping menu app) reads the run in between too.
    #[test]
    fn a_reader_behind_two_rotations_reads_the_run_between_them() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("service.log");
        std::fs::write(&log, "run 1 a\n").unwrap();
        let mut reader = Reader::open_at_end(log.clone()).unwrap();
        std::fs::write(&log, "run 1 a\nrun 1 b\n").unwrap();
        // Two runs later, unread: run 1 is .2, run 2 is .1.
        super::super::rotate_if_needed(&log, 1, 3).unwrap();
        std::fs::write(&log, "run 2 a\nrun 2 b\n").unwrap();
        super::super::rotate_if_needed(&log, 1, 3).unwrap();
        std::fs::write(&log, "run 3 a\n").unwrap();
        assert_eq!(
            drained(&mut reader),
            ["run 1 b", "run 2 a", "run 2 b", "run 3 a"]
        );
        // And a third rotation later, nothing is read twice.
        super::super::rotate_if_needed(&log, 1, 3).unwrap();
        std::fs::write(&log, "run 4 a\n").unwrap();
        assert_eq!(drained(&mut reader), ["run 4 a"]);
    }

    /// Behind by more rotations than are kept: the file it was reading is
    /// gone, and every run still on disk is read, oldest first.
    #[test]
    fn a_reader_whose_file_the_keep_limit_removed_reads_every_run_still_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("service.log");
        std::fs::write(&log, "run 1\n").unwrap();
        let mut reader = Reader::open_at_end(log.clone()).unwrap();
        for run in 2..=5 {
            super::super::rotate_if_needed(&log, 1, 2).unwrap();
            std::fs::write(&log, format!("run {run}\n")).unwrap();
        }
        // Kept: run 3 (.2), run 4 (.1), run 5 (the log).
        assert_eq!(drained(&mut reader), ["run 3", "run 4", "run 5"]);
    }

    /// A rotation under way leaves a gap among the numbers (`.1` renamed to
    /// `.2` before the log becomes `.1`): a run past the gap is still read.
    #[test]
    fn a_run_past_a_gap_in_the_numbers_is_read() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("service.log");
        std::fs::write(&log, "run 1\n").unwrap();
        let mut reader = Reader::open_at_end(log.clone()).unwrap();
        std::fs::write(&log, "run 1\nrun 1 more\n").unwrap();
        // Mid-rotation: run 1 is .3, run 2 (unread) .2, no .1 yet.
        std::fs::rename(&log, super::super::rotated(&log, 3)).unwrap();
        std::fs::write(super::super::rotated(&log, 2), "run 2\n").unwrap();
        std::fs::write(&log, "run 3\n").unwrap();
        assert_eq!(drained(&mut reader), ["run 1 more", "run 2", "run 3"]);
    }

    /// A rotated run that cannot be opened (a link in its place) is skipped,
    /// said with its own name, and the runs after it are read.
    #[test]
    fn a_run_that_cannot_be_opened_is_skipped_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("service.log");
        std::fs::write(&log, "run 1\n").unwrap();
        let mut reader = Reader::open_at_end(log.clone()).unwrap();
        std::fs::write(&log, "run 1\nrun 1 more\n").unwrap();
        super::super::rotate_if_needed(&log, 1, 3).unwrap();
        std::fs::write(&log, "run 2\n").unwrap();
        super::super::rotate_if_needed(&log, 1, 3).unwrap();
        // Run 2 (.1), never opened, replaced by a link: refused. (Run 1 is
        // read to its end from the file the reader holds.)
        let run2 = super::super::rotated(&log, 1);
        std::fs::remove_file(&run2).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &run2).unwrap();
        std::fs::write(&log, "run 3\n").unwrap();
        assert_eq!(drained(&mut reader), ["run 1 more", "run 3"]);
        let said: Vec<String> = reader.skipped.iter().map(ToString::to_string).collect();
        assert!(
            said.iter().any(|s| s.contains(&run2.display().to_string())),
            "{said:?}"
        );
    }

    /// A run that cannot be opened is said once, not again each time a
    /// rotation moves it to the next number.
    #[test]
    fn a_run_that_cannot_be_opened_is_said_once_wherever_it_moves() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("service.log");
        std::fs::write(&log, "run 1\n").unwrap();
        let mut reader = Reader::open_at_end(log.clone()).unwrap();
        super::super::rotate_if_needed(&log, 1, 3).unwrap();
        std::fs::remove_file(super::super::rotated(&log, 1)).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", super::super::rotated(&log, 1)).unwrap();
        std::fs::write(&log, "run 2\n").unwrap();
        assert_eq!(drained(&mut reader), ["run 2"]);
        assert_eq!(std::mem::take(&mut reader.skipped).len(), 1);
        super::super::rotate_if_needed(&log, 1, 3).unwrap();
        std::fs::write(&log, "run 3\n").unwrap();
        assert_eq!(drained(&mut reader), ["run 3"]);
        assert!(reader.skipped.is_empty(), "{:?}", reader.skipped);
    }

    /// The log moved away (a link in its place for a while) and back: read
    /// on from where it was left, not again from its start.
    #[test]
    fn a_log_that_comes_back_is_read_on_from_where_it_was_left() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("service.log");
        let away = tmp.path().join("away");
        std::fs::write(&log, "one\n").unwrap();
        let mut reader = Reader::open_at_end(log.clone()).unwrap();
        std::fs::write(&log, "one\ntwo\n").unwrap();
        assert_eq!(drained(&mut reader), ["two"]);
        std::fs::rename(&log, &away).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &log).unwrap();
        assert!(reader.drain(&mut |_| true).is_err(), "a link is refused");
        std::fs::remove_file(&log).unwrap();
        std::fs::rename(&away, &log).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"three\n")
            .unwrap();
        assert_eq!(drained(&mut reader), ["three"]);
    }

    /// Far behind, again and again, with the keep limit deleting runs: a
    /// file system gives a deleted run's inode number to the next new log
    /// at once (ext4 does), and a run known only by its number would be
    /// taken for one already read. Every run still kept is read, once, in
    /// order.
    #[test]
    fn a_reader_far_behind_again_and_again_reads_every_kept_run_once() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("service.log");
        std::fs::write(&log, "run 0\n").unwrap();
        let mut reader = Reader::open_at_end(log.clone()).unwrap();
        let mut run = 0;
        let mut read = Vec::new();
        for _ in 0..20 {
            // Behind by two rotations each time, with three kept.
            for _ in 0..2 {
                run += 1;
                super::super::rotate_if_needed(&log, 1, 3).unwrap();
                std::fs::write(&log, format!("run {run}\n")).unwrap();
            }
            read.extend(drained(&mut reader));
        }
        let all: Vec<String> = (1..=run).map(|r| format!("run {r}")).collect();
        assert_eq!(read, all);
    }

    /// Started before any log existed, and behind by two runs: the first is
    /// read from its rotated file; runs rotated before the start are not.
    #[test]
    fn a_reader_started_before_any_log_reads_the_runs_rotated_since() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("service.log");
        std::fs::write(super::super::rotated(&log, 1), "older run\n").unwrap();
        let mut reader = Reader::open_at_end(log.clone()).unwrap();
        std::fs::write(&log, "run 1\n").unwrap();
        super::super::rotate_if_needed(&log, 1, 3).unwrap();
        std::fs::write(&log, "run 2\n").unwrap();
        assert_eq!(drained(&mut reader), ["run 1", "run 2"]);
    }
}
