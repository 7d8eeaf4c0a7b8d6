//! Accuracy of the default scanner on two held-out corpora, `tests/data/heldout.jsonl` and
//! `tests/data/heldout2.jsonl`.
//!
//! The corpus in `corpus.rs` is generated from templates by the same people who wrote the
//! patterns, so its figures say how well the patterns fit the sentences their authors had in
//! mind. This corpus is the independent check: 303 prompts (tickets, chats, logs, JSON, CSV,
//! code, configs, emails; English plus German, French, Spanish, Italian, Polish, Hindi,
//! Japanese and Arabic text) written by hand by a separate contributor without reading
//! `patterns/*.toml` or `src/scan/`. 178 carry one to three labelled values, about a tenth of
//! those in obfuscated forms (`[at]`, zero-width characters, fullwidth and Devanagari digits,
//! `\u0040`, `%40`, `&#64;`, base64 in `Authorization: Basic` and Kubernetes Secrets); 125 are
//! clean or look-alike text (UUIDs, hashes, versions, numbers failing Luhn or mod 97,
//! placeholders, documentation domains and addresses) and should draw no finding. Judgement
//! calls (private addresses, Stripe test keys, a version string shaped like an IPv4 address)
//! say so in their `note`. Checksummed values (cards, IBANs, national ids, crypto addresses,
//! GitHub and npm tokens) were generated with real check digits by a throwaway script, not
//! copied from documentation or from this repository.
//!
//! Each line is `{"id", "kind", "text", "expect": [{"category", "value", "occurrence"?}],
//! "note"?}`. A label names its value as a substring of the text rather than by offsets, so
//! the file stays editable by hand; the test finds the value's byte span (the `occurrence`-th
//! non-overlapping match, counted from 1, default 1).
//!
//! History, so that the figures can be trusted: the first run, before any change to the
//! detectors, gave recall 94.47% (222/235) and 8 of 125 clean documents with a finding.
//! The detectors were then fixed for the gaps it showed, each with a must-match example of
//! its own (see CHANGELOG.md), and six documents were changed where the corpus disagreed with
//! the documented rules: RFC 1918 addresses and a Stripe test-mode key are findings, and one
//! unquoted YAML value that began with `!` (a YAML tag) was quoted. Each says so in its
//! `note`.
//!
//! The second corpus, `heldout2.jsonl` (session 5), is a blind re-run of the same method
//! by another contributor who read neither the patterns, the engine, nor the first corpus:
//! 367 documents, 227 with 300 labelled values (13% obfuscated) and 140 clean or
//! look-alike, in the same format. Its first run, before any change, gave recall 95.33%
//! (286/300) and 9 of 140 clean documents with a finding (6.43%), scanned without the test
//! dictionary, which its author never saw. The gaps it showed were fixed as classes, each
//! with examples of its own (CHANGELOG.md, session 5), not by matching its strings.
//!
//! The third, `heldout3.jsonl` (also session 5, after the second's fixes), came from a
//! third blind contributor with a different brief: healthcare, banking, HR, telecoms,
//! government and incident-response text, long logs, CSV exports and configs, twelve
//! languages. 358 documents, 201 with 374 labelled values (12% obfuscated) and 157 clean
//! or look-alike. First run: recall 97.06% (363/374), 3 of 157 clean documents flagged
//! (1.91%).
//!
//! The fourth, `heldout4.jsonl` (session 5, after the third's fixes), is a developer's
//! corpus: half of it code and configuration in a dozen languages and formats, secrets
//! held as real code holds them (constructor arguments, header pairs, XML elements, DSNs,
//! basic-auth helpers). 349 documents, 217 with 340 labelled values and 132 clean or
//! look-alike. First run: recall 92.94% (316/340), 2 of 132 clean documents flagged
//! (1.52%); secrets in code were the weak spot (89.39%).
//!
//! The fifth, `heldout5.jsonl` (end of session 5), is text transcribed or pasted from
//! other media: call-centre transcripts with numbers spoken as words ("four one five"),
//! OCR'd and PDF-pasted text with values broken across lines, forwarded threads, and
//! non-Latin scripts. 211 documents (from 87 templates, so less varied than the others),
//! 125 with 204 labelled values (22% obfuscated) and 86 clean. First run: recall 86.76%
//! (177/204), 5 of 86 clean documents flagged (5.81%). Numbers spoken as words were 15 of
//! its 27 misses; since the view reads them and its false alarms were fixed (session
//! 6): 96.57% (197/204), 0 of 86 flagged. Since numbers broken across two lines at a
//! space are read (session 7, `[detector.wrapped]`): 99.51% (203/204), held to the target;
//! the one miss is an unquoted password holding `&`.
//!
//! The sixth, `heldout6.jsonl` (session 6, blind like the others), is what developers,
//! analysts and support staff paste at work: SQL results, stack traces and request
//! dumps, chat threads, issue exports, markdown tables, configuration in a dozen
//! formats, code, and 19% non-English text. 377 documents, 229 with 514 labelled values
//! and 148 clean or look-alike. First run (after numbers said as words were read):
//! recall 94.36% (485/514; secrets 82.57%), 10 of 148 clean documents flagged (6.76%),
//! seven of them four-part versions read as addresses. After fixes: 97.28%, 1 of 148.
//!
//! The seventh, `heldout7.jsonl` (session 6, written after the sixth's fixes by another
//! blind contributor), is an ordinary day's mix: support, finance, HR, healthcare, sales,
//! DevOps, development, legal and personal requests, 23% non-English. 360 documents, 219
//! with 438 labelled values and 141 clean. First run: recall 96.58% (423/438), 2 of 141
//! clean documents flagged (1.42%), the best first run so far. After fixes: 97.95%, 0.
//!
//! The eighth, `heldout8.jsonl` (session 7, blind like the others, after the wrapped
//! numbers of `wrapped.rs` were read but before anything else changed), follows a new
//! brief: long incident timelines and postmortems, forms pasted from PDFs each in one
//! language (German, French, Spanish, Portuguese, Italian, Dutch, Polish, Swedish,
//! Japanese, Hindi, and English for six countries), data exports and crash logs. 438
//! documents, 262 with 1,108 labelled values (12% of the distinct values obfuscated) and
//! 176 clean or look-alike. First run: recall 97.38% (1079/1108; secrets 84.96%), 13 of
//! 176 clean documents flagged (7.39%), ten of them emails at `example.<country>`
//! domains. After fixes (each a class with examples of its own, CHANGELOG.md): 99.91%,
//! 0 of 176. The one miss is a date of birth in a Heisei year that never was (平成43年,
//! 2031: the era ended in its 31st year), which the date check rejects.
//!
//! The ninth, `heldout9.jsonl` (session 7, written blind after the eighth's fixes),
//! stresses false alarms: a bank's, an insurer's, a hospital group's and a telecom
//! operator's back office and IT in fifteen languages, 45% clean documents full of
//! look-alikes (BICs, ABA numbers, creditor ids, LEIs, ISINs, masked cards, IMEIs, NPIs,
//! ICD codes). 400 documents, 220 with 528 labelled values and 180 clean. First run:
//! recall 96.21% (508/528; financial 93.62%, secrets 88.14%), 4 of 180 clean documents
//! flagged (2.22%). After fixes: 99.81%, 1 of 180 (a Polish claim number after `nr`
//! shaped like a German landline, `0271/61194`; left open). Three of the four had been
//! ids in a telecom export's `charging_id` column shaped like compact French mobiles:
//! those now need a phone word (`phone-fr-compact`), as ten bare US digits do.
//!
//! Asserted on every corpus: at most 1% of clean documents with a finding, and recall of
//! at least 98% (the targets). The sixth and seventh reached it in session 7
//! (98.25% and 98.17%: netfilter `MAC=` fields, `mysqli` positional passwords, `пароль`
//! with no colon, a wrapped GitHub token); until then they were held to the recall
//! they had reached, so that no change loses what they found.
//! Left: one hard negative in `heldout2.jsonl` (`10.4.1.7`, a version 48 bytes after its
//! cue word) and one in `heldout6.jsonl`. Since session 6 a dotted quad shaped like a
//! version (`7.3.0.63`) needs a network word near it, which cleared the others. A corpus
//! over the target would list its flagged documents by id in `over_target`, so that the
//! miss stays visible and no other joins them. Run with `-- --nocapture` for the tables. Values are never printed: a preview is the first two
//! characters and the length in bytes.

use crate::accuracy::{pct, print_categories, scanner};
use crate::corpus::Cat;
use privacy_router::scan::{Finding, Scanner};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};

/// Embedded at compile time so that the test does not depend on the working directory.
const CORPORA: [Corpus; 9] = [
    Corpus {
        name: "heldout.jsonl",
        text: include_str!("../data/heldout.jsonl"),
        dictionary: true,
        recall_at_least: RECALL_TARGET,
        over_target: &[],
    },
    Corpus {
        name: "heldout2.jsonl",
        text: include_str!("../data/heldout2.jsonl"),
        dictionary: false,
        recall_at_least: RECALL_TARGET,
        over_target: &[],
    },
    Corpus {
        name: "heldout3.jsonl",
        text: include_str!("../data/heldout3.jsonl"),
        dictionary: false,
        recall_at_least: RECALL_TARGET,
        over_target: &[],
    },
    Corpus {
        name: "heldout4.jsonl",
        text: include_str!("../data/heldout4.jsonl"),
        dictionary: false,
        recall_at_least: RECALL_TARGET,
        over_target: &[],
    },
    Corpus {
        name: "heldout5.jsonl",
        text: include_str!("../data/heldout5.jsonl"),
        dictionary: false,
        recall_at_least: RECALL_TARGET,
        over_target: &[],
    },
    Corpus {
        name: "heldout6.jsonl",
        text: include_str!("../data/heldout6.jsonl"),
        dictionary: false,
        recall_at_least: RECALL_TARGET,
        over_target: &[],
    },
    Corpus {
        name: "heldout7.jsonl",
        text: include_str!("../data/heldout7.jsonl"),
        dictionary: false,
        recall_at_least: RECALL_TARGET,
        over_target: &[],
    },
    Corpus {
        name: "heldout8.jsonl",
        text: include_str!("../data/heldout8.jsonl"),
        dictionary: false,
        recall_at_least: RECALL_TARGET,
        over_target: &[],
    },
    Corpus {
        name: "heldout9.jsonl",
        text: include_str!("../data/heldout9.jsonl"),
        dictionary: false,
        recall_at_least: RECALL_TARGET,
        over_target: &[],
    },
];
const MIN_DOCS: usize = 200;
const RECALL_TARGET: f64 = 0.98;
/// At most 1% of the clean or look-alike documents may draw a finding.
const FP_RATE_AT_MOST: f64 = 0.01;
const MAX_DOC_BYTES: usize = 4 * 1024;
const MIN_DOC_BYTES: usize = 100;
/// One held-out file, and whether it was written to meet the dictionary of `corpus.rs`.
struct Corpus {
    name: &'static str,
    text: &'static str,
    /// Scan with the test dictionary (`codenames`) as well as the default detectors. The
    /// second corpus's author never saw that list, so its documents are scanned without it.
    dictionary: bool,
    /// The recall asserted on it: the target, or, for a corpus still under it,
    /// what it has reached (a floor against losing it). The false-positive target is
    /// asserted on every corpus.
    recall_at_least: f64,
    /// Clean documents that draw a finding beyond the 1% the target allows, named so
    /// that the target's miss is visible here and no other document joins them.
    over_target: &'static [&'static str],
}

impl Corpus {
    fn scanner(&self) -> Scanner {
        if self.dictionary {
            scanner()
        } else {
            Scanner::builder()
                .build()
                .expect("the default scanner builds")
        }
    }
}

const KINDS: [&str; 11] = [
    "ticket", "chat", "log", "json", "csv", "code", "config", "email", "prose", "sql", "markdown",
];

/// One line of the file, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDoc {
    id: String,
    kind: String,
    text: String,
    expect: Vec<RawLabel>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabel {
    category: String,
    value: String,
    #[serde(default)]
    occurrence: Option<usize>,
}

/// A labelled value resolved to its byte span in the text.
struct Label {
    cat: Cat,
    start: usize,
    end: usize,
}

struct Doc {
    id: String,
    kind: &'static str,
    text: String,
    labels: Vec<Label>,
    note: Option<String>,
}

fn parse_cat(name: &str) -> Option<Cat> {
    Cat::ALL.into_iter().find(|c| c.name() == name)
}

/// Byte span of the `occurrence`-th (from 1) non-overlapping match of `value` in `text`.
fn find_span(text: &str, value: &str, occurrence: usize) -> Option<(usize, usize)> {
    if value.is_empty() || occurrence == 0 {
        return None;
    }
    let (start, _) = text.match_indices(value).nth(occurrence - 1)?;
    Some((start, start + value.len()))
}

/// Parses and checks the whole file, reporting every problem at once rather than the first.
fn load(corpus: &Corpus) -> Result<Vec<Doc>, Vec<String>> {
    let mut docs = Vec::new();
    let mut problems = Vec::new();
    let mut ids = HashSet::new();
    for (i, line) in corpus.text.lines().enumerate() {
        let at = format!("{}:{}", corpus.name, i + 1);
        if line.trim().is_empty() {
            problems.push(format!("{at}: empty line"));
            continue;
        }
        let raw: RawDoc = match serde_json::from_str(line) {
            Ok(raw) => raw,
            Err(e) => {
                problems.push(format!("{at}: not a corpus document: {e}"));
                continue;
            }
        };
        let at = format!("{at} ({})", raw.id);
        if !ids.insert(raw.id.clone()) {
            problems.push(format!("{at}: duplicate id"));
        }
        let kind = KINDS.iter().copied().find(|k| *k == raw.kind);
        if kind.is_none() {
            problems.push(format!("{at}: unknown kind {:?}", raw.kind));
        }
        if !(MIN_DOC_BYTES..=MAX_DOC_BYTES).contains(&raw.text.len()) {
            problems.push(format!("{at}: text is {} bytes", raw.text.len()));
        }
        let mut labels = Vec::new();
        for (j, l) in raw.expect.iter().enumerate() {
            let Some(cat) = parse_cat(&l.category) else {
                problems.push(format!(
                    "{at}: label {j}: unknown category {:?}",
                    l.category
                ));
                continue;
            };
            let n = l.occurrence.unwrap_or(1);
            let Some((start, end)) = find_span(&raw.text, &l.value, n) else {
                // The value itself is not printed: it may be sensitive.
                problems.push(format!(
                    "{at}: label {j} ({}, {}): occurrence {n} not found in the text",
                    l.category,
                    preview(&l.value)
                ));
                continue;
            };
            labels.push(Label { cat, start, end });
        }
        labels.sort_by_key(|l| l.start);
        if labels.windows(2).any(|w| w[0].end > w[1].start) {
            problems.push(format!("{at}: labels overlap"));
        }
        if let Some(kind) = kind {
            docs.push(Doc {
                id: raw.id,
                kind,
                text: raw.text,
                labels,
                note: raw.note,
            });
        }
    }
    if docs.len() < MIN_DOCS {
        problems.push(format!(
            "{} documents, at least {MIN_DOCS} expected",
            docs.len()
        ));
    }
    if docs.iter().all(|d| d.labels.is_empty()) || docs.iter().all(|d| !d.labels.is_empty()) {
        problems.push("the corpus needs both labelled and clean documents".to_string());
    }
    if problems.is_empty() {
        Ok(docs)
    } else {
        Err(problems)
    }
}

fn load_checked(corpus: &Corpus) -> Vec<Doc> {
    match load(corpus) {
        Ok(docs) => docs,
        Err(problems) => panic!(
            "tests/data/{} is malformed ({} problems):\n{}",
            corpus.name,
            problems.len(),
            problems.join("\n")
        ),
    }
}

/// First two characters (escaped, so zero-width and line breaks show) and the byte length.
fn preview(value: &str) -> String {
    let head: String = value.chars().take(2).collect();
    format!("{}…[{} B]", head.escape_debug(), value.len())
}

fn overlaps(f: &Finding, l: &Label) -> bool {
    f.start() < l.end && l.start < f.end()
}

fn note(doc: &Doc) -> String {
    doc.note
        .as_deref()
        .map_or_else(String::new, |n| format!("  # {n}"))
}

/// Prints the recall tables for one corpus and returns its recall.
fn recall(corpus: &Corpus) -> f64 {
    let docs = load_checked(corpus);
    let scanner = corpus.scanner();

    // (covered, total) per label category and per document kind.
    let mut by_cat: BTreeMap<Cat, (usize, usize)> = BTreeMap::new();
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut unlabelled = Vec::new();
    let labelled: Vec<&Doc> = docs.iter().filter(|d| !d.labels.is_empty()).collect();

    for doc in &labelled {
        let findings = scanner.scan(&doc.text);
        for l in &doc.labels {
            let hit = findings
                .iter()
                .any(|f| overlaps(f, l) && Cat::of(f.category()) == Some(l.cat));
            for counter in [
                by_cat.entry(l.cat).or_default(),
                by_kind.entry(doc.kind).or_default(),
            ] {
                counter.1 += 1;
                counter.0 += usize::from(hit);
            }
            if !hit {
                // A finding of another category on the value still names the detector.
                let wrong: Vec<String> = findings
                    .iter()
                    .filter(|f| overlaps(f, l))
                    .map(|f| format!("{} ({:?})", f.detector(), f.category()))
                    .collect();
                let detector = if wrong.is_empty() {
                    "no finding".to_string()
                } else {
                    wrong.join(", ")
                };
                misses.push(format!(
                    "  {:<28} {:<12} {:<34} {}{}",
                    doc.id,
                    l.cat.name(),
                    preview(&doc.text[l.start..l.end]),
                    detector,
                    note(doc)
                ));
            }
        }
        for f in &findings {
            if !doc.labels.iter().any(|l| overlaps(f, l)) {
                let cat = format!("{:?}", f.category());
                unlabelled.push(format!(
                    "  {:<28} {:<32} {cat:<14} {}",
                    doc.id,
                    f.detector(),
                    preview(&doc.text[f.start()..f.end()])
                ));
            }
        }
    }

    let covered: usize = by_cat.values().map(|c| c.0).sum();
    let total: usize = by_cat.values().map(|c| c.1).sum();
    println!(
        "\n=== held-out recall, {}: {} labelled documents, {total} values ===",
        corpus.name,
        labelled.len()
    );
    print_categories(&by_cat);
    println!(
        "  {:<13} {covered:>4}/{total:<4} {:6.2}%",
        "ALL",
        pct(covered, total)
    );
    println!("\n--- by document kind ---");
    for kind in KINDS {
        if let Some((c, t)) = by_kind.get(kind) {
            println!("  {kind:<13} {c:>4}/{t:<4} {:6.2}%", pct(*c, *t));
        }
    }
    println!(
        "\n--- {} misses: doc, category, value preview, detector on the value ---",
        misses.len()
    );
    for m in &misses {
        println!("{m}");
    }
    println!(
        "\n--- {} findings on unlabelled text in labelled documents (informational) ---",
        unlabelled.len()
    );
    for u in &unlabelled {
        println!("{u}");
    }
    assert!(total > 0, "{}: no labelled values", corpus.name);
    covered as f64 / total as f64
}

#[test]
fn heldout_recall() {
    let recalls: Vec<(&Corpus, f64)> = CORPORA.iter().map(|c| (c, recall(c))).collect();
    for (corpus, recall) in recalls {
        assert!(
            recall >= corpus.recall_at_least,
            "{}: held-out recall {:.2}% is under {:.1}%",
            corpus.name,
            recall * 100.0,
            corpus.recall_at_least * 100.0
        );
    }
}

/// Prints the false-positive tables for one corpus and returns the ids of the clean
/// documents with a finding, and how many clean documents there are.
fn false_positives(corpus: &Corpus) -> (Vec<String>, usize) {
    let docs = load_checked(corpus);
    let scanner = corpus.scanner();

    // (flagged, total) per document kind.
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut by_detector: BTreeMap<String, usize> = BTreeMap::new();
    let mut lines = Vec::new();
    let clean: Vec<&Doc> = docs.iter().filter(|d| d.labels.is_empty()).collect();

    for doc in &clean {
        let findings = scanner.scan(&doc.text);
        let counter = by_kind.entry(doc.kind).or_default();
        counter.1 += 1;
        counter.0 += usize::from(!findings.is_empty());
        for f in &findings {
            *by_detector.entry(f.detector().to_string()).or_default() += 1;
            let cat = format!("{:?}", f.category());
            lines.push(format!(
                "  {:<28} {:<32} {cat:<14} {}{}",
                doc.id,
                f.detector(),
                preview(&doc.text[f.start()..f.end()]),
                note(doc)
            ));
        }
    }

    let flagged: usize = by_kind.values().map(|c| c.0).sum();
    println!(
        "\n=== held-out false positives, {}: {flagged}/{} clean or look-alike documents with a finding ({:.2}%) ===",
        corpus.name,
        clean.len(),
        pct(flagged, clean.len())
    );
    for kind in KINDS {
        if let Some((f, t)) = by_kind.get(kind) {
            println!("  {kind:<13} {f:>4}/{t:<4} {:6.2}%", pct(*f, *t));
        }
    }
    println!("\n--- findings by detector ---");
    for (det, n) in &by_detector {
        println!("  {det:<32} x{n}");
    }
    println!("\n--- every finding: doc, detector, category, preview ---");
    for l in &lines {
        println!("{l}");
    }
    assert!(!clean.is_empty(), "{}: no clean documents", corpus.name);
    let flagged_ids = clean
        .iter()
        .filter(|d| !scanner.scan(&d.text).is_empty())
        .map(|d| d.id.clone())
        .collect();
    (flagged_ids, clean.len())
}

#[test]
fn heldout_false_positives() {
    // Every corpus's tables are printed before any assertion fails.
    let results: Vec<(&Corpus, Vec<String>, usize)> = CORPORA
        .iter()
        .map(|c| {
            let (flagged, clean) = false_positives(c);
            (c, flagged, clean)
        })
        .collect();
    for (corpus, flagged, clean) in results {
        // Rounded down: 1% of 140 documents allows one.
        let allowed = (clean as f64 * FP_RATE_AT_MOST) as usize;
        if corpus.over_target.is_empty() {
            assert!(
                flagged.len() <= allowed,
                "{}: {} of {clean} clean documents with a finding, more than {allowed} (1%)",
                corpus.name,
                flagged.len()
            );
        } else {
            let unlisted: Vec<&String> = flagged
                .iter()
                .filter(|id| !corpus.over_target.contains(&id.as_str()))
                .collect();
            assert!(
                unlisted.is_empty(),
                "{}: clean documents with a finding besides the {} listed as over the target: {unlisted:?}",
                corpus.name,
                corpus.over_target.len()
            );
        }
    }
}
