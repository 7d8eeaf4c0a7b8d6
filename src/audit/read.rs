//! Reading logs back: rotated sets, globs, gzip, one line at a time.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

/// Opens a log file for reading, decompressing it when it is gzip (by its magic bytes,
/// whatever its name).
///
/// # Errors
///
/// The file cannot be opened or read.
pub fn open_log(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut file, &mut magic)?;
    let file = File::open(path)?;
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::with_capacity(
            256 << 10,
            MultiGzDecoder::new(BufReader::new(file)),
        )))
    } else {
        Ok(Box::new(BufReader::with_capacity(256 << 10, file)))
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Reads lines, reusing one buffer, and says whether each ended with a newline.
pub(crate) struct Lines {
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    number: u64,
}

impl Lines {
    pub(crate) fn new(reader: Box<dyn BufRead + Send>) -> Lines {
        Lines {
            reader,
            buf: Vec::with_capacity(4096),
            number: 0,
        }
    }

    /// The next line without its newline, and whether it had one; `None` at the end.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<(&[u8], bool)>> {
        Ok(self.next_numbered()?.map(|(l, c, _)| (l, c)))
    }

    /// As `next_line`, with the line's number (from 1).
    pub(crate) fn next_numbered(&mut self) -> io::Result<Option<(&[u8], bool, u64)>> {
        self.buf.clear();
        if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(None);
        }
        self.number += 1;
        let complete = self.buf.last() == Some(&b'\n');
        if complete {
            self.buf.pop();
        }
        Ok(Some((&self.buf, complete, self.number)))
    }
}

/// Expands command-line paths into log files: a directory gives its files whose names
/// contain `.jsonl` (rotated and `.gz` ones included; `.lock` files excluded); a name
/// with `*` is a glob over the files of its directory (`*` matches any run of
/// characters, within the name only); anything else is taken as given.
///
/// The result is ordered as the chain runs: by the `seq` of each file's first record
/// (files with no readable first record last, by name).
///
/// # Errors
///
/// A directory cannot be listed, or a glob matches nothing.
pub fn expand_paths<P: AsRef<Path>>(paths: &[P]) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if p.is_dir() {
            for entry in sorted_dir(p)? {
                let n = entry
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if n.contains(".jsonl") && !n.ends_with(".lock") && !n.starts_with('.') {
                    files.push(entry);
                }
            }
        } else if let Some(pattern) = name.filter(|n| n.contains('*')) {
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let before = files.len();
            for entry in sorted_dir(&dir)? {
                let n = entry
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if glob_match(pattern.as_bytes(), n.as_bytes()) && !n.ends_with(".lock") {
                    files.push(entry);
                }
            }
            if files.len() == before {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no file matches {}", p.display()),
                ));
            }
        } else {
            files.push(p.to_path_buf());
        }
    }
    files.dedup();
    let mut keyed: Vec<(u64, PathBuf)> = files
        .into_iter()
        .map(|f| (first_seq(&f).unwrap_or(u64::MAX), f))
        .collect();
    keyed.sort();
    Ok(keyed.into_iter().map(|(_, f)| f).collect())
}

fn sorted_dir(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

/// `*` matches any run of bytes; everything else matches itself.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = n;
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// The `seq` of a file's first record.
fn first_seq(path: &Path) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct S {
        seq: u64,
    }
    let mut lines = Lines::new(open_log(path).ok()?);
    let (line, _) = lines.next_line().ok()??;
    serde_json::from_slice::<S>(line).ok().map(|s| s.seq)
}

/// Rotated files of `path` (`PATH.<digits>` with an optional `-n` and `.gz`), in name
/// order, which is chain order.
pub(crate) fn rotated_siblings(path: &Path) -> io::Result<Vec<PathBuf>> {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(Vec::new());
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!("{name}.");
    let mut out: Vec<PathBuf> = sorted_dir(&dir)?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .and_then(|n| n.strip_prefix(&prefix).map(str::to_string))
                .is_some_and(|rest| {
                    let rest = rest.strip_suffix(".gz").unwrap_or(&rest);
                    rest.len() >= 20 && rest.as_bytes()[..20].iter().all(u8::is_ascii_digit)
                })
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The last complete line of a (possibly gzip) file, read as a stream.
pub(crate) fn last_line_of(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut lines = Lines::new(open_log(path)?);
    let mut last = None;
    while let Some((line, complete)) = lines.next_line()? {
        if complete {
            last = Some(line.to_vec());
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match(
            b"audit*.jsonl*",
            b"audit.jsonl.00000000000000000012.gz"
        ));
        assert!(glob_match(b"*", b"x"));
        assert!(!glob_match(b"a*b", b"ac"));
        assert!(glob_match(b"a*b*c", b"aXbYbZc"));
    }
}
