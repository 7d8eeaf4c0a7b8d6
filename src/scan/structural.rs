//! The shared pass over the structural detectors: those with no keyword to gate them
//! (emails, card and phone numbers, national ids, addresses).
//!
//! One lazy DFA holds every structural pattern and reports, in a single pass, each place
//! where some pattern's match ends. Each detector then runs only in windows before its
//! ends, which is exact: every match of the pattern ends at a reported end and starts no
//! earlier than the window's start, so each match lies whole in the window before its own
//! end; the windows are merged until disjoint, so no match starts between them, and a
//! search of the merged windows finds what a search of the whole text finds (see
//! DESIGN.md). A window starts `max_len` before its end for a pattern whose matches are
//! bounded in length, and, for an unbounded one (`email`, `(?: \d+)`), where an anchored
//! reverse search from the end finds the earliest start of a match ending there.

use std::ops::Range;
use std::panic::{RefUnwindSafe, UnwindSafe};

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::pool::Pool;
use regex_automata::{Anchored, Input, MatchKind, PatternID};

use super::detector::{REGEX_SIZE_LIMIT, syntax_config};
use super::error::BuildError;

/// The lazy DFA of the shared pass needs room: with regex's default 2 MB cache, the ~40
/// structural patterns of the time (25 today) thrashed it, and throughput fell from
/// hundreds of MB/s to a few (measured while building the scanner; see DESIGN.md).
const DFA_CACHE: usize = 32 << 20;

type CacheFn = Box<dyn Fn() -> Cache + Send + Sync + UnwindSafe + RefUnwindSafe>;

pub(crate) struct StructuralPass {
    dfa: DFA,
    /// Warm caches, one per concurrent scan: a cold cache rebuilds DFA states and costs
    /// many times a warm pass.
    caches: Pool<Cache, CacheFn>,
    /// For each pattern, its maximum match length, if bounded.
    max_len: Vec<Option<usize>>,
    /// The unbounded patterns reversed, for the start of their windows.
    starts: Option<Reverse>,
}

/// A reverse lazy DFA of the unbounded patterns, searched anchored at a match end with
/// `MatchKind::All`: it runs backwards until no pattern can continue and reports the
/// earliest offset at which some match ending there starts.
struct Reverse {
    dfa: DFA,
    caches: Pool<Cache, CacheFn>,
    /// For each structural pattern, its pattern in `dfa`, if unbounded.
    pattern: Vec<Option<PatternID>>,
}

/// One lazy DFA over `sources`, forward with a cache of [`DFA_CACHE`] for the pass, or
/// reversed with a start state per pattern (for anchored searches of one pattern) and a
/// smaller cache.
fn build_dfa(sources: &[&str], reverse: bool) -> Result<DFA, BuildError> {
    DFA::builder()
        .configure(
            DFA::config()
                .match_kind(MatchKind::All)
                .cache_capacity(if reverse { DFA_CACHE / 4 } else { DFA_CACHE })
                .starts_for_each_pattern(reverse)
                // A team pattern may use `(?u)\b`: the DFA then stops at the first
                // non-ASCII byte and the search falls back to whole texts.
                .unicode_word_boundary(true),
        )
        .syntax(syntax_config())
        // Byte mode, as the detectors' own regexes: in UTF-8 mode a pattern that can
        // match empty would make the DFA drop every end inside a multi-byte character.
        .thompson(
            thompson::Config::new()
                .utf8(false)
                .reverse(reverse)
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT * 8)),
        )
        .build_many(sources)
        .map_err(|e| BuildError::detector("structural-set", e.to_string()))
}

/// A pool of caches for `dfa`.
fn pool(dfa: &DFA) -> Pool<Cache, CacheFn> {
    let dfa = dfa.clone();
    Pool::new(Box::new(move || dfa.create_cache()))
}

impl StructuralPass {
    pub(crate) fn build(patterns: &[(&str, Option<usize>)]) -> Result<StructuralPass, BuildError> {
        let sources: Vec<&str> = patterns.iter().map(|(p, _)| *p).collect();
        let dfa = build_dfa(&sources, false)?;
        let unbounded: Vec<usize> = (0..patterns.len())
            .filter(|&p| patterns[p].1.is_none())
            .collect();
        let starts = if unbounded.is_empty() {
            None
        } else {
            let sources: Vec<&str> = unbounded.iter().map(|&p| patterns[p].0).collect();
            let dfa = build_dfa(&sources, true)?;
            let mut pattern = vec![None; patterns.len()];
            for (i, &p) in unbounded.iter().enumerate() {
                pattern[p] = Some(PatternID::must(i));
            }
            Some(Reverse {
                caches: pool(&dfa),
                dfa,
                pattern,
            })
        };
        Ok(StructuralPass {
            caches: pool(&dfa),
            dfa,
            max_len: patterns.iter().map(|(_, l)| *l).collect(),
            starts,
        })
    }

    /// For each pattern that has a match in `hay`, the spans its detector must search,
    /// as `(pattern, span)`, merged (disjoint per pattern, in no particular order).
    pub(crate) fn windows(&self, hay: &[u8], out: &mut Vec<(usize, Range<usize>)>) {
        let whole = |out: &mut Vec<(usize, Range<usize>)>| {
            out.extend((0..self.max_len.len()).map(|p| (p, 0..hay.len())));
        };
        // Per pattern, its merged windows so far, ends increasing. A window from a
        // reverse search may start before earlier ones: it swallows those it reaches.
        let mut merged: Vec<Vec<Range<usize>>> = vec![Vec::new(); self.max_len.len()];
        let mut cache = self.caches.get();
        let mut back = self.starts.as_ref().map(|r| r.caches.get());
        let mut add = |p: usize, end: usize| -> bool {
            let start = match (self.max_len[p], &self.starts, &mut back) {
                // A match ending here starts at most `len` before it.
                (Some(len), _, _) => end.saturating_sub(len),
                (None, Some(rev), Some(cache)) => match rev.earliest_start(cache, hay, p, end) {
                    Some(start) => start,
                    None => return false,
                },
                (None, _, _) => 0,
            };
            let windows = &mut merged[p];
            let mut w = start..end;
            while let Some(last) = windows.last()
                && w.start <= last.end
            {
                w.start = w.start.min(last.start);
                windows.pop();
            }
            windows.push(w);
            true
        };
        if !self.each_end(&mut cache, hay, &mut add) {
            // The DFA stopped (a Unicode word boundary met a non-ASCII byte): search
            // every pattern's whole text rather than miss a match.
            return whole(out);
        }
        for (p, windows) in merged.into_iter().enumerate() {
            out.extend(windows.into_iter().map(|w| (p, w)));
        }
    }

    /// Walks the DFA over `hay` and calls `each(pattern, end)` at every place where a
    /// match of some pattern ends, in order of `end`. `false` when the DFA stopped (a
    /// quit byte, or a cache that gave up) or `each` returned `false`.
    ///
    /// The walk is the library's overlapping search without its bookkeeping: it moves
    /// through untagged states with `next_state_untagged` and leaves the rest (states
    /// not yet built, matches, quit and dead states) to `next_state`, as the
    /// `next_state_untagged` example in `regex-automata` does. Over the benchmark corpus
    /// the pass cost 114 M instructions through `try_search_overlapping_fwd`, 73 M this
    /// way (callgrind; DESIGN.md, "Where scan time goes").
    fn each_end(
        &self,
        cache: &mut Cache,
        hay: &[u8],
        each: &mut impl FnMut(usize, usize) -> bool,
    ) -> bool {
        let dfa = &self.dfa;
        let Ok(mut sid) = dfa.start_state_forward(cache, &Input::new(hay)) else {
            return false;
        };
        // Matches are reported one byte late: a match state entered on the byte at
        // `at` holds the matches that end at `at`.
        let report = |cache: &Cache, sid, end, each: &mut dyn FnMut(usize, usize) -> bool| {
            (0..dfa.match_len(cache, sid))
                .all(|i| each(dfa.match_pattern(cache, sid, i).as_usize(), end))
        };
        let mut at = 0;
        while at < hay.len() {
            if !sid.is_tagged() {
                let next = dfa.next_state_untagged(cache, sid, hay[at]);
                if !next.is_tagged() {
                    sid = next;
                    at += 1;
                    continue;
                }
            }
            let Ok(next) = dfa.next_state(cache, sid, hay[at]) else {
                return false;
            };
            sid = next;
            if sid.is_match() {
                if !report(cache, sid, at, each) {
                    return false;
                }
            } else if sid.is_quit() {
                return false;
            } else if sid.is_dead() {
                return true;
            }
            at += 1;
        }
        match dfa.next_eoi_state(cache, sid) {
            Ok(sid) => !sid.is_match() || report(cache, sid, hay.len(), each),
            Err(_) => false,
        }
    }
}

impl Reverse {
    /// The earliest start of a match of structural pattern `p` that ends at `end`, or
    /// `None` when the search cannot say (the DFA stopped on a non-ASCII byte).
    fn earliest_start(&self, cache: &mut Cache, hay: &[u8], p: usize, end: usize) -> Option<usize> {
        let pid = self.pattern[p]?;
        let input = Input::new(hay)
            .range(..end)
            .anchored(Anchored::Pattern(pid));
        // The forward pass saw a match end here, so the reverse one finds its start.
        self.dfa
            .try_search_rev(cache, &input)
            .ok()
            .flatten()
            .map(|m| m.offset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Patterns that end at the end of the text, match empty, overlap one another, and
    /// stop the DFA on a non-ASCII byte.
    const PATTERNS: [&str; 5] = [
        r"[a-z0-9.]+@[a-z0-9]+\.[a-z]{2,}",
        r"(?:^|[^0-9])\d{3}(?:$|[^0-9])",
        r"\d+$",
        r"\bx?\b",
        r"(?u)\bKD-\d{2}",
    ];

    /// Every `(pattern, end)` the library's overlapping search reports, or `None` when
    /// it stops.
    fn library_ends(pass: &StructuralPass, hay: &[u8]) -> Option<Vec<(usize, usize)>> {
        let mut cache = pass.dfa.create_cache();
        let input = Input::new(hay);
        let mut state = regex_automata::hybrid::dfa::OverlappingState::start();
        let mut ends = Vec::new();
        loop {
            pass.dfa
                .try_search_overlapping_fwd(&mut cache, &input, &mut state)
                .ok()?;
            let Some(m) = state.get_match() else {
                return Some(ends);
            };
            ends.push((m.pattern().as_usize(), m.offset()));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(500))]
        /// The hand-written walk reports what the library's overlapping search reports.
        #[test]
        fn each_end_is_the_overlapping_search(
            text in "[0-9a-z@.: \nKDé-]{0,80}",
            with_unicode in proptest::bool::ANY,
        ) {
            let patterns: Vec<(&str, Option<usize>)> = PATTERNS[..if with_unicode { 5 } else { 4 }]
                .iter()
                .map(|p| (*p, None))
                .collect();
            let pass = StructuralPass::build(&patterns).unwrap();
            let mut cache = pass.dfa.create_cache();
            let mut ends = Vec::new();
            let walked = pass.each_end(&mut cache, text.as_bytes(), &mut |p, end| {
                ends.push((p, end));
                true
            });
            let expected = library_ends(&pass, text.as_bytes());
            proptest::prop_assert_eq!(walked.then_some(ends), expected);
        }
    }
}
