//! [`ProxyConfig`]: the proxy's TOML file, checked with `file:line:col` errors.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use serde::Deserialize;
use toml::Spanned;

use super::keys::{KeyMap, UnknownKey};
use crate::audit::{Auditor, DEFAULT_QUEUE, Durability, FileSink, FingerprintKey};
use crate::middleware::DEFAULT_BODY_LIMIT;

/// API requests in flight at once unless the configuration says otherwise.
const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
use crate::policy::DEFAULT_TEAM_HEADER;

/// The proxy's configuration, read from a TOML file (see `examples/proxy.toml`).
///
/// ```
/// use privacy_router::proxy::ProxyConfig;
///
/// let config = ProxyConfig::from_toml(
///     "proxy.toml",
///     r#"
///         listen = "127.0.0.1:0"
///         policies = "policies"
///
///         [upstreams.openai]
///         url = "https://api.openai.com"
///     "#,
/// )?;
/// assert_eq!(config.listen().port(), 0);
/// assert_eq!(config.policies(), std::path::Path::new("policies"));
///
/// let err = ProxyConfig::from_toml("proxy.toml", "listen = 8080\n").unwrap_err();
/// assert_eq!((err.line(), err.col()), (Some(1), Some(10)));
/// assert!(err.to_string().starts_with("proxy.toml:1:10: "));
/// # Ok::<(), privacy_router::proxy::ConfigError>(())
/// ```
///
/// Relative paths (`policies`) are resolved against the directory of the file given to
/// [`load`](Self::load). `Debug` never shows client API keys or upstream credentials.
#[derive(Clone)]
pub struct ProxyConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) policies: PathBuf,
    pub(crate) reload_interval: Option<Duration>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) body_limit: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) decision_header: bool,
    pub(crate) openai: Option<UpstreamConfig>,
    pub(crate) anthropic: Option<UpstreamConfig>,
    pub(crate) team_header: String,
    pub(crate) keys: KeyMap,
    pub(crate) audit: Option<AuditConfig>,
}

/// The `[audit]` section: where and how decision records are written.
#[derive(Clone, Debug)]
pub(crate) struct AuditConfig {
    pub(crate) path: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) rotate_bytes: Option<u64>,
    pub(crate) rotate_daily: bool,
    pub(crate) queue: usize,
    pub(crate) key: FingerprintKey,
}

impl AuditConfig {
    /// Starts the writer thread.
    pub(crate) fn start(&self) -> Auditor {
        let mut sink = FileSink::new(&self.path)
            .durability(self.durability)
            .rotate_daily(self.rotate_daily);
        if let Some(bytes) = self.rotate_bytes {
            sink = sink.rotate_bytes(bytes);
        }
        Auditor::with_queue(sink, self.key.clone(), self.queue)
    }
}

/// One upstream provider: where requests go, and the credential the proxy sets (if any).
#[derive(Clone)]
pub(crate) struct UpstreamConfig {
    pub(crate) scheme: http::uri::Scheme,
    pub(crate) authority: http::uri::Authority,
    /// The URL's path without a trailing `/` (often empty); the client's path is appended.
    pub(crate) prefix: String,
    /// Replaces the client's credential when set: `authorization: Bearer KEY` for
    /// OpenAI, `x-api-key: KEY` for Anthropic.
    pub(crate) api_key: Option<(http::HeaderName, http::HeaderValue)>,
}

impl fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field(
                "url",
                &format_args!("{}://{}{}", self.scheme, self.authority, self.prefix),
            )
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("listen", &self.listen)
            .field("policies", &self.policies)
            .field("reload_interval", &self.reload_interval)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("body_limit", &self.body_limit)
            .field("decision_header", &self.decision_header)
            .field("openai", &self.openai)
            .field("anthropic", &self.anthropic)
            .field("team_header", &self.team_header)
            .field("keys", &self.keys)
            .field("audit", &self.audit)
            .finish()
    }
}

impl ProxyConfig {
    /// Reads and checks the file at `path`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the file and, for a problem inside it, the line and column:
    /// unreadable file, TOML syntax, unknown key, wrong type, a bad address, URL, duration
    /// or key hash, an `api_key_env` / `key_env` variable that is not set.
    pub fn load(path: impl AsRef<Path>) -> Result<ProxyConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            position: None,
            message: format!("cannot read the file: {e}"),
        })?;
        let mut config = ProxyConfig::from_toml(path, &text)?;
        let base = path.parent().unwrap_or(Path::new(""));
        if config.policies.is_relative() {
            config.policies = base.join(&config.policies);
        }
        if let Some(audit) = &mut config.audit
            && audit.path.is_relative()
        {
            audit.path = base.join(&audit.path);
        }
        Ok(config)
    }

    /// Checks `text` as if read from `path` (used in error messages; relative paths stay
    /// relative).
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load), without the I/O.
    pub fn from_toml(path: impl AsRef<Path>, text: &str) -> Result<ProxyConfig, ConfigError> {
        let path = path.as_ref();
        let at = |span: Range<usize>, message: String| ConfigError {
            path: path.to_path_buf(),
            position: Some(position(text, span.start)),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            position: e.span().map(|s| position(text, s.start)),
            message: e.message().trim_end().replace('\n', " "),
        })?;

        let listen = raw.listen.get_ref().parse::<SocketAddr>().map_err(|_| {
            at(
                raw.listen.span(),
                "`listen` must be an IP address and port such as \"127.0.0.1:8080\"".into(),
            )
        })?;
        let duration = |value: &Option<Spanned<String>>, key: &str, default: Duration| {
            value.as_ref().map_or(Ok(default), |v| {
                parse_duration(v.get_ref()).ok_or_else(|| {
                    at(
                        v.span(),
                        format!("`{key}` must be a duration such as \"2s\" or \"500ms\""),
                    )
                })
            })
        };
        let reload = duration(
            &raw.reload_interval,
            "reload_interval",
            Duration::from_secs(2),
        )?;
        let shutdown_timeout = duration(
            &raw.shutdown_timeout,
            "shutdown_timeout",
            Duration::from_secs(30),
        )?;
        let body_timeout = duration(&raw.body_timeout, "body_timeout", Duration::from_secs(30))?;
        if body_timeout.is_zero()
            && let Some(v) = &raw.body_timeout
        {
            return Err(at(v.span(), "`body_timeout` must be more than 0s".into()));
        }
        let max_in_flight = match &raw.max_in_flight {
            None => DEFAULT_MAX_IN_FLIGHT,
            Some(v) if *v.get_ref() > 0 => usize::try_from(*v.get_ref()).unwrap_or(usize::MAX),
            Some(v) => return Err(at(v.span(), "`max_in_flight` must be at least 1".into())),
        };
        let body_limit = match &raw.body_limit {
            None => DEFAULT_BODY_LIMIT,
            Some(v) if *v.get_ref() > 0 => usize::try_from(*v.get_ref()).unwrap_or(usize::MAX),
            Some(v) => return Err(at(v.span(), "`body_limit` must be at least 1".into())),
        };

        let upstream =
            |raw: &Option<RawUpstream>, header: &'static str| -> Result<_, ConfigError> {
                let Some(raw) = raw else { return Ok(None) };
                let url = raw.url.get_ref();
                let bad = || {
                    at(
                    raw.url.span(),
                    "`url` must be an http(s) URL with a host and no credentials, query or fragment"
                        .into(),
                )
                };
                let uri: Uri = url.parse().map_err(|_| bad())?;
                let scheme = uri.scheme().cloned().ok_or_else(bad)?;
                if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
                    return Err(bad());
                }
                let authority = uri.authority().cloned().ok_or_else(bad)?;
                if authority.as_str().contains('@') || uri.query().is_some() || url.contains('#') {
                    return Err(bad());
                }
                let prefix = uri.path().trim_end_matches('/').to_string();
                let api_key = match &raw.api_key_env {
                    None => None,
                    Some(var) => {
                        let value = std::env::var(var.get_ref()).map_err(|_| {
                            at(
                                var.span(),
                                format!("environment variable `{}` is not set", var.get_ref()),
                            )
                        })?;
                        let value = if header == "authorization" {
                            format!("Bearer {value}")
                        } else {
                            value
                        };
                        let mut value = http::HeaderValue::from_str(&value).map_err(|_| {
                            at(
                                var.span(),
                                format!(
                                    "environment variable `{}` is not a valid header value",
                                    var.get_ref()
                                ),
                            )
                        })?;
                        value.set_sensitive(true);
                        Some((http::HeaderName::from_static(header), value))
                    }
                };
                Ok(Some(UpstreamConfig {
                    scheme,
                    authority,
                    prefix,
                    api_key,
                }))
            };
        let openai = upstream(&raw.upstreams.get_ref().openai, "authorization")?;
        let anthropic = upstream(&raw.upstreams.get_ref().anthropic, "x-api-key")?;
        if openai.is_none() && anthropic.is_none() {
            return Err(at(
                raw.upstreams_span(),
                "`[upstreams]` needs `openai`, `anthropic` or both".into(),
            ));
        }

        let teams = raw.teams.unwrap_or_default();
        let team_header = match &teams.header {
            None => DEFAULT_TEAM_HEADER.to_string(),
            Some(h) => {
                http::HeaderName::from_bytes(h.get_ref().as_bytes())
                    .map_err(|_| at(h.span(), "`header` is not a valid header name".into()))?;
                h.get_ref().to_ascii_lowercase()
            }
        };
        let unknown_key = match &teams.unknown_key {
            None => UnknownKey::Reject,
            Some(v) => match v.get_ref().as_str() {
                "reject" => UnknownKey::Reject,
                "default" => UnknownKey::Default,
                _ => {
                    return Err(at(
                        v.span(),
                        "`unknown_key` must be \"reject\" or \"default\"".into(),
                    ));
                }
            },
        };
        let mut keys = KeyMap::new(unknown_key);
        for entry in &teams.keys {
            let valid = crate::policy::TeamResolver::new()
                .resolve(None, Some(entry.team.get_ref().as_bytes()))
                .is_some_and(|t| t == entry.team.get_ref());
            if !valid {
                return Err(at(
                    entry.team.span(),
                    "`team` must be lowercase letters, digits, `-` or `_`".into(),
                ));
            }
            let given = [
                entry.sha256.as_ref().map(|_| "sha256"),
                entry.key.as_ref().map(|_| "key"),
                entry.key_env.as_ref().map(|_| "key_env"),
            ];
            if given.iter().flatten().count() != 1 {
                return Err(at(
                    entry.team.span(),
                    "each `[[teams.keys]]` entry needs exactly one of `sha256`, `key`, `key_env`"
                        .into(),
                ));
            }
            let team = entry.team.get_ref();
            if let Some(hex) = &entry.sha256 {
                let hash = parse_sha256(hex.get_ref()).ok_or_else(|| {
                    at(
                        hex.span(),
                        "`sha256` must be 64 hexadecimal digits (`printf %s KEY | sha256sum`)"
                            .into(),
                    )
                })?;
                keys.insert_hash(hash, team);
            } else if let Some(key) = &entry.key {
                if key.get_ref().is_empty() {
                    return Err(at(key.span(), "`key` must not be empty".into()));
                }
                keys.insert_key(key.get_ref().as_bytes(), team);
            } else if let Some(var) = &entry.key_env {
                let value = std::env::var(var.get_ref())
                    .ok()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        at(
                            var.span(),
                            format!("environment variable `{}` is not set", var.get_ref()),
                        )
                    })?;
                keys.insert_key(value.as_bytes(), team);
            }
        }

        let audit = match &raw.audit {
            None => None,
            Some(a) => {
                let durability = match &a.durability {
                    None => Durability::EveryRecord,
                    Some(d) => match d.get_ref().as_str() {
                        "every_record" => Durability::EveryRecord,
                        "os" => Durability::Os,
                        other => Durability::Interval(parse_duration(other).ok_or_else(|| {
                            at(
                                d.span(),
                                "`durability` must be \"every_record\", \"os\" or a sync interval such as \"1s\"".into(),
                            )
                        })?),
                    },
                };
                let key = match &a.key_file {
                    Some(file) => {
                        let mut key_path = PathBuf::from(file.get_ref());
                        if key_path.is_relative() {
                            key_path = path.parent().unwrap_or(Path::new("")).join(key_path);
                        }
                        FingerprintKey::from_file(&key_path)
                            .map_err(|e| at(file.span(), format!("fingerprint key: {e}")))?
                    }
                    None => FingerprintKey::from_env()
                        .map_err(|e| at(a.path.span(), format!("`[audit]`: {e}")))?,
                };
                if a.queue.as_ref().is_some_and(|q| *q.get_ref() == 0) {
                    let q = a.queue.as_ref().map(Spanned::span).unwrap_or_default();
                    return Err(at(q, "`queue` must be at least 1".into()));
                }
                Some(AuditConfig {
                    path: PathBuf::from(a.path.get_ref()),
                    durability,
                    rotate_bytes: a.rotate_bytes,
                    rotate_daily: a.rotate_daily.unwrap_or(false),
                    queue: a.queue.as_ref().map_or(DEFAULT_QUEUE, |q| {
                        usize::try_from(*q.get_ref()).unwrap_or(usize::MAX)
                    }),
                    key,
                })
            }
        };

        Ok(ProxyConfig {
            listen,
            policies: PathBuf::from(raw.policies.get_ref()),
            reload_interval: (!reload.is_zero()).then_some(reload),
            shutdown_timeout,
            body_limit,
            body_timeout,
            max_in_flight,
            decision_header: raw.decision_header.unwrap_or(false),
            openai,
            anthropic,
            team_header,
            keys,
            audit,
        })
    }

    /// The address to listen on; port 0 picks a free port (the bound address is printed).
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The policy directory.
    pub fn policies(&self) -> &Path {
        &self.policies
    }

    /// How often the policy directory is checked for changes; `None` when polling is off
    /// (`reload_interval = "0s"`). Default 2 s.
    pub fn reload_interval(&self) -> Option<Duration> {
        self.reload_interval
    }

    /// How long shutdown waits for requests in flight (default 30 s).
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }

    /// How long a client may take to send a whole request body (default 30 s); a slower
    /// one is answered 408 and sent nowhere.
    pub fn body_timeout(&self) -> Duration {
        self.body_timeout
    }

    /// How many API requests may be in flight at once, streams included until their
    /// last byte (default 1,024); more are answered 503 (OpenAI) or 529 (Anthropic,
    /// `overloaded_error`) at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }
}

/// A problem with the proxy's configuration file: where, and what is wrong. Never the
/// value of a key or credential.
///
/// `Display` is `file:line:col: message` (or `file: message` when the problem has no
/// position, such as an unreadable file).
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigError {
    path: PathBuf,
    position: Option<(usize, usize)>,
    message: String,
}

impl ConfigError {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 1-based line, when the problem is inside the file.
    pub fn line(&self) -> Option<usize> {
        self.position.map(|p| p.0)
    }

    /// The 1-based column in characters, when the problem is inside the file.
    pub fn col(&self) -> Option<usize> {
        self.position.map(|p| p.1)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.path.display(), self.message)
            }
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column (in characters) of byte `offset`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..offset].chars().count() + 1)
}

/// `"500ms"`, `"2s"`, `"1m"`, `"0s"`.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = digits.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        _ => None,
    }
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Spanned<String>,
    policies: Spanned<String>,
    #[serde(default)]
    reload_interval: Option<Spanned<String>>,
    #[serde(default)]
    shutdown_timeout: Option<Spanned<String>>,
    #[serde(default)]
    body_limit: Option<Spanned<u64>>,
    #[serde(default)]
    body_timeout: Option<Spanned<String>>,
    #[serde(default)]
    max_in_flight: Option<Spanned<u64>>,
    #[serde(default)]
    decision_header: Option<bool>,
    upstreams: Spanned<RawUpstreams>,
    #[serde(default)]
    teams: Option<RawTeams>,
    #[serde(default)]
    audit: Option<RawAudit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    path: Spanned<String>,
    #[serde(default)]
    durability: Option<Spanned<String>>,
    #[serde(default)]
    rotate_bytes: Option<u64>,
    #[serde(default)]
    rotate_daily: Option<bool>,
    #[serde(default)]
    queue: Option<Spanned<u64>>,
    #[serde(default)]
    key_file: Option<Spanned<String>>,
}

impl RawConfig {
    fn upstreams_span(&self) -> Range<usize> {
        self.upstreams.span()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstreams {
    #[serde(default)]
    openai: Option<RawUpstream>,
    #[serde(default)]
    anthropic: Option<RawUpstream>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    url: Spanned<String>,
    #[serde(default)]
    api_key_env: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTeams {
    #[serde(default)]
    header: Option<Spanned<String>>,
    #[serde(default)]
    unknown_key: Option<Spanned<String>>,
    #[serde(default)]
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    team: Spanned<String>,
    #[serde(default)]
    sha256: Option<Spanned<String>>,
    #[serde(default)]
    key: Option<Spanned<String>>,
    #[serde(default)]
    key_env: Option<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_characters() {
        assert_eq!(position("a = 1\nbé = x", 10), (2, 4));
        assert_eq!(position("x", 0), (1, 1));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("2"), None);
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn errors_point_at_the_value_and_never_show_it() {
        let text = "listen = \"127.0.0.1:0\"\npolicies = \"p\"\n[upstreams.openai]\nurl = \"ftp://sekrit@x\"\n";
        let err = ProxyConfig::from_toml("c.toml", text).unwrap_err();
        assert_eq!((err.line(), err.col()), (Some(4), Some(7)));
        assert!(!err.to_string().contains("sekrit"));

        let text = "listen = \"127.0.0.1:0\"\npolicies = \"p\"\n[upstreams.openai]\nurl = \"http://x\"\n[[teams.keys]]\nteam = \"a\"\nkey = \"k1\"\nsha256 = \"00\"\n";
        let err = ProxyConfig::from_toml("c.toml", text).unwrap_err();
        assert_eq!(err.line(), Some(6));
        assert!(!err.to_string().contains("k1"));

        let err = ProxyConfig::from_toml("c.toml", "listen = \"x\"\nbogus = 1\n").unwrap_err();
        assert_eq!(err.line(), Some(2), "{err}");
    }
}
