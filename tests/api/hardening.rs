//! HTTP hardening: security headers on every kind of response, HSTS only for an https
//! origin, a request id on every response, no cookies for signers, and slow clients cut off.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend_tests;
use crate::helpers::{
    cookie_pair, encode, hidden_csrf, test_settings, Backend, Response, SmtpReceiver, TestApp,
    TestDatabase,
};
use undersign::organizers::accounts::Role;

backend_tests!(
    every_response_carries_the_security_headers,
    strict_transport_security_only_for_an_https_origin,
    every_response_has_its_own_request_id,
    signers_never_get_a_cookie,
    a_slow_client_is_cut_off,
    forwarded_for_counts_only_from_a_trusted_proxy,
    a_trickled_body_is_cut_off,
    nothing_a_signed_in_request_gets_is_stored,
);

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn assert_hardened(what: &str, response: &Response) {
    let csp = response.header("content-security-policy").unwrap_or("");
    assert_eq!(csp, CSP, "{what}: CSP");
    assert!(!csp.contains("unsafe-inline"), "{what}");
    assert_eq!(
        response.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(
        response.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(response.header("x-frame-options"), Some("DENY"), "{what}");
    assert!(
        response
            .header("permissions-policy")
            .is_some_and(|policy| policy.contains("camera=()")),
        "{what}: Permissions-Policy"
    );
    assert!(
        response.header("x-request-id").is_some(),
        "{what}: X-Request-Id"
    );
}

async fn every_response_carries_the_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    let session = app.signed_in("admin@example.org", Role::Admin).await;

    let page = app.get("/p/free-them").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_hardened("a page", &page);
    let json = app.get("/api/v1/petitions/free-them").await;
    assert_eq!(json.status, StatusCode::OK);
    assert_hardened("a JSON response", &json);
    let missing = app.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_hardened("a 404", &missing);
    let stylesheet = app.get("/static/style.css").await;
    assert_eq!(stylesheet.status, StatusCode::OK);
    assert_hardened("the stylesheet", &stylesheet);
    let bad_json = app
        .post_raw(
            "/api/v1/petitions/free-them/signatures",
            "application/json",
            b"{\"name\": ".to_vec(),
        )
        .await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    assert_hardened("a JSON error", &bad_json);
    let invalid_form = app.post_form("/p/free-them/sign", "name=").await;
    assert_eq!(invalid_form.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_hardened("a form shown again", &invalid_form);
    let wrong_method = app
        .client
        .delete(app.url("/p/free-them"))
        .send()
        .await
        .unwrap();
    assert!(wrong_method.status().is_client_error());
    assert!(wrong_method
        .headers()
        .contains_key("content-security-policy"));
    let workspace = app.get_as(&session, "/admin/petitions/free-them").await;
    assert_eq!(workspace.status, StatusCode::OK);
    assert_hardened("the dashboard", &workspace);
    let refused = app.get("/p/a%00b").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_hardened("an address refused before routing", &refused);
    let redirect = app.get("/admin").await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    assert_hardened("a redirect", &redirect);
    // Plain http: no HSTS.
    assert_eq!(page.header("strict-transport-security"), None);

    // The policy forbids inline styles and scripts, so no page may use them.
    for body in [
        &page.body,
        &workspace.body,
        &missing.body,
        &invalid_form.body,
    ] {
        assert!(!body.contains("style=\""), "an inline style");
        assert!(!body.contains("<script"), "a script");
        assert!(!body.contains("<style"), "an inline stylesheet");
    }
}

async fn strict_transport_security_only_for_an_https_origin(backend: Backend) {
    let database = TestDatabase::create(backend);
    let smtp = SmtpReceiver::start().await;
    let mut settings = test_settings(&database, &smtp.url());
    settings.base_url = Some("https://sign.example.org".to_owned());
    let app = undersign::Application::build(settings).await.unwrap();
    let port = app.port();
    let handle = app.server_handle();
    actix_web::rt::spawn(app.run_until_stopped());

    let client = awc::Client::builder().disable_redirects().finish();
    for path in ["/", "/static/style.css", "/no/such/page", "/healthz"] {
        let response = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response
                .headers()
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok()),
            Some("max-age=31536000"),
            "{path}"
        );
    }
    handle.stop(true).await;
    drop(database);
}

async fn every_response_has_its_own_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ids = HashSet::new();
    for path in ["/", "/", "/no/such/page", "/static/style.css", "/healthz"] {
        let response = app.get(path).await;
        let id = response.header("x-request-id").expect("an id").to_owned();
        assert!(
            (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{id:?}"
        );
        assert!(ids.insert(id), "request ids repeat");
    }

    // A client cannot choose its id (it would write into the logs): only a trusted proxy can.
    let chosen = app
        .client
        .get(app.url("/"))
        .insert_header(("X-Request-Id", "chosen-by-the-client"))
        .send()
        .await
        .unwrap();
    assert_ne!(
        chosen.headers().get("x-request-id").unwrap(),
        "chosen-by-the-client"
    );

    let (smtp, database) = app.stop().await;
    let mut settings = test_settings(&database, &smtp.url());
    settings.trusted_proxies =
        undersign::config::network::TrustedProxies::parse("127.0.0.1").unwrap();
    let app = TestApp::start(settings, smtp, database).await;
    let from_proxy = |id: &'static str| {
        app.client
            .get(app.url("/"))
            .insert_header(("X-Request-Id", id))
            .send()
    };
    let kept = from_proxy("proxy-7f3a.1").await.unwrap();
    assert_eq!(kept.headers().get("x-request-id").unwrap(), "proxy-7f3a.1");
    let refused = from_proxy("not well formed!").await.unwrap();
    assert_ne!(
        refused.headers().get("x-request-id").unwrap(),
        "not well formed!"
    );
}

fn assert_no_cookie(what: &str, response: &Response) {
    assert!(
        response.headers.get("set-cookie").is_none(),
        "{what} sets a cookie: {:?}",
        response.headers.get_all("set-cookie").collect::<Vec<_>>()
    );
}

async fn signers_never_get_a_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;

    assert_no_cookie("the home page", &app.get("/").await);
    assert_no_cookie("the petition page", &app.get("/p/free-them").await);
    let signed = app
        .post_form(
            "/p/free-them/sign",
            "name=Ana&email=ana%40example.org&country=NO&consent=on",
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_no_cookie("the signing form", &signed);
    assert_no_cookie(
        "a rejected form",
        &app.post_form("/p/free-them/sign", "").await,
    );
    assert_no_cookie(
        "the check-your-inbox page",
        &app.get("/p/free-them/signed").await,
    );
    let api = app.sign_json("free-them", "bo@example.org").await;
    assert_eq!(api.status, StatusCode::ACCEPTED, "{}", api.body);
    assert_no_cookie("the signing API", &api);
    assert_no_cookie(
        "the public API",
        &app.get("/api/v1/petitions/free-them").await,
    );

    let confirm = app.confirmation_path("ana@example.org", 1).await;
    let page = app.get(&confirm).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_no_cookie("the confirmation page", &page);
    let confirmed = app.post_form(&confirm, "").await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert_no_cookie("confirming", &confirmed);
    assert_no_cookie("a bad link", &app.get("/confirm/nonsense").await);
}

async fn a_slow_client_is_cut_off(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let address = app.base_url.trim_start_matches("http://").to_owned();

    // Half a request line, then nothing: the server must not wait for the rest forever.
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream.write_all(b"GET /p/some").await.unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut received))
        .await
        .expect("the server closed the connection");
    // Either a clean close (possibly after a 408) or a reset: both end the connection.
    if read.is_ok() && !received.is_empty() {
        assert!(
            String::from_utf8_lossy(&received).starts_with("HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&received)
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "closed only after {:?}",
        started.elapsed()
    );

    // An idle kept-alive connection is closed too.
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut received))
        .await
        .expect("the server closed the idle connection")
        .ok();
    assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() < Duration::from_secs(25));
}

/// A failed sign-in with a wrong password, sent as if through a proxy that says the client is
/// `forwarded_for`.
async fn failed_sign_in(app: &TestApp, n: usize, forwarded_for: &str) -> StatusCode {
    let form = app.get("/login").await;
    let cookie = cookie_pair(&form, "undersign_login").unwrap();
    let csrf = hidden_csrf(&form.body).unwrap();
    let body = format!(
        "csrf_token={}&email={}&password=wrong-password-{n}",
        encode(&csrf),
        encode(&format!("nobody{n}@example.org"))
    );
    app.client
        .post(app.url("/login"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .insert_header(("Cookie", cookie))
        .insert_header(("X-Forwarded-For", forwarded_for))
        .send_body(body)
        .await
        .unwrap()
        .status()
}

/// The sign-in throttle counts failures per client address: behind a trusted proxy that is
/// the forwarded address; from anyone else the header is ignored.
async fn forwarded_for_counts_only_from_a_trusted_proxy(backend: Backend) {
    let free = undersign::organizers::throttle::CLIENT_FREE_FAILURES as usize;
    let app = TestApp::spawn(backend).await;
    // Not trusted: every attempt comes from 127.0.0.1, whatever the header claims.
    for n in 0..free {
        let status = failed_sign_in(&app, n, &format!("198.51.100.{n}")).await;
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "attempt {n}");
    }
    assert_eq!(
        failed_sign_in(&app, free, "198.51.100.77").await,
        StatusCode::TOO_MANY_REQUESTS
    );

    let (smtp, database) = app.stop().await;
    let mut settings = test_settings(&database, &smtp.url());
    settings.trusted_proxies =
        undersign::config::network::TrustedProxies::parse("127.0.0.0/8").unwrap();
    let app = TestApp::start(settings, smtp, database).await;
    // Trusted: the forwarded client is throttled, another client is not, and a client that
    // writes its own header in front of the proxy's cannot escape.
    for n in 100..100 + free {
        let status = failed_sign_in(&app, n, "203.0.113.9").await;
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "attempt {n}");
    }
    assert_eq!(
        failed_sign_in(&app, 200, "203.0.113.9").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        failed_sign_in(&app, 201, "192.0.2.1, 203.0.113.9").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_ne!(
        failed_sign_in(&app, 202, "203.0.113.10").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Headers on time, then a body that never completes: the request is answered with 408 once
/// the body deadline passes, instead of holding the connection.
async fn a_trickled_body_is_cut_off(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/petitions/free-them/signatures HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\": ",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    tokio::time::timeout(
        undersign::web::http::BODY_TIMEOUT + Duration::from_secs(15),
        stream.read_to_end(&mut received),
    )
    .await
    .expect("the server answered")
    .ok();
    let answer = String::from_utf8_lossy(&received);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= undersign::web::http::BODY_TIMEOUT - Duration::from_secs(1));
    assert_eq!(app.count_rows("signatures").await, 0);
}

/// Every page of the workspace, every other response to a request that carries a session
/// (or an API token), and the sign-in page are `no-store`; anonymous public pages and the
/// stylesheet keep their caching.
async fn nothing_a_signed_in_request_gets_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    let admin = app.signed_in("olga@example.org", Role::Admin).await;
    app.add_organizer("free-them", "olga@example.org").await;
    let pages = [
        "/admin",
        "/admin/users",
        "/admin/tokens",
        "/admin/petitions/new",
        "/admin/petitions/free-them",
        "/admin/petitions/free-them/edit",
        "/admin/petitions/free-them/organizers",
        "/admin/petitions/free-them/signatures",
        "/admin/petitions/free-them/signatures/bulk",
        "/admin/petitions/free-them/deliveries",
    ];
    for path in pages {
        let response = app.get_as(&admin, path).await;
        assert_eq!(response.status, StatusCode::OK, "{path}: {}", response.body);
        assert_eq!(response.header("cache-control"), Some("no-store"), "{path}");
    }
    // Whatever a signed-in request asks for, even a public page or a missing one.
    for path in ["/", "/p/free-them", "/no-such-page"] {
        let response = app.get_as(&admin, path).await;
        assert_eq!(response.header("cache-control"), Some("no-store"), "{path}");
    }
    // A session that has ended still carries its cookie: not stored either.
    let stale = admin.clone();
    app.post_form_as(&admin, "/logout", "").await;
    let response = app.get_as(&stale, "/admin").await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(response.header("cache-control"), Some("no-store"));

    // The sign-in page, its failures and its success.
    let form = app.get("/login").await;
    assert_eq!(form.header("cache-control"), Some("no-store"));
    let password = app.create_user("ines@example.org", Role::Organizer).await;
    let failed = app
        .attempt_sign_in("ines@example.org", "wrong password!!")
        .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(failed.header("cache-control"), Some("no-store"));
    let signed_in = app.attempt_sign_in("ines@example.org", &password).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.header("cache-control"), Some("no-store"));

    // The organizer API, with its token.
    let token = app.create_api_token("ines@example.org").await;
    let response = app.api_get(&token, "/api/v1/admin/petitions").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.header("cache-control"), Some("no-store"));

    // Anonymous visitors keep the public caching, and the stylesheet stays cacheable.
    let public = app.get("/p/free-them").await;
    assert_ne!(public.header("cache-control"), Some("no-store"));
    let style = app.get_as(&stale, "/static/style.css").await;
    assert!(style
        .header("cache-control")
        .is_some_and(|value| value.contains("max-age")));
}
