//! Signers' personal fields at rest: name, email address, postal code and comment in
//! `signatures`, recipient and payload in `outbox`. Each value is sealed with AES-256-GCM under
//! a key from `UNDERSIGN_DATA_KEY_FILE`, with a fresh random nonce, and bound to its column (the
//! column is the associated data, so a value copied into another column does not open).
//! Duplicates and exact-address search use keyed hashes (HMAC-SHA256) of the normalised
//! address and of its domain instead of the address.
//!
//! A copy of the database alone shows none of these fields; a copy of the database *and* the
//! key file shows everything, so the key file is kept apart from database backups.
//!
//! Stored form: `enc1:` + base64(nonce ‖ ciphertext ‖ tag). Three kinds of values are stored
//! as they are because they are not personal data: the empty string (an erased name), and the
//! `erased:ID` / `withdrawn:ID` placeholders of erased addresses.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use std::sync::Arc;

use crate::core::clock::now;
use crate::core::email::EmailAddress;
use crate::db::schema::{instance_checks, outbox, signatures};
use crate::db::DbPool;
use crate::db::{is_unique_violation, write_transaction, AnyConnection};
use crate::secrets::read_or_create_key_file;

const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
const SEALED_PREFIX: &str = "enc1:";
/// Placeholders of erased addresses (withdrawal, retention): not personal, stored as they are.
const PLAIN_MARKERS: [&str; 2] = ["erased:", "withdrawn:"];

/// The column a sealed value belongs to. Its label is the associated data of the cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Email,
    PostalCode,
    Comment,
    OutboxRecipient,
    OutboxPayload,
    /// The known text stored once per database to recognise the right key.
    KeyCheck,
}

impl Field {
    fn label(self) -> &'static [u8] {
        match self {
            Field::Name => b"signatures.name",
            Field::Email => b"signatures.email",
            Field::PostalCode => b"signatures.postal_code",
            Field::Comment => b"signatures.comment",
            Field::OutboxRecipient => b"outbox.recipient",
            Field::OutboxPayload => b"outbox.payload",
            Field::KeyCheck => b"instance_checks.data_key",
        }
    }
}

/// A stored value that does not open under this key: the database was changed by hand, or
/// encrypted with another key file.
#[derive(Debug, thiserror::Error)]
#[error("a stored {field:?} value cannot be decrypted with this data key")]
pub struct Undecryptable {
    field: Field,
}

impl From<Undecryptable> for diesel::result::Error {
    fn from(error: Undecryptable) -> Self {
        diesel::result::Error::DeserializationError(Box::new(error))
    }
}

pub struct DataKey {
    cipher: Aes256Gcm,
    lookup: [u8; 32],
}

impl DataKey {
    /// Reads the key file, or creates it with a warning to back it up.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        let (bytes, created) = read_or_create_key_file(path, KEY_BYTES)
            .with_context(|| format!("the data key file {} is not usable", path.display()))?;
        if created {
            log::warn!(
                "created a new data key in {}: BACK IT UP NOW, apart from the database backups. \
                 Signers' names and addresses are encrypted with it and cannot be read without \
                 it. Give every instance the same file",
                path.display()
            );
        }
        let mut key = [0_u8; KEY_BYTES];
        key.copy_from_slice(&bytes);
        Ok(Self::from_bytes(&key))
    }

    /// The key from its 32 bytes; the cipher key and the hash key are derived from them, so
    /// the two uses never share a key.
    pub fn from_bytes(master: &[u8; KEY_BYTES]) -> Self {
        let derive = |purpose: &[u8]| -> [u8; 32] {
            let mut mac =
                <Hmac<Sha256> as Mac>::new_from_slice(master).expect("HMAC takes any key");
            mac.update(purpose);
            mac.finalize().into_bytes().into()
        };
        Self {
            cipher: Aes256Gcm::new(&derive(b"undersign field encryption").into()),
            lookup: derive(b"undersign lookup hashes"),
        }
    }

    pub fn seal(&self, field: Field, plaintext: &str) -> String {
        let mut nonce = [0_u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: field.label(),
                },
            )
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut bytes = Vec::with_capacity(NONCE_BYTES + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", STANDARD_NO_PAD.encode(bytes))
    }

    pub fn seal_opt(&self, field: Field, plaintext: Option<&str>) -> Option<String> {
        plaintext.map(|text| self.seal(field, text))
    }

    /// The plaintext of a stored value (erased values and placeholders come back as stored).
    pub fn open(&self, field: Field, stored: &str) -> Result<String, Undecryptable> {
        let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
            if is_plain_marker(stored) {
                return Ok(stored.to_owned());
            }
            return Err(Undecryptable { field });
        };
        let bytes = STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| Undecryptable { field })?;
        if bytes.len() < NONCE_BYTES {
            return Err(Undecryptable { field });
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: field.label(),
                },
            )
            .map_err(|_| Undecryptable { field })?;
        String::from_utf8(plain).map_err(|_| Undecryptable { field })
    }

    pub fn open_opt(
        &self,
        field: Field,
        stored: Option<&str>,
    ) -> Result<Option<String>, Undecryptable> {
        stored.map(|value| self.open(field, value)).transpose()
    }

    /// The duplicate key of an address: one per mailbox (see [`EmailAddress::key`]), unique
    /// per petition, useless without the key file.
    pub fn email_key(&self, email: &EmailAddress) -> String {
        self.lookup_hash(b"email", email.key())
    }

    /// The stored form of an email domain, for the per-domain limit and bulk invalidation.
    /// Hashed too: a personal domain can name its owner.
    pub fn domain_key(&self, domain: &str) -> String {
        self.lookup_hash(b"domain", &domain.trim().to_lowercase())
    }

    fn lookup_hash(&self, purpose: &[u8], value: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.lookup).expect("HMAC takes any key");
        mac.update(purpose);
        mac.update(b":");
        mac.update(value.as_bytes());
        format!("{:x}", mac.finalize().into_bytes())
    }
}

fn is_plain_marker(stored: &str) -> bool {
    stored.is_empty() || PLAIN_MARKERS.iter().any(|m| stored.starts_with(m))
}

fn is_sealed_or_marker(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX) || is_plain_marker(stored)
}

const KEY_CHECK_NAME: &str = "data_key";
const KEY_CHECK_TEXT: &str = "undersign data key check";

/// What [`prepare`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Prepared {
    /// The database already knew this key.
    KnownKey,
    /// First start with encryption: the key was recorded, and this many rows that an older
    /// version had stored in the clear were encrypted.
    Recorded { rows_encrypted: usize },
}

/// Makes sure the database and the key belong together before anything is read or written:
/// the first start records a check value sealed with the key (and encrypts rows an older
/// version stored in the clear); later starts refuse a different key with a clear message
/// instead of failing on the first signature.
pub fn prepare(
    conn: &mut AnyConnection,
    key: &DataKey,
    key_file: &Path,
    now: NaiveDateTime,
) -> anyhow::Result<Prepared> {
    // Two instances starting at once on PostgreSQL: the loser of the insert finds the winner's
    // check value on its second pass.
    let mut attempts = 0;
    let prepared = loop {
        attempts += 1;
        match write_transaction(conn, |conn| record_or_check(conn, key, now)) {
            Err(error) if attempts < 3 && is_unique_violation(&error) => continue,
            other => break other.context("cannot check the data key against the database")?,
        }
    };
    match prepared {
        Some(prepared) => Ok(prepared),
        None => bail!(
            "the data key in {} does not match this database: its signers' fields were encrypted \
             with another key. Restore the key file from your backup (UNDERSIGN_DATA_KEY_FILE); \
             a new key cannot read them",
            key_file.display()
        ),
    }
}

fn record_or_check(
    conn: &mut AnyConnection,
    key: &DataKey,
    now: NaiveDateTime,
) -> QueryResult<Option<Prepared>> {
    let stored: Option<String> = instance_checks::table
        .find(KEY_CHECK_NAME)
        .select(instance_checks::value)
        .first(conn)
        .optional()?;
    if let Some(stored) = stored {
        let matches = key
            .open(Field::KeyCheck, &stored)
            .is_ok_and(|text| text == KEY_CHECK_TEXT);
        return Ok(matches.then_some(Prepared::KnownKey));
    }
    let rows_encrypted = encrypt_clear_rows(conn, key)?;
    diesel::insert_into(instance_checks::table)
        .values((
            instance_checks::name.eq(KEY_CHECK_NAME),
            instance_checks::value.eq(key.seal(Field::KeyCheck, KEY_CHECK_TEXT)),
            instance_checks::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(Some(Prepared::Recorded { rows_encrypted }))
}

type ClearSignature = (i64, String, String, Option<String>, Option<String>);

/// Encrypts what versions before field encryption stored in the clear, and replaces their
/// plain duplicate keys and domains by keyed hashes. Runs once, in the transaction that
/// records the key.
fn encrypt_clear_rows(conn: &mut AnyConnection, key: &DataKey) -> QueryResult<usize> {
    let mut changed = 0;
    let ids: Vec<i64> = signatures::table
        .select(signatures::id)
        .order(signatures::id)
        .load(conn)?;
    for chunk in ids.chunks(500) {
        let rows: Vec<ClearSignature> = signatures::table
            .filter(signatures::id.eq_any(chunk))
            .select((
                signatures::id,
                signatures::email,
                signatures::name,
                signatures::postal_code,
                signatures::comment,
            ))
            .load(conn)?;
        for (id, email, name, postal_code, comment) in rows {
            if email.starts_with(SEALED_PREFIX) {
                continue;
            }
            let seal = |field, value: &str| {
                if is_sealed_or_marker(value) {
                    value.to_owned()
                } else {
                    key.seal(field, value)
                }
            };
            // Placeholders keep their own unique keys; a real address gets its keyed hash.
            let (email_key, email_domain) = match EmailAddress::parse(&email) {
                Ok(address) if !is_plain_marker(&email) => (
                    key.email_key(&address),
                    Some(key.domain_key(address.domain())),
                ),
                _ => (email.clone(), None),
            };
            diesel::update(signatures::table.find(id))
                .set((
                    signatures::email.eq(seal(Field::Email, &email)),
                    signatures::email_key.eq(email_key),
                    signatures::email_domain.eq(email_domain),
                    signatures::name.eq(seal(Field::Name, &name)),
                    signatures::postal_code
                        .eq(postal_code.as_deref().map(|v| seal(Field::PostalCode, v))),
                    signatures::comment.eq(comment.as_deref().map(|v| seal(Field::Comment, v))),
                ))
                .execute(conn)?;
            changed += 1;
        }
    }
    let clear_emails: Vec<(i64, String, String)> = outbox::table
        .filter(outbox::recipient.not_like(format!("{SEALED_PREFIX}%")))
        .select((outbox::id, outbox::recipient, outbox::payload))
        .load(conn)?;
    for (id, recipient, payload) in clear_emails {
        diesel::update(outbox::table.find(id))
            .set((
                outbox::recipient.eq(key.seal(Field::OutboxRecipient, &recipient)),
                outbox::payload.eq(key.seal(Field::OutboxPayload, &payload)),
            ))
            .execute(conn)?;
        changed += 1;
    }
    Ok(changed)
}

/// Loads (or creates) the data key and checks it against the database; see
/// [`prepare`]. The command-line tools that read signers' fields use it too.
pub fn open_data_key(pool: &DbPool, file: &std::path::Path) -> anyhow::Result<Arc<DataKey>> {
    let key = DataKey::load_or_create(file)?;
    let mut conn = pool.get().context("cannot connect to the database")?;
    match prepare(&mut conn, &key, file, now())? {
        Prepared::Recorded { rows_encrypted } if rows_encrypted > 0 => {
            log::warn!(
                "encrypted {rows_encrypted} signature and email rows that an older version had \
                 stored in the clear"
            )
        }
        _ => {}
    }
    Ok(Arc::new(key))
}

/// [`open_data_key`] for the commands other than `serve`: the key file must exist already, as
/// a new key would not read the signers' fields the server stored.
pub fn open_existing_data_key(
    pool: &DbPool,
    file: &std::path::Path,
) -> anyhow::Result<Arc<DataKey>> {
    if std::fs::metadata(file).is_err() {
        anyhow::bail!(
            "there is no data key at {}: run the command from the server's folder, or set \
             UNDERSIGN_DATA_KEY_FILE to the server's key file",
            std::path::absolute(file)
                .unwrap_or_else(|_| file.to_owned())
                .display()
        );
    }
    open_data_key(pool, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> DataKey {
        DataKey::from_bytes(&[byte; KEY_BYTES])
    }

    #[test]
    fn sealed_values_open_and_hide_the_text() {
        let key = key(7);
        let sealed = key.seal(Field::Name, "Святлана Ціханоўская");
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("Святлана"));
        assert_eq!(
            key.open(Field::Name, &sealed).unwrap(),
            "Святлана Ціханоўская"
        );
        // A fresh nonce every time: equal names do not look equal.
        assert_ne!(sealed, key.seal(Field::Name, "Святлана Ціханоўская"));
    }

    #[test]
    fn values_do_not_open_in_another_column_or_under_another_key() {
        let sealed = key(1).seal(Field::Email, "ana@example.org");
        assert!(key(1).open(Field::Name, &sealed).is_err());
        assert!(key(2).open(Field::Email, &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(key(1).open(Field::Email, &tampered).is_err());
        assert!(key(1).open(Field::Email, "enc1:").is_err());
    }

    #[test]
    fn clear_text_is_refused_but_placeholders_pass() {
        let key = key(3);
        assert!(key.open(Field::Email, "ana@example.org").is_err());
        assert_eq!(key.open(Field::Name, "").unwrap(), "");
        assert_eq!(
            key.open(Field::Email, "withdrawn:12").unwrap(),
            "withdrawn:12"
        );
        assert_eq!(key.open(Field::Email, "erased:12").unwrap(), "erased:12");
    }

    #[test]
    fn lookup_hashes_follow_the_normalised_address_and_the_key() {
        let a = EmailAddress::parse("Ana.Maria+petition@googlemail.com").unwrap();
        let b = EmailAddress::parse("anamaria@gmail.com").unwrap();
        assert_eq!(key(4).email_key(&a), key(4).email_key(&b));
        assert_ne!(key(4).email_key(&a), key(5).email_key(&a));
        assert!(!key(4).email_key(&a).contains("gmail"));
        assert_eq!(
            key(4).domain_key("Example.ORG"),
            key(4).domain_key("example.org")
        );
        assert_ne!(key(4).domain_key("example.org"), key(4).email_key(&b));
    }
}
