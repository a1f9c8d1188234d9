//! Reading and writing petitions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{text_sha256, NewPetition, Petition, PetitionStatus, Target, Version};
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
    let result = write_transaction(conn, |conn| {
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
        diesel::insert_into(petition_versions::table)
            .values((
                petition_versions::petition_id.eq(petition_id),
                petition_versions::title.eq(&new.title),
                petition_versions::summary.eq(&new.summary),
                petition_versions::body.eq(&new.body),
                petition_versions::text_sha256.eq(text_sha256(&new.title, &new.summary, &new.body)),
                petition_versions::created_at.eq(now),
            ))
            .execute(conn)?;
        for (position, target) in new.targets.iter().enumerate() {
            diesel::insert_into(petition_targets::table)
                .values((
                    petition_targets::petition_id.eq(petition_id),
                    petition_targets::position.eq(position as i32),
                    petition_targets::name.eq(&target.name),
                    petition_targets::role.eq(&target.role),
                ))
                .execute(conn)?;
        }
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
    });
    result.map_err(|error| {
        if is_unique_violation(&error) {
            AppError::Conflict(format!(
                "A petition with the slug {:?} already exists.",
                new.slug
            ))
        } else {
            error.into()
        }
    })
}

pub fn slug_exists(conn: &mut AnyConnection, slug: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        petitions::table.filter(petitions::slug.eq(slug)),
    ))
    .get_result(conn)
}
