//! What a scan reports: [`Finding`] and [`Category`].

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The kind of sensitive data a detector looks for.
///
/// Policies select detectors and map findings to actions by category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Category {
    /// Personal data: emails, phone numbers, national identifiers, dates of birth.
    Pii,
    /// Payment and banking data: card numbers, IBANs, crypto addresses.
    Financial,
    /// Credentials: API keys, tokens, private keys, passwords.
    Secret,
    /// Network identifiers: public IP addresses, MAC addresses, internal host names.
    Network,
    /// Terms from a team's dictionaries: customer names, codenames.
    Confidential,
}

impl Category {
    /// Every category, in a stable order.
    pub const ALL: [Category; 5] = [
        Category::Pii,
        Category::Financial,
        Category::Secret,
        Category::Network,
        Category::Confidential,
    ];

    /// The lowercase name used in pattern files, policies and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Pii => "pii",
            Category::Financial => "financial",
            Category::Secret => "secret",
            Category::Network => "network",
            Category::Confidential => "confidential",
        }
    }

    /// Parses the lowercase name (`"pii"`, `"secret"`, ...).
    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of sensitive data found in a text.
///
/// A finding names the detector and the byte span in the text that was scanned; it never
/// holds the matched value itself, so its `Debug` output is safe to log. Use
/// [`Finding::span`] on the text you scanned when you really need the value (redaction,
/// `--show-values`).
#[derive(Clone, PartialEq)]
pub struct Finding {
    pub(crate) detector: Arc<str>,
    pub(crate) category: Category,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) confidence: f32,
}

impl Finding {
    /// The id of the detector (or the name of the dictionary) that produced this finding.
    pub fn detector(&self) -> &str {
        &self.detector
    }

    /// The category of the detector.
    pub fn category(&self) -> Category {
        self.category
    }

    /// Byte offset of the first byte of the value in the scanned text (a char boundary).
    pub fn start(&self) -> usize {
        self.start
    }

    /// Byte offset one past the last byte of the value (a char boundary).
    pub fn end(&self) -> usize {
        self.end
    }

    /// `start()..end()`.
    pub fn span(&self) -> Range<usize> {
        self.start..self.end
    }

    /// How sure the detector is, from 0.0 to 1.0, after context words were applied.
    pub fn confidence(&self) -> f32 {
        self.confidence
    }
}

impl fmt::Debug for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finding")
            .field("detector", &&*self.detector)
            .field("category", &self.category)
            .field("span", &(self.start..self.end))
            .field("confidence", &self.confidence)
            .finish()
    }
}
