//! Getting the prompt text out of API request bodies.
//!
//! [`extract`] reads a request body in the API format its path names and returns every
//! prompt-bearing string with its JSON path ([`Segment`]), the parts that cannot be
//! scanned (images, audio, files: [`Unscannable`]) and the requested model. JSON escapes
//! are decoded (`\u0040` is an `@`). [`Extracted::redact`] rewrites chosen spans of chosen
//! segments and leaves every other byte of the body as it was.
//!
//! This module knows JSON and the shapes of the OpenAI and Anthropic APIs; it knows
//! nothing about HTTP, teams or policies.
//!
//! ```
//! use privacy_router::extract::{extract, ApiFormat};
//!
//! let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}"#;
//! let format = ApiFormat::from_path("/v1/chat/completions");
//! let x = extract(format, body)?;
//! assert_eq!(x.model(), Some("gpt-4o"));
//! assert_eq!(x.segments()[0].path(), "messages[0].content");
//! assert_eq!(x.segments()[0].text(), "hello");
//! # Ok::<(), privacy_router::extract::ExtractError>(())
//! ```

mod json;

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use serde_json::Value;

use json::{JsonPath, JsonString, Step};

/// The API a request speaks, from its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiFormat {
    /// OpenAI `POST /v1/chat/completions`.
    OpenAiChat,
    /// OpenAI `POST /v1/responses`.
    OpenAiResponses,
    /// OpenAI legacy `POST /v1/completions`.
    OpenAiCompletions,
    /// OpenAI `POST /v1/embeddings`.
    OpenAiEmbeddings,
    /// Anthropic `POST /v1/messages`.
    AnthropicMessages,
    /// Any other JSON body: every string value is scanned.
    GenericJson,
    /// A body that is not JSON: the text itself is scanned.
    Text,
}

impl ApiFormat {
    /// The format a request path names. Unknown paths are [`ApiFormat::GenericJson`]; use
    /// [`ApiFormat::Text`] yourself for bodies whose content type is not JSON.
    pub fn from_path(path: &str) -> ApiFormat {
        let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
        if path.ends_with("/chat/completions") {
            ApiFormat::OpenAiChat
        } else if path.ends_with("/responses") {
            ApiFormat::OpenAiResponses
        } else if path.ends_with("/completions") {
            ApiFormat::OpenAiCompletions
        } else if path.ends_with("/embeddings") {
            ApiFormat::OpenAiEmbeddings
        } else if path.ends_with("/messages") {
            ApiFormat::AnthropicMessages
        } else {
            ApiFormat::GenericJson
        }
    }

    /// A stable lowercase name for audit records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiFormat::OpenAiChat => "openai-chat",
            ApiFormat::OpenAiResponses => "openai-responses",
            ApiFormat::OpenAiCompletions => "openai-completions",
            ApiFormat::OpenAiEmbeddings => "openai-embeddings",
            ApiFormat::AnthropicMessages => "anthropic-messages",
            ApiFormat::GenericJson => "json",
            ApiFormat::Text => "text",
        }
    }

    /// Whether this is one of the known LLM APIs (whose bodies must be valid JSON of the
    /// expected shape).
    pub fn is_known_api(self) -> bool {
        !matches!(self, ApiFormat::GenericJson | ApiFormat::Text)
    }

    /// Whether errors for this API are written in Anthropic's shape.
    pub fn is_anthropic(self) -> bool {
        self == ApiFormat::AnthropicMessages
    }
}

impl fmt::Display for ApiFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a body could not be read. Says where, never what.
#[derive(Clone, Debug)]
pub struct ExtractError {
    kind: ExtractErrorKind,
}

#[derive(Clone, Debug)]
enum ExtractErrorKind {
    Json(json::JsonError),
    NotUtf8,
    Shape(&'static str),
}

impl ExtractError {
    /// A stable kebab-case name for audit records: `malformed-json`, `not-utf8`,
    /// `unexpected-shape`.
    pub fn kind(&self) -> &'static str {
        match self.kind {
            ExtractErrorKind::Json(_) => "malformed-json",
            ExtractErrorKind::NotUtf8 => "not-utf8",
            ExtractErrorKind::Shape(_) => "unexpected-shape",
        }
    }
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExtractErrorKind::Json(e) => write!(f, "malformed JSON: {e}"),
            ExtractErrorKind::NotUtf8 => f.write_str("body is not UTF-8 text"),
            ExtractErrorKind::Shape(what) => write!(f, "unexpected request shape: {what}"),
        }
    }
}

impl std::error::Error for ExtractError {}

/// One prompt-bearing string.
#[derive(Clone)]
pub struct Segment {
    path_text: String,
    /// The token's bytes in the body (quotes included), or the whole body for text.
    raw: Range<usize>,
    text: String,
}

impl Segment {
    /// Its JSON path, such as `messages[2].content[0].text` (`$` for a text body).
    pub fn path(&self) -> &str {
        &self.path_text
    }

    /// The decoded text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path_text)
            .field("bytes", &self.text.len())
            .finish()
    }
}

/// A part of the request that cannot be inspected: an image, audio, a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unscannable {
    /// What it is: `image`, `audio`, `file`.
    pub kind: &'static str,
    /// Where it is in the body.
    pub path: String,
}

/// What [`extract`] found in a body.
#[derive(Debug)]
pub struct Extracted {
    format: ApiFormat,
    segments: Vec<Segment>,
    unscannable: Vec<Unscannable>,
    model: Option<String>,
    model_raw: Option<Range<usize>>,
    stream: bool,
    previous_response: bool,
    is_json: bool,
}

impl Extracted {
    /// Whether a Responses API request continues a conversation kept by the provider
    /// (`previous_response_id`): its earlier turns were never in this body, so they were
    /// not inspected, and a self-hosted model cannot see them.
    pub fn continues_previous_response(&self) -> bool {
        self.previous_response
    }

    /// The format the body was read as.
    pub fn format(&self) -> ApiFormat {
        self.format
    }

    /// The prompt-bearing strings, in document order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Parts that could not be inspected.
    pub fn unscannable(&self) -> &[Unscannable] {
        &self.unscannable
    }

    /// The top-level `model`, if the body names one.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Whether the request asks for a streamed response (`"stream": true`).
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// Total bytes of text that will be scanned.
    pub fn scanned_bytes(&self) -> usize {
        self.segments.iter().map(|s| s.text.len()).sum()
    }

    /// The body with the top-level `model` replaced. Returns `None` if the body names no
    /// model (or is not JSON). Every other byte is kept.
    pub fn with_model(&self, body: &[u8], model: &str) -> Option<Vec<u8>> {
        let raw = self.model_raw.clone()?;
        let encoded = serde_json::to_string(model).ok()?;
        let mut out = Vec::with_capacity(body.len() + encoded.len());
        out.extend_from_slice(&body[..raw.start]);
        out.extend_from_slice(encoded.as_bytes());
        out.extend_from_slice(&body[raw.end..]);
        Some(out)
    }

    /// Rewrites spans of segments: `edits` holds `(segment index, byte span in the
    /// segment's text, replacement)`. Overlapping spans in one segment are merged (the
    /// first replacement is used). Only the edited strings change in the body; for a
    /// text body, the text is edited in place.
    ///
    /// # Panics
    ///
    /// If a segment index is out of range or a span is not on char boundaries of its
    /// segment's text (spans from [`Scanner::scan`](crate::scan::Scanner::scan) always are).
    pub fn redact(&self, body: &[u8], edits: &[(usize, Range<usize>, String)]) -> Vec<u8> {
        let mut by_segment: HashMap<usize, Vec<(Range<usize>, &str)>> = HashMap::new();
        for (i, span, with) in edits {
            by_segment
                .entry(*i)
                .or_default()
                .push((span.clone(), with.as_str()));
        }
        let mut rewritten: Vec<(Range<usize>, Vec<u8>)> = by_segment
            .into_iter()
            .map(|(i, mut spans)| {
                let seg = &self.segments[i];
                spans.sort_by_key(|(s, _)| (s.start, std::cmp::Reverse(s.end)));
                let mut text = String::with_capacity(seg.text.len());
                let mut at = 0;
                for (span, with) in spans {
                    if span.start < at {
                        // Overlaps the previous edit: extend it instead.
                        at = at.max(span.end);
                        continue;
                    }
                    text.push_str(&seg.text[at..span.start]);
                    text.push_str(with);
                    at = span.end;
                }
                text.push_str(&seg.text[at..]);
                let bytes = if self.is_json {
                    serde_json::to_string(&text)
                        .expect("a string serialises")
                        .into_bytes()
                } else {
                    text.into_bytes()
                };
                (seg.raw.clone(), bytes)
            })
            .collect();
        rewritten.sort_by_key(|(r, _)| r.start);
        let mut out = Vec::with_capacity(body.len());
        let mut at = 0;
        for (raw, bytes) in rewritten {
            out.extend_from_slice(&body[at..raw.start]);
            out.extend_from_slice(&bytes);
            at = raw.end;
        }
        out.extend_from_slice(&body[at..]);
        out
    }
}

/// Keys whose string values are protocol, not prompt: scanning them finds nothing and
/// costs time.
const STRUCTURAL_KEYS: [&str; 10] = [
    "role",
    "type",
    "model",
    "tool_choice",
    "encoding_format",
    "service_tier",
    "reasoning_effort",
    "media_type",
    "detail",
    "format",
];

/// Reads `body` as `format`.
///
/// # Errors
///
/// A body that is not UTF-8, not valid JSON (for every format but [`ApiFormat::Text`]),
/// or, for a known API, not a JSON object.
pub fn extract(format: ApiFormat, body: &[u8]) -> Result<Extracted, ExtractError> {
    if format == ApiFormat::Text {
        let text = std::str::from_utf8(body).map_err(|_| ExtractError {
            kind: ExtractErrorKind::NotUtf8,
        })?;
        return Ok(Extracted {
            format,
            segments: vec![Segment {
                path_text: "$".to_string(),
                raw: 0..body.len(),
                text: text.to_string(),
            }],
            unscannable: Vec::new(),
            model: None,
            model_raw: None,
            stream: false,
            previous_response: false,
            is_json: false,
        });
    }
    let strings = json::strings(body).map_err(|e| ExtractError {
        kind: ExtractErrorKind::Json(e),
    })?;
    // The reader above validated the document; serde_json gives the structure that the
    // per-API rules below need (part types, the model, `stream`).
    let doc: Value = serde_json::from_slice(body).map_err(|_| ExtractError {
        kind: ExtractErrorKind::Shape("not JSON"),
    })?;
    if format.is_known_api() && !doc.is_object() {
        return Err(ExtractError {
            kind: ExtractErrorKind::Shape("the body is not a JSON object"),
        });
    }
    let unscannable = find_unscannable(format, &doc);
    let mut model = None;
    let mut model_raw = None;
    let mut segments = Vec::new();
    for JsonString { path, raw, value } in strings {
        if path.0 == [Step::Key("model".to_string())] {
            model = Some(value);
            model_raw = Some(raw);
            continue;
        }
        if unscannable.iter().any(|(p, _)| path.starts_with(p)) || is_data_url(&value) {
            continue;
        }
        if path
            .last_key()
            .is_some_and(|k| STRUCTURAL_KEYS.contains(&k))
        {
            continue;
        }
        segments.push(Segment {
            path_text: path.to_string(),
            raw,
            text: value,
        });
    }
    let mut unscannable: Vec<Unscannable> = unscannable
        .into_iter()
        .map(|(p, kind)| Unscannable {
            kind,
            path: p.to_string(),
        })
        .collect();
    // Inline data URLs anywhere (`data:image/png;base64,...`) are media, whatever the API.
    collect_data_urls(&doc, &mut JsonPath::default(), &mut unscannable);
    Ok(Extracted {
        format,
        stream: doc.get("stream").and_then(Value::as_bool).unwrap_or(false),
        previous_response: format == ApiFormat::OpenAiResponses
            && doc
                .get("previous_response_id")
                .is_some_and(Value::is_string),
        segments,
        unscannable,
        model,
        model_raw,
        is_json: true,
    })
}

fn is_data_url(s: &str) -> bool {
    s.len() > 5
        && s[..5].eq_ignore_ascii_case("data:")
        && s[..s.len().min(200)].contains(";base64,")
}

fn collect_data_urls(v: &Value, path: &mut JsonPath, out: &mut Vec<Unscannable>) {
    match v {
        Value::String(s) if is_data_url(s) => {
            let p = path.to_string();
            if !out.iter().any(|u| p.starts_with(&u.path)) {
                let kind = match s.get(5..11) {
                    Some("image/") => "image",
                    Some("audio/") => "audio",
                    _ => "file",
                };
                out.push(Unscannable { kind, path: p });
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.0.push(Step::Index(i));
                collect_data_urls(item, path, out);
                path.0.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                path.0.push(Step::Key(k.clone()));
                collect_data_urls(item, path, out);
                path.0.pop();
            }
        }
        _ => {}
    }
}

/// The content parts each API defines as media, by their `type`.
fn media_kind(format: ApiFormat, part: &Value) -> Option<&'static str> {
    let ty = part.get("type")?.as_str()?;
    match (format, ty) {
        (ApiFormat::OpenAiChat, "image_url") => Some("image"),
        (ApiFormat::OpenAiChat, "input_audio") => Some("audio"),
        (ApiFormat::OpenAiChat, "file") => Some("file"),
        (ApiFormat::OpenAiResponses, "input_image") => Some("image"),
        (ApiFormat::OpenAiResponses, "input_audio") => Some("audio"),
        (ApiFormat::OpenAiResponses, "input_file") => Some("file"),
        (ApiFormat::AnthropicMessages, "image") => Some("image"),
        // A document block whose source is plain text is text, and is scanned.
        (ApiFormat::AnthropicMessages, "document") => {
            let source = part.get("source")?;
            (source.get("type").and_then(Value::as_str) != Some("text")).then_some("file")
        }
        (ApiFormat::AnthropicMessages, "container_upload") => Some("file"),
        _ => None,
    }
}

/// Paths of media parts in the document.
fn find_unscannable(format: ApiFormat, doc: &Value) -> Vec<(JsonPath, &'static str)> {
    let mut out = Vec::new();
    if !format.is_known_api() {
        return out;
    }
    walk_parts(format, doc, &mut JsonPath::default(), &mut out);
    out
}

fn walk_parts(
    format: ApiFormat,
    v: &Value,
    path: &mut JsonPath,
    out: &mut Vec<(JsonPath, &'static str)>,
) {
    match v {
        Value::Object(map) => {
            if let Some(kind) = media_kind(format, v) {
                out.push((path.clone(), kind));
                return;
            }
            for (k, item) in map {
                path.0.push(Step::Key(k.clone()));
                walk_parts(format, item, path, out);
                path.0.pop();
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.0.push(Step::Index(i));
                walk_parts(format, item, path, out);
                path.0.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(format: ApiFormat, body: &str) -> Vec<(String, String)> {
        extract(format, body.as_bytes())
            .unwrap()
            .segments()
            .iter()
            .map(|s| (s.path().to_string(), s.text().to_string()))
            .collect()
    }

    #[test]
    fn openai_chat_every_prompt_bearing_string() {
        let body = r#"{
          "model": "gpt-4o", "stream": true,
          "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": "dev note"},
            {"role": "user", "name": "jane", "content": [
               {"type": "text", "text": "look at this"},
               {"type": "image_url", "image_url": {"url": "https://img.example/cat.png"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
               {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"email\":\"a@b.io\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "result text"}
          ],
          "tools": [{"type": "function", "function": {"name": "lookup", "description": "finds a user"}}]
        }"#;
        let x = extract(ApiFormat::OpenAiChat, body.as_bytes()).unwrap();
        assert_eq!(x.model(), Some("gpt-4o"));
        assert!(x.is_stream());
        let got: Vec<&str> = x.segments().iter().map(Segment::path).collect();
        assert_eq!(
            got,
            [
                "messages[0].content",
                "messages[1].content",
                "messages[2].name",
                "messages[2].content[0].text",
                "messages[3].tool_calls[0].id",
                "messages[3].tool_calls[0].function.name",
                "messages[3].tool_calls[0].function.arguments",
                "messages[4].tool_call_id",
                "messages[4].content",
                "tools[0].function.name",
                "tools[0].function.description",
            ]
        );
        assert_eq!(
            x.unscannable(),
            [Unscannable {
                kind: "image",
                path: "messages[2].content[1]".to_string()
            }]
        );
    }

    #[test]
    fn anthropic_and_responses_shapes() {
        let body = r#"{"model":"claude-sonnet-4-5","system":[{"type":"text","text":"sys"}],
            "messages":[{"role":"user","content":[
              {"type":"text","text":"hi"},
              {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
              {"type":"document","source":{"type":"text","media_type":"text/plain","data":"plain doc"}},
              {"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"out"}]}]},
              {"role":"assistant","content":[{"type":"tool_use","id":"t2","name":"f","input":{"q":"deep value"}}]}]}"#;
        let got = paths(ApiFormat::AnthropicMessages, body);
        let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
        assert!(texts.contains(&"sys") && texts.contains(&"plain doc") && texts.contains(&"out"));
        assert!(texts.contains(&"deep value"));
        assert!(!texts.contains(&"iVBORw0KGgo="));

        let body = r#"{"model":"gpt-4.1","instructions":"be nice","previous_response_id":"resp_1",
            "input":[{"role":"user","content":[{"type":"input_text","text":"q"},
            {"type":"input_file","file_data":"data:application/pdf;base64,JVBERi0="}]},
            {"type":"function_call_output","call_id":"c","output":"tool says"}]}"#;
        let x = extract(ApiFormat::OpenAiResponses, body.as_bytes()).unwrap();
        let texts: Vec<&str> = x.segments().iter().map(Segment::text).collect();
        assert!(texts.contains(&"be nice") && texts.contains(&"q") && texts.contains(&"tool says"));
        assert!(x.continues_previous_response());
        assert_eq!(x.unscannable()[0].kind, "file");
    }

    #[test]
    fn redaction_changes_only_the_edited_strings() {
        let body = br#"{ "model" : "gpt-4o",  "messages":[{"role":"user","content":"mail jane@acme.io or jane@acme.io \u00e9"}], "temperature": 0.70 }"#;
        let x = extract(ApiFormat::OpenAiChat, body).unwrap();
        let text = x.segments()[0].text();
        let first = text.find("jane").unwrap();
        let second = text.rfind("jane").unwrap();
        let out = x.redact(
            body,
            &[
                (0, first..first + 12, "[EMAIL_1]".into()),
                (0, second..second + 12, "[EMAIL_1]".into()),
            ],
        );
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            r#"{ "model" : "gpt-4o",  "messages":[{"role":"user","content":"mail [EMAIL_1] or [EMAIL_1] é"}], "temperature": 0.70 }"#
        );
        let swapped = String::from_utf8(x.with_model(body, "llama-3.1-8b").unwrap()).unwrap();
        assert!(swapped.starts_with(r#"{ "model" : "llama-3.1-8b",  "messages""#));
    }

    #[test]
    fn errors_and_text_bodies() {
        let e = extract(ApiFormat::OpenAiChat, b"{\"model\": \"x\", ").unwrap_err();
        assert_eq!(e.kind(), "malformed-json");
        assert!(!e.to_string().contains("model"));
        assert_eq!(
            extract(ApiFormat::OpenAiChat, b"[1]").unwrap_err().kind(),
            "unexpected-shape"
        );
        let x = extract(ApiFormat::Text, "plain prompt".as_bytes()).unwrap();
        assert_eq!(x.segments()[0].text(), "plain prompt");
        let out = x.redact(b"plain prompt", &[(0, 6..12, "[X]".into())]);
        assert_eq!(out, b"plain [X]");
        assert_eq!(
            ApiFormat::from_path("/v1/chat/completions?x=1"),
            ApiFormat::OpenAiChat
        );
        assert_eq!(
            ApiFormat::from_path("/v1/completions"),
            ApiFormat::OpenAiCompletions
        );
        assert_eq!(
            ApiFormat::from_path("/v1/messages"),
            ApiFormat::AnthropicMessages
        );
    }
}
