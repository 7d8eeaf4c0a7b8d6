//! Getting the prompt text out of API request bodies.
//!
//! [`extract`] reads a request body in the API format its path names and returns every
//! string in it, values and keys, with its JSON path ([`Segment`]), the parts that cannot
//! be scanned (images, audio, files: [`Unscannable`]) and the requested model. JSON escapes
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
//! // Every string is scanned, keys included; each knows its JSON path.
//! let hello = x.segments().iter().find(|s| s.text() == "hello").unwrap();
//! assert_eq!(hello.path(), "messages[0].content");
//! # Ok::<(), privacy_router::extract::ExtractError>(())
//! ```

mod json;

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use std::sync::Arc;

use json::{JsonString, Node, Step};

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

/// One prompt-bearing string: a JSON string value or object key, or a whole text body.
#[derive(Clone)]
pub struct Segment {
    /// The document's nodes, shared by all segments, for building the path on demand.
    nodes: Arc<[Node]>,
    node: u32,
    is_key: bool,
    /// The token's bytes in the body (quotes included), or the whole body for text.
    raw: Range<usize>,
    text: String,
}

impl Segment {
    /// Its JSON path, such as `messages[2].content[0].text`; an object key's path ends in
    /// ` (key)`; `$` is a text body. Keys in paths are cut at 64 bytes.
    pub fn path(&self) -> String {
        let path = json::path_of(&self.nodes, self.node);
        if self.is_key {
            format!("{path} (key)")
        } else {
            path
        }
    }

    /// The decoded text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path())
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

/// Reads `body` as `format`.
///
/// Every string of a JSON body is a segment (values and object keys alike), except the
/// payload of media parts (base64 or URLs of images, audio and files, by the API's part
/// `type`) and inline `data:` URLs: those are reported as [`Unscannable`]. Scanning
/// everything rather than a list of prompt fields per API is the fail-closed choice: a
/// field an API adds tomorrow is inspected today.
///
/// # Errors
///
/// A body that is not UTF-8, not valid JSON (for every format but [`ApiFormat::Text`]),
/// has duplicate keys, nests deeper than 128 levels or holds more than a million
/// strings, or, for a known API, is not a JSON object.
pub fn extract(format: ApiFormat, body: &[u8]) -> Result<Extracted, ExtractError> {
    if format == ApiFormat::Text {
        let text = std::str::from_utf8(body).map_err(|_| ExtractError {
            kind: ExtractErrorKind::NotUtf8,
        })?;
        let nodes: Arc<[Node]> = Arc::from(vec![Node {
            parent: json::NO_PARENT,
            step: Step::Root,
        }]);
        return Ok(Extracted {
            format,
            segments: vec![Segment {
                nodes,
                node: 0,
                is_key: false,
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
    let doc = json::read(body).map_err(|e| ExtractError {
        kind: ExtractErrorKind::Json(e),
    })?;
    if format.is_known_api() && !doc.is_object {
        return Err(ExtractError {
            kind: ExtractErrorKind::Shape("the body is not a JSON object"),
        });
    }
    let media = media_nodes(format, &doc);
    // Nodes come parents first, so one forward pass says which lie inside a media part.
    let mut in_media: Vec<Option<&'static str>> = vec![None; doc.nodes.len()];
    for (i, n) in doc.nodes.iter().enumerate() {
        let inherited = if n.parent == json::NO_PARENT {
            None
        } else {
            in_media[n.parent as usize]
        };
        in_media[i] = media[i].or(inherited);
    }
    let mut unscannable: Vec<Unscannable> = Vec::new();
    let mut reported = vec![false; doc.nodes.len()];
    let mut model = None;
    let mut model_raw = None;
    let mut previous_response = false;
    let nodes: Arc<[Node]> = Arc::from(doc.nodes);
    let mut segments = Vec::with_capacity(doc.strings.len());
    for JsonString {
        node,
        is_key,
        raw,
        value,
    } in doc.strings
    {
        let n = &nodes[node as usize];
        let top_level_key = |k: &str| n.parent == 0 && n.step == Step::Key(k.into());
        if !is_key && top_level_key("model") {
            model = Some(value.clone());
            model_raw = Some(raw.clone());
        }
        if !is_key && top_level_key("previous_response_id") {
            previous_response = format == ApiFormat::OpenAiResponses;
        }
        if !is_key {
            // Inside a media part only the payload is skipped: its `title`, `context` or
            // `filename` are text and are scanned.
            if let Some(kind) = in_media[node as usize]
                && is_payload_key(&n.step)
            {
                let owner = media_owner(&nodes, &media, node);
                if !reported[owner as usize] {
                    reported[owner as usize] = true;
                    unscannable.push(Unscannable {
                        kind,
                        path: json::path_of(&nodes, owner),
                    });
                }
                continue;
            }
            if let Some(kind) = data_url_kind(&value) {
                unscannable.push(Unscannable {
                    kind,
                    path: json::path_of(&nodes, node),
                });
                continue;
            }
        }
        segments.push(Segment {
            nodes: Arc::clone(&nodes),
            node,
            is_key,
            raw,
            text: value,
        });
    }
    Ok(Extracted {
        format,
        stream: doc.stream,
        previous_response,
        segments,
        unscannable,
        model,
        model_raw,
        is_json: true,
    })
}

/// The keys that hold a media part's payload (base64 data, a URL or a file id).
fn is_payload_key(step: &Step) -> bool {
    matches!(step, Step::Key(k) if matches!(&**k, "data" | "url" | "image_url" | "file_data" | "file_id" | "file_url" | "b64_json"))
}

/// The nearest media-part ancestor (or self) of `node`.
fn media_owner(nodes: &[Node], media: &[Option<&'static str>], node: u32) -> u32 {
    let mut at = node;
    while at != json::NO_PARENT {
        if media[at as usize].is_some() {
            return at;
        }
        at = nodes[at as usize].parent;
    }
    node
}

/// An inline `data:` URL whose payload really is base64: media, whatever the API.
/// (`data:x;base64, my SSN is ...` is text and is scanned.)
fn data_url_kind(s: &str) -> Option<&'static str> {
    let head = s.get(..5)?;
    if !head.eq_ignore_ascii_case("data:") {
        return None;
    }
    let marker = s.find(";base64,")?;
    if marker > 200 {
        return None;
    }
    let payload = &s[marker + 8..];
    let base64 = payload
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'));
    if payload.is_empty() || !base64 {
        return None;
    }
    Some(match s.get(5..11) {
        Some("image/") => "image",
        Some("audio/") => "audio",
        _ => "file",
    })
}

/// For each node, the media kind if it is a media part of `format`.
fn media_nodes(format: ApiFormat, doc: &json::Doc) -> Vec<Option<&'static str>> {
    let mut media = vec![None; doc.nodes.len()];
    if !format.is_known_api() {
        return media;
    }
    // The `type` string of each object, and each object's `source` child.
    let mut type_of: HashMap<u32, &str> = HashMap::new();
    let mut source_of: HashMap<u32, u32> = HashMap::new();
    for (i, n) in doc.nodes.iter().enumerate() {
        if n.step == Step::Key("source".into()) {
            source_of.insert(n.parent, i as u32);
        }
    }
    for s in doc.strings.iter().filter(|s| !s.is_key) {
        let n = &doc.nodes[s.node as usize];
        if n.step == Step::Key("type".into()) {
            type_of.insert(n.parent, s.value.as_str());
        }
    }
    for (&object, &ty) in &type_of {
        let source_type = source_of
            .get(&object)
            .and_then(|src| type_of.get(src).copied());
        media[object as usize] = media_kind(format, ty, source_type);
    }
    media
}

/// The content parts each API defines as media, by their `type` (and, for Anthropic
/// documents, their source's `type`).
fn media_kind(format: ApiFormat, ty: &str, source_type: Option<&str>) -> Option<&'static str> {
    match (format, ty) {
        (ApiFormat::OpenAiChat, "image_url") => Some("image"),
        (ApiFormat::OpenAiChat, "input_audio") => Some("audio"),
        (ApiFormat::OpenAiChat, "file") => Some("file"),
        (ApiFormat::OpenAiResponses, "input_image") => Some("image"),
        (ApiFormat::OpenAiResponses, "input_audio") => Some("audio"),
        (ApiFormat::OpenAiResponses, "input_file") => Some("file"),
        (ApiFormat::AnthropicMessages, "image") => Some("image"),
        // Documents whose source is text (`text`, `content`) are scanned like text.
        (ApiFormat::AnthropicMessages, "document") => {
            matches!(source_type, Some("base64" | "url" | "file")).then_some("file")
        }
        (ApiFormat::AnthropicMessages, "container_upload") => Some("file"),
        _ => None,
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
        // Every value is a segment, keys too, except the image's URL.
        let values: Vec<String> = x
            .segments()
            .iter()
            .filter(|s| !s.path().ends_with("(key)"))
            .map(Segment::path)
            .collect();
        for expected in [
            "model",
            "messages[0].role",
            "messages[0].content",
            "messages[1].content",
            "messages[2].name",
            "messages[2].content[0].text",
            "messages[2].content[1].type",
            "messages[3].tool_calls[0].id",
            "messages[3].tool_calls[0].function.name",
            "messages[3].tool_calls[0].function.arguments",
            "messages[4].tool_call_id",
            "messages[4].content",
            "tools[0].function.name",
            "tools[0].function.description",
        ] {
            assert!(
                values.iter().any(|v| v == expected),
                "{expected} missing from {values:?}"
            );
        }
        assert!(!values.iter().any(|v| v.contains("image_url.url")));
        assert!(
            x.segments()
                .iter()
                .any(|s| s.path() == "messages[0].content (key)")
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
        let i = x
            .segments()
            .iter()
            .position(|s| s.text().starts_with("mail"))
            .unwrap();
        let text = x.segments()[i].text();
        let first = text.find("jane").unwrap();
        let second = text.rfind("jane").unwrap();
        let out = x.redact(
            body,
            &[
                (i, first..first + 12, "[EMAIL_1]".into()),
                (i, second..second + 12, "[EMAIL_1]".into()),
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

    /// Regression: a string whose fifth byte is inside a multi-byte char made the data-URL
    /// check slice through it and panic (and the panic message carried the prompt).
    #[test]
    fn non_ascii_strings_do_not_panic() {
        let body = r#"{"model":"m","messages":[{"role":"user","content":"こんにちは、私のSSNは"},{"role":"user","content":"Hallö Welt"}]}"#;
        let x = extract(ApiFormat::OpenAiChat, body.as_bytes()).unwrap();
        assert!(x.segments().iter().any(|s| s.text() == "Hallö Welt"));
    }

    /// Regression: fake data URLs, protocol-looking keys and text documents hid text
    /// from scanning.
    #[test]
    fn nothing_that_is_text_escapes_scanning() {
        let body = r#"{"model":"m","messages":[
            {"role":"user","content":"data:x;base64, my SSN is 078-05-1120"},
            {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"format":"hidden","type":"also"}}]},
            {"role":"user","content":[{"type":"document","title":"Q3 notes","source":{"type":"content","content":[{"type":"text","text":"inner doc"}]}},
              {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]}]}"#;
        let x = extract(ApiFormat::AnthropicMessages, body.as_bytes()).unwrap();
        let texts: Vec<&str> = x.segments().iter().map(Segment::text).collect();
        for t in [
            "data:x;base64, my SSN is 078-05-1120",
            "hidden",
            "also",
            "Q3 notes",
            "inner doc",
        ] {
            assert!(texts.contains(&t), "{t} was not scanned");
        }
        assert!(!texts.contains(&"iVBORw0KGgo="));
        assert_eq!(x.unscannable().len(), 1);
        // A duplicate key could make the part look like an image to one reader and text
        // to another: refused.
        let dup = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"secret","type":"image_url"}]}]}"#;
        assert_eq!(
            extract(ApiFormat::OpenAiChat, dup.as_bytes())
                .unwrap_err()
                .kind(),
            "malformed-json"
        );
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
