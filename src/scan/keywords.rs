//! The keyword pass: every occurrence of every detector keyword, ASCII case-insensitively,
//! over every byte of every text.
//!
//! An automaton walks a text one dependent table load per byte, so one walk is bound by
//! the latency of that load (about 1.6 ns per byte here), not by the work. The pass
//! therefore cuts a text into [`STREAMS`] pieces and walks them in lock step: the loads
//! of different pieces do not depend on each other and overlap in the CPU. Measured over
//! the 4.2 MB benchmark corpus (see DESIGN.md, "Where scan time goes"), this takes the
//! pass from ~10 to ~6 ms.
//!
//! It is exact. A piece's walk starts in the start state `max_len - 1` bytes before the
//! piece, and reports only occurrences that end inside the piece. An occurrence ending
//! inside starts at most `max_len - 1` bytes before the piece, and an unanchored
//! Aho-Corasick walk reports every occurrence that starts at or after the walk's first
//! byte, so each piece reports exactly the occurrences that end in it.

use aho_corasick::Anchored;
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;

use super::error::BuildError;

/// How many pieces of a text are walked in lock step. Measured over the benchmark corpus
/// with the built-in keywords: one walk 10.3 ms (aho-corasick's own overlapping search),
/// two 8.6-9.4, three 8.3-8.6, four 8.3-8.6, six 9.2-9.4 (more walks than the CPU can
/// overlap add only their bookkeeping).
const STREAMS: usize = 3;

/// Texts whose pieces would be shorter than this are walked whole: the pieces' overlap
/// and the final walks would cost more than the lock step saves.
const MIN_PIECE: usize = 256;

pub(crate) struct Keywords {
    dfa: DFA,
    /// The keywords, for tests to search them with aho-corasick's own search.
    #[cfg(test)]
    keywords: Vec<String>,
}

impl Keywords {
    /// The automaton of `keywords`, which must be non-empty.
    pub(crate) fn build(keywords: &[&str]) -> Result<Keywords, BuildError> {
        debug_assert!(keywords.iter().all(|k| !k.is_empty()));
        // A full DFA: a few hundred short keywords make a small one (~1 MB for the
        // built-ins). No prefilter: with hundreds of case-insensitive keywords none
        // applies, and the walks below assume that only match states are special.
        let dfa = DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::Standard)
            .prefilter(false)
            .build(keywords)
            .map_err(|e| BuildError::detector("keywords", e.to_string()))?;
        Ok(Keywords {
            dfa,
            #[cfg(test)]
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
        })
    }

    /// Calls `each(keyword, start)` for every occurrence of every keyword in `hay`,
    /// overlapping ones included, in no particular order.
    pub(crate) fn occurrences(&self, hay: &[u8], mut each: impl FnMut(usize, usize)) {
        let dfa = &self.dfa;
        let start = match dfa.start_state(Anchored::No) {
            Ok(start) => start,
            // Not reached: the DFA is built for unanchored searches.
            Err(_) => return,
        };
        let overlap = dfa.max_pattern_len() - 1;
        let piece = hay.len() / STREAMS;
        if piece < MIN_PIECE.max(overlap) {
            self.walk(hay, 0..hay.len(), 0, start, &mut each);
            return;
        }
        // Walk `j` reports the occurrences ending in `(bounds[j], bounds[j + 1]]`, and
        // begins `overlap` bytes before `bounds[j]` (the first at 0).
        let bounds: [usize; STREAMS] = std::array::from_fn(|j| j * piece);
        let begin: [usize; STREAMS] = std::array::from_fn(|j| bounds[j].saturating_sub(overlap));
        let mut state = [start; STREAMS];
        // Every walk is at least `piece` bytes long: walk them that far together. Each
        // walk reads its own slice of `piece` bytes, which lets the compiler drop the
        // bounds checks of the hot loop.
        let pieces: [&[u8]; STREAMS] = std::array::from_fn(|j| &hay[begin[j]..begin[j] + piece]);
        // `i` indexes all the pieces at once: there is no one slice to iterate.
        #[allow(clippy::needless_range_loop)]
        for i in 0..piece {
            let mut special = false;
            for j in 0..STREAMS {
                state[j] = dfa.next_state(Anchored::No, state[j], pieces[j][i]);
                special |= dfa.is_special(state[j]);
            }
            if special {
                for j in 0..STREAMS {
                    let end = begin[j] + i + 1;
                    if end > bounds[j] {
                        self.report(state[j], end, &mut each);
                    }
                }
            }
        }
        // Then each the rest of its way.
        for j in 0..STREAMS {
            let to = bounds.get(j + 1).copied().unwrap_or(hay.len());
            self.walk(hay, begin[j] + piece..to, bounds[j], state[j], &mut each);
        }
    }

    /// Walks `hay[range]` from `state`, reporting the occurrences that end after `after`.
    fn walk(
        &self,
        hay: &[u8],
        range: std::ops::Range<usize>,
        after: usize,
        mut state: StateID,
        each: &mut impl FnMut(usize, usize),
    ) {
        let dfa = &self.dfa;
        let from = range.start;
        for (k, &b) in hay[range].iter().enumerate() {
            state = dfa.next_state(Anchored::No, state, b);
            let end = from + k + 1;
            if dfa.is_special(state) && end > after {
                self.report(state, end, each);
            }
        }
    }

    /// Reports the keywords that end at `end` if `state` is a match state.
    fn report(&self, state: StateID, end: usize, each: &mut impl FnMut(usize, usize)) {
        let dfa = &self.dfa;
        if !dfa.is_match(state) {
            return;
        }
        for k in 0..dfa.match_len(state) {
            let p = dfa.match_pattern(state, k);
            each(p.as_usize(), end - dfa.pattern_len(p));
        }
    }

    /// What [`occurrences`](Keywords::occurrences) must report, by aho-corasick's own
    /// overlapping search: the oracle for the walks.
    #[cfg(test)]
    pub(crate) fn occurrences_by_aho_corasick(
        &self,
        hay: &[u8],
        mut each: impl FnMut(usize, usize),
    ) {
        let ac = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&self.keywords)
            .expect("the keywords built a DFA");
        for m in ac.find_overlapping_iter(hay) {
            each(m.pattern().as_usize(), m.start());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WORDS: [&str; 8] = [
        "ghp_",
        "key",
        "ke",
        "password",
        "sk",
        "SK-",
        "y",
        "passport no",
    ];

    /// Every occurrence, by aho-corasick's own overlapping search, sorted.
    fn expected(keywords: &Keywords, hay: &[u8]) -> Vec<(usize, usize)> {
        let mut all = Vec::new();
        keywords.occurrences_by_aho_corasick(hay, |k, start| all.push((k, start)));
        all.sort_unstable();
        all
    }

    fn found(keywords: &Keywords, hay: &[u8]) -> Vec<(usize, usize)> {
        let mut all = Vec::new();
        keywords.occurrences(hay, |k, start| all.push((k, start)));
        all.sort_unstable();
        all
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The lock-step walks find what aho-corasick finds, for texts below, at and far
        /// above the length where a text is split, occurrences straddling the pieces'
        /// edges included.
        #[test]
        fn pieces_find_what_aho_corasick_finds(
            parts in proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(WORDS.to_vec()).prop_map(str::to_string),
                    "[a-zA-Z _-]{0,9}",
                    Just("PASSword".to_string()),
                ],
                0..400,
            ),
        ) {
            let keywords = Keywords::build(&WORDS).unwrap();
            let hay = parts.concat();
            prop_assert_eq!(found(&keywords, hay.as_bytes()), expected(&keywords, hay.as_bytes()));
        }
    }

    #[test]
    fn an_occurrence_on_every_edge_is_found_once() {
        let keywords = Keywords::build(&WORDS).unwrap();
        let piece = 3 * MIN_PIECE;
        for shift in 0..12 {
            let mut hay = vec![b'.'; STREAMS * piece];
            for j in 1..STREAMS {
                let at = j * piece - shift.min(j * piece);
                hay[at..at + "passport no".len()].copy_from_slice(b"passport no");
            }
            assert_eq!(
                found(&keywords, &hay),
                expected(&keywords, &hay),
                "shift {shift}"
            );
            // `passport no` holds no other keyword: one occurrence per edge.
            assert_eq!(found(&keywords, &hay).len(), STREAMS - 1, "shift {shift}");
        }
    }
}
