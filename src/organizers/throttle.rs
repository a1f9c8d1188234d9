//! Sign-in throttling: after `MAX_FAILURES` failed sign-ins for an account or from one client
//! within `WINDOW_MINUTES`, further attempts for it are refused until the oldest of those
//! failures is older than the window. Failures live in the database so every instance sees
//! them; their subjects are keyed hashes, never an email or an address.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::login_failures;
use crate::db::AnyConnection;
use crate::secrets::Secrets;

pub const MAX_FAILURES: i64 = 5;
pub const WINDOW_MINUTES: i64 = 15;

/// The throttling subjects of one attempt: the account and the client.
pub fn subjects(secrets: &Secrets, account_email: &str, client: &str) -> [String; 2] {
    [
        format!(
            "account:{}",
            secrets.keyed_hash("login throttle", &account_email.trim().to_lowercase())
        ),
        format!("client:{}", secrets.keyed_hash("login throttle", client)),
    ]
}

pub fn is_throttled(
    conn: &mut AnyConnection,
    subjects: &[String],
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let since = now - chrono::Duration::minutes(WINDOW_MINUTES);
    for subject in subjects {
        let failures: i64 = login_failures::table
            .filter(login_failures::subject.eq(subject))
            .filter(login_failures::failed_at.gt(since))
            .count()
            .get_result(conn)?;
        if failures >= MAX_FAILURES {
            return Ok(true);
        }
    }
    Ok(false)
}

pub fn record_failure(
    conn: &mut AnyConnection,
    subjects: &[String],
    now: NaiveDateTime,
) -> QueryResult<()> {
    for subject in subjects {
        diesel::insert_into(login_failures::table)
            .values((
                login_failures::subject.eq(subject),
                login_failures::failed_at.eq(now),
            ))
            .execute(conn)?;
    }
    // Old failures no longer matter.
    let stale = now - chrono::Duration::days(1);
    diesel::delete(login_failures::table.filter(login_failures::failed_at.lt(stale)))
        .execute(conn)?;
    Ok(())
}

/// A successful sign-in clears the account's failures (not the client's).
pub fn clear_account(conn: &mut AnyConnection, account_subject: &str) -> QueryResult<()> {
    diesel::delete(login_failures::table.filter(login_failures::subject.eq(account_subject)))
        .execute(conn)?;
    Ok(())
}
