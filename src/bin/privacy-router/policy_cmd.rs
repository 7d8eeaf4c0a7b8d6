//! `privacy-router policy check|test|explain|schema`.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use privacy_router::extract::{ApiFormat, extract};
use privacy_router::policy::{Action, Basis, Decision, PolicySet, TeamPolicy, json_schema};
use privacy_router::scan::{Finding, Scanner};
use serde::Deserialize;

#[derive(Args)]
pub(crate) struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Check every policy in DIR; print every problem. Exit 0 when the set loads, 2 if not.
    Check {
        /// The policy directory.
        dir: PathBuf,
    },
    /// Run the test cases in DIR/tests/*.toml against the policies in DIR. Exit 0 when
    /// all pass, 1 when one fails, 2 when the policies or tests do not load.
    Test {
        /// The policy directory.
        dir: PathBuf,
    },
    /// Show the decision for a prompt and what led to it (values masked). Exit 0 when
    /// the action is `allow`, 1 otherwise.
    Explain {
        /// The policy directory.
        dir: PathBuf,
        /// The team whose policy applies (unknown teams get the `default` team's).
        #[arg(long)]
        team: String,
        /// The prompt; `-` or nothing reads standard input.
        input: Option<PathBuf>,
        /// Read the input as a JSON request body instead of prompt text.
        #[arg(long)]
        body: bool,
        /// With --body: the request path, which names the API format.
        #[arg(long, value_name = "PATH", default_value = "/v1/chat/completions")]
        path: String,
    },
    /// Print the JSON Schema of a policy file.
    Schema,
}

pub(crate) fn run(args: PolicyArgs) -> Result<ExitCode> {
    match args.command {
        PolicyCommand::Check { dir } => check(&dir),
        PolicyCommand::Test { dir } => test(&dir),
        PolicyCommand::Explain {
            dir,
            team,
            input,
            body,
            path,
        } => explain(&dir, &team, input.as_deref(), body.then_some(path.as_str())),
        PolicyCommand::Schema => {
            let mut out = io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &json_schema())?;
            writeln!(out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads a policy directory, printing every diagnostic on failure. `Ok(None)`: it did
/// not load, and the diagnostics were printed.
fn load(dir: &Path) -> Result<Option<PolicySet>> {
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    match PolicySet::load_dir(dir) {
        Ok(set) => Ok(Some(set)),
        Err(diags) => {
            let mut err = io::stderr().lock();
            writeln!(err, "{diags}")?;
            Ok(None)
        }
    }
}

fn check(dir: &Path) -> Result<ExitCode> {
    let Some(set) = load(dir)? else {
        return Ok(ExitCode::from(2));
    };
    let mut out = io::stdout().lock();
    for name in set.teams() {
        let team = set.team(name);
        writeln!(
            out,
            "{:<20} {:<24} {}",
            name,
            team.id().file(),
            team.id().content_hash()
        )?;
    }
    let n = set.teams().count();
    writeln!(
        out,
        "ok: {n} team{} in {}",
        if n == 1 { "" } else { "s" },
        dir.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A test file: `DIR/tests/*.toml`, a list of `[[case]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    team: String,
    prompt: Option<String>,
    /// A JSON request body, read as the API its `path` names.
    body: Option<String>,
    path: Option<String>,
    expect: String,
    /// When given: exactly these detectors must have findings.
    detectors: Option<Vec<String>>,
}

fn test(dir: &Path) -> Result<ExitCode> {
    let Some(set) = load(dir)? else {
        return Ok(ExitCode::from(2));
    };
    let tests_dir = dir.join("tests");
    let mut files: Vec<PathBuf> = fs::read_dir(&tests_dir)
        .with_context(|| format!("cannot read {}", tests_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in &files {
        let text =
            fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let parsed: TestFile = toml::from_str(&text).map_err(|e| {
            let at = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
            anyhow::anyhow!(
                "{}:{}:{}: {}",
                path.display(),
                at.0,
                at.1,
                e.message().trim()
            )
        })?;
        for case in parsed.case {
            // Every case is checked before any runs: a report that stops halfway is
            // harder to read than one clear error.
            let expect = Action::from_name(&case.expect).with_context(|| {
                format!(
                    "{}: case `{}`: unknown action `{}` in `expect`",
                    path.display(),
                    case.name,
                    case.expect
                )
            })?;
            if case.prompt.is_some() == case.body.is_some() {
                bail!(
                    "{}: case `{}`: give exactly one of `prompt` and `body`",
                    path.display(),
                    case.name
                );
            }
            cases.push((path, case, expect));
        }
    }
    if cases.is_empty() {
        bail!("no test cases in {}", tests_dir.display());
    }
    let mut out = io::stdout().lock();
    let mut failed = 0;
    let mut current: Option<&PathBuf> = None;
    for (path, case, expect) in &cases {
        if current != Some(*path) {
            let shown = path.strip_prefix(dir).unwrap_or(path);
            writeln!(out, "{}", shown.display())?;
            current = Some(*path);
        }
        let problems = run_case(&set, case, *expect);
        let team = if set.get(&case.team).is_some() {
            case.team.clone()
        } else {
            format!("{}: the default policy", case.team)
        };
        if problems.is_empty() {
            writeln!(out, "  PASS  {} [{team}]", case.name)?;
        } else {
            failed += 1;
            writeln!(out, "  FAIL  {} [{team}]", case.name)?;
            for p in problems {
                writeln!(out, "          {p}")?;
            }
        }
    }
    let total = cases.len();
    writeln!(out, "{}", "-".repeat(60))?;
    writeln!(out, "PASS: {}/{total}", total - failed)?;
    if failed > 0 {
        writeln!(out, "FAIL: {failed}/{total}")?;
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// What is wrong with a case's outcome; empty when it passes.
fn run_case(set: &PolicySet, case: &Case, expect: Action) -> Vec<String> {
    let team = set.team(&case.team);
    let decision = match (&case.prompt, &case.body) {
        (Some(prompt), _) => team.evaluate(prompt),
        (None, Some(body)) => decide_body(team, body, case.path.as_deref().unwrap_or("/")),
        (None, None) => unreachable!("checked when the test files were read"),
    };
    let mut problems = Vec::new();
    if decision.action() != expect {
        problems.push(format!(
            "expected {expect}, got {} ({})",
            decision.action(),
            summary(&decision)
        ));
    }
    if let Some(expected) = &case.detectors {
        let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
        want.sort_unstable();
        want.dedup();
        let got: Vec<&str> = decision.reasons().iter().map(|r| r.detector()).collect();
        if want != got {
            problems.push(format!(
                "expected detectors [{}], found [{}]",
                want.join(", "),
                got.join(", ")
            ));
        }
    }
    problems
}

/// The decision for a request body: every prompt-bearing string is scanned; a body that
/// cannot be read gets `on_error`, parts that cannot be scanned `on_unscannable`.
fn decide_body(team: &TeamPolicy, body: &str, path: &str) -> Decision {
    let Ok(extracted) = extract(ApiFormat::from_path(path), body.as_bytes()) else {
        return team.decide_error();
    };
    let findings: Vec<Finding> = extracted
        .segments()
        .iter()
        .flat_map(|s| team.scan(s.text()))
        .collect();
    if extracted.unscannable().is_empty() {
        team.decide(&findings)
    } else {
        team.decide_with_unscannable(&findings)
    }
}

fn summary(d: &Decision) -> String {
    if d.reasons().is_empty() {
        return format!("{:?}, no findings", d.basis()).to_lowercase();
    }
    let parts: Vec<String> = d
        .reasons()
        .iter()
        .map(|r| format!("{} x{}", r.detector(), r.count()))
        .collect();
    parts.join(", ")
}

fn explain(
    dir: &Path,
    team: &str,
    input: Option<&Path>,
    body_path: Option<&str>,
) -> Result<ExitCode> {
    let Some(set) = load(dir)? else {
        return Ok(ExitCode::from(2));
    };
    let input = read_input(input)?;
    let policy = set.team(team);
    let mut out = String::new();
    let id = policy.id();
    let fallback = if set.get(team).is_none() {
        format!(" (no policy for `{team}`: the default team's)")
    } else {
        String::new()
    };
    writeln!(out, "team      {}{fallback}", id.team())?;
    writeln!(out, "policy    {} {}", id.file(), id.content_hash())?;

    // What was scanned: the prompt, or each prompt-bearing string of the body (with its
    // JSON path), and what could not be.
    let mut scanned: Vec<(String, &str, Vec<Finding>)> = Vec::new();
    let mut unscannable = Vec::new();
    let mut unreadable = None;
    let extracted;
    match body_path {
        None => scanned.push((String::new(), &input, policy.scan(&input))),
        Some(path) => match extract(ApiFormat::from_path(path), input.as_bytes()) {
            Err(e) => unreadable = Some(e.kind()),
            Ok(x) => {
                extracted = x;
                writeln!(
                    out,
                    "body      {}, {} string{} scanned",
                    extracted.format(),
                    extracted.segments().len(),
                    if extracted.segments().len() == 1 {
                        ""
                    } else {
                        "s"
                    }
                )?;
                for s in extracted.segments() {
                    scanned.push((format!("{} ", s.path()), s.text(), policy.scan(s.text())));
                }
                unscannable = extracted.unscannable().to_vec();
            }
        },
    }
    let all: Vec<Finding> = scanned
        .iter()
        .flat_map(|(_, _, f)| f.iter().cloned())
        .collect();
    let decision = if let Some(kind) = unreadable {
        writeln!(out, "body      cannot be read ({kind})")?;
        policy.decide_error()
    } else if unscannable.is_empty() {
        policy.decide(&all)
    } else {
        policy.decide_with_unscannable(&all)
    };

    if all.is_empty() {
        writeln!(out, "findings  none")?;
    } else {
        writeln!(out, "findings")?;
        for (prefix, text, findings) in &scanned {
            write_findings(&mut out, text, prefix, findings, &decision)?;
        }
    }
    for u in &unscannable {
        writeln!(out, "unscannable {} at {}", u.kind, u.path)?;
    }
    if decision.matched_rules().is_empty() {
        writeln!(out, "rules     none matched")?;
    } else {
        writeln!(out, "rules")?;
        for r in decision.matched_rules() {
            let n = r.count();
            writeln!(
                out,
                "  {:<20} {:<40} -> {} ({n} finding{})",
                r.origin(),
                r.condition(),
                r.action(),
                if n == 1 { "" } else { "s" }
            )?;
        }
    }
    let basis = match decision.basis() {
        Basis::Rules => "the most restrictive matching rule",
        Basis::Default => "`default`: no rule matched",
        Basis::Unscannable => "`on_unscannable`: parts of the request cannot be scanned",
        Basis::Error => "`on_error`: the input could not be inspected",
        _ => "",
    };
    writeln!(out, "decision  {} ({basis})", decision.action())?;
    if let Some(t) = decision.target() {
        writeln!(out, "target    {t}")?;
    }
    io::stdout().lock().write_all(out.as_bytes())?;
    Ok(if decision.action() == Action::Allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write_findings(
    out: &mut String,
    text: &str,
    prefix: &str,
    findings: &[Finding],
    decision: &Decision,
) -> Result<()> {
    for f in findings {
        let (line, col) = line_col(text, f.start());
        let action = decision
            .reasons()
            .iter()
            .find(|r| r.detector() == f.detector())
            .and_then(|r| r.action())
            .map_or_else(|| "no rule".to_string(), |a| format!("-> {a}"));
        let position = format!("{prefix}{line}:{col}");
        writeln!(
            out,
            "  {position:<8} {:<24} {:<13} {:<18} {action}",
            f.detector(),
            f.category().as_str(),
            mask(&text[f.span()])
        )?;
    }
    Ok(())
}

/// The first two characters and the length: enough to tell findings apart, not enough
/// to leak them.
fn mask(value: &str) -> String {
    let head: String = value.chars().take(2).collect();
    format!("{head}… ({} bytes)", value.len())
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

fn read_input(input: Option<&Path>) -> Result<String> {
    let mut raw = Vec::new();
    match input {
        None => io::stdin()
            .read_to_end(&mut raw)
            .context("cannot read standard input")?,
        Some(p) if p.as_os_str() == "-" => io::stdin()
            .read_to_end(&mut raw)
            .context("cannot read standard input")?,
        Some(p) => {
            raw = fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?;
            raw.len()
        }
    };
    String::from_utf8(raw).map_err(|e| {
        anyhow::anyhow!(
            "input is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The scanner of the team defined by the policy file `file` (`scan --policy`). The
/// file's directory is loaded as a whole, so `extends` and dictionaries resolve.
pub(crate) fn scanner_for_file(file: &Path) -> Result<Scanner> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("{}: not a policy file", file.display()))?;
    if !file.is_file() {
        bail!("{}: no such policy file", file.display());
    }
    let set = PolicySet::load_dir(dir).map_err(|d| {
        anyhow::anyhow!(
            "{}: the policies do not load ({} problem{}; run `privacy-router policy check {}`)",
            file.display(),
            d.len(),
            if d.len() == 1 { "" } else { "s" },
            dir.display()
        )
    })?;
    let team = set
        .teams()
        .map(|t| set.team(t))
        .find(|t| t.id().file() == name)
        .with_context(|| format!("{}: defines no team (a base file?)", file.display()))?;
    Ok(team.scanner().clone())
}
