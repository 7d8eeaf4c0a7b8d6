//! The Tower layer: inspect every outgoing LLM request, then forward, redact, reroute to
//! the self-hosted model, or block.
//!
//! [`PrivacyRouterLayer`] wraps any `tower::Service<http::Request<RequestBody<B>>>` whose
//! responses are `http::Response<_>`: a hyper-util client, a `tower::buffer` of one, an
//! axum-side client stack. For each request it
//!
//! 1. buffers the body up to a limit (8 MiB by default) and decodes its
//!    `Content-Encoding` (gzip, deflate, br, zstd) up to a cap;
//! 2. resolves the team: a [`Team`](crate::policy::Team) request extension, else the
//!    `x-team` header, else the policy set's `default` team;
//! 3. extracts every prompt-bearing string for the API the path names
//!    ([`extract`](crate::extract)), scans it with the team's scanner, and decides;
//! 4. acts:
//!    - `allow`: forwards the original bytes unchanged;
//!    - `redact`: replaces each finding with a typed placeholder (`[EMAIL_1]`; the same
//!      value gets the same placeholder within a request), keeps the rest of the document
//!      byte for byte, verifies that nothing the policy acts on is left, and forwards;
//!    - `route_local`: rewrites scheme, authority and path onto the team's self-hosted
//!      base URL, maps the `model`, removes the external provider's credentials
//!      (`authorization`, `x-api-key`, `openai-*`, `anthropic-*`, cookies, `?key=`) and
//!      sets the target's own, fixes `host` and `content-length`, and answers 504 if the
//!      target's response head does not arrive within its `timeout` (this needs a Tokio
//!      runtime with time enabled);
//!    - `block`: answers 403 itself, in the API's own error shape, naming the detectors
//!      and never the values; the inner service is not called.
//!
//! The [`Decision`](crate::policy::Decision) is put into the request's extensions (for
//! the inner service) and the response's; [`PrivacyRouterLayer::decision_header`] also
//! reports the action in a response header. Responses, server-sent event streams
//! included, pass through frame by frame.
//!
//! # Audit
//!
//! With [`PrivacyRouterLayer::audit`], every request also gets one record in the audit
//! log ([`crate::audit`]), committed before the request is forwarded; a record that
//! cannot be written gives the team's `on_error`, never an unrecorded external call.
//!
//! # Fail closed
//!
//! If inspection cannot complete (a body over the limit, an unknown or broken encoding,
//! malformed JSON on a known API path, no policy set in force, a panic inside
//! inspection, a redaction that would leave a finding behind), the request gets the
//! team's `on_error` action: `route_local` or `block`. It is never forwarded to the
//! external provider uninspected.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use privacy_router::middleware::PrivacyRouterLayer;
//! use privacy_router::policy::PolicyHandle;
//! use tower::ServiceBuilder;
//!
//! # fn client() -> tower::util::BoxCloneService<http::Request<privacy_router::middleware::RequestBody<String>>, http::Response<String>, std::convert::Infallible> { unimplemented!() }
//! let policies = PolicyHandle::load("policies/")?;
//! let client = ServiceBuilder::new()
//!     .layer(PrivacyRouterLayer::new(policies).decision_header(true))
//!     .service(client()); // e.g. a hyper_util::client::legacy::Client
//! # let _ = client;
//! # Ok::<(), privacy_router::policy::Diagnostics>(())
//! ```

mod body;
mod decode;
mod future;
mod inspect;
mod layer;
mod respond;
mod route;
mod service;

pub use body::{BoxError, RequestBody, ResponseBody};
pub use future::ResponseFuture;
pub use inspect::{InspectionReport, MAX_FINGERPRINTS};
pub use layer::{DECISION_HEADER, DEFAULT_BODY_LIMIT, PolicySource, PrivacyRouterLayer};
pub use service::PrivacyRouter;
