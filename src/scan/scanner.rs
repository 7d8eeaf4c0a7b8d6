//! [`Scanner`] and [`ScannerBuilder`]: compile detectors once, scan many texts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, OnceLock};

use aho_corasick::AhoCorasick;

use super::detector::{Candidate, Detector, DetectorSpec, parse_pattern_file};
use super::dictionary::{DictMatcher, Dictionary};
use super::error::{BuildError, ErrorKind};
use super::finding::{Category, Finding};
use super::keywords::Keywords;
use super::near::{self, Lines};
use super::normalize::View;
use super::spoken::{self, Tally};
use super::structural::StructuralPass;
use super::wrapped::{self, Joined};

/// The pattern files compiled into the crate.
const BUILTIN_FILES: [(&str, &str); 4] = [
    ("patterns/pii.toml", include_str!("../../patterns/pii.toml")),
    (
        "patterns/financial.toml",
        include_str!("../../patterns/financial.toml"),
    ),
    (
        "patterns/secrets.toml",
        include_str!("../../patterns/secrets.toml"),
    ),
    (
        "patterns/network.toml",
        include_str!("../../patterns/network.toml"),
    ),
];

/// Published example values (provider docs, test cards) that are never findings.
const ALLOWLIST: &str = include_str!("../../patterns/allowlist.txt");

/// How much of a label [`Scanner::scan_labelled`] reads: its last this many bytes.
pub const LABEL_CONTEXT: usize = 64;

/// Internal host-name suffixes used when the builder is given none.
pub const DEFAULT_INTERNAL_SUFFIXES: [&str; 5] = ["internal", "corp", "intranet", "lan", "private"];

struct Builtin {
    detectors: Vec<Arc<Detector>>,
    allowlist: Arc<HashSet<Vec<u8>>>,
}

/// Built-in detectors are compiled once per process and shared by every scanner (and so
/// by every team policy): fifty teams cost one set of compiled regexes.
fn builtin() -> Result<&'static Builtin, BuildError> {
    static BUILTIN: OnceLock<Result<Builtin, BuildError>> = OnceLock::new();
    BUILTIN
        .get_or_init(|| {
            let mut detectors = Vec::new();
            let mut ids = HashSet::new();
            for (source, text) in BUILTIN_FILES {
                for spec in parse_pattern_file(source, text)? {
                    if !ids.insert(spec.id.clone()) {
                        return Err(BuildError::new(ErrorKind::DuplicateId { id: spec.id }));
                    }
                    detectors.push(Arc::new(Detector::compile(spec)?));
                }
            }
            let allowlist = ALLOWLIST
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| l.as_bytes().to_vec())
                .collect();
            Ok(Builtin {
                detectors,
                allowlist: Arc::new(allowlist),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Facts about one detector, for listings and for running its examples.
#[derive(Clone)]
pub struct DetectorInfo {
    detector: Arc<Detector>,
}

impl DetectorInfo {
    /// The detector's id.
    pub fn id(&self) -> &str {
        &self.detector.id
    }

    /// Its category.
    pub fn category(&self) -> Category {
        self.detector.category
    }

    /// One line saying what it finds.
    pub fn description(&self) -> &str {
        &self.detector.description
    }

    /// Whether a default [`ScannerBuilder`] enables it.
    pub fn enabled_by_default(&self) -> bool {
        self.detector.default_on
    }

    /// Its base confidence.
    pub fn confidence(&self) -> f32 {
        self.detector.confidence
    }

    /// Texts in which it must find something.
    pub fn must_match(&self) -> &[String] {
        &self.detector.must_match
    }

    /// Texts in which it must find nothing.
    pub fn must_not_match(&self) -> &[String] {
        &self.detector.must_not_match
    }
}

impl fmt::Debug for DetectorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DetectorInfo")
            .field("id", &self.id())
            .field("category", &self.category())
            .field("enabled_by_default", &self.enabled_by_default())
            .finish()
    }
}

/// Every built-in detector, including those off by default, in a stable order.
///
/// # Errors
///
/// Only if the embedded pattern files are broken, which the crate's own tests rule out.
pub fn builtin_detectors() -> Result<Vec<DetectorInfo>, BuildError> {
    Ok(builtin()?
        .detectors
        .iter()
        .map(|d| DetectorInfo {
            detector: Arc::clone(d),
        })
        .collect())
}

/// Configures and builds a [`Scanner`].
///
/// By default the scanner runs every built-in detector that is on by default, plus an
/// `internal-hostname` detector for the [`DEFAULT_INTERNAL_SUFFIXES`], and reports
/// findings of any confidence.
#[derive(Clone, Debug)]
pub struct ScannerBuilder {
    all_builtin: bool,
    categories: Option<Vec<Category>>,
    enable: Vec<String>,
    disable: Vec<String>,
    only: Option<Vec<String>>,
    min_confidence: f32,
    dictionaries: Vec<Dictionary>,
    internal_suffixes: Vec<String>,
    custom: Vec<(String, String)>,
}

impl Default for ScannerBuilder {
    fn default() -> Self {
        ScannerBuilder::new()
    }
}

impl ScannerBuilder {
    /// The default configuration.
    pub fn new() -> ScannerBuilder {
        ScannerBuilder {
            all_builtin: false,
            categories: None,
            enable: Vec::new(),
            disable: Vec::new(),
            only: None,
            min_confidence: 0.0,
            dictionaries: Vec::new(),
            internal_suffixes: DEFAULT_INTERNAL_SUFFIXES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            custom: Vec::new(),
        }
    }

    /// Also enable the built-in detectors that are off by default (ABA routing numbers,
    /// SWIFT/BIC codes, ...).
    pub fn all_builtin(mut self, yes: bool) -> Self {
        self.all_builtin = yes;
        self
    }

    /// Keep only detectors of these categories (dictionaries are not affected).
    pub fn categories<I: IntoIterator<Item = Category>>(mut self, categories: I) -> Self {
        self.categories = Some(categories.into_iter().collect());
        self
    }

    /// Enable a detector by id, even if it is off by default or outside the selected
    /// categories.
    pub fn enable(mut self, id: &str) -> Self {
        self.enable.push(id.to_string());
        self
    }

    /// Disable a detector by id.
    pub fn disable(mut self, id: &str) -> Self {
        self.disable.push(id.to_string());
        self
    }

    /// Run exactly these detectors and nothing else (dictionaries still run).
    pub fn only<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.only = Some(ids.into_iter().map(|s| s.as_ref().to_string()).collect());
        self
    }

    /// Drop findings below this confidence.
    pub fn min_confidence(mut self, min: f32) -> Self {
        self.min_confidence = min;
        self
    }

    /// Add a dictionary of confidential terms.
    pub fn dictionary(mut self, dictionary: Dictionary) -> Self {
        self.dictionaries.push(dictionary);
        self
    }

    /// The DNS suffixes that mark a host name as internal (`corp` makes
    /// `build01.eu.corp` a finding). An empty list turns the `internal-hostname` detector
    /// off.
    pub fn internal_suffixes<I, S>(mut self, suffixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.internal_suffixes = suffixes
            .into_iter()
            .map(|s| s.as_ref().trim_matches('.').to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        self
    }

    /// Add detectors written in the `patterns/*.toml` format (`[[detector]]` tables).
    /// `source` names the text in error messages. Custom detectors are on unless their
    /// `default = false`.
    pub fn detectors_toml(mut self, source: &str, toml: &str) -> Self {
        self.custom.push((source.to_string(), toml.to_string()));
        self
    }

    /// Compiles the scanner.
    ///
    /// # Errors
    ///
    /// A custom detector that does not parse or compile, a duplicate id, an unknown id in
    /// [`enable`](Self::enable), [`disable`](Self::disable) or [`only`](Self::only), or a
    /// dictionary the automaton cannot hold.
    ///
    /// # Performance
    ///
    /// The built-in detectors are compiled on the first build in a process and shared
    /// afterwards; each build then costs the prefilter automata for its own selection and
    /// any dictionaries (see the README's benchmark figures).
    pub fn build(self) -> Result<Scanner, BuildError> {
        let builtin = builtin()?;
        let mut pool: Vec<Arc<Detector>> = builtin.detectors.clone();
        let mut ids: HashSet<Arc<str>> = pool.iter().map(|d| Arc::clone(&d.id)).collect();
        let mut custom_ids = HashSet::new();
        for (source, text) in &self.custom {
            for spec in parse_pattern_file(source, text)? {
                if ids.contains(spec.id.as_str()) {
                    return Err(BuildError::new(ErrorKind::DuplicateId { id: spec.id }));
                }
                let d = Arc::new(Detector::compile(spec)?);
                ids.insert(Arc::clone(&d.id));
                custom_ids.insert(Arc::clone(&d.id));
                pool.push(d);
            }
        }
        if !self.internal_suffixes.is_empty() {
            let d = Arc::new(Detector::compile(internal_hostname_spec(
                &self.internal_suffixes,
            ))?);
            ids.insert(Arc::clone(&d.id));
            pool.push(d);
        }
        let known = |id: &str| -> Result<(), BuildError> {
            if ids.contains(id) {
                Ok(())
            } else {
                Err(BuildError::new(ErrorKind::UnknownDetector {
                    id: id.to_string(),
                }))
            }
        };
        let selected: Vec<Arc<Detector>> = match &self.only {
            Some(only) => {
                for id in only {
                    known(id)?;
                }
                pool.into_iter()
                    .filter(|d| only.iter().any(|o| **o == *d.id))
                    .collect()
            }
            None => {
                for id in self.enable.iter().chain(&self.disable) {
                    known(id)?;
                }
                pool.into_iter()
                    .filter(|d| {
                        let by_default = (d.default_on || self.all_builtin)
                            && self
                                .categories
                                .as_ref()
                                .is_none_or(|c| c.contains(&d.category));
                        let custom = custom_ids.contains(&d.id) && d.default_on;
                        (by_default || custom || self.enable.iter().any(|e| **e == *d.id))
                            && !self.disable.iter().any(|e| **e == *d.id)
                    })
                    .collect()
            }
        };
        Scanner::compile(
            selected,
            &self.dictionaries,
            Arc::clone(&builtin.allowlist),
            self.min_confidence,
        )
    }
}

/// The `internal-hostname` detector for a list of suffixes.
fn internal_hostname_spec(suffixes: &[String]) -> DetectorSpec {
    let alternation: Vec<String> = suffixes.iter().map(|s| regex::escape(s)).collect();
    DetectorSpec {
        id: "internal-hostname".to_string(),
        category: Category::Network,
        description: "Host name under an internal DNS suffix".to_string(),
        regex: format!(
            r"(?i)\b(?P<v>(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+(?:{}))\b",
            alternation.join("|")
        ),
        keywords: suffixes.iter().map(|s| format!(".{s}")).collect(),
        validator: Some("hostname".to_string()),
        min_entropy: None,
        confidence: 0.8,
        default: true,
        allow: Vec::new(),
        must_match: Vec::new(),
        must_not_match: Vec::new(),
        context: None,
        wrapped: None,
    }
}

/// A compiled set of detectors and dictionaries.
///
/// `scan` is infallible and runs in time linear in the text: one pass of a keyword
/// automaton (which gates the detectors that have a literal keyword, most secrets), one
/// pass of a multi-pattern lazy DFA that finds where the structural detectors' matches
/// (emails, numbers, addresses) end, then only the detectors whose gate fired (the
/// structural ones only just before those ends, keyword ones whose matches begin with
/// their keyword only where it occurs), then the dictionaries.
///
/// # Performance
///
/// Measured on the 2-core development machine with the default detectors (310): a 4 KB
/// mixed prompt scans in 39-41 µs at the median and 76-88 µs at p99
/// (`cargo bench --bench latency`); a 4.2 MB mix of prose, code, logs, JSON and CSV at
/// 95-97 MiB/s (`cargo bench --bench scan -- throughput`). Each concurrent scan keeps its
/// lazy-DFA caches warm in a pool, capped at 40 MiB; after the 4.2 MB benchmark corpus
/// they hold 2.4 MiB. The keyword automaton (~1.1 MiB) is shared. DESIGN.md, "Where scan
/// time goes", has the breakdown.
///
/// # Cloning
///
/// A scanner is an `Arc` inside: cloning is a reference-count increment, and clones share
/// all compiled state. It is `Send + Sync`; share one per policy.
///
/// ```
/// use privacy_router::scan::{Category, Scanner};
///
/// let scanner = Scanner::builder().build()?;
/// let text = "Refund card 4539 1488 0343 6467 for jane.doe@acme-mail.de please";
/// let found = scanner.scan(text);
/// let kinds: Vec<_> = found.iter().map(|f| (f.detector(), f.category())).collect();
/// assert!(kinds.contains(&("payment-card", Category::Financial)));
/// assert!(kinds.contains(&("email", Category::Pii)));
/// // Spans point into the original text.
/// assert_eq!(&text[found[0].span()], "4539 1488 0343 6467");
/// # Ok::<(), privacy_router::scan::BuildError>(())
/// ```
#[derive(Clone)]
pub struct Scanner {
    inner: Arc<Inner>,
}

struct Inner {
    /// Detectors, then one slot per dictionary (`dict_names`).
    detectors: Vec<Arc<Detector>>,
    dict_names: Vec<Arc<str>>,
    keywords: Option<Keywords>,
    /// For each keyword pattern, the detectors it gates.
    keyword_owners: Vec<Vec<u32>>,
    /// For each keyword pattern, the anchored detectors it gates: their matches start
    /// where it occurs or, by their `lead`, just before.
    anchored_owners: Vec<Vec<u32>>,
    /// For each keyword pattern, the detectors it gates that are searched only near its
    /// occurrences (their [`reach`](Detector::reach)), and its length.
    near_owners: Vec<Vec<u32>>,
    keyword_lens: Vec<usize>,
    /// For each keyword pattern, which of [`spoken::WORDS`] it is, if any: the keyword
    /// pass counts them to tell whether a text may hold numbers said as words.
    spoken_words: Vec<Option<usize>>,
    structural: Option<StructuralPass>,
    structural_owners: Vec<u32>,
    dictionaries: Option<DictMatcher>,
    allowlist: Arc<HashSet<Vec<u8>>>,
    min_confidence: f32,
    /// Every keyword and context word: a label that holds none cannot change what a
    /// scan of its value finds ([`Scanner::scan_labelled`]).
    label_words: Option<AhoCorasick>,
    /// Whether some detector reads values broken across lines (`[detector.wrapped]`).
    reads_wrapped: bool,
}

impl Scanner {
    /// A builder with the default configuration.
    pub fn builder() -> ScannerBuilder {
        ScannerBuilder::new()
    }

    fn compile(
        detectors: Vec<Arc<Detector>>,
        dictionaries: &[Dictionary],
        allowlist: Arc<HashSet<Vec<u8>>>,
        min_confidence: f32,
    ) -> Result<Scanner, BuildError> {
        let mut keyword_index: HashMap<&str, usize> = HashMap::new();
        let mut keyword_list: Vec<&str> = Vec::new();
        let mut keyword_owners: Vec<Vec<u32>> = Vec::new();
        let mut structural_patterns = Vec::new();
        let mut structural_owners = Vec::new();
        for (i, d) in detectors.iter().enumerate() {
            let gate = d.gate_words();
            if gate.is_empty() {
                structural_patterns.push((d.pattern.as_str(), d.max_len));
                structural_owners.push(i as u32);
            }
            for k in gate {
                let slot = *keyword_index.entry(k.as_str()).or_insert_with(|| {
                    keyword_list.push(k.as_str());
                    keyword_owners.push(Vec::new());
                    keyword_list.len() - 1
                });
                keyword_owners[slot].push(i as u32);
            }
        }
        let mut spoken_words = vec![None; keyword_list.len()];
        if !detectors.is_empty() {
            for (w, (word, _)) in spoken::WORDS.iter().enumerate() {
                let slot = *keyword_index.entry(word).or_insert_with(|| {
                    keyword_list.push(word);
                    keyword_owners.push(Vec::new());
                    spoken_words.push(None);
                    keyword_list.len() - 1
                });
                spoken_words[slot] = Some(w);
            }
        }
        let owners_where = |keep: fn(&Detector) -> bool| -> Vec<Vec<u32>> {
            keyword_owners
                .iter()
                .map(|owners| {
                    let kept = |&d: &u32| keep(&detectors[d as usize]);
                    owners.iter().copied().filter(kept).collect()
                })
                .collect()
        };
        let anchored_owners = owners_where(|d| d.lead.is_some());
        let near_owners = owners_where(|d| d.reach.is_some());
        let keyword_lens = keyword_list.iter().map(|k| k.len()).collect();
        let keywords = if keyword_list.is_empty() {
            None
        } else {
            Some(Keywords::build(&keyword_list)?)
        };
        let structural = if structural_patterns.is_empty() {
            None
        } else {
            Some(StructuralPass::build(&structural_patterns)?)
        };
        let slots: Vec<u32> = (0..dictionaries.len())
            .map(|i| (detectors.len() + i) as u32)
            .collect();
        let dict_matcher = DictMatcher::build(dictionaries, &slots)?;
        let reads_wrapped = detectors.iter().any(|d| d.wrapped.is_some());
        let mut words: Vec<&str> = detectors.iter().flat_map(|d| d.words()).collect();
        words.sort_unstable();
        words.dedup();
        let label_words = if words.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(&words)
                    .map_err(|e| BuildError::detector("label-words", e.to_string()))?,
            )
        };
        Ok(Scanner {
            inner: Arc::new(Inner {
                dict_names: dictionaries.iter().map(|d| Arc::clone(&d.name)).collect(),
                detectors,
                keywords,
                keyword_owners,
                anchored_owners,
                near_owners,
                keyword_lens,
                spoken_words,
                structural,
                structural_owners,
                dictionaries: dict_matcher,
                allowlist,
                min_confidence,
                label_words,
                reads_wrapped,
            }),
        })
    }

    /// Finds sensitive data in `text`.
    ///
    /// Findings are sorted by start offset. Overlapping findings of the same category are
    /// resolved to one: the higher confidence wins, then the longer span, then the
    /// earlier start, then the smaller detector id. Findings of different categories may
    /// overlap (a connection string's password may also be an email's local part), so
    /// that a policy sees every category present.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut view = View::new(text);
        let mut candidates = Vec::new();
        let mut tally = self.gated_candidates(view.bytes(), &mut candidates);
        // Numbers said as words are rare: the view reads them only when the keyword pass
        // saw enough of their words, and the detectors then run again on it.
        if tally.may_hold_a_run() && view.read_spoken() {
            candidates.clear();
            self.gated_candidates(view.bytes(), &mut candidates);
        }
        self.read_wrapped(view.bytes(), &mut candidates, |hay, out| {
            self.gated_candidates(hay, out);
        });
        self.findings(&view, candidates)
    }

    /// Adds the values broken across two lines at one of their spaces (`wrapped.rs`):
    /// when `hay` has such a break, `find` runs again on `hay` joined at them, and what
    /// it finds is kept only when it crosses a break and its detector reads wrapped
    /// values and accepts it (a checksum, or a label before it). Offsets stay `hay`'s.
    fn read_wrapped(
        &self,
        hay: &[u8],
        out: &mut Vec<Candidate>,
        find: impl FnOnce(&[u8], &mut Vec<Candidate>),
    ) {
        if !self.inner.reads_wrapped {
            return;
        }
        let breaks = wrapped::breaks(hay);
        if breaks.is_empty() {
            return;
        }
        let joined = Joined::new(hay, &breaks);
        let mut found = Vec::new();
        find(&joined.bytes, &mut found);
        out.extend(found.into_iter().filter_map(|c| {
            let labels = self
                .inner
                .detectors
                .get(c.detector as usize)?
                .wrapped
                .as_ref()?;
            let (start, end) = joined.to_text(c.start, c.end);
            let accepted = joined.crosses(c.start, c.end)
                && (labels.is_empty() || wrapped::labelled(hay, start, labels));
            accepted.then_some(Candidate { start, end, ..c })
        }));
    }

    /// Finds sensitive data in `text` read as the value of `label`, as a JSON member's
    /// key is read before its value: what [`scan`](Scanner::scan) finds in `text` alone,
    /// and what the label adds as context (`ssn` makes `536221947` an SSN). A label adds
    /// findings, never removes one: an `exclude` word in it (`sku`, `isbn`) does not hide
    /// a value found without it. Offsets are into `text`. A finding that begins in the
    /// label and ends in `text` is cut to its part in `text`; one wholly in the label is
    /// dropped (scan the label itself for those). Only the last [`LABEL_CONTEXT`] bytes
    /// of the label are read: context windows are shorter, and a long key over many
    /// values would otherwise be scanned once per value.
    ///
    /// # Performance
    ///
    /// A label in which no keyword or context word of any detector begins (`content`,
    /// `text`, `arguments`: most of an API's keys), read folded as the detectors read it
    /// and running on into the value (`kind: secret`), costs nothing: the value is
    /// scanned once, alone. Any other costs a second scan, of the two together.
    /// (Scanning every value twice had put the layer's cost for a 4 KB chat body at
    /// 50.1 µs instead of ~29.)
    ///
    /// ```
    /// use privacy_router::scan::Scanner;
    ///
    /// let scanner = Scanner::builder().build()?;
    /// assert!(scanner.scan("536221947").is_empty());
    /// let f = scanner.scan_labelled("ssn", "536221947");
    /// assert_eq!((f[0].detector(), f[0].span()), ("us-ssn-undashed", 0..9));
    /// // An `exclude` word in the label does not hide the card.
    /// assert_eq!(scanner.scan_labelled("sku", "4539 1488 0343 6467")[0].detector(), "payment-card");
    /// # Ok::<(), privacy_router::scan::BuildError>(())
    /// ```
    pub fn scan_labelled(&self, label: &str, text: &str) -> Vec<Finding> {
        let mut cut = label.len().saturating_sub(LABEL_CONTEXT);
        while !label.is_char_boundary(cut) {
            cut += 1;
        }
        let label = &label[cut..];
        let mut findings = self.scan(text);
        if !self.label_has_words(label, text) {
            return findings;
        }
        let offset = label.len() + 2;
        let labelled = self.scan(&format!("{label}: {text}"));
        findings.extend(
            labelled
                .into_iter()
                .filter(|f| f.end > offset)
                .map(|mut f| {
                    f.start = f.start.max(offset) - offset;
                    f.end -= offset;
                    f
                }),
        );
        findings.sort_by(|a, b| (a.start, a.end, &a.detector).cmp(&(b.start, b.end, &b.detector)));
        // The same finding from both scans: the label may have raised its confidence.
        findings.dedup_by(|later, kept| {
            let same =
                (later.start, later.end, &later.detector) == (kept.start, kept.end, &kept.detector);
            if same {
                kept.confidence = kept.confidence.max(later.confidence);
            }
            same
        });
        findings
    }

    /// Whether some keyword or context word begins in `label: ` before `text`, read as
    /// the detectors read it (folded: `ｓｓｎ` is `ssn`), and perhaps running on into the
    /// text (`kind: secret`). If none does, scanning the two together finds in `text`
    /// only what scanning `text` alone finds.
    fn label_has_words(&self, label: &str, text: &str) -> bool {
        let Some(words) = &self.inner.label_words else {
            return false;
        };
        let mut head = text.len().min(LABEL_CONTEXT);
        while !text.is_char_boundary(head) {
            head -= 1;
        }
        let mut probe = View::new(label).bytes().to_vec();
        probe.extend_from_slice(b": ");
        let joint = probe.len();
        probe.extend_from_slice(View::new(&text[..head]).bytes());
        words
            .find_overlapping_iter(&probe)
            .any(|m| m.start() < joint)
    }

    /// Runs each detector only where it can match: keyword-gated detectors on texts that
    /// hold one of their keywords, structural detectors in the windows of the shared pass.
    /// Returns the keyword pass's count of the words numbers are said in.
    fn gated_candidates(&self, hay: &[u8], out: &mut Vec<Candidate>) -> Tally {
        let inner = &*self.inner;
        let tally = self.keyword_candidates(hay, out);
        if let Some(pass) = &inner.structural {
            let mut windows = Vec::new();
            pass.windows(hay, &mut windows);
            for (p, span) in windows {
                let i = inner.structural_owners[p];
                let d = &inner.detectors[i as usize];
                d.find(i, hay, span, &inner.allowlist, inner.min_confidence, out);
            }
        }
        if let Some(dicts) = &inner.dictionaries {
            dicts.find(hay, inner.min_confidence, out);
        }
        tally
    }

    /// The detectors gated by keywords, each where it can match if one of its keywords
    /// occurs in the text: an [anchored](Detector::find_at) detector at its keywords'
    /// occurrences, the others over the whole text.
    fn keyword_candidates(&self, hay: &[u8], out: &mut Vec<Candidate>) -> Tally {
        let inner = &*self.inner;
        let mut tally = Tally::default();
        let Some(keywords) = &inner.keywords else {
            return tally;
        };
        let mut run = vec![false; inner.detectors.len()];
        // Common keywords hit many times per text; their owners are marked once.
        let mut seen = vec![false; inner.keyword_owners.len()];
        // (detector, start) for each place where an anchored detector's match may start.
        let mut starts: Vec<(u32, usize)> = Vec::new();
        // (detector, keyword, start) for each detector searched near its keywords and
        // each occurrence of one of them: sorted by detector below, each detector's
        // occurrences are a slice, not a filter over all of them.
        let mut near_hits: Vec<(u32, usize, usize)> = Vec::new();
        keywords.occurrences(hay, |k, at| {
            if !std::mem::replace(&mut seen[k], true) {
                for &d in &inner.keyword_owners[k] {
                    run[d as usize] = true;
                }
            }
            for &d in &inner.anchored_owners[k] {
                let lead = inner.detectors[d as usize].lead.unwrap_or(0);
                starts.extend((at.saturating_sub(lead)..=at).map(|s| (d, s)));
            }
            near_hits.extend(inner.near_owners[k].iter().map(|&d| (d, k, at)));
            if let Some(word) = inner.spoken_words[k] {
                tally.count(word, hay, at, inner.keyword_lens[k]);
            }
        });
        starts.sort_unstable();
        starts.dedup();
        near_hits.sort_by_key(|&(d, _, _)| d);
        let mut lines = Lines::new(hay);
        for (i, d) in inner.detectors.iter().enumerate() {
            if !run[i] {
                continue;
            }
            let (index, allow, min) = (i as u32, &*inner.allowlist, inner.min_confidence);
            if d.lead.is_some() {
                let from = starts.partition_point(|&(o, _)| o < index);
                let to = starts.partition_point(|&(o, _)| o <= index);
                let at = starts[from..to].iter().map(|&(_, s)| s);
                d.find_at(index, hay, at, allow, min, out);
            } else if let (Some(reach), Some(max_len)) = (d.reach, d.max_len) {
                let from = near_hits.partition_point(|&(o, _, _)| o < index);
                let to = near_hits.partition_point(|&(o, _, _)| o <= index);
                let occurrences = near_hits[from..to]
                    .iter()
                    .map(|&(_, k, at)| (at, inner.keyword_lens[k]))
                    .filter(|&(at, len)| d.gate_in_require_word(hay, at, len));
                let near = near::windows(&mut lines, occurrences, reach, max_len);
                d.find_near(index, hay, &near, allow, min, out);
            } else {
                d.find(index, hay, 0..hay.len(), allow, min, out);
            }
        }
        tally
    }

    /// Resolves overlaps and maps the survivors back to the original text.
    fn findings(&self, view: &View<'_>, candidates: Vec<Candidate>) -> Vec<Finding> {
        let mut findings: Vec<Finding> = resolve(candidates, |c| self.slot(c.detector))
            .into_iter()
            .map(|c| {
                let (id, category) = self.slot(c.detector);
                let (start, end) = view.to_original(c.start, c.end);
                Finding {
                    detector: Arc::clone(id),
                    category,
                    start,
                    end,
                    confidence: c.confidence,
                }
            })
            .collect();
        findings.sort_by(|a, b| (a.start, a.end, &a.detector).cmp(&(b.start, b.end, &b.detector)));
        findings
    }

    /// Every detector whose keywords occur (structural ones always) searched over the
    /// whole text by its plain regex iteration: no windows, no anchors, no judging matches
    /// before their groups are resolved. What those shortcuts must never change.
    #[cfg(test)]
    fn scan_plain(&self, text: &str) -> Vec<Finding> {
        let inner = &*self.inner;
        let mut view = View::new(text);
        if !inner.detectors.is_empty() {
            view.read_spoken();
        }
        let mut candidates = Vec::new();
        self.plain_candidates(view.bytes(), &mut candidates);
        self.read_wrapped(view.bytes(), &mut candidates, |hay, out| {
            self.plain_candidates(hay, out);
        });
        self.findings(&view, candidates)
    }

    /// The candidates of [`scan_plain`](Scanner::scan_plain) in `hay`.
    #[cfg(test)]
    fn plain_candidates(&self, hay: &[u8], candidates: &mut Vec<Candidate>) {
        let inner = &*self.inner;
        let mut gated = vec![false; inner.detectors.len()];
        if let Some(keywords) = &inner.keywords {
            keywords.occurrences_by_aho_corasick(hay, |k, _| {
                for &d in &inner.keyword_owners[k] {
                    gated[d as usize] = true;
                }
            });
        }
        for &i in &inner.structural_owners {
            gated[i as usize] = true;
        }
        for (i, d) in inner.detectors.iter().enumerate() {
            if gated[i] {
                let (allow, min) = (&*inner.allowlist, inner.min_confidence);
                d.values(hay, 0..hay.len(), usize::MAX, false, |start, end| {
                    d.consider(i as u32, hay, start, end, allow, min, candidates)
                });
            }
        }
        if let Some(dicts) = &inner.dictionaries {
            dicts.find(hay, inner.min_confidence, candidates);
        }
    }

    fn slot(&self, index: u32) -> (&Arc<str>, Category) {
        let i = index as usize;
        match self.inner.detectors.get(i) {
            Some(d) => (&d.id, d.category),
            None => (
                &self.inner.dict_names[i - self.inner.detectors.len()],
                Category::Confidential,
            ),
        }
    }

    /// The detectors this scanner runs (dictionaries not included).
    pub fn detectors(&self) -> impl Iterator<Item = DetectorInfo> + '_ {
        self.inner.detectors.iter().map(|d| DetectorInfo {
            detector: Arc::clone(d),
        })
    }

    /// Heap bytes held by this scanner's own automata (the shared built-in regexes and
    /// lazy-DFA caches are not counted).
    pub fn dictionary_memory(&self) -> usize {
        self.inner
            .dictionaries
            .as_ref()
            .map_or(0, DictMatcher::memory_usage)
    }
}

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("detectors", &self.inner.detectors.len())
            .field("dictionaries", &self.inner.dict_names)
            .field("min_confidence", &self.inner.min_confidence)
            .finish()
    }
}

/// Resolves overlaps within each category (see [`Scanner::scan`]).
fn resolve<'a>(
    mut candidates: Vec<Candidate>,
    slot: impl Fn(&Candidate) -> (&'a Arc<str>, Category),
) -> Vec<Candidate> {
    if candidates.len() < 2 {
        return candidates;
    }
    candidates.sort_by(|a, b| {
        let (ida, ca) = slot(a);
        let (idb, cb) = slot(b);
        ca.cmp(&cb)
            .then(b.confidence.total_cmp(&a.confidence))
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
            .then(ida.cmp(idb))
    });
    let mut kept = Vec::with_capacity(candidates.len());
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    let mut category = None;
    for c in candidates {
        let cat = slot(&c).1;
        if category != Some(cat) {
            category = Some(cat);
            taken.clear();
        }
        // Accepted spans are disjoint, so only the last one starting before `c.end` can
        // overlap `c`.
        let overlaps = taken
            .range(..c.end)
            .next_back()
            .is_some_and(|(_, &end)| end > c.start);
        if !overlaps {
            taken.insert(c.start, c.end);
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    /// Text made of the pieces structural values are made of, so that values, near-misses
    /// and adjacent values at every distance occur often.
    fn structural_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            "[0-9]{1,5}",
            Just("4539 1488 0343 6467".to_string()),
            Just("123-45-6789".to_string()),
            Just("10.1.2.3".to_string()),
            Just("jane.doe@acme-mail.de".to_string()),
            Just("+44 20 7946 0958".to_string()),
            Just("DE89 3704 0044 0532 0130 00".to_string()),
            Just("2001:db9::1".to_string()),
            Just("AB 12 34 56 C".to_string()),
            "[ .\\-:@\n/()+]{1,2}",
            "[A-Za-z]{1,6}",
            Just("é".to_string()),
            Just("３".to_string()),
            Just("\r\n".to_string()),
            // Numbers said as words, which the view reads only when the keyword pass
            // counted enough of them, and an escape that folds beside them.
            proptest::sample::select(vec![
                "five ", "one ", "Oh", "nine", "double ", "triple ", " dot ", ", ", "; ", "G ",
                "\\u0041", "４ ",
            ])
            .prop_map(str::to_string),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|p| p.concat())
    }

    /// Team detectors that stress the shared DFA. One can match empty, which in UTF-8
    /// mode made the DFA drop every end inside a multi-byte character, for every pattern.
    const TEAM_EMPTY: &str = r#"
[[detector]]
id = "team-kd"
category = "pii"
description = "KD number"
regex = '(?:^|[^0-9])(?P<v>KD\d{6})(?:$|[^0-9])'
confidence = 0.9

[[detector]]
id = "team-emp"
category = "network"
description = "Employee number, or nothing"
regex = '\bE?\d{0,7}\b'
confidence = 0.5
"#;

    /// A Unicode word boundary, which the DFA cannot follow on non-ASCII text.
    const TEAM_UNICODE: &str = r#"
[[detector]]
id = "team-ticket"
category = "secret"
description = "Ticket with a Unicode word boundary"
regex = '(?u)\bKD-\d{6}\b'
confidence = 0.9
"#;

    fn scanners() -> [Scanner; 4] {
        let team = |toml| {
            Scanner::builder()
                .detectors_toml("team.toml", toml)
                .build()
                .unwrap()
        };
        [
            Scanner::builder().build().unwrap(),
            builtin_all().clone(),
            team(TEAM_EMPTY),
            team(TEAM_UNICODE),
        ]
    }

    #[test]
    fn numbers_said_as_words_are_found_and_map_back_to_the_words() {
        let scanner = Scanner::builder().build().unwrap();
        let card =
            "four five three nine, one four eight eight, zero three four three, six four six seven";
        // An escape before it: the words are read in the folded view, and spans go back
        // through both stages.
        let text = format!("caf\\u00e9 \u{FF11}: the card is {card}. Thanks");
        let found = scanner.scan(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].detector(), &text[found[0].span()]),
            ("payment-card", card)
        );
        let ip = "two one seven dot 92 dot 203 dot twenty three";
        assert!(scanner.scan(ip).is_empty(), "twenty is not a digit");
        let ip = "from 217 dot 92 dot 203 dot 23 today";
        let found = scanner.scan(ip);
        assert_eq!(&ip[found[0].span()], "217 dot 92 dot 203 dot 23");
    }

    const TEAM_DIGITS: &str = r#"
[[detector]]
id = "team-digits"
category = "pii"
description = "Any six digits, spaced or dotted"
regex = '\d(?:[ .]?\d){5,}'
confidence = 0.5
"#;

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(300))]
        #[test]
        fn spoken_runs_are_read_whenever_the_tally_allows(text in spoken::tests::speech()) {
            // A team detector that finds any six digits, so that every run read shows.
            let digits = Scanner::builder()
                .detectors_toml("team.toml", TEAM_DIGITS)
                .build()
                .unwrap();
            for scanner in [&digits, &Scanner::builder().build().unwrap(), builtin_all()] {
                proptest::prop_assert_eq!(scanner.scan(&text), scanner.scan_plain(&text));
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(200))]
        #[test]
        fn windows_change_no_finding(text in structural_text()) {
            for scanner in &scanners() {
                proptest::prop_assert_eq!(scanner.scan(&text), scanner.scan_plain(&text));
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(200))]
        /// A label adds findings and never removes one, whatever it says (`sku` and
        /// `isbn` are exclude words, `ssn` and `phone` require or boost words), and the
        /// check that skips the second scan skips only scans that would add nothing.
        #[test]
        fn a_label_never_removes_a_finding(
            label in proptest::sample::select(vec![
                "content", "ssn", "ｓｓｎ", "s\u{200B}sn", "sku", "isbn", "phone", "version",
                "aws", "kind", "4539", "jane@", "x".repeat(100).leak(),
            ]),
            // Values that need their label, first, near it.
            value in proptest::sample::select(vec![
                "536221947", "Secret\ndata:\n  password: YWFsIVpnVGlid1A9MCEtMTRN",
                "4539 1488 0343 6467", " (415) 555-2671", "",
            ]),
            rest in structural_text(),
        ) {
            let text = format!("{value}{rest}");
            let scanner = builtin_all();
            let labelled = scanner.scan_labelled(label, &text);
            // What the two scans find together, always run.
            let offset = label.len() + 2;
            let joined = scanner.scan(&format!("{label}: {text}"));
            for f in joined.iter().filter(|f| f.end() > offset) {
                let span = f.start().max(offset) - offset..f.end() - offset;
                let kept = labelled.iter().any(|l| (l.detector(), l.span()) == (f.detector(), span.clone()));
                proptest::prop_assert!(kept, "{label}: the skipped scan had {f:?}");
            }
            for f in scanner.scan(&text) {
                let kept = labelled.iter().any(|l| {
                    (l.detector(), l.span()) == (f.detector(), f.span()) && l.confidence() >= f.confidence()
                });
                proptest::prop_assert!(kept, "{label}: lost {f:?}");
            }
            for f in &labelled {
                proptest::prop_assert!(text.is_char_boundary(f.start()) && text.is_char_boundary(f.end()) && f.end() <= text.len());
            }
        }
    }

    /// Text made of keywords, assignment syntax and values, so that anchored detectors
    /// meet their keywords in every case, glued to each other and to near-misses.
    fn keyword_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            proptest::sample::select(vec![
                "api_key",
                "API-KEY",
                "apiKey",
                "access.key",
                "secret",
                "Secret_Key",
                "token",
                "password",
                "PASSWD",
                "pwd",
                "ghp_",
                "xoxb-",
                "sk-ant-api03-",
                "AKIA",
                "eyJ",
                "postgres://",
                "Bearer ",
                "--password ",
                "hf_",
                "glpat-",
            ])
            .prop_map(str::to_string),
            proptest::sample::select(vec![" = ", ": ", "=", ":=", "\"", "'", " ", "\n", "\\"])
                .prop_map(str::to_string),
            "[A-Za-z0-9]{1,24}",
            "[A-Za-z0-9_+/=.-]{20,44}",
        ];
        proptest::collection::vec(piece, 0..30).prop_map(|p| p.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(300))]
        #[test]
        fn anchors_change_no_finding(text in keyword_text()) {
            let scanner = builtin_all();
            proptest::prop_assert_eq!(scanner.scan(&text), scanner.scan_plain(&text));
        }
    }

    fn builtin_all() -> &'static Scanner {
        static ALL: OnceLock<Scanner> = OnceLock::new();
        ALL.get_or_init(|| Scanner::builder().all_builtin(true).build().unwrap())
    }

    /// A team detector whose matches overlap in runs of digits, so that where a search
    /// starts changes what it finds: the near search must start where the whole-text
    /// iteration would be.
    const TEAM_NEAR: &str = r#"
[[detector]]
id = "team-near"
category = "pii"
description = "Three digits near the word code"
regex = '\d{3}'
keywords = ["code"]
confidence = 0.9
[detector.context]
window = 6
require = ["code", "zip code"]
"#;

    /// Text with the words that near-searched detectors need, numbers of their lengths,
    /// table rows under headers, and stretches long enough to keep windows apart.
    fn near_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            proptest::sample::select(vec![
                "phone",
                "Mobile",
                "tel",
                "ssn",
                "passport",
                "aadhaar",
                "nhs",
                "tfn",
                "code",
                "zip code",
                "aws",
                "secret_access_key",
                "order",
            ])
            .prop_map(str::to_string),
            proptest::sample::select(vec![" ", ", ", ",", ";", "|", "\n", ": ", "\t", " x ",])
                .prop_map(str::to_string),
            "[0-9]{3,13}",
            "[0-9]{8,30} code",
            "[2-9][0-9]{9}",
            Just("4157730192".to_string()),
            Just("536221947".to_string()),
            Just("943 476 5919".to_string()),
            Just("C01X00T47".to_string()),
            Just("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE1".to_string()),
            // Table headers and rows, so that values sit in columns under a word.
            Just("name,phone\n".to_string()),
            Just("id;mobile;ssn\r\n".to_string()),
            Just("Ravi,9818204471\n".to_string()),
            Just("7;4157730192;536221947\n".to_string()),
            "[a-z ]{40,120}",
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|p| p.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(300))]
        #[test]
        fn near_windows_change_no_finding(text in near_text()) {
            static TEAM: OnceLock<Scanner> = OnceLock::new();
            let team = TEAM.get_or_init(|| {
                Scanner::builder().detectors_toml("team.toml", TEAM_NEAR).build().unwrap()
            });
            for scanner in [builtin_all(), team] {
                proptest::prop_assert_eq!(scanner.scan(&text), scanner.scan_plain(&text));
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(200))]
        /// Whether a gate word lies in a whole require word, read by comparing each
        /// require word in place, is what the context automaton says, for every detector
        /// with a context rule and every occurrence of each of its gate words, in text
        /// with the words in other cases, inside other words and at the text's edges.
        #[test]
        fn require_words_compared_in_place_as_the_automaton_finds_them(
            text in near_text(),
            upper in proptest::bool::ANY,
            glue in proptest::sample::select(vec!["", "x", "7", "_", "é"]),
        ) {
            let text = if upper { text.to_uppercase() } else { text };
            let text = format!("{glue}{text}{glue}");
            let hay = text.as_bytes();
            let scanner = builtin_all();
            let inner = &*scanner.inner;
            let keywords = inner.keywords.as_ref().unwrap();
            let mut hits = Vec::new();
            keywords.occurrences(hay, |k, at| hits.push((k, at)));
            for (k, at) in hits {
                for &d in &inner.keyword_owners[k] {
                    let d = &inner.detectors[d as usize];
                    let len = inner.keyword_lens[k];
                    proptest::prop_assert_eq!(
                        d.gate_in_require_word(hay, at, len),
                        d.gate_in_require_word_by_automaton(hay, at, len),
                        "{} at {}", &*d.id, at
                    );
                }
            }
        }
    }

    #[test]
    fn a_require_word_longer_than_the_text_is_not_found() {
        let scanner = builtin_all();
        for d in &scanner.inner.detectors {
            for (hay, at, len) in [(&b"tel"[..], 0, 3), (b"ssn", 0, 3), (b"x", 0, 1)] {
                assert_eq!(
                    d.gate_in_require_word(hay, at, len),
                    d.gate_in_require_word_by_automaton(hay, at, len),
                    "{}",
                    &*d.id
                );
            }
        }
    }

    /// The team detector above is searched near its word, and its overlapping matches
    /// come out as the whole-text iteration makes them: `123`, `456` in `1234567`.
    #[test]
    fn near_search_starts_where_the_whole_text_iteration_is() {
        let team = Scanner::builder()
            .detectors_toml("team.toml", TEAM_NEAR)
            .build()
            .unwrap();
        assert!(team.inner.detectors.iter().any(|d| d.reach.is_some()));
        let filler = "x ".repeat(60);
        let text = format!("1234567{filler}89 code 1234567");
        assert_eq!(team.scan(&text), team.scan_plain(&text));
        let spans: Vec<&str> = team.scan(&text).iter().map(|f| &text[f.span()]).collect();
        assert_eq!(spans, ["123"]);
        // The word's reach starts inside the run: a search from there would cut it as
        // `678`, `901` (and find nothing next to `code`); the whole text cuts it as
        // `123`, `456`, `789`, `012`, and `012` ends next to `code`.
        let text = format!("{filler}1234567890123 code");
        assert_eq!(team.scan(&text), team.scan_plain(&text));
        let spans: Vec<&str> = team.scan(&text).iter().map(|f| &text[f.span()]).collect();
        assert_eq!(spans, ["012"]);
        // A value 30 rows under its column's header, far beyond the word's reach.
        let csv = format!("name,mobile\n{}Ravi,9818204471\n", "a,b\n".repeat(30));
        let found = builtin_all().scan(&csv);
        assert!(
            found.iter().any(|f| f.detector() == "phone-bare"),
            "{found:?}"
        );
        assert_eq!(found, builtin_all().scan_plain(&csv));
    }

    /// The keyword-gated detectors searched only near their words: each needs a context
    /// word near its values that holds one of its keywords, and has bounded matches.
    #[test]
    fn keyword_detectors_searched_near_their_words() {
        let ids: Vec<&str> = builtin_all()
            .inner
            .detectors
            .iter()
            .filter(|d| d.reach.is_some())
            .map(|d| &*d.id)
            .collect();
        insta::assert_snapshot!(ids.join("\n"));
    }

    /// The keyword-gated detectors searched over the whole text, because their matches
    /// are not shown to begin with a keyword, nor to lie near one. A detector that joins
    /// this list has either a keyword list that misses a branch of its pattern
    /// (`access.key` was such a gap), or context words that hold none of its keywords,
    /// or unbounded matches.
    #[test]
    fn keyword_detectors_searched_over_the_whole_text() {
        let ids: Vec<&str> = builtin_all()
            .inner
            .detectors
            .iter()
            .filter(|d| d.lead.is_none() && d.reach.is_none() && !d.gate_words().is_empty())
            .map(|d| &*d.id)
            .collect();
        insta::assert_snapshot!(ids.join("\n"));
    }

    /// A match whose digits are not all the value's is never judged by its digits before
    /// its groups are resolved: here the match's 17 digits fail Luhn, the value's 16 pass.
    #[test]
    fn a_value_with_digits_beside_it_is_judged_alone() {
        let team = r#"
[[detector]]
id = "team-card-slot"
category = "financial"
description = "Card number after a slot number"
regex = 'slot \d:(?P<v>\d{16})\b'
validator = "payment_card"
confidence = 0.9
"#;
        let scanner = Scanner::builder()
            .only(["team-card-slot"])
            .detectors_toml("team.toml", team)
            .build()
            .unwrap();
        let text = "slot 7:4539148803436467";
        let found = scanner.scan(text);
        assert_eq!(found, scanner.scan_plain(text));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(&text[found[0].span()], "4539148803436467");
    }

    #[test]
    fn team_patterns_that_match_empty_or_need_unicode_keep_their_findings() {
        let [_, _, empty, unicode] = scanners();
        for (scanner, text, id) in [
            (&empty, "ref KD123456é", "team-kd"),
            (&unicode, "ticket KD-123456", "team-ticket"),
            (&unicode, "ticket KD-123456 für é", "team-ticket"),
        ] {
            let found = scanner.scan(text);
            assert_eq!(found, scanner.scan_plain(text), "{text}");
            assert!(
                found.iter().any(|f| f.detector() == id),
                "{text}: {found:?}"
            );
        }
    }

    #[test]
    fn shortcuts_change_no_finding_on_the_examples() {
        let scanner = builtin_all();
        for d in scanner.inner.detectors.iter() {
            for text in d.must_match.iter().chain(&d.must_not_match) {
                let joined = format!("{text} {text}\n{text}");
                for t in [text.as_str(), joined.as_str()] {
                    assert_eq!(scanner.scan(t), scanner.scan_plain(t), "{}", d.id);
                }
            }
        }
    }

    /// Regression: text spelled in invisible tag characters (U+E0020-E007E), which models
    /// read, was scanned as it looks (as nothing).
    #[test]
    fn text_in_tag_characters_is_read() {
        let hidden: String = "mail jane.doe@acme-mail.de now"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        let text = format!("hello {hidden}\u{E007F}");
        let f = Scanner::builder().build().unwrap().scan(&text);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].detector(), "email");
        assert_eq!(
            text[f[0].span()].chars().count(),
            "jane.doe@acme-mail.de".len()
        );
    }

    #[test]
    fn scanner_is_shareable() {
        assert_send_sync::<Scanner>();
    }

    #[test]
    fn custom_detectors_and_selection() {
        let toml = r#"
[[detector]]
id = "ticket-ref"
category = "pii"
description = "Internal ticket reference"
regex = '\bTCK-[0-9]{6}\b'
keywords = ["tck-"]
confidence = 0.7
"#;
        let s = Scanner::builder()
            .only(["ticket-ref"])
            .detectors_toml("team.toml", toml)
            .build()
            .unwrap();
        let f = s.scan("see TCK-123456 and tck-000001");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].detector(), "ticket-ref");
        let err = Scanner::builder()
            .enable("no-such-detector")
            .build()
            .unwrap_err();
        assert_eq!(err.detector_id(), Some("no-such-detector"));
        let bad = "[[detector]]\nid = \"x\"\ncategory = \"pii\"\ndescription = \"\"\nregex = '('\nconfidence = 0.5\n";
        let err = Scanner::builder()
            .detectors_toml("bad.toml", bad)
            .build()
            .unwrap_err();
        assert!(
            err.to_string().starts_with("detector `x`: invalid regex"),
            "{err}"
        );
    }

    #[test]
    fn team_detectors_read_wrapped_values_after_a_checksum_or_a_label() {
        let team = |validator: &str, wrapped: &str| {
            let toml = format!(
                "[[detector]]\nid = \"team-ref\"\ncategory = \"pii\"\ndescription = \"Ref\"\n\
                 regex = '\\b\\d{{3}} \\d{{3}} \\d{{3}}\\b'\n{validator}confidence = 0.9\n{wrapped}"
            );
            Scanner::builder()
                .only(["team-ref"])
                .detectors_toml("team.toml", &toml)
                .build()
        };
        let err = team("", "[detector.wrapped]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "detector `team-ref`: a wrapped value needs labels or a checksum validator"
        );
        let spans = |scanner: &Scanner, text: &str| -> Vec<(usize, usize)> {
            scanner
                .scan(text)
                .iter()
                .map(|f| (f.start(), f.end()))
                .collect()
        };
        let labelled = team("", "[detector.wrapped]\nlabels = [\"Ref\"]\n").unwrap();
        assert_eq!(
            spans(&labelled, "Ref: 674 911\n862\nNext 674 911\n862"),
            [(5, 16)]
        );
        // A checksum (Luhn) instead of a label: both, and not the one failing it.
        let checked = team("validator = \"luhn\"\n", "[detector.wrapped]\n").unwrap();
        let text = "Ref: 674 911\n862\nNext 674 911\n862\nBad 674 911\n863";
        assert_eq!(spans(&checked, text), [(5, 16), (22, 33)]);
        // Without `[detector.wrapped]`, no wrapped value.
        assert!(
            team("validator = \"luhn\"\n", "")
                .unwrap()
                .scan(text)
                .is_empty()
        );
    }

    #[test]
    fn internal_hostnames_follow_the_configured_suffixes() {
        let s = Scanner::builder()
            .only(["internal-hostname"])
            .internal_suffixes(["acme.net"])
            .build()
            .unwrap();
        let text = "ssh build01.eu.acme.net or db.corp";
        let f = s.scan(text);
        assert_eq!(f.len(), 1);
        assert_eq!(&text[f[0].span()], "build01.eu.acme.net");
    }
}
