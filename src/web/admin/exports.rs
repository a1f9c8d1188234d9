//! `POST /admin/petitions/{slug}/export` with the form fields
//! `csrf_token`, `format=csv|ndjson|pdf`, `country`, `from`, `to`, `email=1`, `bom=1`:
//! a download of the petition's confirmed signatures, for its organizers and admins.
//!
//! An export writes an audit entry and hands out personal data, so it is a POST carrying the
//! session's CSRF token: a link or an image on another site cannot start one. A `GET` of the
//! same address exports nothing and writes nothing (405, pointing at the form).
//!
//! The response is streamed: one blocking task reads the rows batch by batch and writes them
//! through `ChannelWriter` into a bounded channel whose receiving end is the response body.
//! When the client reads slowly the task waits, and when it goes away the task stops, so a
//! download holds a few hundred kilobytes whatever the petition's size.
//!
//! Everything that can be refused (sign-in, the right to the petition, the parameters) is
//! decided before the first byte: the task reports back through a oneshot channel, and only
//! then does the response start. A failure later can only cut the stream short, which clients
//! see as an incomplete download rather than a complete-looking file.

use std::io::{self, Write};

use actix_web::http::header::{ALLOW, CACHE_CONTROL, CONTENT_DISPOSITION};
use actix_web::web::Bytes;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use tokio::sync::{mpsc, oneshot};

use crate::core::audit;
use crate::core::form::FormFields;
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::exports::rows::ExportFilter;
use crate::exports::write::{write_export, ExportFormat, ExportSpec};
use crate::organizers::accounts::User;
use crate::petitions::Petition;
use crate::web::extract::ManagedForm;
use crate::{core::clock::now, web::AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(export).service(export_by_get);
}

/// Bytes gathered before a chunk is handed to the response.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks waiting in the channel at most: with [`CHUNK_BYTES`], half a megabyte in flight.
const CHANNEL_CHUNKS: usize = 8;

type Chunk = Result<Bytes, io::Error>;

/// A `Write` whose bytes become the chunks of a streamed response body. Writing blocks while
/// the channel is full; it fails with `BrokenPipe` once the response is gone.
struct ChannelWriter {
    sender: mpsc::Sender<Chunk>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn new(sender: mpsc::Sender<Chunk>) -> Self {
        Self {
            sender,
            buffer: Vec::with_capacity(CHUNK_BYTES),
        }
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES));
        self.sender
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

/// A checkbox or flag in the query: `1`, `on`, `true` or `yes` for on; absent, empty, `0`,
/// `off`, `false` or `no` for off; anything else is refused rather than guessed.
fn flag(fields: &FormFields, name: &str) -> Result<bool, String> {
    match fields.get(name).map(str::trim) {
        None | Some("" | "0" | "off" | "false" | "no") => Ok(false),
        Some("1" | "on" | "true" | "yes") => Ok(true),
        Some(other) => Err(format!(
            "\"{name}\" is a yes-or-no choice: send 1 for yes or leave it out, not {other:?}."
        )),
    }
}

/// The export asked for by the posted form.
fn parse_spec(fields: &FormFields) -> Result<ExportSpec, String> {
    let format = ExportFormat::parse(fields.get("format").unwrap_or_default())?;
    let filter = ExportFilter::parse(fields.get("country"), fields.get("from"), fields.get("to"))?;
    let include_email = flag(fields, "email")?;
    let bom = flag(fields, "bom")?;
    Ok(ExportSpec::new(format, filter, include_email, bom))
}

/// Checks the parameters and records the export in the audit log. Who may see the petition
/// was decided before (the extractor): bad input on someone else's petition is "not found".
fn prepare(
    conn: &mut AnyConnection,
    user: &User,
    petition: &Petition,
    fields: &FormFields,
) -> Result<ExportSpec, AppError> {
    let spec = parse_spec(fields).map_err(AppError::BadRequest)?;
    audit::record(
        conn,
        Some(user.id),
        Some(petition.id),
        &spec.audit_action(),
        &spec.describe(),
        now(),
    )?;
    Ok(spec)
}

/// The old address of a download, or a link someone was sent: nothing is exported or logged.
#[get("/admin/petitions/{slug}/export")]
async fn export_by_get() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((ALLOW, "POST"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .content_type("text/plain; charset=utf-8")
        .body(
            "Exports are started with the Download button of the Export form on the \
             petition's page in the workspace.",
        )
}

#[post("/admin/petitions/{slug}/export")]
async fn export(
    state: web::Data<AppState>,
    // The CSRF token is checked before anything is looked up or written.
    posted: ManagedForm,
    request: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let ManagedForm {
        signed_in,
        petition,
        fields,
    } = posted;
    let user = signed_in.user;
    let request_id = crate::web::hardening::id_of(&request);
    let pool = state.pool.clone();
    let key = state.data_key.clone();
    let instance_url = state.base_url.clone();
    let (ready_sender, ready) = oneshot::channel::<Result<(String, ExportFormat), AppError>>();
    let (body_sender, mut body) = mpsc::channel::<Chunk>(CHANNEL_CHUNKS);

    actix_web::rt::task::spawn_blocking(move || {
        let prepared = pool
            .get()
            .map_err(AppError::from)
            .and_then(|mut conn| Ok((prepare(&mut conn, &user, &petition, &fields)?, conn)));
        let (spec, mut conn) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                let _ = ready_sender.send(Err(error));
                return;
            }
        };
        if ready_sender
            .send(Ok((petition.slug.clone(), spec.format)))
            .is_err()
        {
            return;
        }
        let out = ChannelWriter::new(body_sender.clone());
        let written = write_export(
            &mut conn,
            &key,
            &petition,
            &spec,
            now(),
            &instance_url,
            out,
            |_| {},
        );
        if let Err(error) = written {
            if !body_sender.is_closed() {
                log::error!("request {request_id}: export failed part-way: {error:#}");
                let _ = body_sender.blocking_send(Err(io::Error::other("the export failed")));
            }
        }
    });

    let (slug, format) = ready
        .await
        .map_err(|_| AppError::Internal(anyhow::anyhow!("the export task ended early")))??;
    let stream = futures_util::stream::poll_fn(move |cx| body.poll_recv(cx));
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", format.file_name(&slug)),
        ))
        // Signers' personal data: `web::hardening` makes it `no-store`, as every signed-in
        // response.
        .streaming(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(query: &str) -> Result<ExportSpec, String> {
        parse_spec(&crate::core::form::parse_urlencoded(query.as_bytes()).unwrap())
    }

    #[test]
    fn reads_the_form() {
        let parsed = spec("format=csv&country=no&from=2026-11-01&email=1&bom=on").unwrap();
        assert_eq!(parsed.format, ExportFormat::Csv);
        assert_eq!(parsed.filter.country.as_deref(), Some("NO"));
        assert!(parsed.includes_email() && parsed.bom());
        let parsed = spec("format=ndjson&bom=1&email=").unwrap();
        assert!(!parsed.bom(), "only CSV has a byte-order mark");
        assert!(!parsed.includes_email());
        assert!(spec("").is_err());
        assert!(spec("format=xlsx").is_err());
        assert!(spec("format=csv&email=please").is_err());
        assert!(spec("format=csv&to=yesterday").is_err());
    }

    #[test]
    fn the_channel_writer_sends_full_chunks_and_notices_a_closed_response() {
        let (sender, mut receiver) = mpsc::channel(CHANNEL_CHUNKS);
        let mut writer = ChannelWriter::new(sender);
        writer.write_all(&[b'x'; CHUNK_BYTES + 1]).unwrap();
        writer.write_all(b"y").unwrap();
        writer.flush().unwrap();
        let first = receiver.try_recv().unwrap().unwrap();
        let second = receiver.try_recv().unwrap().unwrap();
        assert_eq!(first.len(), CHUNK_BYTES + 1);
        assert_eq!(&second[..], b"y");
        drop(receiver);
        writer.write_all(b"z").unwrap();
        let error = writer.flush().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }
}
