//! Opt-in: the layer against a real open-weight model behind an OpenAI-compatible server
//! (llama.cpp's, here). Not part of the default run; see the README section "Trying it
//! with a real self-hosted model" for how to serve one offline, then:
//!
//! ```text
//! PRIVACY_ROUTER_LOCAL_MODEL_URL=http://127.0.0.1:18080/v1 \
//!   cargo test --test it local_model -- --ignored --nocapture
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use privacy_router::middleware::PrivacyRouterLayer;
use privacy_router::policy::PolicySet;
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

use crate::upstream::{Upstream, client};

fn setup(local: &str, model: &str) -> Arc<PolicySet> {
    let policy = format!(
        r#"team = "default"
on_error = "route_local"

[[rules]]
when = {{ category = ["pii", "financial"] }}
action = "route_local"

[local]
base_url = "{local}"
timeout = "120s"
models = {{ "*" = "{model}" }}
"#
    );
    Arc::new(PolicySet::from_sources([("default.toml", policy)]).expect("policy loads"))
}

#[tokio::test]
#[ignore = "needs a self-hosted model server: set PRIVACY_ROUTER_LOCAL_MODEL_URL"]
async fn a_real_local_model_answers_prompts_that_must_stay_in_house() {
    let local = std::env::var("PRIVACY_ROUTER_LOCAL_MODEL_URL")
        .expect("set PRIVACY_ROUTER_LOCAL_MODEL_URL, e.g. http://127.0.0.1:18080/v1");
    let model =
        std::env::var("PRIVACY_ROUTER_LOCAL_MODEL_NAME").unwrap_or_else(|_| "smollm2".into());
    let external = Upstream::start("external").await;
    let router = PrivacyRouterLayer::new(setup(&local, &model)).layer(client());

    for stream in [false, true] {
        let body = json!({
            "model": "gpt-4o",
            "max_tokens": 24,
            "stream": stream,
            "messages": [{ "role": "user", "content": "Write one short sentence to jane.doe@acme-mail.de saying her refund is on its way." }],
        });
        let request = Request::post(format!("{}/v1/chat/completions", external.url()))
            .header("content-type", "application/json")
            .header("authorization", "Bearer sk-external")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let response =
            tokio::time::timeout(Duration::from_secs(180), router.clone().oneshot(request))
                .await
                .expect("the local model answered in time")
                .expect("the request went through");
        assert_eq!(response.status(), StatusCode::OK, "stream = {stream}");
        let is_sse = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let mut frames = 0;
        let mut text = Vec::new();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                frames += 1;
                text.extend_from_slice(&data);
            }
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        if stream {
            assert!(is_sse, "a streamed answer is an event stream");
            assert!(text.contains("data: ") && text.contains("[DONE]"), "{text}");
            println!("streamed answer in {frames} frames");
        } else {
            let v: Value = serde_json::from_str(&text).expect("a JSON answer");
            let answer = v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default();
            assert!(!answer.trim().is_empty(), "the model said something: {v}");
            println!("the local model answered: {answer}");
        }
    }
    assert_eq!(external.count(), 0, "nothing reached the external provider");
}
