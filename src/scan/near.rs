//! Where a detector that needs a context word near its values can find any: around the
//! occurrences of its gate words, and in the table rows under a header that holds one.
//!
//! A detector whose context rule `require`s words, each of which holds one of its gate
//! words, accepts a value only if a require word lies within `window` bytes of the value
//! or in the value's column header. Such a word holds a gate word, which the keyword pass
//! reports; so every match it can accept lies within `window + max_len` (its
//! [`reach`](super::detector::Detector::reach)) of an occurrence that lies inside a whole
//! require word, or in the lines under one whose line has a table delimiter, as long as
//! they have one too (at most [`HEADER_LINES`]). Occurrences inside other words (`tel` in
//! `hotel`) are dropped first:
//! [`Detector::gate_in_require_word`](super::detector::Detector::gate_in_require_word).
//! [`Detector::find_near`](super::detector::Detector::find_near) searches only there.

use std::ops::Range;

use super::detector::HEADER_LINES;

/// Line starts of a text, found once and only if a header is looked for, and which lines
/// have a table delimiter, found as they are asked about.
pub(crate) struct Lines<'a> {
    hay: &'a [u8],
    starts: Vec<usize>,
    /// Per line: not looked at yet, or whether it has a table delimiter.
    delimited: Vec<Option<bool>>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(hay: &'a [u8]) -> Lines<'a> {
        Lines {
            hay,
            starts: Vec::new(),
            delimited: Vec::new(),
        }
    }

    /// Whether line `line` has a table delimiter
    /// ([`is_table_delimiter`](super::detector::is_table_delimiter), searched with memchr).
    fn delimited(&mut self, line: usize) -> bool {
        if let Some(d) = self.delimited[line] {
            return d;
        }
        let end = self.starts.get(line + 1).map_or(self.hay.len(), |&s| s - 1);
        let text = &self.hay[self.starts[line]..end];
        let d = memchr::memchr3(b',', b';', b'\t', text).is_some()
            || memchr::memchr(b'|', text).is_some();
        self.delimited[line] = Some(d);
        d
    }

    /// The bytes of the lines under the line holding `at` whose cells can have it in
    /// their column header: a header is the first line of a block of lines that all have
    /// a delimiter, at most [`HEADER_LINES`] above the cell's line, which has one too. So
    /// if `at`'s line has a delimiter: from the next line on, while lines have one, for
    /// at most [`HEADER_LINES`] lines.
    fn under(&mut self, at: usize) -> Option<Range<usize>> {
        if self.starts.is_empty() {
            let hay = self.hay;
            self.starts = std::iter::once(0)
                .chain(memchr::memchr_iter(b'\n', hay).map(|i| i + 1))
                .collect();
            self.delimited = vec![None; self.starts.len()];
        }
        let line = self.starts.partition_point(|&s| s <= at) - 1;
        if line + 1 >= self.starts.len() || !self.delimited(line) {
            return None;
        }
        let mut last = line;
        while last < line + HEADER_LINES && last + 1 < self.starts.len() && self.delimited(last + 1)
        {
            last += 1;
        }
        if last == line {
            return None;
        }
        let end = self.starts.get(last + 1).map_or(self.hay.len(), |&s| s - 1);
        Some(self.starts[line + 1]..end)
    }
}

/// The sorted, disjoint spans that hold every match a detector with reach `reach` and
/// matches of at most `max_len` bytes can accept, given the occurrences `(start, len)`
/// of its gate words in `lines`' text.
pub(crate) fn windows(
    lines: &mut Lines<'_>,
    occurrences: impl IntoIterator<Item = (usize, usize)>,
    reach: usize,
    max_len: usize,
) -> Vec<Range<usize>> {
    let len = lines.hay.len();
    let mut spans: Vec<Range<usize>> = Vec::new();
    for (at, word) in occurrences {
        spans.push(at.saturating_sub(reach)..(at + word + reach).min(len));
        if let Some(rows) = lines.under(at) {
            spans.push(rows.start.saturating_sub(max_len)..(rows.end + max_len).min(len));
        }
    }
    spans.sort_unstable_by_key(|s| s.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for s in spans {
        match merged.last_mut() {
            Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
            _ => merged.push(s),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn around_words_and_under_headers() {
        let text = b"name,phone\nAna,4157730192\nBo,4157730193\nphone 4157730194 end";
        let mut lines = Lines::new(text);
        // `phone` in the header: its own reach, then the rows under it that have a
        // delimiter (the last line has none, so no cell there has this header).
        let w = windows(&mut lines, [(5, 5)], 2, 3);
        let rows_end = text.len() - "\nphone 4157730194 end".len();
        assert_eq!(w, vec![3..rows_end + 3]);
        // `phone` on the last line: no line under it, no delimiter.
        let at = text.len() - 20;
        let w = windows(&mut lines, [(at, 5)], 2, 3);
        assert_eq!(w, vec![at - 2..at + 7]);
        // Two words close together merge into one span.
        let w = windows(&mut Lines::new(b"phone phone 1"), [(0, 5), (6, 5)], 1, 1);
        assert_eq!(w, vec![0..12]);
    }
}
