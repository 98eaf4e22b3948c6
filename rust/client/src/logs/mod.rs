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

mod follow;
pub(crate) mod mark;
mod rotate;

pub use follow::{LogFollower, follow};
pub use rotate::{blocked_by, rotate_if_needed, rotated};

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// The first read from the end of the log; later ones double up to [`MAX_CHUNK`].
const FIRST_CHUNK: u64 = 8 * 1024;
const MAX_CHUNK: u64 = 1024 * 1024;
/// At most this much of the end of a log is read for one tail, however many
/// lines are asked for, so a host asking for `usize::MAX` lines of a huge log
/// gets its last 4 MiB (whole lines only; of a last line longer than that,
/// its last [`MAX_LINE_BYTES`]), not the whole file in memory.
pub const MAX_TAIL_BYTES: u64 = 4 * 1024 * 1024;
/// The longest line handed out whole when streaming ([`tail_lines`],
/// [`follow`]). A longer one (a progress bar redrawn with `\r` that never
/// ends its line) comes in pieces of at most this many bytes, cut between
/// characters: memory stays bounded and nothing is dropped.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Where to cut `bytes` to keep at most `limit` (> 0) of them: not inside
/// a UTF-8 character (of valid text), so neither piece shows it broken,
/// and never before the first byte, so each cut makes progress.
fn cut_between_chars(bytes: &[u8], limit: usize) -> usize {
    let mut end = limit.min(bytes.len());
    let floor = end.saturating_sub(3).max(1);
    while end > floor && bytes.get(end).is_some_and(|&b| b & 0xC0 == 0x80) {
        end -= 1;
    }
    end
}

/// The last at most `limit` bytes of `bytes`, starting at a character (of
/// valid UTF-8), never inside one (so fewer when a character straddles the
/// cut, none when `limit` is smaller than the last character).
fn last_piece(bytes: &[u8], limit: usize) -> &[u8] {
    let mut start = bytes.len().saturating_sub(limit);
    // A character's first byte is followed by at most 3 others.
    let past = (start + 3).min(bytes.len());
    while start > 0 && start < past && bytes[start] & 0xC0 == 0x80 {
        start += 1;
    }
    &bytes[start..]
}

/// The last lines of a file and what it cost to find them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tail {
    /// The lines, oldest first, without their newlines.
    pub lines: Vec<String>,
    /// How many bytes were read to find them.
    pub bytes_read: u64,
}

/// A log line as text: invalid UTF-8 replaced, escape sequences and
/// control characters (but tabs) removed. An 8-bit control that starts a
/// sequence (`U+009B`, the one-character CSI) takes its sequence with it.
pub fn clean_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let is_noise = |c: char| c.is_control() && c != '\t';
    if !text.contains(is_noise) {
        return text.into_owned();
    }
    // Each 8-bit control as its 7-bit escape (`U+009B` is `ESC [`), which
    // the stripper knows how to end.
    let mut seven_bit = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match u8::try_from(u32::from(c)) {
            Ok(byte @ 0x80..=0x9f) => {
                seven_bit.push('\x1b');
                seven_bit.push(char::from(byte - 0x40));
            }
            _ => seven_bit.push(c),
        }
    }
    let mut clean = anstream::adapter::strip_str(&seven_bit).to_string();
    // A progress line redrawn with carriage returns (`10%\r20%\r30%`): what
    // a terminal ends up showing, its last part, not the parts run together.
    if let Some(last) = clean.split('\r').rev().find(|part| !part.is_empty())
        && last.len() < clean.trim_end_matches('\r').len()
    {
        clean = last.to_string();
    }
    // What the stripper keeps as white space (a carriage return, a form
    // feed) goes too: it would move a reader's cursor.
    clean.retain(|c| !is_noise(c));
    clean
}

/// What a link at the log's path is said to be.
const SYMLINK: &str = "is a symbolic link, which is never followed";

/// The macOS command that shows the last hour of `program`'s lines in the
/// system log (spfs-fuse-macos logs there as "spfs"; a service launchd or
/// spfs started has no log file of ours). `--info`: `log show` leaves
/// info-level lines out otherwise.
pub(crate) fn system_log_command(program: &str) -> String {
    let name = Path::new(program)
        .file_name()
        .map_or_else(|| program.to_string(), |n| n.to_string_lossy().into_owned());
    format!("log show --info --last 1h --predicate 'process == {name:?}'")
}

/// What is wrong with what stands at the log's path, if anything: the
/// service's output goes only into a regular file, never through a link.
/// (`ensure` refuses it; `doctor` reports it.)
pub(crate) fn unusable_log_file(path: &Path) -> Option<&'static str> {
    let kind = std::fs::symlink_metadata(path).ok()?.file_type();
    if kind.is_symlink() {
        Some(SYMLINK)
    } else if !kind.is_file() {
        Some("is not a regular file")
    } else {
        None
    }
}

/// Whether a running service writes the log at `log_path`: the spawner
/// takes a shared lock on the log it opens, which the service inherits as
/// its output and holds for as long as it (or what inherited its output)
/// lives. Where this state dir runs no service, the writer is one of
/// another state dir with the same log dir (an explicit `state_dir`, or an
/// `XDG_RUNTIME_DIR` that differed), whose open log a rotation would move
/// away under it.
pub(crate) fn written_by_a_service(log_path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(log) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(log_path)
    else {
        return false;
    };
    matches!(log.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// Open a log for reading: only a regular file, never through a symbolic
/// link (the spawner never writes through one either, so what a link points
/// at is not the service's log, and may be anything of the user's), and
/// without waiting (a FIFO of that name would block the open until someone
/// wrote to it).
pub(crate) fn open_log(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| open_refusal(path, e))?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file; remove it", path.display()),
        ));
    }
    Ok(file)
}

/// Why the log at `path` could not be opened, said as `ensure` and
/// `doctor` say it when what stands there is not a regular file (O_NOFOLLOW
/// refuses a link, also one to nothing).
fn open_refusal(path: &Path, e: io::Error) -> io::Error {
    let what = match unusable_log_file(path) {
        Some(what) => what,
        // The link is gone since the open refused it: still a link's
        // refusal, said the same way (a follower says each error once).
        None if e.raw_os_error() == Some(libc::ELOOP) => SYMLINK,
        None => return e,
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} {what}; remove it", path.display()),
    )
}

/// The last `n` lines of `path`, from at most its last [`MAX_TAIL_BYTES`].
/// A missing file has no lines.
pub fn tail(path: &Path, n: usize) -> io::Result<Tail> {
    tail_since(path, 0, n)
}

/// The last `n` lines of `path` that start at or after byte `start`, so a
/// failed start reports only what this run wrote.
pub fn tail_since(path: &Path, start: u64, n: usize) -> io::Result<Tail> {
    let mut file = match open_log(path) {
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
        // The last line is longer than the cap: its last piece, as the
        // streaming reads hand a long line out in pieces, so that a
        // progress line redrawn with `\r` for hours shows where it got to
        // rather than nothing.
        let line = data.rsplit(|&b| b == b'\n').next().unwrap_or_default();
        let lines = match line.is_empty() {
            true => Vec::new(),
            false => vec![clean_line(last_piece(line, MAX_LINE_BYTES))],
        };
        return Ok(Tail { lines, bytes_read });
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
    let file = match open_log(path) {
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

    /// The next line, or the next piece of one longer than
    /// [`MAX_LINE_BYTES`].
    fn next(&mut self) -> Option<io::Result<String>> {
        use std::io::BufRead;
        let reader = self.reader.as_mut()?;
        loop {
            // Longer than the limit: hand out a piece, keep the rest.
            if self.buf.len() > MAX_LINE_BYTES {
                let end = cut_between_chars(&self.buf, MAX_LINE_BYTES);
                let piece = clean_line(&self.buf[..end]);
                self.buf.drain(..end);
                return Some(Ok(piece));
            }
            let available = match reader.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.reader = None;
                    return Some(Err(e));
                }
            };
            if available.is_empty() {
                // The end: the last line had no newline, or there is none.
                let last = (!self.buf.is_empty()).then(|| Ok(clean_line(&self.buf)));
                self.buf.clear();
                return last;
            }
            // One byte past the limit tells whether the line ends within it.
            let want = MAX_LINE_BYTES + 1 - self.buf.len();
            match available.iter().take(want).position(|&b| b == b'\n') {
                Some(i) => {
                    self.buf.extend_from_slice(&available[..i]);
                    reader.consume(i + 1);
                    let line = clean_line(&self.buf);
                    self.buf.clear();
                    return Some(Ok(line));
                }
                None => {
                    let taken = available.len().min(want);
                    self.buf.extend_from_slice(&available[..taken]);
                    reader.consume(taken);
                }
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

#[cfg(test)]
mod tests;
