//! `privacy-router proxy`: the real binary, with loopback stand-ins for OpenAI, Anthropic
//! and the self-hosted model, and requests shaped as the official SDKs send them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::upstream::Upstream;

/// A scratch directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "privacy-router-proxy-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The running proxy; killed (and reaped) on drop, whatever the test's outcome.
struct Proxy {
    child: Child,
    base: String,
    stderr: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// Starts the binary and waits for its first stdout line, `listening on http://ADDR`.
    async fn start(dir: &TempDir, config: &Path) -> Proxy {
        let stderr = dir.0.join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_privacy-router"))
            .args(["proxy", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start privacy-router proxy");
        let stdout = child.stdout.take().unwrap();
        let mut proxy = Proxy {
            child,
            base: String::new(),
            stderr,
        };
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).unwrap();
            line
        });
        let line = tokio::time::timeout(Duration::from_secs(60), line)
            .await
            .expect("the proxy printed its address")
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}; stderr: {}", proxy.log()));
        proxy.base = addr.to_string();
        proxy
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits until stderr holds `needle` (at most 20 s).
    async fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(Instant::now() < deadline, "no {needle:?} in stderr: {log}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Three stand-ins and a policy directory whose self-hosted target is the local one.
struct World {
    openai: Upstream,
    anthropic: Upstream,
    local: Upstream,
    dir: TempDir,
}

const POLICY: &str = r#"
team = "default"
default = "allow"
on_error = "route_local"

[detectors]
categories = ["pii", "financial", "secret"]

[[rules]]
when = { category = "secret" }
action = "block"

[[rules]]
when = { category = ["pii", "financial"] }
action = "route_local"

[local]
base_url = "LOCAL/v1"
models = { "*" = "llama-3.1-8b" }
"#;

impl World {
    async fn new() -> World {
        let world = World {
            openai: Upstream::start("openai").await,
            anthropic: Upstream::start("anthropic").await,
            local: Upstream::start("local").await,
            dir: TempDir::new(),
        };
        world.policy("default.toml", POLICY);
        world
    }

    fn policy(&self, name: &str, text: &str) {
        self.dir.write(
            &format!("policies/{name}"),
            &text.replace("LOCAL", &self.local.url()),
        );
    }

    fn config(&self, extra: &str) -> PathBuf {
        self.dir.write(
            "proxy.toml",
            &format!(
                "listen = \"127.0.0.1:0\"\npolicies = \"policies\"\ndecision_header = true\n{extra}\n\
                 [upstreams.openai]\nurl = \"{}\"\n\n[upstreams.anthropic]\nurl = \"{}\"\n",
                self.openai.url(),
                self.anthropic.url()
            ),
        )
    }

    async fn proxy(&self, extra: &str) -> Proxy {
        Proxy::start(&self.dir, &self.config(extra)).await
    }
}

type TestClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The headers the official OpenAI Python SDK sends (v1.x).
fn openai_sdk(path: &str, base: &str, body: &str) -> Request<Full<Bytes>> {
    Request::post(format!("{base}{path}"))
        .header("accept", "application/json")
        .header("accept-encoding", "gzip, deflate")
        .header("content-type", "application/json")
        .header("user-agent", "OpenAI/Python 1.54.4")
        .header("x-stainless-lang", "python")
        .header("x-stainless-package-version", "1.54.4")
        .header("x-stainless-os", "Linux")
        .header("x-stainless-arch", "x64")
        .header("x-stainless-runtime", "CPython")
        .header("x-stainless-runtime-version", "3.12.3")
        .header("x-stainless-async", "false")
        .header("x-stainless-retry-count", "0")
        .header("authorization", "Bearer sk-proj-test-client-key")
        .header("connection", "keep-alive")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// The headers the official Anthropic Python SDK sends (v0.x).
fn anthropic_sdk(base: &str, body: &str) -> Request<Full<Bytes>> {
    Request::post(format!("{base}/v1/messages"))
        .header("accept", "application/json")
        .header("accept-encoding", "gzip, deflate")
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .header("user-agent", "Anthropic/Python 0.39.0")
        .header("x-stainless-lang", "python")
        .header("x-stainless-package-version", "0.39.0")
        .header("x-stainless-retry-count", "0")
        .header("x-api-key", "sk-ant-api03-test-client-key")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("JSON: {}", self.body))
    }

    fn action(&self) -> &str {
        self.headers
            .get("x-privacy-router-action")
            .map_or("", |v| v.to_str().unwrap())
    }
}

async fn send(client: &TestClient, request: Request<Full<Bytes>>) -> Answer {
    let response = client.request(request).await.expect("the proxy answered");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(client: &TestClient, url: String) -> Answer {
    send(client, Request::get(url).body(Full::default()).unwrap()).await
}

const CLEAN_CHAT: &str = r#"{"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Summarise the quarterly roadmap in three bullet points."}],"model":"gpt-4o"}"#;
const EMAIL_CHAT: &str = r#"{"messages":[{"role":"user","content":"Write a polite reply to jane.doe@acme-mail.de about her refund."}],"model":"gpt-4o"}"#;
const SECRET_CHAT: &str = r#"{"messages":[{"role":"user","content":"Why does 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 fail?"}],"model":"gpt-4o"}"#;
const CLEAN_RESPONSES: &str = r#"{"input":"Explain the CAP theorem in two sentences.","model":"gpt-4o","instructions":"Be brief."}"#;
const CARD_RESPONSES: &str = r#"{"input":[{"role":"user","content":[{"type":"input_text","text":"Card 4539 1488 0343 6467 was charged twice."}]}],"model":"gpt-4o"}"#;
const CLEAN_MESSAGES: &str = r#"{"max_tokens":1024,"messages":[{"role":"user","content":"Hello, Claude"}],"model":"claude-sonnet-4-5"}"#;
const EMAIL_MESSAGES: &str = r#"{"max_tokens":1024,"messages":[{"role":"user","content":[{"type":"text","text":"Email jane.doe@acme-mail.de the invoice."}]}],"model":"claude-sonnet-4-5","system":"You are terse."}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_requests_go_where_the_policy_says() {
    let w = World::new().await;
    let proxy = w.proxy("").await;
    let c = client();
    let base = &proxy.base;

    // Clean chat: reaches the OpenAI stand-in byte for byte, with the SDK's headers.
    let a = send(&c, openai_sdk("/v1/chat/completions", base, CLEAN_CHAT)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["served_by"], "openai");
    assert_eq!(a.action(), "allow");
    let got = w.openai.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/v1/chat/completions");
    assert_eq!(got[0].text(), CLEAN_CHAT);
    assert_eq!(
        got[0].headers["authorization"],
        "Bearer sk-proj-test-client-key"
    );
    assert_eq!(got[0].headers["user-agent"], "OpenAI/Python 1.54.4");
    assert_eq!(got[0].headers["x-stainless-lang"], "python");

    // An email: only the self-hosted stand-in sees it, without the provider's key.
    let a = send(&c, openai_sdk("/v1/chat/completions", base, EMAIL_CHAT)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["served_by"], "local");
    assert_eq!(a.action(), "route_local");
    let got = w.local.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/v1/chat/completions");
    assert_eq!(got[0].json()["model"], "llama-3.1-8b");
    assert!(!got[0].headers.contains_key("authorization"));
    assert_eq!(w.openai.count(), 1, "the external stand-in saw nothing new");

    // Responses API, clean and with a card number.
    let a = send(&c, openai_sdk("/v1/responses", base, CLEAN_RESPONSES)).await;
    assert_eq!(a.json()["served_by"], "openai");
    assert_eq!(w.openai.received()[1].text(), CLEAN_RESPONSES);
    let a = send(&c, openai_sdk("/v1/responses", base, CARD_RESPONSES)).await;
    assert_eq!(a.json()["served_by"], "local");
    assert_eq!(w.local.received()[1].path, "/v1/responses");

    // Anthropic Messages, clean and with an email.
    let a = send(&c, anthropic_sdk(base, CLEAN_MESSAGES)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["served_by"], "anthropic");
    let got = w.anthropic.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/v1/messages");
    assert_eq!(got[0].text(), CLEAN_MESSAGES);
    assert_eq!(got[0].headers["x-api-key"], "sk-ant-api03-test-client-key");
    assert_eq!(got[0].headers["anthropic-version"], "2023-06-01");
    let a = send(&c, anthropic_sdk(base, EMAIL_MESSAGES)).await;
    assert_eq!(a.json()["served_by"], "local");
    let got = w.local.received();
    assert_eq!(got[2].path, "/v1/messages");
    assert!(!got[2].headers.contains_key("x-api-key"));
    assert_eq!(w.anthropic.count(), 1);

    // A credential: blocked, in OpenAI's error shape, and nobody received it.
    let a = send(&c, openai_sdk("/v1/chat/completions", base, SECRET_CHAT)).await;
    assert_eq!(a.status, 403);
    assert_eq!(a.json()["error"]["code"], "blocked_by_privacy_policy");
    assert!(!a.body.contains("ghp_"));
    assert_eq!((w.openai.count(), w.local.count()), (2, 3));

    // Legacy completions and embeddings are inspected too.
    let a = send(
        &c,
        openai_sdk(
            "/v1/embeddings",
            base,
            r#"{"input":["mail jane.doe@acme-mail.de"],"model":"text-embedding-3-small","encoding_format":"base64"}"#,
        ),
    )
    .await;
    assert_eq!(a.json()["served_by"], "local");
    let a = send(
        &c,
        openai_sdk(
            "/v1/completions",
            base,
            r#"{"model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test"}"#,
        ),
    )
    .await;
    assert_eq!(a.json()["served_by"], "openai");

    // Models: forwarded without a body.
    let a = send(
        &c,
        Request::get(format!("{base}/v1/models"))
            .header("authorization", "Bearer sk-proj-test-client-key")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(w.openai.received().last().unwrap().path, "/v1/models");

    let log = proxy.log();
    for leaked in ["jane.doe", "4539", "ghp_", "sk-proj", "sk-ant"] {
        assert!(!log.contains(leaked), "stderr holds {leaked}: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_arrive_as_streams() {
    let w = World::new().await;
    let proxy = w.proxy("").await;
    let c = client();
    for (request, upstream) in [
        (
            openai_sdk(
                "/v1/chat/completions",
                &proxy.base,
                r#"{"messages":[{"role":"user","content":"Tell me a story."}],"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}"#,
            ),
            &w.openai,
        ),
        (
            openai_sdk(
                "/v1/chat/completions",
                &proxy.base,
                r#"{"messages":[{"role":"user","content":"Reply to jane.doe@acme-mail.de"}],"model":"gpt-4o","stream":true}"#,
            ),
            &w.local,
        ),
        (
            anthropic_sdk(
                &proxy.base,
                r#"{"max_tokens":1024,"messages":[{"role":"user","content":"Hello"}],"model":"claude-sonnet-4-5","stream":true}"#,
            ),
            &w.anthropic,
        ),
    ] {
        let response = c.request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut body: Incoming = response.into_body();
        let mut events = Vec::new();
        // Each event after the first is sent only once this side has seen the one before:
        // a proxy that buffered the response would stall, and the timeout fails the test.
        tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.unwrap().into_data() {
                    events.push(String::from_utf8(data.to_vec()).unwrap());
                    upstream.next_event.notify_one();
                }
            }
        })
        .await
        .expect("the stream was buffered instead of passed through");
        let all = events.concat();
        assert!(all.contains("\"chunk\":2"), "{all}");
        assert!(all.ends_with("data: [DONE]\n\n"), "{all}");
    }
    assert_eq!(
        (w.openai.count(), w.local.count(), w.anthropic.count()),
        (1, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_fail_closed_and_metrics_count() {
    let w = World::new().await;
    let proxy = w.proxy("").await;
    let c = client();
    let base = &proxy.base;

    for path in [
        "/v1/files",
        "/v1/messages/count_tokens",
        "/v2/chat/completions",
        "/",
    ] {
        let a = send(&c, openai_sdk(path, base, EMAIL_CHAT)).await;
        assert_eq!(a.status, 404, "{path}");
        assert_eq!(a.json()["error"]["code"], "unknown_path");
        assert_eq!(a.json()["error"]["type"], "invalid_request_error");
    }
    let a = get(&c, format!("{base}/v1/chat/completions")).await;
    assert_eq!(a.status, 405);
    assert_eq!(
        w.openai.count() + w.anthropic.count() + w.local.count(),
        0,
        "nothing was forwarded"
    );

    assert_eq!(get(&c, format!("{base}/healthz")).await.status, 200);
    assert_eq!(get(&c, format!("{base}/readyz")).await.status, 200);
    send(&c, openai_sdk("/v1/chat/completions", base, CLEAN_CHAT)).await;
    send(&c, openai_sdk("/v1/chat/completions", base, CLEAN_CHAT)).await;
    send(&c, openai_sdk("/v1/chat/completions", base, EMAIL_CHAT)).await;
    send(&c, openai_sdk("/v1/chat/completions", base, SECRET_CHAT)).await;
    // Malformed JSON cannot be inspected: the team's on_error keeps it in-house.
    let a = send(
        &c,
        openai_sdk(
            "/v1/chat/completions",
            base,
            r#"{"messages":[{"role":"user","#,
        ),
    )
    .await;
    assert_eq!(a.json()["served_by"], "local");

    let m = get(&c, format!("{base}/metrics")).await;
    assert_eq!(m.status, 200);
    assert!(
        m.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = m.body;
    for line in [
        "privacy_router_requests_total{team=\"default\",action=\"allow\"} 2",
        "privacy_router_requests_total{team=\"default\",action=\"route_local\"} 2",
        "privacy_router_inspection_failures_total{kind=\"malformed-json\"} 1",
        "privacy_router_requests_total{team=\"default\",action=\"block\"} 1",
        "privacy_router_http_requests_total{route=\"unknown\",status=\"404\"} 4",
        "privacy_router_http_requests_total{route=\"chat_completions\",status=\"403\"} 1",
        "privacy_router_scan_seconds_count 5",
        "privacy_router_ready 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    for leaked in ["jane", "ghp_", "sk-proj"] {
        assert!(!text.contains(leaked));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_from_api_keys() {
    let w = World::new().await;
    w.policy(
        "payments.toml",
        "team = \"payments\"\ndefault = \"allow\"\non_error = \"block\"\n\
         [detectors]\ncategories = [\"pii\"]\n[[rules]]\nwhen = { category = \"pii\" }\naction = \"block\"\n",
    );
    // sha256("sk-proxy-payments"), as `printf %s sk-proxy-payments | sha256sum` prints it.
    let hash = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(b"sk-proxy-payments");
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let proxy = w
        .proxy(&format!(
            "[teams]\nunknown_key = \"reject\"\n[[teams.keys]]\nteam = \"payments\"\nsha256 = \"{hash}\"\n\
             [[teams.keys]]\nteam = \"default\"\nkey = \"sk-proxy-default\"\n"
        ))
        .await;
    let c = client();
    let with_key = |key: &str, body: &str| {
        let mut r = openai_sdk("/v1/chat/completions", &proxy.base, body);
        r.headers_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        // A client cannot pick a laxer team with the header when keys decide.
        r.headers_mut().insert("x-team", "default".parse().unwrap());
        r
    };
    let a = send(&c, with_key("sk-proxy-payments", EMAIL_CHAT)).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("payments"));
    let a = send(&c, with_key("sk-proxy-default", EMAIL_CHAT)).await;
    assert_eq!(a.json()["served_by"], "local");
    let a = send(&c, with_key("sk-proxy-unknown", CLEAN_CHAT)).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["error"]["code"], "invalid_api_key");
    // Listing models is paid for with the proxy's upstream key: unknown clients get
    // nothing there either (regression: the route skipped the key check).
    let models = Request::get(format!("{}/v1/models", proxy.base))
        .header("authorization", "Bearer sk-proxy-unknown")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send(&c, models).await.status, 401);
    let mut anthropic = anthropic_sdk(&proxy.base, CLEAN_MESSAGES);
    anthropic
        .headers_mut()
        .insert("x-api-key", "sk-proxy-payments".parse().unwrap());
    let a = send(&c, anthropic).await;
    assert_eq!(a.json()["served_by"], "anthropic");
    assert_eq!(w.openai.count(), 0);
    assert!(!w.anthropic.received()[0].headers.contains_key("x-team"));
    assert!(!proxy.log().contains("sk-proxy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_a_broken_policy_keeps_the_last_good_set() {
    let w = World::new().await;
    let proxy = w.proxy("reload_interval = \"0s\"").await;
    let c = client();
    let a = send(
        &c,
        openai_sdk("/v1/chat/completions", &proxy.base, EMAIL_CHAT),
    )
    .await;
    assert_eq!(a.action(), "route_local");

    // A broken file: the reload fails, names the place, and the old set stays.
    w.policy(
        "default.toml",
        &POLICY.replace("\"route_local\"\n\n[local]", "\"reroute\"\n\n[local]"),
    );
    proxy.signal("HUP");
    let log = proxy.wait_for_log("policy reload failed").await;
    assert!(log.contains("default.toml:15:10"), "{log}");
    let a = send(
        &c,
        openai_sdk("/v1/chat/completions", &proxy.base, EMAIL_CHAT),
    )
    .await;
    assert_eq!(a.action(), "route_local");

    // A good change: pii is now blocked.
    w.policy(
        "default.toml",
        &POLICY.replace("\"route_local\"\n\n[local]", "\"block\"\n\n[local]"),
    );
    proxy.signal("HUP");
    proxy.wait_for_log("policies reloaded (SIGHUP)").await;
    let a = send(
        &c,
        openai_sdk("/v1/chat/completions", &proxy.base, EMAIL_CHAT),
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);

    let m = get(&c, format!("{}/metrics", proxy.base)).await.body;
    assert!(m.contains("privacy_router_policy_reloads_total{result=\"error\"} 1"));
    assert!(m.contains("privacy_router_policy_reloads_total{result=\"ok\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_files_are_polled_for_changes() {
    let w = World::new().await;
    let proxy = w.proxy("reload_interval = \"100ms\"").await;
    let c = client();
    // Coarse file-system timestamps: make sure the rewrite lands on a later mtime or size.
    tokio::time::sleep(Duration::from_millis(50)).await;
    w.policy(
        "default.toml",
        &POLICY.replace("\"route_local\"\n\n[local]", "\"block\"\n\n[local]"),
    );
    proxy
        .wait_for_log("policies reloaded (files changed)")
        .await;
    let a = send(
        &c,
        openai_sdk("/v1/chat/completions", &proxy.base, EMAIL_CHAT),
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
}

/// Opens a streamed chat completion through the proxy; the OpenAI stand-in sends each
/// event when told to ([`drain`]).
async fn open_story_stream(c: &TestClient, base: &str) -> http::Response<Incoming> {
    c.request(openai_sdk(
        "/v1/chat/completions",
        base,
        r#"{"messages":[{"role":"user","content":"Tell me a story."}],"model":"gpt-4o","stream":true}"#,
    ))
    .await
    .unwrap()
}

/// Reads a stream to its end, letting the stand-in send each next event; its text.
async fn drain(response: http::Response<Incoming>, upstream: &Upstream) -> String {
    let mut body = response.into_body();
    let mut all = String::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                all.push_str(std::str::from_utf8(&data).unwrap());
                upstream.next_event.notify_one();
            }
        }
    })
    .await
    .unwrap();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_then_exits_zero() {
    let w = World::new().await;
    let mut proxy = w.proxy("").await;
    let c = client();
    let response = open_story_stream(&c, &proxy.base).await;
    proxy.signal("TERM");
    proxy.wait_for_log("shutting down").await;
    // New connections are refused; the stream in flight still completes.
    let refused = tokio::net::TcpStream::connect(proxy.base.trim_start_matches("http://")).await;
    assert!(refused.is_err(), "still accepting after SIGTERM");
    let all = drain(response, &w.openai).await;
    assert!(all.ends_with("data: [DONE]\n\n"), "{all}");
    let status = tokio::task::spawn_blocking(move || {
        let status = proxy.child.wait().unwrap();
        (status, proxy)
    })
    .await
    .unwrap()
    .0;
    assert_eq!(status.code(), Some(0));
}

/// Sends a request's head and the start of its body over a raw connection, then nothing;
/// returns what the proxy answers.
async fn stall_midway(base: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: proxy\r\n\
              content-type: application/json\r\ncontent-length: 4096\r\n\r\n{\"model\": \"gpt",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(20), async {
        while !String::from_utf8_lossy(&answer).contains("}}") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the proxy answered a stalled body in time");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_time_out_and_requests_over_the_limit_are_turned_away() {
    let w = World::new().await;
    let proxy = w.proxy("body_timeout = \"300ms\"\nmax_in_flight = 1").await;
    let answer = stall_midway(&proxy.base).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#""code":"request_body_timeout""#),
        "{answer}"
    );

    // A stream holds the one slot until its last byte.
    let c = client();
    let stream = open_story_stream(&c, &proxy.base).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let a = send(
        &c,
        openai_sdk("/v1/chat/completions", &proxy.base, CLEAN_CHAT),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.json()["error"]["code"], "overloaded");
    let a = send(&c, anthropic_sdk(&proxy.base, CLEAN_MESSAGES)).await;
    assert_eq!(a.status.as_u16(), 529);
    assert_eq!(a.json()["error"]["type"], "overloaded_error");
    let health = get(&c, format!("{}/healthz", proxy.base)).await;
    assert_eq!(
        health.status,
        StatusCode::OK,
        "health checks are not API requests"
    );

    let told = drain(stream, &w.openai).await;
    assert!(told.ends_with("data: [DONE]\n\n"), "{told}");
    let a = send(
        &c,
        openai_sdk("/v1/chat/completions", &proxy.base, CLEAN_CHAT),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "the slot came back: {}", a.body);
    assert_eq!(
        w.openai.count(),
        2,
        "only the stream and the last request went out"
    );
    assert_eq!(w.anthropic.count() + w.local.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_audited_and_the_log_is_flushed_on_shutdown() {
    let w = World::new().await;
    w.dir
        .write("audit.key", "0123456789abcdef0123456789abcdef\n");
    let mut proxy = w
        .proxy("[audit]\npath = \"audit/audit.jsonl\"\nkey_file = \"audit.key\"\ndurability = \"os\"\n")
        .await;
    let c = client();
    send(
        &c,
        openai_sdk("/v1/chat/completions", &proxy.base, CLEAN_CHAT),
    )
    .await;
    send(
        &c,
        openai_sdk("/v1/chat/completions", &proxy.base, EMAIL_CHAT),
    )
    .await;
    let a = send(
        &c,
        openai_sdk("/v1/chat/completions", &proxy.base, SECRET_CHAT),
    )
    .await;
    assert_eq!(a.status, 403);
    let m = get(&c, format!("{}/metrics", proxy.base)).await.body;
    assert!(
        m.contains("privacy_router_audit_records_total{result=\"rejected\"} 0"),
        "{m}"
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with("privacy_router_audit_queue_depth ")),
        "the queue depth is exported: {m}"
    );

    proxy.signal("TERM");
    let status = tokio::task::spawn_blocking(move || {
        let status = proxy.child.wait().unwrap();
        (status, proxy)
    })
    .await
    .unwrap();
    assert_eq!(status.0.code(), Some(0), "{}", status.1.log());
    assert!(status.1.log().contains("audit log flushed"));

    let log = w.dir.0.join("audit/audit.jsonl");
    let verification = privacy_router::audit::verify_files(&[&log]).unwrap();
    assert!(verification.is_intact());
    assert_eq!(verification.records, 3);
    let text = std::fs::read_to_string(&log).unwrap();
    for leaked in ["jane.doe", "ghp_", "sk-proj"] {
        assert!(!text.contains(leaked), "the audit log holds {leaked}");
    }
}

/// Starts the binary on a config file holding `text`: it must exit 2, and its error must
/// name the file at `line:col`.
fn assert_config_fails_at(dir: &TempDir, text: &str, line_col: &str) {
    let config = dir.write("proxy.toml", text);
    let out = Command::new(env!("CARGO_BIN_EXE_privacy-router"))
        .args(["proxy", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("{}:{line_col}: ", config.display())),
        "{stderr}"
    );
}

#[test]
fn a_broken_config_names_file_line_col_and_exits_2() {
    let dir = TempDir::new();
    assert_config_fails_at(
        &dir,
        "listen = \"127.0.0.1:0\"\npolicies = \"policies\"\nreload_interval = 5\n",
        "3:19",
    );
    assert_config_fails_at(
        &dir,
        "listen = \"127.0.0.1:0\"\npolicies = \"policies\"\n[upstreams.openai]\nurl = \"http://127.0.0.1:9\"\nbogus = true\n",
        "5:1",
    );
}

#[test]
fn the_example_config_loads() {
    let config = privacy_router::proxy::ProxyConfig::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/proxy.toml"
    ))
    .unwrap();
    assert!(config.policies().ends_with("examples/policies"));
    privacy_router::policy::PolicyHandle::load(config.policies()).unwrap();
}

/// A fast stand-in upstream for the load measurement in the README (not a test):
/// answers every request with a small chat completion and records nothing.
///
/// `STAND_IN_ADDR=127.0.0.1:18081 cargo test --release --test it -- --ignored --exact proxy::load_stand_in`
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "a server for manual load measurements"]
async fn load_stand_in() {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let addr = std::env::var("STAND_IN_ADDR").unwrap_or_else(|_| "127.0.0.1:18081".into());
    let secs: u64 = std::env::var("STAND_IN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    println!("stand-in on http://{addr} for {secs} s");
    const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Here are three bullet points."},"finish_reason":"stop"}],"usage":{"prompt_tokens":900,"completion_tokens":7,"total_tokens":907}}"#;
    let serve = async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    Ok::<_, std::convert::Infallible>(
                        http::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(ANSWER.as_bytes())))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(secs), serve).await;
}
