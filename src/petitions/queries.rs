//! Reading and writing petitions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{
    text_sha256, NewPetition, NewTarget, Petition, Target, Version, VersionSummary,
};
use crate::core::audit;
use crate::core::status::PetitionStatus;
use crate::db::schema::{petition_organizers, petition_targets, petition_versions, petitions};
use crate::db::{is_unique_violation, write_transaction, AnyConnection};
use crate::error::AppError;

/// A petition the public may see (anything but a draft).
pub fn find_public(conn: &mut AnyConnection, slug: &str) -> QueryResult<Option<Petition>> {
    petitions::table
        .filter(petitions::slug.eq(slug))
        .filter(petitions::status.ne(PetitionStatus::Draft.as_str()))
        .select(Petition::as_select())
        .first(conn)
        .optional()
}

/// Every petition the public may see, newest first.
pub fn list_public(conn: &mut AnyConnection) -> QueryResult<Vec<Petition>> {
    petitions::table
        .filter(petitions::status.ne(PetitionStatus::Draft.as_str()))
        .order(petitions::id.desc())
        .select(Petition::as_select())
        .load(conn)
}

/// Every petition, for administrators.
pub fn list_all(conn: &mut AnyConnection) -> QueryResult<Vec<Petition>> {
    petitions::table
        .order(petitions::id.desc())
        .select(Petition::as_select())
        .load(conn)
}

pub fn targets(conn: &mut AnyConnection, petition_id: i64) -> QueryResult<Vec<Target>> {
    petition_targets::table
        .filter(petition_targets::petition_id.eq(petition_id))
        .order(petition_targets::position.asc())
        .select(Target::as_select())
        .load(conn)
}

/// The text signers see now: the newest version.
pub fn current_version(conn: &mut AnyConnection, petition_id: i64) -> QueryResult<Version> {
    petition_versions::table
        .filter(petition_versions::petition_id.eq(petition_id))
        .order(petition_versions::id.desc())
        .select(Version::as_select())
        .first(conn)
}

pub fn current_version_id(conn: &mut AnyConnection, petition_id: i64) -> QueryResult<i64> {
    petition_versions::table
        .filter(petition_versions::petition_id.eq(petition_id))
        .order(petition_versions::id.desc())
        .select(petition_versions::id)
        .first(conn)
}

/// Stores a petition with its first text version and its targets, all or nothing.
pub fn create(
    conn: &mut AnyConnection,
    new: &NewPetition,
    now: NaiveDateTime,
) -> Result<Petition, AppError> {
    write_transaction(conn, |conn| insert(conn, new, now)).map_err(|error| {
        if is_unique_violation(&error) {
            slug_taken(&new.slug)
        } else {
            error.into()
        }
    })
}

fn slug_taken(slug: &str) -> AppError {
    AppError::Conflict(format!("A petition with the slug {slug:?} already exists."))
}

/// Stores a petition with its first text version, its targets and its organizers, inside the
/// caller's transaction.
pub fn insert(
    conn: &mut AnyConnection,
    new: &NewPetition,
    now: NaiveDateTime,
) -> QueryResult<Petition> {
    let petition_id: i64 = diesel::insert_into(petitions::table)
        .values((
            petitions::slug.eq(&new.slug),
            petitions::title.eq(&new.title),
            petitions::summary.eq(&new.summary),
            petitions::status.eq(new.status.as_str()),
            petitions::goal.eq(new.goal),
            petitions::closes_at.eq(new.closes_at),
            petitions::signature_count.eq(0_i64),
            petitions::created_at.eq(now),
            petitions::updated_at.eq(now),
        ))
        .returning(petitions::id)
        .get_result(conn)?;
    add_version(conn, petition_id, &new.title, &new.summary, &new.body, now)?;
    insert_targets(conn, petition_id, &new.targets)?;
    for user_id in &new.organizer_ids {
        diesel::insert_into(petition_organizers::table)
            .values((
                petition_organizers::petition_id.eq(petition_id),
                petition_organizers::user_id.eq(user_id),
                petition_organizers::added_at.eq(now),
            ))
            .execute(conn)?;
    }
    petitions::table
        .find(petition_id)
        .select(Petition::as_select())
        .first(conn)
}

fn insert_targets(
    conn: &mut AnyConnection,
    petition_id: i64,
    targets: &[NewTarget],
) -> QueryResult<()> {
    for (position, target) in targets.iter().enumerate() {
        diesel::insert_into(petition_targets::table)
            .values((
                petition_targets::petition_id.eq(petition_id),
                petition_targets::position.eq(position as i32),
                petition_targets::name.eq(&target.name),
                petition_targets::role.eq(&target.role),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Replaces every target of a petition, keeping the given order.
pub fn replace_targets(
    conn: &mut AnyConnection,
    petition_id: i64,
    targets: &[NewTarget],
) -> QueryResult<()> {
    diesel::delete(petition_targets::table.filter(petition_targets::petition_id.eq(petition_id)))
        .execute(conn)?;
    insert_targets(conn, petition_id, targets)
}

/// Adds a text version, which becomes the current one. Returns its id.
pub fn add_version(
    conn: &mut AnyConnection,
    petition_id: i64,
    title: &str,
    summary: &str,
    body: &str,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    diesel::insert_into(petition_versions::table)
        .values((
            petition_versions::petition_id.eq(petition_id),
            petition_versions::title.eq(title),
            petition_versions::summary.eq(summary),
            petition_versions::body.eq(body),
            petition_versions::text_sha256.eq(text_sha256(title, summary, body)),
            petition_versions::created_at.eq(now),
        ))
        .returning(petition_versions::id)
        .get_result(conn)
}

/// Rewrites a version in place. Only for drafts: nobody can have seen or signed their text.
pub fn rewrite_version(
    conn: &mut AnyConnection,
    version_id: i64,
    title: &str,
    summary: &str,
    body: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(petition_versions::table.find(version_id))
        .set((
            petition_versions::title.eq(title),
            petition_versions::summary.eq(summary),
            petition_versions::body.eq(body),
            petition_versions::text_sha256.eq(text_sha256(title, summary, body)),
            petition_versions::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Every text version of a petition, newest first (without the texts).
pub fn version_history(
    conn: &mut AnyConnection,
    petition_id: i64,
) -> QueryResult<Vec<VersionSummary>> {
    petition_versions::table
        .filter(petition_versions::petition_id.eq(petition_id))
        .order(petition_versions::id.desc())
        .select(VersionSummary::as_select())
        .load(conn)
}

/// Changes what the petition row holds besides its status and count: the slug, the current
/// title and summary (copied from the newest version), the goal and the closing time.
pub fn update_details(
    conn: &mut AnyConnection,
    petition_id: i64,
    details: &NewPetition,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(petitions::table.find(petition_id))
        .set((
            petitions::slug.eq(&details.slug),
            petitions::title.eq(&details.title),
            petitions::summary.eq(&details.summary),
            petitions::goal.eq(details.goal),
            petitions::closes_at.eq(details.closes_at),
            petitions::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn set_status(
    conn: &mut AnyConnection,
    petition_id: i64,
    status: PetitionStatus,
    closes_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(petitions::table.find(petition_id))
        .set((
            petitions::status.eq(status.as_str()),
            petitions::closes_at.eq(closes_at),
            petitions::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Closes every open petition whose closing time has passed, recording each in the audit log
/// (with no user: nobody did it). Safe to run from several instances at once: a petition is
/// closed, and logged, by exactly one of them. Returns how many it closed.
pub fn close_expired(conn: &mut AnyConnection, now: NaiveDateTime) -> QueryResult<usize> {
    let expired = |conn: &mut AnyConnection| {
        petitions::table
            .filter(petitions::status.eq(PetitionStatus::Open.as_str()))
            .filter(petitions::closes_at.le(now))
            .select(petitions::id)
            .load::<i64>(conn)
    };
    // A read first, so that the usual case (nothing to close) takes no write lock.
    if expired(conn)?.is_empty() {
        return Ok(0);
    }
    write_transaction(conn, |conn| {
        let mut closed = 0;
        for petition_id in expired(conn)? {
            if close_if_expired(conn, petition_id, now)? {
                closed += 1;
            }
        }
        Ok(closed)
    })
}

/// Closes the petition if it is open and its closing time has passed, with an audit entry.
/// Returns whether it did. Runs inside the caller's transaction.
pub fn close_if_expired(
    conn: &mut AnyConnection,
    petition_id: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(
        petitions::table
            .find(petition_id)
            .filter(petitions::status.eq(PetitionStatus::Open.as_str()))
            .filter(petitions::closes_at.le(now)),
    )
    .set((
        petitions::status.eq(PetitionStatus::Closed.as_str()),
        petitions::updated_at.eq(now),
    ))
    .execute(conn)?;
    if changed == 0 {
        return Ok(false);
    }
    audit::record(
        conn,
        None,
        Some(petition_id),
        "petition.status",
        "open → closed (closing date reached)",
        now,
    )?;
    Ok(true)
}

pub fn slug_exists(conn: &mut AnyConnection, slug: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        petitions::table.filter(petitions::slug.eq(slug)),
    ))
    .get_result(conn)
}

/// An account that runs a petition, as listed on the petition's organizers page.
#[derive(Debug, Clone, Queryable)]
pub struct OrganizerRow {
    pub user_id: i64,
    pub email: String,
    pub added_at: NaiveDateTime,
}

/// The accounts that run a petition, by email.
pub fn organizers(conn: &mut AnyConnection, petition_id: i64) -> QueryResult<Vec<OrganizerRow>> {
    use crate::db::schema::users;
    petition_organizers::table
        .inner_join(users::table)
        .filter(petition_organizers::petition_id.eq(petition_id))
        .order(users::email.asc())
        .select((users::id, users::email, petition_organizers::added_at))
        .load(conn)
}
