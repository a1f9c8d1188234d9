//! Who may see which petition. Admins see every petition; organizers only those they belong
//! to. Anything else is "not found", never "forbidden", so nobody learns what exists.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::accounts::User;
use crate::db::schema::{petition_organizers, petitions};
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::petitions::Petition;

pub fn not_found() -> AppError {
    AppError::NotFound("There is no petition at this address.".to_owned())
}

/// The petition `slug` if `user` may run it.
pub fn petition_for(
    conn: &mut AnyConnection,
    user: &User,
    slug: &str,
) -> Result<Petition, AppError> {
    let petition = petitions::table
        .filter(petitions::slug.eq(slug))
        .select(Petition::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(not_found)?;
    if user.is_admin() || is_organizer(conn, petition.id, user.id)? {
        Ok(petition)
    } else {
        Err(not_found())
    }
}

/// Every petition `user` may run, newest first.
pub fn petitions_for(conn: &mut AnyConnection, user: &User) -> QueryResult<Vec<Petition>> {
    if user.is_admin() {
        return petitions::table
            .order(petitions::id.desc())
            .select(Petition::as_select())
            .load(conn);
    }
    petitions::table
        .inner_join(petition_organizers::table)
        .filter(petition_organizers::user_id.eq(user.id))
        .order(petitions::id.desc())
        .select(Petition::as_select())
        .load(conn)
}

pub fn is_organizer(conn: &mut AnyConnection, petition_id: i64, user_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        petition_organizers::table
            .filter(petition_organizers::petition_id.eq(petition_id))
            .filter(petition_organizers::user_id.eq(user_id)),
    ))
    .get_result(conn)
}

/// Makes `user_id` an organizer of the petition; adding twice is harmless.
pub fn add_organizer(
    conn: &mut AnyConnection,
    petition_id: i64,
    user_id: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if is_organizer(conn, petition_id, user_id)? {
        return Ok(());
    }
    diesel::insert_into(petition_organizers::table)
        .values((
            petition_organizers::petition_id.eq(petition_id),
            petition_organizers::user_id.eq(user_id),
            petition_organizers::added_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn remove_organizer(
    conn: &mut AnyConnection,
    petition_id: i64,
    user_id: i64,
) -> QueryResult<usize> {
    diesel::delete(
        petition_organizers::table
            .filter(petition_organizers::petition_id.eq(petition_id))
            .filter(petition_organizers::user_id.eq(user_id)),
    )
    .execute(conn)
}

/// The organizers' emails of a petition.
pub fn organizer_emails(conn: &mut AnyConnection, petition_id: i64) -> QueryResult<Vec<String>> {
    use crate::db::schema::users;
    petition_organizers::table
        .inner_join(users::table)
        .filter(petition_organizers::petition_id.eq(petition_id))
        .order(users::email.asc())
        .select(users::email)
        .load(conn)
}
