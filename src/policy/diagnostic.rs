//! [`Diagnostic`] and [`Diagnostics`]: what is wrong with a policy set, and where.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a policy set: a file, a position, a stable code, a message and a
/// rendered snippet of the offending line with a caret under the span.
///
/// The rendering follows rustc and cargo-deny:
///
/// ```text
/// error[unknown-action]: unknown action `reroute`
///   --> policies/payments.toml:14:10
///    |
/// 14 | action = "reroute"
///    |          ^^^^^^^^^ expected one of: allow, redact, route_local, block
/// ```
///
/// Messages name keys, detector ids, files and what is wrong; they never contain scanned
/// text. The snippet is a line of the policy file itself, which its authors wrote.
#[derive(Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub(crate) path: PathBuf,
    pub(crate) position: Option<Position>,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
    pub(crate) snippet: Option<Snippet>,
}

/// A 1-based line and column (columns count characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    pub(crate) line: usize,
    pub(crate) col: usize,
}

/// The line a span starts on, and the columns the caret covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snippet {
    line_text: String,
    caret_start: usize,
    caret_len: usize,
}

impl Diagnostic {
    /// A problem with a whole file or directory (unreadable, no default team).
    pub(crate) fn file(path: &Path, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            path: path.to_path_buf(),
            position: None,
            code,
            message: message.into(),
            help: None,
            snippet: None,
        }
    }

    /// A problem at `span` (byte offsets) of `source`, the text of the file at `path`.
    pub(crate) fn at(
        path: &Path,
        source: &str,
        span: Range<usize>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Diagnostic {
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let end = floor_char_boundary(source, span.end.clamp(start, source.len()));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line_text = source[line_start..line_end].trim_end_matches('\r');
        let line = source[..start].matches('\n').count() + 1;
        let col = source[line_start..start].chars().count() + 1;
        // A span over several lines is underlined to the end of its first line.
        let caret_end = end.min(line_start + line_text.len()).max(start);
        let caret_len = source[start..caret_end].chars().count().max(1);
        Diagnostic {
            path: path.to_path_buf(),
            position: Some(Position { line, col }),
            code,
            message: message.into(),
            help: None,
            snippet: Some(Snippet {
                line_text: expand_tabs(line_text),
                caret_start: col - 1,
                caret_len,
            }),
        }
    }

    /// Adds a note shown after the caret.
    pub(crate) fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// The file (or, for a problem with the set as a whole, the directory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 1-based line, when the problem has a position in the file.
    pub fn line(&self) -> Option<usize> {
        self.position.map(|p| p.line)
    }

    /// The 1-based column in characters, when the problem has a position in the file.
    pub fn col(&self) -> Option<usize> {
        self.position.map(|p| p.col)
    }

    /// A stable kebab-case code such as `unknown-key` or `extends-cycle`; see the module
    /// documentation for the list. Tooling may match on it.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// What is wrong, in one line.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The diagnostic rendered on several lines: a header, the location, the offending
    /// line of the file and a caret under the span.
    pub fn rendered(&self) -> String {
        let mut out = String::new();
        self.render(&mut out)
            .expect("writing to a String cannot fail");
        out
    }

    fn location(&self) -> String {
        match self.position {
            Some(p) => format!("{}:{}:{}", self.path.display(), p.line, p.col),
            None => self.path.display().to_string(),
        }
    }

    fn render(&self, out: &mut impl fmt::Write) -> fmt::Result {
        writeln!(out, "error[{}]: {}", self.code, self.message)?;
        match (&self.snippet, self.position) {
            (Some(s), Some(p)) => {
                let number = p.line.to_string();
                let pad = " ".repeat(number.len());
                writeln!(out, "{pad}--> {}", self.location())?;
                writeln!(out, "{pad} |")?;
                writeln!(out, "{number} | {}", s.line_text)?;
                write!(
                    out,
                    "{pad} | {}{}",
                    " ".repeat(s.caret_start),
                    "^".repeat(s.caret_len)
                )?;
                match &self.help {
                    Some(help) => writeln!(out, " {help}"),
                    None => writeln!(out),
                }
            }
            _ => {
                writeln!(out, " --> {}", self.location())?;
                match &self.help {
                    Some(help) => writeln!(out, "  = help: {help}"),
                    None => Ok(()),
                }
            }
        }
    }

    pub(crate) fn sort_key(&self) -> (&Path, Option<Position>, &'static str, &str) {
        (&self.path, self.position, self.code, &self.message)
    }
}

/// One line: `path:line:col: error[code]: message`. Use [`Diagnostic::rendered`] for the
/// snippet.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: error[{}]: {}",
            self.location(),
            self.code,
            self.message
        )
    }
}

impl fmt::Debug for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Diagnostic")
            .field("path", &self.path)
            .field("line", &self.line())
            .field("col", &self.col())
            .field("code", &self.code)
            .field("message", &self.message)
            .finish()
    }
}

/// Every problem found while loading a policy set, sorted by file and position.
///
/// Loading never stops at the first problem: a policy author fixing a file in CI sees
/// everything that is wrong in one run.
///
/// `Display` renders every diagnostic with its snippet, then a summary line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics {
    list: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Sorted and without duplicates (a base file's problem reached through several teams
    /// is reported once).
    pub(crate) fn new(mut list: Vec<Diagnostic>) -> Diagnostics {
        list.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        list.dedup_by(|a, b| a.sort_key() == b.sort_key());
        Diagnostics { list }
    }

    /// The diagnostics, sorted by file, then position.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.list.iter()
    }

    /// How many problems there are (at least one).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Always false: a load that found no problem returns a policy set instead.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.list {
            d.render(f)?;
            writeln!(f)?;
        }
        let n = self.list.len();
        write!(
            f,
            "error: {n} problem{} in the policy set",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Diagnostics {}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Tabs would shift the caret; one space per tab keeps columns and carets aligned.
fn expand_tabs(line: &str) -> String {
    line.replace('\t', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_carets() {
        let src = "team = \"a\"\n[local]\nbase_url = \"ftp://x\"\n";
        let start = src.find("\"ftp").unwrap();
        let d = Diagnostic::at(
            Path::new("p.toml"),
            src,
            start..start + 9,
            "bad-url",
            "scheme must be http or https",
        );
        assert_eq!((d.line(), d.col()), (Some(3), Some(12)));
        assert_eq!(
            d.rendered(),
            "error[bad-url]: scheme must be http or https\n --> p.toml:3:12\n  |\n3 | base_url = \"ftp://x\"\n  |            ^^^^^^^^^\n"
        );
        assert_eq!(
            d.to_string(),
            "p.toml:3:12: error[bad-url]: scheme must be http or https"
        );
    }

    proptest::proptest! {
        /// Any span over any text renders: positions are 1-based and the caret stays on
        /// the line (spans from toml always fit, but a renderer must not be the thing
        /// that panics).
        #[test]
        fn any_span_renders(src in "(\\PC{0,30}\r?\n){0,4}\\PC{0,30}", a in 0usize..200, b in 0usize..200) {
            let d = Diagnostic::at(Path::new("p.toml"), &src, a..b, "syntax", "m");
            let (line, col) = (d.line().unwrap(), d.col().unwrap());
            proptest::prop_assert!(line >= 1 && col >= 1);
            proptest::prop_assert!(line <= src.matches('\n').count() + 1);
            let rendered = d.rendered();
            proptest::prop_assert!(rendered.lines().last().unwrap().contains('^'));
        }
    }

    #[test]
    fn spans_at_the_end_and_over_lines() {
        let src = "a = [\n  1,\n]";
        let d = Diagnostic::at(Path::new("p.toml"), src, 4..src.len(), "wrong-type", "x");
        assert!(
            d.rendered().contains("1 | a = [\n  |     ^\n"),
            "{}",
            d.rendered()
        );
        let d = Diagnostic::at(
            Path::new("p.toml"),
            src,
            src.len()..src.len(),
            "syntax",
            "x",
        );
        assert_eq!((d.line(), d.col()), (Some(3), Some(2)));
    }
}
