//! Deterministic synthetic corpus for the accuracy tests (`tests/it/accuracy.rs`) and the
//! benchmarks (`benches/scan.rs`, which includes this file with `#[path]`).
//!
//! Everything is generated from a small splitmix64 PRNG with caller-supplied seeds, so the
//! corpus is byte-for-byte identical on every run and platform. Sensitive values are
//! generated to be *valid* (real checksums, real issuer prefixes, non-reserved domains and
//! address ranges) and every inserted value is labelled with its exact byte span in the
//! final text. Obfuscated variants (zero-width characters, fullwidth or Devanagari digits,
//! `[at]`/`[dot]`, `\u0040`, `%40`, `&#64;`, odd digit grouping) are labelled with their
//! span in the ORIGINAL text.
//!
//! Entry points: [`labelled`], [`clean`], [`lookalikes`] (and the `*_docs` variants that keep
//! the labels), [`mixed_corpus`], [`prompt_4k`], [`terms`], [`EMBEDDED_TERMS`].

use privacy_router::scan::Category;
use sha2::{Digest, Sha256};
use std::collections::HashSet;

// ================================================================================================
// Public types
// ================================================================================================

/// Category of an expected span (mirrors `privacy_router::scan::Category`, which is
/// `#[non_exhaustive]`, so the corpus keeps its own closed set for bookkeeping).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cat {
    Pii,
    Financial,
    Secret,
    Network,
    Confidential,
}

impl Cat {
    pub const ALL: [Cat; 5] = [
        Cat::Pii,
        Cat::Financial,
        Cat::Secret,
        Cat::Network,
        Cat::Confidential,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cat::Pii => "pii",
            Cat::Financial => "financial",
            Cat::Secret => "secret",
            Cat::Network => "network",
            Cat::Confidential => "confidential",
        }
    }

    /// The engine's category for this label.
    pub fn category(self) -> Category {
        match self {
            Cat::Pii => Category::Pii,
            Cat::Financial => Category::Financial,
            Cat::Secret => Category::Secret,
            Cat::Network => Category::Network,
            Cat::Confidential => Category::Confidential,
        }
    }

    /// The corpus category of an engine category (`None` for categories added later).
    pub fn of(c: Category) -> Option<Cat> {
        match c {
            Category::Pii => Some(Cat::Pii),
            Category::Financial => Some(Cat::Financial),
            Category::Secret => Some(Cat::Secret),
            Category::Network => Some(Cat::Network),
            Category::Confidential => Some(Cat::Confidential),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocKind {
    Ticket,
    Chat,
    Email,
    Python,
    JavaScript,
    Rust,
    Yaml,
    DotEnv,
    Log,
    Json,
    Csv,
    German,
    French,
    Japanese,
    Hindi,
}

impl DocKind {
    pub const ALL: [DocKind; 15] = [
        DocKind::Ticket,
        DocKind::Chat,
        DocKind::Email,
        DocKind::Python,
        DocKind::JavaScript,
        DocKind::Rust,
        DocKind::Yaml,
        DocKind::DotEnv,
        DocKind::Log,
        DocKind::Json,
        DocKind::Csv,
        DocKind::German,
        DocKind::French,
        DocKind::Japanese,
        DocKind::Hindi,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DocKind::Ticket => "ticket",
            DocKind::Chat => "chat",
            DocKind::Email => "email",
            DocKind::Python => "python",
            DocKind::JavaScript => "javascript",
            DocKind::Rust => "rust",
            DocKind::Yaml => "yaml",
            DocKind::DotEnv => "dotenv",
            DocKind::Log => "log",
            DocKind::Json => "json",
            DocKind::Csv => "csv",
            DocKind::German => "german",
            DocKind::French => "french",
            DocKind::Japanese => "japanese",
            DocKind::Hindi => "hindi",
        }
    }

    /// Prose in a language other than English (the text contains non-ASCII characters).
    pub fn is_non_ascii(self) -> bool {
        matches!(
            self,
            DocKind::German | DocKind::French | DocKind::Japanese | DocKind::Hindi
        )
    }
}

/// A sensitive value inserted into a document: byte span in the document text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub start: usize,
    pub end: usize,
    pub cat: Cat,
    /// What was inserted, e.g. `"email-zero-width"`, `"iban"`, `"github-pat"`.
    pub kind: &'static str,
}

/// A look-alike inserted into a document (must NOT be reported): byte span in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoy {
    pub start: usize,
    pub end: usize,
    /// What was inserted, e.g. `"luhn-fail-card"`, `"doc-ipv4"`, `"placeholder-key"`.
    pub kind: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    pub kind: DocKind,
    pub text: String,
    /// Expected findings, sorted by start, non-overlapping.
    pub expected: Vec<Expected>,
    /// Look-alikes that were inserted on purpose.
    pub decoys: Vec<Decoy>,
}

/// Dictionary terms that the generator embeds into documents (category `Confidential`).
/// The accuracy test builds its dictionary from exactly these.
pub const EMBEDDED_TERMS: [&str; 8] = [
    "Project Falcon",
    "Atlas",
    "Project Bluefin",
    "Operation Nightjar",
    "Halcyon Ridge",
    "Kestrel",
    "Project Tidewater",
    "Ironbark",
];

// ================================================================================================
// Public entry points
// ================================================================================================

/// `n` documents with labelled sensitive values (1-4 per document; CSV exports carry more).
pub fn labelled(seed: u64, n: usize) -> Vec<Doc> {
    let mut rng = Rng::new(seed ^ 0x4c41_4245_4c4c_4544);
    let all = all_values();
    (0..n)
        .map(|i| {
            let mut cx = Ctx::new(rng.next_u64());
            // The first value cycles through every kind so that each one is well represented;
            // the document kind is drawn among those that can carry it.
            let first = all[i % all.len()];
            let weights: Vec<(DocKind, u32)> = KIND_WEIGHTS_LABELLED
                .iter()
                .copied()
                .filter(|(k, _)| allowed_values(*k).contains(&first))
                .collect();
            let dk = pick_kind(&mut cx.rng, &weights);
            let allowed = allowed_values(dk);
            let n_values = if dk == DocKind::Csv {
                cx.rng.range(1, 2)
            } else {
                cx.rng.range(1, 4)
            };
            let mut values: Vec<V> = vec![first];
            while values.len() < n_values {
                let v = *cx.rng.pick(allowed);
                if dk == DocKind::Csv && values.contains(&v) {
                    continue;
                }
                values.push(v);
            }
            let n_decoys = cx.rng.range(0, 2);
            let decoys: Vec<Lk> = (0..n_decoys)
                .map(|_| *cx.rng.pick(allowed_decoys(dk)))
                .collect();
            let min_bytes = cx.rng.range(250, 2200);
            build(&mut cx, dk, &values, None, &decoys, min_bytes)
        })
        .collect()
}

/// `n` realistic documents with nothing sensitive in them.
pub fn clean(seed: u64, n: usize) -> Vec<String> {
    clean_docs(seed, n).into_iter().map(|d| d.text).collect()
}

/// Like [`clean`], keeping the document kind.
pub fn clean_docs(seed: u64, n: usize) -> Vec<Doc> {
    let mut rng = Rng::new(seed ^ 0x434c_4541_4e5f_5f5f);
    (0..n)
        .map(|_| {
            let mut cx = Ctx::new(rng.next_u64());
            let dk = pick_kind(&mut cx.rng, &KIND_WEIGHTS_LABELLED);
            let min_bytes = cx.rng.range(200, 3000);
            build(&mut cx, dk, &[], None, &[], min_bytes)
        })
        .collect()
}

/// `n` documents full of things that look sensitive but are not: UUIDs, hashes, versions,
/// timestamps, order ids, prices, checksum-failing numbers, placeholder keys, published test
/// values, reserved domains and documentation address ranges.
pub fn lookalikes(seed: u64, n: usize) -> Vec<String> {
    lookalike_docs(seed, n)
        .into_iter()
        .map(|d| d.text)
        .collect()
}

/// Like [`lookalikes`], keeping the decoy spans.
pub fn lookalike_docs(seed: u64, n: usize) -> Vec<Doc> {
    let mut rng = Rng::new(seed ^ 0x4c4f_4f4b_414c_494b);
    (0..n)
        .map(|_| {
            let mut cx = Ctx::new(rng.next_u64());
            let dk = pick_kind(&mut cx.rng, &KIND_WEIGHTS_LABELLED);
            let n_decoys = cx.rng.range(2, 5);
            let decoys: Vec<Lk> = (0..n_decoys)
                .map(|_| *cx.rng.pick(allowed_decoys(dk)))
                .collect();
            let min_bytes = cx.rng.range(200, 2000);
            build(&mut cx, dk, &[], None, &decoys, min_bytes)
        })
        .collect()
}

/// A realistic sparse mix for throughput measurements: documents of 0.5-8 KB, mostly clean,
/// roughly one sensitive value per 2-4 KB, about 10% non-ASCII prose, until `bytes` total.
pub fn mixed_corpus(seed: u64, bytes: usize) -> Vec<String> {
    mixed_docs(seed, bytes)
        .into_iter()
        .map(|d| d.text)
        .collect()
}

/// Like [`mixed_corpus`], keeping the labels.
pub fn mixed_docs(seed: u64, bytes: usize) -> Vec<Doc> {
    let mut rng = Rng::new(seed ^ 0x4d49_5845_445f_5f5f);
    let mut docs = Vec::new();
    let mut total = 0usize;
    while total < bytes {
        let mut cx = Ctx::new(rng.next_u64());
        let dk = pick_kind(&mut cx.rng, &KIND_WEIGHTS_MIXED);
        // Log-uniform-ish size between 512 B and 8 KB.
        let size = 512usize << cx.rng.below(5);
        let size = (size + cx.rng.below(size)).min(8192).min(max_bytes(dk));
        let per_value = cx.rng.range(2048, 4096);
        let mut n_values = size / per_value;
        if cx.rng.chance((size % per_value) as f64 / per_value as f64) {
            n_values += 1;
        }
        let allowed = allowed_values(dk);
        let values: Vec<V> = if dk == DocKind::Csv {
            // One sparsely filled sensitive column.
            if n_values > 0 {
                vec![*cx.rng.pick(allowed)]
            } else {
                Vec::new()
            }
        } else {
            (0..n_values).map(|_| *cx.rng.pick(allowed)).collect()
        };
        let n_decoys = cx.rng.range(0, 2);
        let decoys: Vec<Lk> = (0..n_decoys)
            .map(|_| *cx.rng.pick(allowed_decoys(dk)))
            .collect();
        let doc = build(&mut cx, dk, &values, Some(n_values), &decoys, size);
        total += doc.text.len();
        docs.push(doc);
    }
    docs
}

/// A single prompt of about 4 KB (4096..=4700 bytes): instructions, a pasted support ticket,
/// a log excerpt and an API payload, with a handful of sensitive values.
pub fn prompt_4k(seed: u64) -> String {
    prompt_4k_doc(seed).text
}

/// Like [`prompt_4k`], keeping the labels.
pub fn prompt_4k_doc(seed: u64) -> Doc {
    let mut cx = Ctx::new(seed ^ 0x5052_4f4d_5054_344b);
    let mut b = Builder::default();
    b.text(
        "You are a senior support engineer. Read the customer ticket, the log excerpt and the \
         API payload below, find the most likely root cause and draft a short, friendly reply \
         that explains the next steps. Do not promise refunds.\n\n### Ticket\n\n",
    );
    let ticket = build(
        &mut cx,
        DocKind::Ticket,
        &[V::Email, V::PhoneUs],
        None,
        &[Lk::OrderId],
        1500,
    );
    b.append_doc(&ticket);
    b.text("\n### Log excerpt\n\n```\n");
    let log = build(
        &mut cx,
        DocKind::Log,
        &[V::Ipv4, V::Jwt],
        None,
        &[Lk::Uuid],
        1200,
    );
    b.append_doc(&log);
    b.text("```\n\n### Payload\n\n```json\n");
    let json = build(
        &mut cx,
        DocKind::Json,
        &[V::Card],
        None,
        &[Lk::Timestamp],
        700,
    );
    b.append_doc(&json);
    b.text("```\n\n### Notes\n\n");
    while b.text.len() < 4096 {
        let sentence = cx_pick(&mut cx, PROSE_EN);
        let s = fill(&mut cx, sentence);
        b.text(&s);
        b.text(" ");
    }
    b.text("\n");
    b.finish(DocKind::Ticket)
}

/// `n` distinct dictionary terms: first [`EMBEDDED_TERMS`], then synthetic code names such as
/// "Project Veltrane", "Operation Quorask" or single invented words. Deterministic.
pub fn terms(n: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(n);
    let mut seen: HashSet<String> = HashSet::with_capacity(n);
    for t in EMBEDDED_TERMS.iter().take(n) {
        seen.insert(t.to_string());
        out.push(t.to_string());
    }
    let mut rng = Rng::new(0x5445_524d_535f_5f5f);
    let onsets = [
        "v", "qu", "z", "th", "k", "br", "dr", "x", "gl", "m", "n", "s", "tr", "f", "h", "l", "p",
        "r", "st", "w",
    ];
    let vowels = ["a", "e", "i", "o", "u", "ae", "y", "io"];
    let codas = ["", "n", "r", "x", "th", "sk", "l", "m", "nd", "st"];
    let prefixes = ["Project ", "Operation ", "Initiative ", "", "", "Codename "];
    while out.len() < n {
        let syllables = rng.range(2, 3);
        let mut w = String::new();
        for _ in 0..syllables {
            w.push_str(rng.word(&onsets));
            w.push_str(rng.word(&vowels));
            w.push_str(rng.word(&codas));
        }
        let mut word = capitalize(&w);
        if rng.chance(0.15) {
            word = format!("{word}-{}", rng.range(2, 99));
        }
        let term = format!("{}{word}", rng.pick(&prefixes));
        if seen.insert(term.clone()) {
            out.push(term);
        }
    }
    out
}

/// Names of every value kind the generator can insert (for coverage checks).
pub fn value_kinds() -> Vec<&'static str> {
    all_values().into_iter().map(V::name).collect()
}

fn all_values() -> Vec<V> {
    let mut out: Vec<V> = Vec::new();
    for dk in DocKind::ALL {
        for &v in allowed_values(dk) {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

/// Names of every look-alike kind the generator can insert (for coverage checks).
pub fn decoy_kinds() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for dk in DocKind::ALL {
        for d in allowed_decoys(dk) {
            if !out.contains(&d.name()) {
                out.push(d.name());
            }
        }
    }
    out
}

// ================================================================================================
// PRNG (splitmix64)
// ================================================================================================

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn word(&mut self, xs: &[&'static str]) -> &'static str {
        xs[self.below(xs.len())]
    }

    fn alpha(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len())] as char)
            .collect()
    }

    fn digits(&mut self, n: usize) -> String {
        self.alpha(DIGITS, n)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }
}

const DIGITS: &[u8] = b"0123456789";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";
/// GitHub's base62 alphabet order.
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

// ================================================================================================
// Checksums and encodings (also used by the self-tests against published examples)
// ================================================================================================

pub mod check {
    //! Independent validators for the generated values; the generators search for check
    //! digits with these, and the self-test pins them to published example values.

    fn digits_of(s: &str) -> Vec<u32> {
        s.chars().filter_map(|c| c.to_digit(10)).collect()
    }

    pub fn luhn(s: &str) -> bool {
        let d = digits_of(s);
        if d.is_empty() {
            return false;
        }
        let sum: u32 = d
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &x)| {
                if i % 2 == 1 {
                    let y = x * 2;
                    if y > 9 { y - 9 } else { y }
                } else {
                    x
                }
            })
            .sum();
        sum.is_multiple_of(10)
    }

    /// ISO 13616 mod-97 over an IBAN (spaces ignored).
    pub fn iban(s: &str) -> bool {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        if s.len() < 5 || !s.is_ascii() {
            return false;
        }
        let rearranged = format!("{}{}", &s[4..], &s[..4]);
        mod97(&rearranged) == Some(1)
    }

    /// Remainder mod 97 of an alphanumeric string with letters as 10..35.
    pub fn mod97(s: &str) -> Option<u32> {
        let mut r: u32 = 0;
        for c in s.chars() {
            let v = c.to_digit(36)?;
            if v >= 10 {
                r = (r * 100 + v) % 97;
            } else {
                r = (r * 10 + v) % 97;
            }
        }
        Some(r)
    }

    /// CRC-32 (IEEE 802.3, reflected, init and xorout 0xFFFFFFFF).
    pub fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// `n` in base62 (alphabet 0-9A-Za-z), left-padded with '0' to `width`.
    pub fn base62(mut n: u32, width: usize) -> String {
        let mut out = Vec::new();
        while n > 0 {
            out.push(super::BASE62[(n % 62) as usize]);
            n /= 62;
        }
        while out.len() < width {
            out.push(b'0');
        }
        out.reverse();
        String::from_utf8(out).unwrap()
    }

    /// GitHub/npm style token: `prefix_` + 30 base62 + 6-char base62 CRC32 of those 30.
    pub fn github_token(tok: &str) -> bool {
        let Some((_, body)) = tok.rsplit_once('_') else {
            return false;
        };
        if body.len() != 36 || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return false;
        }
        base62(crc32(&body.as_bytes()[..30]), 6) == body[30..]
    }

    const VD: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const VP: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];

    pub fn verhoeff(s: &str) -> bool {
        let d = digits_of(s);
        let mut c = 0usize;
        for (i, &x) in d.iter().rev().enumerate() {
            c = VD[c][VP[i % 8][x as usize] as usize] as usize;
        }
        !d.is_empty() && c == 0
    }

    /// UK NHS number: 10 digits, mod-11 check digit.
    pub fn nhs(s: &str) -> bool {
        let d = digits_of(s);
        if d.len() != 10 {
            return false;
        }
        let sum: u32 = d[..9]
            .iter()
            .enumerate()
            .map(|(i, &x)| x * (10 - i as u32))
            .sum();
        let check = 11 - sum % 11;
        let check = if check == 11 { 0 } else { check };
        check != 10 && check == d[9]
    }

    /// Australian TFN (9 digits), weighted mod 11.
    pub fn tfn(s: &str) -> bool {
        let d = digits_of(s);
        const W: [u32; 9] = [1, 4, 3, 7, 5, 8, 6, 9, 10];
        d.len() == 9 && d.iter().zip(W).map(|(x, w)| x * w).sum::<u32>() % 11 == 0
    }

    /// Polish PESEL: weighted checksum and a real birth date.
    pub fn pesel(s: &str) -> bool {
        let d = digits_of(s);
        if d.len() != 11 {
            return false;
        }
        const W: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
        let sum: u32 = d[..10].iter().zip(W).map(|(x, w)| x * w).sum();
        if (10 - sum % 10) % 10 != d[10] {
            return false;
        }
        let yy = d[0] * 10 + d[1];
        let mm = d[2] * 10 + d[3];
        let dd = d[4] * 10 + d[5];
        let (century, month) = match mm {
            81..=92 => (1800, mm - 80),
            1..=12 => (1900, mm),
            21..=32 => (2000, mm - 20),
            41..=52 => (2100, mm - 40),
            61..=72 => (2200, mm - 60),
            _ => return false,
        };
        dd >= 1 && dd <= super::days_in_month(century + yy, month)
    }

    /// Spanish NIF (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter).
    pub fn es_nif(s: &str) -> bool {
        let s: String = s.chars().filter(|c| *c != '-' && *c != ' ').collect();
        let b = s.as_bytes();
        if b.len() != 9 || !b[8].is_ascii_uppercase() {
            return false;
        }
        let num: String = match b[0] {
            b'X' => format!("0{}", &s[1..8]),
            b'Y' => format!("1{}", &s[1..8]),
            b'Z' => format!("2{}", &s[1..8]),
            _ => s[..8].to_string(),
        };
        let Ok(n) = num.parse::<u32>() else {
            return false;
        };
        b"TRWAGMYFPDXBNJZSQVHLCKE"[(n % 23) as usize] == b[8]
    }

    /// Italian codice fiscale check character.
    pub fn it_cf(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 16
            && b.iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && cf_check(&s[..15]) == b[15]
    }

    pub fn cf_check(first15: &str) -> u8 {
        const ODD: [u32; 26] = [
            1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25,
            24, 23,
        ];
        let mut sum = 0u32;
        for (i, c) in first15.bytes().enumerate() {
            let idx = if c.is_ascii_digit() {
                (c - b'0') as usize
            } else {
                (c - b'A') as usize
            };
            sum += if i % 2 == 0 { ODD[idx] } else { idx as u32 };
        }
        b'A' + (sum % 26) as u8
    }

    /// Singapore NRIC/FIN (S/T/F/G prefix).
    pub fn sg_nric(s: &str) -> bool {
        let b = s.as_bytes();
        if b.len() != 9 || !b[1..8].iter().all(u8::is_ascii_digit) {
            return false;
        }
        const W: [u32; 7] = [2, 7, 6, 5, 4, 3, 2];
        let mut sum: u32 = b[1..8]
            .iter()
            .zip(W)
            .map(|(c, w)| (c - b'0') as u32 * w)
            .sum();
        if b[0] == b'T' || b[0] == b'G' {
            sum += 4;
        }
        let table: &[u8] = match b[0] {
            b'S' | b'T' => b"JZIHGFEDCBA",
            b'F' | b'G' => b"XWUTRQPNMLK",
            _ => return false,
        };
        table[(sum % 11) as usize] == b[8]
    }

    const B58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

    pub fn base58_encode(data: &[u8]) -> String {
        let zeros = data.iter().take_while(|&&b| b == 0).count();
        let mut digits: Vec<u8> = Vec::new(); // base58 digits, little endian
        for &byte in data {
            let mut carry = byte as u32;
            for d in digits.iter_mut() {
                carry += (*d as u32) << 8;
                *d = (carry % 58) as u8;
                carry /= 58;
            }
            while carry > 0 {
                digits.push((carry % 58) as u8);
                carry /= 58;
            }
        }
        let mut out = "1".repeat(zeros);
        out.extend(digits.iter().rev().map(|&d| B58[d as usize] as char));
        out
    }

    pub fn base58_decode(s: &str) -> Option<Vec<u8>> {
        let zeros = s.bytes().take_while(|&b| b == b'1').count();
        let mut bytes: Vec<u8> = Vec::new(); // little endian
        for c in s.bytes() {
            let mut carry = B58.iter().position(|&x| x == c)? as u32;
            for b in bytes.iter_mut() {
                carry += (*b as u32) * 58;
                *b = carry as u8;
                carry >>= 8;
            }
            while carry > 0 {
                bytes.push(carry as u8);
                carry >>= 8;
            }
        }
        let mut out = vec![0u8; zeros];
        out.extend(bytes.iter().rev());
        Some(out)
    }

    pub fn base58check(s: &str) -> bool {
        use sha2::{Digest, Sha256};
        let Some(raw) = base58_decode(s) else {
            return false;
        };
        if raw.len() != 25 {
            return false;
        }
        let h = Sha256::digest(Sha256::digest(&raw[..21]));
        h[..4] == raw[21..]
    }

    const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

    pub fn bech32_polymod(values: &[u8]) -> u32 {
        const G: [u32; 5] = [
            0x3b6a_57b2,
            0x2650_8e6d,
            0x1ea1_19fa,
            0x3d42_33dd,
            0x2a14_62b3,
        ];
        let mut chk = 1u32;
        for &v in values {
            let top = chk >> 25;
            chk = ((chk & 0x1ff_ffff) << 5) ^ v as u32;
            for (i, g) in G.iter().enumerate() {
                if (top >> i) & 1 == 1 {
                    chk ^= g;
                }
            }
        }
        chk
    }

    pub fn hrp_expand(hrp: &str) -> Vec<u8> {
        let mut v: Vec<u8> = hrp.bytes().map(|b| b >> 5).collect();
        v.push(0);
        v.extend(hrp.bytes().map(|b| b & 31));
        v
    }

    /// Segwit address with a valid bech32 (v0) or bech32m (v1+) checksum.
    pub fn bech32(s: &str) -> bool {
        let s = s.to_ascii_lowercase();
        let Some((hrp, data)) = s.rsplit_once('1') else {
            return false;
        };
        let Some(vals) = data
            .bytes()
            .map(|c| BECH32.iter().position(|&x| x == c).map(|p| p as u8))
            .collect::<Option<Vec<u8>>>()
        else {
            return false;
        };
        if vals.len() < 7 {
            return false;
        }
        let mut all = hrp_expand(hrp);
        all.extend(&vals);
        let pm = bech32_polymod(&all);
        if vals[0] == 0 {
            pm == 1
        } else {
            pm == 0x2bc8_30a3
        }
    }

    pub fn bech32_encode(hrp: &str, data5: &[u8]) -> String {
        let mut all = hrp_expand(hrp);
        all.extend(data5);
        all.extend([0u8; 6]);
        let pm = bech32_polymod(&all) ^ 1;
        let mut out = format!("{hrp}1");
        for &d in data5 {
            out.push(BECH32[d as usize] as char);
        }
        for i in 0..6 {
            out.push(BECH32[((pm >> (5 * (5 - i))) & 31) as usize] as char);
        }
        out
    }
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

fn b64_encode(data: &[u8], alphabet: &[u8], pad: bool) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

// ================================================================================================
// Value kinds
// ================================================================================================

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum V {
    Email,
    EmailAtDot,
    EmailBracket,
    EmailZw,
    EmailJsonEsc,
    EmailPct,
    EmailFullwidth,
    EmailHtml,
    PhoneUs,
    PhoneE164,
    PhoneUk,
    PhoneDe,
    PhoneFr,
    PhoneIn,
    PhoneFullwidth,
    PhoneDevanagari,
    Ssn,
    Itin,
    Nino,
    Nhs,
    Sin,
    Pan,
    Aadhaar,
    Nif,
    Nie,
    Cf,
    Tfn,
    Nric,
    Pesel,
    Passport,
    Dob,
    Card,
    CardSplit,
    CardFullwidth,
    Iban,
    Btc,
    Eth,
    AwsKeyId,
    AwsSecret,
    GithubPat,
    Slack,
    SlackWebhook,
    Stripe,
    OpenAi,
    Anthropic,
    Jwt,
    Pem,
    PemJson,
    ConnString,
    Password,
    Gitlab,
    GoogleApi,
    Sendgrid,
    Npm,
    Ipv4,
    Ipv6,
    Mac,
    Term,
    TermLower,
}

impl V {
    fn name(self) -> &'static str {
        use V::*;
        match self {
            Email => "email",
            EmailAtDot => "email-obf-at-dot",
            EmailBracket => "email-obf-bracket",
            EmailZw => "email-zero-width",
            EmailJsonEsc => "email-json-escaped",
            EmailPct => "email-percent-encoded",
            EmailFullwidth => "email-fullwidth",
            EmailHtml => "email-html-entity",
            PhoneUs => "phone-us",
            PhoneE164 => "phone-e164",
            PhoneUk => "phone-uk",
            PhoneDe => "phone-de",
            PhoneFr => "phone-fr",
            PhoneIn => "phone-in",
            PhoneFullwidth => "phone-fullwidth",
            PhoneDevanagari => "phone-devanagari-digits",
            Ssn => "us-ssn",
            Itin => "us-itin",
            Nino => "uk-nino",
            Nhs => "uk-nhs",
            Sin => "ca-sin",
            Pan => "in-pan",
            Aadhaar => "in-aadhaar",
            Nif => "es-nif",
            Nie => "es-nie",
            Cf => "it-codice-fiscale",
            Tfn => "au-tfn",
            Nric => "sg-nric",
            Pesel => "pl-pesel",
            Passport => "passport",
            Dob => "date-of-birth",
            Card => "card",
            CardSplit => "card-split-digits",
            CardFullwidth => "card-fullwidth",
            Iban => "iban",
            Btc => "btc-address",
            Eth => "eth-address",
            AwsKeyId => "aws-access-key-id",
            AwsSecret => "aws-secret-access-key",
            GithubPat => "github-pat",
            Slack => "slack-token",
            SlackWebhook => "slack-webhook",
            Stripe => "stripe-secret-key",
            OpenAi => "openai-key",
            Anthropic => "anthropic-key",
            Jwt => "jwt",
            Pem => "pem-private-key",
            PemJson => "pem-private-key-json-escaped",
            ConnString => "connection-string",
            Password => "password-assignment",
            Gitlab => "gitlab-pat",
            GoogleApi => "google-api-key",
            Sendgrid => "sendgrid-key",
            Npm => "npm-token",
            Ipv4 => "ipv4",
            Ipv6 => "ipv6",
            Mac => "mac",
            Term => "dictionary-term",
            TermLower => "dictionary-term-lowercase",
        }
    }

    fn cat(self) -> Cat {
        use V::*;
        match self {
            Email | EmailAtDot | EmailBracket | EmailZw | EmailJsonEsc | EmailPct
            | EmailFullwidth | EmailHtml | PhoneUs | PhoneE164 | PhoneUk | PhoneDe | PhoneFr
            | PhoneIn | PhoneFullwidth | PhoneDevanagari | Ssn | Itin | Nino | Nhs | Sin | Pan
            | Aadhaar | Nif | Nie | Cf | Tfn | Nric | Pesel | Passport | Dob => Cat::Pii,
            Card | CardSplit | CardFullwidth | Iban | Btc | Eth => Cat::Financial,
            AwsKeyId | AwsSecret | GithubPat | Slack | SlackWebhook | Stripe | OpenAi
            | Anthropic | Jwt | Pem | PemJson | ConnString | Password | Gitlab | GoogleApi
            | Sendgrid | Npm => Cat::Secret,
            Ipv4 | Ipv6 | Mac => Cat::Network,
            Term | TermLower => Cat::Confidential,
        }
    }

    fn multiline(self) -> bool {
        self == V::Pem
    }

    /// Field / variable / column names used around the value in structured documents.
    fn keys(self) -> &'static [&'static str] {
        use V::*;
        match self {
            Email | EmailZw | EmailJsonEsc | EmailPct | EmailFullwidth | EmailHtml | EmailAtDot
            | EmailBracket => &["email", "contact_email", "user_email", "billing_email"],
            PhoneUs | PhoneE164 | PhoneUk | PhoneDe | PhoneFr | PhoneIn | PhoneFullwidth
            | PhoneDevanagari => &["phone", "phone_number", "mobile", "contact_phone"],
            Ssn => &["ssn", "social_security_number"],
            Itin => &["itin", "tax_id_itin"],
            Nino => &["ni_number", "nino", "national_insurance_number"],
            Nhs => &["nhs_number", "nhs_no"],
            Sin => &["sin", "social_insurance_number"],
            Pan => &["pan", "pan_number"],
            Aadhaar => &["aadhaar", "aadhaar_number"],
            Nif => &["nif", "dni_nif"],
            Nie => &["nie", "nie_number"],
            Cf => &["codice_fiscale", "cf"],
            Tfn => &["tfn", "tax_file_number"],
            Nric => &["nric", "nric_fin"],
            Pesel => &["pesel"],
            Passport => &["passport_number", "passport_no", "passport"],
            Dob => &["dob", "date_of_birth", "birthdate"],
            Card | CardSplit | CardFullwidth => &["card_number", "pan_card", "cc_number", "card"],
            Iban => &["iban", "bank_account_iban", "payout_iban"],
            Btc => &["btc_address", "wallet", "payout_wallet"],
            Eth => &["eth_address", "wallet_address"],
            AwsKeyId => &["aws_access_key_id", "access_key_id"],
            AwsSecret => &["aws_secret_access_key", "secret_access_key"],
            GithubPat => &["github_token", "gh_token", "git_token"],
            Slack => &["slack_token", "slack_bot_token"],
            SlackWebhook => &["slack_webhook_url", "alerts_webhook"],
            Stripe => &["stripe_secret_key", "stripe_api_key", "stripe_key"],
            OpenAi => &["openai_api_key", "openai_key"],
            Anthropic => &["anthropic_api_key", "claude_api_key"],
            Jwt => &["access_token", "id_token", "auth_token", "jwt"],
            Pem | PemJson => &["private_key", "tls_key", "ssh_private_key"],
            ConnString => &["database_url", "db_url", "dsn", "connection_string"],
            Password => &[
                "password",
                "db_password",
                "smtp_password",
                "admin_password",
                "passwd",
            ],
            Gitlab => &["gitlab_token", "ci_job_token"],
            GoogleApi => &["google_api_key", "maps_api_key"],
            Sendgrid => &["sendgrid_api_key", "mail_api_key"],
            Npm => &["npm_token", "npm_auth_token"],
            Ipv4 | Ipv6 => &["client_ip", "remote_addr", "server_ip", "ip"],
            Mac => &["mac", "mac_address", "device_mac"],
            Term | TermLower => &["codename", "project", "initiative"],
        }
    }

    /// English prose templates; `{}` is the value.
    fn prose(self) -> &'static [&'static str] {
        use V::*;
        match self {
            Email | EmailZw | EmailAtDot | EmailBracket => &[
                "You can reach me at {} any time.",
                "My email is {} if you need anything else.",
                "Please send the corrected invoice to {} instead.",
                "Contact: {}",
                "Could you cc {} on the reply?",
            ],
            EmailHtml => &[
                "<p>Questions? Write to <a href=\"mailto:{}\">our billing team</a>.</p>",
                "Reply-To: {}",
            ],
            EmailPct => &[
                "The unsubscribe link https://mail.globex.com/unsubscribe?u={}&list=7 gives a 404.",
                "I was sent https://app.hooli.xyz/invite?email={}&role=admin but it has expired.",
            ],
            EmailJsonEsc => &["The payload contained \"email\": \"{}\" and was rejected."],
            EmailFullwidth => &["Email: {}"],
            PhoneUs | PhoneE164 | PhoneUk | PhoneDe | PhoneFr | PhoneIn | PhoneFullwidth
            | PhoneDevanagari => &[
                "Call me at {} any time after 3pm.",
                "My phone number is {}.",
                "You can reach me on {} during office hours.",
                "Mobile: {}",
                "Tel. {}",
                "Please call back on {} about the refund.",
            ],
            Ssn => &[
                "My SSN is {}.",
                "Social security number: {}",
                "SSN {} (needed for the W-9).",
            ],
            Itin => &["My ITIN is {}.", "ITIN: {}"],
            Nino => &[
                "My National Insurance number is {}.",
                "NI number: {}",
                "NINO {}",
            ],
            Nhs => &["My NHS number is {}.", "NHS number: {}", "NHS no. {}"],
            Sin => &["My SIN is {}.", "Social Insurance Number: {}"],
            Pan => &["My PAN is {}.", "PAN card: {}", "PAN number {}"],
            Aadhaar => &["My Aadhaar number is {}.", "Aadhaar: {}", "aadhaar no {}"],
            Nif => &["Mi NIF es {}.", "NIF: {}", "DNI/NIF {}"],
            Nie => &["My NIE is {}.", "NIE: {}"],
            Cf => &["Il mio codice fiscale è {}.", "Codice fiscale: {}", "CF {}"],
            Tfn => &["My TFN is {}.", "Tax file number: {}"],
            Nric => &["My NRIC is {}.", "NRIC: {}", "NRIC/FIN {}"],
            Pesel => &["Mój PESEL to {}.", "PESEL: {}", "PESEL number {}"],
            Passport => &[
                "My passport number is {}.",
                "Passport No.: {}",
                "passport {} expires next year",
            ],
            Dob => &[
                "My date of birth is {}.",
                "DOB: {}",
                "Date of birth {}",
                "I was born on {}.",
            ],
            Card | CardSplit | CardFullwidth => &[
                "My card number is {} and it keeps getting declined.",
                "Card: {}",
                "Please charge it to {} instead.",
                "The card {} was charged twice.",
            ],
            Iban => &[
                "Please refund to IBAN {}.",
                "IBAN: {}",
                "Our bank details: {}",
                "Could you transfer the deposit to {} please?",
            ],
            Btc => &[
                "Send the payment to bitcoin address {}.",
                "BTC: {}",
                "My wallet is {}",
            ],
            Eth => &["ETH wallet: {}", "Send the USDC to {} on mainnet."],
            AwsKeyId => &[
                "Our access key id is {} if that helps.",
                "AWS_ACCESS_KEY_ID={}",
                "The key {} was rotated last week.",
            ],
            AwsSecret => &["aws_secret_access_key = {}", "The secret access key is {}"],
            GithubPat => &[
                "I used the token {} to clone the repo.",
                "GITHUB_TOKEN={}",
                "Here is my PAT: {}",
            ],
            Slack => &["Our bot token is {}", "SLACK_BOT_TOKEN={}"],
            SlackWebhook => &["The webhook {} stopped posting.", "Webhook URL: {}"],
            Stripe => &[
                "Our Stripe key is {}, can you see why charges fail?",
                "STRIPE_SECRET_KEY={}",
                "We use {} in production.",
            ],
            OpenAi => &[
                "OPENAI_API_KEY={}",
                "My key is {} and it says quota exceeded.",
                "api key: {}",
            ],
            Anthropic => &[
                "ANTHROPIC_API_KEY={}",
                "Here is the key: {}",
                "We call the API with {}",
            ],
            Gitlab | GoogleApi | Sendgrid | Npm => &[
                "token: {}",
                "The key {} stopped working yesterday.",
                "We configured {} in CI.",
            ],
            Jwt => &[
                "Authorization: Bearer {}",
                "The token {} expires too early.",
                "id_token={}",
            ],
            Pem => &[
                "Here is the deploy key:\n\n{}\n\nCan you check the format?",
                "private key below\n{}\n",
            ],
            PemJson => &["The service account JSON has \"private_key\": \"{}\" in it."],
            ConnString => &[
                "The app connects with {}",
                "DATABASE_URL={}",
                "Connection string: {}",
            ],
            Password => &[
                "password: {}",
                "Login is admin / password: {}",
                "My password is {} in case you need to log in.",
                "The wifi password is {}",
            ],
            Ipv4 | Ipv6 => &[
                "My IP is {}.",
                "The server at {} is not responding.",
                "Blocked IP: {}",
                "Requests from {} are failing since Monday.",
            ],
            Mac => &["The device MAC is {}.", "MAC address: {}"],
            Term => &[
                "The {} launch is confidential until June.",
                "Please summarise the {} roadmap for the board.",
                "Budget for {} was approved yesterday.",
                "Don't share the {} numbers outside the team.",
            ],
            TermLower => &[
                "any update on {}?",
                "the {} demo went well",
                "who owns {} now?",
            ],
        }
    }
}

// Which value kinds appear in which document kinds.
const PROSE_VALUES: &[V] = &[
    V::Email,
    V::EmailAtDot,
    V::EmailBracket,
    V::EmailZw,
    V::EmailHtml,
    V::EmailPct,
    V::PhoneUs,
    V::PhoneE164,
    V::PhoneUk,
    V::PhoneDe,
    V::PhoneFr,
    V::PhoneIn,
    V::Ssn,
    V::Itin,
    V::Nino,
    V::Nhs,
    V::Sin,
    V::Pan,
    V::Aadhaar,
    V::Nif,
    V::Nie,
    V::Cf,
    V::Tfn,
    V::Nric,
    V::Pesel,
    V::Passport,
    V::Dob,
    V::Card,
    V::CardSplit,
    V::Iban,
    V::Btc,
    V::Eth,
    V::AwsKeyId,
    V::GithubPat,
    V::Slack,
    V::Stripe,
    V::OpenAi,
    V::Anthropic,
    V::Jwt,
    V::Pem,
    V::ConnString,
    V::Password,
    V::Ipv4,
    V::Ipv6,
    V::Mac,
    V::Term,
];
const CHAT_VALUES: &[V] = &[
    V::Email,
    V::EmailAtDot,
    V::EmailBracket,
    V::EmailZw,
    V::PhoneUs,
    V::PhoneE164,
    V::PhoneUk,
    V::PhoneIn,
    V::Ssn,
    V::Nino,
    V::Aadhaar,
    V::Dob,
    V::Passport,
    V::Card,
    V::CardSplit,
    V::Iban,
    V::AwsKeyId,
    V::GithubPat,
    V::Stripe,
    V::OpenAi,
    V::Anthropic,
    V::Jwt,
    V::Password,
    V::Ipv4,
    V::Term,
    V::TermLower,
];
const CODE_VALUES: &[V] = &[
    V::Email,
    V::EmailJsonEsc,
    V::AwsKeyId,
    V::AwsSecret,
    V::GithubPat,
    V::Slack,
    V::SlackWebhook,
    V::Stripe,
    V::OpenAi,
    V::Anthropic,
    V::Jwt,
    V::Pem,
    V::ConnString,
    V::Password,
    V::Gitlab,
    V::GoogleApi,
    V::Sendgrid,
    V::Npm,
    V::Ipv4,
    V::Ipv6,
    V::Term,
];
const RUST_VALUES: &[V] = &[
    V::Email,
    V::AwsKeyId,
    V::AwsSecret,
    V::GithubPat,
    V::Slack,
    V::Stripe,
    V::OpenAi,
    V::Anthropic,
    V::Jwt,
    V::Pem,
    V::ConnString,
    V::Password,
    V::GoogleApi,
    V::Ipv4,
    V::Ipv6,
    V::Term,
];
const CONFIG_VALUES: &[V] = &[
    V::Email,
    V::AwsKeyId,
    V::AwsSecret,
    V::GithubPat,
    V::Slack,
    V::SlackWebhook,
    V::Stripe,
    V::OpenAi,
    V::Anthropic,
    V::Jwt,
    V::Pem,
    V::ConnString,
    V::Password,
    V::Gitlab,
    V::GoogleApi,
    V::Sendgrid,
    V::Npm,
    V::Ipv4,
    V::Ipv6,
    V::Mac,
    V::Term,
];
const LOG_VALUES: &[V] = &[
    V::Email,
    V::EmailPct,
    V::Ipv4,
    V::Ipv4,
    V::Ipv6,
    V::Mac,
    V::Jwt,
    V::Card,
    V::PhoneE164,
    V::PhoneUs,
    V::AwsKeyId,
    V::GithubPat,
    V::Stripe,
    V::ConnString,
    V::SlackWebhook,
    V::Password,
    V::Term,
];
const JSON_VALUES: &[V] = &[
    V::Email,
    V::EmailJsonEsc,
    V::PhoneUs,
    V::PhoneE164,
    V::PhoneUk,
    V::PhoneDe,
    V::PhoneFr,
    V::PhoneIn,
    V::Ssn,
    V::Nino,
    V::Nhs,
    V::Sin,
    V::Pan,
    V::Aadhaar,
    V::Nif,
    V::Nie,
    V::Cf,
    V::Tfn,
    V::Nric,
    V::Pesel,
    V::Passport,
    V::Dob,
    V::Card,
    V::Iban,
    V::Btc,
    V::Eth,
    V::AwsKeyId,
    V::AwsSecret,
    V::GithubPat,
    V::Stripe,
    V::OpenAi,
    V::Anthropic,
    V::Jwt,
    V::PemJson,
    V::ConnString,
    V::Password,
    V::Ipv4,
    V::Ipv6,
    V::Mac,
    V::Term,
];
const CSV_VALUES: &[V] = &[
    V::Email,
    V::PhoneUs,
    V::PhoneE164,
    V::PhoneUk,
    V::PhoneDe,
    V::PhoneFr,
    V::PhoneIn,
    V::Ssn,
    V::Nino,
    V::Nhs,
    V::Pan,
    V::Aadhaar,
    V::Nif,
    V::Nie,
    V::Cf,
    V::Nric,
    V::Card,
    V::Iban,
    V::Btc,
    V::Eth,
    V::Ipv4,
    V::Ipv6,
    V::Mac,
];
const GERMAN_VALUES: &[V] = &[
    V::Email,
    V::EmailZw,
    V::PhoneDe,
    V::PhoneE164,
    V::Iban,
    V::Card,
    V::Term,
    V::Ipv4,
];
const FRENCH_VALUES: &[V] = &[
    V::Email,
    V::EmailBracket,
    V::PhoneFr,
    V::Iban,
    V::Card,
    V::Term,
    V::Ipv4,
];
const JAPANESE_VALUES: &[V] = &[
    V::Email,
    V::EmailFullwidth,
    V::PhoneFullwidth,
    V::PhoneE164,
    V::Card,
    V::CardFullwidth,
    V::Term,
    V::Ipv4,
];
const HINDI_VALUES: &[V] = &[
    V::Email,
    V::PhoneIn,
    V::PhoneDevanagari,
    V::Aadhaar,
    V::Pan,
    V::Card,
    V::Term,
];

fn allowed_values(dk: DocKind) -> &'static [V] {
    match dk {
        DocKind::Ticket | DocKind::Email => PROSE_VALUES,
        DocKind::Chat => CHAT_VALUES,
        DocKind::Python | DocKind::JavaScript => CODE_VALUES,
        DocKind::Rust => RUST_VALUES,
        DocKind::Yaml | DocKind::DotEnv => CONFIG_VALUES,
        DocKind::Log => LOG_VALUES,
        DocKind::Json => JSON_VALUES,
        DocKind::Csv => CSV_VALUES,
        DocKind::German => GERMAN_VALUES,
        DocKind::French => FRENCH_VALUES,
        DocKind::Japanese => JAPANESE_VALUES,
        DocKind::Hindi => HINDI_VALUES,
    }
}

// ================================================================================================
// Value generators
// ================================================================================================

const FIRST: &[&str] = &[
    "jane", "john", "maria", "ahmed", "wei", "priya", "lukas", "chloe", "kenji", "olga", "diego",
    "fatima", "liam", "sofia", "noah", "aisha", "mateo", "hannah", "ravi", "elena", "tom", "yuki",
    "amelie", "jonas", "grace", "omar",
];
const LAST: &[&str] = &[
    "doe",
    "smith",
    "garcia",
    "khan",
    "zhang",
    "patel",
    "mueller",
    "dubois",
    "tanaka",
    "ivanova",
    "fernandez",
    "rahman",
    "oconnor",
    "rossi",
    "nguyen",
    "kowalski",
    "schmidt",
    "martin",
    "sato",
    "sharma",
    "novak",
    "silva",
    "berg",
    "kim",
];
const DOMAINS: &[&str] = &[
    "acmecorp.io",
    "globex.com",
    "initech.co.uk",
    "gmail.com",
    "outlook.com",
    "yahoo.co.jp",
    "web.de",
    "orange.fr",
    "northwind-traders.com",
    "hooli.xyz",
    "umbrella-health.de",
    "piedpiper.net",
    "stark-industries.com",
    "wayne-enterprises.co",
    "protonmail.ch",
    "rediffmail.com",
    "gmx.net",
    "free.fr",
    "icloud.com",
    "zeelandbank.nl",
];

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn full_name(rng: &mut Rng) -> String {
    format!(
        "{} {}",
        capitalize(rng.word(FIRST)),
        capitalize(rng.word(LAST))
    )
}

fn email_local(rng: &mut Rng) -> String {
    let f = *rng.pick(FIRST);
    let l = *rng.pick(LAST);
    match rng.below(5) {
        0 => format!("{f}.{l}"),
        1 => format!("{}{l}", &f[..1]),
        2 => format!("{f}_{l}"),
        3 => format!("{f}.{l}{}", rng.range(2, 99)),
        _ => format!("{f}+{}", rng.pick(&["billing", "work", "news"])),
    }
}

fn email(rng: &mut Rng) -> String {
    format!("{}@{}", email_local(rng), rng.pick(DOMAINS))
}

/// A local part without dots, for the spelled-out obfuscations.
fn plain_local(rng: &mut Rng) -> String {
    let f = *rng.pick(FIRST);
    let l = *rng.pick(LAST);
    match rng.below(3) {
        0 => format!("{f}{l}"),
        1 => format!("{f}_{l}"),
        _ => format!("{}{l}", &f[..1]),
    }
}

fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| {
            if ('!'..='~').contains(&c) {
                char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap()
            } else {
                c
            }
        })
        .collect()
}

fn devanagari_digits(s: &str) -> String {
    s.chars()
        .map(|c| {
            if let Some(d) = c.to_digit(10) {
                char::from_u32(0x0966 + d).unwrap()
            } else {
                c
            }
        })
        .collect()
}

/// Area codes in use (none of them fictional 555 numbers).
const US_AREAS: &[&str] = &[
    "212", "415", "646", "312", "617", "206", "512", "303", "404", "305", "702", "213", "718",
    "469", "919", "416", "604", "514",
];

fn us_subscriber(rng: &mut Rng) -> (String, String, String) {
    let area = rng.pick(US_AREAS).to_string();
    let exchange = loop {
        let e = format!("{}{}", rng.range(2, 9), rng.digits(2));
        if e != "555" && &e[1..] != "11" {
            break e;
        }
    };
    (area, exchange, rng.digits(4))
}

fn phone_us(rng: &mut Rng) -> String {
    let (a, e, l) = us_subscriber(rng);
    match rng.below(6) {
        0 => format!("({a}) {e}-{l}"),
        1 => format!("{a}-{e}-{l}"),
        2 => format!("{a}.{e}.{l}"),
        3 => format!("+1 {a} {e} {l}"),
        4 => format!("+1-{a}-{e}-{l}"),
        _ => format!("1-{a}-{e}-{l}"),
    }
}

fn phone_e164(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => {
            let (a, e, l) = us_subscriber(rng);
            format!("+1{a}{e}{l}")
        }
        1 => format!(
            "+447{}{}",
            rng.pick(&["4", "5", "7", "8", "9"]),
            rng.digits(8)
        ),
        2 => format!(
            "+49{}{}",
            rng.pick(&["151", "160", "170", "176"]),
            rng.digits(8)
        ),
        3 => format!("+33{}{}", rng.range(6, 7), rng.digits(8)),
        4 => format!("+91{}{}", rng.range(6, 9), rng.digits(9)),
        5 => format!("+614{}", rng.digits(8)),
        6 => format!("+346{}", rng.digits(8)),
        7 => format!("+316{}", rng.digits(8)),
        8 => format!("+65{}{}", rng.range(8, 9), rng.digits(7)),
        _ => format!("+81{}{}", rng.pick(&["70", "80", "90"]), rng.digits(8)),
    }
}

fn phone_uk(rng: &mut Rng) -> String {
    let mobile = format!("7{}{}", rng.pick(&["4", "5", "7", "8", "9"]), rng.digits(2));
    let sub6 = rng.digits(6);
    let lon = format!("{}{}", rng.pick(&["3", "7", "8"]), rng.digits(3));
    let lon2 = rng.digits(4);
    match rng.below(6) {
        0 => format!("020 {lon} {lon2}"),
        1 => format!("0{mobile} {sub6}"),
        2 => format!("+44 {mobile} {sub6}"),
        3 => format!("+44 (0)20 {lon} {lon2}"),
        4 => format!("+44 20 {lon} {lon2}"),
        _ => format!("0161 {} {}", rng.digits(3), rng.digits(4)),
    }
}

fn phone_de(rng: &mut Rng) -> String {
    let land = *rng.pick(&["30", "40", "89", "69", "221", "211", "711"]);
    let mobile = *rng.pick(&[
        "151", "152", "160", "170", "171", "172", "176", "177", "157",
    ]);
    let sub_len = rng.range(6, 7);
    let sub = format!("{}{}", rng.range(2, 9), rng.digits(sub_len));
    match rng.below(6) {
        0 => format!("0{land} {sub}"),
        1 => format!("+49 {land} {sub}"),
        2 => format!("0{mobile} {sub}"),
        3 => format!("+49 {mobile} {sub}"),
        4 => format!("0{land}/{sub}"),
        _ => format!("+49 (0){land} {sub}"),
    }
}

fn phone_fr(rng: &mut Rng) -> String {
    let first = *rng.pick(&["1", "2", "3", "4", "5", "6", "7", "9"]);
    let pairs: Vec<String> = (0..4).map(|_| rng.digits(2)).collect();
    match rng.below(4) {
        0 => format!("0{first} {}", pairs.join(" ")),
        1 => format!("+33 {first} {}", pairs.join(" ")),
        2 => format!("0{first}.{}", pairs.join(".")),
        _ => format!("+33 (0){first} {}", pairs.join(" ")),
    }
}

fn phone_in(rng: &mut Rng) -> String {
    let a = format!("{}{}", rng.range(6, 9), rng.digits(4));
    let b = rng.digits(5);
    match rng.below(4) {
        0 => format!("+91 {a} {b}"),
        1 => format!("+91-{a}{b}"),
        2 => format!("0{a}{b}"),
        _ => format!("{a} {b}"),
    }
}

fn ssn(rng: &mut Rng) -> String {
    let (a, g, s) = loop {
        let a = rng.range(1, 899);
        let g = rng.range(1, 99);
        let s = rng.range(1, 9999);
        let famous = [
            (78, 5, 1120),
            (219, 9, 9999),
            (457, 55, 5462),
            (123, 45, 6789),
        ];
        if a != 666 && !famous.contains(&(a, g, s)) {
            break (a, g, s);
        }
    };
    match rng.below(10) {
        0..=6 => format!("{a:03}-{g:02}-{s:04}"),
        7 | 8 => format!("{a:03} {g:02} {s:04}"),
        _ => format!("{a:03}{g:02}{s:04}"),
    }
}

fn itin(rng: &mut Rng) -> String {
    let g = *rng.pick(&[50, 57, 63, 70, 73, 78, 81, 84, 88, 90, 92, 94, 97, 99]);
    format!("9{}-{g:02}-{}", rng.digits(2), rng.digits(4))
}

fn nino(rng: &mut Rng) -> String {
    let (a, b) = loop {
        let a = *rng.pick(b"ABCEGHJKLMNOPRSTWXYZ") as char;
        let b = *rng.pick(b"ABCEGHJKLMNPRSTWXYZ") as char;
        let pair: String = [a, b].iter().collect();
        if !["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"].contains(&pair.as_str()) {
            break (a, b);
        }
    };
    let d = rng.digits(6);
    let s = *rng.pick(b"ABCD") as char;
    if rng.chance(0.5) {
        format!("{a}{b} {} {} {} {s}", &d[..2], &d[2..4], &d[4..])
    } else {
        format!("{a}{b}{d}{s}")
    }
}

/// Find the check digit that makes `valid(body + d)` true.
fn with_check_digit(body: &str, valid: impl Fn(&str) -> bool) -> Option<String> {
    (0..10).map(|d| format!("{body}{d}")).find(|s| valid(s))
}

fn nhs(rng: &mut Rng) -> String {
    let n = loop {
        let body = format!("{}{}", rng.pick(&["4", "6", "7"]), rng.digits(8));
        if let Some(n) = with_check_digit(&body, check::nhs) {
            break n;
        }
    };
    match rng.below(3) {
        0 | 1 => format!("{} {} {}", &n[..3], &n[3..6], &n[6..]),
        _ => n,
    }
}

fn sin(rng: &mut Rng) -> String {
    let body = format!(
        "{}{}",
        rng.pick(&["1", "2", "3", "4", "5", "6", "7", "9"]),
        rng.digits(7)
    );
    let n = with_check_digit(&body, check::luhn).unwrap();
    let sep = if rng.chance(0.7) { " " } else { "-" };
    format!("{}{sep}{}{sep}{}", &n[..3], &n[3..6], &n[6..])
}

fn pan(rng: &mut Rng) -> String {
    let surname = rng.pick(LAST).to_ascii_uppercase();
    format!(
        "{}{}{}{:04}{}",
        rng.alpha(UPPER, 3),
        if rng.chance(0.85) {
            'P'
        } else {
            *rng.pick(b"CHFT") as char
        },
        &surname[..1],
        rng.range(1, 9999),
        rng.alpha(UPPER, 1)
    )
}

fn aadhaar(rng: &mut Rng) -> String {
    let body = format!("{}{}", rng.range(2, 9), rng.digits(10));
    let n = with_check_digit(&body, check::verhoeff).unwrap();
    match rng.below(4) {
        0 => n,
        _ => format!("{} {} {}", &n[..4], &n[4..8], &n[8..]),
    }
}

fn nif(rng: &mut Rng) -> String {
    let n = rng.range(1_000_000, 99_999_999);
    let l = b"TRWAGMYFPDXBNJZSQVHLCKE"[n % 23] as char;
    if rng.chance(0.8) {
        format!("{n:08}{l}")
    } else {
        format!("{n:08}-{l}")
    }
}

fn nie(rng: &mut Rng) -> String {
    let p = rng.below(3);
    let n = rng.range(0, 9_999_999);
    let l = b"TRWAGMYFPDXBNJZSQVHLCKE"[(p * 10_000_000 + n) % 23] as char;
    format!("{}{n:07}{l}", ['X', 'Y', 'Z'][p])
}

fn codice_fiscale(rng: &mut Rng) -> String {
    let cons = b"BCDFGHLMNPRSTVZ";
    let vow = b"AEIOU";
    let surname = format!(
        "{}{}{}",
        *rng.pick(cons) as char,
        *rng.pick(vow) as char,
        *rng.pick(cons) as char
    );
    let name = format!(
        "{}{}{}",
        *rng.pick(cons) as char,
        *rng.pick(cons) as char,
        *rng.pick(vow) as char
    );
    let year = rng.range(40, 99);
    let month = *rng.pick(b"ABCDEHLMPRST") as char;
    let day = rng.range(1, 28) + if rng.chance(0.5) { 40 } else { 0 };
    let town = *rng.pick(&[
        "H501", "F205", "L219", "G273", "A944", "D612", "F839", "L736", "C351",
    ]);
    let first15 = format!("{surname}{name}{year:02}{month}{day:02}{town}");
    let c = check::cf_check(&first15) as char;
    format!("{first15}{c}")
}

fn tfn(rng: &mut Rng) -> String {
    let n = loop {
        let body = format!("{}{}", rng.range(1, 9), rng.digits(7));
        if let Some(n) = with_check_digit(&body, check::tfn) {
            break n;
        }
    };
    if rng.chance(0.7) {
        format!("{} {} {}", &n[..3], &n[3..6], &n[6..])
    } else {
        n
    }
}

fn nric(rng: &mut Rng) -> String {
    let prefix = *rng.pick(&['S', 'S', 'T', 'F', 'G']);
    let digits = rng.digits(7);
    for c in UPPER {
        let s = format!("{prefix}{digits}{}", *c as char);
        if check::sg_nric(&s) {
            return s;
        }
    }
    unreachable!("every NRIC body has a check letter")
}

fn pesel(rng: &mut Rng) -> String {
    loop {
        let year = rng.range(1940, 2015) as u32;
        let month = rng.range(1, 12) as u32;
        let day = rng.range(1, days_in_month(year, month) as usize) as u32;
        let mm = if year >= 2000 { month + 20 } else { month };
        let body = format!("{:02}{mm:02}{day:02}{}", year % 100, rng.digits(4));
        if let Some(p) = with_check_digit(&body, check::pesel) {
            return p;
        }
    }
}

fn passport(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!("{}{}", rng.range(1, 9), rng.digits(8)),
        1 => format!("{}{}", rng.alpha(UPPER, 1), rng.digits(8)),
        _ => format!("{}{}", rng.alpha(UPPER, 2), rng.digits(7)),
    }
}

fn dob(rng: &mut Rng) -> String {
    let y = rng.range(1940, 2005) as u32;
    let m = rng.range(1, 12) as u32;
    let d = rng.range(1, days_in_month(y, m) as usize) as u32;
    match rng.below(4) {
        0 => format!("{y}-{m:02}-{d:02}"),
        1 => format!("{d:02}/{m:02}/{y}"),
        2 => format!("{m:02}/{d:02}/{y}"),
        _ => format!("{d:02}.{m:02}.{y}"),
    }
}

/// Valid card number digits with a real issuer prefix.
fn card_digits(rng: &mut Rng) -> String {
    let (prefix, len) = match rng.below(12) {
        0..=3 => ("4".to_string(), 16),
        4..=5 => (format!("5{}", rng.range(1, 5)), 16),
        6 => (format!("{}", rng.range(2221, 2720)), 16),
        7 => (rng.pick(&["34", "37"]).to_string(), 15),
        8 => (
            if rng.chance(0.5) {
                "6011".to_string()
            } else {
                "65".to_string()
            },
            16,
        ),
        9 => (format!("{}", rng.range(3528, 3589)), 16),
        10 => ("36".to_string(), 14),
        _ => ("62".to_string(), 16),
    };
    loop {
        let body = format!("{prefix}{}", rng.digits(len - prefix.len() - 1));
        let n = with_check_digit(&body, check::luhn).unwrap();
        // Not one repeated digit, not a published test number.
        if !n.bytes().all(|b| b == n.as_bytes()[0])
            && !TEST_CARDS.iter().any(|t| t.replace(' ', "") == n)
        {
            return n;
        }
    }
}

fn group_card(n: &str, sep: &str) -> String {
    let sizes: &[usize] = match n.len() {
        15 => &[4, 6, 5],
        14 => &[4, 6, 4],
        _ => &[4, 4, 4, 4],
    };
    let mut parts = Vec::new();
    let mut i = 0;
    for &s in sizes {
        parts.push(&n[i..i + s]);
        i += s;
    }
    parts.join(sep)
}

fn card(rng: &mut Rng) -> String {
    let n = card_digits(rng);
    match rng.below(10) {
        0..=4 => group_card(&n, " "),
        5 | 6 => group_card(&n, "-"),
        _ => n,
    }
}

fn card_split(rng: &mut Rng) -> String {
    let n = card_digits(rng);
    let sep = *rng.pick(&[" ", "-", " - ", "  "]);
    let mut parts = Vec::new();
    let mut i = 0;
    while i < n.len() {
        let s = rng.range(2, 5).min(n.len() - i);
        parts.push(&n[i..i + s]);
        i += s;
    }
    parts.join(sep)
}

fn card_fullwidth(rng: &mut Rng) -> String {
    let n = card_digits(rng);
    let grouped = group_card(&n, if rng.chance(0.5) { "-" } else { " " });
    fullwidth(&grouped)
}

fn iban_from_bban(cc: &str, bban: &str) -> String {
    let r = check::mod97(&format!("{bban}{cc}00")).unwrap();
    format!("{cc}{:02}{bban}", 98 - r)
}

fn bban(rng: &mut Rng) -> (&'static str, String) {
    match rng.below(5) {
        0 => (
            "DE",
            format!("{}{}{}", rng.range(1, 8), rng.digits(7), rng.digits(10)),
        ),
        1 => {
            let bank = *rng.pick(&["NWBK", "BARC", "LOYD", "HBUK", "MIDL", "NAIA"]);
            ("GB", format!("{bank}{}{}", rng.digits(6), rng.digits(8)))
        }
        2 => {
            let bank = rng.digits(5);
            let branch = rng.digits(5);
            let account = rng.digits(11);
            let b: u128 = bank.parse().unwrap();
            let g: u128 = branch.parse().unwrap();
            let a: u128 = account.parse().unwrap();
            let key = 97 - (89 * b + 15 * g + 3 * a) % 97;
            ("FR", format!("{bank}{branch}{account}{key:02}"))
        }
        3 => {
            let bank = rng.digits(4);
            let branch = rng.digits(4);
            let account = rng.digits(10);
            let dc = |s: &str| {
                const W: [u32; 10] = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6];
                let sum: u32 = s.bytes().zip(W).map(|(c, w)| (c - b'0') as u32 * w).sum();
                match 11 - sum % 11 {
                    11 => 0,
                    10 => 1,
                    x => x,
                }
            };
            let d1 = dc(&format!("00{bank}{branch}"));
            let d2 = dc(&account);
            ("ES", format!("{bank}{branch}{d1}{d2}{account}"))
        }
        _ => {
            let bank = *rng.pick(&["ABNA", "INGB", "RABO", "TRIO", "SNSB", "KNAB"]);
            // Dutch account numbers satisfy the "elfproef" (weighted mod 11).
            let account = loop {
                let body = format!("{}{}", rng.range(1, 9), rng.digits(8));
                let s: u32 = body
                    .bytes()
                    .enumerate()
                    .map(|(i, c)| (c - b'0') as u32 * (10 - i as u32))
                    .sum();
                let d = (11 - s % 11) % 11;
                if d < 10 {
                    break format!("{body}{d}");
                }
            };
            ("NL", format!("{bank}{account}"))
        }
    }
}

fn format_iban(rng: &mut Rng, iban: &str) -> String {
    if rng.chance(0.6) {
        iban.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        iban.to_string()
    }
}

fn iban(rng: &mut Rng) -> String {
    let (cc, b) = bban(rng);
    let i = iban_from_bban(cc, &b);
    format_iban(rng, &i)
}

fn btc(rng: &mut Rng) -> String {
    let hash = rng.bytes(20);
    match rng.below(3) {
        0 | 1 => {
            let mut payload = vec![if rng.chance(0.7) { 0x00 } else { 0x05 }];
            payload.extend(&hash);
            let h = Sha256::digest(Sha256::digest(&payload));
            payload.extend(&h[..4]);
            check::base58_encode(&payload)
        }
        _ => {
            // P2WPKH: witness version 0 + 20-byte program in 5-bit groups.
            let mut data5 = vec![0u8];
            let mut acc = 0u32;
            let mut bits = 0;
            for &b in &hash {
                acc = (acc << 8) | b as u32;
                bits += 8;
                while bits >= 5 {
                    bits -= 5;
                    data5.push(((acc >> bits) & 31) as u8);
                }
            }
            if bits > 0 {
                data5.push(((acc << (5 - bits)) & 31) as u8);
            }
            check::bech32_encode("bc", &data5)
        }
    }
}

fn eth(rng: &mut Rng) -> String {
    format!("0x{}", rng.alpha(HEX, 40))
}

fn aws_key_id(rng: &mut Rng) -> String {
    format!("AKIA{}", rng.alpha(BASE32, 16))
}

fn aws_secret(rng: &mut Rng) -> String {
    rng.alpha(B64, 40)
}

fn crc_token(rng: &mut Rng, prefix: &str) -> String {
    let body = rng.alpha(BASE62, 30);
    format!(
        "{prefix}{body}{}",
        check::base62(check::crc32(body.as_bytes()), 6)
    )
}

/// Random chars from `alphabet` whose first and last characters are alphanumeric.
fn token_chars(rng: &mut Rng, alphabet: &[u8], n: usize) -> String {
    let mut s = rng.alpha(BASE62, 1);
    s.push_str(&rng.alpha(alphabet, n - 2));
    s.push_str(&rng.alpha(BASE62, 1));
    s
}

fn slack(rng: &mut Rng) -> String {
    if rng.chance(0.7) {
        let team_len = rng.range(10, 12);
        format!(
            "xoxb-{}-{}-{}",
            rng.digits(team_len),
            rng.digits(13),
            rng.alpha(BASE62, 24)
        )
    } else {
        format!(
            "xoxp-{}-{}-{}-{}",
            rng.digits(11),
            rng.digits(12),
            rng.digits(13),
            rng.alpha(HEX, 32)
        )
    }
}

fn slack_webhook(rng: &mut Rng) -> String {
    let up = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let b_len = rng.range(8, 10);
    format!(
        "https://hooks.slack.com/services/T{}/B{}/{}",
        rng.alpha(up, 8),
        rng.alpha(up, b_len),
        rng.alpha(BASE62, 24)
    )
}

fn stripe(rng: &mut Rng) -> String {
    let prefix = if rng.chance(0.85) {
        "sk_live_"
    } else {
        "rk_live_"
    };
    let len = if rng.chance(0.5) { 24 } else { 99 };
    format!("{prefix}{}", rng.alpha(BASE62, len))
}

fn openai(rng: &mut Rng) -> String {
    format!(
        "sk-proj-{}T3BlbkFJ{}",
        token_chars(rng, B64URL, 74),
        token_chars(rng, B64URL, 74)
    )
}

fn anthropic(rng: &mut Rng) -> String {
    format!("sk-ant-api03-{}AA", token_chars(rng, B64URL, 93))
}

fn gitlab(rng: &mut Rng) -> String {
    format!("glpat-{}", token_chars(rng, B64URL, 20))
}

fn google_api(rng: &mut Rng) -> String {
    format!("AIza{}", token_chars(rng, B64URL, 35))
}

fn sendgrid(rng: &mut Rng) -> String {
    format!(
        "SG.{}.{}",
        token_chars(rng, B64URL, 22),
        token_chars(rng, B64URL, 43)
    )
}

fn jwt(rng: &mut Rng) -> String {
    let header = b64_encode(br#"{"alg":"HS256","typ":"JWT"}"#, B64URL, false);
    let iat = 1_700_000_000 + rng.below(60_000_000);
    let payload = format!(
        r#"{{"sub":"{}","name":"{}","iat":{iat},"exp":{},"scope":"read:orders write:orders"}}"#,
        rng.digits(10),
        full_name(rng),
        iat + 3600
    );
    let sig = b64_encode(&rng.bytes(32), B64URL, false);
    format!(
        "{header}.{}.{sig}",
        b64_encode(payload.as_bytes(), B64URL, false)
    )
}

fn pem(rng: &mut Rng) -> String {
    let (label, prefix, len, width) = match rng.below(6) {
        0 => ("RSA PRIVATE KEY", "MIIEowIBAAKCAQEA", 1588, 64),
        1 => (
            "PRIVATE KEY",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ",
            1620,
            64,
        ),
        2 | 3 => ("EC PRIVATE KEY", "MHcCAQEEI", 164, 64),
        _ => (
            "OPENSSH PRIVATE KEY",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZWQyNTUxOQAAACA",
            400,
            70,
        ),
    };
    let mut body = prefix.to_string();
    body.push_str(&rng.alpha(B64, len - prefix.len() - 2));
    body.push_str("==");
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(width)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----",
        lines.join("\n")
    )
}

const PW_WORDS: &[&str] = &[
    "maple", "otter", "copper", "lantern", "harbor", "velvet", "quartz", "orbit", "cactus",
    "meadow", "glacier", "pepper", "walrus", "saffron", "cobalt", "thistle",
];

fn password(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => {
            let mut p = rng.alpha(b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", 1);
            p.push_str(&rng.alpha(
                b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!*-_+=.^",
                13,
            ));
            p.push_str(&rng.digits(2));
            p
        }
        1 => format!(
            "{}-{}-{}{}",
            capitalize(rng.word(PW_WORDS)),
            capitalize(rng.word(PW_WORDS)),
            rng.digits(4),
            rng.pick(&["!", "*", "+", "."])
        ),
        2 => format!(
            "{}{}{}",
            capitalize(rng.word(PW_WORDS)),
            rng.range(1987, 2024),
            rng.pick(&["!", "*", "^"])
        ),
        _ => format!(
            "{}{}",
            rng.alpha(b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", 1),
            rng.alpha(BASE62, 19)
        ),
    }
}

fn conn_string(rng: &mut Rng) -> String {
    let user = *rng.pick(&[
        "app_user",
        "billing",
        "svc_orders",
        "reporting",
        "admin",
        "etl",
    ]);
    let pw_len = rng.range(11, 23);
    let pw = format!(
        "{}{}",
        rng.alpha(b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", 1),
        rng.alpha(
            b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.",
            pw_len
        )
    );
    let host = match rng.below(4) {
        0 => format!(
            "db-prod-{}.c{}.eu-west-1.rds.amazonaws.com",
            rng.range(1, 4),
            rng.alpha(LOWER_ALNUM, 10)
        ),
        1 => "pg.internal.acmecorp.io".to_string(),
        2 => "mysql-primary.globex.com".to_string(),
        _ => format!("cache-{:02}.hooli.xyz", rng.range(1, 12)),
    };
    let db = *rng.pick(&["orders", "billing", "analytics", "app"]);
    match rng.below(6) {
        0 => format!("postgres://{user}:{pw}@{host}:5432/{db}"),
        1 => format!("postgresql://{user}:{pw}@{host}/{db}?sslmode=require"),
        2 => format!("mysql://{user}:{pw}@{host}:3306/{db}"),
        3 => format!(
            "mongodb+srv://{user}:{pw}@cluster0.{}.mongodb.net/{db}?retryWrites=true&w=majority",
            rng.alpha(LOWER_ALNUM, 5)
        ),
        4 => format!("redis://default:{pw}@{host}:6379/0"),
        _ => format!("amqp://{user}:{pw}@{host}:5672/{db}"),
    }
}

fn public_ipv4(rng: &mut Rng) -> String {
    let first = *rng.pick(&[
        3, 8, 13, 18, 23, 31, 34, 35, 45, 52, 54, 62, 66, 77, 81, 85, 91, 104, 142, 151, 157, 185,
        188, 194, 212, 217,
    ]);
    format!(
        "{first}.{}.{}.{}",
        rng.range(0, 255),
        rng.range(0, 255),
        rng.range(1, 254)
    )
}

fn public_ipv6(rng: &mut Rng) -> String {
    let prefix = *rng.pick(&[
        "2a00:1450",
        "2606:4700",
        "2a03:2880",
        "2001:4860",
        "2604:a880",
        "2a01:4f8",
        "2400:cb00",
        "2a02:26f0",
    ]);
    let g = |rng: &mut Rng| format!("{:x}", rng.range(1, 0xffff));
    if rng.chance(0.5) {
        format!("{prefix}:{}:{}::{}", g(rng), g(rng), g(rng))
    } else {
        let rest: Vec<String> = (0..6).map(|_| g(rng)).collect();
        format!("{prefix}:{}", rest.join(":"))
    }
}

fn mac(rng: &mut Rng) -> String {
    let mut b = rng.bytes(6);
    b[0] &= 0xfc; // unicast, globally administered
    if b[0] == 0 {
        b[0] = 0x3c;
    }
    let parts: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    match rng.below(10) {
        0..=4 => parts.join(":"),
        5..=7 => parts.join("-").to_uppercase(),
        _ => parts.join(":").to_uppercase(),
    }
}

fn make_value(rng: &mut Rng, v: V) -> String {
    use V::*;
    match v {
        Email => email(rng),
        EmailAtDot => {
            let d = rng.pick(DOMAINS).replace('.', " dot ");
            format!("{} at {d}", plain_local(rng))
        }
        EmailBracket => {
            let (at, dot) = *rng.pick(&[
                (" [at] ", " [dot] "),
                ("[at]", "[.]"),
                (" [at] ", "[.]"),
                ("[at]", "[dot]"),
            ]);
            let d = rng.pick(DOMAINS).replace('.', dot);
            format!("{}{at}{d}", plain_local(rng))
        }
        EmailZw => {
            let e = email(rng);
            let zw = ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'];
            let mut chars: Vec<char> = e.chars().collect();
            for _ in 0..rng.range(1, 2) {
                let pos = rng.range(1, chars.len() - 1);
                chars.insert(pos, *rng.pick(&zw));
            }
            chars.into_iter().collect()
        }
        EmailJsonEsc => {
            let e = email(rng).replace('@', "\\u0040");
            if rng.chance(0.3) {
                e.replace('.', "\\u002e")
            } else {
                e
            }
        }
        EmailPct => email(rng).replace('@', "%40").replace('+', "%2B"),
        EmailFullwidth => {
            let e = email(rng);
            if rng.chance(0.5) {
                fullwidth(&e)
            } else {
                e.replace('@', "＠")
            }
        }
        EmailHtml => email(rng).replace('@', rng.word(&["&#64;", "&commat;", "&#x40;"])),
        PhoneUs => phone_us(rng),
        PhoneE164 => phone_e164(rng),
        PhoneUk => phone_uk(rng),
        PhoneDe => phone_de(rng),
        PhoneFr => phone_fr(rng),
        PhoneIn => phone_in(rng),
        PhoneFullwidth => {
            let p = format!(
                "+81 {}-{}-{}",
                rng.pick(&["70", "80", "90"]),
                rng.digits(4),
                rng.digits(4)
            );
            fullwidth(&p)
        }
        PhoneDevanagari => {
            let p = format!("+91 {}{} {}", rng.range(6, 9), rng.digits(4), rng.digits(5));
            devanagari_digits(&p)
        }
        Ssn => ssn(rng),
        Itin => itin(rng),
        Nino => nino(rng),
        Nhs => nhs(rng),
        Sin => sin(rng),
        Pan => pan(rng),
        Aadhaar => aadhaar(rng),
        Nif => nif(rng),
        Nie => nie(rng),
        Cf => codice_fiscale(rng),
        Tfn => tfn(rng),
        Nric => nric(rng),
        Pesel => pesel(rng),
        Passport => passport(rng),
        Dob => dob(rng),
        Card => card(rng),
        CardSplit => card_split(rng),
        CardFullwidth => card_fullwidth(rng),
        Iban => iban(rng),
        Btc => btc(rng),
        Eth => eth(rng),
        AwsKeyId => aws_key_id(rng),
        AwsSecret => aws_secret(rng),
        GithubPat => crc_token(rng, "ghp_"),
        Slack => slack(rng),
        SlackWebhook => slack_webhook(rng),
        Stripe => stripe(rng),
        OpenAi => openai(rng),
        Anthropic => anthropic(rng),
        Jwt => jwt(rng),
        Pem => pem(rng),
        PemJson => format!("{}\\n", pem(rng).replace('\n', "\\n")),
        ConnString => conn_string(rng),
        Password => password(rng),
        Gitlab => gitlab(rng),
        GoogleApi => google_api(rng),
        Sendgrid => sendgrid(rng),
        Npm => crc_token(rng, "npm_"),
        Ipv4 => public_ipv4(rng),
        Ipv6 => public_ipv6(rng),
        Mac => mac(rng),
        Term => rng.pick(&EMBEDDED_TERMS).to_string(),
        TermLower => rng.pick(&EMBEDDED_TERMS).to_lowercase(),
    }
}

// ================================================================================================
// Look-alikes (decoys)
// ================================================================================================

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lk {
    Uuid,
    GitSha,
    Sha256Hex,
    Version,
    Timestamp,
    OrderId,
    Price,
    LuhnFail,
    BadIban,
    BadSsn,
    BadNhs,
    BadAadhaar,
    TestCard,
    PlaceholderKey,
    AwsExample,
    AwsExampleSecret,
    GhpBadCrc,
    PasswordPlaceholder,
    PlaceholderDbUrl,
    ReservedEmail,
    GitRemote,
    AtSignNonEmail,
    DocIpv4,
    DocIpv6,
    Localhost,
    SpacedNumber,
    Coordinates,
    Isbn,
    Tracking,
    DataUri,
    ArnAccount,
    Epoch,
}

/// Published test card numbers (Stripe, Braintree, Adyen docs).
const TEST_CARDS: &[&str] = &[
    "4111 1111 1111 1111",
    "4242 4242 4242 4242",
    "5555 5555 5555 4444",
    "5105 1051 0510 5100",
    "4012 8888 8888 1881",
    "3782 822463 10005",
    "3714 496353 98431",
    "6011 1111 1111 1117",
    "4000 0566 5566 5556",
    "5200 8282 8282 8210",
];

impl Lk {
    fn name(self) -> &'static str {
        use Lk::*;
        match self {
            Uuid => "uuid",
            GitSha => "git-sha",
            Sha256Hex => "sha256-hex",
            Version => "version",
            Timestamp => "timestamp",
            OrderId => "order-id",
            Price => "price",
            LuhnFail => "luhn-fail-card",
            BadIban => "bad-iban",
            BadSsn => "invalid-ssn",
            BadNhs => "bad-nhs",
            BadAadhaar => "bad-aadhaar",
            TestCard => "published-test-card",
            PlaceholderKey => "placeholder-key",
            AwsExample => "aws-example-key-id",
            AwsExampleSecret => "aws-example-secret",
            GhpBadCrc => "ghp-bad-checksum",
            PasswordPlaceholder => "placeholder-password",
            PlaceholderDbUrl => "placeholder-db-url",
            ReservedEmail => "reserved-email",
            GitRemote => "git-ssh-remote",
            AtSignNonEmail => "at-sign-non-email",
            DocIpv4 => "doc-or-special-ipv4",
            DocIpv6 => "doc-or-special-ipv6",
            Localhost => "localhost-url",
            SpacedNumber => "spaced-number",
            Coordinates => "coordinates",
            Isbn => "isbn",
            Tracking => "tracking-number",
            DataUri => "data-uri",
            ArnAccount => "aws-arn",
            Epoch => "epoch",
        }
    }

    fn keys(self) -> &'static [&'static str] {
        use Lk::*;
        match self {
            Uuid => &["request_id", "trace_id", "id"],
            GitSha => &["commit", "git_sha"],
            Sha256Hex => &["sha256", "checksum"],
            Version => &["version", "app_version"],
            Timestamp => &["created_at", "updated_at"],
            OrderId => &["order_id", "invoice_no"],
            Price => &["total", "amount"],
            LuhnFail => &["card_number"],
            BadIban => &["iban"],
            BadSsn => &["ssn"],
            BadNhs => &["nhs_number"],
            BadAadhaar => &["aadhaar"],
            TestCard => &["test_card", "card_number"],
            PlaceholderKey => &["api_key", "stripe_secret_key", "openai_api_key"],
            AwsExample => &["aws_access_key_id"],
            AwsExampleSecret => &["aws_secret_access_key"],
            // Not a `*_token` key: a random value assigned to a token variable is fair game for
            // generic secret-assignment detectors.
            GhpBadCrc => &["fixture", "sample_value"],
            PasswordPlaceholder => &["password", "db_password"],
            PlaceholderDbUrl => &["database_url"],
            ReservedEmail => &["email", "from"],
            GitRemote => &["repository", "remote"],
            AtSignNonEmail => &["package", "image"],
            DocIpv4 | DocIpv6 => &["host", "bind_address", "server"],
            Localhost => &["url", "endpoint"],
            SpacedNumber => &["population"],
            Coordinates => &["location"],
            Isbn => &["isbn"],
            Tracking => &["tracking_number"],
            DataUri => &["icon"],
            ArnAccount => &["role_arn"],
            Epoch => &["expires_at", "ts"],
        }
    }

    fn prose(self) -> &'static [&'static str] {
        use Lk::*;
        match self {
            Uuid => &[
                "Reference ID: {}",
                "Request {} failed with a 500.",
                "Trace id {}",
            ],
            GitSha => &[
                "It was fixed in commit {}.",
                "We deployed revision {} yesterday.",
            ],
            Sha256Hex => &["The sha256 of the installer is {}.", "Checksum: {}"],
            Version => &[
                "After upgrading to {} the export broke.",
                "We are on version {}.",
            ],
            Timestamp => &["It happened at {}.", "Last sync: {}"],
            OrderId => &[
                "My order number is {}.",
                "Invoice {} is still open.",
                "Ticket {}",
            ],
            Price => &["The total was {}.", "We were charged {} instead."],
            LuhnFail => &["My card number is {} (maybe I mistyped it).", "Card: {}"],
            BadIban => &["IBAN: {}", "Please refund to {}."],
            BadSsn => &["SSN {}", "The form shows SSN {} which looks wrong."],
            BadNhs => &["NHS number {}"],
            BadAadhaar => &["Aadhaar: {}"],
            TestCard => &[
                "For testing use card {}.",
                "Test card {} works in the sandbox.",
            ],
            PlaceholderKey => &["Set api_key to {} in the config.", "STRIPE_SECRET_KEY={}"],
            AwsExample => &[
                "The docs use {} as the access key id.",
                "aws_access_key_id = {}",
            ],
            AwsExampleSecret => &["aws_secret_access_key = {}"],
            GhpBadCrc => &["The unit test checks that {} is rejected.", "Fixture: {}"],
            PasswordPlaceholder => &[
                "password: {}",
                "The default password is {}, change it on first login.",
            ],
            PlaceholderDbUrl => &["DATABASE_URL={}", "Connect with {}"],
            ReservedEmail => &["For example {}.", "Send a test message to {}.", "From: {}"],
            GitRemote => &["git clone {}", "The remote origin is {}."],
            AtSignNonEmail => &["We pinned {}.", "Installed {} without issues."],
            DocIpv4 | DocIpv6 => &[
                "Server {} (from the docs).",
                "For example {}.",
                "Bind to {}.",
            ],
            Localhost => &["Open {} in the browser.", "The service listens on {}."],
            SpacedNumber => &["The population is {}."],
            Coordinates => &["The warehouse is at {}.", "GPS: {}"],
            Isbn => &["ISBN {}"],
            Tracking => &["Tracking number {}"],
            DataUri => &["The icon is {}"],
            ArnAccount => &["The role is {}.", "ARN: {}"],
            Epoch => &["Timestamp {}", "expires_at={}"],
        }
    }
}

const PROSE_DECOYS: &[Lk] = &[
    Lk::Uuid,
    Lk::Version,
    Lk::Timestamp,
    Lk::OrderId,
    Lk::Price,
    Lk::LuhnFail,
    Lk::BadIban,
    Lk::BadSsn,
    Lk::BadNhs,
    Lk::BadAadhaar,
    Lk::TestCard,
    Lk::PlaceholderKey,
    Lk::AwsExample,
    Lk::ReservedEmail,
    Lk::DocIpv4,
    Lk::DocIpv6,
    Lk::Localhost,
    Lk::GitSha,
    Lk::Coordinates,
    Lk::Isbn,
    Lk::Tracking,
    Lk::PasswordPlaceholder,
    Lk::GitRemote,
];
const CODE_DECOYS: &[Lk] = &[
    Lk::Uuid,
    Lk::GitSha,
    Lk::Sha256Hex,
    Lk::Version,
    Lk::PlaceholderKey,
    Lk::AwsExample,
    Lk::AwsExampleSecret,
    Lk::GhpBadCrc,
    Lk::PasswordPlaceholder,
    Lk::PlaceholderDbUrl,
    Lk::ReservedEmail,
    Lk::GitRemote,
    Lk::AtSignNonEmail,
    Lk::DocIpv4,
    Lk::DocIpv6,
    Lk::Localhost,
    Lk::DataUri,
    Lk::ArnAccount,
    Lk::Epoch,
    Lk::TestCard,
];
const LOG_DECOYS: &[Lk] = &[
    Lk::Uuid,
    Lk::GitSha,
    Lk::Timestamp,
    Lk::Epoch,
    Lk::DocIpv4,
    Lk::DocIpv6,
    Lk::Localhost,
    Lk::OrderId,
    Lk::Price,
    Lk::Sha256Hex,
    Lk::ReservedEmail,
    Lk::AtSignNonEmail,
    Lk::Version,
    Lk::ArnAccount,
];
const JSON_DECOYS: &[Lk] = &[
    Lk::Uuid,
    Lk::GitSha,
    Lk::Sha256Hex,
    Lk::Version,
    Lk::Timestamp,
    Lk::OrderId,
    Lk::Price,
    Lk::LuhnFail,
    Lk::BadIban,
    Lk::BadSsn,
    Lk::BadNhs,
    Lk::BadAadhaar,
    Lk::TestCard,
    Lk::PlaceholderKey,
    Lk::AwsExample,
    Lk::GhpBadCrc,
    Lk::PasswordPlaceholder,
    Lk::PlaceholderDbUrl,
    Lk::ReservedEmail,
    Lk::DocIpv4,
    Lk::DocIpv6,
    Lk::Coordinates,
    Lk::Tracking,
    Lk::ArnAccount,
    Lk::Epoch,
];
const CSV_DECOYS: &[Lk] = &[
    Lk::Uuid,
    Lk::OrderId,
    Lk::Price,
    Lk::Version,
    Lk::Timestamp,
    Lk::Sha256Hex,
    Lk::GitSha,
    Lk::Tracking,
    Lk::Isbn,
    Lk::Coordinates,
    Lk::DocIpv4,
    Lk::ReservedEmail,
    Lk::LuhnFail,
    Lk::BadIban,
];
const LANG_DECOYS: &[Lk] = &[
    Lk::Price,
    Lk::SpacedNumber,
    Lk::Timestamp,
    Lk::OrderId,
    Lk::Version,
    Lk::ReservedEmail,
    Lk::DocIpv4,
    Lk::LuhnFail,
    Lk::BadIban,
    Lk::Coordinates,
];

fn allowed_decoys(dk: DocKind) -> &'static [Lk] {
    match dk {
        DocKind::Ticket | DocKind::Chat | DocKind::Email => PROSE_DECOYS,
        DocKind::Python | DocKind::JavaScript | DocKind::Rust | DocKind::Yaml | DocKind::DotEnv => {
            CODE_DECOYS
        }
        DocKind::Log => LOG_DECOYS,
        DocKind::Json => JSON_DECOYS,
        DocKind::Csv => CSV_DECOYS,
        DocKind::German | DocKind::French | DocKind::Japanese | DocKind::Hindi => LANG_DECOYS,
    }
}

fn uuid(rng: &mut Rng) -> String {
    let h = rng.alpha(HEX, 32);
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        rng.pick(&["8", "9", "a", "b"]),
        &h[17..20],
        &h[20..]
    )
}

fn version(rng: &mut Rng) -> String {
    let (a, b, c) = (rng.range(0, 12), rng.range(0, 30), rng.range(0, 40));
    match rng.below(4) {
        0 => format!("v{a}.{b}.{c}"),
        1 => format!("{a}.{b}.{c}-rc.{}", rng.range(1, 5)),
        2 => format!("{a}.{b}.{c}+build.{}", rng.range(100, 9999)),
        _ => format!("{a}.{b}.{c}"),
    }
}

fn iso_ts(rng: &mut Rng) -> String {
    let m = rng.range(1, 12) as u32;
    format!(
        "{}-{m:02}-{:02}T{:02}:{:02}:{:02}Z",
        rng.range(2022, 2025),
        rng.range(1, days_in_month(2023, m) as usize),
        rng.range(0, 23),
        rng.range(0, 59),
        rng.range(0, 59)
    )
}

fn make_decoy(rng: &mut Rng, lk: Lk) -> String {
    use Lk::*;
    match lk {
        Uuid => uuid(rng),
        GitSha => {
            if rng.chance(0.7) {
                rng.alpha(HEX, 40)
            } else {
                rng.alpha(HEX, 7)
            }
        }
        Sha256Hex => rng.alpha(HEX, 64),
        Version => version(rng),
        Timestamp => {
            if rng.chance(0.6) {
                iso_ts(rng)
            } else {
                format!(
                    "{} {} {} {:02}:{:02}:{:02} +0200",
                    rng.range(1, 28),
                    rng.pick(&["Jan", "Mar", "May", "Jul", "Oct", "Dec"]),
                    rng.range(2022, 2025),
                    rng.range(0, 23),
                    rng.range(0, 59),
                    rng.range(0, 59)
                )
            }
        }
        OrderId => match rng.below(4) {
            0 => format!("ORD-{}-{}", rng.range(2021, 2025), rng.digits(7)),
            1 => format!("#{}{}", rng.range(1, 9), rng.digits(8)),
            2 => format!("INV-{}", rng.digits(6)),
            _ => format!("{}{}", rng.range(4, 9), rng.digits(9)),
        },
        Price => match rng.below(4) {
            0 => format!(
                "${},{:03}.{:02}",
                rng.range(1, 9),
                rng.range(0, 999),
                rng.range(0, 99)
            ),
            1 => format!("€{}.{:02}", rng.range(1, 500), rng.range(0, 99)),
            2 => format!(
                "USD {},{:03}.{:02}",
                rng.range(10, 99),
                rng.range(0, 999),
                rng.range(0, 99)
            ),
            _ => format!("£{}.{:02}", rng.range(1, 99), rng.range(0, 99)),
        },
        LuhnFail => loop {
            let n = card_digits(rng);
            let last = (n.as_bytes()[n.len() - 1] - b'0' + rng.range(1, 9) as u8) % 10;
            let bad = format!("{}{last}", &n[..n.len() - 1]);
            if !check::luhn(&bad) {
                break group_card(&bad, " ");
            }
        },
        BadIban => {
            let (cc, b) = bban(rng);
            let good = iban_from_bban(cc, &b);
            // A single changed digit is always caught by mod 97.
            let mut bytes = good.into_bytes();
            let pos = (4..bytes.len())
                .rev()
                .find(|&i| bytes[i].is_ascii_digit())
                .unwrap();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + rng.range(1, 9) as u8) % 10;
            let bad = String::from_utf8(bytes).unwrap();
            debug_assert!(!check::iban(&bad));
            format_iban(rng, &bad)
        }
        BadSsn => {
            let g = rng.range(1, 99);
            let s = rng.range(1, 9999);
            match rng.below(7) {
                0 => format!("000-{g:02}-{s:04}"),
                1 => format!("666-{g:02}-{s:04}"),
                2 => format!("{:03}-00-{s:04}", rng.range(1, 665)),
                3 => format!("{:03}-{g:02}-0000", rng.range(1, 665)),
                4 => "078-05-1120".to_string(),
                5 => "219-09-9999".to_string(),
                _ => "123-45-6789".to_string(),
            }
        }
        BadNhs => loop {
            let n = format!("{}{}", rng.pick(&["4", "6", "7"]), rng.digits(9));
            if !check::nhs(&n) {
                break format!("{} {} {}", &n[..3], &n[3..6], &n[6..]);
            }
        },
        BadAadhaar => loop {
            let n = format!("{}{}", rng.range(2, 9), rng.digits(11));
            if !check::verhoeff(&n) {
                break format!("{} {} {}", &n[..4], &n[4..8], &n[8..]);
            }
        },
        TestCard => {
            let c = *rng.pick(TEST_CARDS);
            if rng.chance(0.5) {
                c.replace(' ', "")
            } else {
                c.to_string()
            }
        }
        PlaceholderKey => rng
            .pick(&[
                "sk_live_YOUR_KEY_HERE",
                "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx",
                "sk-proj-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
                "<YOUR_OPENAI_API_KEY>",
                "sk-ant-api03-YOUR-KEY-HERE",
                "xoxb-your-bot-token",
                "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                "YOUR_API_KEY",
                "${STRIPE_SECRET_KEY}",
                "sk-...",
            ])
            .to_string(),
        AwsExample => "AKIAIOSFODNN7EXAMPLE".to_string(),
        AwsExampleSecret => "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string(),
        GhpBadCrc => loop {
            let t = format!("ghp_{}", rng.alpha(BASE62, 36));
            if !check::github_token(&t) {
                break t;
            }
        },
        PasswordPlaceholder => rng
            .pick(&[
                "changeme",
                "${DB_PASSWORD}",
                "<your-password>",
                "********",
                "{{ .Values.db.password }}",
                "YOUR_PASSWORD_HERE",
                "xxxxxxxx",
                "$DB_PASSWORD",
                "<PASSWORD>",
            ])
            .to_string(),
        PlaceholderDbUrl => rng
            .pick(&[
                "postgres://user:password@localhost:5432/app",
                "postgres://postgres:${PGPASSWORD}@db:5432/app",
                "mysql://root:<password>@127.0.0.1:3306/test",
                "mongodb://admin:changeme@mongo.example.com:27017/admin",
                "redis://:${REDIS_PASSWORD}@cache:6379/0",
                "postgresql://app:****@db.example.org/app",
            ])
            .to_string(),
        ReservedEmail => {
            let d = *rng.pick(&[
                "example.com",
                "example.org",
                "example.net",
                "acme.test",
                "foo.invalid",
                "mail.example",
                "dev.localhost",
            ]);
            format!("{}@{d}", email_local(rng))
        }
        GitRemote => {
            let org = *rng.pick(&["acme", "globex-eng", "platform"]);
            let repo = *rng.pick(&["billing-api", "infra", "web-frontend", "data-pipeline"]);
            match rng.below(3) {
                0 => format!("git@github.com:{org}/{repo}.git"),
                1 => format!("git@gitlab.com:{org}/{repo}.git"),
                _ => format!("ssh://git@bitbucket.org/{org}/{repo}.git"),
            }
        }
        AtSignNonEmail => match rng.below(5) {
            0 => "lodash@4.17.21".to_string(),
            1 => "@babel/core@7.24.5".to_string(),
            2 => format!("react-dom@18.{}.{}", rng.range(0, 3), rng.range(0, 9)),
            3 => format!("nginx@sha256:{}", rng.alpha(HEX, 64)),
            _ => format!("deploy@web-{:02}", rng.range(1, 20)),
        },
        DocIpv4 => match rng.below(10) {
            0 => format!("192.0.2.{}", rng.range(1, 254)),
            1 => format!("198.51.100.{}", rng.range(1, 254)),
            2 => format!("203.0.113.{}", rng.range(1, 254)),
            3 => "127.0.0.1".to_string(),
            4 => "0.0.0.0".to_string(),
            5 => "255.255.255.0".to_string(),
            6 => "169.254.169.254".to_string(),
            7 => "224.0.0.251".to_string(),
            8 => "203.0.113.0/24".to_string(),
            _ => format!("198.51.100.{}:8443", rng.range(1, 254)),
        },
        DocIpv6 => rng
            .pick(&[
                "2001:db8::1",
                "2001:db8:85a3::8a2e:370:7334",
                "::1",
                "fe80::1ff:fe23:4567:890a",
                "ff02::1",
                "2001:0db8:0000:0000:0000:ff00:0042:8329",
                "2001:db8:4006:812::200e",
            ])
            .to_string(),
        Localhost => match rng.below(4) {
            0 => format!("http://localhost:{}", rng.pick(&[3000, 5173, 8000, 8080])),
            1 => "127.0.0.1:5432".to_string(),
            2 => "http://[::1]:3000/health".to_string(),
            _ => "0.0.0.0:9090".to_string(),
        },
        SpacedNumber => format!(
            "{} {:03} {:03}",
            rng.range(1, 99),
            rng.range(0, 999),
            rng.range(0, 999)
        ),
        Coordinates => {
            if rng.chance(0.5) {
                format!(
                    "{}.{:04}, {}.{:04}",
                    rng.range(30, 60),
                    rng.range(0, 9999),
                    rng.range(1, 30),
                    rng.range(0, 9999)
                )
            } else {
                format!(
                    "{}.{:04}° N, {}.{:04}° E",
                    rng.range(30, 60),
                    rng.range(0, 9999),
                    rng.range(1, 30),
                    rng.range(0, 9999)
                )
            }
        }
        Isbn => {
            let body = format!("978{}{}", rng.range(0, 1), rng.digits(8));
            let sum: u32 = body
                .bytes()
                .enumerate()
                .map(|(i, c)| (c - b'0') as u32 * if i % 2 == 0 { 1 } else { 3 })
                .sum();
            let c = (10 - sum % 10) % 10;
            format!(
                "{}-{}-{}-{}-{c}",
                &body[..3],
                &body[3..4],
                &body[4..7],
                &body[7..]
            )
        }
        Tracking => format!(
            "1Z{}{}",
            rng.alpha(b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789", 6),
            rng.digits(10)
        ),
        DataUri => format!(
            "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9h{}=",
            rng.alpha(B64, 60)
        ),
        ArnAccount => format!(
            "arn:aws:iam::{}:role/{}",
            rng.digits(12),
            rng.pick(&["billing-exporter", "ci-deploy", "ReadOnlyAudit"])
        ),
        Epoch => {
            let s = 1_650_000_000 + rng.below(100_000_000);
            if rng.chance(0.5) {
                s.to_string()
            } else {
                format!("{s}{:03}", rng.range(0, 999))
            }
        }
    }
}

// ================================================================================================
// Filler text
// ================================================================================================

const PROSE_EN: &[&str] = &[
    "I'm having trouble exporting my monthly report since the last update.",
    "The dashboard keeps showing a spinner and never finishes loading.",
    "Could you please check why my invoice for March was charged twice?",
    "We rolled out version {ver} to the staging cluster this morning.",
    "The export to CSV works in Firefox but fails in Chrome with a timeout.",
    "Our team of {n} people needs access to the analytics workspace.",
    "I already cleared the cache and tried a different browser, same result.",
    "Can you summarise the attached meeting notes in three bullet points?",
    "Please rewrite this paragraph so it sounds more professional.",
    "The nightly batch job took {n} minutes instead of the usual ten.",
    "Let me know if you need any more details from our side.",
    "Thanks for the quick reply yesterday, it helped a lot.",
    "The webhook retries three times and then gives up with a 502.",
    "Is there a way to bulk-update the shipping addresses for all open orders?",
    "I think the issue started after we enabled single sign-on.",
    "Order {order} arrived damaged and I'd like a replacement.",
    "Our quarterly planning meeting moved to {day}.",
    "The mobile app crashes when I rotate the screen on the settings page.",
    "Could you translate the following product description into Spanish?",
    "We need the report by end of day {day}, if possible.",
    "The total on the invoice was ${price} but the quote said less.",
    "I've attached a screenshot of the error message.",
    "Write a polite reminder to a customer whose payment is overdue.",
    "Draft a short release note for the new search filters.",
    "Our warehouse in Rotterdam reports delays of about {n} days.",
    "The API returns 429 when we send more than {n} requests per second.",
    "Please escalate this to the billing team.",
    "Can you explain the difference between the Standard and Plus plans?",
    "Everything worked fine until the maintenance window on {day}.",
    "Here is the relevant part of our configuration, with the secrets removed.",
    "The search results are sorted by date even though I picked relevance.",
    "We migrated {n} customers to the new pricing last week.",
    "Is it possible to schedule the export for 6am every Monday?",
    "The PDF preview is blank for invoices with more than {n} line items.",
    "Two of our admins can no longer see the audit log.",
];
const SUBJECTS: &[&str] = &[
    "Export fails after update",
    "Double charge on invoice",
    "Cannot log in with SSO",
    "Question about API limits",
    "Damaged delivery",
    "Request for data correction",
    "Webhook errors since Monday",
    "Billing address change",
];
const WEEKDAYS: &[&str] = &["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"];

fn cx_pick(cx: &mut Ctx, xs: &'static [&'static str]) -> &'static str {
    xs[cx.rng.below(xs.len())]
}

fn fill(cx: &mut Ctx, s: &str) -> String {
    let rng = &mut cx.rng;
    let mut out = s.to_string();
    if out.contains("{n}") {
        out = out.replace("{n}", &rng.range(2, 60).to_string());
    }
    if out.contains("{ver}") {
        out = out.replace("{ver}", &version(rng));
    }
    if out.contains("{day}") {
        out = out.replace("{day}", rng.word(WEEKDAYS));
    }
    if out.contains("{order}") {
        out = out.replace("{order}", &format!("#{}", rng.range(10_000, 99_999)));
    }
    if out.contains("{price}") {
        out = out.replace(
            "{price}",
            &format!("{},{:03}.00", rng.range(1, 9), rng.range(0, 999)),
        );
    }
    out
}

const PY_BLOCKS: &[&str] = &[
    "import logging\nlogger = logging.getLogger(__name__)\n",
    "RETRY_LIMIT = 5\nTIMEOUT_SECONDS = 30\n",
    "BASE_URL = \"https://api.globex.com/v2\"\n",
    "\ndef fetch_orders(session, since):\n    resp = session.get(f\"{BASE_URL}/orders\", params={\"since\": since}, timeout=TIMEOUT_SECONDS)\n    resp.raise_for_status()\n    return resp.json()[\"items\"]\n\n",
    "\ndef total_price(items):\n    return sum(i[\"price\"] * i[\"qty\"] for i in items)\n\n",
    "\nclass InvoiceExporter:\n    def __init__(self, client, bucket):\n        self.client = client\n        self.bucket = bucket\n\n    def export(self, invoice_id):\n        logger.info(\"exporting invoice %s\", invoice_id)\n        return self.client.put_object(Bucket=self.bucket, Key=f\"invoices/{invoice_id}.pdf\")\n\n",
    "# TODO: move these settings to the config service\n",
    "FEATURE_FLAGS = {\"new_checkout\": True, \"beta_search\": False}\n",
    "\n@app.route(\"/health\")\ndef health():\n    return {\"status\": \"ok\", \"version\": \"2.14.3\"}\n\n",
    "MAX_BATCH = 500\nREGION = os.environ.get(\"AWS_REGION\", \"eu-west-1\")\n",
    "\ndef chunked(seq, size):\n    for i in range(0, len(seq), size):\n        yield seq[i:i + size]\n\n",
];
const JS_BLOCKS: &[&str] = &[
    "const TIMEOUT_MS = 30000;\n",
    "const api = axios.create({ baseURL: 'https://api.globex.com/v2', timeout: TIMEOUT_MS });\n",
    "\nasync function getUser(id) {\n  const { data } = await api.get(`/users/${id}`);\n  return data;\n}\n\n",
    "\nfunction formatPrice(cents) {\n  return (cents / 100).toFixed(2);\n}\n\n",
    "// TODO: retry on 429 with exponential backoff\n",
    "const FEATURES = { newCheckout: true, betaSearch: false };\n",
    "\napp.get('/health', (req, res) => res.json({ status: 'ok', uptime: process.uptime() }));\n\n",
    "const PAGE_SIZE = Number(process.env.PAGE_SIZE ?? 50);\n",
    "\nmodule.exports.handler = async (event) => {\n  const body = JSON.parse(event.body || '{}');\n  return { statusCode: 202, body: JSON.stringify({ queued: body.items?.length ?? 0 }) };\n};\n\n",
];
const RUST_LINES: &[&str] = &[
    "    let timeout = Duration::from_secs(30);\n",
    "    let retries: u32 = 5;\n",
    "    let base_url = \"https://api.globex.com/v2\";\n",
    "    let client = reqwest::Client::builder().timeout(timeout).build()?;\n",
    "    tracing::info!(retries, \"starting sync\");\n",
    "    let items: Vec<Item> = serde_json::from_str(&body).map_err(serde::de::Error::custom)?;\n",
    "    // TODO: read these from the environment instead\n",
    "    let max_batch = 500usize;\n",
    "    let region = std::env::var(\"AWS_REGION\").unwrap_or_else(|_| \"eu-west-1\".into());\n",
    "    let started = std::time::Instant::now();\n",
    "    for chunk in items.chunks(max_batch) {\n        upload(&client, chunk).await?;\n    }\n",
];
const YAML_LINES: &[&str] = &[
    "  log_level: info\n",
    "  region: eu-west-1\n",
    "  max_connections: 50\n",
    "  timeout_seconds: 30\n",
    "  cache:\n    enabled: true\n    ttl: 300\n",
    "  image: registry.globex.com/billing-api:2.14.3\n",
    "  feature_flags:\n    new_checkout: true\n    beta_search: false\n",
    "  # rotate credentials every 90 days\n",
    "  resources:\n    limits:\n      cpu: 500m\n      memory: 512Mi\n",
    "  retry:\n    attempts: 5\n    backoff_ms: 250\n",
    "  database:\n    host: postgres\n    port: 5432\n    name: billing\n    pool_size: 20\n",
    "  smtp:\n    host: smtp.mailgun.org\n    port: 587\n    starttls: true\n",
    "  cors_origins:\n    - https://app.globex.com\n    - https://admin.globex.com\n",
    "  metrics:\n    enabled: true\n    path: /metrics\n",
    "  queue: invoices-high-priority\n",
];
const ENV_LINES: &[&str] = &[
    "NODE_ENV=production\n",
    "PORT=8080\n",
    "LOG_LEVEL=info\n",
    "REDIS_HOST=cache\n",
    "FEATURE_NEW_CHECKOUT=true\n",
    "TZ=Europe/Berlin\n",
    "WORKERS=4\n",
    "S3_BUCKET=globex-invoices-prod\n",
    "SENTRY_ENVIRONMENT=production\n",
    "# --- database ---\n",
    "DB_POOL_SIZE=20\n",
    "CACHE_TTL_SECONDS=300\n",
    "MAX_UPLOAD_MB=25\n",
    "API_BASE_URL=https://api.globex.com/v2\n",
    "SMTP_HOST=smtp.mailgun.org\nSMTP_PORT=587\n",
    "AWS_REGION=eu-west-1\n",
    "SESSION_TIMEOUT=3600\n",
    "RATE_LIMIT_PER_MINUTE=120\n",
    "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4317\n",
    "CORS_ORIGINS=https://app.globex.com,https://admin.globex.com\n",
    "\n# --- feature flags ---\n",
];

const DE_SENTENCES: &[&str] = &[
    "Vielen Dank für Ihre schnelle Antwort.",
    "Leider funktioniert der Export seit dem letzten Update nicht mehr.",
    "Könnten Sie bitte die Rechnung für März noch einmal prüfen?",
    "Die Lieferung ist heute Morgen beschädigt angekommen.",
    "Wir haben das Problem an unser Entwicklerteam weitergeleitet.",
    "Bitte fassen Sie das folgende Protokoll in drei Sätzen zusammen.",
    "Das Meeting wurde auf Donnerstag um 14 Uhr verschoben.",
    "Grüße aus München und ein schönes Wochenende!",
    "Die Anwendung stürzt beim Öffnen der Einstellungen ab.",
    "Für Rückfragen stehe ich Ihnen gerne zur Verfügung.",
    "Der Bericht für das dritte Quartal ist fast fertig.",
    "Übersetzen Sie bitte den folgenden Absatz ins Englische.",
];
const FR_SENTENCES: &[&str] = &[
    "Merci beaucoup pour votre réponse rapide.",
    "Depuis la dernière mise à jour, l'export ne fonctionne plus.",
    "Pourriez-vous vérifier la facture du mois de mars ?",
    "Le colis est arrivé endommagé ce matin.",
    "Nous avons transmis le problème à notre équipe technique.",
    "Résumez le compte rendu suivant en trois phrases, s'il vous plaît.",
    "La réunion est reportée à jeudi à 14 h.",
    "Je reste à votre disposition pour toute question.",
    "L'application plante à l'ouverture des paramètres.",
    "Le rapport du troisième trimestre est presque prêt.",
    "Bien cordialement, et bonne fin de semaine.",
    "Traduisez ce paragraphe en anglais, en gardant un ton professionnel.",
];
const JA_SENTENCES: &[&str] = &[
    "いつもお世話になっております。",
    "前回のアップデート以降、エクスポート機能が動作しません。",
    "３月分の請求書をご確認いただけますでしょうか。",
    "本日届いた商品が破損していました。",
    "この件は開発チームに共有しました。",
    "以下の議事録を三つの要点にまとめてください。",
    "会議は木曜日の午後２時に変更になりました。",
    "ご不明な点がございましたら、お気軽にお問い合わせください。",
    "設定画面を開くとアプリが終了してしまいます。",
    "第３四半期のレポートはほぼ完成しています。",
    "よろしくお願いいたします。",
    "次の段落を英語に翻訳してください。",
];
const HI_SENTENCES: &[&str] = &[
    "आपके त्वरित उत्तर के लिए धन्यवाद।",
    "पिछले अपडेट के बाद से एक्सपोर्ट काम नहीं कर रहा है।",
    "कृपया मार्च का बिल दोबारा जाँच लें।",
    "आज सुबह पार्सल क्षतिग्रस्त हालत में पहुँचा।",
    "हमने यह समस्या अपनी तकनीकी टीम को भेज दी है।",
    "कृपया नीचे दिए गए नोट्स का तीन बिंदुओं में सारांश दें।",
    "बैठक गुरुवार दोपहर २ बजे तक के लिए टाल दी गई है।",
    "किसी भी प्रश्न के लिए मुझसे संपर्क करें।",
    "सेटिंग्स खोलते ही ऐप बंद हो जाता है।",
    "तीसरी तिमाही की रिपोर्ट लगभग तैयार है।",
    "कृपया इस अनुच्छेद का अंग्रेज़ी में अनुवाद करें।",
    "आपका दिन शुभ हो।",
];

fn lang_value_templates(dk: DocKind, v: V) -> &'static [&'static str] {
    use V::*;
    match (dk, v) {
        (DocKind::German, Email | EmailZw) => &[
            "Meine E-Mail-Adresse lautet {}.",
            "Bitte antworten Sie an {}.",
        ],
        (DocKind::German, PhoneDe | PhoneE164) => &[
            "Sie erreichen mich unter {}.",
            "Telefon: {}",
            "Rufen Sie mich bitte unter {} zurück.",
        ],
        (DocKind::German, Iban) => &[
            "Bitte überweisen Sie den Betrag auf mein Konto {}.",
            "IBAN: {}",
        ],
        (DocKind::German, Card) => &["Meine Kreditkartennummer ist {}.", "Kartennummer: {}"],
        (DocKind::German, Term) => &[
            "Die Präsentation zu {} ist streng vertraulich.",
            "Das Budget für {} wurde genehmigt.",
        ],
        (DocKind::German, Ipv4) => &[
            "Der Server {} antwortet nicht mehr.",
            "Zugriffe von {} werden blockiert.",
        ],
        (DocKind::French, Email | EmailBracket) => {
            &["Mon adresse e-mail est {}.", "Écrivez-moi à {}, merci."]
        }
        (DocKind::French, PhoneFr) => &[
            "Vous pouvez me joindre au {}.",
            "Tél. : {}",
            "Mon numéro de portable est le {}.",
        ],
        (DocKind::French, Iban) => &[
            "Voici mon IBAN : {}.",
            "Merci de virer le montant sur le compte {}.",
        ],
        (DocKind::French, Card) => &["Le numéro de ma carte bancaire est {}.", "Carte : {}"],
        (DocKind::French, Term) => &[
            "Le dossier {} est strictement confidentiel.",
            "Le budget de {} a été validé.",
        ],
        (DocKind::French, Ipv4) => &[
            "L'adresse IP du serveur est {}.",
            "Les requêtes depuis {} échouent.",
        ],
        (DocKind::Japanese, Email | EmailFullwidth) => {
            &["メールアドレスは{}です。", "連絡先：{}。"]
        }
        (DocKind::Japanese, PhoneFullwidth | PhoneE164) => &["電話番号は{}です。", "携帯：{}。"],
        (DocKind::Japanese, Card | CardFullwidth) => {
            &["クレジットカード番号は{}です。", "カード番号：{}。"]
        }
        (DocKind::Japanese, Term) => &["{}の資料は社外秘です。", "{}の予算が承認されました。"],
        (DocKind::Japanese, Ipv4) => &[
            "サーバーのIPアドレスは{}です。",
            "{}からのアクセスが失敗しています。",
        ],
        (DocKind::Hindi, Email) => &["मेरा ईमेल पता {} है।", "कृपया {} पर संपर्क करें।"],
        (DocKind::Hindi, PhoneIn | PhoneDevanagari) => &["मेरा मोबाइल नंबर {} है।", "फ़ोन: {}"],
        (DocKind::Hindi, Aadhaar) => &["मेरा Aadhaar नंबर {} है।", "आधार संख्या (Aadhaar): {}"],
        (DocKind::Hindi, Pan) => &["मेरा PAN कार्ड नंबर {} है।", "PAN: {}"],
        (DocKind::Hindi, Card) => &["मेरे कार्ड का नंबर {} है।", "कार्ड नंबर: {}"],
        (DocKind::Hindi, Term) => &["{} की जानकारी गोपनीय है।", "{} का बजट मंज़ूर हो गया है।"],
        _ => lang_generic(dk),
    }
}

fn lang_decoy_templates(dk: DocKind, lk: Lk) -> &'static [&'static str] {
    match (dk, lk) {
        (DocKind::German, Lk::SpacedNumber) => {
            &["Der Umsatz lag bei {} Euro.", "Die Stadt hat {} Einwohner."]
        }
        (DocKind::French, Lk::SpacedNumber) => &[
            "La population est de {} habitants.",
            "Le chiffre d'affaires atteint {} euros.",
        ],
        (DocKind::German, Lk::Price) => &["Der Gesamtbetrag war {}.", "Wir haben {} bezahlt."],
        (DocKind::French, Lk::Price) => &["Le montant total était de {}.", "Nous avons payé {}."],
        (DocKind::Japanese, Lk::SpacedNumber) => &["売上は{}円でした。"],
        (DocKind::Hindi, Lk::SpacedNumber) => &["कुल राशि {} रुपये है।"],
        _ => lang_generic(dk),
    }
}

fn lang_generic(dk: DocKind) -> &'static [&'static str] {
    match dk {
        DocKind::German => &["Referenz: {}", "Details: {}"],
        DocKind::French => &["Référence : {}", "Détails : {}"],
        // A label line ends with 。 so that a following sentence starting with a digit
        // (３月…) does not run into the value.
        DocKind::Japanese => &["参照：{}。", "詳細：{}。"],
        _ => &["संदर्भ: {}", "विवरण: {}"],
    }
}

// ================================================================================================
// Document assembly
// ================================================================================================

struct Ctx {
    rng: Rng,
    date: (u32, u32, u32),
    clock: u32,
    names: [String; 2],
}

impl Ctx {
    fn new(seed: u64) -> Ctx {
        let mut rng = Rng::new(seed);
        let m = rng.range(1, 12) as u32;
        let date = (
            rng.range(2023, 2025) as u32,
            m,
            rng.range(1, days_in_month(2023, m) as usize) as u32,
        );
        let clock = rng.range(0, 20 * 3600) as u32;
        let names = [full_name(&mut rng), full_name(&mut rng)];
        Ctx {
            rng,
            date,
            clock,
            names,
        }
    }

    fn tick(&mut self) -> (u32, u32, u32) {
        self.clock += self.rng.range(1, 90) as u32;
        let c = self.clock % 86_400;
        (c / 3600, c / 60 % 60, c % 60)
    }

    fn log_prefix(&mut self) -> String {
        let (h, m, s) = self.tick();
        let (y, mo, d) = self.date;
        let level = *self
            .rng
            .pick(&["INFO ", "INFO ", "INFO ", "DEBUG", "WARN ", "ERROR"]);
        let component = *self
            .rng
            .pick(&["billing-api", "gateway", "worker", "auth", "scheduler"]);
        let ms = self.rng.range(0, 999);
        format!(
            "{y}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z {level} {component} [{}] ",
            self.rng.alpha(HEX, 8)
        )
    }

    fn chat_prefix(&mut self) -> String {
        let (h, m, _) = self.tick();
        let who = self.names[self.rng.below(2)].clone();
        format!("[{h:02}:{m:02}] {who}: ")
    }
}

enum Piece {
    Text(String),
    Value(String, Cat, &'static str),
    Decoy(String, &'static str),
}

#[derive(Default)]
struct Builder {
    text: String,
    expected: Vec<Expected>,
    decoys: Vec<Decoy>,
}

impl Builder {
    fn text(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn push(&mut self, p: Piece) {
        match p {
            Piece::Text(s) => self.text.push_str(&s),
            Piece::Value(s, cat, kind) => {
                let start = self.text.len();
                self.text.push_str(&s);
                self.expected.push(Expected {
                    start,
                    end: self.text.len(),
                    cat,
                    kind,
                });
            }
            Piece::Decoy(s, kind) => {
                let start = self.text.len();
                self.text.push_str(&s);
                self.decoys.push(Decoy {
                    start,
                    end: self.text.len(),
                    kind,
                });
            }
        }
    }

    fn append_doc(&mut self, d: &Doc) {
        let off = self.text.len();
        self.text.push_str(&d.text);
        self.expected.extend(d.expected.iter().map(|e| Expected {
            start: e.start + off,
            end: e.end + off,
            ..e.clone()
        }));
        self.decoys.extend(d.decoys.iter().map(|e| Decoy {
            start: e.start + off,
            end: e.end + off,
            ..e.clone()
        }));
    }

    fn finish(self, kind: DocKind) -> Doc {
        Doc {
            kind,
            text: self.text,
            expected: self.expected,
            decoys: self.decoys,
        }
    }
}

/// A value or decoy to place in a document.
#[derive(Clone, Copy)]
enum Slot {
    Value(V),
    Decoy(Lk),
}

impl Slot {
    fn keys(self) -> &'static [&'static str] {
        match self {
            Slot::Value(v) => v.keys(),
            Slot::Decoy(d) => d.keys(),
        }
    }

    fn prose(self, dk: DocKind) -> &'static [&'static str] {
        match (self, dk.is_non_ascii()) {
            (Slot::Value(v), false) => v.prose(),
            (Slot::Decoy(d), false) => d.prose(),
            (Slot::Value(v), true) => lang_value_templates(dk, v),
            (Slot::Decoy(d), true) => lang_decoy_templates(dk, d),
        }
    }

    fn multiline(self) -> bool {
        matches!(self, Slot::Value(v) if v.multiline())
    }

    fn piece(self, rng: &mut Rng) -> (String, Box<dyn Fn(String) -> Piece>) {
        match self {
            Slot::Value(v) => (
                make_value(rng, v),
                Box::new(move |s| Piece::Value(s, v.cat(), v.name())),
            ),
            Slot::Decoy(d) => (
                make_decoy(rng, d),
                Box::new(move |s| Piece::Decoy(s, d.name())),
            ),
        }
    }
}

fn upper(key: &str) -> String {
    key.to_ascii_uppercase()
}

fn camel(key: &str) -> String {
    let mut out = String::new();
    for (i, part) in key.split('_').enumerate() {
        if i == 0 {
            out.push_str(part)
        } else {
            out.push_str(&capitalize(part))
        }
    }
    out
}

/// Render a slot in the syntax of the document kind, returning the pieces of one chunk.
fn render(cx: &mut Ctx, dk: DocKind, slot: Slot) -> Vec<Piece> {
    let key = *cx.rng.pick(slot.keys());
    let (raw, wrap) = slot.piece(&mut cx.rng);
    let multiline = slot.multiline();
    let around = |pre: String, value: String, post: String| {
        vec![Piece::Text(pre), wrap(value), Piece::Text(post)]
    };
    match dk {
        DocKind::Ticket
        | DocKind::Email
        | DocKind::Chat
        | DocKind::German
        | DocKind::French
        | DocKind::Japanese
        | DocKind::Hindi => {
            let tpl = *cx.rng.pick(slot.prose(dk));
            let (pre, post) = tpl.split_once("{}").unwrap();
            let mut pieces = around(pre.to_string(), raw, post.to_string());
            if dk == DocKind::Chat {
                pieces.insert(0, Piece::Text(cx.chat_prefix()));
                pieces.push(Piece::Text("\n".into()));
            }
            pieces
        }
        DocKind::Python => {
            if multiline {
                around(format!("{} = \"\"\"", upper(key)), raw, "\"\"\"\n".into())
            } else {
                match cx.rng.below(3) {
                    0 => around(format!("{} = \"", upper(key)), raw, "\"\n".into()),
                    1 => around(format!("{key} = '"), raw, "'\n".into()),
                    _ => around(format!("settings[\"{key}\"] = \""), raw, "\"\n".into()),
                }
            }
        }
        DocKind::JavaScript => {
            if multiline {
                around(format!("const {} = `", camel(key)), raw, "`;\n".into())
            } else {
                match cx.rng.below(3) {
                    0 => around(format!("const {} = '", camel(key)), raw, "';\n".into()),
                    1 => around(format!("const {} = \"", camel(key)), raw, "\";\n".into()),
                    _ => around(
                        format!("process.env.{k} = process.env.{k} || '", k = upper(key)),
                        raw,
                        "';\n".into(),
                    ),
                }
            }
        }
        DocKind::Rust => {
            if multiline {
                around(format!("    let {key} = r#\""), raw, "\"#;\n".into())
            } else if cx.rng.chance(0.5) {
                around(format!("    let {key} = \""), raw, "\";\n".into())
            } else {
                around(
                    format!("    const {}: &str = \"", upper(key)),
                    raw,
                    "\";\n".into(),
                )
            }
        }
        DocKind::Yaml => {
            if multiline {
                around(
                    format!("  {key}: |\n    "),
                    raw.replace('\n', "\n    "),
                    "\n".into(),
                )
            } else if cx.rng.chance(0.5)
                || raw.contains(": ")
                || raw.starts_with(['*', '&', '!', '{', '[', '%', '@', '<', '$'])
            {
                around(format!("  {key}: \""), raw, "\"\n".into())
            } else {
                around(format!("  {key}: "), raw, "\n".into())
            }
        }
        DocKind::DotEnv => {
            if multiline || cx.rng.chance(0.3) {
                around(format!("{}=\"", upper(key)), raw, "\"\n".into())
            } else {
                around(format!("{}=", upper(key)), raw, "\n".into())
            }
        }
        DocKind::Log => {
            let prefix = cx.log_prefix();
            let msg = *cx.rng.pick(&[
                "request received",
                "login attempt",
                "payload accepted",
                "upstream call",
                "user profile updated",
                "validation failed",
                "webhook delivered",
                "config loaded",
            ]);
            if raw.contains(' ') {
                around(format!("{prefix}{msg} {key}=\""), raw, "\"\n".into())
            } else {
                around(format!("{prefix}{msg} {key}="), raw, "\n".into())
            }
        }
        DocKind::Json => around(format!("    \"{key}\": \""), raw, "\"".into()),
        DocKind::Csv => unreachable!("CSV documents are built by csv_doc"),
    }
}

fn filler(cx: &mut Ctx, dk: DocKind) -> String {
    match dk {
        DocKind::Ticket | DocKind::Email => {
            let s = cx_pick(cx, PROSE_EN);
            fill(cx, s)
        }
        DocKind::Chat => {
            let p = cx.chat_prefix();
            let s = cx_pick(cx, PROSE_EN);
            format!("{p}{}\n", fill(cx, s))
        }
        DocKind::Python => cx_pick(cx, PY_BLOCKS).to_string(),
        DocKind::JavaScript => cx_pick(cx, JS_BLOCKS).to_string(),
        DocKind::Rust => cx_pick(cx, RUST_LINES).to_string(),
        DocKind::Yaml => cx_pick(cx, YAML_LINES).to_string(),
        DocKind::DotEnv => cx_pick(cx, ENV_LINES).to_string(),
        DocKind::Log => {
            let p = cx.log_prefix();
            let rng = &mut cx.rng;
            let msg = match rng.below(10) {
                0 => format!(
                    "GET /api/v2/orders?page={} 200 {}ms",
                    rng.range(1, 40),
                    rng.range(3, 900)
                ),
                1 => format!("POST /api/v2/invoices 201 {}ms", rng.range(10, 900)),
                2 => format!("cache miss key=user:profile:{}", rng.range(10_000, 99_999)),
                3 => format!(
                    "job=nightly-export finished rows={} duration={}.{}s",
                    rng.range(100, 90_000),
                    rng.range(1, 300),
                    rng.range(0, 9)
                ),
                4 => format!(
                    "retrying upstream=payments attempt={} backoff={}ms",
                    rng.range(1, 5),
                    rng.range(100, 5000)
                ),
                5 => "healthcheck ok".to_string(),
                6 => format!("pool stats size=20 idle={} waiting=0", rng.range(0, 20)),
                7 => format!(
                    "client={} GET /health 200 1ms",
                    rng.pick(&[
                        "127.0.0.1",
                        "::1",
                        "198.51.100.7",
                        "203.0.113.45",
                        "192.0.2.10"
                    ])
                ),
                8 => format!("request_id={} completed status=200", uuid(rng)),
                _ => format!(
                    "deploy version={} commit={}",
                    version(rng),
                    rng.alpha(HEX, 7)
                ),
            };
            format!("{p}{msg}\n")
        }
        DocKind::Json => {
            let rng = &mut cx.rng;
            match rng.below(11) {
                0 => "    \"status\": \"active\"".to_string(),
                1 => format!(
                    "    \"plan\": \"{}\"",
                    rng.pick(&["free", "pro", "enterprise"])
                ),
                2 => format!(
                    "    \"amount\": {}.{:02}",
                    rng.range(1, 999),
                    rng.range(0, 99)
                ),
                3 => format!(
                    "    \"currency\": \"{}\"",
                    rng.pick(&["EUR", "USD", "GBP", "INR", "JPY"])
                ),
                4 => format!("    \"created_at\": \"{}\"", iso_ts(rng)),
                5 => format!(
                    "    \"items\": [{{\"sku\": \"SKU-{}\", \"qty\": {}}}]",
                    rng.range(1000, 9999),
                    rng.range(1, 5)
                ),
                6 => format!(
                    "    \"locale\": \"{}\"",
                    rng.pick(&["de-DE", "en-GB", "fr-FR", "ja-JP", "hi-IN"])
                ),
                7 => "    \"marketing_opt_in\": false".to_string(),
                8 => "    \"tags\": [\"priority\", \"billing\"]".to_string(),
                9 => format!("    \"customer_id\": \"cus_{}\"", rng.alpha(BASE62, 14)),
                _ => {
                    let s = cx_pick(cx, PROSE_EN);
                    format!("    \"note\": \"{}\"", fill(cx, s))
                }
            }
        }
        DocKind::Csv => unreachable!("CSV documents are built by csv_doc"),
        DocKind::German => cx_pick(cx, DE_SENTENCES).to_string(),
        DocKind::French => cx_pick(cx, FR_SENTENCES).to_string(),
        DocKind::Japanese => cx_pick(cx, JA_SENTENCES).to_string(),
        DocKind::Hindi => cx_pick(cx, HI_SENTENCES).to_string(),
    }
}

/// Header, footer, separator between chunks, and a typical filler chunk size.
fn frame(cx: &mut Ctx, dk: DocKind) -> (String, String, &'static str, usize) {
    let name = cx.names[0].clone();
    let subject = cx_pick(cx, SUBJECTS);
    match dk {
        DocKind::Ticket => (
            format!(
                "Ticket #{} — {subject}\nPriority: {}\nProduct: {}\n\nHi support team,\n\n",
                cx.rng.range(100_000, 999_999),
                cx.rng.pick(&["low", "normal", "high", "urgent"]),
                cx.rng
                    .pick(&["Analytics", "Billing", "Storefront", "Mobile app"])
            ),
            format!("\n\nThanks,\n{name}\n"),
            " ",
            70,
        ),
        DocKind::Email => {
            let (y, m, d) = cx.date;
            let (h, mi, _) = cx.tick();
            (
                format!(
                    "From: {name}\nTo: Customer Success\nSubject: {subject}\nDate: {}, {d} {} {y} {h:02}:{mi:02}\n\nHello {},\n\n",
                    cx.rng.pick(&["Mon", "Tue", "Wed", "Thu", "Fri"]),
                    [
                        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                        "Nov", "Dec"
                    ][m as usize - 1],
                    cx.names[1].split(' ').next().unwrap()
                ),
                format!(
                    "\n\nKind regards,\n{name}\n{}\n",
                    cx.rng
                        .pick(&["Head of Operations", "Finance Manager", "Customer"])
                ),
                " ",
                70,
            )
        }
        DocKind::Chat => (String::new(), String::new(), "", 90),
        DocKind::Python => (
            "import os\nimport requests\n\n".into(),
            "\nif __name__ == \"__main__\":\n    main()\n".into(),
            "",
            120,
        ),
        DocKind::JavaScript => (
            "'use strict';\n\nconst axios = require('axios');\n\n".into(),
            "\nmodule.exports = { api };\n".into(),
            "",
            120,
        ),
        DocKind::Rust => (
            "use std::time::Duration;\n\npub async fn settings() -> anyhow::Result<Settings> {\n"
                .into(),
            "    Ok(Settings::default())\n}\n".into(),
            "",
            60,
        ),
        DocKind::Yaml => {
            let svc = *cx.rng.pick(&["billing-api", "gateway", "worker"]);
            (
                format!(
                    "# {svc} configuration\nservice:\n  name: {svc}\n  replicas: 3\nsettings:\n"
                ),
                String::new(),
                "",
                30,
            )
        }
        DocKind::DotEnv => (
            "# generated by deploy tooling, do not commit\n".into(),
            String::new(),
            "",
            18,
        ),
        DocKind::Log => (String::new(), String::new(), "", 110),
        DocKind::Json => (
            format!(
                "{{\n  \"id\": \"evt_{}\",\n  \"type\": \"{}\",\n  \"data\": {{\n",
                cx.rng.alpha(BASE62, 16),
                cx.rng.pick(&[
                    "customer.updated",
                    "order.created",
                    "invoice.paid",
                    "user.signup"
                ])
            ),
            "\n  }\n}\n".into(),
            ",\n",
            35,
        ),
        DocKind::Csv => unreachable!("CSV documents are built by csv_doc"),
        DocKind::German => (
            format!("Betreff: {subject}\n\nSehr geehrte Damen und Herren,\n\n"),
            format!("\n\nMit freundlichen Grüßen\n{name}\n"),
            " ",
            60,
        ),
        DocKind::French => (
            format!("Objet : {subject}\n\nBonjour,\n\n"),
            format!("\n\nCordialement,\n{name}\n"),
            " ",
            60,
        ),
        DocKind::Japanese => (
            "件名：お問い合わせ\n\nお世話になっております。\n\n".into(),
            "\n\n田中 健二\n".into(),
            "",
            60,
        ),
        DocKind::Hindi => (
            "विषय: सहायता अनुरोध\n\nनमस्ते,\n\n".into(),
            "\n\nधन्यवाद,\nप्रिया शर्मा\n".into(),
            " ",
            100,
        ),
    }
}

/// Build one document of kind `dk` with the given values and decoys, padded with filler to
/// at least `min_bytes`. For CSV, `csv_cells` limits how many cells of the sensitive
/// column(s) are filled (sparse columns in the throughput corpus).
fn build(
    cx: &mut Ctx,
    dk: DocKind,
    values: &[V],
    csv_cells: Option<usize>,
    decoys: &[Lk],
    min_bytes: usize,
) -> Doc {
    let min_bytes = min_bytes.min(max_bytes(dk));
    if dk == DocKind::Csv {
        return csv_doc(cx, values, csv_cells, decoys, min_bytes);
    }
    let (header, footer, sep, avg) = frame(cx, dk);
    let mut slots: Vec<Slot> = values
        .iter()
        .map(|&v| Slot::Value(v))
        .chain(decoys.iter().map(|&d| Slot::Decoy(d)))
        .collect();
    cx.rng.shuffle(&mut slots);
    let n_fill = (min_bytes.saturating_sub(header.len() + footer.len()) / avg).max(2);
    let total = n_fill + slots.len();
    // Choose which positions hold the slots; the rest are filler.
    let mut order: Vec<usize> = (0..total).collect();
    cx.rng.shuffle(&mut order);
    let mut is_slot = vec![false; total];
    for &i in &order[..slots.len()] {
        is_slot[i] = true;
    }
    let mut b = Builder::default();
    b.text(&header);
    let mut last_filler = String::new();
    let mut next_filler = |cx: &mut Ctx| {
        let mut f = filler(cx, dk);
        if f == last_filler {
            f = filler(cx, dk);
        }
        last_filler.clone_from(&f);
        f
    };
    let mut next_slot = slots.into_iter();
    let mut first = true;
    let push_sep = |b: &mut Builder, cx: &mut Ctx, first: &mut bool| {
        if !*first {
            // Prose gets an occasional paragraph break.
            if sep == " " && cx.rng.chance(0.2) {
                b.text("\n\n")
            } else {
                b.text(sep)
            }
        }
        *first = false;
    };
    for &slot_here in &is_slot {
        push_sep(&mut b, cx, &mut first);
        if slot_here {
            let slot = next_slot.next().unwrap();
            for p in render(cx, dk, slot) {
                b.push(p);
            }
        } else {
            let f = next_filler(cx);
            b.text(&f);
        }
    }
    while b.text.len() + footer.len() < min_bytes {
        push_sep(&mut b, cx, &mut first);
        let f = next_filler(cx);
        b.text(&f);
    }
    b.text(&footer);
    b.finish(dk)
}

/// Config files and source snippets stay small, like the real thing.
fn max_bytes(dk: DocKind) -> usize {
    match dk {
        DocKind::DotEnv => 900,
        DocKind::Yaml => 1500,
        DocKind::Rust | DocKind::Python | DocKind::JavaScript => 3000,
        _ => usize::MAX,
    }
}

fn csv_doc(
    cx: &mut Ctx,
    values: &[V],
    cells: Option<usize>,
    decoys: &[Lk],
    min_bytes: usize,
) -> Doc {
    let mut value_cols: Vec<V> = Vec::new();
    for &v in values {
        if !value_cols.contains(&v) {
            value_cols.push(v);
        }
    }
    let mut decoy_cols: Vec<Lk> = Vec::new();
    for &d in decoys {
        if !decoy_cols.contains(&d) {
            decoy_cols.push(d);
        }
    }
    let mut header: Vec<String> = vec!["id".into(), "name".into()];
    header.extend(value_cols.iter().map(|v| v.keys()[0].to_string()));
    header.extend(["city".into(), "plan".into()]);
    header.extend(decoy_cols.iter().map(|d| d.keys()[0].to_string()));
    header.push("created_at".into());
    let mut b = Builder::default();
    b.text(&header.join(","));
    b.text("\n");
    // Labelled CSVs fill every cell (2-4 rows); sparse ones fill `cells` cells in total.
    let rows_wanted = if cells.is_none() && !value_cols.is_empty() {
        cx.rng.range(2, 4)
    } else {
        usize::MAX
    };
    let mut rows = 0usize;
    let mut remaining_cells = cells.unwrap_or(usize::MAX);
    let est_rows = (min_bytes / 80).max(1);
    while rows < rows_wanted && (rows < 2 || b.text.len() < min_bytes) {
        let id = 1000 + rows;
        let name = full_name(&mut cx.rng);
        b.text(&format!("{id},{name},"));
        for &v in &value_cols {
            let fill_cell = match cells {
                None => true,
                Some(_) => {
                    remaining_cells > 0
                        && cx.rng.below(est_rows.saturating_sub(rows).max(1)) < remaining_cells
                }
            };
            if fill_cell {
                remaining_cells = remaining_cells.saturating_sub(1);
                let raw = make_value(&mut cx.rng, v);
                let quote = raw.contains(' ') || raw.contains(',');
                if quote {
                    b.text("\"");
                }
                b.push(Piece::Value(raw, v.cat(), v.name()));
                if quote {
                    b.text("\"");
                }
            }
            b.text(",");
        }
        let city = *cx.rng.pick(&[
            "Berlin", "Lyon", "Austin", "Leeds", "Pune", "Osaka", "Madrid", "Utrecht", "Milan",
        ]);
        let plan = *cx.rng.pick(&["free", "pro", "enterprise"]);
        b.text(&format!("{city},{plan},"));
        for &d in &decoy_cols {
            let raw = make_decoy(&mut cx.rng, d);
            let quote = raw.contains(' ') || raw.contains(',');
            if quote {
                b.text("\"");
            }
            b.push(Piece::Decoy(raw, d.name()));
            if quote {
                b.text("\"");
            }
            b.text(",");
        }
        let (y, m, d) = cx.date;
        b.text(&format!("{y}-{m:02}-{d:02}\n"));
        rows += 1;
    }
    b.finish(DocKind::Csv)
}

const KIND_WEIGHTS_LABELLED: [(DocKind, u32); 15] = [
    (DocKind::Ticket, 10),
    (DocKind::Chat, 10),
    (DocKind::Email, 8),
    (DocKind::Python, 7),
    (DocKind::JavaScript, 6),
    (DocKind::Rust, 5),
    (DocKind::Yaml, 6),
    (DocKind::DotEnv, 6),
    (DocKind::Log, 10),
    (DocKind::Json, 10),
    (DocKind::Csv, 6),
    (DocKind::German, 4),
    (DocKind::French, 4),
    (DocKind::Japanese, 4),
    (DocKind::Hindi, 4),
];
const KIND_WEIGHTS_MIXED: [(DocKind, u32); 15] = [
    (DocKind::Ticket, 12),
    (DocKind::Chat, 12),
    (DocKind::Email, 10),
    (DocKind::Python, 7),
    (DocKind::JavaScript, 7),
    (DocKind::Rust, 4),
    (DocKind::Yaml, 4),
    (DocKind::DotEnv, 2),
    (DocKind::Log, 12),
    (DocKind::Json, 12),
    (DocKind::Csv, 4),
    (DocKind::German, 2),
    (DocKind::French, 3),
    (DocKind::Japanese, 2),
    (DocKind::Hindi, 1),
];

fn pick_kind(rng: &mut Rng, weights: &[(DocKind, u32)]) -> DocKind {
    let total: u32 = weights.iter().map(|w| w.1).sum();
    let mut x = rng.below(total as usize) as u32;
    for &(k, w) in weights {
        if x < w {
            return k;
        }
        x -= w;
    }
    unreachable!()
}
