//! `undersign export --petition SLUG --format csv|ndjson|pdf [--out FILE] [--country CC]
//! [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--include-email] [--bom]`.
//!
//! Writes to standard output, or to a file that appears only once complete (a partial file is
//! written beside it and renamed at the end, or removed on failure). A progress bar is drawn on
//! standard error when it is a terminal.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use diesel::prelude::*;

use super::rows::{summary, ExportFilter};
use super::write::{write_export, ExportFormat, ExportSpec};
use crate::config::Settings;
use crate::core::audit;
use crate::core::clock::now;
use crate::core::format::format_count;
use crate::db;
use crate::db::schema::petitions;
use crate::petitions::Petition;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The petition's slug.
    #[arg(long)]
    pub petition: String,
    /// csv, ndjson or pdf.
    #[arg(long)]
    pub format: String,
    /// Where to write; standard output when absent.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Only signatures from this country (ISO 3166-1 alpha-2 code, e.g. NO).
    #[arg(long, value_name = "CC")]
    pub country: Option<String>,
    /// Only signatures confirmed on or after this day (UTC).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: Option<String>,
    /// Only signatures confirmed on or before this day (UTC).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: Option<String>,
    /// Include the signers' email addresses (CSV and NDJSON; never in the PDF).
    #[arg(long)]
    pub include_email: bool,
    /// Start the CSV with a UTF-8 byte-order mark, for spreadsheet programs.
    #[arg(long)]
    pub bom: bool,
    /// Name UNDERSIGN_BASE_URL on the PDF's cover even where the server recorded another URL.
    #[arg(long)]
    pub use_env_base_url: bool,
}

pub fn run(settings: &Settings, args: ExportArgs) -> anyhow::Result<()> {
    let format = ExportFormat::parse(&args.format).map_err(anyhow::Error::msg)?;
    let filter = ExportFilter::parse(
        args.country.as_deref(),
        args.from.as_deref(),
        args.to.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    if args.bom && format != ExportFormat::Csv {
        anyhow::bail!("--bom applies to CSV only");
    }
    if args.include_email && format == ExportFormat::Pdf {
        anyhow::bail!("the PDF dossier never lists email addresses: leave out --include-email");
    }
    let spec = ExportSpec::new(format, filter, args.include_email, args.bom);
    if args.out.is_none() && std::io::stdout().is_terminal() && format_is_binary(format) {
        anyhow::bail!(
            "the {} file is binary: write it with --out FILE or redirect standard output",
            format.as_str()
        );
    }

    let pool = db::open_existing(&settings.database_url, 1)?;
    // The PDF's cover names the instance: the URL `serve` recorded, so it matches the web's.
    let instance_url = match format {
        ExportFormat::Pdf => db::instance::base_url_for_command(
            &mut *pool.get()?,
            settings.base_url.as_deref(),
            args.use_env_base_url,
        )?,
        _ => String::new(),
    };
    let key = crate::safety::encryption::open_existing_data_key(&pool, &settings.data_key_file)?;
    let mut conn = pool.get()?;
    let petition: Petition = petitions::table
        .filter(petitions::slug.eq(&args.petition))
        .select(Petition::as_select())
        .first(&mut conn)
        .optional()?
        .with_context(|| {
            format!(
                "there is no petition {:?} (`undersign petition list` shows them all)",
                args.petition
            )
        })?;
    let as_of = now();
    let mut progress = if std::io::stderr().is_terminal() {
        let total = summary(&mut conn, petition.id, &spec.filter, as_of)?.total;
        Some(Progress::new(u64::try_from(total).unwrap_or(0)))
    } else {
        None
    };
    audit::record(
        &mut conn,
        None,
        Some(petition.id),
        &spec.audit_action(),
        &format!("{}; from the command line", spec.describe()),
        as_of,
    )?;

    let mut tick = |done: u64| {
        if let Some(progress) = progress.as_mut() {
            progress.update(done);
        }
    };
    let rows = match &args.out {
        None => {
            let out = BufWriter::new(std::io::stdout().lock());
            write_export(
                &mut conn,
                &key,
                &petition,
                &spec,
                as_of,
                &instance_url,
                out,
                &mut tick,
            )
            .context("the export stopped")?
            .1
        }
        Some(path) => write_file(path, |out| {
            write_export(
                &mut conn,
                &key,
                &petition,
                &spec,
                as_of,
                &instance_url,
                out,
                &mut tick,
            )
        })?,
    };
    if let Some(progress) = progress.as_mut() {
        progress.finish(rows);
    }
    let place = match &args.out {
        Some(path) => path.display().to_string(),
        None => "standard output".to_owned(),
    };
    eprintln!(
        "Exported {} confirmed signatures of {} as {} to {place}{}.",
        format_count(i64::try_from(rows).unwrap_or(i64::MAX)),
        petition.slug,
        format.as_str(),
        if spec.includes_email() {
            ", with email addresses"
        } else {
            ""
        }
    );
    Ok(())
}

fn format_is_binary(format: ExportFormat) -> bool {
    format == ExportFormat::Pdf
}

/// Writes `path` through `write`, so that it appears only when complete: a partial file
/// beside it is renamed at the end, and removed if writing fails.
fn write_file(
    path: &Path,
    write: impl FnOnce(BufWriter<File>) -> anyhow::Result<(BufWriter<File>, u64)>,
) -> anyhow::Result<u64> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(name);
    partial_name.push(format!(".partial-{}", std::process::id()));
    let partial = path.with_file_name(partial_name);
    let file =
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let result = write(BufWriter::new(file)).and_then(|(out, rows)| {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(rows)
    });
    match result {
        Ok(rows) => {
            std::fs::rename(&partial, path).with_context(|| {
                format!("cannot move {} to {}", partial.display(), path.display())
            })?;
            Ok(rows)
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error.context(format!("nothing was written to {}", path.display())))
        }
    }
}

/// A one-line progress bar on standard error, redrawn at most ten times a second.
struct Progress {
    total: u64,
    started: Instant,
    last_drawn: Option<Instant>,
}

impl Progress {
    const EVERY: Duration = Duration::from_millis(100);
    const WIDTH: u64 = 30;

    fn new(total: u64) -> Self {
        Self {
            total,
            started: Instant::now(),
            last_drawn: None,
        }
    }

    fn update(&mut self, done: u64) {
        // Looking at the clock on every row would cost more than the row.
        if !done.is_multiple_of(256) {
            return;
        }
        if self.last_drawn.is_some_and(|at| at.elapsed() < Self::EVERY) {
            return;
        }
        self.last_drawn = Some(Instant::now());
        self.draw(done);
    }

    fn finish(&mut self, done: u64) {
        self.draw(done);
        eprintln!();
    }

    fn draw(&self, done: u64) {
        let total = self.total.max(done);
        let filled = (done * Self::WIDTH)
            .checked_div(total)
            .unwrap_or(Self::WIDTH);
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        let bar: String = (0..Self::WIDTH)
            .map(|i| if i < filled { '#' } else { '.' })
            .collect();
        let count = |n: u64| format_count(i64::try_from(n).unwrap_or(i64::MAX));
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "\r[{bar}] {} / {} signatures ({percent}%), {:.0} s",
            count(done),
            count(total),
            self.started.elapsed().as_secs_f64()
        );
        let _ = stderr.flush();
    }
}
