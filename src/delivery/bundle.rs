//! Delivering a petition: the bundle (a zip with `signatures.csv`, `dossier.pdf`,
//! `README.txt`, `manifest.json` and `manifest.sig`) and the record of the delivery.
//!
//! The bundle and the record must describe the same signatures, while people may still be
//! confirming (an open petition can be delivered) and organizers moderating. Writing a
//! million-row bundle inside one write transaction would hold SQLite's single write lock for
//! as long as the PDF takes, stalling every signer of every petition. So a delivery runs in
//! three steps:
//!
//! 1. a short write transaction gives a commitment to every confirmed signature that has none
//!    yet (those confirmed before receipts existed);
//! 2. the bundle is written from one read snapshot (a deferred transaction on SQLite, whose
//!    WAL keeps the snapshot; `REPEATABLE READ` on PostgreSQL), so the CSV, the PDF and the
//!    manifest agree with each other;
//! 3. one write transaction first takes the petition's row lock (every change to which
//!    signatures count also updates that row: the counter), then reads the confirmed
//!    signatures' commitments again and compares them with the bundle's leaves. Only if they
//!    are identical does it record the delivery, its leaves and the audit entry and mark the
//!    petition delivered; otherwise the bundle is thrown away and made again (a few times,
//!    then the organizer is asked to try again). Confirmations that were waiting for the row
//!    lock then find the petition delivered and are refused (see `signatures::queries`).
//!
//! The commitments bind each signature's name, country, postal code, version and confirmation
//! time, so equal leaves mean the rows in the bundle are the rows in the database.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use askama::Template;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::manifest::{
    self, CountryCount, FileEntry, KeyPart, Manifest, MerklePart, Period, PetitionPart, TargetPart,
    VersionCount, VersionPart,
};
use super::merkle::RootBuilder;
use super::record::{self, NewDelivery};
use super::signing_key::{InstanceKey, ALGORITHM};
use crate::core::audit;
use crate::core::countries::country_name;
use crate::core::format::rfc3339;
use crate::core::hex::{parse_hash, to_hex, Hash};
use crate::core::status::PetitionStatus;
use crate::core::status::SignatureStatus;
use crate::db::schema::{petition_versions, petitions, signatures};
use crate::db::{write_transaction, AnyConnection};
use crate::error::AppError;
use crate::exports::csv::{CsvOptions, CsvWriter};
use crate::exports::pdf::{DossierCover, DossierRow, DossierWriter};
use crate::exports::rows::{for_each_as_of, ExportFilter};
use crate::petitions::model::Version;
use crate::petitions::{queries as petition_queries, Petition};
use crate::safety::encryption::DataKey;
use crate::signatures::commitment;

/// How often a bundle is made again when signatures changed while it was being written.
const ATTEMPTS: u32 = 3;
/// Signatures read per statement when filling in or comparing commitments.
const BATCH: i64 = 1_000;

/// Who the petition is handed to, as the organizer wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient(String);

impl Recipient {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        let length = name.chars().count();
        if !(1..=200).contains(&length) {
            return Err(
                "Name the recipient in 1 to 200 characters, e.g. \"Prime Minister of Norway\"."
                    .to_owned(),
            );
        }
        if name.chars().any(char::is_control) {
            return Err("Write the recipient on one line, without control characters.".to_owned());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A delivery to make.
pub struct DeliveryRequest<'a> {
    pub petition_id: i64,
    pub recipient: &'a Recipient,
    /// The account that delivers; `None` on the command line.
    pub created_by: Option<i64>,
    /// The instance's public origin, without a trailing slash.
    pub base_url: &'a str,
    pub key: &'a InstanceKey,
    /// Opens the signers' encrypted fields.
    pub data_key: &'a DataKey,
}

/// A delivery that was made and recorded.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub delivery_id: i64,
    pub slug: String,
    pub signature_count: u64,
    pub bundle_sha256: String,
    pub merkle_root: String,
    pub fingerprint: String,
    pub created_at: NaiveDateTime,
}

/// Writes the bundle of a petition to `out` (an empty file, which is truncated and written
/// again on a retry) and records the delivery. Draft and delivered petitions are refused with
/// a 409.
pub fn deliver(
    conn: &mut AnyConnection,
    request: &DeliveryRequest<'_>,
    out: &mut File,
) -> Result<Delivered, AppError> {
    for attempt in 1..=ATTEMPTS {
        let started = std::time::Instant::now();
        let petition = load_petition(conn, request.petition_id)?;
        check_deliverable(&petition, crate::core::clock::now())?;
        write_transaction(conn, |conn| {
            fill_missing_commitments(conn, request.data_key, &petition).map_err(AppError::from)
        })?;
        let filled = started.elapsed();
        let created_at = whole_seconds(crate::core::clock::now());
        out.set_len(0)
            .map_err(internal("cannot empty the bundle file"))?;
        out.seek(SeekFrom::Start(0))
            .map_err(internal("cannot rewind the bundle file"))?;
        let written = read_snapshot(conn, |conn| {
            write_bundle(conn, request, created_at, &mut *out)
        })?;
        out.sync_all()
            .map_err(internal("cannot write the bundle file"))?;
        let bundle_sha256 = to_hex(&hash_file(out)?);
        let bundled = started.elapsed();
        match write_transaction(conn, |conn| record(conn, request, &written, &bundle_sha256)) {
            Ok(delivery_id) => {
                log::info!(
                    "delivered petition {} ({} signatures): commitments {:.1} s, bundle {:.1} s, \
                     record {:.1} s",
                    petition.slug,
                    written.manifest.signatures.total,
                    filled.as_secs_f64(),
                    (bundled - filled).as_secs_f64(),
                    (started.elapsed() - bundled).as_secs_f64()
                );
                return Ok(Delivered {
                    delivery_id,
                    slug: written.manifest.petition.slug.clone(),
                    signature_count: written.manifest.signatures.total,
                    bundle_sha256,
                    merkle_root: written.manifest.merkle_tree.root.clone(),
                    fingerprint: written.manifest.signing_key.fingerprint.clone(),
                    created_at,
                });
            }
            Err(RecordError::Changed) if attempt < ATTEMPTS => {
                log::info!(
                    "delivery of petition {}: signatures changed while the bundle was written; \
                     writing it again",
                    request.petition_id
                );
            }
            Err(RecordError::Changed) => {
                return Err(AppError::Conflict(
                    "Signatures kept changing while the bundle was being written. Please try \
                     again in a moment."
                        .to_owned(),
                ))
            }
            Err(RecordError::App(error)) => return Err(error),
        }
    }
    unreachable!("the last attempt returns")
}

/// Manifests and zip entries speak in whole seconds; the record says the same.
fn whole_seconds(time: NaiveDateTime) -> NaiveDateTime {
    time.with_nanosecond(0).unwrap_or(time)
}

fn internal(context: &'static str) -> impl Fn(std::io::Error) -> AppError {
    move |error| AppError::Internal(anyhow::Error::new(error).context(context))
}

fn load_petition(conn: &mut AnyConnection, petition_id: i64) -> QueryResult<Petition> {
    petitions::table
        .find(petition_id)
        .select(Petition::as_select())
        .first(conn)
}

/// Open and closed petitions can be delivered (delivering an open one ends its collection).
pub fn check_deliverable(petition: &Petition, now: NaiveDateTime) -> Result<(), AppError> {
    match petition.status_at(now) {
        PetitionStatus::Open | PetitionStatus::Closed => Ok(()),
        PetitionStatus::Draft => Err(AppError::Conflict(
            "This petition is a draft: open it and collect signatures before delivering it."
                .to_owned(),
        )),
        PetitionStatus::Delivered => Err(AppError::Conflict(
            "This petition was delivered already; a petition is delivered once. Its bundle is \
             the organizers' to keep and hand over again."
                .to_owned(),
        )),
    }
}

/// Gives every confirmed signature of the petition without a commitment (confirmed before
/// receipts existed) a salt and a commitment, from what is stored.
fn fill_missing_commitments(
    conn: &mut AnyConnection,
    key: &DataKey,
    petition: &Petition,
) -> QueryResult<()> {
    type Missing = (
        i64,
        String,
        String,
        Option<String>,
        Option<NaiveDateTime>,
        i64,
    );
    let versions: BTreeMap<i64, String> = petition_versions::table
        .filter(petition_versions::petition_id.eq(petition.id))
        .select((petition_versions::id, petition_versions::text_sha256))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let mut after = 0;
    loop {
        let batch: Vec<Missing> = signatures::table
            .filter(signatures::petition_id.eq(petition.id))
            .filter(signatures::status.eq(SignatureStatus::Confirmed.as_str()))
            .filter(signatures::commitment.is_null())
            .filter(signatures::id.gt(after))
            .order(signatures::id.asc())
            .limit(BATCH)
            .select((
                signatures::id,
                signatures::name,
                signatures::country,
                signatures::postal_code,
                signatures::confirmed_at,
                signatures::version_id,
            ))
            .load(conn)?;
        let full = batch.len() as i64 == BATCH;
        for (id, name, country, postal_code, confirmed_at, version_id) in batch {
            after = id;
            let missing = |what: &str| {
                diesel::result::Error::DeserializationError(
                    format!("confirmed signature {id} has no {what}").into(),
                )
            };
            let version_sha256 = versions
                .get(&version_id)
                .ok_or_else(|| missing("version"))?;
            let confirmed_at = confirmed_at.ok_or_else(|| missing("confirmation time"))?;
            let (salt, commitment) = commitment::commit_sealed(
                key,
                &petition.slug,
                version_sha256,
                &name,
                &country,
                postal_code.as_deref(),
                confirmed_at,
            )?;
            diesel::update(signatures::table.find(id))
                .set((
                    signatures::receipt_salt.eq(salt.to_hex()),
                    signatures::commitment.eq(to_hex(&commitment)),
                ))
                .execute(conn)?;
        }
        if !full {
            return Ok(());
        }
    }
}

/// Runs `f` in a read-only transaction that sees one snapshot of the database throughout.
fn read_snapshot<T>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, AppError>,
) -> Result<T, AppError> {
    match conn {
        // In WAL mode a deferred transaction keeps the snapshot of its first read.
        AnyConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN DEFERRED")?
        }
        AnyConnection::Postgresql(inner) => AnsiTransactionManager::begin_transaction_sql(
            inner,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )?,
    }
    let result = f(conn);
    // Nothing was written: ending it either way is the same.
    match <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn) {
        Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => result,
        Err(error) => result.and(Err(error.into())),
    }
}

/// Counts written bytes and their SHA-256 on the way to `inner`.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn entry(self, name: &str) -> FileEntry {
        FileEntry {
            name: name.to_owned(),
            sha256: to_hex(&self.hasher.finalize()),
            bytes: self.bytes,
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn hash_file(file: &mut File) -> Result<Hash, AppError> {
    file.seek(SeekFrom::Start(0))
        .map_err(internal("cannot rewind the bundle file"))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 64 * 1024];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(internal("cannot read the bundle file"))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    file.seek(SeekFrom::Start(0))
        .map_err(internal("cannot rewind the bundle file"))?;
    Ok(hasher.finalize().into())
}

/// What a written bundle holds, for the record.
struct Written {
    manifest: Manifest,
    manifest_text: String,
    leaves: Vec<Hash>,
}

#[derive(Template)]
#[template(path = "delivery/README.txt")]
struct ReadmeText<'a> {
    title: &'a str,
    petition_url: &'a str,
    recipient: &'a str,
    created_on: String,
    instance_url: &'a str,
    total: u64,
    public_key: String,
    fingerprint: String,
    pem: String,
    key_url: String,
    receipt_url: String,
}

/// The whole bundle, for everything confirmed in the snapshot: the snapshot is the cut-off.
fn everything_confirmed() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|day| day.and_hms_opt(23, 59, 59))
        .expect("a valid time")
}

fn zip_time(time: NaiveDateTime) -> zip::DateTime {
    let date = time.date();
    zip::DateTime::from_date_and_time(
        u16::try_from(date.year()).unwrap_or(1980),
        date.month() as u8,
        date.day() as u8,
        time.hour() as u8,
        time.minute() as u8,
        time.second() as u8,
    )
    .unwrap_or_default()
}

fn zip_error(error: zip::result::ZipError) -> AppError {
    AppError::Internal(anyhow::Error::new(error).context("cannot write the bundle"))
}

fn write_bundle(
    conn: &mut AnyConnection,
    request: &DeliveryRequest<'_>,
    created_at: NaiveDateTime,
    out: &mut File,
) -> Result<Written, AppError> {
    let petition = load_petition(conn, request.petition_id)?;
    let targets = petition_queries::targets(conn, petition.id)?;
    let versions: Vec<Version> = petition_versions::table
        .filter(petition_versions::petition_id.eq(petition.id))
        .order(petition_versions::id.asc())
        .select(Version::as_select())
        .load(conn)?;
    let current = versions
        .last()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the petition has no text")))?;
    let base_url = request.base_url;
    let petition_url = format!("{base_url}/p/{}", petition.slug);
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip_time(created_at))
        .unix_permissions(0o644)
        .large_file(true);
    let mut zip = ZipWriter::new(out);
    let filter = ExportFilter::default();
    let as_of = everything_confirmed();

    // signatures.csv, collecting the leaves and the counts on the way.
    zip.start_file(manifest::CSV_FILE, options)
        .map_err(zip_error)?;
    let mut leaves: Vec<Hash> = Vec::new();
    let mut root = RootBuilder::new();
    let mut by_country: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_version: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_confirmed: Option<NaiveDateTime> = None;
    let mut last_confirmed: Option<NaiveDateTime> = None;
    let csv_entry = {
        let mut hashing = HashingWriter::new(&mut zip);
        let options = CsvOptions {
            bom: false,
            include_email: false,
        };
        let mut csv = CsvWriter::new(&mut hashing, options)
            .map_err(internal("cannot write signatures.csv"))?;
        for_each_as_of(conn, request.data_key, petition.id, &filter, as_of, |row| {
            let leaf = row
                .commitment
                .as_deref()
                .and_then(parse_hash)
                .ok_or_else(|| anyhow::anyhow!("signature {} has no commitment", row.id))?;
            leaves.push(leaf);
            root.push(&leaf);
            *by_country.entry(row.country.clone()).or_default() += 1;
            *by_version.entry(row.version_sha256.clone()).or_default() += 1;
            first_confirmed =
                Some(first_confirmed.map_or(row.confirmed_at, |t| t.min(row.confirmed_at)));
            last_confirmed =
                Some(last_confirmed.map_or(row.confirmed_at, |t| t.max(row.confirmed_at)));
            csv.write(&row)?;
            Ok(())
        })?;
        csv.finish()
            .map_err(internal("cannot write signatures.csv"))?;
        hashing.entry(manifest::CSV_FILE)
    };
    let total = leaves.len() as u64;
    let mut countries: Vec<CountryCount> = by_country
        .into_iter()
        .map(|(code, count)| CountryCount {
            name: country_name(&code),
            country: code,
            count,
        })
        .collect();
    countries.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.country.cmp(&b.country))
    });

    // dossier.pdf, from the same snapshot.
    zip.start_file(manifest::PDF_FILE, options)
        .map_err(zip_error)?;
    let pdf_entry = {
        let mut hashing = HashingWriter::new(&mut zip);
        let cover = DossierCover {
            title: current.title.clone(),
            targets: targets
                .iter()
                .map(|target| (target.name.clone(), target.role.clone()))
                .collect(),
            body: current.body.clone(),
            version_sha256: current.text_sha256.clone(),
            confirmed_count: total as i64,
            first_signature: first_confirmed,
            last_signature: last_confirmed,
            instance_url: base_url.to_owned(),
            generated_at: created_at,
        };
        let named: Vec<(String, i64)> = countries
            .iter()
            .map(|country| (country.name.clone(), country.count as i64))
            .collect();
        let mut dossier = DossierWriter::new(&mut hashing, &cover, &named)?;
        let listed = for_each_as_of(conn, request.data_key, petition.id, &filter, as_of, |row| {
            let country = country_name(&row.country);
            dossier.add(&DossierRow {
                name: row.dossier_name(),
                place: row.postal_code.as_deref().unwrap_or(""),
                country: &country,
                date: row.confirmed_at.date(),
            })
        })?;
        if listed != total {
            return Err(AppError::Internal(anyhow::anyhow!(
                "the snapshot gave {total} signatures for the CSV and {listed} for the PDF"
            )));
        }
        dossier.finish()?;
        hashing.entry(manifest::PDF_FILE)
    };

    let key = request.key.public_key();
    let readme = ReadmeText {
        title: &current.title,
        petition_url: &petition_url,
        recipient: request.recipient.as_str(),
        created_on: created_at.format("%-d %B %Y, %H:%M UTC").to_string(),
        instance_url: base_url,
        total,
        public_key: key.to_base64(),
        fingerprint: key.fingerprint(),
        pem: key.to_pem(),
        key_url: format!("{base_url}/.well-known/undersign/signing-key"),
        receipt_url: format!("{petition_url}/receipt"),
    }
    .render()?;
    zip.start_file(manifest::README_FILE, options)
        .map_err(zip_error)?;
    let readme_entry = {
        let mut hashing = HashingWriter::new(&mut zip);
        hashing
            .write_all(readme.as_bytes())
            .map_err(internal("cannot write README.txt"))?;
        hashing.entry(manifest::README_FILE)
    };

    let period_end = match petition.closes_at {
        Some(closes_at) if closes_at <= created_at => closes_at,
        _ => created_at,
    };
    let manifest = Manifest {
        format: manifest::FORMAT.to_owned(),
        format_version: manifest::FORMAT_VERSION,
        created_at: rfc3339(created_at),
        instance_url: base_url.to_owned(),
        recipient: request.recipient.as_str().to_owned(),
        petition: PetitionPart {
            slug: petition.slug.clone(),
            title: current.title.clone(),
            url: petition_url.clone(),
            targets: targets
                .into_iter()
                .map(|target| TargetPart {
                    name: target.name,
                    role: target.role,
                })
                .collect(),
            delivered_version_sha256: current.text_sha256.clone(),
            text_sha256_of: manifest::TEXT_SHA256_OF.to_owned(),
            versions: versions
                .iter()
                .map(|version| VersionPart {
                    text_sha256: version.text_sha256.clone(),
                    created_at: rfc3339(version.created_at),
                    title: version.title.clone(),
                    summary: version.summary.clone(),
                    body: version.body.clone(),
                })
                .collect(),
        },
        collection_period: Period {
            from: rfc3339(petition.created_at),
            to: rfc3339(period_end),
        },
        signatures: manifest::Counts {
            total,
            by_country: countries,
            by_version: versions
                .iter()
                .filter_map(|version| {
                    by_version
                        .get(&version.text_sha256)
                        .map(|&count| VersionCount {
                            text_sha256: version.text_sha256.clone(),
                            count,
                        })
                })
                .collect(),
            first_confirmed_at: first_confirmed.map(rfc3339),
            last_confirmed_at: last_confirmed.map(rfc3339),
        },
        files: vec![csv_entry, pdf_entry, readme_entry],
        merkle_tree: MerklePart::new(to_hex(&root.root()), total),
        signing_key: KeyPart {
            algorithm: ALGORITHM.to_owned(),
            public_key: key.to_base64(),
            fingerprint: key.fingerprint(),
        },
    };
    let manifest_bytes = manifest.to_bytes();
    let signature = request.key.sign(&manifest_bytes);
    for (name, bytes) in [
        (manifest::MANIFEST_FILE, manifest_bytes.as_slice()),
        (
            manifest::SIGNATURE_FILE,
            format!("{signature}\n").as_bytes(),
        ),
    ] {
        zip.start_file(name, options).map_err(zip_error)?;
        zip.write_all(bytes)
            .map_err(internal("cannot write the manifest"))?;
    }
    zip.finish().map_err(zip_error)?;
    Ok(Written {
        manifest_text: String::from_utf8(manifest_bytes).expect("serde_json writes UTF-8"),
        manifest,
        leaves,
    })
}

enum RecordError {
    /// The confirmed signatures are no longer those in the bundle.
    Changed,
    App(AppError),
}

impl From<diesel::result::Error> for RecordError {
    fn from(error: diesel::result::Error) -> Self {
        RecordError::App(error.into())
    }
}

impl From<AppError> for RecordError {
    fn from(error: AppError) -> Self {
        RecordError::App(error)
    }
}

/// True when the petition's confirmed signatures, in id order, have exactly `leaves` as
/// commitments.
fn leaves_unchanged(
    conn: &mut AnyConnection,
    petition_id: i64,
    leaves: &[Hash],
) -> QueryResult<bool> {
    let mut after = 0;
    let mut seen = 0;
    loop {
        let batch: Vec<(i64, Option<String>)> = signatures::table
            .filter(signatures::petition_id.eq(petition_id))
            .filter(signatures::status.eq(SignatureStatus::Confirmed.as_str()))
            .filter(signatures::id.gt(after))
            .order(signatures::id.asc())
            .limit(BATCH)
            .select((signatures::id, signatures::commitment))
            .load(conn)?;
        let full = batch.len() as i64 == BATCH;
        for (id, commitment) in batch {
            after = id;
            let same = leaves.get(seen).is_some_and(|leaf| {
                commitment.as_deref().and_then(parse_hash).as_ref() == Some(leaf)
            });
            if !same {
                return Ok(false);
            }
            seen += 1;
        }
        if !full {
            return Ok(seen == leaves.len());
        }
    }
}

fn record(
    conn: &mut AnyConnection,
    request: &DeliveryRequest<'_>,
    written: &Written,
    bundle_sha256: &str,
) -> Result<i64, RecordError> {
    let now = crate::core::clock::now();
    // The row lock first: from here on, nothing that changes which signatures count can
    // commit before this transaction does.
    diesel::update(petitions::table.find(request.petition_id))
        .set(petitions::updated_at.eq(petitions::updated_at))
        .execute(conn)?;
    let petition = load_petition(conn, request.petition_id)?;
    check_deliverable(&petition, now)?;
    if !leaves_unchanged(conn, petition.id, &written.leaves)? {
        return Err(RecordError::Changed);
    }
    // An open petition past its closing date is closed already: the log says so before it
    // says delivered, whether or not the maintenance task got there first.
    petition_queries::close_if_expired(conn, petition.id, now)?;
    let from = petition.status_at(now);
    let created_at = parse_manifest_time(&written.manifest.created_at)?;
    // Delivering ends the collection: an open petition is closed as of the delivery.
    let closes_at = Some(petition.closes_at.map_or(created_at, |t| t.min(created_at)));
    petition_queries::set_status(conn, petition.id, PetitionStatus::Delivered, closes_at, now)?;
    let delivery_id = record::insert(
        conn,
        &NewDelivery {
            petition_id: petition.id,
            recipient: request.recipient.as_str(),
            signature_count: written.manifest.signatures.total as i64,
            bundle_sha256,
            merkle_root: &written.manifest.merkle_tree.root,
            manifest: &written.manifest_text,
            created_by: request.created_by,
            created_at,
        },
        &written.leaves,
    )?;
    audit::record(
        conn,
        request.created_by,
        Some(petition.id),
        "petition.deliver",
        &format!(
            "{} → delivered: {} signatures to {}, bundle SHA-256 {bundle_sha256}",
            from.as_str(),
            written.manifest.signatures.total,
            request.recipient.as_str()
        ),
        now,
    )?;
    Ok(delivery_id)
}

fn parse_manifest_time(text: &str) -> Result<NaiveDateTime, AppError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.naive_utc())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("bad manifest time {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_one_line_of_1_to_200_characters() {
        assert_eq!(
            Recipient::parse("  Prime Minister of Norway ")
                .unwrap()
                .as_str(),
            "Prime Minister of Norway"
        );
        assert!(Recipient::parse("   ").is_err());
        assert!(Recipient::parse(&"я".repeat(200)).is_ok());
        assert!(Recipient::parse(&"я".repeat(201)).is_err());
        assert!(Recipient::parse("Prime\nMinister").is_err());
        assert!(Recipient::parse("Prime\u{7}Minister").is_err());
    }

    #[test]
    fn zip_times_are_the_manifest_time() {
        let time = NaiveDate::from_ymd_opt(2026, 11, 28)
            .unwrap()
            .and_hms_opt(10, 11, 12)
            .unwrap();
        let zipped = zip_time(time);
        assert_eq!(
            (zipped.year(), zipped.month(), zipped.day(), zipped.hour()),
            (2026, 11, 28, 10)
        );
    }
}
