//! Numbers read out as words, as speech-to-text and people taking notes write them.
//!
//! A call-centre transcript holds `five one eight seven, four three two six, ...` where a
//! form holds a card number, `G B one zero, P S P H, ...` for an IBAN, and support notes
//! hold `44 dot 78 dot 38 dot 204` for an address. The view reads such a run as the
//! number it spells (`5187 4326 ...`, `GB10PSPH...`, `44.78.38.204`), every word a unit
//! that a finding maps back to, so the detectors find it as they find a typed one.
//!
//! What counts as a run is kept narrow, because digit words are everyday words:
//! - *Spoken digits*: digit words (`zero`, `oh`, `one` ... `nine`, any case, also
//!   `double five`, `triple oh`) and single capital letters, joined by a space or a dash
//!   within a group and by a pause (`, `, `; `, ` - `, ` ... `) between groups. Every group holds at
//!   least two of them (a count, `one, two, three`, is not a number) and the run at least
//!   [`MIN_DIGITS`] digits. Groups stay apart (`5187 4326`), as people read out the
//!   groups a number is printed in; a run with letters (an IBAN, a NINO) reads as one
//!   word, because those are printed compact.
//! - *A dictated address*: exactly four groups of one to three digits, typed or spoken,
//!   joined by ` dot `.
//!
//! Runs are found only in texts where the keyword pass saw enough of these words as whole
//! words ([`Tally`]); the pass counts every word a run could use, so no run is missed.

use super::detector::is_whole_word;

/// Digits a run of spoken digits must spell: short runs are ordinary speech
/// (`one two`, `oh nine`).
pub(crate) const MIN_DIGITS: usize = 6;

/// The words the keyword pass counts for [`Tally`], each with how many digits it can add
/// to a run (`dot` adds none; it joins the groups of an address).
pub(crate) const WORDS: [(&str, usize); 14] = [
    ("zero", 1),
    ("oh", 1),
    ("one", 1),
    ("two", 1),
    ("three", 1),
    ("four", 1),
    ("five", 1),
    ("six", 1),
    ("seven", 1),
    ("eight", 1),
    ("nine", 1),
    // `double five` is two digits from two words; `triple five` is three.
    ("double", 1),
    ("triple", 2),
    ("dot", 0),
];

/// Bytes a run allows between one digit word and the next: room for the letters of a
/// bank code said one by one (`, P S P H, ` is 11).
pub(crate) const GAP: usize = 16;

/// The whole [`WORDS`] of a text that a run could use, as the keyword pass finds them
/// (in any order). A text with no [`GAP`]-linked streak of them worth [`MIN_DIGITS`]
/// digits, and fewer than three `dot`s, holds no run.
#[derive(Default)]
pub(crate) struct Tally {
    /// (start, end, digits) of each whole digit word, `double` and `triple`.
    digit_words: Vec<(usize, usize, usize)>,
    dots: usize,
}

impl Tally {
    /// Counts the `word`-th of [`WORDS`], found at `hay[at..at + len]`, if it is a whole
    /// word there.
    pub(crate) fn count(&mut self, word: usize, hay: &[u8], at: usize, len: usize) {
        if is_whole_word(hay, at, at + len) {
            match WORDS[word].1 {
                0 => self.dots += 1,
                n => self.digit_words.push((at, at + len, n)),
            }
        }
    }

    /// Whether the text may hold a run.
    pub(crate) fn may_hold_a_run(&mut self) -> bool {
        if self.dots >= 3 {
            return true;
        }
        if self.digit_words.len() < 2 {
            return false;
        }
        self.digit_words.sort_unstable();
        let (mut streak, mut last_end) = (0, usize::MAX);
        for &(start, end, n) in &self.digit_words {
            let linked = last_end != usize::MAX && start <= last_end + GAP;
            streak = if linked { streak + n } else { n };
            if streak >= MIN_DIGITS {
                return true;
            }
            last_end = end;
        }
        false
    }
}

/// A piece of the text that the view replaces: `start..end` reads as `out`. (No `Debug`:
/// `out` is digits of the prompt.)
pub(crate) struct Unit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) out: &'static [u8],
}

/// The units of every run in `text`, in order.
pub(crate) fn units(text: &[u8]) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if !is_word(text[i]) || (i > 0 && is_word(text[i - 1])) {
            i += 1;
            continue;
        }
        let chain = Chain::read(text, i);
        let end = chain.tokens.last().map_or(i + 1, |t| t.end);
        chain.units(&mut units);
        i = end;
    }
    units
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A digit word: the digit, and how many times it is said (`double`, `triple`).
    Digit(u8, u8),
    /// A single capital letter.
    Letter,
    /// Typed digits, one to three (an address's group).
    Typed,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sep {
    /// A space or dash within a group: dropped.
    Tight,
    /// A pause between groups.
    Pause,
    /// ` dot `, between the groups of an address.
    Dot,
}

struct Spanned<T> {
    start: usize,
    end: usize,
    what: T,
}

/// Tokens joined by separators: `seps[i]` lies between `tokens[i]` and `tokens[i + 1]`.
struct Chain {
    tokens: Vec<Spanned<Token>>,
    seps: Vec<Spanned<Sep>>,
}

impl Chain {
    fn read(text: &[u8], at: usize) -> Chain {
        let mut chain = Chain {
            tokens: Vec::new(),
            seps: Vec::new(),
        };
        let Some(first) = token(text, at) else {
            return chain;
        };
        chain.tokens.push(first);
        loop {
            let end = chain.tokens.last().expect("one token at least").end;
            let Some(sep) = separator(text, end) else {
                break;
            };
            let Some(next) = token(text, sep.end) else {
                break;
            };
            chain.seps.push(sep);
            chain.tokens.push(next);
        }
        chain
    }

    /// Appends the units of the runs in this chain.
    fn units(&self, out: &mut Vec<Unit>) {
        // Groups: ranges of token indices between separators that are not tight.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut from = 0;
        for (i, sep) in self.seps.iter().enumerate() {
            if sep.what != Sep::Tight {
                groups.push((from, i + 1));
                from = i + 1;
            }
        }
        if !self.tokens.is_empty() {
            groups.push((from, self.tokens.len()));
        }
        let mut g = 0;
        while g < groups.len() {
            let taken = self
                .address(&groups[g..], out)
                .or_else(|| self.spoken(&groups[g..], out));
            g += taken.unwrap_or(1);
        }
    }

    /// Four groups of one to three digits joined by ` dot `, from the first of `groups`:
    /// how many groups it takes.
    fn address(&self, groups: &[(usize, usize)], out: &mut Vec<Unit>) -> Option<usize> {
        let four = groups.get(..4)?;
        let octet = |&(a, b): &(usize, usize)| {
            let tokens = &self.tokens[a..b];
            match tokens {
                [t] if t.what == Token::Typed => true,
                _ => {
                    tokens.len() <= 3 && tokens.iter().all(|t| matches!(t.what, Token::Digit(_, 1)))
                }
            }
        };
        let dotted = four[1..]
            .iter()
            .all(|&(a, _)| self.seps[a - 1].what == Sep::Dot);
        if !(dotted && four.iter().all(octet)) {
            return None;
        }
        let (first, last) = (four[0].0, four[3].1);
        self.emit(first, last, b".", out);
        Some(4)
    }

    /// The longest run of spoken digits from the first of `groups`: how many groups it
    /// takes.
    fn spoken(&self, groups: &[(usize, usize)], out: &mut Vec<Unit>) -> Option<usize> {
        let spoken = |&(a, b): &(usize, usize)| {
            b - a >= 2 && self.tokens[a..b].iter().all(|t| t.what != Token::Typed)
        };
        let mut n = groups.iter().take_while(|g| spoken(g)).count();
        // Pauses only: a ` dot ` ends the run.
        if let Some(k) = (1..n).find(|&k| self.seps[groups[k].0 - 1].what != Sep::Pause) {
            n = k;
        }
        // And no more than `GAP` bytes between digits: the group that breaks it ends it.
        let mut last_digit: Option<usize> = None;
        for (k, &(a, b)) in groups[..n].iter().enumerate() {
            let mut broken = false;
            for t in &self.tokens[a..b] {
                if let Token::Digit(..) = t.what {
                    broken |= last_digit.is_some_and(|end| t.start > end + GAP);
                    last_digit = Some(t.end);
                }
            }
            if broken {
                n = k;
                break;
            }
        }
        let (first, last) = (groups.first()?.0, groups[n.checked_sub(1)?].1);
        let tokens = &self.tokens[first..last];
        let digits: usize = tokens
            .iter()
            .map(|t| match t.what {
                Token::Digit(_, n) => n as usize,
                _ => 0,
            })
            .sum();
        if digits < MIN_DIGITS {
            return None;
        }
        let letters = tokens.iter().any(|t| t.what == Token::Letter);
        self.emit(first, last, if letters { b"" } else { b" " }, out);
        Some(n)
    }

    /// The units of `tokens[first..last]` and the separators between them, a group
    /// separator read as `between`.
    fn emit(&self, first: usize, last: usize, between: &'static [u8], out: &mut Vec<Unit>) {
        for i in first..last {
            let t = &self.tokens[i];
            if let Token::Digit(d, n) = t.what {
                let at = 3 * d as usize;
                out.push(Unit {
                    start: t.start,
                    end: t.end,
                    out: &SAID[at..at + n as usize],
                });
            }
            if i + 1 < last {
                let sep = &self.seps[i];
                out.push(Unit {
                    start: sep.start,
                    end: sep.end,
                    out: if sep.what == Sep::Tight { b"" } else { between },
                });
            }
        }
    }
}

/// Each digit three times: `SAID[3 * d..][..n]` is digit `d` said `n` times.
const SAID: &[u8; 30] = b"000111222333444555666777888999";

/// The digit a word says: the first eleven of [`WORDS`], `oh` beside `zero`.
fn digit_word(word: &[u8]) -> Option<u8> {
    let i = WORDS[..11]
        .iter()
        .position(|(w, _)| w.as_bytes().eq_ignore_ascii_case(word))?;
    Some(i.saturating_sub(1) as u8)
}

/// The token that starts at `at`, a word boundary, if any.
fn token(text: &[u8], at: usize) -> Option<Spanned<Token>> {
    let word_end = |from: usize| {
        from + text[from..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count()
    };
    let ends_word = |i: usize| text.get(i).is_none_or(|&b| !is_word(b));
    let first = *text.get(at)?;
    let (what, end) = if first.is_ascii_digit() {
        let end = at + text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        (end - at <= 3).then_some((Token::Typed, end))?
    } else {
        let end = word_end(at);
        let word = &text[at..end];
        if let Some(d) = digit_word(word) {
            (Token::Digit(d, 1), end)
        } else if word.len() == 1 && first.is_ascii_uppercase() {
            (Token::Letter, end)
        } else {
            let n = if word.eq_ignore_ascii_case(b"double") {
                2
            } else if word.eq_ignore_ascii_case(b"triple") {
                3
            } else {
                return None;
            };
            if text.get(end) != Some(&b' ') {
                return None;
            }
            let said = word_end(end + 1);
            (Token::Digit(digit_word(&text[end + 1..said])?, n), said)
        }
    };
    ends_word(end).then_some(Spanned {
        start: at,
        end,
        what,
    })
}

/// The separator that starts at `at`, right after a token, if any.
fn separator(text: &[u8], at: usize) -> Option<Spanned<Sep>> {
    let rest = text.get(at..)?;
    let (what, len) = match rest {
        // Speech-to-text marks a longer pause with an ellipsis.
        [b' ', b'.', b'.', b'.', b' ', ..] => (Sep::Pause, 5),
        [b'.', b'.', b'.', b' ', ..] => (Sep::Pause, 4),
        [b' ', b'-', b' ', ..] => (Sep::Pause, 3),
        [b',' | b';', b' ', ..] => (Sep::Pause, 2),
        [b',' | b';', ..] => (Sep::Pause, 1),
        [b' ', d, o, t, b' ', ..] if [*d, *o, *t].eq_ignore_ascii_case(b"dot") => (Sep::Dot, 5),
        [b' ' | b'-', ..] => (Sep::Tight, 1),
        _ => return None,
    };
    Some(Spanned {
        start: at,
        end: at + len,
        what,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Text dense with digit words, letters and typed digits, each followed by a
    /// separator or none, and things that fold beside them (an escape, a zero-width
    /// space, a fullwidth digit).
    pub(crate) fn speech() -> impl Strategy<Value = String> {
        let digit = proptest::sample::select(vec![
            "zero",
            "oh",
            "one",
            "Two",
            "three",
            "four",
            "FIVE",
            "six",
            "seven",
            "eight",
            "nine",
            "double one",
            "triple oh",
        ]);
        let other = proptest::sample::select(vec![
            "double",
            "ten",
            "G",
            "B",
            "P S P H",
            "A B C D E F G H",
            "a",
            "4",
            "17",
            "203",
            "2024",
            "\\u0041",
            "\u{200B}",
            "\u{FF14}",
            "\u{E9}",
        ]);
        let tight = proptest::sample::select(vec![" ", "-"]);
        let other_sep = proptest::sample::select(vec![
            ", ", ",", "; ", " - ", " ... ", "... ", " dot ", " DOT ", "", ".", "\n", "\\u0020",
        ]);
        let word = prop_oneof![4 => digit, 1 => other];
        let sep = prop_oneof![3 => tight, 2 => other_sep];
        proptest::collection::vec((word, sep), 0..14)
            .prop_map(|p| p.into_iter().flat_map(|(w, s)| [w, s]).collect())
    }

    /// What the keyword pass counts: every occurrence of each word, in any case.
    fn tally(text: &str) -> Tally {
        let mut tally = Tally::default();
        let lower = text.to_ascii_lowercase();
        for (k, (word, _)) in WORDS.iter().enumerate() {
            for (at, _) in lower.match_indices(word) {
                tally.count(k, text.as_bytes(), at, word.len());
            }
        }
        tally
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2000))]
        /// A text whose tally says it holds no run holds none.
        #[test]
        fn the_tally_bounds_the_runs(text in speech()) {
            if !tally(&text).may_hold_a_run() {
                prop_assert!(units(text.as_bytes()).is_empty());
            }
        }
    }

    /// The text with every unit replaced.
    fn read(text: &str) -> String {
        let mut out = Vec::new();
        let mut at = 0;
        for u in units(text.as_bytes()) {
            out.extend_from_slice(&text.as_bytes()[at..u.start]);
            out.extend_from_slice(u.out);
            at = u.end;
        }
        out.extend_from_slice(&text.as_bytes()[at..]);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn reads_numbers_said_in_groups() {
        for (said, read_as) in [
            (
                "the card number is five one eight seven, four three two six, one eight six seven, five one two seven",
                "the card number is 5187 4326 1867 5127",
            ),
            (
                "yeah it's five eight zero, three zero, eight three zero eight",
                "yeah it's 580 30 8308",
            ),
            (
                "it's seven two five, nine seven zero, one one eight oh.",
                "it's 725 970 1180.",
            ),
            (
                "Call Six-Nine-Four - double two three; triple oh one",
                "Call 694 223 0001",
            ),
            (
                "the IBAN you gave us, G B one zero, P S P H, zero two nine eight eight one, nine three, please",
                "the IBAN you gave us, GB10PSPH02988193, please",
            ),
            (
                "address is 44 dot 78 dot 38 dot 204 according to",
                "address is 44.78.38.204 according to",
            ),
            (
                "it's two one seven dot nine two dot 3 DOT oh",
                "it's 217.92.3.0",
            ),
            (
                "USER: four one zero ... eight five... seven five one nine",
                "USER: 410 85 7519",
            ),
        ] {
            assert_eq!(read(said), read_as, "{said:?}");
        }
    }

    #[test]
    fn leaves_ordinary_speech() {
        for text in [
            "oh nine twenty seven",
            "one, two, three, four, five, six, seven",
            "one two three four five",
            "I have one or two ideas, three maybe",
            "someone phoned, done",
            "1 dot 2 dot 3",
            "1 dot 2 dot 3 dot 4444",
            "version 1.2.3 dot release",
            "twenty one, thirty two, forty three",
        ] {
            assert_eq!(read(text), text, "{text:?}");
        }
    }

    #[test]
    fn letters_between_digits_end_a_run_past_the_gap() {
        let near = "one two three, P S P H, four five six";
        assert_eq!(read(near), "123PSPH456");
        assert!(tally(near).may_hold_a_run());
        let far = "one two three, A B C D E F G H, four five six";
        assert_eq!(read(far), far);
        assert!(!tally(far).may_hold_a_run());
    }

    #[test]
    fn a_count_between_groups_ends_the_run() {
        assert_eq!(
            read("one, five five five one two one two, two"),
            "one, 5551212, two"
        );
    }

    #[test]
    fn the_tally_counts_what_runs_use() {
        let text = "x triple five, double oh, five; A B dot 1 dot 2 dot 3 dot 4";
        let mut tally = tally(text);
        let digits: usize = tally.digit_words.iter().map(|w| w.2).sum();
        assert_eq!((digits, tally.dots), (2 + 1 + 1 + 1 + 1, 4));
        assert!(tally.may_hold_a_run());
        assert!(!units(text.as_bytes()).is_empty());
    }
}
