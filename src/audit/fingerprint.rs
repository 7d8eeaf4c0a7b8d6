//! Keyed fingerprints of matched values: HMAC-SHA256, truncated to 128 bits.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::error::{AuditError, ErrorKind};

/// The environment variable that holds the fingerprint key itself.
pub const KEY_ENV: &str = "PRIVACY_ROUTER_AUDIT_KEY";

/// The environment variable that names a file holding the fingerprint key.
pub const KEY_FILE_ENV: &str = "PRIVACY_ROUTER_AUDIT_KEY_FILE";

/// The shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 16;

/// The secret key for value fingerprints.
///
/// A fingerprint is `HMAC-SHA256(key, normalised value)` truncated to 16 bytes (32 hex
/// digits). The same value under the same key always gives the same fingerprint, so
/// "where else did this card number go" is a query over the log, while the log itself
/// never holds the value; without the key, a fingerprint cannot be tested against
/// guesses (card numbers and phone numbers are small spaces that a plain hash would not
/// protect).
///
/// Normalisation: surrounding whitespace is trimmed, and a value made only of digits and
/// the separators space, `-`, `.` and `/` is reduced to its digits, so `4539 1488 0343
/// 6467` and `4539148803436467` share a fingerprint. Anything else is used as is.
///
/// `Debug` shows the key id (see [`FingerprintKey::id`]), never the key.
///
/// ```
/// use privacy_router::audit::FingerprintKey;
///
/// let key = FingerprintKey::from_bytes(b"0123456789abcdef-test-key".to_vec())?;
/// let a = key.fingerprint("4539 1488 0343 6467");
/// assert_eq!(a, key.fingerprint("4539-1488-0343-6467"));
/// assert_eq!(a.to_string().len(), 32);
/// assert!(!format!("{key:?}").contains("0123456789abcdef"));
/// # Ok::<(), privacy_router::audit::AuditError>(())
/// ```
#[derive(Clone)]
pub struct FingerprintKey {
    mac: Hmac<Sha256>,
    id: String,
}

impl FingerprintKey {
    /// A key from raw bytes (at least [`MIN_KEY_LEN`]).
    ///
    /// # Errors
    ///
    /// The key is shorter than [`MIN_KEY_LEN`] bytes.
    pub fn from_bytes(key: Vec<u8>) -> Result<FingerprintKey, AuditError> {
        if key.len() < MIN_KEY_LEN {
            return Err(AuditError::new(ErrorKind::KeyTooShort));
        }
        let mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|_| AuditError::new(ErrorKind::KeyTooShort))?;
        let mut h = Sha256::new();
        h.update(b"privacy-router fingerprint key id\0");
        h.update(&key);
        let id = hex(&h.finalize()[..4]);
        Ok(FingerprintKey { mac, id })
    }

    /// A key from a file: its bytes, with one trailing newline removed.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or holds fewer than [`MIN_KEY_LEN`] bytes.
    pub fn from_file(path: impl AsRef<Path>) -> Result<FingerprintKey, AuditError> {
        let mut key = std::fs::read(path.as_ref())
            .map_err(|e| AuditError::io(ErrorKind::KeyUnreadable, path.as_ref(), e))?;
        if key.last() == Some(&b'\n') {
            key.pop();
            if key.last() == Some(&b'\r') {
                key.pop();
            }
        }
        FingerprintKey::from_bytes(key)
    }

    /// The key from the environment: [`KEY_ENV`] (the key's bytes), else the file named
    /// by [`KEY_FILE_ENV`].
    ///
    /// # Errors
    ///
    /// Neither variable is set, the file cannot be read, or the key is too short.
    pub fn from_env() -> Result<FingerprintKey, AuditError> {
        if let Some(v) = std::env::var_os(KEY_ENV) {
            return FingerprintKey::from_bytes(v.into_encoded_bytes());
        }
        match std::env::var_os(KEY_FILE_ENV) {
            Some(path) => FingerprintKey::from_file(path),
            None => Err(AuditError::new(ErrorKind::KeyMissing)),
        }
    }

    /// A short public id of the key (8 hex digits of a SHA-256 over it), written into
    /// every record so a reviewer knows which key made its fingerprints.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The fingerprint of `value`.
    pub fn fingerprint(&self, value: &str) -> Fingerprint {
        let mut mac = self.mac.clone();
        let value = value.trim();
        let numeric = value.bytes().any(|b| b.is_ascii_digit())
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'.' | b'/'));
        if numeric {
            let digits: Vec<u8> = value.bytes().filter(u8::is_ascii_digit).collect();
            mac.update(&digits);
        } else {
            mac.update(value.as_bytes());
        }
        let out = mac.finalize().into_bytes();
        let mut fp = [0u8; 16];
        fp.copy_from_slice(&out[..16]);
        Fingerprint(fp)
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FingerprintKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A keyed fingerprint of one matched value: 16 bytes, shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 16]);

impl Fingerprint {
    /// The raw 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_6() {
        // RFC 4231 test case 6: a 131-byte key of 0xaa (most test cases use keys below
        // our 16-byte minimum).
        let key = FingerprintKey::from_bytes(vec![0xaa; 131]).unwrap();
        let mut mac = key.mac.clone();
        mac.update(b"Test Using Larger Than Block-Size Key - Hash Key First");
        let out = mac.finalize().into_bytes();
        assert_eq!(
            hex(&out),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(FingerprintKey::from_bytes(b"short".to_vec()).is_err());
    }

    #[test]
    fn text_values_are_not_folded() {
        let key = FingerprintKey::from_bytes(vec![7; 32]).unwrap();
        assert_ne!(key.fingerprint("Jane@x.io"), key.fingerprint("jane@x.io"));
        assert_eq!(
            key.fingerprint(" jane@x.io\n"),
            key.fingerprint("jane@x.io")
        );
    }
}
