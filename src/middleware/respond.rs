//! The layer's own answers, in the error shape of the API the client speaks.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

use crate::extract::ApiFormat;
use crate::policy::Decision;

use super::body::ResponseBody;

/// Why the layer answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The policy blocked the request.
    Blocked,
    /// The body is larger than the layer's limit and the policy blocks such requests.
    TooLarge,
    /// The body could not be inspected and the policy blocks such requests.
    Uninspectable,
    /// No policy is in force.
    NoPolicy,
    /// The request body could not be read from the client.
    BodyRead,
    /// The request body did not arrive within the layer's `body_timeout`.
    BodyTimeout,
    /// The self-hosted target's credentials could not be read.
    TargetUnavailable,
    /// The self-hosted target did not answer within its `timeout`.
    LocalTimeout,
    /// The audit record could not be written and the policy blocks unrecorded requests.
    AuditUnavailable,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::Blocked => StatusCode::FORBIDDEN,
            Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Uninspectable | Refusal::BodyRead => StatusCode::BAD_REQUEST,
            Refusal::NoPolicy | Refusal::TargetUnavailable | Refusal::AuditUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Refusal::LocalTimeout => StatusCode::GATEWAY_TIMEOUT,
            Refusal::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// OpenAI's `error.type` and Anthropic's `error.type`.
    fn types(self) -> (&'static str, &'static str) {
        match self {
            Refusal::Blocked => ("privacy_policy_violation", "permission_error"),
            Refusal::TooLarge => ("invalid_request_error", "request_too_large"),
            Refusal::Uninspectable | Refusal::BodyRead | Refusal::BodyTimeout => {
                ("invalid_request_error", "invalid_request_error")
            }
            Refusal::NoPolicy
            | Refusal::TargetUnavailable
            | Refusal::AuditUnavailable
            | Refusal::LocalTimeout => ("server_error", "api_error"),
        }
    }

    fn code(self) -> &'static str {
        match self {
            Refusal::Blocked => "blocked_by_privacy_policy",
            Refusal::TooLarge => "request_too_large",
            Refusal::Uninspectable => "uninspectable_request",
            Refusal::NoPolicy => "privacy_policy_unavailable",
            Refusal::BodyRead => "request_body_unreadable",
            Refusal::BodyTimeout => "request_body_timeout",
            Refusal::TargetUnavailable => "local_model_unavailable",
            Refusal::LocalTimeout => "local_model_timeout",
            Refusal::AuditUnavailable => "audit_log_unavailable",
        }
    }
}

/// The error shape of a forwarded request, kept in its extensions for refusals made
/// after it was routed (a local model's timeout): routing to a local model removes the
/// `anthropic-*` headers [`error_format`] reads.
#[derive(Clone, Copy)]
pub(crate) struct ErrorShape(pub(crate) ApiFormat);

/// The API whose error shape answers a request: a known path's, and for any other path
/// Anthropic's if the request says it speaks Anthropic's API (`anthropic-version`, which
/// the Anthropic SDKs send on every call), OpenAI's if not.
pub(crate) fn error_format(format: ApiFormat, headers: &http::HeaderMap) -> ApiFormat {
    if !format.is_known_api() && headers.contains_key("anthropic-version") {
        ApiFormat::AnthropicMessages
    } else {
        format
    }
}

/// Builds the answer. The message names the team, the detectors and their counts, never
/// a value.
pub(crate) fn refuse<B>(
    format: ApiFormat,
    refusal: Refusal,
    decision: Option<&Decision>,
    error_kind: Option<&'static str>,
) -> Response<ResponseBody<B>> {
    let message = message(refusal, decision, error_kind);
    let (openai_type, anthropic_type) = refusal.types();
    let body = if format.is_anthropic() {
        json!({ "type": "error", "error": { "type": anthropic_type, "message": message } })
    } else {
        json!({ "error": { "message": message, "type": openai_type, "param": null, "code": refusal.code() } })
    };
    let bytes = Bytes::from(serde_json::to_vec(&body).expect("a JSON value serialises"));
    let mut response = Response::new(ResponseBody::full(bytes.clone()));
    *response.status_mut() = refusal.status();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    response
}

fn message(
    refusal: Refusal,
    decision: Option<&Decision>,
    error_kind: Option<&'static str>,
) -> String {
    let team = decision.map_or("?", |d| d.policy().team());
    match refusal {
        Refusal::Blocked => {
            let found: Vec<String> = decision
                .map(|d| {
                    d.reasons()
                        .iter()
                        .map(|r| format!("{} x{}", r.detector(), r.count()))
                        .collect()
                })
                .unwrap_or_default();
            if found.is_empty() {
                format!("This request was blocked by the privacy policy of team `{team}`.")
            } else {
                format!(
                    "This request was blocked by the privacy policy of team `{team}`: it contains {}.",
                    found.join(", ")
                )
            }
        }
        Refusal::TooLarge => {
            format!("The request body is larger than the privacy inspection limit (team `{team}`).")
        }
        Refusal::Uninspectable => format!(
            "The request could not be inspected ({}) and the privacy policy of team `{team}` blocks such requests.",
            error_kind.unwrap_or("error")
        ),
        Refusal::NoPolicy => "No privacy policy is in force; the request was not sent.".to_string(),
        Refusal::BodyRead => "The request body could not be read.".to_string(),
        Refusal::BodyTimeout => "The request body did not arrive in time.".to_string(),
        Refusal::AuditUnavailable => format!(
            "The audit log could not record this request and the privacy policy of team `{team}` does not send unrecorded requests; it was not sent."
        ),
        Refusal::LocalTimeout => {
            format!("The self-hosted model of team `{team}` did not answer within its timeout.")
        }
        Refusal::TargetUnavailable => {
            format!(
                "The self-hosted model of team `{team}` is not available (its credentials could not be read)."
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a refusal on a path the layer does not know came in OpenAI's shape to
    /// Anthropic's SDKs.
    #[test]
    fn anthropic_clients_get_anthropic_errors_on_unknown_paths() {
        let mut headers = http::HeaderMap::new();
        let unknown = ApiFormat::from_path("/v1/messages/batches");
        assert_eq!(error_format(unknown, &headers), ApiFormat::GenericJson);
        headers.insert(
            "anthropic-version",
            http::HeaderValue::from_static("2023-06-01"),
        );
        assert_eq!(
            error_format(unknown, &headers),
            ApiFormat::AnthropicMessages
        );
        assert_eq!(
            error_format(ApiFormat::Text, &headers),
            ApiFormat::AnthropicMessages
        );
        // A known path keeps its own API's shape.
        assert_eq!(
            error_format(ApiFormat::OpenAiChat, &headers),
            ApiFormat::OpenAiChat
        );
    }
}
