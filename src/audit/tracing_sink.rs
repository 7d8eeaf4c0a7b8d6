//! [`TracingSink`]: audit records as `tracing` events.

use super::error::AuditError;
use super::sink::{Recovery, SealedRecord, Sink};

/// Emits every record as one `tracing` event (level INFO, target
/// `privacy_router::audit`, the record's JSON line in the field `record`), for services
/// that already ship their events to a collector.
///
/// Records hold no prompt text and no values, so the events are as safe to ship as the
/// file. A tracing subscriber cannot be read back, so each process starts a new chain
/// (seq 1); keep a [`FileSink`](super::FileSink) as the log of record when verification
/// matters, and use this one for live monitoring. `tracing` may drop or filter events
/// by its configuration: it is not a durable sink.
///
/// ```
/// use privacy_router::audit::{Auditor, FingerprintKey, TracingSink};
///
/// let key = FingerprintKey::from_bytes(b"a key of at least sixteen bytes".to_vec())?;
/// let auditor = Auditor::new(TracingSink::new(), key);
/// # auditor.shutdown()?;
/// # Ok::<(), privacy_router::audit::AuditError>(())
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingSink {
    _private: (),
}

impl TracingSink {
    /// A sink that emits every record as a `tracing` event.
    pub fn new() -> TracingSink {
        TracingSink { _private: () }
    }
}

impl Sink for TracingSink {
    fn recover(&mut self) -> Result<Recovery, AuditError> {
        Ok(Recovery::new(None))
    }

    fn append(&mut self, record: &SealedRecord<'_>) -> Result<(), AuditError> {
        let line = record.line().strip_suffix(b"\n").unwrap_or(record.line());
        let line = String::from_utf8_lossy(line);
        tracing::info!(target: "privacy_router::audit", seq = record.seq(), record = %line);
        Ok(())
    }

    fn commit(&mut self) -> Result<(), AuditError> {
        Ok(())
    }
}
