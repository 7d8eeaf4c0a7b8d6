//! Rewriting a request for the self-hosted target.

use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::{PathAndQuery, Uri};

use crate::policy::LocalTarget;

/// Headers that carry the external provider's credentials or identify the caller to it.
/// They never reach the self-hosted target.
const PROVIDER_HEADERS: [&str; 9] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "openai-organization",
    "openai-project",
    "x-goog-api-key",
    "cookie",
    "x-stainless-helper-method",
];

/// Query parameters that carry a provider's credentials (`?key=` for Gemini,
/// `?api-key=` for Azure): they never reach the self-hosted target.
fn is_credential_param(pair: &str) -> bool {
    let name = pair.split('=').next().unwrap_or(pair).to_ascii_lowercase();
    matches!(
        name.as_str(),
        "key" | "api-key" | "api_key" | "apikey" | "access_token" | "token" | "sig" | "code"
    )
}

/// Why a request could not be pointed at the target.
#[derive(Debug)]
pub(crate) enum RouteError {
    /// The token file or variable could not be read.
    Credentials,
    /// The target URL and the request path do not make a valid URI.
    Uri,
}

/// Points `parts` at `target`: scheme, authority and path, `host`, credentials.
/// `body_len` is the length of the body that will be sent, when the layer rewrote it.
pub(crate) fn to_local(
    parts: &mut Parts,
    target: &LocalTarget,
    body_len: Option<usize>,
) -> Result<(), RouteError> {
    let base: Uri = target.base_url().parse().map_err(|_| RouteError::Uri)?;
    let base_path = base.path().trim_end_matches('/');
    // `/v1/chat/completions` against `http://llm:8000/v1` is `http://llm:8000/v1/chat/completions`;
    // the API version prefix of the incoming path is the base URL's to choose.
    let path = parts.uri.path();
    let endpoint = path
        .strip_prefix("/v1")
        .filter(|p| p.is_empty() || p.starts_with('/'))
        .unwrap_or(path);
    let mut pq = format!("{base_path}{endpoint}");
    let query: Vec<&str> = parts
        .uri
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !is_credential_param(p))
        .collect();
    if !query.is_empty() {
        pq.push('?');
        pq.push_str(&query.join("&"));
    }
    let mut uri = Uri::builder();
    if let Some(s) = base.scheme() {
        uri = uri.scheme(s.clone());
    }
    if let Some(a) = base.authority() {
        uri = uri.authority(a.clone());
    }
    let authority = base.authority().ok_or(RouteError::Uri)?.clone();
    parts.uri = uri
        .path_and_query(PathAndQuery::try_from(pq).map_err(|_| RouteError::Uri)?)
        .build()
        .map_err(|_| RouteError::Uri)?;

    let headers = &mut parts.headers;
    for name in PROVIDER_HEADERS {
        headers.remove(name);
    }
    let anthropic: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("anthropic-") || k.as_str().starts_with("openai-"))
        .cloned()
        .collect();
    for name in anthropic {
        headers.remove(name);
    }
    headers.insert(
        header::HOST,
        HeaderValue::from_str(authority.as_str()).map_err(|_| RouteError::Uri)?,
    );
    if let Some(token) = target.read_token().map_err(|_| RouteError::Credentials)? {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| RouteError::Credentials)?;
        value.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, value);
    }
    if let Some(len) = body_len {
        headers.remove(header::CONTENT_ENCODING);
        headers.remove(header::TRANSFER_ENCODING);
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(())
}
