//! `privacy-router audit tail|query|stats|verify|fingerprint`.
//!
//! Every command streams: one line in memory at a time (plus `tail`'s last N, and
//! `stats`' groups), whatever the size of the log.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use privacy_router::audit::{
    CheckpointPublicKey, Checkpoints, FingerprintKey, Record, expand_paths, format_time,
    generate_seed, open_log, parse_time, verify_files_with,
};

#[derive(Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print the last records; with -f, keep printing new ones as they are written.
    Tail {
        /// Log files, directories (their `*.jsonl*` files) or globs (`logs/audit*`).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Follow the newest file (and the files that replace it on rotation).
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many records to print first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
        /// Print the records as stored (JSON Lines).
        #[arg(long)]
        json: bool,
    },
    /// Print the decision records that match every filter given.
    Query {
        /// Log files, directories or globs; `.gz` files are read too.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        filter: Filter,
        /// Print the matching records as stored (JSON Lines).
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print CSV with a header row.
        #[arg(long)]
        csv: bool,
    },
    /// Count decision records by team, action, detector, category, model, hour or day.
    Stats {
        /// Log files, directories or globs.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// What to group by.
        #[arg(long, value_enum, default_value_t = By::Action)]
        by: By,
        #[command(flatten)]
        filter: Filter,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify the hash chain across the files (in chain order). Exit 0 when intact, 1
    /// naming the first bad record (file, line, seq, what), 2 on errors.
    Verify {
        /// Log files, directories or globs.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also check every checkpoint's Ed25519 signature with this public key (32 raw
        /// bytes or 64 hex digits), and require at least one checkpoint.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Accept logs whose first record does not start the chain (older rotated files
        /// deleted on purpose). Without it, a missing beginning is a violation.
        #[arg(long)]
        partial: bool,
    },
    /// Make an Ed25519 key pair for signed checkpoints: the secret key (hex) goes to
    /// SECRET_FILE (created, mode 0600, never overwritten), the public key (hex) to
    /// stdout and, with --public, to a file.
    Keygen {
        /// Where to write the secret key.
        secret_file: PathBuf,
        /// Where to write the public key.
        #[arg(long, value_name = "FILE")]
        public: Option<PathBuf>,
    },
    /// Print the keyed fingerprint of VALUE, to look it up with `query --fingerprint`.
    /// The key comes from --key-file, else PRIVACY_ROUTER_AUDIT_KEY or
    /// PRIVACY_ROUTER_AUDIT_KEY_FILE.
    Fingerprint {
        /// The value (a card number, an email address, ...); `-` reads it from standard
        /// input (one line), which keeps it out of `ps` and shell history.
        value: String,
        /// A file holding the key.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
}

#[derive(Args, Default)]
struct Filter {
    /// Only this team.
    #[arg(long)]
    team: Option<String>,
    /// Only this action (allow, redact, route_local, block).
    #[arg(long)]
    action: Option<String>,
    /// Only records where this detector found something.
    #[arg(long)]
    detector: Option<String>,
    /// Only records with a finding of this category (pii, financial, secret, ...).
    #[arg(long)]
    category: Option<String>,
    /// Only records at or after this time (`2026-11-01`, RFC 3339, or `90m`/`24h`/`7d` ago).
    #[arg(long)]
    since: Option<String>,
    /// Only records before this time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    /// Only this request id.
    #[arg(long)]
    request_id: Option<String>,
    /// Only records holding this value fingerprint (see `audit fingerprint`).
    #[arg(long)]
    fingerprint: Option<String>,
    /// Only records whose requested or routed model is this.
    #[arg(long)]
    model: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum By {
    Team,
    Action,
    Detector,
    Category,
    Model,
    Hour,
    Day,
}

pub(crate) fn run(args: AuditArgs) -> Result<ExitCode> {
    match args.command {
        AuditCommand::Tail {
            paths,
            follow,
            lines,
            json,
        } => tail(&paths, follow, lines, json),
        AuditCommand::Query {
            paths,
            filter,
            json,
            csv,
        } => query(
            &paths,
            &filter,
            if json {
                Out::Json
            } else if csv {
                Out::Csv
            } else {
                Out::Table
            },
        ),
        AuditCommand::Stats {
            paths,
            by,
            filter,
            json,
        } => stats(&paths, by, &filter, json),
        AuditCommand::Verify {
            paths,
            public_key,
            partial,
        } => verify(&paths, public_key.as_deref(), partial),
        AuditCommand::Keygen {
            secret_file,
            public,
        } => keygen(&secret_file, public.as_deref()),
        AuditCommand::Fingerprint { value, key_file } => {
            let key = match key_file {
                Some(f) => FingerprintKey::from_file(f),
                None => FingerprintKey::from_env(),
            }
            .context("fingerprint key")?;
            let value = if value == "-" {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("cannot read the value from standard input")?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                value
            };
            println!("{}", key.fingerprint(&value));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let files = expand_paths(paths).context("finding log files")?;
    if files.is_empty() {
        bail!("no log files found");
    }
    Ok(files)
}

/// Calls `f` with every record line (and its parsed record) of `files`, in chain order.
/// Lines that are not records (a truncated tail) are skipped with a warning: `verify` is
/// the command that judges them.
fn for_each_record(
    files: &[PathBuf],
    mut f: impl FnMut(&[u8], &Record) -> Result<()>,
) -> Result<()> {
    let mut buf = Vec::with_capacity(4096);
    for file in files {
        let mut reader =
            open_log(file).with_context(|| format!("cannot open {}", file.display()))?;
        let mut number = 0u64;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("cannot read {}", file.display()))?;
            if n == 0 {
                break;
            }
            number += 1;
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            match serde_json::from_slice::<Record>(line) {
                Ok(record) => f(line, &record)?,
                Err(_) => eprintln!(
                    "privacy-router: {}:{number}: not a record, skipped (run `audit verify`)",
                    file.display()
                ),
            }
        }
    }
    Ok(())
}

/// A filter with its times resolved to record-time strings.
struct Matcher<'a> {
    f: &'a Filter,
    since: Option<String>,
    until: Option<String>,
}

impl<'a> Matcher<'a> {
    fn new(f: &'a Filter) -> Result<Matcher<'a>> {
        Ok(Matcher {
            f,
            since: f.since.as_deref().map(resolve_time).transpose()?,
            until: f.until.as_deref().map(resolve_time).transpose()?,
        })
    }

    fn matches(&self, r: &Record) -> bool {
        let f = self.f;
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        r.event == "decision"
            && eq(&f.team, r.team.as_deref())
            && eq(&f.action, r.action.as_deref())
            && eq(&f.request_id, r.request_id.as_deref())
            && f
                .detector
                .as_deref()
                .is_none_or(|d| r.detectors.iter().any(|x| x.id == d))
            && f
                .category
                .as_deref()
                .is_none_or(|c| r.detectors.iter().any(|x| x.category == c))
            && f
                .fingerprint
                .as_deref()
                .is_none_or(|fp| r.fingerprints.iter().any(|x| x.fp.eq_ignore_ascii_case(fp)))
            && f.model.as_deref().is_none_or(|m| {
                r.requested_model.as_deref() == Some(m) || r.routed_model.as_deref() == Some(m)
            })
            // Record times are fixed-width UTC: string order is time order.
            && self.since.as_deref().is_none_or(|s| r.time.as_str() >= s)
            && self.until.as_deref().is_none_or(|u| r.time.as_str() < u)
    }
}

/// `2026-11-01`, an RFC 3339 time, or a duration ago (`90s`, `30m`, `24h`, `7d`), as a
/// record-time string.
fn resolve_time(s: &str) -> Result<String> {
    if let Some(micros) = parse_time(s) {
        return Ok(format_time(micros));
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .with_context(|| format!("not a time: `{s}` (use 2026-11-01, RFC 3339, or 30m/24h/7d)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("not a time: `{s}` (use 2026-11-01, RFC 3339, or 30m/24h/7d)"),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as i64;
    Ok(format_time(now - secs * 1_000_000))
}

#[derive(Clone, Copy, PartialEq)]
enum Out {
    Table,
    Json,
    Csv,
}

const CSV_HEADER: &str = "time,seq,request_id,team,policy_file,policy_hash,format,requested_model,routed_model,action,basis,target,detectors,fingerprints,scanned_bytes,scan_us,error";

fn query(paths: &[PathBuf], filter: &Filter, out: Out) -> Result<ExitCode> {
    let files = files(paths)?;
    let matcher = Matcher::new(filter)?;
    let stdout = io::stdout();
    let mut w = BufWriter::with_capacity(64 << 10, stdout.lock());
    match out {
        Out::Table => writeln!(w, "{}", table_header())?,
        Out::Csv => writeln!(w, "{CSV_HEADER}")?,
        Out::Json => {}
    }
    let mut n = 0u64;
    for_each_record(&files, |line, r| {
        if matcher.matches(r) {
            n += 1;
            match out {
                Out::Json => {
                    w.write_all(line)?;
                    w.write_all(b"\n")?;
                }
                Out::Csv => writeln!(w, "{}", csv_row(r))?,
                Out::Table => writeln!(w, "{}", table_row(r))?,
            }
        }
        Ok(())
    })?;
    w.flush()?;
    if out == Out::Table {
        eprintln!("{n} record(s)");
    }
    Ok(ExitCode::SUCCESS)
}

fn table_header() -> String {
    format!(
        "{:<27} {:>8} {:<14} {:<11} {:<28} {:<32} DETECTORS",
        "TIME", "SEQ", "TEAM", "ACTION", "MODEL", "REQUEST-ID"
    )
}

fn table_row(r: &Record) -> String {
    let model = match (&r.requested_model, &r.routed_model) {
        (Some(a), Some(b)) => format!("{a} -> {b}"),
        (Some(a), None) => a.clone(),
        (None, Some(b)) => format!("-> {b}"),
        (None, None) => "-".into(),
    };
    let mut detectors = r
        .detectors
        .iter()
        .map(|d| format!("{} ({}) x{}", d.id, d.category, d.count))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(e) = &r.error {
        if !detectors.is_empty() {
            detectors.push_str("; ");
        }
        detectors.push_str("error: ");
        detectors.push_str(e);
    }
    format!(
        "{:<27} {:>8} {:<14} {:<11} {:<28} {:<32} {}",
        r.time,
        r.seq,
        r.team.as_deref().unwrap_or(&r.event),
        r.action.as_deref().unwrap_or("-"),
        model,
        r.request_id.as_deref().unwrap_or("-"),
        if detectors.is_empty() {
            "-"
        } else {
            &detectors
        }
    )
}

fn csv_row(r: &Record) -> String {
    let detectors = r
        .detectors
        .iter()
        .map(|d| format!("{}:{}:{}", d.id, d.category, d.count))
        .collect::<Vec<_>>()
        .join(";");
    let fps = r
        .fingerprints
        .iter()
        .map(|f| format!("{}:{}", f.detector, f.fp))
        .collect::<Vec<_>>()
        .join(";");
    let fields = [
        r.time.clone(),
        r.seq.to_string(),
        r.request_id.clone().unwrap_or_default(),
        r.team.clone().unwrap_or_default(),
        r.policy
            .as_ref()
            .map(|p| p.file.clone())
            .unwrap_or_default(),
        r.policy
            .as_ref()
            .map(|p| p.hash.clone())
            .unwrap_or_default(),
        r.format.clone().unwrap_or_default(),
        r.requested_model.clone().unwrap_or_default(),
        r.routed_model.clone().unwrap_or_default(),
        r.action.clone().unwrap_or_default(),
        r.basis.clone().unwrap_or_default(),
        r.target.clone().unwrap_or_default(),
        detectors,
        fps,
        r.scanned_bytes.map(|n| n.to_string()).unwrap_or_default(),
        r.scan_us.map(|n| n.to_string()).unwrap_or_default(),
        r.error.clone().unwrap_or_default(),
    ];
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

fn csv_field(s: &str) -> String {
    // Quote what needs it; a leading formula character is quoted too, so a spreadsheet
    // does not evaluate a team or model name.
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(['=', '+', '-', '@']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn stats(paths: &[PathBuf], by: By, filter: &Filter, json: bool) -> Result<ExitCode> {
    let files = files(paths)?;
    let matcher = Matcher::new(filter)?;
    let mut groups: HashMap<String, u64> = HashMap::new();
    let mut total = 0u64;
    for_each_record(&files, |_, r| {
        if !matcher.matches(r) {
            return Ok(());
        }
        total += 1;
        let mut bump = |k: &str| {
            if let Some(n) = groups.get_mut(k) {
                *n += 1;
            } else {
                groups.insert(k.to_string(), 1);
            }
        };
        match by {
            By::Team => bump(r.team.as_deref().unwrap_or("-")),
            By::Action => bump(r.action.as_deref().unwrap_or("-")),
            By::Model => bump(r.requested_model.as_deref().unwrap_or("-")),
            By::Hour => bump(r.time.get(..13).unwrap_or("-")),
            By::Day => bump(r.time.get(..10).unwrap_or("-")),
            By::Detector => {
                if r.detectors.is_empty() {
                    bump("(none)");
                }
                for d in &r.detectors {
                    bump(&d.id);
                }
            }
            By::Category => {
                let mut seen: Vec<&str> = r.detectors.iter().map(|d| d.category.as_str()).collect();
                seen.sort_unstable();
                seen.dedup();
                if seen.is_empty() {
                    bump("(none)");
                }
                for c in seen {
                    bump(c);
                }
            }
        }
        Ok(())
    })?;
    let mut rows: Vec<(String, u64)> = groups.into_iter().collect();
    match by {
        By::Hour | By::Day => rows.sort(),
        _ => rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0))),
    }
    let share = |n: u64| {
        if total == 0 {
            0.0
        } else {
            n as f64 / total as f64
        }
    };
    let stdout = io::stdout();
    let mut w = stdout.lock();
    if json {
        let groups: Vec<serde_json::Value> = rows
            .iter()
            .map(|(k, n)| serde_json::json!({ "key": k, "count": n, "share": share(*n) }))
            .collect();
        let by = by.to_possible_value().map(|v| v.get_name().to_string());
        serde_json::to_writer(
            &mut w,
            &serde_json::json!({ "by": by, "records": total, "groups": groups }),
        )?;
        writeln!(w)?;
    } else {
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(3).max(3);
        writeln!(w, "{:<width$} {:>10} {:>7}", "KEY", "COUNT", "SHARE")?;
        for (k, n) in &rows {
            writeln!(w, "{k:<width$} {n:>10} {:>6.1}%", share(*n) * 100.0)?;
        }
        writeln!(w, "{:<width$} {total:>10}", "total")?;
        if matches!(by, By::Detector | By::Category) {
            writeln!(
                w,
                "(a record with several {} counts once for each)",
                if matches!(by, By::Detector) {
                    "detectors"
                } else {
                    "categories"
                }
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn keygen(secret_file: &Path, public: Option<&Path>) -> Result<ExitCode> {
    let seed = generate_seed().context("reading the system's random source")?;
    let checkpoints = Checkpoints::from_seed(seed);
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(secret_file)
        .with_context(|| format!("cannot create {}", secret_file.display()))?;
    writeln!(file, "{hex}")?;
    file.sync_all()?;
    let public_hex = checkpoints.public_key_hex();
    if let Some(p) = public {
        std::fs::write(p, format!("{public_hex}\n"))
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    println!("{public_hex}");
    Ok(ExitCode::SUCCESS)
}

fn verify(paths: &[PathBuf], public_key: Option<&Path>, partial: bool) -> Result<ExitCode> {
    let files = files(paths)?;
    let key = public_key
        .map(CheckpointPublicKey::from_file)
        .transpose()
        .context("checkpoint public key")?;
    let v = verify_files_with(&files, key.as_ref()).context("reading the log")?;
    if let Some(bad) = &v.violation {
        println!("FAILED {bad}");
        println!(
            "{} record(s) verified before it{}",
            v.records,
            v.last_seq
                .map(|s| format!(" (last good seq {s})"))
                .unwrap_or_default()
        );
        return Ok(ExitCode::from(1));
    }
    for (file, line, seq) in &v.recoveries {
        println!(
            "note: {}:{line}: seq {seq}: a writer restarted after a crash and cut a half-written line",
            file.display()
        );
    }
    if key.is_some() {
        println!(
            "checkpoints: {} valid; {} record(s) after the last one are not signed yet",
            v.checkpoints, v.unsigned_tail
        );
    }
    if v.starts_mid_chain {
        // Records cut from the beginning look exactly like older files not given.
        if !partial {
            println!(
                "FAILED {}: the first record (seq {}) does not start a chain: records before it are missing (pass --partial if older files were rotated away on purpose)",
                v.files
                    .first()
                    .map_or_else(String::new, |f| f.display().to_string()),
                v.first_seq.unwrap_or(0)
            );
            return Ok(ExitCode::from(1));
        }
        println!(
            "note: the first record (seq {}) does not start a chain: earlier files were not given",
            v.first_seq.unwrap_or(0)
        );
    }
    match (v.first_seq, v.last_seq, &v.head) {
        (Some(a), Some(b), Some(h)) => println!(
            "OK {} record(s), seq {a}..{b}, {} file(s), head {h}",
            v.records,
            v.files.len()
        ),
        _ => println!("OK no records in {} file(s)", v.files.len()),
    }
    Ok(ExitCode::SUCCESS)
}

fn tail(paths: &[PathBuf], follow: bool, n: usize, json: bool) -> Result<ExitCode> {
    let files = files(paths)?;
    let mut last: std::collections::VecDeque<Vec<u8>> =
        std::collections::VecDeque::with_capacity(n + 1);
    for_each_record(&files, |line, _| {
        if n > 0 {
            if last.len() == n {
                last.pop_front();
            }
            last.push_back(line.to_vec());
        }
        Ok(())
    })?;
    let stdout = io::stdout();
    {
        let mut w = stdout.lock();
        if !json {
            writeln!(w, "{}", table_header())?;
        }
        for line in &last {
            print_line(&mut w, line, json)?;
        }
        w.flush()?;
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let current = files.last().expect("at least one file").clone();
    follow_file(&current, json)
}

fn print_line(w: &mut impl Write, line: &[u8], json: bool) -> io::Result<()> {
    if json {
        w.write_all(line)?;
        w.write_all(b"\n")
    } else {
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => writeln!(w, "{}", table_row(&r)),
            Err(_) => Ok(()),
        }
    }
}

/// Prints lines appended to `path` as they come. When the file is replaced (rotation:
/// it gets shorter or is gone), reads the new one from its start.
fn follow_file(path: &Path, json: bool) -> Result<ExitCode> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut pos = file.seek(SeekFrom::End(0))?;
    let mut partial = Vec::new();
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(_) => continue,
        };
        let same = file
            .metadata()
            .map(|m| same_file(&m, path))
            .unwrap_or(false);
        if len < pos || !same {
            file = match File::open(path) {
                Ok(f) => f,
                Err(_) => continue,
            };
            pos = 0;
            partial.clear();
        }
        if len == pos {
            continue;
        }
        file.seek(SeekFrom::Start(pos))?;
        let mut reader = BufReader::new(&mut file);
        let stdout = io::stdout();
        let mut w = stdout.lock();
        loop {
            let n = reader.read_until(b'\n', &mut partial)?;
            if n == 0 {
                break;
            }
            pos += n as u64;
            if partial.last() == Some(&b'\n') {
                partial.pop();
                print_line(&mut w, &partial, json)?;
                partial.clear();
            }
        }
        w.flush()?;
    }
}

#[cfg(unix)]
fn same_file(open: &std::fs::Metadata, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).is_ok_and(|m| m.ino() == open.ino() && m.dev() == open.dev())
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &Path) -> bool {
    true
}
