//! Scanner benchmarks on the deterministic synthetic corpus of `tests/it/corpus.rs`:
//!
//! - `throughput`: every document of a ~4 MB realistic mix (mostly clean prose, code, logs,
//!   JSON and CSV; about one sensitive value per 2-4 KB; ~10% non-ASCII), scanned in turn,
//!   with the default detectors and with a 10,000-term dictionary added;
//! - `latency_4k`: one ~4 KB prompt, same two scanners;
//! - `build`: building the default scanner, and one with a 100,000-term dictionary.
//!
//! `cargo bench --bench scan` takes under two minutes on two cores (plus the build);
//! `cargo bench --bench scan -- latency_4k` runs one group.

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use privacy_router::scan::{Dictionary, Scanner};
use std::hint::black_box;
use std::time::Duration;

// Shared with the accuracy tests; the benchmarks use only part of it.
#[allow(dead_code)]
#[path = "../tests/it/corpus.rs"]
mod corpus;

const SEED: u64 = 0xBE7C_0000_0000_0001;
const CORPUS_BYTES: usize = 4 << 20;

fn default_scanner() -> Scanner {
    Scanner::builder()
        .build()
        .expect("the default scanner builds")
}

fn dictionary_scanner(terms: &[String]) -> Scanner {
    Scanner::builder()
        .dictionary(Dictionary::from_terms("codenames", terms))
        .build()
        .expect("the scanner with a dictionary builds")
}

fn throughput(c: &mut Criterion) {
    let docs = corpus::mixed_corpus(SEED, CORPUS_BYTES);
    let bytes: usize = docs.iter().map(String::len).sum();
    eprintln!("throughput corpus: {} documents, {bytes} bytes", docs.len());
    let scanners = [
        ("default", default_scanner()),
        ("dictionary_10k", dictionary_scanner(&corpus::terms(10_000))),
    ];

    let mut group = c.benchmark_group("throughput");
    group
        .throughput(Throughput::Bytes(bytes as u64))
        // One iteration scans 4 MB (hundreds of ms): equal-sized samples keep the run short.
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    for (name, scanner) in &scanners {
        group.bench_function(*name, |b| {
            b.iter(|| {
                docs.iter()
                    .map(|doc| scanner.scan(black_box(doc)).len())
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

fn latency_4k(c: &mut Criterion) {
    let prompt = corpus::prompt_4k(SEED);
    let scanners = [
        ("default", default_scanner()),
        ("dictionary_10k", dictionary_scanner(&corpus::terms(10_000))),
    ];

    let mut group = c.benchmark_group("latency_4k");
    group
        .throughput(Throughput::Bytes(prompt.len() as u64))
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (name, scanner) in &scanners {
        group.bench_function(*name, |b| b.iter(|| scanner.scan(black_box(&prompt))));
    }
    group.finish();
}

fn build(c: &mut Criterion) {
    let terms = corpus::terms(100_000);

    let mut group = c.benchmark_group("build");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("default", |b| b.iter(default_scanner));
    // Seconds per build: ten samples of one build each need a longer window.
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("dictionary_100k", |b| {
        b.iter(|| dictionary_scanner(black_box(&terms)))
    });
    group.finish();
}

criterion_group!(benches, throughput, latency_4k, build);
criterion_main!(benches);
