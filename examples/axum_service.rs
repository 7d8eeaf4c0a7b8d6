//! An axum service whose outgoing LLM client goes through privacy-router: the code to
//! copy into your own service.
//!
//! ```text
//! cargo run --example axum_service
//! ```
//!
//! The service exposes `POST /tickets/summary`; its handler asks an OpenAI-compatible
//! API for a summary. The only privacy-router lines are the layer on the client and the
//! team on each request. To stay self-contained, the example starts loopback stand-ins
//! for the provider and the self-hosted model, calls its own endpoint twice, and exits.

use std::convert::Infallible;
use std::error::Error;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use privacy_router::middleware::{PrivacyRouter, PrivacyRouterLayer, RequestBody};
use privacy_router::policy::{Decision, PolicySet, Team};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};

/// The service's LLM client: a hyper client under the privacy layer. Cheap to clone.
type LlmClient = PrivacyRouter<Client<HttpConnector, RequestBody<Full<Bytes>>>>;

#[derive(Clone)]
struct AppState {
    llm: LlmClient,
    provider: String,
}

/// `POST /tickets/summary {"ticket": "..."}`: summarise a support ticket.
async fn summarise(
    State(app): State<AppState>,
    Json(input): Json<Value>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let ticket = input["ticket"].as_str().unwrap_or_default();
    let body = json!({
        "model": "gpt-4o",
        "messages": [
            { "role": "system", "content": "Summarise the ticket in one sentence." },
            { "role": "user", "content": ticket },
        ],
    });
    let mut request = Request::post(format!("{}/v1/chat/completions", app.provider))
        .header("authorization", "Bearer sk-provider-key")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    // The team whose policy applies: here fixed, in a real service from the caller's
    // identity. An extension wins over the `x-team` header.
    request.extensions_mut().insert(Team::new("support"));

    let response = app
        .llm
        .oneshot(request)
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))?;
    let action = response
        .extensions()
        .get::<Decision>()
        .map(|d| d.action().to_string());
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))?
        .to_bytes();
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(Json(
        json!({ "status": status.as_u16(), "privacy_action": action, "llm": answer }),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // Stand-ins: on a real deployment these are api.openai.com and your vLLM server.
    let provider = stand_in("external provider").await?;
    let local = stand_in("self-hosted model").await?;

    let policy = format!(
        r#"
team = "support"
on_error = "route_local"

[[rules]]
when = {{ category = "secret" }}
action = "block"

[[rules]]
when = {{ category = ["pii", "financial"] }}
action = "route_local"

[local]
base_url = "{local}/v1"
models = {{ "*" = "llama-3.1-8b-instruct" }}
"#
    );
    let default = policy.replace("team = \"support\"", "team = \"default\"");
    let policies = PolicySet::from_sources([("support.toml", policy), ("default.toml", default)])
        .map_err(|d| d.to_string())?;

    // The one change to an existing client stack: the layer.
    let http = Client::builder(TokioExecutor::new()).build_http::<RequestBody<Full<Bytes>>>();
    let llm = ServiceBuilder::new()
        .layer(PrivacyRouterLayer::new(Arc::new(policies)))
        .service(http);

    let app = Router::new()
        .route("/tickets/summary", post(summarise))
        .with_state(AppState { llm, provider });
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Call the service as its users would.
    let users = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    for ticket in [
        "The export button does nothing since Tuesday's release.",
        "Please refund jane.doe@acme-mail.de, she was charged twice.",
    ] {
        let request = Request::post(format!("http://{addr}/tickets/summary"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                json!({ "ticket": ticket }).to_string(),
            )))?;
        let response = users.request(request).await?;
        let body = response.into_body().collect().await?.to_bytes();
        let v: Value = serde_json::from_slice(&body)?;
        println!(
            "{:<60} -> {} answered by the {}",
            ticket,
            v["privacy_action"].as_str().unwrap_or("?"),
            v["llm"]["served_by"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

/// A loopback server answering `{"served_by": NAME}`; returns its base URL.
async fn stand_in(name: &'static str) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(move |_req| async move {
                let body = json!({ "served_by": name }).to_string();
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body))))
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(url)
}
