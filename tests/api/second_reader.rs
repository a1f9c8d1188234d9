//! The SQLite database survives other processes reading it while the server signs: the
//! `sqlite3` shell and undersign's own commands read the file over and over, and live backups
//! are taken, while the WAL is checkpointed and starts over many times.
//!
//! The server's locks on the file are what tell another process that the WAL is still in use.
//! Had the server dropped them (by opening and closing a database file itself), a reader
//! closing its connection would believe it was the last one, checkpoint and delete the WAL the
//! server still writes: the server's descriptors would show `-wal (deleted)`, readers would see
//! the count go back or the file malformed, and acknowledged signatures would be lost.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use diesel::prelude::*;
use undersign::db::schema::signatures;

use crate::helpers::{Backend, TestApp};

const SLUG: &str = "second-reader";
/// Signing clients at once.
const CLIENTS: usize = 8;
/// How long the signing load lasts.
const LOAD: Duration = Duration::from_secs(8);
/// The checkpointer lets the WAL start over past this many pages (16,384 by default), so that
/// it does so many times during the load.
const RESTART_PAGES: i64 = 64;

/// Runs the `sqlite3` shell on `database` with a busy timeout, as an administrator would.
fn sqlite3(database: &Path, sql: &str) -> Output {
    Command::new("sqlite3")
        .args(["-bail", "-cmd", ".timeout 5000"])
        .arg(database)
        .arg(sql)
        .output()
        .expect("the sqlite3 shell runs")
}

/// What a command printed, or why it failed.
fn outcome(what: &str, output: &Output) -> Result<String, String> {
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if output.status.success() && !stderr.contains("rror") {
        Ok(stdout)
    } else {
        Err(format!("{what}: {} {stdout} {stderr}", output.status))
    }
}

/// undersign's own command line on the server's instance.
struct Commands {
    database_url: String,
    dir: PathBuf,
}

impl Commands {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_undersign"))
            .args(args)
            .env("DATABASE_URL", &self.database_url)
            .env("UNDERSIGN_SECRET_KEY_FILE", self.dir.join("secret.key"))
            .env("UNDERSIGN_DATA_KEY_FILE", self.dir.join("data.key"))
            .env("UNDERSIGN_SIGNING_KEY_FILE", self.dir.join("signing.key"))
            .env("UNDERSIGN_MAIL_DIR", self.dir.join("mail"))
            .env("RUST_LOG", "warn")
            .output()
            .expect("the undersign binary runs")
    }
}

/// The server's open files (this process's, since it runs in-process) that are the WAL `wal`
/// deleted from the disk. Reading the links opens nothing. Other tests' databases, removed
/// when they end, do not count.
fn deleted_wal(wal: &Path) -> Vec<String> {
    let deleted = format!("{} (deleted)", wal.display());
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| *target == deleted)
        .collect()
}

/// Runs `step` over and over on its own thread until `stop`, keeping every error; returns how
/// many times it ran.
fn repeat(
    stop: &Arc<AtomicBool>,
    errors: &Arc<Mutex<Vec<String>>>,
    mut step: impl FnMut() -> Result<(), String> + Send + 'static,
) -> std::thread::JoinHandle<usize> {
    let (stop, errors) = (stop.clone(), errors.clone());
    std::thread::spawn(move || {
        let mut runs = 0;
        while !stop.load(Ordering::SeqCst) {
            if let Err(error) = step() {
                errors.lock().unwrap().push(error);
            }
            runs += 1;
        }
        runs
    })
}

#[actix_web::test]
async fn other_processes_reading_and_backing_up_under_signing_load_break_nothing() {
    let version = Command::new("sqlite3").arg("-version").output();
    assert!(
        version.is_ok_and(|output| output.status.success()),
        "this test needs the sqlite3 shell (Debian package sqlite3) on the PATH"
    );
    let app = TestApp::spawn_with(Backend::Sqlite, |settings| {
        settings.sqlite_wal_restart_pages = RESTART_PAGES;
    })
    .await;
    app.create_petition(SLUG).await;
    let file = PathBuf::from(app.database.url.strip_prefix("sqlite://").unwrap());
    let wal = PathBuf::from(format!("{}-wal", file.display()));
    let commands = Arc::new(Commands {
        database_url: app.database.url.clone(),
        dir: app.database.dir.clone(),
    });

    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut readers = Vec::new();
    // The shell counts rows; the count can only grow.
    readers.push(repeat(&stop, &errors, {
        let (file, mut last) = (file.clone(), 0_u64);
        move || {
            let count = outcome(
                "sqlite3 count",
                &sqlite3(&file, "SELECT count(*) FROM signatures"),
            )?;
            let count: u64 = count.parse().map_err(|_| format!("count: {count:?}"))?;
            if count < last {
                return Err(format!("the count went back from {last} to {count}"));
            }
            last = count;
            std::thread::sleep(Duration::from_millis(50));
            let check = outcome("sqlite3 quick_check", &sqlite3(&file, "PRAGMA quick_check"))?;
            match check.as_str() {
                "ok" => Ok(()),
                _ => Err(format!("quick_check: {check}")),
            }
        }
    }));
    // undersign's commands: one after the other, each opening and closing its own connection.
    let command_runs = Arc::new(AtomicUsize::new(0));
    readers.push(repeat(&stop, &errors, {
        let (commands, runs) = (commands.clone(), command_runs.clone());
        move || {
            let list = outcome("petition list", &commands.run(&["petition", "list"]))?;
            if !list.contains(SLUG) {
                return Err(format!("petition list does not name the petition: {list}"));
            }
            outcome(
                "export",
                &commands.run(&["export", "--petition", SLUG, "--format", "csv"]),
            )?;
            outcome("purge --dry-run", &commands.run(&["purge", "--dry-run"]))?;
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }));
    // The server's descriptors, sampled.
    let deleted = Arc::new(Mutex::new(HashSet::<String>::new()));
    readers.push(repeat(&stop, &errors, {
        let (deleted, wal) = (deleted.clone(), wal.clone());
        move || {
            deleted.lock().unwrap().extend(deleted_wal(&wal));
            std::thread::sleep(Duration::from_millis(10));
            Ok(())
        }
    }));
    // Live backups, with the shell's backup API and with VACUUM INTO, once the load is on.
    let backup = app.database.dir.join("backup.db");
    let vacuumed = app.database.dir.join("vacuumed.db");
    let backups = {
        let (file, backup, vacuumed) = (file.clone(), backup.clone(), vacuumed.clone());
        std::thread::spawn(move || {
            std::thread::sleep(LOAD / 4);
            let dot_backup = format!(".backup '{}'", backup.display());
            outcome(".backup", &sqlite3(&file, &dot_backup))?;
            std::thread::sleep(LOAD / 4);
            let vacuum = format!("VACUUM INTO '{}'", vacuumed.display());
            outcome("VACUUM INTO", &sqlite3(&file, &vacuum)).map(|_| ())
        })
    };

    // The signing load: every client signs with addresses that land all over the index.
    let started = Instant::now();
    let largest_wal = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for client_id in 0..CLIENTS {
        let url = app.url(&format!("/api/v1/petitions/{SLUG}/signatures"));
        let largest_wal = largest_wal.clone();
        let wal = wal.clone();
        clients.push(actix_web::rt::spawn(async move {
            let client = awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish();
            let mut acknowledged = Vec::new();
            for n in 0_u64.. {
                if started.elapsed() >= LOAD {
                    break;
                }
                let scattered = (n * CLIENTS as u64 + client_id as u64)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .rotate_left(17);
                let email = format!("signer.{scattered:016x}@example.org");
                let body = serde_json::json!({
                    "name": "Ana Ivanova", "email": email, "country": "NO", "consent": true,
                });
                let mut response = match client.post(&url).send_json(&body).await {
                    Ok(response) => response,
                    Err(error) => return (acknowledged, Some(format!("signing: {error}"))),
                };
                if response.status() != StatusCode::ACCEPTED {
                    let text = response.body().await.unwrap_or_default();
                    let text = String::from_utf8_lossy(&text).into_owned();
                    let error = format!("signing: {} {text}", response.status());
                    return (acknowledged, Some(error));
                }
                acknowledged.push(email);
                // The WAL's size on disk (a stat; it is reused, not shrunk, when it starts over).
                if let Ok(metadata) = std::fs::metadata(&wal) {
                    largest_wal.fetch_max(metadata.len() as usize, Ordering::SeqCst);
                }
            }
            (acknowledged, None)
        }));
    }
    // A client stops at the server's first error; the checks below say what went wrong first.
    let mut acknowledged = Vec::new();
    let mut signing_errors = Vec::new();
    for client in clients {
        let (emails, error) = client.await.unwrap();
        acknowledged.extend(emails);
        signing_errors.extend(error);
    }
    stop.store(true, Ordering::SeqCst);
    let runs: Vec<usize> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let backed_up = backups.join().unwrap();
    deleted.lock().unwrap().extend(deleted_wal(&wal));
    let errors = errors.lock().unwrap().clone();
    eprintln!(
        "{} signings acknowledged, {} refused; reader rounds {runs:?} ({} failed), command \
         rounds {} in full; the WAL reached {} KiB; first errors: {:?} {:?}",
        acknowledged.len(),
        signing_errors.len(),
        errors.len(),
        command_runs.load(Ordering::SeqCst),
        largest_wal.load(Ordering::SeqCst) / 1024,
        errors.first(),
        signing_errors.first(),
    );

    let deleted = deleted.lock().unwrap().clone();
    assert!(
        deleted.is_empty(),
        "the server wrote to a deleted WAL: {deleted:?}"
    );
    assert!(
        errors.is_empty(),
        "{} reader errors, the first: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(
        signing_errors.is_empty(),
        "the server failed {} clients, the first: {}",
        signing_errors.len(),
        signing_errors[0]
    );
    assert!(
        runs[0] >= 5 && command_runs.load(Ordering::SeqCst) >= 2,
        "the readers ran too seldom to prove anything: {runs:?}"
    );
    let largest_wal = largest_wal.load(Ordering::SeqCst);
    assert!(
        largest_wal > 4096 * RESTART_PAGES as usize,
        "the WAL never grew past the restart threshold ({largest_wal} bytes)"
    );
    assert!(
        acknowledged.len() > 200,
        "only {} signings in {LOAD:?}",
        acknowledged.len()
    );

    let integrity = outcome("integrity_check", &sqlite3(&file, "PRAGMA integrity_check"));
    assert_eq!(integrity.as_deref(), Ok("ok"));
    let stored: HashSet<String> = app
        .db(|conn| {
            signatures::table
                .select(signatures::email_key)
                .load::<String>(conn)
                .unwrap()
        })
        .await
        .into_iter()
        .collect();
    let lost = acknowledged
        .iter()
        .filter(|email| !stored.contains(&app.email_key(email)))
        .count();
    assert_eq!(lost, 0, "of {} acknowledged signatures", acknowledged.len());

    backed_up.unwrap_or_else(|error| panic!("a live backup failed: {error}"));
    for copy in [&backup, &vacuumed] {
        let integrity = outcome("backup integrity", &sqlite3(copy, "PRAGMA integrity_check"));
        assert_eq!(integrity.as_deref(), Ok("ok"), "{}", copy.display());
        let count = outcome(
            "backup count",
            &sqlite3(copy, "SELECT count(*) FROM signatures"),
        );
        assert!(
            count.as_ref().is_ok_and(|count| count != "0"),
            "{}: {count:?}",
            copy.display()
        );
        // undersign opens the copy as its own database.
        let from_copy = Commands {
            database_url: format!("sqlite://{}", copy.display()),
            dir: app.database.dir.clone(),
        };
        let list = outcome("petition list", &from_copy.run(&["petition", "list"]));
        assert!(
            list.as_ref().is_ok_and(|list| list.contains(SLUG)),
            "{}: {list:?}",
            copy.display()
        );
    }
}
