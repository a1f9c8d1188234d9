//! The command line acts on the server's instance or refuses: it uses the base URL `serve`
//! recorded, creates no database (only `serve` and `migrate` do), and delivers a petition with
//! no confirmed signature only when told to. Each runs the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use awc::http::StatusCode;
use diesel::prelude::*;
use undersign::db::schema::{deliveries, petitions};

use crate::backend_tests;
use crate::delivery::{manifest_of, unzip};
use crate::helpers::{Backend, TestApp, TestDatabase};
use crate::moderation::sign_and_confirm;

backend_tests!(
    deliver_signs_the_url_the_server_recorded_and_refuses_another,
    an_unmigrated_outdated_or_newer_schema_is_refused_and_left_alone,
    an_empty_petition_is_delivered_only_on_purpose,
    the_web_form_delivers_an_empty_petition_only_when_ticked,
);

/// A run of the binary in `dir`, with only the environment given (and PATH).
fn run_in(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_undersign"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the binary runs")
}

async fn run_async(dir: PathBuf, env: Vec<(String, String)>, args: Vec<String>) -> Output {
    actix_web::rt::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_in(&dir, &env, &args)
    })
    .await
    .unwrap()
}

/// Runs the binary against the app's database and keys, with `extra` environment.
async fn undersign(app: &TestApp, extra: &[(&str, &str)], args: &[&str]) -> Output {
    let dir = app.database.dir.clone();
    let mut env = vec![
        ("DATABASE_URL".to_owned(), app.database.url.clone()),
        key_var("UNDERSIGN_SIGNING_KEY_FILE", &dir, "signing.key"),
        key_var("UNDERSIGN_SECRET_KEY_FILE", &dir, "secret.key"),
        key_var("UNDERSIGN_DATA_KEY_FILE", &dir, "data.key"),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    run_async(dir, env, args.iter().map(|arg| arg.to_string()).collect()).await
}

fn key_var(name: &str, dir: &Path, file: &str) -> (String, String) {
    (name.to_owned(), dir.join(file).display().to_string())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The names in a folder, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "undersign-cli-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_command_run_from_another_folder_creates_nothing_and_says_where_it_looked() {
    let elsewhere = temp_dir("elsewhere");
    let inputs = temp_dir("inputs");
    let body = inputs.join("body.md");
    std::fs::write(&body, "Dear Minister,\n\nFree them all.").unwrap();
    let body = body.to_str().unwrap();
    let commands: [&[&str]; 9] = [
        &["user", "list"],
        &["petition", "list"],
        &[
            "petition",
            "create",
            "--slug",
            "free-them",
            "--title",
            "Free them",
            "--body-file",
            body,
        ],
        &["token", "create", "--user", "olga@example.org"],
        &["purge", "--dry-run"],
        &["export", "--petition", "free-them", "--format", "csv"],
        &[
            "export",
            "--petition",
            "x",
            "--format",
            "pdf",
            "--out",
            "x.pdf",
        ],
        &[
            "deliver",
            "--petition",
            "x",
            "--to",
            "Parliament",
            "--out",
            "b.zip",
            "--allow-empty",
        ],
        &[
            "user",
            "create",
            "--email",
            "olga@example.org",
            "--role",
            "admin",
            "--password-stdin",
        ],
    ];
    let expected = elsewhere.join("undersign.db");
    for args in commands {
        // The default DATABASE_URL, sqlite://undersign.db, is relative to the current folder.
        let output = run_in(
            &elsewhere,
            &[("UNDERSIGN_BASE_URL", "https://sign.example.org")],
            args,
        );
        assert!(!output.status.success(), "{args:?} succeeded");
        let message = stderr(&output);
        assert!(
            message.contains(&format!("there is no database at {}", expected.display()))
                && message.contains("relative to the current folder")
                && message.contains("DATABASE_URL")
                && message.contains("undersign migrate"),
            "{args:?}: {message}"
        );
        assert_eq!(
            listing(&elsewhere),
            Vec::<String>::new(),
            "{args:?} left files"
        );
    }
    // An absolute DATABASE_URL is named as it is.
    let missing = inputs.join("nowhere").join("undersign.db");
    let url = format!("sqlite://{}", missing.display());
    let output = run_in(&elsewhere, &[("DATABASE_URL", &url)], &["user", "list"]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains(&format!("there is no database at {}", missing.display()))
            && !message.contains("relative to the current folder"),
        "{message}"
    );
    assert!(!missing.parent().unwrap().exists());

    // `migrate` is the way to a new database, and then the commands work.
    let migrated = run_in(&elsewhere, &[], &["migrate"]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert!(expected.is_file());
    let listed = run_in(&elsewhere, &[], &["user", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(stdout(&listed).contains("No accounts yet"));
    // The data key is the server's (`migrate` made one): a command does not make a new one.
    assert!(elsewhere.join("undersign-data.key").is_file());
    std::fs::remove_file(elsewhere.join("undersign-data.key")).unwrap();
    let export = run_in(
        &elsewhere,
        &[],
        &["export", "--petition", "free-them", "--format", "csv"],
    );
    assert!(!export.status.success());
    assert!(
        stderr(&export).contains("there is no data key at")
            && stderr(&export).contains("UNDERSIGN_DATA_KEY_FILE"),
        "{}",
        stderr(&export)
    );
    assert!(!elsewhere.join("undersign-data.key").exists());
    let _ = std::fs::remove_dir_all(&elsewhere);
    let _ = std::fs::remove_dir_all(&inputs);
}

#[test]
fn the_public_address_must_be_known_before_a_command_prints_or_signs_it() {
    let dir = temp_dir("no-url");
    assert!(run_in(&dir, &[], &["migrate"]).status.success());
    std::fs::write(dir.join("body.md"), "Dear Minister,\n\nFree them all.").unwrap();
    let create = [
        "petition",
        "create",
        "--slug",
        "free-them",
        "--title",
        "Free them",
        "--body-file",
        "body.md",
    ];
    // No server has started on this database and no UNDERSIGN_BASE_URL is set.
    let refused = run_in(&dir, &[], &create);
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("public address is unknown") && message.contains("UNDERSIGN_BASE_URL"),
        "{message}"
    );
    let listed = run_in(&dir, &[], &["petition", "list"]);
    assert!(
        stdout(&listed).contains("No petitions yet"),
        "nothing was created"
    );
    let created = run_in(
        &dir,
        &[("UNDERSIGN_BASE_URL", "https://sign.example.org")],
        &create,
    );
    assert!(created.status.success(), "{}", stderr(&created));
    assert_eq!(
        stdout(&created).trim(),
        "https://sign.example.org/p/free-them"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn deliver_signs_the_url_the_server_recorded_and_refuses_another(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    sign_and_confirm(&app, "free-them", "ana@example.org", "Ana Ivanova", "NO").await;
    let out = app.database.dir.join("bundle.zip");
    let deliver = [
        "deliver",
        "--petition",
        "free-them",
        "--to",
        "Prime Minister of Norway",
        "--out",
        out.to_str().unwrap(),
    ];

    // A shell where UNDERSIGN_BASE_URL names another address: refused, nothing written.
    let other = [("UNDERSIGN_BASE_URL", "http://127.0.0.1:8080")];
    let refused = undersign(&app, &other, &deliver).await;
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("UNDERSIGN_BASE_URL is http://127.0.0.1:8080")
            && message.contains(&format!("serves under {}", app.base_url))
            && message.contains("--use-env-base-url"),
        "{message}"
    );
    assert!(!out.exists() && !app.database.dir.join("bundle.zip.partial").exists());
    assert_eq!(app.count_rows("deliveries").await, 0);
    assert!(
        !app.database.dir.join("signing.key").exists(),
        "no key made for nothing"
    );
    // The same goes for the URL printed by `petition create`: and nothing is created.
    let body = app.database.dir.join("body.md");
    std::fs::write(&body, "Dear Minister,\n\nAct.").unwrap();
    let create = [
        "petition",
        "create",
        "--slug",
        "second",
        "--title",
        "Second",
        "--body-file",
        body.to_str().unwrap(),
    ];
    let refused = undersign(&app, &other, &create).await;
    assert!(!refused.status.success(), "{}", stdout(&refused));
    let count = app
        .db(|conn| petitions::table.count().get_result::<i64>(conn).unwrap())
        .await;
    assert_eq!(count, 1);
    // Said explicitly, the environment's URL wins.
    let mut overridden = create.to_vec();
    overridden.push("--use-env-base-url");
    let created = undersign(&app, &other, &overridden).await;
    assert!(created.status.success(), "{}", stderr(&created));
    assert_eq!(stdout(&created).trim(), "http://127.0.0.1:8080/p/second");

    // Without UNDERSIGN_BASE_URL, the URL the server recorded is signed into the bundle.
    let delivered = undersign(&app, &[], &deliver).await;
    assert!(delivered.status.success(), "{}", stderr(&delivered));
    let entries = unzip(&std::fs::read(&out).unwrap());
    let manifest = manifest_of(&entries);
    assert_eq!(manifest.instance_url, app.base_url);
    let readme =
        String::from_utf8(crate::delivery::entry(&entries, "README.txt").to_vec()).unwrap();
    assert!(readme.contains(&app.base_url), "{readme}");
    assert!(!readme.contains("127.0.0.1:8080"));
    let printed = undersign(
        &app,
        &[],
        &[
            "petition",
            "create",
            "--slug",
            "third",
            "--title",
            "Third",
            "--body-file",
            body.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(stdout(&printed).trim(), format!("{}/p/third", app.base_url));
}

async fn an_unmigrated_outdated_or_newer_schema_is_refused_and_left_alone(backend: Backend) {
    let database = TestDatabase::create(backend);
    let env = [("DATABASE_URL", database.url.as_str())];
    let dir = database.dir.clone();
    let tables = |database: &TestDatabase| -> Vec<String> {
        let manager = undersign::db::ConnectionManager::new(
            undersign::db::DatabaseUrl::parse(&database.url).unwrap(),
        );
        let mut conn = diesel::r2d2::ManageConnection::connect(&manager).unwrap();
        #[derive(QueryableByName)]
        struct Name {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
        }
        let sql = match &conn {
            undersign::db::AnyConnection::Sqlite(_) => {
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            }
            undersign::db::AnyConnection::Postgresql(_) => {
                "SELECT tablename AS name FROM pg_catalog.pg_tables \
                 WHERE schemaname = current_schema() ORDER BY tablename"
            }
        };
        diesel::sql_query(sql)
            .load::<Name>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|row| row.name)
            .collect()
    };
    let execute = |database: &TestDatabase, sql: &str| {
        let manager = undersign::db::ConnectionManager::new(
            undersign::db::DatabaseUrl::parse(&database.url).unwrap(),
        );
        let mut conn = diesel::r2d2::ManageConnection::connect(&manager).unwrap();
        diesel::connection::SimpleConnection::batch_execute(&mut conn, sql).unwrap();
    };
    // A database with someone else's table in it (an empty PostgreSQL database would do too).
    execute(&database, "CREATE TABLE unrelated (id INTEGER PRIMARY KEY)");
    let refused = run_in(&dir, &env, &["user", "list"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("has no undersign tables")
            && stderr(&refused).contains("undersign migrate"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(tables(&database), ["unrelated"]);

    assert!(run_in(&dir, &env, &["migrate"]).status.success());
    let all = tables(&database);
    assert!(all.contains(&"instance".to_owned()));
    // One migration short, as if this binary were newer than the database.
    execute(
        &database,
        "DROP TABLE instance; \
         DELETE FROM __diesel_schema_migrations WHERE version = '20261203100000'",
    );
    let refused = run_in(&dir, &env, &["petition", "list"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("is older than this undersign: 1 migration(s)"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !tables(&database).contains(&"instance".to_owned()),
        "nothing created"
    );

    // Migrated by a newer undersign.
    assert!(run_in(&dir, &env, &["migrate"]).status.success());
    execute(
        &database,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000000')",
    );
    let refused = run_in(&dir, &env, &["user", "list"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("migrated by a newer undersign (migration 29990101000000"),
        "{}",
        stderr(&refused)
    );
}

async fn an_empty_petition_is_delivered_only_on_purpose(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("nobody-yet").await;
    let out = app.database.dir.join("empty.zip");
    let mut deliver = vec![
        "deliver",
        "--petition",
        "nobody-yet",
        "--to",
        "Parliament",
        "--out",
        out.to_str().unwrap(),
    ];
    // Standard input is no terminal here, so there is no one to ask.
    let refused = undersign(&app, &[], &deliver).await;
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("has no confirmed signatures") && message.contains("--allow-empty"),
        "{message}"
    );
    assert!(!out.exists());
    assert_eq!(app.count_rows("deliveries").await, 0);
    let status = app
        .db(|conn| {
            petitions::table
                .filter(petitions::slug.eq("nobody-yet"))
                .select(petitions::status)
                .first::<String>(conn)
                .unwrap()
        })
        .await;
    assert_eq!(status, "open");

    deliver.push("--allow-empty");
    let delivered = undersign(&app, &[], &deliver).await;
    assert!(delivered.status.success(), "{}", stderr(&delivered));
    assert!(stdout(&delivered).contains("0 signatures"));
    assert_eq!(
        manifest_of(&unzip(&std::fs::read(&out).unwrap()))
            .signatures
            .total,
        0
    );
    assert_eq!(app.count_rows("deliveries").await, 1);
}

async fn the_web_form_delivers_an_empty_petition_only_when_ticked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("nobody-yet").await;
    app.create_petition("signed").await;
    let session = app
        .signed_in(
            "olga@example.org",
            undersign::organizers::accounts::Role::Admin,
        )
        .await;
    let page = app
        .get_as(&session, "/admin/petitions/nobody-yet/deliveries")
        .await;
    assert!(
        page.body
            .contains(r#"name="allow_empty" type="checkbox" value="yes" required"#),
        "{}",
        page.body
    );
    sign_and_confirm(&app, "signed", "ana@example.org", "Ana Ivanova", "NO").await;
    let page = app
        .get_as(&session, "/admin/petitions/signed/deliveries")
        .await;
    assert!(!page.body.contains("allow_empty"), "asked only when empty");

    let refused = app
        .post_form_as(
            &session,
            "/admin/petitions/nobody-yet/deliver",
            "to=Parliament",
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused
        .body
        .contains("No signature is confirmed yet: tick the box"));
    assert!(
        refused.body.contains(r#"value="Parliament""#),
        "what was typed stays"
    );
    assert_eq!(app.count_rows("deliveries").await, 0);

    let delivered = app
        .post_download_as(
            &session,
            "/admin/petitions/nobody-yet/deliver",
            "to=Parliament&allow_empty=yes",
        )
        .await;
    assert_eq!(delivered.status, StatusCode::OK);
    assert_eq!(manifest_of(&unzip(&delivered.body)).signatures.total, 0);
    let recorded = app
        .db(|conn| deliveries::table.count().get_result::<i64>(conn).unwrap())
        .await;
    assert_eq!(recorded, 1);
}
