//! `privacy-router scan`.

use std::fs;
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use privacy_router::scan::{Dictionary, Finding, Scanner, ScannerBuilder, builtin_detectors};
use serde_json::json;

#[derive(Args)]
pub(crate) struct ScanArgs {
    /// Files to scan; `-` or nothing reads standard input.
    paths: Vec<PathBuf>,
    /// Read JSON Lines: each line an object with a string field `text`; write one JSON
    /// line of findings per input line.
    #[arg(long)]
    jsonl: bool,
    /// Add a dictionary (one term per line, `#` comments), category `confidential`.
    /// Repeatable. The dictionary is named after the file's stem.
    #[arg(long = "terms", value_name = "FILE")]
    terms: Vec<PathBuf>,
    /// Print matched values. Off by default: output is safe to paste into a ticket.
    #[arg(long)]
    show_values: bool,
    /// Also run the built-in detectors that are off by default.
    #[arg(long)]
    all: bool,
    /// Enable a detector by id (repeatable).
    #[arg(long, value_name = "ID")]
    enable: Vec<String>,
    /// Disable a detector by id (repeatable).
    #[arg(long, value_name = "ID")]
    disable: Vec<String>,
    /// Drop findings below this confidence (0.0 to 1.0).
    #[arg(long, value_name = "X", default_value_t = 0.0)]
    min_confidence: f32,
    /// A DNS suffix that marks internal host names (repeatable; replaces the defaults
    /// internal, corp, intranet, lan, private).
    #[arg(long = "internal-suffix", value_name = "SUFFIX")]
    internal_suffixes: Vec<String>,
    /// Use the detectors and dictionaries of the team this policy file defines (its
    /// directory is loaded, so `extends` resolves).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["all", "enable", "disable", "terms", "internal_suffixes"]
    )]
    policy: Option<PathBuf>,
    /// List the built-in detectors and exit.
    #[arg(long)]
    list: bool,
}

pub(crate) fn run(args: ScanArgs) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.list {
        for d in builtin_detectors()? {
            let state = if d.enabled_by_default() { "on " } else { "off" };
            writeln!(
                out,
                "{:<40} {:<13} {state} {}",
                d.id(),
                d.category().as_str(),
                d.description()
            )?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let scanner = build_scanner(&args)?;
    let mut found_any = false;
    let mut failed = false;
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.paths.clone()
    };
    for path in &paths {
        let name = path.display().to_string();
        let outcome = if args.jsonl {
            open(path).and_then(|input| scan_jsonl(&scanner, input, &args, &mut out))
        } else {
            read_text(path).and_then(|text| scan_text(&scanner, &name, &text, &args, &mut out))
        };
        match outcome {
            Ok(Outcome {
                findings,
                bad_lines,
            }) => {
                found_any |= findings;
                failed |= bad_lines;
            }
            Err(err) if is_broken_pipe(&err) => return Err(err),
            Err(err) => {
                out.flush()?;
                eprintln!("privacy-router: {name}: {err:#}");
                failed = true;
            }
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(2)
    } else if found_any {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

fn build_scanner(args: &ScanArgs) -> Result<Scanner> {
    if let Some(policy) = &args.policy {
        return crate::policy_cmd::scanner_for_file(policy);
    }
    let mut builder = ScannerBuilder::new()
        .all_builtin(args.all)
        .min_confidence(args.min_confidence);
    if !args.internal_suffixes.is_empty() {
        builder = builder.internal_suffixes(&args.internal_suffixes);
    }
    for id in &args.enable {
        builder = builder.enable(id);
    }
    for id in &args.disable {
        builder = builder.disable(id);
    }
    for path in &args.terms {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read term file {}", path.display()))?;
        let name = path
            .file_stem()
            .map_or_else(|| "terms".to_string(), |s| s.to_string_lossy().into_owned());
        builder = builder.dictionary(Dictionary::parse(&name, &text));
    }
    Ok(builder.build()?)
}

struct Outcome {
    findings: bool,
    bad_lines: bool,
}

fn open(path: &PathBuf) -> Result<Box<dyn BufRead>> {
    if path.as_os_str() == "-" {
        Ok(Box::new(io::BufReader::new(io::stdin())))
    } else {
        let file = fs::File::open(path).context("cannot open")?;
        Ok(Box::new(io::BufReader::new(file)))
    }
}

fn read_text(path: &PathBuf) -> Result<String> {
    let mut raw = Vec::new();
    if path.as_os_str() == "-" {
        io::stdin()
            .read_to_end(&mut raw)
            .context("cannot read standard input")?;
    } else {
        raw = fs::read(path).context("cannot read")?;
    }
    String::from_utf8(raw).map_err(|e| {
        anyhow::anyhow!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn scan_text(
    scanner: &Scanner,
    name: &str,
    text: &str,
    args: &ScanArgs,
    out: &mut impl Write,
) -> Result<Outcome> {
    let findings = scanner.scan(text);
    let mut line = 1;
    let mut line_start = 0;
    let mut cursor = 0;
    for f in &findings {
        for (i, b) in text.as_bytes()[cursor..f.start()].iter().enumerate() {
            if *b == b'\n' {
                line += 1;
                line_start = cursor + i + 1;
            }
        }
        cursor = f.start();
        let col = text[line_start..f.start()].chars().count() + 1;
        let value = &text[f.span()];
        let shown = if args.show_values {
            value.to_string()
        } else {
            mask(value)
        };
        writeln!(
            out,
            "{name}:{line}:{col}: {} ({}, confidence {:.2}) {shown}",
            f.detector(),
            f.category(),
            f.confidence()
        )?;
    }
    Ok(Outcome {
        findings: !findings.is_empty(),
        bad_lines: false,
    })
}

/// A preview that says what kind of value it is without revealing it: the first two
/// characters and the length.
fn mask(value: &str) -> String {
    let head: String = value.chars().take(2).collect();
    format!("{head}… ({} bytes)", value.len())
}

fn scan_jsonl(
    scanner: &Scanner,
    input: Box<dyn BufRead>,
    args: &ScanArgs,
    out: &mut impl Write,
) -> Result<Outcome> {
    let mut outcome = Outcome {
        findings: false,
        bad_lines: false,
    };
    for (n, line) in input.split(b'\n').enumerate() {
        let line = line.context("cannot read input")?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        match parse_record(line) {
            Ok(text) => {
                let findings = scanner.scan(&text);
                outcome.findings |= !findings.is_empty();
                let line = FindingsLine {
                    findings: findings
                        .iter()
                        .map(|f| finding_json(f, &text, args.show_values))
                        .collect(),
                };
                serde_json::to_writer(&mut *out, &line)?;
            }
            Err(message) => {
                outcome.bad_lines = true;
                let line = json!({ "error": format!("line {}: {message}", n + 1) });
                serde_json::to_writer(&mut *out, &line)?;
            }
        }
        out.write_all(b"\n")?;
    }
    Ok(outcome)
}

/// The `text` field of one input line. Errors describe the shape, never the content.
fn parse_record(line: &[u8]) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("invalid JSON ({e})"))?;
    match value.get("text") {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err("field `text` is not a string".to_string()),
        None => Err("expected a JSON object with a string field `text`".to_string()),
    }
}

/// One `--jsonl` output line.
#[derive(serde::Serialize)]
struct FindingsLine<'a> {
    findings: Vec<FindingLine<'a>>,
}

/// One finding on a `--jsonl` output line, fields in the documented order.
#[derive(serde::Serialize)]
struct FindingLine<'a> {
    detector: &'a str,
    category: &'static str,
    start: usize,
    end: usize,
    confidence: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
}

fn finding_json<'a>(f: &'a Finding, text: &'a str, show_values: bool) -> FindingLine<'a> {
    FindingLine {
        detector: f.detector(),
        category: f.category().as_str(),
        start: f.start(),
        end: f.end(),
        confidence: (f64::from(f.confidence()) * 100.0).round() / 100.0,
        value: show_values.then(|| &text[f.span()]),
    }
}
