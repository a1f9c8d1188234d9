//! `GET /p/{slug}/receipt`: a signer pastes the receipt from their confirmation page or email
//! and learns whether it is in the petition's latest delivered bundle, with the Merkle
//! inclusion proof (`&format=json` for the proof as a file `undersign verify --proof` reads).
//!
//! Found: 200. Not found, or nothing delivered yet: 404 with a plain explanation (the form is
//! shown again). Not a receipt at all: 400. The answer concerns the one receipt asked about;
//! the proof holds only hashes, so it says nothing about any other signer.

use std::sync::{Arc, Mutex};

use actix_web::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION};
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::core::format::rfc3339;
use crate::core::hex::{parse_hash, to_hex, Hash};
use crate::db::{self, AnyConnection};
use crate::delivery::merkle::MerkleTree;
use crate::delivery::record::{self, DeliveryRow};
use crate::delivery::verify::{ProofDelivery, ProofFile, PROOF_RULES};
use crate::error::AppError;
use crate::petitions::queries as petition_queries;
use crate::web::errors::{render_page, ApiError};
use crate::web::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(receipt_page);
}

#[derive(Debug, Deserialize)]
struct ReceiptQuery {
    receipt: Option<String>,
    format: Option<String>,
}

/// The answer to one receipt.
enum Answer {
    NotDelivered,
    NotFound(DeliveryRow),
    Found(Box<ProofFile>),
}

#[derive(Template)]
#[template(path = "delivery/receipt.html")]
struct ReceiptPage {
    slug: String,
    title: String,
    /// What was typed, shown again in the form.
    receipt: String,
    /// A problem with what was typed, or the answer when it is "no".
    message: Option<String>,
    proof: Option<ProofFile>,
    delivered_on: String,
    json_url: String,
}

/// Trees of deliveries, kept so that a busy receipt page does not reread every leaf per
/// request: deliveries never change. One tree (the last one asked about) is kept, keyed by
/// its root, which names its leaves.
static TREE: Mutex<Option<(Hash, Arc<MerkleTree>)>> = Mutex::new(None);

fn tree_for(conn: &mut AnyConnection, delivery: &DeliveryRow) -> Result<Arc<MerkleTree>, AppError> {
    let root = parse_hash(&delivery.merkle_root).ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!(
            "delivery {} has no valid Merkle root",
            delivery.id
        ))
    })?;
    if let Some((cached_root, tree)) = TREE.lock().ok().and_then(|cache| cache.clone()) {
        if cached_root == root {
            return Ok(tree);
        }
    }
    let tree = Arc::new(MerkleTree::new(&record::leaves(conn, delivery.id)?));
    if tree.root() != root {
        return Err(AppError::Internal(anyhow::anyhow!(
            "the stored leaves of delivery {} do not give its recorded root",
            delivery.id
        )));
    }
    if let Ok(mut cache) = TREE.lock() {
        *cache = Some((root, tree.clone()));
    }
    Ok(tree)
}

fn answer(
    conn: &mut AnyConnection,
    slug: &str,
    petition_id: i64,
    receipt: &Hash,
) -> Result<Answer, AppError> {
    let Some(delivery) = record::latest(conn, petition_id)? else {
        return Ok(Answer::NotDelivered);
    };
    let Some(position) = record::leaf_position(conn, delivery.id, receipt)? else {
        return Ok(Answer::NotFound(delivery));
    };
    let tree = tree_for(conn, &delivery)?;
    let proof = usize::try_from(position)
        .ok()
        .and_then(|position| tree.prove(position))
        .ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "leaf {position} of delivery {} is outside its tree",
                delivery.id
            ))
        })?;
    Ok(Answer::Found(Box::new(ProofFile {
        petition: slug.to_owned(),
        receipt: to_hex(receipt),
        leaf_index: proof.leaf_index,
        tree_size: proof.tree_size,
        path: proof.path.iter().map(|hash| to_hex(hash)).collect(),
        root: delivery.merkle_root.clone(),
        delivery: ProofDelivery {
            recipient: delivery.recipient.clone(),
            delivered_at: rfc3339(delivery.created_at),
            signature_count: delivery.signature_count,
            bundle_sha256: delivery.bundle_sha256.clone(),
        },
        rules: PROOF_RULES.to_owned(),
    })))
}

fn delivered_on(delivery: &DeliveryRow) -> String {
    delivery.created_at.format("%-d %B %Y").to_string()
}

#[get("/p/{slug}/receipt")]
async fn receipt_page(
    state: web::Data<AppState>,
    slug: web::Path<String>,
    query: Result<web::Query<ReceiptQuery>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    let Ok(web::Query(query)) = query else {
        return Err(AppError::BadRequest("The address has a malformed query.".to_owned()).into());
    };
    let json = match query.format.as_deref().map(str::trim) {
        None | Some("") | Some("html") => false,
        Some("json") => true,
        Some(_) => {
            return Err(AppError::BadRequest("The format is html or json.".to_owned()).into())
        }
    };
    respond(&state, slug.into_inner(), query.receipt, json)
        .await
        .map_err(|error| {
            // The JSON form answers errors in JSON, like the API.
            if json {
                ApiError(error).into()
            } else {
                error.into()
            }
        })
}

const INVALID: &str = "A receipt is 64 characters, the digits 0–9 and letters a–f, as shown on \
                       your confirmation page and in your receipt email.";

async fn respond(
    state: &AppState,
    slug: String,
    typed: Option<String>,
    json: bool,
) -> Result<HttpResponse, AppError> {
    let typed = typed.unwrap_or_default().trim().to_owned();
    let receipt = match (typed.is_empty(), parse_hash(&typed)) {
        (true, _) if json => {
            return Err(AppError::BadRequest(
                "Give the receipt to look up: ?receipt=….".to_owned(),
            ))
        }
        (true, _) => None,
        (false, None) if json => return Err(AppError::BadRequest(INVALID.to_owned())),
        (false, parsed) => Some(parsed),
    };
    let lookup_slug = slug.clone();
    let (title, found) = db::run(&state.pool, move |conn| {
        let petition = petition_queries::find_public(conn, &lookup_slug)?
            .ok_or_else(crate::petitions::not_found)?;
        let found = match receipt {
            Some(Some(receipt)) => Some(answer(conn, &petition.slug, petition.id, &receipt)?),
            _ => None,
        };
        Ok((petition.title, found))
    })
    .await?;

    let (status, message, proof) = match (receipt, found) {
        (None, _) => (StatusCode::OK, None, None),
        (Some(None), _) => (StatusCode::BAD_REQUEST, Some(INVALID.to_owned()), None),
        (Some(Some(_)), Some(Answer::Found(proof))) => (StatusCode::OK, None, Some(*proof)),
        (Some(Some(_)), Some(Answer::NotFound(delivery))) => (
            StatusCode::NOT_FOUND,
            Some(format!(
                "This receipt is not in the bundle delivered to {} on {}. Check that you \
                 copied it completely. A signature confirmed after the delivery, or removed by \
                 the organizers, is not in it.",
                delivery.recipient,
                delivered_on(&delivery)
            )),
            None,
        ),
        (Some(Some(_)), Some(Answer::NotDelivered) | None) => (
            StatusCode::NOT_FOUND,
            Some(
                "No bundle of this petition has been delivered yet, so there is nothing to look in. \
                 Keep your receipt and come back after the delivery."
                    .to_owned(),
            ),
            None,
        ),
    };
    if json {
        return match proof {
            Some(proof) => Ok(no_store(
                HttpResponse::Ok()
                    .insert_header((
                        CONTENT_DISPOSITION,
                        format!("attachment; filename=\"receipt-proof-{slug}.json\""),
                    ))
                    .json(proof),
            )),
            None => Err(AppError::NotFound(message.unwrap_or_default())),
        };
    }
    let delivered_on = proof
        .as_ref()
        .and_then(|proof| chrono::DateTime::parse_from_rfc3339(&proof.delivery.delivered_at).ok())
        .map(|time| time.format("%-d %B %Y").to_string())
        .unwrap_or_default();
    let page = ReceiptPage {
        json_url: format!(
            "/p/{slug}/receipt?receipt={}&format=json",
            typed.to_ascii_lowercase()
        ),
        slug,
        title,
        receipt: typed,
        message,
        proof,
        delivered_on,
    };
    render_page(status, &page).map(no_store)
}

/// Receipts are personal: no shared cache keeps the answer.
fn no_store(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    response
}
