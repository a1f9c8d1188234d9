//! The record of deliveries: `deliveries` (to whom, when, how many, the bundle's SHA-256, the
//! Merkle root and the signed manifest) and `delivery_leaves` (the tree's leaves in order, so
//! that inclusion proofs can be answered long after the hand-over, whatever happens to the
//! signatures later).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::core::hex::{parse_hash, to_hex, Hash};
use crate::db::schema::{deliveries, delivery_leaves, users};
use crate::db::AnyConnection;

/// Leaves written per INSERT statement.
const LEAVES_PER_STATEMENT: usize = 500;
/// Leaves read per SELECT statement.
const LEAVES_PER_BATCH: i64 = 10_000;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub struct DeliveryRow {
    pub id: i64,
    pub petition_id: i64,
    pub recipient: String,
    pub signature_count: i64,
    pub bundle_sha256: String,
    pub merkle_root: String,
    pub created_by: Option<i64>,
    pub created_at: NaiveDateTime,
}

pub struct NewDelivery<'a> {
    pub petition_id: i64,
    pub recipient: &'a str,
    pub signature_count: i64,
    pub bundle_sha256: &'a str,
    pub merkle_root: &'a str,
    pub manifest: &'a str,
    pub created_by: Option<i64>,
    pub created_at: NaiveDateTime,
}

/// Records a delivery and its leaves (inside the caller's transaction); returns its id.
pub fn insert(
    conn: &mut AnyConnection,
    delivery: &NewDelivery<'_>,
    leaves: &[Hash],
) -> QueryResult<i64> {
    let id: i64 = diesel::insert_into(deliveries::table)
        .values((
            deliveries::petition_id.eq(delivery.petition_id),
            deliveries::recipient.eq(delivery.recipient),
            deliveries::signature_count.eq(delivery.signature_count),
            deliveries::bundle_sha256.eq(delivery.bundle_sha256),
            deliveries::merkle_root.eq(delivery.merkle_root),
            deliveries::manifest.eq(delivery.manifest),
            deliveries::created_by.eq(delivery.created_by),
            deliveries::created_at.eq(delivery.created_at),
        ))
        .returning(deliveries::id)
        .get_result(conn)?;
    // Diesel cannot insert many rows at once on the connection enum, and one statement per
    // leaf would take minutes for a million signatures on PostgreSQL. The values are written
    // into the statement: integers and hex digits only, which need no escaping.
    for (chunk_index, chunk) in leaves.chunks(LEAVES_PER_STATEMENT).enumerate() {
        let first = chunk_index * LEAVES_PER_STATEMENT;
        let mut sql = String::with_capacity(60 + chunk.len() * 90);
        sql.push_str("INSERT INTO delivery_leaves (delivery_id, position, commitment) VALUES ");
        for (offset, leaf) in chunk.iter().enumerate() {
            if offset > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("({id},{},'{}')", first + offset, to_hex(leaf)));
        }
        diesel::sql_query(sql).execute(conn)?;
    }
    Ok(id)
}

/// Every delivery of a petition, newest first.
pub fn for_petition(conn: &mut AnyConnection, petition_id: i64) -> QueryResult<Vec<DeliveryRow>> {
    deliveries::table
        .filter(deliveries::petition_id.eq(petition_id))
        .order(deliveries::id.desc())
        .select(DeliveryRow::as_select())
        .load(conn)
}

/// Every delivery of a petition with the email of the account that made it (none when made
/// on the command line or when the account is gone), newest first.
pub fn for_petition_with_authors(
    conn: &mut AnyConnection,
    petition_id: i64,
) -> QueryResult<Vec<(DeliveryRow, Option<String>)>> {
    deliveries::table
        .left_join(users::table.on(deliveries::created_by.eq(users::id.nullable())))
        .filter(deliveries::petition_id.eq(petition_id))
        .order(deliveries::id.desc())
        .select((DeliveryRow::as_select(), users::email.nullable()))
        .load(conn)
}

pub fn latest(conn: &mut AnyConnection, petition_id: i64) -> QueryResult<Option<DeliveryRow>> {
    deliveries::table
        .filter(deliveries::petition_id.eq(petition_id))
        .order(deliveries::id.desc())
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()
}

/// The signed manifest of a delivery, exactly as in its bundle.
pub fn manifest(conn: &mut AnyConnection, delivery_id: i64) -> QueryResult<String> {
    deliveries::table
        .find(delivery_id)
        .select(deliveries::manifest)
        .first(conn)
}

/// Where `commitment` sits among a delivery's leaves, if it is one.
pub fn leaf_position(
    conn: &mut AnyConnection,
    delivery_id: i64,
    commitment: &Hash,
) -> QueryResult<Option<i64>> {
    delivery_leaves::table
        .filter(delivery_leaves::delivery_id.eq(delivery_id))
        .filter(delivery_leaves::commitment.eq(to_hex(commitment)))
        .order(delivery_leaves::position.asc())
        .select(delivery_leaves::position)
        .first(conn)
        .optional()
}

/// Every leaf of a delivery, in order.
pub fn leaves(conn: &mut AnyConnection, delivery_id: i64) -> QueryResult<Vec<Hash>> {
    let mut out = Vec::new();
    loop {
        let batch: Vec<(i64, String)> = delivery_leaves::table
            .filter(delivery_leaves::delivery_id.eq(delivery_id))
            .filter(delivery_leaves::position.ge(out.len() as i64))
            .order(delivery_leaves::position.asc())
            .limit(LEAVES_PER_BATCH)
            .select((delivery_leaves::position, delivery_leaves::commitment))
            .load(conn)?;
        let full = batch.len() as i64 == LEAVES_PER_BATCH;
        for (position, commitment) in batch {
            let leaf = parse_hash(&commitment)
                .filter(|_| position == out.len() as i64)
                .ok_or_else(|| {
                    diesel::result::Error::DeserializationError(
                        format!("delivery {delivery_id}: leaf {position} is missing or not a hash")
                            .into(),
                    )
                })?;
            out.push(leaf);
        }
        if !full {
            return Ok(out);
        }
    }
}
