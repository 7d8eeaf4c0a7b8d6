//! Which paths the proxy serves, and where each goes. Anything else fails closed.

use http::Method;

/// The provider an inference route belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Provider {
    OpenAi,
    Anthropic,
}

impl Provider {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }
}

/// A request's route. The `&'static str` names are metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Health,
    Ready,
    Metrics,
    /// A request with a prompt: inspected by the layer, then forwarded.
    Inspect(Provider, &'static str),
    /// `GET /v1/models[/{id}]`: no body, nothing to inspect; forwarded as is.
    Models,
    /// A known path with the wrong method.
    WrongMethod(&'static str),
    /// Anything else: 404, nothing forwarded.
    Unknown,
}

impl Route {
    /// Exact paths only (a trailing `/` is tolerated): a path the proxy does not know
    /// might carry a prompt to an endpoint it would not inspect the way it should.
    pub(crate) fn of(method: &Method, path: &str) -> Route {
        let path = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => path,
        };
        let inspect = |provider, name| {
            if method == Method::POST {
                Route::Inspect(provider, name)
            } else {
                Route::WrongMethod(name)
            }
        };
        let get = |route, name| {
            if method == Method::GET || method == Method::HEAD {
                route
            } else {
                Route::WrongMethod(name)
            }
        };
        match path {
            "/v1/chat/completions" => inspect(Provider::OpenAi, "chat_completions"),
            "/v1/responses" => inspect(Provider::OpenAi, "responses"),
            "/v1/completions" => inspect(Provider::OpenAi, "completions"),
            "/v1/embeddings" => inspect(Provider::OpenAi, "embeddings"),
            "/v1/messages" => inspect(Provider::Anthropic, "messages"),
            "/v1/models" => get(Route::Models, "models"),
            "/healthz" => get(Route::Health, "healthz"),
            "/readyz" => get(Route::Ready, "readyz"),
            "/metrics" => get(Route::Metrics, "metrics"),
            _ => match path.strip_prefix("/v1/models/") {
                Some(id) if !id.is_empty() && !id.contains('/') => get(Route::Models, "models"),
                _ => Route::Unknown,
            },
        }
    }

    /// The metric label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Route::Health => "healthz",
            Route::Ready => "readyz",
            Route::Metrics => "metrics",
            Route::Inspect(_, name) | Route::WrongMethod(name) => name,
            Route::Models => "models",
            Route::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let post = Method::POST;
        assert_eq!(
            Route::of(&post, "/v1/chat/completions"),
            Route::Inspect(Provider::OpenAi, "chat_completions")
        );
        assert_eq!(
            Route::of(&post, "/v1/messages/"),
            Route::Inspect(Provider::Anthropic, "messages")
        );
        assert_eq!(
            Route::of(&post, "/v1/messages/count_tokens"),
            Route::Unknown
        );
        assert_eq!(Route::of(&post, "/v1/files"), Route::Unknown);
        assert_eq!(Route::of(&Method::GET, "/v1/models/gpt-4o"), Route::Models);
        assert_eq!(Route::of(&Method::GET, "/v1/models/a/b"), Route::Unknown);
        assert_eq!(
            Route::of(&Method::GET, "/v1/chat/completions"),
            Route::WrongMethod("chat_completions")
        );
        assert_eq!(Route::of(&post, "/"), Route::Unknown);
    }
}
