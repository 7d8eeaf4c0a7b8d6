//! [`PrivacyRouterLayer`]: configuration, by value.

use std::fmt;
use std::sync::Arc;

use http::HeaderName;
use http::request::Parts;
use tower::Layer;

use crate::audit::Auditor;
use crate::policy::{PolicyHandle, PolicySet, TeamResolver};

use super::service::PrivacyRouter;

/// Where the layer gets the policy set in force, once per request.
///
/// Implemented for [`PolicyHandle`] (reloadable) and `Arc<PolicySet>` (fixed). A source
/// that returns `None` has no policy in force: every request is refused (503), never
/// forwarded.
pub trait PolicySource: Send + Sync + 'static {
    /// The set in force now. A request keeps the set it got for its whole life.
    fn current(&self) -> Option<Arc<PolicySet>>;
}

impl PolicySource for PolicyHandle {
    fn current(&self) -> Option<Arc<PolicySet>> {
        Some(PolicyHandle::current(self))
    }
}

impl PolicySource for Arc<PolicySet> {
    fn current(&self) -> Option<Arc<PolicySet>> {
        Some(Arc::clone(self))
    }
}

/// The default body limit: 8 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 8 << 20;

/// The response header that reports the action, when enabled.
pub const DECISION_HEADER: &str = "x-privacy-router-action";

pub(crate) struct Config {
    pub(crate) policies: Arc<dyn PolicySource>,
    pub(crate) body_limit: usize,
    pub(crate) body_timeout: Option<std::time::Duration>,
    pub(crate) decoded_limit: usize,
    pub(crate) teams: TeamResolver,
    pub(crate) decision_header: Option<HeaderName>,
    pub(crate) hook: Option<fn(&Parts)>,
    pub(crate) audit: Option<Auditor>,
}

/// Inspects every request with the team's policy, then forwards, redacts, reroutes to the
/// self-hosted model, or blocks. See the [module docs](super) for the whole story.
///
/// ```
/// use std::sync::Arc;
/// use privacy_router::middleware::PrivacyRouterLayer;
/// use privacy_router::policy::PolicySet;
///
/// let policies = PolicySet::from_sources([("default.toml", "team = \"default\"\n")])?;
/// let layer = PrivacyRouterLayer::new(Arc::new(policies))
///     .body_limit(2 << 20)
///     .team_header("x-team")
///     .decision_header(true);
/// # let _ = layer;
/// # Ok::<(), privacy_router::policy::Diagnostics>(())
/// ```
#[derive(Clone)]
pub struct PrivacyRouterLayer {
    config: Arc<Config>,
}

impl PrivacyRouterLayer {
    /// A layer that takes its policies from `policies`, with an 8 MiB body limit, teams
    /// from the `x-team` header (or a [`Team`](crate::policy::Team) request extension),
    /// and no decision header.
    pub fn new(policies: impl PolicySource) -> PrivacyRouterLayer {
        PrivacyRouterLayer {
            config: Arc::new(Config {
                policies: Arc::new(policies),
                body_limit: DEFAULT_BODY_LIMIT,
                body_timeout: None,
                decoded_limit: 4 * DEFAULT_BODY_LIMIT,
                teams: TeamResolver::new(),
                decision_header: None,
                hook: None,
                audit: None,
            }),
        }
    }

    fn config(mut self, f: impl FnOnce(&mut Config)) -> Self {
        match Arc::get_mut(&mut self.config) {
            Some(c) => f(c),
            None => {
                let c = &*self.config;
                let mut copy = Config {
                    policies: Arc::clone(&c.policies),
                    body_limit: c.body_limit,
                    body_timeout: c.body_timeout,
                    decoded_limit: c.decoded_limit,
                    teams: c.teams.clone(),
                    decision_header: c.decision_header.clone(),
                    hook: c.hook,
                    audit: c.audit.clone(),
                };
                f(&mut copy);
                self.config = Arc::new(copy);
            }
        }
        self
    }

    /// The largest body, in bytes, that is buffered and inspected. A larger body gets the
    /// team's `on_error` action without being read whole: `route_local` streams it to the
    /// self-hosted model unread, `block` answers 413.
    pub fn body_limit(self, bytes: usize) -> Self {
        self.config(|c| {
            c.body_limit = bytes;
            c.decoded_limit = c.decoded_limit.max(bytes);
        })
    }

    /// How long the whole request body may take to arrive (default: no limit). A body
    /// still incomplete after it is answered 408 in the API's error shape, audited as
    /// `body-read-timeout`, and sent nowhere. Set it where bodies come from a network
    /// client (the proxy does, 30 s by default); a service that builds its own bodies
    /// needs none. Needs a Tokio runtime with time enabled.
    pub fn body_timeout(self, limit: std::time::Duration) -> Self {
        self.config(|c| c.body_timeout = Some(limit))
    }

    /// The largest decoded size of a `Content-Encoding`-compressed body (default four
    /// times the body limit). Beyond it the body is treated as uninspectable.
    pub fn decoded_limit(self, bytes: usize) -> Self {
        self.config(|c| c.decoded_limit = bytes)
    }

    /// The request header that names the team (default `x-team`).
    pub fn team_header(self, name: &str) -> Self {
        self.config(|c| c.teams = TeamResolver::new().with_header(name))
    }

    /// Report the action in an `x-privacy-router-action` response header.
    pub fn decision_header(self, on: bool) -> Self {
        self.config(|c| c.decision_header = on.then(|| HeaderName::from_static(DECISION_HEADER)))
    }

    /// Write an audit record for every request through `auditor`, before anything is
    /// forwarded (see [`Auditor`] for the queue, durability and failure rules).
    ///
    /// A request is forwarded only once its record is committed. If the record cannot be
    /// written (queue full, sink failure, auditor shut down), the request gets its
    /// team's `on_error` instead: `block` answers 503, `route_local` sends it to the
    /// self-hosted model; it never goes to the external provider unrecorded. Blocked
    /// requests are recorded too, without waiting. With an auditor, the
    /// [`InspectionReport`](super::InspectionReport) also carries value fingerprints.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use privacy_router::audit::{Auditor, FingerprintKey, MemorySink};
    /// use privacy_router::middleware::PrivacyRouterLayer;
    /// use privacy_router::policy::PolicySet;
    ///
    /// let policies = PolicySet::from_sources([("default.toml", "team = \"default\"\n")])?;
    /// let auditor = Auditor::new(MemorySink::new(), FingerprintKey::from_bytes(vec![3; 32])?);
    /// let layer = PrivacyRouterLayer::new(Arc::new(policies)).audit(auditor);
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn audit(self, auditor: Auditor) -> Self {
        self.config(|c| c.audit = Some(auditor))
    }

    /// Fault injection for tests: a function run at the start of every inspection, inside
    /// the panic guard.
    #[doc(hidden)]
    pub fn inspection_hook(self, hook: fn(&Parts)) -> Self {
        self.config(|c| c.hook = Some(hook))
    }
}

impl fmt::Debug for PrivacyRouterLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivacyRouterLayer")
            .field("body_limit", &self.config.body_limit)
            .field("decoded_limit", &self.config.decoded_limit)
            .field("team_header", &self.config.teams.header())
            .field("decision_header", &self.config.decision_header)
            .field("audit", &self.config.audit)
            .finish()
    }
}

impl<S> Layer<S> for PrivacyRouterLayer {
    type Service = PrivacyRouter<S>;

    fn layer(&self, inner: S) -> PrivacyRouter<S> {
        PrivacyRouter::new(inner, Arc::clone(&self.config))
    }
}
