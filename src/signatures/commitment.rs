//! The commitment of a signature: the signer's receipt and a leaf of every delivery's Merkle
//! tree.
//!
//! At confirmation a signature gets 32 random bytes of salt (kept only in the database) and
//!
//! ```text
//! commitment = SHA-256( field("undersign receipt commitment v1")
//!                    || field(salt)                      32 raw bytes
//!                    || field(petition slug)             UTF-8
//!                    || field(text SHA-256 of the version the signer saw)   64 lowercase hex digits, ASCII
//!                    || field(name)                      UTF-8, as stored (trimmed)
//!                    || field(country)                   ISO 3166-1 alpha-2, ASCII
//!                    || field(postal code)               UTF-8; empty when none was given
//!                    || field(confirmation time)         "YYYY-MM-DDTHH:MM:SS.ffffffZ", UTC, ASCII
//!                    )
//! field(x) = length of x in bytes as 4 bytes big-endian || x
//! ```
//!
//! Length prefixes make the encoding unambiguous (no two different inputs give the same bytes).
//! The salt makes the commitment useless for guessing: without it nobody can test whether a
//! given person signed, so commitments can be handed out, listed in `signatures.csv` and
//! checked on a public page. With the salt, the instance (or an auditor it gives the salt to)
//! can show that a commitment belongs to a given signature.

use chrono::{NaiveDateTime, SubsecRound};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::core::hex::{parse_hash, to_hex, Hash};
use crate::safety::encryption::{DataKey, Field, Undecryptable};

/// The first field of every commitment, so that these hashes can never be confused with
/// hashes of anything else.
pub const DOMAIN: &str = "undersign receipt commitment v1";

/// The secret random half of a commitment.
#[derive(Clone, PartialEq, Eq)]
pub struct Salt([u8; 32]);

impl Salt {
    pub fn generate() -> Self {
        let mut bytes = [0_u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Salt(bytes)
    }

    /// As stored in `signatures.receipt_salt`.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        parse_hash(text).map(Salt)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Salt(bytes)
    }
}

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt(…)")
    }
}

/// What a commitment binds, besides the salt.
#[derive(Debug, Clone)]
pub struct CommittedSignature<'a> {
    pub petition_slug: &'a str,
    pub version_sha256: &'a str,
    pub name: &'a str,
    pub country: &'a str,
    pub postal_code: Option<&'a str>,
    pub confirmed_at: NaiveDateTime,
}

/// A fresh salt and the commitment for a signature as it is stored, its name and postal code
/// sealed (see `safety::encryption`). Confirmation gives receipts this way, and so does a
/// delivery to signatures confirmed before receipts existed: both commit to the same fields.
pub fn commit_sealed(
    key: &DataKey,
    petition_slug: &str,
    version_sha256: &str,
    sealed_name: &str,
    country: &str,
    sealed_postal_code: Option<&str>,
    confirmed_at: NaiveDateTime,
) -> Result<(Salt, Hash), Undecryptable> {
    let name = key.open(Field::Name, sealed_name)?;
    let postal_code = key.open_opt(Field::PostalCode, sealed_postal_code)?;
    let salt = Salt::generate();
    let commitment = compute(
        &salt,
        &CommittedSignature {
            petition_slug,
            version_sha256,
            name: &name,
            country,
            postal_code: postal_code.as_deref(),
            confirmed_at,
        },
    );
    Ok((salt, commitment))
}

/// Confirmation times are kept to the microsecond, which both databases store exactly, so the
/// stored time and the committed one are the same.
pub fn confirmation_time(now: NaiveDateTime) -> NaiveDateTime {
    now.trunc_subsecs(6)
}

/// The confirmation time as it is committed.
pub fn encode_time(time: NaiveDateTime) -> String {
    confirmation_time(time)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    let length = u32::try_from(bytes.len()).expect("committed fields are far below 4 GiB");
    hasher.update(length.to_be_bytes());
    hasher.update(bytes);
}

pub fn compute(salt: &Salt, signature: &CommittedSignature<'_>) -> Hash {
    let mut hasher = Sha256::new();
    field(&mut hasher, DOMAIN.as_bytes());
    field(&mut hasher, &salt.0);
    field(&mut hasher, signature.petition_slug.as_bytes());
    field(&mut hasher, signature.version_sha256.as_bytes());
    field(&mut hasher, signature.name.as_bytes());
    field(&mut hasher, signature.country.as_bytes());
    field(&mut hasher, signature.postal_code.unwrap_or("").as_bytes());
    field(&mut hasher, encode_time(signature.confirmed_at).as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn example(postal_code: Option<&str>) -> CommittedSignature<'_> {
        CommittedSignature {
            petition_slug: "free-them",
            version_sha256: "5e4f2c8bd0f2f83ae0a1b5f0b7c1a4c2d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4",
            name: "Анна Иванова",
            country: "NO",
            postal_code,
            confirmed_at: NaiveDate::from_ymd_opt(2026, 11, 28)
                .unwrap()
                .and_hms_nano_opt(10, 11, 12, 123_456_789)
                .unwrap(),
        }
    }

    #[test]
    fn matches_the_documented_encoding() {
        let salt = Salt::from_bytes([7; 32]);
        // Computed independently with Python's hashlib from the encoding in the module docs.
        assert_eq!(
            to_hex(&compute(&salt, &example(Some("0150")))),
            "57469b726119fe477e3be74b4349dc911307b06435106ee39ee817dd325e3fd9"
        );
    }

    #[test]
    fn every_field_and_the_salt_change_it() {
        let salt = Salt::from_bytes([7; 32]);
        let base = compute(&salt, &example(Some("0150")));
        assert_ne!(
            base,
            compute(&Salt::from_bytes([8; 32]), &example(Some("0150")))
        );
        assert_ne!(base, compute(&salt, &example(None)));
        let mut moved = example(Some("0150"));
        moved.country = "SE";
        assert_ne!(base, compute(&salt, &moved));
        // Length prefixes: moving text between neighbouring fields changes the commitment.
        let mut a = example(None);
        a.name = "Anna I";
        a.country = "vanova";
        let mut b = example(None);
        b.name = "Anna Iv";
        b.country = "anova";
        assert_ne!(compute(&salt, &a), compute(&salt, &b));
        // Below a microsecond nothing is committed.
        let mut later = example(Some("0150"));
        later.confirmed_at += chrono::Duration::nanoseconds(1);
        assert_eq!(base, compute(&salt, &later));
        assert_eq!(
            encode_time(example(None).confirmed_at),
            "2026-11-28T10:11:12.123456Z"
        );
    }

    #[test]
    fn salts_round_trip_as_hex() {
        let salt = Salt::generate();
        assert_eq!(Salt::from_hex(&salt.to_hex()), Some(salt.clone()));
        assert_ne!(Salt::generate(), salt);
        assert_eq!(format!("{salt:?}"), "Salt(…)");
    }
}
