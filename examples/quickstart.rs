//! The quickstart: the whole path on embedded defaults, with nothing to set up.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Two HTTP servers start on 127.0.0.1: one stands in for the external provider
//! (api.openai.com), one for the company's self-hosted model (vLLM, llama.cpp, Ollama).
//! A hyper client goes through `PrivacyRouterLayer` with the example policies in
//! `examples/policies/`, and five prompts from three teams are sent. For each, the
//! quickstart prints the decision and which server received what; then it summarises and
//! verifies the audit log the layer wrote. Values are never printed.

use std::convert::Infallible;
use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use privacy_router::audit::{Auditor, FileSink, FingerprintKey, verify_files};
use privacy_router::middleware::{PrivacyRouterLayer, RequestBody};
use privacy_router::policy::{Decision, PolicySet};
use privacy_router::scan::Scanner;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt};

/// (team, what the prompt holds, prompt)
const PROMPTS: [(&str, &str, &str); 5] = [
    (
        "research",
        "nothing sensitive",
        "Summarise our Q3 roadmap in three bullet points for the all-hands.",
    ),
    (
        "support",
        "an email address",
        "Draft a polite reply to jane.doe@acme-mail.de about her delayed refund.",
    ),
    (
        "research",
        "an AWS key",
        "Why does boto3 reject AKIAZ7Q4M2N5P3R6T2VX with SignatureDoesNotMatch?",
    ),
    (
        "payments",
        "a card number",
        "Customer says card 4539 1488 0343 6467 was charged twice; write an apology.",
    ),
    (
        "research",
        "a codename",
        "Write release notes for the Bluefin beta, under 200 words.",
    ),
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let external = StandIn::start("external provider").await?;
    let local = StandIn::start("self-hosted model").await?;
    println!("privacy-router quickstart");
    println!(
        "  stand-in for the EXTERNAL provider (api.openai.com): http://{}",
        external.addr
    );
    println!(
        "  stand-in for the SELF-HOSTED model (vLLM, Ollama):   http://{}\n",
        local.addr
    );

    // The example policies, with their `[local]` target pointed at the stand-in.
    let dir = policies_for(&local)?;
    let policies = PolicySet::load_dir(&dir.0).map_err(|d| d.to_string())?;
    // The audit log: one record per request, written before anything leaves.
    // Kept after the run, so that `privacy-router audit` can read it; started afresh.
    let log = std::env::temp_dir().join("privacy-router-quickstart.audit.jsonl");
    let _ = std::fs::remove_file(&log);
    let key =
        FingerprintKey::from_bytes(b"quickstart fingerprint key, not for production".to_vec())?;
    let auditor = Auditor::new(FileSink::new(&log), key);
    let http = Client::builder(TokioExecutor::new()).build_http::<RequestBody<Full<Bytes>>>();
    let mut client = ServiceBuilder::new()
        .layer(PrivacyRouterLayer::new(Arc::new(policies)).audit(auditor.clone()))
        .service(http);

    for (team, holds, prompt) in PROMPTS {
        let before = (external.count(), local.count());
        let body = serde_json::json!({
            "model": "gpt-4o",
            "messages": [{ "role": "user", "content": prompt }],
        });
        let request = Request::post(format!("http://{}/v1/chat/completions", external.addr))
            .header("authorization", "Bearer sk-external-provider-key")
            .header("content-type", "application/json")
            .header("x-team", team)
            .body(Full::new(Bytes::from(body.to_string())))?;
        let response = client.ready().await?.call(request).await?;
        let decision = response.extensions().get::<Decision>().cloned();
        let status = response.status();
        response.into_body().collect().await?;

        println!("[{team}] a prompt with {holds}");
        if let Some(d) = &decision {
            let found: Vec<String> = d
                .reasons()
                .iter()
                .map(|r| format!("{} x{}", r.detector(), r.count()))
                .collect();
            let found = if found.is_empty() {
                "nothing found".to_string()
            } else {
                found.join(", ")
            };
            println!("    decision:  {} ({found})", d.action());
        }
        let went = match (external.count() > before.0, local.count() > before.1) {
            (true, _) => {
                let r = external.last();
                format!(
                    "EXTERNAL provider, model {}, with the provider's key",
                    r.model
                )
            }
            (_, true) => {
                let r = local.last();
                format!(
                    "SELF-HOSTED model, model {}, provider key removed: {}",
                    r.model, !r.had_provider_key
                )
            }
            _ => format!("nobody: answered {status} by the layer"),
        };
        println!("    received:  {went}\n");
    }

    // What left the company: scan everything the external stand-in received.
    let scanner = Scanner::builder().build()?;
    let leaked: usize = external
        .all()
        .iter()
        .map(|r| scanner.scan(&r.body).len())
        .sum();
    println!(
        "The external provider received {} request(s) holding {leaked} sensitive value(s); \
         the self-hosted model received {}.\n",
        external.count(),
        local.count()
    );

    // The audit log: what was decided, and proof that nobody edited it.
    auditor.shutdown()?;
    let text = std::fs::read_to_string(&log)?;
    let mut actions: std::collections::BTreeMap<String, usize> = Default::default();
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line)?;
        if let Some(action) = record["action"].as_str() {
            *actions.entry(action.to_string()).or_default() += 1;
        }
    }
    let summary: Vec<String> = actions.iter().map(|(a, n)| format!("{a} {n}")).collect();
    println!("audit log {}: {}", log.display(), summary.join(", "));
    let verified = verify_files(&[&log])?;
    println!(
        "audit verify: {} ({} records, chain head {})",
        if verified.is_intact() {
            "intact"
        } else {
            "BROKEN"
        },
        verified.records,
        verified
            .head
            .as_deref()
            .map_or("-", |h| &h[..16.min(h.len())])
    );
    println!(
        "review it: cargo run -- audit stats {} --by action",
        log.display()
    );
    Ok(())
}

/// What a stand-in server saw of one request.
#[derive(Clone)]
struct Seen {
    model: String,
    body: String,
    had_provider_key: bool,
}

/// A loopback server that answers like an OpenAI-compatible API and records requests.
struct StandIn {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StandIn {
    async fn start(name: &'static str) -> std::io::Result<StandIn> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = Arc::clone(&record);
                let service = service_fn(move |req: Request<Incoming>| {
                    let record = Arc::clone(&record);
                    async move { Ok::<_, Infallible>(answer(name, req, record).await) }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(StandIn { addr, seen })
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request")
    }

    fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(
    name: &str,
    req: Request<Incoming>,
    record: Arc<Mutex<Vec<Seen>>>,
) -> Response<Full<Bytes>> {
    let had_provider_key = req
        .headers()
        .get("authorization")
        .is_some_and(|v| v.as_bytes().starts_with(b"Bearer sk-external"));
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = json["model"].as_str().unwrap_or("?").to_string();
    record.lock().unwrap().push(Seen {
        model: model.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        had_provider_key,
    });
    let reply = serde_json::json!({
        "object": "chat.completion",
        "model": model,
        "choices": [{ "index": 0, "finish_reason": "stop",
                      "message": { "role": "assistant", "content": format!("(answer from the {name})") } }],
    });
    Response::new(Full::new(Bytes::from(reply.to_string())))
}

/// A temporary copy of `examples/policies/` whose base points at the local stand-in and
/// reads its token from a file.
struct TempPolicies(PathBuf);

impl Drop for TempPolicies {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn policies_for(local: &StandIn) -> std::io::Result<TempPolicies> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let dir =
        std::env::temp_dir().join(format!("privacy-router-quickstart-{}", std::process::id()));
    copy_dir(&source, &dir)?;
    let token = dir.join("local-token");
    std::fs::write(&token, "quickstart-local-token\n")?;
    let base = std::fs::read_to_string(dir.join("base.toml"))?
        .replace(
            "http://llm.internal:8000/v1",
            &format!("http://{}/v1", local.addr),
        )
        .replace(
            "token_env = \"LOCAL_LLM_TOKEN\"",
            &format!("token_file = {:?}", token.display().to_string()),
        );
    std::fs::write(dir.join("base.toml"), base)?;
    Ok(TempPolicies(dir))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
