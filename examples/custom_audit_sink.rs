//! A custom audit sink: where records go is yours to choose.
//!
//! ```text
//! cargo run --example custom_audit_sink
//! ```
//!
//! This sink keeps records in a bounded ring in memory and prints each one as it is
//! committed, the way a sink that ships records to a message queue or a SIEM would: it
//! buffers in `append`, makes the batch durable in `commit` (here: prints it), and on
//! start tells the auditor where the chain it continues ends (here: nowhere, a new
//! chain). A sink that fails makes the layer fail closed: the request gets its team's
//! `on_error`, never a silent forward.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::error::Error;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use privacy_router::audit::{AuditError, Auditor, FingerprintKey, Recovery, SealedRecord, Sink};
use privacy_router::middleware::{PrivacyRouterLayer, RequestBody};
use privacy_router::policy::PolicySet;
use tower::{Layer, ServiceExt};

/// Keeps the last `capacity` records and prints each batch when it is committed.
struct RingSink {
    pending: Vec<String>,
    ring: Arc<Mutex<VecDeque<String>>>,
    capacity: usize,
}

impl Sink for RingSink {
    fn recover(&mut self) -> Result<Recovery, AuditError> {
        // A sink that can read back its last record returns its seq and hash here, so
        // the chain continues across restarts; this one starts a new chain.
        Ok(Recovery::new(None))
    }

    fn append(&mut self, record: &SealedRecord<'_>) -> Result<(), AuditError> {
        // One line of JSON: ids, counts, fingerprints and hashes, never prompt text.
        let line = String::from_utf8_lossy(record.line())
            .trim_end()
            .to_string();
        self.pending.push(line);
        Ok(())
    }

    fn commit(&mut self) -> Result<(), AuditError> {
        let mut ring = self.ring.lock().expect("ring lock");
        for line in self.pending.drain(..) {
            println!("audit> {line}");
            if ring.len() == self.capacity {
                ring.pop_front();
            }
            ring.push_back(line);
        }
        Ok(())
    }
}

const POLICY: &str = r#"
team = "default"
on_error = "block"

[[rules]]
when = { category = "secret" }
action = "block"

[[rules]]
when = { category = "pii" }
action = "redact"
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let ring = Arc::new(Mutex::new(VecDeque::new()));
    let sink = RingSink {
        pending: Vec::new(),
        ring: Arc::clone(&ring),
        capacity: 100,
    };
    let key = FingerprintKey::from_bytes(b"example fingerprint key, not for production".to_vec())?;
    let auditor = Auditor::new(sink, key);

    // Any inner service will do; this one answers at once.
    let inner = tower::service_fn(|_req: Request<RequestBody<Full<Bytes>>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
    });
    let policies = Arc::new(PolicySet::from_sources([("default.toml", POLICY)])?);
    let service = PrivacyRouterLayer::new(policies)
        .audit(auditor.clone())
        .layer(inner);

    for prompt in [
        "Summarise the release notes.",
        "Reply to jane.doe@acme-mail.de about the invoice.",
        "Why is AKIAZ7Q4M2N5P3R6T2VX rejected?",
    ] {
        let body = serde_json::json!({
            "model": "gpt-4o",
            "messages": [{ "role": "user", "content": prompt }],
        });
        let request = Request::post("https://api.openai.com/v1/chat/completions")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let response = service.clone().oneshot(request).await?;
        println!("request -> {}", response.status());
    }

    auditor.shutdown()?;
    println!(
        "{} records kept in the ring",
        ring.lock().expect("ring lock").len()
    );
    Ok(())
}
