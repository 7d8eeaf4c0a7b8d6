//! [`FileSink`]: JSON Lines on disk, with rotation and a choice of durability.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::error::{AuditError, ErrorKind};
use super::fingerprint::hex;
use super::read::{last_line_of, rotated_siblings};
use super::record::check_line;
use super::sink::{ChainHead, Recovery, SealedRecord, Sink};

/// When appended records reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `fdatasync` after every batch, before any request of the batch is released: a
    /// request is forwarded only once its record is on disk. The default.
    ///
    /// Concurrent requests share one sync (group commit), so the cost is one sync per
    /// batch, not per record.
    EveryRecord,
    /// Written at once, synced at most this often: a crash can lose the records of the
    /// last interval, which may already have been forwarded.
    Interval(Duration),
    /// Written at once, synced when the operating system decides.
    Os,
}

/// The largest last line read back when continuing a file (records are far smaller).
const MAX_TAIL: u64 = 1 << 20;

/// Appends records to a JSON Lines file.
///
/// - **Append only**, one record per line; the writer holds an exclusive lock on
///   `PATH.lock` (released when the process ends), so two processes cannot interleave
///   two chains in one file.
/// - **Rotation** by size ([`rotate_bytes`](FileSink::rotate_bytes)) and/or by UTC day
///   ([`rotate_daily`](FileSink::rotate_daily)): the full file is synced and renamed to
///   `PATH.<last seq, 20 digits>` (lexical order is chain order), and a new `PATH` is
///   started. The chain continues across files. Old files may be compressed with gzip
///   (`.gz`) by logrotate or similar; the readers and the recovery read them.
/// - **Restarts**: the chain continues from the last record of `PATH`, or of the newest
///   rotated file when `PATH` is empty. A half-written last line (a crash mid-write) is
///   cut off and a `recovered` record naming its length and SHA-256 is written first.
///   A last complete line that does not verify stops the writer (`bad-head`): someone
///   must look at the file.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use privacy_router::audit::{Auditor, Durability, FileSink, FingerprintKey};
///
/// let sink = FileSink::new("/var/log/privacy-router/audit.jsonl")
///     .rotate_bytes(256 << 20)
///     .rotate_daily(true)
///     .durability(Durability::EveryRecord);
/// let auditor = Auditor::new(sink, FingerprintKey::from_env()?);
/// # Ok::<(), privacy_router::audit::AuditError>(())
/// ```
pub struct FileSink {
    path: PathBuf,
    durability: Durability,
    rotate_bytes: Option<u64>,
    rotate_daily: bool,
    open: Option<Open>,
}

struct Open {
    file: File,
    _lock: File,
    /// Bytes in the file, including `buf` once written.
    size: u64,
    /// UTC day (days since the epoch) of the file's last record.
    day: Option<i64>,
    /// The last record's seq, for the rotated name.
    last_seq: Option<u64>,
    buf: Vec<u8>,
    /// Written but not yet synced.
    dirty: bool,
    last_sync: Instant,
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .field("rotate_bytes", &self.rotate_bytes)
            .field("rotate_daily", &self.rotate_daily)
            .field("open", &self.open.as_ref().map(|o| o.size))
            .finish()
    }
}

impl FileSink {
    /// A sink appending to `path`, which is created (with its directory) if missing.
    /// Nothing is opened until the [`Auditor`](super::Auditor) starts it.
    pub fn new(path: impl Into<PathBuf>) -> FileSink {
        FileSink {
            path: path.into(),
            durability: Durability::EveryRecord,
            rotate_bytes: None,
            rotate_daily: false,
            open: None,
        }
    }

    /// When records reach the disk (default [`Durability::EveryRecord`]).
    pub fn durability(mut self, durability: Durability) -> FileSink {
        self.durability = durability;
        self
    }

    /// Starts a new file before a record would make the current one larger than `bytes`.
    pub fn rotate_bytes(mut self, bytes: u64) -> FileSink {
        self.rotate_bytes = Some(bytes.max(1));
        self
    }

    /// Starts a new file on the first record of each UTC day.
    pub fn rotate_daily(mut self, on: bool) -> FileSink {
        self.rotate_daily = on;
        self
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, kind: ErrorKind, e: io::Error) -> AuditError {
        AuditError::io(kind, &self.path, e)
    }

    fn open_file(&self) -> Result<(Open, Recovery), AuditError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| self.err(ErrorKind::Open, e))?;
        }
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| self.err(ErrorKind::Open, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(AuditError::at(ErrorKind::Locked, &self.path));
            }
            Err(fs::TryLockError::Error(e)) => return Err(self.err(ErrorKind::Open, e)),
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.err(ErrorKind::Open, e))?;
        let len = file
            .metadata()
            .map_err(|e| self.err(ErrorKind::Open, e))?
            .len();
        let (last, partial) =
            read_tail(&mut file, len).map_err(|e| self.err(ErrorKind::Open, e))?;
        let mut truncated = None;
        let mut size = len;
        if !partial.is_empty() {
            // A crash mid-write: cut the half line so the file stays one record per
            // line, and let the auditor record what was cut.
            size = len - partial.len() as u64;
            file.set_len(size)
                .and_then(|()| file.sync_all())
                .map_err(|e| self.err(ErrorKind::Open, e))?;
            truncated = Some((partial.len() as u64, hex(&Sha256::digest(&partial))));
        }
        let last = match last {
            Some(line) => Some(line),
            // An empty current file: the chain goes on from the newest rotated one.
            None => match rotated_siblings(&self.path)
                .map_err(|e| self.err(ErrorKind::Open, e))?
                .last()
            {
                Some(p) => last_line_of(p).map_err(|e| AuditError::io(ErrorKind::Open, p, e))?,
                None => None,
            },
        };
        let (head, day) = match last {
            None => (None, None),
            Some(line) => {
                let checked = check_line(&line)
                    .map_err(|_| AuditError::at(ErrorKind::BadHead, &self.path))?;
                let day = (size > 0).then(|| record_day(&line)).flatten();
                (
                    Some(ChainHead {
                        seq: checked.seq,
                        hash: checked.hash,
                    }),
                    day,
                )
            }
        };
        let open = Open {
            file,
            _lock: lock,
            size,
            day,
            last_seq: head.as_ref().map(|h| h.seq),
            buf: Vec::with_capacity(64 << 10),
            dirty: false,
            last_sync: Instant::now(),
        };
        Ok((open, Recovery { head, truncated }))
    }

    fn rotate(&mut self) -> Result<(), AuditError> {
        let path = self.path.clone();
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        write_out(open).map_err(|e| AuditError::io(ErrorKind::Write, &path, e))?;
        open.file
            .sync_all()
            .map_err(|e| AuditError::io(ErrorKind::Sync, &path, e))?;
        let mut target = path.clone().into_os_string();
        target.push(format!(".{:020}", open.last_seq.unwrap_or(0)));
        let mut target = PathBuf::from(target);
        let mut n = 1;
        while target.exists() {
            let mut t = path.clone().into_os_string();
            t.push(format!(".{:020}-{n}", open.last_seq.unwrap_or(0)));
            target = PathBuf::from(t);
            n += 1;
        }
        fs::rename(&path, &target).map_err(|e| AuditError::io(ErrorKind::Rotate, &path, e))?;
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| AuditError::io(ErrorKind::Rotate, &path, e))?;
        sync_dir(&path);
        open.file = file;
        open.size = 0;
        open.day = None;
        open.dirty = false;
        Ok(())
    }
}

impl Sink for FileSink {
    fn recover(&mut self) -> Result<Recovery, AuditError> {
        // Re-opening after a failure drops the old handle (and its lock) first.
        self.open = None;
        let (open, recovery) = self.open_file()?;
        self.open = Some(open);
        Ok(recovery)
    }

    fn append(&mut self, record: &SealedRecord<'_>) -> Result<(), AuditError> {
        let day = record.time_micros.div_euclid(86_400_000_000);
        let Some(open) = self.open.as_ref() else {
            return Err(AuditError::at(ErrorKind::Closed, &self.path));
        };
        let pending = open.size + open.buf.len() as u64;
        let too_big = self
            .rotate_bytes
            .is_some_and(|max| pending > 0 && pending + record.line.len() as u64 > max);
        let new_day = self.rotate_daily && pending > 0 && open.day.is_some_and(|d| d != day);
        if too_big || new_day {
            self.rotate()?;
        }
        let path = self.path.clone();
        let open = self.open.as_mut().expect("opened above");
        open.buf.extend_from_slice(record.line);
        open.day = Some(day);
        open.last_seq = Some(record.seq);
        if open.buf.len() >= 1 << 20 {
            write_out(open).map_err(|e| AuditError::io(ErrorKind::Write, &path, e))?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), AuditError> {
        let path = self.path.clone();
        let Some(open) = self.open.as_mut() else {
            return Err(AuditError::at(ErrorKind::Closed, &path));
        };
        write_out(open).map_err(|e| AuditError::io(ErrorKind::Write, &path, e))?;
        let due = match self.durability {
            Durability::EveryRecord => true,
            Durability::Interval(every) => open.last_sync.elapsed() >= every,
            Durability::Os => false,
        };
        if due && open.dirty {
            open.file
                .sync_data()
                .map_err(|e| AuditError::io(ErrorKind::Sync, &path, e))?;
            open.dirty = false;
            open.last_sync = Instant::now();
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<(), AuditError> {
        match (self.durability, self.open.as_ref()) {
            (Durability::Interval(_), Some(open)) if open.dirty || !open.buf.is_empty() => {
                self.commit()
            }
            _ => Ok(()),
        }
    }

    fn close(&mut self) -> Result<(), AuditError> {
        let path = self.path.clone();
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        write_out(open).map_err(|e| AuditError::io(ErrorKind::Write, &path, e))?;
        if open.dirty && self.durability != Durability::Os {
            open.file
                .sync_data()
                .map_err(|e| AuditError::io(ErrorKind::Sync, &path, e))?;
            open.dirty = false;
        }
        Ok(())
    }
}

fn write_out(open: &mut Open) -> io::Result<()> {
    if open.buf.is_empty() {
        return Ok(());
    }
    let result = open.file.write_all(&open.buf);
    // On failure some bytes may have reached the file; the auditor re-reads the tail
    // (`recover`) before it writes again, so the size here no longer matters.
    open.size += open.buf.len() as u64;
    open.buf.clear();
    open.dirty = true;
    result
}

/// The last complete line of an open file (without its newline), and the bytes after it
/// (a half-written line, empty when the file ends with a newline).
fn read_tail(file: &mut File, len: u64) -> io::Result<(Option<Vec<u8>>, Vec<u8>)> {
    if len == 0 {
        return Ok((None, Vec::new()));
    }
    let chunk = len.min(MAX_TAIL);
    file.seek(SeekFrom::Start(len - chunk))?;
    let mut buf = Vec::with_capacity(chunk as usize);
    Read::by_ref(file).take(chunk).read_to_end(&mut buf)?;
    let whole = chunk == len;
    let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
        if whole {
            return Ok((None, buf));
        }
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "last line too long",
        ));
    };
    let partial = buf[last_nl + 1..].to_vec();
    let start = match buf[..last_nl].iter().rposition(|&b| b == b'\n') {
        Some(p) => p + 1,
        None if whole => 0,
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "last line too long",
            ));
        }
    };
    Ok((Some(buf[start..last_nl].to_vec()), partial))
}

/// The UTC day of a record line's `time`.
fn record_day(line: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct T {
        time: String,
    }
    let t: T = serde_json::from_slice(line).ok()?;
    super::time::parse_rfc3339(&t.time).map(|m| m.div_euclid(86_400_000_000))
}

/// Makes a rename durable (best effort: not every platform can sync a directory).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{GENESIS, seal};

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pr-audit-unit-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Appends records at the given times (microseconds) as the auditor would.
    fn append_at(sink: &mut FileSink, head: &mut Option<ChainHead>, times: &[i64]) {
        for &t in times {
            let seq = head.as_ref().map_or(1, |h| h.seq + 1);
            let prev = head
                .as_ref()
                .map_or(GENESIS.to_string(), |h| h.hash.clone());
            let (line, hash) = seal(
                seq,
                &prev,
                &super::super::time::format_micros(t),
                br#""event":"decision""#,
            );
            sink.append(&SealedRecord {
                line: &line,
                seq,
                time_micros: t,
            })
            .unwrap();
            sink.commit().unwrap();
            *head = Some(ChainHead { seq, hash });
        }
    }

    #[test]
    fn rotates_by_day_and_size_and_locks_out_a_second_writer() {
        let dir = temp("rotate");
        let path = dir.join("audit.jsonl");
        let day = 86_400_000_000;
        let mut sink = FileSink::new(&path)
            .rotate_daily(true)
            .durability(Durability::Os);
        let mut head = sink.recover().unwrap().head;
        assert!(head.is_none());
        assert_eq!(
            FileSink::new(&path).recover().unwrap_err().code(),
            "locked",
            "one writer per file"
        );
        append_at(
            &mut sink,
            &mut head,
            &[20_000 * day, 20_000 * day + 5, 20_001 * day],
        );
        let rotated = rotated_siblings(&path).unwrap();
        assert_eq!(rotated.len(), 1);
        assert!(
            rotated[0]
                .to_string_lossy()
                .ends_with(".00000000000000000002")
        );
        sink.close().unwrap();
        drop(sink);

        // A restart continues the chain; a size limit rotates before the file would grow
        // past it.
        let mut sink = FileSink::new(&path)
            .rotate_bytes(400)
            .durability(Durability::Interval(Duration::from_millis(1)));
        let mut head = sink.recover().unwrap().head;
        assert_eq!(head.as_ref().map(|h| h.seq), Some(3));
        append_at(
            &mut sink,
            &mut head,
            &[20_001 * day + 1, 20_001 * day + 2, 20_001 * day + 3],
        );
        sink.tick().unwrap();
        let mut files = rotated_siblings(&path).unwrap();
        files.push(path.clone());
        assert!(files.len() >= 3, "{files:?}");
        let v = crate::audit::verify_files(&files).unwrap();
        assert!(v.is_intact(), "{:?}", v.violation);
        assert_eq!(v.last_seq, Some(6));
        let _ = fs::remove_dir_all(&dir);
    }
}
