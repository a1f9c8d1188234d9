//! Signing events that organizers vouch for: a network (one client address or a CIDR range)
//! and a time window per petition. At a meeting everyone signs through one router, so from
//! the sixth signer on the per-client rate limit would hold them all back.
//!
//! Within an event's window, signatures from its network are not held back by the per-client
//! limit, up to the event's `max_signatures` (raised, not lifted: a leaked or mistyped event
//! vouches for a bounded number of signatures, after which the per-client limit applies again
//! and the rest wait for review as before). Every other check still applies: honeypot, form
//! timing, disposable domains and the per-domain limit. Each vouched signature records its
//! event (`signatures.signing_event_id`), which is how the cap is counted. Like the rate
//! limits themselves, the count is exact per signature writer: on PostgreSQL with several
//! signing writers, batches committing at the same moment may together pass the cap by a few.
//!
//! Events are removed by marking them: they vouch for nothing more, and the list keeps what
//! they vouched for and who removed them.

use std::fmt;
use std::net::IpAddr;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::config::network::IpNetwork;
use crate::core::audit;
use crate::db::schema::{signatures, signing_events, users};
use crate::db::{write_transaction, AnyConnection};
use crate::error::FieldErrors;

/// The longest window: a meeting, a congress, a week of stalls.
pub const MAX_WINDOW_DAYS: i64 = 7;
/// How far ahead an event may start.
pub const MAX_DAYS_AHEAD: i64 = 366;
/// Vouched signatures per event when the organizer does not say.
pub const DEFAULT_MAX_SIGNATURES: i64 = 500;
pub const MAX_MAX_SIGNATURES: i64 = 10_000;
const MAX_LABEL_CHARS: usize = 100;
/// The widest networks: a meeting's network is far smaller, and a wider one would vouch for
/// a whole provider's customers.
const MIN_IPV4_PREFIX: u32 = 16;
const MIN_IPV6_PREFIX: u32 = 48;

/// The network of a signing event, checked: an IPv4 network of at most a /16, or an IPv6
/// network of at most a /48, written in its canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventNetwork(IpNetwork);

impl EventNetwork {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(
                "Enter the network people sign from: one address (203.0.113.7) or a range \
                 (203.0.113.0/24)."
                    .to_owned(),
            );
        }
        let network = IpNetwork::parse(text).map_err(|problem| {
            format!("{problem}. Enter one address (203.0.113.7) or a range (203.0.113.0/24).")
        })?;
        let minimum = match network.address() {
            IpAddr::V4(_) => MIN_IPV4_PREFIX,
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
                return Err(format!(
                "{text:?} is an IPv4 network written as IPv6: write it as IPv4 (203.0.113.0/24)."
            ))
            }
            IpAddr::V6(_) => MIN_IPV6_PREFIX,
        };
        if network.prefix() < minimum {
            return Err(format!(
                "{text:?} is too wide: a signing event's network is at most a /{MIN_IPV4_PREFIX} \
                 (IPv4) or a /{MIN_IPV6_PREFIX} (IPv6)."
            ));
        }
        Ok(Self(network))
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.contains(address)
    }
}

impl fmt::Display for EventNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// When an event vouches: from `starts_at` (inclusive) to `ends_at` (exclusive), UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventWindow {
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
}

impl EventWindow {
    /// A window that ends after it starts, lasts at most [`MAX_WINDOW_DAYS`], has not ended
    /// by `now` and starts within [`MAX_DAYS_AHEAD`].
    pub fn new(
        starts_at: NaiveDateTime,
        ends_at: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<Self, (&'static str, String)> {
        if ends_at <= starts_at {
            return Err(("ends_at", "The event must end after it starts.".to_owned()));
        }
        if ends_at - starts_at > chrono::Duration::days(MAX_WINDOW_DAYS) {
            return Err((
                "ends_at",
                format!("A signing event lasts at most {MAX_WINDOW_DAYS} days."),
            ));
        }
        if ends_at <= now {
            return Err((
                "ends_at",
                "This window has already ended: vouch only for events still to come or under way."
                    .to_owned(),
            ));
        }
        if starts_at > now + chrono::Duration::days(MAX_DAYS_AHEAD) {
            return Err(("starts_at", "Pick a start within the next year.".to_owned()));
        }
        Ok(Self { starts_at, ends_at })
    }

    pub fn starts_at(&self) -> NaiveDateTime {
        self.starts_at
    }

    pub fn ends_at(&self) -> NaiveDateTime {
        self.ends_at
    }
}

/// A time as a browser's `datetime-local` field sends it (`2026-12-03T18:30`, seconds
/// optional), or with a space instead of the `T`, read as UTC; or in RFC 3339 with its offset
/// (`2026-12-03T18:30:00Z`, as the API sends times).
pub fn parse_utc(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(at.naive_utc());
    }
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
}

/// The event form's fields as typed, to parse and to show again.
#[derive(Debug, Clone, Default)]
pub struct EventForm {
    pub label: String,
    pub network: String,
    pub starts_at: String,
    pub ends_at: String,
    pub max_signatures: String,
}

/// A signing event about to be stored: every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSigningEvent {
    pub label: String,
    pub network: EventNetwork,
    pub window: EventWindow,
    pub max_signatures: i64,
}

impl NewSigningEvent {
    /// Checks every field, collecting one message per field that is wrong.
    pub fn parse(form: &EventForm, now: NaiveDateTime) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut problem = |field: &'static str, message: String| {
            errors.entry(field).or_default().push(message);
        };
        let label = form.label.trim();
        if label.is_empty()
            || label.chars().count() > MAX_LABEL_CHARS
            || label.chars().any(char::is_control)
        {
            problem(
                "label",
                format!(
                    "Give the event a name of at most {MAX_LABEL_CHARS} characters, such as \
                     \"Coalition meeting, Oslo\"."
                ),
            );
        }
        let network = EventNetwork::parse(&form.network)
            .map_err(|message| problem("network", message))
            .ok();
        let time = |text: &str, what: &str| {
            parse_utc(text).ok_or_else(|| {
                format!("Enter when the event {what} as a date and time in UTC (2026-12-03 18:30).")
            })
        };
        let starts_at = time(&form.starts_at, "starts")
            .map_err(|message| problem("starts_at", message))
            .ok();
        let ends_at = time(&form.ends_at, "ends")
            .map_err(|message| problem("ends_at", message))
            .ok();
        let window = match (starts_at, ends_at) {
            (Some(starts_at), Some(ends_at)) => EventWindow::new(starts_at, ends_at, now)
                .map_err(|(field, message)| problem(field, message))
                .ok(),
            _ => None,
        };
        let max_signatures = match form.max_signatures.trim() {
            "" => Some(DEFAULT_MAX_SIGNATURES),
            typed => typed
                .replace([',', '_', ' '], "")
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_MAX_SIGNATURES).contains(n))
                .or_else(|| {
                    problem(
                        "max_signatures",
                        "Enter how many signatures to vouch for: a whole number from 1 to 10,000."
                            .to_owned(),
                    );
                    None
                }),
        };
        match (network, window, max_signatures) {
            (Some(network), Some(window), Some(max_signatures)) if errors.is_empty() => Ok(Self {
                label: label.to_owned(),
                network,
                window,
                max_signatures,
            }),
            _ => Err(errors),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = signing_events)]
pub struct SigningEvent {
    pub id: i64,
    pub petition_id: i64,
    pub label: String,
    pub network: String,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub max_signatures: i64,
    pub created_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub removed_by: Option<i64>,
    pub removed_at: Option<NaiveDateTime>,
}

/// An event as the events page lists it.
pub struct ListedEvent {
    pub event: SigningEvent,
    /// Signatures it let past the per-client limit.
    pub vouched: i64,
    pub created_by: Option<String>,
    pub removed_by: Option<String>,
}

fn describe(event: &NewSigningEvent) -> String {
    format!(
        "{}: {} from {} to {} UTC, up to {} signatures",
        event.label,
        event.network,
        event.window.starts_at().format("%Y-%m-%d %H:%M"),
        event.window.ends_at().format("%Y-%m-%d %H:%M"),
        event.max_signatures
    )
}

/// Stores an event for the petition, with its audit entry. Returns its id.
pub fn create(
    conn: &mut AnyConnection,
    petition_id: i64,
    user_id: i64,
    event: &NewSigningEvent,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    write_transaction(conn, |conn| {
        let id = diesel::insert_into(signing_events::table)
            .values((
                signing_events::petition_id.eq(petition_id),
                signing_events::label.eq(&event.label),
                signing_events::network.eq(event.network.to_string()),
                signing_events::starts_at.eq(event.window.starts_at()),
                signing_events::ends_at.eq(event.window.ends_at()),
                signing_events::max_signatures.eq(event.max_signatures),
                signing_events::created_by.eq(Some(user_id)),
                signing_events::created_at.eq(now),
            ))
            .returning(signing_events::id)
            .get_result(conn)?;
        audit::record(
            conn,
            Some(user_id),
            Some(petition_id),
            "signing_event.create",
            &format!("#{id} {}", describe(event)),
            now,
        )?;
        Ok(id)
    })
}

/// Removes one of the petition's events, with its audit entry. False when the petition has
/// no such event, or it was removed already.
pub fn remove(
    conn: &mut AnyConnection,
    petition_id: i64,
    event_id: i64,
    user_id: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    write_transaction(conn, |conn| {
        let removed = diesel::update(
            signing_events::table
                .filter(signing_events::id.eq(event_id))
                .filter(signing_events::petition_id.eq(petition_id))
                .filter(signing_events::removed_at.is_null()),
        )
        .set((
            signing_events::removed_by.eq(Some(user_id)),
            signing_events::removed_at.eq(Some(now)),
        ))
        .execute(conn)?;
        if removed == 0 {
            return Ok(false);
        }
        let (label, network): (String, String) = signing_events::table
            .find(event_id)
            .select((signing_events::label, signing_events::network))
            .first(conn)?;
        audit::record(
            conn,
            Some(user_id),
            Some(petition_id),
            "signing_event.remove",
            &format!("#{event_id} {label}: {network}"),
            now,
        )?;
        Ok(true)
    })
}

/// The petition's events, newest first, with what each vouched for and who made and removed
/// it.
pub fn list(conn: &mut AnyConnection, petition_id: i64) -> QueryResult<Vec<ListedEvent>> {
    let events: Vec<SigningEvent> = signing_events::table
        .filter(signing_events::petition_id.eq(petition_id))
        .order(signing_events::id.desc())
        .select(SigningEvent::as_select())
        .load(conn)?;
    let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
    let counts = vouched_counts(conn, &ids)?;
    let mut user_ids: Vec<i64> = events
        .iter()
        .flat_map(|event| [event.created_by, event.removed_by])
        .flatten()
        .collect();
    user_ids.sort_unstable();
    user_ids.dedup();
    let emails: std::collections::HashMap<i64, String> = users::table
        .filter(users::id.eq_any(&user_ids))
        .select((users::id, users::email))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    Ok(events
        .into_iter()
        .map(|event| ListedEvent {
            vouched: counts.get(&event.id).copied().unwrap_or(0),
            created_by: event.created_by.and_then(|id| emails.get(&id).cloned()),
            removed_by: event.removed_by.and_then(|id| emails.get(&id).cloned()),
            event,
        })
        .collect())
}

/// Signatures each of these events let past the per-client limit so far.
pub fn vouched_counts(
    conn: &mut AnyConnection,
    event_ids: &[i64],
) -> QueryResult<std::collections::HashMap<i64, i64>> {
    if event_ids.is_empty() {
        return Ok(Default::default());
    }
    let counts: Vec<(Option<i64>, i64)> = signatures::table
        .filter(signatures::signing_event_id.eq_any(event_ids))
        .group_by(signatures::signing_event_id)
        .select((signatures::signing_event_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(counts
        .into_iter()
        .filter_map(|(id, n)| Some((id?, n)))
        .collect())
}

/// An event vouching now, as the signature writer matches signings against it.
#[derive(Debug, Clone)]
pub struct ActiveEvent {
    pub id: i64,
    pub network: EventNetwork,
    pub max_signatures: i64,
}

/// The event a signing falls under, as the rate limits count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vouch {
    pub event_id: i64,
    pub max_signatures: i64,
}

/// The petition's events vouching at `now`, oldest first. One query; the signature writer
/// runs it once per batch for each petition the batch signs.
pub fn active(
    conn: &mut AnyConnection,
    petition_id: i64,
    now: NaiveDateTime,
) -> QueryResult<Vec<ActiveEvent>> {
    let rows: Vec<(i64, String, i64)> = signing_events::table
        .filter(signing_events::petition_id.eq(petition_id))
        .filter(signing_events::removed_at.is_null())
        .filter(signing_events::starts_at.le(now))
        .filter(signing_events::ends_at.gt(now))
        .order(signing_events::id.asc())
        .select((
            signing_events::id,
            signing_events::network,
            signing_events::max_signatures,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, network, max_signatures)| match EventNetwork::parse(&network) {
                Ok(network) => Some(ActiveEvent {
                    id,
                    network,
                    max_signatures,
                }),
                Err(problem) => {
                    log::warn!(
                        "signing event #{id} has a stored network that does not parse: {problem}"
                    );
                    None
                }
            },
        )
        .collect())
}

/// The events of `events` whose network holds the client address `client` (as
/// `http::client_ip` wrote it), oldest first: the rate limits use the first with room left.
pub fn vouching(events: &[ActiveEvent], client: &str) -> Vec<Vouch> {
    let Ok(address) = client.trim().parse::<IpAddr>() else {
        return Vec::new();
    };
    events
        .iter()
        .filter(|event| event.network.contains(address))
        .map(|event| Vouch {
            event_id: event.id,
            max_signatures: event.max_signatures,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        parse_utc(text).unwrap()
    }

    #[test]
    fn networks_are_checked_and_written_canonically() {
        let one = EventNetwork::parse(" 203.0.113.7 ").unwrap();
        assert_eq!(one.to_string(), "203.0.113.7");
        assert!(one.contains("203.0.113.7".parse().unwrap()));
        assert!(one.contains("::ffff:203.0.113.7".parse().unwrap()));
        assert!(!one.contains("203.0.113.8".parse().unwrap()));
        let range = EventNetwork::parse("203.0.113.0/24").unwrap();
        assert_eq!(range.to_string(), "203.0.113.0/24");
        assert!(range.contains("203.0.113.200".parse().unwrap()));
        assert!(!range.contains("203.0.114.1".parse().unwrap()));
        let v6 = EventNetwork::parse("2001:DB8:1::/64").unwrap();
        assert_eq!(v6.to_string(), "2001:db8:1::/64");
        assert!(v6.contains("2001:db8:1::42".parse().unwrap()));
        assert!(!v6.contains("203.0.113.7".parse().unwrap()));
        for bad in [
            "",
            "meeting wifi",
            "203.0.113.7/24",
            "203.0.113.0/33",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "2001:db8::/32",
            "::ffff:203.0.113.0/120",
            "203.0.113.0/",
        ] {
            assert!(EventNetwork::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn windows_end_after_they_start_within_a_week_and_not_in_the_past() {
        let now = at("2026-12-03T12:00");
        assert!(EventWindow::new(at("2026-12-03T11:00"), at("2026-12-03T20:00"), now).is_ok());
        assert!(EventWindow::new(at("2026-12-04T09:00"), at("2026-12-11T09:00"), now).is_ok());
        let field = |start, end| EventWindow::new(at(start), at(end), now).unwrap_err().0;
        assert_eq!(field("2026-12-03T20:00", "2026-12-03T19:00"), "ends_at");
        assert_eq!(field("2026-12-03T20:00", "2026-12-03T20:00"), "ends_at");
        assert_eq!(field("2026-12-04T09:00", "2026-12-11T09:01"), "ends_at");
        assert_eq!(field("2026-12-01T09:00", "2026-12-02T09:00"), "ends_at");
        assert_eq!(field("2028-01-01T09:00", "2028-01-02T09:00"), "starts_at");
    }

    #[test]
    fn the_form_reports_every_wrong_field() {
        let now = at("2026-12-03T12:00");
        let mut form = EventForm {
            label: "Coalition meeting, Oslo".to_owned(),
            network: "203.0.113.0/24".to_owned(),
            starts_at: "2026-12-03T11:30".to_owned(),
            ends_at: "2026-12-03 21:00".to_owned(),
            max_signatures: String::new(),
        };
        let event = NewSigningEvent::parse(&form, now).unwrap();
        assert_eq!(event.max_signatures, DEFAULT_MAX_SIGNATURES);
        assert_eq!(event.window.ends_at(), at("2026-12-03T21:00"));
        assert_eq!(
            parse_utc("2026-12-03T22:00:00+01:00"),
            Some(at("2026-12-03T21:00"))
        );
        form.max_signatures = "1,200".to_owned();
        assert_eq!(
            NewSigningEvent::parse(&form, now).unwrap().max_signatures,
            1200
        );
        let bad = EventForm {
            label: " ".to_owned(),
            network: "203.0.113.300".to_owned(),
            starts_at: "tomorrow".to_owned(),
            ends_at: "2026-12-03T21:00".to_owned(),
            max_signatures: "0".to_owned(),
        };
        let errors = NewSigningEvent::parse(&bad, now).unwrap_err();
        let fields: Vec<&str> = errors.keys().copied().collect();
        assert_eq!(
            fields,
            vec!["label", "max_signatures", "network", "starts_at"]
        );
    }

    #[test]
    fn signings_match_the_first_event_holding_their_address() {
        let events = vec![
            ActiveEvent {
                id: 1,
                network: EventNetwork::parse("198.51.100.0/24").unwrap(),
                max_signatures: 10,
            },
            ActiveEvent {
                id: 2,
                network: EventNetwork::parse("203.0.113.7").unwrap(),
                max_signatures: 20,
            },
        ];
        assert_eq!(
            vouching(&events, "203.0.113.7"),
            vec![Vouch {
                event_id: 2,
                max_signatures: 20
            }]
        );
        assert_eq!(vouching(&events, "198.51.100.9")[0].event_id, 1);
        assert_eq!(vouching(&events, "203.0.113.8"), vec![]);
        assert_eq!(vouching(&events, ""), vec![]);
    }
}
