//! The workspace's delivery routes (the published key and receipts are public:
//! `web::public::signing_key`, `web::public::receipts`):
//!
//! | route | what |
//! | --- | --- |
//! | `GET /admin/petitions/{slug}/deliveries` | the petition's deliveries and the deliver form |
//! | `POST /admin/petitions/{slug}/deliver` (`to`, `allow_empty`) | delivers: records it and answers with the bundle; with no confirmed signature only when `allow_empty=yes` |
//!
//! The bundle is written to a temporary file (a million signatures make a large zip), sent,
//! and deleted: bundles are the organizers' to keep, the instance keeps only the record and
//! the leaves.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use rand::Rng;

use crate::core::format::format_count;
use crate::core::hex::to_hex;
use crate::core::status::PetitionStatus;
use crate::db;
use crate::delivery::bundle::{self, Delivered, DeliveryRequest, Recipient};
use crate::delivery::record::{self, DeliveryRow};
use crate::delivery::signing_key::InstanceKey;
use crate::error::AppError;
use crate::petitions::Petition;
use crate::web::admin::workspace::Nav;
use crate::web::errors::render_page;
use crate::web::extract::{ManagedForm, ManagedPetition, SignedIn};
use crate::{core::clock::now, web::AppState};

/// Bytes read from the bundle file per chunk of the response.
const CHUNK: usize = 256 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(deliveries_page).service(deliver);
}

/// Reads (or, the first time, creates) the signing key, off the async executor.
pub async fn load_key(state: &AppState) -> Result<InstanceKey, AppError> {
    let path = state.signing_key_file.clone();
    web::block(move || InstanceKey::load_or_create(&path))
        .await?
        .map_err(AppError::Internal)
}

/// One past delivery as listed in the workspace.
pub struct DeliveryLine {
    pub recipient: String,
    pub when: String,
    pub count: String,
    pub bundle_sha256: String,
    pub merkle_root: String,
    pub by: String,
}

impl DeliveryLine {
    fn new(row: DeliveryRow, author: Option<String>) -> Self {
        Self {
            when: row.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            count: format_count(row.signature_count),
            by: author.unwrap_or_else(|| {
                if row.created_by.is_some() {
                    "an account since removed".to_owned()
                } else {
                    "the command line".to_owned()
                }
            }),
            recipient: row.recipient,
            bundle_sha256: row.bundle_sha256,
            merkle_root: row.merkle_root,
        }
    }
}

#[derive(Template)]
#[template(path = "delivery/deliveries.html")]
struct DeliveriesPage {
    nav: Nav,
    slug: String,
    title: String,
    status: &'static str,
    deliverable: bool,
    confirmed: String,
    deliveries: Vec<DeliveryLine>,
    /// The recipient as typed, when the form comes back with a problem.
    to: String,
    problem: Option<String>,
    /// No signature is confirmed: the form asks for an explicit confirmation.
    empty: bool,
    /// The confirmation was missing.
    empty_problem: Option<String>,
}

/// What the form says when a petition with no confirmed signature is sent without the box
/// ticked.
const EMPTY_NOT_CONFIRMED: &str = "No signature is confirmed yet: tick the box to deliver the \
     petition with none, or collect signatures first.";

/// The page for a petition the user runs (checked by the caller).
async fn deliveries_view(
    state: &AppState,
    signed_in: &SignedIn,
    petition: Petition,
    to: String,
    problem: Option<String>,
) -> Result<DeliveriesPage, AppError> {
    let nav = Nav::new(signed_in);
    db::run(&state.pool, move |conn| {
        let deliveries = record::for_petition_with_authors(conn, petition.id)?
            .into_iter()
            .map(|(row, author)| DeliveryLine::new(row, author))
            .collect();
        let status = petition.status_at(now());
        Ok(DeliveriesPage {
            nav,
            status: status.as_str(),
            deliverable: matches!(status, PetitionStatus::Open | PetitionStatus::Closed),
            confirmed: format_count(petition.signature_count),
            empty: petition.signature_count == 0,
            empty_problem: None,
            deliveries,
            to,
            problem,
            slug: petition.slug,
            title: petition.title,
        })
    })
    .await
}

#[get("/admin/petitions/{slug}/deliveries")]
async fn deliveries_page(
    state: web::Data<AppState>,
    managed: ManagedPetition,
) -> Result<HttpResponse, AppError> {
    let ManagedPetition {
        signed_in,
        petition,
    } = managed;
    let page = deliveries_view(&state, &signed_in, petition, String::new(), None).await?;
    render_page(StatusCode::OK, &page)
}

/// A bundle file that is deleted when dropped, whatever happened.
struct TempBundle {
    path: PathBuf,
}

impl TempBundle {
    fn create() -> Result<(Self, File), AppError> {
        let mut random = [0_u8; 16];
        rand::rng().fill_bytes(&mut random);
        let path = std::env::temp_dir().join(format!("undersign-bundle-{}.zip", to_hex(&random)));
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(|e| {
            AppError::Internal(anyhow::Error::new(e).context("cannot create a temporary file"))
        })?;
        Ok((Self { path }, file))
    }
}

impl Drop for TempBundle {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            if error.kind() != std::io::ErrorKind::NotFound {
                log::warn!(
                    "cannot remove the temporary bundle {}: {error}",
                    self.path.display()
                );
            }
        }
    }
}

#[post("/admin/petitions/{slug}/deliver")]
async fn deliver(
    state: web::Data<AppState>,
    posted: ManagedForm,
) -> Result<HttpResponse, AppError> {
    let ManagedForm {
        signed_in,
        petition,
        fields: form,
    } = posted;
    let typed = form.get("to").unwrap_or_default().to_owned();
    let allow_empty = form.get("allow_empty") == Some("yes");
    let recipient = match Recipient::parse(&typed) {
        Ok(recipient) => recipient,
        Err(problem) => {
            let page = deliveries_view(&state, &signed_in, petition, typed, Some(problem)).await?;
            return render_page(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let key = load_key(&state).await?;
    let user = signed_in.user.clone();
    let base_url = state.base_url.clone();
    let pool = state.pool.clone();
    let data_key = state.data_key.clone();
    let checked = petition.clone();
    let outcome = web::block(move || -> Result<_, AppError> {
        let petition = checked;
        let mut conn = pool.get()?;
        // Refused before any work when it cannot be delivered.
        bundle::check_deliverable(&petition, now())?;
        // A delivery ends the collection and cannot be redone: with nothing in it, only on
        // purpose.
        if petition.signature_count == 0 && !allow_empty {
            return Ok(None);
        }
        let (temp, mut file) = TempBundle::create()?;
        let delivered = bundle::deliver(
            &mut conn,
            &DeliveryRequest {
                petition_id: petition.id,
                recipient: &recipient,
                created_by: Some(user.id),
                base_url: &base_url,
                key: &key,
                data_key: &data_key,
            },
            &mut file,
        )?;
        Ok(Some((temp, delivered, file)))
    })
    .await??;
    let Some((temp, delivered, file)) = outcome else {
        let mut page = deliveries_view(&state, &signed_in, petition, typed, None).await?;
        page.empty_problem = Some(EMPTY_NOT_CONFIRMED.to_owned());
        return render_page(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    state.public_views.forget_all();
    send_bundle(temp, delivered, file)
}

/// The bundle as a download, read from its file chunk by chunk.
fn send_bundle(
    temp: TempBundle,
    delivered: Delivered,
    file: File,
) -> Result<HttpResponse, AppError> {
    let size = file
        .metadata()
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("cannot read the bundle")))?
        .len();
    let chunks = futures_util::stream::try_unfold((file, temp), |(mut file, temp)| async move {
        let (chunk, file) = web::block(move || {
            let mut buffer = vec![0_u8; CHUNK];
            let read = file.read(&mut buffer)?;
            buffer.truncate(read);
            Ok::<_, std::io::Error>((buffer, file))
        })
        .await
        .map_err(std::io::Error::other)??;
        if chunk.is_empty() {
            // Dropping `temp` here deletes the file once everything was sent.
            drop(temp);
            return Ok::<_, std::io::Error>(None);
        }
        Ok(Some((web::Bytes::from(chunk), (file, temp))))
    });
    let name = format!(
        "{}-delivery-{}.zip",
        delivered.slug,
        delivered.created_at.format("%Y-%m-%d")
    );
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/zip"))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("X-Bundle-SHA256", delivered.bundle_sha256.clone()))
        .body(actix_web::body::SizedStream::new(size, chunks)))
}
