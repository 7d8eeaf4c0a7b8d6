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

use crate::audit::entry::{DetectorEntry, Entry, FingerprintEntry, PolicyEntry};
use crate::audit::{AuditWait, Auditor};
use crate::extract::ApiFormat;
use crate::policy::{Action, Basis, DEFAULT_TEAM, Decision, Team, TeamPolicy};

use super::body::{BoxError, RequestBody, ResponseBody};
use super::future::{Collected, ResponseFuture};
use super::inspect::{self, Inspection, InspectionReport};
use super::layer::Config;
use super::respond::{self, Refusal, refuse};
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
    /// Forward this request; with an auditor, only once the gate opens.
    Forward(Request<RequestBody<B>>, Box<Decision>, Option<Box<Gate<B>>>),
    Respond(Response<ResponseBody<R>>),
}

/// A forward that waits for its audit record to be committed.
pub(crate) struct Gate<B> {
    pub(crate) wait: AuditWait,
    /// What happens instead when the record cannot be written: the team's `on_error`.
    pub(crate) fallback: Fallback<B>,
}

pub(crate) enum Fallback<B> {
    /// Forward as prepared: it already goes to the self-hosted model, as `on_error` says.
    Keep,
    /// Forward this instead: the original request, routed to the self-hosted model.
    Forward(Request<RequestBody<B>>, Box<Decision>),
    /// Answer this (a refusal: its body is bytes, whatever the inner service's).
    Respond(Response<ResponseBody<()>>),
}

/// Whether a client's `x-request-id` may go into the audit log as it is: it looks like
/// an id (1-128 printable ASCII bytes) and the built-in detectors find nothing in it.
/// It is client text, and an audit record holds none; otherwise the record gets an id of
/// its own.
fn is_clean_request_id(id: &str) -> bool {
    static SCANNER: std::sync::OnceLock<Option<crate::scan::Scanner>> = std::sync::OnceLock::new();
    let looks_like_id =
        !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic());
    looks_like_id
        && SCANNER
            .get_or_init(|| crate::scan::Scanner::builder().build().ok())
            .as_ref()
            .is_some_and(|scanner| scanner.scan(id).is_empty())
}

/// The request's audit context, when the layer audits.
struct Audit<'a> {
    auditor: &'a Auditor,
    request_id: String,
    /// `scheme://authority` of the external provider the request was addressed to.
    origin: Option<String>,
}

impl<'a> Audit<'a> {
    fn new(config: &'a Config, parts: &Parts) -> Option<Audit<'a>> {
        let auditor = config.audit.as_ref()?;
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_clean_request_id(v))
            .map_or_else(|| auditor.new_request_id(), str::to_string);
        let authority = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| {
                parts
                    .headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            });
        let origin =
            authority.map(|a| format!("{}://{a}", parts.uri.scheme_str().unwrap_or("http")));
        Some(Audit {
            auditor,
            request_id,
            origin,
        })
    }

    /// Builds the record body for this request's outcome.
    fn body(
        &self,
        team: &str,
        decision: Option<&Decision>,
        report: &InspectionReport,
        action: Action,
        error: Option<&str>,
    ) -> Vec<u8> {
        let target = match action {
            Action::Allow | Action::Redact => self.origin.as_deref(),
            Action::RouteLocal => decision.and_then(|d| d.target()).map(|t| t.base_url()),
            _ => None,
        };
        let routed_model = match (action, decision.and_then(|d| d.target())) {
            (Action::RouteLocal, Some(t)) => report
                .requested_model
                .as_deref()
                .and_then(|m| t.model_for(m)),
            _ => None,
        };
        let fingerprints = report
            .fingerprints
            .iter()
            .map(|(detector, fp)| FingerprintEntry {
                detector,
                fp: fp.to_string(),
            })
            .collect();
        Entry {
            event: "decision",
            request_id: &self.request_id,
            team: Some(team),
            policy: decision.map(|d| PolicyEntry {
                file: d.policy().file(),
                hash: d.policy().content_hash(),
            }),
            format: report.format.as_str(),
            requested_model: report.requested_model.as_deref(),
            routed_model,
            action: action.as_str(),
            basis: decision.map(|d| basis_name(d.basis())),
            target,
            detectors: decision.map_or_else(Vec::new, |d| {
                d.reasons()
                    .iter()
                    .map(|r| DetectorEntry {
                        id: r.detector(),
                        category: r.category().as_str(),
                        count: r.count() as u64,
                    })
                    .collect()
            }),
            fingerprints,
            fp_key: self.auditor.key().id(),
            scanned_bytes: report.scanned_bytes as u64,
            scan_us: report.scan_time.as_micros() as u64,
            error: error.or(report.error),
        }
        .to_body()
    }

    /// Records an answer the layer gives itself (action `block`: nothing is sent); the
    /// answer does not wait for the record.
    fn refused(
        &self,
        team: &str,
        decision: Option<&Decision>,
        report: &InspectionReport,
        error: Option<&str>,
    ) {
        let body = self.body(team, decision, report, Action::Block, error);
        let _ = self.auditor.submit(body, false);
    }

    /// Records a forward; the request waits for the returned gate.
    fn forwarded<B>(
        &self,
        team: &str,
        decision: &Decision,
        report: &InspectionReport,
        fallback: Fallback<B>,
    ) -> Box<Gate<B>> {
        let body = self.body(team, Some(decision), report, decision.action(), None);
        let wait = self
            .auditor
            .submit(body, true)
            .expect("a waiting submit returns its wait");
        Box::new(Gate { wait, fallback })
    }
}

fn basis_name(basis: Basis) -> &'static str {
    match basis {
        Basis::Rules => "rules",
        Basis::Default => "default",
        Basis::Unscannable => "unscannable",
        Basis::Error => "error",
    }
}

/// What a forward becomes if its audit record fails: the team's `on_error`.
fn fallback<B>(
    config: &Config,
    policy: &TeamPolicy,
    decision: &Decision,
    format: ApiFormat,
    original: Option<(Parts, Bytes)>,
) -> Fallback<B> {
    let error = policy.decide_error();
    if error.action() != Action::RouteLocal {
        let refusal = refuse(format, Refusal::AuditUnavailable, Some(&error), None);
        return Fallback::Respond(decorate(config, refusal, Some(&error)));
    }
    if decision.action() == Action::RouteLocal {
        return Fallback::Keep;
    }
    if let (Some((mut parts, body)), Some(target)) = (original, error.target())
        && route::to_local(&mut parts, target, None).is_ok()
    {
        parts.extensions.insert(error.clone());
        return Fallback::Forward(
            Request::from_parts(parts, RequestBody::full(body)),
            Box::new(error),
        );
    }
    let refusal = refuse(format, Refusal::TargetUnavailable, Some(&error), None);
    Fallback::Respond(decorate(config, refusal, Some(&error)))
}

/// Inspects and decides. Runs inside the response future once the body is collected.
pub(crate) fn prepare<B, R>(
    config: &Config,
    mut parts: Parts,
    collected: Collected<B>,
) -> Step<B, R> {
    let format = inspect::format_of(&parts);
    // The shape of any refusal: the request's format, or Anthropic's if it says so.
    let shape = respond::error_format(format, &parts.headers);
    let audit = Audit::new(config, &parts);
    let Some(set) = config.policies.current() else {
        if let Some(a) = &audit {
            let report = InspectionReport::failed(format, "no-policy");
            a.refused(DEFAULT_TEAM, None, &report, None);
        }
        return Step::Respond(decorate(
            config,
            refuse(shape, Refusal::NoPolicy, None, Some("no-policy")),
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
    // Records and metrics name the team whose policy decided (`default` for an unknown
    // one), never the client's free-form header.
    let team = policy.name().to_string();

    let (body, inspection) = match collected {
        Collected::Failed | Collected::TimedOut => {
            let (refusal, kind) = match collected {
                Collected::TimedOut => (Refusal::BodyTimeout, "body-read-timeout"),
                _ => (Refusal::BodyRead, "body-read-error"),
            };
            let decision = policy.decide_error();
            if let Some(a) = &audit {
                let report = InspectionReport::failed(format, kind);
                a.refused(&team, Some(&decision), &report, None);
            }
            let refusal = refuse(shape, refusal, Some(&decision), Some(kind));
            return Step::Respond(decorate(config, refusal, Some(&decision)));
        }
        Collected::TooLarge { prefix, rest } => {
            let decision = policy.decide_error();
            let report = InspectionReport::failed(format, "body-too-large");
            if let (Action::RouteLocal, Some(target)) = (decision.action(), decision.target()) {
                // Streamed to the self-hosted model unread: its size and encoding are
                // unchanged, so the headers that describe them stay.
                if route::to_local(&mut parts, target, None).is_ok() {
                    parts.extensions.insert(decision.clone());
                    let gate = audit
                        .as_ref()
                        .map(|a| a.forwarded(&team, &decision, &report, Fallback::Keep));
                    return Step::Forward(
                        Request::from_parts(parts, RequestBody::chained(prefix, rest)),
                        Box::new(decision),
                        gate,
                    );
                }
                if let Some(a) = &audit {
                    a.refused(&team, Some(&decision), &report, Some("target-unavailable"));
                }
                let refusal = refuse(shape, Refusal::TargetUnavailable, Some(&decision), None);
                return Step::Respond(decorate(config, refusal, Some(&decision)));
            }
            if let Some(a) = &audit {
                a.refused(&team, Some(&decision), &report, None);
            }
            let refusal = refuse(
                shape,
                Refusal::TooLarge,
                Some(&decision),
                Some("body-too-large"),
            );
            return Step::Respond(decorate(config, refusal, Some(&decision)));
        }
        Collected::Complete(body) => {
            let key = config.audit.as_ref().map(Auditor::key);
            let inspection = catch_unwind(AssertUnwindSafe(|| {
                if let Some(hook) = config.hook {
                    hook(&parts);
                }
                inspect::inspect(policy, &parts, &body, config.decoded_limit, key)
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
    // Kept only while an audit failure could still send the request elsewhere.
    let original = match (&audit, decision.action()) {
        (Some(_), Action::Allow | Action::Redact) => Some((parts.clone(), body.clone())),
        _ => None,
    };
    let rewritten_len = inspection.rewritten.as_ref().map(Bytes::len);
    match decision.action() {
        Action::Allow | Action::Redact => {
            if let Some(len) = rewritten_len {
                parts.headers.remove(header::CONTENT_ENCODING);
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
                if let Some(a) = &audit {
                    let error = inspection.report.error.or(Some("target-unavailable"));
                    a.refused(&team, Some(&decision), &inspection.report, error);
                }
                let refusal = refuse(
                    shape,
                    Refusal::TargetUnavailable,
                    Some(&decision),
                    inspection.report.error,
                );
                return Step::Respond(decorate(config, refusal, Some(&decision)));
            }
        }
        _ => {
            if let Some(a) = &audit {
                a.refused(&team, Some(&decision), &inspection.report, None);
            }
            let why = if inspection.report.error.is_some() {
                Refusal::Uninspectable
            } else {
                Refusal::Blocked
            };
            let refusal = refuse(shape, why, Some(&decision), inspection.report.error);
            return Step::Respond(decorate(config, refusal, Some(&decision)));
        }
    }
    let gate = audit.as_ref().map(|a| {
        let fallback = fallback(config, policy, &decision, shape, original);
        a.forwarded(&team, &decision, &inspection.report, fallback)
    });
    parts.extensions.insert(decision.clone());
    parts.extensions.insert(inspection.report);
    parts.extensions.insert(respond::ErrorShape(shape));
    let body = inspection.rewritten.unwrap_or(body);
    Step::Forward(
        Request::from_parts(parts, RequestBody::full(body)),
        Box::new(decision),
        gate,
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
