//! Writing an export: the chosen format ([`ExportFormat`]), what the request or the command line
//! asked for ([`ExportSpec`]), and [`write_export`], which feeds the rows to the writer of that
//! format. The workspace route and the command line share it.

use std::collections::HashMap;
use std::io::Write;

use chrono::NaiveDateTime;
use diesel::QueryResult;

use super::csv::{CsvOptions, CsvWriter};
use super::ndjson::{NdjsonOptions, NdjsonWriter};
use super::pdf::{DossierCover, DossierRow, DossierWriter};
use super::rows::*;
use crate::core::countries::COUNTRIES;
use crate::db::AnyConnection;
use crate::petitions::{queries, Petition};
use crate::safety::encryption::DataKey;

/// The three kinds of export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Ndjson,
    Pdf,
}

impl ExportFormat {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "csv" => Ok(ExportFormat::Csv),
            "ndjson" => Ok(ExportFormat::Ndjson),
            "pdf" => Ok(ExportFormat::Pdf),
            "" => Err("Choose a format: csv, ndjson or pdf.".to_owned()),
            other => Err(format!(
                "{other:?} is not an export format; use csv, ndjson or pdf."
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Pdf => "pdf",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Pdf => "application/pdf",
        }
    }

    /// The name a download is saved under, e.g. `free-them-signatures.csv`.
    pub fn file_name(self, slug: &str) -> String {
        match self {
            ExportFormat::Csv => format!("{slug}-signatures.csv"),
            ExportFormat::Ndjson => format!("{slug}-signatures.ndjson"),
            ExportFormat::Pdf => format!("{slug}-dossier.pdf"),
        }
    }
}

/// One export as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSpec {
    pub format: ExportFormat,
    pub filter: ExportFilter,
    include_email: bool,
    bom: bool,
}

impl ExportSpec {
    /// Email addresses and the byte-order mark are kept only for the formats that have them:
    /// the PDF dossier is handed over to recipients and never lists email addresses.
    pub fn new(format: ExportFormat, filter: ExportFilter, include_email: bool, bom: bool) -> Self {
        Self {
            format,
            filter,
            include_email: include_email && format != ExportFormat::Pdf,
            bom: bom && format == ExportFormat::Csv,
        }
    }

    pub fn includes_email(&self) -> bool {
        self.include_email
    }

    pub fn bom(&self) -> bool {
        self.bom
    }

    /// The audit log's action: `export.csv`, `export.ndjson`, `export.pdf`.
    pub fn audit_action(&self) -> String {
        format!("export.{}", self.format.as_str())
    }

    /// The audit log's details: the filter, and whether email addresses left with it.
    pub fn describe(&self) -> String {
        let emails = if self.include_email {
            "with email addresses"
        } else {
            "without email addresses"
        };
        format!("{}; {emails}", self.filter.describe())
    }
}

/// The dossier's cover for `petition`: its current text and addressees, the figures of
/// `summary`, and where and when the dossier was made.
pub fn dossier_cover(
    conn: &mut AnyConnection,
    petition: &Petition,
    summary: &ExportSummary,
    instance_url: &str,
    generated_at: NaiveDateTime,
) -> QueryResult<DossierCover> {
    let version = queries::current_version(conn, petition.id)?;
    let targets = queries::targets(conn, petition.id)?;
    Ok(DossierCover {
        title: version.title,
        targets: targets
            .into_iter()
            .map(|target| (target.name, target.role))
            .collect(),
        body: version.body,
        version_sha256: version.text_sha256,
        confirmed_count: summary.total,
        first_signature: summary.first_confirmed,
        last_signature: summary.last_confirmed,
        instance_url: instance_url.to_owned(),
        generated_at,
    })
}

/// English country names by code, for the dossier.
fn country_names() -> HashMap<&'static str, &'static str> {
    COUNTRIES.iter().copied().collect()
}

/// Writes the export of `petition` described by `spec` to `out`: the signatures that match
/// its filter and were confirmed by `as_of`. The PDF dossier's cover names `instance_url` as
/// its source. `progress` hears the number of rows written so far after each row. Returns
/// `out`, flushed, and the number of rows.
// Each argument is a different thing the caller owns (connection, key, petition, request,
// snapshot time, origin, sink, progress); a struct around them would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn write_export<W: Write>(
    conn: &mut AnyConnection,
    key: &DataKey,
    petition: &Petition,
    spec: &ExportSpec,
    as_of: NaiveDateTime,
    instance_url: &str,
    out: W,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<(W, u64)> {
    let mut done = 0_u64;
    let (mut out, rows) = match spec.format {
        ExportFormat::Csv => {
            let options = CsvOptions {
                bom: spec.bom,
                include_email: spec.include_email,
            };
            let mut writer = CsvWriter::new(out, options)?;
            let rows = for_each_as_of(conn, key, petition.id, &spec.filter, as_of, |row| {
                writer.write(&row)?;
                done += 1;
                progress(done);
                Ok(())
            })?;
            (writer.finish()?, rows)
        }
        ExportFormat::Ndjson => {
            let options = NdjsonOptions {
                include_email: spec.include_email,
            };
            let mut writer = NdjsonWriter::new(out, options)?;
            let rows = for_each_as_of(conn, key, petition.id, &spec.filter, as_of, |row| {
                writer.write(&row)?;
                done += 1;
                progress(done);
                Ok(())
            })?;
            (writer.finish()?, rows)
        }
        ExportFormat::Pdf => {
            let summary = summary(conn, petition.id, &spec.filter, as_of)?;
            let cover = dossier_cover(conn, petition, &summary, instance_url, as_of)?;
            let names = country_names();
            // A code missing from the list (it never should be) still shows as itself.
            let name_of = |code: &str| names.get(code).copied().unwrap_or(code).to_owned();
            let by_country: Vec<(String, i64)> = summary
                .by_country
                .iter()
                .map(|(code, n)| (name_of(code), *n))
                .collect();
            let mut writer = DossierWriter::new(out, &cover, &by_country)?;
            let rows = for_each_as_of(conn, key, petition.id, &spec.filter, as_of, |row| {
                let country = names.get(row.country.as_str()).copied();
                writer.add(&DossierRow {
                    name: row.dossier_name(),
                    place: row.postal_code.as_deref().unwrap_or(""),
                    country: country.unwrap_or(&row.country),
                    date: row.confirmed_at.date(),
                })?;
                done += 1;
                progress(done);
                Ok(())
            })?;
            (writer.finish()?, rows)
        }
    };
    out.flush()?;
    Ok((out, rows))
}
