//! Team policies: loading, diagnostics (pinned over a folder of broken files), decisions,
//! reload under concurrent use, and the `policy` CLI.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use privacy_router::policy::{
    Action, Basis, Diagnostics, PolicyHandle, PolicySet, Team, TeamResolver, TokenSource,
    json_schema,
};
use privacy_router::scan::builtin_detectors;

const GOOD: &str = "tests/data/policies/good";
const BROKEN: &str = "tests/data/policies/broken";
const FAILING: &str = "tests/data/policies/failing";
const EXAMPLES: &str = "examples/policies";

fn good() -> PolicySet {
    PolicySet::load_dir(GOOD).unwrap_or_else(|d| panic!("{d}"))
}

fn codes(d: &Diagnostics) -> Vec<&'static str> {
    d.iter().map(|d| d.code()).collect()
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pr-policy-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// Loading and diagnostics

#[test]
fn the_good_set_loads() {
    let set = good();
    assert_eq!(
        set.teams().collect::<Vec<_>>(),
        ["default", "research", "support"]
    );
    let support = set.team("support");
    assert_eq!(support.id().file(), "support.toml");
    assert!(support.id().content_hash().starts_with("sha256:"));
    assert_eq!(support.id().content_hash().len(), "sha256:".len() + 64);
    let target = support.target().expect("inherited from base");
    assert_eq!(target.base_url(), "http://llm.internal:8000/v1");
    assert_eq!(target.model_for("gpt-4o"), Some("llama-3.3-70b"));
    assert_eq!(target.model_for("o3"), Some("llama-3.1-8b"));
    assert_eq!(target.timeout(), std::time::Duration::from_secs(90));
    assert_eq!(
        target.token_source(),
        &TokenSource::Env("LOCAL_LLM_TOKEN".to_string())
    );
    // With a target, failures stay in-house unless the policy says otherwise.
    assert_eq!(support.on_error(), Action::RouteLocal);
    assert_eq!(support.on_unscannable(), Action::RouteLocal);
    assert_eq!(set.team("research").on_unscannable(), Action::Block);
    assert_eq!(support.default_action(), Action::Allow);
}

/// Every broken file in one directory, every problem in one run, pinned.
#[test]
fn broken_files_are_reported_all_at_once() {
    let diags = PolicySet::load_dir(BROKEN).expect_err("the broken set must not load");
    let all: BTreeSet<&str> = codes(&diags).into_iter().collect();
    for code in [
        "syntax",
        "unknown-key",
        "wrong-type",
        "missing-key",
        "unknown-category",
        "unknown-action",
        "action-not-allowed",
        "unknown-detector",
        "invalid-regex",
        "unknown-validator",
        "example-failed",
        "missing-dictionary",
        "bad-allow",
        "bad-url",
        "bad-timeout",
        "conflicting-keys",
        "unknown-base",
        "extends-cycle",
        "no-local-target",
        "duplicate-team",
        "out-of-range",
    ] {
        assert!(all.contains(code), "no `{code}` diagnostic in:\n{diags}");
    }
    for d in &diags {
        assert!(d.line().is_some() && d.col().is_some(), "{d}");
    }
    insta::assert_snapshot!(diags.to_string());
}

#[test]
fn a_set_without_default_team_is_an_error() {
    let err = PolicySet::from_sources([("payments.toml", "team = \"payments\"\n")]).unwrap_err();
    assert_eq!(codes(&err), ["no-default-team"]);
    assert_eq!(err.iter().next().unwrap().line(), None);
}

#[test]
fn a_broken_default_is_not_also_missing() {
    let err =
        PolicySet::from_sources([("default.toml", "extends = \"nope\"\nteam = \"default\"\n")])
            .unwrap_err();
    assert_eq!(codes(&err), ["unknown-base"]);
}

#[test]
fn positions_point_at_the_value() {
    let err = PolicySet::from_sources([(
        "default.toml",
        "team = \"default\"\n\n[[rules]]\nwhen = { category = \"pii\" }\naction = \"rout_local\"\n",
    )])
    .unwrap_err();
    let d = err.iter().next().unwrap();
    assert_eq!(
        (d.code(), d.line(), d.col()),
        ("unknown-action", Some(5), Some(10))
    );
    assert_eq!(d.path(), Path::new("default.toml"));
    assert_eq!(d.message(), "unknown action `rout_local`");
    assert!(d.rendered().ends_with("5 | action = \"rout_local\"\n  |          ^^^^^^^^^^^^ expected one of: allow, redact, route_local, block\n"));
}

#[test]
fn a_key_after_a_table_header_gets_a_hint() {
    // The classic TOML trap: `default` below `[[rules]]` belongs to the rule.
    let err = PolicySet::from_sources([(
        "default.toml",
        "team = \"default\"\n[[rules]]\nwhen = {}\naction = \"block\"\ndefault = \"allow\"\n",
    )])
    .unwrap_err();
    let d = err.iter().next().unwrap();
    assert_eq!(d.code(), "unknown-key");
    assert!(
        d.rendered().contains("`default` is a top-level key"),
        "{}",
        d.rendered()
    );
}

#[test]
fn route_local_needs_a_target_wherever_it_is_used() {
    let err = PolicySet::from_sources([
        ("base.toml", "default = \"route_local\"\n"),
        (
            "default.toml",
            "extends = \"base\"\nteam = \"default\"\non_error = \"route_local\"\n",
        ),
    ])
    .unwrap_err();
    let places: Vec<(String, Option<usize>)> = err
        .iter()
        .map(|d| (d.path().display().to_string(), d.line()))
        .collect();
    assert_eq!(codes(&err), ["no-local-target", "no-local-target"]);
    assert_eq!(
        places,
        [
            ("base.toml".to_string(), Some(1)),
            ("default.toml".to_string(), Some(3))
        ]
    );
}

#[test]
fn team_detectors_cannot_shadow_built_in_ones() {
    let Some(builtin) = builtin_detectors().unwrap().into_iter().next() else {
        return; // The built-in library is still being written.
    };
    let text = format!(
        "team = \"default\"\n[[detector]]\nid = \"{}\"\ncategory = \"pii\"\ndescription = \"x\"\nregex = 'x'\nkeywords = [\"x\"]\nconfidence = 0.5\n",
        builtin.id()
    );
    let err = PolicySet::from_sources([("default.toml", text)]).unwrap_err();
    assert_eq!(codes(&err), ["duplicate-detector"]);
}

#[test]
fn rules_naming_unknown_detectors_get_a_suggestion() {
    let err = PolicySet::from_sources([(
        "default.toml",
        r#"
team = "default"
[detectors]
categories = []
[[detector]]
id = "ticket-number"
category = "pii"
description = "Tickets"
regex = '\bTCK-[0-9]{6}\b'
keywords = ["tck-"]
confidence = 0.9
[[rules]]
when = { detector = ["ticket-numbr"] }
action = "block"
"#,
    )])
    .unwrap_err();
    let d = err.iter().next().unwrap();
    assert_eq!(d.code(), "unknown-detector");
    assert!(
        d.rendered().contains("did you mean `ticket-number`?"),
        "{}",
        d.rendered()
    );
}

#[test]
fn dictionaries_cannot_be_enabled_or_disabled() {
    let err = PolicySet::from_sources([(
        "default.toml",
        "team = \"default\"\n[detectors]\ndisable = [\"codes\"]\n\
         [[dictionaries]]\nname = \"codes\"\npath = \"examples/policies/terms/research-codenames.txt\"\n",
    )])
    .unwrap_err();
    let d = err.iter().next().unwrap();
    assert_eq!((d.code(), d.line()), ("unknown-detector", Some(3)));
    assert_eq!(d.message(), "`codes` is a dictionary, not a detector");
}

// ---------------------------------------------------------------------------------------
// Decisions

/// A one-team set with a team detector, and no built-ins, so that the tests depend on
/// nothing but their own text.
fn one_team(rules: &str) -> PolicySet {
    let text = format!(
        r#"
team = "default"
{rules}
[detectors]
categories = []
[[detector]]
id = "ticket"
category = "pii"
description = "Ticket numbers"
regex = '\bTCK-[0-9]{{6}}\b'
keywords = ["tck-"]
confidence = 0.9
[[detector]]
id = "deploy-token"
category = "secret"
description = "Deploy tokens"
regex = '\bdpl_[A-Za-z0-9]{{20}}\b'
keywords = ["dpl_"]
confidence = 0.9
[local]
base_url = "https://llm.internal/v1"
"#
    );
    PolicySet::from_sources([("default.toml", text)]).unwrap_or_else(|d| panic!("{d}"))
}

const TOKEN: &str = "dpl_Q7rT2mX9kL4pW8vN3sB6";

#[test]
fn the_most_restrictive_matching_rule_wins() {
    let set = one_team(
        r#"
[[rules]]
when = { category = "pii" }
action = "redact"
[[rules]]
when = { detector = "ticket", min_count = 2 }
action = "route_local"
[[rules]]
when = { category = "secret" }
action = "block"
"#,
    );
    let d = set.evaluate("default", "TCK-000001");
    assert_eq!((d.action(), d.basis()), (Action::Redact, Basis::Rules));
    assert!(d.target().is_none());

    let d = set.evaluate("default", "TCK-000001 and TCK-000002");
    assert_eq!(d.action(), Action::RouteLocal);
    assert_eq!(d.target().unwrap().base_url(), "https://llm.internal/v1");
    assert_eq!(d.matched_rules().len(), 2);
    assert_eq!(d.matched_rules()[1].origin(), "default.toml:7");
    assert_eq!(
        d.matched_rules()[1].condition(),
        "detector = \"ticket\", min_count = 2"
    );
    assert_eq!(d.reasons()[0].count(), 2);
    assert_eq!(d.reasons()[0].action(), Some(Action::RouteLocal));

    let d = set.evaluate("default", &format!("TCK-000001 {TOKEN}"));
    assert_eq!(d.action(), Action::Block);
    let reasons: Vec<(&str, &str, usize, Option<Action>)> = d
        .reasons()
        .iter()
        .map(|r| (r.detector(), r.category().as_str(), r.count(), r.action()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("deploy-token", "secret", 1, Some(Action::Block)),
            ("ticket", "pii", 1, Some(Action::Redact)),
        ]
    );
}

#[test]
fn without_findings_or_matching_rules_the_default_applies() {
    let set = one_team(
        "default = \"route_local\"\n[[rules]]\nwhen = { category = \"secret\" }\naction = \"block\"\n",
    );
    let d = set.evaluate("default", "nothing to see");
    assert_eq!(
        (d.action(), d.basis()),
        (Action::RouteLocal, Basis::Default)
    );
    assert!(d.reasons().is_empty());
    // A finding that no rule selects also falls to the default.
    let d = set.evaluate("default", "TCK-000001");
    assert_eq!(
        (d.action(), d.basis()),
        (Action::RouteLocal, Basis::Default)
    );
    assert_eq!(d.reasons()[0].action(), None);
}

#[test]
fn an_empty_condition_selects_every_finding() {
    let set = one_team("[[rules]]\nwhen = { min_count = 2 }\naction = \"route_local\"\n");
    assert_eq!(
        set.evaluate("default", "TCK-000001").action(),
        Action::Allow
    );
    let d = set.evaluate("default", &format!("TCK-000001 {TOKEN}"));
    assert_eq!(d.action(), Action::RouteLocal);
    assert_eq!(d.matched_rules()[0].condition(), "min_count = 2");
    assert_eq!(d.matched_rules()[0].count(), 2);
}

#[test]
fn on_error_and_on_unscannable() {
    let set = one_team("on_unscannable = \"block\"\n");
    let team = set.default_team();
    let d = team.decide_error();
    assert_eq!((d.action(), d.basis()), (Action::RouteLocal, Basis::Error));
    assert!(d.target().is_some());
    let d = team.decide_with_unscannable(&[]);
    assert_eq!((d.action(), d.basis()), (Action::Block, Basis::Unscannable));

    // Without a target, failing closed means blocking.
    let bare = PolicySet::from_sources([("default.toml", "team = \"default\"\n")]).unwrap();
    assert_eq!(bare.default_team().on_error(), Action::Block);
    assert_eq!(bare.default_team().on_unscannable(), Action::Block);
}

#[test]
fn the_allowlist_drops_findings_by_value() {
    let set = one_team(
        r#"
[[allow]]
literal = "TCK-000000"
[[allow]]
regex = 'TCK-9[0-9]{5}'
[[rules]]
when = { detector = "ticket" }
action = "block"
"#,
    );
    assert_eq!(
        set.evaluate("default", "TCK-000000 TCK-912345").action(),
        Action::Allow
    );
    // Regexes match whole values only.
    assert_eq!(
        set.evaluate("default", "TCK-123456").action(),
        Action::Block
    );
    let team = set.default_team();
    let text = "TCK-000000 TCK-123456";
    assert_eq!(team.scanner().scan(text).len(), 2);
    assert_eq!(team.scan(text).len(), 1);
}

#[test]
fn unknown_and_missing_teams_get_the_default_policy() {
    let set = good();
    assert_eq!(set.team("no-such-team").name(), "default");
    assert!(set.get("no-such-team").is_none());
    let resolver = TeamResolver::new().with_header("X-Tenant-Team");
    assert_eq!(resolver.header(), "x-tenant-team");
    let name = resolver.resolve(None, None).unwrap_or("");
    assert_eq!(set.team(name).name(), "default");
    let app = Team::new("research");
    let name = resolver.resolve(Some(&app), Some(b"support")).unwrap();
    assert_eq!(
        set.team(name).name(),
        "research",
        "the extension wins over the header"
    );
    assert_eq!(resolver.resolve(None, Some(b"Support\xff")), None);
}

#[test]
fn decisions_and_policies_never_show_values() {
    let set = good();
    let secret_text =
        "ORD-12345678 ORD-12345679 ORD-12345680 dpl_Q7rT2mX9kL4pW8vN3sB6 Project Atlas";
    for team in ["support", "research", "default"] {
        let d = set.evaluate(team, secret_text);
        let shown = format!("{d:?} {d} {:?} {:?}", set.team(team), set);
        for value in ["12345678", "Q7rT2mX9", "Atlas", "ORD-00000000", "llama"] {
            assert!(!shown.contains(value), "{value} in {shown}");
        }
    }
}

#[test]
fn the_content_hash_covers_bases_and_dictionaries() {
    let dir = TempDir::new("hash");
    dir.write(
        "base.toml",
        "[[rules]]\nwhen = { category = \"confidential\" }\naction = \"block\"\n",
    );
    dir.write(
        "default.toml",
        "extends = \"base\"\nteam = \"default\"\n[[dictionaries]]\nname = \"codes\"\npath = \"terms/codes.txt\"\n",
    );
    dir.write("terms/codes.txt", "Bluefin\n");
    let first = PolicySet::load_dir(&dir.0).unwrap();
    let hash = |s: &PolicySet| s.default_team().id().content_hash().to_string();
    assert_eq!(
        hash(&first),
        hash(&PolicySet::load_dir(&dir.0).unwrap()),
        "stable"
    );
    dir.write("terms/codes.txt", "Bluefin\nNightjar\n");
    let second = PolicySet::load_dir(&dir.0).unwrap();
    assert_ne!(hash(&first), hash(&second), "a dictionary change");
    assert_eq!(
        second.evaluate("x", "about nightjar").action(),
        Action::Block
    );
    dir.write(
        "base.toml",
        "# comment\n[[rules]]\nwhen = { category = \"confidential\" }\naction = \"block\"\n",
    );
    let third = PolicySet::load_dir(&dir.0).unwrap();
    assert_ne!(hash(&second), hash(&third), "a base change");
    assert_ne!(second.digest(), third.digest());
}

#[test]
fn bases_alone_are_not_teams_and_children_override_them() {
    let set = PolicySet::from_sources([
        ("base.toml", "default = \"redact\"\n[local]\nbase_url = \"http://a.internal\"\n"),
        ("default.toml", "extends = \"base\"\nteam = \"default\"\n"),
        (
            "strict.toml",
            "extends = \"base\"\nteam = \"strict\"\ndefault = \"block\"\n[local]\nbase_url = \"http://b.internal:9000\"\n",
        ),
    ])
    .unwrap();
    assert_eq!(set.teams().collect::<Vec<_>>(), ["default", "strict"]);
    assert_eq!(set.team("default").default_action(), Action::Redact);
    assert_eq!(set.team("strict").default_action(), Action::Block);
    assert_eq!(
        set.team("strict").target().unwrap().base_url(),
        "http://b.internal:9000"
    );
}

// ---------------------------------------------------------------------------------------
// Reload

const VERSION_A: &str = "team = \"default\"\n[detectors]\ncategories = []\n[[dictionaries]]\nname = \"codes\"\npath = \"codes.txt\"\n[[rules]]\nwhen = { category = \"confidential\" }\naction = \"redact\"\n";
const VERSION_B: &str = "team = \"default\"\n[detectors]\ncategories = []\n[[dictionaries]]\nname = \"codes\"\npath = \"codes.txt\"\n[[rules]]\nwhen = { category = \"confidential\" }\naction = \"block\"\n";

/// Readers decide while the directory flips between two versions (and, in between, a
/// broken one). Every decision is made, each request sees one version only (both of its
/// decisions carry the same hash, and the action that version gives), and a broken
/// directory leaves the last good set in force.
#[test]
fn reload_under_concurrent_decisions_loses_nothing_and_mixes_nothing() {
    let dir = TempDir::new("reload");
    dir.write("codes.txt", "Bluefin\n");
    dir.write("default.toml", VERSION_A);
    let handle = Arc::new(PolicyHandle::load(&dir.0).unwrap());
    let a = handle.current();
    dir.write("default.toml", VERSION_B);
    let b = handle.reload().unwrap();
    let expected = |hash: &str| {
        if hash == a.default_team().id().content_hash() {
            Action::Redact
        } else if hash == b.default_team().id().content_hash() {
            Action::Block
        } else {
            panic!("a decision from an unknown version")
        }
    };

    const READERS: usize = 4;
    const REQUESTS: usize = 400;
    let done = Arc::new(AtomicBool::new(false));
    let decided = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let handle = Arc::clone(&handle);
            let decided = Arc::clone(&decided);
            std::thread::spawn(move || {
                let mut seen = BTreeSet::new();
                for _ in 0..REQUESTS {
                    let set = handle.current();
                    let first = set.evaluate("default", "ask Bluefin");
                    std::thread::yield_now();
                    let second = set.evaluate("other", "Bluefin again");
                    let hash = first.policy().content_hash();
                    assert_eq!(
                        hash,
                        second.policy().content_hash(),
                        "one request, one version"
                    );
                    assert_eq!(first.action(), second.action());
                    seen.insert((hash.to_string(), first.action()));
                    decided.fetch_add(2, Ordering::Relaxed);
                }
                seen
            })
        })
        .collect();
    let writer = {
        let handle = Arc::clone(&handle);
        let done = Arc::clone(&done);
        let path = dir.0.join("default.toml");
        std::thread::spawn(move || {
            let mut reloads = 0;
            let mut i = 0;
            while !done.load(Ordering::Relaxed) && i < 200 {
                let before = handle.current().digest().to_string();
                std::fs::write(&path, "team = \"default\"\n[[rules]\n").unwrap();
                let err = handle.reload().expect_err("a broken file does not load");
                assert_eq!(err.iter().next().unwrap().code(), "syntax");
                assert_eq!(handle.current().digest(), before, "the last good set stays");
                std::fs::write(&path, if i % 2 == 0 { VERSION_A } else { VERSION_B }).unwrap();
                handle.reload().unwrap();
                reloads += 1;
                i += 1;
            }
            reloads
        })
    };
    let mut seen = BTreeSet::new();
    for r in readers {
        seen.extend(r.join().expect("a reader panicked"));
    }
    done.store(true, Ordering::Relaxed);
    let reloads = writer.join().expect("the writer panicked");
    assert!(reloads > 0);
    assert_eq!(
        decided.load(Ordering::Relaxed),
        READERS * REQUESTS * 2,
        "no request lost"
    );
    for (hash, action) in &seen {
        assert_eq!(
            *action,
            expected(hash),
            "a decision that belongs to another version"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The CLI

fn cli(args: &[&str], stdin: &str) -> Output {
    crate::cli::run(args, stdin)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Content hashes change with every edit of the test data; the snapshots pin the rest.
fn redact_hashes(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("sha256:") {
        out.push_str(&rest[..i + 7]);
        out.push('…');
        rest = rest[i + 7..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    out.push_str(rest);
    out
}

#[test]
fn cli_check_ok_and_broken() {
    let o = cli(&["policy", "check", GOOD], "");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    insta::assert_snapshot!("check_good", redact_hashes(&text(&o.stdout)));

    let o = cli(&["policy", "check", BROKEN], "");
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("error[extends-cycle]"), "{err}");
    assert!(
        err.trim_end().ends_with("problems in the policy set"),
        "{err}"
    );
    assert_eq!(
        err.trim_end(),
        PolicySet::load_dir(BROKEN).unwrap_err().to_string()
    );

    let o = cli(&["policy", "check", "/no/such/dir"], "");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        "privacy-router: /no/such/dir: not a directory\n"
    );
}

#[test]
fn cli_test_reports_pass_and_fail() {
    let o = cli(&["policy", "test", GOOD], "");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(text(&o.stdout).ends_with("PASS: 7/7\n"));

    let o = cli(&["policy", "test", FAILING], "");
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    insta::assert_snapshot!("test_failing", out);
    assert!(!out.contains("12345678"), "no values in the report");
}

#[test]
fn cli_test_rejects_bad_test_files() {
    let dir = TempDir::new("badtests");
    dir.write("default.toml", "team = \"default\"\n");
    dir.write("tests/a.toml", "[[case]]\nname = \"x\"\nteam = \"default\"\nprompt = \"hi\"\nexpect = \"allow\"\nexpected = 1\n");
    let o = cli(&["policy", "test", dir.0.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("a.toml:6:1: unknown field `expected`"),
        "{err}"
    );
}

#[test]
fn cli_explain_masks_values() {
    let prompt = "Merge ORD-12345678, ORD-12345679\nand ask about dpl_Q7rT2mX9kL4pW8vN3sB6\n";
    let o = cli(
        &["policy", "explain", GOOD, "--team", "support", "-"],
        prompt,
    );
    assert_eq!(o.status.code(), Some(1));
    let out = redact_hashes(&text(&o.stdout));
    insta::assert_snapshot!("explain_support", out);
    assert!(!out.contains("12345678") && !out.contains("Q7rT2mX9"));

    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"notes for Bluefin"}]}"#;
    let o = cli(
        &["policy", "explain", GOOD, "--team", "research", "--body"],
        body,
    );
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!("explain_body", redact_hashes(&text(&o.stdout)));

    let o = cli(
        &["policy", "explain", GOOD, "--team", "nobody"],
        "Summarise the returns policy.",
    );
    assert_eq!(o.status.code(), Some(0), "allow exits 0");
    let out = text(&o.stdout);
    assert!(
        out.starts_with("team      default (no policy for `nobody`: the default team's)\n"),
        "{out}"
    );
    assert!(
        out.ends_with("decision  allow (`default`: no rule matched)\n"),
        "{out}"
    );
}

#[test]
fn cli_schema_is_json_schema() {
    let o = cli(&["policy", "schema"], "");
    assert_eq!(o.status.code(), Some(0));
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(printed, json_schema());
    let props = printed["properties"].as_object().unwrap();
    for key in [
        "extends",
        "team",
        "detectors",
        "detector",
        "dictionaries",
        "allow",
        "rules",
        "default",
        "local",
        "on_error",
        "on_unscannable",
    ] {
        assert!(props.contains_key(key), "{key}");
    }
}

#[test]
fn cli_scan_with_a_policy_uses_its_detectors() {
    let o = cli(
        &["scan", "--policy", &format!("{GOOD}/research.toml")],
        "ORD-12345678 about project atlas\n",
    );
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(out.contains("order-id (pii"), "{out}");
    assert!(out.contains("codenames (confidential"), "{out}");

    let o = cli(&["scan", "--policy", &format!("{GOOD}/base.toml")], "x");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("defines no team"));
    let o = cli(
        &["scan", "--policy", &format!("{BROKEN}/default.toml")],
        "x",
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(text(&o.stderr).lines().count(), 1);
}

/// The shipped examples load and their own test cases pass (what CI runs as
/// `privacy-router policy test examples/policies`).
#[test]
fn the_examples_pass_their_tests() {
    let ids: Vec<String> = builtin_detectors()
        .unwrap()
        .iter()
        .map(|d| d.id().to_string())
        .collect();
    let needed = [
        "email",
        "payment-card",
        "iban",
        "aws-access-key-id",
        "github-pat-classic",
    ];
    if let Some(missing) = needed.iter().find(|id| !ids.iter().any(|i| i == *id)) {
        // The built-in library is being written in parallel; the examples rely on it.
        eprintln!("skipped: built-in detector `{missing}` does not exist yet");
        return;
    }
    let o = cli(&["policy", "test", EXAMPLES], "");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// Pieces of policy files, valid and not, for the property below.
const PIECES: &[&str] = &[
    "team = \"default\"\n",
    "team = \"other\"\n",
    "extends = \"default\"\n",
    "extends = \"nope\"\n",
    "default = \"route_local\"\n",
    "on_error = \"allow\"\n",
    "[detectors]\n",
    "categories = [\"pii\", \"nope\"]\n",
    "enable = [\"x\"]\n",
    "min_confidence = 2\n",
    "[[rules]]\n",
    "when = { category = \"pii\", min_count = 0 }\n",
    "when = 3\n",
    "action = \"block\"\n",
    "action = \"nope\"\n",
    "[local]\n",
    "base_url = \"http://[::1\"\n",
    "timeout = \"0s\"\n",
    "[[detector]]\n",
    "id = \"x\"\ncategory = \"pii\"\ndescription = \"d\"\nregex = 'x+'\nconfidence = 0.5\n",
    "regex = '('\n",
    "must_match = [\"y\"]\n",
    "[[allow]]\n",
    "regex = '['\n",
    "[[dictionaries]]\nname = \"d\"\npath = \"/no/such/file\"\n",
    "\"",
    "=",
    "é\t",
    "\n",
    "[",
    "{ ",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Whatever a file holds, loading answers with a set or with diagnostics that have
    /// positions inside the file; it never panics.
    #[test]
    fn loading_never_panics(picks in proptest::collection::vec(0..PIECES.len(), 0..24)) {
        let text: String = picks.iter().map(|&i| PIECES[i]).collect();
        let lines = text.matches('\n').count() + 1;
        if let Err(diags) = PolicySet::from_sources([("default.toml", text.as_str())]) {
            for d in &diags {
                proptest::prop_assert!(d.line().is_none_or(|l| l <= lines), "{}", d);
                proptest::prop_assert!(!d.rendered().is_empty());
            }
        }
    }
}

/// The complete example in docs/policy.md is a policy set that loads.
#[test]
fn the_documented_example_loads() {
    let doc = std::fs::read_to_string("docs/policy.md").unwrap();
    let mut files = Vec::new();
    for block in doc.split("```toml\n").skip(1) {
        let block = &block[..block.find("```").unwrap()];
        if let Some(name) = block.lines().next().and_then(|l| l.strip_prefix("# "))
            && name.ends_with(".toml")
            && !name.contains(' ')
        {
            files.push((name.to_string(), block.to_string()));
        }
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "base.toml",
            "default.toml",
            "support.toml",
            "payments.toml",
            "research.toml"
        ]
    );
    // Dictionary paths are relative to the current directory here.
    for (_, text) in &mut files {
        *text = text.replace(
            "terms/research-codenames.txt",
            "examples/policies/terms/research-codenames.txt",
        );
    }
    let ids: Vec<String> = builtin_detectors()
        .unwrap()
        .iter()
        .map(|d| d.id().to_string())
        .collect();
    if !ids.iter().any(|i| i == "payment-card") {
        eprintln!("skipped: built-in detector `payment-card` does not exist yet");
        return;
    }
    let set = PolicySet::from_sources(files).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(set.teams().count(), 4);
}

// ---------------------------------------------------------------------------------------
// Measurement (not a test of time: it prints what docs/policy.md reports)

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Loads 50 team policies that extend one base with the full built-in set, and prints
/// load time and resident memory. Run alone, in release mode:
///
/// ```text
/// cargo test --release --test it -- --ignored --nocapture measure_fifty_teams
/// ```
#[test]
#[ignore = "a measurement: run it alone, in release mode"]
fn measure_fifty_teams() {
    let dir = TempDir::new("fifty");
    dir.write(
        "base.toml",
        "on_error = \"route_local\"\n[detectors]\ncategories = [\"pii\", \"financial\", \"secret\", \"network\"]\n\
         [[rules]]\nwhen = { category = \"secret\" }\naction = \"block\"\n\
         [[rules]]\nwhen = { category = [\"pii\", \"financial\", \"confidential\"] }\naction = \"route_local\"\n\
         [local]\nbase_url = \"http://llm.internal:8000/v1\"\ntoken_env = \"LOCAL_LLM_TOKEN\"\nmodels = { \"*\" = \"llama-3.1-8b\" }\n",
    );
    for i in 0..50 {
        let team = if i == 0 {
            "default".to_string()
        } else {
            format!("team-{i:02}")
        };
        let terms: String = (0..200).map(|t| format!("Codename{i}x{t}\n")).collect();
        dir.write(&format!("terms/{team}.txt"), &terms);
        dir.write(
            &format!("{team}.toml"),
            &format!(
                "extends = \"base\"\nteam = \"{team}\"\n\
                 [[dictionaries]]\nname = \"codenames\"\npath = \"terms/{team}.txt\"\n\
                 [[allow]]\nliteral = \"help@team{i}.acme-corp.com\"\n\
                 [[detector]]\nid = \"ticket-{i}\"\ncategory = \"pii\"\ndescription = \"Team tickets\"\n\
                 regex = '\\bT{i}-[0-9]{{6}}\\b'\nkeywords = [\"t{i}-\"]\nconfidence = 0.9\n\
                 must_match = [\"T{i}-123456\"]\nmust_not_match = [\"T{i}-12\"]\n"
            ),
        );
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let mib = |kib: u64| kib as f64 / 1024.0;

    let rss_start = rss_kib("VmRSS:");
    let t = std::time::Instant::now();
    let detectors = builtin_detectors().unwrap().len();
    let builtin_time = t.elapsed();
    let rss_builtin = rss_kib("VmRSS:");

    // One default scanner on its own: what each team pays for its own automata.
    let t = std::time::Instant::now();
    for _ in 0..10 {
        std::hint::black_box(privacy_router::scan::Scanner::builder().build().unwrap());
    }
    let scanner_alone = t.elapsed() / 10;
    let rss_before_load = rss_kib("VmRSS:");

    let t = std::time::Instant::now();
    let set = PolicySet::load_dir(&dir.0).unwrap_or_else(|d| panic!("{d}"));
    let first = t.elapsed();
    let rss_first = rss_kib("VmRSS:");

    // A reload: the new set is built while the old one is still in force.
    let t = std::time::Instant::now();
    let again = PolicySet::load_dir(&dir.0).unwrap_or_else(|d| panic!("{d}"));
    let second = t.elapsed();
    let rss_second = rss_kib("VmRSS:");

    let prompt =
        "Ask jane.doe@acme-mail.de about card 4539 1488 0343 6467, host db1.corp, Codename3x7";
    let t = std::time::Instant::now();
    for team in set.teams().collect::<Vec<_>>() {
        std::hint::black_box(set.evaluate(team, prompt));
    }
    let decide = t.elapsed();
    let rss_scanned = rss_kib("VmRSS:");

    // A heavier warm-up: 64 KiB of varied text through every team, so that each team's
    // lazy DFAs hold the states real traffic would give them.
    let mut long = String::new();
    let mut i = 0u64;
    while long.len() < 64 << 10 {
        i += 1;
        long.push_str(&format!(
            "Ticket {i}: user{i}@mail{}.example-shop.de paid {}.{:02} EUR from +49 30 {:07}; \
             ref {:x}, host build{}.eu.corp, café naïve résumé {i}. ",
            i % 97,
            i * 37 % 1000,
            i % 100,
            i * 7919 % 10_000_000,
            i * 2_654_435_761,
            i % 13
        ));
    }
    let t = std::time::Instant::now();
    for team in set.teams().collect::<Vec<_>>() {
        std::hint::black_box(set.evaluate(team, &long));
    }
    let heavy = t.elapsed();
    let rss_heavy = rss_kib("VmRSS:");

    println!(
        "built-in detectors: {detectors}; teams: {}",
        set.teams().count()
    );
    println!("process RSS at start: {:.0} MiB", mib(rss_start));
    println!(
        "compiling the built-in library (once per process): {:.0} ms, RSS +{:.1} MiB",
        ms(builtin_time),
        mib(rss_builtin - rss_start)
    );
    println!(
        "one default scanner on its own: {:.1} ms",
        ms(scanner_alone)
    );
    println!(
        "loading the 50 teams: {:.0} ms, RSS +{:.1} MiB",
        ms(first),
        mib(rss_first.saturating_sub(rss_before_load))
    );
    println!(
        "reloading them, the first set still alive: {:.0} ms, RSS +{:.1} MiB",
        ms(second),
        mib(rss_second.saturating_sub(rss_first))
    );
    println!(
        "one short prompt through each team: {:.1} ms in all, RSS +{:.1} MiB",
        ms(decide),
        mib(rss_scanned.saturating_sub(rss_second))
    );
    println!(
        "64 KiB of varied text through each team: {:.0} ms in all, RSS +{:.1} MiB",
        ms(heavy),
        mib(rss_heavy.saturating_sub(rss_scanned))
    );
    println!("peak RSS: {:.0} MiB", mib(rss_kib("VmHWM:")));
    drop(again);
}
