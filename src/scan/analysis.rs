//! What a detector's parsed pattern guarantees about its matches, for the scanner to
//! search less. Both answers are sound, never complete: "no" only means "not shown".
//!
//! **Matches begin with a keyword** ([`every_match_starts_with`]). A keyword-gated
//! detector whose every match begins with one of its keywords can be searched only where
//! the keyword pass saw those keywords, with one anchored search each, instead of over
//! the whole text: `(?i)(?:api[_.-]?key|apikey)\s*[:=]...` begins with `api_key`,
//! `api-key`, `api.key` or `apikey`, so its matches start exactly where the keyword
//! automaton found one of them. The set of literals every match begins with is computed
//! ASCII-lowercased. It over-approximates where it must: a look-around is read as the
//! empty string (it only removes matches), and a class of more than [`CLASS_LIMIT`]
//! bytes ends the literal (anything may follow).
//!
//! **The value holds every digit of the match** ([`digits_only_in_value`]). A numeric
//! detector's regex often consumes a byte before the value to stand in for look-behind
//! (`(?:^|[^0-9+])(?P<v>\d{4} \d{4} ...)`). When nothing outside the `v` group can
//! match a digit, the match's digits are the value's, and a validator that reads only
//! digits can judge the match before its capture groups are resolved, which costs
//! several times the search itself.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Classes with more distinct bytes than this (after lowercasing) end a literal.
const CLASS_LIMIT: usize = 8;
/// Beyond this many literals the analysis gives up (the answer is then "unknown").
const SET_LIMIT: usize = 512;

/// One way a match may begin.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Lit {
    /// ASCII-lowercased bytes.
    bytes: Vec<u8>,
    /// The sub-pattern's match is exactly `bytes`, so what follows it extends the
    /// literal; when `false`, the match only begins with `bytes`.
    closed: bool,
}

impl Lit {
    fn closed(bytes: Vec<u8>) -> Lit {
        Lit {
            bytes,
            closed: true,
        }
    }

    fn open(mut self) -> Lit {
        self.closed = false;
        self
    }
}

/// Whether every match of `hir` begins with one of `words` (ASCII case-insensitively).
/// `words` must be lowercase. `false` means "not shown", not "some match does not".
pub(crate) fn every_match_starts_with(hir: &Hir, words: &[String]) -> bool {
    if words.is_empty() || words.iter().any(String::is_empty) {
        return false;
    }
    let Some(lits) = leading_literals(hir, words) else {
        return false;
    };
    !lits.is_empty()
        && lits
            .iter()
            .all(|l| words.iter().any(|w| l.bytes.starts_with(w.as_bytes())))
}

/// The most bytes that can precede one of `words` at the start of every match, when
/// that is shown and at most [`LEAD_LIMIT`]: `Some(0)` when every match begins with one
/// of them, `Some(1)` for `(?:^|[;"'\s])(?:password|pwd)=...`. A sequence's first
/// elements, bounded in length, are the lead; the rest must begin with a word.
pub(crate) fn keyword_lead(hir: &Hir, words: &[String]) -> Option<usize> {
    if every_match_starts_with(hir, words) {
        return Some(0);
    }
    let HirKind::Concat(subs) = hir.kind() else {
        return None;
    };
    let mut lead = 0;
    for i in 1..subs.len() {
        lead += subs[i - 1].properties().maximum_len()?;
        if lead > LEAD_LIMIT {
            return None;
        }
        if every_match_starts_with(&Hir::concat(subs[i..].to_vec()), words) {
            return Some(lead);
        }
    }
    None
}

/// Beyond this many leading bytes, a detector searches whole texts: each keyword
/// occurrence costs one anchored search per byte of lead.
const LEAD_LIMIT: usize = 4;

/// Every match of `hir` begins with one of the returned literals. A literal stops growing
/// (is left open) once it begins with one of `words` or is as long as the longest: what
/// follows cannot change the answer. `None` when there are too many.
fn leading_literals(hir: &Hir, words: &[String]) -> Option<Vec<Lit>> {
    let lits = match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => vec![Lit::closed(Vec::new())],
        HirKind::Literal(lit) => vec![Lit::closed(lit.0.to_ascii_lowercase())],
        HirKind::Class(class) => match class_bytes(class) {
            Some(bytes) => bytes.into_iter().map(|b| Lit::closed(vec![b])).collect(),
            None => vec![Lit::closed(Vec::new()).open()],
        },
        HirKind::Capture(capture) => leading_literals(&capture.sub, words)?,
        HirKind::Repetition(rep) => {
            let sub = leading_literals(&rep.sub, words)?;
            let once = rep.max == Some(1);
            let mut lits: Vec<Lit> = if once {
                sub
            } else {
                // More repetitions may follow: what the sub-pattern matches only begins
                // the match.
                sub.into_iter().map(Lit::open).collect()
            };
            if rep.min == 0 {
                lits.push(Lit::closed(Vec::new()));
            }
            lits
        }
        HirKind::Concat(subs) => {
            let mut acc = vec![Lit::closed(Vec::new())];
            for sub in subs {
                if acc.iter().all(|l| !l.closed) {
                    break;
                }
                let next = leading_literals(sub, words)?;
                let mut joined = Vec::new();
                for a in acc {
                    if !a.closed {
                        joined.push(a);
                        continue;
                    }
                    for b in &next {
                        let mut bytes = a.bytes.clone();
                        bytes.extend_from_slice(&b.bytes);
                        joined.push(Lit {
                            bytes,
                            closed: b.closed,
                        });
                    }
                    // Cut as they grow: optional parts after a keyword multiply the set.
                    if joined.len() > SET_LIMIT {
                        joined = normalise(joined, words);
                        if joined.len() > SET_LIMIT {
                            return None;
                        }
                    }
                }
                acc = normalise(joined, words);
            }
            acc
        }
        HirKind::Alternation(subs) => {
            let mut lits = Vec::new();
            for sub in subs {
                lits.extend(leading_literals(sub, words)?);
                if lits.len() > SET_LIMIT {
                    return None;
                }
            }
            lits
        }
    };
    Some(normalise(lits, words))
}

/// Stops the literals that are decided (see [`leading_literals`]), cut to the longest
/// word, and removes duplicates.
fn normalise(mut lits: Vec<Lit>, words: &[String]) -> Vec<Lit> {
    let cap = words.iter().map(String::len).max().unwrap_or(0);
    for l in &mut lits {
        if l.bytes.len() >= cap || words.iter().any(|w| l.bytes.starts_with(w.as_bytes())) {
            l.bytes.truncate(cap);
            l.closed = false;
        }
    }
    lits.sort();
    lits.dedup();
    lits
}

/// The distinct lowercased bytes of a class, when there are at most [`CLASS_LIMIT`].
fn class_bytes(class: &Class) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut add = |lo: u32, hi: u32| -> Option<()> {
        if hi - lo >= 256 || hi > 0xFF {
            return None;
        }
        for b in lo..=hi {
            bytes.push((b as u8).to_ascii_lowercase());
        }
        bytes.sort_unstable();
        bytes.dedup();
        (bytes.len() <= CLASS_LIMIT).then_some(())
    };
    match class {
        Class::Bytes(c) => {
            for r in c.ranges() {
                add(u32::from(r.start()), u32::from(r.end()))?;
            }
        }
        // Non-ASCII code points are several bytes in UTF-8: only ASCII ranges are read.
        Class::Unicode(c) => {
            for r in c.ranges() {
                if !r.end().is_ascii() {
                    return None;
                }
                add(u32::from(r.start()), u32::from(r.end()))?;
            }
        }
    }
    Some(bytes)
}

/// Whether `hir` is a sequence in which one element is the capture group `v` and no other
/// element can match an ASCII digit: then every match's digits are those of its `v`.
pub(crate) fn digits_only_in_value(hir: &Hir) -> bool {
    let is_value =
        |h: &Hir| matches!(h.kind(), HirKind::Capture(c) if c.name.as_deref() == Some("v"));
    match hir.kind() {
        HirKind::Capture(_) => is_value(hir),
        HirKind::Concat(subs) => {
            subs.iter().filter(|h| is_value(h)).count() == 1
                && subs.iter().all(|h| is_value(h) || !may_match_digit(h))
        }
        _ => false,
    }
}

/// Whether some match of `hir` contains an ASCII digit (conservatively: `true` when in
/// doubt).
fn may_match_digit(hir: &Hir) -> bool {
    let digits = u32::from(b'0')..=u32::from(b'9');
    let overlaps = |lo: u32, hi: u32| lo <= *digits.end() && *digits.start() <= hi;
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(lit) => lit.0.iter().any(u8::is_ascii_digit),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .any(|r| overlaps(u32::from(r.start()), u32::from(r.end()))),
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .any(|r| overlaps(u32::from(r.start()), u32::from(r.end()))),
        HirKind::Repetition(rep) => rep.max != Some(0) && may_match_digit(&rep.sub),
        HirKind::Capture(c) => may_match_digit(&c.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(may_match_digit),
    }
}

#[cfg(test)]
mod tests {
    use regex_automata::util::syntax;

    use super::*;
    use crate::scan::detector::syntax_config;

    fn starts_with(pattern: &str, words: &[&str]) -> bool {
        let hir = syntax::parse_with(pattern, &syntax_config()).unwrap();
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        every_match_starts_with(&hir, &words)
    }

    #[test]
    fn case_insensitive_keyword_alternations_are_read() {
        let p = r#"(?i)(?:api[_.-]?key|apikey)\\?["']?[ \t]*[:=][ \t]*(?P<v>[A-Za-z0-9]{8,})"#;
        assert!(starts_with(p, &["api_key", "api-key", "api.key", "apikey"]));
        // `apikey` is not among the words: the `api[_.-]?key` branch without separator
        // begins with it.
        assert!(!starts_with(p, &["api_key", "api-key", "api.key"]));
        assert!(starts_with(r"(?i)secret_?", &["secret"]));
        assert!(starts_with(r"ghp_[A-Za-z0-9]{36}", &["ghp_"]));
    }

    fn value_digits(pattern: &str) -> bool {
        digits_only_in_value(&syntax::parse_with(pattern, &syntax_config()).unwrap())
    }

    #[test]
    fn a_value_holds_the_digits_when_nothing_else_can_match_one() {
        assert!(value_digits(
            r"(?:^|[^0-9+ \-.]|[^0-9][ \-.])\b(?P<v>\d{4} \d{4})\b"
        ));
        assert!(value_digits(r"(?P<v>\d{9})"));
        assert!(value_digits(r"(?i)ssn[: ]+(?P<v>\d{3}-\d{2}-\d{4})"));
        // A digit may precede or follow the value, or the value may repeat.
        assert!(!value_digits(r"[^a-z](?P<v>\d{4})"));
        assert!(!value_digits(r"(?P<v>\d{4})(?:x1)?"));
        assert!(!value_digits(r"(?:(?P<v>\d{4}) )+"));
        assert!(!value_digits(r"(?P<v>\d{4})|a(?P<w>\d)"));
        assert!(!value_digits(r"\d{4}"));
    }

    fn lead(pattern: &str, words: &[&str]) -> Option<usize> {
        let hir = syntax::parse_with(pattern, &syntax_config()).unwrap();
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        keyword_lead(&hir, &words)
    }

    #[test]
    fn a_short_lead_before_the_keyword_is_measured() {
        assert_eq!(lead(r"(?i)token[:=](?P<v>\w+)", &["token"]), Some(0));
        let sql = r#"(?i)(?:^|[;"'\s])(?:password|pwd)[ \t]*=(?P<v>\S{3,})"#;
        assert_eq!(lead(sql, &["password", "pwd"]), Some(1));
        assert_eq!(lead(r"\b[a-z]{2}ghp_", &["ghp_"]), Some(2));
        // Unbounded or too long a lead, or no keyword after it.
        assert_eq!(lead(r"[a-z]*ghp_", &["ghp_"]), None);
        assert_eq!(lead(r"[a-z]{5}ghp_", &["ghp_"]), None);
        assert_eq!(lead(r"[;\s]x(?:password)?", &["password"]), None);
    }

    #[test]
    fn what_is_not_shown_is_refused() {
        // A class prefix, an optional keyword, a keyword after a repetition.
        assert!(!starts_with(r"(?:^|[ \t])--?token", &["token"]));
        assert!(!starts_with(r"(?:token)?[A-Z]{20}", &["token"]));
        assert!(!starts_with(r"[a-z]*token", &["token"]));
        assert!(!starts_with(r"(?:tok)+en", &["token"]));
        // A word longer than what the pattern guarantees.
        assert!(!starts_with(r"tok[a-z]+", &["token"]));
        // A look-around only removes matches: the keyword still begins every match.
        assert!(starts_with(r"\btoken\b", &["token"]));
    }
}
