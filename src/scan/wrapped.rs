//! Numbers broken across two lines where a space was.
//!
//! PDF text, OCR and narrow columns break a grouped number at one of its spaces:
//! `IBAN DE44 5001 0517` / `5407 3249 31`, `Telefon: 0151` / `27383947`. The view does not
//! join such lines (it joins a break only next to a `-` or `.` inside a number,
//! `number_break` in `normalize.rs`): a line that ends in a number and one that begins with
//! one are far more often two rows of a table or a log, and joining them would read one
//! number out of two rows. So the scanner reads a text joined at such breaks only when it
//! has one, and keeps from that reading only a value that crosses exactly one break (a
//! value across two is more likely three rows of a list than a number wrapped twice), of
//! a detector that reads wrapped values (`[detector.wrapped]` in its pattern), and which
//! passes a checksum or stands after one of the detector's labels.
//!
//! A break qualifies when the line before it ends in a group of two to six digits or
//! capitals holding a digit, after a blank, a `+` or nothing (one or two trailing blanks
//! allowed), and the next line begins with two to twelve digits that end at a blank, the
//! end of the line, or a `.`, `,`, `;` or `)` before one. Log lines (`…:86487` /
//! `2025-04-04T…`) and CSV rows (`…,2024-10-20` / `1001,…`) do not: the benchmark corpus
//! has no text with such a break.

use std::ops::Range;

/// Every qualifying break in `hay`, in order: each range holds the trailing blanks, the
/// `\r` if any and the `\n`.
pub(crate) fn breaks(hay: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for nl in memchr::memchr_iter(b'\n', hay) {
        // The next line first: most lines begin with no digit, or with a date.
        if !begins_with_digits(&hay[nl + 1..]) {
            continue;
        }
        let mut start = nl;
        if start > 0 && hay[start - 1] == b'\r' {
            start -= 1;
        }
        for _ in 0..2 {
            if start > 0 && matches!(hay[start - 1], b' ' | b'\t') {
                start -= 1;
            }
        }
        if ends_in_group(&hay[..start]) {
            out.push(start..nl + 1);
        }
    }
    out
}

/// The line ends in two to six digits or capitals, at least one a digit, after a blank,
/// a `+` or nothing (the group is the whole line).
fn ends_in_group(line: &[u8]) -> bool {
    let group = line
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        .count();
    let at = line.len() - group;
    (2..=6).contains(&group)
        && line[at..].iter().any(u8::is_ascii_digit)
        && (at == 0 || matches!(line[at - 1], b' ' | b'\t' | b'+' | b'\n'))
}

/// The line begins with two to twelve digits that end at a blank, the end of the line or
/// text, or a `.`, `,`, `;` or `)` before one.
fn begins_with_digits(line: &[u8]) -> bool {
    let digits = line.iter().take_while(|b| b.is_ascii_digit()).count();
    let ends = |b: Option<&u8>| matches!(b, None | Some(b' ' | b'\t' | b'\r' | b'\n'));
    (2..=12).contains(&digits)
        && match line.get(digits) {
            Some(b'.' | b',' | b';' | b')') => ends(line.get(digits + 1)),
            b => ends(b),
        }
}

/// A text with each qualifying break read as one space.
pub(crate) struct Joined {
    pub(crate) bytes: Vec<u8>,
    /// For each break, where its space is in `bytes` and how many bytes the text has
    /// beyond `bytes` after it (a break of `\r\n` is one byte longer than its space).
    spaces: Vec<(usize, usize)>,
}

impl Joined {
    /// `hay` with each of `breaks` (from [`breaks`]) replaced by a space.
    pub(crate) fn new(hay: &[u8], breaks: &[Range<usize>]) -> Joined {
        let mut bytes = Vec::with_capacity(hay.len());
        let mut spaces = Vec::with_capacity(breaks.len());
        let mut at = 0;
        for b in breaks {
            bytes.extend_from_slice(&hay[at..b.start]);
            let shift = b.end - bytes.len() - 1;
            spaces.push((bytes.len(), shift));
            bytes.push(b' ');
            at = b.end;
        }
        bytes.extend_from_slice(&hay[at..]);
        Joined { bytes, spaces }
    }

    /// Whether `start..end` of `bytes` holds exactly one joined space, with bytes of the
    /// value on both sides of it. A value across two breaks is more likely to be three
    /// rows of a list of numbers than a number wrapped twice.
    pub(crate) fn crosses(&self, start: usize, end: usize) -> bool {
        let i = self.spaces.partition_point(|&(at, _)| at <= start);
        let inside = |i: usize| self.spaces.get(i).is_some_and(|&(at, _)| at + 1 < end);
        inside(i) && !inside(i + 1)
    }

    /// `start..end` of `bytes` as a span of the text.
    pub(crate) fn to_text(&self, start: usize, end: usize) -> (usize, usize) {
        let shift = |at: usize| {
            let i = self.spaces.partition_point(|&(space, _)| space < at);
            i.checked_sub(1).map_or(0, |i| self.spaces[i].1)
        };
        (start + shift(start), end + shift(end))
    }
}

/// Whether one of `labels` (lowercase) stands as a whole word on the line of `bytes`
/// that `start` is on, before it, or on the line above when only blanks and punctuation
/// precede the value on its own (a form's label above its field). `bytes` is the text
/// before joining, so that a line is a line as written. Letters of other scripts are
/// word characters here (`tel` is not in `Hôtel`), and case is folded in them too
/// (`TÉL`).
pub(crate) fn labelled(bytes: &[u8], start: usize, labels: &[String]) -> bool {
    let line_start = |end: usize| memchr::memrchr(b'\n', &bytes[..end]).map_or(0, |i| i + 1);
    let from = line_start(start);
    let before = &bytes[from..start];
    let from = if before
        .iter()
        .all(|b| !b.is_ascii_alphanumeric() && b.is_ascii())
        && from > 0
    {
        line_start(from - 1)
    } else {
        from
    };
    let line = String::from_utf8_lossy(&bytes[from..start]).to_lowercase();
    let line = line.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
    labels.iter().any(|label| {
        memchr::memmem::find_iter(line, label.as_bytes()).any(|at| {
            let end = at + label.len();
            (at == 0 || !word(line[at - 1])) && (end == line.len() || !word(line[end]))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broken(text: &str) -> Vec<&str> {
        breaks(text.as_bytes())
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn breaks_inside_grouped_numbers_qualify() {
        assert_eq!(broken("IBAN DE44 5001 0517\n5407 3249 31\nBIC"), ["\n"]);
        assert_eq!(broken("Telefon: 0151 \r\n27383947."), [" \r\n"]);
        assert_eq!(broken("Tel. +49\n171 4965510"), ["\n"]);
        assert_eq!(broken("IBAN GB29 NWBK 6016\n1331 9268 19"), ["\n"]);
        assert_eq!(broken("0151\n2738"), ["\n"]);
        assert_eq!(broken("Telefon\n0151\n27383947"), ["\n"]);
    }

    #[test]
    fn rows_of_tables_and_logs_do_not() {
        for text in [
            "cache miss key=user:profile:86487\n2025-04-04T10:12:48.818Z INFO",
            "1000,Olga Patel,Osaka,pro,2024-01-04\n1001,Elena Dubois",
            "app_version=4.4.40\n2025-12-04T07:51:59Z",
            "Released in 2019.\n2020 was quieter",
            "see page 12\n3 more items",
            "total 1234\n5678kg",
            "build 1234567\n5678 ok",
            "phase II\n2024 plan",
            "a NWBK\n1234 x",
            "x 12\n34-56",
        ] {
            assert_eq!(broken(text), Vec::<&str>::new(), "{text:?}");
        }
    }

    #[test]
    fn joined_spans_map_back_to_the_text() {
        let text = b"a 12\r\n34 and 56 \n78 end";
        let joined = Joined::new(text, &breaks(text));
        assert_eq!(joined.bytes, b"a 12 34 and 56 78 end");
        // `12 34`, `56 78`, and both.
        assert_eq!(joined.to_text(2, 7), (2, 8));
        assert_eq!(joined.to_text(12, 17), (13, 19));
        assert_eq!(joined.to_text(2, 17), (2, 19));
        assert_eq!(joined.to_text(0, 1), (0, 1));
        assert!(joined.crosses(2, 7) && joined.crosses(12, 17));
        // A value that ends at a space, starts at one, or lies beside one.
        assert!(!joined.crosses(2, 5) && !joined.crosses(4, 7) && !joined.crosses(5, 7));
        assert!(!joined.crosses(0, 2) && !joined.crosses(8, 11));
        // Across two breaks: rows of a list.
        assert!(!joined.crosses(2, 17));
    }

    #[test]
    fn labels_stand_on_the_value_line_or_above_it() {
        let labels = ["telefon".to_string(), "tel.".to_string()];
        let at =
            |text: &str, value: &str| labelled(text.as_bytes(), text.find(value).unwrap(), &labels);
        assert!(at("Name: X\nTelefon: 0151 2738", "0151"));
        assert!(at("TEL. 0151 2738", "0151"));
        assert!(at("Telefon\n: 0151 2738", "0151"));
        assert!(!at("Telefon: siehe unten\nArtikel 0151 2738", "0151"));
        assert!(!at("Telefonbuch 0151 2738", "0151"));
        assert!(!at("0151 2738", "0151"));
        let labels = ["tel".to_string(), "tél".to_string()];
        let at =
            |text: &str, value: &str| labelled(text.as_bytes(), text.find(value).unwrap(), &labels);
        assert!(at("TÉL : 06 12 34", "06"));
        assert!(!at("Hôtel réservé, confirmation 06 12 34", "06"));
    }
}
