//! Verifying a chain across files: every record's hash, every link, no gaps.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::checkpoint::CheckpointPublicKey;
use super::read::{Lines, open_log};
use super::record::{GENESIS, LineFault, check_line};

/// What is wrong with the first bad record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// The line is not what was written: its content does not match its `hash`, or it is
    /// no longer a record at all.
    Edited,
    /// Records are missing before this one (its `seq` skips ahead and the skipped ones do
    /// not follow later in the file).
    Missing,
    /// Records are out of order: the `seq` expected here comes later.
    Reordered,
    /// A record that does not belong here: its `seq` was already seen (a copy or a
    /// forgery).
    Inserted,
    /// The record is intact but its `prev` is not the hash of the record before: that one
    /// was rewritten (and rehashed), or this one was put in its place.
    BrokenLink,
    /// The file ends in a half-written line (a crash mid-write, or a cut file).
    TruncatedTail,
    /// A checkpoint that does not hold: it signs another record than the one before it,
    /// or (with a public key) its signature is not valid for that key.
    BadSignature,
    /// A public key was given but the log holds no checkpoint at all.
    Unsigned,
}

impl ViolationKind {
    /// `edited`, `missing`, `reordered`, `inserted`, `broken-link`, `truncated-tail`,
    /// `bad-signature`, `unsigned`.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::Edited => "edited",
            ViolationKind::Missing => "missing",
            ViolationKind::Reordered => "reordered",
            ViolationKind::Inserted => "inserted",
            ViolationKind::BrokenLink => "broken-link",
            ViolationKind::TruncatedTail => "truncated-tail",
            ViolationKind::BadSignature => "bad-signature",
            ViolationKind::Unsigned => "unsigned",
        }
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first bad record: where it is and what is wrong. Holds no record content.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Violation {
    /// The file.
    pub file: PathBuf,
    /// The line, from 1.
    pub line: u64,
    /// The record's `seq`, when the line still has a readable one.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: ViolationKind,
    /// The `seq` expected at this place, when known.
    pub expected_seq: Option<u64>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: ", self.file.display(), self.line)?;
        } else {
            write!(f, "{}: ", self.file.display())?;
        }
        match self.seq {
            Some(s) => write!(f, "seq {s}: ")?,
            None => f.write_str("(no seq): ")?,
        }
        f.write_str(self.kind.as_str())?;
        let exp = self.expected_seq;
        match (self.kind, exp, self.seq) {
            (ViolationKind::Edited, _, _) => {
                f.write_str(" (the line does not match its hash, or is not a record)")
            }
            (ViolationKind::Missing, Some(e), Some(s)) if s > e + 1 => {
                write!(f, " (records {e} to {} are not here)", s - 1)
            }
            (ViolationKind::Missing, Some(e), _) => write!(f, " (record {e} is not here)"),
            (ViolationKind::Reordered, Some(e), _) => {
                write!(f, " (record {e} was expected here and comes later)")
            }
            (ViolationKind::Inserted, Some(e), _) => {
                write!(f, " (expected seq {e}; this seq was already seen)")
            }
            (ViolationKind::BrokenLink, _, _) => {
                f.write_str(" (prev is not the hash of the record before)")
            }
            (ViolationKind::TruncatedTail, Some(e), _) => {
                write!(f, " (half-written line where seq {e} would be)")
            }
            (ViolationKind::BadSignature, _, _) => f.write_str(
                " (the checkpoint does not sign the record before it with the given key)",
            ),
            (ViolationKind::Unsigned, _, _) => {
                f.write_str(" (a public key was given but the log has no checkpoint)")
            }
            _ => Ok(()),
        }
    }
}

/// What [`verify_files`] found.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Verification {
    /// Files read, in chain order.
    pub files: Vec<PathBuf>,
    /// Records that verified (up to the first violation).
    pub records: u64,
    /// The first record's `seq`.
    pub first_seq: Option<u64>,
    /// The last good record's `seq`.
    pub last_seq: Option<u64>,
    /// The last good record's `hash`: the chain head. Keep it somewhere else to detect a
    /// later cut of the end of the log.
    pub head: Option<String>,
    /// The first record does not start a chain (`prev` is not 64 zeros): earlier files
    /// were not given (rotated away?), so nothing before `first_seq` was checked.
    pub starts_mid_chain: bool,
    /// `recovered` records: places where a writer restarted after a crash and cut a
    /// half-written line (file, line, seq).
    pub recoveries: Vec<(PathBuf, u64, u64)>,
    /// Checkpoints that hold (signatures checked only with a public key).
    pub checkpoints: u64,
    /// Records after the last checkpoint (all of them when there is none): with a public
    /// key, the part of the log no signature covers yet.
    pub unsigned_tail: u64,
    /// The first violation, or `None` when the chain holds.
    pub violation: Option<Violation>,
}

impl Verification {
    /// The chain holds.
    pub fn is_intact(&self) -> bool {
        self.violation.is_none()
    }
}

/// How far ahead `Missing` and `Reordered` are told apart.
const LOOKAHEAD: usize = 100_000;

/// Verifies the chain across `files`, in the order given (see
/// [`expand_paths`](super::expand_paths) for chain order), streaming: memory does not
/// grow with the log. Stops at the first violation.
///
/// Checked: each line is a record whose `hash` matches its canonical form; `seq`s follow
/// one another without gaps, repeats or reordering, across files; each `prev` is the hash
/// of the record before; no file ends in a half-written line.
///
/// # Errors
///
/// A file cannot be opened or read (a violation is not an error: see
/// [`Verification::violation`]).
pub fn verify_files<P: AsRef<Path>>(files: &[P]) -> io::Result<Verification> {
    verify_files_with(files, None)
}

/// As [`verify_files`], and with `key`, also checks every checkpoint's signature and
/// requires at least one checkpoint.
///
/// # Errors
///
/// A file cannot be opened or read.
pub fn verify_files_with<P: AsRef<Path>>(
    files: &[P],
    key: Option<&CheckpointPublicKey>,
) -> io::Result<Verification> {
    let mut v = Verification {
        files: files.iter().map(|f| f.as_ref().to_path_buf()).collect(),
        ..Verification::default()
    };
    let mut last: Option<(u64, String)> = None;
    for file in files {
        let file = file.as_ref().to_path_buf();
        let file = &file;
        let mut lines = Lines::new(open_log(file)?);
        let mut pending: Option<Violation> = None;
        while let Some((line, complete, number)) = lines.next_numbered()? {
            let expected = last.as_ref().map(|(s, _)| s + 1);
            let at = |seq, kind| Violation {
                file: file.clone(),
                line: number,
                seq,
                kind,
                expected_seq: expected,
            };
            if !complete {
                v.violation = Some(at(
                    check_line(line).ok().map(|c| c.seq),
                    ViolationKind::TruncatedTail,
                ));
                return Ok(v);
            }
            let checked = match check_line(line) {
                Ok(c) => c,
                Err(LineFault::Malformed) => {
                    v.violation = Some(at(None, ViolationKind::Edited));
                    return Ok(v);
                }
                Err(LineFault::HashMismatch { seq }) => {
                    v.violation = Some(at(Some(seq), ViolationKind::Edited));
                    return Ok(v);
                }
            };
            let seq = checked.seq;
            match expected {
                None => {
                    v.first_seq = Some(seq);
                    v.starts_mid_chain = checked.prev != GENESIS;
                }
                Some(e) if seq == e => {
                    if last.as_ref().is_some_and(|(_, h)| *h != checked.prev) {
                        v.violation = Some(at(Some(seq), ViolationKind::BrokenLink));
                        return Ok(v);
                    }
                }
                Some(e) if seq > e => {
                    pending = Some(at(Some(seq), ViolationKind::Missing));
                    if later_in(&mut lines, e)? {
                        pending.as_mut().expect("set").kind = ViolationKind::Reordered;
                    }
                    break;
                }
                Some(_) => {
                    v.violation = Some(at(Some(seq), ViolationKind::Inserted));
                    return Ok(v);
                }
            }
            if is_recovery(line) {
                v.recoveries.push((file.clone(), number, seq));
            }
            if memchr::memmem::find(line, b"\"event\":\"checkpoint\"").is_some() {
                if !checkpoint_holds(line, seq, &checked.prev, key) {
                    v.violation = Some(at(Some(seq), ViolationKind::BadSignature));
                    return Ok(v);
                }
                v.checkpoints += 1;
                v.unsigned_tail = 0;
            } else {
                v.unsigned_tail += 1;
            }
            v.records += 1;
            v.last_seq = Some(seq);
            v.head = Some(checked.hash.clone());
            last = Some((seq, checked.hash));
        }
        if pending.is_some() {
            v.violation = pending;
            return Ok(v);
        }
    }
    if key.is_some() && v.records > 0 && v.checkpoints == 0 {
        v.violation = Some(Violation {
            file: v.files.last().cloned().unwrap_or_default(),
            line: 0,
            seq: v.last_seq,
            kind: ViolationKind::Unsigned,
            expected_seq: None,
        });
    }
    Ok(v)
}

/// A checkpoint signs the record before it (`seq - 1`, `prev`) and, with a key, its
/// signature is valid.
fn checkpoint_holds(line: &[u8], seq: u64, prev: &str, key: Option<&CheckpointPublicKey>) -> bool {
    #[derive(serde::Deserialize)]
    struct Fields {
        signed_seq: u64,
        signed_hash: String,
        sig: String,
    }
    let Ok(c) = serde_json::from_slice::<Fields>(line) else {
        return false;
    };
    c.signed_seq + 1 == seq
        && c.signed_hash == prev
        && key.is_none_or(|k| k.verify(c.signed_seq, &c.signed_hash, &c.sig))
}

/// Whether a record with `seq` follows within the lookahead.
fn later_in(lines: &mut Lines, seq: u64) -> io::Result<bool> {
    for _ in 0..LOOKAHEAD {
        let Some((line, _)) = lines.next_line()? else {
            return Ok(false);
        };
        if let Ok(c) = check_line(line)
            && c.seq == seq
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn is_recovery(line: &[u8]) -> bool {
    memchr::memmem::find(line, b"\"event\":\"recovered\"").is_some()
}

/// Verifies one file (see [`verify_files`]).
///
/// # Errors
///
/// The file cannot be read.
pub fn verify_file(path: &Path) -> io::Result<Verification> {
    verify_files(&[path])
}
