//! Start-up and the command line: clear errors for bad configuration, petitions from the CLI,
//! and the demo petition.

use std::process::Command;

use undersign::config::Settings;

use crate::helpers::{Backend, TestApp, TestDatabase};

#[actix_web::test]
async fn unknown_database_schemes_are_refused_with_the_password_hidden() {
    let settings = Settings {
        database_url: "mysql://admin:hunter2@localhost/undersign".to_owned(),
        bind: "127.0.0.1:0".to_owned(),
        ..Settings::default()
    };
    let error = undersign::Application::build(settings)
        .await
        .err()
        .expect("refused");
    let message = format!("{error:#}");
    assert!(
        message.contains("mysql://admin:***@localhost/undersign"),
        "{message}"
    );
    assert!(!message.contains("hunter2"));
}

#[actix_web::test]
async fn an_unreachable_database_is_a_clear_error() {
    let settings = Settings {
        database_url: "postgres://admin:hunter2@127.0.0.1:1/undersign".to_owned(),
        bind: "127.0.0.1:0".to_owned(),
        ..Settings::default()
    };
    let error = undersign::Application::build(settings)
        .await
        .err()
        .expect("refused");
    let message = format!("{error:#}");
    assert!(
        message.contains("cannot connect to database postgres://admin:***@127.0.0.1:1/undersign"),
        "{message}"
    );
    assert!(!message.contains("hunter2"));
}

fn undersign(database_url: &str, args: &[&str]) -> std::process::Output {
    undersign_with_stdin(database_url, args, "")
}

#[test]
fn petitions_are_created_and_listed_from_the_command_line() {
    let database = TestDatabase::create(Backend::Sqlite);
    assert!(undersign(&database.url, &["migrate"]).status.success());
    let body = std::env::temp_dir().join(format!("undersign-body-{}.md", std::process::id()));
    std::fs::write(&body, "Dear Minister,\n\nFree them all.").unwrap();
    let body = body.to_str().unwrap();

    let created = undersign(
        &database.url,
        &[
            "petition",
            "create",
            "--slug",
            "free-them",
            "--title",
            "Free them all",
            "--body-file",
            body,
            "--summary",
            "Now.",
            "--target",
            "Jonas Gahr Støre, Prime Minister",
            "--target",
            "Espen Barth Eide, Minister of Foreign Affairs",
            "--goal",
            "5000",
            "--closes-at",
            "2099-12-31",
        ],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&created.stdout).trim(),
        "https://sign.example.org/p/free-them"
    );

    let duplicate = undersign(
        &database.url,
        &[
            "petition",
            "create",
            "--slug",
            "free-them",
            "--title",
            "Again",
            "--body-file",
            body,
        ],
    );
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));

    let invalid = undersign(
        &database.url,
        &[
            "petition",
            "create",
            "--slug",
            "Bad Slug",
            "--title",
            "",
            "--body-file",
            body,
        ],
    );
    assert!(!invalid.status.success());
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(
        stderr.contains("slug:") && stderr.contains("title:"),
        "{stderr}"
    );

    let listed = undersign(&database.url, &["petition", "list"]);
    assert!(listed.status.success());
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        stdout.contains("free-them") && stdout.contains("open") && stdout.contains("Free them all"),
        "{stdout}"
    );

    let help = Command::new(env!("CARGO_BIN_EXE_undersign"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for variable in [
        "DATABASE_URL",
        "UNDERSIGN_BIND",
        "UNDERSIGN_BASE_URL",
        "UNDERSIGN_SMTP_URL",
        "UNDERSIGN_MAIL_DIR",
        "UNDERSIGN_MAIL_FROM",
    ] {
        assert!(help.contains(variable), "--help documents {variable}");
    }
    let _ = std::fs::remove_file(body);
}

#[test]
fn a_bad_database_url_stops_the_command_line_with_a_message() {
    let output = undersign("mysql://u:pw@h/db", &["migrate"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unsupported scheme") && !stderr.contains(":pw@"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn the_demo_petition_is_seeded_once() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for _ in 0..2 {
        app.db(|conn| {
            undersign::petitions::demo::seed_if_absent(conn, undersign::core::clock::now()).unwrap()
        })
        .await;
    }
    let list = app.get("/api/v1/petitions").await.json();
    let petitions = list["petitions"].as_array().unwrap();
    assert_eq!(petitions.len(), 1);
    assert_eq!(petitions[0]["slug"], "belarus-political-prisoners");
    let page = app.get("/p/belarus-political-prisoners").await;
    assert!(page.body.contains("Belarus"));
    assert!(page.body.contains("Minister of Foreign Affairs of Norway"));
}

fn undersign_with_stdin(database_url: &str, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    // `migrate` makes the data key: beside the test's database, where the test app reads it.
    let data_key = database_url
        .strip_prefix("sqlite://")
        .and_then(|path| std::path::Path::new(path).parent())
        .map(|dir| dir.join("data.key"))
        .unwrap_or_else(|| std::env::temp_dir().join("undersign-startup-data.key"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_undersign"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("UNDERSIGN_DATA_KEY_FILE", data_key)
        .env("UNDERSIGN_BASE_URL", "https://sign.example.org")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[actix_web::test]
async fn accounts_tokens_and_organizers_from_the_command_line() {
    let database = TestDatabase::create(Backend::Sqlite);
    let url = database.url.clone();
    assert!(undersign(&url, &["migrate"]).status.success());
    let created = undersign_with_stdin(
        &url,
        &[
            "user",
            "create",
            "--email",
            "Olga@Example.org",
            "--role",
            "organizer",
            "--password-stdin",
        ],
        "a sufficiently long password\n",
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let short = undersign_with_stdin(
        &url,
        &[
            "user",
            "create",
            "--email",
            "x@example.org",
            "--role",
            "organizer",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    let bad_role = undersign_with_stdin(
        &url,
        &[
            "user",
            "create",
            "--email",
            "x@example.org",
            "--role",
            "king",
            "--password-stdin",
        ],
        "a sufficiently long password\n",
    );
    assert!(!bad_role.status.success());

    let listed = undersign(&url, &["user", "list"]);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        stdout.contains("olga@example.org") && stdout.contains("organizer"),
        "{stdout}"
    );

    let changed = undersign_with_stdin(
        &url,
        &[
            "user",
            "set-password",
            "--email",
            "olga@example.org",
            "--password-stdin",
        ],
        "another long password\n",
    );
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );

    let body = database.dir.join("body.md");
    std::fs::write(&body, "Dear Minister,\n\nFree them all.").unwrap();
    let draft = undersign(
        &url,
        &[
            "petition",
            "create",
            "--slug",
            "quiet-draft",
            "--title",
            "A draft",
            "--body-file",
            body.to_str().unwrap(),
            "--organizer",
            "olga@example.org",
            "--draft",
        ],
    );
    assert!(
        draft.status.success(),
        "{}",
        String::from_utf8_lossy(&draft.stderr)
    );
    let unknown_organizer = undersign(
        &url,
        &[
            "petition",
            "create",
            "--slug",
            "other",
            "--title",
            "Other",
            "--body-file",
            body.to_str().unwrap(),
            "--organizer",
            "nobody@example.org",
        ],
    );
    assert!(!unknown_organizer.status.success());
    assert!(String::from_utf8_lossy(&unknown_organizer.stderr)
        .contains("no account for nobody@example.org"));

    let token = undersign(
        &url,
        &[
            "token",
            "create",
            "--user",
            "olga@example.org",
            "--name",
            "reports",
        ],
    );
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let stdout = String::from_utf8_lossy(&token.stdout);
    let secret = stdout.lines().last().unwrap().trim().to_owned();
    assert!(
        secret.starts_with("ust_") && !secret.contains(' '),
        "{stdout}"
    );

    // The same database served: the draft is private, the token and password work.
    let smtp = crate::helpers::SmtpReceiver::start().await;
    let settings = crate::helpers::test_settings(&database, &smtp.url());
    let app = TestApp::start(settings, smtp, database).await;
    assert_eq!(
        app.get("/p/quiet-draft").await.status,
        awc::http::StatusCode::NOT_FOUND
    );
    let api = app.api_get(&secret, "/api/v1/admin/petitions").await;
    assert_eq!(api.status, awc::http::StatusCode::OK);
    let petitions = api.json()["petitions"].as_array().unwrap().clone();
    assert_eq!(petitions.len(), 1);
    assert_eq!(petitions[0]["slug"], "quiet-draft");
    assert_eq!(petitions[0]["status"], "draft");
    app.sign_in("olga@example.org", "another long password")
        .await;
}
