//! The shared pass over the structural detectors: those with no keyword to gate them
//! (emails, card and phone numbers, national ids, addresses).
//!
//! One lazy DFA holds every structural pattern and reports, in a single pass, each place
//! where some pattern's match ends. A detector whose matches are bounded in length then
//! runs only in windows around its ends, which is exact: every match of the pattern ends
//! at a reported end and starts within its maximum length before it, so each match lies
//! whole in the window before its own end, and no match starts between windows: a search
//! of the merged windows finds what a search of the whole text finds (see DESIGN.md). A detector with
//! unbounded matches runs over the whole text when it has any end.

use std::ops::Range;
use std::panic::{RefUnwindSafe, UnwindSafe};

use regex_automata::hybrid::dfa::{Cache, DFA, OverlappingState};
use regex_automata::nfa::thompson;
use regex_automata::util::pool::Pool;
use regex_automata::{Input, MatchKind};

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
}

impl StructuralPass {
    pub(crate) fn build(patterns: &[(&str, Option<usize>)]) -> Result<StructuralPass, BuildError> {
        let sources: Vec<&str> = patterns.iter().map(|(p, _)| *p).collect();
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .cache_capacity(DFA_CACHE)
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
                    .nfa_size_limit(Some(REGEX_SIZE_LIMIT * 8)),
            )
            .build_many(&sources)
            .map_err(|e| BuildError::detector("structural-set", e.to_string()))?;
        let for_pool = dfa.clone();
        let create: CacheFn = Box::new(move || for_pool.create_cache());
        Ok(StructuralPass {
            dfa,
            caches: Pool::new(create),
            max_len: patterns.iter().map(|(_, l)| *l).collect(),
        })
    }

    /// For each pattern that has a match in `hay`, the spans its detector must search,
    /// as `(pattern, span)`, merged (disjoint per pattern, in no particular order).
    pub(crate) fn windows(&self, hay: &[u8], out: &mut Vec<(usize, Range<usize>)>) {
        // Ends arrive in increasing order: one open window per pattern, merged as they
        // come, so memory stays per pattern, not per end.
        let mut open: Vec<Option<Range<usize>>> = vec![None; self.max_len.len()];
        let mut cache = self.caches.get();
        let input = Input::new(hay);
        let mut state = OverlappingState::start();
        loop {
            if self
                .dfa
                .try_search_overlapping_fwd(&mut cache, &input, &mut state)
                .is_err()
            {
                // The DFA stopped (a Unicode word boundary met a non-ASCII byte): search
                // every pattern's whole text rather than miss a match.
                out.extend((0..self.max_len.len()).map(|p| (p, 0..hay.len())));
                return;
            }
            let Some(m) = state.get_match() else { break };
            let (p, end) = (m.pattern().as_usize(), m.offset());
            // A match ending here starts at most `len` before it; unbounded: everything.
            let w = match self.max_len[p] {
                Some(len) => end.saturating_sub(len)..end,
                None => 0..hay.len(),
            };
            open[p] = match open[p].take() {
                Some(c) if w.start <= c.end => Some(c.start..w.end.max(c.end)),
                Some(c) => {
                    out.push((p, c));
                    Some(w)
                }
                None => Some(w),
            };
        }
        out.extend(
            open.into_iter()
                .enumerate()
                .filter_map(|(p, w)| w.map(|w| (p, w))),
        );
    }
}
