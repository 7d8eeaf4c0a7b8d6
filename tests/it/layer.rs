//! The Tower layer end to end: a hyper-util client under `PrivacyRouterLayer`, and two
//! real servers on 127.0.0.1 standing in for the external provider and the self-hosted
//! model. Every test asserts what each server received.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use privacy_router::middleware::{
    InspectionReport, PolicySource, PrivacyRouter, PrivacyRouterLayer,
};
use privacy_router::policy::{Action, Decision, PolicySet};
use privacy_router::scan::Scanner;
use serde_json::{Value, json};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

use crate::upstream::{Client, Upstream, client};

const LOCAL_TOKEN: &str = "local-token-123";
const EXTERNAL_AUTH: &str = "Bearer sk-external-credential";

/// Sensitive values and the category each belongs to. Each is checked to be detected
/// before it is used, so a detector change cannot quietly turn these tests into no-ops.
const PII: [&str; 3] = [
    "jane.doe@acme-mail.de",
    "536-22-1947",
    "DE68 3704 0044 0532 0130 87",
];
const SECRETS: [&str; 2] = [
    "AKIAZ7Q4M2N5P3R6T2VX",
    "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",
];

struct World {
    external: Upstream,
    local: Upstream,
    _dir: TempDir,
    set: Arc<PolicySet>,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn policies(local: &Upstream, dir: &std::path::Path) -> PolicySet {
    let token = dir.join("local.token");
    std::fs::File::create(&token)
        .unwrap()
        .write_all(LOCAL_TOKEN.as_bytes())
        .unwrap();
    let local_table = format!(
        "[local]\nbase_url = \"{}/v1\"\napi = \"openai\"\ntoken_file = \"{}\"\nmodels = {{ \"gpt-4o\" = \"llama-3.3-70b\", \"*\" = \"llama-3.1-8b\" }}\n",
        local.url(),
        token.display()
    );
    let default = format!(
        r#"team = "default"
default = "allow"
on_error = "route_local"
on_unscannable = "route_local"

[[rules]]
when = {{ category = "secret" }}
action = "block"

[[rules]]
when = {{ category = ["pii", "financial", "confidential"] }}
action = "route_local"

{local_table}"#
    );
    let redactors = format!(
        r#"team = "redactors"
on_error = "block"

[[rules]]
when = {{ category = ["pii", "financial"] }}
action = "redact"

[[rules]]
when = {{ category = "secret" }}
action = "block"

{local_table}"#
    );
    let strict = r#"team = "strict"
on_error = "block"
on_unscannable = "block"

[[rules]]
when = { category = ["pii", "financial", "secret"] }
action = "block"
"#;
    let redact_default = format!(
        "team = \"redact-default\"\ndefault = \"redact\"\non_error = \"block\"\n\n{local_table}"
    );
    PolicySet::from_sources([
        ("default.toml", default.as_str()),
        ("redactors.toml", redactors.as_str()),
        ("strict.toml", strict),
        ("redact-default.toml", redact_default.as_str()),
    ])
    .expect("test policies load")
}

async fn world() -> World {
    let external = Upstream::start("external").await;
    let local = Upstream::start("local").await;
    let dir = std::env::temp_dir().join(format!(
        "pr-layer-{}-{}",
        std::process::id(),
        local.addr.port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let set = Arc::new(policies(&local, &dir));
    World {
        external,
        local,
        _dir: TempDir(dir),
        set,
    }
}

impl World {
    fn router(&self) -> PrivacyRouter<Client> {
        self.layer().layer(client())
    }

    fn layer(&self) -> PrivacyRouterLayer {
        PrivacyRouterLayer::new(Arc::clone(&self.set)).decision_header(true)
    }

    fn request(&self, team: &str, path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
        Request::post(format!("{}{path}", self.external.url()))
            .header("content-type", "application/json")
            .header("authorization", EXTERNAL_AUTH)
            .header("x-api-key", "sk-ant-external")
            .header("openai-organization", "org-external")
            .header("anthropic-version", "2023-06-01")
            .header("cookie", "session=external")
            .header("x-team", team)
            .body(Full::new(body.into()))
            .unwrap()
    }
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
    decision: Option<Decision>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON answer")
    }
}

async fn send<S>(svc: &mut S, req: Request<Full<Bytes>>) -> Answer
where
    S: Service<
            Request<Full<Bytes>>,
            Response = http::Response<
                privacy_router::middleware::ResponseBody<hyper::body::Incoming>,
            >,
        >,
    S::Error: std::fmt::Debug,
{
    let response = svc.ready().await.unwrap().call(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        decision: parts.extensions.get::<Decision>().cloned(),
        headers: parts.headers,
        body,
    }
}

fn assert_detected(values: &[&str]) {
    let scanner = Scanner::builder().build().unwrap();
    for v in values {
        assert!(
            !scanner.scan(v).is_empty(),
            "test value of length {} is no longer detected",
            v.len()
        );
    }
}

/// Bodies for every API format with `v` in a prompt-bearing position: (path, body).
fn placements(v: &str) -> Vec<(&'static str, String)> {
    let s = |x: &str| serde_json::to_string(x).unwrap();
    let args = s(&json!({ "customer": v }).to_string());
    vec![
        ("/v1/chat/completions", json!({"model":"gpt-4o","messages":[{"role":"user","content":format!("Please help with {v} today")}]}).to_string()),
        ("/v1/chat/completions", json!({"model":"gpt-4o","messages":[{"role":"system","content":v},{"role":"user","content":"hi"}]}).to_string()),
        ("/v1/chat/completions", json!({"model":"gpt-4o","messages":[{"role":"developer","content":[{"type":"text","text":format!("note: {v}")}]}]}).to_string()),
        ("/v1/chat/completions", json!({"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"text","text":v}]}]}).to_string()),
        ("/v1/chat/completions", format!(r#"{{"model":"gpt-4o","messages":[{{"role":"assistant","content":null,"tool_calls":[{{"id":"call_1","type":"function","function":{{"name":"lookup","arguments":{args}}}}}]}}]}}"#)),
        ("/v1/chat/completions", json!({"model":"gpt-4o","messages":[{"role":"tool","tool_call_id":"call_1","content":format!("result: {v}")}]}).to_string()),
        ("/v1/chat/completions", json!({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","description":format!("call for {v}")}}]}).to_string()),
        ("/v1/responses", json!({"model":"gpt-4o","input":format!("summarise {v}")}).to_string()),
        ("/v1/responses", json!({"model":"gpt-4o","instructions":v,"input":"hello"}).to_string()),
        ("/v1/responses", json!({"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_text","text":v}]}]}).to_string()),
        ("/v1/responses", json!({"model":"gpt-4o","previous_response_id":"resp_1","input":[{"type":"function_call_output","call_id":"c","output":v}]}).to_string()),
        ("/v1/completions", json!({"model":"gpt-3.5-turbo-instruct","prompt":["first", format!("then {v}")]}).to_string()),
        ("/v1/embeddings", json!({"model":"text-embedding-3-small","input":["a", v]}).to_string()),
        ("/v1/messages", json!({"model":"claude-sonnet-4-5","max_tokens":64,"system":format!("ctx {v}"),"messages":[{"role":"user","content":"hi"}]}).to_string()),
        ("/v1/messages", json!({"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":[{"type":"text","text":v}]}]}).to_string()),
        ("/v1/messages", json!({"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"q":{"deep":v}}}]}]}).to_string()),
        ("/v1/messages", json!({"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":v}]}]}]}).to_string()),
        ("/v1/some/other/json", json!({"anything":{"nested":[v]}}).to_string()),
    ]
}

#[tokio::test]
async fn clean_prompts_reach_the_external_provider_byte_for_byte() {
    let w = world().await;
    let mut svc = w.router();
    let body = r#"{ "model": "gpt-4o",  "messages": [{"role":"user","content":"Summarise the roadmap."}], "temperature": 0.70 }"#;
    let a = send(&mut svc, w.request("default", "/v1/chat/completions", body)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["served_by"], "external");
    assert_eq!(a.headers["x-privacy-router-action"], "allow");
    assert_eq!(a.decision.unwrap().action(), Action::Allow);
    let got = w.external.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, body.as_bytes(), "forwarded unchanged");
    assert_eq!(got[0].headers["authorization"], EXTERNAL_AUTH);
    assert_eq!(w.local.count(), 0);
}

#[tokio::test]
async fn personal_data_in_every_format_stays_in_house() {
    assert_detected(&PII);
    let w = world().await;
    let mut svc = w.router();
    let mut sent = 0;
    for v in PII {
        for (path, body) in placements(v) {
            let a = send(&mut svc, w.request("default", path, body.clone())).await;
            sent += 1;
            assert_eq!(a.status, StatusCode::OK, "{path}");
            assert_eq!(a.json()["served_by"], "local", "{path}: {body:.60}");
            let got = w.local.received();
            let last = got.last().unwrap();
            let endpoint = path.strip_prefix("/v1").unwrap();
            assert_eq!(last.path, format!("/v1{endpoint}"));
            assert_eq!(
                last.headers["authorization"],
                format!("Bearer {LOCAL_TOKEN}")
            );
            assert_eq!(last.headers["host"], w.local.addr.to_string());
            for gone in [
                "x-api-key",
                "openai-organization",
                "anthropic-version",
                "cookie",
            ] {
                assert!(
                    !last.headers.contains_key(gone),
                    "{gone} reached the local model"
                );
            }
            let json = last.json();
            if let Some(model) = json.get("model").and_then(Value::as_str) {
                assert!(model.starts_with("llama-"), "model mapped: {model}");
            }
            assert_eq!(last.headers["content-length"], last.body.len().to_string());
        }
    }
    assert_eq!(w.local.count(), sent);
    assert_eq!(
        w.external.count(),
        0,
        "the external provider received a sensitive prompt"
    );
    let mapped = w.local.received()[0].json();
    assert_eq!(
        mapped["model"], "llama-3.3-70b",
        "exact model names map first"
    );
}

#[tokio::test]
async fn secrets_are_blocked_before_any_server_sees_them() {
    assert_detected(&SECRETS);
    let w = world().await;
    let mut svc = w.router();
    for v in SECRETS {
        for (path, body) in placements(v) {
            let a = send(&mut svc, w.request("default", path, body)).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
            assert_eq!(a.headers["x-privacy-router-action"], "block");
            let text = String::from_utf8_lossy(&a.body).into_owned();
            assert!(!text.contains(v), "the error names the value");
            let json = a.json();
            // Anthropic's shape on its path, and on a path the layer does not know when
            // the request carries `anthropic-version` (these all do).
            if path == "/v1/messages" || path == "/v1/some/other/json" {
                assert_eq!(json["type"], "error");
                assert_eq!(json["error"]["type"], "permission_error");
            } else {
                assert_eq!(json["error"]["code"], "blocked_by_privacy_policy");
                assert!(
                    json["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("default")
                );
            }
        }
    }
    assert_eq!(w.external.count() + w.local.count(), 0);
}

#[tokio::test]
async fn redaction_replaces_values_with_stable_placeholders() {
    assert_detected(&PII);
    let w = world().await;
    let mut svc = w.router();
    let body = json!({"model":"gpt-4o","messages":[
        {"role":"user","content":format!("Mail {} and cc {}; SSN {}", PII[0], PII[0], PII[1])},
        {"role":"user","content":format!("again {}", PII[0])}]})
    .to_string();
    let a = send(
        &mut svc,
        w.request("redactors", "/v1/chat/completions", body),
    )
    .await;
    assert_eq!(a.json()["served_by"], "external");
    assert_eq!(a.headers["x-privacy-router-action"], "redact");
    let got = w.external.received();
    let sent = got[0].json();
    assert_eq!(
        sent["messages"][0]["content"],
        "Mail [EMAIL_1] and cc [EMAIL_1]; SSN [US_SSN_1]"
    );
    assert_eq!(sent["messages"][1]["content"], "again [EMAIL_1]");
    assert_eq!(sent["model"], "gpt-4o");
    for v in PII {
        assert!(!got[0].text().contains(v));
    }
    assert_eq!(w.local.count(), 0);

    // Generated prompts: whatever the placement, nothing detected survives redaction.
    let scanner = Scanner::builder().build().unwrap();
    for v in PII {
        for (path, body) in placements(v) {
            let a = send(&mut svc, w.request("redactors", path, body)).await;
            assert_eq!(a.status, StatusCode::OK, "{path}");
            let last = w.external.received().pop().unwrap();
            for s in json_strings(&last.json()) {
                assert!(
                    scanner
                        .scan(&s)
                        .iter()
                        .all(|f| f.category() != privacy_router::scan::Category::Pii
                            && f.category() != privacy_router::scan::Category::Financial),
                    "{path}: a value survived"
                );
            }
        }
    }
}

fn json_strings(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

/// Regression: with `default = "redact"` every request failed the post-redaction check
/// and went to `on_error`.
#[tokio::test]
async fn a_redact_default_redacts_and_forwards() {
    let w = world().await;
    let mut svc = w.router();
    let body = json!({"model":"gpt-4o","messages":[{"role":"user","content":format!("write to {}", PII[0])}]}).to_string();
    let a = send(
        &mut svc,
        w.request("redact-default", "/v1/chat/completions", body),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["served_by"], "external");
    assert_eq!(
        w.external.received()[0].json()["messages"][0]["content"],
        "write to [EMAIL_1]"
    );
}

/// Regression: non-ASCII prompts made the data-URL check panic inside inspection.
#[tokio::test]
async fn non_ascii_prompts_are_inspected_not_failed() {
    let w = world().await;
    let mut svc = w.router();
    let body =
        json!({"model":"gpt-4o","messages":[{"role":"user","content":"こんにちは、元気ですか"}]})
            .to_string();
    let a = send(
        &mut svc,
        w.request("strict", "/v1/chat/completions", body.clone()),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "strict's on_error would have blocked it"
    );
    assert_eq!(w.external.received()[0].body, body.as_bytes());
}

#[tokio::test]
async fn streamed_responses_arrive_event_by_event() {
    let w = world().await;
    let mut svc = w.router();
    let body = json!({"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":format!("hi {}", PII[0])}]}).to_string();
    let response = svc
        .ready()
        .await
        .unwrap()
        .call(w.request("default", "/v1/chat/completions", body))
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut events = Vec::new();
    // Each event after the first is only sent once this side has seen the previous one:
    // a buffered response would stall here, and the timeout turns that into a failure.
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                events.push(String::from_utf8(data.to_vec()).unwrap());
                w.local.next_event.notify_one();
            }
        }
    })
    .await
    .expect("the stream was buffered instead of passed through");
    let all = events.concat();
    assert!(
        all.contains("\"chunk\":2") && all.ends_with("data: [DONE]\n\n"),
        "{all}"
    );
    assert!(events.len() >= 3, "arrived in {} frames", events.len());
}

/// Regression: numbers were never scanned, and a value was scanned without its key, so
/// a card number as a JSON number or an SSN under an `ssn` key in a tool call's input
/// reached the external provider.
#[tokio::test]
async fn structured_values_are_read_with_their_keys_numbers_included() {
    let w = world().await;
    let mut svc = w.router();
    let tool_use = |input: Value| {
        json!({"model":"claude","max_tokens":5,"messages":[
            {"role":"user","content":"charge it"},
            {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"charge","input":input}]}]})
        .to_string()
    };
    let schema = json!({"model":"gpt-4o","messages":[{"role":"user","content":"pick"}],
        "tools":[{"type":"function","function":{"name":"pick","parameters":{"type":"object",
            "properties":{"card":{"type":"integer","enum":[4539148803436467_u64]}}}}}]})
    .to_string();
    // Written with an exponent, as a serialiser of floats may write it.
    let exponent = tool_use(json!({"card_number": 0})).replace(
        r#""card_number":0"#,
        r#""card_number":4.539148803436467e15"#,
    );
    for (path, body) in [
        (
            "/v1/messages",
            tool_use(json!({"card_number": 4539148803436467_u64})),
        ),
        ("/v1/messages", exponent),
        ("/v1/messages", tool_use(json!({"ssn": "536221947"}))),
        (
            "/v1/messages",
            tool_use(json!({"ids": {"ssn": [536221947]}})),
        ),
        // An `exclude` word as the key hides nothing the value alone shows.
        (
            "/v1/messages",
            tool_use(json!({"sku": "4539 1488 0343 6467"})),
        ),
        ("/v1/chat/completions", schema),
    ] {
        let a = send(&mut svc, w.request("default", path, body.clone())).await;
        assert_eq!(a.json()["served_by"], "local", "{body}");
    }
    assert_eq!(w.external.count(), 0);

    // Short numbers (parameters, counts, token ids) and keys without context stay clean.
    let clean = tool_use(json!({"count": 3, "tokens": [101, 2023, 199_999], "n": 536221947}));
    let a = send(&mut svc, w.request("default", "/v1/messages", clean)).await;
    assert_eq!(a.json()["served_by"], "external");
    // A top-level number is an API parameter: a `seed` that passes Luhn is no card.
    let seeded = json!({"model":"gpt-4o","seed":4539148803436467_u64,
        "messages":[{"role":"user","content":"hi"}]})
    .to_string();
    let a = send(
        &mut svc,
        w.request("default", "/v1/chat/completions", seeded),
    )
    .await;
    assert_eq!(a.json()["served_by"], "external");

    // A redacted number becomes a placeholder string; the body stays valid JSON.
    let a = send(
        &mut svc,
        w.request(
            "redactors",
            "/v1/messages",
            tool_use(json!({"card": 4539148803436467_u64})),
        ),
    )
    .await;
    assert_eq!(a.headers["x-privacy-router-action"], "redact");
    let sent = w.external.received().pop().unwrap().json();
    assert_eq!(
        sent["messages"][1]["content"][0]["input"]["card"],
        "[PAYMENT_CARD_1]"
    );
}

#[tokio::test]
async fn unscannable_parts_follow_on_unscannable() {
    let w = world().await;
    let mut svc = w.router();
    let body = json!({"model":"gpt-4o","messages":[{"role":"user","content":[
        {"type":"text","text":"what is in this picture?"},
        {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="}}]}]})
    .to_string();
    let a = send(
        &mut svc,
        w.request("default", "/v1/chat/completions", body.clone()),
    )
    .await;
    assert_eq!(a.json()["served_by"], "local");
    let a = send(&mut svc, w.request("strict", "/v1/chat/completions", body)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(w.external.count(), 0);
}

#[tokio::test]
async fn teams_come_from_the_extension_before_the_header() {
    let w = world().await;
    let mut svc = w.router();
    let body = json!({"model":"gpt-4o","messages":[{"role":"user","content":PII[0]}]}).to_string();
    let mut req = w.request("default", "/v1/chat/completions", body.clone());
    req.extensions_mut()
        .insert(privacy_router::policy::Team::new("strict"));
    let a = send(&mut svc, req).await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "the extension's team (strict) decided"
    );
    let a = send(
        &mut svc,
        w.request("no-such-team", "/v1/chat/completions", body),
    )
    .await;
    assert_eq!(
        a.json()["served_by"],
        "local",
        "unknown teams get the default policy"
    );
}

// ---- fail closed: one fault-injection test per way inspection can fail ----

async fn expect_on_error(w: &World, team: &str, req: Request<Full<Bytes>>, kind: &str) -> Answer {
    let mut svc = w.router();
    let a = send(&mut svc, req).await;
    assert_eq!(
        w.external.count(),
        0,
        "{kind}: reached the external provider"
    );
    let _ = team;
    a
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn malformed_json_on_a_known_path_fails_closed() {
    let w = world().await;
    let broken = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"jane.doe@acme-mail.de"#;
    let a = expect_on_error(
        &w,
        "default",
        w.request("default", "/v1/chat/completions", broken),
        "malformed",
    )
    .await;
    assert_eq!(
        a.json()["served_by"],
        "local",
        "default's on_error is route_local"
    );
    assert_eq!(w.local.received()[0].body, broken.as_bytes());
    let a = expect_on_error(
        &w,
        "strict",
        w.request("strict", "/v1/chat/completions", broken),
        "malformed",
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["code"], "uninspectable_request");
    let a = expect_on_error(
        &w,
        "strict",
        w.request("strict", "/v1/messages", broken),
        "malformed",
    )
    .await;
    assert_eq!(a.json()["type"], "error", "Anthropic's error shape");
}

#[tokio::test]
async fn oversized_bodies_fail_closed_without_being_buffered() {
    let w = world().await;
    let big = json!({"model":"gpt-4o","messages":[{"role":"user","content":"x".repeat(4096)}]})
        .to_string();
    let layer = w.layer().body_limit(1024);
    let mut svc = layer.clone().layer(client());
    let a = send(
        &mut svc,
        w.request("strict", "/v1/chat/completions", big.clone()),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let a = send(
        &mut svc,
        w.request("default", "/v1/chat/completions", big.clone()),
    )
    .await;
    assert_eq!(
        a.json()["served_by"],
        "local",
        "route_local streams it to the target unread"
    );
    assert_eq!(w.local.received()[0].body, big.as_bytes());
    assert_eq!(w.external.count(), 0);
}

#[tokio::test]
async fn encodings_are_decoded_or_fail_closed() {
    let w = world().await;
    let body =
        json!({"model":"gpt-4o","messages":[{"role":"user","content":format!("mail {}", PII[0])}]})
            .to_string();
    let mut svc = w.router();

    let mut req = w.request("default", "/v1/chat/completions", gzip(body.as_bytes()));
    req.headers_mut()
        .insert("content-encoding", "gzip".parse().unwrap());
    let a = send(&mut svc, req).await;
    assert_eq!(
        a.json()["served_by"],
        "local",
        "the gzip body was decoded and inspected"
    );
    let got = w.local.received();
    assert!(!got[0].headers.contains_key("content-encoding"));
    assert!(got[0].text().contains("llama-3.3-70b"));

    let clean =
        json!({"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}).to_string();
    let zipped = gzip(clean.as_bytes());
    let mut req = w.request("default", "/v1/chat/completions", zipped.clone());
    req.headers_mut()
        .insert("content-encoding", "gzip".parse().unwrap());
    let a = send(&mut svc, req).await;
    assert_eq!(a.json()["served_by"], "external");
    assert_eq!(
        w.external.received()[0].body,
        zipped,
        "allowed bodies go out as they came"
    );
    assert_eq!(w.external.received()[0].headers["content-encoding"], "gzip");

    for (encoding, bytes) in [
        ("compress", gzip(body.as_bytes())),
        ("gzip", b"not really gzip".to_vec()),
    ] {
        let mut req = w.request("strict", "/v1/chat/completions", bytes);
        req.headers_mut()
            .insert("content-encoding", encoding.parse().unwrap());
        let a = send(&mut svc, req).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{encoding}");
    }
    // Regression: UTF-16 text was read as UTF-8, a NUL between letters, and allowed.
    let utf16: Vec<u8> = format!("mail {}", PII[0])
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut req = w.request("strict", "/v1/notes", utf16.clone());
    req.headers_mut().insert(
        "content-type",
        "text/plain; charset=UTF-16LE".parse().unwrap(),
    );
    let a = send(&mut svc, req).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let message = a.json()["error"]["message"].to_string();
    assert!(message.contains("unsupported-charset"), "{message}");
    // Undeclared, it is no text either: a NUL between letters.
    let mut req = w.request("strict", "/v1/notes", utf16);
    req.headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    let a = send(&mut svc, req).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(w.external.count(), 1, "only the clean request went out");
}

struct NoPolicy;

impl PolicySource for NoPolicy {
    fn current(&self) -> Option<Arc<PolicySet>> {
        None
    }
}

#[tokio::test]
async fn no_policy_in_force_means_nothing_is_sent() {
    let w = world().await;
    let mut svc = PrivacyRouterLayer::new(NoPolicy).layer(client());
    let a = send(
        &mut svc,
        w.request(
            "default",
            "/v1/chat/completions",
            r#"{"model":"gpt-4o","messages":[]}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.json()["error"]["code"], "privacy_policy_unavailable");
    assert_eq!(w.external.count() + w.local.count(), 0);
}

fn panic_when_asked(parts: &http::request::Parts) {
    if parts.headers.contains_key("x-test-panic") {
        panic!("injected fault");
    }
}

#[tokio::test]
async fn a_panic_inside_inspection_fails_closed() {
    let w = world().await;
    let mut svc = w.layer().inspection_hook(panic_when_asked).layer(client());
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}"#;
    for (team, expect) in [
        ("default", StatusCode::OK),
        ("strict", StatusCode::BAD_REQUEST),
    ] {
        let mut req = w.request(team, "/v1/chat/completions", body);
        req.headers_mut()
            .insert("x-test-panic", "1".parse().unwrap());
        let a = send(&mut svc, req).await;
        assert_eq!(a.status, expect, "{team}");
    }
    assert_eq!(w.local.count(), 1, "default's on_error routed it in-house");
    assert_eq!(w.external.count(), 0);
    let a = send(&mut svc, w.request("default", "/v1/chat/completions", body)).await;
    assert_eq!(
        a.json()["served_by"],
        "external",
        "the service keeps working after a panic"
    );
}

#[tokio::test]
async fn inspection_report_goes_to_the_inner_service() {
    let w = world().await;
    let seen = Arc::new(std::sync::Mutex::new(None));
    let seen2 = Arc::clone(&seen);
    let inner = tower::service_fn(
        move |req: Request<privacy_router::middleware::RequestBody<Full<Bytes>>>| {
            let seen = Arc::clone(&seen2);
            async move {
                *seen.lock().unwrap() = req
                    .extensions()
                    .get::<InspectionReport>()
                    .map(|r| (r.format, r.scanned_bytes));
                let d = req.extensions().get::<Decision>().map(Decision::action);
                Ok::<_, std::convert::Infallible>(http::Response::new(format!("{d:?}")))
            }
        },
    );
    let mut svc = w.layer().layer(inner);
    let req = w.request(
        "default",
        "/v1/embeddings",
        r#"{"model":"m","input":["abc","de"]}"#,
    );
    let response = svc.ready().await.unwrap().call(req).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "Some(Allow)");
    let (format, bytes) = seen.lock().unwrap().unwrap();
    assert_eq!(format.as_str(), "openai-embeddings");
    // Every string is scanned, keys included: "model" "m" "input" "abc" "de".
    assert_eq!(bytes, 16);
}

#[tokio::test]
async fn a_thousand_concurrent_requests_are_each_decided_and_delivered() {
    assert_detected(&PII);
    let w = world().await;
    let svc = w.router();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000usize {
        let mut svc = svc.clone();
        let (kind, content) = match i % 3 {
            0 => ("clean", format!("request {i}: summarise the roadmap")),
            1 => (
                "pii",
                format!("request {i}: write to {}", PII[i % PII.len()]),
            ),
            _ => (
                "secret",
                format!("request {i}: key {}", SECRETS[i % SECRETS.len()]),
            ),
        };
        let req = w.request(
            "default",
            "/v1/chat/completions",
            json!({"model":"gpt-4o","messages":[{"role":"user","content":content}]}).to_string(),
        );
        tasks.spawn(async move {
            let a = send(&mut svc, req).await;
            (i, kind, a.status, a.body)
        });
    }
    let mut counts = [0usize; 3];
    while let Some(done) = tasks.join_next().await {
        let (i, kind, status, body) = done.unwrap();
        let text = String::from_utf8_lossy(&body).into_owned();
        match kind {
            "clean" => {
                assert!(text.contains("external"), "request {i}");
                counts[0] += 1;
            }
            "pii" => {
                assert!(text.contains("local"), "request {i}");
                counts[1] += 1;
            }
            _ => {
                assert_eq!(status, StatusCode::FORBIDDEN, "request {i}");
                counts[2] += 1;
            }
        }
    }
    assert_eq!(counts, [334, 333, 333]);
    assert_eq!(w.external.count(), 334);
    assert_eq!(w.local.count(), 333);
    let sensitive: Vec<String> = w.external.received().iter().map(|r| r.text()).collect();
    assert!(
        sensitive
            .iter()
            .all(|t| PII.iter().chain(&SECRETS).all(|v| !t.contains(v)))
    );
}

#[tokio::test]
async fn works_under_service_builder_and_buffer() {
    let w = world().await;
    let svc = ServiceBuilder::new()
        .buffer(64)
        .layer(w.layer())
        .service(client());
    let mut handles = Vec::new();
    for i in 0..50 {
        let mut svc = svc.clone();
        let content = if i % 2 == 0 {
            "hello".to_string()
        } else {
            format!("mail {}", PII[0])
        };
        let req = w.request(
            "default",
            "/v1/chat/completions",
            json!({"model":"gpt-4o","messages":[{"role":"user","content":content}]}).to_string(),
        );
        handles.push(tokio::spawn(async move {
            let r = svc.ready().await.unwrap().call(req).await.unwrap();
            r.into_body().collect().await.unwrap().to_bytes()
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(w.external.count(), 25);
    assert_eq!(w.local.count(), 25);
}

/// A self-hosted model that accepts connections and never answers.
async fn hanging_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

#[tokio::test]
async fn a_silent_local_model_times_out_in_the_api_error_shape() {
    assert_detected(&PII);
    let external = Upstream::start("external").await;
    let local = hanging_server().await;
    let policy = format!(
        r#"team = "default"
on_error = "block"

[[rules]]
when = {{ category = "pii" }}
action = "route_local"

[local]
base_url = "http://{local}/v1"
timeout = "300ms"
"#
    );
    let set = Arc::new(PolicySet::from_sources([("default.toml", policy)]).unwrap());
    let mut svc = PrivacyRouterLayer::new(set).layer(client());
    let body = json!({"model":"gpt-4o","messages":[{"role":"user","content":PII[0]}]}).to_string();
    let req = Request::post(format!("{}/v1/chat/completions", external.url()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let a = tokio::time::timeout(Duration::from_secs(20), send(&mut svc, req))
        .await
        .expect("the layer's timeout fired");
    assert_eq!(a.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(a.json()["error"]["code"], "local_model_timeout");

    // Regression: on a path the layer does not know, an Anthropic client got OpenAI's
    // shape, because routing had removed the `anthropic-version` the shape is read from.
    let body = json!({"prompt": PII[0]}).to_string();
    let req = Request::post(format!("{}/v1/some/other/json", external.url()))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let a = tokio::time::timeout(Duration::from_secs(20), send(&mut svc, req))
        .await
        .expect("the layer's timeout fired");
    assert_eq!(a.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(a.json()["type"], "error", "{:?}", a.body);
    assert_eq!(external.count(), 0);
}

/// A client body that sends its first bytes and then nothing more, ever.
struct Stalled(Option<Bytes>);

impl http_body::Body for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match self.0.take() {
            Some(first) => std::task::Poll::Ready(Some(Ok(http_body::Frame::data(first)))),
            None => std::task::Poll::Pending,
        }
    }
}

#[tokio::test]
async fn a_body_that_stops_arriving_times_out_and_is_sent_nowhere() {
    let w = world().await;
    let client: hyper_util::client::legacy::Client<
        _,
        privacy_router::middleware::RequestBody<Stalled>,
    > = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let mut svc = w
        .layer()
        .body_timeout(Duration::from_millis(200))
        .layer(client);
    for (path, code_at) in [
        ("/v1/chat/completions", "/error/code"),
        ("/v1/messages", "/error/type"),
    ] {
        let req = Request::post(format!("{}{path}", w.external.url()))
            .header("content-type", "application/json")
            .header("content-length", "4096")
            .header("x-team", "default")
            .body(Stalled(Some(Bytes::from_static(
                b"{\"model\": \"gpt-4o\", \"mess",
            ))))
            .unwrap();
        let response = tokio::time::timeout(
            Duration::from_secs(20),
            svc.ready().await.unwrap().call(req),
        )
        .await
        .expect("the body timeout fired")
        .unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT, "{path}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: Value = serde_json::from_slice(&body).expect("an API-shaped error");
        let expected = if path == "/v1/messages" {
            "invalid_request_error"
        } else {
            "request_body_timeout"
        };
        assert_eq!(json.pointer(code_at).unwrap(), expected, "{path}: {json}");
    }
    assert_eq!(w.external.count(), 0);
    assert_eq!(w.local.count(), 0);
}
