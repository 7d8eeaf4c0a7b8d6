//! [`PrivacyRouter`]: the service the layer produces.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use tower::Service;

use crate::policy::{Action, DEFAULT_TEAM, Decision, Team, TeamPolicy};

use super::body::{BoxError, RequestBody, ResponseBody};
use super::future::{Collected, ResponseFuture};
use super::inspect::{self, Inspection, InspectionReport};
use super::layer::Config;
use super::respond::{Refusal, refuse};
use super::route;

/// Inspects each request, then forwards it (possibly rewritten) to the inner service or
/// answers it itself. Made by [`PrivacyRouterLayer`](super::PrivacyRouterLayer).
///
/// # Backpressure
///
/// `poll_ready` is the inner service's: the router is ready exactly when the service it
/// forwards to is. `call` moves that readied service into the response future (leaving a
/// clone behind for the next `poll_ready`), buffers and inspects the body, then calls it.
/// A blocked request drops it unused, which releases whatever it reserved.
///
/// Rejected alternative: reporting ready at once and awaiting the inner service's
/// readiness after inspection. That hides the inner service's load from callers (a
/// `tower::buffer` or a connection pool in front would queue without bound) and calls a
/// clone that nobody polled, which tower's contract forbids.
///
/// # Cloning
///
/// Cloning clones the inner service and an `Arc` of the configuration.
#[derive(Clone)]
pub struct PrivacyRouter<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> PrivacyRouter<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> PrivacyRouter<S> {
        PrivacyRouter { inner, config }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for PrivacyRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivacyRouter")
            .field("inner", &self.inner)
            .field("body_limit", &self.config.body_limit)
            .finish()
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for PrivacyRouter<S>
where
    S: Service<Request<RequestBody<ReqB>>, Response = Response<ResB>> + Clone + Send + 'static,
    ReqB: Body + Send + 'static,
    ReqB::Data: Send,
    ReqB::Error: Into<BoxError>,
    ResB: Body,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        // The readied service goes with this request; the clone waits for the next
        // `poll_ready`.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(inner, request, Arc::clone(&self.config))
    }
}

/// What to do with a request once its body is in.
pub(crate) enum Step<B, R> {
    Forward(Request<RequestBody<B>>, Box<Decision>),
    Respond(Response<ResponseBody<R>>),
}

/// Inspects and decides. Runs inside the response future once the body is collected.
pub(crate) fn prepare<B, R>(
    config: &Config,
    mut parts: Parts,
    collected: Collected<B>,
) -> Step<B, R> {
    let format = inspect::format_of(&parts);
    let Some(set) = config.policies.current() else {
        return Step::Respond(decorate(
            config,
            refuse(format, Refusal::NoPolicy, None, Some("no-policy")),
            None,
        ));
    };
    let header_value = parts
        .headers
        .get(config.teams.header())
        .map(HeaderValue::as_bytes);
    let team = config
        .teams
        .resolve(parts.extensions.get::<Team>(), header_value)
        .unwrap_or(DEFAULT_TEAM)
        .to_string();
    let policy: &TeamPolicy = set.team(&team);

    let (body, inspection) = match collected {
        Collected::Failed => {
            let decision = policy.decide_error();
            let refusal = refuse(
                format,
                Refusal::BodyRead,
                Some(&decision),
                Some("body-read-error"),
            );
            return Step::Respond(decorate(config, refusal, Some(&decision)));
        }
        Collected::TooLarge { prefix, rest } => {
            let decision = policy.decide_error();
            if let (Action::RouteLocal, Some(target)) = (decision.action(), decision.target()) {
                // Streamed to the self-hosted model unread: its size and encoding are
                // unchanged, so the headers that describe them stay.
                if route::to_local(&mut parts, target, None).is_ok() {
                    parts.extensions.insert(decision.clone());
                    return Step::Forward(
                        Request::from_parts(parts, RequestBody::chained(prefix, rest)),
                        Box::new(decision),
                    );
                }
                let refusal = refuse(format, Refusal::TargetUnavailable, Some(&decision), None);
                return Step::Respond(decorate(config, refusal, Some(&decision)));
            }
            let refusal = refuse(
                format,
                Refusal::TooLarge,
                Some(&decision),
                Some("body-too-large"),
            );
            return Step::Respond(decorate(config, refusal, Some(&decision)));
        }
        Collected::Complete(body) => {
            let inspection = catch_unwind(AssertUnwindSafe(|| {
                if let Some(hook) = config.hook {
                    hook(&parts);
                }
                inspect::inspect(policy, &parts, &body, config.decoded_limit)
            }))
            .unwrap_or_else(|_| Inspection {
                decision: policy.decide_error(),
                report: InspectionReport::failed(format, "panic"),
                rewritten: None,
            });
            (body, inspection)
        }
    };

    let decision = inspection.decision;
    let rewritten_len = inspection.rewritten.as_ref().map(Bytes::len);
    match decision.action() {
        Action::Allow | Action::Redact => {
            if let Some(len) = rewritten_len {
                parts.headers.remove(header::CONTENT_ENCODING);
                // The body is now whole and of known length: never both framings.
                parts.headers.remove(header::TRANSFER_ENCODING);
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            }
        }
        Action::RouteLocal => {
            let routed = decision
                .target()
                .map(|target| route::to_local(&mut parts, target, rewritten_len));
            if !matches!(routed, Some(Ok(()))) {
                let refusal = refuse(
                    format,
                    Refusal::TargetUnavailable,
                    Some(&decision),
                    inspection.report.error,
                );
                return Step::Respond(decorate(config, refusal, Some(&decision)));
            }
        }
        _ => {
            let why = if inspection.report.error.is_some() {
                Refusal::Uninspectable
            } else {
                Refusal::Blocked
            };
            let refusal = refuse(format, why, Some(&decision), inspection.report.error);
            return Step::Respond(decorate(config, refusal, Some(&decision)));
        }
    }
    parts.extensions.insert(decision.clone());
    parts.extensions.insert(inspection.report);
    let body = inspection.rewritten.unwrap_or(body);
    Step::Forward(
        Request::from_parts(parts, RequestBody::full(body)),
        Box::new(decision),
    )
}

/// Adds the decision to a response's extensions and, if configured, its header.
pub(crate) fn decorate<R>(
    config: &Config,
    mut response: Response<R>,
    decision: Option<&Decision>,
) -> Response<R> {
    if let Some(d) = decision {
        response.extensions_mut().insert(d.clone());
    }
    if let Some(name) = &config.decision_header {
        let action = decision.map_or("block", |d| d.action().as_str());
        response
            .headers_mut()
            .insert(name.clone(), HeaderValue::from_static(action));
    }
    response
}
