//! `privacy-router scan`: output formats and exit statuses, pinned with snapshots.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs the CLI with `args`, feeding `stdin`. Shared by the CLI tests of every area.
pub(crate) fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_privacy-router"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start privacy-router");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

const TICKET: &str = "Customer jane.doe@acme-mail.de paid with 4539 1488 0343 6467.\n\
                      Deploy key: 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\n";

#[test]
fn human_output_masks_values() {
    let o = run(&["scan"], TICKET);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    insta::assert_snapshot!(out);
    assert!(!out.contains("jane.doe"));
    assert!(!out.contains("0343"));
}

#[test]
fn show_values_prints_them() {
    let o = run(&["scan", "--show-values"], TICKET);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("jane.doe@acme-mail.de"));
}

#[test]
fn clean_text_exits_zero() {
    let o = run(
        &["scan"],
        "Summarise the quarterly roadmap in three bullet points.\n",
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "");
}

#[test]
fn jsonl_gives_one_line_per_input_line_and_reports_bad_lines() {
    let input = concat!(
        "{\"id\":1,\"text\":\"mail jane.doe@acme-mail.de now\"}\n",
        "not json at all\n",
        "{\"text\":42}\n",
        "{\"text\":\"nothing here\"}\n",
        "{\"text\":\"fullwidth ４５３９ １４８８ ０３４３ ６４６７\"}\n",
    );
    let o = run(&["scan", "--jsonl", "-"], input);
    assert_eq!(
        o.status.code(),
        Some(2),
        "bad lines make the run exit 2 at the end"
    );
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 5);
    insta::assert_snapshot!(out);
    assert!(!out.contains("jane.doe"));
}

#[test]
fn jsonl_offsets_are_bytes_into_text() {
    let o = run(
        &["scan", "--jsonl"],
        "{\"text\":\"é jane.doe@acme-mail.de\"}\n",
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let f = &v["findings"][0];
    assert_eq!(f["detector"], "email");
    assert_eq!(f["start"], 3);
    assert_eq!(f["end"], 24);
}

#[test]
fn terms_files_add_dictionaries() {
    let dir = std::env::temp_dir().join(format!("pr-cli-terms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let terms = dir.join("codenames.txt");
    std::fs::write(&terms, "# codenames\nBluefin\nProject Atlas\n").unwrap();
    let o = run(
        &["scan", "--terms", terms.to_str().unwrap()],
        "Status of project atlas and Bluefins?\n",
    );
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("codenames (confidential"));
}

#[test]
fn errors_are_one_line_and_exit_two() {
    let o = run(&["scan", "/no/such/file"], "");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("privacy-router: /no/such/file: cannot read"),
        "{err}"
    );

    let o = run(&["scan", "--enable", "no-such-detector"], "x");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(
        err.trim(),
        "privacy-router: unknown detector id `no-such-detector`"
    );
}
