//! Client addresses are never stored: a signature keeps a keyed hash of its client's address,
//! and of the address's network (/24 for IPv4, /48 for IPv6), as
//! `"<network hash>:<address hash>"` in `signatures.client_hash`. The network part lets an
//! organizer invalidate "everything from the same network as signature #id".
//!
//! The key changes every UTC day: a random key per day is kept in `client_keys` (created by
//! whichever instance needs it first), mixed with a key derived from the instance secret, so
//! neither a copy of the database nor the secret file alone can test guessed addresses.
//! Hashes of different days cannot be linked; retention deletes a day's key with its hashes.

use std::net::IpAddr;
use std::sync::Mutex;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use crate::core::hex::to_hex;
use crate::db::schema::client_keys;
use crate::db::{is_unique_violation, AnyConnection};

/// Hex digits kept of each hash: 128 bits, plenty to tell clients apart.
const HASH_HEX_DIGITS: usize = 32;

pub struct ClientKeys {
    secret: [u8; 32],
    /// Today's combined key, so most requests need no query.
    today: Mutex<Option<(String, [u8; 32])>>,
}

impl ClientKeys {
    pub fn new(secret: [u8; 32]) -> Self {
        Self {
            secret,
            today: Mutex::new(None),
        }
    }

    /// `"<network hash>:<address hash>"` of `ip` under the key of `now`'s day. Must run outside
    /// a write transaction: creating the day's key may hit (and recover from) a unique violation.
    pub fn hash(
        &self,
        conn: &mut AnyConnection,
        ip: &str,
        now: NaiveDateTime,
    ) -> QueryResult<String> {
        let key = self.key_for(conn, now)?;
        Ok(format!(
            "{}:{}",
            keyed(&key, &format!("network {}", network_of(ip))),
            keyed(&key, &format!("address {}", ip.trim()))
        ))
    }

    fn key_for(&self, conn: &mut AnyConnection, now: NaiveDateTime) -> QueryResult<[u8; 32]> {
        let day = now.date().format("%Y-%m-%d").to_string();
        if let Some((cached_day, key)) = self.today.lock().ok().and_then(|cached| cached.clone()) {
            if cached_day == day {
                return Ok(key);
            }
        }
        let stored = day_key(conn, &day, now)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key");
        mac.update(stored.as_bytes());
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        if let Ok(mut cached) = self.today.lock() {
            *cached = Some((day, key));
        }
        Ok(key)
    }
}

/// The stored random key of `day`, created when it does not exist yet. Two instances creating
/// it at once: the loser's insert fails on the primary key and it reads the winner's.
fn day_key(conn: &mut AnyConnection, day: &str, now: NaiveDateTime) -> QueryResult<String> {
    let existing = |conn: &mut AnyConnection| {
        client_keys::table
            .find(day)
            .select(client_keys::key)
            .first::<String>(conn)
            .optional()
    };
    if let Some(key) = existing(conn)? {
        return Ok(key);
    }
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = to_hex(&bytes);
    match diesel::insert_into(client_keys::table)
        .values((
            client_keys::day.eq(day),
            client_keys::key.eq(&key),
            client_keys::created_at.eq(now),
        ))
        .execute(conn)
    {
        Ok(_) => Ok(key),
        Err(error) if is_unique_violation(&error) => {
            existing(conn)?.ok_or(diesel::result::Error::NotFound)
        }
        Err(error) => Err(error),
    }
}

fn keyed(key: &[u8; 32], value: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(value.as_bytes());
    let mut hex = to_hex(&mac.finalize().into_bytes());
    hex.truncate(HASH_HEX_DIGITS);
    hex
}

/// The network an address belongs to for fraud analysis: its /24 (IPv4) or /48 (IPv6).
/// Something that is not an address (no peer address at all) is its own network.
pub fn network_of(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => network_of(&v4.to_string()),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
        },
        Err(_) => ip.trim().to_owned(),
    }
}

/// The network part of a stored `client_hash`.
pub fn network_part(client_hash: &str) -> &str {
    client_hash.split(':').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_addresses_by_network() {
        assert_eq!(network_of("203.0.113.7"), "203.0.113.0/24");
        assert_eq!(network_of("::ffff:203.0.113.9"), "203.0.113.0/24");
        assert_eq!(network_of("2001:db8:1234:5678::1"), "2001:db8:1234::/48");
        assert_eq!(network_of(""), "");
        assert_eq!(network_part("abc:def"), "abc");
        let key = [7_u8; 32];
        assert_eq!(keyed(&key, "x").len(), HASH_HEX_DIGITS);
        assert_ne!(keyed(&key, "x"), keyed(&[8_u8; 32], "x"));
    }
}
