//! [`BuildError`]: why a scanner could not be built.

use std::fmt;

/// An error from building a [`Scanner`](super::Scanner): a detector whose definition is
/// invalid, an unknown detector id, a bad dictionary.
///
/// The message names the detector (or dictionary) and what is wrong with its definition;
/// it never contains scanned text.
#[derive(Clone, Debug)]
pub struct BuildError {
    kind: ErrorKind,
}

#[derive(Clone, Debug)]
pub(crate) enum ErrorKind {
    /// A pattern file is not valid TOML or does not fit the schema.
    Syntax { source: String, message: String },
    /// One detector definition is invalid.
    Detector { id: String, message: String },
    /// Two detectors share an id.
    DuplicateId { id: String },
    /// A selection names a detector that does not exist.
    UnknownDetector { id: String },
    /// A dictionary could not be compiled.
    Dictionary { name: String, message: String },
}

impl BuildError {
    pub(crate) fn new(kind: ErrorKind) -> BuildError {
        BuildError { kind }
    }

    pub(crate) fn detector(id: &str, message: impl Into<String>) -> BuildError {
        BuildError::new(ErrorKind::Detector {
            id: id.to_string(),
            message: message.into(),
        })
    }

    /// The id of the detector (or the name of the dictionary) the error is about, if any.
    pub fn detector_id(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::Detector { id, .. }
            | ErrorKind::DuplicateId { id }
            | ErrorKind::UnknownDetector { id } => Some(id),
            ErrorKind::Dictionary { name, .. } => Some(name),
            ErrorKind::Syntax { .. } => None,
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Syntax { source, message } => write!(f, "{source}: {message}"),
            ErrorKind::Detector { id, message } => write!(f, "detector `{id}`: {message}"),
            ErrorKind::DuplicateId { id } => write!(f, "detector id `{id}` is defined twice"),
            ErrorKind::UnknownDetector { id } => write!(f, "unknown detector id `{id}`"),
            ErrorKind::Dictionary { name, message } => write!(f, "dictionary `{name}`: {message}"),
        }
    }
}

impl std::error::Error for BuildError {}
