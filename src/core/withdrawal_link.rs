//! The withdrawal link every email to a signer carries: `/withdraw/{token}`.
//!
//! The token is stateless: base64url of one AES-256 block holding the signature id (8 bytes,
//! big-endian, then 8 zero bytes), followed by the first 16 bytes of HMAC-SHA256 of that block.
//! Both keys are derived from the instance secret for this purpose alone. The encrypted block
//! looks random, so a link reveals neither the row number nor how many signatures came before
//! (links used to carry the id in the clear, a counter anyone could read); the HMAC makes a
//! forged or altered link fail before anything is decrypted or looked up.
//!
//! Links of the first format (`id || HMAC(id)`, 24 bytes) are still in emails already sent and
//! keep working: they are told apart by their length, and nothing new is made in that format.
//!
//! Nothing is stored, so the link works for every signature and every email, including
//! those queued before withdrawal existed, never expires (a signer may want out months later,
//! after the confirmation link has long expired), and cannot be guessed or forged without the
//! key file. A stored random token would need a table, a migration and a write on the signing
//! path only to prove the same thing. Withdrawing is final and idempotent, so a link that
//! cannot be revoked is harmless once used; replacing the secret key file invalidates every
//! link.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes256, Block};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secrets::Secrets;

/// Bytes of the HMAC kept in a link: 128 bits are far beyond guessing.
const TAG_BYTES: usize = 16;
const ID_BYTES: usize = 8;
/// One AES block: the id and eight zero bytes.
const BLOCK_BYTES: usize = 16;

/// The HMAC of a link's first bytes (the sealed block; the bare id in first-format links).
fn tag(secrets: &Secrets, signed: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secrets.derive("withdraw"))
        .expect("HMAC takes any key");
    mac.update(signed);
    mac
}

fn cipher(secrets: &Secrets) -> Aes256 {
    Aes256::new(&secrets.derive("withdraw: signature id").into())
}

/// The token of the withdrawal link for one signature.
pub fn token_for(secrets: &Secrets, signature_id: i64) -> String {
    let mut block = Block::default();
    block[..ID_BYTES].copy_from_slice(&signature_id.to_be_bytes());
    cipher(secrets).encrypt_block(&mut block);
    let mut bytes = Vec::with_capacity(BLOCK_BYTES + TAG_BYTES);
    bytes.extend_from_slice(&block);
    bytes.extend_from_slice(&tag(secrets, &block).finalize().into_bytes()[..TAG_BYTES]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The whole link, for emails.
pub fn url_for(base_url: &str, secrets: &Secrets, signature_id: i64) -> String {
    format!("{base_url}/withdraw/{}", token_for(secrets, signature_id))
}

/// The signature id a token stands for, if the token is one of ours (its tag checked in
/// constant time), in the current format or the first one.
pub fn parse_token(secrets: &Secrets, token: &str) -> Option<i64> {
    if token.len() > 64 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    match bytes.len() {
        len if len == BLOCK_BYTES + TAG_BYTES => {
            let (sealed, given) = bytes.split_at(BLOCK_BYTES);
            tag(secrets, sealed).verify_truncated_left(given).ok()?;
            let mut block = Block::clone_from_slice(sealed);
            cipher(secrets).decrypt_block(&mut block);
            let (id, zeros) = block.split_at(ID_BYTES);
            if zeros.iter().any(|&byte| byte != 0) {
                return None;
            }
            Some(i64::from_be_bytes(id.try_into().ok()?))
        }
        // The first format, still in emails sent before: the id in the clear.
        len if len == ID_BYTES + TAG_BYTES => {
            let (id, given) = bytes.split_at(ID_BYTES);
            tag(secrets, id).verify_truncated_left(given).ok()?;
            Some(i64::from_be_bytes(id.try_into().ok()?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key file of its own for each test: tests run in parallel, and one reading a file
    /// another is still writing found it empty.
    fn secrets() -> Secrets {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "undersign-withdraw-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let secrets = Secrets::load_or_create(&dir.join("secret.key")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        secrets
    }

    /// A link in the first format, as emails sent before the current one carry.
    fn first_format(secrets: &Secrets, id: i64) -> String {
        let mut bytes = id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&tag(secrets, &id.to_be_bytes()).finalize().into_bytes()[..16]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let secrets = secrets();
        let token = token_for(&secrets, 42);
        assert_eq!(parse_token(&secrets, &token), Some(42));
        let other = token_for(&secrets, 43);
        assert_eq!(parse_token(&secrets, &other), Some(43));
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        assert_eq!(bytes.len(), BLOCK_BYTES + TAG_BYTES);
        // Any changed bit, in the sealed id or in the tag, is refused.
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            assert_eq!(
                parse_token(&secrets, &URL_SAFE_NO_PAD.encode(&changed)),
                None,
                "byte {at}"
            );
        }
        // Another link's tag on this link's block.
        let mut spliced = bytes[..BLOCK_BYTES].to_vec();
        spliced.extend_from_slice(&URL_SAFE_NO_PAD.decode(&other).unwrap()[BLOCK_BYTES..]);
        assert_eq!(
            parse_token(&secrets, &URL_SAFE_NO_PAD.encode(&spliced)),
            None
        );
        assert_eq!(parse_token(&secrets, ""), None);
        assert_eq!(parse_token(&secrets, "not base64 !"), None);
        assert_eq!(parse_token(&secrets, &"A".repeat(5000)), None);
        assert_eq!(parse_token(&secrets, &token[..token.len() - 2]), None);
    }

    #[test]
    fn a_link_does_not_show_its_id() {
        let secrets = secrets();
        for id in [1_i64, 2, 255, 256, 70_000, i64::MAX] {
            let bytes = URL_SAFE_NO_PAD.decode(token_for(&secrets, id)).unwrap();
            for shown in [&id.to_be_bytes()[..], &id.to_le_bytes()[..]] {
                assert!(
                    !bytes.windows(shown.len()).any(|window| window == shown),
                    "id {id} is readable in its link"
                );
            }
        }
    }

    #[test]
    fn first_format_links_still_work_and_refuse_tampering() {
        let secrets = secrets();
        let old = first_format(&secrets, 42);
        assert_eq!(parse_token(&secrets, &old), Some(42));
        let mut bytes = URL_SAFE_NO_PAD.decode(&old).unwrap();
        bytes[7] = 43;
        assert_eq!(parse_token(&secrets, &URL_SAFE_NO_PAD.encode(&bytes)), None);
    }
}
