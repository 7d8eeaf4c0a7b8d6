//! [`Server`]: accept connections, route, forward through the layer, reload, shut down.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::{Layer, Service, ServiceExt};

use super::config::{ProxyConfig, UpstreamConfig};
use super::keys::KeyTeam;
use super::metrics::Metrics;
use super::routes::{Provider, Route};
use crate::audit::Auditor;
use crate::middleware::{
    BoxError, InspectionReport, PolicySource, PrivacyRouter, PrivacyRouterLayer, RequestBody,
};
use crate::policy::{Action, Basis, Decision, PolicyHandle, PolicySet, Team, TeamResolver};

type Body = UnsyncBoxBody<Bytes, BoxError>;
type Connector = HttpsConnector<HttpConnector>;

/// The proxy, bound to its address and ready to [`run`](Self::run).
///
/// ```no_run
/// use privacy_router::policy::PolicyHandle;
/// use privacy_router::proxy::{ProxyConfig, Server};
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ProxyConfig::load("proxy.toml")?;
/// let policies = PolicyHandle::load(config.policies())?;
/// let server = Server::bind(config, policies).await?;
/// println!("listening on http://{}", server.local_addr());
/// server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
///
/// # Backpressure
///
/// None of its own: each connection is served on its own task, and the layer's inner
/// service is a hyper-util client whose pool opens connections as needed. Rejected: a
/// concurrency limit in front, whose right value depends on the upstream (a provider's
/// rate limit, a self-hosted model's batch size); put one in a load balancer if needed.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("config", &self.shared.config)
            .finish()
    }
}

struct Shared {
    config: ProxyConfig,
    policies: Arc<PolicyHandle>,
    metrics: Arc<Metrics>,
    router: PrivacyRouter<Forward>,
    plain: Client<Connector, Empty<Bytes>>,
    team_resolver: TeamResolver,
    team_header: HeaderName,
    reloader: Reloader,
    auditor: Option<Auditor>,
    /// One permit per API request in flight (`max_in_flight`).
    slots: Arc<tokio::sync::Semaphore>,
}

/// The layer's policy source: the handle the reloader swaps.
struct Policies(Arc<PolicyHandle>);

impl PolicySource for Policies {
    fn current(&self) -> Option<Arc<PolicySet>> {
        Some(self.0.current())
    }
}

impl Server {
    /// Binds the listen address and builds the upstream clients (HTTPS with rustls and the
    /// bundled Mozilla roots, HTTP/1.1 and HTTP/2 by ALPN).
    ///
    /// With an `[audit]` section, starts the audit writer and opens its log.
    ///
    /// # Errors
    ///
    /// The address cannot be bound, or the audit log cannot be opened.
    pub async fn bind(config: ProxyConfig, policies: PolicyHandle) -> io::Result<Server> {
        let listener = TcpListener::bind(config.listen).await?;
        let policies = Arc::new(policies);
        let metrics = Arc::new(Metrics::default());

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        // Nagle's algorithm would hold a request's body back behind its headers.
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_idle_timeout(Duration::from_secs(60));
        let forward = Forward {
            client: builder.build(https.clone()),
        };
        let plain = builder.build(https);

        let mut layer = PrivacyRouterLayer::new(Policies(Arc::clone(&policies)))
            .body_limit(config.body_limit)
            .body_timeout(config.body_timeout)
            .decision_header(config.decision_header);
        let auditor = match &config.audit {
            None => None,
            Some(audit) => {
                let auditor = audit.start();
                // Open the log now: a log that cannot be written stops the start, rather
                // than every request getting its team's `on_error`.
                let probe = auditor.clone();
                tokio::task::spawn_blocking(move || probe.flush())
                    .await
                    .map_err(io::Error::other)?
                    .map_err(|e| io::Error::other(format!("audit log: {e}")))?;
                layer = layer.audit(auditor.clone());
                metrics.set_auditor(auditor.clone());
                Some(auditor)
            }
        };
        let team_header =
            HeaderName::from_bytes(config.team_header.as_bytes()).map_err(io::Error::other)?;
        let reloader = Reloader {
            policies: Arc::clone(&policies),
            metrics: Arc::clone(&metrics),
            lock: Arc::new(tokio::sync::Mutex::new(())),
        };
        metrics.set_ready(true);
        let config_slots = config
            .max_in_flight
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                team_resolver: TeamResolver::new().with_header(&config.team_header),
                team_header,
                config,
                policies,
                metrics,
                router: layer.layer(forward),
                plain,
                reloader,
                auditor,
                slots: Arc::new(tokio::sync::Semaphore::new(config_slots)),
            }),
        })
    }

    /// The address bound (useful with port 0).
    ///
    /// # Panics
    ///
    /// Never in practice: a bound TCP listener has an address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Reloads the policies on demand (for SIGHUP).
    pub fn reloader(&self) -> Reloader {
        self.shared.reloader.clone()
    }

    /// The metrics `/metrics` serves.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Serves until `shutdown` completes, then stops accepting, reports not ready, and
    /// waits for the requests in flight (streams included) for at most the configured
    /// `shutdown_timeout`, then flushes and closes the audit log. While serving, the policy directory is polled every
    /// `reload_interval` and reloaded when a file changes.
    ///
    /// # Errors
    ///
    /// None today; the `io::Result` leaves room for fatal listener errors. Accept errors
    /// (out of file descriptors) are logged and retried.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Server { listener, shared } = self;
        let graceful = GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // The timer enables hyper's 30 s limit on reading request headers (slowloris).
        builder.http1().timer(TokioTimer::new());
        let poller = shared.config.reload_interval.map(|every| {
            tokio::spawn(poll_policies(
                shared.policies.dir().to_path_buf(),
                every,
                shared.reloader.clone(),
            ))
        });

        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            eprintln!("privacy-router: accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    let service = service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(handle(&shared, request).await) }
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn.into_owned());
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                () = &mut shutdown => break,
            }
        }

        drop(listener);
        shared.metrics.set_ready(false);
        if let Some(poller) = poller {
            poller.abort();
        }
        eprintln!(
            "privacy-router: shutting down; waiting for {} open connection(s)",
            graceful.count()
        );
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(shared.config.shutdown_timeout) => {
                eprintln!("privacy-router: shutdown timeout; closing the remaining connections");
            }
        }
        if let Some(auditor) = shared.auditor.clone() {
            match tokio::task::spawn_blocking(move || auditor.shutdown()).await {
                Ok(Ok(())) => eprintln!("privacy-router: audit log flushed"),
                // Records may be missing from the log: the exit status must say so.
                Ok(Err(e)) => {
                    return Err(io::Error::other(format!("audit log not flushed: {e}")));
                }
                Err(_) => {
                    return Err(io::Error::other(
                        "audit log not flushed: the flush panicked",
                    ));
                }
            }
        }
        eprintln!("privacy-router: stopped");
        Ok(())
    }
}

/// Reloads the policy directory; the last good set stays in force when it does not load.
/// One reload runs at a time. Cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    policies: Arc<PolicyHandle>,
    metrics: Arc<Metrics>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl fmt::Debug for Reloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloader")
            .field("dir", &self.policies.dir())
            .finish()
    }
}

impl Reloader {
    /// Loads the directory again (on a blocking thread: compiling scanners takes
    /// milliseconds to seconds) and logs one line to stderr: the new set's digest, or the
    /// first problem as `file:line:col` and how many more there are. Returns whether the
    /// new set is in force.
    pub async fn reload(&self, why: &str) -> bool {
        let _one_at_a_time = self.lock.lock().await;
        let policies = Arc::clone(&self.policies);
        let outcome = tokio::task::spawn_blocking(move || policies.reload()).await;
        match outcome {
            Ok(Ok(set)) => {
                self.metrics.reload(true);
                eprintln!(
                    "privacy-router: policies reloaded ({why}): {} team(s), digest {}",
                    set.teams().count(),
                    set.digest()
                );
                true
            }
            Ok(Err(problems)) => {
                self.metrics.reload(false);
                let first = problems.iter().next().map_or_else(String::new, |d| {
                    let place = match (d.line(), d.col()) {
                        (Some(l), Some(c)) => format!("{}:{l}:{c}", d.path().display()),
                        _ => d.path().display().to_string(),
                    };
                    format!("{place}: {} [{}]", d.message(), d.code())
                });
                let more = problems.len().saturating_sub(1);
                let more = if more > 0 {
                    format!(" (and {more} more)")
                } else {
                    String::new()
                };
                eprintln!(
                    "privacy-router: policy reload failed ({why}), keeping the last good set: {first}{more}"
                );
                false
            }
            Err(_) => {
                self.metrics.reload(false);
                eprintln!(
                    "privacy-router: policy reload failed ({why}): the loader panicked; keeping the last good set"
                );
                false
            }
        }
    }
}

/// Polls the modification times and sizes of every file under `dir` and reloads when
/// they change. *Rejected: `notify`.* Inotify misses changes on some network and
/// container filesystems and brings a dependency; a stat of a few dozen files every
/// couple of seconds costs nothing.
async fn poll_policies(dir: PathBuf, every: Duration, reloader: Reloader) {
    let mut last = fingerprint(&dir);
    loop {
        tokio::time::sleep(every).await;
        let now = fingerprint(&dir);
        if now != last {
            last = now;
            reloader.reload("files changed").await;
        }
    }
}

fn fingerprint(dir: &Path) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<(PathBuf, Option<SystemTime>, u64)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if depth < 8 {
                    walk(&path, depth + 1, out);
                }
            } else {
                out.push((path, meta.modified().ok(), meta.len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, 0, &mut out);
    out.sort();
    out
}

/// The layer's inner service: the hyper-util client, which also notes what the layer
/// reported about the request for the metrics.
#[derive(Clone)]
struct Forward {
    client: Client<Connector, RequestBody<Incoming>>,
}

/// What the layer handed to the inner service, for the metrics. Put into the request's
/// extensions before the layer; the layer keeps extensions.
#[derive(Clone, Default)]
struct Probe(Arc<Mutex<Option<Forwarded>>>);

#[derive(Clone, Copy)]
struct Forwarded {
    scan_time: Duration,
    failure: Option<&'static str>,
    local: bool,
}

impl Service<Request<RequestBody<Incoming>>> for Forward {
    type Response = Response<Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = hyper_util::client::legacy::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.client.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody<Incoming>>) -> Self::Future {
        if let Some(probe) = request.extensions().get::<Probe>() {
            let report = request.extensions().get::<InspectionReport>();
            let local = request
                .extensions()
                .get::<Decision>()
                .is_some_and(|d| d.action() == Action::RouteLocal);
            *probe.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Forwarded {
                scan_time: report.map_or(Duration::ZERO, |r| r.scan_time),
                failure: report.and_then(|r| r.error),
                local,
            });
        }
        self.client.call(request)
    }
}

async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Body> {
    let metrics = &shared.metrics;
    // A guard, not a call at the end: a client that hangs up drops this future midway.
    let _in_flight = InFlight::enter(metrics);
    let route = Route::of(request.method(), request.uri().path());
    let anthropic = request.headers().contains_key("anthropic-version")
        || matches!(route, Route::Inspect(Provider::Anthropic, _));
    let response = match route {
        Route::Health => text(StatusCode::OK, "ok\n"),
        Route::Ready if metrics.is_ready() => text(StatusCode::OK, "ready\n"),
        Route::Ready => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        Route::Metrics => {
            let mut r = text(StatusCode::OK, metrics.render());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        Route::Unknown => error(
            anthropic,
            StatusCode::NOT_FOUND,
            "unknown_path",
            "privacy-router does not forward this path: only the OpenAI and Anthropic APIs it inspects are served.",
        ),
        Route::WrongMethod(_) => error(
            anthropic,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This method is not allowed on this path.",
        ),
        Route::Models | Route::Inspect(..) => match Arc::clone(&shared.slots).try_acquire_owned() {
            Err(_) => overloaded(anthropic, shared.config.max_in_flight),
            Ok(slot) => {
                let response = match route {
                    Route::Inspect(provider, _) => {
                        inspect(shared, provider, anthropic, request).await
                    }
                    _ => models(shared, request).await,
                };
                // The slot is held by the body, so a stream counts until its last byte.
                response.map(|body| {
                    body.map_frame(move |frame| {
                        let _held = &slot;
                        frame
                    })
                    .boxed_unsync()
                })
            }
        },
    };
    metrics.http(route.name(), response.status().as_u16());
    response
}

struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    fn enter(metrics: &'a Metrics) -> InFlight<'a> {
        metrics.enter();
        InFlight(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

async fn models(shared: &Shared, request: Request<Incoming>) -> Response<Body> {
    let Some(upstream) = &shared.config.openai else {
        return no_upstream(false);
    };
    // No prompt here, but the answer is bought with the proxy's upstream key: a client
    // the key map rejects gets nothing.
    if matches!(
        shared.config.keys.team(client_key(request.headers())),
        KeyTeam::Reject
    ) {
        return error(
            false,
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "The API key is missing or not known to privacy-router.",
        );
    }
    // A model id is a name, not a path: nothing for the upstream to decode into one.
    let id = request
        .uri()
        .path()
        .trim_start_matches("/v1/models")
        .trim_start_matches('/');
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return error(
            false,
            StatusCode::BAD_REQUEST,
            "bad_path",
            "Malformed model id.",
        );
    }
    let (mut parts, _body) = request.into_parts();
    if let Some(response) = to_upstream(shared, upstream, &mut parts, false) {
        return response;
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    match shared
        .plain
        .request(Request::from_parts(parts, Empty::new()))
        .await
    {
        Ok(response) => pass_through(response),
        Err(e) => {
            shared.metrics.upstream_error("openai");
            upstream_failed(false, "openai", &e)
        }
    }
}

async fn inspect(
    shared: &Shared,
    provider: Provider,
    anthropic: bool,
    request: Request<Incoming>,
) -> Response<Body> {
    let upstream = match provider {
        Provider::OpenAi => &shared.config.openai,
        Provider::Anthropic => &shared.config.anthropic,
    };
    let Some(upstream) = upstream else {
        return no_upstream(anthropic);
    };
    let (mut parts, body) = request.into_parts();

    // The team: from the client's API key when a key map is configured, else from the
    // team header. Either way it goes to the layer as a `Team` extension, which wins
    // over any header, and the header itself is not forwarded.
    let team = match shared.config.keys.team(client_key(&parts.headers)) {
        KeyTeam::NotConfigured => shared
            .team_resolver
            .resolve(
                None,
                parts
                    .headers
                    .get(&shared.team_header)
                    .map(HeaderValue::as_bytes),
            )
            .map(Team::new),
        KeyTeam::Team(team) => Some(Team::new(team)),
        KeyTeam::Default => Some(Team::new(crate::policy::DEFAULT_TEAM)),
        KeyTeam::Reject => {
            return error(
                anthropic,
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "The API key is missing or not known to privacy-router.",
            );
        }
    };

    if let Some(response) = to_upstream(shared, upstream, &mut parts, anthropic) {
        return response;
    }
    let probe = Probe::default();
    if let Some(team) = team {
        parts.extensions.insert(team);
    }
    parts.extensions.insert(probe.clone());

    let started = Instant::now();
    let result = shared
        .router
        .clone()
        .oneshot(Request::from_parts(parts, body))
        .await;
    let forwarded = *probe.0.lock().unwrap_or_else(|e| e.into_inner());
    let metrics = &shared.metrics;
    match forwarded {
        Some(f) => {
            metrics.scan_time(f.scan_time);
            if let Some(kind) = f.failure {
                metrics.inspection_failure(kind);
            }
        }
        // The layer answered itself (block, refusal): the time it took is the
        // inspection's, body read included.
        None => metrics.scan_time(started.elapsed()),
    }
    match result {
        Ok(response) => {
            match response.extensions().get::<Decision>() {
                Some(d) => {
                    metrics.decision(d.policy().team(), d.action().as_str());
                    if forwarded.is_none() && d.basis() == Basis::Error {
                        metrics.inspection_failure("refused");
                    }
                }
                None => metrics.decision("", "refused"),
            }
            pass_through(response)
        }
        Err(e) => {
            let name = if forwarded.is_some_and(|f| f.local) {
                "local"
            } else {
                provider.as_str()
            };
            metrics.upstream_error(name);
            upstream_failed(anthropic, name, &e)
        }
    }
}

/// The key the client authenticates with: `x-api-key` (Anthropic), else the bearer token
/// of `authorization` (OpenAI).
fn client_key(headers: &http::HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get("x-api-key") {
        return Some(v.as_bytes());
    }
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    let v = v
        .strip_prefix(b"Bearer ")
        .or_else(|| v.strip_prefix(b"bearer "))?;
    Some(v.trim_ascii())
}

/// Points a client request at `upstream`: its URI, cleaned headers, and no extensions
/// from the server side. Returns the answer (400) for a path that makes no URI.
fn to_upstream(
    shared: &Shared,
    upstream: &UpstreamConfig,
    parts: &mut http::request::Parts,
    anthropic: bool,
) -> Option<Response<Body>> {
    let Some(uri) = upstream_uri(upstream, &parts.uri) else {
        return Some(error(
            anthropic,
            StatusCode::BAD_REQUEST,
            "bad_path",
            "Malformed path.",
        ));
    };
    parts.uri = uri;
    clean_request_headers(&mut parts.headers, &shared.team_header, upstream);
    parts.extensions = http::Extensions::new();
    None
}

fn upstream_uri(upstream: &UpstreamConfig, original: &Uri) -> Option<Uri> {
    let path_and_query = original.path_and_query().map_or("/", |p| p.as_str());
    Uri::builder()
        .scheme(upstream.scheme.clone())
        .authority(upstream.authority.clone())
        .path_and_query(format!("{}{path_and_query}", upstream.prefix))
        .build()
        .ok()
}

/// Hop-by-hop headers (RFC 9110 7.6.1) are the connection's, not the request's.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

fn clean_request_headers(
    headers: &mut http::HeaderMap,
    team_header: &HeaderName,
    upstream: &UpstreamConfig,
) {
    remove_hop_by_hop(headers);
    headers.remove(header::TRANSFER_ENCODING);
    // The body is already here (the layer buffers it): `100-continue` was answered by
    // this server and means nothing to the upstream.
    headers.remove(header::EXPECT);
    // The client sets `host` from the URI.
    headers.remove(header::HOST);
    headers.remove(team_header);
    if let Some((name, value)) = &upstream.api_key {
        headers.remove(header::AUTHORIZATION);
        headers.remove("x-api-key");
        headers.insert(name.clone(), value.clone());
    }
}

fn remove_hop_by_hop(headers: &mut http::HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The upstream's response, frame by frame: server-sent events arrive as sent.
fn pass_through<B>(response: Response<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::TRANSFER_ENCODING);
    Response::from_parts(parts, body.map_err(Into::into).boxed_unsync())
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// An error in the API's own shape: OpenAI's `{"error": {...}}`, or Anthropic's
/// `{"type": "error", "error": {...}}` for Anthropic routes and clients.
fn error(anthropic: bool, status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = if anthropic {
        let kind = match status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => "api_error",
            s if s.as_u16() == 529 => "overloaded_error",
            _ => "invalid_request_error",
        };
        serde_json::json!({ "type": "error", "error": { "type": kind, "message": message } })
    } else {
        let kind = match status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => "server_error",
            _ => "invalid_request_error",
        };
        serde_json::json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut r = Response::new(full(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// More API requests are in flight than `max_in_flight`: Anthropic's 529
/// `overloaded_error`, OpenAI's 503; both SDKs retry these.
fn overloaded(anthropic: bool, limit: usize) -> Response<Body> {
    let status = if anthropic {
        StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    error(
        anthropic,
        status,
        "overloaded",
        &format!("privacy-router has {limit} requests in flight, its limit; retry later."),
    )
}

fn no_upstream(anthropic: bool) -> Response<Body> {
    error(
        anthropic,
        StatusCode::NOT_FOUND,
        "no_upstream",
        "No upstream is configured for this API in privacy-router.",
    )
}

fn upstream_failed(
    anthropic: bool,
    name: &'static str,
    e: &hyper_util::client::legacy::Error,
) -> Response<Body> {
    // hyper's errors describe the connection (refused, reset, TLS), never the body.
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause.push_str(": ");
        cause.push_str(&s.to_string());
        source = s.source();
    }
    eprintln!("privacy-router: upstream `{name}` failed: {cause}");
    error(
        anthropic,
        StatusCode::BAD_GATEWAY,
        "upstream_unreachable",
        &format!("privacy-router could not reach the `{name}` upstream."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys() {
        let mut h = http::HeaderMap::new();
        assert_eq!(client_key(&h), None);
        h.insert("authorization", HeaderValue::from_static("Bearer sk-1"));
        assert_eq!(client_key(&h), Some(&b"sk-1"[..]));
        h.insert("x-api-key", HeaderValue::from_static("sk-ant"));
        assert_eq!(client_key(&h), Some(&b"sk-ant"[..]));
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-stay", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-stay"));
    }
}
