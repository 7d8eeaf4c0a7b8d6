//! Every built-in detector's own examples: each `must_match` text gives a finding of that
//! detector, each `must_not_match` text gives none (patterns/README.md).

use privacy_router::scan::{Scanner, builtin_detectors};

#[test]
fn every_detector_has_examples_and_they_hold() {
    let detectors = builtin_detectors().expect("built-in patterns compile");
    let mut failures = Vec::new();
    for d in &detectors {
        if d.must_match().len() < 2 || d.must_not_match().len() < 2 {
            failures.push(format!(
                "{}: needs at least two examples of each kind",
                d.id()
            ));
        }
        // One scanner per detector: examples test the detector itself, not how its
        // findings compete with other detectors' in overlap resolution.
        let scanner = Scanner::builder()
            .only([d.id()])
            .build()
            .expect("single-detector scanner");
        for text in d.must_match() {
            if !scanner.scan(text).iter().any(|f| f.detector() == d.id()) {
                failures.push(format!("{}: must match but did not: {text:?}", d.id()));
            }
        }
        for text in d.must_not_match() {
            if let Some(f) = scanner.scan(text).iter().find(|f| f.detector() == d.id()) {
                failures.push(format!(
                    "{}: must not match but found {:?} in {text:?}",
                    d.id(),
                    &text[f.span()]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} example failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn ids_are_unique_and_the_library_is_complete() {
    let detectors = builtin_detectors().unwrap();
    let mut ids: Vec<&str> = detectors.iter().map(|d| d.id()).collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate detector ids");
    let secrets = detectors
        .iter()
        .filter(|d| d.category() == privacy_router::scan::Category::Secret)
        .count();
    assert!(secrets >= 100, "only {secrets} secret detectors");
}
