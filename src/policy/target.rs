//! [`LocalTarget`]: the self-hosted model a team routes to.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The API a self-hosted server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocalApi {
    /// OpenAI-compatible (`/v1/chat/completions`): vLLM, llama.cpp server, Ollama, TGI.
    OpenAi,
}

impl LocalApi {
    /// The name used in policy files: `openai`.
    pub fn as_str(self) -> &'static str {
        match self {
            LocalApi::OpenAi => "openai",
        }
    }
}

/// Where the credentials for the self-hosted model come from. A policy never holds a
/// token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// No credentials.
    None,
    /// An environment variable, read when the token is needed.
    Env(String),
    /// A file (resolved relative to the policy file), read when the token is needed.
    File(PathBuf),
}

/// The `[local]` table: the self-hosted, OpenAI-compatible model that requests go to when
/// the decision is [`Action::RouteLocal`](super::Action::RouteLocal).
///
/// `Debug` shows where the token comes from, never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalTarget {
    pub(crate) base_url: String,
    pub(crate) api: LocalApi,
    pub(crate) models: BTreeMap<String, String>,
    pub(crate) fallback_model: Option<String>,
    pub(crate) token: TokenSource,
    pub(crate) timeout: Duration,
}

/// When a policy says nothing: long enough for a slow local model to answer a long prompt.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

impl LocalTarget {
    /// The base URL, without a trailing `/` (`http://llm.internal:8000/v1`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The API it speaks.
    pub fn api(&self) -> LocalApi {
        self.api
    }

    /// The local model for a requested model: the exact mapping if there is one, else the
    /// `"*"` mapping, else `None` (keep the requested name).
    ///
    /// ```
    /// # use privacy_router::policy::PolicySet;
    /// let set = PolicySet::from_sources([(
    ///     "default.toml",
    ///     r#"
    ///         team = "default"
    ///         [local]
    ///         base_url = "http://llm.internal:8000/v1"
    ///         models = { "gpt-4o" = "llama-3.3-70b", "*" = "llama-3.1-8b" }
    ///     "#,
    /// )])?;
    /// let local = set.team("default").target().unwrap();
    /// assert_eq!(local.model_for("gpt-4o"), Some("llama-3.3-70b"));
    /// assert_eq!(local.model_for("gpt-4.1-mini"), Some("llama-3.1-8b"));
    /// # Ok::<(), privacy_router::policy::Diagnostics>(())
    /// ```
    pub fn model_for(&self, requested: &str) -> Option<&str> {
        self.models
            .get(requested)
            .or(self.fallback_model.as_ref())
            .map(String::as_str)
    }

    /// Where the token comes from.
    pub fn token_source(&self) -> &TokenSource {
        &self.token
    }

    /// Reads the token now (from the environment or the file; surrounding whitespace is
    /// trimmed). `Ok(None)` when the policy names no credentials.
    ///
    /// # Errors
    ///
    /// The variable is unset or not Unicode, or the file cannot be read. The error names
    /// the variable or file, never its content.
    pub fn read_token(&self) -> io::Result<Option<String>> {
        match &self.token {
            TokenSource::None => Ok(None),
            TokenSource::Env(name) => std::env::var(name)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("environment variable {name} is not set"),
                    )
                }),
            TokenSource::File(path) => std::fs::read_to_string(path)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot read token file {}: {e}", path.display()),
                    )
                }),
        }
    }

    /// How long a request to the local model may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl fmt::Display for LocalTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.base_url, self.api.as_str())
    }
}

/// Checks a base URL and returns it without a trailing `/`.
///
/// Only `http` and `https`, a non-empty host (a name, an IPv4 address or a bracketed IPv6
/// address), an optional numeric port, and no credentials: a token in a URL ends up in
/// logs, so it belongs in `token_env` or `token_file`. No query or fragment.
pub(crate) fn check_base_url(url: &str) -> Result<String, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        "expected an absolute URL such as `http://llm.internal:8000/v1`".to_string()
    })?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("scheme must be `http` or `https`, not `{scheme}`"));
    }
    if rest.contains(['?', '#']) {
        return Err("a base URL has no query or fragment".to_string());
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Err(
            "credentials do not belong in the URL: use `token_env` or `token_file`".to_string(),
        );
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed `[` in the host")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("the bracketed host is not an IPv6 address".to_string());
        }
        match after {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .ok_or("expected `:port` after the IPv6 host")?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the URL has no host".to_string());
    }
    let host_ok = authority.starts_with('[')
        || host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !host_ok {
        return Err("the host is not a valid DNS name or IP address".to_string());
    }
    if let Some(p) = port
        && !p.parse::<u16>().is_ok_and(|p| p != 0)
    {
        return Err("the port must be a number from 1 to 65535".to_string());
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Parses `"30s"`, `"500ms"`, `"2m"`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| "expected a duration such as \"30s\", \"500ms\" or \"2m\"".to_string())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err("the unit must be `ms`, `s` or `m`".to_string()),
    };
    if d.is_zero() {
        return Err("the timeout must be greater than zero".to_string());
    }
    Ok(d)
}

/// Resolves a path written in a policy file against that file's directory.
pub(crate) fn relative_to(policy_file: &Path, path: &str) -> PathBuf {
    policy_file.parent().unwrap_or(Path::new(".")).join(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            check_base_url("http://llm.internal:8000/v1/").unwrap(),
            "http://llm.internal:8000/v1"
        );
        assert!(check_base_url("https://[::1]:8443/v1").is_ok());
        assert!(check_base_url("https://10.0.0.7/v1").is_ok());
        for bad in [
            "ftp://llm.internal",
            "llm.internal:8000",
            "http://",
            "http://user:pw@llm.internal",
            "http://llm.internal:99999",
            "http://llm internal",
            "http://llm.internal/v1?x=1",
            "http://[zz]:80",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("s").is_err());
    }
}
