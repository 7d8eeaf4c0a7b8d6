//! Teams from client API keys, compared by SHA-256 in constant time.

use std::fmt;

use sha2::{Digest, Sha256};

/// What happens to a request whose key is missing or not in the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnknownKey {
    /// 401 in the API's error shape; nothing is forwarded.
    Reject,
    /// The policy set's `default` team.
    Default,
}

/// Client API key -> team. Only SHA-256 hashes are kept in memory, whether the config
/// gave a hash, a key or an environment variable holding one.
///
/// A presented key is hashed and compared with *every* entry with a constant-time
/// equality (no early exit on the first differing byte, no early exit on the first
/// matching entry), so timing says nothing about how close a guess was.
#[derive(Clone)]
pub(crate) struct KeyMap {
    entries: Vec<([u8; 32], String)>,
    unknown: UnknownKey,
}

impl fmt::Debug for KeyMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMap")
            .field("keys", &self.entries.len())
            .field("unknown", &self.unknown)
            .finish()
    }
}

/// The outcome of a lookup.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyTeam<'a> {
    /// No map is configured: the team comes from the header.
    NotConfigured,
    /// The key maps to this team.
    Team(&'a str),
    /// Use the `default` team.
    Default,
    /// Refuse the request.
    Reject,
}

impl KeyMap {
    pub(crate) fn new(unknown: UnknownKey) -> KeyMap {
        KeyMap {
            entries: Vec::new(),
            unknown,
        }
    }

    pub(crate) fn insert_hash(&mut self, hash: [u8; 32], team: &str) {
        self.entries.push((hash, team.to_string()));
    }

    pub(crate) fn insert_key(&mut self, key: &[u8], team: &str) {
        self.insert_hash(sha256(key), team);
    }

    /// The team for a presented key (`None`: no key in the request).
    pub(crate) fn team(&self, key: Option<&[u8]>) -> KeyTeam<'_> {
        if self.entries.is_empty() {
            return KeyTeam::NotConfigured;
        }
        let mut found = None;
        if let Some(key) = key {
            let hash = sha256(key);
            for (candidate, team) in &self.entries {
                if constant_time_eq(&hash, candidate) & found.is_none() {
                    found = Some(team.as_str());
                }
            }
        }
        match (found, self.unknown) {
            (Some(team), _) => KeyTeam::Team(team),
            (None, UnknownKey::Default) => KeyTeam::Default,
            (None, UnknownKey::Reject) => KeyTeam::Reject,
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(bytes));
    out
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_teams() {
        let mut map = KeyMap::new(UnknownKey::Reject);
        assert_eq!(map.team(Some(b"x")), KeyTeam::NotConfigured);
        map.insert_key(b"sk-payments", "payments");
        map.insert_hash(sha256(b"sk-research"), "research");
        assert_eq!(map.team(Some(b"sk-payments")), KeyTeam::Team("payments"));
        assert_eq!(map.team(Some(b"sk-research")), KeyTeam::Team("research"));
        assert_eq!(map.team(Some(b"sk-other")), KeyTeam::Reject);
        assert_eq!(map.team(None), KeyTeam::Reject);
        assert!(!format!("{map:?}").contains("sk-"));
        let mut map = KeyMap::new(UnknownKey::Default);
        map.insert_key(b"k", "a");
        assert_eq!(map.team(Some(b"j")), KeyTeam::Default);
    }
}
