//! The audit log: records written before forwarding, the hash chain and `verify`, restarts
//! after a crash, rotation, fail-closed sinks, and the review CLI. Real files in a
//! temporary directory; the external provider and the self-hosted model are real servers
//! on 127.0.0.1 where what they receive matters.

use std::convert::Infallible;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use privacy_router::audit::{
    AuditError, Auditor, CheckpointPublicKey, Checkpoints, FileSink, FingerprintKey, MemorySink,
    Record, Recovery, SealedRecord, Sink, ViolationKind, expand_paths, verify_files,
    verify_files_with,
};
use privacy_router::middleware::{PrivacyRouterLayer, RequestBody};
use privacy_router::policy::PolicySet;
use serde_json::json;
use tower::{Layer, ServiceExt};

use crate::upstream::{Upstream, client};

const EMAIL: &str = "jane.doe@acme-mail.de";
const KEY: &[u8] = b"audit-test-key-0123456789abcdef";

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pr-audit-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn key() -> FingerprintKey {
    FingerprintKey::from_bytes(KEY.to_vec()).unwrap()
}

/// Policies: `default` routes PII to `local` (or has no target), `strict` blocks on
/// error.
fn policies(local: Option<&str>) -> Arc<PolicySet> {
    let local_table = local.map_or(String::new(), |url| {
        format!(
            "[local]\nbase_url = \"{url}/v1\"\napi = \"openai\"\nmodels = {{ \"*\" = \"llama-3.1-8b\" }}\n"
        )
    });
    let on_error = if local.is_some() {
        "route_local"
    } else {
        "block"
    };
    let default = format!(
        "team = \"default\"\ndefault = \"allow\"\non_error = \"{on_error}\"\n\n[[rules]]\nwhen = {{ category = \"pii\" }}\naction = \"{}\"\n\n{local_table}",
        if local.is_some() {
            "route_local"
        } else {
            "block"
        }
    );
    let strict = "team = \"strict\"\non_error = \"block\"\n";
    Arc::new(
        PolicySet::from_sources([("default.toml", default.as_str()), ("strict.toml", strict)])
            .expect("test policies load"),
    )
}

fn chat(url: &str, team: &str, prompt: &str) -> Request<Full<Bytes>> {
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]});
    Request::post(format!("{url}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-team", team)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// An in-process inner service that answers `{}` and counts the requests that reach it.
type Inner = tower::util::BoxCloneService<
    Request<RequestBody<Full<Bytes>>>,
    Response<Full<Bytes>>,
    Infallible,
>;

fn counting_inner() -> (Inner, Arc<AtomicUsize>) {
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&reached);
    let inner = tower::service_fn(move |_req: Request<RequestBody<Full<Bytes>>>| {
        counter.fetch_add(1, Ordering::Relaxed);
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}")))) }
    });
    (Inner::new(inner), reached)
}

/// Sends `n` requests through a layer with an in-process inner service, `concurrency`
/// at a time; returns how many reached the inner service.
async fn through_layer(auditor: &Auditor, n: usize, concurrency: usize) -> usize {
    let (inner, reached) = counting_inner();
    let router = PrivacyRouterLayer::new(policies(None))
        .audit(auditor.clone())
        .layer(inner);
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = Arc::clone(&semaphore).acquire_owned().await.unwrap();
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            let prompt = format!("Summarise ticket number {i}, please.");
            let response = router
                .oneshot(chat("http://api.example.test", "default", &prompt))
                .await
                .unwrap();
            drop(permit);
            response.status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    reached.load(Ordering::Relaxed)
}

/// A log of `n` records at `path`, written by a layer and a file sink.
async fn write_log(path: &Path, n: usize) {
    let auditor = Auditor::new(FileSink::new(path), key());
    assert_eq!(through_layer(&auditor, n, 4).await, n);
    auditor.shutdown().unwrap();
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

/// Recomputes a record line's hash as the writer does (see docs/audit.md).
fn rehash(line: &str) -> String {
    use sha2::Digest;
    let cut = line.rfind(",\"hash\":\"").unwrap();
    let canonical = format!("{}}}", &line[..cut]);
    let hash: String = sha2::Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{},\"hash\":\"{hash}\"}}", &line[..cut])
}

fn violation(path: &Path) -> privacy_router::audit::Violation {
    verify_files(&[path])
        .unwrap()
        .violation
        .expect("verify finds the tampering")
}

#[tokio::test]
async fn an_untouched_log_verifies() {
    let dir = TempDir::new("intact");
    let log = dir.path("audit.jsonl");
    write_log(&log, 10).await;
    let v = verify_files(&[&log]).unwrap();
    assert!(v.is_intact(), "{:?}", v.violation);
    assert_eq!(
        (v.records, v.first_seq, v.last_seq),
        (10, Some(1), Some(10))
    );
    assert!(!v.starts_mid_chain);
}

#[tokio::test]
async fn verify_locates_each_kind_of_tampering() {
    let dir = TempDir::new("tamper");
    let original = dir.path("original.jsonl");
    write_log(&original, 10).await;
    let good = lines(&original);
    let case = |name: &str, edit: &dyn Fn(&mut Vec<String>)| {
        let path = dir.path(&format!("{name}.jsonl"));
        let mut l = good.clone();
        edit(&mut l);
        write_lines(&path, &l);
        path
    };

    // A value changed in place: the line no longer matches its hash.
    let edited = case("edited", &|l| l[4] = l[4].replace("\"allow\"", "\"block\""));
    let v = violation(&edited);
    assert_eq!((v.kind, v.line, v.seq), (ViolationKind::Edited, 5, Some(5)));

    // A line that is no longer JSON.
    let broken = case("broken", &|l| l[2].truncate(40));
    let v = violation(&broken);
    assert_eq!((v.kind, v.line, v.seq), (ViolationKind::Edited, 3, None));

    // A record deleted: the next one is out of sequence.
    let deleted = case("deleted", &|l| {
        l.remove(4);
    });
    let v = violation(&deleted);
    assert_eq!(
        (v.kind, v.line, v.seq, v.expected_seq),
        (ViolationKind::Missing, 5, Some(6), Some(5))
    );

    // A copy of an earlier record inserted.
    let inserted = case("inserted", &|l| {
        let copy = l[2].clone();
        l.insert(6, copy);
    });
    let v = violation(&inserted);
    assert_eq!(
        (v.kind, v.line, v.seq),
        (ViolationKind::Inserted, 7, Some(3))
    );

    // Two records swapped.
    let reordered = case("reordered", &|l| l.swap(4, 5));
    let v = violation(&reordered);
    assert_eq!(
        (v.kind, v.line, v.seq),
        (ViolationKind::Reordered, 5, Some(6))
    );

    // A record rewritten and rehashed by someone who knows the format (but holds no
    // signing key): the record itself verifies, its successor's link breaks.
    let rehashed = case("rehashed", &|l| {
        l[3] = rehash(&l[3].replace("\"allow\"", "\"block\""))
    });
    let v = violation(&rehashed);
    assert_eq!(
        (v.kind, v.line, v.seq),
        (ViolationKind::BrokenLink, 5, Some(5))
    );

    // The file cut in the middle of its last line.
    let cut = dir.path("cut.jsonl");
    let mut text = good.join("\n");
    text.truncate(text.len() - 30);
    std::fs::write(&cut, text).unwrap();
    let v = violation(&cut);
    assert_eq!(
        (v.kind, v.line, v.expected_seq),
        (ViolationKind::TruncatedTail, 10, Some(10))
    );

    // The CLI names the same record and exits 1; an intact log exits 0.
    let out = Command::new(env!("CARGO_BIN_EXE_privacy-router"))
        .args(["audit", "verify"])
        .arg(&deleted)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("deleted.jsonl:5: seq 6: missing"),
        "{stdout}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_privacy-router"))
        .args(["audit", "verify"])
        .arg(&original)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Regression: records cut from the beginning exited 0 with a note. Now it is a
    // violation unless older files were rotated away on purpose (`--partial`).
    let mut head_cut = lines(&original);
    head_cut.drain(..3);
    let headless = original.with_file_name("headless.jsonl");
    write_lines(&headless, &head_cut);
    let verify = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_privacy-router"))
            .args(["audit", "verify"])
            .args(extra)
            .arg(&headless)
            .output()
            .unwrap()
    };
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("seq 4"));
    assert_eq!(verify(&["--partial"]).status.code(), Some(0));
}

#[tokio::test]
async fn a_restart_after_a_crash_continues_a_valid_chain() {
    let dir = TempDir::new("crash");
    let log = dir.path("audit.jsonl");
    write_log(&log, 5).await;
    // A crash mid-write: half a record, no newline.
    let half = lines(&log)[4][..60].to_string();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(half.as_bytes())
        .unwrap();
    let v = violation(&log);
    assert_eq!((v.kind, v.line), (ViolationKind::TruncatedTail, 6));

    write_log(&log, 3).await;
    let v = verify_files(&[&log]).unwrap();
    assert!(v.is_intact(), "{:?}", v.violation);
    // 5 records, the `recovered` record naming the cut bytes, 3 more.
    assert_eq!((v.records, v.last_seq), (9, Some(9)));
    assert_eq!(v.recoveries.len(), 1);
    let recovered: Record = serde_json::from_str(&lines(&log)[5]).unwrap();
    assert_eq!(recovered.event, "recovered");
    assert_eq!(recovered.truncated_bytes, Some(60));
}

#[tokio::test]
async fn the_chain_continues_across_rotated_and_compressed_files() {
    let dir = TempDir::new("rotate");
    let log = dir.path("audit.jsonl");
    let auditor = Auditor::new(FileSink::new(&log).rotate_bytes(4096), key());
    through_layer(&auditor, 40, 4).await;
    auditor.shutdown().unwrap();
    // A restart continues after the newest rotated file.
    write_log(&log, 5).await;

    let files = expand_paths(&[&dir.0]).unwrap();
    assert!(files.len() > 3, "{files:?}");
    // Compress the oldest file, as logrotate would.
    let oldest = files[0].clone();
    let gz = PathBuf::from(format!("{}.gz", oldest.display()));
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&std::fs::read(&oldest).unwrap()).unwrap();
    enc.finish().unwrap();
    std::fs::remove_file(&oldest).unwrap();

    let files = expand_paths(&[dir.path("audit.jsonl*")]).unwrap();
    assert!(files[0].to_string_lossy().ends_with(".gz"), "{files:?}");
    let v = verify_files(&files).unwrap();
    assert!(v.is_intact(), "{:?}", v.violation);
    assert_eq!((v.records, v.last_seq), (45, Some(45)));

    // A rotated file removed from the middle is missing records.
    std::fs::remove_file(&files[1]).unwrap();
    let files = expand_paths(&[&dir.0]).unwrap();
    let v = verify_files(&files).unwrap();
    assert_eq!(v.violation.unwrap().kind, ViolationKind::Missing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_concurrent_requests_give_ten_thousand_chained_records() {
    let dir = TempDir::new("many");
    let log = dir.path("audit.jsonl");
    let auditor = Auditor::new(FileSink::new(&log), key());
    let reached = through_layer(&auditor, 10_000, 1_000).await;
    auditor.flush().unwrap();
    assert_eq!(reached, 10_000);
    let stats = auditor.stats();
    assert_eq!(
        (stats.written, stats.failed, stats.rejected),
        (10_000, 0, 0)
    );
    auditor.shutdown().unwrap();
    let v = verify_files(&[&log]).unwrap();
    assert!(v.is_intact(), "{:?}", v.violation);
    assert_eq!(
        (v.records, v.first_seq, v.last_seq),
        (10_000, Some(1), Some(10_000))
    );
    let mut ids: Vec<String> = lines(&log)
        .iter()
        .map(|l| {
            serde_json::from_str::<Record>(l)
                .unwrap()
                .request_id
                .unwrap()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10_000, "request ids are unique");
}

#[tokio::test]
async fn a_record_names_the_decision_and_fingerprints_without_values() {
    let external = Upstream::start("external").await;
    let local = Upstream::start("local").await;
    let sink = MemorySink::new();
    let auditor = Auditor::new(sink.clone(), key());
    let router = PrivacyRouterLayer::new(policies(Some(&local.url())))
        .audit(auditor.clone())
        .layer(client());
    let mut req = chat(
        &external.url(),
        "default",
        &format!("Write to {EMAIL} today"),
    );
    req.headers_mut()
        .insert("x-request-id", "req-42".parse().unwrap());
    let response = router.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Regression: a client's request id went into the record as sent, email and all.
    let mut req = chat(&external.url(), "default", "Nothing to see");
    req.headers_mut()
        .insert("x-request-id", format!("id-{EMAIL}").parse().unwrap());
    let response = router.oneshot(req).await.unwrap();
    let _ = response.into_body().collect().await;
    auditor.flush().unwrap();
    assert_eq!((external.count(), local.count()), (1, 1));

    let lines = sink.lines();
    assert_eq!(lines.len(), 2);
    assert!(!lines[1].contains(EMAIL), "{}", lines[1]);
    assert!(
        !lines[0].contains(EMAIL) && !lines[0].contains("jane"),
        "{}",
        lines[0]
    );
    let r: Record = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(r.request_id.as_deref(), Some("req-42"));
    assert_eq!(r.team.as_deref(), Some("default"));
    assert_eq!(r.action.as_deref(), Some("route_local"));
    assert_eq!(r.requested_model.as_deref(), Some("gpt-4o"));
    assert_eq!(r.routed_model.as_deref(), Some("llama-3.1-8b"));
    assert_eq!(r.target, Some(format!("{}/v1", local.url())));
    assert_eq!(r.format.as_deref(), Some("openai-chat"));
    let policy = r.policy.unwrap();
    assert_eq!(policy.file, "default.toml");
    assert!(policy.hash.starts_with("sha256:"));
    assert_eq!(r.detectors.len(), 1);
    assert_eq!(
        (
            r.detectors[0].id.as_str(),
            r.detectors[0].category.as_str(),
            r.detectors[0].count
        ),
        ("email", "pii", 1)
    );
    assert_eq!(r.fingerprints.len(), 1);
    assert_eq!(r.fingerprints[0].fp, key().fingerprint(EMAIL).to_string());
    assert_eq!(r.fp_key.as_deref(), Some(key().id()));

    let clean: Record = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(clean.action.as_deref(), Some("allow"));
    assert_eq!(clean.target, Some(external.url()));
    assert_eq!(clean.request_id.map(|id| id.len()), Some(32));
    assert_eq!(clean.prev, r.hash);
}

#[tokio::test]
async fn an_unwritable_log_means_nothing_goes_external() {
    let external = Upstream::start("external").await;
    let local = Upstream::start("local").await;
    let dir = TempDir::new("unwritable");
    // The log's parent is a regular file: it can never be created (root or not).
    let blocker = dir.path("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let auditor = Auditor::new(FileSink::new(blocker.join("audit.jsonl")), key());
    assert_eq!(auditor.flush().unwrap_err().code(), "open");
    let router = PrivacyRouterLayer::new(policies(Some(&local.url())))
        .audit(auditor.clone())
        .decision_header(true)
        .layer(client());

    // on_error = route_local: a clean prompt that would go external stays in-house.
    let response = router
        .clone()
        .oneshot(chat(&external.url(), "default", "Nothing sensitive here"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-privacy-router-action"], "route_local");
    // on_error = block: refused.
    let response = router
        .oneshot(chat(&external.url(), "strict", "Nothing sensitive here"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("audit_log_unavailable"));

    assert_eq!(external.count(), 0, "nothing reaches the external provider");
    assert_eq!(local.count(), 1);
    assert_eq!(auditor.stats().failed, 2);
}

#[tokio::test]
async fn a_failing_sink_fails_closed_then_recovers_a_valid_chain() {
    let external = Upstream::start("external").await;
    let sink = MemorySink::new();
    let auditor = Auditor::new(sink.clone(), key());
    let router = PrivacyRouterLayer::new(policies(None))
        .audit(auditor.clone())
        .layer(client());
    let send = |text: &'static str| {
        let router = router.clone();
        let url = external.url();
        async move {
            router
                .oneshot(chat(&url, "default", text))
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(send("first").await, StatusCode::OK);
    sink.set_failing(true);
    assert_eq!(send("second").await, StatusCode::SERVICE_UNAVAILABLE);
    sink.set_failing(false);
    assert_eq!(send("third").await, StatusCode::OK);
    assert_eq!(external.count(), 2);
    let stats = auditor.stats();
    assert_eq!((stats.written, stats.failed), (2, 1));

    // A shut-down auditor refuses too, and says so in its counters.
    auditor.shutdown().unwrap();
    assert_eq!(send("fourth").await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(auditor.stats().rejected, 1);
    assert_eq!(external.count(), 2);

    let dir = TempDir::new("memory");
    let path = dir.path("memory.jsonl");
    write_lines(&path, &sink.lines());
    let v = verify_files(&[path]).unwrap();
    assert!(v.is_intact(), "{:?}", v.violation);
    assert_eq!(v.records, 2);
}

#[tokio::test]
async fn query_stats_and_fingerprint_from_the_command_line() {
    let external = Upstream::start("external").await;
    let dir = TempDir::new("cli");
    let log = dir.path("audit.jsonl");
    let auditor = Auditor::new(FileSink::new(&log), key());
    let router = PrivacyRouterLayer::new(policies(None))
        .audit(auditor.clone())
        .layer(client());
    for text in [format!("mail {EMAIL}"), "hello".into(), "hi".into()] {
        let _ = router
            .clone()
            .oneshot(chat(&external.url(), "default", &text))
            .await
            .unwrap();
    }
    auditor.shutdown().unwrap();
    let key_file = dir.path("key");
    std::fs::write(&key_file, KEY).unwrap();

    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_privacy-router"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let log_s = log.to_str().unwrap();
    let fp = run(&[
        "audit",
        "fingerprint",
        EMAIL,
        "--key-file",
        key_file.to_str().unwrap(),
    ]);
    assert_eq!(fp.trim(), key().fingerprint(EMAIL).to_string());

    let found = run(&[
        "audit",
        "query",
        log_s,
        "--fingerprint",
        fp.trim(),
        "--json",
    ]);
    assert_eq!(found.lines().count(), 1);
    assert!(found.contains("\"action\":\"block\""));
    let csv = run(&["audit", "query", log_s, "--action", "allow", "--csv"]);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("time,seq,request_id,team"));
    let table = run(&[
        "audit",
        "query",
        log_s,
        "--category",
        "pii",
        "--since",
        "1d",
    ]);
    assert!(table.contains("email (pii) x1"), "{table}");

    let stats: serde_json::Value =
        serde_json::from_str(&run(&["audit", "stats", log_s, "--by", "action", "--json"])).unwrap();
    assert_eq!(stats["records"], 3);
    assert_eq!(
        stats["groups"][0],
        json!({"key": "allow", "count": 2, "share": 2.0 / 3.0})
    );
    let tail = run(&[
        "audit",
        "tail",
        "-n",
        "1",
        "--json",
        dir.0.to_str().unwrap(),
    ]);
    assert_eq!(tail.lines().count(), 1);
    assert!(tail.contains("\"seq\":3"));
}

/// Renumbers, re-links and rehashes every line, as someone rewriting the whole log would.
fn rechain(lines: &mut [String]) {
    let mut prev = "0".repeat(64);
    for (i, line) in lines.iter_mut().enumerate() {
        let at = line.find("\"seq\":").unwrap() + 6;
        let end = at + line[at..].find(',').unwrap();
        line.replace_range(at..end, &(i + 1).to_string());
        let start = line.find("\"prev\":\"").unwrap() + 8;
        line.replace_range(start..start + 64, &prev);
        // A checkpoint's signed fields are easy to fix up; its signature is not.
        if let Some(at) = line.find("\"signed_hash\":\"") {
            line.replace_range(at + 15..at + 15 + 64, &prev);
        }
        *line = rehash(line);
        let h = line.rfind("\"hash\":\"").unwrap() + 8;
        prev = line[h..h + 64].to_string();
    }
}

#[tokio::test]
async fn signed_checkpoints_catch_a_rewrite_of_the_whole_log() {
    let dir = TempDir::new("checkpoints");
    let secret = dir.path("checkpoint.key");
    let public = dir.path("checkpoint.pub");
    let out = Command::new(env!("CARGO_BIN_EXE_privacy-router"))
        .args(["audit", "keygen"])
        .arg(&secret)
        .arg("--public")
        .arg(&public)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let checkpoints = Checkpoints::from_file(&secret).unwrap().every_records(4);
    let pk = CheckpointPublicKey::from_file(&public).unwrap();
    assert_eq!(checkpoints.key_id(), pk.key_id());

    let log = dir.path("audit.jsonl");
    let auditor = Auditor::builder(FileSink::new(&log), key())
        .checkpoints(checkpoints)
        .start();
    through_layer(&auditor, 10, 1).await;
    auditor.shutdown().unwrap();
    assert_eq!(auditor.stats().written, 10);

    // 10 decisions; a checkpoint after every 4 records, and one at shutdown.
    let v = verify_files_with(&[&log], Some(&pk)).unwrap();
    assert!(v.is_intact(), "{:?}", v.violation);
    assert_eq!((v.records, v.checkpoints, v.unsigned_tail), (13, 3, 0));
    let first: Record = serde_json::from_str(&lines(&log)[4]).unwrap();
    assert_eq!(first.event, "checkpoint");
    assert_eq!(first.signed_seq, Some(4));

    // A rewrite from record 2 on, every hash recomputed: the chain alone cannot tell...
    let mut forged = lines(&log);
    forged[1] = forged[1].replace("\"allow\"", "\"block\"");
    rechain(&mut forged);
    let rewritten = dir.path("rewritten.jsonl");
    write_lines(&rewritten, &forged);
    assert!(verify_files(&[&rewritten]).unwrap().is_intact());
    // ...the first checkpoint after the change can.
    let v = verify_files_with(&[&rewritten], Some(&pk)).unwrap();
    let bad = v.violation.unwrap();
    assert_eq!(
        (bad.kind, bad.line, bad.seq),
        (ViolationKind::BadSignature, 5, Some(5))
    );
    let out = Command::new(env!("CARGO_BIN_EXE_privacy-router"))
        .args(["audit", "verify", "--public-key"])
        .arg(&public)
        .arg(&rewritten)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rewritten.jsonl:5: seq 5: bad-signature")
    );

    // Checkpoints stripped entirely: nothing is signed.
    let mut stripped: Vec<String> = lines(&log)
        .into_iter()
        .filter(|l| !l.contains("\"checkpoint\""))
        .collect();
    rechain(&mut stripped);
    let unsigned = dir.path("unsigned.jsonl");
    write_lines(&unsigned, &stripped);
    let v = verify_files_with(&[&unsigned], Some(&pk)).unwrap();
    assert_eq!(v.violation.unwrap().kind, ViolationKind::Unsigned);

    // Another key's checkpoints do not verify.
    let other = dir.path("other.pub");
    std::fs::write(&other, Checkpoints::from_seed([9; 32]).public_key_hex()).unwrap();
    let other = CheckpointPublicKey::from_file(&other).unwrap();
    let v = verify_files_with(&[&log], Some(&other)).unwrap();
    assert_eq!(v.violation.unwrap().kind, ViolationKind::BadSignature);
}

/// A sink whose first commit waits until the test releases it, to fill the queue.
struct GatedSink {
    inner: MemorySink,
    entered: std::sync::mpsc::Sender<()>,
    gate: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl Sink for GatedSink {
    fn recover(&mut self) -> Result<Recovery, AuditError> {
        self.inner.recover()
    }

    fn append(&mut self, record: &SealedRecord<'_>) -> Result<(), AuditError> {
        self.inner.append(record)
    }

    fn commit(&mut self) -> Result<(), AuditError> {
        let _ = self.entered.send(());
        let (open, cvar) = &*self.gate;
        let mut open = open.lock().unwrap();
        while !*open {
            open = cvar.wait(open).unwrap();
        }
        self.inner.commit()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_fails_closed_and_is_counted() {
    let (entered, entered_rx) = std::sync::mpsc::channel();
    let gate = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let memory = MemorySink::new();
    let sink = GatedSink {
        inner: memory.clone(),
        entered,
        gate: Arc::clone(&gate),
    };
    // Room for one queued record besides the one the writer holds.
    let auditor = Auditor::with_queue(sink, key(), 1);
    let (inner, reached) = counting_inner();
    let router = PrivacyRouterLayer::new(policies(None))
        .audit(auditor.clone())
        .layer(inner);
    let send = |text: &'static str| {
        let router = router.clone();
        tokio::spawn(async move {
            router
                .oneshot(chat("http://api.example.test", "default", text))
                .await
                .unwrap()
                .status()
        })
    };
    let first = send("first");
    // The writer holds the first record in its (stalled) commit.
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    let second = send("second");
    let third = send("third");
    // One of the two fills the queue, the other finds it full and is refused.
    while auditor.stats().rejected == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        reached.load(Ordering::Relaxed),
        0,
        "nothing forwarded before its commit"
    );
    {
        let (open, cvar) = &*gate;
        *open.lock().unwrap() = true;
        cvar.notify_all();
    }
    let mut statuses = vec![
        first.await.unwrap(),
        second.await.unwrap(),
        third.await.unwrap(),
    ];
    statuses.sort();
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE
        ]
    );
    assert_eq!(reached.load(Ordering::Relaxed), 2);
    auditor.flush().unwrap();
    let stats = auditor.stats();
    assert_eq!((stats.written, stats.rejected, stats.failed), (2, 1, 0));
    assert_eq!(memory.lines().len(), 2);
}

/// Collects the `record` field of every `privacy_router::audit` event, on any thread.
struct Collect(Arc<std::sync::Mutex<Vec<String>>>);

impl tracing::Subscriber for Collect {
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        meta.target() == "privacy_router::audit"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Field<'a>(&'a mut Option<String>);
        impl tracing::field::Visit for Field<'_> {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "record" {
                    *self.0 = Some(format!("{v:?}"));
                }
            }
        }
        let mut record = None;
        event.record(&mut Field(&mut record));
        if let Some(r) = record {
            self.0.lock().unwrap().push(r);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn the_tracing_sink_emits_one_event_per_record() {
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    // The writer thread emits the events, so the subscriber must be global; no other test
    // in this binary sets one.
    tracing::subscriber::set_global_default(Collect(Arc::clone(&events))).unwrap();
    let auditor = Auditor::new(privacy_router::audit::TracingSink::new(), key());
    assert_eq!(through_layer(&auditor, 5, 5).await, 5);
    auditor.shutdown().unwrap();
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 5);
    let first: serde_json::Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["seq"], 1);
    assert!(
        events.iter().all(|e| !e.contains("Summarise ticket")),
        "no prompt text"
    );
}

/// A sink that panics on its first record.
struct PanickingSink;

impl privacy_router::audit::Sink for PanickingSink {
    fn recover(
        &mut self,
    ) -> Result<privacy_router::audit::Recovery, privacy_router::audit::AuditError> {
        Ok(privacy_router::audit::Recovery::new(None))
    }
    fn append(
        &mut self,
        _: &privacy_router::audit::SealedRecord<'_>,
    ) -> Result<(), privacy_router::audit::AuditError> {
        panic!("injected sink fault");
    }
    fn commit(&mut self) -> Result<(), privacy_router::audit::AuditError> {
        Ok(())
    }
}

/// Regression: if the writer thread died, requests waited for their record forever.
#[tokio::test]
async fn a_dead_writer_fails_requests_closed_instead_of_hanging() {
    let auditor = Auditor::new(PanickingSink, key());
    let (inner, reached) = counting_inner();
    let router = PrivacyRouterLayer::new(policies(None))
        .audit(auditor.clone())
        .layer(inner);
    for _ in 0..3 {
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            router
                .clone()
                .oneshot(chat("http://api.example.test", "default", "hello")),
        )
        .await
        .expect("answered, not hung")
        .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(reached.load(Ordering::Relaxed), 0, "nothing was forwarded");
}
