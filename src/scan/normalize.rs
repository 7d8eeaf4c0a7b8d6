//! The normalised view of a text that detectors run on, with an exact map back.
//!
//! People paste values in forms that defeat naive patterns: fullwidth digits, zero-width
//! spaces inside an email, Arabic-Indic digits, `jane\u0040acme.io` from a JSON log,
//! `jane%40acme.io` from a URL, `&#64;` from HTML, `185[.]94[.]17[.]203` from a threat
//! report. Detectors are written for plain ASCII,
//! so the scanner first builds a view in which each such unit is replaced by what it
//! stands for, and remembers for every byte of the view which bytes of the original
//! produced it. Spans found in the view map back to whole units of the original, so a
//! finding always starts and ends on a char boundary of the text that was scanned.
//!
//! The view is built only when the text holds something to fold: plain text (ASCII or not)
//! is scanned in place, without a copy. This is a hand-written subset of NFKC (fullwidth
//! and mathematical alphanumeric forms, non-ASCII decimal digits, spaces, dashes, format
//! characters) rather than full Unicode normalisation: full NFKC changes far more than the
//! detectors care about, costs a table dependency and a slower pass, and maps
//! many-to-many, which makes exact offsets harder to keep.

use super::spoken::{self, Unit};
use std::borrow::Cow;

/// A text as the detectors see it.
pub(crate) struct View<'a> {
    original: &'a str,
    folded: Option<Folded>,
    /// Numbers read out as words ([`spoken`]), read over the folded bytes: a second
    /// stage, built only when a text may hold them.
    spoken: Option<Folded>,
}

struct Folded {
    bytes: Vec<u8>,
    /// Where the bytes come from, as runs in view order (the first at view offset 0 when
    /// there are bytes). Most of a folded text is copied as it is, so a map per byte
    /// (8 bytes for each byte of text, written one by one) cost more than the rest of the
    /// fold; a run per copied stretch or folded unit costs a binary search per finding.
    runs: Vec<Run>,
}

/// Bytes of the view from `view` up to the next run's: copied from the original from
/// `orig` on (`unit_end: None`), or all standing for the one unit `orig..unit_end` (an
/// escape, a folded character, a defanged dot).
struct Run {
    view: u32,
    orig: u32,
    unit_end: Option<u32>,
}

impl Folded {
    /// Copies `text[range]` as it is.
    fn copy(&mut self, text: &[u8], range: std::ops::Range<usize>) {
        if range.is_empty() {
            return;
        }
        let continues = self.runs.last().is_some_and(|r| {
            r.unit_end.is_none()
                && r.orig as usize + (self.bytes.len() - r.view as usize) == range.start
        });
        if !continues {
            self.runs.push(Run {
                view: self.bytes.len() as u32,
                orig: range.start as u32,
                unit_end: None,
            });
        }
        self.bytes.extend_from_slice(&text[range]);
    }

    /// Appends what the char `c`, read from `text[range]` (the char itself or an escape
    /// for it), becomes in the view.
    fn push_char(&mut self, text: &[u8], c: char, range: std::ops::Range<usize>) {
        let mut buf = [0u8; 4];
        let out: &[u8] = match fold_char(c) {
            Fold::Drop => return,
            Fold::To(ascii) => {
                buf[0] = ascii;
                &buf[..1]
            }
            Fold::Keep => c.encode_utf8(&mut buf).as_bytes(),
        };
        if text[range.clone()] == *out {
            return self.copy(text, range);
        }
        self.push_unit(range, out);
    }

    /// Copies `text` with each of `units` (in order, apart) replaced.
    fn with_units(text: &[u8], units: &[Unit]) -> Folded {
        let mut f = Folded {
            bytes: Vec::with_capacity(text.len()),
            runs: Vec::new(),
        };
        let mut at = 0;
        for u in units {
            f.copy(text, at..u.start);
            f.push_unit(u.start..u.end, u.out);
            at = u.end;
        }
        f.copy(text, at..text.len());
        f
    }

    /// Appends `out`, which stands for the unit `range` of the text (nothing, for a unit
    /// the view drops).
    fn push_unit(&mut self, range: std::ops::Range<usize>, out: &[u8]) {
        if out.is_empty() {
            return;
        }
        self.runs.push(Run {
            view: self.bytes.len() as u32,
            orig: range.start as u32,
            unit_end: Some(range.end as u32),
        });
        self.bytes.extend_from_slice(out);
    }

    /// The span of the text that the view's `start..end` came from; a point near it for
    /// an empty span (at `len`, the text's length, past the end).
    fn span(&self, start: usize, end: usize, len: usize) -> (usize, usize) {
        if start < end {
            (self.source(start).0, self.source(end - 1).1)
        } else {
            let at = if start < self.bytes.len() {
                self.source(start).0
            } else {
                len
            };
            (at, at)
        }
    }

    /// The original span of the unit that view byte `v` came from.
    fn source(&self, v: usize) -> (usize, usize) {
        let run = &self.runs[self.runs.partition_point(|r| r.view as usize <= v) - 1];
        match run.unit_end {
            None => {
                let at = run.orig as usize + (v - run.view as usize);
                (at, at + 1)
            }
            Some(end) => (run.orig as usize, end as usize),
        }
    }
}

impl<'a> View<'a> {
    pub(crate) fn new(original: &'a str) -> View<'a> {
        // Offsets are kept as u32 to halve the map; texts beyond 4 GiB are scanned as they
        // are (the middleware's body limit is far below that).
        let folded = if original.len() < u32::MAX as usize {
            first_foldable(original).map(|at| fold_from(original, at))
        } else {
            None
        };
        View {
            original,
            folded,
            spoken: None,
        }
    }

    /// Reads numbers said as words in the view as the numbers they spell (see
    /// [`spoken`]): whether the view changed.
    pub(crate) fn read_spoken(&mut self) -> bool {
        if self.spoken.is_some() {
            return false;
        }
        let units = spoken::units(self.folded_bytes());
        if units.is_empty() {
            return false;
        }
        self.spoken = Some(Folded::with_units(self.folded_bytes(), &units));
        true
    }

    /// The bytes the detectors run on.
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.spoken {
            Some(f) => &f.bytes,
            None => self.folded_bytes(),
        }
    }

    /// The bytes of the first stage.
    fn folded_bytes(&self) -> &[u8] {
        match &self.folded {
            Some(f) => &f.bytes,
            None => self.original.as_bytes(),
        }
    }

    /// Whether the view differs from the original text.
    #[cfg(test)]
    pub(crate) fn is_folded(&self) -> bool {
        self.folded.is_some()
    }

    /// Maps a span of the view back to a span of the original text, widened to char
    /// boundaries. (An empty span, which no finding has, maps to a point near it.)
    pub(crate) fn to_original(&self, start: usize, end: usize) -> (usize, usize) {
        let (s, e) = match &self.spoken {
            Some(f) => f.span(start, end, self.folded_bytes().len()),
            None => (start, end),
        };
        let (s, e) = match &self.folded {
            Some(f) => f.span(s, e, self.original.len()),
            None => (s, e),
        };
        (
            floor_boundary(self.original, s),
            ceil_boundary(self.original, e),
        )
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// The offset of the first unit that folds to something else, if any.
fn first_foldable(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let escape =
        memchr::memchr3_iter(b'\\', b'%', b'&', bytes).find(|&i| decode_escape(text, i).is_some());
    let defanged = memchr::memchr3_iter(b'[', b'(', b'{', bytes).find(|&i| defanged_dot(text, i));
    // Most line breaks have neither a digit nor a separator after them: checked first.
    let broken = memchr::memchr_iter(b'\n', bytes)
        .filter(|&i| {
            let next = bytes.get(i + 1).copied().unwrap_or(b'\n');
            next.is_ascii_digit() || SEPARATOR[next as usize]
        })
        .map(|i| {
            if i > 0 && bytes[i - 1] == b'\r' {
                i - 1
            } else {
                i
            }
        })
        .find(|&i| number_break(bytes, i).is_some());
    let escape = [escape, defanged, broken].into_iter().flatten().min();
    let limit = escape.unwrap_or(bytes.len());
    if !bytes[..limit].is_ascii() {
        let first = bytes[..limit]
            .iter()
            .position(|&b| b >= 0x80)
            .unwrap_or(limit);
        for (i, c) in text[first..limit].char_indices() {
            if !c.is_ascii() && fold_char(c) != Fold::Keep {
                return Some(first + i);
            }
        }
    }
    escape
}

/// Bytes at which something to fold may start: the openers of defanged dots, escapes,
/// and every byte of a non-ASCII char. Everything else is copied in stretches.
const MAY_FOLD: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0x80;
    while b < 256 {
        table[b] = true;
        b += 1;
    }
    table[b'[' as usize] = true;
    table[b'(' as usize] = true;
    table[b'{' as usize] = true;
    table[b'\\' as usize] = true;
    table[b'%' as usize] = true;
    table[b'&' as usize] = true;
    table[b'\r' as usize] = true;
    table[b'\n' as usize] = true;
    table
};

fn fold_from(text: &str, at: usize) -> Folded {
    let raw = text.as_bytes();
    let mut f = Folded {
        bytes: Vec::with_capacity(raw.len()),
        runs: Vec::new(),
    };
    // What is copied as it is accumulates from `kept` and is copied in one stretch
    // before the next unit that changes (a char that folds, an escape, a defanged dot, a
    // line break inside a number): the runs are the same as copying each piece (copies
    // that continue one another join one run), and a text in another script no longer
    // costs a call per char.
    let mut kept = 0;
    let mut i = at;
    while i < raw.len() {
        i = raw[i..]
            .iter()
            .position(|&b| MAY_FOLD[b as usize])
            .map_or(raw.len(), |n| i + n);
        let Some(&b) = raw.get(i) else { break };
        if matches!(b, b'[' | b'(' | b'{') && defanged_dot(text, i) {
            f.copy(raw, kept..i);
            f.push_char(raw, '.', i..i + 3);
            i += 3;
            kept = i;
        } else if let Some((c, len)) = matches!(b, b'\\' | b'%' | b'&')
            .then(|| decode_escape(text, i))
            .flatten()
        {
            f.copy(raw, kept..i);
            f.push_char(raw, c, i..i + len);
            i += len;
            kept = i;
        } else if let Some(len) = matches!(b, b'\r' | b'\n')
            .then(|| number_break(raw, i))
            .flatten()
        {
            f.copy(raw, kept..i);
            i += len;
            kept = i;
        } else if b < 0x80 {
            i += 1;
        } else {
            let c = text[i..].chars().next().expect("i is a char boundary");
            if fold_char(c) != Fold::Keep {
                f.copy(raw, kept..i);
                f.push_char(raw, c, i..i + c.len_utf8());
                kept = i + c.len_utf8();
            }
            i += c.len_utf8();
        }
    }
    f.copy(raw, kept..raw.len());
    f
}

#[derive(Debug, PartialEq, Eq)]
enum Fold {
    Keep,
    Drop,
    To(u8),
}

/// What one char becomes in the view.
fn fold_char(c: char) -> Fold {
    let cp = c as u32;
    if cp < 0x80 {
        return Fold::Keep;
    }
    match cp {
        // Soft hyphen, combining grapheme joiner, Mongolian vowel separator, zero-width
        // space/joiners, direction marks and embeddings, word joiner and invisible
        // operators, BOM: format characters that render as nothing.
        0x00AD
        | 0x034F
        | 0x180E
        | 0x200B..=0x200F
        | 0x202A..=0x202E
        | 0x2060..=0x2064
        | 0x2066..=0x206F
        | 0xFEFF
        // Combining diacritical marks (`e` + U+0301) and variation selectors: they change
        // how a char looks, never which char it is, and hide nothing when dropped.
        | 0x0300..=0x036F
        | 0xFE00..=0xFE0F
        | 0xE0100..=0xE01EF
        // The tag block's language tag and cancel tag.
        | 0xE0001
        | 0xE007F => Fold::Drop,
        // Tag characters mirror ASCII and render as nothing, but models read them
        // ("ASCII smuggling"): scan the text they spell.
        0xE0020..=0xE007E => Fold::To((cp - 0xE0000) as u8),
        // No-break and other typographic spaces.
        0x00A0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000 => {
            Fold::To(b' ')
        }
        // Hyphens, dashes and the minus sign.
        0x2010..=0x2015 | 0x2212 | 0xFE58 | 0xFE63 => Fold::To(b'-'),
        // Fullwidth ASCII.
        0xFF01..=0xFF5E => Fold::To((cp - 0xFEE0) as u8),
        // Mathematical alphanumeric letters (bold, italic, script, ...): 52 per style.
        0x1D400..=0x1D6A3 => {
            let k = ((cp - 0x1D400) % 52) as u8;
            Fold::To(if k < 26 { b'A' + k } else { b'a' + k - 26 })
        }
        // Mathematical digits: five styles of ten.
        0x1D7CE..=0x1D7FF => Fold::To(b'0' + ((cp - 0x1D7CE) % 10) as u8),
        _ => match decimal_digit(cp) {
            Some(d) => Fold::To(b'0' + d),
            None => Fold::Keep,
        },
    }
}

/// The value of a non-ASCII decimal digit (Unicode `Nd`) in the scripts people type.
fn decimal_digit(cp: u32) -> Option<u8> {
    const ZEROS: [u32; 22] = [
        0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
        0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0xA8D0,
    ];
    // Every digit above lies in 0x0660..0x1950 or 0xA8D0..0xA8DA: most letters of most
    // scripts (Latin, Cyrillic, CJK) are ruled out by two compares, not 22.
    if !(0x0660..0x1950).contains(&cp) && !(0xA8D0..0xA8DA).contains(&cp) {
        return None;
    }
    ZEROS
        .iter()
        .find(|&&z| (z..z + 10).contains(&cp))
        .map(|&z| (cp - z) as u8)
}

/// Decodes the escape starting at `i` (a `\`, `%` or `&`), returning the char it stands for
/// and the escape's length in bytes. Only escapes that decode to a printable char count.
fn decode_escape(text: &str, i: usize) -> Option<(char, usize)> {
    let rest = &text.as_bytes()[i..];
    let (c, len) = match rest[0] {
        b'\\' => match rest.get(1)? {
            b'u' => {
                let hi = hex(rest.get(2..6)?)?;
                if (0xD800..0xDC00).contains(&hi) {
                    // A surrogate pair: `\uD83D\uDE00`.
                    if rest.get(6..8)? != b"\\u" {
                        return None;
                    }
                    let lo = hex(rest.get(8..12)?)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    (char::from_u32(cp)?, 12)
                } else {
                    (char::from_u32(hi)?, 6)
                }
            }
            b'x' => (ascii(hex(rest.get(2..4)?)?)?, 4),
            _ => return None,
        },
        b'%' => (ascii(hex(rest.get(1..3)?)?)?, 3),
        b'&' => {
            let semi = memchr::memchr(b';', &rest[..rest.len().min(12)])?;
            let name = &rest[1..semi];
            let c = if let Some(num) = name.strip_prefix(b"#") {
                let cp = match num.first()? {
                    b'x' | b'X' => hex(&num[1..])?,
                    _ => std::str::from_utf8(num).ok()?.parse().ok()?,
                };
                char::from_u32(cp)?
            } else {
                match name {
                    b"amp" => '&',
                    b"lt" => '<',
                    b"gt" => '>',
                    b"quot" => '"',
                    b"apos" => '\'',
                    b"nbsp" => ' ',
                    b"commat" => '@',
                    b"period" => '.',
                    b"colon" => ':',
                    b"sol" => '/',
                    b"plus" => '+',
                    b"equals" => '=',
                    b"lowbar" => '_',
                    b"hyphen" | b"dash" => '-',
                    _ => return None,
                }
            };
            (c, semi + 1)
        }
        _ => return None,
    };
    // `%0A`, `\u0000` and friends are not what people hide values behind; leaving them
    // alone keeps line structure intact for the detectors.
    if c.is_control() {
        return None;
    }
    Some((c, len))
}

/// Separators inside a number: [`number_break`].
const SEPARATOR: [bool; 256] = {
    let mut table = [false; 256];
    table[b' ' as usize] = true;
    table[b'-' as usize] = true;
    table[b'.' as usize] = true;
    table
};

/// A line break inside a number, as a wrapped line or a narrow text box leaves it
/// (`303-776` / `-9868`, `3733-9016-` / `0853`): its length, `\n` or `\r\n`, when the line
/// ends in a group of digits joined to another by `-` or `.` (a separator may follow it),
/// and the next line goes on with a group of digits (after a separator, if the line did
/// not end in one); groups of at most six digits. The view drops it, so the number reads
/// as one. Anything else stays apart: lines of bare numbers, a sentence that ends in a
/// number (`in 2019.`), table rows that end and begin with numbers (`…,4155550120` /
/// `-2,…`).
fn number_break(b: &[u8], i: usize) -> Option<usize> {
    let len = match b.get(i..) {
        Some([b'\r', b'\n', ..]) => 2,
        Some([b'\n', ..]) => 1,
        _ => return None,
    };
    let (before, after) = (&b[..i], &b[i + len..]);
    let (ends_in_separator, body) = match before.split_last() {
        Some((&x, body)) if SEPARATOR[x as usize] => (true, body),
        _ => (false, before),
    };
    // The next line first: most line breaks are followed by neither a separator nor,
    // after one, a digit, and the line before need not be read.
    let next = match after.split_first() {
        _ if ends_in_separator => after,
        Some((&x, rest)) if SEPARATOR[x as usize] => rest,
        _ => return None,
    };
    let digits = next.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=6).contains(&digits) {
        return None;
    }
    let group = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let k = body.len() - group;
    let joined = (1..=6).contains(&group)
        && k >= 2
        && matches!(body[k - 1], b'-' | b'.')
        && body[k - 2].is_ascii_digit();
    joined.then_some(len)
}

/// A defanged dot between digits, as threat reports write addresses: `185[.]94`,
/// `10(.)0`, `1{.}2`. Between letters it is left alone: the email detectors read
/// `jane at acme[.]com` as written, and code holds `[.]` regex classes.
fn defanged_dot(text: &str, i: usize) -> bool {
    let b = text.as_bytes();
    let close = match b[i] {
        b'[' => b']',
        b'(' => b')',
        b'{' => b'}',
        _ => return false,
    };
    i > 0
        && b[i - 1].is_ascii_digit()
        && b.get(i + 1) == Some(&b'.')
        && b.get(i + 2) == Some(&close)
        && b.get(i + 3).is_some_and(u8::is_ascii_digit)
}

/// `%XX` and `\xXX` stand for bytes; only ASCII bytes are single chars.
fn ascii(cp: u32) -> Option<char> {
    (cp < 0x80).then_some(cp as u8 as char)
}

fn hex(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 6 {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some(acc * 16 + v)
    })
}

/// The folded form of a short string such as a dictionary term, so that terms and text
/// are folded the same way.
pub(crate) fn fold_str(s: &str) -> Cow<'_, str> {
    let view = View::new(s);
    match view.folded {
        None => Cow::Borrowed(s),
        Some(f) => Cow::Owned(String::from_utf8_lossy(&f.bytes).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(s: &str) -> String {
        String::from_utf8(View::new(s).bytes().to_vec()).unwrap()
    }

    /// The range check in front of `decimal_digit`'s list rules out only code points
    /// that no zero in the list reaches.
    #[test]
    fn decimal_digits_outside_the_checked_ranges_are_none() {
        const ZEROS: [u32; 22] = [
            0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
            0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0xA8D0,
        ];
        for cp in 0x80..0x11_0000 {
            let listed = ZEROS.iter().find(|&&z| (z..z + 10).contains(&cp));
            assert_eq!(
                decimal_digit(cp),
                listed.map(|&z| (cp - z) as u8),
                "{cp:#x}"
            );
        }
    }

    #[test]
    fn plain_text_is_not_copied() {
        assert!(!View::new("plain ascii text").is_folded());
        assert!(!View::new("Grüße aus Köln, 東京").is_folded());
        assert!(!View::new("100% sure & \\n fine").is_folded());
    }

    #[test]
    fn folds_what_people_paste() {
        assert_eq!(view("４１１１"), "4111");
        assert_eq!(view("jane\u{200B}@acme.io"), "jane@acme.io");
        assert_eq!(view("٤١١١ ۴۱۱۱ ४१११"), "4111 4111 4111");
        assert_eq!(view("jane\\u0040acme.io"), "jane@acme.io");
        assert_eq!(view("jane%40acme.io"), "jane@acme.io");
        assert_eq!(
            view("jane&#64;acme&period;io &#x40; &amp;"),
            "jane@acme.io @ &"
        );
        assert_eq!(view("a\u{00A0}b\u{2014}c"), "a b-c");
        assert_eq!(view("\\ud83d\\ude00"), "😀");
        assert_eq!(view("%0A stays"), "%0A stays");
        assert_eq!(view("C2 185[.]94(.)17{.}203"), "C2 185.94.17.203");
        assert_eq!(
            view("acme[.]com [.]5 5[.] re[.]"),
            "acme[.]com [.]5 5[.] re[.]"
        );
        // Invisible tag characters spell ASCII; marks and variation selectors go.
        let smuggled: String = "ghp_x"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        assert_eq!(view(&format!("a\u{E0001}{smuggled}\u{E007F}")), "aghp_x");
        assert_eq!(view("ghp\u{0301}_x\u{FE0F}y\u{E0100}"), "ghp_xy");
        // A number wrapped across lines, a separator on one side of the break.
        assert_eq!(view("call 303-776\n-9868 now"), "call 303-776-9868 now");
        assert_eq!(view("3733-9016-\r\n0853"), "3733-9016-0853");
        assert_eq!(view("ip 10.0.0.\n5"), "ip 10.0.0.5");
    }

    #[test]
    fn lines_of_numbers_stay_apart() {
        for text in [
            "id\n12\n34\n",
            "total 12\n\n-34",
            "12 \n 34",
            "- 1\n- 2",
            "x-\n5",
            "a 12.\n5",
            // A sentence that ends in a number, then a card or an address.
            "We moved in 2019.\n4539148803436467 is the card",
            "Total: 5.\n8.8.4.4 is the host",
            // Table rows: a number at the end of one, a negative one at the start of the next.
            "delta,mobile\n-1,4155550120\n-2,4155550121\n",
            "ref 12\n 4539148803436467",
        ] {
            assert!(!View::new(text).is_folded(), "{text:?}");
        }
    }

    /// The map as it was kept before runs, one original span per view byte: the oracle
    /// for the runs.
    fn per_byte_map(text: &str) -> (Vec<u8>, Vec<(usize, usize)>) {
        let raw = text.as_bytes();
        let (mut bytes, mut map) = (Vec::new(), Vec::new());
        let mut i = 0;
        while i < raw.len() {
            if let Some(len) = number_break(raw, i) {
                i += len;
                continue;
            }
            let (c, len) = if matches!(raw[i], b'[' | b'(' | b'{') && defanged_dot(text, i) {
                ('.', 3)
            } else if let Some(escape) = decode_escape(text, i) {
                escape
            } else {
                let c = text[i..].chars().next().unwrap();
                (c, c.len_utf8())
            };
            let mut buf = [0u8; 4];
            let out: &[u8] = match fold_char(c) {
                Fold::Drop => &[],
                Fold::To(ascii) => {
                    buf[0] = ascii;
                    &buf[..1]
                }
                Fold::Keep => c.encode_utf8(&mut buf).as_bytes(),
            };
            for &b in out {
                bytes.push(b);
                map.push((i, i + len));
            }
            i += len;
        }
        (bytes, map)
    }

    proptest::proptest! {
        #[test]
        fn runs_map_back_like_a_map_per_byte(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "a", "7", " ", "(", "[.]", "(.)", "{.}", "\\u0040", "%40", "&#64;", "&amp;",
                "\\n", "%", "&", "４", "\u{200B}", "\u{2014}", "é", "東", "\u{00A0}", "😀",
                "\u{0301}", "\u{E0067}", "\u{FE0F}", "\n", "\r\n", "-", ".",
            ]), 0..40),
            cut in proptest::collection::vec((0usize..200, 0usize..200), 8),
        ) {
            let text = pieces.concat();
            let v = View::new(&text);
            let (bytes, map) = per_byte_map(&text);
            proptest::prop_assert_eq!(v.bytes(), &bytes[..]);
            let whole = |s: usize, e: usize| (floor_boundary(&text, s), ceil_boundary(&text, e));
            for (i, &(s, e)) in map.iter().enumerate() {
                proptest::prop_assert_eq!(v.to_original(i, i + 1), whole(s, e));
            }
            for (a, b) in cut {
                let (s, e) = (a.min(b).min(bytes.len()), a.max(b).min(bytes.len()));
                if s < e {
                    proptest::prop_assert_eq!(v.to_original(s, e), whole(map[s].0, map[e - 1].1));
                }
            }
        }
    }

    #[test]
    fn spans_map_back_to_whole_units() {
        let text = "mail: jane\\u0040acme.io!";
        let v = View::new(text);
        let folded = std::str::from_utf8(v.bytes()).unwrap();
        let s = folded.find("jane").unwrap();
        let e = folded.find('!').unwrap();
        let (os, oe) = v.to_original(s, e);
        assert_eq!(&text[os..oe], "jane\\u0040acme.io");

        let text = "x４２y";
        let v = View::new(text);
        assert_eq!(v.to_original(1, 3), (1, 7));
    }
}
