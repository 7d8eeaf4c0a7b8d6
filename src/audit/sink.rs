//! The [`Sink`] trait and the in-memory sink.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::{AuditError, ErrorKind};
use super::record::check_line;

/// Where records go. The [`Auditor`](super::Auditor)'s writer thread owns the sink and
/// calls it from that one thread only, so a sink needs no locking of its own.
///
/// The auditor builds each record (sequence number, `prev`, time, `hash`); a sink stores
/// the lines in order and says where the chain ends. The call order is:
/// [`recover`](Sink::recover) once before the first record (and again after any failure,
/// so the chain resumes from what is really stored), then batches of
/// [`append`](Sink::append) each followed by one [`commit`](Sink::commit); a request
/// waiting for its record is released only after the commit of its batch succeeded.
pub trait Sink: Send + 'static {
    /// Opens the sink if needed and reports the last record stored (the chain head) and
    /// any half-written record it cut.
    ///
    /// # Errors
    ///
    /// The sink cannot be opened, or its last record does not verify. Every request
    /// waiting for the batch then gets its team's `on_error`.
    fn recover(&mut self) -> Result<Recovery, AuditError>;

    /// Stores one record: `record.line()` is one line of JSON ending in `\n`.
    ///
    /// # Errors
    ///
    /// The record could not be stored (or buffered).
    fn append(&mut self, record: &SealedRecord<'_>) -> Result<(), AuditError>;

    /// Makes the records appended since the last commit as durable as the sink promises.
    ///
    /// # Errors
    ///
    /// They could not be written or synced: the whole batch counts as failed.
    fn commit(&mut self) -> Result<(), AuditError>;

    /// Called when the writer has been idle for a while (about 10 ms); a sink that syncs
    /// on a timer does it here.
    ///
    /// # Errors
    ///
    /// A deferred write or sync failed.
    fn tick(&mut self) -> Result<(), AuditError> {
        Ok(())
    }

    /// Called once at shutdown, after the last commit.
    ///
    /// # Errors
    ///
    /// A final write or sync failed.
    fn close(&mut self) -> Result<(), AuditError> {
        self.commit()
    }
}

/// One finished record handed to a [`Sink`].
#[derive(Debug)]
pub struct SealedRecord<'a> {
    pub(crate) line: &'a [u8],
    pub(crate) seq: u64,
    pub(crate) time_micros: i64,
}

impl SealedRecord<'_> {
    /// The record as one line of JSON, with its trailing `\n`.
    pub fn line(&self) -> &[u8] {
        self.line
    }

    /// Its sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Its time, in microseconds since the Unix epoch (for rotation by day).
    pub fn time_micros(&self) -> i64 {
        self.time_micros
    }
}

/// The end of a chain already stored: the last record's sequence number and hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// Its `seq`.
    pub seq: u64,
    /// Its `hash`, 64 hex digits.
    pub hash: String,
}

/// What [`Sink::recover`] found.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Recovery {
    /// The chain head to continue from; `None` starts a new chain at seq 1.
    pub head: Option<ChainHead>,
    /// A half-written last line that was cut (after a crash): its length and SHA-256.
    /// The auditor writes a `recovered` record naming them before anything else.
    pub truncated: Option<(u64, String)>,
}

impl Recovery {
    /// Continue after `head` (or start a new chain when `None`).
    pub fn new(head: Option<ChainHead>) -> Recovery {
        Recovery {
            head,
            truncated: None,
        }
    }
}

/// Keeps records in memory: for tests and for embedding the log elsewhere.
///
/// Clones share the same records. [`set_failing`](MemorySink::set_failing) makes every
/// later append fail, to test what a broken sink does to requests.
///
/// ```
/// use privacy_router::audit::{Auditor, FingerprintKey, MemorySink};
///
/// let sink = MemorySink::new();
/// let auditor = Auditor::new(sink.clone(), FingerprintKey::from_bytes(vec![1; 32])?);
/// auditor.flush()?;
/// assert!(sink.lines().is_empty());
/// # Ok::<(), privacy_router::audit::AuditError>(())
/// ```
#[derive(Clone, Default)]
pub struct MemorySink {
    state: Arc<Mutex<MemoryState>>,
}

#[derive(Default)]
struct MemoryState {
    lines: Vec<String>,
    failing: bool,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    fn state(&self) -> MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every record stored, in order, each without its newline.
    pub fn lines(&self) -> Vec<String> {
        self.state().lines.clone()
    }

    /// Makes later appends and commits fail (`true`) or succeed again (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.state().failing = failing;
    }
}

impl fmt::Debug for MemorySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state();
        f.debug_struct("MemorySink")
            .field("records", &s.lines.len())
            .field("failing", &s.failing)
            .finish()
    }
}

impl Sink for MemorySink {
    fn recover(&mut self) -> Result<Recovery, AuditError> {
        let s = self.state();
        if s.failing {
            return Err(AuditError::new(ErrorKind::Injected));
        }
        match s.lines.last() {
            None => Ok(Recovery::new(None)),
            Some(last) => match check_line(last.as_bytes()) {
                Ok(c) => Ok(Recovery::new(Some(ChainHead {
                    seq: c.seq,
                    hash: c.hash,
                }))),
                Err(_) => Err(AuditError::new(ErrorKind::BadHead)),
            },
        }
    }

    fn append(&mut self, record: &SealedRecord<'_>) -> Result<(), AuditError> {
        let mut s = self.state();
        if s.failing {
            return Err(AuditError::new(ErrorKind::Injected));
        }
        let line = record.line.strip_suffix(b"\n").unwrap_or(record.line);
        s.lines.push(String::from_utf8_lossy(line).into_owned());
        Ok(())
    }

    fn commit(&mut self) -> Result<(), AuditError> {
        if self.state().failing {
            return Err(AuditError::new(ErrorKind::Injected));
        }
        Ok(())
    }
}
