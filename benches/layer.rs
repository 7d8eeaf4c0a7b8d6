//! The layer's added time over a pass-through, for a 4 KB and a 1 MB chat body, with the
//! full default detector set.
//!
//! ```text
//! cargo bench --bench layer
//! ```
//!
//! The inner service answers at once without I/O, so the difference between the two
//! benchmarks of a pair is what the layer adds: buffering, extraction, scanning,
//! deciding.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use privacy_router::middleware::{PrivacyRouterLayer, RequestBody};
use privacy_router::policy::PolicySet;
use tower::{Layer, Service, ServiceExt};

const POLICY: &str = r#"
team = "default"
on_error = "route_local"

[[rules]]
when = { category = "secret" }
action = "block"

[[rules]]
when = { category = ["pii", "financial"] }
action = "route_local"

[local]
base_url = "http://127.0.0.1:9/v1"
models = { "*" = "llama-3.1-8b" }
"#;

/// A chat body of about `size` bytes of ordinary prose, no findings.
fn chat_body(size: usize) -> Bytes {
    let sentence = "Please summarise the attached meeting notes about the quarterly roadmap, \
                    the hiring plan and the migration of the billing service to the new cluster. ";
    let mut content = String::with_capacity(size);
    while content.len() < size {
        content.push_str(sentence);
    }
    content.truncate(size);
    let body = serde_json::json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": content}
        ]
    });
    Bytes::from(body.to_string())
}

fn request(body: &Bytes) -> Request<Full<Bytes>> {
    Request::post("http://127.0.0.1:9/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let set = Arc::new(PolicySet::from_sources([("default.toml", POLICY)]).unwrap());
    let layer = PrivacyRouterLayer::new(set);
    // The inner service reads the body, as a real client would, and answers.
    let inner = tower::service_fn(|req: Request<RequestBody<Full<Bytes>>>| async move {
        let body = BodyExt::collect(req.into_body())
            .await
            .map(|c| c.to_bytes());
        black_box(body.map_or(0, |b| b.len()));
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let plain = tower::service_fn(|req: Request<Full<Bytes>>| async move {
        let body = BodyExt::collect(req.into_body())
            .await
            .map(|c| c.to_bytes());
        black_box(body.map_or(0, |b| b.len()));
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let routed = layer.layer(inner);

    let mut group = c.benchmark_group("layer");
    for (name, size) in [("4KB", 4 << 10), ("1MB", 1 << 20)] {
        let body = chat_body(size);
        group.throughput(Throughput::Bytes(body.len() as u64));
        if size > 4096 {
            group.sample_size(20);
        }
        group.bench_function(format!("pass_through/{name}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut svc = plain;
                    black_box(
                        svc.ready()
                            .await
                            .unwrap()
                            .call(request(&body))
                            .await
                            .unwrap(),
                    )
                })
            })
        });
        group.bench_function(format!("privacy_router/{name}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut svc = routed.clone();
                    black_box(
                        svc.ready()
                            .await
                            .unwrap()
                            .call(request(&body))
                            .await
                            .unwrap(),
                    )
                })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
