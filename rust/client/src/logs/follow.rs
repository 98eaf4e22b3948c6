//! Following the log across rotation and truncation, losing and repeating
//! nothing.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{MAX_CHUNK, TailLines, clean_line};

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
