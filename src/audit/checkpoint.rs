//! Signed checkpoints: Ed25519 signatures over the chain head, inside the chain.
//!
//! A checkpoint is an ordinary record (`"event":"checkpoint"`) whose `sig` signs the
//! `seq` and `hash` of the record before it (which are also the checkpoint's own `seq - 1`
//! and `prev`). Someone who rewrites the whole file, recomputing every hash, cannot
//! produce valid checkpoints without the secret key, so
//! `privacy-router audit verify --public-key FILE` catches the rewrite at the first
//! checkpoint after the change.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::error::{AuditError, ErrorKind};
use super::fingerprint::hex;

/// What a checkpoint signs: a fixed context, the signed record's `seq` and `hash`.
pub(crate) fn message(seq: u64, hash: &str) -> Vec<u8> {
    format!("privacy-router audit checkpoint v1\n{seq}\n{hash}").into_bytes()
}

/// The secret key that signs checkpoints, and how often.
///
/// `Debug` shows the public key id, never the key.
#[derive(Clone)]
pub struct Checkpoints {
    key: SigningKey,
    id: String,
    pub(crate) every_records: u64,
    pub(crate) every: Option<Duration>,
}

impl Checkpoints {
    /// Signs with the Ed25519 secret key (seed) in `path`: 32 raw bytes, or 64 hex digits
    /// (one trailing newline ignored), as `privacy-router audit keygen` writes. By default
    /// a checkpoint follows every 1,000 records, and the last record at shutdown.
    ///
    /// # Errors
    ///
    /// The file cannot be read or does not hold a key.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Checkpoints, AuditError> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| AuditError::io(ErrorKind::KeyUnreadable, path, e))?;
        let seed =
            key_bytes(&bytes).ok_or_else(|| AuditError::at(ErrorKind::BadSigningKey, path))?;
        Ok(Checkpoints::from_seed(seed))
    }

    /// Signs with the Ed25519 secret key `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Checkpoints {
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(&key.verifying_key().to_bytes());
        Checkpoints {
            key,
            id,
            every_records: 1000,
            every: None,
        }
    }

    /// A checkpoint after every `n` records (at least 1).
    pub fn every_records(mut self, n: u64) -> Checkpoints {
        self.every_records = n.max(1);
        self
    }

    /// Also a checkpoint when `interval` has passed since the last one and records came
    /// in since.
    pub fn every(mut self, interval: Duration) -> Checkpoints {
        self.every = Some(interval);
        self
    }

    /// The public key, 64 hex digits (what `audit verify --public-key` reads).
    pub fn public_key_hex(&self) -> String {
        hex(&self.key.verifying_key().to_bytes())
    }

    /// The public key's id: 8 hex digits of a SHA-256 over it.
    pub fn key_id(&self) -> &str {
        &self.id
    }

    pub(crate) fn sign(&self, seq: u64, hash: &str) -> String {
        hex(&self.key.sign(&message(seq, hash)).to_bytes())
    }
}

impl fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoints")
            .field("key_id", &self.id)
            .field("every_records", &self.every_records)
            .field("every", &self.every)
            .finish()
    }
}

/// The public key that checks checkpoint signatures.
#[derive(Clone)]
pub struct CheckpointPublicKey {
    key: VerifyingKey,
    id: String,
}

impl CheckpointPublicKey {
    /// Reads a public key: 32 raw bytes or 64 hex digits.
    ///
    /// # Errors
    ///
    /// The file cannot be read or does not hold a valid key.
    pub fn from_file(path: impl AsRef<Path>) -> Result<CheckpointPublicKey, AuditError> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| AuditError::io(ErrorKind::KeyUnreadable, path, e))?;
        let raw =
            key_bytes(&bytes).ok_or_else(|| AuditError::at(ErrorKind::BadSigningKey, path))?;
        let key = VerifyingKey::from_bytes(&raw)
            .map_err(|_| AuditError::at(ErrorKind::BadSigningKey, path))?;
        Ok(CheckpointPublicKey {
            id: key_id(&raw),
            key,
        })
    }

    /// The key's id, as written in checkpoints.
    pub fn key_id(&self) -> &str {
        &self.id
    }

    pub(crate) fn verify(&self, seq: u64, hash: &str, sig_hex: &str) -> bool {
        let Some(sig) = unhex::<64>(sig_hex) else {
            return false;
        };
        self.key
            .verify(&message(seq, hash), &Signature::from_bytes(&sig))
            .is_ok()
    }
}

impl fmt::Debug for CheckpointPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointPublicKey")
            .field("key_id", &self.id)
            .finish()
    }
}

/// A new secret key seed from the operating system's random source (`/dev/urandom`).
///
/// # Errors
///
/// The random source cannot be read.
pub fn generate_seed() -> std::io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(seed)
}

fn key_id(public: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"privacy-router checkpoint key id\0");
    h.update(public);
    hex(&h.finalize()[..4])
}

/// 32 raw bytes, or 64 hex digits with optional surrounding whitespace.
fn key_bytes(bytes: &[u8]) -> Option<[u8; 32]> {
    if bytes.len() == 32 {
        return bytes.try_into().ok();
    }
    unhex::<32>(std::str::from_utf8(bytes).ok()?.trim())
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (i, pair) in s.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_check_with_the_public_key_only() {
        let cp = Checkpoints::from_seed([5; 32]);
        let dir = std::env::temp_dir().join(format!("pr-audit-cp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pk_path = dir.join("pk");
        std::fs::write(&pk_path, cp.public_key_hex() + "\n").unwrap();
        let pk = CheckpointPublicKey::from_file(&pk_path).unwrap();
        assert_eq!(pk.key_id(), cp.key_id());
        let sig = cp.sign(7, "ab");
        assert!(pk.verify(7, "ab", &sig));
        assert!(!pk.verify(8, "ab", &sig));
        assert!(!pk.verify(7, "ac", &sig));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
