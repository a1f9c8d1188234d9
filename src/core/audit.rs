//! The audit log: who did what in the private workspace, and why.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::audit_log;
use crate::db::AnyConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: i64,
    pub user_id: Option<i64>,
    pub petition_id: Option<i64>,
    pub action: String,
    pub details: String,
    pub created_at: NaiveDateTime,
}

pub fn record(
    conn: &mut AnyConnection,
    user_id: Option<i64>,
    petition_id: Option<i64>,
    action: &str,
    details: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::user_id.eq(user_id),
            audit_log::petition_id.eq(petition_id),
            audit_log::action.eq(action),
            audit_log::details.eq(details),
            audit_log::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The newest entries for one petition.
pub fn for_petition(
    conn: &mut AnyConnection,
    petition_id: i64,
    limit: i64,
) -> QueryResult<Vec<AuditEntry>> {
    audit_log::table
        .filter(audit_log::petition_id.eq(petition_id))
        .order(audit_log::id.desc())
        .limit(limit)
        .select(AuditEntry::as_select())
        .load(conn)
}
