//! Sign-in throttling that holds back the guesser, not the account's owner.
//!
//! Failures are counted three ways, each under a keyed hash (never an email or an address):
//!
//! - per account and client: the first [`PAIR_FREE_FAILURES`] cost nothing; after the n-th
//!   the client waits 2^(n − 5) minutes (1, 2, 4 … at most [`MAX_DELAY_MINUTES`]) from its
//!   last failure before it may try that account again;
//! - per client, over all accounts: the same growing delays after [`CLIENT_FREE_FAILURES`];
//! - per account, over all clients: after [`ACCOUNT_CEILING`] failures within an hour, the
//!   account takes at most one attempt every [`ACCOUNT_SLOW_SECONDS`] from clients it has
//!   not seen sign in. This slows a guesser spread over many addresses without locking
//!   anyone out; the owner's browser, which holds a device cookie from an earlier sign-in,
//!   is not slowed at all.
//!
//! So a stranger's failures throttle only the stranger: a client that has not failed, with
//! the right password, signs in. A refused attempt checks no password and counts as nothing.
//! Failures live in the database so every instance sees them, and are forgotten after a day.

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, max};
use diesel::prelude::*;

use crate::db::schema::login_failures;
use crate::db::AnyConnection;
use crate::secrets::Secrets;

pub const PAIR_FREE_FAILURES: i64 = 5;
pub const CLIENT_FREE_FAILURES: i64 = 20;
pub const MAX_DELAY_MINUTES: i64 = 60;
pub const ACCOUNT_CEILING: i64 = 50;
pub const ACCOUNT_WINDOW_MINUTES: i64 = 60;
pub const ACCOUNT_SLOW_SECONDS: i64 = 10;
/// Failures older than this no longer count anywhere, and are deleted.
pub const FORGET_AFTER_HOURS: i64 = 24;

/// The throttling subjects of one attempt.
#[derive(Debug, Clone)]
pub struct Subjects {
    pub pair: String,
    pub client: String,
    pub account: String,
}

impl Subjects {
    pub fn new(secrets: &Secrets, account_email: &str, client: &str) -> Self {
        let account = account_email.trim().to_lowercase();
        let hash = |value: &str| secrets.keyed_hash("login throttle", value);
        Self {
            // The newline cannot occur in an email address or a client address.
            pair: format!("pair:{}", hash(&format!("{account}\n{client}"))),
            client: format!("client:{}", hash(client)),
            account: format!("account:{}", hash(&account)),
        }
    }
}

/// How many failures a subject has had since `since`, and when the last one was.
fn failures_since(
    conn: &mut AnyConnection,
    subject: &str,
    since: NaiveDateTime,
) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    login_failures::table
        .filter(login_failures::subject.eq(subject))
        .filter(login_failures::failed_at.gt(since))
        .select((count_star(), max(login_failures::failed_at)))
        .first(conn)
}

/// The wait after `failures` failures when the first `free` cost nothing.
fn growing_delay(failures: i64, free: i64) -> chrono::Duration {
    if failures < free {
        return chrono::Duration::zero();
    }
    let doublings = (failures - free).min(6) as u32;
    chrono::Duration::minutes((1_i64 << doublings).min(MAX_DELAY_MINUTES))
}

/// How long this attempt must wait, `None` when it may go ahead. `known_device`: the client
/// showed a device cookie of this account from an earlier sign-in.
pub fn wait_before(
    conn: &mut AnyConnection,
    subjects: &Subjects,
    known_device: bool,
    now: NaiveDateTime,
) -> QueryResult<Option<chrono::Duration>> {
    let since = now - chrono::Duration::hours(FORGET_AFTER_HOURS);
    let mut wait = chrono::Duration::zero();
    for (subject, free) in [
        (&subjects.pair, PAIR_FREE_FAILURES),
        (&subjects.client, CLIENT_FREE_FAILURES),
    ] {
        if let (failures, Some(last)) = failures_since(conn, subject, since)? {
            wait = wait.max(last + growing_delay(failures, free) - now);
        }
    }
    if !known_device {
        let since = now - chrono::Duration::minutes(ACCOUNT_WINDOW_MINUTES);
        if let (failures, Some(last)) = failures_since(conn, &subjects.account, since)? {
            if failures >= ACCOUNT_CEILING {
                wait = wait.max(last + chrono::Duration::seconds(ACCOUNT_SLOW_SECONDS) - now);
            }
        }
    }
    Ok((wait > chrono::Duration::zero()).then_some(wait))
}

pub fn record_failure(
    conn: &mut AnyConnection,
    subjects: &Subjects,
    now: NaiveDateTime,
) -> QueryResult<()> {
    for subject in [&subjects.pair, &subjects.client, &subjects.account] {
        diesel::insert_into(login_failures::table)
            .values((
                login_failures::subject.eq(subject),
                login_failures::failed_at.eq(now),
            ))
            .execute(conn)?;
    }
    let stale = now - chrono::Duration::hours(FORGET_AFTER_HOURS);
    diesel::delete(login_failures::table.filter(login_failures::failed_at.lt(stale)))
        .execute(conn)?;
    Ok(())
}

/// A successful sign-in clears this client's failures for the account. Not the client's
/// other failures, nor the account's from elsewhere: an attacker who signs in to an account
/// of their own must not reset what their guessing at others has cost them.
pub fn clear_pair(conn: &mut AnyConnection, subjects: &Subjects) -> QueryResult<()> {
    diesel::delete(login_failures::table.filter(login_failures::subject.eq(&subjects.pair)))
        .execute(conn)?;
    Ok(())
}

/// A wait in whole seconds, rounded up (a wait of 59.4 s is 60 s, never 59), at least 1.
pub fn whole_seconds(wait: chrono::Duration) -> i64 {
    ((wait.num_milliseconds() + 999) / 1000).max(1)
}

/// "3 minutes", "10 seconds": a wait in words, rounded up.
pub fn in_words(wait: chrono::Duration) -> String {
    let seconds = whole_seconds(wait);
    if seconds == 1 {
        "1 second".to_owned()
    } else if seconds <= 90 {
        format!("{seconds} seconds")
    } else {
        format!("{} minutes", (seconds + 59) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_after_the_free_failures_and_stop_at_the_cap() {
        let minutes = |n| growing_delay(n, PAIR_FREE_FAILURES).num_minutes();
        assert_eq!(minutes(4), 0);
        assert_eq!(minutes(5), 1);
        assert_eq!(minutes(6), 2);
        assert_eq!(minutes(9), 16);
        assert_eq!(minutes(11), MAX_DELAY_MINUTES);
        assert_eq!(minutes(1000), MAX_DELAY_MINUTES);
    }

    #[test]
    fn waits_read_as_words() {
        assert_eq!(in_words(chrono::Duration::milliseconds(300)), "1 second");
        assert_eq!(in_words(chrono::Duration::seconds(10)), "10 seconds");
        assert_eq!(
            in_words(chrono::Duration::milliseconds(59_400)),
            "60 seconds"
        );
        assert_eq!(in_words(chrono::Duration::seconds(91)), "2 minutes");
    }
}
