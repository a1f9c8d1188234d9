//! The public count, page and "check your inbox" page are served from memory with a strong ETag and a one-second
//! `Cache-Control`; the instance's own changes show at once; errors and personal pages are
//! never cached.

use awc::http::StatusCode;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(
    public_views_carry_an_etag_and_answer_304_to_it,
    own_confirmations_and_moderation_show_at_once,
    unknown_petitions_and_personal_pages_are_not_cached,
);

async fn get_with_tag(
    app: &TestApp,
    path: &str,
    tag: &str,
) -> (StatusCode, String, Option<String>) {
    let mut response = app
        .client
        .get(app.url(path))
        .insert_header(("If-None-Match", tag.to_owned()))
        .send()
        .await
        .expect("GET");
    let body = response.body().await.expect("body");
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        response.status(),
        String::from_utf8_lossy(&body).into_owned(),
        etag,
    )
}

async fn public_views_carry_an_etag_and_answer_304_to_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    for path in [
        "/api/v1/petitions/free-them",
        "/p/free-them",
        "/p/free-them/signed",
    ] {
        let first = app.get(path).await;
        assert_eq!(first.status, StatusCode::OK);
        assert_eq!(first.header("cache-control"), Some("public, max-age=1"));
        let etag = first.header("etag").expect("an ETag").to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
            "{etag}"
        );
        assert!(!first.body.is_empty());

        // Within the second the body is the same bytes, so the same tag.
        let (status, body, again) = get_with_tag(&app, path, &etag).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(body.is_empty());
        assert_eq!(again.as_deref(), Some(etag.as_str()));
        let listed = format!("\"0000\", W/{etag}");
        let (status, _, _) = get_with_tag(&app, path, &listed).await;
        assert_eq!(
            status,
            StatusCode::NOT_MODIFIED,
            "weak comparison, in a list"
        );

        let (status, body, _) = get_with_tag(&app, path, "\"something-else\"").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, first.body);
    }
    let json = app.get("/api/v1/petitions/free-them").await;
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(json.json()["signature_count"], 0);
    let page = app.get("/p/free-them").await;
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    // The middleware's headers are still there.
    assert!(page.header("content-security-policy").is_some());
}

async fn own_confirmations_and_moderation_show_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    app.sign_json("free-them", "ana@example.org").await;
    let path = app.confirmation_path("ana@example.org", 1).await;
    // Held in memory before the change.
    assert_eq!(app.public_count("free-them").await, 0);
    let before = app.get("/p/free-them").await;
    assert!(before
        .body
        .contains("<strong>0</strong> confirmed signatures"));

    assert_eq!(app.post_form(&path, "").await.status, StatusCode::OK);
    assert_eq!(app.public_count("free-them").await, 1);
    let after = app.get("/p/free-them").await;
    assert!(after
        .body
        .contains("<strong>1</strong> confirmed signature of"));
    assert_ne!(after.header("etag"), before.header("etag"));
    // The old tag no longer matches.
    let old = before.header("etag").unwrap();
    let (status, _, _) = get_with_tag(&app, "/p/free-them", old).await;
    assert_eq!(status, StatusCode::OK);

    // An organizer's change (through the API) shows at once too.
    app.create_user(
        "org@example.org",
        undersign::organizers::accounts::Role::Organizer,
    )
    .await;
    app.add_organizer("free-them", "org@example.org").await;
    let token = app.create_api_token("org@example.org").await;
    let listed = app
        .api_get(&token, "/api/v1/admin/petitions/free-them/signatures")
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let id = listed.json()["signatures"][0]["id"].as_i64().unwrap();
    let invalidated = app
        .api_post(
            &token,
            &format!("/api/v1/admin/petitions/free-them/signatures/{id}/invalidate"),
            &serde_json::json!({ "reason": "a duplicate of another signature" }),
        )
        .await;
    assert_eq!(invalidated.status, StatusCode::OK, "{}", invalidated.body);
    assert_eq!(app.public_count("free-them").await, 0);
    assert!(app
        .get("/p/free-them")
        .await
        .body
        .contains("<strong>0</strong> confirmed signatures"));
}

async fn unknown_petitions_and_personal_pages_are_not_cached(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in [
        "/api/v1/petitions/nothing-here",
        "/p/nothing-here",
        "/p/nothing-here/signed",
    ] {
        let missing = app.get(path).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert!(missing.header("etag").is_none());
        assert_ne!(missing.header("cache-control"), Some("public, max-age=1"));
    }
    // A petition created after a 404 for its address is found at once: the 404 was not kept.
    app.create_petition("nothing-here").await;
    assert_eq!(app.get("/p/nothing-here").await.status, StatusCode::OK);
    assert_eq!(app.public_count("nothing-here").await, 0);

    // The organizer's view of a petition is never public.
    let session = app
        .signed_in(
            "admin@example.org",
            undersign::organizers::accounts::Role::Admin,
        )
        .await;
    let dashboard = app.get_as(&session, "/admin/petitions/nothing-here").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.header("etag").is_none());
    assert!(!dashboard
        .header("cache-control")
        .unwrap_or_default()
        .contains("public"));
}
