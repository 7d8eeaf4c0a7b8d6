//! The quickstart: scan a handful of prompts with the built-in detectors and a small
//! codename dictionary, and show what would have left the company.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Nothing here needs setup or a network: the detectors are embedded in the crate.
//! Values are masked in the output; the spans point into each prompt.

use privacy_router::scan::{Dictionary, Scanner};

const PROMPTS: [(&str, &str); 5] = [
    (
        "clean",
        "Summarise our Q3 roadmap in three bullet points for the all-hands.",
    ),
    (
        "email",
        "Draft a polite reply to jane.doe@acme-mail.de about her delayed refund.",
    ),
    (
        "aws key",
        "Why does boto3 reject AKIAZ7Q4M2N5P3R6T2VX with SignatureDoesNotMatch?",
    ),
    (
        "card",
        "Customer says card 4539 1488 0343 6467 was charged twice, write an apology.",
    ),
    (
        "codename",
        "Write release notes for Project Bluefin's beta, keep it under 200 words.",
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let codenames = Dictionary::parse(
        "codenames",
        "# internal codenames\nProject Bluefin\nAtlas\n",
    );
    let scanner = Scanner::builder().dictionary(codenames).build()?;
    println!(
        "privacy-router quickstart: {} built-in detectors + 1 dictionary\n",
        scanner.detectors().count()
    );
    for (label, prompt) in PROMPTS {
        let findings = scanner.scan(prompt);
        if findings.is_empty() {
            println!("[{label}] clean: may go to the external provider");
            continue;
        }
        println!("[{label}] must stay in-house:");
        for f in &findings {
            let value = &prompt[f.span()];
            let masked: String = value.chars().take(2).chain("…".chars()).collect();
            println!(
                "    {:<22} {:<12} bytes {:>3}..{:<3} confidence {:.2}  {masked}",
                f.detector(),
                f.category().as_str(),
                f.start(),
                f.end(),
                f.confidence()
            );
        }
    }
    Ok(())
}
