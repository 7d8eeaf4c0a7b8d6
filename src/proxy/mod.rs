//! The standalone proxy: the layer as an HTTP server any OpenAI or Anthropic SDK can use
//! by changing its base URL (`privacy-router proxy --config FILE`).
//!
//! [`Server`] serves
//!
//! | path | what |
//! |---|---|
//! | `POST /v1/chat/completions`, `/v1/responses`, `/v1/completions`, `/v1/embeddings` | inspected, then forwarded to the `openai` upstream (or rerouted, redacted, blocked) |
//! | `POST /v1/messages` | inspected, then forwarded to the `anthropic` upstream |
//! | `GET /v1/models`, `/v1/models/{id}` | forwarded as is (no body, nothing to inspect) |
//! | `GET /healthz` | 200 while the process serves |
//! | `GET /readyz` | 200 when policies are loaded and the proxy is not shutting down, else 503 |
//! | `GET /metrics` | Prometheus text ([`Metrics`]) |
//! | anything else | 404 in the OpenAI error shape (Anthropic's for Anthropic clients); nothing is forwarded |
//!
//! Each inspected request goes through the same
//! [`PrivacyRouterLayer`](crate::middleware::PrivacyRouterLayer) a Rust service would
//! use, over a hyper-util client with rustls (ring, Mozilla roots). The proxy rewrites the
//! request URI to the upstream *before* the layer, so `route_local` decisions rewrite it
//! again to the team's self-hosted model, exactly as in a service. Responses, server-sent
//! event streams included, pass through frame by frame.
//!
//! The team comes from the client's API key when the configuration maps keys to teams
//! (SHA-256 hashes compared in constant time; a key is never logged), else from a header
//! (`x-team` by default). Policies reload when a file in their directory changes (polled)
//! and on [`Reloader::reload`] (SIGHUP in the CLI); a set that fails to load leaves the
//! last good one in force and logs its first problem as `file:line:col`.
//!
//! The configuration is a TOML file ([`ProxyConfig`]); a commented example is
//! `examples/proxy.toml`. Its errors name `file:line:col` ([`ConfigError`]).
//!
//! # Logging
//!
//! The proxy writes one-line events to stderr (reloads, upstream failures, shutdown).
//! None holds prompt text, a matched value, a header value or an API key.

mod config;
mod keys;
mod metrics;
mod routes;
mod server;

pub use config::{ConfigError, ProxyConfig};
pub use metrics::Metrics;
pub use server::{Reloader, Server};
