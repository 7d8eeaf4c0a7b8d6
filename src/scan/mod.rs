//! Finding sensitive data in text.
//!
//! A [`Scanner`] is built once from detectors (the built-in library in `patterns/*.toml`,
//! custom detectors in the same format, and [`Dictionary`] term lists) and then scans any
//! number of texts, concurrently, returning [`Finding`]s: detector id, [`Category`], byte
//! span and confidence. It knows nothing about HTTP, teams or requests.
//!
//! ```
//! use privacy_router::scan::Scanner;
//!
//! let scanner = Scanner::builder().build()?;
//! let prompt = "my key is AKIAZ7Q4M2N5P3R6T2VX, keep it safe";
//! let findings = scanner.scan(prompt);
//! assert_eq!(findings[0].detector(), "aws-access-key-id");
//! assert_eq!(&prompt[findings[0].span()], "AKIAZ7Q4M2N5P3R6T2VX");
//! # Ok::<(), privacy_router::scan::BuildError>(())
//! ```
//!
//! # How a scan works
//!
//! 1. **Normalised view.** Fullwidth and mathematical letters and digits, non-ASCII
//!    decimal digits, typographic spaces and dashes are folded to ASCII; zero-width and
//!    other format characters are dropped; JSON (`\u0040`), HTML (`&#64;`) and URL
//!    (`%40`) escapes are decoded; defanged dots between digits (`185[.]94`) become `.`.
//!    Every byte of the view remembers where it came from,
//!    so spans map back exactly. Text with nothing to fold is scanned in place.
//! 2. **Gates.** One Aho-Corasick pass finds the detectors' literal keywords (`ghp_`,
//!    `xoxb-`, `BEGIN`...), walking three pieces of the text in lock step so that the
//!    CPU overlaps their table loads; one multi-pattern lazy-DFA pass finds where the
//!    structural detectors' matches (emails, numbers, addresses) end.
//! 3. **Detectors.** Only the detectors whose gate fired run their regex: keyword-gated
//!    ones at each occurrence of their keywords when every match begins with one (read
//!    from the parsed pattern), otherwise over the text; structural ones only in the
//!    windows before their match ends (either way, exactly what a whole-text search
//!    finds). Every candidate is then checked
//!    by its validator (checksums, reserved ranges, placeholders), entropy bound,
//!    allowlists and context words.
//! 4. **Dictionaries** match whole words, ASCII-case-insensitively.
//! 5. **Overlaps** within a category resolve to one finding, deterministically.

mod analysis;
pub(crate) mod detector;
mod dictionary;
mod error;
mod finding;
mod keywords;
mod near;
mod normalize;
mod scanner;
pub(crate) mod spoken;
mod structural;
pub(crate) mod validate;
mod wrapped;

pub use dictionary::Dictionary;
pub use error::BuildError;
pub use finding::{Category, Finding};
pub use scanner::{
    DEFAULT_INTERNAL_SUFFIXES, DetectorInfo, LABEL_CONTEXT, Scanner, ScannerBuilder,
    builtin_detectors,
};
