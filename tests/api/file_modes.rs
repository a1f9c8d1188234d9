//! Everything the server writes is readable by its owner only: the SQLite database, its WAL and
//! SHM files and the `.eml` files of the file mail transport are 0600, folders it creates 0700.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use awc::http::StatusCode;

use crate::helpers::{test_settings, Backend, TestApp};

const SLUG: &str = "file-modes";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The database file, its WAL and its SHM.
fn sqlite_files(app: &TestApp) -> Vec<PathBuf> {
    let main = app.database.url.strip_prefix("sqlite://").unwrap();
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{main}{suffix}")))
        .collect()
}

async fn wait_for_eml(dir: &Path) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = std::fs::read_dir(dir).ok().and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .find(|path| path.extension().is_some_and(|ext| ext == "eml"))
        });
        if let Some(path) = found {
            return path;
        }
        assert!(Instant::now() < deadline, "no .eml file was written");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn the_database_and_the_mail_files_are_readable_by_their_owner_only() {
    let mut mail_dir = PathBuf::new();
    let app = TestApp::spawn_with(Backend::Sqlite, |settings| {
        // The file transport: no SMTP server.
        settings.smtp_url = None;
        settings.mail_dir = settings.data_key_file.with_file_name("mail");
        mail_dir = settings.mail_dir.clone();
    })
    .await;
    app.create_petition(SLUG).await;
    let response = app.sign_json(SLUG, "owner.only@example.org").await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
    let eml = wait_for_eml(&mail_dir).await;

    for file in sqlite_files(&app).iter().chain([&eml]) {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&mail_dir), 0o700, "{}", mail_dir.display());
}

#[actix_web::test]
async fn a_database_created_world_readable_is_made_private_at_start() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let files = sqlite_files(&app);
    let (smtp, database) = app.stop().await;
    // As an earlier version left them (a change of mode opens nothing).
    for file in &files {
        if file.exists() {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let settings = test_settings(&database, &smtp.url());
    let app = TestApp::start(settings, smtp, database).await;
    app.create_petition(SLUG).await;
    for file in sqlite_files(&app) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
