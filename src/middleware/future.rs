//! [`ResponseFuture`]: collect the body, inspect, then call the inner service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{Request, Response, header};
use http_body::Body;
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use tower::Service;

use crate::audit::AuditWait;
use crate::extract::ApiFormat;
use crate::policy::{Action, Decision};

use super::body::{RequestBody, ResponseBody};
use super::inspect::InspectionReport;
use super::layer::Config;
use super::respond::{self, Refusal, refuse};
use super::service::{Fallback, Step, decorate, prepare};

/// A request body, read up to the limit.
pub(crate) enum Collected<B> {
    /// The whole body.
    Complete(Bytes),
    /// The limit was reached: what was read, and the rest, unread.
    TooLarge { prefix: Bytes, rest: Pin<Box<B>> },
    /// The client's body failed.
    Failed,
    /// The body did not arrive whole within the layer's `body_timeout`.
    TimedOut,
}

type Collecting<B> = Pin<Box<dyn Future<Output = Collected<B>> + Send>>;

pin_project! {
    /// The future of [`PrivacyRouter`](super::PrivacyRouter): reads the request body,
    /// inspects it, then either calls the inner service or answers itself.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<RequestBody<B>>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<RequestBody<B>>>,
    {
        Inspecting {
            collect: Collecting<B>,
            inner: Option<S>,
            parts: Option<http::request::Parts>,
            config: Arc<Config>,
        },
        Auditing {
            wait: AuditWait,
            inner: Option<S>,
            request: Option<Request<RequestBody<B>>>,
            decision: Option<Box<Decision>>,
            fallback: Option<Fallback<B>>,
            config: Arc<Config>,
        },
        Calling {
            #[pin]
            future: S::Future,
            decision: Option<Box<Decision>>,
            config: Arc<Config>,
            // The self-hosted target's `timeout`, for requests routed in-house: until the
            // response head arrives (a stream may then take as long as it takes).
            deadline: Option<Deadline>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<RequestBody<B>>>,
    B: Body + Send + 'static,
    B::Data: Send,
{
    pub(crate) fn new(inner: S, request: Request<B>, config: Arc<Config>) -> ResponseFuture<S, B> {
        let (parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let reading = collect(Box::pin(body), config.body_limit, declared);
        let collect: Collecting<B> = match config.body_timeout {
            Some(limit) => Box::pin(async move {
                tokio::time::timeout(limit, reading)
                    .await
                    .unwrap_or(Collected::TimedOut)
            }),
            None => Box::pin(reading),
        };
        ResponseFuture {
            state: State::Inspecting {
                collect,
                inner: Some(inner),
                parts: Some(parts),
                config,
            },
        }
    }
}

/// Reads `body` until its end or until more than `limit` bytes arrived. A body whose
/// declared length is over the limit is not read at all.
async fn collect<B>(mut body: Pin<Box<B>>, limit: usize, declared: Option<u64>) -> Collected<B>
where
    B: Body,
{
    if declared.is_some_and(|n| n > limit as u64) {
        return Collected::TooLarge {
            prefix: Bytes::new(),
            rest: body,
        };
    }
    let hint = declared.map_or(body.size_hint().lower(), |n| n) as usize;
    let mut buf = BytesMut::with_capacity(hint.min(limit));
    loop {
        match body.frame().await {
            None => return Collected::Complete(buf.freeze()),
            Some(Err(_)) => return Collected::Failed,
            Some(Ok(frame)) => {
                // Trailers are not inspected and not forwarded: LLM APIs do not use them.
                if let Ok(data) = frame.into_data() {
                    let over = buf.len() + data.remaining() > limit;
                    buf.put(data);
                    if over {
                        return Collected::TooLarge {
                            prefix: buf.freeze(),
                            rest: body,
                        };
                    }
                }
            }
        }
    }
}

impl<S, B, R> Future for ResponseFuture<S, B>
where
    S: Service<Request<RequestBody<B>>, Response = Response<R>>,
{
    type Output = Result<Response<ResponseBody<R>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Inspecting {
                    collect,
                    inner,
                    parts,
                    config,
                } => {
                    let collected = ready!(collect.as_mut().poll(cx));
                    let parts = parts.take().expect("polled after completion");
                    let mut inner = inner.take().expect("polled after completion");
                    let config = Arc::clone(config);
                    match prepare(&config, parts, collected) {
                        Step::Respond(response) => return Poll::Ready(Ok(response)),
                        Step::Forward(request, decision, None) => {
                            state.set(State::calling(&mut inner, request, decision, config));
                        }
                        Step::Forward(request, decision, Some(gate)) => {
                            state.set(State::Auditing {
                                wait: gate.wait,
                                inner: Some(inner),
                                request: Some(request),
                                decision: Some(decision),
                                fallback: Some(gate.fallback),
                                config,
                            });
                        }
                    }
                }
                StateProj::Auditing {
                    wait,
                    inner,
                    request,
                    decision,
                    fallback,
                    config,
                } => {
                    let written = ready!(Pin::new(wait).poll(cx));
                    let mut inner = inner.take().expect("polled after completion");
                    let mut request = request.take().expect("polled after completion");
                    let mut decision = decision.take().expect("polled after completion");
                    let config = Arc::clone(config);
                    if written.is_err() {
                        // The record could not be written: the team's `on_error`, never
                        // the external provider.
                        match fallback.take().expect("polled after completion") {
                            Fallback::Keep => {}
                            Fallback::Forward(local, error_decision) => {
                                request = local;
                                decision = error_decision;
                            }
                            Fallback::Respond(response) => {
                                return Poll::Ready(Ok(response.map(ResponseBody::retype)));
                            }
                        }
                    }
                    state.set(State::calling(&mut inner, request, decision, config));
                }
                StateProj::Calling {
                    future,
                    decision,
                    config,
                    deadline,
                } => {
                    let response = match future.poll(cx) {
                        Poll::Ready(r) => r?,
                        Poll::Pending => {
                            if let Some(d) = deadline
                                && d.sleep.as_mut().poll(cx).is_ready()
                            {
                                let decision = decision.take();
                                let refusal = refuse(
                                    d.format,
                                    Refusal::LocalTimeout,
                                    decision.as_deref(),
                                    Some("local-timeout"),
                                );
                                return Poll::Ready(Ok(decorate(
                                    config,
                                    refusal,
                                    decision.as_deref(),
                                )));
                            }
                            return Poll::Pending;
                        }
                    };
                    let decision = decision.take();
                    let response = decorate(
                        config,
                        response.map(ResponseBody::inner),
                        decision.as_deref(),
                    );
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}

impl<S, B> State<S, B>
where
    S: Service<Request<RequestBody<B>>>,
{
    /// Calls the readied inner service (with the local target's deadline when the request
    /// goes in-house).
    fn calling(
        inner: &mut S,
        request: Request<RequestBody<B>>,
        decision: Box<Decision>,
        config: Arc<Config>,
    ) -> State<S, B> {
        let deadline = Deadline::for_request(&request, &decision);
        State::Calling {
            future: inner.call(request),
            decision: Some(decision),
            config,
            deadline,
        }
    }
}

/// The timer for a request routed to the self-hosted model.
pub(crate) struct Deadline {
    sleep: Pin<Box<tokio::time::Sleep>>,
    format: ApiFormat,
}

impl Deadline {
    fn for_request<B>(request: &Request<B>, decision: &Decision) -> Option<Deadline> {
        if decision.action() != Action::RouteLocal {
            return None;
        }
        let target = decision.target()?;
        // The shape decided before routing: routing removed `anthropic-version`.
        let format = match request.extensions().get::<respond::ErrorShape>() {
            Some(shape) => shape.0,
            None => request
                .extensions()
                .get::<InspectionReport>()
                .map_or(ApiFormat::GenericJson, |r| r.format),
        };
        Some(Deadline {
            sleep: Box::pin(tokio::time::sleep(target.timeout())),
            format,
        })
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<RequestBody<B>>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
