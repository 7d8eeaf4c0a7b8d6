//! [`AuditError`]: what went wrong and where, never a record's content.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An error of the audit log: opening or writing a sink, reading a key, recovering the
/// chain. It names the file and the kind of failure; it never holds record content.
pub struct AuditError {
    kind: ErrorKind,
    path: Option<PathBuf>,
    source: Option<io::Error>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    KeyTooShort,
    KeyUnreadable,
    KeyMissing,
    Open,
    Locked,
    Write,
    Sync,
    Rotate,
    /// The last complete record of the file the writer continues does not verify.
    BadHead,
    QueueFull,
    Closed,
    WriterGone,
    Injected,
    BadSigningKey,
}

impl AuditError {
    pub(crate) fn new(kind: ErrorKind) -> AuditError {
        AuditError {
            kind,
            path: None,
            source: None,
        }
    }

    pub(crate) fn io(kind: ErrorKind, path: &Path, source: io::Error) -> AuditError {
        AuditError {
            kind,
            path: Some(path.to_path_buf()),
            source: Some(source),
        }
    }

    pub(crate) fn at(kind: ErrorKind, path: &Path) -> AuditError {
        AuditError {
            kind,
            path: Some(path.to_path_buf()),
            source: None,
        }
    }

    pub(crate) fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A stable kebab-case code: `key-too-short`, `key-unreadable`, `key-missing`,
    /// `open`, `locked`, `write`, `sync`, `rotate`, `bad-head`, `queue-full`, `closed`,
    /// `writer-gone`, `injected`, `bad-signing-key`.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ErrorKind::KeyTooShort => "key-too-short",
            ErrorKind::KeyUnreadable => "key-unreadable",
            ErrorKind::KeyMissing => "key-missing",
            ErrorKind::Open => "open",
            ErrorKind::Locked => "locked",
            ErrorKind::Write => "write",
            ErrorKind::Sync => "sync",
            ErrorKind::Rotate => "rotate",
            ErrorKind::BadHead => "bad-head",
            ErrorKind::QueueFull => "queue-full",
            ErrorKind::Closed => "closed",
            ErrorKind::WriterGone => "writer-gone",
            ErrorKind::Injected => "injected",
            ErrorKind::BadSigningKey => "bad-signing-key",
        }
    }

    /// The file involved, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl Clone for AuditError {
    fn clone(&self) -> AuditError {
        AuditError {
            kind: self.kind,
            path: self.path.clone(),
            source: self
                .source
                .as_ref()
                .map(|e| io::Error::new(e.kind(), e.to_string())),
        }
    }
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::KeyTooShort => "fingerprint key is shorter than 16 bytes",
            ErrorKind::KeyUnreadable => "cannot read the fingerprint key file",
            ErrorKind::KeyMissing => {
                "no fingerprint key: set PRIVACY_ROUTER_AUDIT_KEY or PRIVACY_ROUTER_AUDIT_KEY_FILE"
            }
            ErrorKind::Open => "cannot open the audit log",
            ErrorKind::Locked => "the audit log is locked by another writer",
            ErrorKind::Write => "cannot write the audit log",
            ErrorKind::Sync => "cannot make the audit log durable (fsync)",
            ErrorKind::Rotate => "cannot rotate the audit log",
            ErrorKind::BadHead => {
                "the last record of the audit log does not verify; run `privacy-router audit verify`"
            }
            ErrorKind::QueueFull => "the audit queue is full",
            ErrorKind::Closed => "the auditor is shut down",
            ErrorKind::WriterGone => "the audit writer thread stopped",
            ErrorKind::Injected => "audit sink failure (injected)",
            ErrorKind::BadSigningKey => {
                "not an Ed25519 key (32 raw bytes or 64 hex digits expected)"
            }
        };
        f.write_str(what)?;
        if let Some(p) = &self.path {
            write!(f, ": {}", p.display())?;
        }
        if let Some(e) = &self.source {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditError")
            .field("code", &self.code())
            .field("path", &self.path)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for AuditError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
