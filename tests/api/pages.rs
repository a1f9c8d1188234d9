//! Public pages and the read API: what a visitor sees.

use awc::http::StatusCode;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(
    the_front_page_lists_open_petitions_with_counts,
    the_petition_page_shows_text_targets_progress_and_form,
    drafts_and_unknown_petitions_are_not_found,
    the_api_describes_petitions,
    health_and_readiness,
    every_get_route_answers_head_without_a_body,
    the_site_has_its_own_icon_cached_long,
    the_public_read_api_may_be_read_from_any_origin_and_nothing_private,
);

async fn the_front_page_lists_open_petitions_with_counts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let empty = app.get("/").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("no open petitions"));

    app.create_petition("free-them").await;
    app.create_petition_with("closed-one", |p| {
        p.status = undersign::core::status::PetitionStatus::Closed
    })
    .await;
    let page = app.get("/").await;
    assert!(page.body.contains("href=\"/p/free-them\""));
    assert!(page.body.contains("<strong>0</strong> signatures of 100"));
    assert!(
        !page.body.contains("closed-one"),
        "only open petitions are listed"
    );
}

async fn the_petition_page_shows_text_targets_progress_and_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition_with("free-them", |p| {
        p.body = "Dear Minister,\n\n**Act now.**\n\n<script>alert('x')</script>\n\n[bad](javascript:alert(1))"
            .to_owned();
        p.closes_at = chrono::NaiveDate::from_ymd_opt(2099, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0));
    })
    .await;
    let page = app.get("/p/free-them").await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(body.contains("<h1>Free them all (free-them)</h1>"));
    assert!(body
        .contains("<strong>The Prime Minister of Norway</strong>, Office of the Prime Minister"));
    assert!(body.contains("<strong>Act now.</strong>"));
    assert!(
        !body.contains("<script>alert"),
        "raw HTML is never passed through"
    );
    assert!(body.contains("&lt;script&gt;"));
    assert!(!body.to_lowercase().contains("javascript:"));
    assert!(body.contains("<progress value=\"0\" max=\"100\""));
    assert!(body.contains("until 31 December 2098"));
    // The form: labelled fields, the country list, both checkboxes.
    for field in [
        "name",
        "email",
        "country",
        "postal_code",
        "comment",
        "public",
        "consent",
    ] {
        assert!(
            body.contains(&format!("<label for=\"{field}\"")),
            "label for {field}"
        );
    }
    assert!(body.contains("<option value=\"BY\">Belarus</option>"));
    assert!(body.contains("action=\"/p/free-them/sign\""));
    // Everything comes from the instance itself.
    assert!(!body.contains("src=\"http"));
    assert!(body.contains("href=\"/static/style.css\""));
    let css = app.get("/static/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
}

async fn drafts_and_unknown_petitions_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition_with("secret-draft", |p| {
        p.status = undersign::core::status::PetitionStatus::Draft
    })
    .await;
    for path in [
        "/p/secret-draft",
        "/p/unknown",
        "/api/v1/petitions/secret-draft",
        "/api/v1/petitions/unknown",
        "/no/such/page",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
    }
    let api = app.get("/api/v1/petitions/secret-draft").await;
    assert!(api.json()["error"].is_string());
    let list = app.get("/api/v1/petitions").await;
    assert_eq!(list.json()["petitions"].as_array().unwrap().len(), 0);
    let sign = app.sign_json("secret-draft", "a@example.org").await;
    assert_eq!(sign.status, StatusCode::NOT_FOUND);
}

async fn the_api_describes_petitions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    let response = app.get("/api/v1/petitions/free-them").await;
    assert_eq!(response.status, StatusCode::OK);
    let json = response.json();
    assert_eq!(json["slug"], "free-them");
    assert_eq!(json["title"], "Free them all (free-them)");
    assert_eq!(json["status"], "open");
    assert_eq!(json["signature_count"], 0);
    assert_eq!(json["goal"], 100);
    assert!(json["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(json["closes_at"].is_null());

    let list = app.get("/api/v1/petitions").await.json();
    let petitions = list["petitions"].as_array().unwrap();
    assert_eq!(petitions.len(), 1);
    assert_eq!(petitions[0]["slug"], "free-them");
}

async fn health_and_readiness(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "ready");
}

type Headers<'a> = Vec<(&'a str, &'a str)>;

/// An answer read off the wire: the status, the headers (names in lower case) and every byte
/// the server sent after them.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Sends one request on a connection of its own and reads until the server closes it, so
/// that a body sent where none belongs would show.
async fn raw(app: &TestApp, method: &str, path: &str, headers: &[(&str, &str)]) -> Raw {
    use std::io::{Read, Write};
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let bytes = actix_web::rt::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        bytes
    })
    .await
    .unwrap();
    let end = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    }
}

async fn every_get_route_answers_head_without_a_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    let session = app
        .signed_in(
            "olga@example.org",
            undersign::organizers::accounts::Role::Admin,
        )
        .await;
    let signed_in = [("Cookie", session.cookie.as_str())];
    let pages: [(&str, &[(&str, &str)]); 11] = [
        ("/", &[]),
        ("/p/free-them", &[]),
        ("/api/v1/petitions", &[]),
        ("/api/v1/petitions/free-them", &[]),
        ("/healthz", &[]),
        ("/static/style.css", &[]),
        ("/favicon.ico", &[]),
        ("/login", &[]),
        ("/admin", &signed_in),
        ("/admin/petitions/free-them", &signed_in),
        ("/no/such/page", &[]),
    ];
    for (path, headers) in pages {
        let get = raw(&app, "GET", path, headers).await;
        let head = raw(&app, "HEAD", path, headers).await;
        let expected = if path == "/no/such/page" { 404 } else { 200 };
        assert_eq!(get.status, expected, "GET {path}");
        assert_eq!(head.status, get.status, "HEAD {path}");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
        assert!(head.body.is_empty(), "HEAD {path} sent a body");
        assert!(!get.body.is_empty(), "GET {path} sent none");
    }
    // Answers that are the same every time announce the GET's exact length.
    for path in [
        "/api/v1/petitions/free-them",
        "/static/style.css",
        "/favicon.ico",
    ] {
        let get = raw(&app, "GET", path, &[]).await;
        let head = raw(&app, "HEAD", path, &[]).await;
        assert_eq!(
            head.header("content-length"),
            Some(get.body.len().to_string().as_str()),
            "{path}"
        );
    }
    // POST-only addresses stay what they were for GET.
    let sign = raw(&app, "HEAD", "/p/free-them/sign", &[]).await;
    let sign_get = raw(&app, "GET", "/p/free-them/sign", &[]).await;
    assert_eq!(sign.status, sign_get.status);
    assert!(sign.body.is_empty());
}

async fn the_site_has_its_own_icon_cached_long(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ico = raw(&app, "GET", "/favicon.ico", &[]).await;
    assert_eq!(ico.status, 200);
    assert_eq!(ico.header("content-type"), Some("image/x-icon"));
    // An ICO directory (reserved 0, type 1) holding the 16, 32 and 48 pixel renderings.
    assert_eq!(&ico.body[..4], &[0, 0, 1, 0]);
    assert_eq!(ico.body[4], 3, "three sizes");
    let sizes: Vec<u8> = (0..3).map(|entry| ico.body[6 + 16 * entry]).collect();
    assert_eq!(sizes, [16, 32, 48]);
    let svg = raw(&app, "GET", "/static/icon.svg", &[]).await;
    assert_eq!(svg.status, 200);
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    assert!(String::from_utf8(svg.body.clone())
        .unwrap()
        .contains("<svg"));
    for answer in [&ico, &svg] {
        let cache = answer.header("cache-control").unwrap();
        let max_age: u64 = cache
            .split(',')
            .find_map(|part| part.trim().strip_prefix("max-age="))
            .and_then(|age| age.parse().ok())
            .unwrap_or_else(|| panic!("{cache}"));
        assert!(
            cache.starts_with("public") && max_age >= 30 * 24 * 3600,
            "{cache}"
        );
    }
    // Every page links the SVG (the base template).
    for path in ["/", "/login"] {
        let page = app.get(path).await;
        assert!(
            page.body
                .contains(r#"<link rel="icon" href="/static/icon.svg" type="image/svg+xml">"#),
            "{path}"
        );
    }
}

async fn the_public_read_api_may_be_read_from_any_origin_and_nothing_private(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    app.create_user(
        "olga@example.org",
        undersign::organizers::accounts::Role::Admin,
    )
    .await;
    let token = app.create_api_token("olga@example.org").await;
    let origin = ("Origin", "https://partner.example");
    for path in [
        "/api/v1/petitions",
        "/api/v1/petitions/free-them",
        "/api/v1/petitions/unknown",
    ] {
        let read = raw(&app, "GET", path, &[origin]).await;
        assert_eq!(
            read.header("access-control-allow-origin"),
            Some("*"),
            "{path}"
        );
        assert_eq!(
            read.header("access-control-allow-credentials"),
            None,
            "{path}"
        );
        let preflight = raw(
            &app,
            "OPTIONS",
            path,
            &[
                origin,
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "if-none-match"),
            ],
        )
        .await;
        assert_eq!(preflight.status, 204, "{path}");
        assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
        let methods = preflight.header("access-control-allow-methods").unwrap();
        assert!(
            methods.contains("GET") && !methods.contains("POST"),
            "{methods}"
        );
        assert_eq!(preflight.header("access-control-allow-headers"), Some("*"));
        assert!(preflight.header("access-control-max-age").is_some());
        assert_eq!(preflight.header("access-control-allow-credentials"), None);
    }
    // The count a partner's script reads is the real one.
    let read = raw(&app, "GET", "/api/v1/petitions/free-them", &[origin]).await;
    assert_eq!(read.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&read.body).unwrap();
    assert_eq!(json["signature_count"], 0);

    // Nothing private, nothing that writes, no page answers another origin.
    let bearer = format!("Bearer {token}");
    let private: [(&str, &str, Headers); 5] = [
        (
            "GET",
            "/api/v1/admin/petitions",
            vec![origin, ("Authorization", bearer.as_str())],
        ),
        (
            "OPTIONS",
            "/api/v1/admin/petitions",
            vec![origin, ("Access-Control-Request-Method", "GET")],
        ),
        ("GET", "/admin", vec![origin]),
        ("GET", "/p/free-them", vec![origin]),
        (
            "OPTIONS",
            "/api/v1/petitions/free-them/signatures",
            vec![origin, ("Access-Control-Request-Method", "POST")],
        ),
    ];
    for (method, path, headers) in private {
        let answer = raw(&app, method, path, &headers).await;
        assert_eq!(
            answer.header("access-control-allow-origin"),
            None,
            "{method} {path}"
        );
        assert_ne!(answer.status, 204, "{method} {path}");
    }
    let api = raw(
        &app,
        "GET",
        "/api/v1/admin/petitions",
        &[("Authorization", bearer.as_str())],
    )
    .await;
    assert_eq!(
        api.status, 200,
        "the token works: the header is absent for a reason"
    );
}
