//! The instance's Ed25519 signing key, which signs every bundle's `manifest.json`.
//!
//! It is created on first use in the file named by `UNDERSIGN_SIGNING_KEY_FILE` (readable by
//! its owner only; one line: the 32-byte secret seed in base64) and never leaves it. The
//! public key is published at `GET /.well-known/undersign/signing-key`, printed by
//! `undersign key show`, and carried in every bundle. Its fingerprint, the first 32 hex digits
//! of the SHA-256 of the 32 public key bytes in groups of four, is short enough to compare by
//! eye or read over the phone.

use std::path::Path;

use anyhow::{bail, Context};
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::core::hex::{parse_hash, sha256, to_hex};
use crate::secrets::read_or_create_key_file;

pub const ALGORITHM: &str = "Ed25519";

/// The DER header of an Ed25519 SubjectPublicKeyInfo (RFC 8410): what precedes the 32 key
/// bytes in a PEM "PUBLIC KEY" that OpenSSL and Python read.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

pub struct InstanceKey {
    signing: SigningKey,
}

impl InstanceKey {
    /// Reads the key file, or creates it when it does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        let (bytes, created) = read_or_create_key_file(path, 32)
            .with_context(|| format!("the signing key file {} is not usable", path.display()))?;
        let seed: [u8; 32] = bytes.as_slice().try_into()?;
        let key = Self {
            signing: SigningKey::from_bytes(&seed),
        };
        if created {
            log::warn!(
                "created a new signing key for delivery bundles in {} (fingerprint {}): \
                 back it up; recipients check bundles against it",
                path.display(),
                key.public_key().fingerprint()
            );
        }
        Ok(key)
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// The signature of `message`, base64 (as in `manifest.sig`).
    pub fn sign(&self, message: &[u8]) -> String {
        STANDARD.encode(self.signing.sign(message).to_bytes())
    }
}

/// A public key that verifies bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads a key written as base64 (as published), 64 hex digits, or a PEM "PUBLIC KEY".
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        let bytes = if text.starts_with("-----BEGIN PUBLIC KEY-----") {
            let body: String = text
                .lines()
                .filter(|line| !line.starts_with("-----"))
                .collect();
            let der = STANDARD
                .decode(body.trim())
                .context("the PEM key is not valid base64")?;
            match der.strip_prefix(&SPKI_PREFIX[..]) {
                Some(key) => key.to_vec(),
                None => bail!("the PEM key is not an Ed25519 public key"),
            }
        } else if let Some(bytes) = parse_hash(text) {
            bytes.to_vec()
        } else {
            [&STANDARD, &URL_SAFE, &URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
                .context(
                    "the key is neither base64 (as published), 64 hex digits nor a PEM public key",
                )?
        };
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!(
                "an Ed25519 public key has 32 bytes; this one has {}",
                bytes.len()
            )
        })?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| anyhow::anyhow!("these 32 bytes are not a valid Ed25519 public key"))?;
        Ok(Self(key))
    }

    /// The 32 key bytes in base64, as published and as carried in manifests.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.to_bytes())
    }

    /// e.g. `1a2b 3c4d 5e6f 7a8b 9c0d 1e2f 3a4b 5c6d`.
    pub fn fingerprint(&self) -> String {
        let hex = to_hex(&sha256(&self.0.to_bytes()));
        hex.as_bytes()[..32]
            .chunks(4)
            .map(|group| std::str::from_utf8(group).expect("hex is ASCII"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The key as a PEM SubjectPublicKeyInfo, for `openssl pkeyutl` and Python's
    /// `cryptography`.
    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0.to_bytes());
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der)
        )
    }

    /// Checks a base64 signature (as in `manifest.sig`, surrounding whitespace ignored) of
    /// `message`.
    pub fn verify(&self, message: &[u8], signature_base64: &str) -> Result<(), SignatureProblem> {
        let bytes = STANDARD
            .decode(signature_base64.trim())
            .map_err(|_| SignatureProblem::Malformed("it is not base64".to_owned()))?;
        let bytes: [u8; 64] = bytes.as_slice().try_into().map_err(|_| {
            SignatureProblem::Malformed(format!(
                "an Ed25519 signature has 64 bytes; this one has {}",
                bytes.len()
            ))
        })?;
        self.0
            .verify_strict(message, &Signature::from_bytes(&bytes))
            .map_err(|_| SignatureProblem::Invalid)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureProblem {
    Malformed(String),
    /// Well-formed, but not made by this key over these bytes.
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("undersign-signing-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn creates_the_key_once_and_signs_verifiably() {
        let dir = temp_dir("create");
        let path = dir.join("signing.key");
        let key = InstanceKey::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = InstanceKey::load_or_create(&path).unwrap();
        assert_eq!(key.public_key(), again.public_key());

        let signature = key.sign(b"manifest");
        assert_eq!(key.public_key().verify(b"manifest", &signature), Ok(()));
        assert_eq!(
            key.public_key().verify(b"manifesT", &signature),
            Err(SignatureProblem::Invalid)
        );
        assert!(matches!(
            key.public_key().verify(b"manifest", "not base64!"),
            Err(SignatureProblem::Malformed(_))
        ));
        let other = InstanceKey::load_or_create(&dir.join("other.key")).unwrap();
        assert_eq!(
            other.public_key().verify(b"manifest", &signature),
            Err(SignatureProblem::Invalid)
        );

        std::fs::write(&path, "short").unwrap();
        assert!(InstanceKey::load_or_create(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn public_keys_read_back_in_every_written_form() {
        let key = InstanceKey {
            signing: SigningKey::from_bytes(&[9; 32]),
        }
        .public_key();
        assert_eq!(PublicKey::parse(&key.to_base64()).unwrap(), key);
        assert_eq!(PublicKey::parse(&key.to_pem()).unwrap(), key);
        assert_eq!(PublicKey::parse(&to_hex(&key.0.to_bytes())).unwrap(), key);
        assert!(PublicKey::parse("AAAA").is_err());
        assert!(PublicKey::parse("not a key at all").is_err());
        let fingerprint = key.fingerprint();
        assert_eq!(fingerprint.len(), 39);
        assert_eq!(fingerprint.split(' ').count(), 8);
        assert!(key
            .to_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
    }
}
