//! Percentiles of the scan latency for a 4 KB prompt, which criterion does not report.
//!
//! ```text
//! cargo bench --bench latency
//! ```
//!
//! Scans 20 different realistic 4 KB prompts (from the test corpus) 1,000 times each,
//! timing every scan, and prints p50, p90, p99 and p99.9 for the default scanner and for
//! one with a 10,000-term dictionary.

use std::hint::black_box;
use std::time::{Duration, Instant};

use privacy_router::scan::{Dictionary, Scanner};

#[allow(dead_code)]
#[path = "../tests/it/corpus.rs"]
mod corpus;

fn percentiles(name: &str, scanner: &Scanner, prompts: &[String]) {
    // Warm the lazy DFAs the way a running service is warm.
    for p in prompts {
        black_box(scanner.scan(p));
    }
    let mut times: Vec<Duration> = Vec::with_capacity(prompts.len() * 1000);
    for _ in 0..1000 {
        for p in prompts {
            let start = Instant::now();
            black_box(scanner.scan(black_box(p)));
            times.push(start.elapsed());
        }
    }
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{name:<24} p50 {:>7.1?}  p90 {:>7.1?}  p99 {:>7.1?}  p99.9 {:>7.1?}  ({} scans)",
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        times.len()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and then this
    // binary only checks that it runs.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let prompts: Vec<String> = (0..20).map(|i| corpus::prompt_4k(0x4B_0000 + i)).collect();
    let mean = prompts.iter().map(String::len).sum::<usize>() / prompts.len();
    println!("4 KB prompts: {} of {mean} bytes on average", prompts.len());
    let default = Scanner::builder().build().expect("default scanner");
    percentiles("default", &default, &prompts);
    let terms = corpus::terms(10_000);
    let dict = Scanner::builder()
        .dictionary(Dictionary::from_terms("codenames", &terms))
        .build()
        .expect("dictionary scanner");
    percentiles("with 10,000 terms", &dict, &prompts);
}
