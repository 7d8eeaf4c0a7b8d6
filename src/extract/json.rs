//! A validating JSON reader that reports every string (values and keys) with where it is
//! in the document and the exact bytes it occupies in the body.
//!
//! `serde_json::Value` would tell us the strings but not where they are, and rewriting a
//! document through it reorders keys and reformats numbers. Redaction must change only the
//! strings it redacts, byte for byte, so this reader keeps raw positions.
//!
//! Paths are a tree of nodes (each string, object and array has one, pointing at its
//! parent), not a path copied into every string: a client can send millions of strings
//! under one long key, and copying the key into each would cost terabytes. The reader
//! accepts exactly RFC 8259 JSON (UTF-8, no trailing commas, no comments), refuses
//! duplicate keys (a second `"type"` could make one reader see an image where another
//! sees text), nesting deeper than [`MAX_DEPTH`], and more than [`MAX_STRINGS`] strings.
//!
//! Numbers of [`MIN_NUMBER_DIGITS`] significant digits or more are reported as strings
//! too, written out in decimal: a card or phone number sent as a JSON number in a tool
//! call's arguments is as readable to the model as one in quotes.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

/// Deeper documents are refused: no API request nests this far, and a bound keeps the
/// reader's recursion (and stack) small whatever a client sends.
pub(crate) const MAX_DEPTH: usize = 128;

/// More strings than this are refused (inspection fails closed): an 8 MiB body of
/// empty strings would otherwise cost hundreds of megabytes of bookkeeping.
pub(crate) const MAX_STRINGS: usize = 1_000_000;

/// Numbers with at least this many significant digits are scanned:
/// card, phone, account and id numbers have more; token ids (vocabularies under a
/// million), counts and sampling parameters have fewer, and an embeddings request may
/// hold hundreds of thousands of them.
pub(crate) const MIN_NUMBER_DIGITS: usize = 7;

/// A number token written out in decimal, as a reader of the value would see it:
/// `4.526018159083012e15` is `4526018159083012` (a card number that a serialiser wrote
/// with an exponent). Tokens without an exponent, and those whose point would move
/// below the first digit or more than 64 places, are kept as written.
fn expanded(token: &str) -> String {
    let (sign, rest) = token
        .strip_prefix('-')
        .map_or(("", token), |rest| ("-", rest));
    let Some((mantissa, exponent)) = rest.split_once(['e', 'E']) else {
        return token.to_string();
    };
    let Ok(exponent) = exponent.parse::<i64>() else {
        return token.to_string();
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let point = int.len() as i64 + exponent;
    if point <= 0 || point > 64 {
        return token.to_string();
    }
    let point = point as usize;
    let (whole, fraction) = if point >= digits.len() {
        (format!("{digits}{}", "0".repeat(point - digits.len())), "")
    } else {
        (
            digits[..point].to_string(),
            digits[point..].trim_end_matches('0'),
        )
    };
    let whole = match whole.trim_start_matches('0') {
        "" => "0",
        w => w,
    };
    if fraction.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    }
}

/// The root node's parent.
pub(crate) const NO_PARENT: u32 = u32::MAX;

/// One step from a node's parent to the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Root,
    Key(Box<str>),
    Index(u32),
}

/// A string, object or array of the document.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) parent: u32,
    pub(crate) step: Step,
}

/// A string of the document: a value, or an object key.
#[derive(Clone)]
pub(crate) struct JsonString {
    /// The value's node; for a key, the node of the member it names.
    pub(crate) node: u32,
    pub(crate) is_key: bool,
    /// A number, whose value is its decimal expansion (see [`MIN_NUMBER_DIGITS`]).
    pub(crate) is_number: bool,
    /// The token in the body, quotes included.
    pub(crate) raw: Range<usize>,
    /// The decoded text.
    pub(crate) value: String,
}

/// A document: its nodes (parents before children) and its strings in document order.
pub(crate) struct Doc {
    pub(crate) nodes: Vec<Node>,
    pub(crate) strings: Vec<JsonString>,
    /// Top-level `"stream": true`.
    pub(crate) stream: bool,
    /// Whether the top-level value is an object.
    pub(crate) is_object: bool,
}

/// `node` and its ancestors up to the root, nearest first, each with its id.
pub(crate) fn ancestors(nodes: &[Node], node: u32) -> impl Iterator<Item = (u32, &Node)> {
    let up = |&at: &u32| Some(nodes[at as usize].parent).filter(|&p| p != NO_PARENT);
    std::iter::successors(Some(node).filter(|&n| n != NO_PARENT), up)
        .map(|at| (at, &nodes[at as usize]))
}

/// The display form of a node's path, such as `messages[2].content[0].text`. Keys longer
/// than 64 bytes are cut, so a path's length is bounded by the depth limit.
pub(crate) fn path_of(nodes: &[Node], node: u32) -> String {
    let steps: Vec<&Step> = ancestors(nodes, node).map(|(_, n)| &n.step).collect();
    let mut out = String::new();
    for step in steps.iter().rev() {
        match step {
            Step::Root => {}
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let mut end = k.len().min(64);
                while !k.is_char_boundary(end) {
                    end -= 1;
                }
                out.push_str(&k[..end]);
                if end < k.len() {
                    out.push('…');
                }
            }
            Step::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    if out.is_empty() {
        out.push('$');
    }
    out
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

/// Reads `body` as one JSON document.
pub(crate) fn read(body: &[u8]) -> Result<Doc, JsonError> {
    if let Err(e) = std::str::from_utf8(body) {
        return Err(JsonError {
            offset: e.valid_up_to(),
            reason: "invalid UTF-8",
        });
    }
    let mut r = Reader {
        body,
        at: 0,
        doc: Doc {
            nodes: vec![Node {
                parent: NO_PARENT,
                step: Step::Root,
            }],
            strings: Vec::new(),
            stream: false,
            is_object: false,
        },
    };
    r.ws();
    r.doc.is_object = r.peek() == Some(b'{');
    r.value(0, 0)?;
    r.ws();
    if r.at != body.len() {
        return Err(r.err("trailing characters after the document"));
    }
    Ok(r.doc)
}

struct Reader<'a> {
    body: &'a [u8],
    at: usize,
    doc: Doc,
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

    fn node(&mut self, parent: u32, step: Step) -> u32 {
        self.doc.nodes.push(Node { parent, step });
        (self.doc.nodes.len() - 1) as u32
    }

    fn push_string(
        &mut self,
        node: u32,
        is_key: bool,
        raw: Range<usize>,
        value: String,
    ) -> Result<(), JsonError> {
        self.push(JsonString {
            node,
            is_key,
            is_number: false,
            raw,
            value,
        })
    }

    fn push(&mut self, string: JsonString) -> Result<(), JsonError> {
        if self.doc.strings.len() >= MAX_STRINGS {
            return Err(self.err("too many strings and long numbers"));
        }
        self.doc.strings.push(string);
        Ok(())
    }

    /// Reads the value at `self.at`, which belongs to `node`.
    fn value(&mut self, depth: usize, node: u32) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth, node),
            Some(b'[') => self.array(depth, node),
            Some(b'"') => {
                let start = self.at;
                let value = self.string()?;
                self.push_string(node, false, start..self.at, value)
            }
            Some(b't') => {
                self.literal(b"true")?;
                let n = &self.doc.nodes[node as usize];
                if n.parent == 0 && n.step == Step::Key("stream".into()) {
                    self.doc.stream = true;
                }
                Ok(())
            }
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.at;
                self.number()?;
                let raw = start..self.at;
                if self.is_long_number(raw.start) {
                    let token = String::from_utf8_lossy(&self.body[raw.clone()]).into_owned();
                    self.push(JsonString {
                        node,
                        is_key: false,
                        is_number: true,
                        raw,
                        value: expanded(&token),
                    })?;
                }
                Ok(())
            }
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn object(&mut self, depth: usize, node: u32) -> Result<(), JsonError> {
        self.at += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        let mut keys: HashSet<String> = HashSet::new();
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key_start = self.at;
            let key = self.string()?;
            let key_raw = key_start..self.at;
            if keys.contains(&key) {
                self.at = key_start;
                return Err(self.err("duplicate key"));
            }
            self.ws();
            self.expect(b':', "expected `:` after a key")?;
            self.ws();
            let member = self.node(node, Step::Key(key.clone().into_boxed_str()));
            self.push_string(member, true, key_raw, key.clone())?;
            keys.insert(key);
            self.value(depth + 1, member)?;
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

    fn array(&mut self, depth: usize, node: u32) -> Result<(), JsonError> {
        self.at += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        let mut index: u32 = 0;
        loop {
            self.ws();
            // Only strings, containers and long numbers need a node: a million short
            // numbers cost nothing.
            let child = match self.peek() {
                Some(b'"' | b'{' | b'[') => self.node(node, Step::Index(index)),
                Some(b'-' | b'0'..=b'9') if self.is_long_number(self.at) => {
                    self.node(node, Step::Index(index))
                }
                _ => node,
            };
            self.value(depth + 1, child)?;
            index = index.saturating_add(1);
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

    /// Whether the number token at `at` has [`MIN_NUMBER_DIGITS`] significant digits
    /// (`4.526018159083012e15` has 16).
    fn is_long_number(&self, at: usize) -> bool {
        let mantissa = self.body[at..]
            .iter()
            .skip(usize::from(self.body.get(at) == Some(&b'-')))
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .filter(|b| b.is_ascii_digit())
            .skip_while(|b| **b == b'0');
        mantissa.count() >= MIN_NUMBER_DIGITS
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

    /// Regression: a card number written with an exponent escaped the scan.
    #[test]
    fn long_numbers_are_written_out_in_decimal() {
        for (token, text) in [
            ("4526018159083012", "4526018159083012"),
            ("4.526018159083012e15", "4526018159083012"),
            ("45260181590830120E-1", "4526018159083012"),
            ("4526018159083012e0", "4526018159083012"),
            ("0.4526018159083012E+16", "4526018159083012"),
            ("-5.36221947e8", "-536221947"),
            ("1.2345678e3", "1234.5678"),
            ("1.2345678e100", "1.2345678e100"),
            ("0.000123456789", "0.000123456789"),
        ] {
            let body = format!("{{\"n\":{token}}}");
            let doc = read(body.as_bytes()).unwrap();
            let numbers: Vec<&str> = doc
                .strings
                .iter()
                .filter(|s| s.is_number)
                .map(|s| s.value.as_str())
                .collect();
            assert_eq!(numbers, [text], "{token}");
        }
        // Short ones, however written, are not strings.
        let doc = read(br#"{"a":[123456,1.5e30,0.000001,-100000]}"#).unwrap();
        assert!(doc.strings.iter().all(|s| !s.is_number));
    }

    fn values(body: &[u8]) -> Vec<(String, String)> {
        let doc = read(body).unwrap();
        doc.strings
            .iter()
            .filter(|s| !s.is_key)
            .map(|s| (path_of(&doc.nodes, s.node), s.value.clone()))
            .collect()
    }

    #[test]
    fn strings_with_paths_and_raw_ranges() {
        let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi \u0040 there\n"}],"n":[1.5e3,"x"],"stream":true}"#;
        assert_eq!(
            values(body),
            [
                ("model".to_string(), "gpt-4o".to_string()),
                ("messages[0].role".to_string(), "user".to_string()),
                (
                    "messages[0].content".to_string(),
                    "hi @ there\n".to_string()
                ),
                ("n[1]".to_string(), "x".to_string()),
            ]
        );
        let doc = read(body).unwrap();
        assert!(doc.stream && doc.is_object);
        let content = doc
            .strings
            .iter()
            .find(|s| s.value.starts_with("hi"))
            .unwrap();
        assert_eq!(&body[content.raw.clone()], br#""hi \u0040 there\n""#);
        let keys: Vec<&str> = doc
            .strings
            .iter()
            .filter(|s| s.is_key)
            .map(|s| s.value.as_str())
            .collect();
        assert_eq!(
            keys,
            ["model", "messages", "role", "content", "n", "stream"]
        );
    }

    #[test]
    fn long_keys_are_cut_in_paths_and_not_copied() {
        let key = "k".repeat(100_000);
        let body = format!("{{\"{key}\":[{}\"\"]}}", "\"\",".repeat(1000));
        let doc = read(body.as_bytes()).unwrap();
        assert_eq!(doc.strings.len(), 1002);
        let p = path_of(&doc.nodes, doc.strings[1].node);
        assert!(p.len() < 80, "{}", p.len());
    }

    #[test]
    fn surrogates_and_unicode() {
        let v = values(r#"["\ud83d\ude00", "\ud800x", "Grüße"]"#.as_bytes());
        assert_eq!(v[0].1, "😀");
        assert_eq!(v[1].1, "\u{FFFD}x");
        assert_eq!(v[2].1, "Grüße");
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
            b"{\"type\":\"text\",\"type\":\"image_url\"}",
        ] {
            assert!(read(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(
            read(deep.as_bytes()).err().map(|e| e.reason),
            Some("nested too deeply")
        );
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(read(ok.as_bytes()).is_ok());
    }
}
