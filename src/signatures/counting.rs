//! The counting rule: a petition's `signature_count` is the number of its confirmed
//! signatures. Every change of a signature's status moves it by [`count_change`], through
//! [`adjust_count`], in the transaction that changes the status: confirming, moderating (one
//! by one or in bulk) and withdrawing all go through here.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::core::status::{PetitionStatus, SignatureStatus};
use crate::db::schema::petitions;
use crate::db::{AnyConnection, KeepPrepared};

/// Whether a signature with this status counts towards its petition.
pub fn counts(status: SignatureStatus) -> bool {
    status == SignatureStatus::Confirmed
}

/// How far a signature going from `from` to `to` moves its petition's count: +1, -1 or 0.
pub fn count_change(from: SignatureStatus, to: SignatureStatus) -> i64 {
    i64::from(counts(to)) - i64::from(counts(from))
}

/// How far `rows` signatures that one statement moved from any of `from` to `to` move the
/// count. The statement cannot tell which status each row had, so all of `from` must move it
/// alike.
pub fn count_change_of_rows(from: &[SignatureStatus], to: SignatureStatus, rows: usize) -> i64 {
    let change = from.first().map_or(0, |first| count_change(*first, to));
    debug_assert!(
        from.iter()
            .all(|status| count_change(*status, to) == change),
        "one statement changes statuses that count differently"
    );
    change * rows as i64
}

/// Which petitions' counters [`adjust_count`] may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Any petition's: organizers moderate and signers withdraw in every state.
    Any,
    /// Only an open petition's: a confirmation counts only while it accepts signatures.
    WhileOpen,
}

/// Adds `delta` to the petition's counter in one statement and returns the new count (a zero
/// `delta` only reads it). With [`Counter::WhileOpen`] a petition that is not open fails with
/// `RollbackTransaction`, so that nothing of the change it belongs to is kept.
pub fn adjust_count(
    conn: &mut AnyConnection,
    petition_id: i64,
    delta: i64,
    now: NaiveDateTime,
    counter: Counter,
) -> QueryResult<i64> {
    let open = PetitionStatus::Open.as_str();
    let set = (
        petitions::signature_count.eq(petitions::signature_count + delta),
        petitions::updated_at.eq(now),
    );
    let count = match (counter, delta) {
        (Counter::Any, 0) => petitions::table
            .find(petition_id)
            .select(petitions::signature_count)
            .first(conn)
            .map(Some)?,
        (Counter::WhileOpen, 0) => petitions::table
            .find(petition_id)
            .filter(petitions::status.eq(open))
            .select(petitions::signature_count)
            .first(conn)
            .optional()?,
        (Counter::Any, _) => KeepPrepared(
            diesel::update(petitions::table.find(petition_id))
                .set(set)
                .returning(petitions::signature_count),
        )
        .get_result(conn)
        .map(Some)?,
        (Counter::WhileOpen, _) => KeepPrepared(
            diesel::update(
                petitions::table
                    .find(petition_id)
                    .filter(petitions::status.eq(open)),
            )
            .set(set)
            .returning(petitions::signature_count),
        )
        .get_result(conn)
        .optional()?,
    };
    count.ok_or(diesel::result::Error::RollbackTransaction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_becoming_or_ceasing_to_be_confirmed_moves_the_count() {
        for from in SignatureStatus::ALL {
            for to in SignatureStatus::ALL {
                let expected = match (from, to) {
                    (SignatureStatus::Confirmed, SignatureStatus::Confirmed) => 0,
                    (_, SignatureStatus::Confirmed) => 1,
                    (SignatureStatus::Confirmed, _) => -1,
                    _ => 0,
                };
                assert_eq!(count_change(from, to), expected, "{from} → {to}");
            }
        }
    }

    #[test]
    fn rows_of_one_statement_move_the_count_together() {
        let waiting = [SignatureStatus::Pending, SignatureStatus::Suspect];
        assert_eq!(
            count_change_of_rows(&waiting, SignatureStatus::Invalidated, 7),
            0
        );
        assert_eq!(
            count_change_of_rows(&[SignatureStatus::Confirmed], SignatureStatus::Withdrawn, 3),
            -3
        );
    }
}
