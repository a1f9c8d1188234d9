//! Accounts of organizers and admins.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::core::email::EmailAddress;
use crate::db::schema::{user_sessions, users};
use crate::db::{is_unique_violation, write_transaction, AnyConnection};
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs the instance: every petition, and the accounts.
    Admin,
    /// Runs the petitions they belong to.
    Organizer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Organizer => "organizer",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "organizer" => Ok(Role::Organizer),
            other => Err(format!("unknown role {other:?}: use admin or organizer")),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl User {
    pub fn role(&self) -> Role {
        // The column has a CHECK constraint; anything unexpected gets the lesser role.
        Role::parse(&self.role).unwrap_or(Role::Organizer)
    }

    pub fn is_admin(&self) -> bool {
        self.role() == Role::Admin
    }
}

/// An account's email: a deliverable address, stored lowercased.
pub fn parse_account_email(raw: &str) -> Result<String, String> {
    EmailAddress::parse(raw)
        .map(|email| email.key().to_owned())
        .map_err(str::to_owned)
}

pub fn create(
    conn: &mut AnyConnection,
    email: &str,
    role: Role,
    password_hash: &str,
    now: NaiveDateTime,
) -> Result<User, AppError> {
    diesel::insert_into(users::table)
        .values((
            users::email.eq(email),
            users::role.eq(role.as_str()),
            users::password_hash.eq(password_hash),
            users::created_at.eq(now),
            users::updated_at.eq(now),
        ))
        .returning(users::id)
        .get_result::<i64>(conn)
        .and_then(|id| users::table.find(id).select(User::as_select()).first(conn))
        .map_err(|error| {
            if is_unique_violation(&error) {
                AppError::Conflict(format!("An account for {email} already exists."))
            } else {
                error.into()
            }
        })
}

pub fn find_by_email(conn: &mut AnyConnection, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(email.trim().to_lowercase()))
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn list(conn: &mut AnyConnection) -> QueryResult<Vec<User>> {
    users::table
        .order(users::email.asc())
        .select(User::as_select())
        .load(conn)
}

/// Replaces the password and ends every session of the account.
pub fn set_password_hash(
    conn: &mut AnyConnection,
    user_id: i64,
    password_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    write_transaction(conn, |conn| {
        diesel::update(users::table.find(user_id))
            .set((
                users::password_hash.eq(password_hash),
                users::updated_at.eq(now),
            ))
            .execute(conn)?;
        diesel::delete(user_sessions::table.filter(user_sessions::user_id.eq(user_id)))
            .execute(conn)?;
        Ok(())
    })
}
