//! The body of a `decision` record, built on the request's task.

use serde::Serialize;

use super::record::body_of;

/// The fields of one decision record after the writer's own (`v`, `seq`, `time`,
/// `prev`). Member order here is the order in the file (see `docs/audit.md`).
#[derive(Serialize)]
pub(crate) struct Entry<'a> {
    pub(crate) event: &'static str,
    pub(crate) request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) team: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) policy: Option<PolicyEntry<'a>>,
    pub(crate) format: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) requested_model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) routed_model: Option<&'a str>,
    pub(crate) action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) basis: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) detectors: Vec<DetectorEntry<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) fingerprints: Vec<FingerprintEntry<'a>>,
    pub(crate) fp_key: &'a str,
    pub(crate) scanned_bytes: u64,
    pub(crate) scan_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct PolicyEntry<'a> {
    pub(crate) file: &'a str,
    pub(crate) hash: &'a str,
}

#[derive(Serialize)]
pub(crate) struct DetectorEntry<'a> {
    pub(crate) id: &'a str,
    pub(crate) category: &'a str,
    pub(crate) count: u64,
}

#[derive(Serialize)]
pub(crate) struct FingerprintEntry<'a> {
    pub(crate) detector: &'a str,
    pub(crate) fp: String,
}

impl Entry<'_> {
    /// The record body: the inside of the JSON object.
    pub(crate) fn to_body(&self) -> Vec<u8> {
        body_of(self)
    }
}
