//! The record format (schema `v` 1), its canonical form and its hash.
//!
//! A record is one line of JSON:
//!
//! ```text
//! {"v":1,"seq":7,"time":"2026-11-26T10:00:00.000000Z","prev":"<64 hex>","event":"decision",...,"hash":"<64 hex>"}
//! ```
//!
//! The writer emits the members in a fixed order with no insignificant whitespace, and
//! `hash` is always the last member. The canonical form of a record is its line exactly
//! as written, without the trailing newline and with the final `,"hash":"…"` member
//! removed; `hash` is the SHA-256 of those bytes in lowercase hex. Hashing the bytes as
//! written (rather than a re-serialisation of parsed values) means any change to the
//! line, even one a JSON parser would not notice (a reordered key, an added member, a
//! changed number format), breaks the hash, and a verifier needs no serialiser that
//! agrees byte for byte with the writer's.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::fingerprint::hex;

/// The schema version written in every record's `v`.
pub const SCHEMA_VERSION: u32 = 1;

/// The `prev` of the first record of a chain: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_PREFIX: &[u8] = b",\"hash\":\"";

/// One record of an audit log, as read back (schema `v` 1).
///
/// Fields a record's `event` does not use are empty (`None`, empty vectors). Unknown
/// members are ignored, so readers keep working when later versions add some.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[non_exhaustive]
pub struct Record {
    /// Schema version.
    pub v: u32,
    /// Position in the chain, from 1, without gaps across files and restarts.
    pub seq: u64,
    /// When the record was written, RFC 3339 UTC with microseconds.
    pub time: String,
    /// The `hash` of the record before (`GENESIS` for the first).
    pub prev: String,
    /// `decision` (one request), `checkpoint` (a signature over the record before), or
    /// `recovered` (a writer restarted after a crash and cut a half-written line; see
    /// `truncated_bytes`).
    #[serde(default)]
    pub event: String,
    /// The request id: the request's `x-request-id`, else generated (32 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The team whose policy decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The policy file and its content hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyRef>,
    /// The API format (`openai-chat`, `anthropic-messages`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The `model` the request asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_model: Option<String>,
    /// The model it was sent to, when rerouted and mapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routed_model: Option<String>,
    /// `allow`, `redact`, `route_local` or `block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `rules`, `default`, `unscannable` or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
    /// Where the request goes: the external origin (`https://api.openai.com`) or the
    /// self-hosted base URL; absent when blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// One entry per detector that found something.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detectors: Vec<DetectorCount>,
    /// Keyed fingerprints of the matched values, one per distinct (detector, value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<ValueFingerprint>,
    /// The fingerprint key's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp_key: Option<String>,
    /// Bytes of prompt text scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned_bytes: Option<u64>,
    /// Extraction, scan and decision time, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_us: Option<u64>,
    /// Why inspection could not complete (`malformed-json`, `body-too-large`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `recovered` only: bytes of the half-written line that was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_bytes: Option<u64>,
    /// `recovered` only: SHA-256 of those bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_sha256: Option<String>,
    /// `checkpoint` only: the `seq` of the record it signs (the one before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_seq: Option<u64>,
    /// `checkpoint` only: the `hash` of the record it signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_hash: Option<String>,
    /// `checkpoint` only: the id of the signing key's public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// `checkpoint` only: the Ed25519 signature, 128 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// This record's hash over its canonical form.
    pub hash: String,
}

/// A policy as named in a record.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[non_exhaustive]
pub struct PolicyRef {
    /// The policy file, relative to the policy directory.
    pub file: String,
    /// `sha256:` and 64 hex digits over the policy text (see `PolicyId`).
    pub hash: String,
}

/// What one detector found in a request: never the values.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[non_exhaustive]
pub struct DetectorCount {
    /// Detector id or dictionary name.
    pub id: String,
    /// Its category.
    pub category: String,
    /// Number of findings.
    pub count: u64,
}

/// A keyed fingerprint of one matched value, with the detector that matched it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[non_exhaustive]
pub struct ValueFingerprint {
    /// Detector id.
    pub detector: String,
    /// 32 hex digits (see [`FingerprintKey`](super::FingerprintKey)).
    pub fp: String,
}

/// The fields of a record that come before `event`'s own ones, and that the writer adds.
#[derive(Deserialize)]
struct Head {
    v: u32,
    seq: u64,
    prev: String,
}

/// Builds a record line: the writer's fields, then `body` (the inside of a JSON object,
/// starting with `"event":`), then `hash`. Returns the line with its newline, and the hash.
pub(crate) fn seal(seq: u64, prev: &str, time: &str, body: &[u8]) -> (Vec<u8>, String) {
    let mut line = Vec::with_capacity(body.len() + 256);
    line.extend_from_slice(
        format!("{{\"v\":{SCHEMA_VERSION},\"seq\":{seq},\"time\":\"{time}\",\"prev\":\"{prev}\",")
            .as_bytes(),
    );
    line.extend_from_slice(body);
    line.push(b'}');
    let hash = hex(&Sha256::digest(&line));
    line.pop();
    line.extend_from_slice(HASH_PREFIX);
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}\n");
    (line, hash)
}

/// A line that is a sound record, as far as one line can tell.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) seq: u64,
    pub(crate) prev: String,
    pub(crate) hash: String,
}

/// Why a line is not a sound record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineFault {
    /// Not a record at all (not JSON, no `hash` last, no `seq`/`prev`, unknown `v`).
    Malformed,
    /// A record whose content does not match its hash.
    HashMismatch { seq: u64 },
}

/// Checks one line (without its newline): shape, version, and hash.
pub(crate) fn check_line(line: &[u8]) -> Result<Checked, LineFault> {
    // `,"hash":"` + 64 hex + `"}`
    let tail = HASH_PREFIX.len() + 64 + 2;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() < tail + 2 || !line.ends_with(b"\"}") {
        return Err(LineFault::Malformed);
    }
    let cut = line.len() - tail;
    if &line[cut..cut + HASH_PREFIX.len()] != HASH_PREFIX {
        return Err(LineFault::Malformed);
    }
    let claimed = &line[cut + HASH_PREFIX.len()..line.len() - 2];
    if !claimed
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return Err(LineFault::Malformed);
    }
    let head: Head = serde_json::from_slice(line).map_err(|_| LineFault::Malformed)?;
    if head.v != SCHEMA_VERSION {
        return Err(LineFault::Malformed);
    }
    let mut h = Sha256::new();
    h.update(&line[..cut]);
    h.update(b"}");
    let actual = hex(&h.finalize());
    if actual.as_bytes() != claimed {
        return Err(LineFault::HashMismatch { seq: head.seq });
    }
    Ok(Checked {
        seq: head.seq,
        prev: head.prev,
        hash: actual,
    })
}

/// The inside of a JSON object (`"a":1,"b":2`) for a serialisable value.
pub(crate) fn body_of<T: Serialize>(value: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    // An object serialises as `{...}`: drop the braces.
    v.pop();
    v.remove(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_lines_check() {
        let (line, hash) = seal(
            1,
            GENESIS,
            "2026-11-26T00:00:00.000000Z",
            br#""event":"decision""#,
        );
        let line = line.strip_suffix(b"\n").unwrap();
        let checked = check_line(line).unwrap();
        assert_eq!((checked.seq, checked.hash.as_str()), (1, hash.as_str()));
        let record: Record = serde_json::from_slice(line).unwrap();
        assert_eq!(record.event, "decision");

        let edited = String::from_utf8(line.to_vec())
            .unwrap()
            .replace("decision", "decisioN");
        assert_eq!(
            check_line(edited.as_bytes()).unwrap_err(),
            LineFault::HashMismatch { seq: 1 }
        );
        assert_eq!(
            check_line(&line[..line.len() - 3]).unwrap_err(),
            LineFault::Malformed
        );
    }
}
