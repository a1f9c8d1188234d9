//! A petition's life: draft → open → closed → delivered, who may move it where by hand, and
//! what its closing time becomes. Delivered is reached only by delivering (`delivery::bundle`).

use chrono::{NaiveDate, NaiveDateTime};

use super::model::{closes_at_after, last_open_day, Petition};
use crate::core::status::PetitionStatus;
use crate::error::AppError;

/// The statuses `petition` may move to now, by hand, for an admin or not, in the order their
/// buttons appear. An open petition past its closing date counts as closed.
pub fn allowed_transitions(
    petition: &Petition,
    is_admin: bool,
    now: NaiveDateTime,
) -> Vec<PetitionStatus> {
    match petition.status_at(now) {
        PetitionStatus::Draft => vec![PetitionStatus::Open],
        PetitionStatus::Open => vec![PetitionStatus::Closed],
        // Delivered is reached only by delivering (the Deliver form), which writes the signed
        // bundle and records the hand-over; a bare status change would claim a delivery that
        // nobody can verify.
        PetitionStatus::Closed if is_admin => vec![PetitionStatus::Open],
        PetitionStatus::Closed | PetitionStatus::Delivered => Vec::new(),
    }
}

/// Why someone (an admin or not) may not move a petition to `to` now, or `Ok` if they may.
pub fn check_transition(
    petition: &Petition,
    is_admin: bool,
    to: PetitionStatus,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let from = petition.status_at(now);
    if allowed_transitions(petition, is_admin, now).contains(&to) {
        return Ok(());
    }
    use PetitionStatus::*;
    let message = match (from, to) {
        (Closed, Open) => {
            return Err(AppError::Forbidden(
                "Only an administrator can reopen a closed petition.".to_owned(),
            ))
        }
        (from, to) if from == to => format!("This petition is already {}.", to.as_str()),
        (Delivered, _) => {
            "This petition was delivered: its status can no longer change.".to_owned()
        }
        (_, Draft) => "A petition that was opened cannot become a draft again.".to_owned(),
        (_, Delivered) => "A petition becomes delivered when it is handed over: use Deliver on \
                           its dashboard, which writes the signed bundle and records the delivery."
            .to_owned(),
        (Draft, _) => "A draft must be opened before it can be closed.".to_owned(),
        (from, to) => format!(
            "A petition that is {} cannot become {}.",
            from.as_str(),
            to.as_str()
        ),
    };
    Err(AppError::Conflict(message))
}

/// The petition's `closes_at` after moving from `from` to `to`. Closing by hand sets it to now
/// (if it was later or unset); opening a draft keeps it but refuses one that has passed;
/// reopening takes `closes_on` when given, otherwise clears a date that has passed.
pub fn closing_time_for(
    petition: &Petition,
    from: PetitionStatus,
    to: PetitionStatus,
    closes_on: Option<NaiveDate>,
    now: NaiveDateTime,
) -> Result<Option<NaiveDateTime>, AppError> {
    let current = petition.closes_at;
    if to != PetitionStatus::Open {
        if closes_on.is_some() {
            return Err(AppError::BadRequest(
                "A closing date can only be given when opening a petition.".to_owned(),
            ));
        }
        return Ok(match to {
            PetitionStatus::Closed => Some(current.map_or(now, |closes| closes.min(now))),
            _ => current,
        });
    }
    if let Some(day) = closes_on {
        if day < now.date() {
            return Err(AppError::BadRequest(
                "The new closing date is in the past: choose today or a later day.".to_owned(),
            ));
        }
        return Ok(closes_at_after(day));
    }
    match current {
        Some(closes) if closes <= now && from == PetitionStatus::Draft => {
            Err(AppError::Conflict(format!(
                "This draft's closing date ({}) has passed. Edit the petition to choose a new \
                 closing date, or none, then open it.",
                last_open_day(closes).format("%Y-%m-%d")
            )))
        }
        Some(closes) if closes <= now => Ok(None),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn petition(status: &str, closes_at: Option<NaiveDateTime>) -> Petition {
        let now = crate::core::clock::now();
        Petition {
            id: 1,
            slug: "free-them".into(),
            title: "Free them".into(),
            summary: String::new(),
            status: status.into(),
            goal: None,
            closes_at,
            signature_count: 0,
            created_at: now,
            updated_at: now,
        }
    }

    fn targets(p: &Petition, is_admin: bool) -> Vec<&'static str> {
        allowed_transitions(p, is_admin, crate::core::clock::now())
            .into_iter()
            .map(PetitionStatus::as_str)
            .collect()
    }

    #[test]
    fn transitions_follow_the_lifecycle() {
        let (organizer, admin) = (false, true);
        assert_eq!(targets(&petition("draft", None), organizer), ["open"]);
        assert_eq!(targets(&petition("open", None), organizer), ["closed"]);
        assert!(targets(&petition("closed", None), organizer).is_empty());
        assert_eq!(targets(&petition("closed", None), admin), ["open"]);
        assert!(targets(&petition("delivered", None), admin).is_empty());
        // Past its closing date an open petition is closed.
        let past = Some(crate::core::clock::now() - chrono::Duration::hours(1));
        assert!(targets(&petition("open", past), organizer).is_empty());
    }

    #[test]
    fn refusals_say_why() {
        let now = crate::core::clock::now();
        let check = |status: &str, to| check_transition(&petition(status, None), false, to, now);
        assert!(matches!(
            check("closed", PetitionStatus::Open),
            Err(AppError::Forbidden(_))
        ));
        assert!(matches!(
            check("open", PetitionStatus::Delivered),
            Err(AppError::Conflict(_))
        ));
        assert!(matches!(
            check("delivered", PetitionStatus::Closed),
            Err(AppError::Conflict(_))
        ));
        assert!(check("draft", PetitionStatus::Open).is_ok());
    }

    #[test]
    fn reopening_clears_a_closing_date_that_has_passed() {
        let now = crate::core::clock::now();
        let past = Some(now - chrono::Duration::days(1));
        let closed = petition("closed", past);
        let reopened = closing_time_for(
            &closed,
            PetitionStatus::Closed,
            PetitionStatus::Open,
            None,
            now,
        );
        assert_eq!(reopened.unwrap(), None);
        let day = now.date() + chrono::Duration::days(10);
        let reopened = closing_time_for(
            &closed,
            PetitionStatus::Closed,
            PetitionStatus::Open,
            Some(day),
            now,
        );
        assert_eq!(reopened.unwrap(), closes_at_after(day));
        // A draft whose date passed must be edited first.
        let draft = petition("draft", past);
        assert!(closing_time_for(
            &draft,
            PetitionStatus::Draft,
            PetitionStatus::Open,
            None,
            now
        )
        .is_err());
        // Closing by hand records when.
        let open = petition("open", Some(now + chrono::Duration::days(3)));
        let closed = closing_time_for(
            &open,
            PetitionStatus::Open,
            PetitionStatus::Closed,
            None,
            now,
        );
        assert_eq!(closed.unwrap(), Some(now));
    }
}
