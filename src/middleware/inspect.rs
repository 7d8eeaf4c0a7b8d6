//! The synchronous heart of the layer: decode, extract, scan, decide, and prepare what
//! is forwarded. No I/O happens here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header;
use http::request::Parts;

use crate::audit::{Fingerprint, FingerprintKey};
use crate::extract::{self, ApiFormat, Extracted, Segment};
use crate::policy::{Action, Basis, Decision, TeamPolicy};
use crate::scan::Finding;

use super::decode;

/// Facts about one request's inspection, put into the request's and the response's
/// extensions beside the [`Decision`]. Holds no prompt text.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct InspectionReport {
    /// The API format the body was read as.
    pub format: ApiFormat,
    /// Why inspection could not complete (`body-too-large`, `malformed-json`,
    /// `unknown-encoding`, `panic`, ...), or `None` when it did.
    pub error: Option<&'static str>,
    /// The `model` the request asked for.
    pub requested_model: Option<String>,
    /// Bytes of prompt text scanned.
    pub scanned_bytes: usize,
    /// Time spent extracting, scanning and deciding.
    pub scan_time: Duration,
    /// The request continues a conversation the provider keeps
    /// (`previous_response_id`): earlier turns were not in the body and not inspected.
    pub continues_previous_response: bool,
    /// Keyed fingerprints of the matched values, one per distinct (detector, value), in
    /// order, at most [`MAX_FINGERPRINTS`]; empty unless the layer audits (the key is the
    /// auditor's). The values themselves never leave the inspection.
    pub fingerprints: Vec<(String, Fingerprint)>,
}

/// The most fingerprints one request's report (and audit record) carries.
pub const MAX_FINGERPRINTS: usize = 256;

impl InspectionReport {
    pub(crate) fn failed(format: ApiFormat, error: &'static str) -> InspectionReport {
        InspectionReport {
            format,
            error: Some(error),
            requested_model: None,
            scanned_bytes: 0,
            scan_time: Duration::ZERO,
            continues_previous_response: false,
            fingerprints: Vec::new(),
        }
    }
}

/// What inspecting one request produced.
pub(crate) struct Inspection {
    pub(crate) decision: Decision,
    pub(crate) report: InspectionReport,
    /// The body to forward in place of the original, if it changed (decoded, redacted,
    /// model mapped). `None` forwards the original bytes.
    pub(crate) rewritten: Option<Bytes>,
}

/// Inspects a fully buffered body for `policy`.
pub(crate) fn inspect(
    policy: &TeamPolicy,
    parts: &Parts,
    body: &Bytes,
    decoded_limit: usize,
    key: Option<&FingerprintKey>,
) -> Inspection {
    let format = format_of(parts);
    let failed = |kind: &'static str| Inspection {
        decision: policy.decide_error(),
        report: InspectionReport::failed(format, kind),
        rewritten: None,
    };

    // Every `Content-Encoding` line counts: an upstream applies them all, so inspection
    // must undo them all (`identity` on one line and `gzip` on the next is gzip).
    let mut encoding = String::new();
    for v in parts.headers.get_all(header::CONTENT_ENCODING) {
        match v.to_str() {
            Ok(s) => {
                if !encoding.is_empty() {
                    encoding.push(',');
                }
                encoding.push_str(s);
            }
            Err(_) => return failed("unknown-encoding"),
        }
    }
    let decoded = match (!encoding.is_empty()).then_some(encoding.as_str()) {
        Some(enc) => match decode::decode(enc, body, decoded_limit) {
            Ok(d) => d,
            Err(e) => return failed(e.kind()),
        },
        None => None,
    };
    let plain: &[u8] = decoded.as_deref().unwrap_or(body);
    // Text is read as UTF-8. A body that says it is in another charset (UTF-16 text is
    // valid UTF-8 with a NUL between letters, and no detector would match it) is not
    // read at all. JSON is UTF-8 by definition (RFC 8259); anything else fails to parse.
    if declares_other_charset(parts) {
        return failed("unsupported-charset");
    }

    let started = Instant::now();
    let extracted = if plain.is_empty() {
        None
    } else {
        match extract::extract(format, plain) {
            Ok(x) => Some(x),
            // A body on an unknown path that merely is not JSON is scanned as text.
            Err(_) if format == ApiFormat::GenericJson && !declares_json(parts) => {
                match extract::extract(ApiFormat::Text, plain) {
                    Ok(x) => Some(x),
                    Err(e) => return failed(e.kind()),
                }
            }
            Err(e) => return failed(e.kind()),
        }
    };
    let Some(extracted) = extracted else {
        return Inspection {
            decision: policy.decide(&[]),
            report: InspectionReport {
                format,
                error: None,
                requested_model: None,
                scanned_bytes: 0,
                scan_time: started.elapsed(),
                continues_previous_response: false,
                fingerprints: Vec::new(),
            },
            rewritten: None,
        };
    };

    let per_segment: Vec<Vec<Finding>> = extracted
        .segments()
        .iter()
        .map(|s| scan_segment(policy, s))
        .collect();
    let all: Vec<Finding> = per_segment.iter().flatten().cloned().collect();
    let mut decision = if extracted.unscannable().is_empty() {
        policy.decide(&all)
    } else {
        policy.decide_with_unscannable(&all)
    };
    let scan_time = started.elapsed();
    // The model name is client text: it is reported (and audited) only when it looks
    // like a model name and holds nothing the scanner finds.
    let requested_model = extracted
        .model()
        .filter(|m| is_model_name(m) && policy.scan(m).is_empty())
        .map(str::to_string);
    let fingerprints = key.map_or_else(Vec::new, |key| fingerprints(key, &extracted, &per_segment));

    let mut error = None;
    let rewritten = match decision.action() {
        Action::Allow | Action::Block => None,
        Action::Redact => match redact(policy, &decision, &extracted, plain, &per_segment) {
            Some(body) => Some(Bytes::from(body)),
            None => {
                // Redaction left something the policy keeps in: fail closed.
                decision = policy.decide_error();
                error = Some("redaction-incomplete");
                local_body(&decision, &extracted, plain, decoded.is_some())
            }
        },
        Action::RouteLocal => local_body(&decision, &extracted, plain, decoded.is_some()),
    };
    Inspection {
        decision,
        report: InspectionReport {
            format,
            error,
            requested_model,
            scanned_bytes: extracted.scanned_bytes(),
            scan_time,
            continues_previous_response: extracted.continues_previous_response(),
            fingerprints,
        },
        rewritten,
    }
}

/// The keyed fingerprint of every finding's value: hashed here, so values never leave
/// the inspection in the clear.
fn fingerprints(
    key: &FingerprintKey,
    extracted: &Extracted,
    per_segment: &[Vec<Finding>],
) -> Vec<(String, Fingerprint)> {
    let mut out: Vec<(String, Fingerprint)> = extracted
        .segments()
        .iter()
        .zip(per_segment)
        .flat_map(|(segment, findings)| {
            findings.iter().filter_map(|f| {
                let value = segment.text().get(f.span())?;
                Some((f.detector().to_string(), key.fingerprint(value)))
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out.truncate(MAX_FINGERPRINTS);
    out
}

/// The body for the self-hosted target: the model mapped, decoded if it was encoded.
fn local_body(
    decision: &Decision,
    extracted: &Extracted,
    plain: &[u8],
    was_decoded: bool,
) -> Option<Bytes> {
    if decision.action() != Action::RouteLocal {
        return None;
    }
    let mapped = match (decision.target(), extracted.model()) {
        (Some(target), Some(requested)) => target
            .model_for(requested)
            .and_then(|m| extracted.with_model(plain, m)),
        _ => None,
    };
    match mapped {
        Some(body) => Some(Bytes::from(body)),
        None if was_decoded => Some(Bytes::copy_from_slice(plain)),
        None => None,
    }
}

/// Replaces every finding that a redact-or-stricter rule (or a `redact` default) selected
/// with a typed placeholder, then checks the result: `None` when the redacted body still
/// holds something the policy would act on.
fn redact(
    policy: &TeamPolicy,
    decision: &Decision,
    extracted: &Extracted,
    plain: &[u8],
    per_segment: &[Vec<Finding>],
) -> Option<Vec<u8>> {
    let selected = |f: &Finding| {
        decision.basis() == Basis::Default
            || decision.reasons().iter().any(|r| {
                r.detector() == f.detector() && r.action().is_some_and(|a| a >= Action::Redact)
            })
    };
    let mut names: HashMap<(&str, &str), String> = HashMap::new();
    let mut numbers: HashMap<&str, usize> = HashMap::new();
    let mut edits = Vec::new();
    for (i, (segment, findings)) in extracted.segments().iter().zip(per_segment).enumerate() {
        for f in findings.iter().filter(|f| selected(f)) {
            let value = &segment.text()[f.span()];
            let placeholder = names
                .entry((f.detector(), value))
                .or_insert_with(|| {
                    let n = numbers.entry(f.detector()).or_insert(0);
                    *n += 1;
                    format!("[{}_{}]", placeholder_kind(f.detector()), n)
                })
                .clone();
            edits.push((i, f.span(), placeholder));
        }
    }
    let body = extracted.redact(plain, &edits);
    // Verify: what was redacted must be gone. Overlapping findings of different
    // categories, or a value that a placeholder splices into a new match, are caught here.
    let again = extract::extract(extracted.format(), &body).ok()?;
    let remaining: Vec<Finding> = again
        .segments()
        .iter()
        .flat_map(|s| scan_segment(policy, s))
        .collect();
    // Nothing the policy would still redact (or worse) may remain. With a `redact`
    // default, any remaining finding is one too many.
    let after = policy.decide(&remaining);
    let left = remaining.iter().any(|f| {
        (after.basis() == Basis::Default && after.action() >= Action::Redact)
            || after.reasons().iter().any(|r| {
                r.detector() == f.detector() && r.action().is_some_and(|a| a >= Action::Redact)
            })
    });
    (after.action() <= Action::Redact && !left).then_some(body)
}

/// Scans one segment. A value is read with its key before it, as the model reads it:
/// `{"ssn": "536221947"}` holds an SSN though neither string alone is one.
fn scan_segment(policy: &TeamPolicy, segment: &Segment) -> Vec<Finding> {
    match segment.key() {
        Some(key) => policy.scan_labelled(key, segment.text()),
        None => policy.scan(segment.text()),
    }
}

/// `gpt-4o`, `claude-sonnet-4-5`, `meta-llama/Llama-3.1-8B-Instruct`, `llama3:8b`: short,
/// and no spaces or punctuation beyond `._:/@-`.
fn is_model_name(m: &str) -> bool {
    (1..=128).contains(&m.len())
        && m.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'@' | b'-')
        })
}

/// `payment-card` becomes `PAYMENT_CARD`.
fn placeholder_kind(detector: &str) -> String {
    detector
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The API format a request speaks.
pub(crate) fn format_of(parts: &Parts) -> ApiFormat {
    let format = ApiFormat::from_path(parts.uri.path());
    if format == ApiFormat::GenericJson
        && parts.headers.contains_key(header::CONTENT_TYPE)
        && !declares_json(parts)
    {
        return ApiFormat::Text;
    }
    format
}

/// Whether the `Content-Type` names a charset other than UTF-8 or its ASCII subset.
fn declares_other_charset(parts: &Parts) -> bool {
    let Some(ct) = parts.headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(ct) = ct.to_str() else {
        return true;
    };
    ct.split(';').skip(1).any(|param| {
        let Some((name, value)) = param.split_once('=') else {
            return false;
        };
        let value = value.trim().trim_matches('"').to_ascii_lowercase();
        name.trim().eq_ignore_ascii_case("charset")
            && !matches!(value.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii")
    })
}

fn declares_json(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("application/json") || ct.contains("+json")
        })
}
