//! A running undersign for each test: its own database (a SQLite file, or a fresh PostgreSQL
//! database on the server `postgres_admin_url` names), a real SMTP receiver over TCP, and an
//! HTTP client that does not follow redirects.

pub mod smtp;

use std::path::PathBuf;
use std::time::Duration;

use awc::http::StatusCode;
use diesel::prelude::*;
use undersign::config::{OutboxSettings, Settings};
use undersign::core::email::EmailAddress;
use undersign::core::status::PetitionStatus;
use undersign::db::{AnyConnection, DbPool};
use undersign::organizers::access;
use undersign::organizers::accounts::{self, Role};
use undersign::organizers::passwords::{self, Password};
use undersign::petitions::model::{NewPetition, NewTarget};
use undersign::safety::encryption::DataKey;

pub use smtp::SmtpReceiver;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Backend)` as two tests: `sqlite::name` and `postgres::name`.
/// The PostgreSQL half fails, saying what to do, when no server answers; it is skipped only
/// when asked (`UNDERSIGN_TEST_POSTGRES=skip`, see build.rs), and then shows as ignored.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                #[cfg_attr(undersign_skip_postgres, ignore = "UNDERSIGN_TEST_POSTGRES=skip")]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// The PostgreSQL server the tests create their databases on: `UNDERSIGN_TEST_POSTGRES_URL`,
/// or else the local one README names, as the current user.
pub fn postgres_admin_url() -> String {
    postgres_url_from_env()
        .unwrap_or_else(|| format!("postgres://{}@127.0.0.1:5432/postgres", current_user()))
}

fn postgres_url_from_env() -> Option<String> {
    std::env::var("UNDERSIGN_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// `$USER`, as README says; `$LOGNAME` or `id -un` where it is unset (containers, CI runners),
/// which is also the name libpq would use.
fn current_user() -> String {
    for variable in ["USER", "LOGNAME"] {
        if let Ok(user) = std::env::var(variable) {
            if !user.trim().is_empty() {
                return user;
            }
        }
    }
    let output = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("`id -un` runs, to name the PostgreSQL user (or set USER)");
    let user = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        output.status.success() && !user.is_empty(),
        "cannot tell the current user for the PostgreSQL tests: set USER or UNDERSIGN_TEST_POSTGRES_URL"
    );
    user
}

/// The URL with any password replaced by `***`, for messages.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Why a PostgreSQL test cannot run, and the ways out.
fn no_postgres(admin_url: &str, error: &dyn std::fmt::Display) -> String {
    format!(
        "cannot connect to PostgreSQL for the PostgreSQL tests at {} ({}): {}\n\
         Start that server (or create the role), point the tests at another with \
         UNDERSIGN_TEST_POSTGRES_URL=postgres://USER[:PASSWORD]@HOST:PORT/DATABASE \
         (a role that may create databases), or skip them with \
         UNDERSIGN_TEST_POSTGRES=skip cargo test (they then show as ignored).",
        without_password(admin_url),
        match postgres_url_from_env() {
            Some(_) => "from UNDERSIGN_TEST_POSTGRES_URL",
            None => "the local server README names, as the current user",
        },
        error.to_string().trim()
    )
}

fn random_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A database that exists for one test and is removed afterwards, with a folder for the
/// test's other files (the secret key, mail files).
pub struct TestDatabase {
    pub url: String,
    pub dir: PathBuf,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub fn create(backend: Backend) -> TestDatabase {
        let dir = std::env::temp_dir().join(format!("undersign-test-{}", random_suffix()));
        let database = match backend {
            Backend::Sqlite => TestDatabase {
                url: format!("sqlite://{}", dir.join("undersign.db").display()),
                dir,
                postgres: None,
            },
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("undersign_test_{}", random_suffix());
                let mut admin = PgConnection::establish(&admin_url)
                    .unwrap_or_else(|e| panic!("{}", no_postgres(&admin_url, &e)));
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .unwrap_or_else(|e| {
                        panic!(
                            "cannot create a test database on {} (the role needs CREATEDB): {e}",
                            without_password(&admin_url)
                        )
                    });
                let url = replace_database(&admin_url, &name);
                TestDatabase {
                    url,
                    dir,
                    postgres: Some((admin_url, name)),
                }
            }
        };
        // Made only now, so that a test failing to reach PostgreSQL leaves no folder behind.
        std::fs::create_dir_all(&database.dir).unwrap();
        database
    }
}

/// `postgres://u@h:5432/postgres?x=y` with the database replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((admin_url, name)) = &self.postgres {
            if let Ok(mut admin) = PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

/// Settings for a test instance: fast retries and polling so tests wait milliseconds.
pub fn test_settings(database: &TestDatabase, smtp_url: &str) -> Settings {
    Settings {
        database_url: database.url.clone(),
        secret_key_file: database.dir.join("secret.key"),
        data_key_file: database.dir.join("data.key"),
        signing_key_file: database.dir.join("signing.key"),
        bind: "127.0.0.1:0".to_owned(),
        base_url: None,
        smtp_url: Some(smtp_url.to_owned()),
        db_pool_size: 4,
        workers: Some(1),
        outbox: OutboxSettings {
            poll_interval: Duration::from_millis(100),
            retry_base: Duration::from_millis(100),
            retry_max_delay: Duration::from_millis(400),
            ..OutboxSettings::default()
        },
        maintenance_interval: Duration::from_millis(100),
        abuse_checks: false,
        ..Settings::default()
    }
}

pub struct TestApp {
    pub base_url: String,
    pub smtp: SmtpReceiver,
    pub pool: DbPool,
    pub client: awc::Client,
    server: actix_web::dev::ServerHandle,
    pub database: TestDatabase,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: awc::http::header::HeaderMap,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts an app after `adjust` has changed its settings.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let database = TestDatabase::create(backend);
        let smtp = SmtpReceiver::start().await;
        let mut settings = test_settings(&database, &smtp.url());
        adjust(&mut settings);
        Self::start(settings, smtp, database).await
    }

    /// Starts an app on an existing database and SMTP receiver (e.g. after a restart).
    pub async fn start(settings: Settings, smtp: SmtpReceiver, database: TestDatabase) -> TestApp {
        let app = undersign::Application::build(settings)
            .await
            .expect("the application starts");
        let base_url = app.base_url().to_owned();
        let pool = app.pool().clone();
        let server = app.server_handle();
        actix_web::rt::spawn(app.run_until_stopped());
        TestApp {
            base_url,
            smtp,
            pool,
            client: awc::Client::builder()
                .disable_redirects()
                .timeout(Duration::from_secs(30))
                .finish(),
            server,
            database,
        }
    }

    /// Stops the server and hands back what a restart needs.
    pub async fn stop(self) -> (SmtpReceiver, TestDatabase) {
        self.server.stop(true).await;
        (self.smtp, self.database)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        read(self.client.get(self.url(path)).send().await.expect("GET")).await
    }

    pub async fn post_form(&self, path: &str, body: &str) -> Response {
        self.post_raw(
            path,
            "application/x-www-form-urlencoded",
            body.as_bytes().to_vec(),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, json: &serde_json::Value) -> Response {
        self.post_raw(path, "application/json", json.to_string().into_bytes())
            .await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Response {
        let request = self
            .client
            .post(self.url(path))
            .insert_header(("Content-Type", content_type));
        read(request.send_body(body).await.expect("POST")).await
    }

    /// Creates an open petition with a goal of 100 and one target.
    pub async fn create_petition(&self, slug: &str) {
        self.create_petition_with(slug, |_| {}).await
    }

    pub async fn create_petition_with(&self, slug: &str, adjust: impl FnOnce(&mut NewPetition)) {
        let mut petition = NewPetition {
            slug: slug.to_owned(),
            title: format!("Free them all ({slug})"),
            summary: "Release every political prisoner.".to_owned(),
            body: "Dear Prime Minister,\n\nWe ask you to **act**.".to_owned(),
            targets: vec![NewTarget {
                name: "The Prime Minister of Norway".to_owned(),
                role: "Office of the Prime Minister".to_owned(),
            }],
            goal: Some(100),
            closes_at: None,
            status: PetitionStatus::Open,
            organizer_ids: Vec::new(),
        };
        adjust(&mut petition);
        self.db(move |conn| {
            undersign::petitions::queries::create(conn, &petition, undersign::core::clock::now())
                .expect("petition created");
        })
        .await
    }

    /// Runs `f` against the app's database, off the async executor.
    pub async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> T + Send + 'static,
    ) -> T {
        let pool = self.pool.clone();
        actix_web::rt::task::spawn_blocking(move || f(&mut pool.get().unwrap()))
            .await
            .unwrap()
    }

    /// The instance's data key, to read and write encrypted columns the way the app does.
    pub fn data_key(&self) -> DataKey {
        DataKey::load_or_create(&self.database.dir.join("data.key")).unwrap()
    }

    /// The stored duplicate key (keyed hash) of an address.
    pub fn email_key(&self, email: &str) -> String {
        self.data_key()
            .email_key(&EmailAddress::parse(email).unwrap())
    }

    /// The confirmed count as the public API reports it.
    pub async fn public_count(&self, slug: &str) -> i64 {
        let response = self.get(&format!("/api/v1/petitions/{slug}")).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.json()["signature_count"].as_i64().unwrap()
    }

    pub async fn sign_json(&self, slug: &str, email: &str) -> Response {
        self.post_json(
            &format!("/api/v1/petitions/{slug}/signatures"),
            &serde_json::json!({
                "name": "Ana Ivanova",
                "email": email,
                "country": "NO",
                "consent": true,
            }),
        )
        .await
    }

    /// Waits for the `nth` (1-based) email to `address` and returns its confirmation link,
    /// as a path (`/confirm/TOKEN`).
    pub async fn confirmation_path(&self, address: &str, nth: usize) -> String {
        let mails = self
            .smtp
            .wait_for_messages_to(address, nth, Duration::from_secs(10))
            .await;
        let link = mails[nth - 1]
            .links()
            .into_iter()
            .find(|link| link.contains("/confirm/"))
            .expect("the email has a confirmation link");
        link.strip_prefix(&self.base_url)
            .expect("links point at the app's base URL")
            .to_owned()
    }

    /// Creates an account directly and returns its password.
    pub async fn create_user(&self, email: &str, role: Role) -> String {
        let password = format!("a long password for {email}");
        let email = email.to_owned();
        let secret = password.clone();
        self.db(move |conn| {
            let hash = passwords::hash(&Password::parse(&secret).unwrap()).unwrap();
            accounts::create(conn, &email, role, &hash, undersign::core::clock::now()).unwrap();
        })
        .await;
        password
    }

    /// Makes the account an organizer of the petition (of any status).
    pub async fn add_organizer(&self, slug: &str, email: &str) {
        let (slug, email) = (slug.to_owned(), email.to_owned());
        self.db(move |conn| {
            use undersign::db::schema::petitions;
            let user = accounts::find_by_email(conn, &email).unwrap().unwrap();
            let petition_id: i64 = petitions::table
                .filter(petitions::slug.eq(&slug))
                .select(petitions::id)
                .first(conn)
                .unwrap();
            access::add_organizer(conn, petition_id, user.id, undersign::core::clock::now())
                .unwrap();
        })
        .await
    }

    /// Submits the sign-in form as a browser would (fetching the form first for its CSRF
    /// token) and returns the response.
    pub async fn attempt_sign_in(&self, email: &str, password: &str) -> Response {
        let form = self.get("/login").await;
        let cookie = cookie_pair(&form, "undersign_login").expect("the form sets its cookie");
        let csrf = hidden_csrf(&form.body).expect("the form has a CSRF token");
        let body = format!(
            "csrf_token={}&email={}&password={}",
            encode(&csrf),
            encode(email),
            encode(password)
        );
        let request = self
            .client
            .post(self.url("/login"))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .insert_header(("Cookie", cookie));
        read(request.send_body(body).await.expect("POST /login")).await
    }

    /// Signs in and returns the browser session.
    pub async fn sign_in(&self, email: &str, password: &str) -> Session {
        let response = self.attempt_sign_in(email, password).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
        assert_eq!(response.header("location"), Some("/admin"));
        let cookie = cookie_pair(&response, "undersign_session").expect("a session cookie");
        let mut session = Session {
            cookie,
            csrf_token: String::new(),
        };
        let home = self.get_as(&session, "/admin").await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
        session.csrf_token = hidden_csrf(&home.body).expect("the workspace has a CSRF token");
        session
    }

    /// Creates an account and signs it in.
    pub async fn signed_in(&self, email: &str, role: Role) -> Session {
        let password = self.create_user(email, role).await;
        self.sign_in(email, &password).await
    }

    pub async fn get_as(&self, session: &Session, path: &str) -> Response {
        let request = self
            .client
            .get(self.url(path))
            .insert_header(("Cookie", session.cookie.clone()));
        read(request.send().await.expect("GET")).await
    }

    /// Posts a workspace form with the session's CSRF token added.
    pub async fn post_form_as(&self, session: &Session, path: &str, body: &str) -> Response {
        let body = if body.is_empty() {
            format!("csrf_token={}", encode(&session.csrf_token))
        } else {
            format!("csrf_token={}&{body}", encode(&session.csrf_token))
        };
        self.post_form_as_raw(session, path, &body).await
    }

    /// Posts a workspace form exactly as given (no CSRF token added).
    pub async fn post_form_as_raw(&self, session: &Session, path: &str, body: &str) -> Response {
        let request = self
            .client
            .post(self.url(path))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .insert_header(("Cookie", session.cookie.clone()));
        read(request.send_body(body.to_owned()).await.expect("POST")).await
    }

    /// Calls the organizer API with a bearer token.
    pub async fn api_get(&self, token: &str, path: &str) -> Response {
        let request = self
            .client
            .get(self.url(path))
            .insert_header(("Authorization", format!("Bearer {token}")));
        read(request.send().await.expect("GET")).await
    }

    pub async fn api_post(&self, token: &str, path: &str, json: &serde_json::Value) -> Response {
        let request = self
            .client
            .post(self.url(path))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .insert_header(("Content-Type", "application/json"));
        read(request.send_body(json.to_string()).await.expect("POST")).await
    }

    /// Creates an API token for the account and returns its secret.
    pub async fn create_api_token(&self, email: &str) -> String {
        let email = email.to_owned();
        self.db(move |conn| {
            let user = accounts::find_by_email(conn, &email).unwrap().unwrap();
            undersign::organizers::api_tokens::create(
                conn,
                user.id,
                "test",
                undersign::core::clock::now(),
            )
            .unwrap()
            .1
        })
        .await
    }

    pub async fn count_rows(&self, table: &'static str) -> i64 {
        self.db(move |conn| {
            #[derive(QueryableByName)]
            struct Count {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
                .get_result::<Count>(conn)
                .unwrap()
                .n
        })
        .await
    }
}

/// A signed-in browser: its session cookie and the CSRF token of its forms.
#[derive(Clone, Debug)]
pub struct Session {
    pub cookie: String,
    pub csrf_token: String,
}

/// `name=value` of a cookie the response sets.
pub fn cookie_pair(response: &Response, name: &str) -> Option<String> {
    response
        .headers
        .get_all("set-cookie")
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
        .map(str::to_owned)
}

/// The value of the first hidden `csrf_token` field in a page.
pub fn hidden_csrf(page: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker)? + marker.len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}

/// Percent-encodes a form value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn read<S>(mut response: awc::ClientResponse<S>) -> Response
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let body = response.body().limit(4 * 1024 * 1024).await.expect("body");
    Response {
        status: response.status(),
        headers: response.headers().clone(),
        body: String::from_utf8(body.to_vec()).expect("UTF-8 body"),
    }
}

/// A response whose body is kept as bytes: downloads (CSV with a byte-order mark, PDF).
pub struct Download {
    pub status: StatusCode,
    pub headers: awc::http::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Download {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }
}

impl TestApp {
    /// GETs a download as a signed-in browser, keeping the body as bytes (up to 64 MiB).
    pub async fn download_as(&self, session: &Session, path: &str) -> Download {
        let mut response = self
            .client
            .get(self.url(path))
            .insert_header(("Cookie", session.cookie.clone()))
            .send()
            .await
            .expect("GET");
        let body = response.body().limit(64 * 1024 * 1024).await.expect("body");
        Download {
            status: response.status(),
            headers: response.headers().clone(),
            body: body.to_vec(),
        }
    }
}

impl TestApp {
    /// Posts a workspace form (with the session's CSRF token added) whose answer is a
    /// download, keeping the body as bytes (up to 64 MiB).
    pub async fn post_download_as(&self, session: &Session, path: &str, body: &str) -> Download {
        let body = format!("csrf_token={}&{body}", encode(&session.csrf_token));
        let mut response = self
            .client
            .post(self.url(path))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .insert_header(("Cookie", session.cookie.clone()))
            .send_body(body)
            .await
            .expect("POST");
        let body = response.body().limit(64 * 1024 * 1024).await.expect("body");
        Download {
            status: response.status(),
            headers: response.headers().clone(),
            body: body.to_vec(),
        }
    }
}
