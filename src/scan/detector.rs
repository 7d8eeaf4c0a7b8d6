//! Detector definitions (the `patterns/*.toml` schema) and their compiled form.

use std::collections::HashSet;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use regex_automata::meta::{self, Regex};
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, PatternID};
use serde::Deserialize;

use super::analysis;
use super::error::{BuildError, ErrorKind};
use super::finding::Category;
use super::validate::{self, Validator};

/// Regexes come from our own files and from team policies; a bound on their compiled size
/// keeps a careless team pattern from costing the process hundreds of megabytes.
pub(crate) const REGEX_SIZE_LIMIT: usize = 8 << 20;

/// One `[[detector]]` table, as written in a pattern file or a team policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DetectorSpec {
    pub(crate) id: String,
    pub(crate) category: Category,
    pub(crate) description: String,
    pub(crate) regex: String,
    #[serde(default)]
    pub(crate) keywords: Vec<String>,
    pub(crate) validator: Option<String>,
    pub(crate) min_entropy: Option<f32>,
    pub(crate) confidence: f32,
    #[serde(default = "yes")]
    pub(crate) default: bool,
    #[serde(default)]
    pub(crate) allow: Vec<String>,
    #[serde(default)]
    pub(crate) must_match: Vec<String>,
    #[serde(default)]
    pub(crate) must_not_match: Vec<String>,
    pub(crate) context: Option<ContextSpec>,
    pub(crate) wrapped: Option<WrappedSpec>,
}

fn yes() -> bool {
    true
}

/// `[detector.context]`: words near the value that are required, raise confidence, or
/// rule the value out.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContextSpec {
    #[serde(default = "default_window")]
    pub(crate) window: usize,
    #[serde(default)]
    pub(crate) require: Vec<String>,
    #[serde(default)]
    pub(crate) boost: Vec<String>,
    #[serde(default)]
    pub(crate) exclude: Vec<String>,
}

/// `[detector.wrapped]`: the detector also reads a value broken across two lines at one
/// of its spaces (`wrapped.rs`). Without labels the value must pass a checksum validator;
/// with them, one of them must stand on its line before it (or on the line above).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WrappedSpec {
    #[serde(default)]
    pub(crate) labels: Vec<String>,
}

fn default_window() -> usize {
    48
}

/// A pattern file: a list of `[[detector]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatternFile {
    #[serde(default)]
    pub(crate) detector: Vec<DetectorSpec>,
}

/// A candidate finding, in offsets of the scanned view.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    pub(crate) detector: u32,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) confidence: f32,
}

/// A detector compiled for scanning. Shared between scanners through `Arc`.
pub(crate) struct Detector {
    pub(crate) id: Arc<str>,
    pub(crate) category: Category,
    pub(crate) description: String,
    pub(crate) pattern: String,
    regex: Regex,
    /// The longest match the pattern can make, when it is bounded: the scanner then runs
    /// the detector only near the places a match could end.
    pub(crate) max_len: Option<usize>,
    /// Every match begins with one of the gate words, after at most this many bytes: the
    /// detector is searched only at and just before where the keyword pass saw them
    /// (`analysis.rs`).
    pub(crate) lead: Option<usize>,
    /// For a detector whose context requires words near a value, each of which holds one
    /// of its gate words, and whose matches are bounded: how far from an occurrence of a
    /// gate word an accepted match can lie (`window + max_len`). The scanner searches
    /// such a detector only there, and in the table rows under a header that holds one
    /// ([`Detector::find_near`]).
    pub(crate) reach: Option<usize>,
    /// For each gate word, the require words that hold it and where (word, offset), for
    /// [`Detector::gate_in_require_word`].
    require_at: Vec<(String, Vec<(usize, usize)>)>,
    /// The validator's check of digits, when it may judge a whole match before the value
    /// group is resolved: the match holds no digit outside the value (`analysis.rs`).
    prevalidate: Option<fn(&[u8]) -> bool>,
    value_group: Option<usize>,
    pub(crate) keywords: Vec<String>,
    validator: Option<Validator>,
    min_entropy: Option<f32>,
    pub(crate) confidence: f32,
    pub(crate) default_on: bool,
    allow: Vec<Vec<u8>>,
    context: Option<Context>,
    /// The labels a value read across a line break needs (lowercase in every script; none for a
    /// checksum), when the detector reads such values at all.
    pub(crate) wrapped: Option<Vec<String>>,
    pub(crate) must_match: Vec<String>,
    pub(crate) must_not_match: Vec<String>,
}

/// A compiled context rule: every word of the three lists in one automaton, searched
/// once in the window on each side of a candidate.
struct Context {
    window: usize,
    words: AhoCorasick,
    /// The list each automaton pattern came from.
    kinds: Vec<WordKind>,
    has_require: bool,
    /// The require words, for gating: when none of them occurs anywhere in a text, the
    /// detector cannot report anything in it.
    require: Vec<String>,
    /// Every word of the three lists, lowercased.
    all: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WordKind {
    Require,
    Boost,
    Exclude,
}

/// What the context words near a candidate say.
#[derive(Default)]
struct Near {
    require: bool,
    boost: bool,
    exclude: bool,
}

impl Context {
    fn compile(id: &str, spec: ContextSpec) -> Result<Context, BuildError> {
        let mut patterns = Vec::new();
        let mut kinds = Vec::new();
        for (list, kind) in [
            (&spec.require, WordKind::Require),
            (&spec.boost, WordKind::Boost),
            (&spec.exclude, WordKind::Exclude),
        ] {
            for w in list {
                if w.trim().is_empty() {
                    return Err(BuildError::detector(id, "context words must not be empty"));
                }
                patterns.push(w.to_ascii_lowercase());
                kinds.push(kind);
            }
        }
        let words = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(|e| BuildError::detector(id, format!("context words: {e}")))?;
        Ok(Context {
            window: spec.window,
            all: patterns,
            words,
            kinds,
            has_require: !spec.require.is_empty(),
            require: spec
                .require
                .iter()
                .map(|w| w.to_ascii_lowercase())
                .collect(),
        })
    }

    /// Which kinds of word occur as whole words in `hay[range]`. Word boundaries are
    /// judged on `hay`: a word cut by the window's edge (`sup|port`) is not `port`.
    fn scan(&self, hay: &[u8], range: std::ops::Range<usize>, near: &mut Near) {
        for (kind, _) in self.whole_words(hay, range) {
            match kind {
                WordKind::Require => near.require = true,
                WordKind::Boost => near.boost = true,
                WordKind::Exclude => near.exclude = true,
            }
        }
    }

    /// The context words that occur as whole words in `hay[range]`, with their spans.
    fn whole_words<'h>(
        &'h self,
        hay: &'h [u8],
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (WordKind, std::ops::Range<usize>)> + 'h {
        let offset = range.start;
        self.words
            .find_overlapping_iter(&hay[range])
            .filter_map(move |m| {
                let (s, e) = (m.start() + offset, m.end() + offset);
                is_whole_word(hay, s, e).then(|| (self.kinds[m.pattern().as_usize()], s..e))
            })
    }
}

/// Whether `hay[s..e]` is a whole word: no letter or digit runs on into it from either
/// side. Judged on `hay`, so a word cut by a window's edge (`sup|port`) is not `port`.
pub(crate) fn is_whole_word(hay: &[u8], s: usize, e: usize) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric();
    let left = s == 0 || !is_word(hay[s]) || !is_word(hay[s - 1]);
    let right = e == hay.len() || !is_word(hay[e - 1]) || !is_word(hay[e]);
    left && right
}

/// Where `gate` (lowercase) occurs in each of `words` (lowercase): (word, offset) pairs.
fn occurrences_in(words: &[String], gate: &str) -> Vec<(usize, usize)> {
    let mut places = Vec::new();
    for (i, w) in words.iter().enumerate() {
        for offset in 0..=w.len().saturating_sub(gate.len()) {
            if w.as_bytes()[offset..].starts_with(gate.as_bytes()) {
                places.push((i, offset));
            }
        }
    }
    places
}

/// How much a boost word raises confidence.
const BOOST: f32 = 0.2;

impl Detector {
    pub(crate) fn compile(spec: DetectorSpec) -> Result<Detector, BuildError> {
        let id = spec.id.as_str();
        if id.is_empty()
            || !id.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b':'
            })
        {
            return Err(BuildError::detector(
                id,
                "ids are lowercase ASCII letters, digits and `-`",
            ));
        }
        if !(0.0..=1.0).contains(&spec.confidence) {
            return Err(BuildError::detector(
                id,
                "confidence must be between 0.0 and 1.0",
            ));
        }
        let invalid = |e: &dyn std::fmt::Display| {
            BuildError::detector(id, format!("invalid regex: {}", first_line(&e.to_string())))
        };
        let hir = syntax::parse_with(&spec.regex, &syntax_config()).map_err(|e| invalid(&e))?;
        let max_len = hir.properties().maximum_len();
        let regex = Regex::builder()
            .syntax(syntax_config())
            .configure(
                meta::Config::new()
                    .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                    .utf8_empty(false),
            )
            .build_from_hir(&hir)
            .map_err(|e| invalid(&e))?;
        let value_group = regex.group_info().to_index(PatternID::ZERO, "v");
        let validator =
            match &spec.validator {
                None => None,
                Some(name) => Some(Validator::from_name(name).ok_or_else(|| {
                    BuildError::detector(id, format!("unknown validator `{name}`"))
                })?),
            };
        // Keywords may hold other letters (`आधार`, `пароль`): those match as written.
        if spec.keywords.iter().any(String::is_empty) {
            return Err(BuildError::detector(id, "keywords must not be empty"));
        }
        let context = spec.context.map(|c| Context::compile(id, c)).transpose()?;
        let keywords: Vec<String> = spec
            .keywords
            .into_iter()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        let lead = analysis::keyword_lead(&hir, gate_words(&keywords, &context));
        let reach = match (&context, max_len) {
            // A pattern that can match empty is left whole: an empty match moves the
            // whole-text iteration on by one byte, not to its end.
            (Some(ctx), Some(len))
                if ctx.has_require
                    && lead.is_none()
                    && hir.properties().minimum_len() > Some(0) =>
            {
                let gate = gate_words(&keywords, &context);
                let gated = |w: &String| gate.iter().any(|k| w.contains(k.as_str()));
                ctx.require.iter().all(gated).then_some(ctx.window + len)
            }
            _ => None,
        };
        let require_at = match &context {
            Some(ctx) => gate_words(&keywords, &context)
                .iter()
                .map(|g| (g.clone(), occurrences_in(&ctx.require, g)))
                .collect(),
            None => Vec::new(),
        };
        let wrapped = match spec.wrapped {
            None => None,
            Some(w) if w.labels.iter().any(String::is_empty) => {
                return Err(BuildError::detector(id, "wrapped labels must not be empty"));
            }
            Some(w) if w.labels.is_empty() && !validator.is_some_and(Validator::is_checksum) => {
                return Err(BuildError::detector(
                    id,
                    "a wrapped value needs labels or a checksum validator",
                ));
            }
            // Lowercased as `wrapped::labelled` lowercases the line: in every script.
            Some(w) => Some(w.labels.iter().map(|l| l.to_lowercase()).collect()),
        };
        let prevalidate = validator
            .and_then(Validator::on_digits)
            .filter(|_| value_group.is_some() && analysis::digits_only_in_value(&hir));
        Ok(Detector {
            id: Arc::from(spec.id),
            category: spec.category,
            description: spec.description,
            pattern: spec.regex,
            regex,
            max_len,
            lead,
            reach,
            require_at,
            prevalidate,
            value_group,
            keywords,
            validator,
            min_entropy: spec.min_entropy,
            confidence: spec.confidence,
            default_on: spec.default,
            allow: spec.allow.into_iter().map(String::into_bytes).collect(),
            context,
            wrapped,
            must_match: spec.must_match,
            must_not_match: spec.must_not_match,
        })
    }

    /// The literals that gate this detector: its keywords, or, for a detector without
    /// keywords whose context requires words, those words (it cannot report anything in
    /// a text that holds none of them). Empty: the detector is structural.
    pub(crate) fn gate_words(&self) -> &[String] {
        gate_words(&self.keywords, &self.context)
    }

    /// Every word that can make this detector run or change what it reports: its
    /// keywords, its context words and its labels for wrapped values, lowercased.
    pub(crate) fn words(&self) -> impl Iterator<Item = &str> {
        let context = self.context.iter().flat_map(|c| c.all.iter());
        let labels = self.wrapped.iter().flatten();
        self.keywords
            .iter()
            .chain(context)
            .chain(labels)
            .map(String::as_str)
    }

    /// Finds every accepted value of this detector that starts and ends in `span`;
    /// look-around assertions and context words see all of `hay`.
    pub(crate) fn find(
        &self,
        index: u32,
        hay: &[u8],
        span: std::ops::Range<usize>,
        allowlist: &HashSet<Vec<u8>>,
        min_confidence: f32,
        out: &mut Vec<Candidate>,
    ) {
        self.values(hay, span, usize::MAX, true, |start, end| {
            self.consider(index, hay, start, end, allowlist, min_confidence, out)
        });
    }

    /// What [`Detector::find`] finds over all of `hay`, for a detector with a
    /// [`reach`](Self::reach), searched only in `near`: sorted, disjoint spans that hold
    /// every match it can accept.
    ///
    /// The whole-text iteration is leftmost-first, and each match decides where the next
    /// search starts, so a search may not simply begin at a span's start: its first match
    /// could overlap one that the whole-text iteration found before it. A search begins
    /// where the two agree: where the previous span's search left off, or at a point `q`
    /// at which no match starts in the next `max_len` bytes. A whole-text match that
    /// began before `q` has ended by then, and no match starts between `q` and there, so
    /// the whole-text iteration comes to the same first match after `q`. Otherwise `q`
    /// steps back by `max_len`.
    ///
    /// Every search is cut `max_len` past what it needs: a match that starts before a
    /// point ends within `max_len` of it, and look-around still sees the whole text, so
    /// the cut changes no match that matters and a search never runs on to the end.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn find_near(
        &self,
        index: u32,
        hay: &[u8],
        near: &[std::ops::Range<usize>],
        allowlist: &HashSet<Vec<u8>>,
        min_confidence: f32,
        out: &mut Vec<Candidate>,
    ) {
        let Some(len) = self.max_len else {
            return self.find(index, hay, 0..hay.len(), allowlist, min_confidence, out);
        };
        let cut = |end: usize| (end + len).min(hay.len());
        // Where the whole-text iteration is known to stand: its next match is the first
        // match at or after this point.
        let mut synced = 0;
        for span in near {
            if span.end <= synced {
                continue;
            }
            let mut q = span.start.max(synced);
            while q > synced {
                let probe = Input::new(hay).span(q..cut(q + len));
                match self.regex.search(&probe) {
                    Some(m) if m.start() < q + len => q = q.saturating_sub(len).max(synced),
                    _ => break,
                }
            }
            let resume = self.values(hay, q..cut(span.end), span.end, true, |start, end| {
                self.consider(index, hay, start, end, allowlist, min_confidence, out)
            });
            // No match starts between `resume` and the span's end.
            synced = resume.max(span.end);
        }
    }

    /// Whether the gate word at `hay[at..at + len]` lies inside a whole require word:
    /// only then can it make a value near it count ([`Detector::find_near`]). `tel` in
    /// `hotel` or `telemetry` cannot.
    ///
    /// A require word that covers the gate word holds it at some offset: each such word
    /// is compared only where that places it, a few byte comparisons. (Searching the
    /// words' automaton over the bytes around the gate word, as
    /// [`Context::whole_words`] does, cost ~1,200 instructions a call in set-up, 5% of a
    /// scan of the benchmark corpus; comparing every require word at every place where
    /// it would cover the gate word cost more.)
    pub(crate) fn gate_in_require_word(&self, hay: &[u8], at: usize, len: usize) -> bool {
        let Some(ctx) = &self.context else {
            return false;
        };
        let Some(gate) = hay.get(at..at + len) else {
            return false;
        };
        // The gate word found there (ASCII case-insensitively, as the keyword pass finds
        // it); any require word that covers it holds it where listed.
        let Some((_, places)) = self
            .require_at
            .iter()
            .find(|(g, _)| g.as_bytes().eq_ignore_ascii_case(gate))
        else {
            return false;
        };
        places.iter().any(|&(w, offset)| {
            let w = ctx.require[w].as_bytes();
            let Some(s) = at.checked_sub(offset) else {
                return false;
            };
            hay.get(s..s + w.len())
                .is_some_and(|found| found.eq_ignore_ascii_case(w))
                && is_whole_word(hay, s, s + w.len())
        })
    }

    /// What [`gate_in_require_word`](Self::gate_in_require_word) must answer: the require
    /// words found by the context automaton around the gate word.
    #[cfg(test)]
    pub(crate) fn gate_in_require_word_by_automaton(
        &self,
        hay: &[u8],
        at: usize,
        len: usize,
    ) -> bool {
        let Some(ctx) = &self.context else {
            return false;
        };
        let longest = ctx.require.iter().map(String::len).max().unwrap_or(0);
        let range = at.saturating_sub(longest)..(at + len + longest).min(hay.len());
        ctx.whole_words(hay, range)
            .any(|(kind, w)| kind == WordKind::Require && w.start <= at && at + len <= w.end)
    }

    /// Calls `each` with the value span (the `v` group, or the whole match) of every match
    /// in `span`, leftmost-first, except, with `prevalidate`, those whose digits the
    /// validator rejects (without: what that shortcut must never change). Stops before
    /// the first match that starts at or after `stop`. Returns where the iteration
    /// stands: the end of the last match before `stop`, or the span's start.
    pub(crate) fn values(
        &self,
        hay: &[u8],
        span: std::ops::Range<usize>,
        stop: usize,
        prevalidate: bool,
        mut each: impl FnMut(usize, usize),
    ) -> usize {
        let mut resume = span.start;
        let input = Input::new(hay).span(span);
        let Some(g) = self.value_group else {
            for m in self.regex.find_iter(input) {
                if m.start() >= stop {
                    break;
                }
                resume = m.end();
                each(m.start(), m.end());
            }
            return resume;
        };
        match self.prevalidate.filter(|_| prevalidate) {
            Some(verdict) => {
                // Resolving capture groups costs several times the search: a match whose
                // digits (all of them the value's) fail the validator is dropped first.
                // The groups are then resolved within the match, which finds it again.
                let mut caps = self.regex.create_captures();
                for m in self.regex.find_iter(input) {
                    if m.start() >= stop {
                        break;
                    }
                    resume = m.end();
                    if !verdict(&validate::digits(&hay[m.range()])) {
                        continue;
                    }
                    let within = Input::new(hay).span(m.range()).anchored(Anchored::Yes);
                    self.regex.search_captures(&within, &mut caps);
                    if let Some(v) = value_span(&caps, g) {
                        each(v.start, v.end);
                    }
                }
            }
            None => {
                for caps in self.regex.captures_iter(input) {
                    if let Some(m) = caps.get_match() {
                        if m.start() >= stop {
                            break;
                        }
                        resume = m.end();
                    }
                    if let Some(v) = value_span(&caps, g) {
                        each(v.start, v.end);
                    }
                }
            }
        }
        resume
    }

    /// Keeps the value at `hay[start..end]` if it is accepted with enough confidence.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn consider(
        &self,
        index: u32,
        hay: &[u8],
        start: usize,
        end: usize,
        allowlist: &HashSet<Vec<u8>>,
        min_confidence: f32,
        out: &mut Vec<Candidate>,
    ) {
        if start == end {
            return;
        }
        if let Some(confidence) = self.accept(hay, start, end, allowlist)
            && confidence >= min_confidence
        {
            out.push(Candidate {
                detector: index,
                start,
                end,
                confidence,
            });
        }
    }

    /// What [`Detector::find`] finds over all of `hay`, for a detector with a
    /// [`lead`](Self::lead), given every place where one of its matches can start
    /// (sorted): up to `lead` bytes before each occurrence of one of its gate words. One
    /// anchored search at each. Exact, because every match starts at such a place: the
    /// leftmost match at or after any offset is the first anchored match among them,
    /// which is how the whole-text iteration proceeds.
    pub(crate) fn find_at(
        &self,
        index: u32,
        hay: &[u8],
        starts: impl IntoIterator<Item = usize>,
        allowlist: &HashSet<Vec<u8>>,
        min_confidence: f32,
        out: &mut Vec<Candidate>,
    ) {
        let mut caps = self.regex.create_captures();
        // Where the whole-text iteration would resume: after the last match, and past the
        // position of an empty one.
        let mut resume = 0;
        for s in starts {
            if s < resume {
                continue;
            }
            let input = Input::new(hay).span(s..hay.len()).anchored(Anchored::Yes);
            let span = match self.value_group {
                Some(g) => {
                    self.regex.search_captures(&input, &mut caps);
                    if let Some(m) = caps.get_match() {
                        resume = m.end().max(s + 1);
                    }
                    value_span(&caps, g)
                }
                None => self.regex.search(&input).map(|m| {
                    resume = m.end().max(s + 1);
                    m.span()
                }),
            };
            if let Some(v) = span {
                self.consider(index, hay, v.start, v.end, allowlist, min_confidence, out);
            }
        }
    }

    /// The confidence of the value at `hay[start..end]`, or `None` when it is rejected.
    fn accept(
        &self,
        hay: &[u8],
        start: usize,
        end: usize,
        allowlist: &HashSet<Vec<u8>>,
    ) -> Option<f32> {
        let v = &hay[start..end];
        if let Some(validator) = self.validator
            && (!validator.check(hay, start, end)
                || (validator.is_numeric() && spans_rows(hay, start, end)))
        {
            return None;
        }
        if let Some(min) = self.min_entropy
            && validate::entropy(v) < min
        {
            return None;
        }
        if self.category == Category::Secret
            && (validate::is_placeholder(v) || validate::fails_its_checksum(v))
        {
            return None;
        }
        if self.is_allowed(v, allowlist) {
            return None;
        }
        // Context last: the checks above look at the value alone, while the context words
        // are searched in a window on each side and, in a table, in the column's header.
        let mut near = Near::default();
        if let Some(ctx) = &self.context {
            ctx.scan(hay, start.saturating_sub(ctx.window)..start, &mut near);
            ctx.scan(hay, end..(end + ctx.window).min(hay.len()), &mut near);
            // In a table, the column's header describes the value however far up it is.
            if let Some(header) = column_header(hay, start, end) {
                ctx.scan(hay, header, &mut near);
            }
            if (ctx.has_require && !near.require) || near.exclude {
                return None;
            }
        }
        let mut confidence = self.confidence;
        if near.boost {
            confidence = (confidence + BOOST).min(1.0);
        }
        Some(confidence)
    }

    fn is_allowed(&self, v: &[u8], allowlist: &HashSet<Vec<u8>>) -> bool {
        if allowlist.contains(v) || self.allow.iter().any(|a| a == v) {
            return true;
        }
        // Numeric values are compared without their separators: `4111 1111 1111 1111` is
        // the allowlisted `4111111111111111`.
        if self.validator.is_some_and(Validator::is_numeric) {
            let d: Vec<u8> = v.iter().copied().filter(u8::is_ascii_digit).collect();
            return allowlist.contains(&d) || self.allow.contains(&d);
        }
        false
    }
}

/// The value of a match: its `v` group (index `g`), or the whole match if the group did
/// not take part.
fn value_span(caps: &Captures, g: usize) -> Option<regex_automata::Span> {
    caps.get_group(g)
        .or_else(|| caps.get_match().map(|m| m.span()))
}

/// A detector's gate words (see [`Detector::gate_words`]).
fn gate_words<'a>(keywords: &'a [String], context: &'a Option<Context>) -> &'a [String] {
    match context {
        Some(ctx) if keywords.is_empty() && ctx.has_require => &ctx.require,
        _ => keywords,
    }
}

/// The bytes that separate the cells of a delimited table (`,`, `;`, tab, `|`).
pub(crate) fn is_table_delimiter(b: u8) -> bool {
    matches!(b, b',' | b';' | b'\t' | b'|')
}

/// Whether a value runs from the end of one table row into the next: `…,69.72` and
/// `50090-6474-20,…` are two cells, not one number split by a line break.
fn spans_rows(hay: &[u8], start: usize, end: usize) -> bool {
    let delimiter = |i: Option<usize>| {
        i.and_then(|i| hay.get(i))
            .is_some_and(|&b| is_table_delimiter(b))
    };
    memchr::memchr(b'\n', &hay[start..end]).is_some()
        && delimiter(start.checked_sub(1))
        && delimiter(Some(end))
}

/// How many lines above a table cell its header may be.
pub(crate) const HEADER_LINES: usize = 64;

/// For a value that is a whole cell of a delimited table (`,`, `;`, tab or `|`), the span of
/// its column's header: the same cell of the first line of the block of lines above that
/// have at least as many delimiters, within [`HEADER_LINES`]. `None` for anything else.
fn column_header(hay: &[u8], start: usize, end: usize) -> Option<std::ops::Range<usize>> {
    // The neighbours first: most candidates are not table cells, and this costs nothing
    // (a minified JSON body is one long line). A quoted cell: `"4260719024418"`.
    let quoted = start > 0 && end < hay.len() && hay[start - 1] == b'"' && hay[end] == b'"';
    let (s, e) = if quoted {
        (start - 1, end + 1)
    } else {
        (start, end)
    };
    let before = s.checked_sub(1).map(|i| hay[i]).filter(|&b| b != b'\n');
    let after = hay.get(e).copied().filter(|&b| b != b'\n' && b != b'\r');
    let delim = before
        .into_iter()
        .chain(after)
        .find(|&b| is_table_delimiter(b))?;
    if before.is_some_and(|b| b != delim) || after.is_some_and(|b| b != delim) {
        return None;
    }
    let line_start = memchr::memrchr(b'\n', &hay[..s]).map_or(0, |i| i + 1);
    let column = memchr::memchr_iter(delim, &hay[line_start..s]).count();
    let mut header = line_start;
    for _ in 0..HEADER_LINES {
        if header == 0 {
            break;
        }
        let above = memchr::memrchr(b'\n', &hay[..header - 1]).map_or(0, |i| i + 1);
        if memchr::memchr_iter(delim, &hay[above..header - 1]).count() < column.max(1) {
            break;
        }
        header = above;
    }
    if header == line_start {
        return None;
    }
    let header_end = memchr::memchr(b'\n', &hay[header..]).map_or(hay.len(), |i| header + i);
    let mut cell = header;
    for _ in 0..column {
        cell += memchr::memchr(delim, &hay[cell..header_end])? + 1;
    }
    let cell_end = memchr::memchr(delim, &hay[cell..header_end]).map_or(header_end, |i| cell + i);
    Some(cell..cell_end)
}

/// How every detector pattern is read: bytes, ASCII classes (`\d` is `[0-9]`, `\b` is an
/// ASCII word boundary), which keeps the lazy DFAs small and fast on any text.
pub(crate) fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

fn first_line(s: &str) -> String {
    // regex's errors draw the pattern over several lines; the last line says what is wrong.
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

/// Parses a pattern file's text.
pub(crate) fn parse_pattern_file(
    source: &str,
    text: &str,
) -> Result<Vec<DetectorSpec>, BuildError> {
    toml::from_str::<PatternFile>(text)
        .map(|f| f.detector)
        .map_err(|e| {
            BuildError::new(ErrorKind::Syntax {
                source: source.to_string(),
                message: e.to_string(),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_cell_has_its_column_header_as_context() {
        fn header<'t>(text: &'t str, value: &str) -> Option<&'t str> {
            let start = text.rfind(value).unwrap();
            column_header(text.as_bytes(), start, start + value.len()).map(|r| &text[r])
        }
        let csv = "Totals below.\npart,weight,ean\n300-1,21,4260719024418\n300-2,25,\"4260719024425\"\r\n";
        assert_eq!(header(csv, "4260719024418"), Some("ean"));
        assert_eq!(header(csv, "4260719024425"), Some("ean"));
        assert_eq!(header(csv, "21"), Some("weight"));
        assert_eq!(header("a\tb\nx\t4111", "4111"), Some("b"));
        // Not a whole cell, not in a table, or on the header line itself.
        assert_eq!(header(csv, "42607190"), None);
        assert_eq!(
            header("card 4111 1111 1111 1111 ok", "4111 1111 1111 1111"),
            None
        );
        assert_eq!(header("ean,4111\n", "4111"), None);
    }

    #[test]
    fn context_words_are_whole_words() {
        let spec = ContextSpec {
            window: 32,
            require: vec!["passport".into(), "date of birth".into()],
            boost: vec!["dob".into()],
            exclude: vec!["version".into(), "port".into()],
        };
        let ctx = Context::compile("t", spec).unwrap();
        let near = |text: &str| {
            let mut n = Near::default();
            ctx.scan(text.as_bytes(), 0..text.len(), &mut n);
            (n.require, n.boost, n.exclude)
        };
        assert_eq!(near("my Passport no"), (true, false, false));
        assert_eq!(near("passports"), (false, false, false));
        assert_eq!(near("Date of Birth: x"), (true, false, false));
        assert_eq!(near("xdob, versions"), (false, false, false));
        assert_eq!(near("dob version"), (false, true, true));
        // A word cut by the window's edge is not a whole word.
        let mut n = Near::default();
        ctx.scan(b"support", 3..7, &mut n);
        assert!(!n.exclude && !n.require);
    }
}
