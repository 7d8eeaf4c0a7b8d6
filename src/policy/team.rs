//! Which team a request belongs to: [`Team`] and [`TeamResolver`].
//!
//! Nothing here knows HTTP: the middleware hands over the header value and the request
//! extension it found, and the resolver says which name to look up. The policy set then
//! falls back to the `default` team for names it does not know.

use std::fmt;
use std::sync::Arc;

/// The header the team name is read from when nothing else is configured.
pub const DEFAULT_TEAM_HEADER: &str = "x-team";

/// A team name set by the application as a typed request extension.
///
/// It wins over the header: a service that knows who is calling (from its own
/// authentication) should not let a client-controlled header choose a laxer policy.
///
/// ```
/// use privacy_router::policy::{Team, TeamResolver};
///
/// let resolver = TeamResolver::new();
/// let set_by_app = Team::new("payments");
/// assert_eq!(resolver.resolve(Some(&set_by_app), Some(b"research")), Some("payments"));
/// assert_eq!(resolver.resolve(None, Some(b" research ")), Some("research"));
/// assert_eq!(resolver.resolve(None, Some(b"not a team!")), None);
/// assert_eq!(resolver.header(), "x-team");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Team(Arc<str>);

impl Team {
    /// A team name.
    pub fn new(name: &str) -> Team {
        Team(Arc::from(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Team {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Team").field(&&*self.0).finish()
    }
}

impl fmt::Display for Team {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a request's team is found: the [`Team`] extension if the application set one,
/// else a header (by default [`DEFAULT_TEAM_HEADER`]). A missing or malformed name
/// resolves to `None`, which [`PolicySet::team`](super::PolicySet::team) turns into the
/// `default` team's policy, as it does for names without a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamResolver {
    header: String,
}

impl Default for TeamResolver {
    fn default() -> Self {
        TeamResolver::new()
    }
}

impl TeamResolver {
    /// Reads the [`DEFAULT_TEAM_HEADER`].
    pub fn new() -> TeamResolver {
        TeamResolver {
            header: DEFAULT_TEAM_HEADER.to_string(),
        }
    }

    /// Reads another header (the name is lowercased, as HTTP/2 requires).
    pub fn with_header(mut self, name: &str) -> TeamResolver {
        self.header = name.to_ascii_lowercase();
        self
    }

    /// The header name.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// The team name: the extension's if there is one, else the header value's (trimmed)
    /// if it is a plausible team name (lowercase ASCII letters, digits, `-`, `_`, at most
    /// 64 bytes).
    pub fn resolve<'a>(
        &self,
        extension: Option<&'a Team>,
        header_value: Option<&'a [u8]>,
    ) -> Option<&'a str> {
        if let Some(team) = extension {
            return Some(team.as_str());
        }
        let value = std::str::from_utf8(header_value?).ok()?.trim();
        super::file::is_name(value).then_some(value)
    }
}
