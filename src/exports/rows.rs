//! What an export holds and how it is produced: the filter, the rows (a petition's confirmed
//! signatures, read in batches by keyset pagination on the id so that memory stays bounded
//! whatever the petition's size) and their summary; `write` feeds them to the writer of the
//! chosen format.
//!
//! Each batch is its own short statement: no read transaction stays open for the length of a
//! download (on SQLite that would hold back WAL checkpoints for as long as a slow client takes).
//! An export is still a consistent picture of one moment: only signatures confirmed up to
//! `as_of` are read, by the summary and by the list alike, so a dossier's cover and its list
//! agree even while people keep confirming.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use diesel::dsl::{count_star, max, min};
use diesel::prelude::*;
use diesel::sql_types::Bool;

use crate::core::countries::COUNTRIES;
use crate::core::status::{Disclosure, SignatureStatus};
use crate::db::schema::{petition_versions, signatures};
use crate::db::{AnyConnection, MultiBackend};
use crate::safety::encryption::{DataKey, Field};

/// Rows fetched per statement: large enough that statement overhead disappears, small enough
/// that a batch is a few hundred kilobytes at most.
pub const BATCH_SIZE: i64 = 1_000;

/// Which confirmed signatures an export holds. Empty fields mean "all".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// ISO 3166-1 alpha-2 code.
    pub country: Option<String>,
    /// Confirmed on or after this day (UTC).
    pub from: Option<NaiveDate>,
    /// Confirmed on or before this day (UTC), inclusive.
    pub to: Option<NaiveDate>,
}

impl ExportFilter {
    /// Checks a filter as typed in a form or on the command line (empty means absent): a
    /// country code from the list, days as YYYY-MM-DD, `from` not after `to`. The error says
    /// which value is wrong and how to write it.
    pub fn parse(
        country: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Self, String> {
        fn present(value: Option<&str>) -> Option<&str> {
            value.map(str::trim).filter(|v| !v.is_empty())
        }
        let country = match present(country) {
            None => None,
            Some(raw) => {
                let code = raw.to_ascii_uppercase();
                let known = COUNTRIES.iter().any(|(known, _)| *known == code);
                if !known {
                    return Err(format!(
                        "{raw:?} is not a country code from the list, e.g. NO or BY."
                    ));
                }
                Some(code)
            }
        };
        let day = |field: &str, raw: Option<&str>| {
            present(raw)
                .map(|raw| {
                    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
                        format!("Write the \"{field}\" day as YYYY-MM-DD, e.g. 2026-11-28.")
                    })
                })
                .transpose()
        };
        let from = day("from", from)?;
        let to = day("to", to)?;
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                return Err("The \"from\" day comes after the \"to\" day.".to_owned());
            }
        }
        Ok(Self { country, from, to })
    }

    /// The filter in words, for the audit log: "all signatures" or e.g.
    /// "country NO, confirmed from 2026-11-01 to 2026-11-30".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(country) = &self.country {
            parts.push(format!("country {country}"));
        }
        match (self.from, self.to) {
            (Some(from), Some(to)) => parts.push(format!("confirmed from {from} to {to}")),
            (Some(from), None) => parts.push(format!("confirmed from {from}")),
            (None, Some(to)) => parts.push(format!("confirmed until {to}")),
            (None, None) => {}
        }
        if parts.is_empty() {
            "all signatures".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// What the dossier prints instead of the name of a count-only signature.
pub const NAME_WITHHELD: &str = "(name withheld at the signer's request)";

/// One confirmed signature as exported. A count-only signature (disclosure `count_only`) comes with
/// its name, email address, postal code and comment empty, whoever reads the rows: it keeps
/// its line (country, dates, version, commitment) so that counts and the Merkle root stay
/// verifiable, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    /// ISO 3166-1 alpha-2 code.
    pub country: String,
    pub postal_code: Option<String>,
    pub comment: Option<String>,
    /// `public`, `recipients` or `count_only`.
    pub disclosure: String,
    /// The SHA-256 of the petition text the signer saw.
    pub version_sha256: String,
    pub signed_at: NaiveDateTime,
    pub confirmed_at: NaiveDateTime,
    pub commitment: Option<String>,
}

type RawRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<String>,
);

/// A condition on `signatures`, boxed so that it can be assembled from the optional filters.
type Condition = Box<dyn BoxableExpression<signatures::table, MultiBackend, SqlType = Bool>>;

/// The confirmed signatures of a petition that match `filter` and were confirmed by `as_of`.
fn matching(petition_id: i64, filter: &ExportFilter, as_of: NaiveDateTime) -> Condition {
    // Confirmed signatures always have a confirmation time; `assume_not_null` only tells the
    // type checker so (a NULL would compare as unknown and be left out anyway).
    let confirmed_at = signatures::confirmed_at.assume_not_null();
    let mut condition: Condition = Box::new(
        signatures::petition_id
            .eq(petition_id)
            .and(signatures::status.eq(SignatureStatus::Confirmed.as_str()))
            .and(confirmed_at.le(as_of)),
    );
    if let Some(country) = &filter.country {
        condition = Box::new(condition.and(signatures::country.eq(country.clone())));
    }
    if let Some(from) = filter.from {
        condition = Box::new(condition.and(confirmed_at.ge(from.and_time(NaiveTime::MIN))));
    }
    // The last day is inclusive: everything before the start of the next one. There is no
    // next day only at the end of the calendar, where every confirmation is before it anyway.
    if let Some(next) = filter.to.and_then(|to| to.succ_opt()) {
        condition = Box::new(condition.and(confirmed_at.lt(next.and_time(NaiveTime::MIN))));
    }
    condition
}

/// Confirmed signatures (status 'confirmed' only) in id order, fetched in batches by keyset
/// pagination so memory stays bounded. Returns how many rows `f` was given.
pub fn for_each(
    conn: &mut AnyConnection,
    key: &DataKey,
    petition_id: i64,
    filter: &ExportFilter,
    f: impl FnMut(ExportRow) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    for_each_as_of(conn, key, petition_id, filter, crate::core::clock::now(), f)
}

/// [`for_each`] limited to signatures confirmed by `as_of`: pass the moment a [`summary`] was
/// taken so that the list matches it.
pub fn for_each_as_of(
    conn: &mut AnyConnection,
    key: &DataKey,
    petition_id: i64,
    filter: &ExportFilter,
    as_of: NaiveDateTime,
    mut f: impl FnMut(ExportRow) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    // A petition has a handful of versions: one small map instead of a join on every row.
    let versions: HashMap<i64, String> = petition_versions::table
        .filter(petition_versions::petition_id.eq(petition_id))
        .select((petition_versions::id, petition_versions::text_sha256))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let mut after = 0_i64;
    let mut done = 0_u64;
    loop {
        let batch: Vec<RawRow> = signatures::table
            .filter(matching(petition_id, filter, as_of))
            .filter(signatures::id.gt(after))
            .order(signatures::id.asc())
            .limit(BATCH_SIZE)
            .select((
                signatures::id,
                signatures::name,
                signatures::email,
                signatures::country,
                signatures::postal_code,
                signatures::comment,
                signatures::disclosure,
                signatures::version_id,
                signatures::created_at,
                signatures::confirmed_at,
                signatures::commitment,
            ))
            .load(conn)?;
        let full = batch.len() as i64 == BATCH_SIZE;
        for row in batch {
            let (
                id,
                name,
                email,
                country,
                postal_code,
                comment,
                disclosure,
                version_id,
                signed_at,
                confirmed_at,
                commitment,
            ) = row;
            after = id;
            let version_sha256 = versions.get(&version_id).cloned().ok_or_else(|| {
                anyhow::anyhow!("signature {id} points at version {version_id} of another petition")
            })?;
            let confirmed_at = confirmed_at.ok_or_else(|| {
                anyhow::anyhow!("confirmed signature {id} has no confirmation time")
            })?;
            // Count-only signers' fields are not even decrypted.
            let withheld = disclosure == Disclosure::CountOnly.as_str();
            let open = |field, value: Option<String>| -> anyhow::Result<Option<String>> {
                match value {
                    Some(value) if !withheld => Ok(Some(key.open(field, &value)?)),
                    _ => Ok(None),
                }
            };
            f(ExportRow {
                id,
                name: open(Field::Name, Some(name))?.unwrap_or_default(),
                email: open(Field::Email, Some(email))?.unwrap_or_default(),
                country,
                postal_code: open(Field::PostalCode, postal_code)?,
                comment: open(Field::Comment, comment)?,
                disclosure,
                version_sha256,
                signed_at,
                confirmed_at,
                commitment,
            })?;
            done += 1;
        }
        if !full {
            return Ok(done);
        }
    }
}

impl ExportRow {
    /// The name as the printed dossier shows it.
    pub fn dossier_name(&self) -> &str {
        if self.disclosure == Disclosure::CountOnly.as_str() {
            NAME_WITHHELD
        } else {
            &self.name
        }
    }
}

/// The figures of an export, taken before its rows are written: the dossier's cover and the
/// command line's progress bar need them first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub total: i64,
    /// Per country code, most first (ties by code).
    pub by_country: Vec<(String, i64)>,
    pub first_confirmed: Option<NaiveDateTime>,
    pub last_confirmed: Option<NaiveDateTime>,
}

/// Counts of the signatures [`for_each_as_of`] would give for the same arguments.
pub fn summary(
    conn: &mut AnyConnection,
    petition_id: i64,
    filter: &ExportFilter,
    as_of: NaiveDateTime,
) -> QueryResult<ExportSummary> {
    let mut by_country: Vec<(String, i64)> = signatures::table
        .filter(matching(petition_id, filter, as_of))
        .group_by(signatures::country)
        .select((signatures::country, count_star()))
        .load(conn)?;
    by_country.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let total = by_country.iter().map(|(_, n)| n).sum();
    let (first_confirmed, last_confirmed) = signatures::table
        .filter(matching(petition_id, filter, as_of))
        .select((min(signatures::confirmed_at), max(signatures::confirmed_at)))
        .first::<(Option<NaiveDateTime>, Option<NaiveDateTime>)>(conn)?;
    Ok(ExportSummary {
        total,
        by_country,
        first_confirmed,
        last_confirmed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_filters_and_says_what_is_wrong() {
        let filter =
            ExportFilter::parse(Some(" no "), Some("2026-11-01"), Some("2026-11-30")).unwrap();
        assert_eq!(filter.country.as_deref(), Some("NO"));
        assert_eq!(
            filter.describe(),
            "country NO, confirmed from 2026-11-01 to 2026-11-30"
        );
        assert_eq!(
            ExportFilter::parse(Some(""), None, Some(" ")).unwrap(),
            ExportFilter::default()
        );
        assert_eq!(ExportFilter::default().describe(), "all signatures");
        assert!(ExportFilter::parse(Some("XX"), None, None)
            .unwrap_err()
            .contains("country"));
        assert!(ExportFilter::parse(None, Some("28.11.2026"), None)
            .unwrap_err()
            .contains("\"from\""));
        assert!(ExportFilter::parse(None, None, Some("2026-02-30"))
            .unwrap_err()
            .contains("\"to\""));
        assert!(ExportFilter::parse(None, Some("2026-12-01"), Some("2026-11-30")).is_err());
    }
}
