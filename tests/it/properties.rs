//! Invariants that hold for any input (proptest).

use privacy_router::scan::{Dictionary, Scanner};
use proptest::prelude::*;
use std::sync::OnceLock;

fn scanner() -> &'static Scanner {
    static S: OnceLock<Scanner> = OnceLock::new();
    S.get_or_init(|| {
        Scanner::builder()
            .all_builtin(true)
            .dictionary(Dictionary::from_terms(
                "codenames",
                ["Bluefin", "Project Atlas"],
            ))
            .build()
            .unwrap()
    })
}

/// Characters that exercise every folding rule: ASCII, escapes, fullwidth, format
/// characters, non-ASCII digits, multi-byte letters.
fn tricky_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        "[a-z0-9@. :/_-]{0,12}",
        Just("\\u0040".to_string()),
        Just("%40".to_string()),
        Just("&#64;".to_string()),
        Just("&amp;".to_string()),
        Just("\u{200B}".to_string()),
        Just("\u{FEFF}".to_string()),
        Just("４".to_string()),
        Just("٣".to_string()),
        Just("é".to_string()),
        Just("東京".to_string()),
        Just("😀".to_string()),
        Just("\\ud83d\\ude00".to_string()),
        Just("jane.doe@acme-mail.de".to_string()),
        Just("4539 1488 0343 6467".to_string()),
    ];
    prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn spans_are_in_bounds_on_char_boundaries_and_sorted(text in tricky_text()) {
        let findings = scanner().scan(&text);
        for f in &findings {
            prop_assert!(f.start() < f.end());
            prop_assert!(f.end() <= text.len());
            prop_assert!(text.is_char_boundary(f.start()));
            prop_assert!(text.is_char_boundary(f.end()));
        }
        prop_assert!(findings.windows(2).all(|w| w[0].start() <= w[1].start()));
    }

    #[test]
    fn scanning_is_deterministic(text in tricky_text()) {
        prop_assert_eq!(scanner().scan(&text), scanner().scan(&text));
    }

    /// An email hidden by folding (zero-width characters, fullwidth letters, escapes) is
    /// found, and its span maps back to exactly the bytes that were inserted.
    #[test]
    fn folded_values_map_back_exactly(
        prefix in "[a-z ]{0,20}",
        suffix in "[a-z ]{0,20}",
        disguise in 0usize..5,
    ) {
        let value = match disguise {
            0 => "jane.doe@acme-mail.de".to_string(),
            1 => "jane\u{200B}.doe@acme-mail.de".to_string(),
            2 => "jane.doe\\u0040acme-mail.de".to_string(),
            3 => "jane.doe%40acme-mail.de".to_string(),
            _ => "ｊａｎｅ.doe@acme-mail.de".to_string(),
        };
        let text = format!("{prefix} {value} {suffix}");
        let at = prefix.len() + 1;
        let found = scanner().scan(&text);
        let email = found.iter().find(|f| f.detector() == "email");
        prop_assert!(email.is_some(), "no email found in {:?}", text);
        prop_assert_eq!(email.unwrap().span(), at..at + value.len());
    }
}
