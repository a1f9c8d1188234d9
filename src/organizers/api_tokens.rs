//! API tokens for the organizer API: shown once when created, stored only as a SHA-256 hash,
//! revocable. Requests send `Authorization: Bearer TOKEN`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::accounts::User;
use super::sessions::random_token;
use crate::core::tokens::hash_token;
use crate::db::schema::{api_tokens, users};
use crate::db::AnyConnection;

/// Tokens start with this, so a leaked one is easy to recognise in a scan.
const TOKEN_PREFIX: &str = "ust_";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// Creates a token for `user_id` and returns it with the secret, which is never stored.
pub fn create(
    conn: &mut AnyConnection,
    user_id: i64,
    name: &str,
    now: NaiveDateTime,
) -> QueryResult<(ApiToken, String)> {
    let secret = format!("{TOKEN_PREFIX}{}", random_token());
    let id: i64 = diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::user_id.eq(user_id),
            api_tokens::name.eq(name),
            api_tokens::token_hash.eq(hash_token(&secret)),
            api_tokens::created_at.eq(now),
        ))
        .returning(api_tokens::id)
        .get_result(conn)?;
    let token = api_tokens::table
        .find(id)
        .select(ApiToken::as_select())
        .first(conn)?;
    Ok((token, secret))
}

pub fn list_for_user(conn: &mut AnyConnection, user_id: i64) -> QueryResult<Vec<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .order(api_tokens::id.desc())
        .select(ApiToken::as_select())
        .load(conn)
}

/// Revokes one of `user_id`'s tokens. Returns false when there is no such live token.
pub fn revoke(
    conn: &mut AnyConnection,
    user_id: i64,
    token_id: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(
        api_tokens::table
            .filter(api_tokens::id.eq(token_id))
            .filter(api_tokens::user_id.eq(user_id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(changed == 1)
}

/// The user a live token belongs to.
pub fn authenticate(
    conn: &mut AnyConnection,
    secret: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<User>> {
    let hash = hash_token(secret);
    let found: Option<(i64, Option<NaiveDateTime>, User)> = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::token_hash.eq(&hash))
        .filter(api_tokens::revoked_at.is_null())
        .select((api_tokens::id, api_tokens::last_used_at, User::as_select()))
        .first(conn)
        .optional()?;
    let Some((id, last_used_at, user)) = found else {
        return Ok(None);
    };
    // Recorded at most once a minute, so API reads do not write on every request.
    if last_used_at.is_none_or(|used| (now - used).num_seconds() >= 60) {
        diesel::update(api_tokens::table.find(id))
            .set(api_tokens::last_used_at.eq(now))
            .execute(conn)?;
    }
    Ok(Some(user))
}
