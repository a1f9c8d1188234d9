//! Sign-in sessions. The browser holds a random token in an encrypted, signed cookie
//! (HttpOnly, SameSite=Lax, Secure on https); the database holds its SHA-256, the user, the
//! CSRF token and the times that decide idle and absolute expiry.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use rand::Rng;

use super::accounts::User;
use crate::core::tokens::hash_token;
use crate::db::schema::{user_sessions, users};
use crate::db::AnyConnection;

/// Only refresh `last_seen_at` this often, so reading pages does not write on every request.
const TOUCH_EVERY_SECONDS: i64 = 60;

pub fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Starts a session for `user_id`, returning the token for the cookie.
pub fn start(conn: &mut AnyConnection, user_id: i64, now: NaiveDateTime) -> QueryResult<String> {
    let token = random_token();
    diesel::insert_into(user_sessions::table)
        .values((
            user_sessions::token_hash.eq(hash_token(&token)),
            user_sessions::user_id.eq(user_id),
            user_sessions::csrf_token.eq(random_token()),
            user_sessions::created_at.eq(now),
            user_sessions::last_seen_at.eq(now),
        ))
        .execute(conn)?;
    Ok(token)
}

pub fn end(conn: &mut AnyConnection, token_hash: &str) -> QueryResult<()> {
    diesel::delete(user_sessions::table.find(token_hash)).execute(conn)?;
    Ok(())
}

/// A live session: its user and the CSRF token every form posted in it must carry.
pub struct Session {
    pub user: User,
    pub csrf_token: String,
    pub token_hash: String,
}

/// Finds a live session, ending it if it has expired.
pub fn load(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: NaiveDateTime,
    idle: chrono::Duration,
    max: chrono::Duration,
) -> QueryResult<Option<Session>> {
    let found: Option<(String, NaiveDateTime, NaiveDateTime, User)> = user_sessions::table
        .inner_join(users::table)
        .filter(user_sessions::token_hash.eq(token_hash))
        .select((
            user_sessions::csrf_token,
            user_sessions::created_at,
            user_sessions::last_seen_at,
            User::as_select(),
        ))
        .first(conn)
        .optional()?;
    let Some((csrf_token, created_at, last_seen_at, user)) = found else {
        return Ok(None);
    };
    if created_at + max <= now || last_seen_at + idle <= now {
        end(conn, token_hash)?;
        return Ok(None);
    }
    if (now - last_seen_at).num_seconds() >= TOUCH_EVERY_SECONDS {
        diesel::update(user_sessions::table.find(token_hash))
            .set(user_sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    Ok(Some(Session {
        user,
        csrf_token,
        token_hash: token_hash.to_owned(),
    }))
}
