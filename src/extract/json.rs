//! A validating JSON reader that reports every string value with its path and the exact
//! bytes it occupies in the body.
//!
//! `serde_json::Value` would tell us the strings but not where they are, and rewriting a
//! document through it reorders keys and reformats numbers. Redaction must change only the
//! strings it redacts, byte for byte, so this reader keeps raw positions. It accepts
//! exactly RFC 8259 JSON (UTF-8, no trailing commas, no comments) and refuses nesting
//! deeper than [`MAX_DEPTH`] instead of recursing without bound.

use std::fmt;
use std::ops::Range;

/// Deeper documents are refused: no API request nests this far, and a bound keeps the
/// reader's recursion (and stack) small whatever a client sends.
pub(crate) const MAX_DEPTH: usize = 128;

/// One step of a JSON path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// A path such as `messages[2].content[0].text`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct JsonPath(pub(crate) Vec<Step>);

impl JsonPath {
    /// Whether `prefix` is this path or one of its ancestors.
    pub(crate) fn starts_with(&self, prefix: &JsonPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The last key on the path, if the path ends in a key.
    pub(crate) fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Step::Key(k)) => Some(k),
            _ => None,
        }
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("$");
        }
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(k) if i == 0 => write!(f, "{k}")?,
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A string value of the document.
#[derive(Clone)]
pub(crate) struct JsonString {
    pub(crate) path: JsonPath,
    /// The token in the body, quotes included.
    pub(crate) raw: Range<usize>,
    /// The decoded value.
    pub(crate) value: String,
}

/// Why a body is not JSON. Carries a byte offset, never content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JsonError {
    pub(crate) offset: usize,
    pub(crate) reason: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

/// Reads `body` as one JSON document and returns its string values in document order.
pub(crate) fn strings(body: &[u8]) -> Result<Vec<JsonString>, JsonError> {
    if let Err(e) = std::str::from_utf8(body) {
        return Err(JsonError {
            offset: e.valid_up_to(),
            reason: "invalid UTF-8",
        });
    }
    let mut r = Reader {
        body,
        at: 0,
        path: Vec::new(),
        out: Vec::new(),
    };
    r.ws();
    r.value(0)?;
    r.ws();
    if r.at != body.len() {
        return Err(r.err("trailing characters after the document"));
    }
    Ok(r.out)
}

struct Reader<'a> {
    body: &'a [u8],
    at: usize,
    path: Vec<Step>,
    out: Vec<JsonString>,
}

impl Reader<'_> {
    fn err(&self, reason: &'static str) -> JsonError {
        JsonError {
            offset: self.at,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.body.get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, b: u8, reason: &'static str) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.err(reason))
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let start = self.at;
                let value = self.string()?;
                self.out.push(JsonString {
                    path: JsonPath(self.path.clone()),
                    raw: start..self.at,
                    value,
                });
                Ok(())
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), JsonError> {
        self.at += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key = self.string()?;
            self.ws();
            self.expect(b':', "expected `:` after a key")?;
            self.ws();
            self.path.push(Step::Key(key));
            self.value(depth + 1)?;
            self.path.pop();
            self.ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected `,` or `}` in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), JsonError> {
        self.at += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            self.ws();
            self.path.push(Step::Index(index));
            self.value(depth + 1)?;
            self.path.pop();
            index += 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected `,` or `]` in an array")),
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.body[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn number(&mut self) -> Result<(), JsonError> {
        let digits = |r: &mut Self| {
            let s = r.at;
            while matches!(r.peek(), Some(b'0'..=b'9')) {
                r.at += 1;
            }
            r.at - s
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        Ok(())
    }

    /// Reads a string token at `self.at` (a `"`) and returns its decoded value.
    fn string(&mut self) -> Result<String, JsonError> {
        self.at += 1;
        let mut out = String::new();
        loop {
            // Copy the run up to the next quote or backslash in one go.
            let rest = &self.body[self.at..];
            let Some(stop) = memchr::memchr2(b'"', b'\\', rest) else {
                return Err(self.err("unterminated string"));
            };
            let run = &rest[..stop];
            if let Some(bad) = run.iter().position(|&b| b < 0x20) {
                self.at += bad;
                return Err(self.err("control character in a string"));
            }
            // The body was checked to be UTF-8 and runs end at ASCII bytes.
            out.push_str(std::str::from_utf8(run).map_err(|_| self.err("invalid UTF-8"))?);
            self.at += stop;
            if self.body[self.at] == b'"' {
                self.at += 1;
                return Ok(out);
            }
            self.at += 1;
            let c = match self.peek() {
                Some(b'"') => '"',
                Some(b'\\') => '\\',
                Some(b'/') => '/',
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'n') => '\n',
                Some(b'r') => '\r',
                Some(b't') => '\t',
                Some(b'u') => {
                    let c = self.unicode_escape()?;
                    out.push(c);
                    continue;
                }
                _ => return Err(self.err("invalid escape")),
            };
            self.at += 1;
            out.push(c);
        }
    }

    /// Reads `uXXXX` (after the backslash), with a following `\uXXXX` for a surrogate
    /// pair. A lone surrogate decodes to U+FFFD, as browsers and most JSON libraries do.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.body[self.at..].starts_with(b"\\u") {
            let save = self.at;
            self.at += 1;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok(char::from_u32(cp).unwrap_or('\u{FFFD}'));
            }
            self.at = save;
        }
        Ok(char::from_u32(hi).unwrap_or('\u{FFFD}'))
    }

    /// Reads `uXXXX` and returns the code unit.
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let Some(h) = self.body.get(self.at + 1..self.at + 5) else {
            return Err(self.err("invalid unicode escape"));
        };
        let mut v = 0;
        for &d in h {
            v = v * 16
                + (d as char)
                    .to_digit(16)
                    .ok_or_else(|| self.err("invalid unicode escape"))?;
        }
        self.at += 5;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_with_paths_and_raw_ranges() {
        let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi \u0040 there\n"}],"n":1.5e3,"ok":true}"#;
        let s = strings(body).unwrap();
        let got: Vec<(String, &str)> = s
            .iter()
            .map(|s| (s.path.to_string(), s.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("model".to_string(), "gpt-4o"),
                ("messages[0].role".to_string(), "user"),
                ("messages[0].content".to_string(), "hi @ there\n"),
            ]
        );
        assert_eq!(&body[s[2].raw.clone()], br#""hi \u0040 there\n""#);
    }

    #[test]
    fn surrogates_and_unicode() {
        let s = strings(r#"["\ud83d\ude00", "\ud800x", "Grüße"]"#.as_bytes()).unwrap();
        assert_eq!(s[0].value, "😀");
        assert_eq!(s[1].value, "\u{FFFD}x");
        assert_eq!(s[2].value, "Grüße");
    }

    #[test]
    fn malformed_documents_are_refused() {
        for bad in [
            &b"{"[..],
            b"{\"a\":}",
            b"[1,]",
            b"{\"a\":1,}",
            b"\"unterminated",
            b"[01]",
            b"[1.]",
            b"{\"a\" 1}",
            b"nul",
            b"{} {}",
            b"\"tab\there\"",
            b"\"\\x41\"",
            b"\xff",
            b"",
        ] {
            assert!(strings(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(
            strings(deep.as_bytes()).err().map(|e| e.reason),
            Some("nested too deeply")
        );
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(strings(ok.as_bytes()).is_ok());
    }
}
