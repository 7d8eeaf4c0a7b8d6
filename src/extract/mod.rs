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
    /// Anthropic `POST /v1/messages` (and `/v1/messages/count_tokens`, which takes the
    /// same body).
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
        } else if path.ends_with("/messages") || path.ends_with("/messages/count_tokens") {
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

    /// For a value, the key of the object member it is, or whose array it is in: the
    /// words a reader sees before it (`ssn` for `{"ssn": "536221947"}`). `None` for a
    /// key, a text body, and a value outside any object.
    pub fn key(&self) -> Option<&str> {
        if self.is_key {
            return None;
        }
        let mut above = json::ancestors(&self.nodes, self.node).map(|(_, n)| &n.step);
        match above.find(|step| !matches!(step, Step::Index(_))) {
            Some(Step::Key(k)) => Some(k),
            _ => None,
        }
    }
}

/// Sizes only: a segment's path holds object keys, which are client text and scanned
/// like values.
impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("is_key", &self.is_key)
            .field("bytes", &self.text.len())
            .finish_non_exhaustive()
    }
}

/// A part of the request that cannot be inspected: an image, audio, a file.
#[derive(Clone, PartialEq, Eq)]
pub struct Unscannable {
    /// What it is: `image`, `audio`, `file`.
    pub kind: &'static str,
    /// Where it is in the body. It may hold object keys, which are client text.
    pub path: String,
}

/// The kind only: the path may hold object keys.
impl fmt::Debug for Unscannable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unscannable")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What [`extract`] found in a body.
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

/// Counts and flags only: the model name and every segment are client text.
impl fmt::Debug for Extracted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extracted")
            .field("format", &self.format)
            .field("segments", &self.segments.len())
            .field("scanned_bytes", &self.scanned_bytes())
            .field("unscannable", &self.unscannable)
            .field("has_model", &self.model.is_some())
            .field("stream", &self.stream)
            .field("previous_response", &self.previous_response)
            .finish_non_exhaustive()
    }
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
/// Every string of a JSON body is a segment (values and object keys alike), and so is
/// every number of seven significant digits or more (written out in decimal) below the
/// top level (a known API's top-level numbers are parameters: `seed`, `max_tokens`).
/// The payload of a media part (base64 or URL of an image, audio or file, by its
/// `type`) is reported as [`Unscannable`], and is skipped where the API puts content
/// parts; elsewhere it may be the client's own text and is scanned too. So is an inline
/// `data:` URL outside a media part: scanned as the text it is, and reported for the
/// encoded content it holds. Scanning
/// everything rather than a list of prompt fields per API is the fail-closed choice: a
/// field an API adds tomorrow is inspected today.
///
/// # Errors
///
/// A body that is not UTF-8 (or, as text, holds a NUL), not valid JSON (for every format
/// but [`ApiFormat::Text`]),
/// has duplicate keys, nests deeper than 128 levels or holds more than a million
/// strings, or, for a known API, is not a JSON object.
pub fn extract(format: ApiFormat, body: &[u8]) -> Result<Extracted, ExtractError> {
    if format == ApiFormat::Text {
        // A NUL is no text: UTF-16 text is valid UTF-8 with one between letters, and no
        // detector would match it.
        let text = std::str::from_utf8(body)
            .ok()
            .filter(|_| memchr::memchr(0, body).is_none())
            .ok_or(ExtractError {
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
        is_number,
        raw,
        value,
    } in doc.strings
    {
        let n = &nodes[node as usize];
        // A known API's top-level numbers are parameters the model never reads (`seed`
        // may be any 64-bit number, and a Luhn-valid one is no card).
        if is_number && format.is_known_api() && n.parent == 0 {
            continue;
        }
        let top_level_key = |k: &str| n.parent == 0 && n.step == Step::Key(k.into());
        if !is_key && top_level_key("model") {
            model = Some(value.clone());
            model_raw = Some(raw.clone());
        }
        if !is_key && top_level_key("previous_response_id") {
            previous_response = format == ApiFormat::OpenAiResponses;
        }
        if !is_key {
            // A media part's payload is reported. It is skipped only where the API puts
            // content parts; elsewhere (a tool call's input, a schema, a prompt
            // template's variables) it may be the client's own text, so it is scanned
            // too. Its `title`, `context` or `filename` are text and always scanned.
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
                if is_content_part(format, &nodes, owner) {
                    continue;
                }
            }
            // A data URL outside a media part is still text the model reads: it is
            // scanned (a token can pass for base64), and its encoded payload, which
            // cannot be, is reported.
            if let Some(kind) = data_url_kind(&value)
                && in_media[node as usize].is_none()
            {
                unscannable.push(Unscannable {
                    kind,
                    path: json::path_of(&nodes, node),
                });
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
    json::ancestors(nodes, node)
        .find(|&(at, _)| media[at as usize].is_some())
        .map_or(node, |(at, _)| at)
}

/// An inline `data:` URL whose payload looks like base64: its decoded content cannot be
/// scanned. (`data:x;base64, my SSN is ...` is not one.)
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

/// Whether `node` sits where the API puts a message's content parts. Anywhere else (a
/// tool call's input, a JSON schema, metadata) an object with `"type": "image"` may be
/// the client's own data, which the model reads as text.
fn is_content_part(format: ApiFormat, nodes: &[Node], node: u32) -> bool {
    // The steps from the root to `node`, as long as the longest shape below.
    let mut steps: Vec<&Step> = json::ancestors(nodes, node)
        .take(8)
        .map(|(_, n)| &n.step)
        .collect();
    steps.reverse();
    let key = |i: usize, k: &str| matches!(steps.get(i), Some(Step::Key(s)) if &**s == k);
    let index = |i: usize| matches!(steps.get(i), Some(Step::Index(_)));
    // `steps[0]` is the root: `messages[i].content[j]` is root, messages, i, content, j.
    let part_of =
        |list: &str, content: &str| key(1, list) && index(2) && key(3, content) && index(4);
    match format {
        ApiFormat::OpenAiChat => steps.len() == 5 && part_of("messages", "content"),
        // A computer call's screenshot is its output itself: `input[i].output`.
        ApiFormat::OpenAiResponses => {
            (steps.len() == 5 && (part_of("input", "content") || part_of("input", "output")))
                || (steps.len() == 4 && key(1, "input") && index(2) && key(3, "output"))
        }
        // A tool result's content holds parts too: `messages[i].content[j].content[k]`.
        ApiFormat::AnthropicMessages => {
            part_of("messages", "content")
                && (steps.len() == 5 || (steps.len() == 7 && key(5, "content") && index(6)))
        }
        _ => false,
    }
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
        (ApiFormat::OpenAiResponses, "computer_screenshot") => Some("image"),
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

    /// Regression: `Debug` printed the model name and segment paths, which hold object
    /// keys: client text.
    #[test]
    fn debug_output_holds_no_client_text() {
        let body = r#"{"model":"536-22-1947","messages":[{"role":"user","content":[
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="},
             "jane.doe@acme-mail.de":"x"}]}]}"#;
        let x = extract(ApiFormat::OpenAiChat, body.as_bytes()).unwrap();
        assert!(!x.unscannable().is_empty());
        let debug = format!("{x:?} {:?} {:?}", x.segments(), x.unscannable());
        for secret in ["536-22-1947", "jane.doe", "acme-mail"] {
            assert!(!debug.contains(secret), "{debug}");
        }
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

    /// Regression: an object with `"type": "image"` anywhere (a tool call's input, a JSON
    /// schema) was taken for a media part and its `data` or `url` went unscanned, and so
    /// did any string that passed for a base64 `data:` URL. Now such payloads are both
    /// reported and scanned; only in the API's content-part positions are they skipped.
    #[test]
    fn media_payloads_are_skipped_only_where_the_api_puts_content_parts() {
        let body = r#"{"model":"claude","messages":[
            {"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
              {"type":"text","text":"data:x;base64,ghp_aBcDeFgH"}]},
            {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f",
              "input":{"type":"image","data":"ssn 536-22-1947"}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"t",
              "content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"R0lGODlh"}}]}]}]}"#;
        let x = extract(ApiFormat::AnthropicMessages, body.as_bytes()).unwrap();
        let texts: Vec<&str> = x.segments().iter().map(Segment::text).collect();
        assert!(texts.contains(&"ssn 536-22-1947"), "{texts:?}");
        assert!(texts.contains(&"data:x;base64,ghp_aBcDeFgH"));
        assert!(!texts.contains(&"iVBORw0KGgo=") && !texts.contains(&"R0lGODlh"));
        let kinds: Vec<&str> = x.unscannable().iter().map(|u| u.kind).collect();
        assert_eq!(kinds, ["image", "file", "image", "image"]);

        let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"pick"}],
            "tools":[{"type":"function","function":{"name":"p","parameters":{"type":"object",
              "properties":{"f":{"type":"file","file_id":"token ghp_x"}}}}}],
            "response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"image_url","url":"ssn 1"}}}}"#;
        let x = extract(ApiFormat::OpenAiChat, body.as_bytes()).unwrap();
        let texts: Vec<&str> = x.segments().iter().map(Segment::text).collect();
        assert!(texts.contains(&"token ghp_x") && texts.contains(&"ssn 1"));
        let kinds: Vec<&str> = x.unscannable().iter().map(|u| u.kind).collect();
        assert_eq!(kinds, ["file", "image"]);
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
            {"type":"function_call_output","call_id":"c","output":"tool says"},
            {"type":"computer_call_output","call_id":"d","output":{"type":"computer_screenshot","file_id":"file-abc"}}]}"#;
        let x = extract(ApiFormat::OpenAiResponses, body.as_bytes()).unwrap();
        let texts: Vec<&str> = x.segments().iter().map(Segment::text).collect();
        assert!(texts.contains(&"be nice") && texts.contains(&"q") && texts.contains(&"tool says"));
        assert!(!texts.contains(&"file-abc"));
        assert!(x.continues_previous_response());
        let kinds: Vec<&str> = x.unscannable().iter().map(|u| u.kind).collect();
        assert_eq!(kinds, ["file", "image"]);
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
        // Regression: its errors came back in OpenAI's shape.
        assert_eq!(
            ApiFormat::from_path("/v1/messages/count_tokens"),
            ApiFormat::AnthropicMessages
        );
    }
}
