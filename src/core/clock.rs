//! The clock.

use chrono::NaiveDateTime;

/// The current time in UTC. Every timestamp is set from here, never by SQL defaults.
pub fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}
