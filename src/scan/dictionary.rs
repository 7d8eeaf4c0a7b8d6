//! Dictionaries: team term lists (customer names, codenames) matched as whole words.

use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::detector::Candidate;
use super::error::{BuildError, ErrorKind};
use super::normalize::fold_str;

/// A named list of confidential terms, matched whole-word and ASCII-case-insensitively.
///
/// Findings from a dictionary carry the dictionary's name as their detector id and the
/// category [`Confidential`](super::Category::Confidential).
///
/// `Debug` shows the name and the number of terms, never the terms: a customer list is
/// itself confidential.
///
/// # Performance
///
/// All of a scanner's dictionaries compile into one Aho-Corasick automaton (a contiguous
/// NFA above 2,000 terms). Measured on 2 cores: 10,000 terms build in 0.03-0.07 s into a
/// 1.4 MiB automaton; 100,000 terms in 0.9-1.2 s into 11.8 MiB (peak RSS +39 MiB while
/// building; `cargo bench --bench scan -- build`, which has varied between those figures
/// from day to day). Adding 10,000 terms costs ~13 µs per 4 KB prompt and a third of scan
/// throughput, 90 -> 56 MiB/s (`cargo bench --bench scan`): the dictionary is a pass of
/// its own over the text.
///
/// ```
/// use privacy_router::scan::{Dictionary, Scanner};
///
/// let terms = Dictionary::parse("codenames", "# internal projects\nAtlas\nProject Bluefin\n");
/// let scanner = Scanner::builder().dictionary(terms).build()?;
/// let found = scanner.scan("Ask the Atlas team, not Atlassian support.");
/// assert_eq!(found.len(), 1);
/// assert_eq!(found[0].detector(), "codenames");
/// assert_eq!(found[0].span(), 8..13);
/// # Ok::<(), privacy_router::scan::BuildError>(())
/// ```
#[derive(Clone)]
pub struct Dictionary {
    pub(crate) name: Arc<str>,
    pub(crate) terms: Vec<String>,
}

impl Dictionary {
    /// A dictionary from terms. Surrounding whitespace is trimmed; empty terms are skipped,
    /// as are terms made only of characters the scanner ignores (zero-width and other
    /// format characters, a byte-order mark): they could match nothing.
    pub fn from_terms<I, T>(name: &str, terms: I) -> Dictionary
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let terms = terms
            .into_iter()
            .map(|t| t.as_ref().trim().to_string())
            .filter(|t| !fold_str(t).trim().is_empty())
            .collect();
        Dictionary {
            name: Arc::from(name),
            terms,
        }
    }

    /// A dictionary from the text of a term file: one term per line, `#` starts a comment
    /// line, blank lines are skipped. A leading byte-order mark is ignored.
    pub fn parse(name: &str, text: &str) -> Dictionary {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        Dictionary::from_terms(
            name,
            text.lines().filter(|l| !l.trim_start().starts_with('#')),
        )
    }

    /// The dictionary's name, used as the detector id of its findings.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether the dictionary has no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

impl fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dictionary")
            .field("name", &&*self.name)
            .field("terms", &self.terms.len())
            .finish()
    }
}

/// All of a scanner's dictionaries compiled into one automaton.
pub(crate) struct DictMatcher {
    automaton: AhoCorasick,
    /// For each automaton pattern, the index of the detector slot its dictionary occupies.
    owner: Vec<u32>,
}

/// Dictionary matches are exact term hits; their confidence is fixed.
pub(crate) const DICTIONARY_CONFIDENCE: f32 = 0.9;

impl DictMatcher {
    /// `slots[i]` is the detector index reported for dictionary `i`.
    pub(crate) fn build(
        dicts: &[Dictionary],
        slots: &[u32],
    ) -> Result<Option<DictMatcher>, BuildError> {
        let mut seen = std::collections::HashSet::new();
        let mut patterns = Vec::new();
        let mut owner = Vec::new();
        for (d, &slot) in dicts.iter().zip(slots) {
            for term in &d.terms {
                let folded = fold_str(term).to_ascii_lowercase();
                // `from_terms` drops terms that fold to nothing: an empty pattern would
                // match everywhere, with an empty span.
                if folded.is_empty() {
                    continue;
                }
                // The same term in two dictionaries reports the first one.
                if seen.insert(folded.clone()) {
                    patterns.push(folded);
                    owner.push(slot);
                }
            }
        }
        if patterns.is_empty() {
            return Ok(None);
        }
        // A contiguous NFA: for large term lists a full DFA takes far longer to build and
        // many times the memory, for a search that is only modestly faster.
        let kind = if patterns.len() > 2_000 {
            Some(AhoCorasickKind::ContiguousNFA)
        } else {
            None
        };
        let automaton = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(kind)
            .build(&patterns)
            .map_err(|e| {
                BuildError::new(ErrorKind::Dictionary {
                    name: dicts
                        .first()
                        .map_or_else(String::new, |d| d.name.to_string()),
                    message: e.to_string(),
                })
            })?;
        Ok(Some(DictMatcher { automaton, owner }))
    }

    pub(crate) fn find(&self, hay: &[u8], min_confidence: f32, out: &mut Vec<Candidate>) {
        if DICTIONARY_CONFIDENCE < min_confidence {
            return;
        }
        let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        for m in self.automaton.find_overlapping_iter(hay) {
            let (s, e) = (m.start(), m.end());
            let first = hay[s];
            let last = hay[e - 1];
            // Whole words: `Atlas` is not in `Atlassian`. A term that starts or ends with
            // punctuation (`C++`) needs no boundary on that side.
            let left = s == 0 || !is_word(first) || !is_word(hay[s - 1]);
            let right = e == hay.len() || !is_word(last) || !is_word(hay[e]);
            if left && right {
                out.push(Candidate {
                    detector: self.owner[m.pattern().as_usize()],
                    start: s,
                    end: e,
                    confidence: DICTIONARY_CONFIDENCE,
                });
            }
        }
    }

    /// Heap bytes used by the automaton.
    pub(crate) fn memory_usage(&self) -> usize {
        self.automaton.memory_usage() + self.owner.len() * 4
    }
}

#[cfg(test)]
mod tests {
    use crate::scan::{Dictionary, Scanner};

    /// Regression: a term that folded to nothing (a lone zero-width space, or the
    /// byte-order mark of a term file) made every scan panic on an empty match.
    #[test]
    fn terms_that_fold_to_nothing_are_skipped() {
        let file = Dictionary::parse("d", "\u{FEFF}\n# codenames\nAtlas\n");
        assert_eq!(file.len(), 1);
        let file = Dictionary::parse("d", "\u{FEFF}# codenames\nAtlas\n");
        assert_eq!(file.len(), 1);
        let terms = Dictionary::from_terms("d", ["\u{200B}", "\u{FEFF}", " ", "Atlas"]);
        assert_eq!(terms.len(), 1);
        let scanner = Scanner::builder().dictionary(terms).build().unwrap();
        let found = scanner.scan("abc, Atlas\u{200B} and \u{FEFF}");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].span(), 5..10);
    }
}
