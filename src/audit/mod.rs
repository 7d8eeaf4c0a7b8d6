//! The audit log: a tamper-evident record of every routing decision.
//!
//! Every request that passes a [`PrivacyRouterLayer`](crate::middleware::PrivacyRouterLayer)
//! configured with `.audit(auditor)` produces one [`Record`], written *before* anything
//! is forwarded: time, request id, team, policy file and content hash, API format,
//! requested and routed model, action, target, per-detector counts with categories,
//! keyed [`Fingerprint`]s of the matched values, bytes scanned, scan time, and the kind
//! of inspection error if any. Never the prompt, never a matched value.
//!
//! Records form a hash chain: each carries `seq`, the `hash` of the record before
//! (`prev`) and its own `hash` over its canonical form (the line as written, minus the
//! `hash` member; see `docs/audit.md`). The chain continues across rotated files and
//! process restarts; [`verify_files`] checks it and names the first bad record.
//!
//! - [`Auditor`]: the queue and writer thread the layer holds; `flush`, `shutdown`,
//!   counters.
//! - [`Sink`]: where records go. [`FileSink`] (JSON Lines, rotation, [`Durability`]) and
//!   [`MemorySink`] (tests).
//! - [`FingerprintKey`]: the HMAC key, from the environment or a file.
//! - Reading back: [`expand_paths`], [`open_log`], [`verify_files`], [`Record`].
//!
//! ```
//! use privacy_router::audit::{Auditor, FingerprintKey, MemorySink};
//!
//! let key = FingerprintKey::from_bytes(b"a key of at least sixteen bytes".to_vec())?;
//! let sink = MemorySink::new();
//! let auditor = Auditor::new(sink.clone(), key);
//! // PrivacyRouterLayer::new(policies).audit(auditor.clone()) ...
//! auditor.shutdown()?;
//! # Ok::<(), privacy_router::audit::AuditError>(())
//! ```
//!
//! [`Checkpoints`] (optional) sign the chain head with Ed25519 every N records and/or T
//! seconds, and at shutdown, as records in the chain; [`verify_files_with`] checks them
//! with a [`CheckpointPublicKey`], so a rewrite of the whole log is caught without
//! trusting the file.
//!
//! [`TracingSink`] emits records as `tracing` events for live monitoring; a custom
//! [`Sink`] can forward lines anywhere else.

mod auditor;
mod checkpoint;
pub(crate) mod entry;
mod error;
mod file;
mod fingerprint;
mod read;
mod record;
mod sink;
pub(crate) mod time;
mod tracing_sink;
mod verify;

pub(crate) use auditor::AuditWait;
pub use auditor::{AuditStats, Auditor, AuditorBuilder, DEFAULT_QUEUE};
pub use checkpoint::{CheckpointPublicKey, Checkpoints, generate_seed};
pub use error::AuditError;
pub use file::{Durability, FileSink};
pub use fingerprint::{Fingerprint, FingerprintKey, KEY_ENV, KEY_FILE_ENV, MIN_KEY_LEN};
pub use read::{expand_paths, open_log};
pub use record::{DetectorCount, GENESIS, PolicyRef, Record, SCHEMA_VERSION, ValueFingerprint};
pub use sink::{ChainHead, MemorySink, Recovery, SealedRecord, Sink};
pub use tracing_sink::TracingSink;
pub use verify::{
    Verification, Violation, ViolationKind, verify_file, verify_files, verify_files_with,
};

/// Formats microseconds since the Unix epoch as the records do
/// (`YYYY-MM-DDTHH:MM:SS.ffffffZ`).
pub fn format_time(micros: i64) -> String {
    time::format_micros(micros)
}

/// Parses `YYYY-MM-DD` or an RFC 3339 date-time (`Z` or an offset) into microseconds
/// since the Unix epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    time::parse_rfc3339(s)
}
